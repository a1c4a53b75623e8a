/* SPDX-License-Identifier: MIT */
/*
 * relay.c - the inference routes: POST /v1/chat/completions, /v1/responses and
 * /v1/messages. The model decides the upstream (the provider whose credentials serve
 * it), which with the client's format picks a `struct cp_relay_fmt` (relay_fmt.h). Key
 * check, prepare the upstream body once, then per attempt: pick a credential, send,
 * and either stream to the client or aggregate a non-stream answer.
 *
 * Failover to the next credential happens before the first content byte reaches the
 * client (quota, transient and early-end failures); every attempt's result cools the
 * credential through the scheduler. A 401 first refreshes that credential's token (on
 * the refresher's thread, never blocking a request thread) and retries it once; a second
 * 401, or a refresh that fails for good, marks it needs re-login and moves on.
 *
 * Threads: the handler runs on a server thread; later steps on the httpc I/O thread, or
 * on the refresher's thread right after a refresh; never two at once for one job. The
 * job is refcounted: one reference for the request's close callback, one for the
 * transfer (or the refresh) in flight.
 */
#include "api/relay.h"

#include "api/clientkey.h"
#include "api/relay_fmt.h"
#include "authstore.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "cm/pipe.h"
#include "cm/sse.h"
#include "channels.h"
#include "keyring.h"
#include "providers/codex.h"
#include "translate/estimate.h"
#include "refresher.h"
#include "scheduler.h"
#include "usage.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 8 /* distinct credentials in one round */
#define MAX_TOTAL 16   /* attempts over all rounds */
#define MAX_BODY ((size_t)16 << 20)
#define HEAD_MAX ((size_t)64 << 10)

enum client_fmt {
    CLIENT_CHAT,
    CLIENT_RESPONSES,
    CLIENT_MESSAGES,
    CLIENT_GEMINI,
    CLIENT_COMPLETIONS,
    CLIENT_COUNT_MESSAGES, /* /v1/messages/count_tokens */
    CLIENT_COUNT_GEMINI    /* /v1beta/models/{m}:countTokens */
};

struct job {
    atomic_int refs;
    const struct cp_relay_fmt *fmt;
    const struct cp_relay_fmt *up; /* the format that talks to the upstream (fmt, or the
                                      pivot's chat format) */
    struct cp_server *srv;
    struct cm_httpd_req *req;
    cJSON *client; /* the client's request */
    struct cp_relay_x x;
    char model[256];
    char key_masked[32];
    char *ua, *hdr; /* copies of the client's headers for x */
    /* attempts */
    char tried_ids[MAX_ATTEMPTS][256];
    const char *tried[MAX_ATTEMPTS];
    size_t ntried;
    int rounds;    /* extra rounds after a transient failure (request-retry) */
    int total;     /* attempts so far */
    int pin;       /* retry tried[ntried - 1] (after its token was refreshed) */
    int refreshed; /* tried[ntried - 1] got a refresh for this request */
    struct cp_authstore_cred *cred;
    struct cm_httpc_slot xfer; /* the attempt's transfer, reached by on_close too */
    long status;
    struct cm_buf head; /* the answer's header lines, for outcome() */
    struct cm_buf body; /* error body, or the whole answer for non-stream */
    struct cp_sched_outcome last;
    int have_last; /* x.err describes the last failure */
    /* streaming */
    struct cm_sse_parser parser;
    int tr_ready;
    /* for the counters */
    int64_t t0_ms;
    char last_cred[256];
    struct cp_usage_tokens tokens;
    int have_tokens;
    struct cm_pipe *pipe;
    int started; /* the client got the response head */
};

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    cm_httpd_req_unref(j->req);
    cJSON_Delete(j->client);
    cm_free(j->x.body);
    cm_free(j->x.extra);
    cm_free(j->x.raw);
    cm_free(j->ua);
    cm_free(j->hdr);
    cp_authstore_release(j->cred);
    cm_httpc_slot_cleanup(&j->xfer);
    cm_buf_cleanup(&j->head);
    cm_buf_cleanup(&j->body);
    cm_buf_cleanup(&j->x.out);
    if (j->tr_ready)
        j->fmt->stream_cleanup(&j->x);
    cp_pivot_free(&j->x);
    cm_sse_parser_cleanup(&j->parser);
    cm_pipe_unref(j->pipe);
    cm_free(j);
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_attempt(struct job *j);

/* ---- replies ---- */

static void reply_tr_error(struct job *j, const struct cp_tr_err *e)
{
    cm_httpd_reply_error(j->req, e->status ? e->status : 502, e->type[0] ? e->type : "api_error",
                         e->code[0] ? e->code : NULL, "%s", e->msg[0] ? e->msg : "upstream error");
}

