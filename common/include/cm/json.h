/* SPDX-License-Identifier: MIT */
/*
 * json.h - safe helpers over cJSON: bounded parsing, typed getters, printing, building.
 *
 * Parsing first runs a strict, non-recursive RFC 8259 check (depth cap, UTF-8, exact error
 * offset) and only then lets cJSON build the tree, so deep or hostile input never reaches
 * cJSON's recursion and a NULL from cJSON can only mean out of memory. Getters look keys up
 * case-sensitively (never cJSON_GetObjectItem) and read integers through a range-checked
 * conversion (never valueint, which truncates). Failures can fill a struct cm_json_err
 * naming the field, from which a caller builds a client error (OpenAI "param" + "message").
 * cJSON allocates through cm/alloc.h (hooks installed on first use of this module).
 * Thread-safety: trees are not locked; concurrent reads of one tree are fine.
 */
#ifndef CM_JSON_H
#define CM_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_JSON_DEPTH_DEFAULT 64 /* max_depth used when the options say 0 */
#define CM_JSON_DEPTH_MAX 1000   /* cJSON's own nesting limit: max_depth may not exceed it */

/* Integers a double holds exactly and unambiguously: +-(2^53 - 1) (JS Number.MAX_SAFE_INTEGER). */
#define CM_JSON_INT_MAX INT64_C(9007199254740991)
#define CM_JSON_INT_MIN (-CM_JSON_INT_MAX)

/* Flags for struct cm_json_parse_opts. */
#define CM_JSON_ALLOW_DUP_KEYS 1u /* accept an object with the same key twice (first one wins) */

/** Parse options; a zeroed struct (or NULL) gives the defaults. */
struct cm_json_parse_opts {
    unsigned max_depth; /* most nested arrays/objects, 1..CM_JSON_DEPTH_MAX; 0 = default (64) */
    size_t max_size;    /* most input bytes; 0 = no limit */
    unsigned flags;     /* CM_JSON_* flags */
};

#define CM_JSON_ERR_FIELD_MAX 128
#define CM_JSON_ERR_MSG_MAX 256

/**
 * What went wrong, for logs and client errors. Filled only on failure; callers put it on
 * the stack and may pass NULL where they do not care. All strings are NUL-terminated,
 * valid UTF-8 (cut at a character boundary when too long) and free of user-chosen text
 * except a duplicate key's name.
 */
struct cm_json_err {
    int rc;                            /* the code that was returned */
    size_t offset;                     /* syntax/depth errors from cm_json_parse(): byte offset
                                          in the input; else 0 */
    char field[CM_JSON_ERR_FIELD_MAX]; /* the field at fault ("messages", after scoping
                                          "messages[2].role"); "" when not about one field */
    char msg[CM_JSON_ERR_MSG_MAX];     /* one sentence fit for a client, e.g.
                                          "field 'messages' must be an array" */
    char _what[96];                    /* private: the predicate, to rebuild msg when scoped */
};

/* ---- parsing and printing ---- */

/**
 * Parses exactly @p len bytes at @p data (need not be NUL-terminated; a NUL byte anywhere
 * is an error) into a new tree. Accepts RFC 8259 JSON with any value at the top, optionally
 * after a UTF-8 BOM, with these extra rules: strings must be valid UTF-8; "\u0000" is
 * refused (cJSON strings are C strings and would silently truncate there); a number may
 * have at most 63 characters (cJSON's limit); an object may not repeat a key unless
 * CM_JSON_ALLOW_DUP_KEYS (JSON parsers disagree on which copy wins, so a repeated key could
 * slip one value past our checks and another to the upstream).
 * @p opts may be NULL (defaults). No recursion on the input: any depth is safe to reject.
 * Returns CM_OK and sets *@p out (caller frees with cJSON_Delete()); CM_ERR_LIMIT when
 * @p len > max_size or nesting exceeds max_depth; CM_ERR_PARSE for malformed input;
 * CM_ERR_NOMEM; CM_ERR_INVAL for bad arguments (NULL out, max_depth > CM_JSON_DEPTH_MAX).
 * When the input is both too deep and malformed later on, LIMIT is reported.
 * Thread-safe, except that cJSON 1.7.x writes a global error position on every parse
 * (a benign race; nothing here reads it).
 */
int cm_json_parse(const char *data, size_t len, const struct cm_json_parse_opts *opts, cJSON **out,
                  struct cm_json_err *err);

/**
 * Prints @p item without whitespace into a new string; caller frees *@p out with cm_free().
 * @p len_out (may be NULL) gets its length. Not cJSON_PrintUnformatted(), whose numbers
 * can lose their last digit (9007199254740991 -> 9.00719925474099e+15): integral values
 * within CM_JSON_INT_MIN..MAX print as plain integers, other numbers as the shortest
 * %.15g/%.16g/%.17g form that reads back to the same double, NaN/inf as null. Strings
 * escape '"', '\\' and control bytes; other bytes pass through (trees from cm_json_parse()
 * hold only valid UTF-8). No recursion; a tree deeper than CM_JSON_DEPTH_MAX is
 * CM_ERR_LIMIT. Returns CM_OK, CM_ERR_INVAL (NULL item/out, an invalid item or a member
 * without a key), CM_ERR_LIMIT or CM_ERR_NOMEM. Thread-safe on an unchanging tree.
 */
int cm_json_print(const cJSON *item, char **out, size_t *len_out);

