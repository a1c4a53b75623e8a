/* SPDX-License-Identifier: MIT */
/*
 * test_store_schema.c - the store's schema and migrations: a fresh file gets NewAPI's
 * tables, indexes, WAL and our counters; reopening changes nothing; a database laid out
 * exactly like NewAPI's DDL (fixture) with rows written the way NewAPI writes them
 * carries on (bcrypt login, sk- key lookup, options, channels, balances); an older
 * layout gets its missing columns and tables; a held write lock gives CM_ERR_TIMEOUT;
 * bad files and arguments fail cleanly; SQLITE_PATH; outside writes are visible through
 * data_version and the change counters; OOM walk of open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_util.h"

#include "cm/crypto.h"

static int setup(void **state)
{
    static struct tdb t;
    if (tdb_init(&t))
        return -1;
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    cm_alloc_fail_at(0);
    tdb_remove(*state);
    return 0;
}

/* Every schema object as one string, to compare before/after. */
static char *schema_dump(const char *path)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *s = NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = cm_calloc(1, cap);
    sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name", -1, &s,
                       NULL);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(s, 2);
        int n = snprintf(out + len, cap - len, "%s %s %s\n", sqlite3_column_text(s, 0),
                         sqlite3_column_text(s, 1), sql ? sql : "");
        if (n > 0 && (size_t)n < cap - len)
            len += (size_t)n;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

static int has_column(sqlite3 *db, const char *table, const char *col)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, col);
    return raw_int(db, sql) == 1;
}

static void migrate_from_empty(void **state)
{
    struct tdb *t = *state;
    static const char *const tables[] = {"users",   "tokens",     "channels",    "abilities",
                                         "logs",    "options",    "redemptions", "setups",
                                         "top_ups", "quota_data", "mt_changes"};
    int64_t v = 0;
    char *before, *after;
    sqlite3 *db;

    assert_int_equal(tdb_open(t), CM_OK);
    assert_int_equal(mt_store_schema_version(t->st, &v), CM_OK);
    assert_int_equal(v, MT_STORE_SCHEMA_VERSION);
    tdb_close(t);

    db = raw_open(t->path);
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'", tables[i]);
        assert_int_equal(raw_int(db, sql), 1);
    }
    assert_true(has_column(db, "users", "aff_history"));
    assert_true(has_column(db, "users", "group"));
    assert_true(has_column(db, "tokens", "cross_group_retry"));
    assert_true(has_column(db, "channels", "open_ai_organization"));
    assert_true(has_column(db, "channels", "channel_info"));
    assert_true(has_column(db, "logs", "upstream_request_id"));
    assert_true(has_column(db, "abilities", "channel_id"));
    /* the tables meterd does not need are not created */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name='midjourneys'"), 0);
    /* indexes, with the unique ones unique */
    assert_int_equal(
        raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name LIKE 'idx_%'"),
        45);
    assert_int_equal(raw_int(db, "SELECT \"unique\" FROM pragma_index_list('tokens') "
                                 "WHERE name='idx_tokens_key'"),
                     1);
    assert_int_equal(raw_int(db, "SELECT \"unique\" FROM pragma_index_list('users') "
                                 "WHERE name='idx_users_access_token'"),
                     1);
    /* integer primary keys are rowid aliases (NewAPI's ids) */
    assert_int_equal(raw_int(db, "SELECT pk FROM pragma_table_info('users') WHERE name='id'"), 1);
    /* defaults as NewAPI declares them */
    assert_int_equal(raw_exec(db, "INSERT INTO users (username, password) VALUES ('d', 'x')"),
                     SQLITE_OK);
    assert_int_equal(raw_int(db, "SELECT role * 1000 + status FROM users WHERE username='d'"),
                     1001);
    assert_int_equal(raw_int(db, "SELECT \"group\" = 'default' FROM users WHERE username='d'"), 1);
    assert_int_equal(raw_exec(db, "INSERT INTO tokens (user_id, \"key\") VALUES (1, 'k')"),
                     SQLITE_OK);
    assert_int_equal(raw_int(db, "SELECT expired_time FROM tokens"), -1);
    assert_int_equal(raw_exec(db, "DELETE FROM tokens; DELETE FROM users"), SQLITE_OK);
    /* WAL, counters, triggers, user_version */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE "
                                 "journal_mode = 'wal'"),
                     1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM mt_changes"), 5);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type='trigger'"), 15);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), MT_STORE_SCHEMA_VERSION);
    sqlite3_close(db);

    /* reopening is a no-op */
    before = schema_dump(t->path);
    assert_int_equal(tdb_open(t), CM_OK);
    tdb_close(t);
    after = schema_dump(t->path);
    assert_string_equal(before, after);
    cm_free(before);
    cm_free(after);
}

