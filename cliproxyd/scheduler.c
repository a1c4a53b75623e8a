/* SPDX-License-Identifier: MIT */
/*
 * scheduler.c - credential registry, pick (priority buckets, round-robin / fill-first) and
 * per-(credential, model) cooldowns driven by upstream results.
 *
 * Layout: credentials live in one array sorted by id (so "inside a bucket sorted by id"
 * is the array order); each credential has a state slot per served model, allocated
 * when the credential is added, so pick and mark_result never allocate. Round-robin
 * cursors live in a fixed open-addressing table keyed by a 64-bit hash of
 * (providers, model), cleared when it gets full (as CLIProxyAPI resets its map at 4096
 * keys); a hash collision only shares a cursor, which changes rotation order, never
 * correctness. One mutex guards everything; no callbacks run under it.
 */
#include "scheduler.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "cm/alloc.h"
#include "cm/err.h"

#define CURSOR_SLOTS 4096u                  /* power of two */
#define CURSOR_RESET_AT 3072u               /* clear the table at 75 % load */
#define HINT_MAX_S (10LL * 366 * 24 * 3600) /* clamp absurd hints (no overflow in ms) */

struct mstate {
    int64_t until_ms; /* monotonic; cooling while now < until_ms */
    enum cp_sched_reason reason;
    int level; /* hint-less 429 ladder */
    int last_status;
    enum cp_sched_transport last_tx;
};

struct cred {
    char *id, *provider;
    char *prefix; /* NULL = none */
    size_t prefix_len;
    int priority, disabled, dc, relogin;
    char **models;
    size_t n_models;
    char **excl;
    size_t n_excl;
    struct mstate *st; /* parallel to models */
    int last_status;
    enum cp_sched_transport last_tx;
};

struct cursor {
    uint64_t h; /* 0 = empty slot */
    uint32_t pos;
};

struct cp_sched {
    pthread_mutex_t mu;
    const struct cm_clock *clk;
    struct cp_sched_config cfg;
    struct cred **v; /* sorted by id */
    size_t n, cap;
    struct cursor *cur; /* CURSOR_SLOTS entries */
    size_t n_cur;
};

/* ---- building and freeing credentials ---- */

static void strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        cm_free(v[i]);
    cm_free(v);
}

static void cred_free(struct cred *c)
{
    if (!c)
        return;
    cm_free(c->id);
    cm_free(c->provider);
    cm_free(c->prefix);
    strv_free(c->models, c->n_models);
    strv_free(c->excl, c->n_excl);
    cm_free(c->st);
    cm_free(c);
}

static int strv_dup(const char *const *in, size_t n, char ***out)
{
    int rc = CM_OK;
    char **v = NULL;
    size_t i = 0;

    if (n == 0) {
        *out = NULL;
        return CM_OK;
    }
    v = cm_calloc(n, sizeof(*v));
    if (!v) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        v[i] = cm_strdup(in[i]);
        if (!v[i]) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
    }
    *out = v;
    v = NULL;
out:
    strv_free(v, i);
    return rc;
}

static int strv_valid(const char *const *v, size_t n)
{
    if (n > 0 && !v)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!v[i] || !v[i][0])
            return 0;
    return 1;
}

static int cred_build(const struct cp_sched_cred *in, struct cred **out)
{
    int rc = CM_OK;
    struct cred *c = NULL;

    if (!in || !in->id || !in->id[0] || !in->provider || !in->provider[0] ||
        !strv_valid(in->models, in->n_models) || !strv_valid(in->excluded, in->n_excluded) ||
        (in->prefix && strchr(in->prefix, '/'))) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (strlen(in->id) > CP_SCHED_MAX_ID_LEN || in->n_models > CP_SCHED_MAX_MODELS ||
        in->n_excluded > CP_SCHED_MAX_MODELS) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    c = cm_calloc(1, sizeof(*c));
    if (!c) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    c->priority = in->priority;
    c->disabled = in->disabled != 0;
    c->dc = in->disable_cooling < 0 ? -1 : in->disable_cooling != 0;
    c->id = cm_strdup(in->id);
    c->provider = cm_strdup(in->provider);
    if (!c->id || !c->provider) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (in->prefix && in->prefix[0]) {
        c->prefix = cm_strdup(in->prefix);
        if (!c->prefix) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        c->prefix_len = strlen(c->prefix);
    }
    rc = strv_dup(in->models, in->n_models, &c->models);
    if (rc)
        goto out;
    c->n_models = in->n_models;
    rc = strv_dup(in->excluded, in->n_excluded, &c->excl);
    if (rc)
        goto out;
    c->n_excl = in->n_excluded;
    if (c->n_models) {
        c->st = cm_calloc(c->n_models, sizeof(*c->st));
        if (!c->st) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
    }
    *out = c;
    c = NULL;
out:
    cred_free(c);
    return rc;
}

