/* SPDX-License-Identifier: MIT */
/*
 * config.h - cliproxyd's configuration: CLIProxyAPI's config.yaml, read as is, plus our
 * own `upstreams.<provider>.base-url / token-url` keys.
 *
 * Three kinds of keys:
 *  - implemented: typed fields below, with CLIProxyAPI's meanings and our defaults;
 *  - lists served by other modules: codex-/claude-/gemini-api-key and openai-compatibility
 *    (keyring.c), oauth-model-alias and oauth-excluded-models (channels.c);
 *  - accepted without effect (payload, ampcode, pprof, vertex-/xai-/interactions-api-key,
 *    session affinity, panel settings ...): they load without error and without unknown-key
 *    warnings, values kept where the shape is simple; the README lists them;
 *  - unknown (typos): one WARN naming the key path, never a failure.
 *
 * A loaded struct cp_config is immutable: readers get it const, through a
 * struct cp_config_live (hot reload = load, check, swap; a failed reload keeps the old).
 */
#ifndef CP_CONFIG_H
#define CP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/** Default listen port when `port` is absent. */
#define CP_CONFIG_DEFAULT_PORT 8317
/** Default `auth-dir` (expanded from $HOME on load). */
#define CP_CONFIG_DEFAULT_AUTH_DIR "~/.cli-proxy-api"
/** Default `request-retry` when absent. */
#define CP_CONFIG_DEFAULT_REQUEST_RETRY 3
/** Default `max-retry-interval` (seconds) when absent. */
#define CP_CONFIG_DEFAULT_MAX_RETRY_INTERVAL 30
/** Our `transient-error-cooldown-seconds` when absent or 0 (CLIProxyAPI: 0 = 60 s). */
#define CP_CONFIG_DEFAULT_TRANSIENT_COOLDOWN 5

/** The OAuth providers whose upstream URLs are configurable. */
enum cp_provider {
    CP_PROVIDER_CODEX = 0,
    CP_PROVIDER_CLAUDE,
    CP_PROVIDER_GEMINI,
    CP_PROVIDER_QWEN,
    CP_PROVIDER_IFLOW,
    CP_PROVIDER__COUNT
};

/** `routing.strategy`. */
enum cp_routing_strategy {
    CP_ROUTING_ROUND_ROBIN = 0, /* "round-robin" (default) */
    CP_ROUTING_FILL_FIRST,      /* "fill-first", aliases "fillfirst", "ff" */
};

struct cp_config_routing {
    enum cp_routing_strategy strategy;
    bool session_affinity;           /* accepted, not implemented */
    char *session_affinity_ttl;      /* accepted, not implemented ("1h") */
    bool session_affinity_subagents; /* accepted, not implemented */
};

struct cp_config_remote_management {
    bool allow_remote;
    char *secret_key; /* "" = management disabled; a secret: never log it */
    bool disable_control_panel;
    bool disable_auto_update_panel; /* accepted, not implemented */
    char *panel_github_repository;  /* accepted, not implemented */
};

struct cp_config_tls {
    bool enable;
    char *cert; /* required when enable */
    char *key;  /* required when enable */
};

/** The URLs of one provider under `upstreams.<provider>` (our own keys). */
enum cp_url {
    CP_URL_BASE = 0,     /* base-url: inference */
    CP_URL_TOKEN,        /* token-url: code exchange and refresh */
    CP_URL_AUTH,         /* auth-url: the browser authorize page */
    CP_URL_DEVICE,       /* device-url: start a device login (Codex usercode, Qwen code) */
    CP_URL_DEVICE_TOKEN, /* device-token-url: Codex device polling */
    CP_URL_DEVICE_PAGE,  /* device-page-url: the page a Codex device login sends users to */
    CP_URL_USERINFO,     /* userinfo-url: Google userinfo, iFlow getUserInfo */
    CP_URL_APIKEY,       /* apikey-url: iFlow platform API key (cookie login) */
    CP_URL__COUNT
};

/** One provider's upstream URLs (index enum cp_url): never NULL after a load ("" where the
 * provider has no such endpoint), no trailing '/'. */
struct cp_config_upstream {
    char *url[CP_URL__COUNT];
};

