/* SPDX-License-Identifier: MIT */
/*
 * pricing.h - meterd's pricing: the operator's pricing options -> an immutable snapshot, and
 * (usage, snapshot) -> quota with NewAPI's formula and rounding (spec newapi.md sections 5
 * and 6). One quota unit = 1/QuotaPerUnit USD (500000 per USD by default); ModelRatio 1 =
 * $2 per 1M input tokens.
 *
 * Pure: no I/O, no clock, no globals, no logging. Flags in the results (group_found,
 * unpriced, no_tokens, clamped ...) tell the caller what to log. A snapshot never changes
 * after mt_pricing_new(), so any number of threads may read one at the same time; a reload
 * builds a new snapshot and swaps the pointer (the caller owns that swap and its refcount).
 *
 * Where we differ from NewAPI on purpose (spec sections 9/10): the operator's CompletionRatio
 * always wins over the built-in defaults (no hard-coded "locks", issue #3271); every option
 * is validated as a whole before it takes effect (issues #4523, 6.3), so a bad value leaves
 * the previous snapshot in force instead of emptying a map.
 */
#ifndef MT_PRICING_H
#define MT_PRICING_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- units and constants (spec 5.1-5.6) ---- */

#define MT_PRICING_QUOTA_PER_UNIT_DEFAULT 500000.0 /* quota per USD */
#define MT_PRICING_PRE_CONSUMED_DEFAULT 500  /* PreConsumedQuota: token floor of a reservation */
#define MT_PRICING_UNSET_RATIO 37.5          /* ratio an unpriced model bills at in self-use mode */
#define MT_PRICING_CACHE_RATIO_DEFAULT 1.0   /* CacheRatio when the model is absent */
#define MT_PRICING_CREATE_CACHE_DEFAULT 1.25 /* CreateCacheRatio when the model is absent */
#define MT_PRICING_TOOL_CALL_TOKENS 7        /* added per tool call to a local completion count */
#define MT_PRICING_TRUST_UNITS 10            /* trust bypass above 10 x QuotaPerUnit (= $10) */

/** Largest quota / token count handled: 2^53-1, which JSON, SQLite and a double keep exactly.
 *  Results above it are clamped to it (and flagged); inputs above it are CM_ERR_INVAL. */
#define MT_PRICING_QUOTA_MAX INT64_C(9007199254740991)

/* ---- validation caps (ours; NewAPI has none) ---- */

#define MT_PRICING_VALUE_MAX 1e12        /* any ratio, price or QuotaPerUnit */
#define MT_PRICING_VALUE_MIN 1e-12       /* smallest non-zero ratio/price (0 itself is allowed) */
#define MT_PRICING_MAX_ENTRIES 10000     /* entries per map (GroupGroupRatio: per level) */
#define MT_PRICING_NAME_MAX 256          /* bytes of a model or group name */
#define MT_PRICING_OPTION_MAX (1u << 20) /* bytes of one option value */

/* ---- built-in defaults (spec 6.2; the ModelRatio/CacheRatio/ModelPrice defaults hold only
 * the models the spec names, NewAPI's full tables are not reproduced) ---- */

#define MT_PRICING_DEFAULT_MODEL_RATIO                                                             \
    "{\"gpt-4o\":1.25,\"gpt-4o-mini\":0.075,\"gpt-3.5-turbo\":0.25,"                               \
    "\"claude-3-5-sonnet-20241022\":1.5,\"deepseek-chat\":0.135,"                                  \
    "\"text-embedding-3-small\":0.01,\"whisper-1\":15,\"tts-1\":7.5}"
#define MT_PRICING_DEFAULT_COMPLETION_RATIO                                                        \
    "{\"gpt-4-gizmo-*\":2,\"gpt-4o-gizmo-*\":3,\"gpt-4-all\":2,\"gpt-image-1\":8}"
#define MT_PRICING_DEFAULT_CACHE_RATIO                                                             \
    "{\"gpt-4o\":0.5,\"gpt-4.1\":0.25,\"gpt-5\":0.1,\"claude-3-5-sonnet-20241022\":0.1,"           \
    "\"deepseek-chat\":0.25}"
