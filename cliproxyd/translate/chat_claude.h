/* SPDX-License-Identifier: MIT */
/*
 * chat_claude.h - OpenAI Chat Completions clients on the Claude (Anthropic Messages) upstream.
 *
 * Three pure pieces (spec cliproxyapi.md 3.2, 5.1, 5.4, 5.3 for the chunk shapes, 5.6):
 *  1. cp_tr_chat_claude_request(): a chat.completions request tree -> an Anthropic
 *     /v1/messages body (model suffix -> thinking, messages -> alternating user/assistant
 *     turns with content blocks, system -> "system", tools, tool_choice, sampling).
 *  2. struct cp_tr_chat_claude_stream: fed one Anthropic SSE event at a time, appends the
 *     chat.completion.chunk events ("data: {...}\n\n") the client must get, ending with the
 *     finish_reason chunk, the usage chunk when stream_options.include_usage, and
 *     "data: [DONE]"; an upstream error event or an early end becomes one
 *     "data: {"error":{...}}" event and no [DONE].
 *  3. cp_tr_chat_claude_aggregate() (a whole Anthropic SSE body) and
 *     cp_tr_chat_claude_from_message() (one non-stream Message JSON) -> one chat.completion.
 * The provider layer, not this module, adds metadata.user_id, cloaking, cache_control,
 * forces "stream": true upstream and disables thinking for forced tool choices (3.2(d)).
 * No I/O, no clock: ids and timestamps are parameters. Not thread-safe per stream object.
 */
#ifndef CP_TRANSLATE_CHAT_CLAUDE_H
#define CP_TRANSLATE_CHAT_CLAUDE_H

#include "cm/buf.h"
#include "translate/chat_common.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TR_CHAT_CLAUDE_MAX_MESSAGES 4096 /* most entries in "messages" */
#define CP_TR_CHAT_CLAUDE_MAX_PARTS 1024    /* most content parts in one message */
#define CP_TR_CHAT_CLAUDE_MAX_TOOLS 512     /* most entries in "tools" (and tool_calls) */
#define CP_TR_CHAT_CLAUDE_MAX_BLOCKS 4096   /* most content blocks one answer may carry */

#define CP_TR_CHAT_CLAUDE_MAX_TOKENS_DEFAULT 32000 /* spec 5.4 template */
#define CP_TR_CHAT_CLAUDE_BUDGET_MIN 1024          /* Claude's thinking budget range (3.2(f)) */
#define CP_TR_CHAT_CLAUDE_BUDGET_MAX 128000
#define CP_TR_CHAT_CLAUDE_BUDGET_HEADROOM 4096 /* max_tokens = budget + this when too small */

/** The message the executor reports when the upstream stream ends before message_stop. */
#define CP_TR_CLAUDE_EARLY_EOF_MSG                                                                 \
    "stream error: stream disconnected before completion: stream closed before message_stop"

/**
 * Translates the chat.completions request @p req (borrowed, unchanged) into a new Anthropic
 * /v1/messages body in *@p out (caller frees with cJSON_Delete()):
 *  - "model": the base model, a trailing "(suffix)" stripped.
 *  - thinking (spec 5.1): the suffix, else "reasoning_effort", picks a budget: minimal 512,
 *    low 1024, medium 8192, high 24576, xhigh 32768, max 128000, auto/-1 medium, an integer
 *    = itself; 0 or "none" -> {"type":"disabled"}; else {"type":"enabled","budget_tokens"},
 *    the budget clamped to CP_TR_CHAT_CLAUDE_BUDGET_MIN..MAX (so minimal sends 1024).
 *    Every model is treated as a budget model, adaptive ones (4.6+) included: the suffix is
 *    stripped here, so the provider's adaptive mapping (thinking "adaptive" +
 *    output_config.effort) applies to Claude-format clients only.
 *    With thinking enabled, max_tokens is raised to budget + 4096 when not above the budget
 *    and temperature is dropped. Without suffix or reasoning_effort: no "thinking".
 *  - "max_tokens": max_completion_tokens, else max_tokens, else 32000.
 *  - system/developer messages -> "system": [{"type":"text","text"}...] (empty texts skipped).
 *  - user text -> text blocks; image_url -> image blocks (a data: URL -> base64 source, an
 *    http(s) URL -> url source); file parts with PDF data (data:application/pdf URL, or raw
 *    base64 with a .pdf filename) -> document blocks; anything else (input_audio, file_id,
 *    other file types) fails.
 *  - assistant text (and refusal parts) -> text blocks, tool_calls -> tool_use blocks with
 *    "input" = the arguments parsed (invalid or non-object JSON -> {}); an assistant message
 *    with neither is skipped.
 *  - tool messages -> user messages with {"type":"tool_result","tool_use_id","content":
 *    <text>}.
 *  - consecutive messages of one role are merged into one (Anthropic needs alternation);
 *    within a user message tool_result blocks are kept ahead of other blocks.
 *  - tools -> {name, description?, input_schema: parameters or {"type":"object",
 *    "properties":{}}}; tool_choice auto -> {"type":"auto"}, required -> {"type":"any"},
 *    none -> no tool_choice (tools kept), function -> {"type":"tool","name"};
 *    parallel_tool_calls false -> tool_choice.disable_parallel_tool_use true (with
 *    {"type":"auto"} when no choice was given). No tools: no tool_choice.
 *  - stop (string or array) -> stop_sequences; temperature, top_p, stream copied.
 *  - dropped: user (the provider sets metadata.user_id), seed, penalties, logit_bias,
 *    store, metadata, service_tier, stream_options, ...
 * Refused (CM_ERR_INVAL, status 400, the field named in @p err): n > 1, logprobs, audio
 * output, non-text modalities, the legacy functions API, response_format other than
 * "text", unknown roles or part types, malformed messages/tools/tool_choice/stop, a
 * conversation with only system messages, empty user content.
 * Returns CM_OK; CM_ERR_INVAL (400); CM_ERR_LIMIT (400) past the CP_TR_CHAT_CLAUDE_MAX_*
 * caps; CM_ERR_NOMEM (500). *@p out is written only on CM_OK; @p err (may be NULL) only
 * on failure.
 */
