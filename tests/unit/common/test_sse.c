/* SPDX-License-Identifier: MIT */
/*
 * test_sse.c - cm_sse parser and writer: real OpenAI and Anthropic streams fed whole, cut in
 * two at every byte, cut in three, and byte by byte (each chunk in its own exact-size heap
 * block, so ASan catches any read past a chunk or a borrowed pointer kept after feed);
 * line ends, fields, id/retry, BOM, finish modes, the cap, callback stops, long lines,
 * OOM, and writer output parsed back.
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
#include "cm/sse.h"

/* ---- a recorder: every callback becomes one unambiguous record in a log ---- */

struct rec {
    struct cm_buf log;
    int events;
    int stop_at;      /* stop (return 7) at this event number (1-based); 0 = never */
    int stop_comment; /* stop (return 9) at this comment number; 0 = never */
    int comments;
    const char *chunk; /* the chunk being fed, to check borrowing */
    size_t chunk_len;
    int borrowed; /* events whose data pointed into the chunk */
};

static void put_slice(struct cm_buf *b, const char *tag, const char *p, size_t n)
{
    assert_int_equal(cm_buf_appendf(b, "%s%zu:", tag, n), CM_OK);
    assert_int_equal(cm_buf_append(b, p ? p : "", n), CM_OK);
}

static int on_event(void *ud, const struct cm_sse_event *ev)
{
    struct rec *r = ud;
    assert_non_null(ev->data);
    assert_true((ev->type == NULL) == (ev->type_len == 0));
    assert_true((ev->id == NULL) == (ev->id_len == 0));
    put_slice(&r->log, "E type=", ev->type, ev->type_len);
    put_slice(&r->log, " id=", ev->id, ev->id_len);
    put_slice(&r->log, " data=", ev->data, ev->data_len);
    assert_int_equal(cm_buf_append(&r->log, "\n", 1), CM_OK);
    if (r->chunk && ev->data_len && ev->data >= r->chunk && ev->data < r->chunk + r->chunk_len)
        r->borrowed++;
    r->events++;
    return r->events == r->stop_at ? 7 : 0;
}

static int on_comment(void *ud, const char *text, size_t len)
{
    struct rec *r = ud;
    put_slice(&r->log, "C ", text, len);
    assert_int_equal(cm_buf_append(&r->log, "\n", 1), CM_OK);
    r->comments++;
    return r->comments == r->stop_comment ? 9 : 0;
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    cm_buf_init(&r->log, 64 << 20);
}

static const char *rec_log(struct rec *r)
{
    return r->log.data ? r->log.data : "";
}

/* feeds a copy of [p, p+n) in an exact-size heap block that is freed right after */
static int feed_copy(struct cm_sse_parser *ps, struct rec *r, const char *p, size_t n)
{
    char *c = NULL;
    int rc;
    if (n) {
        c = cm_malloc(n);
        assert_non_null(c);
        memcpy(c, p, n);
    }
    r->chunk = c;
    r->chunk_len = n;
    rc = cm_sse_parser_feed(ps, c, n, NULL);
    r->chunk = NULL;
    cm_free(c);
    return rc;
}

/*
 * Parses stream s cut at the given offsets (sorted, ncut of them), then finish(flags).
 * Returns the log (caller frees) and the first non-OK code in *rc_out.
 */
static char *parse_cuts(const char *s, size_t n, const size_t *cuts, size_t ncut, size_t max,
                        unsigned flags, int with_comments, int *rc_out, size_t *len_out)
{
    struct cm_sse_parser p;
    struct rec r;
    size_t prev = 0;
    int rc = CM_OK, frc;
    char *out;

    rec_init(&r);
    cm_sse_parser_init(&p, max, on_event, with_comments ? on_comment : NULL, &r);
    for (size_t k = 0; k <= ncut && !rc; k++) {
        size_t at = k < ncut ? cuts[k] : n;
        rc = feed_copy(&p, &r, s + prev, at - prev);
        prev = at;
    }
    frc = cm_sse_parser_finish(&p, flags);
    if (!rc)
        rc = frc;
    else
        assert_int_equal(frc, rc); /* finish reports the earlier failure */
    cm_sse_parser_cleanup(&p);
    out = cm_buf_release(&r.log, len_out);
    assert_non_null(out);
    *rc_out = rc;
    return out;
}

static char *parse_whole(const char *s, size_t n, size_t max, unsigned flags, int *rc, size_t *len)
{
    return parse_cuts(s, n, NULL, 0, max, flags, 1, rc, len);
}

static void same_log(const char *got, size_t got_len, const char *want, size_t want_len,
                     const char *what, size_t a, size_t b)
{
    if (got_len != want_len || memcmp(got, want, want_len) != 0)
        fail_msg("%s (%zu,%zu) differs\n--- got\n%s--- want\n%s", what, a, b, got, want);
}

