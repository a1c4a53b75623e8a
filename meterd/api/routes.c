/* SPDX-License-Identifier: MIT */
/*
 * routes.c - meterd's route table: GET /healthz, then each area's routes (one file per
 * area of NewAPI's admin API under api/, the relay under relay/).
 */
#include "api/routes.h"

#include "api/areas.h"
#include "cm/health.h"

int mt_api_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static int (*const areas[])(struct cm_httpd *, struct mt_server *) = {MT_API_AREAS};
    int rc = cm_health_route(s, "meterd");
    for (size_t i = 0; !rc && i < sizeof areas / sizeof *areas; i++)
        rc = areas[i](s, srv);
    return rc;
}
