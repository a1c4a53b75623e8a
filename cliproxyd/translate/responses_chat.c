/* SPDX-License-Identifier: MIT */
/*
 * responses_chat.c - OpenAI Responses clients over the chat pivot (see the header for the
 * mapping). Three parts: the request (Responses body -> chat.completions body, refusing
 * what chat cannot say), the stream (a state machine fed one chat.completion.chunk at a
 * time that opens and closes Responses output items, one at a time, and writes the
 * terminal event only at stream_end, once both the finish reason and the usage are known)
 * and the non-stream answer (one chat.completion -> one response object). The item and
 * response shapes are built by the same helpers for both paths. Pure: no I/O, no clock.
 */
#include "translate/responses_chat.h"

#include "translate/tr_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <stdio.h>
#include <string.h>

/* ====================================================================================== */
/* ---- request: Responses -> chat.completions ---- */

/* Sets "@p field: what" as the client message; cm_json builds "field '<f>' <what>". */
static int req_err(struct cp_tr_err *err, int rc, const struct cm_json_err *je)
{
    const char *msg = je->msg;
    char prefix[CM_JSON_ERR_FIELD_MAX + 16];
    size_t n;

    if (rc == CM_ERR_NOMEM) {
        cp_tr_server_error(err, rc, "out of memory");
        return rc;
    }
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INVAL;
    n = (size_t)snprintf(prefix, sizeof(prefix), "field '%s' ", je->field);
    if (n < sizeof(prefix) && strncmp(msg, prefix, n) == 0)
        msg += n;
    if (je->field[0])
        cp_tr_err_set(err, rc, 400, je->field, "invalid_request_error", "", "%s: %s", je->field,
                      msg[0] ? msg : "is invalid");
    else
        cp_tr_err_set(err, rc, 400, "", "invalid_request_error", "", "%s",
                      msg[0] ? msg : "invalid request");
    return rc;
}

static bool present(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v);
}

static int dup_into(cJSON *parent, const char *name, const cJSON *item)
{
    return cm_json_set_item(parent, name, cJSON_Duplicate(item, 1));
}

/* The conversation being built. */
struct conv {
    cJSON *msgs; /* chat messages (borrowed from the body) */
    cJSON *asst; /* the last message when it is an assistant one that may take tool
                    calls (borrowed from msgs), else NULL */
};

/* One content part of a message of role @p role -> a chat part in *@p out. */
static int conv_part(const cJSON *p, const char *role, cJSON **out, struct cm_json_err *je)
{
    bool user = cp_tr_str_eq(role, "user"), asst = cp_tr_str_eq(role, "assistant");
    const char *type = NULL, *s = NULL, *detail = NULL, *name = NULL;
    cJSON *o = NULL, *sub = NULL;
    int rc;

    if (!cJSON_IsObject(p)) {
        cm_json_err_set(je, CM_ERR_INVAL, "", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(p, "type", &type, je)))
        return rc;
    if (cp_tr_str_eq(type, "input_text") || cp_tr_str_eq(type, "output_text")) {
        if ((rc = cm_json_get_string(p, "text", &s, je)))
            return rc;
        if ((rc = cp_tr_typed_new("text", &o)) || (rc = cm_json_set_string(o, "text", s)))
            goto out;
    } else if (cp_tr_str_eq(type, "refusal") && asst) {
        if ((rc = cm_json_get_string(p, "refusal", &s, je)))
            return rc;
        if ((rc = cp_tr_typed_new("refusal", &o)) || (rc = cm_json_set_string(o, "refusal", s)))
            goto out;
    } else if (cp_tr_str_eq(type, "input_image") && user) {
        if (present(p, "file_id")) {
            cm_json_err_set(je, CM_ERR_INVAL, "file_id",
                            "is not supported (the chat pivot cannot reference uploaded files; "
                            "send image_url)");
            return CM_ERR_INVAL;
        }
        if ((rc = cm_json_get_string(p, "image_url", &s, je)) ||
            (rc = cm_json_opt_string(p, "detail", NULL, &detail, je)))
            return rc;
        if ((rc = cp_tr_typed_new("image_url", &o)) || (rc = cm_json_new_object(&sub)) ||
            (rc = cm_json_set_string(sub, "url", s)) ||
            (detail && (rc = cm_json_set_string(sub, "detail", detail))) ||
            (rc = cm_json_adopt(o, "image_url", &sub)))
            goto out;
    } else if (cp_tr_str_eq(type, "input_file") && user) {
        if (present(p, "file_id") || present(p, "file_url")) {
            cm_json_err_set(je, CM_ERR_INVAL, present(p, "file_id") ? "file_id" : "file_url",
                            "is not supported (the chat pivot takes inline file_data only)");
            return CM_ERR_INVAL;
        }
        if ((rc = cm_json_get_string(p, "file_data", &s, je)) ||
            (rc = cm_json_opt_string(p, "filename", NULL, &name, je)))
            return rc;
        if ((rc = cp_tr_typed_new("file", &o)) || (rc = cm_json_new_object(&sub)) ||
            (rc = cm_json_set_string(sub, "file_data", s)) ||
            (name && (rc = cm_json_set_string(sub, "filename", name))) ||
            (rc = cm_json_adopt(o, "file", &sub)))
            goto out;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "'%.32s' parts are not supported in a %.16s message", type, role);
        return CM_ERR_INVAL;
    }
    *out = o;
    o = NULL;
out:
    cJSON_Delete(sub);
    cJSON_Delete(o);
    return rc;
}

/* A message item -> one chat message. */
static int conv_message(struct conv *c, const cJSON *it, struct cm_json_err *je)
{
    const char *role = NULL, *chat_role;
    const cJSON *content;
    cJSON *m = NULL, *parts = NULL, *part = NULL;
    size_t j = 0;
    int rc;

    if ((rc = cm_json_get_string(it, "role", &role, je)))
        return rc;
    if (!cp_tr_str_eq(role, "user") && !cp_tr_str_eq(role, "system") &&
        !cp_tr_str_eq(role, "developer") && !cp_tr_str_eq(role, "assistant")) {
        cm_json_err_set(je, CM_ERR_INVAL, "role",
                        "must be one of user, system, developer, assistant");
        return CM_ERR_INVAL;
    }
    chat_role = cp_tr_str_eq(role, "developer") ? "system" : role;
    content = cJSON_GetObjectItemCaseSensitive(it, "content");
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", chat_role)))
        goto out;
    if (cJSON_IsString(content)) {
        if ((rc = cm_json_set_string(m, "content", content->valuestring)))
            goto out;
    } else if (cJSON_IsArray(content)) {
        const cJSON *p;
        if ((rc = cp_tr_check_cap(content, CP_TR_RESPONSES_CHAT_MAX_PARTS, "content", "parts",
                                  je)) ||
            (rc = cm_json_new_array(&parts)))
            goto out;
        cJSON_ArrayForEach(p, content)
        {
            if ((rc = conv_part(p, chat_role, &part, je))) {
                cm_json_err_scope(je, "content[%zu]", j);
                goto out;
            }
            if ((rc = cm_json_adopt(parts, NULL, &part)))
                goto out;
            j++;
        }
        if ((rc = cm_json_adopt(m, "content", &parts)))
            goto out;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of parts");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((rc = cm_json_set_item(c->msgs, NULL, m))) {
        m = NULL;
        goto out;
    }
    c->asst = cp_tr_str_eq(role, "assistant") ? m : NULL;
    m = NULL;
out:
    cJSON_Delete(part);
    cJSON_Delete(parts);
    cJSON_Delete(m);
    return rc;
}

