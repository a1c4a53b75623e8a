/* SPDX-License-Identifier: MIT */
/*
 * messages_codex.c - Anthropic Messages <-> Codex Responses translation (pure).
 *
 * Request: a /v1/messages tree becomes a Codex /responses body following spec
 * cliproxyapi.md 5.1 and 5.4 "Claude -> Codex" plus the executor body rules of 3.1(d).
 * Response: a state machine fed one Codex SSE event at a time writes Anthropic events
 * (5.4 "Codex -> Claude SSE", framed "event: <type>\ndata: <json>\n\n" as 5.6 says); an
 * aggregator turns a whole SSE body into one Anthropic message. Event framing and
 * upstream failures, usage, tool-name shortening, call bookkeeping and the non-stream
 * collector come from codex_common.c, shared with the chat translator; the format-neutral
 * helpers from tr_common.c. Invariant of the stream: at most one content block is open,
 * blocks get consecutive indices, and nothing follows a terminal event or an error event.
 */
#include "translate/messages_codex.h"
#include "translate/anthropic_sse.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <string.h>

#define BILLING_PREFIX "x-anthropic-billing-header: "
#define TEXT_MAX ((size_t)64 << 20) /* cap on one joined text or data URL we build */

/* ---- small helpers ---- */

/* A cm_buf failure as a request error (LIMIT names @p field). */
static int buf_fail(int rc, const char *field, struct cm_json_err *je)
{
    if (rc == CM_ERR_LIMIT)
        cm_json_err_set(je, rc, field, "is too large");
    return rc;
}

/* ---- tool names ---- */

/* Custom tools have no type or type "custom"; the rest are Anthropic server tools. */
static bool is_custom_tool(const cJSON *t)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
    return !ty || cJSON_IsNull(ty) ||
           (cJSON_IsString(ty) && cp_tr_str_eq(ty->valuestring, "custom"));
}

/* cp_tr_codex_names_build() name of a tools[] entry: a custom tool's non-empty name. */
static const char *custom_name(const cJSON *t)
{
    const char *name = cp_tr_str_member(t, "name", NULL);

    return is_custom_tool(t) && name && name[0] ? name : NULL;
}

/* ---- 5.1: reasoning effort ---- */

/* The effort from the model suffix (@p suffix, wins), else thinking / output_config. */
static int request_effort(const cJSON *req, const char *suffix, const char **effort,
                          struct cm_json_err *je)
{
    cJSON *th = NULL, *oc = NULL;
    const char *type = NULL, *e = NULL;
    int64_t budget = 0;
    int rc;

    *effort = suffix ? suffix : "medium";
    if ((rc = cm_json_opt_object(req, "thinking", &th, je)) ||
        (rc = cm_json_opt_object(req, "output_config", &oc, je)))
        return rc;
    if (oc && (rc = cm_json_opt_string(oc, "effort", NULL, &e, je))) {
        cm_json_err_scope(je, "output_config");
        return rc;
    }
    if (e && !cp_tr_codex_effort(e, strlen(e))) {
        cm_json_err_set(je, CM_ERR_INVAL, "output_config.effort",
                        "must be one of low, medium, high, max");
        return CM_ERR_INVAL;
    }
    if (!th)
        return CM_OK;
    if ((rc = cm_json_get_string(th, "type", &type, je)))
        goto bad;
    if (cp_tr_str_eq(type, "enabled")) {
        if ((rc = cm_json_get_int64(th, "budget_tokens", 0, CM_JSON_INT_MAX, &budget, je)))
            goto bad;
        if (!suffix)
            *effort = cp_tr_codex_effort_for_budget(budget);
    } else if (cp_tr_str_eq(type, "adaptive") || cp_tr_str_eq(type, "auto")) {
        if (!suffix)
            *effort = e ? cp_tr_codex_effort(e, strlen(e)) : "xhigh";
    } else if (cp_tr_str_eq(type, "disabled")) {
        if (!suffix)
            *effort = "none";
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "must be 'enabled', 'adaptive' or 'disabled', not '%.32s'", type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    return CM_OK;
bad:
    cm_json_err_scope(je, "thinking");
    return rc;
}

/* ---- content blocks -> Responses parts ---- */

/* "data:<media_type>;base64,<data>" of a base64 source into @p b. */
static int data_url(const cJSON *src, struct cm_buf *b, struct cm_json_err *je)
{
    const char *mt = NULL, *data = NULL;
    int rc;

    if ((rc = cm_json_get_string(src, "media_type", &mt, je)) ||
        (rc = cm_json_get_string(src, "data", &data, je)))
        return rc;
    if ((rc = cm_buf_append_str(b, "data:")) || (rc = cm_buf_append_str(b, mt)) ||
        (rc = cm_buf_append_str(b, ";base64,")) || (rc = cm_buf_append_str(b, data)))
        return buf_fail(rc, "data", je);
    return CM_OK;
}

/* An image block -> input_image. Errors name fields inside the block. */
static int image_part(const cJSON *blk, cJSON *parts, struct cm_json_err *je)
{
    cJSON *src = NULL;
    const char *st = NULL, *url = NULL;
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, TEXT_MAX);
    if ((rc = cm_json_get_object(blk, "source", &src, je)))
        goto out;
    if ((rc = cm_json_get_string(src, "type", &st, je)))
        goto bad;
    if (cp_tr_str_eq(st, "base64")) {
        if ((rc = data_url(src, &b, je)))
            goto bad;
        rc = cp_tr_typed_append(parts, "input_image", "image_url", b.data, b.len);
    } else if (cp_tr_str_eq(st, "url")) {
        if ((rc = cm_json_get_string(src, "url", &url, je)))
            goto bad;
        rc = cp_tr_typed_append(parts, "input_image", "image_url", url, strlen(url));
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported image source '%.32s'", st);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    goto out;
bad:
    cm_json_err_scope(je, "source");
out:
    cm_buf_cleanup(&b);
    return rc;
}

/* A document block -> input_file (base64 / url source) or input_text (text source). */
static int document_part(const cJSON *blk, cJSON *parts, struct cm_json_err *je)
{
    cJSON *src = NULL, *o = NULL;
    const char *st = NULL, *title = NULL, *s = NULL, *mt = NULL;
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, TEXT_MAX);
    if ((rc = cm_json_get_object(blk, "source", &src, je)) ||
        (rc = cm_json_opt_string(blk, "title", NULL, &title, je)))
        goto out;
    if ((rc = cm_json_get_string(src, "type", &st, je)))
        goto bad;
    if (cp_tr_str_eq(st, "text")) {
        if ((rc = cm_json_get_string(src, "data", &s, je)))
            goto bad;
        rc = cp_tr_typed_append(parts, "input_text", "text", s, strlen(s));
        goto out;
    }
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", "input_file")))
        goto out;
    if (cp_tr_str_eq(st, "base64")) {
        if ((rc = data_url(src, &b, je)))
            goto bad;
        mt = cp_tr_str_member(src, "media_type", "");
        if ((rc = cm_json_set_string(o, "filename",
                                     title && title[0]                     ? title
                                     : cp_tr_str_eq(mt, "application/pdf") ? "document.pdf"
                                                                           : "document")) ||
            (rc = cm_json_set_stringn(o, "file_data", b.data, b.len)))
            goto out;
    } else if (cp_tr_str_eq(st, "url")) {
        if ((rc = cm_json_get_string(src, "url", &s, je)))
            goto bad;
        if ((rc = cm_json_set_string(o, "file_url", s)))
            goto out;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported document source '%.32s'", st);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    rc = cm_json_adopt(parts, NULL, &o);
    goto out;
bad:
    cm_json_err_scope(je, "source");
out:
    cJSON_Delete(o);
    cm_buf_cleanup(&b);
    return rc;
}

/* A text / image / document block of type @p type -> one part (@p assistant: output_text). */
static int media_part(const cJSON *blk, const char *type, bool assistant, cJSON *parts,
                      struct cm_json_err *je)
{
    const char *text = NULL;
    int rc;

