/* SPDX-License-Identifier: MIT */
/*
 * test_translate_gemini_chat.c - the Gemini-client inbound adapter over the chat pivot,
 * against the fixtures in tests/fixtures/translate/gemini_chat/<case>/: in.json (+ args.json
 * {model, stream}) -> expected.json (request, compared as trees); chunks.json (chat chunks,
 * "[DONE]" = stream_end, {"_fail":{status,msg}} = stream_fail) -> expected.sse (event by
 * event: "event:" names exactly, data as trees); completion.json -> expected_nonstream.json.
 * Then each refusal with its field path, the caps, stream edge cases (has_content, repeated
 * end/fail, the tool-call cap), the Google error body, and OOM walks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/gemini_chat.h"
#include "translate/tr_common.h"
#include "tst_support.h"

#define SUB "gemini_chat"
#define TEST_ID "gen-resp-1"
#define TEST_CREATED 1700000000
#define DEFAULT_MODEL "gemini-2.5-pro"

/* tst_request_fn for the common helpers: the default model, not streaming. */
static int request_default(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    return cp_tr_gemini_chat_request(req, DEFAULT_MODEL, false, out, err);
}

/* ---- stream driving ---- */

/* Feeds the chunk list @p chunks (see the top comment) to a new stream for @p req. */
static int run_chunks(const cJSON *req, const cJSON *chunks, struct cm_buf *out, bool *content)
{
    struct cp_tr_gemini_chat_stream *st = NULL;
    const cJSON *c;
    int rc;

    rc = cp_tr_gemini_chat_stream_new(req, TEST_ID, TEST_CREATED, &st);
    if (rc)
        return rc;
    assert_false(cp_tr_gemini_chat_stream_has_content(st));
    cJSON_ArrayForEach(c, chunks)
    {
        struct cp_tr_err err;
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "_fail");

        memset(&err, 0, sizeof(err));
        if (cJSON_IsString(c) && strcmp(c->valuestring, "[DONE]") == 0) {
            rc = cp_tr_gemini_chat_stream_end(st, out);
        } else if (f) {
            cp_tr_err_set(&err, CM_ERR_UPSTREAM,
                          (unsigned)cJSON_GetObjectItem(f, "status")->valueint, "", "server_error",
                          "", "%s", cJSON_GetObjectItemCaseSensitive(f, "msg")->valuestring);
            rc = cp_tr_gemini_chat_stream_fail(st, &err, out);
        } else {
            rc = cp_tr_gemini_chat_stream_chunk(st, c, out, &err);
            if (rc)
                assert_int_equal(err.rc, rc);
        }
        if (rc)
            break;
    }
    if (content)
        *content = cp_tr_gemini_chat_stream_has_content(st);
    cp_tr_gemini_chat_stream_free(st);
    return rc;
}

/* Gemini streams: same events, same "event:" names, data equal as trees. */
static void assert_gemini_sse_equal(const char *got, size_t got_len, const char *want,
                                    size_t want_len, const char *what)
{
    struct tst_events g, w;

    tst_events_parse(&g, got, got_len);
    tst_events_parse(&w, want, want_len);
    if (g.n != w.n)
        fail_msg("%s: %zu events, want %zu; got:\n%.*s", what, g.n, w.n, (int)got_len, got);
    for (size_t i = 0; i < g.n; i++) {
        cJSON *gj = tst_parse_str(g.data[i]), *wj = tst_parse_str(w.data[i]);
        char label[160];

        if ((g.type[i] == NULL) != (w.type[i] == NULL) ||
            (g.type[i] && strcmp(g.type[i], w.type[i]) != 0))
            fail_msg("%s: event %zu named '%s', want '%s'", what, i, g.type[i] ? g.type[i] : "",
                     w.type[i] ? w.type[i] : "");
        snprintf(label, sizeof(label), "%s event %zu", what, i);
        tst_assert_json_equal(gj, wj, label);
        cJSON_Delete(gj);
        cJSON_Delete(wj);
    }
    tst_events_free(&g);
    tst_events_free(&w);
    /* every event is framed "data: ...\n\n" or "event: error\ndata: ...\n\n" exactly */
    assert_true(got_len >= 2 && got[got_len - 1] == '\n' && got[got_len - 2] == '\n');
    assert_null(strstr(got, "[DONE]"));
}

