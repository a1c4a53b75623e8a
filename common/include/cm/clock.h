/* SPDX-License-Identifier: MIT */
/*
 * clock.h - injectable clock: wall time (unix ms) and monotonic time (ms).
 *
 * Pure modules (schedulers, cooldowns, token expiry) take a `const struct cm_clock *`
 * instead of calling time() themselves, so tests can hand them a fake clock and move
 * time forward without sleeping. Production code passes cm_clock_real() (or NULL to
 * the getters below, which means the real clock).
 *
 * Wall time can jump (NTP, admin); use it for timestamps that leave the process
 * (expiry times in files, log lines). Use monotonic time for intervals and deadlines.
 */
#ifndef CM_CLOCK_H
#define CM_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

/**
 * A clock: two function pointers, each given the clock itself (so an implementation
 * can find its own state). Both must be callable from any thread.
 */
struct cm_clock {
    /* milliseconds since 1970-01-01 UTC */
    int64_t (*wall_ms)(const struct cm_clock *self);
    /* milliseconds from an arbitrary start; never goes back */
    int64_t (*mono_ms)(const struct cm_clock *self);
};

/** The real clock (CLOCK_REALTIME / CLOCK_MONOTONIC). Static storage; never NULL. */
const struct cm_clock *cm_clock_real(void);

/** Wall time of @p c in ms since the epoch; @p c NULL means the real clock. Thread-safe. */
int64_t cm_clock_wall_ms(const struct cm_clock *c);
/** Monotonic time of @p c in ms; @p c NULL means the real clock. Thread-safe. */
int64_t cm_clock_mono_ms(const struct cm_clock *c);
/** cm_clock_wall_ms() / 1000, rounded down (unix seconds). */
int64_t cm_clock_wall_s(const struct cm_clock *c);
/** cm_clock_mono_ms() / 1000, rounded down. */
int64_t cm_clock_mono_s(const struct cm_clock *c);

/**
 * A fake clock for tests, caller-owned (stack or embedded). Pass `&f.clock` to the code
 * under test. Fields with a leading '_' are private. Every function below is
 * thread-safe (the two times are separate atomics: a reader that reads both while
 * another thread advances may see one moved and the other not yet).
 */
struct cm_clock_fake {
    struct cm_clock clock; /* hand &fake.clock to the code under test */
    _Atomic int64_t _wall; /* ms since epoch */
    _Atomic int64_t _mono; /* ms */
};

/** Sets both times. Nothing to clean up afterwards; no allocation. */
void cm_clock_fake_init(struct cm_clock_fake *f, int64_t wall_ms, int64_t mono_ms);
/** Sets wall time (may go backwards, like a real wall clock). */
void cm_clock_fake_set_wall_ms(struct cm_clock_fake *f, int64_t wall_ms);
/**
 * Sets monotonic time. CM_ERR_INVAL (and nothing changes) if @p mono_ms is before the
 * current value: a monotonic clock never goes back.
 */
int cm_clock_fake_set_mono_ms(struct cm_clock_fake *f, int64_t mono_ms);
/** Moves both times forward by @p delta_ms. CM_ERR_INVAL (nothing changes) if delta_ms < 0. */
int cm_clock_fake_advance_ms(struct cm_clock_fake *f, int64_t delta_ms);

#endif
