/* SPDX-License-Identifier: MIT */
/*
 * test_price.c - meterctl's pricing glue: USD per 1M tokens -> ratios (spec newapi.md 5.1),
 * the merge into the option maps of GET /api/option/ (other entries kept, absent maps start
 * from meterd's defaults, unchanged maps not rewritten, bad maps refused), the read-back
 * check, the prices in force as meterd's pricing module computes them, and verify's
 * expected quota on the spec's worked example (5.9: 20625). Ends with an OOM walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "price.h"

/* an options list [{"key","value"}...] from NULL-terminated key/value pairs */
static cJSON *opts(const char *const *kv)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; kv && kv[i]; i += 2) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", kv[i]);
        cJSON_AddStringToObject(o, "value", kv[i + 1]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *parse(const char *s)
{
    cJSON *v = NULL;
    assert_int_equal(cm_json_parse(s, strlen(s), NULL, &v, NULL), CM_OK);
    return v;
}

static double entry(const char *map_text, const char *name)
{
    cJSON *m = parse(map_text);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(m, name);
    double v = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    cJSON_Delete(m);
    return v;
}

static struct mc_price_in in_of(const char *model, double input, double cached, double output,
                                double cache_write)
{
    struct mc_price_in in = {0};
    in.model = model;
    in.input = input;
    in.has_input = input >= 0;
    in.cached = cached;
    in.has_cached = cached >= 0;
    in.output = output;
    in.has_output = output >= 0;
    in.cache_write = cache_write;
    in.has_cache_write = cache_write >= 0;
    return in;
}

static void ratios_from_usd(void **state)
{
    struct mc_ratios r;
    struct mc_price_in in;
    char err[256];
    (void)state;

    /* gpt-4o list prices: $2.50 in, $1.25 cached, $10 out -> 1.25 / 0.5 / 4 (spec 5.1, 5.9) */
    in = in_of("gpt-4o", 2.5, 1.25, 10, -1);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_OK);
    assert_true(r.model_ratio == 1.25);
    assert_true(r.cache_ratio == 0.5);
    assert_true(r.completion_ratio == 4);
    assert_true(r.set_cache && r.set_completion && !r.set_create_cache);

    /* $0.30 / $3.00 is 0.09999999999999999 in binary: stored as 0.1 */
    in = in_of("claude-x", 3, 0.3, 15, 3.75);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_OK);
    assert_true(r.model_ratio == 1.5);
    assert_true(r.cache_ratio == 0.1);
    assert_true(r.completion_ratio == 5);
    assert_true(r.create_cache_ratio == 1.25);
    assert_true(r.set_create_cache);

    /* free model: ModelRatio 0 only */
    in = in_of("free", 0, 0, 0, -1);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_OK);
    assert_true(r.model_ratio == 0);
    assert_false(r.set_completion || r.set_cache || r.set_create_cache);

    in = in_of("x", 0, -1, 1, -1);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "x: --input 0 with a non-zero"));
    in = in_of("x", 1, -1, -1, -1);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_ERR_INVAL);
    assert_string_equal(err, "x: --input and --output are required (USD per 1M tokens)");
    in = in_of("x", 1, -1, INFINITY, -1);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_ERR_INVAL);
    in = in_of(NULL, 1, -1, 1, -1);
    assert_int_equal(mc_price_ratios(&in, &r, err, sizeof err), CM_ERR_INVAL);
}

