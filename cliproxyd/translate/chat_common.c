/* SPDX-License-Identifier: MIT */
/*
 * chat_common.c - the OpenAI Chat side every chat translator shares (see the header): how a
 * client error is filled, the request checks that do not depend on the upstream, reading
 * upstream event data, and the exact chunk / completion shapes the clients get. Keeping
 * them here is what makes chat_codex.c and chat_claude.c answer clients identically.
 */
#include "translate/chat_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool str_eq(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

/* ---- errors ---- */

void cp_tr_chat_err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field,
                        const char *type, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    memset(e, 0, sizeof(*e));
    e->rc = rc;
    e->status = status;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    snprintf(e->type, sizeof(e->type), "%s", type ? type : "");
    snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

int cp_tr_chat_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je)
{
    if (rc == CM_ERR_NOMEM) {
        cp_tr_chat_err_set(e, rc, 500, "", "server_error", "", "out of memory");
        return rc;
    }
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INVAL; /* a missing required field is a bad request to our callers */
    cp_tr_chat_err_set(e, rc, 400, je->field, "invalid_request_error", "", "%s",
                       je->msg[0] ? je->msg : "invalid request");
    return rc;
}

const char *cp_tr_chat_type_for_status(unsigned status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
        return "timeout_error";
    case 429:
        return "rate_limit_error";
    default:
        return "server_error";
    }
}

void cp_tr_chat_malformed_error(struct cp_tr_err *e, const char *what)
{
    cp_tr_chat_err_set(e, CM_ERR_UPSTREAM, 502, "", "server_error", "bad_upstream_event",
                       "upstream sent a malformed event: %s", what);
}

void cp_tr_chat_early_eof_error(struct cp_tr_err *e, const char *msg)
{
    cp_tr_chat_err_set(e, CM_ERR_TIMEOUT, 408, "", "timeout_error", "request_timeout", "%s", msg);
}

/* ---- request checks ---- */

