/* SPDX-License-Identifier: MIT */
/*
 * test_translate_messages_codex.c - the Anthropic Messages <-> Codex translator against the
 * fixtures in tests/fixtures/translate/messages_codex/<case>/: in.json -> expected.json
 * (request, compared as trees), upstream.sse -> expected.sse (event by event: the "event:"
 * name and the JSON data; each upstream stream fed through cm_sse whole, byte by byte and cut
 * in two at every byte), upstream.sse -> expected_nonstream.json (aggregation). Then the
 * error paths (field-naming 400s, early end -> 408, response.failed, malformed events,
 * limits), the has_content contract the relay relies on, and an OOM walk over each piece.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/messages_codex.h"
#include "tst_support.h"

#define TEST_ID "msg_test"

TST_HAS_CONTENT(has_content, cp_tr_messages_codex)
TST_TRANSLATOR(TR, cp_tr_messages_codex, "messages_codex", tst_assert_anthropic_sse_equal,
               has_content, TEST_ID);

static const char *jstr(const cJSON *o, const char *path1, const char *path2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);
    if (path2)
        v = cJSON_GetObjectItemCaseSensitive(v, path2);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* ---- the fixtures ---- */

/* What the relay may hold back: everything before the first delta, and no delta in it. */
static void check_held_back(const struct tst_drive *d, const struct cp_tr_usage *u)
{
    struct tst_events e;

    (void)u;
    assert_true(d->content_seen);
    tst_events_parse(&e, d->out.data, d->content_at);
    for (size_t i = 0; i < e.n; i++)
        assert_string_not_equal(e.type[i], "content_block_delta");
    tst_events_free(&e);
    assert_non_null(strstr(d->out.data + d->content_at, "event: content_block_delta\n"));
}

static void test_fixtures(void **state)
{
    static const struct tst_fixture_run run = {
        .tr = &TR,
        .cut_step = 1,
        .cut_fast = true,
        .min_cases = 10,
        .min_requests = 10,
        .min_streams = 9,
        .min_aggs = 9,
        .check_stream = check_held_back,
    };

    (void)state;
    tst_run_fixtures(&run);
}

/* ---- request errors ---- */

#define translate_str(json, out, err)                                                              \
    tst_translate_str(cp_tr_messages_codex_request, json, out, err)
#define expect_field_error(json, rc, field)                                                        \
    tst_expect_field_error(cp_tr_messages_codex_request, json, rc, field)

#define M "\"model\":\"gpt-5\","
#define U "{\"role\":\"user\",\"content\":\"x\"}"

