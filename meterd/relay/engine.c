/* SPDX-License-Identifier: MIT */
/*
 * engine.c - one relay request from key to charge (spec newapi.md 4, 5):
 *
 *   handler (server thread): key -> token, user (cache) -> checks -> body (model, stream,
 *     max tokens, prompt estimate) -> model limits, group, rate limit -> price ->
 *     candidates (routing snapshot) -> the first channel and its upstream body ->
 *     reserve (pre-consume) submitted to the store's writer
 *   reserve committed (writer thread): refused -> NewAPI's quota error; else the upstream
 *     call starts (httpc: its callbacks run on the I/O thread)
 *   answer: a stream is relayed event by event through a cm_pipe (back-pressure: a full
 *     pipe pauses the upstream transfer), its usage read on the way; the client's stream
 *     starts with the first content (events before it are held), so a stream that dies
 *     before any content is still a failed attempt. A non-stream answer is buffered. A
 *     failure before the client got a byte moves on to another channel (up to RetryTimes
 *     more, never one already tried, never for a pinned channel); an upstream error (or a
 *     200 that is an error) costs nothing.
 *   settle (writer): the charge from the usage (or the local count when none came) in one
 *     transaction with the counters and the consume log row; only AFTER that commit does the
 *     client get the end of its answer (the non-stream body, or the stream's close).
 *   failure: the reservation is refunded, and the error is answered after the refund
 *     committed. A client that leaves mid-stream is billed for the usage the upstream
 *     reported, else for the tokens it was delivered (the log row's other.usage_source says
 *     which).
 *
 * A job is refcounted: the request's close callback holds one reference, and each thing in
 * flight (the reserve, the transfer, the settle or refund) one more. Its steps never run at
 * the same time (each hands over to the next through a queue), except on_close, which only
 * cancels the transfer (through its slot) and reads fields fixed before the reserve, or
 * atomics.
 */
#include "relay/relay_int.h"

#include "api/envelope.h"
#include "auth.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/clock.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "cm/pipe.h"
#include "cm/sse.h"
#include "optcache.h"
#include "pricing.h"
#include "relay/usage.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_TRIES 11                      /* RetryTimes is at most 10 */
#define MAX_ANSWER ((size_t)64 << 20)     /* a buffered (non-stream) answer */
#define MAX_ERROR_BODY ((size_t)64 << 10) /* what is kept of an upstream error body */
#define MAX_OUT ((size_t)64 << 20)        /* client bytes made from one upstream chunk */
#define PIPE_CAP ((size_t)64 << 10)
#define N_CHECKPOINTS 2048
#define N_FWD_HEADERS 8

/* where in the client's stream each event ended, and the completion estimate there */
struct checkpoint {
    uint64_t end;
    int64_t est;
};

enum end_reason { END_DONE = 0, END_CLIENT_GONE, END_UPSTREAM_ERROR };

struct job {
    atomic_int refs;
    struct mt_server *srv;
    struct mt_relay *rl;
    struct cm_httpd_req *req;
    enum mt_relay_fmt fmt;
    char rid[MT_RELAY_RID_MAX];
    int64_t t0_ms;

    /* who (fixed once the reserve is submitted) */
    struct mt_relay_token *tok;
    struct mt_relay_user *user;
    struct mt_options *opts;
    struct mt_relay_routes *routes;
    char group[MT_RELAY_GROUP_MAX];
    char ip[64];
    int record_ip;
    int64_t pin;

    /* the request */
    cJSON *body;
    const char *raw; /* the client's bytes (the request is referenced) */
    size_t raw_len;
    char model[MT_RELAY_MODEL_MAX]; /* as the client named it (billing and logs) */
    struct mt_relay_reqinfo info;   /* info.model is not valid after the first rewrite */
    int force_usage, strip_usage;
    char *fwd[N_FWD_HEADERS]; /* "Name: value" of the client's headers passed on */
    size_t nfwd;

    /* pricing */
    struct mt_price price;
    int64_t reserved;
    int64_t hold_id;  /* the reserve's hold row (store/writer.h), released by the settle */
    int skip_reserve; /* a free model with free pre-consumption off: no reserve, no check */
    int reserve_done; /* the reservation is committed: a failure refunds it */

    /* channels */
    struct mt_relay_cand *cands; /* of (group, model) */
    const struct mt_relay_route *routes_of;
    size_t ncand;
    int64_t tried[MAX_TRIES];
    size_t ntried;
    int max_tries;
    const struct mt_channel *ch; /* the current attempt's (borrowed from routes) */
    char mapped[MT_RELAY_MODEL_MAX];
    char *up_body; /* NULL: the client's bytes */
    size_t up_len;
    char up_body_model[MT_RELAY_MODEL_MAX]; /* the model up_body was made for */
    int have_up_body;
    char url[2048];
    char *auth_hdr; /* secret */
    char proxy[512];
    atomic_llong channel_now; /* for on_close */

    /* the transfer */
    struct cm_httpc_slot xfer; /* the attempt's transfer, reached by on_close too */
    long status;
    int sse;
    char ctype[128];
    char up_rid[129];
    struct cm_buf answer; /* error body, or the whole non-stream answer */
    struct cm_sse_parser parser;
    int parser_ready;
    struct cm_buf out; /* client bytes not yet in the pipe */
    struct cm_pipe *pipe;
    int started;
    uint64_t sent; /* bytes the pipe took */
    struct checkpoint cps[N_CHECKPOINTS];
    size_t ncps; /* total appended (ring index = ncps % N) */
    struct mt_relay_usage usage;
    int64_t frt_ms;
    char last_err[512]; /* the last failure, for the client when nothing is left */
    unsigned last_status;
    char last_type[64], last_code[64];

    /* the end */
    int end_rc; /* what the pipe closes with */
    atomic_llong charged;
};

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    atomic_fetch_sub(&j->rl->inflight, 1);
    cm_httpd_req_unref(j->req);
    cJSON_Delete(j->body);
    for (size_t i = 0; i < j->nfwd; i++)
        cm_free(j->fwd[i]);
    cm_free(j->cands);
    cm_free(j->up_body);
    if (j->auth_hdr) {
        cm_crypto_memzero(j->auth_hdr, strlen(j->auth_hdr));
        cm_free(j->auth_hdr);
    }
    cm_httpc_slot_cleanup(&j->xfer);
    cm_buf_cleanup(&j->answer);
    cm_buf_cleanup(&j->out);
    if (j->parser_ready)
        cm_sse_parser_cleanup(&j->parser);
    cm_pipe_unref(j->pipe);
    mt_relay_token_unref(j->tok);
    mt_relay_user_unref(j->user);
    mt_relay_routes_unref(j->routes);
    mt_options_unref(j->opts);
    cm_free(j);
}

static int64_t now_ms(const struct job *j)
{
    return cm_clock_mono_ms(j->srv->clock);
}

static enum mt_relay_err_shape shape(const struct job *j)
{
    return j->fmt == MT_RELAY_MESSAGES ? MT_RELAY_ERR_CLAUDE : MT_RELAY_ERR_OPENAI;
}

/* ---- the end: settle / refund, then the client's last bytes ---- */

