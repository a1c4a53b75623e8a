/* SPDX-License-Identifier: MIT */
/*
 * gemini.h - the Gemini upstreams: Gemini CLI (Google OAuth on Code Assist, cloudcode-pa;
 * spec cliproxyapi.md 3.3) and gemini-api-key entries (generativelanguage; 3.6). What a
 * call must carry (URL, headers, body envelope and defaults), how its errors drive the
 * scheduler (3.3(e)), the usage of a Gemini answer, and the model list (3.3(f)).
 *
 * Typical use by the relay, per attempt:
 *   cp_tr_chat_gemini_request(chat, &req, &base, &err);    (or a Gemini client's body)
 *   cp_gemini_body(req, base, project_or_NULL, action, &body, &len);
 *   cp_gemini_build(&(struct cp_gemini_target){...}, &up);
 *   send; on error cp_gemini_outcome(); answers through chat_gemini's stream/aggregate,
 *   or for Gemini clients cp_gemini_unwrap() / cp_gemini_usage().
 * No I/O, no clock: every function is pure over its arguments.
 */
#ifndef CP_PROVIDERS_GEMINI_H
#define CP_PROVIDERS_GEMINI_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "providers/upreq.h"
#include "scheduler.h"
#include "translate/translate.h"

#define CP_GEMINI_CLI_BASE "https://cloudcode-pa.googleapis.com"
#define CP_GEMINI_API_BASE "https://generativelanguage.googleapis.com"
#define CP_GEMINI_CLI_VERSION "0.31.0" /* [v6] Gemini CLI version we present */
#define CP_GEMINI_API_CLIENT "google-genai-sdk/1.41.0 gl-node/v22.19.0"
#define CP_GEMINI_SKIP_SIGNATURE "skip_thought_signature_validator"

/** Which call. */
enum cp_gemini_action {
    CP_GEMINI_GENERATE = 0, /* :generateContent */
    CP_GEMINI_STREAM,       /* :streamGenerateContent?alt=sse */
    CP_GEMINI_COUNT         /* :countTokens */
};

/** The models Gemini CLI serves (spec 3.3(f)), in the spec's order. */
extern const char *const cp_gemini_models[];
extern const size_t cp_gemini_models_n;

/**
 * Turns the GenerateContentRequest @p request (consumed: deleted in every case) into the
 * bytes to send in *@p out (caller frees with cm_free(); NUL-terminated, *@p len bytes):
 *  - for GENERATE / STREAM, "safetySettings" is added when absent: HARM_CATEGORY_HARASSMENT,
 *    HARM_CATEGORY_HATE_SPEECH, HARM_CATEGORY_SEXUALLY_EXPLICIT,
 *    HARM_CATEGORY_DANGEROUS_CONTENT with threshold OFF, HARM_CATEGORY_CIVIC_INTEGRITY
 *    BLOCK_NONE (COUNT gets none);
 *  - every {"functionCall":...} part of contents[].parts without a thoughtSignature gets
 *    "thoughtSignature": CP_GEMINI_SKIP_SIGNATURE;
 *  - @p project not NULL (Gemini CLI; "" is allowed): the body is wrapped as
 *    {"model": @p model, "project": @p project, "request": <body>}, for COUNT as
 *    {"request": <body>} only; @p project NULL (API key): the body as is (the model goes
 *    in the URL).
 * CM_OK; CM_ERR_INVAL (@p request not an object, NULL @p out / @p len, no @p model for a
 * CLI generate/stream); CM_ERR_NOMEM. Outputs written only on CM_OK.
 */
int cp_gemini_body(cJSON *request, const char *model, const char *project,
                   enum cp_gemini_action action, char **out, size_t *len);

/** Where and how to call; everything borrowed. */
struct cp_gemini_target {
    const char *base;   /* NULL or "": CP_GEMINI_CLI_BASE, or CP_GEMINI_API_BASE with api_key;
                           a trailing '/' is ignored */
    int api_key;        /* 1: a gemini-api-key entry; 0: Gemini CLI OAuth */
    const char *secret; /* the access token (CLI) or the API key */
    const char *model;  /* base model (no suffix): URL (API key) and User-Agent (CLI) */
    enum cp_gemini_action action;
    const char *const *hdr_names;  /* extra headers, applied last (replace ours of the */
    const char *const *hdr_values; /* same name, case-insensitive) */
    size_t n_hdrs;
};