/* whole == every 2-way split == every 3-way split (if small) == byte at a time */
static void check_all_splits(const char *s, size_t n, size_t max, unsigned flags,
                             const char *expect, size_t expect_len, int expect_rc)
{
    int rc;
    size_t len;
    char *got = parse_whole(s, n, max, flags, &rc, &len);
    same_log(got, len, expect, expect_len, "whole", 0, n);
    assert_int_equal(rc, expect_rc);
    cm_free(got);

    for (size_t i = 0; i <= n; i++) {
        got = parse_cuts(s, n, &i, 1, max, flags, 1, &rc, &len);
        same_log(got, len, expect, expect_len, "split", i, n);
        assert_int_equal(rc, expect_rc);
        cm_free(got);
    }
    if (n <= 160) {
        for (size_t i = 0; i <= n; i++)
            for (size_t j = i; j <= n; j++) {
                size_t cuts[2] = {i, j};
                got = parse_cuts(s, n, cuts, 2, max, flags, 1, &rc, &len);
                same_log(got, len, expect, expect_len, "3-way split", i, j);
                assert_int_equal(rc, expect_rc);
                cm_free(got);
            }
    }
    {
        size_t *cuts = cm_malloc((n ? n : 1) * sizeof *cuts);
        assert_non_null(cuts);
        for (size_t i = 0; i < n; i++)
            cuts[i] = i + 1;
        got = parse_cuts(s, n, cuts, n ? n - 1 : 0, max, flags, 1, &rc, &len);
        same_log(got, len, expect, expect_len, "byte by byte", 1, n);
        assert_int_equal(rc, expect_rc);
        cm_free(got);
        cm_free(cuts);
    }
}

#define S(lit) lit, sizeof(lit) - 1
/* stream literal, cap, finish flags, expected log literal, expected code */
#define CHECK(stream, max, flags, expect, rc) check_all_splits(S(stream), max, flags, S(expect), rc)

/* ---- sample streams ---- */

static const char openai_stream[] =
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
    "\"total_tokens\":11}}\n\n"
    "data: [DONE]\n\n";

static const char *const openai_expect[] = {
    "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}",
    "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
    "\"total_tokens\":11}}",
    "[DONE]",
};

/* BOM, CRLF/LF/CR mixed, comments, a two-line data event, an id, "data:" without space */
static const char anthropic_stream[] =
    "\xEF\xBB\xBF"
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4\",\"usage\":"
    "{\"input_tokens\":12,\"output_tokens\":1}}}\r\n"
    "\r\n"
    ": upstream keep-alive\n"
    "event: content_block_start\r"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\r"
    "\r"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\n"
    "data: \"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n"
    "\r\n"
    "id: 42\r"
    "event: content_block_delta\n"
    "data:{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\" there\"}}\r\n"
    "\n"
    ":\r\n"
    "event: content_block_stop\r\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
    "{\"output_tokens\":2}}\n\n"
    "event: message_stop\r"
    "data: {\"type\":\"message_stop\"}\r"
    "\r";

static char *expect_log(const char *const *types, const char *const *ids, const char *const *datas,
                        size_t n, const char *const *comments_after, size_t ncomments_at,
                        size_t *len)
{
    struct cm_buf b;
    cm_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        if (comments_after && i < ncomments_at && comments_after[i]) {
            const char *c = comments_after[i];
            /* several comments separated by '|' */
            while (*c) {
                const char *bar = strchr(c, '|');
                size_t l = bar ? (size_t)(bar - c) : strlen(c);
                put_slice(&b, "C ", c + (*c == '~' ? 1 : 0), l - (*c == '~' ? 1 : 0));
                cm_buf_append(&b, "\n", 1);
                c += l + (bar ? 1 : 0);
            }
        }
        put_slice(&b, "E type=", types ? types[i] : "", types && types[i] ? strlen(types[i]) : 0);
        put_slice(&b, " id=", ids ? ids[i] : "", ids && ids[i] ? strlen(ids[i]) : 0);
        put_slice(&b, " data=", datas[i], strlen(datas[i]));
        cm_buf_append(&b, "\n", 1);
    }
    return cm_buf_release(&b, len);
}

static void openai_stream_all_splits(void **state)
{
    char *expect;
    size_t len;
    (void)state;
    expect = expect_log(NULL, NULL, openai_expect, 5, NULL, 0, &len);
    check_all_splits(S(openai_stream), 0, 0, expect, len, CM_OK);
    check_all_splits(S(openai_stream), 0, CM_SSE_FINISH_DISPATCH, expect, len, CM_OK);
    cm_free(expect);
}

