/* SPDX-License-Identifier: MIT */
/*
 * channels.c - SQL of channels and abilities (contracts in channels.h). Every channel
 * write that changes what abilities derive from (models, group, status, priority,
 * weight, tag) touches abilities in the same transaction. Columns are listed once:
 * CHANNEL_EDIT (what an admin edit writes) and CHANNEL_STATS (what tests, balance
 * refreshes and billing write), "key" first and separate because lists leave it out.
 * Upstream keys never reach a log line.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <stdio.h>
#include <string.h>

#define CHANNEL_EDIT(X)                                                                            \
    X(type, "type", INT)                                                                           \
    X(open_ai_organization, "open_ai_organization", TEXT)                                          \
    X(test_model, "test_model", TEXT)                                                              \
    X(status, "status", INT)                                                                       \
    X(name, "name", TEXT)                                                                          \
    X(weight, "weight", I64)                                                                       \
    X(base_url, "base_url", TEXT)                                                                  \
    X(other, "other", TEXT)                                                                        \
    X(models, "models", TEXT)                                                                      \
    X(group, "\"group\"", TEXT)                                                                    \
    X(model_mapping, "model_mapping", TEXT)                                                        \
    X(status_code_mapping, "status_code_mapping", TEXT)                                            \
    X(priority, "priority", I64)                                                                   \
    X(auto_ban, "auto_ban", INT)                                                                   \
    X(other_info, "other_info", TEXT)                                                              \
    X(tag, "tag", TEXT)                                                                            \
    X(setting, "setting", TEXT)                                                                    \
    X(param_override, "param_override", TEXT)                                                      \
    X(header_override, "header_override", TEXT)                                                    \
    X(remark, "remark", TEXT)                                                                      \
    X(channel_info, "channel_info", TEXT)                                                          \
    X(settings, "settings", TEXT)

#define CHANNEL_STATS(X)                                                                           \
    X(created_time, "created_time", I64)                                                           \
    X(test_time, "test_time", I64)                                                                 \
    X(response_time, "response_time", I64)                                                         \
    X(balance, "balance", DBL)                                                                     \
    X(balance_updated_time, "balance_updated_time", I64)                                           \
    X(used_quota, "used_quota", I64)

#define SEL(f, sql, t) ", " sql
#define PH(f, sql, t) ", ?"
#define SET(f, sql, t) ", " sql " = ?"
#define DESC(f, sql, t) {#f, offsetof(struct mt_channel, f), MT_C_##t},

static const struct mt_col channel_cols[] = {{"id", offsetof(struct mt_channel, id), MT_C_I64},
                                             {"key", offsetof(struct mt_channel, key), MT_C_TEXT},
                                             CHANNEL_EDIT(DESC) CHANNEL_STATS(DESC)};
static const struct mt_rowdesc channel_desc = {
    channel_cols, sizeof(channel_cols) / sizeof(channel_cols[0]), sizeof(struct mt_channel),
    offsetof(struct mt_channel, _mem)};
/* the CHANNEL_EDIT part alone, for binding an edit */
static const struct mt_col edit_cols[] = {CHANNEL_EDIT(DESC)};
static const struct mt_rowdesc edit_desc = {edit_cols, sizeof(edit_cols) / sizeof(edit_cols[0]),
                                            sizeof(struct mt_channel),
                                            offsetof(struct mt_channel, _mem)};

static const struct mt_col ability_cols[] = {
    {"group", offsetof(struct mt_ability, group), MT_C_TEXT},
    {"model", offsetof(struct mt_ability, model), MT_C_TEXT},
    {"channel_id", offsetof(struct mt_ability, channel_id), MT_C_I64},
    {"enabled", offsetof(struct mt_ability, enabled), MT_C_BOOL},
    {"priority", offsetof(struct mt_ability, priority), MT_C_I64},
    {"weight", offsetof(struct mt_ability, weight), MT_C_I64},
    {"tag", offsetof(struct mt_ability, tag), MT_C_TEXT},
};
static const struct mt_rowdesc ability_desc = {
    ability_cols, sizeof(ability_cols) / sizeof(ability_cols[0]), sizeof(struct mt_ability),
    offsetof(struct mt_ability, _mem)};

