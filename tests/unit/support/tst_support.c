/* SPDX-License-Identifier: MIT */
/*
 * tst_support.c - helpers shared by the cliproxyd unit tests (see tst_support.h).
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
#include "cm/err.h"
#include "cm/file.h"
#include "cm/sse.h"
#include "tst_support.h"

/* ---- files and JSON ---- */

char *tst_fixture_dir(const char *sub)
{
    const char *root = getenv("CM_TEST_DATA");
    struct cm_buf b;

    assert_non_null(root);
    cm_buf_init(&b, 4096);
    assert_int_equal(cm_buf_appendf(&b, "%s/translate/%s", root, sub), CM_OK);
    return cm_buf_release(&b, NULL);
}

char *tst_read_file(const char *dir, const char *name, size_t *len)
{
    struct cm_buf path;
    char why[256];
    char *data = NULL;
    int rc;

    cm_buf_init(&path, 4096);
    assert_int_equal(cm_buf_appendf(&path, "%s/%s", dir, name), CM_OK);
    rc = cm_file_read(path.data, (size_t)16 << 20, &data, len, why, sizeof(why));
    cm_buf_cleanup(&path);
    if (rc == CM_ERR_NOTFOUND)
        return NULL;
    if (rc)
        fail_msg("%s", why);
    return data;
}

char *tst_fixture(const char *sub, const char *cs, const char *name, size_t *len)
{
    char *dir = tst_fixture_dir(sub);
    struct cm_buf p;
    char *s;

    cm_buf_init(&p, 4096);
    assert_int_equal(cm_buf_appendf(&p, "%s/%s", dir, cs), CM_OK);
    s = tst_read_file(p.data, name, len);
    assert_non_null(s);
    cm_buf_cleanup(&p);
    cm_free(dir);
    return s;
}

cJSON *tst_parse(const char *s, size_t n)
{
    cJSON *j = NULL;
    struct cm_json_err je;
    int rc = cm_json_parse(s, n, NULL, &j, &je);
    if (rc)
        fail_msg("bad JSON (%s): %.*s", je.msg, (int)(n > 300 ? 300 : n), s);
    return j;
}

cJSON *tst_parse_str(const char *s)
{
    return tst_parse(s, strlen(s));
}

cJSON *tst_read_json(const char *dir, const char *name)
{
    size_t n = 0;
    char *s = tst_read_file(dir, name, &n);
    cJSON *j;

    if (!s)
        return NULL;
    j = tst_parse(s, n);
    cm_free(s);
    return j;
}

void tst_assert_json_equal(const cJSON *got, const cJSON *want, const char *what)
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

/* ---- SSE streams ---- */

static int collect(void *ud, const struct cm_sse_event *ev)
{
    struct tst_events *e = ud;
    assert_true(e->n < TST_EVENTS_MAX);
    e->data[e->n] = cm_strndup(ev->data, ev->data_len);
    e->type[e->n] = ev->type ? cm_strndup(ev->type, ev->type_len) : NULL;
    assert_non_null(e->data[e->n]);
    e->n++;
    return 0;
}

void tst_events_parse(struct tst_events *e, const char *s, size_t n)
{
    struct cm_sse_parser p;

    memset(e, 0, sizeof(*e));
    cm_sse_parser_init(&p, 0, collect, NULL, e);
    assert_int_equal(cm_sse_parser_feed(&p, s, n, NULL), CM_OK);
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
    cm_sse_parser_cleanup(&p);
}

void tst_events_free(struct tst_events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        cm_free(e->data[i]);
        cm_free(e->type[i]);
    }
    e->n = 0;
}

/*
 * Compares two client streams event by event, JSON data as trees; @p named: Anthropic
 * streams (every event named after its data's "type", no [DONE]), else chat streams (data
 * lines only, [DONE] compared literally).
 */
