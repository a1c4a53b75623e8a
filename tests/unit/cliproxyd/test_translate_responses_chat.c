/* SPDX-License-Identifier: MIT */
/*
 * test_translate_responses_chat.c - Responses clients over the chat pivot, against the
 * fixtures in tests/fixtures/translate/responses_chat/<case>/: in.json -> expected.json
 * (the chat request, compared as trees); in.json + chunks.json ({"chunks":[...],
 * "fail"?:{status,code,msg}}) -> expected.sse (event by event: names, data as trees,
 * sequence numbers, framing); in.json + completion.json -> expected_response.json (and
 * the stream's terminal response must be that same object). Then the refusals that name
 * their field, the caps, the stream's edge cases (has_content, end/fail twice, chunks
 * after the end, the error code table, interleaved calls, too many items), the non-stream
 * errors and OOM walks over each entry point.
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
#include "translate/responses_chat.h"
#include "tst_support.h"

#define SUB "responses_chat"
#define TEST_ID "resp_test"
#define TEST_CREATED 1700000000

static const cJSON *member(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

static cJSON *mut(cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = member(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- driving a stream from a chunks.json tree ---- */

/* The failure described by {status, code, msg}. */
static struct cp_tr_err fail_of(const cJSON *f)
{
    struct cp_tr_err e;

    memset(&e, 0, sizeof(e));
    e.rc = CM_ERR_UPSTREAM;
    e.status = (unsigned)member(f, "status")->valuedouble;
    snprintf(e.code, sizeof(e.code), "%s", str(f, "code") ? str(f, "code") : "");
    snprintf(e.msg, sizeof(e.msg), "%s", str(f, "msg") ? str(f, "msg") : "");
    return e;
}

/*
 * Runs the chunks of @p script through a new stream for @p req into @p out, then fail or
 * end; checks that later calls append nothing. Returns the content flag at the end.
 */
static bool run_script(const cJSON *req, const cJSON *script, struct cm_buf *out)
{
    struct cp_tr_responses_chat_stream *st = NULL;
    const cJSON *c, *f = member(script, "fail");
    struct cp_tr_err err;
    bool content;
    size_t len;

    assert_int_equal(cp_tr_responses_chat_stream_new(req, TEST_ID, TEST_CREATED, &st), CM_OK);
    assert_false(cp_tr_responses_chat_stream_has_content(st));
    cJSON_ArrayForEach(c, member(script, "chunks"))
    {
        int rc = cp_tr_responses_chat_stream_chunk(st, c, out, &err);
        if (rc)
            fail_msg("chunk failed: rc %d %s", rc, err.msg);
    }
    if (f) {
        struct cp_tr_err e = fail_of(f);
        assert_int_equal(cp_tr_responses_chat_stream_fail(st, &e, out), CM_OK);
    } else {
        assert_int_equal(cp_tr_responses_chat_stream_end(st, out), CM_OK);
    }
    /* the end is final: nothing more goes out */
    len = out->len;
    assert_int_equal(cp_tr_responses_chat_stream_end(st, out), CM_OK);
    assert_int_equal(cp_tr_responses_chat_stream_fail(st, NULL, out), CM_OK);
    c = cJSON_GetArrayItem(member(script, "chunks"), 0);
    if (c)
        assert_int_equal(cp_tr_responses_chat_stream_chunk(st, c, out, &err), CM_OK);
    assert_int_equal(out->len, len);
    content = cp_tr_responses_chat_stream_has_content(st);
    cp_tr_responses_chat_stream_free(st);
    return content;
}

/*
 * A Responses stream is well formed: each event "event: T\ndata: {...}\n\n" with
 * data.type == T and sequence_number == its position; no [DONE]. Returns the events.
 */
static void check_framing(const struct cm_buf *out, struct tst_events *ev)
{
    size_t i;

    tst_events_parse(ev, out->data ? out->data : "", out->len);
    assert_true(out->len == 0 || strncmp(out->data, "event: ", 7) == 0);
    assert_true(out->len == 0 || strcmp(out->data + out->len - 2, "\n\n") == 0);
    assert_null(strstr(out->data ? out->data : "", "[DONE]"));
    for (i = 0; i < ev->n; i++) {
        cJSON *d = tst_parse_str(ev->data[i]);
        assert_non_null(ev->type[i]);
        assert_string_equal(str(d, "type"), ev->type[i]);
        assert_int_equal((int64_t)member(d, "sequence_number")->valuedouble, (int64_t)i);
        cJSON_Delete(d);
    }
}