static void anthropic_stream_all_splits(void **state)
{
    static const char *const types[] = {
        "message_start",       "content_block_start", "ping",          "content_block_delta",
        "content_block_delta", "content_block_stop",  "message_delta", "message_stop"};
    static const char *const ids[] = {NULL, NULL, NULL, NULL, "42", "42", "42", "42"};
    static const char *const datas[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
        "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4\",\"usage\":"
        "{\"input_tokens\":12,\"output_tokens\":1}}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}}",
        "{\"type\": \"ping\"}",
        "{\"type\":\"content_block_delta\",\"index\":0,\n"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\" there\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
        "{\"output_tokens\":2}}",
        "{\"type\":\"message_stop\"}",
    };
    /* comments seen before event i: " upstream keep-alive" before #1, "" before #5 */
    static const char *const comments[] = {
        NULL, " upstream keep-alive", NULL, NULL, NULL, "~", NULL, NULL};
    char *expect;
    size_t len;
    (void)state;
    expect = expect_log(types, ids, datas, 8, comments, 8, &len);
    check_all_splits(S(anthropic_stream), 0, 0, expect, len, CM_OK);
    cm_free(expect);
}

/* the parser lends slices of the chunk when an event lies whole in it */
static void whole_events_are_not_copied(void **state)
{
    struct cm_sse_parser p;
    struct rec r;
    (void)state;
    rec_init(&r);
    cm_sse_parser_init(&p, 0, on_event, NULL, &r);
    assert_int_equal(feed_copy(&p, &r, S(openai_stream)), CM_OK);
    assert_int_equal(r.events, 5);
    assert_int_equal(r.borrowed, 5);
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
}

/* ---- line ends, fields, id, retry, BOM ---- */

#define EXPECT(stream, expect) CHECK(stream, 0, 0, expect, CM_OK)

static void line_endings(void **state)
{
    (void)state;
    EXPECT("data: a\r\n\r\n", "E type=0: id=0: data=1:a\n");
    EXPECT("data: a\r\rdata: b\r\r", "E type=0: id=0: data=1:a\nE type=0: id=0: data=1:b\n");
    /* LF CR is two line ends: the CR is a blank line */
    EXPECT("data: a\n\rdata: b\n\n", "E type=0: id=0: data=1:a\nE type=0: id=0: data=1:b\n");
    /* CR, then CRLF: two lines and a blank line */
    EXPECT("data: a\rdata: b\r\n\r\n", "E type=0: id=0: data=3:a\nb\n");
    /* a CR ending a chunk and the LF starting the next are one line end (splits cover it) */
    EXPECT("data: x\r\ndata: y\r\n\r\n", "E type=0: id=0: data=3:x\ny\n");
    /* blank lines alone dispatch nothing */
    EXPECT("\n\r\n\r\n\n", "");
}

static void field_rules(void **state)
{
    (void)state;
    /* no colon: the field name is the whole line, value empty */
    EXPECT("data\n\n", "E type=0: id=0: data=0:\n");
    EXPECT("data\ndata\n\n", "E type=0: id=0: data=1:\n\n");
    /* no space after the colon, and only one space stripped */
    EXPECT("data:x\n\ndata:  x\n\n", "E type=0: id=0: data=1:x\nE type=0: id=0: data=2: x\n");
    /* a colon in the value is kept */
    EXPECT("data: a:b: c\n\n", "E type=0: id=0: data=6:a:b: c\n");
    /* trailing "\n" of the data buffer removed only once */
    EXPECT("data: a\ndata:\n\n", "E type=0: id=0: data=2:a\n\n");
    /* unknown fields and a field name with a space are ignored */
    EXPECT("foo: bar\ndata : x\nDATA: y\ndata: z\n\n", "E type=0: id=0: data=1:z\n");
    /* event type applies to one event, the last event: line wins, empty means none */
    EXPECT("event: a\nevent: b\ndata: 1\n\ndata: 2\n\nevent: c\nevent:\ndata: 3\n\n",
           "E type=1:b id=0: data=1:1\nE type=0: id=0: data=1:2\n"
           "E type=0: id=0: data=1:3\n");
    /* an event with no data line is not dispatched and its type is dropped */
    EXPECT("event: lonely\n\ndata: x\n\n", "E type=0: id=0: data=1:x\n");
    /* data may hold NUL bytes */
    EXPECT("data: a\0b\n\n", "E type=0: id=0: data=3:a\0b\n");
}

