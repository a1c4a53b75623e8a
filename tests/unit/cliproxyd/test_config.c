/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - cliproxyd's config: a full CLIProxyAPI config.yaml loads with no
 * warning and reads back, defaults, errors naming the key path, unknown-key warnings,
 * ~ expansion, the api-key and example-key predicates, upstream URLs, hot reload
 * (a bad reload keeps the old config) and OOM on every allocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/cfg.h"
#include "cm/err.h"
#include "cm/log.h"
#include "config.h"

#define HOME_DIR "/home/tester"

/* ---- log capture ---- */

struct capture {
    unsigned warns;
    char text[16384];
    size_t len;
};
static struct capture cap;

static void sink(enum cm_log_level lvl, const char *line, size_t len, void *ud)
{
    (void)ud;
    if (lvl == CM_LOG_WARN)
        cap.warns++;
    if (lvl >= CM_LOG_WARN && cap.len + len < sizeof cap.text) {
        memcpy(cap.text + cap.len, line, len);
        cap.len += len;
        cap.text[cap.len] = '\0';
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    cm_log_set_level(CM_LOG_INFO);
    cm_log_set_stderr(0);
    cm_log_set_sink(sink, NULL);
    setenv("HOME", HOME_DIR, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_alloc_fail_at(0);
    cm_log_set_sink(NULL, NULL);
    cm_log_set_stderr(1);
    return 0;
}

static struct cp_config *load_ok(const char *yaml)
{
    struct cp_config *c = NULL;
    char err[CM_CFG_ERR_MAX];
    int rc = cp_config_load_mem("t.yaml", yaml, strlen(yaml), &c, err, sizeof err);
    if (rc)
        print_error("unexpected failure: %s\n", err);
    assert_int_equal(rc, CM_OK);
    assert_string_equal(err, "");
    assert_non_null(c);
    return c;
}

/* Loads @p yaml expecting failure; @p want must occur in the message. */
static void load_bad(const char *yaml, int want_rc, const char *want)
{
    struct cp_config *c = (struct cp_config *)(uintptr_t)0x1;
    char err[CM_CFG_ERR_MAX];
    int rc = cp_config_load_mem("t.yaml", yaml, strlen(yaml), &c, err, sizeof err);
    assert_int_equal(rc, want_rc);
    assert_ptr_equal(c, (struct cp_config *)(uintptr_t)0x1); /* untouched */
    if (!strstr(err, want))
        print_error("message \"%s\" lacks \"%s\"\n", err, want);
    assert_non_null(strstr(err, want));
}

static void fixture_path(char *buf, size_t n, const char *name)
{
    const char *root = getenv("CM_TEST_DATA");
    assert_non_null(root);
    snprintf(buf, n, "%s/cliproxyd/config/%s", root, name);
}

/* ---- tests ---- */

static void test_full_fixture(void **state)
{
    struct cp_config *c = NULL;
    char path[1024], err[CM_CFG_ERR_MAX];
    (void)state;

    fixture_path(path, sizeof path, "full.yaml");
    assert_int_equal(cp_config_load_file(path, &c, err, sizeof err), CM_OK);
    if (cap.warns)
        print_error("warnings:\n%s", cap.text);
    assert_int_equal(cap.warns, 0);
    assert_int_equal(cap.len, 0); /* no error line either */

    assert_string_equal(c->host, "127.0.0.1");
    assert_int_equal(c->port, 8417);
    assert_string_equal(c->auth_dir, HOME_DIR "/.cli-proxy-api");
    assert_int_equal(c->api_keys_count, 2);
    assert_string_equal(c->api_keys[1], "sk-live-beta-9876543210");
    assert_true(c->debug);
    assert_true(c->logging_to_file);
    assert_string_equal(c->proxy_url, "socks5://user:pass@proxy.example.com:1080/");
    assert_int_equal(c->request_retry, 2);
    assert_int_equal(c->max_retry_interval, 45);
    assert_int_equal(c->max_retry_credentials, 4);
    assert_true(c->disable_cooling);
    assert_int_equal(c->transient_error_cooldown_seconds, 12);
    assert_int_equal(c->routing->strategy, CP_ROUTING_FILL_FIRST);
    assert_true(c->routing->session_affinity);
    assert_true(c->remote_management->allow_remote);
    assert_string_equal(c->remote_management->secret_key, "mgmt-s3cret-value");
    assert_true(c->remote_management->disable_control_panel);
    assert_true(c->usage_statistics_enabled);
    assert_true(c->tls->enable);
    assert_string_equal(c->tls->cert, "/etc/cliproxy/tls/cert.pem");
    assert_string_equal(c->tls->key, "/etc/cliproxy/tls/key.pem");

    /* upstreams: overridden (trailing '/' stripped), partly overridden, defaults */
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_CODEX),
                        "http://127.0.0.1:9001/backend-api/codex");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_CODEX),
                        "http://127.0.0.1:9001/oauth/token");
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_CLAUDE), "http://127.0.0.1:9002");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_CLAUDE),
                        "https://api.anthropic.com/v1/oauth/token");
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_QWEN), "https://portal.qwen.ai/v1");

    /* accepted, kept values */
    assert_true(c->quota_exceeded->switch_project);
    assert_false(c->quota_exceeded->switch_preview_model);
    assert_string_equal(c->pprof->addr, "127.0.0.1:8316");
    assert_int_equal(c->streaming->keepalive_seconds, 15);
    assert_int_equal(c->codex_api_key_count, 1);
    assert_int_equal(c->codex_api_key[0].priority, 3);
    assert_string_equal(c->codex_api_key[0].base_url, "https://relay.example.com/codex");
    assert_int_equal(c->codex_api_key[0].models_count, 1);
    assert_string_equal(c->codex_api_key[0].models[0].alias, "codex-latest");
    assert_int_equal(c->codex_api_key[0].excluded_models_count, 2);
    assert_string_equal(c->codex_api_key[0].excluded_models[1], "*-mini");
    assert_int_equal(c->claude_api_key_count, 2);
    assert_string_equal(c->claude_api_key[1].prefix, "cl");
    assert_int_equal(c->gemini_api_key_count, 2);
    assert_int_equal(c->vertex_api_key_count, 1);
    assert_int_equal(c->openai_compatibility_count, 1);
    assert_string_equal(c->openai_compatibility[0].name, "openrouter");
    assert_int_equal(c->openai_compatibility[0].api_key_entries_count, 2);
    assert_int_equal(c->openai_compatibility[0].models_count, 2);
    assert_int_equal(c->oauth_excluded_models->gemini_cli_count, 2);
    assert_string_equal(c->oauth_excluded_models->gemini_cli[1], "gemini-2.5-*");
    assert_int_equal(c->oauth_excluded_models->kimi_count, 1);
    assert_int_equal(c->oauth_model_alias->codex_count, 1);
    assert_true(c->oauth_model_alias->codex[0].fork);
    assert_non_null(c->payload_);
    assert_non_null(c->ampcode_);
    cp_config_free(c);
}

