/* SPDX-License-Identifier: MIT */
/*
 * refresher.c - the refresh loop (see refresher.h). Requests: Codex is a form POST
 * (grant_type=refresh_token, the Codex CLI client_id, scope "openid profile email"),
 * Claude a JSON POST with the Claude Code client_id, Gemini / Qwen / iFlow form POSTs
 * with their public client ids (iFlow also Basic auth). An invalid_grant /
 * invalid_request / refresh_token_reused answer (400/401) is permanent: the credential
 * needs a new login; anything else retries with the store's backoff. iFlow's second call
 * (user info) is started from the refresher's own thread once the token answer is in.
 */
#include "refresher.h"

#include "authstore.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "cm/sys.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
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
    int need_userinfo; /* iflow token answer: the user-info call comes next */
    int userinfo_done; /* iflow user-info call ended (userinfo set when it answered 200) */
    char *userinfo;
    size_t ulen;
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
    int iflow;        /* token call of an iflow credential */
    char *token_body; /* user-info call: the token answer it belongs to (owned) */
    size_t token_len;
};

static void free_secret_n(char *s, size_t n)
{
    if (s) {
        cm_crypto_memzero(s, n);
        cm_free(s);
    }
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    cm_free(j->id);
    free_secret_n(j->token_body, j->token_len);
    cm_free(j);
}

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
        if (j->token_body) {
            /* iflow user info: the token answer is what refreshes; user info is extra */
            d->body = j->token_body;
            d->len = j->token_len;
            j->token_body = NULL;
            d->userinfo_done = 1;
            if (res->rc == CM_OK && res->status == 200) {
                d->userinfo = cm_strndup(res->body, res->body_len);
                d->ulen = d->userinfo ? res->body_len : 0;
            } else {
                snprintf(d->error, sizeof d->error, "iflow user info failed: %s%ld",
                         res->rc == CM_OK ? "HTTP " : res->error,
                         res->rc == CM_OK ? res->status : 0L);
            }
        } else if (res->rc == CM_OK && res->status == 200) {
            d->body = cm_strndup(res->body, res->body_len);
            d->len = res->body_len;
            d->need_userinfo = j->iflow && d->body;
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
    job_free(j);
}

/* ---- the requests (pure) ---- */

/* percent-encodes @p v (all but RFC 3986 unreserved) onto @p b: the one form encoder */
static int form_value(struct cm_buf *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = CM_OK;
    for (const unsigned char *p = (const unsigned char *)v; *p && !rc; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = cm_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = cm_buf_append(b, e, 3);
        }
    }
    return rc;
}

/* "&name=<encoded value>" (no '&' first) */
static int form_pair(struct cm_buf *b, const char *name, const char *value)
{
    int rc = b->len ? cm_buf_append(b, "&", 1) : CM_OK;
    if (!rc)
        rc = cm_buf_appendf(b, "%s=", name);
    return rc ? rc : form_value(b, value);
}

static int add_header(struct cp_refresh_req *r, const char *line)
{
    char *h = cm_strdup(line);
    if (!h)
        return CM_ERR_NOMEM;
    r->headers[r->n_headers++] = h;
    return CM_OK;
}

void cp_refresh_req_cleanup(struct cp_refresh_req *r)
{
    if (!r)
        return;
    free_secret_n(r->body, r->len);
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i])
            free_secret_n(r->headers[i], strlen(r->headers[i]));
    memset(r, 0, sizeof *r);
}

