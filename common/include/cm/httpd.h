/* SPDX-License-Identifier: MIT */
/*
 * httpd.h - the HTTP server core over libmicrohttpd (epoll, a small thread pool,
 * suspend/resume; no thread per request).
 *
 * A route table maps (method, path pattern) to a handler. Patterns are '/'-separated:
 * a literal segment, ":name" (one non-empty segment, read with cm_httpd_req_param()),
 * or a final "*" (the rest, possibly empty, read as param "*"). A path that matches no
 * route gets 404; one that matches only under another method gets 405.
 *
 * Handlers run on a server thread once the whole body is in (bodies over max_body get
 * 413 and headers over max_header get 431 without reaching the handler) and must not
 * block. A handler either replies at once or keeps a reference (cm_httpd_req_ref())
 * and replies later from any thread; the connection is suspended meanwhile, at no
 * cost to the server threads. A reply is exactly one of cm_httpd_reply*(); later
 * attempts return CM_ERR_CLOSED.
 *
 * Streaming: cm_httpd_reply_stream() sends whatever a cm_pipe receives, chunked, as it
 * arrives; the connection is suspended while the pipe is empty.
 *
 * Disconnects: MHD cannot see a client close a suspended connection, so a watchdog
 * thread polls suspended connections (POLLRDHUP) every 250 ms; a client that went away
 * ends its request: its pipe is marked reader-gone (which wakes the producer so it can
 * abort the upstream transfer) and the close callback runs with aborted = 1.
 *
 * Every request gets an id (cm_httpd_req_id(), also sent as X-Request-Id) and, if
 * access_log is on, one INFO line when it ends: method, path, status, bytes, ms.
 */
#ifndef CM_HTTPD_H
#define CM_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "cm/pipe.h"

#define CM_HTTPD_MAX_BODY_DEFAULT ((size_t)32 << 20)
#define CM_HTTPD_MAX_HEADER_DEFAULT ((size_t)16 << 10)

struct cm_httpd;
struct cm_httpd_req;

struct cm_httpd_opts {
    const char *bind;        /* IPv4 or IPv6 literal; NULL: 127.0.0.1 */
    uint16_t port;           /* 0: an ephemeral port, see cm_httpd_port() */
    unsigned threads;        /* server threads; 0: one per CPU */
    size_t max_body;         /* 0: CM_HTTPD_MAX_BODY_DEFAULT */
    size_t max_header;       /* total header bytes; 0: CM_HTTPD_MAX_HEADER_DEFAULT */
    unsigned max_conns;      /* 0: 16384 */
    unsigned idle_timeout_s; /* idle keep-alive connections are closed after it; 0: 120 */
    int access_log;          /* 1: one INFO line per request */
};

/** Runs on a server thread with the complete request. */
typedef void (*cm_httpd_handler_fn)(struct cm_httpd_req *req, void *ud);
/** Runs exactly once when a request is over (any thread); aborted = client went away. */
typedef void (*cm_httpd_close_fn)(struct cm_httpd_req *req, int aborted, void *ud);

/** Creates a server (not listening yet). CM_ERR_NOMEM, CM_ERR_INVAL (bad bind address). */
int cm_httpd_new(const struct cm_httpd_opts *opts, struct cm_httpd **out);
/** Adds a route; @p method "*" matches any. Before cm_httpd_start() only. Strings are copied. */
int cm_httpd_route(struct cm_httpd *s, const char *method, const char *pattern,
                   cm_httpd_handler_fn fn, void *ud);
/** Binds and starts the threads. CM_ERR_IO with a log line naming the address on failure. */
int cm_httpd_start(struct cm_httpd *s);
/** The bound port (useful with port 0). */
uint16_t cm_httpd_port(const struct cm_httpd *s);
/** Ends every suspended request (as aborted), stops the threads, frees. NULL is a no-op. */
void cm_httpd_free(struct cm_httpd *s);

/* ---- request accessors: borrowed strings, valid while the caller holds the request
 * (during the handler, or until cm_httpd_req_unref()) unless noted ---- */
