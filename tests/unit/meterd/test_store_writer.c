/* SPDX-License-Identifier: MIT */
/*
 * test_store_writer.c - the group-commit writer: reserve semantics (user and token
 * together or not at all, which one was short, unlimited tokens, missing rows), no
 * overdraw under 8 contending threads, settle / refund counters and the log and hourly
 * rows in one transaction, a failing op rolled back alone inside a batch, many
 * submissions -> few commits with every callback after its commit (checked from another
 * connection), shutdown drains, back-pressure, a lock held outside -> CM_ERR_TIMEOUT,
 * blocking calls refused inside callbacks, OOM on submit. Prints throughput numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static int setup(void **state)
{
    static struct tdb t;
    if (tdb_init(&t) || tdb_open(&t))
        return -1;
    *state = &t;
    return 0;
}

static int setup_noopen(void **state)
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

static int64_t mk_user(struct mt_store *st, const char *name, int64_t quota)
{
    struct mt_user u;
    int64_t id = 0;
    mt_user_init(&u);
    u.username = name;
    u.password = "h";
    u.quota = quota;
    assert_int_equal(mt_store_user_insert(st, &u, NULL, &id), CM_OK);
    return id;
}

static int64_t mk_token(struct mt_store *st, int64_t uid, int64_t remain, int unlimited)
{
    struct mt_token t;
    int64_t id = 0;
    mt_token_init(&t);
    t.user_id = uid;
    t.remain_quota = remain;
    t.unlimited_quota = unlimited;
    assert_int_equal(mt_store_token_insert(st, &t, &id, NULL, 0), CM_OK);
    return id;
}

static int64_t q1(struct tdb *t, const char *sql)
{
    sqlite3 *db = raw_open(t->path);
    int64_t v = raw_int(db, sql);
    sqlite3_close(db);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void reserve_semantics(void **state)
{
    struct tdb *t = *state;
    int64_t u = mk_user(t->st, "u", 100), tok = mk_token(t->st, u, 50, 0);
    int64_t unl = mk_token(t->st, u, 0, 1), empty = mk_token(t->st, u, 0, 0);
    struct mt_reserve r = {u, tok, 30};
    enum mt_store_short sh = MT_STORE_SHORT_NONE;

    cm_clock_fake_advance_ms(&t->clk, 5000);
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_OK);
    assert_int_equal(sh, MT_STORE_SHORT_NONE);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 70);
    assert_int_equal(q1(t, "SELECT remain_quota FROM tokens WHERE id=1"), 20);
    assert_int_equal(q1(t, "SELECT used_quota FROM tokens WHERE id=1"), 30);
    assert_int_equal(q1(t, "SELECT accessed_time FROM tokens WHERE id=1"), T0_WALL_MS / 1000 + 5);

    /* token short: the user's part is not applied either */
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_LIMIT);
    assert_int_equal(sh, MT_STORE_SHORT_TOKEN);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 70);
    assert_int_equal(q1(t, "SELECT remain_quota FROM tokens WHERE id=1"), 20);

    /* unlimited token: no token check, still decremented (NewAPI) */
    r.token_id = unl;
    r.amount = 60;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_OK);
    assert_int_equal(q1(t, "SELECT remain_quota FROM tokens WHERE id=2"), -60);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 10);
    /* user short */
    r.amount = 11;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_LIMIT);
    assert_int_equal(sh, MT_STORE_SHORT_USER);
    /* a token at 0 is refused even for amount 0; so is a user at 0 */
    r.token_id = empty;
    r.amount = 0;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_LIMIT);
    assert_int_equal(sh, MT_STORE_SHORT_TOKEN);
    r.token_id = 0;
    r.amount = 10;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_OK); /* no token: user only */
    r.amount = 0;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_LIMIT);
    assert_int_equal(sh, MT_STORE_SHORT_USER);
    /* missing rows */
    assert_int_equal(mt_store_user_quota_add(t->st, u, 100, NULL), CM_OK);
    r.amount = 1;
    r.token_id = 999;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_NOTFOUND);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 100);
    assert_int_equal(mt_store_token_delete(t->st, tok, u), CM_OK);
    r.token_id = tok;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_NOTFOUND);
    r.user_id = 999;
    r.token_id = 0;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_NOTFOUND);
    r.amount = -1;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_INVAL);
    assert_int_equal(mt_store_reserve(NULL, &r, &sh), CM_ERR_INVAL);
    /* an operator's direct edit counts at once */
    {
        sqlite3 *db = raw_open(t->path);
        assert_int_equal(raw_exec(db, "UPDATE users SET quota = 5 WHERE id = 1"), SQLITE_OK);
        sqlite3_close(db);
    }
    r.user_id = u;
    r.amount = 6;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_ERR_LIMIT);
    r.amount = 5;
    assert_int_equal(mt_store_reserve(t->st, &r, &sh), CM_OK);
}

