/* SPDX-License-Identifier: MIT */
/*
 * test_authfile.c - cp_authfile: the codex/claude/gemini fixtures, qwen/iflow files (valid
 * and wrong field types), provider refreshes (gemini's nested token, qwen resource_url,
 * iflow's {"success":false} answer and getUserInfo), the knobs (priority as
 * int and numeric string), JWT claims, RFC 3339 variants, refresh-lead boundaries with a
 * fake clock, applying a refresh (unknown members kept byte for byte), malformed files,
 * the atomic write (mode, content, failures leave the old file), login file names,
 * auth_index vectors, the log description, and OOM walks with no leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"

#define S(lit) lit, sizeof(lit) - 1

/* 2026-11-30T10:00:00+08:00 and 2026-11-20T10:00:00.123456789+08:00 (python calendar.timegm) */
#define CODEX_EXPIRED INT64_C(1796004000)
#define CODEX_LAST INT64_C(1795140000)
#define CLAUDE_EXPIRED INT64_C(1795348800) /* 2026-11-22T12:00:00Z */
#define JWT_ACCOUNT "3f1c2b9e-7a41-4c55-9d1e-0b6f2a8c4d10"

/* ---- helpers ---- */

static char *read_fixture(const char *name, size_t *len)
{
    const char *root = getenv("CM_TEST_DATA");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    assert_non_null(root);
    snprintf(path, sizeof path, "%s/cliproxyd/auth/%s", root, name);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = cm_malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static struct cp_authfile *parse_fixture(const char *name)
{
    size_t len;
    char *data = read_fixture(name, &len);
    struct cp_authfile *af = NULL;
    struct cp_authfile_err e;
    int rc = cp_authfile_parse(name, data, len, &af, &e);
    cm_free(data);
    if (rc)
        fail_msg("parse %s: %s", name, e.msg);
    assert_non_null(af);
    return af;
}

static struct cp_authfile *parse_str(const char *name, const char *s)
{
    struct cp_authfile *af = NULL;
    struct cp_authfile_err e;
    int rc = cp_authfile_parse(name, s, strlen(s), &af, &e);
    if (rc)
        fail_msg("parse %s: %s", s, e.msg);
    return af;
}

/* header.payload.signature with @p payload_json as the base64url payload; caller frees */
static char *make_jwt(const char *payload_json)
{
    char *h = NULL, *p = NULL, *r;
    size_t n;
    static const char hdr[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    assert_int_equal(cm_crypto_b64_encode(hdr, sizeof hdr - 1, CM_CRYPTO_B64_URL_NOPAD, &h, NULL),
                     CM_OK);
    assert_int_equal(
        cm_crypto_b64_encode(payload_json, strlen(payload_json), CM_CRYPTO_B64_URL_NOPAD, &p, NULL),
        CM_OK);
    n = strlen(h) + strlen(p) + 16;
    r = cm_malloc(n);
    assert_non_null(r);
    snprintf(r, n, "%s.%s.c2ln", h, p);
    cm_free(h);
    cm_free(p);
    return r;
}

static char *print_item(const cJSON *it)
{
    char *s = NULL;
    assert_non_null(it);
    assert_int_equal(cm_json_print(it, &s, NULL), CM_OK);
    return s;
}

static cJSON *parse_json(const char *s, size_t n)
{
    cJSON *j = NULL;
    assert_int_equal(cm_json_parse(s, n, NULL, &j, NULL), CM_OK);
    return j;
}

static const char *tree_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void expect_index(const char *name, char got[CP_AUTHFILE_INDEX_SIZE])
{
    unsigned char d[CM_CRYPTO_SHA256_LEN];
    char buf[512], hex[CP_AUTHFILE_INDEX_SIZE];
    int n = snprintf(buf, sizeof buf, "file:%s", name);
    cm_crypto_sha256(buf, (size_t)n, d);
    assert_int_equal(cm_crypto_hex_encode(d, 8, hex, sizeof hex), CM_OK);
    assert_string_equal(got, hex);
}

/* ---- fixtures ---- */

static void t_codex_fixture(void **state)
{
    struct cp_authfile *af = parse_fixture("codex-alice@example.com-plus.json");
    (void)state;
    assert_string_equal(af->name, "codex-alice@example.com-plus.json");
    assert_string_equal(af->type, "codex");
    assert_int_equal(af->provider, CP_AUTH_CODEX);
    assert_true(cp_authfile_provider_supported(af->provider));
    assert_string_equal(af->email, "alice@example.com");
    assert_string_equal(af->access_token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY2Nlc3MifQ.QUNDRVNT");
    assert_string_equal(af->refresh_token, "rt_0123456789abcdefghijklmnopqrstuvwxyz");
    assert_non_null(af->id_token);
    /* "account_id": "" in the file -> from the id_token claim */
    assert_string_equal(af->account_id, JWT_ACCOUNT);
    assert_string_equal(af->plan_type, "plus");
    assert_true(af->has_expired);
    assert_int_equal(af->expired, CODEX_EXPIRED);
    assert_true(af->has_last_refresh);
    assert_int_equal(af->last_refresh, CODEX_LAST);
    assert_false(af->disabled);
    assert_int_equal(af->priority, 5);
    assert_string_equal(af->prefix, "team-a");
    assert_string_equal(af->proxy_url, "socks5://127.0.0.1:1080");
    assert_string_equal(af->note, "main account");
    assert_int_equal(af->n_excluded_models, 2);
    assert_string_equal(af->excluded_models[0], "gpt-5-codex-mini");
    assert_string_equal(af->excluded_models[1], "o3-*");
    assert_int_equal(af->disable_cooling, 1);
    assert_int_equal(af->n_headers, 2);
    assert_string_equal(af->header_names[0], "X-Extra");
    assert_string_equal(af->header_values[0], "1");
    assert_string_equal(af->header_names[1], "X-Team");
    assert_string_equal(af->header_values[1], "blue");
    assert_string_equal(af->auth_index, "66d13d85650d8873"); /* python hashlib */
    expect_index(af->name, af->auth_index);
    assert_int_equal(cp_authfile_refresh_lead(af), 5 * 24 * 3600);
    cp_authfile_free(af);
}

static void t_claude_fixture(void **state)
{
    struct cp_authfile *af = parse_fixture("claude-bob@example.com.json");
    (void)state;
    assert_int_equal(af->provider, CP_AUTH_CLAUDE);
    assert_string_equal(af->email, "bob@example.com");
    assert_string_equal(af->access_token, "sk-ant-oat01-AAAAbbbbCCCCddddEEEEffff0000111122223333");
    assert_non_null(af->refresh_token);
    assert_null(af->id_token); /* "" counts as absent */
    assert_null(af->account_id);
    assert_null(af->plan_type);
    assert_int_equal(af->expired, CLAUDE_EXPIRED);
    assert_int_equal(af->priority, 10); /* "10" */
    assert_int_equal(af->n_excluded_models, 1);
    assert_string_equal(af->excluded_models[0], "claude-3-5-haiku-20241022");
    assert_int_equal(af->disable_cooling, 0); /* disable-cooling: false */
    assert_int_equal(af->n_headers, 0);
    assert_null(af->prefix);
    assert_string_equal(af->auth_index, "0fa0d75fb0864f6f");
    assert_int_equal(cp_authfile_refresh_lead(af), 4 * 3600);
    cp_authfile_free(af);
}

static void t_unsupported_providers(void **state)
{
    static const struct {
        const char *type;
        enum cp_auth_provider p;
    } cases[] = {{"antigravity", CP_AUTH_ANTIGRAVITY},
                 {"vertex", CP_AUTH_VERTEX},
                 {"kimi", CP_AUTH_KIMI},
                 {"xai", CP_AUTH_XAI},
                 {"aistudio", CP_AUTH_AISTUDIO},
                 {"something-new", CP_AUTH_UNKNOWN},
                 {" Codex ", CP_AUTH_CODEX}};
    struct cp_authfile *af =
        parse_str("kimi-carol.json", "{\"type\":\"kimi\",\"email\":"
                                     "\"carol@example.com\",\"access_token\":\"t\","
                                     "\"refresh_token\":\"r\"}");
    char doc[256];
    (void)state;
    assert_int_equal(af->provider, CP_AUTH_KIMI);
    assert_false(cp_authfile_provider_supported(af->provider));
    assert_string_equal(af->email, "carol@example.com");
    assert_null(af->access_token);
    assert_false(cp_authfile_needs_refresh(af, NULL));
    assert_int_equal(cp_authfile_apply_refresh(af, S("{}"), NULL, NULL), CM_ERR_INVAL);
    cp_authfile_free(af);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* fields we do not read for unsupported providers may have any type */
        snprintf(doc, sizeof doc, "{\"type\":\"%s\",\"expired\":12,\"priority\":\"3\"}",
                 cases[i].type);
        if (cases[i].p == CP_AUTH_CODEX)
            snprintf(doc, sizeof doc, "{\"type\":\"%s\",\"priority\":\"3\"}", cases[i].type);
        af = parse_str("x.json", doc);
        assert_int_equal(af->provider, cases[i].p);
        assert_int_equal(af->priority, 3);
        cp_authfile_free(af);
    }
    assert_string_equal(cp_authfile_provider_name(CP_AUTH_UNKNOWN), "unknown");
    assert_string_equal(cp_authfile_provider_name(CP_AUTH_CLAUDE), "claude");
}

static void t_jwt_claims(void **state)
{
    char *jwt = make_jwt("{\"email\":\"jwt@example.com\",\"https://api.openai.com/auth\":"
                         "{\"chatgpt_account_id\":\"acc-jwt\",\"chatgpt_plan_type\":\"team\"}}");
    char doc[2048];
    struct cp_authfile *af;
    (void)state;
    /* the file's account_id and email win over the claims */
    snprintf(doc, sizeof doc,
             "{\"type\":\"codex\",\"id_token\":\"%s\",\"account_id\":\"acc-field\","
             "\"email\":\"file@example.com\"}",
             jwt);
    af = parse_str("a.json", doc);
    assert_string_equal(af->account_id, "acc-field");
    assert_string_equal(af->email, "file@example.com");
    assert_string_equal(af->plan_type, "team");
    cp_authfile_free(af);
    /* absent: from the claims */
    snprintf(doc, sizeof doc, "{\"type\":\"codex\",\"id_token\":\"%s\"}", jwt);
    af = parse_str("a.json", doc);
    assert_string_equal(af->account_id, "acc-jwt");
    assert_string_equal(af->email, "jwt@example.com");
    cp_authfile_free(af);
    cm_free(jwt);
    /* a JWT without the OpenAI claim: no account, no plan */
    jwt = make_jwt("{\"sub\":\"x\"}");
    snprintf(doc, sizeof doc, "{\"type\":\"codex\",\"id_token\":\"%s\"}", jwt);
    af = parse_str("a.json", doc);
    assert_null(af->account_id);
    assert_null(af->plan_type);
    assert_null(af->email);
    cp_authfile_free(af);
    cm_free(jwt);
}

static void t_knobs(void **state)
{
    static const struct {
        const char *doc;
        int64_t priority;
    } prios[] = {
        {"{\"type\":\"claude\",\"priority\":10}", 10},
        {"{\"type\":\"claude\",\"priority\":\"10\"}", 10},
        {"{\"type\":\"claude\",\"priority\":\" -3 \"}", -3},
        {"{\"type\":\"claude\",\"priority\":-7}", -7},
        {"{\"type\":\"claude\",\"priority\":2.0}", 2},
        {"{\"type\":\"claude\",\"priority\":null}", 0},
        {"{\"type\":\"claude\"}", 0},
    };
    struct cp_authfile *af;
    (void)state;
    for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
        af = parse_str("p.json", prios[i].doc);
        assert_int_equal(af->priority, prios[i].priority);
        cp_authfile_free(af);
    }
    af = parse_str("k.json",
                   "{\"type\":\"claude\",\"disabled\":true,\"excluded_models\":[\"a\",\"\"],"
                   "\"excluded-models\":[\"ignored\"],\"disable_cooling\":false,"
                   "\"disable-cooling\":true,\"prefix\":\"\",\"headers\":{}}");
    assert_true(af->disabled);
    assert_int_equal(af->n_excluded_models, 1); /* "" dropped, underscore key wins */
    assert_string_equal(af->excluded_models[0], "a");
    assert_int_equal(af->disable_cooling, 0); /* underscore key wins */
    assert_null(af->prefix);
    assert_int_equal(af->n_headers, 0);
    cp_authfile_free(af);
    af = parse_str("k.json", "{\"type\":\"claude\"}");
    assert_false(af->disabled);
    assert_int_equal(af->disable_cooling, -1);
    assert_int_equal(af->n_excluded_models, 0);
    assert_null(af->excluded_models);
    cp_authfile_free(af);
}

/* ---- time ---- */

static void t_rfc3339(void **state)
{
    static const struct {
        const char *s;
        int64_t t;
    } good[] = {
        {"2026-01-01T00:00:00Z", INT64_C(1767225600)},
        {"2026-01-01T00:00:00.999999999Z", INT64_C(1767225600)},
        {"2026-01-01t00:00:00.5z", INT64_C(1767225600)},
        {"2026-01-01T08:00:00+08:00", INT64_C(1767225600)},
        {"2025-12-31T18:30:00-05:30", INT64_C(1767225600)},
        {"2026-01-01T08:00:00.123+08:00", INT64_C(1767225600)},
        {"2024-02-29T12:00:00Z", INT64_C(1709208000)},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"2000-03-01T00:00:00Z", INT64_C(951868800)},
    };
    static const char *const bad[] = {
        "",
        "2026-01-01",
        "2026-01-01T00:00:00",   /* no zone */
        "2026-01-01 00:00:00Z",  /* space */
        "2026-01-01T00:00:00.Z", /* empty fraction */
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:60Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2023-02-29T00:00:00Z", /* not a leap year */
        "2026-04-31T00:00:00Z",
        "2026-01-01T00:00:00+0800",
        "2026-01-01T00:00:00+08",
        "2026-01-01T00:00:00Zjunk",
        "26-01-01T00:00:00Z",
        "2026-1-01T00:00:00Z",
        "1796004000",
    };
    char buf[CP_AUTHFILE_TIME_SIZE];
    int64_t t;
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        t = 42;
        if (cp_authfile_parse_time(good[i].s, &t) != CM_OK)
            fail_msg("refused %s", good[i].s);
        assert_int_equal(t, good[i].t);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = 42;
        if (cp_authfile_parse_time(bad[i], &t) != CM_ERR_INVAL)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(t, 42);
    }
    assert_int_equal(cp_authfile_format_time(INT64_C(1767225600), buf), CM_OK);
    assert_string_equal(buf, "2026-01-01T00:00:00Z");
    assert_int_equal(cp_authfile_format_time(CODEX_EXPIRED, buf), CM_OK);
    assert_string_equal(buf, "2026-11-30T02:00:00Z");
    assert_int_equal(cp_authfile_parse_time(buf, &t), CM_OK);
    assert_int_equal(t, CODEX_EXPIRED);
    assert_int_equal(cp_authfile_format_time(INT64_C(253402300800), buf), CM_ERR_INVAL);
}