const char *cm_httpd_req_id(const struct cm_httpd_req *r);
const char *cm_httpd_req_method(const struct cm_httpd_req *r);
/** The path without the query string, as sent (not percent-decoded). */
const char *cm_httpd_req_path(const struct cm_httpd_req *r);
/** The raw query string without '?', "" if none. */
const char *cm_httpd_req_query(const struct cm_httpd_req *r);
/** A route parameter (":name" or "*"), NULL if the route has none of that name. */
const char *cm_httpd_req_param(const struct cm_httpd_req *r, const char *name);
/** The client's IP address as text. */
const char *cm_httpd_req_peer(const struct cm_httpd_req *r);
/** The request body (NUL-terminated; may contain NULs), length in *len. Never NULL. */
const char *cm_httpd_req_body(const struct cm_httpd_req *r, size_t *len);
/** Header value by case-insensitive name, or NULL. Handler thread, during the handler only. */
const char *cm_httpd_req_header(struct cm_httpd_req *r, const char *name);
/** Decoded query argument, or NULL. Handler thread, during the handler only. */
const char *cm_httpd_req_arg(struct cm_httpd_req *r, const char *name);
typedef int (*cm_httpd_header_fn)(const char *name, const char *value, void *ud);
/** Calls @p fn for each request header in order; stops when it returns non-zero. Handler only. */
void cm_httpd_req_headers_each(struct cm_httpd_req *r, cm_httpd_header_fn fn, void *ud);

/** Keeps the request alive past the handler (for a later reply). Any thread. */
void cm_httpd_req_ref(struct cm_httpd_req *r);
void cm_httpd_req_unref(struct cm_httpd_req *r);
/** Sets the close callback (see cm_httpd_close_fn). Call it in the handler. */
void cm_httpd_req_on_close(struct cm_httpd_req *r, cm_httpd_close_fn fn, void *ud);
/**
 * Adds text to the access log line of this request (e.g. "model=x"); copied. Any thread,
 * until the close callback has returned (the line is written after it).
 */
void cm_httpd_req_note(struct cm_httpd_req *r, const char *note);
/** The status of the reply set so far (0 before any). Any thread. */
unsigned cm_httpd_req_status(struct cm_httpd_req *r);
/** 1 once the client is known to be gone. Any thread. */
int cm_httpd_req_aborted(struct cm_httpd_req *r);

/* ---- replies: exactly one per request, from any thread ---- */
/** Adds a response header to the coming reply (copied); CM_ERR_CLOSED once a reply is set. */
int cm_httpd_add_header(struct cm_httpd_req *r, const char *name, const char *value);
/** Replies with a copy of @p body. */
int cm_httpd_reply(struct cm_httpd_req *r, unsigned status, const char *content_type,
                   const void *body, size_t len);
/** Replies with @p body, taking ownership of it (freed with cm_free), also on failure. */
int cm_httpd_reply_take(struct cm_httpd_req *r, unsigned status, const char *content_type,
                        char *body, size_t len);
/**
 * OpenAI-style error: {"error":{"message":...,"type":...,"param":null,"code":...}}.
 * @p code may be NULL (JSON null). Also logs the message at WARN (5xx: ERROR).
 */
int cm_httpd_reply_error(struct cm_httpd_req *r, unsigned status, const char *type,
                         const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/**
 * Streams the pipe's bytes as the body (chunked) until it ends. Takes its own reference
 * on @p p and installs the pipe's reader hooks; the caller keeps the writer side.
 */
int cm_httpd_reply_stream(struct cm_httpd_req *r, unsigned status, const char *content_type,
                          struct cm_pipe *p);
/**
 * The usual start of a streamed answer: a new pipe of @p cap bytes (0: 64 KiB) whose writer
 * hook is @p wake(@p ud) (e.g. cm_httpc_slot_wake), then a 200 text/event-stream reply with
 * Cache-Control: no-cache and X-Accel-Buffering: no fed by it. *@p out gets the writer's
 * reference whenever the pipe was made (also when the reply failed: CM_ERR_CLOSED, the client
 * is gone); CM_ERR_NOMEM with *@p out NULL when it was not.
 */
int cm_httpd_reply_sse(struct cm_httpd_req *r, size_t cap, cm_pipe_hook_fn wake, void *ud,
                       struct cm_pipe **out);

#endif
