/* SPDX-License-Identifier: MIT */
/*
 * test_claude_provider.c - the Claude upstream shape: the headers a /v1/messages call
 * carries (OAuth vs API key, client UA, stream Accept, auth-file headers), the beta list,
 * the body rules (model suffix, max_tokens, thinking vs tool_choice, cache_control cap and
 * injection, stream forcing), cloaking (billing block with its fingerprint, Claude Code
 * line, caller system text moved, metadata.user_id), the cch xxHash64 signature, the
 * error -> scheduler outcome mapping, usage, and an OOM walk. The expected fingerprints
 * and hashes were computed independently with Python (hashlib, tests/fakes/fakelib.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "providers/claude.h"
#include "tst_support.h"

#define OAT "sk-ant-oat01-secret-token"

static size_t header_count(const struct cp_upreq *r, const char *name)
{
    size_t n = strlen(name), k = 0;
    for (size_t i = 0; i < r->n_headers; i++)
        k += strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':';
    return k;
}

/* Deterministic "random" bytes: 0, 1, 2, ... */
static int counter_rng(void *ud, void *buf, size_t n)
{
    unsigned *c = ud;
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)buf)[i] = (unsigned char)(*c)++;
    return CM_OK;
}

static int failing_rng(void *ud, void *buf, size_t n)
{
    (void)ud;
    (void)buf;
    (void)n;
    return CM_ERR_INTERNAL;
}

static cJSON *parse(const char *s)
{
    cJSON *j = NULL;
    assert_int_equal(cm_json_parse(s, strlen(s), NULL, &j, NULL), CM_OK);
    return j;
}

/* Runs cp_claude_prepare on @p in and parses the printed body into *@p outj. */
static void prep(const char *in, const struct cp_claude_prep *p, struct cp_claude_prepared *pp,
                 cJSON **outj)
{
    cJSON *b = parse(in);
    struct cp_tr_err e;
    assert_int_equal(cp_claude_prepare(b, p, pp, &e), CM_OK);
    cJSON_Delete(b);
    assert_int_equal(strlen(pp->body), pp->len);
    *outj = parse(pp->body);
}

static cJSON *at(const cJSON *j, const char *path)
{
    /* "a.b.2.c": object keys and array indexes */
    char buf[256], *save = NULL, *tok;
    const cJSON *cur = j;
    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(cur))
            cur = cJSON_GetArrayItem(cur, (int)strtol(tok, NULL, 10));
        else
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    }
    return (cJSON *)(uintptr_t)cur;
}

