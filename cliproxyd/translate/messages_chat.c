/* SPDX-License-Identifier: MIT */
/*
 * messages_chat.c - the Anthropic Messages inbound adapter over the OpenAI Chat pivot (pure).
 *
 * Request: a /v1/messages tree becomes a chat.completions request (spec cliproxyapi.md 5.1
 * budget -> level, 5.4 Claude <-> others). Response: a state machine fed one
 * chat.completion.chunk at a time writes Anthropic events framed "event: <type>\ndata:
 * <json>\n\n"; the terminal message_delta waits for stream_end because it needs both the
 * finish reason and the usage chunk that follows it. Invariants of the stream: at most one
 * content block is open, blocks get consecutive indices, nothing follows message_stop or an
 * error event. Not here: model suffixes (the relay resolves them), I/O, clocks.
 */
#include "translate/messages_chat.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"
#include "translate/anthropic_sse.h"
#include "translate/tr_common.h"

#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define BILLING_PREFIX "x-anthropic-billing-header: "
#define TEXT_MAX ((size_t)64 << 20) /* cap on one joined text, data URL or held arguments */

/* ---- small helpers ---- */

/* A cm_buf failure as a request error (LIMIT names @p field). */
static int buf_fail(int rc, const char *field, struct cm_json_err *je)
{
    if (rc == CM_ERR_LIMIT)
        cm_json_err_set(je, rc, field, "is too large");
    return rc;
}

/* Appends @p s to @p b, preceded by @p sep when @p b is not empty. */
static int buf_join(struct cm_buf *b, const char *sep, const char *s)
{
    int rc;

    if (b->len && (rc = cm_buf_append_str(b, sep)))
        return rc;
    return cm_buf_append_str(b, s);
}

/* Appends {"role": @p role, "content": @p text (@p len bytes)} to @p msgs. */
static int add_text_message(cJSON *msgs, const char *role, const char *text, size_t len)
{
    cJSON *m = NULL;
    int rc;

    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", role)) ||
        (rc = cm_json_set_stringn(m, "content", text ? text : "", text ? len : 0))) {
        cJSON_Delete(m);
        return rc;
    }
    return cm_json_adopt(msgs, NULL, &m);
}

/* ---- 5.1: reasoning effort ---- */

/* Anthropic output_config.effort -> a chat reasoning_effort (NULL: not a known effort). */
static const char *effort_level(const char *e)
{
    if (cp_tr_str_eq(e, "low") || cp_tr_str_eq(e, "medium") || cp_tr_str_eq(e, "high"))
        return e;
    if (cp_tr_str_eq(e, "max"))
        return "high"; /* chat has nothing above high */
    return NULL;
}

/* Spec 5.1 budget -> level, capped at high; 0 sets nothing. */
static const char *budget_level(int64_t budget)
{
    if (budget <= 0)
        return NULL;
    if (budget <= 512)
        return "minimal";
    if (budget <= 1024)
        return "low";
    if (budget <= 8192)
        return "medium";
    return "high";
}

/* thinking / output_config.effort -> body.reasoning_effort. */
static int conv_reasoning(const cJSON *req, cJSON *body, struct cm_json_err *je)
{
    cJSON *th = NULL, *oc = NULL;
    const char *type = NULL, *e = NULL, *level = NULL;
    int64_t budget = 0;
    int rc;

    if ((rc = cm_json_opt_object(req, "thinking", &th, je)) ||
        (rc = cm_json_opt_object(req, "output_config", &oc, je)))
        return rc;
    if (oc && (rc = cm_json_opt_string(oc, "effort", NULL, &e, je))) {
        cm_json_err_scope(je, "output_config");
        return rc;
    }
    if (e && !effort_level(e)) {
        cm_json_err_set(je, CM_ERR_INVAL, "output_config.effort",
                        "must be one of low, medium, high, max");
        return CM_ERR_INVAL;
    }
    if (!th) {
        level = e ? effort_level(e) : NULL;
    } else {
        if ((rc = cm_json_get_string(th, "type", &type, je)))
            goto bad;
        if (cp_tr_str_eq(type, "enabled")) {
            if ((rc = cm_json_get_int64(th, "budget_tokens", 0, CM_JSON_INT_MAX, &budget, je)))
                goto bad;
            level = budget_level(budget);
        } else if (cp_tr_str_eq(type, "adaptive") || cp_tr_str_eq(type, "auto")) {
            level = e ? effort_level(e) : "medium";
        } else if (!cp_tr_str_eq(type, "disabled")) {
            cm_json_err_set(je, CM_ERR_INVAL, "type",
                            "must be 'enabled', 'adaptive' or 'disabled', not '%.32s'", type);
            rc = CM_ERR_INVAL;
            goto bad;
        }
    }
    return level ? cm_json_set_string(body, "reasoning_effort", level) : CM_OK;
bad:
    cm_json_err_scope(je, "thinking");
    return rc;
}

/* output_format / output_config.format {type json_schema, schema} -> response_format. */
static int conv_output_format(const cJSON *req, cJSON *body, struct cm_json_err *je)
{
    const cJSON *oc = cJSON_GetObjectItemCaseSensitive(req, "output_config");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(oc, "format");
    const char *path = "output_config.format", *type = NULL;
    cJSON *schema = NULL, *rf = NULL, *js = NULL;
    int rc;

    if (!f || cJSON_IsNull(f)) {
        f = cJSON_GetObjectItemCaseSensitive(req, "output_format");
        path = "output_format";
    }
    if (!f || cJSON_IsNull(f))
        return CM_OK;
    if (!cJSON_IsObject(f)) {
        cm_json_err_set(je, CM_ERR_INVAL, path, "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(f, "type", &type, je)))
        goto bad;
    if (!cp_tr_str_eq(type, "json_schema")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "'%.32s' is not supported (only json_schema)",
                        type);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cm_json_get_object(f, "schema", &schema, je)))
        goto bad;
    if ((rc = cp_tr_typed_new("json_schema", &rf)) || (rc = cm_json_new_object(&js)) ||
        (rc = cm_json_set_string(js, "name", "output")) ||
        (rc = cm_json_set_item(js, "schema", cJSON_Duplicate(schema, 1))) ||
        (rc = cm_json_set_bool(js, "strict", true)) || (rc = cm_json_adopt(rf, "json_schema", &js)))
        goto out;
    rc = cm_json_adopt(body, "response_format", &rf);
    goto out;
bad:
    cm_json_err_scope(je, "%s", path);
out:
    cJSON_Delete(js);
    cJSON_Delete(rf);
    return rc;
}

