/* SPDX-License-Identifier: MIT */
/*
 * price.h - the pure pricing work of meterctl, on top of meterd's pricing module (which
 * owns the formula; nothing here re-implements it):
 *   - USD per 1M tokens -> NewAPI ratios (spec newapi.md 5.1): ModelRatio = input / 2,
 *     CompletionRatio = output / input, CacheRatio = cached / input, CreateCacheRatio =
 *     cache_write / input;
 *   - merging those into the option maps read from GET /api/option/ (JSON-encoded strings,
 *     spec 6), leaving every other entry as it was, and checking the maps were kept;
 *   - the prices in force: the options -> an mt_pricing snapshot -> per model, the USD per
 *     1M tokens that mt_pricing_settle() charges (at group ratio 1);
 *   - verify's expectation: a consume log row -> the quota mt_pricing_settle() gives.
 * No I/O, no globals. Options are the `data` array of GET /api/option/: [{"key","value"}].
 */
#ifndef MC_PRICE_H
#define MC_PRICE_H

#include "pricing.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define MC_PRICE_SIG_DIGITS 12 /* ratios are rounded to this many significant digits */

/** One `price set` group: a model and its prices in USD per 1M tokens. */
struct mc_price_in {
    const char *model; /* borrowed */
    double input, cached, output, cache_write;
    int has_input, has_cached, has_output, has_cache_write;
};

/** The ratios one mc_price_in implies; set_* say which maps get an entry. */
struct mc_ratios {
    double model_ratio, completion_ratio, cache_ratio, create_cache_ratio;
    int set_completion, set_cache, set_create_cache;
};

/**
 * Ratios of @p in, each rounded to MC_PRICE_SIG_DIGITS significant digits (so $0.30 cached
 * of $3.00 input is stored as 0.1, not 0.09999999999999999). --input and --output are
 * required. An input of 0 is a free model: ModelRatio 0 and nothing else, allowed only when
 * every other price is 0 too (ratios are relative to the input price). CacheRatio /
 * CreateCacheRatio only when --cached / --cache-write were given. CM_OK; CM_ERR_INVAL with
 * a sentence naming the model in @p err.
 */
int mc_price_ratios(const struct mc_price_in *in, struct mc_ratios *out, char *err, size_t errlen);

/** The maps `price set` writes, in the order they are written: ModelRatio LAST, so a model
 *  new to meterd becomes billable only once its other ratios are in place. */
enum mc_map {
    MC_MAP_COMPLETION = 0,
    MC_MAP_CACHE,
    MC_MAP_CREATE_CACHE,
    MC_MAP_MODEL,
    MC_MAP__COUNT
};

/** "CompletionRatio", "CacheRatio", "CreateCacheRatio", "ModelRatio". Static. */
const char *mc_price_map_key(enum mc_map m);

/**
 * The value (a string) of option @p key in @p options, or NULL when the key is absent or
 * its value is not a string. Borrowed from the tree.
 */
const char *mc_option_value(const cJSON *options, const char *key);

/**
 * Merges the ratios of the @p n groups of @p in into the maps of @p options (an absent map
 * starts from meterd's built-in default, as meterd itself would read it, so the defaults are
 * not wiped), other entries untouched. Each new map is checked with
 * mt_pricing_check_option() before anything is sent. out[m] gets the new JSON text
 * (cm_malloc'd; caller frees) or NULL when map m is unchanged. CM_OK; CM_ERR_INVAL /
 * CM_ERR_PARSE with a sentence in @p err (bad input, a map in meterd that is not a JSON
 * object, a value meterd would refuse); CM_ERR_NOMEM. On failure every out[m] is NULL.
 */
int mc_price_merge(const cJSON *options, const struct mc_price_in *in, size_t n,
                   char *out[MC_MAP__COUNT], char *err, size_t errlen);

/**
 * After the update: checks that @p options (read back from meterd) hold the ratios of every
 * group of @p in (relative tolerance 1e-9). CM_OK; CM_ERR_INVAL with @p err naming the
 * first map entry that differs ("ModelRatio[\"gpt-4o\"] is 1 in meterd, expected 1.25").
 */
int mc_price_check_applied(const cJSON *options, const struct mc_price_in *in, size_t n, char *err,
                           size_t errlen);

/**
 * A pricing snapshot from @p options (every pricing key present is fed to
 * mt_pricing_opts_set(); absent ones take meterd's defaults). *@p out is freed with
 * mt_pricing_free(). CM_OK or mt_pricing_new()'s errors with its message in @p err.
 */
int mc_price_snapshot(const cJSON *options, struct mt_pricing **out, char *err, size_t errlen);

/** What a model costs now, for `price list` and `price set`. */
struct mc_price_row {
    int per_call; /* billed per call with ModelPrice (usd_per_call), ratios only shown */
    int unpriced; /* neither ModelRatio nor ModelPrice: meterd refuses it (or bills 37.5) */
    double model_ratio, completion_ratio, cache_ratio, create_cache_ratio, model_price;
    double usd_input, usd_cached, usd_cache_write, usd_output; /* per 1M tokens */
    double usd_per_call;
};

/**
 * The prices of @p model in snapshot @p p at group ratio 1 (list prices): the USD that
 * mt_pricing_settle() charges for 1M prompt tokens, 1M cached prompt tokens, 1M cache-write
 * tokens and 1M completion tokens, or for one call of a per-call model. CM_OK;
 * CM_ERR_INVAL (NULL, empty model); CM_ERR_LIMIT (the model name is too long).
 */
int mc_price_row(const struct mt_pricing *p, const char *model, struct mc_price_row *out);

/**
 * The model names priced in @p options (keys of ModelRatio and ModelPrice, their defaults
 * when absent), sorted, each once. *@p names (@p n entries) is freed with
 * mc_price_names_free(). CM_OK, CM_ERR_PARSE (a map that is not a JSON object), CM_ERR_NOMEM.
 */
int mc_price_models(const cJSON *options, char ***names, size_t *n);
void mc_price_names_free(char **names, size_t n);

/** What verify reads from one consume log row (GET /api/log/ item). */
struct mc_log_facts {
    const char *model; /* model_name (borrowed from the row) */
    const char *group; /* group the request was billed in ("" when absent) */
    int64_t id, quota;
    struct mt_usage usage; /* prompt/completion from the row; cache, image, audio from other */
    cJSON *other;          /* owned: the parsed `other` (a JSON string in NewAPI's answer) */
};

/**
 * Fills @p f from log row @p row. CM_OK; CM_ERR_INVAL / CM_ERR_PARSE with @p err when a
 * field is missing or of the wrong type; CM_ERR_NOMEM. Release with mc_log_facts_cleanup()
 * (also after a failure).
 */
int mc_log_facts_read(const cJSON *row, struct mc_log_facts *f, char *err, size_t errlen);
void mc_log_facts_cleanup(struct mc_log_facts *f);

/**
 * The quota meterd should have charged for @p f: mt_pricing_model_price() of the row's model
 * in the row's group (@p user_group: the user's own group for GroupGroupRatio, NULL = the
 * row's group), then mt_pricing_settle() on the row's usage. CM_OK with *@p out; the
 * pricing module's errors with a sentence in @p err (unpriced model included: the expected
 * charge is still computed, as meterd in self-use mode would).
 */
int mc_price_expected(const struct mt_pricing *p, const struct mc_log_facts *f,
                      const char *user_group, struct mt_charge *out, char *err, size_t errlen);

#endif
