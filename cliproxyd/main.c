/* SPDX-License-Identifier: MIT */
/*
 * main.c - cliproxyd: flags (CLIProxyAPI style, "-flag" or "--flag"), config.yaml,
 * its hot reload, then the shared serve loop. The only place in cliproxyd that may exit.
 */
#include "api/management.h"
#include "api/routes.h"
#include "authstore.h"
#include "config.h"
#include "channels.h"
#include "config_edit.h"
#include "keyring.h"
#include "login/flow.h"
#include "refresher.h"
#include "scheduler.h"
#include "server.h"
#include "usage.h"

#include "catalog.h"
#include "cm/cfg.h"
#include "cm/clock.h"
#include "cm/daemon.h"
#include "cm/err.h"
#include "cm/fswatch.h"
#include "cm/httpc.h"
#include "cm/health.h"
#include "cm/log.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct opts {
    const char *config;
    const char *host; /* -host overrides config `host` (ours) */
    uint16_t port;    /* -port overrides config `port` (ours); 0 = from config */
    int login;        /* a -*-login flag: run that login instead of the daemon */
    struct cp_login_opts lo;
};

/* the login flags (spec 1.3) and the flow each one runs */
static const struct {
    const char *flag;
    enum cp_login_kind kind;
} login_flags[] = {
    {"-codex-login", CP_LOGIN_CODEX},         {"-codex-device-login", CP_LOGIN_CODEX_DEVICE},
    {"-claude-login", CP_LOGIN_CLAUDE},       {"-login", CP_LOGIN_GEMINI},
    {"-qwen-login", CP_LOGIN_QWEN},           {"-iflow-login", CP_LOGIN_IFLOW},
    {"-iflow-cookie", CP_LOGIN_IFLOW_COOKIE},
};

static int usage(void)
{
    fprintf(stderr,
            "usage: cliproxyd [-config PATH] [-host ADDR] [-port N] [-log-level LEVEL] [-version]\n"
            "  -config PATH  CLIProxyAPI config.yaml (default ./config.yaml)\n"
            "  -host ADDR    bind address, overrides `host` in the config\n"
            "  -port N       port, overrides `port` in the config\n"
            "logins (write a credential into auth-dir, then exit):\n"
            "  -codex-login | -codex-device-login | -claude-login | -login (Gemini CLI)\n"
            "  | -qwen-login | -iflow-login | -iflow-cookie\n"
            "  -no-browser             print the URL only (paste the redirect URL back)\n"
            "  -oauth-callback-port N  callback port (0: the provider's default)\n"
            "  -project_id ID          Gemini project (ALL or a comma list: every project)\n"
            "  -email ADDR             Qwen: the email or alias to name the file with\n"
            "  -cookie VALUE           iFlow cookie login: the Cookie (else read from stdin)\n");
    return 2;
}

static int routes(struct cm_httpd *s, void *ud)
{
    struct cp_server *srv = ud;
    int rc = cp_api_routes(s, srv);
    return rc ? rc : cp_mgmt_routes(s, srv->mgmt);
}

/* the scheduler's settings from the config (at start and after each reload) */
static void configure_sched(struct cp_sched *sched, const struct cp_config *cfg)
{
    struct cp_sched_config sc = {.strategy = cfg->routing->strategy == CP_ROUTING_FILL_FIRST
                                                 ? CP_SCHED_FILL_FIRST
                                                 : CP_SCHED_ROUND_ROBIN,
                                 .disable_cooling = cfg->disable_cooling,
                                 .transient_cooldown_s = cfg->transient_error_cooldown_seconds};
    cp_sched_configure(sched, &sc);
}

/*
 * /v1/models: the union of the catalog models of every credential that can serve now
 * (loaded, not disabled, not waiting for a re-login). Catalog strings are static.
 */