int cp_refresher_build_request(const struct cp_authfile *af, struct cp_refresh_req *out)
{
    struct cp_refresh_req r = {0};
    struct cm_buf b;
    const char *rt = af ? af->refresh_token : NULL;
    char *basic = NULL;
    int rc, form = 1;

    cm_buf_init(&b, 64 * 1024);
    if (!rt || !*rt || !out) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    switch (af->provider) {
    case CP_AUTH_CODEX:
        rc = form_pair(&b, "client_id", CODEX_CLIENT_ID);
        if (!rc)
            rc = form_pair(&b, "grant_type", "refresh_token");
        if (!rc)
            rc = form_pair(&b, "refresh_token", rt);
        if (!rc)
            rc = form_pair(&b, "scope", "openid profile email");
        break;
    case CP_AUTH_CLAUDE:
        /* JSON; refresh tokens are URL-safe base64-ish: refuse what JSON would need escaped */
        for (const char *p = rt; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
                rc = CM_ERR_INVAL;
                goto out;
            }
        form = 0;
        rc = cm_buf_appendf(&b,
                            "{\"client_id\":\"%s\",\"grant_type\":\"refresh_token\","
                            "\"refresh_token\":\"%s\"}",
                            CLAUDE_CLIENT_ID, rt);
        break;
    case CP_AUTH_GEMINI:
        rc = form_pair(&b, "grant_type", "refresh_token");
        if (!rc)
            rc = form_pair(&b, "refresh_token", rt);
        if (!rc)
            rc = form_pair(&b, "client_id",
                           af->client_id ? af->client_id : CP_REFRESH_GEMINI_CLIENT_ID);
        if (!rc)
            rc = form_pair(&b, "client_secret",
                           af->client_secret ? af->client_secret : CP_REFRESH_GEMINI_CLIENT_SECRET);
        break;
    case CP_AUTH_QWEN:
        rc = form_pair(&b, "grant_type", "refresh_token");
        if (!rc)
            rc = form_pair(&b, "refresh_token", rt);
        if (!rc)
            rc = form_pair(&b, "client_id", CP_REFRESH_QWEN_CLIENT_ID);
        break;
    case CP_AUTH_IFLOW: {
        static const char cred[] = CP_REFRESH_IFLOW_CLIENT_ID ":" CP_REFRESH_IFLOW_CLIENT_SECRET;
        rc = form_pair(&b, "grant_type", "refresh_token");
        if (!rc)
            rc = form_pair(&b, "refresh_token", rt);
        if (!rc)
            rc = form_pair(&b, "client_id", CP_REFRESH_IFLOW_CLIENT_ID);
        if (!rc)
            rc = form_pair(&b, "client_secret", CP_REFRESH_IFLOW_CLIENT_SECRET);
        if (!rc)
            rc = cm_crypto_b64_encode(cred, sizeof cred - 1, CM_CRYPTO_B64_STD, &basic, NULL);
        break;
    }
    default:
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (rc)
        goto out;
    rc = add_header(&r, form ? "Content-Type: application/x-www-form-urlencoded"
                             : "Content-Type: application/json");
    if (!rc)
        rc = add_header(&r, "Accept: application/json");
    if (!rc && basic) {
        struct cm_buf h;
        cm_buf_init(&h, 1024);
        rc = cm_buf_appendf(&h, "Authorization: Basic %s", basic);
        if (!rc)
            rc = add_header(&r, h.data);
        cm_buf_cleanup(&h);
    }
    if (rc)
        goto out;
    r.body = cm_buf_release(&b, &r.len);
    if (!r.body) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof r);
out:
    if (b.data)
        cm_crypto_memzero(b.data, b.len);
    cm_buf_cleanup(&b);
    cm_free(basic);
    cp_refresh_req_cleanup(&r);
    return rc == CM_ERR_LIMIT ? CM_ERR_NOMEM : rc;
}

int cp_refresher_userinfo_url(const char *url, const char *access_token, char **out)
{
    struct cm_buf b;
    int rc;

    if (!url || !*url || !access_token || !*access_token || !out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, 64 * 1024);
    rc = cm_buf_append_str(&b, url);
    if (!rc)
        rc = cm_buf_append_str(&b, strchr(url, '?') ? "&accessToken=" : "?accessToken=");
    if (!rc)
        rc = form_value(&b, access_token);
    if (!rc) {
        *out = cm_buf_release(&b, NULL);
        rc = *out ? CM_OK : CM_ERR_NOMEM;
    }
    if (rc && b.data)
        cm_crypto_memzero(b.data, b.len);
    cm_buf_cleanup(&b);
    return rc == CM_ERR_LIMIT ? CM_ERR_NOMEM : rc;
}

