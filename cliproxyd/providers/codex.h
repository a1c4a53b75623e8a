/* SPDX-License-Identifier: MIT */
/*
 * codex.h - the Codex (ChatGPT OAuth) upstream: what a /responses call must carry
 * (spec cliproxyapi.md 3.1(d)) and how its errors drive the scheduler (3.1(e)).
 * No I/O; the caller sends with cm_httpc.
 */
#ifndef CP_PROVIDERS_CODEX_H
#define CP_PROVIDERS_CODEX_H

#include <stddef.h>
#include <stdint.h>

#include "authstore.h"
#include "providers/upreq.h"
#include "scheduler.h"

#define CP_CODEX_DEFAULT_UA                                                                        \
    "codex-tui/0.118.0 (Mac OS 26.3.1; arm64) iTerm.app/3.6.9 (codex-tui; 0.118.0)"

/**
 * Builds the request for credential @p c (borrowed) at @p base_url (e.g.
 * https://chatgpt.com/backend-api/codex): POST {base}/responses with Authorization,
 * Accept: text/event-stream, Chatgpt-Account-Id, Originator (@p client_originator or
 * codex-tui), User-Agent (@p client_ua when it is a Codex client's, else the default),
 * Session_id = @p session_id, and the credential file's own headers last.
 * CM_OK, CM_ERR_INVAL (no access token), CM_ERR_NOMEM. *@p out (caller cleans up with
 * cp_upreq_cleanup()) is written only on CM_OK and contains a secret: never log it.
 */
int cp_codex_build(const char *base_url, const struct cp_authstore_cred *c, const char *session_id,
                   const char *client_originator, const char *client_ua, struct cp_upreq *out);

/**
 * The prompt-cache session id for a client key: a UUID-formatted id derived from
 * SHA-256("cli-proxy-api:codex:prompt-cache:" + key), stable per key (CLIProxyAPI uses a
 * UUIDv5 of the same string; only stability matters to the upstream cache). @p out gets
 * 36 characters and a NUL.
 */
void cp_codex_session_id(const char *key, size_t len, char out[37]);

/**
 * Turns an upstream answer (status and error body) into a scheduler outcome, at wall
 * time @p now_s: 429 usage_limit_reached -> the hint from resets_at (wins) or
 * resets_in_seconds; "model is at capacity" bodies count as 429; @p retry_after
 * (the Retry-After header, NULL if none) is a hint too; 400 invalid_request_error and
 * 422 are request-scoped. Pure.
 */
void cp_codex_outcome(long status, const char *body, size_t len, const char *retry_after,
                      int64_t now_s, struct cp_sched_outcome *o);

#endif