    if (cp_tr_str_eq(type, "text")) {
        if ((rc = cm_json_get_string(blk, "text", &text, je)))
            return rc;
        if (!text[0])
            return CM_OK; /* an empty text block says nothing */
        return cp_tr_typed_append(parts, assistant ? "output_text" : "input_text", "text", text,
                                  strlen(text));
    }
    if (cp_tr_str_eq(type, "image"))
        return image_part(blk, parts, je);
    return document_part(blk, parts, je);
}

/* ---- messages -> input items ---- */

static int add_message_item(cJSON *input, const char *role, cJSON **parts)
{
    cJSON *o = NULL;
    int rc;

    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", "message")) ||
        (rc = cm_json_set_string(o, "role", role)) || (rc = cm_json_adopt(o, "content", parts)))
        goto out;
    rc = cm_json_adopt(input, NULL, &o);
out:
    cJSON_Delete(o);
    return rc;
}

/* One message being converted: its pending content parts become a message item at a flush. */
struct conv {
    cJSON *input;
    const struct cp_tr_codex_names *names;
    const char *role; /* "user", "assistant" or "developer" */
    cJSON *parts;     /* pending content (owned), NULL when none */
};

static int conv_flush(struct conv *c)
{
    if (!c->parts)
        return CM_OK;
    if (!cJSON_GetArraySize(c->parts)) {
        cJSON_Delete(c->parts);
        c->parts = NULL;
        return CM_OK;
    }
    return add_message_item(c->input, c->role, &c->parts);
}

static int conv_parts(struct conv *c, cJSON **parts)
{
    int rc;

    if (!c->parts && (rc = cm_json_new_array(&c->parts)))
        return rc;
    *parts = c->parts;
    return CM_OK;
}

/* tool_use -> function_call {call_id, name, arguments}. */
static int conv_tool_use(struct conv *c, const cJSON *blk, struct cm_json_err *je)
{
    const char *id = NULL, *name = NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(blk, "input");
    char shrt[CP_TR_CODEX_NAME_MAX + 1];
    char *args = NULL;
    size_t alen = 0;
    cJSON *o = NULL;
    int rc;

    if ((rc = cm_json_get_string(blk, "id", &id, je)) ||
        (rc = cm_json_get_string(blk, "name", &name, je)))
        return rc;
    if (input && !cJSON_IsNull(input) && !cJSON_IsObject(input)) {
        cm_json_err_set(je, CM_ERR_INVAL, "input", "must be an object");
        return CM_ERR_INVAL;
    }
    if (!name[0]) {
        cm_json_err_set(je, CM_ERR_INVAL, "name", "must not be empty");
        return CM_ERR_INVAL;
    }
    if (cJSON_IsObject(input)) {
        if ((rc = cm_json_print(input, &args, &alen))) {
            if (rc == CM_ERR_NOMEM)
                return rc;
            cm_json_err_set(je, CM_ERR_INVAL, "input", "cannot be encoded as JSON");
            return CM_ERR_INVAL;
        }
    }
    cp_tr_codex_names_upstream(c->names, name, shrt);
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "type", "function_call")) ||
        (rc = cm_json_set_string(o, "call_id", id)) || (rc = cm_json_set_string(o, "name", shrt)) ||
        (rc = cm_json_set_stringn(o, "arguments", args ? args : "{}", args ? alen : 2)))
        goto out;
    rc = cm_json_adopt(c->input, NULL, &o);
out:
    cm_free(args);
    cJSON_Delete(o);
    return rc;
}

/*
 * tool_result -> function_call_output {call_id, output}: output is the text (a string, or
 * text blocks joined by "\n"), or an array of parts when the result holds images/documents.
 */