#define MT_PRICING_DEFAULT_CREATE_CACHE_RATIO "{\"claude-3-5-sonnet-20241022\":1.25}"
#define MT_PRICING_DEFAULT_MODEL_PRICE                                                             \
    "{\"dall-e-3\":0.04,\"mj_imagine\":0.1,\"suno_music\":0.1,\"sora-2\":0.3}"
#define MT_PRICING_DEFAULT_IMAGE_RATIO "{\"gpt-image-1\":2}"
#define MT_PRICING_DEFAULT_AUDIO_RATIO                                                             \
    "{\"gpt-4o-audio-preview\":16,\"gpt-4o-mini-audio-preview\":66.67,"                            \
    "\"gpt-4o-realtime-preview\":8,\"gpt-4o-mini-realtime-preview\":16.67,"                        \
    "\"gpt-4o-mini-tts\":25}"
#define MT_PRICING_DEFAULT_AUDIO_COMPLETION_RATIO                                                  \
    "{\"gpt-4o-realtime\":2,\"gpt-4o-mini-realtime\":2,\"gpt-4o-mini-tts\":1,\"tts-1\":0}"
#define MT_PRICING_DEFAULT_GROUP_RATIO "{\"default\":1,\"vip\":1,\"svip\":1}"
#define MT_PRICING_DEFAULT_GROUP_GROUP_RATIO "{\"vip\":{\"edit_this\":0.9}}"

/** Note NewAPI puts in the log content when a token-billed request reported no tokens. */
#define MT_PRICING_NOTE_NO_TOKENS                                                                  \
    "\xe4\xb8\x8a\xe6\xb8\xb8\xe6\xb2\xa1\xe6\x9c\x89\xe8\xbf\x94\xe5\x9b\x9e\xe8\xae\xa1\xe8\xb4" \
    "\xb9\xe4\xbf\xa1\xe6\x81\xaf\xef\xbc\x8c\xe6\x97\xa0\xe6\xb3\x95\xe6\x89\xa3\xe8\xb4\xb9\xef" \
    "\xbc\x88\xe5\x8f\xaf\xe8\x83\xbd\xe6\x98\xaf\xe4\xb8\x8a\xe6\xb8\xb8\xe8\xb6\x85\xe6\x97\xb6" \
    "\xef\xbc\x89" /* 上游没有返回计费信息，无法扣费（可能是上游超时） */
/** Note appended when the handler returned no usage object at all (billed P = estimate, C = 0):
 *  上游无计费信息 */
#define MT_PRICING_NOTE_NO_USAGE                                                                   \
    "\xe4\xb8\x8a\xe6\xb8\xb8\xe6\x97\xa0\xe8\xae\xa1\xe8\xb4\xb9\xe4\xbf\xa1\xe6\x81\xaf"

/* ---- options ---- */

/**
 * The pricing options as stored in the `options` table: each field is the row's text, NULL
 * when the row is absent (then the 6.2 default applies). All borrowed for the call of
 * mt_pricing_new(); nothing is kept. A zeroed struct = all defaults.
 */
struct mt_pricing_opts {
    const char *model_ratio;            /* ModelRatio: JSON {"model": ratio} */
    const char *completion_ratio;       /* CompletionRatio: JSON {"model": ratio} */
    const char *cache_ratio;            /* CacheRatio: JSON {"model": ratio} */
    const char *create_cache_ratio;     /* CreateCacheRatio: JSON {"model": ratio} */
    const char *model_price;            /* ModelPrice: JSON {"model": USD per call} */
    const char *image_ratio;            /* ImageRatio: JSON {"model": ratio} */
    const char *audio_ratio;            /* AudioRatio: JSON {"model": ratio} */
    const char *audio_completion_ratio; /* AudioCompletionRatio: JSON {"model": ratio} */
    const char *group_ratio;            /* GroupRatio: JSON {"group": ratio} */
    const char *group_group_ratio;      /* GroupGroupRatio: JSON {"user group": {"group": r}} */
    const char *quota_per_unit;         /* QuotaPerUnit: number > 0 ("500000") */
    const char *pre_consumed_quota;     /* PreConsumedQuota: integer >= 0 ("500") */
    const char *self_use_mode_enabled;  /* SelfUseModeEnabled: "true" | "false" */
    const char *display_in_currency;    /* DisplayInCurrencyEnabled: "true" | "false" */
    const char *free_model_pre_consume; /* quota_setting.enable_free_model_pre_consume */
};

