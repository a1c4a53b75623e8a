/* SPDX-License-Identifier: MIT */
/*
 * schema.c - the tables meterd uses, as NewAPI creates them on SQLite (spec newapi.md
 * 1.2-1.11: names, types, defaults, indexes), and the migration that brings any
 * database there: run at open, serially, in ONE write transaction (NewAPI #1573 came
 * from migrating tables concurrently).
 *
 * Migration steps, all idempotent: create each missing table with NewAPI's DDL; add each
 * missing column of an existing table (ALTER TABLE ADD COLUMN with type and default;
 * UNIQUE comes from the unique indexes instead, which SQLite cannot add inline); create
 * each index IF NOT EXISTS; create mt_changes and its triggers; record the schema
 * version. Nothing is ever dropped, retyped or reordered: old NewAPI layouts (e.g.
 * tokens.key char(48)) keep working because columns are addressed by name.
 * Types are portable tokens mapped by the dialect (sqlite_dialect.c).
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"

#include <stdio.h>
#include <string.h>

struct coldef {
    const char *name; /* unquoted */
    const char *type; /* portable token, see mt_dialect__type() */
    const char *cons; /* extra constraint in CREATE TABLE only ("NOT NULL", "UNIQUE"), or NULL */
    const char *def;  /* DEFAULT literal (standard SQL), or NULL */
};

struct tabledef {
    const char *name;
    const struct coldef *cols;
    size_t n;
    const char *pk; /* PRIMARY KEY column list (quoted as needed) */
};