static const char *str_at(const cJSON *j, const char *path)
{
    const cJSON *v = at(j, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int count_cc(const cJSON *body)
{
    const cJSON *it, *m;
    int n = 0;
    cJSON_ArrayForEach(it, at(body, "tools")) n += at(it, "cache_control") != NULL;
    if (cJSON_IsArray(at(body, "system")))
        cJSON_ArrayForEach(it, at(body, "system")) n += at(it, "cache_control") != NULL;
    cJSON_ArrayForEach(m, at(body, "messages"))
    {
        if (cJSON_IsArray(at(m, "content")))
            cJSON_ArrayForEach(it, at(m, "content")) n += at(it, "cache_control") != NULL;
    }
    return n;
}

/* ---- headers ---- */

static void build_headers_oauth(void **state)
{
    struct cp_authstore_cred c = {.id = "claude-a@b.json", .access_token = OAT};
    struct cp_claude_hdrs h = {.betas = "claude-code-20250219,oauth-2025-04-20",
                               .stream = 1,
                               .client_ua = "curl/8",
                               .request_id = "rid-1"};
    struct cp_upreq r = {0};
    char sess[37];
    static const char *const want[][2] = {
        {"Content-Type", "application/json"},
        {"Authorization", "Bearer " OAT},
        {"Anthropic-Version", "2023-06-01"},
        {"Anthropic-Beta", "claude-code-20250219,oauth-2025-04-20"},
        {"X-App", "cli"},
        {"X-Stainless-Retry-Count", "0"},
        {"X-Stainless-Runtime", "node"},
        {"X-Stainless-Lang", "js"},
        {"X-Stainless-Timeout", "600"},
        {"X-Stainless-Runtime-Version", "v24.3.0"},
        {"X-Stainless-Package-Version", "0.74.0"},
        {"X-Stainless-Os", "MacOS"},
        {"X-Stainless-Arch", "arm64"},
        {"X-Claude-Code-Session-Id", NULL},
        {"x-client-request-id", "rid-1"},
        {"User-Agent", "claude-cli/2.1.63 (external, cli)"},
        {"Connection", "keep-alive"},
        {"Accept", "text/event-stream"},
        {"Accept-Encoding", "identity"},
    };
    (void)state;
    assert_int_equal(cp_claude_build(NULL, &c, &h, &r), CM_OK);
    assert_string_equal(r.url, "https://api.anthropic.com/v1/messages?beta=true");
    assert_int_equal(r.n_headers, sizeof want / sizeof want[0]);
    cp_claude_session_id(c.id, sess);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "%s: %s", want[i][0], want[i][1] ? want[i][1] : sess);
        assert_string_equal(r.headers[i], line);
    }
    assert_null(tst_header(&r, "x-api-key"));
    cp_upreq_cleanup(&r);

    /* other host: no x-client-request-id; trailing '/' dropped; non-stream Accept */
    h.stream = 0;
    assert_int_equal(cp_claude_build("http://127.0.0.1:9/", &c, &h, &r), CM_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/v1/messages?beta=true");
    assert_null(tst_header(&r, "x-client-request-id"));
    assert_string_equal(tst_header(&r, "Accept"), "application/json");
    assert_null(tst_header(&r, "Accept-Encoding"));
    cp_upreq_cleanup(&r);

    c.access_token = "";
    assert_int_equal(cp_claude_build(NULL, &c, &h, &r), CM_ERR_INVAL);
    assert_int_equal(cp_claude_build(NULL, NULL, &h, &r), CM_ERR_INVAL);
}

static void build_headers_api_key(void **state)
{
    struct cp_authstore_cred c = {.id = "claude-key.json", .access_token = "sk-ant-api03-key"};
    struct cp_claude_hdrs h = {.betas = "x"};
    struct cp_upreq r = {0};
    (void)state;
    assert_int_equal(cp_claude_build("https://API.anthropic.com", &c, &h, &r), CM_OK);
    assert_string_equal(tst_header(&r, "x-api-key"), "sk-ant-api03-key");
    assert_null(tst_header(&r, "Authorization"));
    assert_string_equal(tst_header(&r, "Anthropic-Dangerous-Direct-Browser-Access"), "true");
    cp_upreq_cleanup(&r);
    /* an API key elsewhere (a relay) goes as Bearer */
    assert_int_equal(cp_claude_build("https://relay.example/anthropic", &c, &h, &r), CM_OK);
    assert_string_equal(r.url, "https://relay.example/anthropic/v1/messages?beta=true");
    assert_string_equal(tst_header(&r, "Authorization"), "Bearer sk-ant-api03-key");
    assert_null(tst_header(&r, "x-api-key"));
    assert_null(tst_header(&r, "Anthropic-Dangerous-Direct-Browser-Access"));
    cp_upreq_cleanup(&r);
}

static void build_headers_client_and_file(void **state)
{
    char *names[] = {"X-Extra", "accept", "Anthropic-Version"};
    char *values[] = {"1", "text/html", "2099-01-01"};
    struct cp_authfile af = {.header_names = names, .header_values = values, .n_headers = 3};
    struct cp_authstore_cred c = {.id = "claude-a.json", .access_token = OAT, .af = &af};
    struct cp_claude_hdrs h = {.betas = "b",
                               .stream = 1,
                               .client_ua = "claude-cli/2.0.1 (x)",
                               .client_version = "2023-01-01"};
    struct cp_upreq r = {0};
    (void)state;
    assert_int_equal(cp_claude_build(NULL, &c, &h, &r), CM_OK);
    assert_string_equal(tst_header(&r, "User-Agent"), "claude-cli/2.0.1 (x)"); /* kept */
    assert_string_equal(tst_header(&r, "X-Extra"), "1");
    assert_string_equal(tst_header(&r, "Anthropic-Version"), "2099-01-01"); /* file last */
    assert_string_equal(cp_upreq_get(&r, "Accept"), "text/event-stream");   /* stream forced */
    assert_int_equal(header_count(&r, "accept"), 1);
    assert_int_equal(header_count(&r, "anthropic-version"), 1);
    cp_upreq_cleanup(&r);
    af.n_headers = 0;
    assert_int_equal(cp_claude_build(NULL, &c, &h, &r), CM_OK);
    assert_string_equal(tst_header(&r, "Anthropic-Version"), "2023-01-01"); /* client wins */
    cp_upreq_cleanup(&r);
}

static void session_id_stable(void **state)
{
    char a[37], b[37], c[37];
    (void)state;
    cp_claude_session_id("claude-a.json", a);
    cp_claude_session_id("claude-a.json", b);
    cp_claude_session_id("claude-b.json", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_int_equal(a[14], '4');
    cp_claude_session_id(NULL, c);
    assert_int_equal(strlen(c), 36);
}

static void oauth_token_kind(void **state)
{
    (void)state;
    assert_true(cp_claude_is_oauth_token("sk-ant-oat01-abc"));
    assert_false(cp_claude_is_oauth_token("sk-ant-api03-abc"));
    assert_false(cp_claude_is_oauth_token(NULL));
}

/* ---- betas ---- */

static void betas(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1, .oauth = 1};
    struct cp_claude_prepared pp;
    cJSON *j;
    (void)state;
    p.client_beta = " fine-grained-tool-streaming-2025-05-14 ,claude-code-20250219,,x-1";
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[],\"betas\":[\"x-1\",\"body-2\"]}", &p,
         &pp, &j);
    assert_string_equal(pp.betas, "fine-grained-tool-streaming-2025-05-14,claude-code-20250219,x-1,"
                                  "oauth-2025-04-20,interleaved-thinking-2025-05-14,body-2");
    assert_null(at(j, "betas")); /* moved out of the body */
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* no client header: the v6 default list (OAuth), and the 1M switch */
    p.client_beta = NULL;
    p.want_1m = 1;
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}", &p, &pp, &j);
    assert_string_equal(pp.betas, CP_CLAUDE_DEFAULT_BETAS ",context-1m-2025-08-07");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* API key: no oauth beta in the default list */
    p.oauth = 0;
    p.want_1m = 0;
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[],\"betas\":\"a,b\"}", &p, &pp, &j);
    assert_null(strstr(pp.betas, "oauth-2025-04-20"));
    assert_non_null(strstr(pp.betas, "claude-code-20250219"));
    assert_non_null(strstr(pp.betas, "interleaved-thinking-2025-05-14"));
    assert_non_null(strstr(pp.betas, ",a,b"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
}

static void betas_invalid(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1};
    struct cp_claude_prepared pp = {0};
    struct cp_tr_err e;
    cJSON *b = parse("{\"model\":\"m\",\"messages\":[],\"betas\":[\"a\",3]}");
    char big[CP_CLAUDE_BETAS_MAX + 10];
    (void)state;
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INVAL);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.field, "betas[1]");
    assert_null(pp.body);
    cJSON_Delete(b);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    p.client_beta = big;
    b = parse("{\"model\":\"m\",\"messages\":[]}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_LIMIT);
    assert_int_equal(e.status, 400);
    cJSON_Delete(b);
}