struct cp_config_upstreams {
    struct cp_config_upstream *codex, *claude, *gemini, *qwen, *iflow;
};

/* ---- the API-key lists (keyring.c) and per-channel rules (channels.c); some of their
 * sub-keys (headers, weight, cloak ...) are accepted without effect ---- */

/** `models[]` entry of an api-key list or openai-compatibility entry. */
struct cp_config_model {
    char *name;  /* upstream model */
    char *alias; /* client-facing name, may be NULL */
};

/** An entry of codex-api-key / claude-api-key / gemini-api-key / vertex-api-key (and
 * the newer xai-api-key / interactions-api-key, which share the shape). */
struct cp_config_key_entry {
    char *api_key; /* a secret */
    char *base_url;
    char *proxy_url;
    char *prefix;
    int priority;
    struct cp_config_model *models;
    unsigned models_count;
    char **excluded_models;
    unsigned excluded_models_count;
    /* `headers` (a mapping, read by config_headers.c, not by the schema): extra upstream
     * headers applied last; values may be secrets */
    char **hdr_names, **hdr_values;
    unsigned n_hdrs;
};

struct cp_config_compat_key {
    char *api_key; /* a secret */
    char *proxy_url;
};

/** An `openai-compatibility` entry. */
struct cp_config_compat {
    char *name;
    char *base_url;
    char *prefix;
    int priority;
    struct cp_config_compat_key *api_key_entries;
    unsigned api_key_entries_count;
    struct cp_config_model *models;
    unsigned models_count;
    char **hdr_names, **hdr_values; /* `headers`, as in struct cp_config_key_entry */
    unsigned n_hdrs;
};

/** `oauth-model-alias.<channel>[]` entry. */
struct cp_config_alias {
    char *name;
    char *alias;
    bool fork;
};

/* One member pair per CLIProxyAPI OAuth channel. */
#define CP_CONFIG_CHANNELS(X)                                                                      \
    X(gemini_cli, "gemini-cli")                                                                    \
    X(vertex, "vertex")                                                                            \
    X(aistudio, "aistudio")                                                                        \
    X(antigravity, "antigravity")                                                                  \
    X(claude, "claude")                                                                            \
    X(codex, "codex")                                                                              \
    X(qwen, "qwen")                                                                                \
    X(iflow, "iflow")                                                                              \
    X(kimi, "kimi")                                                                                \
    X(xai, "xai")

#define CP_CONFIG_STRLIST_MEMBER_(m, k)                                                            \
    char **m;                                                                                      \
    unsigned m##_count;
#define CP_CONFIG_ALIAS_MEMBER_(m, k)                                                              \
    struct cp_config_alias *m;                                                                     \
    unsigned m##_count;

/** `oauth-excluded-models`: per channel, a list of model patterns. */
struct cp_config_channel_patterns {
    CP_CONFIG_CHANNELS(CP_CONFIG_STRLIST_MEMBER_)
};

/** `oauth-model-alias`: per channel, a list of aliases. */
struct cp_config_channel_aliases {
    CP_CONFIG_CHANNELS(CP_CONFIG_ALIAS_MEMBER_)
};

struct cp_config_quota_exceeded {
    bool switch_project;
    bool switch_preview_model;
    bool antigravity_credits;
};

struct cp_config_pprof {
    bool enable;
    char *addr;
};

struct cp_config_streaming {
    int keepalive_seconds;
    int bootstrap_retries;
};

/** Placeholder for a mapping whose sub-keys are accepted but not stored. */
struct cp_config_unkept {
    char unused_;
};

/**
 * One loaded config. Owned by whoever loaded it (cp_config_free), or by a
 * struct cp_config_live once swapped in; never modified after the load.
 *
 * Nested mappings are pointers because a key whose children are all commented out
 * (`routing:` alone, a YAML null) must load; after a load every mapping pointer above
 * the "values not kept" group is non-NULL (zeroed, then defaulted, when absent), as are
 * all strings of the implemented keys and both URLs of every upstream.
 */
