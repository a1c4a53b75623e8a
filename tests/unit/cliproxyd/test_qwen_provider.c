/* SPDX-License-Identifier: MIT */
/*
 * test_qwen_provider.c - Qwen upstream: base URL normalisation, the one leading cached
 * system message with 0, 1 and 2 client system messages (whole trees compared),
 * include_usage, every fixed header, quota errors (403 insufficient_quota -> 429 with the
 * Retry-After hint), the 60-per-minute sliding limiter and its local 429 body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "providers/qwen.h"
#include "tst_support.h"

#define SYS(text)                                                                                  \
    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"" text "\","                  \
    "\"cache_control\":{\"type\":\"ephemeral\"}}]}"

static void expect_base(const char *in, const char *def, const char *want)
{
    char *out = NULL;
    assert_int_equal(cp_qwen_base(in, def, &out), CM_OK);
    assert_string_equal(out, want);
    cm_free(out);
}

static void base(void **state)
{
    (void)state;
    expect_base("portal.qwen.ai", NULL, "https://portal.qwen.ai/v1");
    expect_base(" portal.qwen.ai/ ", NULL, "https://portal.qwen.ai/v1");
    expect_base("https://dashscope.example.com/v1/", NULL, "https://dashscope.example.com/v1");
    expect_base("http://127.0.0.1:8080", NULL, "http://127.0.0.1:8080/v1");
    expect_base(NULL, NULL, "https://portal.qwen.ai/v1");
    expect_base("", "http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1");
    expect_base("  ", "http://127.0.0.1:9/api", "http://127.0.0.1:9/api");
    assert_int_equal(cp_qwen_base("x", NULL, NULL), CM_ERR_INVAL);
}

static void check_prepare(const char *in, bool stream, const char *want_s)
{
    cJSON *j = tst_parse_str(in), *want = tst_parse_str(want_s);
    assert_int_equal(cp_qwen_prepare(j, stream), CM_OK);
    tst_assert_json_equal(j, want, in);
    cJSON_Delete(j);
    cJSON_Delete(want);
}

static void system_rule(void **state)
{
    (void)state;
    /* no client system message: an empty one is injected */
    check_prepare(
        "{\"model\":\"coder-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", false,
        "{\"model\":\"coder-model\",\"messages\":[" SYS(
            "") ","
                "{\"role\":\"user\",\"content\":\"hi\"}]}");
    /* one, not first: moved to the front, as a cached text part */
    check_prepare("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                  "{\"role\":\"system\",\"content\":\"Be brief.\"}]}",
                  false,
                  "{\"messages\":[" SYS("Be brief.") ",{\"role\":\"user\",\"content\":\"hi\"}]}");
    /* two (system + developer with parts) merged in order; stream adds include_usage */
    check_prepare("{\"stream\":true,\"messages\":[{\"role\":\"system\",\"content\":\"A\"},"
                  "{\"role\":\"user\",\"content\":\"q\"},"
                  "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"B\"},"
                  "{\"type\":\"text\",\"text\":\"C\"}]},"
                  "{\"role\":\"assistant\",\"content\":\"a\"}]}",
                  true,
                  "{\"stream\":true,\"messages\":[" SYS(
                      "A\\n\\nB\\n\\nC") ","
                                         "{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
                                         "\"assistant\",\"content\":\"a\"}],"
                                         "\"stream_options\":{\"include_usage\":true}}");
    /* only system messages */
    check_prepare("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"}]}", false,
                  "{\"messages\":[" SYS("S") "]}");
}

static void prepare_errors(void **state)
{
    cJSON *j = tst_parse_str("{\"messages\":{}}");
    (void)state;
    assert_int_equal(cp_qwen_prepare(j, false), CM_ERR_INVAL);
    cJSON_Delete(j);
    j = tst_parse_str("{\"model\":\"m\"}");
    assert_int_equal(cp_qwen_prepare(j, false), CM_ERR_INVAL);
    cJSON_Delete(j);
    j = tst_parse_str("{\"messages\":[{\"role\":\"system\",\"content\":5}]}");
    assert_int_equal(cp_qwen_prepare(j, false), CM_ERR_INVAL);
    cJSON_Delete(j);
}

static void build(void **state)
{
    static const char *const want[] = {
        "Content-Type: application/json",
        "Authorization: Bearer qwen-at-secret",
        "User-Agent: QwenCode/0.14.2 (darwin; arm64)",
        "X-Dashscope-Useragent: QwenCode/0.14.2 (darwin; arm64)",
        "X-Dashscope-Authtype: qwen-oauth",
        "X-Dashscope-Cachecontrol: enable",
        "X-Stainless-Runtime-Version: v22.17.0",
        "X-Stainless-Lang: js",
        "X-Stainless-Os: MacOS",
        "X-Stainless-Arch: arm64",
        "X-Stainless-Runtime: node",
        "X-Stainless-Retry-Count: 0",
        "X-Stainless-Package-Version: 5.11.0",
        "Accept-Language: *",
        "Accept-Encoding: gzip, deflate",
        "Sec-Fetch-Mode: cors",
        "Connection: keep-alive",
        "Accept: text/event-stream",
    };
    const char *names[] = {"X-Extra", "x-stainless-os"};
    const char *values[] = {"1", "Linux"};
    struct cp_upreq r = {0};
    (void)state;
    assert_int_equal(
        cp_qwen_build("https://portal.qwen.ai/v1", "qwen-at-secret", true, NULL, NULL, 0, &r),
        CM_OK);
    assert_string_equal(r.url, "https://portal.qwen.ai/v1/chat/completions");
    assert_int_equal(r.n_headers, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < r.n_headers; i++)
        assert_string_equal(r.headers[i], want[i]);
    cp_upreq_cleanup(&r);
    assert_int_equal(cp_qwen_build("http://127.0.0.1:9/v1", "t", false, names, values, 2, &r),
                     CM_OK);
    assert_string_equal(tst_header(&r, "Accept"), "application/json");
    assert_string_equal(tst_header(&r, "X-Extra"), "1");
    assert_string_equal(cp_upreq_get(&r, "X-Stainless-Os"), "Linux");
    assert_int_equal(r.n_headers, sizeof want / sizeof want[0] + 1);
    cp_upreq_cleanup(&r);
    assert_int_equal(cp_qwen_build("http://127.0.0.1:9/v1", NULL, false, NULL, NULL, 0, &r),
                     CM_ERR_INVAL);
    assert_int_equal(cp_qwen_build("http://127.0.0.1:9/v1", "", false, NULL, NULL, 0, &r),
                     CM_ERR_INVAL);
}

