/* SPDX-License-Identifier: MIT */
/*
 * codex_common.h - pieces every "<client> on Codex" translator shares (chat_codex.c,
 * messages_codex.c): tool-name shortening and the map back, the model suffix / budget ->
 * reasoning.effort table (spec cliproxyapi.md 5.1), an upstream event's usage and its
 * in-stream error (3.1(d), 3.1(e)), the client-neutral half of the stream (event framing,
 * errors, function-call bookkeeping) and collecting a whole Codex SSE body for the
 * non-stream paths. Pure: no I/O, no clock, no globals; each object belongs to one caller
 * at a time. Not a public interface outside translate/.
 */
#ifndef CP_TRANSLATE_CODEX_COMMON_H
#define CP_TRANSLATE_CODEX_COMMON_H

#include "cm/buf.h"
#include "translate/tr_common.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_TR_CODEX_NAME_MAX 64    /* Codex's limit on a function name */
#define CP_TR_CODEX_MAX_ITEMS 4096 /* most output_item.done items one body may carry */

/** The message the executor reports when the upstream stream ends before its terminal event. */
#define CP_TR_CODEX_EARLY_EOF_MSG                                                                  \
    "stream error: stream disconnected before completion: stream closed before "                   \
    "response.completed"

/* ---- tool names: Codex allows 64 bytes; longer ones are shortened and mapped back ---- */

/**
 * The name Codex gets for the client's function @p name: itself when at most 64 bytes;
 * else "mcp__<last __-segment>" for "mcp__" names, else the first 64 bytes (never cutting a
 * UTF-8 character). Writes a NUL-terminated name into @p out (@p out_size >= 65). Pure.
 * Returns CM_OK or CM_ERR_INVAL (NULL arguments, @p out_size too small).
 */
int cp_tr_codex_tool_name(const char *name, char *out, size_t out_size);

struct cp_tr_codex_names; /* opaque: the declared tools of one request, short <-> original */

/** The Codex name of declared tool @p orig (borrowed from @p m), or NULL if not declared. */
const char *cp_tr_codex_names_short(const struct cp_tr_codex_names *m, const char *orig);

/** The client's name for Codex name @p shrt: borrowed from @p m, or @p shrt itself. */
const char *cp_tr_codex_names_orig(const struct cp_tr_codex_names *m, const char *shrt);

/** The Codex name for @p name into @p out: the declared one, else cp_tr_codex_tool_name(). */
void cp_tr_codex_names_upstream(const struct cp_tr_codex_names *m, const char *name,
                                char out[CP_TR_CODEX_NAME_MAX + 1]);

/** Frees @p m (NULL is a no-op). */
void cp_tr_codex_names_free(struct cp_tr_codex_names *m);

/**
 * Sets @p body."tool_choice" to {"type":"function","name"} forcing the client's tool
 * @p name (its Codex name, cp_tr_codex_names_upstream()). CM_ERR_NOMEM.
 */
int cp_tr_codex_tool_choice(cJSON *body, const struct cp_tr_codex_names *m, const char *name);

/**
 * The map of the client tools in the request's "tools" @p tools (anything but an array:
 * none): @p name_of gives an entry's client name, or NULL to skip it (not a function tool,
 * or malformed: the request translator reports those). In order, each name gets the Codex
 * name cp_tr_codex_tool_name(name), made unique among the earlier ones with a "_<n>" tail;
 * a repeated name keeps its first one. *@p out is the map (cp_tr_codex_names_free()), NULL
 * when no name was declared. CM_OK or CM_ERR_NOMEM (then *@p out is untouched).
 */
int cp_tr_codex_names_build(const cJSON *tools, const char *(*name_of)(const cJSON *tool),
                            struct cp_tr_codex_names **out);

/* ---- 5.1: reasoning effort ---- */

/**
 * The Codex reasoning effort for a level or budget word @p v (@p n bytes, need not be
 * NUL-terminated): none/minimal/low/medium/high/xhigh as themselves, "max" -> "xhigh",
 * "auto"/"-1" -> "medium" (Codex has no dynamic level), a decimal budget by the thresholds
 * of spec 5.1 (0 none, <=512 minimal, <=1024 low, <=8192 medium, <=24576 high, else xhigh).
 * Static string, or NULL when @p v is none of these.
 */
const char *cp_tr_codex_effort(const char *v, size_t n);

/** As cp_tr_codex_effort() for a token budget (negative: "medium", the dynamic level). */
const char *cp_tr_codex_effort_for_budget(int64_t budget);

/* ---- upstream events ---- */

/** response.usage of terminal response @p resp into @p u; false (and @p u untouched) if none. */
bool cp_tr_codex_parse_usage(const cJSON *resp, struct cp_tr_usage *u);

/* ---- the stream, whatever the client format ---- */

/** One function call seen in a Codex stream (chat_codex.c / messages_codex.c bookkeeping). */
struct cp_tr_codex_call {
    char *item_id;        /* the upstream item id ("fc_..."), may be NULL (owned) */
    int64_t output_index; /* the upstream output_index, -1 if unknown */
    bool args_sent;       /* some arguments went to the client */
    bool closed;          /* its client-side block was stopped (messages_codex.c) */
};

/**
 * The call event @p ev is about among @p calls[0..@p n): by item_id (else item.id), or by
 * output_index when the event names no item. The entry (with its position in *@p index),
 * or NULL.
 */
struct cp_tr_codex_call *cp_tr_codex_call_find(struct cp_tr_codex_call *calls, size_t n,
                                               const cJSON *ev, size_t *index);

