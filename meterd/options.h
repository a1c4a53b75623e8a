/* SPDX-License-Identifier: MIT */
/*
 * options.h - NewAPI's `options` (spec newapi.md 6): the compiled defaults overlaid with the
 * table's rows, as an immutable snapshot (sorted key -> value strings, typed getters, and the
 * pricing snapshot built from it), plus the validation PUT /api/option/ runs before a value
 * is stored. Unlike NewAPI (6.3), a value is checked before it is written, a store error is
 * never swallowed, and a bad value already in the table (written from outside) is logged
 * and ignored for its key (the last good value, else the default, stays in force) instead of
 * emptying a ratio map.
 *
 * Snapshots are reference counted; mt_options_current() hands out the newest one. Pure apart
 * from the pricing build (no I/O): the holder that reloads from the store lives in
 * optcache.c.
 */
#ifndef MT_OPTIONS_H
#define MT_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct mt_pricing;
struct mt_options; /* opaque immutable snapshot */

/** One key/value pair (borrowed strings). */
struct mt_option_kv {
    const char *key;
    const char *value;
};

/**
 * Builds a snapshot: the defaults, then each of @p rows (@p n, borrowed for the call) in
 * order. A row whose value fails mt_options_check() is skipped with a WARN naming the key
 * (and, when @p prev is not NULL, @p prev's value for that key is kept). Unknown keys are
 * kept as they are (NewAPI stores many we do not interpret). *@p out is freed with
 * mt_options_unref(). CM_OK, CM_ERR_NOMEM.
 */
int mt_options_new(const struct mt_option_kv *rows, size_t n, const struct mt_options *prev,
                   struct mt_options **out);
void mt_options_ref(struct mt_options *o);
void mt_options_unref(struct mt_options *o);

/**
 * Checks @p value for option @p key: booleans "true"/"false", integers and numbers in
 * range, the pricing maps (mt_pricing_check_option), JSON kinds, status-code ranges
 * ("401,500-503"). CM_OK; CM_ERR_INVAL with a sentence naming the key in @p err;
 * CM_ERR_DENIED for keys that may not be set through the API (payment compliance).
 * Unknown keys are accepted (NewAPI's console stores free-form settings).
 */
int mt_options_check(const char *key, const char *value, char *err, size_t errlen);

/** The value of @p key (borrowed from @p o), or NULL. */
const char *mt_options_get(const struct mt_options *o, const char *key);
/** Typed reads; the default when the key is absent or malformed. */
int mt_options_bool(const struct mt_options *o, const char *key, int def);
int64_t mt_options_int(const struct mt_options *o, const char *key, int64_t def);
double mt_options_double(const struct mt_options *o, const char *key, double def);

/** Number of keys and the i-th pair (sorted by key), for GET /api/option/. */
size_t mt_options_count(const struct mt_options *o);
struct mt_option_kv mt_options_at(const struct mt_options *o, size_t i);

/** The pricing snapshot built from these options (borrowed; lives as long as @p o). */
const struct mt_pricing *mt_options_pricing(const struct mt_options *o);

/**
 * Whether @p code is in the status-code ranges @p ranges ("401,500-503"); for
 * AutomaticDisableStatusCodes / AutomaticRetryStatusCodes. Pure.
 */
int mt_options_code_in(const char *ranges, long code);

#endif
