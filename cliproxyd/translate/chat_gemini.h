/* SPDX-License-Identifier: MIT */
/*
 * chat_gemini.h - OpenAI Chat Completions clients on the Gemini upstream (Gemini CLI's
 * Code Assist and gemini-api-key entries; the same GenerateContent shapes).
 *
 * Three pure pieces (spec cliproxyapi.md 3.3, 3.6, 5.1, 5.5, 5.6):
 *  1. cp_tr_chat_gemini_request(): a chat.completions request tree -> a Gemini
 *     GenerateContentRequest body (contents, systemInstruction, tools, toolConfig,
 *     generationConfig) WITHOUT the Gemini CLI envelope; the base model is handed back.
 *  2. struct cp_tr_chat_gemini_stream: fed one Gemini SSE event at a time (a
 *     GenerateContentResponse, raw or wrapped as {"response":{...}} by Gemini CLI), appends
 *     the chat.completion.chunk events ("data: {...}\n\n") the client must get. Gemini has
 *     no terminal event: cp_tr_chat_gemini_stream_finish() at the end of the upstream body
 *     writes the finish chunk, the usage chunk (stream_options.include_usage) and
 *     "data: [DONE]", or the early-end error.
 *  3. cp_tr_chat_gemini_aggregate(): a whole upstream body (SSE, one JSON response or a JSON
 *     array of responses) -> one chat.completion.
 * The provider layer (providers/gemini.h), not this module, adds safetySettings,
 * thoughtSignature and the CLI envelope. No I/O, no clock: ids and timestamps are
 * parameters. Not thread-safe per stream object.
 */
#ifndef CP_TRANSLATE_CHAT_GEMINI_H
#define CP_TRANSLATE_CHAT_GEMINI_H

#include "cm/buf.h"
#include "translate/chat_common.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TR_CHAT_GEMINI_MAX_MESSAGES 4096 /* most entries in "messages" */
#define CP_TR_CHAT_GEMINI_MAX_PARTS 1024    /* most content parts in one message */
#define CP_TR_CHAT_GEMINI_MAX_TOOLS 512     /* most tools, tool calls or stop entries */
#define CP_TR_CHAT_GEMINI_MAX_IMAGES 256    /* most inline images one answer may carry */
#define CP_TR_CHAT_GEMINI_SCHEMA_DEPTH 32   /* most nested schemas in one tool's parameters */

/** The message reported when the upstream body ends before any finishReason. */
#define CP_TR_GEMINI_EARLY_EOF_MSG                                                                 \
    "stream error: stream disconnected before completion: stream closed before finishReason"

/**
 * Translates the chat.completions request @p req (borrowed, unchanged) into a new Gemini
 * GenerateContentRequest body in *@p out (caller frees with cJSON_Delete()) and the model
 * with its "(suffix)" stripped in *@p base_model (caller frees with cm_free()):
 *  - system/developer messages -> "systemInstruction": {"role":"user","parts":[{"text"}]}
 *    (string content or text parts; empty texts skipped).
 *  - user/assistant messages -> "contents": [{"role":"user"|"model","parts":[...]}];
 *    consecutive turns of one role are merged into one. Parts: text (and assistant
 *    refusal) -> {"text"} (empty skipped); image_url data URL -> {"inlineData":
 *    {"mimeType","data"}}; http(s) image URL -> {"fileData":{"mimeType" (from the
 *    extension: png, jpg/jpeg, gif, webp, heic, heif; default image/png),"fileUri"}};
 *    file parts with PDF data (data:application/pdf URL, or raw base64 with a .pdf
 *    filename) -> inlineData application/pdf; input_audio {data, format} -> inlineData
 *    "audio/<format>"; assistant tool_calls -> {"functionCall":{"name","args"}} (args =
 *    the arguments parsed; invalid or non-object -> {}). An assistant message with no
 *    part is skipped; empty user content is refused.
 *  - tool messages -> a user turn with {"functionResponse":{"name","response"}}: name =
 *    the name of the earlier assistant tool call with that tool_call_id (unknown id ->
 *    400 naming messages[i].tool_call_id), response = the content if it parses as a JSON
 *    object, else {"content": <text>}. Consecutive tool messages share one user turn.
 *  - tools (function tools) -> [{"functionDeclarations":[{name, description?,
 *    parameters?}]}]; entries that are {"googleSearch"|"codeExecution"|"urlContext": {..}}
 *    pass through as their own tools[] entry. "parameters" (and json_schema.schema) are
 *    cleaned recursively (schema positions only: properties' values, items, prefixItems,
 *    anyOf/oneOf/allOf, not) of the keywords Gemini rejects: $schema, $id, $comment,
 *    $defs, definitions, additionalProperties, unevaluatedProperties, patternProperties,
 *    strict. A "$ref" is refused (400 naming tools[i].function.parameters): Gemini cannot
 *    resolve references. Nesting deeper than CP_TR_CHAT_GEMINI_SCHEMA_DEPTH -> CM_ERR_LIMIT.
 *  - tool_choice (only with function declarations): auto -> toolConfig.
 *    functionCallingConfig {"mode":"AUTO"}, none -> NONE, required -> ANY, {"type":
 *    "function","function":{"name"}} -> {"mode":"ANY","allowedFunctionNames":[name]}.
 *  - generationConfig: temperature; top_p -> topP; top_k -> topK; n (1 only) ->
 *    candidateCount; max_completion_tokens, else max_tokens -> maxOutputTokens; stop
 *    (string or array) -> stopSequences; seed; presence_penalty -> presencePenalty;
 *    frequency_penalty -> frequencyPenalty; response_format json_object ->
 *    responseMimeType "application/json"; json_schema -> responseMimeType and
 *    responseSchema (json_schema.schema cleaned as above); text -> nothing;
 *    modalities ["text","image"] -> responseModalities ["TEXT","IMAGE"] (only when
 *    "image" is asked).
 *  - thinking (spec 5.1): the model suffix wins over reasoning_effort; none 0, minimal 512,
 *    low 1024, medium 8192, high 24576, xhigh 32768, max 128000, auto / -1 -> -1, an
 *    integer suffix = itself -> generationConfig.thinkingConfig {"thinkingBudget": b,
 *    "includeThoughts": true} (budget 0: {"thinkingBudget":0} only). reasoning_effort
 *    takes the level words and "auto". Neither: no thinkingConfig.
 *  - dropped: stream, stream_options, user, store, metadata, logit_bias, service_tier,
 *    parallel_tool_calls, top_logprobs, ...
 * Refused (CM_ERR_INVAL, status 400, the field named in @p err): n > 1, logprobs true,
 * audio output ("audio", or "audio" in modalities), the legacy functions API, unknown
 * roles, part types, modalities or response_format types, malformed
 * messages/tools/tool_choice/stop/sampling values, a conversation with only system
 * messages, an unknown suffix or reasoning_effort.
 * Returns CM_OK; CM_ERR_INVAL (400); CM_ERR_LIMIT (400) past the caps; CM_ERR_NOMEM (500).
 * *@p out and *@p base_model are written only on CM_OK; @p err (may be NULL) only on
 * failure. NULL @p out or @p base_model: CM_ERR_INVAL (500 "bad arguments").
 */
