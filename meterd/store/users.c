/* SPDX-License-Identifier: MIT */
/*
 * users.c - SQL of the users table (contracts in users.h). Columns are listed once in
 * USER_COLS: the SELECT list, the INSERT list and the row mapper all come from it, so
 * they cannot drift apart. Soft-deleted rows (deleted_at NOT NULL) are skipped except
 * where users.h says otherwise.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <string.h>

/* every column but id and username: (field, SQL name, type) */
#define USER_COLS(X)                                                                               \
    X(password, "password", TEXT)                                                                  \
    X(display_name, "display_name", TEXT)                                                          \
    X(role, "role", INT)                                                                           \
    X(status, "status", INT)                                                                       \
    X(email, "email", TEXT)                                                                        \
    X(github_id, "github_id", TEXT)                                                                \
    X(discord_id, "discord_id", TEXT)                                                              \
    X(oidc_id, "oidc_id", TEXT)                                                                    \
    X(wechat_id, "wechat_id", TEXT)                                                                \
    X(telegram_id, "telegram_id", TEXT)                                                            \
    X(linux_do_id, "linux_do_id", TEXT)                                                            \
    X(access_token, "access_token", TEXTN)                                                         \
    X(quota, "quota", I64)                                                                         \
    X(used_quota, "used_quota", I64)                                                               \
    X(request_count, "request_count", I64)                                                         \
    X(group, "\"group\"", TEXT)                                                                    \
    X(aff_code, "aff_code", TEXTN)                                                                 \
    X(aff_count, "aff_count", I64)                                                                 \
    X(aff_quota, "aff_quota", I64)                                                                 \
    X(aff_history, "aff_history", I64)                                                             \
    X(inviter_id, "inviter_id", I64)                                                               \
    X(deleted_at, "deleted_at", TEXTN)                                                             \
    X(setting, "setting", TEXT)                                                                    \
    X(remark, "remark", TEXT)                                                                      \
    X(stripe_customer, "stripe_customer", TEXT)                                                    \
    X(created_at, "created_at", I64)                                                               \
    X(last_login_at, "last_login_at", I64)

#define SEL(f, sql, t) ", " sql
#define PH(f, sql, t) ", ?"
#define DESC(f, sql, t) {#f, offsetof(struct mt_user, f), MT_C_##t},

static const struct mt_col user_cols[] = {
    {"id", offsetof(struct mt_user, id), MT_C_I64},
    {"username", offsetof(struct mt_user, username), MT_C_TEXT},
    USER_COLS(DESC)};
static const struct mt_rowdesc user_desc = {user_cols, sizeof(user_cols) / sizeof(user_cols[0]),
                                            sizeof(struct mt_user), offsetof(struct mt_user, _mem)};

#define USER_SELECT "SELECT id, username" USER_COLS(SEL) " FROM users"

static const char SQL_BY_ID[] = USER_SELECT " WHERE id = ? AND deleted_at IS NULL";
static const char SQL_BY_ID_ANY[] = USER_SELECT " WHERE id = ?";
static const char SQL_BY_USERNAME[] = USER_SELECT " WHERE username = ? AND deleted_at IS NULL";
static const char SQL_BY_LOGIN[] =
    USER_SELECT " WHERE (username = ? OR (email = ? AND email <> '')) AND deleted_at IS NULL"
                " ORDER BY CASE WHEN username = ? THEN 0 ELSE 1 END, id LIMIT 1";
static const char SQL_BY_ACCESS_TOKEN[] =
    USER_SELECT " WHERE access_token = ? AND deleted_at IS NULL";
static const char SQL_USERNAME_TAKEN[] = "SELECT count(*) FROM users WHERE username = ?";
static const char SQL_ROOT_EXISTS[] =
    "SELECT count(*) FROM users WHERE role = 100 AND deleted_at IS NULL";
static const char SQL_AFF_TAKEN[] = "SELECT count(*) FROM users WHERE aff_code = ?";
static const char SQL_INSERT[] =
    "INSERT INTO users (username" USER_COLS(SEL) ") VALUES (?" USER_COLS(PH) ") RETURNING id";
