/* SPDX-License-Identifier: MIT */
/*
 * gemini_chat.h - Gemini API clients (generateContent / streamGenerateContent, spec
 * cliproxyapi.md 1.1) over the OpenAI Chat pivot: the inbound adapter that turns a
 * GenerateContentRequest into a chat.completions request, and the chat.completion.chunk
 * stream (or the final chat.completion) back into GenerateContentResponse objects.
 *
 * Three pure pieces:
 *  1. cp_tr_gemini_chat_request(): GenerateContentRequest (raw, or wrapped as Gemini CLI
 *     sends it) -> chat.completions request tree.
 *  2. struct cp_tr_gemini_chat_stream: fed one chat.completion.chunk at a time, appends
 *     "data: <GenerateContentResponse>\n\n" events (what @google/genai reads from
 *     streamGenerateContent?alt=sse); the closing event at stream_end; a mid-stream failure
 *     becomes "event: error\ndata: {"error":{code,message,status}}\n\n" (spec 5.6).
 *  3. cp_tr_gemini_chat_response(): one chat.completion -> one GenerateContentResponse.
 * Plus the Google error body the relay uses for Gemini-route errors.
 * No I/O, no clock: ids are parameters. Not thread-safe per stream object.
 */
#ifndef CP_TRANSLATE_GEMINI_CHAT_H
#define CP_TRANSLATE_GEMINI_CHAT_H

#include "cm/buf.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TR_GEMINI_CHAT_MAX_CONTENTS 4096    /* most entries in "contents" */
#define CP_TR_GEMINI_CHAT_MAX_PARTS 1024       /* most parts in one content */
#define CP_TR_GEMINI_CHAT_MAX_TOOLS 512        /* most function declarations, over all tools[] */
#define CP_TR_GEMINI_CHAT_MAX_CALLS 4096       /* most functionCall parts in one conversation */
#define CP_TR_GEMINI_CHAT_MAX_STREAM_CALLS 512 /* most tool calls one answer may carry */
#define CP_TR_GEMINI_CHAT_MAX_ARGS (4u << 20)  /* most bytes of one streamed call's arguments */
#define CP_TR_GEMINI_CHAT_SCHEMA_DEPTH 64      /* deepest schema nesting converted */

