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

#include "translate/chat_common.h"
#include "translate/codex_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <string.h>

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

static int dup_into(cJSON *parent, const char *name, const cJSON *item)
{
    return cm_json_set_item(parent, name, cJSON_Duplicate(item, 1));
}

/* ---- tool names: Codex allows 64 bytes; longer ones are shortened and mapped back ---- */

int cp_tr_chat_codex_tool_name(const char *name, char *out, size_t out_size)
{
    return cp_tr_codex_tool_name(name, out, out_size);
}

/*
 * The names of @p tools' function entries, shortened and made unique in order. Lenient:
 * entries that are not well-formed function tools are skipped (the request translator
 * reports them). *@p out is NULL when there are no function tools.
 */
static int names_build(const cJSON *tools, struct cp_tr_codex_names **out)
{
    struct cp_tr_codex_names *m = NULL;
    const cJSON *t;
    int rc = CM_OK;

    if (!cJSON_IsArray(tools)) {
        *out = NULL;
        return CM_OK;
    }
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");

        if (!cJSON_IsString(ty) || !str_eq(ty->valuestring, "function") || !cJSON_IsString(nm))
            continue;
        if ((rc = cp_tr_codex_names_add(&m, nm->valuestring)))
            goto out;
    }
    *out = m;
    m = NULL;
out:
    cp_tr_codex_names_free(m);
    return rc;
}

/* ---- 5.2: messages -> input items ---- */

/* One content part of a user/system/assistant message -> a Responses content part. */
static int conv_part(const cJSON *p, const char *role, cJSON *parts, struct cm_json_err *je)
{
    bool assistant = str_eq(role, "assistant");
    bool user = str_eq(role, "user");
    const char *type = NULL, *s = NULL;
    cJSON *o = NULL;
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
        const char *detail = NULL;
        if ((rc = cp_tr_chat_image_url(p, &s, &detail, je)) != CM_OK)
            goto out;
        if ((rc = cm_json_set_string(o, "type", "input_image")) ||
            (rc = cm_json_set_string(o, "image_url", s)) ||
            (detail && (rc = cm_json_set_string(o, "detail", detail))))
            goto out;
    } else if (str_eq(type, "file") && user) {
        const char *data = NULL, *fid = NULL, *fname = NULL;
        if ((rc = cp_tr_chat_file_part(p, &data, &fid, &fname, je)) != CM_OK)
            goto out;
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
static int conv_tool_calls(const cJSON *calls, const struct cp_tr_codex_names *names, cJSON *input,
                           struct cm_json_err *je)
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
        cp_tr_codex_names_upstream(names, name, shrt);
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

static int conv_message(const cJSON *m, const struct cp_tr_codex_names *names, cJSON *input,
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
            (rc = cp_tr_chat_content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &b, je)))
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

static int conv_tools(const cJSON *tools, const struct cp_tr_codex_names *names, cJSON *body,
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
                (rc = cm_json_set_string(o, "name", cp_tr_codex_names_short(names, name))) ||
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

static int conv_tool_choice(const cJSON *tc, const struct cp_tr_codex_names *names, cJSON *body,
                            struct cm_json_err *je)
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
    cp_tr_codex_names_upstream(names, name, shrt);
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

static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    struct cp_tr_codex_names *names = NULL;
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
        (rc = cm_json_opt_object(req, "text", &text_in, je)) ||
        (rc = cp_tr_chat_check_unexpressible(req, "Codex", je)))
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
    if (!effort && body_effort &&
        !(effort = cp_tr_codex_effort(body_effort, strlen(body_effort)))) {
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
    cp_tr_codex_names_free(names);
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
        cp_tr_codex_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    rc = build_request(req, &body, &je);
    if (rc) {
        if (rc == CM_ERR_NOTFOUND)
            rc = CM_ERR_INVAL; /* a missing required field: a bad request */
        cp_tr_codex_err_from_json(err, rc, &je);
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
        cp_tr_codex_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_parse(body ? body : "", len, &opts, &req, &je)) != CM_OK) {
        if (rc == CM_ERR_NOMEM)
            cp_tr_codex_err_from_json(err, rc, &je);
        else
            cp_tr_codex_err_set(err, rc, 400, "", "invalid_request_error", "", "request body: %s",
                                je.msg[0] ? je.msg : "invalid JSON");
        goto out;
    }
    if ((rc = cp_tr_chat_codex_request(req, &res, err)))
        goto out;
    if ((rc = cm_json_print(res, &s, &n))) {
        cp_tr_codex_err_set(err, rc, 500, "", "server_error", "", "could not print the request");
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

/* ---- the stream ---- */

struct cp_tr_chat_codex_call {
    char *item_id;        /* the upstream item id ("fc_..."), may be NULL */
    int64_t output_index; /* the upstream output_index, -1 if unknown */
    bool args_sent;       /* some arguments went to the client */
};

int cp_tr_chat_codex_stream_init(struct cp_tr_chat_codex_stream *st, const cJSON *client_req,
                                 const char *id, int64_t created, struct cp_tr_err *err)
{
    struct cp_tr_chat_codex_stream s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!st || !id) {
        cp_tr_codex_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_chat_chunker_init(&s._ck, client_req, id, created)) ||
        (rc = names_build(cJSON_GetObjectItemCaseSensitive(client_req, "tools"), &s._names))) {
        cp_tr_chat_codex_stream_cleanup(&s);
        cp_tr_codex_err_set(err, CM_ERR_NOMEM, 500, "", "server_error", "", "out of memory");
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
    cp_tr_chat_chunker_cleanup(&st->_ck);
    cp_tr_codex_names_free(st->_names);
    st->_calls = NULL;
    st->_ncalls = 0;
    st->_names = NULL;
}

