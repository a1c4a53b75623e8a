/* SPDX-License-Identifier: MIT */
/*
 * refresher.c - the refresh loop (see refresher.h). Requests: Codex is a form POST
 * (grant_type=refresh_token, the Codex CLI client_id, scope "openid profile email"),
 * Claude a JSON POST with the Claude Code client_id. An invalid_grant / invalid_request /
 * refresh_token_reused answer (400/401) is permanent: the credential needs a new login;
 * anything else retries with the store's backoff.
 */
#include "refresher.h"

#include "authstore.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/log.h"
#include "cm/sys.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define CODEX_CLIENT_ID "app_EMoamEEZ73f0CkXaXp7hrann"
#define CLAUDE_CLIENT_ID "9d1c250a-e61b-44d9-88ed-5944d1962f5e"

/* one finished refresh, queued for the refresher thread */
struct done {
    struct done *next;
    char *id;
    char *body; /* token answer on success, else NULL */
    size_t len;
    int permanent;
    char error[160];
};

/* a caller waiting for one credential's forced refresh */
struct waiter {
    struct waiter *next;
    char *id;
    cp_refresher_done_fn cb;
    void *ud;
    int started;         /* start_one() ran for it */
    int64_t deadline_ms; /* monotonic */
};

struct cp_refresher {
    struct cp_server *srv;
    unsigned period_ms;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, poke, joined;
    struct done *done;      /* guarded by mu */
    int inflight;           /* guarded by mu */
    struct waiter *waiters; /* guarded by mu */
};