struct cp_config {
    /* ---- implemented ---- */
    char *host;      /* bind address; "" = all interfaces */
    int port;        /* 1..65535, default 8317 */
    char *auth_dir;  /* '~' expanded; default ~/.cli-proxy-api */
    char **api_keys; /* secrets: never log them */
    unsigned api_keys_count;
    bool debug;
    bool logging_to_file;
    char *proxy_url;           /* "" = none */
    int request_retry;         /* >= 0, default 3 */
    int max_retry_interval;    /* seconds, >= 0, default 30 */
    int max_retry_credentials; /* >= 0; 0 = all */
    bool disable_cooling;
    int transient_error_cooldown_seconds; /* > 0, or -1 = no cooldown; see cp_config_load_mem */
    struct cp_config_routing *routing;
    struct cp_config_remote_management *remote_management;
    bool usage_statistics_enabled;
    struct cp_config_tls *tls;
    struct cp_config_upstreams *upstreams; /* our own key */

    /* ---- accepted, kept, not implemented yet ---- */
    bool commercial_mode;
    struct cp_config_pprof *pprof;
    struct cp_config_quota_exceeded *quota_exceeded;
    struct cp_config_streaming *streaming;
    struct cp_config_key_entry *codex_api_key;
    unsigned codex_api_key_count;
    struct cp_config_key_entry *claude_api_key;
    unsigned claude_api_key_count;
    struct cp_config_key_entry *gemini_api_key;
    unsigned gemini_api_key_count;
    struct cp_config_key_entry *vertex_api_key;
    unsigned vertex_api_key_count;
    struct cp_config_key_entry *xai_api_key;
    unsigned xai_api_key_count;
    struct cp_config_key_entry *interactions_api_key;
    unsigned interactions_api_key_count;
    struct cp_config_compat *openai_compatibility;
    unsigned openai_compatibility_count;
    struct cp_config_channel_patterns *oauth_excluded_models;
    struct cp_config_channel_aliases *oauth_model_alias;

    /* ---- accepted, sub-keys known, values not kept (NULL when absent) ---- */
    struct cp_config_unkept *payload_, *ampcode_, *claude_header_defaults_, *codex_header_defaults_,
        *claude_code_, *codex_, *xai_, *antigravity_, *plugins_;
};

/**
 * Loads the config file at @p path: parse, defaults, cp_config_check(). On CM_OK
 * *@p out is a new config (free with cp_config_free() or hand to cp_config_live_swap())
 * and @p err (if given) is "". On failure *@p out is untouched and @p err (@p errlen
 * bytes, CM_CFG_ERR_MAX is a good size; may be NULL) holds one message naming the file
 * and the key path ("config.yaml: routing.strategy: invalid value ..."). Unknown keys
 * only log a WARN each. Defaults: see the CP_CONFIG_DEFAULT_* macros; upstream URLs
 * default to the real endpoints; `transient-error-cooldown-seconds` absent or 0 means
 * 5 s, any negative value means no cooldown (stored as -1); `auth-dir` "~" or "~/..."
 * is expanded from $HOME (CM_ERR_INVAL if HOME is unset). Returns the codes of
 * cm_cfg_load_file() (CM_ERR_NOTFOUND, CM_ERR_PARSE, CM_ERR_INVAL, CM_ERR_NOMEM, ...).
 */
int cp_config_load_file(const char *path, struct cp_config **out, char *err, size_t errlen);

/**
 * As cp_config_load_file(), from @p len bytes at @p data (borrowed, need not be
 * NUL-terminated); @p name stands for the file name in messages (NULL: "<memory>").
 * An empty document gives all defaults.
 */
int cp_config_load_mem(const char *name, const char *data, size_t len, struct cp_config **out,
                       char *err, size_t errlen);

/**
 * Cross-field rules, run by every load (exposed for tests and callers that build a
 * config by hand): port 1..65535; request-retry, max-retry-interval and
 * max-retry-credentials >= 0; tls.enable needs tls.cert and tls.key; routing.strategy a
 * known value; upstream URLs http:// or https://. May normalise @p cfg (expand
 * auth-dir, strip a trailing '/' from URLs, transient cooldown). On a problem writes
 * "key.path: what is wrong" to @p err (may be NULL) and returns CM_ERR_INVAL; CM_ERR_NOMEM.
 */
int cp_config_check(struct cp_config *cfg, char *err, size_t errlen);

/** Frees @p cfg and everything in it. NULL is a no-op. */
void cp_config_free(struct cp_config *cfg);

