/* SPDX-License-Identifier: MIT */
/*
 * sse.c - Server-Sent Events parser (WHATWG "interpreting an event stream") and writer.
 *
 * Design: feed() walks the chunk line by line, finding line ends with memchr (for '\n' and
 * '\r', each next position cached, so every byte is scanned once). A line whole in the chunk
 * is parsed in place and its data/event values are borrowed from the chunk; only what is
 * still pending when feed() returns is copied (val_own), and a line cut by the chunk end is
 * collected in _line. Thus an event whole in one chunk is never copied, and a long line fed
 * in tiny pieces costs amortised O(1) per byte. The cap is checked on logical lengths, so
 * the outcome (events, then maybe CM_ERR_LIMIT) does not depend on how the stream is cut.
 */
#include "cm/sse.h"

#include "cm/err.h"

#include <string.h>

#define KEEP_MAX ((size_t)64 << 10) /* buffers larger than this are freed after use */

static const unsigned char bom_bytes[3] = {0xEF, 0xBB, 0xBF};

/* ---- values that may borrow from the chunk ---- */

static void val_init(struct cm_sse__val *v, size_t max)
{
    cm_buf_init(&v->_b, max);
    v->_ref = NULL;
    v->_len = 0;
}

static const char *val_ptr(const struct cm_sse__val *v)
{
    if (v->_ref)
        return v->_ref;
    return v->_b.data ? v->_b.data : "";
}

static void val_clear(struct cm_sse__val *v)
{
    v->_ref = NULL;
    v->_len = 0;
    if (v->_b.cap > KEEP_MAX)
        cm_buf_cleanup(&v->_b);
    else
        cm_buf_reset(&v->_b);
}

/* moves a borrowed value into its own buffer (before the chunk goes away) */
static int val_own(struct cm_sse__val *v)
{
    int rc;
    if (!v->_ref)
        return CM_OK;
    cm_buf_reset(&v->_b);
    rc = cm_buf_append(&v->_b, v->_ref, v->_len);
    if (rc)
        return rc;
    v->_ref = NULL;
    return CM_OK;
}

static int val_set(struct cm_sse__val *v, const char *s, size_t n, int borrow)
{
    int rc;
    if (borrow) {
        cm_buf_reset(&v->_b);
        v->_ref = s;
        v->_len = n;
        return CM_OK;
    }
    v->_ref = NULL;
    v->_len = 0;
    cm_buf_reset(&v->_b);
    rc = cm_buf_append(&v->_b, s, n);
    if (rc)
        return rc;
    v->_len = n;
    return CM_OK;
}

/* appends "\n" + s to a value that already holds at least one line */
static int val_add_line(struct cm_sse__val *v, const char *s, size_t n)
{
    int rc = val_own(v);
    if (rc)
        return rc;
    rc = cm_buf_append(&v->_b, "\n", 1);
    if (rc)
        return rc;
    rc = cm_buf_append(&v->_b, s, n);
    if (rc) {
        v->_b.len--; /* drop the "\n" again */
        v->_b.data[v->_b.len] = '\0';
        return rc;
    }
    v->_len = v->_b.len;
    return CM_OK;
}

/* ---- parser state ---- */

/* bytes of event state held besides the current line */
static size_t held(const struct cm_sse_parser *p)
{
    return p->_data._len + p->_type._len + p->_id.len;
}

static int over_cap(const struct cm_sse_parser *p, size_t line_len)
{
    size_t h = held(p);
    return h > p->_max || line_len > p->_max - h;
}

static void clear_line(struct cm_sse_parser *p)
{
    if (p->_line.cap > KEEP_MAX)
        cm_buf_cleanup(&p->_line);
    else
        cm_buf_reset(&p->_line);
    p->_skip = 0;
}

static void clear_event(struct cm_sse_parser *p)
{
    val_clear(&p->_data);
    val_clear(&p->_type);
    p->_has_data = 0;
}

