/* SPDX-License-Identifier: MIT */
/*
 * test_translate_chat_claude.c - the chat.completions <-> Anthropic Messages translator
 * against the fixtures in tests/fixtures/translate/chat_claude/<case>/: in.json ->
 * expected.json (request, compared as trees), upstream.sse -> expected.sse (event by event,
 * each upstream stream fed through cm_sse whole, byte by byte and cut in two at every
 * byte), upstream.sse -> expected_nonstream.json (aggregation, and the same through
 * from_message on the Message the stream describes). Then the request rules and error
 * paths (field-naming 400s, limits), the stream's error paths (early end -> 408, error
 * events, malformed events, limits), has_content, and an OOM walk over each translation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"
#include "translate/chat_claude.h"
#include "tst_support.h"

#define TEST_ID "chatcmpl-test"
#define TEST_CREATED 1700000000

TST_HAS_CONTENT(has_content, cp_tr_chat_claude)
TST_TRANSLATOR(TR, cp_tr_chat_claude, "chat_claude", tst_assert_chat_sse_equal, has_content,
               TEST_ID, TEST_CREATED);

/* The member at dotted @p path ("choices.0.delta"; numbers index arrays), or NULL. */
static const cJSON *member(const cJSON *o, const char *path)
{
    char buf[128];
    char *save = buf, *tok;

    snprintf(buf, sizeof(buf), "%s", path);
    while ((tok = save) != NULL && o) {
        char *dot = strchr(tok, '.');
        save = dot ? dot + 1 : NULL;
        if (dot)
            *dot = '\0';
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, (int)strtol(tok, NULL, 10))
                             : cJSON_GetObjectItemCaseSensitive(o, tok);
    }
    return o;
}

/* ---- rebuilding the non-stream Message an SSE body describes (for from_message) ---- */

struct rebuild {
    cJSON *msg;
};

static int rebuild_event(void *ud, const struct cm_sse_event *ev)
{
    struct rebuild *r = ud;
    cJSON *e = tst_parse(ev->data, ev->data_len);
    const char *t = cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring;
    cJSON *content = r->msg ? cJSON_GetObjectItemCaseSensitive(r->msg, "content") : NULL;

    if (strcmp(t, "message_start") == 0) {
        r->msg = cJSON_DetachItemFromObjectCaseSensitive(e, "message");
    } else if (strcmp(t, "content_block_start") == 0) {
        cJSON_AddItemToArray(content, cJSON_DetachItemFromObjectCaseSensitive(e, "content_block"));
    } else if (strcmp(t, "content_block_delta") == 0) {
        cJSON *b = cJSON_GetArrayItem(content, cJSON_GetArraySize(content) - 1);
        cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "delta");
        const char *dt = cJSON_GetObjectItemCaseSensitive(d, "type")->valuestring;
        const char *key = strcmp(dt, "text_delta") == 0         ? "text"
                          : strcmp(dt, "thinking_delta") == 0   ? "thinking"
                          : strcmp(dt, "input_json_delta") == 0 ? "_json"
                                                                : NULL;
        const char *src = strcmp(dt, "input_json_delta") == 0 ? "partial_json" : key;
        if (key) {
            cJSON *cur = cJSON_GetObjectItemCaseSensitive(b, key);
            struct cm_buf s;
            cm_buf_init(&s, 1 << 20);
            assert_int_equal(cm_buf_append_str(&s, cur ? cur->valuestring : ""), CM_OK);
            assert_int_equal(
                cm_buf_append_str(&s, cJSON_GetObjectItemCaseSensitive(d, src)->valuestring),
                CM_OK);
            assert_int_equal(cm_json_set_string(b, key, s.data), CM_OK);
            cm_buf_cleanup(&s);
        }
    } else if (strcmp(t, "content_block_stop") == 0) {
        cJSON *b = cJSON_GetArrayItem(content, cJSON_GetArraySize(content) - 1);
        cJSON *j = cJSON_DetachItemFromObjectCaseSensitive(b, "_json");
        if (j && j->valuestring[0]) /* a real Message carries the parsed input object */
            assert_int_equal(cm_json_set_item(b, "input", tst_parse_str(j->valuestring)), CM_OK);
        cJSON_Delete(j);
    } else if (strcmp(t, "message_delta") == 0) {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "delta");
        cJSON *us = cJSON_GetObjectItemCaseSensitive(e, "usage");
        cJSON *it;
        assert_int_equal(
            cm_json_set_item(
                r->msg, "stop_reason",
                cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(d, "stop_reason"), 1)),
            CM_OK);
        cJSON_ArrayForEach(it, us)
        {
            assert_int_equal(cm_json_set_item(cJSON_GetObjectItemCaseSensitive(r->msg, "usage"),
                                              it->string, cJSON_Duplicate(it, 1)),
                             CM_OK);
        }
    }
    cJSON_Delete(e);
    return 0;
}

static cJSON *rebuild_message(const char *up, size_t len)
{
    struct rebuild r = {NULL};
    struct cm_sse_parser p;

    cm_sse_parser_init(&p, 0, rebuild_event, NULL, &r);
    assert_int_equal(cm_sse_parser_feed(&p, up, len, NULL), CM_OK);
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
    cm_sse_parser_cleanup(&p);
    assert_non_null(r.msg);
    return r.msg;
}

/* ---- the fixtures ---- */

