/* SPDX-License-Identifier: MIT */
/*
 * test_sched.c - cp_sched: rotation (round-robin, fill-first, priorities, prefix,
 * exclusions, tried set) and cooldowns (429 hint / ladder, transient never blocking
 * the last credential, 401 re-login, 402/403/404, disable-cooling), inspection,
 * OOM paths and a threaded smoke test. Time comes from a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "scheduler.h"

#define T0_MONO 1000000
#define T0_WALL 1700000000000LL

static const char *const MODELS[] = {"gpt-5", "gpt-5-mini", "gpt-5-codex"};
static const char *const CODEX[] = {"codex"};

struct fx {
    struct cm_clock_fake clk;
    struct cp_sched *s;
};

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof(f));
    cm_clock_fake_init(&f.clk, T0_WALL, T0_MONO);
    if (cp_sched_new(&f.clk.clock, &f.s) != CM_OK)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cp_sched_free(f->s);
    cm_alloc_fail_at(0);
    return 0;
}

static void set_cfg(struct cp_sched *s, enum cp_sched_strategy st, int dc, int transient)
{
    struct cp_sched_config cfg = {st, dc, transient};
    assert_int_equal(cp_sched_configure(s, &cfg), CM_OK);
}

static void add_full(struct cp_sched *s, const char *id, const char *prov, int prio,
                     const char *prefix, int dc)
{
    struct cp_sched_cred c = {.id = id,
                              .provider = prov,
                              .prefix = prefix,
                              .priority = prio,
                              .disable_cooling = dc,
                              .models = MODELS,
                              .n_models = 3};
    assert_int_equal(cp_sched_add(s, &c), CM_OK);
}

static void add(struct cp_sched *s, const char *id, int prio)
{
    add_full(s, id, "codex", prio, NULL, -1);
}

/* pick for codex with an optional tried set; returns the verdict, id in buf */
static enum cp_sched_verdict pick_tried(struct cp_sched *s, const char *model,
                                        const char *const *tried, size_t n_tried, char *buf,
                                        struct cp_sched_pick *res)
{
    struct cp_sched_pick_req rq = {CODEX, 1, model, tried, n_tried};
    struct cp_sched_pick r;
    buf[0] = '\0';
    assert_int_equal(cp_sched_pick(s, &rq, buf, 64, &r), CM_OK);
    if (res)
        *res = r;
    if (r.verdict != CP_SCHED_PICKED)
        buf[0] = '\0';
    return r.verdict;
}

static enum cp_sched_verdict pick(struct cp_sched *s, const char *model, char *buf,
                                  struct cp_sched_pick *res)
{
    return pick_tried(s, model, NULL, 0, buf, res);
}

static void mark(struct cp_sched *s, const char *id, int status, int hint_s)
{
    struct cp_sched_outcome o = {
        .status = status, .has_hint = hint_s >= 0, .retry_after_s = hint_s};
    assert_int_equal(cp_sched_mark_result(s, id, "gpt-5", &o), CM_OK);
}

static void advance(struct fx *f, int64_t ms)
{
    assert_int_equal(cm_clock_fake_advance_ms(&f->clk, ms), CM_OK);
}

/* cooldown end of (id, model) as the snapshot shows it, 0 if not cooling */
static int64_t until_of(struct cp_sched *s, const char *id, const char *model,
                        enum cp_sched_reason *why)
{
    struct cp_sched_snapshot *snap = NULL;
    int64_t u = 0;
    assert_int_equal(cp_sched_snapshot(s, &snap), CM_OK);
    for (size_t i = 0; i < snap->n; i++) {
        if (strcmp(snap->creds[i].id, id) != 0)
            continue;
        for (size_t j = 0; j < snap->creds[i].n_models; j++)
            if (strcmp(snap->creds[i].models[j].model, model) == 0) {
                u = snap->creds[i].models[j].until_mono_ms;
                if (why)
                    *why = snap->creds[i].models[j].reason;
            }
    }
    cp_sched_snapshot_free(snap);
    return u;
}

static void round_robin_alternates(void **state)
{
    struct fx *f = *state;
    char id[64];
    add(f->s, "b.json", 0);
    add(f->s, "a.json", 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
        assert_string_equal(id, i % 2 ? "b.json" : "a.json");
    }
    /* the cursor is per (provider, model): another model starts at the first again */
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "a.json");
}

static void fill_first_sticks(void **state)
{
    struct fx *f = *state;
    char id[64];
    set_cfg(f->s, CP_SCHED_FILL_FIRST, 0, 0);
    add(f->s, "b.json", 0);
    add(f->s, "a.json", 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
        assert_string_equal(id, "a.json");
    }
}

