/* SPDX-License-Identifier: MIT */
/*
 * chat_codex.c - OpenAI Chat Completions <-> Codex Responses translation (pure).
 *
 * Request: a chat.completions tree becomes a Codex /responses body following spec
 * cliproxyapi.md 5.1/5.2 and the executor body rules of 3.1(d). Response: a state machine fed
 * one Codex SSE event at a time writes chat.completion.chunk events (5.3); an aggregator
 * turns a whole SSE body into one chat.completion. Errors name the request field at fault;
 * upstream failures map to HTTP statuses as in 3.1(e); an early end is the executor's 408.
 */
#include "translate/chat_codex.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors ---- */

__attribute__((format(printf, 7, 8))) static void tr_err_set(struct cp_tr_err *e, int rc,
                                                             unsigned status, const char *field,
                                                             const char *type, const char *code,
                                                             const char *fmt, ...)
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

/* A request-side failure found through cm_json (field errors, limits, OOM). */
static void tr_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je)
{
    if (rc == CM_ERR_NOMEM) {
        tr_err_set(e, rc, 500, "", "server_error", "", "out of memory");
        return;
    }
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INVAL; /* a missing required field is a bad request to our callers */
    tr_err_set(e, rc, 400, je->field, "invalid_request_error", "", "%s",
               je->msg[0] ? je->msg : "invalid request");
}

/* ---- small helpers ---- */

static bool str_eq(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

static bool slice_eq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return p && n == l && memcmp(p, lit, l) == 0;
}

/* Length of the longest prefix of @p s within @p max bytes that does not split a UTF-8 char. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n;

    if (len <= max)
        return len;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
        n--;
    return n;
}

static int dup_into(cJSON *parent, const char *name, const cJSON *item)
{
    return cm_json_set_item(parent, name, cJSON_Duplicate(item, 1));
}

/* ---- tool names: Codex allows 64 bytes; longer ones are shortened and mapped back ---- */

struct cp_tr_chat_codex_name {
    char *orig;
    char shrt[CP_TR_CHAT_CODEX_NAME_MAX + 1];
};

struct cp_tr_chat_codex_names {
    struct cp_tr_chat_codex_name *v;
    size_t n;
};

int cp_tr_chat_codex_tool_name(const char *name, char *out, size_t out_size)
{
    const char *src;
    size_t len, n;

    if (!name || !out || out_size < CP_TR_CHAT_CODEX_NAME_MAX + 1)
        return CM_ERR_INVAL;
    len = strlen(name);
    if (len <= CP_TR_CHAT_CODEX_NAME_MAX) {
        memcpy(out, name, len + 1);
        return CM_OK;
    }
    if (strncmp(name, "mcp__", 5) == 0) {
        const char *last = NULL, *p = name + 5;
        const char *hit;
        while ((hit = strstr(p, "__")) != NULL) {
            last = hit;
            p = hit + 2;
        }
        if (last && last[2]) {
            src = last + 2;
            n = utf8_cut(src, strlen(src), CP_TR_CHAT_CODEX_NAME_MAX - 5);
            memcpy(out, "mcp__", 5);
            memcpy(out + 5, src, n);
            out[5 + n] = '\0';
            return CM_OK;
        }
    }
    n = utf8_cut(name, len, CP_TR_CHAT_CODEX_NAME_MAX);
    memcpy(out, name, n);
    out[n] = '\0';
    return CM_OK;
}

static void names_free(struct cp_tr_chat_codex_names *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->n; i++)
        cm_free(m->v[i].orig);
    cm_free(m->v);
    cm_free(m);
}

static const char *names_short(const struct cp_tr_chat_codex_names *m, const char *orig)
{
    size_t i;

    for (i = 0; m && i < m->n; i++)
        if (strcmp(m->v[i].orig, orig) == 0)
            return m->v[i].shrt;
    return NULL;
}

static const char *names_orig(const struct cp_tr_chat_codex_names *m, const char *shrt)
{
    size_t i;

    for (i = 0; m && i < m->n; i++)
        if (strcmp(m->v[i].shrt, shrt) == 0)
            return m->v[i].orig;
    return shrt;
}

static bool names_taken(const struct cp_tr_chat_codex_names *m, const char *shrt)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        if (strcmp(m->v[i].shrt, shrt) == 0)
            return true;
    return false;
}

/*
 * The names of @p tools' function entries, shortened and made unique in order. Lenient:
 * entries that are not well-formed function tools are skipped (the request translator
 * reports them). *@p out is NULL when there are no function tools.
 */
static int names_build(const cJSON *tools, struct cp_tr_chat_codex_names **out)
{
    struct cp_tr_chat_codex_names *m = NULL;
    const cJSON *t;
    size_t cap;
    int rc = CM_OK;

    if (!cJSON_IsArray(tools) || !cJSON_GetArraySize(tools)) {
        *out = NULL;
        return CM_OK;
    }
    cap = (size_t)cJSON_GetArraySize(tools);
    m = cm_calloc(1, sizeof(*m));
    if (!m || !(m->v = cm_calloc(cap, sizeof(*m->v)))) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
        struct cp_tr_chat_codex_name *e;
        char base[CP_TR_CHAT_CODEX_NAME_MAX + 1];

        if (!cJSON_IsString(ty) || !str_eq(ty->valuestring, "function") || !cJSON_IsString(nm))
            continue;
        if (names_short(m, nm->valuestring))
            continue; /* a repeated tool: same short name */
        e = &m->v[m->n];
        if (cp_tr_chat_codex_tool_name(nm->valuestring, base, sizeof(base)) != CM_OK) {
            rc = CM_ERR_INTERNAL;
            goto out;
        }
        memcpy(e->shrt, base, sizeof(base));
        for (unsigned k = 1; names_taken(m, e->shrt); k++) {
            char tail[16];
            size_t tl = (size_t)snprintf(tail, sizeof(tail), "_%u", k);
            size_t bl = utf8_cut(base, strlen(base), CP_TR_CHAT_CODEX_NAME_MAX - tl);
            memcpy(e->shrt, base, bl);
            memcpy(e->shrt + bl, tail, tl + 1);
        }
        if (!(e->orig = cm_strdup(nm->valuestring))) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        m->n++;
    }
    *out = m;
    m = NULL;
out:
    names_free(m);
    return rc;
}

/* The Codex name for function @p name (from the tools when declared there). */
static void name_for_codex(const struct cp_tr_chat_codex_names *m, const char *name,
                           char out[CP_TR_CHAT_CODEX_NAME_MAX + 1])
{
    const char *s = names_short(m, name);

    if (s)
        memcpy(out, s, strlen(s) + 1);
    else
        (void)cp_tr_chat_codex_tool_name(name, out, CP_TR_CHAT_CODEX_NAME_MAX + 1);
}

/* ---- 5.1: model suffix and reasoning effort ---- */

/* The Codex effort for a level or budget word @p v (@p n bytes), or NULL if not one. */
static const char *effort_of(const char *v, size_t n)
{
    static const char *const levels[] = {"none", "minimal", "low", "medium", "high", "xhigh"};
    int64_t budget = 0;
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (slice_eq(v, n, levels[i]))
            return levels[i];
    if (slice_eq(v, n, "max"))
        return "xhigh"; /* Codex's top level */
    if (slice_eq(v, n, "auto") || slice_eq(v, n, "-1"))
        return "medium"; /* Codex has no dynamic level: the default */
    if (n == 0 || n > 12)
        return NULL;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return NULL;
        budget = budget * 10 + (v[i] - '0');
    }
    if (budget == 0)
        return "none";
    if (budget <= 512)
        return "minimal";
    if (budget <= 1024)
        return "low";
    if (budget <= 8192)
        return "medium";
    if (budget <= 24576)
        return "high";
    return "xhigh";
}

/* Declared in translate.h (shared by the chat and responses translators). */
int cp_tr_codex_split_model(const char *model, char **base, const char **effort,
                            struct cm_json_err *je)
{
    size_t len = strlen(model);
    const char *open;
    char *b;

