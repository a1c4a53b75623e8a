/* SPDX-License-Identifier: MIT */
/*
 * openai_compat.h - the OpenAI-Chat-style upstreams: an `openai-compatibility` entry of
 * config.yaml (spec cliproxyapi.md 3.6), plus what Qwen and iFlow share with it: the
 * request body rule for streams, the usage reader and the Retry-After / rate-limit-reset
 * header parsing. No I/O; the relay sends what cp_compat_build() describes.
 * Thread-safety: every function is pure over its arguments (a tree has one owner).
 */
#ifndef CP_PROVIDERS_OPENAI_COMPAT_H
#define CP_PROVIDERS_OPENAI_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/json.h"
#include "providers/upreq.h"
#include "scheduler.h"
#include "translate/translate.h"

#define CP_COMPAT_UA "cli-proxy-openai-compat"

/**
 * Body rule of spec 3.6 for the Chat Completions request tree @p chat (modified in
 * place): when @p stream, "stream_options"."include_usage" is set to true (a
 * "stream_options" that is not an object is replaced). The model is left to the caller.
 * CM_OK, CM_ERR_INVAL (@p chat not an object), CM_ERR_NOMEM (@p chat may then hold a
 * partial change: discard it).
 */
int cp_compat_prepare(cJSON *chat, bool stream);

/**
 * Builds POST {@p base_url}/chat/completions (one trailing '/' of the base ignored) with
 * Content-Type: application/json, Authorization: Bearer <@p api_key> (left out when
 * @p api_key is NULL or ""), User-Agent: CP_COMPAT_UA, Accept: text/event-stream when
 * @p stream (application/json otherwise), then the @p n_hdrs extra headers
 * (@p hdr_names[i]: @p hdr_values[i], the entry's `headers`; each replaces a header of
 * the same name). Everything is borrowed for the call. CM_OK and *@p out (caller cleans
 * up with cp_upreq_cleanup(); it holds a secret: never log it), CM_ERR_INVAL (NULL or
 * empty base, NULL arrays with n > 0), CM_ERR_LIMIT (too many headers), CM_ERR_NOMEM.
 * *@p out is written only on CM_OK.
 */
int cp_compat_build(const char *base_url, const char *api_key, bool stream,
                    const char *const *hdr_names, const char *const *hdr_values, size_t n_hdrs,
                    struct cp_upreq *out);

/**
 * An upstream answer as a scheduler outcome at wall time @p now_s. @p body (may be NULL),
 * @p retry_after (the Retry-After header) and @p reset_requests (the
 * x-ratelimit-reset-requests header, a Go-style duration such as "1s", "6m0s", "20ms")
 * are borrowed and may be NULL.
 *  - 429: hint = Retry-After (see cp_openai_retry_after()), else x-ratelimit-reset-requests
 *    (rounded up to whole seconds, >= 1); none -> no hint (the scheduler's ladder);
 *  - 400 and 422 -> request-scoped (no cooldown, no failover);
 *  - everything else (401, 403, 404, 5xx ...) keeps its status for the scheduler.
 * Pure.
 */
void cp_compat_outcome(long status, const char *body, size_t len, const char *retry_after,
                       const char *reset_requests, int64_t now_s, struct cp_sched_outcome *o);

/**
 * A Retry-After value: delay seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00
 * GMT", IMF-fixdate) turned into seconds from @p now_s. CM_OK and *@p out >= 0 (a date
 * in the past gives 0); CM_ERR_INVAL (NULL, empty or neither form). Pure.
 */
int cp_openai_retry_after(const char *v, int64_t now_s, int64_t *out);

/**
 * A Go-style duration ("1h2m3.5s", "6m0s", "20ms", "1.5s") rounded up to whole seconds
 * (> 0 durations give at least 1). CM_OK, CM_ERR_INVAL (malformed or overflowing). Pure.
 */
int cp_openai_duration_s(const char *v, int64_t *out);

/**
 * Reads the "usage" object of @p obj (borrowed): a chat.completion.chunk or a whole
 * chat.completion. input = prompt_tokens, else input_tokens; output = completion_tokens,
 * else output_tokens; total = total_tokens, else input + output; cached =
 * prompt_tokens_details.cached_tokens (else input_tokens_details.cached_tokens);
 * reasoning = completion_tokens_details.reasoning_tokens (else
 * output_tokens_details.reasoning_tokens). Counts that are absent, not non-negative
 * integers, or null read as 0. CM_OK and *@p u filled; CM_ERR_NOTFOUND when @p obj has no
 * usage object (a null usage too; *@p u untouched); CM_ERR_INVAL for NULL arguments.
 */
int cp_openai_usage(const cJSON *obj, struct cp_tr_usage *u);

#endif