/**
 * Sets the field of @p o that option @p key feeds (exact, case-sensitive NewAPI key name) to
 * @p value (borrowed; must outlive the mt_pricing_new() call; NULL = absent, use the default).
 * CM_OK; CM_ERR_NOTFOUND when @p key is not a pricing option (the caller ignores it);
 * CM_ERR_INVAL for NULL @p o / @p key. Lets the options loader feed every (key, value) row
 * through one call.
 */
int mt_pricing_opts_set(struct mt_pricing_opts *o, const char *key, const char *value);

/**
 * Validates one option value alone, as mt_pricing_new() would, for PUT /api/option/ to refuse
 * a bad value before it is stored. CM_OK; CM_ERR_NOTFOUND (not a pricing key); otherwise the
 * error mt_pricing_new() gives, with the message in @p err (see there).
 */
int mt_pricing_check_option(const char *key, const char *value, char *err, size_t errlen);

struct mt_pricing; /* opaque immutable snapshot */

/**
 * Parses and validates every option of @p opts (NULL = all defaults) into a new snapshot.
 * Maps: a JSON object (at most MT_PRICING_OPTION_MAX bytes) of at most MT_PRICING_MAX_ENTRIES
 * entries, names 1..MT_PRICING_NAME_MAX-1 bytes without control characters, no repeated
 * name, each value a finite number, 0 or in [MT_PRICING_VALUE_MIN, MT_PRICING_VALUE_MAX]
 * (negative values are refused in every map, not only GroupRatio).
 * On success *@p out is owned by the caller (mt_pricing_free()). On failure nothing is
 * written to *@p out and @p err (may be NULL; errlen bytes, always NUL-terminated when
 * errlen > 0) gets one sentence that starts with the option key and names the entry, e.g.
 * `ModelRatio: entry "gpt-4o": value must not be negative (-1)`.
 * Returns CM_OK, CM_ERR_PARSE (not JSON), CM_ERR_INVAL (wrong type or value), CM_ERR_LIMIT
 * (too large, too many entries, name too long), CM_ERR_NOMEM.
 */
int mt_pricing_new(const struct mt_pricing_opts *opts, struct mt_pricing **out, char *err,
                   size_t errlen);

/** Frees a snapshot; NULL is a no-op. No other thread may still be reading it. */
void mt_pricing_free(struct mt_pricing *p);

/* Scalars of a snapshot (NULL @p p gives the defaults). */
double mt_pricing_quota_per_unit(const struct mt_pricing *p);
int64_t mt_pricing_pre_consumed_quota(const struct mt_pricing *p);
int mt_pricing_self_use_mode(const struct mt_pricing *p);
int mt_pricing_display_in_currency(const struct mt_pricing *p);

/**
 * GroupRatio entry @p i in name order (for /api/group/, /api/pricing group_ratio).
 * CM_OK and *@p name (borrowed from @p p, valid while it lives) / *@p ratio set;
 * CM_ERR_NOTFOUND past the end; CM_ERR_INVAL on NULL arguments.
 */
int mt_pricing_group_at(const struct mt_pricing *p, size_t i, const char **name, double *ratio);

/** 1 if @p group is a key of GroupRatio (a token group must be one, spec 4.2), else 0. */
int mt_pricing_has_group(const struct mt_pricing *p, const char *group);

/**
 * NewAPI's FormatMatchingModelName as far as the spec describes it (4.2, 4.4, 5.8):
 * "gpt-4-gizmo-<x>" -> "gpt-4-gizmo-*", "gpt-4o-gizmo-<x>" -> "gpt-4o-gizmo-*",
 * "gemini-2.5-{flash-lite,flash,pro}-thinking-<budget>" -> "<family>-thinking-*".
 * Returns @p model itself when no rule applies, else a static string or @p buf (which needs
 * strlen(model) + 1 bytes; a smaller one leaves the gemini rule out); NULL for NULL @p model.
 * For model_limits checks and the log row's model_name (gizmo names collapsed). Pure.
 */
const char *mt_pricing_match_name(const char *model, char *buf, size_t cap);

/* ---- what applies to a request ---- */

