/* SPDX-License-Identifier: MIT */
/*
 * chat_codex.h - OpenAI Chat Completions clients on the Codex (ChatGPT Responses) upstream.
 *
 * Three pure pieces (spec cliproxyapi.md 3.1(d), 5.1-5.3, 5.6):
 *  1. cp_tr_chat_codex_request(): a chat.completions request tree -> the Codex /responses
 *     body (model suffix -> reasoning.effort, messages -> input items, tools, body rules).
 *  2. struct cp_tr_chat_codex_stream: fed one Codex SSE event at a time, appends the
 *     chat.completion.chunk events ("data: {...}\n\n") the client must get, ending with the
 *     finish_reason chunk, the optional usage chunk and "data: [DONE]"; an upstream failure
 *     or an early end becomes one "data: {"error":{...}}" event and no [DONE].
 *  3. cp_tr_chat_codex_aggregate(): a whole Codex SSE body -> one chat.completion object.
 * No I/O, no clock: ids and timestamps are parameters. Not thread-safe per stream object.
 */
#ifndef CP_TRANSLATE_CHAT_CODEX_H
#define CP_TRANSLATE_CHAT_CODEX_H

#include "cm/buf.h"
#include "translate/chat_common.h"
#include "translate/codex_common.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TR_CHAT_CODEX_MAX_MESSAGES 4096 /* most entries in "messages" */
#define CP_TR_CHAT_CODEX_MAX_PARTS 1024    /* most content parts in one message */
#define CP_TR_CHAT_CODEX_MAX_TOOLS 512     /* most entries in "tools" (and tool_calls) */
#define CP_TR_CHAT_CODEX_MAX_DEPTH 64      /* nesting cap for the raw-bytes entry point */
#define CP_TR_CHAT_CODEX_NAME_MAX 64       /* Codex's limit on a function name */

/**
 * Translates the chat.completions request @p req (borrowed, unchanged) into a new Codex
 * /responses body in *@p out (caller frees with cJSON_Delete()):
 * model = base model with a trailing "(level|budget)" suffix stripped (the suffix, else
 * "reasoning_effort", else "medium" becomes reasoning.effort); instructions ""; system and
 * developer messages -> developer message items; user/assistant text -> input_text /
 * output_text; image_url -> input_image; file -> input_file; assistant tool_calls ->
 * function_call items; tool messages -> function_call_output; tools -> flat function tools
 * (names longer than 64 shortened, see cp_tr_chat_codex_tool_name()); tool_choice;
 * response_format, verbosity (or text.verbosity) -> text; stream true, store false,
 * parallel_tool_calls (client's value, default true), include
 * ["reasoning.encrypted_content"], reasoning.summary "auto".
 * Sampling knobs the backend refuses (temperature, top_p, max_tokens, ...) are dropped;
 * service_tier kept only when "priority". Anything with a meaning that cannot be expressed
 * (an input_audio part, n > 1, logprobs, audio output, a legacy "function" role...) fails.
 * Returns CM_OK; CM_ERR_INVAL (status 400, field named in @p err) for a bad or unsupported
 * request; CM_ERR_LIMIT (400) past the CP_TR_CHAT_CODEX_MAX_* caps; CM_ERR_NOMEM (500).
 * *@p out is written only on CM_OK; @p err (may be NULL) only on failure.
 */
int cp_tr_chat_codex_request(const cJSON *req, cJSON **out, struct cp_tr_err *err);

/**
 * As cp_tr_chat_codex_request(), from the raw body (@p len bytes): parsed with a nesting cap
 * of CP_TR_CHAT_CODEX_MAX_DEPTH; malformed JSON -> CM_ERR_PARSE, too deep -> CM_ERR_LIMIT
 * (both status 400). The result is printed into *@p out (caller frees with cm_free()),
 * its length in *@p out_len (may be NULL).
 */
int cp_tr_chat_codex_request_bytes(const char *body, size_t len, char **out, size_t *out_len,
                                   struct cp_tr_err *err);

/**
 * The name Codex gets for the client's function @p name: itself when at most 64 bytes;
 * else "mcp__<last __-segment>" for "mcp__" names, else the first 64 bytes, cut to 64.
 * (Uniqueness among one request's tools is added by the request translator with a "_<n>"
 * tail.) Writes a NUL-terminated name into @p out (@p out_size >= 65). Pure.
 * Returns CM_OK or CM_ERR_INVAL (NULL arguments, @p out_size too small).
 */
int cp_tr_chat_codex_tool_name(const char *name, char *out, size_t out_size);

/**
 * Streaming state for one response. Caller-owned; init/cleanup pair; fields are private.
 */