static void priorities(void **state)
{
    struct fx *f = *state;
    char id[64];
    add(f->s, "low.json", 0);
    add(f->s, "hi2.json", 5);
    add(f->s, "hi1.json", 5);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "hi1.json");
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "hi2.json");
    /* the high bucket cooling for quota: the low bucket serves */
    mark(f->s, "hi1.json", 429, 60);
    mark(f->s, "hi2.json", 429, 60);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "low.json");
}

static void prefix_and_exclusions(void **state)
{
    struct fx *f = *state;
    char id[64];
    static const char *const excl[] = {"GPT-5-MI*", "*-codex"};
    static const char *const excl_sub[] = {"*5-CO*"};
    static const char *const excl_exact[] = {"gpt-5"};
    struct cp_sched_cred ex = {.id = "ex.json",
                               .provider = "codex",
                               .disable_cooling = -1,
                               .models = MODELS,
                               .n_models = 3,
                               .excluded = excl,
                               .n_excluded = 2};
    struct cp_sched_cred ex2 = {.id = "ex2.json",
                                .provider = "claude",
                                .disable_cooling = -1,
                                .models = MODELS,
                                .n_models = 3,
                                .excluded = excl_exact,
                                .n_excluded = 1};
    static const char *const claude[] = {"claude"};
    struct cp_sched_pick_req rq = {claude, 1, "gpt-5", NULL, 0};
    struct cp_sched_pick r;

    set_cfg(f->s, CP_SCHED_FILL_FIRST, 0, 0);
    add_full(f->s, "p.json", "codex", 0, "team", -1);
    add(f->s, "q.json", 0);
    /* prefixed: only the credential with that prefix */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pick(f->s, "team/gpt-5", id, NULL), CP_SCHED_PICKED);
        assert_string_equal(id, "p.json");
    }
    assert_int_equal(pick(f->s, "other/gpt-5", id, NULL), CP_SCHED_NONE_SERVING);
    assert_int_equal(pick(f->s, "team/gpt-4", id, NULL), CP_SCHED_NONE_SERVING);
    /* unprefixed: every credential serving it */
    set_cfg(f->s, CP_SCHED_ROUND_ROBIN, 0, 0);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "p.json");
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "q.json");
    /* exclusions: prefix (case-insensitive), suffix and substring patterns */
    cp_sched_remove(f->s, "p.json");
    cp_sched_remove(f->s, "q.json");
    assert_int_equal(cp_sched_add(f->s, &ex), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_NONE_SERVING);
    assert_int_equal(pick(f->s, "gpt-5-codex", id, NULL), CP_SCHED_NONE_SERVING);
    /* substring pattern: only gpt-5-codex goes */
    ex.excluded = excl_sub;
    ex.n_excluded = 1;
    assert_int_equal(cp_sched_update(f->s, &ex), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_PICKED);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_int_equal(pick(f->s, "gpt-5-codex", id, NULL), CP_SCHED_NONE_SERVING);
    /* exact exclusion, and provider filtering */
    assert_int_equal(cp_sched_add(f->s, &ex2), CM_OK);
    assert_int_equal(cp_sched_pick(f->s, &rq, id, sizeof(id), &r), CM_OK);
    assert_int_equal(r.verdict, CP_SCHED_NONE_SERVING);
    rq.model = "gpt-5-mini";
    assert_int_equal(cp_sched_pick(f->s, &rq, id, sizeof(id), &r), CM_OK);
    assert_int_equal(r.verdict, CP_SCHED_PICKED);
    assert_string_equal(id, "ex2.json");
    /* not a model anyone serves */
    assert_int_equal(pick(f->s, "gpt-9", id, NULL), CP_SCHED_NONE_SERVING);
}

static void quota_hint_exact(void **state)
{
    struct fx *f = *state;
    char id[64];
    enum cp_sched_reason why = CP_SCHED_R_NONE;
    add(f->s, "a.json", 0);
    add(f->s, "b.json", 0);
    mark(f->s, "a.json", 429, 60);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", &why), T0_MONO + 60000);
    assert_int_equal(why, CP_SCHED_R_QUOTA);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
        assert_string_equal(id, "b.json");
    }
    /* other models of a.json are unaffected */
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "a.json");
    advance(f, 59999);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
        assert_string_equal(id, "b.json");
    }
    advance(f, 1);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    /* one of the two picks is a.json again: both are back in rotation */
    {
        char id2[64];
        assert_int_equal(pick(f->s, "gpt-5", id2, NULL), CP_SCHED_PICKED);
        assert_string_not_equal(id, id2);
    }
    /* an exact hint replaces a longer running cooldown (upstream knows best) */
    mark(f->s, "a.json", 429, 3600);
    mark(f->s, "a.json", 429, 5);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL), T0_MONO + 60000 + 5000);
}