static const char SQL_EDIT[] = "UPDATE users SET username = ?, display_name = ?, \"group\" = ?, "
                               "remark = ? WHERE id = ?";
static const char SQL_SET_PASSWORD[] = "UPDATE users SET password = ? WHERE id = ?";
static const char SQL_SET_STATUS[] = "UPDATE users SET status = ? WHERE id = ?";
static const char SQL_SET_ROLE[] = "UPDATE users SET role = ? WHERE id = ?";
static const char SQL_SET_SETTING[] = "UPDATE users SET setting = ? WHERE id = ?";
static const char SQL_SET_LAST_LOGIN[] = "UPDATE users SET last_login_at = ? WHERE id = ?";
static const char SQL_SET_ACCESS_TOKEN[] = "UPDATE users SET access_token = ? WHERE id = ?";
static const char SQL_QUOTA_ADD[] = "UPDATE users SET quota = quota + ? WHERE id = ?";
static const char SQL_QUOTA_GET[] = "SELECT quota FROM users WHERE id = ?";
static const char SQL_QUOTA_SET[] = "UPDATE users SET quota = ? WHERE id = ?";
static const char SQL_SOFT_DELETE[] =
    "UPDATE users SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL";
static const char SQL_DELETE[] = "DELETE FROM users WHERE id = ?";
static const char SQL_COUNT[] = "SELECT count(*) FROM users WHERE deleted_at IS NULL";
static const char SQL_COUNT_ALL[] = "SELECT count(*) FROM users";
static const char SQL_LIST[] = USER_SELECT " ORDER BY id DESC LIMIT ? OFFSET ?";

void mt_user_init(struct mt_user *u)
{
    memset(u, 0, sizeof(*u));
    u->role = MT_ROLE_COMMON;
    u->status = MT_USER_ENABLED;
    u->group = "default";
}

void mt_user_cleanup(struct mt_user *u)
{
    mt_store__row_cleanup(&user_desc, u);
}

void mt_user_list_cleanup(struct mt_user_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&user_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

int mt_store_user_get(struct mt_store *st, int64_t id, int with_deleted, struct mt_user *out)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return mt_store__read_one(st, with_deleted ? SQL_BY_ID_ANY : SQL_BY_ID, &user_desc, out, "I",
                              id);
}

int mt_store_user_get_by_username(struct mt_store *st, const char *username, struct mt_user *out)
{
    if (!st || !out || !username)
        return CM_ERR_INVAL;
    return mt_store__read_one(st, SQL_BY_USERNAME, &user_desc, out, "s", username);
}

int mt_store_user_get_by_login(struct mt_store *st, const char *name, struct mt_user *out)
{
    if (!st || !out || !name)
        return CM_ERR_INVAL;
    if (!*name)
        return CM_ERR_NOTFOUND;
    return mt_store__read_one(st, SQL_BY_LOGIN, &user_desc, out, "sss", name, name, name);
}

int mt_store_user_get_by_access_token(struct mt_store *st, const char *token, struct mt_user *out)
{
    if (!st || !out || !token)
        return CM_ERR_INVAL;
    if (!*token)
        return CM_ERR_NOTFOUND;
    return mt_store__read_one(st, SQL_BY_ACCESS_TOKEN, &user_desc, out, "s", token);
}

int mt_store_user_username_taken(struct mt_store *st, const char *username, int *taken)
{
    int64_t n = 0;
    int rc;
    if (!st || !username || !taken)
        return CM_ERR_INVAL;
    rc = mt_store__read_int(st, SQL_USERNAME_TAKEN, &n, "s", username);
    if (rc == CM_OK)
        *taken = n > 0;
    return rc;
}

int mt_store_user_root_exists(struct mt_store *st, int *out)
{
    int64_t n = 0;
    int rc;
    if (!st || !out)
        return CM_ERR_INVAL;
    rc = mt_store__read_int(st, SQL_ROOT_EXISTS, &n, "");
    if (rc == CM_OK)
        *out = n > 0;
    return rc;
}

