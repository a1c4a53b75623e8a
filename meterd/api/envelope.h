/* SPDX-License-Identifier: MIT */
/*
 * envelope.h - NewAPI's admin API conventions (spec newapi.md 3.1): the envelope
 * {"success","message","data"} (failures are HTTP 200 with success false, except the auth
 * failures of 2.2), pagination (p, page_size|ps|size, capped at 100, data
 * {"page","page_size","total","items"}), the X-Oneapi-Request-Id and X-New-Api-Version
 * headers, and reading a JSON body. Every failure is also logged with the request id.
 */
#ifndef MT_API_ENVELOPE_H
#define MT_API_ENVELOPE_H

#include "cm/httpd.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define MT_API_VERSION "v0.1.0-meterd"
#define MT_API_PAGE_MAX 100

/** 200 {"success":true,"message":"","data":@p data}; @p data is consumed (NULL: no data). */
void mt_api_ok(struct cm_httpd_req *r, cJSON *data);

/** 200 {"success":true,"message":@p msg}. */
void mt_api_ok_msg(struct cm_httpd_req *r, const char *msg);

/** 200 {"success":false,"message":...} (printf-style), and a log line. */
void mt_api_fail(struct cm_httpd_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** As mt_api_fail() with another HTTP status (401/403/404/413/500...). */
void mt_api_fail_status(struct cm_httpd_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

/** A positive integer path parameter @p name; 0 when missing or malformed. */
int64_t mt_api_param_id(struct cm_httpd_req *r, const char *name);

#endif
