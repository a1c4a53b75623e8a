/* SPDX-License-Identifier: MIT */
/*
 * errors.h - the relay's request id and error bodies (spec newapi.md 4.7, 4.8):
 *  - request id: YYYYMMDDHHMMSS (UTC) + nanoseconds (not zero-padded) + 8 hex of the build
 *    + 8 random alphanumerics, as NewAPI makes it; sent as X-Oneapi-Request-Id and stored
 *    in logs.request_id;
 *  - errors, each message ending in " (request id: <id>)":
 *      middleware (key, token, group, rate limit): {"error":{"message","type","code"}}
 *      relay (OpenAI routes):  {"error":{"message","type","param":"","code"}}
 *      relay (/v1/messages):   {"type":"error","error":{"type","message"}}
 */
#ifndef MT_RELAY_ERRORS_H
#define MT_RELAY_ERRORS_H

#include "cm/httpd.h"

#include <stddef.h>

#define MT_RELAY_RID_MAX 64

enum mt_relay_err_shape {
    MT_RELAY_ERR_MIDDLEWARE = 0, /* NewAPI's abortWithOpenAiMessage: no "param" */
    MT_RELAY_ERR_OPENAI,         /* relay failure on an OpenAI route */
    MT_RELAY_ERR_CLAUDE,         /* relay failure on /v1/messages */
};

/** A new NewAPI-format request id into @p out. */
void mt_relay_request_id(char out[MT_RELAY_RID_MAX]);

/**
 * The error body: @p msg + " (request id: @p rid)" (@p rid NULL: no suffix), @p type
 * (NULL: "new_api_error"), @p code (NULL: ""). *@p out (cm_free) and *@p len.
 * CM_OK, CM_ERR_NOMEM.
 */
int mt_relay_error_body(enum mt_relay_err_shape shape, const char *type, const char *code,
                        const char *msg, const char *rid, char **out, size_t *len);

/**
 * Replies with that body and @p status, and logs one line (WARN; ERROR for 5xx) with the
 * method, path and message. The X-Oneapi-Request-Id header is the caller's (added before).
 */
void mt_relay_reply_error(struct cm_httpd_req *r, const char *rid, enum mt_relay_err_shape shape,
                          unsigned status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#endif
