/* SPDX-License-Identifier: MIT */
/*
 * chat_claude.c - OpenAI Chat Completions <-> Anthropic Messages translation (pure).
 *
 * Request: a chat.completions tree becomes a /v1/messages body (spec cliproxyapi.md 5.1 for
 * the thinking budget, 5.4 for the mapping). Anthropic wants strictly alternating user /
 * assistant turns made of content blocks, so messages are converted to block arrays first
 * and appended through one place that merges a turn into the previous one of its role.
 * Response: a state machine fed one Anthropic SSE event at a time writes the chunks of
 * chat_common.h; the aggregator rebuilds the Message the events describe and hands it to
 * the same converter as a non-stream Message answer, so both paths agree by construction.
 */
#include "translate/chat_claude.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <string.h>

/* ---- small helpers ---- */

/* ---- 5.1: model suffix and thinking budget ---- */

/*
 * The thinking budget a level word or decimal budget @p v (@p n bytes) names: true and
 * *(int64_t *)@p budget_out (0 = thinking off), or false when @p v is neither. Also the
 * cp_tr_split_model() suffix check.
 */
static bool budget_of(const char *v, size_t n, void *budget_out)
{
    int64_t *budget = budget_out;
    static const struct {
        const char *word;
        int64_t budget;
    } levels[] = {
        {"none", 0},      {"minimal", 512}, {"low", 1024},  {"medium", 8192}, {"high", 24576},
        {"xhigh", 32768}, {"max", 128000},  {"auto", 8192}, {"-1", 8192}, /* Claude has no dynamic
                                                                             budget: the medium one
                                                                           */
    };
    int64_t b = 0;
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (cp_tr_slice_eq(v, n, levels[i].word)) {
            *budget = levels[i].budget;
            return true;
        }
    }
    if (n == 0 || n > 9) /* 9 digits cannot overflow and exceed any budget anyway */
        return false;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        b = b * 10 + (v[i] - '0');
    }
    *budget = b;
    return true;
}

/* ---- request: content blocks ---- */

/* Appends {"type":"text","text":@p text} to @p blocks unless the text is empty. */
static int add_text_block(cJSON *blocks, const char *text)
{
    if (!text[0]) /* Anthropic refuses empty text blocks */
        return CM_OK;
    return cp_tr_typed_append(blocks, "text", "text", text, strlen(text));
}

/* {"type":<type>,"source":{"type":"base64","media_type","data"}} (or url source). */
static int add_source_block(cJSON *blocks, const char *type, const char *media, size_t media_len,
                            const char *data, const char *url)
{
    cJSON *o = NULL, *src = NULL;
    int rc;

    if ((rc = cp_tr_typed_new(type, &o)) || (rc = cm_json_new_object(&src)))
        goto out;
    if (url) {
        if ((rc = cm_json_set_string(src, "type", "url")) ||
            (rc = cm_json_set_string(src, "url", url)))
            goto out;
    } else if ((rc = cm_json_set_string(src, "type", "base64")) ||
               (rc = cm_json_set_stringn(src, "media_type", media, media_len)) ||
               (rc = cm_json_set_string(src, "data", data))) {
        goto out;
    }
    rc = cm_json_adopt(o, "source", &src);
    if (rc)
        goto out;
    rc = cm_json_adopt(blocks, NULL, &o);
out:
    cJSON_Delete(src);
    cJSON_Delete(o);
    return rc;
}

static bool ends_with_pdf(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    const char *e;

    if (n < 4)
        return false;
    e = s + n - 4;
    return e[0] == '.' && (e[1] | 0x20) == 'p' && (e[2] | 0x20) == 'd' && (e[3] | 0x20) == 'f';
}

static int conv_image(const struct cp_tr_chat_part *p, cJSON *blocks, struct cm_json_err *je)
{
    const char *url = p->url, *media = NULL, *data = NULL;
    size_t media_len = 0;

    if (cp_tr_data_url(url, &media, &media_len, &data)) {
        if (media_len < 7 || memcmp(media, "image/", 6) != 0) {
            cm_json_err_set(je, CM_ERR_INVAL, "image_url.url", "must be an image data URL");
            return CM_ERR_INVAL;
        }
        return add_source_block(blocks, "image", media, media_len, data, NULL);
    }
    if (cp_tr_has_prefix(url, "https://") || cp_tr_has_prefix(url, "http://"))
        return add_source_block(blocks, "image", NULL, 0, NULL, url);
    cm_json_err_set(je, CM_ERR_INVAL, "image_url.url",
                    "must be a base64 data URL or an http(s) URL");
    return CM_ERR_INVAL;
}

static int conv_file(const struct cp_tr_chat_part *p, cJSON *blocks, struct cm_json_err *je)
{
    static const char pdf[] = "application/pdf";
    const char *data = p->data, *media = NULL, *b64 = NULL;
    size_t media_len = 0;

    if (!data) {
        cm_json_err_set(je, CM_ERR_INVAL, "file.file_id",
                        "is not supported on this model (send file_data)");
        return CM_ERR_INVAL;
    }
    if (cp_tr_data_url(data, &media, &media_len, &b64)) {
        if (media_len != sizeof(pdf) - 1 || memcmp(media, pdf, media_len) != 0) {
            cm_json_err_set(je, CM_ERR_INVAL, "file.file_data",
                            "must hold a PDF (data:application/pdf;base64,...)");
            return CM_ERR_INVAL;
        }
    } else if (ends_with_pdf(p->filename) && !cp_tr_has_prefix(data, "data:")) {
        b64 = data; /* raw base64 of a file named *.pdf */
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "file.file_data",
                        "must hold a PDF (data:application/pdf;base64,...)");
        return CM_ERR_INVAL;
    }
    return add_source_block(blocks, "document", pdf, sizeof(pdf) - 1, b64, NULL);
}

/* cp_tr_chat_content_ops: string content -> one text block (@p ud: the blocks). */
static int content_text(void *ud, const char *s)
{
    return add_text_block(ud, s);
}

