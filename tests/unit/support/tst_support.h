/* SPDX-License-Identifier: MIT */
/*
 * tst_support.h - helpers shared by the cliproxyd unit tests (cmocka), prefix tst_:
 * fixture files under $CM_TEST_DATA/translate/<sub>/<case>/, JSON parsing and tree
 * comparison, client SSE streams split into events, a translator's stream driven through
 * cm_sse (whole, in steps, or cut in two), the fixture runner and the OOM walks the
 * translator tests share, the field-error check of a request translation, and an upstream
 * request's header lookup. Every helper fails the running test instead of returning an
 * error. Built as a static library linked into every tests/unit/cliproxyd binary.
 */
#ifndef TST_SUPPORT_H
#define TST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/buf.h"
#include "cm/json.h"
#include "providers/upreq.h"
#include "translate/translate.h"

/* ---- files and JSON ---- */

/** "$CM_TEST_DATA/translate/<sub>" (caller frees with cm_free()). */
char *tst_fixture_dir(const char *sub);
/** The whole file @p dir/@p name (NUL-terminated, cm_free()), or NULL if it does not exist. */
char *tst_read_file(const char *dir, const char *name, size_t *len);
/** The file translate/<sub>/<cs>/<name>, which must exist (caller frees with cm_free()). */
char *tst_fixture(const char *sub, const char *cs, const char *name, size_t *len);
/** @p n bytes of JSON, which must parse (caller frees with cJSON_Delete()). */
cJSON *tst_parse(const char *s, size_t n);
cJSON *tst_parse_str(const char *s);
/** The JSON file @p dir/@p name parsed, or NULL if it does not exist. */
cJSON *tst_read_json(const char *dir, const char *name);
/** Fails, printing both trees, unless @p got and @p want are equal (case-sensitive keys). */
void tst_assert_json_equal(const cJSON *got, const cJSON *want, const char *what);

/* ---- SSE streams: the data (and "event:" name) of each event ---- */

/** An upstream event as Codex and Anthropic write them: "event: T" and {"type":"T"<fields>}. */
#define TST_SSE_EV(type, fields) "event: " type "\ndata: {\"type\":\"" type "\"" fields "}\n\n"

#define TST_EVENTS_MAX 256

struct tst_events {
    char *data[TST_EVENTS_MAX];
    char *type[TST_EVENTS_MAX]; /* NULL when the event had no "event:" line */
    size_t n;
};

void tst_events_parse(struct tst_events *e, const char *s, size_t n);
void tst_events_free(struct tst_events *e);
/** Compares two chat.completions streams event by event ([DONE] literally, JSON as trees). */
void tst_assert_chat_sse_equal(const char *got, size_t got_len, const char *want, size_t want_len,
                               const char *what);
/*
 * Compares two Anthropic streams event by event: same "event:" names, data equal as JSON
 * trees; and every event of @p got names itself (event: X carries {"type":"X"}).
 */
void tst_assert_anthropic_sse_equal(const char *got, size_t got_len, const char *want,
                                    size_t want_len, const char *what);
/** The last event of a chat stream must be an error (never [DONE]); returns its "error". */
cJSON *tst_chat_last_error(const struct cm_buf *out);
/*
 * The last event of an Anthropic stream must be "event: error" with {"type":"error",
 * "error":{...}}, and no message_stop anywhere; returns its "error".
 */
cJSON *tst_anthropic_last_error(const struct cm_buf *out);

/* ---- a translator, seen through void * so that one driver serves all ---- */

typedef int (*tst_request_fn)(const cJSON *req, cJSON **out, struct cp_tr_err *err);

