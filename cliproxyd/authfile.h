/* SPDX-License-Identifier: MIT */
/*
 * authfile.h - one CLIProxyAPI auth file (one JSON credential per file in auth-dir).
 *
 * Parses the bytes of a file into an owned struct cp_authfile (tokens, expiry, the
 * per-file knobs), decides when a token wants refreshing (pure, clock injected), applies
 * a token endpoint's answer, prints the JSON back (unknown fields kept as they were) and
 * writes it atomically. Also the names a new login's file gets and the auth_index.
 * Everything here is pure except cp_authfile_write(). No directory watching, no HTTP.
 * Thread-safety: a struct cp_authfile has one owner at a time; the free functions that
 * take only values are safe from any thread.
 */
#ifndef CP_AUTHFILE_H
#define CP_AUTHFILE_H

#include "cm/clock.h"
#include "cm/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_AUTHFILE_MAX_SIZE (1024 * 1024) /* larger files are refused (CM_ERR_LIMIT) */
#define CP_AUTHFILE_MAX_DEPTH 32           /* JSON nesting cap for files and token answers */
#define CP_AUTHFILE_INDEX_SIZE 17          /* auth_index: 16 hex digits + NUL */
#define CP_AUTHFILE_TIME_SIZE 32           /* "YYYY-MM-DDTHH:MM:SSZ" + NUL, with room */
#define CP_AUTHFILE_ERR_MAX 384
#define CP_AUTHFILE_NAME_MAX 255 /* longest file name (NAME_MAX) */

#define CP_AUTHFILE_LEAD_CODEX (5 * 24 * 3600) /* refresh 5 days before expiry (spec 3.1c) */
#define CP_AUTHFILE_LEAD_CLAUDE (4 * 3600)     /* refresh 4 hours before expiry (spec 3.2c) */
/* Gemini CLI: CLIProxyAPI refreshes inline when expired (spec 3.3c); we refresh 5 min ahead */
#define CP_AUTHFILE_LEAD_GEMINI (5 * 60)
#define CP_AUTHFILE_LEAD_QWEN (20 * 60)    /* spec 3.4(c) */
#define CP_AUTHFILE_LEAD_IFLOW (24 * 3600) /* spec 3.5(c) (OAuth; cookie keys are not refreshed)   \
                                            */

/** The provider a file's "type" names. */
enum cp_auth_provider {
    CP_AUTH_UNKNOWN = 0, /* a type we do not know at all */
    CP_AUTH_CODEX,       /* "codex": supported */
    CP_AUTH_CLAUDE,      /* "claude": supported */
    CP_AUTH_GEMINI,      /* "gemini" (Gemini CLI): supported */
    CP_AUTH_QWEN,        /* "qwen": supported */
    CP_AUTH_IFLOW,       /* "iflow": supported */
    CP_AUTH_ANTIGRAVITY, /* "antigravity": known, not yet supported */
    CP_AUTH_VERTEX,      /* "vertex": known, not yet supported */
    CP_AUTH_AISTUDIO,    /* "aistudio": known, not yet supported */
    CP_AUTH_KIMI,        /* "kimi": known, not yet supported */
    CP_AUTH_XAI,         /* "xai": known, not yet supported */
};

/**
 * What was wrong with a file or a token answer, for the log and the management API.
 * Filled only on failure. msg names the file and the field, never a token value:
 * "auth file 'codex-a@b.json': field 'priority' must be an integer or a numeric string".
 */
struct cp_authfile_err {
    int rc;                            /* the code that was returned */
    char field[CM_JSON_ERR_FIELD_MAX]; /* the field at fault, "" if none */
    char msg[CP_AUTHFILE_ERR_MAX];     /* one sentence */
};

/**
 * A parsed credential. Every pointer is owned by the struct (freed by cp_authfile_free());
 * string fields are NULL when absent or empty. Callers read fields, never change them.
 */
struct cp_authfile {
    char *name;                              /* file name as given to parse (no directory) */
    char *type;                              /* "type" as written ("codex") */
    enum cp_auth_provider provider;          /* from type */
    char auth_index[CP_AUTHFILE_INDEX_SIZE]; /* cp_authfile_auth_index(name) */

