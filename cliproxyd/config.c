/* SPDX-License-Identifier: MIT */
/*
 * config.c - the libcyaml schema of CLIProxyAPI's config.yaml (the schema arrays below
 * are the key table), defaults, cross-field check, the api-key predicates and the
 * hot-reload holder over cm_cfg_slot.
 *
 * Keys we do not implement yet still get schema entries so that a real CLIProxyAPI
 * config loads without unknown-key warnings: simple shapes keep their values, values
 * whose shape is free-form (headers maps, payload params, HEAD-only blocks) use
 * CYAML_FIELD_IGNORE, which accepts any YAML below that key. Mappings are declared
 * CYAML_FLAG_POINTER_NULL where a key with only commented-out children (an empty value)
 * is common in real files.
 */
#include "config.h"

#include "cm/alloc.h"
#include "cm/cfg.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/file.h"
#include "cm/log.h"

#include <cyaml/cyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- defaults: the real upstream endpoints (spec sections 3.1-3.5) ---- */

static const struct {
    const char *key; /* "codex" ... as in upstreams.<key> */
    const char *url[CP_URL__COUNT];
} upstream_defaults[CP_PROVIDER__COUNT] = {
    [CP_PROVIDER_CODEX] = {"codex",
                           {[CP_URL_BASE] = "https://chatgpt.com/backend-api/codex",
                            [CP_URL_TOKEN] = "https://auth.openai.com/oauth/token",
                            [CP_URL_AUTH] = "https://auth.openai.com/oauth/authorize",
                            [CP_URL_DEVICE] =
                                "https://auth.openai.com/api/accounts/deviceauth/usercode",
                            [CP_URL_DEVICE_TOKEN] =
                                "https://auth.openai.com/api/accounts/deviceauth/token",
                            [CP_URL_DEVICE_PAGE] = "https://auth.openai.com/codex/device"}},
    [CP_PROVIDER_CLAUDE] = {"claude",
                            {[CP_URL_BASE] = "https://api.anthropic.com",
                             [CP_URL_TOKEN] = "https://api.anthropic.com/v1/oauth/token",
                             [CP_URL_AUTH] = "https://claude.ai/oauth/authorize"}},
    [CP_PROVIDER_GEMINI] = {"gemini",
                            {[CP_URL_BASE] = "https://cloudcode-pa.googleapis.com",
                             [CP_URL_TOKEN] = "https://oauth2.googleapis.com/token",
                             [CP_URL_AUTH] = "https://accounts.google.com/o/oauth2/auth",
                             [CP_URL_USERINFO] =
                                 "https://www.googleapis.com/oauth2/v1/userinfo?alt=json"}},
    [CP_PROVIDER_QWEN] = {"qwen",
                          {[CP_URL_BASE] = "https://portal.qwen.ai/v1",
                           [CP_URL_TOKEN] = "https://chat.qwen.ai/api/v1/oauth2/token",
                           [CP_URL_DEVICE] = "https://chat.qwen.ai/api/v1/oauth2/device/code"}},
    [CP_PROVIDER_IFLOW] = {"iflow",
                           {[CP_URL_BASE] = "https://apis.iflow.cn/v1",
                            [CP_URL_TOKEN] = "https://iflow.cn/oauth/token",
                            [CP_URL_AUTH] = "https://iflow.cn/oauth",
                            [CP_URL_USERINFO] = "https://iflow.cn/api/oauth/getUserInfo",
                            [CP_URL_APIKEY] = "https://platform.iflow.cn/api/openapi/apikey"}},
};

/* the YAML key of each URL under upstreams.<provider> */
static const char *const url_keys[CP_URL__COUNT] = {[CP_URL_BASE] = "base-url",
                                                    [CP_URL_TOKEN] = "token-url",
                                                    [CP_URL_AUTH] = "auth-url",
                                                    [CP_URL_DEVICE] = "device-url",
                                                    [CP_URL_DEVICE_TOKEN] = "device-token-url",
                                                    [CP_URL_DEVICE_PAGE] = "device-page-url",
                                                    [CP_URL_USERINFO] = "userinfo-url",
                                                    [CP_URL_APIKEY] = "apikey-url"};

#define EXAMPLE_KEY_PREFIX "your-api-key"

/* ---- schema ---- */

#define OPT CYAML_FLAG_OPTIONAL
#define OPT_NULL (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL)
#define STR(key, type, member)                                                                     \
    CYAML_FIELD_STRING_PTR(key, OPT_NULL, type, member, 0, CYAML_UNLIMITED)
