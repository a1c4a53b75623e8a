/* SPDX-License-Identifier: MIT */
/*
 * responses_chat.h - OpenAI Responses API clients over the OpenAI Chat pivot (an inbound
 * adapter): a /v1/responses request becomes a chat.completions request, and the
 * chat.completion.chunk stream (or the final chat.completion) the upstream side produces
 * becomes Responses SSE events (or one response object). Pure: no I/O, no clock; ids and
 * timestamps are parameters.
 *
 * Request mapping (Responses -> chat.completions):
 *  - model copied as given (suffix included); stream copied (absent: false);
 *  - instructions (string) -> a leading {"role":"system"} message;
 *  - input string -> one user message; input items:
 *    message (type "message" or no type; roles user, system, developer (sent as system),
 *      assistant; content a string or parts input_text / output_text (-> text), refusal
 *      (assistant only), input_image with image_url (-> image_url {url, detail?}),
 *      input_file with file_data (-> file {file_data, filename?}));
 *    function_call -> tool_calls {id: call_id, type: function, function: {name, arguments}}
 *      of an assistant message: consecutive calls, and calls right after an assistant
 *      message, go into that one assistant message;
 *    function_call_output -> {"role":"tool","tool_call_id":call_id,"content"}: output a
 *      string, or input_text / output_text parts joined;
 *    reasoning items (opaque, often encrypted reasoning of an earlier turn) are dropped.
 *  - tools: function tools {type,name,description?,parameters?,strict?} ->
 *    {type:function,function:{name,description?,parameters?,strict?}};
 *  - tool_choice auto / none / required / {type:function,name} -> the chat equivalents;
 *  - reasoning.effort -> reasoning_effort; max_output_tokens -> max_completion_tokens;
 *    temperature, top_p, parallel_tool_calls, user copied; text.verbosity -> verbosity;
 *  - text.format: json_schema {name,schema?,strict?,description?} -> response_format
 *    {type:json_schema,json_schema:{...}}; json_object -> response_format json_object;
 *    text -> nothing (the default).
 * Ignored hints: metadata, store, service_tier, prompt_cache_key, prompt_cache_retention,
 * safety_identifier, truncation, include, stream_options, reasoning.summary (and
 * reasoning.generate_summary), background false, and members this adapter does not know.
 * Refused with 400 (CM_ERR_INVAL, err names the field): previous_response_id,
 * conversation, prompt (stored state this proxy does not keep), background true,
 * max_tool_calls, top_logprobs > 0, any tool type but function (tools[i].type), tool_choice
 * other than the above, input item types other than the above (input[i].type, e.g.
 * item_reference), file_id on images and files, file_url, image parts in system messages,
 * other content part types. Caps (CM_ERR_LIMIT, 400): CP_TR_RESPONSES_CHAT_MAX_ITEMS input
 * items, CP_TR_RESPONSES_CHAT_MAX_TOOLS tools, CP_TR_RESPONSES_CHAT_MAX_PARTS parts per
 * content.
 *
 * Answer mapping: one output item per phase, in order: a reasoning item (id
 * "rs_<id>_<n>", summary [{type:"summary_text",text}]) for reasoning_content, a message
 * item ("msg_<id>_<n>", one output_text part) for content, a function_call item
 * ("fc_<id>_<n>") per tool call; n is the item's output_index and <id> the response id.
 * Status: finish_reason "length" -> "incomplete" {reason:"max_output_tokens"},
 * "content_filter" -> "incomplete" {reason:"content_filter"}, else "completed". Usage
 * {input_tokens, input_tokens_details{cached_tokens}, output_tokens,
 * output_tokens_details{reasoning_tokens}, total_tokens}, or null when the upstream gave
 * none. The response object echoes the request: instructions, max_output_tokens,
 * parallel_tool_calls (default true), tool_choice (default "auto"), tools (default []),
 * temperature, top_p (null when not given), text (default {format:{type:"text"}}),
 * reasoning {effort, summary} (null when not given), metadata (default {}); "model" is the
 * request's model (the upstream's when the request has none).
 */
#ifndef CP_TRANSLATE_RESPONSES_CHAT_H
#define CP_TRANSLATE_RESPONSES_CHAT_H

#include "cm/buf.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define CP_TR_RESPONSES_CHAT_MAX_ITEMS 4096 /* most input items in one request */
#define CP_TR_RESPONSES_CHAT_MAX_TOOLS 512  /* most tools in one request */
#define CP_TR_RESPONSES_CHAT_MAX_PARTS 512  /* most content parts in one message / output */
#define CP_TR_RESPONSES_CHAT_MAX_OUTPUT 512 /* most output items (stream and non-stream) */
#define CP_TR_RESPONSES_CHAT_MAX_TEXT ((size_t)64 << 20) /* most bytes of one item's text */

