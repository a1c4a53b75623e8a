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
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"
#include "translate/chat_codex.h"

#define TEST_ID "chatcmpl-test"
#define TEST_CREATED 1700000000

/* ---- files ---- */

static char *fixture_dir(void)
{
    const char *root = getenv("CM_TEST_DATA");
    struct cm_buf b;

    assert_non_null(root);
    cm_buf_init(&b, 4096);
    assert_int_equal(cm_buf_appendf(&b, "%s/translate/chat_codex", root), CM_OK);
    return cm_buf_release(&b, NULL);
}

/* Whole file into a new buffer, or NULL if it does not exist. */
static char *read_file(const char *dir, const char *name, size_t *len)
{
    struct cm_buf path, data;
    char tmp[4096];
    size_t n;
    FILE *f;

    cm_buf_init(&path, 4096);
    assert_int_equal(cm_buf_appendf(&path, "%s/%s", dir, name), CM_OK);
    f = fopen(path.data, "rb");
    cm_buf_cleanup(&path);
    if (!f)
        return NULL;
    cm_buf_init(&data, (size_t)16 << 20);
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        assert_int_equal(cm_buf_append(&data, tmp, n), CM_OK);
    fclose(f);
    return cm_buf_release(&data, len);
}

static cJSON *parse_or_die(const char *s, size_t n)
{
    cJSON *j = NULL;
    struct cm_json_err je;
    int rc = cm_json_parse(s, n, NULL, &j, &je);
    if (rc)
        fail_msg("bad JSON (%s): %.*s", je.msg, (int)(n > 300 ? 300 : n), s);
    return j;
}

static cJSON *read_json(const char *dir, const char *name)
{
    size_t n = 0;
    char *s = read_file(dir, name, &n);
    cJSON *j;

    if (!s)
        return NULL;
    j = parse_or_die(s, n);
    cm_free(s);
    return j;
}

static void assert_json_equal(const cJSON *got, const cJSON *want, const char *what)
{
    if (!cJSON_Compare(got, want, 1)) {
        char *g = NULL, *w = NULL;
        assert_int_equal(cm_json_print(got, &g, NULL), CM_OK);
        assert_int_equal(cm_json_print(want, &w, NULL), CM_OK);
        print_error("%s differs\n got:  %s\n want: %s\n", what, g, w);
        cm_free(g);
        cm_free(w);
        fail();
    }
}

/* ---- SSE: collect the data of each event ---- */

struct events {
    char *data[256];
    char *type[256];
    size_t n;
};

static int collect(void *ud, const struct cm_sse_event *ev)
{
    struct events *e = ud;
    assert_true(e->n < 256);
    e->data[e->n] = cm_strndup(ev->data, ev->data_len);
    e->type[e->n] = ev->type ? cm_strndup(ev->type, ev->type_len) : NULL;
    assert_non_null(e->data[e->n]);
    e->n++;
    return 0;
}

static void events_parse(struct events *e, const char *s, size_t n)
{
    struct cm_sse_parser p;

    memset(e, 0, sizeof(*e));
    cm_sse_parser_init(&p, 0, collect, NULL, e);
    assert_int_equal(cm_sse_parser_feed(&p, s, n, NULL), CM_OK);
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
    cm_sse_parser_cleanup(&p);
}

static void events_free(struct events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        cm_free(e->data[i]);
        cm_free(e->type[i]);
    }
    e->n = 0;
}

