/* SPDX-License-Identifier: MIT */
/* chat.h - POST /v1/chat/completions (OpenAI Chat clients on Codex credentials). */
#ifndef CP_API_CHAT_H
#define CP_API_CHAT_H

#include "cm/httpd.h"
#include "server.h"

/** Registers the route; @p srv must have cfg, sched, store and client set. */
int cp_api_chat_route(struct cm_httpd *s, struct cp_server *srv);

#endif