static int conv_tool_result(struct conv *c, const cJSON *blk, struct cm_json_err *je)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(blk, "content"), *p;
    const char *id = NULL;
    cJSON *o = NULL, *parts = NULL;
    bool is_error = false, media = false;
    struct cm_buf text;
    size_t i = 0;
    int rc;

    cm_buf_init(&text, TEXT_MAX);
    if ((rc = cm_json_get_string(blk, "tool_use_id", &id, je)) ||
        (rc = cm_json_opt_bool(blk, "is_error", false, &is_error, je)) ||
        (rc = cm_json_new_object(&o)) ||
        (rc = cm_json_set_string(o, "type", "function_call_output")) ||
        (rc = cm_json_set_string(o, "call_id", id)))
        goto out;
    if (cJSON_IsString(content)) {
        if ((rc = cm_buf_append_str(&text, content->valuestring))) {
            rc = buf_fail(rc, "content", je);
            goto out;
        }
    } else if (cJSON_IsArray(content)) {
        if ((rc = cp_tr_check_cap(content, CP_TR_MESSAGES_CODEX_MAX_BLOCKS, "content", "blocks",
                                  je)) ||
            (rc = cm_json_new_array(&parts)))
            goto out;
        cJSON_ArrayForEach(p, content)
        {
            const char *type = NULL, *s = NULL;
            if ((rc = cm_json_get_string(p, "type", &type, je)))
                goto bad;
            if (cp_tr_str_eq(type, "text")) {
                if ((rc = cm_json_get_string(p, "text", &s, je)))
                    goto bad;
                if ((text.len && (rc = cm_buf_append_str(&text, "\n"))) ||
                    (rc = cm_buf_append_str(&text, s))) {
                    rc = buf_fail(rc, "text", je);
                    goto bad;
                }
            } else if (cp_tr_str_eq(type, "image") || cp_tr_str_eq(type, "document")) {
                media = true;
            } else {
                cm_json_err_set(je, CM_ERR_INVAL, "type",
                                "unsupported block '%.32s' in a tool result", type);
                rc = CM_ERR_INVAL;
                goto bad;
            }
            if ((rc = media_part(p, type, false, parts, je)))
                goto bad;
            i++;
        }
    } else if (content && !cJSON_IsNull(content)) {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of blocks");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (media)
        rc = cm_json_adopt(o, "output", &parts);
    else
        rc = cm_json_set_stringn(o, "output", text.data ? text.data : "", text.len);
    if (!rc)
        rc = cm_json_adopt(c->input, NULL, &o);
    goto out;
bad:
    cm_json_err_scope(je, "content[%zu]", i);
out:
    cm_buf_cleanup(&text);
    cJSON_Delete(parts);
    cJSON_Delete(o);
    return rc;
}

static int conv_block(struct conv *c, const cJSON *blk, struct cm_json_err *je)
{
    bool assistant = cp_tr_str_eq(c->role, "assistant");
    const char *type = NULL;
    cJSON *parts = NULL;
    int rc;

    if ((rc = cm_json_get_string(blk, "type", &type, je)))
        return rc;
    if (cp_tr_str_eq(type, "thinking") || cp_tr_str_eq(type, "redacted_thinking"))
        return CM_OK; /* Codex keeps its own reasoning; Anthropic's cannot be replayed */
    if (cp_tr_str_eq(type, "text") ||
        (!assistant && (cp_tr_str_eq(type, "image") || cp_tr_str_eq(type, "document")))) {
        if ((rc = conv_parts(c, &parts)))
            return rc;
        return media_part(blk, type, assistant, parts, je);
    }
    if (cp_tr_str_eq(type, "tool_use") && assistant) {
        if ((rc = conv_flush(c)))
            return rc;
        return conv_tool_use(c, blk, je);
    }
    if (cp_tr_str_eq(type, "tool_result") && !assistant) {
        if ((rc = conv_flush(c)))
            return rc;
        return conv_tool_result(c, blk, je);
    }
    cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported content block '%.32s' for role '%s'",
                    type, c->role);
    return CM_ERR_INVAL;
}

static int conv_message(const cJSON *m, const struct cp_tr_codex_names *names, cJSON *input,
                        struct cm_json_err *je)
{
    struct conv c = {.input = input, .names = names};
    const cJSON *content, *blk;
    const char *role = NULL;
    cJSON *parts = NULL;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_get_string(m, "role", &role, je)))
        return rc;
    if (!cp_tr_str_eq(role, "user") && !cp_tr_str_eq(role, "assistant")) {
        cm_json_err_set(je, CM_ERR_INVAL, "role", "must be 'user' or 'assistant', not '%.16s'",
                        role);
        return CM_ERR_INVAL;
    }
    c.role = role;
    content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content)) {
        if (!content->valuestring[0] && cp_tr_str_eq(role, "assistant"))
            return CM_OK;
        if ((rc = conv_parts(&c, &parts)) ||
            (rc = cp_tr_typed_append(parts,
                                     cp_tr_str_eq(role, "assistant") ? "output_text" : "input_text",
                                     "text", content->valuestring, strlen(content->valuestring))))
            goto out;
    } else if (cJSON_IsArray(content)) {
        if ((rc = cp_tr_check_cap(content, CP_TR_MESSAGES_CODEX_MAX_BLOCKS, "content", "blocks",
                                  je)))
            goto out;
        cJSON_ArrayForEach(blk, content)
        {
            if ((rc = conv_block(&c, blk, je))) {
                cm_json_err_scope(je, "content[%zu]", i);
                goto out;
            }
            i++;
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "content",
                        content ? "must be a string or an array of blocks" : "is required");
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = conv_flush(&c);
out:
    cJSON_Delete(c.parts);
    return rc;
}

/* ---- system -> one developer message ---- */

/* @p text without its billing-header lines, as one input_text part (none if empty). */
static int system_text(const char *text, const char *field, cJSON *parts, struct cm_json_err *je)
{
    struct cm_buf b;
    const char *p = text;
    bool first = true;
    int rc = CM_OK;

    cm_buf_init(&b, TEXT_MAX);
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, BILLING_PREFIX, sizeof(BILLING_PREFIX) - 1) != 0) {
            if ((!first && (rc = cm_buf_append(&b, "\n", 1))) || (rc = cm_buf_append(&b, p, n))) {
                rc = buf_fail(rc, field, je);
                goto out;
            }
            first = false;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (b.len)
        rc = cp_tr_typed_append(parts, "input_text", "text", b.data, b.len);
out:
    cm_buf_cleanup(&b);
    return rc;
}

