/* SPDX-License-Identifier: MIT */
/* health.h - the GET /healthz route both daemons serve: {"status":"ok","service":..,"version":..}.
 */
#ifndef CM_HEALTH_H
#define CM_HEALTH_H

#include "cm/httpd.h"

#define CM_VERSION "0.1.0"

/** Registers GET /healthz on @p s. @p service is borrowed and must outlive the server. */
int cm_health_route(struct cm_httpd *s, const char *service);

#endif
