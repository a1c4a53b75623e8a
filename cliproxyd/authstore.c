/* SPDX-License-Identifier: MIT */
/*
 * authstore.c - the credentials of one auth dir: scan, watch, register in the
 * scheduler, hand out refcounted snapshots, keep refresh bookkeeping.
 *
 * Design: a sorted array of entries (one per "*.json" file), each with the SHA-256 of
 * the content last loaded or written by us. Loading a name = read, hash, compare; only a
 * different content is parsed and applied. Everything that loads or changes the
 * scheduler holds load_mu (outer); the map and the entries' fields are guarded by mu
 * (inner leaf, never held across a scheduler call or file I/O). See authstore.h.
 */
#include "authstore.h"

#include "catalog.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/file.h"
#include "cm/fswatch.h"
#include "cm/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DEBOUNCE_MS 100

struct entry {
    char *name;
    enum cp_authstore_kind kind;
    int pending;                   /* being registered: not listed yet */
    char *provider;                /* owned; "" when unknown */
    char *email;                   /* owned or NULL */
    struct cp_authstore_cred *cur; /* VALID: the store's reference to the current snapshot */
    int registered;                /* present in the scheduler */
    char *error;                   /* owned or NULL */
    int has_digest;
    unsigned char digest[CM_CRYPTO_SHA256_LEN];
    uint64_t loads;
    int refreshing;
    uint64_t refresh_gen; /* loads when the refresh began */
    int failures;
    int64_t retry_at_ms; /* monotonic */
    int relogin;
};

struct cp_authstore {
    char *dir;
    struct cp_sched *sched;
    const struct cm_clock *clock;
    cp_authstore_models_fn models;
    void *models_ud;
    unsigned debounce_ms;
    struct cm_fswatch *w;
    pthread_mutex_t load_mu; /* outer: loading, file writes, scheduler changes */
    pthread_mutex_t mu;      /* inner leaf: the map and entry fields */
    struct entry **v;        /* sorted by name */
    size_t n, cap;
};

/* ---- snapshots ---------------------------------------------------------------------- */

static void cred_free(struct cp_authstore_cred *c)
{
    if (!c)
        return;
    cp_authfile_free((struct cp_authfile *)(uintptr_t)c->af);
    cm_free(c);
}

void cp_authstore_release(struct cp_authstore_cred *c)
{
    if (c && atomic_fetch_sub(&c->_refs, 1) == 1)
        cred_free(c);
}

/* Takes ownership of *afp on success (sets it NULL). */
static int cred_new(struct cp_authfile **afp, struct cp_authstore_cred **out)
{
    struct cp_authstore_cred *c = cm_calloc(1, sizeof *c);
    struct cp_authfile *af = *afp;

    if (!c)
        return CM_ERR_NOMEM;
    c->af = af;
    c->id = af->name;
    c->provider = cp_authfile_provider_name(af->provider);
    c->provider_id = af->provider;
    c->access_token = af->access_token;
    c->api_key = af->api_key;
    c->resource_url = af->resource_url;
    c->project_id = af->project_id;
    c->account_id = af->account_id;
    c->proxy_url = af->proxy_url;
    atomic_init(&c->_refs, 1);
    *afp = NULL;
    *out = c;
    return CM_OK;
}

/* ---- the map (caller holds mu) ---------------------------------------------------- */