/* ---- content blocks -> chat parts ---- */

/* "data:<media_type>;base64,<data>" of a base64 source into @p b; *@p mt its media type. */
static int data_url(const cJSON *src, struct cm_buf *b, const char **mt, struct cm_json_err *je)
{
    const char *data = NULL;
    int rc;

    if ((rc = cm_json_get_string(src, "media_type", mt, je)) ||
        (rc = cm_json_get_string(src, "data", &data, je)))
        return rc;
    if ((rc = cm_buf_append_str(b, "data:")) || (rc = cm_buf_append_str(b, *mt)) ||
        (rc = cm_buf_append_str(b, ";base64,")) || (rc = cm_buf_append_str(b, data)))
        return buf_fail(rc, "data", je);
    return CM_OK;
}

/* Appends {"type":"text","text": @p text} to @p parts (nothing for ""). */
static int text_part(cJSON *parts, const char *text)
{
    if (!text[0])
        return CM_OK; /* an empty text block says nothing */
    return cp_tr_typed_append(parts, "text", "text", text, strlen(text));
}

/* An image block -> {"type":"image_url","image_url":{"url"}}. Errors name fields in it. */
static int image_part(const cJSON *blk, cJSON *parts, struct cm_json_err *je)
{
    cJSON *src = NULL, *p = NULL, *iu = NULL;
    const char *st = NULL, *url = NULL, *mt = NULL;
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, TEXT_MAX);
    if ((rc = cm_json_get_object(blk, "source", &src, je)))
        goto out;
    if ((rc = cm_json_get_string(src, "type", &st, je)))
        goto bad;
    if (cp_tr_str_eq(st, "base64")) {
        if ((rc = data_url(src, &b, &mt, je)))
            goto bad;
        url = b.data;
    } else if (cp_tr_str_eq(st, "url")) {
        if ((rc = cm_json_get_string(src, "url", &url, je)))
            goto bad;
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "image source '%.32s' is not supported", st);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cp_tr_typed_new("image_url", &p)) || (rc = cm_json_new_object(&iu)) ||
        (rc = cm_json_set_string(iu, "url", url)) || (rc = cm_json_adopt(p, "image_url", &iu)))
        goto out;
    rc = cm_json_adopt(parts, NULL, &p);
    goto out;
bad:
    cm_json_err_scope(je, "source");
out:
    cJSON_Delete(iu);
    cJSON_Delete(p);
    cm_buf_cleanup(&b);
    return rc;
}

/* A document block -> a file part (base64 PDF) or a text part (text source). */
static int document_part(const cJSON *blk, cJSON *parts, struct cm_json_err *je)
{
    cJSON *src = NULL, *p = NULL, *f = NULL;
    const char *st = NULL, *s = NULL, *mt = NULL;
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, TEXT_MAX);
    if ((rc = cm_json_get_object(blk, "source", &src, je)))
        goto out;
    if ((rc = cm_json_get_string(src, "type", &st, je)))
        goto bad;
    if (cp_tr_str_eq(st, "text")) {
        if ((rc = cm_json_get_string(src, "data", &s, je)))
            goto bad;
        rc = text_part(parts, s);
        goto out;
    }
    if (!cp_tr_str_eq(st, "base64")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "document source '%.32s' is not supported (use base64 PDF or text)", st);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = data_url(src, &b, &mt, je)))
        goto bad;
    if (!cp_tr_str_eq(mt, "application/pdf")) {
        cm_json_err_set(je, CM_ERR_INVAL, "media_type",
                        "'%.48s' documents are not supported (only application/pdf)", mt);
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cp_tr_typed_new("file", &p)) || (rc = cm_json_new_object(&f)) ||
        (rc = cm_json_set_string(f, "filename", "document.pdf")) ||
        (rc = cm_json_set_stringn(f, "file_data", b.data, b.len)) ||
        (rc = cm_json_adopt(p, "file", &f)))
        goto out;
    rc = cm_json_adopt(parts, NULL, &p);
    goto out;
bad:
    cm_json_err_scope(je, "source");
out:
    cJSON_Delete(f);
    cJSON_Delete(p);
    cm_buf_cleanup(&b);
    return rc;
}

/* ---- messages ---- */

/* Moves every item of @p from to the end of @p to. */
static void move_items(cJSON *to, cJSON *from)
{
    cJSON *it;

    while ((it = cJSON_DetachItemFromArray(from, 0)) != NULL)
        cJSON_AddItemToArray(to, it); /* no allocation: cannot fail */
}

/*
 * tool_result -> a "tool" message appended to @p msgs; its images and documents go to
 * @p media (for the user message that follows).
 */
static int conv_tool_result(const cJSON *blk, cJSON *msgs, cJSON *media, struct cm_json_err *je)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(blk, "content"), *p;
    const char *id = NULL;
    cJSON *m = NULL;
    bool is_error = false;
    struct cm_buf text;
    size_t i = 0;
    int rc;

    cm_buf_init(&text, TEXT_MAX);
    if ((rc = cm_json_get_string(blk, "tool_use_id", &id, je)) ||
        (rc = cm_json_opt_bool(blk, "is_error", false, &is_error, je)))
        goto out;
    if (is_error && (rc = cm_buf_append_str(&text, "Error: ")))
        goto out;
    if (cJSON_IsString(content)) {
        if ((rc = cm_buf_append_str(&text, content->valuestring))) {
            rc = buf_fail(rc, "content", je);
            goto out;
        }
    } else if (cJSON_IsArray(content)) {
        size_t start = text.len; /* blocks are joined after the "Error: " prefix */
        if ((rc =
                 cp_tr_check_cap(content, CP_TR_MESSAGES_CHAT_MAX_BLOCKS, "content", "blocks", je)))
            goto out;
        cJSON_ArrayForEach(p, content)
        {
            const char *type = NULL, *s = NULL;
            if ((rc = cm_json_get_string(p, "type", &type, je)))
                goto bad;
            if (cp_tr_str_eq(type, "text")) {
                if ((rc = cm_json_get_string(p, "text", &s, je)))
                    goto bad;
            } else if (cp_tr_str_eq(type, "image")) {
                if ((rc = image_part(p, media, je)))
                    goto bad;
                s = "[image]";
            } else if (cp_tr_str_eq(type, "document")) {
                if ((rc = document_part(p, media, je)))
                    goto bad;
                s = "[document]";
            } else {
                cm_json_err_set(je, CM_ERR_INVAL, "type",
                                "'%.32s' blocks in a tool result are not supported", type);
                rc = CM_ERR_INVAL;
                goto bad;
            }
            if ((text.len > start && (rc = cm_buf_append_str(&text, "\n"))) ||
                (rc = cm_buf_append_str(&text, s))) {
                rc = buf_fail(rc, "text", je);
                goto bad;
            }
            i++;
        }
    } else if (content && !cJSON_IsNull(content)) {
        cm_json_err_set(je, CM_ERR_INVAL, "content", "must be a string or an array of blocks");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "tool")) ||
        (rc = cm_json_set_string(m, "tool_call_id", id)) ||
        (rc = cm_json_set_stringn(m, "content", text.data ? text.data : "", text.len)))
        goto out;
    rc = cm_json_adopt(msgs, NULL, &m);
    goto out;