static enum cp_provider config_provider(enum cp_auth_provider p)
{
    switch (p) {
    case CP_AUTH_CLAUDE:
        return CP_PROVIDER_CLAUDE;
    case CP_AUTH_GEMINI:
        return CP_PROVIDER_GEMINI;
    case CP_AUTH_QWEN:
        return CP_PROVIDER_QWEN;
    case CP_AUTH_IFLOW:
        return CP_PROVIDER_IFLOW;
    default:
        return CP_PROVIDER_CODEX;
    }
}

static int can_refresh(enum cp_auth_provider p)
{
    return p == CP_AUTH_CODEX || p == CP_AUTH_CLAUDE || p == CP_AUTH_GEMINI || p == CP_AUTH_QWEN ||
           p == CP_AUTH_IFLOW;
}

/* sends @p rq for job @p j: CM_OK when the transfer started (it owns j now), else the
 * caller still owns j */
static int send_job(struct cp_refresher *r, const struct cm_httpc_request *rq, struct job *j)
{
    static const struct cm_httpc_cbs cbs = {NULL, NULL, on_done};
    pthread_mutex_lock(&r->mu);
    r->inflight++;
    pthread_mutex_unlock(&r->mu);
    if (cm_httpc_start(r->srv->client, rq, &cbs, j, NULL) != CM_OK) {
        pthread_mutex_lock(&r->mu);
        r->inflight--;
        pthread_mutex_unlock(&r->mu);
        return CM_ERR_IO;
    }
    return CM_OK;
}