#define CHANNEL_REST CHANNEL_EDIT(SEL) CHANNEL_STATS(SEL) " FROM channels"
#define CHANNEL_SELECT_KEY "SELECT id, \"key\"" CHANNEL_REST
#define CHANNEL_SELECT_NOKEY "SELECT id, '' AS \"key\"" CHANNEL_REST
#define ABILITY_SELECT                                                                             \
    "SELECT \"group\", model, channel_id, enabled, priority, weight, tag FROM abilities"

static const char SQL_GET_KEY[] = CHANNEL_SELECT_KEY " WHERE id = ?";
static const char SQL_GET_NOKEY[] = CHANNEL_SELECT_NOKEY " WHERE id = ?";
static const char SQL_ALL_KEY[] = CHANNEL_SELECT_KEY " ORDER BY id";
static const char SQL_ALL_NOKEY[] = CHANNEL_SELECT_NOKEY " ORDER BY id";
static const char SQL_INSERT[] = "INSERT INTO channels (\"key\"" CHANNEL_EDIT(SEL)
    CHANNEL_STATS(SEL) ") VALUES (?" CHANNEL_EDIT(PH) CHANNEL_STATS(PH) ") RETURNING id";
static const char SQL_UPDATE[] =
    "UPDATE channels SET \"key\" = COALESCE(?, \"key\")" CHANNEL_EDIT(SET) " WHERE id = ?";
static const char SQL_SET_STATUS[] = "UPDATE channels SET status = ? WHERE id = ?";
static const char SQL_SET_STATUS_INFO[] =
    "UPDATE channels SET status = ?, other_info = ? WHERE id = ?";
static const char SQL_SET_STATUS_TAG[] = "UPDATE channels SET status = ? WHERE tag = ?";
static const char SQL_SET_TAG[] = "UPDATE channels SET tag = ? WHERE id = ?";
static const char SQL_SET_TEST[] =
    "UPDATE channels SET response_time = ?, test_time = ? WHERE id = ?";
static const char SQL_SET_BALANCE[] =
    "UPDATE channels SET balance = ?, balance_updated_time = ? WHERE id = ?";
static const char SQL_DELETE[] = "DELETE FROM channels WHERE id = ?";
static const char SQL_DELETE_DISABLED[] = "DELETE FROM channels WHERE status IN (2, 3)";

static const char SQL_AB_DELETE_CHANNEL[] = "DELETE FROM abilities WHERE channel_id = ?";
static const char SQL_AB_DELETE_ALL[] = "DELETE FROM abilities";
static const char SQL_AB_DELETE_DISABLED[] =
    "DELETE FROM abilities WHERE channel_id IN (SELECT id FROM channels WHERE status IN (2, 3))";
static const char SQL_AB_INSERT[] =
    "INSERT INTO abilities (\"group\", model, channel_id, enabled, priority, weight, tag) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
static const char SQL_AB_ENABLED[] = "UPDATE abilities SET enabled = ? WHERE channel_id = ?";
static const char SQL_AB_ENABLED_TAG[] =
    "UPDATE abilities SET enabled = ? WHERE channel_id IN (SELECT id FROM channels WHERE tag = ?)";
static const char SQL_AB_TAG[] = "UPDATE abilities SET tag = ? WHERE channel_id = ?";
static const char SQL_AB_FOR[] =
    ABILITY_SELECT " WHERE \"group\" = ? AND model = ? AND enabled = " MT_SQL_TRUE
                   " ORDER BY priority DESC, weight DESC, channel_id";
static const char SQL_AB_ALL[] = ABILITY_SELECT " ORDER BY \"group\", model, priority DESC, "
                                                "weight DESC, channel_id";
static const char SQL_MODELS_ENABLED[] =
    "SELECT DISTINCT model FROM abilities WHERE enabled = " MT_SQL_TRUE " ORDER BY model";

void mt_channel_init(struct mt_channel *c)
{
    memset(c, 0, sizeof(*c));
    c->status = MT_CHANNEL_ENABLED;
    c->group = "default";
    c->auto_ban = 1;
}

void mt_channel_cleanup(struct mt_channel *c)
{
    mt_store__row_cleanup(&channel_desc, c);
}

