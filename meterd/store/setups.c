/* SPDX-License-Identifier: MIT */
/*
 * setups.c - SQL of the setups table (contracts in setups.h).
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"

static const char SQL_GET[] = "SELECT version, initialized_at FROM setups ORDER BY id LIMIT 1";
static const char SQL_COUNT[] = "SELECT count(*) FROM setups";
static const char SQL_ROOT[] = "SELECT count(*) FROM users WHERE role = 100 AND deleted_at IS NULL";
static const char SQL_INSERT[] = "INSERT INTO setups (version, initialized_at) VALUES (?, ?)";

int mt_store_setup_get(struct mt_store *st, int *done, char **version, int64_t *initialized_at)
{
    struct mt_conn *c;
    sqlite3_stmt *s = NULL;
    char *v = NULL;
    int64_t at = 0;
    int found = 0, rc, src;

    if (!st || !done)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    rc = mt_store__stmt(c, SQL_GET, &s);
    if (rc == CM_OK) {
        src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            found = 1;
            at = sqlite3_column_int64(s, 1);
            if (version) {
                v = cm_strdup(t ? t : "");
                if (!v)
                    rc = CM_ERR_NOMEM;
            }
        } else if (src != SQLITE_DONE) {
            rc = mt_store__err(c, src, "setups");
        }
    }
    mt_store__done(s);
    mt_store__rd_put(st, c);
    if (rc)
        return rc;
    *done = found;
    if (version)
        *version = v;
    if (initialized_at)
        *initialized_at = at;
    return CM_OK;
}

/* Inserts the row unless one exists; *@p inserted tells which. On the caller's transaction. */
static int insert_once(struct mt_store *st, struct mt_conn *c, const char *version, int *inserted)
{
    int64_t n = 0;
    int rc = mt_store__read_int_on(c, SQL_COUNT, &n, "");
    *inserted = 0;
    if (rc || n > 0)
        return rc;
    rc = mt_store__write_on(c, SQL_INSERT, NULL, "sI", version, mt_store__now(st));
    if (rc == CM_OK)
        *inserted = 1;
    return rc;
}

int mt_store_setup_insert(struct mt_store *st, const char *version)
{
    struct mt_conn *c = NULL;
    int inserted = 0, rc;

    if (!st || !version)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = insert_once(st, c, version, &inserted);
    if (rc == CM_OK && !inserted)
        rc = CM_ERR_EXISTS;
    return mt_store__wr_end(st, c, rc);
}

int mt_store_setup_check(struct mt_store *st, const char *version, int *done)
{
    struct mt_conn *c = NULL;
    int64_t setups = 0, roots = 0;
    int inserted = 0, rc;

    if (!st || !version)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__read_int_on(c, SQL_COUNT, &setups, "");
    if (rc == CM_OK && setups == 0)
        rc = mt_store__read_int_on(c, SQL_ROOT, &roots, "");
    if (rc == CM_OK && setups == 0 && roots > 0)
        rc = insert_once(st, c, version, &inserted);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && done)
        *done = setups > 0 || inserted;
    return rc;
}
