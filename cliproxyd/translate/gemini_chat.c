/* SPDX-License-Identifier: MIT */
/*
 * gemini_chat.c - Gemini API clients over the OpenAI Chat pivot (pure; see the header).
 *
 * Request: contents[] turns become chat messages one by one; functionCall ids missing from
 * the client are made up ("call_<k>") and remembered so that a later functionResponse
 * without an id can be matched to the earliest unanswered call of its name. Every part,
 * tool or setting the pivot cannot carry is refused with a field path, never dropped.
 * Response: chunks become GenerateContentResponse events as they come, except tool calls,
 * which Gemini sends whole: their fragments are gathered per chunk index and emitted once
 * (at the finish chunk or at the end). The closing event needs both the finish reason and
 * the usage, so it is written at stream_end only.
 */
#include "translate/gemini_chat.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/tr_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BIG_BUF ((size_t)1 << 30) /* data URLs: the request body cap bounds them already */

/* ---- small helpers ---- */

/* Member @p camel of @p o, else @p snake (may be NULL); JSON null counts as absent. */
static const cJSON *mem(const cJSON *o, const char *camel, const char *snake)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, camel);

    if (!v && snake)
        v = cJSON_GetObjectItemCaseSensitive(o, snake);
    return cJSON_IsNull(v) ? NULL : v;
}

static bool ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* CM_ERR_INVAL with @p je = "@p field <what>". */
__attribute__((format(printf, 3, 4))) static int bad(struct cm_json_err *je, const char *field,
                                                     const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    cm_json_err_set(je, CM_ERR_INVAL, field, "%s", what);
    return CM_ERR_INVAL;
}

/* String member @p camel / @p snake: required (@p req) or optional (*out NULL). */
static int str_of(const cJSON *o, const char *camel, const char *snake, bool req, const char **out,
                  struct cm_json_err *je)
{
    const cJSON *v = mem(o, camel, snake);

    *out = NULL;
    if (!v) {
        if (!req)
            return CM_OK;
        cm_json_err_set(je, CM_ERR_INVAL, camel, "is required");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsString(v))
        return bad(je, camel, "must be a string");
    *out = v->valuestring;
    return CM_OK;
}

/* The JSON text of @p v (or "{}" when NULL) as a new string (cm_free()). */
static int json_text(const cJSON *v, char **out)
{
    if (!v) {
        *out = cm_strdup("{}");
        return *out ? CM_OK : CM_ERR_NOMEM;
    }
    return cm_json_print(v, out, NULL);
}

/* ---- request: schemas ---- */

/* Lower-cases the OpenAPI "type" words of schema @p s in place, through its sub-schemas. */
static int lower_schema(cJSON *s, int depth, struct cm_json_err *je)
{
    static const char *const lists[] = {"anyOf", "oneOf", "allOf", "prefixItems"};
    cJSON *t, *c;
    size_t i;
    int rc;

    if (!cJSON_IsObject(s))
        return CM_OK;
    if (depth > CP_TR_GEMINI_CHAT_SCHEMA_DEPTH) {
        cm_json_err_set(je, CM_ERR_LIMIT, "", "is nested more than %d levels deep",
                        CP_TR_GEMINI_CHAT_SCHEMA_DEPTH);
        return CM_ERR_LIMIT;
    }
    t = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (cJSON_IsString(t)) {
        for (char *p = t->valuestring; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(s, "properties"))
    {
        if ((rc = lower_schema(c, depth + 1, je)))
            return rc;
    }
    t = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (cJSON_IsArray(t)) {
        cJSON_ArrayForEach(c, t)
        {
            if ((rc = lower_schema(c, depth + 1, je)))
                return rc;
        }
    } else if ((rc = lower_schema(t, depth + 1, je))) {
        return rc;
    }
    if ((rc = lower_schema(cJSON_GetObjectItemCaseSensitive(s, "additionalProperties"), depth + 1,
                           je)))
        return rc;
    for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(s, lists[i]))
        {
            if ((rc = lower_schema(c, depth + 1, je)))
                return rc;
        }
    }
    return CM_OK;
}

/* A copy of schema @p s in *@p out, its types lower-cased when @p openapi. */
static int copy_schema(const cJSON *s, bool openapi, const char *field, cJSON **out,
                       struct cm_json_err *je)
{
    cJSON *d;
    int rc;

    if (!cJSON_IsObject(s))
        return bad(je, field, "must be an object");
    if (!(d = cJSON_Duplicate(s, 1)))
        return CM_ERR_NOMEM;
    if (openapi && (rc = lower_schema(d, 0, je))) {
        cJSON_Delete(d);
        cm_json_err_scope(je, "%s", field);
        return rc;
    }
    *out = d;
    return CM_OK;
}

/* ---- request: the conversation ---- */

/* A functionCall of the conversation, for matching functionResponses without an id. */
struct call {
    const char *name; /* borrowed from the request */
    const char *id;   /* borrowed from the request, or gen */
    char gen[32];     /* "call_<k>" */
    bool answered;
};

struct conv {
    cJSON *messages; /* the chat messages being built */
    struct call *calls;
    size_t ncalls, cap;
};

static int conv_add_call(struct conv *c, const char *name, const char *id, const char **id_out,
                         struct cm_json_err *je)
{
    struct call *k;

    if (c->ncalls >= CP_TR_GEMINI_CHAT_MAX_CALLS) {
        cm_json_err_set(je, CM_ERR_LIMIT, "contents", "has more than %d functionCall parts",
                        CP_TR_GEMINI_CHAT_MAX_CALLS);
        return CM_ERR_LIMIT;
    }
    if (c->ncalls == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct call *n = cm_realloc(c->calls, ncap * sizeof(*n));
        if (!n)
            return CM_ERR_NOMEM;
        c->calls = n;
        c->cap = ncap;
    }
    k = &c->calls[c->ncalls++];
    memset(k, 0, sizeof(*k));
    k->name = name;
    snprintf(k->gen, sizeof(k->gen), "call_%zu", c->ncalls);
    k->id = id ? id : k->gen;
    *id_out = k->id;
    return CM_OK;
}

/* The tool_call_id answering a functionResponse named @p name with id @p id (may be NULL). */
static const char *conv_answer(struct conv *c, const char *name, const char *id)
{
    size_t i;

    for (i = 0; i < c->ncalls; i++) {
        struct call *k = &c->calls[i];
        if (k->answered)
            continue;
        if (id ? strcmp(k->id, id) == 0 : strcmp(k->name, name) == 0) {
            k->answered = true;
            return k->id;
        }
    }
    return id;
}

/* Appends {"type":"image_url","image_url":{"url":@p url}} to @p parts. */
static int add_image(cJSON *parts, const char *url)
{
    cJSON *o = NULL, *iu = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("image_url", &o)) || (rc = cm_json_new_object(&iu)) ||
        (rc = cm_json_set_string(iu, "url", url)) || (rc = cm_json_adopt(o, "image_url", &iu)))
        goto out;
    rc = cm_json_adopt(parts, NULL, &o);
out:
    cJSON_Delete(iu);
    cJSON_Delete(o);
    return rc;
}

