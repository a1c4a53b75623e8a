/* SPDX-License-Identifier: MIT */
/*
 * fmt_openai.c - the relay formats whose upstream already speaks OpenAI Chat: Qwen,
 * iFlow and openai-compatibility entries (see relay_fmt.h). The chat request goes out with
 * each provider's body rules (providers/qwen, iflow, openai_compat) and the model's
 * "(suffix)" turned into reasoning_effort; the answer comes back as it is, with usage
 * and the end watched. The upstream is always asked for usage on streams; a chat client
 * that did not ask for it does not get the usage-only chunk.
 */
#include "api/relay_fmt.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "providers/iflow.h"
#include "providers/openai_compat.h"
#include "providers/qwen.h"
#include "translate/chat_common.h"
#include "translate/tr_common.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- shared ---- */

enum kind { QWEN, IFLOW, COMPAT };

/* the client's chat request -> a tree for the upstream: base model, reasoning_effort */
static int chat_tree(struct cp_relay_x *x, cJSON **out, struct cp_tr_err *e)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(x->client, "model");
    char *base = NULL;
    const char *effort = NULL;
    struct cm_json_err je = {0};
    cJSON *c;
    int rc;

    if (!cJSON_IsString(m)) {
        cp_tr_err_set(e, CM_ERR_INVAL, 400, "model", "invalid_request_error", NULL,
                      "model: required, a string");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_codex_split_model(m->valuestring, &base, &effort, &je)))
        return cp_tr_err_from_json(e, rc, &je);
    if (!(c = cJSON_Duplicate(x->client, 1)) || cm_json_set_string(c, "model", base) ||
        (effort && cm_json_set_string(c, "reasoning_effort", effort))) {
        cJSON_Delete(c);
        cm_free(base);
        cp_tr_server_error(e, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    cm_free(base);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "stream");
    if (!cJSON_AddBoolToObject(c, "stream", x->stream)) {
        cJSON_Delete(c);
        cp_tr_server_error(e, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    *out = c;
    return CM_OK;
}

static int prepare_kind(struct cp_relay_x *x, enum kind k, struct cp_tr_err *e)
{
    cJSON *c = NULL;
    int rc = chat_tree(x, &c, e);
    if (rc)
        return rc;
    rc = k == QWEN    ? cp_qwen_prepare(c, x->stream)
         : k == IFLOW ? cp_iflow_prepare(c, x->stream)
                      : cp_compat_prepare(c, x->stream);
    if (!rc)
        rc = cm_json_print(c, &x->raw, &x->raw_len);
    cJSON_Delete(c);
    if (rc) {
        cp_tr_server_error(e, rc, "cannot build the upstream request");
        return rc;
    }
    x->up_stream = x->stream;
    return CM_OK;
}

/* x->raw -> x->body with "model" set to the credential's name for it (aliases) */
static int body_for(struct cp_relay_x *x, const struct cp_authstore_cred *c)
{
    const char *name = x->up_model;
    cJSON *t = NULL;
    int rc;
    (void)c;

    cm_free(x->body);
    x->body = NULL;
    if (!name || strcmp(name, x->model) == 0) {
        if (!(x->body = cm_strndup(x->raw, x->raw_len)))
            return CM_ERR_NOMEM;
        x->body_len = x->raw_len;
        return CM_OK;
    }
    rc = cm_json_parse(x->raw, x->raw_len, NULL, &t, NULL);
    if (!rc)
        rc = cm_json_set_string(t, "model", name);
    if (!rc)
        rc = cm_json_print(t, &x->body, &x->body_len);
    cJSON_Delete(t);
    return rc;
}

static void hdrs_of(const struct cp_authstore_cred *c, const char *const **names,
                    const char *const **values, size_t *n)
{
    *names = c->af ? (const char *const *)c->af->header_names : NULL;
    *values = c->af ? (const char *const *)c->af->header_values : NULL;
    *n = c->af ? c->af->n_headers : 0;
}

/* ---- streams: chat chunks relayed ---- */

struct pass {
    struct cp_tr_usage usage;
    int have_usage, finished, done, failed;
    int client_usage; /* the client asked stream_options.include_usage */
};

static int pass_stream_init(struct cp_relay_x *x)
{
    struct pass *ps = cm_calloc(1, sizeof *ps);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(x->client, "stream_options");
    if (!ps)
        return CM_ERR_NOMEM;
    ps->client_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    x->st = ps;
    return CM_OK;
}

/* a delta carrying something for the client: text, reasoning or a tool call */
static int has_content(const cJSON *delta)
{
    const char *c = cp_tr_str_member(delta, "content", NULL);
    const char *r = cp_tr_str_member(delta, "reasoning_content", NULL);
    return (c && *c) || (r && *r) ||
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) > 0;
}

static void pass_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    struct pass *ps = x->st;
    cJSON *d = NULL;
    const cJSON *er, *choices, *ch;
    int forward = 1;

    if (ps->done || ps->failed)
        return;
    if (cp_tr_slice_eq(ev->data, ev->data_len, "[DONE]")) {
        ps->done = 1;
    } else if (cm_json_parse(ev->data, ev->data_len, NULL, &d, NULL) != CM_OK ||
               !cJSON_IsObject(d)) {
        /* not a JSON object (truncated, invalid UTF-8 ...): the answer cannot be trusted;
         * a failure, not a silent gap (failover when nothing went out yet) */
        forward = 0;
        ps->failed = 1;
        cp_tr_malformed_error(&x->err, "a chat chunk that is not a JSON object");
        cp_relay_x_fail(x, CM_ERR_UPSTREAM);
        (void)cp_tr_chat_emit_error(&x->err, &x->out);
    } else if ((er = cJSON_GetObjectItemCaseSensitive(d, "error"))) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(er, "code");
        unsigned st = cJSON_IsNumber(code) ? (unsigned)code->valuedouble : 502;
        ps->failed = 1;
        cp_tr_err_set(&x->err, CM_ERR_UPSTREAM, st >= 400 && st < 600 ? st : 502, "",
                      cp_tr_str_member(er, "type", "server_error"), NULL, "%s",
                      cp_tr_str_member(er, "message", "upstream error event"));
        cp_relay_x_fail(x, CM_ERR_UPSTREAM);
    } else {
        choices = cJSON_GetObjectItemCaseSensitive(d, "choices");
        ch = cJSON_GetArrayItem(choices, 0);
        if (cp_openai_usage(d, &ps->usage) == CM_OK)
            ps->have_usage = 1;
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason")))
            ps->finished = 1;
        if (has_content(cJSON_GetObjectItemCaseSensitive(ch, "delta")))
            x->content = 1; /* not for the opening {"role":"assistant","content":""} */
        /* the usage-only chunk we asked for on the client's behalf */
        if (!ps->client_usage && !x->in && cJSON_GetArraySize(choices) == 0)
            forward = 0;
    }
    if (forward && (cm_buf_append_str(&x->out, "data: ") ||
                    cm_buf_append(&x->out, ev->data, ev->data_len) ||
                    cm_buf_append(&x->out, "\n\n", 2)))
        cp_relay_x_fail(x, CM_ERR_LIMIT);
    cJSON_Delete(d);
}

