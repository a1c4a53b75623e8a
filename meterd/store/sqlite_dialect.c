/* SPDX-License-Identifier: MIT */
/*
 * sqlite_dialect.c - THE DIALECT SPOT: every statement here is SQLite-only (PRAGMAs,
 * trigger bodies, sqlite_master). A PostgreSQL backend replaces this file (and the
 * dialect macros in store_int.h): SET statement_timeout instead of busy_timeout,
 * information_schema.columns instead of PRAGMA table_info, plpgsql trigger functions,
 * a schema_version table instead of user_version, LISTEN/NOTIFY or the counters alone
 * instead of data_version, boolean/timestamp type names and an identity type for the
 * "id" columns (here "integer" + PRIMARY KEY makes them rowid aliases), and binding
 * 0/1 to boolean columns as booleans.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Runs a PRAGMA (or other statement) once, ignoring any rows it returns. */
static int exec_once(struct mt_conn *c, const char *sql)
{
    char *err = NULL;
    int src = sqlite3_exec(c->db, sql, NULL, NULL, &err);
    sqlite3_free(err);
    if (src != SQLITE_OK)
        return mt_store__err(c, src, "pragma");
    return CM_OK;
}

static const char SQL_JOURNAL[] = "PRAGMA journal_mode=WAL";

int mt_dialect__configure(struct mt_store *st, struct mt_conn *c, int writer)
{
    int rc;
    sqlite3_stmt *s = NULL;

    if (sqlite3_busy_timeout(c->db, (int)st->busy_ms) != SQLITE_OK)
        return mt_store__err(c, sqlite3_errcode(c->db), "busy_timeout");
    if (!writer)
        return exec_once(c, "PRAGMA query_only=1");
    /* journal_mode answers with the mode it ended up in: must be "wal" */
    rc = mt_store__prepare(c, SQL_JOURNAL, &s);
    if (rc)
        return rc;
    if (sqlite3_step(s) != SQLITE_ROW ||
        strcasecmp((const char *)sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
                                                           : "",
                   "wal") != 0) {
        cm_log_error(NULL, "store: could not switch the database to WAL mode: %s",
                     sqlite3_errmsg(c->db));
        rc = CM_ERR_IO;
    }
    sqlite3_finalize(s);
    if (rc)
        return rc;
    rc = exec_once(c, st->sync_normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    if (rc == CM_OK)
        rc = exec_once(c, "PRAGMA foreign_keys=OFF"); /* NewAPI declares none */
    if (rc == CM_OK) /* statement journals in memory, not in a temp file */
        rc = exec_once(c, "PRAGMA temp_store=MEMORY");
    return rc;
}

static const char SQL_TABLE_EXISTS[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?";

int mt_dialect__table_exists(struct mt_conn *c, const char *t, int *out)
{
    sqlite3_stmt *s = NULL;
    int64_t n = 0;
    int rc = mt_store__stmt(c, SQL_TABLE_EXISTS, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    rc = mt_store__int(c, s, &n);
    mt_store__done(s);
    if (rc == CM_OK)
        *out = n > 0;
    return rc;
}

int mt_dialect__columns(struct mt_conn *c, const char *t, char **out)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    struct cm_buf b;
    int rc, src;

    cm_buf_init(&b, 1 << 16);
    /* t is one of our static table names, never input */
    snprintf(sql, sizeof(sql), "PRAGMA table_info(\"%s\")", t);
    rc = mt_store__prepare(c, sql, &s);
    if (rc)
        goto out;
    rc = cm_buf_append_str(&b, "|");
    while (rc == CM_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 1);
        rc = cm_buf_appendf(&b, "%s|", name ? name : "");
    }
    if (rc == CM_OK && src != SQLITE_DONE)
        rc = mt_store__err(c, src, "table_info");
out:
    sqlite3_finalize(s);
    if (rc == CM_OK) {
        *out = cm_buf_release(&b, NULL);
        if (!*out)
            rc = CM_ERR_NOMEM;
    }
    cm_buf_cleanup(&b);
    return rc;
}

const char *mt_dialect__type(const char *portable)
{
    static const struct {
        const char *from, *to;
    } map[] = {
        {"INT", "integer"},
        {"BIGINT", "bigint"},
        {"TEXT", "text"},
        {"BOOL", "numeric"},
        {"REAL", "real"},
        {"DATETIME", "datetime"},
        {"JSON", "json"},
        {"VARCHAR(32)", "varchar(32)"},
        {"VARCHAR(50)", "varchar(50)"},
        {"VARCHAR(64)", "varchar(64)"},
        {"VARCHAR(128)", "varchar(128)"},
        {"VARCHAR(255)", "varchar(255)"},
        {"VARCHAR(1024)", "varchar(1024)"},
        {"CHAR(32)", "char(32)"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].from, portable) == 0)
            return map[i].to;
    return NULL;
}