static void assert_sse_equal(const char *got, size_t got_len, const char *want, size_t want_len,
                             const char *what, bool named)
{
    struct tst_events g, w;
    size_t i;

    tst_events_parse(&g, got, got_len);
    tst_events_parse(&w, want, want_len);
    if (g.n != w.n)
        fail_msg("%s: %zu events, want %zu; got:\n%.*s", what, g.n, w.n, (int)got_len, got);
    for (i = 0; i < g.n; i++) {
        cJSON *gj, *wj;
        const cJSON *t;
        char label[160];
        if (!named && (strcmp(w.data[i], "[DONE]") == 0 || strcmp(g.data[i], "[DONE]") == 0)) {
            assert_null(g.type[i]);
            assert_string_equal(g.data[i], w.data[i]);
            continue;
        }
        gj = tst_parse_str(g.data[i]);
        wj = tst_parse_str(w.data[i]);
        if (named) {
            assert_non_null(g.type[i]);
            assert_non_null(w.type[i]);
            assert_string_equal(g.type[i], w.type[i]);
            t = cJSON_GetObjectItemCaseSensitive(gj, "type");
            assert_true(cJSON_IsString(t));
            assert_string_equal(g.type[i], t->valuestring);
            snprintf(label, sizeof(label), "%s event %zu (%s)", what, i, g.type[i]);
        } else {
            assert_null(g.type[i]); /* chat streams carry data lines only */
            snprintf(label, sizeof(label), "%s event %zu", what, i);
        }
        tst_assert_json_equal(gj, wj, label);
        cJSON_Delete(gj);
        cJSON_Delete(wj);
    }
    /* every client event is a whole frame */
    assert_true(got_len >= 2 && got[got_len - 1] == '\n' && got[got_len - 2] == '\n');
    if (named)
        assert_null(strstr(got, "[DONE]")); /* Anthropic streams have no OpenAI terminator */
    else
        assert_null(strstr(got, "event:")); /* bare "data: ...\n\n" frames */
    tst_events_free(&g);
    tst_events_free(&w);
}

void tst_assert_chat_sse_equal(const char *got, size_t got_len, const char *want, size_t want_len,
                               const char *what)
{
    assert_sse_equal(got, got_len, want, want_len, what, false);
}

void tst_assert_anthropic_sse_equal(const char *got, size_t got_len, const char *want,
                                    size_t want_len, const char *what)
{
    assert_sse_equal(got, got_len, want, want_len, what, true);
}

/*
 * The "error" of the last event of a client stream, which must be an error: @p named, an
 * Anthropic "event: error" {"type":"error","error":{...}} with no message_stop anywhere;
 * else a chat data line with no [DONE] anywhere.
 */
static cJSON *final_error(const struct cm_buf *out, bool named)
{
    struct tst_events e;
    const cJSON *t;
    cJSON *j, *eo;

    tst_events_parse(&e, out->data, out->len);
    assert_true(e.n >= 1);
    for (size_t i = 0; i < e.n; i++)
        assert_string_not_equal(named ? e.type[i] : e.data[i], named ? "message_stop" : "[DONE]");
    j = tst_parse_str(e.data[e.n - 1]);
    if (named) {
        assert_string_equal(e.type[e.n - 1], "error");
        t = cJSON_GetObjectItemCaseSensitive(j, "type");
        assert_true(cJSON_IsString(t));
        assert_string_equal(t->valuestring, "error");
    }
    eo = cJSON_DetachItemFromObjectCaseSensitive(j, "error");
    assert_non_null(eo);
    cJSON_Delete(j);
    tst_events_free(&e);
    return eo;
}

cJSON *tst_chat_last_error(const struct cm_buf *out)
{
    return final_error(out, false);
}

cJSON *tst_anthropic_last_error(const struct cm_buf *out)
{
    return final_error(out, true);
}

/* ---- driving the stream translator through cm_sse ---- */

static int drive_event(void *ud, const struct cm_sse_event *ev)
{
    struct tst_drive *d = ud;
    size_t before = d->out.len;
    int rc = d->tr->event(d->st, ev->type, ev->type_len, ev->data, ev->data_len, &d->out, &d->err);
    if (rc && !d->last_rc)
        d->last_rc = rc;
    if (d->tr->has_content && !d->content_seen && d->tr->has_content(d->st)) {
        d->content_seen = true;
        d->content_at = before;
    }
    return 0;
}

