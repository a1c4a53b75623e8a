/* SPDX-License-Identifier: MIT */
/*
 * http.h - a blocking HTTP call over the shared asynchronous client (cm_httpc): start the
 * transfer, wait on a condition variable for on_done, hand back status and body. For the
 * login flows and the management API's login worker threads only, never a server thread.
 */
#ifndef CP_LOGIN_HTTP_H
#define CP_LOGIN_HTTP_H

#include "cm/httpc.h"

#include <stddef.h>

#define CP_LOGIN_HTTP_MAX (1024 * 1024) /* answers are capped at 1 MiB */

/** A finished call. body is NUL-terminated (never NULL after CM_OK); caller cleans up. */
struct cp_login_http_resp {
    long status;
    char *body;
    size_t len;
};

/**
 * Sends @p method @p url with @p n_headers "Name: value" lines and @p body (may be NULL)
 * through @p hc and waits for the answer, at most @p timeout_ms (0: 30 s). CM_OK with
 * *@p out filled for any HTTP status; CM_ERR_TIMEOUT, CM_ERR_UPSTREAM (connect, reset;
 * the reason goes to @p err, no secrets: curl's message), CM_ERR_NOMEM, CM_ERR_LIMIT.
 * Blocks the calling thread. Arguments are borrowed.
 */
int cp_login_http(struct cm_httpc *hc, const char *method, const char *url,
                  const char *const *headers, size_t n_headers, const void *body, size_t body_len,
                  long timeout_ms, struct cp_login_http_resp *out, char *err, size_t errlen);

/** Wipes and frees the body. NULL is a no-op. */
void cp_login_http_resp_cleanup(struct cp_login_http_resp *r);

#endif
