/* SPDX-License-Identifier: MIT */
/*
 * chat_common.h - the OpenAI Chat Completions side shared by every chat translator
 * (chat_codex.c, chat_claude.c): client errors, request checks that do not depend on the
 * upstream, reading upstream SSE event data, writing chat.completion.chunk events (spec
 * cliproxyapi.md 5.3: chunk shape, finish chunk, optional usage chunk, "data: [DONE]", the
 * mid-stream "data: {"error":{...}}" event) and building one chat.completion object.
 * Pure: no I/O, no clock. Nothing here knows an upstream format.
 */
#ifndef CP_TRANSLATE_CHAT_COMMON_H
#define CP_TRANSLATE_CHAT_COMMON_H

#include "cm/buf.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_json_err;
struct cm_sse_event;

/* ---- errors ---- */

/**
 * Fills @p e (no-op if NULL): clears it, then rc, status, field, type, code (NULL = "") and
 * msg = printf(@p fmt, ...), each cut to its array.
 */
void cp_tr_chat_err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field,
                        const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/**
 * A request-side failure found through cm_json (@p je) into @p e: CM_ERR_NOMEM -> 500
 * "server_error"; anything else -> 400 "invalid_request_error" naming je->field, with
 * CM_ERR_NOTFOUND (a missing required field) reported as CM_ERR_INVAL. Returns the rc
 * stored in @p e (the one the caller should return).
 */
int cp_tr_chat_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je);

/** OpenAI error "type" for an HTTP @p status (400 invalid_request_error, ... else server_error). */
const char *cp_tr_chat_type_for_status(unsigned status);

/** @p e = 502 "server_error" / "bad_upstream_event": "upstream sent a malformed event: <what>". */
void cp_tr_chat_malformed_error(struct cp_tr_err *e, const char *what);

/** @p e = the upstream closed early: CM_ERR_TIMEOUT, 408, "timeout_error", "request_timeout", @p
 * msg. */
void cp_tr_chat_early_eof_error(struct cp_tr_err *e, const char *msg);

/* ---- request checks ---- */

/**
 * Refuses the chat fields whose meaning no non-OpenAI upstream can express unless they hold
 * their neutral value: n != 1, logprobs true, audio output, modalities other than "text",
 * the legacy functions / function_call. @p upstream names the upstream in the n message
 * ("must be 1 (Codex returns one choice)"). CM_OK or CM_ERR_INVAL with @p je naming the field.
 */
int cp_tr_chat_check_unexpressible(const cJSON *req, const char *upstream, struct cm_json_err *je);

/**
 * Appends the text of a message content to @p b: a string, an array of {"type":"text"}
 * parts (joined without separator), or nothing for absent/null. Any other part type or
 * shape is CM_ERR_INVAL naming "content" / "content[i].type"; CM_ERR_NOMEM, CM_ERR_LIMIT
 * (from @p b, reported as CM_ERR_NOMEM).
 */
int cp_tr_chat_content_text(const cJSON *content, struct cm_buf *b, struct cm_json_err *je);

/**
 * Reads an "image_url" part @p p: "image_url" is a string or {"url", "detail"?}. *@p url and
 * *@p detail (NULL when absent) are borrowed from @p p. CM_OK or CM_ERR_INVAL / CM_ERR_NOTFOUND
 * naming "image_url[.url|.detail]".
 */
int cp_tr_chat_image_url(const cJSON *p, const char **url, const char **detail,
                         struct cm_json_err *je);

/**
 * Reads a "file" part @p p: "file" is an object with optional strings file_data, file_id,
 * filename (borrowed, NULL when absent); one of file_data / file_id is required.
 * CM_OK or CM_ERR_INVAL / CM_ERR_NOTFOUND naming "file[...]".
 */
int cp_tr_chat_file_part(const cJSON *p, const char **data, const char **file_id,
                         const char **filename, struct cm_json_err *je);

/* ---- upstream events ---- */

/**
 * Parses an upstream SSE event: @p data (@p data_len bytes, any nesting up to 128) must be a
 * JSON object, else @p err = cp_tr_chat_malformed_error() and CM_ERR_UPSTREAM. The event's
 * type is @p type / @p type_len unless that is empty or "message", then data's "type"
 * member ("" when none). On CM_OK *@p ev is a new tree (cJSON_Delete()) and *@p t / *@p tlen
 * borrow from @p type or from *@p ev. CM_ERR_NOMEM (500 in @p err).
 */
int cp_tr_chat_parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                           cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err);

/**
 * Feeds the whole SSE body @p sse (@p len bytes) through a cm_sse parser calling @p fn (@p ud)
 * per event, then ends it without dispatching an unterminated last event (a cut stream)
 * unless the callback stopped the feed. Returns the feed's code: CM_OK, the callback's
 * non-zero value, CM_ERR_LIMIT (an event over CM_SSE_MAX_EVENT_DEFAULT) or CM_ERR_NOMEM.
 */
int cp_tr_chat_feed_sse(const char *sse, size_t len,
                        int (*fn)(void *ud, const struct cm_sse_event *ev), void *ud);

/* ---- writing chat.completion.chunk events ---- */

/**
 * What every chunk of one response shares. Caller-owned (embed it); init/cleanup pair;
 * fields are private.
 */
struct cp_tr_chat_chunker {
    char *_id;           /* chunk "id" (owned) */
    char *_model;        /* chunk "model" (owned) */
    int64_t _created;    /* chunk "created" */
    bool _include_usage; /* the client asked stream_options.include_usage */
    bool _role_sent;     /* a chunk with choices went out (it carried delta.role) */
};

