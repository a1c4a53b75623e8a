/* SPDX-License-Identifier: MIT */
/*
 * mgmt_oauth.c - web logins through the management API (see mgmt_oauth.h). Sessions sit
 * in a small fixed table under one mutex, keyed by their random state. Each piece of
 * blocking work (code exchange, qwen device polling, the iFlow cookie login) gets its own
 * worker thread, counted so free() can stop and wait for them; workers take a reference
 * to the live config for their duration and use this module's own cm_httpc, so they
 * never depend on the daemon's client being alive.
 */
#include "api/mgmt_oauth.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "login/flow.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SESSIONS 64
#define WAIT_MS (5 * 60 * 1000) /* a session waits 5 min for its code */
#define KEEP_MS (5 * 60 * 1000) /* then its result stays readable 5 more */

enum sess_status { S_FREE = 0, S_WAIT, S_RUNNING, S_OK, S_ERROR };

struct sess {
    enum sess_status status;
    struct cp_login_pending p;
    char project[256];
    char error[CP_LOGIN_ERR_MAX];
    int64_t created_ms, done_ms;
};

struct cp_mgmt_oauth {
    struct cp_server *srv;
    struct cm_httpc *hc;
    cp_mgmt_gate_fn gate;
    void *gate_ud;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* workers == 0 */
    int workers;
    volatile int stop;
    struct sess s[SESSIONS];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cp_mgmt_oauth_new(struct cp_server *srv, struct cp_mgmt_oauth **out)
{
    struct cp_mgmt_oauth *o = cm_calloc(1, sizeof *o);
    int rc;
    if (!o)
        return CM_ERR_NOMEM;
    rc = cm_httpc_new(NULL, &o->hc);
    if (rc) {
        cm_free(o);
        return rc;
    }
    o->srv = srv;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    *out = o;
    return CM_OK;
}

void cp_mgmt_oauth_free(struct cp_mgmt_oauth *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    while (o->workers)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
    cm_httpc_free(o->hc);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    cm_crypto_memzero(o->s, sizeof o->s);
    cm_free(o);
}

/* under mu: times out waiting sessions, frees old results */
static void sweep(struct cp_mgmt_oauth *o, int64_t now)
{
    for (size_t i = 0; i < SESSIONS; i++) {
        struct sess *s = &o->s[i];
        if (s->status == S_WAIT && now - s->created_ms > WAIT_MS) {
            s->status = S_ERROR;
            snprintf(s->error, sizeof s->error, "Timeout waiting for OAuth callback");
            s->done_ms = now;
        }
        if ((s->status == S_OK || s->status == S_ERROR) && now - s->done_ms > KEEP_MS) {
            cm_crypto_memzero(s, sizeof *s);
            s->status = S_FREE;
        }
    }
}

/* under mu: the session of @p state, NULL if none */
static struct sess *find(struct cp_mgmt_oauth *o, const char *state)
{
    if (!state || !*state)
        return NULL;
    for (size_t i = 0; i < SESSIONS; i++)
        if (o->s[i].status != S_FREE && strcmp(o->s[i].p.state, state) == 0)
            return &o->s[i];
    return NULL;
}

/* under mu: a free slot (the oldest finished one if the table is full), never NULL */
static struct sess *slot(struct cp_mgmt_oauth *o)
{
    struct sess *best = NULL;
    for (size_t i = 0; i < SESSIONS; i++) {
        struct sess *s = &o->s[i];
        if (s->status == S_FREE)
            return s;
        if (s->status != S_RUNNING && (!best || s->created_ms < best->created_ms))
            best = s;
    }
    if (!best)
        best = &o->s[0];
    cm_crypto_memzero(best, sizeof *best);
    return best;
}

static void finish_sess(struct cp_mgmt_oauth *o, const char *state, int rc, const char *err)
{
    struct sess *s;
    pthread_mutex_lock(&o->mu);
    s = find(o, state);
    if (s) {
        s->status = rc ? S_ERROR : S_OK;
        snprintf(s->error, sizeof s->error, "%s", rc ? (err && *err ? err : cm_err_str(rc)) : "");
        s->done_ms = mono_ms();
    }
    pthread_mutex_unlock(&o->mu);
}

/* ---- replies ---- */

static void reply_obj(struct cm_httpd_req *r, unsigned status, cJSON *root)
{
    char *out = NULL;
    size_t len = 0;
    if (root && cm_json_print(root, &out, &len) == CM_OK)
        cm_httpd_reply_take(r, status, "application/json", out, len);
    else
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
    cJSON_Delete(root);
}

/* {"status": st, k1: v1, k2: v2, ...} (NULL-terminated name/value pairs) */
static void reply_kv(struct cm_httpd_req *r, unsigned status, const char *st, ...)
{
    cJSON *o = NULL;
    va_list ap;
    const char *k;
    int rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "status", st);
    va_start(ap, st);
    while (!rc && (k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        rc = cm_json_set_string(o, k, v ? v : "");
    }
    va_end(ap);
    if (rc) {
        cJSON_Delete(o);
        o = NULL;
    }
    reply_obj(r, status, o);
}

/* ---- workers ---- */

enum job_type { J_EXCHANGE, J_QWEN, J_COOKIE };

struct job {
    struct cp_mgmt_oauth *o;
    enum job_type type;
    struct cp_login_pending p;
    char *code; /* J_EXCHANGE */
    char project[256];
    char email[256];          /* J_QWEN */
    char *cookie;             /* J_COOKIE */
    struct cm_httpd_req *req; /* J_QWEN, J_COOKIE: replied by the worker */
};

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->code) {
        cm_crypto_memzero(j->code, strlen(j->code));
        cm_free(j->code);
    }
    if (j->cookie) {
        cm_crypto_memzero(j->cookie, strlen(j->cookie));
        cm_free(j->cookie);
    }
    if (j->req)
        cm_httpd_req_unref(j->req);
    cm_crypto_memzero(&j->p, sizeof j->p);
    cm_free(j);
}