    *effort = NULL;
    if (len && model[len - 1] == ')' && (open = strrchr(model, '(')) != NULL) {
        size_t blen = (size_t)(open - model);
        const char *inner = open + 1;
        size_t ilen = len - blen - 2;
        if (!blen) {
            cm_json_err_set(je, CM_ERR_INVAL, "model", "must name a model before '('");
            return CM_ERR_INVAL;
        }
        if (!(*effort = effort_of(inner, ilen))) {
            cm_json_err_set(je, CM_ERR_INVAL, "model",
                            "has an unknown reasoning suffix (use a level or a token budget)");
            return CM_ERR_INVAL;
        }
        len = blen;
    }
    if (!len) {
        cm_json_err_set(je, CM_ERR_INVAL, "model", "must not be empty");
        return CM_ERR_INVAL;
    }
    if (!(b = cm_strndup(model, len)))
        return CM_ERR_NOMEM;
    *base = b;
    return CM_OK;
}

/* ---- 5.2: messages -> input items ---- */

/* Text of a string content, or of an array of text parts joined, into @p b. */
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

/* One content part of a user/system/assistant message -> a Responses content part. */
static int conv_part(const cJSON *p, const char *role, cJSON *parts, struct cm_json_err *je)
{
    bool assistant = str_eq(role, "assistant");
    bool user = str_eq(role, "user");
    const char *type = NULL, *s = NULL;
    cJSON *o = NULL, *sub = NULL;
    int rc;

    if ((rc = cm_json_get_string(p, "type", &type, je)) != CM_OK)
        return rc;
    if ((rc = cm_json_new_object(&o)) != CM_OK)
        return rc;
    if (str_eq(type, "text")) {
        if ((rc = cm_json_get_string(p, "text", &s, je)) != CM_OK)
            goto out;
        if ((rc = cm_json_set_string(o, "type", assistant ? "output_text" : "input_text")) ||
            (rc = cm_json_set_string(o, "text", s)))
            goto out;
    } else if (str_eq(type, "refusal") && assistant) {
        if ((rc = cm_json_get_string(p, "refusal", &s, je)) != CM_OK)
            goto out;
        if ((rc = cm_json_set_string(o, "type", "refusal")) ||
            (rc = cm_json_set_string(o, "refusal", s)))
            goto out;
    } else if (str_eq(type, "image_url") && user) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(p, "image_url");
        const char *detail = NULL;
        if (cJSON_IsString(iu)) {
            s = iu->valuestring;
        } else if ((rc = cm_json_get_object(p, "image_url", &sub, je)) != CM_OK ||
                   (rc = cm_json_get_string(sub, "url", &s, je)) != CM_OK ||
                   (rc = cm_json_opt_string(sub, "detail", NULL, &detail, je)) != CM_OK) {
            if (sub)
                cm_json_err_scope(je, "image_url");
            goto out;
        }
        if ((rc = cm_json_set_string(o, "type", "input_image")) ||
            (rc = cm_json_set_string(o, "image_url", s)) ||
            (detail && (rc = cm_json_set_string(o, "detail", detail))))
            goto out;
    } else if (str_eq(type, "file") && user) {
        const char *data = NULL, *fid = NULL, *fname = NULL;
        if ((rc = cm_json_get_object(p, "file", &sub, je)) != CM_OK)
            goto out;
        if ((rc = cm_json_opt_string(sub, "file_data", NULL, &data, je)) != CM_OK ||
            (rc = cm_json_opt_string(sub, "file_id", NULL, &fid, je)) != CM_OK ||
            (rc = cm_json_opt_string(sub, "filename", NULL, &fname, je)) != CM_OK) {
            cm_json_err_scope(je, "file");
            goto out;
        }
        if (!data && !fid) {
            cm_json_err_set(je, CM_ERR_INVAL, "file", "needs file_data or file_id");
            rc = CM_ERR_INVAL;
            goto out;
        }
        if ((rc = cm_json_set_string(o, "type", "input_file")) ||
            (data && (rc = cm_json_set_string(o, "file_data", data))) ||
            (fid && (rc = cm_json_set_string(o, "file_id", fid))) ||
            (fname && (rc = cm_json_set_string(o, "filename", fname))))
            goto out;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "unsupported content part '%.32s' for role '%.16s'", type, role);
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cm_json_adopt(parts, NULL, &o);
out:
    cJSON_Delete(o);
    return rc;
}

/* The content of message @p m as Responses parts in a new array (maybe empty). */
static int conv_content(const cJSON *m, const char *role, cJSON **parts_out, struct cm_json_err *je)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    bool assistant = str_eq(role, "assistant");
    cJSON *parts = NULL, *o = NULL;
    const cJSON *p;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_new_array(&parts)) != CM_OK)
        return rc;
    if (!content || cJSON_IsNull(content)) {
        if (!assistant) {
            cm_json_err_set(je, CM_ERR_INVAL, "content", "is required");
            rc = CM_ERR_INVAL;
            goto out;
        }
    } else if (cJSON_IsString(content)) {
        if (!assistant || content->valuestring[0]) {
            if ((rc = cm_json_new_object(&o)) ||
                (rc = cm_json_set_string(o, "type", assistant ? "output_text" : "input_text")) ||
                (rc = cm_json_set_string(o, "text", content->valuestring)))
                goto out;
            rc = cm_json_adopt(parts, NULL, &o);
            if (rc)
                goto out;
        }
    } else if (cJSON_IsArray(content)) {
        if (cJSON_GetArraySize(content) > CP_TR_CHAT_CODEX_MAX_PARTS) {
            cm_json_err_set(je, CM_ERR_LIMIT, "content", "has more than %d parts",
                            CP_TR_CHAT_CODEX_MAX_PARTS);
            rc = CM_ERR_LIMIT;
            goto out;
        }
        cJSON_ArrayForEach(p, content)
        {
            if ((rc = conv_part(p, role, parts, je)) != CM_OK) {
                cm_json_err_scope(je, "content[%zu]", i);
                goto out;
            }
            i++;
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of parts");
        rc = CM_ERR_INVAL;
        goto out;
    }
    *parts_out = parts;
    parts = NULL;
out:
    cJSON_Delete(o);
    cJSON_Delete(parts);
    return rc;
}

static int add_message_item(cJSON *input, const char *role, cJSON *parts)
{
    cJSON *o = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) != CM_OK) {
        cJSON_Delete(parts);
        return rc;
    }
    if ((rc = cm_json_set_string(o, "type", "message")) ||
        (rc = cm_json_set_string(o, "role", role))) {
        cJSON_Delete(parts);
        goto out;
    }
    if ((rc = cm_json_set_item(o, "content", parts))) /* takes parts, also on failure */
        goto out;
    rc = cm_json_adopt(input, NULL, &o);
out:
    cJSON_Delete(o);
    return rc;
}