/** Everything that prices one request; filled by mt_pricing_model_price(). */
struct mt_price {
    int use_price;                 /* 1: billed per call with ModelPrice; ratios are only logged */
    int unpriced;                  /* model has neither price nor ratio: model_ratio is 37.5 */
    int group_found;               /* group is in GroupRatio (else ratio 1: caller logs it) */
    double model_price;            /* ModelPrice, USD per call; -1 when billed by ratio */
    double model_ratio;            /* ModelRatio; 0 when billed per call */
    double completion_ratio;       /* operator's CompletionRatio, else built-in default, else 1 */
    double cache_ratio;            /* CacheRatio (exact name only), else 1 */
    double create_cache_ratio;     /* CreateCacheRatio, else 1.25 (5-minute cache writes) */
    double create_cache_ratio_1h;  /* create_cache_ratio * 6 / 3.75 (Claude 1-hour writes) */
    double image_ratio;            /* ImageRatio, else 1 */
    double audio_ratio;            /* AudioRatio, else 1 */
    double audio_completion_ratio; /* AudioCompletionRatio, else 1 */
    double group_ratio;            /* effective: user_group_ratio if set, else GroupRatio, else 1 */
    double user_group_ratio;       /* GroupGroupRatio[user group][group], -1 when none */
    double quota_per_unit;         /* QuotaPerUnit of the snapshot */
};

/**
 * Resolves the price of @p model (the origin name the client asked for, before any channel
 * model_mapping) for a request in @p group (the using group: the token's group, else the
 * user's) by a user of group @p user_group (NULL = same as @p group; only GroupGroupRatio
 * uses it).
 *
 * Name lookup: the exact name first, then NewAPI's normalised name (spec 4.4/5.8:
 * "gpt-4-gizmo-<x>" -> "gpt-4-gizmo-*", "gpt-4o-gizmo-<x>" -> "gpt-4o-gizmo-*",
 * "gemini-2.5-{flash-lite,flash,pro}-thinking-<budget>" -> "...-thinking-*"). CacheRatio
 * is looked up by exact name only (spec 5.1). ModelPrice, if the model has one, takes
 * precedence over ModelRatio. CompletionRatio: the operator's map always wins, then the
 * built-in defaults of spec 5.2 (gpt-5* 8, o1/o3* 4, claude-3* 5, gpt-4o* 4, other gpt-* 2,
 * ...; unlocked), then 1.
 *
 * Returns CM_OK with *@p out filled; in self-use mode an unpriced model is CM_OK with
 * unpriced = 1 and model_ratio = MT_PRICING_UNSET_RATIO. Otherwise an unpriced model is
 * CM_ERR_NOTFOUND (the caller answers 400 model_price_error) and *@p out is STILL filled
 * the same way, so a caller whose user set accept_unset_model_ratio_model may bill it.
 * CM_ERR_INVAL for NULL arguments or an empty model. Pure; never allocates.
 */
int mt_pricing_model_price(const struct mt_pricing *p, const char *model, const char *group,
                           const char *user_group, struct mt_price *out);

/* ---- pre-consumption (spec 5.4) ---- */

struct mt_preconsume {
    int64_t quota; /* amount to reserve (>= 0) */
    int skip;      /* 1: free model with free-model pre-consume off: reserve nothing and skip
                      the wallet checks */
    int clamped;   /* the amount exceeded MT_PRICING_QUOTA_MAX and was clamped to it */
};

/**
 * The reservation for a request priced @p price (from mt_pricing_model_price() on @p p).
 * Ratio billing: preTokens = max(@p prompt_estimate, PreConsumedQuota) + @p max_tokens
 * (max_tokens / max_completion_tokens / max_output_tokens; 0 = not given), saturating;
 * quota = int(preTokens x (ModelRatio x GroupRatio)), float64 then truncated, as NewAPI.
 * Per-call price: quota = int(ModelPrice x QuotaPerUnit x GroupRatio), truncated.
 * Results above MT_PRICING_QUOTA_MAX are clamped (clamped = 1).
 * CM_OK; CM_ERR_INVAL (NULL, negative or > MT_PRICING_QUOTA_MAX counts, a price with
 * non-finite or negative members). Pure.
 */
int mt_pricing_preconsume(const struct mt_pricing *p, const struct mt_price *price,
                          int64_t prompt_estimate, int64_t max_tokens, struct mt_preconsume *out);