/* Compares two client streams event by event ([DONE] literally, JSON as trees). */
static void assert_sse_equal(const char *got, size_t got_len, const char *want, size_t want_len,
                             const char *what)
{
    struct events g, w;
    size_t i;

    events_parse(&g, got, got_len);
    events_parse(&w, want, want_len);
    if (g.n != w.n)
        fail_msg("%s: %zu events, want %zu; got:\n%.*s", what, g.n, w.n, (int)got_len, got);
    for (i = 0; i < g.n; i++) {
        assert_null(g.type[i]); /* chat streams carry data lines only */
        if (strcmp(w.data[i], "[DONE]") == 0 || strcmp(g.data[i], "[DONE]") == 0) {
            assert_string_equal(g.data[i], w.data[i]);
        } else {
            cJSON *gj = parse_or_die(g.data[i], strlen(g.data[i]));
            cJSON *wj = parse_or_die(w.data[i], strlen(w.data[i]));
            char label[128];
            snprintf(label, sizeof(label), "%s event %zu", what, i);
            assert_json_equal(gj, wj, label);
            cJSON_Delete(gj);
            cJSON_Delete(wj);
        }
    }
    /* every client event is a bare "data: ...\n\n" frame */
    assert_true(got_len >= 2 && got[got_len - 1] == '\n' && got[got_len - 2] == '\n');
    assert_null(strstr(got, "event:"));
    events_free(&g);
    events_free(&w);
}

/* ---- driving the stream translator through cm_sse ---- */

struct drive {
    struct cp_tr_chat_codex_stream st;
    struct cm_buf out;
    struct cp_tr_err err;
    int last_rc; /* first non-OK code returned by event() */
};

static int drive_event(void *ud, const struct cm_sse_event *ev)
{
    struct drive *d = ud;
    int rc = cp_tr_chat_codex_stream_event(&d->st, ev->type, ev->type_len, ev->data, ev->data_len,
                                           &d->out, &d->err);
    if (rc && !d->last_rc)
        d->last_rc = rc;
    return 0;
}

/*
 * Feeds @p up in chunks: @p step bytes each (0 = whole), or, with @p cut, two pieces cut at
 * byte @p cut. Each chunk sits in its own exact-size heap block. Returns the finish() code;
 * the client stream is left in d->out.
 */
static int run_stream(struct drive *d, const cJSON *req, const char *up, size_t len, size_t step,
                      size_t cut)
{
    struct cm_sse_parser p;
    size_t off = 0;
    int rc;

    memset(d, 0, sizeof(*d));
    cm_buf_init(&d->out, (size_t)1 << 20);
    assert_int_equal(cp_tr_chat_codex_stream_init(&d->st, req, TEST_ID, TEST_CREATED, NULL), CM_OK);
    cm_sse_parser_init(&p, 0, drive_event, NULL, d);
    while (off < len) {
        size_t n = cut ? (off ? len - off : cut) : step ? step : len;
        char *chunk;
        if (n > len - off)
            n = len - off;
        chunk = cm_malloc(n);
        assert_non_null(chunk);
        memcpy(chunk, up + off, n);
        assert_int_equal(cm_sse_parser_feed(&p, chunk, n, NULL), CM_OK);
        cm_free(chunk);
        off += n;
    }
    /* as the caller does: an event cut by the end of the stream is dropped (spec rule) */
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
    cm_sse_parser_cleanup(&p);
    rc = cp_tr_chat_codex_stream_finish(&d->st, &d->out, d->last_rc ? NULL : &d->err);
    return d->last_rc ? d->last_rc : rc;
}

static void drive_cleanup(struct drive *d)
{
    cp_tr_chat_codex_stream_cleanup(&d->st);
    cm_buf_cleanup(&d->out);
}

/* ---- the fixture runner ---- */