static void assert_stream_equal(const struct cm_buf *got, const char *want, size_t want_len,
                                const char *what)
{
    struct tst_events g, w;
    size_t i;

    check_framing(got, &g);
    tst_events_parse(&w, want, want_len);
    for (i = 0; i < g.n && i < w.n; i++) {
        cJSON *gj = tst_parse_str(g.data[i]), *wj = tst_parse_str(w.data[i]);
        char label[256];
        snprintf(label, sizeof(label), "%s event %zu (%s)", what, i, w.type[i]);
        assert_non_null(w.type[i]);
        assert_string_equal(g.type[i], w.type[i]);
        tst_assert_json_equal(gj, wj, label);
        cJSON_Delete(gj);
        cJSON_Delete(wj);
    }
    if (g.n != w.n)
        fail_msg("%s: %zu events, want %zu", what, g.n, w.n);
    tst_events_free(&g);
    tst_events_free(&w);
}

/* The response of the stream's last event (a copy; caller frees). */
static cJSON *last_response(const struct cm_buf *out)
{
    struct tst_events e;
    cJSON *d, *r;

    tst_events_parse(&e, out->data, out->len);
    assert_true(e.n > 0);
    d = tst_parse_str(e.data[e.n - 1]);
    r = cJSON_DetachItemFromObjectCaseSensitive(d, "response");
    assert_non_null(r);
    cJSON_Delete(d);
    tst_events_free(&e);
    return r;
}

/* ---- the fixtures ---- */

struct counts {
    int cases, requests, streams, responses;
};

static void run_case(const char *dir, const char *name, struct counts *n)
{
    char *cdir = tst_join(dir, "/");
    char *path = tst_join(cdir, name);
    cJSON *in = tst_read_json(path, "in.json"), *want = tst_read_json(path, "expected.json");
    cJSON *script = tst_read_json(path, "chunks.json");
    cJSON *completion = tst_read_json(path, "completion.json");
    cJSON *want_resp = tst_read_json(path, "expected_response.json");
    cJSON *got = NULL, *stream_resp = NULL;
    struct cp_tr_err err;
    char label[512];
    int rc;

    assert_non_null(in);
    n->cases++;
    /* every client request of a case translates */
    rc = cp_tr_responses_chat_request(in, &got, &err);
    if (rc)
        fail_msg("%s: request failed: %s", name, err.msg);
    if (want) {
        snprintf(label, sizeof(label), "%s/expected.json", name);
        tst_assert_json_equal(got, want, label);
        n->requests++;
    }
    cJSON_Delete(got);
    got = NULL;
    if (script) {
        struct cm_buf out;
        size_t wlen = 0;
        char *wsse;
        bool content;
        cm_buf_init(&out, (size_t)1 << 22);
        content = run_script(in, script, &out);
        wsse = tst_read_file(path, "expected.sse", &wlen);
        assert_non_null(wsse);
        snprintf(label, sizeof(label), "%s/expected.sse", name);
        assert_stream_equal(&out, wsse, wlen, label);
        /* has_content: true exactly when an item was opened */
        assert_int_equal(content, strstr(out.data, "response.output_item.added") != NULL);
        if (!member(script, "fail"))
            stream_resp = last_response(&out);
        cm_free(wsse);
        cm_buf_cleanup(&out);
        n->streams++;
    }
    if (completion) {
        rc = cp_tr_responses_chat_response(in, completion, TEST_ID, TEST_CREATED, &got, &err);
        if (rc)
            fail_msg("%s: response failed: %s", name, err.msg);
        assert_non_null(want_resp);
        snprintf(label, sizeof(label), "%s/expected_response.json", name);
        tst_assert_json_equal(got, want_resp, label);
        if (stream_resp) {
            snprintf(label, sizeof(label), "%s: the stream's terminal response", name);
            tst_assert_json_equal(stream_resp, want_resp, label);
        }
        n->responses++;
    }
    cJSON_Delete(stream_resp);
    cJSON_Delete(got);
    cJSON_Delete(want_resp);
    cJSON_Delete(completion);
    cJSON_Delete(script);
    cJSON_Delete(want);
    cJSON_Delete(in);
    cm_free(path);
    cm_free(cdir);
}

