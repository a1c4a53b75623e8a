/* SPDX-License-Identifier: MIT */
/*
 * usage.c - usage and text counts of upstream answers (see usage.h). Each event's data is
 * parsed with the bounded parser; the event's kind comes from its JSON "type" when it has
 * one (Responses and Anthropic streams carry both), else from the SSE event name.
 */
#include "relay/usage.h"

#include "cm/err.h"
#include "cm/json.h"

#include <string.h>

#define EVENT_MAX ((size_t)16 << 20)

void mt_relay_usage_init(struct mt_relay_usage *s, enum mt_relay_fmt f)
{
    memset(s, 0, sizeof *s);
    s->fmt = f;
    s->u.semantic = f == MT_RELAY_MESSAGES ? MT_USAGE_ANTHROPIC : MT_USAGE_OPENAI;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

/* a non-negative count, or -1 when absent or not a count */
static int64_t count(const cJSON *o, const char *k)
{
    int64_t v;
    if (cm_json_to_int64(get(o, k), 0, MT_PRICING_QUOTA_MAX, &v) != CM_OK)
        return -1;
    return v;
}

/* @p v when it is an array, else NULL (for cJSON_ArrayForEach) */
static const cJSON *array(const cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

static int64_t nz(int64_t v)
{
    return v < 0 ? 0 : v;
}

static void add_est(struct mt_relay_usage *s, int64_t n)
{
    s->completion_est =
        s->completion_est > MT_PRICING_QUOTA_MAX - n ? MT_PRICING_QUOTA_MAX : s->completion_est + n;
}

static void text(struct mt_relay_usage *s, const cJSON *v)
{
    if (cJSON_IsString(v) && v->valuestring)
        add_est(s, mt_pricing_estimate_tokens(v->valuestring, strlen(v->valuestring)));
}

static void tool_call(struct mt_relay_usage *s)
{
    s->tool_calls++;
    add_est(s, MT_PRICING_TOOL_CALL_TOKENS);
}

/* OpenAI-shaped usage (chat, completions, embeddings, responses) */
static void openai_usage(struct mt_relay_usage *s, const cJSON *u)
{
    int64_t p = count(u, "prompt_tokens"), c = count(u, "completion_tokens");
    const cJSON *pd = get(u, "prompt_tokens_details"), *cd = get(u, "completion_tokens_details");
    if (p < 0 && c < 0) { /* Responses names */
        p = count(u, "input_tokens");
        c = count(u, "output_tokens");
        pd = get(u, "input_tokens_details");
        cd = get(u, "output_tokens_details");
    }
    if (p < 0 && c < 0)
        return;
    memset(&s->u, 0, sizeof s->u);
    s->u.semantic = MT_USAGE_OPENAI;
    s->u.prompt_tokens = nz(p);
    s->u.completion_tokens = nz(c);
    s->u.cached_tokens = nz(count(pd, "cached_tokens"));
    s->u.cache_creation_tokens = nz(count(pd, "cached_creation_tokens"));
    s->u.image_tokens = nz(count(pd, "image_tokens"));
    s->u.audio_prompt_tokens = nz(count(pd, "audio_tokens"));
    s->u.audio_completion_tokens = nz(count(cd, "audio_tokens"));
    s->have = 1;
}

/* Anthropic usage; @p merge: a message_delta updating what message_start said */
static void claude_usage(struct mt_relay_usage *s, const cJSON *u, int merge)
{
    int64_t in = count(u, "input_tokens"), out = count(u, "output_tokens");
    int64_t rd = count(u, "cache_read_input_tokens"), wr = count(u, "cache_creation_input_tokens");
    int64_t w1h = count(get(u, "cache_creation"), "ephemeral_1h_input_tokens");
    if (!cJSON_IsObject(u))
        return;
    if (!merge || !s->have) {
        memset(&s->u, 0, sizeof s->u);
        s->u.semantic = MT_USAGE_ANTHROPIC;
    }
    if (in >= 0 && (!merge || in > 0))
        s->u.prompt_tokens = in;
    if (out >= 0)
        s->u.completion_tokens = out;
    if (rd >= 0 && (!merge || rd > 0))
        s->u.cached_tokens = rd;
    if (wr >= 0 && (!merge || wr > 0))
        s->u.cache_creation_tokens = wr;
    if (w1h >= 0 && (!merge || w1h > 0))
        s->u.cache_creation_tokens_1h = w1h;
    s->have = 1;
}

/* chat / completions choices: delta (stream) or message (answer) text and tool calls */
static void choices(struct mt_relay_usage *s, const cJSON *root)
{
    const cJSON *ch = get(root, "choices"), *c;
    cJSON_ArrayForEach(c, array(ch))
    {
        const cJSON *m = get(c, "delta"), *tc, *t;
        if (!m)
            m = get(c, "message");
        text(s, get(c, "text"));
        text(s, get(m, "content"));
        text(s, get(m, "reasoning_content"));
        text(s, get(m, "reasoning"));
        tc = get(m, "tool_calls");
        cJSON_ArrayForEach(t, array(tc))
        {
            const cJSON *id = get(t, "id");
            if (cJSON_IsString(id) && id->valuestring[0])
                tool_call(s);
            text(s, get(get(t, "function"), "arguments"));
        }
    }
}

/* a Responses "output" array (answer, or response.completed's response) */
static void responses_output(struct mt_relay_usage *s, const cJSON *resp)
{
    const cJSON *out = get(resp, "output"), *it, *c;
    cJSON_ArrayForEach(it, array(out))
    {
        const cJSON *type = get(it, "type"), *content = get(it, "content");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "function_call") == 0) {
            tool_call(s);
            text(s, get(it, "arguments"));
        }
        cJSON_ArrayForEach(c, array(content)) text(s, get(c, "text"));
        content = get(it, "summary");
        cJSON_ArrayForEach(c, array(content)) text(s, get(c, "text"));
    }
}

