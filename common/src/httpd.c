/* SPDX-License-Identifier: MIT */
/*
 * httpd.c - libmicrohttpd glue: routing, body/header caps, the async reply state
 * machine (suspend while a handler's work is in flight, resume on reply), streamed
 * responses from a cm_pipe, the disconnect watchdog and the access log.
 *
 * Request life: MHD's URI callback creates the request (ref 1, owned by MHD until
 * the completion callback). State changes are made under the request's own mutex.
 *
 *   READING --handler replied--> SENDING
 *   READING --handler returned without a reply--> WAITING (suspended)
 *   WAITING --reply or client gone (any thread)--> RESUMING --server thread--> SENDING
 *   any --MHD completion callback--> DONE
 *
 * MHD_suspend_connection is only called on server threads (access handler, content
 * reader); MHD_resume_connection is called from any thread under the request mutex
 * and only for a connection we suspended, so a wake-up is never lost or doubled.
 */
#include "cm/httpd.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/sys.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARAMS 8
#define WATCH_MS 250

enum rstate { ST_READING, ST_WAITING, ST_RESUMING, ST_SENDING, ST_DONE };

struct route {
    char *method;
    char *pattern;
    cm_httpd_handler_fn fn;
    void *ud;
};

struct cm_httpd_req {
    atomic_int refs;
    pthread_mutex_t lock;
    struct cm_httpd *srv;
    struct MHD_Connection *conn;
    enum rstate st;
    char id[20];
    char *uri;   /* raw request target, owned */
    char *path;  /* owned copy of the path part */
    char *query; /* points into uri or "" */
    char *segs;  /* owned: path split into NUL-separated segments for params */
    const char *method;
    const struct route *route;
    int no_route; /* 404 or 405 */
    const char *pnames[MAX_PARAMS];
    const char *pvals[MAX_PARAMS];
    int nparams;
    char peer[INET6_ADDRSTRLEN];
    struct cm_buf body;
    int too_big;
    int hdr_checked;
    /* reply */
    struct MHD_Response *resp;
    unsigned status;
    struct cm_buf extra_hdrs; /* "name\0value\0"... */
    struct cm_pipe *pipe;
    int stream_parked;
    uint64_t bytes_out;
    /* end */
    int aborted;
    cm_httpd_close_fn on_close;
    void *close_ud;
    int wd_slot; /* index in the registry; guarded by srv->wd_lock */
    int wd_reg;  /* registered once already; touched by the server thread only */
    int fd;
    struct cm_buf note;
    int64_t t0;
};

struct cm_httpd {
    struct cm_httpd_opts o;
    struct MHD_Daemon *mhd;
    struct route *routes;
    size_t nroutes;
    uint16_t port;
    char id_prefix[9];
    atomic_ulong id_seq;
    /* watchdog registry */
    pthread_mutex_t wd_lock;
    struct cm_httpd_req **wd_slots;
    size_t wd_cap;
    size_t wd_used; /* slots in use */
    pthread_t wd_thr;
    int wd_started;
    atomic_int stopping;
    atomic_int draining; /* cm_httpd_free() has begun: new connections are refused */
    pthread_cond_t wd_cond;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- request lifetime ---- */

void cm_httpd_req_ref(struct cm_httpd_req *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void cm_httpd_req_unref(struct cm_httpd_req *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->resp)
        MHD_destroy_response(r->resp);
    cm_pipe_unref(r->pipe);
    cm_buf_cleanup(&r->body);
    cm_buf_cleanup(&r->extra_hdrs);
    cm_buf_cleanup(&r->note);
    cm_free(r->uri);
    cm_free(r->path);
    cm_free(r->segs);
    pthread_mutex_destroy(&r->lock);
    cm_free(r);
}

/* ---- watchdog: finds clients that went away while their connection is suspended ---- */

static void wd_register(struct cm_httpd_req *r) /* server thread of r */
{
    struct cm_httpd *s = r->srv;
    if (r->fd < 0 || r->wd_reg)
        return;
    r->wd_reg = 1; /* owner-thread flag: keeps the registry lock off the per-event path */
    pthread_mutex_lock(&s->wd_lock);
    if (r->wd_slot >= 0) {
        pthread_mutex_unlock(&s->wd_lock);
        return;
    }
    if (s->wd_used == s->wd_cap) {
        size_t ncap = s->wd_cap ? s->wd_cap * 2 : 256;
        struct cm_httpd_req **n = cm_realloc(s->wd_slots, ncap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->wd_lock);
            return; /* unwatched: a disconnect is then only seen on the next write */
        }
        s->wd_slots = n;
        s->wd_cap = ncap;
    }
    r->wd_slot = (int)s->wd_used;
    s->wd_slots[s->wd_used++] = r;
    cm_httpd_req_ref(r);
    pthread_mutex_unlock(&s->wd_lock);
}