/* ---- body rules ---- */

static void max_tokens_and_thinking(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1};
    struct cp_claude_prepared pp;
    struct cp_tr_err e;
    cJSON *j, *b;
    (void)state;
    prep("{\"model\":\"claude-sonnet-4-5-20250929\",\"messages\":[]}", &p, &pp, &j);
    assert_int_equal(at(j, "max_tokens")->valuedouble, 64000);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-opus-4-1-20250805\",\"messages\":[]}", &p, &pp, &j);
    assert_int_equal(at(j, "max_tokens")->valuedouble, 32000);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"some-new-model\",\"messages\":[]}", &p, &pp, &j);
    assert_int_equal(at(j, "max_tokens")->valuedouble, CP_CLAUDE_MAX_TOKENS_FALLBACK);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    p.max_tokens_default = 777;
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}", &p, &pp, &j);
    assert_int_equal(at(j, "max_tokens")->valuedouble, 777);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":50,\"messages\":[]}", &p, &pp, &j);
    assert_int_equal(at(j, "max_tokens")->valuedouble, 50);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    b = parse("{\"model\":\"m\",\"max_tokens\":\"x\",\"messages\":[]}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INVAL);
    assert_string_equal(e.field, "max_tokens");
    cJSON_Delete(b);
    assert_int_equal(cp_claude_max_tokens("claude-3-5-haiku-20241022"), 8192);
    assert_int_equal(cp_claude_max_tokens("claude-opus-4-20250514"), 32000);
    assert_int_equal(cp_claude_max_tokens("claude-haiku-4-5-20251001"), 64000);
    assert_int_equal(cp_claude_max_tokens(NULL), 1024);

    /* thinking goes when a tool is forced, stays with auto */
    p.max_tokens_default = 0;
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[],\"tool_choice\":{\"type\":\"any\"},"
         "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}",
         &p, &pp, &j);
    assert_null(at(j, "thinking"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[],\"tool_choice\":{\"type\":\"tool\","
         "\"name\":\"f\"},\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}",
         &p, &pp, &j);
    assert_null(at(j, "thinking"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[],\"tool_choice\":{\"type\":\"auto\"},"
         "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}",
         &p, &pp, &j);
    assert_string_equal(str_at(j, "thinking.type"), "enabled");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
}

static void model_suffix(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1};
    struct cp_claude_prepared pp;
    struct cp_tr_err e;
    cJSON *j, *b;
    (void)state;
    prep("{\"model\":\"claude-sonnet-4-5(16384)\",\"messages\":[],"
         "\"thinking\":{\"type\":\"disabled\"}}",
         &p, &pp, &j);
    assert_string_equal(str_at(j, "model"), "claude-sonnet-4-5");
    assert_string_equal(str_at(j, "thinking.type"), "enabled"); /* suffix wins */
    assert_int_equal(at(j, "thinking.budget_tokens")->valuedouble, 16384);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-5(minimal)\",\"messages\":[]}", &p, &pp, &j);
    assert_int_equal(at(j, "thinking.budget_tokens")->valuedouble, 1024); /* Anthropic's min */
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-5(none)\",\"messages\":[]}", &p, &pp, &j);
    assert_string_equal(str_at(j, "thinking.type"), "disabled");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    /* a budget that does not fit under max_tokens is lowered, or thinking dropped */
    prep("{\"model\":\"claude-sonnet-4-5(high)\",\"max_tokens\":4000,\"messages\":[]}", &p, &pp,
         &j);
    assert_int_equal(at(j, "thinking.budget_tokens")->valuedouble, 3999);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-5(high)\",\"max_tokens\":1000,\"messages\":[]}", &p, &pp,
         &j);
    assert_string_equal(str_at(j, "thinking.type"), "disabled");
    assert_null(at(j, "thinking.budget_tokens"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    /* adaptive models */
    prep("{\"model\":\"claude-opus-4-6(xhigh)\",\"messages\":[]}", &p, &pp, &j);
    assert_string_equal(str_at(j, "model"), "claude-opus-4-6");
    assert_string_equal(str_at(j, "thinking.type"), "adaptive");
    assert_string_equal(str_at(j, "output_config.effort"), "max");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-6(minimal)\",\"output_config\":{\"effort\":\"high\"},"
         "\"messages\":[]}",
         &p, &pp, &j);
    assert_string_equal(str_at(j, "output_config.effort"), "low");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    prep("{\"model\":\"claude-sonnet-4-6(auto)\",\"messages\":[]}", &p, &pp, &j);
    assert_string_equal(str_at(j, "output_config.effort"), "high");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    b = parse("{\"model\":\"claude-sonnet-4-5(turbo)\",\"messages\":[]}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INVAL);
    assert_string_equal(e.field, "model");
    assert_int_equal(e.status, 400);
    cJSON_Delete(b);
    b = parse("{\"messages\":[]}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INVAL);
    cJSON_Delete(b);
}

static void stream_forcing(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1};
    struct cp_claude_prepared pp;
    cJSON *j;
    (void)state;
    prep("{\"model\":\"m\",\"messages\":[],\"stream\":false}", &p, &pp, &j);
    assert_false(pp.stream);
    assert_true(cJSON_IsFalse(at(j, "stream")));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    p.client_stream = 1;
    prep("{\"model\":\"m\",\"messages\":[],\"stream\":true}", &p, &pp, &j);
    assert_true(pp.stream);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    p.client_stream = 0;
    p.from_claude = 0; /* translated from another format: always a stream upstream */
    prep("{\"model\":\"m\",\"messages\":[]}", &p, &pp, &j);
    assert_true(pp.stream);
    assert_true(cJSON_IsTrue(at(j, "stream")));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
}

static void cache_control_inject(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1};
    struct cp_claude_prepared pp;
    cJSON *j;
    (void)state;
    prep("{\"model\":\"m\",\"system\":\"be brief\",\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
         "\"content\":[{\"type\":\"text\",\"text\":\"yo\"}]},{\"role\":\"user\","
         "\"content\":\"again\"}]}",
         &p, &pp, &j);
    assert_int_equal(count_cc(j), 3);
    assert_string_equal(str_at(j, "tools.1.cache_control.type"), "ephemeral");
    assert_null(at(j, "tools.0.cache_control"));
    assert_string_equal(str_at(j, "system.0.text"), "be brief"); /* string -> block */
    assert_string_equal(str_at(j, "system.0.cache_control.type"), "ephemeral");
    assert_string_equal(str_at(j, "messages.2.content.0.text"), "again");
    assert_string_equal(str_at(j, "messages.2.content.0.cache_control.type"), "ephemeral");
    assert_true(cJSON_IsString(at(j, "messages.0.content")));  /* untouched */
    assert_int_equal(strncmp(pp.body, "{\"system\":", 10), 0); /* system first */
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* a thinking block last: nothing put on it */
    prep("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
         "\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"}]}]}",
         &p, &pp, &j);
    assert_int_equal(count_cc(j), 0);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* one present: no injection */
    prep("{\"model\":\"m\",\"system\":[{\"type\":\"text\",\"text\":\"s\",\"cache_control\":"
         "{\"type\":\"ephemeral\"}}],\"tools\":[{\"name\":\"a\"}],\"messages\":[{\"role\":"
         "\"user\",\"content\":\"hi\"}]}",
         &p, &pp, &j);
    assert_int_equal(count_cc(j), 1);
    assert_null(at(j, "tools.0.cache_control"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
}

static void cache_control_cap(void **state)
{
    struct cp_claude_prep p = {.client_ua = "claude-cli/2", .from_claude = 1};
    struct cp_claude_prepared pp;
    cJSON *j;
    (void)state;
#define CC "\"cache_control\":{\"type\":\"ephemeral\"}"
#define CC1H "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}"
    prep("{\"model\":\"m\",\"tools\":[{\"name\":\"a\"," CC "},{\"name\":\"b\"," CC "}],"
         "\"system\":[{\"type\":\"text\",\"text\":\"s\"," CC "}],"
         "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"1\"," CC1H
         "},{\"type\":\"text\",\"text\":\"2\"," CC "}]},{\"role\":\"user\",\"content\":[{\"type\":"
         "\"text\",\"text\":\"3\"," CC1H "}]}]}",
         &p, &pp, &j);
    assert_int_equal(count_cc(j), CP_CLAUDE_MAX_CACHE_CONTROL);
    assert_null(at(j, "tools.0.cache_control")); /* the earliest two dropped */
    assert_null(at(j, "tools.1.cache_control"));
    assert_non_null(at(j, "system.0.cache_control"));
    /* 1h after a 5m breakpoint loses its ttl */
    assert_null(at(j, "messages.0.content.0.cache_control.ttl"));
    assert_null(at(j, "messages.1.content.0.cache_control.ttl"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    /* 1h first is kept */
    prep("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
         "\"text\":\"1\"," CC1H "},{\"type\":\"text\",\"text\":\"2\"," CC "}]}]}",
         &p, &pp, &j);
    assert_string_equal(str_at(j, "messages.0.content.0.cache_control.ttl"), "1h");
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
#undef CC
#undef CC1H
}

/* ---- cloaking and signing ---- */

/* Checks the cch of a printed body the way a verifier does (tests/fakes/fake_claude.py). */
static void assert_signed(const char *body, size_t len)
{
    char *copy = cm_strndup(body, len), want[8];
    const char *p = strstr(body, "cch=");
    size_t at_ = (size_t)(p - body) + 4;
    assert_non_null(p);
    assert_non_null(copy);
    assert_int_equal(body[at_ + 5], ';');
    memcpy(copy + at_, "00000", 5);
    snprintf(want, sizeof want, "%05x",
             (unsigned)(XXH64(copy, len, 0x6E52736AC806831EULL) & 0xFFFFF));
    assert_memory_equal(body + at_, want, 5);
    assert_memory_not_equal(body + at_, "00000", 5); /* 1 in 2^20 chance to be wrong */
    cm_free(copy);
}

static bool user_id_shape(const char *s)
{
    if (!s || strlen(s) != 159 || strncmp(s, "user_", 5) != 0)
        return false;
    for (int i = 5; i < 69; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return false;
    return strncmp(s + 69, "_account_", 9) == 0 && strncmp(s + 114, "_session_", 9) == 0 &&
           s[78 + 8] == '-' && s[123 + 23] == '-';
}

static void cloaking(void **state)
{
    unsigned ctr = 0;
    struct cp_claude_prep p = {
        .client_ua = "OpenAI/Python 1.0", .oauth = 1, .rng = counter_rng, .rng_ud = &ctr};
    struct cp_claude_prepared pp;
    cJSON *j;
    (void)state;
    prep("{\"model\":\"claude-sonnet-4-5\",\"system\":[{\"type\":\"text\",\"text\":"
         "\"You are a helpful assistant that answers briefly.\"},{\"type\":\"text\",\"text\":"
         "\"Second.\"}],\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
         "\"metadata\":{\"user_id\":\"u1\"}}",
         &p, &pp, &j);
    assert_true(pp.cloaked);
    assert_true(pp.signed_cch);
    /* fp = sha256("59cf53e54c78" "a" " " "s" "2.1.63")[:3] = 2ca (Python hashlib) */
    assert_int_equal(strncmp(str_at(j, "system.0.text"),
                             "x-anthropic-billing-header: cc_version=2.1.63.2ca; "
                             "cc_entrypoint=cli; cch=",
                             strlen("x-anthropic-billing-header: cc_version=2.1.63.2ca; "
                                    "cc_entrypoint=cli; cch=")),
                     0);
    assert_string_equal(str_at(j, "system.1.text"), CP_CLAUDE_AGENT_LINE);
    assert_non_null(str_at(j, "system.2.text"));
    assert_null(at(j, "system.3"));
    assert_string_equal(str_at(j, "system.2.cache_control.type"), "ephemeral");
    assert_string_equal(str_at(j, "messages.0.content.0.text"),
                        "<system-reminder>\nYou are a helpful assistant that answers briefly."
                        "\n\nSecond.\n</system-reminder>");
    assert_string_equal(str_at(j, "messages.0.content.1.text"), "hello");
    /* counter bytes 0..63: hex of 0..31, uuids of 32..47 and 48..63 (v4) */
    assert_string_equal(str_at(j, "metadata.user_id"),
                        "user_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                        "_account_20212223-2425-4627-a829-2a2b2c2d2e2f"
                        "_session_30313233-3435-4637-b839-3a3b3c3d3e3f");
    assert_true(user_id_shape(str_at(j, "metadata.user_id")));
    assert_true(pp.stream); /* translated source (from_claude = 0) */
    {
        static const char head[] = "{\"system\":[{\"type\":\"text\",\"text\":\"x-anthropic-";
        assert_memory_equal(pp.body, head, sizeof head - 1);
    }
    assert_signed(pp.body, pp.len);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
}

static void cloaking_variants(void **state)
{
    unsigned ctr = 0;
    const char *good =
        "user_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_account_"
        "12345678-1234-4234-8234-123456789abc_session_"
        "12345678-1234-4234-8234-123456789abd";
    char in[1024];
    struct cp_claude_prep p = {.rng = counter_rng, .rng_ud = &ctr};
    struct cp_claude_prepared pp;
    struct cp_tr_err e;
    cJSON *j, *b;
    (void)state;
    /* string system with non-ASCII runes: fp c24; no user message: one is created; a
       valid user_id is kept */
    snprintf(in, sizeof in,
             "{\"model\":\"claude-opus-4-5\",\"system\":\"H\\u00e9llo w\\u00f6rld, "
             "\\u00fcn\\u00efcode fa\\u00e7ade text\",\"messages\":[{\"role\":\"assistant\","
             "\"content\":\"x\"}],\"metadata\":{\"user_id\":\"%s\"}}",
             good);
    prep(in, &p, &pp, &j);
    assert_true(pp.cloaked);
    assert_non_null(strstr(str_at(j, "system.0.text"), "cc_version=2.1.63.c24;"));
    assert_string_equal(str_at(j, "messages.0.role"), "user");
    assert_string_equal(str_at(j, "messages.0.content.0.text"),
                        "<system-reminder>\nH\xc3\xa9llo w\xc3\xb6rld, \xc3\xbcn\xc3\xaf"
                        "code fa\xc3\xa7"
                        "ade text\n</system-reminder>");
    assert_string_equal(str_at(j, "messages.1.role"), "assistant");
    assert_string_equal(str_at(j, "metadata.user_id"), good);
    assert_signed(pp.body, pp.len);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* no system at all: fp of "" (all '0') = 257; nothing moved */
    prep("{\"model\":\"claude-opus-4-5\",\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":\"text\",\"text\":\"q\"}]}]}",
         &p, &pp, &j);
    assert_non_null(strstr(str_at(j, "system.0.text"), "cc_version=2.1.63.257;"));
    assert_string_equal(str_at(j, "messages.0.content.0.text"), "q");
    assert_null(at(j, "messages.0.content.1"));
    assert_true(user_id_shape(str_at(j, "metadata.user_id")));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* claude-3-5-haiku is never cloaked */
    prep("{\"model\":\"claude-3-5-haiku-20241022\",\"system\":\"s\",\"messages\":[]}", &p, &pp, &j);
    assert_false(pp.cloaked);
    assert_false(pp.signed_cch);
    assert_string_equal(str_at(j, "system.0.text"), "s");
    assert_null(at(j, "metadata"));
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* a Claude Code client is not cloaked; its own billing block is re-signed */
    p.client_ua = "claude-cli/2.1.70 (external, cli)";
    p.from_claude = 1;
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"cch="
         "12345;\"}],\"system\":[{\"type\":\"text\",\"text\":\"x-anthropic-billing-header: "
         "cc_version=2.1.70.abc; cc_entrypoint=cli; cch=fffff;\"},{\"type\":\"text\",\"text\":"
         "\"mine\"}]}",
         &p, &pp, &j);
    assert_false(pp.cloaked);
    assert_true(pp.signed_cch);
    assert_string_equal(str_at(j, "system.1.text"), "mine");
    assert_string_equal(str_at(j, "messages.0.content.0.text"), "cch=12345;"); /* untouched */
    assert_true(user_id_shape(str_at(j, "metadata.user_id"))); /* signed: one is added */
    assert_signed(pp.body, pp.len);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* modes */
    p.cloak = CP_CLAUDE_CLOAK_ALWAYS;
    prep("{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}", &p, &pp, &j);
    assert_true(pp.cloaked);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
    p.cloak = CP_CLAUDE_CLOAK_NEVER;
    p.client_ua = NULL;
    prep("{\"model\":\"claude-sonnet-4-5\",\"system\":\"s\",\"messages\":[]}", &p, &pp, &j);
    assert_false(pp.cloaked);
    assert_false(pp.signed_cch);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);

    /* bad system type; failing random source */
    p.cloak = CP_CLAUDE_CLOAK_AUTO;
    b = parse("{\"model\":\"claude-sonnet-4-5\",\"system\":5,\"messages\":[]}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INVAL);
    assert_string_equal(e.field, "system");
    cJSON_Delete(b);
    b = parse("{\"model\":\"claude-sonnet-4-5\",\"system\":\"s\",\"messages\":{}}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INVAL);
    assert_string_equal(e.field, "messages");
    cJSON_Delete(b);
    p.rng = failing_rng;
    b = parse("{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}");
    assert_int_equal(cp_claude_prepare(b, &p, &pp, &e), CM_ERR_INTERNAL);
    assert_int_equal(e.status, 500);
    cJSON_Delete(b);
}

/* A fixed body signed by hand with the seed: the known answer from Python's
 * fakelib.xxh64(v, 0x6E52736AC806831E) = f114161dabd1c22a -> cch 1c22a. */
static void cch_known_answer(void **state)
{
    static const char v[] =
        "{\"system\":[{\"type\":\"text\",\"text\":\"x-anthropic-billing-header: "
        "cc_version=2.1.63.abc; cc_entrypoint=cli; cch=00000;\"}]}";
    (void)state;
    assert_true(XXH64(v, sizeof v - 1, CP_CLAUDE_CCH_SEED) == 0xf114161dabd1c22aULL);
    assert_true(XXH64("abc", 3, CP_CLAUDE_CCH_SEED) == 0xceea2ac52c48cf48ULL);
}

/* The whole output of a deterministic cloaked request, fp and cch checked against Python. */
static void cch_full_body(void **state)
{
    unsigned ctr = 0;
    struct cp_claude_prep p = {.oauth = 1, .rng = counter_rng, .rng_ud = &ctr};
    struct cp_claude_prepared pp;
    cJSON *j;
    (void)state;
    prep("{\"model\":\"claude-haiku-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}",
         &p, &pp, &j);
    assert_signed(pp.body, pp.len);
    cJSON_Delete(j);
    cp_claude_prepared_cleanup(&pp);
}

/* ---- outcomes ---- */

static void outcomes(void **state)
{
    static const char raw1[] = "retry-after: 42\0x-other: 1";
    static const char raw2[] = "Retry-After: 10\0anthropic-ratelimit-unified-status: rejected\0"
                               "anthropic-ratelimit-unified-reset: 1000500\0"
                               "anthropic-ratelimit-unified-5h-status: allowed\0"
                               "anthropic-ratelimit-unified-5h-reset: 1009999";
    static const char raw3[] = "anthropic-ratelimit-unified-7d-status: rejected\0"
                               "anthropic-ratelimit-unified-7d-reset: 1970-01-12T14:00:00Z";
    static const char raw4[] = "anthropic-ratelimit-unified-reset: 1970-01-12T13:46:40.5+00:00";
    static const char raw5[] = "anthropic-ratelimit-unified-reset: 999000\0retry-after: soon";
    struct cm_httpc_head h1 = {429, raw1, sizeof raw1}, h2 = {429, raw2, sizeof raw2};
    struct cm_httpc_head h3 = {429, raw3, sizeof raw3}, h4 = {429, raw4, sizeof raw4};
    struct cm_httpc_head h5 = {429, raw5, sizeof raw5};
    const char *rl = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}";
    const char *extra = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                        "\"message\":\"You're out of extra usage. Add more at claude.ai.\"}}";
    const char *over = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}";
    struct cp_sched_outcome o;
    (void)state;
    cp_claude_outcome(429, &h1, rl, strlen(rl), 1000000, &o);
    assert_int_equal(o.status, 429);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 42);
    cp_claude_outcome(429, &h2, rl, strlen(rl), 1000000, &o); /* rejected reset wins, 5h ignored */
    assert_int_equal(o.retry_after_s, 500);
    cp_claude_outcome(429, &h3, rl, strlen(rl), 1000000, &o); /* 14:00 = 1000800 */
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 800);
    cp_claude_outcome(429, &h4, NULL, 0, 1000000, &o); /* no status header: lenient */
    assert_false(o.has_hint);                          /* 13:46:40 is exactly now */
    cp_claude_outcome(429, &h4, NULL, 0, 999000, &o);
    assert_true(o.has_hint);
    assert_int_equal(o.retry_after_s, 1000);
    cp_claude_outcome(429, &h5, NULL, 0, 1000000, &o); /* past reset, bad Retry-After */
    assert_false(o.has_hint);
    cp_claude_outcome(429, NULL, rl, strlen(rl), 1000000, &o); /* no headers: the ladder */
    assert_false(o.has_hint);
    cp_claude_outcome(529, NULL, over, strlen(over), 1000000, &o);
    assert_int_equal(o.status, 503);
    assert_false(o.request_scoped);
    cp_claude_outcome(500, NULL, over, strlen(over), 1000000, &o);
    assert_int_equal(o.status, 503);
    cp_claude_outcome(400, NULL, extra, strlen(extra), 1000000, &o);
    assert_int_equal(o.status, 400);
    assert_true(o.request_scoped);
    cp_claude_outcome(400, NULL, "{\"error\":{\"type\":\"other\"}}", 27, 1000000, &o);
    assert_false(o.request_scoped);
    cp_claude_outcome(422, NULL, "x", 1, 1000000, &o);
    assert_true(o.request_scoped);
    cp_claude_outcome(401, &h1, "{}", 2, 1000000, &o);
    assert_int_equal(o.status, 401);
    assert_false(o.has_hint);
    assert_false(o.request_scoped);
    cp_claude_outcome(403, NULL, NULL, 0, 1000000, &o);
    assert_int_equal(o.status, 403);

    assert_int_equal(cp_claude_error_status("overloaded_error"), 529);
    assert_int_equal(cp_claude_error_status("invalid_request_error"), 400);
    assert_int_equal(cp_claude_error_status("rate_limit_error"), 429);
    assert_int_equal(cp_claude_error_status("nope"), 502);
    assert_int_equal(cp_claude_error_status(NULL), 502);
}

