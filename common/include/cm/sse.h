/* SPDX-License-Identifier: MIT */
/*
 * sse.h - incremental Server-Sent Events (text/event-stream) parser and writer.
 *
 * Parser: feed it a stream's bytes in chunks of any size; it calls back once per complete
 * event, following the WHATWG HTML "interpreting an event stream" rules: lines end in CRLF,
 * LF or CR (a CR ending one chunk and an LF starting the next are one line end); a leading
 * UTF-8 BOM is skipped; ':' lines are comments; "name:value" drops one space after the
 * colon; a line without a colon is a field with an empty value; data lines are joined with
 * "\n"; a blank line dispatches the event if any data line was seen. Bytes are not decoded:
 * values are passed on as raw bytes (UTF-8 is not checked). Pure: no I/O, clock or threads.
 * Writer: appends well-formed events, comments and the OpenAI "data: [DONE]" to a cm_buf.
 * Not thread-safe per parser: one owner at a time; distinct parsers are independent.
 */
#ifndef CM_SSE_H
#define CM_SSE_H

#include "cm/buf.h"

#include <stddef.h>
#include <stdint.h>

/* max_event used when cm_sse_parser_init() gets 0 */
#define CM_SSE_MAX_EVENT_DEFAULT ((size_t)4 << 20)

/* Flags for cm_sse_parser_finish(). */
#define CM_SSE_FINISH_DISPATCH 1u /* dispatch an event left unterminated at end of stream */

/*
 * One event, as handed to the callback. Every pointer is borrowed: valid only during the
 * callback (it may point into the chunk being fed or into the parser). Slices are NOT
 * NUL-terminated and data may contain NUL bytes: always use the lengths.
 */
struct cm_sse_event {
    const char *type; /* the "event:" value; NULL (type_len 0) when none or empty, which per
                         spec means "message": compare with cm_sse_event_type_is() */
    size_t type_len;
    const char *data; /* the data lines joined with "\n" (no trailing "\n"); never NULL */
    size_t data_len;
    const char *id; /* the last event ID seen on this stream so far (it persists from event
                       to event, as in the spec); NULL (id_len 0) if none or empty */
    size_t id_len;
};

/** Receives one event. Return 0 to go on; non-zero stops the feed, which returns that value. */
typedef int (*cm_sse_event_fn)(void *ud, const struct cm_sse_event *ev);
/**
 * Receives one comment line: @p text is what follows the ':' (leading space kept), borrowed
 * for the call, not NUL-terminated. Return 0 to go on; non-zero stops like cm_sse_event_fn.
 */
typedef int (*cm_sse_comment_fn)(void *ud, const char *text, size_t len);

/*
 * A parsed value that borrows from the chunk being fed while it can, else lives in _b.
 * Private to sse.c.
 */
struct cm_sse__val {
    struct cm_buf _b; /* owned copy, used once the value outlives its chunk */
    const char *_ref; /* borrowed bytes in the current chunk, or NULL: the value is in _b */
    size_t _len;      /* the value's length, wherever it lives */
};

/*
 * Caller-owned parser (embed it or put it on the stack); init/cleanup pair. All fields are
 * private. Memory: the parser holds at most max_event bytes of event state (see
 * cm_sse_parser_init()); its buffers keep their storage between events up to 64 KiB each
 * and free anything larger after use.
 */
struct cm_sse_parser {
    cm_sse_event_fn _on_event;
    cm_sse_comment_fn _on_comment; /* NULL: comments are skipped without being buffered */
    void *_ud;
    size_t _max;              /* cap on line + data + type + id held at once */
    struct cm_buf _line;      /* the start of a line begun in an earlier chunk */
    struct cm_sse__val _data; /* data buffer (lines joined by "\n", no trailing "\n") */
    struct cm_sse__val _type; /* event type buffer */
    struct cm_buf _id;        /* last event ID buffer */
    int64_t _retry;           /* reconnection time (ms) from the last valid retry:, or -1 */
    int _err;                 /* non-zero: the parser failed with this code (see feed) */
    unsigned char _has_data;  /* a data: line was seen since the last dispatch */
    unsigned char _cr;        /* the previous chunk ended in CR: skip an LF at the next start */
    unsigned char _bom;       /* BOM bytes matched at stream start (0-2); 3: past the start */
    unsigned char _skip;      /* the current line is an unheard comment: drop its bytes */
};

/**
 * Prepares @p p for a new stream. @p on_event (required) gets each dispatched event;
 * @p on_comment (may be NULL) gets comment lines; @p ud is passed to both, never touched.
 * @p max_event caps the bytes the parser holds at one time: the current line plus the
 * pending event's data, its type and the last event ID (0 = CM_SSE_MAX_EVENT_DEFAULT). A
 * stream whose event (or single line) needs more fails with CM_ERR_LIMIT. Comment lines
 * count only when @p on_comment is set (otherwise they are skipped unbuffered, at any size).
 * Allocates nothing; cannot fail.
 */