static void wd_unregister(struct cm_httpd_req *r)
{
    struct cm_httpd *s = r->srv;
    int had = 0;
    pthread_mutex_lock(&s->wd_lock);
    if (r->wd_slot >= 0) {
        size_t i = (size_t)r->wd_slot;
        struct cm_httpd_req *last = s->wd_slots[--s->wd_used];
        s->wd_slots[i] = last;
        last->wd_slot = (int)i;
        r->wd_slot = -1;
        had = 1;
    }
    pthread_mutex_unlock(&s->wd_lock);
    if (had)
        cm_httpd_req_unref(r);
}

/* The client is gone: make the request end (any thread). */
static void client_gone(struct cm_httpd_req *r)
{
    struct cm_pipe *p = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->st == ST_DONE || r->aborted) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    r->aborted = 1;
    if (r->st == ST_WAITING) {
        r->st = ST_RESUMING;
        MHD_resume_connection(r->conn);
    }
    if (r->pipe) {
        p = r->pipe;
        cm_pipe_ref(p);
    }
    pthread_mutex_unlock(&r->lock);
    if (p) {
        /* wakes the producer (abort upstream) and the parked reader (ends the response) */
        cm_pipe_reader_gone(p);
        cm_pipe_unref(p);
    }
}

static void *wd_main(void *arg)
{
    struct cm_httpd *s = arg;
    struct pollfd *pfds = NULL;
    struct cm_httpd_req **reqs = NULL;
    size_t cap = 0;

    while (!atomic_load(&s->stopping)) {
        size_t n = 0;
        struct timespec ts;

        pthread_mutex_lock(&s->wd_lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wd_cond, &s->wd_lock, &ts);
        if (s->wd_used > cap) {
            size_t ncap = s->wd_used * 2;
            struct pollfd *np = cm_realloc(pfds, ncap * sizeof *np);
            struct cm_httpd_req **nr;
            if (np)
                pfds = np;
            nr = np ? cm_realloc(reqs, ncap * sizeof *nr) : NULL;
            if (nr) {
                reqs = nr;
                cap = ncap;
            }
        }
        for (size_t i = 0; i < s->wd_used && n < cap; i++) {
            reqs[n] = s->wd_slots[i];
            cm_httpd_req_ref(reqs[n]);
            pfds[n].fd = reqs[n]->fd;
            pfds[n].events = POLLRDHUP;
            pfds[n].revents = 0;
            n++;
        }
        pthread_mutex_unlock(&s->wd_lock);
        if (n && poll(pfds, n, 0) > 0) {
            for (size_t i = 0; i < n; i++)
                if (pfds[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
                    client_gone(reqs[i]);
        }
        for (size_t i = 0; i < n; i++)
            cm_httpd_req_unref(reqs[i]);
    }
    cm_free(pfds);
    cm_free(reqs);
    return NULL;
}

/* ---- routing ---- */

/* Splits r->path into segments in r->segs and matches routes. */
static void route_request(struct cm_httpd *s, struct cm_httpd_req *r)
{
    int method_mismatch = 0;

    for (size_t k = 0; k < s->nroutes; k++) {
        const struct route *rt = &s->routes[k];
        const char *pp = rt->pattern, *up = r->path;
        char *w;
        int np = 0, ok = 1;

        /* segments of the path are copied to r->segs on demand for params */
        memcpy(r->segs, r->path, strlen(r->path) + 1);
        w = r->segs;
        while (ok) {
            const char *pe, *ue;
            size_t pl, ul;
            if (*pp == '/')
                pp++;
            if (*up == '/')
                up++;
            if (!*pp) {
                ok = !*up;
                break;
            }
            pe = strchr(pp, '/');
            pl = pe ? (size_t)(pe - pp) : strlen(pp);
            if (pl == 1 && *pp == '*' && !pe) {
                if (np < MAX_PARAMS) {
                    r->pnames[np] = "*";
                    r->pvals[np++] = w + (up - r->path);
                }
                break;
            }
            ue = strchr(up, '/');
            ul = ue ? (size_t)(ue - up) : strlen(up);
            if (*pp == ':') {
                if (ul == 0 || np >= MAX_PARAMS) {
                    ok = 0;
                    break;
                }
                r->pnames[np] = pp + 1; /* name runs to pl - 1; stored NUL-less, see param() */
                r->pvals[np++] = w + (up - r->path);
                w[(up - r->path) + ul] = '\0';
            } else if (pl != ul || memcmp(pp, up, pl) != 0) {
                ok = 0;
                break;
            }
            pp += pl;
            up += ul;
        }
        if (!ok)
            continue;
        if (strcmp(rt->method, "*") != 0 && strcmp(rt->method, r->method) != 0) {
            method_mismatch = 1;
            continue;
        }
        r->route = rt;
        r->nparams = np;
        return;
    }
    r->no_route = method_mismatch ? 405 : 404;
}

const char *cm_httpd_req_param(const struct cm_httpd_req *r, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < r->nparams; i++) {
        const char *pn = r->pnames[i];
        size_t l = strcspn(pn, "/");
        if (l == nl && memcmp(pn, name, nl) == 0)
            return r->pvals[i];
    }
    return NULL;
}

int cm_httpd_route(struct cm_httpd *s, const char *method, const char *pattern,
                   cm_httpd_handler_fn fn, void *ud)
{
    struct route *n;
    if (!method || !pattern || pattern[0] != '/' || !fn)
        return CM_ERR_INVAL;
    n = cm_realloc(s->routes, (s->nroutes + 1) * sizeof *n);
    if (!n)
        return CM_ERR_NOMEM;
    s->routes = n;
    n = &s->routes[s->nroutes];
    n->method = cm_strdup(method);
    n->pattern = cm_strdup(pattern);
    n->fn = fn;
    n->ud = ud;
    if (!n->method || !n->pattern) {
        cm_free(n->method);
        cm_free(n->pattern);
        return CM_ERR_NOMEM;
    }
    s->nroutes++;
    return CM_OK;
}

/* ---- accessors ---- */

const char *cm_httpd_req_id(const struct cm_httpd_req *r)
{
    return r->id;
}
const char *cm_httpd_req_method(const struct cm_httpd_req *r)
{
    return r->method;
}
const char *cm_httpd_req_path(const struct cm_httpd_req *r)
{
    return r->path;
}
const char *cm_httpd_req_query(const struct cm_httpd_req *r)
{
    return r->query;
}
const char *cm_httpd_req_peer(const struct cm_httpd_req *r)
{
    return r->peer;
}
const char *cm_httpd_req_body(const struct cm_httpd_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    /* storage reserved from Content-Length but still empty holds no NUL yet */
    return r->body.len ? r->body.data : "";
}
const char *cm_httpd_req_header(struct cm_httpd_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *cm_httpd_req_arg(struct cm_httpd_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct each_ctx {
    cm_httpd_header_fn fn;
    void *ud;
};

static enum MHD_Result each_hdr(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    struct each_ctx *c = cls;
    (void)kind;
    return c->fn(k, v ? v : "", c->ud) ? MHD_NO : MHD_YES;
}

void cm_httpd_req_headers_each(struct cm_httpd_req *r, cm_httpd_header_fn fn, void *ud)
{
    struct each_ctx c = {fn, ud};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, each_hdr, &c);
}

void cm_httpd_req_on_close(struct cm_httpd_req *r, cm_httpd_close_fn fn, void *ud)
{
    pthread_mutex_lock(&r->lock);
    r->on_close = fn;
    r->close_ud = ud;
    pthread_mutex_unlock(&r->lock);
}

void cm_httpd_req_note(struct cm_httpd_req *r, const char *note)
{
    pthread_mutex_lock(&r->lock);
    if (r->note.len)
        cm_buf_append(&r->note, " ", 1);
    cm_buf_append_str(&r->note, note);
    pthread_mutex_unlock(&r->lock);
}

unsigned cm_httpd_req_status(struct cm_httpd_req *r)
{
    unsigned st;
    pthread_mutex_lock(&r->lock);
    st = r->status;
    pthread_mutex_unlock(&r->lock);
    return st;
}

int cm_httpd_req_aborted(struct cm_httpd_req *r)
{
    int a;
    pthread_mutex_lock(&r->lock);
    a = r->aborted;
    pthread_mutex_unlock(&r->lock);
    return a;
}

/* ---- replies ---- */

int cm_httpd_add_header(struct cm_httpd_req *r, const char *name, const char *value)
{
    int rc;
    pthread_mutex_lock(&r->lock);
    if (r->resp || r->st == ST_SENDING || r->st == ST_DONE) {
        pthread_mutex_unlock(&r->lock);
        return CM_ERR_CLOSED; /* headers are applied when the reply is set */
    }
    rc = cm_buf_append(&r->extra_hdrs, name, strlen(name) + 1);
    if (!rc)
        rc = cm_buf_append(&r->extra_hdrs, value, strlen(value) + 1);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* lock held */
static void add_headers(struct cm_httpd_req *r, struct MHD_Response *resp, const char *ctype)
{
    const char *p = r->extra_hdrs.data, *end = p + r->extra_hdrs.len;
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        MHD_add_response_header(resp, p, v);
        p = v + strlen(v) + 1;
    }
}

/* Installs a finished response; takes ownership of resp. */
static int set_response(struct cm_httpd_req *r, unsigned status, struct MHD_Response *resp,
                        const char *ctype, struct cm_pipe *pipe)
{
    int rc = CM_OK;
    pthread_mutex_lock(&r->lock);
    if (r->resp || r->st == ST_SENDING || r->st == ST_DONE || r->aborted) {
        rc = CM_ERR_CLOSED;
        goto out;
    }
    add_headers(r, resp, ctype);
    r->resp = resp;
    resp = NULL;
    r->status = status;
    if (pipe) {
        r->pipe = pipe;
        cm_pipe_ref(pipe);
    }
    if (r->st == ST_WAITING) {
        r->st = ST_RESUMING;
        MHD_resume_connection(r->conn);
    }
out:
    pthread_mutex_unlock(&r->lock);
    if (resp)
        MHD_destroy_response(resp);
    return rc;
}

int cm_httpd_reply_take(struct cm_httpd_req *r, unsigned status, const char *content_type,
                        char *body, size_t len)
{
    struct MHD_Response *resp;
    if (!body)
        body = cm_strdup("");
    if (!body)
        return CM_ERR_NOMEM;
    resp = MHD_create_response_from_buffer_with_free_callback(len, body, cm_free);
    if (!resp) {
        cm_free(body);
        return CM_ERR_NOMEM;
    }
    r->bytes_out = len;
    return set_response(r, status, resp, content_type, NULL);
}

int cm_httpd_reply(struct cm_httpd_req *r, unsigned status, const char *content_type,
                   const void *body, size_t len)
{
    char *copy = cm_malloc(len + 1);
    if (!copy)
        return CM_ERR_NOMEM;
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    return cm_httpd_reply_take(r, status, content_type, copy, len);
}

int cm_httpd_reply_error(struct cm_httpd_req *r, unsigned status, const char *type,
                         const char *code, const char *fmt, ...)
{
    char msg[1024];
    cJSON *root = NULL, *err;
    char *out = NULL;
    va_list ap;
    int rc = CM_ERR_NOMEM;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cm_log_write(status >= 500 ? CM_LOG_ERROR : CM_LOG_WARN, r->id, "%s %s -> %u %s", r->method,
                 r->path, status, msg);
    root = cJSON_CreateObject();
    if (!root || !(err = cJSON_AddObjectToObject(root, "error")))
        goto out;
    if (!cJSON_AddStringToObject(err, "message", msg) ||
        !cJSON_AddStringToObject(err, "type", type ? type : "invalid_request_error") ||
        !cJSON_AddNullToObject(err, "param") ||
        !(code ? cJSON_AddStringToObject(err, "code", code) : cJSON_AddNullToObject(err, "code")))
        goto out;
    out = cJSON_PrintUnformatted(root);
    if (!out)
        goto out;
    rc = cm_httpd_reply_take(r, status, "application/json", out, strlen(out));
out:
    cJSON_Delete(root);
    return rc;
}

static void stream_park(void *ud) /* pipe lock held; server thread (inside the reader) */
{
    struct cm_httpd_req *r = ud;
    r->stream_parked = 1;
    MHD_suspend_connection(r->conn);
}

static void stream_wake(void *ud) /* pipe lock held; any thread */
{
    struct cm_httpd_req *r = ud;
    if (r->stream_parked) {
        r->stream_parked = 0;
        MHD_resume_connection(r->conn);
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cm_httpd_req *r = cls;
    size_t got = 0;
    enum cm_pipe_rstate st;
    (void)pos;

    st = cm_pipe_read(r->pipe, buf, max, &got);
    switch (st) {
    case CM_PIPE_DATA:
        return (ssize_t)got;
    case CM_PIPE_PARKED:
        /* first park of this request: let the watchdog see a client leave */
        wd_register(r);
        return 0;
    case CM_PIPE_EOF:
        return MHD_CONTENT_READER_END_OF_STREAM;
    case CM_PIPE_ERROR:
    default:
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_free(void *cls)
{
    cm_httpd_req_unref(cls);
}

int cm_httpd_reply_stream(struct cm_httpd_req *r, unsigned status, const char *content_type,
                          struct cm_pipe *p)
{
    struct MHD_Response *resp;
    cm_httpd_req_ref(r); /* held by the response's reader */
    resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, r, stream_free);
    if (!resp) {
        cm_httpd_req_unref(r);
        return CM_ERR_NOMEM;
    }
    cm_pipe_set_reader_hooks(p, stream_park, stream_wake, r);
    return set_response(r, status, resp, content_type, p);
}

int cm_httpd_reply_sse(struct cm_httpd_req *r, size_t cap, cm_pipe_hook_fn wake, void *ud,
                       struct cm_pipe **out)
{
    struct cm_pipe *p = cm_pipe_new(cap ? cap : 64 * 1024);
    *out = p;
    if (!p)
        return CM_ERR_NOMEM;
    cm_pipe_set_writer_hook(p, wake, ud);
    cm_httpd_add_header(r, "Cache-Control", "no-cache");
    cm_httpd_add_header(r, "X-Accel-Buffering", "no");
    return cm_httpd_reply_stream(r, 200, "text/event-stream", p);
}

/* ---- MHD callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct cm_httpd *s = cls;
    struct cm_httpd_req *r = cm_calloc(1, sizeof *r);
    const union MHD_ConnectionInfo *ci;
    char *q;

    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->lock, NULL);
    r->srv = s;
    r->conn = conn;
    r->st = ST_READING;
    r->wd_slot = -1;
    r->fd = -1;
    r->t0 = mono_us();
    snprintf(r->id, sizeof r->id, "%s%08lx", s->id_prefix,
             (unsigned long)(atomic_fetch_add(&s->id_seq, 1) & 0xffffffffUL));
    cm_buf_init(&r->body, s->o.max_body);
    cm_buf_init(&r->extra_hdrs, 64 * 1024);
    cm_buf_init(&r->note, 1024);
    r->uri = cm_strdup(uri ? uri : "/");
    if (!r->uri)
        goto fail;
    q = strchr(r->uri, '?');
    r->path = cm_strndup(r->uri, q ? (size_t)(q - r->uri) : strlen(r->uri));
    if (!r->path || !(r->segs = cm_malloc(strlen(r->path) + 1)))
        goto fail;
    r->query = q ? q + 1 : r->uri + strlen(r->uri);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        r->fd = ci->connect_fd;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->peer,
                      sizeof r->peer);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      r->peer, sizeof r->peer);
    }
    return r;
fail:
    cm_httpd_req_unref(r);
    return NULL;
}

static enum MHD_Result count_hdr(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    size_t *total = cls;
    (void)kind;
    *total += strlen(k) + (v ? strlen(v) : 0) + 4;
    return MHD_YES;
}

/* Queues r->resp on the connection (server thread, lock held). */
static enum MHD_Result queue(struct cm_httpd_req *r)
{
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp); /* MHD holds its own reference now */
    r->resp = NULL;
    r->st = ST_SENDING;
    return ret;
}

/* Replies with an error from inside the access handler (lock not held). */
static enum MHD_Result early_error(struct cm_httpd_req *r, unsigned status, const char *code,
                                   const char *msg)
{
    enum MHD_Result ret;
    if (cm_httpd_reply_error(r, status, "invalid_request_error", code, "%s", msg))
        return MHD_NO;
    pthread_mutex_lock(&r->lock);
    ret = r->resp ? queue(r) : MHD_NO;
    pthread_mutex_unlock(&r->lock);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    struct cm_httpd *s = cls;
    struct cm_httpd_req *r = *con_cls;
    enum MHD_Result ret = MHD_YES;
    (void)url;
    (void)version;

    if (!r)
        return MHD_NO; /* OOM in on_uri */
    if (!r->hdr_checked) {
        size_t total = 0;
        const char *cl;
        r->hdr_checked = 1;
        r->method = method;
        MHD_get_connection_values(conn, MHD_HEADER_KIND, count_hdr, &total);
        if (total > s->o.max_header)
            return early_error(r, 431, "request_header_too_large",
                               "request headers are larger than the server accepts");
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->o.max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes",
                     s->o.max_body);
            return early_error(r, 413, "request_too_large", msg);
        }
        if (cl) /* one allocation for the whole body instead of doubling up to it */
            cm_buf_reserve(&r->body, (size_t)strtoull(cl, NULL, 10));
        route_request(s, r);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big && cm_buf_append(&r->body, upload_data, *upload_size) != CM_OK) {
            r->too_big = 1;
            cm_buf_cleanup(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&r->lock);
    if (r->st == ST_READING) {
        pthread_mutex_unlock(&r->lock);
        if (r->too_big) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes",
                     s->o.max_body);
            return early_error(r, 413, "request_too_large", msg);
        }
        if (atomic_load(&s->draining)) /* never suspend once cm_httpd_free() is draining */
            return early_error(r, 503, "server_shutting_down", "the server is shutting down");
        if (r->no_route)
            return early_error(r, r->no_route,
                               r->no_route == 404 ? "not_found" : "method_not_allowed",
                               r->no_route == 404 ? "no such route" : "method not allowed here");
        r->route->fn(r, r->route->ud);
        pthread_mutex_lock(&r->lock);
        if (r->resp) {
            ret = queue(r);
        } else if (r->st == ST_READING) {
            r->st = ST_WAITING;
            MHD_suspend_connection(conn);
            wd_register(r);
        }
    } else if (r->st == ST_RESUMING) {
        if (r->resp && !r->aborted)
            ret = queue(r);
        else
            ret = MHD_NO; /* client gone: close */
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct cm_httpd *s = cls;
    struct cm_httpd_req *r = *con_cls;
    cm_httpd_close_fn fn;
    void *ud;
    int aborted;
    struct cm_pipe *p;
    struct MHD_Response *unsent;
    (void)conn;

    if (!r)
        return;
    *con_cls = NULL;
    wd_unregister(r);
    pthread_mutex_lock(&r->lock);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        r->aborted = 1;
    r->st = ST_DONE;
    aborted = r->aborted;
    fn = r->on_close;
    ud = r->close_ud;
    r->on_close = NULL;
    p = r->pipe;
    if (p)
        cm_pipe_ref(p);
    /* a response set but never queued (the client left while it was being made): a
     * stream's reader holds a reference on r, so r and it would keep each other alive */
    unsent = r->resp;
    r->resp = NULL;
    pthread_mutex_unlock(&r->lock);
    if (unsent)
        MHD_destroy_response(unsent);
    if (p) {
        if (aborted)
            cm_pipe_reader_gone(p);
        r->bytes_out = cm_pipe_delivered(p);
        cm_pipe_unref(p);
    }
    if (fn) /* first: the close callback may still add to the access line */
        fn(r, aborted, ud);
    if (s->o.access_log) {
        pthread_mutex_lock(&r->lock);
        cm_log_info(r->id, "%s %s %u %llu %.1fms%s%s%s", r->method ? r->method : "-", r->path,
                    r->status, (unsigned long long)r->bytes_out,
                    (double)(mono_us() - r->t0) / 1000.0, aborted ? " aborted" : "",
                    r->note.len ? " " : "", r->note.len ? r->note.data : "");
        pthread_mutex_unlock(&r->lock);
    }
    cm_httpd_req_unref(r);
}

/*
 * libmicrohttpd's own messages. The ones that only say a client went away (our access
 * line already records "aborted") go to DEBUG; everything else is a WARN.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    static const char *const expected[] = {"Application reported internal error",
                                           "no longer available for sending",
                                           "Failed to send",
                                           "Connection reset",
                                           "Broken pipe",
                                           "closed by remote",
                                           NULL};
    char msg[512];
    enum cm_log_level lvl = CM_LOG_WARN;
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    for (int i = 0; expected[i]; i++)
        if (strstr(msg, expected[i]))
            lvl = CM_LOG_DEBUG;
    cm_log_write(lvl, NULL, "httpd: %s", msg);
}

/* ---- server ---- */

/*
 * Refuses new connections once cm_httpd_free() has begun. Used instead of
 * MHD_quiesce_daemon(), which (libmicrohttpd 0.9.75, epoll + thread pool) races with
 * the worker threads - both remove the listen FD from a worker's epoll set and the
 * loser's ENOENT is an MHD_PANIC (abort) - and hands the listening socket to the
 * caller, who must close it (it was leaked, the port kept accepting into the backlog).
 */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct cm_httpd *s = cls;
    (void)addr;
    (void)len;
    return atomic_load(&s->draining) ? MHD_NO : MHD_YES;
}