/* A zeroed drive with its (zeroed) stream state; nothing initialised yet. */
static void drive_prepare(struct tst_drive *d, const struct tst_translator *tr)
{
    memset(d, 0, sizeof(*d));
    d->tr = tr;
    d->st = cm_calloc(1, tr->stream_size);
    assert_non_null(d->st);
    cm_buf_init(&d->out, (size_t)1 << 20);
}

int tst_run_stream_split(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                         const char *up, size_t len, size_t step, size_t cut)
{
    struct cm_sse_parser p;
    size_t off = 0;
    int rc;

    drive_prepare(d, tr);
    assert_int_equal(tr->init(d->st, req, NULL), CM_OK);
    if (tr->has_content)
        assert_false(tr->has_content(d->st));
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
    rc = tr->finish(d->st, &d->out, d->last_rc ? NULL : &d->err);
    return d->last_rc ? d->last_rc : rc;
}

int tst_run_stream(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                   const char *up, size_t len)
{
    return tst_run_stream_split(d, tr, req, up, len, 0, 0);
}

void tst_drive_cleanup(struct tst_drive *d)
{
    if (d->st)
        d->tr->cleanup(d->st);
    cm_free(d->st);
    d->st = NULL;
    cm_buf_cleanup(&d->out);
}

void tst_expect_stream(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                       const char *up, const char *want, const char *what)
{
    assert_int_equal(tst_run_stream(d, tr, req, up, strlen(up)), CM_OK);
    tr->assert_sse(d->out.data, d->out.len, want, strlen(want), what);
}

void tst_expect_stream_error(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                             const char *up, size_t len, int rc, unsigned status, const char *code)
{
    assert_int_equal(tst_run_stream(d, tr, req, up, len), rc);
    assert_int_equal(d->err.rc, rc);
    assert_int_equal(d->err.status, status);
    if (code)
        assert_string_equal(d->err.code, code);
}

void tst_expect_aggregate_error(const struct tst_translator *tr, const cJSON *req, const char *up,
                                size_t len, int rc, unsigned status, const char *msg)
{
    struct cp_tr_err err;
    cJSON *out = (cJSON *)(uintptr_t)1;

    assert_int_equal(tr->aggregate(up, len, req, &out, NULL, &err), rc);
    assert_int_equal(err.rc, rc);
    assert_int_equal(err.status, status);
    if (msg)
        assert_string_equal(err.msg, msg);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1); /* untouched on failure */
}

void tst_expect_early_end(const struct tst_translator *tr, const char *req_json, const char *cs,
                          const char *terminal, size_t parts, const char *msg, const char *code,
                          void (*check)(struct tst_drive *d))
{
    cJSON *req = tst_parse_str(req_json);
    size_t len = 0, cut;
    char *up = tst_fixture(tr->sub, cs, "upstream.sse", &len);
    const char *last = strstr(up, terminal);
    struct tst_drive d;

    assert_non_null(last);
    cut = (size_t)(last - up);
    for (size_t upto = 0; upto <= cut; upto += cut / parts + 1) {
        tst_expect_stream_error(&d, tr, req, up, upto, CM_ERR_TIMEOUT, 408, code);
        assert_string_equal(d.err.msg, msg);
        if (check)
            check(&d);
        tst_drive_cleanup(&d);
        tst_expect_aggregate_error(tr, req, up, upto, CM_ERR_TIMEOUT, 408, msg);
    }
    /* a stream cut inside the last event is still early */
    assert_true(len > 3);
    assert_int_equal(tst_run_stream(&d, tr, req, up, len - 3), CM_ERR_TIMEOUT);
    tst_drive_cleanup(&d);
    tst_expect_aggregate_error(tr, req, up, cut, CM_ERR_TIMEOUT, 408, msg);
    tst_expect_aggregate_error(tr, req, "", 0, CM_ERR_TIMEOUT, 408, msg);
    cm_free(up);
    cJSON_Delete(req);
}