/* A function_call item -> a tool call of the current (or a new) assistant message. */
static int conv_call(struct conv *c, const cJSON *it, struct cm_json_err *je)
{
    const char *call_id = NULL, *name = NULL, *args = NULL;
    cJSON *calls, *tc = NULL, *fn = NULL;
    int rc;

    if ((rc = cm_json_get_string(it, "call_id", &call_id, je)) ||
        (rc = cm_json_get_string(it, "name", &name, je)) ||
        (rc = cm_json_opt_string(it, "arguments", "", &args, je)))
        return rc;
    if (!c->asst) {
        cJSON *m = NULL;
        if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "assistant")) ||
            (rc = cm_json_set_null(m, "content"))) {
            cJSON_Delete(m);
            return rc;
        }
        if ((rc = cm_json_set_item(c->msgs, NULL, m)))
            return rc;
        c->asst = m;
    }
    calls = cJSON_GetObjectItemCaseSensitive(c->asst, "tool_calls");
    if (!calls) {
        if ((rc = cm_json_new_array(&calls)) ||
            (rc = cm_json_set_item(c->asst, "tool_calls", calls)))
            return rc;
    }
    if (cJSON_GetArraySize(calls) >= CP_TR_RESPONSES_CHAT_MAX_TOOLS) {
        cm_json_err_set(je, CM_ERR_LIMIT, "", "more than %d consecutive function calls",
                        CP_TR_RESPONSES_CHAT_MAX_TOOLS);
        return CM_ERR_LIMIT;
    }
    if ((rc = cm_json_new_object(&tc)) || (rc = cm_json_set_string(tc, "id", call_id)) ||
        (rc = cm_json_set_string(tc, "type", "function")) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) ||
        (rc = cm_json_set_string(fn, "arguments", args)) ||
        (rc = cm_json_adopt(tc, "function", &fn)))
        goto out;
    rc = cm_json_adopt(calls, NULL, &tc);
out:
    cJSON_Delete(fn);
    cJSON_Delete(tc);
    return rc;
}

/* A function_call_output item -> a tool message. */
static int conv_output(struct conv *c, const cJSON *it, struct cm_json_err *je)
{
    const char *call_id = NULL;
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(it, "output");
    struct cm_buf b;
    cJSON *m = NULL;
    int rc;

    cm_buf_init(&b, CP_TR_RESPONSES_CHAT_MAX_TEXT);
    if ((rc = cm_json_get_string(it, "call_id", &call_id, je)))
        goto out;
    if (cJSON_IsString(output)) {
        rc = cm_buf_append_str(&b, output->valuestring);
    } else if (cJSON_IsArray(output)) {
        const cJSON *p;
        size_t j = 0;
        if ((rc = cp_tr_check_cap(output, CP_TR_RESPONSES_CHAT_MAX_PARTS, "output", "parts", je)))
            goto out;
        cJSON_ArrayForEach(p, output)
        {
            const char *type = cp_tr_str_member(p, "type", "");
            const char *text = NULL;
            if (!cp_tr_str_eq(type, "input_text") && !cp_tr_str_eq(type, "output_text")) {
                cm_json_err_set(je, CM_ERR_INVAL, "type",
                                "'%.32s' parts are not supported in a function_call_output "
                                "(text only)",
                                type);
                rc = CM_ERR_INVAL;
            } else if ((rc = cm_json_get_string(p, "text", &text, je)) == CM_OK) {
                rc = cm_buf_append_str(&b, text);
            }
            if (rc) {
                if (rc != CM_ERR_NOMEM && rc != CM_ERR_LIMIT)
                    cm_json_err_scope(je, "output[%zu]", j);
                goto out;
            }
            j++;
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "output", "must be a string or an array of parts");
        rc = CM_ERR_INVAL;
    }
    if (rc == CM_ERR_LIMIT)
        cm_json_err_set(je, CM_ERR_LIMIT, "output", "is too long");
    if (rc)
        goto out;
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "tool")) ||
        (rc = cm_json_set_string(m, "tool_call_id", call_id)) ||
        (rc = cm_json_set_stringn(m, "content", b.data ? b.data : "", b.len)))
        goto out;
    rc = cm_json_adopt(c->msgs, NULL, &m);
    c->asst = NULL;
out:
    cm_buf_cleanup(&b);
    cJSON_Delete(m);
    return rc;
}

static int conv_item(struct conv *c, const cJSON *it, struct cm_json_err *je)
{
    const char *type = NULL;
    int rc;

    if (!cJSON_IsObject(it)) {
        cm_json_err_set(je, CM_ERR_INVAL, "", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_opt_string(it, "type", NULL, &type, je)))
        return rc;
    if (!type || cp_tr_str_eq(type, "message"))
        return conv_message(c, it, je);
    if (cp_tr_str_eq(type, "function_call"))
        return conv_call(c, it, je);
    if (cp_tr_str_eq(type, "function_call_output"))
        return conv_output(c, it, je);
    if (cp_tr_str_eq(type, "reasoning"))
        return CM_OK; /* opaque reasoning of an earlier turn: no chat equivalent */
    cm_json_err_set(je, CM_ERR_INVAL, "type", "'%.32s' items are not supported by the chat pivot",
                    type);
    return CM_ERR_INVAL;
}

/* cp_tr_map_array() callback: one flat Responses tool -> a chat function tool. */
static int conv_tool(const void *ud, const cJSON *t, cJSON **out, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    cJSON *o = NULL, *fn = NULL, *params = NULL;
    const cJSON *strict;
    int rc;

    (void)ud;
    if (!cJSON_IsObject(t)) {
        cm_json_err_set(je, CM_ERR_INVAL, "", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(t, "type", &type, je)))
        return rc;
    if (!cp_tr_str_eq(type, "function")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "'%.40s' tools are not supported by the chat pivot (function tools only)",
                        type);
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(t, "name", &name, je)) ||
        (rc = cm_json_opt_string(t, "description", NULL, &desc, je)) ||
        (rc = cm_json_opt_object(t, "parameters", &params, je)))
        return rc;
    if (!name[0]) {
        cm_json_err_set(je, CM_ERR_INVAL, "name", "must not be empty");
        return CM_ERR_INVAL;
    }
    strict = cJSON_GetObjectItemCaseSensitive(t, "strict");
    if (strict && !cJSON_IsBool(strict) && !cJSON_IsNull(strict)) {
        cm_json_err_set(je, CM_ERR_INVAL, "strict", "must be a boolean");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_typed_new("function", &o)) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) ||
        (desc && (rc = cm_json_set_string(fn, "description", desc))) ||
        (params && (rc = dup_into(fn, "parameters", params))) ||
        (cJSON_IsBool(strict) && (rc = cm_json_set_bool(fn, "strict", cJSON_IsTrue(strict)))) ||
        (rc = cm_json_adopt(o, "function", &fn)))
        goto out;
    *out = o;
    o = NULL;
out:
    cJSON_Delete(fn);
    cJSON_Delete(o);
    return rc;
}

static int conv_tool_choice(const cJSON *tc, cJSON *chat, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL;
    cJSON *o = NULL, *fn = NULL;
    int rc;

    if (cJSON_IsString(tc)) {
        if (!cp_tr_str_eq(tc->valuestring, "auto") && !cp_tr_str_eq(tc->valuestring, "none") &&
            !cp_tr_str_eq(tc->valuestring, "required")) {
            cm_json_err_set(je, CM_ERR_INVAL, "tool_choice",
                            "must be 'auto', 'none', 'required' or {type: function, name}");
            return CM_ERR_INVAL;
        }
        return cm_json_set_string(chat, "tool_choice", tc->valuestring);
    }
    if (!cJSON_IsObject(tc)) {
        cm_json_err_set(je, CM_ERR_INVAL, "tool_choice", "must be a string or an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(tc, "type", &type, je)))
        goto bad;
    if (!cp_tr_str_eq(type, "function")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "'%.40s' is not supported by the chat pivot (function choices only)", type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cm_json_get_string(tc, "name", &name, je)))
        goto bad;
    if ((rc = cp_tr_typed_new("function", &o)) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) || (rc = cm_json_adopt(o, "function", &fn)))
        goto out;
    rc = cm_json_adopt(chat, "tool_choice", &o);
    goto out;
bad:
    cm_json_err_scope(je, "tool_choice");
out:
    cJSON_Delete(fn);
    cJSON_Delete(o);
    return rc;
}

