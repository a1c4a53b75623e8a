/* SPDX-License-Identifier: MIT */
/*
 * test_codex_provider.c - the Codex upstream shape: headers a /responses call carries
 * (and the secret wiped after), the stable per-key session id, and how upstream errors
 * become scheduler outcomes (usage_limit_reached hints, capacity -> 429, request scope).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/err.h"
#include "providers/codex.h"
#include "tst_support.h"

static void build_headers(void **state)
{
    struct cp_authstore_cred c = {.id = "codex-a.json",
                                  .provider = "codex",
                                  .access_token = "at-secret-0123456789",
                                  .account_id = "acct-1"};
    struct cp_upreq r = {0};
    (void)state;
    assert_int_equal(cp_codex_build("http://x/backend-api/codex", &c, "sess-1", NULL, "curl/8", &r),
                     0);
    assert_string_equal(r.url, "http://x/backend-api/codex/responses");
    assert_string_equal(tst_header(&r, "Authorization"), "Bearer at-secret-0123456789");
    assert_string_equal(tst_header(&r, "Accept"), "text/event-stream");
    assert_string_equal(tst_header(&r, "Originator"), "codex-tui");
    assert_string_equal(tst_header(&r, "Chatgpt-Account-Id"), "acct-1");
    assert_string_equal(tst_header(&r, "Session_id"), "sess-1");
    assert_string_equal(tst_header(&r, "User-Agent"), CP_CODEX_DEFAULT_UA); /* curl is not Codex */
    cp_upreq_cleanup(&r);
    assert_int_equal(cp_codex_build("http://x", &c, "s", "my-originator", "codex_cli_rs/0.9", &r),
                     0);
    assert_string_equal(tst_header(&r, "Originator"), "my-originator");
    assert_string_equal(tst_header(&r, "User-Agent"), "codex_cli_rs/0.9");
    cp_upreq_cleanup(&r);
    c.access_token = NULL;
    assert_int_equal(cp_codex_build("http://x", &c, "s", NULL, NULL, &r), CM_ERR_INVAL);
}

static void session_id_stable(void **state)
{
    char a[37], b[37], c[37];
    (void)state;
    cp_codex_session_id("sk-key-one", 10, a);
    cp_codex_session_id("sk-key-one", 10, b);
    cp_codex_session_id("sk-key-two", 10, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_int_equal(a[14], '5');
}

static void outcomes(void **state)
{
    struct cp_sched_outcome o;
    const char *q1 = "{\"error\":{\"type\":\"usage_limit_reached\",\"resets_in_seconds\":3600}}";
    const char *q2 = "{\"error\":{\"type\":\"usage_limit_reached\",\"resets_at\":1000500,"
                     "\"resets_in_seconds\":7}}";
    const char *cap = "{\"error\":{\"message\":\"Selected model is at capacity. model is at "
                      "capacity. please try a different model\"}}";
    const char *bad = "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"x\"}}";
    (void)state;
    cp_codex_outcome(429, q1, strlen(q1), NULL, 1000000, &o);
    assert_int_equal(o.status, 429);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 3600);
    cp_codex_outcome(429, q2, strlen(q2), NULL, 1000000, &o); /* resets_at wins */
    assert_int_equal(o.retry_after_s, 500);
    cp_codex_outcome(429, "{}", 2, "42", 1000000, &o); /* Retry-After header */
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 42);
    cp_codex_outcome(429, "{}", 2, NULL, 1000000, &o); /* no hint: the ladder */
    assert_false(o.has_hint);
    cp_codex_outcome(500, cap, strlen(cap), NULL, 1000000, &o);
    assert_int_equal(o.status, 429);
    cp_codex_outcome(400, bad, strlen(bad), NULL, 1000000, &o);
    assert_true(o.request_scoped);
    cp_codex_outcome(422, "not json", 8, NULL, 1000000, &o);
    assert_true(o.request_scoped);
    cp_codex_outcome(503, "", 0, "soon", 1000000, &o);
    assert_int_equal(o.status, 503);
    assert_false(o.has_hint);
    assert_false(o.request_scoped);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_headers),
        cmocka_unit_test(session_id_stable),
        cmocka_unit_test(outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
