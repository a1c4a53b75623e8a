/* SPDX-License-Identifier: MIT */
/*
 * httpc.h - the HTTP client core: one libcurl multi handle driven by one I/O thread.
 *
 * Transfers are started from any thread; all their callbacks run on the I/O thread and
 * must not block (they may take short locks, e.g. a cm_pipe's). The I/O thread runs
 * epoll with curl_multi_socket_action, so its cost per wake-up is proportional to the
 * sockets that are ready, not to the number of open transfers.
 *
 * Per transfer: connect / first-byte / idle / total timeouts, a response size cap,
 * an optional proxy (http://, https://, socks5://, socks5h://; environment proxies are
 * never used implicitly), and keep-alive reuse through the multi's connection cache.
 *
 * Body delivery: with an on_data callback the body streams to it (returning
 * CM_ERR_AGAIN pauses the transfer without consuming the bytes; cm_httpc_xfer_resume()
 * redelivers them); without one the body is buffered (up to max_response) and handed
 * to on_done.
 *
 * Ownership: a transfer is reference counted. httpc holds one reference until on_done
 * has returned; cm_httpc_start() can hand the caller one more (release it with
 * cm_httpc_xfer_unref()). on_done runs exactly once per started transfer.
 */
#ifndef CM_HTTPC_H
#define CM_HTTPC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct cm_httpc;
struct cm_httpc_xfer;

struct cm_httpc_opts {
    unsigned max_host_conns; /* 0: no limit */
    unsigned conn_cache;     /* idle connections kept for reuse; 0: 256 */
};

struct cm_httpc_request {
    const char *method;         /* "GET", "POST", ...; NULL: GET, or POST when body set */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" lines, copied */
    size_t n_headers;
    const void *body; /* copied; may be NULL */
    size_t body_len;
    const char *proxy;          /* NULL or "": direct */
    long connect_timeout_ms;    /* 0: 10 s */
    long first_byte_timeout_ms; /* until the response head; 0: none */
    long idle_timeout_ms;       /* max gap between received bytes (not while paused); 0: none */
    long total_timeout_ms;      /* 0: none */
    size_t max_response;        /* body cap; 0: 64 MiB */
    const char *log_id;         /* request id for log lines; copied; may be NULL */
};

/** The response head; valid during the callback it is passed to. */
struct cm_httpc_head {
    long status;
    const char *raw; /* "Name: value\0Name: value\0..." (final response only) */
    size_t raw_len;
};

/** Case-insensitive header lookup in a head; borrowed pointer or NULL. */
const char *cm_httpc_head_get(const struct cm_httpc_head *h, const char *name);

struct cm_httpc_result {
    int rc;      /* CM_OK, CM_ERR_TIMEOUT, CM_ERR_UPSTREAM, CM_ERR_LIMIT,
                    CM_ERR_CLOSED (cancelled), or an on_data error */
    long status; /* HTTP status, 0 if no response head */
    const struct cm_httpc_head *head;
    const char *body; /* buffered mode only (NUL-terminated); borrowed */
    size_t body_len;
    uint64_t bytes_in; /* body bytes received */
    const char *error; /* curl's message or ours, never NULL */
};

struct cm_httpc_cbs {
    /** Response head arrived. Return CM_OK to go on; anything else cancels with that rc. */
    int (*on_head)(struct cm_httpc_xfer *x, const struct cm_httpc_head *h, void *ud);
    /** Body bytes. CM_OK: consumed. CM_ERR_AGAIN: paused, not consumed. Else abort. */
    int (*on_data)(struct cm_httpc_xfer *x, const char *p, size_t n, void *ud);
    /** The end, exactly once. The transfer's ud is not used by httpc afterwards. */
    void (*on_done)(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud);
};

/** Starts the I/O thread. @p opts may be NULL. CM_ERR_NOMEM / CM_ERR_IO. */
int cm_httpc_new(const struct cm_httpc_opts *opts, struct cm_httpc **out);
/** Cancels every transfer (their on_done runs with CM_ERR_CLOSED), joins the thread, frees. */
void cm_httpc_free(struct cm_httpc *c);

/**
 * Queues a transfer (any thread). On CM_OK on_done will run exactly once; on an error
 * return no callback runs. If @p out is not NULL it receives a reference the caller
 * must drop with cm_httpc_xfer_unref().
 */
int cm_httpc_start(struct cm_httpc *c, const struct cm_httpc_request *rq,
                   const struct cm_httpc_cbs *cbs, void *ud, struct cm_httpc_xfer **out);
/** Unpauses a transfer whose on_data returned CM_ERR_AGAIN (any thread; no-op when done). */
void cm_httpc_xfer_resume(struct cm_httpc_xfer *x);
/** Aborts a transfer (any thread); on_done follows with CM_ERR_CLOSED unless already done. */
void cm_httpc_xfer_cancel(struct cm_httpc_xfer *x);
void cm_httpc_xfer_ref(struct cm_httpc_xfer *x);
void cm_httpc_xfer_unref(struct cm_httpc_xfer *x);
/** Number of transfers started and not yet done (approximate; for tests and stats). */
unsigned cm_httpc_active(struct cm_httpc *c);

/*
 * A slot: the reference to a request's current transfer that other threads reach through
 * (a server thread's close callback cancels it, a pipe's writer hook resumes it) while the
 * owner replaces it attempt after attempt. A mutex guards the pointer; the calls are short.
 * Caller-owned struct (embed it); fields are private.
 */
struct cm_httpc_slot {
    pthread_mutex_t _mu;
    struct cm_httpc_xfer *_x;
};

void cm_httpc_slot_init(struct cm_httpc_slot *s);
/** Drops the reference held (if any) and destroys the mutex. */
void cm_httpc_slot_cleanup(struct cm_httpc_slot *s);
/** Holds @p x (takes over the caller's reference from cm_httpc_start(); NULL: none),
 *  dropping the previous one. */
void cm_httpc_slot_set(struct cm_httpc_slot *s, struct cm_httpc_xfer *x);
/** cm_httpc_xfer_resume() / cm_httpc_xfer_cancel() on the held transfer, if any. */
void cm_httpc_slot_resume(struct cm_httpc_slot *s);
void cm_httpc_slot_cancel(struct cm_httpc_slot *s);
/** A cm_pipe_hook_fn (writer wake) resuming the transfer of the slot @p slot. */
void cm_httpc_slot_wake(void *slot);

#endif