static void merge_keeps_other_entries(void **state)
{
    const char *const kv[] = {"ModelRatio",
                              "{\"gpt-4o\":1.25,\"other\":3}",
                              "CacheRatio",
                              "{\"other\":0.2}",
                              "QuotaPerUnit",
                              "500000",
                              NULL};
    struct mc_price_in in[2] = {in_of("new-model", 3, 0.3, 15, -1), in_of("gpt-4o", 5, -1, 20, -1)};
    cJSON *o = opts(kv);
    char *out[MC_MAP__COUNT], err[256];
    (void)state;

    assert_int_equal(mc_price_merge(o, in, 2, out, err, sizeof err), CM_OK);
    assert_non_null(out[MC_MAP_MODEL]);
    assert_true(entry(out[MC_MAP_MODEL], "other") == 3);
    assert_true(entry(out[MC_MAP_MODEL], "new-model") == 1.5);
    assert_true(entry(out[MC_MAP_MODEL], "gpt-4o") == 2.5);
    /* CompletionRatio was absent: meterd's default map plus the new entries */
    assert_non_null(out[MC_MAP_COMPLETION]);
    assert_true(entry(out[MC_MAP_COMPLETION], "gpt-image-1") == 8);
    assert_true(entry(out[MC_MAP_COMPLETION], "new-model") == 5);
    assert_true(entry(out[MC_MAP_COMPLETION], "gpt-4o") == 4);
    assert_non_null(out[MC_MAP_CACHE]);
    assert_true(entry(out[MC_MAP_CACHE], "other") == 0.2);
    assert_true(entry(out[MC_MAP_CACHE], "new-model") == 0.1);
    assert_true(isnan(entry(out[MC_MAP_CACHE], "gpt-4o"))); /* no --cached for it */
    assert_null(out[MC_MAP_CREATE_CACHE]);                  /* no --cache-write at all */
    assert_string_equal(mc_price_map_key(MC_MAP_MODEL), "ModelRatio");
    assert_string_equal(mc_price_map_key(MC_MAP_CREATE_CACHE), "CreateCacheRatio");

    /* the maps read back: check passes; merging again changes nothing */
    {
        const char *const kv2[] = {"ModelRatio",
                                   out[MC_MAP_MODEL],
                                   "CompletionRatio",
                                   out[MC_MAP_COMPLETION],
                                   "CacheRatio",
                                   out[MC_MAP_CACHE],
                                   NULL};
        cJSON *after = opts(kv2);
        char *again[MC_MAP__COUNT];
        assert_int_equal(mc_price_check_applied(after, in, 2, err, sizeof err), CM_OK);
        assert_int_equal(mc_price_merge(after, in, 2, again, err, sizeof err), CM_OK);
        for (int m = 0; m < MC_MAP__COUNT; m++)
            assert_null(again[m]);
        cJSON_Delete(after);
    }
    /* the old maps do not hold the new values */
    assert_int_equal(mc_price_check_applied(o, in, 2, err, sizeof err), CM_ERR_INVAL);
    assert_string_equal(err, "ModelRatio[\"new-model\"] is missing in meterd after the update");
    {
        const char *const kv3[] = {"ModelRatio",
                                   "{\"new-model\":1,\"gpt-4o\":2.5}",
                                   "CompletionRatio",
                                   out[MC_MAP_COMPLETION],
                                   "CacheRatio",
                                   out[MC_MAP_CACHE],
                                   NULL};
        cJSON *bad = opts(kv3);
        assert_int_equal(mc_price_check_applied(bad, in, 2, err, sizeof err), CM_ERR_INVAL);
        assert_string_equal(err, "ModelRatio[\"new-model\"] is 1 in meterd, expected 1.5");
        cJSON_Delete(bad);
    }
    for (int m = 0; m < MC_MAP__COUNT; m++)
        cm_free(out[m]);
    cJSON_Delete(o);
}

static void merge_refuses_bad_maps(void **state)
{
    struct mc_price_in in = in_of("m", 2, -1, 4, -1);
    char *out[MC_MAP__COUNT], err[256];
    (void)state;
    {
        const char *const kv[] = {"ModelRatio", "map[gpt-4:15]", NULL};
        cJSON *o = opts(kv);
        assert_int_equal(mc_price_merge(o, &in, 1, out, err, sizeof err), CM_ERR_PARSE);
        assert_non_null(strstr(err, "option ModelRatio in meterd is not a JSON object"));
        for (int m = 0; m < MC_MAP__COUNT; m++)
            assert_null(out[m]);
        cJSON_Delete(o);
    }
    {
        const char *const kv[] = {"CompletionRatio", "[1,2]", NULL};
        cJSON *o = opts(kv);
        assert_int_equal(mc_price_merge(o, &in, 1, out, err, sizeof err), CM_ERR_PARSE);
        assert_non_null(strstr(err, "CompletionRatio"));
        cJSON_Delete(o);
    }
    {
        /* a value meterd's validation refuses is caught before anything is sent */
        struct mc_price_in huge = in_of("m", 1e13, -1, 1e13, -1);
        cJSON *o = opts(NULL);
        assert_int_equal(mc_price_merge(o, &huge, 1, out, err, sizeof err), CM_ERR_INVAL);
        assert_non_null(strstr(err, "meterd would refuse it: ModelRatio"));
        for (int m = 0; m < MC_MAP__COUNT; m++)
            assert_null(out[m]);
        cJSON_Delete(o);
    }
    {
        struct mc_price_in bad = in_of("m", 1, -1, -1, -1);
        cJSON *o = opts(NULL);
        assert_int_equal(mc_price_merge(o, &bad, 1, out, err, sizeof err), CM_ERR_INVAL);
        cJSON_Delete(o);
    }
}