/* the last upstream error, as the client gets it when no credential is left */
static void reply_last(struct job *j)
{
    if (j->have_last && j->x.err.msg[0]) {
        reply_tr_error(j, &j->x.err);
    } else if (j->status && j->body.len && j->body.data[0] == '{') {
        cm_httpd_reply(j->req, (unsigned)j->status, "application/json", j->body.data, j->body.len);
    } else {
        cm_httpd_reply_error(j->req, 502, "api_error", "upstream_error",
                             "no credential could serve the request");
    }
}

/* ---- streaming output ---- */

/* starts the client's stream (once); CM_ERR_CLOSED when the client is gone */
static int ensure_started(struct job *j)
{
    int rc;
    if (j->started)
        return CM_OK;
    rc = cm_httpd_reply_sse(j->req, 64 * 1024, cm_httpc_slot_wake, &j->xfer, &j->pipe);
    j->started = j->pipe != NULL;
    return rc;
}

/* the SSE parser's event callback: one upstream event -> client bytes in x.out */
static int on_sse_event(void *ud, const struct cm_sse_event *ev)
{
    struct job *j = ud;
    j->fmt->stream_event(&j->x, ev);
    if (j->x.tr_rc)
        j->have_last = 1;
    return 0;
}

/* ---- httpc callbacks (I/O thread) ---- */

static int on_head(struct cm_httpc_xfer *x, const struct cm_httpc_head *h, void *ud)
{
    struct job *j = ud;
    (void)x;
    j->status = h->status;
    cm_buf_reset(&j->head);
    if (h->raw && h->raw_len)
        (void)cm_buf_append(&j->head, h->raw, h->raw_len); /* capped: extra lines dropped */
    return CM_OK;
}

static int streaming(const struct job *j)
{
    return j->x.stream && j->x.up_stream;
}

static int on_data(struct cm_httpc_xfer *x, const char *p, size_t n, void *ud)
{
    struct job *j = ud;
    struct cm_buf *out = &j->x.out;
    int rc;
    (void)x;

    if (j->status != 200 || !streaming(j))
        return cm_buf_append(&j->body, p, n); /* error body, or the answer to aggregate */
    if (j->started && out->len) {             /* first flush what the last chunk produced */
        rc = cm_pipe_write(j->pipe, out->data, out->len);
        if (rc == CM_ERR_AGAIN)
            return CM_ERR_AGAIN; /* redelivered after the client drained */
        if (rc)
            return rc;
        cm_buf_reset(out);
    }
    rc = cm_sse_parser_feed(&j->parser, p, n, NULL);
    if (rc)
        return rc;
    /* hold everything back until real content exists, so an early failure can fail over */
    if (!j->started && (j->x.tr_rc || !j->x.content))
        return CM_OK;
    if (out->len && !j->started && (rc = ensure_started(j)))
        return rc;
    if (out->len) {
        rc = cm_pipe_write(j->pipe, out->data, out->len);
        if (rc == CM_OK)
            cm_buf_reset(out);
        else if (rc != CM_ERR_AGAIN)
            return rc; /* keep the rest for the next call or the end */
    }
    return CM_OK;
}

static enum cp_sched_transport transport_of(int rc)
{
    return rc == CM_ERR_TIMEOUT ? CP_SCHED_TX_TIMEOUT : CP_SCHED_TX_CONNECT;
}

static void finish_attempt(struct job *j, const struct cp_sched_outcome *o)
{
    cp_sched_mark_result(j->srv->sched, j->tried[j->ntried - 1], j->model, o);
    j->last = *o;
}

/* may this failure move on to another credential? (only before the client saw a byte) */
static int try_next(struct job *j, const struct cp_sched_outcome *o)
{
    return !j->started && cp_sched_should_failover(o) && j->total < MAX_TOTAL;
}

/* after a failed attempt: the next credential, or the client gets the error */
static void fail_attempt(struct job *j, const struct cp_sched_outcome *o, int have_err)
{
    finish_attempt(j, o);
    j->have_last = have_err;
    if (try_next(j, o))
        start_attempt(j);
    else if (j->started)
        cm_pipe_close(j->pipe, CM_ERR_UPSTREAM);
    else
        reply_last(j);
}

/*
 * Every credential was tried in this round. After a transient failure another round
 * starts (up to `request-retry`): the scheduler then hands out the transiently cooling
 * credential whose cooldown ends first, so one 503 never loses a request.
 */
