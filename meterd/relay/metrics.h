/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - the relay's Prometheus counters (GET /metrics), per (model, channel):
 *   meterd_relay_requests_total{model,channel,class}   class 2xx|4xx|5xx|aborted
 *   meterd_relay_errors_total{model,channel}           answered >= 400, or aborted
 *   meterd_relay_request_duration_seconds{model,channel} histogram (to the last byte)
 *   meterd_relay_quota_total{model,channel}            quota charged (settled)
 *   meterd_relay_tokens_total{model,channel,kind}      kind prompt|completion
 * channel "0" is a request that never reached one (refused, no channel). At most
 * MT_RELAY_METRICS_SERIES_MAX (model, channel) pairs are kept; later pairs are counted
 * under model "_other" (client-chosen model names must not grow memory without bound).
 * Thread-safe (one mutex, held for a few increments).
 */
#ifndef MT_RELAY_METRICS_H
#define MT_RELAY_METRICS_H

#include "cm/buf.h"

#include <stdint.h>

#define MT_RELAY_METRICS_SERIES_MAX 2048

struct mt_relay_metrics;

int mt_relay_metrics_new(struct mt_relay_metrics **out);
void mt_relay_metrics_free(struct mt_relay_metrics *m);

/** One finished request (@p model NULL: ""): its status, whether the client went away,
 *  and its duration. */
void mt_relay_metrics_observe(struct mt_relay_metrics *m, const char *model, int64_t channel,
                              unsigned status, int aborted, double seconds);

/** One settled charge (may come after the request was observed: an abandoned stream). */
void mt_relay_metrics_charge(struct mt_relay_metrics *m, const char *model, int64_t channel,
                             int64_t quota, int64_t prompt_tokens, int64_t completion_tokens);

/** Appends the text exposition (format 0.0.4) of every series to @p out. CM_OK or the
 *  buffer's error. */
int mt_relay_metrics_render(struct mt_relay_metrics *m, struct cm_buf *out);

#endif
