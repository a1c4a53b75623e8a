/* SPDX-License-Identifier: MIT */
/*
 * usage.h - bounded request/token counters for /metrics and /v0/management/usage:
 * per (credential, model): requests by status class, tokens (input, output, cached,
 * reasoning); one latency histogram. Memory is bounded: at most CP_USAGE_MAX_SERIES
 * (credential, model) pairs, later pairs are counted under ("other", "other").
 * Thread-safe (one mutex, short critical sections). No I/O.
 */
#ifndef CP_USAGE_H
#define CP_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"

#define CP_USAGE_MAX_SERIES 1024

struct cp_usage;

struct cp_usage_tokens {
    int64_t input, output, cached, reasoning;
};

int cp_usage_new(struct cp_usage **out);
void cp_usage_free(struct cp_usage *u);

/**
 * Counts one finished request: @p cred / @p model (copied; NULL or "" -> "-"), the HTTP
 * status the client got, its latency, and the tokens if the upstream reported them
 * (@p t may be NULL).
 */
void cp_usage_record(struct cp_usage *u, const char *cred, const char *model, int status,
                     int64_t latency_ms, const struct cp_usage_tokens *t);

/**
 * Appends the Prometheus text exposition of the counters to @p out (series
 * cliproxyd_requests_total, cliproxyd_tokens_total, cliproxyd_request_duration_seconds).
 * Label values are escaped. CM_OK, CM_ERR_LIMIT / CM_ERR_NOMEM from @p out.
 */
int cp_usage_prometheus(struct cp_usage *u, struct cm_buf *out);

/**
 * The same as JSON: {"total_requests","success_count","failure_count","total_tokens",
 * "series":[{"credential","model","requests","failures","input_tokens","output_tokens",
 * "cached_tokens","reasoning_tokens"}]}. *@p json is cm_malloc'd (cm_free). CM_ERR_NOMEM.
 */
int cp_usage_json(struct cp_usage *u, char **json, size_t *len);

/** Appends @p s to @p out as a Prometheus label value (\\, " and newline escaped). */
int cp_usage_label(struct cm_buf *out, const char *s);

#endif