static void quota_ladder(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    int64_t expect = 1000;
    add(f->s, "a.json", 0);
    for (int i = 0; i < 16; i++) {
        int64_t now = cm_clock_mono_ms(&f->clk.clock);
        mark(f->s, "a.json", 429, -1);
        assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL), now + expect);
        assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_ALL_COOLING);
        assert_int_equal(r.retry_at_ms, now + expect);
        assert_int_equal(r.retry_after_s, expect / 1000);
        advance(f, expect - 1);
        assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_ALL_COOLING);
        advance(f, 1);
        assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
        expect *= 2;
        if (expect > CP_SCHED_QUOTA_MAX_MS)
            expect = CP_SCHED_QUOTA_MAX_MS;
    }
    assert_int_equal(expect, 30 * 60 * 1000);
    /* a success resets the ladder */
    mark(f->s, "a.json", 200, -1);
    mark(f->s, "a.json", 429, -1);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL),
                     cm_clock_mono_ms(&f->clk.clock) + 1000);
    /* a ladder step never shortens a longer window already running */
    mark(f->s, "a.json", 429, 600);
    mark(f->s, "a.json", 429, -1);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL),
                     cm_clock_mono_ms(&f->clk.clock) + 600000);
}

static void transient_single_never_blocks(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    struct cp_sched_outcome o = {.transport = CP_SCHED_TX_STREAM_CLOSED};
    enum cp_sched_reason why = CP_SCHED_R_NONE;
    add(f->s, "a.json", 0);
    mark(f->s, "a.json", 408, -1);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", &why), T0_MONO + 5000);
    assert_int_equal(why, CP_SCHED_R_TRANSIENT);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_string_equal(id, "a.json");
    assert_int_equal(r.forced, 1);
    /* transport failures count the same; configured seconds apply */
    set_cfg(f->s, CP_SCHED_ROUND_ROBIN, 0, 7);
    assert_int_equal(cp_sched_mark_result(f->s, "a.json", "gpt-5-mini", &o), CM_OK);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5-mini", NULL), T0_MONO + 7000);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, &r), CP_SCHED_PICKED);
    assert_int_equal(r.forced, 1);
    /* -1: no transient cooldown at all */
    set_cfg(f->s, CP_SCHED_ROUND_ROBIN, 0, -1);
    mark(f->s, "a.json", 200, -1);
    mark(f->s, "a.json", 503, -1);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL), 0);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_int_equal(r.forced, 0);
}

static void transient_two_credentials(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    add(f->s, "a.json", 0);
    add(f->s, "b.json", 0);
    mark(f->s, "a.json", 503, -1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
        assert_string_equal(id, "b.json");
        assert_int_equal(r.forced, 0);
    }
    advance(f, 2000);
    mark(f->s, "b.json", 502, -1);
    /* both soft-cooling: the one ending first (a at +5 s, b at +7 s) */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
        assert_string_equal(id, "a.json");
        assert_int_equal(r.forced, 1);
    }
    /* quota on one, transient on the other: still the transient one, never a blackout */
    mark(f->s, "a.json", 429, 100);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_string_equal(id, "b.json");
    assert_int_equal(r.forced, 1);
    advance(f, 5000);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_string_equal(id, "b.json");
    assert_int_equal(r.forced, 0);
}

static void transient_tie_prefers_priority(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    add(f->s, "a.json", 0);
    add(f->s, "b.json", 1);
    add(f->s, "c.json", 1);
    mark(f->s, "c.json", 503, -1);
    mark(f->s, "b.json", 503, -1);
    mark(f->s, "a.json", 503, -1);
    /* same end for all three: higher priority first, then id order */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
        assert_string_equal(id, "b.json");
        assert_int_equal(r.forced, 1);
    }
}

static void all_quota_cooling(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    add(f->s, "a.json", 0);
    add(f->s, "b.json", 0);
    add(f->s, "c.json", 0);
    mark(f->s, "a.json", 429, 100);
    mark(f->s, "b.json", 429, 50);
    advance(f, 250);
    mark(f->s, "c.json", 401, -1); /* re-login does not hide the quota answer */
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_ALL_COOLING);
    assert_int_equal(r.retry_at_ms, T0_MONO + 50000);
    assert_int_equal(r.retry_after_s, 50); /* 49.75 s rounded up */
    advance(f, 49750);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "b.json");
}

