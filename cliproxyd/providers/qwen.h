/* SPDX-License-Identifier: MIT */
/*
 * qwen.h - the Qwen Code OAuth upstream (spec cliproxyapi.md 3.4): base URL from the
 * credential's resource_url, the body rules (one leading cached system message,
 * include_usage on streams), the fixed QwenCode headers, the quota error mapping, and
 * the local limiter of 60 requests per sliding 60 s per credential. No I/O; time is
 * passed in. The usage of an answer is read with cp_openai_usage() (openai_compat.h).
 */
#ifndef CP_PROVIDERS_QWEN_H
#define CP_PROVIDERS_QWEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/json.h"
#include "providers/upreq.h"
#include "scheduler.h"

#define CP_QWEN_DEFAULT_BASE "https://portal.qwen.ai/v1"
#define CP_QWEN_UA "QwenCode/0.14.2 (darwin; arm64)"
#define CP_QWEN_LIMIT 60              /* requests per window and credential */
#define CP_QWEN_WINDOW_MS (60 * 1000) /* sliding window */

/**
 * The API base for a credential (spec 3.4(d)): @p resource_url (e.g. "portal.qwen.ai")
 * trimmed of blanks, "https://" added when it has no scheme, trailing '/' removed and
 * "/v1" appended unless it already ends so. NULL or blank -> @p default_base (NULL:
 * CP_QWEN_DEFAULT_BASE) with trailing '/' removed. *@p out is a new string the caller
 * frees with cm_free(). CM_OK, CM_ERR_INVAL (NULL out), CM_ERR_NOMEM.
 */
int cp_qwen_base(const char *resource_url, const char *default_base, char **out);

/**
 * Body rules for the Chat Completions tree @p chat (modified in place): every "system"
 * and "developer" message is removed from "messages" and one message
 * {"role":"system","content":[{"type":"text","text":T,"cache_control":{"type":"ephemeral"}}]}
 * is put first, T = the text of those messages in order (string content, or the "text"
 * of their text parts), non-empty ones joined with "\n\n" ("" when none). When
 * @p stream, stream_options.include_usage = true. CM_OK; CM_ERR_INVAL (@p chat not an
 * object, "messages" missing or not an array, a system content neither string, array
 * nor null); CM_ERR_NOMEM (the tree may be partly changed: discard it).
 */
int cp_qwen_prepare(cJSON *chat, bool stream);

/**
 * Builds POST {@p base}/chat/completions with every fixed header of spec 3.4(d)
 * (Content-Type, Authorization: Bearer <@p access_token>, User-Agent and
 * X-Dashscope-Useragent CP_QWEN_UA, X-Dashscope-Authtype qwen-oauth,
 * X-Dashscope-Cachecontrol enable, X-Stainless-* (Runtime-Version v22.17.0, Lang js,
 * Os MacOS, Arch arm64, Runtime node, Retry-Count 0, Package-Version 5.11.0),
 * Accept-Language *, Accept-Encoding "gzip, deflate" (the sender must decode),
 * Sec-Fetch-Mode cors, Connection keep-alive, Accept text/event-stream or
 * application/json), then the @p n_hdrs extra headers (the auth file's "headers"), each
 * replacing one of the same name. Borrowed for the call. CM_OK and *@p out (caller
 * cleans up with cp_upreq_cleanup(); holds a secret), CM_ERR_INVAL (no base or token),
 * CM_ERR_LIMIT, CM_ERR_NOMEM; *@p out written only on CM_OK.
 */
int cp_qwen_build(const char *base, const char *access_token, bool stream,
                  const char *const *hdr_names, const char *const *hdr_values, size_t n_hdrs,
                  struct cp_upreq *out);

/**
 * An upstream answer as a scheduler outcome at wall time @p now_s (spec 3.4(e)): a 403
 * or 429 whose error.code or error.type is insufficient_quota / quota_exceeded, or whose
 * error.message contains "insufficient_quota", "quota exceeded" or "free allocated quota
 * exceeded" (ASCII case ignored), becomes 429; a 429 takes its hint from @p retry_after
 * (seconds or HTTP date; may be NULL); 400 and 422 are request-scoped; anything else
 * keeps its status. Pure.
 */
void cp_qwen_outcome(long status, const char *body, size_t len, const char *retry_after,
                     int64_t now_s, struct cp_sched_outcome *o);

/**
 * The local limiter: CP_QWEN_LIMIT requests per sliding CP_QWEN_WINDOW_MS per credential
 * id. Thread-safe (one mutex, short sections). Memory: one entry (id + 60 timestamps)
 * per credential that made a request within the last window; idle ones are forgotten
 * on the next take.
 */
struct cp_qwen_limiter;

/** New limiter; *@p out freed with cp_qwen_limiter_free(). CM_OK, CM_ERR_INVAL, CM_ERR_NOMEM. */
int cp_qwen_limiter_new(struct cp_qwen_limiter **out);

/** Frees @p l. NULL is a no-op. No other thread may be using it. */
void cp_qwen_limiter_free(struct cp_qwen_limiter *l);

/**
 * Takes one request slot for @p cred_id (borrowed) at @p now_ms (a monotonic clock, ms):
 * CM_OK when fewer than CP_QWEN_LIMIT requests were taken in (now - window, now], and the
 * request counts; CM_ERR_LIMIT otherwise, with *@p retry_after_s (may be NULL) = whole
 * seconds until the oldest of them leaves the window, rounded up, at least 1 (nothing
 * counted). CM_ERR_INVAL (NULL l / id), CM_ERR_NOMEM (a new entry; not counted).
 */
int cp_qwen_limiter_take(struct cp_qwen_limiter *l, const char *cred_id, int64_t now_ms,
                         int64_t *retry_after_s);

/** Number of credentials the limiter currently tracks (for tests and metrics). */
size_t cp_qwen_limiter_size(struct cp_qwen_limiter *l);

/**
 * The local 429 body: {"error":{"code":"rate_limit_exceeded","message":"Qwen rate limit:
 * 60 requests/minute exceeded, retry after Ns","type":"rate_limit_exceeded"}} with N =
 * @p retry_after_s. *@p out (caller frees with cm_free()) and *@p len (may be NULL).
 * CM_OK, CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_qwen_limit_body(int64_t retry_after_s, char **out, size_t *len);

#endif
