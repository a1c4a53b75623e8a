/* SPDX-License-Identifier: MIT */
/*
 * test_store_logs.c - logs and quota_data: inserts, every filter of the admin and self
 * queries, both orders, paging, the capped total, the stat sums (quota over the range,
 * rpm/tpm over the last 60 s of the fake clock), batched deletion before a time, the
 * hourly aggregate and its grouped queries, and an OOM walk of the query.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_util.h"

#define NOW (T0_WALL_MS / 1000)

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

static int64_t put(struct tdb *t, int64_t user, const char *uname, int type, const char *model,
                   int64_t at, int64_t quota, int64_t pt, int64_t ct)
{
    struct mt_log l = {0};
    int64_t id = 0;
    l.user_id = user;
    l.username = uname;
    l.type = type;
    l.model_name = model;
    l.created_at = at;
    l.quota = quota;
    l.prompt_tokens = pt;
    l.completion_tokens = ct;
    l.token_name = user == 1 ? "tokA" : "tokB";
    l.token_id = user == 1 ? 11 : 22;
    l.channel_id = user;
    l.group = user == 1 ? "default" : "vip";
    l.is_stream = 1;
    l.other = "{\"model_ratio\":1.25}";
    assert_int_equal(mt_store_log_insert(t->st, &l, &id), CM_OK);
    return id;
}

static void insert_and_query(void **state)
{
    struct tdb *t = *state;
    struct mt_log_list l = {0};
    struct mt_log_filter f = {0};
    struct mt_log lg = {0};
    int64_t ids[6], id = 0;

    ids[0] = put(t, 1, "alice", MT_LOG_CONSUME, "gpt-4o", NOW - 100, 10, 1, 2);
    ids[1] = put(t, 2, "bob", MT_LOG_CONSUME, "gpt-4o-mini", NOW - 100, 20, 3, 4);
    ids[2] = put(t, 1, "alice", MT_LOG_TOPUP, "", NOW - 50, 500, 0, 0);
    ids[3] = put(t, 2, "bob", MT_LOG_CONSUME, "claude_x", NOW - 10, 30, 5, 6);
    ids[4] = put(t, 1, "alice", MT_LOG_CONSUME, "gpt-4o", NOW - 200, 40, 7, 8);
    ids[5] = put(t, 1, "alice", MT_LOG_ERROR, "gpt-4o", NOW - 5, 0, 0, 0);

    /* created_at 0 -> now; request ids stored */
    lg.user_id = 3;
    lg.type = MT_LOG_SYSTEM;
    lg.request_id = "20250615000000123abcdefgh";
    lg.upstream_request_id = "up-1";
    assert_int_equal(mt_store_log_insert(t->st, &lg, &id), CM_OK);

    /* admin order: created_at desc, id desc */
    assert_int_equal(mt_store_log_query(t->st, NULL, MT_LOG_ORDER_CREATED, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 7);
    assert_int_equal(l.items[0].id, id);
    assert_int_equal(l.items[0].created_at, NOW);
    assert_int_equal(l.items[1].id, ids[5]);
    assert_int_equal(l.items[6].id, ids[4]);
    assert_int_equal(l.items[4].id, ids[1]); /* same created_at: id desc */
    assert_int_equal(l.items[5].id, ids[0]);
    assert_string_equal(l.items[5].other, "{\"model_ratio\":1.25}");
    assert_true(l.items[5].is_stream);
    assert_string_equal(l.items[5].channel_name, "");
    mt_log_list_cleanup(&l);
    /* self order: id desc, paged */
    assert_int_equal(mt_store_log_query(t->st, NULL, MT_LOG_ORDER_ID, 2, 2, 0, &l), CM_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.items[0].id, ids[4]);
    assert_int_equal(l.items[1].id, ids[3]);
    mt_log_list_cleanup(&l);
    /* capped total */
    assert_int_equal(mt_store_log_query(t->st, NULL, MT_LOG_ORDER_ID, 0, 1, 3, &l), CM_OK);
    assert_int_equal(l.total, 3);
    mt_log_list_cleanup(&l);

    /* each filter */
    f.type = MT_LOG_CONSUME;
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 4);
    mt_log_list_cleanup(&l);
    f.username = "alice";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 2);
    mt_log_list_cleanup(&l);
    f.start = NOW - 150;
    f.end = NOW - 100;
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_int_equal(l.items[0].id, ids[0]);
    mt_log_list_cleanup(&l);
    memset(&f, 0, sizeof(f));
    f.model_name = "gpt-4o";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 3); /* exact without a wildcard */
    mt_log_list_cleanup(&l);
    f.model_name = "gpt-4o%";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 4);
    mt_log_list_cleanup(&l);
    f.model_name = "claude_%";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 1);
    mt_log_list_cleanup(&l);
    memset(&f, 0, sizeof(f));
    f.token_name = "tokB";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 2);
    mt_log_list_cleanup(&l);
    memset(&f, 0, sizeof(f));
    f.channel_id = 1;
    f.group = "default";
    f.user_id = 1;
    f.token_id = 11;
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 4);
    mt_log_list_cleanup(&l);
    memset(&f, 0, sizeof(f));
    f.upstream_request_id = "up-1";
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 100, 0, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].request_id, "20250615000000123abcdefgh");
    mt_log_list_cleanup(&l);
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 0, 0, &l), CM_ERR_INVAL);
    assert_int_equal(mt_store_log_query(t->st, &f, MT_LOG_ORDER_ID, 0, 1, -1, &l), CM_ERR_INVAL);
}