struct tst_translator {
    const char *sub; /* its fixtures: translate/<sub>/<case>/ */
    /* compares two of its client streams (tst_assert_chat_sse_equal, ..._anthropic_...) */
    void (*assert_sse)(const char *got, size_t got_len, const char *want, size_t want_len,
                       const char *what);
    tst_request_fn request;
    int (*aggregate)(const char *sse, size_t len, const cJSON *req, cJSON **out,
                     struct cp_tr_usage *u, struct cp_tr_err *err);
    size_t stream_size; /* sizeof its stream state */
    int (*init)(void *st, const cJSON *req, struct cp_tr_err *err);
    int (*event)(void *st, const char *type, size_t type_len, const char *data, size_t data_len,
                 struct cm_buf *out, struct cp_tr_err *err);
    int (*finish)(void *st, struct cm_buf *out, struct cp_tr_err *err);
    void (*cleanup)(void *st);
    int (*usage)(const void *st, struct cp_tr_usage *u);
    bool (*has_content)(const void *st); /* NULL when the translator has none */
};

/*
 * Defines `static const struct tst_translator name` for the translator whose functions are
 * <prefix>_request, _aggregate and _stream_{init,event,finish,cleanup,usage}, with thin
 * wrappers taking void *; init and aggregate get the extra arguments `...` (id, created)
 * ahead of their outputs. @p assert_sse: its client streams' comparison; @p has_content: a
 * `bool f(const void *)` or NULL.
 */