/* Appends {"type":"file","file":{"file_data":@p data_url}} to @p parts. */
static int add_file(cJSON *parts, const char *data_url)
{
    cJSON *o = NULL, *f = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("file", &o)) || (rc = cm_json_new_object(&f)) ||
        (rc = cm_json_set_string(f, "file_data", data_url)) || (rc = cm_json_adopt(o, "file", &f)))
        goto out;
    rc = cm_json_adopt(parts, NULL, &o);
out:
    cJSON_Delete(f);
    cJSON_Delete(o);
    return rc;
}

/* inlineData {mimeType, data} of a user turn -> an image_url or file part. */
static int inline_data(const cJSON *d, cJSON *parts, struct cm_json_err *je)
{
    const char *mime, *data;
    struct cm_buf b;
    int rc;

    if (!cJSON_IsObject(d))
        return bad(je, "inlineData", "must be an object");
    if ((rc = str_of(d, "mimeType", "mime_type", true, &mime, je)) ||
        (rc = str_of(d, "data", NULL, true, &data, je))) {
        cm_json_err_scope(je, "inlineData");
        return rc;
    }
    if (!cp_tr_has_prefix(mime, "image/") && strcmp(mime, "application/pdf") != 0)
        return bad(je, "inlineData.mimeType",
                   "is not supported on this model (only image/* and application/pdf)");
    cm_buf_init(&b, BIG_BUF);
    rc = cm_buf_appendf(&b, "data:%s;base64,%s", mime, data);
    if (rc == CM_OK)
        rc = cp_tr_has_prefix(mime, "image/") ? add_image(parts, b.data) : add_file(parts, b.data);
    cm_buf_cleanup(&b);
    return rc == CM_ERR_LIMIT ? CM_ERR_NOMEM : rc;
}

/* fileData {mimeType, fileUri} of a user turn -> an image_url part. */
static int file_data(const cJSON *d, cJSON *parts, struct cm_json_err *je)
{
    const char *mime, *uri;
    int rc;

    if (!cJSON_IsObject(d))
        return bad(je, "fileData", "must be an object");
    if ((rc = str_of(d, "mimeType", "mime_type", false, &mime, je)) ||
        (rc = str_of(d, "fileUri", "file_uri", true, &uri, je))) {
        cm_json_err_scope(je, "fileData");
        return rc;
    }
    if (!mime || !cp_tr_has_prefix(mime, "image/"))
        return bad(je, "fileData.mimeType",
                   "is not supported on this model (only image/* files can be referenced)");
    return add_image(parts, uri);
}

/* The part keys this module never carries; "" when @p p has no key at all. */
static const char *part_kind(const cJSON *p)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, p)
    {
        if (strcmp(m->string, "thought") != 0 && strcmp(m->string, "thoughtSignature") != 0 &&
            strcmp(m->string, "thought_signature") != 0)
            return m->string;
    }
    return "";
}

/* A part nobody handled: names its key. */
static int unsupported_part(const cJSON *p, struct cm_json_err *je)
{
    const char *k = part_kind(p);

    if (!k[0])
        return bad(je, "",
                   "must hold text, inlineData, fileData, functionCall or functionResponse");
    return bad(je, k, "is not supported on this model");
}

/* One functionResponse part of a user turn -> a tool message appended to c->messages. */
static int function_response(struct conv *c, const cJSON *fr, struct cm_json_err *je)
{
    const char *name, *id, *call_id;
    const cJSON *resp;
    char *text = NULL;
    cJSON *m = NULL;
    int rc;

    if (!cJSON_IsObject(fr))
        return bad(je, "functionResponse", "must be an object");
    if ((rc = str_of(fr, "name", NULL, true, &name, je)) ||
        (rc = str_of(fr, "id", NULL, false, &id, je))) {
        cm_json_err_scope(je, "functionResponse");
        return rc;
    }
    resp = mem(fr, "response", NULL);
    if (resp && !cJSON_IsObject(resp))
        return bad(je, "functionResponse.response", "must be an object");
    call_id = conv_answer(c, name, id);
    if (!call_id)
        return bad(je, "functionResponse.name", "answers no earlier unanswered functionCall");
    if ((rc = json_text(resp, &text)) || (rc = cm_json_new_object(&m)) ||
        (rc = cm_json_set_string(m, "role", "tool")) ||
        (rc = cm_json_set_string(m, "tool_call_id", call_id)) ||
        (rc = cm_json_set_string(m, "content", text)))
        goto out;
    rc = cm_json_adopt(c->messages, NULL, &m);
out:
    cJSON_Delete(m);
    cm_free(text);
    return rc;
}

/* A user turn's @p parts -> tool messages, then one user message. */
static int user_turn(struct conv *c, const cJSON *parts, struct cm_json_err *je)
{
    cJSON *content = NULL, *m = NULL;
    const cJSON *p;
    size_t j = 0;
    int rc;

    if ((rc = cm_json_new_array(&content)))
        return rc;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *v;
        const char *text;

        if (!cJSON_IsObject(p)) {
            rc = bad(je, "", "must be an object");
        } else if ((v = mem(p, "text", NULL))) {
            rc = str_of(p, "text", NULL, true, &text, je);
            if (rc == CM_OK)
                rc = cp_tr_typed_append(content, "text", "text", text, strlen(text));
        } else if ((v = mem(p, "inlineData", "inline_data"))) {
            rc = inline_data(v, content, je);
        } else if ((v = mem(p, "fileData", "file_data"))) {
            rc = file_data(v, content, je);
        } else if ((v = mem(p, "functionResponse", "function_response"))) {
            rc = function_response(c, v, je);
        } else if (mem(p, "functionCall", "function_call")) {
            rc = bad(je, "functionCall", "is only allowed in a turn of role \"model\"");
        } else {
            rc = unsupported_part(p, je);
        }
        if (rc) {
            cm_json_err_scope(je, "parts[%zu]", j);
            goto out;
        }
        j++;
    }
    if (!cJSON_GetArraySize(content))
        goto out;
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "user")))
        goto out;
    if (cJSON_GetArraySize(content) == 1 &&
        cp_tr_str_eq(cp_tr_str_member(content->child, "type", NULL), "text")) {
        rc = cm_json_set_string(m, "content", cp_tr_str_member(content->child, "text", ""));
    } else {
        rc = cm_json_adopt(m, "content", &content);
    }
    if (rc == CM_OK)
        rc = cm_json_adopt(c->messages, NULL, &m);
out:
    cJSON_Delete(m);
    cJSON_Delete(content);
    return rc;
}

/* One functionCall part of a model turn -> an entry of @p calls. */
static int function_call(struct conv *c, const cJSON *fc, cJSON *calls, struct cm_json_err *je)
{
    const char *name, *id, *call_id;
    const cJSON *args;
    char *text = NULL;
    cJSON *o = NULL, *f = NULL;
    int rc;

    if (!cJSON_IsObject(fc))
        return bad(je, "functionCall", "must be an object");
    if ((rc = str_of(fc, "name", NULL, true, &name, je)) ||
        (rc = str_of(fc, "id", NULL, false, &id, je))) {
        cm_json_err_scope(je, "functionCall");
        return rc;
    }
    if (!name[0])
        return bad(je, "functionCall.name", "must not be empty");
    args = mem(fc, "args", NULL);
    if (args && !cJSON_IsObject(args))
        return bad(je, "functionCall.args", "must be an object");
    if ((rc = conv_add_call(c, name, id, &call_id, je)))
        return rc;
    if ((rc = json_text(args, &text)) || (rc = cm_json_new_object(&o)) ||
        (rc = cm_json_set_string(o, "id", call_id)) ||
        (rc = cm_json_set_string(o, "type", "function")) || (rc = cm_json_new_object(&f)) ||
        (rc = cm_json_set_string(f, "name", name)) ||
        (rc = cm_json_set_string(f, "arguments", text)) || (rc = cm_json_adopt(o, "function", &f)))
        goto out;
    rc = cm_json_adopt(calls, NULL, &o);
out:
    cJSON_Delete(f);
    cJSON_Delete(o);
    cm_free(text);
    return rc;
}