static void run_exchange(struct job *j, const struct cp_config *cfg)
{
    char path[CP_LOGIN_PATH_MAX], err[CP_LOGIN_ERR_MAX] = "";
    int rc = cp_login_finish(cfg, j->o->hc, &j->p, j->code, j->project[0] ? j->project : NULL, path,
                             NULL, 0, err, sizeof err);
    if (rc)
        cm_log_warn(NULL, "management: %s login failed: %s", cp_login_kind_name(j->p.kind), err);
    else
        cm_log_info(NULL, "management: %s login saved %s", cp_login_kind_name(j->p.kind), path);
    finish_sess(j->o, j->p.state, rc, err);
}

static void run_qwen(struct job *j, const struct cp_config *cfg)
{
    struct cp_login_device d = {0};
    char ver[CP_LOGIN_VERIFIER_MAX], path[CP_LOGIN_PATH_MAX], err[CP_LOGIN_ERR_MAX] = "";
    struct sess *s;
    int rc = cp_login_qwen_start(cfg, j->o->hc, &d, ver, err, sizeof err);
    if (rc) {
        reply_kv(j->req, 502, "error", "error", err, NULL);
        goto out;
    }
    pthread_mutex_lock(&j->o->mu);
    s = slot(j->o);
    s->status = S_RUNNING;
    s->p = j->p;
    s->created_ms = mono_ms();
    pthread_mutex_unlock(&j->o->mu);
    reply_kv(j->req, 200, "ok", "url", d.verification_uri, "state", j->p.state, "user_code",
             d.user_code, NULL);
    rc = cp_login_qwen_poll(cfg, j->o->hc, &d, ver, j->email, WAIT_MS / 1000, &j->o->stop, path,
                            err, sizeof err);
    finish_sess(j->o, j->p.state, rc, err);
out:
    cm_crypto_memzero(ver, sizeof ver);
    cp_login_device_cleanup(&d);
}