/* assistant tool_calls -> function_call items. */
static int conv_tool_calls(const cJSON *calls, const struct cp_tr_chat_codex_names *names,
                           cJSON *input, struct cm_json_err *je)
{
    const cJSON *c;
    size_t i = 0;
    cJSON *o = NULL;
    int rc = CM_OK;

    if (cJSON_GetArraySize(calls) > CP_TR_CHAT_CODEX_MAX_TOOLS) {
        cm_json_err_set(je, CM_ERR_LIMIT, "tool_calls", "has more than %d entries",
                        CP_TR_CHAT_CODEX_MAX_TOOLS);
        return CM_ERR_LIMIT;
    }
    cJSON_ArrayForEach(c, calls)
    {
        const char *id = NULL, *type = NULL, *name = NULL, *args = NULL;
        cJSON *fn = NULL;
        char shrt[CP_TR_CHAT_CODEX_NAME_MAX + 1];

        if ((rc = cm_json_get_string(c, "id", &id, je)) ||
            (rc = cm_json_opt_string(c, "type", "function", &type, je)))
            goto bad;
        if (!str_eq(type, "function")) {
            cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported tool call type '%.32s'", type);
            rc = CM_ERR_INVAL;
            goto bad;
        }
        if ((rc = cm_json_get_object(c, "function", &fn, je)))
            goto bad;
        if ((rc = cm_json_get_string(fn, "name", &name, je)) ||
            (rc = cm_json_opt_string(fn, "arguments", "", &args, je))) {
            cm_json_err_scope(je, "function");
            goto bad;
        }
        name_for_codex(names, name, shrt);
        if ((rc = cm_json_new_object(&o)) ||
            (rc = cm_json_set_string(o, "type", "function_call")) ||
            (rc = cm_json_set_string(o, "call_id", id)) ||
            (rc = cm_json_set_string(o, "name", shrt)) ||
            (rc = cm_json_set_string(o, "arguments", args)))
            goto out;
        rc = cm_json_adopt(input, NULL, &o);
        if (rc)
            goto out;
        i++;
        continue;
    bad:
        cm_json_err_scope(je, "tool_calls[%zu]", i);
        goto out;
    }
out:
    cJSON_Delete(o);
    return rc;
}

static int conv_message(const cJSON *m, const struct cp_tr_chat_codex_names *names, cJSON *input,
                        struct cm_json_err *je)
{
    const char *role = NULL;
    cJSON *parts = NULL, *o = NULL;
    int rc;

    if ((rc = cm_json_get_string(m, "role", &role, je)) != CM_OK)
        return rc;
    if (str_eq(role, "tool")) {
        const char *call_id = NULL;
        struct cm_buf b;
        cm_buf_init(&b, (size_t)64 << 20);
        if ((rc = cm_json_get_string(m, "tool_call_id", &call_id, je)) ||
            (rc = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &b, je)))
            goto tool_out;
        if ((rc = cm_json_new_object(&o)) ||
            (rc = cm_json_set_string(o, "type", "function_call_output")) ||
            (rc = cm_json_set_string(o, "call_id", call_id)) ||
            (rc = cm_json_set_stringn(o, "output", b.data ? b.data : "", b.len)))
            goto tool_out;
        rc = cm_json_adopt(input, NULL, &o);
    tool_out:
        cm_buf_cleanup(&b);
        cJSON_Delete(o);
        return rc;
    }
    if (str_eq(role, "system") || str_eq(role, "developer")) {
        if ((rc = conv_content(m, "system", &parts, je)) != CM_OK)
            return rc;
        return add_message_item(input, "developer", parts);
    }
    if (str_eq(role, "user")) {
        if ((rc = conv_content(m, "user", &parts, je)) != CM_OK)
            return rc;
        return add_message_item(input, "user", parts);
    }
    if (str_eq(role, "assistant")) {
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if ((rc = conv_content(m, "assistant", &parts, je)) != CM_OK)
            return rc;
        if (cJSON_GetArraySize(parts) > 0) {
            if ((rc = add_message_item(input, "assistant", parts)) != CM_OK)
                return rc;
        } else {
            cJSON_Delete(parts);
        }
        if (calls && !cJSON_IsNull(calls)) {
            if (!cJSON_IsArray(calls)) {
                cm_json_err_set(je, CM_ERR_INVAL, "tool_calls", "must be an array");
                return CM_ERR_INVAL;
            }
            return conv_tool_calls(calls, names, input, je);
        }
        if (cJSON_GetObjectItemCaseSensitive(m, "function_call")) {
            cm_json_err_set(je, CM_ERR_INVAL, "function_call",
                            "is not supported (legacy functions API; use tool_calls)");
            return CM_ERR_INVAL;
        }
        return CM_OK;
    }
    cm_json_err_set(je, CM_ERR_INVAL, "role", "unsupported role '%.16s'", role);
    return CM_ERR_INVAL;
}

/* ---- 5.2: tools, tool_choice, response_format ---- */

static int conv_tools(const cJSON *tools, const struct cp_tr_chat_codex_names *names, cJSON *body,
                      struct cm_json_err *je)
{
    cJSON *arr = NULL, *o = NULL;
    const cJSON *t;
    size_t i = 0;
    int rc;

    if (!cJSON_IsArray(tools)) {
        cm_json_err_set(je, CM_ERR_INVAL, "tools", "must be an array");
        return CM_ERR_INVAL;
    }
    if (cJSON_GetArraySize(tools) > CP_TR_CHAT_CODEX_MAX_TOOLS) {
        cm_json_err_set(je, CM_ERR_LIMIT, "tools", "has more than %d entries",
                        CP_TR_CHAT_CODEX_MAX_TOOLS);
        return CM_ERR_LIMIT;
    }
    if ((rc = cm_json_new_array(&arr)) != CM_OK)
        return rc;
    cJSON_ArrayForEach(t, tools)
    {
        const char *type = NULL;
        if ((rc = cm_json_get_string(t, "type", &type, je)))
            goto bad;
        if (str_eq(type, "function")) {
            cJSON *fn = NULL, *params = NULL;
            const char *name = NULL, *desc = NULL;
            bool strict = false;
            const cJSON *sj;
            if ((rc = cm_json_get_object(t, "function", &fn, je)))
                goto bad;
            if ((rc = cm_json_get_string(fn, "name", &name, je)) ||
                (rc = cm_json_opt_string(fn, "description", NULL, &desc, je)) ||
                (rc = cm_json_opt_object(fn, "parameters", &params, je)) ||
                (rc = cm_json_opt_bool(fn, "strict", false, &strict, je))) {
                cm_json_err_scope(je, "function");
                goto bad;
            }
            if (!name[0]) {
                cm_json_err_set(je, CM_ERR_INVAL, "function.name", "must not be empty");
                rc = CM_ERR_INVAL;
                goto bad;
            }
            sj = cJSON_GetObjectItemCaseSensitive(fn, "strict");
            if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", "function")) ||
                (rc = cm_json_set_string(o, "name", names_short(names, name))) ||
                (desc && (rc = cm_json_set_string(o, "description", desc))) ||
                (params && (rc = dup_into(o, "parameters", params))) ||
                (cJSON_IsBool(sj) && (rc = cm_json_set_bool(o, "strict", strict))))
                goto out;
        } else {
            /* built-in Responses tools (web_search, ...) are passed through */
            if (!(o = cJSON_Duplicate(t, 1))) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
        }
        rc = cm_json_adopt(arr, NULL, &o);
        if (rc)
            goto out;
        i++;
        continue;
    bad:
        cm_json_err_scope(je, "tools[%zu]", i);
        goto out;
    }
    rc = cm_json_adopt(body, "tools", &arr);
out:
    cJSON_Delete(o);
    cJSON_Delete(arr);
    return rc;
}

static int conv_tool_choice(const cJSON *tc, const struct cp_tr_chat_codex_names *names,
                            cJSON *body, struct cm_json_err *je)
{
    cJSON *o = NULL, *fn = NULL;
    const char *type = NULL, *name = NULL;
    char shrt[CP_TR_CHAT_CODEX_NAME_MAX + 1];
    int rc;

    if (cJSON_IsString(tc)) {
        if (!str_eq(tc->valuestring, "auto") && !str_eq(tc->valuestring, "none") &&
            !str_eq(tc->valuestring, "required")) {
            cm_json_err_set(je, CM_ERR_INVAL, "tool_choice",
                            "must be 'auto', 'none', 'required' or a function choice");
            return CM_ERR_INVAL;
        }
        return cm_json_set_string(body, "tool_choice", tc->valuestring);
    }
    if ((rc = cm_json_get_string(tc, "type", &type, je)) != CM_OK)
        goto bad;
    if (str_eq(type, "allowed_tools") || str_eq(type, "custom")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported tool_choice type '%.32s'", type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if (!str_eq(type, "function")) /* built-in tool choices ({"type":"web_search"}) fit as is */
        return dup_into(body, "tool_choice", tc);
    if ((rc = cm_json_get_object(tc, "function", &fn, je)) != CM_OK)
        goto bad;
    if ((rc = cm_json_get_string(fn, "name", &name, je)) != CM_OK) {
        cm_json_err_scope(je, "function");
        goto bad;
    }
    name_for_codex(names, name, shrt);
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", "function")) ||
        (rc = cm_json_set_string(o, "name", shrt)))
        goto out;
    rc = cm_json_adopt(body, "tool_choice", &o);
    goto out;
bad:
    cm_json_err_scope(je, "tool_choice");
out:
    cJSON_Delete(o);
    return rc;
}