static void id_rules(void **state)
{
    struct cm_sse_parser p;
    struct rec r;
    size_t n;
    const char *id;
    (void)state;

    /* the id persists; an id with NUL is ignored; "id" alone resets it */
    EXPECT("id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n",
           "E type=0: id=1:1 data=1:a\nE type=0: id=1:1 data=1:b\n"
           "E type=0: id=1:1 data=1:c\nE type=0: id=0: data=1:d\n");
    /* id without data: no event, but the last event ID changes */
    rec_init(&r);
    cm_sse_parser_init(&p, 0, on_event, NULL, &r);
    assert_null(cm_sse_parser_last_id(&p, &n));
    assert_int_equal(n, 0);
    assert_int_equal(cm_sse_parser_feed(&p, S("id: abc\n\n"), NULL), CM_OK);
    assert_int_equal(r.events, 0);
    id = cm_sse_parser_last_id(&p, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(id, "abc", 3);
    /* survives finish (a reconnection keeps Last-Event-ID) */
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
    assert_int_equal(cm_sse_parser_feed(&p, S("data: x\n\n"), NULL), CM_OK);
    assert_string_equal(rec_log(&r), "E type=0: id=3:abc data=1:x\n");
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
}

static void retry_rules(void **state)
{
    static const struct {
        const char *line;
        int64_t want;
    } t[] = {
        {"retry: 3000\n", 3000},
        {"retry:10\n", 10},
        {"retry: 3a\n", -1},
        {"retry:\n", -1},
        {"retry\n", -1},
        {"retry: -5\n", -1},
        {"retry: +5\n", -1},
        {"retry:  5\n", -1},
        {"retry: 5 \n", -1},
        {"retry: 0\n", 0},
        {"retry: 99999999999999999999999\n", INT64_MAX},
        {"retry: 1.5\n", -1},
        {"retry: \xd9\xa3\n", -1}, /* non-ASCII digit */
    };
    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct cm_sse_parser p;
        struct rec r;
        rec_init(&r);
        cm_sse_parser_init(&p, 0, on_event, NULL, &r);
        assert_int_equal(cm_sse_parser_retry(&p), -1);
        assert_int_equal(cm_sse_parser_feed(&p, t[i].line, strlen(t[i].line), NULL), CM_OK);
        if (cm_sse_parser_retry(&p) != t[i].want)
            fail_msg("%s -> %lld", t[i].line, (long long)cm_sse_parser_retry(&p));
        assert_int_equal(r.events, 0);
        cm_sse_parser_cleanup(&p);
        cm_buf_cleanup(&r.log);
    }
    {
        /* a bad retry keeps the previous value */
        struct cm_sse_parser p;
        struct rec r;
        rec_init(&r);
        cm_sse_parser_init(&p, 0, on_event, NULL, &r);
        assert_int_equal(cm_sse_parser_feed(&p, S("retry: 500\nretry: x\n\n"), NULL), CM_OK);
        assert_int_equal(cm_sse_parser_retry(&p), 500);
        cm_sse_parser_cleanup(&p);
        cm_buf_cleanup(&r.log);
    }
}

static void bom_rules(void **state)
{
    struct cm_sse_parser p;
    struct rec r;
    (void)state;
    EXPECT("\xEF\xBB\xBF"
           "data: a\n\n",
           "E type=0: id=0: data=1:a\n");
    /* only one BOM is skipped: a second one is part of the field name */
    EXPECT("\xEF\xBB\xBF\xEF\xBB\xBF"
           "data: a\n\ndata: b\n\n",
           "E type=0: id=0: data=1:b\n");
    /* a partial BOM is not a BOM */
    EXPECT("\xEF\xBB"
           "data: a\n\ndata: b\n\n",
           "E type=0: id=0: data=1:b\n");
    EXPECT("\xEF"
           "\n"
           "data: b\n\n",
           "E type=0: id=0: data=1:b\n");
    /* not skipped later in the stream */
    EXPECT("data: a\n\n\xEF\xBB\xBF"
           "data: b\n\ndata: c\n\n",
           "E type=0: id=0: data=1:a\nE type=0: id=0: data=1:c\n");
    /* a BOM inside a value is data */
    EXPECT("data: \xEF\xBB\xBF\n\n", "E type=0: id=0: data=3:\xEF\xBB\xBF\n");
    /* after finish, a new stream may start with a BOM again */
    rec_init(&r);
    cm_sse_parser_init(&p, 0, on_event, NULL, &r);
    assert_int_equal(cm_sse_parser_feed(&p,
                                        S("\xEF\xBB\xBF"
                                          "data: a\n\n"),
                                        NULL),
                     CM_OK);
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
    assert_int_equal(cm_sse_parser_feed(&p, S("\xEF\xBB"), NULL), CM_OK);
    assert_int_equal(cm_sse_parser_feed(&p,
                                        S("\xBF"
                                          "data: b\n\n"),
                                        NULL),
                     CM_OK);
    assert_string_equal(rec_log(&r), "E type=0: id=0: data=1:a\nE type=0: id=0: data=1:b\n");
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
}

/* ---- end of stream ---- */

