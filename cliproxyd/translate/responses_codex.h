/* SPDX-License-Identifier: MIT */
/*
 * responses_codex.h - OpenAI Responses clients on the Codex upstream: the request passes
 * through with the body rules of spec cliproxyapi.md 3.1(d) (Responses source); the
 * answer passes through unchanged. Pure.
 */
#ifndef CP_TRANSLATE_RESPONSES_CODEX_H
#define CP_TRANSLATE_RESPONSES_CODEX_H

#include <cjson/cJSON.h>

#include "translate/translate.h"

/**
 * Makes the Codex /responses body from a client's Responses request @p req (borrowed):
 * a copy with the model suffix turned into reasoning.effort (default "medium", summary
 * "auto"), a string `input` wrapped into one user message, `system` roles as `developer`,
 * web_search_preview tools as web_search, `instructions` "" when absent, `store: false`,
 * `stream: true`, `parallel_tool_calls` true unless the client set it, `include` =
 * ["reasoning.encrypted_content"], and the fields Codex refuses removed (max_output_tokens,
 * temperature, top_p, truncation, user, previous_response_id, stream_options, ...;
 * service_tier unless "priority"). On CM_OK *@p out is a new tree (cJSON_Delete()).
 * CM_ERR_INVAL with @p err naming the field (status 400); CM_ERR_NOMEM.
 */
int cp_tr_responses_codex_request(const cJSON *req, cJSON **out, struct cp_tr_err *err);

#endif
