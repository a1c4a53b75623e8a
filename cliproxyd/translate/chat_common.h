/* SPDX-License-Identifier: MIT */
/*
 * chat_common.h - the OpenAI Chat Completions side shared by every chat translator
 * (chat_codex.c, chat_claude.c): reading the parts of a chat request that do not depend on
 * the upstream (checks, message content, tool calls, function tools), writing
 * chat.completion.chunk events (spec cliproxyapi.md 5.3: chunk shape, finish chunk,
 * optional usage chunk, "data: [DONE]", the mid-stream "data: {"error":{...}}" event) and
 * building one chat.completion object. Pure: no I/O, no clock. Nothing here knows an
 * upstream format; the format-neutral helpers are in tr_common.h.
 */
#ifndef CP_TRANSLATE_CHAT_COMMON_H
#define CP_TRANSLATE_CHAT_COMMON_H

#include "cm/buf.h"
#include "translate/tr_common.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_json_err;

/* ---- reading a chat request ---- */

/**
 * Refuses the chat fields whose meaning no non-OpenAI upstream can express unless they hold
 * their neutral value: n != 1, logprobs true, audio output, modalities other than "text",
 * the legacy functions / function_call. @p upstream names the upstream in the n message
 * ("must be 1 (Codex returns one choice)"). CM_OK or CM_ERR_INVAL with @p je naming the field.
 */
int cp_tr_chat_check_unexpressible(const cJSON *req, const char *upstream, struct cm_json_err *je);

/**
 * Reads a "tool" role message @p m: *@p call_id = its tool_call_id (borrowed), then the
 * text of its content appended to @p b: a string, an array of {"type":"text"} parts
 * (joined without separator), or nothing for absent/null. CM_ERR_NOTFOUND / CM_ERR_INVAL
 * naming "tool_call_id", "content" or "content[i].type" (any other part type or shape);
 * CM_ERR_NOMEM (also for CM_ERR_LIMIT from @p b).
 */
int cp_tr_chat_tool_message(const cJSON *m, const char **call_id, struct cm_buf *b,
                            struct cm_json_err *je);

/** One content part of a chat message, as cp_tr_chat_content() read it (all borrowed). */
struct cp_tr_chat_part {
    const char *type;     /* "text", "refusal", "image_url" or "file" */
    const char *text;     /* "text": its text; "refusal": its refusal */
    const char *url;      /* "image_url": the URL */
    const char *detail;   /* "image_url": image_url.detail, or NULL */
    const char *data;     /* "file": file.file_data, or NULL */
    const char *file_id;  /* "file": file.file_id, or NULL (data or file_id is set) */
    const char *filename; /* "file": file.filename, or NULL */
};

/** What cp_tr_chat_content() hands a translator (@p ud is the caller's). */
struct cp_tr_chat_content_ops {
    int (*text)(void *ud, const char *s); /* the content is the string @p s */
    int (*part)(void *ud, const struct cp_tr_chat_part *p, struct cm_json_err *je);
};

/**
 * Walks the "content" @p content of a message of role @p role: absent or null is CM_OK
 * when @p optional, else CM_ERR_INVAL ("content" "is required"); a string goes to
 * ops->text; an array (at most @p max parts, else CM_ERR_LIMIT) has each part read and
 * handed to ops->part in order, errors scoped "content[i]"; anything else is CM_ERR_INVAL.
 * Parts: "text" {text}; "refusal" {refusal} for role "assistant"; "image_url" (a string or
 * {url, detail?}) and "file" ({file_data?, file_id?, filename?}, file_data or file_id
 * required) for role "user"; any other is CM_ERR_INVAL naming "type". Callback codes are
 * returned (a part's scoped too).
 */
int cp_tr_chat_content(const cJSON *content, const char *role, bool optional, int max,
                       const struct cp_tr_chat_content_ops *ops, void *ud, struct cm_json_err *je);

/**
 * Reads one content part @p p of a message of role @p role into *@p out (strings borrowed
 * from @p p) by the rules of cp_tr_chat_content(), for translators that walk a content
 * array themselves; errors are not scoped. CM_OK, CM_ERR_INVAL / CM_ERR_NOTFOUND naming
 * the field ("type" for a part type the role may not send).
 */
int cp_tr_chat_part_read(const cJSON *p, const char *role, struct cp_tr_chat_part *out,
                         struct cm_json_err *je);

