/* SPDX-License-Identifier: MIT */
/*
 * cache.c - tokens, users and the routing snapshot in memory (see cache.h).
 *
 * Tokens: a chained hash (fixed bucket count) of key -> entry under one mutex; a hit
 * checks the entry's generation (bumped by the watcher when the tokens counter moves)
 * and age. Users: the same over the int64 map. Entries are refcounted; the map holds one
 * reference; replacing or clearing drops it. A read that misses happens on the caller's
 * thread (a request thread: never the httpc I/O thread), outside the lock.
 * Past MAX_ENTRIES the map is emptied (a cap on memory, not an eviction policy).
 */
#include "relay/cache.h"

#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "cm/sys.h"
#include "relay/imap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_BUCKETS 4096
#define MAX_ENTRIES 65536

struct mt_relay_routes {
    atomic_int refs;
    int64_t built_s;
    int64_t built_ms;                    /* monotonic */
    int64_t chg_channels, chg_abilities; /* the change counters it was built after */
    struct mt_channel_list chans;        /* id asc */
    struct mt_ability_list abil;
    struct mt_relay_route *r; /* n, sorted (group, model, priority desc, id) */
    size_t n;
};

struct pending {
    struct pending *next;
    int64_t id;
    char reason[256];
};

struct user_slot {
    int64_t id; /* imap key */
    struct mt_relay_user *u;
};

struct mt_relay_cache {
    struct mt_store *st;
    const struct cm_clock *clock;
    unsigned period_ms, ttl_ms, routes_ttl_ms;

    pthread_mutex_t tmu; /* tokens */
    struct mt_relay_token *tb[TOKEN_BUCKETS];
    size_t ntok;
    _Atomic uint64_t tok_gen;

    pthread_mutex_t umu; /* users */
    struct mt_relay_imap users;
    _Atomic uint64_t user_gen;

    pthread_mutex_t rmu; /* the routes pointer */
    struct mt_relay_routes *routes;
    pthread_mutex_t bmu; /* one rebuild at a time (watcher, or a request after a miss) */

    pthread_mutex_t wmu; /* watcher: stop flag, pending disables */
    pthread_cond_t wcv;
    struct pending *pend;
    int stop, started;
    pthread_t th;
    struct mt_store_changes seen;
};

static int64_t mono(const struct mt_relay_cache *c)
{
    return cm_clock_mono_ms(c->clock);
}

/* ---- tokens ---- */

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * UINT64_C(1099511628211);
    return h;
}

static int key_eq(const struct mt_relay_token *e, const char *k, size_t n)
{
    return e->t.key && strlen(e->t.key) == n && memcmp(e->t.key, k, n) == 0;
}

void mt_relay_token_unref(struct mt_relay_token *t)
{
    if (!t || atomic_fetch_sub(&t->_refs, 1) != 1)
        return;
    mt_token_cleanup(&t->t);
    cm_free(t);
}

/* unlinks the entry of key (lock held); the map's reference is returned to the caller */
static struct mt_relay_token *unlink_token(struct mt_relay_cache *c, const char *k, size_t n,
                                           uint64_t h)
{
    struct mt_relay_token **pp = &c->tb[h % TOKEN_BUCKETS];
    for (; *pp; pp = &(*pp)->_next)
        if ((*pp)->_hash == h && key_eq(*pp, k, n)) {
            struct mt_relay_token *e = *pp;
            *pp = e->_next;
            c->ntok--;
            return e;
        }
    return NULL;
}

static void clear_tokens(struct mt_relay_cache *c)
{
    for (size_t i = 0; i < TOKEN_BUCKETS; i++) {
        while (c->tb[i]) {
            struct mt_relay_token *e = c->tb[i];
            c->tb[i] = e->_next;
            mt_relay_token_unref(e);
        }
    }
    c->ntok = 0;
}

int mt_relay_cache_token(struct mt_relay_cache *c, const char *key, size_t klen,
                         struct mt_relay_token **out)
{
    uint64_t h = key_hash(key, klen), gen;
    struct mt_relay_token *e, *old;
    char kbuf[MT_TOKEN_KEY_MAX + 1];
    int64_t now = mono(c);
    int rc;

    if (!klen || klen > MT_TOKEN_KEY_MAX)
        return CM_ERR_NOTFOUND;
    pthread_mutex_lock(&c->tmu);
    for (e = c->tb[h % TOKEN_BUCKETS]; e; e = e->_next)
        if (e->_hash == h && key_eq(e, key, klen))
            break;
    if (e && e->_gen == atomic_load(&c->tok_gen) && now - e->_at_ms < (int64_t)c->ttl_ms) {
        atomic_fetch_add(&e->_refs, 1);
        pthread_mutex_unlock(&c->tmu);
        *out = e;
        return CM_OK;
    }
    pthread_mutex_unlock(&c->tmu);