static int next_round(struct job *j)
{
    struct cp_config_ref *ref = cp_config_live_acquire(j->srv->cfg);
    int retry = ref ? cp_config_ref_get(ref)->request_retry : 0;
    cp_config_ref_release(ref);
    if (cp_sched_classify(&j->last) != CP_SCHED_C_TRANSIENT || j->rounds >= retry ||
        j->total >= MAX_TOTAL)
        return 0;
    j->rounds++;
    j->ntried = 0;
    return 1;
}

static void note_usage(struct job *j, const struct cp_tr_usage *u)
{
    j->tokens.input = u->input;
    j->tokens.output = u->output;
    j->tokens.cached = u->cached;
    j->tokens.reasoning = u->reasoning;
    j->have_tokens = 1;
}

/* the request's part of its access line: who, what, which credential, how it went */
static void note_request(struct job *j)
{
    char note[1024], fmt[96];
    int n;
    if (j->x.in) /* the pivot: "responses->" + "chat->gemini" */
        snprintf(fmt, sizeof fmt, "%s->%s", j->x.in->name, j->up->name);
    else
        snprintf(fmt, sizeof fmt, "%s", j->fmt ? j->fmt->name : "-");
    n = snprintf(note, sizeof note, "client=%s model=%s fmt=%s cred=%s attempts=%d",
                     j->key_masked, j->model, fmt,
                     j->last_cred[0] ? j->last_cred : "-", j->total);
    static const char *const tx[] = {"", "connect", "reset", "timeout", "stream_closed"};
    if (n > 0 && (size_t)n < sizeof note && j->total && j->last.transport)
        n += snprintf(note + n, sizeof note - (size_t)n, " upstream=%s",
                      (unsigned)j->last.transport < 5 ? tx[j->last.transport] : "error");
    else if (n > 0 && (size_t)n < sizeof note && j->total)
        n += snprintf(note + n, sizeof note - (size_t)n, " upstream=%d", j->last.status);
    if (n > 0 && (size_t)n < sizeof note && j->have_tokens)
        snprintf(note + n, sizeof note - (size_t)n,
                 " tokens_in=%lld tokens_out=%lld cached=%lld reasoning=%lld",
                 (long long)j->tokens.input, (long long)j->tokens.output,
                 (long long)j->tokens.cached, (long long)j->tokens.reasoning);
    cm_httpd_req_note(j->req, note);
}

/* ---- 401: refresh the token, then retry the same credential once ---- */

static void on_refreshed(void *ud, int ok, int permanent)
{
    struct job *j = ud;
    if (cm_httpd_req_aborted(j->req))
        goto out;
    if (ok) {
        cm_log_info(cm_httpd_req_id(j->req), "cliproxyd: retrying %s with its refreshed token",
                    j->tried[j->ntried - 1]);
        j->pin = 1;
        start_attempt(j);
    } else {
        /* for good: needs re-login (401); a passing failure: the credential rests briefly */
        struct cp_sched_outcome o = {.status = permanent ? 401 : 503};
        fail_attempt(j, &o, 0);
    }
out:
    job_unref(j); /* the refresh's reference */
}

/* CM_OK when a refresh for the 401 just received was started (it continues the job) */
static int refresh_and_retry(struct job *j, const char *why)
{
    struct cp_refresher *rf = j->srv->refresher;
    if (!rf || j->refreshed || j->started || (j->cred && j->cred->af && j->cred->af->key_entry))
        return CM_ERR_INVAL; /* an API key has no token to refresh */
    j->refreshed = 1;
    atomic_fetch_add(&j->refs, 1);
    if (cp_refresher_refresh_now(rf, j->tried[j->ntried - 1], on_refreshed, j) != CM_OK) {
        atomic_fetch_sub(&j->refs, 1);
        return CM_ERR_INVAL;
    }
    cm_log_info(cm_httpd_req_id(j->req), "cliproxyd: %s %s; refreshing its token",
                j->tried[j->ntried - 1], why);
    return CM_OK;
}

/* ---- the end of one upstream call ---- */

static void done_nonstream(struct job *j)
{
    struct cp_sched_outcome o = {0};
    struct cp_tr_usage u = {0};
    char *txt = NULL;
    size_t len = 0;
    int rc =
        j->fmt->aggregate(&j->x, j->body.data ? j->body.data : "", j->body.len, &txt, &len, &u);
    if (rc) {
        o.status = (int)j->x.err.status;
        if (rc == CM_ERR_TIMEOUT)
            o.transport = CP_SCHED_TX_STREAM_CLOSED;
        finish_attempt(j, &o);
        j->have_last = 1;
        if (try_next(j, &o))
            start_attempt(j);
        else
            reply_tr_error(j, &j->x.err);
        return;
    }
    o.status = 200;
    finish_attempt(j, &o);
    note_usage(j, &u);
    cm_httpd_reply_take(j->req, 200, "application/json", txt, len);
}

