/* SPDX-License-Identifier: MIT */
/*
 * test_translate_messages_chat.c - the Anthropic Messages inbound adapter over the chat pivot
 * against the fixtures in tests/fixtures/translate/messages_chat/<case>/: in.json ->
 * expected.json (request, compared as trees), chunks.json (chat chunks fed one by one, then
 * stream_end, or stream_fail with fail.json) -> expected.sse (event by event: the "event:" name
 * and the JSON data as trees), completion.json -> expected_response.json (non-stream); then
 * refusals.json (each refused request with the field it must name), the 5.1 effort table,
 * the end/fail/chunk-after-end contract, has_content, error types, limits and OOM walks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/messages_chat.h"
#include "tst_support.h"

#define SUB "messages_chat"
#define TEST_ID "msg_test"
#define CREATED 1700000000
#define OUT_MAX ((size_t)1 << 20)

/* ---- driving a stream ---- */

/*
 * Feeds every entry of @p chunks to a new stream for @p req, then ends it (or fails it with
 * @p fail: {status, msg}); checks that a second end / fail / chunk appends nothing. The client
 * stream is left in @p out (cm_buf_cleanup()); *@p has_content gets the final has_content.
 */
static void run_stream(const cJSON *req, const cJSON *chunks, const cJSON *fail, struct cm_buf *out,
                       bool *has_content)
{
    struct cp_tr_messages_chat_stream *st = NULL;
    struct cp_tr_err err;
    const cJSON *c;
    size_t len;

    cm_buf_init(out, OUT_MAX);
    assert_int_equal(cp_tr_messages_chat_stream_new(req, TEST_ID, CREATED, &st), CM_OK);
    assert_false(cp_tr_messages_chat_stream_has_content(st));
    cJSON_ArrayForEach(c, chunks)
    {
        assert_int_equal(cp_tr_messages_chat_stream_chunk(st, c, out, &err), CM_OK);
    }
    if (fail) {
        struct cp_tr_err e;
        memset(&e, 0, sizeof(e));
        e.rc = CM_ERR_UPSTREAM;
        e.status = (unsigned)cJSON_GetObjectItemCaseSensitive(fail, "status")->valuedouble;
        snprintf(e.msg, sizeof(e.msg), "%s",
                 cJSON_GetObjectItemCaseSensitive(fail, "msg")->valuestring);
        assert_int_equal(cp_tr_messages_chat_stream_fail(st, &e, out), CM_OK);
    } else {
        assert_int_equal(cp_tr_messages_chat_stream_end(st, out), CM_OK);
    }
    /* after the end everything is ignored */
    len = out->len;
    assert_int_equal(cp_tr_messages_chat_stream_end(st, out), CM_OK);
    memset(&err, 0, sizeof(err));
    err.status = 500;
    assert_int_equal(cp_tr_messages_chat_stream_fail(st, &err, out), CM_OK);
    cJSON_ArrayForEach(c, chunks)
    {
        assert_int_equal(cp_tr_messages_chat_stream_chunk(st, c, out, &err), CM_OK);
    }
    assert_int_equal(out->len, len);
    *has_content = cp_tr_messages_chat_stream_has_content(st);
    cp_tr_messages_chat_stream_free(st);
}

/* The client stream of a request and chunks given as JSON text. */
static void stream_str(const char *req, const char *chunks, struct cm_buf *out)
{
    cJSON *r = tst_parse_str(req), *c = tst_parse_str(chunks);
    bool hc = false;

    run_stream(r, c, NULL, out, &hc);
    cJSON_Delete(r);
    cJSON_Delete(c);
}

/* ---- the fixtures ---- */