bad:
    cm_json_err_scope(je, "content[%zu]", i);
out:
    cJSON_Delete(m);
    cm_buf_cleanup(&text);
    return rc;
}

static int unsupported_block(const char *type, const char *role, struct cm_json_err *je)
{
    cm_json_err_set(je, CM_ERR_INVAL, "type",
                    "'%.32s' blocks are not supported for role '%s' over this upstream", type,
                    role);
    return CM_ERR_INVAL;
}

/*
 * A user message with block content: tool messages first (in order), then one user message
 * with the tool results' media followed by the turn's own parts.
 */
static int conv_user_blocks(const cJSON *content, cJSON *msgs, struct cm_json_err *je)
{
    cJSON *media = NULL, *parts = NULL, *m = NULL;
    const cJSON *blk;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_new_array(&media)) || (rc = cm_json_new_array(&parts)))
        goto out;
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = NULL, *text = NULL;
        if ((rc = cm_json_get_string(blk, "type", &type, je)))
            goto bad;
        if (cp_tr_str_eq(type, "text")) {
            if ((rc = cm_json_get_string(blk, "text", &text, je)) || (rc = text_part(parts, text)))
                goto bad;
        } else if (cp_tr_str_eq(type, "image")) {
            if ((rc = image_part(blk, parts, je)))
                goto bad;
        } else if (cp_tr_str_eq(type, "document")) {
            if ((rc = document_part(blk, parts, je)))
                goto bad;
        } else if (cp_tr_str_eq(type, "tool_result")) {
            if ((rc = conv_tool_result(blk, msgs, media, je)))
                goto bad;
        } else {
            rc = unsupported_block(type, "user", je);
            goto bad;
        }
        i++;
    }
    move_items(media, parts);
    if (!cJSON_GetArraySize(media))
        goto out;
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "user")) ||
        (rc = cm_json_adopt(m, "content", &media)))
        goto out;
    rc = cm_json_adopt(msgs, NULL, &m);
    goto out;
bad:
    cm_json_err_scope(je, "content[%zu]", i);
out:
    cJSON_Delete(m);
    cJSON_Delete(parts);
    cJSON_Delete(media);
    return rc;
}

/* tool_use -> a chat tool call appended to @p calls. */
static int conv_tool_use(const cJSON *blk, cJSON *calls, struct cm_json_err *je)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(blk, "input");
    const char *id = NULL, *name = NULL;
    cJSON *c = NULL, *fn = NULL;
    char *args = NULL;
    size_t alen = 0;
    int rc;

    if ((rc = cm_json_get_string(blk, "id", &id, je)) ||
        (rc = cm_json_get_string(blk, "name", &name, je)))
        return rc;
    if (!name[0]) {
        cm_json_err_set(je, CM_ERR_INVAL, "name", "must not be empty");
        return CM_ERR_INVAL;
    }
    if (input && !cJSON_IsNull(input) && !cJSON_IsObject(input)) {
        cm_json_err_set(je, CM_ERR_INVAL, "input", "must be an object");
        return CM_ERR_INVAL;
    }
    if (cJSON_IsObject(input) && (rc = cm_json_print(input, &args, &alen))) {
        if (rc == CM_ERR_NOMEM)
            return rc;
        cm_json_err_set(je, CM_ERR_INVAL, "input", "cannot be encoded as JSON");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_new_object(&c)) || (rc = cm_json_set_string(c, "id", id)) ||
        (rc = cm_json_set_string(c, "type", "function")) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) ||
        (rc = cm_json_set_stringn(fn, "arguments", args ? args : "{}", args ? alen : 2)) ||
        (rc = cm_json_adopt(c, "function", &fn)))
        goto out;
    rc = cm_json_adopt(calls, NULL, &c);
out:
    cm_free(args);
    cJSON_Delete(fn);
    cJSON_Delete(c);
    return rc;
}

/* An assistant message with block content -> one assistant message (none when empty). */
static int conv_assistant_blocks(const cJSON *content, cJSON *msgs, struct cm_json_err *je)
{
    cJSON *calls = NULL, *m = NULL;
    const cJSON *blk;
    struct cm_buf text;
    size_t i = 0;
    int rc;

    cm_buf_init(&text, TEXT_MAX);
    if ((rc = cm_json_new_array(&calls)))
        goto out;
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = NULL, *s = NULL;
        if ((rc = cm_json_get_string(blk, "type", &type, je)))
            goto bad;
        if (cp_tr_str_eq(type, "text")) {
            if ((rc = cm_json_get_string(blk, "text", &s, je)))
                goto bad;
            if ((rc = cm_buf_append_str(&text, s))) {
                rc = buf_fail(rc, "text", je);
                goto bad;
            }
        } else if (cp_tr_str_eq(type, "tool_use")) {
            if ((rc = conv_tool_use(blk, calls, je)))
                goto bad;
        } else if (!cp_tr_str_eq(type, "thinking") && !cp_tr_str_eq(type, "redacted_thinking")) {
            rc = unsupported_block(type, "assistant", je);
            goto bad;
        } /* thinking: Anthropic's signed reasoning means nothing to another upstream */
        i++;
    }
    if (!text.len && !cJSON_GetArraySize(calls))
        goto out;
    if ((rc = cm_json_new_object(&m)) || (rc = cm_json_set_string(m, "role", "assistant")) ||
        (rc = text.len ? cm_json_set_stringn(m, "content", text.data, text.len)
                       : cm_json_set_null(m, "content")) ||
        (cJSON_GetArraySize(calls) && (rc = cm_json_adopt(m, "tool_calls", &calls))))
        goto out;
    rc = cm_json_adopt(msgs, NULL, &m);
    goto out;
bad:
    cm_json_err_scope(je, "content[%zu]", i);
out:
    cJSON_Delete(m);
    cJSON_Delete(calls);
    cm_buf_cleanup(&text);
    return rc;
}