/* ---- refresh decision ---- */

static void check_lead(const char *fixture, int64_t expired, int64_t lead)
{
    struct cp_authfile *af = parse_fixture(fixture);
    struct cm_clock_fake f;
    int64_t at = expired - lead;
    assert_int_equal(af->expired, expired);
    cm_clock_fake_init(&f, (at - 1) * 1000, 0);
    assert_false(cp_authfile_needs_refresh(af, &f.clock)); /* one second before the lead */
    cm_clock_fake_init(&f, (at - 1) * 1000 + 999, 0);
    assert_false(cp_authfile_needs_refresh(af, &f.clock));
    cm_clock_fake_init(&f, at * 1000, 0);
    assert_true(cp_authfile_needs_refresh(af, &f.clock)); /* exactly at the lead */
    cm_clock_fake_init(&f, (at + 1) * 1000, 0);
    assert_true(cp_authfile_needs_refresh(af, &f.clock)); /* one second after */
    assert_false(cp_authfile_is_expired(af, &f.clock));
    cm_clock_fake_init(&f, (expired - 1) * 1000, 0);
    assert_false(cp_authfile_is_expired(af, &f.clock));
    cm_clock_fake_init(&f, expired * 1000, 0);
    assert_true(cp_authfile_is_expired(af, &f.clock));
    assert_true(cp_authfile_needs_refresh(af, &f.clock));
    cm_clock_fake_init(&f, (expired + 86400) * 1000, 0);
    assert_true(cp_authfile_is_expired(af, &f.clock));
    cp_authfile_free(af);
}