/* ---- the fixtures ---- */

static void run_case(const char *dir, const char *name, int *nreq, int *nstream, int *nns)
{
    cJSON *in = tst_read_json(dir, "in.json");
    cJSON *want = tst_read_json(dir, "expected.json");
    cJSON *chunks = tst_read_json(dir, "chunks.json");
    cJSON *completion = tst_read_json(dir, "completion.json");
    cJSON *args = tst_read_json(dir, "args.json");
    char label[256];

    if (in && want) {
        const char *model = args ? cJSON_GetObjectItem(args, "model")->valuestring : DEFAULT_MODEL;
        bool stream = args && cJSON_IsTrue(cJSON_GetObjectItem(args, "stream"));
        struct cp_tr_err err;
        cJSON *got = NULL;
        int rc = cp_tr_gemini_chat_request(in, model, stream, &got, &err);

        if (rc)
            fail_msg("%s: request rc %d: %s", name, rc, err.msg);
        snprintf(label, sizeof(label), "%s request", name);
        tst_assert_json_equal(got, want, label);
        cJSON_Delete(got);
        (*nreq)++;
    }
    if (chunks) {
        size_t wlen = 0;
        char *wsse = tst_read_file(dir, "expected.sse", &wlen);
        struct cm_buf out;
        bool content = false;

        assert_non_null(wsse);
        cm_buf_init(&out, 1 << 20);
        assert_int_equal(run_chunks(in, chunks, &out, &content), CM_OK);
        snprintf(label, sizeof(label), "%s stream", name);
        assert_gemini_sse_equal(out.data ? out.data : "", out.len, wsse, wlen, label);
        assert_true(content);
        cm_buf_cleanup(&out);
        cm_free(wsse);
        (*nstream)++;
    }
    if (completion) {
        cJSON *wns = tst_read_json(dir, "expected_nonstream.json"), *got = NULL;
        struct cp_tr_err err;

        assert_non_null(wns);
        assert_int_equal(
            cp_tr_gemini_chat_response(in, completion, TEST_ID, TEST_CREATED, &got, &err), CM_OK);
        snprintf(label, sizeof(label), "%s non-stream", name);
        tst_assert_json_equal(got, wns, label);
        cJSON_Delete(got);
        cJSON_Delete(wns);
        (*nns)++;
    }
    cJSON_Delete(in);
    cJSON_Delete(want);
    cJSON_Delete(chunks);
    cJSON_Delete(completion);
    cJSON_Delete(args);
}

static void test_fixtures(void **state)
{
    char *root = tst_fixture_dir(SUB);
    DIR *d = opendir(root);
    struct dirent *e;
    int nreq = 0, nstream = 0, nns = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
        run_case(path, e->d_name, &nreq, &nstream, &nns);
    }
    closedir(d);
    cm_free(root);
    assert_true(nreq >= 4);
    assert_true(nstream >= 4);
    assert_true(nns >= 2);
}

/* ---- request rules ---- */

#define USER_HI "{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}"
#define BODY(extra) "{\"contents\":[" USER_HI "]" extra "}"