/* an Anthropic "content" array */
static void claude_content(struct mt_relay_usage *s, const cJSON *msg)
{
    const cJSON *content = get(msg, "content"), *c;
    cJSON_ArrayForEach(c, array(content))
    {
        const cJSON *type = get(c, "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "tool_use") == 0)
            tool_call(s);
        text(s, get(c, "text"));
        text(s, get(c, "thinking"));
    }
}

int mt_relay_usage_body(struct mt_relay_usage *s, const char *body, size_t len)
{
    struct cm_json_parse_opts po = {.max_depth = 128, .max_size = (size_t)64 << 20};
    cJSON *root = NULL;

    if (!s || !body || cm_json_parse(body, len, &po, &root, NULL) != CM_OK)
        return CM_ERR_PARSE;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return CM_ERR_PARSE;
    }
    switch (s->fmt) {
    case MT_RELAY_CHAT:
    case MT_RELAY_COMPLETIONS:
    case MT_RELAY_EMBEDDINGS:
        choices(s, root);
        if (cJSON_IsObject(get(root, "usage")))
            openai_usage(s, get(root, "usage"));
        break;
    case MT_RELAY_RESPONSES:
        responses_output(s, root);
        if (cJSON_IsObject(get(root, "usage")))
            openai_usage(s, get(root, "usage"));
        break;
    case MT_RELAY_MESSAGES:
        claude_content(s, root);
        if (cJSON_IsObject(get(root, "usage")))
            claude_usage(s, get(root, "usage"), 0);
        break;
    }
    if (get(root, "error") && !get(root, "choices") && !get(root, "output"))
        s->error_event = 1;
    s->finished = 1;
    cJSON_Delete(root);
    return CM_OK;
}

static int is(const char *t, const char *want)
{
    return t && strcmp(t, want) == 0;
}

