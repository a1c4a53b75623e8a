/* SPDX-License-Identifier: MIT */
/*
 * quota_data.c - SQL of the hourly aggregate (contracts in quota_data.h). The upsert is
 * a relative UPDATE, then an INSERT when no row of that hour exists (NewAPI declares no
 * unique index to conflict on); run inside one write transaction, so it cannot race.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <string.h>

static const struct mt_col qd_cols[] = {
    {"id", offsetof(struct mt_quota_data, id), MT_C_I64},
    {"user_id", offsetof(struct mt_quota_data, user_id), MT_C_I64},
    {"username", offsetof(struct mt_quota_data, username), MT_C_TEXT},
    {"model_name", offsetof(struct mt_quota_data, model_name), MT_C_TEXT},
    {"created_at", offsetof(struct mt_quota_data, created_at), MT_C_I64},
    {"token_used", offsetof(struct mt_quota_data, token_used), MT_C_I64},
    {"count", offsetof(struct mt_quota_data, count), MT_C_I64},
    {"quota", offsetof(struct mt_quota_data, quota), MT_C_I64},
};
static const struct mt_rowdesc qd_desc = {qd_cols, sizeof(qd_cols) / sizeof(qd_cols[0]),
                                          sizeof(struct mt_quota_data),
                                          offsetof(struct mt_quota_data, _mem)};

static const char SQL_BUMP[] =
    "UPDATE quota_data SET token_used = token_used + ?, count = count + 1, quota = quota + ? "
    "WHERE user_id = ? AND username = ? AND model_name = ? AND created_at = ?";
static const char SQL_INSERT[] =
    "INSERT INTO quota_data (user_id, username, model_name, "
    "created_at, token_used, count, quota) VALUES (?, ?, ?, ?, ?, 1, ?)";

#define QD_BY_MODEL                                                                                \
    "SELECT 0 AS id, 0 AS user_id, '' AS username, model_name, created_at, "                       \
    "sum(token_used) AS token_used, sum(count) AS count, sum(quota) AS quota FROM quota_data"
#define QD_BY_USER                                                                                 \
    "SELECT 0 AS id, 0 AS user_id, username, '' AS model_name, created_at, "                       \
    "sum(token_used) AS token_used, sum(count) AS count, sum(quota) AS quota FROM quota_data"

void mt_quota_data_list_cleanup(struct mt_quota_data_list *l)
{
    if (!l)
        return;
    mt_store__rows_free(&qd_desc, l->items, l->n);
    memset(l, 0, sizeof(*l));
}

int mt_store__quota_data_add(struct mt_conn *c, int64_t user_id, const char *username,
                             const char *model_name, int64_t created_at, int64_t token_used,
                             int64_t quota)
{
    int64_t hour = created_at - created_at % 3600, n = 0;
    int rc = mt_store__write_on(c, SQL_BUMP, &n, "IIIssI", token_used, quota, user_id, username,
                                model_name, hour);
    if (rc == CM_OK && n == 0)
        rc = mt_store__write_on(c, SQL_INSERT, NULL, "IssIII", user_id, username, model_name, hour,
                                token_used, quota);
    return rc;
}

int mt_store_quota_data_add(struct mt_store *st, int64_t user_id, const char *username,
                            const char *model_name, int64_t when, int64_t token_used, int64_t quota)
{
    struct mt_conn *c = NULL;
    int rc;
    if (!st)
        return CM_ERR_INVAL;
    rc = mt_store__wr_begin(st, &c);
    if (rc)
        return rc;
    rc = mt_store__quota_data_add(c, user_id, username, model_name, when ? when : mt_store__now(st),
                                  token_used, quota);
    return mt_store__wr_end(st, c, rc);
}

int mt_store_quota_data_query(struct mt_store *st, enum mt_quota_data_group by, int64_t start,
                              int64_t end, const char *username, int64_t user_id,
                              struct mt_quota_data_list *out)
{
    struct mt_where w;
    struct mt_rows r = {0};
    struct mt_conn *c;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    mt_store__where_init(&w);
    rc = mt_store__where(&w, "created_at >= ?", "I", start);
    if (rc == CM_OK && end > 0)
        rc = mt_store__where(&w, "created_at <= ?", "I", end);
    if (rc == CM_OK && username && *username)
        rc = mt_store__where(&w, "username = ?", "s", username);
    if (rc == CM_OK && user_id > 0)
        rc = mt_store__where(&w, "user_id = ?", "I", user_id);
    if (rc == CM_OK) {
        c = mt_store__rd_get(st);
        rc = mt_store__where_rows(
            c, by == MT_QD_BY_USER ? QD_BY_USER : QD_BY_MODEL, &w,
            by == MT_QD_BY_USER
                ? " GROUP BY username, created_at ORDER BY created_at, username"
                : " GROUP BY model_name, created_at ORDER BY created_at, model_name",
            0, 10 * MT_STORE_LIST_MAX, &qd_desc, &r);
        mt_store__rd_put(st, c);
    }
    mt_store__where_cleanup(&w);
    if (rc) {
        mt_store__rows_free(&qd_desc, r.items, r.n);
        return rc;
    }
    out->items = r.items;
    out->n = r.n;
    return CM_OK;
}
