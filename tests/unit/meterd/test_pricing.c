/* SPDX-License-Identifier: MIT */
/*
 * test_pricing.c - meterd pricing against spec newapi.md section 5: the worked example of
 * 5.9 (pre-charge 18750, settlement 20625 = $0.04125, the log row's `other`), the per-call
 * dall-e-3 variant (30000), ModelPrice precedence, group and group-group ratios, cache read
 * and write ratios (OpenAI and Anthropic semantics, 5m/1h), completion-ratio defaults vs
 * the operator's override (no locks), the minimum of 1 and the zero-token rule, exact decimal
 * rounding (x.5 away from zero), huge values, unpriced models, option validation messages,
 * the token estimate, display conversions and an OOM walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cjson/cJSON.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "pricing.h"

#define QMAX MT_PRICING_QUOTA_MAX

/* ---- helpers ---- */

static struct mt_pricing *mk(const struct mt_pricing_opts *o)
{
    struct mt_pricing *p = NULL;
    char err[256];
    int rc = mt_pricing_new(o, &p, err, sizeof err);
    if (rc)
        fail_msg("mt_pricing_new: %d %s", rc, err);
    return p;
}

/* the 5.9 settings: gpt-4o 1.25, cache 0.5 (default map), completion 4 (default), vip 1.5 */
static struct mt_pricing *mk_spec(void)
{
    struct mt_pricing_opts o = {0};
    o.group_ratio = "{\"default\":1,\"vip\":1.5,\"svip\":1}";
    return mk(&o);
}

static struct mt_price price_of(const struct mt_pricing *p, const char *model, const char *group)
{
    struct mt_price pr;
    assert_int_equal(mt_pricing_model_price(p, model, group, NULL, &pr), CM_OK);
    return pr;
}

static int64_t settle(const struct mt_price *pr, const struct mt_usage *u)
{
    struct mt_charge c;
    assert_int_equal(mt_pricing_settle(pr, u, &c), CM_OK);
    return c.quota;
}

/* settles and asserts the quota; returns the charge for further checks */
static struct mt_charge settle_q(const struct mt_price *pr, const struct mt_usage *u, int64_t want)
{
    struct mt_charge c;
    assert_int_equal(mt_pricing_settle(pr, u, &c), CM_OK);
    assert_int_equal(c.quota, want);
    return c;
}

/* reserves and asserts the quota; returns the reservation for further checks */
static struct mt_preconsume preconsume_q(const struct mt_pricing *p, const struct mt_price *pr,
                                         int64_t est, int64_t max_tokens, int64_t want)
{
    struct mt_preconsume pre;
    assert_int_equal(mt_pricing_preconsume(p, pr, est, max_tokens, &pre), CM_OK);
    assert_int_equal(pre.quota, want);
    return pre;
}

static int64_t usd_q(const struct mt_pricing *p, double usd)
{
    int64_t q = 0;
    assert_int_equal(mt_pricing_usd_to_quota(p, usd, &q), CM_OK);
    return q;
}

static char *other_text(const struct mt_charge *c, const struct mt_other_ctx *ctx)
{
    cJSON *o = NULL;
    char *s = NULL;
    assert_int_equal(mt_pricing_other_json(c, ctx, &o), CM_OK);
    assert_int_equal(cm_json_print(o, &s, NULL), CM_OK);
    cJSON_Delete(o);
    return s;
}

static void assert_near(double a, double b)
{
    double d = a - b;
    if (d < -1e-12 || d > 1e-12)
        fail_msg("%.17g != %.17g", a, b);
}

/* ---- 5.9 worked example ---- */

