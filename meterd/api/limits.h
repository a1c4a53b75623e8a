/* SPDX-License-Identifier: MIT */
/*
 * limits.h - the rate limits of the admin API (spec newapi.md 7.1), with NewAPI's
 * environment variables:
 *  - critical, per client IP: login, register, redemption top-up, token key reveal, the
 *    token-key read-only endpoints; CRITICAL_RATE_LIMIT (20) per
 *    CRITICAL_RATE_LIMIT_DURATION seconds (1200), off with CRITICAL_RATE_LIMIT_ENABLE=false;
 *  - search, per user: GET /api/token/search; SEARCH_RATE_LIMIT (10) per
 *    SEARCH_RATE_LIMIT_DURATION seconds (60), off with SEARCH_RATE_LIMIT_ENABLE=false.
 * Over the limit: HTTP 429 with the envelope (NewAPI sends an empty body) and Retry-After.
 * The client IP is the TCP peer: X-Forwarded-For is not trusted (NewAPI's gin trusts it
 * from anyone, which lets a client pick its own bucket).
 */
#ifndef MT_API_LIMITS_H
#define MT_API_LIMITS_H

#include "cm/httpd.h"
#include "server.h"

#include <stdint.h>

/** Reads the environment once (later calls are no-ops). CM_OK or CM_ERR_INVAL. */
int mt_api_limits_init(void);

/** 0 when @p r may go on; else it has been answered (429) and non-zero is returned. */
int mt_api_limit_critical(struct mt_server *srv, struct cm_httpd_req *r);

/** As mt_api_limit_critical(), for the search limit of @p user_id. */
int mt_api_limit_search(struct mt_server *srv, struct cm_httpd_req *r, int64_t user_id);

#endif
