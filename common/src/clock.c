/* SPDX-License-Identifier: MIT */
/*
 * clock.c - the real clock (clock_gettime) and the fake one (two atomics).
 * The fake finds its state from the `struct cm_clock *` it is called with, which is
 * its first member; no globals, so tests can run several fakes side by side.
 */
#include "cm/clock.h"

#include "cm/err.h"

#include <stddef.h>
#include <time.h>

static int64_t ts_ms(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0; /* cannot happen for these clock ids */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_wall(const struct cm_clock *self)
{
    (void)self;
    return ts_ms(CLOCK_REALTIME);
}

static int64_t real_mono(const struct cm_clock *self)
{
    (void)self;
    return ts_ms(CLOCK_MONOTONIC);
}

static const struct cm_clock real_clock = {.wall_ms = real_wall, .mono_ms = real_mono};

const struct cm_clock *cm_clock_real(void)
{
    return &real_clock;
}

int64_t cm_clock_wall_ms(const struct cm_clock *c)
{
    if (!c)
        c = &real_clock;
    return c->wall_ms(c);
}

int64_t cm_clock_mono_ms(const struct cm_clock *c)
{
    if (!c)
        c = &real_clock;
    return c->mono_ms(c);
}

/* floor division, so -1 ms is second -1 and not 0 */
static int64_t floor_s(int64_t ms)
{
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

int64_t cm_clock_wall_s(const struct cm_clock *c)
{
    return floor_s(cm_clock_wall_ms(c));
}

int64_t cm_clock_mono_s(const struct cm_clock *c)
{
    return floor_s(cm_clock_mono_ms(c));
}

/* ---- fake ---- */

/* self is &fake->clock, the first member: step back to the container */
static const struct cm_clock_fake *fake_of(const struct cm_clock *self)
{
    return (const struct cm_clock_fake *)(const void *)((const char *)self -
                                                        offsetof(struct cm_clock_fake, clock));
}

static int64_t fake_wall(const struct cm_clock *self)
{
    return atomic_load(&fake_of(self)->_wall);
}

static int64_t fake_mono(const struct cm_clock *self)
{
    return atomic_load(&fake_of(self)->_mono);
}

void cm_clock_fake_init(struct cm_clock_fake *f, int64_t wall_ms, int64_t mono_ms)
{
    f->clock.wall_ms = fake_wall;
    f->clock.mono_ms = fake_mono;
    atomic_init(&f->_wall, wall_ms);
    atomic_init(&f->_mono, mono_ms);
}

void cm_clock_fake_set_wall_ms(struct cm_clock_fake *f, int64_t wall_ms)
{
    atomic_store(&f->_wall, wall_ms);
}

int cm_clock_fake_set_mono_ms(struct cm_clock_fake *f, int64_t mono_ms)
{
    int64_t cur = atomic_load(&f->_mono);
    do {
        if (mono_ms < cur)
            return CM_ERR_INVAL;
    } while (!atomic_compare_exchange_weak(&f->_mono, &cur, mono_ms));
    return CM_OK;
}

int cm_clock_fake_advance_ms(struct cm_clock_fake *f, int64_t delta_ms)
{
    if (delta_ms < 0)
        return CM_ERR_INVAL;
    atomic_fetch_add(&f->_mono, delta_ms);
    atomic_fetch_add(&f->_wall, delta_ms);
    return CM_OK;
}