int cm_httpd_new(const struct cm_httpd_opts *opts, struct cm_httpd **out)
{
    struct cm_httpd *s = cm_calloc(1, sizeof *s);
    unsigned char rnd[4];
    FILE *f;

    if (!s)
        return CM_ERR_NOMEM;
    if (opts)
        s->o = *opts;
    if (!s->o.bind)
        s->o.bind = "127.0.0.1";
    if (!s->o.threads)
        s->o.threads = cm_sys_ncpu();
    if (!s->o.max_body)
        s->o.max_body = CM_HTTPD_MAX_BODY_DEFAULT;
    if (!s->o.max_header)
        s->o.max_header = CM_HTTPD_MAX_HEADER_DEFAULT;
    if (!s->o.max_conns)
        s->o.max_conns = 16384;
    if (!s->o.idle_timeout_s)
        s->o.idle_timeout_s = 120;
    pthread_mutex_init(&s->wd_lock, NULL);
    pthread_cond_init(&s->wd_cond, NULL);
    /* request ids: a random per-process prefix + a counter (unique and cheap) */
    f = fopen("/dev/urandom", "rb");
    if (!f || fread(rnd, 1, sizeof rnd, f) != sizeof rnd)
        memset(rnd, 0x5a, sizeof rnd);
    if (f)
        fclose(f);
    snprintf(s->id_prefix, sizeof s->id_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    *out = s;
    return CM_OK;
}

/* whether some interface has the address of @p ss (a bind to port 0 says EADDRNOTAVAIL if not) */
static int addr_exists(const struct sockaddr_storage *ss)
{
    struct sockaddr_storage probe = *ss;
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 1;

    if (fd < 0)
        return 1; /* cannot tell: let the real bind report */
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&probe)->sin6_port = 0;
    else
        ((struct sockaddr_in *)&probe)->sin_port = 0;
    if (bind(fd, (struct sockaddr *)&probe, len) != 0 && errno == EADDRNOTAVAIL)
        ok = 0;
    close(fd);
    return ok;
}

