/* SPDX-License-Identifier: MIT */
/*
 * test_admin_util.c - the pure helpers of the admin routes: comma lists, batch key
 * splitting (lines, JSON arrays, the cap), option values from JSON (objects refused),
 * secret option names, the channel test's URL / model / key / body / verdict, the
 * auto-disable policy, strict integers, UTF-8 length, and an OOM walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "api/admin_util.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"

static void csv(void **state)
{
    static const char *const cases[][2] = {
        {" gpt-4o, gpt-4o,,x ,gpt-4o-mini ,x", "gpt-4o,x,gpt-4o-mini"},
        {"", ""},
        {" , ,", ""},
        {"a,ab,a b,ab", "a,ab,a b"},
    };
    char *out = NULL;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(mt_csv_normalize(cases[i][0], &out), CM_OK);
        assert_string_equal(out, cases[i][1]);
        cm_free(out);
    }
    assert_int_equal(mt_csv_normalize(NULL, &out), CM_ERR_INVAL);
}

static void text_helpers(void **state)
{
    cJSON *o = cJSON_CreateObject();
    (void)state;
    assert_int_equal(mt_has_ctl("plain \xe7\x94\xa8"), 0);
    assert_int_equal(mt_has_ctl("a\tb"), 1);
    assert_int_equal(mt_has_ctl("a\x7f"), 1);
    assert_non_null(o);
    assert_int_equal(mt_json_set_str(o, "a", NULL), CM_OK);
    assert_int_equal(mt_json_set_str(o, "b", "x"), CM_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "a")->valuestring, "");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "b")->valuestring, "x");
    cJSON_Delete(o);
}

static void keys(void **state)
{
    char **k = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(mt_keys_split("sk-a\r\n\n  sk-b  \nsk-c", &k, &n), CM_OK);
    assert_int_equal(n, 3);
    assert_string_equal(k[0], "sk-a");
    assert_string_equal(k[1], "sk-b");
    assert_string_equal(k[2], "sk-c");
    mt_keys_free(k, n);

    assert_int_equal(mt_keys_split("[\"k1\", {\"type\":\"service_account\"}, \" \"]", &k, &n),
                     CM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(k[0], "k1");
    assert_string_equal(k[1], "{\"type\":\"service_account\"}");
    mt_keys_free(k, n);

    /* not JSON: a key that starts with '[' is a line like any other */
    assert_int_equal(mt_keys_split("[abc\ndef", &k, &n), CM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(k[0], "[abc");
    mt_keys_free(k, n);

    assert_int_equal(mt_keys_split(" \n \n", &k, &n), CM_ERR_NOTFOUND);
    assert_int_equal(mt_keys_split("[]", &k, &n), CM_ERR_NOTFOUND);
    assert_int_equal(mt_keys_split("[1,2]", &k, &n), CM_ERR_INVAL);

    /* the cap */
    struct cm_buf b;
    cm_buf_init(&b, 1 << 20);
    for (int i = 0; i <= MT_BATCH_KEYS_MAX; i++)
        assert_int_equal(cm_buf_appendf(&b, "key%d\n", i), CM_OK);
    assert_int_equal(mt_keys_split(b.data, &k, &n), CM_ERR_LIMIT);
    b.len -= strlen("key1000\n");
    b.data[b.len] = '\0';
    assert_int_equal(mt_keys_split(b.data, &k, &n), CM_OK);
    assert_int_equal(n, MT_BATCH_KEYS_MAX);
    mt_keys_free(k, n);
    cm_buf_cleanup(&b);
}