static void run_cookie(struct job *j, const struct cp_config *cfg)
{
    char path[CP_LOGIN_PATH_MAX], err[CP_LOGIN_ERR_MAX] = "", email[256] = "";
    int rc =
        cp_login_iflow_cookie(cfg, j->o->hc, j->cookie, path, email, sizeof email, err, sizeof err);
    if (rc)
        reply_kv(j->req,
                 rc == CM_ERR_AUTH || rc == CM_ERR_INVAL || rc == CM_ERR_NOTFOUND ? 400 : 502,
                 "error", "error", err, NULL);
    else
        reply_kv(j->req, 200, "ok", "saved_path", path, "email", email, NULL);
}

static void *worker(void *arg)
{
    struct job *j = arg;
    struct cp_mgmt_oauth *o = j->o;
    struct cp_config_ref *ref = cp_config_live_acquire(o->srv->cfg);
    const struct cp_config *cfg = cp_config_ref_get(ref);
    if (!cfg) {
        if (j->req)
            reply_kv(j->req, 503, "error", "error", "no configuration", NULL);
        else
            finish_sess(o, j->p.state, CM_ERR_INTERNAL, "no configuration");
    } else if (j->type == J_EXCHANGE) {
        run_exchange(j, cfg);
    } else if (j->type == J_QWEN) {
        run_qwen(j, cfg);
    } else {
        run_cookie(j, cfg);
    }
    cp_config_ref_release(ref);
    job_free(j);
    pthread_mutex_lock(&o->mu);
    if (--o->workers == 0)
        pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* starts a detached worker for @p j (owned by it from here on, also on failure) */
static int spawn(struct cp_mgmt_oauth *o, struct job *j)
{
    pthread_t t;
    pthread_attr_t a;
    int e;
    pthread_mutex_lock(&o->mu);
    if (o->stop) {
        pthread_mutex_unlock(&o->mu);
        job_free(j);
        return CM_ERR_CLOSED;
    }
    o->workers++;
    pthread_mutex_unlock(&o->mu);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    e = pthread_create(&t, &a, worker, j);
    pthread_attr_destroy(&a);
    if (e) {
        pthread_mutex_lock(&o->mu);
        if (--o->workers == 0)
            pthread_cond_broadcast(&o->cv);
        pthread_mutex_unlock(&o->mu);
        job_free(j);
        return CM_ERR_IO;
    }
    return CM_OK;
}

/* ---- handlers ---- */

static void auth_url(struct cp_mgmt_oauth *o, struct cm_httpd_req *r, enum cp_login_kind k)
{
    struct cp_config_ref *ref;
    const struct cp_config *cfg;
    const char *proj;
    struct cp_login_pending p;
    struct sess *s;
    char *url = NULL;
    int rc;

    if (o->gate(o->gate_ud, r))
        return;
    proj = cm_httpd_req_arg(r, "project_id");
    ref = cp_config_live_acquire(o->srv->cfg);
    cfg = cp_config_ref_get(ref);
    rc = cfg ? cp_login_begin(cfg, k, 0, &p, &url) : CM_ERR_INTERNAL;
    cp_config_ref_release(ref);
    if (rc) {
        reply_kv(r, 500, "error", "error", "cannot start the login", NULL);
        return;
    }
    pthread_mutex_lock(&o->mu);
    sweep(o, mono_ms());
    s = slot(o);
    s->status = S_WAIT;
    s->p = p;
    snprintf(s->project, sizeof s->project, "%s", proj ? proj : "");
    s->created_ms = mono_ms();
    pthread_mutex_unlock(&o->mu);
    reply_kv(r, 200, "ok", "url", url, "state", p.state, NULL);
    cm_free(url);
    cm_crypto_memzero(&p, sizeof p);
}

static void codex_url(struct cm_httpd_req *r, void *ud)
{
    auth_url(ud, r, CP_LOGIN_CODEX);
}

static void claude_url(struct cm_httpd_req *r, void *ud)
{
    auth_url(ud, r, CP_LOGIN_CLAUDE);
}

static void gemini_url(struct cm_httpd_req *r, void *ud)
{
    auth_url(ud, r, CP_LOGIN_GEMINI);
}

static void iflow_url(struct cm_httpd_req *r, void *ud)
{
    auth_url(ud, r, CP_LOGIN_IFLOW);
}

static void qwen_url(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt_oauth *o = ud;
    const char *em;
    unsigned char st[16];
    struct job *j;

    if (o->gate(o->gate_ud, r))
        return;
    j = cm_calloc(1, sizeof *j);
    if (!j || cm_crypto_random_bytes(st, sizeof st) ||
        cm_crypto_hex_encode(st, sizeof st, j->p.state, sizeof j->p.state)) {
        cm_free(j);
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
        return;
    }
    j->o = o;
    j->type = J_QWEN;
    j->p.kind = CP_LOGIN_QWEN;
    em = cm_httpd_req_arg(r, "email");
    if (em && *em)
        snprintf(j->email, sizeof j->email, "%s", em);
    else /* no prompt on the web: a unique alias */
        snprintf(j->email, sizeof j->email, "qwen-%lld", (long long)time(NULL));
    cm_httpd_req_ref(r);
    j->req = r;
    if (spawn(o, j))
        cm_httpd_reply_error(r, 503, "server_error", NULL, "cannot start the login");
}

static void iflow_cookie(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt_oauth *o = ud;
    struct cm_json_parse_opts po = {.max_size = 64 * 1024};
    const char *body, *ck = NULL;
    size_t len;
    cJSON *t = NULL;
    struct job *j;

    if (o->gate(o->gate_ud, r))
        return;
    body = cm_httpd_req_body(r, &len);
    if (cm_json_parse(body, len, &po, &t, NULL) != CM_OK ||
        cm_json_get_string(t, "cookie", &ck, NULL) != CM_OK || !*ck) {
        cJSON_Delete(t);
        reply_kv(r, 400, "error", "error", "body must be {\"cookie\":\"...\"}", NULL);
        return;
    }
    j = cm_calloc(1, sizeof *j);
    if (j)
        j->cookie = cm_strdup(ck);
    {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "cookie");
        cm_crypto_memzero(c->valuestring, strlen(c->valuestring)); /* a secret */
    }
    cJSON_Delete(t);
    if (!j || !j->cookie) {
        job_free(j);
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
        return;
    }
    j->o = o;
    j->type = J_COOKIE;
    cm_httpd_req_ref(r);
    j->req = r;
    if (spawn(o, j))
        cm_httpd_reply_error(r, 503, "server_error", NULL, "cannot start the login");
}

