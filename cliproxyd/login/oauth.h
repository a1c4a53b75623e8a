/* SPDX-License-Identifier: MIT */
/*
 * oauth.h - the pure half of the login flows (spec cliproxyapi.md 3.1(b) .. 3.5(b)): PKCE
 * from given random bytes, each provider's authorize URL and redirect URI, token / device
 * request bodies, parsing of a pasted redirect URL, of device and Code Assist answers, and
 * turning token answers into the auth-file JSON and its file name. No I/O, no clock, no
 * randomness of its own: random bytes and the time are passed in. Thread-safe.
 * Every string result is a new string the caller frees with cm_free() (those that hold a
 * token: wipe with cm_crypto_memzero() first). Messages never contain a token.
 */
#ifndef CP_LOGIN_OAUTH_H
#define CP_LOGIN_OAUTH_H

#include "cm/crypto.h"

#include <stddef.h>
#include <stdint.h>

#define CP_LOGIN_CODEX_CLIENT_ID "app_EMoamEEZ73f0CkXaXp7hrann"
#define CP_LOGIN_CLAUDE_CLIENT_ID "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#define CP_LOGIN_GEMINI_CLIENT_ID                                                                  \
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
#define CP_LOGIN_GEMINI_CLIENT_SECRET "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"
#define CP_LOGIN_QWEN_CLIENT_ID "f0304373b74a44d2b584a3fb70ca9e56"
#define CP_LOGIN_IFLOW_CLIENT_ID "10009311001"
#define CP_LOGIN_IFLOW_CLIENT_SECRET "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"
#define CP_LOGIN_CODEX_DEVICE_REDIRECT "https://auth.openai.com/deviceauth/callback"
#define CP_LOGIN_GEMINI_TOKEN_URI "https://oauth2.googleapis.com/token"

#define CP_LOGIN_VERIFIER_MAX 129 /* a 96-byte verifier (128 chars) + NUL */
#define CP_LOGIN_STATE_SIZE 33    /* 16 random bytes as hex + NUL */
#define CP_LOGIN_ERR_MAX 256

/** The login flows. */
enum cp_login_kind {
    CP_LOGIN_CODEX = 0,    /* -codex-login: browser, PKCE, port 1455 /auth/callback */
    CP_LOGIN_CODEX_DEVICE, /* -codex-device-login */
    CP_LOGIN_CLAUDE,       /* -claude-login: browser, PKCE, port 54545 /callback */
    CP_LOGIN_GEMINI,       /* -login: browser, no PKCE, port 8085 /oauth2callback */
    CP_LOGIN_QWEN,         /* -qwen-login: device flow + PKCE */
    CP_LOGIN_IFLOW,        /* -iflow-login: browser, no PKCE, port 11451 /oauth2callback */
    CP_LOGIN_IFLOW_COOKIE, /* -iflow-cookie */
    CP_LOGIN__COUNT
};

/** "codex", "codex-device", "claude", "gemini", "qwen", "iflow", "iflow-cookie". Static. */
const char *cp_login_kind_name(enum cp_login_kind k);

/** The provider key of config.h's enum cp_provider value for @p k (CP_PROVIDER_*). */
int cp_login_kind_provider(enum cp_login_kind k);

/** Default callback port (1455, 54545, 8085, 11451), 0 for flows without a callback. */
uint16_t cp_login_default_port(enum cp_login_kind k);

/** Callback path ("/auth/callback", "/callback", "/oauth2callback"), NULL without one. */
const char *cp_login_callback_path(enum cp_login_kind k);

/**
 * "http://localhost:<port><path>" for a callback flow (port 0 = the default) into @p out
 * (@p outlen bytes). CM_OK, CM_ERR_INVAL (no callback flow), CM_ERR_LIMIT.
 */
int cp_login_redirect_uri(enum cp_login_kind k, uint16_t port, char *out, size_t outlen);

/**
 * PKCE from @p n (32..96) random bytes at @p rnd: verifier = base64url-nopad(rnd) into
 * @p verifier (CP_LOGIN_VERIFIER_MAX bytes), challenge = S256(verifier) into @p challenge.
 * Codex uses 96 bytes (128 characters), Claude and Qwen 32 (43). CM_OK, CM_ERR_INVAL,
 * CM_ERR_NOMEM.
 */
int cp_login_pkce(const unsigned char *rnd, size_t n, char verifier[CP_LOGIN_VERIFIER_MAX],
                  char challenge[CM_CRYPTO_PKCE_SIZE]);

/**
 * Percent-encodes @p s (RFC 3986 unreserved kept, everything else %XX; space as %20) and
 * appends it to the string *@p out (NULL = start one). CM_OK, CM_ERR_NOMEM.
 */
int cp_login_urlencode(const char *s, char **out);