static void fail_final(struct job *j);

/* after the charge committed: the client gets the rest of its answer */
static void on_settled(const struct mt_store_result *res, void *ud)
{
    struct job *j = ud;
    if (res->rc)
        cm_log_error(cm_httpd_req_id(j->req),
                     "relay: the charge of request %s was not committed: %s (the answer is "
                     "delivered anyway)",
                     j->rid, cm_err_str(res->rc));
    if (j->started) {
        cm_pipe_close(j->pipe, j->end_rc);
    } else if (!cm_httpd_req_aborted(j->req)) {
        size_t len = 0;
        char *b = cm_buf_release(&j->answer, &len);
        if (!b)
            mt_relay_reply_error(j->req, j->rid, shape(j), 500, NULL, "", "out of memory");
        else
            cm_httpd_reply_take(j->req, (unsigned)j->status,
                                j->ctype[0] ? j->ctype : "application/json", b, len);
    }
    job_unref(j);
}

/* after the refund committed: the client gets the error */
static void on_refunded(const struct mt_store_result *res, void *ud)
{
    struct job *j = ud;
    if (res->rc)
        cm_log_error(cm_httpd_req_id(j->req), "relay: refund of %lld for request %s failed: %s",
                     (long long)j->reserved, j->rid, cm_err_str(res->rc));
    j->reserve_done = 0;
    fail_final(j);
    job_unref(j);
}

/* hands the reservation back; @p then_reply: answer the last error once committed */
static void refund(struct job *j, int then_reply)
{
    struct mt_settle s = {0};
    int rc;
    s.user_id = j->tok->t.user_id;
    s.token_id = j->tok->t.id;
    s.reserved = j->reserved;
    s.hold_id = j->hold_id;
    atomic_fetch_add(&j->refs, 1);
    rc = mt_store_submit_settle(j->srv->store, &s, then_reply ? on_refunded : NULL,
                                then_reply ? j : NULL);
    if (rc || !then_reply)
        atomic_fetch_sub(&j->refs, 1);
    if (rc) {
        cm_log_error(cm_httpd_req_id(j->req), "relay: refund of %lld for request %s not queued: %s",
                     (long long)j->reserved, j->rid, cm_err_str(rc));
        j->reserve_done = 0;
        if (then_reply)
            fail_final(j);
        return;
    }
    if (!then_reply)
        j->reserve_done = 0;
}

/* the client gets the last failure (after any refund) */
static void fail_final(struct job *j)
{
    if (j->reserve_done) {
        refund(j, 1);
        return;
    }
    if (j->started) { /* mid-stream: the stream ends with an error */
        cm_pipe_close(j->pipe, CM_ERR_UPSTREAM);
        return;
    }
    if (cm_httpd_req_aborted(j->req))
        return;
    mt_relay_reply_error(j->req, j->rid, shape(j), j->last_status ? j->last_status : 502,
                         j->last_type[0] ? j->last_type : "upstream_error", j->last_code, "%s",
                         j->last_err[0] ? j->last_err : "upstream error");
}

/* the part of the completion estimate the client received (an abandoned stream) */
static int64_t delivered_est(struct job *j)
{
    uint64_t got = j->pipe ? cm_pipe_delivered(j->pipe) : 0;
    size_t n = j->ncps < N_CHECKPOINTS ? j->ncps : N_CHECKPOINTS;
    int64_t best = 0;
    for (size_t k = 0; k < n; k++) {
        const struct checkpoint *c = &j->cps[(j->ncps - 1 - k) % N_CHECKPOINTS];
        if (c->end <= got) {
            best = c->est;
            break;
        }
    }
    return best;
}

static int add_other(cJSON *o, struct job *j, int local, enum end_reason why)
{
    cJSON *ss = NULL;
    int rc = cm_json_set_string(o, "usage_source",
                                !local                   ? "upstream"
                                : why == END_CLIENT_GONE ? "delivered"
                                                         : "local");
    if (!rc && j->up_rid[0])
        rc = cm_json_set_string(o, "upstream_request_id", j->up_rid);
    if (!rc && j->info.stream) {
        rc = cm_json_new_object(&ss);
        if (!rc)
            rc = cm_json_set_string(ss, "status", why == END_DONE ? "ok" : "error");
        if (!rc)
            rc = cm_json_set_string(ss, "end_reason",
                                    why == END_DONE          ? "done"
                                    : why == END_CLIENT_GONE ? "client_gone"
                                                             : "upstream_error");
        if (!rc)
            rc = cm_json_adopt(o, "stream_status", &ss);
        cJSON_Delete(ss);
    }
    return rc;
}

/* the charge of a served (or abandoned) answer: settle, then finish in on_settled */
static void settle(struct job *j, enum end_reason why)
{
    struct mt_usage u;
    struct mt_charge ch;
    struct mt_other_ctx ctx = {0};
    struct mt_log lg = {0};
    struct mt_settle s = {0};
    cJSON *other = NULL;
    char *other_txt = NULL, content[256] = "", mname[MT_RELAY_MODEL_MAX];
    int local = 0, rc;
    int64_t est = why == END_CLIENT_GONE && j->started ? delivered_est(j) : j->usage.completion_est;

    mt_relay_usage_final(&j->usage, j->info.prompt_estimate, est, &u, &local);
    rc = mt_pricing_settle(&j->price, &u, &ch);
    if (rc) { /* cannot happen with the inputs we make; bill the reservation, say so */
        cm_log_error(cm_httpd_req_id(j->req), "relay: pricing request %s failed: %s", j->rid,
                     cm_err_str(rc));
        memset(&ch, 0, sizeof ch);
        ch.quota = j->reserved;
        ch.price = j->price;
        ch.usage = u;
    }
    if (ch.no_tokens)
        snprintf(content, sizeof content, "%s", MT_PRICING_NOTE_NO_TOKENS);
    else if (local && why != END_CLIENT_GONE)
        snprintf(content, sizeof content, "%s", MT_PRICING_NOTE_NO_USAGE);
    ctx.frt_ms = j->frt_ms;
    ctx.request_path = mt_relay_fmt_path(j->fmt);
    ctx.use_channel = j->tried;
    ctx.n_use_channel = j->ntried;
    ctx.upstream_model_name = strcmp(j->mapped, j->model) != 0 ? j->mapped : NULL;
    if (mt_pricing_other_json(&ch, &ctx, &other) != CM_OK || add_other(other, j, local, why) ||
        cm_json_print(other, &other_txt, NULL) != CM_OK) {
        cm_free(other_txt);
        other_txt = NULL;
    }
    cJSON_Delete(other);

    s.user_id = j->tok->t.user_id;
    s.token_id = j->tok->t.id;
    s.channel_id = j->ch ? j->ch->id : 0;
    s.reserved = j->reserved;
    s.hold_id = j->hold_id;
    s.quota = ch.no_tokens ? 0 : ch.quota;
    s.count_request = !ch.no_tokens;
    s.quota_data = mt_options_bool(j->opts, "DataExportEnabled", 1);
    if (mt_options_bool(j->opts, "LogConsumeEnabled", 1)) {
        const char *mn = mt_pricing_match_name(j->model, mname, sizeof mname);
        lg.user_id = j->tok->t.user_id;
        lg.type = MT_LOG_CONSUME;
        lg.content = content;
        lg.username = j->user->u.username;
        lg.token_name = j->tok->t.name;
        lg.model_name = mn && strchr(mn, '*') ? mn : j->model;
        lg.quota = s.quota;
        lg.prompt_tokens = u.prompt_tokens;
        lg.completion_tokens = u.completion_tokens;
        lg.use_time = (now_ms(j) - j->t0_ms) / 1000;
        lg.is_stream = j->info.stream;
        lg.channel_id = s.channel_id;
        lg.token_id = j->tok->t.id;
        lg.group = j->group;
        lg.ip = j->record_ip ? j->ip : "";
        lg.request_id = j->rid;
        lg.upstream_request_id = j->up_rid;
        lg.other = other_txt ? other_txt : "{}";
        s.log = &lg;
    }
    atomic_store(&j->charged, s.quota);
    mt_relay_metrics_charge(j->rl->metrics, j->model, s.channel_id, s.quota, u.prompt_tokens,
                            u.completion_tokens);
    j->end_rc = why == END_DONE ? CM_OK : CM_ERR_UPSTREAM;
    atomic_fetch_add(&j->refs, 1);
    rc = mt_store_submit_settle(j->srv->store, &s, on_settled, j);
    cm_free(other_txt);
    if (rc) {
        struct mt_store_result r = {.rc = rc};
        on_settled(&r, j); /* drops the reference taken above */
    }
}