/* text {format, verbosity} -> response_format / verbosity on @p chat. */
static int conv_text(const cJSON *text, cJSON *chat, struct cm_json_err *je)
{
    cJSON *fmt = NULL, *schema = NULL, *rf = NULL, *js = NULL;
    const char *type = NULL, *name = NULL, *desc = NULL, *verb = NULL;
    const cJSON *strict;
    int rc;

    if ((rc = cm_json_opt_object(text, "format", &fmt, je)) ||
        (rc = cm_json_opt_string(text, "verbosity", NULL, &verb, je)))
        goto bad;
    if (verb && (rc = cm_json_set_string(chat, "verbosity", verb)))
        return rc;
    if (!fmt)
        return CM_OK;
    if ((rc = cm_json_get_string(fmt, "type", &type, je)))
        goto bad_fmt;
    if (cp_tr_str_eq(type, "text"))
        return CM_OK;
    if (cp_tr_str_eq(type, "json_object")) {
        if ((rc = cp_tr_typed_new("json_object", &rf)))
            goto out;
    } else if (cp_tr_str_eq(type, "json_schema")) {
        if ((rc = cm_json_get_string(fmt, "name", &name, je)) ||
            (rc = cm_json_opt_string(fmt, "description", NULL, &desc, je)) ||
            (rc = cm_json_opt_object(fmt, "schema", &schema, je)))
            goto bad_fmt;
        strict = cJSON_GetObjectItemCaseSensitive(fmt, "strict");
        if (strict && !cJSON_IsBool(strict) && !cJSON_IsNull(strict)) {
            cm_json_err_set(je, CM_ERR_INVAL, "strict", "must be a boolean");
            rc = CM_ERR_INVAL;
            goto bad_fmt;
        }
        if ((rc = cp_tr_typed_new("json_schema", &rf)) || (rc = cm_json_new_object(&js)) ||
            (rc = cm_json_set_string(js, "name", name)) ||
            (desc && (rc = cm_json_set_string(js, "description", desc))) ||
            (schema && (rc = dup_into(js, "schema", schema))) ||
            (cJSON_IsBool(strict) && (rc = cm_json_set_bool(js, "strict", cJSON_IsTrue(strict)))) ||
            (rc = cm_json_adopt(rf, "json_schema", &js)))
            goto out;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "'%.32s' formats are not supported", type);
        rc = CM_ERR_INVAL;
        goto bad_fmt;
    }
    rc = cm_json_adopt(chat, "response_format", &rf);
    goto out;
bad_fmt:
    cm_json_err_scope(je, "format");
bad:
    cm_json_err_scope(je, "text");
out:
    cJSON_Delete(js);
    cJSON_Delete(rf);
    return rc;
}

/* Refuses what needs state or features the chat pivot does not have. */
static int check_refused(const cJSON *req, struct cm_json_err *je)
{
    static const struct {
        const char *name, *why;
    } stateful[] = {
        {"previous_response_id",
         "is not supported: this proxy keeps no conversation state (send the whole "
         "conversation in input)"},
        {"conversation", "is not supported: this proxy keeps no conversation state"},
        {"prompt", "is not supported: this proxy has no stored prompts"},
        {"max_tool_calls", "is not supported by the chat pivot"},
    };
    bool background = false;
    int64_t top_logprobs = 0;
    int rc;

    for (size_t i = 0; i < sizeof(stateful) / sizeof(stateful[0]); i++) {
        if (present(req, stateful[i].name)) {
            cm_json_err_set(je, CM_ERR_INVAL, stateful[i].name, "%s", stateful[i].why);
            return CM_ERR_INVAL;
        }
    }
    if ((rc = cm_json_opt_bool(req, "background", false, &background, je)) ||
        (rc = cm_json_opt_int64(req, "top_logprobs", 0, 20, 0, &top_logprobs, je)))
        return rc;
    if (background) {
        cm_json_err_set(je, CM_ERR_INVAL, "background",
                        "true is not supported (no background responses)");
        return CM_ERR_INVAL;
    }
    if (top_logprobs > 0) {
        cm_json_err_set(je, CM_ERR_INVAL, "top_logprobs", "is not supported by the chat pivot");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

/* The sampling and limit knobs that map one to one. */
static int conv_knobs(const cJSON *req, cJSON *chat, struct cm_json_err *je)
{
    cJSON *reasoning = NULL;
    const char *effort = NULL, *user = NULL;
    int64_t max_out = 0;
    double v = 0;
    bool b = false;
    int rc;

    if ((rc = cm_json_opt_object(req, "reasoning", &reasoning, je)))
        return rc;
    if (reasoning && (rc = cm_json_opt_string(reasoning, "effort", NULL, &effort, je))) {
        cm_json_err_scope(je, "reasoning");
        return rc;
    }
    if (effort && (rc = cm_json_set_string(chat, "reasoning_effort", effort)))
        return rc;
    if (present(req, "max_output_tokens") &&
        ((rc = cm_json_get_int64(req, "max_output_tokens", 1, CM_JSON_INT_MAX, &max_out, je)) ||
         (rc = cm_json_set_int64(chat, "max_completion_tokens", max_out))))
        return rc;
    if (present(req, "temperature") &&
        ((rc = cm_json_get_double(req, "temperature", 0, 2, &v, je)) ||
         (rc = cm_json_set_double(chat, "temperature", v))))
        return rc;
    if (present(req, "top_p") && ((rc = cm_json_get_double(req, "top_p", 0, 1, &v, je)) ||
                                  (rc = cm_json_set_double(chat, "top_p", v))))
        return rc;
    if (present(req, "parallel_tool_calls") &&
        ((rc = cm_json_get_bool(req, "parallel_tool_calls", &b, je)) ||
         (rc = cm_json_set_bool(chat, "parallel_tool_calls", b))))
        return rc;
    if ((rc = cm_json_opt_string(req, "user", NULL, &user, je)) ||
        (user && (rc = cm_json_set_string(chat, "user", user))))
        return rc;
    return CM_OK;
}

static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    const char *model = NULL, *instr = NULL;
    const cJSON *input, *it, *tools, *tc;
    cJSON *chat = NULL, *msgs = NULL, *m = NULL, *arr = NULL, *text = NULL;
    struct conv c = {NULL, NULL};
    bool stream = false;
    size_t i = 0;
    int rc;

    if ((rc = check_refused(req, je)) || (rc = cm_json_get_string(req, "model", &model, je)) ||
        (rc = cm_json_opt_bool(req, "stream", false, &stream, je)) ||
        (rc = cm_json_opt_string(req, "instructions", NULL, &instr, je)) ||
        (rc = cm_json_opt_object(req, "text", &text, je)))
        goto out;
    if ((rc = cm_json_new_object(&chat)) || (rc = cm_json_set_string(chat, "model", model)) ||
        (rc = cm_json_new_array(&msgs)))
        goto out;
    c.msgs = msgs;
    if (instr && instr[0]) {
        if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "system")) ||
            (rc = cm_json_set_string(m, "content", instr)) || (rc = cm_json_adopt(msgs, NULL, &m)))
            goto out;
    }
    input = cJSON_GetObjectItemCaseSensitive(req, "input");
    if (cJSON_IsString(input)) {
        if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "user")) ||
            (rc = cm_json_set_string(m, "content", input->valuestring)) ||
            (rc = cm_json_adopt(msgs, NULL, &m)))
            goto out;
    } else if (cJSON_IsArray(input)) {
        if ((rc = cp_tr_check_cap(input, CP_TR_RESPONSES_CHAT_MAX_ITEMS, "input", "items", je)))
            goto out;
        cJSON_ArrayForEach(it, input)
        {
            if ((rc = conv_item(&c, it, je))) {
                cm_json_err_scope(je, "input[%zu]", i);
                goto out;
            }
            i++;
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "input",
                        input ? "must be a string or an array of items" : "is required");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (cJSON_GetArraySize(msgs) == 0) {
        cm_json_err_set(je, CM_ERR_INVAL, "input", "must hold at least one message");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((rc = cm_json_adopt(chat, "messages", &msgs)) ||
        (rc = cm_json_set_bool(chat, "stream", stream)))
        goto out;
    tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        if ((rc = cp_tr_map_array(tools, "tools", CP_TR_RESPONSES_CHAT_MAX_TOOLS, conv_tool, NULL,
                                  &arr, je)))
            goto out;
        if (cJSON_GetArraySize(arr) > 0 && (rc = cm_json_adopt(chat, "tools", &arr)))
            goto out;
    }
    tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    if (tc && !cJSON_IsNull(tc) && (rc = conv_tool_choice(tc, chat, je)))
        goto out;
    if ((rc = conv_knobs(req, chat, je)))
        goto out;
    if (text && (rc = conv_text(text, chat, je)))
        goto out;
    *out = chat;
    chat = NULL;
out:
    cJSON_Delete(arr);
    cJSON_Delete(m);
    cJSON_Delete(msgs);
    cJSON_Delete(chat);
    return rc;
}

