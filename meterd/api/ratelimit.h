/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.h - a fixed-window request counter per key (an IP address, "user:<id>"), the
 * shape of NewAPI's in-memory rate limiters (spec newapi.md 7.1): at most @p limit hits per
 * key in each window of @p window_ms that starts at the key's first hit; the hit past the
 * limit is refused with the time left in the window.
 *
 * Memory is bounded: the caller hands in the entry array (cap entries, no allocation).
 * When a new key finds the array full, expired windows are dropped first; if none has
 * expired, the entry whose window started longest ago is reused (so a flood of distinct
 * keys cannot grow memory, and the keys that are hitting hardest, being recent, stay).
 * Keys longer than MT_RL_KEY_MAX - 1 bytes are cut (IPv6 text fits).
 *
 * The clock is a parameter (monotonic milliseconds), so tests drive it. Thread-safe: every
 * call takes the limiter's mutex; a lookup scans at most cap entries.
 */
#ifndef MT_API_RATELIMIT_H
#define MT_API_RATELIMIT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define MT_RL_KEY_MAX 64

struct mt_rl_entry {
    char key[MT_RL_KEY_MAX];
    int64_t start_ms; /* first hit of the current window */
    uint32_t count;   /* hits in the current window (refused ones included, capped) */
};

struct mt_ratelimit {
    pthread_mutex_t mu;
    struct mt_rl_entry *e; /* borrowed, cap entries */
    size_t n, cap;
    unsigned limit; /* 0: no limit */
    int64_t window_ms;
};

/**
 * Sets up @p rl over @p entries (@p cap >= 1, borrowed, outlives @p rl): at most @p limit
 * hits per key per @p window_ms (> 0). @p limit 0 turns the limiter off (every hit
 * allowed). CM_OK; CM_ERR_INVAL (NULL, cap 0, window <= 0).
 */
int mt_ratelimit_init(struct mt_ratelimit *rl, struct mt_rl_entry *entries, size_t cap,
                      unsigned limit, int64_t window_ms);

/** Releases the mutex. The entry array stays the caller's. NULL is a no-op. */
void mt_ratelimit_cleanup(struct mt_ratelimit *rl);

/**
 * Counts a hit of @p key at @p now_ms. Returns 1 when it is allowed, 0 when the key is
 * over its limit in the current window; then *@p retry_ms (may be NULL) gets the
 * milliseconds until the window ends (>= 1). A NULL key counts as "".
 */
int mt_ratelimit_hit(struct mt_ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_ms);

/** Number of keys held (for tests). */
size_t mt_ratelimit_size(struct mt_ratelimit *rl);

#endif