static void test_fixtures(void **state)
{
    char *dir = tst_fixture_dir(SUB);
    struct counts n = {0, 0, 0, 0};
    struct dirent *de;
    DIR *d;

    (void)state;
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        run_case(dir, de->d_name, &n);
    }
    closedir(d);
    cm_free(dir);
    assert_true(n.cases >= 12);
    assert_true(n.requests >= 4);
    assert_true(n.streams >= 8);
    assert_true(n.responses >= 5);
}

/* ---- request refusals and rules ---- */

static int request_fn(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    return cp_tr_responses_chat_request(req, out, err);
}

/* @p json must fail naming @p field, and the message must start with "<field>: ". */
static void expect_refused(const char *json, const char *field)
{
    struct cp_tr_err err;
    cJSON *out = NULL;
    char prefix[160];

    tst_expect_field_error(request_fn, json, CM_ERR_INVAL, field);
    assert_int_equal(tst_translate_str(request_fn, json, &out, &err), CM_ERR_INVAL);
    assert_null(out);
    snprintf(prefix, sizeof(prefix), "%s: ", field);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
}

#define REQ(rest) "{\"model\":\"m\",\"input\":\"hi\"" rest "}"
#define ITEMS(items) "{\"model\":\"m\",\"input\":[" items "]}"

