/* SPDX-License-Identifier: MIT */
/*
 * clientkey.h - who may call /v1: the client key from `Authorization: Bearer`,
 * `X-Api-Key`, `X-Goog-Api-Key`, `?key=` or `?auth_token=` (CLIProxyAPI's places),
 * compared in constant time with the configured `api-keys`.
 */
#ifndef CP_API_CLIENTKEY_H
#define CP_API_CLIENTKEY_H

#include <stddef.h>

#include "cm/httpd.h"
#include "server.h"

/**
 * Finds the client key of @p r. On CM_OK *key (borrowed from the request, valid during
 * the handler) and *len are set; CM_ERR_NOTFOUND when the request carries none.
 * Server thread, during the handler.
 */
int cp_api_client_key(struct cm_httpd_req *r, const char **key, size_t *len);

/**
 * Checks the request's key against the live config. Returns 0 when the caller may go
 * on; otherwise it has replied 401 (no api-keys configured, key missing, key wrong:
 * three distinct messages, never echoing the key) and returns non-zero. On success and
 * if @p masked is not NULL, writes a log-safe form of the key ("sk-a****wxyz") there.
 */
int cp_api_require_key_or_reply(struct cp_server *srv, struct cm_httpd_req *r, char *masked,
                                size_t masked_len);

#endif
