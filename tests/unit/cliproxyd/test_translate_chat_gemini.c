/* SPDX-License-Identifier: MIT */
/*
 * test_translate_chat_gemini.c - the chat.completions <-> Gemini GenerateContent translator
 * against the fixtures in tests/fixtures/translate/chat_gemini/<case>/: in.json ->
 * expected.json (request), upstream.sse -> expected.sse (raw and Gemini CLI-wrapped events,
 * fed whole, byte by byte and cut in two at every byte), upstream.sse ->
 * expected_nonstream.json (aggregation). Then the request rules and refusals (field-naming
 * 400s, limits), the stream's end without finishReason (408), error events, malformed
 * events, aggregation of JSON bodies (object, array, wrapped), and OOM walks.
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
#include "translate/chat_gemini.h"
#include "tst_support.h"

#define TEST_ID "chatcmpl-test"
#define TEST_CREATED 1700000000

/* ---- the translator seen through tst_support (request wrapped: it also returns a model) ---- */

static int tr_request(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    char *base = NULL;
    int rc = cp_tr_chat_gemini_request(req, out, &base, err);

    cm_free(base);
    return rc;
}

static int tr_aggregate(const char *sse, size_t len, const cJSON *req, cJSON **out,
                        struct cp_tr_usage *u, struct cp_tr_err *err)
{
    return cp_tr_chat_gemini_aggregate(sse, len, req, TEST_ID, TEST_CREATED, out, u, err);
}

static int tr_init(void *st, const cJSON *req, struct cp_tr_err *err)
{
    return cp_tr_chat_gemini_stream_init(st, req, TEST_ID, TEST_CREATED, err);
}

static int tr_event(void *st, const char *type, size_t type_len, const char *data, size_t data_len,
                    struct cm_buf *out, struct cp_tr_err *err)
{
    return cp_tr_chat_gemini_stream_event(st, type, type_len, data, data_len, out, err);
}

static int tr_finish(void *st, struct cm_buf *out, struct cp_tr_err *err)
{
    return cp_tr_chat_gemini_stream_finish(st, out, err);
}

static void tr_cleanup(void *st)
{
    cp_tr_chat_gemini_stream_cleanup(st);
}

static int tr_usage(const void *st, struct cp_tr_usage *u)
{
    return cp_tr_chat_gemini_stream_usage(st, u);
}

static bool tr_has_content(const void *st)
{
    return cp_tr_chat_gemini_stream_has_content(st);
}

static const struct tst_translator TR = {"chat_gemini",
                                         tst_assert_chat_sse_equal,
                                         tr_request,
                                         tr_aggregate,
                                         sizeof(struct cp_tr_chat_gemini_stream),
                                         tr_init,
                                         tr_event,
                                         tr_finish,
                                         tr_cleanup,
                                         tr_usage,
                                         tr_has_content};