static void test_refusals(void **state)
{
    (void)state;
    expect_refused(REQ(",\"previous_response_id\":\"resp_1\""), "previous_response_id");
    expect_refused(REQ(",\"conversation\":\"conv_1\""), "conversation");
    expect_refused(REQ(",\"prompt\":{\"id\":\"pmpt_1\"}"), "prompt");
    expect_refused(REQ(",\"background\":true"), "background");
    expect_refused(REQ(",\"max_tool_calls\":3"), "max_tool_calls");
    expect_refused(REQ(",\"top_logprobs\":2"), "top_logprobs");
    expect_refused(
        REQ(",\"tools\":[{\"type\":\"function\",\"name\":\"f\"},{\"type\":\"web_search\"}]"),
        "tools[1].type");
    expect_refused(REQ(",\"tools\":[{\"type\":\"file_search\",\"vector_store_ids\":[]}]"),
                   "tools[0].type");
    expect_refused(REQ(",\"tools\":[{\"type\":\"mcp\",\"server_label\":\"x\"}]"), "tools[0].type");
    expect_refused(REQ(",\"tools\":[{\"type\":\"custom\",\"name\":\"x\"}]"), "tools[0].type");
    expect_refused(REQ(",\"tools\":[{\"type\":\"function\",\"name\":\"\"}]"), "tools[0].name");
    expect_refused(REQ(",\"tools\":[{\"type\":\"function\"}]"), "tools[0].name");
    expect_refused(REQ(",\"tools\":{}"), "tools");
    expect_refused(REQ(",\"tool_choice\":{\"type\":\"web_search_preview\"}"), "tool_choice.type");
    expect_refused(REQ(",\"tool_choice\":\"sometimes\""), "tool_choice");
    expect_refused(REQ(",\"tool_choice\":{\"type\":\"function\"}"), "tool_choice.name");
    expect_refused(REQ(",\"text\":{\"format\":{\"type\":\"grammar\"}}"), "text.format.type");
    expect_refused(REQ(",\"text\":{\"format\":{\"type\":\"json_schema\"}}"), "text.format.name");
    expect_refused(REQ(",\"reasoning\":{\"effort\":5}"), "reasoning.effort");
    expect_refused(REQ(",\"max_output_tokens\":0"), "max_output_tokens");
    expect_refused(REQ(",\"temperature\":\"hot\""), "temperature");
    expect_refused("{\"input\":\"hi\"}", "model");
    expect_refused("{\"model\":\"m\"}", "input");
    expect_refused("{\"model\":\"m\",\"input\":5}", "input");
    expect_refused("{\"model\":\"m\",\"input\":[]}", "input");
    expect_refused(ITEMS("{\"type\":\"item_reference\",\"id\":\"msg_1\"}"), "input[0].type");
    expect_refused(ITEMS("{\"role\":\"user\",\"content\":\"a\"},{\"type\":\"web_search_call\"}"),
                   "input[1].type");
    expect_refused(ITEMS("{\"role\":\"tool\",\"content\":\"a\"}"), "input[0].role");
    expect_refused(ITEMS("\"text\""), "input[0]");
    expect_refused(ITEMS("{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"a\"},"
                         "{\"type\":\"input_image\",\"file_id\":\"file-1\"}]}"),
                   "input[0].content[1].file_id");
    expect_refused(ITEMS("{\"role\":\"user\",\"content\":[{\"type\":\"input_file\","
                         "\"file_id\":\"file-1\"}]}"),
                   "input[0].content[0].file_id");
    expect_refused(ITEMS("{\"role\":\"user\",\"content\":[{\"type\":\"input_file\","
                         "\"file_url\":\"https://127.0.0.1/a.pdf\"}]}"),
                   "input[0].content[0].file_url");
    expect_refused(ITEMS("{\"role\":\"system\",\"content\":[{\"type\":\"input_image\","
                         "\"image_url\":\"data:image/png;base64,AA==\"}]}"),
                   "input[0].content[0].type");
    expect_refused(
        ITEMS("{\"role\":\"user\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"x\"}]}"),
        "input[0].content[0].type");
    expect_refused(ITEMS("{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}"),
                   "input[0].content[0].type");
    expect_refused(ITEMS("{\"role\":\"user\",\"content\":7}"), "input[0].content");
    expect_refused(ITEMS("{\"type\":\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}"),
                   "input[0].call_id");
    expect_refused(ITEMS("{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":["
                         "{\"type\":\"input_text\",\"text\":\"a\"},{\"type\":\"input_image\","
                         "\"image_url\":\"data:image/png;base64,AA==\"}]}"),
                   "input[0].output[1].type");
    expect_refused(ITEMS("{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":5}"),
                   "input[0].output");
}

static void test_refusal_shape(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL;

    (void)state;
    assert_int_equal(tst_translate_str(request_fn,
                                       REQ(",\"tools\":[{\"type\":\"function\",\"name\":\"f\"},"
                                           "{\"type\":\"function\",\"name\":\"g\"},"
                                           "{\"type\":\"code_interpreter\"}]"),
                                       &out, &err),
                     CM_ERR_INVAL);
    assert_int_equal(err.rc, CM_ERR_INVAL);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.field, "tools[2].type");
    assert_string_equal(err.msg, "tools[2].type: 'code_interpreter' tools are not supported by "
                                 "the chat pivot (function tools only)");
    /* not an object at all */
    {
        cJSON *arr = cJSON_CreateArray();
        assert_int_equal(cp_tr_responses_chat_request(arr, &out, &err), CM_ERR_INVAL);
        assert_int_equal(err.status, 400);
        assert_null(out);
        cJSON_Delete(arr);
    }
    assert_int_equal(cp_tr_responses_chat_request(NULL, NULL, NULL), CM_ERR_INVAL);
}

static void test_limits(void **state)
{
    (void)state;
    tst_expect_limit(request_fn, "{\"model\":\"m\",\"input\":\"hi\",\"tools\":[",
                     "{\"type\":\"function\",\"name\":\"f%d\"}", CP_TR_RESPONSES_CHAT_MAX_TOOLS + 1,
                     "]}", "tools");
    tst_expect_limit(request_fn, "{\"model\":\"m\",\"input\":[",
                     "{\"role\":\"user\",\"content\":\"m%d\"}", CP_TR_RESPONSES_CHAT_MAX_ITEMS + 1,
                     "]}", "input");
    tst_expect_limit(request_fn, "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[",
                     "{\"type\":\"input_text\",\"text\":\"t%d\"}",
                     CP_TR_RESPONSES_CHAT_MAX_PARTS + 1, "]}]}", "input[0].content");
}