/* cp_tr_chat_content_ops: one content part of a user or assistant message -> blocks. */
static int content_part(void *ud, const struct cp_tr_chat_part *p, struct cm_json_err *je)
{
    if (cp_tr_str_eq(p->type, "text") || cp_tr_str_eq(p->type, "refusal"))
        return add_text_block(ud, p->text);
    if (cp_tr_str_eq(p->type, "image_url"))
        return conv_image(p, ud, je);
    return conv_file(p, ud, je);
}

/*
 * The content of message @p m as blocks appended to @p blocks (string -> one text block,
 * array -> its parts; absent/null -> none, an error unless @p optional).
 */
static int conv_content(const cJSON *m, bool user, bool optional, cJSON *blocks,
                        struct cm_json_err *je)
{
    static const struct cp_tr_chat_content_ops ops = {content_text, content_part};

    return cp_tr_chat_content(cJSON_GetObjectItemCaseSensitive(m, "content"),
                              user ? "user" : "assistant", optional, CP_TR_CHAT_CLAUDE_MAX_PARTS,
                              &ops, blocks, je);
}

/* cp_tr_chat_tool_calls() callback: one assistant tool call -> a tool_use block in @p ud. */
static int conv_tool_call(void *ud, const char *id, const char *name, const char *args)
{
    cJSON *o = NULL, *input = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("tool_use", &o)) || (rc = cm_json_set_string(o, "id", id)) ||
        (rc = cm_json_set_string(o, "name", name)) || (rc = cp_tr_args_object(args, &input)) ||
        (rc = cm_json_adopt(o, "input", &input)))
        goto out;
    rc = cm_json_adopt(ud, NULL, &o);
out:
    cJSON_Delete(input);
    cJSON_Delete(o);
    return rc;
}

/* ---- request: turns ---- */

/* The conversation being built: "messages" and the top-level "system" blocks. */
struct turns {
    cJSON *messages; /* owned until adopted into the body */
    cJSON *system;
    cJSON *last_content; /* content of the last message (borrowed from messages) */
    bool last_user;      /* the last message is a user turn */
};

static bool is_tool_result(const cJSON *b)
{
    return cp_tr_str_eq(cp_tr_str_member(b, "type", ""), "tool_result");
}

/*
 * Moves every block of @p blocks (emptied, still the caller's) into a turn of @p user's
 * role: the last message when it has that role, else a new one. In a user turn,
 * tool_result blocks go ahead of the other blocks (Anthropic wants them first).
 */
static int turn_append(struct turns *t, bool user, cJSON *blocks)
{
    cJSON *o = NULL, *content = NULL, *b;
    int rc;

    if (!cJSON_GetArraySize(blocks))
        return CM_OK;
    if (!t->last_content || t->last_user != user) {
        cJSON *c;
        if ((rc = cm_json_new_object(&o)) ||
            (rc = cm_json_set_string(o, "role", user ? "user" : "assistant")) ||
            (rc = cm_json_new_array(&content)))
            goto out;
        c = content;
        rc = cm_json_adopt(o, "content", &content);
        if (rc || (rc = cm_json_adopt(t->messages, NULL, &o)))
            goto out;
        t->last_content = c;
        t->last_user = user;
    }
    while ((b = cJSON_DetachItemFromArray(blocks, 0)) != NULL) {
        int n = cJSON_GetArraySize(t->last_content), at = n; /* append */
        if (user && is_tool_result(b)) {
            at = 0;
            while (at < n && is_tool_result(cJSON_GetArrayItem(t->last_content, at)))
                at++;
        }
        /* Not cJSON_InsertItemInArray(): Debian 12's cJSON 1.7.15 refuses every insert at
         * an index > 0, which dropped (and leaked) the block. Append it, then move the
         * blocks that were at at..n-1 behind it (links only, cannot fail). */
        cJSON_AddItemToArray(t->last_content, b);
        for (; at < n; n--)
            cJSON_AddItemToArray(t->last_content, cJSON_DetachItemFromArray(t->last_content, at));
    }
    rc = CM_OK;
out:
    cJSON_Delete(content);
    cJSON_Delete(o);
    return rc;
}

/* system / developer content -> top-level system text blocks. */
static int conv_system(const cJSON *m, struct turns *t, struct cm_json_err *je)
{
    return cp_tr_chat_system_texts(m, CP_TR_CHAT_CLAUDE_MAX_PARTS, add_text_block, t->system, je);
}

/* role tool -> a user turn with one tool_result block. */
static int conv_tool_result(const cJSON *m, cJSON *blocks, struct cm_json_err *je)
{
    const char *call_id = NULL;
    struct cm_buf b;
    cJSON *o = NULL;
    int rc;

    cm_buf_init(&b, (size_t)64 << 20);
    if ((rc = cp_tr_chat_tool_message(m, &call_id, &b, je)))
        goto out;
    if ((rc = cp_tr_typed_new("tool_result", &o)) ||
        (rc = cm_json_set_string(o, "tool_use_id", call_id)) ||
        (rc = cm_json_set_stringn(o, "content", b.data ? b.data : "", b.len)))
        goto out;
    rc = cm_json_adopt(blocks, NULL, &o);
out:
    cJSON_Delete(o);
    cm_buf_cleanup(&b);
    return rc;
}

static int conv_message(const cJSON *m, struct turns *t, struct cm_json_err *je)
{
    const char *role = NULL;
    cJSON *blocks = NULL;
    bool user = true;
    int rc;

    if ((rc = cm_json_get_string(m, "role", &role, je)) != CM_OK)
        return rc;
    if (cp_tr_str_eq(role, "system") || cp_tr_str_eq(role, "developer"))
        return conv_system(m, t, je);
    if ((rc = cm_json_new_array(&blocks)) != CM_OK)
        return rc;
    if (cp_tr_str_eq(role, "tool")) {
        rc = conv_tool_result(m, blocks, je);
    } else if (cp_tr_str_eq(role, "user")) {
        if (!(rc = conv_content(m, true, false, blocks, je)) && !cJSON_GetArraySize(blocks)) {
            cm_json_err_set(je, CM_ERR_INVAL, "content", "must not be empty");
            rc = CM_ERR_INVAL;
        }
    } else if (cp_tr_str_eq(role, "assistant")) {
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        user = false;
        if (cJSON_GetObjectItemCaseSensitive(m, "function_call")) {
            cm_json_err_set(je, CM_ERR_INVAL, "function_call",
                            "is not supported (legacy functions API; use tool_calls)");
            rc = CM_ERR_INVAL;
        } else if (!(rc = conv_content(m, false, true, blocks, je)) && calls &&
                   !cJSON_IsNull(calls)) {
            rc = cp_tr_chat_tool_calls(calls, CP_TR_CHAT_CLAUDE_MAX_TOOLS, conv_tool_call, blocks,
                                       je);
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "role", "unsupported role '%.16s'", role);
        rc = CM_ERR_INVAL;
    }
    if (!rc)
        rc = turn_append(t, user, blocks);
    cJSON_Delete(blocks);
    return rc;
}