/* ---- streaming output (I/O thread) ---- */

static int ensure_started(struct job *j)
{
    int rc;
    if (j->started)
        return CM_OK;
    rc = cm_httpd_reply_sse(j->req, PIPE_CAP, cm_httpc_slot_wake, &j->xfer, &j->pipe);
    j->started = j->pipe != NULL;
    return rc;
}

static void checkpoint(struct job *j)
{
    struct checkpoint *c = &j->cps[j->ncps % N_CHECKPOINTS];
    c->end = j->sent + j->out.len;
    c->est = j->usage.completion_est;
    j->ncps++;
}

static int on_sse_event(void *ud, const struct cm_sse_event *ev)
{
    struct job *j = ud;
    int rc;
    mt_relay_usage_event(&j->usage, ev->type, ev->type_len, ev->data, ev->data_len);
    if (j->strip_usage && j->usage.last_usage_only)
        return 0;
    if (ev->type_len) {
        char t[128];
        size_t n = ev->type_len < sizeof t - 1 ? ev->type_len : sizeof t - 1;
        memcpy(t, ev->type, n);
        t[n] = '\0';
        rc = cm_sse_write_event(&j->out, t, ev->data, ev->data_len);
    } else {
        rc = cm_sse_write_event(&j->out, NULL, ev->data, ev->data_len);
    }
    if (rc)
        return rc;
    checkpoint(j);
    return 0;
}

static int on_sse_comment(void *ud, const char *text, size_t len)
{
    struct job *j = ud;
    char t[256];
    if (!j->started) /* keep-alives before the answer starts are not forwarded */
        return 0;
    if (len && text[0] == ' ') {
        text++;
        len--;
    }
    if (len >= sizeof t)
        len = sizeof t - 1;
    memcpy(t, text, len);
    t[len] = '\0';
    return cm_sse_write_comment(&j->out, t);
}

/* ---- httpc callbacks (I/O thread) ---- */

static int on_head(struct cm_httpc_xfer *x, const struct cm_httpc_head *h, void *ud)
{
    struct job *j = ud;
    const char *v;
    (void)x;
    j->status = h->status;
    if (!j->frt_ms)
        j->frt_ms = now_ms(j) - j->t0_ms;
    v = cm_httpc_head_get(h, "Content-Type");
    snprintf(j->ctype, sizeof j->ctype, "%s", v ? v : "");
    j->sse = h->status >= 200 && h->status < 300 && v && strstr(v, "text/event-stream");
    v = cm_httpc_head_get(h, "X-Oneapi-Request-Id");
    snprintf(j->up_rid, sizeof j->up_rid, "%s", v ? v : "");
    return CM_OK;
}

static int flush(struct job *j)
{
    int rc;
    if (!j->out.len)
        return CM_OK;
    rc = cm_pipe_write(j->pipe, j->out.data, j->out.len);
    if (rc == CM_OK) {
        j->sent += j->out.len;
        cm_buf_reset(&j->out);
    }
    return rc;
}

/* whether the answer carried something a client would lose if we moved on */
static int has_content(const struct job *j)
{
    return j->usage.completion_est > 0 || j->usage.tool_calls > 0 || j->usage.finished ||
           j->out.len >= PIPE_CAP;
}

static int on_data(struct cm_httpc_xfer *x, const char *p, size_t n, void *ud)
{
    struct job *j = ud;
    int rc;
    (void)x;

    if (j->status < 200 || j->status > 299) { /* keep the start of an error body */
        size_t room = MAX_ERROR_BODY - j->answer.len;
        if (room)
            (void)cm_buf_append(&j->answer, p, n < room ? n : room);
        return CM_OK;
    }
    if (!j->sse)
        return cm_buf_append(&j->answer, p, n);
    if (j->started && j->out.len) { /* first what the last chunk made */
        rc = flush(j);
        if (rc)
            return rc; /* CM_ERR_AGAIN: this chunk comes again after the client drained */
    }
    rc = cm_sse_parser_feed(&j->parser, p, n, NULL);
    if (rc)
        return rc;
    /* the client's stream starts with the first content: a stream that fails before it (a
     * cut after message_start, an error event) can still move on to another channel */
    if (j->out.len && !j->started && has_content(j) && (rc = ensure_started(j)))
        return rc;
    if (j->started) {
        rc = flush(j);
        if (rc && rc != CM_ERR_AGAIN)
            return rc; /* the client is gone */
    }
    return CM_OK;
}

static void start_attempt(struct job *j);
static int prepare_attempt(struct job *j);

/* may the request move on to another channel after this failure? */
static int retryable(struct job *j, long status)
{
    const char *codes;
    if (j->pin || j->started || j->ntried >= (size_t)j->max_tries)
        return 0;
    if (status == 0 || status < 100 || status > 599)
        return 1; /* no answer at all */
    if (status >= 200 && status < 300)
        return 1; /* a 2xx that was not an answer (empty stream) */
    if (status == 504 || status == 524)
        return 0;
    codes = mt_options_get(j->opts, "AutomaticRetryStatusCodes");
    return mt_options_code_in(codes ? codes
                                    : "100-199,300-399,401-407,409-499,500-503,505-523,"
                                      "525-599",
                              status);
}