/* The member at dotted @p path ("choices.0.delta"; numbers index arrays), or NULL. */
static const cJSON *member(const cJSON *o, const char *path)
{
    char buf[160];
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

/* ---- the fixtures ---- */

static void check_stream(const struct tst_drive *d, const struct cp_tr_usage *u)
{
    assert_true(u->total >= u->input + u->output - u->reasoning);
    assert_int_equal(cp_tr_chat_gemini_stream_has_content(d->st), d->content_seen);
}

static void test_fixtures(void **state)
{
    static const struct tst_fixture_run run = {
        .tr = &TR,
        .cut_step = 1,
        .min_cases = 9,
        .min_requests = 9,
        .min_streams = 7,
        .min_aggs = 7,
        .check_stream = check_stream,
        .check_aggregate = NULL,
    };

    (void)state;
    tst_run_fixtures(&run);
}

/* ---- request errors ---- */

#define translate_str(json, out, err) tst_translate_str(tr_request, json, out, err)
#define expect_field_error(json, rc, field) tst_expect_field_error(tr_request, json, rc, field)

#define M_USER "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
#define T_F "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]"

static void test_request_errors(void **state)
{
    static const struct {
        const char *members, *field;
    } knobs[] = {
        {"\"model\":\"\"", "model"},
        {"\"model\":\"(high)\"", "model"},
        {"\"model\":\"gemini-2.5-pro(turbo)\"", "model"},
        {"\"model\":\"g\",\"reasoning_effort\":\"huge\"", "reasoning_effort"},
        {"\"model\":\"g\",\"reasoning_effort\":\"4096\"", "reasoning_effort"},
        {"\"model\":\"g\",\"reasoning_effort\":\"-1\"", "reasoning_effort"},
        {"\"model\":\"g\",\"n\":2", "n"},
        {"\"model\":\"g\",\"logprobs\":true", "logprobs"},
        {"\"model\":\"g\",\"audio\":{\"voice\":\"alloy\"}", "audio"},
        {"\"model\":\"g\",\"modalities\":[\"text\",\"audio\"]", "modalities"},
        {"\"model\":\"g\",\"modalities\":\"image\"", "modalities"},
        {"\"model\":\"g\",\"functions\":[]", "functions"},
        {"\"model\":\"g\",\"response_format\":{\"type\":\"xml\"}", "response_format.type"},
        {"\"model\":\"g\",\"response_format\":{\"type\":\"json_schema\"}",
         "response_format.json_schema"},
        {"\"model\":\"g\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
         "{\"schema\":{\"$ref\":\"#/$defs/a\"}}}",
         "response_format.json_schema.schema"},
        {"\"model\":\"g\",\"stop\":[\"a\",3]", "stop[1]"},
        {"\"model\":\"g\",\"stop\":5", "stop"},
        {"\"model\":\"g\",\"max_tokens\":0", "max_tokens"},
        {"\"model\":\"g\",\"max_completion_tokens\":\"9\"", "max_completion_tokens"},
        {"\"model\":\"g\",\"temperature\":3", "temperature"},
        {"\"model\":\"g\",\"top_p\":\"x\"", "top_p"},
        {"\"model\":\"g\",\"top_k\":0", "top_k"},
        {"\"model\":\"g\",\"presence_penalty\":5", "presence_penalty"},
        {"\"model\":\"g\"," T_F ",\"tool_choice\":\"sometimes\"", "tool_choice"},
        {"\"model\":\"g\"," T_F ",\"tool_choice\":{\"type\":\"allowed_tools\"}",
         "tool_choice.type"},
        {"\"model\":\"g\"," T_F ",\"tool_choice\":{\"type\":\"function\",\"function\":{}}",
         "tool_choice.function.name"},
        {"\"model\":\"g\",\"tools\":[{\"type\":\"web_search\"}]", "tools[0].type"},
        {"\"model\":\"g\",\"tools\":{}", "tools"},
        {"\"model\":\"g\",\"tools\":[{\"googleSearch\":1}]", "tools[0].googleSearch"},
        {"\"model\":\"g\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"\"}}]",
         "tools[0].function.name"},
        {"\"model\":\"g\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
         "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/A\"}}}}}]",
         "tools[0].function.parameters"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
        char req[512];
        assert_true((size_t)snprintf(req, sizeof(req), "{%s," M_USER "}", knobs[i].members) <
                    sizeof(req));
        expect_field_error(req, CM_ERR_INVAL, knobs[i].field);
    }
    /* a tool result whose id no earlier assistant call has */
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                       "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"function\":"
                       "{\"name\":\"f\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c2\","
                       "\"content\":\"r\"}]}",
                       CM_ERR_INVAL, "messages[2].tool_call_id");
    /* the call must come before its result */
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c1\","
                       "\"content\":\"r\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
                       "\"c1\",\"function\":{\"name\":\"f\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].tool_call_id");
    /* parts */
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].image_url.url");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:text/plain;"
                       "base64,QQ==\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].image_url.url");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"file\",\"file\":{\"file_id\":\"file-1\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].file.file_id");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"file\",\"file\":{\"file_data\":\"data:text/csv;base64,QQ==\""
                       "}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].file.file_data");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"text\",\"text\":\"a\"},{\"type\":\"input_audio\",\"input_audio\":"
                       "{\"data\":\"AA==\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[1].input_audio.format");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"input_audio\",\"input_audio\":{\"data\":\"AA==\",\"format\":\"../x\"}}"
                       "]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].input_audio.format");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"assistant\",\"content\":"
                       "[{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA==\","
                       "\"format\":\"wav\"}}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"video\"}]}]}",
                       CM_ERR_INVAL, "messages[0].content[0].type");
    /* roles and shapes */
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
                       CM_ERR_INVAL, "messages[0].role");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
                       CM_ERR_INVAL, "messages[0].content");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"user\"}]}", CM_ERR_INVAL,
                       "messages[0].content");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}",
                       CM_ERR_INVAL, "messages");
    expect_field_error("{\"model\":\"g\",\"messages\":[]}", CM_ERR_INVAL, "messages");
    expect_field_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", CM_ERR_INVAL,
                       "model");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                       "\"function_call\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
                       CM_ERR_INVAL, "messages[0].function_call");
    expect_field_error("{\"model\":\"g\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                       "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{}}]}]}",
                       CM_ERR_INVAL, "messages[0].tool_calls[0].function.name");
    {
        struct cp_tr_err err;
        cJSON *out = NULL, *req = tst_parse_str("{\"model\":\"g\"," M_USER "}");
        char *base = (char *)(uintptr_t)1;
        assert_int_equal(cp_tr_chat_gemini_request(NULL, &out, &base, &err), CM_ERR_INVAL);
        assert_int_equal(err.status, 400);
        assert_int_equal(cp_tr_chat_gemini_request(req, NULL, &base, &err), CM_ERR_INVAL);
        assert_int_equal(err.status, 500);
        assert_int_equal(cp_tr_chat_gemini_request(req, &out, NULL, NULL), CM_ERR_INVAL);
        assert_null(out);
        assert_ptr_equal(base, (char *)(uintptr_t)1);
        cJSON_Delete(req);
    }
}