#define SKIP(key) CYAML_FIELD_IGNORE(key, OPT)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED)};

static const cyaml_strval_t strategy_strings[] = {
    {"round-robin", CP_ROUTING_ROUND_ROBIN},
    {"fill-first", CP_ROUTING_FILL_FIRST},
    {"fillfirst", CP_ROUTING_FILL_FIRST},
    {"ff", CP_ROUTING_FILL_FIRST},
};

static const cyaml_schema_field_t routing_fields[] = {
    CYAML_FIELD_ENUM("strategy", OPT | CYAML_FLAG_STRICT, struct cp_config_routing, strategy,
                     strategy_strings, CYAML_ARRAY_LEN(strategy_strings)),
    CYAML_FIELD_BOOL("session-affinity", OPT, struct cp_config_routing, session_affinity),
    STR("session-affinity-ttl", struct cp_config_routing, session_affinity_ttl),
    CYAML_FIELD_BOOL("session-affinity-subagents", OPT, struct cp_config_routing,
                     session_affinity_subagents),
    CYAML_FIELD_END};

static const cyaml_schema_field_t remote_management_fields[] = {
    CYAML_FIELD_BOOL("allow-remote", OPT, struct cp_config_remote_management, allow_remote),
    STR("secret-key", struct cp_config_remote_management, secret_key),
    CYAML_FIELD_BOOL("disable-control-panel", OPT, struct cp_config_remote_management,
                     disable_control_panel),
    CYAML_FIELD_BOOL("disable-auto-update-panel", OPT, struct cp_config_remote_management,
                     disable_auto_update_panel),
    STR("panel-github-repository", struct cp_config_remote_management, panel_github_repository),
    CYAML_FIELD_END};

static const cyaml_schema_field_t tls_fields[] = {
    CYAML_FIELD_BOOL("enable", OPT, struct cp_config_tls, enable),
    STR("cert", struct cp_config_tls, cert), STR("key", struct cp_config_tls, key),
    CYAML_FIELD_END};

static const cyaml_schema_field_t upstream_fields[] = {
    STR("base-url", struct cp_config_upstream, url[CP_URL_BASE]),
    STR("token-url", struct cp_config_upstream, url[CP_URL_TOKEN]),
    STR("auth-url", struct cp_config_upstream, url[CP_URL_AUTH]),
    STR("device-url", struct cp_config_upstream, url[CP_URL_DEVICE]),
    STR("device-token-url", struct cp_config_upstream, url[CP_URL_DEVICE_TOKEN]),
    STR("device-page-url", struct cp_config_upstream, url[CP_URL_DEVICE_PAGE]),
    STR("userinfo-url", struct cp_config_upstream, url[CP_URL_USERINFO]),
    STR("apikey-url", struct cp_config_upstream, url[CP_URL_APIKEY]),
    CYAML_FIELD_END};

static const cyaml_schema_field_t upstreams_fields[] = {
    CYAML_FIELD_MAPPING_PTR("codex", OPT_NULL, struct cp_config_upstreams, codex, upstream_fields),
    CYAML_FIELD_MAPPING_PTR("claude", OPT_NULL, struct cp_config_upstreams, claude,
                            upstream_fields),
    CYAML_FIELD_MAPPING_PTR("gemini", OPT_NULL, struct cp_config_upstreams, gemini,
                            upstream_fields),
    CYAML_FIELD_MAPPING_PTR("qwen", OPT_NULL, struct cp_config_upstreams, qwen, upstream_fields),
    CYAML_FIELD_MAPPING_PTR("iflow", OPT_NULL, struct cp_config_upstreams, iflow, upstream_fields),
    CYAML_FIELD_END};

/* accepted, kept */

static const cyaml_schema_field_t pprof_fields[] = {
    CYAML_FIELD_BOOL("enable", OPT, struct cp_config_pprof, enable),
    STR("addr", struct cp_config_pprof, addr), CYAML_FIELD_END};

static const cyaml_schema_field_t quota_exceeded_fields[] = {
    CYAML_FIELD_BOOL("switch-project", OPT, struct cp_config_quota_exceeded, switch_project),
    CYAML_FIELD_BOOL("switch-preview-model", OPT, struct cp_config_quota_exceeded,
                     switch_preview_model),
    CYAML_FIELD_BOOL("antigravity-credits", OPT, struct cp_config_quota_exceeded,
                     antigravity_credits),
    CYAML_FIELD_END};