static void t_refresh_lead_codex(void **state)
{
    (void)state;
    check_lead("codex-alice@example.com-plus.json", CODEX_EXPIRED, 5 * 24 * 3600);
}

static void t_refresh_lead_claude(void **state)
{
    (void)state;
    check_lead("claude-bob@example.com.json", CLAUDE_EXPIRED, 4 * 3600);
}

/* a token living less than twice its lead (iFlow: 1 h against 24 h) is refreshed at half
 * its life, so a refresh that brings another 1 h token does not start the next at once */
static void t_refresh_short_lived_at_half_life(void **state)
{
    static const char f[] = "{\"type\":\"iflow\",\"access_token\":\"a\",\"refresh_token\":"
                            "\"r\",\"api_key\":\"k\",\"last_refresh\":\"2026-01-01T00:00:00Z\","
                            "\"expired\":\"2026-01-01T01:00:00Z\"}";
    struct cp_authfile *af = NULL;
    struct cm_clock_fake c;
    const int64_t t0 = INT64_C(1767225600); /* 2026-01-01T00:00:00Z */
    (void)state;
    assert_int_equal(cp_authfile_parse("iflow-x.json", f, sizeof f - 1, &af, NULL), CM_OK);
    cm_clock_fake_init(&c, (t0 + 60) * 1000, 0); /* a minute after the refresh */
    assert_false(cp_authfile_needs_refresh(af, &c.clock));
    cm_clock_fake_init(&c, (t0 + 1799) * 1000, 0);
    assert_false(cp_authfile_needs_refresh(af, &c.clock));
    cm_clock_fake_init(&c, (t0 + 1800) * 1000, 0); /* half of the hour */
    assert_true(cp_authfile_needs_refresh(af, &c.clock));
    cp_authfile_free(af);
}

static void t_refresh_unknown_expiry(void **state)
{
    struct cm_clock_fake f;
    struct cp_authfile *af;
    (void)state;
    cm_clock_fake_init(&f, INT64_C(1767225600000), 0);
    af = parse_str("a.json", "{\"type\":\"claude\",\"refresh_token\":\"r\",\"expired\":\"\"}");
    assert_false(af->has_expired);
    assert_true(cp_authfile_needs_refresh(af, &f.clock));
    assert_false(cp_authfile_is_expired(af, &f.clock));
    cp_authfile_free(af);
    /* no refresh token: nothing to refresh with, whatever the expiry */
    af = parse_str("a.json", "{\"type\":\"claude\",\"access_token\":\"a\","
                             "\"expired\":\"2020-01-01T00:00:00Z\"}");
    assert_false(cp_authfile_needs_refresh(af, &f.clock));
    assert_true(cp_authfile_is_expired(af, &f.clock));
    cp_authfile_free(af);
    assert_false(cp_authfile_needs_refresh(NULL, &f.clock));
    assert_false(cp_authfile_is_expired(NULL, &f.clock));
}

/* ---- applying a refresh ---- */

static void t_apply_refresh_codex(void **state)
{
    struct cp_authfile *af = parse_fixture("codex-alice@example.com-plus.json");
    char *jwt = make_jwt("{\"email\":\"alice2@example.com\",\"https://api.openai.com/auth\":"
                         "{\"chatgpt_account_id\":\"acc-new\",\"chatgpt_plan_type\":\"pro\"}}");
    char resp[2048], tbuf[CP_AUTHFILE_TIME_SIZE];
    char *custom_before, *custom_after, *headers_before, *headers_after, *out = NULL;
    size_t out_len = 0;
    struct cm_clock_fake f;
    struct cp_authfile_err e;
    cJSON *j;
    const int64_t now = INT64_C(1795600000);
    (void)state;

    custom_before = print_item(cJSON_GetObjectItemCaseSensitive(af->json, "custom"));
    headers_before = print_item(cJSON_GetObjectItemCaseSensitive(af->json, "headers"));
    snprintf(resp, sizeof resp,
             "{\"access_token\":\"new-access\",\"refresh_token\":\"\",\"id_token\":\"%s\","
             "\"token_type\":\"Bearer\",\"expires_in\":864000}",
             jwt);
    cm_clock_fake_init(&f, now * 1000 + 456, 0);
    assert_int_equal(cp_authfile_apply_refresh(af, resp, strlen(resp), &f.clock, &e), CM_OK);
    assert_string_equal(af->access_token, "new-access");
    assert_string_equal(af->refresh_token, "rt_0123456789abcdefghijklmnopqrstuvwxyz"); /* kept */
    assert_string_equal(af->id_token, jwt);
    assert_string_equal(af->account_id, "acc-new");
    assert_string_equal(af->email, "alice2@example.com");
    assert_string_equal(af->plan_type, "pro");
    assert_int_equal(af->expired, now + 864000);
    assert_int_equal(af->last_refresh, now);
    assert_false(cp_authfile_needs_refresh(af, &f.clock));

    assert_int_equal(cp_authfile_serialize(af, &out, &out_len), CM_OK);
    assert_int_equal(out_len, strlen(out));
    assert_int_equal(out[out_len - 1], '\n');
    j = parse_json(out, out_len);
    assert_string_equal(tree_str(j, "access_token"), "new-access");
    assert_string_equal(tree_str(j, "refresh_token"), "rt_0123456789abcdefghijklmnopqrstuvwxyz");
    assert_string_equal(tree_str(j, "id_token"), jwt);
    assert_string_equal(tree_str(j, "account_id"), "acc-new");
    assert_string_equal(tree_str(j, "email"), "alice2@example.com");
    assert_string_equal(tree_str(j, "type"), "codex");
    cp_authfile_format_time(now + 864000, tbuf);
    assert_string_equal(tree_str(j, "expired"), tbuf);
    cp_authfile_format_time(now, tbuf);
    assert_string_equal(tree_str(j, "last_refresh"), tbuf);
    /* unknown and knob members untouched, byte for byte */
    custom_after = print_item(cJSON_GetObjectItemCaseSensitive(j, "custom"));
    headers_after = print_item(cJSON_GetObjectItemCaseSensitive(j, "headers"));
    assert_string_equal(custom_before, custom_after);
    assert_string_equal(headers_before, headers_after);
    assert_non_null(strstr(custom_after, "9007199254740991"));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "websockets")));
    assert_string_equal(tree_str(j, "note"), "main account");
    assert_string_equal(tree_str(j, "prefix"), "team-a");
    assert_int_equal(cJSON_GetArraySize(j), cJSON_GetArraySize(af->json));
    /* members stay in place: "access_token" is still the first one */
    assert_string_equal(j->child->string, "access_token");

    cJSON_Delete(j);
    cm_free(custom_before);
    cm_free(custom_after);
    cm_free(headers_before);
    cm_free(headers_after);
    cm_free(out);
    cm_free(jwt);
    cp_authfile_free(af);
}

static void t_apply_refresh_claude(void **state)
{
    struct cp_authfile *af = parse_fixture("claude-bob@example.com.json");
    static const char resp[] =
        "{\"token_type\":\"Bearer\",\"access_token\":\"sk-ant-oat01-new\",\"expires_in\":28800,"
        "\"refresh_token\":\"sk-ant-ort01-new\",\"id_token\":\"ignored\",\"account\":"
        "{\"uuid\":\"u\",\"email_address\":\"bob.new@example.com\"},\"organization\":{}}";
    struct cm_clock_fake f;
    char *out = NULL;
    size_t len;
    cJSON *j;
    (void)state;
    cm_clock_fake_init(&f, CLAUDE_EXPIRED * 1000, 0);
    assert_int_equal(cp_authfile_apply_refresh(af, S(resp), &f.clock, NULL), CM_OK);
    assert_string_equal(af->access_token, "sk-ant-oat01-new");
    assert_string_equal(af->refresh_token, "sk-ant-ort01-new");
    assert_string_equal(af->email, "bob.new@example.com");
    assert_null(af->id_token); /* claude refresh does not write id_token */
    assert_int_equal(af->expired, CLAUDE_EXPIRED + 28800);
    assert_int_equal(cp_authfile_serialize(af, &out, &len), CM_OK);
    j = parse_json(out, len);
    assert_string_equal(tree_str(j, "refresh_token"), "sk-ant-ort01-new");
    assert_string_equal(tree_str(j, "email"), "bob.new@example.com");
    assert_string_equal(tree_str(j, "id_token"), "");
    assert_string_equal(tree_str(j, "priority"), "10");
    assert_string_equal(tree_str(j, "cloak_mode"), "always");
    assert_string_equal(tree_str(j, "account_uuid"), "a1b2c3d4-0000-1111-2222-333344445555");
    assert_string_equal(tree_str(j, "expired"), "2026-11-22T20:00:00Z");
    assert_string_equal(tree_str(j, "last_refresh"), "2026-11-22T12:00:00Z");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "account_id"));
    cJSON_Delete(j);
    cm_free(out);
    cp_authfile_free(af);
}