static void test_request_limits(void **state)
{
    (void)state;
    tst_expect_limit(tr_request, "{\"model\":\"g\",\"messages\":[",
                     "{\"role\":\"user\",\"content\":\"m\"}", CP_TR_CHAT_GEMINI_MAX_MESSAGES + 1,
                     "]}", "messages");
    tst_expect_limit(tr_request, "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[",
                     "{\"type\":\"text\",\"text\":\"p\"}", CP_TR_CHAT_GEMINI_MAX_PARTS + 1, "]}]}",
                     "messages[0].content");
    tst_expect_limit(tr_request, "{\"model\":\"g\"," M_USER ",\"tools\":[",
                     "{\"type\":\"function\",\"function\":{\"name\":\"f%d\"}}",
                     CP_TR_CHAT_GEMINI_MAX_TOOLS + 1, "]}", "tools");
    /* a schema nested too deep */
    {
        struct cm_buf b;
        struct cp_tr_err err;
        cJSON *out = NULL;
        cm_buf_init(&b, 1 << 20);
        assert_int_equal(cm_buf_append_str(&b, "{\"model\":\"g\"," M_USER ",\"tools\":[{\"type\":"
                                               "\"function\",\"function\":{\"name\":\"f\","
                                               "\"parameters\":"),
                         CM_OK);
        for (int i = 0; i < CP_TR_CHAT_GEMINI_SCHEMA_DEPTH + 1; i++)
            assert_int_equal(cm_buf_append_str(&b, "{\"type\":\"array\",\"items\":"), CM_OK);
        assert_int_equal(cm_buf_append_str(&b, "{\"type\":\"string\"}"), CM_OK);
        for (int i = 0; i < CP_TR_CHAT_GEMINI_SCHEMA_DEPTH + 1; i++)
            assert_int_equal(cm_buf_append_str(&b, "}"), CM_OK);
        assert_int_equal(cm_buf_append_str(&b, "}}]}"), CM_OK);
        assert_int_equal(translate_str(b.data, &out, &err), CM_ERR_LIMIT);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.field, "tools[0].function.parameters");
        assert_null(out);
        cm_buf_cleanup(&b);
    }
}