int cm_httpd_start(struct cm_httpd *s)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO;
    const union MHD_DaemonInfo *di;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, s->o.bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(s->o.port);
    } else if (inet_pton(AF_INET6, s->o.bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(s->o.port);
        flags |= MHD_USE_IPv6;
    } else {
        cm_log_error(NULL, "httpd: bind address \"%s\" is not an IP address", s->o.bind);
        return CM_ERR_INVAL;
    }
    if (!addr_exists(&ss)) {
        cm_log_error(NULL,
                     "httpd: bind address %s does not exist on this machine (no network "
                     "interface has it%s)",
                     s->o.bind,
                     strcmp(s->o.bind, "172.17.0.1") == 0 ? "; is Docker installed and running?"
                                                          : "");
        return CM_ERR_NOTFOUND;
    }
    if (pthread_create(&s->wd_thr, NULL, wd_main, s) != 0)
        return CM_ERR_IO;
    s->wd_started = 1;
    s->mhd = MHD_start_daemon(
        flags, s->o.port, accept_policy, s, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)s->o.threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(s->o.max_header + 16 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096U, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->mhd) {
        cm_log_error(NULL, "httpd: cannot listen on %s:%u (%s)", s->o.bind, (unsigned)s->o.port,
                     errno ? strerror(errno) : "libmicrohttpd refused the options");
        return CM_ERR_IO;
    }
    di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return CM_OK;
}