    char *email;         /* field "email", else (codex) the id_token claim "email" */
    char *access_token;  /* secret; gemini: token.access_token */
    char *refresh_token; /* secret; gemini: token.refresh_token */
    char *id_token;      /* secret (codex; claude files may carry one too) */
    char *account_id;    /* codex: field, else id_token claim chatgpt_account_id */
    char *plan_type;     /* codex: id_token claim chatgpt_plan_type, as written */
    bool has_expired;    /* "expired" (gemini: token.expiry) present and non-empty */
    int64_t expired;     /* unix seconds (fraction dropped) when has_expired */
    bool has_last_refresh;
    int64_t last_refresh; /* unix seconds when has_last_refresh */

    /* provider specifics (spec 3.3(a), 3.4(a), 3.5(a)) */
    char *project_id;    /* gemini: "project_id" as written (one id, "a,b" or "ALL") */
    char *token_uri;     /* gemini: token.token_uri */
    char *client_id;     /* gemini: token.client_id */
    char *client_secret; /* gemini: token.client_secret; secret */
    char *resource_url;  /* qwen: "resource_url" (API host), as written */
    char *api_key;       /* iflow: "api_key" (what inference sends); secret */
    char *cookie;        /* iflow: "cookie" (BXAuth=...) of a cookie login; secret */

    /* knobs (spec section 2, last paragraph) */
    bool disabled;          /* "disabled" */
    int64_t priority;       /* "priority": integer or numeric string; 0 when absent */
    char *prefix;           /* "prefix", no '/' */
    char *proxy_url;        /* "proxy_url" */
    char *note;             /* "note" */
    char **excluded_models; /* "excluded_models", else "excluded-models"; n entries */
    size_t n_excluded_models;
    int disable_cooling; /* "disable_cooling"/"disable-cooling": -1 absent, 0, 1 */
    char **header_names; /* "headers" object: n names and values, in file order */
    char **header_values;
    size_t n_headers;

    cJSON *json; /* the whole file as parsed, kept so unknown fields survive a rewrite */

    /* API-key entries of config.yaml (keyring.c) synthesize a struct like a file's */
    bool key_entry;      /* not a file: a codex-/claude-/gemini-api-key or
                            openai-compatibility entry; access_token is its API key */
    char *base_url;      /* the entry's base-url; NULL = the provider's upstream */
    char **model_alias;  /* model aliases: the client's name ... */
    char **model_name;   /* ... and the upstream's, n_model_alias pairs */
    size_t n_model_alias;
};

/**
 * The name the upstream knows @p model by for this credential: the model_name whose
 * model_alias is @p model (case-insensitive; the first one), else @p model itself.
 * Borrowed (from @p af or @p model). @p af may be NULL.
 */
const char *cp_authfile_upstream_model(const struct cp_authfile *af, const char *model);

/** "codex", "claude", ... for a provider; "unknown" for CP_AUTH_UNKNOWN. Static storage. */
const char *cp_authfile_provider_name(enum cp_auth_provider p);

/** true for the providers this build can serve (codex, claude, gemini, qwen, iflow). */
bool cp_authfile_provider_supported(enum cp_auth_provider p);

/**
 * Parses the @p len bytes at @p data (borrowed; need not be NUL-terminated), the content
 * of the file called @p name (borrowed; a bare file name of at most CP_AUTHFILE_NAME_MAX
 * bytes, used in messages, for auth_index and kept in the struct). Rules:
 *  - at most CP_AUTHFILE_MAX_SIZE bytes and CP_AUTHFILE_MAX_DEPTH nesting (CM_ERR_LIMIT);
 *    not JSON or not an object -> CM_ERR_PARSE;
 *  - "type" is required (missing: CM_ERR_NOTFOUND) and a non-blank string (else
 *    CM_ERR_INVAL); matched ignoring ASCII case and blanks. An unsupported or unknown
 *    type still parses (provider tells which), so the caller can skip it with a warning;
 *    for those only type, email and the knobs are read;
 *  - codex/claude/qwen/iflow: tokens are optional strings; "expired"/"last_refresh" RFC
 *    3339 strings (see cp_authfile_parse_time(); "" = unknown); a present codex "id_token"
 *    must be a decodable JWT (header.payload.signature, payload base64url JSON object; the
 *    signature is not checked) and fills account_id (if the field is absent), email (if
 *    absent) and plan_type;
 *  - gemini: "project_id" string, "auto"/"checked" bools, optional "token" object with
 *    strings access_token, refresh_token, token_type, token_uri, client_id,
 *    client_secret, universe_domain, "scopes" (list of strings) and "expiry" (RFC 3339,
 *    fraction and zone offset allowed) -> has_expired/expired;
 *  - qwen: "resource_url" string; iflow: "api_key", "cookie", "token_type", "scope"
 *    strings;
 *  - knobs: disabled bool; priority integer or a string holding one (int32 range);
 *    prefix string without '/'; proxy_url, note strings; excluded_models string list;
 *    disable_cooling bool; headers object of strings.
 * An object that repeats a key is refused (CM_ERR_PARSE, as cm_json_parse() does).
 * Any field of the wrong type is CM_ERR_INVAL naming it. Returns CM_OK and *@p out
 * (caller frees with cp_authfile_free()), CM_ERR_NOMEM, or an error above with @p err
 * (may be NULL) filled. CM_ERR_INVAL for NULL arguments.
 */