/* Translates @p json, which must succeed; the result (caller deletes). */
static cJSON *translate_ok(const char *json, char **base)
{
    struct cp_tr_err err;
    cJSON *out = NULL, *req = tst_parse_str(json);
    char *b = NULL;
    int rc = cp_tr_chat_gemini_request(req, &out, &b, &err);

    cJSON_Delete(req);
    if (rc)
        fail_msg("%s: %s", json, err.msg);
    if (base)
        *base = b;
    else
        cm_free(b);
    return out;
}

static void test_request_rules(void **state)
{
    static const struct {
        const char *model, *effort, *thinking;
    } levels[] = {
        {"g(minimal)", NULL, "{\"thinkingBudget\":512,\"includeThoughts\":true}"},
        {"g(low)", NULL, "{\"thinkingBudget\":1024,\"includeThoughts\":true}"},
        {"g(medium)", NULL, "{\"thinkingBudget\":8192,\"includeThoughts\":true}"},
        {"g(high)", "none", "{\"thinkingBudget\":24576,\"includeThoughts\":true}"},
        {"g(xhigh)", NULL, "{\"thinkingBudget\":32768,\"includeThoughts\":true}"},
        {"g(max)", NULL, "{\"thinkingBudget\":128000,\"includeThoughts\":true}"},
        {"g(auto)", NULL, "{\"thinkingBudget\":-1,\"includeThoughts\":true}"},
        {"g(-1)", NULL, "{\"thinkingBudget\":-1,\"includeThoughts\":true}"},
        {"g(100)", "high", "{\"thinkingBudget\":100,\"includeThoughts\":true}"},
        {"g(none)", "high", "{\"thinkingBudget\":0}"},
        {"g(0)", NULL, "{\"thinkingBudget\":0}"},
        {"g", "none", "{\"thinkingBudget\":0}"},
        {"g", "auto", "{\"thinkingBudget\":-1,\"includeThoughts\":true}"},
        {"g", "medium", "{\"thinkingBudget\":8192,\"includeThoughts\":true}"},
        {"g", "max", "{\"thinkingBudget\":128000,\"includeThoughts\":true}"},
        {"g", NULL, NULL},
    };
    cJSON *out;
    char *base = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        char req[256];
        if (levels[i].effort)
            snprintf(req, sizeof(req), "{\"model\":\"%s\",\"reasoning_effort\":\"%s\"," M_USER "}",
                     levels[i].model, levels[i].effort);
        else
            snprintf(req, sizeof(req), "{\"model\":\"%s\"," M_USER "}", levels[i].model);
        out = translate_ok(req, &base);
        assert_string_equal(base, "g");
        cm_free(base);
        assert_member_json(out, "generationConfig.thinkingConfig", levels[i].thinking);
        cJSON_Delete(out);
    }
    /* only the last "(...)" is the suffix; no generationConfig when nothing is set */
    out = translate_ok("{\"model\":\"gemini-x(a)(high)\"," M_USER "}", &base);
    assert_string_equal(base, "gemini-x(a)");
    cm_free(base);
    cJSON_Delete(out);
    out = translate_ok("{\"model\":\"g\",\"stream\":true,\"n\":1,\"logprobs\":false,\"tools\":[],"
                       "\"response_format\":{\"type\":\"text\"},\"modalities\":[\"text\"]," M_USER
                       "}",
                       NULL);
    assert_member_json(out, "generationConfig", "{\"candidateCount\":1}");
    assert_member_json(out, "tools", NULL);
    assert_member_json(out, "stream", NULL);
    assert_member_json(out, "model", NULL);
    cJSON_Delete(out);
    /* tool_choice modes; none keeps the tools; no declarations -> no toolConfig */
    {
        static const char *const choices[][2] = {
            {"\"auto\"", "{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}"},
            {"\"none\"", "{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"},
            {"\"required\"", "{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"},
        };
        for (size_t i = 0; i < 3; i++) {
            char req[256];
            snprintf(req, sizeof(req), "{\"model\":\"g\"," T_F ",\"tool_choice\":%s," M_USER "}",
                     choices[i][0]);
            out = translate_ok(req, NULL);
            assert_member_json(out, "toolConfig", choices[i][1]);
            assert_member_json(out, "tools.0.functionDeclarations.0", "{\"name\":\"f\"}");
            cJSON_Delete(out);
        }
        out = translate_ok("{\"model\":\"g\",\"tools\":[{\"googleSearch\":{}}],"
                           "\"tool_choice\":\"required\"," M_USER "}",
                           NULL);
        assert_member_json(out, "toolConfig", NULL);
        assert_member_json(out, "tools", "[{\"googleSearch\":{}}]");
        cJSON_Delete(out);
    }
    /* json_object, string stop, max_tokens without max_completion_tokens */
    out = translate_ok("{\"model\":\"g\",\"response_format\":{\"type\":\"json_object\"},"
                       "\"stop\":\"END\",\"max_tokens\":77,\"temperature\":0," M_USER "}",
                       NULL);
    assert_member_json(out, "generationConfig",
                       "{\"temperature\":0,\"maxOutputTokens\":77,\"stopSequences\":[\"END\"],"
                       "\"responseMimeType\":\"application/json\"}");
    cJSON_Delete(out);
    /* a tool result that is a JSON array is not an object: wrapped as content; an assistant
       turn with neither text nor calls is skipped and the user turns around it merge */
    out = translate_ok("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                       "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c\","
                       "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]},"
                       "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"[1,2]\"},"
                       "{\"role\":\"assistant\",\"content\":null},"
                       "{\"role\":\"user\",\"content\":\"b\"}]}",
                       NULL);
    assert_member_json(
        out, "contents",
        "[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"}]},{\"role\":\"model\",\"parts\":"
        "[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},{\"role\":\"user\",\"parts\":"
        "[{\"functionResponse\":{\"name\":\"f\",\"response\":{\"content\":\"[1,2]\"}}},"
        "{\"text\":\"b\"}]}]");
    cJSON_Delete(out);
    /* the client's tree is not changed */
    {
        const char *s = "{\"model\":\"g(high)\",\"tools\":[{\"type\":\"function\",\"function\":{"
                        "\"name\":\"f\",\"parameters\":{\"$schema\":\"x\",\"type\":\"object\","
                        "\"additionalProperties\":false}}}],\"messages\":[{\"role\":\"user\","
                        "\"content\":\"r\"}]}";
        cJSON *req = tst_parse_str(s), *copy = tst_parse_str(s);
        struct cp_tr_err err;
        assert_int_equal(cp_tr_chat_gemini_request(req, &out, &base, &err), CM_OK);
        tst_assert_json_equal(req, copy, "client request after translation");
        assert_member_json(out, "tools.0.functionDeclarations.0.parameters",
                           "{\"type\":\"object\"}");
        cJSON_Delete(out);
        cm_free(base);
        cJSON_Delete(req);
        cJSON_Delete(copy);
    }
}

