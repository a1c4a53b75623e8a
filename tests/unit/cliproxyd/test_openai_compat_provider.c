/* SPDX-License-Identifier: MIT */
/*
 * test_openai_compat_provider.c - openai-compatibility upstream: include_usage on streams,
 * the exact request headers (no Authorization without a key, entry headers override),
 * outcome mapping (Retry-After seconds and HTTP date, x-ratelimit-reset-requests, 400/422
 * request-scoped), the duration parser, and the usage reader's field variants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/err.h"
#include "providers/openai_compat.h"
#include "tst_support.h"

static void prepare_stream(void **state)
{
    cJSON *j = tst_parse_str("{\"model\":\"m\",\"stream\":true,\"messages\":[]}");
    cJSON *want = tst_parse_str("{\"model\":\"m\",\"stream\":true,\"messages\":[],\"stream_"
                                "options\":{\"include_usage\":true}}");
    (void)state;
    assert_int_equal(cp_compat_prepare(j, true), CM_OK);
    tst_assert_json_equal(j, want, "stream");
    cJSON_Delete(j);
    cJSON_Delete(want);
    /* an existing object keeps its other members; a non-object is replaced */
    j = tst_parse_str("{\"stream_options\":{\"x\":1,\"include_usage\":false}}");
    want = tst_parse_str("{\"stream_options\":{\"x\":1,\"include_usage\":true}}");
    assert_int_equal(cp_compat_prepare(j, true), CM_OK);
    tst_assert_json_equal(j, want, "existing");
    cJSON_Delete(j);
    cJSON_Delete(want);
    j = tst_parse_str("{\"stream_options\":\"x\"}");
    want = tst_parse_str("{\"stream_options\":{\"include_usage\":true}}");
    assert_int_equal(cp_compat_prepare(j, true), CM_OK);
    tst_assert_json_equal(j, want, "replaced");
    cJSON_Delete(j);
    cJSON_Delete(want);
    /* non-stream: untouched */
    j = tst_parse_str("{\"model\":\"m\"}");
    want = tst_parse_str("{\"model\":\"m\"}");
    assert_int_equal(cp_compat_prepare(j, false), CM_OK);
    tst_assert_json_equal(j, want, "non-stream");
    cJSON_Delete(j);
    cJSON_Delete(want);
    j = tst_parse_str("[1]");
    assert_int_equal(cp_compat_prepare(j, true), CM_ERR_INVAL);
    cJSON_Delete(j);
}

static void build(void **state)
{
    const char *names[] = {"X-Team", "user-agent"};
    const char *values[] = {"blue", "my-agent"};
    struct cp_upreq r = {0};
    (void)state;
    assert_int_equal(
        cp_compat_build("http://127.0.0.1:9/v1/", "sk-compat-123", true, NULL, NULL, 0, &r), CM_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/v1/chat/completions");
    assert_int_equal(r.n_headers, 4);
    assert_string_equal(r.headers[0], "Content-Type: application/json");
    assert_string_equal(r.headers[1], "Authorization: Bearer sk-compat-123");
    assert_string_equal(r.headers[2], "User-Agent: cli-proxy-openai-compat");
    assert_string_equal(r.headers[3], "Accept: text/event-stream");
    cp_upreq_cleanup(&r);
    assert_int_equal(cp_compat_build("http://127.0.0.1:9/v1", "", false, names, values, 2, &r),
                     CM_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/v1/chat/completions");
    assert_null(tst_header(&r, "Authorization"));
    assert_string_equal(tst_header(&r, "Accept"), "application/json");
    assert_string_equal(tst_header(&r, "X-Team"), "blue");
    assert_string_equal(cp_upreq_get(&r, "User-Agent"), "my-agent");
    assert_int_equal(r.n_headers, 4);
    cp_upreq_cleanup(&r);
    assert_int_equal(cp_compat_build(NULL, "k", false, NULL, NULL, 0, &r), CM_ERR_INVAL);
    assert_int_equal(cp_compat_build("", "k", false, NULL, NULL, 0, &r), CM_ERR_INVAL);
    assert_int_equal(cp_compat_build("http://127.0.0.1", "k", false, NULL, NULL, 1, &r),
                     CM_ERR_INVAL);
}

static void outcomes(void **state)
{
    struct cp_sched_outcome o;
    /* 2026-01-01T00:00:00Z = 1767225600 */
    (void)state;
    cp_compat_outcome(429, "{}", 2, "17", NULL, 1767225600, &o);
    assert_int_equal(o.status, 429);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 17);
    cp_compat_outcome(429, NULL, 0, "Thu, 01 Jan 2026 00:01:30 GMT", NULL, 1767225600, &o);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 90);
    cp_compat_outcome(429, NULL, 0, NULL, "6m0s", 1767225600, &o);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 360);
    cp_compat_outcome(429, NULL, 0, "soon", "20ms", 1767225600, &o); /* bad Retry-After */
    assert_int_equal(o.retry_after_s, 1);
    cp_compat_outcome(429, NULL, 0, NULL, NULL, 1767225600, &o);
    assert_false(o.has_hint);
    assert_false(o.request_scoped);
    cp_compat_outcome(400, "{\"error\":{}}", 12, NULL, NULL, 0, &o);
    assert_int_equal(o.status, 400);
    assert_true(o.request_scoped);
    cp_compat_outcome(422, NULL, 0, NULL, NULL, 0, &o);
    assert_true(o.request_scoped);
    cp_compat_outcome(401, NULL, 0, "5", NULL, 0, &o);
    assert_int_equal(o.status, 401);
    assert_false(o.has_hint);
    assert_false(o.request_scoped);
    cp_compat_outcome(503, NULL, 0, NULL, NULL, 0, &o);
    assert_int_equal(o.status, 503);
}