static void worked_example(void **state)
{
    struct mt_pricing *p = mk_spec();
    struct mt_price pr;
    struct mt_preconsume pre;
    struct mt_usage u = {0};
    struct mt_charge c;
    int64_t ids[] = {7};
    struct mt_other_ctx ctx = {0};
    char *s, buf[64];
    (void)state;

    pr = price_of(p, "gpt-4o", "vip");
    assert_false(pr.use_price);
    assert_false(pr.unpriced);
    assert_true(pr.group_found);
    assert_near(pr.model_ratio, 1.25);
    assert_near(pr.completion_ratio, 4);
    assert_near(pr.cache_ratio, 0.5);
    assert_near(pr.group_ratio, 1.5);
    assert_near(pr.user_group_ratio, -1);
    assert_near(pr.model_price, -1);

    /* 1. pre-charge: max(10000, 500) x 1.25 x 1.5 = 18750; no trust bypass at 2,000,000 */
    pre = preconsume_q(p, &pr, 10000, 0, 18750);
    assert_false(pre.skip);
    assert_false(pre.clamped);
    assert_false(mt_pricing_trust_bypass(p, 2000000, 0, 1000000));

    /* 2-3. usage 10000 (6000 cached) + 1000 -> 4000 + 3000 + 4000 = 11000 x 1.875 = 20625 */
    u.prompt_tokens = 10000;
    u.cached_tokens = 6000;
    u.completion_tokens = 1000;
    c = settle_q(&pr, &u, 20625);
    assert_false(c.no_tokens);
    assert_false(c.minimum_applied);
    assert_near(mt_pricing_quota_to_usd(p, c.quota), 0.04125);
    /* 4. delta against the reservation */
    assert_int_equal(c.quota - pre.quota, 1875);

    /* 5. the log row's other */
    ctx.frt_ms = 850;
    ctx.request_path = "/v1/chat/completions";
    ctx.use_channel = ids;
    ctx.n_use_channel = 1;
    s = other_text(&c, &ctx);
    assert_string_equal(s, "{\"model_ratio\":1.25,\"group_ratio\":1.5,\"completion_ratio\":4,"
                           "\"cache_tokens\":6000,\"cache_ratio\":0.5,\"model_price\":-1,"
                           "\"user_group_ratio\":-1,\"frt\":850,\"admin_info\":{\"use_channel\":"
                           "[\"7\"]},\"request_path\":\"/v1/chat/completions\"}");
    cm_free(s);

    assert_int_equal(mt_pricing_log_quota(p, c.quota, buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "\xef\xbc\x84"
                             "0.041250 \xe9\xa2\x9d\xe5\xba\xa6");
    mt_pricing_free(p);
}

/* 5.9 per-call variant: dall-e-3 0.04 x 500000 x 1.5 = 30000, reserved and settled */
static void per_call_variant(void **state)
{
    struct mt_pricing *p = mk_spec();
    struct mt_price pr = price_of(p, "dall-e-3", "vip");
    struct mt_usage u = {0};
    struct mt_charge c;
    char *s;
    (void)state;

    assert_true(pr.use_price);
    assert_near(pr.model_price, 0.04);
    preconsume_q(p, &pr, 5, 0, 30000);
    u.per_call = 1;
    c = settle_q(&pr, &u, 30000);
    assert_false(c.no_tokens);
    s = other_text(&c, NULL);
    assert_non_null(strstr(s, "\"model_price\":0.04,"));
    assert_non_null(strstr(s, "\"admin_info\":{\"use_channel\":[]}"));
    cm_free(s);
    /* a token-billed call with no tokens costs 0 even at a per-call price (text path) */
    u.per_call = 0;
    c = settle_q(&pr, &u, 0);
    assert_true(c.no_tokens);
    mt_pricing_free(p);
}

/* ---- precedence, groups ---- */

static void model_price_precedence(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_usage u = {0};
    (void)state;

    o.model_ratio = "{\"m\":2,\"r\":2}";
    o.model_price = "{\"m\":0.01,\"free\":0}";
    p = mk(&o);
    pr = price_of(p, "m", "default");
    assert_true(pr.use_price);
    assert_near(pr.model_ratio, 0);
    u.prompt_tokens = 1000000;
    u.completion_tokens = 1000000;
    assert_int_equal(settle(&pr, &u), 5000); /* 0.01 x 500000, tokens do not matter */
    pr = price_of(p, "r", "default");
    assert_false(pr.use_price);
    assert_int_equal(settle(&pr, &u), 4000000); /* (1e6 + 1e6 x 1) x 2 */
    /* a price of 0 is free: no minimum on the price path */
    pr = price_of(p, "free", "default");
    assert_true(pr.use_price);
    assert_int_equal(settle(&pr, &u), 0);
    mt_pricing_free(p);
}

static void group_ratios(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_usage u = {0};
    const char *name;
    double r;
    (void)state;

    o.model_ratio = "{\"m\":1}";
    o.completion_ratio = "{\"m\":1}";
    o.group_ratio = "{\"default\":1,\"vip\":0.5,\"svip\":2}";
    o.group_group_ratio = "{\"vip\":{\"svip\":0.8,\"vip\":0.9}}";
    p = mk(&o);
    u.prompt_tokens = 1000;

    pr = price_of(p, "m", "svip");
    assert_near(pr.group_ratio, 2);
    assert_int_equal(settle(&pr, &u), 2000);
    /* missing group -> 1, flagged for the caller's log */
    pr = price_of(p, "m", "nosuch");
    assert_false(pr.group_found);
    assert_near(pr.group_ratio, 1);
    assert_int_equal(settle(&pr, &u), 1000);
    pr = price_of(p, "m", NULL);
    assert_false(pr.group_found);
    /* GroupGroupRatio[user group][using group] overrides */
    assert_int_equal(mt_pricing_model_price(p, "m", "svip", "vip", &pr), CM_OK);
    assert_true(pr.group_found);
    assert_near(pr.group_ratio, 0.8);
    assert_near(pr.user_group_ratio, 0.8);
    assert_int_equal(settle(&pr, &u), 800);
    /* user_group NULL = the using group itself */
    pr = price_of(p, "m", "vip");
    assert_near(pr.group_ratio, 0.9);
    /* a user group without an entry for the using group: plain GroupRatio */
    assert_int_equal(mt_pricing_model_price(p, "m", "default", "vip", &pr), CM_OK);
    assert_near(pr.group_ratio, 1);
    assert_near(pr.user_group_ratio, -1);

    assert_true(mt_pricing_has_group(p, "svip"));
    assert_false(mt_pricing_has_group(p, "auto"));
    assert_int_equal(mt_pricing_group_at(p, 0, &name, &r), CM_OK);
    assert_string_equal(name, "default");
    assert_int_equal(mt_pricing_group_at(p, 2, &name, &r), CM_OK);
    assert_string_equal(name, "vip");
    assert_near(r, 0.5);
    assert_int_equal(mt_pricing_group_at(p, 3, &name, &r), CM_ERR_NOTFOUND);
    mt_pricing_free(p);
}

/* ---- cache ratios ---- */

static void cache_ratios(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_usage u = {0};
    struct mt_charge c;
    char *s;
    (void)state;

    o.model_ratio = "{\"claude-3-5-sonnet-20241022\":1.5,\"x\":1}";
    o.cache_ratio = "{\"claude-3-5-sonnet-20241022\":0.1}";
    o.create_cache_ratio = "{}";
    p = mk(&o);
    pr = price_of(p, "claude-3-5-sonnet-20241022", "default");
    assert_near(pr.cache_ratio, 0.1);
    assert_near(pr.create_cache_ratio, 1.25); /* absent -> 1.25 */
    assert_near(pr.create_cache_ratio_1h, 2); /* x 6/3.75 */
    assert_near(pr.completion_ratio, 5);      /* claude-3* default */

    /* Anthropic semantic: input_tokens 1000 excludes 20000 reads and 4000 writes (1000 1h):
     * 1000 + 2000 + 3000 x 1.25 + 1000 x 2 + 500 x 5 = 11250 x 1.5 = 16875 */
    u.semantic = MT_USAGE_ANTHROPIC;
    u.prompt_tokens = 1000;
    u.cached_tokens = 20000;
    u.cache_creation_tokens = 4000;
    u.cache_creation_tokens_1h = 1000;
    u.completion_tokens = 500;
    c = settle_q(&pr, &u, 16875);
    s = other_text(&c, NULL);
    assert_non_null(strstr(s, "\"cache_tokens\":20000,\"cache_ratio\":0.1,"));
    assert_non_null(strstr(s, "\"cache_creation_tokens\":4000,\"cache_creation_ratio\":1.25,"
                              "\"cache_creation_tokens_5m\":3000,\"cache_creation_ratio_5m\":1.25,"
                              "\"cache_creation_tokens_1h\":1000,\"cache_creation_ratio_1h\":2"));
    assert_non_null(strstr(s, "\"usage_semantic\":\"anthropic\""));
    cm_free(s);

    /* OpenAI semantic: the same request reports prompt_tokens including the cache */
    u.semantic = MT_USAGE_OPENAI;
    u.prompt_tokens = 25000;
    assert_int_equal(settle(&pr, &u), 16875);

    /* Anthropic: only cache reads, no new input or output, still billed */
    memset(&u, 0, sizeof u);
    u.semantic = MT_USAGE_ANTHROPIC;
    u.cached_tokens = 10000;
    c = settle_q(&pr, &u, 1500); /* 10000 x 0.1 x 1.5 */
    assert_false(c.no_tokens);

    /* CacheRatio is looked up by exact name only; absent -> 1 */
    pr = price_of(p, "x", "default");
    assert_near(pr.cache_ratio, 1);
    memset(&u, 0, sizeof u);
    u.prompt_tokens = 100;
    u.cached_tokens = 100;
    assert_int_equal(settle(&pr, &u), 100);
    mt_pricing_free(p);
}

/* ---- completion ratios: built-in defaults, and the operator always wins ---- */

static void completion_defaults(void **state)
{
    static const struct {
        const char *model;
        double cr;
    } cases[] = {
        {"gpt-5", 8},
        {"gpt-5-mini", 8},
        {"gpt-5.4", 6},
        {"gpt-5.4-nano-2026", 6.25},
        {"gpt-5.5-pro", 6},
        {"o1-mini", 4},
        {"o3", 4},
        {"claude-3-haiku-20240307", 5},
        {"claude-sonnet-4-20250514", 5},
        {"claude-opus-4-1", 5},
        {"claude-haiku-4-5", 5},
        {"gpt-4-turbo-2024-04-09", 3},
        {"gpt-4.5-preview", 2},
        {"chatgpt-4o-latest", 3},
        {"gpt-4o-2024-05-13", 3},
        {"gpt-4o-2024-08-06", 4},
        {"gpt-4o", 4},
        {"gpt-4o-mini", 4},
        {"gpt-3.5-turbo", 3},
        {"gpt-3.5-turbo-0125", 3},
        {"gpt-3.5-turbo-1106", 2},
        {"gpt-3.5-turbo-0613", 4.0 / 3.0},
        {"mistral-large-latest", 3},
        {"gemini-1.5-pro", 4},
        {"gemini-2.0-flash", 4},
        {"gemini-2.5-pro", 8},
        {"gpt-4", 2},
        {"gpt-4-gizmo-g-abc", 2}, /* option default "gpt-4-gizmo-*": 2 */
        {"gpt-4o-gizmo-g-abc", 3},
        {"gpt-image-1", 8},
        {"deepseek-chat", 1},
        {"some-unknown-model", 1},
    };
    static const struct {
        const char *model;
        double cr;
    } overrides[] = {
        {"gpt-5", 2},
        {"claude-sonnet-4-20250514", 3},
        {"o3", 1},
        {"gpt-4o", 0},
        {"gpt-5-mini", 8}, /* not in the map */
        /* replacing the map drops its defaults (6.1: no merge) */
        {"gpt-4-gizmo-g-abc", 2}, /* gpt-* */
        {"gpt-image-1", 2},
    };
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    size_t i;
    (void)state;

    o.self_use_mode_enabled = "true"; /* price any name */
    p = mk(&o);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pr = price_of(p, cases[i].model, "default");
        if (pr.completion_ratio != cases[i].cr)
            fail_msg("%s: completion ratio %g, want %g", cases[i].model, pr.completion_ratio,
                     cases[i].cr);
    }
    mt_pricing_free(p);

    /* NewAPI locks gpt-5*, claude-*, o1/o3 (#3271): here the operator's value wins */
    o.completion_ratio = "{\"gpt-5\":2,\"claude-sonnet-4-20250514\":3,\"o3\":1,\"gpt-4o\":0}";
    p = mk(&o);
    for (i = 0; i < sizeof overrides / sizeof overrides[0]; i++)
        assert_near(price_of(p, overrides[i].model, "default").completion_ratio, overrides[i].cr);
    mt_pricing_free(p);
}