/* A model turn's @p parts -> one assistant message (none when it says nothing). */
static int model_turn(struct conv *c, const cJSON *parts, struct cm_json_err *je)
{
    cJSON *calls = NULL, *m = NULL;
    struct cm_buf text;
    bool have_text = false;
    const cJSON *p;
    size_t j = 0;
    int rc;

    cm_buf_init(&text, BIG_BUF);
    if ((rc = cm_json_new_array(&calls)))
        goto out;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *v;
        const char *s;

        if (!cJSON_IsObject(p)) {
            rc = bad(je, "", "must be an object");
        } else if ((v = mem(p, "text", NULL))) {
            rc = str_of(p, "text", NULL, true, &s, je);
            if (rc == CM_OK && !cJSON_IsTrue(mem(p, "thought", NULL))) {
                if (cm_buf_append_str(&text, s))
                    rc = CM_ERR_NOMEM; /* past BIG_BUF: the body cap makes it unreachable */
                have_text = true;
            }
        } else if ((v = mem(p, "functionCall", "function_call"))) {
            rc = function_call(c, v, calls, je);
        } else if (mem(p, "functionResponse", "function_response")) {
            rc = bad(je, "functionResponse", "is only allowed in a turn of role \"user\"");
        } else if (mem(p, "inlineData", "inline_data") || mem(p, "fileData", "file_data")) {
            rc = bad(je, mem(p, "inlineData", "inline_data") ? "inlineData" : "fileData",
                     "is not supported in a turn of role \"model\"");
        } else {
            rc = unsupported_part(p, je);
        }
        if (rc) {
            if (rc != CM_ERR_NOMEM && strcmp(je->field, "contents") != 0)
                cm_json_err_scope(je, "parts[%zu]", j);
            goto out;
        }
        j++;
    }
    if (!have_text && !cJSON_GetArraySize(calls))
        goto out;
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "assistant")))
        goto out;
    rc = have_text ? cm_json_set_stringn(m, "content", text.data ? text.data : "", text.len)
                   : cm_json_set_null(m, "content");
    if (rc == CM_OK && cJSON_GetArraySize(calls))
        rc = cm_json_adopt(m, "tool_calls", &calls);
    if (rc == CM_OK)
        rc = cm_json_adopt(c->messages, NULL, &m);
out:
    cJSON_Delete(m);
    cJSON_Delete(calls);
    cm_buf_cleanup(&text);
    return rc;
}

/* systemInstruction (a Content, or a plain string) -> a leading system message. */
static int system_instruction(struct conv *c, const cJSON *si, struct cm_json_err *je)
{
    struct cm_buf b;
    const cJSON *parts, *p;
    cJSON *m = NULL;
    size_t j = 0;
    int rc = CM_OK;

    cm_buf_init(&b, BIG_BUF);
    if (cJSON_IsString(si)) {
        rc = cm_buf_append_str(&b, si->valuestring);
        goto add;
    }
    if (!cJSON_IsObject(si)) {
        rc = bad(je, "systemInstruction", "must be an object");
        goto out;
    }
    parts = mem(si, "parts", NULL);
    if (parts && !cJSON_IsArray(parts)) {
        rc = bad(je, "systemInstruction.parts", "must be an array");
        goto out;
    }
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *t = cJSON_IsObject(p) ? mem(p, "text", NULL) : NULL;
        if (!cJSON_IsString(t)) {
            if (!cJSON_IsObject(p))
                rc = bad(je, "", "must be an object");
            else if (t)
                rc = bad(je, "text", "must be a string");
            else
                rc = unsupported_part(p, je);
            cm_json_err_scope(je, "systemInstruction.parts[%zu]", j);
            goto out;
        }
        if ((j && (rc = cm_buf_append_str(&b, "\n"))) ||
            (rc = cm_buf_append_str(&b, t->valuestring)))
            goto add;
        j++;
    }
add:
    if (rc) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (!b.len)
        goto out;
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "system")) ||
        (rc = cm_json_set_stringn(m, "content", b.data, b.len)))
        goto out;
    rc = cm_json_adopt(c->messages, NULL, &m);
out:
    cJSON_Delete(m);
    cm_buf_cleanup(&b);
    return rc;
}

static int contents(struct conv *c, const cJSON *body, struct cm_json_err *je)
{
    const cJSON *arr = mem(body, "contents", NULL), *t;
    size_t i = 0;
    int rc;

    if (!arr) {
        cm_json_err_set(je, CM_ERR_INVAL, "contents", "is required");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsArray(arr))
        return bad(je, "contents", "must be an array");
    if (!cJSON_GetArraySize(arr))
        return bad(je, "contents", "must not be empty");
    if ((rc = cp_tr_check_cap(arr, CP_TR_GEMINI_CHAT_MAX_CONTENTS, "contents", "entries", je)))
        return rc;
    cJSON_ArrayForEach(t, arr)
    {
        const char *role = NULL;
        const cJSON *parts;

        if (!cJSON_IsObject(t)) {
            rc = bad(je, "", "must be an object");
        } else if ((rc = str_of(t, "role", NULL, false, &role, je)) == CM_OK) {
            parts = mem(t, "parts", NULL);
            if (!parts)
                rc = bad(je, "parts", "is required");
            else if (!cJSON_IsArray(parts))
                rc = bad(je, "parts", "must be an array");
            else
                rc = cp_tr_check_cap(parts, CP_TR_GEMINI_CHAT_MAX_PARTS, "parts", "entries", je);
            if (rc == CM_OK) {
                if (!role || !role[0] || strcmp(role, "user") == 0 || strcmp(role, "function") == 0)
                    rc = user_turn(c, parts, je);
                else if (strcmp(role, "model") == 0)
                    rc = model_turn(c, parts, je);
                else
                    rc = bad(je, "role", "must be \"user\" or \"model\"");
            }
        }
        if (rc) {
            if (rc != CM_ERR_NOMEM && strcmp(je->field, "contents") != 0)
                cm_json_err_scope(je, "contents[%zu]", i);
            return rc;
        }
        i++;
    }
    return CM_OK;
}

/* ---- request: tools ---- */