/* ---- contention ---- */

struct race {
    struct mt_store *st;
    int64_t user, token;
    int use_token;
    int iterations;
    int64_t amount_mod; /* amount = 1 + i % amount_mod */
    int64_t ok_sum, ok_n, tok_sum;
    int errors;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < r->iterations; i++) {
        struct mt_reserve rv = {r->user, r->use_token ? r->token : 0, 1 + i % r->amount_mod};
        enum mt_store_short sh;
        int rc = mt_store_reserve(r->st, &rv, &sh);
        if (rc == CM_OK) {
            r->ok_sum += rv.amount;
            r->ok_n++;
            if (r->use_token)
                r->tok_sum += rv.amount;
        } else if (rc != CM_ERR_LIMIT) {
            r->errors++;
        }
    }
    return NULL;
}

static void run_race(struct tdb *t, int64_t user_quota, int64_t token_quota, int64_t amod,
                     int64_t *sum, int64_t *tok_sum, int64_t *n)
{
    static int round;
    char name[32];
    struct race r[8];
    pthread_t th[8];
    int64_t u, tok;

    snprintf(name, sizeof(name), "racer%d", round++);
    u = mk_user(t->st, name, user_quota);
    tok = mk_token(t->st, u, token_quota, 0);
    *sum = *tok_sum = *n = 0;
    for (int i = 0; i < 8; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].st = t->st;
        r[i].user = u;
        r[i].token = tok;
        r[i].use_token = i < 4;
        r[i].iterations = 200;
        r[i].amount_mod = amod;
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].errors, 0);
        *sum += r[i].ok_sum;
        *tok_sum += r[i].tok_sum;
        *n += r[i].ok_n;
    }
    {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT quota FROM users WHERE id=%lld", (long long)u);
        assert_int_equal(q1(t, sql), user_quota - *sum);
        snprintf(sql, sizeof(sql), "SELECT remain_quota FROM tokens WHERE id=%lld", (long long)tok);
        assert_int_equal(q1(t, sql), token_quota - *tok_sum);
        snprintf(sql, sizeof(sql), "SELECT used_quota FROM tokens WHERE id=%lld", (long long)tok);
        assert_int_equal(q1(t, sql), *tok_sum);
    }
}

static void reserve_contention_never_overdraws(void **state)
{
    struct tdb *t = *state;
    int64_t sum, tok_sum, n;
    struct mt_store_writer_stats s0, s1;
    double t0;

    /* amounts of 1: 1600 attempts on a quota of 1000 (token: 400 for half of them); the
     * user must end at exactly 0 and the token never below 0 */
    mt_store_writer_stats(t->st, &s0);
    t0 = now_s();
    run_race(t, 1000, 400, 1, &sum, &tok_sum, &n);
    assert_int_equal(sum, 1000);
    assert_true(tok_sum <= 400);
    mt_store_writer_stats(t->st, &s1);
    print_message("      8 threads x 200 blocking reserves: %.0f reserves/s, %llu commits\n",
                  1600.0 / (now_s() - t0), (unsigned long long)(s1.commits - s0.commits));
    /* mixed amounts 1..10 on a small quota: the sum never passes it */
    run_race(t, 3000, 700, 10, &sum, &tok_sum, &n);
    assert_true(sum <= 3000 && sum > 3000 - 10);
    assert_true(tok_sum <= 700);
}

