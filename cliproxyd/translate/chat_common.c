/* SPDX-License-Identifier: MIT */
/*
 * chat_common.c - the OpenAI Chat side every chat translator shares (see the header): the
 * request checks and readers that do not depend on the upstream, and the exact chunk /
 * completion shapes the clients get. Keeping them here is what makes chat_codex.c and
 * chat_claude.c read requests and answer clients identically.
 */
#include "translate/chat_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <string.h>

/* ---- reading a chat request ---- */

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
            if (!cJSON_IsString(m) || !cp_tr_str_eq(m->valuestring, "text")) {
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

/* The text of a message content into @p b (see cp_tr_chat_tool_message()). */
static int content_text(const cJSON *content, struct cm_buf *b, struct cm_json_err *je)
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
            (cp_tr_str_eq(type, "text") &&
             (rc = cm_json_get_string(p, "text", &text, je)) != CM_OK)) {
            cm_json_err_scope(je, "content[%zu]", i);
            return rc;
        }
        if (!cp_tr_str_eq(type, "text")) {
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

int cp_tr_chat_tool_message(const cJSON *m, const char **call_id, struct cm_buf *b,
                            struct cm_json_err *je)
{
    int rc;

    if ((rc = cm_json_get_string(m, "tool_call_id", call_id, je)))
        return rc;
    return content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), b, je);
}

/* An "image_url" part: a string or {"url", "detail"?} (errors scoped "image_url"). */
static int image_url_part(const cJSON *p, struct cp_tr_chat_part *out, struct cm_json_err *je)
{
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(p, "image_url");
    cJSON *sub = NULL;
    int rc;

    if (cJSON_IsString(iu)) {
        out->url = iu->valuestring;
        return CM_OK;
    }
    if ((rc = cm_json_get_object(p, "image_url", &sub, je)) != CM_OK)
        return rc;
    if ((rc = cm_json_get_string(sub, "url", &out->url, je)) != CM_OK ||
        (rc = cm_json_opt_string(sub, "detail", NULL, &out->detail, je)) != CM_OK)
        cm_json_err_scope(je, "image_url");
    return rc;
}

/* A "file" part: {"file_data"?, "file_id"?, "filename"?}, one of the first two required. */
static int file_part(const cJSON *p, struct cp_tr_chat_part *out, struct cm_json_err *je)
{
    cJSON *sub = NULL;
    int rc;

    if ((rc = cm_json_get_object(p, "file", &sub, je)) != CM_OK)
        return rc;
    if ((rc = cm_json_opt_string(sub, "file_data", NULL, &out->data, je)) != CM_OK ||
        (rc = cm_json_opt_string(sub, "file_id", NULL, &out->file_id, je)) != CM_OK ||
        (rc = cm_json_opt_string(sub, "filename", NULL, &out->filename, je)) != CM_OK) {
        cm_json_err_scope(je, "file");
        return rc;
    }
    if (!out->data && !out->file_id) {
        cm_json_err_set(je, CM_ERR_INVAL, "file", "needs file_data or file_id");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

/* One content part @p p of a message of role @p role into @p out (errors unscoped). */
static int read_part(const cJSON *p, const char *role, struct cp_tr_chat_part *out,
                     struct cm_json_err *je)
{
    bool user = cp_tr_str_eq(role, "user");
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = cm_json_get_string(p, "type", &out->type, je)) != CM_OK)
        return rc;
    if (cp_tr_str_eq(out->type, "text"))
        return cm_json_get_string(p, "text", &out->text, je);
    if (cp_tr_str_eq(out->type, "refusal") && cp_tr_str_eq(role, "assistant"))
        return cm_json_get_string(p, "refusal", &out->text, je);
    if (cp_tr_str_eq(out->type, "image_url") && user)
        return image_url_part(p, out, je);
    if (cp_tr_str_eq(out->type, "file") && user)
        return file_part(p, out, je);
    cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported content part '%.32s' for role '%.16s'",
                    out->type, role);
    return CM_ERR_INVAL;
}

