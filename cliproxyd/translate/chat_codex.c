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

#include <string.h>

/* ---- small helpers ---- */

static int dup_into(cJSON *parent, const char *name, const cJSON *item)
{
    return cm_json_set_item(parent, name, cJSON_Duplicate(item, 1));
}

/* ---- tool names: Codex allows 64 bytes; longer ones are shortened and mapped back ---- */

int cp_tr_chat_codex_tool_name(const char *name, char *out, size_t out_size)
{
    return cp_tr_codex_tool_name(name, out, out_size);
}

/* cp_tr_codex_names_build() name of a tools[] entry: a function tool's function.name. */
static const char *function_name(const cJSON *t)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");

    if (!cJSON_IsString(ty) || !cp_tr_str_eq(ty->valuestring, "function") || !cJSON_IsString(nm))
        return NULL;
    return nm->valuestring;
}

/* ---- 5.2: messages -> input items ---- */

/* conv_content() state: the message's role and the Responses parts being built. */
struct content_ctx {
    bool assistant;
    cJSON *parts;
};

/* String content -> one input_text / output_text part (none for an empty assistant text). */
static int content_text(void *ud, const char *s)
{
    struct content_ctx *c = ud;

    if (c->assistant && !s[0])
        return CM_OK;
    return cp_tr_typed_append(c->parts, c->assistant ? "output_text" : "input_text", "text", s,
                              strlen(s));
}

/* One content part of a user/system/assistant message -> a Responses content part. */
static int content_part(void *ud, const struct cp_tr_chat_part *p, struct cm_json_err *je)
{
    struct content_ctx *c = ud;
    cJSON *o = NULL;
    int rc;

    (void)je;
    if (cp_tr_str_eq(p->type, "text"))
        return cp_tr_typed_append(c->parts, c->assistant ? "output_text" : "input_text", "text",
                                  p->text, strlen(p->text));
    if (cp_tr_str_eq(p->type, "refusal"))
        return cp_tr_typed_append(c->parts, "refusal", "refusal", p->text, strlen(p->text));
    if (cp_tr_str_eq(p->type, "image_url")) {
        if ((rc = cp_tr_typed_new("input_image", &o)) ||
            (rc = cm_json_set_string(o, "image_url", p->url)) ||
            (p->detail && (rc = cm_json_set_string(o, "detail", p->detail))))
            goto out;
    } else if ((rc = cp_tr_typed_new("input_file", &o)) ||
               (p->data && (rc = cm_json_set_string(o, "file_data", p->data))) ||
               (p->file_id && (rc = cm_json_set_string(o, "file_id", p->file_id))) ||
               (p->filename && (rc = cm_json_set_string(o, "filename", p->filename)))) {
        goto out;
    }
    rc = cm_json_adopt(c->parts, NULL, &o);
out:
    cJSON_Delete(o);
    return rc;
}

/* The content of message @p m as Responses parts in a new array (maybe empty). */
static int conv_content(const cJSON *m, const char *role, cJSON **parts_out, struct cm_json_err *je)
{
    static const struct cp_tr_chat_content_ops ops = {content_text, content_part};
    struct content_ctx c = {cp_tr_str_eq(role, "assistant"), NULL};
    int rc;

    if ((rc = cm_json_new_array(&c.parts)) != CM_OK)
        return rc;
    if ((rc = cp_tr_chat_content(cJSON_GetObjectItemCaseSensitive(m, "content"), role, c.assistant,
                                 CP_TR_CHAT_CODEX_MAX_PARTS, &ops, &c, je))) {
        cJSON_Delete(c.parts);
        return rc;
    }
    *parts_out = c.parts;
    return CM_OK;
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

/* conv_tool_call() state: the declared tool names and the input items. */
struct calls_ctx {
    const struct cp_tr_codex_names *names;
    cJSON *input;
};

/* One assistant tool call -> a function_call item. */
static int conv_tool_call(void *ud, const char *id, const char *name, const char *args)
{
    const struct calls_ctx *c = ud;
    char shrt[CP_TR_CHAT_CODEX_NAME_MAX + 1];
    cJSON *o = NULL;
    int rc;

    cp_tr_codex_names_upstream(c->names, name, shrt);
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", "function_call")) ||
        (rc = cm_json_set_string(o, "call_id", id)) || (rc = cm_json_set_string(o, "name", shrt)) ||
        (rc = cm_json_set_string(o, "arguments", args))) {
        cJSON_Delete(o);
        return rc;
    }
    return cm_json_adopt(c->input, NULL, &o);
}

