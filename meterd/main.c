/* SPDX-License-Identifier: MIT */
/*
 * main.c - meterd: NewAPI's settings (a .env file, PORT, SQLITE_PATH, SESSION_SECRET,
 * --port, --log-dir; --host and --log-level are ours), then the store, the options
 * cache, the upstream client and the shared serve loop. The only place in meterd that
 * may exit.
 */
#include "api/routes.h"
#include "env.h"
#include "optcache.h"
#include "relay/relay.h"
#include "server.h"
#include "store/store.h"

#include "cm/clock.h"
#include "cm/crypto.h"
#include "cm/daemon.h"
#include "cm/err.h"
#include "cm/health.h"
#include "cm/httpc.h"
#include "cm/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int routes(struct cm_httpd *s, void *ud)
{
    return mt_api_routes(s, ud);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: meterd [--host ADDR] [--port N] [--log-dir DIR] [--log-level LEVEL] "
            "[--version]\n"
            "  --host ADDR     bind address (default 127.0.0.1; 0.0.0.0 in the container)\n"
            "  --port N        port (default: $PORT, else 3000)\n"
            "  --log-dir DIR   also write the log to DIR/meterd.log\n"
            "environment (also read from ./.env): PORT, SQLITE_PATH (default one-api.db),\n"
            "  SESSION_SECRET (cookie signing; random per start when unset), SQL_DSN (unset:\n"
            "  SQLite)\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct cm_httpd_opts o = {.bind = "127.0.0.1", .port = 3000, .access_log = 1};
    struct mt_server srv = {0};
    const char *log_dir = NULL, *env_port, *secret, *dsn;
    enum cm_log_level level = CM_LOG_INFO;
    unsigned char rnd[32];
    char path[4096], logfile[4096];
    int rc = 1;

    (void)mt_env_load(".env");
    env_port = getenv("PORT");
    if (env_port && *env_port && cm_daemon_parse_port(env_port, &o.port)) {
        fprintf(stderr, "meterd: PORT=\"%s\" is not a port number\n", env_port);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-'); /* --x and -x */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
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
        } else if (strcmp(a, "-log-dir") == 0) {
            log_dir = v;
        } else if (strcmp(a, "-log-level") == 0) {
            if (cm_log_level_parse(v, &level)) {
                fprintf(stderr, "meterd: --log-level: unknown level \"%s\"\n", v);
                return 2;
            }
        } else {
            return usage();
        }
    }
    logfile[0] = '\0';
    if (log_dir) {
        if (mkdir(log_dir, 0750) != 0 && errno != EEXIST) {
            fprintf(stderr, "meterd: --log-dir %s: %s\n", log_dir, strerror(errno));
            return 2;
        }
        snprintf(logfile, sizeof logfile, "%s/meterd.log", log_dir);
    }
    if (cm_log_init(level, logfile[0] ? logfile : NULL) != CM_OK) {
        fprintf(stderr, "meterd: cannot open the log file %s\n", logfile);
        return 2;
    }
    if (cm_crypto_init() != CM_OK) {
        fprintf(stderr, "meterd: no usable random source\n");
        return 1;
    }
    dsn = getenv("SQL_DSN");
    if (dsn && *dsn && strncmp(dsn, "local", 5) != 0) {
        fprintf(stderr, "meterd: SQL_DSN names a MySQL/PostgreSQL database; this build only "
                        "has SQLite (unset SQL_DSN and use SQLITE_PATH)\n");
        return 2;
    }
    secret = getenv("SESSION_SECRET");
    if (secret && strcmp(secret, "random_string") == 0) {
        fprintf(stderr, "meterd: SESSION_SECRET is the example value \"random_string\"; set a "
                        "real secret\n");
        return 2;
    }
    if (secret && *secret) {
        srv.session_secret = (const unsigned char *)secret;
        srv.session_secret_len = strlen(secret);
    } else {
        if (cm_crypto_random_bytes(rnd, sizeof rnd) != CM_OK)
            return 1;
        srv.session_secret = rnd;
        srv.session_secret_len = sizeof rnd;
        cm_log_warn(NULL, "meterd: SESSION_SECRET is not set; sessions end at restart");
    }
    if (mt_store_default_path(path, sizeof path) != CM_OK) {
        fprintf(stderr, "meterd: SQLITE_PATH is too long\n");
        return 2;
    }
    srv.clock = cm_clock_real();
    srv.start_time = cm_clock_wall_ms(srv.clock) / 1000;
    srv.database_type = "sqlite";
    if (mt_store_open(path, NULL, &srv.store) != CM_OK) {
        fprintf(stderr, "meterd: cannot open the database %s (see the log)\n", path);
        goto out;
    }
    cm_log_info(NULL, "meterd: database %s", path);
    {
        /* quota reserved by requests a crash cut off before their settle goes back */
        int64_t holds = 0, held = 0;
        if (mt_store_release_holds(srv.store, &holds, &held) != CM_OK) {
            fprintf(stderr, "meterd: cannot release the holds of an earlier run (see the log)\n");
            goto out;
        }
        if (holds)
            cm_log_warn(NULL,
                        "meterd: gave back %lld quota reserved by %lld request(s) an earlier run "
                        "did not finish",
                        (long long)held, (long long)holds);
    }
    if (mt_optcache_new(srv.store, 1000, &srv.opts) != CM_OK) {
        fprintf(stderr, "meterd: cannot load the options\n");
        goto out;
    }
    if (cm_httpc_new(NULL, &srv.client) != CM_OK)
        goto out;
    if (mt_relay_new(srv.store, &srv.relay) != CM_OK) {
        fprintf(stderr, "meterd: cannot load the channels (see the log)\n");
        goto out;
    }
    rc = cm_daemon_serve("meterd", &o, routes, &srv);
out:
    cm_httpc_free(srv.client); /* after the server: its requests' transfers end here */
    mt_relay_stop(srv.relay);  /* its watcher reads the store */
    mt_optcache_free(srv.opts);
    mt_store_close(srv.store); /* commits what the writer still holds */
    mt_relay_free(srv.relay);  /* after the settles' callbacks, which count in it */
    cm_crypto_memzero(rnd, sizeof rnd);
    return rc;
}