int cp_tr_chat_check_unexpressible(const cJSON *req, const char *upstream, struct cm_json_err *je)
{
    const cJSON *v;
    int64_t n = 1;
    bool b = false;
    int rc;

    if ((rc = cm_json_opt_int64(req, "n", 1, 128, 1, &n, je)) != CM_OK)
        return rc;
    if (n != 1) {
        cm_json_err_set(je, CM_ERR_INVAL, "n", "must be 1 (%s returns one choice)", upstream);
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_opt_bool(req, "logprobs", false, &b, je)) != CM_OK)
        return rc;
    if (b) {
        cm_json_err_set(je, CM_ERR_INVAL, "logprobs", "is not supported by this model");
        return CM_ERR_INVAL;
    }
    v = cJSON_GetObjectItemCaseSensitive(req, "audio");
    if (v && !cJSON_IsNull(v)) {
        cm_json_err_set(je, CM_ERR_INVAL, "audio", "audio output is not supported");
        return CM_ERR_INVAL;
    }
    v = cJSON_GetObjectItemCaseSensitive(req, "modalities");
    if (cJSON_IsArray(v)) {
        const cJSON *m;
        cJSON_ArrayForEach(m, v)
        {
            if (!cJSON_IsString(m) || !str_eq(m->valuestring, "text")) {
                cm_json_err_set(je, CM_ERR_INVAL, "modalities", "only 'text' is supported");
                return CM_ERR_INVAL;
            }
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(req, "functions") ||
        cJSON_GetObjectItemCaseSensitive(req, "function_call")) {
        cm_json_err_set(je, CM_ERR_INVAL,
                        cJSON_GetObjectItemCaseSensitive(req, "functions") ? "functions"
                                                                           : "function_call",
                        "is not supported (legacy functions API; use tools)");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

int cp_tr_chat_content_text(const cJSON *content, struct cm_buf *b, struct cm_json_err *je)
{
    const cJSON *p;
    size_t i = 0;
    int rc;

    if (!content || cJSON_IsNull(content))
        return CM_OK;
    if (cJSON_IsString(content))
        return cm_buf_append_str(b, content->valuestring) ? CM_ERR_NOMEM : CM_OK;
    if (!cJSON_IsArray(content)) {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of parts");
        return CM_ERR_INVAL;
    }
    cJSON_ArrayForEach(p, content)
    {
        const char *type = NULL, *text = NULL;
        if ((rc = cm_json_get_string(p, "type", &type, je)) != CM_OK ||
            (str_eq(type, "text") && (rc = cm_json_get_string(p, "text", &text, je)) != CM_OK)) {
            cm_json_err_scope(je, "content[%zu]", i);
            return rc;
        }
        if (!str_eq(type, "text")) {
            cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported content part '%.32s' here",
                            type);
            cm_json_err_scope(je, "content[%zu]", i);
            return CM_ERR_INVAL;
        }
        if (cm_buf_append_str(b, text))
            return CM_ERR_NOMEM;
        i++;
    }
    return CM_OK;
}

int cp_tr_chat_image_url(const cJSON *p, const char **url, const char **detail,
                         struct cm_json_err *je)
{
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(p, "image_url");
    cJSON *sub = NULL;
    int rc;

    *detail = NULL;
    if (cJSON_IsString(iu)) {
        *url = iu->valuestring;
        return CM_OK;
    }
    if ((rc = cm_json_get_object(p, "image_url", &sub, je)) != CM_OK)
        return rc;
    if ((rc = cm_json_get_string(sub, "url", url, je)) != CM_OK ||
        (rc = cm_json_opt_string(sub, "detail", NULL, detail, je)) != CM_OK)
        cm_json_err_scope(je, "image_url");
    return rc;
}

int cp_tr_chat_file_part(const cJSON *p, const char **data, const char **file_id,
                         const char **filename, struct cm_json_err *je)
{
    cJSON *sub = NULL;
    int rc;

    if ((rc = cm_json_get_object(p, "file", &sub, je)) != CM_OK)
        return rc;
    if ((rc = cm_json_opt_string(sub, "file_data", NULL, data, je)) != CM_OK ||
        (rc = cm_json_opt_string(sub, "file_id", NULL, file_id, je)) != CM_OK ||
        (rc = cm_json_opt_string(sub, "filename", NULL, filename, je)) != CM_OK) {
        cm_json_err_scope(je, "file");
        return rc;
    }
    if (!*data && !*file_id) {
        cm_json_err_set(je, CM_ERR_INVAL, "file", "needs file_data or file_id");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

/* ---- upstream events ---- */

int cp_tr_chat_parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                           cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err)
{
    struct cm_json_parse_opts opts = {.max_depth = 128};
    cJSON *o = NULL;
    int rc;

    rc = cm_json_parse(data ? data : "", data_len, &opts, &o, NULL);
    if (rc == CM_ERR_NOMEM) {
        cp_tr_chat_err_set(err, rc, 500, "", "server_error", "", "out of memory");
        return rc;
    }
    if (rc || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        cp_tr_chat_malformed_error(err,
                                   rc ? "data is not valid JSON" : "data is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    if (!type || !type_len || (type_len == 7 && memcmp(type, "message", 7) == 0)) {
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "type");
        type = cJSON_IsString(dt) ? dt->valuestring : "";
        type_len = strlen(type);
    }
    *ev = o;
    *t = type;
    *tlen = type_len;
    return CM_OK;
}

int cp_tr_chat_feed_sse(const char *sse, size_t len,
                        int (*fn)(void *ud, const struct cm_sse_event *ev), void *ud)
{
    struct cm_sse_parser p;
    int rc;

    cm_sse_parser_init(&p, 0, fn, NULL, ud);
    rc = cm_sse_parser_feed(&p, sse, len, NULL);
    if (rc == CM_OK)
        rc = cm_sse_parser_finish(&p, 0); /* an unterminated last event is a cut stream */
    cm_sse_parser_cleanup(&p);
    return rc;
}

/* ---- chunks ---- */

int cp_tr_chat_chunker_init(struct cp_tr_chat_chunker *ck, const cJSON *client_req, const char *id,
                            int64_t created)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(client_req, "model");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(client_req, "stream_options");
    struct cp_tr_chat_chunker c;

    if (!ck || !id)
        return CM_ERR_INVAL;
    memset(&c, 0, sizeof(c));
    c._created = created;
    c._include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    if (!(c._id = cm_strdup(id)) ||
        !(c._model = cm_strdup(cJSON_IsString(model) ? model->valuestring : ""))) {
        cp_tr_chat_chunker_cleanup(&c);
        return CM_ERR_NOMEM;
    }
    *ck = c;
    return CM_OK;
}

void cp_tr_chat_chunker_cleanup(struct cp_tr_chat_chunker *ck)
{
    if (!ck)
        return;
    cm_free(ck->_id);
    cm_free(ck->_model);
    ck->_id = ck->_model = NULL;
}

bool cp_tr_chat_chunker_ready(const struct cp_tr_chat_chunker *ck)
{
    return ck && ck->_id;
}

void cp_tr_chat_chunker_set_created(struct cp_tr_chat_chunker *ck, int64_t created)
{
    ck->_created = created;
}

int cp_tr_chat_chunker_set_model(struct cp_tr_chat_chunker *ck, const char *model)
{
    char *m;

    if (!model || !model[0])
        return CM_OK;
    if (!(m = cm_strdup(model)))
        return CM_ERR_NOMEM;
    cm_free(ck->_model);
    ck->_model = m;
    return CM_OK;
}

/* A chunk skeleton; *@p delta is choices[0].delta (untouched with @p no_choices). */
static int chunk_new(const struct cp_tr_chat_chunker *ck, bool no_choices, cJSON **chunk,
                     cJSON **delta)
{
    cJSON *c = NULL, *choices = NULL, *ch = NULL, *d = NULL;
    int rc;

    if ((rc = cm_json_new_object(&c)) || (rc = cm_json_set_string(c, "id", ck->_id)) ||
        (rc = cm_json_set_string(c, "object", "chat.completion.chunk")) ||
        (rc = cm_json_set_int64(c, "created", ck->_created)) ||
        (rc = cm_json_set_string(c, "model", ck->_model)) || (rc = cm_json_new_array(&choices)))
        goto out;
    if (!no_choices) {
        if ((rc = cm_json_new_object(&ch)) || (rc = cm_json_set_int64(ch, "index", 0)) ||
            (rc = cm_json_new_object(&d)))
            goto out;
        if (!ck->_role_sent && (rc = cm_json_set_string(d, "role", "assistant")))
            goto out;
        *delta = d;
        rc = cm_json_adopt(ch, "delta", &d);
        if (rc || (rc = cm_json_set_null(ch, "finish_reason")))
            goto out;
        rc = cm_json_adopt(choices, NULL, &ch);
        if (rc)
            goto out;
    }
    rc = cm_json_adopt(c, "choices", &choices);
    if (rc)
        goto out;
    *chunk = c;
    c = NULL;
out:
    cJSON_Delete(d);
    cJSON_Delete(ch);
    cJSON_Delete(choices);
    cJSON_Delete(c);
    return rc;
}

/* Appends "data: <json>\n\n" and deletes @p obj; a chunk with choices marks the role sent. */
static int emit(struct cp_tr_chat_chunker *ck, cJSON *obj, struct cm_buf *out)
{
    char *s = NULL;
    size_t n = 0;
    int rc;

    rc = cm_json_print(obj, &s, &n);
    cJSON_Delete(obj);
    if (rc)
        return rc;
    rc = cm_sse_write_event(out, NULL, s, n);
    cm_free(s);
    if (!rc && ck)
        ck->_role_sent = true;
    return rc;
}

int cp_tr_chat_emit_delta(struct cp_tr_chat_chunker *ck, const char *key, const char *val,
                          struct cm_buf *out)
{
    cJSON *c = NULL, *d = NULL;
    int rc;

    if ((rc = chunk_new(ck, false, &c, &d)) ||
        (rc = cm_json_set_string(d, key ? key : "content", key ? val : ""))) {
        cJSON_Delete(c);
        return rc;
    }
    return emit(ck, c, out);
}

int cp_tr_chat_emit_opener(struct cp_tr_chat_chunker *ck, struct cm_buf *out)
{
    return ck->_role_sent ? CM_OK : cp_tr_chat_emit_delta(ck, NULL, NULL, out);
}

int cp_tr_chat_emit_tool_call(struct cp_tr_chat_chunker *ck, size_t index, const char *id,
                              const char *name, const char *args, struct cm_buf *out)
{
    cJSON *c = NULL, *d = NULL, *arr = NULL, *tc = NULL, *fn = NULL;
    int rc;

    if ((rc = chunk_new(ck, false, &c, &d)) || (rc = cm_json_new_array(&arr)) ||
        (rc = cm_json_new_object(&tc)) || (rc = cm_json_set_int64(tc, "index", (int64_t)index)) ||
        (id && (rc = cm_json_set_string(tc, "id", id))) ||
        (id && (rc = cm_json_set_string(tc, "type", "function"))) ||
        (rc = cm_json_new_object(&fn)) || (name && (rc = cm_json_set_string(fn, "name", name))) ||
        (rc = cm_json_set_string(fn, "arguments", args ? args : "")))
        goto out;
    rc = cm_json_adopt(tc, "function", &fn);
    if (rc)
        goto out;
    rc = cm_json_adopt(arr, NULL, &tc);
    if (rc)
        goto out;
    rc = cm_json_adopt(d, "tool_calls", &arr);
    if (rc)
        goto out;
    rc = emit(ck, c, out);
    c = NULL;
out:
    cJSON_Delete(fn);
    cJSON_Delete(tc);
    cJSON_Delete(arr);
    cJSON_Delete(c);
    return rc;
}

int cp_tr_chat_emit_finish(struct cp_tr_chat_chunker *ck, const char *finish_reason,
                           const struct cp_tr_usage *u, struct cm_buf *out)
{
    static const struct cp_tr_usage zero = {0, 0, 0, 0, 0};
    cJSON *c = NULL, *d = NULL;
    int rc;

    if ((rc = chunk_new(ck, false, &c, &d)))
        return rc;
    if ((rc = cm_json_set_string(
             cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0), "finish_reason",
             finish_reason))) {
        cJSON_Delete(c);
        return rc;
    }
    if ((rc = emit(ck, c, out)))
        return rc;
    if (ck->_include_usage) {
        if ((rc = chunk_new(ck, true, &c, &d)))
            return rc;
        if ((rc = cp_tr_chat_put_usage(c, u ? u : &zero))) {
            cJSON_Delete(c);
            return rc;
        }
        if ((rc = emit(ck, c, out)))
            return rc;
    }
    return cm_sse_write_done(out);
}