/* the upstream's error message, type and code from its body (OpenAI or Anthropic shape) */
static void note_upstream_error(struct job *j, long status, const char *body, size_t len)
{
    struct cm_json_parse_opts po = {.max_depth = 32, .max_size = MAX_ERROR_BODY};
    cJSON *root = NULL;
    const cJSON *e, *m = NULL, *t = NULL, *c = NULL;

    j->last_status = status >= 400 && status <= 599 ? (unsigned)status : 502;
    snprintf(j->last_type, sizeof j->last_type, "%s",
             j->fmt == MT_RELAY_MESSAGES ? "upstream_error" : "openai_error");
    snprintf(j->last_code, sizeof j->last_code, "bad_response_status_code");
    snprintf(j->last_err, sizeof j->last_err, "upstream answered with status %ld", status);
    if (!body || !len || cm_json_parse(body, len, &po, &root, NULL) != CM_OK)
        goto out;
    e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(e)) {
        m = cJSON_GetObjectItemCaseSensitive(e, "message");
        t = cJSON_GetObjectItemCaseSensitive(e, "type");
        c = cJSON_GetObjectItemCaseSensitive(e, "code");
    } else if (cJSON_IsString(e)) {
        m = e;
    } else {
        m = cJSON_GetObjectItemCaseSensitive(root, "message");
    }
    if (cJSON_IsString(m) && m->valuestring[0])
        cm_log_mask(m->valuestring, strlen(m->valuestring), j->last_err,
                    sizeof j->last_err); /* an upstream may quote a key back */
    if (cJSON_IsString(t) && t->valuestring[0])
        snprintf(j->last_type, sizeof j->last_type, "%s", t->valuestring);
    if (cJSON_IsString(c) && c->valuestring[0])
        snprintf(j->last_code, sizeof j->last_code, "%s", c->valuestring);
    else if (cJSON_IsNumber(c))
        snprintf(j->last_code, sizeof j->last_code, "%lld", (long long)c->valuedouble);
out:
    cJSON_Delete(root);
}

/* counts a failure toward the channel's automatic disable (NewAPI rule, N in a window) */
static void health_fail(struct job *j, long status)
{
    const struct mt_channel *ch = j->ch;
    char reason[320];
    int64_t n, window;
    if (!ch || !ch->auto_ban || !mt_options_bool(j->opts, "AutomaticDisableChannelEnabled", 0))
        return;
    if (!mt_relay_should_disable(mt_options_get(j->opts, "AutomaticDisableStatusCodes"),
                                 mt_options_get(j->opts, "AutomaticDisableKeywords"), status,
                                 j->last_err, strlen(j->last_err)))
        return;
    n = mt_options_int(j->opts, "AutomaticDisableFailureCount", 3);
    window = mt_options_int(j->opts, "AutomaticDisableFailureWindowSeconds", 300);
    if (!mt_relay_health_fail(j->rl->health, ch->id, now_ms(j),
                              (int)(n < 1    ? 1
                                    : n > 64 ? 64
                                             : n),
                              (window < 1 ? 1 : window) * 1000))
        return;
    snprintf(reason, sizeof reason, "%lld consecutive failures, the last: status %ld, %.200s",
             (long long)n, status, j->last_err);
    if (mt_relay_cache_disable(j->rl->cache, ch->id, reason) != CM_OK)
        cm_log_warn(cm_httpd_req_id(j->req), "relay: cannot queue disabling channel %lld",
                    (long long)ch->id);
}

/* after a failed attempt: another channel, or the client gets the error */
static void attempt_failed(struct job *j, long status)
{
    cm_log_warn(cm_httpd_req_id(j->req), "relay: %s channel %lld failed (status %ld): %s", j->rid,
                (long long)(j->ch ? j->ch->id : 0), status, j->last_err);
    health_fail(j, status);
    if (retryable(j, status) && !cm_httpd_req_aborted(j->req) && prepare_attempt(j) == CM_OK) {
        cm_log_info(cm_httpd_req_id(j->req), "relay: %s retrying on channel %lld", j->rid,
                    (long long)j->ch->id);
        start_attempt(j);
        return;
    }
    fail_final(j);
}

static void done_ok(struct job *j)
{
    mt_relay_health_ok(j->rl->health, j->ch->id);
    if (!j->sse) {
        if (mt_relay_usage_body(&j->usage, j->answer.data ? j->answer.data : "", j->answer.len))
            cm_log_warn(cm_httpd_req_id(j->req),
                        "relay: %s the answer of channel %lld is not JSON; billed on the "
                        "local count",
                        j->rid, (long long)j->ch->id);
        if (j->usage.error_event && !j->usage.have) { /* a 200 that is an error: no charge */
            note_upstream_error(j, 502, j->answer.data, j->answer.len);
            attempt_failed(j, 502);
            return;
        }
        settle(j, END_DONE);
        return;
    }
    (void)cm_sse_parser_finish(&j->parser, CM_SSE_FINISH_DISPATCH);
    if (!j->started && (!j->out.len || (j->usage.error_event && !has_content(j)))) {
        /* a 200 with no event at all, or only an error: nothing reached the client */
        snprintf(j->last_err, sizeof j->last_err, "%s",
                 j->out.len ? "upstream stream ended with an error"
                            : "upstream sent an empty stream");
        snprintf(j->last_type, sizeof j->last_type, "upstream_error");
        snprintf(j->last_code, sizeof j->last_code, "%s",
                 j->out.len ? "bad_response_body" : "empty_response");
        j->last_status = 502;
        attempt_failed(j, 200);
        return;
    }
    if (ensure_started(j) == CM_OK && j->out.len) {
        if (cm_pipe_write_force(j->pipe, j->out.data, j->out.len) == CM_OK)
            j->sent += j->out.len;
        cm_buf_reset(&j->out);
    }
    settle(j, j->usage.error_event ? END_UPSTREAM_ERROR : END_DONE);
}

/* a transfer that failed below HTTP: curl's text (it names the channel's address) goes to
 * the log, a plain sentence to the client */
static void transport_failed(struct job *j, const struct cm_httpc_result *r, const char *msg,
                             const char *code)
{
    cm_log_warn(cm_httpd_req_id(j->req), "relay: %s channel %lld: %s (%s)", j->rid,
                (long long)j->ch->id, msg, r->error);
    snprintf(j->last_err, sizeof j->last_err, "%s", msg);
    snprintf(j->last_type, sizeof j->last_type, "upstream_error");
    snprintf(j->last_code, sizeof j->last_code, "%s", code);
    j->last_status = r->rc == CM_ERR_TIMEOUT ? 504 : 502;
}

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    struct job *j = ud;
    (void)x;

    if (cm_httpd_req_aborted(j->req) && r->rc != CM_OK) { /* the client left */
        if (j->started)
            settle(j, END_CLIENT_GONE);
        else if (j->reserve_done)
            refund(j, 0);
        goto out;
    }
    if (r->rc != CM_OK && r->status == 0) { /* no answer at all */
        transport_failed(j, r,
                         r->rc == CM_ERR_TIMEOUT ? "the upstream did not answer in time"
                                                 : "the upstream could not be reached",
                         "do_request_failed");
        attempt_failed(j, 0);
        goto out;
    }
    if (j->status < 200 || j->status > 299) {
        note_upstream_error(j, j->status, j->answer.data, j->answer.len);
        attempt_failed(j, j->status);
        goto out;
    }
    if (r->rc != CM_OK) { /* a 2xx cut short */
        transport_failed(j, r,
                         r->rc == CM_ERR_LIMIT ? "the upstream answer is too large"
                                               : "the upstream answer was cut short",
                         r->rc == CM_ERR_LIMIT ? "response_too_large" : "bad_response_body");
        if (j->started) {
            (void)cm_sse_parser_finish(&j->parser, 0);
            if (j->out.len && cm_pipe_write_force(j->pipe, j->out.data, j->out.len) == CM_OK)
                j->sent += j->out.len;
            cm_buf_reset(&j->out);
            settle(j, END_UPSTREAM_ERROR);
        } else {
            attempt_failed(j, r->rc == CM_ERR_LIMIT ? 502 : 0);
        }
        goto out;
    }
    done_ok(j);
