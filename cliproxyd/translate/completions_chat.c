/* SPDX-License-Identifier: MIT */
/* completions_chat.c - legacy /v1/completions over the chat pivot; see completions_chat.h. */
#include "translate/completions_chat.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/chat_common.h"
#include "translate/tr_common.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BAD(field, ...)                                                                            \
    do {                                                                                           \
        cp_tr_err_set(err, CM_ERR_INVAL, 400, field, "invalid_request_error", NULL, __VA_ARGS__);  \
        rc = CM_ERR_INVAL;                                                                         \
        goto out;                                                                                  \
    } while (0)

/* members copied as they are */
static const char *const copied[] = {"model", "max_tokens",       "temperature",       "top_p",
                                     "stop",  "seed",             "presence_penalty",  "user",
                                     "stream", "frequency_penalty", "stream_options"};

int cp_tr_completions_chat_request(const cJSON *req, cJSON **chat, struct cp_tr_err *err)
{
    const cJSON *prompt, *v;
    cJSON *c = NULL, *msgs, *m;
    const char *text = NULL;
    int rc = CM_OK;

    if (!cJSON_IsObject(req))
        BAD("", "the request must be a JSON object");
    prompt = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    if (cJSON_IsString(prompt))
        text = prompt->valuestring;
    else if (cJSON_IsArray(prompt) && cJSON_GetArraySize(prompt) == 1 &&
             cJSON_IsString(cJSON_GetArrayItem(prompt, 0)))
        text = cJSON_GetArrayItem(prompt, 0)->valuestring;
    else if (cJSON_IsArray(prompt))
        BAD("prompt", "prompt: only one string prompt per request can be served (no batches, "
                      "no token ids)");
    else
        BAD("prompt", "prompt: required, a string");
    if ((v = cJSON_GetObjectItemCaseSensitive(req, "suffix")) && !cJSON_IsNull(v))
        BAD("suffix", "suffix: insertion is not supported by the upstream chat models");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "echo")))
        BAD("echo", "echo: echoing the prompt is not supported");
    if ((v = cJSON_GetObjectItemCaseSensitive(req, "logprobs")) && !cJSON_IsNull(v) &&
        !cJSON_IsFalse(v))
        BAD("logprobs", "logprobs: not supported by the upstream");
    if ((v = cJSON_GetObjectItemCaseSensitive(req, "best_of")) && cJSON_IsNumber(v) &&
        v->valuedouble > 1)
        BAD("best_of", "best_of: only 1 is supported");
    if ((v = cJSON_GetObjectItemCaseSensitive(req, "n")) && cJSON_IsNumber(v) && v->valuedouble > 1)
        BAD("n", "n: only one completion per request is supported");
    if ((v = cJSON_GetObjectItemCaseSensitive(req, "logit_bias")) && !cJSON_IsNull(v))
        BAD("logit_bias", "logit_bias: not supported by the upstream");

    if (!(c = cJSON_CreateObject()) || !(msgs = cJSON_AddArrayToObject(c, "messages")) ||
        !(m = cJSON_CreateObject()))
        goto nomem;
    cJSON_AddItemToArray(msgs, m);
    if (!cJSON_AddStringToObject(m, "role", "user") || !cJSON_AddStringToObject(m, "content", text))
        goto nomem;
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        cJSON *dup;
        if (!(v = cJSON_GetObjectItemCaseSensitive(req, copied[i])))
            continue;
        if (!(dup = cJSON_Duplicate(v, 1)))
            goto nomem;
        cJSON_AddItemToObject(c, copied[i], dup);
    }
    *chat = c;
    c = NULL;
out:
    cJSON_Delete(c);
    return rc;
nomem:
    cp_tr_server_error(err, CM_ERR_NOMEM, "out of memory");
    rc = CM_ERR_NOMEM;
    goto out;
}

struct cp_tr_completions_chat_stream {
    char *id, *model;
    int64_t created;
    bool include_usage, content, done;
    char finish[32];
    struct cp_tr_usage usage;
    bool have_usage;
};

int cp_tr_completions_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                      struct cp_tr_completions_chat_stream **out)
{
    struct cp_tr_completions_chat_stream *st = cm_calloc(1, sizeof *st);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");

    if (!st)
        return CM_ERR_NOMEM;
    st->id = cm_strdup(id ? id : "cmpl");
    st->model = cm_strdup(cp_tr_str_member(req, "model", ""));
    st->created = created;
    st->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    snprintf(st->finish, sizeof st->finish, "stop");
    if (!st->id || !st->model) {
        cp_tr_completions_chat_stream_free(st);
        return CM_ERR_NOMEM;
    }
    *out = st;
    return CM_OK;
}

void cp_tr_completions_chat_stream_free(struct cp_tr_completions_chat_stream *st)
{
    if (!st)
        return;
    cm_free(st->id);
    cm_free(st->model);
    cm_free(st);
}

/* {"id","object","created","model","choices":[{"text","index":0,"logprobs":null,
 *  "finish_reason"}]} with text / finish (either may be NULL) */