static void name_normalisation(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    (void)state;

    o.model_ratio = "{\"gpt-4-gizmo-*\":15,\"gemini-2.5-flash-thinking-*\":0.15,"
                    "\"gemini-2.5-flash\":0.1,\"gpt-4-gizmo-special\":1}";
    o.cache_ratio = "{\"gpt-4-gizmo-*\":0.5}";
    p = mk(&o);
    pr = price_of(p, "gpt-4-gizmo-g-123", "default");
    assert_near(pr.model_ratio, 15);
    assert_near(pr.cache_ratio, 1); /* CacheRatio: exact name only */
    assert_near(price_of(p, "gpt-4-gizmo-special", "default").model_ratio, 1); /* exact first */
    assert_near(price_of(p, "gemini-2.5-flash-thinking-8192", "default").model_ratio, 0.15);
    assert_near(price_of(p, "gemini-2.5-flash", "default").model_ratio, 0.1);
    /* flash-lite is its own family: not folded into gemini-2.5-flash-thinking-* */
    assert_int_equal(
        mt_pricing_model_price(p, "gemini-2.5-flash-lite-thinking-512", "default", NULL, &pr),
        CM_ERR_NOTFOUND);
    mt_pricing_free(p);

    /* the exported matcher */
    {
        char buf[64];
        const char *m = "gpt-4o";
        assert_ptr_equal(mt_pricing_match_name(m, buf, sizeof buf), m);
        assert_string_equal(mt_pricing_match_name("gpt-4o-gizmo-g-1", buf, sizeof buf),
                            "gpt-4o-gizmo-*");
        assert_string_equal(mt_pricing_match_name("gemini-2.5-pro-thinking-128", buf, sizeof buf),
                            "gemini-2.5-pro-thinking-*");
        assert_string_equal(mt_pricing_match_name("gemini-2.5-pro-thinking-128", buf, 8),
                            "gemini-2.5-pro-thinking-128");
        assert_string_equal(mt_pricing_match_name("gemini-2.5-pro-thinking-", buf, sizeof buf),
                            "gemini-2.5-pro-thinking-");
        assert_null(mt_pricing_match_name(NULL, buf, sizeof buf));
    }
}

