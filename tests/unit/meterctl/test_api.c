/* SPDX-License-Identifier: MIT */
/*
 * test_api.c - how meterctl reads NewAPI answers (spec newapi.md 2.2, 3.1): the envelope,
 * success false on HTTP 200, NewAPI's "invalid access token" on HTTP 200 as an auth
 * failure, 401/403/404/5xx, non-JSON bodies, OpenAI-style errors, secrets masked and control
 * characters removed from messages; the raw mode of the channel test; query escaping; and
 * the exit codes and USD/time formatting the commands build on them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "cmd.h"

static int env(long status, const char *body, unsigned flags, cJSON **root, struct mc_api_err *e)
{
    memset(e, 0, sizeof *e);
    return mc_api_envelope(status, body, body ? strlen(body) : 0, flags, root, e);
}

static void success(void **state)
{
    struct mc_api_err e;
    cJSON *root = NULL;
    (void)state;
    assert_int_equal(env(200, "{\"success\":true,\"message\":\"\",\"data\":[1]}", 0, &root, &e),
                     CM_OK);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "data")));
    cJSON_Delete(root);
}

static void failures(void **state)
{
    struct {
        long status;
        const char *body;
        unsigned flags;
        int rc;
        const char *msg;
    } cases[] = {
        {200, "{\"success\":false,\"message\":\"ModelRatio: entry \\\"x\\\": bad\"}", 0,
         CM_ERR_DENIED, "HTTP 200: ModelRatio: entry \"x\": bad"},
        {200, "{\"success\":false,\"message\":\"Unauthorized, invalid access token\"}", 0,
         CM_ERR_AUTH, "HTTP 200: Unauthorized, invalid access token"},
        {401,
         "{\"success\":false,\"message\":\"Unauthorized, New-Api-User header not "
         "provided\"}",
         0, CM_ERR_AUTH, "HTTP 401: Unauthorized, New-Api-User header not provided"},
        {403, "forbidden", 0, CM_ERR_AUTH, "HTTP 403: forbidden"},
        {404, "{\"error\":{\"message\":\"no route\",\"code\":\"not_found\"}}", 0, CM_ERR_NOTFOUND,
         "HTTP 404: no route"},
        {404, "", 0, CM_ERR_NOTFOUND, "HTTP 404: empty body"},
        {502, "<html>bad gateway</html>", 0, CM_ERR_UPSTREAM, "HTTP 502: <html>bad gateway</html>"},
        {500, "{\"success\":false}", 0, CM_ERR_UPSTREAM, "HTTP 500: (no message)"},
        {200, "not json", 0, CM_ERR_PARSE, "HTTP 200: the answer is not NewAPI JSON: not json"},
        {200, "[1,2]", 0, CM_ERR_PARSE, "HTTP 200: the answer is not NewAPI JSON: [1,2]"},
        {200, "{\"data\":1}", 0, CM_ERR_DENIED, "HTTP 200: the answer has no \"success\" member"},
        {200, "{\"success\":false}", 0, CM_ERR_DENIED, "HTTP 200: success false, no message"},
        /* secrets and terminal escapes never reach the message */
        {200, "{\"success\":false,\"message\":\"bad key sk-abcdefghijklmnopqrstuvwxyz012345\"}", 0,
         CM_ERR_DENIED, "HTTP 200: bad key sk-abcd****2345"},
        {200, "{\"success\":false,\"message\":\"x\\u001b[31my\"}", 0, CM_ERR_DENIED,
         "HTTP 200: x?[31my"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct mc_api_err e;
        cJSON *root = (cJSON *)&e; /* must be reset to NULL */
        int rc = env(cases[i].status, cases[i].body, cases[i].flags, &root, &e);
        if (rc != cases[i].rc || strcmp(e.msg, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d msg \"%s\"", i, rc, e.msg);
        assert_null(root);
        assert_int_equal(e.rc, cases[i].rc);
        assert_int_equal(e.status, cases[i].status);
    }
}

static void raw_mode(void **state)
{
    struct mc_api_err e;
    cJSON *root = NULL;
    (void)state;
    /* the channel test answers {"success":false,...} with HTTP 200: not an error in RAW */
    assert_int_equal(env(200, "{\"success\":false,\"message\":\"upstream 401\",\"time\":0.2}",
                         MC_API_RAW, &root, &e),
                     CM_OK);
    assert_non_null(root);
    cJSON_Delete(root);
    /* but HTTP errors still are */
    assert_int_equal(
        env(401, "{\"success\":false,\"message\":\"Unauthorized\"}", MC_API_RAW, &root, &e),
        CM_ERR_AUTH);
}

static void escaping(void **state)
{
    char *s = NULL;
    (void)state;
    assert_int_equal(mc_api_escape("a b&c=d/é~._-", &s), CM_OK);
    assert_string_equal(s, "a%20b%26c%3Dd%2F%C3%A9~._-");
    cm_free(s);
    assert_int_equal(mc_api_escape("", &s), CM_OK);
    assert_string_equal(s, "");
    cm_free(s);
}

static void formatting(void **state)
{
    char b[64];
    (void)state;
    assert_string_equal(mc_fmt_usd(2.5, b, sizeof b), "$2.50");
    assert_string_equal(mc_fmt_usd(10, b, sizeof b), "$10.00");
    assert_string_equal(mc_fmt_usd(0.075, b, sizeof b), "$0.075");
    assert_string_equal(mc_fmt_usd(0.04125, b, sizeof b), "$0.04125");
    assert_string_equal(mc_fmt_usd(0.000004, b, sizeof b), "$0.000004");
    assert_string_equal(mc_fmt_usd(0.000000125, b, sizeof b), "$0.000000125");
    assert_string_equal(mc_fmt_usd(0, b, sizeof b), "$0.00");
    assert_string_equal(mc_fmt_usd(-1.5, b, sizeof b), "-$1.50");
    assert_string_equal(mc_fmt_time(-1, b, sizeof b), "never");
    assert_string_equal(mc_fmt_time(1767225600, b, sizeof b), "2026-01-01 00:00 UTC");
    assert_string_equal(mc_fmt_ratio(0.1, b, sizeof b), "0.1");
    assert_string_equal(mc_fmt_ratio(1.0 / 3, b, sizeof b), "0.333333333333");
    assert_string_equal(mc_mark(1, 0), "\xe2\x9c\x93");
    assert_string_equal(mc_mark(0, 0), "\xe2\x9c\x97");
    assert_int_equal(mc_exit_of(CM_OK), MC_EXIT_OK);
    assert_int_equal(mc_exit_of(CM_ERR_AUTH), MC_EXIT_AUTH);
    assert_int_equal(mc_exit_of(CM_ERR_TIMEOUT), MC_EXIT_UNREACHABLE);
    assert_int_equal(mc_exit_of(CM_ERR_DENIED), MC_EXIT_FAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(success),  cmocka_unit_test(failures),   cmocka_unit_test(raw_mode),
        cmocka_unit_test(escaping), cmocka_unit_test(formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
