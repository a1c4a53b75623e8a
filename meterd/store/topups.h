/* SPDX-License-Identifier: MIT */
/*
 * topups.h - online top-up orders (spec newapi.md 1.9, 7.3): created pending, completed
 * atomically (the order turns success, the user's quota grows and the top-up log row is
 * written in one transaction, once per order even under duplicate payment callbacks),
 * or failed/expired. Thread-safe; ownership as in store.h.
 */
#ifndef MT_STORE_TOPUPS_H
#define MT_STORE_TOPUPS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;
struct mt_log;

#define MT_TOPUP_PENDING "pending"
#define MT_TOPUP_SUCCESS "success"
#define MT_TOPUP_FAILED "failed"
#define MT_TOPUP_EXPIRED "expired"

struct mt_topup {
    int64_t id;
    int64_t user_id;
    int64_t amount; /* units bought */
    double money;   /* charged */
    const char *trade_no;
    const char *payment_method;
    const char *payment_provider;
    int64_t create_time, complete_time;
    const char *status;
    void *_mem;
};

struct mt_topup_list {
    struct mt_topup *items;
    size_t n;
    int64_t total;
};

void mt_topup_cleanup(struct mt_topup *t);
void mt_topup_list_cleanup(struct mt_topup_list *l);

/** Inserts @p t (create_time 0 -> now, status NULL -> "pending"). CM_ERR_EXISTS (trade_no). */
int mt_store_topup_insert(struct mt_store *st, const struct mt_topup *t, int64_t *id);
int mt_store_topup_get_by_trade_no(struct mt_store *st, const char *trade_no, struct mt_topup *out);
/** Orders of @p user_id (0: all), id desc, paged. */
int mt_store_topup_list(struct mt_store *st, int64_t user_id, int64_t offset, int limit,
                        struct mt_topup_list *out);
/**
 * Completes the pending order @p trade_no: status "success", complete_time now, the
 * owner's quota + @p quota, and @p log (may be NULL; user_id/quota/created_at filled in)
 * in one transaction. CM_ERR_NOTFOUND (no such order); CM_ERR_DENIED (not pending:
 * already completed, failed or expired; nothing changes).
 */
int mt_store_topup_complete(struct mt_store *st, const char *trade_no, int64_t quota,
                            const struct mt_log *log);
/** Sets a pending order's status (e.g. "failed", "expired"). NOTFOUND / DENIED as above. */
int mt_store_topup_set_status(struct mt_store *st, const char *trade_no, const char *status);

#endif
