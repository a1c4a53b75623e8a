/* SPDX-License-Identifier: MIT */
/* optcache.c - the options in force, reloaded on change (see optcache.h). */
#include "optcache.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/sys.h"
#include "store/options.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct mt_optcache {
    struct mt_store *st;
    pthread_mutex_t mu;        /* guards cur */
    pthread_mutex_t reload_mu; /* one reload at a time */
    struct mt_options *cur;
    int64_t seen; /* the options change counter at the last load */
    unsigned period_ms;
    pthread_t thr;
    pthread_cond_t cv;
    int stop, started;
};

static int load(struct mt_optcache *c)
{
    struct mt_option_list l = {0};
    struct mt_option_kv *rows = NULL;
    struct mt_options *o = NULL, *prev;
    struct mt_store_changes ch = {0};
    int rc;

    pthread_mutex_lock(&c->reload_mu);
    (void)mt_store_changes(c->st, &ch); /* before reading: a change after it reloads again */
    rc = mt_store_option_list(c->st, &l);
    if (rc)
        goto out;
    rows = cm_calloc(l.n ? l.n : 1, sizeof *rows);
    if (!rows) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        rows[i].key = l.items[i].key;
        rows[i].value = l.items[i].value;
    }
    prev = mt_optcache_get(c);
    rc = mt_options_new(rows, l.n, prev, &o);
    mt_options_unref(prev);
    if (rc)
        goto out;
    pthread_mutex_lock(&c->mu);
    prev = c->cur;
    c->cur = o;
    c->seen = ch.options;
    pthread_mutex_unlock(&c->mu);
    mt_options_unref(prev);
out:
    pthread_mutex_unlock(&c->reload_mu);
    cm_free(rows);
    mt_option_list_cleanup(&l);
    return rc;
}

static void *watch(void *arg)
{
    struct mt_optcache *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        struct mt_store_changes ch = {0};
        int64_t seen;
        (void)cm_sys_cond_wait_ms(&c->cv, &c->mu, c->period_ms);
        if (c->stop)
            break;
        seen = c->seen;
        pthread_mutex_unlock(&c->mu);
        if (mt_store_changes(c->st, &ch) == CM_OK && ch.options != seen) {
            int rc = load(c);
            if (rc)
                cm_log_warn(NULL, "options: reload failed (%s); the old values stay",
                            cm_err_str(rc));
            else
                cm_log_info(NULL, "options: reloaded after a change in the database");
        }
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int mt_optcache_new(struct mt_store *st, unsigned period_ms, struct mt_optcache **out)
{
    struct mt_optcache *c;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    c = cm_calloc(1, sizeof *c);
    if (!c)
        return CM_ERR_NOMEM;
    c->st = st;
    c->period_ms = period_ms ? period_ms : 1000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->reload_mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    rc = mt_options_new(NULL, 0, NULL, &c->cur); /* defaults until the first load */
    if (!rc)
        rc = load(c);
    if (!rc && pthread_create(&c->thr, NULL, watch, c) != 0)
        rc = CM_ERR_IO;
    if (rc) {
        mt_optcache_free(c);
        return rc;
    }
    c->started = 1;
    *out = c;
    return CM_OK;
}

void mt_optcache_free(struct mt_optcache *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thr, NULL);
    }
    mt_options_unref(c->cur);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->reload_mu);
    pthread_mutex_destroy(&c->mu);
    cm_free(c);
}

struct mt_options *mt_optcache_get(struct mt_optcache *c)
{
    struct mt_options *o;
    pthread_mutex_lock(&c->mu);
    o = c->cur;
    mt_options_ref(o);
    pthread_mutex_unlock(&c->mu);
    return o;
}

int mt_optcache_reload(struct mt_optcache *c)
{
    return c ? load(c) : CM_ERR_INVAL;
}