static void durations(void **state)
{
    int64_t v;
    (void)state;
    assert_int_equal(cp_openai_duration_s("1h2m3.5s", &v), CM_OK);
    assert_int_equal(v, 3724);
    assert_int_equal(cp_openai_duration_s("1.5s", &v), CM_OK);
    assert_int_equal(v, 2);
    assert_int_equal(cp_openai_duration_s("0s", &v), CM_OK);
    assert_int_equal(v, 0);
    assert_int_equal(cp_openai_duration_s("5", &v), CM_ERR_INVAL);
    assert_int_equal(cp_openai_duration_s("s", &v), CM_ERR_INVAL);
    assert_int_equal(cp_openai_duration_s("", &v), CM_ERR_INVAL);
    assert_int_equal(cp_openai_retry_after(" 120 ", 0, &v), CM_OK);
    assert_int_equal(v, 120);
    assert_int_equal(cp_openai_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", 1767225700, &v), CM_OK);
    assert_int_equal(v, 0); /* in the past */
    assert_int_equal(cp_openai_retry_after("Thu, 01 Foo 2026 00:00:00 GMT", 0, &v), CM_ERR_INVAL);
    assert_int_equal(cp_openai_retry_after("-3", 0, &v), CM_ERR_INVAL);
}

static void usage(void **state)
{
    struct cp_tr_usage u;
    cJSON *j = tst_parse_str(
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":40,"
        "\"total_tokens\":150,\"prompt_tokens_details\":{\"cached_tokens\":30},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":12}}}");
    (void)state;
    assert_int_equal(cp_openai_usage(j, &u), CM_OK);
    assert_int_equal(u.input, 100);
    assert_int_equal(u.output, 40);
    assert_int_equal(u.total, 150);
    assert_int_equal(u.cached, 30);
    assert_int_equal(u.reasoning, 12);
    cJSON_Delete(j);
    j = tst_parse_str("{\"usage\":{\"input_tokens\":7,\"output_tokens\":5,"
                      "\"input_tokens_details\":{\"cached_tokens\":2}}}");
    assert_int_equal(cp_openai_usage(j, &u), CM_OK);
    assert_int_equal(u.input, 7);
    assert_int_equal(u.output, 5);
    assert_int_equal(u.total, 12); /* no total: the sum */
    assert_int_equal(u.cached, 2);
    assert_int_equal(u.reasoning, 0);
    cJSON_Delete(j);
    j = tst_parse_str("{\"usage\":null,\"choices\":[]}");
    u.input = 99;
    assert_int_equal(cp_openai_usage(j, &u), CM_ERR_NOTFOUND);
    assert_int_equal(u.input, 99);
    cJSON_Delete(j);
    j = tst_parse_str("{\"choices\":[]}");
    assert_int_equal(cp_openai_usage(j, &u), CM_ERR_NOTFOUND);
    assert_int_equal(cp_openai_usage(NULL, &u), CM_ERR_INVAL);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prepare_stream), cmocka_unit_test(build), cmocka_unit_test(outcomes),
        cmocka_unit_test(durations),      cmocka_unit_test(usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