int cp_tr_responses_chat_request(const cJSON *req, cJSON **chat, struct cp_tr_err *err)
{
    struct cm_json_err je;
    cJSON *body = NULL;
    int rc;

    memset(&je, 0, sizeof(je));
    if (!chat) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsObject(req)) {
        cp_tr_err_set(err, CM_ERR_INVAL, 400, "", "invalid_request_error", "",
                      "the request body must be a JSON object");
        return CM_ERR_INVAL;
    }
    if ((rc = build_request(req, &body, &je)))
        return req_err(err, rc, &je);
    *chat = body;
    return CM_OK;
}

/* ====================================================================================== */
/* ---- the response object and its items (stream and non-stream) ---- */

/* "<prefix>_<id>_<index>" into a new string (cm_free()), or NULL. */
static char *item_id(const char *prefix, const char *id, size_t index)
{
    struct cm_buf b;

    cm_buf_init(&b, 4096);
    if (cm_buf_appendf(&b, "%s_%s_%zu", prefix, id, index)) {
        cm_buf_cleanup(&b);
        return NULL;
    }
    return cm_buf_release(&b, NULL);
}

/* {"type": @p type, "text": @p text, ["annotations": []]} appended to @p arr. */
static int text_part(cJSON *arr, const char *type, const char *key, const char *text, size_t len,
                     bool annotations)
{
    cJSON *p = NULL;
    int rc;

    if ((rc = cp_tr_typed_new(type, &p)) || (rc = cm_json_set_stringn(p, key, text, len)) ||
        (annotations && (rc = cm_json_set_item(p, "annotations", cJSON_CreateArray()))))
        goto out;
    rc = cm_json_adopt(arr, NULL, &p);
out:
    cJSON_Delete(p);
    return rc;
}

/* What one output item holds; text is the summary / message text / arguments. */
struct item_desc {
    const char *kind; /* "reasoning", "message", "function_call" */
    const char *id;   /* the response id */
    size_t index;     /* output_index */
    bool done;        /* final shape (status completed, content filled) */
    const char *text; /* may be NULL when !done */
    size_t len;
    const char *refusal; /* message: a refusal part after the text (non-stream), or NULL */
    const char *call_id; /* function_call */
    const char *name;    /* function_call */
};

static int item_new(const struct item_desc *d, cJSON **out)
{
    bool reasoning = cp_tr_str_eq(d->kind, "reasoning");
    bool message = cp_tr_str_eq(d->kind, "message");
    const char *prefix = reasoning ? "rs" : message ? "msg" : "fc";
    const char *status = d->done ? "completed" : "in_progress";
    char *iid = item_id(prefix, d->id, d->index);
    cJSON *o = NULL, *arr = NULL;
    int rc;

    if (!iid)
        return CM_ERR_NOMEM;
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "id", iid)) ||
        (rc = cm_json_set_string(o, "type", d->kind)))
        goto out;
    if (reasoning) {
        if ((rc = cm_json_new_array(&arr)) ||
            (d->done && (rc = text_part(arr, "summary_text", "text", d->text, d->len, false))) ||
            (rc = cm_json_adopt(o, "summary", &arr)))
            goto out;
    } else if (message) {
        if ((rc = cm_json_set_string(o, "status", status)) ||
            (rc = cm_json_set_string(o, "role", "assistant")) || (rc = cm_json_new_array(&arr)) ||
            (d->done && d->text &&
             (rc = text_part(arr, "output_text", "text", d->text, d->len, true))) ||
            (d->done && d->refusal &&
             (rc = text_part(arr, "refusal", "refusal", d->refusal, strlen(d->refusal), false))) ||
            (rc = cm_json_adopt(o, "content", &arr)))
            goto out;
    } else if ((rc = cm_json_set_string(o, "status", status)) ||
               (rc = cm_json_set_stringn(o, "arguments", d->done ? d->text : "",
                                         d->done ? d->len : 0)) ||
               (rc = cm_json_set_string(o, "call_id", d->call_id)) ||
               (rc = cm_json_set_string(o, "name", d->name))) {
        goto out;
    }
    *out = o;
    o = NULL;
out:
    cm_free(iid);
    cJSON_Delete(arr);
    cJSON_Delete(o);
    return rc;
}

/* Chat usage {prompt_tokens, ...} into @p u; false when @p usage is not an object. */
static bool parse_usage(const cJSON *usage, struct cp_tr_usage *u)
{
    const cJSON *pd, *cd;

    if (!cJSON_IsObject(usage))
        return false;
    memset(u, 0, sizeof(*u));
    pd = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
    cd = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details");
    (void)cm_json_opt_int64(usage, "prompt_tokens", 0, CM_JSON_INT_MAX, 0, &u->input, NULL);
    (void)cm_json_opt_int64(usage, "completion_tokens", 0, CM_JSON_INT_MAX, 0, &u->output, NULL);
    (void)cm_json_opt_int64(pd, "cached_tokens", 0, CM_JSON_INT_MAX, 0, &u->cached, NULL);
    (void)cm_json_opt_int64(cd, "reasoning_tokens", 0, CM_JSON_INT_MAX, 0, &u->reasoning, NULL);
    if (cm_json_get_int64(usage, "total_tokens", 0, CM_JSON_INT_MAX, &u->total, NULL))
        u->total = u->input + u->output;
    return true;
}