void mt_channel_list_cleanup(struct mt_channel_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&channel_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

void mt_ability_list_cleanup(struct mt_ability_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&ability_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

void mt_channel_filter_init(struct mt_channel_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->status = -1;
    f->type = -1;
}

int mt_store_channel_get(struct mt_store *st, int64_t id, int with_key, struct mt_channel *out)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return mt_store__read_one(st, with_key ? SQL_GET_KEY : SQL_GET_NOKEY, &channel_desc, out, "I",
                              id);
}

/* ---- abilities ---- */

/* Next comma-separated entry of *p, trimmed; 0 when none is left. */
static int next_item(const char **p, const char **item, size_t *len)
{
    while (**p) {
        const char *s = *p, *e;
        size_t n = strcspn(s, ",");
        *p = s[n] ? s + n + 1 : s + n;
        e = s + n;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        if (e > s) {
            *item = s;
            *len = (size_t)(e - s);
            return 1;
        }
    }
    return 0;
}

int mt_store__abilities_rebuild(struct mt_conn *c, const struct mt_channel *ch)
{
    const char *mp = ch->models ? ch->models : "";
    const char *model;
    size_t mlen;
    int rc = mt_store__write_on(c, SQL_AB_DELETE_CHANNEL, NULL, "I", ch->id);

    while (rc == CM_OK && next_item(&mp, &model, &mlen)) {
        const char *gp = ch->group ? ch->group : "";
        const char *grp;
        size_t glen;
        while (rc == CM_OK && next_item(&gp, &grp, &glen)) {
            sqlite3_stmt *s = NULL;
            rc = mt_store__stmt(c, SQL_AB_INSERT, &s);
            if (rc)
                break;
            if (sqlite3_bind_text(s, 1, grp, (int)glen, SQLITE_TRANSIENT) != SQLITE_OK ||
                sqlite3_bind_text(s, 2, model, (int)mlen, SQLITE_TRANSIENT) != SQLITE_OK ||
                sqlite3_bind_int64(s, 3, ch->id) != SQLITE_OK ||
                sqlite3_bind_int(s, 4, ch->status == MT_CHANNEL_ENABLED) != SQLITE_OK ||
                sqlite3_bind_int64(s, 5, ch->priority) != SQLITE_OK ||
                sqlite3_bind_int64(s, 6, ch->weight) != SQLITE_OK ||
                mt_store__bind_text(s, 7, ch->tag, 0) != SQLITE_OK)
                rc = mt_store__err(c, sqlite3_errcode(c->db), "bind ability");
            else
                rc = mt_store__run(c, s, NULL);
            mt_store__done(s);
        }
    }
    return rc;
}

/* ---- channel writes ---- */

int mt_store_channel_insert(struct mt_store *st, const struct mt_channel *chs, size_t n,
                            int64_t *ids)
{
    struct mt_conn *c = NULL;
    int64_t *tmp = NULL;
    int64_t now;
    int rc;

    if (!st || !chs || n == 0 || n > MT_STORE_LIST_MAX)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!chs[i].key || !*chs[i].key)
            return CM_ERR_INVAL;
    tmp = cm_calloc(n, sizeof(*tmp));
    if (!tmp)
        return CM_ERR_NOMEM;
    now = mt_store__now(st);
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        goto out;
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        struct mt_channel row = chs[i];
        sqlite3_stmt *s = NULL;
        if (!row.created_time)
            row.created_time = now;
        rc = mt_store__stmt(c, SQL_INSERT, &s);
        if (rc)
            break;
        if (mt_store__row_bind(s, &channel_desc, 1, 1, &row) < 0)
            rc = mt_store__err(c, sqlite3_errcode(c->db), "bind channel");
        else
            rc = mt_store__int(c, s, &row.id);
        if (rc == CM_ERR_NOTFOUND)
            rc = CM_ERR_INTERNAL;
        mt_store__done(s);
        if (rc == CM_OK)
            rc = mt_store__abilities_rebuild(c, &row);
        tmp[i] = row.id;
    }
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && ids)
        memcpy(ids, tmp, n * sizeof(*ids));
out:
    cm_free(tmp);
    return rc;
}

int mt_store_channel_update(struct mt_store *st, const struct mt_channel *ch)
{
    struct mt_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int64_t n = 0;
    int rc, next;

    if (!st || !ch)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__stmt(c, SQL_UPDATE, &s);
    if (rc)
        goto out;
    next = mt_store__bind_text(s, 1, ch->key && *ch->key ? ch->key : NULL, 1) == SQLITE_OK
               ? mt_store__row_bind(s, &edit_desc, 0, 2, ch)
               : -1;
    if (next < 0 || sqlite3_bind_int64(s, next, ch->id) != SQLITE_OK) {
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind channel");
        goto out;
    }
    rc = mt_store__run(c, s, &n);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK)
        rc = mt_store__abilities_rebuild(c, ch);
