/* SPDX-License-Identifier: MIT */
/*
 * fmt_gemini.c - the relay formats whose upstream is Gemini (see relay_fmt.h), on a
 * Gemini CLI login (Code Assist v1internal, the {model, project, request} envelope with
 * the credential's project) or a gemini-api-key entry (the public API, no envelope):
 *  - OpenAI Chat clients, translated both ways by translate/chat_gemini;
 *  - Gemini clients, passed through: the envelope added per credential, the CLI's
 *    {"response": ...} wrapper taken off the answer, usage and the end watched;
 *  - countTokens for Gemini clients.
 * The call itself and its error classification are providers/gemini.
 */
#include "api/relay_fmt.h"

#include "api/fmt_chat_glue.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "providers/gemini.h"
#include "translate/chat_gemini.h"
#include "translate/tr_common.h"

#include <stdio.h>
#include <string.h>

/* ---- shared by every Gemini format ---- */

static int api_key_cred(const struct cp_authstore_cred *c)
{
    return c->af && c->af->key_entry;
}

/* x->raw (the request without envelope) -> x->body for credential c */
static int wrap(struct cp_relay_x *x, const struct cp_authstore_cred *c, enum cp_gemini_action a)
{
    cJSON *env = NULL;
    char *head = NULL;
    size_t hlen = 0;
    int rc = CM_OK;

    cm_free(x->body);
    x->body = NULL;
    if (api_key_cred(c)) { /* the public API takes the request as it is */
        if (!(x->body = cm_strndup(x->raw, x->raw_len)))
            return CM_ERR_NOMEM;
        x->body_len = x->raw_len;
        return CM_OK;
    }
    /* {"model":..,"project":..,"request":<raw>}; countTokens: {"request":<raw>} */
    if (!(env = cJSON_CreateObject()) ||
        (a != CP_GEMINI_COUNT &&
         (!cJSON_AddStringToObject(env, "model",
                                   x->up_model ? x->up_model
                                   : x->extra  ? x->extra
                                               : x->model) ||
          !cJSON_AddStringToObject(env, "project",
                                   c->af && c->af->project_id ? c->af->project_id : ""))) ||
        (rc = cm_json_print(env, &head, &hlen))) {
        rc = rc ? rc : CM_ERR_NOMEM;
        goto out;
    }
    /* head is "{...}": splice the request in before its closing brace */
    x->body_len = hlen - 1 + (hlen > 2 ? 1 : 0) + strlen("\"request\":") + x->raw_len + 1;
    if (!(x->body = cm_malloc(x->body_len + 1))) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    snprintf(x->body, x->body_len + 1, "%.*s%s\"request\":%.*s}", (int)(hlen - 1), head,
             hlen > 2 ? "," : "", (int)x->raw_len, x->raw);
out:
    cJSON_Delete(env);
    cm_free(head);
    return rc;
}

static enum cp_gemini_action action_of(const struct cp_relay_x *x)
{
    return x->up_stream ? CP_GEMINI_STREAM : CP_GEMINI_GENERATE;
}

static int gemini_build_action(struct cp_relay_x *x, const struct cp_authstore_cred *c,
                               const char *base, enum cp_gemini_action a, struct cp_upreq *out)
{
    struct cp_gemini_target t = {0};
    int rc = wrap(x, c, a);
    if (rc)
        return rc;
    t.base = base;
    t.api_key = api_key_cred(c);
    t.secret = c->access_token;
    t.model = (x->up_model ? x->up_model : x->extra ? x->extra : x->model);
    t.action = a;
    if (c->af) {
        t.hdr_names = (const char *const *)c->af->header_names;
        t.hdr_values = (const char *const *)c->af->header_values;
        t.n_hdrs = c->af->n_headers;
    }
    return cp_gemini_build(&t, out);
}

static int gemini_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                        struct cp_upreq *out)
{
    return gemini_build_action(x, c, base, action_of(x), out);
}

static void gemini_outcome(const struct cm_httpc_head *head, long status, const char *body,
                           size_t len, int64_t now_s, struct cp_sched_outcome *o)
{
    cp_gemini_outcome(status, body, len, head ? cm_httpc_head_get(head, "retry-after") : NULL,
                      now_s, o);
}

/* the Gemini request tree (consumed) -> x->raw with the provider's body rules; the base
 * model (owned) kept in x->extra for the envelope and the URL */
static int gemini_raw(struct cp_relay_x *x, cJSON *req, char *base_model, enum cp_gemini_action a,
                      struct cp_tr_err *e)
{
    int rc;
    cm_free(x->extra);
    x->extra = base_model;
    rc = cp_gemini_body(req, x->extra ? x->extra : x->model, NULL, a, &x->raw, &x->raw_len);
    if (rc)
        cp_tr_server_error(e, rc, "cannot build the upstream request");
    return rc;
}