static size_t list_models(void *ud, const char **ids, const char **owners, size_t cap)
{
    struct cp_server *srv = ud;
    struct cp_authstore_list *l = NULL;
    struct cp_config_ref *ref = cp_config_live_acquire(srv->cfg);
    const char *buf[CP_CHANNEL_MAX_MODELS];
    size_t n = 0;

    if (cp_authstore_list(srv->store, &l) != CM_OK) {
        cp_config_ref_release(ref);
        return 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct cp_authstore_info *in = &l->items[i];
        struct cp_authstore_cred *c;
        const char *const *m = NULL;
        size_t k = 0;
        if (in->kind != CP_AUTHSTORE_VALID || in->needs_relogin || in->state == CP_SCHED_DISABLED ||
            in->state == CP_SCHED_RELOGIN)
            continue;
        c = cp_authstore_acquire(srv->store, in->name);
        if (c && ref)
            m = buf, k = cp_channel_models(cp_config_ref_get(ref), c->af, buf);
        if (c && k) {
            for (size_t j = 0; j < k && n < cap; j++) {
                size_t d = 0;
                while (d < n && strcmp(ids[d], m[j]) != 0)
                    d++;
                if (d == n && (ids[n] = cp_keyring_intern(srv->keyring, m[j])))
                    owners[n++] = cp_catalog_owner(c->provider);
            }
        }
        cp_authstore_release(c);
    }
    cp_authstore_list_free(l);
    cp_config_ref_release(ref); /* ids are interned: a reload cannot free them */
    return cp_keyring_models(srv->keyring, ids, owners, n, cap);
}