static int conv_system(const cJSON *sys, cJSON *input, struct cm_json_err *je)
{
    cJSON *parts = NULL;
    const cJSON *blk;
    size_t i = 0;
    int rc;

    if (!sys || cJSON_IsNull(sys))
        return CM_OK;
    if ((rc = cm_json_new_array(&parts)))
        return rc;
    if (cJSON_IsString(sys)) {
        if ((rc = system_text(sys->valuestring, "system", parts, je)))
            goto out;
    } else if (cJSON_IsArray(sys)) {
        if ((rc = cp_tr_check_cap(sys, CP_TR_MESSAGES_CODEX_MAX_BLOCKS, "system", "blocks", je)))
            goto out;
        cJSON_ArrayForEach(blk, sys)
        {
            const char *type = NULL, *text = NULL;
            if ((rc = cm_json_get_string(blk, "type", &type, je)))
                goto bad;
            if (!cp_tr_str_eq(type, "text")) {
                cm_json_err_set(je, CM_ERR_INVAL, "type", "must be 'text', not '%.32s'", type);
                rc = CM_ERR_INVAL;
                goto bad;
            }
            if ((rc = cm_json_get_string(blk, "text", &text, je)) ||
                (rc = system_text(text, "text", parts, je)))
                goto bad;
            i++;
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "system", "must be a string or an array of text blocks");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (cJSON_GetArraySize(parts))
        rc = add_message_item(input, "developer", &parts);
    goto out;
bad:
    cm_json_err_scope(je, "system[%zu]", i);
out:
    cJSON_Delete(parts);
    return rc;
}

/* ---- tools, tool_choice ---- */

/*
 * cp_tr_map_array() callback: one tools[] entry -> a Codex tool (@p ud: the tool names).
 * Custom tools become flat function tools, web_search_* Codex's built-in web search.
 */
static int conv_tool(const void *ud, const cJSON *t, cJSON **out, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    cJSON *o = NULL, *schema = NULL;
    int rc;

    if (!cJSON_IsObject(t)) {
        cm_json_err_set(je, CM_ERR_INVAL, "", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_opt_string(t, "type", NULL, &type, je)))
        return rc;
    if (is_custom_tool(t)) {
        if ((rc = cm_json_get_string(t, "name", &name, je)) ||
            (rc = cm_json_opt_string(t, "description", NULL, &desc, je)) ||
            (rc = cm_json_opt_object(t, "input_schema", &schema, je)))
            return rc;
        if (!name[0]) {
            cm_json_err_set(je, CM_ERR_INVAL, "name", "must not be empty");
            return CM_ERR_INVAL;
        }
        if ((rc = cp_tr_typed_new("function", &o)) ||
            (rc = cm_json_set_string(o, "name", cp_tr_codex_names_short(ud, name))) ||
            (desc && (rc = cm_json_set_string(o, "description", desc))) ||
            (schema && (rc = cm_json_set_item(o, "parameters", cJSON_Duplicate(schema, 1)))) ||
            (rc = cm_json_set_bool(o, "strict", false))) {
            cJSON_Delete(o);
            return rc;
        }
    } else if (strncmp(type, "web_search", 10) == 0) {
        /* Anthropic's server-side web search -> Codex's built-in one */
        if ((rc = cp_tr_typed_new("web_search", &o)))
            return rc;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported server tool '%.48s'", type);
        return CM_ERR_INVAL;
    }
    *out = o;
    return CM_OK;
}

static int conv_tools(const cJSON *tools, const struct cp_tr_codex_names *names, cJSON *body,
                      struct cm_json_err *je)
{
    cJSON *arr = NULL;
    int rc;

    if ((rc = cp_tr_map_array(tools, "tools", CP_TR_MESSAGES_CODEX_MAX_TOOLS, conv_tool, names,
                              &arr, je)))
        return rc;
    return cm_json_adopt(body, "tools", &arr);
}

/* tool_choice -> body.tool_choice; *@p parallel false for disable_parallel_tool_use. */
static int conv_tool_choice(const cJSON *tc, const struct cp_tr_codex_names *names, cJSON *body,
                            bool *parallel, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL;
    bool dis = false;
    int rc;

    if (!cJSON_IsObject(tc)) {
        cm_json_err_set(je, CM_ERR_INVAL, "tool_choice", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(tc, "type", &type, je)) ||
        (rc = cm_json_opt_bool(tc, "disable_parallel_tool_use", false, &dis, je)))
        goto bad;
    if (dis)
        *parallel = false;
    if (cp_tr_str_eq(type, "auto") || cp_tr_str_eq(type, "none"))
        return cm_json_set_string(body, "tool_choice", type);
    if (cp_tr_str_eq(type, "any"))
        return cm_json_set_string(body, "tool_choice", "required");
    if (!cp_tr_str_eq(type, "tool")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "must be 'auto', 'any', 'tool' or 'none'");
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cm_json_get_string(tc, "name", &name, je)) == CM_OK)
        return cp_tr_codex_tool_choice(body, names, name);
bad:
    cm_json_err_scope(je, "tool_choice");
    return rc;
}

/* ---- the request ---- */