/* ---- usage ---- */

static void usage(void **state)
{
    struct cp_claude_usage acc = {0};
    struct cp_tr_usage u;
    cJSON *a = parse("{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,"
                     "\"cache_read_input_tokens\":12,\"cache_creation_input_tokens\":0,"
                     "\"output_tokens\":1}}}");
    cJSON *b = parse("{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}");
    cJSON *c = parse("{\"type\":\"content_block_delta\"}");
    cJSON *d = parse("{\"type\":\"message\",\"usage\":{\"input_tokens\":5,"
                     "\"cache_creation_input_tokens\":7,\"output_tokens\":2}}");
    (void)state;
    assert_int_equal(cp_claude_usage_feed(&acc, a), 1);
    assert_int_equal(cp_claude_usage_feed(&acc, b), 1);
    assert_int_equal(cp_claude_usage_feed(&acc, c), 0);
    cp_claude_usage_result(&acc, &u);
    assert_int_equal(u.input, 42);
    assert_int_equal(u.output, 9);
    assert_int_equal(u.cached, 12);
    assert_int_equal(u.total, 51);
    memset(&acc, 0, sizeof acc);
    assert_int_equal(cp_claude_usage_feed(&acc, d), 1);
    cp_claude_usage_result(&acc, &u);
    assert_int_equal(u.input, 12);
    assert_int_equal(u.cached, 7); /* no cache read: creation counts */
    assert_int_equal(u.total, 14);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
}

