/* SPDX-License-Identifier: MIT */
/*
 * messages_chat.h - Anthropic Messages API clients (/v1/messages) over the OpenAI Chat pivot:
 * the inbound adapter that turns a Messages request into a chat.completions request, and the
 * chat.completion.chunk stream (or the final chat.completion) produced by any upstream family
 * back into Anthropic events / one Anthropic message (spec cliproxyapi.md 5.1, 5.4, 5.6).
 * Pure: no I/O, no clock, no globals; ids and timestamps are parameters. A stream object is
 * not thread-safe (one relay job drives it).
 */
#ifndef CP_TRANSLATE_MESSAGES_CHAT_H
#define CP_TRANSLATE_MESSAGES_CHAT_H

#include "cm/buf.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define CP_TR_MESSAGES_CHAT_MAX_MESSAGES 4096 /* most entries in "messages" */
#define CP_TR_MESSAGES_CHAT_MAX_BLOCKS 1024   /* most content blocks in one message / system */
#define CP_TR_MESSAGES_CHAT_MAX_TOOLS 512     /* most "tools", and most tool calls streamed */

/**
 * Translates the Messages request @p req (borrowed, unchanged) into a new chat.completions
 * request in *@p chat (caller frees with cJSON_Delete()):
 *  - model: copied as given (a "(level|budget)" suffix stays for the relay to resolve);
 *    stream: the client's "stream" (false when absent).
 *  - system (a string or text blocks) -> one leading {"role":"system"} message whose content
 *    is the non-empty blocks joined by "\n\n", lines starting "x-anthropic-billing-header: "
 *    removed (no message when nothing is left).
 *  - messages: a string content stays a string. User blocks: text -> text part; image
 *    (base64 -> "data:<media_type>;base64,<data>", url -> the url) -> image_url part;
 *    document (base64 application/pdf -> file part {filename "document.pdf", file_data data
 *    URL}; text source -> text part; any other source -> 400 "...source.type" or
 *    "...source.media_type"); tool_result -> one {"role":"tool"} message (tool_call_id =
 *    tool_use_id, content = its text: the string, or its text blocks joined by "\n", each
 *    image/document replaced by "[image]" / "[document]", prefixed "Error: " when is_error)
 *    emitted BEFORE the turn's other user content; the images/documents of tool results go
 *    first into the user message that follows. Assistant blocks: text (joined without
 *    separator) -> content (null when there is none), tool_use -> tool_calls {id, type
 *    function, function {name, arguments: the JSON text of input}}; thinking and
 *    redacted_thinking are dropped (opaque to other upstreams). Any other block type, or a
 *    block in the wrong role, -> 400 naming "messages[i].content[j].type".
 *  - tools: custom tools (no type or "custom") -> {type function, function {name,
 *    description, parameters = input_schema}}; server tools (web_search_*, bash_*,
 *    text_editor_*, computer_*, ...) -> 400 naming "tools[i].type". tool_choice: auto ->
 *    "auto", any -> "required", tool -> {type function, function {name}}, none -> "none";
 *    disable_parallel_tool_use true -> parallel_tool_calls false.
 *  - thinking {type enabled, budget_tokens N} -> reasoning_effort by the spec 5.1 budget
 *    thresholds (<=512 minimal, <=1024 low, <=8192 medium, else high: chat has no xhigh;
 *    N = 0 sets nothing); {type disabled} -> nothing; {type adaptive|auto} -> "medium", or
 *    output_config.effort (low/medium/high; max -> high). Without thinking, an
 *    output_config.effort is mapped the same way.
 *  - output_format / output_config.format {type json_schema, schema} -> response_format
 *    {type json_schema, json_schema {name "output", schema, strict true}}.
 *  - max_tokens -> max_tokens, stop_sequences -> stop, temperature and top_p copied,
 *    metadata.user_id -> user.
 *  - Ignored hints (no chat equivalent, answer still valid): top_k, service_tier,
 *    container, context_management, cache_control and citations on blocks, a document's
 *    title and context, the rest of metadata. mcp_servers must be empty (else 400 "mcp_servers").
 * Returns CM_OK; CM_ERR_INVAL (status 400, type invalid_request_error, err->field = the JSON
 * path at fault, err->msg starting with it); CM_ERR_LIMIT (400) past the
 * CP_TR_MESSAGES_CHAT_MAX_* caps; CM_ERR_NOMEM (500). *@p chat is written only on CM_OK,
 * @p err (may be NULL) only on failure.
 */
int cp_tr_messages_chat_request(const cJSON *req, cJSON **chat, struct cp_tr_err *err);

/** Streaming state for one response (opaque; cp_tr_messages_chat_stream_new/_free). */
struct cp_tr_messages_chat_stream;

/**
 * A new stream state in *@p out (free with cp_tr_messages_chat_stream_free()) for the client
 * request @p req (borrowed for the call; its "model" is the fallback model shown), @p id the
 * message id shown to the client ("msg_..."; copied), @p created unix seconds (kept, unused
 * by the Anthropic format). CM_OK, CM_ERR_INVAL (NULL @p id / @p out), CM_ERR_NOMEM; *@p out
 * written only on CM_OK.
 */
