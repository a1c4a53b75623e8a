/* SPDX-License-Identifier: MIT */
/*
 * test_store_users.c - the store's users, tokens, options, setups, redemptions and
 * top-ups: every query function on a temporary database (lookups, defaults written on
 * insert, conflicts, edits, soft/hard delete, lists, searches with LIKE escaping,
 * atomic redeem / top-up completion), plus OOM walks of the allocating reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_util.h"

static int setup(void **state)
{
    static struct tdb t;
    if (tdb_init(&t) || tdb_open(&t))
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

static int64_t add_user(struct mt_store *st, const char *name, int64_t quota)
{
    struct mt_user u;
    int64_t id = 0;
    mt_user_init(&u);
    u.username = name;
    u.password = "$2a$10$hash";
    u.display_name = name;
    u.quota = quota;
    assert_int_equal(mt_store_user_insert(st, &u, NULL, &id), CM_OK);
    return id;
}

static void users_insert_and_lookups(void **state)
{
    struct tdb *t = *state;
    struct mt_user u, got;
    struct mt_log reg = {0};
    struct mt_log_list logs = {0};
    int64_t id = 0, id2 = 0, n = 0;
    int taken = 0, root = 1;
    sqlite3 *db;

    mt_user_init(&u);
    u.username = "alice";
    u.password = "$2a$10$abcdefghijklmnopqrstuv";
    u.email = "alice@example.com";
    u.quota = 500;
    reg.type = MT_LOG_SYSTEM;
    reg.content = "new user grant";
    reg.quota = 500;
    assert_int_equal(mt_store_user_insert(t->st, &u, &reg, &id), CM_OK);
    assert_true(id > 0);

    assert_int_equal(mt_store_user_get(t->st, id, 0, &got), CM_OK);
    assert_string_equal(got.username, "alice");
    assert_int_equal(got.role, MT_ROLE_COMMON);
    assert_int_equal(got.status, MT_USER_ENABLED);
    assert_string_equal(got.group, "default");
    assert_int_equal(got.quota, 500);
    assert_int_equal(got.created_at, T0_WALL_MS / 1000); /* row default set by the writer */
    assert_int_equal(strlen(got.aff_code), 4);           /* NewAPI's 4-char invite code */
    assert_string_equal(got.setting, "");
    assert_string_equal(got.github_id, ""); /* never NULL: NewAPI's Go strings */
    assert_null(got.access_token);
    mt_user_cleanup(&got);
    assert_null(got._mem);

    /* the registration log row went in with the new id */
    assert_int_equal(mt_store_log_query(t->st, NULL, MT_LOG_ORDER_ID, 0, 10, 0, &logs), CM_OK);
    assert_int_equal(logs.n, 1);
    assert_int_equal(logs.items[0].user_id, id);
    mt_log_list_cleanup(&logs);

    /* NULL strings are stored as '' (GORM cannot scan NULL into a Go string) */
    db = raw_open(t->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM users WHERE email IS NULL OR "
                                 "display_name IS NULL OR remark IS NULL"),
                     0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM users WHERE access_token IS NULL"), 1);
    sqlite3_close(db);

    assert_int_equal(mt_store_user_get_by_username(t->st, "alice", &got), CM_OK);
    mt_user_cleanup(&got);
    assert_int_equal(mt_store_user_get_by_login(t->st, "alice@example.com", &got), CM_OK);
    assert_int_equal(got.id, id);
    mt_user_cleanup(&got);
    assert_int_equal(mt_store_user_get_by_login(t->st, "", &got), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_get_by_login(t->st, "nobody", &got), CM_ERR_NOTFOUND);

    /* a user named like another's email: the username wins */
    mt_user_init(&u);
    u.username = "alice@example.com";
    u.password = "h";
    assert_int_equal(mt_store_user_insert(t->st, &u, NULL, &id2), CM_OK);
    assert_int_equal(mt_store_user_get_by_login(t->st, "alice@example.com", &got), CM_OK);
    assert_int_equal(got.id, id2);
    mt_user_cleanup(&got);

    /* conflicts and bad input */
    mt_user_init(&u);
    u.username = "alice";
    u.password = "h";
    assert_int_equal(mt_store_user_insert(t->st, &u, NULL, NULL), CM_ERR_EXISTS);
    u.password = "";
    assert_int_equal(mt_store_user_insert(t->st, &u, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(mt_store_user_insert(t->st, NULL, NULL, NULL), CM_ERR_INVAL);

    /* access tokens */
    assert_int_equal(mt_store_user_set_access_token(t->st, id, "tok+/=abc"), CM_OK);
    assert_int_equal(mt_store_user_get_by_access_token(t->st, "tok+/=abc", &got), CM_OK);
    assert_int_equal(got.id, id);
    mt_user_cleanup(&got);
    assert_int_equal(mt_store_user_set_access_token(t->st, id2, "tok+/=abc"), CM_ERR_EXISTS);
    assert_int_equal(mt_store_user_get_by_access_token(t->st, "", &got), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_set_access_token(t->st, id, NULL), CM_OK);
    assert_int_equal(mt_store_user_get_by_access_token(t->st, "tok+/=abc", &got), CM_ERR_NOTFOUND);

    /* root detection and counts */
    assert_int_equal(mt_store_user_root_exists(t->st, &root), CM_OK);
    assert_false(root);
    assert_int_equal(mt_store_user_set_role(t->st, id, MT_ROLE_ROOT), CM_OK);
    assert_int_equal(mt_store_user_root_exists(t->st, &root), CM_OK);
    assert_true(root);
    assert_int_equal(mt_store_user_count(t->st, &n), CM_OK);
    assert_int_equal(n, 2);

    /* soft delete: hidden from lookups, username stays taken, count drops */
    assert_int_equal(mt_store_user_soft_delete(t->st, id2), CM_OK);
    assert_int_equal(mt_store_user_soft_delete(t->st, id2), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_get(t->st, id2, 0, &got), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_get(t->st, id2, 1, &got), CM_OK);
    assert_non_null(got.deleted_at);
    assert_int_equal(strncmp(got.deleted_at, "2025-06-15 ", 11), 0);
    mt_user_cleanup(&got);
    assert_int_equal(mt_store_user_username_taken(t->st, "alice@example.com", &taken), CM_OK);
    assert_true(taken);
    assert_int_equal(mt_store_user_username_taken(t->st, "zed", &taken), CM_OK);
    assert_false(taken);
    assert_int_equal(mt_store_user_count(t->st, &n), CM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(mt_store_user_delete(t->st, id2), CM_OK);
    assert_int_equal(mt_store_user_delete(t->st, id2), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_username_taken(t->st, "alice@example.com", &taken), CM_OK);
    assert_false(taken);
}

static void users_edit_and_quota(void **state)
{
    struct tdb *t = *state;
    struct mt_user u, got;
    struct mt_log l = {0};
    struct mt_log_filter f = {0};
    struct mt_log_list logs = {0};
    int64_t id = add_user(t->st, "bob", 100), old = 0;

    mt_user_init(&u);
    u.id = id;
    u.username = "bobby";
    u.display_name = "Bob B";
    u.group = "vip";
    u.remark = "good customer";
    u.password = NULL; /* kept */
    u.quota = 999999;  /* not written by edit (NewAPI's User.Edit) */
    assert_int_equal(mt_store_user_edit(t->st, &u), CM_OK);
    assert_int_equal(mt_store_user_get(t->st, id, 0, &got), CM_OK);
    assert_string_equal(got.username, "bobby");
    assert_string_equal(got.group, "vip");
    assert_string_equal(got.remark, "good customer");
    assert_string_equal(got.password, "$2a$10$hash");
    assert_int_equal(got.quota, 100);
    mt_user_cleanup(&got);
    u.password = "$argon2id$new";
    assert_int_equal(mt_store_user_edit(t->st, &u), CM_OK);
    assert_int_equal(mt_store_user_get(t->st, id, 0, &got), CM_OK);
    assert_string_equal(got.password, "$argon2id$new");
    mt_user_cleanup(&got);
    u.id = 9999;
    assert_int_equal(mt_store_user_edit(t->st, &u), CM_ERR_NOTFOUND);
    u.id = id;
    u.username = NULL;
    assert_int_equal(mt_store_user_edit(t->st, &u), CM_ERR_INVAL);

    assert_int_equal(mt_store_user_set_status(t->st, id, MT_USER_DISABLED), CM_OK);
    assert_int_equal(mt_store_user_set_status(t->st, 9999, 1), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_set_password(t->st, id, "p2"), CM_OK);
    assert_int_equal(mt_store_user_set_password(t->st, id, ""), CM_ERR_INVAL);
    assert_int_equal(mt_store_user_set_setting(t->st, id, "{\"record_ip_log\":true}"), CM_OK);
    assert_int_equal(mt_store_user_set_last_login(t->st, id, 1750000123), CM_OK);
    assert_int_equal(mt_store_user_get(t->st, id, 0, &got), CM_OK);
    assert_int_equal(got.status, MT_USER_DISABLED);
    assert_string_equal(got.setting, "{\"record_ip_log\":true}");
    assert_int_equal(got.last_login_at, 1750000123);
    mt_user_cleanup(&got);

    /* relative add/subtract with the admin log row in the same transaction; override */
    l.type = MT_LOG_MANAGE;
    l.content = "admin added quota";
    l.user_id = id;
    assert_int_equal(mt_store_user_quota_add(t->st, id, 50, &l), CM_OK);
    assert_int_equal(mt_store_user_quota_add(t->st, id, -200, NULL), CM_OK);
    assert_int_equal(mt_store_user_get(t->st, id, 0, &got), CM_OK);
    assert_int_equal(got.quota, -50); /* never clamped */
    mt_user_cleanup(&got);
    assert_int_equal(mt_store_user_quota_set(t->st, id, 7000, &old, &l), CM_OK);
    assert_int_equal(old, -50);
    assert_int_equal(mt_store_user_quota_add(t->st, 9999, 1, &l), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_quota_set(t->st, 9999, 1, NULL, NULL), CM_ERR_NOTFOUND);
    f.type = MT_LOG_MANAGE;
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 10, 0, &logs), CM_OK);
    assert_int_equal(logs.n, 2); /* the failed add wrote none (same transaction) */
    mt_log_list_cleanup(&logs);
}