static const cyaml_schema_field_t streaming_fields[] = {
    CYAML_FIELD_INT("keepalive-seconds", OPT, struct cp_config_streaming, keepalive_seconds),
    CYAML_FIELD_INT("bootstrap-retries", OPT, struct cp_config_streaming, bootstrap_retries),
    CYAML_FIELD_END};

static const cyaml_schema_field_t model_fields[] = {STR("name", struct cp_config_model, name),
                                                    STR("alias", struct cp_config_model, alias),
                                                    SKIP("display-name"),
                                                    SKIP("max-context-length"),
                                                    SKIP("force-mapping"),
                                                    SKIP("is-compat"),
                                                    SKIP("thinking"),
                                                    SKIP("image"),
                                                    SKIP("input-modalities"),
                                                    SKIP("output-modalities"),
                                                    CYAML_FIELD_END};
static const cyaml_schema_value_t model_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cp_config_model, model_fields)};

/* the union of the sub-keys of codex-/claude-/gemini-/vertex-/xai-/interactions-api-key */
static const cyaml_schema_field_t key_entry_fields[] = {
    STR("api-key", struct cp_config_key_entry, api_key),
    STR("base-url", struct cp_config_key_entry, base_url),
    STR("proxy-url", struct cp_config_key_entry, proxy_url),
    STR("prefix", struct cp_config_key_entry, prefix),
    CYAML_FIELD_INT("priority", OPT, struct cp_config_key_entry, priority),
    CYAML_FIELD_SEQUENCE("models", OPT_NULL, struct cp_config_key_entry, models, &model_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("excluded-models", OPT_NULL, struct cp_config_key_entry, excluded_models,
                         &string_entry, 0, CYAML_UNLIMITED),
    SKIP("headers"),
    SKIP("weight"),
    SKIP("disable-cooling"),
    SKIP("request-retry"),
    SKIP("request-scoped-errors"),
    SKIP("websockets"),
    SKIP("alpha-search"),
    SKIP("force-mapping"),
    SKIP("is-compat"),
    SKIP("thinking"),
    SKIP("cloak"),
    SKIP("experimental-cch-signing"),
    SKIP("fingerprint-profile"),
    SKIP("rebuild-mid-system-message"),
    CYAML_FIELD_END};
static const cyaml_schema_value_t key_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cp_config_key_entry, key_entry_fields)};

static const cyaml_schema_field_t compat_key_fields[] = {
    STR("api-key", struct cp_config_compat_key, api_key),
    STR("proxy-url", struct cp_config_compat_key, proxy_url), SKIP("weight"), CYAML_FIELD_END};
static const cyaml_schema_value_t compat_key_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cp_config_compat_key, compat_key_fields)};

static const cyaml_schema_field_t compat_fields[] = {
    STR("name", struct cp_config_compat, name),
    STR("base-url", struct cp_config_compat, base_url),
    STR("prefix", struct cp_config_compat, prefix),
    CYAML_FIELD_INT("priority", OPT, struct cp_config_compat, priority),
    CYAML_FIELD_SEQUENCE("api-key-entries", OPT_NULL, struct cp_config_compat, api_key_entries,
                         &compat_key_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("models", OPT_NULL, struct cp_config_compat, models, &model_entry, 0,
                         CYAML_UNLIMITED),
    SKIP("api-keys"), /* the pre-api-key-entries form */
    SKIP("headers"),
    SKIP("disabled"),
    SKIP("disable-cooling"),
    SKIP("request-retry"),
    SKIP("request-scoped-errors"),
    SKIP("support-prompt-cache-key"),
    CYAML_FIELD_END};
static const cyaml_schema_value_t compat_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cp_config_compat, compat_fields)};

static const cyaml_schema_field_t alias_fields[] = {
    STR("name", struct cp_config_alias, name),
    STR("alias", struct cp_config_alias, alias),
    CYAML_FIELD_BOOL("fork", OPT, struct cp_config_alias, fork),
    SKIP("display-name"),
    SKIP("force-mapping"),
    CYAML_FIELD_END};
static const cyaml_schema_value_t alias_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cp_config_alias, alias_fields)};

#define PATTERNS_FIELD_(m, k)                                                                      \
    CYAML_FIELD_SEQUENCE(k, OPT_NULL, struct cp_config_channel_patterns, m, &string_entry, 0,      \
                         CYAML_UNLIMITED),
