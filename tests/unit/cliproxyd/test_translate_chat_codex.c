/* SPDX-License-Identifier: MIT */
/*
 * test_translate_chat_codex.c - the chat.completions <-> Codex translator against the
 * fixtures in tests/fixtures/translate/chat_codex/<case>/: in.json -> expected.json (request,
 * compared as trees), upstream.sse -> expected.sse (event by event, each upstream stream fed
 * through cm_sse whole, byte by byte and cut in two at every byte), upstream.sse ->
 * expected_nonstream.json (aggregation). Then the error paths (field-naming 400s, early end
 * -> 408, response.failed, malformed events, limits) and an OOM walk over each translation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/chat_codex.h"
#include "tst_support.h"

#define TEST_ID "chatcmpl-test"
#define TEST_CREATED 1700000000

TST_TRANSLATOR(TR, cp_tr_chat_codex, "chat_codex", tst_assert_chat_sse_equal, NULL, TEST_ID,
               TEST_CREATED);

/* ---- the fixtures ---- */

static void test_fixtures(void **state)
{
    static const struct tst_fixture_run run = {
        .tr = &TR,
        .cut_step = 7,
        .min_cases = 6,
        .min_requests = 6,
        .min_streams = 5,
        .min_aggs = 5,
    };

    (void)state;
    tst_run_fixtures(&run);
}

/* ---- request errors ---- */

#define translate_str(json, out, err) tst_translate_str(cp_tr_chat_codex_request, json, out, err)
#define expect_field_error(json, rc, field)                                                        \
    tst_expect_field_error(cp_tr_chat_codex_request, json, rc, field)