static void expect_refusal(const char *json, const char *field)
{
    struct cp_tr_err err;
    cJSON *out = NULL;
    char prefix[160];

    tst_expect_field_error(request_default, json, CM_ERR_INVAL, field);
    /* the message starts with the path */
    assert_int_equal(tst_translate_str(request_default, json, &out, &err), CM_ERR_INVAL);
    snprintf(prefix, sizeof(prefix), "%s: ", field);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refusal("{}", "contents");
    expect_refusal("{\"contents\":[]}", "contents");
    expect_refusal("{\"contents\":{}}", "contents");
    expect_refusal("{\"contents\":[{\"role\":\"system\",\"parts\":[{\"text\":\"x\"}]}]}",
                   "contents[0].role");
    expect_refusal("{\"contents\":[{\"role\":\"user\"}]}", "contents[0].parts");
    expect_refusal("{\"contents\":[" USER_HI ",{\"role\":\"model\",\"parts\":[{\"executableCode\":"
                   "{\"language\":\"PYTHON\",\"code\":\"print(1)\"}}]}]}",
                   "contents[1].parts[0].executableCode");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},"
                   "{\"codeExecutionResult\":{\"outcome\":\"OUTCOME_OK\"}}]}]}",
                   "contents[0].parts[1].codeExecutionResult");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"videoMetadata\":"
                   "{\"startOffset\":\"1s\"}}]}]}",
                   "contents[0].parts[0].videoMetadata");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{}]}]}", "contents[0].parts[0]");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"inlineData\":"
                   "{\"mimeType\":\"audio/wav\",\"data\":\"AAAA\"}}]}]}",
                   "contents[0].parts[0].inlineData.mimeType");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"inlineData\":"
                   "{\"mimeType\":\"image/png\"}}]}]}",
                   "contents[0].parts[0].inlineData.data");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"fileData\":"
                   "{\"mimeType\":\"video/mp4\",\"fileUri\":\"https://127.0.0.1/v.mp4\"}}]}]}",
                   "contents[0].parts[0].fileData.mimeType");
    expect_refusal("{\"contents\":[" USER_HI ",{\"role\":\"model\",\"parts\":[{\"inlineData\":"
                   "{\"mimeType\":\"image/png\",\"data\":\"AAAA\"}}]}]}",
                   "contents[1].parts[0].inlineData");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"functionCall\":"
                   "{\"name\":\"f\"}}]}]}",
                   "contents[0].parts[0].functionCall");
    expect_refusal("{\"contents\":[" USER_HI
                   ",{\"role\":\"model\",\"parts\":[{\"functionResponse\":"
                   "{\"name\":\"f\",\"response\":{}}}]}]}",
                   "contents[1].parts[0].functionResponse");
    expect_refusal("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"functionResponse\":"
                   "{\"name\":\"f\",\"response\":{}}}]}]}",
                   "contents[0].parts[0].functionResponse.name");
    expect_refusal("{\"contents\":[" USER_HI ",{\"role\":\"model\",\"parts\":[{\"functionCall\":"
                   "{\"name\":\"f\",\"args\":[1]}}]}]}",
                   "contents[1].parts[0].functionCall.args");
    expect_refusal(BODY(",\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]},"
                        "{\"googleSearch\":{}}]"),
                   "tools[1].googleSearch");
    expect_refusal(BODY(",\"tools\":[{\"googleSearchRetrieval\":{}}]"),
                   "tools[0].googleSearchRetrieval");
    expect_refusal(BODY(",\"tools\":[{\"codeExecution\":{}}]"), "tools[0].codeExecution");
    expect_refusal(BODY(",\"tools\":[{\"urlContext\":{}}]"), "tools[0].urlContext");
    expect_refusal(BODY(",\"tools\":[{\"functionDeclarations\":[{\"description\":\"no name\"}]}]"),
                   "tools[0].functionDeclarations[0].name");
    expect_refusal(BODY(",\"generationConfig\":{\"candidateCount\":2}"),
                   "generationConfig.candidateCount");
    expect_refusal(BODY(",\"generationConfig\":{\"responseMimeType\":\"text/x.enum\"}"),
                   "generationConfig.responseMimeType");
    expect_refusal(BODY(",\"generationConfig\":{\"responseModalities\":[\"TEXT\",\"IMAGE\"]}"),
                   "generationConfig.responseModalities[1]");
    expect_refusal(BODY(",\"generationConfig\":{\"responseLogprobs\":true}"),
                   "generationConfig.responseLogprobs");
    expect_refusal(BODY(",\"generationConfig\":{\"speechConfig\":{}}"),
                   "generationConfig.speechConfig");
    expect_refusal(BODY(",\"generationConfig\":{\"temperature\":\"hot\"}"),
                   "generationConfig.temperature");
    expect_refusal(BODY(",\"generationConfig\":{\"thinkingConfig\":{\"thinkingLevel\":\"huge\"}}"),
                   "generationConfig.thinkingConfig.thinkingLevel");
    expect_refusal(BODY(",\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":-2}}"),
                   "generationConfig.thinkingConfig.thinkingBudget");
    expect_refusal(BODY(",\"cachedContent\":\"cachedContents/abc\""), "cachedContent");
    expect_refusal(BODY(",\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],"
                        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"VALIDATED\"}}"),
                   "toolConfig.functionCallingConfig.mode");
    expect_refusal(BODY(",\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],"
                        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
                        "\"allowedFunctionNames\":[\"g\"]}}"),
                   "toolConfig.functionCallingConfig.allowedFunctionNames[0]");
    expect_refusal("{\"systemInstruction\":{\"parts\":[{\"inlineData\":{}}]},\"contents\":[" USER_HI
                   "]}",
                   "systemInstruction.parts[0].inlineData");
}