static void check_stream(const struct tst_drive *d, const struct cp_tr_usage *u)
{
    assert_int_equal(u->total, u->input + u->output);
    assert_true(cp_tr_chat_claude_stream_has_content(d->st));
    assert_true(d->content_seen);
    /* before has_content() turns true, at most the role-only opener went out */
    if (d->content_at) {
        struct tst_events e;
        cJSON *j, *want_d = tst_parse_str("{\"role\":\"assistant\",\"content\":\"\"}");
        tst_events_parse(&e, d->out.data, d->content_at);
        assert_int_equal(e.n, 1);
        j = tst_parse_str(e.data[0]);
        tst_assert_json_equal(member(j, "choices.0.delta"), want_d, "opener");
        cJSON_Delete(j);
        cJSON_Delete(want_d);
        tst_events_free(&e);
    }
}

/* The same answer as one non-stream Message gives the same completion and usage. */
static void check_aggregate(const char *name, const cJSON *in, const char *up, size_t up_len,
                            const cJSON *want, const struct cp_tr_usage *u)
{
    cJSON *got = NULL, *msg = rebuild_message(up, up_len);
    struct cp_tr_usage u2;
    struct cp_tr_err err;
    char label[256];

    if (cp_tr_chat_claude_from_message(msg, in, TEST_ID, TEST_CREATED, &got, &u2, &err))
        fail_msg("%s: from_message failed: %s", name, err.msg);
    /* a parsed input prints without the upstream's spacing: compare arguments as JSON */
    {
        cJSON *gc = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(got, "choices"), 0), "message"),
            "tool_calls");
        cJSON *wc = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(want, "choices"), 0),
                "message"),
            "tool_calls");
        cJSON *g, *w = wc ? wc->child : NULL;
        cJSON_ArrayForEach(g, gc)
        {
            cJSON *ga = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(g, "function"), "arguments");
            cJSON *wa = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(w, "function"), "arguments");
            cJSON *gj = tst_parse_str(ga->valuestring), *wj = tst_parse_str(wa->valuestring);
            tst_assert_json_equal(gj, wj, "from_message arguments");
            cJSON_Delete(gj);
            cJSON_Delete(wj);
            cJSON_SetValuestring(ga, wa->valuestring);
            w = w->next;
        }
    }
    snprintf(label, sizeof(label), "%s/expected_nonstream.json (from_message)", name);
    tst_assert_json_equal(got, want, label);
    assert_memory_equal(u, &u2, sizeof(*u));
    cJSON_Delete(got);
    cJSON_Delete(msg);
}

static void test_fixtures(void **state)
{
    static const struct tst_fixture_run run = {
        .tr = &TR,
        .cut_step = 1,
        .min_cases = 11,
        .min_requests = 11,
        .min_streams = 8,
        .min_aggs = 8,
        .check_stream = check_stream,
        .check_aggregate = check_aggregate,
    };

    (void)state;
    tst_run_fixtures(&run);
}

/* ---- request errors ---- */

#define translate_str(json, out, err) tst_translate_str(cp_tr_chat_claude_request, json, out, err)
#define expect_field_error(json, rc, field)                                                        \
    tst_expect_field_error(cp_tr_chat_claude_request, json, rc, field)

#define M_USER "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