/* ---- lookups (caller holds the lock) ---- */

/* Binary search by id: 1 and *pos = index when found, else 0 and *pos = insert point. */
static int find(const struct cp_sched *s, const char *id, size_t *pos)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(s->v[mid]->id, id);
        if (cmp == 0) {
            *pos = mid;
            return 1;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

static int ci_contains(const char *s, size_t sl, const char *sub, size_t n)
{
    if (n > sl)
        return 0;
    for (size_t i = 0; i + n <= sl; i++)
        if (strncasecmp(s + i, sub, n) == 0)
            return 1;
    return 0;
}

int cp_sched_pattern_match(const char *pat, const char *s)
{
    size_t pl = strlen(pat), sl = strlen(s);
    int lead = pat[0] == '*';
    int trail = pl > 1 && pat[pl - 1] == '*';
    const char *core = pat + lead;
    size_t cl = pl - (size_t)lead - (size_t)trail;

    if (lead && trail)
        return ci_contains(s, sl, core, cl);
    if (lead)
        return sl >= cl && strncasecmp(s + sl - cl, core, cl) == 0;
    if (trail)
        return sl >= cl && strncasecmp(s, core, cl) == 0;
    return strcasecmp(pat, s) == 0;
}

static long model_index(const struct cred *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i], name) == 0) {
            for (size_t j = 0; j < c->n_excl; j++)
                if (cp_sched_pattern_match(c->excl[j], name))
                    return -1;
            return (long)i;
        }
    return -1;
}

/*
 * Which served model a requested name means on @p c, or -1. A plain name matches any
 * credential serving it; "<prefix>/<name>" also matches a credential with that prefix
 * serving <name> (spec 1.5/2 `prefix`, force-model-prefix off).
 */
static long served_index(const struct cred *c, const char *model)
{
    long i = model_index(c, model);
    if (i >= 0)
        return i;
    if (c->prefix && strncmp(model, c->prefix, c->prefix_len) == 0 && model[c->prefix_len] == '/')
        return model_index(c, model + c->prefix_len + 1);
    return -1;
}

static int cooling_off(const struct cp_sched *s, const struct cred *c)
{
    return c->dc < 0 ? s->cfg.disable_cooling != 0 : c->dc;
}

enum cand { K_NONE, K_TRIED, K_DISABLED, K_RELOGIN, K_AVAIL, K_SOFT, K_QUOTA, K_HARD };

static int provider_ok(const struct cred *c, const struct cp_sched_pick_req *req)
{
    if (req->n_providers == 0)
        return 1;
    for (size_t i = 0; i < req->n_providers; i++)
        if (req->providers[i] && strcmp(req->providers[i], c->provider) == 0)
            return 1;
    return 0;
}

static int was_tried(const struct cred *c, const struct cp_sched_pick_req *req)
{
    for (size_t i = 0; i < req->n_tried; i++)
        if (req->tried[i] && strcmp(req->tried[i], c->id) == 0)
            return 1;
    return 0;
}

/* What @p c is for this request at @p now; *until = cooldown end for SOFT/QUOTA/HARD. */
static enum cand cand_kind(const struct cp_sched *s, const struct cred *c,
                           const struct cp_sched_pick_req *req, int64_t now, int64_t *until)
{
    long mi;
    const struct mstate *m;

    if (!provider_ok(c, req))
        return K_NONE;
    mi = served_index(c, req->model);
    if (mi < 0)
        return K_NONE;
    if (was_tried(c, req))
        return K_TRIED;
    if (c->disabled)
        return K_DISABLED;
    if (c->relogin)
        return K_RELOGIN;
    m = &c->st[mi];
    if (m->until_ms <= now || cooling_off(s, c))
        return K_AVAIL;
    *until = m->until_ms;
    if (m->reason == CP_SCHED_R_QUOTA)
        return K_QUOTA;
    if (m->reason == CP_SCHED_R_PAYMENT)
        return K_HARD;
    return K_SOFT;
}