static void prices_in_force(void **state)
{
    const char *const kv[] = {"ModelRatio", "{\"m\":1.25}",    "CompletionRatio",
                              "{\"m\":4}",  "CacheRatio",      "{\"m\":0.5}",
                              "GroupRatio", "{\"default\":2}", "QuotaPerUnit",
                              "500000",     "SomethingElse",   "x",
                              NULL};
    cJSON *o = opts(kv);
    struct mt_pricing *p = NULL;
    struct mc_price_row r;
    char err[256];
    (void)state;

    assert_int_equal(mc_price_snapshot(o, &p, err, sizeof err), CM_OK);
    assert_int_equal(mc_price_row(p, "m", &r), CM_OK);
    assert_false(r.per_call || r.unpriced);
    assert_true(r.model_ratio == 1.25 && r.completion_ratio == 4 && r.cache_ratio == 0.5);
    assert_true(r.create_cache_ratio == 1.25); /* meterd's default */
    /* list prices (group ratio 1, not the default group's 2) */
    assert_true(fabs(r.usd_input - 2.5) < 1e-9);
    assert_true(fabs(r.usd_cached - 1.25) < 1e-9);
    assert_true(fabs(r.usd_output - 10) < 1e-9);
    assert_true(fabs(r.usd_cache_write - 3.125) < 1e-9);

    assert_int_equal(mc_price_row(p, "dall-e-3", &r), CM_OK); /* default ModelPrice 0.04 */
    assert_true(r.per_call);
    assert_true(fabs(r.usd_per_call - 0.04) < 1e-9);

    assert_int_equal(mc_price_row(p, "nobody-priced-me", &r), CM_OK);
    assert_true(r.unpriced);
    assert_int_equal(mc_price_row(p, "", &r), CM_ERR_INVAL);
    mt_pricing_free(p);
    cJSON_Delete(o);

    {
        const char *const bad[] = {"ModelRatio", "{\"m\":-1}", NULL};
        o = opts(bad);
        assert_int_equal(mc_price_snapshot(o, &p, err, sizeof err), CM_ERR_INVAL);
        assert_non_null(strstr(err, "ModelRatio"));
        cJSON_Delete(o);
    }
}

static void model_names(void **state)
{
    const char *const kv[] = {"ModelRatio", "{\"b\":1,\"a\":1}", "ModelPrice",
                              "{\"a\":0.1,\"c\":1}", NULL};
    cJSON *o = opts(kv);
    char **names = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(mc_price_models(o, &names, &n), CM_OK);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "b");
    assert_string_equal(names[2], "c");
    mc_price_names_free(names, n);
    cJSON_Delete(o);

    o = opts(NULL); /* defaults */
    assert_int_equal(mc_price_models(o, &names, &n), CM_OK);
    assert_true(n >= 10);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(names[i - 1], names[i]) < 0);
    mc_price_names_free(names, n);
    cJSON_Delete(o);
}