static void test_request_errors(void **state)
{
    /* one member at fault beside a good user message: {<members>,"messages":[...]} */
    static const struct {
        const char *members, *field;
    } knobs[] = {
        /* the model and its suffix */
        {"\"model\":\"\"", "model"},
        {"\"model\":\"(high)\"", "model"},
        {"\"model\":\"claude-sonnet-4-5(turbo)\"", "model"},
        {"\"model\":\"c\",\"reasoning_effort\":\"huge\"", "reasoning_effort"},
        {"\"model\":\"c\",\"reasoning_effort\":\"4096\"", "reasoning_effort"},
        /* what Claude cannot express */
        {"\"model\":\"c\",\"n\":2", "n"},
        {"\"model\":\"c\",\"logprobs\":true", "logprobs"},
        {"\"model\":\"c\",\"audio\":{\"voice\":\"alloy\"}", "audio"},
        {"\"model\":\"c\",\"modalities\":[\"text\",\"audio\"]", "modalities"},
        {"\"model\":\"c\",\"functions\":[]", "functions"},
        {"\"model\":\"c\",\"response_format\":{\"type\":\"json_object\"}", "response_format.type"},
        /* sampling and stop */
        {"\"model\":\"c\",\"stop\":[\"a\",3]", "stop[1]"},
        {"\"model\":\"c\",\"stop\":5", "stop"},
        {"\"model\":\"c\",\"max_tokens\":0", "max_tokens"},
        {"\"model\":\"c\",\"max_completion_tokens\":\"9\"", "max_completion_tokens"},
        {"\"model\":\"c\",\"temperature\":3", "temperature"},
        {"\"model\":\"c\",\"top_p\":\"x\"", "top_p"},
        {"\"model\":\"c\",\"stream\":\"yes\"", "stream"},
        {"\"model\":\"c\",\"parallel_tool_calls\":1", "parallel_tool_calls"},
    };
    struct cp_tr_err err;
    cJSON *out = NULL;

    (void)state;
    /* an audio part is refused, naming the part */
    expect_field_error(
        "{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
        "{\"role\":\"assistant\",\"content\":\"b\"},{\"role\":\"user\",\"content\":\"c\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
        CM_ERR_INVAL, "messages[3].content[1].type");
    assert_int_equal(translate_str("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                                   "[{\"type\":\"input_audio\"}]}]}",
                                   &out, &err),
                     CM_ERR_INVAL);
    assert_non_null(strstr(err.msg, "input_audio"));
    /* images and files only from users */
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    /* image URLs that are neither base64 data URLs nor http(s) */
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].image_url.url");
    expect_field_error(
        "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
        "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,abc\"}}]}]}",
        CM_ERR_INVAL, "messages[0].content[0].image_url.url");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:text/plain;base64,"
                       "QQ==\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].image_url.url");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].image_url.url");
    /* files: only PDF data */
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"file\",\"file\":{\"file_id\":\"file-1\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].file.file_id");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"file\",\"file\":{\"file_data\":\"data:text/csv;base64,QQ==\"}}"
                       "]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].file.file_data");
    expect_field_error(
        "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
        "[{\"type\":\"file\",\"file\":{\"filename\":\"a.txt\",\"file_data\":\"QQ==\"}}"
        "]}]}",
        CM_ERR_INVAL, "messages[0].content[0].file.file_data");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"file\",\"file\":{}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].file");
    /* roles and message shapes */
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "messages[0].role");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "messages[0].tool_call_id");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"content\":\"x\"}]}", CM_ERR_INVAL,
                       "messages[0].role");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\"}]}", CM_ERR_INVAL,
                       "messages[0].content");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
                       CM_ERR_INVAL, "messages[0].content");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",
                       CM_ERR_INVAL, "messages[0].content");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"system\"}]}", CM_ERR_INVAL,
                       "messages[0].content");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":\"https://x\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}",
                       CM_ERR_INVAL, "messages");
    expect_field_error("{\"model\":\"c\",\"messages\":[]}", CM_ERR_INVAL, "messages");
    expect_field_error("{\"model\":\"c\",\"messages\":{}}", CM_ERR_INVAL, "messages");
    expect_field_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", CM_ERR_INVAL,
                       "model");
    /* what Claude cannot express (more in knobs) */
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                       "\"function_call\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
                       CM_ERR_INVAL, "messages[0].function_call");
    /* tools and tool calls */
    expect_field_error("{\"model\":\"c\"," M_USER ",\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"description\":\"d\"}}]}",
                       CM_ERR_INVAL, "tools[0].function.name");
    expect_field_error("{\"model\":\"c\"," M_USER ",\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"\"}}]}",
                       CM_ERR_INVAL, "tools[0].function.name");
    expect_field_error("{\"model\":\"c\"," M_USER ",\"tools\":[{\"type\":\"web_search\"}]}",
                       CM_ERR_INVAL, "tools[0].type");
    expect_field_error("{\"model\":\"c\"," M_USER ",\"tools\":{}}", CM_ERR_INVAL, "tools");
    expect_field_error("{\"model\":\"c\"," M_USER ",\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"sometimes\"}",
                       CM_ERR_INVAL, "tool_choice");
    expect_field_error(
        "{\"model\":\"c\"," M_USER ",\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"allowed_tools\"}}",
        CM_ERR_INVAL, "tool_choice.type");
    expect_field_error("{\"model\":\"c\"," M_USER ",\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\","
                       "\"function\":{}}}",
                       CM_ERR_INVAL, "tool_choice.function.name");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                       "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{}}]}]}",
                       CM_ERR_INVAL, "messages[0].tool_calls[0].function.name");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                       "\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].tool_calls[0].id");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                       "\"tool_calls\":[{\"id\":\"c\",\"type\":\"custom\"}]}]}",
                       CM_ERR_INVAL, "messages[0].tool_calls[0].type");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":\"a\","
                       "\"tool_calls\":{}}]}",
                       CM_ERR_INVAL, "messages[0].tool_calls");
    expect_field_error("{\"model\":\"c\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\","
                       "\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
        char req[256];
        assert_true((size_t)snprintf(req, sizeof(req), "{%s," M_USER "}", knobs[i].members) <
                    sizeof(req));
        expect_field_error(req, CM_ERR_INVAL, knobs[i].field);
    }

    assert_int_equal(cp_tr_chat_claude_request(NULL, &out, &err), CM_ERR_INVAL);
    assert_int_equal(err.status, 400);
    assert_int_equal(cp_tr_chat_claude_request(NULL, NULL, &err), CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_request(NULL, NULL, NULL), CM_ERR_INVAL);
}

/* Translates @p json, which must succeed; the result (caller deletes). */
static cJSON *translate_ok(const char *json)
{
    struct cp_tr_err err;
    cJSON *out = NULL;
    int rc = translate_str(json, &out, &err);

    if (rc)
        fail_msg("%s: %s", json, err.msg);
    return out;
}

static void assert_member_json(const cJSON *o, const char *path, const char *want_json)
{
    const cJSON *got = member(o, path);
    cJSON *want;

    if (!want_json) {
        if (got)
            fail_msg("%s is present", path);
        return;
    }
    if (!got)
        fail_msg("%s is missing", path);
    want = tst_parse_str(want_json);
    tst_assert_json_equal(got, want, path);
    cJSON_Delete(want);
}

