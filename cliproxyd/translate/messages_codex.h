/* SPDX-License-Identifier: MIT */
/*
 * messages_codex.h - Anthropic Messages API clients (/v1/messages) on the Codex (ChatGPT
 * Responses) upstream.
 *
 * Three pure pieces (spec cliproxyapi.md 3.1(d), 5.1, 5.4 "Claude -> Codex" and
 * "Codex -> Claude SSE", 5.6):
 *  1. cp_tr_messages_codex_request(): a Messages request tree -> the Codex /responses body
 *     (model suffix or thinking -> reasoning.effort, system -> one developer message,
 *     content blocks -> input items, tools, tool_choice, body rules).
 *  2. struct cp_tr_messages_codex_stream: fed one Codex SSE event at a time, appends the
 *     Anthropic events ("event: <type>\ndata: <json>\n\n") the client must get:
 *     message_start, content_block_start/delta/stop per thinking, text and tool_use block,
 *     message_delta and message_stop; an upstream failure or an early end becomes one
 *     "event: error" and nothing more.
 *  3. cp_tr_messages_codex_aggregate(): a whole Codex SSE body -> one Anthropic message.
 * No I/O, no clock: the message id is a parameter. Not thread-safe per stream object.
 */
#ifndef CP_TRANSLATE_MESSAGES_CODEX_H
#define CP_TRANSLATE_MESSAGES_CODEX_H

#include "cm/buf.h"
#include "translate/codex_common.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TR_MESSAGES_CODEX_MAX_MESSAGES 4096 /* most entries in "messages" */
#define CP_TR_MESSAGES_CODEX_MAX_BLOCKS 1024   /* most content blocks in one message / system */
#define CP_TR_MESSAGES_CODEX_MAX_TOOLS 512     /* most entries in "tools" (and calls streamed) */

/**
 * Translates the Messages request @p req (borrowed, unchanged) into a new Codex /responses
 * body in *@p out (caller frees with cJSON_Delete()):
 *  - model: the base model; a trailing "(level|budget)" suffix becomes reasoning.effort and
 *    wins over the body; else thinking {type "enabled", budget_tokens} -> effort by the
 *    budget thresholds of spec 5.1, {type "adaptive"|"auto"} -> output_config.effort (max ->
 *    xhigh) or "xhigh", {type "disabled"} -> "none"; default "medium". reasoning.summary
 *    "auto".
 *  - system (a string or text blocks) -> ONE developer message with one input_text per
 *    non-empty block, lines starting "x-anthropic-billing-header: " dropped.
 *  - messages: user/assistant text -> input_text / output_text; image (base64 -> data URL,
 *    url) -> input_image; document (base64 PDF -> input_file file_data + filename from
 *    title or "document.pdf"; url -> input_file file_url; plain-text source -> input_text);
 *    tool_use -> function_call {call_id, name (shortened past 64 bytes), arguments = JSON
 *    of input}; tool_result -> function_call_output {call_id, output}: the text (string
 *    content, or text blocks joined by "\n"), or an array of input_text / input_image /
 *    input_file parts when the result holds images or documents; thinking and
 *    redacted_thinking blocks are dropped. Items keep the order of the blocks.
 *  - tools: custom tools -> flat {type function, name, description, parameters
 *    (input_schema), strict false}; web_search_* server tools -> {type web_search}; other
 *    server tools are refused. tool_choice auto / any ("required") / tool ({type function,
 *    name}) / none; disable_parallel_tool_use -> parallel_tool_calls false (else true).
 *  - instructions "", stream true, store false, include ["reasoning.encrypted_content"].
 *    max_tokens, temperature, top_p, top_k, stop_sequences, metadata, stream, service_tier,
 *    container and mcp_servers (empty) are dropped.
 * Returns CM_OK; CM_ERR_INVAL (status 400, the field named in @p err, e.g.
 * "messages[2].content[0].type") for a bad or unsupported request; CM_ERR_LIMIT (400) past
 * the CP_TR_MESSAGES_CODEX_MAX_* caps; CM_ERR_NOMEM (500). *@p out is written only on CM_OK;
 * @p err (may be NULL) only on failure.
 */
int cp_tr_messages_codex_request(const cJSON *req, cJSON **out, struct cp_tr_err *err);

/** Streaming state for one response. Caller-owned; init/cleanup pair; fields are private. */
struct cp_tr_messages_codex_stream {
    char *_id;          /* message id (owned) */
    char *_model;       /* message model: the upstream's, else the client's (owned) */
    bool _started;      /* message_start went out */
    bool _has_content;  /* a text/thinking/tool_use delta went out */
    bool _done;         /* a terminal event was handled: ignore the rest */
    bool _completed;    /* response.completed (or incomplete) was handled */
    bool _have_usage;   /* _usage is from the upstream */
    bool _think_sep;    /* a summary part ended: the next thinking delta starts "\n\n" */
    int _open;          /* kind of the open content block (0 = none) */
    size_t _open_index; /* its index */
    size_t _open_call;  /* for a tool_use block: its entry in _calls */
    size_t _next_index; /* index of the next content block */
    struct cp_tr_usage _usage;
    struct cp_tr_codex_call *_calls; /* tool calls seen (owned) */
    size_t _ncalls;
    struct cp_tr_codex_names *_names; /* from the client's tools (owned, may be NULL) */
};

