/* SPDX-License-Identifier: MIT */
/*
 * main.c - meterd: NewAPI-style settings (PORT from the environment, --port and
 * --host flags win), then the shared serve loop. The only place in meterd that may exit.
 */
#include "api/routes.h"

#include "cm/daemon.h"
#include "cm/health.h"
#include "cm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int routes(struct cm_httpd *s, void *ud)
{
    (void)ud;
    return mt_api_routes(s);
}

static int usage(void)
{
    fprintf(stderr, "usage: meterd [--host ADDR] [--port N] [--log-level LEVEL] [--version]\n"
                    "  --host ADDR  bind address (default 127.0.0.1)\n"
                    "  --port N     port (default: $PORT, else 3000)\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct cm_httpd_opts o = {.bind = "127.0.0.1", .port = 3000, .access_log = 1};
    const char *env_port = getenv("PORT");

    if (env_port && cm_daemon_parse_port(env_port, &o.port)) {
        fprintf(stderr, "meterd: PORT=\"%s\" is not a port number\n", env_port);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-'); /* --x and -x */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        enum cm_log_level l;
        if (strcmp(a, "-version") == 0) {
            printf("meterd %s\n", CM_VERSION);
            return 0;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "-host") == 0) {
            o.bind = v;
        } else if (strcmp(a, "-port") == 0) {
            if (cm_daemon_parse_port(v, &o.port)) {
                fprintf(stderr, "meterd: --port: \"%s\" is not a port number\n", v);
                return 2;
            }
        } else if (strcmp(a, "-log-level") == 0) {
            if (cm_log_level_parse(v, &l)) {
                fprintf(stderr, "meterd: --log-level: unknown level \"%s\"\n", v);
                return 2;
            }
            cm_log_set_level(l);
        } else {
            return usage();
        }
    }
    return cm_daemon_serve("meterd", &o, routes, NULL);
}
