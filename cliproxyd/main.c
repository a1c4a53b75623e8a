/* SPDX-License-Identifier: MIT */
/*
 * main.c - cliproxyd: flags (CLIProxyAPI style, "-flag" or "--flag"), config.yaml,
 * its hot reload, then the shared serve loop. The only place in cliproxyd that may exit.
 */
#include "api/routes.h"
#include "config.h"
#include "server.h"

#include "cm/cfg.h"
#include "cm/daemon.h"
#include "cm/err.h"
#include "cm/fswatch.h"
#include "cm/health.h"
#include "cm/log.h"

#include <libgen.h>
#include <stdio.h>
#include <string.h>

struct opts {
    const char *config;
    const char *host; /* -host overrides config `host` (ours) */
    uint16_t port;    /* -port overrides config `port` (ours); 0 = from config */
};

static int usage(void)
{
    fprintf(stderr,
            "usage: cliproxyd [-config PATH] [-host ADDR] [-port N] [-log-level LEVEL] [-version]\n"
            "  -config PATH  CLIProxyAPI config.yaml (default ./config.yaml)\n"
            "  -host ADDR    bind address, overrides `host` in the config\n"
            "  -port N       port, overrides `port` in the config\n");
    return 2;
}

static int routes(struct cm_httpd *s, void *ud)
{
    return cp_api_routes(s, ud);
}

/* watcher thread: config.yaml changed -> build, check, swap (a bad edit keeps the old) */
static void config_changed(const struct cm_fswatch_batch *b, void *ud)
{
    struct cp_server *srv = ud;
    char err[CM_CFG_ERR_MAX];
    (void)b;
    if (cp_config_live_reload(srv->cfg, srv->config_path, err, sizeof err) == CM_OK)
        cm_log_info(NULL, "cliproxyd: %s reloaded", srv->config_path);
    else
        cm_log_error(NULL, "cliproxyd: reload refused, the previous config stays in force: %s",
                     err);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-'); /* -x and --x */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        enum cm_log_level l;
        if (strcmp(a, "-version") == 0) {
            printf("cliproxyd %s\n", CM_VERSION);
            return 0;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "-config") == 0) {
            o->config = v;
        } else if (strcmp(a, "-host") == 0) {
            o->host = v;
        } else if (strcmp(a, "-port") == 0) {
            if (cm_daemon_parse_port(v, &o->port)) {
                fprintf(stderr, "cliproxyd: -port: \"%s\" is not a port number\n", v);
                return 2;
            }
        } else if (strcmp(a, "-log-level") == 0) {
            if (cm_log_level_parse(v, &l)) {
                fprintf(stderr, "cliproxyd: -log-level: unknown level \"%s\"\n", v);
                return 2;
            }
            cm_log_set_level(l);
        } else {
            return usage();
        }
    }
    return -1; /* go on */
}

int main(int argc, char **argv)
{
    struct opts o = {.config = "config.yaml"};
    struct cp_server srv = {0};
    struct cp_config *cfg = NULL;
    struct cm_fswatch *watch = NULL;
    struct cm_httpd_opts ho = {.access_log = 1};
    char err[CM_CFG_ERR_MAX], dir[4096], host[256];
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = 1;
    if (cp_config_load_file(o.config, &cfg, err, sizeof err) != CM_OK) {
        fprintf(stderr, "cliproxyd: cannot use %s: %s\n", o.config, err);
        goto out;
    }
    if (cp_config_has_example_key(cfg)) {
        fprintf(stderr,
                "cliproxyd: %s: `api-keys` still holds an example key "
                "(your-api-key-...); set your own keys before starting\n",
                o.config);
        goto out;
    }
    if (cfg->debug)
        cm_log_set_level(CM_LOG_DEBUG);
    /* `host: ""` means every interface, as in CLIProxyAPI */
    snprintf(host, sizeof host, "%s",
             o.host ? o.host : (cfg->host && *cfg->host ? cfg->host : "0.0.0.0"));
    ho.bind = host;
    ho.port = o.port ? o.port : (uint16_t)cfg->port;
    if (cp_config_live_new(&srv.cfg) || cp_config_live_swap(srv.cfg, cfg))
        goto out;
    cfg = NULL; /* owned by the live holder now */
    srv.config_path = o.config;
    snprintf(dir, sizeof dir, "%s", o.config);
    {
        struct cm_fswatch_opts wo = {.dir = dirname(dir), .fn = config_changed, .ud = &srv};
        char base[4096];
        snprintf(base, sizeof base, "%s", o.config);
        wo.name = basename(base);
        if (cm_fswatch_new(&watch, &wo) != CM_OK)
            cm_log_warn(NULL, "cliproxyd: cannot watch %s; config changes need a restart",
                        o.config);
    }
    rc = cm_daemon_serve("cliproxyd", &ho, routes, &srv);
out:
    cm_fswatch_free(watch);
    cp_config_live_free(srv.cfg);
    cp_config_free(cfg);
    return rc;
}
