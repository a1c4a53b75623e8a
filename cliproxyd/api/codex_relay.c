/* SPDX-License-Identifier: MIT */
/*
 * codex_relay.c - the routes Codex credentials serve: POST /v1/chat/completions (OpenAI
 * Chat clients: translated both ways) and POST /v1/responses (OpenAI Responses clients:
 * the body rules of spec 3.1(d), the answer passed through). Key check, prepare the
 * upstream body once, then per attempt: pick a credential, send, and either stream to
 * the client or aggregate a non-stream answer. A `struct fmt` holds what differs between
 * the two client formats. Failover to the next credential happens before the first
 * content byte reaches the client (quota, transient and early-end failures); every
 * attempt's result cools the credential through the scheduler.
 *
 * Threads: the handler runs on a server thread; every later step (httpc callbacks,
 * failover, the reply) on the httpc I/O thread. The job is refcounted: one reference
 * for the request's close callback, one for the transfer in flight.
 */
#include "api/codex_relay.h"

#include "api/clientkey.h"
#include "authstore.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "cm/pipe.h"
#include "cm/sse.h"
#include "providers/codex.h"
#include "scheduler.h"
#include "translate/chat_codex.h"
#include "translate/responses_codex.h"
#include "usage.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 8 /* distinct credentials in one round */
#define MAX_TOTAL 16   /* attempts over all rounds */
#define MAX_BODY ((size_t)16 << 20)

struct job;

/* what differs between client formats (all run on the httpc I/O thread but prepare) */
struct fmt {
    /* client request -> Codex body; @p session may be replaced by the client's own key */
    int (*prepare)(struct job *j, cJSON **codex, struct cp_tr_err *e);
    int (*stream_init)(struct job *j);
    /* one upstream event -> client bytes in j->out; sets j->content, j->tr_rc/last_err */
    void (*stream_event)(struct job *j, const struct cm_sse_event *ev);
    int (*stream_finish)(struct job *j); /* upstream ended: rc as the translator's finish */
    int (*stream_usage)(struct job *j, struct cp_tr_usage *u);
    /* whole upstream SSE -> one JSON answer (owned) */
    int (*aggregate)(struct job *j, char **out, size_t *len, struct cp_tr_usage *u);
    void (*stream_cleanup)(struct job *j);
};

/* passthrough state for Responses clients */
struct resp_state {
    int completed, failed, have_usage;
    long seq;
    struct cp_tr_usage usage;
};

struct job {
    atomic_int refs;
    const struct fmt *fmt;
    struct cp_server *srv;
    struct cm_httpd_req *req;
    cJSON *client; /* the client's request */
    char *codex;   /* translated body (bytes) */
    size_t codex_len;
    char model[256];
    int stream;
    char session[128];
    char key_masked[32];
    char *originator, *ua;
    /* attempts */
    char tried_ids[MAX_ATTEMPTS][256];
    const char *tried[MAX_ATTEMPTS];
    size_t ntried;
    int rounds; /* extra rounds after a transient failure (request-retry) */
    int total;  /* attempts so far */
    struct cp_authstore_cred *cred;
    struct cm_httpc_xfer *xfer;
    long status;
    char retry_after[32];
    struct cm_buf body; /* error body, or the whole SSE for non-stream */
    struct cp_sched_outcome last;
    struct cp_tr_err last_err;
    int have_last;
    /* streaming */
    struct cm_sse_parser parser;
    struct cp_tr_chat_codex_stream tr;
    struct resp_state rs;
    int tr_ready;
    int content; /* the upstream sent real content: the client stream may start */
    /* for the counters */
    int64_t t0_ms;
    char last_cred[256];
    struct cp_usage_tokens tokens;
    int have_tokens;
    int tr_rc;         /* first error from the translator in this attempt */
    struct cm_buf out; /* translated chunks not yet in the pipe */
    struct cm_pipe *pipe;
    int started; /* the client got the response head */
    char chunk_id[48];
    int64_t created;
};

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    cm_httpd_req_unref(j->req);
    cJSON_Delete(j->client);
    cm_free(j->codex);
    cm_free(j->originator);
    cm_free(j->ua);
    cp_authstore_release(j->cred);
    if (j->xfer)
        cm_httpc_xfer_unref(j->xfer);
    cm_buf_cleanup(&j->body);
    cm_buf_cleanup(&j->out);
    if (j->tr_ready)
        j->fmt->stream_cleanup(j);
    cm_sse_parser_cleanup(&j->parser);
    cm_pipe_unref(j->pipe);
    cm_free(j);
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
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
    if (j->have_last && j->last_err.msg[0]) {
        reply_tr_error(j, &j->last_err);
    } else if (j->status && j->body.len && j->body.data[0] == '{') {
        cm_httpd_reply(j->req, (unsigned)j->status, "application/json", j->body.data, j->body.len);
    } else {
        cm_httpd_reply_error(j->req, 502, "api_error", "upstream_error",
                             "no credential could serve the request");
    }
}

