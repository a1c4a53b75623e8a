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
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"
#include "translate/messages_codex.h"

#define TEST_ID "msg_test"

/* ---- files ---- */

static char *fixture_dir(void)
{
    const char *root = getenv("CM_TEST_DATA");
    struct cm_buf b;

    assert_non_null(root);
    cm_buf_init(&b, 4096);
    assert_int_equal(cm_buf_appendf(&b, "%s/translate/messages_codex", root), CM_OK);
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

static const char *jstr(const cJSON *o, const char *path1, const char *path2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);
    if (path2)
        v = cJSON_GetObjectItemCaseSensitive(v, path2);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* ---- SSE: collect each event ---- */

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

/*
 * Compares two Anthropic streams event by event: same "event:" names, data equal as JSON
 * trees; and every event of @p got names itself (event: X carries {"type":"X"}).
 */
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
        cJSON *gj = parse_or_die(g.data[i], strlen(g.data[i]));
        cJSON *wj = parse_or_die(w.data[i], strlen(w.data[i]));
        char label[160];
        assert_non_null(g.type[i]);
        assert_non_null(w.type[i]);
        assert_string_equal(g.type[i], w.type[i]);
        assert_string_equal(g.type[i], jstr(gj, "type", NULL));
        snprintf(label, sizeof(label), "%s event %zu (%s)", what, i, g.type[i]);
        assert_json_equal(gj, wj, label);
        cJSON_Delete(gj);
        cJSON_Delete(wj);
    }
    assert_true(got_len >= 2 && got[got_len - 1] == '\n' && got[got_len - 2] == '\n');
    assert_null(strstr(got, "[DONE]")); /* Anthropic streams have no OpenAI terminator */
    events_free(&g);
    events_free(&w);
}

/* ---- driving the stream translator through cm_sse ---- */

struct drive {
    struct cp_tr_messages_codex_stream st;
    struct cm_buf out;
    struct cp_tr_err err;
    int last_rc;       /* first non-OK code returned by event() */
    size_t content_at; /* out.len when has_content() first turned true (SIZE_MAX: never) */
};

static int drive_event(void *ud, const struct cm_sse_event *ev)
{
    struct drive *d = ud;
    size_t before = d->out.len;
    bool had = cp_tr_messages_codex_stream_has_content(&d->st);
    int rc = cp_tr_messages_codex_stream_event(&d->st, ev->type, ev->type_len, ev->data,
                                               ev->data_len, &d->out, &d->err);
    if (rc && !d->last_rc)
        d->last_rc = rc;
    if (!had && cp_tr_messages_codex_stream_has_content(&d->st))
        d->content_at = before;
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
    d->content_at = SIZE_MAX;
    cm_buf_init(&d->out, (size_t)1 << 20);
    assert_int_equal(cp_tr_messages_codex_stream_init(&d->st, req, TEST_ID, NULL), CM_OK);
    assert_false(cp_tr_messages_codex_stream_has_content(&d->st));
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
    rc = cp_tr_messages_codex_stream_finish(&d->st, &d->out, d->last_rc ? NULL : &d->err);
    return d->last_rc ? d->last_rc : rc;
}

static void drive_cleanup(struct drive *d)
{
    cp_tr_messages_codex_stream_cleanup(&d->st);
    cm_buf_cleanup(&d->out);
}