/* What the chat request holds for a few rules the fixtures do not show. */
static void test_request_rules(void **state)
{
    struct cp_tr_err err;
    cJSON *out = NULL;
    const cJSON *msgs;

    (void)state;
    /* ignored hints, no stream flag -> false, empty instructions dropped, reasoning items */
    assert_int_equal(
        tst_translate_str(request_fn,
                          "{\"model\":\"m\",\"instructions\":\"\",\"input\":[{\"type\":"
                          "\"reasoning\",\"summary\":[]},{\"role\":\"user\","
                          "\"content\":\"q\"}],\"store\":true,\"metadata\":{\"a\":"
                          "\"b\"},\"service_tier\":\"flex\",\"background\":false,"
                          "\"include\":[],\"truncation\":\"auto\",\"reasoning\":{"
                          "\"summary\":\"auto\"},\"text\":{\"format\":{\"type\":"
                          "\"text\"}},\"tools\":[],\"tool_choice\":null}",
                          &out, &err),
        CM_OK);
    {
        cJSON *want = tst_parse_str("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                    "\"content\":\"q\"}],\"stream\":false}");
        tst_assert_json_equal(out, want, "hints dropped");
        cJSON_Delete(want);
    }
    cJSON_Delete(out);
    /* function_call after a tool message starts a new assistant message */
    assert_int_equal(
        tst_translate_str(request_fn,
                          ITEMS("{\"type\":\"function_call\",\"call_id\":\"a\",\"name\":\"f\"},"
                                "{\"type\":\"function_call_output\",\"call_id\":\"a\","
                                "\"output\":\"1\"},{\"type\":\"function_call\",\"call_id\":"
                                "\"b\",\"name\":\"f\",\"arguments\":\"{}\"}"),
                          &out, &err),
        CM_OK);
    msgs = member(out, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    assert_string_equal(str(cJSON_GetArrayItem(msgs, 0), "role"), "assistant");
    assert_true(cJSON_IsNull(member(cJSON_GetArrayItem(msgs, 0), "content")));
    assert_string_equal(
        str(member(cJSON_GetArrayItem(member(cJSON_GetArrayItem(msgs, 0), "tool_calls"), 0),
                   "function"),
            "arguments"),
        "");
    assert_string_equal(str(cJSON_GetArrayItem(msgs, 1), "role"), "tool");
    assert_string_equal(str(cJSON_GetArrayItem(msgs, 1), "tool_call_id"), "a");
    assert_int_equal(cJSON_GetArraySize(member(cJSON_GetArrayItem(msgs, 2), "tool_calls")), 1);
    cJSON_Delete(out);
}

/* ---- stream edge cases ---- */

static cJSON *chunk_text(const char *key, const char *val)
{
    cJSON *c = tst_parse_str("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                             "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},"
                             "\"finish_reason\":null}]}");
    cJSON *d = mut(cJSON_GetArrayItem(mut(c, "choices"), 0), "delta");
    if (key)
        assert_int_equal(cm_json_set_string(d, key, val), CM_OK);
    return c;
}

static cJSON *chunk_call(int index, const char *id, const char *name, const char *args)
{
    cJSON *c = chunk_text(NULL, NULL), *tc = NULL, *fn = NULL, *arr = NULL;
    cJSON *d = mut(cJSON_GetArrayItem(mut(c, "choices"), 0), "delta");

    assert_int_equal(cm_json_new_object(&tc), CM_OK);
    assert_int_equal(cm_json_set_int64(tc, "index", index), CM_OK);
    if (id)
        assert_int_equal(cm_json_set_string(tc, "id", id), CM_OK);
    assert_int_equal(cm_json_new_object(&fn), CM_OK);
    if (name)
        assert_int_equal(cm_json_set_string(fn, "name", name), CM_OK);
    assert_int_equal(cm_json_set_string(fn, "arguments", args), CM_OK);
    assert_int_equal(cm_json_adopt(tc, "function", &fn), CM_OK);
    assert_int_equal(cm_json_new_array(&arr), CM_OK);
    assert_int_equal(cm_json_adopt(arr, NULL, &tc), CM_OK);
    assert_int_equal(cm_json_adopt(d, "tool_calls", &arr), CM_OK);
    return c;
}

static struct cp_tr_responses_chat_stream *new_stream(void)
{
    struct cp_tr_responses_chat_stream *st = NULL;
    cJSON *req = tst_parse_str("{\"model\":\"m\",\"input\":\"hi\",\"stream\":true}");
    assert_int_equal(cp_tr_responses_chat_stream_new(req, TEST_ID, TEST_CREATED, &st), CM_OK);
    cJSON_Delete(req);
    return st;
}

