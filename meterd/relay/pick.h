/* SPDX-License-Identifier: MIT */
/*
 * pick.h - channel selection among the abilities of (group, model) (spec newapi.md 4.4,
 * 4.5), pure, with the random source injected:
 *  - the priority tier is the highest priority among the candidates NOT yet tried by this
 *    request (NewAPI may re-pick a channel that just failed, issue #1388; we never do);
 *  - within the tier, NewAPI's weighted random: all weights 0 -> uniform; otherwise each
 *    channel's chance is proportional to its weight (the x100 smoothing of NewAPI's cache
 *    path changes no proportion, so a weight 0 channel beside weighted ones is never picked).
 */
#ifndef MT_RELAY_PICK_H
#define MT_RELAY_PICK_H

#include <stddef.h>
#include <stdint.h>

struct mt_relay_cand {
    int64_t channel_id;
    int64_t priority; /* higher first */
    int64_t weight;   /* >= 0 (negative counts as 0) */
};

/** A random number source: uniform in [0, 2^32). */
typedef uint32_t (*mt_relay_rand_fn)(void *ud);

/** A uniform random 32-bit number from libsodium (the production source). */
uint32_t mt_relay_rand(void *ud);

/**
 * Picks one of the @p n candidates @p c whose channel id is not among the @p ntried ids
 * @p tried. Returns its index, or -1 when every candidate was tried (or n == 0).
 * @p rnd is called twice (one 64-bit draw) when the tier has more than one channel. Pure apart from
 * @p rnd.
 */
long mt_relay_pick(const struct mt_relay_cand *c, size_t n, const int64_t *tried, size_t ntried,
                   mt_relay_rand_fn rnd, void *rud);

#endif
