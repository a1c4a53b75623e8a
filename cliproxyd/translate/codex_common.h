/* SPDX-License-Identifier: MIT */
/*
 * codex_common.h - pieces every "<client> on Codex" translator shares (chat_codex.c,
 * messages_codex.c): filling struct cp_tr_err, tool-name shortening and the map back,
 * the model suffix / budget -> reasoning.effort table (spec cliproxyapi.md 5.1), parsing one
 * upstream SSE event, its usage and its in-stream error (3.1(d), 3.1(e)), and collecting a
 * whole Codex SSE body for the non-stream paths. Pure: no I/O, no clock, no globals; each
 * object belongs to one caller at a time. Not a public interface outside translate/.
 */
#ifndef CP_TRANSLATE_CODEX_COMMON_H
#define CP_TRANSLATE_CODEX_COMMON_H

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

struct cm_json_err;

/* ---- errors ---- */

/**
 * Fills @p e (no-op when NULL): rc, status, field, type, code ("" for NULL) and the message
 * printf(@p fmt, ...); strings are cut to their buffers.
 */
void cp_tr_codex_err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field,
                         const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/**
 * A request-side failure found through cm_json into @p e: CM_ERR_NOMEM -> 500
 * "server_error"; anything else -> 400 "invalid_request_error" naming @p je's field
 * (CM_ERR_NOTFOUND, a missing required field, is reported as CM_ERR_INVAL).
 */
void cp_tr_codex_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je);

/** The 408 of an upstream stream that ended before its terminal event (CP_TR_CODEX_EARLY_EOF_MSG):
 *  rc CM_ERR_TIMEOUT, type "timeout_error", code "request_timeout". */
void cp_tr_codex_early_eof_error(struct cp_tr_err *e);

/* ---- tool names: Codex allows 64 bytes; longer ones are shortened and mapped back ---- */

/**
 * The name Codex gets for the client's function @p name: itself when at most 64 bytes;
 * else "mcp__<last __-segment>" for "mcp__" names, else the first 64 bytes (never cutting a
 * UTF-8 character). Writes a NUL-terminated name into @p out (@p out_size >= 65). Pure.
 * Returns CM_OK or CM_ERR_INVAL (NULL arguments, @p out_size too small).
 */
int cp_tr_codex_tool_name(const char *name, char *out, size_t out_size);

struct cp_tr_codex_names; /* opaque: the declared tools of one request, short <-> original */

/**
 * Declares the client tool @p orig in *@p m (created on first use; a NULL map is empty).
 * Its Codex name is cp_tr_codex_tool_name(@p orig), made unique among the names declared
 * before it with a "_<n>" tail; declaring a name twice is a no-op. On error *@p m stays
 * valid (the caller still frees it). Returns CM_OK, CM_ERR_INVAL (NULL) or CM_ERR_NOMEM.
 */
int cp_tr_codex_names_add(struct cp_tr_codex_names **m, const char *orig);

/** The Codex name of declared tool @p orig (borrowed from @p m), or NULL if not declared. */
const char *cp_tr_codex_names_short(const struct cp_tr_codex_names *m, const char *orig);

/** The client's name for Codex name @p shrt: borrowed from @p m, or @p shrt itself. */
const char *cp_tr_codex_names_orig(const struct cp_tr_codex_names *m, const char *shrt);

/** The Codex name for @p name into @p out: the declared one, else cp_tr_codex_tool_name(). */
void cp_tr_codex_names_upstream(const struct cp_tr_codex_names *m, const char *name,
                                char out[CP_TR_CODEX_NAME_MAX + 1]);

/** Frees @p m (NULL is a no-op). */
void cp_tr_codex_names_free(struct cp_tr_codex_names *m);

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

/** String member @p name of @p o, or @p def when absent or not a string (borrowed). */
const char *cp_tr_codex_str_member(const cJSON *o, const char *name, const char *def);

/**
 * Parses one upstream event's data (@p data_len bytes, need not be NUL-terminated) into a
 * new object *@p ev (caller frees with cJSON_Delete()); its type is @p type when given and
 * not "message", else data.type; *@p t / *@p tlen borrow it (from @p type or from *@p ev).
 * Returns CM_OK; CM_ERR_UPSTREAM (status 502, code "bad_upstream_event") when the data is
 * not a JSON object; CM_ERR_NOMEM (500). @p err (may be NULL) only on failure.
 */
int cp_tr_codex_parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                            cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err);

/** response.usage of terminal response @p resp into @p u; false (and @p u untouched) if none. */
bool cp_tr_codex_parse_usage(const cJSON *resp, struct cp_tr_usage *u);

/**
 * The error of a response.failed (@p failed true) or "error" event @p ev into @p e (rc
 * CM_ERR_UPSTREAM): status from error.status_code|status, else by type/code (3.1(e)),
 * default 502; OpenAI type (the upstream's, else by status), code and message.
 */
void cp_tr_codex_upstream_error(const cJSON *ev, bool failed, struct cp_tr_err *e);

/* ---- non-stream: a whole Codex SSE body ---- */

/**
 * What a complete Codex SSE body said. Caller-owned; filled by cp_tr_codex_collect(),
 * freed by cp_tr_codex_result_cleanup().
 */
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
 * Reads the whole Codex SSE body @p sse (@p len bytes) up to its terminal event
 * (response.completed or response.incomplete) into @p res. When the terminal response has
 * no or an empty "output", the items of the response.output_item.done events are used, in
 * output_index order (spec 3.1(d)). @p created is the fallback for res->created.
 * Returns CM_OK; CM_ERR_UPSTREAM for response.failed / error / malformed events (mapped
 * status in @p err); CM_ERR_TIMEOUT (408, CP_TR_CODEX_EARLY_EOF_MSG) when the body ends
 * before the terminal event; CM_ERR_LIMIT (502) for an oversized event or more than
 * CP_TR_CODEX_MAX_ITEMS items; CM_ERR_INVAL for NULL arguments; CM_ERR_NOMEM. On failure
 * @p res needs no cleanup (it is zeroed) and @p err (may be NULL) is filled.
 */
int cp_tr_codex_collect(const char *sse, size_t len, int64_t created,
                        struct cp_tr_codex_result *res, struct cp_tr_err *err);

/** Frees what @p res owns (not the struct). Safe on a zeroed struct and twice. */
void cp_tr_codex_result_cleanup(struct cp_tr_codex_result *res);

#endif
