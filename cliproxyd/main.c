/* SPDX-License-Identifier: MIT */
/*
 * main.c - cliproxyd: arguments, logging, signals, start and stop. The only place in
 * cliproxyd that may exit.
 */
#include "api/routes.h"

#include "cm/health.h"
#include "cm/httpd.h"
#include "cm/log.h"
#include "cm/sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: cliproxyd [-host ADDR] [-port N] [-log-level LEVEL] [-version]\n"
                    "  -host ADDR   bind address (default 127.0.0.1)\n"
                    "  -port N      port (default 8317)\n");
}

int main(int argc, char **argv)
{
    struct cm_httpd_opts o = {.bind = "127.0.0.1", .port = 8317, .access_log = 1};
    struct cm_httpd *srv = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-'); /* -x and --x */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-version") == 0) {
            printf("cliproxyd %s\n", CM_VERSION);
            return 0;
        }
        if (!v || (strcmp(a, "-host") && strcmp(a, "-port") && strcmp(a, "-log-level"))) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "-host") == 0) {
            o.bind = v;
        } else if (strcmp(a, "-port") == 0) {
            char *end;
            unsigned long p = strtoul(v, &end, 10);
            if (*end || p == 0 || p > 65535) {
                fprintf(stderr, "cliproxyd: -port: \"%s\" is not a port number\n", v);
                return 2;
            }
            o.port = (uint16_t)p;
        } else {
            enum cm_log_level l;
            if (cm_log_level_parse(v, &l)) {
                fprintf(stderr, "cliproxyd: -log-level: unknown level \"%s\"\n", v);
                return 2;
            }
            cm_log_set_level(l);
        }
    }
    cm_sys_block_signals();
    cm_sys_raise_nofile();
    if (cm_httpd_new(&o, &srv) || cp_api_routes(srv) || cm_httpd_start(srv))
        goto out;
    cm_log_info(NULL, "cliproxyd %s listening on %s:%u", CM_VERSION, o.bind,
                (unsigned)cm_httpd_port(srv));
    cm_sys_wait_signal();
    cm_log_info(NULL, "cliproxyd: stopping");
    rc = 0;
out:
    cm_httpd_free(srv);
    return rc;
}
