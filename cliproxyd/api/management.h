/* SPDX-License-Identifier: MIT */
/*
 * management.h - the /v0/management routes, CLIProxyAPI's operator API (a part of it;
 * spec cliproxyapi.md 1.4 and section 8):
 *   GET    /auth-files                 every credential file: provider, email, state, disabled
 *   POST   /auth-files                 upload one (multipart "file" part, or raw JSON ?name=)
 *   DELETE /auth-files?name=           delete one
 *   PATCH  /auth-files/status          {"name","disabled"}: rewrite the file's `disabled`
 *   POST   /reset-quota                {"name"}: clear a credential's cooldown
 *   GET    /config                     the live config as JSON (YAML key names, no secret)
 *   GET/PUT/PATCH/DELETE /api-keys     the client keys, written into config.yaml in place
 *                                      (comments kept, config_edit.h) and applied at once
 *   GET    /usage, GET /metrics        counters (JSON; Prometheus text)
 * Writes to auth-dir are atomic 0600 files the auth store's watcher picks up.
 *
 * Access: without `remote-management.secret-key` every route is 404. The key comes as
 * `Authorization: Bearer` or `X-Management-Key`; a plaintext secret is turned into a
 * bcrypt hash at start (cp_config_edit_hash_secret()) and verified as such; after a
 * successful verify only the key's SHA-256 is kept, to skip the next ~80 ms verify.
 * Callers other than loopback are refused (403) unless `allow-remote`; five wrong keys
 * from one remote address ban it for 30 minutes; loopback is never banned.
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