static int declaration(const cJSON *d, cJSON **out, struct cm_json_err *je)
{
    const char *name, *desc;
    const cJSON *params, *js;
    cJSON *t = NULL, *f = NULL, *schema = NULL;
    int rc;

    if (!cJSON_IsObject(d))
        return bad(je, "", "must be an object");
    if ((rc = str_of(d, "name", NULL, true, &name, je)) ||
        (rc = str_of(d, "description", NULL, false, &desc, je)))
        return rc;
    if (!name[0])
        return bad(je, "name", "must not be empty");
    params = mem(d, "parameters", NULL);
    js = mem(d, "parametersJsonSchema", "parameters_json_schema");
    if (params && js)
        return bad(je, "parametersJsonSchema", "cannot be given together with parameters");
    if (params)
        rc = copy_schema(params, true, "parameters", &schema, je);
    else if (js)
        rc = copy_schema(js, false, "parametersJsonSchema", &schema, je);
    if (rc)
        return rc;
    if ((rc = cp_tr_typed_new("function", &t)) || (rc = cm_json_new_object(&f)) ||
        (rc = cm_json_set_string(f, "name", name)) ||
        (desc && (rc = cm_json_set_string(f, "description", desc))) ||
        (schema && (rc = cm_json_adopt(f, "parameters", &schema))) ||
        (rc = cm_json_adopt(t, "function", &f)))
        goto out;
    *out = t;
    t = NULL;
out:
    cJSON_Delete(schema);
    cJSON_Delete(f);
    cJSON_Delete(t);
    return rc;
}

/* tools[] -> chat function tools appended to @p out (an array). */
static int tools(const cJSON *arr, cJSON *out, struct cm_json_err *je)
{
    const cJSON *tool, *m, *d;
    size_t i = 0, j;
    cJSON *item = NULL;
    int rc;

    if (!cJSON_IsArray(arr))
        return bad(je, "tools", "must be an array");
    cJSON_ArrayForEach(tool, arr)
    {
        if (!cJSON_IsObject(tool)) {
            bad(je, "", "must be an object");
            cm_json_err_scope(je, "tools[%zu]", i);
            return CM_ERR_INVAL;
        }
        cJSON_ArrayForEach(m, tool)
        {
            if (strcmp(m->string, "functionDeclarations") != 0 &&
                strcmp(m->string, "function_declarations") != 0) {
                if (cJSON_IsNull(m))
                    continue;
                bad(je, m->string,
                    "is not supported on this model (only functionDeclarations tools)");
                cm_json_err_scope(je, "tools[%zu]", i);
                return CM_ERR_INVAL;
            }
            if (!cJSON_IsArray(m)) {
                bad(je, "functionDeclarations", "must be an array");
                cm_json_err_scope(je, "tools[%zu]", i);
                return CM_ERR_INVAL;
            }
            j = 0;
            cJSON_ArrayForEach(d, m)
            {
                if (cJSON_GetArraySize(out) >= CP_TR_GEMINI_CHAT_MAX_TOOLS) {
                    cm_json_err_set(je, CM_ERR_LIMIT, "tools", "has more than %d functions",
                                    CP_TR_GEMINI_CHAT_MAX_TOOLS);
                    return CM_ERR_LIMIT;
                }
                if ((rc = declaration(d, &item, je))) {
                    cm_json_err_scope(je, "tools[%zu].functionDeclarations[%zu]", i, j);
                    return rc;
                }
                if ((rc = cm_json_adopt(out, NULL, &item)))
                    return rc;
                j++;
            }
        }
        i++;
    }
    return CM_OK;
}

static bool tool_named(const cJSON *tools_arr, const char *name)
{
    const cJSON *t;

    cJSON_ArrayForEach(t, tools_arr)
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (cp_tr_str_eq(cp_tr_str_member(f, "name", NULL), name))
            return true;
    }
    return false;
}

/* toolConfig.functionCallingConfig -> tool_choice on @p chat (tools in @p tools_arr). */
static int tool_config(const cJSON *tc, cJSON *chat, cJSON *tools_arr, struct cm_json_err *je)
{
    static const char fcc_path[] = "toolConfig.functionCallingConfig";
    const cJSON *fcc, *names, *n;
    const char *mode = NULL;
    char field[96];
    cJSON *choice = NULL, *f = NULL;
    size_t k = 0;
    int rc;

    if (!cJSON_IsObject(tc))
        return bad(je, "toolConfig", "must be an object");
    fcc = mem(tc, "functionCallingConfig", "function_calling_config");
    if (!fcc)
        return CM_OK;
    if (!cJSON_IsObject(fcc))
        return bad(je, fcc_path, "must be an object");
    if ((rc = str_of(fcc, "mode", NULL, false, &mode, je))) {
        cm_json_err_scope(je, "%s", fcc_path);
        return rc;
    }
    names = mem(fcc, "allowedFunctionNames", "allowed_function_names");
    if (names && !cJSON_IsArray(names)) {
        snprintf(field, sizeof(field), "%s.allowedFunctionNames", fcc_path);
        return bad(je, field, "must be an array");
    }
    if (!mode || ieq(mode, "MODE_UNSPECIFIED"))
        return CM_OK;
    if (!ieq(mode, "AUTO") && !ieq(mode, "NONE") && !ieq(mode, "ANY")) {
        snprintf(field, sizeof(field), "%s.mode", fcc_path);
        return bad(je, field, "must be AUTO, ANY or NONE");
    }
    if (!cJSON_GetArraySize(tools_arr))
        return CM_OK; /* OpenAI refuses a tool_choice without tools */
    if (ieq(mode, "AUTO"))
        return cm_json_set_string(chat, "tool_choice", "auto");
    if (ieq(mode, "NONE"))
        return cm_json_set_string(chat, "tool_choice", "none");
    cJSON_ArrayForEach(n, names)
    {
        if (!cJSON_IsString(n) || !tool_named(tools_arr, n->valuestring)) {
            snprintf(field, sizeof(field), "%s.allowedFunctionNames[%zu]", fcc_path, k);
            return bad(je, field, "must name a declared function");
        }
        k++;
    }
    if (k == 1) {
        if ((rc = cp_tr_typed_new("function", &choice)) || (rc = cm_json_new_object(&f)) ||
            (rc = cm_json_set_string(f, "name", names->child->valuestring)) ||
            (rc = cm_json_adopt(choice, "function", &f)))
            goto out;
        rc = cm_json_adopt(chat, "tool_choice", &choice);
        goto out;
    }
    if (k > 1) { /* keep only the allowed functions: "required" then means one of them */
        cJSON *t = tools_arr->child;
        while (t) {
            cJSON *next = t->next;
            const char *tn =
                cp_tr_str_member(cJSON_GetObjectItemCaseSensitive(t, "function"), "name", "");
            bool keep = false;
            cJSON_ArrayForEach(n, names)
            {
                if (strcmp(n->valuestring, tn) == 0)
                    keep = true;
            }
            if (!keep)
                cJSON_Delete(cJSON_DetachItemViaPointer(tools_arr, t));
            t = next;
        }
    }
    rc = cm_json_set_string(chat, "tool_choice", "required");
out:
    cJSON_Delete(f);
    cJSON_Delete(choice);
    return rc;
}

/* ---- request: generationConfig ---- */

/* Spec 5.1 budget -> level, clamped to low|medium|high. */
static const char *effort_of_budget(int64_t b)
{
    if (b < 0)
        return "medium";
    if (b <= 1024)
        return "low";
    if (b <= 8192)
        return "medium";
    return "high";
}

