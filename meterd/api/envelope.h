/* SPDX-License-Identifier: MIT */
/*
 * envelope.h - NewAPI's admin API conventions (spec newapi.md 3.1): the envelope
 * {"success","message","data"} (failures are HTTP 200 with success false, except the auth
 * failures of 2.2), pagination (p, page_size|ps|size, capped at 100, data
 * {"page","page_size","total","items"}), the X-Oneapi-Request-Id and X-New-Api-Version
 * headers, query and path parameters (lenient for pagination as NewAPI, strict where
 * meterd asks for a number), a reply whose top level is not the envelope, and reading a
 * JSON body (and an array of ids in it). Every failure is also logged with the request id.
 */
#ifndef MT_API_ENVELOPE_H
#define MT_API_ENVELOPE_H

#include "cm/httpd.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define MT_API_VERSION "v0.1.0-meterd"
#define MT_API_PAGE_MAX 100

/** 200 {"success":true,"message":"","data":@p data}; @p data is consumed (NULL: no data). */
void mt_api_ok(struct cm_httpd_req *r, cJSON *data);

/**
 * As mt_api_ok(), for @p data straight from a builder: NULL (the builder ran out of memory)
 * is answered HTTP 500 "out of memory" instead of a success without data.
 */
void mt_api_ok_data(struct cm_httpd_req *r, cJSON *data);

/** 200 {"success":true,"message":@p msg}. */
void mt_api_ok_msg(struct cm_httpd_req *r, const char *msg);

/** 200 {"success":false,"message":...} (printf-style), and a log line. */
void mt_api_fail(struct cm_httpd_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** As mt_api_fail() with another HTTP status (401/403/404/413/500...). */
void mt_api_fail_status(struct cm_httpd_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Answers a failed store call @p rc about @p what @p id ("channel", 7): CM_ERR_NOTFOUND as
 * "<what> <id> not found" (HTTP 200, as NewAPI), anything else as HTTP 500
 * "cannot <verb> <what> <id>: <error>".
 */
void mt_api_fail_store(struct cm_httpd_req *r, int rc, const char *verb, const char *what,
                       int64_t id);

/** 200 with @p root (consumed) as the whole body, with the NewAPI headers. Any thread. */
void mt_api_reply_obj(struct cm_httpd_req *r, cJSON *root);

/** The NewAPI headers every /api answer carries; called by the replies above. */
void mt_api_headers(struct cm_httpd_req *r);

/** Pagination of the query: 1-based page, page size (default 10, at most 100), offset. */
struct mt_page {
    int64_t page;
    int size;
    int64_t offset;
};
void mt_api_page(struct cm_httpd_req *r, struct mt_page *p);

/** {"page","page_size","total","items":@p items} (@p items consumed). NULL on OOM. */
cJSON *mt_api_paged(const struct mt_page *p, int64_t total, cJSON *items);

/**
 * Parses the request body as a JSON object into *@p out (caller frees with cJSON_Delete).
 * 0 on success; otherwise the failure has been answered and non-zero is returned.
 */
int mt_api_body(struct cm_httpd_req *r, cJSON **out);

/**
 * Member @p name of @p body as an array of 1..@p max positive integer ids into *@p ids
 * (cm_free) / *@p n. 0, or -1 after answering the failure.
 */
int mt_api_body_ids(struct cm_httpd_req *r, const cJSON *body, const char *name, size_t max,
                    int64_t **ids, size_t *n);

/** A positive integer path parameter @p name; 0 when missing or malformed. */
int64_t mt_api_param_id(struct cm_httpd_req *r, const char *name);

/**
 * The path parameter "id" of a @p what ("channel") into *@p id: 0, or -1 after answering
 * "invalid <what> id \"<text>\"".
 */
int mt_api_path_id(struct cm_httpd_req *r, const char *what, int64_t *id);

/**
 * Query parameter @p name as an integer in [@p min, @p max]; absent or "" gives @p def.
 * 0 with *@p out set, or -1 after answering the failure (name, what was expected): strict,
 * where NewAPI would silently read 0.
 */
int mt_api_arg_int(struct cm_httpd_req *r, const char *name, int64_t min, int64_t max, int64_t def,
                   int64_t *out);

/** Query parameter @p name, or "" when absent (borrowed; handler thread only). */
const char *mt_api_arg_str(struct cm_httpd_req *r, const char *name);

#endif
