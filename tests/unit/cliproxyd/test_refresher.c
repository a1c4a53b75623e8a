/* SPDX-License-Identifier: MIT */
/*
 * test_refresher.c - the refresh grants the refresher sends, per provider (exact bodies,
 * percent-encoding, headers incl. iFlow's Basic auth, Gemini client id/secret from the
 * file or the public defaults), and iFlow's user-info URL. The loop itself (threads,
 * HTTP) is covered by the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "refresher.h"

static struct cp_authfile *parse(const char *doc)
{
    struct cp_authfile *af = NULL;
    struct cp_authfile_err e;
    if (cp_authfile_parse("x.json", doc, strlen(doc), &af, &e))
        fail_msg("parse: %s", e.msg);
    return af;
}

static void expect(const char *doc, const char *body, const char *ctype, const char *auth)
{
    struct cp_authfile *af = parse(doc);
    struct cp_refresh_req r = {0};
    assert_int_equal(cp_refresher_build_request(af, &r), CM_OK);
    assert_string_equal(r.body, body);
    assert_int_equal(r.len, strlen(body));
    assert_int_equal(r.n_headers, auth ? 3 : 2);
    assert_string_equal(r.headers[0], ctype);
    assert_string_equal(r.headers[1], "Accept: application/json");
    if (auth)
        assert_string_equal(r.headers[2], auth);
    cp_refresh_req_cleanup(&r);
    cp_refresh_req_cleanup(&r); /* twice is fine */
    cp_authfile_free(af);
}

#define FORM "Content-Type: application/x-www-form-urlencoded"

static void bodies(void **state)
{
    (void)state;
    expect("{\"type\":\"codex\",\"refresh_token\":\"rt_a+b/c=\"}",
           "client_id=app_EMoamEEZ73f0CkXaXp7hrann&grant_type=refresh_token&refresh_token=rt_a%2Bb"
           "%2Fc%3D&scope=openid%20profile%20email",
           FORM, NULL);
    expect("{\"type\":\"claude\",\"refresh_token\":\"sk-ant-ort01-x\"}",
           "{\"client_id\":\"9d1c250a-e61b-44d9-88ed-5944d1962f5e\",\"grant_type\":\"refresh_"
           "token\",\"refresh_token\":\"sk-ant-ort01-x\"}",
           "Content-Type: application/json", NULL);
    /* gemini: the public Gemini CLI client when the file has none */
    expect("{\"type\":\"gemini\",\"token\":{\"refresh_token\":\"1//0g-x_y~z\"}}",
           "grant_type=refresh_token&refresh_token=1%2F%2F0g-x_y~z&client_id=681255809395-"
           "oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com&client_secret=GOCSPX-"
           "4uHgMPm-1o7Sk-geV6Cu5clXFsxl",
           FORM, NULL);
    expect("{\"type\":\"gemini\",\"token\":{\"refresh_token\":\"r\",\"client_id\":\"my id\","
           "\"client_secret\":\"s&t\"}}",
           "grant_type=refresh_token&refresh_token=r&client_id=my%20id&client_secret=s%26t", FORM,
           NULL);
    expect("{\"type\":\"qwen\",\"refresh_token\":\"q.r\"}",
           "grant_type=refresh_token&refresh_token=q.r&client_id=f0304373b74a44d2b584a3fb70ca9e56",
           FORM, NULL);
    /* base64("10009311001:4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW") */
    expect("{\"type\":\"iflow\",\"refresh_token\":\"i r\"}",
           "grant_type=refresh_token&refresh_token=i%20r&client_id=10009311001&client_secret="
           "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW",
           FORM,
           "Authorization: Basic MTAwMDkzMTEwMDE6NFozWWpYeWNWc1F2eUdGMWV0aU5sSUJCNFJzcVNEdFc=");
}

static void refused(void **state)
{
    struct cp_refresh_req r = {0};
    struct cp_authfile *af;
    (void)state;
    af = parse("{\"type\":\"qwen\",\"access_token\":\"a\"}"); /* no refresh token */
    assert_int_equal(cp_refresher_build_request(af, &r), CM_ERR_INVAL);
    cp_authfile_free(af);
    af = parse("{\"type\":\"kimi\",\"refresh_token\":\"r\"}"); /* not read: unsupported */
    assert_int_equal(cp_refresher_build_request(af, &r), CM_ERR_INVAL);
    cp_authfile_free(af);
    af = parse("{\"type\":\"claude\",\"refresh_token\":\"a\\\"b\"}");
    assert_int_equal(cp_refresher_build_request(af, &r), CM_ERR_INVAL);
    cp_authfile_free(af);
    assert_int_equal(cp_refresher_build_request(NULL, &r), CM_ERR_INVAL);
}

static void userinfo_url(void **state)
{
    char *u = NULL;
    (void)state;
    assert_int_equal(
        cp_refresher_userinfo_url("https://iflow.cn/api/oauth/getUserInfo", "a+b/c", &u), CM_OK);
    assert_string_equal(u, "https://iflow.cn/api/oauth/getUserInfo?accessToken=a%2Bb%2Fc");
    cm_free(u);
    assert_int_equal(cp_refresher_userinfo_url("http://127.0.0.1:9/u?x=1", "t", &u), CM_OK);
    assert_string_equal(u, "http://127.0.0.1:9/u?x=1&accessToken=t");
    cm_free(u);
    assert_int_equal(cp_refresher_userinfo_url("http://127.0.0.1:9/u", "", &u), CM_ERR_INVAL);
    assert_int_equal(cp_refresher_userinfo_url(NULL, "t", &u), CM_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bodies),
        cmocka_unit_test(refused),
        cmocka_unit_test(userinfo_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