/* Rows written the way NewAPI's GORM writes them. */
static void newapi_rows(const char *path, const char *hash, const char *key)
{
    sqlite3 *db = raw_open(path);
    char sql[2048];
    snprintf(sql, sizeof(sql),
             "INSERT INTO `users` (`username`,`password`,`display_name`,`role`,`status`,`email`,"
             "`github_id`,`discord_id`,`oidc_id`,`wechat_id`,`telegram_id`,`access_token`,"
             "`quota`,`used_quota`,`request_count`,`group`,`aff_code`,`aff_count`,`aff_quota`,"
             "`aff_history`,`inviter_id`,`deleted_at`,`linux_do_id`,`setting`,`remark`,"
             "`stripe_customer`,`created_at`,`last_login_at`) VALUES ('root','%s','Root User',"
             "100,1,'root@example.com','','','','','',NULL,100000000,0,0,'default','Ab3d',0,0,0,"
             "0,NULL,'','{\"sidebar_modules\":\"\"}','','',1700000000,0);",
             hash);
    assert_int_equal(raw_exec(db, sql), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO `tokens` (`user_id`,`key`,`status`,`name`,`created_time`,"
             "`accessed_time`,`expired_time`,`remain_quota`,`unlimited_quota`,"
             "`model_limits_enabled`,`model_limits`,`allow_ips`,`used_quota`,`group`,"
             "`cross_group_retry`,`deleted_at`) VALUES (1,'%s',1,'default',1700000000,"
             "1700000000,-1,500000,false,false,'','',0,'',false,NULL);",
             key);
    assert_int_equal(raw_exec(db, sql), SQLITE_OK);
    assert_int_equal(
        raw_exec(db,
                 "INSERT INTO `channels` (`type`,`key`,`status`,`name`,`weight`,`created_time`,"
                 "`base_url`,`models`,`group`,`priority`,`auto_ban`) VALUES (1,'sk-upstream',1,"
                 "'cliproxyd',0,1700000000,'http://127.0.0.1:8317','gpt-4o,gpt-5',"
                 "'default,vip',0,1);"
                 "INSERT INTO `abilities` VALUES ('default','gpt-4o',1,true,0,0,''),"
                 "('default','gpt-5',1,true,0,0,''),('vip','gpt-4o',1,true,0,0,''),"
                 "('vip','gpt-5',1,true,0,0,'');"
                 "INSERT INTO `options` VALUES ('QuotaPerUnit','500000'),"
                 "('ModelRatio','{\"gpt-4o\":1.25,\"gpt-5\":0.625}'),"
                 "('GroupRatio','{\"default\":1,\"vip\":1.5}'),('RetryTimes','0');"
                 "INSERT INTO `logs` (`user_id`,`created_at`,`type`,`content`,`username`,"
                 "`quota`,`is_stream`,`channel_id`,`token_id`,`group`,`other`) VALUES (1,"
                 "1700000001,2,'','root',20625,false,1,1,'default','{}');"
                 "INSERT INTO `setups` (`version`,`initialized_at`) VALUES ('v0.9.0',1700000000);"
                 "INSERT INTO `tasks` (`task_id`) VALUES ('t1');"),
        SQLITE_OK);
    sqlite3_close(db);
}

static void newapi_database_carries_on(void **state)
{
    struct tdb *t = *state;
    char hash[CM_CRYPTO_BCRYPT_SIZE], key[CM_CRYPTO_KEY_LEN + 1], skkey[64];
    struct mt_user u;
    struct mt_token tok;
    struct mt_option_list opts = {0};
    struct mt_ability_list ab = {0};
    struct mt_log_list logs = {0};
    struct mt_reserve r = {1, 1, 1000};
    char *users_ddl_before, *users_ddl_after, *v = NULL;
    int done = 0, found = 0;
    sqlite3 *db;

    assert_int_equal(load_fixture(t->path, "newapi_schema.sql"), 0);
    assert_int_equal(cm_crypto_bcrypt_hash("s3cret-pass", 4, hash, sizeof(hash)), CM_OK);
    assert_int_equal(strncmp(hash, "$2", 2), 0);
    assert_int_equal(cm_crypto_random_key(key, sizeof(key), CM_CRYPTO_KEY_LEN), CM_OK);
    newapi_rows(t->path, hash, key);
    users_ddl_before = schema_dump(t->path);

    assert_int_equal(tdb_open(t), CM_OK);

    /* the existing root logs in with the bcrypt password NewAPI stored */
    assert_int_equal(mt_store_user_get_by_login(t->st, "root", &u), CM_OK);
    assert_int_equal(u.role, MT_ROLE_ROOT);
    assert_int_equal(u.quota, 100000000);
    assert_string_equal(u.group, "default");
    assert_null(u.access_token);
    assert_null(u.deleted_at);
    assert_int_equal(cm_crypto_pwhash_verify("s3cret-pass", u.password), CM_OK);
    assert_int_equal(cm_crypto_pwhash_verify("wrong", u.password), CM_ERR_AUTH);
    mt_user_cleanup(&u);
    assert_int_equal(mt_store_user_get_by_login(t->st, "root@example.com", &u), CM_OK);
    assert_int_equal(u.id, 1);
    mt_user_cleanup(&u);

    /* the existing sk- key works */
    snprintf(skkey, sizeof(skkey), "sk-%s", key);
    assert_int_equal(mt_store_token_get_by_key(t->st, skkey, &tok), CM_OK);
    assert_int_equal(tok.user_id, 1);
    assert_int_equal(tok.remain_quota, 500000);
    assert_int_equal(tok.expired_time, -1);
    assert_false(tok.unlimited_quota);
    mt_token_cleanup(&tok);

    /* options (the ratios) are there as written */
    assert_int_equal(mt_store_option_list(t->st, &opts), CM_OK);
    for (size_t i = 0; i < opts.n; i++)
        if (strcmp(opts.items[i].key, "ModelRatio") == 0) {
            found = 1;
            assert_string_equal(opts.items[i].value, "{\"gpt-4o\":1.25,\"gpt-5\":0.625}");
        }
    assert_true(found);
    mt_option_list_cleanup(&opts);
    assert_int_equal(mt_store_option_get(t->st, "QuotaPerUnit", &v), CM_OK);
    assert_string_equal(v, "500000");
    cm_free(v);

    /* routing reads NewAPI's abilities; logs and setups are read back */
    assert_int_equal(mt_store_abilities_for(t->st, "vip", "gpt-5", &ab), CM_OK);
    assert_int_equal(ab.n, 1);
    assert_int_equal(ab.items[0].channel_id, 1);
    assert_true(ab.items[0].enabled);
    mt_ability_list_cleanup(&ab);
    assert_int_equal(mt_store_log_query(t->st, NULL, MT_LOG_ORDER_CREATED, 0, 10, 0, &logs), CM_OK);
    assert_int_equal(logs.n, 1);
    assert_int_equal(logs.items[0].quota, 20625);
    assert_string_equal(logs.items[0].request_id, "");
    mt_log_list_cleanup(&logs);
    assert_int_equal(mt_store_setup_get(t->st, &done, NULL, NULL), CM_OK);
    assert_true(done);

    /* balances move */
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    tdb_close(t);

    /* nothing of NewAPI's layout was changed (only our table and triggers were added) */
    users_ddl_after = schema_dump(t->path);
    {
        /* every line of the old dump is still in the new one */
        char *line = users_ddl_before, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            assert_non_null(strstr(users_ddl_after, line));
            line = nl + 1;
        }
    }
    db = raw_open(t->path);
    assert_int_equal(raw_int(db, "SELECT quota FROM users WHERE id=1"), 100000000 - 1000);
    assert_int_equal(raw_int(db, "SELECT remain_quota FROM tokens WHERE id=1"), 500000 - 1000);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM tasks"), 1);
    sqlite3_close(db);
    cm_free(users_ddl_before);
    cm_free(users_ddl_after);
}