    gen = atomic_load(&c->tok_gen); /* before the read: a change during it reloads again */
    e = cm_calloc(1, sizeof *e);
    if (!e)
        return CM_ERR_NOMEM;
    memcpy(kbuf, key, klen);
    kbuf[klen] = '\0';
    rc = mt_store_token_get_by_key(c->st, kbuf, &e->t);
    cm_crypto_memzero(kbuf, sizeof kbuf);
    if (rc) {
        cm_free(e);
        if (rc == CM_ERR_NOTFOUND) { /* deleted meanwhile: drop a stale entry */
            pthread_mutex_lock(&c->tmu);
            old = unlink_token(c, key, klen, h);
            pthread_mutex_unlock(&c->tmu);
            mt_relay_token_unref(old);
        }
        return rc;
    }
    atomic_init(&e->_refs, 2); /* the map's and the caller's */
    e->_gen = gen;
    e->_at_ms = now;
    e->_hash = h;
    pthread_mutex_lock(&c->tmu);
    old = unlink_token(c, key, klen, h);
    if (c->ntok >= MAX_ENTRIES)
        clear_tokens(c);
    e->_next = c->tb[h % TOKEN_BUCKETS];
    c->tb[h % TOKEN_BUCKETS] = e;
    c->ntok++;
    pthread_mutex_unlock(&c->tmu);
    mt_relay_token_unref(old);
    *out = e;
    return CM_OK;
}

void mt_relay_cache_forget_token(struct mt_relay_cache *c, const char *key, size_t klen)
{
    struct mt_relay_token *old;
    pthread_mutex_lock(&c->tmu);
    old = unlink_token(c, key, klen, key_hash(key, klen));
    pthread_mutex_unlock(&c->tmu);
    mt_relay_token_unref(old);
}

/* ---- users ---- */

void mt_relay_user_unref(struct mt_relay_user *u)
{
    if (!u || atomic_fetch_sub(&u->_refs, 1) != 1)
        return;
    mt_user_cleanup(&u->u);
    cm_free(u);
}

static void clear_users(struct mt_relay_cache *c)
{
    for (size_t i = 0; i < c->users.cap; i++) {
        struct user_slot *s = mt_relay_imap_slot(&c->users, i);
        if (s)
            mt_relay_user_unref(s->u);
    }
    mt_relay_imap_clear(&c->users);
}

int mt_relay_cache_user(struct mt_relay_cache *c, int64_t id, struct mt_relay_user **out)
{
    struct mt_relay_user *e, *old = NULL;
    struct user_slot *s;
    int64_t now = mono(c);
    uint64_t gen;
    int rc;

    if (id <= 0)
        return CM_ERR_NOTFOUND;
    pthread_mutex_lock(&c->umu);
    s = mt_relay_imap_get(&c->users, id, 0);
    if (s && s->u && s->u->_gen == atomic_load(&c->user_gen) &&
        now - s->u->_at_ms < (int64_t)c->ttl_ms) {
        e = s->u;
        atomic_fetch_add(&e->_refs, 1);
        pthread_mutex_unlock(&c->umu);
        *out = e;
        return CM_OK;
    }
    pthread_mutex_unlock(&c->umu);

    gen = atomic_load(&c->user_gen);
    e = cm_calloc(1, sizeof *e);
    if (!e)
        return CM_ERR_NOMEM;
    rc = mt_store_user_get(c->st, id, 0, &e->u);
    if (rc) {
        cm_free(e);
        return rc;
    }
    atomic_init(&e->_refs, 1);
    e->_gen = gen;
    e->_at_ms = now;
    pthread_mutex_lock(&c->umu);
    if (c->users.used >= MAX_ENTRIES && !mt_relay_imap_get(&c->users, id, 0))
        clear_users(c);
    s = mt_relay_imap_get(&c->users, id, 1);
    if (s) {
        old = s->u;
        s->u = e;
        atomic_fetch_add(&e->_refs, 1); /* the map's */
    }
    pthread_mutex_unlock(&c->umu);
    mt_relay_user_unref(old);
    *out = e;
    return CM_OK;
}

/* ---- routes ---- */