static int conv_message(const cJSON *m, cJSON *msgs, struct cm_json_err *je)
{
    const cJSON *content;
    const char *role = NULL;
    bool assistant;
    int rc;

    if ((rc = cm_json_get_string(m, "role", &role, je)))
        return rc;
    if (!cp_tr_str_eq(role, "user") && !cp_tr_str_eq(role, "assistant")) {
        cm_json_err_set(je, CM_ERR_INVAL, "role", "must be 'user' or 'assistant', not '%.16s'",
                        role);
        return CM_ERR_INVAL;
    }
    assistant = cp_tr_str_eq(role, "assistant");
    content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content)) {
        if (assistant && !content->valuestring[0])
            return CM_OK;
        return add_text_message(msgs, role, content->valuestring, strlen(content->valuestring));
    }
    if (!cJSON_IsArray(content)) {
        cm_json_err_set(je, CM_ERR_INVAL, "content",
                        content ? "must be a string or an array of blocks" : "is required");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(content, CP_TR_MESSAGES_CHAT_MAX_BLOCKS, "content", "blocks", je)))
        return rc;
    return assistant ? conv_assistant_blocks(content, msgs, je)
                     : conv_user_blocks(content, msgs, je);
}

/* ---- system -> one leading system message ---- */

/* @p text without its billing-header lines, joined to @p b after "\n\n". */
static int system_text(const char *text, const char *field, struct cm_buf *b,
                       struct cm_json_err *je)
{
    struct cm_buf t;
    const char *p = text;
    int rc = CM_OK;

    cm_buf_init(&t, TEXT_MAX);
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, BILLING_PREFIX, sizeof(BILLING_PREFIX) - 1) != 0) {
            if ((t.len && (rc = cm_buf_append(&t, "\n", 1))) || (rc = cm_buf_append(&t, p, n)))
                goto fail;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (t.len && (rc = buf_join(b, "\n\n", t.data)))
        goto fail;
    goto out;
fail:
    rc = buf_fail(rc, field, je);
out:
    cm_buf_cleanup(&t);
    return rc;
}

static int conv_system(const cJSON *sys, cJSON *msgs, struct cm_json_err *je)
{
    const cJSON *blk;
    struct cm_buf b;
    size_t i = 0;
    int rc = CM_OK;

    if (!sys || cJSON_IsNull(sys))
        return CM_OK;
    cm_buf_init(&b, TEXT_MAX);
    if (cJSON_IsString(sys)) {
        if ((rc = system_text(sys->valuestring, "system", &b, je)))
            goto out;
    } else if (cJSON_IsArray(sys)) {
        if ((rc = cp_tr_check_cap(sys, CP_TR_MESSAGES_CHAT_MAX_BLOCKS, "system", "blocks", je)))
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
                (rc = system_text(text, "text", &b, je)))
                goto bad;
            i++;
        }
    } else {
        cm_json_err_set(je, CM_ERR_INVAL, "system", "must be a string or an array of text blocks");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (b.len)
        rc = add_text_message(msgs, "system", b.data, b.len);
    goto out;
bad:
    cm_json_err_scope(je, "system[%zu]", i);
out:
    cm_buf_cleanup(&b);
    return rc;
}

/* ---- tools, tool_choice ---- */

/* cp_tr_map_array() callback: one custom tool -> a chat function tool. */
static int conv_tool(const void *ud, const cJSON *t, cJSON **out, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL, *desc = NULL;
    cJSON *o = NULL, *fn = NULL, *schema = NULL;
    int rc;

    (void)ud;
    if (!cJSON_IsObject(t)) {
        cm_json_err_set(je, CM_ERR_INVAL, "", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_opt_string(t, "type", NULL, &type, je)))
        return rc;
    if (type && !cp_tr_str_eq(type, "custom")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type",
                        "server tool '%.48s' is not supported over this upstream", type);
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(t, "name", &name, je)) ||
        (rc = cm_json_opt_string(t, "description", NULL, &desc, je)) ||
        (rc = cm_json_opt_object(t, "input_schema", &schema, je)))
        return rc;
    if (!name[0]) {
        cm_json_err_set(je, CM_ERR_INVAL, "name", "must not be empty");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_typed_new("function", &o)) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) ||
        (desc && (rc = cm_json_set_string(fn, "description", desc))) ||
        (schema && (rc = cm_json_set_item(fn, "parameters", cJSON_Duplicate(schema, 1)))) ||
        (rc = cm_json_adopt(o, "function", &fn))) {
        cJSON_Delete(fn);
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return CM_OK;
}

static int conv_tool_choice(const cJSON *tc, cJSON *body, struct cm_json_err *je)
{
    const char *type = NULL, *name = NULL;
    cJSON *o = NULL, *fn = NULL;
    bool dis = false;
    int rc;

    if (!cJSON_IsObject(tc)) {
        cm_json_err_set(je, CM_ERR_INVAL, "tool_choice", "must be an object");
        return CM_ERR_INVAL;
    }
    if ((rc = cm_json_get_string(tc, "type", &type, je)) ||
        (rc = cm_json_opt_bool(tc, "disable_parallel_tool_use", false, &dis, je)))
        goto bad;
    if (dis && (rc = cm_json_set_bool(body, "parallel_tool_calls", false)))
        return rc;
    if (cp_tr_str_eq(type, "auto") || cp_tr_str_eq(type, "none"))
        return cm_json_set_string(body, "tool_choice", type);
    if (cp_tr_str_eq(type, "any"))
        return cm_json_set_string(body, "tool_choice", "required");
    if (!cp_tr_str_eq(type, "tool")) {
        cm_json_err_set(je, CM_ERR_INVAL, "type", "must be 'auto', 'any', 'tool' or 'none'");
        rc = CM_ERR_INVAL;
        goto bad;
    }
    if ((rc = cm_json_get_string(tc, "name", &name, je)))
        goto bad;
    if ((rc = cp_tr_typed_new("function", &o)) || (rc = cm_json_new_object(&fn)) ||
        (rc = cm_json_set_string(fn, "name", name)) || (rc = cm_json_adopt(o, "function", &fn))) {
        cJSON_Delete(fn);
        cJSON_Delete(o);
        return rc;
    }
    return cm_json_adopt(body, "tool_choice", &o);
bad:
    cm_json_err_scope(je, "tool_choice");
    return rc;
}

/* ---- sampling knobs ---- */

