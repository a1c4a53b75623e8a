/* SPDX-License-Identifier: MIT */
/*
 * quota_data.h - the hourly usage aggregate (spec newapi.md 1.10): one row per (user,
 * username, model, hour) with token_used, count and quota. Rows are added by settle in
 * the writer's transaction (writer.h; no in-memory buffer to lose on a crash) and read
 * by the dashboard queries here. Thread-safe; ownership as in store.h.
 */
#ifndef MT_STORE_QUOTA_DATA_H
#define MT_STORE_QUOTA_DATA_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;

struct mt_quota_data {
    int64_t id;
    int64_t user_id;
    const char *username;
    const char *model_name;
    int64_t created_at; /* the hour: ts - ts % 3600 */
    int64_t token_used, count, quota;
    void *_mem;
};

struct mt_quota_data_list {
    struct mt_quota_data *items;
    size_t n;
};

void mt_quota_data_list_cleanup(struct mt_quota_data_list *l);

/** Adds one request to its hour row (insert or relative update), in its own transaction. */
int mt_store_quota_data_add(struct mt_store *st, int64_t user_id, const char *username,
                            const char *model_name, int64_t when, int64_t token_used,
                            int64_t quota);

enum mt_quota_data_group {
    MT_QD_BY_MODEL = 0, /* per (model_name, hour): /api/data/ and /api/data/self */
    MT_QD_BY_USER,      /* per (username, hour): /api/data/users */
};

/**
 * Sums of rows with @p start <= created_at <= @p end (0: open end), for @p username
 * (NULL/"": all) or @p user_id (0: all), grouped by @p by and the hour, ordered by hour
 * then name. In grouped rows id and user_id are 0 and the other name field is "".
 * At most 10 * MT_STORE_LIST_MAX rows.
 */
int mt_store_quota_data_query(struct mt_store *st, enum mt_quota_data_group by, int64_t start,
                              int64_t end, const char *username, int64_t user_id,
                              struct mt_quota_data_list *out);

#endif