static void test_request_rules(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL;
    const cJSON *m;

    (void)state;
    /* thinkingBudget 0 sets nothing; budgets map by the 5.1 table clamped to low..high */
    static const struct {
        const char *tc;
        const char *effort; /* NULL = no reasoning_effort */
    } cases[] = {
        {"{\"thinkingBudget\":0}", NULL},           {"{\"thinkingBudget\":512}", "low"},
        {"{\"thinkingBudget\":1024}", "low"},       {"{\"thinkingBudget\":1025}", "medium"},
        {"{\"thinkingBudget\":24576}", "high"},     {"{\"thinkingBudget\":100000}", "high"},
        {"{\"thinkingLevel\":\"minimal\"}", "low"}, {"{\"includeThoughts\":true}", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json), BODY(",\"generationConfig\":{\"thinkingConfig\":%s}"),
                 cases[i].tc);
        assert_int_equal(tst_translate_str(request_default, json, &out, &err), CM_OK);
        m = cJSON_GetObjectItemCaseSensitive(out, "reasoning_effort");
        if (cases[i].effort)
            assert_string_equal(cJSON_GetStringValue(m), cases[i].effort);
        else
            assert_null(m);
        cJSON_Delete(out);
        out = NULL;
    }

    /* NONE and AUTO; a tool_choice without tools is not sent */
    assert_int_equal(
        tst_translate_str(request_default,
                          BODY(",\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}],"
                               "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"),
                          &out, &err),
        CM_OK);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(out, "tool_choice")), "none");
    cJSON_Delete(out);
    assert_int_equal(
        tst_translate_str(request_default,
                          BODY(",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}"),
                          &out, &err),
        CM_OK);
    assert_null(cJSON_GetObjectItem(out, "tool_choice"));
    assert_null(cJSON_GetObjectItem(out, "tools"));
    cJSON_Delete(out);

    /* a model turn of thoughts only is skipped; a functionResponse with an unknown id keeps it */
    assert_int_equal(
        tst_translate_str(request_default,
                          "{\"contents\":[" USER_HI ",{\"role\":\"model\",\"parts\":[{\"text\":"
                          "\"hmm\",\"thought\":true}]},{\"role\":\"user\",\"parts\":["
                          "{\"functionResponse\":{\"id\":\"ext-1\",\"name\":\"f\"}}]}]}",
                          &out, &err),
        CM_OK);
    m = cJSON_GetObjectItem(out, "messages");
    assert_int_equal(cJSON_GetArraySize(m), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "role")->valuestring, "tool");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "tool_call_id")->valuestring,
                        "ext-1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "content")->valuestring,
                        "{}");
    cJSON_Delete(out);

    /* bad arguments and a body that is not an object */
    assert_int_equal(cp_tr_gemini_chat_request(NULL, DEFAULT_MODEL, false, NULL, &err),
                     CM_ERR_INVAL);
    tst_expect_field_error(request_default, "[1]", CM_ERR_INVAL, "");
}