static void relogin_on_401(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_snapshot *snap = NULL;
    struct cp_sched_cred c = {.id = "a.json",
                              .provider = "codex",
                              .disable_cooling = -1,
                              .models = MODELS,
                              .n_models = 3};
    add(f->s, "a.json", 0);
    set_cfg(f->s, CP_SCHED_ROUND_ROBIN, 1, 0); /* disable-cooling does not bypass re-login */
    mark(f->s, "a.json", 401, -1);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_UNAVAILABLE);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_UNAVAILABLE);
    assert_int_equal(cp_sched_snapshot(f->s, &snap), CM_OK);
    assert_int_equal(snap->n, 1);
    assert_int_equal(snap->creds[0].state, CP_SCHED_RELOGIN);
    assert_int_equal(snap->creds[0].last_status, 401);
    assert_string_equal(cp_sched_state_str(snap->creds[0].state), "needs re-login");
    cp_sched_snapshot_free(snap);
    advance(f, 24LL * 3600 * 1000); /* no timeout: stays until the file changes */
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_UNAVAILABLE);
    assert_int_equal(cp_sched_update(f->s, &c), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    /* set by the refresher, cleared by re-adding */
    assert_int_equal(cp_sched_set_relogin(f->s, "a.json"), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_UNAVAILABLE);
    assert_int_equal(cp_sched_remove(f->s, "a.json"), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_NONE_SERVING);
    assert_int_equal(cp_sched_add(f->s, &c), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
}

static void payment_notfound_request(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    enum cp_sched_reason why = CP_SCHED_R_NONE;
    struct cp_sched_outcome bad = {.status = 400, .request_scoped = 1};
    add(f->s, "a.json", 0);
    /* request-scoped 400/422: nothing changes */
    assert_int_equal(cp_sched_mark_result(f->s, "a.json", "gpt-5", &bad), CM_OK);
    bad.status = 422;
    assert_int_equal(cp_sched_mark_result(f->s, "a.json", "gpt-5", &bad), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_int_equal(r.forced, 0);
    /* 403: 30 min, blocking, not quota -> unavailable with a retry time */
    mark(f->s, "a.json", 403, -1);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", &why), T0_MONO + 1800000);
    assert_int_equal(why, CP_SCHED_R_PAYMENT);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_UNAVAILABLE);
    assert_int_equal(r.retry_after_s, 1800);
    advance(f, 1800000);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    /* 404: a short soft cooldown, never a blackout */
    mark(f->s, "a.json", 404, -1);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", &why), T0_MONO + 1800000 + 30000);
    assert_int_equal(why, CP_SCHED_R_NOT_FOUND);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_int_equal(r.forced, 1);
}

static void classify_and_failover(void **state)
{
    static const struct {
        struct cp_sched_outcome o;
        enum cp_sched_class k;
        int failover;
    } rows[] = {
        {{.status = 200}, CP_SCHED_C_SUCCESS, 0},
        {{.status = 400, .request_scoped = 1}, CP_SCHED_C_REQUEST, 0},
        {{.status = 422, .request_scoped = 1}, CP_SCHED_C_REQUEST, 0},
        {{.status = 429}, CP_SCHED_C_QUOTA, 1},
        {{.status = 429, .has_hint = 1, .retry_after_s = 9}, CP_SCHED_C_QUOTA, 1},
        {{.status = 408}, CP_SCHED_C_TRANSIENT, 1},
        {{.status = 500}, CP_SCHED_C_TRANSIENT, 1},
        {{.status = 502}, CP_SCHED_C_TRANSIENT, 1},
        {{.status = 503}, CP_SCHED_C_TRANSIENT, 1},
        {{.status = 504}, CP_SCHED_C_TRANSIENT, 1},
        {{.transport = CP_SCHED_TX_CONNECT}, CP_SCHED_C_TRANSIENT, 1},
        {{.transport = CP_SCHED_TX_RESET}, CP_SCHED_C_TRANSIENT, 1},
        {{.transport = CP_SCHED_TX_TIMEOUT}, CP_SCHED_C_TRANSIENT, 1},
        {{.status = 200, .transport = CP_SCHED_TX_STREAM_CLOSED}, CP_SCHED_C_TRANSIENT, 1},
        {{.status = 401}, CP_SCHED_C_RELOGIN, 1},
        {{.status = 402}, CP_SCHED_C_PAYMENT, 1},
        {{.status = 403}, CP_SCHED_C_PAYMENT, 1},
        {{.status = 404}, CP_SCHED_C_NOT_FOUND, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(cp_sched_classify(&rows[i].o), rows[i].k);
        assert_int_equal(cp_sched_should_failover(&rows[i].o), rows[i].failover);
    }
}

static void disable_cooling(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_snapshot *snap = NULL;
    set_cfg(f->s, CP_SCHED_FILL_FIRST, 1, 0);
    add(f->s, "a.json", 0);                        /* follows global: off */
    add_full(f->s, "b.json", "codex", 0, NULL, 0); /* per credential: cooling on */
    mark(f->s, "a.json", 429, 3600);
    mark(f->s, "b.json", 429, 3600);
    /* a: state recorded but not blocking */
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL), T0_MONO + 3600000);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "a.json");
    assert_int_equal(cp_sched_snapshot(f->s, &snap), CM_OK);
    assert_int_equal(snap->creds[0].state, CP_SCHED_COOLING);
    assert_int_equal(snap->creds[0].cooling_disabled, 1);
    assert_int_equal(snap->creds[1].cooling_disabled, 0);
    cp_sched_snapshot_free(snap);
    /* b only, with per-credential cooling on despite the global flag: blocked */
    assert_int_equal(cp_sched_remove(f->s, "a.json"), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_ALL_COOLING);
    /* global off, per credential on: never blocks */
    set_cfg(f->s, CP_SCHED_FILL_FIRST, 0, 0);
    add_full(f->s, "c.json", "codex", -1, NULL, 1);
    mark(f->s, "c.json", 429, 3600);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "c.json");
}