/* A free 4-character invite code (NewAPI's aff_code), checked inside the transaction. */
static int new_aff_code(struct mt_conn *c, char code[8])
{
    for (int tries = 0; tries < 64; tries++) {
        int64_t n = 0;
        int rc = cm_crypto_random_key(code, 8, tries < 32 ? 4 : 6);
        if (rc)
            return rc;
        rc = mt_store__read_int_on(c, SQL_AFF_TAKEN, &n, "s", code);
        if (rc)
            return rc;
        if (n == 0)
            return CM_OK;
    }
    return CM_ERR_EXISTS;
}

int mt_store_user_insert(struct mt_store *st, const struct mt_user *u, const struct mt_log *log,
                         int64_t *id)
{
    struct mt_user row;
    struct mt_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    char aff[8];
    int64_t new_id = 0;
    int rc;

    if (!st || !u || !u->username || !*u->username || !u->password || !*u->password)
        return CM_ERR_INVAL;
    row = *u;
    row.deleted_at = NULL;
    if (!row.created_at)
        row.created_at = mt_store__now(st);
    if (!row.setting)
        row.setting = "";
    if (row.access_token && !*row.access_token)
        row.access_token = NULL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    if (!row.aff_code || !*row.aff_code) {
        rc = new_aff_code(c, aff);
        if (rc)
            goto out;
        row.aff_code = aff;
    }
    rc = mt_store__stmt(c, SQL_INSERT, &s);
    if (rc)
        goto out;
    if (sqlite3_bind_text(s, 1, row.username, -1, SQLITE_STATIC) != SQLITE_OK ||
        mt_store__row_bind(s, &user_desc, 2, 2, &row) < 0) {
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind user");
        goto out;
    }
    rc = mt_store__int(c, s, &new_id);
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INTERNAL;
    mt_store__done(s);
    s = NULL;
    if (rc == CM_OK && log) {
        struct mt_log l = *log;
        l.user_id = new_id;
        rc = mt_store__log_insert(st, c, &l, NULL);
    }
out:
    mt_store__done(s);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && id)
        *id = new_id;
    return rc;
}

int mt_store_user_edit(struct mt_store *st, const struct mt_user *u)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st || !u || !u->username || !*u->username)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_EDIT, &n, "ssssI", u->username, u->display_name, u->group,
                            u->remark, u->id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK && u->password && *u->password)
        rc = mt_store__write_on(c, SQL_SET_PASSWORD, NULL, "sI", u->password, u->id);
    return mt_store__wr_end(st, c, rc);
}

int mt_store_user_set_status(struct mt_store *st, int64_t id, int status)
{
    return st ? mt_store__write_one(st, SQL_SET_STATUS, "iI", status, id) : CM_ERR_INVAL;
}

int mt_store_user_set_role(struct mt_store *st, int64_t id, int role)
{
    return st ? mt_store__write_one(st, SQL_SET_ROLE, "iI", role, id) : CM_ERR_INVAL;
}

int mt_store_user_set_password(struct mt_store *st, int64_t id, const char *hash)
{
    if (!st || !hash || !*hash)
        return CM_ERR_INVAL;
    return mt_store__write_one(st, SQL_SET_PASSWORD, "sI", hash, id);
}

int mt_store_user_set_setting(struct mt_store *st, int64_t id, const char *json)
{
    return st ? mt_store__write_one(st, SQL_SET_SETTING, "sI", json, id) : CM_ERR_INVAL;
}

int mt_store_user_set_last_login(struct mt_store *st, int64_t id, int64_t when)
{
    return st ? mt_store__write_one(st, SQL_SET_LAST_LOGIN, "II", when, id) : CM_ERR_INVAL;
}

int mt_store_user_set_access_token(struct mt_store *st, int64_t id, const char *token)
{
    if (!st)
        return CM_ERR_INVAL;
    return mt_store__write_one(st, SQL_SET_ACCESS_TOKEN, "nI", token && *token ? token : NULL, id);
}

int mt_store_user_quota_add(struct mt_store *st, int64_t id, int64_t delta,
                            const struct mt_log *log)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_QUOTA_ADD, &n, "II", delta, id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK && log)
        rc = mt_store__log_insert(st, c, log, NULL);
    return mt_store__wr_end(st, c, rc);
}