/* a reserve leaves a hold until its settle; holds left by a crash go back at start */
static void holds_survive_a_crash(void **state)
{
    struct tdb *t = *state;
    char sql[160];
    int64_t u = mk_user(t->st, "h", 1000), tok = mk_token(t->st, u, 500, 0), n = -1, total = -1;
    struct mt_reserve r = {u, tok, 100};
    struct mt_settle s = {0};

    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    assert_int_equal(q1(t, "SELECT count(*) FROM mt_holds"), 1);
    s.user_id = u;
    s.token_id = tok;
    s.reserved = 100;
    s.quota = 60;
    s.count_request = 1;
    s.hold_id = q1(t, "SELECT id FROM mt_holds");
    assert_true(s.hold_id > 0);
    assert_int_equal(mt_store_settle(t->st, &s, NULL), CM_OK);
    assert_int_equal(q1(t, "SELECT count(*) FROM mt_holds"), 0); /* settled: released */

    /* two reserves a crash cut off: 200 more out of the user and the token */
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    snprintf(sql, sizeof sql, "SELECT quota FROM users WHERE id = %lld", (long long)u);
    assert_int_equal(q1(t, sql), 1000 - 60 - 200);
    assert_int_equal(mt_store_release_holds(t->st, &n, &total), CM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(total, 200);
    assert_int_equal(q1(t, sql), 1000 - 60);
    snprintf(sql, sizeof sql, "SELECT remain_quota FROM tokens WHERE id = %lld", (long long)tok);
    assert_int_equal(q1(t, sql), 500 - 60);
    snprintf(sql, sizeof sql, "SELECT used_quota FROM tokens WHERE id = %lld", (long long)tok);
    assert_int_equal(q1(t, sql), 60);
    assert_int_equal(q1(t, "SELECT count(*) FROM mt_holds"), 0);
    assert_int_equal(mt_store_release_holds(t->st, &n, &total), CM_OK); /* nothing left */
    assert_int_equal(n, 0);
}

static void settle_and_refund(void **state)
{
    struct tdb *t = *state;
    int64_t u = mk_user(t->st, "s", 1000), tok = mk_token(t->st, u, 500, 0), ch = 0, log_id = 0;
    struct mt_channel c;
    struct mt_reserve r = {u, tok, 100};
    struct mt_settle s = {0};
    struct mt_log l = {0};
    struct mt_quota_data_list qd = {0};

    mt_channel_init(&c);
    c.key = "k";
    c.models = "gpt-4o";
    assert_int_equal(mt_store_channel_insert(t->st, &c, 1, &ch), CM_OK);

    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    l.user_id = u;
    l.type = MT_LOG_CONSUME;
    l.username = "s";
    l.model_name = "gpt-4o";
    l.quota = 150;
    l.prompt_tokens = 1000;
    l.completion_tokens = 200;
    l.channel_id = ch;
    l.token_id = tok;
    l.other = "{\"model_ratio\":1.25,\"model_price\":-1}";
    s.user_id = u;
    s.token_id = tok;
    s.channel_id = ch;
    s.reserved = 100;
    s.quota = 150;
    s.count_request = 1;
    s.log = &l;
    s.quota_data = 1;
    assert_int_equal(mt_store_settle(t->st, &s, &log_id), CM_OK);
    assert_true(log_id > 0);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 850);
    assert_int_equal(q1(t, "SELECT used_quota FROM users WHERE id=1"), 150);
    assert_int_equal(q1(t, "SELECT request_count FROM users WHERE id=1"), 1);
    assert_int_equal(q1(t, "SELECT remain_quota FROM tokens WHERE id=1"), 350);
    assert_int_equal(q1(t, "SELECT used_quota FROM tokens WHERE id=1"), 150);
    assert_int_equal(q1(t, "SELECT used_quota FROM channels WHERE id=1"), 150);
    assert_int_equal(q1(t, "SELECT quota FROM logs WHERE type=2"), 150);
    assert_int_equal(q1(t, "SELECT created_at FROM logs WHERE type=2"), T0_WALL_MS / 1000);
    assert_int_equal(mt_store_quota_data_query(t->st, MT_QD_BY_MODEL, 0, 0, NULL, 0, &qd), CM_OK);
    assert_int_equal(qd.n, 1);
    assert_int_equal(qd.items[0].token_used, 1200);
    assert_int_equal(qd.items[0].quota, 150);
    assert_int_equal(qd.items[0].count, 1);
    mt_quota_data_list_cleanup(&qd);

    /* charged less than reserved: the difference comes back */
    r.amount = 200;
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    s.reserved = 200;
    s.quota = 50;
    s.log = NULL;
    s.quota_data = 0;
    assert_int_equal(mt_store_settle(t->st, &s, &log_id), CM_OK);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 800);
    assert_int_equal(q1(t, "SELECT remain_quota FROM tokens WHERE id=1"), 300);
    assert_int_equal(q1(t, "SELECT used_quota FROM tokens WHERE id=1"), 200);
    assert_int_equal(q1(t, "SELECT used_quota FROM users WHERE id=1"), 200);
    assert_int_equal(q1(t, "SELECT request_count FROM users WHERE id=1"), 2);

    /* refund: everything comes back, no counters */
    r.amount = 40;
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    assert_int_equal(mt_store_refund(t->st, u, tok, 40), CM_OK);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 800);
    assert_int_equal(q1(t, "SELECT remain_quota FROM tokens WHERE id=1"), 300);
    assert_int_equal(q1(t, "SELECT used_quota FROM tokens WHERE id=1"), 200);
    assert_int_equal(q1(t, "SELECT request_count FROM users WHERE id=1"), 2);

    /* a vanished user: nothing of the op is applied, not even its log row */
    s.user_id = 999;
    s.log = &l;
    assert_int_equal(mt_store_settle(t->st, &s, NULL), CM_ERR_NOTFOUND);
    assert_int_equal(q1(t, "SELECT count(*) FROM logs"), 1);
    assert_int_equal(q1(t, "SELECT used_quota FROM channels WHERE id=1"), 200);
    s.user_id = u;
    s.quota = -1;
    assert_int_equal(mt_store_settle(t->st, &s, NULL), CM_ERR_INVAL);
}

