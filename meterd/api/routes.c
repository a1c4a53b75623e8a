/* SPDX-License-Identifier: MIT */
/*
 * routes.c - meterd's route table. Today: GET /healthz. The NewAPI admin API (/api)
 * and the metered relay (/v1) arrive with the store and pricing (see README, "Status").
 */
#include "api/routes.h"

#include "cm/health.h"

int mt_api_routes(struct cm_httpd *s)
{
    return cm_health_route(s, "meterd");
}