/**
 * Translates the GenerateContentRequest @p req (borrowed, unchanged) into a new
 * chat.completions request tree in *@p chat (caller frees with cJSON_Delete()).
 * @p model (from the URL) is copied as given, suffix included, into "model"; "stream" is
 * @p stream. The body may be raw or wrapped {"model","project","request":{...}} (then only
 * "request" is read). camelCase and snake_case member names are both accepted (as Google's
 * JSON parser does); errors name the camelCase path.
 *  - systemInstruction: its parts' texts joined with "\n" -> a leading system message.
 *  - contents[] {role "user" | "model" | "function" (as user) | absent (user), parts[]}:
 *    user turns: each functionResponse {name, response, id?} -> a "tool" message (ahead of
 *    the rest of the turn), tool_call_id = id if given, else the id of the earliest
 *    unanswered functionCall of that name (none: 400), content = the JSON text of
 *    "response" ("{}" when absent); text parts -> text parts; inlineData image/(any) ->
 *    image_url with a data: URL; inlineData application/pdf -> a "file" part with
 *    file_data = the data: URL; fileData with an image mimeType -> image_url with the URI.
 *    A user message with one text part has string content, else an array of parts.
 *    model turns: text parts (thought: true ones dropped as reasoning history) joined ->
 *    assistant "content" (null when none); functionCall {name, args, id?} -> tool_calls
 *    with arguments = the JSON text of args ("{}" when absent) and id = the part's id, else
 *    "call_<k>", k = 1, 2, ... counting every functionCall of the conversation in order.
 *    A model turn with neither text nor calls is skipped.
 *  - tools[].functionDeclarations[] {name, description?, parameters | parametersJsonSchema}
 *    -> {"type":"function","function":{name, description?, parameters?}}; the OpenAPI
 *    "parameters" schema has its "type" words lower-cased ("OBJECT" -> "object") through
 *    properties / items / anyOf; parametersJsonSchema is copied as is.
 *  - toolConfig.functionCallingConfig.mode: AUTO -> tool_choice "auto", NONE -> "none",
 *    ANY -> "required", or with allowedFunctionNames of one name {"type":"function",
 *    "function":{"name"}}, or of several names "required" with tools cut to those names.
 *  - generationConfig: temperature, topP -> top_p, maxOutputTokens -> max_tokens,
 *    stopSequences -> stop, presencePenalty / frequencyPenalty / seed -> presence_penalty /
 *    frequency_penalty / seed; responseMimeType "application/json" -> response_format
 *    {"type":"json_object"}, or with responseSchema (lower-cased as above) /
 *    responseJsonSchema {"type":"json_schema","json_schema":{"name":"response","schema"}};
 *    thinkingConfig: thinkingLevel (minimal|low -> "low", medium, high; any case) else
 *    thinkingBudget (-1 -> "medium", 0 -> nothing, N -> spec 5.1 budget->level clamped to
 *    low|medium|high) -> reasoning_effort.
 *  - ignored hints: topK, thinkingConfig.includeThoughts, mediaResolution,
 *    responseModalities ["TEXT"], safetySettings, labels, toolConfig.retrievalConfig, the
 *    wrapper's model/project, and members this module does not know.
 * Refused (CM_ERR_INVAL, 400 "invalid_request_error", err->field = the path, err->msg
 * "<path>: ..."): empty contents, another role, parts other than the above
 * (executableCode, codeExecutionResult, videoMetadata, ...), media in a model turn,
 * other mime types, tools other than functionDeclarations (googleSearch,
 * googleSearchRetrieval, codeExecution, urlContext, ...), candidateCount > 1,
 * responseLogprobs / logprobs, speechConfig, imageConfig, responseModalities other than
 * TEXT, another responseMimeType, cachedContent, an unknown calling mode or allowed name.
 * CM_ERR_LIMIT (400) past the caps above; CM_ERR_NOMEM (500).
 * @p err may be NULL; written only on failure; *@p chat only on success.
 */
int cp_tr_gemini_chat_request(const cJSON *req, const char *model, bool stream, cJSON **chat,
                              struct cp_tr_err *err);

struct cp_tr_gemini_chat_stream; /* opaque */

/**
 * New stream state in *@p out (free with cp_tr_gemini_chat_stream_free()) for the client
 * request @p req (borrowed for the call; its wrapper "model", when present, is the
 * modelVersion until a chunk names one). @p id (copied) is every event's "responseId";
 * @p created is unused (GenerateContentResponse has no timestamp). CM_OK, CM_ERR_INVAL
 * (NULL @p out or @p id), CM_ERR_NOMEM.
 */
int cp_tr_gemini_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                 struct cp_tr_gemini_chat_stream **out);

/**
 * One chat.completion.chunk @p chunk (borrowed) -> zero or more events appended to @p out:
 * reasoning_content -> a part {"text","thought":true}, content -> a part {"text"} (one
 * event per chunk, thought first; empty strings give nothing); tool_calls fragments are
 * gathered per index and emitted whole ({"functionCall":{"name","args":<parsed arguments,
 * {} when not a JSON object>,"id"}} parts, one event) when a chunk carries a finish_reason
 * or at stream_end; finish_reason and usage are remembered for stream_end. Each event is
 * {"candidates":[{"content":{"role":"model","parts":[...]},"index":0}],"modelVersion"
 * (the chunk's "model"; omitted when none is known),"responseId"}. Chunks that are not
 * objects or lack a choices array (usage-only chunks still count) are ignored; after
 * stream_end / stream_fail every call is ignored. CM_OK; CM_ERR_LIMIT past
 * CP_TR_GEMINI_CHAT_MAX_STREAM_CALLS calls or CP_TR_GEMINI_CHAT_MAX_ARGS bytes (502 in
 * @p err), CM_ERR_NOMEM (500), or @p out's CM_ERR_LIMIT. @p err may be NULL.
 */