static int thinking(const cJSON *tc, cJSON *chat, struct cm_json_err *je)
{
    const char *level = NULL, *effort = NULL;
    int64_t budget = 0;
    const cJSON *b;
    int rc;

    if (!cJSON_IsObject(tc))
        return bad(je, "thinkingConfig", "must be an object");
    if ((rc = str_of(tc, "thinkingLevel", "thinking_level", false, &level, je)))
        goto scoped;
    if (level) {
        if (ieq(level, "minimal") || ieq(level, "low"))
            effort = "low";
        else if (ieq(level, "medium"))
            effort = "medium";
        else if (ieq(level, "high"))
            effort = "high";
        else if (!ieq(level, "THINKING_LEVEL_UNSPECIFIED"))
            return bad(je, "thinkingConfig.thinkingLevel", "must be minimal, low, medium or high");
    } else if ((b = mem(tc, "thinkingBudget", "thinking_budget"))) {
        if (cm_json_to_int64(b, -1, INT64_C(1000000000), &budget))
            return bad(je, "thinkingConfig.thinkingBudget",
                       "must be an integer between -1 and 1000000000");
        if (budget != 0) /* 0 = thinking off: the pivot has no portable way to say it */
            effort = effort_of_budget(budget);
    }
    return effort ? cm_json_set_string(chat, "reasoning_effort", effort) : CM_OK;
scoped:
    cm_json_err_scope(je, "thinkingConfig");
    return rc;
}

/* responseSchema / responseJsonSchema and responseMimeType -> response_format. */
static int response_format(const cJSON *gc, cJSON *chat, struct cm_json_err *je)
{
    const char *mime = NULL;
    const cJSON *s = mem(gc, "responseSchema", "response_schema");
    const cJSON *js = mem(gc, "responseJsonSchema", "response_json_schema");
    cJSON *rf = NULL, *jsn = NULL, *schema = NULL;
    int rc;

    if ((rc = str_of(gc, "responseMimeType", "response_mime_type", false, &mime, je)))
        return rc;
    if (mime && strcmp(mime, "text/plain") != 0 && strcmp(mime, "application/json") != 0)
        return bad(je, "responseMimeType",
                   "is not supported on this model (only text/plain and application/json)");
    if (s && js)
        return bad(je, "responseJsonSchema", "cannot be given together with responseSchema");
    if (s)
        rc = copy_schema(s, true, "responseSchema", &schema, je);
    else if (js)
        rc = copy_schema(js, false, "responseJsonSchema", &schema, je);
    if (rc)
        return rc;
    if (schema) {
        if ((rc = cp_tr_typed_new("json_schema", &rf)) || (rc = cm_json_new_object(&jsn)) ||
            (rc = cm_json_set_string(jsn, "name", "response")) ||
            (rc = cm_json_adopt(jsn, "schema", &schema)) ||
            (rc = cm_json_adopt(rf, "json_schema", &jsn)))
            goto out;
    } else if (cp_tr_str_eq(mime, "application/json")) {
        if ((rc = cp_tr_typed_new("json_object", &rf)))
            goto out;
    }
    if (rf)
        rc = cm_json_adopt(chat, "response_format", &rf);
out:
    cJSON_Delete(schema);
    cJSON_Delete(jsn);
    cJSON_Delete(rf);
    return rc;
}

/* A number member @p camel copied to @p key when present. */
static int copy_number(const cJSON *gc, const char *camel, const char *snake, const char *key,
                       cJSON *chat, struct cm_json_err *je)
{
    const cJSON *v = mem(gc, camel, snake);

    if (!v)
        return CM_OK;
    if (!cJSON_IsNumber(v))
        return bad(je, camel, "must be a number");
    return cm_json_set_double(chat, key, v->valuedouble);
}

static int generation_config(const cJSON *gc, cJSON *chat, struct cm_json_err *je)
{
    static const struct {
        const char *camel, *snake, *key;
    } nums[] = {
        {"temperature", NULL, "temperature"},
        {"topP", "top_p", "top_p"},
        {"presencePenalty", "presence_penalty", "presence_penalty"},
        {"frequencyPenalty", "frequency_penalty", "frequency_penalty"},
    };
    static const struct {
        const char *camel, *snake;
    } refused[] = {
        {"speechConfig", "speech_config"},
        {"imageConfig", "image_config"},
        {"logprobs", NULL},
    };
    const cJSON *v, *m;
    int64_t n;
    size_t i;
    int rc = CM_OK;

    if (!cJSON_IsObject(gc))
        return bad(je, "generationConfig", "must be an object");
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if ((rc = copy_number(gc, nums[i].camel, nums[i].snake, nums[i].key, chat, je)))
            goto scoped;
    }
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (mem(gc, refused[i].camel, refused[i].snake)) {
            rc = bad(je, refused[i].camel, "is not supported on this model");
            goto scoped;
        }
    }
    if ((v = mem(gc, "responseLogprobs", "response_logprobs")) && !cJSON_IsFalse(v)) {
        rc = bad(je, "responseLogprobs", "is not supported on this model");
        goto scoped;
    }
    if ((v = mem(gc, "candidateCount", "candidate_count")) &&
        (cm_json_to_int64(v, 1, 1, &n) != CM_OK)) {
        rc = bad(je, "candidateCount", "must be 1 (this model returns one candidate)");
        goto scoped;
    }
    if ((v = mem(gc, "maxOutputTokens", "max_output_tokens"))) {
        if (cm_json_to_int64(v, 1, INT64_C(2147483647), &n) != CM_OK) {
            rc = bad(je, "maxOutputTokens", "must be an integer between 1 and 2147483647");
            goto scoped;
        }
        if ((rc = cm_json_set_int64(chat, "max_tokens", n)))
            return rc;
    }
    if ((v = mem(gc, "seed", NULL))) {
        if (cm_json_to_int64(v, CM_JSON_INT_MIN, CM_JSON_INT_MAX, &n) != CM_OK) {
            rc = bad(je, "seed", "must be an integer");
            goto scoped;
        }
        if ((rc = cm_json_set_int64(chat, "seed", n)))
            return rc;
    }
    if ((v = mem(gc, "stopSequences", "stop_sequences"))) {
        cJSON *stop;
        if (!cJSON_IsArray(v)) {
            rc = bad(je, "stopSequences", "must be an array");
            goto scoped;
        }
        i = 0;
        cJSON_ArrayForEach(m, v)
        {
            if (!cJSON_IsString(m)) {
                char f[48];
                snprintf(f, sizeof(f), "stopSequences[%zu]", i);
                rc = bad(je, f, "must be a string");
                goto scoped;
            }
            i++;
        }
        if (i) {
            if (!(stop = cJSON_Duplicate(v, 1)))
                return CM_ERR_NOMEM;
            if ((rc = cm_json_set_item(chat, "stop", stop)))
                return rc;
        }
    }
    if ((v = mem(gc, "responseModalities", "response_modalities"))) {
        if (!cJSON_IsArray(v)) {
            rc = bad(je, "responseModalities", "must be an array");
            goto scoped;
        }
        i = 0;
        cJSON_ArrayForEach(m, v)
        {
            if (!cJSON_IsString(m) || !ieq(m->valuestring, "TEXT")) {
                char f[48];
                snprintf(f, sizeof(f), "responseModalities[%zu]", i);
                rc = bad(je, f, "is not supported on this model (only TEXT)");
                goto scoped;
            }
            i++;
        }
    }
    if ((rc = response_format(gc, chat, je)))
        goto scoped;
    if ((v = mem(gc, "thinkingConfig", "thinking_config")) && (rc = thinking(v, chat, je)))
        goto scoped;
    return CM_OK;
