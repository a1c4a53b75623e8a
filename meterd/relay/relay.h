/* SPDX-License-Identifier: MIT */
/*
 * relay.h - meterd's relay (spec newapi.md 4, 5, 7.1): the /v1 routes clients call with sk-
 * keys, billed through the store's writer. One struct mt_relay per process holds what the
 * relay keeps between requests: the token / user / channel cache (cache.h), the channel
 * failure runs for automatic disabling (health.h), the per-user model request rate limit
 * (ratelimit.h) and the Prometheus counters (metrics.h). main.c builds it after the store
 * and the options cache and hangs it on struct mt_server; the routes (registered by
 * mt_api_relay_routes(), api/areas.h) find it there.
 *
 * Shutdown order (main.c): the HTTP server, then the upstream client (its transfers end
 * and submit their last settles), then mt_relay_stop() (the cache watcher, which reads the
 * store), then the store (it commits those settles and runs their callbacks, which still
 * touch the relay's counters), then mt_relay_free().
 */
#ifndef MT_RELAY_RELAY_H
#define MT_RELAY_RELAY_H

struct mt_store;
struct mt_relay;

/** Loads the routing snapshot from @p st and starts the cache watcher. CM_OK or an error. */
int mt_relay_new(struct mt_store *st, struct mt_relay **out);
/** Stops the relay's thread; call before the store closes. NULL ok. */
void mt_relay_stop(struct mt_relay *r);
/** Frees; after the store closed. NULL ok. */
void mt_relay_free(struct mt_relay *r);

#endif