static const cyaml_schema_field_t channel_patterns_fields[] = {CP_CONFIG_CHANNELS(PATTERNS_FIELD_)
                                                                   CYAML_FIELD_END};

#define ALIASES_FIELD_(m, k)                                                                       \
    CYAML_FIELD_SEQUENCE(k, OPT_NULL, struct cp_config_channel_aliases, m, &alias_entry, 0,        \
                         CYAML_UNLIMITED),
static const cyaml_schema_field_t channel_aliases_fields[] = {CP_CONFIG_CHANNELS(ALIASES_FIELD_)
                                                                  CYAML_FIELD_END};

/* accepted, sub-keys known, values not kept */

static const cyaml_schema_field_t payload_fields[] = {SKIP("default"),  SKIP("default-raw"),
                                                      SKIP("override"), SKIP("override-raw"),
                                                      SKIP("filter"),   CYAML_FIELD_END};
static const cyaml_schema_field_t ampcode_fields[] = {SKIP("upstream-url"),
                                                      SKIP("upstream-api-key"),
                                                      SKIP("upstream-api-keys"),
                                                      SKIP("restrict-management-to-localhost"),
                                                      SKIP("model-mappings"),
                                                      SKIP("force-model-mappings"),
                                                      CYAML_FIELD_END};
static const cyaml_schema_field_t claude_header_defaults_fields[] = {
    SKIP("user-agent"),
    SKIP("package-version"),
    SKIP("runtime-version"),
    SKIP("os"),
    SKIP("arch"),
    SKIP("timeout"),
    SKIP("timezone"),
    SKIP("stabilize-device-profile"),
    CYAML_FIELD_END};
static const cyaml_schema_field_t codex_header_defaults_fields[] = {
    SKIP("user-agent"), SKIP("beta-features"), CYAML_FIELD_END};
static const cyaml_schema_field_t claude_code_fields[] = {SKIP("disable-cloaking-model-list"),
                                                          CYAML_FIELD_END};
static const cyaml_schema_field_t codex_fields[] = {SKIP("identity-confuse"),
                                                    SKIP("disable-codex-cloaking"),
                                                    SKIP("stream-bootstrap-buffering"),
                                                    SKIP("optimize-multi-agent-v2"),
                                                    SKIP("orphan-delegation-compatibility"),
                                                    SKIP("model-level-cooling"),
                                                    SKIP("live-media-relay"),
                                                    CYAML_FIELD_END};
static const cyaml_schema_field_t xai_fields[] = {SKIP("inject-x-search"), CYAML_FIELD_END};
static const cyaml_schema_field_t antigravity_fields[] = {SKIP("sensitive-words"),
                                                          SKIP("connection-pool"), CYAML_FIELD_END};
static const cyaml_schema_field_t plugins_fields[] = {SKIP("enabled"),       SKIP("dir"),
                                                      SKIP("store-sources"), SKIP("store-auth"),
                                                      SKIP("configs"),       CYAML_FIELD_END};

#define KEYLIST(key, member)                                                                       \
    CYAML_FIELD_SEQUENCE(key, OPT_NULL, struct cp_config, member, &key_entry, 0, CYAML_UNLIMITED)
#define UNKEPT(key, member, fields)                                                                \
    CYAML_FIELD_MAPPING_PTR(key, OPT_NULL, struct cp_config, member, fields)