/* response_format -> text.format into @p text. */
static int conv_response_format(const cJSON *rf, cJSON *text, struct cm_json_err *je)
{
    const char *type = NULL;
    cJSON *fmt = NULL, *js = NULL, *schema = NULL;
    int rc;

    if ((rc = cm_json_get_string(rf, "type", &type, je)) != CM_OK)
        goto bad;
    if ((rc = cm_json_new_object(&fmt)) != CM_OK)
        return rc;
    if (str_eq(type, "text") || str_eq(type, "json_object")) {
        if ((rc = cm_json_set_string(fmt, "type", type)))
            goto out;
    } else if (str_eq(type, "json_schema")) {
        const char *name = NULL, *desc = NULL;
        const cJSON *strict;
        if ((rc = cm_json_get_object(rf, "json_schema", &js, je)))
            goto bad;
        if ((rc = cm_json_get_string(js, "name", &name, je)) ||
            (rc = cm_json_opt_string(js, "description", NULL, &desc, je)) ||
            (rc = cm_json_opt_object(js, "schema", &schema, je))) {
            cm_json_err_scope(je, "json_schema");
            goto bad;
        }
        strict = cJSON_GetObjectItemCaseSensitive(js, "strict");
        if (strict && !cJSON_IsBool(strict) && !cJSON_IsNull(strict)) {
            cm_json_err_set(je, CM_ERR_INVAL, "json_schema.strict", "must be a boolean");
            rc = CM_ERR_INVAL;
            goto bad;
        }
        if ((rc = cm_json_set_string(fmt, "type", "json_schema")) ||
            (rc = cm_json_set_string(fmt, "name", name)) ||
            (desc && (rc = cm_json_set_string(fmt, "description", desc))) ||
            (cJSON_IsBool(strict) &&
             (rc = cm_json_set_bool(fmt, "strict", cJSON_IsTrue(strict)))) ||
            (schema && (rc = dup_into(fmt, "schema", schema))))
            goto out;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported response_format type '%.32s'", type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    rc = cm_json_adopt(text, "format", &fmt);
    goto out;
bad:
    cm_json_err_scope(je, "response_format");
out:
    cJSON_Delete(fmt);
    return rc;
}

/* Fields whose meaning cannot be expressed on Codex: refused unless at their neutral value. */
static int check_unexpressible(const cJSON *req, struct cm_json_err *je)
{
    const cJSON *v;
    int64_t n = 1;
    bool b = false;
    int rc;

    if ((rc = cm_json_opt_int64(req, "n", 1, 128, 1, &n, je)) != CM_OK)
        return rc;
    if (n != 1) {
        cm_json_err_set(je, CM_ERR_INVAL, "n", "must be 1 (Codex returns one choice)");
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

static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    struct cp_tr_chat_codex_names *names = NULL;
    cJSON *body = NULL, *o = NULL, *input = NULL, *messages = NULL, *text = NULL, *text_in = NULL;
    const char *model = NULL, *effort = NULL, *body_effort = NULL, *tier = NULL, *verb = NULL;
    const cJSON *m, *tools, *tc, *rf;
    char *base = NULL;
    bool parallel = true;
    size_t i = 0;
    int rc;

    if (!cJSON_IsObject(req)) {
        cm_json_err_set(je, CM_ERR_INVAL, "", "the request body must be a JSON object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(req, "model", &model, je)) ||
        (rc = cm_json_get_array(req, "messages", &messages, je)) ||
        (rc = cm_json_opt_string(req, "reasoning_effort", NULL, &body_effort, je)) ||
        (rc = cm_json_opt_bool(req, "parallel_tool_calls", true, &parallel, je)) ||
        (rc = cm_json_opt_string(req, "service_tier", NULL, &tier, je)) ||
        (rc = cm_json_opt_string(req, "verbosity", NULL, &verb, je)) ||
        (rc = cm_json_opt_object(req, "text", &text_in, je)) || (rc = check_unexpressible(req, je)))
        goto out;
    if (!verb && text_in && (rc = cm_json_opt_string(text_in, "verbosity", NULL, &verb, je))) {
        cm_json_err_scope(je, "text");
        goto out;
    }
    if (!cJSON_GetArraySize(messages)) {
        cm_json_err_set(je, CM_ERR_INVAL, "messages", "must not be empty");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (cJSON_GetArraySize(messages) > CP_TR_CHAT_CODEX_MAX_MESSAGES) {
        cm_json_err_set(je, CM_ERR_LIMIT, "messages", "has more than %d entries",
                        CP_TR_CHAT_CODEX_MAX_MESSAGES);
        rc = CM_ERR_LIMIT;
        goto out;
    }
    if ((rc = cp_tr_codex_split_model(model, &base, &effort, je)))
        goto out;
    if (!effort && body_effort && !(effort = effort_of(body_effort, strlen(body_effort)))) {
        cm_json_err_set(je, CM_ERR_INVAL, "reasoning_effort",
                        "must be one of none, minimal, low, medium, high, xhigh");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (!effort)
        effort = "medium";
    tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if ((rc = names_build(tools, &names)))
        goto out;

    if ((rc = cm_json_new_object(&body)) || (rc = cm_json_set_string(body, "instructions", "")) ||
        (rc = cm_json_set_bool(body, "stream", true)) || (rc = cm_json_new_object(&o)) ||
        (rc = cm_json_set_string(o, "effort", effort)) ||
        (rc = cm_json_set_string(o, "summary", "auto")))
        goto out;
    rc = cm_json_adopt(body, "reasoning", &o);
    if (rc || (rc = cm_json_set_bool(body, "parallel_tool_calls", parallel)) ||
        (rc = cm_json_new_array(&o)) ||
        (rc = cm_json_set_item(o, NULL, cJSON_CreateString("reasoning.encrypted_content"))))
        goto out;
    rc = cm_json_adopt(body, "include", &o);
    if (rc || (rc = cm_json_set_string(body, "model", base)) ||
        (rc = cm_json_set_bool(body, "store", false)) || (rc = cm_json_new_array(&input)))
        goto out;

    cJSON_ArrayForEach(m, messages)
    {
        if ((rc = conv_message(m, names, input, je)) != CM_OK) {
            cm_json_err_scope(je, "messages[%zu]", i);
            goto out;
        }
        i++;
    }
    rc = cm_json_adopt(body, "input", &input);
    if (rc)
        goto out;

    if (tools && !cJSON_IsNull(tools) && (rc = conv_tools(tools, names, body, je)))
        goto out;
    tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    if (tc && !cJSON_IsNull(tc) && (rc = conv_tool_choice(tc, names, body, je)))
        goto out;
    rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    if ((rf && !cJSON_IsNull(rf)) || verb) {
        if ((rc = cm_json_new_object(&text)))
            goto out;
        if (rf && !cJSON_IsNull(rf) && (rc = conv_response_format(rf, text, je)))
            goto out;
        if (verb && (rc = cm_json_set_string(text, "verbosity", verb)))
            goto out;
        rc = cm_json_adopt(body, "text", &text);
        if (rc)
            goto out;
    }
    if (str_eq(tier, "priority") && (rc = cm_json_set_string(body, "service_tier", tier)))
        goto out;
    *out = body;
    body = NULL;
out:
    names_free(names);
    cm_free(base);
    cJSON_Delete(text);
    cJSON_Delete(input);
    cJSON_Delete(o);
    cJSON_Delete(body);
    return rc;
}

int cp_tr_chat_codex_request(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    struct cm_json_err je;
    cJSON *body = NULL;
    int rc;

    memset(&je, 0, sizeof(je));
    if (!out) {
        tr_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    rc = build_request(req, &body, &je);
    if (rc) {
        if (rc == CM_ERR_NOTFOUND)
            rc = CM_ERR_INVAL; /* a missing required field: a bad request */
        tr_err_from_json(err, rc, &je);
        return rc;
    }
    *out = body;
    return CM_OK;
}

int cp_tr_chat_codex_request_bytes(const char *body, size_t len, char **out, size_t *out_len,
                                   struct cp_tr_err *err)
{
    struct cm_json_parse_opts opts = {.max_depth = CP_TR_CHAT_CODEX_MAX_DEPTH};
    struct cm_json_err je;
    cJSON *req = NULL, *res = NULL;
    char *s = NULL;
    size_t n = 0;
    int rc;

    memset(&je, 0, sizeof(je));
    if (!out || (!body && len)) {
        tr_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_parse(body ? body : "", len, &opts, &req, &je)) != CM_OK) {
        if (rc == CM_ERR_NOMEM)
            tr_err_from_json(err, rc, &je);
        else
            tr_err_set(err, rc, 400, "", "invalid_request_error", "", "request body: %s",
                       je.msg[0] ? je.msg : "invalid JSON");
        goto out;
    }
    if ((rc = cp_tr_chat_codex_request(req, &res, err)))
        goto out;
    if ((rc = cm_json_print(res, &s, &n))) {
        tr_err_set(err, rc, 500, "", "server_error", "", "could not print the request");
        goto out;
    }
    *out = s;
    if (out_len)
        *out_len = n;
out:
    cJSON_Delete(req);
    cJSON_Delete(res);
    return rc;
}

/* ---- upstream events: shared by the stream and the aggregator ---- */

static int64_t opt_count(const cJSON *obj, const char *name)
{
    int64_t v = 0;

    if (cm_json_opt_int64(obj, name, 0, CM_JSON_INT_MAX, 0, &v, NULL) != CM_OK)
        return 0;
    return v;
}

/* response.usage -> struct cp_tr_usage; false when there is none. */
static bool parse_usage(const cJSON *resp, struct cp_tr_usage *u)
{
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(resp, "usage");

    if (!cJSON_IsObject(us))
        return false;
    u->input = opt_count(us, "input_tokens");
    u->output = opt_count(us, "output_tokens");
    u->total = opt_count(us, "total_tokens");
    if (!cJSON_GetObjectItemCaseSensitive(us, "total_tokens"))
        u->total = u->input + u->output;
    u->cached =
        opt_count(cJSON_GetObjectItemCaseSensitive(us, "input_tokens_details"), "cached_tokens");
    u->reasoning = opt_count(cJSON_GetObjectItemCaseSensitive(us, "output_tokens_details"),
                             "reasoning_tokens");
    return true;
}

/* OpenAI usage object for @p u into @p parent.usage. */
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

/* finish_reason for a terminal response object; @p incomplete for response.incomplete. */
static const char *finish_reason(const cJSON *resp, bool incomplete, bool had_calls)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");

    if (incomplete || (cJSON_IsString(st) && str_eq(st->valuestring, "incomplete"))) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(resp, "incomplete_details");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "reason");
        if (cJSON_IsString(r) && str_eq(r->valuestring, "content_filter"))
            return "content_filter";
        return "length";
    }
    return had_calls ? "tool_calls" : "stop";
}

/* Status for an upstream error object (3.1(e)). */
static unsigned upstream_status(const cJSON *e)
{
    static const struct {
        const char *name;
        unsigned status;
    } map[] = {
        {"invalid_request_error", 400},   {"cyber_policy", 400},
        {"authentication_error", 401},    {"invalid_api_key", 401},
        {"permission_error", 403},        {"not_found_error", 404},
        {"model_not_found", 404},         {"rate_limit_error", 429},
        {"rate_limit_exceeded", 429},     {"usage_limit_reached", 429},
        {"context_length_exceeded", 400},
    };
    const char *keys[] = {"status_code", "status"};
    const char *names[] = {"type", "code"};
    size_t i, k;

    for (k = 0; k < 2; k++) {
        int64_t v = 0;
        if (cm_json_opt_int64(e, keys[k], 100, 599, 0, &v, NULL) == CM_OK && v)
            return (unsigned)v;
    }
    for (k = 0; k < 2; k++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, names[k]);
        if (!cJSON_IsString(s))
            continue;
        for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (str_eq(s->valuestring, map[i].name))
                return map[i].status;
    }
    return 502;
}

static const char *type_for_status(unsigned status)
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

/*
 * The error of a response.failed (@p failed) or error event @p ev into @p e (rc
 * CM_ERR_UPSTREAM).
 */
static void upstream_error(const cJSON *ev, bool failed, struct cp_tr_err *e)
{
    const cJSON *eo = NULL, *t, *c, *m;
    unsigned status;

    if (failed)
        eo = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "response"),
                                              "error");
    else if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(ev, "error")))
        eo = cJSON_GetObjectItemCaseSensitive(ev, "error");
    else
        eo = ev;
    status = cJSON_IsObject(eo) ? upstream_status(eo) : 502;
    t = cJSON_GetObjectItemCaseSensitive(eo, "type");
    c = cJSON_GetObjectItemCaseSensitive(eo, "code");
    m = cJSON_GetObjectItemCaseSensitive(eo, "message");
    tr_err_set(e, CM_ERR_UPSTREAM, status, "",
               cJSON_IsString(t) && !str_eq(t->valuestring, "error") ? t->valuestring
                                                                     : type_for_status(status),
               cJSON_IsString(c) ? c->valuestring : "", "%s",
               cJSON_IsString(m) && m->valuestring[0]
                   ? m->valuestring
                   : (failed ? "upstream response failed" : "upstream error"));
}