const char *const tst_codex_bad_events[TST_CODEX_BAD_EVENTS] = {
    "event: response.output_text.delta\ndata: {\"delta\":\"a\"\n\n",
    "event: response.output_text.delta\ndata: [1,2]\n\n",
    "data: not json at all\n\n",
    "event: response.completed\ndata: \"x\"\n\n",
};

void tst_expect_bad_events(const struct tst_translator *tr, const char *req_json,
                           const char *const *bad, size_t n,
                           cJSON *(*last_error)(const struct cm_buf *out), const char *key,
                           const char *value)
{
    cJSON *req = tst_parse_str(req_json);

    for (size_t i = 0; i < n; i++) {
        struct tst_drive d;
        const cJSON *v;
        cJSON *eo;

        tst_expect_stream_error(&d, tr, req, bad[i], strlen(bad[i]), CM_ERR_UPSTREAM, 502,
                                "bad_upstream_event");
        eo = last_error(&d.out);
        if (key) {
            v = cJSON_GetObjectItemCaseSensitive(eo, key);
            assert_true(cJSON_IsString(v));
            assert_string_equal(v->valuestring, value);
        }
        cJSON_Delete(eo);
        tst_drive_cleanup(&d);
        tst_expect_aggregate_error(tr, req, bad[i], strlen(bad[i]), CM_ERR_UPSTREAM, 502, NULL);
    }
    cJSON_Delete(req);
}

const struct tst_codex_failure tst_codex_failures[TST_CODEX_FAILURES] = {
    {TST_SSE_EV("response.created",
                ",\"response\":{\"id\":\"r\",\"created_at\":5,\"model\":\"gpt-5\"}")
         TST_SSE_EV("response.failed",
                    ",\"response\":{\"id\":\"r\",\"status\":\"failed\",\"error\":{\"code\":"
                    "\"rate_limit_exceeded\",\"message\":\"Slow down\"}}"),
     429, "rate_limit_exceeded", "Slow down"},
    {TST_SSE_EV("error", ",\"code\":\"context_length_exceeded\",\"message\":\"Too long\","
                         "\"param\":\"input\""),
     400, "context_length_exceeded", "Too long"},
    {TST_SSE_EV("error", ",\"error\":{\"type\":\"server_error\",\"message\":\"boom\","
                         "\"status_code\":503}"),
     503, "", "boom"},
    {TST_SSE_EV("response.failed", ",\"response\":{\"error\":{\"code\":\"server_is_overloaded\","
                                   "\"message\":\"busy\"}}"),
     502, "server_is_overloaded", "busy"},
    {TST_SSE_EV("error", ",\"error\":{\"type\":\"invalid_api_key\",\"message\":\"bad key\"}"), 401,
     "", "bad key"},
    {TST_SSE_EV("response.failed", ",\"response\":{}"), 502, "", "upstream response failed"},
};

void tst_expect_codex_failures(const struct tst_translator *tr, const char *req_json,
                               void (*check)(struct tst_drive *d, size_t i))
{
    cJSON *req = tst_parse_str(req_json);
    for (size_t i = 0; i < TST_CODEX_FAILURES; i++) {
        const struct tst_codex_failure *f = &tst_codex_failures[i];
        /* text after the failure must not reach the client */
        char *s = tst_join(f->sse, TST_SSE_EV("response.output_text.delta", ",\"delta\":\"LEAK\""));
        struct tst_drive d;

        tst_expect_stream_error(&d, tr, req, s, strlen(s), CM_ERR_UPSTREAM, f->status, f->code);
        assert_null(strstr(d.out.data, "LEAK"));
        check(&d, i);
        tst_drive_cleanup(&d);
        tst_expect_aggregate_error(tr, req, s, strlen(s), CM_ERR_UPSTREAM, f->status, f->msg);
        cm_free(s);
    }
    cJSON_Delete(req);
}