/* per-stream state back to "start of stream"; keeps last event ID, retry and settings */
static void reset_stream(struct cm_sse_parser *p)
{
    clear_line(p);
    clear_event(p);
    p->_err = CM_OK;
    p->_cr = 0;
    p->_bom = 0;
}

void cm_sse_parser_init(struct cm_sse_parser *p, size_t max_event, cm_sse_event_fn on_event,
                        cm_sse_comment_fn on_comment, void *ud)
{
    p->_on_event = on_event;
    p->_on_comment = on_comment;
    p->_ud = ud;
    p->_max = max_event ? max_event : CM_SSE_MAX_EVENT_DEFAULT;
    cm_buf_init(&p->_line, p->_max);
    val_init(&p->_data, p->_max);
    val_init(&p->_type, p->_max);
    cm_buf_init(&p->_id, p->_max);
    p->_retry = -1;
    p->_err = CM_OK;
    p->_has_data = 0;
    p->_cr = 0;
    p->_bom = 0;
    p->_skip = 0;
}

void cm_sse_parser_cleanup(struct cm_sse_parser *p)
{
    cm_buf_cleanup(&p->_line);
    cm_buf_cleanup(&p->_data._b);
    cm_buf_cleanup(&p->_type._b);
    cm_buf_cleanup(&p->_id);
    p->_data._ref = p->_type._ref = NULL;
    p->_data._len = p->_type._len = 0;
    p->_has_data = 0;
}

void cm_sse_parser_reset(struct cm_sse_parser *p)
{
    reset_stream(p);
}

const char *cm_sse_parser_last_id(const struct cm_sse_parser *p, size_t *len)
{
    if (len)
        *len = p->_id.len;
    return p->_id.len ? p->_id.data : NULL;
}

int64_t cm_sse_parser_retry(const struct cm_sse_parser *p)
{
    return p->_retry;
}

int cm_sse_event_type_is(const struct cm_sse_event *ev, const char *type)
{
    size_t n = strlen(type);
    if (!ev->type_len)
        return strcmp(type, "message") == 0;
    return ev->type_len == n && memcmp(ev->type, type, n) == 0;
}

/* ---- line processing ---- */

/*
 * A blank line: dispatch if a data line was seen, else only reset the event. Sets *stopped
 * when the callback said stop, so its value is told apart from the parser's own errors.
 */
static int dispatch(struct cm_sse_parser *p, int *stopped)
{
    struct cm_sse_event ev;
    int rc;

    if (!p->_has_data || !p->_on_event) {
        clear_event(p);
        return CM_OK;
    }
    ev.type_len = p->_type._len;
    ev.type = ev.type_len ? val_ptr(&p->_type) : NULL;
    ev.data_len = p->_data._len;
    ev.data = val_ptr(&p->_data);
    ev.id_len = p->_id.len;
    ev.id = ev.id_len ? p->_id.data : NULL;
    rc = p->_on_event(p->_ud, &ev);
    clear_event(p);
    if (rc)
        *stopped = 1;
    return rc;
}

/* "retry": only ASCII digits (at least one), else ignored; saturates */
static void set_retry(struct cm_sse_parser *p, const char *v, size_t n)
{
    int64_t r = 0;
    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return;
    for (size_t i = 0; i < n; i++) {
        int d = v[i] - '0';
        if (r > (INT64_MAX - d) / 10) {
            r = INT64_MAX;
            break;
        }
        r = r * 10 + d;
    }
    p->_retry = r;
}

/*
 * One complete line (terminator excluded). @p borrow: the line lies in the chunk being fed
 * (values may point into it); otherwise it lives in _line and values are copied.
 */