static void test_request_rules(void **state)
{
    cJSON *out;

    (void)state;
    /* level budgets (spec 5.1), clamped to Claude's range; none / 0 disable thinking */
    static const struct {
        const char *model, *effort;
        const char *thinking;
        long max_tokens;
    } levels[] = {
        {"c(minimal)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":1024}", 32000},
        {"c(low)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":1024}", 32000},
        {"c(medium)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":8192}", 32000},
        {"c(high)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":24576}", 32000},
        {"c(xhigh)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":32768}", 36864},
        {"c(max)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":128000}", 132096},
        {"c(auto)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":8192}", 32000},
        {"c(-1)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":8192}", 32000},
        {"c(100)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":1024}", 32000},
        {"c(999999999)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":128000}", 132096},
        {"c(none)", "high", "{\"type\":\"disabled\"}", 32000},
        {"c(0)", NULL, "{\"type\":\"disabled\"}", 32000},
        {"c", "none", "{\"type\":\"disabled\"}", 32000},
        {"c", "minimal", "{\"type\":\"enabled\",\"budget_tokens\":1024}", 32000},
        {"c", "xhigh", "{\"type\":\"enabled\",\"budget_tokens\":32768}", 36864},
        {"c", NULL, NULL, 32000},
        {"claude-3-7-sonnet(x)(high)", NULL, "{\"type\":\"enabled\",\"budget_tokens\":24576}",
         32000},
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        char req[512];
        char max[32];
        if (levels[i].effort)
            snprintf(req, sizeof(req),
                     "{\"model\":\"%s\",\"reasoning_effort\":\"%s\",\"temperature\":0.2," M_USER
                     "}",
                     levels[i].model, levels[i].effort);
        else
            snprintf(req, sizeof(req), "{\"model\":\"%s\",\"temperature\":0.2," M_USER "}",
                     levels[i].model);
        out = translate_ok(req);
        assert_member_json(out, "thinking", levels[i].thinking);
        snprintf(max, sizeof(max), "%ld", levels[i].max_tokens);
        assert_member_json(out, "max_tokens", max);
        /* temperature goes only when thinking is on */
        assert_member_json(out, "temperature",
                           levels[i].thinking && strstr(levels[i].thinking, "enabled") ? NULL
                                                                                       : "0.2");
        cJSON_Delete(out);
    }
    out = translate_ok("{\"model\":\"claude-3-7-sonnet(x)(high)\"," M_USER "}");
    assert_member_json(out, "model", "\"claude-3-7-sonnet(x)\"");
    cJSON_Delete(out);

    /* a string stop; tool_choice auto and none; parallel_tool_calls false with no choice */
    out = translate_ok("{\"model\":\"c\",\"stop\":\"END\",\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"auto\"," M_USER "}");
    assert_member_json(out, "stop_sequences", "[\"END\"]");
    assert_member_json(out, "tool_choice", "{\"type\":\"auto\"}");
    cJSON_Delete(out);
    out =
        translate_ok("{\"model\":\"c\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                     "\"f\"}}],\"tool_choice\":\"none\",\"parallel_tool_calls\":false," M_USER "}");
    assert_member_json(out, "tool_choice", NULL);
    assert_member_json(out, "tools.0.name", "\"f\"");
    cJSON_Delete(out);
    out = translate_ok("{\"model\":\"c\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                       "\"f\"}}],\"parallel_tool_calls\":false," M_USER "}");
    assert_member_json(out, "tool_choice",
                       "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    cJSON_Delete(out);
    out =
        translate_ok("{\"model\":\"c\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                     "\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\""
                     "}},\"parallel_tool_calls\":false," M_USER "}");
    assert_member_json(out, "tool_choice",
                       "{\"type\":\"tool\",\"name\":\"f\",\"disable_parallel_tool_use\":true}");
    cJSON_Delete(out);
    /* no tools: no tools and no tool_choice, whatever was asked */
    out = translate_ok("{\"model\":\"c\",\"tools\":[],\"tool_choice\":\"required\","
                       "\"parallel_tool_calls\":false,\"stop\":[]," M_USER "}");
    assert_member_json(out, "tools", NULL);
    assert_member_json(out, "tool_choice", NULL);
    assert_member_json(out, "stop_sequences", NULL);
    cJSON_Delete(out);
    /* nulls are absent; response_format text is fine; stream false is copied */
    out =
        translate_ok("{\"model\":\"c\",\"tools\":null,\"stop\":null,\"temperature\":null,"
                     "\"max_tokens\":null,\"stream\":false,\"response_format\":{\"type\":\"text\"},"
                     "\"n\":1,\"logprobs\":false,\"modalities\":[\"text\"]," M_USER "}");
    assert_member_json(out, "max_tokens", "32000");
    assert_member_json(out, "stream", "false");
    assert_member_json(out, "temperature", NULL);
    cJSON_Delete(out);
    /* a tool result ahead of text in a merged user turn; a user turn after a tool result */
    out = translate_ok(
        "{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\","
        "\"tool_calls\":[{\"id\":\"t1\",\"function\":{\"name\":\"f\"}}]},"
        "{\"role\":\"user\",\"content\":\"look\"},{\"role\":\"tool\",\"tool_call_id\":\"t1\","
        "\"content\":null},{\"role\":\"assistant\",\"content\":[{\"type\":\"refusal\",\"refusal\":"
        "\"no\"}]},{\"role\":\"assistant\",\"content\":null}]}");
    assert_member_json(
        out, "messages",
        "[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
        "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"t1\",\"content\":\"\"},{\"type\":\"text\",\"text\":\"look\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"no\"}]}]");
    cJSON_Delete(out);
    /* the client's tree is not changed */
    {
        const char *s = "{\"model\":\"c(high)\",\"temperature\":1,\"messages\":[{\"role\":\"tool\","
                        "\"tool_call_id\":\"a\",\"content\":\"r\"},{\"role\":\"tool\","
                        "\"tool_call_id\":\"b\",\"content\":\"r\"}]}";
        cJSON *req = tst_parse_str(s), *copy = tst_parse_str(s);
        struct cp_tr_err err;
        assert_int_equal(cp_tr_chat_claude_request(req, &out, &err), CM_OK);
        tst_assert_json_equal(req, copy, "client request after translation");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "messages")), 1);
        cJSON_Delete(out);
        cJSON_Delete(req);
        cJSON_Delete(copy);
    }
}

/* tool results are kept ahead of the turn's other blocks, every one of them (found by the
 * fuzzer: inserting at an index above 0 dropped the second result) */