/**
 * Prepares @p ck for a response to @p client_req (borrowed for the call; reads "model" as
 * the first chunk model and stream_options.include_usage). @p id is copied.
 * CM_OK, CM_ERR_INVAL (NULL @p ck / @p id), CM_ERR_NOMEM; on error nothing needs cleanup.
 */
int cp_tr_chat_chunker_init(struct cp_tr_chat_chunker *ck, const cJSON *client_req, const char *id,
                            int64_t created);

/** Frees what @p ck owns. Safe on a zeroed struct and twice. */
void cp_tr_chat_chunker_cleanup(struct cp_tr_chat_chunker *ck);

/** True once cp_tr_chat_chunker_init() succeeded (and until cleanup). */
bool cp_tr_chat_chunker_ready(const struct cp_tr_chat_chunker *ck);

/** Uses @p model (copied; NULL or "" keeps the current one) for later chunks. CM_ERR_NOMEM. */
int cp_tr_chat_chunker_set_model(struct cp_tr_chat_chunker *ck, const char *model);

/** Uses @p created for later chunks. */
void cp_tr_chat_chunker_set_created(struct cp_tr_chat_chunker *ck, int64_t created);

/**
 * Appends "data: {chunk}\n\n" whose choices[0].delta is {<key>: @p val} (plus "role":
 * "assistant" on the first chunk with choices) and finish_reason null. @p key NULL gives a
 * delta with only the role (and "content": "" so clients see a text start).
 * CM_OK, CM_ERR_NOMEM, CM_ERR_LIMIT (from @p out).
 */
int cp_tr_chat_emit_delta(struct cp_tr_chat_chunker *ck, const char *key, const char *val,
                          struct cm_buf *out);

/**
 * Appends the role-only opener (delta {"role":"assistant","content":""}) unless a chunk with
 * choices already went out. Errors as cp_tr_chat_emit_delta().
 */
int cp_tr_chat_emit_opener(struct cp_tr_chat_chunker *ck, struct cm_buf *out);

/**
 * Appends a chunk with one tool_calls entry {index, id?, type?, function:{name?,
 * arguments}}: @p id and @p name (NULL to omit; "type":"function" goes with @p id) for the
 * first chunk of a call, @p args (NULL = "") for each arguments piece. Errors as above.
 */
int cp_tr_chat_emit_tool_call(struct cp_tr_chat_chunker *ck, size_t index, const char *id,
                              const char *name, const char *args, struct cm_buf *out);

/**
 * Ends a successful response: the chunk with an empty delta and @p finish_reason, then,
 * when the client asked for include_usage, a chunk with "choices": [] and "usage" (@p u;
 * NULL gives zeros), then "data: [DONE]". Errors as above.
 */
int cp_tr_chat_emit_finish(struct cp_tr_chat_chunker *ck, const char *finish_reason,
                           const struct cp_tr_usage *u, struct cm_buf *out);

/** Appends the mid-stream error event "data: {"error":{message,type,code|null}}" for @p e. */
int cp_tr_chat_emit_error(const struct cp_tr_err *e, struct cm_buf *out);

/**
 * Ends a stream with the failure @p e: appends the error event, copies @p e into @p err
 * (may be NULL) and returns e->rc. If the event cannot be appended, returns that code
 * (CM_ERR_NOMEM / CM_ERR_LIMIT) with @p err set to a 500 for it.
 */
int cp_tr_chat_fail(const struct cp_tr_err *e, struct cm_buf *out, struct cp_tr_err *err);

/* ---- chat.completion objects ---- */

/**
 * Sets @p parent."usage" to the OpenAI usage object of @p u: prompt_tokens,
 * completion_tokens, total_tokens, prompt_tokens_details.cached_tokens,
 * completion_tokens_details.reasoning_tokens. CM_ERR_NOMEM.
 */
int cp_tr_chat_put_usage(cJSON *parent, const struct cp_tr_usage *u);

/** A new {"id","type":"function","function":{"name","arguments"}} in *@p out. CM_ERR_NOMEM. */
int cp_tr_chat_tool_call_new(const char *id, const char *name, const char *args, cJSON **out);

/** The assistant answer gathered by a translator, for cp_tr_chat_completion_new(). */
struct cp_tr_chat_answer {
    const char *text; /* message content (@p text_len bytes); NULL -> "content": null */
    size_t text_len;
    const char *reasoning; /* reasoning_content, omitted when NULL or empty */
    size_t reasoning_len;
    cJSON *tool_calls;         /* array of cp_tr_chat_tool_call_new() objects; borrowed;
                                  omitted when NULL or empty */
    const char *finish_reason; /* "stop", "length", "tool_calls", ... */
    struct cp_tr_usage usage;
};

/**
 * Builds {"id","object":"chat.completion","created","model","choices":[{"index":0,
 * "message":{"role":"assistant","content","reasoning_content"?,"tool_calls"?},
 * "finish_reason"}],"usage"} into *@p out (caller frees with cJSON_Delete()).
 * @p a->tool_calls is copied, the caller keeps it. CM_ERR_NOMEM, CM_ERR_INVAL (embedded NUL).
 */
int cp_tr_chat_completion_new(const char *id, const char *model, int64_t created,
                              const struct cp_tr_chat_answer *a, cJSON **out);

#endif