/* ---- request: tools, tool_choice, stop ---- */

/* {"type":"object","properties":{}}: the schema of a tool declared without parameters. */
static cJSON *default_schema(void)
{
    cJSON *o = NULL;

    if (cm_json_new_object(&o) || cm_json_set_string(o, "type", "object") ||
        cm_json_set_item(o, "properties", cJSON_CreateObject())) {
        cJSON_Delete(o);
        return NULL; /* set_item turns NULL into CM_ERR_NOMEM */
    }
    return o;
}

/* cp_tr_map_array() callback: one tools[] entry (function tools only) -> an Anthropic tool. */
static int conv_tool(const void *ud, const cJSON *t, cJSON **out, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    cJSON *o = NULL, *params = NULL;
    int rc;

    (void)ud;
    if ((rc = cm_json_get_string(t, "type", &type, je)))
        return rc;
    if (!cp_tr_str_eq(type, "function")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "unsupported tool type '%.32s' (only function tools)", type);
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_chat_function_tool(t, &name, &desc, &params, NULL, je)))
        return rc;
    if ((rc = cm_json_new_object(&o)) || (rc = cm_json_set_string(o, "name", name)) ||
        (desc && (rc = cm_json_set_string(o, "description", desc))) ||
        (rc = cm_json_set_item(o, "input_schema",
                               params ? cJSON_Duplicate(params, 1) : default_schema()))) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return CM_OK;
}

static int conv_tools(const cJSON *tools, cJSON *body, struct cm_json_err *je)
{
    cJSON *arr = NULL;
    int rc;

    if ((rc = cp_tr_map_array(tools, "tools", CP_TR_CHAT_CLAUDE_MAX_TOOLS, conv_tool, NULL, &arr,
                              je)))
        return rc;
    if (!cJSON_GetArraySize(arr)) {
        cJSON_Delete(arr);
        return CM_OK;
    }
    return cm_json_adopt(body, "tools", &arr);
}

/*
 * tool_choice (+ parallel_tool_calls false) -> body.tool_choice. Called only with tools.
 * @p tc may be NULL.
 */
static int conv_tool_choice(const cJSON *tc, bool parallel, cJSON *body, struct cm_json_err *je)
{
    cJSON *o = NULL, *fn = NULL;
    const char *type = NULL, *name = NULL;
    int rc;

    if (cJSON_IsString(tc) && cp_tr_str_eq(tc->valuestring, "none"))
        return CM_OK; /* spec 5.4: omitted; the tools stay */
    if ((rc = cm_json_new_object(&o)) != CM_OK)
        return rc;
    if (!tc || cJSON_IsString(tc)) {
        const char *s = tc ? tc->valuestring : "auto";
        if (!cp_tr_str_eq(s, "auto") && !cp_tr_str_eq(s, "required")) {
            cm_json_err_set(je, CM_ERR_INVAL, "tool_choice",
                            "must be 'auto', 'none', 'required' or a function choice");
            rc = CM_ERR_INVAL;
            goto out;
        }
        if (!tc && parallel) /* nothing to say: Anthropic's default is auto */
            goto out;
        if ((rc = cm_json_set_string(o, "type", cp_tr_str_eq(s, "auto") ? "auto" : "any")))
            goto out;
    } else {
        if ((rc = cm_json_get_string(tc, "type", &type, je)) != CM_OK)
            goto bad;
        if (!cp_tr_str_eq(type, "function")) {
            cm_json_err_set(je, CM_ERR_INVAL, "type", "unsupported tool_choice type '%.32s'", type);
            rc = CM_ERR_INVAL;
            goto bad;
        }
        if ((rc = cm_json_get_object(tc, "function", &fn, je)) != CM_OK)
            goto bad;
        if ((rc = cm_json_get_string(fn, "name", &name, je)) != CM_OK) {
            cm_json_err_scope(je, "function");
            goto bad;
        }
        if ((rc = cm_json_set_string(o, "type", "tool")) ||
            (rc = cm_json_set_string(o, "name", name)))
            goto out;
    }
    if (!parallel && (rc = cm_json_set_bool(o, "disable_parallel_tool_use", true)))
        goto out;
    rc = cm_json_adopt(body, "tool_choice", &o);
    goto out;
bad:
    cm_json_err_scope(je, "tool_choice");
out:
    cJSON_Delete(o);
    return rc;
}

static int conv_stop(const cJSON *stop, cJSON *body, struct cm_json_err *je)
{
    return cp_tr_chat_stop_list(stop, CP_TR_CHAT_CLAUDE_MAX_TOOLS, body, "stop_sequences", je);
}

/* The sampling and length settings: max_tokens, temperature, top_p, thinking. */
static int conv_sampling(const cJSON *req, bool think, int64_t budget, cJSON *body,
                         struct cm_json_err *je)
{
    int64_t max_tokens = CP_TR_CHAT_CLAUDE_MAX_TOKENS_DEFAULT;
    const cJSON *mct = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens");
    const cJSON *temp = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    const cJSON *top_p = cJSON_GetObjectItemCaseSensitive(req, "top_p");
    double v = 0;
    cJSON *o = NULL;
    int rc;