/* ---- minimum 1, zero tokens, rounding ---- */

static void minimum_and_zero(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_usage u = {0};
    struct mt_charge c;
    (void)state;

    o.model_ratio = "{\"gpt-4o-mini\":0.075,\"free\":0}";
    o.cache_ratio = "{\"gpt-4o-mini\":0.5}";
    o.group_ratio = "{\"default\":1,\"zero\":0}";
    p = mk(&o);
    pr = price_of(p, "gpt-4o-mini", "default");
    u.prompt_tokens = 1; /* 0.075 -> 0 -> minimum 1 */
    c = settle_q(&pr, &u, 1);
    assert_true(c.minimum_applied);
    u.prompt_tokens = 6; /* 0.45 -> 0 -> 1 */
    assert_int_equal(settle(&pr, &u), 1);
    u.prompt_tokens = 20; /* 1.5 -> 2 */
    c = settle_q(&pr, &u, 2);
    assert_false(c.minimum_applied);

    /* no tokens at all: 0, flagged (no counters, the "upstream timeout" note) */
    memset(&u, 0, sizeof u);
    c = settle_q(&pr, &u, 0);
    assert_true(c.no_tokens);
    assert_false(c.minimum_applied);
    /* cache tokens alone do not count as tokens for the OpenAI semantic (P + C == 0) */
    u.cached_tokens = 5;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_OK);
    assert_true(c.no_tokens);

    /* a free model (ratio 0) or a free group: 0, no minimum */
    memset(&u, 0, sizeof u);
    u.prompt_tokens = 1000;
    pr = price_of(p, "free", "default");
    c = settle_q(&pr, &u, 0);
    assert_false(c.minimum_applied);
    pr = price_of(p, "gpt-4o-mini", "zero");
    assert_int_equal(settle(&pr, &u), 0);

    /* inconsistent upstream (cached > prompt) drives the sum negative: minimum 1 */
    pr = price_of(p, "gpt-4o-mini", "default");
    u.prompt_tokens = 10;
    u.cached_tokens = 100;
    c = settle_q(&pr, &u, 1);
    assert_true(c.minimum_applied);
    mt_pricing_free(p);
}

static void rounding_exact_decimal(void **state)
{
    static const struct {
        double mr, gr, cr;
        int64_t p, c, want;
    } cases[] = {
        {0.5, 1, 1, 5, 0, 3},       /* 2.5 -> 3 (half away from zero, not to even) */
        {0.5, 1, 1, 7, 0, 4},       /* 3.5 -> 4 */
        {0.25, 1, 1, 1001, 0, 250}, /* 250.25 -> 250 */
        {0.25, 1, 1, 1003, 0, 251}, /* 250.75 -> 251 */
        {0.145, 1, 1, 100, 0, 15},  /* decimal 14.5 -> 15; float64 gives 14.4999... -> 14 */
        {1.005, 1, 1, 100, 0, 101}, /* decimal 100.5 -> 101; float64 100.4999... */
        {0.29, 1, 1, 50, 0, 15},    /* decimal 14.5 -> 15; float64 14.4999... */
        {0.135, 1, 1, 100, 0, 14},  /* 13.5 -> 14 */
        {0.3, 1.5, 1, 11, 0, 5},    /* 4.95 -> 5 */
        {1.5, 1.1, 1, 5, 0, 8},     /* 8.25 -> 8 */
        {0.1, 1, 3, 0, 5, 2},       /* 1.5 -> 2 (0.1 x 3 x 5, exact) */
        {0.075, 1, 4, 10, 5, 2},    /* (10 + 20) x 0.075 = 2.25 -> 2 */
        {0.07, 1.5, 1, 5, 0, 1},    /* 0.525 -> 1 */
        {2.5, 0.7, 1.1, 3, 3, 11},  /* (3 + 3.3) x 1.75 = 11.025 -> 11 */
        {0.15, 1, 1, 10, 0, 2},     /* 1.5 -> 2 (0.15 is 0.1499999... in binary) */
        {4.35, 1, 1, 10, 0, 44},    /* 43.5 -> 44 */
    };
    struct mt_price pr;
    struct mt_usage u = {0};
    size_t i;
    int64_t got;
    volatile double f = 0.145;
    (void)state;

    /* the float64 product really is below 11.5: the case above tests the decimal path */
    assert_true(f * 100 < 14.5);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&pr, 0, sizeof pr);
        pr.model_price = -1;
        pr.model_ratio = cases[i].mr;
        pr.group_ratio = cases[i].gr;
        pr.completion_ratio = cases[i].cr;
        pr.cache_ratio = 1;
        pr.create_cache_ratio = 1.25;
        pr.create_cache_ratio_1h = 2;
        pr.image_ratio = pr.audio_ratio = pr.audio_completion_ratio = 1;
        pr.user_group_ratio = -1;
        pr.quota_per_unit = 500000;
        u.prompt_tokens = cases[i].p;
        u.completion_tokens = cases[i].c;
        got = settle(&pr, &u);
        if (got != cases[i].want)
            fail_msg("case %zu: got %lld want %lld", i, (long long)got, (long long)cases[i].want);
    }
}

