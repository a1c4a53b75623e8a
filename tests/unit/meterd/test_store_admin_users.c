/* SPDX-License-Identifier: MIT */
/*
 * test_store_admin_users.c - the admin API's extra users queries: the self profile edit
 * (partial, username conflicts with live and soft-deleted users, deleted users refused),
 * invite-code lookup and lazy assignment, the hard delete that takes the user's tokens
 * with it (SQLite reuses the freed id), and the models enabled in a set of groups
 * (disabled abilities and other groups left out, sorted, no repeats), plus OOM walks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/admin_users.h"
#include "store_util.h"

static int64_t add_user(struct mt_store *st, const char *name)
{
    struct mt_user u;
    int64_t id = 0;
    mt_user_init(&u);
    u.username = name;
    u.password = "$2a$10$hash";
    u.display_name = name;
    assert_int_equal(mt_store_user_insert(st, &u, NULL, &id), CM_OK);
    return id;
}

static void profile(void **state)
{
    struct tdb *t = *state;
    struct mt_user got;
    int64_t a = add_user(t->st, "pa"), b = add_user(t->st, "pb"), c = add_user(t->st, "pc");

    mt_user_init(&got);
    assert_int_equal(mt_store_user_set_profile(t->st, a, NULL, "Alice A"), CM_OK);
    assert_int_equal(mt_store_user_get(t->st, a, 0, &got), CM_OK);
    assert_string_equal(got.username, "pa");
    assert_string_equal(got.display_name, "Alice A");
    mt_user_cleanup(&got);

    assert_int_equal(mt_store_user_set_profile(t->st, a, "pa2", NULL), CM_OK);
    assert_int_equal(mt_store_user_get(t->st, a, 0, &got), CM_OK);
    assert_string_equal(got.username, "pa2");
    assert_string_equal(got.display_name, "Alice A");
    mt_user_cleanup(&got);

    /* its own name again is fine; another user's is not, deleted ones included */
    assert_int_equal(mt_store_user_set_profile(t->st, a, "pa2", "x"), CM_OK);
    assert_int_equal(mt_store_user_set_profile(t->st, a, "pb", NULL), CM_ERR_EXISTS);
    assert_int_equal(mt_store_user_soft_delete(t->st, c), CM_OK);
    assert_int_equal(mt_store_user_set_profile(t->st, a, "pc", NULL), CM_ERR_EXISTS);
    /* a deleted user cannot edit itself */
    assert_int_equal(mt_store_user_set_profile(t->st, c, NULL, "ghost"), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_set_profile(t->st, 9999, NULL, "ghost"), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_set_profile(t->st, b, "", NULL), CM_ERR_INVAL);
    assert_int_equal(mt_store_user_set_profile(t->st, b, NULL, NULL), CM_OK);
    assert_int_equal(mt_store_user_set_profile(NULL, b, NULL, "x"), CM_ERR_INVAL);
}