static void outcomes(void **state)
{
    struct cp_sched_outcome o;
    const char *q1 = "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"x\"}}";
    const char *q2 = "{\"error\":{\"type\":\"quota_exceeded\"}}";
    const char *q3 = "{\"error\":{\"code\":\"Throttling\",\"message\":\"Free allocated quota "
                     "exceeded.\"}}";
    const char *other = "{\"error\":{\"code\":\"AccessDenied\",\"message\":\"denied\"}}";
    (void)state;
    cp_qwen_outcome(403, q1, strlen(q1), "30", 1767225600, &o);
    assert_int_equal(o.status, 429);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 30);
    cp_qwen_outcome(403, q2, strlen(q2), NULL, 1767225600, &o);
    assert_int_equal(o.status, 429);
    assert_false(o.has_hint);
    cp_qwen_outcome(429, q3, strlen(q3), "Thu, 01 Jan 2026 00:00:45 GMT", 1767225600, &o);
    assert_int_equal(o.status, 429);
    assert_int_equal(o.retry_after_s, 45);
    cp_qwen_outcome(403, other, strlen(other), "30", 1767225600, &o);
    assert_int_equal(o.status, 403);
    assert_false(o.has_hint);
    cp_qwen_outcome(400, other, strlen(other), NULL, 0, &o);
    assert_int_equal(o.status, 400);
    assert_true(o.request_scoped);
    cp_qwen_outcome(500, q1, strlen(q1), NULL, 0, &o); /* only 403/429 are rewritten */
    assert_int_equal(o.status, 500);
    assert_false(o.request_scoped);
}

static void limiter(void **state)
{
    struct cp_qwen_limiter *l = NULL;
    int64_t ra = 0;
    (void)state;
    assert_int_equal(cp_qwen_limiter_new(&l), CM_OK);
    /* 60 requests at t = 1000, 1100, ..., 6900 ms */
    for (int i = 0; i < 60; i++)
        assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 1000 + i * 100, &ra), CM_OK);
    /* the 61st at 7000: the oldest (1000) leaves at 61000 -> 54 s */
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 7000, &ra), CM_ERR_LIMIT);
    assert_int_equal(ra, 54);
    /* refused requests do not count; other credentials are independent */
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-b.json", 7000, &ra), CM_OK);
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 60999, &ra), CM_ERR_LIMIT);
    assert_int_equal(ra, 1); /* 1 ms left: at least 1 s */
    /* sliding: at 61000 the first one has left, exactly one slot is free */
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 61000, &ra), CM_OK);
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 61000, &ra), CM_ERR_LIMIT);
    assert_int_equal(ra, 1); /* next leaves at 61100 */
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 61100, &ra), CM_OK);
    assert_int_equal(cp_qwen_limiter_size(l), 2);
    /* at 67000 everything up to 7000 has left a; b, idle since 7000, is forgotten */
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 67000, &ra), CM_OK);
    assert_int_equal(cp_qwen_limiter_size(l), 1);
    /* a whole window later everything is free again */
    for (int i = 0; i < 60; i++)
        assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 200000, &ra), CM_OK);
    assert_int_equal(cp_qwen_limiter_take(l, "qwen-a.json", 200000, &ra), CM_ERR_LIMIT);
    assert_int_equal(ra, 60);
    assert_int_equal(cp_qwen_limiter_take(l, NULL, 0, &ra), CM_ERR_INVAL);
    cp_qwen_limiter_free(l);
    cp_qwen_limiter_free(NULL);
}

static void limit_body(void **state)
{
    char *b = NULL;
    size_t n = 0;
    static const char want[] =
        "{\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Qwen rate limit: 60 "
        "requests/minute exceeded, retry after 54s\",\"type\":\"rate_limit_exceeded\"}}";
    (void)state;
    assert_int_equal(cp_qwen_limit_body(54, &b, &n), CM_OK);
    assert_string_equal(b, want);
    assert_int_equal(n, sizeof want - 1);
    cm_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base),           cmocka_unit_test(system_rule),
        cmocka_unit_test(prepare_errors), cmocka_unit_test(build),
        cmocka_unit_test(outcomes),       cmocka_unit_test(limiter),
        cmocka_unit_test(limit_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
