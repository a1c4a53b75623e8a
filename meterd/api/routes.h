/* SPDX-License-Identifier: MIT */
/* routes.h - meterd's route table. */
#ifndef MT_API_ROUTES_H
#define MT_API_ROUTES_H

#include "cm/httpd.h"

/** Registers every meterd route on @p s. */
int mt_api_routes(struct cm_httpd *s);

#endif