scoped:
    if (rc != CM_ERR_NOMEM)
        cm_json_err_scope(je, "generationConfig");
    return rc;
}

/* ---- request: the whole ---- */

static int build_request(const cJSON *req, const char *model, bool stream, cJSON **out,
                         struct cm_json_err *je)
{
    struct conv c;
    const cJSON *body = req, *inner, *v;
    cJSON *chat = NULL, *tarr = NULL;
    int rc;

    memset(&c, 0, sizeof(c));
    inner = cJSON_GetObjectItemCaseSensitive(req, "request");
    if (cJSON_IsObject(inner) && !mem(req, "contents", NULL))
        body = inner; /* Gemini CLI envelope {"model","project","request":{...}} */
    if (mem(body, "cachedContent", "cached_content")) {
        rc = bad(je, "cachedContent", "is not supported on this model");
        goto out;
    }
    if ((rc = cm_json_new_object(&chat)) || (rc = cm_json_set_string(chat, "model", model)) ||
        (rc = cm_json_new_array(&c.messages)))
        goto out;
    if ((v = mem(body, "systemInstruction", "system_instruction")) &&
        (rc = system_instruction(&c, v, je)))
        goto out;
    if ((rc = contents(&c, body, je)) || (rc = cm_json_adopt(chat, "messages", &c.messages)) ||
        (rc = cm_json_set_bool(chat, "stream", stream)))
        goto out;
    if ((v = mem(body, "tools", NULL))) {
        if ((rc = cm_json_new_array(&tarr)) || (rc = tools(v, tarr, je)))
            goto out;
    }
    if ((v = mem(body, "toolConfig", "tool_config")) && (rc = tool_config(v, chat, tarr, je)))
        goto out;
    if (cJSON_GetArraySize(tarr) && (rc = cm_json_adopt(chat, "tools", &tarr)))
        goto out;
    if ((v = mem(body, "generationConfig", "generation_config")) &&
        (rc = generation_config(v, chat, je)))
        goto out;
    *out = chat;
    chat = NULL;
out:
    cJSON_Delete(tarr);
    cJSON_Delete(c.messages);
    cJSON_Delete(chat);
    cm_free(c.calls);
    return rc;
}

int cp_tr_gemini_chat_request(const cJSON *req, const char *model, bool stream, cJSON **chat,
                              struct cp_tr_err *err)
{
    struct cm_json_err je;
    cJSON *body = NULL;
    char prefix[CM_JSON_ERR_FIELD_MAX + 16];
    int rc;

    memset(&je, 0, sizeof(je));
    if (!chat || !model) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsObject(req)) {
        cm_json_err_set(&je, CM_ERR_INVAL, "", "the request body must be a JSON object");
        rc = CM_ERR_INVAL;
    } else {
        rc = build_request(req, model, stream, &body, &je);
    }
    if (rc == CM_OK) {
        *chat = body;
        return CM_OK;
    }
    rc = cp_tr_err_from_json(err, rc, &je);
    /* "field 'x' must ..." -> "x: must ...", so the message starts with the path */
    if (err && err->status == 400 && err->field[0]) {
        size_t pl;
        snprintf(prefix, sizeof(prefix), "field '%s' ", err->field);
        pl = strlen(prefix);
        if (strncmp(err->msg, prefix, pl) == 0) {
            char rest[CP_TR_ERR_MSG_MAX];
            snprintf(rest, sizeof(rest), "%s", err->msg + pl);
            if (snprintf(err->msg, sizeof(err->msg), "%s: %s", err->field, rest) < 0)
                err->msg[0] = '\0';
        }
    }
    return rc;
}

/* ---- response: shared pieces ---- */

struct usage {
    bool seen;
    int64_t prompt, completion, total, cached, reasoning;
};

static int64_t int_member(const cJSON *o, const char *name)
{
    int64_t v = 0;

    if (cm_json_to_int64(cJSON_GetObjectItemCaseSensitive(o, name), 0, CM_JSON_INT_MAX, &v))
        return 0;
    return v;
}

static void read_usage(const cJSON *u, struct usage *out)
{
    if (!cJSON_IsObject(u))
        return;
    out->seen = true;
    out->prompt = int_member(u, "prompt_tokens");
    out->completion = int_member(u, "completion_tokens");
    out->total = int_member(u, "total_tokens");
    out->cached =
        int_member(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens");
    out->reasoning = int_member(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details"),
                                "reasoning_tokens");
}

/* Gemini counts thoughts apart from candidates; OpenAI's completion includes them. */
static int usage_metadata(const struct usage *u, cJSON *resp)
{
    int64_t cand = u->completion - u->reasoning;
    int64_t total = u->total ? u->total : u->prompt + u->completion;
    cJSON *m = NULL;
    int rc;

    if (cand < 0)
        cand = 0;
    if ((rc = cm_json_new_object(&m)) ||
        (rc = cm_json_set_int64(m, "promptTokenCount", u->prompt)) ||
        (rc = cm_json_set_int64(m, "candidatesTokenCount", cand)) ||
        (rc = cm_json_set_int64(m, "totalTokenCount", total)) ||
        (u->reasoning > 0 && (rc = cm_json_set_int64(m, "thoughtsTokenCount", u->reasoning))) ||
        (u->cached > 0 && (rc = cm_json_set_int64(m, "cachedContentTokenCount", u->cached)))) {
        cJSON_Delete(m);
        return rc;
    }
    return cm_json_adopt(resp, "usageMetadata", &m);
}

static const char *finish_name(const char *fr)
{
    if (!fr || strcmp(fr, "stop") == 0 || strcmp(fr, "tool_calls") == 0 ||
        strcmp(fr, "function_call") == 0)
        return "STOP";
    if (strcmp(fr, "length") == 0)
        return "MAX_TOKENS";
    if (strcmp(fr, "content_filter") == 0)
        return "SAFETY";
    return "OTHER";
}

/* Appends {"text":@p s (@p n bytes)[,"thought":true]} to @p parts. */
static int add_text_part(cJSON *parts, const char *s, size_t n, bool thought)
{
    cJSON *p = NULL;
    int rc;

    if ((rc = cm_json_new_object(&p)) || (rc = cm_json_set_stringn(p, "text", s, n)) ||
        (thought && (rc = cm_json_set_bool(p, "thought", true)))) {
        cJSON_Delete(p);
        return rc;
    }
    return cm_json_adopt(parts, NULL, &p);
}

/* Appends {"functionCall":{"name","args","id"?}} to @p parts (args parsed from @p args). */
static int add_call_part(cJSON *parts, const char *name, const char *args, const char *id)
{
    cJSON *p = NULL, *fc = NULL, *a = NULL;
    int rc;

    if ((rc = cp_tr_args_object(args ? args : "", &a)) || (rc = cm_json_new_object(&fc)) ||
        (rc = cm_json_set_string(fc, "name", name ? name : "")) ||
        (rc = cm_json_adopt(fc, "args", &a)) || (id && (rc = cm_json_set_string(fc, "id", id))) ||
        (rc = cm_json_new_object(&p)) || (rc = cm_json_adopt(p, "functionCall", &fc)))
        goto out;
    rc = cm_json_adopt(parts, NULL, &p);
out:
    cJSON_Delete(a);
    cJSON_Delete(fc);
    cJSON_Delete(p);
    return rc;
}

/*
 * A new GenerateContentResponse around @p parts (taken, also on failure) in *@p out:
 * finishReason when @p finish is not NULL, usageMetadata when @p u was seen.
 */
static int response_new(cJSON **parts, const char *finish, const struct usage *u, const char *model,
                        const char *id, cJSON **out)
{
    cJSON *resp = NULL, *cands = NULL, *cand = NULL, *content = NULL;
    int rc;

    if ((rc = cm_json_new_object(&content)) ||
        (rc = cm_json_set_string(content, "role", "model")) ||
        (rc = cm_json_adopt(content, "parts", parts)) || (rc = cm_json_new_object(&cand)) ||
        (rc = cm_json_adopt(cand, "content", &content)) ||
        (finish && (rc = cm_json_set_string(cand, "finishReason", finish))) ||
        (rc = cm_json_set_int64(cand, "index", 0)) || (rc = cm_json_new_array(&cands)) ||
        (rc = cm_json_adopt(cands, NULL, &cand)) || (rc = cm_json_new_object(&resp)) ||
        (rc = cm_json_adopt(resp, "candidates", &cands)))
        goto out;
    if (u && u->seen && (rc = usage_metadata(u, resp)))
        goto out;
    if ((model && model[0] && (rc = cm_json_set_string(resp, "modelVersion", model))) ||
        (rc = cm_json_set_string(resp, "responseId", id)))
        goto out;
    *out = resp;
    resp = NULL;
out:
    cJSON_Delete(*parts);
    *parts = NULL;
    cJSON_Delete(content);
    cJSON_Delete(cand);
    cJSON_Delete(cands);
    cJSON_Delete(resp);
    return rc;
}

/* ---- stream ---- */

struct acc_call {
    int64_t index; /* the chunk's tool_calls[].index */
    char *id;
    char *name;
    struct cm_buf args;
    bool emitted;
};

struct cp_tr_gemini_chat_stream {
    char *id;    /* responseId */
    char *model; /* modelVersion, or NULL */
    struct acc_call *calls;
    size_t ncalls, cap;
    char *finish; /* the finish_reason seen, or NULL */
    struct usage usage;
    bool content; /* has_content */
    bool done;    /* stream_end or stream_fail ran */
};

int cp_tr_gemini_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                 struct cp_tr_gemini_chat_stream **out)
{
    struct cp_tr_gemini_chat_stream *st;
    const char *model = cp_tr_str_member(req, "model", NULL);

    (void)created;
    if (!out || !id)
        return CM_ERR_INVAL;
    if (!(st = cm_calloc(1, sizeof(*st))))
        return CM_ERR_NOMEM;
    if (!(st->id = cm_strdup(id)) || (model && model[0] && !(st->model = cm_strdup(model)))) {
        cp_tr_gemini_chat_stream_free(st);
        return CM_ERR_NOMEM;
    }
    *out = st;
    return CM_OK;
}