static int process_line(struct cm_sse_parser *p, const char *l, size_t n, int borrow, int *stopped)
{
    const char *colon, *v;
    size_t nlen, vlen;
    int rc = CM_OK;

    if (n == 0)
        return dispatch(p, stopped);
    if (l[0] == ':') {
        if (!p->_on_comment)
            return CM_OK;
        if (over_cap(p, n))
            return CM_ERR_LIMIT;
        rc = p->_on_comment(p->_ud, l + 1, n - 1);
        if (rc)
            *stopped = 1;
        return rc;
    }
    if (over_cap(p, n))
        return CM_ERR_LIMIT;
    colon = memchr(l, ':', n);
    nlen = colon ? (size_t)(colon - l) : n;
    v = colon ? colon + 1 : l + n;
    vlen = n - (size_t)(v - l);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (nlen == 4 && memcmp(l, "data", 4) == 0) {
        if (p->_has_data)
            rc = val_add_line(&p->_data, v, vlen);
        else
            rc = val_set(&p->_data, v, vlen, borrow);
        if (!rc)
            p->_has_data = 1;
    } else if (nlen == 5 && memcmp(l, "event", 5) == 0) {
        rc = val_set(&p->_type, v, vlen, borrow);
    } else if (nlen == 2 && memcmp(l, "id", 2) == 0) {
        /* the ID persists past this chunk and is short: always copied */
        if (!memchr(v, '\0', vlen)) {
            cm_buf_reset(&p->_id);
            rc = cm_buf_append(&p->_id, v, vlen);
        }
    } else if (nlen == 5 && memcmp(l, "retry", 5) == 0) {
        set_retry(p, v, vlen);
    }
    /* any other field is ignored */
    return rc;
}

/* Bytes of a line the chunk ends in the middle of. */
static int carry(struct cm_sse_parser *p, const char *s, size_t n)
{
    if (p->_skip)
        return CM_OK;
    if (p->_line.len == 0 && n && s[0] == ':' && !p->_on_comment) {
        p->_skip = 1; /* nobody wants this comment: don't buffer it */
        return CM_OK;
    }
    if (over_cap(p, p->_line.len) || n > p->_max - held(p) - p->_line.len)
        return CM_ERR_LIMIT;
    return cm_buf_append(&p->_line, s, n);
}

/* Eats a BOM at stream start (possibly split across chunks). */
static int eat_bom(struct cm_sse_parser *p, const char **sp, const char *end)
{
    const char *s = *sp;
    int rc = CM_OK;

    while (p->_bom < 3 && s < end) {
        if ((unsigned char)*s == bom_bytes[p->_bom]) {
            p->_bom++;
            s++;
            continue;
        }
        /* not a BOM after all: the bytes matched so far begin the first line */
        if (p->_bom)
            rc = carry(p, (const char *)bom_bytes, p->_bom);
        p->_bom = 3;
    }
    *sp = s;
    return rc;
}

