/* SPDX-License-Identifier: MIT */
/*
 * codex_relay.h - the routes served by Codex credentials: POST /v1/chat/completions
 * (OpenAI Chat clients, translated) and POST /v1/responses (OpenAI Responses clients,
 * passed through with the Codex body rules).
 */
#ifndef CP_API_CODEX_RELAY_H
#define CP_API_CODEX_RELAY_H

#include "cm/httpd.h"
#include "server.h"

/** Registers both routes; @p srv must have cfg, sched, store and client set. */
int cp_api_codex_routes(struct cm_httpd *s, struct cp_server *srv);

#endif