static void run_case(const char *dir, const char *name, int *nreq, int *nstream, int *nresp)
{
    char path[512], what[600];
    cJSON *in, *want, *got = NULL, *chunks, *fail, *completion;
    struct cp_tr_err err;
    char *sse;
    size_t sse_len = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    in = tst_read_json(path, "in.json");
    assert_non_null(in);
    if ((want = tst_read_json(path, "expected.json"))) {
        snprintf(what, sizeof(what), "%s request", name);
        if (cp_tr_messages_chat_request(in, &got, &err))
            fail_msg("%s: %s", what, err.msg);
        tst_assert_json_equal(got, want, what);
        cJSON_Delete(got);
        cJSON_Delete(want);
        got = NULL;
        (*nreq)++;
    }
    chunks = tst_read_json(path, "chunks.json");
    sse = tst_read_file(path, "expected.sse", &sse_len);
    if (chunks && sse) {
        struct cm_buf out;
        bool hc = false;
        fail = tst_read_json(path, "fail.json");
        run_stream(in, chunks, fail, &out, &hc);
        snprintf(what, sizeof(what), "%s stream", name);
        tst_assert_anthropic_sse_equal(out.data, out.len, sse, sse_len, what);
        /* real content in the chunks <=> has_content */
        assert_int_equal(hc, strstr(sse, "\"content_block_delta\"") != NULL);
        if (fail)
            cJSON_Delete(tst_anthropic_last_error(&out));
        cm_buf_cleanup(&out);
        cJSON_Delete(fail);
        (*nstream)++;
    }
    cm_free(sse);
    cJSON_Delete(chunks);
    completion = tst_read_json(path, "completion.json");
    if (completion) {
        want = tst_read_json(path, "expected_response.json");
        assert_non_null(want);
        snprintf(what, sizeof(what), "%s response", name);
        if (cp_tr_messages_chat_response(in, completion, TEST_ID, CREATED, &got, &err))
            fail_msg("%s: %s", what, err.msg);
        tst_assert_json_equal(got, want, what);
        cJSON_Delete(got);
        cJSON_Delete(want);
        cJSON_Delete(completion);
        (*nresp)++;
    }
    cJSON_Delete(in);
}

static void test_fixtures(void **state)
{
    char *dir = tst_fixture_dir(SUB);
    int ncase = 0, nreq = 0, nstream = 0, nresp = 0;
    struct dirent *de;
    DIR *d;

    (void)state;
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char sub[512];
        DIR *probe;
        if (de->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        if (!(probe = opendir(sub)))
            continue; /* refusals.json */
        closedir(probe);
        run_case(dir, de->d_name, &nreq, &nstream, &nresp);
        ncase++;
    }
    closedir(d);
    cm_free(dir);
    assert_true(ncase >= 6);
    assert_true(nreq >= 6);
    assert_true(nstream >= 6);
    assert_true(nresp >= 6);
}

/* ---- request refusals ---- */

static void test_refusals(void **state)
{
    char *dir = tst_fixture_dir(SUB);
    cJSON *list = tst_read_json(dir, "refusals.json");
    const cJSON *c;
    int n = 0;

    (void)state;
    assert_non_null(list);
    cJSON_ArrayForEach(c, list)
    {
        const char *field = cJSON_GetObjectItemCaseSensitive(c, "field")->valuestring;
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(c, "request");
        cJSON *out = NULL;
        struct cp_tr_err err;
        int rc = cp_tr_messages_chat_request(req, &out, &err);

        if (rc != CM_ERR_INVAL)
            fail_msg("refusal %d (%s): rc %d", n, field, rc);
        assert_null(out);
        assert_int_equal(err.rc, CM_ERR_INVAL);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.type, "invalid_request_error");
        if (strcmp(err.field, field) != 0)
            fail_msg("refusal %d: field '%s', want '%s' (%s)", n, err.field, field, err.msg);
        /* the message starts with the path, then ": " */
        assert_int_equal(strncmp(err.msg, field, strlen(field)), 0);
        assert_int_equal(strncmp(err.msg + strlen(field), ": ", 2), 0);
        n++;
    }
    assert_true(n >= 50);
    cJSON_Delete(list);
    cm_free(dir);
}