static void test_request_errors(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL;

    (void)state;
    expect_field_error("{\"messages\":[" U "]}", CM_ERR_INVAL, "model");
    expect_field_error("{" M "\"max_tokens\":5}", CM_ERR_INVAL, "messages");
    expect_field_error("{" M "\"messages\":{}}", CM_ERR_INVAL, "messages");
    expect_field_error("{" M "\"messages\":[]}", CM_ERR_INVAL, "messages");
    expect_field_error("{\"model\":\"gpt-5(turbo)\",\"messages\":[" U "]}", CM_ERR_INVAL, "model");
    expect_field_error("{" M "\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "messages[0].role");
    expect_field_error("{" M "\"messages\":[{\"content\":\"x\"}]}", CM_ERR_INVAL,
                       "messages[0].role");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\"}]}", CM_ERR_INVAL,
                       "messages[0].content");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":7}]}", CM_ERR_INVAL,
                       "messages[0].content");
    /* an unknown block names its position */
    expect_field_error("{" M "\"messages\":[" U ",{\"role\":\"assistant\",\"content\":\"b\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
                       "{\"type\":\"audio\",\"data\":\"AA==\"}]}]}",
                       CM_ERR_INVAL, "messages[2].content[1].type");
    assert_int_equal(translate_str("{" M "\"messages\":[{\"role\":\"user\",\"content\":"
                                   "[{\"type\":\"search_result\"}]}]}",
                                   &out, &err),
                     CM_ERR_INVAL);
    assert_non_null(strstr(err.msg, "search_result"));
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error("{" M
                       "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].text");
    /* role-bound blocks */
    expect_field_error("{" M
                       "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"image\","
                       "\"source\":{\"type\":\"url\",\"url\":\"u\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\","
                       "\"id\":\"t\",\"name\":\"n\",\"input\":{}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error("{" M "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
                       "\"tool_result\",\"tool_use_id\":\"t\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    /* block fields */
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
                       "\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].source.type");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
                       "\"source\":{\"type\":\"base64\",\"data\":\"AA\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].source.media_type");
    expect_field_error("{" M
                       "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].source");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
                       "\"source\":{\"type\":\"content\",\"content\":[]}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].source.type");
    expect_field_error("{" M "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
                       "\"tool_use\",\"name\":\"n\",\"input\":{}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].id");
    expect_field_error("{" M "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":"
                       "\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":\"{}\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].input");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"tool_result\",\"content\":\"r\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].tool_use_id");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"a\"},{\"type\":\"tool_use\"}]}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].content[1].type");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"tool_result\",\"tool_use_id\":\"t\",\"content\":5}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].content");
    expect_field_error("{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"tool_result\",\"tool_use_id\":\"t\",\"is_error\":\"yes\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].is_error");
    /* system */
    expect_field_error("{" M "\"system\":5,\"messages\":[" U "]}", CM_ERR_INVAL, "system");
    expect_field_error("{" M "\"system\":[{\"type\":\"image\"}],\"messages\":[" U "]}",
                       CM_ERR_INVAL, "system[0].type");
    expect_field_error("{" M "\"system\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\"}],"
                       "\"messages\":[" U "]}",
                       CM_ERR_INVAL, "system[1].text");
    /* thinking */
    expect_field_error("{" M "\"thinking\":{\"type\":\"sometimes\"},\"messages\":[" U "]}",
                       CM_ERR_INVAL, "thinking.type");
    expect_field_error("{" M "\"thinking\":{\"type\":\"enabled\"},\"messages\":[" U "]}",
                       CM_ERR_INVAL, "thinking.budget_tokens");
    expect_field_error("{" M "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":-5},"
                       "\"messages\":[" U "]}",
                       CM_ERR_INVAL, "thinking.budget_tokens");
    expect_field_error("{" M "\"thinking\":true,\"messages\":[" U "]}", CM_ERR_INVAL, "thinking");
    expect_field_error("{" M "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":"
                       "\"huge\"},\"messages\":[" U "]}",
                       CM_ERR_INVAL, "output_config.effort");
    /* tools, tool_choice */
    expect_field_error("{" M "\"messages\":[" U "],\"tools\":{}}", CM_ERR_INVAL, "tools");
    expect_field_error("{" M "\"messages\":[" U "],\"tools\":[{\"description\":\"d\"}]}",
                       CM_ERR_INVAL, "tools[0].name");
    expect_field_error("{" M "\"messages\":[" U "],\"tools\":[{\"name\":\"\"}]}", CM_ERR_INVAL,
                       "tools[0].name");
    expect_field_error("{" M "\"messages\":[" U "],\"tools\":[{\"name\":\"a\"},"
                       "{\"type\":\"bash_20250124\",\"name\":\"bash\"}]}",
                       CM_ERR_INVAL, "tools[1].type");
    expect_field_error("{" M "\"messages\":[" U
                       "],\"tools\":[{\"name\":\"a\",\"input_schema\":3}]}",
                       CM_ERR_INVAL, "tools[0].input_schema");
    expect_field_error("{" M "\"messages\":[" U "],\"tool_choice\":\"auto\"}", CM_ERR_INVAL,
                       "tool_choice");
    expect_field_error("{" M "\"messages\":[" U "],\"tool_choice\":{\"type\":\"required\"}}",
                       CM_ERR_INVAL, "tool_choice.type");
    expect_field_error("{" M "\"messages\":[" U "],\"tool_choice\":{\"type\":\"tool\"}}",
                       CM_ERR_INVAL, "tool_choice.name");
    expect_field_error("{" M "\"messages\":[" U "],\"mcp_servers\":[{\"type\":\"url\"}]}",
                       CM_ERR_INVAL, "mcp_servers");
    assert_int_equal(cp_tr_messages_codex_request(NULL, &out, &err), CM_ERR_INVAL);
    assert_int_equal(err.status, 400);
    assert_int_equal(cp_tr_messages_codex_request(NULL, NULL, &err), CM_ERR_INVAL);
}