/* ---- streaming output ---- */

static void writer_wake(void *ud)
{
    struct job *j = ud;
    if (j->xfer)
        cm_httpc_xfer_resume(j->xfer);
}

/* starts the client's stream (once); CM_ERR_CLOSED when the client is gone */
static int ensure_started(struct job *j)
{
    if (j->started)
        return CM_OK;
    j->pipe = cm_pipe_new(64 * 1024);
    if (!j->pipe)
        return CM_ERR_NOMEM;
    cm_pipe_set_writer_hook(j->pipe, writer_wake, j);
    cm_httpd_add_header(j->req, "Cache-Control", "no-cache");
    j->started = 1;
    return cm_httpd_reply_stream(j->req, 200, "text/event-stream", j->pipe);
}

/* the SSE parser's event callback: one upstream event -> translated chunks in j->out */
static int on_sse_event(void *ud, const struct cm_sse_event *ev)
{
    struct job *j = ud;
    j->fmt->stream_event(j, ev);
    return 0;
}

/* ---- httpc callbacks (I/O thread) ---- */

static int on_head(struct cm_httpc_xfer *x, const struct cm_httpc_head *h, void *ud)
{
    struct job *j = ud;
    const char *ra = cm_httpc_head_get(h, "retry-after");
    (void)x;
    j->status = h->status;
    snprintf(j->retry_after, sizeof j->retry_after, "%s", ra ? ra : "");
    return CM_OK;
}