    if (mct && !cJSON_IsNull(mct))
        rc = cm_json_opt_int64(req, "max_completion_tokens", 1, CM_JSON_INT_MAX, max_tokens,
                               &max_tokens, je);
    else
        rc = cm_json_opt_int64(req, "max_tokens", 1, CM_JSON_INT_MAX, max_tokens, &max_tokens, je);
    if (rc || (rc = cm_json_opt_double(req, "temperature", 0, 2, 0, &v, je)) ||
        (rc = cm_json_opt_double(req, "top_p", 0, 1, 0, &v, je)))
        return rc;
    if (think && budget > 0) {
        if (budget < CP_TR_CHAT_CLAUDE_BUDGET_MIN)
            budget = CP_TR_CHAT_CLAUDE_BUDGET_MIN;
        if (budget > CP_TR_CHAT_CLAUDE_BUDGET_MAX)
            budget = CP_TR_CHAT_CLAUDE_BUDGET_MAX;
        if (max_tokens <= budget)
            max_tokens = budget + CP_TR_CHAT_CLAUDE_BUDGET_HEADROOM;
    }
    if ((rc = cm_json_set_int64(body, "max_tokens", max_tokens)))
        return rc;
    if (!(think && budget > 0) && temp && !cJSON_IsNull(temp) &&
        (rc = cm_json_set_double(body, "temperature", temp->valuedouble)))
        return rc;
    if (top_p && !cJSON_IsNull(top_p) &&
        (rc = cm_json_set_double(body, "top_p", top_p->valuedouble)))
        return rc;
    if (!think)
        return CM_OK;
    if ((rc = cp_tr_typed_new(budget > 0 ? "enabled" : "disabled", &o)) ||
        (budget > 0 && (rc = cm_json_set_int64(o, "budget_tokens", budget))))
        goto out;
    rc = cm_json_adopt(body, "thinking", &o);
out:
    cJSON_Delete(o);
    return rc;
}

/* response_format: only plain text has a meaning on Claude. */
static int check_response_format(const cJSON *req, struct cm_json_err *je)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const char *type = NULL;
    int rc;

    if (!rf || cJSON_IsNull(rf))
        return CM_OK;
    if ((rc = cm_json_get_string(rf, "type", &type, je)) == CM_OK && !cp_tr_str_eq(type, "text")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "'%.32s' is not supported on Claude models (only 'text')", type);
        rc = CM_ERR_INVAL;
    }
    if (rc)
        cm_json_err_scope(je, "response_format");
    return rc;
}

/* cp_tr_request() build step: @p req (an object) -> the upstream body in *@p out. */
static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    struct turns t = {NULL, NULL, NULL, false};
    cJSON *body = NULL, *messages = NULL;
    const cJSON *m, *tools, *stop;
    const char *model = NULL, *effort = NULL;
    char *base = NULL;
    bool think = false, parallel = true, stream = false;
    int64_t budget = 0;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_get_string(req, "model", &model, je)) ||
        (rc = cm_json_get_array(req, "messages", &messages, je)) ||
        (rc = cm_json_opt_string(req, "reasoning_effort", NULL, &effort, je)) ||
        (rc = cm_json_opt_bool(req, "parallel_tool_calls", true, &parallel, je)) ||
        (rc = cm_json_opt_bool(req, "stream", false, &stream, je)) ||
        (rc = cp_tr_chat_check_unexpressible(req, "Claude", je)) ||
        (rc = check_response_format(req, je)))
        goto out;
    if ((rc = cp_tr_check_messages(messages, CP_TR_CHAT_CLAUDE_MAX_MESSAGES, je)) ||
        (rc = cp_tr_split_model(model, budget_of, &budget, &base, &think, je)))
        goto out;
    if (!think && effort) {
        if (!budget_of(effort, strlen(effort), &budget) || cp_tr_str_eq(effort, "-1") ||
            (effort[0] >= '0' && effort[0] <= '9')) {
            cm_json_err_set(je, CM_ERR_INVAL, "reasoning_effort",
                            "must be one of none, minimal, low, medium, high, xhigh, max");
            rc = CM_ERR_INVAL;
            goto out;
        }
        think = true;
    }

    if ((rc = cm_json_new_object(&body)) || (rc = cm_json_set_string(body, "model", base)) ||
        (rc = conv_sampling(req, think, budget, body, je)) ||
        (rc = cm_json_new_array(&t.messages)) || (rc = cm_json_new_array(&t.system)))
        goto out;
    cJSON_ArrayForEach(m, messages)
    {
        if ((rc = conv_message(m, &t, je)) != CM_OK) {
            cm_json_err_scope(je, "messages[%zu]", i);
            goto out;
        }
        i++;
    }
    if (!cJSON_GetArraySize(t.messages)) {
        cm_json_err_set(je, CM_ERR_INVAL, "messages",
                        "must hold a user or assistant message besides system ones");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (cJSON_GetArraySize(t.system) > 0 && (rc = cm_json_adopt(body, "system", &t.system)))
        goto out;
    rc = cm_json_adopt(body, "messages", &t.messages);
    if (rc)
        goto out;
    tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
        if ((rc = conv_tools(tools, body, je)))
            goto out;
        if (cJSON_GetArraySize(tools) > 0 &&
            (rc = conv_tool_choice(tc && !cJSON_IsNull(tc) ? tc : NULL, parallel, body, je)))
            goto out;
    }
    stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (stop && !cJSON_IsNull(stop) && (rc = conv_stop(stop, body, je)))
        goto out;
    if (cJSON_GetObjectItemCaseSensitive(req, "stream") &&
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(req, "stream")) &&
        (rc = cm_json_set_bool(body, "stream", stream)))
        goto out;
    *out = body;
    body = NULL;
out:
    cm_free(base);
    cJSON_Delete(t.messages);
    cJSON_Delete(t.system);
    cJSON_Delete(body);
    return rc;
}

int cp_tr_chat_claude_request(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    return cp_tr_request(req, out, err, build_request);
}

/* ---- upstream: shared by the stream, the aggregator and the Message converter ---- */

