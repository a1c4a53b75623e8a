/* SPDX-License-Identifier: MIT */
/* pick.c - priority tier, then weighted random, never a channel tried before (see pick.h). */
#include "relay/pick.h"

#include "cm/crypto.h"

uint32_t mt_relay_rand(void *ud)
{
    uint32_t v = 0;
    (void)ud;
    if (cm_crypto_random_bytes(&v, sizeof v) != 0)
        return 0;
    return v;
}

#define WEIGHT_MAX INT64_C(1000000000) /* per channel; keeps the total far from overflow */

static uint64_t weight_of(const struct mt_relay_cand *c)
{
    return c->weight <= 0 ? 0 : c->weight > WEIGHT_MAX ? (uint64_t)WEIGHT_MAX : (uint64_t)c->weight;
}

static int was_tried(int64_t id, const int64_t *tried, size_t ntried)
{
    for (size_t i = 0; i < ntried; i++)
        if (tried[i] == id)
            return 1;
    return 0;
}

long mt_relay_pick(const struct mt_relay_cand *c, size_t n, const int64_t *tried, size_t ntried,
                   mt_relay_rand_fn rnd, void *rud)
{
    int64_t top = 0;
    uint64_t total = 0, r;
    size_t in_tier = 0;
    int any = 0;
    long last = -1;

    if (!c)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (was_tried(c[i].channel_id, tried, ntried))
            continue;
        if (!any || c[i].priority > top)
            top = c[i].priority;
        any = 1;
    }
    if (!any)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (c[i].priority != top || was_tried(c[i].channel_id, tried, ntried))
            continue;
        in_tier++;
        total += weight_of(&c[i]);
        last = (long)i;
    }
    if (in_tier == 1)
        return last;
    r = rnd ? ((uint64_t)rnd(rud) << 32) | rnd(rud) : 0;
    if (total == 0) { /* all weights 0: uniform */
        size_t k = (size_t)(r % in_tier);
        for (size_t i = 0; i < n; i++) {
            if (c[i].priority != top || was_tried(c[i].channel_id, tried, ntried))
                continue;
            if (k-- == 0)
                return (long)i;
        }
        return last;
    }
    r %= total;
    for (size_t i = 0; i < n; i++) {
        uint64_t w;
        if (c[i].priority != top || was_tried(c[i].channel_id, tried, ntried))
            continue;
        w = weight_of(&c[i]);
        if (r < w)
            return (long)i;
        r -= w;
    }
    return last;
}