/* 1 and *idx = position when found; 0 and *idx = insertion point otherwise. */
static int map_find(const struct cp_authstore *st, const char *name, size_t *idx)
{
    size_t lo = 0, hi = st->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(st->v[mid]->name, name);
        if (cmp == 0) {
            *idx = mid;
            return 1;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return 0;
}

static struct entry *map_get(const struct cp_authstore *st, const char *name)
{
    size_t i;
    return map_find(st, name, &i) ? st->v[i] : NULL;
}

/* Room for one more entry; may allocate, so call it before committing anything. */
static int map_reserve(struct cp_authstore *st)
{
    struct entry **nv;
    size_t ncap;

    if (st->n < st->cap)
        return CM_OK;
    ncap = st->cap ? st->cap * 2 : 16;
    nv = cm_realloc(st->v, ncap * sizeof *nv);
    if (!nv)
        return CM_ERR_NOMEM;
    st->v = nv;
    st->cap = ncap;
    return CM_OK;
}

/* Never allocates (map_reserve() was called). */
static void map_insert(struct cp_authstore *st, struct entry *e)
{
    size_t i;

    (void)map_find(st, e->name, &i);
    memmove(st->v + i + 1, st->v + i, (st->n - i) * sizeof *st->v);
    st->v[i] = e;
    st->n++;
}

static void map_remove(struct cp_authstore *st, const struct entry *e)
{
    size_t i;

    if (map_find(st, e->name, &i) && st->v[i] == e) {
        memmove(st->v + i, st->v + i + 1, (st->n - i - 1) * sizeof *st->v);
        st->n--;
    }
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    cp_authstore_release(e->cur);
    cm_free(e->name);
    cm_free(e->provider);
    cm_free(e->email);
    cm_free(e->error);
    cm_free(e);
}

static struct entry *entry_new(const char *name)
{
    struct entry *e = cm_calloc(1, sizeof *e);

    if (!e)
        return NULL;
    e->name = cm_strdup(name);
    if (!e->name) {
        cm_free(e);
        return NULL;
    }
    return e;
}

/* ---- models ------------------------------------------------------------------------ */

int cp_authstore_default_models(const struct cp_authfile *af, const char *const **models, size_t *n,
                                void *ud)
{
    (void)ud;
    if (!af || !models || !n)
        return CM_ERR_INVAL;
    *n = cp_catalog_models(cp_authfile_provider_name(af->provider), af->plan_type, models);
    return *n ? CM_OK : CM_ERR_INVAL;
}

/* ---- loading (caller holds load_mu) ---------------------------------------------- */

static int make_path(const struct cp_authstore *st, const char *name, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%s/%s", st->dir, name);
    return (k < 0 || (size_t)k >= cap) ? CM_ERR_LIMIT : CM_OK;
}

/*
 * Reads @p name whole. CM_OK; CM_ERR_NOTFOUND (gone); CM_ERR_LIMIT (too big, message
 * in @p why); CM_ERR_INVAL (not a regular file); CM_ERR_IO; CM_ERR_NOMEM.
 */
static int read_auth_file(const struct cp_authstore *st, const char *name, char **data, size_t *len)
{
    char path[PATH_MAX], err[256];
    int rc = make_path(st, name, path, sizeof path);

    if (!rc)
        rc = cm_file_read(path, CP_AUTHFILE_MAX_SIZE, data, len, err, sizeof err);
    if (rc == CM_ERR_IO)
        cm_log_warn(NULL, "auth file '%s': %s", name, err);
    return rc;
}

/* Removes @p name from the scheduler and the map. */
static void drop_entry(struct cp_authstore *st, const char *name)
{
    struct entry *e;
    int registered;

    pthread_mutex_lock(&st->mu);
    e = map_get(st, name);
    registered = e ? e->registered : 0;
    pthread_mutex_unlock(&st->mu);
    if (!e)
        return;
    if (registered)
        (void)cp_sched_remove(st->sched, name);
    pthread_mutex_lock(&st->mu);
    map_remove(st, e);
    pthread_mutex_unlock(&st->mu);
    cm_log_info(NULL, "auth file '%s' removed", name);
    entry_free(e); /* in-flight users keep their own snapshot references */
}

/*
 * Records that an entry's file content was (re)loaded: takes ownership of *provider,
 * *email and (if @p error is not NULL) *error, sets the digest, resets the refresh
 * state. st->mu held.
 */
static void loaded(struct entry *e, int registered, char **provider, char **email, char **error,
                   const unsigned char *dig)
{
    e->pending = 0;
    e->registered = registered;
    cm_free(e->provider);
    e->provider = *provider;
    *provider = NULL;
    cm_free(e->email);
    e->email = *email;
    *email = NULL;
    cm_free(e->error);
    e->error = error ? *error : NULL;
    if (error)
        *error = NULL;
    e->has_digest = dig != NULL;
    if (dig)
        memcpy(e->digest, dig, sizeof e->digest);
    e->loads++;
    e->relogin = 0;
    e->failures = 0;
    e->retry_at_ms = 0;
}

/*
 * Makes @p name an INVALID or UNSUPPORTED entry with content digest @p dig (NULL: none,
 * so the next event retries), taking it out of the scheduler. Strings are copied.
 */
static int set_unregistered(struct cp_authstore *st, const char *name, const unsigned char *dig,
                            enum cp_authstore_kind kind, const char *provider, const char *email,
                            const char *error)
{
    struct entry *e, *fresh = NULL;
    struct cp_authstore_cred *old_cur = NULL;
    char *p = cm_strdup(provider ? provider : "");
    char *em = email ? cm_strdup(email) : NULL;
    char *er = error ? cm_strdup(error) : NULL;
    int registered, rc = CM_OK;

    if (!p || (email && !em) || (error && !er)) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_lock(&st->mu);
    e = map_get(st, name);
    registered = e ? e->registered : 0;
    pthread_mutex_unlock(&st->mu);
    if (!e) {
        fresh = entry_new(name);
        if (!fresh) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        pthread_mutex_lock(&st->mu);
        rc = map_reserve(st);
        pthread_mutex_unlock(&st->mu);
        if (rc)
            goto out;
    }
    if (registered)
        (void)cp_sched_remove(st->sched, name);

    pthread_mutex_lock(&st->mu);
    if (fresh) {
        map_insert(st, fresh);
        e = fresh;
        fresh = NULL;
    }
    old_cur = e->cur;
    e->cur = NULL;
    e->kind = kind;
    loaded(e, 0, &p, &em, &er, dig);
    pthread_mutex_unlock(&st->mu);
out:
    cp_authstore_release(old_cur);
    entry_free(fresh);
    cm_free(p);
    cm_free(em);
    cm_free(er);
    return rc;
}

static void fill_sched_cred(const struct cp_authfile *af, const char *const *models,
                            size_t n_models, struct cp_sched_cred *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->id = af->name;
    sc->provider = cp_authfile_provider_name(af->provider);
    sc->prefix = af->prefix;
    sc->priority = (int)af->priority;
    sc->disabled = af->disabled;
    sc->disable_cooling = af->disable_cooling;
    sc->models = models;
    sc->n_models = n_models;
    sc->excluded = (const char *const *)af->excluded_models;
    sc->n_excluded = af->n_excluded_models;
}

/* Registers or updates the valid credential *@p afp (ownership taken on CM_OK). */
static int set_valid(struct cp_authstore *st, const char *name, const unsigned char *dig,
                     struct cp_authfile **afp)
{
    struct cp_authfile *af = *afp;
    struct cp_authstore_cred *cred = NULL, *old_cur = NULL;
    struct entry *e, *fresh = NULL;
    struct cp_sched_cred sc;
    const char *const *models = NULL;
    size_t n_models = 0;
    char *p = NULL, *em = NULL;
    char desc[384], msg[CP_AUTHFILE_ERR_MAX + 64];
    int registered, rc;

    cp_authfile_describe(af, desc, sizeof desc);
    rc = st->models(af, &models, &n_models, st->models_ud);
    if (rc == CM_ERR_NOMEM)
        goto out;
    if (rc) {
        snprintf(msg, sizeof msg, "auth file '%s': no model list for provider '%s' (%s)", name,
                 cp_authfile_provider_name(af->provider), cm_err_str(rc));
        cm_log_warn(NULL, "%s; skipped", msg);
        rc = set_unregistered(st, name, dig, CP_AUTHSTORE_INVALID,
                              cp_authfile_provider_name(af->provider), af->email, msg);
        goto out;
    }
    fill_sched_cred(af, models, n_models, &sc);
    p = cm_strdup(cp_authfile_provider_name(af->provider));
    em = af->email ? cm_strdup(af->email) : NULL;
    if (!p || (af->email && !em)) {
        rc = CM_ERR_NOMEM;
        goto out;
    }

    pthread_mutex_lock(&st->mu);
    e = map_get(st, name);
    registered = e ? e->registered : 0;
    pthread_mutex_unlock(&st->mu);
    if (!e) {
        fresh = entry_new(name);
        if (!fresh) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        fresh->pending = 1;
        fresh->kind = CP_AUTHSTORE_INVALID;
        pthread_mutex_lock(&st->mu);
        rc = map_reserve(st);
        pthread_mutex_unlock(&st->mu);
        if (rc)
            goto out;
    }

    if (registered) {
        /* scheduler first: if it fails nothing has changed */
        rc = cp_sched_update(st->sched, &sc);
        if (rc == CM_ERR_NOTFOUND)
            rc = cp_sched_add(st->sched, &sc);
        if (rc)
            goto sched_failed;
        rc = cred_new(afp, &cred);
        if (rc) {
            /* the scheduler has the new settings, the old snapshot stays: no digest, retry */
            dig = NULL;
        }
    } else {
        /* publish the snapshot first, so that a pick right after the add finds it */
        rc = cred_new(afp, &cred);
        if (rc)
            goto out;
        pthread_mutex_lock(&st->mu);
        if (fresh) {
            map_insert(st, fresh);
            e = fresh;
            fresh = NULL;
        }
        old_cur = e->cur;
        e->cur = cred;
        atomic_fetch_add(&cred->_refs, 1); /* ours, in case we must roll back */
        pthread_mutex_unlock(&st->mu);
        cp_authstore_release(old_cur);
        old_cur = NULL;
        rc = cp_sched_add(st->sched, &sc);
        if (rc == CM_ERR_EXISTS)
            rc = cp_sched_update(st->sched, &sc);
        if (rc) {
            pthread_mutex_lock(&st->mu);
            e->cur = NULL;
            if (e->pending) {
                map_remove(st, e);
                fresh = e;
            }
            pthread_mutex_unlock(&st->mu);
            cp_authstore_release(cred); /* the map's */
            cp_authstore_release(cred); /* ours */
            cred = NULL;
            goto sched_failed;
        }
        cp_authstore_release(cred); /* drop ours; the map keeps one */
        cred = NULL;
    }

    pthread_mutex_lock(&st->mu);
    if (cred) {
        old_cur = e->cur;
        e->cur = cred;
        cred = NULL;
    }
    e->kind = CP_AUTHSTORE_VALID;
    loaded(e, 1, &p, &em, NULL, dig);
    pthread_mutex_unlock(&st->mu);
    cm_log_info(NULL, "auth file '%s': %s %s (priority %d%s)", name, desc,
                registered ? "reloaded" : "loaded", sc.priority, sc.disabled ? ", disabled" : "");
    goto out;

sched_failed:
    if (rc == CM_ERR_NOMEM)
        goto out;
    snprintf(msg, sizeof msg, "auth file '%s': cannot register %s: %s", name, desc, cm_err_str(rc));
    cm_log_warn(NULL, "%s", msg);
    rc = set_unregistered(st, name, dig, CP_AUTHSTORE_INVALID, p, em, msg);
out:
    cp_authstore_release(old_cur);
    cp_authstore_release(cred);
    entry_free(fresh);
    cm_free(p);
    cm_free(em);
    return rc;
}

/* Loads one name (load_mu held). CM_OK, CM_ERR_NOMEM or CM_ERR_IO. */
static int load_name(struct cp_authstore *st, const char *name)
{
    unsigned char dig[CM_CRYPTO_SHA256_LEN];
    struct cp_authfile *af = NULL;
    struct cp_authfile_err err;
    char msg[CP_AUTHFILE_ERR_MAX + 64];
    char *data = NULL;
    size_t len = 0;
    struct entry *e;
    int same, rc;

    rc = read_auth_file(st, name, &data, &len);
    if (rc == CM_ERR_NOTFOUND) {
        drop_entry(st, name);
        rc = CM_OK;
        goto out;
    }
    if (rc == CM_ERR_LIMIT || rc == CM_ERR_INVAL) {
        snprintf(msg, sizeof msg, "auth file '%s': %s", name,
                 rc == CM_ERR_LIMIT ? "larger than 1 MiB" : "not a regular file");
        pthread_mutex_lock(&st->mu);
        e = map_get(st, name);
        same = e && e->kind == CP_AUTHSTORE_INVALID && e->error && strcmp(e->error, msg) == 0;
        pthread_mutex_unlock(&st->mu);
        rc = CM_OK;
        if (!same) {
            cm_log_warn(NULL, "%s; skipped", msg);
            rc = set_unregistered(st, name, NULL, CP_AUTHSTORE_INVALID, "", NULL, msg);
        }
        goto out;
    }
    if (rc)
        goto out;

    cm_crypto_sha256(data, len, dig);
    pthread_mutex_lock(&st->mu);
    e = map_get(st, name);
    same = e && !e->pending && e->has_digest && memcmp(e->digest, dig, sizeof dig) == 0;
    pthread_mutex_unlock(&st->mu);
    if (same)
        goto out; /* unchanged, or our own write-back */

    rc = cp_authfile_parse(name, data, len, &af, &err);
    if (rc == CM_ERR_NOMEM)
        goto out;
    if (rc) {
        cm_log_warn(NULL, "%s; skipped", err.msg);
        rc = set_unregistered(st, name, dig, CP_AUTHSTORE_INVALID, "", NULL, err.msg);
        goto out;
    }
    if (!cp_authfile_provider_supported(af->provider)) {
        const char *prov = af->provider == CP_AUTH_UNKNOWN && af->type
                               ? af->type
                               : cp_authfile_provider_name(af->provider);
        snprintf(msg, sizeof msg, "auth file '%s': provider '%s' is not supported yet", name, prov);
        cm_log_warn(NULL, "%s; skipped", msg);
        rc = set_unregistered(st, name, dig, CP_AUTHSTORE_UNSUPPORTED, prov, af->email, msg);
        goto out;
    }
    rc = set_valid(st, name, dig, &af);
out:
    if (rc == CM_ERR_NOMEM)
        cm_log_error(NULL, "auth file '%s': out of memory while loading; will retry", name);
    cp_authfile_free(af);
    if (data) {
        cm_crypto_memzero(data, len);
        cm_free(data);
    }
    return rc;
}

static int wanted_name(const char *name)
{
    size_t n = strlen(name);

    return n > 5 && n <= CP_AUTHFILE_NAME_MAX && name[0] != '.' && !strchr(name, '/') &&
           strcmp(name + n - 5, ".json") == 0;
}

static int rescan_locked(struct cp_authstore *st)
{
    DIR *d = opendir(st->dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, i;
    int rc = CM_OK, r;

    if (!d) {
        cm_log_error(NULL, "auth dir %s: %s", st->dir, strerror(errno));
        return CM_ERR_IO;
    }
    while ((de = readdir(d)) != NULL) {
        if (!wanted_name(de->d_name))
            continue;
        r = load_name(st, de->d_name);
        if (r && !rc)
            rc = r;
    }
    closedir(d);

    /* entries whose file is gone */
    pthread_mutex_lock(&st->mu);
    names = st->n ? cm_calloc(st->n, sizeof *names) : NULL;
    if (names) {
        for (i = 0; i < st->n; i++) {
            names[i] = cm_strdup(st->v[i]->name);
            if (!names[i])
                break;
        }
        n = i;
    }
    r = (st->n && (!names || n < st->n)) ? CM_ERR_NOMEM : CM_OK;
    pthread_mutex_unlock(&st->mu);
    if (r && !rc)
        rc = r;
    for (i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat sb;
        if (make_path(st, names[i], path, sizeof path) == CM_OK && stat(path, &sb) != 0 &&
            errno == ENOENT)
            drop_entry(st, names[i]);
        cm_free(names[i]);
    }
    cm_free(names);
    return rc;
}

int cp_authstore_rescan(struct cp_authstore *st)
{
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&st->load_mu);
    rc = rescan_locked(st);
    pthread_mutex_unlock(&st->load_mu);
    return rc;
}

static void on_batch(const struct cm_fswatch_batch *b, void *ud)
{
    struct cp_authstore *st = ud;
    size_t i;

    pthread_mutex_lock(&st->load_mu);
    if (b->overflow) {
        (void)rescan_locked(st);
    } else {
        for (i = 0; i < b->n; i++)
            if (wanted_name(b->names[i]))
                (void)load_name(st, b->names[i]);
    }
    pthread_mutex_unlock(&st->load_mu);
}

/* ---- life cycle ------------------------------------------------------------------- */

int cp_authstore_new(const char *dir, struct cp_sched *sched, const struct cm_clock *clock,
                     const struct cp_authstore_opts *opts, struct cp_authstore **out)
{
    struct cp_authstore *st = NULL;
    int rc = CM_OK;

    if (!dir || !*dir || !sched || !out) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    st = cm_calloc(1, sizeof *st);
    if (!st) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    st->dir = cm_strdup(dir);
    if (!st->dir) {
        cm_free(st);
        st = NULL;
        rc = CM_ERR_NOMEM;
        goto out;
    }
    st->sched = sched;
    st->clock = clock;
    st->models = opts && opts->models ? opts->models : cp_authstore_default_models;
    st->models_ud = opts ? opts->models_ud : NULL;
    st->debounce_ms = opts && opts->debounce_ms ? opts->debounce_ms : DEFAULT_DEBOUNCE_MS;
    pthread_mutex_init(&st->load_mu, NULL);
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
out:
    return rc;
}

int cp_authstore_start(struct cp_authstore *st)
{
    struct cm_fswatch_opts wo;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    if (st->w)
        return CM_ERR_EXISTS;
    memset(&wo, 0, sizeof wo);
    wo.dir = st->dir;
    wo.suffix = ".json";
    wo.debounce_ms = st->debounce_ms;
    wo.fn = on_batch;
    wo.ud = st;
    rc = cm_fswatch_new(&st->w, &wo);
    if (rc)
        return rc;
    return cp_authstore_rescan(st);
}

void cp_authstore_free(struct cp_authstore *st)
{
    size_t i;

    if (!st)
        return;
    cm_fswatch_free(st->w);
    for (i = 0; i < st->n; i++)
        entry_free(st->v[i]);
    cm_free(st->v);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->load_mu);
    cm_free(st->dir);
    cm_free(st);
}