static void tried_set(void **state)
{
    struct fx *f = *state;
    char id[64];
    static const char *const t1[] = {"a.json"};
    static const char *const t2[] = {"b.json", "a.json"};
    set_cfg(f->s, CP_SCHED_FILL_FIRST, 0, 0);
    add(f->s, "a.json", 0);
    add(f->s, "b.json", 0);
    assert_int_equal(pick_tried(f->s, "gpt-5", t1, 1, id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "b.json");
    assert_int_equal(pick_tried(f->s, "gpt-5", t2, 2, id, NULL), CP_SCHED_EXHAUSTED);
    /* a tried credential is not used even as a transient last resort */
    mark(f->s, "b.json", 503, -1);
    assert_int_equal(pick_tried(f->s, "gpt-5", t1, 1, id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "b.json");
    mark(f->s, "a.json", 503, -1);
    assert_int_equal(pick_tried(f->s, "gpt-5", t1, 1, id, NULL), CP_SCHED_PICKED);
    assert_string_equal(id, "b.json");
}

static void reset_quota_and_update(void **state)
{
    struct fx *f = *state;
    char id[64];
    static const char *const fewer[] = {"gpt-5-mini"};
    struct cp_sched_pick r;
    struct cp_sched_cred c = {.id = "a.json",
                              .provider = "codex",
                              .disable_cooling = -1,
                              .models = MODELS,
                              .n_models = 3};
    add(f->s, "a.json", 0);
    mark(f->s, "a.json", 429, 3600);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_ALL_COOLING);
    /* an update keeps the cooldown of a model still served */
    assert_int_equal(cp_sched_update(f->s, &c), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_ALL_COOLING);
    assert_int_equal(cp_sched_reset_quota(f->s, "a.json"), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, &r), CP_SCHED_PICKED);
    assert_int_equal(r.forced, 0);
    assert_int_equal(until_of(f->s, "a.json", "gpt-5", NULL), 0);
    /* account-wide mark (model NULL) cools every model */
    {
        struct cp_sched_outcome o = {.status = 429, .has_hint = 1, .retry_after_s = 10};
        assert_int_equal(cp_sched_mark_result(f->s, "a.json", NULL, &o), CM_OK);
    }
    assert_int_equal(pick(f->s, "gpt-5-codex", id, NULL), CP_SCHED_ALL_COOLING);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_ALL_COOLING);
    /* a model list change drops state of models no longer served */
    c.models = fewer;
    c.n_models = 1;
    assert_int_equal(cp_sched_update(f->s, &c), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5", id, NULL), CP_SCHED_NONE_SERVING);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_ALL_COOLING);
    assert_int_equal(cp_sched_reset_quota(f->s, "nope.json"), CM_ERR_NOTFOUND);
    /* disabled: 503-ish, then back */
    assert_int_equal(cp_sched_reset_quota(f->s, "a.json"), CM_OK);
    assert_int_equal(cp_sched_set_disabled(f->s, "a.json", 1), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_UNAVAILABLE);
    assert_int_equal(cp_sched_set_disabled(f->s, "a.json", 0), CM_OK);
    assert_int_equal(pick(f->s, "gpt-5-mini", id, NULL), CP_SCHED_PICKED);
}

