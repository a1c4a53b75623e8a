/* SPDX-License-Identifier: MIT */
/*
 * test_login_oauth.c - login/oauth.c, the pure half of the logins: PKCE (a vector checked
 * with Python's hashlib, Codex's 96-byte verifier), the exact authorize URLs and redirect URIs,
 * token-exchange bodies per provider, pasted callbacks (URL, query, code#state, errors),
 * device answers and polling, the auth files each provider's answer turns into (names and
 * fields) and the new cp_authfile_login_name() patterns (gemini, qwen, iflow).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "login/oauth.h"

#define S(lit) lit, sizeof(lit) - 1
#define NOW INT64_C(1795348800) /* 2026-11-22T12:00:00Z */

static cJSON *parse(const char *s, size_t n)
{
    cJSON *t = NULL;
    assert_int_equal(cm_json_parse(s, n, NULL, &t, NULL), CM_OK);
    return t;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* ---- PKCE ---- */

static void t_pkce(void **st)
{
    /* 32 octets recovered from a known verifier; the challenge computed independently with
     * Python: base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=") */
    unsigned char *rfc = NULL;
    size_t rn = 0;
    unsigned char big[96];
    char v[CP_LOGIN_VERIFIER_MAX], c[CM_CRYPTO_PKCE_SIZE];
    (void)st;
    assert_int_equal(cm_crypto_b64_decode(S("dBjftJeZ4CVP-mJ92K9iWtXZtq-wW8KJaE0hYtI9U1Q"),
                                          CM_CRYPTO_B64_URL_NOPAD, &rfc, &rn),
                     CM_OK);
    assert_int_equal(rn, 32);
    assert_int_equal(cp_login_pkce(rfc, rn, v, c), CM_OK);
    cm_free(rfc);
    assert_string_equal(v, "dBjftJeZ4CVP-mJ92K9iWtXZtq-wW8KJaE0hYtI9U1Q");
    assert_string_equal(c, "lGiI9ybQ5pY04ScITc1P-QTHD54Kv55Aza7Y_92B5aU");
    memset(big, 0xab, sizeof big);
    assert_int_equal(cp_login_pkce(big, sizeof big, v, c), CM_OK);
    assert_int_equal(strlen(v), 128);
    assert_int_equal(strlen(c), 43);
    assert_int_equal(cp_login_pkce(big, 31, v, c), CM_ERR_INVAL);
    assert_int_equal(cp_login_pkce(big, 97, v, c), CM_ERR_INVAL);
}

/* ---- URLs ---- */

static void t_redirect_uri(void **st)
{
    char b[128];
    (void)st;
    assert_int_equal(cp_login_redirect_uri(CP_LOGIN_CODEX, 0, b, sizeof b), CM_OK);
    assert_string_equal(b, "http://localhost:1455/auth/callback");
    assert_int_equal(cp_login_redirect_uri(CP_LOGIN_CLAUDE, 0, b, sizeof b), CM_OK);
    assert_string_equal(b, "http://localhost:54545/callback");
    assert_int_equal(cp_login_redirect_uri(CP_LOGIN_GEMINI, 0, b, sizeof b), CM_OK);
    assert_string_equal(b, "http://localhost:8085/oauth2callback");
    assert_int_equal(cp_login_redirect_uri(CP_LOGIN_IFLOW, 4242, b, sizeof b), CM_OK);
    assert_string_equal(b, "http://localhost:4242/oauth2callback");
    assert_int_equal(cp_login_redirect_uri(CP_LOGIN_QWEN, 0, b, sizeof b), CM_ERR_INVAL);
    assert_int_equal(cp_login_redirect_uri(CP_LOGIN_CODEX, 0, b, 10), CM_ERR_LIMIT);
}

static void t_authorize_urls(void **st)
{
    char *u = NULL;
    (void)st;
    assert_int_equal(
        cp_login_authorize_url(CP_LOGIN_CODEX, "https://auth.openai.com/oauth/authorize",
                               "http://localhost:1455/auth/callback", "abc123", "CHAL", &u),
        CM_OK);
    assert_string_equal(
        u, "https://auth.openai.com/oauth/authorize?client_id=app_EMoamEEZ73f0CkXaXp7hrann"
           "&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"
           "&scope=openid%20email%20profile%20offline_access&state=abc123&code_challenge=CHAL"
           "&code_challenge_method=S256&prompt=login&id_token_add_organizations=true"
           "&codex_cli_simplified_flow=true");
    cm_free(u);
    u = NULL;
    assert_int_equal(cp_login_authorize_url(CP_LOGIN_CLAUDE, "https://claude.ai/oauth/authorize",
                                            "http://localhost:54545/callback", "s", "C", &u),
                     CM_OK);
    assert_string_equal(
        u, "https://claude.ai/oauth/authorize?code=true&client_id=9d1c250a-e61b-44d9-88ed-"
           "5944d1962f5e&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A54545%2F"
           "callback&scope=user%3Aprofile%20user%3Ainference%20user%3Asessions%3Aclaude_code"
           "%20user%3Amcp_servers%20user%3Afile_upload&code_challenge=C"
           "&code_challenge_method=S256&state=s");
    cm_free(u);
    u = NULL;
    assert_int_equal(cp_login_authorize_url(CP_LOGIN_GEMINI, "https://a.example/auth",
                                            "http://localhost:8085/oauth2callback", "st", NULL, &u),
                     CM_OK);
    assert_non_null(strstr(u, "?client_id=681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps."
                              "googleusercontent.com&"));
    assert_non_null(strstr(u, "&state=st&access_type=offline&prompt=consent"));
    assert_non_null(strstr(u, "cloud-platform%20https%3A%2F%2Fwww.googleapis.com%2Fauth%2F"
                              "userinfo.email"));
    assert_null(strstr(u, "code_challenge"));
    cm_free(u);
    u = NULL;
    /* an auth-url that already has a query gets '&' */
    assert_int_equal(cp_login_authorize_url(CP_LOGIN_IFLOW, "https://iflow.example/oauth?x=1",
                                            "http://localhost:11451/oauth2callback", "st", NULL,
                                            &u),
                     CM_OK);
    assert_string_equal(u, "https://iflow.example/oauth?x=1&loginMethod=phone&type=phone&redirect="
                           "http%3A%2F%2Flocalhost%3A11451%2Foauth2callback&state=st"
                           "&client_id=10009311001");
    cm_free(u);
    u = NULL;
    assert_int_equal(cp_login_authorize_url(CP_LOGIN_CODEX, "https://x", "r", "s", NULL, &u),
                     CM_ERR_INVAL);
    assert_int_equal(cp_login_authorize_url(CP_LOGIN_QWEN, "https://x", "r", "s", "c", &u),
                     CM_ERR_INVAL);
    assert_null(u);
}

/* ---- bodies ---- */

static void t_exchange_bodies(void **st)
{
    struct cp_login_body b = {0};
    struct cp_login_exchange x = {.code = "c o/de",
                                  .state = "st",
                                  .redirect_uri = "http://localhost:1455/auth/callback",
                                  .verifier = "VER"};
    char *basic = NULL;
    cJSON *t;
    (void)st;
    assert_int_equal(cp_login_exchange_body(CP_LOGIN_CODEX, &x, &b), CM_OK);
    assert_string_equal(b.content_type, "application/x-www-form-urlencoded");
    assert_string_equal(b.data, "grant_type=authorization_code&client_id=app_EMoamEEZ73f0CkXaXp7"
                                "hrann&code=c%20o%2Fde&redirect_uri=http%3A%2F%2Flocalhost%3A1455"
                                "%2Fauth%2Fcallback&code_verifier=VER");
    cp_login_body_cleanup(&b);
    assert_null(b.data);

    assert_int_equal(cp_login_exchange_body(CP_LOGIN_CLAUDE, &x, &b), CM_OK);
    assert_string_equal(b.content_type, "application/json");
    t = parse(b.data, b.len);
    assert_string_equal(str(t, "code"), "c o/de");
    assert_string_equal(str(t, "state"), "st");
    assert_string_equal(str(t, "grant_type"), "authorization_code");
    assert_string_equal(str(t, "client_id"), CP_LOGIN_CLAUDE_CLIENT_ID);
    assert_string_equal(str(t, "code_verifier"), "VER");
    assert_string_equal(str(t, "redirect_uri"), "http://localhost:1455/auth/callback");
    cJSON_Delete(t);
    cp_login_body_cleanup(&b);

    x.verifier = NULL;
    assert_int_equal(cp_login_exchange_body(CP_LOGIN_GEMINI, &x, &b), CM_OK);
    assert_non_null(strstr(b.data, "&client_secret=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"));
    assert_non_null(strstr(b.data, "grant_type=authorization_code&code=c%20o%2Fde&"));
    cp_login_body_cleanup(&b);
    assert_int_equal(cp_login_exchange_body(CP_LOGIN_IFLOW, &x, &b), CM_OK);
    assert_non_null(strstr(b.data, "&client_id=10009311001&client_secret="
                                   "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"));
    cp_login_body_cleanup(&b);
    /* PKCE flows need their verifier */
    assert_int_equal(cp_login_exchange_body(CP_LOGIN_CODEX, &x, &b), CM_ERR_INVAL);
    assert_int_equal(cp_login_exchange_body(CP_LOGIN_QWEN, &x, &b), CM_ERR_INVAL);

    assert_int_equal(cp_login_iflow_basic(&basic), CM_OK);
    /* base64("10009311001:4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW") */
    assert_string_equal(basic,
                        "Basic MTAwMDkzMTEwMDE6NFozWWpYeWNWc1F2eUdGMWV0aU5sSUJCNFJzcVNEdFc=");
    cm_free(basic);
}

/* ---- pasted answers ---- */

static void t_parse_callback(void **st)
{
    struct cp_login_callback cb = {0};
    (void)st;
    assert_int_equal(cp_login_parse_callback("  http://localhost:1455/auth/callback?code=a%2Bb+c"
                                             "&state=s1&scope=x  \n",
                                             &cb),
                     CM_OK);
    assert_string_equal(cb.code, "a+b c");
    assert_string_equal(cb.state, "s1");
    assert_null(cb.error);
    cp_login_callback_cleanup(&cb);
    assert_null(cb.code);

    assert_int_equal(cp_login_parse_callback("state=s2&code=k", &cb), CM_OK);
    assert_string_equal(cb.code, "k");
    assert_string_equal(cb.state, "s2");
    cp_login_callback_cleanup(&cb);

    /* Claude's page */
    assert_int_equal(cp_login_parse_callback("AbC-123#f00d", &cb), CM_OK);
    assert_string_equal(cb.code, "AbC-123");
    assert_string_equal(cb.state, "f00d");
    cp_login_callback_cleanup(&cb);

    /* a fragment after the query is not part of the state */
    assert_int_equal(cp_login_parse_callback("http://h/cb?code=x&state=y#frag", &cb), CM_OK);
    assert_string_equal(cb.state, "y");
    cp_login_callback_cleanup(&cb);

    assert_int_equal(
        cp_login_parse_callback("http://h/cb?error=access_denied&error_description=no%20way", &cb),
        CM_OK);
    assert_null(cb.code);
    assert_string_equal(cb.error, "access_denied: no way");
    cp_login_callback_cleanup(&cb);

    assert_int_equal(cp_login_parse_callback("hello there", &cb), CM_ERR_PARSE);
    assert_int_equal(cp_login_parse_callback("   ", &cb), CM_ERR_PARSE);
    assert_int_equal(cp_login_parse_callback("http://h/cb?state=only", &cb), CM_ERR_PARSE);
    assert_int_equal(cp_login_parse_callback("http://h/cb?code=&state=s", &cb), CM_ERR_PARSE);
    assert_null(cb.code);
    assert_int_equal(cp_login_parse_query("code=1&code=2&state=z", &cb), CM_OK);
    assert_string_equal(cb.code, "1"); /* the first one wins */
    cp_login_callback_cleanup(&cb);
}

/* ---- devices ---- */

static void t_codex_device(void **st)
{
    struct cp_login_device d = {0};
    struct cp_login_body b = {0};
    char err[128] = "", *code = NULL, *ver = NULL;
    cJSON *t;
    (void)st;
    assert_int_equal(cp_login_codex_device_body(&b), CM_OK);
    assert_string_equal(b.data, "{\"client_id\":\"app_EMoamEEZ73f0CkXaXp7hrann\"}");
    cp_login_body_cleanup(&b);
    assert_int_equal(cp_login_codex_device_parse(
                         S("{\"device_auth_id\":\"d1\",\"usercode\":\"U-1\",\"interval\":\"3\"}"),
                         &d, err, sizeof err),
                     CM_OK);
    assert_string_equal(d.device_code, "d1");
    assert_string_equal(d.user_code, "U-1");
    assert_int_equal(d.interval_s, 3);
    assert_int_equal(cp_login_codex_poll_body(&d, &b), CM_OK);
    t = parse(b.data, b.len);
    assert_string_equal(str(t, "device_auth_id"), "d1");
    assert_string_equal(str(t, "user_code"), "U-1");
    cJSON_Delete(t);
    cp_login_body_cleanup(&b);
    cp_login_device_cleanup(&d);
    /* interval as an int, absent (5), zero (1) */
    assert_int_equal(cp_login_codex_device_parse(
                         S("{\"device_auth_id\":\"d\",\"user_code\":\"u\",\"interval\":0}"), &d,
                         err, sizeof err),
                     CM_OK);
    assert_int_equal(d.interval_s, 1);
    cp_login_device_cleanup(&d);
    assert_int_equal(cp_login_codex_device_parse(
                         S("{\"device_auth_id\":\"d\",\"user_code\":\"u\"}"), &d, err, sizeof err),
                     CM_OK);
    assert_int_equal(d.interval_s, 5);
    cp_login_device_cleanup(&d);
    assert_int_equal(
        cp_login_codex_device_parse(S("{\"device_auth_id\":\"d\"}"), &d, err, sizeof err),
        CM_ERR_NOTFOUND);
    assert_string_equal(err, "the device code answer has no user_code");
    assert_int_equal(cp_login_codex_device_parse(S("[1]"), &d, err, sizeof err), CM_ERR_PARSE);

    assert_int_equal(
        cp_login_codex_poll_parse(S("{\"authorization_code\":\"AC\",\"code_verifier\":\"CV\"}"),
                                  &code, &ver),
        CM_OK);
    assert_string_equal(code, "AC");
    assert_string_equal(ver, "CV");
    cm_free(code);
    cm_free(ver);
    assert_int_equal(cp_login_codex_poll_parse(S("{\"authorization_code\":\"AC\"}"), &code, &ver),
                     CM_ERR_NOTFOUND);
}

static void t_qwen_device(void **st)
{
    struct cp_login_device d = {0};
    struct cp_login_body b = {0};
    char err[128] = "";
    (void)st;
    assert_int_equal(cp_login_qwen_device_body("CH", &b), CM_OK);
    assert_string_equal(b.data, "client_id=f0304373b74a44d2b584a3fb70ca9e56&scope=openid%20profile"
                                "%20email%20model.completion&code_challenge=CH"
                                "&code_challenge_method=S256");
    cp_login_body_cleanup(&b);
    assert_int_equal(
        cp_login_qwen_device_parse(S("{\"device_code\":\"dc\",\"user_code\":\"UC\","
                                     "\"verification_uri\":\"https://q/a\",\"verification_uri_"
                                     "complete\":\"https://q/a?user_code=UC\",\"expires_in\":600,"
                                     "\"interval\":2}"),
                                   &d, err, sizeof err),
        CM_OK);
    assert_string_equal(d.verification_uri, "https://q/a?user_code=UC");
    assert_int_equal(d.interval_s, 2);
    assert_int_equal(d.expires_in_s, 600);
    assert_int_equal(cp_login_qwen_poll_body(&d, "VV", &b), CM_OK);
    assert_string_equal(b.data, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
                                "&client_id=f0304373b74a44d2b584a3fb70ca9e56&device_code=dc"
                                "&code_verifier=VV");
    cp_login_body_cleanup(&b);
    cp_login_device_cleanup(&d);

    assert_int_equal(cp_login_qwen_poll_classify(400, S("{\"error\":\"authorization_pending\"}")),
                     CP_LOGIN_POLL_PENDING);
    assert_int_equal(cp_login_qwen_poll_classify(429, S("{\"error\":\"slow_down\"}")),
                     CP_LOGIN_POLL_SLOWDOWN);
    assert_int_equal(cp_login_qwen_poll_classify(400, S("{\"error\":\"expired_token\"}")),
                     CP_LOGIN_POLL_FAILED);
    assert_int_equal(cp_login_qwen_poll_classify(400, S("{\"error\":\"access_denied\"}")),
                     CP_LOGIN_POLL_FAILED);
    assert_int_equal(cp_login_qwen_poll_classify(200, S("{\"access_token\":\"a\"}")),
                     CP_LOGIN_POLL_DONE);
    assert_int_equal(cp_login_qwen_poll_classify(500, S("oops")), CP_LOGIN_POLL_FAILED);
    assert_int_equal(cp_login_slow_down(5), 7);
    assert_int_equal(cp_login_slow_down(1), 2);
    assert_int_equal(cp_login_slow_down(8), 10);
    assert_int_equal(cp_login_slow_down(10), 10);
}

/* ---- files ---- */

/* an unsigned JWT whose payload is @p claims */
static char *jwt(const char *claims)
{
    char *p = NULL, *r;
    size_t n = 0;
    assert_int_equal(cm_crypto_b64_encode(claims, strlen(claims), CM_CRYPTO_B64_URL_NOPAD, &p, &n),
                     CM_OK);
    r = cm_malloc(n + 64);
    snprintf(r, n + 64, "eyJhbGciOiJub25lIn0.%s.sig", p);
    cm_free(p);
    return r;
}

static void t_file_codex_claude(void **st)
{
    struct cp_login_file f = {0};
    char err[CP_LOGIN_ERR_MAX] = "", tok[2048];
    char *idt = jwt("{\"email\":\"a@b.c\",\"https://api.openai.com/auth\":"
                    "{\"chatgpt_account_id\":\"acct-9\",\"chatgpt_plan_type\":\"Pro\"}}");
    cJSON *t;
    (void)st;
    snprintf(tok, sizeof tok,
             "{\"access_token\":\"AT\",\"refresh_token\":\"RT\",\"id_token\":\"%s\","
             "\"token_type\":\"Bearer\",\"expires_in\":864000}",
             idt);
    assert_int_equal(
        cp_login_file_codex_claude(CP_LOGIN_CODEX, tok, strlen(tok), NOW, &f, err, sizeof err),
        CM_OK);
    assert_string_equal(f.name, "codex-a@b.c-pro.json");
    assert_string_equal(f.email, "a@b.c");
    assert_int_equal(f.json[f.len - 1], '\n');
    t = parse(f.json, f.len - 1);
    assert_string_equal(str(t, "type"), "codex");
    assert_string_equal(str(t, "access_token"), "AT");
    assert_string_equal(str(t, "refresh_token"), "RT");
    assert_string_equal(str(t, "id_token"), idt);
    assert_string_equal(str(t, "account_id"), "acct-9");
    assert_string_equal(str(t, "email"), "a@b.c");
    assert_string_equal(str(t, "last_refresh"), "2026-11-22T12:00:00Z");
    assert_string_equal(str(t, "expired"), "2026-12-02T12:00:00Z");
    cJSON_Delete(t);
    cp_login_file_cleanup(&f);
    cm_free(idt);

    assert_int_equal(cp_login_file_codex_claude(
                         CP_LOGIN_CLAUDE,
                         S("{\"access_token\":\"sk-ant-oat01-x\",\"refresh_token\":\"r\","
                           "\"expires_in\":3600,\"account\":{\"email_address\":\"c@d.e\"}}"),
                         NOW, &f, err, sizeof err),
                     CM_OK);
    assert_string_equal(f.name, "claude-c@d.e.json");
    t = parse(f.json, f.len - 1);
    assert_string_equal(str(t, "type"), "claude");
    assert_string_equal(str(t, "email"), "c@d.e");
    assert_string_equal(str(t, "expired"), "2026-11-22T13:00:00Z");
    assert_null(cJSON_GetObjectItemCaseSensitive(t, "id_token"));
    cJSON_Delete(t);
    cp_login_file_cleanup(&f);

    /* no email anywhere: refused, nothing leaks into the message */
    err[0] = '\0';
    assert_int_equal(cp_login_file_codex_claude(CP_LOGIN_CLAUDE,
                                                S("{\"access_token\":\"SECRETAT\",\"expires_in\":"
                                                  "60}"),
                                                NOW, &f, err, sizeof err),
                     CM_ERR_NOTFOUND);
    assert_null(strstr(err, "SECRETAT"));
    assert_null(f.json);
    assert_int_not_equal(cp_login_file_codex_claude(CP_LOGIN_CODEX, S("{\"expires_in\":60}"), NOW,
                                                    &f, err, sizeof err),
                         CM_OK);
}

static void t_file_gemini_qwen(void **st)
{
    struct cp_login_file f = {0};
    char err[CP_LOGIN_ERR_MAX] = "";
    cJSON *t, *tok, *sc;
    (void)st;
    assert_int_equal(
        cp_login_file_gemini(S("{\"access_token\":\"ya29.x\",\"refresh_token\":\"1//r\","
                               "\"expires_in\":3599,\"token_type\":\"Bearer\"}"),
                             "g@x.y", "proj-1", 1, NOW, &f, err, sizeof err),
        CM_OK);
    assert_string_equal(f.name, "gemini-g@x.y-proj-1.json");
    t = parse(f.json, f.len - 1);
    assert_string_equal(str(t, "type"), "gemini");
    assert_string_equal(str(t, "project_id"), "proj-1");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "auto")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "checked")));
    tok = cJSON_GetObjectItemCaseSensitive(t, "token");
    assert_string_equal(str(tok, "access_token"), "ya29.x");
    assert_string_equal(str(tok, "refresh_token"), "1//r");
    assert_string_equal(str(tok, "expiry"), "2026-11-22T12:59:59Z");
    assert_string_equal(str(tok, "token_uri"), "https://oauth2.googleapis.com/token");
    assert_string_equal(str(tok, "client_id"), CP_LOGIN_GEMINI_CLIENT_ID);
    assert_string_equal(str(tok, "client_secret"), CP_LOGIN_GEMINI_CLIENT_SECRET);
    assert_string_equal(str(tok, "universe_domain"), "googleapis.com");
    sc = cJSON_GetObjectItemCaseSensitive(tok, "scopes");
    assert_int_equal(cJSON_GetArraySize(sc), 3);
    assert_string_equal(cJSON_GetArrayItem(sc, 0)->valuestring,
                        "https://www.googleapis.com/auth/cloud-platform");
    cJSON_Delete(t);
    cp_login_file_cleanup(&f);
    assert_int_equal(cp_login_file_gemini(S("{\"access_token\":\"a\",\"expires_in\":1}"), "g@x.y",
                                          "a,b", 0, NOW, &f, err, sizeof err),
                     CM_OK);
    assert_string_equal(f.name, "gemini-g@x.y-all.json");
    cp_login_file_cleanup(&f);

    assert_int_equal(cp_login_file_qwen(S("{\"access_token\":\"q\",\"refresh_token\":\"r\","
                                          "\"resource_url\":\"portal.qwen.ai\",\"expires_in\":60}"),
                                        "me@q.ai", NOW, &f, err, sizeof err),
                     CM_OK);
    assert_string_equal(f.name, "qwen-me@q.ai.json");
    t = parse(f.json, f.len - 1);
    assert_string_equal(str(t, "resource_url"), "portal.qwen.ai");
    assert_string_equal(str(t, "expired"), "2026-11-22T12:01:00Z");
    assert_string_equal(str(t, "last_refresh"), "2026-11-22T12:00:00Z");
    assert_string_equal(str(t, "type"), "qwen");
    cJSON_Delete(t);
    cp_login_file_cleanup(&f);
    assert_int_equal(
        cp_login_file_qwen(S("{\"refresh_token\":\"r\"}"), "me", NOW, &f, err, sizeof err),
        CM_ERR_NOTFOUND);
}

