/* SPDX-License-Identifier: MIT */
/*
 * tokens.c - SQL of the tokens table (contracts in tokens.h). Columns are listed once in
 * TOKEN_COLS (SELECT list, INSERT list and row mapper). Keys never reach a log line.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <stdio.h>
#include <string.h>

/* every column but id and user_id */
#define TOKEN_COLS(X)                                                                              \
    X(key, "\"key\"", TEXT)                                                                        \
    X(status, "status", INT)                                                                       \
    X(name, "name", TEXT)                                                                          \
    X(created_time, "created_time", I64)                                                           \
    X(accessed_time, "accessed_time", I64)                                                         \
    X(expired_time, "expired_time", I64)                                                           \
    X(remain_quota, "remain_quota", I64)                                                           \
    X(unlimited_quota, "unlimited_quota", BOOL)                                                    \
    X(model_limits_enabled, "model_limits_enabled", BOOL)                                          \
    X(model_limits, "model_limits", TEXT)                                                          \
    X(allow_ips, "allow_ips", TEXT)                                                                \
    X(used_quota, "used_quota", I64)                                                               \
    X(group, "\"group\"", TEXT)                                                                    \
    X(cross_group_retry, "cross_group_retry", BOOL)                                                \
    X(deleted_at, "deleted_at", TEXTN)

#define SEL(f, sql, t) ", " sql
#define PH(f, sql, t) ", ?"
#define DESC(f, sql, t) {#f, offsetof(struct mt_token, f), MT_C_##t},

static const struct mt_col token_cols[] = {
    {"id", offsetof(struct mt_token, id), MT_C_I64},
    {"user_id", offsetof(struct mt_token, user_id), MT_C_I64},
    TOKEN_COLS(DESC)};
static const struct mt_rowdesc token_desc = {token_cols, sizeof(token_cols) / sizeof(token_cols[0]),
                                             sizeof(struct mt_token),
                                             offsetof(struct mt_token, _mem)};

#define TOKEN_SELECT "SELECT id, user_id" TOKEN_COLS(SEL) " FROM tokens"

static const char SQL_BY_KEY[] = TOKEN_SELECT " WHERE \"key\" = ? AND deleted_at IS NULL";
static const char SQL_BY_ID[] = TOKEN_SELECT " WHERE id = ? AND deleted_at IS NULL";
static const char SQL_BY_ID_USER[] =
    TOKEN_SELECT " WHERE id = ? AND user_id = ? AND deleted_at IS NULL";
static const char SQL_INSERT[] =
    "INSERT INTO tokens (user_id" TOKEN_COLS(SEL) ") VALUES (?" TOKEN_COLS(PH) ") RETURNING id";
static const char SQL_UPDATE[] =
    "UPDATE tokens SET name = ?, status = ?, expired_time = ?, remain_quota = ?, "
    "unlimited_quota = ?, model_limits_enabled = ?, model_limits = ?, allow_ips = ?, "
    "\"group\" = ?, cross_group_retry = ? "
    "WHERE id = ? AND (? = 0 OR user_id = ?) AND deleted_at IS NULL";
static const char SQL_SET_STATUS[] =
    "UPDATE tokens SET status = ? WHERE id = ? AND deleted_at IS NULL";
static const char SQL_DELETE[] = "UPDATE tokens SET deleted_at = ? "
                                 "WHERE id = ? AND (? = 0 OR user_id = ?) AND deleted_at IS NULL";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM tokens WHERE user_id = ? AND deleted_at IS NULL";
static const char SQL_LIST[] = TOKEN_SELECT " WHERE user_id = ? AND deleted_at IS NULL "
                                            "ORDER BY id DESC LIMIT ? OFFSET ?";
static const char SQL_KEY_OF[] =
    "SELECT \"key\" FROM tokens WHERE id = ? AND user_id = ? AND deleted_at IS NULL";

void mt_token_init(struct mt_token *t)
{
    memset(t, 0, sizeof(*t));
    t->status = MT_TOKEN_ENABLED;
    t->expired_time = -1;
    t->group = "";
}

void mt_token_cleanup(struct mt_token *t)
{
    mt_store__row_cleanup(&token_desc, t);
}