/* watcher thread: config.yaml changed -> build, check, swap (a bad edit keeps the old) */
static void config_changed(const struct cm_fswatch_batch *b, void *ud)
{
    struct cp_server *srv = ud;
    char err[CM_CFG_ERR_MAX];
    (void)b;
    if (cp_config_live_reload(srv->cfg, srv->config_path, err, sizeof err) == CM_OK) {
        struct cp_config_ref *ref = cp_config_live_acquire(srv->cfg);
        if (ref) {
            configure_sched(srv->sched, cp_config_ref_get(ref));
            if (cp_keyring_apply(srv->keyring, cp_config_ref_get(ref)) != CM_OK)
                cm_log_error(NULL, "cliproxyd: some API-key entries could not be loaded");
            cp_config_ref_release(ref);
        }
        cm_log_info(NULL, "cliproxyd: %s reloaded", srv->config_path);
    } else
        cm_log_error(NULL, "cliproxyd: reload refused, the previous config stays in force: %s",
                     err);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-'); /* -x and --x */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        enum cm_log_level l;
        size_t k;
        if (strcmp(a, "-version") == 0) {
            printf("cliproxyd %s\n", CM_VERSION);
            return 0;
        }
        for (k = 0; k < sizeof login_flags / sizeof *login_flags; k++)
            if (strcmp(a, login_flags[k].flag) == 0)
                break;
        if (k < sizeof login_flags / sizeof *login_flags) {
            o->login = 1;
            o->lo.kind = login_flags[k].kind;
            continue;
        }
        if (strcmp(a, "-no-browser") == 0) {
            o->lo.no_browser = 1;
            continue;
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
        } else if (strcmp(a, "-oauth-callback-port") == 0) {
            char *end;
            long p = strtol(v, &end, 10);
            if (*end || p < 0 || p > 65535) {
                fprintf(stderr, "cliproxyd: -oauth-callback-port: \"%s\" is not a port\n", v);
                return 2;
            }
            o->lo.callback_port = (uint16_t)p;
        } else if (strcmp(a, "-project_id") == 0) {
            o->lo.project_id = v;
        } else if (strcmp(a, "-email") == 0) {
            o->lo.email = v;
        } else if (strcmp(a, "-cookie") == 0) {
            o->lo.cookie = v;
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
    struct cp_refresher *refresher = NULL;
    struct cm_httpd_opts ho = {.access_log = 1};
    struct cp_authstore_opts store_opts = {0};
    const struct cp_config *live_cfg = NULL; /* the first config, read before any reload */
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
    if (o.login) { /* a login writes one file into auth-dir and exits */
        char lerr[CP_LOGIN_ERR_MAX];
        o.lo.in_fd = 0;
        o.lo.out = stdout;
        if (cp_login_run(cfg, &o.lo, lerr, sizeof lerr) != CM_OK) {
            fprintf(stderr, "cliproxyd: %s\n", lerr);
            goto out;
        }
        rc = 0;
        goto out;
    }
    /* spec 1.4: a plaintext secret-key becomes a bcrypt hash, in the file when it can be
     * rewritten and in memory in any case (a failure to hash keeps the plaintext) */
    if (cp_config_edit_hash_secret(o.config, cfg) != CM_OK)
        cm_log_warn(NULL, "cliproxyd: remote-management.secret-key could not be hashed");
    if (cp_config_has_example_key(cfg)) {
        fprintf(stderr,
                "cliproxyd: %s: `api-keys` still holds an example key "
                "(your-api-key-...); set your own keys before starting\n",
                o.config);
        goto out;
    }
    if (cfg->debug)
        cm_log_set_level(CM_LOG_DEBUG);
    if (cfg->logging_to_file) {
        /* CLIProxyAPI's place: $WRITABLE_PATH/logs, else ./logs; main.log in it */
        const char *wp = getenv("WRITABLE_PATH");
        char logdir[4096], logfile[4200];
        snprintf(logdir, sizeof logdir, "%s/logs", wp && *wp ? wp : ".");
        snprintf(logfile, sizeof logfile, "%s/main.log", logdir);
        if ((mkdir(logdir, 0750) != 0 && errno != EEXIST) ||
            cm_log_init(cfg->debug ? CM_LOG_DEBUG : CM_LOG_INFO, logfile) != CM_OK) {
            fprintf(stderr, "cliproxyd: logging-to-file: cannot write %s: %s\n", logfile,
                    strerror(errno));
            goto out;
        }
    }
    /* the auth dir is created (0700) when missing, as CLIProxyAPI does */
    if (mkdir(cfg->auth_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cliproxyd: cannot create auth-dir %s: %s\n", cfg->auth_dir,
                strerror(errno));
        goto out;
    }
    if (cp_sched_new(cm_clock_real(), &srv.sched) != CM_OK)
        goto out;
    configure_sched(srv.sched, cfg);
    if (cp_config_live_new(&srv.cfg) || cp_config_live_swap(srv.cfg, cfg))
        goto out;
    live_cfg = cfg; /* owned by the live holder now; valid until a reload */
    cfg = NULL;
    store_opts.models = cp_channel_models_cb; /* oauth-model-alias / -excluded-models */
    store_opts.models_ud = srv.cfg;
    if (cp_authstore_new(live_cfg->auth_dir, srv.sched, NULL, &store_opts, &srv.store) !=
            CM_OK ||
        cp_authstore_start(srv.store) != CM_OK) {
        fprintf(stderr, "cliproxyd: cannot read auth-dir %s\n", live_cfg->auth_dir);
        goto out;
    }
    if (cp_keyring_new(srv.sched, &srv.keyring) != CM_OK ||
        cp_keyring_apply(srv.keyring, live_cfg) != CM_OK) {
        fprintf(stderr, "cliproxyd: cannot load the API-key entries of %s\n", o.config);
        goto out;
    }
    if (cm_httpc_new(NULL, &srv.client) != CM_OK)
        goto out;
    if (cp_mgmt_new(&srv, &srv.mgmt) != CM_OK || cp_usage_new(&srv.usage) != CM_OK)
        goto out;
    srv.models = list_models;
    srv.models_ud = &srv;
    /* `host: ""` means every interface, as in CLIProxyAPI */
    snprintf(host, sizeof host, "%s",
             o.host ? o.host : (live_cfg->host && *live_cfg->host ? live_cfg->host : "0.0.0.0"));
    ho.bind = host;
    ho.port = o.port ? o.port : (uint16_t)live_cfg->port;
    srv.config_path = o.config;
    /* only now: its thread reads srv.cfg at once (a refresh due at start) */
    if (cp_refresher_new(&srv, 0, &refresher) != CM_OK)
        goto out;
    srv.refresher = refresher;
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
    cp_refresher_stop(refresher); /* no new refresh from here on */
    cm_httpc_free(srv.client);    /* after the server: its requests' transfers end here */
    cp_refresher_free(refresher);
    cp_mgmt_free(srv.mgmt);
    cp_usage_free(srv.usage);
    cp_authstore_free(srv.store);
    cp_keyring_free(srv.keyring);
    cp_sched_free(srv.sched);
    cp_config_live_free(srv.cfg);
    cp_config_free(cfg);
    return rc;
}
