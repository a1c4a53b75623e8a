/* SPDX-License-Identifier: MIT */
/*
 * optcache.h - the options in force: a snapshot (options.h) rebuilt from the store's
 * `options` table at start, after every admin write (mt_optcache_reload()), and when the
 * table changes from outside (an operator's UPDATE, another node): a thread checks the
 * store's change counter every @p period_ms and reloads, so an edit made straight in
 * SQLite applies within about a second. Readers take a counted reference; a reload never
 * blocks them.
 */
#ifndef MT_OPTCACHE_H
#define MT_OPTCACHE_H

#include "options.h"

struct mt_store;
struct mt_optcache;

/**
 * Loads the options of @p st (borrowed; outlives the cache) and starts the watcher
 * (@p period_ms, 0 = 1000). *@p out is freed with mt_optcache_free(). CM_OK; the store's
 * error; CM_ERR_NOMEM; CM_ERR_IO (thread).
 */
int mt_optcache_new(struct mt_store *st, unsigned period_ms, struct mt_optcache **out);

/** Stops the watcher and frees the cache (snapshots still referenced stay valid). */
void mt_optcache_free(struct mt_optcache *c);

/** The current snapshot, referenced: release with mt_options_unref(). Never NULL. */
struct mt_options *mt_optcache_get(struct mt_optcache *c);

/** Reloads from the store now (after a write). CM_OK or the store's error (old kept). */
int mt_optcache_reload(struct mt_optcache *c);

#endif