int cp_tr_chat_gemini_request(const cJSON *req, cJSON **out, char **base_model,
                              struct cp_tr_err *err);

/**
 * The OpenAI view of a Gemini "usageMetadata" object @p um (borrowed): input =
 * promptTokenCount, output = candidatesTokenCount + thoughtsTokenCount, reasoning =
 * thoughtsTokenCount, cached = cachedContentTokenCount, total = totalTokenCount (input +
 * output when absent or 0). Missing counts are 0. CM_OK, or CM_ERR_NOTFOUND when @p um is
 * not an object (*@p u untouched).
 */
int cp_tr_gemini_usage_metadata(const cJSON *um, struct cp_tr_usage *u);

/**
 * Streaming state for one response. Caller-owned; init/cleanup pair; fields are private.
 */
struct cp_tr_chat_gemini_stream {
    struct cp_tr_chat_chunker _ck; /* chunk id/model/created, include_usage, role sent */
    bool _done;                    /* finished or failed: ignore the rest */
    bool _content;                 /* a text/thought/tool/image delta went out */
    char *_finish;                 /* the last finishReason (or blockReason) seen (owned) */
    bool _blocked;                 /* _finish is a promptFeedback.blockReason */
    bool _usage_seen;              /* some usageMetadata was seen */
    struct cp_tr_usage _usage;     /* from the last usageMetadata */
    size_t _ncalls;                /* function calls sent (next tool_calls index) */
    size_t _nimages;               /* inline images sent (next images index) */
};

/**
 * Prepares @p st for one response to the client request @p client_req (borrowed for the
 * call; read: "model" as the chunk model until the upstream names its modelVersion,
 * stream_options.include_usage). @p id is the chunk id ("chatcmpl-..."; also the seed of
 * tool call ids), @p created the chunk timestamp. CM_OK, CM_ERR_INVAL (NULL arguments) or
 * CM_ERR_NOMEM; on error @p st needs no cleanup. @p err may be NULL.
 */
int cp_tr_chat_gemini_stream_init(struct cp_tr_chat_gemini_stream *st, const cJSON *client_req,
                                  const char *id, int64_t created, struct cp_tr_err *err);

/** Frees what @p st owns (not the struct). Safe on a zeroed struct and twice. */
void cp_tr_chat_gemini_stream_cleanup(struct cp_tr_chat_gemini_stream *st);

