/* SPDX-License-Identifier: MIT */
/*
 * server.h - what meterd's route handlers share. One instance per process, built by
 * main.c before the HTTP server starts; handlers get it as their route ud. The fields are
 * set once and not changed afterwards (the objects they point to are thread-safe).
 */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;
struct mt_optcache;
struct cm_httpc;
struct cm_clock;
struct mt_relay;

struct mt_server {
    struct mt_store *store;              /* every SQL statement (thread-safe) */
    struct mt_optcache *opts;            /* options and pricing in force */
    struct cm_httpc *client;             /* upstream client (channels) */
    const struct cm_clock *clock;        /* wall time for sessions, logs, expiry */
    const unsigned char *session_secret; /* SESSION_SECRET (never logged) */
    size_t session_secret_len;
    int64_t start_time;        /* unix s, for /api/status */
    const char *database_type; /* "sqlite" */
    struct mt_relay *relay;    /* the relay's caches and counters (relay/relay.h) */
};

#endif
