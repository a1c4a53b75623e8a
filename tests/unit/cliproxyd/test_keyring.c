/* SPDX-License-Identifier: MIT */
/*
 * test_keyring.c - API-key entries of config.yaml as scheduler credentials (keyring.c) and
 * the per-channel rules of channels.c: ids, providers, base URLs, aliases and alias pools,
 * built-in lists when an entry lists no models, entries that are skipped, reload
 * removing vanished entries; oauth-excluded-models and oauth-model-alias on logins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "channels.h"
#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "config.h"
#include "keyring.h"
#include "scheduler.h"

static struct cp_config *load(const char *yaml)
{
    struct cp_config *c = NULL;
    char err[512];
    if (cp_config_load_mem("test.yaml", yaml, strlen(yaml), &c, err, sizeof err) != CM_OK)
        fail_msg("config: %s", err);
    return c;
}

static const char *pick(struct cp_sched *s, const char *provider, const char *model, char *buf,
                        size_t len)
{
    const char *provs[1] = {provider};
    struct cp_sched_pick_req pr = {provs, 1, model, NULL, 0};
    struct cp_sched_pick pk;
    if (cp_sched_pick(s, &pr, buf, len, &pk) != CM_OK || pk.verdict != CP_SCHED_PICKED)
        return NULL;
    return buf;
}

static void entries_become_credentials(void **state)
{
    struct cp_sched *s = NULL;
    struct cp_keyring *k = NULL;
    struct cp_authstore_cred *c;
    struct cp_config *cfg =
        load("codex-api-key:\n"
             "  - api-key: sk-codex-1\n"
             "    base-url: http://127.0.0.1:9/codex\n"
             "    headers: {X-Team: blue, X-Trace: \"on\"}\n"
             "    models: [{name: gpt-5, alias: fast}]\n"
             "  - api-key: sk-codex-nobase\n"
             "gemini-api-key:\n"
             "  - api-key: g-1\n"
             "openai-compatibility:\n"
             "  - name: local\n"
             "    base-url: http://127.0.0.1:9/v1\n"
             "    api-key-entries: [{api-key: k1}]\n"
             "    models: [{name: m-a, alias: pool}, {name: m-b, alias: pool}, {name: solo}]\n");
    char buf[256];
    (void)state;
    assert_int_equal(cp_sched_new(cm_clock_real(), &s), CM_OK);
    assert_int_equal(cp_keyring_new(s, &k), CM_OK);
    assert_int_equal(cp_keyring_apply(k, cfg), CM_OK);

    /* codex entry: alias served, name sent upstream; the entry without base-url skipped */
    assert_true(cp_sched_serves(s, "codex", "fast"));
    assert_false(cp_sched_serves(s, "codex", "gpt-5"));
    assert_null(cp_keyring_acquire(k, "codex-api-key[1]"));
    c = cp_keyring_acquire(k, "codex-api-key[0]");
    assert_non_null(c);
    assert_string_equal(c->provider, "codex");
    assert_string_equal(c->access_token, "sk-codex-1");
    assert_true(c->af->key_entry);
    assert_string_equal(c->af->base_url, "http://127.0.0.1:9/codex");
    assert_int_equal(c->af->n_headers, 2);
    assert_string_equal(c->af->header_names[0], "X-Team");
    assert_string_equal(c->af->header_values[0], "blue");
    assert_string_equal(c->af->header_names[1], "X-Trace");
    assert_string_equal(c->af->header_values[1], "on");
    assert_string_equal(cp_authfile_upstream_model(c->af, "fast"), "gpt-5");
    assert_string_equal(cp_channel_upstream_model(cfg, c, "fast"), "gpt-5");
    cp_authstore_release(c);

    /* gemini key without models: the built-in list and the public API's base */
    c = cp_keyring_acquire(k, "gemini-api-key[0]");
    assert_non_null(c);
    assert_string_equal(c->af->base_url, "https://generativelanguage.googleapis.com");
    cp_authstore_release(c);
    assert_true(cp_sched_serves(s, "gemini", "gemini-2.5-pro"));

    /* a repeated alias is a pool: two credentials, each sending its own name */
    assert_true(cp_sched_serves(s, "openai-compatibility", "pool"));
    assert_true(cp_sched_serves(s, "openai-compatibility", "solo"));
    c = cp_keyring_acquire(k, "openai-compatibility[local][0]");
    assert_non_null(c);
    assert_string_equal(c->provider, "openai-compatibility");
    assert_string_equal(cp_authfile_upstream_model(c->af, "pool"), "m-a");
    cp_authstore_release(c);
    c = cp_keyring_acquire(k, "openai-compatibility[local][0]/1");
    assert_non_null(c);
    assert_string_equal(cp_authfile_upstream_model(c->af, "pool"), "m-b");
    assert_string_equal(cp_authfile_upstream_model(c->af, "solo"), "solo");
    cp_authstore_release(c);
    assert_non_null(pick(s, "openai-compatibility", "pool", buf, sizeof buf));

    /* models listing: aliases, deduplicated */
    {
        const char *ids[64], *owners[64];
        size_t n = cp_keyring_models(k, ids, owners, 0, 64), pool = 0;
        for (size_t i = 0; i < n; i++)
            pool += strcmp(ids[i], "pool") == 0;
        assert_int_equal(pool, 1);
        assert_ptr_equal(cp_keyring_intern(k, "pool"), cp_keyring_intern(k, "pool"));
    }

    /* a reload without the entries removes them */
    cp_config_free(cfg);
    cfg = load("port: 8317\n");
    assert_int_equal(cp_keyring_apply(k, cfg), CM_OK);
    assert_false(cp_sched_serves(s, "codex", "fast"));
    assert_false(cp_sched_serves(s, "openai-compatibility", "pool"));
    assert_null(cp_keyring_acquire(k, "gemini-api-key[0]"));

    cp_keyring_free(k);
    cp_sched_free(s);
    cp_config_free(cfg);
}

