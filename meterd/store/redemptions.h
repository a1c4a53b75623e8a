/* SPDX-License-Identifier: MIT */
/*
 * redemptions.h - redemption codes (spec newapi.md 1.8, 3.6, 7.2): 32 lowercase hex keys,
 * created in batches, listed/searched, edited, soft-deleted, and redeemed atomically
 * (code marked used, user's quota raised and the top-up log row written in one
 * transaction; a code can be redeemed once even when two requests race). Keys are
 * secrets: never logged. Thread-safe; ownership as in store.h.
 */
#ifndef MT_STORE_REDEMPTIONS_H
#define MT_STORE_REDEMPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;
struct mt_log;

enum { MT_REDEMPTION_ENABLED = 1, MT_REDEMPTION_DISABLED = 2, MT_REDEMPTION_USED = 3 };
#define MT_REDEMPTION_KEY_LEN 32
#define MT_REDEMPTION_BATCH_MAX 100

struct mt_redemption {
    int64_t id;
    int64_t user_id; /* creator */
    const char *key; /* secret */
    int status;
    const char *name;
    int64_t quota;
    int64_t created_time, redeemed_time;
    int64_t used_user_id;
    const char *deleted_at;
    int64_t expired_time; /* 0: never */
    void *_mem;
};

struct mt_redemption_list {
    struct mt_redemption *items;
    size_t n;
    int64_t total;
};

void mt_redemption_cleanup(struct mt_redemption *r);
void mt_redemption_list_cleanup(struct mt_redemption_list *l);

/**
 * Creates @p count (1..MT_REDEMPTION_BATCH_MAX) codes named @p name with @p quota and
 * @p expired_time (0 never), created by @p user_id, in one transaction. On CM_OK *@p keys
 * is an array of @p count new keys; free with mt_redemption_keys_free().
 */
int mt_store_redemption_create(struct mt_store *st, int64_t user_id, const char *name,
                               int64_t quota, int64_t expired_time, int count, char ***keys);
void mt_redemption_keys_free(char **keys, size_t n);

int mt_store_redemption_get(struct mt_store *st, int64_t id, struct mt_redemption *out);
/** Live codes, id desc, paged. */
int mt_store_redemption_list(struct mt_store *st, int64_t offset, int limit,
                             struct mt_redemption_list *out);
/** Live codes whose name contains @p keyword, or whose id is @p keyword (digits); paged. */
int mt_store_redemption_search(struct mt_store *st, const char *keyword, int64_t offset, int limit,
                               struct mt_redemption_list *out);
/** Writes name, status, quota, redeemed_time and expired_time of @p r->id. NOTFOUND. */
int mt_store_redemption_update(struct mt_store *st, const struct mt_redemption *r);
/** Soft delete. NOTFOUND. */
int mt_store_redemption_delete(struct mt_store *st, int64_t id);
/** Soft-deletes used, disabled and expired codes; count to *@p deleted. */
int mt_store_redemption_delete_invalid(struct mt_store *st, int64_t *deleted);

enum mt_redeem_fail {
    MT_REDEEM_OK = 0,
    MT_REDEEM_USED,     /* status 3 (or lost a race) */
    MT_REDEEM_DISABLED, /* status 2 */
    MT_REDEEM_EXPIRED,
};
/**
 * Redeems @p key for @p user_id: in one transaction the code (live, status 1, not
 * expired) becomes used (status 3, redeemed_time now, used_user_id), the user's quota
 * grows by the code's quota, and @p log (may be NULL; user_id, quota and created_at are
 * filled in; content as given) is inserted. On CM_OK *@p quota gets the amount and
 * *@p code_id the code's id (both may be NULL). CM_ERR_NOTFOUND (no such live key or no
 * such user); CM_ERR_DENIED with *@p why set (used, disabled, expired); I/O errors.
 */
int mt_store_redeem(struct mt_store *st, const char *key, int64_t user_id, const struct mt_log *log,
                    int64_t *quota, int64_t *code_id, enum mt_redeem_fail *why);

#endif