static const cyaml_schema_field_t config_fields[] = {
    /* implemented */
    STR("host", struct cp_config, host), CYAML_FIELD_INT("port", OPT, struct cp_config, port),
    STR("auth-dir", struct cp_config, auth_dir),
    CYAML_FIELD_SEQUENCE("api-keys", OPT_NULL, struct cp_config, api_keys, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_BOOL("debug", OPT, struct cp_config, debug),
    CYAML_FIELD_BOOL("logging-to-file", OPT, struct cp_config, logging_to_file),
    STR("proxy-url", struct cp_config, proxy_url),
    CYAML_FIELD_INT("request-retry", OPT, struct cp_config, request_retry),
    CYAML_FIELD_INT("max-retry-interval", OPT, struct cp_config, max_retry_interval),
    CYAML_FIELD_INT("max-retry-credentials", OPT, struct cp_config, max_retry_credentials),
    CYAML_FIELD_BOOL("disable-cooling", OPT, struct cp_config, disable_cooling),
    CYAML_FIELD_INT("transient-error-cooldown-seconds", OPT, struct cp_config,
                    transient_error_cooldown_seconds),
    CYAML_FIELD_MAPPING_PTR("routing", OPT_NULL, struct cp_config, routing, routing_fields),
    CYAML_FIELD_MAPPING_PTR("remote-management", OPT_NULL, struct cp_config, remote_management,
                            remote_management_fields),
    CYAML_FIELD_BOOL("usage-statistics-enabled", OPT, struct cp_config, usage_statistics_enabled),
    CYAML_FIELD_MAPPING_PTR("tls", OPT_NULL, struct cp_config, tls, tls_fields),
    CYAML_FIELD_MAPPING_PTR("upstreams", OPT_NULL, struct cp_config, upstreams, upstreams_fields),

    /* accepted, kept */
    CYAML_FIELD_BOOL("commercial-mode", OPT, struct cp_config, commercial_mode),
    CYAML_FIELD_MAPPING_PTR("pprof", OPT_NULL, struct cp_config, pprof, pprof_fields),
    CYAML_FIELD_MAPPING_PTR("quota-exceeded", OPT_NULL, struct cp_config, quota_exceeded,
                            quota_exceeded_fields),
    CYAML_FIELD_MAPPING_PTR("streaming", OPT_NULL, struct cp_config, streaming, streaming_fields),
    KEYLIST("codex-api-key", codex_api_key), KEYLIST("claude-api-key", claude_api_key),
    KEYLIST("gemini-api-key", gemini_api_key), KEYLIST("vertex-api-key", vertex_api_key),
    KEYLIST("xai-api-key", xai_api_key), KEYLIST("interactions-api-key", interactions_api_key),
    CYAML_FIELD_SEQUENCE("openai-compatibility", OPT_NULL, struct cp_config, openai_compatibility,
                         &compat_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("oauth-excluded-models", OPT_NULL, struct cp_config,
                            oauth_excluded_models, channel_patterns_fields),
    CYAML_FIELD_MAPPING_PTR("oauth-model-alias", OPT_NULL, struct cp_config, oauth_model_alias,
                            channel_aliases_fields),

    /* accepted, sub-keys known, values not kept */
    UNKEPT("payload", payload_, payload_fields), UNKEPT("ampcode", ampcode_, ampcode_fields),
    UNKEPT("claude-header-defaults", claude_header_defaults_, claude_header_defaults_fields),
    UNKEPT("codex-header-defaults", codex_header_defaults_, codex_header_defaults_fields),
    UNKEPT("claude-code", claude_code_, claude_code_fields), UNKEPT("codex", codex_, codex_fields),
    UNKEPT("xai", xai_, xai_fields), UNKEPT("antigravity", antigravity_, antigravity_fields),
    UNKEPT("plugins", plugins_, plugins_fields),

    /* accepted, not kept: scalars, and blocks whose shape is free-form or HEAD-only */
    SKIP("logs-max-total-size-mb"), SKIP("error-logs-max-files"),
    SKIP("redis-usage-queue-retention-seconds"), SKIP("force-model-prefix"),
    SKIP("passthrough-headers"), SKIP("save-cooldown-status"), SKIP("auth-auto-refresh-workers"),
    SKIP("ws-auth"), SKIP("enable-gemini-cli-endpoint"), SKIP("nonstream-keepalive-interval"),
    SKIP("request-log"), SKIP("antigravity-signature-cache-enabled"),
    SKIP("antigravity-signature-bypass-strict"), SKIP("disable-claude-cloak-mode"),
    SKIP("disable-image-generation"), SKIP("gpt-image-2-base-model"),
    SKIP("video-result-auth-cache-ttl"), SKIP("oauth-request-scoped-errors"),
    SKIP("credential-concurrency"), SKIP("credential-in-flight"), CYAML_FIELD_END};

static const cyaml_schema_value_t config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct cp_config, config_fields)};

/* ---- defaults ---- */

/* Sets *p to a copy of @p def when the file left it NULL or empty. */
static int default_str(char **p, const char *def, int empty_too)
{
    char *s;
    if (*p && (!empty_too || **p))
        return CM_OK;
    s = cm_strdup(def);
    if (!s)
        return CM_ERR_NOMEM;
    cm_free(*p);
    *p = s;
    return CM_OK;
}

/* the upstreams entry of provider @p p (NULL for none, or before defaults ran) */
static struct cp_config_upstream *upstream_of(const struct cp_config *c, enum cp_provider p)
{
    if (!c || !c->upstreams)
        return NULL;
    switch (p) {
    case CP_PROVIDER_CODEX:
        return c->upstreams->codex;
    case CP_PROVIDER_CLAUDE:
        return c->upstreams->claude;
    case CP_PROVIDER_GEMINI:
        return c->upstreams->gemini;
    case CP_PROVIDER_QWEN:
        return c->upstreams->qwen;
    case CP_PROVIDER_IFLOW:
        return c->upstreams->iflow;
    default:
        return NULL;
    }
}