#define TST_TRANSLATOR(name, prefix, sub_, assert_sse_, has_content_, ...)                         \
    static int name##_aggregate(const char *sse, size_t len, const cJSON *req, cJSON **out,        \
                                struct cp_tr_usage *u, struct cp_tr_err *err)                      \
    {                                                                                              \
        return prefix##_aggregate(sse, len, req, __VA_ARGS__, out, u, err);                        \
    }                                                                                              \
    static int name##_init(void *st, const cJSON *req, struct cp_tr_err *err)                      \
    {                                                                                              \
        return prefix##_stream_init(st, req, __VA_ARGS__, err);                                    \
    }                                                                                              \
    static int name##_event(void *st, const char *type, size_t type_len, const char *data,         \
                            size_t data_len, struct cm_buf *out, struct cp_tr_err *err)            \
    {                                                                                              \
        return prefix##_stream_event(st, type, type_len, data, data_len, out, err);                \
    }                                                                                              \
    static int name##_finish(void *st, struct cm_buf *out, struct cp_tr_err *err)                  \
    {                                                                                              \
        return prefix##_stream_finish(st, out, err);                                               \
    }                                                                                              \
    static void name##_cleanup(void *st)                                                           \
    {                                                                                              \
        prefix##_stream_cleanup(st);                                                               \
    }                                                                                              \
    static int name##_usage(const void *st, struct cp_tr_usage *u)                                 \
    {                                                                                              \
        return prefix##_stream_usage(st, u);                                                       \
    }                                                                                              \
    static const struct tst_translator name = {sub_,                                               \
                                               assert_sse_,                                        \
                                               prefix##_request,                                   \
                                               name##_aggregate,                                   \
                                               sizeof(struct prefix##_stream),                     \
                                               name##_init,                                        \
                                               name##_event,                                       \
                                               name##_finish,                                      \
                                               name##_cleanup,                                     \
                                               name##_usage,                                       \
                                               has_content_}

/** `static bool name(const void *st)` calling <prefix>_stream_has_content. */
#define TST_HAS_CONTENT(name, prefix)                                                              \
    static bool name(const void *st)                                                               \
    {                                                                                              \
        return prefix##_stream_has_content(st);                                                    \
    }

/* ---- driving the stream translator through cm_sse ---- */

struct tst_drive {
    const struct tst_translator *tr;
    void *st;             /* the translator's stream state (tr->stream_size bytes) */
    struct cm_buf out;    /* the client stream */
    struct cp_tr_err err; /* filled by the first failing event() or by finish() */
    int last_rc;          /* first non-OK code returned by event() */
    bool content_seen;    /* has_content() turned true */
    size_t content_at;    /* out.len just before the event that turned it true */
};

/*
 * Initialises @p d and the stream for @p req (has_content() must start false), then feeds
 * @p up through cm_sse in chunks: @p step bytes each (0 = whole), or, with @p cut, two
 * pieces cut at byte @p cut. Each chunk sits in its own exact-size heap block. An event cut
 * by the end of the stream is dropped (as the relay does). Returns the first failing
 * event()'s code, else finish()'s; the client stream is left in d->out. Release with
 * tst_drive_cleanup() whatever the result.
 */
int tst_run_stream_split(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                         const char *up, size_t len, size_t step, size_t cut);
/** tst_run_stream_split() fed whole. */
int tst_run_stream(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                   const char *up, size_t len);
void tst_drive_cleanup(struct tst_drive *d);

/*
 * @p up (whole) must give the client stream @p want (compared by tr->assert_sse, labelled
 * @p what); the stream is left in @p d for more checks (tst_drive_cleanup()).
 */
void tst_expect_stream(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                       const char *up, const char *want, const char *what);
/*
 * @p up (@p len bytes) must fail the stream with @p rc: d->err carries @p rc, @p status and
 * (unless NULL) @p code. The stream is left in @p d for more checks (tst_drive_cleanup()).
 */
void tst_expect_stream_error(struct tst_drive *d, const struct tst_translator *tr, const cJSON *req,
                             const char *up, size_t len, int rc, unsigned status, const char *code);
/*
 * @p up must fail aggregation with @p rc: err carries @p rc, @p status and (unless NULL)
 * @p msg; the output is left untouched.
 */
void tst_expect_aggregate_error(const struct tst_translator *tr, const cJSON *req, const char *up,
                                size_t len, int rc, unsigned status, const char *msg);

/*
 * For the request @p req (JSON text), case @p cs's upstream.sse cut short: at 0, step, 2 step, ...
 * up to where its @p terminal event starts (step: that offset / @p parts + 1), and inside its last
 * event. The stream fails with CM_ERR_TIMEOUT, 408, @p msg and (unless NULL) @p code, and @p check
 * (unless NULL) looks at each drive cut before the terminal event; aggregating up to each of those
 * cuts, up to the terminal event and nothing at all fails the same way.
 */
void tst_expect_early_end(const struct tst_translator *tr, const char *req, const char *cs,
                          const char *terminal, size_t parts, const char *msg, const char *code,
                          void (*check)(struct tst_drive *d));

/* How a Codex stream fails: response.failed or error events, and what each must map to. */
struct tst_codex_failure {
    const char *sse;
    unsigned status;
    const char *code;
    const char *msg;
};

#define TST_CODEX_FAILURES 6
extern const struct tst_codex_failure tst_codex_failures[TST_CODEX_FAILURES];

/*
 * For the request @p req (JSON text), each of tst_codex_failures, followed by more text, fails the
 * stream and the aggregation with CM_ERR_UPSTREAM, its status, code (stream) and msg (aggregation);
 * no text after the failure reaches the client; @p check looks at the stream of failure @p i.
 */
void tst_expect_codex_failures(const struct tst_translator *tr, const char *req,
                               void (*check)(struct tst_drive *d, size_t i));

/* Upstream events no Codex translator may accept: not JSON, not an object, cut short. */
#define TST_CODEX_BAD_EVENTS 4
extern const char *const tst_codex_bad_events[TST_CODEX_BAD_EVENTS];

/*
 * For the request @p req (JSON text), each of the @p n upstream streams @p bad fails the stream
 * and the aggregation with CM_ERR_UPSTREAM, 502 (the stream's code "bad_upstream_event"); the
 * client stream ends in an error (@p last_error: tst_chat_last_error or
 * tst_anthropic_last_error) whose member @p key, unless NULL, is the string @p value.
 */
void tst_expect_bad_events(const struct tst_translator *tr, const char *req, const char *const *bad,
                           size_t n, cJSON *(*last_error)(const struct cm_buf *out),
                           const char *key, const char *value);

/* ---- the fixture runner ---- */

struct tst_fixture_run {
    const struct tst_translator *tr;
    size_t cut_step;  /* the upstream stream is cut in two at bytes 1, 1 + cut_step, ... */
    bool cut_fast;    /* a cut run whose output is byte-identical to expected.sse passes */
    int min_cases;    /* at least this many case directories, */
    int min_requests; /* with expected.json, */
    int min_streams;  /* with upstream.sse and expected.sse, */
    int min_aggs;     /* with upstream.sse and expected_nonstream.json */
    /* more checks on the whole-stream run (its usage in *u), or NULL */
    void (*check_stream)(const struct tst_drive *d, const struct cp_tr_usage *u);
    /* more checks on a case's aggregation (its usage in *u), or NULL */
    void (*check_aggregate)(const char *name, const cJSON *in, const char *up, size_t up_len,
                            const cJSON *want, const struct cp_tr_usage *u);
};

/*
 * Every case under translate/<sub>/: in.json -> expected.json (request, compared as trees);
 * upstream.sse -> expected.sse (fed whole, byte by byte and cut in two; usage known and
 * total >= input after the whole run); upstream.sse -> expected_nonstream.json (aggregation,
 * total >= input).
 */
void tst_run_fixtures(const struct tst_fixture_run *run);

/* ---- request translation errors ---- */

int tst_translate_str(tst_request_fn fn, const char *json, cJSON **out, struct cp_tr_err *err);
/*
 * @p json must fail with @p want_rc naming @p field: err.rc, status 400, the field in the
 * message, type invalid_request_error, *out untouched.
 */
void tst_expect_field_error(tst_request_fn fn, const char *json, int want_rc, const char *field);

/*
 * The request @p head, @p count items joined by ",", @p tail (a "%d" in @p item stands for
 * the item's index) must fail with CM_ERR_LIMIT naming @p field: err.rc, status 400, *out
 * untouched.
 */
void tst_expect_limit(tst_request_fn fn, const char *head, const char *item, int count,
                      const char *tail, const char *field);

/** @p a followed by @p b in a new string (caller frees with cm_free()). */
char *tst_join(const char *a, const char *b);

/* ---- OOM walks (ASan checks that every failure frees what it took) ---- */

/*
 * One try of a walk: arms cm_alloc_fail_at(@p n) around the call under test only, and
 * returns its code; a translation's result tree goes to *out (NULL on failure).
 */
typedef int (*tst_oom_try_fn)(void *ud, long n, cJSON **out, struct cp_tr_err *err);

#define TST_OOM_UPSTREAM 1u  /* CM_ERR_UPSTREAM is a clean failure too (upstream data) */
#define TST_OOM_NO_RESULT 2u /* the try fills neither *out nor *err: check only the code */

/*
 * Tries n = 1, 2, ... below @p max until @p fn succeeds (frees its result) and returns that
 * n; fails the test if it never does. Each failure must be CM_ERR_NOMEM (or CM_ERR_UPSTREAM
 * with TST_OOM_UPSTREAM), leave *out NULL and report itself in *err (err.rc; status 500 for
 * CM_ERR_NOMEM).
 */
long tst_oom_walk(tst_oom_try_fn fn, void *ud, long max, unsigned flags);
/** The request translation of case @p cs's in.json; more than 20 allocations fail first. */
void tst_oom_request(const struct tst_translator *tr, const char *cs);
/*
 * The stream (fed whole through cm_sse, an unterminated last event dispatched) and the
 * aggregation of case @p cs's upstream.sse for its in.json; at least 20 allocations fail
 * first in each. A failure may also be CM_ERR_UPSTREAM.
 */
void tst_oom_stream_and_aggregate(const struct tst_translator *tr, const char *cs);

/* ---- upstream requests ---- */

/** The value of header @p name (exact case) in @p r, or NULL. */
const char *tst_header(const struct cp_upreq *r, const char *name);

#endif