/* ---- the stream ---- */

static const char *const REQ = "{\"model\":\"gemini-2.5-pro\",\"messages\":[{\"role\":\"user\","
                               "\"content\":\"x\"}],\"stream\":true}";

#define EV_TEXT(s)                                                                                 \
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"" s            \
    "\"}]}}]}\n\n"

static void check_early_end(struct tst_drive *d)
{
    cJSON *eo = tst_chat_last_error(&d->out);

    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                        CP_TR_GEMINI_EARLY_EOF_MSG);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "code")->valuestring,
                        "request_timeout");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "type")->valuestring, "timeout_error");
    cJSON_Delete(eo);
}

static void test_stream_early_end(void **state)
{
    cJSON *req = tst_parse_str(REQ);
    struct cp_tr_usage u;
    struct tst_drive d;

    (void)state;
    /* cut before the event that carries finishReason (raw and CLI-wrapped streams) */
    tst_expect_early_end(&TR, REQ, "tools_call",
                         "data: {\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\","
                         "\"parts\":[{\"functionCall\":{\"id\"",
                         4, CP_TR_GEMINI_EARLY_EOF_MSG, "request_timeout", check_early_end);
    tst_expect_early_end(&TR, REQ, "plain_text",
                         "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
                         "[{\"text\":\"\"}]},\"finishReason\"",
                         4, CP_TR_GEMINI_EARLY_EOF_MSG, "request_timeout", check_early_end);
    /* nothing at all: no usage, no content */
    assert_int_equal(tst_run_stream(&d, &TR, req, "", 0), CM_ERR_TIMEOUT);
    assert_int_equal(cp_tr_chat_gemini_stream_usage(d.st, &u), CM_ERR_NOTFOUND);
    assert_false(cp_tr_chat_gemini_stream_has_content(d.st));
    /* finish twice: the second call adds nothing */
    {
        size_t n = d.out.len;
        assert_int_equal(cp_tr_chat_gemini_stream_finish(d.st, &d.out, NULL), CM_OK);
        assert_int_equal(d.out.len, n);
    }
    tst_drive_cleanup(&d);
    /* text, then the end: content went out, the error follows it, no [DONE] */
    assert_int_equal(tst_run_stream(&d, &TR, req, EV_TEXT("hi"), strlen(EV_TEXT("hi"))),
                     CM_ERR_TIMEOUT);
    assert_true(cp_tr_chat_gemini_stream_has_content(d.st));
    assert_null(strstr(d.out.data, "[DONE]"));
    assert_non_null(strstr(d.out.data, "\"content\":\"hi\""));
    check_early_end(&d);
    tst_drive_cleanup(&d);
    cJSON_Delete(req);
}