static void done_stream(struct job *j)
{
    struct cp_sched_outcome o = {0};
    struct cp_tr_usage u = {0};
    struct cm_buf *out = &j->x.out;

    cm_sse_parser_finish(&j->parser, 0);
    if (!j->x.tr_rc) {
        int rc = j->fmt->stream_finish(&j->x);
        if (rc) {
            j->x.tr_rc = rc;
            j->have_last = 1;
        }
    }
    if (j->x.tr_rc) {
        o.status = (int)j->x.err.status;
        if (j->x.tr_rc == CM_ERR_TIMEOUT)
            o.transport = CP_SCHED_TX_STREAM_CLOSED;
        finish_attempt(j, &o);
        if (try_next(j, &o)) {
            start_attempt(j);
            return;
        }
        if (!j->started) {
            reply_tr_error(j, &j->x.err);
            return;
        }
    } else {
        o.status = 200;
        finish_attempt(j, &o);
        if (j->fmt->stream_usage(&j->x, &u) == CM_OK)
            note_usage(j, &u);
    }
    if (!j->started && ensure_started(j) != CM_OK)
        return;
    if (out->len)
        cm_pipe_write_force(j->pipe, out->data, out->len);
    cm_buf_reset(out);
    cm_pipe_close(j->pipe, CM_OK); /* an error event (if any) is already in the stream */
}

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    struct job *j = ud;
    struct cp_sched_outcome o = {0};
    (void)x;

    if (r->rc == CM_ERR_CLOSED && cm_httpd_req_aborted(j->req))
        goto out;                           /* the client left: nothing to report */
    if (r->rc != CM_OK && r->status == 0) { /* no answer at all */
        o.transport = transport_of(r->rc);
        memset(&j->x.err, 0, sizeof j->x.err);
        snprintf(j->x.err.msg, sizeof j->x.err.msg, "upstream unreachable: %s", r->error);
        j->x.err.status = r->rc == CM_ERR_TIMEOUT ? 504 : 502;
        fail_attempt(j, &o, 1);
        goto out;
    }
    if (j->status < 200 || j->status > 299) {
        struct cm_httpc_head h = {j->status, j->head.data, j->head.len};
        if (j->status == 401 && refresh_and_retry(j, "answered 401") == CM_OK)
            goto out;
        j->up->outcome(&h, j->status, j->body.data, j->body.len, wall_s(), &o);
        fail_attempt(j, &o, 0);
        goto out;
    }
    if (streaming(j))
        done_stream(j);
    else
        done_nonstream(j);
out:
    job_unref(j); /* the transfer's reference */
}

/* ---- attempts ---- */

/* nothing to pick: the reply says why */
static void reply_no_pick(struct job *j, int rc, const struct cp_sched_pick *pk)
{
    if (!rc && pk->verdict == CP_SCHED_ALL_COOLING) {
        char body[768], ra[32];
        int n = snprintf(body, sizeof body,
                         "{\"error\":{\"code\":\"model_cooldown\",\"message\":\"All "
                         "credentials for model %s are cooling down\",\"model\":\"%s\","
                         "\"reset_seconds\":%lld}}",
                         j->model, j->model, (long long)pk->retry_after_s);
        snprintf(ra, sizeof ra, "%lld", (long long)pk->retry_after_s);
        cm_httpd_add_header(j->req, "Retry-After", ra);
        cm_httpd_reply(j->req, 429, "application/json", body,
                       n > 0 && (size_t)n < sizeof body ? (size_t)n : 0);
    } else if (j->total) {
        reply_last(j);
    } else if (!rc && pk->verdict == CP_SCHED_NONE_SERVING) {
        cm_httpd_reply_error(j->req, 404, "invalid_request_error", "model_not_found",
                             "no credential serves model '%s'", j->model);
    } else {
        cm_httpd_reply_error(j->req, 503, "server_error", "auth_unavailable",
                             "auth_unavailable: no auth available (providers=%s, model=%s)",
                             j->up->provider, j->model);
    }
}

/* `max-retry-credentials`: distinct credentials one request may try (0 = all) */
static size_t max_credentials(struct job *j)
{
    struct cp_config_ref *ref = cp_config_live_acquire(j->srv->cfg);
    int n = ref ? cp_config_ref_get(ref)->max_retry_credentials : 0;
    cp_config_ref_release(ref);
    return n > 0 ? (size_t)n : (size_t)-1;
}