/* What the relay may hold back: everything before the first delta, and no delta in it. */
static void check_held_back(const struct drive *d)
{
    struct events e;

    assert_true(d->content_at != SIZE_MAX);
    events_parse(&e, d->out.data, d->content_at);
    for (size_t i = 0; i < e.n; i++)
        assert_string_not_equal(e.type[i], "content_block_delta");
    events_free(&e);
    assert_non_null(strstr(d->out.data + d->content_at, "event: content_block_delta\n"));
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
        int rc = cp_tr_messages_codex_request(in, &got, &err);
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
        assert_int_equal(cp_tr_messages_codex_stream_usage(&d.st, &u), CM_OK);
        assert_true(u.total >= u.input);
        check_held_back(&d);
        drive_cleanup(&d);

        snprintf(label, sizeof(label), "%s/expected.sse (byte by byte)", name);
        assert_int_equal(run_stream(&d, in, up, up_len, 1, 0), CM_OK);
        assert_sse_equal(d.out.data, d.out.len, exp, exp_len, label);
        drive_cleanup(&d);

        for (cut = 1; cut < up_len; cut++) {
            snprintf(label, sizeof(label), "%s/expected.sse (cut at %zu)", name, cut);
            assert_int_equal(run_stream(&d, in, up, up_len, 0, cut), CM_OK);
            if (d.out.len != exp_len || memcmp(d.out.data, exp, exp_len) != 0)
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
        int rc = cp_tr_messages_codex_aggregate(up, up_len, in, TEST_ID, &got, &u, &err);
        if (rc)
            fail_msg("%s: aggregation failed: %s", name, err.msg);
        snprintf(label, sizeof(label), "%s/expected_nonstream.json", name);
        assert_json_equal(got, want, label);
        assert_true(u.total >= u.input);
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
    print_message("messages_codex fixtures: %d cases, %d requests, %d streams, %d aggregations\n",
                  cases, requests, streams, aggs);
    assert_true(cases >= 10);
    assert_true(requests >= 10);
    assert_true(streams >= 9);
    assert_true(aggs >= 9);
}

/* ---- request errors ---- */

static int translate_str(const char *json, cJSON **out, struct cp_tr_err *err)
{
    cJSON *req = parse_or_die(json, strlen(json));
    int rc = cp_tr_messages_codex_request(req, out, err);
    cJSON_Delete(req);
    return rc;
}

static void expect_field_error(const char *json, int want_rc, const char *field)
{
    struct cp_tr_err err;
    cJSON *out = (cJSON *)(uintptr_t)1;
    int rc = translate_str(json, &out, &err);

    if (rc != want_rc)
        fail_msg("want rc %d, got %d (%s) for %s", want_rc, rc, err.msg, json);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1); /* out untouched on failure */
    assert_int_equal(err.rc, want_rc);
    assert_int_equal(err.status, 400);
    if (strcmp(err.field, field) != 0)
        fail_msg("want field %s, got %s (%s)", field, err.field, err.msg);
    assert_non_null(strstr(err.msg, field));
    assert_string_equal(err.type, "invalid_request_error");
}

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
    struct cm_buf b;
    struct cp_tr_err err;
    cJSON *req, *out = NULL;
    int i;

    (void)state;
    cm_buf_init(&b, (size_t)1 << 20);
    assert_int_equal(cm_buf_append_str(&b, "{" M "\"messages\":["), CM_OK);
    for (i = 0; i <= CP_TR_MESSAGES_CODEX_MAX_MESSAGES; i++)
        assert_int_equal(cm_buf_appendf(&b, "%s" U, i ? "," : ""), CM_OK);
    assert_int_equal(cm_buf_append_str(&b, "]}"), CM_OK);
    req = parse_or_die(b.data, b.len);
    assert_int_equal(cp_tr_messages_codex_request(req, &out, &err), CM_ERR_LIMIT);
    assert_string_equal(err.field, "messages");
    assert_int_equal(err.status, 400);
    assert_null(out);
    cJSON_Delete(req);

    cm_buf_reset(&b);
    assert_int_equal(cm_buf_append_str(&b, "{" M "\"messages\":[{\"role\":\"user\",\"content\":["),
                     CM_OK);
    for (i = 0; i <= CP_TR_MESSAGES_CODEX_MAX_BLOCKS; i++)
        assert_int_equal(cm_buf_appendf(&b, "%s{\"type\":\"text\",\"text\":\"m\"}", i ? "," : ""),
                         CM_OK);
    assert_int_equal(cm_buf_append_str(&b, "]}]}"), CM_OK);
    req = parse_or_die(b.data, b.len);
    assert_int_equal(cp_tr_messages_codex_request(req, &out, &err), CM_ERR_LIMIT);
    assert_string_equal(err.field, "messages[0].content");
    assert_int_equal(err.status, 400);
    cJSON_Delete(req);

    cm_buf_reset(&b);
    assert_int_equal(cm_buf_append_str(&b, "{" M "\"messages\":[" U "],\"tools\":["), CM_OK);
    for (i = 0; i <= CP_TR_MESSAGES_CODEX_MAX_TOOLS; i++)
        assert_int_equal(cm_buf_appendf(&b, "%s{\"name\":\"t%d\"}", i ? "," : "", i), CM_OK);
    assert_int_equal(cm_buf_append_str(&b, "]}"), CM_OK);
    req = parse_or_die(b.data, b.len);
    assert_int_equal(cp_tr_messages_codex_request(req, &out, &err), CM_ERR_LIMIT);
    assert_string_equal(err.field, "tools");
    cJSON_Delete(req);
    cm_buf_cleanup(&b);
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
    cJSON *req = parse_or_die(req_s, strlen(req_s)), *out = NULL;
    const cJSON *tools;
    struct cp_tr_err err;
    struct drive d;
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

    assert_int_equal(run_stream(&d, req, up, strlen(up), 0, 0), CM_OK);
    assert_non_null(strstr(d.out.data, "\"name\":\"mcp__bbbbbbbb"));
    assert_null(strstr(d.out.data, "mcp__search_1"));
    drive_cleanup(&d);
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