/* "codex" | "anthropic"/"claude" | "gemini"/"gemini-cli" | "iflow" -> kind; -1 otherwise */
static int kind_of(const char *p)
{
    if (!p)
        return -1;
    if (strcmp(p, "codex") == 0)
        return CP_LOGIN_CODEX;
    if (strcmp(p, "anthropic") == 0 || strcmp(p, "claude") == 0)
        return CP_LOGIN_CLAUDE;
    if (strcmp(p, "gemini") == 0 || strcmp(p, "gemini-cli") == 0 || strcmp(p, "google") == 0)
        return CP_LOGIN_GEMINI;
    if (strcmp(p, "iflow") == 0)
        return CP_LOGIN_IFLOW;
    return -1;
}

/*
 * Completes the pending session of cb->state (of @p kind, -1 = any): a provider error ends
 * it, a code starts the exchange. Returns the HTTP status to answer and a message.
 */
static unsigned complete(struct cp_mgmt_oauth *o, int kind, struct cp_login_callback *cb,
                         const char **msg)
{
    struct sess *s;
    struct job *j = NULL;
    unsigned st = 200;

    pthread_mutex_lock(&o->mu);
    sweep(o, mono_ms());
    s = find(o, cb->state);
    if (!s || (kind >= 0 && (int)s->p.kind != kind)) {
        *msg = "unknown or expired state";
        st = 404;
    } else if (s->status != S_WAIT) {
        *msg = s->status == S_RUNNING ? "login already in progress" : "login already finished";
        st = 409;
    } else if (cb->error) {
        s->status = S_ERROR;
        snprintf(s->error, sizeof s->error, "%s", cb->error);
        s->done_ms = mono_ms();
        *msg = "the provider reported an error";
        st = 400;
    } else if (!(j = cm_calloc(1, sizeof *j)) || !(j->code = cm_strdup(cb->code))) {
        *msg = "out of memory";
        st = 503;
    } else {
        s->status = S_RUNNING;
        j->o = o;
        j->type = J_EXCHANGE;
        j->p = s->p;
        snprintf(j->project, sizeof j->project, "%s", s->project);
        *msg = "ok";
    }
    pthread_mutex_unlock(&o->mu);
    if (st != 200) {
        job_free(j);
        return st;
    }
    if (spawn(o, j)) {
        finish_sess(o, cb->state, CM_ERR_IO, "cannot start the token exchange");
        *msg = "cannot start the token exchange";
        return 503;
    }
    return 200;
}