static void test_stream_errors(void **state)
{
    static const struct {
        const char *sse;
        unsigned status;
        const char *code, *msg;
    } cases[] = {
        {EV_TEXT("a") "data: {\"error\":{\"code\":429,\"message\":\"Resource has been "
                      "exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n" EV_TEXT("LEAK"),
         429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"},
        {"data: {\"response\":{\"error\":{\"code\":0,\"message\":\"busy\",\"status\":"
         "\"UNAVAILABLE\"}}}\n\n" EV_TEXT("LEAK"),
         503, "UNAVAILABLE", "busy"},
        {"data: {\"error\":{\"message\":\"odd\"}}\n\n", 502, "", "odd"},
    };
    cJSON *req = tst_parse_str(REQ);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tst_drive d;
        cJSON *eo;
        tst_expect_stream_error(&d, &TR, req, cases[i].sse, strlen(cases[i].sse), CM_ERR_UPSTREAM,
                                cases[i].status, cases[i].code);
        assert_string_equal(d.err.msg, cases[i].msg);
        assert_null(strstr(d.out.data, "LEAK"));
        assert_null(strstr(d.out.data, "[DONE]"));
        eo = tst_chat_last_error(&d.out);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                            cases[i].msg);
        cJSON_Delete(eo);
        tst_drive_cleanup(&d);
        tst_expect_aggregate_error(&TR, req, cases[i].sse, strlen(cases[i].sse), CM_ERR_UPSTREAM,
                                   cases[i].status, cases[i].msg);
    }
    /* not JSON, not an object, cut short */
    tst_expect_bad_events(&TR, REQ, tst_codex_bad_events, TST_CODEX_BAD_EVENTS, tst_chat_last_error,
                          "code", "bad_upstream_event");
    /* NULL / uninitialised state */
    {
        struct cp_tr_chat_gemini_stream st;
        struct cm_buf out;
        memset(&st, 0, sizeof(st));
        cm_buf_init(&out, 1024);
        assert_int_equal(cp_tr_chat_gemini_stream_event(&st, NULL, 0, "{}", 2, &out, NULL),
                         CM_ERR_INVAL);
        assert_int_equal(cp_tr_chat_gemini_stream_init(&st, req, NULL, 0, NULL), CM_ERR_INVAL);
        cp_tr_chat_gemini_stream_cleanup(&st);
        cm_buf_cleanup(&out);
    }
    cJSON_Delete(req);
}