/* reasoning.effort for a request body fragment @p extra and model @p model. */
static void expect_effort(const char *model, const char *extra, const char *want)
{
    struct cm_buf b;
    struct cp_tr_err err;
    cJSON *out = NULL;

    cm_buf_init(&b, 4096);
    assert_int_equal(cm_buf_appendf(&b, "{\"model\":\"%s\",%s%s\"messages\":[" U "]}", model, extra,
                                    extra[0] ? "," : ""),
                     CM_OK);
    if (translate_str(b.data, &out, &err))
        fail_msg("%s: %s", b.data, err.msg);
    if (strcmp(jstr(out, "reasoning", "effort"), want) != 0)
        fail_msg("%s: effort %s, want %s", b.data, jstr(out, "reasoning", "effort"), want);
    assert_string_equal(jstr(out, "reasoning", "summary"), "auto");
    cJSON_Delete(out);
    cm_buf_cleanup(&b);
}

static void test_request_rules(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL;
    const cJSON *v;

    (void)state;
    /* 5.1 Claude -> Codex: budget thresholds, adaptive, disabled, default; suffix wins */
    expect_effort("gpt-5", "", "medium");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":0}", "none");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":512}", "minimal");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":513}", "low");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}", "low");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":8192}", "medium");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":24576}", "high");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":24577}", "xhigh");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"adaptive\"}", "xhigh");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"auto\"}", "xhigh");
    expect_effort("gpt-5",
                  "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":"
                  "\"max\"}",
                  "xhigh");
    expect_effort("gpt-5",
                  "\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":"
                  "\"high\"}",
                  "high");
    expect_effort("gpt-5", "\"thinking\":{\"type\":\"disabled\"}", "none");
    expect_effort("gpt-5", "\"output_config\":{\"effort\":\"low\"}", "medium");
    expect_effort("gpt-5(high)", "\"thinking\":{\"type\":\"disabled\"}", "high");
    expect_effort("gpt-5(2048)", "\"thinking\":{\"type\":\"adaptive\"}", "medium");
    expect_effort("gpt-5(none)", "", "none");

    /* knobs Codex refuses are gone; web search maps to Codex's; auto/none choices pass */
    assert_int_equal(translate_str("{" M "\"max_tokens\":9,\"temperature\":1,\"top_p\":1,\"top_k\":"
                                   "5,\"stop_sequences\":[\"x\"],\"metadata\":{\"user_id\":\"u\"},"
                                   "\"service_tier\":\"auto\",\"stream\":false,"
                                   "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":"
                                   "\"web_search\",\"max_uses\":5}],"
                                   "\"tool_choice\":{\"type\":\"auto\"},\"messages\":[" U "]}",
                                   &out, &err),
                     CM_OK);
    for (const char *const *k =
             (const char *const[]){"max_tokens", "temperature", "top_p", "top_k", "stop_sequences",
                                   "metadata", "service_tier", "max_output_tokens", NULL};
         *k; k++)
        assert_null(cJSON_GetObjectItemCaseSensitive(out, *k));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "stream")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(out, "store")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "parallel_tool_calls")));
    assert_string_equal(jstr(out, "instructions", NULL), "");
    v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(out, "tools"), 0);
    assert_string_equal(jstr(v, "type", NULL), "web_search");
    assert_int_equal(cJSON_GetArraySize(v), 1);
    assert_string_equal(jstr(out, "tool_choice", NULL), "auto");
    cJSON_Delete(out);
    assert_int_equal(translate_str("{" M "\"tool_choice\":{\"type\":\"none\"},\"messages\":[" U
                                   "]}",
                                   &out, &err),
                     CM_OK);
    assert_string_equal(jstr(out, "tool_choice", NULL), "none");
    cJSON_Delete(out);

    /* a system made only of billing headers gives no developer message; empty mcp_servers ok */
    assert_int_equal(translate_str("{" M
                                   "\"mcp_servers\":[],\"system\":\"x-anthropic-billing-header:"
                                   " cc_version=1\",\"messages\":[" U "]}",
                                   &out, &err),
                     CM_OK);
    v = cJSON_GetObjectItemCaseSensitive(out, "input");
    assert_int_equal(cJSON_GetArraySize(v), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(v, 0), "role", NULL), "user");
    cJSON_Delete(out);

    /* a billing header in the middle of a string system; a line that merely mentions it stays */
    assert_int_equal(translate_str("{" M "\"system\":\"a\\nx-anthropic-billing-header: z\\nb\\n "
                                   "x-anthropic-billing-header: kept\",\"messages\":[" U "]}",
                                   &out, &err),
                     CM_OK);
    v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(out, "input"), 0);
    assert_string_equal(jstr(v, "role", NULL), "developer");
    assert_string_equal(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v, "content"), 0), "text", NULL),
        "a\nb\n x-anthropic-billing-header: kept");
    cJSON_Delete(out);

    /* tool_use without input -> "{}" arguments; tool names not declared are still shortened */
    assert_int_equal(
        translate_str("{" M
                      "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
                      "\"id\":\"t1\",\"name\":\"mcp__server_with_a_really_long_name_that_goes_on_"
                      "and_on_and_on_forever__do_it\"}"
                      "]}]}",
                      &out, &err),
        CM_OK);
    v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(out, "input"), 0);
    assert_string_equal(jstr(v, "type", NULL), "function_call");
    assert_string_equal(jstr(v, "arguments", NULL), "{}");
    assert_string_equal(jstr(v, "name", NULL), "mcp__do_it");
    cJSON_Delete(out);
}