/* Non-zero if @p ptr is NULL and no zeroed struct could be allocated for it. */
#define ENSURE(ptr) (!(ptr) && !((ptr) = cm_calloc(1, sizeof *(ptr))))

static int config_defaults(void *data, const struct cm_cfg_seen *seen, void *ud)
{
    struct cp_config *c = data;
    int rc;
    (void)ud;

    if (ENSURE(c->routing) || ENSURE(c->remote_management) || ENSURE(c->tls) ||
        ENSURE(c->upstreams) || ENSURE(c->upstreams->codex) || ENSURE(c->upstreams->claude) ||
        ENSURE(c->upstreams->gemini) || ENSURE(c->upstreams->qwen) || ENSURE(c->upstreams->iflow) ||
        ENSURE(c->pprof) || ENSURE(c->quota_exceeded) || ENSURE(c->streaming) ||
        ENSURE(c->oauth_excluded_models) || ENSURE(c->oauth_model_alias))
        return CM_ERR_NOMEM;
    if (!cm_cfg_seen(seen, "port"))
        c->port = CP_CONFIG_DEFAULT_PORT;
    if (!cm_cfg_seen(seen, "request-retry"))
        c->request_retry = CP_CONFIG_DEFAULT_REQUEST_RETRY;
    if (!cm_cfg_seen(seen, "max-retry-interval"))
        c->max_retry_interval = CP_CONFIG_DEFAULT_MAX_RETRY_INTERVAL;
    if ((rc = default_str(&c->host, "", 0)) || (rc = default_str(&c->proxy_url, "", 0)) ||
        (rc = default_str(&c->auth_dir, CP_CONFIG_DEFAULT_AUTH_DIR, 1)) ||
        (rc = default_str(&c->remote_management->secret_key, "", 0)) ||
        (rc = default_str(&c->tls->cert, "", 0)) || (rc = default_str(&c->tls->key, "", 0)))
        return rc;
    for (int p = 0; p < CP_PROVIDER__COUNT; p++) {
        struct cp_config_upstream *u = upstream_of(c, (enum cp_provider)p);
        for (int k = 0; k < CP_URL__COUNT; k++) {
            const char *def = upstream_defaults[p].url[k];
            if ((rc = default_str(&u->url[k], def ? def : "", def != NULL)))
                return rc;
        }
    }
    return CM_OK;
}

/* ---- check ---- */

static int check_url(char *url, const char *provider, const char *key, char *err, size_t errlen)
{
    size_t n;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cm_cfg_fail(err, errlen, "upstreams.%s.%s: must start with http:// or https://",
                           provider, key);
    n = strlen(url);
    while (n > 8 && url[n - 1] == '/')
        url[--n] = '\0';
    return CM_OK;
}

/* "~" or "~/rest" -> $HOME "/rest"; anything else is left alone. */
static int expand_home(char **path, char *err, size_t errlen)
{
    const char *p = *path, *home;
    size_t hl, rl;
    char *s;

    if (p[0] != '~' || (p[1] != '\0' && p[1] != '/'))
        return CM_OK;
    home = getenv("HOME");
    if (!home || !*home)
        return cm_cfg_fail(err, errlen, "auth-dir: cannot expand \"~\": HOME is not set");
    hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        hl--;
    rl = strlen(p + 1);
    s = cm_malloc(hl + rl + 1);
    if (!s)
        return CM_ERR_NOMEM;
    memcpy(s, home, hl);
    memcpy(s + hl, p + 1, rl + 1);
    cm_free(*path);
    *path = s;
    return CM_OK;
}

