/* SPDX-License-Identifier: MIT */
/*
 * logs.h - the logs table (spec newapi.md 1.6, 3.6, 5.8): rows of every type (1 top-up,
 * 2 consume, 3 manage, 4 system, 5 error, 6 refund), the admin and self queries with
 * NewAPI's filters and paging, the stat sums (quota, rpm, tpm), deletion before a time
 * in small batches, and the per-token history. Consume rows on the request path go
 * through the writer (writer.h, mt_store_settle), not mt_store_log_insert().
 * Thread-safe; ownership as in store.h.
 */
#ifndef MT_STORE_LOGS_H
#define MT_STORE_LOGS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;

enum {
    MT_LOG_UNKNOWN = 0,
    MT_LOG_TOPUP = 1,
    MT_LOG_CONSUME = 2,
    MT_LOG_MANAGE = 3,
    MT_LOG_SYSTEM = 4,
    MT_LOG_ERROR = 5,
    MT_LOG_REFUND = 6,
};

struct mt_log {
    int64_t id;
    int64_t user_id;
    int64_t created_at; /* 0 on insert: now */
    int type;
    const char *content;
    const char *username;
    const char *token_name;
    const char *model_name;
    int64_t quota;
    int64_t prompt_tokens, completion_tokens;
    int64_t use_time; /* seconds */
    int is_stream;
    int64_t channel_id; /* JSON "channel" */
    const char *channel_name;
    int64_t token_id;
    const char *group;
    const char *ip;
    const char *request_id;
    const char *upstream_request_id;
    const char *other; /* JSON */
    void *_mem;
};

struct mt_log_list {
    struct mt_log *items;
    size_t n;
    int64_t total; /* matches (capped at the query's total_cap when one is given) */
};

void mt_log_cleanup(struct mt_log *l);
void mt_log_list_cleanup(struct mt_log_list *l);

/** Filters; zero / NULL / "" fields mean "any". */
struct mt_log_filter {
    int type; /* 0: any */
    int64_t user_id;
    const char *username;   /* exact */
    const char *token_name; /* exact */
    const char *model_name; /* LIKE pattern ('%' wildcard; '_' and '!' literal) */
    int64_t start, end;     /* created_at >= start, created_at <= end (unix s) */
    int64_t channel_id;
    const char *group;
    const char *request_id;
    const char *upstream_request_id;
    int64_t token_id;
};

enum mt_log_order {
    MT_LOG_ORDER_CREATED = 0, /* created_at desc, id desc (admin list) */
    MT_LOG_ORDER_ID,          /* id desc (self list, token history) */
};

/** Inserts @p l (id ignored; created_at 0 -> now) in its own transaction; id to *@p id
 *  (may be NULL). For admin/system rows; request-path rows go through the writer. */
int mt_store_log_insert(struct mt_store *st, const struct mt_log *l, int64_t *id);

/**
 * Rows matching @p f (NULL: all) in @p order, @p limit (1..MT_STORE_LIST_MAX) from
 * @p offset. out->total counts all matches, or at most @p total_cap when > 0 (NewAPI caps
 * the self count at 10000).
 */
int mt_store_log_query(struct mt_store *st, const struct mt_log_filter *f, enum mt_log_order order,
                       int64_t offset, int limit, int64_t total_cap, struct mt_log_list *out);

struct mt_log_stat {
    int64_t quota; /* sum(quota) of consume rows matching the filter */
    int64_t rpm;   /* consume rows matching (time range ignored) in the last 60 s */
    int64_t tpm;   /* their prompt + completion tokens */
};
/** NewAPI's /api/log/stat over consume rows (f->type is ignored). */
int mt_store_log_stat(struct mt_store *st, const struct mt_log_filter *f, struct mt_log_stat *out);

/**
 * Deletes rows with created_at < @p before in batches (a short write transaction each,
 * so request-path writes interleave); count to *@p deleted (may be NULL).
 */
int mt_store_log_delete_before(struct mt_store *st, int64_t before, int64_t *deleted);

#endif
