/* SPDX-License-Identifier: MIT */
/*
 * imap.h - a small open-addressing hash of fixed-size entries keyed by a positive int64
 * (channel ids, user ids) for the relay's in-memory counters. Each entry begins with its
 * int64_t key (0 marks a free slot). Load stays under one half; it only grows. Not
 * thread-safe: the owner locks.
 */
#ifndef MT_RELAY_IMAP_H
#define MT_RELAY_IMAP_H

#include <stddef.h>
#include <stdint.h>

struct mt_relay_imap {
    unsigned char *slots; /* cap entries of elem bytes */
    size_t cap, used, elem;
};

/** An empty map of entries of @p elem bytes (>= sizeof(int64_t)); allocates nothing. */
void mt_relay_imap_init(struct mt_relay_imap *m, size_t elem);
void mt_relay_imap_cleanup(struct mt_relay_imap *m);

/**
 * The entry of @p key (> 0), or NULL when absent and !@p create. With @p create a missing
 * entry is added zeroed with its key set; NULL on OOM. Pointers stay valid until the next
 * call with @p create.
 */
void *mt_relay_imap_get(struct mt_relay_imap *m, int64_t key, int create);

/** The i-th slot (0..cap-1), or NULL when free: for sweeps. */
void *mt_relay_imap_slot(struct mt_relay_imap *m, size_t i);

/** Empties the map, keeping its storage. */
void mt_relay_imap_clear(struct mt_relay_imap *m);

#endif