/**
 * Client request @p req (borrowed) -> a new chat.completions request tree in *@p chat
 * (caller frees with cJSON_Delete()); "model" is copied as given (suffix included);
 * "stream" is set from the client's own stream flag. CM_OK, CM_ERR_INVAL (400, @p err
 * names the field and its message starts with that path), CM_ERR_LIMIT (400, field named),
 * CM_ERR_NOMEM (500). @p err may be NULL and is written only on failure; *@p chat only on
 * success.
 */
int cp_tr_responses_chat_request(const cJSON *req, cJSON **chat, struct cp_tr_err *err);

struct cp_tr_responses_chat_stream; /* opaque; one owner at a time */

/**
 * New stream state in *@p out (free with cp_tr_responses_chat_stream_free()) for the client
 * request @p req (borrowed for the call: what the response object echoes is copied);
 * @p id = the response id shown to the client (copied), @p created = unix seconds.
 * CM_OK, CM_ERR_INVAL (NULL @p id / @p out), CM_ERR_NOMEM; *@p out written only on CM_OK.
 */
int cp_tr_responses_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                    struct cp_tr_responses_chat_stream **out);

/**
 * One chat.completion.chunk @p chunk (borrowed) -> zero or more Responses SSE events
 * ("event: <type>\ndata: <json>\n\n", sequence_number from 0) appended to @p out. The first
 * call writes response.created and response.in_progress first. Chunks that are not objects
 * or whose choices is not an array are ignored, as is everything after stream_end() /
 * stream_fail(). Events are appended whole. CM_OK; CM_ERR_LIMIT (more than
 * CP_TR_RESPONSES_CHAT_MAX_OUTPUT items, an item's text over CP_TR_RESPONSES_CHAT_MAX_TEXT,
 * or @p out full), CM_ERR_UPSTREAM (arguments for a tool call whose item was already
 * closed: interleaved calls), CM_ERR_NOMEM; then @p err (may be NULL) says why (502 for
 * the upstream's fault, 500 otherwise) and the caller ends the stream with stream_fail().
 */
int cp_tr_responses_chat_stream_chunk(struct cp_tr_responses_chat_stream *st, const cJSON *chunk,
                                      struct cm_buf *out, struct cp_tr_err *err);

/**
 * The pivot stream ended normally ([DONE]): closes the open item, then appends
 * response.completed (or response.incomplete) with the whole output and the usage.
 * A second call, or one after stream_fail(), appends nothing. CM_OK, CM_ERR_NOMEM,
 * CM_ERR_LIMIT (from @p out).
 */
int cp_tr_responses_chat_stream_end(struct cp_tr_responses_chat_stream *st, struct cm_buf *out);

/**
 * The upstream failed after the stream began: appends (spec 5.6) "event: error" with
 * {"type":"error","code","message","sequence_number"}, then response.failed whose response
 * has status "failed", error {code, message} and the items completed so far. The code is
 * e->code when that is one of invalid_api_key, insufficient_quota, rate_limit_exceeded,
 * model_not_found, request_timeout, internal_server_error, invalid_request_error; else from
 * e->status: 401 invalid_api_key, 402 insufficient_quota, 404 model_not_found, 408
 * request_timeout, 429 rate_limit_exceeded, 400 invalid_request_error, else
 * internal_server_error. Open items are left unclosed. Harmless after end/fail (nothing
 * appended). CM_OK, CM_ERR_NOMEM, CM_ERR_LIMIT (from @p out).
 */
int cp_tr_responses_chat_stream_fail(struct cp_tr_responses_chat_stream *st,
                                     const struct cp_tr_err *e, struct cm_buf *out);

/** True once a chunk carried real content (non-empty text, reasoning, or a tool call). */
bool cp_tr_responses_chat_stream_has_content(const struct cp_tr_responses_chat_stream *st);

/** Frees @p st and all it owns (NULL is a no-op). */
void cp_tr_responses_chat_stream_free(struct cp_tr_responses_chat_stream *st);

/**
 * Non-stream: the chat.completion @p completion (borrowed) for the client request @p req
 * (borrowed) -> the Responses answer object in *@p out (caller frees with cJSON_Delete()),
 * with id @p id and created_at @p created. CM_OK; CM_ERR_UPSTREAM (502: @p completion is
 * not an object, or its choices is present but not an array); CM_ERR_LIMIT (502: more than
 * CP_TR_RESPONSES_CHAT_MAX_OUTPUT items); CM_ERR_INVAL (500: NULL @p id / @p out);
 * CM_ERR_NOMEM (500). @p err may be NULL; written only on failure.
 */
int cp_tr_responses_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                                  int64_t created, cJSON **out, struct cp_tr_err *err);

#endif