int cp_authfile_parse(const char *name, const char *data, size_t len, struct cp_authfile **out,
                      struct cp_authfile_err *err);

/** Wipes the secrets and frees @p af and everything it owns. NULL is a no-op. */
void cp_authfile_free(struct cp_authfile *af);

/** Seconds before expiry at which @p af wants a refresh (codex 5 d, claude 4 h, gemini
 *  5 min, qwen 20 min, iflow 24 h; 0 others). */
int64_t cp_authfile_refresh_lead(const struct cp_authfile *af);

/**
 * true when @p af should be refreshed at the wall time of @p clk (NULL = real clock):
 * it has a refresh token and either expired - now <= its lead (at most half the token's
 * life, expired - last_refresh, when both are known), or its expiry is unknown
 * (we choose to refresh then: a refresh is the only way to learn the expiry, and a file
 * without "expired" is most likely a hand-made or old one). Without a refresh token:
 * false. Pure given the clock.
 */
bool cp_authfile_needs_refresh(const struct cp_authfile *af, const struct cm_clock *clk);

/** true when the expiry is known and now >= expired. Unknown expiry: false. Pure. */
bool cp_authfile_is_expired(const struct cp_authfile *af, const struct cm_clock *clk);

/**
 * Applies a successful token endpoint answer (the @p len bytes of JSON at @p resp,
 * borrowed) at the wall time of @p clk (NULL = real clock). The answer must carry a
 * non-empty "access_token" and an integer "expires_in" > 0; "refresh_token" and
 * "id_token" are optional (missing or "" keeps the old one). Then, as spec 3.1(c) / 3.2(c)
 * / 3.4(c) / 3.5(c) say, the struct and its JSON tree get: access_token, refresh_token,
 * id_token (codex), account_id (codex, from the new id_token, if non-empty), email
 * (codex: id_token claim; claude: "account"."email_address"; when given), resource_url
 * (qwen, when given), expired = now + expires_in and last_refresh = now (RFC 3339 UTC),
 * type. Gemini (spec 3.3(c)): only the nested "token" object changes (created if
 * missing): access_token, token_type (when given), expiry = now + expires_in (RFC 3339
 * UTC), refresh_token (when given); the struct's tokens and expiry follow. Every other
 * member of the tree stays as it was, in place. All or nothing: on error @p af is
 * unchanged. Returns CM_OK, CM_ERR_NOMEM, CM_ERR_PARSE / CM_ERR_LIMIT (answer not JSON /
 * too big), CM_ERR_NOTFOUND (access_token or expires_in missing), CM_ERR_UPSTREAM (iflow
 * answer without an access token, e.g. {"success":false,"code":"500","message":...}:
 * "iflow token: missing access token in response" plus the provider's code and message)
 * or CM_ERR_INVAL (a field of the wrong type or range, bad id_token, a provider this
 * build does not support), @p err (may be NULL) filled on failure.
 */
int cp_authfile_apply_refresh(struct cp_authfile *af, const char *resp, size_t len,
                              const struct cm_clock *clk, struct cp_authfile_err *err);

/**
 * Applies iFlow's getUserInfo answer (@p len bytes at @p resp, borrowed)
 * {"success":true,"data":{"apiKey","email","phone"}}: api_key (struct and tree) = apiKey,
 * and, when @p af has no email, email = data.email, else data.phone. Every other member
 * stays. All or nothing. CM_OK; CM_ERR_UPSTREAM ("success" false: the provider's message
 * is in @p err); CM_ERR_NOTFOUND (no data / empty apiKey); CM_ERR_PARSE / CM_ERR_LIMIT
 * (not JSON); CM_ERR_INVAL (not iflow, wrong field types); CM_ERR_NOMEM. @p err (may be
 * NULL) filled on failure.
 */