void mt_token_list_cleanup(struct mt_token_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&token_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

/* The stored form of a client's key: without "sk-" and without a "-<channel>" pin. */
static size_t key_span(const char *key, const char **start)
{
    if (strncmp(key, "sk-", 3) == 0)
        key += 3;
    *start = key;
    return strcspn(key, "-");
}

int mt_store_token_get_by_key(struct mt_store *st, const char *key, struct mt_token *out)
{
    char buf[MT_TOKEN_KEY_MAX + 1];
    const char *k;
    size_t n;
    int rc;

    if (!st || !key || !out)
        return CM_ERR_INVAL;
    n = key_span(key, &k);
    if (n == 0 || n > MT_TOKEN_KEY_MAX)
        return CM_ERR_NOTFOUND;
    memcpy(buf, k, n);
    buf[n] = '\0';
    rc = mt_store__read_one(st, SQL_BY_KEY, &token_desc, out, "s", buf);
    cm_crypto_memzero(buf, sizeof(buf));
    return rc;
}

int mt_store_token_get(struct mt_store *st, int64_t id, int64_t user_id, struct mt_token *out)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    if (user_id)
        return mt_store__read_one(st, SQL_BY_ID_USER, &token_desc, out, "II", id, user_id);
    return mt_store__read_one(st, SQL_BY_ID, &token_desc, out, "I", id);
}

int mt_store_token_insert(struct mt_store *st, const struct mt_token *t, int64_t *id, char *key_out,
                          size_t key_len)
{
    char key[MT_TOKEN_KEY_MAX + 1];
    struct mt_token row;
    struct mt_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int64_t new_id = 0, now;
    int rc;

    if (!st || !t || t->user_id <= 0)
        return CM_ERR_INVAL;
    if (t->key && (strlen(t->key) > MT_TOKEN_KEY_MAX || strchr(t->key, '-')))
        return CM_ERR_INVAL; /* '-' separates a channel pin ("sk-KEY-12") */
    if (key_out && key_len < MT_TOKEN_KEY_MAX + 1)
        return CM_ERR_LIMIT;
    row = *t;
    row.deleted_at = NULL;
    now = mt_store__now(st);
    if (!row.created_time)
        row.created_time = now;
    if (!row.accessed_time)
        row.accessed_time = now;
    if (!row.key || !*row.key) {
        rc = cm_crypto_random_key(key, sizeof(key), CM_CRYPTO_KEY_LEN);
        if (rc)
            return rc;
        row.key = key;
    }
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        goto wipe;
    rc = mt_store__stmt(c, SQL_INSERT, &s);
    if (rc == CM_OK && (sqlite3_bind_int64(s, 1, row.user_id) != SQLITE_OK ||
                        mt_store__row_bind(s, &token_desc, 2, 2, &row) < 0))
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind token");
    if (rc == CM_OK)
        rc = mt_store__int(c, s, &new_id);
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INTERNAL;
    mt_store__done(s);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK) {
        if (id)
            *id = new_id;
        if (key_out)
            snprintf(key_out, key_len, "%s", row.key);
    }
wipe:
    cm_crypto_memzero(key, sizeof(key));
    return rc;
}

int mt_store_token_update(struct mt_store *st, const struct mt_token *t)
{
    int64_t n = 0;
    int rc;
    if (!st || !t)
        return CM_ERR_INVAL;
    rc = mt_store__write(st, SQL_UPDATE, &n, "siIIiisssiIII", t->name, t->status, t->expired_time,
                         t->remain_quota, t->unlimited_quota != 0, t->model_limits_enabled != 0,
                         t->model_limits, t->allow_ips, t->group, t->cross_group_retry != 0, t->id,
                         t->user_id, t->user_id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    return rc;
}

int mt_store_token_set_status(struct mt_store *st, int64_t id, int status)
{
    int64_t n = 0;
    int rc;
    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__write(st, SQL_SET_STATUS, &n, "iI", status, id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    return rc;
}

int mt_store_token_delete(struct mt_store *st, int64_t id, int64_t user_id)
{
    if (!st)
        return CM_ERR_INVAL;
    return mt_store__soft_delete(st, SQL_DELETE, "III", id, user_id, user_id);
}

int mt_store_token_delete_many(struct mt_store *st, int64_t user_id, const int64_t *ids, size_t n,
                               int64_t *deleted)
{
    struct mt_conn *c = NULL;
    char now[40];
    int64_t total = 0;
    int rc;

    if (!st || (n && !ids) || n > MT_STORE_LIST_MAX)
        return CM_ERR_INVAL;
    mt_store__datetime(st, now, sizeof(now));
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        int64_t ch = 0;
        rc = mt_store__write_on(c, SQL_DELETE, &ch, "sIII", now, ids[i], user_id, user_id);
        total += ch;
    }
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && deleted)
        *deleted = total;
    return rc;
}

