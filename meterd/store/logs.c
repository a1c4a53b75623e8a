/* SPDX-License-Identifier: MIT */
/*
 * logs.c - SQL of the logs table (contracts in logs.h): the row insert shared with the
 * writer (mt_store__log_insert), the filtered queries (fixed SQL fragments, every value
 * bound), stat sums and batched deletion. Columns are listed once in LOG_COLS.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <stdio.h>
#include <string.h>

/* every column but id and user_id */
#define LOG_COLS(X)                                                                                \
    X(created_at, "created_at", I64)                                                               \
    X(type, "type", INT)                                                                           \
    X(content, "content", TEXT)                                                                    \
    X(username, "username", TEXT)                                                                  \
    X(token_name, "token_name", TEXT)                                                              \
    X(model_name, "model_name", TEXT)                                                              \
    X(quota, "quota", I64)                                                                         \
    X(prompt_tokens, "prompt_tokens", I64)                                                         \
    X(completion_tokens, "completion_tokens", I64)                                                 \
    X(use_time, "use_time", I64)                                                                   \
    X(is_stream, "is_stream", BOOL)                                                                \
    X(channel_id, "channel_id", I64)                                                               \
    X(channel_name, "channel_name", TEXT)                                                          \
    X(token_id, "token_id", I64)                                                                   \
    X(group, "\"group\"", TEXT)                                                                    \
    X(ip, "ip", TEXT)                                                                              \
    X(request_id, "request_id", TEXT)                                                              \
    X(upstream_request_id, "upstream_request_id", TEXT)                                            \
    X(other, "other", TEXT)

#define SEL(f, sql, t) ", " sql
#define PH(f, sql, t) ", ?"
#define DESC(f, sql, t) {#f, offsetof(struct mt_log, f), MT_C_##t},

static const struct mt_col log_cols[] = {{"id", offsetof(struct mt_log, id), MT_C_I64},
                                         {"user_id", offsetof(struct mt_log, user_id), MT_C_I64},
                                         LOG_COLS(DESC)};
const struct mt_rowdesc mt_store__log_desc = {log_cols, sizeof(log_cols) / sizeof(log_cols[0]),
                                              sizeof(struct mt_log), offsetof(struct mt_log, _mem)};

#define LOG_SELECT "SELECT id, user_id" LOG_COLS(SEL) " FROM logs"

static const char SQL_INSERT[] =
    "INSERT INTO logs (user_id" LOG_COLS(SEL) ") VALUES (?" LOG_COLS(PH) ") RETURNING id";
static const char SQL_DELETE_BATCH[] =
    "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE created_at < ? LIMIT 1000)";
#define DELETE_BATCH 1000

void mt_log_cleanup(struct mt_log *l)
{
    mt_store__row_cleanup(&mt_store__log_desc, l);
}

void mt_log_list_cleanup(struct mt_log_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&mt_store__log_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

int mt_store__log_insert(struct mt_store *st, struct mt_conn *c, const struct mt_log *l,
                         int64_t *id)
{
    struct mt_log row = *l;
    sqlite3_stmt *s = NULL;
    int64_t new_id = 0;
    int rc;

    if (!row.created_at)
        row.created_at = mt_store__now(st);
    rc = mt_store__stmt(c, SQL_INSERT, &s);
    if (rc)
        return rc;
    if (sqlite3_bind_int64(s, 1, row.user_id) != SQLITE_OK ||
        mt_store__row_bind(s, &mt_store__log_desc, 2, 2, &row) < 0)
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind log");
    else
        rc = mt_store__int(c, s, &new_id);
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INTERNAL;
    mt_store__done(s);
    if (rc == CM_OK && id)
        *id = new_id;
    return rc;
}

int mt_store_log_insert(struct mt_store *st, const struct mt_log *l, int64_t *id)
{
    struct mt_conn *c = NULL;
    int64_t new_id = 0;
    int rc;

    if (!st || !l)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__log_insert(st, c, l, &new_id);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && id)
        *id = new_id;
    return rc;
}