out:
    job_unref(j); /* the transfer's reference */
}

/* ---- attempts ---- */

static const char *default_base(int type)
{
    switch (type) {
    case 14:
        return "https://api.anthropic.com";
    case 1:
    case 0:
        return "https://api.openai.com";
    case 43:
        return "https://api.deepseek.com";
    case 48:
        return "https://api.x.ai";
    default:
        return NULL;
    }
}

/* one key of a channel: a JSON array or newline-separated keys give one at random */
static int channel_key(struct job *j, const char *keys, char **out)
{
    const char *ks[64], *p;
    size_t lens[64], n = 0;
    cJSON *arr = NULL;
    int rc = CM_OK;

    while (*keys == ' ' || *keys == '\n' || *keys == '\r' || *keys == '\t')
        keys++;
    if (*keys == '[' && cm_json_parse(keys, strlen(keys), NULL, &arr, NULL) == CM_OK &&
        cJSON_IsArray(arr)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it) && it->valuestring[0] && n < 64)
        {
            ks[n] = it->valuestring;
            lens[n++] = strlen(it->valuestring);
        }
    } else {
        for (p = keys; *p && n < 64;) {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            while (l && (p[l - 1] == '\r' || p[l - 1] == ' '))
                l--;
            if (l) {
                ks[n] = p;
                lens[n++] = l;
            }
            p = e ? e + 1 : p + strlen(p);
        }
    }
    if (!n) {
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    {
        size_t k = n > 1 ? j->rl->rnd(j->rl->rnd_ud) % n : 0;
        *out = cm_strndup(ks[k], lens[k]);
        if (!*out)
            rc = CM_ERR_NOMEM;
    }
out:
    cJSON_Delete(arr);
    return rc;
}

/*
 * Picks the next channel (never one tried) and prepares the call: mapped model, upstream
 * body, URL, auth header, proxy. CPU only. CM_OK, or CM_ERR_NOTFOUND when no channel is
 * left (j->last_* then say why, when nothing was tried yet).
 */
static int prepare_attempt(struct job *j)
{
    const struct mt_channel *ch = NULL;
    char *key = NULL;
    const char *base, *setting;
    size_t blen;
    int rc;

    for (;;) {
        if (j->ntried >= MAX_TRIES)
            return CM_ERR_NOTFOUND;
        if (j->pin) {
            if (j->ntried)
                return CM_ERR_NOTFOUND;
            ch = mt_relay_routes_channel(j->routes, j->pin);
            if (!ch)
                return CM_ERR_NOTFOUND;
        } else {
            long k =
                mt_relay_pick(j->cands, j->ncand, j->tried, j->ntried, j->rl->rnd, j->rl->rnd_ud);
            if (k < 0)
                return CM_ERR_NOTFOUND;
            ch = j->routes_of[k].ch;
        }
        j->tried[j->ntried++] = ch->id;
        j->ch = ch;
        atomic_store(&j->channel_now, ch->id);
        rc = mt_relay_map_model(ch->model_mapping, j->model, j->mapped, sizeof j->mapped);
        if (rc) {
            snprintf(j->last_err, sizeof j->last_err,
                     "channel %lld has an invalid model_mapping (%s)", (long long)ch->id,
                     cm_err_str(rc));
            goto skip;
        }
        base = ch->base_url && *ch->base_url ? ch->base_url : default_base(ch->type);
        if (!base) {
            snprintf(j->last_err, sizeof j->last_err, "channel %lld has no base_url",
                     (long long)ch->id);
            goto skip;
        }
        blen = strlen(base);
        while (blen && base[blen - 1] == '/')
            blen--;
        if (blen >= 3 && memcmp(base + blen - 3, "/v1", 3) == 0)
            blen -= 3; /* NewAPI's base_url has no /v1; accept one */
        if ((size_t)snprintf(j->url, sizeof j->url, "%.*s%s", (int)blen, base,
                             mt_relay_fmt_path(j->fmt)) >= sizeof j->url) {
            snprintf(j->last_err, sizeof j->last_err, "channel %lld: base_url too long",
                     (long long)ch->id);
            goto skip;
        }
        rc = channel_key(j, ch->key ? ch->key : "", &key);
        if (rc) {
            snprintf(j->last_err, sizeof j->last_err, "channel %lld has no key", (long long)ch->id);
            goto skip;
        }
        break;
    skip:
        cm_log_warn(cm_httpd_req_id(j->req), "relay: %s %s", j->rid, j->last_err);
        j->last_status = 500;
        snprintf(j->last_type, sizeof j->last_type, "new_api_error");
        snprintf(j->last_code, sizeof j->last_code, "channel:invalid_config");
        if (j->pin)
            return CM_ERR_NOTFOUND;
    }
    if (j->auth_hdr) {
        cm_crypto_memzero(j->auth_hdr, strlen(j->auth_hdr));
        cm_free(j->auth_hdr);
    }
    j->auth_hdr = cm_malloc(strlen(key) + 32);
    if (j->auth_hdr)
        snprintf(j->auth_hdr, strlen(key) + 32, "%s%s",
                 ch->type == 14 ? "x-api-key: " : "Authorization: Bearer ", key);
    cm_crypto_memzero(key, strlen(key));
    cm_free(key);
    if (!j->auth_hdr)
        return CM_ERR_NOMEM;
    j->proxy[0] = '\0';
    setting = ch->setting;
    if (setting && *setting == '{') {
        cJSON *s = NULL;
        if (cm_json_parse(setting, strlen(setting), NULL, &s, NULL) == CM_OK) {
            const cJSON *px = cJSON_GetObjectItemCaseSensitive(s, "proxy");
            if (cJSON_IsString(px))
                snprintf(j->proxy, sizeof j->proxy, "%s", px->valuestring);
        }
        cJSON_Delete(s);
    }
    if (!j->have_up_body || strcmp(j->up_body_model, j->mapped) != 0) {
        cm_free(j->up_body);
        j->up_body = NULL;
        rc = mt_relay_req_body(j->body, j->model, j->mapped, j->force_usage, &j->up_body,
                               &j->up_len);
        if (rc)
            return rc;
        snprintf(j->up_body_model, sizeof j->up_body_model, "%s", j->mapped);
        j->have_up_body = 1;
    }
    return CM_OK;
}

