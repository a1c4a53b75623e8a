/* SPDX-License-Identifier: MIT */
/*
 * test_store_channels.c - channels and abilities: inserts (single and batch) build the
 * (group x model) abilities in the same transaction, trimmed; updates keep or replace
 * the key and rebuild abilities; status changes flip abilities.enabled; tags; deletes
 * (one, many, disabled) take abilities along; lists with filters, sorting, paging and
 * type counts; the DB-path selection query; FixAbility; models_enabled; OOM walk.
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

static int64_t abilities_count(struct tdb *t, const char *where)
{
    char sql[256];
    sqlite3 *db = raw_open(t->path);
    int64_t n;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM abilities WHERE %s", where);
    n = raw_int(db, sql);
    sqlite3_close(db);
    return n;
}

static void insert_builds_abilities(void **state)
{
    struct tdb *t = *state;
    struct mt_channel ch[2], got;
    struct mt_ability_list ab = {0};
    int64_t ids[2] = {0, 0};

    mt_channel_init(&ch[0]);
    ch[0].key = "sk-upstream-1";
    ch[0].name = "primary";
    ch[0].type = 1;
    ch[0].models = "gpt-4o, gpt-5 ,,gpt-4o";
    ch[0].group = "default,vip";
    ch[0].priority = 10;
    ch[0].weight = 5;
    ch[0].tag = "t1";
    ch[0].base_url = "http://127.0.0.1:8317";
    ch[0].model_mapping = "{\"gpt-5\":\"gpt-5-codex\"}";
    ch[1] = ch[0];
    ch[1].key = "sk-upstream-2";
    ch[1].name = "backup";
    ch[1].priority = 0;
    ch[1].models = "gpt-4o";
    ch[1].group = "default";
    ch[1].tag = NULL;
    assert_int_equal(mt_store_channel_insert(t->st, ch, 2, ids), CM_OK);
    assert_true(ids[0] > 0 && ids[1] == ids[0] + 1);

    /* 2 groups x 2 distinct trimmed models, + 1 */
    assert_int_equal(abilities_count(t, "1"), 5);
    assert_int_equal(abilities_count(t, "model = ' gpt-5 ' OR model = ''"), 0);

    assert_int_equal(mt_store_channel_get(t->st, ids[0], 0, &got), CM_OK);
    assert_string_equal(got.key, "");
    assert_string_equal(got.name, "primary");
    assert_int_equal(got.created_time, T0_WALL_MS / 1000);
    assert_int_equal(got.auto_ban, 1);
    assert_string_equal(got.model_mapping, "{\"gpt-5\":\"gpt-5-codex\"}");
    mt_channel_cleanup(&got);
    assert_int_equal(mt_store_channel_get(t->st, ids[0], 1, &got), CM_OK);
    assert_string_equal(got.key, "sk-upstream-1");
    mt_channel_cleanup(&got);
    assert_int_equal(mt_store_channel_get(t->st, 999, 1, &got), CM_ERR_NOTFOUND);

    /* selection: priority desc */
    assert_int_equal(mt_store_abilities_for(t->st, "default", "gpt-4o", &ab), CM_OK);
    assert_int_equal(ab.n, 2);
    assert_int_equal(ab.items[0].channel_id, ids[0]);
    assert_int_equal(ab.items[0].priority, 10);
    assert_int_equal(ab.items[0].weight, 5);
    assert_string_equal(ab.items[0].tag, "t1");
    assert_int_equal(ab.items[1].channel_id, ids[1]);
    mt_ability_list_cleanup(&ab);
    assert_int_equal(mt_store_abilities_for(t->st, "vip", "gpt-4o", &ab), CM_OK);
    assert_int_equal(ab.n, 1);
    mt_ability_list_cleanup(&ab);
    assert_int_equal(mt_store_abilities_for(t->st, "svip", "gpt-4o", &ab), CM_OK);
    assert_int_equal(ab.n, 0);
    mt_ability_list_cleanup(&ab);

    /* all or nothing: a bad channel in a batch inserts none */
    ch[1].key = "";
    assert_int_equal(mt_store_channel_insert(t->st, ch, 2, NULL), CM_ERR_INVAL);
    assert_int_equal(mt_store_channel_insert(t->st, ch, 0, NULL), CM_ERR_INVAL);
}

