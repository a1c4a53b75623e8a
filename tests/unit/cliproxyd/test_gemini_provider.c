/* SPDX-License-Identifier: MIT */
/*
 * test_gemini_provider.c - the Gemini upstreams' shape: the exact URLs and headers of
 * Gemini CLI and gemini-api-key calls, the body envelope with its defaults
 * (safetySettings, thoughtSignature; countTokens without model/project), how upstream
 * errors become scheduler outcomes (RetryInfo / quotaResetDelay hints, request scope),
 * Go durations, unwrapping and usage, and the model list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "providers/gemini.h"
#include "tst_support.h"

#if defined(__x86_64__)
#define ARCH "x64"
#elif defined(__aarch64__)
#define ARCH "arm64"
#else
#define ARCH NULL
#endif

/* ---- build ---- */

static void test_build_cli(void **state)
{
    static const char *const want_path[] = {
        "https://cloudcode-pa.googleapis.com/v1internal:generateContent",
        "https://cloudcode-pa.googleapis.com/v1internal:streamGenerateContent?alt=sse",
        "https://cloudcode-pa.googleapis.com/v1internal:countTokens",
    };
    (void)state;
    for (int a = CP_GEMINI_GENERATE; a <= CP_GEMINI_COUNT; a++) {
        struct cp_gemini_target t = {.base = NULL,
                                     .api_key = 0,
                                     .secret = "ya29.secret-token",
                                     .model = "gemini-2.5-pro",
                                     .action = (enum cp_gemini_action)a};
        struct cp_upreq r = {0};
        assert_int_equal(cp_gemini_build(&t, &r), CM_OK);
        assert_string_equal(r.url, want_path[a]);
        assert_int_equal(r.n_headers, 5);
        assert_string_equal(tst_header(&r, "Content-Type"), "application/json");
        assert_string_equal(tst_header(&r, "Authorization"), "Bearer ya29.secret-token");
        assert_string_equal(tst_header(&r, "Accept"),
                            a == CP_GEMINI_STREAM ? "text/event-stream" : "application/json");
        assert_string_equal(tst_header(&r, "X-Goog-Api-Client"),
                            "google-genai-sdk/1.41.0 gl-node/v22.19.0");
        if (ARCH) {
            char ua[128];
            snprintf(ua, sizeof(ua), "GeminiCLI/0.31.0/gemini-2.5-pro (linux; %s)", ARCH);
            assert_string_equal(tst_header(&r, "User-Agent"), ua);
        }
        assert_null(tst_header(&r, "x-goog-api-key"));
        cp_upreq_cleanup(&r);
        assert_null(r.url);
    }
    /* a base with a trailing slash (a loopback fake); extra headers replace ours, last */
    {
        static const char *const names[] = {"user-agent", "X-Extra"};
        static const char *const values[] = {"mine/1", "1"};
        struct cp_gemini_target t = {.base = "http://127.0.0.1:8089/",
                                     .secret = "tok",
                                     .model = "gemini-2.5-flash",
                                     .action = CP_GEMINI_STREAM,
                                     .hdr_names = names,
                                     .hdr_values = values,
                                     .n_hdrs = 2};
        struct cp_upreq r = {0};
        assert_int_equal(cp_gemini_build(&t, &r), CM_OK);
        assert_string_equal(r.url,
                            "http://127.0.0.1:8089/v1internal:streamGenerateContent?alt=sse");
        assert_string_equal(cp_upreq_get(&r, "User-Agent"), "mine/1");
        assert_null(tst_header(&r, "User-Agent")); /* replaced under the caller's spelling */
        assert_string_equal(tst_header(&r, "X-Extra"), "1");
        assert_int_equal(r.n_headers, 6);
        cp_upreq_cleanup(&r);
    }
}