static void t_file_iflow(void **st)
{
    struct cp_login_file f = {0};
    char err[CP_LOGIN_ERR_MAX] = "", *bx = NULL, *name = NULL;
    cJSON *t;
    (void)st;
    assert_int_equal(
        cp_login_file_iflow(S("{\"access_token\":\"at\",\"refresh_token\":\"rt\",\"expires_in\":"
                              "7200,\"token_type\":\"bearer\",\"scope\":\"read\"}"),
                            S("{\"success\":true,\"data\":{\"apiKey\":\"sk-1\",\"email\":\"\","
                              "\"phone\":\"13800000000\"}}"),
                            NOW, &f, err, sizeof err),
        CM_OK);
    assert_string_equal(f.name, "iflow-13800000000-1795348800.json");
    t = parse(f.json, f.len - 1);
    assert_string_equal(str(t, "api_key"), "sk-1");
    assert_string_equal(str(t, "email"), "13800000000");
    assert_string_equal(str(t, "token_type"), "bearer");
    assert_string_equal(str(t, "scope"), "read");
    assert_string_equal(str(t, "type"), "iflow");
    assert_string_equal(str(t, "expired"), "2026-11-22T14:00:00Z");
    cJSON_Delete(t);
    cp_login_file_cleanup(&f);
    /* spec 3.5(c): the common field failure */
    err[0] = '\0';
    assert_int_equal(cp_login_file_iflow(S("{\"success\":false,\"code\":\"500\"}"), S("{}"), NOW,
                                         &f, err, sizeof err),
                     CM_ERR_NOTFOUND);
    assert_string_equal(err, "iflow token: missing access token in response");
    assert_int_equal(cp_login_file_iflow(S("{\"access_token\":\"at\"}"),
                                         S("{\"data\":{\"apiKey\":\"\",\"email\":\"e\"}}"), NOW, &f,
                                         err, sizeof err),
                     CM_ERR_NOTFOUND);

    assert_int_equal(cp_login_iflow_bxauth("a=1; BXAuth=tok.en-1 ; c=3", &bx), CM_OK);
    assert_string_equal(bx, "BXAuth=tok.en-1;");
    cm_free(bx);
    assert_int_equal(cp_login_iflow_bxauth("BXAuth=x", &bx), CM_OK);
    assert_string_equal(bx, "BXAuth=x;");
    cm_free(bx);
    assert_int_equal(cp_login_iflow_bxauth("a=1; XBXAuth=2", &bx), CM_ERR_NOTFOUND);

    assert_int_equal(
        cp_login_iflow_key_name(S("{\"data\":{\"name\":\"k1\",\"apiKeyMask\":\"s*\"}}"), &name),
        CM_OK);
    assert_string_equal(name, "k1");
    cm_free(name);
    assert_int_equal(cp_login_file_iflow_cookie(
                         S("{\"data\":{\"name\":\"k1\",\"apiKey\":\"sk-new\",\"expireTime\":"
                           "\"2026-12-31 23:59\"}}"),
                         "BXAuth=v;", NOW, &f, err, sizeof err),
                     CM_OK);
    assert_string_equal(f.name, "iflow-k1-1795348800.json");
    t = parse(f.json, f.len - 1);
    assert_string_equal(str(t, "api_key"), "sk-new");
    assert_string_equal(str(t, "cookie"), "BXAuth=v;");
    assert_string_equal(str(t, "email"), "k1");
    assert_string_equal(str(t, "expired"), "2026-12-31T23:59:00Z");
    cJSON_Delete(t);
    cp_login_file_cleanup(&f);
}