/* Responses usage for @p u (NULL: null) set as @p parent.usage. */
static int set_usage(cJSON *parent, const struct cp_tr_usage *u)
{
    cJSON *o = NULL, *d = NULL;
    int rc;

    if (!u)
        return cm_json_set_null(parent, "usage");
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_int64(o, "input_tokens", u->input)) ||
        (rc = cm_json_new_object(&d)) || (rc = cm_json_set_int64(d, "cached_tokens", u->cached)) ||
        (rc = cm_json_adopt(o, "input_tokens_details", &d)) ||
        (rc = cm_json_set_int64(o, "output_tokens", u->output)) || (rc = cm_json_new_object(&d)) ||
        (rc = cm_json_set_int64(d, "reasoning_tokens", u->reasoning)) ||
        (rc = cm_json_adopt(o, "output_tokens_details", &d)) ||
        (rc = cm_json_set_int64(o, "total_tokens", u->total)))
        goto out;
    rc = cm_json_adopt(parent, "usage", &o);
out:
    cJSON_Delete(d);
    cJSON_Delete(o);
    return rc;
}

/* req.@p name copied into @p o, or @p def (a new item; NULL = null) when absent or null. */
static int echo(cJSON *o, const cJSON *req, const char *name, cJSON *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);

    if (v && !cJSON_IsNull(v)) {
        cJSON_Delete(def);
        return dup_into(o, name, v);
    }
    return def ? cm_json_set_item(o, name, def) : cm_json_set_null(o, name);
}

/*
 * The response object for request @p req: status "in_progress", output [], usage null,
 * and the request's settings echoed. @p model: the fallback when the request has none.
 */
static int response_base(const cJSON *req, const char *id, int64_t created, const char *model,
                         cJSON **out)
{
    const cJSON *reasoning = cJSON_GetObjectItemCaseSensitive(req, "reasoning");
    const char *m = cp_tr_str_member(req, "model", model ? model : "");
    cJSON *o = NULL, *r = NULL, *fmt = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "id", id)) ||
        (rc = cm_json_set_string(o, "object", "response")) ||
        (rc = cm_json_set_int64(o, "created_at", created)) ||
        (rc = cm_json_set_string(o, "status", "in_progress")) ||
        (rc = cm_json_set_null(o, "error")) || (rc = cm_json_set_null(o, "incomplete_details")) ||
        (rc = echo(o, req, "instructions", NULL)) ||
        (rc = echo(o, req, "max_output_tokens", NULL)) ||
        (rc = cm_json_set_string(o, "model", m)) ||
        (rc = cm_json_set_item(o, "output", cJSON_CreateArray())) ||
        (rc = echo(o, req, "parallel_tool_calls", cJSON_CreateTrue())) ||
        (rc = cm_json_new_object(&r)) || (rc = echo(r, reasoning, "effort", NULL)) ||
        (rc = echo(r, reasoning, "summary", NULL)) || (rc = cm_json_adopt(o, "reasoning", &r)) ||
        (rc = echo(o, req, "temperature", NULL)) || (rc = cp_tr_typed_new("text", &fmt)) ||
        (rc = cm_json_new_object(&r)) || (rc = cm_json_adopt(r, "format", &fmt)))
        goto out;
    rc = echo(o, req, "text", r); /* takes r */
    r = NULL;
    if (rc || (rc = echo(o, req, "tool_choice", cJSON_CreateString("auto"))) ||
        (rc = echo(o, req, "tools", cJSON_CreateArray())) || (rc = echo(o, req, "top_p", NULL)) ||
        (rc = cm_json_set_null(o, "usage")) ||
        (rc = echo(o, req, "metadata", cJSON_CreateObject())))
        goto out;
    *out = o;
    o = NULL;
out:
    cJSON_Delete(fmt);
    cJSON_Delete(r);
    cJSON_Delete(o);
    return rc;
}

/* Status and incomplete_details of @p resp for the chat @p finish reason. */
static int set_status(cJSON *resp, const char *finish, bool *incomplete)
{
    const char *reason = cp_tr_str_eq(finish, "length")           ? "max_output_tokens"
                         : cp_tr_str_eq(finish, "content_filter") ? "content_filter"
                                                                  : NULL;
    cJSON *d = NULL;
    int rc;

    *incomplete = reason != NULL;
    if (!reason)
        return cm_json_set_string(resp, "status", "completed");
    if ((rc = cm_json_set_string(resp, "status", "incomplete")) || (rc = cm_json_new_object(&d)) ||
        (rc = cm_json_set_string(d, "reason", reason)))
        goto out;
    rc = cm_json_adopt(resp, "incomplete_details", &d);
out:
    cJSON_Delete(d);
    return rc;
}

/* ====================================================================================== */
/* ---- the stream ---- */

enum item_kind { ITEM_NONE, ITEM_REASONING, ITEM_MESSAGE, ITEM_CALL };

/* A chat tool_calls index and the output item it became. */
struct call_slot {
    int64_t chat_index;
    size_t out_index;
};

struct cp_tr_responses_chat_stream {
    char *id;                /* response id (owned) */
    cJSON *base;             /* response object template: in_progress, output [] (owned) */
    cJSON *output;           /* the items closed so far, final shape (owned) */
    int64_t seq;             /* next sequence_number */
    bool started;            /* response.created / in_progress went out */
    bool ended;              /* stream_end() or stream_fail() ran */
    bool has_content;        /* a chunk carried text, reasoning or a tool call */
    enum item_kind kind;     /* the open item, ITEM_NONE when none */
    size_t open_index;       /* its output_index */
    char *open_id;           /* its item id (owned) */
    struct cm_buf text;      /* its text / arguments so far */
    char *call_id;           /* open function_call: call_id (owned) */
    char *call_name;         /* open function_call: name (owned) */
    size_t nitems;           /* items opened so far (the next output_index) */
    struct call_slot *calls; /* every tool call seen (owned) */
    size_t ncalls;
    char *finish; /* the last finish_reason seen (owned), or NULL */
    struct cp_tr_usage usage;
    bool have_usage;
};

int cp_tr_responses_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                    struct cp_tr_responses_chat_stream **out)
{
    struct cp_tr_responses_chat_stream *st;
    int rc;

    if (!id || !out)
        return CM_ERR_INVAL;
    st = cm_calloc(1, sizeof(*st));
    if (!st)
        return CM_ERR_NOMEM;
    cm_buf_init(&st->text, CP_TR_RESPONSES_CHAT_MAX_TEXT);
    st->id = cm_strdup(id);
    if (!st->id) {
        rc = CM_ERR_NOMEM;
        goto fail;
    }
    if ((rc = response_base(req, id, created, NULL, &st->base)) ||
        (rc = cm_json_new_array(&st->output)))
        goto fail;
    *out = st;
    return CM_OK;
fail:
    cp_tr_responses_chat_stream_free(st);
    return rc;
}

void cp_tr_responses_chat_stream_free(struct cp_tr_responses_chat_stream *st)
{
    if (!st)
        return;
    cm_free(st->id);
    cJSON_Delete(st->base);
    cJSON_Delete(st->output);
    cm_free(st->open_id);
    cm_buf_cleanup(&st->text);
    cm_free(st->call_id);
    cm_free(st->call_name);
    cm_free(st->calls);
    cm_free(st->finish);
    cm_free(st);
}

bool cp_tr_responses_chat_stream_has_content(const struct cp_tr_responses_chat_stream *st)
{
    return st && st->has_content;
}

/* A new event {"type": @p type, "sequence_number": next} in *@p ev. */
static int ev_new(const struct cp_tr_responses_chat_stream *st, const char *type, cJSON **ev)
{
    cJSON *o = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", type)) ||
        (rc = cm_json_set_int64(o, "sequence_number", st->seq))) {
        cJSON_Delete(o);
        return rc;
    }
    *ev = o;
    return CM_OK;
}