/* ---- OpenAI Chat clients ---- */

static int chat_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *g = NULL;
    char *base = NULL;
    int rc = cp_tr_chat_gemini_request(x->client, &g, &base, e);
    if (rc)
        return rc;
    x->up_stream = x->stream;
    return gemini_raw(x, g, base, action_of(x), e);
}

CP_FMT_CHAT_GLUE(gemini)
CP_FMT_CHAT_EVENT(gemini)

const struct cp_relay_fmt cp_fmt_chat_gemini = {"chat->gemini",
                                                "gemini",
                                                CP_PROVIDER_GEMINI,
                                                chat_prepare,
                                                gemini_build,
                                                gemini_outcome,
                                                chat_stream_init,
                                                chat_stream_event,
                                                chat_stream_finish,
                                                chat_stream_usage,
                                                chat_stream_cleanup,
                                                chat_aggregate,
                                                NULL};

/* ---- Gemini clients: passthrough ---- */

struct pass {
    struct cp_tr_usage usage;
    int have_usage, finished, failed;
};

/* the client's body: raw, or wrapped as Gemini CLI sends it ({"request": ...}) */
static int pass_request(const struct cp_relay_x *x, cJSON **out, struct cp_tr_err *e)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(x->client, "request");
    *out = cJSON_Duplicate(cJSON_IsObject(in) ? in : x->client, 1);
    if (!*out) {
        cp_tr_server_error(e, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    if (!cJSON_GetObjectItemCaseSensitive(*out, "contents")) {
        cJSON_Delete(*out);
        *out = NULL;
        cp_tr_err_set(e, CM_ERR_INVAL, 400, "contents", "invalid_request_error", NULL,
                      "contents: required");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

/* the level a "(suffix)" names -> thinkingConfig (spec 5.1; the suffix wins) */
static int apply_suffix(struct cp_relay_x *x, cJSON *req)
{
    static const struct {
        const char *level;
        int budget;
    } budgets[] = {{"none", 0},     {"minimal", 512}, {"low", 1024},   {"medium", 8192},
                   {"high", 24576}, {"xhigh", 32768}, {"max", 128000}, {"auto", -1}};
    char *base = NULL;
    const char *effort = NULL;
    cJSON *gc, *tc;
    int budget = 0, rc;

    if (!x->gemini_model || cp_tr_codex_split_model(x->gemini_model, &base, &effort, NULL) != CM_OK)
        return CM_OK;
    cm_free(base);
    if (!effort)
        return CM_OK;
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++)
        if (strcmp(budgets[i].level, effort) == 0)
            budget = budgets[i].budget;
    if (!(gc = cJSON_GetObjectItemCaseSensitive(req, "generationConfig")) &&
        !(gc = cJSON_AddObjectToObject(req, "generationConfig")))
        return CM_ERR_NOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(gc, "thinkingConfig");
    if (!(tc = cJSON_AddObjectToObject(gc, "thinkingConfig")) ||
        !cJSON_AddNumberToObject(tc, "thinkingBudget", budget))
        return CM_ERR_NOMEM;
    rc = budget ? (cJSON_AddBoolToObject(tc, "includeThoughts", 1) ? CM_OK : CM_ERR_NOMEM) : CM_OK;
    return rc;
}

static int pass_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *req = NULL;
    int rc = pass_request(x, &req, e);
    if (rc)
        return rc;
    if (apply_suffix(x, req)) {
        cJSON_Delete(req);
        cp_tr_server_error(e, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    x->up_stream = x->stream;
    return gemini_raw(x, req, NULL, action_of(x), e);
}

static int pass_stream_init(struct cp_relay_x *x)
{
    x->st = cm_calloc(1, sizeof(struct pass));
    return x->st ? CM_OK : CM_ERR_NOMEM;
}

static void pass_error(struct cp_relay_x *x, unsigned status, const char *msg)
{
    cp_tr_err_set(&x->err, CM_ERR_UPSTREAM, status, "", cp_tr_type_for_status(status), NULL, "%s",
                  msg);
    cp_relay_x_fail(x, status == 408 ? CM_ERR_TIMEOUT : CM_ERR_UPSTREAM);
}

/* one upstream event -> "data: <the response without the CLI wrapper>" */
static void pass_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)
{
    struct pass *ps = x->st;
    cJSON *d = NULL, *inner;
    const cJSON *er, *cand;
    char *txt = NULL;
    size_t len = 0;

    if (ps->failed || cm_json_parse(ev->data, ev->data_len, NULL, &d, NULL) != CM_OK ||
        !cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return;
    }
    inner = cJSON_GetObjectItemCaseSensitive(d, "response");
    if (!cJSON_IsObject(inner))
        inner = d;
    if ((er = cJSON_GetObjectItemCaseSensitive(inner, "error"))) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(er, "code");
        ps->failed = 1;
        pass_error(x, cJSON_IsNumber(code) ? (unsigned)code->valuedouble : 502,
                   cp_tr_str_member(er, "message", "upstream error event"));
        (void)cm_buf_append_str(&x->out, "event: error\ndata: ");
    } else {
        cand = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(inner, "candidates"), 0);
        if (cJSON_GetObjectItemCaseSensitive(cand, "content"))
            x->content = 1;
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cand, "finishReason")))
            ps->finished = 1;
        if (cp_gemini_usage(inner, &ps->usage) == CM_OK)
            ps->have_usage = 1;
        (void)cm_buf_append_str(&x->out, "data: ");
    }
    if (cm_json_print(inner, &txt, &len) || cm_buf_append(&x->out, txt, len) ||
        cm_buf_append(&x->out, "\n\n", 2))
        cp_relay_x_fail(x, CM_ERR_LIMIT);
    cm_free(txt);
    cJSON_Delete(d);
}