static void t_gemini_setup(void **st)
{
    struct cp_login_body b = {0};
    char *tier = NULL, *proj = NULL;
    int done = -1;
    cJSON *t;
    (void)st;
    assert_int_equal(cp_login_gemini_load_body(NULL, &b), CM_OK);
    assert_string_equal(b.data, "{\"metadata\":{\"ideType\":\"IDE_UNSPECIFIED\",\"platform\":"
                                "\"PLATFORM_UNSPECIFIED\",\"pluginType\":\"GEMINI\"}}");
    cp_login_body_cleanup(&b);
    assert_int_equal(cp_login_gemini_load_parse(
                         S("{\"allowedTiers\":[{\"id\":\"a\"},{\"id\":\"std\",\"isDefault\":true}],"
                           "\"cloudaicompanionProject\":{\"id\":\"p-9\"}}"),
                         &tier, &proj),
                     CM_OK);
    assert_string_equal(tier, "std");
    assert_string_equal(proj, "p-9");
    assert_int_equal(cp_login_gemini_onboard_body(tier, proj, &b), CM_OK);
    t = parse(b.data, b.len);
    assert_string_equal(str(t, "tierId"), "std");
    assert_string_equal(str(t, "cloudaicompanionProject"), "p-9");
    cJSON_Delete(t);
    cp_login_body_cleanup(&b);
    cm_free(tier);
    cm_free(proj);
    assert_int_equal(cp_login_gemini_load_parse(S("{}"), &tier, &proj), CM_OK);
    assert_string_equal(tier, "legacy-tier");
    assert_null(proj);
    cm_free(tier);
    assert_int_equal(cp_login_gemini_onboard_parse(S("{\"done\":false}"), &done, &proj), CM_OK);
    assert_int_equal(done, 0);
    assert_null(proj);
    assert_int_equal(
        cp_login_gemini_onboard_parse(
            S("{\"done\":true,\"response\":{\"cloudaicompanionProject\":\"p-2\"}}"), &done, &proj),
        CM_OK);
    assert_int_equal(done, 1);
    assert_string_equal(proj, "p-2");
    cm_free(proj);
    assert_int_equal(cp_login_userinfo_email(S("{\"email\":\"u@g.com\"}"), &proj), CM_OK);
    assert_string_equal(proj, "u@g.com");
    cm_free(proj);
    assert_int_equal(cp_login_userinfo_email(S("{\"id\":\"1\"}"), &proj), CM_ERR_NOTFOUND);
}