static void finish_modes(void **state)
{
    (void)state;
    /* spec: an unterminated event is dropped, an unterminated line too */
    CHECK("data: a\n\ndata: [DONE]\n", 0, 0, "E type=0: id=0: data=1:a\n", CM_OK);
    CHECK("data: a\n\ndata: [DONE]", 0, 0, "E type=0: id=0: data=1:a\n", CM_OK);
    /* dispatch mode: both delivered */
    CHECK("data: a\n\ndata: [DONE]\n", 0, CM_SSE_FINISH_DISPATCH,
          "E type=0: id=0: data=1:a\nE type=0: id=0: data=6:[DONE]\n", CM_OK);
    CHECK("event: x\ndata: 1\ndata: [DONE]", 0, CM_SSE_FINISH_DISPATCH,
          "E type=1:x id=0: data=8:1\n[DONE]\n", CM_OK);
    CHECK("data: a\r", 0, CM_SSE_FINISH_DISPATCH, "E type=0: id=0: data=1:a\n", CM_OK);
    /* nothing pending: nothing dispatched; a trailing event: line alone is not an event */
    CHECK("data: a\n\n", 0, CM_SSE_FINISH_DISPATCH, "E type=0: id=0: data=1:a\n", CM_OK);
    CHECK("data: a\n\nevent: x", 0, CM_SSE_FINISH_DISPATCH, "E type=0: id=0: data=1:a\n", CM_OK);
    CHECK(": only a comment", 0, CM_SSE_FINISH_DISPATCH, "C 15: only a comment\n", CM_OK);
    CHECK("", 0, CM_SSE_FINISH_DISPATCH, "", CM_OK);
}

static void finish_returns_callback_value(void **state)
{
    struct cm_sse_parser p;
    struct rec r;
    (void)state;
    rec_init(&r);
    r.stop_at = 1;
    cm_sse_parser_init(&p, 0, on_event, NULL, &r);
    assert_int_equal(cm_sse_parser_feed(&p, S("data: a"), NULL), CM_OK);
    assert_int_equal(cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH), 7);
    /* reset afterwards: nothing pending */
    assert_int_equal(cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH), CM_OK);
    assert_int_equal(r.events, 1);
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
}

/* ---- the cap ---- */

static void cap_limits(void **state)
{
    struct cm_sse_parser p;
    struct rec r;
    char big[64];
    (void)state;

    /* "data: " + 10 bytes = 16-byte line; held data after it = 10 bytes: cap 16 is enough */
    CHECK("data: 0123456789\n\n", 16, 0, "E type=0: id=0: data=10:0123456789\n", CM_OK);
    /* one byte more in the line: over */
    CHECK("data: 0123456789a\n\n", 16, 0, "", CM_ERR_LIMIT);
    /* earlier events are delivered, then LIMIT, whatever the cuts */
    CHECK("data: a\n\ndata: 0123456789abcdef\n\ndata: b\n\n", 16, 0, "E type=0: id=0: data=1:a\n",
          CM_ERR_LIMIT);
    /* held data counts with the next line: 10 + 16 > 24 when the second line comes */
    CHECK("data: 0123456789\ndata: 0123456789\n\n", 24, 0, "", CM_ERR_LIMIT);
    /* type and id count too */
    CHECK("id: 0123456789\nevent: abcd\ndata: x\n\n", 20, 0, "", CM_ERR_LIMIT);
    CHECK("id: 0123456789\nevent: abc\ndata: x\n\n", 21, 0,
          "E type=3:abc id=10:0123456789 data=1:x\n", CM_OK);
    /* an unterminated overlong line fails too, not only at its line end */
    CHECK("data: a\n\ndata: 0123456789abcdefgh", 16, 0, "E type=0: id=0: data=1:a\n", CM_ERR_LIMIT);
    /* ... counting what the event already holds (here the id): 10 + 18 > 20 */
    CHECK("id: 0123456789\ndata: 0123456789ab", 20, 0, "", CM_ERR_LIMIT);

    /* the FAILED state: sticky until finish/reset; then the parser works again */
    rec_init(&r);
    cm_sse_parser_init(&p, 16, on_event, NULL, &r);
    memset(big, 'x', sizeof big);
    assert_int_equal(cm_sse_parser_feed(&p, S("data: 0123"), NULL), CM_OK);
    assert_int_equal(cm_sse_parser_feed(&p, big, sizeof big, NULL), CM_ERR_LIMIT);
    assert_int_equal(cm_sse_parser_feed(&p, S("\n\ndata: ok\n\n"), NULL), CM_ERR_LIMIT);
    assert_int_equal(r.events, 0);
    cm_sse_parser_reset(&p);
    assert_int_equal(cm_sse_parser_feed(&p, S("\n\ndata: ok\n\n"), NULL), CM_OK);
    assert_string_equal(rec_log(&r), "E type=0: id=0: data=2:ok\n");
    assert_int_equal(cm_sse_parser_feed(&p, big, sizeof big, NULL), CM_ERR_LIMIT);
    assert_int_equal(cm_sse_parser_finish(&p, 0), CM_ERR_LIMIT);
    assert_int_equal(cm_sse_parser_feed(&p, S("data: ok\n\n"), NULL), CM_OK);
    assert_int_equal(r.events, 2);
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
}