uint16_t cm_httpd_port(const struct cm_httpd *s)
{
    return s->port;
}

void cm_httpd_free(struct cm_httpd *s)
{
    if (!s)
        return;
    if (s->mhd) {
        /* MHD must not be stopped with suspended connections: end every one of them */
        int more = 1;
        atomic_store(&s->draining, 1); /* see accept_policy() */
        for (int round = 0; more && round < 100; round++) {
            struct cm_httpd_req **snap = NULL;
            size_t n = 0;
            pthread_mutex_lock(&s->wd_lock);
            if (s->wd_used && (snap = cm_malloc(s->wd_used * sizeof *snap))) {
                for (size_t i = 0; i < s->wd_used; i++) {
                    snap[n] = s->wd_slots[i];
                    cm_httpd_req_ref(snap[n++]);
                }
            }
            more = s->wd_used > 0;
            pthread_mutex_unlock(&s->wd_lock);
            for (size_t i = 0; i < n; i++) {
                client_gone(snap[i]);
                cm_httpd_req_unref(snap[i]);
            }
            cm_free(snap);
            if (more)
                usleep(10000);
        }
        MHD_stop_daemon(s->mhd);
    }
    atomic_store(&s->stopping, 1);
    if (s->wd_started) {
        pthread_mutex_lock(&s->wd_lock);
        pthread_cond_signal(&s->wd_cond);
        pthread_mutex_unlock(&s->wd_lock);
        pthread_join(s->wd_thr, NULL);
    }
    for (size_t k = 0; k < s->nroutes; k++) {
        cm_free(s->routes[k].method);
        cm_free(s->routes[k].pattern);
    }
    cm_free(s->routes);
    cm_free(s->wd_slots);
    pthread_mutex_destroy(&s->wd_lock);
    pthread_cond_destroy(&s->wd_cond);
    cm_free(s);
}
