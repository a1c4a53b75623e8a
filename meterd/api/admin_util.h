/* SPDX-License-Identifier: MIT */
/*
 * admin_util.h - the pure pieces of the channel, option, log and redemption admin routes
 * (spec newapi.md 3.5, 3.6, 4.6, 6.3), kept apart so they are unit-tested without a
 * server: comma lists, batch key splitting, option values from JSON, secret-looking option
 * keys, the channel test (URL, model, key, verdict) and the auto-disable policy, strict
 * integer parsing, UTF-8 length, control characters in text and a NULL-tolerant JSON
 * string setter. No I/O, no globals, no logging.
 */
#ifndef MT_API_ADMIN_UTIL_H
#define MT_API_ADMIN_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define MT_BATCH_KEYS_MAX 1000 /* most channels one batch create makes */

/**
 * A comma-separated list as meterd stores it (channels.models / channels.group): entries
 * trimmed of blanks, empty and repeated entries dropped, order kept, joined with ",".
 * "gpt-4o, gpt-4o,,x " -> "gpt-4o,x". *@p out is cm_malloc'd (possibly ""). CM_OK,
 * CM_ERR_INVAL (NULL), CM_ERR_NOMEM.
 */
int mt_csv_normalize(const char *in, char **out);

/**
 * The keys of a batch channel create: a JSON array (its string elements as they are, its
 * object elements printed as JSON: Vertex service-account keys), else one key per line
 * (trimmed, "\r" tolerated, empty lines skipped). *@p keys (@p n entries) is freed with
 * mt_keys_free(). CM_OK; CM_ERR_NOTFOUND (no key at all); CM_ERR_LIMIT (more than
 * MT_BATCH_KEYS_MAX); CM_ERR_INVAL (an array element of another type); CM_ERR_NOMEM.
 */
int mt_keys_split(const char *in, char ***keys, size_t *n);
/** Frees (and zeroes) what mt_keys_split() returned; NULL ok. */
void mt_keys_free(char **keys, size_t n);

/**
 * The stored text of an option value sent to PUT /api/option/: a string as it is,
 * true/false as "true"/"false", a number as its shortest decimal ("5", "0.1"). null, an
 * object or an array is CM_ERR_INVAL with a sentence in @p err naming @p key (maps and
 * lists must arrive JSON-encoded in a string; NewAPI stored Go's "map[...]" rendering).
 * *@p out is cm_malloc'd. CM_OK, CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int mt_option_value_from_json(const char *key, const cJSON *v, char **out, char *err,
                              size_t errlen);

/**
 * 1 if option @p key holds a secret that GET /api/option/ leaves out, as NewAPI does:
 * a name ending in "Token", "Secret", "Key", "secret" or "api_key" (SMTPToken, EpayKey,
 * StripeApiSecret, ...). Else 0.
 */
int mt_option_is_secret(const char *key);

/** NewAPI's default base URL of channel type @p type (constant.ChannelBaseURLs), or NULL. */
const char *mt_channel_default_base(int type);

/** How a channel test talks to the upstream. */
enum mt_test_api {
    MT_TEST_OPENAI = 0, /* POST {base}/v1/chat/completions, Authorization: Bearer <key> */
    MT_TEST_ANTHROPIC,  /* POST {base}/v1/messages, x-api-key + anthropic-version (type 14) */
};
enum mt_test_api mt_channel_test_api(int type);

/**
 * The URL a test of a channel of @p type with @p base_url (NULL/"": the type's default)
 * posts to, into @p buf (@p cap bytes): the base without trailing '/', then the path of
 * mt_channel_test_api(). CM_OK; CM_ERR_NOTFOUND (no base URL and no default);
 * CM_ERR_INVAL (not http:// or https://); CM_ERR_LIMIT (does not fit).
 */
int mt_channel_test_url(int type, const char *base_url, char *buf, size_t cap);

/**
 * The model a channel test asks for: @p arg (the ?model= of the request) if not empty,
 * else @p test_model, else the first entry of @p models (comma list, trimmed), else
 * "gpt-4o-mini" (NewAPI's fallback). Into @p buf; CM_OK or CM_ERR_LIMIT.
 */
int mt_channel_test_model(const char *arg, const char *test_model, const char *models, char *buf,
                          size_t cap);

/**
 * The key a test uses from a channel's key field: the first key of a multi-key channel
 * (first element of a JSON array, else first non-empty line), trimmed. *@p out is
 * cm_malloc'd (zero it before freeing). CM_OK; CM_ERR_NOTFOUND (no key); CM_ERR_INVAL
 * (control characters in it: it would break the request's header line); CM_ERR_NOMEM.
 */
int mt_channel_first_key(const char *key, char **out);

/**
 * The request body of a test of @p model for @p api: one user message "hi", max_tokens 16.
 * *@p out is cm_malloc'd, length in *@p len. CM_OK, CM_ERR_NOMEM.
 */
int mt_channel_test_body(enum mt_test_api api, const char *model, char **out, size_t *len);

/**
 * Whether an upstream answer to a test is a pass: a 2xx status with a JSON object body
 * that carries no "error" member. 1 pass, 0 fail; on a fail @p msg gets one sentence
 * (the upstream's error.message when there is one, else the status and the start of the
 * body, control characters replaced). @p status 0 means no answer (@p transport says why).
 */
int mt_channel_test_verdict(long status, const char *body, size_t len, const char *transport,
                            char *msg, size_t cap);

/** The automatic disable policy of spec 4.6, from the options in force. */
struct mt_disable_policy {
    int enabled;              /* AutomaticDisableChannelEnabled */
    const char *status_codes; /* AutomaticDisableStatusCodes ("401"); NULL: "401" */
    const char *keywords;     /* AutomaticDisableKeywords, newline-separated; NULL: defaults */
    double threshold_s;       /* ChannelDisableThreshold (s); 0: never for slowness */
};

/** NewAPI's default AutomaticDisableKeywords (newline-separated). */
extern const char mt_disable_keywords_default[];

/**
 * Whether a failed (or slow) test should auto-disable the channel: the policy is enabled
 * and the answer's @p status is in the status codes, or @p msg contains a keyword (case
 * insensitive), or the test took longer than the threshold (@p elapsed_ms). A channel
 * whose auto_ban is 0 is never disabled (the caller checks that). 1 or 0.
 */
int mt_channel_should_disable(const struct mt_disable_policy *p, int passed, long status,
                              const char *msg, int64_t elapsed_ms);

/**
 * Strict decimal integer (optional leading '-'), all of @p s. CM_OK with *@p out;
 * CM_ERR_NOTFOUND for NULL or ""; CM_ERR_INVAL otherwise.
 */
int mt_parse_i64(const char *s, int64_t *out);

/** Characters (code points) of UTF-8 text @p s, or -1 when it is not valid UTF-8. */
long mt_utf8_len(const char *s);

/** 1 if @p s holds a control character (below 0x20, or DEL), else 0. */
int mt_has_ctl(const char *s);

/** cm_json_set_string() of @p v, NULL stored as "". CM_OK or CM_ERR_NOMEM. */
int mt_json_set_str(cJSON *o, const char *key, const char *v);

#endif
