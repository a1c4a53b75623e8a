/* SPDX-License-Identifier: MIT */
/* routes.h - cliproxyd's route table. */
#ifndef CP_API_ROUTES_H
#define CP_API_ROUTES_H

#include "cm/httpd.h"

/** Registers every cliproxyd route on @p s. */
int cp_api_routes(struct cm_httpd *s);

#endif
