/* SPDX-License-Identifier: MIT */
/*
 * relay.h - the inference routes: POST /v1/chat/completions (OpenAI Chat clients),
 * POST /v1/responses (OpenAI Responses clients) and POST /v1/messages (Claude Messages
 * clients), each served by the credentials of the provider that serves the requested
 * model (Codex or Claude), translated where the formats differ.
 */
#ifndef CP_API_RELAY_H
#define CP_API_RELAY_H

#include "cm/httpd.h"
#include "server.h"

/** Registers the three routes; @p srv must have cfg, sched, store and client set. */
int cp_api_relay_routes(struct cm_httpd *s, struct cp_server *srv);

#endif