/* ---- the fixture runner ---- */

struct counts {
    int cases, requests, streams, aggs;
};

static void case_request(const struct tst_fixture_run *run, const char *cdir, const char *name,
                         const cJSON *in, struct counts *c)
{
    cJSON *want = tst_read_json(cdir, "expected.json"), *got = NULL;
    struct cp_tr_err err;
    char label[256];

    if (!want)
        return;
    if (run->tr->request(in, &got, &err))
        fail_msg("%s: request translation failed: %s", name, err.msg);
    snprintf(label, sizeof(label), "%s/expected.json", name);
    tst_assert_json_equal(got, want, label);
    cJSON_Delete(got);
    cJSON_Delete(want);
    c->requests++;
}

static void case_stream(const struct tst_fixture_run *run, const char *name, const cJSON *in,
                        const char *up, size_t up_len, const char *exp, size_t exp_len)
{
    const struct tst_translator *tr = run->tr;
    struct tst_drive d;
    struct cp_tr_usage u;
    char label[256];

    snprintf(label, sizeof(label), "%s/expected.sse (whole)", name);
    assert_int_equal(tst_run_stream(&d, tr, in, up, up_len), CM_OK);
    tr->assert_sse(d.out.data, d.out.len, exp, exp_len, label);
    assert_int_equal(tr->usage(d.st, &u), CM_OK);
    assert_true(u.total >= u.input);
    if (run->check_stream)
        run->check_stream(&d, &u);
    tst_drive_cleanup(&d);

    snprintf(label, sizeof(label), "%s/expected.sse (byte by byte)", name);
    assert_int_equal(tst_run_stream_split(&d, tr, in, up, up_len, 1, 0), CM_OK);
    tr->assert_sse(d.out.data, d.out.len, exp, exp_len, label);
    tst_drive_cleanup(&d);

    for (size_t cut = 1; cut < up_len; cut += run->cut_step) {
        snprintf(label, sizeof(label), "%s/expected.sse (cut at %zu)", name, cut);
        assert_int_equal(tst_run_stream_split(&d, tr, in, up, up_len, 0, cut), CM_OK);
        if (!run->cut_fast || d.out.len != exp_len || memcmp(d.out.data, exp, exp_len) != 0)
            tr->assert_sse(d.out.data, d.out.len, exp, exp_len, label);
        tst_drive_cleanup(&d);
    }
}

static void case_aggregate(const struct tst_fixture_run *run, const char *name, const cJSON *in,
                           const char *up, size_t up_len, const cJSON *want)
{
    cJSON *got = NULL;
    struct cp_tr_usage u;
    struct cp_tr_err err;
    char label[256];

    if (run->tr->aggregate(up, up_len, in, &got, &u, &err))
        fail_msg("%s: aggregation failed: %s", name, err.msg);
    snprintf(label, sizeof(label), "%s/expected_nonstream.json", name);
    tst_assert_json_equal(got, want, label);
    assert_true(u.total >= u.input);
    cJSON_Delete(got);
    if (run->check_aggregate)
        run->check_aggregate(name, in, up, up_len, want, &u);
}

static void run_case(const struct tst_fixture_run *run, const char *dir, const char *name,
                     struct counts *c)
{
    struct cm_buf cdir;
    cJSON *in, *want;
    char *up, *exp;
    size_t up_len = 0, exp_len = 0;

    cm_buf_init(&cdir, 4096);
    assert_int_equal(cm_buf_appendf(&cdir, "%s/%s", dir, name), CM_OK);
    in = tst_read_json(cdir.data, "in.json");
    if (!in)
        fail_msg("%s: no in.json", name);
    case_request(run, cdir.data, name, in, c);

    up = tst_read_file(cdir.data, "upstream.sse", &up_len);
    exp = tst_read_file(cdir.data, "expected.sse", &exp_len);
    if (up && exp) {
        case_stream(run, name, in, up, up_len, exp, exp_len);
        c->streams++;
    }