/* starts the prepared call (any thread but the server's is fine: it only queues) */
static void start_attempt(struct job *j)
{
    static const struct cm_httpc_cbs cbs = {on_head, on_data, on_done};
    const char *hdrs[N_FWD_HEADERS + 4];
    struct cm_httpc_request rq = {0};
    struct cm_httpc_xfer *xfer = NULL;
    size_t nh = 0;
    int rc;

    j->status = 0;
    j->sse = 0;
    j->ctype[0] = '\0';
    j->up_rid[0] = '\0';
    cm_buf_reset(&j->answer);
    cm_buf_reset(&j->out);
    mt_relay_usage_init(&j->usage, j->fmt);
    j->ncps = 0;
    if (j->parser_ready)
        cm_sse_parser_cleanup(&j->parser);
    cm_sse_parser_init(&j->parser, (size_t)16 << 20, on_sse_event, on_sse_comment, j);
    j->parser_ready = 1;

    hdrs[nh++] = "Content-Type: application/json";
    hdrs[nh++] = j->info.stream ? "Accept: text/event-stream" : "Accept: application/json";
    hdrs[nh++] = j->auth_hdr;
    if (j->ch->type == 14 && j->fmt == MT_RELAY_MESSAGES) {
        int have = 0;
        for (size_t i = 0; i < j->nfwd; i++)
            have |= strncmp(j->fwd[i], "Anthropic-Version:", 18) == 0;
        if (!have)
            hdrs[nh++] = "anthropic-version: 2023-06-01";
    }
    for (size_t i = 0; i < j->nfwd && nh < sizeof hdrs / sizeof *hdrs; i++)
        hdrs[nh++] = j->fwd[i];
    rq.method = "POST";
    rq.url = j->url;
    rq.headers = hdrs;
    rq.n_headers = nh;
    rq.body = j->up_body ? j->up_body : j->raw;
    rq.body_len = j->up_body ? j->up_len : j->raw_len;
    rq.proxy = j->proxy[0] ? j->proxy : NULL;
    rq.connect_timeout_ms = 15000;
    rq.first_byte_timeout_ms = 600000;
    rq.idle_timeout_ms = 300000;
    rq.max_response = MAX_ANSWER;
    rq.log_id = cm_httpd_req_id(j->req);
    atomic_fetch_add(&j->refs, 1); /* the transfer's */
    rc = cm_httpc_start(j->srv->client, &rq, &cbs, j, &xfer);
    cm_httpc_slot_set(&j->xfer, rc ? NULL : xfer);
    if (!rc && cm_httpd_req_aborted(j->req)) /* left while we were starting */
        cm_httpc_slot_cancel(&j->xfer);
    if (rc) {
        atomic_fetch_sub(&j->refs, 1);
        snprintf(j->last_err, sizeof j->last_err, "cannot start the upstream call: %s",
                 cm_err_str(rc));
        snprintf(j->last_type, sizeof j->last_type, "new_api_error");
        snprintf(j->last_code, sizeof j->last_code, "do_request_failed");
        j->last_status = 503;
        fail_final(j);
    }
}

/* ---- the reservation ---- */

static void on_reserved(const struct mt_store_result *res, void *ud)
{
    struct job *j = ud;
    if (res->rc == CM_OK) {
        j->reserve_done = 1;
        j->hold_id = res->hold_id;
        if (cm_httpd_req_aborted(j->req))
            refund(j, 0);
        else
            start_attempt(j);
    } else if (res->rc == CM_ERR_LIMIT && res->short_of == MT_STORE_SHORT_TOKEN) {
        mt_relay_cache_forget_token(j->rl->cache, j->tok->t.key, strlen(j->tok->t.key));
        mt_relay_reply_error(j->req, j->rid, shape(j), 403, NULL, "pre_consume_token_quota_failed",
                             "token quota is not enough, token remain quota: %lld, need "
                             "quota: %lld",
                             (long long)j->tok->t.remain_quota, (long long)j->reserved);
    } else if (res->rc == CM_ERR_LIMIT) {
        mt_relay_reply_error(j->req, j->rid, shape(j), 403, NULL, "insufficient_user_quota",
                             "user quota is not enough");
    } else if (res->rc == CM_ERR_NOTFOUND) {
        mt_relay_reply_error(j->req, j->rid, MT_RELAY_ERR_MIDDLEWARE, 401, NULL, "",
                             "Invalid token");
    } else {
        mt_relay_reply_error(j->req, j->rid, shape(j), 500, NULL, "pre_consume_failed",
                             "the quota could not be reserved: %s", cm_err_str(res->rc));
    }
    job_unref(j); /* the reserve's reference */
}

/* ---- the close callback ---- */

static void on_close(struct cm_httpd_req *r, int aborted, void *ud)
{
    struct job *j = ud;
    char note[512];
    int64_t ch = atomic_load(&j->channel_now);
    unsigned status = cm_httpd_req_status(r);

    if (aborted)
        cm_httpc_slot_cancel(&j->xfer);
    /* ':' keeps the masker off the request id (a 39-character run) and the token id */
    snprintf(note, sizeof note, "rid:%s user:%lld token_id:%lld model:%s group:%s channel:%lld",
             j->rid, (long long)(j->tok ? j->tok->t.user_id : 0),
             (long long)(j->tok ? j->tok->t.id : 0), j->model[0] ? j->model : "-",
             j->group[0] ? j->group : "-", (long long)ch);
    cm_httpd_req_note(r, note);
    mt_relay_metrics_observe(j->rl->metrics, j->model, ch, status, aborted,
                             (double)(now_ms(j) - j->t0_ms) / 1000.0);
    if (!aborted && status && status < 400 && j->tok)
        mt_relay_rl_success(j->rl->rl, j->tok->t.user_id, cm_clock_wall_ms(j->srv->clock),
                            mt_options_int(j->opts, "ModelRequestRateLimitDurationMinutes", 1) *
                                60000);
    job_unref(j);
}

/* ---- the handler ---- */

static void store_failed(struct mt_relay_deny *d, const char *what, int rc)
{
    d->status = 500;
    d->code = "";
    d->reason = "store";
    snprintf(d->msg, sizeof d->msg, "the %s could not be read: %s", what, cm_err_str(rc));
}

int mt_relay__authenticate(struct mt_server *srv, struct cm_httpd_req *r, const char *rid,
                           struct mt_relay_token **tok, struct mt_relay_user **user, int64_t *pin)
{
    struct mt_relay_deny d = {0};
    struct mt_relay_token *t = NULL;
    struct mt_relay_user *u = NULL;
    const char *v = cm_httpd_req_header(r, "Authorization"), *key = NULL;
    size_t klen = 0;
    int64_t ch = 0;
    int rc;