static void test_refusal_messages(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL, *req;

    (void)state;
    req = tst_parse_str("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        "\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"},"
                        "{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}");
    assert_int_equal(cp_tr_messages_chat_request(req, &out, &err), CM_ERR_INVAL);
    assert_string_equal(err.field, "tools[2].type");
    assert_string_equal(err.msg, "tools[2].type: server tool 'web_search_20250305' is not "
                                 "supported over this upstream");
    cJSON_Delete(req);
    /* not an object, NULL output */
    req = tst_parse_str("[1]");
    assert_int_equal(cp_tr_messages_chat_request(req, &out, &err), CM_ERR_INVAL);
    assert_int_equal(err.status, 400);
    assert_int_equal(cp_tr_messages_chat_request(req, NULL, &err), CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_chat_request(NULL, &out, NULL), CM_ERR_INVAL);
    assert_null(out);
    cJSON_Delete(req);
}

static void test_request_limits(void **state)
{
    (void)state;
    tst_expect_limit(cp_tr_messages_chat_request,
                     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"tools\":[",
                     "{\"name\":\"t%d\"}", CP_TR_MESSAGES_CHAT_MAX_TOOLS + 1, "]}", "tools");
    tst_expect_limit(cp_tr_messages_chat_request, "{\"model\":\"m\",\"messages\":[",
                     "{\"role\":\"user\",\"content\":\"%d\"}", CP_TR_MESSAGES_CHAT_MAX_MESSAGES + 1,
                     "]}", "messages");
    tst_expect_limit(cp_tr_messages_chat_request,
                     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[",
                     "{\"type\":\"text\",\"text\":\"%d\"}", CP_TR_MESSAGES_CHAT_MAX_BLOCKS + 1,
                     "]}]}", "messages[0].content");
}

/* reasoning_effort for a request fragment @p extra (NULL @p want: none set). */
static void expect_effort(const char *extra, const char *want)
{
    struct cm_buf b;
    struct cp_tr_err err;
    cJSON *out = NULL, *req;
    const cJSON *e;

    cm_buf_init(&b, 4096);
    assert_int_equal(cm_buf_appendf(&b,
                                    "{\"model\":\"m(high)\",%s%s\"messages\":[{\"role\":\"user\","
                                    "\"content\":\"x\"}]}",
                                    extra, extra[0] ? "," : ""),
                     CM_OK);
    req = tst_parse_str(b.data);
    if (cp_tr_messages_chat_request(req, &out, &err))
        fail_msg("%s: %s", b.data, err.msg);
    e = cJSON_GetObjectItemCaseSensitive(out, "reasoning_effort");
    if (!want) {
        if (e)
            fail_msg("%s: reasoning_effort set", b.data);
    } else if (!cJSON_IsString(e) || strcmp(e->valuestring, want) != 0) {
        fail_msg("%s: effort %s, want %s", b.data, cJSON_IsString(e) ? e->valuestring : "(none)",
                 want);
    }
    /* the suffix is the relay's business: the model is passed as given */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(out, "model")->valuestring, "m(high)");
    cJSON_Delete(out);
    cJSON_Delete(req);
    cm_buf_cleanup(&b);
}

static void test_effort_table(void **state)
{
    (void)state;
    expect_effort("", NULL);
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":0}", NULL);
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1}", "minimal");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":512}", "minimal");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":513}", "low");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}", "low");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1025}", "medium");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":8192}", "medium");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":8193}", "high");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":24576}", "high");
    expect_effort("\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":64000}", "high");
    expect_effort("\"thinking\":{\"type\":\"disabled\"}", NULL);
    expect_effort("\"thinking\":{\"type\":\"disabled\"},\"output_config\":{\"effort\":\"high\"}",
                  NULL);
    expect_effort("\"thinking\":{\"type\":\"adaptive\"}", "medium");
    expect_effort("\"thinking\":{\"type\":\"auto\"}", "medium");
    expect_effort("\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"low\"}",
                  "low");
    expect_effort("\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"max\"}",
                  "high");
    expect_effort("\"output_config\":{\"effort\":\"medium\"}", "medium");
    expect_effort("\"output_config\":{}", NULL);
}

/* ---- stream contract ---- */

#define REQ "{\"model\":\"req-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
#define CH(delta) "{\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":" delta "}]}"