int cp_tr_chat_claude_request(const cJSON *req, cJSON **out, struct cp_tr_err *err);

struct cp_tr_chat_claude_call; /* private: one tool_use block seen in the stream */

/** Private: Anthropic's raw token counts, as last reported (each only grows). */
struct cp_tr_chat_claude_counts {
    int64_t in, cache_read, cache_creation, out;
    bool seen; /* some usage object was seen */
};

/**
 * Streaming state for one response. Caller-owned; init/cleanup pair; fields are private.
 */
struct cp_tr_chat_claude_stream {
    struct cp_tr_chat_chunker _ck; /* chunk id/model/created, include_usage, role sent */
    bool _done;                    /* a terminal event was handled: ignore the rest */
    bool _content;                 /* a text/thinking/tool delta went out */
    bool _thinking_text;           /* some reasoning_content went out (a blank line goes
                                      between thinking blocks) */
    int64_t _block;                /* index of the open block, -1 if none */
    bool _block_thinking;          /* it is a thinking block */
    bool _block_text;              /* it emitted some reasoning_content */
    char *_stop_reason;            /* message_delta.delta.stop_reason (owned) */
    struct cp_tr_chat_claude_counts _counts;
    struct cp_tr_chat_claude_call *_calls; /* tool_use blocks by chat index (owned) */
    size_t _ncalls;
};

/**
 * Prepares @p st for one response to the client request @p client_req (borrowed for the
 * call; read: "model" as fallback chunk model, stream_options.include_usage). @p id is the
 * chunk id ("chatcmpl-..."), @p created the chunk timestamp (Anthropic sends none).
 * Returns CM_OK, CM_ERR_INVAL (NULL arguments) or CM_ERR_NOMEM; on error @p st needs no
 * cleanup. @p err may be NULL.
 */
int cp_tr_chat_claude_stream_init(struct cp_tr_chat_claude_stream *st, const cJSON *client_req,
                                  const char *id, int64_t created, struct cp_tr_err *err);

/** Frees what @p st owns (not the struct). Safe on a zeroed struct and twice. */
void cp_tr_chat_claude_stream_cleanup(struct cp_tr_chat_claude_stream *st);

/**
 * Handles one upstream SSE event: @p type / @p type_len is the "event:" name (may be NULL,
 * then the data's "type" member is used), @p data / @p data_len its data (JSON; need not
 * be NUL-terminated). Appends zero or more client events to @p out:
 *  - message_start: nothing; records message.model (chunk model) and the usage counts.
 *  - content_block_start: text -> a chunk with delta.role "assistant" and content "" (only
 *    while no chunk went out yet), plus any initial text; tool_use -> tool_calls
 *    [{index, id, type "function", function {name, arguments ""}}]; thinking and other
 *    blocks -> nothing.
 *  - content_block_delta: text_delta -> delta.content; thinking_delta ->
 *    delta.reasoning_content ("\n\n" goes first when an earlier thinking block emitted
 *    text); input_json_delta -> tool_calls [{index, function {arguments}}];
 *    signature_delta and unknown deltas -> nothing.
 *  - content_block_stop of a tool_use that got no arguments -> arguments "{}".
 *  - message_delta: records stop_reason and the usage counts.
 *  - message_stop: the finish chunk (end_turn/stop_sequence/pause_turn -> "stop", tool_use
 *    -> "tool_calls", max_tokens -> "length", refusal -> "content_filter", none ->
 *    "tool_calls" if a tool call went out else "stop"), the usage chunk when asked, and
 *    "data: [DONE]".
 *  - ping and unknown events: nothing. Events after a terminal one: ignored (CM_OK).
 * Returns:
 *  - CM_OK: handled.
 *  - CM_ERR_UPSTREAM: an "error" event, or event data that is not a JSON object: one error
 *    event was appended, @p err has the mapped status (overloaded_error 503,
 *    rate_limit_error 429, api_error 500, invalid_request_error 400, authentication_error
 *    401, permission_error 403, not_found_error 404, billing_error 402, request_too_large
 *    413, timeout_error 504, else 502; 502 "bad_upstream_event" for malformed data), the
 *    upstream's error type and message; the stream is over.
 *  - CM_ERR_INVAL: NULL @p st / @p out, or @p st not initialised.
 *  - CM_ERR_LIMIT / CM_ERR_NOMEM: @p out is full, more than CP_TR_CHAT_CLAUDE_MAX_TOOLS tool
 *    calls, or memory ran out (@p err: 500); what was appended for this event may be
 *    partial; the stream should be abandoned.
 */