static void t_apply_refresh_errors(void **state)
{
    static const struct {
        const char *resp;
        int rc;
        const char *field;
    } cases[] = {
        {"{\"expires_in\":3600}", CM_ERR_NOTFOUND, "access_token"},
        {"{\"access_token\":\"\",\"expires_in\":3600}", CM_ERR_INVAL, "access_token"},
        {"{\"access_token\":5,\"expires_in\":3600}", CM_ERR_INVAL, "access_token"},
        {"{\"access_token\":\"a\"}", CM_ERR_NOTFOUND, "expires_in"},
        {"{\"access_token\":\"a\",\"expires_in\":\"3600\"}", CM_ERR_INVAL, "expires_in"},
        {"{\"access_token\":\"a\",\"expires_in\":0}", CM_ERR_INVAL, "expires_in"},
        {"{\"access_token\":\"a\",\"expires_in\":3600,\"refresh_token\":7}", CM_ERR_INVAL,
         "refresh_token"},
        {"{\"access_token\":\"a\",\"expires_in\":3600,\"id_token\":\"not.a-jwt\"}", CM_ERR_INVAL,
         "id_token"},
        {"{\"access_token\":\"a\",\"expires_in\":3600", CM_ERR_PARSE, ""},
        {"[1]", CM_ERR_PARSE, ""},
        {"", CM_ERR_PARSE, ""},
    };
    struct cp_authfile *af = parse_fixture("codex-alice@example.com-plus.json");
    char *before = NULL, *after = NULL;
    (void)state;
    assert_int_equal(cp_authfile_serialize(af, &before, NULL), CM_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cp_authfile_err e;
        int rc = cp_authfile_apply_refresh(af, cases[i].resp, strlen(cases[i].resp), NULL, &e);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, e.msg);
        assert_int_equal(e.rc, rc);
        assert_string_equal(e.field, cases[i].field);
        assert_non_null(strstr(e.msg, "codex-alice@example.com-plus.json"));
        assert_null(strstr(e.msg, "rt_0123")); /* no token in messages */
        assert_string_equal(af->access_token,
                            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY2Nlc3MifQ.QUNDRVNT");
        assert_int_equal(af->expired, CODEX_EXPIRED);
    }
    assert_int_equal(cp_authfile_serialize(af, &after, NULL), CM_OK);
    assert_string_equal(before, after);
    cm_free(before);
    cm_free(after);
    cp_authfile_free(af);
}

static void t_serialize_roundtrip(void **state)
{
    static const char *const names[] = {"codex-alice@example.com-plus.json",
                                        "claude-bob@example.com.json",
                                        "gemini-carol@example.com-proj.json"};
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cp_authfile *af = parse_fixture(names[i]), *again = NULL;
        char *out = NULL;
        size_t len;
        assert_int_equal(cp_authfile_serialize(af, &out, &len), CM_OK);
        assert_int_equal(cp_authfile_parse(names[i], out, len, &again, NULL), CM_OK);
        assert_true(cJSON_Compare(af->json, again->json, 1));
        assert_int_equal(again->priority, af->priority);
        cm_free(out);
        cp_authfile_free(af);
        cp_authfile_free(again);
    }
    assert_int_equal(cp_authfile_serialize(NULL, NULL, NULL), CM_ERR_INVAL);
}

/* ---- malformed files ---- */

static void t_malformed(void **state)
{
    static const struct {
        const char *doc;
        int rc;
        const char *field;
    } cases[] = {
        {"{\"type\":\"codex\",\"email\":\"a", CM_ERR_PARSE, ""},
        {"", CM_ERR_PARSE, ""},
        {"not json", CM_ERR_PARSE, ""},
        {"[]", CM_ERR_PARSE, ""},
        {"\"codex\"", CM_ERR_PARSE, ""},
        {"{\"type\":\"codex\",\"type\":\"claude\"}", CM_ERR_PARSE, ""},
        {"{}", CM_ERR_NOTFOUND, "type"},
        {"{\"type\":5}", CM_ERR_INVAL, "type"},
        {"{\"type\":null}", CM_ERR_INVAL, "type"},
        {"{\"type\":\"  \"}", CM_ERR_INVAL, "type"},
        {"{\"type\":\"codex\",\"priority\":\"abc\"}", CM_ERR_INVAL, "priority"},
        {"{\"type\":\"codex\",\"priority\":\"10abc\"}", CM_ERR_INVAL, "priority"},
        {"{\"type\":\"codex\",\"priority\":\"\"}", CM_ERR_INVAL, "priority"},
        {"{\"type\":\"codex\",\"priority\":1.5}", CM_ERR_INVAL, "priority"},
        {"{\"type\":\"codex\",\"priority\":\"99999999999\"}", CM_ERR_INVAL, "priority"},
        {"{\"type\":\"codex\",\"priority\":true}", CM_ERR_INVAL, "priority"},
        {"{\"type\":\"codex\",\"prefix\":\"a/b\"}", CM_ERR_INVAL, "prefix"},
        {"{\"type\":\"codex\",\"prefix\":\"/\"}", CM_ERR_INVAL, "prefix"},
        {"{\"type\":\"codex\",\"prefix\":5}", CM_ERR_INVAL, "prefix"},
        {"{\"type\":\"codex\",\"excluded_models\":\"gpt-5\"}", CM_ERR_INVAL, "excluded_models"},
        {"{\"type\":\"codex\",\"excluded_models\":[\"a\",1]}", CM_ERR_INVAL, "excluded_models"},
        {"{\"type\":\"codex\",\"excluded-models\":{}}", CM_ERR_INVAL, "excluded-models"},
        {"{\"type\":\"codex\",\"headers\":{\"X-A\":1}}", CM_ERR_INVAL, "headers"},
        {"{\"type\":\"codex\",\"headers\":[]}", CM_ERR_INVAL, "headers"},
        {"{\"type\":\"codex\",\"disabled\":\"yes\"}", CM_ERR_INVAL, "disabled"},
        {"{\"type\":\"codex\",\"disable_cooling\":\"true\"}", CM_ERR_INVAL, "disable_cooling"},
        {"{\"type\":\"codex\",\"disable-cooling\":1}", CM_ERR_INVAL, "disable-cooling"},
        {"{\"type\":\"codex\",\"proxy_url\":[]}", CM_ERR_INVAL, "proxy_url"},
        {"{\"type\":\"codex\",\"note\":{}}", CM_ERR_INVAL, "note"},
        {"{\"type\":\"codex\",\"email\":5}", CM_ERR_INVAL, "email"},
        {"{\"type\":\"codex\",\"access_token\":5}", CM_ERR_INVAL, "access_token"},
        {"{\"type\":\"claude\",\"refresh_token\":[]}", CM_ERR_INVAL, "refresh_token"},
        {"{\"type\":\"codex\",\"account_id\":1}", CM_ERR_INVAL, "account_id"},
        {"{\"type\":\"codex\",\"expired\":\"tomorrow\"}", CM_ERR_INVAL, "expired"},
        {"{\"type\":\"claude\",\"expired\":1796004000}", CM_ERR_INVAL, "expired"},
        {"{\"type\":\"codex\",\"last_refresh\":\"2026-02-30T00:00:00Z\"}", CM_ERR_INVAL,
         "last_refresh"},
        {"{\"type\":\"codex\",\"id_token\":\"not-a-jwt\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":\"a.b.c.d\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":\"a..c\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":\".eyJ9.c\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":\"a.!!!!.c\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":\"a.bm90IGpzb24.c\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":\"a.WzFd.c\"}", CM_ERR_INVAL, "id_token"}, /* [1] */
        {"{\"type\":\"codex\",\"id_token\":\"a.eyJlbWFpbCI6NX0.c\"}", CM_ERR_INVAL, "id_token"},
        {"{\"type\":\"codex\",\"id_token\":7}", CM_ERR_INVAL, "id_token"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cp_authfile *af = (struct cp_authfile *)8;
        struct cp_authfile_err e;
        size_t n = strlen(cases[i].doc);
        char *exact = cm_malloc(n ? n : 1); /* no NUL after the bytes: ASan catches overreads */
        int rc;
        assert_non_null(exact);
        memcpy(exact, cases[i].doc, n);
        memset(&e, 0, sizeof e);
        rc = cp_authfile_parse("bad-file.json", exact, n, &af, &e);
        cm_free(exact);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, cases[i].doc, rc, cases[i].rc, e.msg);
        assert_ptr_equal(af, (struct cp_authfile *)8);
        assert_int_equal(e.rc, rc);
        if (strcmp(e.field, cases[i].field) != 0)
            fail_msg("case %zu: field '%s', want '%s' (%s)", i, e.field, cases[i].field, e.msg);
        assert_non_null(strstr(e.msg, "auth file 'bad-file.json': "));
        if (cases[i].field[0]) {
            char want[96];
            snprintf(want, sizeof want, "'%s'", cases[i].field);
            if (!strstr(e.msg, want))
                fail_msg("case %zu: message does not name the field: %s", i, e.msg);
        }
    }
}

