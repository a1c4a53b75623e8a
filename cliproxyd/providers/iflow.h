/* SPDX-License-Identifier: MIT */
/*
 * iflow.h - the iFlow upstream (spec cliproxyapi.md 3.5(d)(e), 5.1): the signed request
 * (Bearer API key, session-id, x-iflow-timestamp, x-iflow-signature = hex
 * HMAC-SHA256(api_key, "iFlow-Cli:<session-id>:<timestamp>")), the body rules (placeholder
 * tool for empty tool lists on streams, reasoning_effort -> chat_template_kwargs) and
 * error classification. No I/O except cp_iflow_session_id() (random bytes); time is
 * passed in. The usage of an answer is read with cp_openai_usage() (openai_compat.h).
 */
#ifndef CP_PROVIDERS_IFLOW_H
#define CP_PROVIDERS_IFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/json.h"
#include "providers/upreq.h"
#include "scheduler.h"

#define CP_IFLOW_DEFAULT_BASE "https://apis.iflow.cn/v1"
#define CP_IFLOW_UA "iFlow-Cli"
#define CP_IFLOW_SESSION_SIZE 45 /* "session-" + 36-char UUID + NUL */
#define CP_IFLOW_SIG_SIZE 65     /* 64 hex digits + NUL */

/** "session-<uuid v4>" from 16 given bytes @p rnd (version/variant bits set). Pure. */
void cp_iflow_session_id_from(const unsigned char rnd[16], char out[CP_IFLOW_SESSION_SIZE]);

/** "session-<uuid v4>" from fresh random bytes. CM_OK, CM_ERR_INTERNAL (no randomness). */
int cp_iflow_session_id(char out[CP_IFLOW_SESSION_SIZE]);

/**
 * x-iflow-signature: lowercase hex HMAC-SHA256 with key @p api_key over
 * "iFlow-Cli:<@p session_id>:<@p ts_ms>". CM_OK, CM_ERR_INVAL (NULL / empty key or
 * session), CM_ERR_LIMIT (session id longer than 256 bytes). Pure.
 */
int cp_iflow_signature(const char *api_key, const char *session_id, int64_t ts_ms,
                       char out[CP_IFLOW_SIG_SIZE]);

/**
 * Builds POST {@p base}/chat/completions with Content-Type: application/json,
 * Authorization: Bearer <@p api_key> (the user-info API key, not the OAuth token),
 * User-Agent: iFlow-Cli, session-id: @p session_id, x-iflow-timestamp: @p now_ms (unix
 * ms), x-iflow-signature (cp_iflow_signature()), Accept: text/event-stream or
 * application/json, then the @p n_hdrs extra headers (each replacing one of the same
 * name). Borrowed for the call. CM_OK and *@p out (caller cleans up with
 * cp_upreq_cleanup(); holds a secret), CM_ERR_INVAL (no base, key or session id),
 * CM_ERR_LIMIT, CM_ERR_NOMEM; *@p out written only on CM_OK.
 */
int cp_iflow_build(const char *base, const char *api_key, bool stream, const char *session_id,
                   int64_t now_ms, const char *const *hdr_names, const char *const *hdr_values,
                   size_t n_hdrs, struct cp_upreq *out);

/**
 * Body rules for the Chat Completions tree @p chat (modified in place): when @p stream
 * and "tools" is an empty array, it gets one placeholder
 * {"type":"function","function":{"name":"noop","description":"Placeholder tool",
 * "parameters":{"type":"object","properties":{}}}}; a string "reasoning_effort" is
 * removed and becomes chat_template_kwargs.enable_thinking (false for "none", true
 * otherwise; a chat_template_kwargs that is not an object is replaced). CM_OK,
 * CM_ERR_INVAL (not an object), CM_ERR_NOMEM (tree may be partly changed: discard it).
 */
int cp_iflow_prepare(cJSON *chat, bool stream);

/**
 * An upstream answer as a scheduler outcome (spec 3.5(e): status passed through): 400
 * and 422 request-scoped; a 429 takes its hint from @p retry_after (seconds or HTTP
 * date, may be NULL) at wall time @p now_s. @p body is not inspected. Pure.
 */
void cp_iflow_outcome(long status, const char *body, size_t len, const char *retry_after,
                      int64_t now_s, struct cp_sched_outcome *o);

#endif