/*
 * The change-counter triggers (store.h "Outside writes"). Updates of the hot counters
 * that every request changes (balances, used_quota, accessed_time ...) are excluded by
 * "UPDATE OF <cache columns>", so settle never bumps a counter.
 */
static const char *const TRIGGERS[] = {
    "CREATE TRIGGER IF NOT EXISTS mt_chg_options_i AFTER INSERT ON options BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'options'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_options_u AFTER UPDATE ON options BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'options'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_options_d AFTER DELETE ON options BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'options'; END",

    "CREATE TRIGGER IF NOT EXISTS mt_chg_channels_i AFTER INSERT ON channels BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'channels'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_channels_u AFTER UPDATE OF "
    "type, \"key\", open_ai_organization, test_model, status, name, weight, base_url, other, "
    "models, \"group\", model_mapping, status_code_mapping, priority, auto_ban, other_info, tag, "
    "setting, param_override, header_override, remark, channel_info, settings ON channels BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'channels'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_channels_d AFTER DELETE ON channels BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'channels'; END",

    "CREATE TRIGGER IF NOT EXISTS mt_chg_abilities_i AFTER INSERT ON abilities BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'abilities'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_abilities_u AFTER UPDATE ON abilities BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'abilities'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_abilities_d AFTER DELETE ON abilities BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'abilities'; END",

    "CREATE TRIGGER IF NOT EXISTS mt_chg_users_i AFTER INSERT ON users BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'users'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_users_u AFTER UPDATE OF "
    "username, password, display_name, role, status, email, access_token, \"group\", "
    "deleted_at, setting ON users BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'users'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_users_d AFTER DELETE ON users BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'users'; END",

    "CREATE TRIGGER IF NOT EXISTS mt_chg_tokens_i AFTER INSERT ON tokens BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'tokens'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_tokens_u AFTER UPDATE OF "
    "user_id, \"key\", status, name, expired_time, unlimited_quota, model_limits_enabled, "
    "model_limits, allow_ips, \"group\", cross_group_retry, deleted_at ON tokens BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'tokens'; END",
    "CREATE TRIGGER IF NOT EXISTS mt_chg_tokens_d AFTER DELETE ON tokens BEGIN "
    "UPDATE mt_changes SET version = version + 1 WHERE tbl = 'tokens'; END",
};

int mt_dialect__triggers(struct mt_conn *c)
{
    for (size_t i = 0; i < sizeof(TRIGGERS) / sizeof(TRIGGERS[0]); i++) {
        int rc = exec_once(c, TRIGGERS[i]);
        if (rc)
            return rc;
    }
    return CM_OK;
}

static const char SQL_DATA_VERSION[] = "PRAGMA data_version";
static const char SQL_USER_VERSION[] = "PRAGMA user_version";

int mt_dialect__data_version(struct mt_conn *c, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = mt_store__stmt(c, SQL_DATA_VERSION, &s);
    if (rc)
        return rc;
    rc = mt_store__int(c, s, out);
    mt_store__done(s);
    return rc;
}

int mt_dialect__user_version(struct mt_conn *c, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = mt_store__stmt(c, SQL_USER_VERSION, &s);
    if (rc)
        return rc;
    rc = mt_store__int(c, s, out);
    mt_store__done(s);
    return rc;
}

int mt_dialect__set_user_version(struct mt_conn *c, int64_t v)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%lld", (long long)v);
    return exec_once(c, sql);
}