/*
 * The last client event must be "event: error" with {"type":"error","error":{...}} and no
 * message_stop anywhere; returns the parsed "error" object.
 */
static cJSON *last_error(const struct cm_buf *out)
{
    struct events e;
    cJSON *j, *eo;

    events_parse(&e, out->data, out->len);
    assert_true(e.n >= 1);
    for (size_t i = 0; i < e.n; i++)
        assert_string_not_equal(e.type[i], "message_stop");
    assert_string_equal(e.type[e.n - 1], "error");
    j = parse_or_die(e.data[e.n - 1], strlen(e.data[e.n - 1]));
    assert_string_equal(jstr(j, "type", NULL), "error");
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
    char *up = fixture("thinking_budget", "upstream.sse", &len);
    const char *last = strstr(up, "event: response.completed");

    (void)state;
    assert_non_null(last);
    cut = (size_t)(last - up);
    /* nothing, only response.created, cut mid-thinking, cut mid-text */
    for (size_t upto = 0; upto <= cut; upto += (cut / 4) + 1) {
        assert_int_equal(run_stream(&d, req, up, upto, 0, 0), CM_ERR_TIMEOUT);
        assert_int_equal(d.err.status, 408);
        assert_int_equal(d.err.rc, CM_ERR_TIMEOUT);
        assert_string_equal(d.err.msg, CP_TR_CODEX_EARLY_EOF_MSG);
        eo = last_error(&d.out);
        assert_string_equal(jstr(eo, "message", NULL), CP_TR_CODEX_EARLY_EOF_MSG);
        assert_string_equal(jstr(eo, "type", NULL), "api_error");
        cJSON_Delete(eo);
        assert_int_equal(cp_tr_messages_codex_stream_usage(&d.st, &(struct cp_tr_usage){0}),
                         CM_ERR_NOTFOUND);
        /* finish twice: nothing more */
        {
            size_t before = d.out.len;
            assert_int_equal(cp_tr_messages_codex_stream_finish(&d.st, &d.out, NULL), CM_OK);
            assert_int_equal(d.out.len, before);
        }
        drive_cleanup(&d);
    }
    /* a stream cut inside the last event is still early */
    assert_int_equal(run_stream(&d, req, up, len - 3, 0, 0), CM_ERR_TIMEOUT);
    drive_cleanup(&d);

    /* non-stream: same 408 */
    assert_int_equal(cp_tr_messages_codex_aggregate(up, cut, req, TEST_ID, &out, NULL, &err),
                     CM_ERR_TIMEOUT);
    assert_int_equal(err.status, 408);
    assert_string_equal(err.msg, CP_TR_CODEX_EARLY_EOF_MSG);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1);
    assert_int_equal(cp_tr_messages_codex_aggregate("", 0, req, TEST_ID, &out, NULL, &err),
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
        const char *anthropic_type;
    } cases[] = {
        {"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\","
         "\"created_at\":5,\"model\":\"gpt-5\"}}\n\n"
         "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\","
         "\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Slow "
         "down\"}}}\n\n",
         429, "rate_limit_exceeded", "Slow down", "rate_limit_error"},
        {"event: error\ndata: {\"type\":\"error\",\"code\":\"context_length_exceeded\","
         "\"message\":\"Too long\",\"param\":\"input\"}\n\n",
         400, "context_length_exceeded", "Too long", "invalid_request_error"},
        {"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"server_error\",\"message\":"
         "\"boom\",\"status_code\":503}}\n\n",
         503, "", "boom", "overloaded_error"},
        {"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{"
         "\"code\":\"server_is_overloaded\",\"message\":\"busy\"}}}\n\n",
         502, "server_is_overloaded", "busy", "overloaded_error"},
        {"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_api_key\","
         "\"message\":\"bad key\"}}\n\n",
         401, "", "bad key", "authentication_error"},
        {"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{}}\n\n", 502,
         "", "upstream response failed", "api_error"},
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
        assert_false(cp_tr_messages_codex_stream_has_content(&d.st));
        eo = last_error(&d.out);
        assert_string_equal(jstr(eo, "message", NULL), cases[i].msg);
        assert_string_equal(jstr(eo, "type", NULL), cases[i].anthropic_type);
        cJSON_Delete(eo);
        drive_cleanup(&d);

        assert_int_equal(
            cp_tr_messages_codex_aggregate(tail.data, tail.len, req, TEST_ID, &out, NULL, &err),
            CM_ERR_UPSTREAM);
        assert_int_equal(err.status, cases[i].status);
        assert_string_equal(err.msg, cases[i].msg);
        assert_null(out);
        cm_buf_cleanup(&tail);
    }
    cJSON_Delete(req);
}

