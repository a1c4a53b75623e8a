/* SPDX-License-Identifier: MIT */
/* admin_users.c - SQL for the admin API's user routes (contracts in admin_users.h). */
#include "store/admin_users.h"

#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_NAME_TAKEN[] = "SELECT count(*) FROM users WHERE username = ? AND id <> ?";
static const char SQL_SET_PROFILE[] =
    "UPDATE users SET username = COALESCE(?, username), display_name = COALESCE(?, display_name) "
    "WHERE id = ? AND deleted_at IS NULL";
static const char SQL_BY_AFF[] = "SELECT id FROM users WHERE aff_code = ? AND deleted_at IS NULL "
                                 "ORDER BY id LIMIT 1";
static const char SQL_AFF_OF[] = "SELECT aff_code FROM users WHERE id = ? AND deleted_at IS NULL";
static const char SQL_AFF_TAKEN[] = "SELECT count(*) FROM users WHERE aff_code = ?";
static const char SQL_SET_AFF[] = "UPDATE users SET aff_code = ? WHERE id = ?";
static const char SQL_PURGE_USER[] = "DELETE FROM users WHERE id = ?";
static const char SQL_PURGE_TOKENS[] =
    "UPDATE tokens SET deleted_at = ? WHERE user_id = ? AND deleted_at IS NULL";
static const char SQL_GROUP_MODELS[] =
    "SELECT DISTINCT model FROM abilities WHERE \"group\" = ? AND enabled = " MT_SQL_TRUE;

int mt_store_user_set_profile(struct mt_store *st, int64_t id, const char *username,
                              const char *display_name)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st || (username && !*username))
        return CM_ERR_INVAL;
    if (!username && !display_name)
        return CM_OK;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    if (username) {
        rc = mt_store__read_int_on(c, SQL_NAME_TAKEN, &n, "sI", username, id);
        if (rc == CM_OK && n > 0)
            rc = CM_ERR_EXISTS;
    }
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_SET_PROFILE, &n, "nnI", username, display_name, id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    return mt_store__wr_end(st, c, rc);
}

int mt_store_user_purge(struct mt_store *st, int64_t id, int64_t *tokens)
{
    struct mt_conn *c = NULL;
    int64_t n = 0, t = 0;
    char now[40];
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    mt_store__datetime(st, now, sizeof now);
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_PURGE_USER, &n, "I", id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_PURGE_TOKENS, &t, "sI", now, id);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && tokens)
        *tokens = t;
    return rc;
}

int mt_store_user_id_by_aff_code(struct mt_store *st, const char *code, int64_t *id)
{
    if (!st || !code || !id)
        return CM_ERR_INVAL;
    if (!*code)
        return CM_ERR_NOTFOUND;
    return mt_store__read_int(st, SQL_BY_AFF, id, "s", code);
}

/* The text in column 0 of one row of @p sql bound to @p id, into @p out. */
static int read_text_on(struct mt_conn *c, const char *sql, int64_t id, char *out, size_t outlen)
{
    sqlite3_stmt *s = NULL;
    int rc = mt_store__stmt(c, sql, &s), src;
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        snprintf(out, outlen, "%s", v ? v : "");
    } else {
        rc = src == SQLITE_DONE ? CM_ERR_NOTFOUND : mt_store__err(c, src, "aff code");
    }
    mt_store__done(s);
    return rc;
}

int mt_store_user_ensure_aff_code(struct mt_store *st, int64_t id, char *out, size_t outlen)
{
    struct mt_conn *c = NULL;
    char code[MT_AFF_CODE_MAX + 1];
    int rc;

    if (!st || !out || outlen < MT_AFF_CODE_MAX + 1)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = read_text_on(c, SQL_AFF_OF, id, code, sizeof code);
    for (int tries = 0; rc == CM_OK && !code[0] && tries < 64; tries++) {
        int64_t n = 0;
        rc = cm_crypto_random_key(code, sizeof code, tries < 32 ? 4 : 6);
        if (rc == CM_OK)
            rc = mt_store__read_int_on(c, SQL_AFF_TAKEN, &n, "s", code);
        if (rc == CM_OK && n > 0)
            code[0] = '\0';
        else if (rc == CM_OK)
            rc = mt_store__write_on(c, SQL_SET_AFF, NULL, "sI", code, id);
    }
    if (rc == CM_OK && !code[0])
        rc = CM_ERR_EXISTS;
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK)
        snprintf(out, outlen, "%s", code);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every model of @p group to *v (cnt/cap), unsorted, duplicates possible. */
static int group_models(struct mt_conn *c, const char *group, char ***v, size_t *cnt, size_t *cap)
{
    sqlite3_stmt *s = NULL;
    int rc = mt_store__stmt(c, SQL_GROUP_MODELS, &s), src = SQLITE_DONE;
    if (rc)
        return rc;
    if (mt_store__bind_text(s, 1, group, 0) != SQLITE_OK) {
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind group");
        goto out;
    }
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(s, 0);
        if (*cnt == *cap) {
            size_t ncap = *cap ? *cap * 2 : 32;
            char **nv = cm_realloc(*v, ncap * sizeof **v);
            if (!nv) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
            *v = nv;
            *cap = ncap;
        }
        (*v)[*cnt] = cm_strdup(m ? m : "");
        if (!(*v)[*cnt]) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        (*cnt)++;
    }
    if (src != SQLITE_DONE)
        rc = mt_store__err(c, src, "group models");
out:
    mt_store__done(s);
    return rc;
}

int mt_store_models_of_groups(struct mt_store *st, const char *const *groups, size_t n,
                              char ***models, size_t *nmodels)
{
    struct mt_conn *c;
    char **v = NULL;
    size_t cnt = 0, cap = 0, w = 0;
    int rc = CM_OK;

    if (!st || (n && !groups) || !models || !nmodels)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    for (size_t i = 0; rc == CM_OK && i < n; i++)
        rc = groups[i] ? group_models(c, groups[i], &v, &cnt, &cap) : CM_ERR_INVAL;
    mt_store__rd_put(st, c);
    if (rc) {
        mt_store_strings_free(v, cnt);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    for (size_t i = 0; i < cnt; i++) {
        if (w && strcmp(v[w - 1], v[i]) == 0)
            cm_free(v[i]);
        else
            v[w++] = v[i];
    }
    *models = v;
    *nmodels = w;
    return CM_OK;
}