static void test_request_errors(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL;

    (void)state;
    /* the brief's example: an audio part is refused, naming the part */
    expect_field_error(
        "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
        "{\"role\":\"assistant\",\"content\":\"b\"},{\"role\":\"user\",\"content\":\"c\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
        CM_ERR_INVAL, "messages[3].content[1].type");
    assert_int_equal(
        translate_str("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "[{\"type\":\"input_audio\"}]}]}",
                      &out, &err),
        CM_ERR_INVAL);
    assert_non_null(strstr(err.msg, "input_audio"));
    /* images only from users */
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"assistant\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error(
        "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
        CM_ERR_INVAL, "messages[0].role");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "messages[0].tool_call_id");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"content\":\"x\"}]}", CM_ERR_INVAL,
                       "messages[0].role");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\"}]}", CM_ERR_INVAL,
                       "messages[0].content");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[]}", CM_ERR_INVAL, "messages");
    expect_field_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", CM_ERR_INVAL,
                       "model");
    expect_field_error(
        "{\"model\":\"gpt-5(turbo)\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        CM_ERR_INVAL, "model");
    expect_field_error("{\"model\":\"gpt-5\",\"reasoning_effort\":\"huge\",\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "reasoning_effort");
    expect_field_error(
        "{\"model\":\"gpt-5\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        CM_ERR_INVAL, "n");
    expect_field_error("{\"model\":\"gpt-5\",\"logprobs\":true,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "logprobs");
    expect_field_error("{\"model\":\"gpt-5\",\"functions\":[],\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "functions");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tools\":[{\"type\":\"function\",\"function\":{\"description\":\"d\"}}]}",
                       CM_ERR_INVAL, "tools[0].function.name");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tool_choice\":\"sometimes\"}",
                       CM_ERR_INVAL, "tool_choice");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"response_format\":{\"type\":\"yaml\"}}",
                       CM_ERR_INVAL, "response_format.type");
    expect_field_error(
        "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{}}]}]}",
        CM_ERR_INVAL, "messages[0].tool_calls[0].function.name");
    expect_field_error(
        "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\","
        "\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
        CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tool_choice\":{\"type\":\"allowed_tools\"}}",
                       CM_ERR_INVAL, "tool_choice.type");
    expect_field_error("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"text\":{\"verbosity\":3}}",
                       CM_ERR_INVAL, "text.verbosity");
    assert_int_equal(cp_tr_chat_codex_request(NULL, &out, &err), CM_ERR_INVAL);
    assert_int_equal(err.status, 400);
}

static const char RULES_WANT[] =
    "{\"instructions\":\"\",\"stream\":true,\"reasoning\":{\"effort\":\"high\",\"summary\":"
    "\"auto\"},\"parallel_tool_calls\":false,\"include\":[\"reasoning.encrypted_content\"],"
    "\"model\":\"gpt-5-codex\",\"store\":false,\"input\":[{\"type\":\"message\",\"role\":"
    "\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"x\"}]}],\"text\":{\"format\":"
    "{\"type\":\"json_schema\",\"name\":\"s\",\"strict\":true,\"schema\":{\"type\":\"object\"}},"
    "\"verbosity\":\"low\"},\"service_tier\":\"priority\"}";

static void test_request_rules(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL, *want;
    char *s = NULL;
    size_t n = 0;
    const char *deep;

    (void)state;
    /* suffix beats body; budgets map to levels; service_tier kept only when priority;
     * response_format and verbosity go to text; dropped knobs are gone */
    assert_int_equal(
        translate_str("{\"model\":\"gpt-5-codex(20000)\",\"reasoning_effort\":\"low\","
                      "\"service_tier\":\"priority\",\"verbosity\":\"low\","
                      "\"temperature\":1,\"top_p\":1,\"stop\":[\"x\"],\"seed\":1,"
                      "\"parallel_tool_calls\":false,"
                      "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                      "{\"name\":\"s\",\"strict\":true,\"schema\":{\"type\":\"object\"}}},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                      &out, &err),
        CM_OK);
    want = tst_parse_str(RULES_WANT);
    tst_assert_json_equal(out, want, "rules");
    cJSON_Delete(out);
    cJSON_Delete(want);

    /* service_tier other than priority is dropped; "max" suffix -> xhigh; 0 -> none */
    assert_int_equal(
        translate_str("{\"model\":\"gpt-5(max)\",\"service_tier\":\"flex\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"x\"}]}",
                      &out, &err),
        CM_OK);
    assert_null(cJSON_GetObjectItemCaseSensitive(out, "service_tier"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(out, "reasoning"), "effort")
                            ->valuestring,
                        "xhigh");
    cJSON_Delete(out);
    assert_int_equal(translate_str("{\"model\":\"gpt-5(0)\",\"messages\":[{\"role\":\"user\","
                                   "\"content\":\"x\"}]}",
                                   &out, &err),
                     CM_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(out, "reasoning"), "effort")
                            ->valuestring,
                        "none");
    cJSON_Delete(out);

    /* built-in tool choices pass as is; text.verbosity is read when verbosity is absent */
    assert_int_equal(translate_str("{\"model\":\"gpt-5\",\"tool_choice\":{\"type\":\"web_search\"},"
                                   "\"text\":{\"verbosity\":\"high\"},\"messages\":[{\"role\":"
                                   "\"user\",\"content\":\"x\"}]}",
                                   &out, &err),
                     CM_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(out, "tool_choice"), "type")
                            ->valuestring,
                        "web_search");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(out, "text"), "verbosity")
            ->valuestring,
        "high");
    cJSON_Delete(out);

    /* raw bytes: fine, malformed, too deep */
    deep = "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    assert_int_equal(cp_tr_chat_codex_request_bytes(deep, strlen(deep), &s, &n, &err), CM_OK);
    assert_int_equal(n, strlen(s));
    assert_non_null(strstr(s, "\"store\":false"));
    cm_free(s);
    s = NULL;
    assert_int_equal(cp_tr_chat_codex_request_bytes("{\"model\":", 9, &s, &n, &err), CM_ERR_PARSE);
    assert_int_equal(err.status, 400);
    assert_null(s);
    deep = "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"metadata\":"
           "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
           "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}";
    assert_int_equal(cp_tr_chat_codex_request_bytes(deep, strlen(deep), &s, &n, &err),
                     CM_ERR_LIMIT);
    assert_int_equal(err.status, 400);
}

static void test_request_limits(void **state)
{
    (void)state;
    tst_expect_limit(cp_tr_chat_codex_request, "{\"model\":\"gpt-5\",\"messages\":[",
                     "{\"role\":\"user\",\"content\":\"m\"}", CP_TR_CHAT_CODEX_MAX_MESSAGES + 1,
                     "]}", "messages");
}

static void test_tool_name(void **state)
{
    char out[CP_TR_CHAT_CODEX_NAME_MAX + 1];
    char longname[200];

    (void)state;
    assert_int_equal(cp_tr_chat_codex_tool_name("get_weather", out, sizeof(out)), CM_OK);
    assert_string_equal(out, "get_weather");
    memset(longname, 'a', 100);
    longname[100] = '\0';
    assert_int_equal(cp_tr_chat_codex_tool_name(longname, out, sizeof(out)), CM_OK);
    assert_int_equal(strlen(out), 64);
    assert_int_equal(cp_tr_chat_codex_tool_name(longname, out, 10), CM_ERR_INVAL);
}

