/* SPDX-License-Identifier: MIT */
/* routes.h - meterd's route table: /healthz, the admin API (/api) and the relay (/v1). */
#ifndef MT_API_ROUTES_H
#define MT_API_ROUTES_H

#include "cm/httpd.h"
#include "server.h"

/** Registers every meterd route on @p s; @p srv is every handler's ud. */
int mt_api_routes(struct cm_httpd *s, struct mt_server *srv);

#endif