/* ---- round-robin cursors ---- */

static uint64_t fnv(uint64_t h, const char *p)
{
    for (; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t cursor_hash(const struct cp_sched_pick_req *req)
{
    uint64_t h = 14695981039346656037ULL;
    if (req->n_providers == 0)
        h = fnv(h, "*");
    for (size_t i = 0; i < req->n_providers; i++) {
        h = fnv(h, req->providers[i] ? req->providers[i] : "");
        h = fnv(h, ",");
    }
    h = fnv(h, ":");
    h = fnv(h, req->model);
    return h ? h : 1;
}

/* The slot for @p h, or NULL when absent and !create. Never allocates. */
static struct cursor *cursor_slot(struct cp_sched *s, uint64_t h, int create)
{
    size_t i = (size_t)(h & (CURSOR_SLOTS - 1));
    for (;;) {
        if (s->cur[i].h == h)
            return &s->cur[i];
        if (s->cur[i].h == 0)
            break;
        i = (i + 1) & (CURSOR_SLOTS - 1);
    }
    if (!create)
        return NULL;
    if (s->n_cur >= CURSOR_RESET_AT) {
        memset(s->cur, 0, CURSOR_SLOTS * sizeof(*s->cur));
        s->n_cur = 0;
        i = (size_t)(h & (CURSOR_SLOTS - 1));
    }
    s->cur[i].h = h;
    s->cur[i].pos = 0;
    s->n_cur++;
    return &s->cur[i];
}

/* ---- public API ---- */

int cp_sched_new(const struct cm_clock *clock, struct cp_sched **out)
{
    int rc = CM_OK;
    struct cp_sched *s = NULL;
    int mu_ok = 0;

    if (!out) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    s = cm_calloc(1, sizeof(*s));
    if (!s) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    s->cur = cm_calloc(CURSOR_SLOTS, sizeof(*s->cur));
    if (!s->cur) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    mu_ok = 1;
    s->clk = clock ? clock : cm_clock_real();
    s->cfg.strategy = CP_SCHED_ROUND_ROBIN;
    s->cfg.disable_cooling = 0;
    s->cfg.transient_cooldown_s = 0;
    *out = s;
    s = NULL;
out:
    if (s) {
        if (mu_ok)
            pthread_mutex_destroy(&s->mu);
        cm_free(s->cur);
        cm_free(s);
    }
    return rc;
}

void cp_sched_free(struct cp_sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        cred_free(s->v[i]);
    cm_free(s->v);
    cm_free(s->cur);
    pthread_mutex_destroy(&s->mu);
    cm_free(s);
}

int cp_sched_configure(struct cp_sched *s, const struct cp_sched_config *cfg)
{
    if (!s || !cfg ||
        (cfg->strategy != CP_SCHED_ROUND_ROBIN && cfg->strategy != CP_SCHED_FILL_FIRST) ||
        cfg->transient_cooldown_s < -1)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&s->mu);
    s->cfg = *cfg;
    pthread_mutex_unlock(&s->mu);
    return CM_OK;
}

int cp_sched_add(struct cp_sched *s, const struct cp_sched_cred *c)
{
    int rc = CM_OK;
    struct cred *nc = NULL;
    size_t pos = 0;
    int locked = 0;

    if (!s) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cred_build(c, &nc);
    if (rc)
        goto out;
    pthread_mutex_lock(&s->mu);
    locked = 1;
    if (find(s, nc->id, &pos)) {
        rc = CM_ERR_EXISTS;
        goto out;
    }
    if (s->n >= CP_SCHED_MAX_CREDS) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        struct cred **nv = cm_realloc(s->v, ncap * sizeof(*nv));
        if (!nv) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        s->v = nv;
        s->cap = ncap;
    }
    memmove(&s->v[pos + 1], &s->v[pos], (s->n - pos) * sizeof(*s->v));
    s->v[pos] = nc;
    s->n++;
    nc = NULL;
out:
    if (locked)
        pthread_mutex_unlock(&s->mu);
    cred_free(nc);
    return rc;
}

