/* SPDX-License-Identifier: MIT */
/*
 * topups.c - SQL of top-up orders (contracts in topups.h). Completion is one write
 * transaction around a conditional "status = 'pending'" UPDATE, so duplicate payment
 * callbacks credit an order once.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <string.h>

#define TOPUP_COLS(X)                                                                              \
    X(amount, "amount", I64)                                                                       \
    X(money, "money", DBL)                                                                         \
    X(trade_no, "trade_no", TEXTN)                                                                 \
    X(payment_method, "payment_method", TEXT)                                                      \
    X(payment_provider, "payment_provider", TEXT)                                                  \
    X(create_time, "create_time", I64)                                                             \
    X(complete_time, "complete_time", I64)                                                         \
    X(status, "status", TEXT)

#define SEL(f, sql, t) ", " sql
#define PH(f, sql, t) ", ?"
#define DESC(f, sql, t) {#f, offsetof(struct mt_topup, f), MT_C_##t},

static const struct mt_col topup_cols[] = {
    {"id", offsetof(struct mt_topup, id), MT_C_I64},
    {"user_id", offsetof(struct mt_topup, user_id), MT_C_I64},
    TOPUP_COLS(DESC)};
static const struct mt_rowdesc topup_desc = {topup_cols, sizeof(topup_cols) / sizeof(topup_cols[0]),
                                             sizeof(struct mt_topup),
                                             offsetof(struct mt_topup, _mem)};

#define TOPUP_SELECT "SELECT id, user_id" TOPUP_COLS(SEL) " FROM top_ups"

static const char SQL_INSERT[] =
    "INSERT INTO top_ups (user_id" TOPUP_COLS(SEL) ") VALUES (?" TOPUP_COLS(PH) ") RETURNING id";
static const char SQL_BY_TRADE[] = TOPUP_SELECT " WHERE trade_no = ?";
static const char SQL_COUNT[] = "SELECT count(*) FROM top_ups WHERE (? = 0 OR user_id = ?)";
static const char SQL_LIST[] =
    TOPUP_SELECT " WHERE (? = 0 OR user_id = ?) ORDER BY id DESC LIMIT ? OFFSET ?";
static const char SQL_COMPLETE[] = "UPDATE top_ups SET status = 'success', complete_time = ? "
                                   "WHERE trade_no = ? AND status = 'pending'";
static const char SQL_SET_STATUS[] =
    "UPDATE top_ups SET status = ? WHERE trade_no = ? AND status = 'pending'";
static const char SQL_EXISTS[] = "SELECT count(*) FROM top_ups WHERE trade_no = ?";
static const char SQL_OWNER[] = "SELECT user_id FROM top_ups WHERE trade_no = ?";
static const char SQL_USER_ADD[] = "UPDATE users SET quota = quota + ? WHERE id = ?";

void mt_topup_cleanup(struct mt_topup *t)
{
    mt_store__row_cleanup(&topup_desc, t);
}

void mt_topup_list_cleanup(struct mt_topup_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&topup_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

int mt_store_topup_insert(struct mt_store *st, const struct mt_topup *t, int64_t *id)
{
    struct mt_topup row;
    struct mt_conn *c = NULL;
    sqlite3_stmt *s = NULL;
    int64_t new_id = 0;
    int rc;

    if (!st || !t || !t->trade_no || !*t->trade_no)
        return CM_ERR_INVAL;
    row = *t;
    if (!row.create_time)
        row.create_time = mt_store__now(st);
    if (!row.status)
        row.status = MT_TOPUP_PENDING;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__stmt(c, SQL_INSERT, &s);
    if (rc == CM_OK && (sqlite3_bind_int64(s, 1, row.user_id) != SQLITE_OK ||
                        mt_store__row_bind(s, &topup_desc, 2, 2, &row) < 0))
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind top-up");
    if (rc == CM_OK)
        rc = mt_store__int(c, s, &new_id);
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INTERNAL;
    mt_store__done(s);
    rc = mt_store__wr_end(st, c, rc);
    if (rc == CM_OK && id)
        *id = new_id;
    return rc;
}

int mt_store_topup_get_by_trade_no(struct mt_store *st, const char *trade_no, struct mt_topup *out)
{
    if (!st || !trade_no || !out)
        return CM_ERR_INVAL;
    return mt_store__read_one(st, SQL_BY_TRADE, &topup_desc, out, "s", trade_no);
}

int mt_store_topup_list(struct mt_store *st, int64_t user_id, int64_t offset, int limit,
                        struct mt_topup_list *out)
{
    struct mt_rows r = {0};
    int64_t total = 0;
    int rc;

    if (!st || !out || mt_store__check_page(offset, limit))
        return CM_ERR_INVAL;
    rc = mt_store__read_page(st, SQL_COUNT, SQL_LIST, &topup_desc, offset, limit, &r, &total, "II",
                             user_id, user_id);
    if (mt_store__rows_keep(rc, &topup_desc, &r))
        return rc;
    out->items = r.items;
    out->n = r.n;
    out->total = total;
    return CM_OK;
}

/* NOTFOUND when the order does not exist, DENIED when it exists but is not pending. */
static int not_changed(struct mt_conn *c, const char *trade_no)
{
    int64_t n = 0;
    int rc = mt_store__read_int_on(c, SQL_EXISTS, &n, "s", trade_no);
    if (rc)
        return rc;
    return n ? CM_ERR_DENIED : CM_ERR_NOTFOUND;
}

int mt_store_topup_complete(struct mt_store *st, const char *trade_no, int64_t quota,
                            const struct mt_log *log)
{
    struct mt_conn *c = NULL;
    int64_t n = 0, owner = 0, now;
    int rc;

    if (!st || !trade_no)
        return CM_ERR_INVAL;
    now = mt_store__now(st);
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_COMPLETE, &n, "Is", now, trade_no);
    if (rc == CM_OK && n == 0)
        rc = not_changed(c, trade_no);
    if (rc == CM_OK)
        rc = mt_store__read_int_on(c, SQL_OWNER, &owner, "s", trade_no);
    if (rc == CM_OK)
        rc = mt_store__write_on(c, SQL_USER_ADD, &n, "II", quota, owner);
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc == CM_OK && log) {
        struct mt_log l = *log;
        l.user_id = owner;
        l.quota = quota;
        l.created_at = now;
        rc = mt_store__log_insert(st, c, &l, NULL);
    }
    return mt_store__wr_end(st, c, rc);
}

int mt_store_topup_set_status(struct mt_store *st, const char *trade_no, const char *status)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc;

    if (!st || !trade_no || !status)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__write_on(c, SQL_SET_STATUS, &n, "ss", status, trade_no);
    if (rc == CM_OK && n == 0)
        rc = not_changed(c, trade_no);
    return mt_store__wr_end(st, c, rc);
}