void cp_tr_gemini_chat_stream_free(struct cp_tr_gemini_chat_stream *st)
{
    size_t i;

    if (!st)
        return;
    for (i = 0; i < st->ncalls; i++) {
        cm_free(st->calls[i].id);
        cm_free(st->calls[i].name);
        cm_buf_cleanup(&st->calls[i].args);
    }
    cm_free(st->calls);
    cm_free(st->finish);
    cm_free(st->model);
    cm_free(st->id);
    cm_free(st);
}

bool cp_tr_gemini_chat_stream_has_content(const struct cp_tr_gemini_chat_stream *st)
{
    return st && st->content;
}

/* Appends "data: <resp>\n\n" for @p parts (taken) to @p out. */
static int emit(struct cp_tr_gemini_chat_stream *st, cJSON **parts, const char *finish,
                bool with_usage, struct cm_buf *out)
{
    cJSON *resp = NULL;
    char *s = NULL;
    size_t n = 0;
    int rc;

    if ((rc = response_new(parts, finish, with_usage ? &st->usage : NULL, st->model, st->id,
                           &resp)) ||
        (rc = cm_json_print(resp, &s, &n)))
        goto out;
    if ((rc = cm_buf_reserve(out, n + 8)))
        goto out;
    (void)cm_buf_append_str(out, "data: "); /* cannot fail after the reserve */
    (void)cm_buf_append(out, s, n);
    (void)cm_buf_append_str(out, "\n\n");
out:
    cm_free(s);
    cJSON_Delete(resp);
    return rc;
}

/* The tool calls gathered and not yet shown -> one event. */
static int flush_calls(struct cp_tr_gemini_chat_stream *st, struct cm_buf *out)
{
    cJSON *parts = NULL;
    size_t i;
    int rc;

    if ((rc = cm_json_new_array(&parts)))
        return rc;
    for (i = 0; i < st->ncalls; i++) {
        struct acc_call *c = &st->calls[i];
        if (c->emitted)
            continue;
        if ((rc = add_call_part(parts, c->name, c->args.data, c->id)))
            goto out;
    }
    if (!cJSON_GetArraySize(parts))
        goto out;
    if ((rc = emit(st, &parts, NULL, false, out)))
        goto out;
    for (i = 0; i < st->ncalls; i++)
        st->calls[i].emitted = true;
out:
    cJSON_Delete(parts);
    return rc;
}

static int set_str(char **dst, const char *s)
{
    char *d;

    if (*dst && strcmp(*dst, s) == 0)
        return CM_OK;
    if (!(d = cm_strdup(s)))
        return CM_ERR_NOMEM;
    cm_free(*dst);
    *dst = d;
    return CM_OK;
}

/* One tool_calls[] fragment @p tc at array position @p pos. */
static int gather_call(struct cp_tr_gemini_chat_stream *st, const cJSON *tc, size_t pos,
                       struct cp_tr_err *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *id = cp_tr_str_member(tc, "id", NULL);
    const char *name = cp_tr_str_member(f, "name", NULL);
    const char *args = cp_tr_str_member(f, "arguments", NULL);
    struct acc_call *c = NULL;
    int64_t index;
    size_t i;
    int rc;

    if (cm_json_to_int64(cJSON_GetObjectItemCaseSensitive(tc, "index"), 0, INT32_MAX, &index))
        index = (int64_t)pos;
    for (i = 0; i < st->ncalls; i++) {
        if (st->calls[i].index == index) {
            c = &st->calls[i];
            break;
        }
    }
    if (!c) {
        if (st->ncalls >= CP_TR_GEMINI_CHAT_MAX_STREAM_CALLS) {
            cp_tr_err_set(err, CM_ERR_LIMIT, 502, "", "server_error", "too_many_tool_calls",
                          "the answer has more than %d tool calls",
                          CP_TR_GEMINI_CHAT_MAX_STREAM_CALLS);
            return CM_ERR_LIMIT;
        }
        if (st->ncalls == st->cap) {
            size_t ncap = st->cap ? st->cap * 2 : 4;
            struct acc_call *n = cm_realloc(st->calls, ncap * sizeof(*n));
            if (!n)
                goto nomem;
            st->calls = n;
            st->cap = ncap;
        }
        c = &st->calls[st->ncalls++];
        memset(c, 0, sizeof(*c));
        c->index = index;
        cm_buf_init(&c->args, CP_TR_GEMINI_CHAT_MAX_ARGS);
    }
    st->content = true;
    if ((id && id[0] && !c->id && !(c->id = cm_strdup(id))) ||
        (name && name[0] && !c->name && !(c->name = cm_strdup(name))))
        goto nomem;
    if (args && (rc = cm_buf_append_str(&c->args, args))) {
        if (rc == CM_ERR_NOMEM)
            goto nomem;
        cp_tr_err_set(err, rc, 502, "", "server_error", "tool_call_too_large",
                      "a tool call's arguments exceed %u bytes", CP_TR_GEMINI_CHAT_MAX_ARGS);
        return rc;
    }
    return CM_OK;
nomem:
    cp_tr_server_error(err, CM_ERR_NOMEM, "out of memory");
    return CM_ERR_NOMEM;
}

