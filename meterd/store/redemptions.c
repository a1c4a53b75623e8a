/* SPDX-License-Identifier: MIT */
/*
 * redemptions.c - SQL of redemption codes (contracts in redemptions.h). Redeeming runs
 * in one write transaction: the conditional "status = 1" UPDATE is what makes a code
 * single-use even when two redeem calls race. Keys never reach a log line.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <string.h>

#define RED_COLS(X)                                                                                \
    X(key, "\"key\"", TEXT)                                                                        \
    X(status, "status", INT)                                                                       \
    X(name, "name", TEXT)                                                                          \
    X(quota, "quota", I64)                                                                         \
    X(created_time, "created_time", I64)                                                           \
    X(redeemed_time, "redeemed_time", I64)                                                         \
    X(used_user_id, "used_user_id", I64)                                                           \
    X(deleted_at, "deleted_at", TEXTN)                                                             \
    X(expired_time, "expired_time", I64)

#define SEL(f, sql, t) ", " sql
#define PH(f, sql, t) ", ?"
#define DESC(f, sql, t) {#f, offsetof(struct mt_redemption, f), MT_C_##t},

static const struct mt_col red_cols[] = {
    {"id", offsetof(struct mt_redemption, id), MT_C_I64},
    {"user_id", offsetof(struct mt_redemption, user_id), MT_C_I64},
    RED_COLS(DESC)};
static const struct mt_rowdesc red_desc = {red_cols, sizeof(red_cols) / sizeof(red_cols[0]),
                                           sizeof(struct mt_redemption),
                                           offsetof(struct mt_redemption, _mem)};

#define RED_SELECT "SELECT id, user_id" RED_COLS(SEL) " FROM redemptions"

static const char SQL_INSERT[] =
    "INSERT INTO redemptions (user_id" RED_COLS(SEL) ") VALUES (?" RED_COLS(PH) ")";
static const char SQL_GET[] = RED_SELECT " WHERE id = ? AND deleted_at IS NULL";
static const char SQL_BY_KEY[] = RED_SELECT " WHERE \"key\" = ? AND deleted_at IS NULL";
static const char SQL_COUNT[] = "SELECT count(*) FROM redemptions WHERE deleted_at IS NULL";
static const char SQL_LIST[] =
    RED_SELECT " WHERE deleted_at IS NULL ORDER BY id DESC LIMIT ? OFFSET ?";
static const char SQL_UPDATE[] =
    "UPDATE redemptions SET name = ?, status = ?, quota = ?, redeemed_time = ?, "
    "expired_time = ? WHERE id = ? AND deleted_at IS NULL";
static const char SQL_DELETE[] =
    "UPDATE redemptions SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL";
static const char SQL_DELETE_INVALID[] =
    "UPDATE redemptions SET deleted_at = ? WHERE deleted_at IS NULL AND "
    "(status IN (2, 3) OR (expired_time <> 0 AND expired_time < ?))";
static const char SQL_USE[] = "UPDATE redemptions SET status = 3, redeemed_time = ?, "
                              "used_user_id = ? WHERE id = ? AND status = 1";
static const char SQL_USER_ADD[] =
    "UPDATE users SET quota = quota + ? WHERE id = ? AND deleted_at IS NULL";

void mt_redemption_cleanup(struct mt_redemption *r)
{
    mt_store__row_cleanup(&red_desc, r);
}

void mt_redemption_list_cleanup(struct mt_redemption_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&red_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

void mt_redemption_keys_free(char **keys, size_t n)
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

int mt_store_redemption_create(struct mt_store *st, int64_t user_id, const char *name,
                               int64_t quota, int64_t expired_time, int count, char ***keys)
{
    struct mt_conn *c = NULL;
    char **v = NULL;
    int64_t now;
    int rc;

    if (!st || !keys || count < 1 || count > MT_REDEMPTION_BATCH_MAX)
        return CM_ERR_INVAL;
    v = cm_calloc((size_t)count, sizeof(*v));
    if (!v)
        return CM_ERR_NOMEM;
    for (int i = 0; i < count; i++) {
        v[i] = cm_malloc(MT_REDEMPTION_KEY_LEN + 1);
        if (!v[i]) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        rc = cm_crypto_random_hex(v[i], MT_REDEMPTION_KEY_LEN + 1, MT_REDEMPTION_KEY_LEN / 2);
        if (rc)
            goto out;
    }
    now = mt_store__now(st);
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        goto out;
    for (int i = 0; rc == CM_OK && i < count; i++) {
        struct mt_redemption r = {0};
        sqlite3_stmt *s = NULL;
        r.user_id = user_id;
        r.key = v[i];
        r.status = MT_REDEMPTION_ENABLED;
        r.name = name;
        r.quota = quota;
        r.created_time = now;
        r.expired_time = expired_time;
        rc = mt_store__stmt(c, SQL_INSERT, &s);
        if (rc)
            break;
        if (mt_store__row_bind(s, &red_desc, 1, 1, &r) < 0)
            rc = mt_store__err(c, sqlite3_errcode(c->db), "bind redemption");
        else
            rc = mt_store__run(c, s, NULL);
        mt_store__done(s);
    }
    rc = mt_store__wr_end(st, c, rc);
out:
    if (rc) {
        mt_redemption_keys_free(v, (size_t)count);
        return rc;
    }
    *keys = v;
    return CM_OK;
}

int mt_store_redemption_get(struct mt_store *st, int64_t id, struct mt_redemption *out)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return mt_store__read_one(st, SQL_GET, &red_desc, out, "I", id);
}

static int finish_list(int rc, struct mt_rows *r, int64_t total, struct mt_redemption_list *out)
{
    if (mt_store__rows_keep(rc, &red_desc, r))
        return rc;
    out->items = r->items;
    out->n = r->n;
    out->total = total;
    return CM_OK;
}

int mt_store_redemption_list(struct mt_store *st, int64_t offset, int limit,
                             struct mt_redemption_list *out)
{
    struct mt_rows r = {0};
    int64_t total = 0;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    rc = mt_store__read_page(st, SQL_COUNT, SQL_LIST, &red_desc, offset, limit, &r, &total, "");
    return finish_list(rc, &r, total, out);
}

int mt_store_redemption_search(struct mt_store *st, const char *keyword, int64_t offset, int limit,
                               struct mt_redemption_list *out)
{
    struct mt_where w;
    struct mt_rows r = {0};
    int64_t total = 0, idv = 0;
    char *p = NULL;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    rc = mt_store__where(&w, "deleted_at IS NULL", "");
    if (rc == CM_OK && keyword && *keyword) {
        if (!mt_store__parse_id(keyword, &idv))
            idv = -1;
        rc = mt_store__like(keyword, 1, &p);
        if (rc == CM_OK)
            rc = mt_store__where(&w, "id = ? OR name LIKE ? ESCAPE '!'", "Io", idv, p);
    }
    if (rc == CM_OK)
        rc = mt_store__where_page(st, "SELECT count(*) FROM redemptions", RED_SELECT, &w,
                                  " ORDER BY id DESC", offset, limit, &red_desc, &r, &total);
    mt_store__where_cleanup(&w);
    return finish_list(rc, &r, total, out);
}

int mt_store_redemption_update(struct mt_store *st, const struct mt_redemption *r)
{
    if (!st || !r)
        return CM_ERR_INVAL;
    return mt_store__write_one(st, SQL_UPDATE, "siIIII", r->name, r->status, r->quota,
                               r->redeemed_time, r->expired_time, r->id);
}

int mt_store_redemption_delete(struct mt_store *st, int64_t id)
{
    return st ? mt_store__soft_delete(st, SQL_DELETE, "I", id) : CM_ERR_INVAL;
}

int mt_store_redemption_delete_invalid(struct mt_store *st, int64_t *deleted)
{
    char now[40];
    int64_t n = 0;
    int rc;
    if (!st)
        return CM_ERR_INVAL;
    mt_store__datetime(st, now, sizeof(now));
    rc = mt_store__write(st, SQL_DELETE_INVALID, &n, "sI", now, mt_store__now(st));
    if (rc == CM_OK && deleted)
        *deleted = n;
    return rc;
}

int mt_store_redeem(struct mt_store *st, const char *key, int64_t user_id, const struct mt_log *log,
                    int64_t *quota, int64_t *code_id, enum mt_redeem_fail *why)
{
    struct mt_redemption r = {0};
    struct mt_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    enum mt_redeem_fail fail = MT_REDEEM_OK;
    int64_t now, n = 0;
    int rc;

    if (!st || !key || !*key)
        return CM_ERR_INVAL;
    now = mt_store__now(st);
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__stmt(c, SQL_BY_KEY, &s);
    if (rc == CM_OK) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        rc = mt_store__one(c, s, &red_desc, &r);
    }
    mt_store__done(s);
    if (rc)
        goto out;
    if (r.status == MT_REDEMPTION_USED)
        fail = MT_REDEEM_USED;
    else if (r.status != MT_REDEMPTION_ENABLED)
        fail = MT_REDEEM_DISABLED;
    else if (r.expired_time != 0 && r.expired_time < now)
        fail = MT_REDEEM_EXPIRED;
    if (fail == MT_REDEEM_OK) {
        rc = mt_store__write_on(c, SQL_USE, &n, "III", now, user_id, r.id);
        if (rc == CM_OK && n == 0)
            fail = MT_REDEEM_USED;
    }
    if (rc == CM_OK && fail != MT_REDEEM_OK)
        rc = CM_ERR_DENIED;
    if (rc)
        goto out;
    rc = mt_store__write_on(c, SQL_USER_ADD, &n, "II", r.quota, user_id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK && log) {
        struct mt_log l = *log;
        l.user_id = user_id;
        l.quota = r.quota;
        l.created_at = now;
        rc = mt_store__log_insert(st, c, &l, NULL);
    }
out:
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK) {
        if (quota)
            *quota = r.quota;
        if (code_id)
            *code_id = r.id;
    } else if (rc == CM_ERR_DENIED && why) {
        *why = fail;
    }
    mt_redemption_cleanup(&r);
    return rc;
}