static void oauth_callback(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt_oauth *o = ud;
    struct cm_json_parse_opts po = {.max_size = 64 * 1024};
    struct cp_login_callback cb = {0};
    const char *body, *prov = NULL, *url = NULL, *code = NULL, *state = NULL, *msg = "";
    size_t len;
    cJSON *t = NULL;
    int kind, rc;
    unsigned st;

    if (o->gate(o->gate_ud, r))
        return;
    body = cm_httpd_req_body(r, &len);
    rc = cm_json_parse(body, len, &po, &t, NULL);
    if (!rc)
        rc = cm_json_get_string(t, "provider", &prov, NULL);
    if (!rc) {
        cm_json_opt_string(t, "redirect_url", NULL, &url, NULL);
        cm_json_opt_string(t, "code", NULL, &code, NULL);
        cm_json_opt_string(t, "state", NULL, &state, NULL);
    }
    kind = kind_of(prov);
    if (rc || kind < 0) {
        reply_kv(r, 400, "error", "error",
                 rc ? "body must be {provider, redirect_url} or {provider, code, state}"
                    : "unknown provider",
                 NULL);
        goto out;
    }
    if (url && *url) {
        rc = cp_login_parse_callback(url, &cb);
    } else if (code && *code && state && *state) {
        cb.code = cm_strdup(code);
        cb.state = cm_strdup(state);
        rc = cb.code && cb.state ? CM_OK : CM_ERR_NOMEM;
    } else {
        rc = CM_ERR_PARSE;
    }
    if (!rc && kind == CP_LOGIN_CLAUDE && cb.code && strchr(cb.code, '#')) {
        /* Claude shows "code#state": the fragment is the state */
        char *h = strchr(cb.code, '#');
        *h = '\0';
        if (!cb.state)
            cb.state = cm_strdup(h + 1);
    }
    if (rc || !cb.state) {
        reply_kv(r, 400, "error", "error", "no code and state in the pasted answer", NULL);
        goto out;
    }
    st = complete(o, kind, &cb, &msg);
    if (st == 200)
        reply_kv(r, 200, "ok", NULL);
    else
        reply_kv(r, st, "error", "error", msg, NULL);
out:
    cp_login_callback_cleanup(&cb);
    cJSON_Delete(t);
}