int cp_tr_chat_part_read(const cJSON *p, const char *role, struct cp_tr_chat_part *out,
                         struct cm_json_err *je)
{
    return read_part(p, role, out, je);
}

int cp_tr_chat_content(const cJSON *content, const char *role, bool optional, int max,
                       const struct cp_tr_chat_content_ops *ops, void *ud, struct cm_json_err *je)
{
    struct cp_tr_chat_part part;
    const cJSON *p;
    size_t i = 0;
    int rc;

    if (!content || cJSON_IsNull(content)) {
        if (optional)
            return CM_OK;
        cm_json_err_set(je, CM_ERR_INVAL, "content", "is required");
        return CM_ERR_INVAL;
    }
    if (cJSON_IsString(content))
        return ops->text(ud, content->valuestring);
    if (!cJSON_IsArray(content)) {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of parts");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(content, max, "content", "parts", je)))
        return rc;
    cJSON_ArrayForEach(p, content)
    {
        if ((rc = read_part(p, role, &part, je)) || (rc = ops->part(ud, &part, je))) {
            cm_json_err_scope(je, "content[%zu]", i);
            return rc;
        }
        i++;
    }
    return CM_OK;
}

/* One tool_calls entry @p c: {id, type? ("function"), function: {name, arguments?}}. */
static int read_tool_call(const cJSON *c, const char **id, const char **name, const char **args,
                          struct cm_json_err *je)
{
    const char *type = NULL;
    cJSON *fn = NULL;
    int rc;

    if ((rc = cm_json_get_string(c, "id", id, je)) ||
        (rc = cm_json_opt_string(c, "type", "function", &type, je)))
        return rc;
    if (!cp_tr_str_eq(type, "function")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported tool call type '%.32s'", type);
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_object(c, "function", &fn, je)))
        return rc;
    if ((rc = cm_json_get_string(fn, "name", name, je)) ||
        (rc = cm_json_opt_string(fn, "arguments", "", args, je)))
        cm_json_err_scope(je, "function");
    return rc;
}

int cp_tr_chat_tool_calls(const cJSON *calls, int max,
                          int (*fn)(void *ud, const char *id, const char *name, const char *args),
                          void *ud, struct cm_json_err *je)
{
    const cJSON *c;
    size_t i = 0;
    int rc;

    if (!cJSON_IsArray(calls)) {
        cm_json_err_set(je, CM_ERR_INVAL, "tool_calls", "must be an array");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(calls, max, "tool_calls", "entries", je)))
        return rc;
    cJSON_ArrayForEach(c, calls)
    {
        const char *id = NULL, *name = NULL, *args = NULL;

        if ((rc = read_tool_call(c, &id, &name, &args, je))) {
            cm_json_err_scope(je, "tool_calls[%zu]", i);
            return rc;
        }
        if ((rc = fn(ud, id, name, args)))
            return rc;
        i++;
    }
    return CM_OK;
}