/* A failure after content: the open block is left as is and the error ends the stream. */
static void test_stream_failed_after_content(void **state)
{
    cJSON *req = parse_or_die(REQ, strlen(REQ)), *eo;
    struct drive d;
    const char *s =
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n"
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
        "\"delta\":\"Hel\"}\n\n"
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{"
        "\"code\":\"server_error\",\"message\":\"oops\"}}}\n\n";

    (void)state;
    assert_int_equal(run_stream(&d, req, s, strlen(s), 0, 0), CM_ERR_UPSTREAM);
    assert_true(cp_tr_messages_codex_stream_has_content(&d.st));
    assert_non_null(strstr(d.out.data, "\"text\":\"Hel\""));
    eo = last_error(&d.out);
    assert_string_equal(jstr(eo, "type", NULL), "api_error");
    cJSON_Delete(eo);
    drive_cleanup(&d);
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
        assert_string_equal(jstr(eo, "type", NULL), "api_error");
        cJSON_Delete(eo);
        drive_cleanup(&d);
        assert_int_equal(
            cp_tr_messages_codex_aggregate(bad[i], strlen(bad[i]), req, TEST_ID, &out, NULL, &err),
            CM_ERR_UPSTREAM);
        assert_int_equal(err.status, 502);
        assert_null(out);
    }
    cJSON_Delete(req);
}