static void test_request_tool_results_order(void **state)
{
    cJSON *req = tst_parse_str(
        "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"b\",\"type\":"
        "\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"user\",\"content\":\"W\"},{\"role\":\"tool\",\"tool_call_id\":\"a\","
        "\"content\":\"ra\"},{\"role\":\"tool\",\"tool_call_id\":\"b\",\"content\":\"rb\"}]}");
    cJSON *out = NULL;
    struct cp_tr_err err = {0};
    (void)state;
    assert_int_equal(cp_tr_chat_claude_request(req, &out, &err), CM_OK);
    assert_member_json(out, "messages",
                       "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"go\"}]},"
                       "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\","
                       "\"name\":\"f\",\"input\":{}},{\"type\":\"tool_use\",\"id\":\"b\",\"name\":"
                       "\"g\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"tool_result\",\"tool_use_id\":\"a\",\"content\":\"ra\"},{\"type\":"
                       "\"tool_result\",\"tool_use_id\":\"b\",\"content\":\"rb\"},{\"type\":\"text\","
                       "\"text\":\"W\"}]}]");
    cJSON_Delete(out);
    cJSON_Delete(req);
}

static void test_request_limits(void **state)
{
    (void)state;
    tst_expect_limit(cp_tr_chat_claude_request, "{\"model\":\"c\",\"messages\":[",
                     "{\"role\":\"user\",\"content\":\"m\"}", CP_TR_CHAT_CLAUDE_MAX_MESSAGES + 1,
                     "]}", "messages");
    tst_expect_limit(cp_tr_chat_claude_request,
                     "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[",
                     "{\"type\":\"text\",\"text\":\"p\"}", CP_TR_CHAT_CLAUDE_MAX_PARTS + 1, "]}]}",
                     "messages[0].content");
    tst_expect_limit(cp_tr_chat_claude_request, "{\"model\":\"c\"," M_USER ",\"tools\":[",
                     "{\"type\":\"function\",\"function\":{\"name\":\"f%d\"}}",
                     CP_TR_CHAT_CLAUDE_MAX_TOOLS + 1, "]}", "tools");
}

/* ---- stream errors ---- */

static const char *const REQ = "{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\","
                               "\"content\":\"x\"}],\"stream\":true}";

#define EV_START                                                                                   \
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","       \
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":"     \
    "[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":7,"                \
    "\"output_tokens\":1}}}\n\n"
#define EV_TEXT_START                                                                              \
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"             \
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
#define EV_TEXT(s)                                                                                 \
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"             \
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"" s "\"}}\n\n"
#define EV_STOP "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

/* What the client sees of a stream cut short: a request_timeout error. */
static void check_early_end(struct tst_drive *d)
{
    cJSON *eo = tst_chat_last_error(&d->out);

    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                        CP_TR_CLAUDE_EARLY_EOF_MSG);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "code")->valuestring,
                        "request_timeout");
    cJSON_Delete(eo);
}

static void test_stream_early_end(void **state)
{
    cJSON *req = tst_parse_str(REQ);
    struct cp_tr_err err;
    struct tst_drive d;
    size_t len = 0;
    char *up = tst_fixture(TR.sub, "tools_call", "upstream.sse", &len);

    (void)state;
    /* nothing, message_start only, cut mid-text, mid-tool, after message_delta */
    tst_expect_early_end(&TR, REQ, "tools_call", "event: message_stop", 5,
                         CP_TR_CLAUDE_EARLY_EOF_MSG, "request_timeout", check_early_end);
    /* usage: unknown before message_start, known (input so far) after it */
    assert_int_equal(tst_run_stream(&d, &TR, req, up, 0), CM_ERR_TIMEOUT);
    assert_int_equal(cp_tr_chat_claude_stream_usage(d.st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
    assert_false(cp_tr_chat_claude_stream_has_content(d.st));
    tst_drive_cleanup(&d);
    {
        struct cp_tr_usage u;
        const char *ms = strstr(up, "event: content_block_start");
        assert_int_equal(tst_run_stream(&d, &TR, req, up, (size_t)(ms - up)), CM_ERR_TIMEOUT);
        assert_int_equal(cp_tr_chat_claude_stream_usage(d.st, &u), CM_OK);
        assert_int_equal(u.input, 380);
        assert_int_equal(u.output, 4);
        /* nothing at all was written but the error: the relay can fail over */
        assert_false(cp_tr_chat_claude_stream_has_content(d.st));
        tst_drive_cleanup(&d);
    }
    /* finish twice: the second is a no-op */
    assert_int_equal(tst_run_stream(&d, &TR, req, up, len), CM_OK);
    {
        size_t n = d.out.len;
        assert_int_equal(cp_tr_chat_claude_stream_finish(d.st, &d.out, &err), CM_OK);
        assert_int_equal(d.out.len, n);
    }
    tst_drive_cleanup(&d);
    cm_free(up);
    cJSON_Delete(req);
}

static void test_stream_error_event(void **state)
{
    static const struct {
        const char *type;
        unsigned status;
        const char *msg;
    } cases[] = {
        {"overloaded_error", 503, "Overloaded"},
        {"rate_limit_error", 429, "Number of request tokens has exceeded your rate limit"},
        {"api_error", 500, "Internal server error"},
        {"invalid_request_error", 400, "prompt is too long: 210000 tokens > 200000 maximum"},
        {"authentication_error", 401, "invalid x-api-key"},
        {"permission_error", 403, "not allowed"},
        {"not_found_error", 404, "model: claude-x"},
        {"billing_error", 402, "credit balance too low"},
        {"request_too_large", 413, "too large"},
        {"timeout_error", 504, "timeout"},
        {"mystery_error", 502, "?"},
    };
    cJSON *req = tst_parse_str(REQ);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int early = 0; early < 2; early++) {
            struct tst_drive d;
            cJSON *eo;
            struct cm_buf s;
            /* before any content (the relay fails over) and after some text; text after
             * the failure must not reach the client */
            cm_buf_init(&s, 1 << 16);
            assert_int_equal(
                cm_buf_appendf(&s,
                               "%s%s%sevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                               "\"%s\",\"message\":\"%s\"}}\n\n%s" EV_STOP,
                               EV_START, early ? "" : EV_TEXT_START EV_TEXT("hi"),
                               early ? "event: ping\ndata: {\"type\": \"ping\"}\n\n" : "",
                               cases[i].type, cases[i].msg, EV_TEXT("LEAK")),
                CM_OK);
            tst_expect_stream_error(&d, &TR, req, s.data, s.len, CM_ERR_UPSTREAM, cases[i].status,
                                    NULL);
            assert_string_equal(d.err.type, cases[i].type);
            assert_string_equal(d.err.msg, cases[i].msg);
            assert_null(strstr(d.out.data, "LEAK"));
            assert_int_equal(cp_tr_chat_claude_stream_has_content(d.st), !early);
            eo = tst_chat_last_error(&d.out);
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                                cases[i].msg);
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "type")->valuestring,
                                cases[i].type);
            assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(eo, "code")));
            cJSON_Delete(eo);
            if (early) /* only the error event: nothing for the client before it */
                assert_int_equal(strncmp(d.out.data, "data: {\"error\"", 14), 0);
            tst_drive_cleanup(&d);

            tst_expect_aggregate_error(&TR, req, s.data, s.len, CM_ERR_UPSTREAM, cases[i].status,
                                       cases[i].msg);
            cm_buf_cleanup(&s);
        }
    }
    /* an error without a usable body: 502 with a generic message */
    {
        struct tst_drive d;
        const char *s = "event: error\ndata: {\"type\":\"error\"}\n\n";
        tst_expect_stream_error(&d, &TR, req, s, strlen(s), CM_ERR_UPSTREAM, 502, NULL);
        assert_string_equal(d.err.type, "server_error");
        assert_string_equal(d.err.msg, "upstream error");
        tst_drive_cleanup(&d);
    }
    cJSON_Delete(req);
}