static int conv_knobs(const cJSON *req, cJSON *body, struct cm_json_err *je)
{
    static const struct {
        const char *name;
        double max;
    } nums[] = {{"temperature", DBL_MAX}, {"top_p", 1}};
    const cJSON *v;
    cJSON *stops = NULL, *meta = NULL;
    const char *user = NULL;
    int64_t max_tokens = 0;
    double d = 0;
    bool stream = false;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_opt_bool(req, "stream", false, &stream, je)) ||
        (rc = cm_json_set_bool(body, "stream", stream)) ||
        (rc = cm_json_opt_int64(req, "max_tokens", 1, CM_JSON_INT_MAX, 0, &max_tokens, je)) ||
        (max_tokens && (rc = cm_json_set_int64(body, "max_tokens", max_tokens))))
        return rc;
    for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
        v = cJSON_GetObjectItemCaseSensitive(req, nums[k].name);
        if (!v || cJSON_IsNull(v))
            continue;
        if ((rc = cm_json_get_double(req, nums[k].name, 0, nums[k].max, &d, je)) ||
            (rc = cm_json_set_double(body, nums[k].name, d)))
            return rc;
    }
    if ((rc = cm_json_opt_array(req, "stop_sequences", &stops, je)) ||
        (rc = cp_tr_check_cap(stops, CP_TR_MESSAGES_CHAT_MAX_BLOCKS, "stop_sequences", "entries",
                              je)))
        return rc;
    cJSON_ArrayForEach(v, stops)
    {
        if (!cJSON_IsString(v)) {
            cm_json_err_set(je, CM_ERR_INVAL, "", "must be a string");
            cm_json_err_scope(je, "stop_sequences[%zu]", i);
            return CM_ERR_INVAL;
        }
        i++;
    }
    if (i && (rc = cm_json_set_item(body, "stop", cJSON_Duplicate(stops, 1))))
        return rc;
    if ((rc = cm_json_opt_object(req, "metadata", &meta, je)))
        return rc;
    if (meta && (rc = cm_json_opt_string(meta, "user_id", NULL, &user, je))) {
        cm_json_err_scope(je, "metadata");
        return rc;
    }
    if (user && user[0] && (rc = cm_json_set_string(body, "user", user)))
        return rc;
    return CM_OK;
}

/* ---- the request ---- */