static void run_case(const char *dir, const char *name, int *requests, int *streams, int *aggs)
{
    char label[256];
    struct cm_buf cdir;
    cJSON *in, *want;
    char *up, *exp;
    size_t up_len = 0, exp_len = 0;

    cm_buf_init(&cdir, 4096);
    assert_int_equal(cm_buf_appendf(&cdir, "%s/%s", dir, name), CM_OK);
    in = read_json(cdir.data, "in.json");
    if (!in)
        fail_msg("%s: no in.json", name);

    want = read_json(cdir.data, "expected.json");
    if (want) {
        cJSON *got = NULL;
        struct cp_tr_err err;
        int rc = cp_tr_chat_codex_request(in, &got, &err);
        if (rc)
            fail_msg("%s: request translation failed: %s", name, err.msg);
        snprintf(label, sizeof(label), "%s/expected.json", name);
        assert_json_equal(got, want, label);
        cJSON_Delete(got);
        cJSON_Delete(want);
        (*requests)++;
    }

    up = read_file(cdir.data, "upstream.sse", &up_len);
    exp = read_file(cdir.data, "expected.sse", &exp_len);
    if (up && exp) {
        struct drive d;
        struct cp_tr_usage u;
        size_t cut;

        snprintf(label, sizeof(label), "%s/expected.sse (whole)", name);
        assert_int_equal(run_stream(&d, in, up, up_len, 0, 0), CM_OK);
        assert_sse_equal(d.out.data, d.out.len, exp, exp_len, label);
        assert_int_equal(cp_tr_chat_codex_stream_usage(&d.st, &u), CM_OK);
        assert_true(u.total >= u.input);
        drive_cleanup(&d);

        snprintf(label, sizeof(label), "%s/expected.sse (byte by byte)", name);
        assert_int_equal(run_stream(&d, in, up, up_len, 1, 0), CM_OK);
        assert_sse_equal(d.out.data, d.out.len, exp, exp_len, label);
        drive_cleanup(&d);

        for (cut = 1; cut < up_len; cut += 7) {
            snprintf(label, sizeof(label), "%s/expected.sse (cut at %zu)", name, cut);
            assert_int_equal(run_stream(&d, in, up, up_len, 0, cut), CM_OK);
            assert_sse_equal(d.out.data, d.out.len, exp, exp_len, label);
            drive_cleanup(&d);
        }
        (*streams)++;
    }

    want = read_json(cdir.data, "expected_nonstream.json");
    if (up && want) {
        cJSON *got = NULL;
        struct cp_tr_usage u;
        struct cp_tr_err err;
        int rc = cp_tr_chat_codex_aggregate(up, up_len, in, TEST_ID, TEST_CREATED, &got, &u, &err);
        if (rc)
            fail_msg("%s: aggregation failed: %s", name, err.msg);
        snprintf(label, sizeof(label), "%s/expected_nonstream.json", name);
        assert_json_equal(got, want, label);
        cJSON_Delete(got);
        (*aggs)++;
    }
    cJSON_Delete(want);
    cm_free(up);
    cm_free(exp);
    cJSON_Delete(in);
    cm_buf_cleanup(&cdir);
}

static void test_fixtures(void **state)
{
    char *dir = fixture_dir();
    int cases = 0, requests = 0, streams = 0, aggs = 0;
    struct dirent *de;
    DIR *d;

    (void)state;
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        run_case(dir, de->d_name, &requests, &streams, &aggs);
        cases++;
    }
    closedir(d);
    cm_free(dir);
    print_message("chat_codex fixtures: %d cases, %d requests, %d streams, %d aggregations\n",
                  cases, requests, streams, aggs);
    assert_true(cases >= 6);
    assert_true(requests >= 6);
    assert_true(streams >= 5);
    assert_true(aggs >= 5);
}

/* ---- request errors ---- */

static int translate_str(const char *json, cJSON **out, struct cp_tr_err *err)
{
    cJSON *req = parse_or_die(json, strlen(json));
    int rc = cp_tr_chat_codex_request(req, out, err);
    cJSON_Delete(req);
    return rc;
}