static void malformed_error(struct cp_tr_err *e, const char *what)
{
    tr_err_set(e, CM_ERR_UPSTREAM, 502, "", "server_error", "bad_upstream_event",
               "upstream sent a malformed event: %s", what);
}

static void early_eof_error(struct cp_tr_err *e)
{
    tr_err_set(e, CM_ERR_TIMEOUT, 408, "", "timeout_error", "request_timeout", "%s",
               CP_TR_CODEX_EARLY_EOF_MSG);
}

/* Parses event data into an object; the event's type from @p type or data.type. */
static int parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                       cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err)
{
    struct cm_json_parse_opts opts = {.max_depth = 128};
    cJSON *o = NULL;
    int rc;

    rc = cm_json_parse(data ? data : "", data_len, &opts, &o, NULL);
    if (rc == CM_ERR_NOMEM) {
        tr_err_set(err, rc, 500, "", "server_error", "", "out of memory");
        return rc;
    }
    if (rc || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        malformed_error(err, rc ? "data is not valid JSON" : "data is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    if (!type || !type_len || slice_eq(type, type_len, "message")) {
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "type");
        type = cJSON_IsString(dt) ? dt->valuestring : "";
        type_len = strlen(type);
    }
    *ev = o;
    *t = type;
    *tlen = type_len;
    return CM_OK;
}

/* ---- the stream ---- */

struct cp_tr_chat_codex_call {
    char *item_id;        /* the upstream item id ("fc_..."), may be NULL */
    int64_t output_index; /* the upstream output_index, -1 if unknown */
    bool args_sent;       /* some arguments went to the client */
};