/* The WHERE of a filter. @p with_time: also the start/end range. */
static int log_where(const struct mt_log_filter *f, int with_type, int with_time,
                     struct mt_where *w)
{
    int rc = CM_OK;
    if (!f)
        return CM_OK;
    if (with_type && f->type > 0)
        rc = mt_store__where(w, "type = ?", "I", (int64_t)f->type);
    if (rc == CM_OK && f->user_id > 0)
        rc = mt_store__where(w, "user_id = ?", "I", f->user_id);
    if (rc == CM_OK && f->username && *f->username)
        rc = mt_store__where(w, "username = ?", "s", f->username);
    if (rc == CM_OK && f->token_name && *f->token_name)
        rc = mt_store__where(w, "token_name = ?", "s", f->token_name);
    if (rc == CM_OK && f->model_name && *f->model_name) {
        char *p = NULL;
        rc = mt_store__like(f->model_name, 0, &p);
        if (rc == CM_OK)
            rc = mt_store__where(w, "model_name LIKE ? ESCAPE '!'", "o", p);
    }
    if (rc == CM_OK && with_time && f->start > 0)
        rc = mt_store__where(w, "created_at >= ?", "I", f->start);
    if (rc == CM_OK && with_time && f->end > 0)
        rc = mt_store__where(w, "created_at <= ?", "I", f->end);
    if (rc == CM_OK && f->channel_id > 0)
        rc = mt_store__where(w, "channel_id = ?", "I", f->channel_id);
    if (rc == CM_OK && f->group && *f->group)
        rc = mt_store__where(w, "\"group\" = ?", "s", f->group);
    if (rc == CM_OK && f->request_id && *f->request_id)
        rc = mt_store__where(w, "request_id = ?", "s", f->request_id);
    if (rc == CM_OK && f->upstream_request_id && *f->upstream_request_id)
        rc = mt_store__where(w, "upstream_request_id = ?", "s", f->upstream_request_id);
    if (rc == CM_OK && f->token_id > 0)
        rc = mt_store__where(w, "token_id = ?", "I", f->token_id);
    return rc;
}

int mt_store_log_query(struct mt_store *st, const struct mt_log_filter *f, enum mt_log_order order,
                       int64_t offset, int limit, int64_t total_cap, struct mt_log_list *out)
{
    struct mt_where w;
    struct mt_rows r = {0};
    struct mt_conn *c;
    char tail[64];
    int64_t total = 0;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit) || total_cap < 0)
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    rc = log_where(f, 1, 1, &w);
    if (rc == CM_OK) {
        c = mt_store__rd_get(st);
        if (total_cap > 0) {
            snprintf(tail, sizeof(tail), " LIMIT %lld) capped", (long long)total_cap);
            rc = mt_store__where_int(c, "SELECT count(*) FROM (SELECT 1 FROM logs", &w, tail,
                                     &total);
        } else {
            rc = mt_store__where_int(c, "SELECT count(*) FROM logs", &w, NULL, &total);
        }
        if (rc == CM_OK)
            rc = mt_store__where_rows(c, LOG_SELECT, &w,
                                      order == MT_LOG_ORDER_ID
                                          ? " ORDER BY id DESC"
                                          : " ORDER BY created_at DESC, id DESC",
                                      offset, limit, &mt_store__log_desc, &r);
        mt_store__rd_put(st, c);
    }
    mt_store__where_cleanup(&w);
    if (rc) {
        mt_store__rows_free(&mt_store__log_desc, r.items, r.n);
        return rc;
    }
    out->items = r.items;
    out->n = r.n;
    out->total = total;
    return CM_OK;
}

int mt_store_log_stat(struct mt_store *st, const struct mt_log_filter *f, struct mt_log_stat *out)
{
    struct mt_where wq, wr;
    struct mt_log_stat res = {0};
    struct mt_conn *c;
    int64_t since;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    since = mt_store__now(st) - 60;
    mt_store__where_init(&wq);
    mt_store__where_init(&wr);
    rc = mt_store__where(&wq, "type = 2", "");
    if (rc == CM_OK)
        rc = log_where(f, 0, 1, &wq);
    if (rc == CM_OK)
        rc = mt_store__where(&wr, "type = 2 AND created_at >= ?", "I", since);
    if (rc == CM_OK)
        rc = log_where(f, 0, 0, &wr);
    if (rc == CM_OK) {
        c = mt_store__rd_get(st);
        rc = mt_store__where_int(c, "SELECT COALESCE(sum(quota), 0) FROM logs", &wq, NULL,
                                 &res.quota);
        if (rc == CM_OK)
            rc = mt_store__where_int(c, "SELECT count(*) FROM logs", &wr, NULL, &res.rpm);
        if (rc == CM_OK)
            rc = mt_store__where_int(
                c, "SELECT COALESCE(sum(prompt_tokens + completion_tokens), 0) FROM logs", &wr,
                NULL, &res.tpm);
        mt_store__rd_put(st, c);
    }
    mt_store__where_cleanup(&wq);
    mt_store__where_cleanup(&wr);
    if (rc == CM_OK)
        *out = res;
    return rc;
}

int mt_store_log_delete_before(struct mt_store *st, int64_t before, int64_t *deleted)
{
    int64_t total = 0, n;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    do {
        n = 0;
        rc = mt_store__write(st, SQL_DELETE_BATCH, &n, "I", before);
        total += n;
    } while (rc == CM_OK && n >= DELETE_BATCH);
    if (rc == CM_OK && deleted)
        *deleted = total;
    return rc;
}
