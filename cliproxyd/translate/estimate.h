/* SPDX-License-Identifier: MIT */
/*
 * estimate.h - a token count without a tokenizer, for count_tokens / countTokens on
 * upstreams that have no counting endpoint (Codex, Qwen, iFlow, openai-compatibility):
 * one token per 4 bytes of text (the usual rule of thumb for English and code), counted
 * over every string value of the request except image/file data, rounded up. An
 * estimate, said so in the README; the upstream's own usage is what gets billed.
 */
#ifndef CP_TRANSLATE_ESTIMATE_H
#define CP_TRANSLATE_ESTIMATE_H

#include <cjson/cJSON.h>
#include <stdint.h>

/** The estimate for @p req (borrowed); 0 for NULL. Pure. */
int64_t cp_tr_estimate_tokens(const cJSON *req);

#endif