int cm_sse_parser_feed(struct cm_sse_parser *p, const char *data, size_t len, size_t *consumed)
{
    const char *s = data, *end;
    const char *lf = NULL, *cr = NULL; /* next '\n' / '\r' at or after s (end: none) */
    int rc = CM_OK, stopped = 0;

    if (p->_err)
        return p->_err;
    if (!len) {
        if (consumed)
            *consumed = 0;
        return CM_OK;
    }
    end = data + len;
    if (p->_cr) { /* CR at the end of the last chunk: an LF here belongs to it */
        p->_cr = 0;
        if (*s == '\n')
            s++;
    }
    if (p->_bom < 3) {
        rc = eat_bom(p, &s, end);
        if (rc)
            goto fail;
    }
    while (s < end) {
        const char *eol;
        if (!lf || lf < s) {
            lf = memchr(s, '\n', (size_t)(end - s));
            if (!lf)
                lf = end;
        }
        if (!cr || cr < s) {
            cr = memchr(s, '\r', (size_t)(end - s));
            if (!cr)
                cr = end;
        }
        eol = lf < cr ? lf : cr;
        if (eol == end) {
            rc = carry(p, s, (size_t)(end - s));
            if (rc)
                goto fail;
            break;
        }
        if (p->_skip) {
            rc = CM_OK;
        } else if (p->_line.len) {
            rc = carry(p, s, (size_t)(eol - s));
            if (!rc)
                rc = process_line(p, p->_line.data, p->_line.len, 0, &stopped);
        } else {
            rc = process_line(p, s, (size_t)(eol - s), 1, &stopped);
        }
        clear_line(p);
        if (*eol == '\r' && eol + 1 == end)
            p->_cr = 1;
        s = eol + ((*eol == '\r' && eol + 1 < end && eol[1] == '\n') ? 2 : 1);
        if (rc && stopped) {
            /* values may still borrow from this chunk (a comment stop mid-event) */
            int orc = val_own(&p->_data);
            if (!orc)
                orc = val_own(&p->_type);
            if (orc) {
                rc = orc;
                goto fail;
            }
            if (consumed)
                *consumed = (size_t)(s - data);
            return rc;
        }
        if (rc)
            goto fail;
    }
    rc = val_own(&p->_data);
    if (!rc)
        rc = val_own(&p->_type);
    if (rc)
        goto fail;
    if (consumed)
        *consumed = len;
    return CM_OK;

fail:
    clear_line(p);
    clear_event(p);
    p->_err = rc;
    return rc;
}

int cm_sse_parser_finish(struct cm_sse_parser *p, unsigned flags)
{
    int rc = p->_err, stopped = 0;

    if (rc || !(flags & CM_SSE_FINISH_DISPATCH))
        goto out;
    /* end of stream ends the last line (a partial BOM alone is an unknown field: ignored) */
    if (p->_line.len && !p->_skip) {
        rc = process_line(p, p->_line.data, p->_line.len, 0, &stopped);
        if (rc)
            goto out;
    }
    rc = dispatch(p, &stopped);
out:
    reset_stream(p);
    return rc;
}

/* ---- writer ---- */

static void rollback(struct cm_buf *out, size_t len)
{
    out->len = len;
    if (out->data)
        out->data[len] = '\0';
}

/* one "<prefix><line>\n" per line of s, lines split at LF, CRLF or CR */
static int write_lines(struct cm_buf *out, const char *prefix, size_t plen, const char *s, size_t n)
{
    size_t i = 0;
    int rc;

    for (;;) {
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        rc = cm_buf_append(out, prefix, plen);
        if (!rc && j > i)
            rc = cm_buf_append(out, s + i, j - i);
        if (!rc)
            rc = cm_buf_append(out, "\n", 1);
        if (rc)
            return rc;
        if (j == n)
            return CM_OK;
        i = j + ((s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') ? 2 : 1);
    }
}

int cm_sse_write_event(struct cm_buf *out, const char *type, const char *data, size_t data_len)
{
    size_t start = out->len;
    int rc = CM_OK;

    if (type && strpbrk(type, "\r\n")) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (type && *type) {
        rc = cm_buf_append(out, "event: ", 7);
        if (!rc)
            rc = cm_buf_append_str(out, type);
        if (!rc)
            rc = cm_buf_append(out, "\n", 1);
        if (rc)
            goto out;
    }
    rc = write_lines(out, "data: ", 6, data ? data : "", data ? data_len : 0);
    if (!rc)
        rc = cm_buf_append(out, "\n", 1);
out:
    if (rc)
        rollback(out, start);
    return rc;
}

int cm_sse_write_comment(struct cm_buf *out, const char *text)
{
    size_t start = out->len;
    int rc;

    if (!text)
        text = "";
    rc = write_lines(out, ": ", 2, text, strlen(text));
    if (!rc)
        rc = cm_buf_append(out, "\n", 1);
    if (rc)
        rollback(out, start);
    return rc;
}

int cm_sse_write_done(struct cm_buf *out)
{
    return cm_buf_append(out, "data: [DONE]\n\n", 14);
}