static void headers_must_be_a_mapping(void **state)
{
    static const char bad[] = "openai-compatibility:\n"
                              "  - name: x\n"
                              "    base-url: http://127.0.0.1:9/v1\n"
                              "    headers: [a, b]\n";
    struct cp_config *c = NULL;
    char err[512] = "";
    (void)state;
    assert_int_equal(cp_config_load_mem("t.yaml", bad, sizeof bad - 1, &c, err, sizeof err),
                     CM_ERR_INVAL);
    assert_null(c);
    assert_non_null(strstr(err, "openai-compatibility[0].headers"));
}

static void channel_rules_on_logins(void **state)
{
    struct cp_config *cfg = load("oauth-excluded-models:\n"
                                 "  claude: [\"*haiku*\"]\n"
                                 "oauth-model-alias:\n"
                                 "  claude:\n"
                                 "    - {name: claude-sonnet-4-6, alias: sonnet}\n"
                                 "    - {name: claude-opus-4-6, alias: opus, fork: true}\n");
    struct cp_authfile af = {0};
    struct cp_authstore_cred c = {0};
    const char *out[CP_CHANNEL_MAX_MODELS];
    size_t n;
    int sonnet = 0, sonnet_full = 0, opus = 0, opus_full = 0, haiku = 0;
    (void)state;
    af.provider = CP_AUTH_CLAUDE;
    n = cp_channel_models(cfg, &af, out);
    assert_true(n > 3);
    for (size_t i = 0; i < n; i++) {
        sonnet += strcmp(out[i], "sonnet") == 0;
        sonnet_full += strcmp(out[i], "claude-sonnet-4-6") == 0;
        opus += strcmp(out[i], "opus") == 0;
        opus_full += strcmp(out[i], "claude-opus-4-6") == 0;
        haiku += strstr(out[i], "haiku") != NULL;
    }
    assert_int_equal(sonnet, 1);
    assert_int_equal(sonnet_full, 0); /* replaced by its alias */
    assert_int_equal(opus, 1);
    assert_int_equal(opus_full, 1); /* fork keeps both */
    assert_int_equal(haiku, 0);
    c.af = &af;
    c.provider = "claude";
    assert_string_equal(cp_channel_upstream_model(cfg, &c, "sonnet"), "claude-sonnet-4-6");
    assert_string_equal(cp_channel_upstream_model(cfg, &c, "claude-opus-4-6"), "claude-opus-4-6");
    c.provider = "codex"; /* another channel: no alias */
    assert_string_equal(cp_channel_upstream_model(cfg, &c, "sonnet"), "sonnet");
    cp_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries_become_credentials),
        cmocka_unit_test(channel_rules_on_logins),
        cmocka_unit_test(headers_must_be_a_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