int cp_tr_chat_codex_stream_usage(const struct cp_tr_chat_codex_stream *st, struct cp_tr_usage *out)
{
    if (!st || !out || !st->_have_usage)
        return CM_ERR_NOTFOUND;
    *out = st->_usage;
    return CM_OK;
}

/* One chunk with one tool_calls entry; the client's name for @p name (first chunk only). */
static int emit_call(struct cp_tr_chat_codex_stream *st, size_t index, const char *id,
                     const char *name, const char *args, struct cm_buf *out)
{
    return cp_tr_chat_emit_tool_call(
        &st->_ck, index, id, name ? cp_tr_codex_names_orig(st->_names, name) : NULL, args, out);
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

static int on_terminal(struct cp_tr_chat_codex_stream *st, const cJSON *ev, bool incomplete,
                       struct cm_buf *out)
{
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");

    st->_have_usage = cp_tr_codex_parse_usage(resp, &st->_usage);
    return cp_tr_chat_emit_finish(&st->_ck, finish_reason(resp, incomplete, st->_ncalls > 0),
                                  st->_have_usage ? &st->_usage : NULL, out);
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
        const char *model = cp_tr_codex_str_member(resp, "model", NULL);
        int64_t ca = 0;
        if (cm_json_opt_int64(resp, "created_at", 1, CM_JSON_INT_MAX, 0, &ca, NULL) == CM_OK && ca)
            cp_tr_chat_chunker_set_created(&st->_ck, ca);
        return cp_tr_chat_chunker_set_model(&st->_ck, model);
    }
    if (slice_eq(t, tl, "response.output_text.delta")) {
        const char *delta = cp_tr_codex_str_member(ev, "delta", "");
        return delta[0] ? cp_tr_chat_emit_delta(&st->_ck, "content", delta, out) : CM_OK;
    }
    if (slice_eq(t, tl, "response.reasoning_summary_text.delta")) {
        const char *delta = cp_tr_codex_str_member(ev, "delta", "");
        return delta[0] ? cp_tr_chat_emit_delta(&st->_ck, "reasoning_content", delta, out) : CM_OK;
    }
    if (slice_eq(t, tl, "response.reasoning_summary_text.done"))
        return cp_tr_chat_emit_delta(&st->_ck, "reasoning_content", "\n\n", out);
    if (slice_eq(t, tl, "response.output_item.added")) {
        if (!str_eq(cp_tr_codex_str_member(item, "type", ""), "function_call") ||
            find_call(st, ev, &index))
            return CM_OK;
        if ((rc = add_call(st, ev, item, &index)))
            return rc;
        return emit_call(st, index, cp_tr_codex_str_member(item, "call_id", ""),
                         cp_tr_codex_str_member(item, "name", ""), "", out);
    }
    if (slice_eq(t, tl, "response.function_call_arguments.delta")) {
        const char *delta = cp_tr_codex_str_member(ev, "delta", "");
        if (!(call = find_call(st, ev, &index)) || !delta[0])
            return CM_OK;
        call->args_sent = true;
        return emit_call(st, index, NULL, NULL, delta, out);
    }
    if (slice_eq(t, tl, "response.function_call_arguments.done")) {
        const char *args = cp_tr_codex_str_member(ev, "arguments", "");
        if (!(call = find_call(st, ev, &index)) || call->args_sent || !args[0])
            return CM_OK;
        call->args_sent = true;
        return emit_call(st, index, NULL, NULL, args, out);
    }
    if (slice_eq(t, tl, "response.output_item.done")) {
        const char *args = cp_tr_codex_str_member(item, "arguments", "");
        if (!str_eq(cp_tr_codex_str_member(item, "type", ""), "function_call"))
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
        return emit_call(st, index, cp_tr_codex_str_member(item, "call_id", ""),
                         cp_tr_codex_str_member(item, "name", ""), args, out);
    }
    if (slice_eq(t, tl, "response.completed") || slice_eq(t, tl, "response.incomplete")) {
        st->_done = st->_completed = true;
        return on_terminal(st, ev, slice_eq(t, tl, "response.incomplete"), out);
    }
    if (slice_eq(t, tl, "response.failed") || slice_eq(t, tl, "error")) {
        struct cp_tr_err e;
        st->_done = true;
        cp_tr_codex_upstream_error(ev, slice_eq(t, tl, "response.failed"), &e);
        if ((rc = cp_tr_chat_emit_error(&e, out)))
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

    if (!st || !out || !cp_tr_chat_chunker_ready(&st->_ck))
        return CM_ERR_INVAL;
    if (st->_done)
        return CM_OK;
    if (slice_eq(data, data_len, "[DONE]"))
        return CM_OK;
    rc = cp_tr_codex_parse_event(type, type_len, data, data_len, &ev, &t, &tl, &e);
    if (rc == CM_ERR_UPSTREAM) {
        st->_done = true;
        if ((rc = cp_tr_chat_emit_error(&e, out)) == CM_OK)
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
        cp_tr_codex_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
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
    cp_tr_codex_early_eof_error(&e);
    if ((rc = cp_tr_chat_emit_error(&e, out)))
        return rc;
    if (err)
        *err = e;
    return CM_ERR_TIMEOUT;
}

/* ---- non-stream aggregation ---- */

static int build_completion(const struct cp_tr_codex_result *r,
                            const struct cp_tr_codex_names *names, const char *id,
                            const char *model, int64_t created, cJSON **out,
                            struct cp_tr_usage *usage_out)
{
    struct cm_buf text, reasoning;
    struct cp_tr_chat_answer a;
    cJSON *calls = NULL, *tc = NULL;
    const cJSON *it;
    bool have_text = false;
    int rc;

    memset(&a, 0, sizeof(a));
    cm_buf_init(&text, (size_t)64 << 20);
    cm_buf_init(&reasoning, (size_t)64 << 20);
    if ((rc = cm_json_new_array(&calls)))
        goto out;
    cJSON_ArrayForEach(it, r->output)
    {
        const char *type = cp_tr_codex_str_member(it, "type", "");
        const cJSON *p;
        if (str_eq(type, "message")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "content"))
            {
                if (!str_eq(cp_tr_codex_str_member(p, "type", ""), "output_text"))
                    continue;
                have_text = true;
                if (cm_buf_append_str(&text, cp_tr_codex_str_member(p, "text", ""))) {
                    rc = CM_ERR_NOMEM;
                    goto out;
                }
            }
        } else if (str_eq(type, "reasoning")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "summary"))
            {
                const char *s = cp_tr_codex_str_member(p, "text", "");
                if (!s[0])
                    continue;
                if ((reasoning.len && cm_buf_append_str(&reasoning, "\n\n")) ||
                    cm_buf_append_str(&reasoning, s)) {
                    rc = CM_ERR_NOMEM;
                    goto out;
                }
            }
        } else if (str_eq(type, "function_call")) {
            if ((rc = cp_tr_chat_tool_call_new(
                     cp_tr_codex_str_member(it, "call_id", ""),
                     cp_tr_codex_names_orig(names, cp_tr_codex_str_member(it, "name", "")),
                     cp_tr_codex_str_member(it, "arguments", ""), &tc)) ||
                (rc = cm_json_adopt(calls, NULL, &tc)))
                goto out;
        }
    }
    if (!cp_tr_codex_parse_usage(r->response, &a.usage))
        memset(&a.usage, 0, sizeof(a.usage));
    (void)cm_json_opt_int64(r->response, "created_at", 1, CM_JSON_INT_MAX, created, &created, NULL);
    if (have_text) {
        a.text = text.data ? text.data : "";
        a.text_len = text.len;
    }
    a.reasoning = reasoning.data;
    a.reasoning_len = reasoning.len;
    a.tool_calls = calls;
    a.finish_reason = finish_reason(r->response, r->incomplete, cJSON_GetArraySize(calls) > 0);
    if ((rc = cp_tr_chat_completion_new(id, model, created, &a, out)))
        goto out;
    if (usage_out)
        *usage_out = a.usage;
