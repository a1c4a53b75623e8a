/* SPDX-License-Identifier: MIT */
/* daemon.c - the shared serve loop of the daemons' main(): start, wait for a signal, stop. */
#include "cm/daemon.h"

#include "cm/err.h"
#include "cm/health.h"
#include "cm/log.h"
#include "cm/sys.h"

#include <stdlib.h>

int cm_daemon_serve(const char *name, const struct cm_httpd_opts *opts, cm_daemon_routes_fn routes,
                    void *ud)
{
    struct cm_httpd *srv = NULL;
    int rc = 1, sig;

    cm_sys_block_signals(); /* before any thread starts, so all inherit the mask */
    cm_sys_raise_nofile();
    if (cm_httpd_new(opts, &srv) || routes(srv, ud) || cm_httpd_start(srv))
        goto out;
    cm_log_info(NULL, "%s %s listening on %s:%u", name, CM_VERSION,
                opts->bind ? opts->bind : "127.0.0.1", (unsigned)cm_httpd_port(srv));
    sig = cm_sys_wait_signal();
    cm_log_info(NULL, "%s: signal %d, stopping", name, sig);
    rc = 0;
out:
    cm_httpd_free(srv);
    return rc;
}

int cm_daemon_parse_port(const char *s, uint16_t *out)
{
    char *end;
    unsigned long p;
    if (!s || !*s)
        return CM_ERR_INVAL;
    p = strtoul(s, &end, 10);
    if (*end || p == 0 || p > 65535)
        return CM_ERR_INVAL;
    *out = (uint16_t)p;
    return CM_OK;
}