int cp_tr_chat_codex_stream_init(struct cp_tr_chat_codex_stream *st, const cJSON *client_req,
                                 const char *id, int64_t created, struct cp_tr_err *err)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(client_req, "model");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(client_req, "stream_options");
    struct cp_tr_chat_codex_stream s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!st || !id) {
        tr_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    s._created = created;
    s._include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    if (!(s._id = cm_strdup(id)) ||
        !(s._model = cm_strdup(cJSON_IsString(model) ? model->valuestring : "")) ||
        (rc = names_build(cJSON_GetObjectItemCaseSensitive(client_req, "tools"), &s._names))) {
        cp_tr_chat_codex_stream_cleanup(&s);
        tr_err_set(err, CM_ERR_NOMEM, 500, "", "server_error", "", "out of memory");
        return CM_ERR_NOMEM;
    }
    *st = s;
    return CM_OK;
}

void cp_tr_chat_codex_stream_cleanup(struct cp_tr_chat_codex_stream *st)
{
    size_t i;

    if (!st)
        return;
    for (i = 0; i < st->_ncalls; i++)
        cm_free(st->_calls[i].item_id);
    cm_free(st->_calls);
    cm_free(st->_id);
    cm_free(st->_model);
    names_free(st->_names);
    st->_calls = NULL;
    st->_ncalls = 0;
    st->_id = st->_model = NULL;
    st->_names = NULL;
}

int cp_tr_chat_codex_stream_usage(const struct cp_tr_chat_codex_stream *st, struct cp_tr_usage *out)
{
    if (!st || !out || !st->_have_usage)
        return CM_ERR_NOTFOUND;
    *out = st->_usage;
    return CM_OK;
}

/* A chunk skeleton; *@p delta is choices[0].delta (NULL with @p no_choices). */
static int chunk_new(struct cp_tr_chat_codex_stream *st, bool no_choices, cJSON **chunk,
                     cJSON **delta)
{
    cJSON *c = NULL, *choices = NULL, *ch = NULL, *d = NULL;
    int rc;

    if ((rc = cm_json_new_object(&c)) || (rc = cm_json_set_string(c, "id", st->_id)) ||
        (rc = cm_json_set_string(c, "object", "chat.completion.chunk")) ||
        (rc = cm_json_set_int64(c, "created", st->_created)) ||
        (rc = cm_json_set_string(c, "model", st->_model)) || (rc = cm_json_new_array(&choices)))
        goto out;
    if (!no_choices) {
        if ((rc = cm_json_new_object(&ch)) || (rc = cm_json_set_int64(ch, "index", 0)) ||
            (rc = cm_json_new_object(&d)))
            goto out;
        if (!st->_role_sent && (rc = cm_json_set_string(d, "role", "assistant")))
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

/* Appends "data: <json>\n\n" and deletes @p obj. */
static int emit(struct cp_tr_chat_codex_stream *st, cJSON *obj, struct cm_buf *out)
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
    if (!rc && st)
        st->_role_sent = true;
    return rc;
}

/* One chunk whose delta has string member @p key = @p val. */
static int emit_delta_str(struct cp_tr_chat_codex_stream *st, const char *key, const char *val,
                          struct cm_buf *out)
{
    cJSON *c = NULL, *d = NULL;
    int rc;

    if ((rc = chunk_new(st, false, &c, &d)) || (rc = cm_json_set_string(d, key, val))) {
        cJSON_Delete(c);
        return rc;
    }
    return emit(st, c, out);
}

/* One chunk with one tool_calls entry; @p id / @p name only on the first for a call. */
static int emit_call(struct cp_tr_chat_codex_stream *st, size_t index, const char *id,
                     const char *name, const char *args, struct cm_buf *out)
{
    cJSON *c = NULL, *d = NULL, *arr = NULL, *tc = NULL, *fn = NULL;
    int rc;

    if ((rc = chunk_new(st, false, &c, &d)) || (rc = cm_json_new_array(&arr)) ||
        (rc = cm_json_new_object(&tc)) || (rc = cm_json_set_int64(tc, "index", (int64_t)index)) ||
        (id && (rc = cm_json_set_string(tc, "id", id))) ||
        (id && (rc = cm_json_set_string(tc, "type", "function"))) ||
        (rc = cm_json_new_object(&fn)) ||
        (name && (rc = cm_json_set_string(fn, "name", names_orig(st->_names, name)))) ||
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
    rc = emit(st, c, out);
    c = NULL;
out:
    cJSON_Delete(fn);
    cJSON_Delete(tc);
    cJSON_Delete(arr);
    cJSON_Delete(c);
    return rc;
}

static int emit_error(const struct cp_tr_err *e, struct cm_buf *out)
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

/* The call for an upstream item (by item id, else output_index), or NULL. */
static struct cp_tr_chat_codex_call *find_call(struct cp_tr_chat_codex_stream *st, const cJSON *ev,
                                               size_t *index)
{
    const cJSON *iid = cJSON_GetObjectItemCaseSensitive(ev, "item_id");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    int64_t oi = -1;
    size_t i;

    if (!cJSON_IsString(iid))
        iid = cJSON_GetObjectItemCaseSensitive(item, "id");
    (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, -1, &oi, NULL);
    for (i = 0; i < st->_ncalls; i++) {
        struct cp_tr_chat_codex_call *c = &st->_calls[i];
        if ((cJSON_IsString(iid) && c->item_id && strcmp(c->item_id, iid->valuestring) == 0) ||
            (!cJSON_IsString(iid) && oi >= 0 && c->output_index == oi)) {
            *index = i;
            return c;
        }
    }
    return NULL;
}

static int add_call(struct cp_tr_chat_codex_stream *st, const cJSON *ev, const cJSON *item,
                    size_t *index)
{
    const cJSON *iid = cJSON_GetObjectItemCaseSensitive(item, "id");
    struct cp_tr_chat_codex_call *v;
    int64_t oi = -1;

    if (st->_ncalls >= CP_TR_CHAT_CODEX_MAX_TOOLS)
        return CM_ERR_LIMIT;
    v = cm_realloc(st->_calls, (st->_ncalls + 1) * sizeof(*v));
    if (!v)
        return CM_ERR_NOMEM;
    st->_calls = v;
    (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, -1, &oi, NULL);
    v[st->_ncalls].output_index = oi;
    v[st->_ncalls].args_sent = false;
    v[st->_ncalls].item_id = NULL;
    if (cJSON_IsString(iid) && !(v[st->_ncalls].item_id = cm_strdup(iid->valuestring)))
        return CM_ERR_NOMEM;
    *index = st->_ncalls++;
    return CM_OK;
}

static const char *str_member(const cJSON *o, const char *name, const char *def)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(s) ? s->valuestring : def;
}

static int on_terminal(struct cp_tr_chat_codex_stream *st, const cJSON *ev, bool incomplete,
                       struct cm_buf *out)
{
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
    cJSON *c = NULL, *d = NULL;
    int rc;

    st->_have_usage = parse_usage(resp, &st->_usage);
    if ((rc = chunk_new(st, false, &c, &d)))
        return rc;
    if ((rc = cm_json_set_string(
             cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0), "finish_reason",
             finish_reason(resp, incomplete, st->_ncalls > 0)))) {
        cJSON_Delete(c);
        return rc;
    }
    if ((rc = emit(st, c, out)))
        return rc;
    if (st->_include_usage) {
        struct cp_tr_usage zero = {0, 0, 0, 0, 0};
        if ((rc = chunk_new(st, true, &c, &d)))
            return rc;
        if ((rc = put_usage(c, st->_have_usage ? &st->_usage : &zero))) {
            cJSON_Delete(c);
            return rc;
        }
        if ((rc = emit(st, c, out)))
            return rc;
    }
    return cm_sse_write_done(out);
}

