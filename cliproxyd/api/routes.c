/* SPDX-License-Identifier: MIT */
/*
 * routes.c - cliproxyd's route table. Today: GET /healthz. The OpenAI-compatible
 * /v1 routes, the Gemini /v1beta routes and /v0/management arrive with the account
 * pool (see README, "Status").
 */
#include "api/routes.h"

#include "cm/health.h"

int cp_api_routes(struct cm_httpd *s)
{
    return cm_health_route(s, "cliproxyd");
}