static void t_limits(void **state)
{
    struct cp_authfile *af = (struct cp_authfile *)8;
    struct cp_authfile_err e;
    size_t n = CP_AUTHFILE_MAX_SIZE + 1;
    char *big = cm_malloc(n), *deep;
    char longname[CP_AUTHFILE_NAME_MAX + 2];
    int depth = CP_AUTHFILE_MAX_DEPTH + 5;
    size_t pos = 0;
    (void)state;

    /* a valid JSON document one byte too big */
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"type\":\"codex\"}", 16);
    assert_int_equal(cp_authfile_parse("big.json", big, n, &af, &e), CM_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "big.json"));
    assert_int_equal(cp_authfile_parse("big.json", big, n - 1, &af, &e), CM_OK);
    cp_authfile_free(af);
    af = (struct cp_authfile *)8;
    cm_free(big);

    deep = cm_malloc(64 + 2 * (size_t)depth);
    assert_non_null(deep);
    pos += (size_t)snprintf(deep, 64, "{\"type\":\"codex\",\"x\":");
    for (int i = 0; i < depth; i++)
        deep[pos++] = '[';
    for (int i = 0; i < depth; i++)
        deep[pos++] = ']';
    deep[pos++] = '}';
    assert_int_equal(cp_authfile_parse("deep.json", deep, pos, &af, &e), CM_ERR_LIMIT);
    assert_ptr_equal(af, (struct cp_authfile *)8);
    cm_free(deep);

    /* a NUL inside */
    assert_int_equal(cp_authfile_parse("nul.json", "{\"type\":\"co\0dex\"}", 18, &af, &e),
                     CM_ERR_PARSE);
    /* the file name limit and bad arguments */
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(cp_authfile_parse(longname, S("{\"type\":\"codex\"}"), &af, &e), CM_ERR_LIMIT);
    assert_int_equal(cp_authfile_parse(NULL, S("{}"), &af, &e), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_parse("x", S("{}"), NULL, &e), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_parse("x", NULL, 3, &af, NULL), CM_ERR_INVAL);
    assert_ptr_equal(af, (struct cp_authfile *)8);
}

/* ---- atomic write ---- */