static int stream_dispatch(struct cp_tr_chat_codex_stream *st, const char *t, size_t tl,
                           const cJSON *ev, struct cm_buf *out, struct cp_tr_err *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    struct cp_tr_chat_codex_call *call;
    size_t index = 0;
    int rc = CM_OK;

    if (slice_eq(t, tl, "response.created") || slice_eq(t, tl, "response.in_progress")) {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
        const char *model = str_member(resp, "model", NULL);
        int64_t ca = 0;
        if (cm_json_opt_int64(resp, "created_at", 1, CM_JSON_INT_MAX, 0, &ca, NULL) == CM_OK && ca)
            st->_created = ca;
        if (model && model[0]) {
            char *m = cm_strdup(model);
            if (!m)
                return CM_ERR_NOMEM;
            cm_free(st->_model);
            st->_model = m;
        }
        return CM_OK;
    }
    if (slice_eq(t, tl, "response.output_text.delta")) {
        const char *delta = str_member(ev, "delta", "");
        return delta[0] ? emit_delta_str(st, "content", delta, out) : CM_OK;
    }
    if (slice_eq(t, tl, "response.reasoning_summary_text.delta")) {
        const char *delta = str_member(ev, "delta", "");
        return delta[0] ? emit_delta_str(st, "reasoning_content", delta, out) : CM_OK;
    }
    if (slice_eq(t, tl, "response.reasoning_summary_text.done"))
        return emit_delta_str(st, "reasoning_content", "\n\n", out);
    if (slice_eq(t, tl, "response.output_item.added")) {
        if (!str_eq(str_member(item, "type", ""), "function_call") || find_call(st, ev, &index))
            return CM_OK;
        if ((rc = add_call(st, ev, item, &index)))
            return rc;
        return emit_call(st, index, str_member(item, "call_id", ""), str_member(item, "name", ""),
                         "", out);
    }
    if (slice_eq(t, tl, "response.function_call_arguments.delta")) {
        const char *delta = str_member(ev, "delta", "");
        if (!(call = find_call(st, ev, &index)) || !delta[0])
            return CM_OK;
        call->args_sent = true;
        return emit_call(st, index, NULL, NULL, delta, out);
    }
    if (slice_eq(t, tl, "response.function_call_arguments.done")) {
        const char *args = str_member(ev, "arguments", "");
        if (!(call = find_call(st, ev, &index)) || call->args_sent || !args[0])
            return CM_OK;
        call->args_sent = true;
        return emit_call(st, index, NULL, NULL, args, out);
    }
    if (slice_eq(t, tl, "response.output_item.done")) {
        const char *args = str_member(item, "arguments", "");
        if (!str_eq(str_member(item, "type", ""), "function_call"))
            return CM_OK;
        if ((call = find_call(st, ev, &index)) != NULL) {
            if (call->args_sent || !args[0])
                return CM_OK;
            call->args_sent = true;
            return emit_call(st, index, NULL, NULL, args, out);
        }
        if ((rc = add_call(st, ev, item, &index)))
            return rc;
        st->_calls[index].args_sent = true;
        return emit_call(st, index, str_member(item, "call_id", ""), str_member(item, "name", ""),
                         args, out);
    }
    if (slice_eq(t, tl, "response.completed") || slice_eq(t, tl, "response.incomplete")) {
        st->_done = st->_completed = true;
        return on_terminal(st, ev, slice_eq(t, tl, "response.incomplete"), out);
    }
    if (slice_eq(t, tl, "response.failed") || slice_eq(t, tl, "error")) {
        struct cp_tr_err e;
        st->_done = true;
        upstream_error(ev, slice_eq(t, tl, "response.failed"), &e);
        if ((rc = emit_error(&e, out)))
            return rc;
        if (err)
            *err = e;
        return CM_ERR_UPSTREAM;
    }
    return CM_OK; /* lifecycle and bookkeeping events carry nothing for a chat client */
}

int cp_tr_chat_codex_stream_event(struct cp_tr_chat_codex_stream *st, const char *type,
                                  size_t type_len, const char *data, size_t data_len,
                                  struct cm_buf *out, struct cp_tr_err *err)
{
    struct cp_tr_err e;
    cJSON *ev = NULL;
    const char *t = NULL;
    size_t tl = 0;
    int rc;

    if (!st || !out || !st->_id)
        return CM_ERR_INVAL;
    if (st->_done)
        return CM_OK;
    if (slice_eq(data, data_len, "[DONE]"))
        return CM_OK;
    rc = parse_event(type, type_len, data, data_len, &ev, &t, &tl, &e);
    if (rc == CM_ERR_UPSTREAM) {
        st->_done = true;
        if ((rc = emit_error(&e, out)) == CM_OK)
            rc = CM_ERR_UPSTREAM;
        if (err)
            *err = e;
        return rc;
    }
    if (rc) {
        if (err)
            *err = e;
        return rc;
    }
    rc = stream_dispatch(st, t, tl, ev, out, err);
    if (rc && rc != CM_ERR_UPSTREAM)
        tr_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
    cJSON_Delete(ev);
    return rc;
}

int cp_tr_chat_codex_stream_finish(struct cp_tr_chat_codex_stream *st, struct cm_buf *out,
                                   struct cp_tr_err *err)
{
    struct cp_tr_err e;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    if (st->_done)
        return CM_OK;
    st->_done = true;
    early_eof_error(&e);
    if ((rc = emit_error(&e, out)))
        return rc;
    if (err)
        *err = e;
    return CM_ERR_TIMEOUT;
}

/* ---- non-stream aggregation ---- */

struct agg_item {
    int64_t index;
    cJSON *item;
};

struct agg {
    struct agg_item *items; /* output_item.done items, in arrival order */
    size_t nitems;
    cJSON *final;    /* the terminal event's response (detached) */
    bool incomplete; /* it was response.incomplete */
    bool failed;     /* an error was recorded in err */
    int64_t created; /* response.created_at seen */
    char *model;     /* response.model seen */
    struct cp_tr_err err;
    int rc;
};

static int agg_on_event(void *ud, const struct cm_sse_event *sev)
{
    struct agg *a = ud;
    cJSON *ev = NULL;
    const char *t = NULL;
    size_t tl = 0;
    int rc;

    if (slice_eq(sev->data, sev->data_len, "[DONE]"))
        return CM_OK;
    rc = parse_event(sev->type, sev->type_len, sev->data, sev->data_len, &ev, &t, &tl, &a->err);
    if (rc) {
        a->rc = rc;
        return rc;
    }
    if (slice_eq(t, tl, "response.created") || slice_eq(t, tl, "response.in_progress")) {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
        const char *model = str_member(resp, "model", NULL);
        (void)cm_json_opt_int64(resp, "created_at", 1, CM_JSON_INT_MAX, a->created, &a->created,
                                NULL);
        if (model && model[0]) {
            char *m = cm_strdup(model);
            if (!m) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
            cm_free(a->model);
            a->model = m;
        }
    } else if (slice_eq(t, tl, "response.output_item.done")) {
        cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(ev, "item");
        struct agg_item *v;
        int64_t oi = (int64_t)a->nitems;
        if (!cJSON_IsObject(item)) {
            cJSON_Delete(item);
            goto out;
        }
        (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, oi, &oi, NULL);
        if (a->nitems >= 4096 || !(v = cm_realloc(a->items, (a->nitems + 1) * sizeof(*v)))) {
            cJSON_Delete(item);
            rc = a->nitems >= 4096 ? CM_ERR_LIMIT : CM_ERR_NOMEM;
            goto out;
        }
        a->items = v;
        v[a->nitems].index = oi;
        v[a->nitems].item = item;
        a->nitems++;
    } else if (slice_eq(t, tl, "response.completed") || slice_eq(t, tl, "response.incomplete")) {
        cJSON *resp = cJSON_DetachItemFromObjectCaseSensitive(ev, "response");
        if (!resp && !(resp = cJSON_CreateObject())) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        a->final = resp;
        a->incomplete = slice_eq(t, tl, "response.incomplete");
        rc = 1; /* stop: the rest is of no interest */
    } else if (slice_eq(t, tl, "response.failed") || slice_eq(t, tl, "error")) {
        upstream_error(ev, slice_eq(t, tl, "response.failed"), &a->err);
        a->failed = true;
        rc = CM_ERR_UPSTREAM;
    }
out:
    if (rc && rc != 1 && !a->rc)
        a->rc = rc;
    cJSON_Delete(ev);
    return rc;
}

