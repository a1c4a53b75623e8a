/* SPDX-License-Identifier: MIT */
/*
 * mgmt_oauth.h - the management API's web logins (spec cliproxyapi.md 1.4, "web OAuth
 * sequence"):
 *   GET  /v0/management/{codex,anthropic,gemini-cli,iflow}-auth-url[?project_id=]
 *        -> {"status":"ok","url","state"}: a pending session (PKCE/state of login/flow.h)
 *   GET  /v0/management/qwen-auth-url[?email=] -> {"status":"ok","url","state","user_code"};
 *        the device code is then polled in the background
 *   POST /v0/management/iflow-auth-url {"cookie"} -> {"status":"ok","saved_path","email"}
 *   POST /v0/management/oauth-callback {provider, redirect_url} | {provider, code, state}
 *   GET  /v0/management/get-auth-status?state= -> {"status":"wait"|"ok"|"error","error"?}
 *   GET  /codex/callback, /anthropic/callback, /google/callback, /iflow/callback (no auth):
 *        complete a pending session, answer an HTML page ("Authentication successful!")
 * A session waits at most 5 min for its code ("Timeout waiting for OAuth callback"); its
 * result is kept 5 more minutes for get-auth-status. Code exchanges, device polling and
 * the cookie login run on worker threads with their own HTTP client, never on a server
 * thread. Files land in auth-dir (0600), where the auth store's watcher picks them up.
 */
#ifndef CP_API_MGMT_OAUTH_H
#define CP_API_MGMT_OAUTH_H

#include "cm/httpd.h"
#include "server.h"

struct cp_mgmt_oauth;

/** The management gate: 0 when the request may go on, else it has replied. */
typedef int (*cp_mgmt_gate_fn)(void *ud, struct cm_httpd_req *r);

/** New session table; @p srv borrowed (its cfg is read per request). CM_ERR_NOMEM, CM_ERR_IO. */
int cp_mgmt_oauth_new(struct cp_server *srv, struct cp_mgmt_oauth **out);

/** Stops the workers (waits for them: at most one HTTP timeout) and frees. NULL no-op. */
void cp_mgmt_oauth_free(struct cp_mgmt_oauth *o);

/**
 * Registers the routes above on @p s; the /v0/management ones call @p gate (with
 * @p gate_ud) first, the /<provider>/callback sinks need no key (the state is the secret).
 */
int cp_mgmt_oauth_routes(struct cm_httpd *s, struct cp_mgmt_oauth *o, cp_mgmt_gate_fn gate,
                         void *gate_ud);

#endif