int cp_sched_update(struct cp_sched *s, const struct cp_sched_cred *c)
{
    int rc = CM_OK;
    struct cred *nc = NULL, *old = NULL;
    size_t pos = 0;
    int locked = 0;

    if (!s) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cred_build(c, &nc);
    if (rc)
        goto out;
    pthread_mutex_lock(&s->mu);
    locked = 1;
    if (!find(s, nc->id, &pos)) {
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    old = s->v[pos];
    /* keep cooldowns of models still served; re-login is cleared by the new file */
    for (size_t j = 0; j < nc->n_models; j++)
        for (size_t i = 0; i < old->n_models; i++)
            if (strcmp(nc->models[j], old->models[i]) == 0) {
                nc->st[j] = old->st[i];
                break;
            }
    nc->last_status = old->last_status;
    nc->last_tx = old->last_tx;
    s->v[pos] = nc;
    nc = old; /* the replaced entry is freed at out, after the unlock */
out:
    if (locked)
        pthread_mutex_unlock(&s->mu);
    cred_free(nc);
    return rc;
}

int cp_sched_remove(struct cp_sched *s, const char *id)
{
    int rc = CM_OK;
    struct cred *old = NULL;
    size_t pos = 0;

    if (!s || !id)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&s->mu);
    if (!find(s, id, &pos)) {
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    old = s->v[pos];
    memmove(&s->v[pos], &s->v[pos + 1], (s->n - pos - 1) * sizeof(*s->v));
    s->n--;
out:
    pthread_mutex_unlock(&s->mu);
    cred_free(old);
    return rc;
}

/* Shared shape of the small per-id setters. */
enum setter { SET_DISABLED, SET_ENABLED, SET_RELOGIN, SET_RESET_QUOTA };

static int set_by_id(struct cp_sched *s, const char *id, enum setter what)
{
    int rc = CM_OK;
    size_t pos = 0;
    struct cred *c;

    if (!s || !id)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&s->mu);
    if (!find(s, id, &pos)) {
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    c = s->v[pos];
    switch (what) {
    case SET_DISABLED:
        c->disabled = 1;
        break;
    case SET_ENABLED:
        c->disabled = 0;
        break;
    case SET_RELOGIN:
        c->relogin = 1;
        break;
    case SET_RESET_QUOTA:
        for (size_t i = 0; i < c->n_models; i++) {
            c->st[i].until_ms = 0;
            c->st[i].reason = CP_SCHED_R_NONE;
            c->st[i].level = 0;
        }
        break;
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int cp_sched_set_disabled(struct cp_sched *s, const char *id, int disabled)
{
    return set_by_id(s, id, disabled ? SET_DISABLED : SET_ENABLED);
}

int cp_sched_set_relogin(struct cp_sched *s, const char *id)
{
    return set_by_id(s, id, SET_RELOGIN);
}

int cp_sched_reset_quota(struct cp_sched *s, const char *id)
{
    return set_by_id(s, id, SET_RESET_QUOTA);
}

int cp_sched_serves(struct cp_sched *s, const char *provider, const char *model)
{
    int yes = 0;
    if (!s || !model)
        return 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && !yes; i++)
        yes = (!provider || strcmp(s->v[i]->provider, provider) == 0) &&
              served_index(s->v[i], model) >= 0;
    pthread_mutex_unlock(&s->mu);
    return yes;
}

int cp_sched_pick(struct cp_sched *s, const struct cp_sched_pick_req *req, char *id_buf,
                  size_t id_cap, struct cp_sched_pick *out)
{
    int rc = CM_OK;
    struct cp_sched_pick res;
    int64_t now, until = 0;
    size_t serving = 0, tried = 0, quota = 0, n_best = 0, k = 0;
    int have_best = 0, best = 0;
    long soft = -1, chosen = -1;
    int64_t soft_until = 0, timed_until = 0;
    uint64_t h = 0;
    struct cursor *cur = NULL;

    if (!s || !req || !req->model || !req->model[0] || !id_buf || !out ||
        (req->n_providers && !req->providers) || (req->n_tried && !req->tried))
        return CM_ERR_INVAL;
    memset(&res, 0, sizeof(res));
    pthread_mutex_lock(&s->mu);
    now = cm_clock_mono_ms(s->clk);

    /* pass 1: tally, find the best priority with an available credential, the soft
     * cooldown ending first (ties: higher priority, then id order), the earliest end */
    for (size_t i = 0; i < s->n; i++) {
        const struct cred *c = s->v[i];
        enum cand kd = cand_kind(s, c, req, now, &until);
        if (kd == K_NONE)
            continue;
        serving++;
        switch (kd) {
        case K_TRIED:
            tried++;
            break;
        case K_AVAIL:
            if (!have_best || c->priority > best) {
                have_best = 1;
                best = c->priority;
                n_best = 1;
            } else if (c->priority == best) {
                n_best++;
            }
            break;
        case K_SOFT:
            if (soft < 0 || until < soft_until ||
                (until == soft_until && c->priority > s->v[soft]->priority)) {
                soft = (long)i;
                soft_until = until;
            }
            break;
        case K_QUOTA:
        case K_HARD:
            if (kd == K_QUOTA)
                quota++;
            if (!timed_until || until < timed_until)
                timed_until = until;
            break;
        default:
            break;
        }
    }

    if (have_best) {
        if (s->cfg.strategy == CP_SCHED_ROUND_ROBIN) {
            h = cursor_hash(req);
            cur = cursor_slot(s, h, 0);
            k = cur ? cur->pos % n_best : 0;
        }
        /* pass 2: the k-th available credential of the best bucket, in id order */
        for (size_t i = 0; i < s->n && chosen < 0; i++) {
            const struct cred *c = s->v[i];
            if (c->priority != best || cand_kind(s, c, req, now, &until) != K_AVAIL)
                continue;
            if (k == 0)
                chosen = (long)i;
            else
                k--;
        }
        if (chosen < 0) {
            rc = CM_ERR_INTERNAL;
            goto out;
        }
    } else if (soft >= 0) {
        chosen = soft;
        res.forced = 1;
    }

    if (chosen >= 0) {
        size_t len = strlen(s->v[chosen]->id);
        if (len + 1 > id_cap) {
            rc = CM_ERR_LIMIT;
            goto out;
        }
        memcpy(id_buf, s->v[chosen]->id, len + 1);
        if (have_best && s->cfg.strategy == CP_SCHED_ROUND_ROBIN) {
            if (!cur)
                cur = cursor_slot(s, h, 1);
            cur->pos++;
        }
        res.verdict = CP_SCHED_PICKED;
    } else {
        if (serving == 0)
            res.verdict = CP_SCHED_NONE_SERVING;
        else if (quota > 0)
            res.verdict = CP_SCHED_ALL_COOLING;
        else if (tried > 0)
            res.verdict = CP_SCHED_EXHAUSTED;
        else
            res.verdict = CP_SCHED_UNAVAILABLE;
        if (timed_until && res.verdict != CP_SCHED_NONE_SERVING) {
            res.retry_at_ms = timed_until;
            res.retry_after_s = (timed_until - now + 999) / 1000;
            if (res.retry_after_s < 1)
                res.retry_after_s = 1;
        }
    }
    *out = res;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum cp_sched_class cp_sched_classify(const struct cp_sched_outcome *o)
{
    if (!o || o->transport != CP_SCHED_TX_NONE)
        return CP_SCHED_C_TRANSIENT;
    if (o->status >= 100 && o->status < 400)
        return CP_SCHED_C_SUCCESS;
    if (o->request_scoped)
        return CP_SCHED_C_REQUEST;
    switch (o->status) {
    case 429:
        return CP_SCHED_C_QUOTA;
    case 401:
        return CP_SCHED_C_RELOGIN;
    case 402:
    case 403:
        return CP_SCHED_C_PAYMENT;
    case 404:
        return CP_SCHED_C_NOT_FOUND;
    default:
        /* 408, 5xx, status 0 and any other 4xx the caller did not call request-scoped */
        return CP_SCHED_C_TRANSIENT;
    }
}

int cp_sched_should_failover(const struct cp_sched_outcome *o)
{
    enum cp_sched_class k = cp_sched_classify(o);
    return k != CP_SCHED_C_SUCCESS && k != CP_SCHED_C_REQUEST;
}

/*
 * Start a cooldown. An exact upstream hint replaces whatever runs; a computed one
 * never shortens a longer cooldown already running (and keeps its reason).
 */
static void cool(struct mstate *m, enum cp_sched_reason r, int64_t now, int64_t dur_ms, int exact)
{
    int64_t until = now + dur_ms;
    if (!exact && m->until_ms > now && m->until_ms >= until)
        return;
    m->until_ms = until;
    m->reason = r;
}

static void apply(const struct cp_sched *s, struct mstate *m, enum cp_sched_class k,
                  const struct cp_sched_outcome *o, int64_t now)
{
    int64_t dur;
    int tsec;

    m->last_status = o->transport == CP_SCHED_TX_NONE ? o->status : 0;
    m->last_tx = o->transport;
    switch (k) {
    case CP_SCHED_C_SUCCESS:
        m->until_ms = 0;
        m->reason = CP_SCHED_R_NONE;
        m->level = 0;
        break;
    case CP_SCHED_C_REQUEST:
    case CP_SCHED_C_RELOGIN:
        break;
    case CP_SCHED_C_QUOTA:
        if (o->has_hint) {
            int64_t hs = o->retry_after_s < 0 ? 0 : o->retry_after_s;
            if (hs > HINT_MAX_S)
                hs = HINT_MAX_S;
            cool(m, CP_SCHED_R_QUOTA, now, hs * 1000, 1);
        } else {
            dur = 1000LL << (m->level < 21 ? m->level : 21);
            if (dur >= CP_SCHED_QUOTA_MAX_MS)
                dur = CP_SCHED_QUOTA_MAX_MS;
            else
                m->level++;
            cool(m, CP_SCHED_R_QUOTA, now, dur, 0);
        }
        break;
    case CP_SCHED_C_TRANSIENT:
        tsec = s->cfg.transient_cooldown_s;
        if (tsec == 0)
            tsec = CP_SCHED_TRANSIENT_DEFAULT_S;
        if (tsec > 0)
            cool(m, CP_SCHED_R_TRANSIENT, now, (int64_t)tsec * 1000, 0);
        break;
    case CP_SCHED_C_PAYMENT:
        cool(m, CP_SCHED_R_PAYMENT, now, CP_SCHED_PAYMENT_MS, 0);
        break;
    case CP_SCHED_C_NOT_FOUND:
        cool(m, CP_SCHED_R_NOT_FOUND, now, CP_SCHED_NOT_FOUND_MS, 0);
        break;
    }
}

int cp_sched_mark_result(struct cp_sched *s, const char *id, const char *model,
                         const struct cp_sched_outcome *o)
{
    int rc = CM_OK;
    size_t pos = 0;
    struct cred *c;
    long mi = -1;
    enum cp_sched_class k;
    int64_t now;

    if (!s || !id || !o || (model && !model[0]))
        return CM_ERR_INVAL;
    k = cp_sched_classify(o);
    pthread_mutex_lock(&s->mu);
    if (!find(s, id, &pos)) {
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    c = s->v[pos];
    if (model) {
        mi = served_index(c, model);
        if (mi < 0) {
            rc = CM_ERR_NOTFOUND;
            goto out;
        }
    }
    now = cm_clock_mono_ms(s->clk);
    if (mi >= 0) {
        apply(s, &c->st[mi], k, o, now);
    } else {
        for (size_t i = 0; i < c->n_models; i++)
            apply(s, &c->st[i], k, o, now);
    }
    c->last_status = o->transport == CP_SCHED_TX_NONE ? o->status : 0;
    c->last_tx = o->transport;
    if (k == CP_SCHED_C_RELOGIN)
        c->relogin = 1;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- inspection ---- */

static int has_state(const struct mstate *m, int64_t now)
{
    return m->until_ms > now || m->level > 0 || m->last_status != 0 ||
           m->last_tx != CP_SCHED_TX_NONE;
}

static size_t round_up(size_t n)
{
    size_t a = sizeof(int64_t) > sizeof(void *) ? sizeof(int64_t) : sizeof(void *);
    return (n + a - 1) / a * a;
}

/* Copies @p str into the string area at *p and advances *p. */
static const char *put_str(char **p, const char *str)
{
    size_t n = strlen(str) + 1;
    char *d = *p;
    memcpy(d, str, n);
    *p += n;
    return d;
}

int cp_sched_snapshot(struct cp_sched *s, struct cp_sched_snapshot **out)
{
    int rc = CM_OK;
    struct cp_sched_snapshot *snap = NULL;
    size_t n_models = 0, str_bytes = 0, off_creds, off_models, off_str, total, mi = 0;
    int64_t now, wall;
    char *base, *sp;

    if (!s || !out)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&s->mu);
    now = cm_clock_mono_ms(s->clk);
    wall = cm_clock_wall_ms(s->clk);
    for (size_t i = 0; i < s->n; i++) {
        const struct cred *c = s->v[i];
        str_bytes += strlen(c->id) + strlen(c->provider) + (c->prefix ? c->prefix_len : 0) + 3;
        for (size_t j = 0; j < c->n_models; j++)
            if (has_state(&c->st[j], now)) {
                n_models++;
                str_bytes += strlen(c->models[j]) + 1;
            }
    }
    off_creds = round_up(sizeof(*snap));
    off_models = off_creds + round_up(s->n * sizeof(struct cp_sched_cred_info));
    off_str = off_models + round_up(n_models * sizeof(struct cp_sched_model_info));
    total = off_str + str_bytes;
    base = cm_calloc(1, total);
    if (!base) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    snap = (struct cp_sched_snapshot *)(void *)base;
    snap->now_mono_ms = now;
    snap->now_wall_ms = wall;
    snap->n = s->n;
    snap->creds = s->n ? (struct cp_sched_cred_info *)(void *)(base + off_creds) : NULL;
    sp = base + off_str;
    for (size_t i = 0; i < s->n; i++) {
        const struct cred *c = s->v[i];
        struct cp_sched_cred_info *ci = &snap->creds[i];
        ci->id = put_str(&sp, c->id);
        ci->provider = put_str(&sp, c->provider);
        ci->prefix = put_str(&sp, c->prefix ? c->prefix : "");
        ci->priority = c->priority;
        ci->cooling_disabled = cooling_off(s, c);
        ci->last_status = c->last_status;
        ci->last_transport = c->last_tx;
        ci->models = (struct cp_sched_model_info *)(void *)(base + off_models) + mi;
        for (size_t j = 0; j < c->n_models; j++) {
            const struct mstate *m = &c->st[j];
            struct cp_sched_model_info *info;
            if (!has_state(m, now))
                continue;
            info = &ci->models[ci->n_models++];
            mi++;
            info->model = put_str(&sp, c->models[j]);
            info->backoff_level = m->level;
            info->last_status = m->last_status;
            info->last_transport = m->last_tx;
            if (m->until_ms > now) {
                info->reason = m->reason;
                info->until_mono_ms = m->until_ms;
                info->until_wall_ms = wall + (m->until_ms - now);
                if (!ci->until_mono_ms || m->until_ms < ci->until_mono_ms) {
                    ci->until_mono_ms = info->until_mono_ms;
                    ci->until_wall_ms = info->until_wall_ms;
                    ci->reason = info->reason;
                }
            }
        }
        if (!ci->n_models)
            ci->models = NULL;
        if (c->disabled)
            ci->state = CP_SCHED_DISABLED;
        else if (c->relogin)
            ci->state = CP_SCHED_RELOGIN;
        else if (ci->until_mono_ms)
            ci->state = CP_SCHED_COOLING;
        else
            ci->state = CP_SCHED_ACTIVE;
    }
    *out = snap;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void cp_sched_snapshot_free(struct cp_sched_snapshot *snap)
{
    cm_free(snap);
}

const char *cp_sched_state_str(enum cp_sched_state st)
{
    switch (st) {
    case CP_SCHED_ACTIVE:
        return "active";
    case CP_SCHED_COOLING:
        return "cooling";
    case CP_SCHED_RELOGIN:
        return "needs re-login";
    case CP_SCHED_DISABLED:
        return "disabled";
    }
    return "unknown";
}

const char *cp_sched_reason_str(enum cp_sched_reason r)
{
    switch (r) {
    case CP_SCHED_R_NONE:
        return "none";
    case CP_SCHED_R_QUOTA:
        return "quota";
    case CP_SCHED_R_TRANSIENT:
        return "transient";
    case CP_SCHED_R_PAYMENT:
        return "payment_required";
    case CP_SCHED_R_NOT_FOUND:
        return "not_found";
    }
    return "unknown";
}