static int conv_message(const cJSON *m, const struct cp_tr_codex_names *names, cJSON *input,
                        struct cm_json_err *je)
{
    const char *role = NULL;
    cJSON *parts = NULL, *o = NULL;
    int rc;

    if ((rc = cm_json_get_string(m, "role", &role, je)) != CM_OK)
        return rc;
    if (cp_tr_str_eq(role, "tool")) {
        const char *call_id = NULL;
        struct cm_buf b;
        cm_buf_init(&b, (size_t)64 << 20);
        if ((rc = cp_tr_chat_tool_message(m, &call_id, &b, je)))
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
    if (cp_tr_str_eq(role, "system") || cp_tr_str_eq(role, "developer")) {
        if ((rc = conv_content(m, "system", &parts, je)) != CM_OK)
            return rc;
        return add_message_item(input, "developer", parts);
    }
    if (cp_tr_str_eq(role, "user")) {
        if ((rc = conv_content(m, "user", &parts, je)) != CM_OK)
            return rc;
        return add_message_item(input, "user", parts);
    }
    if (cp_tr_str_eq(role, "assistant")) {
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        struct calls_ctx cc = {names, input};
        if ((rc = conv_content(m, "assistant", &parts, je)) != CM_OK)
            return rc;
        if (cJSON_GetArraySize(parts) > 0) {
            if ((rc = add_message_item(input, "assistant", parts)) != CM_OK)
                return rc;
        } else {
            cJSON_Delete(parts);
        }
        if (calls && !cJSON_IsNull(calls))
            return cp_tr_chat_tool_calls(calls, CP_TR_CHAT_CODEX_MAX_TOOLS, conv_tool_call, &cc,
                                         je);
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

/* cp_tr_map_array() callback: one tools[] entry -> a Codex tool (@p ud: the tool names). */
static int conv_tool(const void *ud, const cJSON *t, cJSON **out, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    cJSON *o = NULL, *params = NULL;
    bool strict = false;
    const cJSON *sj;
    int rc;

    if ((rc = cm_json_get_string(t, "type", &type, je)))
        return rc;
    if (!cp_tr_str_eq(type, "function")) {
        /* built-in Responses tools (web_search, ...) are passed through */
        *out = cJSON_Duplicate(t, 1);
        return *out ? CM_OK : CM_ERR_NOMEM;
    }
    if ((rc = cp_tr_chat_function_tool(t, &name, &desc, &params, &strict, je)))
        return rc;
    sj = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"),
                                          "strict"); /* a null strict is not sent */
    if ((rc = cp_tr_typed_new("function", &o)) ||
        (rc = cm_json_set_string(o, "name", cp_tr_codex_names_short(ud, name))) ||
        (desc && (rc = cm_json_set_string(o, "description", desc))) ||
        (params && (rc = dup_into(o, "parameters", params))) ||
        (cJSON_IsBool(sj) && (rc = cm_json_set_bool(o, "strict", strict)))) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return CM_OK;
}

static int conv_tools(const cJSON *tools, const struct cp_tr_codex_names *names, cJSON *body,
                      struct cm_json_err *je)
{
    cJSON *arr = NULL;
    int rc;

    if ((rc = cp_tr_map_array(tools, "tools", CP_TR_CHAT_CODEX_MAX_TOOLS, conv_tool, names, &arr,
                              je)))
        return rc;
    return cm_json_adopt(body, "tools", &arr);
}

static int conv_tool_choice(const cJSON *tc, const struct cp_tr_codex_names *names, cJSON *body,
                            struct cm_json_err *je)
{
    cJSON *fn = NULL;
    const char *type = NULL, *name = NULL;
    int rc;

    if (cJSON_IsString(tc)) {
        if (!cp_tr_str_eq(tc->valuestring, "auto") && !cp_tr_str_eq(tc->valuestring, "none") &&
            !cp_tr_str_eq(tc->valuestring, "required")) {
            cm_json_err_set(je, CM_ERR_INVAL, "tool_choice",
                            "must be 'auto', 'none', 'required' or a function choice");
            return CM_ERR_INVAL;
        }
        return cm_json_set_string(body, "tool_choice", tc->valuestring);
    }
    if ((rc = cm_json_get_string(tc, "type", &type, je)) != CM_OK)
        goto bad;
    if (cp_tr_str_eq(type, "allowed_tools") || cp_tr_str_eq(type, "custom")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported tool_choice type '%.32s'", type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    /* built-in tool choices ({"type":"web_search"}) fit as is */
    if (!cp_tr_str_eq(type, "function"))
        return dup_into(body, "tool_choice", tc);
    if ((rc = cm_json_get_object(tc, "function", &fn, je)) != CM_OK)
        goto bad;
    if ((rc = cm_json_get_string(fn, "name", &name, je)) == CM_OK)
        return cp_tr_codex_tool_choice(body, names, name);
    cm_json_err_scope(je, "function");
bad:
    cm_json_err_scope(je, "tool_choice");
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
    if (cp_tr_str_eq(type, "text") || cp_tr_str_eq(type, "json_object")) {
        if ((rc = cm_json_set_string(fmt, "type", type)))
            goto out;
    } else if (cp_tr_str_eq(type, "json_schema")) {
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

/* cp_tr_request() build step: @p req (an object) -> the upstream body in *@p out. */
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
    if ((rc = cp_tr_check_messages(messages, CP_TR_CHAT_CODEX_MAX_MESSAGES, je)) ||
        (rc = cp_tr_codex_split_model(model, &base, &effort, je)))
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
    if ((rc = cp_tr_codex_names_build(tools, function_name, &names)))
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
    if (cp_tr_str_eq(tier, "priority") && (rc = cm_json_set_string(body, "service_tier", tier)))
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
    return cp_tr_request(req, out, err, build_request);
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
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_parse(body ? body : "", len, &opts, &req, &je)) != CM_OK) {
        if (rc == CM_ERR_NOMEM)
            cp_tr_err_from_json(err, rc, &je);
        else
            cp_tr_err_set(err, rc, 400, "", "invalid_request_error", "", "request body: %s",
                          je.msg[0] ? je.msg : "invalid JSON");
        goto out;
    }
    if ((rc = cp_tr_chat_codex_request(req, &res, err)))
        goto out;
    if ((rc = cm_json_print(res, &s, &n))) {
        cp_tr_server_error(err, rc, "could not print the request");
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

    if (incomplete || (cJSON_IsString(st) && cp_tr_str_eq(st->valuestring, "incomplete"))) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(resp, "incomplete_details");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "reason");
        if (cJSON_IsString(r) && cp_tr_str_eq(r->valuestring, "content_filter"))
            return "content_filter";
        return "length";
    }
    return had_calls ? "tool_calls" : "stop";
}

/* ---- the stream ---- */

int cp_tr_chat_codex_stream_init(struct cp_tr_chat_codex_stream *st, const cJSON *client_req,
                                 const char *id, int64_t created, struct cp_tr_err *err)
{
    struct cp_tr_chat_codex_stream s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!st || !id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_chat_chunker_init(&s._ck, client_req, id, created)) ||
        (rc = cp_tr_codex_names_build(cJSON_GetObjectItemCaseSensitive(client_req, "tools"),
                                      function_name, &s._names))) {
        cp_tr_chat_codex_stream_cleanup(&s);
        cp_tr_server_error(err, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    *st = s;
    return CM_OK;
}

void cp_tr_chat_codex_stream_cleanup(struct cp_tr_chat_codex_stream *st)
{
    if (!st)
        return;
    cp_tr_codex_calls_free(st->_calls, st->_ncalls);
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
static struct cp_tr_codex_call *find_call(struct cp_tr_chat_codex_stream *st, const cJSON *ev,
                                          size_t *index)
{
    return cp_tr_codex_call_find(st->_calls, st->_ncalls, ev, index);
}

static int add_call(struct cp_tr_chat_codex_stream *st, const cJSON *ev, const cJSON *item,
                    size_t *index)
{
    return cp_tr_codex_call_add(&st->_calls, &st->_ncalls, CP_TR_CHAT_CODEX_MAX_TOOLS, ev, item,
                                index);
}

static int on_terminal(struct cp_tr_chat_codex_stream *st, const cJSON *ev, bool incomplete,
                       struct cm_buf *out)
{
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");

    st->_have_usage = cp_tr_codex_parse_usage(resp, &st->_usage);
    return cp_tr_chat_emit_finish(&st->_ck, finish_reason(resp, incomplete, st->_ncalls > 0),
                                  st->_have_usage ? &st->_usage : NULL, out);
}

/* cp_tr_codex_stream_ops.dispatch for struct cp_tr_chat_codex_stream @p ud. */
static int stream_dispatch(void *ud, const char *t, size_t tl, const cJSON *ev, struct cm_buf *out)
{
    struct cp_tr_chat_codex_stream *st = ud;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    struct cp_tr_codex_call *call;
    size_t index = 0;
    int rc = CM_OK;

    if (cp_tr_slice_eq(t, tl, "response.created") ||
        cp_tr_slice_eq(t, tl, "response.in_progress")) {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
        const char *model = cp_tr_str_member(resp, "model", NULL);
        int64_t ca = 0;
        if (cm_json_opt_int64(resp, "created_at", 1, CM_JSON_INT_MAX, 0, &ca, NULL) == CM_OK && ca)
            cp_tr_chat_chunker_set_created(&st->_ck, ca);
        return cp_tr_chat_chunker_set_model(&st->_ck, model);
    }
    if (cp_tr_slice_eq(t, tl, "response.output_text.delta")) {
        const char *delta = cp_tr_str_member(ev, "delta", "");
        return delta[0] ? cp_tr_chat_emit_delta(&st->_ck, "content", delta, out) : CM_OK;
    }
    if (cp_tr_slice_eq(t, tl, "response.reasoning_summary_text.delta")) {
        const char *delta = cp_tr_str_member(ev, "delta", "");
        return delta[0] ? cp_tr_chat_emit_delta(&st->_ck, "reasoning_content", delta, out) : CM_OK;
    }
    if (cp_tr_slice_eq(t, tl, "response.reasoning_summary_text.done"))
        return cp_tr_chat_emit_delta(&st->_ck, "reasoning_content", "\n\n", out);
    if (cp_tr_slice_eq(t, tl, "response.output_item.added")) {
        if (!cp_tr_str_eq(cp_tr_str_member(item, "type", ""), "function_call") ||
            find_call(st, ev, &index))
            return CM_OK;
        if ((rc = add_call(st, ev, item, &index)))
            return rc;
        return emit_call(st, index, cp_tr_str_member(item, "call_id", ""),
                         cp_tr_str_member(item, "name", ""), "", out);
    }
    if (cp_tr_slice_eq(t, tl, "response.function_call_arguments.delta")) {
        const char *delta = cp_tr_str_member(ev, "delta", "");
        if (!(call = find_call(st, ev, &index)) || !delta[0])
            return CM_OK;
        call->args_sent = true;
        return emit_call(st, index, NULL, NULL, delta, out);
    }
    if (cp_tr_slice_eq(t, tl, "response.function_call_arguments.done")) {
        const char *args = cp_tr_str_member(ev, "arguments", "");
        if (!(call = find_call(st, ev, &index)) || call->args_sent || !args[0])
            return CM_OK;
        call->args_sent = true;
        return emit_call(st, index, NULL, NULL, args, out);
    }
    if (cp_tr_slice_eq(t, tl, "response.output_item.done")) {
        const char *args = cp_tr_str_member(item, "arguments", "");
        if (!cp_tr_str_eq(cp_tr_str_member(item, "type", ""), "function_call"))
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
        return emit_call(st, index, cp_tr_str_member(item, "call_id", ""),
                         cp_tr_str_member(item, "name", ""), args, out);
    }
    if (cp_tr_slice_eq(t, tl, "response.completed") ||
        cp_tr_slice_eq(t, tl, "response.incomplete")) {
        st->_done = st->_completed = true;
        return on_terminal(st, ev, cp_tr_slice_eq(t, tl, "response.incomplete"), out);
    }
    return CM_OK; /* lifecycle and bookkeeping events carry nothing for a chat client */
}

static const struct cp_tr_codex_stream_ops stream_ops = {cp_tr_chat_emit_error, stream_dispatch};

int cp_tr_chat_codex_stream_event(struct cp_tr_chat_codex_stream *st, const char *type,
                                  size_t type_len, const char *data, size_t data_len,
                                  struct cm_buf *out, struct cp_tr_err *err)
{
    if (!st || !out || !cp_tr_chat_chunker_ready(&st->_ck))
        return CM_ERR_INVAL;
    return cp_tr_codex_stream_event(&stream_ops, st, &st->_done, type, type_len, data, data_len,
                                    out, err);
}

int cp_tr_chat_codex_stream_finish(struct cp_tr_chat_codex_stream *st, struct cm_buf *out,
                                   struct cp_tr_err *err)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return cp_tr_codex_stream_finish(&stream_ops, &st->_done, out, err);
}

/* ---- non-stream aggregation ---- */

/* What build_completion() needs besides the collected body. */
struct completion_ctx {
    const char *id;           /* chunk id */
    const char *client_model; /* the request's model: fallback when the upstream gave none */
};

/* cp_tr_codex_build_fn: the collected body -> one chat.completion. */
static int build_completion(const struct cp_tr_codex_result *r,
                            const struct cp_tr_codex_names *names, void *ud, cJSON **out,
                            struct cp_tr_usage *usage_out)
{
    const struct completion_ctx *c = ud;
    struct cp_tr_chat_answer a;
    struct cp_tr_usage u;
    int64_t created = r->created;
    const cJSON *it;
    int rc;

    if ((rc = cp_tr_chat_answer_init(&a)))
        goto out;
    cJSON_ArrayForEach(it, r->output)
    {
        const char *type = cp_tr_str_member(it, "type", "");
        const cJSON *p;
        if (cp_tr_str_eq(type, "message")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "content"))
            {
                if (cp_tr_str_eq(cp_tr_str_member(p, "type", ""), "output_text") &&
                    (rc = cp_tr_chat_answer_text(&a, cp_tr_str_member(p, "text", ""))))
                    goto out;
            }
        } else if (cp_tr_str_eq(type, "reasoning")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "summary"))
            {
                if ((rc = cp_tr_chat_answer_reasoning(&a, cp_tr_str_member(p, "text", ""))))
                    goto out;
            }
        } else if (cp_tr_str_eq(type, "function_call") &&
                   (rc = cp_tr_chat_answer_tool_call(
                        &a, cp_tr_str_member(it, "call_id", ""),
                        cp_tr_codex_names_orig(names, cp_tr_str_member(it, "name", "")),
                        cp_tr_str_member(it, "arguments", "")))) {
            goto out;
        }
    }
    if (!cp_tr_codex_parse_usage(r->response, &u))
        memset(&u, 0, sizeof(u));
    (void)cm_json_opt_int64(r->response, "created_at", 1, CM_JSON_INT_MAX, created, &created, NULL);
    if ((rc = cp_tr_chat_completion_new(
             c->id, r->model ? r->model : c->client_model, created, &a,
             finish_reason(r->response, r->incomplete, cp_tr_chat_answer_has_calls(&a)), &u, out)))
        goto out;
    *usage_out = u;
out:
    cp_tr_chat_answer_cleanup(&a);
    return rc;
}

int cp_tr_chat_codex_aggregate(const char *sse, size_t len, const cJSON *client_req, const char *id,
                               int64_t created, cJSON **out, struct cp_tr_usage *usage,
                               struct cp_tr_err *err)
{
    struct completion_ctx c = {id, cp_tr_str_member(client_req, "model", "")};

    if (!id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    return cp_tr_codex_aggregate(sse, len, created,
                                 cJSON_GetObjectItemCaseSensitive(client_req, "tools"),
                                 function_name, build_completion, &c, out, usage, err);
}
