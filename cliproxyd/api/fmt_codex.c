/* SPDX-License-Identifier: MIT */
/*
 * fmt_codex.c - the relay formats whose upstream is Codex (see relay_fmt.h): OpenAI Chat
 * clients (translated both ways by translate/chat_codex) and OpenAI Responses clients
 * (the body rules of translate/responses_codex; the events passed through as they come).
 * The Codex call itself and its error classification are providers/codex.
 */
#include "api/relay_fmt.h"

#include "api/fmt_chat_glue.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "providers/codex.h"
#include "translate/chat_codex.h"
#include "translate/messages_codex.h"
#include "translate/responses_codex.h"

#include <stdio.h>
#include <string.h>

/* ---- shared by every Codex format ---- */

/* the translated tree -> x->body, with the prompt-cache key the session header repeats */
static int codex_body(struct cp_relay_x *x, cJSON *codex, struct cp_tr_err *e)
{
    int rc = cm_json_set_string(codex, "prompt_cache_key", x->session);
    if (!rc)
        rc = cm_json_print(codex, &x->body, &x->body_len);
    cJSON_Delete(codex);
    if (rc) {
        e->status = 500;
        snprintf(e->msg, sizeof e->msg, "out of memory");
    }
    x->up_stream = 1; /* the backend only streams */
    return rc;
}

static int codex_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                       struct cp_upreq *out)
{
    return cp_codex_build(base, c, x->session, x->client_hdr, x->client_ua, out);
}

static void codex_outcome(const struct cm_httpc_head *head, long status, const char *body,
                          size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    cp_codex_outcome(status, body, len, head ? cm_httpc_head_get(head, "retry-after") : NULL, now_s,
                     o);
}

void cp_relay_x_fail(struct cp_relay_x *x, int rc)
{
    if (rc && !x->tr_rc)
        x->tr_rc = rc;
}

/* ---- OpenAI Chat clients ---- */

static int chat_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *codex = NULL;
    int rc = cp_tr_chat_codex_request(x->client, &codex, e);
    return rc ? rc : codex_body(x, codex, e);
}

CP_FMT_CHAT_GLUE(codex)

static void chat_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    cp_relay_x_fail(x, cp_tr_chat_codex_stream_event(x->st, ev->type, ev->type_len, ev->data,
                                                     ev->data_len, &x->out, &x->err));
    if (x->out.len)
        x->content = 1;
}

const struct cp_relay_fmt cp_fmt_chat_codex = {"chat->codex",
                                               "codex",
                                               CP_PROVIDER_CODEX,
                                               chat_prepare,
                                               codex_build,
                                               codex_outcome,
                                               chat_stream_init,
                                               chat_stream_event,
                                               chat_stream_finish,
                                               chat_stream_usage,
                                               chat_stream_cleanup,
                                               chat_aggregate,
                                               NULL};

/* ---- OpenAI Responses clients: Codex speaks their format ---- */

struct resp_state {
    int completed, failed, have_usage;
    long seq;
    struct cp_tr_usage usage;
};

static int resp_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    const cJSON *pck = cJSON_GetObjectItemCaseSensitive(x->client, "prompt_cache_key");
    cJSON *codex = NULL;
    int rc;
    if (cJSON_IsString(pck) && *pck->valuestring && strlen(pck->valuestring) < sizeof x->session)
        snprintf(x->session, sizeof x->session, "%s", pck->valuestring); /* client's own */
    rc = cp_tr_responses_codex_request(x->client, &codex, e);
    return rc ? rc : codex_body(x, codex, e);
}

static int resp_stream_init(struct cp_relay_x *x)
{
    x->st = cm_calloc(1, sizeof(struct resp_state));
    return x->st ? CM_OK : CM_ERR_NOMEM;
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
static void resp_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    struct resp_state *rs = x->st;
    cJSON *d = NULL;
    const cJSON *t;
    char type[96] = "";

    if (ev->type_len && ev->type_len < sizeof type)
        memcpy(type, ev->type, ev->type_len);
    if (cm_json_parse(ev->data, ev->data_len, NULL, &d, NULL) == CM_OK && !type[0] &&
        cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(d, "type")))
        snprintf(type, sizeof type, "%s", t->valuestring);
    if ((type[0] && cm_buf_appendf(&x->out, "event: %s\n", type)) ||
        cm_buf_append_str(&x->out, "data: ") || cm_buf_append(&x->out, ev->data, ev->data_len) ||
        cm_buf_append(&x->out, "\n\n", 2))
        cp_relay_x_fail(x, CM_ERR_LIMIT);
    rs->seq++;
    if (strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0) {
        rs->completed = 1;
        resp_usage_of(rs, cJSON_GetObjectItemCaseSensitive(d, "response"));
    } else if (strcmp(type, "response.failed") == 0 || strcmp(type, "error") == 0) {
        rs->failed = 1;
        if (!x->tr_rc) {
            x->tr_rc = CM_ERR_UPSTREAM;
            memset(&x->err, 0, sizeof x->err);
            x->err.status = 502;
            snprintf(x->err.type, sizeof x->err.type, "api_error");
            snprintf(x->err.msg, sizeof x->err.msg, "upstream %s", type);
        }
    } else if (strcmp(type, "response.created") != 0 && strcmp(type, "response.in_progress") != 0) {
        x->content = 1;
    }
    cJSON_Delete(d);
}