out:
    mt_store__done(s);
    return mt_store__wr_end(st, c, rc);
}

int mt_store_channel_set_status(struct mt_store *st, int64_t id, int status, const char *other_info)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    if (other_info)
        rc = mt_store__write_on(c, SQL_SET_STATUS_INFO, &n, "isI", status, other_info, id);
    else
        rc = mt_store__write_on(c, SQL_SET_STATUS, &n, "iI", status, id);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_AB_ENABLED, NULL, "iI", status == MT_CHANNEL_ENABLED, id);
    return mt_store__wr_end(st, c, rc);
}

int mt_store_channel_set_status_by_tag(struct mt_store *st, const char *tag, int status,
                                       int64_t *changed)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st || !tag)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_SET_STATUS_TAG, &n, "is", status, tag);
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_AB_ENABLED_TAG, NULL, "is", status == MT_CHANNEL_ENABLED,
                                tag);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && changed)
        *changed = n;
    return rc;
}

int mt_store_channel_set_tag(struct mt_store *st, const int64_t *ids, size_t n, const char *tag,
                             int64_t *changed)
{
    struct mt_conn *c = NULL;
    int64_t total = 0;
    int rc;

    if (!st || (n && !ids) || n > MT_STORE_LIST_MAX)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        int64_t ch = 0;
        rc = mt_store__write_on(c, SQL_SET_TAG, &ch, "sI", tag, ids[i]);
        if (rc == CM_OK)
            rc = mt_store__write_on(c, SQL_AB_TAG, NULL, "sI", tag, ids[i]);
        total += ch;
    }
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && changed)
        *changed = total;
    return rc;
}

int mt_store_channel_set_test_result(struct mt_store *st, int64_t id, int64_t response_time_ms,
                                     int64_t test_time)
{
    int64_t n = 0;
    int rc;
    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__write(st, SQL_SET_TEST, &n, "III", response_time_ms, test_time, id);
    return rc == CM_OK && n == 0 ? CM_ERR_NOTFOUND : rc;
}

int mt_store_channel_set_balance(struct mt_store *st, int64_t id, double balance,
                                 int64_t updated_time)
{
    int64_t n = 0;
    int rc;
    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__write(st, SQL_SET_BALANCE, &n, "fII", balance, updated_time, id);
    return rc == CM_OK && n == 0 ? CM_ERR_NOTFOUND : rc;
}

int mt_store_channel_delete(struct mt_store *st, int64_t id)
{
    int64_t n = 0;
    int rc = mt_store_channel_delete_many(st, &id, 1, &n);
    return rc == CM_OK && n == 0 ? CM_ERR_NOTFOUND : rc;
}

int mt_store_channel_delete_many(struct mt_store *st, const int64_t *ids, size_t n,
                                 int64_t *deleted)
{
    struct mt_conn *c = NULL;
    int64_t total = 0;
    int rc;

    if (!st || (n && !ids) || n > MT_STORE_LIST_MAX)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        int64_t ch = 0;
        rc = mt_store__write_on(c, SQL_DELETE, &ch, "I", ids[i]);
        if (rc == CM_OK)
            rc = mt_store__write_on(c, SQL_AB_DELETE_CHANNEL, NULL, "I", ids[i]);
        total += ch;
    }
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && deleted)
        *deleted = total;
    return rc;
}

int mt_store_channel_delete_disabled(struct mt_store *st, int64_t *deleted)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_AB_DELETE_DISABLED, NULL, "");
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_DELETE_DISABLED, &n, "");
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && deleted)
        *deleted = n;
    return rc;
}

/* ---- channel reads ---- */

static int finish_list(int rc, struct mt_rows *r, int64_t total, struct mt_channel_list *out)
{
    if (mt_store__rows_keep(rc, &channel_desc, r))
        return rc;
    out->items = r->items;
    out->n = r->n;
    out->total = total;
    return CM_OK;
}

/* The WHERE of a channel filter; @p with_status_type: also status and type. */
static int channel_where(const struct mt_channel_filter *f, int with_status_type,
                         struct mt_where *w)
{
    int64_t idv = 0;
    int rc = CM_OK;
    char *p = NULL;