static void expect_field_error(const char *json, int want_rc, const char *field)
{
    struct cp_tr_err err;
    cJSON *out = (cJSON *)(uintptr_t)1;
    int rc = translate_str(json, &out, &err);

    assert_int_equal(rc, want_rc);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1); /* out untouched on failure */
    assert_int_equal(err.rc, want_rc);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.field, field);
    assert_non_null(strstr(err.msg, field));
    assert_string_equal(err.type, "invalid_request_error");
}

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
    want = parse_or_die(RULES_WANT, strlen(RULES_WANT));
    assert_json_equal(out, want, "rules");
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
    struct cm_buf b;
    struct cp_tr_err err;
    cJSON *req, *out = NULL;
    int i;

    (void)state;
    cm_buf_init(&b, (size_t)1 << 20);
    assert_int_equal(cm_buf_append_str(&b, "{\"model\":\"gpt-5\",\"messages\":["), CM_OK);
    for (i = 0; i <= CP_TR_CHAT_CODEX_MAX_MESSAGES; i++)
        assert_int_equal(
            cm_buf_appendf(&b, "%s{\"role\":\"user\",\"content\":\"m\"}", i ? "," : ""), CM_OK);
    assert_int_equal(cm_buf_append_str(&b, "]}"), CM_OK);
    req = parse_or_die(b.data, b.len);
    assert_int_equal(cp_tr_chat_codex_request(req, &out, &err), CM_ERR_LIMIT);
    assert_string_equal(err.field, "messages");
    assert_int_equal(err.status, 400);
    assert_null(out);
    cJSON_Delete(req);
    cm_buf_cleanup(&b);
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
    cJSON *req = parse_or_die(req_s, strlen(req_s)), *out = NULL;
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

static char *fixture(const char *cs, const char *name, size_t *len)
{
    char *dir = fixture_dir();
    struct cm_buf p;
    char *s;

    cm_buf_init(&p, 4096);
    assert_int_equal(cm_buf_appendf(&p, "%s/%s", dir, cs), CM_OK);
    s = read_file(p.data, name, len);
    assert_non_null(s);
    cm_buf_cleanup(&p);
    cm_free(dir);
    return s;
}

/* The last client event must be an error (never [DONE]); returns its parsed "error". */
static cJSON *last_error(const struct cm_buf *out)
{
    struct events e;
    cJSON *j, *eo;

    events_parse(&e, out->data, out->len);
    assert_true(e.n >= 1);
    for (size_t i = 0; i < e.n; i++)
        assert_string_not_equal(e.data[i], "[DONE]");
    j = parse_or_die(e.data[e.n - 1], strlen(e.data[e.n - 1]));
    eo = cJSON_DetachItemFromObjectCaseSensitive(j, "error");
    assert_non_null(eo);
    cJSON_Delete(j);
    events_free(&e);
    return eo;
}

static void test_stream_early_end(void **state)
{
    cJSON *req = parse_or_die(REQ, strlen(REQ)), *eo, *out = (cJSON *)(uintptr_t)1;
    struct cp_tr_err err;
    struct drive d;
    size_t len = 0, cut;
    char *up = fixture("plain_text", "upstream.sse", &len);
    const char *last = strstr(up, "event: response.completed");

    (void)state;
    assert_non_null(last);
    cut = (size_t)(last - up);
    /* the same with nothing, with only response.created, and cut mid-text */
    for (size_t upto = 0; upto <= cut; upto += (cut / 3) + 1) {
        assert_int_equal(run_stream(&d, req, up, upto, 0, 0), CM_ERR_TIMEOUT);
        assert_int_equal(d.err.status, 408);
        assert_int_equal(d.err.rc, CM_ERR_TIMEOUT);
        assert_string_equal(d.err.msg, CP_TR_CODEX_EARLY_EOF_MSG);
        eo = last_error(&d.out);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                            CP_TR_CODEX_EARLY_EOF_MSG);
        cJSON_Delete(eo);
        assert_int_equal(cp_tr_chat_codex_stream_usage(&d.st, &(struct cp_tr_usage){0}),
                         CM_ERR_NOTFOUND);
        drive_cleanup(&d);
    }
    /* a stream cut inside the last event is still early */
    assert_int_equal(run_stream(&d, req, up, len - 3, 0, 0), CM_ERR_TIMEOUT);
    drive_cleanup(&d);

    /* non-stream: same 408 */
    assert_int_equal(
        cp_tr_chat_codex_aggregate(up, cut, req, TEST_ID, TEST_CREATED, &out, NULL, &err),
        CM_ERR_TIMEOUT);
    assert_int_equal(err.status, 408);
    assert_string_equal(err.msg, CP_TR_CODEX_EARLY_EOF_MSG);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1);
    assert_int_equal(
        cp_tr_chat_codex_aggregate("", 0, req, TEST_ID, TEST_CREATED, &out, NULL, &err),
        CM_ERR_TIMEOUT);
    cm_free(up);
    cJSON_Delete(req);
}