int mt_store_user_quota_set(struct mt_store *st, int64_t id, int64_t quota, int64_t *old,
                            const struct mt_log *log)
{
    struct mt_conn *c = NULL;
    int64_t prev = 0;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__read_int_on(c, SQL_QUOTA_GET, &prev, "I", id);
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_QUOTA_SET, NULL, "II", quota, id);
    if (rc == CM_OK && log)
        rc = mt_store__log_insert(st, c, log, NULL);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && old)
        *old = prev;
    return rc;
}

int mt_store_user_soft_delete(struct mt_store *st, int64_t id)
{
    return st ? mt_store__soft_delete(st, SQL_SOFT_DELETE, "I", id) : CM_ERR_INVAL;
}

int mt_store_user_delete(struct mt_store *st, int64_t id)
{
    return st ? mt_store__write_one(st, SQL_DELETE, "I", id) : CM_ERR_INVAL;
}

int mt_store_user_count(struct mt_store *st, int64_t *out)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return mt_store__read_int(st, SQL_COUNT, out, "");
}

/* Hands a list's rows to @p out, or frees them on error. */
static int finish_list(int rc, struct mt_rows *r, int64_t total, struct mt_user_list *out)
{
    if (mt_store__rows_keep(rc, &user_desc, r))
        return rc;
    out->items = r->items;
    out->n = r->n;
    out->total = total;
    return CM_OK;
}

int mt_store_user_list(struct mt_store *st, int64_t offset, int limit, struct mt_user_list *out)
{
    struct mt_rows r = {0};
    int64_t total = 0;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    rc =
        mt_store__read_page(st, SQL_COUNT_ALL, SQL_LIST, &user_desc, offset, limit, &r, &total, "");
    return finish_list(rc, &r, total, out);
}

int mt_store_user_search(struct mt_store *st, const struct mt_user_filter *f, int64_t offset,
                         int limit, struct mt_user_list *out)
{
    struct mt_where w;
    struct mt_rows r = {0};
    int64_t total = 0, idv = 0;
    int rc = CM_OK;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    rc = mt_store__where(&w, "deleted_at IS NULL", "");
    if (rc == CM_OK && f && f->keyword && *f->keyword) {
        char *p1 = NULL, *p2 = NULL, *p3 = NULL;
        if (mt_store__like(f->keyword, 1, &p1) || mt_store__like(f->keyword, 1, &p2) ||
            mt_store__like(f->keyword, 1, &p3)) {
            cm_free(p1);
            cm_free(p2);
            cm_free(p3);
            rc = CM_ERR_NOMEM;
        } else if (mt_store__parse_id(f->keyword, &idv)) {
            rc = mt_store__where(&w,
                                 "id = ? OR username LIKE ? ESCAPE '!' OR email LIKE ? ESCAPE "
                                 "'!' OR display_name LIKE ? ESCAPE '!'",
                                 "Iooo", idv, p1, p2, p3);
        } else {
            rc = mt_store__where(&w,
                                 "username LIKE ? ESCAPE '!' OR email LIKE ? ESCAPE '!' OR "
                                 "display_name LIKE ? ESCAPE '!'",
                                 "ooo", p1, p2, p3);
        }
    }
    if (rc == CM_OK && f && f->group && *f->group)
        rc = mt_store__where(&w, "\"group\" = ?", "s", f->group);
    if (rc == CM_OK && f && f->role >= 0)
        rc = mt_store__where(&w, "role = ?", "I", (int64_t)f->role);
    if (rc == CM_OK && f && f->status > 0)
        rc = mt_store__where(&w, "status = ?", "I", (int64_t)f->status);
    if (rc == CM_OK)
        rc = mt_store__where_page(st, "SELECT count(*) FROM users", USER_SELECT, &w,
                                  " ORDER BY id DESC", offset, limit, &user_desc, &r, &total);
    mt_store__where_cleanup(&w);
    return finish_list(rc, &r, total, out);
}