#define CHAT_EARLY_EOF_MSG                                                                         \
    "stream error: stream disconnected before completion: stream closed before [DONE]"

static int pass_stream_finish(struct cp_relay_x *x)
{
    struct pass *ps = x->st;
    if (ps->failed || ps->done)
        return CM_OK;
    if (ps->finished) /* some upstreams end without [DONE] */
        return cm_buf_append_str(&x->out, "data: [DONE]\n\n");
    cp_tr_early_eof_error(&x->err, CHAT_EARLY_EOF_MSG);
    (void)cp_tr_chat_emit_error(&x->err, &x->out);
    return CM_ERR_TIMEOUT;
}

static int pass_stream_usage(struct cp_relay_x *x, struct cp_tr_usage *u)
{
    struct pass *ps = x->st;
    if (!ps->have_usage)
        return CM_ERR_NOTFOUND;
    *u = ps->usage;
    return CM_OK;
}

static void pass_stream_cleanup(struct cp_relay_x *x)
{
    cm_free(x->st);
    x->st = NULL;
}

/* non-stream: the chat.completion as it came */
static int pass_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                          size_t *out_len, struct cp_tr_usage *u)
{
    cJSON *d = NULL;
    int rc = cm_json_parse(body, len, NULL, &d, NULL);
    if (rc || !cJSON_IsObject(d) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(d, "choices"))) {
        cJSON_Delete(d);
        cp_tr_err_set(&x->err, CM_ERR_UPSTREAM, 502, "", "server_error", "bad_upstream_answer",
                      "the upstream answer is not a chat.completion");
        return CM_ERR_UPSTREAM;
    }
    (void)cp_openai_usage(d, u);
    cJSON_Delete(d);
    if (!(*out = cm_strndup(body, len)))
        return CM_ERR_NOMEM;
    *out_len = len;
    return CM_OK;
}

/* ---- Qwen ---- */

static struct cp_qwen_limiter *qwen_limiter;
static pthread_once_t qwen_once = PTHREAD_ONCE_INIT;