static void snapshot_contents(void **state)
{
    struct fx *f = *state;
    struct cp_sched_snapshot *snap = NULL;
    const struct cp_sched_cred_info *a, *b;
    add_full(f->s, "b.json", "claude", 3, "pfx", -1);
    add(f->s, "a.json", 0);
    mark(f->s, "a.json", 503, -1);
    {
        struct cp_sched_outcome o = {.status = 429, .has_hint = 1, .retry_after_s = 2};
        assert_int_equal(cp_sched_mark_result(f->s, "a.json", "gpt-5-mini", &o), CM_OK);
    }
    assert_int_equal(cp_sched_snapshot(f->s, &snap), CM_OK);
    assert_int_equal(snap->n, 2);
    assert_int_equal(snap->now_mono_ms, T0_MONO);
    assert_int_equal(snap->now_wall_ms, T0_WALL);
    a = &snap->creds[0];
    b = &snap->creds[1];
    assert_string_equal(a->id, "a.json");
    assert_string_equal(a->provider, "codex");
    assert_string_equal(a->prefix, "");
    assert_int_equal(a->state, CP_SCHED_COOLING);
    assert_int_equal(a->reason, CP_SCHED_R_QUOTA); /* ends first (2 s < 5 s) */
    assert_int_equal(a->until_wall_ms, T0_WALL + 2000);
    assert_int_equal(a->last_status, 429);
    assert_int_equal(a->n_models, 2);
    assert_string_equal(cp_sched_reason_str(a->reason), "quota");
    assert_string_equal(b->id, "b.json");
    assert_string_equal(b->provider, "claude");
    assert_string_equal(b->prefix, "pfx");
    assert_int_equal(b->priority, 3);
    assert_int_equal(b->state, CP_SCHED_ACTIVE);
    assert_int_equal(b->n_models, 0);
    assert_null(b->models);
    cp_sched_snapshot_free(snap);
    /* cooldowns end: active again */
    advance(f, 5000);
    assert_int_equal(cp_sched_snapshot(f->s, &snap), CM_OK);
    assert_int_equal(snap->creds[0].state, CP_SCHED_ACTIVE);
    cp_sched_snapshot_free(snap);
}

static void bad_args(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    struct cp_sched_pick_req rq = {CODEX, 1, "gpt-5", NULL, 0};
    struct cp_sched_outcome o = {.status = 200};
    struct cp_sched_cred c = {.id = "a.json", .provider = "codex", .models = MODELS, .n_models = 3};
    struct cp_sched_config cfg = {CP_SCHED_ROUND_ROBIN, 0, -2};
    char longid[CP_SCHED_MAX_ID_LEN + 2];
    assert_int_equal(cp_sched_new(NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(cp_sched_configure(f->s, &cfg), CM_ERR_INVAL);
    assert_int_equal(cp_sched_add(f->s, NULL), CM_ERR_INVAL);
    c.provider = "";
    assert_int_equal(cp_sched_add(f->s, &c), CM_ERR_INVAL);
    c.provider = "codex";
    c.prefix = "a/b";
    assert_int_equal(cp_sched_add(f->s, &c), CM_ERR_INVAL);
    c.prefix = NULL;
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    c.id = longid;
    assert_int_equal(cp_sched_add(f->s, &c), CM_ERR_LIMIT);
    c.id = "a.json";
    assert_int_equal(cp_sched_update(f->s, &c), CM_ERR_NOTFOUND);
    assert_int_equal(cp_sched_add(f->s, &c), CM_OK);
    assert_int_equal(cp_sched_add(f->s, &c), CM_ERR_EXISTS);
    assert_int_equal(cp_sched_remove(f->s, "zzz"), CM_ERR_NOTFOUND);
    assert_int_equal(cp_sched_mark_result(f->s, "zzz", "gpt-5", &o), CM_ERR_NOTFOUND);
    assert_int_equal(cp_sched_mark_result(f->s, "a.json", "gpt-9", &o), CM_ERR_NOTFOUND);
    assert_int_equal(cp_sched_mark_result(f->s, "a.json", "gpt-5", NULL), CM_ERR_INVAL);
    rq.model = "";
    assert_int_equal(cp_sched_pick(f->s, &rq, id, sizeof(id), &r), CM_ERR_INVAL);
    rq.model = "gpt-5";
    /* buffer too small: LIMIT, out untouched, cursor unmoved */
    r.verdict = CP_SCHED_UNAVAILABLE;
    assert_int_equal(cp_sched_pick(f->s, &rq, id, 6, &r), CM_ERR_LIMIT);
    assert_int_equal(r.verdict, CP_SCHED_UNAVAILABLE);
    assert_int_equal(cp_sched_pick(f->s, &rq, id, 7, &r), CM_OK);
    assert_string_equal(id, "a.json");
}

static void multi_provider(void **state)
{
    struct fx *f = *state;
    char id[64];
    struct cp_sched_pick r;
    static const char *const both[] = {"claude", "codex"};
    struct cp_sched_pick_req rq = {both, 2, "gpt-5", NULL, 0};
    add_full(f->s, "x.json", "claude", 0, NULL, -1);
    add(f->s, "y.json", 0);
    add_full(f->s, "z.json", "gemini", 0, NULL, -1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cp_sched_pick(f->s, &rq, id, sizeof(id), &r), CM_OK);
        assert_int_equal(r.verdict, CP_SCHED_PICKED);
        assert_string_equal(id, i % 2 ? "y.json" : "x.json");
    }
    rq.n_providers = 0; /* any provider */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cp_sched_pick(f->s, &rq, id, sizeof(id), &r), CM_OK);
        assert_string_equal(id, i == 0 ? "x.json" : i == 1 ? "y.json" : "z.json");
    }
    /* which provider serves a model, whatever the credential's state */
    add_full(f->s, "p.json", "claude", 0, "team", -1);
    assert_int_equal(cp_sched_set_disabled(f->s, "y.json", 1), CM_OK);
    assert_true(cp_sched_serves(f->s, "codex", "gpt-5"));
    assert_true(cp_sched_serves(f->s, NULL, "gpt-5-mini"));
    assert_true(cp_sched_serves(f->s, "claude", "team/gpt-5"));
    assert_false(cp_sched_serves(f->s, "codex", "team/gpt-5"));
    assert_false(cp_sched_serves(f->s, "qwen", "gpt-5"));
    assert_false(cp_sched_serves(f->s, NULL, "claude-opus-4-6"));
    assert_false(cp_sched_serves(NULL, NULL, "gpt-5"));
    assert_false(cp_sched_serves(f->s, NULL, NULL));
}