    want = tst_read_json(cdir.data, "expected_nonstream.json");
    if (up && want) {
        case_aggregate(run, name, in, up, up_len, want);
        c->aggs++;
    }
    cJSON_Delete(want);
    cm_free(up);
    cm_free(exp);
    cJSON_Delete(in);
    cm_buf_cleanup(&cdir);
}

void tst_run_fixtures(const struct tst_fixture_run *run)
{
    char *dir = tst_fixture_dir(run->tr->sub);
    struct counts c = {0, 0, 0, 0};
    struct dirent *de;
    DIR *d;

    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        run_case(run, dir, de->d_name, &c);
        c.cases++;
    }
    closedir(d);
    cm_free(dir);
    print_message("%s fixtures: %d cases, %d requests, %d streams, %d aggregations\n", run->tr->sub,
                  c.cases, c.requests, c.streams, c.aggs);
    assert_true(c.cases >= run->min_cases);
    assert_true(c.requests >= run->min_requests);
    assert_true(c.streams >= run->min_streams);
    assert_true(c.aggs >= run->min_aggs);
}

/* ---- request translation errors ---- */

int tst_translate_str(tst_request_fn fn, const char *json, cJSON **out, struct cp_tr_err *err)
{
    cJSON *req = tst_parse_str(json);
    int rc = fn(req, out, err);
    cJSON_Delete(req);
    return rc;
}

void tst_expect_field_error(tst_request_fn fn, const char *json, int want_rc, const char *field)
{
    struct cp_tr_err err;
    cJSON *out = (cJSON *)(uintptr_t)1;
    int rc = tst_translate_str(fn, json, &out, &err);

    if (rc != want_rc || strcmp(err.field, field) != 0)
        fail_msg("%s: rc %d field '%s' (%s), want rc %d field '%s'", json, rc, err.field, err.msg,
                 want_rc, field);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1); /* out untouched on failure */
    assert_int_equal(err.rc, want_rc);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.msg, field));
    assert_string_equal(err.type, "invalid_request_error");
}

void tst_expect_limit(tst_request_fn fn, const char *head, const char *item, int count,
                      const char *tail, const char *field)
{
    const char *num = strstr(item, "%d");
    struct cp_tr_err err;
    cJSON *req, *out = (cJSON *)(uintptr_t)1;
    struct cm_buf b;

    cm_buf_init(&b, (size_t)1 << 20);
    assert_int_equal(cm_buf_append_str(&b, head), CM_OK);
    for (int i = 0; i < count; i++) {
        if (i)
            assert_int_equal(cm_buf_append_str(&b, ","), CM_OK);
        if (!num) {
            assert_int_equal(cm_buf_append_str(&b, item), CM_OK);
            continue;
        }
        assert_int_equal(cm_buf_append(&b, item, (size_t)(num - item)), CM_OK);
        assert_int_equal(cm_buf_appendf(&b, "%d%s", i, num + 2), CM_OK);
    }
    assert_int_equal(cm_buf_append_str(&b, tail), CM_OK);
    req = tst_parse(b.data, b.len);
    assert_int_equal(fn(req, &out, &err), CM_ERR_LIMIT);
    assert_int_equal(err.rc, CM_ERR_LIMIT);
    assert_string_equal(err.field, field);
    assert_int_equal(err.status, 400);
    assert_ptr_equal(out, (cJSON *)(uintptr_t)1); /* untouched on failure */
    cJSON_Delete(req);
    cm_buf_cleanup(&b);
}

char *tst_join(const char *a, const char *b)
{
    struct cm_buf s;

    cm_buf_init(&s, (size_t)1 << 20);
    assert_int_equal(cm_buf_append_str(&s, a), CM_OK);
    assert_int_equal(cm_buf_append_str(&s, b), CM_OK);
    return cm_buf_release(&s, NULL);
}

/* ---- OOM walks ---- */