/* ---- getters ----
 * Each looks @p name up in object @p obj, case-sensitively (the first of repeated keys).
 * get_*: the member is required: missing -> CM_ERR_NOTFOUND ("is required"); present with
 *        another type, including null -> CM_ERR_INVAL ("must be a string"...).
 * opt_*: missing or null -> CM_OK with *out = the default; another type -> CM_ERR_INVAL.
 * @p obj that is not an object (or NULL) -> CM_ERR_INVAL with an empty field name.
 * *out is written only on CM_OK; @p err (may be NULL) only on failure, naming @p name.
 * Borrowed results point into the tree and live as long as it (until cJSON_Delete() or a
 * change to that member). Pure; safe from many threads on one unchanging tree.
 */

/** String member; *out is borrowed from the tree, NUL-terminated (cannot contain NUL). */
int cm_json_get_string(const cJSON *obj, const char *name, const char **out,
                       struct cm_json_err *err);
/** As cm_json_get_string(); absent/null gives @p def (stored as is; may be NULL). */
int cm_json_opt_string(const cJSON *obj, const char *name, const char *def, const char **out,
                       struct cm_json_err *err);

/** true/false member. */
int cm_json_get_bool(const cJSON *obj, const char *name, bool *out, struct cm_json_err *err);
int cm_json_opt_bool(const cJSON *obj, const char *name, bool def, bool *out,
                     struct cm_json_err *err);

/**
 * Integer member in [@p min, @p max] (also bounded by CM_JSON_INT_MIN/MAX): a number that
 * is integral (2, 2.0, 2e0, -0 -> 0), finite, and within both ranges; otherwise CM_ERR_INVAL
 * ("must be an integer between 1 and 128"). Values beyond +-(2^53-1) are refused because
 * the double cannot tell 2^53 from 2^53+1. CM_ERR_INVAL also if @p min > @p max.
 */
int cm_json_get_int64(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                      struct cm_json_err *err);
int cm_json_opt_int64(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t def,
                      int64_t *out, struct cm_json_err *err);

/**
 * Finite number member in [@p min, @p max] (pass -DBL_MAX, DBL_MAX for any). A number too
 * large for a double (1e999) is not finite and is refused.
 */
int cm_json_get_double(const cJSON *obj, const char *name, double min, double max, double *out,
                       struct cm_json_err *err);
int cm_json_opt_double(const cJSON *obj, const char *name, double min, double max, double def,
                       double *out, struct cm_json_err *err);

/** Object member; *out is borrowed (the tree still owns it). opt_: absent/null gives NULL. */
int cm_json_get_object(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err);
int cm_json_opt_object(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err);

/** Array member; *out is borrowed. opt_: absent/null gives NULL. */
int cm_json_get_array(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err);
int cm_json_opt_array(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err);

/**
 * The integer conversion the getters use, for items met otherwise (array elements):
 * CM_OK and *out set, or CM_ERR_INVAL (not a number, not integral, out of range). Pure.
 */
int cm_json_to_int64(const cJSON *item, int64_t min, int64_t max, int64_t *out);

/* ---- building ----
 * @p parent is an object (then @p name is required) or an array (then @p name must be NULL
 * and the value is appended). On an object, set_* REPLACES a member of the same name (so
 * a tree built here never repeats a key), else appends. Names and string values are
 * copied. Returns CM_OK, CM_ERR_NOMEM, or CM_ERR_INVAL (bad parent/name, value refused).
 * On error @p parent is unchanged. Not thread-safe on one tree.
 */

/** New empty object / array; caller owns it (cJSON_Delete(), or hand it to set_item). */
int cm_json_new_object(cJSON **out);
int cm_json_new_array(cJSON **out);

/**
 * Adds @p item and takes ownership of it, also on failure (then it is deleted). A NULL
 * @p item gives CM_ERR_NOMEM, so a cJSON_Create*() result may be passed in directly.
 * @p item must not belong to another tree; @p item == @p parent is CM_ERR_INVAL (and
 * nothing is deleted).
 */
int cm_json_set_item(cJSON *parent, const char *name, cJSON *item);
/**
 * cm_json_set_item() for an item held in a variable: takes ownership of *@p item (also on
 * failure) and sets *@p item to NULL, so the caller's cleanup path never frees it twice.
 */
int cm_json_adopt(cJSON *parent, const char *name, cJSON **item);
/** String (NULL @p value is CM_ERR_INVAL). */
int cm_json_set_string(cJSON *parent, const char *name, const char *value);
/** String from @p len bytes (not NUL-terminated); embedded NUL -> CM_ERR_INVAL. */
int cm_json_set_stringn(cJSON *parent, const char *name, const char *value, size_t len);
/** Integer; outside CM_JSON_INT_MIN..MAX -> CM_ERR_INVAL (would not survive the double). */
int cm_json_set_int64(cJSON *parent, const char *name, int64_t value);
/** Finite number; NaN/inf -> CM_ERR_INVAL. */
int cm_json_set_double(cJSON *parent, const char *name, double value);
int cm_json_set_bool(cJSON *parent, const char *name, bool value);
int cm_json_set_null(cJSON *parent, const char *name);

/* ---- errors for clients ---- */

/**
 * Fills @p e (no-op if NULL) as the getters do, for checks of your own: rc, field (may be
 * NULL or "") and msg "field '<field>' <what>", what being printf(@p fmt, ...), e.g.
 * cm_json_err_set(e, CM_ERR_INVAL, "messages", "must not be empty").
 */
void cm_json_err_set(struct cm_json_err *e, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Puts a path in front of the field in @p e (no-op if NULL) and rebuilds msg, for errors
 * found inside nested values: after cm_json_get_string(item, "role", ...) failed on
 * messages[2], cm_json_err_scope(e, "messages[%zu]", i) turns field "role" into
 * "messages[2].role" (and an empty field into "messages[2]").
 */
void cm_json_err_scope(struct cm_json_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