/**
 * NewAPI's trust bypass (spec 5.4): 1 when nothing should be pre-charged because the user's
 * quota exceeds 10 x QuotaPerUnit and the token is unlimited or its remain_quota also exceeds
 * it; else 0. Wallet funding only (never for subscriptions: the caller's decision). Pure.
 */
int mt_pricing_trust_bypass(const struct mt_pricing *p, int64_t user_quota, int token_unlimited,
                            int64_t token_remain_quota);

/* ---- settlement (spec 5.5) ---- */

enum mt_usage_semantic {
    MT_USAGE_OPENAI = 0, /* prompt_tokens includes cached, cache-creation and image tokens */
    MT_USAGE_ANTHROPIC   /* /v1/messages: input_tokens excludes cache reads and writes */
};

/** Token usage of one request as reported upstream (or counted locally). All counts >= 0. */
struct mt_usage {
    int64_t prompt_tokens;            /* P */
    int64_t completion_tokens;        /* C */
    int64_t cached_tokens;            /* K: prompt_tokens_details.cached_tokens (cache reads) */
    int64_t cache_creation_tokens;    /* W: cache writes, all TTLs */
    int64_t cache_creation_tokens_1h; /* the part of W written with a 1-hour TTL (<= W) */
    int64_t image_tokens;             /* I: prompt_tokens_details.image_tokens */
    int64_t audio_prompt_tokens;      /* audio part of P (<= P) */
    int64_t audio_completion_tokens;  /* audio part of C (<= C) */
    enum mt_usage_semantic semantic;
    int per_call;    /* 1 for per-call endpoints (images): no "zero tokens -> 0" rule */
    int local_count; /* counts are our estimate (upstream sent none): logged */
};

/** The settled charge, with what the log row needs. */
struct mt_charge {
    int64_t quota;         /* final quota: counters move by this and the log row shows it */
    int no_tokens;         /* token-billed and no tokens: quota 0, update no counters, log
                              MT_PRICING_NOTE_NO_TOKENS */
    int minimum_applied;   /* the formula gave <= 0 with a non-zero ratio: raised to 1 */
    int clamped;           /* exact result above MT_PRICING_QUOTA_MAX: clamped to it */
    int audio;             /* the audio formula was used */
    struct mt_price price; /* copy of the price it was settled with */
    struct mt_usage usage; /* copy of the usage */
};

/**
 * The final quota of a request (spec 5.5), computed exactly in decimal as NewAPI does with
 * shopspring/decimal: every ratio enters as the shortest decimal that reads back to its
 * float64 (decimal.NewFromFloat), products and sums are exact, and the result is rounded
 * half away from zero (Round(0)) then truncated to an integer (IntPart).
 *
 *   ratio billing:  base = P - K - W - I (OpenAI semantic) or P - I (Anthropic semantic)
 *                   quota = (base + K x CacheRatio + I x ImageRatio + W5m x CreateCacheRatio
 *                            + W1h x CreateCacheRatio1h + C x CompletionRatio)
 *                           x ModelRatio x GroupRatio
 *   audio (any audio tokens): quota = ((P - Ain) + (C - Aout) x CompletionRatio + Ain x
 *                   AudioRatio + Aout x AudioRatio x AudioCompletionRatio) x ModelRatio x
 *                   GroupRatio   (calculateAudioQuota; cache and image tokens not priced)
 *   per-call price: quota = ModelPrice x QuotaPerUnit x GroupRatio
 *
 * Then: a token-billed request (not per_call) with no tokens (P + C == 0; for the Anthropic
 * semantic P + K + W + C == 0) costs 0 (no_tokens = 1); otherwise, billed by ratio with
 * ModelRatio x GroupRatio != 0, a result <= 0 becomes 1 (minimum_applied = 1). No minimum for
 * per-call prices. A result above MT_PRICING_QUOTA_MAX is clamped (clamped = 1).
 * CM_OK with *@p out filled; CM_ERR_INVAL for NULL arguments, negative counts, counts above
 * MT_PRICING_QUOTA_MAX, parts larger than their whole (W1h > W, audio > P or C), or a price
 * whose members are negative, non-finite, non-zero below MT_PRICING_VALUE_MIN or above
 * MT_PRICING_VALUE_MAX (2x for create_cache_ratio_1h). Pure; no allocation.
 */
