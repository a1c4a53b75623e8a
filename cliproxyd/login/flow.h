/* SPDX-License-Identifier: MIT */
/*
 * flow.h - the I/O half of the login flows: the command-line logins (-codex-login,
 * -codex-device-login, -claude-login, -login, -qwen-login, -iflow-login, -iflow-cookie)
 * and the steps the management API shares with them (start a browser login, finish it
 * with a code, run a device poll, the cookie login). Every endpoint comes from
 * cp_config_url() of the given config, the redirect URI is always the real
 * http://localhost:<port>/... of the provider. Files go to auth-dir with mode 0600
 * (cp_authfile_write), where a running daemon's watcher picks them up.
 * Nothing here prints or logs a token. Blocking: never call from a server thread.
 */
#ifndef CP_LOGIN_FLOW_H
#define CP_LOGIN_FLOW_H

#include "config.h"
#include "login/oauth.h"

#include <stdint.h>
#include <stdio.h>

struct cm_httpc;

#define CP_LOGIN_TIMEOUT_DEFAULT_S 300 /* callbacks wait 5 min (CLIPROXYD_LOGIN_TIMEOUT_S) */
#define CP_LOGIN_PATH_MAX 4096

/** Options of one command-line login. */
struct cp_login_opts {
    enum cp_login_kind kind;
    int no_browser;         /* 1: only print the URL (never xdg-open) */
    uint16_t callback_port; /* 0: the provider's default */
    const char *project_id; /* gemini: an id, "ALL" or a comma list; NULL: Code Assist setup */
    const char *email;      /* qwen: the email/alias; NULL: asked on @p in_fd */
    const char *cookie;     /* iflow-cookie: the Cookie value; NULL: read from @p in_fd */
    int in_fd;              /* where a pasted redirect URL / answers come from (0) */
    FILE *out;              /* where the user reads instructions (stdout) */
    int timeout_s;          /* callback and device wait; 0: CLIPROXYD_LOGIN_TIMEOUT_S or 300 */
};

/**
 * Runs one login to the end: prints what the user must open, waits for the callback on
 * 127.0.0.1:<port> or a pasted redirect URL on in_fd (whichever comes first), checks the
 * state, exchanges the code, fetches what the provider needs (userinfo, Code Assist
 * project, iFlow API key) and writes the file, printing its path. @p cfg borrowed.
 * CM_OK; otherwise an error code and one line in @p err (no secrets): CM_ERR_TIMEOUT,
 * CM_ERR_AUTH (provider error, state mismatch), CM_ERR_UPSTREAM (an endpoint failed),
 * CM_ERR_IO (callback port busy, file not written), CM_ERR_NOMEM, CM_ERR_INVAL.
 */
int cp_login_run(const struct cp_config *cfg, const struct cp_login_opts *o, char *err,
                 size_t errlen);

/** A browser login that was started and waits for its code. Plain data, no pointers. */
struct cp_login_pending {
    enum cp_login_kind kind;
    char state[CP_LOGIN_STATE_SIZE];
    char verifier[CP_LOGIN_VERIFIER_MAX]; /* "" for gemini and iflow */
    char redirect_uri[128];
};

/**
 * Starts a browser login (codex, claude, gemini, iflow): fresh random state (and PKCE),
 * redirect URI on @p port (0: default) and the authorize URL at cfg's auth-url into
 * *@p url (caller frees with cm_free()). CM_OK, CM_ERR_INVAL, CM_ERR_NOMEM, CM_ERR_INTERNAL.
 */
int cp_login_begin(const struct cp_config *cfg, enum cp_login_kind kind, uint16_t port,
                   struct cp_login_pending *p, char **url);

/**
 * Finishes a browser login with @p code: token exchange, the provider's extra calls
 * (gemini: userinfo, then @p project_id or Code Assist setup; iflow: getUserInfo), then
 * the file in cfg's auth-dir (created 0700 if missing). The full path goes to @p path
 * (may be NULL) and the account's email to @p email (may be NULL). Errors as
 * cp_login_run(). Uses @p hc for every call (blocking).
 */
int cp_login_finish(const struct cp_config *cfg, struct cm_httpc *hc,
                    const struct cp_login_pending *p, const char *code, const char *project_id,
                    char path[CP_LOGIN_PATH_MAX], char *email, size_t email_len, char *err,
                    size_t errlen);

/**
 * Qwen device login, first half: PKCE (verifier into @p verifier), the device-code
 * request; *@p d filled (cleanup with cp_login_device_cleanup()). Errors as above.
 */
int cp_login_qwen_start(const struct cp_config *cfg, struct cm_httpc *hc, struct cp_login_device *d,
                        char verifier[CP_LOGIN_VERIFIER_MAX], char *err, size_t errlen);

/**
 * Qwen device login, second half: polls the token URL until done, refused or
 * @p timeout_s, then writes qwen-<email>.json. *@p stop (may be NULL) set to non-zero
 * ends the wait early (CM_ERR_CLOSED). Path and errors as cp_login_finish().
 */
int cp_login_qwen_poll(const struct cp_config *cfg, struct cm_httpc *hc,
                       const struct cp_login_device *d, const char *verifier, const char *email,
                       int timeout_s, const volatile int *stop, char path[CP_LOGIN_PATH_MAX],
                       char *err, size_t errlen);

/**
 * iFlow cookie login: keeps the BXAuth part of @p cookie, reads the key name, mints a
 * fresh key, writes iflow-<name>-<unix>.json. Path, email and errors as cp_login_finish().
 */
int cp_login_iflow_cookie(const struct cp_config *cfg, struct cm_httpc *hc, const char *cookie,
                          char path[CP_LOGIN_PATH_MAX], char *email, size_t email_len, char *err,
                          size_t errlen);

#endif
