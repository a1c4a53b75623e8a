/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sse.c - the SSE parser (common/include/cm/sse.h) on arbitrary bytes.
 * Input: byte 0 = split seed (see fz_sse_feed), byte 1 = options (bit 0: comment callback,
 * bit 1: small cap of 256 bytes, bit 2: finish with CM_SSE_FINISH_DISPATCH, bit 3: stop
 * from the callback at the 3rd event and resume), the rest = the stream.
 * Invariants: the same stream split two ways gives the same events (type, data, id);
 * every parsed event is written back with cm_sse_write_event() (the writer on hostile values).
 */
#include "fuzz_util.h"

#include "cm/buf.h"
#include "cm/sse.h"

#include <string.h>

struct rec {
    struct cm_buf log; /* every event, serialised as lengths + bytes */
    int stop_at;       /* stop the feed at this event number (0 never) */
    int nev;
};

static void put(struct cm_buf *b, const char *p, size_t n)
{
    (void)cm_buf_append(b, &n, sizeof n);
    if (n)
        (void)cm_buf_append(b, p, n);
}

static int on_event(void *ud, const struct cm_sse_event *ev)
{
    struct rec *r = ud;
    FZ_ASSERT(ev->data != NULL);
    FZ_ASSERT(ev->type == NULL ? ev->type_len == 0 : ev->type_len > 0);
    put(&r->log, ev->type, ev->type_len);
    put(&r->log, ev->data, ev->data_len);
    put(&r->log, ev->id, ev->id_len);
    r->nev++;
    if (r->stop_at && r->nev == r->stop_at)
        return 7;
    return 0;
}

static int on_comment(void *ud, const char *text, size_t len)
{
    (void)ud;
    if (len)
        FZ_ASSERT(text != NULL);
    return 0;
}

/* Parses the whole stream; the events' log into r->log. Returns the final code. */
static int run(const char *s, size_t n, uint8_t seed, uint8_t opt, struct rec *r)
{
    struct cm_sse_parser p;
    size_t off = 0;
    int rc;
    cm_sse_parser_init(&p, (opt & 2) ? 256 : 0, on_event, (opt & 1) ? on_comment : NULL, r);
    r->stop_at = (opt & 8) ? 3 : 0;
    for (;;) {
        size_t used = 0;
        if (seed == 0) {
            rc = cm_sse_parser_feed(&p, s + off, n - off, &used);
        } else {
            /* the same chunking as fz_sse_feed, resumable after a stop */
            size_t step = 1 + ((size_t)seed * (off + 1)) % 61;
            if (step > n - off)
                step = n - off;
            rc = cm_sse_parser_feed(&p, s + off, step, &used);
            if (rc == 0)
                used = step;
        }
        if (rc == 7) {
            FZ_ASSERT(used <= n - off);
            off += used;
            continue;
        }
        if (rc != 0)
            break;
        off += used;
        if (off >= n)
            break;
    }
    if (rc == 0 || rc == 7)
        rc = cm_sse_parser_finish(&p, (opt & 4) ? CM_SSE_FINISH_DISPATCH : 0);
    else
        (void)cm_sse_parser_finish(&p, 0);
    (void)cm_sse_parser_retry(&p);
    (void)cm_sse_parser_last_id(&p, NULL);
    cm_sse_parser_cleanup(&p);
    return rc;
}

/* Writes each event back with the writer. */
static int rt_event(void *ud, const struct cm_sse_event *ev)
{
    struct cm_buf *b = ud;
    char type[64];
    const char *t = NULL;
    if (ev->type_len && ev->type_len < sizeof type && !memchr(ev->type, '\0', ev->type_len)) {
        memcpy(type, ev->type, ev->type_len);
        type[ev->type_len] = '\0';
        t = type;
    }
    (void)cm_sse_write_event(b, t, ev->data, ev->data_len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t seed = fz_byte(&in), opt = fz_byte(&in);
    struct rec a = {0}, b = {0};
    int rca, rcb;
    fz_init();
    cm_buf_init(&a.log, 64u << 20);
    cm_buf_init(&b.log, 64u << 20);
    rca = run((const char *)in.p, in.n, seed, opt, &a);
    rcb = run((const char *)in.p, in.n, 0, opt, &b);
    /* the split must not change the result (a cap hit may come at another event only when
     * a callback stop is involved; without one the outcome is identical) */
    if (!(opt & 8)) {
        FZ_ASSERT(rca == rcb);
        if (rca == 0) {
            FZ_ASSERT(a.log.len == b.log.len);
            FZ_ASSERT(a.log.len == 0 || memcmp(a.log.data, b.log.data, a.log.len) == 0);
        }
    }
    cm_buf_cleanup(&a.log);
    cm_buf_cleanup(&b.log);

    /* writer round trip */
    {
        struct cm_sse_parser p;
        struct cm_buf out;
        cm_buf_init(&out, 16u << 20);
        cm_sse_parser_init(&p, 0, rt_event, NULL, &out);
        (void)cm_sse_parser_feed(&p, (const char *)in.p, in.n, NULL);
        (void)cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH);
        cm_sse_parser_cleanup(&p);
        cm_buf_cleanup(&out);
    }
    return 0;
}
