/* SPDX-License-Identifier: MIT */
/*
 * tr_common.h - what every translator shares whatever its client format and upstream
 * (chat_codex.c, chat_claude.c, messages_codex.c, responses_codex.c, chat_common.c,
 * codex_common.c): string helpers, {"type": ...} objects, filling struct cp_tr_err, the
 * front of a request translation and the checks that name a field, the "base(suffix)"
 * model split, parsing one upstream SSE event and reading a whole SSE body for the
 * non-stream paths. Pure: no I/O, no clock, no globals. Not a public interface outside
 * translate/.
 */
#ifndef CP_TRANSLATE_TR_COMMON_H
#define CP_TRANSLATE_TR_COMMON_H

#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct cm_json_err;

/* ---- strings ---- */

/** True when @p s is not NULL and equals the string @p lit. */
bool cp_tr_str_eq(const char *s, const char *lit);

/** True when the slice @p p / @p n (need not be NUL-terminated; NULL is no match) is @p lit. */
bool cp_tr_slice_eq(const char *p, size_t n, const char *lit);

/** True when @p s starts with @p prefix (both non-NULL). */
bool cp_tr_has_prefix(const char *s, const char *prefix);

/**
 * Splits "data:<media>;base64,<data>": true with the media type slice (*@p media,
 * *@p media_len) and the data (*@p data), all pointing into @p url; false when @p url is
 * not a base64 data URL with a media type.
 */
bool cp_tr_data_url(const char *url, const char **media, size_t *media_len, const char **data);

/** String member @p name of @p o, or @p def when absent or not a string (borrowed). */
const char *cp_tr_str_member(const cJSON *o, const char *name, const char *def);

/* ---- JSON ---- */

/** A new object {"type": @p type} in *@p o (untouched on failure). CM_ERR_NOMEM. */
int cp_tr_typed_new(const char *type, cJSON **o);

/**
 * Appends {"type": @p type, @p key: @p val (@p len bytes)} to the array @p arr.
 * CM_ERR_NOMEM, CM_ERR_INVAL (an embedded NUL in @p val).
 */
int cp_tr_typed_append(cJSON *arr, const char *type, const char *key, const char *val, size_t len);

/**
 * The arguments string @p args of a tool call as a new JSON object in *@p out (caller
 * frees with cJSON_Delete()): the parsed arguments, or {} when they are not valid JSON or
 * not an object. CM_ERR_NOMEM.
 */
int cp_tr_args_object(const char *args, cJSON **out);

/* ---- errors ---- */

/**
 * Fills @p e (no-op when NULL): clears it, then rc, status, field, type, code (NULL = "")
 * and msg = printf(@p fmt, ...), each cut to its array.
 */
void cp_tr_err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field,
                   const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/** @p e = @p rc, 500, "server_error", no code, the message @p msg. */
void cp_tr_server_error(struct cp_tr_err *e, int rc, const char *msg);

/**
 * A request-side failure found through cm_json (@p je, may be NULL) into @p e:
 * CM_ERR_NOMEM -> 500 "server_error"; anything else -> 400 "invalid_request_error" naming
 * je->field, with CM_ERR_NOTFOUND (a missing required field) reported as CM_ERR_INVAL.
 * Returns the rc stored in @p e (the one the caller should return).
 */
int cp_tr_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je);

/** OpenAI error "type" for an HTTP @p status (400 invalid_request_error, ... else server_error). */
const char *cp_tr_type_for_status(unsigned status);

/** @p e = 502 "server_error" / "bad_upstream_event": "upstream sent a malformed event: <what>". */
void cp_tr_malformed_error(struct cp_tr_err *e, const char *what);

/** @p e = the upstream closed early: CM_ERR_TIMEOUT, 408, "timeout_error", "request_timeout",
 *  @p msg. */
void cp_tr_early_eof_error(struct cp_tr_err *e, const char *msg);

/* ---- requests ---- */

/**
 * The front of every cp_tr_<client>_<upstream>_request(): CM_ERR_INVAL (500 "bad
 * arguments") for a NULL @p out; CM_ERR_INVAL (400) when @p req is not a JSON object; else
 * @p build(@p req, &body, je), whose failure goes into @p err through cp_tr_err_from_json()
 * (and that rc is returned) and whose success into *@p out.
 */