/* ---- OOM ---- */

static void oom_walk(void **state)
{
    static const char in[] =
        "{\"model\":\"claude-sonnet-4-5(8000)\",\"system\":[{\"type\":\"text\",\"text\":\"sys\"}],"
        "\"tools\":[{\"name\":\"a\"}],\"betas\":[\"b1\"],\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"ok\"}]}";
    static const char in2[] = "{\"model\":\"claude-opus-4-6(high)\",\"system\":\"s\",\"messages\":"
                              "[{\"role\":\"assistant\",\"content\":\"x\"}]}";
    const char *const inputs[] = {in, in2};
    char *names[] = {"X-A"};
    char *values[] = {"1"};
    struct cp_authfile af = {.header_names = names, .header_values = values, .n_headers = 1};
    struct cp_authstore_cred c = {.id = "claude-a.json", .access_token = OAT, .af = &af};
    struct cp_claude_hdrs h = {.betas = "b", .stream = 1};
    long n;
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        int ok = 0;
        for (n = 1; n < 5000 && !ok; n++) {
            unsigned ctr = 0;
            struct cp_claude_prep p = {.client_beta = "x", .rng = counter_rng, .rng_ud = &ctr};
            struct cp_claude_prepared pp = {0};
            struct cp_tr_err e;
            cJSON *b = parse(inputs[k]);
            int rc;
            cm_alloc_fail_at(n);
            rc = cp_claude_prepare(b, &p, &pp, &e);
            cm_alloc_fail_at(0);
            cJSON_Delete(b);
            if (rc == CM_OK) {
                assert_signed(pp.body, pp.len);
                cp_claude_prepared_cleanup(&pp);
                ok = 1;
            } else {
                assert_int_equal(rc, CM_ERR_NOMEM);
                assert_int_equal(e.status, 500);
                assert_null(pp.body);
            }
        }
        assert_true(ok);
        assert_true(n > 20);
    }
    for (n = 1; n < 1000; n++) {
        struct cp_upreq r = {0};
        int rc;
        cm_alloc_fail_at(n);
        rc = cp_claude_build(NULL, &c, &h, &r);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            assert_string_equal(tst_header(&r, "X-A"), "1");
            cp_upreq_cleanup(&r);
            break;
        }
        assert_int_equal(rc, CM_ERR_NOMEM);
        assert_null(r.url);
    }
    assert_true(n > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_headers_oauth),
        cmocka_unit_test(build_headers_api_key),
        cmocka_unit_test(build_headers_client_and_file),
        cmocka_unit_test(session_id_stable),
        cmocka_unit_test(oauth_token_kind),
        cmocka_unit_test(betas),
        cmocka_unit_test(betas_invalid),
        cmocka_unit_test(max_tokens_and_thinking),
        cmocka_unit_test(model_suffix),
        cmocka_unit_test(stream_forcing),
        cmocka_unit_test(cache_control_inject),
        cmocka_unit_test(cache_control_cap),
        cmocka_unit_test(cloaking),
        cmocka_unit_test(cloaking_variants),
        cmocka_unit_test(cch_known_answer),
        cmocka_unit_test(cch_full_body),
        cmocka_unit_test(outcomes),
        cmocka_unit_test(usage),
        cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