/* Two long names that shorten alike get distinct upstream names and both come back. */
static void test_tool_name_collision(void **state)
{
    const char *req_s =
        "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":["
        "{\"type\":\"function\",\"function\":{\"name\":\"mcp__"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa__search\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"mcp__"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb__search\"}}]}";
    cJSON *req = tst_parse_str(req_s), *out = NULL;
    const cJSON *tools;
    struct cp_tr_err err;
    struct cp_tr_chat_codex_stream st;
    struct cm_buf b;
    const char *ev = "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":"
                     "{\"id\":\"fc_1\",\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":"
                     "\"mcp__search_1\",\"arguments\":\"\"}}";

    (void)state;
    assert_int_equal(cp_tr_chat_codex_request(req, &out, &err), CM_OK);
    tools = cJSON_GetObjectItemCaseSensitive(out, "tools");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, 0), "name")->valuestring,
        "mcp__search");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, 1), "name")->valuestring,
        "mcp__search_1");
    cJSON_Delete(out);
    cm_buf_init(&b, 1 << 16);
    assert_int_equal(cp_tr_chat_codex_stream_init(&st, req, TEST_ID, TEST_CREATED, &err), CM_OK);
    assert_int_equal(cp_tr_chat_codex_stream_event(&st, NULL, 0, ev, strlen(ev), &b, &err), CM_OK);
    assert_non_null(strstr(b.data, "mcp__bbbbbbbb"));
    cp_tr_chat_codex_stream_cleanup(&st);
    cm_buf_cleanup(&b);
    cJSON_Delete(req);
}

/* ---- stream errors ---- */

static const char *const REQ = "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"x\"}],\"stream\":true}";

/* What the client sees of a stream cut short: an error, and no usage. */
static void check_early_end(struct tst_drive *d)
{
    cJSON *eo = tst_chat_last_error(&d->out);

    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                        CP_TR_CODEX_EARLY_EOF_MSG);
    cJSON_Delete(eo);
    assert_int_equal(cp_tr_chat_codex_stream_usage(d->st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
}

static void test_stream_early_end(void **state)
{
    (void)state;
    /* the same with nothing, with only response.created, and cut mid-text */
    tst_expect_early_end(&TR, REQ, "plain_text", "event: response.completed", 3,
                         CP_TR_CODEX_EARLY_EOF_MSG, NULL, check_early_end);
}

/* The error ending a failed stream carries the upstream's message. */
static void check_failure(struct tst_drive *d, size_t i)
{
    cJSON *eo = tst_chat_last_error(&d->out);

    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                        tst_codex_failures[i].msg);
    cJSON_Delete(eo);
}

static void test_stream_failed(void **state)
{
    (void)state;
    tst_expect_codex_failures(&TR, REQ, check_failure);
}

static void test_stream_malformed(void **state)
{
    (void)state;
    tst_expect_bad_events(&TR, REQ, tst_codex_bad_events, TST_CODEX_BAD_EVENTS, tst_chat_last_error,
                          NULL, NULL);
}

/* Unknown events are ignored; events after [DONE]-worthy completion are ignored. */
static void test_stream_ignores(void **state)
{
    cJSON *req = tst_parse_str(REQ);
    struct tst_drive d;
    const char *s =
        "event: codex.rate_limits\ndata: {\"type\":\"codex.rate_limits\",\"primary\":{}}\n\n"
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n"
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
        "\"delta\":\"LATE\"}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n";
    const char *want =
        "data: "
        "{\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-5\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"
        "data: "
        "{\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-5\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
        "\n\n"
        "data: [DONE]\n\n";

    (void)state;
    tst_expect_stream(&d, &TR, req, s, want, "ignores");
    assert_int_equal(cp_tr_chat_codex_stream_usage(d.st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
    tst_drive_cleanup(&d);
    cJSON_Delete(req);
}

/* ---- OOM walks: every allocation failure is reported cleanly (ASan checks for leaks) ---- */

static void test_oom_request(void **state)
{
    (void)state;
    tst_oom_request(&TR, "tools_result");
}

static void test_oom_stream_and_aggregate(void **state)
{
    (void)state;
    tst_oom_stream_and_aggregate(&TR, "tools_call");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),         cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_request_rules),    cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_tool_name),        cmocka_unit_test(test_tool_name_collision),
        cmocka_unit_test(test_stream_early_end), cmocka_unit_test(test_stream_failed),
        cmocka_unit_test(test_stream_malformed), cmocka_unit_test(test_stream_ignores),
        cmocka_unit_test(test_oom_request),      cmocka_unit_test(test_oom_stream_and_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