static void option_values(void **state)
{
    static const struct {
        const char *json, *want;
    } ok[] = {
        {"{\"v\":\"{\\\"gpt-4o\\\":1.25}\"}", "{\"gpt-4o\":1.25}"},
        {"{\"v\":true}", "true"},
        {"{\"v\":false}", "false"},
        {"{\"v\":5}", "5"},
        {"{\"v\":0.1}", "0.1"},
        {"{\"v\":-3}", "-3"},
        {"{\"v\":\"\"}", ""},
    };
    static const char *const bad[] = {"{\"v\":{\"gpt-4o\":15}}", "{\"v\":[1]}", "{\"v\":null}",
                                      "{}"};
    char *out = NULL, err[256];
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cJSON *j = NULL;
        assert_int_equal(cm_json_parse(ok[i].json, strlen(ok[i].json), NULL, &j, NULL), CM_OK);
        assert_int_equal(mt_option_value_from_json("K", cJSON_GetObjectItemCaseSensitive(j, "v"),
                                                   &out, err, sizeof err),
                         CM_OK);
        assert_string_equal(out, ok[i].want);
        cm_free(out);
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *j = NULL;
        err[0] = '\0';
        assert_int_equal(cm_json_parse(bad[i], strlen(bad[i]), NULL, &j, NULL), CM_OK);
        assert_int_equal(mt_option_value_from_json("ModelRatio",
                                                   cJSON_GetObjectItemCaseSensitive(j, "v"), &out,
                                                   err, sizeof err),
                         CM_ERR_INVAL);
        assert_non_null(strstr(err, "ModelRatio"));
        cJSON_Delete(j);
    }
    cJSON *obj = NULL;
    assert_int_equal(cm_json_parse("{\"v\":{}}", 8, NULL, &obj, NULL), CM_OK);
    assert_int_equal(mt_option_value_from_json("ModelRatio",
                                               cJSON_GetObjectItemCaseSensitive(obj, "v"), &out,
                                               err, sizeof err),
                     CM_ERR_INVAL);
    assert_non_null(strstr(err, "JSON-encoded in a string"));
    cJSON_Delete(obj);
}

static void secrets(void **state)
{
    (void)state;
    assert_true(mt_option_is_secret("SMTPToken"));
    assert_true(mt_option_is_secret("EpayKey"));
    assert_true(mt_option_is_secret("StripeApiSecret"));
    assert_true(mt_option_is_secret("oidc.client_secret"));
    assert_true(mt_option_is_secret("some.api_key"));
    assert_false(mt_option_is_secret("ModelRatio"));
    assert_false(mt_option_is_secret("KeyboardShortcuts"));
    assert_false(mt_option_is_secret("DisplayTokenStatEnabled"));
    assert_false(mt_option_is_secret(NULL));
}

static void test_url(void **state)
{
    char u[128];
    (void)state;
    assert_int_equal(mt_channel_test_url(1, "http://127.0.0.1:8317/", u, sizeof u), CM_OK);
    assert_string_equal(u, "http://127.0.0.1:8317/v1/chat/completions");
    assert_int_equal(mt_channel_test_url(1, "", u, sizeof u), CM_OK);
    assert_string_equal(u, "https://api.openai.com/v1/chat/completions");
    assert_int_equal(mt_channel_test_url(14, NULL, u, sizeof u), CM_OK);
    assert_string_equal(u, "https://api.anthropic.com/v1/messages");
    assert_int_equal(mt_channel_test_api(14), MT_TEST_ANTHROPIC);
    assert_int_equal(mt_channel_test_api(1), MT_TEST_OPENAI);
    assert_int_equal(mt_channel_test_url(999, "", u, sizeof u), CM_ERR_NOTFOUND);
    assert_int_equal(mt_channel_test_url(1, "ftp://x", u, sizeof u), CM_ERR_INVAL);
    assert_int_equal(mt_channel_test_url(1, "http://", u, sizeof u), CM_ERR_INVAL);
    assert_int_equal(mt_channel_test_url(1, "http://a b", u, sizeof u), CM_ERR_INVAL);
    assert_int_equal(mt_channel_test_url(1, "http://example.com", u, 20), CM_ERR_LIMIT);
    assert_string_equal(u, "");
}

