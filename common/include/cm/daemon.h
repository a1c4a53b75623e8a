/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the part of a daemon's main() both daemons share: signals, file limits, the
 * HTTP server's life (create, route, start, wait for SIGINT/SIGTERM, stop). Each
 * daemon's main.c keeps its own flags and configuration.
 */
#ifndef CM_DAEMON_H
#define CM_DAEMON_H

#include "cm/httpd.h"

/** Registers a daemon's routes on its server. */
typedef int (*cm_daemon_routes_fn)(struct cm_httpd *s, void *ud);

/**
 * Blocks signals, raises the fd limit, starts an HTTP server with @p opts and the routes
 * from @p routes, logs "<name> <version> listening on host:port", waits for SIGINT or
 * SIGTERM and stops. Returns 0 after a clean stop, 1 if the server could not start
 * (the reason is logged). For main() only.
 */
int cm_daemon_serve(const char *name, const struct cm_httpd_opts *opts, cm_daemon_routes_fn routes,
                    void *ud);

/**
 * Parses a TCP port ("1".."65535") into *out. CM_ERR_INVAL (and nothing written) otherwise.
 */
int cm_daemon_parse_port(const char *s, uint16_t *out);

#endif