static void users_list_and_search(void **state)
{
    struct tdb *t = *state;
    struct mt_user_list l = {0};
    struct mt_user_filter f = {NULL, NULL, -1, 0};
    struct mt_user u;
    int64_t ids[5];

    ids[0] = add_user(t->st, "carol", 1);
    ids[1] = add_user(t->st, "dave_x", 2);
    ids[2] = add_user(t->st, "davexy", 3);
    ids[3] = add_user(t->st, "erin", 4);
    ids[4] = add_user(t->st, "frank", 5);
    assert_int_equal(mt_store_user_set_role(t->st, ids[3], MT_ROLE_ADMIN), CM_OK);
    assert_int_equal(mt_store_user_soft_delete(t->st, ids[4]), CM_OK);
    mt_user_init(&u);
    u.id = ids[0];
    u.username = "carol";
    u.display_name = "Carol";
    u.group = "vip";
    assert_int_equal(mt_store_user_edit(t->st, &u), CM_OK);

    /* the admin list includes soft-deleted users, id desc, paged */
    assert_int_equal(mt_store_user_list(t->st, 0, 2, &l), CM_OK);
    assert_int_equal(l.total, 5);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.items[0].id, ids[4]);
    assert_non_null(l.items[0].deleted_at);
    mt_user_list_cleanup(&l);
    assert_int_equal(mt_store_user_list(t->st, 4, 2, &l), CM_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.items[0].id, ids[0]);
    mt_user_list_cleanup(&l);
    assert_int_equal(mt_store_user_list(t->st, 0, 0, &l), CM_ERR_INVAL);
    assert_int_equal(mt_store_user_list(t->st, -1, 5, &l), CM_ERR_INVAL);
    assert_int_equal(mt_store_user_list(t->st, 0, MT_STORE_LIST_MAX + 1, &l), CM_ERR_INVAL);

    /* '_' is literal, not a LIKE wildcard */
    f.keyword = "dave_";
    assert_int_equal(mt_store_user_search(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].username, "dave_x");
    mt_user_list_cleanup(&l);
    f.keyword = "dave";
    assert_int_equal(mt_store_user_search(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 2);
    assert_int_equal(l.items[0].id, ids[2]);
    mt_user_list_cleanup(&l);
    /* a numeric keyword also matches the id; deleted users are not searched */
    f.keyword = "5";
    assert_int_equal(mt_store_user_search(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 0);
    mt_user_list_cleanup(&l);
    f.keyword = "1";
    assert_int_equal(mt_store_user_search(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_int_equal(l.items[0].id, 1);
    mt_user_list_cleanup(&l);
    f.keyword = NULL;
    f.group = "vip";
    assert_int_equal(mt_store_user_search(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].display_name, "Carol");
    mt_user_list_cleanup(&l);
    f.group = NULL;
    f.role = MT_ROLE_ADMIN;
    assert_int_equal(mt_store_user_search(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_int_equal(l.items[0].id, ids[3]);
    mt_user_list_cleanup(&l);
    f.role = -1;
    f.status = MT_USER_ENABLED;
    assert_int_equal(mt_store_user_search(t->st, NULL, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 4);
    mt_user_list_cleanup(&l);
}

static void tokens_all(void **state)
{
    struct tdb *t = *state;
    struct mt_token tk, got;
    struct mt_token_list l = {0};
    char key[MT_TOKEN_KEY_MAX + 1], pinned[200];
    char **keys = NULL;
    int64_t uid = add_user(t->st, "tom", 1000), other = add_user(t->st, "ann", 0);
    int64_t id = 0, id2 = 0, id3 = 0, n = 0, ids[3];

    mt_token_init(&tk);
    tk.user_id = uid;
    tk.name = "main";
    tk.remain_quota = 300;
    tk.model_limits_enabled = 1;
    tk.model_limits = "gpt-4o,gpt-5";
    assert_int_equal(mt_store_token_insert(t->st, &tk, &id, key, sizeof(key)), CM_OK);
    assert_int_equal(strlen(key), CM_CRYPTO_KEY_LEN);
    for (const char *p = key; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= 'A' && *p <= 'Z'));
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, key, 10), CM_ERR_LIMIT);

    /* by key: plain, with sk-, with a channel pin */
    assert_int_equal(mt_store_token_get_by_key(t->st, key, &got), CM_OK);
    assert_int_equal(got.id, id);
    assert_int_equal(got.status, MT_TOKEN_ENABLED);
    assert_int_equal(got.expired_time, -1);
    assert_int_equal(got.created_time, T0_WALL_MS / 1000);
    assert_int_equal(got.accessed_time, T0_WALL_MS / 1000);
    assert_true(got.model_limits_enabled);
    assert_string_equal(got.model_limits, "gpt-4o,gpt-5");
    assert_string_equal(got.allow_ips, "");
    mt_token_cleanup(&got);
    snprintf(pinned, sizeof(pinned), "sk-%s-12", key);
    assert_int_equal(mt_store_token_get_by_key(t->st, pinned, &got), CM_OK);
    assert_int_equal(got.id, id);
    mt_token_cleanup(&got);
    assert_int_equal(mt_store_token_get_by_key(t->st, "sk-", &got), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_token_get_by_key(t->st, "nope", &got), CM_ERR_NOTFOUND);

    /* a given key; duplicates refused */
    tk.key = "fixedkey_with%percent";
    tk.name = "second";
    assert_int_equal(mt_store_token_insert(t->st, &tk, &id2, NULL, 0), CM_OK);
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_ERR_EXISTS);
    tk.key = NULL;
    tk.name = "other's";
    tk.user_id = other;
    assert_int_equal(mt_store_token_insert(t->st, &tk, &id3, NULL, 0), CM_OK);
    tk.user_id = 0;
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_ERR_INVAL);
    tk.user_id = other;
    tk.key = "has-dash";
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_ERR_INVAL);
    tk.key = NULL;

    /* scoped reads and updates */
    assert_int_equal(mt_store_token_get(t->st, id, uid, &got), CM_OK);
    mt_token_cleanup(&got);
    assert_int_equal(mt_store_token_get(t->st, id, other, &got), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_token_get(t->st, id3, 0, &got), CM_OK);
    mt_token_cleanup(&got);
    mt_token_init(&tk);
    tk.id = id;
    tk.user_id = uid;
    tk.name = "renamed";
    tk.status = MT_TOKEN_DISABLED;
    tk.expired_time = 1800000000;
    tk.remain_quota = 42;
    tk.unlimited_quota = 1;
    tk.allow_ips = "127.64.0.0/10\n127.0.0.1";
    tk.group = "auto";
    tk.cross_group_retry = 1;
    assert_int_equal(mt_store_token_update(t->st, &tk), CM_OK);
    assert_int_equal(mt_store_token_get(t->st, id, uid, &got), CM_OK);
    assert_string_equal(got.name, "renamed");
    assert_int_equal(got.status, MT_TOKEN_DISABLED);
    assert_int_equal(got.expired_time, 1800000000);
    assert_int_equal(got.remain_quota, 42);
    assert_true(got.unlimited_quota);
    assert_false(got.model_limits_enabled);
    assert_string_equal(got.group, "auto");
    assert_true(got.cross_group_retry);
    assert_string_equal(got.key, key); /* the key is never edited */
    mt_token_cleanup(&got);
    tk.user_id = other;
    assert_int_equal(mt_store_token_update(t->st, &tk), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_token_set_status(t->st, id, MT_TOKEN_EXHAUSTED), CM_OK);
    assert_int_equal(mt_store_token_set_status(t->st, 9999, 1), CM_ERR_NOTFOUND);

    /* lists and search */
    assert_int_equal(mt_store_token_count(t->st, uid, &n), CM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(mt_store_token_list(t->st, uid, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 2);
    assert_int_equal(l.items[0].id, id2);
    mt_token_list_cleanup(&l);
    assert_int_equal(mt_store_token_search(t->st, uid, "ren%", NULL, 10, &l), CM_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.items[0].id, id);
    mt_token_list_cleanup(&l);
    assert_int_equal(mt_store_token_search(t->st, uid, "ren", NULL, 10, &l), CM_OK);
    assert_int_equal(l.n, 0); /* no wildcard: exact */
    mt_token_list_cleanup(&l);
    assert_int_equal(mt_store_token_search(t->st, uid, NULL, "sk-fixedkey_with%", 10, &l), CM_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.items[0].id, id2);
    mt_token_list_cleanup(&l);
    assert_int_equal(mt_store_token_search(t->st, uid, "%", NULL, 10, &l), CM_OK);
    assert_int_equal(l.total, 2);
    mt_token_list_cleanup(&l);
    assert_int_equal(mt_store_token_search(t->st, other, "%", NULL, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    mt_token_list_cleanup(&l);

    /* keys by id, only the owner's */
    ids[0] = id;
    ids[1] = id3;
    ids[2] = id2;
    assert_int_equal(mt_store_token_keys(t->st, uid, ids, 3, &keys), CM_OK);
    assert_string_equal(keys[0], key);
    assert_null(keys[1]);
    assert_string_equal(keys[2], "fixedkey_with%percent");
    mt_token_keys_free(keys, 3);

    /* soft delete: gone from lookups, the key keeps its unique slot */
    assert_int_equal(mt_store_token_delete(t->st, id, other), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_token_delete(t->st, id, uid), CM_OK);
    assert_int_equal(mt_store_token_get_by_key(t->st, key, &got), CM_ERR_NOTFOUND);
    tk.key = key;
    tk.user_id = uid;
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_ERR_EXISTS);
    assert_int_equal(mt_store_token_delete_many(t->st, uid, ids, 3, &n), CM_OK);
    assert_int_equal(n, 1); /* id2; id already gone, id3 not the user's */
    assert_int_equal(mt_store_token_count(t->st, uid, &n), CM_OK);
    assert_int_equal(n, 0);
}

static void options_all(void **state)
{
    struct tdb *t = *state;
    struct mt_option kv[3] = {
        {"ModelRatio", "{\"gpt-4o\":1.25}"}, {"QuotaPerUnit", "500000"}, {"Empty", NULL}};
    struct mt_option_list l = {0};
    char *v = NULL;

    int done = 0;

    assert_int_equal(mt_store_option_list(t->st, &l), CM_OK);
    assert_int_equal(l.n, 0);
    mt_option_list_cleanup(&l);
    /* (setups on the same fresh store: POST /api/setup writes the row directly) */
    assert_int_equal(mt_store_setup_insert(t->st, "v9"), CM_OK);
    assert_int_equal(mt_store_setup_get(t->st, &done, NULL, NULL), CM_OK);
    assert_true(done);
    assert_int_equal(mt_store_now(t->st), T0_WALL_MS / 1000);
    assert_int_equal(mt_store_option_set_many(t->st, kv, 3), CM_OK);
    assert_int_equal(mt_store_option_set(t->st, "QuotaPerUnit", "1000"), CM_OK);
    assert_int_equal(mt_store_option_get(t->st, "QuotaPerUnit", &v), CM_OK);
    assert_string_equal(v, "1000");
    cm_free(v);
    assert_int_equal(mt_store_option_get(t->st, "Empty", &v), CM_OK);
    assert_string_equal(v, "");
    cm_free(v);
    assert_int_equal(mt_store_option_get(t->st, "Missing", &v), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_option_list(t->st, &l), CM_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].key, "Empty");
    assert_string_equal(l.items[1].key, "ModelRatio");
    assert_string_equal(l.items[1].value, "{\"gpt-4o\":1.25}");
    assert_string_equal(l.items[2].value, "1000");
    mt_option_list_cleanup(&l);
    /* an invalid key fails the whole set: nothing is written */
    kv[1].key = "";
    kv[0].value = "changed";
    assert_int_equal(mt_store_option_set_many(t->st, kv, 3), CM_ERR_INVAL);
    assert_int_equal(mt_store_option_get(t->st, "ModelRatio", &v), CM_OK);
    assert_string_equal(v, "{\"gpt-4o\":1.25}");
    cm_free(v);
    assert_int_equal(mt_store_option_delete(t->st, "Empty"), CM_OK);
    assert_int_equal(mt_store_option_delete(t->st, "Empty"), CM_ERR_NOTFOUND);
}

static void setups_all(void **state)
{
    struct tdb *t = *state;
    char *ver = NULL;
    int64_t at = 0;
    int done = 1;

    assert_int_equal(mt_store_setup_get(t->st, &done, &ver, &at), CM_OK);
    assert_false(done);
    assert_null(ver);
    assert_int_equal(mt_store_setup_check(t->st, "v1", &done), CM_OK);
    assert_false(done); /* no root either */
    add_user(t->st, "root", 0);
    assert_int_equal(mt_store_user_set_role(t->st, 1, MT_ROLE_ROOT), CM_OK);
    assert_int_equal(mt_store_setup_check(t->st, "v1", &done), CM_OK);
    assert_true(done); /* legacy database: root exists -> row written */
    assert_int_equal(mt_store_setup_get(t->st, &done, &ver, &at), CM_OK);
    assert_true(done);
    assert_string_equal(ver, "v1");
    assert_int_equal(at, T0_WALL_MS / 1000);
    cm_free(ver);
    assert_int_equal(mt_store_setup_insert(t->st, "v2"), CM_ERR_EXISTS);
    assert_int_equal(mt_store_setup_check(t->st, "v3", &done), CM_OK);
    assert_true(done);
}

static void redemptions_all(void **state)
{
    struct tdb *t = *state;
    struct mt_redemption r;
    struct mt_redemption_list l = {0};
    struct mt_log lg = {0};
    struct mt_log_filter f = {0};
    struct mt_log_list logs = {0};
    struct mt_user u;
    enum mt_redeem_fail why = MT_REDEEM_OK;
    char **keys = NULL, **k2 = NULL;
    int64_t uid = add_user(t->st, "rita", 10), q = 0, cid = 0, n = 0;

    assert_int_equal(mt_store_redemption_create(t->st, 1, "promo", 500, 0, 3, &keys), CM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(strlen(keys[i]), MT_REDEMPTION_KEY_LEN);
        for (const char *p = keys[i]; *p; p++)
            assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    }
    assert_int_equal(mt_store_redemption_create(t->st, 1, "x", 1, 0, 0, &k2), CM_ERR_INVAL);
    assert_int_equal(mt_store_redemption_create(t->st, 1, "x", 1, 0, 101, &k2), CM_ERR_INVAL);

    lg.type = MT_LOG_TOPUP;
    lg.content = "redeemed";
    assert_int_equal(mt_store_redeem(t->st, keys[0], uid, &lg, &q, &cid, &why), CM_OK);
    assert_int_equal(q, 500);
    assert_int_equal(mt_store_user_get(t->st, uid, 0, &u), CM_OK);
    assert_int_equal(u.quota, 510);
    mt_user_cleanup(&u);
    assert_int_equal(mt_store_redemption_get(t->st, cid, &r), CM_OK);
    assert_int_equal(r.status, MT_REDEMPTION_USED);
    assert_int_equal(r.used_user_id, uid);
    assert_int_equal(r.redeemed_time, T0_WALL_MS / 1000);
    mt_redemption_cleanup(&r);
    f.type = MT_LOG_TOPUP;
    f.user_id = uid;
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 10, 0, &logs), CM_OK);
    assert_int_equal(logs.n, 1);
    assert_int_equal(logs.items[0].quota, 500);
    mt_log_list_cleanup(&logs);

    /* once only; disabled; expired; unknown; no such user (nothing applied) */
    assert_int_equal(mt_store_redeem(t->st, keys[0], uid, NULL, &q, NULL, &why), CM_ERR_DENIED);
    assert_int_equal(why, MT_REDEEM_USED);
    assert_int_equal(mt_store_redemption_get(t->st, 2, &r), CM_OK);
    r.status = MT_REDEMPTION_DISABLED;
    assert_int_equal(mt_store_redemption_update(t->st, &r), CM_OK);
    assert_int_equal(mt_store_redeem(t->st, r.key, uid, NULL, NULL, NULL, &why), CM_ERR_DENIED);
    assert_int_equal(why, MT_REDEEM_DISABLED);
    mt_redemption_cleanup(&r);
    assert_int_equal(mt_store_redemption_get(t->st, 3, &r), CM_OK);
    r.expired_time = T0_WALL_MS / 1000 - 1;
    r.name = "promo-expired";
    assert_int_equal(mt_store_redemption_update(t->st, &r), CM_OK);
    assert_int_equal(mt_store_redeem(t->st, r.key, uid, NULL, NULL, NULL, &why), CM_ERR_DENIED);
    assert_int_equal(why, MT_REDEEM_EXPIRED);
    mt_redemption_cleanup(&r);
    assert_int_equal(
        mt_store_redeem(t->st, "00000000000000000000000000000000", uid, NULL, NULL, NULL, &why),
        CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_redemption_create(t->st, 1, "late", 7, 0, 1, &k2), CM_OK);
    assert_int_equal(mt_store_redeem(t->st, k2[0], 9999, NULL, NULL, NULL, &why), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_redemption_get(t->st, 4, &r), CM_OK);
    assert_int_equal(r.status, MT_REDEMPTION_ENABLED); /* rolled back */
    mt_redemption_cleanup(&r);

    /* list, search, delete */
    assert_int_equal(mt_store_redemption_list(t->st, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 4);
    assert_int_equal(l.items[0].id, 4);
    mt_redemption_list_cleanup(&l);
    assert_int_equal(mt_store_redemption_search(t->st, "expired", 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_int_equal(l.items[0].id, 3);
    mt_redemption_list_cleanup(&l);
    assert_int_equal(mt_store_redemption_search(t->st, "4", 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    mt_redemption_list_cleanup(&l);
    assert_int_equal(mt_store_redemption_delete_invalid(t->st, &n), CM_OK);
    assert_int_equal(n, 3); /* used, disabled, expired */
    assert_int_equal(mt_store_redemption_delete(t->st, 4), CM_OK);
    assert_int_equal(mt_store_redemption_delete(t->st, 4), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_redemption_list(t->st, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 0);
    mt_redemption_list_cleanup(&l);
    mt_redemption_keys_free(keys, 3);
    mt_redemption_keys_free(k2, 1);
}

static void topups_all(void **state)
{
    struct tdb *t = *state;
    struct mt_topup tp = {0}, got;
    struct mt_topup_list l = {0};
    struct mt_log lg = {0};
    struct mt_user u;
    int64_t uid = add_user(t->st, "payer", 0), id = 0;

    tp.user_id = uid;
    tp.amount = 10;
    tp.money = 73.0;
    tp.trade_no = "USR1NOabc1231750000000";
    tp.payment_method = "alipay";
    tp.payment_provider = "epay";
    assert_int_equal(mt_store_topup_insert(t->st, &tp, &id), CM_OK);
    assert_int_equal(mt_store_topup_insert(t->st, &tp, NULL), CM_ERR_EXISTS);
    tp.trade_no = "USR1NOdef4561750000000";
    assert_int_equal(mt_store_topup_insert(t->st, &tp, NULL), CM_OK);
    assert_int_equal(mt_store_topup_get_by_trade_no(t->st, "USR1NOabc1231750000000", &got), CM_OK);
    assert_string_equal(got.status, MT_TOPUP_PENDING);
    assert_int_equal(got.create_time, T0_WALL_MS / 1000);
    assert_true(got.money > 72.9 && got.money < 73.1);
    mt_topup_cleanup(&got);

    lg.type = MT_LOG_TOPUP;
    lg.content = "online top-up";
    assert_int_equal(mt_store_topup_complete(t->st, "USR1NOabc1231750000000", 5000000, &lg), CM_OK);
    assert_int_equal(mt_store_topup_complete(t->st, "USR1NOabc1231750000000", 5000000, &lg),
                     CM_ERR_DENIED); /* a duplicate callback credits nothing */
    assert_int_equal(mt_store_topup_complete(t->st, "nope", 1, NULL), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_get(t->st, uid, 0, &u), CM_OK);
    assert_int_equal(u.quota, 5000000);
    mt_user_cleanup(&u);
    assert_int_equal(mt_store_topup_set_status(t->st, "USR1NOdef4561750000000", MT_TOPUP_EXPIRED),
                     CM_OK);
    assert_int_equal(mt_store_topup_set_status(t->st, "USR1NOdef4561750000000", MT_TOPUP_FAILED),
                     CM_ERR_DENIED);
    assert_int_equal(mt_store_topup_list(t->st, uid, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 2);
    assert_string_equal(l.items[0].status, MT_TOPUP_EXPIRED);
    assert_string_equal(l.items[1].status, MT_TOPUP_SUCCESS);
    assert_int_equal(l.items[1].complete_time, T0_WALL_MS / 1000);
    mt_topup_list_cleanup(&l);
    assert_int_equal(mt_store_topup_list(t->st, 0, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 2);
    mt_topup_list_cleanup(&l);
}

/* Every allocation of a read fails in turn: no crash, no leak, then success. */
static void oom_reads(void **state)
{
    struct tdb *t = *state;
    struct mt_user_list ul = {0};
    struct mt_token_list tl = {0};
    struct mt_option_list ol = {0};
    struct mt_user u;
    int64_t uid = add_user(t->st, "oom", 1);
    struct mt_token tk;
    struct mt_option kv[2] = {{"a", "1"}, {"b", "2"}};
    int ok = 0;

    mt_token_init(&tk);
    tk.user_id = uid;
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_OK);
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_OK);
    assert_int_equal(mt_store_option_set_many(t->st, kv, 2), CM_OK);
    for (long n = 1; n < 50 && ok < 4; n++) {
        int r1, r2, r3, r4;
        cm_alloc_fail_at(n);
        r1 = mt_store_user_search(t->st, NULL, 0, 10, &ul);
        cm_alloc_fail_at(n);
        r2 = mt_store_token_list(t->st, uid, 0, 10, &tl);
        cm_alloc_fail_at(n);
        r3 = mt_store_option_list(t->st, &ol);
        cm_alloc_fail_at(n);
        r4 = mt_store_user_get(t->st, uid, 0, &u);
        cm_alloc_fail_at(0);
        ok = (r1 == CM_OK) + (r2 == CM_OK) + (r3 == CM_OK) + (r4 == CM_OK);
        assert_true(r1 == CM_OK || r1 == CM_ERR_NOMEM);
        assert_true(r2 == CM_OK || r2 == CM_ERR_NOMEM);
        assert_true(r3 == CM_OK || r3 == CM_ERR_NOMEM);
        assert_true(r4 == CM_OK || r4 == CM_ERR_NOMEM);
        if (r1 == CM_OK)
            mt_user_list_cleanup(&ul);
        if (r2 == CM_OK)
            mt_token_list_cleanup(&tl);
        if (r3 == CM_OK)
            mt_option_list_cleanup(&ol);
        if (r4 == CM_OK)
            mt_user_cleanup(&u);
    }
    assert_int_equal(ok, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(users_insert_and_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(users_edit_and_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(users_list_and_search, setup, teardown),
        cmocka_unit_test_setup_teardown(tokens_all, setup, teardown),
        cmocka_unit_test_setup_teardown(options_all, setup, teardown),
        cmocka_unit_test_setup_teardown(setups_all, setup, teardown),
        cmocka_unit_test_setup_teardown(redemptions_all, setup, teardown),
        cmocka_unit_test_setup_teardown(topups_all, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