int cp_tr_request(const cJSON *req, cJSON **out, struct cp_tr_err *err,
                  int (*build)(const cJSON *req, cJSON **out, struct cm_json_err *je));

/**
 * CM_ERR_LIMIT with @p je = "@p field has more than @p max @p noun" when array @p arr has
 * more than @p max items, else CM_OK (also for a non-array).
 */
int cp_tr_check_cap(const cJSON *arr, int max, const char *field, const char *noun,
                    struct cm_json_err *je);

/** "messages" must not be empty (CM_ERR_INVAL) and hold at most @p max entries (CM_ERR_LIMIT). */
int cp_tr_check_messages(const cJSON *messages, int max, struct cm_json_err *je);

/**
 * Converts the request array @p in (the member @p field, e.g. "tools"; not an array:
 * CM_ERR_INVAL "must be an array"; more than @p max entries: CM_ERR_LIMIT) entry by entry
 * into a new array in *@p out (caller frees with cJSON_Delete()): @p fn (@p ud) makes a new
 * tree in *@p item for each entry, or fails with its code, which is returned with the
 * error scoped "<field>[i]".
 */
int cp_tr_map_array(const cJSON *in, const char *field, int max,
                    int (*fn)(const void *ud, const cJSON *entry, cJSON **item,
                              struct cm_json_err *je),
                    const void *ud, cJSON **out, struct cm_json_err *je);

/**
 * Spec 5.1: splits "base(suffix)" into a new base model *@p base (caller frees with
 * cm_free()). A suffix is handed to @p suffix (@p v / @p n, not NUL-terminated, with @p ud),
 * which returns false when it names no level or budget. *@p has_suffix tells whether there
 * was one. CM_ERR_INVAL with @p je naming "model" (nothing before "(", an unknown suffix,
 * an empty model); CM_ERR_NOMEM. On error *@p base is untouched.
 */
int cp_tr_split_model(const char *model, bool (*suffix)(const char *v, size_t n, void *ud),
                      void *ud, char **base, bool *has_suffix, struct cm_json_err *je);

/* ---- upstream events ---- */

/**
 * Parses an upstream SSE event: @p data (@p data_len bytes, any nesting up to 128) must be a
 * JSON object, else @p err = cp_tr_malformed_error() and CM_ERR_UPSTREAM. The event's type
 * is @p type / @p type_len unless that is empty or "message", then data's "type" member
 * ("" when none). On CM_OK *@p ev is a new tree (cJSON_Delete()) and *@p t / *@p tlen
 * borrow from @p type or from *@p ev. CM_ERR_NOMEM (500 in @p err). @p err may be NULL and
 * is written only on failure.
 */
int cp_tr_parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                      cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err);

/**
 * Handles one event of a whole upstream body for cp_tr_read_body(): @p ev, of type @p t /
 * @p tl (the handler may detach members; the reader deletes it), with the caller's @p ud.
 * Returns 0 to go on, 1 after the terminal event (the rest is not read), CM_ERR_UPSTREAM
 * with @p uerr filled for an upstream failure, or another cm_err code.
 */
typedef int (*cp_tr_body_fn)(void *ud, const char *t, size_t tl, cJSON *ev, struct cp_tr_err *uerr);

/**
 * Reads the whole upstream SSE body @p sse (@p len bytes) for a non-stream answer: each
 * event is parsed (cp_tr_parse_event(); with @p skip_done the data "[DONE]" is skipped)
 * and handed to @p fn (@p ud) until it returns non-zero; an unterminated last event is not
 * dispatched (a cut stream). Returns CM_OK once @p fn returned 1; CM_ERR_UPSTREAM (from
 * @p fn, or malformed data: 502) with @p err = that failure; CM_ERR_TIMEOUT with @p err =
 * cp_tr_early_eof_error(@p eof_msg) when the body ends first; CM_ERR_LIMIT (from @p fn, or
 * an event over CM_SSE_MAX_EVENT_DEFAULT) with @p err 502 "bad_upstream_event" @p limit_msg;
 * any other code with a 500. @p err may be NULL.
 */
int cp_tr_read_body(const char *sse, size_t len, bool skip_done, cp_tr_body_fn fn, void *ud,
                    const char *eof_msg, const char *limit_msg, struct cp_tr_err *err);

#endif