struct indexdef {
    const char *name;
    const char *table;
    const char *cols; /* quoted as needed */
    int unique;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct coldef USERS[] = {
    {"id", "INT", NULL, NULL},
    {"username", "TEXT", "UNIQUE", NULL},
    {"password", "TEXT", "NOT NULL", NULL},
    {"display_name", "TEXT", NULL, NULL},
    {"role", "INT", NULL, "1"},
    {"status", "INT", NULL, "1"},
    {"email", "TEXT", NULL, NULL},
    {"github_id", "TEXT", NULL, NULL},
    {"discord_id", "TEXT", NULL, NULL},
    {"oidc_id", "TEXT", NULL, NULL},
    {"wechat_id", "TEXT", NULL, NULL},
    {"telegram_id", "TEXT", NULL, NULL},
    {"access_token", "CHAR(32)", NULL, NULL},
    {"quota", "INT", NULL, "0"},
    {"used_quota", "INT", NULL, "0"},
    {"request_count", "INT", NULL, "0"},
    {"group", "VARCHAR(64)", NULL, "'default'"},
    {"aff_code", "VARCHAR(32)", NULL, NULL},
    {"aff_count", "INT", NULL, "0"},
    {"aff_quota", "INT", NULL, "0"},
    {"aff_history", "INT", NULL, "0"},
    {"inviter_id", "INT", NULL, NULL},
    {"deleted_at", "DATETIME", NULL, NULL},
    {"linux_do_id", "TEXT", NULL, NULL},
    {"setting", "TEXT", NULL, NULL},
    {"remark", "VARCHAR(255)", NULL, NULL},
    {"stripe_customer", "VARCHAR(64)", NULL, NULL},
    {"created_at", "INT", NULL, NULL},
    {"last_login_at", "INT", NULL, "0"},
};

static const struct coldef TOKENS[] = {
    {"id", "INT", NULL, NULL},
    {"user_id", "INT", NULL, NULL},
    {"key", "VARCHAR(128)", NULL, NULL},
    {"status", "INT", NULL, "1"},
    {"name", "TEXT", NULL, NULL},
    {"created_time", "INT", NULL, NULL},
    {"accessed_time", "INT", NULL, NULL},
    {"expired_time", "INT", NULL, "-1"},
    {"remain_quota", "INT", NULL, "0"},
    {"unlimited_quota", "BOOL", NULL, NULL},
    {"model_limits_enabled", "BOOL", NULL, NULL},
    {"model_limits", "TEXT", NULL, NULL},
    {"allow_ips", "TEXT", NULL, "''"},
    {"used_quota", "INT", NULL, "0"},
    {"group", "TEXT", NULL, "''"},
    {"cross_group_retry", "BOOL", NULL, NULL},
    {"deleted_at", "DATETIME", NULL, NULL},
};

static const struct coldef CHANNELS[] = {
    {"id", "INT", NULL, NULL},
    {"type", "INT", NULL, "0"},
    {"key", "TEXT", "NOT NULL", NULL},
    {"open_ai_organization", "TEXT", NULL, NULL},
    {"test_model", "TEXT", NULL, NULL},
    {"status", "INT", NULL, "1"},
    {"name", "TEXT", NULL, NULL},
    {"weight", "INT", NULL, "0"},
    {"created_time", "INT", NULL, NULL},
    {"test_time", "INT", NULL, NULL},
    {"response_time", "INT", NULL, NULL},
    {"base_url", "TEXT", NULL, "''"},
    {"other", "TEXT", NULL, NULL},
    {"balance", "REAL", NULL, NULL},
    {"balance_updated_time", "INT", NULL, NULL},
    {"models", "TEXT", NULL, NULL},
    {"group", "VARCHAR(64)", NULL, "'default'"},
    {"used_quota", "INT", NULL, "0"},
    {"model_mapping", "TEXT", NULL, NULL},
    {"status_code_mapping", "VARCHAR(1024)", NULL, "''"},
    {"priority", "INT", NULL, "0"},
    {"auto_ban", "INT", NULL, "1"},
    {"other_info", "TEXT", NULL, NULL},
    {"tag", "TEXT", NULL, NULL},
    {"setting", "TEXT", NULL, NULL},
    {"param_override", "TEXT", NULL, NULL},
    {"header_override", "TEXT", NULL, NULL},
    {"remark", "VARCHAR(255)", NULL, NULL},
    {"channel_info", "JSON", NULL, NULL},
    {"settings", "TEXT", NULL, NULL},
};

static const struct coldef ABILITIES[] = {
    {"group", "VARCHAR(64)", NULL, NULL}, {"model", "VARCHAR(255)", NULL, NULL},
    {"channel_id", "INT", NULL, NULL},    {"enabled", "BOOL", NULL, NULL},
    {"priority", "INT", NULL, "0"},       {"weight", "INT", NULL, "0"},
    {"tag", "TEXT", NULL, NULL},
};

static const struct coldef LOGS[] = {
    {"id", "INT", NULL, NULL},
    {"user_id", "INT", NULL, NULL},
    {"created_at", "INT", NULL, NULL},
    {"type", "INT", NULL, NULL},
    {"content", "TEXT", NULL, NULL},
    {"username", "TEXT", NULL, "''"},
    {"token_name", "TEXT", NULL, "''"},
    {"model_name", "TEXT", NULL, "''"},
    {"quota", "INT", NULL, "0"},
    {"prompt_tokens", "INT", NULL, "0"},
    {"completion_tokens", "INT", NULL, "0"},
    {"use_time", "INT", NULL, "0"},
    {"is_stream", "BOOL", NULL, NULL},
    {"channel_id", "INT", NULL, NULL},
    {"channel_name", "TEXT", NULL, NULL},
    {"token_id", "INT", NULL, "0"},
    {"group", "TEXT", NULL, NULL},
    {"ip", "TEXT", NULL, "''"},
    {"request_id", "VARCHAR(64)", NULL, "''"},
    {"upstream_request_id", "VARCHAR(128)", NULL, "''"},
    {"other", "TEXT", NULL, NULL},
};

static const struct coldef OPTIONS[] = {
    {"key", "TEXT", NULL, NULL},
    {"value", "TEXT", NULL, NULL},
};

static const struct coldef REDEMPTIONS[] = {
    {"id", "INT", NULL, NULL},           {"user_id", "INT", NULL, NULL},
    {"key", "CHAR(32)", NULL, NULL},     {"status", "INT", NULL, "1"},
    {"name", "TEXT", NULL, NULL},        {"quota", "INT", NULL, "100"},
    {"created_time", "INT", NULL, NULL}, {"redeemed_time", "INT", NULL, NULL},
    {"used_user_id", "INT", NULL, NULL}, {"deleted_at", "DATETIME", NULL, NULL},
    {"expired_time", "INT", NULL, NULL},
};

static const struct coldef TOP_UPS[] = {
    {"id", "INT", NULL, NULL},
    {"user_id", "INT", NULL, NULL},
    {"amount", "INT", NULL, NULL},
    {"money", "REAL", NULL, NULL},
    {"trade_no", "VARCHAR(255)", "UNIQUE", NULL},
    {"payment_method", "VARCHAR(50)", NULL, NULL},
    {"payment_provider", "VARCHAR(50)", NULL, "''"},
    {"create_time", "INT", NULL, NULL},
    {"complete_time", "INT", NULL, NULL},
    {"status", "TEXT", NULL, NULL},
};

static const struct coldef QUOTA_DATA[] = {
    {"id", "INT", NULL, NULL},         {"user_id", "INT", NULL, NULL},
    {"username", "TEXT", NULL, "''"},  {"model_name", "TEXT", NULL, "''"},
    {"created_at", "INT", NULL, NULL}, {"token_used", "INT", NULL, "0"},
    {"count", "INT", NULL, "0"},       {"quota", "INT", NULL, "0"},
};

static const struct coldef SETUPS[] = {
    {"id", "INT", NULL, NULL},
    {"version", "VARCHAR(50)", "NOT NULL", NULL},
    {"initialized_at", "BIGINT", "NOT NULL", NULL},
};

/* ours: change counters bumped by triggers (store.h) */
static const struct coldef MT_CHANGES[] = {
    {"tbl", "VARCHAR(32)", NULL, NULL},
    {"version", "INT", "NOT NULL", "0"},
};

/* ours: a reserve not settled yet (writer.h): refunded at start after a crash */
static const struct coldef MT_HOLDS[] = {
    {"id", "INT", NULL, NULL},
    {"user_id", "INT", "NOT NULL", NULL},
    {"token_id", "INT", "NOT NULL", "0"},
    {"amount", "BIGINT", "NOT NULL", NULL},
    {"created_at", "BIGINT", "NOT NULL", NULL},
};

static const struct tabledef TABLES[] = {
    {"channels", CHANNELS, N(CHANNELS), "\"id\""},
    {"tokens", TOKENS, N(TOKENS), "\"id\""},
    {"users", USERS, N(USERS), "\"id\""},
    {"options", OPTIONS, N(OPTIONS), "\"key\""},
    {"redemptions", REDEMPTIONS, N(REDEMPTIONS), "\"id\""},
    {"abilities", ABILITIES, N(ABILITIES), "\"group\",\"model\",\"channel_id\""},
    {"logs", LOGS, N(LOGS), "\"id\""},
    {"top_ups", TOP_UPS, N(TOP_UPS), "\"id\""},
    {"quota_data", QUOTA_DATA, N(QUOTA_DATA), "\"id\""},
    {"setups", SETUPS, N(SETUPS), "\"id\""},
    {"mt_changes", MT_CHANGES, N(MT_CHANGES), "\"tbl\""},
    {"mt_holds", MT_HOLDS, N(MT_HOLDS), "\"id\""},
};

static const struct indexdef INDEXES[] = {
    {"idx_users_username", "users", "\"username\"", 0},
    {"idx_users_display_name", "users", "\"display_name\"", 0},
    {"idx_users_email", "users", "\"email\"", 0},
    {"idx_users_github_id", "users", "\"github_id\"", 0},
    {"idx_users_discord_id", "users", "\"discord_id\"", 0},
    {"idx_users_oidc_id", "users", "\"oidc_id\"", 0},
    {"idx_users_wechat_id", "users", "\"wechat_id\"", 0},
    {"idx_users_telegram_id", "users", "\"telegram_id\"", 0},
    {"idx_users_access_token", "users", "\"access_token\"", 1},
    {"idx_users_aff_code", "users", "\"aff_code\"", 1},
    {"idx_users_inviter_id", "users", "\"inviter_id\"", 0},
    {"idx_users_deleted_at", "users", "\"deleted_at\"", 0},
    {"idx_users_linux_do_id", "users", "\"linux_do_id\"", 0},
    {"idx_users_stripe_customer", "users", "\"stripe_customer\"", 0},
    {"idx_tokens_user_id", "tokens", "\"user_id\"", 0},
    {"idx_tokens_key", "tokens", "\"key\"", 1},
    {"idx_tokens_name", "tokens", "\"name\"", 0},
    {"idx_tokens_deleted_at", "tokens", "\"deleted_at\"", 0},
    {"idx_channels_name", "channels", "\"name\"", 0},
    {"idx_channels_tag", "channels", "\"tag\"", 0},
    {"idx_abilities_channel_id", "abilities", "\"channel_id\"", 0},
    {"idx_abilities_priority", "abilities", "\"priority\"", 0},
    {"idx_abilities_weight", "abilities", "\"weight\"", 0},
    {"idx_abilities_tag", "abilities", "\"tag\"", 0},
    {"idx_created_at_id", "logs", "\"created_at\",\"id\"", 0},
    {"idx_user_id_id", "logs", "\"user_id\",\"id\"", 0},
    {"idx_logs_user_id", "logs", "\"user_id\"", 0},
    {"idx_created_at_type", "logs", "\"created_at\",\"type\"", 0},
    {"idx_logs_username", "logs", "\"username\"", 0},
    {"index_username_model_name", "logs", "\"model_name\",\"username\"", 0},
    {"idx_logs_token_name", "logs", "\"token_name\"", 0},
    {"idx_logs_model_name", "logs", "\"model_name\"", 0},
    {"idx_logs_channel_id", "logs", "\"channel_id\"", 0},
    {"idx_logs_token_id", "logs", "\"token_id\"", 0},
    {"idx_logs_group", "logs", "\"group\"", 0},
    {"idx_logs_ip", "logs", "\"ip\"", 0},
    {"idx_logs_request_id", "logs", "\"request_id\"", 0},
    {"idx_logs_upstream_request_id", "logs", "\"upstream_request_id\"", 0},
    {"idx_redemptions_key", "redemptions", "\"key\"", 1},
    {"idx_redemptions_name", "redemptions", "\"name\"", 0},
    {"idx_redemptions_deleted_at", "redemptions", "\"deleted_at\"", 0},
    {"idx_top_ups_user_id", "top_ups", "\"user_id\"", 0},
    {"idx_top_ups_trade_no", "top_ups", "\"trade_no\"", 0},
    {"idx_quota_data_user_id", "quota_data", "\"user_id\"", 0},
    {"idx_qdt_created_at", "quota_data", "\"created_at\"", 0},
    {"idx_qdt_model_user_name", "quota_data", "\"model_name\",\"username\"", 0},
};

static const char *const CHANGE_TABLES[] = {"options", "channels", "abilities", "users", "tokens"};

/* Runs one built DDL statement. */
static int run_sql(struct mt_conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = mt_store__prepare(c, sql, &s);
    if (rc == CM_OK)
        rc = mt_store__run(c, s, NULL);
    sqlite3_finalize(s);
    return rc;
}

static int append_col(struct cm_buf *b, const struct coldef *cd, int create)
{
    const char *type = mt_dialect__type(cd->type);
    int rc;
    if (!type)
        return CM_ERR_INTERNAL;
    rc = cm_buf_appendf(b, "\"%s\" %s", cd->name, type);
    if (rc == CM_OK && create && cd->cons)
        rc = cm_buf_appendf(b, " %s", cd->cons);
    if (rc == CM_OK && cd->def)
        rc = cm_buf_appendf(b, " DEFAULT %s", cd->def);
    return rc;
}

static int create_table(struct mt_conn *c, const struct tabledef *t)
{
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, 1 << 16);
    rc = cm_buf_appendf(&b, "CREATE TABLE \"%s\" (", t->name);
    for (size_t i = 0; rc == CM_OK && i < t->n; i++) {
        rc = append_col(&b, &t->cols[i], 1);
        if (rc == CM_OK)
            rc = cm_buf_append_str(&b, ",");
    }
    if (rc == CM_OK)
        rc = cm_buf_appendf(&b, "PRIMARY KEY (%s))", t->pk);
    if (rc == CM_OK)
        rc = run_sql(c, b.data);
    if (rc == CM_OK)
        cm_log_info(NULL, "store: created table %s", t->name);
    cm_buf_cleanup(&b);
    return rc;
}

