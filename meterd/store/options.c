/* SPDX-License-Identifier: MIT */
/*
 * options.c - SQL of the options table (contracts in options.h). Values may be secrets
 * (payment keys, SMTP tokens): never logged here.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <string.h>

static const char SQL_LIST[] = "SELECT \"key\", value FROM options ORDER BY \"key\"";
static const char SQL_GET[] = "SELECT value FROM options WHERE \"key\" = ?";
static const char SQL_SET[] = "INSERT INTO options (\"key\", value) VALUES (?, ?) "
                              "ON CONFLICT (\"key\") DO UPDATE SET value = excluded.value";
static const char SQL_DELETE[] = "DELETE FROM options WHERE \"key\" = ?";

void mt_option_list_cleanup(struct mt_option_list *l)
{
    if (!l)
        return;
    cm_free(l->items);
    cm_free(l->_mem);
    memset(l, 0, sizeof(*l));
}

/* Copies every (key, value) of @p s into one string block plus an item array. */
static int read_all(struct mt_conn *c, sqlite3_stmt *s, struct mt_option_list *out)
{
    struct cm_buf b;
    size_t n = 0, cap = 0;
    size_t *offs = NULL; /* pairs of offsets into b */
    int rc = CM_OK, src;

    cm_buf_init(&b, (size_t)1 << 30);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            size_t *no = cm_realloc(offs, ncap * 2 * sizeof(*offs));
            if (!no) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
            offs = no;
            cap = ncap;
        }
        offs[2 * n] = b.len;
        rc = cm_buf_append(&b, k ? k : "", strlen(k ? k : "") + 1);
        offs[2 * n + 1] = b.len;
        if (rc == CM_OK)
            rc = cm_buf_append(&b, v ? v : "", strlen(v ? v : "") + 1);
        if (rc)
            goto out;
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = mt_store__err(c, src, "options");
        goto out;
    }
    out->items = cm_calloc(n ? n : 1, sizeof(*out->items));
    if (!out->items) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    out->_mem = cm_buf_release(&b, NULL);
    if (!out->_mem) {
        cm_free(out->items);
        out->items = NULL;
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        out->items[i].key = (const char *)out->_mem + offs[2 * i];
        out->items[i].value = (const char *)out->_mem + offs[2 * i + 1];
    }
    out->n = n;
out:
    cm_free(offs);
    cm_buf_cleanup(&b);
    return rc;
}

int mt_store_option_list(struct mt_store *st, struct mt_option_list *out)
{
    struct mt_option_list l = {0};
    struct mt_conn *c;
    sqlite3_stmt *s = NULL;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    rc = mt_store__stmt(c, SQL_LIST, &s);
    if (rc == CM_OK)
        rc = read_all(c, s, &l);
    mt_store__done(s);
    mt_store__rd_put(st, c);
    if (rc == CM_OK)
        *out = l;
    return rc;
}

int mt_store_option_get(struct mt_store *st, const char *key, char **value)
{
    struct mt_conn *c;
    sqlite3_stmt *s = NULL;
    char *v = NULL;
    int rc, src;

    if (!st || !key || !value)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    rc = mt_store__stmt(c, SQL_GET, &s);
    if (rc)
        goto out;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        v = cm_strdup(t ? t : "");
        if (!v)
            rc = CM_ERR_NOMEM;
    } else if (src == SQLITE_DONE) {
        rc = CM_ERR_NOTFOUND;
    } else {
        rc = mt_store__err(c, src, "option");
    }
out:
    mt_store__done(s);
    mt_store__rd_put(st, c);
    if (rc == CM_OK)
        *value = v;
    return rc;
}

int mt_store_option_set(struct mt_store *st, const char *key, const char *value)
{
    struct mt_option kv = {key, value};
    return mt_store_option_set_many(st, &kv, 1);
}

int mt_store_option_set_many(struct mt_store *st, const struct mt_option *kv, size_t n)
{
    struct mt_conn *c = NULL;
    int rc;

    if (!st || (n && !kv))
        return CM_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!kv[i].key || !*kv[i].key)
            return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    for (size_t i = 0; rc == CM_OK && i < n; i++)
        rc = mt_store__write_on(c, SQL_SET, NULL, "ss", kv[i].key, kv[i].value);
    return mt_store__wr_end(st, c, rc);
}

int mt_store_option_delete(struct mt_store *st, const char *key)
{
    int64_t n = 0;
    int rc;
    if (!st || !key)
        return CM_ERR_INVAL;
    rc = mt_store__write(st, SQL_DELETE, &n, "s", key);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    return rc;
}