static void feed(struct cp_tr_responses_chat_stream *st, cJSON *chunk, struct cm_buf *out)
{
    struct cp_tr_err err;
    int rc = cp_tr_responses_chat_stream_chunk(st, chunk, out, &err);
    if (rc)
        fail_msg("chunk: rc %d %s", rc, err.msg);
    cJSON_Delete(chunk);
}

static void test_has_content(void **state)
{
    struct cp_tr_responses_chat_stream *st = new_stream();
    struct cm_buf out;

    (void)state;
    cm_buf_init(&out, 1 << 20);
    feed(st, chunk_text("role", "assistant"), &out);
    feed(st, chunk_text("content", ""), &out);
    assert_false(cp_tr_responses_chat_stream_has_content(st));
    /* only created + in_progress so far */
    assert_non_null(strstr(out.data, "event: response.created\n"));
    assert_non_null(strstr(out.data, "event: response.in_progress\n"));
    assert_null(strstr(out.data, "output_item"));
    feed(st, chunk_text("reasoning_content", "hmm"), &out);
    assert_true(cp_tr_responses_chat_stream_has_content(st));
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);

    st = new_stream();
    cm_buf_init(&out, 1 << 20);
    feed(st, chunk_call(0, "call_1", "f", ""), &out);
    assert_true(cp_tr_responses_chat_stream_has_content(st));
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);
    cp_tr_responses_chat_stream_free(NULL);
    assert_false(cp_tr_responses_chat_stream_has_content(NULL));
}

/* stream_fail's "code" for a failure of @p status / @p code. */
static void expect_fail_code(unsigned status, const char *code, const char *want)
{
    struct cp_tr_responses_chat_stream *st = new_stream();
    struct cp_tr_err e;
    struct tst_events ev;
    struct cm_buf out;
    cJSON *d, *f;

    memset(&e, 0, sizeof(e));
    e.rc = CM_ERR_UPSTREAM;
    e.status = status;
    snprintf(e.code, sizeof(e.code), "%s", code);
    snprintf(e.msg, sizeof(e.msg), "boom %u", status);
    cm_buf_init(&out, 1 << 20);
    feed(st, chunk_text("content", "partial"), &out);
    assert_int_equal(cp_tr_responses_chat_stream_fail(st, &e, &out), CM_OK);
    check_framing(&out, &ev);
    assert_true(ev.n >= 4);
    assert_string_equal(ev.type[ev.n - 2], "error");
    d = tst_parse_str(ev.data[ev.n - 2]);
    assert_string_equal(str(d, "code"), want);
    assert_string_equal(str(d, "message"), e.msg);
    assert_int_equal(cJSON_GetArraySize(d), 4); /* type, sequence_number, code, message */
    cJSON_Delete(d);
    assert_string_equal(ev.type[ev.n - 1], "response.failed");
    d = tst_parse_str(ev.data[ev.n - 1]);
    f = mut(d, "response");
    assert_string_equal(str(f, "status"), "failed");
    assert_string_equal(str(member(f, "error"), "code"), want);
    assert_string_equal(str(member(f, "error"), "message"), e.msg);
    assert_string_equal(str(f, "id"), TEST_ID);
    assert_int_equal(cJSON_GetArraySize(member(f, "output")), 0); /* the message was open */
    cJSON_Delete(d);
    tst_events_free(&ev);
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);
}

static void test_fail_codes(void **state)
{
    (void)state;
    expect_fail_code(401, "", "invalid_api_key");
    expect_fail_code(402, "", "insufficient_quota");
    expect_fail_code(404, "", "model_not_found");
    expect_fail_code(408, "request_timeout", "request_timeout");
    expect_fail_code(408, "", "request_timeout");
    expect_fail_code(429, "", "rate_limit_exceeded");
    expect_fail_code(429, "insufficient_quota", "insufficient_quota");
    expect_fail_code(400, "", "invalid_request_error");
    expect_fail_code(500, "", "internal_server_error");
    expect_fail_code(502, "bad_upstream_event", "internal_server_error");
    expect_fail_code(503, "", "internal_server_error");
}