static void qwen_limiter_init(void)
{
    (void)cp_qwen_limiter_new(&qwen_limiter);
}

static int qwen_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    return prepare_kind(x, QWEN, e);
}

static int qwen_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                      struct cp_upreq *out)
{
    const char *const *n, *const *v;
    size_t nh;
    char *b = NULL;
    int rc = body_for(x, c);
    if (rc)
        return rc;
    if ((rc = cp_qwen_base(c->af ? c->af->resource_url : NULL, base, &b)))
        return rc;
    hdrs_of(c, &n, &v, &nh);
    rc = cp_qwen_build(b, c->access_token, x->stream, n, v, nh, out);
    cm_free(b);
    return rc;
}

static void qwen_outcome(const struct cm_httpc_head *head, long status, const char *body,
                         size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    cp_qwen_outcome(status, body, len, head ? cm_httpc_head_get(head, "retry-after") : NULL, now_s,
                    o);
}

/* 60 requests per 60 s per credential, before any upstream call (spec 3.4(d)) */
static int qwen_admit(struct cp_relay_x *x, const struct cp_authstore_cred *c, int64_t now_ms,
                      struct cp_sched_outcome *o)
{
    int64_t ra = 0;
    pthread_once(&qwen_once, qwen_limiter_init);
    if (!qwen_limiter || cp_qwen_limiter_take(qwen_limiter, c->id, now_ms, &ra) == CM_OK)
        return CM_OK;
    memset(o, 0, sizeof *o);
    o->status = 429;
    o->has_hint = 1;
    o->retry_after_s = ra;
    cp_tr_err_set(&x->err, CM_ERR_LIMIT, 429, "", "rate_limit_exceeded", "rate_limit_exceeded",
                  "Qwen rate limit: 60 requests/minute exceeded, retry after %llds",
                  (long long)ra);
    return CM_ERR_LIMIT;
}

const struct cp_relay_fmt cp_fmt_chat_qwen = {
    "chat->qwen",       "qwen",            CP_PROVIDER_QWEN,    qwen_prepare,
    qwen_build,         qwen_outcome,      pass_stream_init,    pass_stream_event,
    pass_stream_finish, pass_stream_usage, pass_stream_cleanup, pass_aggregate,
    qwen_admit};

/* ---- iFlow ---- */

static int iflow_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    return prepare_kind(x, IFLOW, e);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int iflow_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                       struct cp_upreq *out)
{
    const char *const *n, *const *v;
    size_t nh;
    char sid[64];
    int rc = body_for(x, c);
    if (rc)
        return rc;
    cp_iflow_session_id(sid);
    hdrs_of(c, &n, &v, &nh);
    return cp_iflow_build(base, c->af && c->af->api_key ? c->af->api_key : c->access_token,
                          x->stream, sid, wall_ms(), n, v, nh, out);
}

static void iflow_outcome(const struct cm_httpc_head *head, long status, const char *body,
                          size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    cp_iflow_outcome(status, body, len, head ? cm_httpc_head_get(head, "retry-after") : NULL, now_s,
                     o);
}

const struct cp_relay_fmt cp_fmt_chat_iflow = {
    "chat->iflow",      "iflow",           CP_PROVIDER_IFLOW,   iflow_prepare,
    iflow_build,        iflow_outcome,     pass_stream_init,    pass_stream_event,
    pass_stream_finish, pass_stream_usage, pass_stream_cleanup, pass_aggregate,
    NULL};

/* ---- openai-compatibility ---- */

static int compat_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    return prepare_kind(x, COMPAT, e);
}

static int compat_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                        struct cp_upreq *out)
{
    const char *const *n, *const *v;
    size_t nh;
    int rc = body_for(x, c);
    if (rc)
        return rc;
    hdrs_of(c, &n, &v, &nh);
    return cp_compat_build(base, c->access_token, x->stream, n, v, nh, out);
}

static void compat_outcome(const struct cm_httpc_head *head, long status, const char *body,
                           size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    cp_compat_outcome(status, body, len, head ? cm_httpc_head_get(head, "retry-after") : NULL,
                      head ? cm_httpc_head_get(head, "x-ratelimit-reset-requests") : NULL, now_s,
                      o);
}

const struct cp_relay_fmt cp_fmt_chat_compat = {
    "chat->openai-compatibility",
    "openai-compatibility",
    CP_PROVIDER_CODEX, /* never used: every entry has its own base-url */
    compat_prepare,
    compat_build,
    compat_outcome,
    pass_stream_init,
    pass_stream_event,
    pass_stream_finish,
    pass_stream_usage,
    pass_stream_cleanup,
    pass_aggregate,
    NULL};