static void test_build_api_key(void **state)
{
    static const char *const want[] = {
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:streamGenerateContent?alt=sse",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:countTokens",
    };
    (void)state;
    for (int a = CP_GEMINI_GENERATE; a <= CP_GEMINI_COUNT; a++) {
        struct cp_gemini_target t = {.api_key = 1,
                                     .secret = "AIza-key",
                                     .model = "gemini-2.5-flash",
                                     .action = (enum cp_gemini_action)a};
        struct cp_upreq r = {0};
        assert_int_equal(cp_gemini_build(&t, &r), CM_OK);
        assert_string_equal(r.url, want[a]);
        assert_int_equal(r.n_headers, 3);
        assert_string_equal(tst_header(&r, "x-goog-api-key"), "AIza-key");
        assert_string_equal(tst_header(&r, "Content-Type"), "application/json");
        assert_string_equal(tst_header(&r, "Accept"),
                            a == CP_GEMINI_STREAM ? "text/event-stream" : "application/json");
        assert_null(tst_header(&r, "Authorization"));
        assert_null(tst_header(&r, "User-Agent"));
        cp_upreq_cleanup(&r);
    }
    /* refusals: no secret, no model, a model that would change the URL */
    {
        struct cp_gemini_target t = {.api_key = 1, .secret = "k", .model = "m/../x"};
        struct cp_upreq r = {0};
        assert_int_equal(cp_gemini_build(&t, &r), CM_ERR_INVAL);
        t.model = "gemini?x=1";
        assert_int_equal(cp_gemini_build(&t, &r), CM_ERR_INVAL);
        t.model = "";
        assert_int_equal(cp_gemini_build(&t, &r), CM_ERR_INVAL);
        t.model = "g";
        t.secret = "";
        assert_int_equal(cp_gemini_build(&t, &r), CM_ERR_INVAL);
        assert_int_equal(cp_gemini_build(NULL, &r), CM_ERR_INVAL);
        assert_null(r.url);
    }
}

/* ---- body ---- */

#define SAFETY                                                                                     \
    "[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"OFF\"},"                          \
    "{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"threshold\":\"OFF\"},"                          \
    "{\"category\":\"HARM_CATEGORY_SEXUALLY_EXPLICIT\",\"threshold\":\"OFF\"},"                    \
    "{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"threshold\":\"OFF\"},"                    \
    "{\"category\":\"HARM_CATEGORY_CIVIC_INTEGRITY\",\"threshold\":\"BLOCK_NONE\"}]"