/* Appends "event: <type>\ndata: <json>\n\n" for @p ev (always deleted) whole, or nothing. */
static int emit(struct cp_tr_responses_chat_stream *st, cJSON *ev, struct cm_buf *out)
{
    const char *type = cp_tr_str_member(ev, "type", "");
    char *json = NULL;
    size_t n = 0;
    int rc;

    if ((rc = cm_json_print(ev, &json, &n)))
        goto out;
    if ((rc = cm_buf_reserve(out, strlen(type) + n + 16)))
        goto out;
    (void)cm_buf_appendf(out, "event: %s\ndata: ", type);
    (void)cm_buf_append(out, json, n);
    (void)cm_buf_append(out, "\n\n", 2);
    st->seq++;
out:
    cm_free(json);
    cJSON_Delete(ev);
    return rc;
}

/* An event about the open item: {type, sequence_number, item_id, output_index}. */
static int ev_item(const struct cp_tr_responses_chat_stream *st, const char *type, cJSON **ev)
{
    int rc;

    if ((rc = ev_new(st, type, ev)))
        return rc;
    if ((rc = cm_json_set_string(*ev, "item_id", st->open_id)) ||
        (rc = cm_json_set_int64(*ev, "output_index", (int64_t)st->open_index))) {
        cJSON_Delete(*ev);
        *ev = NULL;
    }
    return rc;
}

/* Emits an event of @p type carrying the response @p resp (taken, also on failure). */
static int emit_response(struct cp_tr_responses_chat_stream *st, const char *type, cJSON *resp,
                         struct cm_buf *out)
{
    cJSON *ev = NULL;
    int rc;

    if ((rc = ev_new(st, type, &ev))) {
        cJSON_Delete(resp);
        return rc;
    }
    if ((rc = cm_json_set_item(ev, "response", resp))) {
        cJSON_Delete(ev);
        return rc;
    }
    return emit(st, ev, out);
}

static int start(struct cp_tr_responses_chat_stream *st, struct cm_buf *out)
{
    int rc;

    if (st->started)
        return CM_OK;
    if ((rc = emit_response(st, "response.created", cJSON_Duplicate(st->base, 1), out)) ||
        (rc = emit_response(st, "response.in_progress", cJSON_Duplicate(st->base, 1), out)))
        return rc;
    st->started = true;
    return CM_OK;
}

/* The open item as an item_desc (final shape when @p done). */
static struct item_desc open_desc(const struct cp_tr_responses_chat_stream *st, bool done)
{
    struct item_desc d;

    memset(&d, 0, sizeof(d));
    d.kind = st->kind == ITEM_REASONING ? "reasoning"
             : st->kind == ITEM_MESSAGE ? "message"
                                        : "function_call";
    d.id = st->id;
    d.index = st->open_index;
    d.done = done;
    d.text = st->text.data ? st->text.data : "";
    d.len = st->text.len;
    d.call_id = st->call_id;
    d.name = st->call_name;
    return d;
}

/* The summary_text / output_text part of the open item, for the part events. */
static int part_json(const struct cp_tr_responses_chat_stream *st, bool done, cJSON **out)
{
    bool msg = st->kind == ITEM_MESSAGE;
    cJSON *p = NULL;
    int rc;

    if ((rc = cp_tr_typed_new(msg ? "output_text" : "summary_text", &p)) ||
        (rc = cm_json_set_stringn(p, "text", done && st->text.data ? st->text.data : "",
                                  done ? st->text.len : 0)) ||
        (msg && (rc = cm_json_set_item(p, "annotations", cJSON_CreateArray())))) {
        cJSON_Delete(p);
        return rc;
    }
    *out = p;
    return CM_OK;
}

/* output_item.added / .done for the open item. */
static int emit_item_event(struct cp_tr_responses_chat_stream *st, bool done, struct cm_buf *out)
{
    struct item_desc d = open_desc(st, done);
    cJSON *ev = NULL, *item = NULL;
    int rc;

    if ((rc = ev_new(st, done ? "response.output_item.done" : "response.output_item.added", &ev)) ||
        (rc = cm_json_set_int64(ev, "output_index", (int64_t)st->open_index)) ||
        (rc = item_new(&d, &item)) || (rc = cm_json_adopt(ev, "item", &item)))
        goto out;
    rc = emit(st, ev, out);
    ev = NULL;
out:
    cJSON_Delete(item);
    cJSON_Delete(ev);
    return rc;
}

/* content_part.* / reasoning_summary_part.* for the open item. */
static int emit_part_event(struct cp_tr_responses_chat_stream *st, bool done, struct cm_buf *out)
{
    bool msg = st->kind == ITEM_MESSAGE;
    const char *type = msg ? (done ? "response.content_part.done" : "response.content_part.added")
                           : (done ? "response.reasoning_summary_part.done"
                                   : "response.reasoning_summary_part.added");
    cJSON *ev = NULL, *part = NULL;
    int rc;

    if ((rc = ev_item(st, type, &ev)) ||
        (rc = cm_json_set_int64(ev, msg ? "content_index" : "summary_index", 0)) ||
        (rc = part_json(st, done, &part)) || (rc = cm_json_adopt(ev, "part", &part)))
        goto out;
    rc = emit(st, ev, out);
    ev = NULL;
out:
    cJSON_Delete(part);
    cJSON_Delete(ev);
    return rc;
}

/* The text / arguments delta or done event of the open item (@p s / @p n: delta or all). */
static int emit_text_event(struct cp_tr_responses_chat_stream *st, bool done, const char *s,
                           size_t n, struct cm_buf *out)
{
    static const char *const types[][2] = {
        {"", ""},
        {"response.reasoning_summary_text.delta", "response.reasoning_summary_text.done"},
        {"response.output_text.delta", "response.output_text.done"},
        {"response.function_call_arguments.delta", "response.function_call_arguments.done"},
    };
    const char *key = !done ? "delta" : st->kind == ITEM_CALL ? "arguments" : "text";
    cJSON *ev = NULL;
    int rc;

    if ((rc = ev_item(st, types[st->kind][done ? 1 : 0], &ev)) ||
        (st->kind == ITEM_MESSAGE && (rc = cm_json_set_int64(ev, "content_index", 0))) ||
        (st->kind == ITEM_REASONING && (rc = cm_json_set_int64(ev, "summary_index", 0))) ||
        (rc = cm_json_set_stringn(ev, key, s ? s : "", n)))
        goto out;
    rc = emit(st, ev, out);
    ev = NULL;
out:
    cJSON_Delete(ev);
    return rc;
}

/* Closes the open item (if any): its done events, and its final shape into st->output. */
static int close_item(struct cp_tr_responses_chat_stream *st, struct cm_buf *out)
{
    struct item_desc d;
    cJSON *item = NULL;
    int rc;

    if (st->kind == ITEM_NONE)
        return CM_OK;
    if ((rc = emit_text_event(st, true, st->text.data, st->text.len, out)) ||
        (st->kind != ITEM_CALL && (rc = emit_part_event(st, true, out))) ||
        (rc = emit_item_event(st, true, out)))
        return rc;
    d = open_desc(st, true);
    if ((rc = item_new(&d, &item)) || (rc = cm_json_adopt(st->output, NULL, &item)))
        return rc;
    st->kind = ITEM_NONE;
    cm_buf_reset(&st->text);
    cm_free(st->open_id);
    cm_free(st->call_id);
    cm_free(st->call_name);
    st->open_id = st->call_id = st->call_name = NULL;
    return CM_OK;
}

static int limit_err(struct cp_tr_err *err, const char *what)
{
    cp_tr_err_set(err, CM_ERR_LIMIT, 502, "", "server_error", "bad_upstream_event",
                  "upstream answer too large: %s", what);
    return CM_ERR_LIMIT;
}

/* Closes the open item and opens one of @p kind (a call: @p call_id, @p name). */
static int open_item(struct cp_tr_responses_chat_stream *st, enum item_kind kind,
                     const char *call_id, const char *name, struct cm_buf *out,
                     struct cp_tr_err *err)
{
    static const char *const prefixes[] = {"", "rs", "msg", "fc"};
    int rc;