    if (!v || !*v || strcmp(v, "Bearer") == 0 || strcmp(v, "Bearer ") == 0)
        v = cm_httpd_req_header(r, "x-api-key");
    rc = v ? mt_auth_parse_key(v, &key, &klen, &ch) : CM_ERR_NOTFOUND;
    if (rc) {
        d.status = 401;
        d.code = "";
        d.reason = rc == CM_ERR_NOTFOUND ? "no key" : "malformed key";
        snprintf(d.msg, sizeof d.msg, "Invalid token");
        goto fail;
    }
    rc = mt_relay_cache_token(srv->relay->cache, key, klen, &t);
    if (rc == CM_ERR_NOTFOUND) {
        rc = mt_relay_check_token(NULL, 0, &d);
        goto fail;
    }
    if (rc) {
        store_failed(&d, "token", rc);
        goto fail;
    }
    rc = mt_relay_check_token(&t->t, cm_clock_wall_s(srv->clock), &d);
    if (!rc)
        rc = mt_relay_check_ip(&t->t, cm_httpd_req_peer(r), &d);
    if (rc)
        goto fail;
    rc = mt_relay_cache_user(srv->relay->cache, t->t.user_id, &u);
    if (rc == CM_ERR_NOTFOUND) {
        rc = mt_relay_check_token(NULL, 0, &d); /* the owner is gone: the token is invalid */
        d.reason = "owner deleted";
        goto fail;
    }
    if (rc) {
        store_failed(&d, "user", rc);
        goto fail;
    }
    rc = mt_relay_check_user(&u->u, pin ? ch : 0, &d);
    if (rc)
        goto fail;
    *tok = t;
    *user = u;
    if (pin)
        *pin = ch;
    return CM_OK;
fail:
    cm_log_info(cm_httpd_req_id(r), "relay: key refused (%s)%s%lld", d.reason ? d.reason : "-",
                t ? " token " : "", (long long)(t ? t->t.id : 0));
    if (d.status == 403 && ch && u && u->u.role < MT_ROLE_ADMIN)
        cm_httpd_add_header(r, "specific_channel_version", "701e3ae");
    mt_relay_reply_error(r, rid, MT_RELAY_ERR_MIDDLEWARE, d.status ? d.status : 401, NULL,
                         d.code ? d.code : "", "%s", d.msg);
    mt_relay_token_unref(t);
    mt_relay_user_unref(u);
    return rc ? rc : CM_ERR_AUTH;
}

/* the client headers an upstream may need (format and beta switches, client identity) */
static void copy_headers(struct job *j, struct cm_httpd_req *r)
{
    static const char *const names[] = {"User-Agent",  "Anthropic-Version", "Anthropic-Beta",
                                        "OpenAI-Beta", "Originator",        "Session_id"};
    for (size_t i = 0; i < sizeof names / sizeof *names && j->nfwd < N_FWD_HEADERS; i++) {
        const char *v = cm_httpd_req_header(r, names[i]);
        size_t n;
        if (!v || !*v || strpbrk(v, "\r\n"))
            continue;
        n = strlen(names[i]) + strlen(v) + 3;
        j->fwd[j->nfwd] = cm_malloc(n);
        if (!j->fwd[j->nfwd])
            return;
        snprintf(j->fwd[j->nfwd++], n, "%s: %s", names[i], v);
    }
}

/* the rate limit of 7.1; 0 when the request may go on (else answered) */
static int rate_limited(struct job *j)
{
    int64_t minutes, total, success;
    const char *grp;
    enum mt_relay_rl_verdict v;

    if (!mt_options_bool(j->opts, "ModelRequestRateLimitEnabled", 0))
        return 0;
    minutes = mt_options_int(j->opts, "ModelRequestRateLimitDurationMinutes", 1);
    total = mt_options_int(j->opts, "ModelRequestRateLimitCount", 0);
    success = mt_options_int(j->opts, "ModelRequestRateLimitSuccessCount", 1000);
    grp = mt_options_get(j->opts, "ModelRequestRateLimitGroup");
    if (grp && *grp == '{') {
        cJSON *g = NULL;
        if (cm_json_parse(grp, strlen(grp), NULL, &g, NULL) == CM_OK) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(g, j->group);
            int64_t a, b;
            if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                cm_json_to_int64(cJSON_GetArrayItem(e, 0), 0, INT32_MAX, &a) == CM_OK &&
                cm_json_to_int64(cJSON_GetArrayItem(e, 1), 1, INT32_MAX, &b) == CM_OK) {
                total = a;
                success = b;
            }
        }
        cJSON_Delete(g);
    }
    if (minutes < 1)
        minutes = 1;
    v = mt_relay_rl_begin(j->rl->rl, j->tok->t.user_id, cm_clock_wall_ms(j->srv->clock),
                          minutes * 60000, total, success);
    if (v == MT_RELAY_RL_OK)
        return 0;
    if (v == MT_RELAY_RL_TOTAL)
        mt_relay_reply_error(j->req, j->rid, MT_RELAY_ERR_MIDDLEWARE, 429, NULL,
                             "rate_limit_exceeded",
                             "You have reached the total request limit: at most %lld requests "
                             "in %lld minutes, failed ones included; please check that your "
                             "requests are correct",
                             (long long)total, (long long)minutes);
    else
        mt_relay_reply_error(j->req, j->rid, MT_RELAY_ERR_MIDDLEWARE, 429, NULL,
                             "rate_limit_exceeded",
                             "You have reached the request limit: at most %lld requests in "
                             "%lld minutes",
                             (long long)success, (long long)minutes);
    return 1;
}

/* the channels of (group, model), trying the normalised name; "auto" walks AutoGroups */
static size_t find_routes(struct job *j, const struct mt_relay_route **out)
{
    char buf[MT_RELAY_MODEL_MAX], g[MT_RELAY_GROUP_MAX];
    const char *norm = mt_pricing_match_name(j->model, buf, sizeof buf);
    size_t n;

    if (strcmp(j->group, "auto") == 0) {
        for (size_t i = 0;
             mt_relay_auto_group_at(j->opts, j->user->u.group, i, g, sizeof g) == CM_OK; i++) {
            n = mt_relay_routes_find(j->routes, g, j->model, out);
            if (!n && norm && strcmp(norm, j->model) != 0)
                n = mt_relay_routes_find(j->routes, g, norm, out);
            if (n) {
                snprintf(j->group, sizeof j->group, "%s", g);
                return n;
            }
        }
        return 0;
    }
    n = mt_relay_routes_find(j->routes, j->group, j->model, out);
    if (!n && norm && strcmp(norm, j->model) != 0)
        n = mt_relay_routes_find(j->routes, j->group, norm, out);
    return n;
}