/* response.output (or the collected items, sorted by output_index, when it is empty). */
static int agg_output(struct agg *a, cJSON **out)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(a->final, "output");
    size_t i, j;
    int rc;

    if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0) {
        *out = NULL; /* borrowed from final: use it in place */
        return CM_OK;
    }
    for (i = 1; i < a->nitems; i++) { /* insertion sort: stable, few items */
        struct agg_item x = a->items[i];
        for (j = i; j > 0 && a->items[j - 1].index > x.index; j--)
            a->items[j] = a->items[j - 1];
        a->items[j] = x;
    }
    if ((rc = cm_json_new_array(&arr)))
        return rc;
    for (i = 0; i < a->nitems; i++) {
        if ((rc = cm_json_set_item(arr, NULL, a->items[i].item))) {
            a->items[i].item = NULL;
            cJSON_Delete(arr);
            return rc;
        }
        a->items[i].item = NULL;
    }
    *out = arr;
    return CM_OK;
}

static int build_completion(struct agg *a, const struct cp_tr_chat_codex_names *names,
                            const char *id, const char *model, int64_t created, cJSON **out,
                            struct cp_tr_usage *usage_out)
{
    struct cm_buf text, reasoning;
    struct cp_tr_usage u = {0, 0, 0, 0, 0};
    cJSON *owned = NULL, *c = NULL, *choices = NULL, *ch = NULL, *msg = NULL, *calls = NULL;
    cJSON *tc = NULL, *fn = NULL;
    const cJSON *output, *it;
    bool have_text = false, had_calls;
    int rc;

    cm_buf_init(&text, (size_t)64 << 20);
    cm_buf_init(&reasoning, (size_t)64 << 20);
    if ((rc = agg_output(a, &owned)))
        goto out;
    output = owned ? owned : cJSON_GetObjectItemCaseSensitive(a->final, "output");
    if ((rc = cm_json_new_array(&calls)))
        goto out;
    cJSON_ArrayForEach(it, output)
    {
        const char *type = str_member(it, "type", "");
        const cJSON *p;
        if (str_eq(type, "message")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "content"))
            {
                if (!str_eq(str_member(p, "type", ""), "output_text"))
                    continue;
                have_text = true;
                if (cm_buf_append_str(&text, str_member(p, "text", ""))) {
                    rc = CM_ERR_NOMEM;
                    goto out;
                }
            }
        } else if (str_eq(type, "reasoning")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "summary"))
            {
                const char *s = str_member(p, "text", "");
                if (!s[0])
                    continue;
                if ((reasoning.len && cm_buf_append_str(&reasoning, "\n\n")) ||
                    cm_buf_append_str(&reasoning, s)) {
                    rc = CM_ERR_NOMEM;
                    goto out;
                }
            }
        } else if (str_eq(type, "function_call")) {
            if ((rc = cm_json_new_object(&tc)) ||
                (rc = cm_json_set_string(tc, "id", str_member(it, "call_id", ""))) ||
                (rc = cm_json_set_string(tc, "type", "function")) ||
                (rc = cm_json_new_object(&fn)) ||
                (rc = cm_json_set_string(fn, "name",
                                         names_orig(names, str_member(it, "name", "")))) ||
                (rc = cm_json_set_string(fn, "arguments", str_member(it, "arguments", ""))))
                goto out;
            rc = cm_json_adopt(tc, "function", &fn);
            if (rc)
                goto out;
            rc = cm_json_adopt(calls, NULL, &tc);
            if (rc)
                goto out;
        }
    }
    if (!parse_usage(a->final, &u))
        memset(&u, 0, sizeof(u));
    (void)cm_json_opt_int64(a->final, "created_at", 1, CM_JSON_INT_MAX, created, &created, NULL);
    if ((rc = cm_json_new_object(&c)) || (rc = cm_json_set_string(c, "id", id)) ||
        (rc = cm_json_set_string(c, "object", "chat.completion")) ||
        (rc = cm_json_set_int64(c, "created", created)) ||
        (rc = cm_json_set_string(c, "model", model)) || (rc = cm_json_new_array(&choices)) ||
        (rc = cm_json_new_object(&ch)) || (rc = cm_json_set_int64(ch, "index", 0)) ||
        (rc = cm_json_new_object(&msg)) || (rc = cm_json_set_string(msg, "role", "assistant")) ||
        (rc = have_text ? cm_json_set_stringn(msg, "content", text.data ? text.data : "", text.len)
                        : cm_json_set_null(msg, "content")) ||
        (reasoning.len &&
         (rc = cm_json_set_stringn(msg, "reasoning_content", reasoning.data, reasoning.len))))
        goto out;
    had_calls = cJSON_GetArraySize(calls) > 0;
    if (had_calls) {
        rc = cm_json_adopt(msg, "tool_calls", &calls);
        if (rc)
            goto out;
    }
    rc = cm_json_adopt(ch, "message", &msg);
    if (rc || (rc = cm_json_set_string(ch, "finish_reason",
                                       finish_reason(a->final, a->incomplete, had_calls))))
        goto out;
    rc = cm_json_adopt(choices, NULL, &ch);
    if (rc)
        goto out;
    rc = cm_json_adopt(c, "choices", &choices);
    if (rc || (rc = put_usage(c, &u)))
        goto out;
    *out = c;
    c = NULL;
    if (usage_out)
        *usage_out = u;
out:
    cm_buf_cleanup(&text);
    cm_buf_cleanup(&reasoning);
    cJSON_Delete(fn);
    cJSON_Delete(tc);
    cJSON_Delete(calls);
    cJSON_Delete(msg);
    cJSON_Delete(ch);
    cJSON_Delete(choices);
    cJSON_Delete(c);
    cJSON_Delete(owned);
    return rc;
}

int cp_tr_chat_codex_aggregate(const char *sse, size_t len, const cJSON *client_req, const char *id,
                               int64_t created, cJSON **out, struct cp_tr_usage *usage,
                               struct cp_tr_err *err)
{
    struct cp_tr_chat_codex_names *names = NULL;
    struct cm_sse_parser p;
    struct agg a;
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(client_req, "model");
    cJSON *res = NULL;
    struct cp_tr_usage u;
    size_t i;
    int rc;

    memset(&a, 0, sizeof(a));
    if (!out || !id || (!sse && len)) {
        tr_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    a.created = created;
    cm_sse_parser_init(&p, 0, agg_on_event, NULL, &a);
    rc = cm_sse_parser_feed(&p, sse, len, NULL);
    if (rc == CM_OK && !a.final)
        rc = cm_sse_parser_finish(&p, 0); /* an unterminated last event is a cut stream */
    cm_sse_parser_cleanup(&p);
    if (a.final) {
        rc = CM_OK;
    } else if (a.rc) {
        rc = a.rc;
        if (rc == CM_ERR_UPSTREAM) {
            if (err)
                *err = a.err;
            goto out;
        }
    } else if (rc == CM_OK) {
        early_eof_error(err);
        rc = CM_ERR_TIMEOUT;
        goto out;
    }
    if (rc) {
        if (rc == CM_ERR_LIMIT)
            tr_err_set(err, rc, 502, "", "server_error", "bad_upstream_event",
                       "upstream sent an oversized event");
        else
            tr_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
        goto out;
    }
    if ((rc = names_build(cJSON_GetObjectItemCaseSensitive(client_req, "tools"), &names)) ||
        (rc = build_completion(&a, names, id,
                               a.model ? a.model : (cJSON_IsString(cm) ? cm->valuestring : ""),
                               a.created, &res, &u))) {
        tr_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
        goto out;
    }
    *out = res;
    if (usage)
        *usage = u;
out:
    for (i = 0; i < a.nitems; i++)
        cJSON_Delete(a.items[i].item);
    cm_free(a.items);
    cm_free(a.model);
    cJSON_Delete(a.final);
    names_free(names);
    return rc;
}