/* ---- OOM: every allocation of new/add/update/snapshot fails in turn, nothing leaks ---- */

static void oom_paths(void **state)
{
    struct cm_clock_fake clk;
    struct cp_sched *s = NULL;
    struct cp_sched_snapshot *snap = NULL;
    char id[64];
    static const char *const excl[] = {"*-mini"};
    struct cp_sched_cred c = {.id = "a.json",
                              .provider = "codex",
                              .prefix = "pfx",
                              .disable_cooling = -1,
                              .models = MODELS,
                              .n_models = 3,
                              .excluded = excl,
                              .n_excluded = 1};
    int rc, n, failures = 0;
    (void)state;
    cm_clock_fake_init(&clk, T0_WALL, T0_MONO);
    for (n = 1;; n++) {
        cm_alloc_fail_at(n);
        rc = cp_sched_new(&clk.clock, &s);
        cm_alloc_fail_at(0);
        if (rc == CM_OK)
            break;
        assert_int_equal(rc, CM_ERR_NOMEM);
        assert_true(n < 10);
    }
    for (n = 1;; n++) {
        cm_alloc_fail_at(n);
        rc = cp_sched_add(s, &c);
        cm_alloc_fail_at(0);
        if (rc == CM_OK)
            break;
        failures++;
        assert_int_equal(rc, CM_ERR_NOMEM);
        assert_int_equal(pick(s, "gpt-5", id, NULL), CP_SCHED_NONE_SERVING); /* unchanged */
        assert_true(n < 50);
    }
    assert_true(failures >= 9); /* cred, 3 strings, prefix, 2 vectors + 4 names, states, array */
    assert_int_equal(pick(s, "pfx/gpt-5", id, NULL), CP_SCHED_PICKED);
    mark(s, "a.json", 429, 60);
    for (n = 1;; n++) {
        cm_alloc_fail_at(n);
        rc = cp_sched_update(s, &c);
        cm_alloc_fail_at(0);
        if (rc == CM_OK)
            break;
        assert_int_equal(rc, CM_ERR_NOMEM);
        assert_int_equal(pick(s, "gpt-5", id, NULL), CP_SCHED_ALL_COOLING); /* old entry stays */
    }
    cm_alloc_fail_at(1);
    rc = cp_sched_snapshot(s, &snap);
    cm_alloc_fail_at(0);
    assert_int_equal(rc, CM_ERR_NOMEM);
    assert_null(snap);
    /* pick and mark never allocate */
    cm_alloc_fail_at(1);
    assert_int_equal(pick(s, "pfx/gpt-5", id, NULL), CP_SCHED_ALL_COOLING);
    mark(s, "a.json", 200, -1);
    assert_int_equal(pick(s, "gpt-5", id, NULL), CP_SCHED_PICKED);
    cm_alloc_fail_at(0);
    cp_sched_free(s);
}