int cp_tr_chat_claude_stream_event(struct cp_tr_chat_claude_stream *st, const char *type,
                                   size_t type_len, const char *data, size_t data_len,
                                   struct cm_buf *out, struct cp_tr_err *err);

/**
 * The upstream stream ended. If message_stop did not come (and no error event), appends one
 * error event with CP_TR_CLAUDE_EARLY_EOF_MSG (never [DONE]) and returns CM_ERR_TIMEOUT
 * with @p err status 408, type "timeout_error", code "request_timeout": the caller may
 * fail over if nothing was flushed to the client yet. After a terminal event: CM_OK,
 * nothing appended. CM_ERR_LIMIT / CM_ERR_NOMEM from @p out.
 */
int cp_tr_chat_claude_stream_finish(struct cp_tr_chat_claude_stream *st, struct cm_buf *out,
                                    struct cp_tr_err *err);

/**
 * The usage reported so far, for billing: CM_OK and *@p out once message_start or
 * message_delta carried usage (final after message_delta), else CM_ERR_NOTFOUND.
 * input = input_tokens + cache_creation_input_tokens + cache_read_input_tokens,
 * output = output_tokens, cached = cache_read_input_tokens, reasoning 0, total = in + out.
 */
int cp_tr_chat_claude_stream_usage(const struct cp_tr_chat_claude_stream *st,
                                   struct cp_tr_usage *out);

/**
 * True once a text, thinking or tool-call delta was appended (the role-only first chunk
 * does not count): until then the relay may hold the bytes back and fail over.
 */
bool cp_tr_chat_claude_stream_has_content(const struct cp_tr_chat_claude_stream *st);

/**
 * Aggregates the whole Anthropic SSE body @p sse (@p len bytes) into one chat.completion
 * object in *@p out (caller frees with cJSON_Delete()), as cp_tr_chat_claude_from_message()
 * does for the Message the events describe (blocks in index order, text joined,
 * thinking blocks joined by a blank line, tool inputs from the input_json_delta pieces).
 * @p client_req (may be NULL) gives the fallback model; @p id / @p created as for the
 * stream. Returns CM_OK; CM_ERR_UPSTREAM for an error event or malformed data (status in
 * @p err); CM_ERR_TIMEOUT (408, CP_TR_CLAUDE_EARLY_EOF_MSG) when the body ends before
 * message_stop; CM_ERR_LIMIT (502) for an oversized event or more than
 * CP_TR_CHAT_CLAUDE_MAX_BLOCKS blocks; CM_ERR_INVAL (NULL arguments); CM_ERR_NOMEM.
 * @p usage (may be NULL) gets the usage on CM_OK. Outputs written only on CM_OK.
 */
int cp_tr_chat_claude_aggregate(const char *sse, size_t len, const cJSON *client_req,
                                const char *id, int64_t created, cJSON **out,
                                struct cp_tr_usage *usage, struct cp_tr_err *err);

/**
 * Translates one non-stream Anthropic Message @p msg (borrowed) into a chat.completion in
 * *@p out (caller frees with cJSON_Delete()): "content" = the text blocks joined (null when
 * there are none), "reasoning_content" = the thinking blocks joined by a blank line (omitted
 * when empty), "tool_calls" from tool_use blocks (arguments = the printed input; a string
 * input is used verbatim), finish_reason from stop_reason as for the stream, usage as
 * cp_tr_chat_claude_stream_usage(). "model" is msg.model, else @p client_req's (may be NULL).
 * Returns CM_OK; CM_ERR_UPSTREAM for a Message of "type":"error" (the mapped status, as
 * for the stream) or one that is not an object (502 "bad_upstream_event"); CM_ERR_INVAL
 * (NULL @p out / @p id; 500); CM_ERR_NOMEM (500).
 * @p usage (may be NULL) on CM_OK; @p err (may be NULL) on failure.
 */
int cp_tr_chat_claude_from_message(const cJSON *msg, const cJSON *client_req, const char *id,
                                   int64_t created, cJSON **out, struct cp_tr_usage *usage,
                                   struct cp_tr_err *err);

#endif