int cp_tr_chat_emit_error(const struct cp_tr_err *e, struct cm_buf *out)
{
    cJSON *o = NULL, *eo = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_new_object(&eo)) ||
        (rc = cm_json_set_string(eo, "message", e->msg)) ||
        (rc = cm_json_set_string(eo, "type", e->type)) ||
        (rc = e->code[0] ? cm_json_set_string(eo, "code", e->code) : cm_json_set_null(eo, "code")))
        goto out;
    rc = cm_json_adopt(o, "error", &eo);
    if (rc)
        goto out;
    rc = emit(NULL, o, out);
    o = NULL;
out:
    cJSON_Delete(eo);
    cJSON_Delete(o);
    return rc;
}

int cp_tr_chat_fail(const struct cp_tr_err *e, struct cm_buf *out, struct cp_tr_err *err)
{
    int rc = cp_tr_chat_emit_error(e, out);

    if (rc) {
        cp_tr_chat_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
        return rc;
    }
    if (err)
        *err = *e;
    return e->rc;
}

/* ---- completions ---- */

int cp_tr_chat_put_usage(cJSON *parent, const struct cp_tr_usage *u)
{
    cJSON *us = NULL, *d = NULL;
    int rc;

    if ((rc = cm_json_new_object(&us)))
        return rc;
    if ((rc = cm_json_set_int64(us, "prompt_tokens", u->input)) ||
        (rc = cm_json_set_int64(us, "completion_tokens", u->output)) ||
        (rc = cm_json_set_int64(us, "total_tokens", u->total)) || (rc = cm_json_new_object(&d)) ||
        (rc = cm_json_set_int64(d, "cached_tokens", u->cached)))
        goto out;
    rc = cm_json_adopt(us, "prompt_tokens_details", &d);
    if (rc || (rc = cm_json_new_object(&d)) ||
        (rc = cm_json_set_int64(d, "reasoning_tokens", u->reasoning)))
        goto out;
    rc = cm_json_adopt(us, "completion_tokens_details", &d);
    if (rc)
        goto out;
    rc = cm_json_adopt(parent, "usage", &us);
out:
    cJSON_Delete(d);
    cJSON_Delete(us);
    return rc;
}