int cp_tr_messages_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                   struct cp_tr_messages_chat_stream **out);

/**
 * Handles one chat.completion.chunk @p chunk (borrowed): appends zero or more Anthropic
 * events ("event: <type>\ndata: <json>\n\n") to @p out: message_start on the first valid
 * chunk (model = the chunk's "model", else the request's), then content blocks with
 * consecutive indices: delta.reasoning_content (or delta.reasoning) -> a thinking block
 * (content_block_start {type thinking, thinking "", signature ""}, thinking_delta ...),
 * delta.content -> a text block (text_delta), each tool call (keyed by its chat "index";
 * its block starts once its name is known) -> a tool_use block (start {type tool_use, id,
 * name, input {}}, input_json_delta {partial_json}). The open block is stopped before
 * another starts. finish_reason and usage (on any chunk) are remembered for
 * cp_tr_messages_chat_stream_end(). Chunks that are not objects or whose "choices" is not
 * an array are ignored, as is everything after end/fail; arguments for a tool call whose
 * block was already stopped (interleaved calls, which chat upstreams do not send) are
 * dropped. Returns CM_OK; CM_ERR_LIMIT (err: 502) past CP_TR_MESSAGES_CHAT_MAX_TOOLS tool
 * calls or when @p out is full; CM_ERR_NOMEM (500); CM_ERR_INVAL for NULL @p st / @p out.
 * On an error what was appended may be partial: abandon the stream. @p err may be NULL.
 */
int cp_tr_messages_chat_stream_chunk(struct cp_tr_messages_chat_stream *st, const cJSON *chunk,
                                     struct cm_buf *out, struct cp_tr_err *err);

/**
 * The pivot stream ended normally ([DONE]): appends message_start if none went out, stops the
 * open block, starts-and-stops any tool call never started, then message_delta {delta
 * {stop_reason, stop_sequence null}, usage {input_tokens = prompt - cached, output_tokens =
 * completion, cache_read_input_tokens = cached}} (0s without usage) and message_stop.
 * stop_reason: length -> max_tokens; tool_calls -> tool_use; stop, content_filter or none
 * -> tool_use when a tool call went out, else end_turn. A second call, or one after
 * cp_tr_messages_chat_stream_fail(), appends nothing. CM_OK, CM_ERR_LIMIT, CM_ERR_NOMEM,
 * CM_ERR_INVAL (NULL arguments).
 */
int cp_tr_messages_chat_stream_end(struct cp_tr_messages_chat_stream *st, struct cm_buf *out);

/**
 * The upstream failed after the stream began: appends one "event: error" {"type":"error",
 * "error":{"type", "message": @p e->msg}} (spec 5.6); the type from @p e->status:
 * overloaded_error 503/529, rate_limit_error 429, authentication_error 401,
 * permission_error 403, not_found_error 404, invalid_request_error 400, timeout_error
 * 408/504, else api_error. Nothing follows it; a second call or one after end appends
 * nothing. CM_OK, CM_ERR_LIMIT, CM_ERR_NOMEM, CM_ERR_INVAL (NULL arguments).
 */
int cp_tr_messages_chat_stream_fail(struct cp_tr_messages_chat_stream *st,
                                    const struct cp_tr_err *e, struct cm_buf *out);

/**
 * True once a chunk carried real content (text, reasoning or a tool call): from then on a
 * failure can no longer be hidden by failing over. Before it, what was appended
 * (message_start) may be held back.
 */
bool cp_tr_messages_chat_stream_has_content(const struct cp_tr_messages_chat_stream *st);

/** Frees @p st and all it owns. NULL is a no-op. */
void cp_tr_messages_chat_stream_free(struct cp_tr_messages_chat_stream *st);

/**
 * Non-stream: the chat.completion @p completion (borrowed) -> a new Anthropic message in
 * *@p out (caller frees with cJSON_Delete()): {id: @p id, type "message", role "assistant",
 * model (the completion's, else @p req's), content [thinking {thinking, signature ""} from
 * reasoning_content, text from content (or refusal), tool_use {id, name, input = the
 * arguments parsed ({} when not a JSON object)} ...], stop_reason (as the stream),
 * stop_sequence null, usage {input_tokens, output_tokens, cache_read_input_tokens,
 * cache_creation_input_tokens 0}}. @p created is unused by the format. @p req may be NULL.
 * Returns CM_OK; CM_ERR_UPSTREAM (502, "bad_upstream_event") when @p completion is not an
 * object; CM_ERR_LIMIT (502) past CP_TR_MESSAGES_CHAT_MAX_TOOLS calls; CM_ERR_NOMEM (500);
 * CM_ERR_INVAL for NULL @p id / @p out. *@p out written only on CM_OK, @p err only on
 * failure.
 */
int cp_tr_messages_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                                 int64_t created, cJSON **out, struct cp_tr_err *err);

#endif