int mt_pricing_settle(const struct mt_price *price, const struct mt_usage *u,
                      struct mt_charge *out);

/** Request facts for the log row's `other` that pricing does not know. All borrowed. */
struct mt_other_ctx {
    int64_t frt_ms;             /* ms to the first response byte (0 when not measured) */
    const char *request_path;   /* "/v1/chat/completions"; NULL = omitted */
    const int64_t *use_channel; /* channel ids tried, in order (rendered as strings) */
    size_t n_use_channel;
    int is_multi_key; /* channel has several keys: adds multi_key_index */
    int multi_key_index;
    const char *upstream_model_name; /* after model_mapping; NULL = not mapped */
};

/**
 * Builds the consume log's `other` object (spec 5.8, key names as NewAPI): model_ratio,
 * group_ratio, completion_ratio, cache_tokens, cache_ratio, model_price (-1 for ratio
 * billing), user_group_ratio (-1 when none), frt, admin_info {use_channel: ["7"],
 * is_multi_key + multi_key_index when multi-key, local_count_tokens when counted locally},
 * request_path; and when they apply: cache_creation_tokens / cache_creation_ratio (plus the
 * _5m/_1h split when there are 1-hour writes), image + image_ratio, audio_ratio /
 * audio_completion_ratio / audio_input / audio_output (audio formula), usage_semantic
 * "anthropic", is_model_mapped + upstream_model_name. The caller may add more keys
 * (stream_status, reasoning_effort ...) before printing it with cm_json_print().
 * @p ctx may be NULL. *@p out is a new object owned by the caller (cJSON_Delete()).
 * CM_OK, CM_ERR_INVAL (NULL charge/out), CM_ERR_NOMEM (nothing is leaked).
 */
int mt_pricing_other_json(const struct mt_charge *c, const struct mt_other_ctx *ctx, cJSON **out);

/* ---- local token count (spec 5.6) ---- */

/**
 * Estimates the tokens of @p len bytes of UTF-8 text at @p text (NUL bytes allowed; NULL
 * only with len 0), for usage fallback when the upstream reports none. Not a real
 * tokenizer (NewAPI's tiktoken is not reproduced); an approximation of BPE behaviour:
 *   - a run of letters (ASCII letters, '_', and non-ASCII characters that are not CJK)
 *     costs ceil(bytes / 6), at least 1 (common English words are one token each);
 *   - a run of ASCII digits costs ceil(digits / 3) (BPE splits numbers in threes);
 *   - each CJK ideograph, kana, Hangul syllable or fullwidth form costs 1;
 *   - each other ASCII character (punctuation, symbols, control bytes) costs 1;
 *   - spaces and tabs are free (BPE glues them to the next word); each run of line breaks
 *     costs 1;
 *   - each byte of invalid UTF-8 costs 1.
 * Example: "Hello, world!" -> 4, "你好世界" -> 4, "1234567" -> 3.
 * Deterministic, saturates at MT_PRICING_QUOTA_MAX. Add MT_PRICING_TOOL_CALL_TOKENS per tool
 * call yourself. Pure.
 */
int64_t mt_pricing_estimate_tokens(const char *text, size_t len);

/* ---- display (spec 5.8, 6.2) ---- */

/** @p quota in USD: quota / QuotaPerUnit. */
double mt_pricing_quota_to_usd(const struct mt_pricing *p, int64_t quota);

/**
 * @p usd in quota: usd x QuotaPerUnit rounded half away from zero. CM_OK; CM_ERR_INVAL when
 * @p usd is not finite or the result is beyond +-MT_PRICING_QUOTA_MAX, or NULL @p out.
 */
int mt_pricing_usd_to_quota(const struct mt_pricing *p, double usd, int64_t *out);

/**
 * NewAPI's LogQuota text for log contents: "＄0.041250 额度" (fullwidth dollar, 6 decimals)
 * when DisplayInCurrencyEnabled, else "20625 点额度". Written NUL-terminated into @p buf;
 * CM_ERR_LIMIT when @p cap is too small (buf then holds a truncated string), CM_ERR_INVAL
 * for NULL @p buf or cap 0.
 */
int mt_pricing_log_quota(const struct mt_pricing *p, int64_t quota, char *buf, size_t cap);

#endif