static char *tmpdir(void)
{
    char *d = cm_strdup("/tmp/test_authfile.XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = cm_malloc(4096);
    assert_non_null(f);
    assert_non_null(b);
    *len = fread(b, 1, 4095, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

static void t_write_atomic(void **state)
{
    char *dir = tmpdir();
    char path[512], sub[256], inner[512];
    struct stat st;
    size_t len;
    char *got;
    mode_t old_mask;
    FILE *f;
    (void)state;

    snprintf(path, sizeof path, "%s/codex-a@b.json", dir);
    /* a permissive umask must not leak into the mode */
    old_mask = umask(0);
    assert_int_equal(cp_authfile_write(path, S("{\"type\":\"codex\"}\n")), CM_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    got = slurp(path, &len);
    assert_string_equal(got, "{\"type\":\"codex\"}\n");
    cm_free(got);

    /* replacing a 0644 file: new content, mode 0600, no temporary left */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(cp_authfile_write(path, S("{\"type\":\"claude\"}\n")), CM_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    got = slurp(path, &len);
    assert_string_equal(got, "{\"type\":\"claude\"}\n");
    cm_free(got);
    assert_int_equal(count_entries(dir), 1);
    umask(old_mask);

    /* rename onto a non-empty directory fails: what is there stays, no temporary left */
    snprintf(sub, sizeof sub, "%s/target.json", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", sub);
    f = fopen(inner, "w");
    assert_non_null(f);
    fputs("old", f);
    fclose(f);
    assert_int_equal(cp_authfile_write(sub, S("{}")), CM_ERR_IO);
    got = slurp(inner, &len);
    assert_string_equal(got, "old");
    cm_free(got);
    assert_int_equal(count_entries(dir), 2);
    assert_int_equal(count_entries(sub), 1);

    /* a directory we may not write into (only meaningful when not root) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0500), 0);
        assert_int_equal(cp_authfile_write(path, S("{\"new\":1}")), CM_ERR_DENIED);
        got = slurp(path, &len);
        assert_string_equal(got, "{\"type\":\"claude\"}\n");
        cm_free(got);
        assert_int_equal(chmod(dir, 0700), 0);
    }
    /* a missing directory, bad arguments */
    snprintf(inner, sizeof inner, "%s/missing/x.json", dir);
    assert_int_equal(cp_authfile_write(inner, S("{}")), CM_ERR_NOTFOUND);
    assert_int_equal(cp_authfile_write("/tmp/", S("{}")), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_write(NULL, S("{}")), CM_ERR_INVAL);
    assert_int_equal(count_entries(dir), 2);

    /* serialize + write + read back + parse */
    {
        struct cp_authfile *af = parse_fixture("claude-bob@example.com.json"), *back = NULL;
        char *out = NULL;
        size_t n;
        assert_int_equal(cp_authfile_serialize(af, &out, &n), CM_OK);
        assert_int_equal(cp_authfile_write(path, out, n), CM_OK);
        cm_free(out);
        got = slurp(path, &len);
        assert_int_equal(cp_authfile_parse("claude-bob@example.com.json", got, len, &back, NULL),
                         CM_OK);
        assert_true(cJSON_Compare(af->json, back->json, 1));
        cm_free(got);
        cp_authfile_free(af);
        cp_authfile_free(back);
    }

    unlink(path);
    snprintf(inner, sizeof inner, "%s/keep", sub);
    unlink(inner);
    rmdir(sub);
    assert_int_equal(rmdir(dir), 0);
    cm_free(dir);
}

/* ---- names ---- */

/* ---- gemini / qwen / iflow ---- */

/* 2026-11-22T05:00:00Z */
#define GEMINI_EXPIRY INT64_C(1795323600)

static void expect_parse_error(const char *doc, int rc, const char *field)
{
    struct cp_authfile *af = NULL;
    struct cp_authfile_err e;
    memset(&e, 0, sizeof e);
    assert_int_equal(cp_authfile_parse("x.json", doc, strlen(doc), &af, &e), rc);
    assert_null(af);
    if (strcmp(e.field, field) != 0)
        fail_msg("%s: field '%s', want '%s' (%s)", doc, e.field, field, e.msg);
}

static void t_gemini_parse(void **state)
{
    struct cp_authfile *af = parse_fixture("gemini-carol@example.com-proj.json");
    struct cm_clock_fake f;
    (void)state;
    assert_int_equal(af->provider, CP_AUTH_GEMINI);
    assert_true(cp_authfile_provider_supported(af->provider));
    assert_string_equal(af->email, "carol@example.com");
    assert_string_equal(af->project_id, "proj-123");
    assert_string_equal(af->access_token, "ya29.xxxx");
    assert_string_equal(af->refresh_token, "1//yyyy");
    assert_true(af->has_expired);
    assert_int_equal(af->expired, GEMINI_EXPIRY);
    assert_null(af->client_id);
    assert_int_equal(cp_authfile_refresh_lead(af), 300);
    cm_clock_fake_init(&f, (GEMINI_EXPIRY - 301) * 1000, 0);
    assert_false(cp_authfile_needs_refresh(af, &f.clock));
    cm_clock_fake_init(&f, (GEMINI_EXPIRY - 300) * 1000, 0);
    assert_true(cp_authfile_needs_refresh(af, &f.clock));
    cp_authfile_free(af);

    /* every field, a Go oauth2 expiry with nanoseconds and an offset, a multi-project id */
    af = parse_str("gemini-d@example.com-all.json",
                   "{\"type\":\"gemini\",\"email\":\"d@example.com\",\"project_id\":\"p-1,p-2\","
                   "\"auto\":false,\"checked\":true,\"token\":{\"access_token\":\"ya29.a\","
                   "\"token_type\":\"Bearer\",\"refresh_token\":\"1//r\","
                   "\"expiry\":\"2026-11-22T13:00:00.123456789+08:00\","
                   "\"token_uri\":\"https://oauth2.googleapis.com/token\","
                   "\"client_id\":\"cid.apps.googleusercontent.com\",\"client_secret\":\"csec\","
                   "\"scopes\":[\"https://www.googleapis.com/auth/cloud-platform\"],"
                   "\"universe_domain\":\"googleapis.com\"}}");
    assert_string_equal(af->project_id, "p-1,p-2");
    assert_int_equal(af->expired, GEMINI_EXPIRY);
    assert_string_equal(af->token_uri, "https://oauth2.googleapis.com/token");
    assert_string_equal(af->client_id, "cid.apps.googleusercontent.com");
    assert_string_equal(af->client_secret, "csec");
    cp_authfile_free(af);

    /* no token object: parses, nothing to refresh with */
    af = parse_str("g.json", "{\"type\":\"gemini-cli\",\"project_id\":\"p\"}");
    assert_int_equal(af->provider, CP_AUTH_GEMINI);
    assert_null(af->access_token);
    assert_false(cp_authfile_needs_refresh(af, NULL));
    cp_authfile_free(af);

    expect_parse_error("{\"type\":\"gemini\",\"project_id\":5}", CM_ERR_INVAL, "project_id");
    expect_parse_error("{\"type\":\"gemini\",\"auto\":\"yes\"}", CM_ERR_INVAL, "auto");
    expect_parse_error("{\"type\":\"gemini\",\"token\":\"ya29\"}", CM_ERR_INVAL, "token");
    expect_parse_error("{\"type\":\"gemini\",\"token\":{\"expiry\":12}}", CM_ERR_INVAL,
                       "token.expiry");
    expect_parse_error("{\"type\":\"gemini\",\"token\":{\"expiry\":\"tomorrow\"}}", CM_ERR_INVAL,
                       "token.expiry");
    expect_parse_error("{\"type\":\"gemini\",\"token\":{\"access_token\":[]}}", CM_ERR_INVAL,
                       "token.access_token");
    expect_parse_error("{\"type\":\"gemini\",\"token\":{\"scopes\":[1]}}", CM_ERR_INVAL,
                       "token.scopes");
}

static void t_qwen_iflow_parse(void **state)
{
    struct cp_authfile *af;
    (void)state;
    af = parse_str(
        "qwen-q@example.com.json",
        "{\"type\":\"qwen\",\"email\":\"q@example.com\",\"access_token\":\"qat\","
        "\"refresh_token\":\"qrt\",\"resource_url\":\"portal.qwen.ai\","
        "\"last_refresh\":\"2026-11-22T04:00:00Z\",\"expired\":\"2026-11-22T05:00:00Z\"}");
    assert_int_equal(af->provider, CP_AUTH_QWEN);
    assert_true(cp_authfile_provider_supported(af->provider));
    assert_string_equal(af->access_token, "qat");
    assert_string_equal(af->refresh_token, "qrt");
    assert_string_equal(af->resource_url, "portal.qwen.ai");
    assert_int_equal(af->expired, GEMINI_EXPIRY);
    assert_int_equal(af->last_refresh, GEMINI_EXPIRY - 3600);
    assert_int_equal(cp_authfile_refresh_lead(af), 20 * 60);
    cp_authfile_free(af);
    expect_parse_error("{\"type\":\"qwen\",\"resource_url\":1}", CM_ERR_INVAL, "resource_url");
    expect_parse_error("{\"type\":\"qwen\",\"expired\":12}", CM_ERR_INVAL, "expired");

    af = parse_str("iflow-i@example.com-1.json",
                   "{\"type\":\"iflow\",\"email\":\"i@example.com\",\"access_token\":\"iat\","
                   "\"refresh_token\":\"irt\",\"api_key\":\"sk-iflow\",\"token_type\":\"bearer\","
                   "\"scope\":\"read\",\"cookie\":\"\",\"expired\":\"2026-11-22T05:00:00Z\"}");
    assert_int_equal(af->provider, CP_AUTH_IFLOW);
    assert_string_equal(af->api_key, "sk-iflow");
    assert_null(af->cookie);
    assert_int_equal(cp_authfile_refresh_lead(af), 24 * 3600);
    cp_authfile_free(af);
    /* a cookie credential: API key and cookie, no refresh token -> never refreshed here */
    af = parse_str("iflow-c.json", "{\"type\":\"iflow\",\"api_key\":\"sk-c\",\"cookie\":"
                                   "\"BXAuth=abc;\",\"expire_time\":\"2026-12-01 10:00\"}");
    assert_string_equal(af->cookie, "BXAuth=abc;");
    assert_string_equal(af->api_key, "sk-c");
    assert_false(cp_authfile_needs_refresh(af, NULL));
    cp_authfile_free(af);
    expect_parse_error("{\"type\":\"iflow\",\"api_key\":5}", CM_ERR_INVAL, "api_key");
    expect_parse_error("{\"type\":\"iflow\",\"cookie\":{}}", CM_ERR_INVAL, "cookie");
    expect_parse_error("{\"type\":\"iflow\",\"scope\":[]}", CM_ERR_INVAL, "scope");
}

static void t_apply_refresh_gemini(void **state)
{
    struct cp_authfile *af = parse_str(
        "gemini-e.json", "{\"type\":\"gemini\",\"email\":\"e@example.com\",\"project_id\":\"p\","
                         "\"token\":{\"access_token\":\"old\",\"refresh_token\":\"1//keep\","
                         "\"token_type\":\"Bearer\",\"expiry\":\"2026-11-22T05:00:00Z\","
                         "\"client_id\":\"cid\",\"scopes\":[\"s\"]},\"auto\":true}");
    static const char resp[] = "{\"access_token\":\"ya29.new\",\"expires_in\":3599,"
                               "\"token_type\":\"Bearer\",\"scope\":\"s\",\"id_token\":\"x.y.z\"}";
    struct cm_clock_fake f;
    char *out = NULL;
    size_t len;
    cJSON *j, *tok;
    (void)state;
    cm_clock_fake_init(&f, GEMINI_EXPIRY * 1000, 0);
    assert_int_equal(cp_authfile_apply_refresh(af, S(resp), &f.clock, NULL), CM_OK);
    assert_string_equal(af->access_token, "ya29.new");
    assert_string_equal(af->refresh_token, "1//keep");
    assert_int_equal(af->expired, GEMINI_EXPIRY + 3599);
    assert_int_equal(cp_authfile_serialize(af, &out, &len), CM_OK);
    j = parse_json(out, len);
    /* top level untouched (no access_token/expired/last_refresh written there) */
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "access_token"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "expired"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "last_refresh"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "id_token"));
    assert_string_equal(tree_str(j, "project_id"), "p");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "auto")));
    tok = cJSON_GetObjectItemCaseSensitive(j, "token");
    assert_string_equal(tree_str(tok, "access_token"), "ya29.new");
    assert_string_equal(tree_str(tok, "refresh_token"), "1//keep");
    assert_string_equal(tree_str(tok, "token_type"), "Bearer");
    assert_string_equal(tree_str(tok, "expiry"), "2026-11-22T05:59:59Z");
    assert_string_equal(tree_str(tok, "client_id"), "cid");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tok, "scopes")), 1);
    assert_int_equal(cJSON_GetArraySize(j), 5);
    cJSON_Delete(j);
    cm_free(out);
    /* a new refresh token replaces the old one */
    assert_int_equal(
        cp_authfile_apply_refresh(
            af, S("{\"access_token\":\"a2\",\"expires_in\":60,\"refresh_token\":\"1//n\"}"),
            &f.clock, NULL),
        CM_OK);
    assert_string_equal(af->refresh_token, "1//n");
    cp_authfile_free(af);
}