/**
 * Handles one upstream SSE event: @p type / @p type_len is the "event:" name (ignored; may
 * be NULL), @p data / @p data_len its data (need not be NUL-terminated): a
 * GenerateContentResponse, raw or as {"response":{...}} (unwrapped). For
 * candidates[0].content.parts, in order:
 *  - {"text", "thought": true} -> delta.reasoning_content; {"text"} -> delta.content
 *    (empty texts skipped). The first chunk carries delta.role "assistant".
 *  - {"functionCall":{"name","args"?,"id"?}} -> one complete tool_calls entry {index, id
 *    (the part's id, else "call_<chunk id>_<index>"), type "function", function {name,
 *    arguments: args printed, "{}" when absent}}.
 *  - {"inlineData":{"mimeType","data"}} -> delta.images [{index, type "image_url",
 *    image_url {url: "data:<mimeType>;base64,<data>"}}].
 *  - other parts (thoughtSignature only, executableCode, ...) -> nothing.
 * modelVersion becomes the chunk model; candidates[0].finishReason and
 * promptFeedback.blockReason are remembered, and so is usageMetadata (the last one
 * wins: Gemini's counts are cumulative). Events after a failure: ignored (CM_OK).
 * Returns:
 *  - CM_OK: handled.
 *  - CM_ERR_UPSTREAM: an event carrying {"error":{code, message, status}} (raw or
 *    wrapped), or data that is not a JSON object: one "data: {"error":{...}}" event was
 *    appended and @p err has the status (error.code when 400..599, else from error.status:
 *    INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
 *    RESOURCE_EXHAUSTED 429, INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, else
 *    502), type cp_tr_type_for_status(), code = error.status, the upstream's message;
 *    502 "bad_upstream_event" for malformed data. The stream is over.
 *  - CM_ERR_INVAL: NULL @p st / @p out, or @p st not initialised.
 *  - CM_ERR_LIMIT / CM_ERR_NOMEM: @p out is full, too many calls or images, or memory ran
 *    out (@p err: 500); the stream should be abandoned.
 */
int cp_tr_chat_gemini_stream_event(struct cp_tr_chat_gemini_stream *st, const char *type,
                                   size_t type_len, const char *data, size_t data_len,
                                   struct cm_buf *out, struct cp_tr_err *err);

/**
 * The upstream body ended. After a finishReason (or blockReason): appends the finish chunk
 * (any function call -> "tool_calls"; STOP -> "stop"; MAX_TOKENS -> "length"; SAFETY,
 * RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY and a blocked prompt ->
 * "content_filter"; anything else, MALFORMED_FUNCTION_CALL included -> "stop"), the usage
 * chunk when the client asked stream_options.include_usage, and "data: [DONE]"; CM_OK.
 * Without one: one error event with CP_TR_GEMINI_EARLY_EOF_MSG (no [DONE]) and
 * CM_ERR_TIMEOUT with @p err status 408, type "timeout_error", code "request_timeout".
 * After a failure or a second call: CM_OK, nothing appended. CM_ERR_LIMIT / CM_ERR_NOMEM
 * from @p out; CM_ERR_INVAL for NULL arguments.
 */
int cp_tr_chat_gemini_stream_finish(struct cp_tr_chat_gemini_stream *st, struct cm_buf *out,
                                    struct cp_tr_err *err);

/**
 * The usage reported so far (cp_tr_gemini_usage_metadata() of the last usageMetadata):
 * CM_OK and *@p out once one was seen, else CM_ERR_NOTFOUND.
 */
int cp_tr_chat_gemini_stream_usage(const struct cp_tr_chat_gemini_stream *st,
                                   struct cp_tr_usage *out);

/**
 * True once a text, thought, tool-call or image delta was appended: until then the relay
 * may hold the bytes back and fail over.
 */
bool cp_tr_chat_gemini_stream_has_content(const struct cp_tr_chat_gemini_stream *st);

/**
 * Aggregates a whole upstream body @p body (@p len bytes) into one chat.completion in
 * *@p out (caller frees with cJSON_Delete()). The body is an SSE stream of Gemini events,
 * one JSON GenerateContentResponse, or a JSON array of them (what Google returns for
 * streamGenerateContent without alt=sse); each raw or CLI-wrapped. Result: {id, object
 * "chat.completion", created, model (the last modelVersion, else @p client_req's model),
 * choices [{index 0, message {role "assistant", content (texts joined; null when none),
 * reasoning_content? (thought texts joined), tool_calls? (ids as for the stream),
 * images? (as for the stream, without "index")}, finish_reason (as for the stream)}],
 * usage}. @p client_req may be NULL; @p id / @p created as for the stream.
 * Returns CM_OK; CM_ERR_UPSTREAM for an error object or malformed data (status in @p err,
 * as for the stream); CM_ERR_TIMEOUT (408, CP_TR_GEMINI_EARLY_EOF_MSG) when no
 * finishReason / blockReason came (an empty body included); CM_ERR_LIMIT (502) for an
 * oversized event or too many images; CM_ERR_INVAL (NULL arguments); CM_ERR_NOMEM.
 * @p u (may be NULL) gets the usage (zeros when none was reported) on CM_OK. Outputs are
 * written only on CM_OK; @p err (may be NULL) only on failure.
 */
int cp_tr_chat_gemini_aggregate(const char *body, size_t len, const cJSON *client_req,
                                const char *id, int64_t created, cJSON **out, struct cp_tr_usage *u,
                                struct cp_tr_err *err);

#endif