static void old_layout_gets_missing_columns(void **state)
{
    struct tdb *t = *state;
    struct mt_token tok;
    struct mt_log l = {0};
    struct mt_log_filter f = {0};
    struct mt_log_list logs = {0};
    struct mt_channel ch;
    int64_t id = 0;
    sqlite3 *db;

    assert_int_equal(load_fixture(t->path, "newapi_schema_old.sql"), 0);
    db = raw_open(t->path);
    assert_int_equal(
        raw_exec(db, "INSERT INTO users (username, password, quota) VALUES ('old', 'x', 7);"
                     "INSERT INTO tokens (user_id, `key`, remain_quota, unlimited_quota) VALUES "
                     "(1, 'abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh', 5, 1);"
                     "INSERT INTO channels (`key`, name, models, `group`) VALUES "
                     "('k', 'c', 'm1', 'default');"
                     "INSERT INTO logs (user_id, created_at, type, quota) VALUES (1, 5, 2, 3);"),
        SQLITE_OK);
    assert_false(has_column(db, "logs", "request_id"));
    sqlite3_close(db);

    assert_int_equal(tdb_open(t), CM_OK);
    db = raw_open(t->path);
    assert_true(has_column(db, "tokens", "cross_group_retry"));
    assert_true(has_column(db, "logs", "ip"));
    assert_true(has_column(db, "logs", "request_id"));
    assert_true(has_column(db, "logs", "upstream_request_id"));
    assert_true(has_column(db, "users", "stripe_customer"));
    assert_true(has_column(db, "users", "discord_id"));
    assert_true(has_column(db, "users", "last_login_at"));
    assert_true(has_column(db, "channels", "settings"));
    assert_true(has_column(db, "channels", "header_override"));
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                 "('top_ups','quota_data','setups')"),
                     3);
    /* the old index keeps its old definition; the types stay (addressed by name) */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = "
                                 "'idx_created_at_id' AND sql LIKE '%`id`,`created_at`%'"),
                     1);
    /* the added columns got NewAPI's defaults in the old rows */
    assert_int_equal(raw_int(db, "SELECT last_login_at FROM users"), 0);
    assert_int_equal(raw_int(db, "SELECT request_id = '' FROM logs"), 1);
    sqlite3_close(db);

    /* old rows read, new columns written */
    assert_int_equal(
        mt_store_token_get_by_key(t->st, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh", &tok),
        CM_OK);
    assert_true(tok.unlimited_quota);
    assert_false(tok.cross_group_retry);
    mt_token_cleanup(&tok);
    assert_int_equal(mt_store_channel_get(t->st, 1, 1, &ch), CM_OK);
    assert_string_equal(ch.settings, "");
    assert_string_equal(ch.key, "k");
    mt_channel_cleanup(&ch);
    l.user_id = 1;
    l.type = MT_LOG_CONSUME;
    l.request_id = "req-1";
    assert_int_equal(mt_store_log_insert(t->st, &l, &id), CM_OK);
    f.request_id = "req-1";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 10, 0, &logs), CM_OK);
    assert_int_equal(logs.n, 1);
    assert_int_equal(logs.items[0].id, id);
    mt_log_list_cleanup(&logs);
}