static void stat_sums(void **state)
{
    struct tdb *t = *state;
    struct mt_log_stat s;
    struct mt_log_filter f = {0};

    put(t, 1, "alice", MT_LOG_CONSUME, "gpt-4o", NOW - 30, 100, 10, 20);
    put(t, 1, "alice", MT_LOG_CONSUME, "gpt-4o", NOW - 59, 200, 1, 2);
    put(t, 2, "bob", MT_LOG_CONSUME, "gpt-4o", NOW - 61, 400, 100, 200);
    put(t, 1, "alice", MT_LOG_TOPUP, "", NOW - 1, 9999, 0, 0);
    put(t, 1, "alice", MT_LOG_CONSUME, "gpt-5", NOW - 3600, 800, 1000, 1000);

    assert_int_equal(mt_store_log_stat(t->st, NULL, &s), CM_OK);
    assert_int_equal(s.quota, 1500); /* consume rows only */
    assert_int_equal(s.rpm, 2);
    assert_int_equal(s.tpm, 33);
    f.username = "alice";
    f.start = NOW - 100;
    assert_int_equal(mt_store_log_stat(t->st, &f, &s), CM_OK);
    assert_int_equal(s.quota, 300);
    assert_int_equal(s.rpm, 2);
    f.username = "bob";
    assert_int_equal(mt_store_log_stat(t->st, &f, &s), CM_OK);
    assert_int_equal(s.quota, 400);
    assert_int_equal(s.rpm, 0);
    assert_int_equal(s.tpm, 0);
    /* the window moves with the clock */
    cm_clock_fake_advance_ms(&t->clk, 60 * 1000);
    assert_int_equal(mt_store_log_stat(t->st, NULL, &s), CM_OK);
    assert_int_equal(s.rpm, 0);
}

static void delete_before_in_batches(void **state)
{
    struct tdb *t = *state;
    sqlite3 *db = raw_open(t->path);
    int64_t n = 0;
    struct mt_log_list l = {0};

    /* 2500 old rows and 3 new ones */
    assert_int_equal(raw_exec(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                  "WHERE x < 2500) INSERT INTO logs (user_id, created_at, type) "
                                  "SELECT 1, 999 + x, 2 FROM c"),
                     SQLITE_OK);
    sqlite3_close(db);
    put(t, 1, "a", 2, "m", NOW, 1, 0, 0);
    put(t, 1, "a", 2, "m", NOW, 1, 0, 0);
    put(t, 1, "a", 2, "m", 3500, 1, 0, 0); /* exactly at the boundary: kept */
    assert_int_equal(mt_store_log_delete_before(t->st, 3500, &n), CM_OK);
    assert_int_equal(n, 2500);
    assert_int_equal(mt_store_log_query(t->st, NULL, MT_LOG_ORDER_ID, 0, 10, 0, &l), CM_OK);
    assert_int_equal(l.total, 3);
    mt_log_list_cleanup(&l);
    assert_int_equal(mt_store_log_delete_before(t->st, 3500, &n), CM_OK);
    assert_int_equal(n, 0);
}