/* comments are buffered (and capped) only when someone listens */
static void cap_and_comments(void **state)
{
    static char s[4096];
    size_t n = 0;
    int rc;
    char *got;
    (void)state;
    s[n++] = ':';
    memset(s + n, 'c', 3000);
    n += 3000;
    memcpy(s + n, "\ndata: x\n\n", 10);
    n += 10;
    /* no comment callback: the 3000-byte comment is skipped under a 64-byte cap */
    for (size_t cut = 0; cut <= n; cut += 97) {
        got = parse_cuts(s, n, &cut, 1, 64, 0, 0, &rc, NULL);
        assert_int_equal(rc, CM_OK);
        assert_string_equal(got, "E type=0: id=0: data=1:x\n");
        cm_free(got);
    }
    /* with one: over the cap */
    for (size_t cut = 0; cut <= n; cut += 97) {
        got = parse_cuts(s, n, &cut, 1, 64, 0, 1, &rc, NULL);
        assert_int_equal(rc, CM_ERR_LIMIT);
        assert_string_equal(got, "");
        cm_free(got);
    }
}

/* ---- callback stop and resume ---- */

static void callback_stop_and_resume(void **state)
{
    const char *s = anthropic_stream;
    size_t n = sizeof anthropic_stream - 1;
    char *whole;
    size_t wlen;
    int rc;
    (void)state;

    whole = parse_whole(s, n, 0, 0, &rc, &wlen);
    for (int stop = 1; stop <= 8; stop++) {
        struct cm_sse_parser p;
        struct rec r;
        size_t used = 0, off = 0;
        rec_init(&r);
        r.stop_at = stop;
        cm_sse_parser_init(&p, 0, on_event, on_comment, &r);
        rc = cm_sse_parser_feed(&p, s, n, &used);
        assert_int_equal(rc, 7);
        assert_int_equal(r.events, stop);
        assert_true(used > 0 && used <= n);
        off = used;
        /* resume with the rest, in two pieces to cross a CR/LF pair sometimes */
        while (off < n) {
            size_t part = (n - off) / 2 + 1;
            rc = cm_sse_parser_feed(&p, s + off, part, &used);
            assert_int_equal(rc, CM_OK);
            assert_int_equal(used, part);
            off += part;
        }
        assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
        assert_string_equal(rec_log(&r), whole);
        cm_sse_parser_cleanup(&p);
        cm_buf_cleanup(&r.log);
    }
    cm_free(whole);
}

/* a comment stop in the middle of an event: the pending (borrowed) data must survive */
static void comment_stop_mid_event(void **state)
{
    static const char s[] = "event: t\ndata: a\n: note\ndata: b\n\n";
    struct cm_sse_parser p;
    struct rec r;
    size_t used = 0;
    char *c;
    (void)state;
    rec_init(&r);
    r.stop_comment = 1;
    cm_sse_parser_init(&p, 0, on_event, on_comment, &r);
    c = cm_malloc(sizeof s - 1);
    assert_non_null(c);
    memcpy(c, s, sizeof s - 1);
    assert_int_equal(cm_sse_parser_feed(&p, c, sizeof s - 1, &used), 9);
    assert_int_equal(used, strlen("event: t\ndata: a\n: note\n"));
    memset(c, '#', used); /* the parser may not still point into the consumed bytes */
    assert_int_equal(cm_sse_parser_feed(&p, c + used, sizeof s - 1 - used, NULL), CM_OK);
    cm_free(c);
    assert_string_equal(rec_log(&r), "C 5: note\nE type=1:t id=0: data=3:a\nb\n");
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
}

/* ---- performance shape: a long line in tiny chunks is linear ---- */

static void long_line_tiny_chunks(void **state)
{
    const size_t n = (size_t)2 << 20;
    struct cm_sse_parser p;
    struct rec r;
    char *line;
    size_t i;
    (void)state;

    line = cm_malloc(n);
    assert_non_null(line);
    memcpy(line, "data: ", 6);
    for (i = 6; i < n; i++)
        line[i] = (char)('a' + i % 26);
    rec_init(&r);
    cm_sse_parser_init(&p, n, on_event, NULL, &r);
    for (i = 0; i < n; i++) /* one byte at a time: O(n^2) rescans would time out */
        assert_int_equal(cm_sse_parser_feed(&p, line + i, 1, NULL), CM_OK);
    assert_int_equal(cm_sse_parser_feed(&p, S("\r"), NULL), CM_OK);
    assert_int_equal(cm_sse_parser_feed(&p, S("\n\r\n"), NULL), CM_OK);
    assert_int_equal(r.events, 1);
    assert_true(r.log.len > n - 6);
    assert_memory_equal(strstr(r.log.data, "data=") + strlen("data=2097146:"), line + 6, n - 6);
    cm_sse_parser_cleanup(&p);
    cm_buf_cleanup(&r.log);
    cm_free(line);
}

/* ---- OOM ---- */