/* cp_tr_request() build step: @p req (an object) -> the chat request in *@p out. */
static int build_request(const cJSON *req, cJSON **out, struct cm_json_err *je)
{
    cJSON *body = NULL, *msgs = NULL, *messages = NULL, *mcp = NULL, *arr = NULL;
    const cJSON *m, *tools, *tc;
    const char *model = NULL;
    size_t i = 0;
    int rc;

    if ((rc = cm_json_get_string(req, "model", &model, je)) ||
        (rc = cm_json_get_array(req, "messages", &messages, je)) ||
        (rc = cm_json_opt_array(req, "mcp_servers", &mcp, je)))
        goto out;
    if (!model[0]) {
        cm_json_err_set(je, CM_ERR_INVAL, "model", "must not be empty");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (cJSON_GetArraySize(mcp) > 0) {
        cm_json_err_set(je, CM_ERR_INVAL, "mcp_servers", "is not supported over this upstream");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((rc = cp_tr_check_messages(messages, CP_TR_MESSAGES_CHAT_MAX_MESSAGES, je)) ||
        (rc = cm_json_new_object(&body)) || (rc = cm_json_set_string(body, "model", model)) ||
        (rc = cm_json_new_array(&msgs)) ||
        (rc = conv_system(cJSON_GetObjectItemCaseSensitive(req, "system"), msgs, je)))
        goto out;
    cJSON_ArrayForEach(m, messages)
    {
        if ((rc = conv_message(m, msgs, je))) {
            cm_json_err_scope(je, "messages[%zu]", i);
            goto out;
        }
        i++;
    }
    if ((rc = cm_json_adopt(body, "messages", &msgs)) || (rc = conv_knobs(req, body, je)) ||
        (rc = conv_reasoning(req, body, je)) || (rc = conv_output_format(req, body, je)))
        goto out;
    tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        if ((rc = cp_tr_map_array(tools, "tools", CP_TR_MESSAGES_CHAT_MAX_TOOLS, conv_tool, NULL,
                                  &arr, je)))
            goto out;
        if (cJSON_GetArraySize(arr) && (rc = cm_json_adopt(body, "tools", &arr)))
            goto out;
    }
    tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    if (tc && !cJSON_IsNull(tc) && (rc = conv_tool_choice(tc, body, je)))
        goto out;
    *out = body;
    body = NULL;
out:
    cJSON_Delete(arr);
    cJSON_Delete(msgs);
    cJSON_Delete(body);
    return rc;
}

int cp_tr_messages_chat_request(const cJSON *req, cJSON **chat, struct cp_tr_err *err)
{
    int rc = cp_tr_request(req, chat, err, build_request);

    /* "field 'x.y' must ..." -> "x.y: must ...": the message starts with the path */
    if (rc && err && err->status == 400 && err->field[0]) {
        char prefix[CP_TR_ERR_FIELD_MAX + 16], msg[CP_TR_ERR_MSG_MAX];
        size_t n = (size_t)snprintf(prefix, sizeof(prefix), "field '%s' ", err->field);
        if (n < sizeof(prefix) && strncmp(err->msg, prefix, n) == 0) {
            snprintf(msg, sizeof(msg), "%s: %s", err->field, err->msg + n);
            memcpy(err->msg, msg, sizeof(msg));
        }
    }
    return rc;
}

/* ---- responses: shared by the stream and the non-stream answer ---- */

/* Token counts of a chat "usage" object. */
struct usage {
    int64_t prompt, completion, cached;
};

static int64_t count_of(const cJSON *o, const char *name)
{
    int64_t v = 0;

    if (cm_json_to_int64(cJSON_GetObjectItemCaseSensitive(o, name), 0, CM_JSON_INT_MAX, &v))
        return 0;
    return v;
}

/* True (and *@p u set) when @p usage is a usage object. */
static bool parse_usage(const cJSON *usage, struct usage *u)
{
    if (!cJSON_IsObject(usage))
        return false;
    u->prompt = count_of(usage, "prompt_tokens");
    u->completion = count_of(usage, "completion_tokens");
    u->cached =
        count_of(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details"), "cached_tokens");
    return true;
}

/* Anthropic usage {input_tokens (uncached), output_tokens, cache_read_input_tokens[, 0]}. */
static int put_usage(cJSON *parent, const struct usage *u, bool creation)
{
    cJSON *us = NULL;
    int64_t in = u->prompt > u->cached ? u->prompt - u->cached : 0;
    int rc;

    if ((rc = cm_json_new_object(&us)) || (rc = cm_json_set_int64(us, "input_tokens", in)) ||
        (rc = cm_json_set_int64(us, "output_tokens", u->completion)) ||
        (rc = cm_json_set_int64(us, "cache_read_input_tokens", u->cached)) ||
        (creation && (rc = cm_json_set_int64(us, "cache_creation_input_tokens", 0)))) {
        cJSON_Delete(us);
        return rc;
    }
    return cm_json_adopt(parent, "usage", &us);
}

/* Anthropic stop_reason for chat finish_reason @p fr (spec 5.4; NULL/"" = none seen). */
static const char *stop_reason(const char *fr, bool had_calls)
{
    if (cp_tr_str_eq(fr, "length"))
        return "max_tokens";
    if (cp_tr_str_eq(fr, "tool_calls") || cp_tr_str_eq(fr, "function_call") || had_calls)
        return "tool_use";
    return "end_turn"; /* stop, content_filter, none */
}

/* The reasoning text of a delta / message: reasoning_content, else reasoning. */
static const char *reasoning_of(const cJSON *o)
{
    const char *s = cp_tr_str_member(o, "reasoning_content", NULL);

    return s && s[0] ? s : cp_tr_str_member(o, "reasoning", "");
}

/* ---- the stream ---- */

enum { BLK_NONE = 0, BLK_THINKING, BLK_TEXT, BLK_TOOL };

/* One streamed tool call, keyed by its chat index. */
struct call {
    int64_t key;        /* tool_calls[].index */
    char *id;           /* owned; NULL until seen */
    char *name;         /* owned; NULL until seen (the block starts with it) */
    struct cm_buf args; /* arguments that came before the block could start */
    bool started;
};

struct cp_tr_messages_chat_stream {
    char *id;           /* message id (owned) */
    char *model;        /* the request's model, then the first chunk's (owned) */
    int64_t created;    /* kept for symmetry with the other adapters */
    bool started;       /* message_start went out */
    bool has_content;   /* a chunk carried text, reasoning or a tool call */
    bool done;          /* end or fail was handled: ignore the rest */
    int open;           /* kind of the open block (BLK_NONE = none) */
    size_t open_index;  /* its index */
    size_t open_call;   /* for a tool_use block: its entry in calls */
    size_t next_index;  /* index of the next content block */
    char finish[32];    /* the last finish_reason ("" = none) */
    struct usage usage; /* the last usage seen */
    struct call *calls; /* owned */
    size_t ncalls;
};

int cp_tr_messages_chat_stream_new(const cJSON *req, const char *id, int64_t created,
                                   struct cp_tr_messages_chat_stream **out)
{
    struct cp_tr_messages_chat_stream *st;

    if (!id || !out)
        return CM_ERR_INVAL;
    if (!(st = cm_calloc(1, sizeof(*st))))
        return CM_ERR_NOMEM;
    st->created = created;
    if (!(st->id = cm_strdup(id)) || !(st->model = cm_strdup(cp_tr_str_member(req, "model", "")))) {
        cp_tr_messages_chat_stream_free(st);
        return CM_ERR_NOMEM;
    }
    *out = st;
    return CM_OK;
}

void cp_tr_messages_chat_stream_free(struct cp_tr_messages_chat_stream *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->ncalls; i++) {
        cm_free(st->calls[i].id);
        cm_free(st->calls[i].name);
        cm_buf_cleanup(&st->calls[i].args);
    }
    cm_free(st->calls);
    cm_free(st->id);
    cm_free(st->model);
    cm_free(st);
}

bool cp_tr_messages_chat_stream_has_content(const struct cp_tr_messages_chat_stream *st)
{
    return st && st->has_content;
}

/* Appends "event: <data.type>\ndata: <json>\n\n" and deletes @p obj. */
static int emit(cJSON *obj, struct cm_buf *out)
{
    return cp_tr_anth_emit(obj, out);
}

/* message_start, once. */
static int ensure_started(struct cp_tr_messages_chat_stream *st, struct cm_buf *out)
{
    int rc;
    if (st->started)
        return CM_OK;
    rc = cp_tr_anth_message_start(st->id, st->model, out);
    if (!rc)
        st->started = true;
    return rc;
}

/* content_block_stop for the open block, if any. */
static int close_block(struct cp_tr_messages_chat_stream *st, struct cm_buf *out)
{
    if (st->open == BLK_NONE)
        return CM_OK;
    st->open = BLK_NONE;
    return cp_tr_anth_block_stop(st->open_index, out);
}

/* Stops the open block and starts one of @p kind with @p block (taken, also on error). */
static int open_block(struct cp_tr_messages_chat_stream *st, int kind, cJSON *block,
                      struct cm_buf *out)
{
    cJSON *ev = NULL;
    int rc;

    if ((rc = close_block(st, out)) || (rc = cp_tr_typed_new("content_block_start", &ev)) ||
        (rc = cm_json_set_int64(ev, "index", (int64_t)st->next_index))) {
        cJSON_Delete(block);
        cJSON_Delete(ev);
        return rc;
    }
    if ((rc = cm_json_adopt(ev, "content_block", &block))) {
        cJSON_Delete(ev);
        return rc;
    }
    st->open = kind;
    st->open_index = st->next_index++;
    return emit(ev, out);
}

/* content_block_delta on the open block: {"type": @p dtype, @p key: @p val (@p n bytes)}. */
static int emit_delta(struct cp_tr_messages_chat_stream *st, const char *dtype, const char *key,
                      const char *val, size_t n, struct cm_buf *out)
{
    cJSON *ev = NULL, *d = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("content_block_delta", &ev)) ||
        (rc = cm_json_set_int64(ev, "index", (int64_t)st->open_index)) ||
        (rc = cp_tr_typed_new(dtype, &d)) || (rc = cm_json_set_stringn(d, key, val, n)) ||
        (rc = cm_json_adopt(ev, "delta", &d))) {
        cJSON_Delete(d);
        cJSON_Delete(ev);
        return rc;
    }
    return emit(ev, out);
}

/* A text or thinking piece @p s: opens its block when another one is open. */
static int on_text(struct cp_tr_messages_chat_stream *st, int kind, const char *s,
                   struct cm_buf *out)
{
    const char *key = kind == BLK_TEXT ? "text" : "thinking";
    cJSON *b = NULL;
    int rc;

    if (!s[0])
        return CM_OK;
    st->has_content = true;
    if (st->open != kind) {
        if ((rc = cp_tr_typed_new(key, &b)) || (rc = cm_json_set_string(b, key, "")) ||
            (kind == BLK_THINKING && (rc = cm_json_set_string(b, "signature", "")))) {
            cJSON_Delete(b);
            return rc;
        }
        if ((rc = open_block(st, kind, b, out)))
            return rc;
    }
    return emit_delta(st, kind == BLK_TEXT ? "text_delta" : "thinking_delta", key, s, strlen(s),
                      out);
}

