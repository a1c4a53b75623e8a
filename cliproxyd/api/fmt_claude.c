/* SPDX-License-Identifier: MIT */
/*
 * fmt_claude.c - the relay formats whose upstream is Claude (see relay_fmt.h): Claude
 * Messages clients (passed through: the body gets the Claude Code rules of
 * providers/claude, the events are relayed as they come while usage and the end are
 * watched) and OpenAI Chat clients (translated both ways by translate/chat_claude; the
 * upstream call always streams and is aggregated for non-stream clients).
 */
#include "api/relay_fmt.h"

#include "api/fmt_chat_glue.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "providers/claude.h"
#include "translate/chat_claude.h"
#include "translate/tr_common.h"

#include <stdio.h>
#include <string.h>

/* ---- shared by every Claude format ---- */

/* the Messages tree (consumed) -> signed bytes in x->body, the beta list in x->extra */
static int claude_body(struct cp_relay_x *x, cJSON *msgs, int from_claude, struct cp_tr_err *e)
{
    struct cp_claude_prep p = {0};
    struct cp_claude_prepared out = {0};
    int rc;

    p.client_ua = x->client_ua;
    p.client_beta = x->client_hdr;
    p.client_stream = x->stream;
    p.from_claude = from_claude;
    p.oauth = 1; /* auth-dir credentials are Claude Code OAuth logins */
    rc = cp_claude_prepare(msgs, &p, &out, e);
    cJSON_Delete(msgs);
    if (rc)
        return rc;
    x->body = out.body;
    x->body_len = out.len;
    x->extra = out.betas;
    x->up_stream = out.stream;
    out.body = NULL;
    out.betas = NULL;
    cp_claude_prepared_cleanup(&out);
    return CM_OK;
}

static int claude_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                        struct cp_upreq *out)
{
    struct cp_claude_hdrs h = {0};
    h.betas = x->extra;
    h.stream = x->up_stream;
    h.client_ua = x->client_ua;
    return cp_claude_build(base, c, &h, out);
}

static void claude_outcome(const struct cm_httpc_head *head, long status, const char *body,
                           size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    cp_claude_outcome(status, head, body, len, now_s, o);
}

/* ---- Claude Messages clients: passthrough ---- */

struct pass {
    struct cp_claude_usage usage;
    int have_usage, stopped, failed;
};

static int pass_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *dup = cJSON_Duplicate(x->client, 1);
    if (!dup) {
        e->status = 500;
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return CM_ERR_NOMEM;
    }
    return claude_body(x, dup, 1, e);
}

static int pass_stream_init(struct cp_relay_x *x)
{
    x->st = cm_calloc(1, sizeof(struct pass));
    return x->st ? CM_OK : CM_ERR_NOMEM;
}

static void set_err(struct cp_relay_x *x, unsigned status, const char *type, const char *msg)
{
    memset(&x->err, 0, sizeof x->err);
    x->err.status = status;
    snprintf(x->err.type, sizeof x->err.type, "%s", type);
    snprintf(x->err.msg, sizeof x->err.msg, "%s", msg);
}

/* one upstream event, re-framed verbatim; remembers usage, the end and failures */
static void pass_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    struct pass *ps = x->st;
    cJSON *d = NULL;
    const cJSON *t;
    char type[64] = "";

    if (ev->type_len && ev->type_len < sizeof type)
        memcpy(type, ev->type, ev->type_len);
    if (cm_json_parse(ev->data, ev->data_len, NULL, &d, NULL) == CM_OK && !type[0] &&
        cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(d, "type")) &&
        strlen(t->valuestring) < sizeof type)
        snprintf(type, sizeof type, "%s", t->valuestring);
    if ((type[0] && cm_buf_appendf(&x->out, "event: %s\n", type)) ||
        cm_buf_append_str(&x->out, "data: ") || cm_buf_append(&x->out, ev->data, ev->data_len) ||
        cm_buf_append(&x->out, "\n\n", 2))
        cp_relay_x_fail(x, CM_ERR_LIMIT);
    if (d && cp_claude_usage_feed(&ps->usage, d))
        ps->have_usage = 1;
    if (strcmp(type, "message_stop") == 0) {
        ps->stopped = 1;
    } else if (strcmp(type, "error") == 0) {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(d, "error");
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(er, "type");
        const cJSON *em = cJSON_GetObjectItemCaseSensitive(er, "message");
        const char *ty = cJSON_IsString(et) ? et->valuestring : "api_error";
        int st = cp_claude_error_status(ty);
        ps->failed = 1;
        if (!x->tr_rc) {
            x->tr_rc = CM_ERR_UPSTREAM;
            set_err(x, st == 529 ? 503 : (unsigned)st, ty,
                    cJSON_IsString(em) ? em->valuestring : "upstream error event");
        }
    } else if (strcmp(type, "content_block_delta") == 0 ||
               strcmp(type, "content_block_start") == 0) {
        x->content = 1;
    }
    cJSON_Delete(d);
}