static int on_data(struct cm_httpc_xfer *x, const char *p, size_t n, void *ud)
{
    struct job *j = ud;
    int rc;
    (void)x;

    if (j->status != 200 || !j->stream)
        return cm_buf_append(&j->body, p, n); /* error body, or SSE to aggregate */
    if (j->started && j->out.len) {           /* first flush what the last chunk produced */
        rc = cm_pipe_write(j->pipe, j->out.data, j->out.len);
        if (rc == CM_ERR_AGAIN)
            return CM_ERR_AGAIN; /* redelivered after the client drained */
        if (rc)
            return rc;
        cm_buf_reset(&j->out);
    }
    rc = cm_sse_parser_feed(&j->parser, p, n, NULL);
    if (rc)
        return rc;
    /* hold everything back until real content exists, so an early failure can fail over */
    if (!j->started && (j->tr_rc || !j->content))
        return CM_OK;
    if (j->out.len && !j->started && (rc = ensure_started(j)))
        return rc;
    if (j->out.len) {
        rc = cm_pipe_write(j->pipe, j->out.data, j->out.len);
        if (rc == CM_OK)
            cm_buf_reset(&j->out);
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
    char note[1024];
    snprintf(note, sizeof note,
             "key=%s model=%s cred=%s attempts=%d tokens_in=%lld "
             "tokens_out=%lld cached=%lld",
             j->key_masked, j->model, j->tried[j->ntried - 1], j->total, (long long)u->input,
             (long long)u->output, (long long)u->cached);
    cm_httpd_req_note(j->req, note);
}

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    struct job *j = ud;
    struct cp_sched_outcome o = {0};
    struct cp_tr_usage u = {0};
    (void)x;

    if (r->rc == CM_ERR_CLOSED && cm_httpd_req_aborted(j->req))
        goto out;                           /* the client left: nothing to report */
    if (r->rc != CM_OK && r->status == 0) { /* no answer at all */
        o.transport = transport_of(r->rc);
        finish_attempt(j, &o);
        snprintf(j->last_err.msg, sizeof j->last_err.msg, "upstream unreachable: %s", r->error);
        j->last_err.status = r->rc == CM_ERR_TIMEOUT ? 504 : 502;
        j->have_last = 1;
        if (try_next(j, &o))
            start_attempt(j);
        else if (j->started)
            cm_pipe_close(j->pipe, CM_ERR_UPSTREAM);
        else
            reply_last(j);
        goto out;
    }
    if (j->status != 200) {
        cp_codex_outcome(j->status, j->body.data, j->body.len, j->retry_after, wall_s(), &o);
        finish_attempt(j, &o);
        j->have_last = 0;
        if (try_next(j, &o))
            start_attempt(j);
        else
            reply_last(j);
        goto out;
    }
    if (!j->stream) {
        char *txt = NULL;
        size_t len = 0;
        int rc = j->fmt->aggregate(j, &txt, &len, &u);
        if (rc) {
            o.status = (int)j->last_err.status;
            if (rc == CM_ERR_TIMEOUT)
                o.transport = CP_SCHED_TX_STREAM_CLOSED;
            finish_attempt(j, &o);
            j->have_last = 1;
            if (try_next(j, &o))
                start_attempt(j);
            else
                reply_tr_error(j, &j->last_err);
            goto out;
        }
        o.status = 200;
        finish_attempt(j, &o);
        note_usage(j, &u);
        cm_httpd_reply_take(j->req, 200, "application/json", txt, len);
        goto out;
    }
    /* streaming, status 200 */
    cm_sse_parser_finish(&j->parser, 0);
    if (!j->tr_rc) {
        int rc = j->fmt->stream_finish(j);
        if (rc) {
            j->tr_rc = rc;
            j->have_last = 1;
        }
    }
    if (j->tr_rc) {
        o.status = (int)j->last_err.status;
        if (j->tr_rc == CM_ERR_TIMEOUT)
            o.transport = CP_SCHED_TX_STREAM_CLOSED;
        finish_attempt(j, &o);
        if (try_next(j, &o)) {
            start_attempt(j);
            goto out;
        }
        if (!j->started) {
            reply_tr_error(j, &j->last_err);
            goto out;
        }
    } else {
        o.status = 200;
        finish_attempt(j, &o);
        if (j->fmt->stream_usage(j, &u) == CM_OK)
            note_usage(j, &u);
    }
    if (!j->started && ensure_started(j) != CM_OK)
        goto out;
    if (j->out.len)
        cm_pipe_write_force(j->pipe, j->out.data, j->out.len);
    cm_buf_reset(&j->out);
    cm_pipe_close(j->pipe, CM_OK); /* an error event (if any) is already in the stream */
out:
    job_unref(j); /* the transfer's reference */
}

/* ---- attempts ---- */

static const char *const codex_only[] = {"codex"};