long tst_oom_walk(tst_oom_try_fn fn, void *ud, long max, unsigned flags)
{
    for (long n = 1; n < max; n++) {
        struct cp_tr_err err;
        cJSON *out = NULL;
        int rc;

        memset(&err, 0, sizeof(err));
        rc = fn(ud, n, &out, &err);
        if (rc == CM_OK) {
            cJSON_Delete(out);
            return n;
        }
        if (rc != CM_ERR_NOMEM && !(rc == CM_ERR_UPSTREAM && (flags & TST_OOM_UPSTREAM)))
            fail_msg("allocation %ld failing: rc %d (%s)", n, rc, err.msg);
        if (flags & TST_OOM_NO_RESULT)
            continue;
        assert_null(out);
        assert_int_equal(err.rc, rc);
        if (rc == CM_ERR_NOMEM)
            assert_int_equal(err.status, 500);
    }
    fail_msg("no success with up to %ld allocations", max);
    return 0;
}

struct oom_case {
    const struct tst_translator *tr;
    const cJSON *req;
    const char *up;
    size_t up_len;
};

static int try_request(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom_case *oc = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = oc->tr->request(oc->req, out, err);
    cm_alloc_fail_at(0);
    return rc;
}

static int try_aggregate(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom_case *oc = ud;
    int rc;

    cm_alloc_fail_at(n);
    rc = oc->tr->aggregate(oc->up, oc->up_len, oc->req, out, NULL, err);
    cm_alloc_fail_at(0);
    return rc;
}

/* The whole upstream stream, fed at once; an unterminated last event is dispatched. */
static int try_stream(void *ud, long n, cJSON **out, struct cp_tr_err *err)
{
    const struct oom_case *oc = ud;
    struct cm_sse_parser p;
    struct tst_drive d;
    int rc;

    (void)out;
    (void)err;
    drive_prepare(&d, oc->tr);
    cm_alloc_fail_at(n);
    rc = oc->tr->init(d.st, oc->req, NULL);
    if (rc == CM_OK) {
        cm_sse_parser_init(&p, 0, drive_event, NULL, &d);
        rc = cm_sse_parser_feed(&p, oc->up, oc->up_len, NULL);
        if (rc == CM_OK)
            rc = cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH);
        cm_sse_parser_cleanup(&p);
        if (rc == CM_OK)
            rc = d.last_rc;
        if (rc == CM_OK)
            rc = oc->tr->finish(d.st, &d.out, NULL);
        oc->tr->cleanup(d.st);
    }
    cm_alloc_fail_at(0);
    cm_free(d.st);
    cm_buf_cleanup(&d.out);
    return rc;
}

void tst_oom_request(const struct tst_translator *tr, const char *cs)
{
    size_t len = 0;
    char *raw = tst_fixture(tr->sub, cs, "in.json", &len);
    cJSON *req = tst_parse(raw, len);
    struct oom_case oc = {tr, req, NULL, 0};

    /* the walk really failed allocations before succeeding */
    assert_true(tst_oom_walk(try_request, &oc, 5000, 0) > 20);
    cJSON_Delete(req);
    cm_free(raw);
}

void tst_oom_stream_and_aggregate(const struct tst_translator *tr, const char *cs)
{
    size_t rlen = 0, ulen = 0;
    char *raw = tst_fixture(tr->sub, cs, "in.json", &rlen);
    char *up = tst_fixture(tr->sub, cs, "upstream.sse", &ulen);
    cJSON *req = tst_parse(raw, rlen);
    struct oom_case oc = {tr, req, up, ulen};

    assert_true(tst_oom_walk(try_stream, &oc, 20000, TST_OOM_UPSTREAM | TST_OOM_NO_RESULT) >= 20);
    assert_true(tst_oom_walk(try_aggregate, &oc, 20000, TST_OOM_UPSTREAM) >= 20);
    cJSON_Delete(req);
    cm_free(raw);
    cm_free(up);
}

/* ---- upstream requests ---- */

const char *tst_header(const struct cp_upreq *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++)
        if (strncmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return r->headers[i] + n + 2;
    return NULL;
}
