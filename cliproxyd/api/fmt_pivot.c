/* SPDX-License-Identifier: MIT */
/*
 * fmt_pivot.c - every (client format, upstream) pair without a direct translator goes
 * through OpenAI Chat: the client's adapter (struct cp_relay_in, relay_fmt.h) turns its
 * request into a chat request, the chat format of the upstream (x->up: chat->codex,
 * chat->claude, chat->gemini, chat->qwen ...) does the rest, and the chat chunks it
 * writes are parsed back and handed to the adapter, which writes the client's events.
 * Non-stream answers go the same way as one chat.completion.
 *
 * The pivot request always asks for usage (stream_options.include_usage), so adapters
 * can put the token counts in their closing events.
 */
#include "api/relay_fmt.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/tr_common.h"

#include <stdio.h>
#include <string.h>

#define MID_MAX ((size_t)16 << 20)

struct cp_pivot {
    cJSON *chat;         /* the chat request x->client points at */
    void *in_st;         /* the adapter's stream state */
    struct cm_buf mid;   /* chat bytes x->up wrote, not parsed yet */
    struct cm_sse_parser parser;
    int parser_ready;
    int ended;           /* [DONE] or an error event went to the adapter */
    struct cp_relay_x *x; /* for the parser callback */
};

void cp_pivot_free(struct cp_relay_x *x)
{
    struct cp_pivot *pv = x->pv;
    if (!pv)
        return;
    if (pv->in_st)
        x->in->stream_free(pv->in_st);
    if (pv->parser_ready)
        cm_sse_parser_cleanup(&pv->parser);
    cm_buf_cleanup(&pv->mid);
    if (x->client == pv->chat)
        x->client = x->orig;
    cJSON_Delete(pv->chat);
    cm_free(pv);
    x->pv = NULL;
}

static int pivot_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    struct cp_pivot *pv;
    cJSON *chat = NULL, *so;
    int rc;

    if (!x->pv) {
        if (!(pv = cm_calloc(1, sizeof *pv)))
            goto nomem;
        cm_buf_init(&pv->mid, MID_MAX);
        pv->x = x;
        x->pv = pv;
        x->orig = x->client;
    }
    pv = x->pv;
    rc = x->in->request(x, &chat, e);
    if (rc)
        return rc;
    /* the pivot always asks for usage: adapters close with it */
    cJSON_DeleteItemFromObjectCaseSensitive(chat, "stream");
    cJSON_DeleteItemFromObjectCaseSensitive(chat, "stream_options");
    if (!cJSON_AddBoolToObject(chat, "stream", x->stream))
        goto nomem_chat;
    if (x->stream) {
        if (!(so = cJSON_AddObjectToObject(chat, "stream_options")) ||
            !cJSON_AddBoolToObject(so, "include_usage", 1))
            goto nomem_chat;
    }
    cJSON_Delete(pv->chat);
    pv->chat = chat;
    x->client = chat;
    return x->up->prepare(x, e);
nomem_chat:
    cJSON_Delete(chat);
nomem:
    cp_tr_server_error(e, CM_ERR_NOMEM, "out of memory");
    return CM_ERR_NOMEM;
}

static int pivot_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                       struct cp_upreq *out)
{
    return x->up->build(x, c, base, out);
}

static void pivot_outcome(const struct cm_httpc_head *head, long status, const char *body,
                          size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    (void)head, (void)status, (void)body, (void)len, (void)now_s, (void)o;
    /* never called: relay.c classifies failures with the upstream half's own outcome() */
}

/* one chat event x->up wrote -> the adapter */
static int on_chat_event(void *ud, const struct cm_sse_event *ev)
{
    struct cp_pivot *pv = ud;
    struct cp_relay_x *x = pv->x;
    cJSON *chunk = NULL;
    int rc = CM_OK;

    if (pv->ended)
        return 0;
    if (cp_tr_slice_eq(ev->data, ev->data_len, "[DONE]")) {
        pv->ended = 1;
        rc = x->in->end(pv->in_st, &x->out);
    } else if (cm_json_parse(ev->data, ev->data_len, NULL, &chunk, NULL) == CM_OK &&
               cJSON_IsObject(chunk)) {
        if (cJSON_GetObjectItemCaseSensitive(chunk, "error") &&
            !cJSON_GetObjectItemCaseSensitive(chunk, "choices")) {
            struct cp_tr_err e = x->err;
            if (!e.status)
                e.status = 502;
            pv->ended = 1;
            rc = x->in->fail(pv->in_st, &e, &x->out);
        } else {
            struct cp_tr_err e = {0};
            rc = x->in->chunk(pv->in_st, chunk, &x->out, &e);
            if (rc && !x->tr_rc) {
                x->err = e;
                x->tr_rc = rc;
            }
            rc = CM_OK;
        }
    }
    cJSON_Delete(chunk);
    if (rc)
        cp_relay_x_fail(x, rc);
    if (x->in->has_content(pv->in_st))
        x->content = 1;
    return 0;
}