/* the reservation is float64 then truncated (Go int()), unlike the settlement */
static void preconsume_rules(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_preconsume pre;
    static const char *const free_models[] = {"free", "freeimg"};
    size_t i;
    (void)state;

    o.model_ratio = "{\"m\":1.25,\"mini\":0.075,\"r\":0.051,\"free\":0}";
    o.model_price = "{\"img\":0.04,\"freeimg\":0}";
    o.group_ratio = "{\"default\":1,\"vip\":1.5}";
    p = mk(&o);
    pr = price_of(p, "m", "vip");
    /* below the PreConsumedQuota floor: 500 x 1.875 = 937.5 -> 937 */
    preconsume_q(p, &pr, 100, 0, 937);
    /* max_tokens is added: (500 + 1000) x 1.875 = 2812.5 -> 2812 */
    preconsume_q(p, &pr, 100, 1000, 2812);
    preconsume_q(p, &pr, 4000, 1000, 9375);
    pr = price_of(p, "mini", "default");
    preconsume_q(p, &pr, 999, 0, 74); /* 74.925 truncated */
    pr = price_of(p, "r", "default");
    preconsume_q(p, &pr, 10000, 0, 509); /* 10000 x 0.051 = 509.99999999999994 in float64 */
    pr = price_of(p, "img", "default");
    preconsume_q(p, &pr, 0, 0, 20000);
    /* free models with enable_free_model_pre_consume on (default): 0, not skipped */
    pr = price_of(p, "free", "default");
    pre = preconsume_q(p, &pr, 100, 0, 0);
    assert_false(pre.skip);
    mt_pricing_free(p);

    o.free_model_pre_consume = "false";
    o.pre_consumed_quota = "0";
    p = mk(&o);
    for (i = 0; i < 2; i++) {
        pr = price_of(p, free_models[i], "default");
        assert_int_equal(mt_pricing_preconsume(p, &pr, 100, 0, &pre), CM_OK);
        assert_true(pre.skip);
    }
    pr = price_of(p, "m", "default");
    assert_int_equal(mt_pricing_preconsume(p, &pr, 100, 0, &pre), CM_OK);
    assert_false(pre.skip);
    assert_int_equal(pre.quota, 125); /* floor 0: the estimate alone */
    mt_pricing_free(p);
}

static void trust_bypass(void **state)
{
    struct mt_pricing *p = mk_spec();
    (void)state;
    /* trust = 10 x 500000 = 5,000,000 */
    assert_false(mt_pricing_trust_bypass(p, 5000000, 1, 0));
    assert_true(mt_pricing_trust_bypass(p, 5000001, 1, 0));
    assert_false(mt_pricing_trust_bypass(p, 9000000, 0, 5000000));
    assert_true(mt_pricing_trust_bypass(p, 9000000, 0, 5000001));
    mt_pricing_free(p);
}

/* ---- huge values ---- */

static void huge_values(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_preconsume pre;
    struct mt_usage u = {0};
    struct mt_charge c;
    (void)state;

    o.model_ratio = "{\"big\":1e12,\"tiny\":1e-12}";
    o.completion_ratio = "{\"big\":1e12,\"tiny\":1e-12}";
    o.group_ratio = "{\"default\":1e12}";
    p = mk(&o);
    pr = price_of(p, "big", "default");
    u.prompt_tokens = QMAX;
    u.completion_tokens = QMAX;
    u.cached_tokens = QMAX;
    u.cache_creation_tokens = QMAX;
    u.cache_creation_tokens_1h = QMAX;
    u.image_tokens = QMAX;
    c = settle_q(&pr, &u, QMAX);
    assert_true(c.clamped);
    u.semantic = MT_USAGE_ANTHROPIC;
    settle_q(&pr, &u, QMAX);
    pre = preconsume_q(p, &pr, QMAX, QMAX, QMAX);
    assert_true(pre.clamped);

    /* 1e-12 x 1e-12 x 1e12 per token: exact decimal, 2^53 tokens -> 9007.199... -> 9007 */
    pr = price_of(p, "tiny", "default");
    memset(&u, 0, sizeof u);
    u.completion_tokens = QMAX;
    assert_int_equal(settle(&pr, &u), 9007);

    /* out-of-range inputs are refused, not wrapped */
    memset(&u, 0, sizeof u);
    u.prompt_tokens = QMAX + 1;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    u.prompt_tokens = -1;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    u.prompt_tokens = INT64_MAX;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    u.prompt_tokens = 10;
    u.cache_creation_tokens = 1;
    u.cache_creation_tokens_1h = 2;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    u.cache_creation_tokens = u.cache_creation_tokens_1h = 0;
    u.audio_prompt_tokens = 11;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    u.audio_prompt_tokens = 0;
    u.semantic = (enum mt_usage_semantic)7;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_preconsume(p, &pr, -1, 0, &pre), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_preconsume(p, &pr, 0, QMAX + 1, &pre), CM_ERR_INVAL);
    /* a hand-made price outside the bounds */
    memset(&u, 0, sizeof u);
    u.prompt_tokens = 1;
    pr.model_ratio = 1e300;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    pr.model_ratio = -1;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    pr.model_ratio = 1e-300;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_settle(NULL, &u, &c), CM_ERR_INVAL);
    mt_pricing_free(p);
}

/* ---- unpriced models (5.3) ---- */

static void unpriced_model(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_usage u = {0};
    (void)state;

    p = mk(&o);
    memset(&pr, 0, sizeof pr);
    assert_int_equal(mt_pricing_model_price(p, "no-such-model", "default", NULL, &pr),
                     CM_ERR_NOTFOUND);
    /* filled anyway, for users with accept_unset_model_ratio_model */
    assert_true(pr.unpriced);
    assert_near(pr.model_ratio, MT_PRICING_UNSET_RATIO);
    assert_int_equal(mt_pricing_model_price(p, "", "default", NULL, &pr), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_model_price(p, NULL, "default", NULL, &pr), CM_ERR_INVAL);
    mt_pricing_free(p);

    o.self_use_mode_enabled = "true";
    p = mk(&o);
    assert_true(mt_pricing_self_use_mode(p));
    assert_int_equal(mt_pricing_model_price(p, "no-such-model", "default", NULL, &pr), CM_OK);
    assert_true(pr.unpriced);
    u.prompt_tokens = 1000;
    assert_int_equal(settle(&pr, &u), 37500);
    mt_pricing_free(p);
}

/* ---- audio (calculateAudioQuota) and image tokens ---- */