static void test_model_key_body(void **state)
{
    char m[64], *k = NULL, *body = NULL;
    size_t len = 0;
    cJSON *j = NULL;
    (void)state;
    assert_int_equal(mt_channel_test_model("x", "t", "a,b", m, sizeof m), CM_OK);
    assert_string_equal(m, "x");
    assert_int_equal(mt_channel_test_model("", "t", "a,b", m, sizeof m), CM_OK);
    assert_string_equal(m, "t");
    assert_int_equal(mt_channel_test_model(NULL, "", " a , b", m, sizeof m), CM_OK);
    assert_string_equal(m, "a");
    assert_int_equal(mt_channel_test_model(NULL, NULL, ", ,b", m, sizeof m), CM_OK);
    assert_string_equal(m, "b");
    assert_int_equal(mt_channel_test_model(NULL, NULL, "", m, sizeof m), CM_OK);
    assert_string_equal(m, "gpt-4o-mini");
    assert_int_equal(mt_channel_test_model("abcdef", NULL, NULL, m, 4), CM_ERR_LIMIT);

    assert_int_equal(mt_channel_first_key("\n sk-one \nsk-two", &k), CM_OK);
    assert_string_equal(k, "sk-one");
    cm_free(k);
    assert_int_equal(mt_channel_first_key("[\"a\",\"b\"]", &k), CM_OK);
    assert_string_equal(k, "a");
    cm_free(k);
    assert_int_equal(mt_channel_first_key("  ", &k), CM_ERR_NOTFOUND);
    assert_int_equal(mt_channel_first_key("ab\rcd\nsecond", &k), CM_ERR_INVAL);

    assert_int_equal(mt_channel_test_body(MT_TEST_OPENAI, "gpt-4o", &body, &len), CM_OK);
    assert_int_equal(cm_json_parse(body, len, NULL, &j, NULL), CM_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, "gpt-4o");
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "max_tokens")->valuedouble == 16);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "messages")), 1);
    cJSON_Delete(j);
    cm_free(body);
}

static void verdict(void **state)
{
    char msg[256];
    const char *okb = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
    const char *e401 = "{\"error\":{\"message\":\"Incorrect API key\",\"type\":\"x\"}}";
    (void)state;
    assert_int_equal(mt_channel_test_verdict(200, okb, strlen(okb), NULL, msg, sizeof msg), 1);
    assert_int_equal(mt_channel_test_verdict(401, e401, strlen(e401), NULL, msg, sizeof msg), 0);
    assert_string_equal(msg, "status 401: Incorrect API key");
    /* an error object with a 200 is a failure */
    assert_int_equal(mt_channel_test_verdict(200, e401, strlen(e401), NULL, msg, sizeof msg), 0);
    assert_int_equal(mt_channel_test_verdict(200, "<html>\n", 7, NULL, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "not a JSON object: <html> "));
    assert_int_equal(mt_channel_test_verdict(502, "", 0, NULL, msg, sizeof msg), 0);
    assert_string_equal(msg, "status 502: (empty body)");
    assert_int_equal(mt_channel_test_verdict(0, NULL, 0, "connection refused", msg, sizeof msg), 0);
    assert_string_equal(msg, "upstream did not answer: connection refused");
    assert_int_equal(mt_channel_test_verdict(404, "{\"error\":\"nope\"}", 16, NULL, msg, 8), 0);
    assert_string_equal(msg, "status ");
}