/* ---- batches ---- */

struct counter {
    _Atomic int done, ok, limit, other, visible, checked;
    _Atomic int64_t last_log;
    sqlite3 *outside; /* used only from the writer thread (callbacks) */
    int check_every;
};

static void count_cb(const struct mt_store_result *res, void *ud)
{
    struct counter *c = ud;
    int n = atomic_load(&c->done) + 1; /* callbacks run one at a time, on the writer */
    if (res->rc == CM_OK)
        atomic_fetch_add(&c->ok, 1);
    else if (res->rc == CM_ERR_LIMIT)
        atomic_fetch_add(&c->limit, 1);
    else
        atomic_fetch_add(&c->other, 1);
    if (res->log_id)
        atomic_store(&c->last_log, res->log_id);
    /* the row is committed: another connection sees it already */
    if (c->outside && res->log_id && c->check_every && n % c->check_every == 0) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM logs WHERE id = %lld",
                 (long long)res->log_id);
        atomic_fetch_add(&c->checked, 1);
        if (raw_int(c->outside, sql) == 1)
            atomic_fetch_add(&c->visible, 1);
    }
    atomic_fetch_add(&c->done, 1); /* last: the waiter may read everything now */
}

static void wait_done(struct counter *c, int n)
{
    for (int i = 0; i < 30000 && atomic_load(&c->done) < n; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&c->done), n);
}