static void audio_and_image(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p;
    struct mt_price pr;
    struct mt_usage u = {0};
    struct mt_charge c;
    char *s;
    (void)state;

    o.model_ratio = "{\"gpt-4o-audio-preview\":1.25,\"gpt-image-1\":2.5}";
    p = mk(&o);
    pr = price_of(p, "gpt-4o-audio-preview", "default");
    assert_near(pr.audio_ratio, 16);
    assert_near(pr.audio_completion_ratio, 1);
    /* (40 + 20 x 4 + 60 x 16 + 30 x 16 x 1) x 1.25 = 1560 x 1.25 = 1950 */
    u.prompt_tokens = 100;
    u.audio_prompt_tokens = 60;
    u.completion_tokens = 50;
    u.audio_completion_tokens = 30;
    c = settle_q(&pr, &u, 1950);
    assert_true(c.audio);
    s = other_text(&c, NULL);
    assert_non_null(strstr(s, "\"audio_ratio\":16,\"audio_completion_ratio\":1,"
                              "\"audio_input\":60,\"audio_output\":30"));
    cm_free(s);

    /* image tokens in the prompt: ImageRatio 2 for gpt-image-1, completion 8 */
    pr = price_of(p, "gpt-image-1", "default");
    memset(&u, 0, sizeof u);
    u.prompt_tokens = 300;
    u.image_tokens = 200;
    u.completion_tokens = 10;
    /* (100 + 200 x 2 + 10 x 8) x 2.5 = 580 x 2.5 = 1450 */
    c = settle_q(&pr, &u, 1450);
    s = other_text(&c, NULL);
    assert_non_null(strstr(s, "\"image\":true,\"image_ratio\":2,\"image_output\":200"));
    cm_free(s);
    mt_pricing_free(p);
}

static void other_json_optional(void **state)
{
    struct mt_pricing *p = mk_spec();
    struct mt_price pr;
    struct mt_usage u = {0};
    struct mt_charge c;
    int64_t ids[] = {3, 12};
    struct mt_other_ctx ctx = {0};
    char *s;
    cJSON *o = NULL;
    (void)state;

    pr = price_of(p, "gpt-4o", "default");
    u.prompt_tokens = 10;
    u.local_count = 1;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_OK);
    ctx.use_channel = ids;
    ctx.n_use_channel = 2;
    ctx.is_multi_key = 1;
    ctx.multi_key_index = 2;
    ctx.upstream_model_name = "gpt-4o-2024-11-20";
    s = other_text(&c, &ctx);
    assert_non_null(strstr(s, "\"admin_info\":{\"use_channel\":[\"3\",\"12\"],"
                              "\"is_multi_key\":true,\"multi_key_index\":2,"
                              "\"local_count_tokens\":true}"));
    assert_non_null(strstr(s, "\"is_model_mapped\":true,\"upstream_model_name\":"
                              "\"gpt-4o-2024-11-20\""));
    assert_null(strstr(s, "request_path"));
    assert_null(strstr(s, "usage_semantic"));
    cm_free(s);
    assert_int_equal(mt_pricing_other_json(NULL, &ctx, &o), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_other_json(&c, &ctx, NULL), CM_ERR_INVAL);
    mt_pricing_free(p);
}

/* ---- option validation ---- */

static void expect_bad(const char *key, const char *value, int want_rc, const char *want_part)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p = NULL;
    char err[256], err2[256];
    int rc;

    assert_int_equal(mt_pricing_opts_set(&o, key, value), CM_OK);
    rc = mt_pricing_new(&o, &p, err, sizeof err);
    if (rc != want_rc)
        fail_msg("%s=%.40s: rc %d want %d (%s)", key, value, rc, want_rc, err);
    assert_null(p);
    if (strncmp(err, key, strlen(key)) != 0 || err[strlen(key)] != ':')
        fail_msg("message does not start with the option: %s", err);
    if (want_part && !strstr(err, want_part))
        fail_msg("message lacks '%s': %s", want_part, err);
    /* the single-option check agrees */
    assert_int_equal(mt_pricing_check_option(key, value, err2, sizeof err2), want_rc);
    assert_string_equal(err, err2);
}

static void option_validation(void **state)
{
    char *big, *many;
    size_t i, n;
    (void)state;

    expect_bad("ModelRatio", "{", CM_ERR_PARSE, "not valid JSON");
    expect_bad("ModelRatio", "", CM_ERR_PARSE, NULL);
    expect_bad("ModelRatio", "map[gpt-4:15]", CM_ERR_PARSE, NULL); /* 6.3: %v of an object */
    expect_bad("ModelRatio", "[1,2]", CM_ERR_INVAL, "must be a JSON object");
    expect_bad("ModelRatio", "{\"gpt-4o\":-1}", CM_ERR_INVAL,
               "entry \"gpt-4o\": value must not "
               "be negative");
    expect_bad("CompletionRatio", "{\"gpt-4o\":\"4\"}", CM_ERR_INVAL,
               "entry \"gpt-4o\": value must be a number");
    expect_bad("CacheRatio", "{\"a\":null}", CM_ERR_INVAL, "entry \"a\"");
    expect_bad("CreateCacheRatio", "{\"a\":{\"b\":1}}", CM_ERR_INVAL, "entry \"a\"");
    expect_bad("ModelPrice", "{\"a\":1e13}", CM_ERR_INVAL, "out of range");
    expect_bad("ModelPrice", "{\"a\":1e-13}", CM_ERR_INVAL, "out of range");
    expect_bad("ModelPrice", "{\"a\":1e999}", CM_ERR_INVAL, "entry \"a\"");
    expect_bad("ImageRatio", "{\"a\":1,\"a\":2}", CM_ERR_PARSE, "entry \"a\" is given more");
    expect_bad("AudioRatio", "{\"\":1}", CM_ERR_INVAL, "empty name");
    expect_bad("AudioCompletionRatio", "{\"a\\nb\":1}", CM_ERR_INVAL, "control character");
    expect_bad("GroupRatio", "{\"vip\":-0.5}", CM_ERR_INVAL, "entry \"vip\"");
    expect_bad("GroupRatio", "{\"a\":{\"b\":{\"c\":1}}}", CM_ERR_LIMIT, "nested");
    expect_bad("GroupGroupRatio", "{\"vip\":{\"svip\":-1}}", CM_ERR_INVAL,
               "entry \"vip\".\"svip\"");
    expect_bad("GroupGroupRatio", "{\"vip\":0.9}", CM_ERR_INVAL,
               "entry \"vip\": value must be a JSON object");
    expect_bad("GroupGroupRatio", "[]", CM_ERR_INVAL, "must be a JSON object");
    expect_bad("QuotaPerUnit", "0", CM_ERR_INVAL, NULL);
    expect_bad("QuotaPerUnit", "-500000", CM_ERR_INVAL, NULL);
    expect_bad("QuotaPerUnit", "abc", CM_ERR_PARSE, NULL);
    expect_bad("QuotaPerUnit", "\"500000\"", CM_ERR_INVAL, "must be a number");
    expect_bad("PreConsumedQuota", "1.5", CM_ERR_INVAL, "integer");
    expect_bad("PreConsumedQuota", "-1", CM_ERR_INVAL, "integer");
    expect_bad("SelfUseModeEnabled", "yes", CM_ERR_INVAL, "\"true\" or \"false\"");
    expect_bad("DisplayInCurrencyEnabled", "1", CM_ERR_INVAL, NULL);
    expect_bad("quota_setting.enable_free_model_pre_consume", "TRUE", CM_ERR_INVAL, NULL);

    /* a long name is refused, and shortened in the message */
    big = cm_malloc(400);
    assert_non_null(big);
    memcpy(big, "{\"", 2);
    memset(big + 2, 'x', 300);
    memcpy(big + 302, "\":1}", 5);
    expect_bad("ModelRatio", big, CM_ERR_LIMIT, "xxx...\": name longer than 255 bytes");
    cm_free(big);

    /* a long non-ASCII name is cut at a character boundary: after 63 'x' one whole 3-byte
     * character does not fit into the 64 bytes shown, after 61 'x' it does */
    for (n = 61; n <= 63; n += 2) {
        char err[256];
        big = cm_malloc(400);
        assert_non_null(big);
        memcpy(big, "{\"", 2);
        memset(big + 2, 'x', n);
        for (i = 0; i < 70; i++)
            memcpy(big + 2 + n + 3 * i, "\xe4\xbd\xa0", 3);
        memcpy(big + 2 + n + 210, "\":1}", 5);
        assert_int_equal(mt_pricing_check_option("ModelRatio", big, err, sizeof err), CM_ERR_LIMIT);
        assert_non_null(
            strstr(err, n == 63 ? "xxx...\": name longer" : "xx\xe4\xbd\xa0...\": name longer"));
        cm_free(big);
    }

    /* too many entries */
    n = MT_PRICING_MAX_ENTRIES + 1;
    many = cm_malloc(n * 16 + 8);
    assert_non_null(many);
    i = 0;
    many[i++] = '{';
    for (size_t k = 0; k < n; k++)
        i += (size_t)snprintf(many + i, 16, "%s\"m%zu\":1", k ? "," : "", k);
    many[i++] = '}';
    many[i] = '\0';
    expect_bad("ModelRatio", many, CM_ERR_LIMIT, "too many entries");
    cm_free(many);

    /* more than 1 MiB */
    big = cm_malloc(MT_PRICING_OPTION_MAX + 16);
    assert_non_null(big);
    memset(big, ' ', MT_PRICING_OPTION_MAX + 8);
    big[0] = '{';
    big[MT_PRICING_OPTION_MAX + 8] = '}';
    big[MT_PRICING_OPTION_MAX + 9] = '\0';
    expect_bad("ModelRatio", big, CM_ERR_LIMIT, "larger than");
    cm_free(big);
}