static int add_missing_columns(struct mt_conn *c, const struct tabledef *t)
{
    char *have = NULL;
    char pat[80];
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, 4096);
    rc = mt_dialect__columns(c, t->name, &have);
    for (size_t i = 0; rc == CM_OK && i < t->n; i++) {
        snprintf(pat, sizeof(pat), "|%s|", t->cols[i].name);
        if (strstr(have, pat))
            continue;
        cm_buf_reset(&b);
        rc = cm_buf_appendf(&b, "ALTER TABLE \"%s\" ADD COLUMN ", t->name);
        if (rc == CM_OK)
            rc = append_col(&b, &t->cols[i], 0);
        if (rc == CM_OK)
            rc = run_sql(c, b.data);
        if (rc == CM_OK)
            cm_log_info(NULL, "store: added column %s.%s", t->name, t->cols[i].name);
    }
    cm_free(have);
    cm_buf_cleanup(&b);
    return rc;
}

static int create_index(struct mt_conn *c, const struct indexdef *ix)
{
    char sql[256];
    int n = snprintf(sql, sizeof(sql), "CREATE %sINDEX IF NOT EXISTS \"%s\" ON \"%s\" (%s)",
                     ix->unique ? "UNIQUE " : "", ix->name, ix->table, ix->cols);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return CM_ERR_INTERNAL;
    return run_sql(c, sql);
}