static int pass_stream_finish(struct cp_relay_x *x)
{
    struct pass *ps = x->st;
    if (ps->stopped || ps->failed)
        return CM_OK;
    set_err(x, 408, "request_timeout", CP_TR_CLAUDE_EARLY_EOF_MSG);
    snprintf(x->err.code, sizeof x->err.code, "request_timeout");
    (void)cm_buf_appendf(&x->out,
                         "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                         "\"api_error\",\"message\":\"%s\"}}\n\n",
                         CP_TR_CLAUDE_EARLY_EOF_MSG);
    return CM_ERR_TIMEOUT;
}

static int pass_stream_usage(struct cp_relay_x *x, struct cp_tr_usage *u)
{
    struct pass *ps = x->st;
    if (!ps->have_usage)
        return CM_ERR_NOTFOUND;
    cp_claude_usage_result(&ps->usage, u);
    return CM_OK;
}

static void pass_stream_cleanup(struct cp_relay_x *x)
{
    cm_free(x->st);
    x->st = NULL;
}

/* non-stream: the upstream's message object, as it is */
static int pass_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                          size_t *out_len, struct cp_tr_usage *u)
{
    struct cp_claude_usage acc = {0};
    cJSON *m = NULL;
    const cJSON *t;
    int rc = cm_json_parse(body, len, NULL, &m, NULL);

    if (rc || !cJSON_IsObject(m) ||
        !cJSON_IsString(t = cJSON_GetObjectItemCaseSensitive(m, "type")) ||
        strcmp(t->valuestring, "message") != 0) {
        set_err(x, 502, "api_error", "the upstream answer is not a Claude message");
        cJSON_Delete(m);
        return CM_ERR_UPSTREAM;
    }
    cp_claude_usage_feed(&acc, m);
    cp_claude_usage_result(&acc, u);
    cJSON_Delete(m);
    *out = cm_strndup(body, len);
    if (!*out)
        return CM_ERR_NOMEM;
    *out_len = len;
    return CM_OK;
}

const struct cp_relay_fmt cp_fmt_messages_claude = {"messages->claude",
                                                    "claude",
                                                    CP_PROVIDER_CLAUDE,
                                                    pass_prepare,
                                                    claude_build,
                                                    claude_outcome,
                                                    pass_stream_init,
                                                    pass_stream_event,
                                                    pass_stream_finish,
                                                    pass_stream_usage,
                                                    pass_stream_cleanup,
                                                    pass_aggregate,
                                                    NULL};

/* ---- OpenAI Chat clients ---- */

static int chat_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *msgs = NULL;
    int rc = cp_tr_chat_claude_request(x->client, &msgs, e);
    return rc ? rc : claude_body(x, msgs, 0, e);
}

CP_FMT_CHAT_GLUE(claude)
CP_FMT_CHAT_EVENT(claude)

const struct cp_relay_fmt cp_fmt_chat_claude = {"chat->claude",
                                                "claude",
                                                CP_PROVIDER_CLAUDE,
                                                chat_prepare,
                                                claude_build,
                                                claude_outcome,
                                                chat_stream_init,
                                                chat_stream_event,
                                                chat_stream_finish,
                                                chat_stream_usage,
                                                chat_stream_cleanup,
                                                chat_aggregate,
                                                NULL};

/* ---- count_tokens (Claude Messages clients on Claude) ---- */

static int count_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *dup = cJSON_Duplicate(x->client, 1);
    int rc;
    if (!dup) {
        cp_tr_server_error(e, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(dup, "stream");
    cJSON_DeleteItemFromObjectCaseSensitive(dup, "max_tokens");
    rc = cm_json_print(dup, &x->body, &x->body_len);
    cJSON_Delete(dup);
    if (rc)
        cp_tr_server_error(e, rc, "out of memory");
    x->up_stream = 0;
    return rc;
}

static int count_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                       struct cp_upreq *out)
{
    struct cp_claude_hdrs h = {0};
    int rc;
    h.client_ua = x->client_ua;
    h.betas = x->client_hdr;
    rc = cp_claude_build(base, c, &h, out);
    if (!rc)
        rc = cp_upreq_url(out, base && *base ? base : CP_CLAUDE_DEFAULT_BASE,
                          "/v1/messages/count_tokens?beta=true");
    return rc;
}

/* the upstream's {"input_tokens": N} as it is */
static int count_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                           size_t *out_len, struct cp_tr_usage *u)
{
    cJSON *m = NULL;
    (void)u;
    if (cm_json_parse(body, len, NULL, &m, NULL) != CM_OK ||
        !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "input_tokens"))) {
        cJSON_Delete(m);
        set_err(x, 502, "api_error", "the upstream count is not {\"input_tokens\": N}");
        return CM_ERR_UPSTREAM;
    }
    cJSON_Delete(m);
    if (!(*out = cm_strndup(body, len)))
        return CM_ERR_NOMEM;
    *out_len = len;
    return CM_OK;
}

const struct cp_relay_fmt cp_fmt_count_claude = {"messages->claude:count",
                                                 "claude",
                                                 CP_PROVIDER_CLAUDE,
                                                 count_prepare,
                                                 count_build,
                                                 claude_outcome,
                                                 pass_stream_init,
                                                 pass_stream_event,
                                                 pass_stream_finish,
                                                 pass_stream_usage,
                                                 pass_stream_cleanup,
                                                 count_aggregate,
                                                 NULL};