/* Starts the tool_use block of call @p i and sends the arguments held so far. */
static int start_call(struct cp_tr_messages_chat_stream *st, size_t i, struct cm_buf *out)
{
    struct call *c = &st->calls[i];
    char fallback[40];
    cJSON *b = NULL;
    int rc;

    snprintf(fallback, sizeof(fallback), "call_%" PRId64, c->key);
    if ((rc = cp_tr_typed_new("tool_use", &b)) ||
        (rc = cm_json_set_string(b, "id", c->id ? c->id : fallback)) ||
        (rc = cm_json_set_string(b, "name", c->name ? c->name : "")) ||
        (rc = cm_json_set_item(b, "input", cJSON_CreateObject()))) {
        cJSON_Delete(b);
        return rc;
    }
    if ((rc = open_block(st, BLK_TOOL, b, out)))
        return rc;
    c->started = true;
    st->open_call = i;
    if (!c->args.len)
        return CM_OK;
    rc = emit_delta(st, "input_json_delta", "partial_json", c->args.data, c->args.len, out);
    cm_buf_cleanup(&c->args);
    return rc;
}

/* The call keyed @p key, added when new (CM_ERR_LIMIT past the cap). */
static int find_call(struct cp_tr_messages_chat_stream *st, int64_t key, size_t *i)
{
    struct call *grown;

    for (size_t k = 0; k < st->ncalls; k++) {
        if (st->calls[k].key == key) {
            *i = k;
            return CM_OK;
        }
    }
    if (st->ncalls >= CP_TR_MESSAGES_CHAT_MAX_TOOLS)
        return CM_ERR_LIMIT;
    if (!(grown = cm_realloc(st->calls, (st->ncalls + 1) * sizeof(*grown))))
        return CM_ERR_NOMEM;
    st->calls = grown;
    memset(&grown[st->ncalls], 0, sizeof(*grown));
    grown[st->ncalls].key = key;
    cm_buf_init(&grown[st->ncalls].args, TEXT_MAX);
    *i = st->ncalls++;
    return CM_OK;
}

/* Keeps a copy of @p s in *@p dst unless it is set or @p s is empty. */
static int keep_once(char **dst, const char *s)
{
    if (*dst || !s || !s[0])
        return CM_OK;
    return (*dst = cm_strdup(s)) ? CM_OK : CM_ERR_NOMEM;
}

/* One delta.tool_calls entry @p tc (position @p pos). */
static int on_tool_call(struct cp_tr_messages_chat_stream *st, const cJSON *tc, size_t pos,
                        struct cm_buf *out)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *args = cp_tr_str_member(fn, "arguments", "");
    int64_t key = (int64_t)pos;
    struct call *c;
    size_t i = 0;
    int rc;

    if (!cJSON_IsObject(tc))
        return CM_OK;
    if (cm_json_to_int64(cJSON_GetObjectItemCaseSensitive(tc, "index"), 0, CM_JSON_INT_MAX, &key))
        key = (int64_t)pos;
    if ((rc = find_call(st, key, &i)))
        return rc;
    c = &st->calls[i];
    st->has_content = true;
    if ((rc = keep_once(&c->id, cp_tr_str_member(tc, "id", NULL))) ||
        (rc = keep_once(&c->name, cp_tr_str_member(fn, "name", NULL))))
        return rc;
    if (!c->started) {
        if (args[0] && (rc = cm_buf_append_str(&c->args, args)))
            return rc;
        return c->name ? start_call(st, i, out) : CM_OK;
    }
    if (!args[0] || st->open != BLK_TOOL || st->open_call != i)
        return CM_OK; /* its block was stopped: Anthropic cannot reopen it */
    return emit_delta(st, "input_json_delta", "partial_json", args, strlen(args), out);
}

static int on_chunk(struct cp_tr_messages_chat_stream *st, const cJSON *chunk, struct cm_buf *out)
{
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    const char *model = cp_tr_str_member(chunk, "model", NULL);
    const cJSON *tc;
    size_t pos = 0;
    int rc;

    if (!st->started && model && model[0]) {
        char *m = cm_strdup(model);
        if (!m)
            return CM_ERR_NOMEM;
        cm_free(st->model);
        st->model = m;
    }
    if ((rc = ensure_started(st, out)))
        return rc;
    parse_usage(cJSON_GetObjectItemCaseSensitive(chunk, "usage"), &st->usage);
    if (cJSON_IsObject(delta)) {
        if ((rc = on_text(st, BLK_THINKING, reasoning_of(delta), out)) ||
            (rc = on_text(st, BLK_TEXT, cp_tr_str_member(delta, "content", ""), out)))
            return rc;
        cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"))
        {
            if ((rc = on_tool_call(st, tc, pos++, out)))
                return rc;
        }
    }
    if (cJSON_IsString(fr) && fr->valuestring[0])
        snprintf(st->finish, sizeof(st->finish), "%s", fr->valuestring);
    return CM_OK;
}

int cp_tr_messages_chat_stream_chunk(struct cp_tr_messages_chat_stream *st, const cJSON *chunk,
                                     struct cm_buf *out, struct cp_tr_err *err)
{
    int rc;

    if (!st || !out) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (st->done || !cJSON_IsObject(chunk) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(chunk, "choices")))
        return CM_OK; /* after the end, or malformed: nothing to say */
    rc = on_chunk(st, chunk, out);
    if (rc == CM_ERR_LIMIT)
        cp_tr_err_set(err, rc, 502, "", "server_error", "bad_upstream_event",
                      "upstream response is too large (more than %d tool calls or too much text)",
                      CP_TR_MESSAGES_CHAT_MAX_TOOLS);
    else if (rc)
        cp_tr_server_error(err, rc, rc == CM_ERR_NOMEM ? "out of memory" : cm_err_str(rc));
    return rc;
}