static void quota_data_hours(void **state)
{
    struct tdb *t = *state;
    struct mt_quota_data_list l = {0};
    int64_t h0 = NOW - NOW % 3600;

    assert_int_equal(mt_store_quota_data_add(t->st, 1, "alice", "gpt-4o", h0 + 5, 100, 10), CM_OK);
    assert_int_equal(mt_store_quota_data_add(t->st, 1, "alice", "gpt-4o", h0 + 3599, 50, 5), CM_OK);
    assert_int_equal(mt_store_quota_data_add(t->st, 1, "alice", "gpt-4o", h0 + 3600, 1, 1), CM_OK);
    assert_int_equal(mt_store_quota_data_add(t->st, 2, "bob", "gpt-4o", h0 + 10, 7, 3), CM_OK);
    assert_int_equal(mt_store_quota_data_add(t->st, 2, "bob", "gpt-5", h0 + 10, 9, 4), CM_OK);

    /* by model and hour */
    assert_int_equal(mt_store_quota_data_query(t->st, MT_QD_BY_MODEL, h0, 0, NULL, 0, &l), CM_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].model_name, "gpt-4o");
    assert_int_equal(l.items[0].created_at, h0);
    assert_int_equal(l.items[0].count, 3);
    assert_int_equal(l.items[0].token_used, 157);
    assert_int_equal(l.items[0].quota, 18);
    assert_string_equal(l.items[1].model_name, "gpt-5");
    assert_int_equal(l.items[2].created_at, h0 + 3600);
    mt_quota_data_list_cleanup(&l);
    /* by user; and filtered */
    assert_int_equal(mt_store_quota_data_query(t->st, MT_QD_BY_USER, h0, h0, NULL, 0, &l), CM_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].username, "alice");
    assert_int_equal(l.items[0].count, 2);
    assert_string_equal(l.items[1].username, "bob");
    assert_int_equal(l.items[1].quota, 7);
    mt_quota_data_list_cleanup(&l);
    assert_int_equal(mt_store_quota_data_query(t->st, MT_QD_BY_MODEL, 0, 0, "bob", 0, &l), CM_OK);
    assert_int_equal(l.n, 2);
    mt_quota_data_list_cleanup(&l);
    assert_int_equal(mt_store_quota_data_query(t->st, MT_QD_BY_MODEL, 0, 0, NULL, 1, &l), CM_OK);
    assert_int_equal(l.n, 2);
    mt_quota_data_list_cleanup(&l);
}

static void oom_log_query(void **state)
{
    struct tdb *t = *state;
    struct mt_log_list l = {0};
    struct mt_log_filter f = {0};
    int done = 0;

    put(t, 1, "alice", MT_LOG_CONSUME, "gpt-4o", NOW, 1, 1, 1);
    put(t, 1, "alice", MT_LOG_CONSUME, "gpt-4o", NOW, 1, 1, 1);
    f.username = "alice";
    f.model_name = "gpt%";
    for (long n = 1; n < 40 && !done; n++) {
        int rc;
        cm_alloc_fail_at(n);
        rc = mt_store_log_query(t->st, &f, MT_LOG_ORDER_CREATED, 0, 10, 0, &l);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            assert_int_equal(l.n, 2);
            mt_log_list_cleanup(&l);
            done = 1;
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
        }
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(insert_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(stat_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_before_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(quota_data_hours, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_log_query, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