    if ((rc = close_item(st, out)))
        return rc;
    if (st->nitems >= CP_TR_RESPONSES_CHAT_MAX_OUTPUT)
        return limit_err(err, "too many output items");
    st->open_id = item_id(prefixes[kind], st->id, st->nitems);
    if (!st->open_id)
        return CM_ERR_NOMEM;
    if (kind == ITEM_CALL) {
        st->call_id = cm_strdup(call_id);
        st->call_name = cm_strdup(name);
        if (!st->call_id || !st->call_name)
            return CM_ERR_NOMEM;
    }
    st->kind = kind;
    st->open_index = st->nitems++;
    if ((rc = emit_item_event(st, false, out)))
        return rc;
    return kind == ITEM_CALL ? CM_OK : emit_part_event(st, false, out);
}

/* Appends @p s to the open item and emits its delta (nothing for ""). */
static int add_text(struct cp_tr_responses_chat_stream *st, const char *s, struct cm_buf *out,
                    struct cp_tr_err *err)
{
    size_t n = strlen(s);
    int rc;

    if (!n)
        return CM_OK;
    if ((rc = cm_buf_append(&st->text, s, n)))
        return rc == CM_ERR_LIMIT ? limit_err(err, "an output item's text") : rc;
    st->has_content = true;
    return emit_text_event(st, false, s, n, out);
}

/* Text of kind @p kind (reasoning / message): into the open item of that kind, or a new one. */
static int on_text(struct cp_tr_responses_chat_stream *st, enum item_kind kind, const char *s,
                   struct cm_buf *out, struct cp_tr_err *err)
{
    int rc;

    if (!s || !s[0])
        return CM_OK;
    if (st->kind != kind && (rc = open_item(st, kind, NULL, NULL, out, err)))
        return rc;
    return add_text(st, s, out, err);
}

static struct call_slot *find_call(struct cp_tr_responses_chat_stream *st, int64_t index)
{
    for (size_t i = 0; i < st->ncalls; i++)
        if (st->calls[i].chat_index == index)
            return &st->calls[i];
    return NULL;
}

/* One delta.tool_calls entry @p tc (@p pos: its position, the index when it has none). */
static int on_tool_call(struct cp_tr_responses_chat_stream *st, const cJSON *tc, size_t pos,
                        struct cm_buf *out, struct cp_tr_err *err)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *args = cp_tr_str_member(fn, "arguments", "");
    struct call_slot *slot;
    int64_t index = (int64_t)pos;
    int rc;

    if (!cJSON_IsObject(tc))
        return CM_OK;
    (void)cm_json_opt_int64(tc, "index", 0, CM_JSON_INT_MAX, (int64_t)pos, &index, NULL);
    slot = find_call(st, index);
    if (!slot) {
        const char *call_id = cp_tr_str_member(tc, "id", NULL);
        char *gen = NULL;
        struct call_slot *grown;
        if (st->ncalls >= CP_TR_RESPONSES_CHAT_MAX_OUTPUT)
            return limit_err(err, "too many tool calls");
        grown = cm_realloc(st->calls, (st->ncalls + 1) * sizeof(*st->calls));
        if (!grown)
            return CM_ERR_NOMEM;
        st->calls = grown;
        if (!call_id || !call_id[0]) { /* the upstream named no id: make a stable one */
            gen = item_id("call", st->id, st->nitems);
            if (!gen)
                return CM_ERR_NOMEM;
            call_id = gen;
        }
        rc = open_item(st, ITEM_CALL, call_id, cp_tr_str_member(fn, "name", ""), out, err);
        cm_free(gen);
        if (rc)
            return rc;
        st->calls[st->ncalls].chat_index = index;
        st->calls[st->ncalls].out_index = st->open_index;
        st->ncalls++;
        st->has_content = true;
        return add_text(st, args, out, err);
    }
    if (st->kind == ITEM_CALL && slot->out_index == st->open_index)
        return add_text(st, args, out, err);
    if (!args[0])
        return CM_OK;
    cp_tr_err_set(err, CM_ERR_UPSTREAM, 502, "", "server_error", "bad_upstream_event",
                  "upstream sent arguments for tool call %lld after another item began",
                  (long long)index);
    return CM_ERR_UPSTREAM;
}

static int on_choice(struct cp_tr_responses_chat_stream *st, const cJSON *choice,
                     struct cm_buf *out, struct cp_tr_err *err)
{
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    const char *finish = cp_tr_str_member(choice, "finish_reason", NULL);
    int rc;

    if ((rc = on_text(st, ITEM_REASONING, cp_tr_str_member(delta, "reasoning_content", NULL), out,
                      err)) ||
        (rc = on_text(st, ITEM_MESSAGE, cp_tr_str_member(delta, "content", NULL), out, err)))
        return rc;
    if (cJSON_IsArray(calls)) {
        const cJSON *tc;
        size_t pos = 0;
        cJSON_ArrayForEach(tc, calls)
        {
            if ((rc = on_tool_call(st, tc, pos++, out, err)))
                return rc;
        }
    }
    if (finish) {
        char *f = cm_strdup(finish);
        if (!f)
            return CM_ERR_NOMEM;
        cm_free(st->finish);
        st->finish = f;
    }
    return CM_OK;
}

int cp_tr_responses_chat_stream_chunk(struct cp_tr_responses_chat_stream *st, const cJSON *chunk,
                                      struct cm_buf *out, struct cp_tr_err *err)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    struct cp_tr_err why;
    const cJSON *ch;
    int rc = CM_OK;

    if (!st || !out) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    memset(&why, 0, sizeof(why));
    if (st->ended || !cJSON_IsObject(chunk) || !cJSON_IsArray(choices))
        return CM_OK;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(st->base, "model")) ||
        !cp_tr_str_member(st->base, "model", "")[0]) {
        const char *m = cp_tr_str_member(chunk, "model", NULL);
        if (m && (rc = cm_json_set_string(st->base, "model", m)))
            goto out;
    }
    if ((rc = start(st, out)))
        goto out;
    if (parse_usage(cJSON_GetObjectItemCaseSensitive(chunk, "usage"), &st->usage))
        st->have_usage = true;
    cJSON_ArrayForEach(ch, choices)
    {
        int64_t idx = 0;
        (void)cm_json_opt_int64(ch, "index", 0, CM_JSON_INT_MAX, 0, &idx, NULL);
        if (!cJSON_IsObject(ch) || idx != 0)
            continue; /* the pivot asks for one choice */
        if ((rc = on_choice(st, ch, out, &why)))
            break; /* why is filled where the upstream is at fault */
    }
out:
    if (rc && !why.rc) {
        if (rc == CM_ERR_LIMIT)
            limit_err(&why, "the client stream is full");
        else
            cp_tr_server_error(&why, rc, rc == CM_ERR_NOMEM ? "out of memory" : "internal error");
    }
    if (rc && err)
        *err = why;
    return rc;
}

int cp_tr_responses_chat_stream_end(struct cp_tr_responses_chat_stream *st, struct cm_buf *out)
{
    cJSON *resp = NULL;
    bool incomplete = false;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    if (st->ended)
        return CM_OK;
    if ((rc = start(st, out)) || (rc = close_item(st, out)))
        return rc;
    resp = cJSON_Duplicate(st->base, 1);
    if (!resp)
        return CM_ERR_NOMEM;
    if ((rc = set_status(resp, st->finish, &incomplete)) ||
        (rc = dup_into(resp, "output", st->output)) ||
        (rc = set_usage(resp, st->have_usage ? &st->usage : NULL))) {
        cJSON_Delete(resp);
        return rc;
    }
    if ((rc = emit_response(st, incomplete ? "response.incomplete" : "response.completed", resp,
                            out)))
        return rc;
    st->ended = true;
    return CM_OK;
}