static void test_defaults_on_empty(void **state)
{
    struct cp_config *c;
    (void)state;

    c = load_ok("");
    assert_string_equal(c->host, "");
    assert_int_equal(c->port, CP_CONFIG_DEFAULT_PORT);
    assert_string_equal(c->auth_dir, HOME_DIR "/.cli-proxy-api");
    assert_int_equal(c->api_keys_count, 0);
    assert_false(c->debug);
    assert_false(c->logging_to_file);
    assert_string_equal(c->proxy_url, "");
    assert_int_equal(c->request_retry, 3);
    assert_int_equal(c->max_retry_interval, 30);
    assert_int_equal(c->max_retry_credentials, 0);
    assert_false(c->disable_cooling);
    assert_int_equal(c->transient_error_cooldown_seconds, 5);
    assert_int_equal(c->routing->strategy, CP_ROUTING_ROUND_ROBIN);
    assert_false(c->remote_management->allow_remote);
    assert_string_equal(c->remote_management->secret_key, "");
    assert_false(c->tls->enable);
    assert_false(c->usage_statistics_enabled);
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_CODEX),
                        "https://chatgpt.com/backend-api/codex");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_CODEX),
                        "https://auth.openai.com/oauth/token");
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_CLAUDE), "https://api.anthropic.com");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_CLAUDE),
                        "https://api.anthropic.com/v1/oauth/token");
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_GEMINI),
                        "https://cloudcode-pa.googleapis.com");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_GEMINI),
                        "https://oauth2.googleapis.com/token");
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_QWEN), "https://portal.qwen.ai/v1");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_QWEN),
                        "https://chat.qwen.ai/api/v1/oauth2/token");
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_IFLOW), "https://apis.iflow.cn/v1");
    assert_string_equal(cp_config_token_url(c, CP_PROVIDER_IFLOW), "https://iflow.cn/oauth/token");
    assert_null(cp_config_base_url(c, CP_PROVIDER__COUNT));
    assert_null(cp_config_token_url(NULL, CP_PROVIDER_CODEX));
    assert_int_equal(cap.warns, 0);
    cp_config_free(c);

    /* explicit zero values are kept where they mean something */
    c = load_ok("request-retry: 0\nmax-retry-interval: 0\n");
    assert_int_equal(c->request_retry, 0);
    assert_int_equal(c->max_retry_interval, 0);
    cp_config_free(c);
}