int cp_config_check(struct cp_config *cfg, char *err, size_t errlen)
{
    int rc;

    if (!cfg)
        return cm_cfg_fail(err, errlen, "no config");
    if (!cfg->routing || !cfg->tls || !cfg->remote_management || !cfg->upstreams)
        return cm_cfg_fail(err, errlen, "routing/tls/remote-management/upstreams: missing");
    if ((rc = cm_cfg_check_range(err, errlen, "port", cfg->port, 1, 65535)) ||
        (rc = cm_cfg_check_range(err, errlen, "request-retry", cfg->request_retry, 0, 1000)) ||
        (rc = cm_cfg_check_range(err, errlen, "max-retry-interval", cfg->max_retry_interval, 0,
                                 86400)) ||
        (rc = cm_cfg_check_range(err, errlen, "max-retry-credentials", cfg->max_retry_credentials,
                                 0, 1000000)))
        return rc;
    if (cfg->routing->strategy != CP_ROUTING_ROUND_ROBIN &&
        cfg->routing->strategy != CP_ROUTING_FILL_FIRST)
        return cm_cfg_fail(err, errlen, "routing.strategy: must be round-robin or fill-first");
    if (cfg->tls->enable && (!cfg->tls->cert || !*cfg->tls->cert))
        return cm_cfg_fail(err, errlen, "tls.cert: required when tls.enable is true");
    if (cfg->tls->enable && (!cfg->tls->key || !*cfg->tls->key))
        return cm_cfg_fail(err, errlen, "tls.key: required when tls.enable is true");
    if (cfg->transient_error_cooldown_seconds == 0)
        cfg->transient_error_cooldown_seconds = CP_CONFIG_DEFAULT_TRANSIENT_COOLDOWN;
    else if (cfg->transient_error_cooldown_seconds < 0)
        cfg->transient_error_cooldown_seconds = -1;
    for (int p = 0; p < CP_PROVIDER__COUNT; p++) {
        struct cp_config_upstream *u = upstream_of(cfg, (enum cp_provider)p);
        if (!u || !u->url[CP_URL_BASE] || !u->url[CP_URL_TOKEN])
            return cm_cfg_fail(err, errlen, "upstreams.%s: URL missing", upstream_defaults[p].key);
        for (int k = 0; k < CP_URL__COUNT; k++)
            if (u->url[k] && *u->url[k] &&
                (rc = check_url(u->url[k], upstream_defaults[p].key, url_keys[k], err, errlen)))
                return rc;
    }
    if (!cfg->auth_dir)
        return cm_cfg_fail(err, errlen, "auth-dir: missing");
    return expand_home(&cfg->auth_dir, err, errlen);
}

static int config_check(void *data, char *err, size_t errlen, void *ud)
{
    (void)ud;
    return cp_config_check(data, err, errlen);
}

static const struct cm_cfg_spec config_spec = {
    .schema = &config_schema,
    .defaults = config_defaults,
    .check = config_check,
    .ud = NULL,
};

/* ---- load / free ---- */

int cp_config_load_file(const char *path, struct cp_config **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!out) {
        rc = cm_cfg_fail(err, errlen, "no output");
        goto out;
    }
    rc = cm_file_read(path, CM_CFG_FILE_MAX, &text, &len, err, errlen);
    if (rc)
        cm_log_error(NULL, "%s", err ? err : "config: cannot read the file");
    else
        rc = cp_config_load_mem(path, text, len, out, err, errlen);
out:
    cm_free(text);
    return rc;
}

int cp_config_load_mem(const char *name, const char *data, size_t len, struct cp_config **out,
                       char *err, size_t errlen)
{
    void *cfg = NULL;
    int rc;

    if (!out) {
        rc = cm_cfg_fail(err, errlen, "no output");
        goto out;
    }
    rc = cm_cfg_load_mem(&config_spec, name, data, len, &cfg, err, errlen);
    if (!rc && (rc = cp_config_read_headers(cfg, data, len, err, errlen)))
        cp_config_free(cfg);
    if (rc)
        goto out;
    *out = cfg;
out:
    return rc;
}

static void free_hdrs(char **names, char **values, unsigned n)
{
    for (unsigned i = 0; names && i < n; i++) {
        cm_free(names[i]);
        if (values && values[i])
            cm_crypto_memzero(values[i], strlen(values[i]));
        cm_free(values ? values[i] : NULL);
    }
    cm_free(names);
    cm_free(values);
}

void cp_config_free(struct cp_config *cfg)
{
    const struct cp_config_key_entry *lists[3];
    unsigned counts[3];
    if (!cfg)
        return;
    lists[0] = cfg->codex_api_key, counts[0] = cfg->codex_api_key_count;
    lists[1] = cfg->claude_api_key, counts[1] = cfg->claude_api_key_count;
    lists[2] = cfg->gemini_api_key, counts[2] = cfg->gemini_api_key_count;
    for (int l = 0; l < 3; l++)
        for (unsigned i = 0; lists[l] && i < counts[l]; i++)
            free_hdrs(lists[l][i].hdr_names, lists[l][i].hdr_values, lists[l][i].n_hdrs);
    for (unsigned i = 0; cfg->openai_compatibility && i < cfg->openai_compatibility_count; i++)
        free_hdrs(cfg->openai_compatibility[i].hdr_names, cfg->openai_compatibility[i].hdr_values,
                  cfg->openai_compatibility[i].n_hdrs);
    cm_cfg_free(&config_spec, cfg);
}