int cp_tr_chat_tool_call_new(const char *id, const char *name, const char *args, cJSON **out)
{
    cJSON *tc = NULL, *fn = NULL;
    int rc;

    if ((rc = cm_json_new_object(&tc)) || (rc = cm_json_set_string(tc, "id", id)) ||
        (rc = cm_json_set_string(tc, "type", "function")) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) ||
        (rc = cm_json_set_string(fn, "arguments", args)))
        goto out;
    rc = cm_json_adopt(tc, "function", &fn);
    if (rc)
        goto out;
    *out = tc;
    tc = NULL;
out:
    cJSON_Delete(fn);
    cJSON_Delete(tc);
    return rc;
}

int cp_tr_chat_completion_new(const char *id, const char *model, int64_t created,
                              const struct cp_tr_chat_answer *a, cJSON **out)
{
    cJSON *c = NULL, *choices = NULL, *ch = NULL, *msg = NULL;
    int rc;

    if ((rc = cm_json_new_object(&c)) || (rc = cm_json_set_string(c, "id", id)) ||
        (rc = cm_json_set_string(c, "object", "chat.completion")) ||
        (rc = cm_json_set_int64(c, "created", created)) ||
        (rc = cm_json_set_string(c, "model", model)) || (rc = cm_json_new_array(&choices)) ||
        (rc = cm_json_new_object(&ch)) || (rc = cm_json_set_int64(ch, "index", 0)) ||
        (rc = cm_json_new_object(&msg)) || (rc = cm_json_set_string(msg, "role", "assistant")) ||
        (rc = a->text ? cm_json_set_stringn(msg, "content", a->text, a->text_len)
                      : cm_json_set_null(msg, "content")) ||
        (a->reasoning && a->reasoning_len &&
         (rc = cm_json_set_stringn(msg, "reasoning_content", a->reasoning, a->reasoning_len))) ||
        (cJSON_GetArraySize(a->tool_calls) > 0 &&
         (rc = cm_json_set_item(msg, "tool_calls", cJSON_Duplicate(a->tool_calls, 1)))))
        goto out;
    rc = cm_json_adopt(ch, "message", &msg);
    if (rc || (rc = cm_json_set_string(ch, "finish_reason", a->finish_reason)))
        goto out;
    rc = cm_json_adopt(choices, NULL, &ch);
    if (rc)
        goto out;
    rc = cm_json_adopt(c, "choices", &choices);
    if (rc || (rc = cp_tr_chat_put_usage(c, &a->usage)))
        goto out;
    *out = c;
    c = NULL;
out:
    cJSON_Delete(msg);
    cJSON_Delete(ch);
    cJSON_Delete(choices);
    cJSON_Delete(c);
    return rc;
}