/* A failure before any chunk still opens the response first. */
static void test_fail_first(void **state)
{
    struct cp_tr_responses_chat_stream *st = new_stream();
    struct tst_events ev;
    struct cm_buf out;

    (void)state;
    cm_buf_init(&out, 1 << 20);
    assert_int_equal(cp_tr_responses_chat_stream_fail(st, NULL, &out), CM_OK);
    check_framing(&out, &ev);
    assert_int_equal(ev.n, 4);
    assert_string_equal(ev.type[0], "response.created");
    assert_string_equal(ev.type[1], "response.in_progress");
    assert_string_equal(ev.type[2], "error");
    assert_string_equal(ev.type[3], "response.failed");
    tst_events_free(&ev);
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);
}

static void test_interleaved_calls(void **state)
{
    struct cp_tr_responses_chat_stream *st = new_stream();
    struct cp_tr_err err;
    struct cm_buf out;
    cJSON *c;

    (void)state;
    cm_buf_init(&out, 1 << 20);
    feed(st, chunk_call(0, "call_a", "f", "{"), &out);
    feed(st, chunk_call(1, "call_b", "g", "{"), &out);
    /* an empty piece for the closed call is harmless */
    feed(st, chunk_call(0, NULL, NULL, ""), &out);
    c = chunk_call(0, NULL, NULL, "}");
    assert_int_equal(cp_tr_responses_chat_stream_chunk(st, c, &out, &err), CM_ERR_UPSTREAM);
    assert_int_equal(err.rc, CM_ERR_UPSTREAM);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "bad_upstream_event");
    cJSON_Delete(c);
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);
}

static void test_too_many_items(void **state)
{
    struct cp_tr_responses_chat_stream *st = new_stream();
    struct cp_tr_err err;
    struct cm_buf out;
    char id[32];
    int i, rc = CM_OK;

    (void)state;
    cm_buf_init(&out, (size_t)64 << 20);
    for (i = 0; i <= CP_TR_RESPONSES_CHAT_MAX_OUTPUT && rc == CM_OK; i++) {
        cJSON *c;
        snprintf(id, sizeof(id), "call_%d", i);
        c = chunk_call(i, id, "f", "{}");
        rc = cp_tr_responses_chat_stream_chunk(st, c, &out, &err);
        cJSON_Delete(c);
    }
    assert_int_equal(rc, CM_ERR_LIMIT);
    assert_int_equal(i, CP_TR_RESPONSES_CHAT_MAX_OUTPUT + 1);
    assert_int_equal(err.rc, CM_ERR_LIMIT);
    assert_int_equal(err.status, 502);
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);
}

/* A full client buffer is CM_ERR_LIMIT and appends no partial event. */
static void test_out_full(void **state)
{
    struct cp_tr_responses_chat_stream *st = new_stream();
    struct cp_tr_err err;
    struct cm_buf out;
    cJSON *c = chunk_text("content", "hello");

    (void)state;
    cm_buf_init(&out, 64);
    assert_int_equal(cp_tr_responses_chat_stream_chunk(st, c, &out, &err), CM_ERR_LIMIT);
    assert_int_equal(out.len, 0);
    assert_int_equal(err.rc, CM_ERR_LIMIT);
    assert_int_equal(cp_tr_responses_chat_stream_end(st, &out), CM_ERR_LIMIT);
    assert_int_equal(out.len, 0);
    cJSON_Delete(c);
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&out);
}

static void test_bad_args(void **state)
{
    struct cp_tr_responses_chat_stream *st = NULL;
    struct cp_tr_err err;
    cJSON *out = NULL, *ok = tst_parse_str("{\"choices\":[]}");

    (void)state;
    assert_int_equal(cp_tr_responses_chat_stream_new(NULL, NULL, 0, &st), CM_ERR_INVAL);
    assert_null(st);
    assert_int_equal(cp_tr_responses_chat_response(NULL, ok, NULL, 0, &out, &err), CM_ERR_INVAL);
    assert_int_equal(err.status, 500);
    cJSON_Delete(ok);
}

/* ---- non-stream edge cases ---- */