struct cm_cfg_spec;
/** The cm_cfg spec (libcyaml schema, defaults, check) every load uses, e.g. for
 * cm_cfg_to_json(). Static, never NULL. */
const struct cm_cfg_spec *cp_config_spec(void);

/**
 * 1 if the @p len bytes at @p key equal one of cfg's api-keys, else 0. Compares against
 * every configured key with cm_crypto_equal() (no early exit), so the time depends only
 * on the number and lengths of the keys. An empty key (len 0) or NULL never matches.
 * Pure, thread-safe.
 */
int cp_config_is_api_key(const struct cp_config *cfg, const char *key, size_t len);

/**
 * 1 if an api-key is one of CLIProxyAPI's example placeholders (it starts with
 * "your-api-key", as config.example.yaml's "your-api-key-1".."-3" do), so main can
 * refuse to start with a copied example; else 0. Pure.
 */
int cp_config_has_example_key(const struct cp_config *cfg);

/** Inference base URL of @p p (no trailing '/'), e.g. "https://chatgpt.com/backend-api/codex".
 * NULL for an unknown provider. Borrowed from @p cfg. */
const char *cp_config_base_url(const struct cp_config *cfg, enum cp_provider p);

/** Token (refresh) URL of @p p, e.g. "https://auth.openai.com/oauth/token". NULL for an
 * unknown provider. Borrowed from @p cfg. */
const char *cp_config_token_url(const struct cp_config *cfg, enum cp_provider p);

/** URL @p which of provider @p p (no trailing '/'), NULL when the provider has none (or
 * an unknown provider). Borrowed from @p cfg. */
const char *cp_config_url(const struct cp_config *cfg, enum cp_provider p, enum cp_url which);

/** "codex", "claude", "gemini", "qwen", "iflow"; NULL for an unknown value. Static. */
const char *cp_config_provider_key(enum cp_provider p);

/**
 * Reads the `headers` mappings of the codex-/claude-/gemini-api-key and
 * openai-compatibility entries from the YAML text @p yaml (the text @p cfg was loaded from)
 * into their hdr_* fields (libyaml: the schema loader cannot read a mapping of free keys).
 * CM_OK; CM_ERR_INVAL with @p err for a `headers` that is not a mapping of strings;
 * CM_ERR_NOMEM. Called by the loaders; freed by cp_config_free().
 */
int cp_config_read_headers(struct cp_config *cfg, const char *yaml, size_t len, char *err,
                           size_t errlen);

/* ---- hot reload ---- */

/** The live config (on cm_cfg_slot): any number of readers, one swapper at a time. */
struct cp_config_live;
/** A counted reference to one config version. */
struct cp_config_ref;

/** New empty holder (acquire returns NULL until the first swap). CM_OK, CM_ERR_NOMEM;
 * @p out written only on success; free with cp_config_live_free(). */
int cp_config_live_new(struct cp_config_live **out);

/** Drops the holder's config (freed now or by its last reader's release) and the holder.
 * NULL is a no-op. Not concurrently with other calls on it. */
void cp_config_live_free(struct cp_config_live *live);

/**
 * Makes @p cfg (a loaded and checked config) current, taking ownership on CM_OK; the
 * previous one is freed when its last reader lets go. CM_ERR_NOMEM leaves everything
 * as it was and @p cfg the caller's. Thread-safe.
 */
int cp_config_live_swap(struct cp_config_live *live, struct cp_config *cfg);

/**
 * Loads @p path and, only if it loads and checks, swaps it in. On failure the old
 * config stays in force and @p err says why (see cp_config_load_file()).
 */
int cp_config_live_reload(struct cp_config_live *live, const char *path, char *err, size_t errlen);

/** A reference to the current config, or NULL if none yet. Never blocks long; no
 * allocation. Release with cp_config_ref_release(). */
struct cp_config_ref *cp_config_live_acquire(struct cp_config_live *live);

/** The config behind @p r (read-only, valid until the release). NULL if @p r is NULL. */
const struct cp_config *cp_config_ref_get(const struct cp_config_ref *r);

/** Drops @p r (may free a swapped-out config). NULL is a no-op. Thread-safe. */
void cp_config_ref_release(struct cp_config_ref *r);

#endif