static void failing_op_alone_in_batch(void **state)
{
    struct tdb *t = *state;
    struct mt_store_opts o = {0};
    struct counter c;
    struct mt_store_writer_stats s0, s1;
    struct mt_log l = {0};
    int64_t u;

    o.batch_linger_ms = 50; /* one batch for the three */
    assert_int_equal(tdb_open_opts(t, &o), CM_OK);
    u = mk_user(t->st, "b", 10);
    memset(&c, 0, sizeof(c));
    mt_store_writer_stats(t->st, &s0);
    {
        struct mt_reserve ok = {u, 0, 4}, big = {u, 0, 100};
        l.user_id = u;
        l.type = MT_LOG_ERROR;
        l.content = "upstream 500";
        assert_int_equal(mt_store_submit_reserve(t->st, &ok, count_cb, &c), CM_OK);
        assert_int_equal(mt_store_submit_reserve(t->st, &big, count_cb, &c), CM_OK);
        assert_int_equal(mt_store_submit_log(t->st, &l, count_cb, &c), CM_OK);
    }
    wait_done(&c, 3);
    mt_store_writer_stats(t->st, &s1);
    assert_int_equal(c.ok, 2);
    assert_int_equal(c.limit, 1);
    assert_int_equal(s1.commits - s0.commits, 1);
    assert_int_equal(s1.ops - s0.ops, 3);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 6);
    assert_int_equal(q1(t, "SELECT count(*) FROM logs WHERE type=5"), 1);
}

/* An op that fails inside SQL after changing rows (here a trigger refuses its log row)
 * makes the batch run again without it: its user update is not applied, the others are. */
static void hard_failure_rerun_without_op(void **state)
{
    struct tdb *t = *state;
    struct mt_store_opts o = {0};
    struct counter c;
    struct mt_store_writer_stats s0, s1;
    struct mt_log good = {0}, bad = {0};
    struct mt_settle sg = {0}, sb = {0};
    sqlite3 *db;
    int64_t u;

    o.batch_linger_ms = 50;
    assert_int_equal(tdb_open_opts(t, &o), CM_OK);
    u = mk_user(t->st, "h", 100);
    db = raw_open(t->path);
    assert_int_equal(raw_exec(db, "CREATE TRIGGER poison BEFORE INSERT ON logs WHEN "
                                  "NEW.content = 'poison' BEGIN SELECT RAISE(ABORT, 'no'); END"),
                     SQLITE_OK);
    sqlite3_close(db);
    good.user_id = bad.user_id = u;
    good.type = bad.type = MT_LOG_CONSUME;
    good.content = "fine";
    bad.content = "poison";
    sg.user_id = sb.user_id = u;
    sg.quota = sb.quota = 10;
    sg.count_request = sb.count_request = 1;
    sg.log = &good;
    sb.log = &bad;
    memset(&c, 0, sizeof(c));
    mt_store_writer_stats(t->st, &s0);
    assert_int_equal(mt_store_submit_settle(t->st, &sg, count_cb, &c), CM_OK);
    assert_int_equal(mt_store_submit_settle(t->st, &sb, count_cb, &c), CM_OK);
    assert_int_equal(mt_store_submit_settle(t->st, &sg, count_cb, &c), CM_OK);
    wait_done(&c, 3);
    mt_store_writer_stats(t->st, &s1);
    assert_int_equal(c.ok, 2);
    assert_int_equal(c.other, 1);
    assert_int_equal(s1.commits - s0.commits, 1);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), 80);
    assert_int_equal(q1(t, "SELECT request_count FROM users WHERE id=1"), 2);
    assert_int_equal(q1(t, "SELECT count(*) FROM logs"), 2);
}