static void test_has_content(void **state)
{
    struct cp_tr_messages_chat_stream *st = NULL;
    struct cp_tr_err err;
    struct cm_buf out;
    cJSON *c;

    (void)state;
    cm_buf_init(&out, OUT_MAX);
    assert_int_equal(cp_tr_messages_chat_stream_new(NULL, TEST_ID, CREATED, &st), CM_OK);
    /* role only, empty content, usage only: message_start, but nothing real */
    c = tst_parse_str(CH("{\"role\":\"assistant\",\"content\":\"\",\"reasoning_content\":\"\"}"));
    assert_int_equal(cp_tr_messages_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    c = tst_parse_str("{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}");
    assert_int_equal(cp_tr_messages_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    assert_false(cp_tr_messages_chat_stream_has_content(st));
    assert_non_null(strstr(out.data, "event: message_start\n"));
    assert_null(strstr(out.data, "content_block"));
    c = tst_parse_str(CH("{\"reasoning_content\":\"hm\"}"));
    assert_int_equal(cp_tr_messages_chat_stream_chunk(st, c, &out, &err), CM_OK);
    cJSON_Delete(c);
    assert_true(cp_tr_messages_chat_stream_has_content(st));
    cp_tr_messages_chat_stream_free(st);
    cp_tr_messages_chat_stream_free(NULL);
    assert_false(cp_tr_messages_chat_stream_has_content(NULL));
    cm_buf_cleanup(&out);
}

static void test_stream_details(void **state)
{
    struct cm_buf out;
    struct tst_events e;

    (void)state;
    /* "reasoning" spelling, the model of the first chunk only, usage riding the finish chunk,
     * then a later usage-only chunk wins; content_filter -> end_turn */
    stream_str(REQ,
               "[" CH("{\"reasoning\":\"r\"}") ","
                                               "{\"model\":\"other\",\"choices\":[{\"index\":0,"
                                               "\"delta\":{\"content\":\"t\"},"
                                               "\"finish_reason\":\"content_filter\"}],\"usage\":{"
                                               "\"prompt_tokens\":1,"
                                               "\"completion_tokens\":1}},"
                                               "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
                                               "\"completion_tokens\":4,"
                                               "\"prompt_tokens_details\":{\"cached_tokens\":2}}}]",
               &out);
    tst_assert_anthropic_sse_equal(
        out.data, out.len,
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_test\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"up\",\"content\":[],"
        "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
        "\"output_tokens\":0}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"r\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"t\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":7,\"output_tokens\":4,"
        "\"cache_read_input_tokens\":2}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        strlen(out.data), "details");
    /* framing: every event is exactly "event: T\ndata: {...}\n\n" */
    assert_int_equal(strncmp(out.data, "event: message_start\ndata: {", 28), 0);
    {
        static const char tail[] = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_true(out.len > sizeof(tail));
        assert_string_equal(out.data + out.len - (sizeof(tail) - 1), tail);
    }
    cm_buf_cleanup(&out);

    /* a text block between two pieces of reasoning opens a new thinking block */
    stream_str(REQ,
               "[" CH("{\"reasoning_content\":\"a\"}") "," CH("{\"content\":\"b\"}") "," CH(
                   "{\"reasoning_content\":\"c\"}") "]",
               &out);
    tst_events_parse(&e, out.data, out.len);
    assert_int_equal(e.n, 12); /* start, 3 x (start, delta, stop), delta, stop */
    assert_non_null(strstr(e.data[7], "\"index\":2"));
    assert_non_null(strstr(e.data[7], "\"thinking\""));
    tst_events_free(&e);
    cm_buf_cleanup(&out);
}

/* stream_fail's error type for each status. */
static void test_fail_types(void **state)
{
    static const struct {
        unsigned status;
        const char *type;
    } map[] = {{503, "overloaded_error"},
               {529, "overloaded_error"},
               {429, "rate_limit_error"},
               {401, "authentication_error"},
               {403, "permission_error"},
               {404, "not_found_error"},
               {400, "invalid_request_error"},
               {408, "timeout_error"},
               {504, "timeout_error"},
               {500, "api_error"},
               {502, "api_error"},
               {0, "api_error"}};

    (void)state;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct cp_tr_messages_chat_stream *st = NULL;
        struct cp_tr_err e;
        struct cm_buf out;
        cJSON *err;

        memset(&e, 0, sizeof(e));
        e.status = map[i].status;
        if (i % 2)
            snprintf(e.msg, sizeof(e.msg), "boom %u", map[i].status);
        cm_buf_init(&out, OUT_MAX);
        assert_int_equal(cp_tr_messages_chat_stream_new(NULL, TEST_ID, CREATED, &st), CM_OK);
        assert_int_equal(cp_tr_messages_chat_stream_fail(st, &e, &out), CM_OK);
        /* a fail before any chunk is the error alone, nothing else */
        assert_int_equal(strncmp(out.data, "event: error\ndata: ", 19), 0);
        err = tst_anthropic_last_error(&out);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "type")->valuestring,
                            map[i].type);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring,
                            i % 2 ? e.msg : "upstream error");
        cJSON_Delete(err);
        /* end after fail: nothing */
        assert_int_equal(cp_tr_messages_chat_stream_end(st, &out), CM_OK);
        assert_null(strstr(out.data, "message_stop"));
        cp_tr_messages_chat_stream_free(st);
        cm_buf_cleanup(&out);
    }
}