static void auth_status(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt_oauth *o = ud;
    const char *state;
    struct sess *s;
    char err[CP_LOGIN_ERR_MAX] = "";
    enum sess_status st = S_FREE;

    if (o->gate(o->gate_ud, r))
        return;
    state = cm_httpd_req_arg(r, "state");
    pthread_mutex_lock(&o->mu);
    sweep(o, mono_ms());
    s = find(o, state);
    if (s) {
        st = s->status;
        snprintf(err, sizeof err, "%s", s->error);
    }
    pthread_mutex_unlock(&o->mu);
    if (st == S_FREE)
        reply_kv(r, 404, "error", "error", "unknown or expired state", NULL);
    else if (st == S_OK)
        reply_kv(r, 200, "ok", NULL);
    else if (st == S_ERROR)
        reply_kv(r, 200, "error", "error", err, NULL);
    else
        reply_kv(r, 200, "wait", NULL);
}

static const char page_ok[] =
    "<!doctype html><html><head><title>Authentication successful</title>"
    "<script>setTimeout(function(){window.close()},5000)</script></head><body>"
    "<h1>Authentication successful!</h1><p>You can close this window.</p></body></html>";
static const char page_bad[] =
    "<!doctype html><html><head><title>Authentication failed</title></head><body>"
    "<h1>Authentication failed</h1><p>The login could not be completed; start it again from "
    "the management page.</p></body></html>";

static void sink(struct cp_mgmt_oauth *o, struct cm_httpd_req *r, enum cp_login_kind k)
{
    struct cp_login_callback cb = {0};
    const char *msg = "";
    unsigned st = 400;
    if (cp_login_parse_query(cm_httpd_req_query(r), &cb) == CM_OK && cb.state)
        st = complete(o, (int)k, &cb, &msg);
    if (st == 200)
        cm_httpd_reply(r, 200, "text/html; charset=utf-8", page_ok, sizeof page_ok - 1);
    else
        cm_httpd_reply(r, st, "text/html; charset=utf-8", page_bad, sizeof page_bad - 1);
    cp_login_callback_cleanup(&cb);
}

static void codex_cb(struct cm_httpd_req *r, void *ud)
{
    sink(ud, r, CP_LOGIN_CODEX);
}

static void claude_cb(struct cm_httpd_req *r, void *ud)
{
    sink(ud, r, CP_LOGIN_CLAUDE);
}

static void google_cb(struct cm_httpd_req *r, void *ud)
{
    sink(ud, r, CP_LOGIN_GEMINI);
}

static void iflow_cb(struct cm_httpd_req *r, void *ud)
{
    sink(ud, r, CP_LOGIN_IFLOW);
}

int cp_mgmt_oauth_routes(struct cm_httpd *s, struct cp_mgmt_oauth *o, cp_mgmt_gate_fn gate,
                         void *gate_ud)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } t[] = {
        {"GET", "/v0/management/codex-auth-url", codex_url},
        {"GET", "/v0/management/anthropic-auth-url", claude_url},
        {"GET", "/v0/management/gemini-cli-auth-url", gemini_url},
        {"GET", "/v0/management/iflow-auth-url", iflow_url},
        {"POST", "/v0/management/iflow-auth-url", iflow_cookie},
        {"GET", "/v0/management/qwen-auth-url", qwen_url},
        {"POST", "/v0/management/oauth-callback", oauth_callback},
        {"GET", "/v0/management/get-auth-status", auth_status},
        {"GET", "/codex/callback", codex_cb},
        {"GET", "/anthropic/callback", claude_cb},
        {"GET", "/google/callback", google_cb},
        {"GET", "/iflow/callback", iflow_cb},
    };
    int rc = CM_OK;
    if (!s || !o || !gate)
        return CM_ERR_INVAL;
    o->gate = gate;
    o->gate_ud = gate_ud;
    for (size_t i = 0; !rc && i < sizeof t / sizeof *t; i++)
        rc = cm_httpd_route(s, t[i].method, t[i].path, t[i].fn, o);
    return rc;
}