static void slot_free(void *cfg, const void *ud)
{
    (void)ud;
    cp_config_free(cfg);
}

const struct cm_cfg_spec *cp_config_spec(void)
{
    return &config_spec;
}

/* ---- predicates and accessors ---- */

int cp_config_is_api_key(const struct cp_config *cfg, const char *key, size_t len)
{
    int found = 0;

    if (!cfg || !key || len == 0)
        return 0;
    for (unsigned i = 0; i < cfg->api_keys_count; i++) {
        const char *k = cfg->api_keys[i];
        size_t kl = k ? strlen(k) : 0;
        /* an empty configured key never matches; every key is compared regardless */
        found |= cm_crypto_equal(key, len, k ? k : "", kl) & (kl != 0);
    }
    return found;
}

int cp_config_has_example_key(const struct cp_config *cfg)
{
    if (!cfg)
        return 0;
    for (unsigned i = 0; i < cfg->api_keys_count; i++)
        if (cfg->api_keys[i] &&
            strncmp(cfg->api_keys[i], EXAMPLE_KEY_PREFIX, sizeof EXAMPLE_KEY_PREFIX - 1) == 0)
            return 1;
    return 0;
}

const char *cp_config_base_url(const struct cp_config *cfg, enum cp_provider p)
{
    return cp_config_url(cfg, p, CP_URL_BASE);
}

const char *cp_config_token_url(const struct cp_config *cfg, enum cp_provider p)
{
    return cp_config_url(cfg, p, CP_URL_TOKEN);
}

const char *cp_config_url(const struct cp_config *cfg, enum cp_provider p, enum cp_url which)
{
    const struct cp_config_upstream *u = upstream_of(cfg, p);
    const char *v;
    if (!u || which < 0 || which >= CP_URL__COUNT)
        return NULL;
    v = u->url[which];
    return v && *v ? v : NULL;
}

const char *cp_config_provider_key(enum cp_provider p)
{
    return p >= 0 && p < CP_PROVIDER__COUNT ? upstream_defaults[p].key : NULL;
}

/* ---- hot reload ---- */

struct cp_config_live {
    struct cm_cfg_slot *slot;
};

int cp_config_live_new(struct cp_config_live **out)
{
    struct cp_config_live *l = NULL;
    int rc;

    if (!out) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    l = cm_calloc(1, sizeof *l);
    if (!l) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    rc = cm_cfg_slot_new(&l->slot, slot_free, NULL);
    if (rc)
        goto out;
    *out = l;
    l = NULL;
out:
    cm_free(l);
    return rc;
}

void cp_config_live_free(struct cp_config_live *live)
{
    if (!live)
        return;
    cm_cfg_slot_free(live->slot);
    cm_free(live);
}

int cp_config_live_swap(struct cp_config_live *live, struct cp_config *cfg)
{
    if (!live)
        return CM_ERR_INVAL;
    return cm_cfg_slot_swap(live->slot, cfg);
}

int cp_config_live_reload(struct cp_config_live *live, const char *path, char *err, size_t errlen)
{
    struct cp_config *cfg = NULL;
    int rc;

    if (!live) {
        rc = cm_cfg_fail(err, errlen, "no config holder");
        goto out;
    }
    rc = cp_config_load_file(path, &cfg, err, errlen);
    if (rc)
        goto out;
    rc = cm_cfg_slot_swap(live->slot, cfg);
    if (rc)
        goto out;
    cfg = NULL;
out:
    cp_config_free(cfg);
    return rc;
}

struct cp_config_ref *cp_config_live_acquire(struct cp_config_live *live)
{
    if (!live)
        return NULL;
    return (struct cp_config_ref *)cm_cfg_slot_acquire(live->slot);
}

const struct cp_config *cp_config_ref_get(const struct cp_config_ref *r)
{
    return cm_cfg_ref_get((const struct cm_cfg_ref *)r);
}

void cp_config_ref_release(struct cp_config_ref *r)
{
    cm_cfg_ref_release((struct cm_cfg_ref *)r);
}