/* cp_tr_request() build step: @p req (an object) -> the upstream body in *@p out. */
static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    struct cp_tr_codex_names *names = NULL;
    cJSON *body = NULL, *o = NULL, *input = NULL, *messages = NULL, *mcp = NULL;
    const char *model = NULL, *effort = NULL, *suffix = NULL;
    const cJSON *m, *tools, *tc;
    char *base = NULL;
    bool parallel = true;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_get_string(req, "model", &model, je)) ||
        (rc = cm_json_get_array(req, "messages", &messages, je)) ||
        (rc = cm_json_opt_array(req, "mcp_servers", &mcp, je)))
        goto out;
    if (cJSON_GetArraySize(mcp) > 0) {
        cm_json_err_set(je, CM_ERR_INVAL, "mcp_servers", "is not supported on this model");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((rc = cp_tr_check_messages(messages, CP_TR_MESSAGES_CODEX_MAX_MESSAGES, je)) ||
        (rc = cp_tr_codex_split_model(model, &base, &suffix, je)) ||
        (rc = request_effort(req, suffix, &effort, je)))
        goto out;
    tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if ((rc = cp_tr_codex_names_build(tools, custom_name, &names)))
        goto out;

    if ((rc = cm_json_new_object(&body)) || (rc = cm_json_set_string(body, "instructions", "")) ||
        (rc = cm_json_set_bool(body, "stream", true)) || (rc = cm_json_new_object(&o)) ||
        (rc = cm_json_set_string(o, "effort", effort)) ||
        (rc = cm_json_set_string(o, "summary", "auto")) ||
        (rc = cm_json_adopt(body, "reasoning", &o)) ||
        (rc = cm_json_set_bool(body, "parallel_tool_calls", true)) ||
        (rc = cm_json_new_array(&o)) ||
        (rc = cm_json_set_item(o, NULL, cJSON_CreateString("reasoning.encrypted_content"))) ||
        (rc = cm_json_adopt(body, "include", &o)) ||
        (rc = cm_json_set_string(body, "model", base)) ||
        (rc = cm_json_set_bool(body, "store", false)) || (rc = cm_json_new_array(&input)))
        goto out;

    if ((rc = conv_system(cJSON_GetObjectItemCaseSensitive(req, "system"), input, je)))
        goto out;
    cJSON_ArrayForEach(m, messages)
    {
        if ((rc = conv_message(m, names, input, je))) {
            cm_json_err_scope(je, "messages[%zu]", i);
            goto out;
        }
        i++;
    }
    if ((rc = cm_json_adopt(body, "input", &input)))
        goto out;
    if (tools && !cJSON_IsNull(tools) && (rc = conv_tools(tools, names, body, je)))
        goto out;
    tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    if (tc && !cJSON_IsNull(tc) && (rc = conv_tool_choice(tc, names, body, &parallel, je)))
        goto out;
    if (!parallel && (rc = cm_json_set_bool(body, "parallel_tool_calls", false)))
        goto out;
    *out = body;
    body = NULL;
out:
    cp_tr_codex_names_free(names);
    cm_free(base);
    cJSON_Delete(input);
    cJSON_Delete(o);
    cJSON_Delete(body);
    return rc;
}

int cp_tr_messages_codex_request(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    return cp_tr_request(req, out, err, build_request);
}

/* ---- responses: shared by the stream and the aggregator ---- */

/* Anthropic stop_reason for terminal response @p resp (spec 5.4). */
static const char *stop_reason(const cJSON *resp, bool incomplete, bool had_calls)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(resp, "incomplete_details");
    const char *reason = cp_tr_str_member(d, "reason", "");

    if (had_calls)
        return "tool_use";
    if ((incomplete || (cJSON_IsString(st) && cp_tr_str_eq(st->valuestring, "incomplete"))) &&
        !cp_tr_str_eq(reason, "content_filter"))
        return "max_tokens";
    return "end_turn";
}

/* Anthropic usage {input_tokens (uncached), output_tokens, cache_read_input_tokens}. */
static int put_usage(cJSON *parent, const struct cp_tr_usage *u)
{
    cJSON *us = NULL;
    int64_t in = u->input > u->cached ? u->input - u->cached : 0;
    int rc;

    if ((rc = cm_json_new_object(&us)) || (rc = cm_json_set_int64(us, "input_tokens", in)) ||
        (rc = cm_json_set_int64(us, "output_tokens", u->output)) ||
        (rc = cm_json_set_int64(us, "cache_read_input_tokens", u->cached))) {
        cJSON_Delete(us);
        return rc;
    }
    return cm_json_adopt(parent, "usage", &us);
}

/* The Anthropic error type for an upstream failure (what SDKs switch on). */
static const char *anthropic_error_type(const struct cp_tr_err *e)
{
    if (cp_tr_str_eq(e->code, "server_is_overloaded") || cp_tr_str_eq(e->type, "overloaded_error"))
        return "overloaded_error";
    switch (e->status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return "api_error";
    }
}

/* ---- the stream ---- */

enum { BLK_NONE = 0, BLK_TEXT, BLK_THINKING, BLK_TOOL };

int cp_tr_messages_codex_stream_init(struct cp_tr_messages_codex_stream *st,
                                     const cJSON *client_req, const char *msg_id,
                                     struct cp_tr_err *err)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(client_req, "model");
    struct cp_tr_messages_codex_stream s;

    memset(&s, 0, sizeof(s));
    if (!st || !msg_id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!(s._id = cm_strdup(msg_id)) ||
        !(s._model = cm_strdup(cJSON_IsString(model) ? model->valuestring : "")) ||
        cp_tr_codex_names_build(cJSON_GetObjectItemCaseSensitive(client_req, "tools"), custom_name,
                                &s._names)) {
        cp_tr_messages_codex_stream_cleanup(&s);
        cp_tr_server_error(err, CM_ERR_NOMEM, "out of memory");
        return CM_ERR_NOMEM;
    }
    *st = s;
    return CM_OK;
}

void cp_tr_messages_codex_stream_cleanup(struct cp_tr_messages_codex_stream *st)
{
    if (!st)
        return;
    cp_tr_codex_calls_free(st->_calls, st->_ncalls);
    cm_free(st->_id);
    cm_free(st->_model);
    cp_tr_codex_names_free(st->_names);
    st->_calls = NULL;
    st->_ncalls = 0;
    st->_id = st->_model = NULL;
    st->_names = NULL;
}

bool cp_tr_messages_codex_stream_has_content(const struct cp_tr_messages_codex_stream *st)
{
    return st && st->_has_content;
}

int cp_tr_messages_codex_stream_usage(const struct cp_tr_messages_codex_stream *st,
                                      struct cp_tr_usage *out)
{
    if (!st || !out || !st->_have_usage)
        return CM_ERR_NOTFOUND;
    *out = st->_usage;
    return CM_OK;
}