static int resp_stream_finish(struct cp_relay_x *x)
{
    struct resp_state *rs = x->st;
    if (rs->completed || rs->failed)
        return CM_OK;
    memset(&x->err, 0, sizeof x->err);
    x->err.status = 408;
    snprintf(x->err.type, sizeof x->err.type, "request_timeout");
    snprintf(x->err.code, sizeof x->err.code, "request_timeout");
    snprintf(x->err.msg, sizeof x->err.msg, "%s", CP_TR_CODEX_EARLY_EOF_MSG);
    (void)cm_buf_appendf(&x->out,
                         "event: error\ndata: {\"type\":\"error\",\"code\":\"request_timeout\","
                         "\"message\":\"%s\",\"sequence_number\":%ld}\n\n",
                         CP_TR_CODEX_EARLY_EOF_MSG, rs->seq);
    return CM_ERR_TIMEOUT;
}

static int resp_stream_usage(struct cp_relay_x *x, struct cp_tr_usage *u)
{
    struct resp_state *rs = x->st;
    if (!rs->have_usage)
        return CM_ERR_NOTFOUND;
    *u = rs->usage;
    return CM_OK;
}

static void resp_stream_cleanup(struct cp_relay_x *x)
{
    cm_free(x->st);
    x->st = NULL;
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

static int resp_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                          size_t *out_len, struct cp_tr_usage *u)
{
    struct cm_sse_parser p;
    struct agg a = {NULL, cJSON_CreateArray(), 0};
    struct resp_state rs = {0};
    int rc = CM_OK;

    if (!a.items)
        return CM_ERR_NOMEM;
    cm_sse_parser_init(&p, 8u << 20, agg_event, NULL, &a);
    cm_sse_parser_feed(&p, body ? body : "", len, NULL);
    cm_sse_parser_finish(&p, 0);
    cm_sse_parser_cleanup(&p);
    memset(&x->err, 0, sizeof x->err);
    if (!a.resp) {
        rc = a.failed ? CM_ERR_UPSTREAM : CM_ERR_TIMEOUT;
        x->err.status = a.failed ? 502 : 408;
        snprintf(x->err.code, sizeof x->err.code, a.failed ? "upstream_error" : "request_timeout");
        snprintf(x->err.msg, sizeof x->err.msg, "%s",
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
    rc = cm_json_print(a.resp, out, out_len);
out:
    cJSON_Delete(a.resp);
    cJSON_Delete(a.items);
    return rc;
}

const struct cp_relay_fmt cp_fmt_responses_codex = {"responses->codex",
                                                    "codex",
                                                    CP_PROVIDER_CODEX,
                                                    resp_prepare,
                                                    codex_build,
                                                    codex_outcome,
                                                    resp_stream_init,
                                                    resp_stream_event,
                                                    resp_stream_finish,
                                                    resp_stream_usage,
                                                    resp_stream_cleanup,
                                                    resp_aggregate,
                                                    NULL};

/* ---- Claude Messages clients ---- */

static int msg_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *codex = NULL;
    int rc = cp_tr_messages_codex_request(x->client, &codex, e);
    return rc ? rc : codex_body(x, codex, e);
}

static int msg_stream_init(struct cp_relay_x *x)
{
    struct cp_tr_messages_codex_stream *st = cm_calloc(1, sizeof *st);
    int rc;
    if (!st)
        return CM_ERR_NOMEM;
    rc = cp_tr_messages_codex_stream_init(st, x->client, x->msg_id, NULL);
    if (rc)
        cm_free(st);
    else
        x->st = st;
    return rc;
}

static void msg_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    cp_relay_x_fail(x, cp_tr_messages_codex_stream_event(x->st, ev->type, ev->type_len, ev->data,
                                                         ev->data_len, &x->out, &x->err));
    if (cp_tr_messages_codex_stream_has_content(x->st))
        x->content = 1;
}

static int msg_stream_finish(struct cp_relay_x *x)
{
    return cp_tr_messages_codex_stream_finish(x->st, &x->out, &x->err);
}

static int msg_stream_usage(struct cp_relay_x *x, struct cp_tr_usage *u)
{
    return cp_tr_messages_codex_stream_usage(x->st, u);
}

static void msg_stream_cleanup(struct cp_relay_x *x)
{
    if (x->st)
        cp_tr_messages_codex_stream_cleanup(x->st);
    cm_free(x->st);
    x->st = NULL;
}

static int msg_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                         size_t *out_len, struct cp_tr_usage *u)
{
    cJSON *res = NULL;
    int rc = cp_tr_messages_codex_aggregate(body ? body : "", len, x->client, x->msg_id, &res, u,
                                            &x->err);
    if (!rc)
        rc = cm_json_print(res, out, out_len);
    cJSON_Delete(res);
    return rc;
}

const struct cp_relay_fmt cp_fmt_messages_codex = {"messages->codex",
                                                   "codex",
                                                   CP_PROVIDER_CODEX,
                                                   msg_prepare,
                                                   codex_build,
                                                   codex_outcome,
                                                   msg_stream_init,
                                                   msg_stream_event,
                                                   msg_stream_finish,
                                                   msg_stream_usage,
                                                   msg_stream_cleanup,
                                                   msg_aggregate,
                                                   NULL};