void mt_relay_routes_unref(struct mt_relay_routes *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    /* the keys are secrets: wipe them before the memory goes back */
    for (size_t i = 0; i < r->chans.n; i++)
        if (r->chans.items[i].key)
            cm_crypto_memzero((void *)(uintptr_t)r->chans.items[i].key,
                              strlen(r->chans.items[i].key));
    mt_channel_list_cleanup(&r->chans);
    mt_ability_list_cleanup(&r->abil);
    cm_free(r->r);
    cm_free(r);
}

static int route_cmp(const void *a, const void *b)
{
    const struct mt_relay_route *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    if (!c)
        c = strcmp(x->model, y->model);
    if (!c)
        c = x->cand.priority > y->cand.priority ? -1 : x->cand.priority < y->cand.priority;
    if (!c)
        c = x->cand.channel_id < y->cand.channel_id ? -1 : x->cand.channel_id > y->cand.channel_id;
    return c;
}

static int chan_cmp(const void *key, const void *elem)
{
    int64_t id = *(const int64_t *)key, e = ((const struct mt_channel *)elem)->id;
    return id < e ? -1 : id > e;
}

const struct mt_channel *mt_relay_routes_channel(const struct mt_relay_routes *r, int64_t id)
{
    if (!r || !r->chans.n)
        return NULL;
    return bsearch(&id, r->chans.items, r->chans.n, sizeof *r->chans.items, chan_cmp);
}

static int chan_sort(const void *a, const void *b)
{
    int64_t x = ((const struct mt_channel *)a)->id, y = ((const struct mt_channel *)b)->id;
    return x < y ? -1 : x > y;
}

static int build_routes(struct mt_relay_cache *c, struct mt_relay_routes **out)
{
    struct mt_store_changes chg = {0};
    struct mt_relay_routes *r = cm_calloc(1, sizeof *r);
    int rc;

    if (!r)
        return CM_ERR_NOMEM;
    atomic_init(&r->refs, 1);
    r->built_s = cm_clock_wall_s(c->clock);
    r->built_ms = mono(c);
    rc = mt_store_changes(c->st, &chg); /* before reading: a change meanwhile rebuilds again */
    r->chg_channels = chg.channels;
    r->chg_abilities = chg.abilities;
    if (!rc)
        rc = mt_store_channel_all(c->st, 1, &r->chans);
    if (!rc)
        rc = mt_store_abilities_all(c->st, &r->abil);
    if (rc)
        goto out;
    if (r->chans.n > 1)
        qsort(r->chans.items, r->chans.n, sizeof *r->chans.items, chan_sort);
    r->r = cm_calloc(r->abil.n ? r->abil.n : 1, sizeof *r->r);
    if (!r->r) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->abil.n; i++) {
        const struct mt_ability *a = &r->abil.items[i];
        const struct mt_channel *ch = mt_relay_routes_channel(r, a->channel_id);
        if (!a->enabled || !ch || ch->status != MT_CHANNEL_ENABLED || !a->group || !a->model)
            continue;
        r->r[r->n].cand.channel_id = a->channel_id;
        r->r[r->n].cand.priority = a->priority;
        r->r[r->n].cand.weight = a->weight;
        r->r[r->n].group = a->group;
        r->r[r->n].model = a->model;
        r->r[r->n].ch = ch;
        r->n++;
    }
    if (r->n > 1)
        qsort(r->r, r->n, sizeof *r->r, route_cmp);
out:
    if (rc) {
        mt_relay_routes_unref(r);
        return rc;
    }
    *out = r;
    return CM_OK;
}

struct mt_relay_routes *mt_relay_cache_routes(struct mt_relay_cache *c)
{
    struct mt_relay_routes *r;
    pthread_mutex_lock(&c->rmu);
    r = c->routes;
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_unlock(&c->rmu);
    return r;
}

int64_t mt_relay_routes_built(const struct mt_relay_routes *r)
{
    return r ? r->built_s : 0;
}

/* first route with (group, model) >= the key */
static size_t lower(const struct mt_relay_routes *r, const char *group, const char *model)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->r[mid].group, group);
        if (!c && model)
            c = strcmp(r->r[mid].model, model);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t mt_relay_routes_find(const struct mt_relay_routes *r, const char *group, const char *model,
                            const struct mt_relay_route **out)
{
    size_t i, j;
    if (!r || !group || !model)
        return 0;
    i = lower(r, group, model);
    for (j = i; j < r->n && strcmp(r->r[j].group, group) == 0 && strcmp(r->r[j].model, model) == 0;
         j++)
        ;
    if (out)
        *out = j > i ? &r->r[i] : NULL;
    return j - i;
}