static void many_submissions_few_commits(void **state)
{
    struct tdb *t = *state;
    struct counter c;
    struct mt_store_writer_stats s0, s1;
    struct mt_log l = {0};
    struct mt_settle s = {0};
    const int N = 10000;
    int64_t u = mk_user(t->st, "g", 0), tok = mk_token(t->st, u, 0, 1);
    double t0, dt;

    memset(&c, 0, sizeof(c));
    c.outside = raw_open(t->path);
    c.check_every = 500;
    l.user_id = u;
    l.type = MT_LOG_CONSUME;
    l.username = "g";
    l.model_name = "gpt-4o";
    l.content = "";
    l.other = "{\"model_ratio\":1.25,\"group_ratio\":1,\"completion_ratio\":4}";
    s.user_id = u;
    s.token_id = tok;
    s.quota = 3;
    s.count_request = 1;
    s.log = &l;
    s.quota_data = 1;
    mt_store_writer_stats(t->st, &s0);
    t0 = now_s();
    for (int i = 0; i < N; i++) {
        l.prompt_tokens = i;
        assert_int_equal(mt_store_submit_settle(t->st, &s, count_cb, &c), CM_OK);
    }
    wait_done(&c, N);
    dt = now_s() - t0;
    mt_store_writer_stats(t->st, &s1);
    assert_int_equal(c.ok, N);
    assert_int_equal(s1.ops - s0.ops, (uint64_t)N);
    assert_true(s1.commits - s0.commits < (uint64_t)N / 20); /* >= 20 ops per commit */
    assert_true(s1.max_batch > 1);
    assert_int_equal(c.visible, c.checked);
    assert_true(c.checked >= N / 500 - 1);
    assert_int_equal(q1(t, "SELECT quota FROM users WHERE id=1"), -3 * N);
    assert_int_equal(q1(t, "SELECT request_count FROM users WHERE id=1"), N);
    assert_int_equal(q1(t, "SELECT count(*) FROM logs"), N);
    assert_int_equal(q1(t, "SELECT sum(count) FROM quota_data"), N);
    print_message("      %d async settles (log + quota_data each): %.0f ops/s, %llu commits "
                  "(max batch %llu)\n",
                  N, N / dt, (unsigned long long)(s1.commits - s0.commits),
                  (unsigned long long)s1.max_batch);
    sqlite3_close(c.outside);
}

struct chain {
    struct mt_store *st;
    _Atomic int done, followups, blocking_rc;
    struct mt_log l;
};

static void follow_cb(const struct mt_store_result *res, void *ud)
{
    struct chain *c = ud;
    (void)res;
    atomic_fetch_add(&c->followups, 1);
}

static void chain_cb(const struct mt_store_result *res, void *ud)
{
    struct chain *c = ud;
    struct mt_reserve r = {1, 0, 0};
    (void)res;
    if (atomic_fetch_add(&c->done, 1) == 0)
        atomic_store(&c->blocking_rc, mt_store_reserve(c->st, &r, NULL)); /* must refuse */
    if (mt_store_submit_log(c->st, &c->l, follow_cb, c) != CM_OK)
        atomic_fetch_add(&c->followups, 1); /* refused (closing): counts as finished */
}

static void shutdown_drains(void **state)
{
    struct tdb *t = *state;
    struct chain c;
    const int N = 3000;
    int64_t u;

    memset(&c, 0, sizeof(c));
    assert_int_equal(tdb_open(t), CM_OK);
    u = mk_user(t->st, "d", 0);
    c.st = t->st;
    c.l.user_id = u;
    c.l.type = MT_LOG_SYSTEM;
    c.l.content = "drain";
    atomic_store(&c.blocking_rc, -1);
    for (int i = 0; i < N; i++)
        assert_int_equal(mt_store_submit_log(t->st, &c.l, chain_cb, &c), CM_OK);
    tdb_close(t); /* returns only when every op ran and its callback was called */
    assert_int_equal(atomic_load(&c.done), N);
    assert_int_equal(atomic_load(&c.followups), N);
    assert_int_equal(atomic_load(&c.blocking_rc), CM_ERR_INTERNAL);
    assert_true(q1(t, "SELECT count(*) FROM logs") >= N);
}

