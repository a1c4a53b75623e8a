/* SPDX-License-Identifier: MIT */
/*
 * management.h - the /v0/management routes, CLIProxyAPI's operator API (a first part of it):
 * GET /auth-files (every credential file with provider, email and state), DELETE
 * /auth-files?name=, POST /reset-quota {"name"}. Spec cliproxyapi.md 1.4 and section 8.
 *
 * Access: without `remote-management.secret-key` every route is 404. The key comes as
 * `Authorization: Bearer` or `X-Management-Key`; only its SHA-256 is kept in memory (a
 * bcrypt `$2a$...` secret in the config is verified as such). Callers other than
 * loopback are refused (403) unless `allow-remote`; five wrong keys from one remote
 * address ban it for 30 minutes; loopback is never banned.
 */
#ifndef CP_API_MANAGEMENT_H
#define CP_API_MANAGEMENT_H

#include "cm/httpd.h"
#include "server.h"

struct cp_mgmt;

/** State of the management API (ban table); @p srv borrowed. CM_ERR_NOMEM. */
int cp_mgmt_new(struct cp_server *srv, struct cp_mgmt **out);
void cp_mgmt_free(struct cp_mgmt *m);
/** Registers the routes on @p s. */
int cp_mgmt_routes(struct cm_httpd *s, struct cp_mgmt *m);

#endif