static void disable_policy(void **state)
{
    struct mt_disable_policy p = {.enabled = 0};
    (void)state;
    assert_false(mt_channel_should_disable(&p, 0, 401, "bad key", 10));
    p.enabled = 1;
    assert_true(mt_channel_should_disable(&p, 0, 401, "bad key", 10));
    assert_false(mt_channel_should_disable(&p, 0, 500, "oops", 10));
    assert_true(
        mt_channel_should_disable(&p, 0, 429, "status 429: You exceeded your CURRENT quota", 10));
    assert_false(mt_channel_should_disable(&p, 1, 200, "", 10));
    p.threshold_s = 5;
    assert_true(mt_channel_should_disable(&p, 1, 200, "", 5001));
    assert_false(mt_channel_should_disable(&p, 1, 200, "", 5000));
    p.status_codes = "401,500-503";
    p.keywords = "  \nmy words\n";
    assert_true(mt_channel_should_disable(&p, 0, 502, "x", 1));
    assert_false(mt_channel_should_disable(&p, 0, 429, "Permission denied", 1));
    assert_true(mt_channel_should_disable(&p, 0, 429, "has MY WORDS in it", 1));
    assert_false(mt_channel_should_disable(NULL, 0, 401, "", 1));
}

static void ints_and_utf8(void **state)
{
    int64_t v = 7;
    (void)state;
    assert_int_equal(mt_parse_i64("123", &v), CM_OK);
    assert_int_equal(v, 123);
    assert_int_equal(mt_parse_i64("-5", &v), CM_OK);
    assert_int_equal(v, -5);
    assert_int_equal(mt_parse_i64("", &v), CM_ERR_NOTFOUND);
    assert_int_equal(mt_parse_i64(NULL, &v), CM_ERR_NOTFOUND);
    assert_int_equal(mt_parse_i64(" 1", &v), CM_ERR_INVAL);
    assert_int_equal(mt_parse_i64("1x", &v), CM_ERR_INVAL);
    assert_int_equal(mt_parse_i64("+1", &v), CM_ERR_INVAL);
    assert_int_equal(mt_parse_i64("-", &v), CM_ERR_INVAL);
    assert_int_equal(mt_parse_i64("99999999999999999999", &v), CM_ERR_INVAL);
    assert_int_equal(mt_utf8_len("abc"), 3);
    assert_int_equal(mt_utf8_len(""), 0);
    assert_int_equal(mt_utf8_len("\xe5\x85\x91\xe6\x8d\xa2\xe7\xa0\x81"), 3); /* 兑换码 */
    assert_int_equal(mt_utf8_len("\xff"), -1);
    assert_int_equal(mt_utf8_len("\xe5\x85"), -1);
    assert_int_equal(mt_utf8_len(NULL), -1);
}

/* every allocation of the allocating helpers fails cleanly, one at a time */
static void oom_walk(void **state)
{
    (void)state;
    for (long n = 1; n < 200; n++) {
        char *out = NULL, **k = NULL, *body = NULL;
        size_t cnt = 0, len = 0;
        int r1, r2, r3, r4;
        cm_alloc_fail_at(n);
        r1 = mt_csv_normalize("a, b, a, c", &out);
        if (r1 == CM_OK)
            cm_free(out);
        cm_alloc_fail_at(n);
        r2 = mt_keys_split("k1\nk2\nk3", &k, &cnt);
        if (r2 == CM_OK)
            mt_keys_free(k, cnt);
        cm_alloc_fail_at(n);
        r3 = mt_keys_split("[\"a\",{\"b\":1}]", &k, &cnt);
        if (r3 == CM_OK)
            mt_keys_free(k, cnt);
        cm_alloc_fail_at(n);
        r4 = mt_channel_test_body(MT_TEST_OPENAI, "m", &body, &len);
        if (r4 == CM_OK)
            cm_free(body);
        cm_alloc_fail_at(0);
        assert_true(r1 == CM_OK || r1 == CM_ERR_NOMEM);
        assert_true(r2 == CM_OK || r2 == CM_ERR_NOMEM);
        assert_true(r3 == CM_OK || r3 == CM_ERR_NOMEM);
        assert_true(r4 == CM_OK || r4 == CM_ERR_NOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv),
        cmocka_unit_test(text_helpers),
        cmocka_unit_test(keys),
        cmocka_unit_test(option_values),
        cmocka_unit_test(secrets),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_model_key_body),
        cmocka_unit_test(verdict),
        cmocka_unit_test(disable_policy),
        cmocka_unit_test(ints_and_utf8),
        cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