static void t_apply_refresh_qwen(void **state)
{
    struct cp_authfile *af = parse_str(
        "qwen-q.json", "{\"type\":\"Qwen\",\"email\":\"q@example.com\",\"access_token\":\"qat\","
                       "\"refresh_token\":\"qrt\",\"resource_url\":\"portal.qwen.ai\","
                       "\"expired\":\"2026-11-22T05:00:00Z\",\"note\":\"n\"}");
    struct cm_clock_fake f;
    char *out = NULL;
    size_t len;
    cJSON *j;
    (void)state;
    cm_clock_fake_init(&f, GEMINI_EXPIRY * 1000, 0);
    assert_int_equal(
        cp_authfile_apply_refresh(
            af,
            S("{\"access_token\":\"qat2\",\"refresh_token\":\"qrt2\",\"token_type\":"
              "\"Bearer\",\"resource_url\":\"dashscope.example.com\",\"expires_in\":7200}"),
            &f.clock, NULL),
        CM_OK);
    assert_string_equal(af->access_token, "qat2");
    assert_string_equal(af->refresh_token, "qrt2");
    assert_string_equal(af->resource_url, "dashscope.example.com");
    assert_int_equal(cp_authfile_serialize(af, &out, &len), CM_OK);
    j = parse_json(out, len);
    assert_string_equal(tree_str(j, "access_token"), "qat2");
    assert_string_equal(tree_str(j, "refresh_token"), "qrt2");
    assert_string_equal(tree_str(j, "resource_url"), "dashscope.example.com");
    assert_string_equal(tree_str(j, "expired"), "2026-11-22T07:00:00Z");
    assert_string_equal(tree_str(j, "last_refresh"), "2026-11-22T05:00:00Z");
    assert_string_equal(tree_str(j, "type"), "qwen");
    assert_string_equal(tree_str(j, "note"), "n");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "token_type"));
    cJSON_Delete(j);
    cm_free(out);
    /* no resource_url in the answer: the old one stays */
    assert_int_equal(cp_authfile_apply_refresh(
                         af, S("{\"access_token\":\"qat3\",\"expires_in\":60}"), &f.clock, NULL),
                     CM_OK);
    assert_string_equal(af->resource_url, "dashscope.example.com");
    assert_string_equal(af->refresh_token, "qrt2");
    cp_authfile_free(af);
}

static void t_apply_refresh_iflow(void **state)
{
    struct cp_authfile *af = parse_str(
        "iflow-i.json", "{\"type\":\"iflow\",\"email\":\"i@example.com\",\"access_token\":\"iat\","
                        "\"refresh_token\":\"irt\",\"api_key\":\"sk-old\",\"cookie\":\"\"}");
    static const char fail500[] =
        "{\"success\":false,\"code\":\"500\",\"message\":\"server busy\",\"data\":null}";
    struct cm_clock_fake f;
    struct cp_authfile_err e;
    char *out = NULL;
    size_t len;
    cJSON *j;
    (void)state;
    cm_clock_fake_init(&f, GEMINI_EXPIRY * 1000, 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(cp_authfile_apply_refresh(af, S(fail500), &f.clock, &e), CM_ERR_UPSTREAM);
    assert_string_equal(e.msg, "auth file 'iflow-i.json': iflow token: missing access token in "
                               "response (code 500): server busy");
    assert_string_equal(af->access_token, "iat"); /* unchanged */
    assert_int_equal(cp_authfile_apply_refresh(af, S("{\"success\":false}"), &f.clock, &e),
                     CM_ERR_UPSTREAM);
    assert_string_equal(e.msg,
                        "auth file 'iflow-i.json': iflow token: missing access token in response");
    assert_int_equal(cp_authfile_apply_refresh(af,
                                               S("{\"access_token\":\"iat2\",\"refresh_token\":"
                                                 "\"irt2\",\"expires_in\":86400,\"scope\":\"r\"}"),
                                               &f.clock, &e),
                     CM_OK);
    assert_string_equal(af->access_token, "iat2");
    assert_string_equal(af->api_key, "sk-old");
    assert_int_equal(cp_authfile_serialize(af, &out, &len), CM_OK);
    j = parse_json(out, len);
    assert_string_equal(tree_str(j, "access_token"), "iat2");
    assert_string_equal(tree_str(j, "refresh_token"), "irt2");
    assert_string_equal(tree_str(j, "expired"), "2026-11-23T05:00:00Z");
    assert_string_equal(tree_str(j, "last_refresh"), "2026-11-22T05:00:00Z");
    assert_string_equal(tree_str(j, "api_key"), "sk-old");
    cJSON_Delete(j);
    cm_free(out);
    cp_authfile_free(af);
}

static void t_iflow_userinfo(void **state)
{
    struct cp_authfile *af = parse_str(
        "iflow-u.json", "{\"type\":\"iflow\",\"access_token\":\"iat\",\"refresh_token\":\"irt\","
                        "\"api_key\":\"sk-old\",\"x\":[1]}");
    struct cp_authfile_err e;
    char *out = NULL;
    size_t len;
    cJSON *j;
    (void)state;
    memset(&e, 0, sizeof e);
    assert_int_equal(
        cp_authfile_apply_iflow_userinfo(
            af, S("{\"success\":false,\"code\":\"401\",\"message\":\"token expired\"}"), &e),
        CM_ERR_UPSTREAM);
    assert_string_equal(e.msg, "auth file 'iflow-u.json': iflow user info failed: token expired");
    assert_string_equal(af->api_key, "sk-old");
    assert_int_equal(
        cp_authfile_apply_iflow_userinfo(
            af, S("{\"success\":true,\"data\":{\"apiKey\":\"\",\"email\":\"a\"}}"), &e),
        CM_ERR_NOTFOUND);
    assert_string_equal(e.field, "apiKey");
    assert_int_equal(
        cp_authfile_apply_iflow_userinfo(af, S("{\"success\":true,\"data\":{\"apiKey\":5}}"), &e),
        CM_ERR_INVAL);
    assert_int_equal(cp_authfile_apply_iflow_userinfo(af, S("not json"), &e), CM_ERR_PARSE);
    assert_null(af->email);
    /* no email in the file: phone is used when the answer has no email */
    assert_int_equal(cp_authfile_apply_iflow_userinfo(
                         af,
                         S("{\"success\":true,\"code\":\"200\",\"data\":{\"apiKey\":\"sk-new\","
                           "\"email\":\"\",\"phone\":\"13800000000\"}}"),
                         &e),
                     CM_OK);
    assert_string_equal(af->api_key, "sk-new");
    assert_string_equal(af->email, "13800000000");
    /* an email already there is kept */
    assert_int_equal(
        cp_authfile_apply_iflow_userinfo(
            af, S("{\"success\":true,\"data\":{\"apiKey\":\"sk-3\",\"email\":\"z@e\"}}"), &e),
        CM_OK);
    assert_string_equal(af->email, "13800000000");
    assert_int_equal(cp_authfile_serialize(af, &out, &len), CM_OK);
    j = parse_json(out, len);
    assert_string_equal(tree_str(j, "api_key"), "sk-3");
    assert_string_equal(tree_str(j, "email"), "13800000000");
    assert_string_equal(tree_str(j, "access_token"), "iat");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "x"));
    cJSON_Delete(j);
    cm_free(out);
    cp_authfile_free(af);
    /* other providers refuse it */
    af = parse_str("qwen.json", "{\"type\":\"qwen\"}");
    assert_int_equal(cp_authfile_apply_iflow_userinfo(
                         af, S("{\"success\":true,\"data\":{\"apiKey\":\"k\"}}"), &e),
                     CM_ERR_INVAL);
    cp_authfile_free(af);
}