static void oom_every_allocation(void **state)
{
    const char *s = anthropic_stream;
    size_t n = sizeof anthropic_stream - 1;
    char *whole;
    size_t wlen;
    int rc, done = 0;
    (void)state;

    whole = parse_whole(s, n, 0, 0, &rc, &wlen);
    for (long k = 1; k < 1000 && !done; k++) {
        struct cm_sse_parser p;
        struct rec r;
        size_t off = 0;
        rec_init(&r);
        /* size the recorder's log now, so injected failures hit only the parser */
        assert_int_equal(cm_buf_appendf(&r.log, "%4096s", ""), CM_OK);
        cm_buf_reset(&r.log);
        cm_sse_parser_init(&p, 0, on_event, on_comment, &r);
        cm_alloc_fail_at(k);
        rc = CM_OK;
        while (off < n && !rc) {
            size_t part = n - off < 13 ? n - off : 13;
            rc = cm_sse_parser_feed(&p, s + off, part, NULL);
            off += part;
        }
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            done = 1;
            assert_int_equal(cm_sse_parser_finish(&p, 0), CM_OK);
            assert_string_equal(rec_log(&r), whole);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
            assert_int_equal(cm_sse_parser_feed(&p, S("data: x\n\n"), NULL), CM_ERR_NOMEM);
            assert_int_equal(cm_sse_parser_finish(&p, 0), CM_ERR_NOMEM);
        }
        cm_sse_parser_cleanup(&p);
        cm_buf_cleanup(&r.log);
    }
    assert_true(done);
    cm_free(whole);
}

/* ---- writer ---- */

static void writer_output(void **state)
{
    struct cm_buf b;
    (void)state;
    cm_buf_init(&b, 1 << 16);
    assert_int_equal(cm_sse_write_event(&b, NULL, S("{\"a\":1}")), CM_OK);
    assert_string_equal(b.data, "data: {\"a\":1}\n\n");
    cm_buf_reset(&b);
    assert_int_equal(cm_sse_write_event(&b, "message_start", S("x\ny")), CM_OK);
    assert_string_equal(b.data, "event: message_start\ndata: x\ndata: y\n\n");
    cm_buf_reset(&b);
    assert_int_equal(cm_sse_write_event(&b, "", S("a\r\nb\rc\n")), CM_OK);
    assert_string_equal(b.data, "data: a\ndata: b\ndata: c\ndata: \n\n");
    cm_buf_reset(&b);
    assert_int_equal(cm_sse_write_event(&b, NULL, NULL, 0), CM_OK);
    assert_string_equal(b.data, "data: \n\n");
    cm_buf_reset(&b);
    assert_int_equal(cm_sse_write_comment(&b, "keep-alive"), CM_OK);
    assert_int_equal(cm_sse_write_done(&b), CM_OK);
    assert_string_equal(b.data, ": keep-alive\n\ndata: [DONE]\n\n");
    cm_buf_reset(&b);
    assert_int_equal(cm_sse_write_comment(&b, "a\nb"), CM_OK);
    assert_string_equal(b.data, ": a\n: b\n\n");
    /* a type that would inject lines is refused; the buffer is untouched */
    assert_int_equal(cm_sse_write_event(&b, "x\ndata: evil", S("y")), CM_ERR_INVAL);
    assert_int_equal(cm_sse_write_event(&b, "x\r", S("y")), CM_ERR_INVAL);
    assert_string_equal(b.data, ": a\n: b\n\n");
    cm_buf_cleanup(&b);

    /* over the buffer's cap: LIMIT and the buffer keeps what it had */
    cm_buf_init(&b, 20);
    assert_int_equal(cm_buf_append_str(&b, "head"), CM_OK);
    assert_int_equal(cm_sse_write_event(&b, "type", S("0123456789")), CM_ERR_LIMIT);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "head");
    assert_int_equal(cm_sse_write_comment(&b, "0123456789abcdef"), CM_ERR_LIMIT);
    assert_string_equal(b.data, "head");
    cm_buf_cleanup(&b);

    /* OOM: NOMEM and unchanged */
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(cm_buf_append_str(&b, "head"), CM_OK);
    cm_alloc_fail_at(1);
    assert_int_equal(cm_sse_write_event(&b, NULL,
                                        "0123456789012345678901234567890123456789"
                                        "0123456789012345678901234567890123456789",
                                        80),
                     CM_ERR_NOMEM);
    cm_alloc_fail_at(0);
    assert_string_equal(b.data, "head");
    cm_buf_cleanup(&b);
}