int cp_authfile_apply_iflow_userinfo(struct cp_authfile *af, const char *resp, size_t len,
                                     struct cp_authfile_err *err);

/**
 * Prints the tree of @p af as compact JSON plus a '\n' into a new string; caller frees
 * with cm_free() (wipe it first with cm_crypto_memzero(): it holds tokens).
 * *@p len_out (may be NULL) gets the length. CM_OK, CM_ERR_NOMEM, CM_ERR_INVAL.
 */
int cp_authfile_serialize(const struct cp_authfile *af, char **out, size_t *len_out);

/**
 * Writes the @p len bytes at @p data to @p path atomically with mode 0600
 * (cm_file_write_atomic(): a temporary file in the same directory, fsync, rename over
 * @p path, fsync the directory). On failure the old file at @p path is untouched, the
 * temporary is removed and the failing call is logged: CM_ERR_NOTFOUND (no directory),
 * CM_ERR_DENIED, CM_ERR_IO; CM_ERR_INVAL for NULL arguments or a path ending in '/';
 * CM_ERR_NOMEM. Blocking I/O: not for request
 * threads. Thread-safe (different paths).
 */
int cp_authfile_write(const char *path, const char *data, size_t len);

/**
 * Parses an RFC 3339 time "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" ('t'/'z' in
 * either case) into unix seconds (fraction dropped, i.e. rounded down). CM_OK or
 * CM_ERR_INVAL (not this form, a field out of range). Pure.
 */
int cp_authfile_parse_time(const char *s, int64_t *out);

/** Formats unix seconds @p t as "YYYY-MM-DDTHH:MM:SSZ" into @p out. CM_OK, CM_ERR_INVAL. */
int cp_authfile_format_time(int64_t t, char out[CP_AUTHFILE_TIME_SIZE]);

/**
 * The auth_index of the file called @p name: the first 8 bytes of SHA-256("file:" + name)
 * as 16 lowercase hex digits (spec section 2) into @p out. CM_OK; CM_ERR_INVAL for NULL;
 * CM_ERR_LIMIT for a name longer than CP_AUTHFILE_NAME_MAX bytes. Pure, no allocation.
 */
int cp_authfile_auth_index(const char *name, char out[CP_AUTHFILE_INDEX_SIZE]);

/**
 * The file name a new login gets (spec 3.1(a) .. 3.5(a)), as a new string the caller frees
 * with cm_free():
 *  - "codex": no plan -> "codex-<email>.json"; plan "team" -> "codex-<h>-<email>-team.json"
 *    with h = the first 8 hex digits of SHA-256(account_id) (no account_id: the last
 *    form); other plans -> "codex-<email>-<plan>.json". The plan is normalised: runs of
 *    characters other than ASCII letters and digits become one '-', trimmed, lowercased.
 *  - "claude": "claude-<email>.json" (plan and account_id ignored).
 *  - "gemini": "gemini-<email>-<project>.json" with @p account_id = the project id
 *    (required); "ALL" (any case) or a comma list -> "gemini-<email>-all.json".
 *  - "qwen": "qwen-<email>.json" (the email is the address or alias the user typed).
 *  - "iflow": "iflow-<email or phone>-<unix seconds>.json" with @p account_id = the
 *    login time as decimal digits (required).
 * The email is trimmed and '/', '\\', ':' and control bytes in it become '_' so the name
 * cannot leave the directory (the gemini project too). @p plan and @p account_id may be NULL
 * where not required.
 * CM_OK, CM_ERR_NOMEM, CM_ERR_INVAL (other provider, NULL or empty email).
 */
int cp_authfile_login_name(const char *provider, const char *email, const char *account_id,
                           const char *plan, char **out);

/**
 * A one-line description for logs, no secrets: "codex user@example.com
 * (codex-user@example.com.json)", "(no email)" when there is none. Always NUL-terminates
 * @p dst (cut if @p dstlen is too small; dstlen 0 writes nothing). Pure.
 */
void cp_authfile_describe(const struct cp_authfile *af, char *dst, size_t dstlen);

#endif