void mt_relay_routes_models(const struct mt_relay_routes *r, const char *group,
                            void (*fn)(const char *model, const struct mt_channel *first, void *ud),
                            void *ud)
{
    const char *last = NULL;
    if (!r || !group || !fn)
        return;
    for (size_t i = lower(r, group, NULL); i < r->n && strcmp(r->r[i].group, group) == 0; i++) {
        if (last && strcmp(last, r->r[i].model) == 0)
            continue;
        last = r->r[i].model;
        fn(last, r->r[i].ch, ud);
    }
}

static int swap_routes(struct mt_relay_cache *c)
{
    struct mt_relay_routes *r = NULL, *old;
    int rc = build_routes(c, &r);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->rmu);
    old = c->routes;
    c->routes = r;
    pthread_mutex_unlock(&c->rmu);
    mt_relay_routes_unref(old);
    return CM_OK;
}

/* whether the current snapshot predates the counters @p ch (or its TTL ran out) */
static int routes_stale(struct mt_relay_cache *c, const struct mt_store_changes *ch, int ttl)
{
    struct mt_relay_routes *r = mt_relay_cache_routes(c);
    int stale = ch->channels != r->chg_channels || ch->abilities != r->chg_abilities ||
                (ttl && mono(c) - r->built_ms >= (int64_t)c->routes_ttl_ms);
    mt_relay_routes_unref(r);
    return stale;
}

/* rebuilds when stale, one builder at a time (a second one finds it fresh and returns) */
static int refresh_routes(struct mt_relay_cache *c, int ttl)
{
    struct mt_store_changes ch = {0};
    int rc = CM_OK;
    pthread_mutex_lock(&c->bmu);
    if (mt_store_changes(c->st, &ch) == CM_OK && routes_stale(c, &ch, ttl))
        rc = swap_routes(c);
    pthread_mutex_unlock(&c->bmu);
    return rc;
}

struct mt_relay_routes *mt_relay_cache_routes_fresh(struct mt_relay_cache *c)
{
    int rc = refresh_routes(c, 0);
    if (rc)
        cm_log_warn(NULL, "relay: reloading channels failed (%s); the old routes stay",
                    cm_err_str(rc));
    return mt_relay_cache_routes(c);
}

/* ---- automatic disable (watcher thread) ---- */

static char *status_info(const char *other_info, const char *reason, int64_t now)
{
    cJSON *o = NULL;
    char *txt = NULL;
    size_t len;
    if (!other_info || cm_json_parse(other_info, strlen(other_info), NULL, &o, NULL) ||
        !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
        if (cm_json_new_object(&o))
            return NULL;
    }
    if (cm_json_set_string(o, "status_reason", reason) ||
        cm_json_set_int64(o, "status_time", now) || cm_json_print(o, &txt, &len))
        txt = NULL;
    cJSON_Delete(o);
    return txt;
}

static void apply_disable(struct mt_relay_cache *c, const struct pending *p)
{
    struct mt_relay_routes *r = mt_relay_cache_routes(c);
    const struct mt_channel *ch = mt_relay_routes_channel(r, p->id);
    char *info = NULL;
    int rc;

    if (!ch || ch->status != MT_CHANNEL_ENABLED || !ch->auto_ban) {
        cm_log_info(NULL, "relay: channel %lld not disabled automatically (%s)", (long long)p->id,
                    !ch             ? "gone"
                    : !ch->auto_ban ? "auto_ban is 0"
                                    : "not enabled");
        goto out;
    }
    info = status_info(ch->other_info, p->reason, cm_clock_wall_s(c->clock));
    rc = info ? mt_store_channel_set_status(c->st, p->id, MT_CHANNEL_AUTO_DISABLED, info)
              : CM_ERR_NOMEM;
    if (rc) {
        cm_log_error(NULL, "relay: disabling channel %lld failed: %s", (long long)p->id,
                     cm_err_str(rc));
        goto out;
    }
    cm_log_warn(NULL, "relay: channel %lld (%s) disabled automatically: %s", (long long)p->id,
                ch->name ? ch->name : "", p->reason);
    if (swap_routes(c) != CM_OK)
        cm_log_warn(NULL, "relay: routes not rebuilt after disabling channel %lld",
                    (long long)p->id);
out:
    cm_free(info);
    mt_relay_routes_unref(r);
}