int mt_store_token_count(struct mt_store *st, int64_t user_id, int64_t *out)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return mt_store__read_int(st, SQL_COUNT, out, "I", user_id);
}

static int finish_list(int rc, struct mt_rows *r, int64_t total, struct mt_token_list *out)
{
    if (mt_store__rows_keep(rc, &token_desc, r))
        return rc;
    out->items = r->items;
    out->n = r->n;
    out->total = total;
    return CM_OK;
}

int mt_store_token_list(struct mt_store *st, int64_t user_id, int64_t offset, int limit,
                        struct mt_token_list *out)
{
    struct mt_rows r = {0};
    int64_t total = 0;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    rc = mt_store__read_page(st, SQL_COUNT, SQL_LIST, &token_desc, offset, limit, &r, &total, "I",
                             user_id);
    return finish_list(rc, &r, total, out);
}

int mt_store_token_search(struct mt_store *st, int64_t user_id, const char *name, const char *key,
                          int limit, struct mt_token_list *out)
{
    struct mt_where w;
    struct mt_rows r = {0};
    int64_t total = 0;
    char *p = NULL;
    int rc;

    if (!st || !out || mt_store__check_page(0, limit))
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    rc = mt_store__where(&w, "user_id = ? AND deleted_at IS NULL", "I", user_id);
    if (rc == CM_OK && name && *name) {
        rc = mt_store__like(name, 0, &p);
        if (rc == CM_OK)
            rc = mt_store__where(&w, "name LIKE ? ESCAPE '!'", "o", p);
    }
    if (rc == CM_OK && key && *key) {
        rc = mt_store__like(strncmp(key, "sk-", 3) == 0 ? key + 3 : key, 0, &p);
        if (rc == CM_OK)
            rc = mt_store__where(&w, "\"key\" LIKE ? ESCAPE '!'", "o", p);
    }
    if (rc == CM_OK)
        rc = mt_store__where_page(st, "SELECT count(*) FROM tokens", TOKEN_SELECT, &w,
                                  " ORDER BY id DESC", 0, limit, &token_desc, &r, &total);
    mt_store__where_cleanup(&w);
    return finish_list(rc, &r, total, out);
}

void mt_token_keys_free(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++) {
        if (keys[i]) {
            cm_crypto_memzero(keys[i], strlen(keys[i]));
            cm_free(keys[i]);
        }
    }
    cm_free(keys);
}

int mt_store_token_keys(struct mt_store *st, int64_t user_id, const int64_t *ids, size_t n,
                        char ***keys)
{
    struct mt_conn *c;
    char **v;
    int rc = CM_OK;

    if (!st || !keys || (n && !ids) || n > MT_STORE_LIST_MAX)
        return CM_ERR_INVAL;
    v = cm_calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return CM_ERR_NOMEM;
    c = mt_store__rd_get(st);
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        sqlite3_stmt *s = NULL;
        int src;
        rc = mt_store__stmt(c, SQL_KEY_OF, &s);
        if (rc)
            break;
        sqlite3_bind_int64(s, 1, ids[i]);
        sqlite3_bind_int64(s, 2, user_id);
        src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(s, 0);
            v[i] = cm_strdup(k ? k : "");
            if (!v[i])
                rc = CM_ERR_NOMEM;
        } else if (src != SQLITE_DONE) {
            rc = mt_store__err(c, src, "token keys");
        }
        mt_store__done(s);
    }
    mt_store__rd_put(st, c);
    if (rc) {
        mt_token_keys_free(v, n);
        return rc;
    }
    *keys = v;
    return CM_OK;
}