int cp_tr_chat_function_tool(const cJSON *t, const char **name, const char **desc, cJSON **params,
                             bool *strict, struct cm_json_err *je)
{
    cJSON *fn = NULL;
    int rc;

    *desc = NULL;
    *params = NULL;
    if ((rc = cm_json_get_object(t, "function", &fn, je)))
        return rc;
    if ((rc = cm_json_get_string(fn, "name", name, je)) ||
        (rc = cm_json_opt_string(fn, "description", NULL, desc, je)) ||
        (rc = cm_json_opt_object(fn, "parameters", params, je)) ||
        (strict && (rc = cm_json_opt_bool(fn, "strict", false, strict, je)))) {
        cm_json_err_scope(je, "function");
        return rc;
    }
    if (!(*name)[0]) {
        cm_json_err_set(je, CM_ERR_INVAL, "function.name", "must not be empty");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

/* ---- JSON shapes shared by chunks and completions ---- */

/* Sets @p parent."usage" to the OpenAI usage object of @p u. */
static int put_usage(cJSON *parent, const struct cp_tr_usage *u)
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

/*
 * A new tool call {"index"? (@p index >= 0), "id"?, "type":"function" (with the id),
 * "function":{"name"?, "arguments" (NULL = "")}} in *@p out; NULL @p id / @p name are
 * omitted.
 */
static int tool_call_new(int64_t index, const char *id, const char *name, const char *args,
                         cJSON **out)
{
    cJSON *tc = NULL, *fn = NULL;
    int rc;

    if ((rc = cm_json_new_object(&tc)) ||
        (index >= 0 && (rc = cm_json_set_int64(tc, "index", index))) ||
        (id && (rc = cm_json_set_string(tc, "id", id))) ||
        (id && (rc = cm_json_set_string(tc, "type", "function"))) ||
        (rc = cm_json_new_object(&fn)) || (name && (rc = cm_json_set_string(fn, "name", name))) ||
        (rc = cm_json_set_string(fn, "arguments", args ? args : "")))
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
    cJSON *c = NULL, *d = NULL, *arr = NULL, *tc = NULL;
    int rc;

    if ((rc = chunk_new(ck, false, &c, &d)) || (rc = cm_json_new_array(&arr)) ||
        (rc = tool_call_new((int64_t)index, id, name, args, &tc)))
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
    cJSON_Delete(arr);
    cJSON_Delete(c);
    return rc;
}

int cp_tr_chat_emit_delta_item(struct cp_tr_chat_chunker *ck, const char *key, cJSON **val,
                               struct cm_buf *out)
{
    cJSON *c = NULL, *d = NULL;
    int rc;

    if ((rc = chunk_new(ck, false, &c, &d)) || (rc = cm_json_adopt(d, key, val))) {
        cJSON_Delete(*val);
        *val = NULL;
        cJSON_Delete(c);
        return rc;
    }
    return emit(ck, c, out);
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
        if ((rc = put_usage(c, u ? u : &zero))) {
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
        cp_tr_server_error(err, rc, cm_err_str(rc));
        return rc;
    }
    if (err)
        *err = *e;
    return e->rc;
}

/* ---- chat.completion objects ---- */

int cp_tr_chat_answer_init(struct cp_tr_chat_answer *a)
{
    memset(a, 0, sizeof(*a));
    cm_buf_init(&a->_text, (size_t)64 << 20);
    cm_buf_init(&a->_reasoning, (size_t)64 << 20);
    return cm_json_new_array(&a->_calls);
}

void cp_tr_chat_answer_cleanup(struct cp_tr_chat_answer *a)
{
    if (!a)
        return;
    cm_buf_cleanup(&a->_text);
    cm_buf_cleanup(&a->_reasoning);
    cJSON_Delete(a->_calls);
    a->_calls = NULL;
}

int cp_tr_chat_answer_text(struct cp_tr_chat_answer *a, const char *s)
{
    a->_have_text = true;
    return cm_buf_append_str(&a->_text, s) ? CM_ERR_NOMEM : CM_OK;
}

int cp_tr_chat_answer_reasoning(struct cp_tr_chat_answer *a, const char *s)
{
    if (!s[0])
        return CM_OK;
    if ((a->_reasoning.len && cm_buf_append_str(&a->_reasoning, "\n\n")) ||
        cm_buf_append_str(&a->_reasoning, s))
        return CM_ERR_NOMEM;
    return CM_OK;
}

int cp_tr_chat_answer_tool_call(struct cp_tr_chat_answer *a, const char *id, const char *name,
                                const char *args)
{
    cJSON *tc = NULL;
    int rc;

    if ((rc = tool_call_new(-1, id, name, args, &tc)))
        return rc;
    return cm_json_adopt(a->_calls, NULL, &tc);
}

bool cp_tr_chat_answer_has_calls(const struct cp_tr_chat_answer *a)
{
    return cJSON_GetArraySize(a->_calls) > 0;
}

int cp_tr_chat_completion_new(const char *id, const char *model, int64_t created,
                              const struct cp_tr_chat_answer *a, const char *finish_reason,
                              const struct cp_tr_usage *usage, cJSON **out)
{
    cJSON *c = NULL, *choices = NULL, *ch = NULL, *msg = NULL;
    int rc;

    if ((rc = cm_json_new_object(&c)) || (rc = cm_json_set_string(c, "id", id)) ||
        (rc = cm_json_set_string(c, "object", "chat.completion")) ||
        (rc = cm_json_set_int64(c, "created", created)) ||
        (rc = cm_json_set_string(c, "model", model)) || (rc = cm_json_new_array(&choices)) ||
        (rc = cm_json_new_object(&ch)) || (rc = cm_json_set_int64(ch, "index", 0)) ||
        (rc = cm_json_new_object(&msg)) || (rc = cm_json_set_string(msg, "role", "assistant")) ||
        (rc = a->_have_text ? cm_json_set_stringn(msg, "content",
                                                  a->_text.data ? a->_text.data : "", a->_text.len)
                            : cm_json_set_null(msg, "content")) ||
        (a->_reasoning.len && (rc = cm_json_set_stringn(msg, "reasoning_content",
                                                        a->_reasoning.data, a->_reasoning.len))) ||
        (cp_tr_chat_answer_has_calls(a) &&
         (rc = cm_json_set_item(msg, "tool_calls", cJSON_Duplicate(a->_calls, 1)))))
        goto out;
    rc = cm_json_adopt(ch, "message", &msg);
    if (rc || (rc = cm_json_set_string(ch, "finish_reason", finish_reason)))
        goto out;
    rc = cm_json_adopt(choices, NULL, &ch);
    if (rc)
        goto out;
    rc = cm_json_adopt(c, "choices", &choices);
    if (rc || (rc = put_usage(c, usage)))
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

int cp_tr_chat_system_texts(const cJSON *m, int max, int (*add)(cJSON *dst, const char *text),
                            cJSON *dst, struct cm_json_err *je)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *p;
    size_t i = 0;
    int rc;

    if ((rc = cp_tr_check_cap(content, max, "content", "parts", je)))
        return rc;
    if (!cJSON_IsArray(content)) {
        if (!content || cJSON_IsNull(content)) {
            cm_json_err_set(je, CM_ERR_INVAL, "content", "is required");
            return CM_ERR_INVAL;
        }
        if (!cJSON_IsString(content)) {
            cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of parts");
            return CM_ERR_INVAL;
        }
        return add(dst, content->valuestring);
    }
    cJSON_ArrayForEach(p, content)
    {
        const char *type = NULL, *text = NULL;
        if ((rc = cm_json_get_string(p, "type", &type, je)) == CM_OK &&
            !cp_tr_str_eq(type, "text")) {
            cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported content part '%.32s' here",
                            type);
            rc = CM_ERR_INVAL;
        }
        if (rc || (rc = cm_json_get_string(p, "text", &text, je))) {
            cm_json_err_scope(je, "content[%zu]", i);
            return rc;
        }
        if ((rc = add(dst, text)))
            return rc;
        i++;
    }
    return CM_OK;
}

int cp_tr_chat_stop_list(const cJSON *stop, int max, cJSON *dst, const char *key,
                         struct cm_json_err *je)
{
    cJSON *arr = NULL;
    const cJSON *s;
    size_t i = 0;
    int rc;

    if (!cJSON_IsString(stop) && !cJSON_IsArray(stop)) {
        cm_json_err_set(je, CM_ERR_INVAL, "stop", "must be a string or an array of strings");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(stop, max, "stop", "entries", je)) || (rc = cm_json_new_array(&arr)))
        return rc;
    if (cJSON_IsString(stop)) {
        rc = cm_json_set_item(arr, NULL, cJSON_CreateString(stop->valuestring));
    } else {
        cJSON_ArrayForEach(s, stop)
        {
            if (!cJSON_IsString(s)) {
                cm_json_err_set(je, CM_ERR_INVAL, "", "must be a string");
                cm_json_err_scope(je, "stop[%zu]", i);
                rc = CM_ERR_INVAL;
                goto out;
            }
            if ((rc = cm_json_set_item(arr, NULL, cJSON_CreateString(s->valuestring))))
                goto out;
            i++;
        }
    }
    if (!rc && cJSON_GetArraySize(arr) > 0)
        rc = cm_json_adopt(dst, key, &arr);
out:
    cJSON_Delete(arr);
    return rc;
}