/* ---- lookups ---------------------------------------------------------------------- */

struct cp_authstore_cred *cp_authstore_acquire(struct cp_authstore *st, const char *id)
{
    struct cp_authstore_cred *c = NULL;
    struct entry *e;

    if (!st || !id)
        return NULL;
    pthread_mutex_lock(&st->mu);
    e = map_get(st, id);
    if (e && e->cur) {
        c = e->cur;
        atomic_fetch_add(&c->_refs, 1);
    }
    pthread_mutex_unlock(&st->mu);
    return c;
}

static const struct cp_sched_cred_info *snap_find(const struct cp_sched_snapshot *s, const char *id)
{
    size_t lo = 0, hi = s ? s->n : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(s->creds[mid].id, id);
        if (cmp == 0)
            return &s->creds[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void cp_authstore_list_free(struct cp_authstore_list *l)
{
    size_t i;

    if (!l)
        return;
    for (i = 0; i < l->n; i++) {
        cm_free(l->items[i].name);
        cm_free(l->items[i].provider);
        cm_free(l->items[i].email);
        cm_free(l->items[i].error);
    }
    cm_free(l->items);
    cm_free(l);
}

int cp_authstore_list(struct cp_authstore *st, struct cp_authstore_list **out)
{
    struct cp_sched_snapshot *snap = NULL;
    struct cp_authstore_list *l = NULL;
    size_t i;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    rc = cp_sched_snapshot(st->sched, &snap);
    if (rc)
        goto out;
    l = cm_calloc(1, sizeof *l);
    if (!l) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    pthread_mutex_lock(&st->mu);
    if (st->n) {
        l->items = cm_calloc(st->n, sizeof *l->items);
        if (!l->items)
            rc = CM_ERR_NOMEM;
    }
    for (i = 0; !rc && i < st->n; i++) {
        const struct entry *e = st->v[i];
        struct cp_authstore_info *it = &l->items[l->n];
        const struct cp_sched_cred_info *ci;

        if (e->pending)
            continue;
        l->n++;
        it->name = cm_strdup(e->name);
        it->provider = cm_strdup(e->provider ? e->provider : "");
        it->email = e->email ? cm_strdup(e->email) : NULL;
        it->error = e->error ? cm_strdup(e->error) : NULL;
        if (!it->name || !it->provider || (e->email && !it->email) || (e->error && !it->error))
            rc = CM_ERR_NOMEM;
        it->kind = e->kind;
        it->state = CP_SCHED_ACTIVE;
        it->refreshing = e->refreshing;
        it->refresh_failures = e->failures;
        it->next_retry_mono_ms = e->retry_at_ms;
        it->needs_relogin = e->relogin;
        it->loads = e->loads;
        ci = e->kind == CP_AUTHSTORE_VALID ? snap_find(snap, e->name) : NULL;
        if (ci) {
            it->state = ci->state;
            if (ci->state == CP_SCHED_COOLING)
                it->cooling_until_wall_ms = ci->until_wall_ms;
        }
    }
    pthread_mutex_unlock(&st->mu);
out:
    cp_sched_snapshot_free(snap);
    if (rc) {
        cp_authstore_list_free(l);
        l = NULL;
    }
    if (!rc)
        *out = l;
    return rc;
}

const char *cp_authstore_status_str(const struct cp_authstore_info *i)
{
    if (!i)
        return "invalid";
    if (i->kind == CP_AUTHSTORE_INVALID)
        return "invalid";
    if (i->kind == CP_AUTHSTORE_UNSUPPORTED)
        return "unsupported";
    return cp_sched_state_str(i->state);
}

/* ---- refresh bookkeeping ------------------------------------------------------------ */

void cp_authstore_ids_free(char **ids, size_t n)
{
    size_t i;

    if (!ids)
        return;
    for (i = 0; i < n; i++)
        cm_free(ids[i]);
    cm_free(ids);
}

static int refresh_wanted(const struct cp_authstore *st, const struct entry *e, int64_t now)
{
    return e->kind == CP_AUTHSTORE_VALID && e->cur && !e->pending && !e->refreshing &&
           !e->relogin && e->retry_at_ms <= now && cp_authfile_needs_refresh(e->cur->af, st->clock);
}

int cp_authstore_due(struct cp_authstore *st, char ***ids, size_t *n)
{
    char **v = NULL;
    size_t k = 0, cnt = 0, i;
    int64_t now;
    int rc = CM_OK;

    if (!st || !ids || !n)
        return CM_ERR_INVAL;
    now = cm_clock_mono_ms(st->clock);
    pthread_mutex_lock(&st->mu);
    for (i = 0; i < st->n; i++)
        cnt += refresh_wanted(st, st->v[i], now) ? 1 : 0;
    if (cnt) {
        v = cm_calloc(cnt, sizeof *v);
        if (!v)
            rc = CM_ERR_NOMEM;
    }
    for (i = 0; !rc && i < st->n && k < cnt; i++) {
        if (!refresh_wanted(st, st->v[i], now))
            continue;
        v[k] = cm_strdup(st->v[i]->name);
        if (!v[k])
            rc = CM_ERR_NOMEM;
        else
            k++;
    }
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        cp_authstore_ids_free(v, k);
        v = NULL;
        k = 0;
    }
    *ids = v;
    *n = k;
    return rc;
}

int cp_authstore_begin_refresh(struct cp_authstore *st, const char *id,
                               struct cp_authstore_cred **ref)
{
    struct entry *e;
    int rc = CM_OK;

    if (!st || !id)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&st->mu);
    e = map_get(st, id);
    if (!e || e->kind != CP_AUTHSTORE_VALID || !e->cur || e->pending) {
        rc = CM_ERR_NOTFOUND;
    } else if (e->refreshing) {
        rc = CM_ERR_AGAIN;
    } else {
        e->refreshing = 1;
        e->refresh_gen = e->loads;
        if (ref) {
            atomic_fetch_add(&e->cur->_refs, 1);
            *ref = e->cur;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Records a failed refresh (load_mu held). */
static void refresh_failed(struct cp_authstore *st, const char *id, int permanent, const char *why)
{
    char msg[CP_AUTHFILE_ERR_MAX + 64];
    char *er;
    struct entry *e;
    int64_t delay = 0;

    snprintf(msg, sizeof msg, "refresh failed%s: %s", permanent ? " for good" : "",
             why && *why ? why : "unknown error");
    er = cm_strdup(msg);
    if (permanent)
        (void)cp_sched_set_relogin(st->sched, id);
    pthread_mutex_lock(&st->mu);
    e = map_get(st, id);
    if (e) {
        e->refreshing = 0;
        if (permanent) {
            e->relogin = 1;
        } else {
            int shift = e->failures < 5 ? e->failures : 5;
            delay = CP_AUTHSTORE_RETRY_BASE_MS << shift;
            if (delay > CP_AUTHSTORE_RETRY_MAX_MS)
                delay = CP_AUTHSTORE_RETRY_MAX_MS;
            e->failures++;
            e->retry_at_ms = cm_clock_mono_ms(st->clock) + delay;
        }
        cm_free(e->error);
        e->error = er;
        er = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    cm_free(er);
    if (permanent)
        cm_log_warn(NULL, "auth file '%s': %s; needs re-login", id, msg);
    else
        cm_log_warn(NULL, "auth file '%s': %s; retry in %lld s", id, msg,
                    (long long)(delay / 1000));
}

/* Applies a token answer to a copy of @p cur, writes it, swaps it in (load_mu held). */
static int refresh_succeeded(struct cp_authstore *st, const char *id,
                             const struct cp_authstore_cred *cur, const char *resp, size_t len,
                             const char *userinfo, size_t ulen)
{
    struct cp_authfile_err uerr;
    int urc = CM_OK;
    unsigned char dig[CM_CRYPTO_SHA256_LEN];
    struct cp_authfile *copy = NULL;
    struct cp_authstore_cred *cred = NULL, *old = NULL;
    struct cp_authfile_err err;
    char path[PATH_MAX];
    char *text = NULL, *nt = NULL;
    size_t tlen = 0, ntlen = 0;
    struct entry *e;
    int rc, wrc;

    memset(&err, 0, sizeof err);
    rc = cp_authfile_serialize(cur->af, &text, &tlen);
    if (!rc)
        rc = cp_authfile_parse(id, text, tlen, &copy, &err);
    if (rc) {
        refresh_failed(st, id, 0, "out of memory");
        goto out;
    }
    rc = cp_authfile_apply_refresh(copy, resp, len, st->clock, &err);
    if (rc) {
        refresh_failed(st, id, 0, err.msg[0] ? err.msg : cm_err_str(rc));
        goto out;
    }
    memset(&uerr, 0, sizeof uerr);
    if (userinfo) {
        /* on failure copy is unchanged: the new tokens are kept with the old api_key */
        urc = cp_authfile_apply_iflow_userinfo(copy, userinfo, ulen, &uerr);
        if (urc)
            cm_log_warn(NULL, "auth file '%s': token refreshed, but %s", id,
                        uerr.msg[0] ? uerr.msg : cm_err_str(urc));
    }
    rc = cp_authfile_serialize(copy, &nt, &ntlen);
    if (!rc)
        rc = cred_new(&copy, &cred);
    if (rc) {
        refresh_failed(st, id, 0, "out of memory");
        goto out;
    }
    wrc = make_path(st, id, path, sizeof path);
    if (!wrc)
        wrc = cp_authfile_write(path, nt, ntlen);
    cm_crypto_sha256(nt, ntlen, dig);

    pthread_mutex_lock(&st->mu);
    e = map_get(st, id);
    if (e) {
        old = e->cur;
        e->cur = cred;
        cred = NULL;
        e->refreshing = 0;
        e->failures = 0;
        e->retry_at_ms = 0;
        cm_free(e->error);
        e->error = wrc   ? cm_strdup("refreshed, but the file could not be written")
                   : urc ? cm_strdup(uerr.msg[0] ? uerr.msg : "iflow user info failed")
                         : NULL;
        if (!wrc) {
            memcpy(e->digest, dig, sizeof dig);
            e->has_digest = 1;
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (wrc) {
        cm_log_error(NULL, "auth file '%s': refreshed, but writing it failed (%s)", id,
                     cm_err_str(wrc));
        rc = CM_ERR_IO;
    } else {
        cm_log_info(NULL, "auth file '%s': token refreshed", id);
    }
out:
    cp_authstore_release(old);
    cp_authstore_release(cred);
    cp_authfile_free(copy);
    if (text) {
        cm_crypto_memzero(text, tlen);
        cm_free(text);
    }
    if (nt) {
        cm_crypto_memzero(nt, ntlen);
        cm_free(nt);
    }
    return rc;
}

int cp_authstore_finish_refresh(struct cp_authstore *st, const char *id, const char *resp,
                                size_t len, int permanent, const char *error)
{
    return cp_authstore_finish_refresh_ex(st, id, resp, len, NULL, 0, permanent, error);
}

int cp_authstore_finish_refresh_ex(struct cp_authstore *st, const char *id, const char *resp,
                                   size_t len, const char *userinfo, size_t ulen, int permanent,
                                   const char *error)
{
    struct cp_authstore_cred *cur = NULL;
    struct entry *e;
    int rc = CM_OK, changed = 0;

    if (!st || !id)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&st->load_mu);
    pthread_mutex_lock(&st->mu);
    e = map_get(st, id);
    if (!e || e->kind != CP_AUTHSTORE_VALID || !e->cur || e->pending) {
        rc = CM_ERR_NOTFOUND;
        if (e)
            e->refreshing = 0;
    } else if (e->refreshing && e->refresh_gen != e->loads) {
        changed = 1;
        e->refreshing = 0;
    } else {
        cur = e->cur;
        atomic_fetch_add(&cur->_refs, 1);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc)
        goto out;
    if (changed) {
        cm_log_info(NULL, "auth file '%s' changed during its refresh; answer dropped", id);
        rc = CM_ERR_CLOSED;
        goto out;
    }
    if (resp)
        rc = refresh_succeeded(st, id, cur, resp, len, userinfo, ulen);
    else
        refresh_failed(st, id, permanent, error);
out:
    pthread_mutex_unlock(&st->load_mu);
    cp_authstore_release(cur);
    return rc;
}

int cp_authstore_cred_wrap(struct cp_authfile **afp, struct cp_authstore_cred **out)
{
    if (!afp || !*afp || !out)
        return CM_ERR_INVAL;
    return cred_new(afp, out);
}