/*
 * Unknown events emit nothing (not even message_start); a data-only stream works; a function
 * call announced only by output_item.done becomes a whole tool_use block; events after the
 * terminal one are ignored; bad arguments are refused.
 */
static void test_stream_ignores(void **state)
{
    cJSON *req = parse_or_die(REQ, strlen(REQ));
    struct cp_tr_messages_codex_stream st;
    struct cm_buf b;
    struct drive d;
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

    assert_int_equal(run_stream(&d, req, s, strlen(s), 0, 0), CM_OK);
    assert_sse_equal(d.out.data, d.out.len, want, strlen(want), "ignores");
    assert_int_equal(cp_tr_messages_codex_stream_usage(&d.st, &(struct cp_tr_usage){0}),
                     CM_ERR_NOTFOUND);
    drive_cleanup(&d);
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
    w = parse_or_die(want, strlen(want));
    assert_json_equal(out, w, "aggregate details");
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
    static const char *const cases[] = {"tools_result", "image_input", "system_multiturn"};

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len = 0;
        char *raw = fixture(cases[c], "in.json", &len);
        cJSON *req = parse_or_die(raw, len);
        long n;
        int ok = 0;
        for (n = 1; n < 5000; n++) {
            struct cp_tr_err err;
            cJSON *out = NULL;
            int rc;
            cm_alloc_fail_at(n);
            rc = cp_tr_messages_codex_request(req, &out, &err);
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
}

static void oom_case(const char *cs)
{
    size_t rlen = 0, ulen = 0;
    char *raw = fixture(cs, "in.json", &rlen);
    char *up = fixture(cs, "upstream.sse", &ulen);
    cJSON *req = parse_or_die(raw, rlen);
    long n;
    int ok_stream = 0, ok_agg = 0;

    for (n = 1; n < 20000 && !ok_stream; n++) {
        struct cm_sse_parser p;
        struct drive d;
        int rc;
        memset(&d, 0, sizeof(d));
        cm_buf_init(&d.out, (size_t)1 << 20);
        cm_alloc_fail_at(n);
        rc = cp_tr_messages_codex_stream_init(&d.st, req, TEST_ID, NULL);
        if (rc == CM_OK) {
            cm_sse_parser_init(&p, 0, drive_event, NULL, &d);
            rc = cm_sse_parser_feed(&p, up, ulen, NULL);
            if (rc == CM_OK)
                rc = cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH);
            cm_sse_parser_cleanup(&p);
            if (rc == CM_OK)
                rc = d.last_rc;
            if (rc == CM_OK)
                rc = cp_tr_messages_codex_stream_finish(&d.st, &d.out, NULL);
            cp_tr_messages_codex_stream_cleanup(&d.st);
        }
        cm_alloc_fail_at(0);
        if (rc == CM_OK)
            ok_stream = 1;
        else
            assert_true(rc == CM_ERR_NOMEM || rc == CM_ERR_UPSTREAM);
        cm_buf_cleanup(&d.out);
    }
    assert_true(ok_stream);
    assert_true(n > 20);
    for (n = 1; n < 20000 && !ok_agg; n++) {
        struct cp_tr_err err;
        cJSON *out = NULL;
        int rc;
        cm_alloc_fail_at(n);
        rc = cp_tr_messages_codex_aggregate(up, ulen, req, TEST_ID, &out, NULL, &err);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            cJSON_Delete(out);
            ok_agg = 1;
        } else {
            assert_true(rc == CM_ERR_NOMEM || rc == CM_ERR_UPSTREAM);
            assert_null(out);
        }
    }
    assert_true(ok_agg);
    assert_true(n > 20);
    cJSON_Delete(req);
    cm_free(raw);
    cm_free(up);
}

static void test_oom_stream_and_aggregate(void **state)
{
    (void)state;
    oom_case("tools_call");
    oom_case("thinking_budget");
    oom_case("long_tool_name");
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