static void responses_event(struct mt_relay_usage *s, const char *t, const cJSON *d)
{
    if (is(t, "response.output_text.delta") || is(t, "response.reasoning_summary_text.delta") ||
        is(t, "response.reasoning_text.delta") || is(t, "response.function_call_arguments.delta") ||
        is(t, "response.refusal.delta")) {
        text(s, get(d, "delta"));
    } else if (is(t, "response.output_item.added")) {
        const cJSON *type = get(get(d, "item"), "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "function_call") == 0)
            tool_call(s);
    } else if (is(t, "response.completed") || is(t, "response.incomplete") ||
               is(t, "response.failed")) {
        const cJSON *u = get(get(d, "response"), "usage");
        if (cJSON_IsObject(u))
            openai_usage(s, u);
        s->finished = 1;
        if (is(t, "response.failed"))
            s->error_event = 1;
    } else if (is(t, "error")) {
        s->error_event = 1;
    }
}

static void claude_event(struct mt_relay_usage *s, const char *t, const cJSON *d)
{
    if (is(t, "message_start")) {
        claude_usage(s, get(get(d, "message"), "usage"), 0);
    } else if (is(t, "content_block_start")) {
        const cJSON *type = get(get(d, "content_block"), "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "tool_use") == 0)
            tool_call(s);
    } else if (is(t, "content_block_delta")) {
        const cJSON *delta = get(d, "delta");
        text(s, get(delta, "text"));
        text(s, get(delta, "thinking"));
        text(s, get(delta, "partial_json"));
    } else if (is(t, "message_delta")) {
        if (cJSON_IsObject(get(d, "usage")))
            claude_usage(s, get(d, "usage"), 1);
    } else if (is(t, "message_stop")) {
        s->finished = 1;
    } else if (is(t, "error")) {
        s->error_event = 1;
    }
}

int mt_relay_usage_event(struct mt_relay_usage *s, const char *type, size_t type_len,
                         const char *data, size_t len)
{
    struct cm_json_parse_opts po = {.max_depth = 128, .max_size = EVENT_MAX};
    char tbuf[64];
    const char *t = NULL;
    const cJSON *jt;
    cJSON *d = NULL;

    if (!s)
        return CM_ERR_INVAL;
    s->events++;
    s->last_usage_only = 0;
    if (len == 6 && data && memcmp(data, "[DONE]", 6) == 0) {
        s->finished = 1;
        return CM_OK;
    }
    if (!data || cm_json_parse(data, len, &po, &d, NULL) != CM_OK || !cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return CM_OK;
    }
    jt = get(d, "type");
    if (cJSON_IsString(jt)) {
        t = jt->valuestring;
    } else if (type && type_len && type_len < sizeof tbuf) {
        memcpy(tbuf, type, type_len);
        tbuf[type_len] = '\0';
        t = tbuf;
    }
    switch (s->fmt) {
    case MT_RELAY_CHAT:
    case MT_RELAY_COMPLETIONS:
    case MT_RELAY_EMBEDDINGS:
        choices(s, d);
        if (cJSON_IsObject(get(d, "usage"))) {
            const cJSON *ch = get(d, "choices");
            openai_usage(s, get(d, "usage"));
            s->last_usage_only = !ch || (cJSON_IsArray(ch) && !cJSON_GetArraySize(ch));
        }
        if (cJSON_IsObject(get(d, "error")))
            s->error_event = 1;
        break;
    case MT_RELAY_RESPONSES:
        responses_event(s, t, d);
        break;
    case MT_RELAY_MESSAGES:
        claude_event(s, t, d);
        break;
    }
    cJSON_Delete(d);
    return CM_OK;
}

static int64_t clamp(int64_t v, int64_t max)
{
    return v < 0 ? 0 : v > max ? max : v;
}

void mt_relay_usage_final(const struct mt_relay_usage *s, int64_t prompt_estimate,
                          int64_t completion_est, struct mt_usage *out, int *local)
{
    struct mt_usage u;
    if (s->have) {
        u = s->u;
        u.audio_prompt_tokens = clamp(u.audio_prompt_tokens, u.prompt_tokens);
        u.audio_completion_tokens = clamp(u.audio_completion_tokens, u.completion_tokens);
        u.cache_creation_tokens_1h = clamp(u.cache_creation_tokens_1h, u.cache_creation_tokens);
        if (u.semantic == MT_USAGE_OPENAI) { /* parts of P: never more than P together */
            u.cached_tokens = clamp(u.cached_tokens, u.prompt_tokens);
            u.cache_creation_tokens =
                clamp(u.cache_creation_tokens, u.prompt_tokens - u.cached_tokens);
            u.cache_creation_tokens_1h = clamp(u.cache_creation_tokens_1h, u.cache_creation_tokens);
            u.image_tokens =
                clamp(u.image_tokens, u.prompt_tokens - u.cached_tokens - u.cache_creation_tokens);
        } else {
            u.image_tokens = clamp(u.image_tokens, u.prompt_tokens);
        }
        u.local_count = 0;
    } else {
        memset(&u, 0, sizeof u);
        u.semantic = s->fmt == MT_RELAY_MESSAGES ? MT_USAGE_ANTHROPIC : MT_USAGE_OPENAI;
        u.prompt_tokens = clamp(prompt_estimate, MT_PRICING_QUOTA_MAX);
        u.completion_tokens = clamp(completion_est, MT_PRICING_QUOTA_MAX);
        u.local_count = 1;
    }
    *out = u;
    if (local)
        *local = !s->have;
}