static void test_stream_limits_and_args(void **state)
{
    struct cp_tr_messages_chat_stream *st = NULL;
    struct cp_tr_err err;
    struct cm_buf out;
    char chunk[256];
    int rc = CM_OK;

    (void)state;
    assert_int_equal(cp_tr_messages_chat_stream_new(NULL, NULL, CREATED, &st), CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_chat_stream_new(NULL, TEST_ID, CREATED, NULL), CM_ERR_INVAL);
    cm_buf_init(&out, (size_t)16 << 20);
    assert_int_equal(cp_tr_messages_chat_stream_new(NULL, TEST_ID, CREATED, &st), CM_OK);
    assert_int_equal(cp_tr_messages_chat_stream_chunk(NULL, NULL, &out, &err), CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_chat_stream_end(st, NULL), CM_ERR_INVAL);
    assert_int_equal(cp_tr_messages_chat_stream_fail(st, NULL, &out), CM_ERR_INVAL);
    for (int i = 0; i <= CP_TR_MESSAGES_CHAT_MAX_TOOLS && rc == CM_OK; i++) {
        cJSON *c;
        snprintf(chunk, sizeof(chunk),
                 "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":"
                 "\"c%d\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}",
                 i, i);
        c = tst_parse_str(chunk);
        rc = cp_tr_messages_chat_stream_chunk(st, c, &out, &err);
        cJSON_Delete(c);
        if (i < CP_TR_MESSAGES_CHAT_MAX_TOOLS)
            assert_int_equal(rc, CM_OK);
    }
    assert_int_equal(rc, CM_ERR_LIMIT);
    assert_int_equal(err.rc, CM_ERR_LIMIT);
    assert_int_equal(err.status, 502);
    cp_tr_messages_chat_stream_free(st);
    cm_buf_cleanup(&out);

    /* arguments for a call whose block is stopped are not sent into another block */
    stream_str(
        REQ,
        "[" CH(
            "{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\","
            "\"arguments\":\"{\\\"x\\\":\"}}]}") "," CH("{\"content\":\"mid\"}") "," CH("{\"tool_"
                                                                                        "calls\":[{"
                                                                                        "\"index\":"
                                                                                        "0,"
                                                                                        "\"function"
                                                                                        "\":{"
                                                                                        "\"argument"
                                                                                        "s\":\"77}"
                                                                                        "\"}}]}") "]",
        &out);
    assert_null(strstr(out.data, "77}"));
    assert_non_null(strstr(out.data, "\"stop_reason\":\"tool_use\""));
    cm_buf_cleanup(&out);

    /* an output buffer that fills up is CM_ERR_LIMIT */
    {
        cJSON *c = tst_parse_str(CH("{\"content\":\"hello\"}"));
        cm_buf_init(&out, 64);
        assert_int_equal(cp_tr_messages_chat_stream_new(NULL, TEST_ID, CREATED, &st), CM_OK);
        assert_int_equal(cp_tr_messages_chat_stream_chunk(st, c, &out, &err), CM_ERR_LIMIT);
        assert_int_equal(err.rc, CM_ERR_LIMIT);
        cp_tr_messages_chat_stream_free(st);
        cm_buf_cleanup(&out);
        cJSON_Delete(c);
    }
}