static cJSON *completion_obj(const struct cp_tr_completions_chat_stream *st, const char *model,
                             const char *text, const char *finish)
{
    cJSON *o = cJSON_CreateObject(), *choices, *c;
    if (!o || !cJSON_AddStringToObject(o, "id", st->id) ||
        !cJSON_AddStringToObject(o, "object", "text_completion") ||
        !cJSON_AddNumberToObject(o, "created", (double)st->created) ||
        !cJSON_AddStringToObject(o, "model", model) ||
        !(choices = cJSON_AddArrayToObject(o, "choices")) || !(c = cJSON_CreateObject()))
        goto fail;
    cJSON_AddItemToArray(choices, c);
    if (!cJSON_AddStringToObject(c, "text", text ? text : "") ||
        !cJSON_AddNumberToObject(c, "index", 0) || !cJSON_AddNullToObject(c, "logprobs") ||
        !(finish ? cJSON_AddStringToObject(c, "finish_reason", finish)
                 : cJSON_AddNullToObject(c, "finish_reason")))
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int add_usage(cJSON *o, const struct cp_tr_usage *u)
{
    cJSON *us = cJSON_AddObjectToObject(o, "usage");
    if (!us || !cJSON_AddNumberToObject(us, "prompt_tokens", (double)u->input) ||
        !cJSON_AddNumberToObject(us, "completion_tokens", (double)u->output) ||
        !cJSON_AddNumberToObject(us, "total_tokens",
                                 (double)(u->total ? u->total : u->input + u->output)))
        return CM_ERR_NOMEM;
    return CM_OK;
}

static int emit(cJSON *o, struct cm_buf *out)
{
    char *txt = NULL;
    size_t len = 0;
    int rc = o ? cm_json_print(o, &txt, &len) : CM_ERR_NOMEM;
    if (!rc)
        rc = cm_buf_append_str(out, "data: ");
    if (!rc)
        rc = cm_buf_append(out, txt, len);
    if (!rc)
        rc = cm_buf_append(out, "\n\n", 2);
    cm_free(txt);
    cJSON_Delete(o);
    return rc;
}

/* the usage of a chunk or completion: OpenAI names (also input/output_tokens) */
static bool read_usage(const cJSON *o, struct cp_tr_usage *u)
{
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(o, "usage"), *v;
    if (!cJSON_IsObject(us))
        return false;
    memset(u, 0, sizeof *u);
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(us, "prompt_tokens")) ||
        cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(us, "input_tokens")))
        u->input = (int64_t)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(us, "completion_tokens")) ||
        cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(us, "output_tokens")))
        u->output = (int64_t)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(us, "total_tokens")))
        u->total = (int64_t)v->valuedouble;
    return true;
}

static const char *finish_of(const char *f)
{
    /* text_completion knows stop, length and content_filter */
    return cp_tr_str_eq(f, "length") || cp_tr_str_eq(f, "content_filter") ? f : "stop";
}

int cp_tr_completions_chat_stream_chunk(struct cp_tr_completions_chat_stream *st,
                                        const cJSON *chunk, struct cm_buf *out,
                                        struct cp_tr_err *err)
{
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
    const char *text = cp_tr_str_member(delta, "content", NULL);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    int rc = CM_OK;

    if (st->done || !cJSON_IsObject(chunk))
        return CM_OK;
    if (read_usage(chunk, &st->usage))
        st->have_usage = true;
    if (cJSON_IsString(f))
        snprintf(st->finish, sizeof st->finish, "%s", finish_of(f->valuestring));
    if (text && *text) {
        st->content = true;
        rc = emit(completion_obj(st, cp_tr_str_member(chunk, "model", st->model), text, NULL), out);
        if (rc)
            cp_tr_server_error(err, rc, "cannot write the answer");
    }
    return rc;
}

int cp_tr_completions_chat_stream_end(struct cp_tr_completions_chat_stream *st, struct cm_buf *out)
{
    cJSON *u;
    int rc;
    if (st->done)
        return CM_OK;
    st->done = true;
    rc = emit(completion_obj(st, st->model, "", st->finish), out);
    if (!rc && st->include_usage) {
        u = completion_obj(st, st->model, "", NULL);
        if (u) {
            cJSON_DeleteItemFromObjectCaseSensitive(u, "choices");
            if (!cJSON_AddArrayToObject(u, "choices") || add_usage(u, &st->usage)) {
                cJSON_Delete(u);
                u = NULL;
            }
        }
        rc = emit(u, out);
    }
    return rc ? rc : cm_buf_append_str(out, "data: [DONE]\n\n");
}

int cp_tr_completions_chat_stream_fail(struct cp_tr_completions_chat_stream *st,
                                       const struct cp_tr_err *e, struct cm_buf *out)
{
    if (st->done)
        return CM_OK;
    st->done = true;
    return cp_tr_chat_emit_error(e, out);
}

bool cp_tr_completions_chat_stream_has_content(const struct cp_tr_completions_chat_stream *st)
{
    return st && st->content;
}

int cp_tr_completions_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                                    int64_t created, cJSON **out, struct cp_tr_err *err)
{
    struct cp_tr_completions_chat_stream st = {0};
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(completion, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    struct cp_tr_usage u = {0};
    cJSON *o;

    st.id = (char *)(uintptr_t)(id ? id : cp_tr_str_member(completion, "id", "cmpl"));
    st.created = created;
    o = completion_obj(&st, cp_tr_str_member(completion, "model", cp_tr_str_member(req, "model", "")),
                       cp_tr_str_member(msg, "content", ""),
                       finish_of(cp_tr_str_member(ch, "finish_reason", "stop")));
    (void)read_usage(completion, &u);
    if (!o || add_usage(o, &u)) {
        cJSON_Delete(o);
        cp_tr_server_error(err, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    *out = o;
    return CM_OK;
}
