/* SPDX-License-Identifier: MIT */
/*
 * refresher.h - keeps OAuth tokens fresh: every few seconds it asks the auth store which
 * credentials are due (Codex 5 days, Claude 4 h before expiry), sends each refresh grant
 * to its provider's token URL through the shared HTTP client (and the credential's or
 * the global proxy), and hands the answer back to the store, which writes the file
 * atomically. Spec cliproxyapi.md 3.1(c), 3.2(c), 4.8.
 *
 * Its own thread applies answers (file I/O), so neither request threads nor the HTTP
 * client's I/O thread ever block on a refresh.
 */
#ifndef CP_REFRESHER_H
#define CP_REFRESHER_H

#include "server.h"

struct cp_refresher;

/**
 * Starts refreshing for @p srv (borrowed: its cfg, store and client must outlive the
 * refresher), checking every @p period_ms (0 = 5000). CM_OK, CM_ERR_NOMEM, CM_ERR_IO.
 */
int cp_refresher_new(struct cp_server *srv, unsigned period_ms, struct cp_refresher **out);
/** Asks for a check now (any thread). */
void cp_refresher_poke(struct cp_refresher *r);

/**
 * Called once per cp_refresher_refresh_now() with the result: @p ok = 1 when the
 * credential now holds new tokens (use it again), 0 when the refresh failed;
 * @p permanent = 1 when that failure marked it needs re-login. Runs on the refresher's
 * thread (or the caller of cp_refresher_stop()); must not call back into the refresher
 * except cp_refresher_refresh_now() for another credential.
 */
typedef void (*cp_refresher_done_fn)(void *ud, int ok, int permanent);

/**
 * Refreshes credential @p id now, whatever its expiry (an upstream answered 401 to its
 * token), and calls @p cb with the outcome: after this refresh, or after one already in
 * flight for @p id, or with ok = 0 when @p id cannot be refreshed, after 60 s without an
 * answer, or at stop. Any thread. CM_OK (@p cb will be called exactly once), CM_ERR_INVAL,
 * CM_ERR_NOMEM, CM_ERR_CLOSED (stopping; @p cb is not called).
 */
int cp_refresher_refresh_now(struct cp_refresher *r, const char *id, cp_refresher_done_fn cb,
                             void *ud);
/**
 * Stops the thread (no new refresh starts afterwards). Shutdown order: stop the
 * refresher, free the HTTP client (in-flight refreshes end, their answers are queued
 * and dropped), then cp_refresher_free().
 */
void cp_refresher_stop(struct cp_refresher *r);
/** Stops (if needed) and frees. NULL is a no-op. */
void cp_refresher_free(struct cp_refresher *r);

#endif
