/* SPDX-License-Identifier: MIT */
/*
 * test_relay_cache.c - the relay's cache (relay/cache.h) on a real store in a temp dir:
 * token and user hits, staleness when the change counters move (an admin write, or an
 * operator's UPDATE through another connection), the TTL on the injected clock, forget;
 * the routing snapshot (enabled channels only, priority order, pinning lookup, models per
 * group) rebuilt after a channel write; queued automatic disables (auto_ban 1 applied with
 * other_info, auto_ban 0 left alone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "relay/cache.h"
#include "store_util.h"

struct fx {
    struct tdb t;
    struct mt_relay_cache *c;
    int64_t uid, tid, ch[3];
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    struct fx *f = cm_calloc(1, sizeof *f);
    struct mt_relay_cache_opts o = {.period_ms = 10, .ttl_ms = 5000, .routes_ttl_ms = 60000};
    struct mt_user u;
    struct mt_token tk;
    struct mt_channel ch[3];
    assert_non_null(f);
    assert_int_equal(cm_crypto_init(), CM_OK);
    assert_int_equal(tdb_init(&f->t), 0);
    assert_int_equal(tdb_open(&f->t), CM_OK);
    mt_user_init(&u);
    u.username = "alice";
    u.password = "x";
    u.quota = 1000;
    assert_int_equal(mt_store_user_insert(f->t.st, &u, NULL, &f->uid), CM_OK);
    mt_token_init(&tk);
    tk.user_id = f->uid;
    tk.key = "KEY0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
    tk.name = "t1";
    tk.remain_quota = 500;
    assert_int_equal(mt_store_token_insert(f->t.st, &tk, &f->tid, NULL, 0), CM_OK);
    for (int i = 0; i < 3; i++) {
        mt_channel_init(&ch[i]);
        ch[i].key = "sk-up";
        ch[i].models = "gpt-4o,cheap";
        ch[i].group = "default,vip";
        ch[i].base_url = "http://127.0.0.1:9";
    }
    ch[0].name = "low";
    ch[0].priority = 1;
    ch[1].name = "high";
    ch[1].priority = 5;
    ch[1].weight = 3;
    ch[2].name = "off";
    ch[2].status = MT_CHANNEL_MANUAL_DISABLED;
    ch[2].priority = 9;
    assert_int_equal(mt_store_channel_insert(f->t.st, ch, 3, f->ch), CM_OK);
    o.clock = &f->t.clk.clock;
    assert_int_equal(mt_relay_cache_new(f->t.st, &o, &f->c), CM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mt_relay_cache_free(f->c);
    tdb_remove(&f->t);
    cm_free(f);
    return 0;
}

static const char KEY[] = "KEY0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";

static void tokens_and_users(void **state)
{
    struct fx *f = *state;
    struct mt_relay_token *a = NULL, *b = NULL;
    struct mt_relay_user *u = NULL, *u2 = NULL;
    struct mt_token upd;
    sqlite3 *db;
    int tries;

    assert_int_equal(mt_relay_cache_token(f->c, KEY, strlen(KEY), &a), CM_OK);
    assert_int_equal(a->t.id, f->tid);
    assert_int_equal(a->t.remain_quota, 500);
    assert_int_equal(mt_relay_cache_token(f->c, KEY, strlen(KEY), &b), CM_OK);
    assert_ptr_equal(a, b); /* a hit */
    mt_relay_token_unref(b);
    assert_int_equal(mt_relay_cache_token(f->c, "nope", 4, &b), CM_ERR_NOTFOUND);
    assert_int_equal(mt_relay_cache_token(f->c, "", 0, &b), CM_ERR_NOTFOUND);

    /* an admin write moves the tokens counter: the entry goes stale */
    mt_token_init(&upd);
    upd.id = f->tid;
    upd.user_id = f->uid;
    upd.name = "renamed";
    upd.remain_quota = 500;
    assert_int_equal(mt_store_token_update(f->t.st, &upd), CM_OK);
    for (tries = 0; tries < 200; tries++) {
        assert_int_equal(mt_relay_cache_token(f->c, KEY, strlen(KEY), &b), CM_OK);
        if (strcmp(b->t.name, "renamed") == 0)
            break;
        mt_relay_token_unref(b);
        b = NULL;
        sleep_ms(5);
    }
    assert_non_null(b);
    assert_string_equal(b->t.name, "renamed");
    assert_string_equal(a->t.name, "t1"); /* the old reference stays valid and unchanged */
    mt_relay_token_unref(a);
    mt_relay_token_unref(b);

    /* balances have no trigger: the TTL re-reads them */
    db = raw_open(f->t.path);
    assert_int_equal(raw_exec(db, "UPDATE tokens SET remain_quota = 7"), SQLITE_OK);
    assert_int_equal(mt_relay_cache_token(f->c, KEY, strlen(KEY), &a), CM_OK);
    assert_int_equal(a->t.remain_quota, 500);
    mt_relay_token_unref(a);
    assert_int_equal(cm_clock_fake_advance_ms(&f->t.clk, 5001), CM_OK);
    assert_int_equal(mt_relay_cache_token(f->c, KEY, strlen(KEY), &a), CM_OK);
    assert_int_equal(a->t.remain_quota, 7);
    mt_relay_token_unref(a);
    /* forget: read again at once */
    assert_int_equal(raw_exec(db, "UPDATE tokens SET remain_quota = 8"), SQLITE_OK);
    mt_relay_cache_forget_token(f->c, KEY, strlen(KEY));
    assert_int_equal(mt_relay_cache_token(f->c, KEY, strlen(KEY), &a), CM_OK);
    assert_int_equal(a->t.remain_quota, 8);
    mt_relay_token_unref(a);

    /* users: hit, then an operator's status change goes through the counter */
    assert_int_equal(mt_relay_cache_user(f->c, f->uid, &u), CM_OK);
    assert_int_equal(u->u.status, MT_USER_ENABLED);
    assert_int_equal(mt_relay_cache_user(f->c, f->uid, &u2), CM_OK);
    assert_ptr_equal(u, u2);
    mt_relay_user_unref(u2);
    assert_int_equal(raw_exec(db, "UPDATE users SET status = 2"), SQLITE_OK);
    for (tries = 0; tries < 200; tries++) {
        assert_int_equal(mt_relay_cache_user(f->c, f->uid, &u2), CM_OK);
        if (u2->u.status == MT_USER_DISABLED)
            break;
        mt_relay_user_unref(u2);
        u2 = NULL;
        sleep_ms(5);
    }
    assert_non_null(u2);
    mt_relay_user_unref(u2);
    mt_relay_user_unref(u);
    assert_int_equal(raw_exec(db, "UPDATE users SET deleted_at = '2025-01-01'"), SQLITE_OK);
    assert_int_equal(cm_clock_fake_advance_ms(&f->t.clk, 5001), CM_OK);
    assert_int_equal(mt_relay_cache_user(f->c, f->uid, &u), CM_ERR_NOTFOUND);
    assert_int_equal(mt_relay_cache_user(f->c, 0, &u), CM_ERR_NOTFOUND);
    sqlite3_close(db);
}