static void test_limits(void **state)
{
    (void)state;
    tst_expect_limit(request_default, "{\"contents\":[", USER_HI,
                     CP_TR_GEMINI_CHAT_MAX_CONTENTS + 1, "]}", "contents");
    tst_expect_limit(request_default, "{\"contents\":[{\"role\":\"user\",\"parts\":[",
                     "{\"text\":\"x\"}", CP_TR_GEMINI_CHAT_MAX_PARTS + 1, "]}]}",
                     "contents[0].parts");
    tst_expect_limit(request_default,
                     "{\"contents\":[" USER_HI "],\"tools\":[{\"functionDeclarations\":[",
                     "{\"name\":\"f%d\"}", CP_TR_GEMINI_CHAT_MAX_TOOLS + 1, "]}]}", "tools");
}

/* ---- stream edges ---- */

static cJSON *chunk_of(const char *delta, const char *finish)
{
    char json[512];

    snprintf(json, sizeof(json),
             "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
             "\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}",
             delta, finish ? finish : "null");
    return tst_parse_str(json);
}

static void test_stream_edges(void **state)
{
    struct cp_tr_gemini_chat_stream *st = NULL;
    struct cp_tr_err err;
    struct cm_buf out;
    cJSON *c;
    size_t len;

    (void)state;
    cm_buf_init(&out, 1 << 20);
    assert_int_equal(cp_tr_gemini_chat_stream_new(NULL, TEST_ID, 0, &st), CM_OK);
    c = chunk_of("{\"role\":\"assistant\",\"content\":\"\"}", NULL);
    assert_int_equal(cp_tr_gemini_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    assert_false(cp_tr_gemini_chat_stream_has_content(st));
    assert_int_equal(out.len, 0);
    c = chunk_of("{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"function\":{\"name\":\"f\"}}]}",
                 NULL);
    assert_int_equal(cp_tr_gemini_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    assert_true(cp_tr_gemini_chat_stream_has_content(st));
    assert_int_equal(out.len, 0); /* calls go out whole, later */
    assert_int_equal(cp_tr_gemini_chat_stream_end(st, &out), CM_OK);
    assert_non_null(
        strstr(out.data, "{\"functionCall\":{\"name\":\"f\",\"args\":{},\"id\":\"t\"}}"));
    assert_non_null(strstr(out.data, "\"finishReason\":\"STOP\""));
    assert_null(strstr(out.data, "usageMetadata")); /* no usage seen */
    len = out.len;
    assert_int_equal(cp_tr_gemini_chat_stream_end(st, &out), CM_OK);
    cp_tr_err_set(&err, CM_ERR_UPSTREAM, 503, "", "", "", "down");
    assert_int_equal(cp_tr_gemini_chat_stream_fail(st, &err, &out), CM_OK);
    assert_int_equal(out.len, len);
    cp_tr_gemini_chat_stream_free(st);
    cp_tr_gemini_chat_stream_free(NULL);
    assert_false(cp_tr_gemini_chat_stream_has_content(NULL));

    /* fail before any content: only the error event; then end does nothing */
    cm_buf_reset(&out);
    assert_int_equal(cp_tr_gemini_chat_stream_new(NULL, TEST_ID, 0, &st), CM_OK);
    cp_tr_err_set(&err, CM_ERR_TIMEOUT, 408, "", "", "", "upstream closed early");
    assert_int_equal(cp_tr_gemini_chat_stream_fail(st, &err, &out), CM_OK);
    assert_string_equal(out.data,
                        "event: error\ndata: {\"error\":{\"code\":408,\"message\":"
                        "\"upstream closed early\",\"status\":\"DEADLINE_EXCEEDED\"}}\n\n");
    assert_int_equal(cp_tr_gemini_chat_stream_end(st, &out), CM_OK);
    assert_int_equal(cp_tr_gemini_chat_stream_fail(st, NULL, &out), CM_OK);
    cp_tr_gemini_chat_stream_free(st);

    /* content_filter -> SAFETY; an unknown reason -> OTHER */
    cm_buf_reset(&out);
    assert_int_equal(cp_tr_gemini_chat_stream_new(NULL, TEST_ID, 0, &st), CM_OK);
    c = chunk_of("{\"content\":\"x\"}", "\"content_filter\"");
    assert_int_equal(cp_tr_gemini_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    assert_int_equal(cp_tr_gemini_chat_stream_end(st, &out), CM_OK);
    assert_non_null(strstr(out.data, "\"finishReason\":\"SAFETY\""));
    cp_tr_gemini_chat_stream_free(st);
    cm_buf_reset(&out);
    assert_int_equal(cp_tr_gemini_chat_stream_new(NULL, TEST_ID, 0, &st), CM_OK);
    c = chunk_of("{}", "\"weird\"");
    assert_int_equal(cp_tr_gemini_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    assert_int_equal(cp_tr_gemini_chat_stream_end(st, &out), CM_OK);
    assert_non_null(strstr(out.data, "\"finishReason\":\"OTHER\""));
    cp_tr_gemini_chat_stream_free(st);

    /* the tool-call cap */
    assert_int_equal(cp_tr_gemini_chat_stream_new(NULL, TEST_ID, 0, &st), CM_OK);
    for (int i = 0; i <= CP_TR_GEMINI_CHAT_MAX_STREAM_CALLS; i++) {
        char d[128];
        int rc;
        snprintf(d, sizeof(d),
                 "{\"tool_calls\":[{\"index\":%d,\"id\":\"t%d\",\"function\":"
                 "{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
                 i, i);
        c = chunk_of(d, NULL);
        memset(&err, 0, sizeof(err));
        rc = cp_tr_gemini_chat_stream_chunk(st, c, &out, &err);
        cJSON_Delete(c);
        if (i < CP_TR_GEMINI_CHAT_MAX_STREAM_CALLS) {
            assert_int_equal(rc, CM_OK);
        } else {
            assert_int_equal(rc, CM_ERR_LIMIT);
            assert_int_equal(err.rc, CM_ERR_LIMIT);
            assert_int_equal(err.status, 502);
        }
    }
    cp_tr_gemini_chat_stream_free(st);

    assert_int_equal(cp_tr_gemini_chat_stream_new(NULL, NULL, 0, &st), CM_ERR_INVAL);
    cm_buf_cleanup(&out);
}

static void test_nonstream_edges(void **state)
{
    struct cp_tr_err err;
    cJSON *c, *out = NULL;

    (void)state;
    c = tst_parse_str("{\"choices\":[]}");
    assert_int_equal(cp_tr_gemini_chat_response(NULL, c, TEST_ID, 0, &out, &err), CM_ERR_UPSTREAM);
    assert_int_equal(err.status, 502);
    assert_null(out);
    cJSON_Delete(c);
    /* empty answer, no usage, model from the wrapped request */
    c = tst_parse_str("{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                      "\"content\":null},\"finish_reason\":\"length\"}]}");
    cJSON *req = tst_parse_str("{\"model\":\"gemini-2.5-flash\",\"request\":{}}");
    cJSON *want = tst_parse_str(
        "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},"
        "\"finishReason\":\"MAX_TOKENS\",\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\","
        "\"responseId\":\"gen-resp-1\"}");
    assert_int_equal(cp_tr_gemini_chat_response(req, c, TEST_ID, 0, &out, &err), CM_OK);
    tst_assert_json_equal(out, want, "empty answer");
    cJSON_Delete(out);
    cJSON_Delete(want);
    cJSON_Delete(req);
    cJSON_Delete(c);
}

/* ---- errors ---- */

static void test_error_body(void **state)
{
    static const struct {
        unsigned status;
        const char *name;
    } names[] = {{400, "INVALID_ARGUMENT"}, {401, "UNAUTHENTICATED"},   {403, "PERMISSION_DENIED"},
                 {404, "NOT_FOUND"},        {408, "DEADLINE_EXCEEDED"}, {429, "RESOURCE_EXHAUSTED"},
                 {500, "INTERNAL"},         {502, "INTERNAL"},          {503, "UNAVAILABLE"},
                 {504, "DEADLINE_EXCEEDED"}};
    char *body = NULL;
    size_t len = 0;
    cJSON *got, *want;

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(cp_tr_gemini_status_name(names[i].status), names[i].name);
    assert_int_equal(cp_tr_gemini_error_body(429, "Quota \"exceeded\"", &body, &len), CM_OK);
    assert_int_equal(len, strlen(body));
    got = tst_parse_str(body);
    want = tst_parse_str("{\"error\":{\"code\":429,\"message\":\"Quota \\\"exceeded\\\"\","
                         "\"status\":\"RESOURCE_EXHAUSTED\"}}");
    tst_assert_json_equal(got, want, "error body");
    cJSON_Delete(got);
    cJSON_Delete(want);
    cm_free(body);
    assert_int_equal(cp_tr_gemini_error_body(500, NULL, &body, NULL), CM_OK);
    assert_string_equal(body,
                        "{\"error\":{\"code\":500,\"message\":\"\",\"status\":\"INTERNAL\"}}");
    cm_free(body);
    assert_int_equal(cp_tr_gemini_error_body(500, "x", NULL, NULL), CM_ERR_INVAL);
}

/* ---- OOM walks ---- */

struct oom {
    const cJSON *req;
    const cJSON *data; /* chunks or completion */
};

static int try_request(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom *o = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_gemini_chat_request(o->req, DEFAULT_MODEL, true, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

static int try_stream(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom *o = ud;
    struct cm_buf b;
    int rc;

    (void)out;
    (void)err;
    cm_buf_init(&b, 1 << 20);
    cm_alloc_fail_at(n);
    rc = run_chunks(o->req, o->data, &b, NULL);
    cm_alloc_fail_at(0);
    cm_buf_cleanup(&b);
    return rc;
}

static int try_response(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom *o = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_gemini_chat_response(o->req, o->data, TEST_ID, 0, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

static void oom_case(const char *cs, const char *file, tst_oom_try_fn fn, unsigned flags)
{
    char *root = tst_fixture_dir(SUB);
    char dir[1024];
    struct oom o;
    cJSON *req, *data;

    snprintf(dir, sizeof(dir), "%s/%s", root, cs);
    req = tst_read_json(dir, "in.json");
    data = file ? tst_read_json(dir, file) : NULL;
    o.req = req;
    o.data = data;
    assert_true(tst_oom_walk(fn, &o, 100000, flags) > 10);
    cJSON_Delete(req);
    cJSON_Delete(data);
    cm_free(root);
}

static void test_oom(void **state)
{
    (void)state;
    oom_case("req_tools", NULL, try_request, 0);
    oom_case("req_media_wrapped", NULL, try_request, 0);
    oom_case("stream_tool_calls", "chunks.json", try_stream, TST_OOM_NO_RESULT);
    oom_case("stream_text_reasoning", "chunks.json", try_stream, TST_OOM_NO_RESULT);
    oom_case("ns_tools", "completion.json", try_response, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),      cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_request_rules), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stream_edges),  cmocka_unit_test(test_nonstream_edges),
        cmocka_unit_test(test_error_body),    cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