/* the next credential into tried[ntried - 1]; 0 when one was picked */
static int pick(struct job *j)
{
    const char *provs[1] = {j->up->provider};
    struct cp_sched_pick_req pr = {provs, 1, j->model, j->tried, j->ntried};
    struct cp_sched_pick pk;
    char id[256];
    int rc;

    if (j->pin) { /* the same credential again, with its refreshed token */
        j->pin = 0;
        j->total++;
        return 0;
    }
    if (j->ntried && j->ntried >= max_credentials(j)) { /* `max-retry-credentials` */
        reply_last(j);
        return -1;
    }
again:
    pr.n_tried = j->ntried;
    rc = cp_sched_pick(j->srv->sched, &pr, id, sizeof id, &pk);
    /* everything tried (or only quota-cooling ones left besides what we tried): after a
     * transient failure, another round hands out the transiently cooling credential */
    if (!rc &&
        (pk.verdict == CP_SCHED_EXHAUSTED || (pk.verdict == CP_SCHED_ALL_COOLING && j->ntried)) &&
        next_round(j))
        goto again;
    /* every credential answered 429 in this request: say so as when they already were */
    if (!rc && pk.verdict == CP_SCHED_EXHAUSTED &&
        cp_sched_classify(&j->last) == CP_SCHED_C_QUOTA) {
        struct cp_sched_pick_req all = pr;
        struct cp_sched_pick pk2;
        all.n_tried = 0;
        if (cp_sched_pick(j->srv->sched, &all, id, sizeof id, &pk2) == CM_OK &&
            pk2.verdict == CP_SCHED_ALL_COOLING)
            pk = pk2;
    }
    if (rc || pk.verdict != CP_SCHED_PICKED) {
        reply_no_pick(j, rc, &pk);
        return -1;
    }
    snprintf(j->tried_ids[j->ntried], sizeof j->tried_ids[0], "%s", id);
    snprintf(j->last_cred, sizeof j->last_cred, "%s", id);
    j->tried[j->ntried] = j->tried_ids[j->ntried];
    j->ntried++;
    j->total++;
    j->refreshed = 0;
    return 0;
}

/* Codex and Claude bodies name the model at the top: a credential that knows the model
 * by another name (an API-key entry's alias) gets that name */
static int alias_body(struct job *j)
{
    const char *name = j->x.up_model ? j->x.up_model : j->model;
    cJSON *t = NULL;
    char *txt = NULL;
    size_t len = 0;
    int rc;

    if ((j->up->upstream != CP_PROVIDER_CODEX && j->up->upstream != CP_PROVIDER_CLAUDE) ||
        j->up == &cp_fmt_chat_compat)
        return CM_OK; /* the others name the model per credential themselves */
    if (!j->x.raw) { /* keep the body as prepared: every attempt starts from it */
        if (strcmp(name, j->model) == 0)
            return CM_OK;
        if (!(j->x.raw = cm_strndup(j->x.body, j->x.body_len)))
            return CM_ERR_NOMEM;
        j->x.raw_len = j->x.body_len;
    }
    rc = cm_json_parse(j->x.raw, j->x.raw_len, NULL, &t, NULL);
    if (!rc)
        rc = cm_json_set_string(t, "model", name);
    if (!rc)
        rc = cm_json_print(t, &txt, &len);
    cJSON_Delete(t);
    if (!rc) {
        cm_free(j->x.body);
        j->x.body = txt;
        j->x.body_len = len;
    }
    return rc;
}

/* where credential j->cred is reached: its own base-url (API-key entries), else the
 * provider's configured upstream */
static const char *base_url(const struct cp_config *cfg, const struct job *j)
{
    if (j->cred->af && j->cred->af->base_url && *j->cred->af->base_url)
        return j->cred->af->base_url;
    return cp_config_base_url(cfg, j->up->upstream);
}

