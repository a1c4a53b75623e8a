/* SPDX-License-Identifier: MIT */
/*
 * api.h - meterctl's HTTP client (libcurl easy API, blocking: one request at a time) and
 * NewAPI's admin conventions on top of it (spec newapi.md 2.2, 3.1): the access token in
 * Authorization, the mandatory New-Api-User header, the {"success","message","data"}
 * envelope, and errors turned into one clear sentence with the HTTP status and NewAPI's
 * message. Secrets never reach the output: --verbose traces and error messages pass
 * through cm_log_mask(), and the access token itself is never printed.
 * Responses are capped at MC_API_BODY_MAX bytes.
 */
#ifndef MC_API_H
#define MC_API_H

#include "cm/buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MC_API_BODY_MAX ((size_t)32 << 20)
#define MC_API_MSG_MAX 512
#define MC_API_RID_MAX 128

/** Why a request failed: rc says what kind, msg says it to a human. */
struct mc_api_err {
    int rc;                   /* CM_ERR_UPSTREAM (no connection / transport error), CM_ERR_TIMEOUT,
                                 CM_ERR_AUTH (401/403, or an "Unauthorized" message), CM_ERR_NOTFOUND (404),
                                 CM_ERR_DENIED (success false), CM_ERR_PARSE (answer not NewAPI JSON),
                                 CM_ERR_LIMIT (answer too large), CM_ERR_NOMEM */
    long status;              /* HTTP status; 0 when there was no answer */
    char msg[MC_API_MSG_MAX]; /* masked, control characters removed */
};

/** The client. Caller-owned; mc_api_init() / mc_api_cleanup(). */
struct mc_api {
    const char *base;  /* meterd base URL without trailing '/' (borrowed) */
    const char *token; /* access token (borrowed; may be NULL for public routes) */
    int64_t user;      /* New-Api-User */
    long timeout_s;    /* whole-request timeout */
    FILE *trace;       /* --verbose: requests and answers, masked; NULL = off */
    void *_curl;       /* private: the easy handle, reused (keep-alive) */
};

/** A raw HTTP answer. */
struct mc_http_resp {
    long status;
    struct cm_buf body;              /* NUL-terminated */
    char request_id[MC_API_RID_MAX]; /* X-Oneapi-Request-Id, "" when absent */
    double seconds;                  /* total time */
};

/** Once per process, before anything else here (curl_global_init). CM_OK or CM_ERR_INTERNAL. */
int mc_api_global_init(void);
void mc_api_global_cleanup(void);

/** CM_OK or CM_ERR_NOMEM. */
int mc_api_init(struct mc_api *a, const char *base, const char *token, int64_t user,
                long timeout_s);
void mc_api_cleanup(struct mc_api *a);

void mc_http_resp_init(struct mc_http_resp *r);
void mc_http_resp_cleanup(struct mc_http_resp *r);

/**
 * One request to any @p url: @p headers (NULL-terminated "Name: value" list, may be NULL),
 * @p body (JSON text; NULL = none). Any HTTP status is CM_OK: look at out->status. Fails
 * only without an answer: CM_ERR_UPSTREAM / CM_ERR_TIMEOUT / CM_ERR_LIMIT / CM_ERR_NOMEM
 * with @p err filled ("cannot reach http://...: Connection refused").
 */
int mc_http(struct mc_api *a, const char *method, const char *url, const char *const *headers,
            const char *body, struct mc_http_resp *out, struct mc_api_err *err);

/* flags of mc_api_request() */
#define MC_API_RAW                                                                                 \
    1u /* success:false is not an error (routes whose answer is not the                            \
          standard envelope, like the channel test) */

/**
 * An admin API call: @p method @p path (starting with "/api/") on a->base with
 * Authorization and New-Api-User, @p body (may be NULL) sent as JSON. On CM_OK *@p root is
 * the whole parsed answer (caller cJSON_Delete()s it): an object with "success": true
 * (or any object with MC_API_RAW). Otherwise the error is in @p err (see mc_api_envelope()).
 */
int mc_api_request(struct mc_api *a, const char *method, const char *path, const cJSON *body,
                   unsigned flags, cJSON **root, struct mc_api_err *err);

/**
 * Reads a NewAPI answer (pure; exported for tests): @p status with @p len bytes of @p body.
 * CM_OK with *@p root (caller frees) when the body is a JSON object and, unless
 * MC_API_RAW, "success" is true. Otherwise @p err gets rc and a message: 401/403 and
 * "Unauthorized..." messages -> CM_ERR_AUTH; 404 -> CM_ERR_NOTFOUND ("the route does not
 * exist in this meterd" when the body is not NewAPI's); other non-2xx -> CM_ERR_UPSTREAM;
 * success false -> CM_ERR_DENIED; a non-JSON body -> CM_ERR_PARSE. The message is NewAPI's
 * "message" (or an OpenAI-style error.message), masked.
 */
int mc_api_envelope(long status, const char *body, size_t len, unsigned flags, cJSON **root,
                    struct mc_api_err *err);

/**
 * Every item of a paged admin list: GET @p path (may already hold a query) with p=1,2,...
 * and page_size=100 until `total` items are read or a page comes back short (at most
 * @p max_items). Accepts data as {"items":[...],"total":n} or as a bare array. *@p items is
 * a new array (caller frees). CM_OK or mc_api_request()'s errors.
 */
int mc_api_list(struct mc_api *a, const char *path, size_t max_items, cJSON **items,
                struct mc_api_err *err);

/** Percent-encodes @p s for a query value into *@p out (cm_malloc'd). CM_OK, CM_ERR_NOMEM. */
int mc_api_escape(const char *s, char **out);

#endif