#define GEMINI_EARLY_EOF_MSG                                                                       \
    "stream error: stream disconnected before completion: stream closed before finishReason"

static int pass_stream_finish(struct cp_relay_x *x)
{
    struct pass *ps = x->st;
    if (ps->finished || ps->failed)
        return CM_OK;
    cp_tr_early_eof_error(&x->err, GEMINI_EARLY_EOF_MSG);
    (void)cm_buf_appendf(&x->out,
                         "event: error\ndata: {\"error\":{\"code\":408,\"message\":\"%s\","
                         "\"status\":\"DEADLINE_EXCEEDED\"}}\n\n",
                         GEMINI_EARLY_EOF_MSG);
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

/* non-stream: the answer without the CLI wrapper */
static int pass_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                          size_t *out_len, struct cp_tr_usage *u)
{
    cJSON *d = NULL, *inner;
    int rc = cm_json_parse(body, len, NULL, &d, NULL);

    if (rc || !cJSON_IsObject(d)) {
        cJSON_Delete(d);
        pass_error(x, 502, "the upstream answer is not a Gemini response");
        return CM_ERR_UPSTREAM;
    }
    inner = cJSON_GetObjectItemCaseSensitive(d, "response");
    if (!cJSON_IsObject(inner))
        inner = d;
    (void)cp_gemini_usage(inner, u);
    rc = cm_json_print(inner, out, out_len);
    cJSON_Delete(d);
    return rc;
}

const struct cp_relay_fmt cp_fmt_gemini_gemini = {"gemini->gemini",
                                                  "gemini",
                                                  CP_PROVIDER_GEMINI,
                                                  pass_prepare,
                                                  gemini_build,
                                                  gemini_outcome,
                                                  pass_stream_init,
                                                  pass_stream_event,
                                                  pass_stream_finish,
                                                  pass_stream_usage,
                                                  pass_stream_cleanup,
                                                  pass_aggregate,
                                                  NULL};

/* ---- countTokens (Gemini clients on Gemini) ---- */

static int count_prepare(struct cp_relay_x *x, struct cp_tr_err *e)
{
    cJSON *req = NULL;
    int rc = pass_request(x, &req, e);
    if (rc)
        return rc;
    cJSON_DeleteItemFromObjectCaseSensitive(req, "generationConfig");
    cJSON_DeleteItemFromObjectCaseSensitive(req, "safetySettings");
    x->up_stream = 0;
    return gemini_raw(x, req, NULL, CP_GEMINI_COUNT, e);
}

static int count_build(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                       struct cp_upreq *out)
{
    return gemini_build_action(x, c, base, CP_GEMINI_COUNT, out);
}

static int count_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,
                           size_t *out_len, struct cp_tr_usage *u)
{
    (void)u;
    return pass_aggregate(x, body, len, out, out_len, &(struct cp_tr_usage){0});
}

const struct cp_relay_fmt cp_fmt_count_gemini = {"gemini->gemini:count",
                                                 "gemini",
                                                 CP_PROVIDER_GEMINI,
                                                 count_prepare,
                                                 count_build,
                                                 gemini_outcome,
                                                 pass_stream_init,
                                                 pass_stream_event,
                                                 pass_stream_finish,
                                                 pass_stream_usage,
                                                 pass_stream_cleanup,
                                                 count_aggregate,
                                                 NULL};