/*
 * Merges the counts of a usage object @p us into @p ru. Anthropic's counts only grow
 * (message_start has the input, message_delta the final output and, lately, the input
 * again), and some relays send zeros in one of the two: keep the larger value.
 */
static void usage_merge(struct cp_tr_chat_claude_counts *ru, const cJSON *us)
{
    static const char *const names[] = {"input_tokens", "cache_read_input_tokens",
                                        "cache_creation_input_tokens", "output_tokens"};
    int64_t *dst[] = {&ru->in, &ru->cache_read, &ru->cache_creation, &ru->out};
    size_t i;

    if (!cJSON_IsObject(us))
        return;
    ru->seen = true;
    for (i = 0; i < 4; i++) {
        int64_t v = 0;
        if (cm_json_opt_int64(us, names[i], 0, CM_JSON_INT_MAX / 8, 0, &v, NULL) == CM_OK &&
            v > *dst[i])
            *dst[i] = v;
    }
}

/* Spec 5.4: the OpenAI view of Anthropic's counts. */
static struct cp_tr_usage usage_of(const struct cp_tr_chat_claude_counts *ru)
{
    struct cp_tr_usage u;

    u.input = ru->in + ru->cache_creation + ru->cache_read;
    u.output = ru->out;
    u.cached = ru->cache_read;
    u.reasoning = 0;
    u.total = u.input + u.output;
    return u;
}

/* Spec 5.4: stop_reason -> finish_reason. */
static const char *finish_reason(const char *stop_reason, bool had_calls)
{
    if (cp_tr_str_eq(stop_reason, "tool_use"))
        return "tool_calls";
    if (cp_tr_str_eq(stop_reason, "max_tokens"))
        return "length";
    if (cp_tr_str_eq(stop_reason, "refusal"))
        return "content_filter";
    if (!stop_reason || !stop_reason[0])
        return had_calls ? "tool_calls" : "stop";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

/* The HTTP status an Anthropic error type stands for. */
static unsigned claude_status(const char *type)
{
    static const struct {
        const char *type;
        unsigned status;
    } map[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401},
        {"billing_error", 402},         {"permission_error", 403},
        {"not_found_error", 404},       {"request_too_large", 413},
        {"rate_limit_error", 429},      {"api_error", 500},
        {"timeout_error", 504},         {"overloaded_error", 503}, /* Anthropic's 529 */
    };
    size_t i;

    for (i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(type, map[i].type) == 0)
            return map[i].status;
    return 502;
}

/* An "error" event (or error Message) @p ev into @p e (rc CM_ERR_UPSTREAM). */
static void claude_error(const cJSON *ev, struct cp_tr_err *e)
{
    const cJSON *eo = cJSON_GetObjectItemCaseSensitive(ev, "error");
    const char *type, *msg;
    unsigned status;

    if (!cJSON_IsObject(eo))
        eo = ev;
    type = cp_tr_str_member(eo, "type", NULL);
    if (cp_tr_str_eq(type, "error"))
        type = NULL;
    msg = cp_tr_str_member(eo, "message", "");
    status = claude_status(type);
    cp_tr_err_set(e, CM_ERR_UPSTREAM, status, "", type ? type : cp_tr_type_for_status(status), "",
                  "%s", msg[0] ? msg : "upstream error");
}

static int64_t event_index(const cJSON *ev, int64_t def)
{
    int64_t v = def;

    (void)cm_json_opt_int64(ev, "index", 0, CM_JSON_INT_MAX, def, &v, NULL);
    return v;
}

/* ---- the stream ---- */

struct cp_tr_chat_claude_call {
    int64_t block;  /* the upstream content block index */
    bool args_sent; /* some arguments went to the client */
};

int cp_tr_chat_claude_stream_init(struct cp_tr_chat_claude_stream *st, const cJSON *client_req,
                                  const char *id, int64_t created, struct cp_tr_err *err)
{
    struct cp_tr_chat_claude_stream s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (!st || !id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_chat_chunker_init(&s._ck, client_req, id, created))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        return rc;
    }
    s._block = -1;
    *st = s;
    return CM_OK;
}

void cp_tr_chat_claude_stream_cleanup(struct cp_tr_chat_claude_stream *st)
{
    if (!st)
        return;
    cp_tr_chat_chunker_cleanup(&st->_ck);
    cm_free(st->_stop_reason);
    cm_free(st->_calls);
    st->_stop_reason = NULL;
    st->_calls = NULL;
    st->_ncalls = 0;
}

int cp_tr_chat_claude_stream_usage(const struct cp_tr_chat_claude_stream *st,
                                   struct cp_tr_usage *out)
{
    if (!st || !out || !st->_counts.seen)
        return CM_ERR_NOTFOUND;
    *out = usage_of(&st->_counts);
    return CM_OK;
}

bool cp_tr_chat_claude_stream_has_content(const struct cp_tr_chat_claude_stream *st)
{
    return st && st->_content;
}

static struct cp_tr_chat_claude_call *find_call(struct cp_tr_chat_claude_stream *st, int64_t block,
                                                size_t *index)
{
    size_t i;

    for (i = st->_ncalls; i-- > 0;) {
        if (st->_calls[i].block == block) {
            *index = i;
            return &st->_calls[i];
        }
    }
    return NULL;
}

static int add_call(struct cp_tr_chat_claude_stream *st, int64_t block, size_t *index)
{
    struct cp_tr_chat_claude_call *v;

    if (st->_ncalls >= CP_TR_CHAT_CLAUDE_MAX_TOOLS)
        return CM_ERR_LIMIT;
    v = cm_realloc(st->_calls, (st->_ncalls + 1) * sizeof(*v));
    if (!v)
        return CM_ERR_NOMEM;
    st->_calls = v;
    v[st->_ncalls].block = block;
    v[st->_ncalls].args_sent = false;
    *index = st->_ncalls++;
    return CM_OK;
}

static int emit_content(struct cp_tr_chat_claude_stream *st, const char *key, const char *val,
                        struct cm_buf *out)
{
    int rc;

    if (!val[0])
        return CM_OK;
    if ((rc = cp_tr_chat_emit_delta(&st->_ck, key, val, out)))
        return rc;
    st->_content = true;
    return CM_OK;
}