static void test_stream_malformed(void **state)
{
    static const char *const bad[] = {
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\"\n\n",
        "event: content_block_delta\ndata: [1,2]\n\n",
        "data: not json at all\n\n",
        "event: message_stop\ndata: \"x\"\n\n",
        EV_START "event: message_delta\ndata: {\"delta\":\n\n",
    };

    (void)state;
    tst_expect_bad_events(&TR, REQ, bad, sizeof(bad) / sizeof(bad[0]), tst_chat_last_error, "code",
                          "bad_upstream_event");
}

/*
 * Events with no meaning for a chat client are ignored; so is everything after
 * message_stop; odd but valid shapes (no index, no message_start, input given up front,
 * unknown stop reasons, a delta without its block start) still give sane chunks.
 */
static void test_stream_ignores(void **state)
{
    cJSON *req = tst_parse_str(REQ);
    struct tst_drive d;
    const char *s =
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        "event: some_future_event\ndata: {\"type\":\"some_future_event\"}\n\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"hi\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":"
        "\"web_search\",\"input\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":1}\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"f\",\"input\":"
        "{\"a\":1}}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":7,"
        "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"refusal\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"LATE\"}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
#define CH(delta, fin)                                                                             \
    "data: {\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":1700000000," \
    "\"model\":\"claude-sonnet-4-5\",\"choices\":[{\"index\":0,\"delta\":" delta                   \
    ",\"finish_reason\":" fin "}]}\n\n"
    const char *want =
        CH("{\"role\":\"assistant\",\"content\":\"\"}", "null") CH("{\"content\":\"hi\"}", "null")
            CH("{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_9\",\"type\":\"function\","
               "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}",
               "null") CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                          "\"{\\\"a\\\":1}\"}}]}",
                          "null") CH("{\"reasoning_content\":\"hm\"}", "null")
                CH("{}", "\"content_filter\"") "data: [DONE]\n\n";
    struct cp_tr_usage u;

    (void)state;
    tst_expect_stream(&d, &TR, req, s, want, "ignores");
    assert_int_equal(cp_tr_chat_claude_stream_usage(d.st, &u), CM_OK);
    assert_int_equal(u.output, 3);
    assert_int_equal(u.input, 0);
    tst_drive_cleanup(&d);

    /* an empty answer: no role chunk, finish "stop"; events after the end are ignored */
    s = EV_START "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},"
                 "\"usage\":{\"output_tokens\":0}}\n\n" EV_STOP;
    want = CH("{\"role\":\"assistant\"}", "\"stop\"") "data: [DONE]\n\n";
    tst_expect_stream(&d, &TR, req, s, want, "empty");
    assert_false(cp_tr_chat_claude_stream_has_content(d.st));
    {
        size_t n = d.out.len;
        assert_int_equal(
            cp_tr_chat_claude_stream_event(d.st, NULL, 0, "garbage", 7, &d.out, &d.err), CM_OK);
        assert_int_equal(d.out.len, n);
    }
    tst_drive_cleanup(&d);
#undef CH
    cJSON_Delete(req);
}