static void test_stream_failed(void **state)
{
    static const struct {
        const char *sse;
        unsigned status;
        const char *code;
        const char *msg;
    } cases[] = {
        {"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\","
         "\"created_at\":5,\"model\":\"gpt-5\"}}\n\n"
         "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\","
         "\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Slow "
         "down\"}}}\n\n",
         429, "rate_limit_exceeded", "Slow down"},
        {"event: error\ndata: {\"type\":\"error\",\"code\":\"context_length_exceeded\","
         "\"message\":\"Too long\",\"param\":\"input\"}\n\n",
         400, "context_length_exceeded", "Too long"},
        {"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"server_error\",\"message\":"
         "\"boom\",\"status_code\":503}}\n\n",
         503, "", "boom"},
        {"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{}}\n\n", 502,
         "", "upstream response failed"},
    };
    cJSON *req = parse_or_die(REQ, strlen(REQ));

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct drive d;
        struct cp_tr_err err;
        cJSON *eo, *out = NULL;
        struct cm_buf tail;
        /* text after the failure must not reach the client */
        cm_buf_init(&tail, 1 << 16);
        assert_int_equal(cm_buf_appendf(&tail,
                                        "%sevent: response.output_text.delta\ndata: "
                                        "{\"type\":\"response.output_text.delta\","
                                        "\"delta\":\"LEAK\"}\n\n",
                                        cases[i].sse),
                         CM_OK);
        assert_int_equal(run_stream(&d, req, tail.data, tail.len, 0, 0), CM_ERR_UPSTREAM);
        assert_int_equal(d.err.status, cases[i].status);
        assert_string_equal(d.err.code, cases[i].code);
        assert_null(strstr(d.out.data, "LEAK"));
        eo = last_error(&d.out);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(eo, "message")->valuestring,
                            cases[i].msg);
        cJSON_Delete(eo);
        drive_cleanup(&d);

        assert_int_equal(cp_tr_chat_codex_aggregate(tail.data, tail.len, req, TEST_ID, TEST_CREATED,
                                                    &out, NULL, &err),
                         CM_ERR_UPSTREAM);
        assert_int_equal(err.status, cases[i].status);
        assert_string_equal(err.msg, cases[i].msg);
        assert_null(out);
        cm_buf_cleanup(&tail);
    }
    cJSON_Delete(req);
}

static void test_stream_malformed(void **state)
{
    static const char *const bad[] = {
        "event: response.output_text.delta\ndata: {\"delta\":\"a\"\n\n",
        "event: response.output_text.delta\ndata: [1,2]\n\n",
        "data: not json at all\n\n",
        "event: response.completed\ndata: \"x\"\n\n",
    };
    cJSON *req = parse_or_die(REQ, strlen(REQ));

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct drive d;
        struct cp_tr_err err;
        cJSON *eo, *out = NULL;
        assert_int_equal(run_stream(&d, req, bad[i], strlen(bad[i]), 0, 0), CM_ERR_UPSTREAM);
        assert_int_equal(d.err.status, 502);
        assert_string_equal(d.err.code, "bad_upstream_event");
        eo = last_error(&d.out);
        cJSON_Delete(eo);
        drive_cleanup(&d);
        assert_int_equal(cp_tr_chat_codex_aggregate(bad[i], strlen(bad[i]), req, TEST_ID,
                                                    TEST_CREATED, &out, NULL, &err),
                         CM_ERR_UPSTREAM);
        assert_int_equal(err.status, 502);
        assert_null(out);
    }
    cJSON_Delete(req);
}