static const char SQL_CHANGES_SEED[] =
    "INSERT INTO mt_changes (tbl, version) VALUES (?, 0) ON CONFLICT (tbl) DO NOTHING";

static int seed_changes(struct mt_conn *c)
{
    for (size_t i = 0; i < N(CHANGE_TABLES); i++) {
        sqlite3_stmt *s = NULL;
        int rc = mt_store__stmt(c, SQL_CHANGES_SEED, &s);
        if (rc)
            return rc;
        sqlite3_bind_text(s, 1, CHANGE_TABLES[i], -1, SQLITE_STATIC);
        rc = mt_store__run(c, s, NULL);
        mt_store__done(s);
        if (rc)
            return rc;
    }
    return CM_OK;
}

int mt_store__migrate(struct mt_store *st)
{
    struct mt_conn *c = NULL;
    int64_t before = 0;
    int rc = mt_store__wr_begin(st, &c);

    if (rc) {
        cm_log_error(NULL, "store: migration could not start: %s", cm_err_str(rc));
        return rc;
    }
    rc = mt_dialect__user_version(c, &before);
    for (size_t i = 0; rc == CM_OK && i < N(TABLES); i++) {
        int exists = 0;
        rc = mt_dialect__table_exists(c, TABLES[i].name, &exists);
        if (rc == CM_OK)
            rc = exists ? add_missing_columns(c, &TABLES[i]) : create_table(c, &TABLES[i]);
    }
    for (size_t i = 0; rc == CM_OK && i < N(INDEXES); i++)
        rc = create_index(c, &INDEXES[i]);
    if (rc == CM_OK)
        rc = seed_changes(c);
    if (rc == CM_OK)
        rc = mt_dialect__triggers(c);
    if (rc == CM_OK && before < MT_STORE_SCHEMA_VERSION)
        rc = mt_dialect__set_user_version(c, MT_STORE_SCHEMA_VERSION);
    else if (rc == CM_OK && before > MT_STORE_SCHEMA_VERSION)
        cm_log_warn(NULL, "store: schema version %lld is newer than this meterd's (%d)",
                    (long long)before, MT_STORE_SCHEMA_VERSION);
    rc = mt_store__wr_end(st, c, rc);
    if (rc)
        cm_log_error(NULL, "store: migration failed (%s); nothing was changed", cm_err_str(rc));
    return rc;
}