static void start_attempt(struct job *j)
{
    static const struct cm_httpc_cbs cbs = {on_head, on_data, on_done};
    struct cp_sched_pick_req pr = {codex_only, 1, j->model, j->tried, j->ntried};
    struct cp_sched_pick pk;
    struct cp_upreq cr = {0};
    struct cm_httpc_request rq;
    struct cp_config_ref *ref = NULL;
    char id[256];
    int rc;

again:
    pr.n_tried = j->ntried;
    rc = cp_sched_pick(j->srv->sched, &pr, id, sizeof id, &pk);
    /* everything tried (or only quota-cooling ones left besides what we tried): after a
     * transient failure, another round hands out the transiently cooling credential */
    if (!rc &&
        (pk.verdict == CP_SCHED_EXHAUSTED || (pk.verdict == CP_SCHED_ALL_COOLING && j->ntried)) &&
        next_round(j))
        goto again;
    if (rc || pk.verdict != CP_SCHED_PICKED) {
        if (!rc && pk.verdict == CP_SCHED_ALL_COOLING) {
            char body[512], ra[32];
            int n = snprintf(body, sizeof body,
                             "{\"error\":{\"code\":\"model_cooldown\",\"message\":\"All "
                             "credentials for model %s are cooling down\",\"model\":\"%s\","
                             "\"reset_seconds\":%lld}}",
                             j->model, j->model, (long long)pk.retry_after_s);
            snprintf(ra, sizeof ra, "%lld", (long long)pk.retry_after_s);
            cm_httpd_add_header(j->req, "Retry-After", ra);
            cm_httpd_reply(j->req, 429, "application/json", body,
                           n > 0 && (size_t)n < sizeof body ? (size_t)n : 0);
        } else if (j->total) {
            reply_last(j);
        } else if (!rc && pk.verdict == CP_SCHED_NONE_SERVING) {
            cm_httpd_reply_error(j->req, 404, "invalid_request_error", "model_not_found",
                                 "no credential serves model '%s'", j->model);
        } else {
            cm_httpd_reply_error(j->req, 503, "server_error", "auth_unavailable",
                                 "auth_unavailable: no auth available (providers=codex, "
                                 "model=%s)",
                                 j->model);
        }
        return;
    }
    snprintf(j->tried_ids[j->ntried], sizeof j->tried_ids[0], "%s", id);
    snprintf(j->last_cred, sizeof j->last_cred, "%s", id);
    j->tried[j->ntried] = j->tried_ids[j->ntried];
    j->ntried++;
    j->total++;
    cp_authstore_release(j->cred);
    j->cred = cp_authstore_acquire(j->srv->store, id);
    ref = cp_config_live_acquire(j->srv->cfg);
    rc = j->cred && ref
             ? cp_codex_build(cp_config_base_url(cp_config_ref_get(ref), CP_PROVIDER_CODEX),
                              j->cred, j->session, j->originator, j->ua, &cr)
             : CM_ERR_NOTFOUND;
    /* a fresh attempt: forget the last one's output */
    j->status = 0;
    j->retry_after[0] = '\0';
    cm_buf_reset(&j->body);
    cm_buf_reset(&j->out);
    j->tr_rc = 0;
    if (!rc && j->stream) {
        if (j->tr_ready)
            j->fmt->stream_cleanup(j);
        j->tr_ready = 0;
        j->content = 0;
        cm_sse_parser_cleanup(&j->parser);
        cm_sse_parser_init(&j->parser, 4u << 20, on_sse_event, NULL, j);
        rc = j->fmt->stream_init(j);
        j->tr_ready = rc == CM_OK;
    }
    if (rc) {
        struct cp_sched_outcome o = {.transport = CP_SCHED_TX_CONNECT};
        finish_attempt(j, &o);
        cp_config_ref_release(ref);
        cp_upreq_cleanup(&cr);
        start_attempt(j); /* try the next one */
        return;
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.url = cr.url;
    rq.headers = (const char *const *)cr.headers;
    rq.n_headers = cr.n_headers;
    rq.body = j->codex;
    rq.body_len = j->codex_len;
    rq.proxy = j->cred->proxy_url && *j->cred->proxy_url ? j->cred->proxy_url
                                                         : cp_config_ref_get(ref)->proxy_url;
    rq.connect_timeout_ms = 15000;
    rq.first_byte_timeout_ms = 120000;
    rq.idle_timeout_ms = 300000;
    rq.max_response = MAX_BODY;
    rq.log_id = cm_httpd_req_id(j->req);
    if (j->xfer)
        cm_httpc_xfer_unref(j->xfer);
    j->xfer = NULL;
    atomic_fetch_add(&j->refs, 1); /* the transfer's */
    rc = cm_httpc_start(j->srv->client, &rq, &cbs, j, &j->xfer);
    cp_upreq_cleanup(&cr);
    cp_config_ref_release(ref);
    if (rc) {
        atomic_fetch_sub(&j->refs, 1);
        cm_httpd_reply_error(j->req, 503, "server_error", NULL, "cannot start the upstream call");
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_close(struct cm_httpd_req *r, int aborted, void *ud)
{
    struct job *j = ud;
    if (aborted && j->xfer)
        cm_httpc_xfer_cancel(j->xfer);
    if (j->srv->usage)
        cp_usage_record(j->srv->usage, j->last_cred, j->model,
                        aborted ? 499 : (int)cm_httpd_req_status(r), mono_ms() - j->t0_ms,
                        j->have_tokens ? &j->tokens : NULL);
    job_unref(j);
}

/* ---- the handler ---- */

/* ---- formats ---- */

/* OpenAI Chat clients: the chat <-> Responses translator */
static int chat_prepare(struct job *j, cJSON **codex, struct cp_tr_err *e)
{
    return cp_tr_chat_codex_request(j->client, codex, e);
}
static int chat_stream_init(struct job *j)
{
    return cp_tr_chat_codex_stream_init(&j->tr, j->client, j->chunk_id, j->created, NULL);
}
static void chat_stream_event(struct job *j, const struct cm_sse_event *ev)
{
    int rc = cp_tr_chat_codex_stream_event(&j->tr, ev->type, ev->type_len, ev->data, ev->data_len,
                                           &j->out, &j->last_err);
    if (rc && !j->tr_rc) {
        j->tr_rc = rc;
        j->have_last = 1;
    }
    if (j->out.len)
        j->content = 1;
}
static int chat_stream_finish(struct job *j)
{
    return cp_tr_chat_codex_stream_finish(&j->tr, &j->out, &j->last_err);
}
static int chat_stream_usage(struct job *j, struct cp_tr_usage *u)
{
    return cp_tr_chat_codex_stream_usage(&j->tr, u);
}
static int chat_aggregate(struct job *j, char **out, size_t *len, struct cp_tr_usage *u)
{
    cJSON *res = NULL;
    int rc = cp_tr_chat_codex_aggregate(j->body.data ? j->body.data : "", j->body.len, j->client,
                                        j->chunk_id, j->created, &res, u, &j->last_err);
    if (!rc)
        rc = cm_json_print(res, out, len);
    cJSON_Delete(res);
    return rc;
}
static void chat_stream_cleanup(struct job *j)
{
    cp_tr_chat_codex_stream_cleanup(&j->tr);
}

static const struct fmt chat_fmt = {chat_prepare,       chat_stream_init,  chat_stream_event,
                                    chat_stream_finish, chat_stream_usage, chat_aggregate,
                                    chat_stream_cleanup};

/* OpenAI Responses clients: Codex speaks their format; pass the events through */
static int resp_prepare(struct job *j, cJSON **codex, struct cp_tr_err *e)
{
    const cJSON *pck = cJSON_GetObjectItemCaseSensitive(j->client, "prompt_cache_key");
    if (cJSON_IsString(pck) && *pck->valuestring && strlen(pck->valuestring) < sizeof j->session)
        snprintf(j->session, sizeof j->session, "%s", pck->valuestring); /* client's own */
    return cp_tr_responses_codex_request(j->client, codex, e);
}
static int resp_stream_init(struct job *j)
{
    memset(&j->rs, 0, sizeof j->rs);
    return CM_OK;
}
static void resp_usage_of(struct resp_state *rs, const cJSON *resp)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(resp, "usage");
    int64_t v;
    if (!cJSON_IsObject(u))
        return;
    rs->have_usage = 1;
    if (!cm_json_opt_int64(u, "input_tokens", 0, INT64_MAX, 0, &v, NULL))
        rs->usage.input = v;
    if (!cm_json_opt_int64(u, "output_tokens", 0, INT64_MAX, 0, &v, NULL))
        rs->usage.output = v;
    if (!cm_json_opt_int64(u, "total_tokens", 0, INT64_MAX, 0, &v, NULL))
        rs->usage.total = v;
    u = cJSON_GetObjectItemCaseSensitive(u, "input_tokens_details");
    if (cJSON_IsObject(u) && !cm_json_opt_int64(u, "cached_tokens", 0, INT64_MAX, 0, &v, NULL))
        rs->usage.cached = v;
}
/* one upstream event, verbatim; remembers the end, failures and usage */
static void resp_stream_event(struct job *j, const struct cm_sse_event *ev)
{
    cJSON *d = NULL;
    const cJSON *t;
    char type[96] = "";

    if (ev->type_len && ev->type_len < sizeof type)
        memcpy(type, ev->type, ev->type_len);
    if (cm_json_parse(ev->data, ev->data_len, NULL, &d, NULL) == CM_OK && !type[0] &&
        cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(d, "type")))
        snprintf(type, sizeof type, "%s", t->valuestring);
    if (type[0])
        cm_buf_appendf(&j->out, "event: %s\n", type);
    cm_buf_append_str(&j->out, "data: ");
    cm_buf_append(&j->out, ev->data, ev->data_len);
    cm_buf_append(&j->out, "\n\n", 2);
    j->rs.seq++;
    if (strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0) {
        j->rs.completed = 1;
        resp_usage_of(&j->rs, cJSON_GetObjectItemCaseSensitive(d, "response"));
    } else if (strcmp(type, "response.failed") == 0 || strcmp(type, "error") == 0) {
        j->rs.failed = 1;
        if (!j->tr_rc) {
            j->tr_rc = CM_ERR_UPSTREAM;
            j->have_last = 1;
            memset(&j->last_err, 0, sizeof j->last_err);
            j->last_err.status = 502;
            snprintf(j->last_err.type, sizeof j->last_err.type, "api_error");
            snprintf(j->last_err.msg, sizeof j->last_err.msg, "upstream %s", type);
        }
    } else if (strcmp(type, "response.created") != 0 && strcmp(type, "response.in_progress") != 0) {
        j->content = 1;
    }
    cJSON_Delete(d);
}
static int resp_stream_finish(struct job *j)
{
    if (j->rs.completed || j->rs.failed)
        return CM_OK;
    memset(&j->last_err, 0, sizeof j->last_err);
    j->last_err.status = 408;
    snprintf(j->last_err.type, sizeof j->last_err.type, "request_timeout");
    snprintf(j->last_err.code, sizeof j->last_err.code, "request_timeout");
    snprintf(j->last_err.msg, sizeof j->last_err.msg, "%s", CP_TR_CODEX_EARLY_EOF_MSG);
    cm_buf_appendf(&j->out,
                   "event: error\ndata: {\"type\":\"error\",\"code\":\"request_timeout\","
                   "\"message\":\"%s\",\"sequence_number\":%ld}\n\n",
                   CP_TR_CODEX_EARLY_EOF_MSG, j->rs.seq);
    return CM_ERR_TIMEOUT;
}
static int resp_stream_usage(struct job *j, struct cp_tr_usage *u)
{
    if (!j->rs.have_usage)
        return CM_ERR_NOTFOUND;
    *u = j->rs.usage;
    return CM_OK;
}
/* non-stream: the response object of response.completed (output rebuilt if empty) */
struct agg {
    cJSON *resp;  /* from the terminal event (owned) */
    cJSON *items; /* output_item.done items by output_index (owned array) */
    int failed;
};
static int agg_event(void *ud, const struct cm_sse_event *ev)
{
    struct agg *a = ud;
    cJSON *d = NULL, *t;
    if (cm_json_parse(ev->data, ev->data_len, NULL, &d, NULL) != CM_OK)
        return 0;
    t = cJSON_GetObjectItemCaseSensitive(d, "type");
    if (cJSON_IsString(t) && (strcmp(t->valuestring, "response.completed") == 0 ||
                              strcmp(t->valuestring, "response.incomplete") == 0)) {
        cJSON_Delete(a->resp);
        a->resp = cJSON_DetachItemFromObjectCaseSensitive(d, "response");
    } else if (cJSON_IsString(t) && strcmp(t->valuestring, "response.output_item.done") == 0) {
        cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(d, "item");
        if (it)
            cJSON_AddItemToArray(a->items, it);
    } else if (cJSON_IsString(t) && (strcmp(t->valuestring, "response.failed") == 0 ||
                                     strcmp(t->valuestring, "error") == 0)) {
        a->failed = 1;
    }
    cJSON_Delete(d);
    return 0;
}
static int resp_aggregate(struct job *j, char **out, size_t *len, struct cp_tr_usage *u)
{
    struct cm_sse_parser p;
    struct agg a = {NULL, cJSON_CreateArray(), 0};
    struct resp_state rs = {0};
    int rc = CM_OK;

    if (!a.items)
        return CM_ERR_NOMEM;
    cm_sse_parser_init(&p, 8u << 20, agg_event, NULL, &a);
    cm_sse_parser_feed(&p, j->body.data ? j->body.data : "", j->body.len, NULL);
    cm_sse_parser_finish(&p, 0);
    cm_sse_parser_cleanup(&p);
    memset(&j->last_err, 0, sizeof j->last_err);
    if (!a.resp) {
        rc = a.failed ? CM_ERR_UPSTREAM : CM_ERR_TIMEOUT;
        j->last_err.status = a.failed ? 502 : 408;
        snprintf(j->last_err.code, sizeof j->last_err.code,
                 a.failed ? "upstream_error" : "request_timeout");
        snprintf(j->last_err.msg, sizeof j->last_err.msg, "%s",
                 a.failed ? "the upstream reported a failure" : CP_TR_CODEX_EARLY_EOF_MSG);
        goto out;
    }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(a.resp, "output")) == 0 &&
        cJSON_GetArraySize(a.items) > 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(a.resp, "output");
        cJSON_AddItemToObject(a.resp, "output", a.items);
        a.items = NULL;
    }
    resp_usage_of(&rs, a.resp);
    *u = rs.usage;
    rc = cm_json_print(a.resp, out, len);
