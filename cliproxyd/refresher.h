/* SPDX-License-Identifier: MIT */
/*
 * refresher.h - keeps OAuth tokens fresh: every few seconds it asks the auth store which
 * credentials are due (Codex 5 days, Claude 4 h, Gemini 5 min, Qwen 20 min, iFlow 24 h
 * before expiry), sends each refresh grant to its provider's token URL
 * (cp_config_token_url(), i.e. upstreams.<provider>.token-url) through the shared HTTP
 * client (and the credential's or the global proxy), and hands the answer back to the
 * store, which writes the file atomically. iFlow takes two calls: the token grant, then
 * GET <userinfo-url>?accessToken=<new token> for the API key; the file is written once
 * with both. Spec cliproxyapi.md 3.1(c), 3.2(c), 3.3(c), 3.4(c), 3.5(c), 4.8.
 *
 * Its own thread applies answers (file I/O), so neither request threads nor the HTTP
 * client's I/O thread ever block on a refresh.
 */
#ifndef CP_REFRESHER_H
#define CP_REFRESHER_H

#include "authfile.h"
#include "server.h"

#include <stddef.h>

struct cp_refresher;

#define CP_REFRESH_GEMINI_CLIENT_ID                                                                \
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
#define CP_REFRESH_GEMINI_CLIENT_SECRET "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"
#define CP_REFRESH_QWEN_CLIENT_ID "f0304373b74a44d2b584a3fb70ca9e56"
#define CP_REFRESH_IFLOW_CLIENT_ID "10009311001"
#define CP_REFRESH_IFLOW_CLIENT_SECRET "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"

/** One refresh grant's body and headers, as cp_refresher_build_request() makes it. */
struct cp_refresh_req {
    char *body;       /* owned; holds the refresh token: wiped by cleanup */
    size_t len;       /* body length */
    char *headers[3]; /* owned "Name: value" lines: Content-Type, Accept, maybe Authorization */
    size_t n_headers;
};

/**
 * The refresh grant for credential file @p af (borrowed; needs a refresh token), pure:
 *  - codex: form client_id=<Codex CLI>&grant_type=refresh_token&refresh_token=..&
 *    scope=openid%20profile%20email;
 *  - claude: JSON {"client_id":<Claude Code>,"grant_type":"refresh_token","refresh_token":..};
 *  - gemini: form grant_type=refresh_token&refresh_token=..&client_id=..&client_secret=..
 *    (the file's token.client_id / client_secret, else the Gemini CLI public ones);
 *  - qwen: form grant_type=refresh_token&refresh_token=..&client_id=<Qwen Code>;
 *  - iflow: form grant_type=refresh_token&refresh_token=..&client_id=..&client_secret=..
 *    plus Authorization: Basic base64(client_id:client_secret).
 * Forms are application/x-www-form-urlencoded with every value percent-encoded (all but
 * A-Z a-z 0-9 - . _ ~); all carry Accept: application/json. CM_OK and *@p out (caller
 * frees with cp_refresh_req_cleanup()); CM_ERR_INVAL (no refresh token, a provider
 * without refresh, a claude token JSON cannot carry); CM_ERR_NOMEM.
 */
int cp_refresher_build_request(const struct cp_authfile *af, struct cp_refresh_req *out);

/** Frees and wipes what @p r owns; zeroes it. Safe on a zeroed struct and twice. */
void cp_refresh_req_cleanup(struct cp_refresh_req *r);

/**
 * iFlow's user-info URL: @p url + ("?" or "&" when @p url has a query) +
 * "accessToken=" + the percent-encoded @p access_token. *@p out (caller frees with
 * cm_free(); it holds a secret) . CM_OK, CM_ERR_INVAL (NULL / empty), CM_ERR_NOMEM.
 */
int cp_refresher_userinfo_url(const char *url, const char *access_token, char **out);

/**
 * Starts refreshing for @p srv (borrowed: its cfg, store and client must outlive the
 * refresher), checking every @p period_ms (0 = 5000). CM_OK, CM_ERR_NOMEM, CM_ERR_IO.
 */
int cp_refresher_new(struct cp_server *srv, unsigned period_ms, struct cp_refresher **out);
/** Asks for a check now (any thread). */
void cp_refresher_poke(struct cp_refresher *r);

/**
 * Called once per cp_refresher_refresh_now() with the result: @p ok = 1 when the
 * credential now holds new tokens (use it again), 0 when the refresh failed;
 * @p permanent = 1 when that failure marked it needs re-login. Runs on the refresher's
 * thread (or the caller of cp_refresher_stop()); must not call back into the refresher
 * except cp_refresher_refresh_now() for another credential.
 */
typedef void (*cp_refresher_done_fn)(void *ud, int ok, int permanent);

/**
 * Refreshes credential @p id now, whatever its expiry (an upstream answered 401 to its
 * token), and calls @p cb with the outcome: after this refresh, or after one already in
 * flight for @p id, or with ok = 0 when @p id cannot be refreshed, after 60 s without an
 * answer, or at stop. Any thread. CM_OK (@p cb will be called exactly once), CM_ERR_INVAL,
 * CM_ERR_NOMEM, CM_ERR_CLOSED (stopping; @p cb is not called).
 */
int cp_refresher_refresh_now(struct cp_refresher *r, const char *id, cp_refresher_done_fn cb,
                             void *ud);
/**
 * Stops the thread (no new refresh starts afterwards). Shutdown order: stop the
 * refresher, free the HTTP client (in-flight refreshes end, their answers are queued
 * and dropped), then cp_refresher_free().
 */
void cp_refresher_stop(struct cp_refresher *r);
/** Stops (if needed) and frees. NULL is a no-op. */
void cp_refresher_free(struct cp_refresher *r);

#endif
