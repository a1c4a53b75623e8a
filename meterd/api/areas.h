/* SPDX-License-Identifier: MIT */
/*
 * areas.h - the route registrars of meterd's areas, in registration order. Each
 * mt_api_<area>_routes() registers its routes with @p srv as ud; CM_OK or an error.
 */
#ifndef MT_API_AREAS_H
#define MT_API_AREAS_H

#include "cm/httpd.h"
#include "server.h"

int mt_api_misc_routes(struct cm_httpd *s, struct mt_server *srv);

#define MT_API_AREAS mt_api_misc_routes

#endif