static void option_plumbing(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p = NULL;
    char err[128];
    double r;
    const char *name;
    (void)state;

    /* defaults of 6.2 */
    assert_int_equal(mt_pricing_new(NULL, &p, err, sizeof err), CM_OK);
    assert_near(mt_pricing_quota_per_unit(p), 500000);
    assert_int_equal(mt_pricing_pre_consumed_quota(p), 500);
    assert_false(mt_pricing_self_use_mode(p));
    assert_true(mt_pricing_display_in_currency(p));
    assert_true(mt_pricing_has_group(p, "svip"));
    assert_near(price_of(p, "gpt-4o-mini", "default").model_ratio, 0.075);
    assert_near(price_of(p, "sora-2", "default").model_price, 0.3);
    mt_pricing_free(p);
    mt_pricing_free(NULL);

    /* opts_set maps NewAPI keys; other keys are not ours */
    assert_int_equal(mt_pricing_opts_set(&o, "QuotaPerUnit", "1000000"), CM_OK);
    assert_int_equal(mt_pricing_opts_set(&o, "PreConsumedQuota", "0"), CM_OK);
    assert_int_equal(mt_pricing_opts_set(&o, "GroupRatio", "{}"), CM_OK);
    assert_int_equal(mt_pricing_opts_set(&o, "DisplayInCurrencyEnabled", "false"), CM_OK);
    assert_int_equal(mt_pricing_opts_set(&o, "RetryTimes", "3"), CM_ERR_NOTFOUND);
    assert_int_equal(mt_pricing_opts_set(&o, "modelratio", "{}"), CM_ERR_NOTFOUND);
    assert_int_equal(mt_pricing_opts_set(NULL, "ModelRatio", "{}"), CM_ERR_INVAL);
    p = mk(&o);
    assert_near(mt_pricing_quota_per_unit(p), 1000000);
    assert_near(price_of(p, "dall-e-3", "default").quota_per_unit, 1000000);
    assert_int_equal(mt_pricing_group_at(p, 0, &name, &r), CM_ERR_NOTFOUND);
    assert_false(mt_pricing_has_group(p, "default"));
    mt_pricing_free(p);

    assert_int_equal(mt_pricing_check_option("RetryTimes", "3", err, sizeof err), CM_ERR_NOTFOUND);
    assert_int_equal(mt_pricing_check_option("ModelRatio", "{\"a\":0}", err, sizeof err), CM_OK);
    assert_int_equal(mt_pricing_check_option("ModelRatio", NULL, err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_new(NULL, NULL, err, sizeof err), CM_ERR_INVAL);
    /* err may be NULL */
    assert_int_equal(mt_pricing_check_option("GroupRatio", "{\"a\":-1}", NULL, 0), CM_ERR_INVAL);
    /* a tiny buffer stays NUL-terminated */
    assert_int_equal(mt_pricing_check_option("GroupRatio", "{\"a\":-1}", err, 5), CM_ERR_INVAL);
    assert_string_equal(err, "Grou");
}

/* ---- token estimate ---- */

static void estimate_tokens(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } cases[] = {
        {"", 0},
        {"hello", 1},
        {"hi", 1},
        {"hello world", 2},
        {"Hello, world!", 4},        /* Hello , world ! */
        {"internationalization", 4}, /* 20 letters -> ceil(20/6) */
        {"1234567", 3},              /* digits in threes */
        {"gpt4o", 3},                /* gpt, 4, o */
        {"   \t  ", 0},
        {"a\n\n\nb", 3},                                         /* a, one newline run, b */
        {"\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c", 4}, /* 4 CJK ideographs */
        {"h\xc3\xa9llo", 1},                                     /* 6 bytes of letters */
        {"\xff\xfe", 2},                                         /* invalid bytes */
        {"\xe4\xbd", 2},                                         /* truncated sequence */
        {"a_b1 {\"x\": 2}", 9},                                  /* a_b 1 { " x " : 2 } */
    };
    size_t i;
    int64_t got;
    (void)state;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        got = mt_pricing_estimate_tokens(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].want)
            fail_msg("'%s': got %lld want %lld", cases[i].s, (long long)got,
                     (long long)cases[i].want);
    }
    assert_int_equal(mt_pricing_estimate_tokens(NULL, 0), 0);
    assert_int_equal(mt_pricing_estimate_tokens("a\0b", 3), 3); /* NUL is a symbol */
    assert_int_equal(mt_pricing_estimate_tokens("hello world", 5), 1);
}