struct job {
    struct cp_refresher *r;
    char *id;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Calls back (mu not held) the waiters of @p id (NULL = all) - or, with @p expired_only,
 * those past their deadline.
 */
static void notify(struct cp_refresher *r, const char *id, int ok, int permanent, int expired_only)
{
    struct waiter *w, **pp, *list = NULL;
    int64_t now = mono_ms();

    pthread_mutex_lock(&r->mu);
    for (pp = &r->waiters; (w = *pp);) {
        if ((!id || strcmp(w->id, id) == 0) && (!expired_only || w->deadline_ms <= now)) {
            *pp = w->next;
            w->next = list;
            list = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&r->mu);
    while ((w = list)) {
        list = w->next;
        w->cb(w->ud, ok, permanent);
        cm_free(w->id);
        cm_free(w);
    }
}

static void queue_done(struct cp_refresher *r, struct done *d)
{
    pthread_mutex_lock(&r->mu);
    d->next = r->done;
    r->done = d;
    r->inflight--;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static int permanent_failure(long status, const char *body, size_t len)
{
    if (status != 400 && status != 401)
        return 0;
    return body && len &&
           (memmem(body, len, "invalid_grant", 13) ||
            memmem(body, len, "refresh_token_reused", 20) ||
            memmem(body, len, "invalid_request", 15));
}

/* httpc I/O thread: only queue the answer; the file work happens on our thread */
static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *res, void *ud)
{
    struct job *j = ud;
    struct done *d = cm_calloc(1, sizeof *d);
    (void)x;
    if (d) {
        d->id = j->id;
        j->id = NULL;
        if (res->rc == CM_OK && res->status == 200) {
            d->body = cm_strndup(res->body, res->body_len);
            d->len = res->body_len;
        } else {
            d->permanent =
                res->rc == CM_OK && permanent_failure(res->status, res->body, res->body_len);
            snprintf(d->error, sizeof d->error, "token refresh failed: %s%ld",
                     res->rc == CM_OK ? "HTTP " : res->error, res->rc == CM_OK ? res->status : 0L);
        }
        queue_done(j->r, d);
    } else {
        pthread_mutex_lock(&j->r->mu);
        j->r->inflight--;
        pthread_mutex_unlock(&j->r->mu);
    }
    cm_free(j->id);
    cm_free(j);
}

static int build_body(const struct cp_authstore_cred *c, struct cm_buf *b, const char **ctype)
{
    const char *rt = c->af->refresh_token;
    char *esc;
    int rc;

    if (c->provider_id == CP_AUTH_CODEX) {
        esc = curl_easy_escape(NULL, rt, 0);
        if (!esc)
            return CM_ERR_NOMEM;
        rc = cm_buf_appendf(b,
                            "client_id=%s&grant_type=refresh_token&refresh_token=%s"
                            "&scope=openid%%20profile%%20email",
                            CODEX_CLIENT_ID, esc);
        cm_crypto_memzero(esc, strlen(esc));
        curl_free(esc);
        *ctype = "Content-Type: application/x-www-form-urlencoded";
        return rc;
    }
    /* Claude: JSON; refresh tokens are URL-safe base64-ish, but escape what JSON needs */
    for (const char *p = rt; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return CM_ERR_INVAL;
    *ctype = "Content-Type: application/json";
    return cm_buf_appendf(b,
                          "{\"client_id\":\"%s\",\"grant_type\":\"refresh_token\","
                          "\"refresh_token\":\"%s\"}",
                          CLAUDE_CLIENT_ID, rt);
}

static void start_one(struct cp_refresher *r, const char *id)
{
    static const struct cm_httpc_cbs cbs = {NULL, NULL, on_done};
    struct cp_authstore_cred *c = NULL;
    struct cp_config_ref *ref = NULL;
    const struct cp_config *cfg;
    struct cm_httpc_request rq;
    struct cm_buf body;
    const char *hdrs[2] = {NULL, "Accept: application/json"};
    struct job *j = NULL;
    enum cp_provider p;
    int rc;

    cm_buf_init(&body, 64 * 1024);
    rc = cp_authstore_begin_refresh(r->srv->store, id, &c);
    if (rc) {
        if (rc != CM_ERR_AGAIN) /* in flight: its answer notifies the waiters */
            notify(r, id, 0, 0, 0);
        goto out;
    }
    if (!c->af || !c->af->refresh_token || !*c->af->refresh_token ||
        (c->provider_id != CP_AUTH_CODEX && c->provider_id != CP_AUTH_CLAUDE)) {
        cp_authstore_finish_refresh(r->srv->store, id, NULL, 0, 1, "no refresh token");
        notify(r, id, 0, 1, 0);
        goto out;
    }
    ref = cp_config_live_acquire(r->srv->cfg);
    cfg = ref ? cp_config_ref_get(ref) : NULL;
    if (!cfg || (rc = build_body(c, &body, &hdrs[0])) != CM_OK || !(j = cm_calloc(1, sizeof *j)) ||
        !(j->id = cm_strdup(id))) {
        cp_authstore_finish_refresh(r->srv->store, id, NULL, 0, 0, "cannot build the request");
        notify(r, id, 0, 0, 0);
        goto out;
    }
    p = c->provider_id == CP_AUTH_CODEX ? CP_PROVIDER_CODEX : CP_PROVIDER_CLAUDE;
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.url = cp_config_token_url(cfg, p);
    rq.headers = hdrs;
    rq.n_headers = 2;
    rq.body = body.data;
    rq.body_len = body.len;
    rq.proxy = c->proxy_url && *c->proxy_url ? c->proxy_url : cfg->proxy_url;
    rq.connect_timeout_ms = 15000;
    rq.total_timeout_ms = 60000;
    rq.max_response = 1 << 20;
    j->r = r;
    pthread_mutex_lock(&r->mu);
    r->inflight++;
    pthread_mutex_unlock(&r->mu);
    if (cm_httpc_start(r->srv->client, &rq, &cbs, j, NULL) != CM_OK) {
        pthread_mutex_lock(&r->mu);
        r->inflight--;
        pthread_mutex_unlock(&r->mu);
        cp_authstore_finish_refresh(r->srv->store, id, NULL, 0, 0, "cannot start the request");
        notify(r, id, 0, 0, 0);
        goto out;
    }
    cm_log_info(NULL, "cliproxyd: refreshing the token of %s", id);
    j = NULL;
out:
    if (j) {
        cm_free(j->id);
        cm_free(j);
    }
    if (body.data)
        cm_crypto_memzero(body.data, body.len);
    cm_buf_cleanup(&body);
    cp_config_ref_release(ref);
    cp_authstore_release(c);
}

static void apply(struct cp_refresher *r, struct done *d)
{
    int rc = cp_authstore_finish_refresh(r->srv->store, d->id, d->body, d->len, d->permanent,
                                         d->body ? NULL : d->error);
    if (d->body && rc == CM_OK)
        cm_log_info(NULL, "cliproxyd: token of %s refreshed", d->id);
    else
        cm_log_warn(NULL, "cliproxyd: token refresh of %s: %s%s", d->id,
                    d->body ? cm_err_str(rc) : d->error,
                    d->permanent ? " (needs a new login)" : "");
    /* new tokens are in use even when only the file write failed */
    notify(r, d->id, d->body && (rc == CM_OK || rc == CM_ERR_IO), !d->body && d->permanent, 0);
    if (d->body)
        cm_crypto_memzero(d->body, d->len);
    cm_free(d->body);
    cm_free(d->id);
    cm_free(d);
}

/* starts the refreshes callers asked for (each id once) */
static void start_waited(struct cp_refresher *r)
{
    for (;;) {
        struct waiter *w;
        char *id = NULL;
        pthread_mutex_lock(&r->mu);
        for (w = r->waiters; w && w->started; w = w->next)
            ;
        if (w) {
            id = cm_strdup(w->id);
            for (struct waiter *o = r->waiters; o; o = o->next)
                if (strcmp(o->id, w->id) == 0)
                    o->started = 1;
        }
        pthread_mutex_unlock(&r->mu);
        if (!w)
            return;
        if (id)
            start_one(r, id);
        else
            notify(r, w->id, 0, 0, 0); /* out of memory: fail them rather than spin */
        cm_free(id);
    }
}

static void *loop(void *arg)
{
    struct cp_refresher *r = arg;

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct done *d = r->done;
        char **ids = NULL;
        size_t n = 0;
        r->done = NULL;
        r->poke = 0;
        pthread_mutex_unlock(&r->mu);
        while (d) {
            struct done *next = d->next;
            apply(r, d);
            d = next;
        }
        start_waited(r);
        notify(r, NULL, 0, 0, 1); /* waited too long */
        if (cp_authstore_due(r->srv->store, &ids, &n) == CM_OK) {
            for (size_t i = 0; i < n; i++)
                start_one(r, ids[i]);
            cp_authstore_ids_free(ids, n);
        }
        pthread_mutex_lock(&r->mu);
        if (!r->stop && !r->done && !r->poke)
            (void)cm_sys_cond_wait_ms(&r->cv, &r->mu, r->period_ms);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int cp_refresher_new(struct cp_server *srv, unsigned period_ms, struct cp_refresher **out)
{
    struct cp_refresher *r = cm_calloc(1, sizeof *r);
    if (!r)
        return CM_ERR_NOMEM;
    r->srv = srv;
    r->period_ms = period_ms ? period_ms : 5000;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thr, NULL, loop, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        cm_free(r);
        return CM_ERR_IO;
    }
    *out = r;
    return CM_OK;
}

int cp_refresher_refresh_now(struct cp_refresher *r, const char *id, cp_refresher_done_fn cb,
                             void *ud)
{
    struct waiter *w;
    if (!r || !id || !cb)
        return CM_ERR_INVAL;
    w = cm_calloc(1, sizeof *w);
    if (!w || !(w->id = cm_strdup(id))) {
        cm_free(w);
        return CM_ERR_NOMEM;
    }
    w->cb = cb;
    w->ud = ud;
    w->deadline_ms = mono_ms() + 60000;
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        cm_free(w->id);
        cm_free(w);
        return CM_ERR_CLOSED;
    }
    w->next = r->waiters;
    r->waiters = w;
    r->poke = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return CM_OK;
}

void cp_refresher_poke(struct cp_refresher *r)
{
    pthread_mutex_lock(&r->mu);
    r->poke = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/*
 * Transfers still in flight when the loop stops complete (or are cancelled by
 * cm_httpc_free) later and queue into r->done: the struct outlives the HTTP client.
 */
void cp_refresher_stop(struct cp_refresher *r)
{
    if (!r || r->joined)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thr, NULL);
    r->joined = 1;
    notify(r, NULL, 0, 0, 0); /* nobody will refresh for them any more */
}

void cp_refresher_free(struct cp_refresher *r)
{
    struct done *d;
    if (!r)
        return;
    cp_refresher_stop(r);
    while ((d = r->done)) {
        r->done = d->next;
        if (d->body)
            cm_crypto_memzero(d->body, d->len);
        cm_free(d->body);
        cm_free(d->id);
        cm_free(d);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    cm_free(r);
}