int cp_tr_gemini_chat_stream_chunk(struct cp_tr_gemini_chat_stream *st, const cJSON *chunk,
                                   struct cm_buf *out, struct cp_tr_err *err)
{
    const cJSON *choices, *c0, *delta, *tcs, *tc, *fr;
    const char *model, *reasoning, *text;
    cJSON *parts = NULL;
    size_t pos = 0;
    int rc = CM_OK;

    if (!st || st->done || !cJSON_IsObject(chunk))
        return CM_OK;
    choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    if (!cJSON_IsArray(choices))
        return CM_OK; /* malformed: ignored whole */
    model = cp_tr_str_member(chunk, "model", NULL);
    if (model && model[0] && (rc = set_str(&st->model, model)))
        goto fail;
    read_usage(cJSON_GetObjectItemCaseSensitive(chunk, "usage"), &st->usage);
    c0 = choices->child;
    if (!cJSON_IsObject(c0))
        return CM_OK; /* the usage-only chunk */
    delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    reasoning = cp_tr_str_member(delta, "reasoning_content", "");
    text = cp_tr_str_member(delta, "content", "");
    if (reasoning[0] || text[0]) {
        st->content = true;
        if ((rc = cm_json_new_array(&parts)) ||
            (reasoning[0] && (rc = add_text_part(parts, reasoning, strlen(reasoning), true))) ||
            (text[0] && (rc = add_text_part(parts, text, strlen(text), false))) ||
            (rc = emit(st, &parts, NULL, false, out)))
            goto fail;
    }
    tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    if (!cJSON_IsArray(tcs))
        tcs = NULL;
    cJSON_ArrayForEach(tc, tcs)
    {
        if (cJSON_IsObject(tc) && (rc = gather_call(st, tc, pos, err)))
            return rc;
        pos++;
    }
    fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(fr)) {
        if ((rc = set_str(&st->finish, fr->valuestring)) || (rc = flush_calls(st, out)))
            goto fail;
    }
    return CM_OK;
fail:
    cJSON_Delete(parts);
    if (rc == CM_ERR_LIMIT)
        cp_tr_err_set(err, rc, 500, "", "server_error", "", "the client stream buffer is full");
    else
        cp_tr_server_error(err, rc, "out of memory");
    return rc;
}

int cp_tr_gemini_chat_stream_end(struct cp_tr_gemini_chat_stream *st, struct cm_buf *out)
{
    cJSON *parts = NULL;
    int rc;

    if (!st || st->done)
        return CM_OK;
    if ((rc = flush_calls(st, out)))
        return rc;
    if ((rc = cm_json_new_array(&parts)) || (rc = add_text_part(parts, "", 0, false)) ||
        (rc = emit(st, &parts, finish_name(st->finish), true, out))) {
        cJSON_Delete(parts);
        return rc;
    }
    st->done = true;
    return CM_OK;
}

int cp_tr_gemini_chat_stream_fail(struct cp_tr_gemini_chat_stream *st, const struct cp_tr_err *e,
                                  struct cm_buf *out)
{
    char *body = NULL;
    size_t n = 0;
    int rc;

    if (!st || st->done)
        return CM_OK;
    if (!e)
        return CM_ERR_INVAL;
    if ((rc = cp_tr_gemini_error_body(e->status ? e->status : 500, e->msg, &body, &n)))
        return rc;
    if ((rc = cm_buf_reserve(out, n + 24)) == CM_OK) {
        (void)cm_buf_append_str(out, "event: error\ndata: ");
        (void)cm_buf_append(out, body, n);
        (void)cm_buf_append_str(out, "\n\n");
        st->done = true;
    }
    cm_free(body);
    return rc;
}

/* ---- non-stream ---- */

int cp_tr_gemini_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                               int64_t created, cJSON **out, struct cp_tr_err *err)
{
    const cJSON *choices, *c0, *msg, *tc;
    const char *model, *reasoning, *text, *fr;
    struct usage u;
    cJSON *parts = NULL;
    int rc;

    (void)created;
    memset(&u, 0, sizeof(u));
    if (!out || !id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    choices = cJSON_GetObjectItemCaseSensitive(completion, "choices");
    c0 = cJSON_IsArray(choices) ? choices->child : NULL;
    msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    if (!cJSON_IsObject(completion) || !cJSON_IsObject(msg)) {
        cp_tr_malformed_error(err, "the completion has no choices[0].message");
        return CM_ERR_UPSTREAM;
    }
    model = cp_tr_str_member(completion, "model", NULL);
    if (!model || !model[0])
        model = cp_tr_str_member(req, "model", NULL);
    reasoning = cp_tr_str_member(msg, "reasoning_content", "");
    text = cp_tr_str_member(msg, "content", "");
    fr = cp_tr_str_member(c0, "finish_reason", NULL);
    read_usage(cJSON_GetObjectItemCaseSensitive(completion, "usage"), &u);
    if ((rc = cm_json_new_array(&parts)) ||
        (reasoning[0] && (rc = add_text_part(parts, reasoning, strlen(reasoning), true))) ||
        (text[0] && (rc = add_text_part(parts, text, strlen(text), false))))
        goto out;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"))
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
        if (!cJSON_IsObject(f))
            continue;
        if ((rc = add_call_part(parts, cp_tr_str_member(f, "name", ""),
                                cp_tr_str_member(f, "arguments", ""),
                                cp_tr_str_member(tc, "id", NULL))))
            goto out;
    }
    if (!cJSON_GetArraySize(parts) && (rc = add_text_part(parts, "", 0, false)))
        goto out;
    rc = response_new(&parts, finish_name(fr), &u, model, id, out);
out:
    cJSON_Delete(parts);
    if (rc)
        cp_tr_server_error(err, rc, "out of memory");
    return rc;
}

/* ---- errors ---- */

const char *cp_tr_gemini_status_name(unsigned status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 408:
    case 504:
        return "DEADLINE_EXCEEDED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 503:
        return "UNAVAILABLE";
    default:
        return "INTERNAL";
    }
}

int cp_tr_gemini_error_body(unsigned status, const char *msg, char **out, size_t *len)
{
    cJSON *o = NULL, *e = NULL;
    int rc;

    if (!out)
        return CM_ERR_INVAL;
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_new_object(&e)) ||
        (rc = cm_json_set_int64(e, "code", status)) ||
        (rc = cm_json_set_string(e, "message", msg ? msg : "")) ||
        (rc = cm_json_set_string(e, "status", cp_tr_gemini_status_name(status))) ||
        (rc = cm_json_adopt(o, "error", &e)))
        goto out;
    rc = cm_json_print(o, out, len);
out:
    cJSON_Delete(e);
    cJSON_Delete(o);
    return rc;
}