out:
    cJSON_Delete(a.resp);
    cJSON_Delete(a.items);
    return rc;
}
static void resp_stream_cleanup(struct job *j)
{
    (void)j;
}

static const struct fmt resp_fmt = {resp_prepare,       resp_stream_init,  resp_stream_event,
                                    resp_stream_finish, resp_stream_usage, resp_aggregate,
                                    resp_stream_cleanup};

/* ---- the handlers ---- */

static void handle(struct cm_httpd_req *r, struct cp_server *srv, const struct fmt *fmt)
{
    struct cm_json_parse_opts po = {.max_depth = 64, .max_size = MAX_BODY};
    struct cm_json_err je = {0};
    struct cp_tr_err te = {0};
    struct job *j = NULL;
    const char *body, *model = NULL, *key = NULL;
    size_t len, klen = 0;
    bool stream = false;
    cJSON *codex = NULL;
    size_t clen = 0;

    if (cp_api_require_key_or_reply(srv, r, NULL, 0))
        return;
    j = cm_calloc(1, sizeof *j);
    if (!j) {
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
        return;
    }
    atomic_init(&j->refs, 1);
    j->t0_ms = mono_ms();
    j->fmt = fmt;
    j->srv = srv;
    j->req = r;
    cm_httpd_req_ref(r);
    cm_buf_init(&j->body, MAX_BODY);
    cm_buf_init(&j->out, MAX_BODY);
    cm_httpd_req_on_close(r, on_close, j);

    body = cm_httpd_req_body(r, &len);
    if (cm_json_parse(body, len, &po, &j->client, &je) != CM_OK || !cJSON_IsObject(j->client)) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", "invalid_json",
                             "request body is not a JSON object: %s",
                             je.msg[0] ? je.msg : "expected an object");
        return;
    }
    if (cm_json_get_string(j->client, "model", &model, &je) != CM_OK ||
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
    j->stream = stream;
    cp_api_client_key(r, &key, &klen);
    cp_codex_session_id(key ? key : "", klen, j->session);
    if (fmt->prepare(j, &codex, &te) != CM_OK) {
        cm_httpd_reply_error(r, te.status ? te.status : 400, "invalid_request_error",
                             te.code[0] ? te.code : NULL, "%s", te.msg);
        return;
    }
    if (cm_json_set_string(codex, "prompt_cache_key", j->session) ||
        cm_json_print(codex, &j->codex, &clen)) {
        cJSON_Delete(codex);
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
        return;
    }
    cJSON_Delete(codex);
    j->codex_len = clen;
    if (klen >= 16)
        snprintf(j->key_masked, sizeof j->key_masked, "%.4s****%s", key, key + klen - 4);
    else
        snprintf(j->key_masked, sizeof j->key_masked, "****");
    j->originator = cm_strdup(cm_httpd_req_header(r, "Originator"));
    j->ua = cm_strdup(cm_httpd_req_header(r, "User-Agent"));
    snprintf(j->chunk_id, sizeof j->chunk_id, "chatcmpl-%s", cm_httpd_req_id(r));
    j->created = wall_s();
    start_attempt(j);
}

static void chat(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, &chat_fmt);
}

static void responses(struct cm_httpd_req *r, void *ud)
{
    handle(r, ud, &resp_fmt);
}

int cp_api_codex_routes(struct cm_httpd *s, struct cp_server *srv)
{
    int rc = cm_httpd_route(s, "POST", "/v1/chat/completions", chat, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v1/responses", responses, srv);
    return rc;
}