/**
 * Builds the request for @p t:
 *  - CLI: POST {base}/v1internal:generateContent | :streamGenerateContent?alt=sse |
 *    :countTokens with Content-Type: application/json, Authorization: Bearer <secret>,
 *    Accept: text/event-stream (STREAM) or application/json, User-Agent:
 *    "GeminiCLI/0.31.0/<model> (<os>; <arch>)" (os linux / darwin / win32 and arch x64 /
 *    arm64 / x86 of this build), X-Goog-Api-Client: CP_GEMINI_API_CLIENT.
 *  - API key: POST {base}/v1beta/models/<model>:generateContent |
 *    :streamGenerateContent?alt=sse | :countTokens with Content-Type, x-goog-api-key:
 *    <secret> (no Authorization), Accept as above.
 * CM_OK; CM_ERR_INVAL (NULL @p t / @p out, empty secret, empty model or one with
 * characters other than [A-Za-z0-9._-]); CM_ERR_LIMIT (too many headers); CM_ERR_NOMEM.
 * *@p out (caller cleans up with cp_upreq_cleanup()) is written only on CM_OK and holds
 * a secret: never log it.
 */
int cp_gemini_build(const struct cp_gemini_target *t, struct cp_upreq *out);

/**
 * Turns an upstream answer (status, error body @p body / @p len, may be NULL; a JSON
 * object or an array whose first element is one) into a scheduler outcome. @p now_s is
 * unused (Google sends relative delays) and kept for the common provider shape.
 *  - 429: hint = error.details[@type "type.googleapis.com/google.rpc.RetryInfo"].retryDelay,
 *    else details[@type "...google.rpc.ErrorInfo"].metadata.quotaResetDelay (Go durations
 *    such as "30s", "0.847655010s", "373.801628ms", "1h2m3s": rounded up to whole seconds,
 *    at least 1), else @p retry_after (decimal seconds; NULL = none); none -> the ladder;
 *  - 400 with error.status INVALID_ARGUMENT or FAILED_PRECONDITION -> request-scoped,
 *    except ErrorInfo reason API_KEY_INVALID -> status 401 (a bad key, not a bad request);
 *  - everything else unchanged: the scheduler maps the status (403 PERMISSION_DENIED
 *    -> 30 min).
 */
void cp_gemini_outcome(long status, const char *body, size_t len, const char *retry_after,
                       int64_t now_s, struct cp_sched_outcome *o);

/**
 * Parses a Go duration @p s ("1h2m3.5s", "373.801628ms"; units h, m, s, ms, us, µs, ns)
 * and rounds it up to whole seconds in *@p secs. CM_OK, CM_ERR_PARSE (empty, no unit,
 * unknown unit, negative), CM_ERR_INVAL (NULL). Values above ~31 years are capped.
 */
int cp_gemini_duration(const char *s, int64_t *secs);

/**
 * The GenerateContentResponse of an answer @p resp (borrowed): its "response" member when
 * Gemini CLI wrapped it, else @p resp itself. *@p inner borrows from @p resp. CM_OK,
 * CM_ERR_INVAL (@p resp not an object, NULL @p inner).
 */
int cp_gemini_unwrap(cJSON *resp, cJSON **inner);

/**
 * Reads usageMetadata of the answer @p resp (raw or wrapped; borrowed) into *@p u:
 * input = promptTokenCount, output = candidatesTokenCount + thoughtsTokenCount,
 * reasoning = thoughtsTokenCount, cached = cachedContentTokenCount, total =
 * totalTokenCount (in + out when 0). CM_OK, CM_ERR_NOTFOUND (no usageMetadata),
 * CM_ERR_INVAL (NULL arguments).
 */
int cp_gemini_usage(const cJSON *resp, struct cp_tr_usage *u);

#endif