/* Appends "event: <data.type>\ndata: <json>\n\n" and deletes @p obj. */
static int emit(cJSON *obj, struct cm_buf *out)
{
    return cp_tr_anth_emit(obj, out);
}

static int emit_error(const struct cp_tr_err *e, struct cm_buf *out)
{
    cJSON *o = NULL, *eo = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("error", &o)) || (rc = cm_json_new_object(&eo)) ||
        (rc = cm_json_set_string(eo, "type", anthropic_error_type(e))) ||
        (rc = cm_json_set_string(eo, "message", e->msg)) || (rc = cm_json_adopt(o, "error", &eo)))
        goto out;
    rc = emit(o, out);
    o = NULL;
out:
    cJSON_Delete(eo);
    cJSON_Delete(o);
    return rc;
}

/* message_start, once. */
static int ensure_started(struct cp_tr_messages_codex_stream *st, struct cm_buf *out)
{
    int rc;
    if (st->_started)
        return CM_OK;
    rc = cp_tr_anth_message_start(st->_id, st->_model, out);
    if (!rc)
        st->_started = true;
    return rc;
}

/* content_block_stop for the open block, if any. */
static int close_block(struct cp_tr_messages_codex_stream *st, struct cm_buf *out)
{
    if (st->_open == BLK_NONE)
        return CM_OK;
    if (st->_open == BLK_TOOL)
        st->_calls[st->_open_call].closed = true;
    st->_open = BLK_NONE;
    return cp_tr_anth_block_stop(st->_open_index, out);
}

/* Stops the open block and starts a new one of @p kind with @p block (taken, also on error). */
static int open_block(struct cp_tr_messages_codex_stream *st, int kind, cJSON *block,
                      struct cm_buf *out)
{
    cJSON *ev = NULL;
    int rc;

    if ((rc = ensure_started(st, out)) || (rc = close_block(st, out)) ||
        (rc = cp_tr_typed_new("content_block_start", &ev)) ||
        (rc = cm_json_set_int64(ev, "index", (int64_t)st->_next_index))) {
        cJSON_Delete(block);
        cJSON_Delete(ev);
        return rc;
    }
    if ((rc = cm_json_adopt(ev, "content_block", &block))) {
        cJSON_Delete(ev);
        return rc;
    }
    st->_open = kind;
    st->_open_index = st->_next_index++;
    return emit(ev, out);
}

/* A block skeleton {"type": @p type, @p key: ""} (key NULL: tool_use handled by the caller). */
static int block_new(const char *type, const char *key, cJSON **out)
{
    cJSON *b = NULL;
    int rc;

    if ((rc = cp_tr_typed_new(type, &b)) || (key && (rc = cm_json_set_string(b, key, "")))) {
        cJSON_Delete(b);
        return rc;
    }
    *out = b;
    return CM_OK;
}

/* content_block_delta on the open block: {"type": @p dtype, @p key: @p val}. */
static int emit_delta(struct cp_tr_messages_codex_stream *st, const char *dtype, const char *key,
                      const char *val, struct cm_buf *out)
{
    cJSON *ev = NULL, *d = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("content_block_delta", &ev)) ||
        (rc = cm_json_set_int64(ev, "index", (int64_t)st->_open_index)) ||
        (rc = cp_tr_typed_new(dtype, &d)) || (rc = cm_json_set_string(d, key, val)) ||
        (rc = cm_json_adopt(ev, "delta", &d))) {
        cJSON_Delete(d);
        cJSON_Delete(ev);
        return rc;
    }
    if ((rc = emit(ev, out)))
        return rc;
    st->_has_content = true;
    return CM_OK;
}

static int on_text(struct cp_tr_messages_codex_stream *st, const char *delta, struct cm_buf *out)
{
    cJSON *b = NULL;
    int rc;

    if (!delta[0])
        return CM_OK;
    if (st->_open != BLK_TEXT &&
        ((rc = block_new("text", "text", &b)) || (rc = open_block(st, BLK_TEXT, b, out))))
        return rc;
    return emit_delta(st, "text_delta", "text", delta, out);
}

static int on_thinking(struct cp_tr_messages_codex_stream *st, const char *delta,
                       struct cm_buf *out)
{
    cJSON *b = NULL;
    int rc;

    if (!delta[0])
        return CM_OK;
    if (st->_open != BLK_THINKING) {
        st->_think_sep = false;
        if ((rc = block_new("thinking", "thinking", &b)) ||
            (rc = open_block(st, BLK_THINKING, b, out)))
            return rc;
    } else if (st->_think_sep) {
        st->_think_sep = false;
        if ((rc = emit_delta(st, "thinking_delta", "thinking", "\n\n", out)))
            return rc;
    }
    return emit_delta(st, "thinking_delta", "thinking", delta, out);
}

/* The call for an upstream item (by item id, else output_index), or NULL. */
static struct cp_tr_codex_call *find_call(struct cp_tr_messages_codex_stream *st, const cJSON *ev,
                                          size_t *index)
{
    return cp_tr_codex_call_find(st->_calls, st->_ncalls, ev, index);
}

/* Records function_call @p item and starts its tool_use block. */
static int start_call(struct cp_tr_messages_codex_stream *st, const cJSON *ev, const cJSON *item,
                      struct cm_buf *out)
{
    cJSON *b = NULL;
    size_t idx = 0;
    int rc;

    if ((rc = cp_tr_codex_call_add(&st->_calls, &st->_ncalls, CP_TR_MESSAGES_CODEX_MAX_TOOLS, ev,
                                   item, &idx)))
        return rc;
    if ((rc = block_new("tool_use", NULL, &b)) ||
        (rc = cm_json_set_string(b, "id", cp_tr_str_member(item, "call_id", ""))) ||
        (rc = cm_json_set_string(
             b, "name", cp_tr_codex_names_orig(st->_names, cp_tr_str_member(item, "name", "")))) ||
        (rc = cm_json_set_item(b, "input", cJSON_CreateObject()))) {
        cJSON_Delete(b);
        return rc;
    }
    if ((rc = open_block(st, BLK_TOOL, b, out)))
        return rc;
    st->_open_call = idx;
    return CM_OK;
}

