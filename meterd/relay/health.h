/* SPDX-License-Identifier: MIT */
/*
 * health.h - when a channel should be disabled automatically (spec newapi.md 4.6, with the
 * improvement of section 9 #14): NewAPI disables a channel on ONE qualifying error; meterd
 * waits for N consecutive qualifying failures of that channel within a window (options
 * AutomaticDisableFailureCount, default 3, and AutomaticDisableFailureWindowSeconds, default
 * 300). Any success of the channel clears its run. What qualifies is NewAPI's rule: a status
 * in AutomaticDisableStatusCodes ("401") or an error text containing one of
 * AutomaticDisableKeywords (case-insensitive). The feature itself stays behind
 * AutomaticDisableChannelEnabled (default false) and the channel's auto_ban (the caller's).
 * Counters live in memory (a restart forgets a run). Thread-safe; the clock is a parameter.
 */
#ifndef MT_RELAY_HEALTH_H
#define MT_RELAY_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#define MT_RELAY_HEALTH_RUN_MAX 64 /* the largest N honoured */

/** NewAPI's default AutomaticDisableKeywords, newline-separated. */
#define MT_RELAY_DISABLE_KEYWORDS_DEFAULT                                                          \
    "Your credit balance is too low\nThis organization has been disabled.\n"                       \
    "You exceeded your current quota\nPermission denied\n"                                         \
    "The security token included in the request is invalid\nOperation not allowed\n"               \
    "Your account is not authorized"

struct mt_relay_health;

/** CM_OK or CM_ERR_NOMEM. Free with mt_relay_health_free() (NULL ok). */
int mt_relay_health_new(struct mt_relay_health **out);
void mt_relay_health_free(struct mt_relay_health *h);

/**
 * Records a qualifying failure of @p channel at @p now_ms. Returns 1 when it completes a run
 * of @p n (1..MT_RELAY_HEALTH_RUN_MAX; larger is capped) consecutive failures whose first
 * is at most @p window_ms before it (the run then starts over), else 0 (also on OOM).
 */
int mt_relay_health_fail(struct mt_relay_health *h, int64_t channel, int64_t now_ms, int n,
                         int64_t window_ms);

/** A success of @p channel: its run is over. */
void mt_relay_health_ok(struct mt_relay_health *h, int64_t channel);

/**
 * NewAPI's ShouldDisableChannel without the switch: 1 when @p status is in the ranges
 * @p codes ("401,403") or the @p len bytes of @p msg contain one of the newline-separated
 * @p keywords (NULL: the default list), ignoring case. Pure.
 */
int mt_relay_should_disable(const char *codes, const char *keywords, long status, const char *msg,
                            size_t len);

#endif