static void start_attempt(struct job *j)
{
    static const struct cm_httpc_cbs cbs = {on_head, on_data, on_done};
    struct cp_upreq ur = {0};
    struct cm_httpc_request rq;
    struct cp_config_ref *ref = NULL;
    const struct cp_config *cfg;
    struct cm_httpc_xfer *xfer = NULL;
    int rc;

    if (cm_httpd_req_aborted(j->req))
        return;
    if (pick(j))
        return;
    cp_authstore_release(j->cred);
    j->cred = cp_authstore_acquire(j->srv->store, j->tried[j->ntried - 1]);
    if (!j->cred)
        j->cred = cp_keyring_acquire(j->srv->keyring, j->tried[j->ntried - 1]);
    /* a token already past its expiry (the refresher has not got to it yet) is refreshed
     * before the call, not after a 401 */
    if (j->cred && j->cred->af && j->cred->af->refresh_token &&
        cp_authfile_is_expired(j->cred->af, NULL) &&
        refresh_and_retry(j, "holds an expired token") == CM_OK)
        return;
    ref = cp_config_live_acquire(j->srv->cfg);
    cfg = ref ? cp_config_ref_get(ref) : NULL;
    if (j->cred && cfg)
        j->x.up_model = cp_channel_upstream_model(cfg, j->cred, j->model);
    rc = j->cred && cfg
             ? j->fmt->build(&j->x, j->cred, base_url(cfg, j), &ur)
             : CM_ERR_NOTFOUND;
    if (!rc)
        rc = alias_body(j);
    /* a fresh attempt: forget the last one's output */
    j->status = 0;
    cm_buf_reset(&j->head);
    cm_buf_reset(&j->body);
    cm_buf_reset(&j->x.out);
    j->x.tr_rc = 0;
    if (!rc && streaming(j)) {
        if (j->tr_ready)
            j->fmt->stream_cleanup(&j->x);
        j->tr_ready = 0;
        j->x.content = 0;
        cm_sse_parser_cleanup(&j->parser);
        cm_sse_parser_init(&j->parser, 4u << 20, on_sse_event, NULL, j);
        rc = j->fmt->stream_init(&j->x);
        j->tr_ready = rc == CM_OK;
    }
    if (rc) {
        struct cp_sched_outcome o = {.transport = CP_SCHED_TX_CONNECT};
        cp_config_ref_release(ref);
        cp_upreq_cleanup(&ur);
        finish_attempt(j, &o);
        start_attempt(j); /* try the next one */
        return;
    }
    if (j->fmt->admit) { /* a local limit (Qwen): skip the credential without a call */
        struct cp_sched_outcome o = {0};
        if (j->fmt->admit(&j->x, j->cred, mono_ms(), &o) != CM_OK) {
            cp_config_ref_release(ref);
            cp_upreq_cleanup(&ur);
            if (j->tr_ready)
                j->fmt->stream_cleanup(&j->x);
            j->tr_ready = 0;
            fail_attempt(j, &o, 1);
            return;
        }
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.url = ur.url;
    rq.headers = (const char *const *)ur.headers;
    rq.n_headers = ur.n_headers;
    rq.body = j->x.body;
    rq.body_len = j->x.body_len;
    rq.proxy = j->cred->proxy_url && *j->cred->proxy_url ? j->cred->proxy_url : cfg->proxy_url;
    rq.connect_timeout_ms = 15000;
    rq.first_byte_timeout_ms = 120000;
    rq.idle_timeout_ms = 300000;
    rq.max_response = MAX_BODY;
    rq.log_id = cm_httpd_req_id(j->req);
    atomic_fetch_add(&j->refs, 1); /* the transfer's */
    rc = cm_httpc_start(j->srv->client, &rq, &cbs, j, &xfer);
    cm_httpc_slot_set(&j->xfer, rc ? NULL : xfer);
    cp_upreq_cleanup(&ur);
    cp_config_ref_release(ref);
    if (rc) {
        atomic_fetch_sub(&j->refs, 1);
        cm_httpd_reply_error(j->req, 503, "server_error", NULL, "cannot start the upstream call");
    }
}

/* `usage-statistics-enabled`: count requests and tokens for /usage and /metrics */
static int usage_enabled(struct cp_server *srv)
{
    struct cp_config_ref *ref = cp_config_live_acquire(srv->cfg);
    int on = ref && cp_config_ref_get(ref)->usage_statistics_enabled;
    cp_config_ref_release(ref);
    return on;
}

static void on_close(struct cm_httpd_req *r, int aborted, void *ud)
{
    struct job *j = ud;
    if (aborted)
        cm_httpc_slot_cancel(&j->xfer);
    note_request(j);
    if (j->srv->usage && usage_enabled(j->srv))
        cp_usage_record(j->srv->usage, j->last_cred, j->model,
                        aborted ? 499 : (int)cm_httpd_req_status(r), mono_ms() - j->t0_ms,
                        j->have_tokens ? &j->tokens : NULL);
    job_unref(j);
}

/* ---- the handlers ---- */

/* the upstream families, in the order a model served by several is routed */
static const struct {
    const char *provider;
    const struct cp_relay_fmt *chat; /* its OpenAI Chat format (the pivot's upstream half) */
} families[] = {
    {"codex", &cp_fmt_chat_codex},   {"claude", &cp_fmt_chat_claude},
    {"gemini", &cp_fmt_chat_gemini}, {"qwen", &cp_fmt_chat_qwen},
    {"iflow", &cp_fmt_chat_iflow},   {"openai-compatibility", &cp_fmt_chat_compat},
};

/* the direct formats: (client, provider) pairs that need no pivot */
static const struct cp_relay_fmt *direct(enum client_fmt cf, const char *provider)
{
    int codex = strcmp(provider, "codex") == 0, claude = strcmp(provider, "claude") == 0;
    if (cf == CLIENT_RESPONSES && codex)
        return &cp_fmt_responses_codex;
    if (cf == CLIENT_MESSAGES && codex)
        return &cp_fmt_messages_codex;
    if (cf == CLIENT_MESSAGES && claude)
        return &cp_fmt_messages_claude;
    if (cf == CLIENT_GEMINI && strcmp(provider, "gemini") == 0)
        return &cp_fmt_gemini_gemini;
    if (cf == CLIENT_COUNT_MESSAGES && claude)
        return &cp_fmt_count_claude;
    if (cf == CLIENT_COUNT_GEMINI && strcmp(provider, "gemini") == 0)
        return &cp_fmt_count_gemini;
    return NULL;
}

static const struct cp_relay_in *adapter(enum client_fmt cf)
{
    switch (cf) {
    case CLIENT_RESPONSES:
        return &cp_in_responses;
    case CLIENT_MESSAGES:
        return &cp_in_messages;
    case CLIENT_GEMINI:
        return &cp_in_gemini;
    case CLIENT_COMPLETIONS:
        return &cp_in_completions;
    default:
        return NULL;
    }
}

/*
 * Which formats serve @p model for a client speaking @p cf: the first family with a
 * credential serving it (codex when none does: the pick then says why nothing can), a
 * direct format when one exists, else the pivot over that family's chat format.
 */
static void route(struct cp_server *srv, enum client_fmt cf, const char *model, struct job *j)
{
    size_t f = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (cp_sched_serves(srv->sched, families[i].provider, model)) {
            f = i;
            break;
        }
    j->up = families[f].chat;
    j->fmt = cf == CLIENT_CHAT ? j->up : direct(cf, families[f].provider);
    if (!j->fmt) {
        j->fmt = &cp_fmt_pivot;
        j->x.in = adapter(cf);
        j->x.up = j->up;
    } else {
        j->up = j->fmt;
    }
}

/* count_tokens where the upstream has no count: the estimate of translate/estimate.h */
static void reply_estimate(struct job *j, enum client_fmt cf)
{
    char body[96];
    long long n = (long long)cp_tr_estimate_tokens(j->client);
    int len = snprintf(body, sizeof body,
                       cf == CLIENT_COUNT_GEMINI ? "{\"totalTokens\":%lld}" : "{\"input_tokens\":%lld}",
                       n);
    cm_httpd_req_note(j->req, "count=estimate");
    cm_httpd_reply(j->req, 200, "application/json", body, (size_t)len);
}

static void handle(struct cm_httpd_req *r, struct cp_server *srv, enum client_fmt cf,
                   const char *url_model, int url_stream)
{
    struct cm_json_parse_opts po = {.max_depth = 64, .max_size = MAX_BODY};
    struct cm_json_err je = {0};
    struct cp_tr_err te = {0};
    struct job *j = NULL;
    const char *body, *model = NULL, *key = NULL;
    size_t len, klen = 0;
    bool stream = false;

    if (cp_api_require_key_or_reply(srv, r, NULL, 0))
        return;
    j = cm_calloc(1, sizeof *j);
    if (!j) {
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
        return;
    }
    atomic_init(&j->refs, 1);
    cm_httpc_slot_init(&j->xfer);
    j->t0_ms = mono_ms();
    j->srv = srv;
    j->req = r;
    cm_httpd_req_ref(r);
    cm_buf_init(&j->head, HEAD_MAX);
    cm_buf_init(&j->body, MAX_BODY);
    cm_buf_init(&j->x.out, MAX_BODY);
    cm_httpd_req_on_close(r, on_close, j);

    cp_api_client_key(r, &key, &klen);
    if (klen >= 16) /* the last 4 characters identify a key without giving it away */
        snprintf(j->key_masked, sizeof j->key_masked, "****%s", key + klen - 4);
    else
        snprintf(j->key_masked, sizeof j->key_masked, "****");
    body = cm_httpd_req_body(r, &len);
    if (cm_json_parse(body, len, &po, &j->client, &je) != CM_OK || !cJSON_IsObject(j->client)) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", "invalid_json",
                             "request body is not a JSON object: %s",
                             je.msg[0] ? je.msg : "expected an object");
        return;
    }
    if (url_model) { /* Gemini: the model and the stream flag are in the URL */
        model = url_model;
        stream = url_stream;
    } else if (cm_json_get_string(j->client, "model", &model, &je) != CM_OK ||
               cm_json_opt_bool(j->client, "stream", false, &stream, &je) != CM_OK) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", NULL, "%s", je.msg);
        return;
    }
    if (strlen(model) >= sizeof j->model) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", NULL, "model name too long");
        return;
    }
    {
        /* credentials are picked (and cooled) for the base model: "gpt-5(high)" is gpt-5 */
        char *base = NULL;
        const char *effort = NULL;
        if (cp_tr_codex_split_model(model, &base, &effort, NULL) == CM_OK) {
            snprintf(j->model, sizeof j->model, "%s", base);
            cm_free(base);
        } else {
            snprintf(j->model, sizeof j->model, "%s", model); /* prepare() reports it */
        }
    }
    route(srv, cf, j->model, j);
    if (!j->x.in && j->fmt == &cp_fmt_pivot) { /* a count the upstream cannot make */
        reply_estimate(j, cf);
        return;
    }
    j->ua = cm_strdup(cm_httpd_req_header(r, "User-Agent"));
    j->hdr = cm_strdup(cm_httpd_req_header(
        r, j->up->upstream == CP_PROVIDER_CLAUDE ? "Anthropic-Beta" : "Originator"));
    j->x.client = j->client;
    j->x.model = j->model;
    j->x.stream = stream;
    j->x.client_ua = j->ua;
    j->x.client_hdr = j->hdr;
    cp_codex_session_id(key ? key : "", klen, j->x.session);
    snprintf(j->x.chunk_id, sizeof j->x.chunk_id, "chatcmpl-%s", cm_httpd_req_id(r));
    snprintf(j->x.msg_id, sizeof j->x.msg_id, "msg_%s", cm_httpd_req_id(r));
    snprintf(j->x.resp_id, sizeof j->x.resp_id, "resp_%s", cm_httpd_req_id(r));
    j->x.gemini_model = url_model;
    j->x.created = wall_s();
    if (j->fmt->prepare(&j->x, &te) != CM_OK) {
        cm_httpd_reply_error(r, te.status ? te.status : 400,
                             te.type[0] ? te.type : "invalid_request_error",
                             te.code[0] ? te.code : NULL, "%s", te.msg);
        return;
    }
    start_attempt(j);
}