/* input_json_delta @p args for call @p idx when its block is the open one. */
static int call_args(struct cp_tr_messages_codex_stream *st, size_t idx, const char *args,
                     struct cm_buf *out)
{
    if (!args[0] || st->_open != BLK_TOOL || st->_open_call != idx)
        return CM_OK;
    st->_calls[idx].args_sent = true;
    return emit_delta(st, "input_json_delta", "partial_json", args, out);
}

static int on_terminal(struct cp_tr_messages_codex_stream *st, const cJSON *ev, bool incomplete,
                       struct cm_buf *out)
{
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
    struct cp_tr_usage zero = {0, 0, 0, 0, 0};
    cJSON *md = NULL, *d = NULL, *ms = NULL;
    int rc;

    st->_have_usage = cp_tr_codex_parse_usage(resp, &st->_usage);
    if ((rc = ensure_started(st, out)) || (rc = close_block(st, out)) ||
        (rc = cp_tr_typed_new("message_delta", &md)) || (rc = cm_json_new_object(&d)) ||
        (rc = cm_json_set_string(d, "stop_reason",
                                 stop_reason(resp, incomplete, st->_ncalls > 0))) ||
        (rc = cm_json_set_null(d, "stop_sequence")) || (rc = cm_json_adopt(md, "delta", &d)) ||
        (rc = put_usage(md, st->_have_usage ? &st->_usage : &zero)))
        goto out;
    rc = emit(md, out);
    md = NULL;
    if (rc || (rc = cp_tr_typed_new("message_stop", &ms)))
        goto out;
    rc = emit(ms, out);
    ms = NULL;
out:
    cJSON_Delete(d);
    cJSON_Delete(md);
    cJSON_Delete(ms);
    return rc;
}

/* cp_tr_codex_stream_ops.dispatch for struct cp_tr_messages_codex_stream @p ud. */
static int stream_dispatch(void *ud, const char *t, size_t tl, const cJSON *ev, struct cm_buf *out)
{
    struct cp_tr_messages_codex_stream *st = ud;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    const char *itype = cp_tr_str_member(item, "type", "");
    struct cp_tr_codex_call *call;
    size_t idx = 0;
    int rc;

    if (tl < 9 || memcmp(t, "response.", 9) != 0)
        return CM_OK; /* codex.rate_limits and the like: nothing for the client */
    if (cp_tr_slice_eq(t, tl, "response.created") ||
        cp_tr_slice_eq(t, tl, "response.in_progress")) {
        const char *model =
            cp_tr_str_member(cJSON_GetObjectItemCaseSensitive(ev, "response"), "model", NULL);
        if (model && model[0] && !st->_started) {
            char *m = cm_strdup(model);
            if (!m)
                return CM_ERR_NOMEM;
            cm_free(st->_model);
            st->_model = m;
        }
    }
    if ((rc = ensure_started(st, out)))
        return rc;
    if (cp_tr_slice_eq(t, tl, "response.output_text.delta") ||
        cp_tr_slice_eq(t, tl, "response.refusal.delta"))
        return on_text(st, cp_tr_str_member(ev, "delta", ""), out);
    if (cp_tr_slice_eq(t, tl, "response.reasoning_summary_text.delta"))
        return on_thinking(st, cp_tr_str_member(ev, "delta", ""), out);
    if (cp_tr_slice_eq(t, tl, "response.reasoning_summary_text.done")) {
        st->_think_sep = st->_open == BLK_THINKING;
        return CM_OK;
    }
    if (cp_tr_slice_eq(t, tl, "response.output_item.added")) {
        if (!cp_tr_str_eq(itype, "function_call") || find_call(st, ev, &idx))
            return CM_OK;
        return start_call(st, ev, item, out);
    }
    if (cp_tr_slice_eq(t, tl, "response.function_call_arguments.delta")) {
        if (!find_call(st, ev, &idx))
            return CM_OK;
        return call_args(st, idx, cp_tr_str_member(ev, "delta", ""), out);
    }
    if (cp_tr_slice_eq(t, tl, "response.function_call_arguments.done")) {
        if (!(call = find_call(st, ev, &idx)) || call->args_sent)
            return CM_OK;
        return call_args(st, idx, cp_tr_str_member(ev, "arguments", ""), out);
    }
    if (cp_tr_slice_eq(t, tl, "response.output_item.done")) {
        if (cp_tr_str_eq(itype, "message"))
            return st->_open == BLK_TEXT ? close_block(st, out) : CM_OK;
        if (cp_tr_str_eq(itype, "reasoning"))
            return st->_open == BLK_THINKING ? close_block(st, out) : CM_OK;
        if (!cp_tr_str_eq(itype, "function_call"))
            return CM_OK;
        if (!(call = find_call(st, ev, &idx))) {
            if ((rc = start_call(st, ev, item, out)))
                return rc;
            idx = st->_ncalls - 1;
            call = &st->_calls[idx];
        }
        if (call->closed)
            return CM_OK;
        if (!call->args_sent &&
            (rc = call_args(st, idx, cp_tr_str_member(item, "arguments", ""), out)))
            return rc;
        return st->_open == BLK_TOOL && st->_open_call == idx ? close_block(st, out) : CM_OK;
    }
    if (cp_tr_slice_eq(t, tl, "response.completed") ||
        cp_tr_slice_eq(t, tl, "response.incomplete")) {
        st->_done = st->_completed = true;
        return on_terminal(st, ev, cp_tr_slice_eq(t, tl, "response.incomplete"), out);
    }
    return CM_OK; /* content_part.*, output_text.done, ...: nothing new for the client */
}

static const struct cp_tr_codex_stream_ops stream_ops = {emit_error, stream_dispatch};