/* The Responses stream error code for @p e (spec 5.6). */
static const char *fail_code(const struct cp_tr_err *e)
{
    static const char *const codes[] = {
        "invalid_api_key", "insufficient_quota",    "rate_limit_exceeded",  "model_not_found",
        "request_timeout", "internal_server_error", "invalid_request_error"};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (cp_tr_str_eq(e->code, codes[i]))
            return codes[i];
    switch (e->status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "invalid_api_key";
    case 402:
        return "insufficient_quota";
    case 404:
        return "model_not_found";
    case 408:
        return "request_timeout";
    case 429:
        return "rate_limit_exceeded";
    default:
        return "internal_server_error";
    }
}

int cp_tr_responses_chat_stream_fail(struct cp_tr_responses_chat_stream *st,
                                     const struct cp_tr_err *e, struct cm_buf *out)
{
    static const struct cp_tr_err unknown = {.status = 502, .msg = "upstream failed"};
    const char *code, *msg;
    cJSON *ev = NULL, *resp = NULL, *eo = NULL;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    if (st->ended)
        return CM_OK;
    if (!e)
        e = &unknown;
    code = fail_code(e);
    msg = e->msg[0] ? e->msg : "upstream failed";
    if ((rc = start(st, out)))
        return rc;
    if ((rc = ev_new(st, "error", &ev)) || (rc = cm_json_set_string(ev, "code", code)) ||
        (rc = cm_json_set_string(ev, "message", msg)))
        goto out;
    rc = emit(st, ev, out);
    ev = NULL;
    if (rc)
        goto out;
    resp = cJSON_Duplicate(st->base, 1);
    if (!resp) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if ((rc = cm_json_set_string(resp, "status", "failed")) || (rc = cm_json_new_object(&eo)) ||
        (rc = cm_json_set_string(eo, "code", code)) ||
        (rc = cm_json_set_string(eo, "message", msg)) || (rc = cm_json_adopt(resp, "error", &eo)) ||
        (rc = dup_into(resp, "output", st->output)) ||
        (rc = set_usage(resp, st->have_usage ? &st->usage : NULL)))
        goto out;
    rc = emit_response(st, "response.failed", resp, out);
    resp = NULL;
    if (rc)
        goto out;
    st->ended = true;
out:
    cJSON_Delete(eo);
    cJSON_Delete(resp);
    cJSON_Delete(ev);
    return rc;
}

/* ====================================================================================== */
/* ---- non-stream ---- */

/* The text of a chat message "content": a string, or the text of its text parts. */
static int message_text(const cJSON *content, struct cm_buf *b, bool *have)
{
    const cJSON *p;
    int rc;

    *have = false;
    if (cJSON_IsString(content)) {
        *have = true;
        return cm_buf_append_str(b, content->valuestring);
    }
    cJSON_ArrayForEach(p, (cJSON_IsArray(content) ? content : NULL))
    {
        const char *t = cp_tr_str_member(p, "text", NULL);
        if (t && cp_tr_str_eq(cp_tr_str_member(p, "type", ""), "text")) {
            *have = true;
            if ((rc = cm_buf_append_str(b, t)))
                return rc;
        }
    }
    return CM_OK;
}

/* Appends the item @p d to @p output. */
static int add_item(cJSON *output, const struct item_desc *d)
{
    cJSON *item = NULL;
    int rc;

    if (cJSON_GetArraySize(output) >= CP_TR_RESPONSES_CHAT_MAX_OUTPUT)
        return CM_ERR_LIMIT;
    if ((rc = item_new(d, &item)))
        return rc;
    return cm_json_adopt(output, NULL, &item);
}

/* The output items of chat message @p msg into @p output. */
static int build_output(const char *id, const cJSON *msg, cJSON *output)
{
    const char *reasoning = cp_tr_str_member(msg, "reasoning_content", NULL);
    const char *refusal = cp_tr_str_member(msg, "refusal", NULL);
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    struct item_desc d;
    struct cm_buf text;
    bool have_text = false;
    const cJSON *tc;
    int rc;

    cm_buf_init(&text, CP_TR_RESPONSES_CHAT_MAX_TEXT);
    memset(&d, 0, sizeof(d));
    d.id = id;
    d.done = true;
    if (reasoning && reasoning[0]) {
        d.kind = "reasoning";
        d.text = reasoning;
        d.len = strlen(reasoning);
        d.index = (size_t)cJSON_GetArraySize(output);
        if ((rc = add_item(output, &d)))
            goto out;
    }
    if ((rc = message_text(cJSON_GetObjectItemCaseSensitive(msg, "content"), &text, &have_text)))
        goto out;
    if (refusal && !refusal[0])
        refusal = NULL;
    /* an empty text next to tool calls is no message; alone it is the (empty) answer */
    if (text.len || refusal || (have_text && cJSON_GetArraySize(calls) == 0)) {
        d.kind = "message";
        d.text = text.len || !refusal ? (text.data ? text.data : "") : NULL;
        d.len = text.len;
        d.refusal = refusal;
        d.index = (size_t)cJSON_GetArraySize(output);
        if ((rc = add_item(output, &d)))
            goto out;
    }
    d.refusal = NULL;
    cJSON_ArrayForEach(tc, (cJSON_IsArray(calls) ? calls : NULL))
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        d.kind = "function_call";
        d.text = cp_tr_str_member(fn, "arguments", "");
        d.len = strlen(d.text);
        d.call_id = cp_tr_str_member(tc, "id", "");
        d.name = cp_tr_str_member(fn, "name", "");
        d.index = (size_t)cJSON_GetArraySize(output);
        if ((rc = add_item(output, &d)))
            goto out;
    }
    rc = CM_OK;
out:
    cm_buf_cleanup(&text);
    return rc;
}

int cp_tr_responses_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                                  int64_t created, cJSON **out, struct cp_tr_err *err)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(completion, "choices");
    const cJSON *choice = cJSON_GetArrayItem(choices, 0);
    struct cp_tr_usage u;
    bool have_usage, incomplete = false;
    cJSON *resp = NULL, *output = NULL;
    int rc;

    if (!id || !out) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsObject(completion) || (choices && !cJSON_IsArray(choices))) {
        cp_tr_malformed_error(err, "the chat.completion is not an object with a choices array");
        return CM_ERR_UPSTREAM;
    }
    have_usage = parse_usage(cJSON_GetObjectItemCaseSensitive(completion, "usage"), &u);
    if ((rc =
             response_base(req, id, created, cp_tr_str_member(completion, "model", NULL), &resp)) ||
        (rc = cm_json_new_array(&output)) ||
        (rc = build_output(id, cJSON_GetObjectItemCaseSensitive(choice, "message"), output)) ||
        (rc = set_status(resp, cp_tr_str_member(choice, "finish_reason", NULL), &incomplete)) ||
        (rc = cm_json_adopt(resp, "output", &output)) ||
        (rc = set_usage(resp, have_usage ? &u : NULL)))
        goto out;
    *out = resp;
    resp = NULL;
out:
    if (rc == CM_ERR_LIMIT)
        cp_tr_err_set(err, rc, 502, "", "server_error", "bad_upstream_event",
                      "upstream answer too large: more than %d output items",
                      CP_TR_RESPONSES_CHAT_MAX_OUTPUT);
    else if (rc)
        cp_tr_server_error(err, rc, "out of memory");
    cJSON_Delete(output);
    cJSON_Delete(resp);
    return rc;
}