/**
 * The authorize URL of a browser flow (codex, claude, gemini, iflow) at @p auth_url
 * (borrowed, e.g. cp_config_url(.., CP_URL_AUTH)) with @p redirect_uri and @p state;
 * @p challenge is required for codex and claude, ignored otherwise. Parameters and
 * order as spec 3.1(b), 3.2(b), 3.3(b) (random state instead of "state-token"), 3.5(b).
 * CM_OK and *@p out, CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_login_authorize_url(enum cp_login_kind k, const char *auth_url, const char *redirect_uri,
                           const char *state, const char *challenge, char **out);

/** A request body and its Content-Type (static string). */
struct cp_login_body {
    char *data; /* caller frees (holds secrets: wipe first) */
    size_t len;
    const char *content_type; /* "application/x-www-form-urlencoded" or "application/json" */
};

/** What a code exchange needs; unused members may be NULL. */
struct cp_login_exchange {
    const char *code;
    const char *state;        /* claude */
    const char *redirect_uri; /* codex, claude, gemini, iflow */
    const char *verifier;     /* codex, claude */
};

/**
 * The token request body of the code exchange: codex (and codex-device) form, claude JSON,
 * gemini form with client id+secret, iflow form with client id+secret (the Basic header:
 * cp_login_iflow_basic()). CM_OK, CM_ERR_INVAL (other flow, missing member), CM_ERR_NOMEM.
 */
int cp_login_exchange_body(enum cp_login_kind k, const struct cp_login_exchange *x,
                           struct cp_login_body *out);

/** "Basic base64(client_id:client_secret)" of iFlow into a new string. CM_OK, CM_ERR_NOMEM. */
int cp_login_iflow_basic(char **out);

/** Frees and wipes @p b's data. NULL is a no-op. */
void cp_login_body_cleanup(struct cp_login_body *b);

/** What came back to the callback (or was pasted). Members NULL when absent. */
struct cp_login_callback {
    char *code;
    char *state;
    char *error; /* the provider's "error" (+ ": error_description") */
};

void cp_login_callback_cleanup(struct cp_login_callback *cb);

/**
 * Reads a pasted answer: a full redirect URL ("http://localhost:1455/auth/callback?code=..
 * &state=.."), a bare query string ("code=..&state=.."), or (Claude's page) "code#state".
 * Leading and trailing blanks are ignored; values are percent-decoded ('+' = space in
 * queries). CM_OK with at least one of code/error set; CM_ERR_PARSE otherwise;
 * CM_ERR_NOMEM.
 */
int cp_login_parse_callback(const char *text, struct cp_login_callback *out);

/**
 * The same for the query string of a callback request (@p query without '?').
 */
int cp_login_parse_query(const char *query, struct cp_login_callback *out);

/** A started device login (codex device or qwen). Strings owned, freed by cleanup. */
struct cp_login_device {
    char *device_code;      /* qwen device_code / codex device_auth_id */
    char *user_code;        /* shown to the user */
    char *verification_uri; /* qwen verification_uri_complete (else verification_uri) */
    int interval_s;         /* >= 1 */
    int expires_in_s;       /* qwen; 0 = unknown */
};

void cp_login_device_cleanup(struct cp_login_device *d);

/** The codex usercode request body: JSON {"client_id"}. */
int cp_login_codex_device_body(struct cp_login_body *out);

/**
 * Parses the codex usercode answer: device_auth_id, user_code (or usercode), interval
 * (string or integer; absent: 5; below 1: 1). CM_OK, CM_ERR_PARSE (not JSON),
 * CM_ERR_NOTFOUND (a field missing), CM_ERR_NOMEM; @p err (may be NULL) says which.
 */
int cp_login_codex_device_parse(const char *json, size_t len, struct cp_login_device *out,
                                char *err, size_t errlen);

/** The codex device poll body: JSON {"device_auth_id","user_code"}. */
int cp_login_codex_poll_body(const struct cp_login_device *d, struct cp_login_body *out);

/**
 * Parses a 2xx codex device poll answer: authorization_code and code_verifier (new
 * strings into *@p code and *@p verifier). CM_OK, CM_ERR_PARSE, CM_ERR_NOTFOUND, CM_ERR_NOMEM.
 */
int cp_login_codex_poll_parse(const char *json, size_t len, char **code, char **verifier);

/** The qwen device-code request (form: client_id, scope, code_challenge, S256). */
int cp_login_qwen_device_body(const char *challenge, struct cp_login_body *out);

/** Parses the qwen device answer (device_code, user_code, verification_uri[_complete],
 * expires_in, interval). As cp_login_codex_device_parse(). */
int cp_login_qwen_device_parse(const char *json, size_t len, struct cp_login_device *out, char *err,
                               size_t errlen);

/** The qwen poll request (form: grant_type device_code, client_id, device_code, verifier). */
int cp_login_qwen_poll_body(const struct cp_login_device *d, const char *verifier,
                            struct cp_login_body *out);