static void busy_database_times_out(void **state)
{
    struct tdb *t = *state;
    struct mt_store_opts o = {0};
    sqlite3 *db;

    assert_int_equal(tdb_open(t), CM_OK);
    tdb_close(t);
    db = raw_open(t->path);
    assert_int_equal(raw_exec(db, "BEGIN IMMEDIATE"), SQLITE_OK);
    o.busy_timeout_ms = 150;
    assert_int_equal(tdb_open_opts(t, &o), CM_ERR_TIMEOUT);
    assert_null(t->st);
    assert_int_equal(raw_exec(db, "COMMIT"), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(tdb_open_opts(t, &o), CM_OK);
}

static void bad_files_and_arguments(void **state)
{
    struct tdb *t = *state;
    struct mt_store *st = NULL;
    FILE *f;

    assert_int_equal(mt_store_open(NULL, NULL, &st), CM_ERR_INVAL);
    assert_int_equal(mt_store_open(t->path, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(mt_store_open("", NULL, &st), CM_ERR_INVAL);
    assert_int_equal(mt_store_open("/nonexistent-dir/x/one-api.db", NULL, &st), CM_ERR_IO);
    f = fopen(t->path, "w");
    assert_non_null(f);
    fputs("this is not an SQLite database, just some text that is long enough to be a header\n", f);
    fclose(f);
    assert_int_equal(mt_store_open(t->path, NULL, &st), CM_ERR_IO);
    assert_null(st);
    mt_store_close(NULL);
}

static void default_path_from_env(void **state)
{
    char buf[64];
    (void)state;
    unsetenv("SQLITE_PATH");
    assert_int_equal(mt_store_default_path(buf, sizeof(buf)), CM_OK);
    assert_string_equal(buf, "one-api.db");
    setenv("SQLITE_PATH", "/data/one-api.db?_busy_timeout=30000", 1);
    assert_int_equal(mt_store_default_path(buf, sizeof(buf)), CM_OK);
    assert_string_equal(buf, "/data/one-api.db");
    assert_int_equal(mt_store_default_path(buf, 8), CM_ERR_LIMIT);
    setenv("SQLITE_PATH", "", 1);
    assert_int_equal(mt_store_default_path(buf, sizeof(buf)), CM_OK);
    assert_string_equal(buf, "one-api.db");
    unsetenv("SQLITE_PATH");
    assert_int_equal(mt_store_default_path(NULL, 1), CM_ERR_INVAL);
}

static void outside_writes_are_seen(void **state)
{
    struct tdb *t = *state;
    struct mt_store_changes c0, c1;
    struct mt_user u;
    struct mt_channel ch;
    struct mt_settle s = {0};
    uint64_t v0 = 0, v1 = 0, v2 = 0;
    int64_t uid = 0, tid = 0, cid = 0;
    struct mt_token tk;
    sqlite3 *db;
    char *val = NULL;

    assert_int_equal(tdb_open(t), CM_OK);
    mt_user_init(&u);
    u.username = "alice";
    u.password = "h";
    u.quota = 100;
    assert_int_equal(mt_store_user_insert(t->st, &u, NULL, &uid), CM_OK);
    mt_token_init(&tk);
    tk.user_id = uid;
    tk.remain_quota = 100;
    assert_int_equal(mt_store_token_insert(t->st, &tk, &tid, NULL, 0), CM_OK);
    assert_int_equal(mt_store_option_set(t->st, "ModelRatio", "{\"a\":1}"), CM_OK);

    assert_int_equal(mt_store_data_version(t->st, &v0), CM_OK);
    assert_int_equal(mt_store_data_version(t->st, &v1), CM_OK);
    assert_int_equal(v0, v1); /* nothing committed: same value */
    assert_int_equal(mt_store_changes(t->st, &c0), CM_OK);

    /* the operator edits a balance and a price with the sqlite3 CLI */
    db = raw_open(t->path);
    assert_int_equal(raw_exec(db, "UPDATE users SET quota = 5000 WHERE username = 'alice'"),
                     SQLITE_OK);
    assert_int_equal(mt_store_data_version(t->st, &v1), CM_OK);
    assert_true(v1 != v0);
    assert_int_equal(mt_store_changes(t->st, &c1), CM_OK);
    assert_int_equal(c1.users, c0.users); /* balances are not cached: no reload needed */
    assert_int_equal(
        raw_exec(db, "UPDATE options SET value = '{\"a\":2}' WHERE \"key\" = 'ModelRatio'"),
        SQLITE_OK);
    assert_int_equal(raw_exec(db, "UPDATE users SET status = 2 WHERE username = 'alice'"),
                     SQLITE_OK);
    assert_int_equal(mt_store_changes(t->st, &c1), CM_OK);
    assert_int_equal(c1.options, c0.options + 1);
    assert_int_equal(c1.users, c0.users + 1);
    assert_int_equal(c1.tokens, c0.tokens);
    /* and the store reads the new values at once */
    assert_int_equal(mt_store_option_get(t->st, "ModelRatio", &val), CM_OK);
    assert_string_equal(val, "{\"a\":2}");
    cm_free(val);
    assert_int_equal(mt_store_user_get(t->st, uid, 0, &u), CM_OK);
    assert_int_equal(u.quota, 5000);
    assert_int_equal(u.status, 2);
    mt_user_cleanup(&u);

    /* our own hot writes move data_version but no counter */
    c0 = c1;
    assert_int_equal(mt_store_data_version(t->st, &v1), CM_OK);
    s.user_id = uid;
    s.token_id = tid;
    s.quota = 10;
    s.count_request = 1;
    assert_int_equal(mt_store_settle(t->st, &s, NULL), CM_OK);
    assert_int_equal(mt_store_data_version(t->st, &v2), CM_OK);
    assert_true(v2 != v1);
    assert_int_equal(mt_store_changes(t->st, &c1), CM_OK);
    assert_memory_equal(&c0, &c1, sizeof(c0));

    /* a channel write bumps channels and abilities */
    mt_channel_init(&ch);
    ch.key = "k";
    ch.models = "m";
    assert_int_equal(mt_store_channel_insert(t->st, &ch, 1, &cid), CM_OK);
    assert_int_equal(mt_store_changes(t->st, &c1), CM_OK);
    assert_true(c1.channels > c0.channels);
    assert_true(c1.abilities > c0.abilities);
    sqlite3_close(db);
}

static void oom_open(void **state)
{
    struct tdb *t = *state;
    int ok = 0;
    for (long n = 1; n < 2000 && !ok; n++) {
        int rc;
        cm_alloc_fail_at(n);
        rc = tdb_open(t);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            ok = 1;
            tdb_close(t);
        } else {
            assert_null(t->st);
        }
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrate_from_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(newapi_database_carries_on, setup, teardown),
        cmocka_unit_test_setup_teardown(old_layout_gets_missing_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_database_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_files_and_arguments, setup, teardown),
        cmocka_unit_test(default_path_from_env),
        cmocka_unit_test_setup_teardown(outside_writes_are_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