#define CONTENTS_IN                                                                                \
    "[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"}]},{\"role\":\"model\",\"parts\":[{\"text\":"  \
    "\"b\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"functionCall\":{\"name\":\"g\","    \
    "\"args\":{}},\"thoughtSignature\":\"real\"}]}]"

#define CONTENTS_OUT                                                                               \
    "[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"}]},{\"role\":\"model\",\"parts\":[{\"text\":"  \
    "\"b\"},{\"functionCall\":{\"name\":\"f\",\"args\":{}},\"thoughtSignature\":"                  \
    "\"skip_thought_signature_validator\"},{\"functionCall\":{\"name\":\"g\",\"args\":{}},"        \
    "\"thoughtSignature\":\"real\"}]}]"

/* cp_gemini_body() of the JSON @p in must print the JSON @p want. */
static void expect_body(const char *in, const char *model, const char *project,
                        enum cp_gemini_action a, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    cJSON *got, *w = tst_parse_str(want);

    assert_int_equal(cp_gemini_body(tst_parse_str(in), model, project, a, &out, &len), CM_OK);
    assert_int_equal(len, strlen(out));
    got = tst_parse_str(out);
    tst_assert_json_equal(got, w, in);
    cJSON_Delete(got);
    cJSON_Delete(w);
    cm_free(out);
}

static void test_body(void **state)
{
    (void)state;
    /* CLI generate: envelope, safety defaults, signatures */
    expect_body("{\"contents\":" CONTENTS_IN "}", "gemini-2.5-pro", "proj-1", CP_GEMINI_STREAM,
                "{\"model\":\"gemini-2.5-pro\",\"project\":\"proj-1\",\"request\":{"
                "\"contents\":" CONTENTS_OUT ",\"safetySettings\":" SAFETY "}}");
    /* the client's safetySettings are kept as they are */
    expect_body("{\"contents\":[],\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\","
                "\"threshold\":\"BLOCK_LOW_AND_ABOVE\"}]}",
                "gemini-2.5-pro", "", CP_GEMINI_GENERATE,
                "{\"model\":\"gemini-2.5-pro\",\"project\":\"\",\"request\":{\"contents\":[],"
                "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":"
                "\"BLOCK_LOW_AND_ABOVE\"}]}}");
    /* CLI countTokens: only {"request"}, no safety defaults */
    expect_body("{\"contents\":" CONTENTS_IN "}", "gemini-2.5-pro", "proj-1", CP_GEMINI_COUNT,
                "{\"request\":{\"contents\":" CONTENTS_OUT "}}");
    /* API key: no envelope */
    expect_body("{\"contents\":" CONTENTS_IN "}", "gemini-2.5-pro", NULL, CP_GEMINI_GENERATE,
                "{\"contents\":" CONTENTS_OUT ",\"safetySettings\":" SAFETY "}");
    expect_body("{\"contents\":[]}", NULL, NULL, CP_GEMINI_COUNT, "{\"contents\":[]}");
    /* refusals (the request is consumed either way: ASan sees leaks otherwise) */
    {
        char *out = (char *)(uintptr_t)1;
        size_t len = 7;
        assert_int_equal(cp_gemini_body(tst_parse_str("[]"), "m", NULL, 0, &out, &len),
                         CM_ERR_INVAL);
        assert_int_equal(cp_gemini_body(NULL, "m", NULL, 0, &out, &len), CM_ERR_INVAL);
        assert_int_equal(
            cp_gemini_body(tst_parse_str("{}"), NULL, "p", CP_GEMINI_GENERATE, &out, &len),
            CM_ERR_INVAL);
        assert_int_equal(cp_gemini_body(tst_parse_str("{}"), "m", NULL, 0, NULL, &len),
                         CM_ERR_INVAL);
        assert_ptr_equal(out, (char *)(uintptr_t)1);
        assert_int_equal(len, 7);
    }
}

/* ---- outcome ---- */

#define ERR429(details)                                                                            \
    "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\","            \
    "\"details\":[" details "]}}"
#define RETRY_INFO(d)                                                                              \
    "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"" d "\"}"
#define ERROR_INFO(reason, d)                                                                      \
    "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"" reason                 \
    "\",\"metadata\":{\"quotaResetDelay\":\"" d "\"}}"

static void expect_outcome(long status, const char *body, const char *retry_after, int want_status,
                           int has_hint, int64_t hint, int scoped)
{
    struct cp_sched_outcome o;

    cp_gemini_outcome(status, body, body ? strlen(body) : 0, retry_after, 1700000000, &o);
    if (o.status != want_status || o.has_hint != has_hint || o.retry_after_s != hint ||
        o.request_scoped != scoped)
        fail_msg("%ld %s: status %d hint %d/%lld scoped %d", status, body ? body : "(null)",
                 o.status, o.has_hint, (long long)o.retry_after_s, o.request_scoped);
}

static void test_outcome(void **state)
{
    (void)state;
    expect_outcome(429, ERR429(RETRY_INFO("30s")), NULL, 429, 1, 30, 0);
    expect_outcome(429, ERR429(RETRY_INFO("0.847655010s")), "99", 429, 1, 1, 0);
    expect_outcome(429, ERR429(RETRY_INFO("2.000000001s")), NULL, 429, 1, 3, 0);
    /* RetryInfo wins over ErrorInfo; ErrorInfo's quotaResetDelay otherwise */
    expect_outcome(429, ERR429(ERROR_INFO("RATE_LIMIT_EXCEEDED", "9s") "," RETRY_INFO("4s")), NULL,
                   429, 1, 4, 0);
    expect_outcome(429, ERR429(ERROR_INFO("RATE_LIMIT_EXCEEDED", "373.801628ms")), NULL, 429, 1, 1,
                   0);
    expect_outcome(429, ERR429(ERROR_INFO("QUOTA_EXHAUSTED", "1h2m3s")), NULL, 429, 1, 3723, 0);
    /* an array body (streamGenerateContent without alt=sse) */
    expect_outcome(429, "[" ERR429(RETRY_INFO("12s")) "]", NULL, 429, 1, 12, 0);
    /* no detail: Retry-After, else the ladder */
    expect_outcome(429, ERR429(""), "17", 429, 1, 17, 0);
    expect_outcome(429, ERR429(RETRY_INFO("soon")), "x", 429, 0, 0, 0);
    expect_outcome(429, NULL, NULL, 429, 0, 0, 0);
    expect_outcome(429, "not json", "5", 429, 1, 5, 0);
    /* 400: request-scoped unless it is a bad API key */
    expect_outcome(400, "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\"}}", NULL, 400, 0,
                   0, 1);
    expect_outcome(400, "{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\"}}", NULL, 400,
                   0, 0, 1);
    expect_outcome(400,
                   "{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\",\"details\":["
                   "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":"
                   "\"API_KEY_INVALID\"}]}}",
                   NULL, 401, 0, 0, 0);
    expect_outcome(400, "{}", NULL, 400, 0, 0, 0);
    /* others by status; a hint only counts for 429 */
    expect_outcome(403, "{\"error\":{\"code\":403,\"status\":\"PERMISSION_DENIED\"}}", "5", 403, 0,
                   0, 0);
    expect_outcome(503, ERR429(RETRY_INFO("30s")), NULL, 503, 0, 0, 0);
    expect_outcome(200, NULL, NULL, 200, 0, 0, 0);
}

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        int rc;
        int64_t secs;
    } cases[] = {
        {"30s", CM_OK, 30},
        {"0.847655010s", CM_OK, 1},
        {"373.801628ms", CM_OK, 1},
        {"1h2m3s", CM_OK, 3723},
        {"1.5h", CM_OK, 5400},
        {"90m", CM_OK, 5400},
        {"2500ms", CM_OK, 3},
        {"0s", CM_OK, 1},
        {"0", CM_OK, 1},
        {"1500000us", CM_OK, 2},
        {"5000000000ns", CM_OK, 5},
        {"1\xc2\xb5s", CM_OK, 1},
        {"", CM_ERR_PARSE, 0},
        {"30", CM_ERR_PARSE, 0},
        {"s", CM_ERR_PARSE, 0},
        {"-3s", CM_ERR_PARSE, 0},
        {"3d", CM_ERR_PARSE, 0},
        {"3s4", CM_ERR_PARSE, 0},
        {"99999999999h", CM_OK, 1000000000},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -7;
        int rc = cp_gemini_duration(cases[i].s, &v);
        if (rc != cases[i].rc || (rc == CM_OK && v != cases[i].secs))
            fail_msg("'%s': rc %d secs %lld", cases[i].s, rc, (long long)v);
    }
    assert_int_equal(cp_gemini_duration(NULL, &(int64_t){0}), CM_ERR_INVAL);
}