    if (!f)
        return CM_OK;
    if (f->keyword && *f->keyword) {
        char *p2 = NULL, *p3 = NULL;
        const char *k = f->keyword;
        if (!mt_store__parse_id(k, &idv))
            idv = -1;
        if (mt_store__like(k, 1, &p) || mt_store__like(k, 1, &p2) || mt_store__like(k, 1, &p3)) {
            cm_free(p);
            cm_free(p2);
            cm_free(p3);
            return CM_ERR_NOMEM;
        }
        rc = mt_store__where(w,
                             "id = ? OR name LIKE ? ESCAPE '!' OR base_url LIKE ? ESCAPE '!' OR "
                             "tag LIKE ? ESCAPE '!' OR \"key\" = ?",
                             "Iooos", idv, p, p2, p3, k);
    }
    if (rc == CM_OK && f->group && *f->group) {
        rc = mt_store__like(f->group, 0, &p);
        if (rc == CM_OK) {
            /* the pattern: %,<group>,% against ",<groups>," */
            size_t n = strlen(p);
            char *q = cm_malloc(n + 5);
            if (!q) {
                cm_free(p);
                return CM_ERR_NOMEM;
            }
            snprintf(q, n + 5, "%%,%s,%%", p);
            cm_free(p);
            rc = mt_store__where(w, "(',' || \"group\" || ',') LIKE ? ESCAPE '!'", "o", q);
        }
    }
    if (rc == CM_OK && f->model && *f->model) {
        rc = mt_store__like(f->model, 1, &p);
        if (rc == CM_OK)
            rc = mt_store__where(w, "models LIKE ? ESCAPE '!'", "o", p);
    }
    if (rc == CM_OK && f->tag)
        rc = mt_store__where(w, "tag = ?", "s", f->tag);
    if (rc == CM_OK && with_status_type && f->status >= 0)
        rc = mt_store__where(w, "status = ?", "I", (int64_t)f->status);
    if (rc == CM_OK && with_status_type && f->type >= 0)
        rc = mt_store__where(w, "type = ?", "I", (int64_t)f->type);
    return rc;
}

static const char *order_by(const struct mt_channel_filter *f)
{
    static const char *const desc[] = {
        " ORDER BY priority DESC, id DESC",      " ORDER BY id DESC",
        " ORDER BY name DESC, id DESC",          " ORDER BY balance DESC, id DESC",
        " ORDER BY response_time DESC, id DESC", " ORDER BY test_time DESC, id DESC",
    };
    static const char *const asc[] = {
        " ORDER BY priority ASC, id DESC",      " ORDER BY id ASC",
        " ORDER BY name ASC, id DESC",          " ORDER BY balance ASC, id DESC",
        " ORDER BY response_time ASC, id DESC", " ORDER BY test_time ASC, id DESC",
    };
    unsigned i = f ? (unsigned)f->sort : 0;
    if (i >= sizeof(desc) / sizeof(desc[0]))
        i = 0;
    return f && f->ascending ? asc[i] : desc[i];
}

int mt_store_channel_list(struct mt_store *st, const struct mt_channel_filter *f, int64_t offset,
                          int limit, struct mt_channel_list *out)
{
    struct mt_where w;
    struct mt_rows r = {0};
    int64_t total = 0;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    rc = channel_where(f, 1, &w);
    if (rc == CM_OK)
        rc = mt_store__where_page(st, "SELECT count(*) FROM channels", CHANNEL_SELECT_NOKEY, &w,
                                  order_by(f), offset, limit, &channel_desc, &r, &total);
    mt_store__where_cleanup(&w);
    return finish_list(rc, &r, total, out);
}

int mt_store_channel_all(struct mt_store *st, int with_key, struct mt_channel_list *out)
{
    struct mt_rows r = {0};
    int rc;
    if (!st || !out)
        return CM_ERR_INVAL;
    rc = mt_store__read_rows(st, with_key ? SQL_ALL_KEY : SQL_ALL_NOKEY, &channel_desc, &r, "");
    return finish_list(rc, &r, (int64_t)r.n, out);
}

int mt_store_channel_type_counts(struct mt_store *st, const struct mt_channel_filter *f,
                                 struct mt_type_count **out, size_t *n)
{
    struct mt_where w;
    struct mt_conn *c;
    struct cm_buf b;
    sqlite3_stmt *s = NULL;
    struct mt_type_count *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, src;