static void purge(void **state)
{
    struct tdb *t = *state;
    struct mt_token tk;
    struct mt_token_list l = {0};
    int64_t a = add_user(t->st, "gone"), b = add_user(t->st, "stays"), n = -1, tid = 0, again;

    mt_token_init(&tk);
    tk.name = "x";
    tk.user_id = a;
    assert_int_equal(mt_store_token_insert(t->st, &tk, &tid, NULL, 0), CM_OK);
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_OK);
    assert_int_equal(mt_store_token_delete(t->st, tid, a), CM_OK); /* one already deleted */
    tk.user_id = b;
    assert_int_equal(mt_store_token_insert(t->st, &tk, NULL, NULL, 0), CM_OK);

    assert_int_equal(mt_store_user_purge(t->st, b, &n), CM_OK);
    assert_int_equal(n, 1);
    /* SQLite hands the freed highest id to the next user, who must not inherit tokens */
    again = add_user(t->st, "newcomer");
    assert_int_equal(again, b);
    assert_int_equal(mt_store_token_list(t->st, again, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 0);
    mt_token_list_cleanup(&l);
    /* soft-deleted users can be purged too; the already deleted token is not counted */
    assert_int_equal(mt_store_user_soft_delete(t->st, a), CM_OK);
    assert_int_equal(mt_store_user_purge(t->st, a, &n), CM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(mt_store_user_purge(t->st, a, NULL), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_purge(NULL, a, NULL), CM_ERR_INVAL);
}

static void aff_codes(void **state)
{
    struct tdb *t = *state;
    char code[MT_AFF_CODE_MAX + 1], again[MT_AFF_CODE_MAX + 1];
    int64_t a = add_user(t->st, "aa"), id = 0;
    sqlite3 *db;

    assert_int_equal(mt_store_user_ensure_aff_code(t->st, a, code, sizeof code), CM_OK);
    assert_int_equal(strlen(code), 4); /* the insert assigned one */
    assert_int_equal(mt_store_user_id_by_aff_code(t->st, code, &id), CM_OK);
    assert_int_equal(id, a);
    assert_int_equal(mt_store_user_id_by_aff_code(t->st, "zzzzzz", &id), CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_id_by_aff_code(t->st, "", &id), CM_ERR_NOTFOUND);

    /* a row written by another tool without a code gets one on first read */
    db = raw_open(t->path);
    assert_non_null(db);
    assert_int_equal(raw_exec(db, "UPDATE users SET aff_code = NULL WHERE username = 'aa'"),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(mt_store_user_ensure_aff_code(t->st, a, code, sizeof code), CM_OK);
    assert_true(strlen(code) >= 4);
    assert_int_equal(mt_store_user_ensure_aff_code(t->st, a, again, sizeof again), CM_OK);
    assert_string_equal(code, again);
    assert_int_equal(mt_store_user_id_by_aff_code(t->st, code, &id), CM_OK);
    assert_int_equal(id, a);

    assert_int_equal(mt_store_user_ensure_aff_code(t->st, 9999, code, sizeof code),
                     CM_ERR_NOTFOUND);
    assert_int_equal(mt_store_user_ensure_aff_code(t->st, a, code, 4), CM_ERR_INVAL);
    /* a deleted user's code no longer finds it */
    assert_int_equal(mt_store_user_soft_delete(t->st, a), CM_OK);
    assert_int_equal(mt_store_user_id_by_aff_code(t->st, again, &id), CM_ERR_NOTFOUND);
}

static void group_models(void **state)
{
    struct tdb *t = *state;
    const char *g1[] = {"default"}, *g2[] = {"default", "vip", "nosuch"};
    char **m = NULL;
    size_t n = 0;
    sqlite3 *db = raw_open(t->path);

    assert_non_null(db);
    assert_int_equal(raw_exec(db, "INSERT INTO abilities (\"group\", model, channel_id, enabled) "
                                  "VALUES ('default','gpt-4o',1,1),('default','gpt-4o',2,1),"
                                  "('default','claude',1,1),('default','off-model',3,0),"
                                  "('vip','gpt-4o',4,1),('vip','o3',4,1),('svip','secret',5,1)"),
                     SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(mt_store_models_of_groups(t->st, g1, 1, &m, &n), CM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(m[0], "claude");
    assert_string_equal(m[1], "gpt-4o");
    mt_store_strings_free(m, n);

    assert_int_equal(mt_store_models_of_groups(t->st, g2, 3, &m, &n), CM_OK);
    assert_int_equal(n, 3);
    assert_string_equal(m[0], "claude");
    assert_string_equal(m[1], "gpt-4o");
    assert_string_equal(m[2], "o3");
    mt_store_strings_free(m, n);

    assert_int_equal(mt_store_models_of_groups(t->st, NULL, 0, &m, &n), CM_OK);
    assert_int_equal(n, 0);
    mt_store_strings_free(m, n);
    assert_int_equal(mt_store_models_of_groups(t->st, NULL, 1, &m, &n), CM_ERR_INVAL);

    /* OOM anywhere: an error, nothing leaked */
    for (long k = 1; k < 20; k++) {
        int rc;
        cm_alloc_fail_at(k);
        rc = mt_store_models_of_groups(t->st, g2, 3, &m, &n);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            assert_int_equal(n, 3);
            mt_store_strings_free(m, n);
            break;
        }
        assert_int_equal(rc, CM_ERR_NOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(profile, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(aff_codes, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(purge, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(group_models, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