static void t_login_names(void **st)
{
    char *n = NULL;
    (void)st;
    assert_int_equal(cp_authfile_login_name("gemini", "a@b", "proj-x", NULL, &n), CM_OK);
    assert_string_equal(n, "gemini-a@b-proj-x.json");
    cm_free(n);
    assert_int_equal(cp_authfile_login_name("gemini", "a@b", "ALL", NULL, &n), CM_OK);
    assert_string_equal(n, "gemini-a@b-all.json");
    cm_free(n);
    assert_int_equal(cp_authfile_login_name("gemini", "a@b", "p1,p2", NULL, &n), CM_OK);
    assert_string_equal(n, "gemini-a@b-all.json");
    cm_free(n);
    assert_int_equal(cp_authfile_login_name("gemini", "a@b", "../x", NULL, &n), CM_OK);
    assert_string_equal(n, "gemini-a@b-.._x.json");
    cm_free(n);
    assert_int_equal(cp_authfile_login_name("gemini", "a@b", NULL, NULL, &n), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_login_name("qwen", " me/you ", NULL, NULL, &n), CM_OK);
    assert_string_equal(n, "qwen-me_you.json");
    cm_free(n);
    assert_int_equal(cp_authfile_login_name("iflow", "13800000000", "1795348800", NULL, &n), CM_OK);
    assert_string_equal(n, "iflow-13800000000-1795348800.json");
    cm_free(n);
    assert_int_equal(cp_authfile_login_name("iflow", "x", "12a", NULL, &n), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_login_name("iflow", "x", NULL, NULL, &n), CM_ERR_INVAL);
}

