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
int mt_api_relay_routes(struct cm_httpd *s, struct mt_server *srv); /* relay/routes.c */
int mt_api_user_routes(struct cm_httpd *s, struct mt_server *srv);
int mt_api_token_routes(struct cm_httpd *s, struct mt_server *srv);
int mt_api_channel_routes(struct cm_httpd *s, struct mt_server *srv);
int mt_api_option_routes(struct cm_httpd *s, struct mt_server *srv);
int mt_api_log_routes(struct cm_httpd *s, struct mt_server *srv);
int mt_api_redemption_routes(struct cm_httpd *s, struct mt_server *srv);
int mt_api_pricing_routes(struct cm_httpd *s, struct mt_server *srv);

#define MT_API_AREAS mt_api_misc_routes, mt_api_channel_routes, mt_api_option_routes, mt_api_log_routes, \
    mt_api_redemption_routes, mt_api_pricing_routes, mt_api_user_routes, mt_api_token_routes, \
    mt_api_relay_routes

#endif