/* ---- answers, models ---- */

static void test_unwrap_usage(void **state)
{
    cJSON *wrapped = tst_parse_str(
        "{\"response\":{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":10,"
        "\"candidatesTokenCount\":5,\"thoughtsTokenCount\":7,\"cachedContentTokenCount\":4,"
        "\"totalTokenCount\":22}},\"traceId\":\"t\"}");
    cJSON *raw = tst_parse_str("{\"usageMetadata\":{\"promptTokenCount\":3,"
                               "\"candidatesTokenCount\":2}}");
    cJSON *none = tst_parse_str("{\"candidates\":[]}"), *inner = NULL;
    struct cp_tr_usage u;

    (void)state;
    assert_int_equal(cp_gemini_unwrap(wrapped, &inner), CM_OK);
    assert_ptr_equal(inner, cJSON_GetObjectItemCaseSensitive(wrapped, "response"));
    assert_int_equal(cp_gemini_unwrap(raw, &inner), CM_OK);
    assert_ptr_equal(inner, raw);
    assert_int_equal(cp_gemini_unwrap(NULL, &inner), CM_ERR_INVAL);

    assert_int_equal(cp_gemini_usage(wrapped, &u), CM_OK);
    assert_int_equal(u.input, 10);
    assert_int_equal(u.output, 12);
    assert_int_equal(u.reasoning, 7);
    assert_int_equal(u.cached, 4);
    assert_int_equal(u.total, 22);
    assert_int_equal(cp_gemini_usage(raw, &u), CM_OK);
    assert_int_equal(u.input, 3);
    assert_int_equal(u.output, 2);
    assert_int_equal(u.total, 5);
    assert_int_equal(cp_gemini_usage(none, &u), CM_ERR_NOTFOUND);
    assert_int_equal(cp_gemini_usage(NULL, &u), CM_ERR_INVAL);
    cJSON_Delete(wrapped);
    cJSON_Delete(raw);
    cJSON_Delete(none);
}

static void test_models(void **state)
{
    static const char *const want[] = {
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-3-pro-preview",
        "gemini-3.1-pro-preview",
        "gemini-3-flash-preview",
        "gemini-3.1-flash-lite-preview",
    };
    (void)state;
    assert_int_equal(cp_gemini_models_n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < cp_gemini_models_n; i++)
        assert_string_equal(cp_gemini_models[i], want[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_cli), cmocka_unit_test(test_build_api_key),
        cmocka_unit_test(test_body),      cmocka_unit_test(test_outcome),
        cmocka_unit_test(test_duration),  cmocka_unit_test(test_unwrap_usage),
        cmocka_unit_test(test_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
