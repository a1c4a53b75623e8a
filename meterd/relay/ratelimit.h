/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.h - NewAPI's model request rate limit (spec newapi.md 7.1), per user id, in
 * memory: within a sliding window of ModelRequestRateLimitDurationMinutes, at most
 * ModelRequestRateLimitCount requests in total (0: no total limit; failures count) and at
 * most ModelRequestRateLimitSuccessCount successful ones (status < 400); the group option
 * ModelRequestRateLimitGroup {"group":[total, success]} overrides both. The window is
 * kept as MT_RELAY_RL_BUCKETS buckets (a sliding window to 1/20 of its length). Over the
 * limit: 429. Thread-safe; the clock is a parameter. Memory: about 500 bytes per user that
 * made a request; past MT_RELAY_RL_USERS_MAX users every count starts over (a cap, not
 * an eviction policy).
 */
#ifndef MT_RELAY_RATELIMIT_H
#define MT_RELAY_RATELIMIT_H

#include <stdint.h>

#define MT_RELAY_RL_BUCKETS 20
#define MT_RELAY_RL_USERS_MAX 100000

struct mt_relay_rl;

int mt_relay_rl_new(struct mt_relay_rl **out);
void mt_relay_rl_free(struct mt_relay_rl *rl);

enum mt_relay_rl_verdict {
    MT_RELAY_RL_OK = 0,  /* allowed, counted in the total */
    MT_RELAY_RL_TOTAL,   /* total_max requests already in the window */
    MT_RELAY_RL_SUCCESS, /* success_max successes already in the window */
};

/**
 * A request of @p user at @p now_ms under a window of @p window_ms (> 0): refused when
 * @p total_max > 0 and that many requests are in the window, or when @p success_max > 0
 * and that many successes are; otherwise counted. On OOM the request is allowed.
 */
enum mt_relay_rl_verdict mt_relay_rl_begin(struct mt_relay_rl *rl, int64_t user, int64_t now_ms,
                                           int64_t window_ms, int64_t total_max,
                                           int64_t success_max);

/** Counts a successful request of @p user (answered with status < 400). */
void mt_relay_rl_success(struct mt_relay_rl *rl, int64_t user, int64_t now_ms, int64_t window_ms);

#endif