static void test_request_limits(void **state)
{
    (void)state;
    tst_expect_limit(cp_tr_messages_codex_request, "{" M "\"messages\":[", U,
                     CP_TR_MESSAGES_CODEX_MAX_MESSAGES + 1, "]}", "messages");
    tst_expect_limit(cp_tr_messages_codex_request,
                     "{" M "\"messages\":[{\"role\":\"user\",\"content\":[",
                     "{\"type\":\"text\",\"text\":\"m\"}", CP_TR_MESSAGES_CODEX_MAX_BLOCKS + 1,
                     "]}]}", "messages[0].content");
    tst_expect_limit(cp_tr_messages_codex_request, "{" M "\"messages\":[" U "],\"tools\":[",
                     "{\"name\":\"t%d\"}", CP_TR_MESSAGES_CODEX_MAX_TOOLS + 1, "]}", "tools");
}

/* Two long names that shorten alike get distinct upstream names and both come back. */
static void test_tool_name_collision(void **state)
{
    const char *req_s =
        "{" M "\"messages\":[" U "],\"tools\":["
        "{\"name\":\"mcp__aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa__search\"},"
        "{\"name\":\"mcp__bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb__search\"}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":"
        "\"mcp__bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb__search\"}}";
    cJSON *req = tst_parse_str(req_s), *out = NULL;
    const cJSON *tools;
    struct cp_tr_err err;
    struct tst_drive d;
    const char *up =
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\","
        "\"output_index\":0,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"call_id\":"
        "\"c1\",\"name\":\"mcp__search_1\",\"arguments\":\"\"}}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{"
        "\"output\":[{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"mcp__search_1\","
        "\"arguments\":\"{\\\"q\\\":1}\"}]}}\n\n";

    (void)state;
    assert_int_equal(cp_tr_messages_codex_request(req, &out, &err), CM_OK);
    tools = cJSON_GetObjectItemCaseSensitive(out, "tools");
    assert_string_equal(jstr(cJSON_GetArrayItem(tools, 0), "name", NULL), "mcp__search");
    assert_string_equal(jstr(cJSON_GetArrayItem(tools, 1), "name", NULL), "mcp__search_1");
    assert_string_equal(jstr(out, "tool_choice", "name"), "mcp__search_1");
    cJSON_Delete(out);

    assert_int_equal(tst_run_stream(&d, &TR, req, up, strlen(up)), CM_OK);
    assert_non_null(strstr(d.out.data, "\"name\":\"mcp__bbbbbbbb"));
    assert_null(strstr(d.out.data, "mcp__search_1"));
    tst_drive_cleanup(&d);
    assert_int_equal(cp_tr_messages_codex_aggregate(up, strlen(up), req, TEST_ID, &out, NULL, &err),
                     CM_OK);
    assert_string_equal(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(out, "content"), 0), "name", NULL),
        "mcp__bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb__search");
    cJSON_Delete(out);
    cJSON_Delete(req);
}

/* ---- stream errors ---- */

static const char *const REQ = "{" M "\"max_tokens\":10,\"stream\":true,\"messages\":[" U "]}";

