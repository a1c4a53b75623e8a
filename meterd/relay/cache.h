/* SPDX-License-Identifier: MIT */
/*
 * cache.h - what the relay reads on every request, kept in memory (shared/design.md
 * "Caches"): tokens by key, users by id, and a routing snapshot (every channel with its
 * key, and the enabled abilities sorted by (group, model, priority desc)). A watcher
 * thread polls the store's change counters (mt_store_changes; triggers bump them for ANY
 * writer, an operator's sqlite3 included) every period_ms:
 *  - tokens / users counter moved: every cached token / user is stale (re-read on next use);
 *    entries are also re-read once older than ttl_ms (the balance columns have no trigger);
 *  - channels / abilities counter moved, or the snapshot is older than routes_ttl_ms: a new
 *    snapshot is built and swapped in; requests keep the one they took. A request that
 *    finds no channel asks for a fresh snapshot first (mt_relay_cache_routes_fresh()), so a
 *    channel added a moment ago serves at once.
 * Balances are never decided from here: the reserve reads them in the database.
 * The watcher also applies queued automatic channel disables (status 3 with other_info
 * status_reason/status_time, abilities disabled) so no request or I/O thread ever waits
 * on that write.
 * Entries are refcounted and immutable: a request takes references and reads them from
 * any thread until it lets go. Thread-safe.
 */
#ifndef MT_RELAY_CACHE_H
#define MT_RELAY_CACHE_H

#include "relay/pick.h"
#include "store/store.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct mt_relay_cache;

struct mt_relay_cache_opts {
    unsigned period_ms;           /* change-counter poll; 0: 500 */
    unsigned ttl_ms;              /* token / user re-read; 0: 5000 */
    unsigned routes_ttl_ms;       /* routing snapshot rebuild at the latest; 0: 30000 */
    const struct cm_clock *clock; /* borrowed; NULL: the real clock */
};

/**
 * Builds the first routing snapshot from @p st (borrowed; must outlive the cache) and
 * starts the watcher. @p o may be NULL. CM_OK; the store's error; CM_ERR_NOMEM; CM_ERR_IO.
 */
int mt_relay_cache_new(struct mt_store *st, const struct mt_relay_cache_opts *o,
                       struct mt_relay_cache **out);
/** Stops the watcher (pending disables are dropped, logged). Idempotent; before the store
 *  closes. */
void mt_relay_cache_stop(struct mt_relay_cache *c);
/** Stops if needed and frees; entries still referenced stay valid. NULL ok. */
void mt_relay_cache_free(struct mt_relay_cache *c);

/* ---- tokens and users ---- */

struct mt_relay_token {
    struct mt_token t; /* read-only */
    /* private */
    struct mt_relay_token *_next;
    atomic_int _refs;
    uint64_t _gen;
    int64_t _at_ms;
    uint64_t _hash;
};

/**
 * The live token with key @p key (@p klen bytes, without "sk-" or a pin suffix): from the
 * cache when fresh, else read from the store (on the calling thread). *@p out is a
 * reference: drop it with mt_relay_token_unref(). CM_OK, CM_ERR_NOTFOUND, or the store's
 * error.
 */
int mt_relay_cache_token(struct mt_relay_cache *c, const char *key, size_t klen,
                         struct mt_relay_token **out);
void mt_relay_token_unref(struct mt_relay_token *t);
/** Forgets the token of @p key (after its reserve found it short: re-read next time). */
void mt_relay_cache_forget_token(struct mt_relay_cache *c, const char *key, size_t klen);

struct mt_relay_user {
    struct mt_user u; /* read-only; its quota is only as fresh as ttl_ms: never bill on it */
    /* private */
    atomic_int _refs;
    uint64_t _gen;
    int64_t _at_ms;
};

/** Live user @p id (the caller checks status); a reference like tokens. CM_ERR_NOTFOUND for
 *  a missing or soft-deleted user. */
int mt_relay_cache_user(struct mt_relay_cache *c, int64_t id, struct mt_relay_user **out);
void mt_relay_user_unref(struct mt_relay_user *u);

/* ---- routing ---- */

struct mt_relay_route {
    struct mt_relay_cand cand;   /* channel id, priority, weight */
    const char *group, *model;   /* of the ability */
    const struct mt_channel *ch; /* status 1; with its key */
};

struct mt_relay_routes; /* an immutable snapshot */

/** The current snapshot, referenced (never NULL). */
struct mt_relay_routes *mt_relay_cache_routes(
    struct mt_relay_cache
        *c); /**
              * As mt_relay_cache_routes(), but first rebuilds the snapshot when the channels /
              * abilities counters moved since it was built: for a miss (a channel an admin just
              * added must serve at once, not a poll period later). Reads the store on the calling
              * thread: a request thread, never the httpc I/O thread.
              */
struct mt_relay_routes *mt_relay_cache_routes_fresh(struct mt_relay_cache *c);
void mt_relay_routes_unref(struct mt_relay_routes *r);

/**
 * The enabled routes of (@p group, @p model), contiguous and ordered priority desc: the
 * count, and *@p out points at the first (borrowed from @p r). 0 when none.
 */
size_t mt_relay_routes_find(const struct mt_relay_routes *r, const char *group, const char *model,
                            const struct mt_relay_route **out);

/** Channel @p id of the snapshot whatever its status (pinning), or NULL. */
const struct mt_channel *mt_relay_routes_channel(const struct mt_relay_routes *r, int64_t id);

/** Calls @p fn for each distinct model with an enabled route in @p group, sorted. */
void mt_relay_routes_models(const struct mt_relay_routes *r, const char *group,
                            void (*fn)(const char *model, const struct mt_channel *first, void *ud),
                            void *ud);

/** When the snapshot was built (unix s). */
int64_t mt_relay_routes_built(const struct mt_relay_routes *r);

/* ---- automatic disable ---- */

/**
 * Queues the automatic disable of channel @p id (NewAPI: status 3, other_info
 * status_reason = @p reason (copied), status_time; abilities disabled); the watcher applies
 * it within one period if the channel is still enabled and its auto_ban is 1. CM_OK,
 * CM_ERR_NOMEM, CM_ERR_CLOSED (stopped).
 */
int mt_relay_cache_disable(struct mt_relay_cache *c, int64_t id, const char *reason);

#endif