/* Thinking text; a blank line first when an earlier thinking block already said something. */
static int emit_thinking(struct cp_tr_chat_claude_stream *st, const char *val, struct cm_buf *out)
{
    int rc;

    if (!val[0])
        return CM_OK;
    if (!st->_block_text && st->_thinking_text &&
        (rc = emit_content(st, "reasoning_content", "\n\n", out)))
        return rc;
    if ((rc = emit_content(st, "reasoning_content", val, out)))
        return rc;
    st->_block_text = st->_thinking_text = true;
    return CM_OK;
}

static int on_block_start(struct cp_tr_chat_claude_stream *st, const cJSON *ev, struct cm_buf *out)
{
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(ev, "content_block");
    const char *type = cp_tr_str_member(cb, "type", "");
    int64_t block = event_index(ev, -1);
    size_t index = 0;
    int rc;

    st->_block = block;
    st->_block_text = false;
    st->_block_thinking = cp_tr_str_eq(type, "thinking");
    if (cp_tr_str_eq(type, "text")) {
        if ((rc = cp_tr_chat_emit_opener(&st->_ck, out)))
            return rc;
        return emit_content(st, "content", cp_tr_str_member(cb, "text", ""), out);
    }
    if (st->_block_thinking)
        return emit_thinking(st, cp_tr_str_member(cb, "thinking", ""), out);
    if (!cp_tr_str_eq(type, "tool_use") || find_call(st, block, &index))
        return CM_OK; /* server tools, redacted thinking...: nothing for a chat client */
    if ((rc = add_call(st, block, &index)) ||
        (rc = cp_tr_chat_emit_tool_call(&st->_ck, index, cp_tr_str_member(cb, "id", ""),
                                        cp_tr_str_member(cb, "name", ""), "", out)))
        return rc;
    st->_content = true;
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cb, "input")) > 0) {
        /* an input given up front (not Anthropic's streaming, but valid) */
        char *s = NULL;
        if ((rc = cm_json_print(cJSON_GetObjectItemCaseSensitive(cb, "input"), &s, NULL)))
            return rc;
        rc = cp_tr_chat_emit_tool_call(&st->_ck, index, NULL, NULL, s, out);
        cm_free(s);
        st->_calls[index].args_sent = true;
    }
    return rc;
}

static int on_block_delta(struct cp_tr_chat_claude_stream *st, const cJSON *ev, struct cm_buf *out)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "delta");
    const char *type = cp_tr_str_member(d, "type", "");
    struct cp_tr_chat_claude_call *call;
    size_t index = 0;

    if (cp_tr_str_eq(type, "text_delta"))
        return emit_content(st, "content", cp_tr_str_member(d, "text", ""), out);
    if (cp_tr_str_eq(type, "thinking_delta")) {
        int64_t block = event_index(ev, st->_block);
        if (block != st->_block || !st->_block_thinking) { /* a delta without its start */
            st->_block = block;
            st->_block_thinking = true;
            st->_block_text = false;
        }
        return emit_thinking(st, cp_tr_str_member(d, "thinking", ""), out);
    }
    if (cp_tr_str_eq(type, "input_json_delta")) {
        const char *pj = cp_tr_str_member(d, "partial_json", "");
        if (!(call = find_call(st, event_index(ev, -1), &index)) || !pj[0])
            return CM_OK;
        call->args_sent = true;
        return cp_tr_chat_emit_tool_call(&st->_ck, index, NULL, NULL, pj, out);
    }
    return CM_OK; /* signature_delta, citations_delta, ... */
}

static int on_block_stop(struct cp_tr_chat_claude_stream *st, const cJSON *ev, struct cm_buf *out)
{
    int64_t block = event_index(ev, -1);
    struct cp_tr_chat_claude_call *call;
    size_t index = 0;

    if (block == st->_block) {
        st->_block = -1;
        st->_block_thinking = false;
    }
    if (!(call = find_call(st, block, &index)) || call->args_sent)
        return CM_OK;
    call->args_sent = true; /* a tool without arguments: clients want valid JSON */
    return cp_tr_chat_emit_tool_call(&st->_ck, index, NULL, NULL, "{}", out);
}

static int stream_dispatch(struct cp_tr_chat_claude_stream *st, const char *t, size_t tl,
                           const cJSON *ev, struct cm_buf *out, struct cp_tr_err *err)
{
    if (cp_tr_slice_eq(t, tl, "message_start")) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ev, "message");
        usage_merge(&st->_counts, cJSON_GetObjectItemCaseSensitive(msg, "usage"));
        return cp_tr_chat_chunker_set_model(&st->_ck, cp_tr_str_member(msg, "model", NULL));
    }
    if (cp_tr_slice_eq(t, tl, "content_block_start"))
        return on_block_start(st, ev, out);
    if (cp_tr_slice_eq(t, tl, "content_block_delta"))
        return on_block_delta(st, ev, out);
    if (cp_tr_slice_eq(t, tl, "content_block_stop"))
        return on_block_stop(st, ev, out);
    if (cp_tr_slice_eq(t, tl, "message_delta")) {
        const char *sr =
            cp_tr_str_member(cJSON_GetObjectItemCaseSensitive(ev, "delta"), "stop_reason", NULL);
        usage_merge(&st->_counts, cJSON_GetObjectItemCaseSensitive(ev, "usage"));
        if (sr) {
            char *s = cm_strdup(sr);
            if (!s)
                return CM_ERR_NOMEM;
            cm_free(st->_stop_reason);
            st->_stop_reason = s;
        }
        return CM_OK;
    }
    if (cp_tr_slice_eq(t, tl, "message_stop")) {
        struct cp_tr_usage u = usage_of(&st->_counts);
        st->_done = true;
        return cp_tr_chat_emit_finish(&st->_ck, finish_reason(st->_stop_reason, st->_ncalls > 0),
                                      &u, out);
    }
    if (cp_tr_slice_eq(t, tl, "error")) {
        struct cp_tr_err e;
        st->_done = true;
        claude_error(ev, &e);
        return cp_tr_chat_fail(&e, out, err);
    }
    return CM_OK; /* ping and events this client format has no use for */
}

