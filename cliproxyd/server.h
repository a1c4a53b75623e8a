/* SPDX-License-Identifier: MIT */
/*
 * server.h - what cliproxyd's route handlers share: the live configuration (hot
 * reloaded), and the sources of the model list. One instance per process, created by
 * main.c; handlers get it as their route ud. Fields are set before the HTTP server
 * starts and not changed afterwards (the objects they point to are thread-safe).
 */
#ifndef CP_SERVER_H
#define CP_SERVER_H

#include "config.h"

/** Appends the ids of the models currently served to @p ids (up to @p cap); returns count. */
typedef size_t (*cp_models_fn)(void *ud, const char **ids, const char **owners, size_t cap);

struct cp_sched;
struct cp_authstore;
struct cm_httpc;
struct cp_mgmt;
struct cp_usage;
struct cp_refresher;
struct cp_keyring;

struct cp_server {
    struct cp_sched *sched;     /* credential scheduler (thread-safe) */
    struct cp_authstore *store; /* credentials of auth-dir, hot reloaded (thread-safe) */
    struct cp_keyring *keyring; /* API-key credentials of the config (thread-safe); may be NULL */
    struct cm_httpc *client;    /* the upstream client (one curl multi, one I/O thread) */
    struct cp_mgmt *mgmt;       /* /v0/management state */
    struct cp_usage *usage;     /* request and token counters (thread-safe) */
    struct cp_refresher *refresher; /* token refresh; NULL: a 401 is not retried */
    struct cp_config_live *cfg; /* current config; acquire per request */
    const char *config_path;    /* the file cfg was loaded from (reloads read it again) */
    cp_models_fn models;        /* NULL: no credentials loaded, no models */
    void *models_ud;
};

#endif