/* Usage and has_content along a stream, and a Gemini MALFORMED_FUNCTION_CALL. */
static void test_stream_usage(void **state)
{
    const char *up = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\","
                     "\"thoughtSignature\":\"x\"}]}}],\"usageMetadata\":{\"promptTokenCount\":3}}"
                     "\n\n"
                     "data: {\"candidates\":[{\"finishReason\":\"MALFORMED_FUNCTION_CALL\"}],"
                     "\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2,"
                     "\"thoughtsTokenCount\":5}}\n\n";
    cJSON *req = tst_parse_str(REQ);
    struct cp_tr_usage u;
    struct tst_drive d;

    (void)state;
    assert_int_equal(tst_run_stream(&d, &TR, req, up, strlen(up)), CM_OK);
    assert_false(cp_tr_chat_gemini_stream_has_content(d.st));
    assert_int_equal(cp_tr_chat_gemini_stream_usage(d.st, &u), CM_OK);
    assert_int_equal(u.input, 3);
    assert_int_equal(u.output, 7);
    assert_int_equal(u.reasoning, 5);
    assert_int_equal(u.cached, 0);
    assert_int_equal(u.total, 10); /* no totalTokenCount: in + out */
    assert_non_null(strstr(d.out.data, "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(d.out.data, "data: [DONE]"));
    tst_drive_cleanup(&d);
    cJSON_Delete(req);
}

/* ---- aggregation of JSON bodies ---- */

static void test_aggregate_json(void **state)
{
    static const char *const bodies[] = {
        /* one raw response */
        "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"t1\","
        "\"thought\":true},{\"text\":\"Hi \"},{\"text\":\"there\"}]},\"finishReason\":\"STOP\"}],"
        "\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,"
        "\"thoughtsTokenCount\":1,\"totalTokenCount\":7},\"modelVersion\":\"gemini-2.5-pro-001\"}",
        /* the same wrapped by Gemini CLI */
        "{\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":"
        "\"t1\",\"thought\":true},{\"text\":\"Hi \"},{\"text\":\"there\"}]},\"finishReason\":"
        "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,"
        "\"thoughtsTokenCount\":1,\"totalTokenCount\":7},\"modelVersion\":\"gemini-2.5-pro-001\"}"
        ",\"traceId\":\"x\"}",
        /* an array of stream pieces, as without alt=sse */
        " \n[{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t1\",\"thought\":true}]}}]},"
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi \"}]}}],\"modelVersion\":"
        "\"gemini-2.5-pro-001\"},{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"there\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":4,"
        "\"candidatesTokenCount\":2,\"thoughtsTokenCount\":1,\"totalTokenCount\":7}}]",
    };
    const char *want =
        "{\"id\":\"chatcmpl-test\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"gemini-2.5-pro-001\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"Hi there\",\"reasoning_content\":\"t1\"},\"finish_reason\":"
        "\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3,\"total_tokens\":7,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
        "{\"reasoning_tokens\":1}}}";
    cJSON *req = tst_parse_str(REQ), *w = tst_parse_str(want);

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct cp_tr_usage u;
        struct cp_tr_err err;
        cJSON *out = NULL;
        assert_int_equal(cp_tr_chat_gemini_aggregate(bodies[i], strlen(bodies[i]), req, TEST_ID,
                                                     TEST_CREATED, &out, &u, &err),
                         CM_OK);
        tst_assert_json_equal(out, w, bodies[i]);
        assert_int_equal(u.input, 4);
        assert_int_equal(u.output, 3);
        assert_int_equal(u.total, 7);
        cJSON_Delete(out);
    }
    /* errors: an error object, an array with an error, no finishReason, not an object */
    tst_expect_aggregate_error(&TR, req,
                               "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":"
                               "\"PERMISSION_DENIED\"}}",
                               strlen("{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":"
                                      "\"PERMISSION_DENIED\"}}"),
                               CM_ERR_UPSTREAM, 403, "denied");
    tst_expect_aggregate_error(&TR, req,
                               "[{\"error\":{\"status\":\"NOT_FOUND\",\"message\":\"m\"}}]",
                               strlen("[{\"error\":{\"status\":\"NOT_FOUND\",\"message\":\"m\"}}]"),
                               CM_ERR_UPSTREAM, 404, "m");
    tst_expect_aggregate_error(
        &TR, req, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}",
        strlen("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}"), CM_ERR_TIMEOUT,
        408, CP_TR_GEMINI_EARLY_EOF_MSG);
    tst_expect_aggregate_error(&TR, req, "[1]", 3, CM_ERR_UPSTREAM, 502, NULL);
    tst_expect_aggregate_error(&TR, req, "{\"a\":", 5, CM_ERR_UPSTREAM, 502, NULL);
    {
        cJSON *out = NULL;
        assert_int_equal(cp_tr_chat_gemini_aggregate(NULL, 3, req, TEST_ID, 0, &out, NULL, NULL),
                         CM_ERR_INVAL);
        assert_int_equal(cp_tr_chat_gemini_aggregate("", 0, req, NULL, 0, &out, NULL, NULL),
                         CM_ERR_INVAL);
        assert_null(out);
    }
    /* the model falls back to the request's when no modelVersion came */
    {
        const char *b = "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":"
                        "\"f\",\"args\":{\"a\":1}}}]},\"finishReason\":\"STOP\"}]}";
        struct cp_tr_usage u;
        cJSON *out = NULL;
        assert_int_equal(
            cp_tr_chat_gemini_aggregate(b, strlen(b), req, TEST_ID, TEST_CREATED, &out, &u, NULL),
            CM_OK);
        assert_member_json(out, "model", "\"gemini-2.5-pro\"");
        assert_member_json(out, "choices.0.finish_reason", "\"tool_calls\"");
        assert_member_json(out, "choices.0.message.tool_calls.0",
                           "{\"id\":\"call_chatcmpl-test_0\",\"type\":\"function\",\"function\":"
                           "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}");
        assert_member_json(out, "choices.0.message.content", "null");
        assert_int_equal(u.total, 0);
        cJSON_Delete(out);
    }
    cJSON_Delete(w);
    cJSON_Delete(req);
}

/* ---- OOM ---- */

static void test_oom(void **state)
{
    (void)state;
    tst_oom_request(&TR, "tools_call");
    tst_oom_request(&TR, "tools_result");
    tst_oom_request(&TR, "media_input");
    tst_oom_stream_and_aggregate(&TR, "tools_call");
    tst_oom_stream_and_aggregate(&TR, "image_output");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_request_rules),
        cmocka_unit_test(test_stream_early_end),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_usage),
        cmocka_unit_test(test_aggregate_json),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