/** What a qwen poll answer means. */
enum cp_login_poll {
    CP_LOGIN_POLL_DONE = 0, /* tokens: build the file */
    CP_LOGIN_POLL_PENDING,  /* authorization_pending: ask again */
    CP_LOGIN_POLL_SLOWDOWN, /* slow_down: interval x 1.5, at most 10 s */
    CP_LOGIN_POLL_FAILED,   /* expired_token, access_denied, anything else */
};

/** Classifies a qwen poll answer of HTTP @p status. */
enum cp_login_poll cp_login_qwen_poll_classify(long status, const char *json, size_t len);

/** The next polling interval after slow_down: @p cur x 1.5, capped at 10 s. */
int cp_login_slow_down(int cur_s);

/** A finished login: the file name (no directory) and its JSON (with a '\n'). */
struct cp_login_file {
    char *name;
    char *json; /* holds tokens: cp_login_file_cleanup() wipes it */
    size_t len;
    char *email; /* for the user ("user@example.com"); no secret */
};

void cp_login_file_cleanup(struct cp_login_file *f);

/**
 * Codex and Claude: the token answer @p tok (@p len bytes JSON with access_token and
 * expires_in > 0) at unix time @p now becomes the file of spec 3.1(a) / 3.2(a); codex
 * reads email, account id and plan from the id_token (through cp_authfile's decoder),
 * claude reads account.email_address. Name: cp_authfile_login_name(). CM_OK,
 * CM_ERR_PARSE, CM_ERR_NOTFOUND (no email), CM_ERR_INVAL, CM_ERR_NOMEM; @p err says why.
 */
int cp_login_file_codex_claude(enum cp_login_kind k, const char *tok, size_t len, int64_t now,
                               struct cp_login_file *out, char *err, size_t errlen);

/**
 * Gemini (spec 3.3(a)): token answer + @p email (userinfo) + @p project_id (one id, "all"
 * for multi-project, or "" when none could be set up) + @p scopes (space-separated) ->
 * {"token":{...},"project_id","email","auto","checked","type":"gemini"};
 * auto = true when the project came from Code Assist setup (@p auto_project).
 */
int cp_login_file_gemini(const char *tok, size_t len, const char *email, const char *project_id,
                         int auto_project, int64_t now, struct cp_login_file *out, char *err,
                         size_t errlen);

/** Qwen (spec 3.4(a)): token answer + the email/alias the user gave. */
int cp_login_file_qwen(const char *tok, size_t len, const char *email, int64_t now,
                       struct cp_login_file *out, char *err, size_t errlen);

/** iFlow OAuth (spec 3.5(a)): token answer + getUserInfo answer (data.apiKey, email|phone). */
int cp_login_file_iflow(const char *tok, size_t len, const char *info, size_t info_len, int64_t now,
                        struct cp_login_file *out, char *err, size_t errlen);

/**
 * iFlow cookie: only the "BXAuth=..." part of @p cookie (a Cookie header value) into a new
 * string "BXAuth=<v>;". CM_OK, CM_ERR_NOTFOUND (no BXAuth), CM_ERR_NOMEM.
 */
int cp_login_iflow_bxauth(const char *cookie, char **out);

/**
 * iFlow cookie: from the GET apikey answer, the key "name" (new string). CM_OK,
 * CM_ERR_PARSE, CM_ERR_NOTFOUND.
 */
int cp_login_iflow_key_name(const char *json, size_t len, char **name);

/**
 * iFlow cookie: the file from the POST apikey answer ({data:{name, apiKey, expireTime
 * "YYYY-MM-DD HH:MM"}}; expireTime read as UTC) and the BXAuth cookie.
 */
int cp_login_file_iflow_cookie(const char *json, size_t len, const char *bxauth, int64_t now,
                               struct cp_login_file *out, char *err, size_t errlen);

/** The loadCodeAssist body (metadata + cloudaicompanionProject when @p project). */
int cp_login_gemini_load_body(const char *project, struct cp_login_body *out);

/**
 * Reads a loadCodeAssist answer: *@p tier = allowedTiers[isDefault].id ("legacy-tier" if
 * none), *@p project = cloudaicompanionProject (string or {id}; NULL if none). CM_OK,
 * CM_ERR_PARSE, CM_ERR_NOMEM.
 */
int cp_login_gemini_load_parse(const char *json, size_t len, char **tier, char **project);

/** The onboardUser body {"tierId","metadata","cloudaicompanionProject"?}. */
int cp_login_gemini_onboard_body(const char *tier, const char *project, struct cp_login_body *out);

/**
 * Reads an onboardUser answer: *@p done = done:true; then *@p project =
 * response.cloudaicompanionProject (string or {id}), NULL if none. CM_OK, CM_ERR_PARSE.
 */
int cp_login_gemini_onboard_parse(const char *json, size_t len, int *done, char **project);

/** Reads the userinfo answer's "email" (Google) into a new string. CM_OK, CM_ERR_PARSE,
 * CM_ERR_NOTFOUND. */
int cp_login_userinfo_email(const char *json, size_t len, char **email);

#endif