static void backpressure_and_busy(void **state)
{
    struct tdb *t = *state;
    struct mt_store_opts o = {0};
    struct counter c;
    struct mt_store_writer_stats s;
    struct mt_log l = {0};
    sqlite3 *db;
    int accepted = 0, refused = 0;

    o.queue_max = 8;
    o.batch_max = 4;
    o.busy_timeout_ms = 300;
    o.batch_linger_ms = -1;
    assert_int_equal(tdb_open_opts(t, &o), CM_OK);
    l.user_id = mk_user(t->st, "p", 0);
    l.type = MT_LOG_SYSTEM;
    memset(&c, 0, sizeof(c));

    /* an outside process holds the write lock: the writer's batch waits, then times out */
    db = raw_open(t->path);
    assert_int_equal(raw_exec(db, "BEGIN IMMEDIATE"), SQLITE_OK);
    for (int i = 0; i < 20; i++) {
        int rc = mt_store_submit_log(t->st, &l, count_cb, &c);
        if (rc == CM_OK)
            accepted++;
        else if (rc == CM_ERR_LIMIT)
            refused++;
        else
            fail();
    }
    assert_true(refused > 0);
    wait_done(&c, accepted);
    assert_int_equal(raw_exec(db, "COMMIT"), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(c.ok, 0);
    assert_int_equal(c.other, accepted); /* CM_ERR_TIMEOUT each */
    mt_store_writer_stats(t->st, &s);
    assert_true(s.failed_commits >= 1);
    assert_int_equal(q1(t, "SELECT count(*) FROM logs"), 0);
    /* free again: works */
    assert_int_equal(mt_store_submit_log(t->st, &l, count_cb, &c), CM_OK);
    wait_done(&c, accepted + 1);
    assert_int_equal(c.ok, 1);
}

static void oom_submit(void **state)
{
    struct tdb *t = *state;
    struct mt_log l = {0};
    struct mt_settle s = {0};
    struct mt_reserve r = {1, 0, 1};
    int64_t u = mk_user(t->st, "o", 10);

    l.user_id = u;
    l.content = "x";
    s.user_id = u;
    s.log = &l;
    cm_alloc_fail_at(1);
    assert_int_equal(mt_store_submit_log(t->st, &l, NULL, NULL), CM_ERR_NOMEM);
    cm_alloc_fail_at(1);
    assert_int_equal(mt_store_submit_settle(t->st, &s, NULL, NULL), CM_ERR_NOMEM);
    cm_alloc_fail_at(1);
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_ERR_NOMEM);
    cm_alloc_fail_at(0);
    assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    assert_int_equal(mt_store_submit_reserve(t->st, NULL, NULL, NULL), CM_ERR_INVAL);
    r.user_id = 0;
    assert_int_equal(mt_store_submit_reserve(t->st, &r, NULL, NULL), CM_ERR_INVAL);
}

static void throughput_single_thread(void **state)
{
    struct tdb *t = *state;
    int64_t u = mk_user(t->st, "x", 1000000000), tok = mk_token(t->st, u, 1000000000, 0);
    struct mt_reserve r = {u, tok, 1};
    struct mt_store_writer_stats s0, s1;
    double t0;
    const int N = 300;

    mt_store_writer_stats(t->st, &s0);
    t0 = now_s();
    for (int i = 0; i < N; i++)
        assert_int_equal(mt_store_reserve(t->st, &r, NULL), CM_OK);
    mt_store_writer_stats(t->st, &s1);
    print_message("      1 thread blocking reserves: %.0f/s (%.2f ms each incl. linger "
                  "and commit), %llu commits\n",
                  N / (now_s() - t0), (now_s() - t0) * 1000 / N,
                  (unsigned long long)(s1.commits - s0.commits));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reserve_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(reserve_contention_never_overdraws, setup, teardown),
        cmocka_unit_test_setup_teardown(holds_survive_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(settle_and_refund, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_op_alone_in_batch, setup_noopen, teardown),
        cmocka_unit_test_setup_teardown(hard_failure_rerun_without_op, setup_noopen, teardown),
        cmocka_unit_test_setup_teardown(many_submissions_few_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_drains, setup_noopen, teardown),
        cmocka_unit_test_setup_teardown(backpressure_and_busy, setup_noopen, teardown),
        cmocka_unit_test_setup_teardown(oom_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(throughput_single_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