static void update_status_tag_delete(void **state)
{
    struct tdb *t = *state;
    struct mt_channel ch, got;
    struct mt_ability_list ab = {0};
    int64_t id = 0, id2 = 0, n = 0, ids[2];

    mt_channel_init(&ch);
    ch.key = "key-1";
    ch.models = "a,b";
    ch.group = "default";
    assert_int_equal(mt_store_channel_insert(t->st, &ch, 1, &id), CM_OK);
    ch.key = "key-2";
    assert_int_equal(mt_store_channel_insert(t->st, &ch, 1, &id2), CM_OK);
    assert_int_equal(mt_store_channel_set_balance(t->st, id, 12.5, 1750000001), CM_OK);
    assert_int_equal(mt_store_channel_set_test_result(t->st, id, 321, 1750000002), CM_OK);

    /* a list-shaped update (no key) keeps the key, the balance and the test fields */
    assert_int_equal(mt_store_channel_get(t->st, id, 0, &got), CM_OK);
    ch = got;
    ch.models = "b,c,d";
    ch.group = "vip";
    ch.priority = 3;
    ch.balance = 0;
    assert_int_equal(mt_store_channel_update(t->st, &ch), CM_OK);
    mt_channel_cleanup(&got);
    assert_int_equal(mt_store_channel_get(t->st, id, 1, &got), CM_OK);
    assert_string_equal(got.key, "key-1");
    assert_string_equal(got.models, "b,c,d");
    assert_true(got.balance > 12.4 && got.balance < 12.6);
    assert_int_equal(got.response_time, 321);
    assert_int_equal(got.test_time, 1750000002);
    assert_int_equal(got.balance_updated_time, 1750000001);
    mt_channel_cleanup(&got);
    assert_int_equal(abilities_count(t, "channel_id = 1"), 3);
    assert_int_equal(abilities_count(t, "channel_id = 1 AND \"group\" = 'vip' AND priority = 3"),
                     3);
    /* with a key: replaced */
    mt_channel_init(&ch);
    ch.id = id;
    ch.key = "key-1b";
    ch.models = "b";
    ch.group = "vip";
    assert_int_equal(mt_store_channel_update(t->st, &ch), CM_OK);
    assert_int_equal(mt_store_channel_get(t->st, id, 1, &got), CM_OK);
    assert_string_equal(got.key, "key-1b");
    mt_channel_cleanup(&got);
    assert_int_equal(abilities_count(t, "channel_id = 1"), 1);
    ch.id = 999;
    assert_int_equal(mt_store_channel_update(t->st, &ch), CM_ERR_NOTFOUND);

    /* status: abilities follow; other_info written when given */
    assert_int_equal(mt_store_channel_set_status(t->st, id, MT_CHANNEL_AUTO_DISABLED,
                                                 "{\"status_reason\":\"401\"}"),
                     CM_OK);
    assert_int_equal(abilities_count(t, "channel_id = 1 AND enabled = 1"), 0);
    assert_int_equal(mt_store_abilities_for(t->st, "vip", "b", &ab), CM_OK);
    assert_int_equal(ab.n, 0);
    mt_ability_list_cleanup(&ab);
    assert_int_equal(mt_store_channel_get(t->st, id, 0, &got), CM_OK);
    assert_int_equal(got.status, MT_CHANNEL_AUTO_DISABLED);
    assert_string_equal(got.other_info, "{\"status_reason\":\"401\"}");
    mt_channel_cleanup(&got);
    assert_int_equal(mt_store_channel_set_status(t->st, id, MT_CHANNEL_ENABLED, NULL), CM_OK);
    assert_int_equal(abilities_count(t, "channel_id = 1 AND enabled = 1"), 1);
    assert_int_equal(mt_store_channel_set_status(t->st, 999, 1, NULL), CM_ERR_NOTFOUND);

    /* tags */
    ids[0] = id;
    ids[1] = id2;
    assert_int_equal(mt_store_channel_set_tag(t->st, ids, 2, "batch", &n), CM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(abilities_count(t, "tag = 'batch'"), 3);
    assert_int_equal(
        mt_store_channel_set_status_by_tag(t->st, "batch", MT_CHANNEL_MANUAL_DISABLED, &n), CM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(abilities_count(t, "enabled = 1"), 0);
    assert_int_equal(mt_store_channel_set_status_by_tag(t->st, "batch", MT_CHANNEL_ENABLED, NULL),
                     CM_OK);
    assert_int_equal(abilities_count(t, "enabled = 1"), 3);

    /* deletes take abilities along */
    assert_int_equal(mt_store_channel_delete(t->st, id2), CM_OK);
    assert_int_equal(mt_store_channel_delete(t->st, id2), CM_ERR_NOTFOUND);
    assert_int_equal(abilities_count(t, "channel_id = 2"), 0);
    assert_int_equal(mt_store_channel_set_status(t->st, id, MT_CHANNEL_MANUAL_DISABLED, NULL),
                     CM_OK);
    assert_int_equal(mt_store_channel_delete_disabled(t->st, &n), CM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(abilities_count(t, "1"), 0);
    assert_int_equal(mt_store_channel_delete_many(t->st, ids, 2, &n), CM_OK);
    assert_int_equal(n, 0);
}

static void lists_filters_counts(void **state)
{
    struct tdb *t = *state;
    struct mt_channel ch[4];
    struct mt_channel_list l = {0};
    struct mt_channel_filter f;
    struct mt_type_count *tc = NULL;
    size_t ntc = 0;
    char **models = NULL;
    size_t nm = 0;

    for (int i = 0; i < 4; i++)
        mt_channel_init(&ch[i]);
    ch[0].key = "k0";
    ch[0].name = "alpha_1";
    ch[0].type = 1;
    ch[0].models = "gpt-4o";
    ch[0].group = "default";
    ch[0].priority = 1;
    ch[1].key = "k1";
    ch[1].name = "alphaX";
    ch[1].type = 14;
    ch[1].models = "claude-sonnet-4";
    ch[1].group = "vip,default";
    ch[1].priority = 5;
    ch[2].key = "k2";
    ch[2].name = "beta";
    ch[2].type = 1;
    ch[2].models = "gpt-5";
    ch[2].group = "svip";
    ch[2].status = MT_CHANNEL_MANUAL_DISABLED;
    ch[2].tag = "team";
    ch[3].key = "secret-key-3";
    ch[3].name = "gamma";
    ch[3].type = 57;
    ch[3].models = "gpt-5-codex";
    ch[3].group = "vipx";
    assert_int_equal(mt_store_channel_insert(t->st, ch, 4, NULL), CM_OK);

    /* default order priority desc, without keys */
    assert_int_equal(mt_store_channel_list(t->st, NULL, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 4);
    assert_string_equal(l.items[0].name, "alphaX");
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.items[i].key, "");
    mt_channel_list_cleanup(&l);
    mt_channel_filter_init(&f);
    f.sort = MT_CHANNEL_SORT_NAME;
    f.ascending = 1;
    assert_int_equal(mt_store_channel_list(t->st, &f, 1, 2, &l), CM_OK);
    assert_int_equal(l.n, 2); /* alphaX, [alpha_1, beta], gamma: '_' sorts after 'X' */
    assert_string_equal(l.items[0].name, "alpha_1");
    assert_string_equal(l.items[1].name, "beta");
    mt_channel_list_cleanup(&l);

    /* filters */
    mt_channel_filter_init(&f);
    f.keyword = "alpha_";
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1); /* '_' literal */
    mt_channel_list_cleanup(&l);
    f.keyword = "secret-key-3"; /* exact key match finds the channel, the key stays hidden */
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].key, "");
    mt_channel_list_cleanup(&l);
    f.keyword = "3";
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].name, "beta");
    mt_channel_list_cleanup(&l);
    mt_channel_filter_init(&f);
    f.group = "vip"; /* one of the groups; not "vipx" */
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].name, "alphaX");
    mt_channel_list_cleanup(&l);
    mt_channel_filter_init(&f);
    f.model = "gpt-5";
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 2);
    mt_channel_list_cleanup(&l);
    f.status = MT_CHANNEL_ENABLED;
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    assert_string_equal(l.items[0].name, "gamma");
    mt_channel_list_cleanup(&l);
    mt_channel_filter_init(&f);
    f.type = 1;
    f.tag = "team";
    assert_int_equal(mt_store_channel_list(t->st, &f, 0, 10, &l), CM_OK);
    assert_int_equal(l.total, 1);
    mt_channel_list_cleanup(&l);

    /* type counts ignore status/type filters */
    assert_int_equal(mt_store_channel_type_counts(t->st, &f, &tc, &ntc), CM_OK);
    assert_int_equal(ntc, 1); /* tag "team": only beta (type 1) */
    cm_free(tc);
    assert_int_equal(mt_store_channel_type_counts(t->st, NULL, &tc, &ntc), CM_OK);
    assert_int_equal(ntc, 3);
    assert_int_equal(tc[0].type, 1);
    assert_int_equal(tc[0].count, 2);
    assert_int_equal(tc[2].type, 57);
    cm_free(tc);

    /* for the routing cache */
    assert_int_equal(mt_store_channel_all(t->st, 1, &l), CM_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[3].key, "secret-key-3");
    mt_channel_list_cleanup(&l);
    assert_int_equal(mt_store_models_enabled(t->st, &models, &nm), CM_OK);
    assert_int_equal(nm, 3); /* gpt-5 is on a disabled channel only */
    assert_string_equal(models[0], "claude-sonnet-4");
    assert_string_equal(models[2], "gpt-5-codex");
    mt_store_strings_free(models, nm);
}