/**
 * Appends the call of function_call @p item (item.id; the output_index of event @p ev) to
 * the array *@p calls of *@p n entries; *@p index = its position. CM_OK, CM_ERR_LIMIT
 * (already @p max calls) or CM_ERR_NOMEM (*@p calls stays valid, *@p n unchanged).
 */
int cp_tr_codex_call_add(struct cp_tr_codex_call **calls, size_t *n, size_t max, const cJSON *ev,
                         const cJSON *item, size_t *index);

/** Frees @p calls and what its @p n entries own. */
void cp_tr_codex_calls_free(struct cp_tr_codex_call *calls, size_t n);

/** How one Codex stream translator speaks to its client (see cp_tr_codex_stream_event()). */
struct cp_tr_codex_stream_ops {
    /* Appends the client's error event for @p e. CM_OK, CM_ERR_NOMEM, CM_ERR_LIMIT. */
    int (*emit_error)(const struct cp_tr_err *e, struct cm_buf *out);
    /*
     * Handles event @p ev of type @p t (@p tl bytes), neither response.failed nor error, for
     * stream @p st: appends what the client gets to @p out. CM_OK or a cm_err code.
     */
    int (*dispatch)(void *st, const char *t, size_t tl, const cJSON *ev, struct cm_buf *out);
};

/**
 * One upstream SSE event of a Codex stream (@p type / @p data as the translators'
 * *_stream_event() take them), the same for every client format: CM_OK and nothing once
 * *@p done or for the data "[DONE]". Data that is not a JSON object, response.failed and
 * error set *@p done, append ops->emit_error() of the failure (malformed: 502; else the
 * upstream's error as spec 3.1(e) maps it: status from error.status_code|status, else by
 * type/code, default 502; OpenAI type (the upstream's, else by status), code, message)
 * and return CM_ERR_UPSTREAM with @p err filled; if that
 * append fails its code is returned (@p err: the malformed-data failure, or a 500). Other
 * events go to ops->dispatch(@p st): CM_OK, or its code with a 500 in @p err.
 * CM_ERR_NOMEM (500) when parsing runs out of memory. @p err may be NULL.
 */
int cp_tr_codex_stream_event(const struct cp_tr_codex_stream_ops *ops, void *st, bool *done,
                             const char *type, size_t type_len, const char *data, size_t data_len,
                             struct cm_buf *out, struct cp_tr_err *err);

/**
 * The end of a Codex stream: CM_OK once *@p done; else sets *@p done, appends
 * ops->emit_error() of the early end (CM_ERR_TIMEOUT, 408, CP_TR_CODEX_EARLY_EOF_MSG) and
 * returns CM_ERR_TIMEOUT with that in @p err (may be NULL). CM_ERR_LIMIT / CM_ERR_NOMEM
 * when the append fails (@p err untouched).
 */
int cp_tr_codex_stream_finish(const struct cp_tr_codex_stream_ops *ops, bool *done,
                              struct cm_buf *out, struct cp_tr_err *err);

/* ---- non-stream: a whole Codex SSE body ---- */

/** What a complete Codex SSE body said, as cp_tr_codex_aggregate() hands it to its build step. */
struct cp_tr_codex_result {
    cJSON *response; /* the terminal event's "response" object (owned; {} when absent) */
    cJSON *output;   /* the output items (borrowed from response, or from _rebuilt) */
    bool incomplete; /* the terminal event was response.incomplete */
    int64_t created; /* response.created_at of the created/in_progress events, else the
                        fallback passed in (the terminal response's own created_at is not
                        applied here) */
    char *model;     /* response.model of the created/in_progress events, or NULL (owned) */
    cJSON *_rebuilt; /* output rebuilt from output_item.done items (owned, may be NULL) */
};

/**
 * Builds a client's answer for cp_tr_codex_aggregate(): from the collected body @p r and
 * the client's tool names @p names (may be NULL), both borrowed for the call, with the
 * caller's @p ud, a new tree in *@p out and its usage in *@p usage. CM_OK or a cm_err code.
 */
typedef int (*cp_tr_codex_build_fn)(const struct cp_tr_codex_result *r,
                                    const struct cp_tr_codex_names *names, void *ud, cJSON **out,
                                    struct cp_tr_usage *usage);

/**
 * The non-stream path of a Codex translator: reads the whole Codex SSE body @p sse
 * (@p len bytes) up to its terminal event (response.completed or response.incomplete);
 * when the terminal response has no or an empty "output", the items of the
 * response.output_item.done events are used, in output_index order (spec 3.1(d));
 * @p created is the fallback for the result's created. Then the tool-name map of @p tools
 * (cp_tr_codex_names_build() with @p name_of) and the result go to @p build (@p ud).
 * On CM_OK *@p out is the built tree (caller frees with cJSON_Delete()) and *@p usage (may
 * be NULL) its usage. Errors (@p err, may be NULL, filled): CM_ERR_UPSTREAM for
 * response.failed / error (mapped as for the stream) / malformed events (502);
 * CM_ERR_TIMEOUT (408, CP_TR_CODEX_EARLY_EOF_MSG) when the body ends before the terminal
 * event; CM_ERR_LIMIT (502) for an oversized event or more than CP_TR_CODEX_MAX_ITEMS
 * items; CM_ERR_INVAL (500) for a NULL @p out or a NULL @p sse with a length; CM_ERR_NOMEM
 * and a failed map or build: 500.
 */
int cp_tr_codex_aggregate(const char *sse, size_t len, int64_t created, const cJSON *tools,
                          const char *(*name_of)(const cJSON *tool), cp_tr_codex_build_fn build,
                          void *ud, cJSON **out, struct cp_tr_usage *usage, struct cp_tr_err *err);

#endif