/* channels, price and reservation; 0 to go on (else answered) */
static int plan(struct job *j)
{
    const struct mt_relay_route *rt = NULL;
    struct mt_preconsume pre = {0};
    const struct mt_pricing *p = mt_options_pricing(j->opts);
    int rc;

    if (j->pin) {
        const struct mt_channel *ch = mt_relay_routes_channel(j->routes, j->pin);
        if (!ch || ch->status != MT_CHANNEL_ENABLED) { /* maybe just added or enabled */
            mt_relay_routes_unref(j->routes);
            j->routes = mt_relay_cache_routes_fresh(j->rl->cache);
            ch = mt_relay_routes_channel(j->routes, j->pin);
        }
        if (!ch || ch->status != MT_CHANNEL_ENABLED) {
            mt_relay_reply_error(j->req, j->rid, MT_RELAY_ERR_MIDDLEWARE, 403, NULL, "",
                                 ch ? "The specified channel is disabled"
                                    : "The specified channel does not exist");
            return 1;
        }
        if (strcmp(j->group, "auto") == 0)
            snprintf(j->group, sizeof j->group, "%s",
                     j->user->u.group && *j->user->u.group ? j->user->u.group : "default");
    } else {
        j->ncand = find_routes(j, &rt);
        if (!j->ncand) { /* maybe a channel was just added: look again in a fresh snapshot */
            mt_relay_routes_unref(j->routes);
            j->routes = mt_relay_cache_routes_fresh(j->rl->cache);
            j->ncand = find_routes(j, &rt);
        }
        if (!j->ncand) {
            mt_relay_reply_error(j->req, j->rid, shape(j), 503, NULL, "model_not_found",
                                 "No available channel for model %s under group %s "
                                 "(distributor)",
                                 j->model, strcmp(j->group, "auto") == 0 ? "auto" : j->group);
            return 1;
        }
        j->routes_of = rt;
        j->cands = cm_calloc(j->ncand, sizeof *j->cands);
        if (!j->cands)
            goto oom;
        for (size_t i = 0; i < j->ncand; i++)
            j->cands[i] = rt[i].cand;
    }
    rc = mt_pricing_model_price(p, j->model, j->group, j->user->u.group, &j->price);
    if (rc == CM_ERR_NOTFOUND &&
        !mt_relay_user_setting(&j->user->u, "accept_unset_model_ratio_model")) {
        mt_relay_reply_error(j->req, j->rid, shape(j), 400, NULL, "model_price_error",
                             "Model %s ratio or price not set, please contact the "
                             "administrator to set it",
                             j->model);
        return 1;
    }
    if (rc && rc != CM_ERR_NOTFOUND) {
        mt_relay_reply_error(j->req, j->rid, shape(j), 500, NULL, "model_price_error",
                             "cannot price model %s: %s", j->model, cm_err_str(rc));
        return 1;
    }
    rc = mt_pricing_preconsume(p, &j->price, j->info.prompt_estimate, j->info.max_tokens, &pre);
    if (rc) {
        mt_relay_reply_error(j->req, j->rid, shape(j), 500, NULL, "pre_consume_failed",
                             "cannot compute the reservation: %s", cm_err_str(rc));
        return 1;
    }
    j->reserved = pre.skip ? 0 : pre.quota;
    j->skip_reserve = pre.skip;
    j->max_tries = 1 + (int)mt_options_int(j->opts, "RetryTimes", 0);
    if (j->max_tries > MAX_TRIES)
        j->max_tries = MAX_TRIES;
    rc = prepare_attempt(j);
    if (rc == CM_ERR_NOTFOUND) {
        mt_relay_reply_error(j->req, j->rid, shape(j), j->last_status ? j->last_status : 503,
                             j->last_type[0] ? j->last_type : NULL,
                             j->last_code[0] ? j->last_code : "model_not_found", "%s",
                             j->last_err[0] ? j->last_err : "no usable channel");
        return 1;
    }
    if (rc)
        goto oom;
    return 0;
oom:
    mt_relay_reply_error(j->req, j->rid, shape(j), 500, NULL, "", "out of memory");
    return 1;
}

void mt_relay__handle(struct cm_httpd_req *r, struct mt_server *srv, enum mt_relay_fmt f)
{
    struct cm_json_parse_opts po = {.max_depth = 64};
    struct cm_json_err je = {0};
    struct mt_relay_deny d = {0};
    struct mt_reserve rv = {0};
    struct job *j;
    int rc;

    j = cm_calloc(1, sizeof *j);
    if (!j) {
        cm_httpd_reply_error(r, 500, "new_api_error", NULL, "out of memory");
        return;
    }
    atomic_init(&j->refs, 1); /* the close callback's */
    atomic_init(&j->channel_now, 0);
    atomic_init(&j->charged, 0);
    cm_httpc_slot_init(&j->xfer);
    j->srv = srv;
    j->rl = srv->relay;
    atomic_fetch_add(&j->rl->inflight, 1);
    j->req = r;
    j->fmt = f;
    j->t0_ms = now_ms(j);
    cm_httpd_req_ref(r);
    cm_buf_init(&j->answer, MAX_ANSWER);
    cm_buf_init(&j->out, MAX_OUT);
    mt_relay_usage_init(&j->usage, f);
    mt_relay_request_id(j->rid);
    j->opts = mt_optcache_get(srv->opts);
    cm_httpd_req_on_close(r, on_close, j);
    cm_httpd_add_header(r, "X-Oneapi-Request-Id", j->rid);
    cm_httpd_add_header(r, "X-New-Api-Version", MT_API_VERSION);
    cm_httpd_add_header(r, "Access-Control-Allow-Origin", "*");

    if (mt_relay__authenticate(srv, r, j->rid, &j->tok, &j->user, &j->pin))
        return;
    snprintf(j->ip, sizeof j->ip, "%s", cm_httpd_req_peer(r));
    j->record_ip = mt_relay_user_setting(&j->user->u, "record_ip_log");
    j->raw = cm_httpd_req_body(r, &j->raw_len);
    po.max_size = j->raw_len;
    if (cm_json_parse(j->raw, j->raw_len, &po, &j->body, &je) != CM_OK) {
        mt_relay_reply_error(r, j->rid, MT_RELAY_ERR_MIDDLEWARE, 400, NULL, "invalid_request",
                             "Invalid request body: %s", je.msg[0] ? je.msg : "not JSON");
        return;
    }
    if (mt_relay_req_inspect(f, j->body, &j->info, &je) != CM_OK) {
        mt_relay_reply_error(r, j->rid, MT_RELAY_ERR_MIDDLEWARE, 400, NULL, "invalid_request", "%s",
                             je.msg[0] ? je.msg : "invalid request");
        return;
    }
    snprintf(j->model, sizeof j->model, "%s", j->info.model);
    j->info.model = NULL; /* borrowed from a tree the upstream body rewrites */
    if ((f == MT_RELAY_CHAT || f == MT_RELAY_COMPLETIONS) && j->info.stream) {
        j->force_usage = 1; /* NewAPI's FORCE_STREAM_OPTION */
        j->strip_usage = j->info.include_usage == 0;
    }
    if (mt_relay_check_model(&j->tok->t, j->model, &d) ||
        mt_relay_group(&j->tok->t, &j->user->u, j->opts, j->group, sizeof j->group, &d)) {
        mt_relay_reply_error(r, j->rid, MT_RELAY_ERR_MIDDLEWARE, d.status, NULL, d.code, "%s",
                             d.msg);
        return;
    }
    if (rate_limited(j))
        return;
    copy_headers(j, r);
    j->routes = mt_relay_cache_routes(j->rl->cache);
    if (plan(j))
        return;
    if (j->skip_reserve) {
        start_attempt(j);
        return;
    }
    rv.user_id = j->tok->t.user_id;
    rv.token_id = j->tok->t.id;
    rv.amount = j->reserved;
    atomic_fetch_add(&j->refs, 1); /* the reserve's */
    rc = mt_store_submit_reserve(srv->store, &rv, on_reserved, j);
    if (rc) {
        atomic_fetch_sub(&j->refs, 1);
        mt_relay_reply_error(r, j->rid, shape(j), rc == CM_ERR_LIMIT ? 503 : 500, NULL,
                             "pre_consume_failed", "the quota could not be reserved: %s",
                             rc == CM_ERR_LIMIT ? "too many requests in flight" : cm_err_str(rc));
    }
}