static void test_stream_args(void **state)
{
    struct cp_tr_chat_claude_stream st;
    struct cp_tr_err err;
    struct cm_buf b;
    cJSON *out = NULL;

    (void)state;
    cm_buf_init(&b, 1 << 16);
    memset(&st, 0, sizeof(st));
    assert_int_equal(cp_tr_chat_claude_stream_event(NULL, NULL, 0, "{}", 2, &b, &err),
                     CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_stream_event(&st, NULL, 0, "{}", 2, &b, &err),
                     CM_ERR_INVAL); /* not initialised */
    assert_int_equal(cp_tr_chat_claude_stream_init(&st, NULL, NULL, 0, &err), CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_stream_init(NULL, NULL, "x", 0, NULL), CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_stream_finish(NULL, &b, &err), CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_stream_usage(NULL, NULL), CM_ERR_NOTFOUND);
    assert_false(cp_tr_chat_claude_stream_has_content(NULL));
    cp_tr_chat_claude_stream_cleanup(NULL);
    cp_tr_chat_claude_stream_cleanup(&st);
    /* a NULL client request: the model comes from message_start, else "" */
    assert_int_equal(cp_tr_chat_claude_stream_init(&st, NULL, "id", 5, &err), CM_OK);
    assert_int_equal(cp_tr_chat_claude_stream_event(&st, "message_stop", 12,
                                                    "{\"type\":\"message_stop\"}", 23, &b, &err),
                     CM_OK);
    assert_non_null(strstr(b.data, "\"model\":\"\""));
    cp_tr_chat_claude_stream_cleanup(&st);
    cp_tr_chat_claude_stream_cleanup(&st);
    assert_int_equal(cp_tr_chat_claude_aggregate(NULL, 3, NULL, TEST_ID, 0, &out, NULL, &err),
                     CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_aggregate("", 0, NULL, NULL, 0, &out, NULL, &err),
                     CM_ERR_INVAL);
    assert_int_equal(cp_tr_chat_claude_from_message(NULL, NULL, TEST_ID, 0, NULL, NULL, &err),
                     CM_ERR_INVAL);
    cm_buf_cleanup(&b);
}

static void test_stream_limits(void **state)
{
    cJSON *req = tst_parse_str(REQ), *out = NULL;
    struct cm_buf s;
    struct tst_drive d;
    struct cp_tr_err err;
    int i;

    (void)state;
    /* more tool calls than CP_TR_CHAT_CLAUDE_MAX_TOOLS */
    cm_buf_init(&s, (size_t)8 << 20);
    assert_int_equal(cm_buf_append_str(&s, EV_START), CM_OK);
    for (i = 0; i <= CP_TR_CHAT_CLAUDE_MAX_TOOLS; i++)
        assert_int_equal(cm_buf_appendf(&s,
                                        "event: content_block_start\ndata: {\"type\":"
                                        "\"content_block_start\",\"index\":%d,\"content_block\":"
                                        "{\"type\":\"tool_use\",\"id\":\"t%d\",\"name\":\"f\","
                                        "\"input\":{}}}\n\n",
                                        i, i),
                         CM_OK);
    assert_int_equal(cm_buf_append_str(&s, EV_STOP), CM_OK);
    memset(&d, 0, sizeof(d));
    assert_int_equal(tst_run_stream(&d, &TR, req, s.data, s.len), CM_ERR_LIMIT);
    assert_int_equal(d.err.status, 500);
    tst_drive_cleanup(&d);
    /* the aggregator takes them (its cap is on blocks) */
    assert_int_equal(
        cp_tr_chat_claude_aggregate(s.data, s.len, req, TEST_ID, TEST_CREATED, &out, NULL, &err),
        CM_OK);
    assert_int_equal(cJSON_GetArraySize(member(out, "choices.0.message.tool_calls")),
                     CP_TR_CHAT_CLAUDE_MAX_TOOLS + 1);
    cJSON_Delete(out);
    out = NULL;

    /* more blocks than CP_TR_CHAT_CLAUDE_MAX_BLOCKS */
    cm_buf_reset(&s);
    assert_int_equal(cm_buf_append_str(&s, EV_START), CM_OK);
    for (i = 0; i <= CP_TR_CHAT_CLAUDE_MAX_BLOCKS; i++)
        assert_int_equal(cm_buf_appendf(&s,
                                        "event: content_block_start\ndata: {\"type\":"
                                        "\"content_block_start\",\"index\":%d,\"content_block\":"
                                        "{\"type\":\"text\",\"text\":\"\"}}\n\n",
                                        i),
                         CM_OK);
    assert_int_equal(cm_buf_append_str(&s, EV_STOP), CM_OK);
    assert_int_equal(
        cp_tr_chat_claude_aggregate(s.data, s.len, req, TEST_ID, TEST_CREATED, &out, NULL, &err),
        CM_ERR_LIMIT);
    assert_int_equal(err.status, 502);
    assert_null(out);

    /* one event larger than the SSE parser's cap */
    cm_buf_reset(&s);
    assert_int_equal(cm_buf_append_str(&s, EV_START EV_TEXT_START
                                       "event: content_block_delta\ndata: {\"type\":"
                                       "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                                       "\"text_delta\",\"text\":\""),
                     CM_OK);
    for (i = 0; i < (int)(CM_SSE_MAX_EVENT_DEFAULT / 1024) + 1; i++)
        assert_int_equal(cm_buf_appendf(&s, "%01024d", 0), CM_OK);
    assert_int_equal(cm_buf_append_str(&s, "\"}}\n\n" EV_STOP), CM_OK);
    assert_int_equal(
        cp_tr_chat_claude_aggregate(s.data, s.len, req, TEST_ID, TEST_CREATED, &out, NULL, &err),
        CM_ERR_LIMIT);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "bad_upstream_event");
    assert_null(out);

    /* a client buffer too small for the next chunk */
    {
        struct cp_tr_chat_claude_stream st;
        struct cm_buf tiny;
        const char *ev = "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                         "{\"type\":\"text\",\"text\":\"\"}}";
        cm_buf_init(&tiny, 16);
        assert_int_equal(cp_tr_chat_claude_stream_init(&st, req, TEST_ID, TEST_CREATED, &err),
                         CM_OK);
        assert_int_equal(cp_tr_chat_claude_stream_event(&st, NULL, 0, ev, strlen(ev), &tiny, &err),
                         CM_ERR_LIMIT);
        assert_int_equal(err.status, 500);
        assert_int_equal(cp_tr_chat_claude_stream_finish(&st, &tiny, &err), CM_ERR_LIMIT);
        cp_tr_chat_claude_stream_cleanup(&st);
        cm_buf_cleanup(&tiny);
    }
    cm_buf_cleanup(&s);
    cJSON_Delete(req);
}