int cp_tr_chat_claude_stream_event(struct cp_tr_chat_claude_stream *st, const char *type,
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
    rc = cp_tr_parse_event(type, type_len, data, data_len, &ev, &t, &tl, &e);
    if (rc == CM_ERR_UPSTREAM) {
        st->_done = true;
        return cp_tr_chat_fail(&e, out, err);
    }
    if (rc) {
        if (err)
            *err = e;
        return rc;
    }
    rc = stream_dispatch(st, t, tl, ev, out, err);
    if (rc && rc != CM_ERR_UPSTREAM)
        cp_tr_server_error(err, rc, cm_err_str(rc));
    cJSON_Delete(ev);
    return rc;
}

int cp_tr_chat_claude_stream_finish(struct cp_tr_chat_claude_stream *st, struct cm_buf *out,
                                    struct cp_tr_err *err)
{
    struct cp_tr_err e;

    if (!st || !out)
        return CM_ERR_INVAL;
    if (st->_done)
        return CM_OK;
    st->_done = true;
    cp_tr_early_eof_error(&e, CP_TR_CLAUDE_EARLY_EOF_MSG);
    return cp_tr_chat_fail(&e, out, err);
}

/* ---- a Message -> chat.completion ---- */

static int message_to_chat(const cJSON *msg, const struct cp_tr_chat_claude_counts *ru,
                           const cJSON *client_req, const char *id, int64_t created, cJSON **out,
                           struct cp_tr_usage *usage_out)
{
    const char *model = cp_tr_str_member(msg, "model", "");
    struct cp_tr_usage u = usage_of(ru);
    struct cp_tr_chat_answer a;
    const cJSON *b;
    int rc;

    if ((rc = cp_tr_chat_answer_init(&a)))
        goto out;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(msg, "content"))
    {
        const char *type = cp_tr_str_member(b, "type", "");
        if (cp_tr_str_eq(type, "text")) {
            rc = cp_tr_chat_answer_text(&a, cp_tr_str_member(b, "text", ""));
        } else if (cp_tr_str_eq(type, "thinking")) {
            rc = cp_tr_chat_answer_reasoning(&a, cp_tr_str_member(b, "thinking", ""));
        } else if (cp_tr_str_eq(type, "tool_use")) {
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
            char *args = NULL;
            if (cJSON_IsString(in) && in->valuestring[0])
                args = cm_strdup(in->valuestring); /* raw pieces from the aggregator */
            else if (cJSON_IsObject(in) || cJSON_IsArray(in))
                rc = cm_json_print(in, &args, NULL);
            else
                args = cm_strdup("{}");
            if (!rc && !args)
                rc = CM_ERR_NOMEM;
            if (!rc)
                rc = cp_tr_chat_answer_tool_call(&a, cp_tr_str_member(b, "id", ""),
                                                 cp_tr_str_member(b, "name", ""), args);
            cm_free(args);
        }
        if (rc)
            goto out;
    }
    if (!model[0])
        model = cp_tr_str_member(client_req, "model", "");
    if ((rc = cp_tr_chat_completion_new(id, model, created, &a,
                                        finish_reason(cp_tr_str_member(msg, "stop_reason", NULL),
                                                      cp_tr_chat_answer_has_calls(&a)),
                                        &u, out)))
        goto out;
    if (usage_out)
        *usage_out = u;
out:
    cp_tr_chat_answer_cleanup(&a);
    return rc;
}

int cp_tr_chat_claude_from_message(const cJSON *msg, const cJSON *client_req, const char *id,
                                   int64_t created, cJSON **out, struct cp_tr_usage *usage,
                                   struct cp_tr_err *err)
{
    struct cp_tr_chat_claude_counts ru = {0, 0, 0, 0, false};
    cJSON *res = NULL;
    struct cp_tr_usage u;
    int rc;

    if (!out || !id) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsObject(msg)) {
        cp_tr_malformed_error(err, "the message is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    if (cp_tr_str_eq(cp_tr_str_member(msg, "type", ""), "error")) {
        struct cp_tr_err e;
        claude_error(msg, &e);
        if (err)
            *err = e;
        return CM_ERR_UPSTREAM;
    }
    usage_merge(&ru, cJSON_GetObjectItemCaseSensitive(msg, "usage"));
    if ((rc = message_to_chat(msg, &ru, client_req, id, created, &res, &u))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        return rc;
    }
    *out = res;
    if (usage)
        *usage = u;
    return CM_OK;
}

/* ---- non-stream aggregation: rebuild the Message from its events ---- */

struct agg_block {
    int64_t index;
    cJSON *block;       /* content_block of content_block_start (owned) */
    struct cm_buf text; /* its text / thinking / partial_json pieces */
};

struct agg {
    cJSON *msg; /* message_start's message, or {} (owned) */
    struct agg_block *blocks;
    size_t nblocks;
    struct cp_tr_chat_claude_counts usage;
};

static struct agg_block *agg_find(struct agg *a, int64_t index)
{
    size_t i;

    for (i = a->nblocks; i-- > 0;)
        if (a->blocks[i].index == index)
            return &a->blocks[i];
    return NULL;
}

/* The message being rebuilt (created on first need). */
static int agg_msg(struct agg *a)
{
    if (a->msg)
        return CM_OK;
    return cm_json_new_object(&a->msg);
}