static void t_login_names(void **state)
{
    static const struct {
        const char *provider, *email, *account, *plan, *want;
    } cases[] = {
        {"codex", "a@b.com", "acc", NULL, "codex-a@b.com.json"},
        {"codex", "a@b.com", "acc", "", "codex-a@b.com.json"},
        {"codex", "a@b.com", "acc", " -- ", "codex-a@b.com.json"},
        {"codex", "a@b.com", "acc", "free", "codex-a@b.com-free.json"},
        {"codex", "a@b.com", "acc", "plus", "codex-a@b.com-plus.json"},
        {"codex", "a@b.com", "acc", "pro", "codex-a@b.com-pro.json"},
        {"codex", "a@b.com", "acc", "Plus", "codex-a@b.com-plus.json"},
        {"codex", "a@b.com", "acc", " Pro Lite__2 ", "codex-a@b.com-pro-lite-2.json"},
        {"codex", "a@b.com", NULL, "team", "codex-a@b.com-team.json"},
        {"codex", " a/b:c@d.com ", NULL, NULL, "codex-a_b_c@d.com.json"},
        {"claude", "bob@example.com", "ignored", "pro", "claude-bob@example.com.json"},
    };
    char want[128], h[CM_CRYPTO_SHA256_HEX_SIZE];
    char *out = (char *)8;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        out = NULL;
        assert_int_equal(cp_authfile_login_name(cases[i].provider, cases[i].email, cases[i].account,
                                                cases[i].plan, &out),
                         CM_OK);
        assert_string_equal(out, cases[i].want);
        cm_free(out);
    }
    /* team: the account hash, computed here and as a fixed vector */
    cm_crypto_sha256_hex(JWT_ACCOUNT, strlen(JWT_ACCOUNT), h);
    snprintf(want, sizeof want, "codex-%.8s-alice@example.com-team.json", h);
    assert_int_equal(
        cp_authfile_login_name("codex", "alice@example.com", JWT_ACCOUNT, "Team", &out), CM_OK);
    assert_string_equal(out, want);
    assert_string_equal(out, "codex-bfa17798-alice@example.com-team.json");
    cm_free(out);
    out = (char *)8;
    assert_int_equal(cp_authfile_login_name("codex", "", NULL, NULL, &out), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_login_name("codex", "  ", NULL, NULL, &out), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_login_name("gemini", "a@b", NULL, NULL, &out), CM_ERR_INVAL);
    assert_int_equal(cp_authfile_login_name("codex", NULL, NULL, NULL, &out), CM_ERR_INVAL);
    assert_ptr_equal(out, (char *)8);
}

static void t_auth_index(void **state)
{
    static const char *const names[] = {"codex-alice@example.com-plus.json", "x.json", "",
                                        "claude-bob@example.com.json"};
    char idx[CP_AUTHFILE_INDEX_SIZE];
    char longname[CP_AUTHFILE_NAME_MAX + 2];
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_int_equal(cp_authfile_auth_index(names[i], idx), CM_OK);
        expect_index(names[i], idx);
    }
    assert_int_equal(cp_authfile_auth_index("codex-alice@example.com-plus.json", idx), CM_OK);
    assert_string_equal(idx, "66d13d85650d8873");
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(cp_authfile_auth_index(longname, idx), CM_ERR_LIMIT);
    longname[CP_AUTHFILE_NAME_MAX] = '\0';
    assert_int_equal(cp_authfile_auth_index(longname, idx), CM_OK);
    expect_index(longname, idx);
}

static void t_describe(void **state)
{
    struct cp_authfile *af = parse_fixture("codex-alice@example.com-plus.json");
    char buf[256], tiny[8];
    (void)state;
    cp_authfile_describe(af, buf, sizeof buf);
    assert_string_equal(buf, "codex alice@example.com (codex-alice@example.com-plus.json)");
    assert_null(strstr(buf, "eyJ"));
    assert_null(strstr(buf, "rt_"));
    cp_authfile_describe(af, tiny, sizeof tiny);
    assert_string_equal(tiny, "codex a");
    cp_authfile_free(af);
    af = parse_str("n.json", "{\"type\":\"claude\",\"access_token\":\"secret-token\"}");
    cp_authfile_describe(af, buf, sizeof buf);
    assert_string_equal(buf, "claude (no email) (n.json)");
    cp_authfile_free(af);
    cp_authfile_describe(NULL, buf, sizeof buf);
    assert_string_equal(buf, "(none)");
}

/* ---- OOM walks ---- */

static void t_oom_parse(void **state)
{
    size_t len;
    char *data = read_fixture("codex-alice@example.com-plus.json", &len);
    int done = 0;
    (void)state;
    for (long k = 1; k < 5000 && !done; k++) {
        struct cp_authfile *af = (struct cp_authfile *)8;
        struct cp_authfile_err e;
        int rc;
        cm_alloc_fail_at(k);
        rc = cp_authfile_parse("codex-alice@example.com-plus.json", data, len, &af, &e);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            done = 1;
            assert_string_equal(af->account_id, JWT_ACCOUNT);
            cp_authfile_free(af);
        } else {
            if (rc != CM_ERR_NOMEM)
                fail_msg("k=%ld: rc %d (%s)", k, rc, e.msg);
            assert_int_equal(e.rc, CM_ERR_NOMEM);
            assert_ptr_equal(af, (struct cp_authfile *)8);
        }
    }
    assert_true(done);
    cm_free(data);
}

static void t_oom_refresh_and_write(void **state)
{
    char *jwt = make_jwt("{\"email\":\"n@example.com\",\"https://api.openai.com/auth\":"
                         "{\"chatgpt_account_id\":\"acc-n\",\"chatgpt_plan_type\":\"pro\"}}");
    char resp[1024];
    char *dir = tmpdir(), path[512];
    int done = 0;
    (void)state;
    snprintf(resp, sizeof resp,
             "{\"access_token\":\"A2\",\"refresh_token\":\"R2\",\"id_token\":\"%s\","
             "\"expires_in\":3600}",
             jwt);
    snprintf(path, sizeof path, "%s/f.json", dir);
    for (long k = 1; k < 5000 && !done; k++) {
        struct cp_authfile *af = parse_fixture("codex-alice@example.com-plus.json");
        char *before = NULL, *after = NULL, *name = (char *)8;
        struct cp_authfile_err e;
        int rc, refreshed;
        assert_int_equal(cp_authfile_serialize(af, &before, NULL), CM_OK);
        cm_alloc_fail_at(k);
        rc = cp_authfile_apply_refresh(af, resp, strlen(resp), NULL, &e);
        refreshed = rc == CM_OK;
        if (rc == CM_OK)
            rc = cp_authfile_serialize(af, &after, NULL);
        if (rc == CM_OK)
            rc = cp_authfile_write(path, after, strlen(after));
        if (rc == CM_OK)
            rc = cp_authfile_login_name("codex", af->email, af->account_id, "team", &name);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            done = 1;
            assert_string_equal(af->access_token, "A2");
            assert_string_equal(af->refresh_token, "R2");
            cm_free(name);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
            assert_ptr_equal(name, (char *)8);
            if (!refreshed)
                assert_int_equal(e.rc, CM_ERR_NOMEM);
            if (!refreshed) {
                /* the refresh itself failed: nothing changed */
                char *now = NULL;
                assert_int_equal(cp_authfile_serialize(af, &now, NULL), CM_OK);
                assert_string_equal(before, now);
                cm_free(now);
            }
        }
        cm_free(before);
        cm_free(after);
        cp_authfile_free(af);
    }
    assert_true(done);
    unlink(path);
    assert_int_equal(count_entries(dir), 0);
    rmdir(dir);
    cm_free(dir);
    cm_free(jwt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_codex_fixture),
        cmocka_unit_test(t_claude_fixture),
        cmocka_unit_test(t_unsupported_providers),
        cmocka_unit_test(t_jwt_claims),
        cmocka_unit_test(t_knobs),
        cmocka_unit_test(t_rfc3339),
        cmocka_unit_test(t_refresh_lead_codex),
        cmocka_unit_test(t_refresh_lead_claude),
        cmocka_unit_test(t_refresh_short_lived_at_half_life),
        cmocka_unit_test(t_refresh_unknown_expiry),
        cmocka_unit_test(t_apply_refresh_codex),
        cmocka_unit_test(t_apply_refresh_claude),
        cmocka_unit_test(t_apply_refresh_errors),
        cmocka_unit_test(t_serialize_roundtrip),
        cmocka_unit_test(t_malformed),
        cmocka_unit_test(t_limits),
        cmocka_unit_test(t_write_atomic),
        cmocka_unit_test(t_gemini_parse),
        cmocka_unit_test(t_qwen_iflow_parse),
        cmocka_unit_test(t_apply_refresh_gemini),
        cmocka_unit_test(t_apply_refresh_qwen),
        cmocka_unit_test(t_apply_refresh_iflow),
        cmocka_unit_test(t_iflow_userinfo),
        cmocka_unit_test(t_login_names),
        cmocka_unit_test(t_auth_index),
        cmocka_unit_test(t_describe),
        cmocka_unit_test(t_oom_parse),
        cmocka_unit_test(t_oom_refresh_and_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