struct cp_tr_chat_codex_stream {
    struct cp_tr_chat_chunker _ck; /* chunk id/model/created, include_usage, role sent */
    bool _done;                    /* a terminal event was handled: ignore the rest */
    bool _completed;               /* response.completed (or incomplete) was handled */
    bool _have_usage;              /* _usage is from the upstream */
    struct cp_tr_usage _usage;
    struct cp_tr_codex_call *_calls; /* tool calls by chat index (owned) */
    size_t _ncalls;
    struct cp_tr_codex_names *_names; /* from the client's tools (owned, may be NULL) */
};

/**
 * Prepares @p st for one response to the client request @p client_req (borrowed for the
 * call; read: "model" as fallback chunk model, stream_options.include_usage, tools for
 * restoring shortened names). @p id is the chunk id to use ("chatcmpl-..."), @p created the
 * fallback timestamp (response.created_at wins when the upstream sends it).
 * Returns CM_OK, CM_ERR_INVAL (NULL arguments) or CM_ERR_NOMEM; on error @p st needs no
 * cleanup. @p err may be NULL.
 */
int cp_tr_chat_codex_stream_init(struct cp_tr_chat_codex_stream *st, const cJSON *client_req,
                                 const char *id, int64_t created, struct cp_tr_err *err);

/** Frees what @p st owns (not the struct). Safe on a zeroed struct and twice. */
void cp_tr_chat_codex_stream_cleanup(struct cp_tr_chat_codex_stream *st);

/**
 * Handles one upstream SSE event: @p type / @p type_len is the "event:" name (may be NULL,
 * then the data's "type" member is used), @p data / @p data_len its data (JSON; need not be
 * NUL-terminated). Appends zero or more client events to @p out. Events after a terminal
 * one are ignored (CM_OK, nothing appended). Returns:
 *  - CM_OK: handled (response.completed/incomplete appends the finish chunk, the usage
 *    chunk when asked, and "data: [DONE]").
 *  - CM_ERR_UPSTREAM: response.failed / error event, or event data that is not a JSON
 *    object: one error event was appended, @p err has the mapped status (e.g. 429, 400,
 *    502 for malformed events), type, code and message; the stream is over.
 *  - CM_ERR_INVAL: NULL @p st / @p out, or @p st not initialised.
 *  - CM_ERR_LIMIT / CM_ERR_NOMEM: @p out is full or memory ran out; what was appended for
 *    this event may be partial; the stream should be abandoned.
 */
int cp_tr_chat_codex_stream_event(struct cp_tr_chat_codex_stream *st, const char *type,
                                  size_t type_len, const char *data, size_t data_len,
                                  struct cm_buf *out, struct cp_tr_err *err);

/**
 * The upstream stream ended. If no terminal event came, appends one error event with
 * CP_TR_CODEX_EARLY_EOF_MSG (never [DONE]) and returns CM_ERR_TIMEOUT with @p err status
 * 408, code "request_timeout": the caller may fail over to another credential if nothing
 * was flushed to the client yet. After a terminal event: CM_OK, nothing appended.
 * CM_ERR_LIMIT / CM_ERR_NOMEM from @p out as above.
 */
int cp_tr_chat_codex_stream_finish(struct cp_tr_chat_codex_stream *st, struct cm_buf *out,
                                   struct cp_tr_err *err);

/**
 * The usage of response.completed, for billing: CM_OK and *@p out, or CM_ERR_NOTFOUND when
 * the upstream has not reported any (yet).
 */
int cp_tr_chat_codex_stream_usage(const struct cp_tr_chat_codex_stream *st,
                                  struct cp_tr_usage *out);

/**
 * Aggregates the whole Codex SSE body @p sse (@p len bytes) into one chat.completion object
 * in *@p out (caller frees with cJSON_Delete()): message content (output_text parts joined),
 * reasoning_content (summary texts joined by a blank line) when any, tool_calls (names
 * restored from @p client_req's tools; @p client_req may be NULL), finish_reason, usage.
 * When response.completed carries an empty output, the items of response.output_item.done
 * events are used, in output_index order. @p id and @p created as for the stream.
 * Returns CM_OK; CM_ERR_UPSTREAM for response.failed / error / malformed events (status in
 * @p err); CM_ERR_TIMEOUT (status 408, CP_TR_CODEX_EARLY_EOF_MSG) when the body ends before
 * response.completed; CM_ERR_LIMIT for an oversized event; CM_ERR_NOMEM. @p usage (may be
 * NULL) gets the usage on CM_OK. Outputs written only on CM_OK.
 */
int cp_tr_chat_codex_aggregate(const char *sse, size_t len, const cJSON *client_req, const char *id,
                               int64_t created, cJSON **out, struct cp_tr_usage *usage,
                               struct cp_tr_err *err);

#endif