static void count_models(const char *model, const struct mt_channel *first, void *ud)
{
    int *n = ud;
    assert_non_null(first);
    assert_true(strcmp(model, "cheap") == 0 || strcmp(model, "gpt-4o") == 0);
    (*n)++;
}

static void routes(void **state)
{
    struct fx *f = *state;
    struct mt_relay_routes *r = mt_relay_cache_routes(f->c), *r2;
    const struct mt_relay_route *rt = NULL;
    struct mt_channel upd;
    int n = 0, tries;

    assert_int_equal(mt_relay_routes_find(r, "vip", "gpt-4o", &rt), 2); /* not the disabled */
    assert_int_equal(rt[0].cand.channel_id, f->ch[1]);                  /* priority 5 first */
    assert_int_equal(rt[0].cand.weight, 3);
    assert_int_equal(rt[1].cand.channel_id, f->ch[0]);
    assert_string_equal(rt[0].ch->key, "sk-up");
    assert_int_equal(mt_relay_routes_find(r, "default", "nope", &rt), 0);
    assert_int_equal(mt_relay_routes_find(r, "other", "gpt-4o", NULL), 0);
    assert_non_null(mt_relay_routes_channel(r, f->ch[2])); /* pinning sees it, status 2 */
    assert_null(mt_relay_routes_channel(r, 9999));
    mt_relay_routes_models(r, "default", count_models, &n);
    assert_int_equal(n, 2);
    assert_true(mt_relay_routes_built(r) > 0);

    /* a channel write: a new snapshot, the old one stays readable */
    assert_int_equal(mt_store_channel_get(f->t.st, f->ch[2], 1, &upd), CM_OK);
    assert_int_equal(mt_store_channel_set_status(f->t.st, f->ch[2], MT_CHANNEL_ENABLED, NULL),
                     CM_OK);
    mt_channel_cleanup(&upd);
    for (tries = 0; tries < 200; tries++) {
        r2 = mt_relay_cache_routes(f->c);
        if (mt_relay_routes_find(r2, "vip", "gpt-4o", &rt) == 3)
            break;
        mt_relay_routes_unref(r2);
        r2 = NULL;
        sleep_ms(5);
    }
    assert_non_null(r2);
    assert_int_equal(rt[0].cand.channel_id, f->ch[2]);
    assert_int_equal(mt_relay_routes_find(r, "vip", "gpt-4o", NULL), 2);
    mt_relay_routes_unref(r2);
    mt_relay_routes_unref(r);
}

static void auto_disable(void **state)
{
    struct fx *f = *state;
    struct mt_channel ch;
    sqlite3 *db = raw_open(f->t.path);
    int tries;

    assert_int_equal(raw_exec(db, "UPDATE channels SET auto_ban = 0 WHERE name = 'low'"),
                     SQLITE_OK);
    sleep_ms(50); /* the watcher sees the change */
    assert_int_equal(mt_relay_cache_disable(f->c, f->ch[0], "broken"), CM_OK);
    assert_int_equal(mt_relay_cache_disable(f->c, f->ch[1], "3 consecutive failures"), CM_OK);
    for (tries = 0; tries < 200; tries++) {
        if (raw_int(db, "SELECT status FROM channels WHERE name = 'high'") == 3)
            break;
        sleep_ms(5);
    }
    assert_int_equal(raw_int(db, "SELECT status FROM channels WHERE name = 'high'"), 3);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM abilities a JOIN channels c ON "
                                 "c.id = a.channel_id WHERE c.name = 'high' AND a.enabled"),
                     0);
    assert_int_equal(mt_store_channel_get(f->t.st, f->ch[1], 0, &ch), CM_OK);
    assert_non_null(strstr(ch.other_info, "\"status_reason\":\"3 consecutive failures\""));
    assert_non_null(strstr(ch.other_info, "\"status_time\":"));
    mt_channel_cleanup(&ch);
    sleep_ms(50);
    assert_int_equal(raw_int(db, "SELECT status FROM channels WHERE name = 'low'"), 1);
    mt_relay_cache_stop(f->c);
    assert_int_equal(mt_relay_cache_disable(f->c, f->ch[0], "late"), CM_ERR_CLOSED);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tokens_and_users, setup, teardown),
        cmocka_unit_test_setup_teardown(routes, setup, teardown),
        cmocka_unit_test_setup_teardown(auto_disable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
