/* SPDX-License-Identifier: MIT */
/* routes.h - cliproxyd's route table. */
#ifndef CP_API_ROUTES_H
#define CP_API_ROUTES_H

#include "cm/httpd.h"
#include "server.h"

/** Registers every cliproxyd route on @p s; handlers share @p srv (borrowed, outlives s). */
int cp_api_routes(struct cm_httpd *s, struct cp_server *srv);

#endif