static void fix_abilities(void **state)
{
    struct tdb *t = *state;
    struct mt_channel ch;
    struct mt_ability_list ab = {0};
    int64_t ok = 0, fails = 1;
    sqlite3 *db;

    mt_channel_init(&ch);
    ch.key = "k";
    ch.models = "m1,m2";
    ch.group = "default";
    assert_int_equal(mt_store_channel_insert(t->st, &ch, 1, NULL), CM_OK);
    /* someone writes channels directly and forgets abilities (NewAPI's panic case) */
    db = raw_open(t->path);
    assert_int_equal(raw_exec(db, "INSERT INTO channels (\"key\", status, models, \"group\", "
                                  "priority, weight) VALUES ('k2', 1, 'm3', 'vip', 2, 7);"
                                  "DELETE FROM abilities WHERE model = 'm2';"
                                  "INSERT INTO abilities VALUES ('x', 'stale', 99, 1, 0, 0, '');"),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(mt_store_abilities_fix(t->st, &ok, &fails), CM_OK);
    assert_int_equal(ok, 2);
    assert_int_equal(fails, 0);
    assert_int_equal(mt_store_abilities_all(t->st, &ab), CM_OK);
    assert_int_equal(ab.n, 3);
    assert_string_equal(ab.items[0].group, "default");
    assert_string_equal(ab.items[0].model, "m1");
    assert_string_equal(ab.items[2].group, "vip");
    assert_int_equal(ab.items[2].weight, 7);
    mt_ability_list_cleanup(&ab);
}

static void oom_channel_reads(void **state)
{
    struct tdb *t = *state;
    struct mt_channel ch[2];
    struct mt_channel_list l = {0};
    struct mt_ability_list ab = {0};
    struct mt_channel_filter f;
    int ok = 0;

    mt_channel_init(&ch[0]);
    ch[0].key = "k";
    ch[0].models = "a,b";
    ch[1] = ch[0];
    assert_int_equal(mt_store_channel_insert(t->st, ch, 2, NULL), CM_OK);
    mt_channel_filter_init(&f);
    f.keyword = "x";
    f.group = "default";
    f.model = "a";
    for (long n = 1; n < 60 && ok < 2; n++) {
        int r1, r2;
        cm_alloc_fail_at(n);
        r1 = mt_store_channel_list(t->st, &f, 0, 10, &l);
        cm_alloc_fail_at(n);
        r2 = mt_store_abilities_all(t->st, &ab);
        cm_alloc_fail_at(0);
        assert_true(r1 == CM_OK || r1 == CM_ERR_NOMEM);
        assert_true(r2 == CM_OK || r2 == CM_ERR_NOMEM);
        ok = (r1 == CM_OK) + (r2 == CM_OK);
        if (r1 == CM_OK)
            mt_channel_list_cleanup(&l);
        if (r2 == CM_OK)
            mt_ability_list_cleanup(&ab);
    }
    assert_int_equal(ok, 2);
    /* a failed insert leaves nothing behind */
    for (long n = 1; n < 10; n++) {
        int rc;
        cm_alloc_fail_at(n);
        rc = mt_store_channel_insert(t->st, ch, 2, NULL);
        cm_alloc_fail_at(0);
        if (rc == CM_OK)
            break;
        assert_int_equal(rc, CM_ERR_NOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(insert_builds_abilities, setup, teardown),
        cmocka_unit_test_setup_teardown(update_status_tag_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(lists_filters_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(fix_abilities, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_channel_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