static int agg_block_start(struct agg *a, cJSON *ev)
{
    cJSON *cb = cJSON_DetachItemFromObjectCaseSensitive(ev, "content_block");
    struct agg_block *v, *nb;
    const char *type;

    if (!cJSON_IsObject(cb)) {
        cJSON_Delete(cb);
        return CM_OK;
    }
    if (a->nblocks >= CP_TR_CHAT_CLAUDE_MAX_BLOCKS) {
        cJSON_Delete(cb);
        return CM_ERR_LIMIT;
    }
    if (!(v = cm_realloc(a->blocks, (a->nblocks + 1) * sizeof(*v)))) {
        cJSON_Delete(cb);
        return CM_ERR_NOMEM;
    }
    a->blocks = v;
    nb = &v[a->nblocks++];
    nb->index = event_index(ev, (int64_t)a->nblocks - 1);
    nb->block = cb;
    cm_buf_init(&nb->text, (size_t)64 << 20);
    type = cp_tr_str_member(cb, "type", "");
    if (cp_tr_str_eq(type, "text"))
        return cm_buf_append_str(&nb->text, cp_tr_str_member(cb, "text", "")) ? CM_ERR_NOMEM
                                                                              : CM_OK;
    if (cp_tr_str_eq(type, "thinking"))
        return cm_buf_append_str(&nb->text, cp_tr_str_member(cb, "thinking", "")) ? CM_ERR_NOMEM
                                                                                  : CM_OK;
    return CM_OK;
}

static int agg_block_delta(struct agg *a, const cJSON *ev)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "delta");
    const char *type = cp_tr_str_member(d, "type", "");
    struct agg_block *b = agg_find(a, event_index(ev, -1));
    const char *piece = NULL;
    int rc;

    if (!b)
        return CM_OK;
    if (cp_tr_str_eq(type, "text_delta"))
        piece = cp_tr_str_member(d, "text", "");
    else if (cp_tr_str_eq(type, "thinking_delta"))
        piece = cp_tr_str_member(d, "thinking", "");
    else if (cp_tr_str_eq(type, "input_json_delta"))
        piece = cp_tr_str_member(d, "partial_json", "");
    if (!piece)
        return CM_OK;
    rc = cm_buf_append_str(&b->text, piece);
    return rc == CM_ERR_LIMIT ? CM_ERR_LIMIT : rc ? CM_ERR_NOMEM : CM_OK;
}

/* cp_tr_body_fn of cp_tr_chat_claude_aggregate(). */
static int agg_on_event(void *ud, const char *t, size_t tl, cJSON *ev, struct cp_tr_err *uerr)
{
    struct agg *a = ud;
    int rc = CM_OK;

    if (cp_tr_slice_eq(t, tl, "message_start")) {
        cJSON *msg = cJSON_DetachItemFromObjectCaseSensitive(ev, "message");
        if (cJSON_IsObject(msg)) {
            usage_merge(&a->usage, cJSON_GetObjectItemCaseSensitive(msg, "usage"));
            cJSON_Delete(a->msg);
            a->msg = msg;
        } else {
            cJSON_Delete(msg);
        }
    } else if (cp_tr_slice_eq(t, tl, "content_block_start")) {
        rc = agg_block_start(a, ev);
    } else if (cp_tr_slice_eq(t, tl, "content_block_delta")) {
        rc = agg_block_delta(a, ev);
    } else if (cp_tr_slice_eq(t, tl, "message_delta")) {
        const cJSON *sr = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(ev, "delta"), "stop_reason");
        usage_merge(&a->usage, cJSON_GetObjectItemCaseSensitive(ev, "usage"));
        if (!(rc = agg_msg(a)) && cJSON_IsString(sr))
            rc = cm_json_set_string(a->msg, "stop_reason", sr->valuestring);
    } else if (cp_tr_slice_eq(t, tl, "message_stop")) {
        rc = 1; /* the terminal event */
    } else if (cp_tr_slice_eq(t, tl, "error")) {
        claude_error(ev, uerr);
        rc = CM_ERR_UPSTREAM;
    }
    return rc;
}

/* The blocks, in index order, with their pieces put back, as a->msg.content. */
static int agg_content(struct agg *a)
{
    cJSON *arr = NULL;
    size_t i, j;
    int rc;

    for (i = 1; i < a->nblocks; i++) { /* insertion sort: stable, blocks arrive in order */
        struct agg_block x = a->blocks[i];
        for (j = i; j > 0 && a->blocks[j - 1].index > x.index; j--)
            a->blocks[j] = a->blocks[j - 1];
        a->blocks[j] = x;
    }
    if ((rc = agg_msg(a)) || (rc = cm_json_new_array(&arr)))
        return rc;
    for (i = 0; i < a->nblocks; i++) {
        struct agg_block *b = &a->blocks[i];
        const char *type = cp_tr_str_member(b->block, "type", "");
        const char *s = b->text.data ? b->text.data : "";
        if (cp_tr_str_eq(type, "text"))
            rc = cm_json_set_stringn(b->block, "text", s, b->text.len);
        else if (cp_tr_str_eq(type, "thinking"))
            rc = cm_json_set_stringn(b->block, "thinking", s, b->text.len);
        else if (cp_tr_str_eq(type, "tool_use") && b->text.len)
            rc = cm_json_set_stringn(b->block, "input", s, b->text.len);
        if (rc)
            goto out;
        rc = cm_json_set_item(arr, NULL, b->block); /* takes the block, also on failure */
        b->block = NULL;
        if (rc)
            goto out;
    }
    rc = cm_json_adopt(a->msg, "content", &arr);
out:
    cJSON_Delete(arr);
    return rc;
}

int cp_tr_chat_claude_aggregate(const char *sse, size_t len, const cJSON *client_req,
                                const char *id, int64_t created, cJSON **out,
                                struct cp_tr_usage *usage, struct cp_tr_err *err)
{
    struct agg a;
    cJSON *res = NULL;
    struct cp_tr_usage u;
    size_t i;
    int rc;

    memset(&a, 0, sizeof(a));
    if (!out || !id || (!sse && len)) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_read_body(sse, len, false, agg_on_event, &a, CP_TR_CLAUDE_EARLY_EOF_MSG,
                              "upstream answer too large (an event or its block count)", err)))
        goto out;
    if ((rc = agg_content(&a)) ||
        (rc = message_to_chat(a.msg, &a.usage, client_req, id, created, &res, &u))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        goto out;
    }
    *out = res;
    if (usage)
        *usage = u;
out:
    for (i = 0; i < a.nblocks; i++) {
        cJSON_Delete(a.blocks[i].block);
        cm_buf_cleanup(&a.blocks[i].text);
    }
    cm_free(a.blocks);
    cJSON_Delete(a.msg);
    return rc;
}
