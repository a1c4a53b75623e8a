/* SPDX-License-Identifier: MIT */
/* health.c - GET /healthz: a liveness answer that needs no state. */
#include "cm/health.h"

#include "cm/err.h"

#include <stdint.h>
#include <stdio.h>

static void healthz(struct cm_httpd_req *r, void *ud)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"service\":\"%s\",\"version\":\"%s\"}",
                     (const char *)ud, CM_VERSION);
    cm_httpd_reply(r, 200, "application/json", body, (size_t)n < sizeof body ? (size_t)n : 0);
}

int cm_health_route(struct cm_httpd *s, const char *service)
{
    return cm_httpd_route(s, "GET", "/healthz", healthz, (void *)(uintptr_t)service);
}