    if (!st || !out || !n)
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    cm_buf_init(&b, 1 << 16);
    rc = channel_where(f, 0, &w);
    if (rc)
        goto done;
    rc = cm_buf_append_str(&b, "SELECT type, count(*) FROM channels");
    if (rc == CM_OK && w.sql.len)
        rc = cm_buf_append(&b, w.sql.data, w.sql.len);
    if (rc == CM_OK)
        rc = cm_buf_append_str(&b, " GROUP BY type ORDER BY type");
    if (rc)
        goto done;
    c = mt_store__rd_get(st);
    rc = mt_store__prepare(c, b.data, &s);
    for (int i = 0; rc == CM_OK && i < w.n; i++)
        if ((w.v[i].t == 'I' ? sqlite3_bind_int64(s, i + 1, w.v[i].i)
                             : mt_store__bind_text(s, i + 1, w.v[i].s, 0)) != SQLITE_OK)
            rc = mt_store__err(c, sqlite3_errcode(c->db), "bind");
    while (rc == CM_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mt_type_count *nv = cm_realloc(v, ncap * sizeof(*v));
            if (!nv) {
                rc = CM_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[cnt].type = sqlite3_column_int(s, 0);
        v[cnt].count = sqlite3_column_int64(s, 1);
        cnt++;
    }
    if (rc == CM_OK && src != SQLITE_DONE)
        rc = mt_store__err(c, src, "type counts");
    sqlite3_finalize(s);
    mt_store__rd_put(st, c);
done:
    cm_buf_cleanup(&b);
    mt_store__where_cleanup(&w);
    if (rc) {
        cm_free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return CM_OK;
}

/* ---- ability reads ---- */

static int finish_abilities(int rc, struct mt_rows *r, struct mt_ability_list *out)
{
    if (rc) {
        mt_store__rows_free(&ability_desc, r->items, r->n);
        return rc;
    }
    out->items = r->items;
    out->n = r->n;
    return CM_OK;
}

int mt_store_abilities_for(struct mt_store *st, const char *group, const char *model,
                           struct mt_ability_list *out)
{
    struct mt_rows r = {0};
    int rc;
    if (!st || !group || !model || !out)
        return CM_ERR_INVAL;
    rc = mt_store__read_rows(st, SQL_AB_FOR, &ability_desc, &r, "ss", group, model);
    return finish_abilities(rc, &r, out);
}

int mt_store_abilities_all(struct mt_store *st, struct mt_ability_list *out)
{
    struct mt_rows r = {0};
    int rc;
    if (!st || !out)
        return CM_ERR_INVAL;
    rc = mt_store__read_rows(st, SQL_AB_ALL, &ability_desc, &r, "");
    return finish_abilities(rc, &r, out);
}

int mt_store_abilities_fix(struct mt_store *st, int64_t *ok, int64_t *fails)
{
    struct mt_rows r = {0};
    struct mt_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__stmt(c, SQL_ALL_KEY, &s);
    if (rc == CM_OK)
        rc = mt_store__rows_read(c, s, &channel_desc, &r);
    mt_store__done(s);
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_AB_DELETE_ALL, NULL, "");
    for (size_t i = 0; rc == CM_OK && i < r.n; i++)
        rc = mt_store__abilities_rebuild(c, (struct mt_channel *)r.items + i);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK) {
        if (ok)
            *ok = (int64_t)r.n;
        if (fails)
            *fails = 0;
    }
    mt_store__rows_free(&channel_desc, r.items, r.n);
    return rc;
}

int mt_store_models_enabled(struct mt_store *st, char ***models, size_t *n)
{
    struct mt_conn *c;
    sqlite3_stmt *s = NULL;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, src = SQLITE_DONE;

    if (!st || !models || !n)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    rc = mt_store__stmt(c, SQL_MODELS_ENABLED, &s);
    while (rc == CM_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(s, 0);
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nv = cm_realloc(v, ncap * sizeof(*v));
            if (!nv) {
                rc = CM_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[cnt] = cm_strdup(m ? m : "");
        if (!v[cnt]) {
            rc = CM_ERR_NOMEM;
            break;
        }
        cnt++;
    }
    if (rc == CM_OK && src != SQLITE_DONE)
        rc = mt_store__err(c, src, "models");
    mt_store__done(s);
    mt_store__rd_put(st, c);
    if (rc) {
        mt_store_strings_free(v, cnt);
        return rc;
    }
    *models = v;
    *n = cnt;
    return CM_OK;
}
