/* SPDX-License-Identifier: MIT */
/*
 * translate.h - types shared by every cliproxyd translator (translate/<client>_<upstream>.c).
 *
 * Translators are pure: request JSON -> request JSON, and streaming state machines that turn
 * one upstream event into zero or more client events. They report what went wrong in a
 * struct cp_tr_err (the field at fault for a client 400, the HTTP status the failure maps to)
 * and the upstream's token counts in a struct cp_tr_usage (for billing and the usage API).
 * Types only: no functions, no I/O.
 */
#ifndef CP_TRANSLATE_H
#define CP_TRANSLATE_H

#include <stdint.h>

#define CP_TR_ERR_FIELD_MAX 128
#define CP_TR_ERR_MSG_MAX 320
#define CP_TR_ERR_CODE_MAX 64

/**
 * Why a translation failed. Filled only on failure (callers put it on the stack; every
 * translator accepts NULL where the caller does not care). Strings are NUL-terminated.
 * - rc: the enum cm_err the function returned.
 * - status: the HTTP status a client should see: 400 for a request that cannot be expressed
 *   upstream, 408 for an upstream stream that closed before its terminal event, the mapped
 *   upstream status for an in-stream failure, 500 for out of memory.
 * - field: the request field at fault ("messages[3].content[1].type"), "" when none.
 * - type / code: OpenAI error "type" and "code" ("invalid_request_error", ...); may be "".
 * - msg: one sentence fit for the client (for field errors it starts with the field path).
 */
struct cp_tr_err {
    int rc;
    unsigned status;
    char field[CP_TR_ERR_FIELD_MAX];
    char type[CP_TR_ERR_CODE_MAX];
    char code[CP_TR_ERR_CODE_MAX];
    char msg[CP_TR_ERR_MSG_MAX];
};

/**
 * Token counts reported by an upstream for one request, in OpenAI terms:
 * input = prompt tokens (cached ones included), output = completion tokens (reasoning ones
 * included), cached = the part of input served from the prompt cache, reasoning = the part
 * of output spent thinking, total = what the upstream reported as total (input + output
 * when it did not say).
 */
struct cp_tr_usage {
    int64_t input;
    int64_t output;
    int64_t cached;
    int64_t reasoning;
    int64_t total;
};

/**
 * Spec 5.1: splits "base(suffix)" into a new base model (*@p base, caller frees with
 * cm_free) and the Codex reasoning effort the suffix names (*@p effort, static; NULL when
 * there is no suffix). CM_ERR_INVAL (empty model, unknown suffix; @p je names "model"),
 * CM_ERR_NOMEM.
 */
struct cm_json_err;
int cp_tr_codex_split_model(const char *model, char **base, const char **effort,
                            struct cm_json_err *je);

#endif