static void writer_round_trip(void **state)
{
    static const struct {
        const char *type;
        const char *data;
    } ev[] = {
        {NULL, "{\"choices\":[]}"},
        {"message_start", "{}"},
        {NULL, ""},
        {"x", "\n"},
        {NULL, "a\nb"},
        {"content_block_delta", "a\n\nb\n"},
        {NULL, " leading space"},
        {NULL, "  two"},
        {NULL, ":colon first"},
        {"t", "data: nested\nevent: no\nid: 5\n"},
        {NULL, "h\xc3\xa9llo \xe2\x9c\x93"},
        {"ping", "[DONE]"},
    };
    struct cm_buf out, want;
    uint32_t seed = 12345;
    size_t len;
    int rc;
    char *got;
    (void)state;

    cm_buf_init(&out, 1 << 22);
    cm_buf_init(&want, 1 << 22);
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++) {
        assert_int_equal(cm_sse_write_event(&out, ev[i].type, ev[i].data, strlen(ev[i].data)),
                         CM_OK);
        put_slice(&want, "E type=", ev[i].type, ev[i].type ? strlen(ev[i].type) : 0);
        put_slice(&want, " id=", NULL, 0);
        put_slice(&want, " data=", ev[i].data, strlen(ev[i].data));
        cm_buf_append(&want, "\n", 1);
        if (i % 3 == 0)
            assert_int_equal(cm_sse_write_comment(&out, "keep-alive"), CM_OK);
    }
    /* random data over an alphabet rich in separators */
    for (int i = 0; i < 200; i++) {
        static const char alpha[] = "ab :\n\n \x01\0\xff{}\"data";
        char data[64];
        size_t dlen;
        seed = seed * 1103515245u + 12345u;
        dlen = (seed >> 16) % sizeof data;
        for (size_t k = 0; k < dlen; k++) {
            seed = seed * 1103515245u + 12345u;
            data[k] = alpha[(seed >> 16) % (sizeof alpha - 1)];
        }
        assert_int_equal(cm_sse_write_event(&out, i % 2 ? "rnd" : NULL, data, dlen), CM_OK);
        put_slice(&want, "E type=", i % 2 ? "rnd" : NULL, i % 2 ? 3 : 0);
        put_slice(&want, " id=", NULL, 0);
        put_slice(&want, " data=", data, dlen);
        cm_buf_append(&want, "\n", 1);
    }
    assert_int_equal(cm_sse_write_done(&out), CM_OK);
    put_slice(&want, "E type=", NULL, 0);
    put_slice(&want, " id=", NULL, 0);
    put_slice(&want, " data=", "[DONE]", 6);
    cm_buf_append(&want, "\n", 1);

    got = parse_cuts(out.data, out.len, NULL, 0, 0, 0, 0, &rc, &len);
    assert_int_equal(rc, CM_OK);
    same_log(got, len, want.data, want.len, "round trip", 0, 0);
    cm_free(got);
    /* and cut in many places (the log has NULs: compared as bytes) */
    for (size_t cut = 0; cut <= out.len; cut += 7) {
        got = parse_cuts(out.data, out.len, &cut, 1, 0, 0, 0, &rc, &len);
        assert_int_equal(rc, CM_OK);
        same_log(got, len, want.data, want.len, "round trip cut", cut, 0);
        cm_free(got);
    }
    cm_buf_cleanup(&out);
    cm_buf_cleanup(&want);
}

/* CR in data cannot travel over SSE: it comes back as LF */
static void writer_normalises_cr(void **state)
{
    struct cm_buf out;
    int rc;
    char *got;
    (void)state;
    cm_buf_init(&out, 1 << 10);
    assert_int_equal(cm_sse_write_event(&out, NULL, S("a\rb\r\nc\r")), CM_OK);
    got = parse_cuts(out.data, out.len, NULL, 0, 0, 0, 0, &rc, NULL);
    assert_string_equal(got, "E type=0: id=0: data=6:a\nb\nc\n\n");
    cm_free(got);
    cm_buf_cleanup(&out);
}

static void type_is(void **state)
{
    struct cm_sse_event ev = {NULL, 0, "", 0, NULL, 0};
    (void)state;
    assert_true(cm_sse_event_type_is(&ev, "message"));
    assert_false(cm_sse_event_type_is(&ev, "ping"));
    ev.type = "pingx";
    ev.type_len = 4;
    assert_true(cm_sse_event_type_is(&ev, "ping"));
    assert_false(cm_sse_event_type_is(&ev, "pin"));
    assert_false(cm_sse_event_type_is(&ev, "message"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openai_stream_all_splits),
        cmocka_unit_test(anthropic_stream_all_splits),
        cmocka_unit_test(whole_events_are_not_copied),
        cmocka_unit_test(line_endings),
        cmocka_unit_test(field_rules),
        cmocka_unit_test(id_rules),
        cmocka_unit_test(retry_rules),
        cmocka_unit_test(bom_rules),
        cmocka_unit_test(finish_modes),
        cmocka_unit_test(finish_returns_callback_value),
        cmocka_unit_test(cap_limits),
        cmocka_unit_test(cap_and_comments),
        cmocka_unit_test(callback_stop_and_resume),
        cmocka_unit_test(comment_stop_mid_event),
        cmocka_unit_test(long_line_tiny_chunks),
        cmocka_unit_test(oom_every_allocation),
        cmocka_unit_test(writer_output),
        cmocka_unit_test(writer_round_trip),
        cmocka_unit_test(writer_normalises_cr),
        cmocka_unit_test(type_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