/**
 * Walks an assistant message's "tool_calls" @p calls, an array of at most @p max entries
 * (else CM_ERR_INVAL / CM_ERR_LIMIT naming "tool_calls"): each {id, type? ("function"
 * only), function: {name, arguments? (default "")}} is read (errors scoped "tool_calls[i]")
 * and handed to @p fn (@p ud; strings borrowed), whose non-zero code is returned as is.
 */
int cp_tr_chat_tool_calls(const cJSON *calls, int max,
                          int (*fn)(void *ud, const char *id, const char *name, const char *args),
                          void *ud, struct cm_json_err *je);

/**
 * Reads the "function" object of a tools[] entry @p t: *@p name (must not be empty:
 * "function.name"), *@p desc and *@p params (NULL when absent) and, when @p strict is not
 * NULL, "strict" (default false). All borrowed. CM_OK or CM_ERR_INVAL / CM_ERR_NOTFOUND
 * naming the field ("function", "function.<member>").
 */
int cp_tr_chat_function_tool(const cJSON *t, const char **name, const char **desc, cJSON **params,
                             bool *strict, struct cm_json_err *je);

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
 * Appends a chunk whose choices[0].delta is {<key>: *@p val} (plus "role" on the first
 * chunk with choices), for delta members that are not strings (e.g. "images"). Takes
 * ownership of *@p val (also on failure; *@p val is set to NULL). Errors as above.
 */
int cp_tr_chat_emit_delta_item(struct cp_tr_chat_chunker *ck, const char *key, cJSON **val,
                               struct cm_buf *out);

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
 * The assistant answer a translator gathers for one chat.completion. Caller-owned;
 * init/cleanup pair; fields are private.
 */
struct cp_tr_chat_answer {
    struct cm_buf _text;      /* message content */
    struct cm_buf _reasoning; /* reasoning_content */
    bool _have_text;          /* some content was given (even ""): "content" is not null */
    cJSON *_calls;            /* tool_calls (owned) */
};

/** Prepares @p a, empty. CM_OK or CM_ERR_NOMEM; either way cleanup is safe. */
int cp_tr_chat_answer_init(struct cp_tr_chat_answer *a);

/** Frees what @p a owns. Safe on a zeroed struct and twice. */
void cp_tr_chat_answer_cleanup(struct cp_tr_chat_answer *a);

/** Appends @p s to the content, which is then not null (even for ""). CM_ERR_NOMEM. */
int cp_tr_chat_answer_text(struct cp_tr_chat_answer *a, const char *s);

/**
 * Appends @p s to reasoning_content, after a blank line when some came before; "" is a
 * no-op. CM_ERR_NOMEM.
 */
int cp_tr_chat_answer_reasoning(struct cp_tr_chat_answer *a, const char *s);

/** Adds the tool call {"id","type":"function","function":{"name","arguments"}}. CM_ERR_NOMEM. */
int cp_tr_chat_answer_tool_call(struct cp_tr_chat_answer *a, const char *id, const char *name,
                                const char *args);

/** True once a tool call was added to @p a. */
bool cp_tr_chat_answer_has_calls(const struct cp_tr_chat_answer *a);

/**
 * Builds {"id","object":"chat.completion","created","model","choices":[{"index":0,
 * "message":{"role":"assistant","content" (null when no text was given),
 * "reasoning_content"? (omitted when empty),"tool_calls"? (omitted when none)},
 * "finish_reason"}],"usage" (OpenAI shape of @p usage)} from @p a (unchanged) into *@p out
 * (caller frees with cJSON_Delete()). CM_ERR_NOMEM, CM_ERR_INVAL (embedded NUL).
 */
int cp_tr_chat_completion_new(const char *id, const char *model, int64_t created,
                              const struct cp_tr_chat_answer *a, const char *finish_reason,
                              const struct cp_tr_usage *usage, cJSON **out);

/**
 * The text of a system / developer message @p m (content: a string, or text parts only)
 * handed to @p add(@p dst, text) part by part. CM_ERR_INVAL with @p je naming the field
 * (missing content, another part type), CM_ERR_LIMIT past @p max parts, or add's error.
 */
int cp_tr_chat_system_texts(const cJSON *m, int max, int (*add)(cJSON *dst, const char *text),
                            cJSON *dst, struct cm_json_err *je);

/**
 * Chat's "stop" (a string or an array of at most @p max strings) as a string array set on
 * @p dst under @p key (nothing when empty): Anthropic's stop_sequences, Gemini's
 * stopSequences. CM_ERR_INVAL / CM_ERR_LIMIT with @p je naming the field, CM_ERR_NOMEM.
 */
int cp_tr_chat_stop_list(const cJSON *stop, int max, cJSON *dst, const char *key,
                         struct cm_json_err *je);

#endif
