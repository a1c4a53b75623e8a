/* SPDX-License-Identifier: MIT */
/*
 * test_iflow_provider.c - iFlow upstream: the signature checked against libsodium's own
 * HMAC-SHA256 (computed here independently), the exact signed headers, session ids,
 * the body rules (placeholder tool on streams only, reasoning_effort ->
 * chat_template_kwargs.enable_thinking) and the outcome mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cm/err.h"
#include "providers/iflow.h"
#include "tst_support.h"

#define KEY "sk-iflow-0123456789abcdef0123456789abcdef"
#define SESSION "session-1b4e28ba-2fa1-41d2-883f-0016d3cca427"
#define TS INT64_C(1767225600123)

/* hex HMAC-SHA256 via libsodium's streaming API (any key length) */
static void reference_sig(const char *key, const char *msg, char out[65])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    assert_true(sodium_init() >= 0);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static void signature(void **state)
{
    char got[CP_IFLOW_SIG_SIZE], want[65];
    /* a key longer than the 64-byte HMAC block too */
    static const char long_key[] =
        "k-0123456789012345678901234567890123456789012345678901234567890123456789";
    (void)state;
    reference_sig(KEY, "iFlow-Cli:" SESSION ":1767225600123", want);
    assert_int_equal(cp_iflow_signature(KEY, SESSION, TS, got), CM_OK);
    assert_string_equal(got, want);
    assert_int_equal(strlen(got), 64);
    reference_sig(long_key, "iFlow-Cli:s:5", want);
    assert_int_equal(cp_iflow_signature(long_key, "s", 5, got), CM_OK);
    assert_string_equal(got, want);
    assert_int_equal(cp_iflow_signature("", SESSION, TS, got), CM_ERR_INVAL);
    assert_int_equal(cp_iflow_signature(KEY, NULL, TS, got), CM_ERR_INVAL);
}

static void build(void **state)
{
    struct cp_upreq r = {0};
    const char *names[] = {"X-Extra"};
    const char *values[] = {"1"};
    char sig[65];
    (void)state;
    reference_sig(KEY, "iFlow-Cli:" SESSION ":1767225600123", sig);
    assert_int_equal(
        cp_iflow_build("https://apis.iflow.cn/v1", KEY, true, SESSION, TS, NULL, NULL, 0, &r),
        CM_OK);
    assert_string_equal(r.url, "https://apis.iflow.cn/v1/chat/completions");
    assert_int_equal(r.n_headers, 7);
    assert_string_equal(r.headers[0], "Content-Type: application/json");
    assert_string_equal(r.headers[1], "Authorization: Bearer " KEY);
    assert_string_equal(r.headers[2], "User-Agent: iFlow-Cli");
    assert_string_equal(r.headers[3], "session-id: " SESSION);
    assert_string_equal(r.headers[4], "x-iflow-timestamp: 1767225600123");
    assert_string_equal(tst_header(&r, "x-iflow-signature"), sig);
    assert_string_equal(r.headers[6], "Accept: text/event-stream");
    cp_upreq_cleanup(&r);
    assert_int_equal(
        cp_iflow_build("http://127.0.0.1:9/v1/", KEY, false, SESSION, TS, names, values, 1, &r),
        CM_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/v1/chat/completions");
    assert_string_equal(tst_header(&r, "Accept"), "application/json");
    assert_string_equal(tst_header(&r, "X-Extra"), "1");
    cp_upreq_cleanup(&r);
    assert_int_equal(
        cp_iflow_build("http://127.0.0.1:9/v1", NULL, false, SESSION, TS, NULL, NULL, 0, &r),
        CM_ERR_INVAL);
    assert_int_equal(cp_iflow_build("http://127.0.0.1:9/v1", KEY, false, "", TS, NULL, NULL, 0, &r),
                     CM_ERR_INVAL);
}

static void session_ids(void **state)
{
    unsigned char rnd[16];
    char a[CP_IFLOW_SESSION_SIZE], b[CP_IFLOW_SESSION_SIZE];
    (void)state;
    memset(rnd, 0xff, sizeof rnd);
    cp_iflow_session_id_from(rnd, a);
    assert_string_equal(a, "session-ffffffff-ffff-4fff-bfff-ffffffffffff");
    assert_int_equal(cp_iflow_session_id(a), CM_OK);
    assert_int_equal(cp_iflow_session_id(b), CM_OK);
    assert_int_equal(strlen(a), 44);
    assert_int_equal(strncmp(a, "session-", 8), 0);
    assert_int_equal(a[22], '4');
    assert_string_not_equal(a, b);
}

static void check_prepare(const char *in, bool stream, const char *want_s)
{
    cJSON *j = tst_parse_str(in), *want = tst_parse_str(want_s);
    assert_int_equal(cp_iflow_prepare(j, stream), CM_OK);
    tst_assert_json_equal(j, want, in);
    cJSON_Delete(j);
    cJSON_Delete(want);
}

static void prepare(void **state)
{
    (void)state;
    check_prepare("{\"model\":\"glm-4.6\",\"tools\":[]}", true,
                  "{\"model\":\"glm-4.6\",\"tools\":[{\"type\":\"function\",\"function\":"
                  "{\"name\":\"noop\",\"description\":\"Placeholder tool\",\"parameters\":"
                  "{\"type\":\"object\",\"properties\":{}}}}]}");
    check_prepare("{\"tools\":[]}", false, "{\"tools\":[]}"); /* non-stream: as is */
    check_prepare("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", true,
                  "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    check_prepare("{\"reasoning_effort\":\"high\"}", false,
                  "{\"chat_template_kwargs\":{\"enable_thinking\":true}}");
    check_prepare("{\"reasoning_effort\":\"none\",\"chat_template_kwargs\":{\"x\":1}}", false,
                  "{\"chat_template_kwargs\":{\"x\":1,\"enable_thinking\":false}}");
    check_prepare("{\"model\":\"m\"}", true, "{\"model\":\"m\"}");
}

static void outcomes(void **state)
{
    struct cp_sched_outcome o;
    (void)state;
    cp_iflow_outcome(429, "{}", 2, "12", 0, &o);
    assert_int_equal(o.status, 429);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 12);
    cp_iflow_outcome(403, "{\"error\":{\"code\":\"insufficient_quota\"}}", 37, NULL, 0, &o);
    assert_int_equal(o.status, 403); /* passed through: no quota parsing for iFlow */
    cp_iflow_outcome(400, NULL, 0, NULL, 0, &o);
    assert_true(o.request_scoped);
    cp_iflow_outcome(500, NULL, 0, "12", 0, &o);
    assert_int_equal(o.status, 500);
    assert_false(o.has_hint);
    assert_false(o.request_scoped);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature), cmocka_unit_test(build),    cmocka_unit_test(session_ids),
        cmocka_unit_test(prepare),   cmocka_unit_test(outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