static void test_transient_cooldown(void **state)
{
    struct cp_config *c;
    (void)state;
    c = load_ok("transient-error-cooldown-seconds: 0\n");
    assert_int_equal(c->transient_error_cooldown_seconds, 5);
    cp_config_free(c);
    c = load_ok("transient-error-cooldown-seconds: -1\n");
    assert_int_equal(c->transient_error_cooldown_seconds, -1);
    cp_config_free(c);
    c = load_ok("transient-error-cooldown-seconds: -7\n");
    assert_int_equal(c->transient_error_cooldown_seconds, -1);
    cp_config_free(c);
    c = load_ok("transient-error-cooldown-seconds: 60\n");
    assert_int_equal(c->transient_error_cooldown_seconds, 60);
    cp_config_free(c);
}

static void test_strategy_aliases(void **state)
{
    struct cp_config *c;
    (void)state;
    c = load_ok("routing:\n  strategy: ff\n");
    assert_int_equal(c->routing->strategy, CP_ROUTING_FILL_FIRST);
    cp_config_free(c);
    c = load_ok("routing:\n  strategy: fillfirst\n");
    assert_int_equal(c->routing->strategy, CP_ROUTING_FILL_FIRST);
    cp_config_free(c);
    c = load_ok("routing:\n  strategy: round-robin\n");
    assert_int_equal(c->routing->strategy, CP_ROUTING_ROUND_ROBIN);
    cp_config_free(c);
}

static void test_bad_values_name_key(void **state)
{
    (void)state;
    load_bad("routing:\n  strategy: random\n", CM_ERR_INVAL, "t.yaml: routing.strategy:");
    load_bad("port: 0\n", CM_ERR_INVAL, "t.yaml: port: must be between 1 and 65535, got 0");
    load_bad("port: 70000\n", CM_ERR_INVAL, "port: must be between 1 and 65535");
    load_bad("port: 80abc\n", CM_ERR_INVAL, "t.yaml: port: expected an integer");
    load_bad("tls:\n  enable: true\n  key: k.pem\n", CM_ERR_INVAL, "tls.cert: required");
    load_bad("tls:\n  enable: true\n  cert: c.pem\n", CM_ERR_INVAL, "tls.key: required");
    load_bad("remote-management:\n  allow-remote: maybe\n", CM_ERR_INVAL,
             "t.yaml: remote-management.allow-remote: expected a boolean");
    load_bad("max-retry-interval: -1\n", CM_ERR_INVAL, "max-retry-interval: must be between 0");
    load_bad("request-retry: -2\n", CM_ERR_INVAL, "request-retry: must be between 0");
    load_bad("upstreams:\n  qwen:\n    token-url: ftp://x\n", CM_ERR_INVAL,
             "upstreams.qwen.token-url: must start with http:// or https://");
    load_bad("api-keys: [a, b\n", CM_ERR_PARSE, "t.yaml");
    assert_int_equal(cap.warns, 0);
}