static void t_kinds(void **st)
{
    (void)st;
    assert_string_equal(cp_login_kind_name(CP_LOGIN_IFLOW_COOKIE), "iflow-cookie");
    assert_int_equal(cp_login_default_port(CP_LOGIN_CODEX), 1455);
    assert_int_equal(cp_login_default_port(CP_LOGIN_CLAUDE), 54545);
    assert_int_equal(cp_login_default_port(CP_LOGIN_GEMINI), 8085);
    assert_int_equal(cp_login_default_port(CP_LOGIN_IFLOW), 11451);
    assert_int_equal(cp_login_default_port(CP_LOGIN_QWEN), 0);
    assert_null(cp_login_callback_path(CP_LOGIN_CODEX_DEVICE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_pkce),
        cmocka_unit_test(t_redirect_uri),
        cmocka_unit_test(t_authorize_urls),
        cmocka_unit_test(t_exchange_bodies),
        cmocka_unit_test(t_parse_callback),
        cmocka_unit_test(t_codex_device),
        cmocka_unit_test(t_qwen_device),
        cmocka_unit_test(t_file_codex_claude),
        cmocka_unit_test(t_file_gemini_qwen),
        cmocka_unit_test(t_file_iflow),
        cmocka_unit_test(t_gemini_setup),
        cmocka_unit_test(t_login_names),
        cmocka_unit_test(t_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