void cm_sse_parser_init(struct cm_sse_parser *p, size_t max_event, cm_sse_event_fn on_event,
                        cm_sse_comment_fn on_comment, void *ud);

/** Frees the parser's storage (not the struct). Safe to call twice; re-init before reuse. */
void cm_sse_parser_cleanup(struct cm_sse_parser *p);

/**
 * Parses the next @p len bytes of the stream (@p data may be NULL when len is 0). Calls
 * on_event for each event completed by these bytes, in order, and on_comment per comment.
 * The data and type of an event lying whole within one chunk are not copied (an "id:"
 * value always is); bytes of an event that spans chunks are copied once. Runs in time
 * linear in @p len, however the stream is split.
 *
 * Returns:
 *  - CM_OK: all bytes consumed (@p consumed, if not NULL, is set to @p len).
 *  - the callback's non-zero value when a callback stops the parse: the event (or comment)
 *    was delivered and the parser stands just after the line that produced it; @p consumed
 *    (if not NULL) gets the number of bytes used, so the caller may feed the rest later.
 *  - CM_ERR_LIMIT (the cap was hit) or CM_ERR_NOMEM: the parser is now FAILED: the pending
 *    event and partial line are dropped, no more callbacks are made, and every later feed
 *    returns the same code, until cm_sse_parser_finish() or cm_sse_parser_reset().
 *    Events completed earlier in the same chunk have been delivered. @p consumed untouched.
 * @p data is borrowed for the call only.
 */
int cm_sse_parser_feed(struct cm_sse_parser *p, const char *data, size_t len, size_t *consumed);

/**
 * Ends the stream. By default (flags 0) this follows the spec: an event not terminated by
 * a blank line, and a last line with no line end, are discarded. With
 * CM_SSE_FINISH_DISPATCH the end of stream also ends the last line and the event, so an
 * event with data is dispatched: some LLM upstreams close after "data: [DONE]\n" or even
 * "data: [DONE]" without the final blank line.
 * Returns CM_OK, the callback's non-zero value, or the code of an earlier failure (the
 * FAILED state). Whatever it returns, the parser is then reset as by cm_sse_parser_reset().
 */
int cm_sse_parser_finish(struct cm_sse_parser *p, unsigned flags);

/**
 * Starts a new stream on the same parser (a reconnection): drops the partial line, the
 * pending event and any FAILED state, and expects a BOM again. Keeps the callbacks, the
 * cap, the last event ID and the retry time (as an EventSource does across reconnects).
 */
void cm_sse_parser_reset(struct cm_sse_parser *p);

/**
 * The last event ID buffer (what a reconnect would send as Last-Event-ID): borrowed, valid
 * until the next feed/finish/cleanup, not NUL-terminated. Returns NULL (and *len 0) if none.
 * @p len may be NULL.
 */
const char *cm_sse_parser_last_id(const struct cm_sse_parser *p, size_t *len);

/** The reconnection time in milliseconds from the last valid "retry:" line, or -1 if none.
 *  Values past INT64_MAX saturate. */
int64_t cm_sse_parser_retry(const struct cm_sse_parser *p);

/**
 * 1 if @p ev's type equals the NUL-terminated @p type, where an absent type equals
 * "message" (as the spec dispatches it); else 0. Pure.
 */
int cm_sse_event_type_is(const struct cm_sse_event *ev, const char *type);

/**
 * Appends one event to @p out: "event: <type>\n" if @p type is neither NULL nor "", then
 * one "data: <line>\n" per line of @p data (split at LF, CRLF and CR: an SSE stream cannot
 * carry a CR, so a parser reads each of them back as "\n"; empty data gives one empty data
 * line), then the blank line. @p data may be NULL when @p data_len is 0.
 * Returns CM_OK; CM_ERR_INVAL if @p type contains CR or LF; CM_ERR_LIMIT / CM_ERR_NOMEM
 * from the buffer. On error @p out is unchanged. Thread-safe for distinct buffers.
 */
int cm_sse_write_event(struct cm_buf *out, const char *type, const char *data, size_t data_len);

/**
 * Appends a comment and a blank line: ": keep-alive\n\n" for @p text "keep-alive" (NULL is
 * ""). Each line of a multi-line text gets its own ": " line. Errors as cm_sse_write_event().
 */
int cm_sse_write_comment(struct cm_buf *out, const char *text);

/** Appends the OpenAI end-of-stream marker "data: [DONE]\n\n". Errors as cm_sse_write_event(). */
int cm_sse_write_done(struct cm_buf *out);

#endif