static void chat(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, CLIENT_CHAT, NULL, 0);
}

static void responses(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, CLIENT_RESPONSES, NULL, 0);
}

static void messages(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, CLIENT_MESSAGES, NULL, 0);
}

static void completions(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, CLIENT_COMPLETIONS, NULL, 0);
}

static void count_messages(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, CLIENT_COUNT_MESSAGES, NULL, 0);
}

/* POST /v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens} */
static void gemini(struct cm_httpd_req *r, void *ud)
{
    const char *name = cm_httpd_req_param(r, "name");
    const char *colon = name ? strrchr(name, ':') : NULL;
    char model[256];

    if (!colon || colon == name || (size_t)(colon - name) >= sizeof model) {
        cm_httpd_reply_error(r, 404, "invalid_request_error", "not_found",
                             "expected /v1beta/models/{model}:{action}");
        return;
    }
    memcpy(model, name, (size_t)(colon - name));
    model[colon - name] = '\0';
    if (strncmp(model, "models/", 7) == 0)
        memmove(model, model + 7, strlen(model + 7) + 1);
    if (strcmp(colon + 1, "generateContent") == 0)
        handle(r, ud, CLIENT_GEMINI, model, 0);
    else if (strcmp(colon + 1, "streamGenerateContent") == 0)
        handle(r, ud, CLIENT_GEMINI, model, 1);
    else if (strcmp(colon + 1, "countTokens") == 0)
        handle(r, ud, CLIENT_COUNT_GEMINI, model, 0);
    else
        cm_httpd_reply_error(r, 404, "invalid_request_error", "not_found",
                             "unknown Gemini action '%s'", colon + 1);
}

int cp_api_relay_routes(struct cm_httpd *s, struct cp_server *srv)
{
    int rc = cm_httpd_route(s, "POST", "/v1/chat/completions", chat, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v1/responses", responses, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v1/messages", messages, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v1/completions", completions, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v1beta/models/:name", gemini, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v1/messages/count_tokens", count_messages, srv);
    return rc;
}