/* ---- threads: pick/mark/update/snapshot at once (ASan/TSan-friendly smoke test) ---- */

struct worker {
    struct cp_sched *s;
    struct cm_clock_fake *clk;
    int idx;
    int picked, errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    static const int statuses[] = {200, 200, 200, 429, 503, 408, 404, 403, 400};
    static const char *const models[] = {"gpt-5", "gpt-5-mini", "pfx/gpt-5-codex"};
    char id[64];
    for (int i = 0; i < 3000; i++) {
        struct cp_sched_pick_req rq = {CODEX, 1, models[(i + w->idx) % 3], NULL, 0};
        struct cp_sched_pick r;
        if (cp_sched_pick(w->s, &rq, id, sizeof(id), &r) != CM_OK) {
            w->errors++;
            continue;
        }
        if (r.verdict == CP_SCHED_PICKED) {
            struct cp_sched_outcome o = {.status = statuses[(i * 7 + w->idx) % 9],
                                         .has_hint = i % 5 == 0,
                                         .retry_after_s = 1};
            int rc;
            w->picked++;
            if (strncmp(id, "c", 1) != 0)
                w->errors++;
            o.request_scoped = o.status == 400;
            rc = cp_sched_mark_result(w->s, id, rq.model, &o);
            /* an id may be removed and re-added by the churn thread meanwhile */
            if (rc != CM_OK && rc != CM_ERR_NOTFOUND)
                w->errors++;
        }
        if (w->idx == 0 && i % 10 == 0)
            cm_clock_fake_advance_ms(w->clk, 700);
    }
    return NULL;
}

static void *churn(void *arg)
{
    struct worker *w = arg;
    struct cp_sched_cred c = {.id = "c9.json",
                              .provider = "codex",
                              .prefix = "pfx",
                              .disable_cooling = -1,
                              .models = MODELS,
                              .n_models = 3};
    for (int i = 0; i < 500; i++) {
        struct cp_sched_snapshot *snap = NULL;
        if (cp_sched_add(w->s, &c) != CM_OK)
            w->errors++;
        if (cp_sched_update(w->s, &c) != CM_OK)
            w->errors++;
        if (cp_sched_snapshot(w->s, &snap) != CM_OK)
            w->errors++;
        cp_sched_snapshot_free(snap);
        {
            char nm[8] = "c0.json";
            nm[1] = (char)('0' + i % 5);
            cp_sched_reset_quota(w->s, nm);
        }
        if (cp_sched_remove(w->s, "c9.json") != CM_OK)
            w->errors++;
    }
    return NULL;
}

static void threads_smoke(void **state)
{
    struct fx *f = *state;
    enum { NW = 6 };
    pthread_t th[NW + 1];
    struct worker w[NW + 1];
    char name[16];
    int picked = 0;
    for (int i = 0; i < 5; i++) {
        name[0] = 'c';
        name[1] = (char)('0' + i);
        memcpy(name + 2, ".json", 6);
        add_full(f->s, name, "codex", i % 2, "pfx", -1);
    }
    for (int i = 0; i <= NW; i++) {
        w[i] = (struct worker){f->s, &f->clk, i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, i == NW ? churn : work, &w[i]), 0);
    }
    for (int i = 0; i <= NW; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].errors, 0);
        picked += w[i].picked;
    }
    assert_true(picked > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_robin_alternates, setup, teardown),
        cmocka_unit_test_setup_teardown(fill_first_sticks, setup, teardown),
        cmocka_unit_test_setup_teardown(priorities, setup, teardown),
        cmocka_unit_test_setup_teardown(prefix_and_exclusions, setup, teardown),
        cmocka_unit_test_setup_teardown(quota_hint_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(quota_ladder, setup, teardown),
        cmocka_unit_test_setup_teardown(transient_single_never_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(transient_two_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(transient_tie_prefers_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(all_quota_cooling, setup, teardown),
        cmocka_unit_test_setup_teardown(relogin_on_401, setup, teardown),
        cmocka_unit_test_setup_teardown(payment_notfound_request, setup, teardown),
        cmocka_unit_test(classify_and_failover),
        cmocka_unit_test_setup_teardown(disable_cooling, setup, teardown),
        cmocka_unit_test_setup_teardown(tried_set, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_quota_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(multi_provider, setup, teardown),
        cmocka_unit_test(oom_paths),
        cmocka_unit_test_setup_teardown(threads_smoke, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