/* spec 5.9: gpt-4o, group vip 1.5, 10000 prompt (6000 cached) + 1000 completion = 20625 */
static void expected_quota_worked_example(void **state)
{
    const char *const kv[] = {"GroupRatio", "{\"default\":1,\"vip\":1.5,\"svip\":1}", NULL};
    cJSON *o = opts(kv);
    cJSON *row = parse("{\"id\":42,\"type\":2,\"model_name\":\"gpt-4o\",\"group\":\"vip\","
                       "\"quota\":20625,\"prompt_tokens\":10000,\"completion_tokens\":1000,"
                       "\"request_id\":\"r1\",\"other\":\"{\\\"model_ratio\\\":1.25,"
                       "\\\"cache_tokens\\\":6000,\\\"cache_ratio\\\":0.5}\"}");
    struct mt_pricing *p = NULL;
    struct mc_log_facts f;
    struct mt_charge ch;
    char err[256];
    (void)state;

    assert_int_equal(mc_price_snapshot(o, &p, err, sizeof err), CM_OK);
    assert_int_equal(mc_log_facts_read(row, &f, err, sizeof err), CM_OK);
    assert_string_equal(f.model, "gpt-4o");
    assert_string_equal(f.group, "vip");
    assert_int_equal(f.id, 42);
    assert_int_equal(f.quota, 20625);
    assert_int_equal(f.usage.cached_tokens, 6000);
    assert_int_equal(mc_price_expected(p, &f, NULL, &ch, err, sizeof err), CM_OK);
    assert_int_equal(ch.quota, 20625);
    assert_true(ch.price.group_ratio == 1.5);
    mc_log_facts_cleanup(&f);

    /* `other` as an object, Anthropic semantic (cache not inside prompt_tokens) */
    cJSON_Delete(row);
    row = parse("{\"id\":1,\"model_name\":\"gpt-4o\",\"quota\":1,\"prompt_tokens\":4000,"
                "\"completion_tokens\":1000,\"other\":{\"cache_tokens\":6000,"
                "\"usage_semantic\":\"anthropic\"}}");
    assert_int_equal(mc_log_facts_read(row, &f, err, sizeof err), CM_OK);
    assert_int_equal(f.usage.semantic, MT_USAGE_ANTHROPIC);
    assert_string_equal(f.group, "");
    assert_int_equal(mc_price_expected(p, &f, NULL, &ch, err, sizeof err), CM_OK);
    assert_int_equal(ch.quota, 13750); /* (4000 + 3000 + 4000) x 1.25 x group default 1 */
    mc_log_facts_cleanup(&f);

    /* broken rows */
    cJSON_Delete(row);
    row = parse("{\"id\":1,\"model_name\":\"gpt-4o\",\"quota\":1,\"prompt_tokens\":1}");
    assert_int_equal(mc_log_facts_read(row, &f, err, sizeof err), CM_ERR_NOTFOUND);
    assert_non_null(strstr(err, "completion_tokens"));
    mc_log_facts_cleanup(&f);
    cJSON_Delete(row);
    row = parse("{\"id\":1,\"model_name\":\"m\",\"quota\":1,\"prompt_tokens\":1,"
                "\"completion_tokens\":1,\"other\":\"not json\"}");
    assert_int_equal(mc_log_facts_read(row, &f, err, sizeof err), CM_ERR_PARSE);
    assert_non_null(strstr(err, "'other' is not JSON"));
    mc_log_facts_cleanup(&f);

    cJSON_Delete(row);
    mt_pricing_free(p);
    cJSON_Delete(o);
}

static void oom_walk(void **state)
{
    const char *const kv[] = {"ModelRatio", "{\"gpt-4o\":1.25}", NULL};
    struct mc_price_in in[2] = {in_of("a", 3, 0.3, 15, 3.75), in_of("b", 1, 1, 1, -1)};
    cJSON *o = opts(kv);
    (void)state;
    for (long n = 1; n < 2000; n++) {
        char *out[MC_MAP__COUNT], err[256];
        int rc;
        cm_alloc_fail_at(n);
        rc = mc_price_merge(o, in, 2, out, err, sizeof err);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            for (int m = 0; m < MC_MAP__COUNT; m++)
                cm_free(out[m]);
            cJSON_Delete(o);
            return;
        }
        assert_int_equal(rc, CM_ERR_NOMEM);
        for (int m = 0; m < MC_MAP__COUNT; m++)
            assert_null(out[m]);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ratios_from_usd),
        cmocka_unit_test(merge_keeps_other_entries),
        cmocka_unit_test(merge_refuses_bad_maps),
        cmocka_unit_test(prices_in_force),
        cmocka_unit_test(model_names),
        cmocka_unit_test(expected_quota_worked_example),
        cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