static void test_unknown_keys_warn_once(void **state)
{
    struct cp_config *c;
    (void)state;

    c = load_ok("port: 9000\nprot: 9001\n");
    assert_int_equal(c->port, 9000);
    assert_int_equal(cap.warns, 1);
    assert_non_null(strstr(cap.text, "t.yaml: unknown key \"prot\" ignored"));
    cp_config_free(c);

    memset(&cap, 0, sizeof cap);
    c = load_ok("routing:\n  strategy: ff\n  stratgy: round-robin\n");
    assert_int_equal(cap.warns, 1);
    assert_non_null(strstr(cap.text, "unknown key \"routing.stratgy\" ignored"));
    assert_int_equal(c->routing->strategy, CP_ROUTING_FILL_FIRST);
    cp_config_free(c);

    memset(&cap, 0, sizeof cap);
    c = load_ok("codex-api-key:\n  - api-key: k\n    base-ulr: https://x\n");
    assert_int_equal(cap.warns, 1);
    assert_non_null(strstr(cap.text, "unknown key \"codex-api-key[0].base-ulr\" ignored"));
    cp_config_free(c);
}

static void test_empty_values_accepted(void **state)
{
    struct cp_config *c;
    (void)state;
    /* keys whose children are all commented out, as in config.example.yaml */
    c = load_ok("api-keys:\npayload:\nampcode:\ncodex-api-key:\nopenai-compatibility:\n"
                "proxy-url:\n");
    assert_int_equal(c->api_keys_count, 0);
    assert_null(c->payload_);
    assert_string_equal(c->proxy_url, "");
    assert_int_equal(cap.warns, 0);
    cp_config_free(c);

    c = load_ok("routing:\ntls:\nupstreams:\n  codex:\noauth-excluded-models:\n");
    assert_int_equal(c->routing->strategy, CP_ROUTING_ROUND_ROBIN);
    cp_config_free(c);
}

static void test_home_expansion(void **state)
{
    struct cp_config *c;
    char err[CM_CFG_ERR_MAX];
    int rc;
    (void)state;

    c = load_ok("auth-dir: \"~/auths\"\n");
    assert_string_equal(c->auth_dir, HOME_DIR "/auths");
    cp_config_free(c);
    c = load_ok("auth-dir: \"~\"\n");
    assert_string_equal(c->auth_dir, HOME_DIR);
    cp_config_free(c);
    c = load_ok("auth-dir: /var/lib/cliproxy\n");
    assert_string_equal(c->auth_dir, "/var/lib/cliproxy");
    cp_config_free(c);
    c = load_ok("auth-dir: \"~other/x\"\n");
    assert_string_equal(c->auth_dir, "~other/x");
    cp_config_free(c);

    setenv("HOME", "/root/", 1);
    c = load_ok("auth-dir: \"~/a\"\n");
    assert_string_equal(c->auth_dir, "/root/a");
    cp_config_free(c);

    unsetenv("HOME");
    c = NULL;
    rc = cp_config_load_mem("t.yaml", "auth-dir: ~/a\n", 13, &c, err, sizeof err);
    assert_int_equal(rc, CM_ERR_INVAL);
    assert_null(c);
    assert_non_null(strstr(err, "auth-dir: cannot expand"));
    setenv("HOME", HOME_DIR, 1);
}

static void test_api_key_predicate(void **state)
{
    struct cp_config *c;
    (void)state;

    c = load_ok("api-keys:\n  - sk-abc123\n  - \"\"\n  - other-key\n");
    assert_true(cp_config_is_api_key(c, "sk-abc123", 9));
    assert_true(cp_config_is_api_key(c, "other-key", 9));
    assert_false(cp_config_is_api_key(c, "sk-abc124", 9));
    assert_false(cp_config_is_api_key(c, "sk-abc", 6));      /* a prefix */
    assert_false(cp_config_is_api_key(c, "sk-abc1234", 10)); /* longer */
    assert_true(cp_config_is_api_key(c, "sk-abc123xyz", 9)); /* len counts, not NUL */
    assert_false(cp_config_is_api_key(c, "", 0));            /* empty never matches */
    assert_false(cp_config_is_api_key(c, NULL, 0));
    assert_false(cp_config_is_api_key(NULL, "sk-abc123", 9));
    assert_false(cp_config_has_example_key(c));
    cp_config_free(c);

    c = load_ok("");
    assert_false(cp_config_is_api_key(c, "anything", 8));
    assert_false(cp_config_has_example_key(c));
    cp_config_free(c);
}