/* What the client sees of a stream cut short: an error, no usage, and finish() is done. */
static void check_early_end(struct tst_drive *d)
{
    cJSON *eo = tst_anthropic_last_error(&d->out);
    size_t before = d->out.len;

    assert_string_equal(jstr(eo, "message", NULL), CP_TR_CODEX_EARLY_EOF_MSG);
    assert_string_equal(jstr(eo, "type", NULL), "api_error");
    cJSON_Delete(eo);
    assert_int_equal(cp_tr_messages_codex_stream_usage(d->st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
    /* finish twice: nothing more */
    assert_int_equal(cp_tr_messages_codex_stream_finish(d->st, &d->out, NULL), CM_OK);
    assert_int_equal(d->out.len, before);
}

static void test_stream_early_end(void **state)
{
    (void)state;
    /* nothing, only response.created, cut mid-thinking, cut mid-text */
    tst_expect_early_end(&TR, REQ, "thinking_budget", "event: response.completed", 4,
                         CP_TR_CODEX_EARLY_EOF_MSG, NULL, check_early_end);
}

/* A failure before content: no block opened, and the error names the Anthropic type. */
static void check_failure(struct tst_drive *d, size_t i)
{
    static const char *const anthropic_type[TST_CODEX_FAILURES] = {
        "rate_limit_error", "invalid_request_error", "overloaded_error",
        "overloaded_error", "authentication_error",  "api_error",
    };
    cJSON *eo;

    assert_false(cp_tr_messages_codex_stream_has_content(d->st));
    eo = tst_anthropic_last_error(&d->out);
    assert_string_equal(jstr(eo, "message", NULL), tst_codex_failures[i].msg);
    assert_string_equal(jstr(eo, "type", NULL), anthropic_type[i]);
    cJSON_Delete(eo);
}

static void test_stream_failed(void **state)
{
    (void)state;
    tst_expect_codex_failures(&TR, REQ, check_failure);
}

/* A failure after content: the open block is left as is and the error ends the stream. */
static void test_stream_failed_after_content(void **state)
{
    cJSON *req = tst_parse_str(REQ), *eo;
    struct tst_drive d;
    const char *s =
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n"
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
        "\"delta\":\"Hel\"}\n\n"
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{"
        "\"code\":\"server_error\",\"message\":\"oops\"}}}\n\n";

    (void)state;
    assert_int_equal(tst_run_stream(&d, &TR, req, s, strlen(s)), CM_ERR_UPSTREAM);
    assert_true(cp_tr_messages_codex_stream_has_content(d.st));
    assert_non_null(strstr(d.out.data, "\"text\":\"Hel\""));
    eo = tst_anthropic_last_error(&d.out);
    assert_string_equal(jstr(eo, "type", NULL), "api_error");
    cJSON_Delete(eo);
    tst_drive_cleanup(&d);
    cJSON_Delete(req);
}

static void test_stream_malformed(void **state)
{
    (void)state;
    tst_expect_bad_events(&TR, REQ, tst_codex_bad_events, TST_CODEX_BAD_EVENTS,
                          tst_anthropic_last_error, "type", "api_error");
}

/*
 * Unknown events emit nothing (not even message_start); a data-only stream works; a function
 * call announced only by output_item.done becomes a whole tool_use block; events after the
 * terminal one are ignored; bad arguments are refused.
 */
static void test_stream_ignores(void **state)
{
    cJSON *req = tst_parse_str(REQ);
    struct cp_tr_messages_codex_stream st;
    struct cm_buf b;
    struct tst_drive d;
    const char *rl = "{\"type\":\"codex.rate_limits\",\"primary\":{}}";
    const char *s =
        "event: codex.rate_limits\ndata: {\"type\":\"codex.rate_limits\",\"primary\":{}}\n\n"
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"\"}\n\n"
        "data: {\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"id\":\"fc\","
        "\"type\":\"function_call\",\"call_id\":\"c9\",\"name\":\"f\",\"arguments\":\"{}\"}}\n\n"
        "data: [DONE]\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n"
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
        "\"delta\":\"LATE\"}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n";
    const char *want =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_test\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-5\",\"content\":[],"
        "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
        "\"output_tokens\":0}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"c9\",\"name\":\"f\",\"input\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":0,\"output_tokens\":0,"
        "\"cache_read_input_tokens\":0}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    (void)state;
    cm_buf_init(&b, 1 << 16);
    assert_int_equal(cp_tr_messages_codex_stream_init(&st, req, TEST_ID, NULL), CM_OK);
    assert_int_equal(
        cp_tr_messages_codex_stream_event(&st, "codex.rate_limits", 17, rl, strlen(rl), &b, NULL),
        CM_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(cp_tr_messages_codex_stream_event(&st, NULL, 0, rl, strlen(rl), NULL, NULL),
                     CM_ERR_INVAL);
    cp_tr_messages_codex_stream_cleanup(&st);
    cp_tr_messages_codex_stream_cleanup(&st); /* twice is fine */
    assert_int_equal(cp_tr_messages_codex_stream_event(&st, NULL, 0, rl, strlen(rl), &b, NULL),
                     CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_codex_stream_init(&st, req, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_codex_stream_init(NULL, req, TEST_ID, NULL), CM_ERR_INVAL);
    assert_false(cp_tr_messages_codex_stream_has_content(NULL));
    cm_buf_cleanup(&b);

    tst_expect_stream(&d, &TR, req, s, want, "ignores");
    assert_int_equal(cp_tr_messages_codex_stream_usage(d.st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
    tst_drive_cleanup(&d);
    cJSON_Delete(req);
}

/* Non-stream details: empty/invalid arguments give {}, refusals are text, NULL client_req. */
static void test_aggregate_details(void **state)
{
    const char *up =
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{"
        "\"model\":\"gpt-5-x\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":"
        "\"content_filter\"},\"output\":["
        "{\"type\":\"reasoning\",\"summary\":[]},"
        "{\"type\":\"message\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"No.\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"a\",\"name\":\"f\",\"arguments\":\"\"},"
        "{\"type\":\"function_call\",\"call_id\":\"b\",\"name\":\"g\",\"arguments\":\"[1]\"}],"
        "\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}}\n\n";
    const char *want =
        "{\"id\":\"msg_test\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-5-x\","
        "\"content\":[{\"type\":\"text\",\"text\":\"No.\"},{\"type\":\"tool_use\",\"id\":\"a\","
        "\"name\":\"f\",\"input\":{}},{\"type\":\"tool_use\",\"id\":\"b\",\"name\":\"g\","
        "\"input\":{}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{"
        "\"input_tokens\":5,\"output_tokens\":2,\"cache_read_input_tokens\":0}}";
    cJSON *out = NULL, *w;
    struct cp_tr_usage u;
    struct cp_tr_err err;

    (void)state;
    assert_int_equal(cp_tr_messages_codex_aggregate(up, strlen(up), NULL, TEST_ID, &out, &u, &err),
                     CM_OK);
    w = tst_parse_str(want);
    tst_assert_json_equal(out, w, "aggregate details");
    assert_int_equal(u.input, 5);
    assert_int_equal(u.total, 7);
    cJSON_Delete(out);
    cJSON_Delete(w);
    assert_int_equal(cp_tr_messages_codex_aggregate(up, strlen(up), NULL, NULL, &out, &u, &err),
                     CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_codex_aggregate(NULL, 3, NULL, TEST_ID, &out, &u, &err),
                     CM_ERR_INVAL);
}

/* ---- OOM walks: every allocation failure is reported cleanly (ASan checks for leaks) ---- */

static void test_oom_request(void **state)
{
    (void)state;
    tst_oom_request(&TR, "tools_result");
    tst_oom_request(&TR, "image_input");
    tst_oom_request(&TR, "system_multiturn");
}

static void test_oom_stream_and_aggregate(void **state)
{
    (void)state;
    tst_oom_stream_and_aggregate(&TR, "tools_call");
    tst_oom_stream_and_aggregate(&TR, "thinking_budget");
    tst_oom_stream_and_aggregate(&TR, "long_tool_name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_request_rules),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_tool_name_collision),
        cmocka_unit_test(test_stream_early_end),
        cmocka_unit_test(test_stream_failed),
        cmocka_unit_test(test_stream_failed_after_content),
        cmocka_unit_test(test_stream_malformed),
        cmocka_unit_test(test_stream_ignores),
        cmocka_unit_test(test_aggregate_details),
        cmocka_unit_test(test_oom_request),
        cmocka_unit_test(test_oom_stream_and_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