int mt_relay_cache_disable(struct mt_relay_cache *c, int64_t id, const char *reason)
{
    struct pending *p;
    size_t n;
    if (!c || id <= 0)
        return CM_ERR_INVAL;
    p = cm_calloc(1, sizeof *p);
    if (!p)
        return CM_ERR_NOMEM;
    p->id = id;
    n = strlen(reason ? reason : "");
    if (n >= sizeof p->reason)
        n = sizeof p->reason - 1;
    memcpy(p->reason, reason ? reason : "", n);
    pthread_mutex_lock(&c->wmu);
    if (c->stop) {
        pthread_mutex_unlock(&c->wmu);
        cm_free(p);
        return CM_ERR_CLOSED;
    }
    p->next = c->pend;
    c->pend = p;
    pthread_cond_signal(&c->wcv);
    pthread_mutex_unlock(&c->wmu);
    return CM_OK;
}

/* ---- the watcher ---- */

static void check_changes(struct mt_relay_cache *c)
{
    struct mt_store_changes ch = {0};
    int rc;

    if (mt_store_changes(c->st, &ch) != CM_OK)
        return;
    if (ch.tokens != c->seen.tokens)
        atomic_fetch_add(&c->tok_gen, 1);
    if (ch.users != c->seen.users)
        atomic_fetch_add(&c->user_gen, 1);
    c->seen = ch;
    rc = refresh_routes(c, 1);
    if (rc) /* tried again next period: the snapshot still carries the old counters */
        cm_log_warn(NULL, "relay: reloading channels failed (%s); the old routes stay",
                    cm_err_str(rc));
}

static void *watch(void *arg)
{
    struct mt_relay_cache *c = arg;

    cm_sys_block_signals(); /* SIGTERM and friends are main()'s */
    pthread_mutex_lock(&c->wmu);
    while (!c->stop) {
        struct pending *p;
        if (!c->pend)
            (void)cm_sys_cond_wait_ms(&c->wcv, &c->wmu, c->period_ms);
        if (c->stop)
            break;
        p = c->pend;
        c->pend = NULL;
        pthread_mutex_unlock(&c->wmu);
        while (p) {
            struct pending *next = p->next;
            apply_disable(c, p);
            cm_free(p);
            p = next;
        }
        check_changes(c);
        pthread_mutex_lock(&c->wmu);
    }
    pthread_mutex_unlock(&c->wmu);
    return NULL;
}

int mt_relay_cache_new(struct mt_store *st, const struct mt_relay_cache_opts *o,
                       struct mt_relay_cache **out)
{
    struct mt_relay_cache *c;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    c = cm_calloc(1, sizeof *c);
    if (!c)
        return CM_ERR_NOMEM;
    c->st = st;
    c->clock = o && o->clock ? o->clock : cm_clock_real();
    c->period_ms = o && o->period_ms ? o->period_ms : 500;
    c->ttl_ms = o && o->ttl_ms ? o->ttl_ms : 5000;
    c->routes_ttl_ms = o && o->routes_ttl_ms ? o->routes_ttl_ms : 30000;
    pthread_mutex_init(&c->tmu, NULL);
    pthread_mutex_init(&c->umu, NULL);
    pthread_mutex_init(&c->rmu, NULL);
    pthread_mutex_init(&c->bmu, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_cond_init(&c->wcv, NULL);
    mt_relay_imap_init(&c->users, sizeof(struct user_slot));
    (void)mt_store_changes(st, &c->seen);
    rc = build_routes(c, &c->routes);
    if (!rc && pthread_create(&c->th, NULL, watch, c) != 0)
        rc = CM_ERR_IO;
    if (rc) {
        mt_relay_cache_free(c);
        return rc;
    }
    c->started = 1;
    *out = c;
    return CM_OK;
}

void mt_relay_cache_stop(struct mt_relay_cache *c)
{
    struct pending *p;
    if (!c)
        return;
    pthread_mutex_lock(&c->wmu);
    c->stop = 1;
    p = c->pend;
    c->pend = NULL;
    pthread_cond_signal(&c->wcv);
    pthread_mutex_unlock(&c->wmu);
    if (c->started) {
        pthread_join(c->th, NULL);
        c->started = 0;
    }
    while (p) {
        struct pending *next = p->next;
        cm_log_warn(NULL, "relay: stopping; channel %lld was not disabled", (long long)p->id);
        cm_free(p);
        p = next;
    }
}

void mt_relay_cache_free(struct mt_relay_cache *c)
{
    if (!c)
        return;
    mt_relay_cache_stop(c);
    clear_tokens(c);
    clear_users(c);
    mt_relay_imap_cleanup(&c->users);
    mt_relay_routes_unref(c->routes);
    pthread_cond_destroy(&c->wcv);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->rmu);
    pthread_mutex_destroy(&c->bmu);
    pthread_mutex_destroy(&c->umu);
    pthread_mutex_destroy(&c->tmu);
    cm_free(c);
}