static void test_example_key(void **state)
{
    struct cp_config *c;
    (void)state;
    c = load_ok("api-keys:\n  - real-key\n  - your-api-key-2\n");
    assert_true(cp_config_has_example_key(c));
    cp_config_free(c);
    c = load_ok("api-keys:\n  - \"your-api-key-1\"\n");
    assert_true(cp_config_has_example_key(c));
    cp_config_free(c);
    c = load_ok("api-keys:\n  - my-your-api-key\n");
    assert_false(cp_config_has_example_key(c));
    cp_config_free(c);
    assert_false(cp_config_has_example_key(NULL));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_reload(void **state)
{
    struct cp_config_live *live = NULL;
    struct cp_config_ref *r1, *r2;
    const struct cp_config *c;
    char dir[] = "/tmp/cp_config_XXXXXX", path[256], err[CM_CFG_ERR_MAX];
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    assert_int_equal(cp_config_live_new(&live), CM_OK);
    assert_null(cp_config_live_acquire(live));

    write_file(path, "port: 1111\napi-keys: [k1]\n");
    assert_int_equal(cp_config_live_reload(live, path, err, sizeof err), CM_OK);
    r1 = cp_config_live_acquire(live);
    c = cp_config_ref_get(r1);
    assert_int_equal(c->port, 1111);

    /* a bad edit: the old config stays */
    write_file(path, "port: 1112\nrouting:\n  strategy: nope\n");
    assert_int_equal(cp_config_live_reload(live, path, err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "routing.strategy"));
    r2 = cp_config_live_acquire(live);
    assert_ptr_equal(cp_config_ref_get(r2), c);
    cp_config_ref_release(r2);

    /* a missing file: same */
    assert_int_equal(cp_config_live_reload(live, "/nonexistent/cfg.yaml", err, sizeof err),
                     CM_ERR_NOTFOUND);

    /* a good edit: new readers see it, the old reader keeps its version whole */
    write_file(path, "port: 2222\napi-keys: [k2]\n");
    assert_int_equal(cp_config_live_reload(live, path, err, sizeof err), CM_OK);
    r2 = cp_config_live_acquire(live);
    assert_int_equal(cp_config_ref_get(r2)->port, 2222);
    assert_true(cp_config_is_api_key(cp_config_ref_get(r2), "k2", 2));
    assert_false(cp_config_is_api_key(cp_config_ref_get(r2), "k1", 2));
    assert_int_equal(c->port, 1111);
    assert_true(cp_config_is_api_key(c, "k1", 2));
    cp_config_ref_release(r1);
    cp_config_ref_release(r2);

    assert_null(cp_config_ref_get(NULL));
    cp_config_ref_release(NULL);
    cp_config_live_free(live);
    cp_config_live_free(NULL);
    unlink(path);
    rmdir(dir);
}

static void test_oom(void **state)
{
    char path[1024];
    int done = 0;
    long failures = 0;
    (void)state;

    fixture_path(path, sizeof path, "full.yaml");
    cm_log_set_level(CM_LOG_OFF);
    for (long n = 1; n < 100000 && !done; n++) {
        struct cp_config *c = NULL;
        char err[CM_CFG_ERR_MAX];
        int rc;
        cm_alloc_fail_at(n);
        rc = cp_config_load_file(path, &c, err, sizeof err);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            assert_int_equal(c->port, 8417);
            cp_config_free(c);
            done = 1;
        } else {
            assert_null(c);
            assert_int_equal(rc, CM_ERR_NOMEM);
            failures++;
        }
    }
    assert_true(done);
    assert_true(failures > 50); /* the full file allocates a lot: each was walked */

    /* the holder, too */
    for (long n = 1; n < 10; n++) {
        struct cp_config_live *live = NULL;
        int rc;
        cm_alloc_fail_at(n);
        rc = cp_config_live_new(&live);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            cp_config_live_free(live);
            break;
        }
        assert_int_equal(rc, CM_ERR_NOMEM);
        assert_null(live);
    }
    cm_log_set_level(CM_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_on_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_cooldown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strategy_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values_name_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_warn_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_values_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_expansion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_key_predicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