int cp_tr_gemini_chat_stream_chunk(struct cp_tr_gemini_chat_stream *st, const cJSON *chunk,
                                   struct cm_buf *out, struct cp_tr_err *err);

/**
 * The pivot stream ended ([DONE]): appends the pending functionCall event, then the final
 * event {"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason",
 * "index":0}],"usageMetadata"?,"modelVersion"?,"responseId"}: finishReason stop / tool_calls
 * / none seen -> "STOP", length -> "MAX_TOKENS", content_filter -> "SAFETY", other ->
 * "OTHER"; usageMetadata (only when a usage was seen) {promptTokenCount,
 * candidatesTokenCount (completion minus reasoning tokens), totalTokenCount,
 * thoughtsTokenCount (when > 0), cachedContentTokenCount (when > 0)}. A second call, or a
 * call after stream_fail, appends nothing. CM_OK, CM_ERR_NOMEM, @p out's CM_ERR_LIMIT.
 */
int cp_tr_gemini_chat_stream_end(struct cp_tr_gemini_chat_stream *st, struct cm_buf *out);

/**
 * The upstream failed after the stream began: appends "event: error\ndata: {"error":
 * {"code":e->status,"message":e->msg,"status":cp_tr_gemini_status_name(e->status)}}\n\n".
 * Ignored after stream_end / stream_fail. CM_OK, CM_ERR_INVAL (NULL @p e), CM_ERR_NOMEM,
 * @p out's CM_ERR_LIMIT.
 */
int cp_tr_gemini_chat_stream_fail(struct cp_tr_gemini_chat_stream *st, const struct cp_tr_err *e,
                                  struct cm_buf *out);

/** True once a chunk carried real content (non-empty text or reasoning, or a tool call). */
bool cp_tr_gemini_chat_stream_has_content(const struct cp_tr_gemini_chat_stream *st);

/** Frees @p st (NULL ok). */
void cp_tr_gemini_chat_stream_free(struct cp_tr_gemini_chat_stream *st);

/**
 * Non-stream: the chat.completion @p completion (borrowed) -> a new GenerateContentResponse
 * in *@p out (caller frees with cJSON_Delete()): {"candidates":[{"content":{"role":"model",
 * "parts":[{"text":reasoning,"thought":true}?, {"text":content}?, {"functionCall":{"name",
 * "args","id"}}...] (a lone {"text":""} when all are absent)},"finishReason" (as in
 * stream_end),"index":0}],"usageMetadata" (as in stream_end, when "usage" is present),
 * "modelVersion" (completion "model", else @p req's wrapper "model"; omitted when neither),
 * "responseId": @p id}. @p created is unused. CM_OK; CM_ERR_UPSTREAM (502 in @p err) when
 * @p completion is not an object with choices[0].message; CM_ERR_INVAL for NULL arguments;
 * CM_ERR_NOMEM (500). @p err may be NULL.
 */
int cp_tr_gemini_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                               int64_t created, cJSON **out, struct cp_tr_err *err);

/**
 * The Google error body {"error":{"code":@p status,"message":@p msg (NULL = ""),"status":
 * cp_tr_gemini_status_name(@p status)}} as a new string in *@p out (caller frees with
 * cm_free()), its length in *@p len (may be NULL). CM_OK, CM_ERR_INVAL (NULL @p out),
 * CM_ERR_NOMEM.
 */
int cp_tr_gemini_error_body(unsigned status, const char *msg, char **out, size_t *len);

/**
 * The google.rpc status name of an HTTP @p status (static): 400 INVALID_ARGUMENT,
 * 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 429 RESOURCE_EXHAUSTED,
 * 408 / 504 DEADLINE_EXCEEDED, 503 UNAVAILABLE, anything else INTERNAL.
 */
const char *cp_tr_gemini_status_name(unsigned status);

#endif