int cp_tr_messages_codex_stream_event(struct cp_tr_messages_codex_stream *st, const char *type,
                                      size_t type_len, const char *data, size_t data_len,
                                      struct cm_buf *out, struct cp_tr_err *err)
{
    if (!st || !out || !st->_id)
        return CM_ERR_INVAL;
    return cp_tr_codex_stream_event(&stream_ops, st, &st->_done, type, type_len, data, data_len,
                                    out, err);
}

int cp_tr_messages_codex_stream_finish(struct cp_tr_messages_codex_stream *st, struct cm_buf *out,
                                       struct cp_tr_err *err)
{
    if (!st || !out)
        return CM_ERR_INVAL;
    return cp_tr_codex_stream_finish(&stream_ops, &st->_done, out, err);
}

/* ---- non-stream aggregation ---- */

/* Appends a block {"type": @p type, @p key: @p b's text} to @p content when @p b is non-empty. */
static int add_text_block(cJSON *content, const char *type, const char *key, struct cm_buf *b)
{
    if (!b->len)
        return CM_OK;
    return cp_tr_typed_append(content, type, key, b->data, b->len);
}

/* A function_call output item -> tool_use block. */
static int add_tool_use(cJSON *content, const cJSON *it, const struct cp_tr_codex_names *names)
{
    cJSON *o = NULL, *input = NULL;
    int rc;

    /* empty or not an object: Anthropic wants an object */
    if ((rc = cp_tr_args_object(cp_tr_str_member(it, "arguments", ""), &input)))
        return rc;
    if ((rc = cp_tr_typed_new("tool_use", &o)) ||
        (rc = cm_json_set_string(o, "id", cp_tr_str_member(it, "call_id", ""))) ||
        (rc = cm_json_set_string(
             o, "name", cp_tr_codex_names_orig(names, cp_tr_str_member(it, "name", "")))) ||
        (rc = cm_json_adopt(o, "input", &input)))
        goto out;
    rc = cm_json_adopt(content, NULL, &o);
out:
    cJSON_Delete(input);
    cJSON_Delete(o);
    return rc;
}

/* The content blocks of @p output into array @p content; *@p had_calls if any tool_use. */
static int build_content(const cJSON *output, const struct cp_tr_codex_names *names, cJSON *content,
                         bool *had_calls)
{
    struct cm_buf b;
    const cJSON *it, *p;
    int rc = CM_OK;

    cm_buf_init(&b, TEXT_MAX);
    cJSON_ArrayForEach(it, output)
    {
        const char *type = cp_tr_str_member(it, "type", "");
        cm_buf_reset(&b);
        if (cp_tr_str_eq(type, "reasoning")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "summary"))
            {
                const char *s = cp_tr_str_member(p, "text", "");
                if (!s[0])
                    continue;
                if ((b.len && (rc = cm_buf_append_str(&b, "\n\n"))) ||
                    (rc = cm_buf_append_str(&b, s)))
                    goto out;
            }
            rc = add_text_block(content, "thinking", "thinking", &b);
        } else if (cp_tr_str_eq(type, "message")) {
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "content"))
            {
                const char *pt = cp_tr_str_member(p, "type", "");
                const char *s = cp_tr_str_eq(pt, "output_text") ? cp_tr_str_member(p, "text", "")
                                : cp_tr_str_eq(pt, "refusal")   ? cp_tr_str_member(p, "refusal", "")
                                                                : "";
                if ((rc = cm_buf_append_str(&b, s)))
                    goto out;
            }
            rc = add_text_block(content, "text", "text", &b);
        } else if (cp_tr_str_eq(type, "function_call")) {
            *had_calls = true;
            rc = add_tool_use(content, it, names);
        }
        if (rc)
            goto out;
    }
out:
    cm_buf_cleanup(&b);
    return rc;
}

/* What build_message() needs besides the collected body. */
struct message_ctx {
    const char *id;           /* message id */
    const char *client_model; /* the request's model: fallback when the upstream gave none */
};

/* cp_tr_codex_build_fn: the collected body -> one Anthropic message. */
static int build_message(const struct cp_tr_codex_result *r, const struct cp_tr_codex_names *names,
                         void *ud, cJSON **out, struct cp_tr_usage *usage_out)
{
    const struct message_ctx *c = ud;
    const char *model = r->model ? r->model : cp_tr_str_member(r->response, "model", NULL);
    struct cp_tr_usage u = {0, 0, 0, 0, 0};
    cJSON *msg = NULL, *content = NULL;
    bool had_calls = false;
    int rc;

    if ((rc = cm_json_new_array(&content)) ||
        (rc = build_content(r->output, names, content, &had_calls)))
        goto out;
    if (!cp_tr_codex_parse_usage(r->response, &u))
        memset(&u, 0, sizeof(u));
    if (!model || !model[0])
        model = c->client_model;
    if ((rc = cm_json_new_object(&msg)) || (rc = cm_json_set_string(msg, "id", c->id)) ||
        (rc = cm_json_set_string(msg, "type", "message")) ||
        (rc = cm_json_set_string(msg, "role", "assistant")) ||
        (rc = cm_json_set_string(msg, "model", model)) ||
        (rc = cm_json_adopt(msg, "content", &content)) ||
        (rc = cm_json_set_string(msg, "stop_reason",
                                 stop_reason(r->response, r->incomplete, had_calls))) ||
        (rc = cm_json_set_null(msg, "stop_sequence")) || (rc = put_usage(msg, &u)))
        goto out;
    *out = msg;
    msg = NULL;
    *usage_out = u;
out:
    cJSON_Delete(content);
    cJSON_Delete(msg);
    return rc;
}

int cp_tr_messages_codex_aggregate(const char *sse, size_t len, const cJSON *client_req,
                                   const char *msg_id, cJSON **out, struct cp_tr_usage *usage,
                                   struct cp_tr_err *err)
{
    struct message_ctx c = {msg_id, cp_tr_str_member(client_req, "model", "")};

    if (!msg_id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    return cp_tr_codex_aggregate(sse, len, 0, cJSON_GetObjectItemCaseSensitive(client_req, "tools"),
                                 custom_name, build_message, &c, out, usage, err);
}