/* ---- display ---- */

static void display_conversions(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p = mk_spec();
    int64_t q;
    char buf[64];
    (void)state;

    assert_int_equal(usd_q(p, 0.04125), 20625);
    assert_int_equal(usd_q(p, 10), 5000000);
    assert_int_equal(mt_pricing_usd_to_quota(p, 1e300, &q), CM_ERR_INVAL);
    assert_int_equal(mt_pricing_usd_to_quota(p, NAN, &q), CM_ERR_INVAL);
    assert_near(mt_pricing_quota_to_usd(p, 100000000), 200); /* root's initial quota, 2.4 */
    assert_int_equal(mt_pricing_log_quota(p, 500000, buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "\xef\xbc\x84"
                             "1.000000 \xe9\xa2\x9d\xe5\xba\xa6");
    assert_int_equal(mt_pricing_log_quota(p, 500000, buf, 5), CM_ERR_LIMIT);
    mt_pricing_free(p);

    o.display_in_currency = "false";
    o.quota_per_unit = "2";
    p = mk(&o);
    assert_int_equal(mt_pricing_log_quota(p, 20625, buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "20625 \xe7\x82\xb9\xe9\xa2\x9d\xe5\xba\xa6");
    /* rounding half away from zero: 0.25 x 2 = 0.5 -> 1, 1.25 x 2 = 2.5 -> 3 */
    assert_int_equal(usd_q(p, 0.25), 1);
    assert_int_equal(usd_q(p, -0.25), -1);
    assert_int_equal(usd_q(p, 1.25), 3);
    assert_int_equal(usd_q(p, 0.2), 0);
    assert_int_equal(mt_pricing_usd_to_quota(p, 1, NULL), CM_ERR_INVAL);
    mt_pricing_free(p);
}

/* ---- OOM walk: every allocation of new() and other_json() fails in turn ---- */

static void oom_walk(void **state)
{
    struct mt_pricing_opts o = {0};
    struct mt_pricing *p = NULL;
    struct mt_price pr;
    struct mt_usage u = {0};
    struct mt_charge c;
    struct mt_other_ctx ctx = {0};
    int64_t ids[] = {1, 2, 3};
    cJSON *js = NULL;
    char err[256];
    long n;
    int rc = CM_ERR_NOMEM;
    (void)state;

    o.group_group_ratio = "{\"vip\":{\"a\":1,\"b\":2},\"svip\":{\"c\":3}}";
    o.group_ratio = "{\"default\":1,\"vip\":1.5}";
    for (n = 1; n < 10000 && rc == CM_ERR_NOMEM; n++) {
        cm_alloc_fail_at(n);
        rc = mt_pricing_new(&o, &p, err, sizeof err);
        cm_alloc_fail_at(0);
        if (rc == CM_ERR_NOMEM) {
            assert_null(p);
            assert_non_null(strstr(err, "out of memory"));
        }
    }
    assert_int_equal(rc, CM_OK);
    assert_true(n > 10); /* the walk did reach allocations */

    pr = price_of(p, "gpt-4o", "vip");
    u.prompt_tokens = 10;
    u.semantic = MT_USAGE_ANTHROPIC;
    u.cache_creation_tokens = 4;
    u.cache_creation_tokens_1h = 1;
    u.image_tokens = 1;
    u.local_count = 1;
    assert_int_equal(mt_pricing_settle(&pr, &u, &c), CM_OK);
    ctx.use_channel = ids;
    ctx.n_use_channel = 3;
    ctx.is_multi_key = 1;
    ctx.request_path = "/v1/messages";
    ctx.upstream_model_name = "x";
    rc = CM_ERR_NOMEM;
    for (n = 1; n < 10000 && rc == CM_ERR_NOMEM; n++) {
        cm_alloc_fail_at(n);
        rc = mt_pricing_other_json(&c, &ctx, &js);
        cm_alloc_fail_at(0);
    }
    assert_int_equal(rc, CM_OK);
    assert_true(n > 10);
    cJSON_Delete(js);

    rc = CM_ERR_NOMEM;
    for (n = 1; n < 100 && rc == CM_ERR_NOMEM; n++) {
        cm_alloc_fail_at(n);
        rc = mt_pricing_check_option("GroupGroupRatio", "{\"vip\":{\"a\":1}}", err, sizeof err);
        cm_alloc_fail_at(0);
    }
    assert_int_equal(rc, CM_OK);
    mt_pricing_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worked_example),         cmocka_unit_test(per_call_variant),
        cmocka_unit_test(model_price_precedence), cmocka_unit_test(group_ratios),
        cmocka_unit_test(cache_ratios),           cmocka_unit_test(completion_defaults),
        cmocka_unit_test(name_normalisation),     cmocka_unit_test(minimum_and_zero),
        cmocka_unit_test(rounding_exact_decimal), cmocka_unit_test(preconsume_rules),
        cmocka_unit_test(trust_bypass),           cmocka_unit_test(huge_values),
        cmocka_unit_test(unpriced_model),         cmocka_unit_test(audio_and_image),
        cmocka_unit_test(other_json_optional),    cmocka_unit_test(option_validation),
        cmocka_unit_test(option_plumbing),        cmocka_unit_test(estimate_tokens),
        cmocka_unit_test(display_conversions),    cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
