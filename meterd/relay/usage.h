/* SPDX-License-Identifier: MIT */
/*
 * usage.h - token usage from upstream answers (spec newapi.md 5.5, 5.6), pure:
 *  - OpenAI chat / completions: the answer's "usage", or in a stream the chunk that carries
 *    one (the final chunk of stream_options.include_usage; the last one wins);
 *  - Responses API: "usage" of the answer, or of response.completed / response.incomplete /
 *    response.failed in a stream (input_tokens / output_tokens, input_tokens_details);
 *  - Anthropic Messages: "usage" (input_tokens excludes cache reads and writes: usage
 *    semantic "anthropic"), in a stream message_start's message.usage, then message_delta's
 *    usage (its output_tokens is the running total);
 *  - embeddings: usage.prompt_tokens.
 * Alongside, the text the answer carried (content, reasoning, tool-call arguments) is
 * counted with mt_pricing_estimate_tokens(), plus MT_PRICING_TOOL_CALL_TOKENS per tool
 * call: the completion count billed when the upstream reports nothing.
 */
#ifndef MT_RELAY_USAGE_H
#define MT_RELAY_USAGE_H

#include "pricing.h"
#include "relay/request.h"

#include <stddef.h>
#include <stdint.h>

/** Usage state of one answer (stream or not). Caller-owned; no heap memory. */
struct mt_relay_usage {
    enum mt_relay_fmt fmt;
    struct mt_usage u;      /* what the upstream reported (valid when have) */
    int have;               /* a usage object was seen */
    int64_t completion_est; /* local estimate of the answer's tokens so far (tool calls incl.) */
    int64_t tool_calls;
    int finished;        /* the stream's last event was seen ([DONE], message_stop,
                            response.completed ...) */
    int error_event;     /* the stream carried an error event / object */
    int64_t events;      /* events seen */
    int last_usage_only; /* the last event was a chat chunk with no choices and a usage (the
                            include_usage chunk a client that said false must not get) */
};

/** Starts the state for an answer in format @p f. */
void mt_relay_usage_init(struct mt_relay_usage *s, enum mt_relay_fmt f);

/**
 * A whole (non-stream) answer body. CM_OK when it is a JSON object (usage taken when it
 * has one, text counted); CM_ERR_PARSE when it is not JSON (state unchanged).
 */
int mt_relay_usage_body(struct mt_relay_usage *s, const char *body, size_t len);

/**
 * One SSE event of a streamed answer: @p type (may be NULL / 0 length) and its data.
 * Non-JSON data other than "[DONE]" is ignored. Always CM_OK (an unreadable event is not
 * the relay's business); CM_ERR_INVAL for NULL @p s.
 */
int mt_relay_usage_event(struct mt_relay_usage *s, const char *type, size_t type_len,
                         const char *data, size_t len);

/**
 * The usage to bill. With a reported usage: that (with cached, cache-write, image and audio
 * parts clamped to their totals); *@p local = 0. Without one: prompt_tokens =
 * @p prompt_estimate, completion_tokens = @p completion_est (the caller passes
 * s->completion_est, or the part of it the client actually received); *@p local = 1.
 * @p local may be NULL.
 */
void mt_relay_usage_final(const struct mt_relay_usage *s, int64_t prompt_estimate,
                          int64_t completion_est, struct mt_usage *out, int *local);

#endif