static void start_one(struct cp_refresher *r, const char *id)
{
    struct cp_authstore_cred *c = NULL;
    struct cp_config_ref *ref = NULL;
    const struct cp_config *cfg;
    struct cm_httpc_request rq;
    struct cp_refresh_req req = {0};
    struct job *j = NULL;
    int rc;

    rc = cp_authstore_begin_refresh(r->srv->store, id, &c);
    if (rc) {
        if (rc != CM_ERR_AGAIN) /* in flight: its answer notifies the waiters */
            notify(r, id, 0, 0, 0);
        goto out;
    }
    if (!c->af || !c->af->refresh_token || !*c->af->refresh_token || !can_refresh(c->provider_id)) {
        cp_authstore_finish_refresh(r->srv->store, id, NULL, 0, 1, "no refresh token");
        notify(r, id, 0, 1, 0);
        goto out;
    }
    ref = cp_config_live_acquire(r->srv->cfg);
    cfg = ref ? cp_config_ref_get(ref) : NULL;
    if (!cfg || (rc = cp_refresher_build_request(c->af, &req)) != CM_OK ||
        !(j = cm_calloc(1, sizeof *j)) || !(j->id = cm_strdup(id))) {
        cp_authstore_finish_refresh(r->srv->store, id, NULL, 0, 0, "cannot build the request");
        notify(r, id, 0, 0, 0);
        goto out;
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.url = cp_config_token_url(cfg, config_provider(c->provider_id));
    rq.headers = (const char *const *)req.headers;
    rq.n_headers = req.n_headers;
    rq.body = req.body;
    rq.body_len = req.len;
    rq.proxy = c->proxy_url && *c->proxy_url ? c->proxy_url : cfg->proxy_url;
    rq.connect_timeout_ms = 15000;
    rq.total_timeout_ms = 60000;
    rq.max_response = 1 << 20;
    j->r = r;
    j->iflow = c->provider_id == CP_AUTH_IFLOW;
    rc = send_job(r, &rq, j);
    if (rc == CM_OK)
        j = NULL;
    if (rc) {
        cp_authstore_finish_refresh(r->srv->store, id, NULL, 0, 0, "cannot start the request");
        notify(r, id, 0, 0, 0);
        goto out;
    }
    cm_log_info(NULL, "cliproxyd: refreshing the token of %s", id);
out:
    job_free(j);
    cp_refresh_req_cleanup(&req);
    cp_config_ref_release(ref);
    cp_authstore_release(c);
}

/*
 * iFlow, second step: GET <userinfo-url>?accessToken=<new token> for the API key. Takes
 * d->body into the job. CM_OK when started; otherwise d is untouched.
 */
static int start_userinfo(struct cp_refresher *r, struct done *d)
{
    struct cm_json_parse_opts o = {.max_depth = 32, .max_size = 1 << 20};
    struct cp_authstore_cred *c = NULL;
    struct cp_config_ref *ref = NULL;
    const struct cp_config *cfg;
    struct cm_httpc_request rq;
    const char *hdrs[] = {"Accept: application/json"};
    const cJSON *at;
    cJSON *ans = NULL;
    char *url = NULL;
    struct job *j = NULL;
    int rc = CM_ERR_INVAL;

    if (cm_json_parse(d->body, d->len, &o, &ans, NULL) != CM_OK)
        goto out;
    at = cJSON_GetObjectItemCaseSensitive(ans, "access_token");
    if (!cJSON_IsString(at) || !*at->valuestring)
        goto out; /* the store turns this answer into a clear error */
    ref = cp_config_live_acquire(r->srv->cfg);
    cfg = ref ? cp_config_ref_get(ref) : NULL;
    c = cp_authstore_acquire(r->srv->store, d->id);
    if (!cfg || !c ||
        cp_refresher_userinfo_url(cp_config_url(cfg, CP_PROVIDER_IFLOW, CP_URL_USERINFO),
                                  at->valuestring, &url) != CM_OK ||
        !(j = cm_calloc(1, sizeof *j)) || !(j->id = cm_strdup(d->id)))
        goto out;
    memset(&rq, 0, sizeof rq);
    rq.method = "GET";
    rq.url = url;
    rq.headers = hdrs;
    rq.n_headers = 1;
    rq.proxy = c->proxy_url && *c->proxy_url ? c->proxy_url : cfg->proxy_url;
    rq.connect_timeout_ms = 15000;
    rq.total_timeout_ms = 60000;
    rq.max_response = 1 << 20;
    j->r = r;
    j->token_body = d->body;
    j->token_len = d->len;
    rc = send_job(r, &rq, j);
    if (rc == CM_OK) {
        j = NULL;
        d->body = NULL; /* the job owns it now */
        d->len = 0;
    }
out:
    if (j)
        j->token_body = NULL; /* never started: d keeps its body */
    job_free(j);
    if (url) {
        cm_crypto_memzero(url, strlen(url));
        cm_free(url);
    }
    if (ans) {
        cJSON *tok = cJSON_GetObjectItemCaseSensitive(ans, "access_token");
        if (cJSON_IsString(tok))
            cm_crypto_memzero(tok->valuestring, strlen(tok->valuestring));
        cJSON_Delete(ans);
    }
    cp_authstore_release(c);
    cp_config_ref_release(ref);
    return rc;
}

static void done_free(struct done *d)
{
    free_secret_n(d->body, d->len);
    free_secret_n(d->userinfo, d->ulen);
    cm_free(d->id);
    cm_free(d);
}

static void apply(struct cp_refresher *r, struct done *d)
{
    int rc;
    if (d->need_userinfo && start_userinfo(r, d) == CM_OK) {
        done_free(d); /* its token answer travels with the user-info call */
        return;
    }
    if (d->userinfo_done && !d->userinfo)
        cm_log_warn(NULL, "cliproxyd: token refresh of %s: %s; the API key is unchanged", d->id,
                    d->error);
    rc = cp_authstore_finish_refresh_ex(r->srv->store, d->id, d->body, d->len, d->userinfo, d->ulen,
                                        d->permanent, d->body ? NULL : d->error);
    if (d->body && rc == CM_OK)
        cm_log_info(NULL, "cliproxyd: token of %s refreshed", d->id);
    else
        cm_log_warn(NULL, "cliproxyd: token refresh of %s: %s%s", d->id,
                    d->body ? cm_err_str(rc) : d->error,
                    d->permanent ? " (needs a new login)" : "");
    /* new tokens are in use even when only the file write (or the user info) failed */
    notify(r, d->id, d->body && (rc == CM_OK || rc == CM_ERR_IO), !d->body && d->permanent, 0);
    done_free(d);
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
        done_free(d);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    cm_free(r);
}