static int pivot_stream_init(struct cp_relay_x *x)
{
    struct cp_pivot *pv = x->pv;
    int rc;

    if (pv->in_st) {
        x->in->stream_free(pv->in_st);
        pv->in_st = NULL;
    }
    if (pv->parser_ready)
        cm_sse_parser_cleanup(&pv->parser);
    pv->parser_ready = 0;
    pv->ended = 0;
    cm_buf_reset(&pv->mid);
    if ((rc = x->up->stream_init(x)))
        return rc;
    if ((rc = x->in->stream_new(x, &pv->in_st)))
        return rc;
    cm_sse_parser_init(&pv->parser, 4u << 20, on_chat_event, NULL, pv);
    pv->parser_ready = 1;
    return CM_OK;
}

/* runs f on x->up with x->out swapped for the mid buffer, then feeds what it wrote */
static int through_up(struct cp_relay_x *x, const struct cm_sse_event *ev, int finish)
{
    struct cp_pivot *pv = x->pv;
    struct cm_buf client = x->out;
    int content = x->content, rc = CM_OK;

    x->out = pv->mid;
    if (finish)
        rc = x->up->stream_finish(x);
    else
        x->up->stream_event(x, ev);
    pv->mid = x->out;
    x->out = client;
    x->content = content; /* the adapter says when the client has content */
    if (pv->mid.len) {
        (void)cm_sse_parser_feed(&pv->parser, pv->mid.data, pv->mid.len, NULL);
        cm_buf_reset(&pv->mid);
    }
    if (finish)
        cm_sse_parser_finish(&pv->parser, 0);
    return rc;
}

static void pivot_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    (void)through_up(x, ev, 0);
}

static int pivot_stream_finish(struct cp_relay_x *x)
{
    return through_up(x, NULL, 1);
}

static int pivot_stream_usage(struct cp_relay_x *x, struct cp_tr_usage *u)
{
    return x->up->stream_usage(x, u);
}

static void pivot_stream_cleanup(struct cp_relay_x *x)
{
    struct cp_pivot *pv = x->pv;
    x->up->stream_cleanup(x);
    if (pv && pv->in_st) {
        x->in->stream_free(pv->in_st);
        pv->in_st = NULL;
    }
}

static int pivot_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                           size_t *out_len, struct cp_tr_usage *u)
{
    char *txt = NULL;
    size_t tlen = 0;
    cJSON *completion = NULL, *res = NULL;
    int rc = x->up->aggregate(x, body, len, &txt, &tlen, u);

    if (rc)
        return rc;
    rc = cm_json_parse(txt, tlen, NULL, &completion, NULL);
    if (rc) {
        cp_tr_malformed_error(&x->err, "the chat answer");
        rc = CM_ERR_UPSTREAM;
        goto out;
    }
    if ((rc = x->in->response(x, completion, &res, &x->err)))
        goto out;
    rc = cm_json_print(res, out, out_len);
out:
    cJSON_Delete(res);
    cJSON_Delete(completion);
    cm_free(txt);
    return rc;
}

static int pivot_admit(struct cp_relay_x *x, const struct cp_authstore_cred *c, int64_t now_ms,
                       struct cp_sched_outcome *o)
{
    return x->up->admit ? x->up->admit(x, c, now_ms, o) : CM_OK;
}

const struct cp_relay_fmt cp_fmt_pivot = {
    "pivot",
    "",
    CP_PROVIDER_CODEX,
    pivot_prepare,
    pivot_build,
    pivot_outcome,
    pivot_stream_init,
    pivot_stream_event,
    pivot_stream_finish,
    pivot_stream_usage,
    pivot_stream_cleanup,
    pivot_aggregate,
    pivot_admit,
};
