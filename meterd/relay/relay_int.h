/* SPDX-License-Identifier: MIT */
/*
 * relay_int.h - what the relay's own files share (never included outside meterd/relay/):
 * the struct behind struct mt_relay, the engine's entry point and the key reading every
 * token-authenticated route does.
 */
#ifndef MT_RELAY_INT_H
#define MT_RELAY_INT_H

#include "cm/httpd.h"
#include "relay/cache.h"
#include "relay/check.h"
#include "relay/errors.h"
#include "relay/health.h"
#include "relay/metrics.h"
#include "relay/pick.h"
#include "relay/ratelimit.h"
#include "relay/relay.h"
#include "relay/request.h"
#include "server.h"

#include <stdatomic.h>
#include <stdint.h>

struct mt_relay {
    struct mt_relay_cache *cache;
    struct mt_relay_health *health;
    struct mt_relay_rl *rl;
    struct mt_relay_metrics *metrics;
    mt_relay_rand_fn rnd; /* channel pick randomness */
    void *rnd_ud;
    atomic_llong inflight; /* relay requests being served */
};

/** Serves one relay request of format @p f (the route handler's body). */
void mt_relay__handle(struct cm_httpd_req *r, struct mt_server *srv, enum mt_relay_fmt f);

/**
 * The caller of a token-authenticated route: the key (Authorization "Bearer sk-...", else
 * x-api-key), its token (valid, IP allowed) and its live, enabled user. On failure the
 * NewAPI error has been answered and non-zero is returned; on CM_OK the caller owns the
 * references (mt_relay_token_unref / mt_relay_user_unref). @p pin (may be NULL) gets the
 * pinned channel of "sk-KEY-CHANNELID" (checked: admins only).
 */
int mt_relay__authenticate(struct mt_server *srv, struct cm_httpd_req *r, const char *rid,
                           struct mt_relay_token **tok, struct mt_relay_user **user, int64_t *pin);

#endif
