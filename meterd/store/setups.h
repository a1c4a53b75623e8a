/* SPDX-License-Identifier: MIT */
/*
 * setups.h - the setups table (spec newapi.md 1.11, 2.4): one row means the system is
 * initialised. Thread-safe.
 */
#ifndef MT_STORE_SETUPS_H
#define MT_STORE_SETUPS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;

/** *@p done = 1 if a setups row exists; its version (caller frees with cm_free; may be
 *  NULL) and initialized_at (may be NULL) when it does. */
int mt_store_setup_get(struct mt_store *st, int *done, char **version, int64_t *initialized_at);
/** Inserts the setups row (version, initialized_at = now). CM_ERR_EXISTS if one exists. */
int mt_store_setup_insert(struct mt_store *st, const char *version);
/**
 * NewAPI's CheckSetup for legacy databases: when no setups row exists but a root user
 * does, inserts one. *@p done (may be NULL) = whether the system counts as set up after.
 */
int mt_store_setup_check(struct mt_store *st, const char *version, int *done);

#endif