static void test_response_errors(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL, *c;
    struct cm_buf b;

    (void)state;
    c = tst_parse_str("[]");
    assert_int_equal(cp_tr_messages_chat_response(NULL, c, TEST_ID, CREATED, &out, &err),
                     CM_ERR_UPSTREAM);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "bad_upstream_event");
    assert_null(out);
    assert_int_equal(cp_tr_messages_chat_response(NULL, c, NULL, CREATED, &out, &err),
                     CM_ERR_INVAL);
    cJSON_Delete(c);
    /* too many tool calls */
    cm_buf_init(&b, (size_t)1 << 20);
    assert_int_equal(cm_buf_append_str(&b, "{\"choices\":[{\"message\":{\"tool_calls\":["), CM_OK);
    for (int i = 0; i <= CP_TR_MESSAGES_CHAT_MAX_TOOLS; i++)
        assert_int_equal(
            cm_buf_appendf(&b, "%s{\"id\":\"c%d\",\"function\":{\"name\":\"f\"}}", i ? "," : "", i),
            CM_OK);
    assert_int_equal(cm_buf_append_str(&b, "]}}]}"), CM_OK);
    c = tst_parse_str(b.data);
    assert_int_equal(cp_tr_messages_chat_response(NULL, c, TEST_ID, CREATED, &out, &err),
                     CM_ERR_LIMIT);
    assert_int_equal(err.status, 502);
    assert_null(out);
    cJSON_Delete(c);
    cm_buf_cleanup(&b);
}

/* ---- OOM walks ---- */

struct oom {
    cJSON *in, *chunks, *completion;
};

static int try_request(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom *o = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_messages_chat_request(o->in, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

static int try_response(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom *o = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_messages_chat_response(o->in, o->completion, TEST_ID, CREATED, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

static int try_stream(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom *o = ud;
    struct cp_tr_messages_chat_stream *st = NULL;
    struct cm_buf b;
    const cJSON *c;
    int rc;

    (void)out;
    cm_buf_init(&b, OUT_MAX);
    cm_alloc_fail_at(n);
    rc = cp_tr_messages_chat_stream_new(o->in, TEST_ID, CREATED, &st);
    cJSON_ArrayForEach(c, o->chunks)
    {
        if (rc == CM_OK)
            rc = cp_tr_messages_chat_stream_chunk(st, c, &b, err);
    }
    if (rc == CM_OK)
        rc = cp_tr_messages_chat_stream_end(st, &b);
    cm_alloc_fail_at(0);
    cp_tr_messages_chat_stream_free(st);
    cm_buf_cleanup(&b);
    return rc;
}

static void test_oom(void **state)
{
    static const char *const cases[] = {"tools", "reasoning_media", "late_tool_name"};
    char *dir = tst_fixture_dir(SUB);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[512];
        struct oom o;
        snprintf(path, sizeof(path), "%s/%s", dir, cases[i]);
        o.in = tst_read_json(path, "in.json");
        o.chunks = tst_read_json(path, "chunks.json");
        o.completion = tst_read_json(path, "completion.json");
        assert_true(tst_oom_walk(try_request, &o, 5000, 0) > 20);
        assert_true(tst_oom_walk(try_stream, &o, 20000, TST_OOM_NO_RESULT) > 20);
        assert_true(tst_oom_walk(try_response, &o, 5000, 0) > 5);
        cJSON_Delete(o.in);
        cJSON_Delete(o.chunks);
        cJSON_Delete(o.completion);
    }
    cm_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusal_messages),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_effort_table),
        cmocka_unit_test(test_has_content),
        cmocka_unit_test(test_stream_details),
        cmocka_unit_test(test_fail_types),
        cmocka_unit_test(test_stream_limits_and_args),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