out:
    cm_buf_cleanup(&text);
    cm_buf_cleanup(&reasoning);
    cJSON_Delete(tc);
    cJSON_Delete(calls);
    return rc;
}

int cp_tr_chat_codex_aggregate(const char *sse, size_t len, const cJSON *client_req, const char *id,
                               int64_t created, cJSON **out, struct cp_tr_usage *usage,
                               struct cp_tr_err *err)
{
    struct cp_tr_codex_names *names = NULL;
    struct cp_tr_codex_result r;
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(client_req, "model");
    cJSON *res = NULL;
    struct cp_tr_usage u;
    int rc;

    memset(&r, 0, sizeof(r));
    if (!out || !id || (!sse && len)) {
        cp_tr_codex_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_codex_collect(sse, len, created, &r, err)))
        goto out;
    if ((rc = names_build(cJSON_GetObjectItemCaseSensitive(client_req, "tools"), &names)) ||
        (rc = build_completion(&r, names, id,
                               r.model ? r.model : (cJSON_IsString(cm) ? cm->valuestring : ""),
                               r.created, &res, &u))) {
        cp_tr_codex_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
        goto out;
    }
    *out = res;
    if (usage)
        *usage = u;
out:
    cp_tr_codex_result_cleanup(&r);
    cp_tr_codex_names_free(names);
    return rc;
}