/* from_message on Messages written by hand: error Messages, odd content, missing usage. */
static void test_from_message(void **state)
{
    cJSON *req = tst_parse_str(REQ), *msg, *out = NULL;
    struct cp_tr_usage u;
    struct cp_tr_err err;

    (void)state;
    msg = tst_parse_str(
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-"
        "1\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"a\",\"signature\":\"s\"},"
        "{\"type\":\"redacted_thinking\",\"data\":\"x\"},{\"type\":\"thinking\",\"thinking\":\"\"},"
        "{\"type\":\"thinking\",\"thinking\":\"b\"},{\"type\":\"text\",\"text\":\"\"},"
        "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{\"k\":[1,2]}},"
        "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"g\"}],"
        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":"
        "4,\"cache_creation_input_tokens\":5,\"output_tokens\":6}}");
    assert_int_equal(cp_tr_chat_claude_from_message(msg, req, TEST_ID, 9, &out, &u, &err), CM_OK);
    assert_member_json(out, "model", "\"claude-opus-4-1\"");
    assert_member_json(out, "created", "9");
    assert_member_json(out, "choices.0.message.content", "\"\"");
    assert_member_json(out, "choices.0.message.reasoning_content", "\"a\\n\\nb\"");
    assert_member_json(out, "choices.0.message.tool_calls",
                       "[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                       "\"arguments\":\"{\\\"k\\\":[1,2]}\"}},{\"id\":\"t2\",\"type\":\"function\","
                       "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]");
    assert_member_json(out, "choices.0.finish_reason", "\"tool_calls\"");
    assert_member_json(out, "usage",
                       "{\"prompt_tokens\":12,\"completion_tokens\":6,\"total_tokens\":18,"
                       "\"prompt_tokens_details\":{\"cached_tokens\":4},"
                       "\"completion_tokens_details\":{\"reasoning_tokens\":0}}");
    assert_int_equal(u.input, 12);
    assert_int_equal(u.cached, 4);
    cJSON_Delete(out);
    cJSON_Delete(msg);

    /* no model, no usage, no content: client model, zeros, null content, stop */
    msg = tst_parse_str("{\"type\":\"message\"}");
    assert_int_equal(cp_tr_chat_claude_from_message(msg, req, TEST_ID, 9, &out, NULL, &err), CM_OK);
    assert_member_json(out, "model", "\"claude-sonnet-4-5\"");
    assert_member_json(out, "choices.0.message", "{\"role\":\"assistant\",\"content\":null}");
    assert_member_json(out, "choices.0.finish_reason", "\"stop\"");
    assert_member_json(out, "usage.total_tokens", "0");
    cJSON_Delete(out);
    cJSON_Delete(msg);

    /* an error Message and a non-object */
    out = NULL;
    msg = tst_parse_str("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                        "\"Overloaded\"}}");
    assert_int_equal(cp_tr_chat_claude_from_message(msg, req, TEST_ID, 9, &out, NULL, &err),
                     CM_ERR_UPSTREAM);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.msg, "Overloaded");
    assert_null(out);
    cJSON_Delete(msg);
    msg = tst_parse_str("[]");
    assert_int_equal(cp_tr_chat_claude_from_message(msg, req, TEST_ID, 9, &out, NULL, &err),
                     CM_ERR_UPSTREAM);
    assert_int_equal(err.status, 502);
    assert_null(out);
    cJSON_Delete(msg);
    cJSON_Delete(req);
}

/* ---- OOM walks: every allocation failure is reported cleanly (ASan checks for leaks) ---- */

static void test_oom_request(void **state)
{
    (void)state;
    tst_oom_request(&TR, "tools_result");
    tst_oom_request(&TR, "image_input");
    tst_oom_request(&TR, "system_multiturn");
    tst_oom_request(&TR, "thinking_suffix");
    tst_oom_request(&TR, "tools_call");
}

struct from_message_case {
    const cJSON *msg, *req;
};

static int try_from_message(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct from_message_case *fc = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_chat_claude_from_message(fc->msg, fc->req, TEST_ID, TEST_CREATED, out, NULL, err);
    cm_alloc_fail_at(0);
    return rc;
}

/* The stream, the aggregation and from_message on the Message the stream describes. */
static void oom_stream_and_aggregate(const char *cs)
{
    size_t rlen = 0, ulen = 0;
    char *raw = tst_fixture(TR.sub, cs, "in.json", &rlen);
    char *up = tst_fixture(TR.sub, cs, "upstream.sse", &ulen);
    cJSON *req = tst_parse(raw, rlen), *msg = rebuild_message(up, ulen);
    struct from_message_case fc = {msg, req};

    tst_oom_stream_and_aggregate(&TR, cs);
    assert_true(tst_oom_walk(try_from_message, &fc, 20000, 0) >= 10);
    cJSON_Delete(msg);
    cJSON_Delete(req);
    cm_free(raw);
    cm_free(up);
}

static void test_oom_stream_and_aggregate(void **state)
{
    (void)state;
    oom_stream_and_aggregate("tools_call");
    oom_stream_and_aggregate("thinking_interleaved");
    oom_stream_and_aggregate("usage_cache");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_request_tool_results_order),
        cmocka_unit_test(test_request_rules),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_stream_early_end),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_stream_malformed),
        cmocka_unit_test(test_stream_ignores),
        cmocka_unit_test(test_stream_args),
        cmocka_unit_test(test_stream_limits),
        cmocka_unit_test(test_from_message),
        cmocka_unit_test(test_oom_request),
        cmocka_unit_test(test_oom_stream_and_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
