/* SPDX-License-Identifier: MIT */
/*
 * completions_chat.h - legacy OpenAI /v1/completions clients over the chat pivot (spec
 * cliproxyapi.md 1.1: "legacy completions, converted to chat and back").
 *
 * Request: "prompt" (a string, or an array holding one string) becomes one user message;
 * max_tokens, temperature, top_p, stop, seed, presence/frequency_penalty, user, stream
 * and stream_options are copied. Refused with 400 naming the field, because chat cannot
 * express them: a prompt of several strings or of token ids, "suffix", "echo": true,
 * "logprobs", "best_of" > 1, "n" > 1, "logit_bias" (dropped silently elsewhere, but it
 * changes the answer).
 *
 * Answers: each chat chunk's delta.content becomes a text_completion chunk
 * {"id","object":"text_completion","created","model","choices":[{"text","index":0,
 * "logprobs":null,"finish_reason":null}]}; reasoning is not part of this API and is left
 * out. The end writes the finish chunk, the usage chunk when the client asked
 * stream_options.include_usage, and "data: [DONE]"; a failure writes one
 * "data: {"error":{...}}" event and no [DONE]. Non-stream answers are one text_completion
 * object with usage. Pure; ids and times are parameters.
 */
#ifndef CP_TRANSLATE_COMPLETIONS_CHAT_H
#define CP_TRANSLATE_COMPLETIONS_CHAT_H

#include "cm/buf.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/** The request @p req (borrowed) -> a new chat request in *@p chat (cJSON_Delete).
 * CM_OK, CM_ERR_INVAL (400, @p err names the field), CM_ERR_NOMEM. */
int cp_tr_completions_chat_request(const cJSON *req, cJSON **chat, struct cp_tr_err *err);

struct cp_tr_completions_chat_stream; /* opaque */

/** New stream state for @p req (read for "model" and include_usage); @p id shown as the id. */
int cp_tr_completions_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                      struct cp_tr_completions_chat_stream **out);
/** One chat chunk (borrowed) -> zero or one text_completion chunk appended to @p out. */
int cp_tr_completions_chat_stream_chunk(struct cp_tr_completions_chat_stream *st,
                                        const cJSON *chunk, struct cm_buf *out,
                                        struct cp_tr_err *err);
/** [DONE] came: the finish chunk, the usage chunk when asked, [DONE]. Once. */
int cp_tr_completions_chat_stream_end(struct cp_tr_completions_chat_stream *st,
                                      struct cm_buf *out);
/** The upstream failed mid-stream: one error event. Once. */
int cp_tr_completions_chat_stream_fail(struct cp_tr_completions_chat_stream *st,
                                       const struct cp_tr_err *e, struct cm_buf *out);
/** true once some text went out. */
bool cp_tr_completions_chat_stream_has_content(const struct cp_tr_completions_chat_stream *st);
/** Frees @p st; NULL is a no-op. */
void cp_tr_completions_chat_stream_free(struct cp_tr_completions_chat_stream *st);

/** A chat.completion (borrowed) -> a text_completion object in *@p out (cJSON_Delete). */
int cp_tr_completions_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                                    int64_t created, cJSON **out, struct cp_tr_err *err);

#endif