/* Unknown events are ignored; events after [DONE]-worthy completion are ignored. */
static void test_stream_ignores(void **state)
{
    cJSON *req = parse_or_die(REQ, strlen(REQ));
    struct drive d;
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
    assert_int_equal(run_stream(&d, req, s, strlen(s), 0, 0), CM_OK);
    assert_sse_equal(d.out.data, d.out.len, want, strlen(want), "ignores");
    assert_int_equal(cp_tr_chat_codex_stream_usage(&d.st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
    drive_cleanup(&d);
    cJSON_Delete(req);
}

/* ---- OOM walks: every allocation failure is reported cleanly (ASan checks for leaks) ---- */

static void test_oom_request(void **state)
{
    cJSON *req;
    size_t len = 0;
    char *raw = fixture("tools_result", "in.json", &len);
    long n;
    int ok = 0;

    (void)state;
    req = parse_or_die(raw, len);
    for (n = 1; n < 5000; n++) {
        struct cp_tr_err err;
        cJSON *out = NULL;
        int rc;
        cm_alloc_fail_at(n);
        rc = cp_tr_chat_codex_request(req, &out, &err);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            cJSON_Delete(out);
            ok = 1;
            break;
        }
        assert_int_equal(rc, CM_ERR_NOMEM);
        assert_int_equal(err.status, 500);
        assert_null(out);
    }
    assert_true(ok);
    assert_true(n > 20); /* the walk really failed allocations before succeeding */
    cJSON_Delete(req);
    cm_free(raw);
}

static void test_oom_stream_and_aggregate(void **state)
{
    size_t rlen = 0, ulen = 0;
    char *raw = fixture("tools_call", "in.json", &rlen);
    char *up = fixture("tools_call", "upstream.sse", &ulen);
    cJSON *req = parse_or_die(raw, rlen);
    long n;
    int ok_stream = 0, ok_agg = 0;

    (void)state;
    for (n = 1; n < 20000 && !ok_stream; n++) {
        struct cp_tr_chat_codex_stream st;
        struct cm_sse_parser p;
        struct drive d;
        int rc;
        memset(&d, 0, sizeof(d));
        cm_buf_init(&d.out, (size_t)1 << 20);
        cm_alloc_fail_at(n);
        rc = cp_tr_chat_codex_stream_init(&st, req, TEST_ID, TEST_CREATED, NULL);
        if (rc == CM_OK) {
            d.st = st;
            cm_sse_parser_init(&p, 0, drive_event, NULL, &d);
            rc = cm_sse_parser_feed(&p, up, ulen, NULL);
            if (rc == CM_OK)
                rc = cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH);
            cm_sse_parser_cleanup(&p);
            if (rc == CM_OK)
                rc = d.last_rc;
            if (rc == CM_OK)
                rc = cp_tr_chat_codex_stream_finish(&d.st, &d.out, NULL);
            cp_tr_chat_codex_stream_cleanup(&d.st);
        }
        cm_alloc_fail_at(0);
        if (rc == CM_OK)
            ok_stream = 1;
        else
            assert_true(rc == CM_ERR_NOMEM || rc == CM_ERR_UPSTREAM);
        cm_buf_cleanup(&d.out);
    }
    assert_true(n > 20);
    for (n = 1; n < 20000 && !ok_agg; n++) {
        struct cp_tr_err err;
        cJSON *out = NULL;
        int rc;
        cm_alloc_fail_at(n);
        rc = cp_tr_chat_codex_aggregate(up, ulen, req, TEST_ID, TEST_CREATED, &out, NULL, &err);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            cJSON_Delete(out);
            ok_agg = 1;
        } else {
            assert_true(rc == CM_ERR_NOMEM || rc == CM_ERR_UPSTREAM);
            assert_null(out);
        }
    }
    assert_true(ok_stream);
    assert_true(ok_agg);
    assert_true(n > 20);
    cJSON_Delete(req);
    cm_free(raw);
    cm_free(up);
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