/**
 * Prepares @p st for one response to the client request @p client_req (borrowed for the
 * call; read: "model" as fallback message model, "tools" for restoring shortened names).
 * @p msg_id is the message id to use ("msg_..."; copied).
 * Returns CM_OK, CM_ERR_INVAL (NULL @p st / @p msg_id) or CM_ERR_NOMEM; on error @p st
 * needs no cleanup. @p err may be NULL.
 */
int cp_tr_messages_codex_stream_init(struct cp_tr_messages_codex_stream *st,
                                     const cJSON *client_req, const char *msg_id,
                                     struct cp_tr_err *err);

/** Frees what @p st owns (not the struct). Safe on a zeroed struct and twice. */
void cp_tr_messages_codex_stream_cleanup(struct cp_tr_messages_codex_stream *st);

/**
 * Handles one upstream SSE event: @p type / @p type_len is the "event:" name (may be NULL,
 * then the data's "type" member is used), @p data / @p data_len its data (JSON; need not be
 * NUL-terminated). Appends zero or more Anthropic events to @p out: message_start before
 * the first event that is not ignored (response.created counts; unknown and bookkeeping
 * events such as codex.rate_limits do not), then content blocks with consecutive indices
 * (an open block is stopped before another starts; a thinking block ends without a
 * signature_delta: Codex gives no Anthropic signature). Events after a terminal one are
 * ignored (CM_OK, nothing appended). Returns:
 *  - CM_OK: handled; response.completed / response.incomplete stops the open block and
 *    appends message_delta (stop_reason "tool_use" when a tool was called, else
 *    "max_tokens" for an incomplete max_output_tokens response, else "end_turn"; usage
 *    input_tokens = input - cached, output_tokens, cache_read_input_tokens = cached) and
 *    message_stop.
 *  - CM_ERR_UPSTREAM: response.failed / error event, or event data that is not a JSON
 *    object: one "event: error" {"type":"error","error":{"type":<Anthropic type>,
 *    "message"}} was appended; @p err has the mapped status (e.g. 429, 400, 502 for
 *    malformed events), OpenAI type, code and message; the stream is over.
 *  - CM_ERR_INVAL: NULL @p st / @p out, or @p st not initialised.
 *  - CM_ERR_LIMIT / CM_ERR_NOMEM: @p out is full, too many tool calls or memory ran out;
 *    what was appended for this event may be partial; the stream should be abandoned.
 */
int cp_tr_messages_codex_stream_event(struct cp_tr_messages_codex_stream *st, const char *type,
                                      size_t type_len, const char *data, size_t data_len,
                                      struct cm_buf *out, struct cp_tr_err *err);

/**
 * The upstream stream ended. If no terminal event came, appends one "event: error"
 * (api_error, CP_TR_CODEX_EARLY_EOF_MSG) and returns CM_ERR_TIMEOUT with @p err status 408,
 * code "request_timeout": the caller may fail over to another credential if nothing was
 * flushed to the client yet. After a terminal event: CM_OK, nothing appended.
 * CM_ERR_INVAL for NULL arguments; CM_ERR_LIMIT / CM_ERR_NOMEM from @p out.
 */
int cp_tr_messages_codex_stream_finish(struct cp_tr_messages_codex_stream *st, struct cm_buf *out,
                                       struct cp_tr_err *err);

/**
 * True once a text, thinking or tool_use delta has been appended: from then on the client
 * has seen real content and a failure can no longer be hidden by failing over. Before it,
 * the appended bytes (message_start, empty block starts) may be held back and dropped.
 */
bool cp_tr_messages_codex_stream_has_content(const struct cp_tr_messages_codex_stream *st);

/**
 * The usage of response.completed, for billing (OpenAI terms: input includes cached):
 * CM_OK and *@p out, or CM_ERR_NOTFOUND when the upstream has not reported any (yet).
 */
int cp_tr_messages_codex_stream_usage(const struct cp_tr_messages_codex_stream *st,
                                      struct cp_tr_usage *out);

/**
 * Aggregates the whole Codex SSE body @p sse (@p len bytes) into one Anthropic message in
 * *@p out (caller frees with cJSON_Delete()): {id: @p msg_id, type "message", role
 * "assistant", model (the upstream's, else @p client_req's), content [thinking (summary
 * texts joined by a blank line), text per output message, tool_use {id, name restored from
 * @p client_req's tools, input parsed from the arguments ({} when empty or not a JSON
 * object)} ... in output order], stop_reason, stop_sequence null, usage {input_tokens
 * (input - cached), output_tokens, cache_read_input_tokens}}. When response.completed
 * carries an empty output, the items of response.output_item.done events are used, in
 * output_index order. @p client_req may be NULL.
 * Returns CM_OK; CM_ERR_UPSTREAM for response.failed / error / malformed events (status in
 * @p err); CM_ERR_TIMEOUT (status 408, CP_TR_CODEX_EARLY_EOF_MSG) when the body ends before
 * response.completed; CM_ERR_LIMIT for an oversized event; CM_ERR_INVAL for NULL
 * arguments; CM_ERR_NOMEM. @p usage (may be NULL) gets the usage on CM_OK. Outputs written
 * only on CM_OK.
 */
int cp_tr_messages_codex_aggregate(const char *sse, size_t len, const cJSON *client_req,
                                   const char *msg_id, cJSON **out, struct cp_tr_usage *usage,
                                   struct cp_tr_err *err);

#endif