static void test_response_errors(void **state)
{
    cJSON *req = tst_parse_str("{\"model\":\"m\",\"input\":\"hi\"}");
    cJSON *bad = tst_parse_str("{\"choices\":{}}"), *arr = tst_parse_str("[]");
    cJSON *empty = tst_parse_str("{\"choices\":[]}");
    cJSON *out = (cJSON *)(uintptr_t)1;
    struct cp_tr_err err;

    (void)state;
    assert_int_equal(cp_tr_responses_chat_response(req, bad, TEST_ID, TEST_CREATED, &out, &err),
                     CM_ERR_UPSTREAM);
    assert_int_equal(err.status, 502);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1);
    assert_int_equal(cp_tr_responses_chat_response(req, arr, TEST_ID, TEST_CREATED, &out, &err),
                     CM_ERR_UPSTREAM);
    /* no choices: an empty, completed answer with usage null */
    assert_int_equal(cp_tr_responses_chat_response(req, empty, TEST_ID, TEST_CREATED, &out, &err),
                     CM_OK);
    assert_string_equal(str(out, "status"), "completed");
    assert_int_equal(cJSON_GetArraySize(member(out, "output")), 0);
    assert_true(cJSON_IsNull(member(out, "usage")));
    assert_string_equal(str(out, "model"), "m");
    cJSON_Delete(out);
    cJSON_Delete(req);
    cJSON_Delete(bad);
    cJSON_Delete(arr);
    cJSON_Delete(empty);
}

/* ---- OOM walks ---- */

struct oom_ud {
    cJSON *req;
    cJSON *script;
    cJSON *completion;
};

static int try_request(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom_ud *o = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_responses_chat_request(o->req, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

static int try_response(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom_ud *o = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = cp_tr_responses_chat_response(o->req, o->completion, TEST_ID, TEST_CREATED, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

/* The whole stream under an allocation that fails at @p n (no result tree). */
static int try_stream(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom_ud *o = ud;
    struct cp_tr_responses_chat_stream *st = NULL;
    struct cm_buf b;
    const cJSON *c;
    int rc;

    (void)out;
    cm_buf_init(&b, 1 << 20);
    cm_alloc_fail_at(n);
    rc = cp_tr_responses_chat_stream_new(o->req, TEST_ID, TEST_CREATED, &st);
    if (rc == CM_OK) {
        cJSON_ArrayForEach(c, member(o->script, "chunks"))
        {
            if ((rc = cp_tr_responses_chat_stream_chunk(st, c, &b, err)))
                break;
        }
        if (rc == CM_OK)
            rc = cp_tr_responses_chat_stream_end(st, &b);
        else
            (void)cp_tr_responses_chat_stream_fail(st, err, &b);
    }
    cm_alloc_fail_at(0);
    cp_tr_responses_chat_stream_free(st);
    cm_buf_cleanup(&b);
    return rc;
}

static void oom_case(const char *cs, bool stream, bool response)
{
    char *dir = tst_fixture_dir(SUB), *cdir = tst_join(dir, "/"), *path = tst_join(cdir, cs);
    struct oom_ud o = {tst_read_json(path, "in.json"), tst_read_json(path, "chunks.json"),
                       tst_read_json(path, "completion.json")};

    /* a small request takes few allocations: then just that it fails cleanly */
    assert_true(tst_oom_walk(try_request, &o, 2000, 0) > (stream ? 5 : 20));
    if (stream)
        assert_true(tst_oom_walk(try_stream, &o, 20000, TST_OOM_NO_RESULT) > 20);
    if (response)
        assert_true(tst_oom_walk(try_response, &o, 2000, 0) > 20);
    cJSON_Delete(o.req);
    cJSON_Delete(o.script);
    cJSON_Delete(o.completion);
    cm_free(path);
    cm_free(cdir);
    cm_free(dir);
}

static void test_oom(void **state)
{
    (void)state;
    oom_case("tools_multiturn", false, false);
    oom_case("file_json_schema", false, false);
    oom_case("tool_calls_stream", true, true);
    oom_case("reasoning_text", true, true);
    oom_case("fail_after_content", true, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),          cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refusal_shape),     cmocka_unit_test(test_limits),
        cmocka_unit_test(test_request_rules),     cmocka_unit_test(test_has_content),
        cmocka_unit_test(test_fail_codes),        cmocka_unit_test(test_fail_first),
        cmocka_unit_test(test_interleaved_calls), cmocka_unit_test(test_too_many_items),
        cmocka_unit_test(test_out_full),          cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_response_errors),   cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