int cp_tr_messages_chat_stream_end(struct cp_tr_messages_chat_stream *st, struct cm_buf *out)
{
    cJSON *md = NULL, *d = NULL, *ms = NULL;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    if (st->done)
        return CM_OK;
    st->done = true;
    if ((rc = ensure_started(st, out)) || (rc = close_block(st, out)))
        goto out;
    for (size_t i = 0; i < st->ncalls; i++) {
        if (!st->calls[i].started && (rc = start_call(st, i, out)))
            goto out;
    }
    if ((rc = close_block(st, out)) || (rc = cp_tr_typed_new("message_delta", &md)) ||
        (rc = cm_json_new_object(&d)) ||
        (rc = cm_json_set_string(d, "stop_reason", stop_reason(st->finish, st->ncalls > 0))) ||
        (rc = cm_json_set_null(d, "stop_sequence")) || (rc = cm_json_adopt(md, "delta", &d)) ||
        (rc = put_usage(md, &st->usage, false)))
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

/* The Anthropic error type for an HTTP status (what SDKs switch on). */
static const char *anthropic_error_type(unsigned status)
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
    case 504:
        return "timeout_error";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return "api_error";
    }
}

int cp_tr_messages_chat_stream_fail(struct cp_tr_messages_chat_stream *st,
                                    const struct cp_tr_err *e, struct cm_buf *out)
{
    cJSON *o = NULL, *eo = NULL;
    int rc;

    if (!st || !e || !out)
        return CM_ERR_INVAL;
    if (st->done)
        return CM_OK;
    st->done = true;
    if ((rc = cp_tr_typed_new("error", &o)) || (rc = cm_json_new_object(&eo)) ||
        (rc = cm_json_set_string(eo, "type", anthropic_error_type(e->status))) ||
        (rc = cm_json_set_string(eo, "message", e->msg[0] ? e->msg : "upstream error")) ||
        (rc = cm_json_adopt(o, "error", &eo)))
        goto out;
    rc = emit(o, out);
    o = NULL;
out:
    cJSON_Delete(eo);
    cJSON_Delete(o);
    return rc;
}

/* ---- non-stream ---- */

/* The text of a chat message content: a string, or the text of an array of parts. */
static int message_text(const cJSON *msg, struct cm_buf *b)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content"), *p;
    int rc;

    if (cJSON_IsString(content))
        return cm_buf_append_str(b, content->valuestring);
    if (!cJSON_IsArray(content))
        content = NULL;
    cJSON_ArrayForEach(p, content)
    {
        if (cp_tr_str_eq(cp_tr_str_member(p, "type", ""), "text") &&
            (rc = cm_buf_append_str(b, cp_tr_str_member(p, "text", ""))))
            return rc;
    }
    if (!b->len)
        return cm_buf_append_str(b, cp_tr_str_member(msg, "refusal", ""));
    return CM_OK;
}

/* A chat tool call -> a tool_use block appended to @p content. */
static int add_tool_use(cJSON *content, const cJSON *tc, size_t pos)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *id = cp_tr_str_member(tc, "id", "");
    cJSON *o = NULL, *input = NULL;
    char fallback[40];
    int rc;

    snprintf(fallback, sizeof(fallback), "call_%zu", pos);
    if ((rc = cp_tr_args_object(cp_tr_str_member(fn, "arguments", ""), &input)))
        return rc;
    if ((rc = cp_tr_typed_new("tool_use", &o)) ||
        (rc = cm_json_set_string(o, "id", id[0] ? id : fallback)) ||
        (rc = cm_json_set_string(o, "name", cp_tr_str_member(fn, "name", ""))) ||
        (rc = cm_json_adopt(o, "input", &input)))
        goto out;
    rc = cm_json_adopt(content, NULL, &o);
out:
    cJSON_Delete(input);
    cJSON_Delete(o);
    return rc;
}

static int build_answer(const cJSON *req, const cJSON *completion, const char *id, cJSON **out)
{
    const cJSON *choice =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(completion, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), *tc;
    const char *model = cp_tr_str_member(completion, "model", "");
    const char *reasoning = reasoning_of(msg);
    struct usage u = {0, 0, 0};
    cJSON *ans = NULL, *content = NULL, *b = NULL;
    struct cm_buf text;
    size_t ncalls = 0;
    int rc;

    cm_buf_init(&text, TEXT_MAX);
    if (!model[0])
        model = cp_tr_str_member(req, "model", "");
    if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > CP_TR_MESSAGES_CHAT_MAX_TOOLS) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    if ((rc = cm_json_new_array(&content)))
        goto out;
    if (reasoning[0] &&
        ((rc = cp_tr_typed_new("thinking", &b)) ||
         (rc = cm_json_set_string(b, "thinking", reasoning)) ||
         (rc = cm_json_set_string(b, "signature", "")) || (rc = cm_json_adopt(content, NULL, &b))))
        goto out;
    if ((rc = message_text(msg, &text)) ||
        (text.len && (rc = cp_tr_typed_append(content, "text", "text", text.data, text.len))))
        goto out;
    if (!cJSON_IsArray(calls))
        calls = NULL;
    cJSON_ArrayForEach(tc, calls)
    {
        if (cJSON_IsObject(tc) && (rc = add_tool_use(content, tc, ncalls++)))
            goto out;
    }
    parse_usage(cJSON_GetObjectItemCaseSensitive(completion, "usage"), &u);
    if ((rc = cm_json_new_object(&ans)) || (rc = cm_json_set_string(ans, "id", id)) ||
        (rc = cm_json_set_string(ans, "type", "message")) ||
        (rc = cm_json_set_string(ans, "role", "assistant")) ||
        (rc = cm_json_set_string(ans, "model", model)) ||
        (rc = cm_json_adopt(ans, "content", &content)) ||
        (rc = cm_json_set_string(
             ans, "stop_reason",
             stop_reason(cp_tr_str_member(choice, "finish_reason", NULL), ncalls > 0))) ||
        (rc = cm_json_set_null(ans, "stop_sequence")) || (rc = put_usage(ans, &u, true)))
        goto out;
    *out = ans;
    ans = NULL;
out:
    cJSON_Delete(b);
    cJSON_Delete(content);
    cJSON_Delete(ans);
    cm_buf_cleanup(&text);
    return rc;
}

int cp_tr_messages_chat_response(const cJSON *req, const cJSON *completion, const char *id,
                                 int64_t created, cJSON **out, struct cp_tr_err *err)
{
    int rc;

    (void)created;
    if (!id || !out) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsObject(completion)) {
        cp_tr_malformed_error(err, "the completion is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    rc = build_answer(req, completion, id, out);
    if (rc == CM_ERR_LIMIT)
        cp_tr_err_set(err, rc, 502, "", "server_error", "bad_upstream_event",
                      "upstream response is too large (more than %d tool calls or too much text)",
                      CP_TR_MESSAGES_CHAT_MAX_TOOLS);
    else if (rc)
        cp_tr_server_error(err, rc, rc == CM_ERR_NOMEM ? "out of memory" : cm_err_str(rc));
    return rc;
}
