/* SPDX-License-Identifier: MIT */
/*
 * test_http.c - cm_httpd and cm_httpc against each other, in-process, over 127.0.0.1
 * (the server on port 0). Server side: routing (literal, ":param", "*", 404, 405),
 * request accessors, synchronous and later (other-thread) replies, extra headers, the
 * JSON error shape, the close callback (exactly once; aborted on disconnect), a stream
 * fed through a cm_pipe in pieces with backpressure, body/header caps (413/431), and
 * cm_httpd_free with suspended requests. Client side: buffered and streamed bodies,
 * on_head and header lookup, pause/resume from another thread, cancel, connect
 * failure, first-byte/idle timeouts, the response cap, POST bodies, 200 concurrent
 * transfers, keep-alive reuse (seen in /proc/net/tcp), and cm_httpc_free with
 * transfers in flight. Waits use condition variables with deadlines; sleeps only
 * create situations (a slow helper, a stalled stream).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/httpd.h"
#include "cm/log.h"
#include "cm/pipe.h"

#define WAIT_MS 5000

/* ---- time and waiting ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A counter other threads bump and a test thread waits on. */
struct counter {
    pthread_mutex_t m;
    pthread_cond_t cv;
    long n;
};

static void counter_init(struct counter *c)
{
    pthread_condattr_t a;
    pthread_mutex_init(&c->m, NULL);
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &a);
    pthread_condattr_destroy(&a);
    c->n = 0;
}

static void counter_destroy(struct counter *c)
{
    pthread_mutex_destroy(&c->m);
    pthread_cond_destroy(&c->cv);
}

static void counter_add(struct counter *c, long d)
{
    pthread_mutex_lock(&c->m);
    c->n += d;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->m);
}

static long counter_get(struct counter *c)
{
    long n;
    pthread_mutex_lock(&c->m);
    n = c->n;
    pthread_mutex_unlock(&c->m);
    return n;
}

/* 1 once the counter is at least @p n, 0 if @p ms passed first. */
static int counter_wait(struct counter *c, long n, long ms)
{
    struct timespec dl;
    int rc = 0, ok;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->m);
    while (c->n < n && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->m, &dl);
    ok = c->n >= n;
    pthread_mutex_unlock(&c->m);
    return ok;
}

static unsigned char pat(size_t i)
{
    return (unsigned char)(i * 31u + (i >> 9) + (i >> 17));
}

/* ---- server-side state shared by the handlers (reset per test) ---- */

struct info {
    char method[16], path[128], query[128], arg_q[64], hdr[64], peer[64], id[64];
    int arg_missing_null, hdr_missing_null, each_found, each_count, each_stopped;
    char raw_path[128], raw_star[128];
};

static struct {
    struct counter handled; /* handler calls */
    struct counter closes;  /* close callbacks */
    atomic_int closes_ok, closes_aborted;
    atomic_int helpers_live; /* helper threads started by handlers and not yet finished */
    struct counter helpers_done;
    pthread_mutex_t m;
    struct info info;
    size_t echo_len;
    int echo_nul_terminated;
    int items_missing_param_null;
    int double_rc, double_err_rc;
    /* /stream */
    struct counter client_bytes; /* body bytes the streaming client has seen */
    int stream_failures;         /* a piece not delivered before the next, or a bad write */
    long stream_agains;
    uint64_t stream_delivered; /* cm_pipe_delivered() at close */
    /* /stall */
    struct counter stall_saw_closed;
} S;

static void state_init(void)
{
    memset(&S, 0, sizeof S);
    counter_init(&S.handled);
    counter_init(&S.closes);
    counter_init(&S.helpers_done);
    counter_init(&S.client_bytes);
    counter_init(&S.stall_saw_closed);
    pthread_mutex_init(&S.m, NULL);
    atomic_init(&S.closes_ok, 0);
    atomic_init(&S.closes_aborted, 0);
    atomic_init(&S.helpers_live, 0);
}

static void state_destroy(void)
{
    counter_destroy(&S.handled);
    counter_destroy(&S.closes);
    counter_destroy(&S.helpers_done);
    counter_destroy(&S.client_bytes);
    counter_destroy(&S.stall_saw_closed);
    pthread_mutex_destroy(&S.m);
}

static void on_close_count(struct cm_httpd_req *req, int aborted, void *ud)
{
    (void)req;
    (void)ud;
    if (aborted)
        atomic_fetch_add(&S.closes_aborted, 1);
    else
        atomic_fetch_add(&S.closes_ok, 1);
    counter_add(&S.closes, 1);
}

/* For handlers that took a reference and never reply: the close drops it. */
static void on_close_unref(struct cm_httpd_req *req, int aborted, void *ud)
{
    on_close_count(req, aborted, ud);
    cm_httpd_req_unref(req);
}

static int spawn_helper(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    atomic_fetch_add(&S.helpers_live, 1);
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        atomic_fetch_sub(&S.helpers_live, 1);
        return -1;
    }
    pthread_detach(t);
    return 0;
}

static void helper_exit(void)
{
    atomic_fetch_sub(&S.helpers_live, 1);
    counter_add(&S.helpers_done, 1);
}

static void reply_text(struct cm_httpd_req *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply_text(struct cm_httpd_req *req, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cm_httpd_reply(req, 200, "text/plain", buf, n > 0 ? (size_t)n : 0);
}

/* ---- handlers ---- */

static void h_hello(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    cm_httpd_req_on_close(req, on_close_count, NULL);
    counter_add(&S.handled, 1);
    cm_httpd_reply(req, 200, "text/plain", "hello", 5);
}

static void h_items(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&S.m);
    S.items_missing_param_null = cm_httpd_req_param(req, "nope") == NULL;
    pthread_mutex_unlock(&S.m);
    counter_add(&S.handled, 1);
    reply_text(req, "id=%s", cm_httpd_req_param(req, "id"));
}

static void h_posts(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    reply_text(req, "uid=%s pid=%s", cm_httpd_req_param(req, "uid"),
               cm_httpd_req_param(req, "pid"));
}

static void h_files(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    reply_text(req, "rest=[%s]", cm_httpd_req_param(req, "*"));
}

static void h_any(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    reply_text(req, "%s", cm_httpd_req_method(req));
}

static void h_only_post(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    reply_text(req, "posted");
}

static int each_count(const char *name, const char *value, void *ud)
{
    struct info *in = ud;
    in->each_count++;
    if (strcasecmp(name, "X-Test") == 0 && strcmp(value, "Value1") == 0)
        in->each_found = 1;
    return 0;
}

static int each_stop(const char *name, const char *value, void *ud)
{
    (void)name;
    (void)value;
    ((struct info *)ud)->each_stopped++;
    return 1;
}

static void copy_or_null(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "(null)");
}

static void h_info(struct cm_httpd_req *req, void *ud)
{
    struct info in;
    (void)ud;
    memset(&in, 0, sizeof in);
    copy_or_null(in.method, sizeof in.method, cm_httpd_req_method(req));
    copy_or_null(in.path, sizeof in.path, cm_httpd_req_path(req));
    copy_or_null(in.query, sizeof in.query, cm_httpd_req_query(req));
    copy_or_null(in.arg_q, sizeof in.arg_q, cm_httpd_req_arg(req, "q"));
    copy_or_null(in.hdr, sizeof in.hdr, cm_httpd_req_header(req, "x-test"));
    copy_or_null(in.peer, sizeof in.peer, cm_httpd_req_peer(req));
    copy_or_null(in.id, sizeof in.id, cm_httpd_req_id(req));
    in.arg_missing_null = cm_httpd_req_arg(req, "missing") == NULL;
    in.hdr_missing_null = cm_httpd_req_header(req, "X-Missing") == NULL;
    cm_httpd_req_headers_each(req, each_count, &in);
    cm_httpd_req_headers_each(req, each_stop, &in);
    pthread_mutex_lock(&S.m);
    memcpy(S.info.method, in.method, sizeof in.method);
    memcpy(S.info.path, in.path, sizeof in.path);
    memcpy(S.info.query, in.query, sizeof in.query);
    memcpy(S.info.arg_q, in.arg_q, sizeof in.arg_q);
    memcpy(S.info.hdr, in.hdr, sizeof in.hdr);
    memcpy(S.info.peer, in.peer, sizeof in.peer);
    memcpy(S.info.id, in.id, sizeof in.id);
    S.info.arg_missing_null = in.arg_missing_null;
    S.info.hdr_missing_null = in.hdr_missing_null;
    S.info.each_count = in.each_count;
    S.info.each_found = in.each_found;
    S.info.each_stopped = in.each_stopped;
    pthread_mutex_unlock(&S.m);
    counter_add(&S.handled, 1);
    reply_text(req, "ok");
}

static void h_raw(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&S.m);
    copy_or_null(S.info.raw_path, sizeof S.info.raw_path, cm_httpd_req_path(req));
    copy_or_null(S.info.raw_star, sizeof S.info.raw_star, cm_httpd_req_param(req, "*"));
    pthread_mutex_unlock(&S.m);
    counter_add(&S.handled, 1);
    reply_text(req, "raw");
}

static void h_echo(struct cm_httpd_req *req, void *ud)
{
    size_t len = 0;
    const char *b = cm_httpd_req_body(req, &len);
    (void)ud;
    pthread_mutex_lock(&S.m);
    S.echo_len = len;
    S.echo_nul_terminated = b[len] == '\0';
    pthread_mutex_unlock(&S.m);
    cm_httpd_req_on_close(req, on_close_count, NULL);
    counter_add(&S.handled, 1);
    cm_httpd_reply(req, 200, "application/octet-stream", b, len);
}

static void *later_main(void *arg)
{
    struct cm_httpd_req *req = arg;
    sleep_ms(50);
    cm_httpd_add_header(req, "X-Later", "yes");
    cm_httpd_reply(req, 200, "text/plain", "later", 5);
    cm_httpd_req_unref(req);
    helper_exit();
    return NULL;
}

static void h_later(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    cm_httpd_req_on_close(req, on_close_count, NULL);
    cm_httpd_req_ref(req);
    counter_add(&S.handled, 1);
    if (spawn_helper(later_main, req) != 0) {
        cm_httpd_req_unref(req);
        cm_httpd_reply_error(req, 500, "server_error", NULL, "no thread");
    }
}

static void h_err(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    cm_httpd_reply_error(req, 429, "rate_limit_error", "rate_limited", "slow down %d", 5);
}

static void h_err_null(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    cm_httpd_reply_error(req, 503, "server_error", NULL, "boom \"quoted\"");
}

static void h_hdr(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    counter_add(&S.handled, 1);
    cm_httpd_add_header(req, "X-Custom", "v1");
    cm_httpd_add_header(req, "X-Second", "two words");
    cm_httpd_reply(req, 201, "text/plain", "made", 4);
}

static void h_double(struct cm_httpd_req *req, void *ud)
{
    int a, b, c;
    (void)ud;
    counter_add(&S.handled, 1);
    a = cm_httpd_reply(req, 200, "text/plain", "first", 5);
    b = cm_httpd_reply(req, 200, "text/plain", "second", 6);
    c = cm_httpd_reply_error(req, 500, NULL, NULL, "third");
    pthread_mutex_lock(&S.m);
    S.double_rc = a == CM_OK ? b : -1;
    S.double_err_rc = c;
    pthread_mutex_unlock(&S.m);
}

static void h_never(struct cm_httpd_req *req, void *ud)
{
    (void)ud;
    cm_httpd_req_ref(req);
    cm_httpd_req_on_close(req, on_close_unref, NULL);
    counter_add(&S.handled, 1);
}

static void h_big(struct cm_httpd_req *req, void *ud)
{
    const char *ns = cm_httpd_req_arg(req, "n");
    const char *ch = cm_httpd_req_arg(req, "chunked");
    size_t n = ns ? (size_t)strtoul(ns, NULL, 10) : 0;
    char *b = cm_malloc(n + 1);
    (void)ud;
    counter_add(&S.handled, 1);
    if (!b) {
        cm_httpd_reply_error(req, 503, "server_error", NULL, "oom");
        return;
    }
    for (size_t i = 0; i < n; i++)
        b[i] = (char)pat(i);
    if (ch && strcmp(ch, "1") == 0) {
        struct cm_pipe *p = cm_pipe_new(0);
        if (p && cm_pipe_write(p, b, n) == CM_OK) {
            cm_pipe_close(p, CM_OK);
            cm_httpd_reply_stream(req, 200, "application/octet-stream", p);
        } else {
            cm_httpd_reply_error(req, 503, "server_error", NULL, "pipe");
        }
        cm_pipe_unref(p);
        cm_free(b);
        return;
    }
    cm_httpd_reply_take(req, 200, "application/octet-stream", b, n);
}

/* /stream: the handler fills the 16 KB pipe and gets AGAIN (nobody reads before the
 * response is queued); a helper thread writes the rest in pieces, and each checkpoint
 * must reach the client before the stream goes on. */
#define STREAM_CAP (16 * 1024)
#define STREAM_BIG (200 * 1024)
#define STREAM_LEN (8 + STREAM_BIG + 8 + 3)

struct writer {
    struct cm_pipe *p;
    struct counter woken; /* writer hook runs */
    char *all;            /* the whole expected stream */
    size_t off;           /* bytes written so far */
};

static void writer_hook(void *ud)
{
    counter_add(&((struct writer *)ud)->woken, 1);
}

/* Writes all of @p n bytes, sleeping on the writer hook after AGAIN. CM_OK or the error. */
static int write_all(struct writer *w, const char *d, size_t n, size_t piece)
{
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < piece ? n - off : piece;
        long seen = counter_get(&w->woken);
        int rc = cm_pipe_write(w->p, d + off, k);
        if (rc == CM_ERR_AGAIN) {
            if (!counter_wait(&w->woken, seen + 1, WAIT_MS))
                return CM_ERR_TIMEOUT;
            continue;
        }
        if (rc)
            return rc;
        off += k;
    }
    return CM_OK;
}

/* "piece-0;" + STREAM_BIG pattern bytes + "piece-2;" + "end" */
static void stream_expected(char *out)
{
    memcpy(out, "piece-0;", 8);
    for (size_t i = 0; i < STREAM_BIG; i++)
        out[8 + i] = (char)pat(i);
    memcpy(out + 8 + STREAM_BIG, "piece-2;end", 11);
}

static void *stream_main(void *arg)
{
    struct writer *w = arg;
    const size_t cuts[3] = {8 + STREAM_BIG, 8 + STREAM_BIG + 8, STREAM_LEN};
    int fail = 0;

    for (int k = 0; k < 3 && !fail; k++) {
        sleep_ms(20);
        if (write_all(w, w->all + w->off, cuts[k] - w->off, 10 * 1024) != CM_OK) {
            fail = 1;
            break;
        }
        w->off = cuts[k];
        /* the client must have everything so far before the stream goes on */
        if (k < 2 && !counter_wait(&S.client_bytes, (long)w->off, WAIT_MS))
            fail = 1;
    }
    pthread_mutex_lock(&S.m);
    S.stream_failures += fail;
    pthread_mutex_unlock(&S.m);
    cm_pipe_close(w->p, fail ? CM_ERR_INTERNAL : CM_OK);
    helper_exit();
    return NULL;
}

static void stream_close(struct cm_httpd_req *req, int aborted, void *ud)
{
    struct writer *w = ud;
    pthread_mutex_lock(&S.m);
    S.stream_delivered = cm_pipe_delivered(w->p);
    pthread_mutex_unlock(&S.m);
    on_close_count(req, aborted, NULL);
}

/* The writer struct outlives both the helper and the request: set up and freed by the test. */
static struct writer *stream_writer;

static void h_stream(struct cm_httpd_req *req, void *ud)
{
    struct writer *w = stream_writer;
    int rc;
    (void)ud;
    counter_add(&S.handled, 1);
    w->p = cm_pipe_new(STREAM_CAP);
    if (!w->p) {
        cm_httpd_reply_error(req, 503, "server_error", NULL, "oom");
        return;
    }
    cm_pipe_set_writer_hook(w->p, writer_hook, w);
    /* fill the pipe to its cap; one more byte does not fit */
    rc = cm_pipe_write(w->p, w->all, STREAM_CAP);
    w->off = STREAM_CAP;
    pthread_mutex_lock(&S.m);
    S.stream_agains = rc == CM_OK ? cm_pipe_write(w->p, w->all + w->off, 1) == CM_ERR_AGAIN : -1;
    pthread_mutex_unlock(&S.m);
    cm_httpd_req_on_close(req, stream_close, w);
    if (cm_httpd_reply_stream(req, 200, "text/plain", w->p) != CM_OK ||
        spawn_helper(stream_main, w))
        cm_pipe_close(w->p, CM_ERR_INTERNAL);
}

/* /stall: one piece, then nothing until the reader is gone. */
static void *stall_main(void *arg)
{
    struct writer *w = arg;
    if (cm_pipe_write(w->p, "first", 5) == CM_OK && counter_wait(&w->woken, 1, WAIT_MS) &&
        cm_pipe_is_reader_gone(w->p) && cm_pipe_write(w->p, "more", 4) == CM_ERR_CLOSED)
        counter_add(&S.stall_saw_closed, 1);
    cm_pipe_set_writer_hook(w->p, NULL, NULL); /* w goes away; the pipe may live on */
    cm_pipe_close(w->p, CM_OK);
    cm_pipe_unref(w->p);
    counter_destroy(&w->woken);
    cm_free(w);
    helper_exit();
    return NULL;
}

static void h_stall(struct cm_httpd_req *req, void *ud)
{
    struct writer *w = cm_calloc(1, sizeof *w);
    (void)ud;
    counter_add(&S.handled, 1);
    cm_httpd_req_on_close(req, on_close_count, NULL);
    if (!w || !(w->p = cm_pipe_new(0))) {
        cm_free(w);
        cm_httpd_reply_error(req, 503, "server_error", NULL, "oom");
        return;
    }
    counter_init(&w->woken);
    cm_pipe_set_writer_hook(w->p, writer_hook, w);
    cm_httpd_reply_stream(req, 200, "text/plain", w->p);
    if (spawn_helper(stall_main, w) != 0) {
        cm_pipe_close(w->p, CM_ERR_INTERNAL);
        cm_pipe_unref(w->p);
        counter_destroy(&w->woken);
        cm_free(w);
    }
}

/* /empty-stream: a stream whose producer never writes; the close callback ends it. */
static void empty_stream_close(struct cm_httpd_req *req, int aborted, void *ud)
{
    struct cm_pipe *p = ud;
    on_close_count(req, aborted, NULL);
    cm_pipe_close(p, CM_OK);
    cm_pipe_unref(p);
}

static void h_empty_stream(struct cm_httpd_req *req, void *ud)
{
    struct cm_pipe *p = cm_pipe_new(0);
    (void)ud;
    counter_add(&S.handled, 1);
    if (!p) {
        cm_httpd_reply_error(req, 503, "server_error", NULL, "oom");
        return;
    }
    cm_httpd_req_on_close(req, empty_stream_close, p);
    cm_httpd_reply_stream(req, 200, "text/event-stream", p);
}

/* ---- fixture ---- */

static struct {
    struct cm_httpd *srv;
    struct cm_httpc *cli;
    uint16_t port;
} F;

static void fx_server(const struct cm_httpd_opts *opts)
{
    struct cm_httpd_opts o = {0};
    static const struct {
        const char *method, *pattern;
        cm_httpd_handler_fn fn;
    } routes[] = {
        {"GET", "/hello", h_hello},
        {"GET", "/items/:id", h_items},
        {"GET", "/users/:uid/posts/:pid", h_posts},
        {"GET", "/files/*", h_files},
        {"*", "/any", h_any},
        {"POST", "/only-post", h_only_post},
        {"GET", "/info", h_info},
        {"GET", "/raw/*", h_raw},
        {"POST", "/echo", h_echo},
        {"GET", "/later", h_later},
        {"GET", "/err", h_err},
        {"GET", "/err-null", h_err_null},
        {"GET", "/hdr", h_hdr},
        {"GET", "/double", h_double},
        {"GET", "/never", h_never},
        {"GET", "/big", h_big},
        {"GET", "/stream", h_stream},
        {"GET", "/stall", h_stall},
        {"GET", "/empty-stream", h_empty_stream},
    };

    if (opts)
        o = *opts;
    o.bind = "127.0.0.1";
    o.port = 0;
    if (!o.threads)
        o.threads = 2;
    assert_int_equal(cm_httpd_new(&o, &F.srv), CM_OK);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        assert_int_equal(
            cm_httpd_route(F.srv, routes[i].method, routes[i].pattern, routes[i].fn, NULL), CM_OK);
    assert_int_equal(cm_httpd_start(F.srv), CM_OK);
    F.port = cm_httpd_port(F.srv);
    assert_true(F.port != 0);
}

/* Frees the server: afterwards every close callback has run. */
static void fx_server_free(void)
{
    cm_httpd_free(F.srv);
    F.srv = NULL;
}

static int setup(void **state)
{
    (void)state;
    state_init();
    memset(&F, 0, sizeof F);
    return cm_httpc_new(NULL, &F.cli) == CM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cm_httpc_free(F.cli);
    F.cli = NULL;
    fx_server_free();
    /* helper threads end once their request or pipe is gone */
    for (int i = 0; i < 500 && atomic_load(&S.helpers_live) > 0; i++)
        sleep_ms(10);
    if (atomic_load(&S.helpers_live) > 0)
        return -1;
    if (stream_writer) {
        cm_pipe_unref(stream_writer->p);
        counter_destroy(&stream_writer->woken);
        cm_free(stream_writer->all);
        cm_free(stream_writer);
        stream_writer = NULL;
    }
    state_destroy();
    return 0;
}

/* ---- client side ---- */

struct xres {
    struct counter done;
    int rc;
    long status;
    int head_calls;
    long head_status;
    int head_in_result;
    int head_rc; /* what on_head returns */
    char reqid[64], ctype[128], custom[64], second[64], later[16];
    int error_non_null;
    uint64_t bytes_in;
    size_t done_body_len;
    struct cm_buf body; /* buffered body (from on_done) or streamed bytes */
    int data_calls;
    struct counter *progress; /* if set, on_data adds the byte count */
    /* pausing */
    int pause_every, pause_next, pauses;
    struct counter *paused;
    char url[256];
    int64_t t0, t_done;
};

static void xres_init(struct xres *xr)
{
    memset(xr, 0, sizeof *xr);
    counter_init(&xr->done);
    cm_buf_init(&xr->body, (size_t)64 << 20);
    xr->rc = -1;
}

static void xres_cleanup(struct xres *xr)
{
    counter_destroy(&xr->done);
    cm_buf_cleanup(&xr->body);
}

static void copy_head(char *dst, size_t n, const struct cm_httpc_head *h, const char *name)
{
    copy_or_null(dst, n, cm_httpc_head_get(h, name));
}

static int x_head(struct cm_httpc_xfer *x, const struct cm_httpc_head *h, void *ud)
{
    struct xres *xr = ud;
    (void)x;
    xr->head_calls++;
    xr->head_status = h->status;
    copy_head(xr->reqid, sizeof xr->reqid, h, "x-request-id");
    copy_head(xr->ctype, sizeof xr->ctype, h, "CONTENT-TYPE");
    copy_head(xr->custom, sizeof xr->custom, h, "X-Custom");
    copy_head(xr->second, sizeof xr->second, h, "x-second");
    copy_head(xr->later, sizeof xr->later, h, "X-LATER");
    return xr->head_rc;
}

static int x_data(struct cm_httpc_xfer *x, const char *p, size_t n, void *ud)
{
    struct xres *xr = ud;
    (void)x;
    if (xr->pause_next) {
        xr->pause_next = 0;
        xr->pauses++;
        counter_add(xr->paused, 1);
        return CM_ERR_AGAIN;
    }
    xr->data_calls++;
    if (cm_buf_append(&xr->body, p, n) != CM_OK)
        return CM_ERR_NOMEM;
    if (xr->progress)
        counter_add(xr->progress, (long)n);
    if (xr->pause_every && xr->data_calls % xr->pause_every == 0)
        xr->pause_next = 1;
    return CM_OK;
}

static void x_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    struct xres *xr = ud;
    (void)x;
    xr->rc = r->rc;
    xr->status = r->status;
    xr->head_in_result = r->head != NULL && r->head->status == r->status;
    xr->error_non_null = r->error != NULL;
    xr->bytes_in = r->bytes_in;
    xr->done_body_len = r->body_len;
    if (r->body_len)
        cm_buf_append(&xr->body, r->body, r->body_len);
    xr->t_done = now_ms();
    counter_add(&xr->done, 1);
}

static const struct cm_httpc_cbs CB_BUF = {x_head, NULL, x_done};
static const struct cm_httpc_cbs CB_STREAM = {x_head, x_data, x_done};

static void req_init(struct cm_httpc_request *rq, struct xres *xr, const char *method,
                     const char *path, uint16_t port)
{
    memset(rq, 0, sizeof *rq);
    snprintf(xr->url, sizeof xr->url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    rq->url = xr->url;
    rq->method = method;
    xr->t0 = now_ms();
}

static void start(const struct cm_httpc_request *rq, const struct cm_httpc_cbs *cbs,
                  struct xres *xr, struct cm_httpc_xfer **out)
{
    assert_int_equal(cm_httpc_start(F.cli, rq, cbs, xr, out), CM_OK);
}

static void wait_done(struct xres *xr)
{
    assert_true(counter_wait(&xr->done, 1, WAIT_MS));
    assert_int_equal(counter_get(&xr->done), 1);
    assert_true(xr->error_non_null);
}

/* A buffered request to the test server; waits for on_done. */
static void fetch(struct xres *xr, const char *method, const char *path, const char *const *hdrs,
                  size_t nh, const void *body, size_t blen)
{
    struct cm_httpc_request rq;
    xres_init(xr);
    req_init(&rq, xr, method, path, F.port);
    rq.headers = hdrs;
    rq.n_headers = nh;
    rq.body = body;
    rq.body_len = blen;
    start(&rq, &CB_BUF, xr, NULL);
    wait_done(xr);
}

static void expect_text(const char *method, const char *path, long status, const char *body)
{
    struct xres xr;
    fetch(&xr, method, path, NULL, 0, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, status);
    if (body) {
        assert_non_null(xr.body.data);
        assert_string_equal(xr.body.data, body);
    }
    xres_cleanup(&xr);
}

/* Parses an error body and checks the OpenAI shape, field by field. */
static void expect_error_json(const struct xres *xr, const char *type, const char *code,
                              const char *message)
{
    cJSON *root, *err, *it;
    assert_non_null(xr->body.data);
    root = cJSON_ParseWithLength(xr->body.data, xr->body.len);
    assert_non_null(root);
    err = cJSON_GetObjectItemCaseSensitive(root, "error");
    assert_true(cJSON_IsObject(err));
    it = cJSON_GetObjectItemCaseSensitive(err, "message");
    assert_true(cJSON_IsString(it));
    if (message)
        assert_string_equal(it->valuestring, message);
    it = cJSON_GetObjectItemCaseSensitive(err, "type");
    assert_true(cJSON_IsString(it));
    assert_string_equal(it->valuestring, type);
    it = cJSON_GetObjectItemCaseSensitive(err, "param");
    assert_true(cJSON_IsNull(it));
    it = cJSON_GetObjectItemCaseSensitive(err, "code");
    if (code) {
        assert_true(cJSON_IsString(it));
        assert_string_equal(it->valuestring, code);
    } else {
        assert_true(cJSON_IsNull(it));
    }
    assert_int_equal(cJSON_GetArraySize(err), 4);
    assert_int_equal(cJSON_GetArraySize(root), 1);
    cJSON_Delete(root);
    assert_string_equal(xr->ctype, "application/json");
}

/* ---- tests: server ---- */

static void routing(void **state)
{
    struct xres xr;
    (void)state;
    fx_server(NULL);
    expect_text("GET", "/hello", 200, "hello");
    expect_text("GET", "/items/42", 200, "id=42");
    assert_true(S.items_missing_param_null);
    expect_text("GET", "/users/7/posts/abc", 200, "uid=7 pid=abc");
    expect_text("GET", "/files/a/b/c.txt", 200, "rest=[a/b/c.txt]");
    expect_text("GET", "/files/", 200, "rest=[]");
    expect_text("GET", "/files", 200, "rest=[]");
    expect_text("GET", "/any", 200, "GET");
    expect_text("PUT", "/any", 200, "PUT");
    expect_text("DELETE", "/any", 200, "DELETE");
    expect_text("POST", "/only-post", 200, "posted");
    assert_int_equal(counter_get(&S.handled), 10);

    /* no route: 404 (":id" needs a non-empty segment, literals match whole segments) */
    fetch(&xr, "GET", "/nope", NULL, 0, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 404);
    expect_error_json(&xr, "invalid_request_error", "not_found", NULL);
    xres_cleanup(&xr);
    expect_text("GET", "/items/", 404, NULL);
    expect_text("GET", "/items/1/2", 404, NULL);
    expect_text("GET", "/hello/x", 404, NULL);
    expect_text("GET", "/hellox", 404, NULL);
    expect_text("GET", "/users/7/posts", 404, NULL);
    /* the path matches, the method does not: 405 */
    fetch(&xr, "GET", "/only-post", NULL, 0, NULL, 0);
    assert_int_equal(xr.status, 405);
    expect_error_json(&xr, "invalid_request_error", "method_not_allowed", NULL);
    xres_cleanup(&xr);
    expect_text("DELETE", "/hello", 405, NULL);
    assert_int_equal(counter_get(&S.handled), 10); /* none of those reached a handler */
}

static void request_accessors(void **state)
{
    struct xres xr, xr2;
    const char *hdrs[] = {"X-Test: Value1", "X-Other: o"};
    char id1[64];
    (void)state;
    fx_server(NULL);

    fetch(&xr, "GET", "/info?q=a%20b&x=1", hdrs, 2, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 200);
    pthread_mutex_lock(&S.m);
    assert_string_equal(S.info.method, "GET");
    assert_string_equal(S.info.path, "/info");
    assert_string_equal(S.info.query, "q=a%20b&x=1");
    assert_string_equal(S.info.arg_q, "a b");
    assert_string_equal(S.info.hdr, "Value1"); /* looked up as "x-test" */
    assert_string_equal(S.info.peer, "127.0.0.1");
    assert_true(S.info.arg_missing_null);
    assert_true(S.info.hdr_missing_null);
    assert_true(S.info.each_found);
    assert_true(S.info.each_count >= 3); /* Host, X-Test, X-Other at least */
    assert_int_equal(S.info.each_stopped, 1);
    assert_true(strlen(S.info.id) > 0);
    assert_string_not_equal(S.info.id, "(null)");
    assert_string_equal(xr.reqid, S.info.id); /* sent back as X-Request-Id */
    snprintf(id1, sizeof id1, "%s", S.info.id);
    pthread_mutex_unlock(&S.m);
    xres_cleanup(&xr);

    /* no query: "" */
    fetch(&xr2, "GET", "/info", NULL, 0, NULL, 0);
    assert_int_equal(xr2.status, 200);
    pthread_mutex_lock(&S.m);
    assert_string_equal(S.info.query, "");
    assert_string_equal(S.info.arg_q, "(null)");
    assert_string_not_equal(S.info.id, id1); /* ids are per request */
    pthread_mutex_unlock(&S.m);
    xres_cleanup(&xr2);

    /* the path is as sent, not percent-decoded; "*" is the rest of it */
    expect_text("GET", "/raw/a%20b/c", 200, "raw");
    pthread_mutex_lock(&S.m);
    assert_string_equal(S.info.raw_path, "/raw/a%20b/c");
    assert_string_equal(S.info.raw_star, "a%20b/c");
    pthread_mutex_unlock(&S.m);
}

static void body_with_nuls(void **state)
{
    struct xres xr;
    size_t n = 300 * 1024;
    char *body = cm_malloc(n);
    (void)state;
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i % 7 == 0 ? 0 : pat(i));
    fx_server(NULL);
    fetch(&xr, "POST", "/echo", NULL, 0, body, n);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 200);
    assert_int_equal(xr.body.len, n);
    assert_memory_equal(xr.body.data, body, n);
    assert_int_equal(xr.bytes_in, n);
    pthread_mutex_lock(&S.m);
    assert_int_equal(S.echo_len, n);
    assert_true(S.echo_nul_terminated);
    pthread_mutex_unlock(&S.m);
    xres_cleanup(&xr);

    /* an empty POST body: "" with length 0 */
    fetch(&xr, "POST", "/echo", NULL, 0, "", 0);
    assert_int_equal(xr.status, 200);
    assert_int_equal(xr.body.len, 0);
    pthread_mutex_lock(&S.m);
    assert_int_equal(S.echo_len, 0);
    assert_true(S.echo_nul_terminated);
    pthread_mutex_unlock(&S.m);
    xres_cleanup(&xr);
    cm_free(body);
}

static void sync_reply_close_once(void **state)
{
    (void)state;
    fx_server(NULL);
    for (int i = 0; i < 3; i++)
        expect_text("GET", "/hello", 200, "hello");
    assert_true(counter_wait(&S.closes, 3, WAIT_MS));
    /* stopping the server runs any close still owed: none may come twice */
    fx_server_free();
    assert_int_equal(counter_get(&S.closes), 3);
    assert_int_equal(atomic_load(&S.closes_ok), 3);
    assert_int_equal(atomic_load(&S.closes_aborted), 0);
}

static void later_reply_from_thread(void **state)
{
    struct xres xr;
    (void)state;
    fx_server(NULL);
    fetch(&xr, "GET", "/later", NULL, 0, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 200);
    assert_string_equal(xr.body.data, "later");
    assert_string_equal(xr.later, "yes"); /* header added from the helper thread */
    assert_true(xr.t_done - xr.t0 >= 45);
    assert_true(counter_wait(&S.helpers_done, 1, WAIT_MS));
    assert_true(counter_wait(&S.closes, 1, WAIT_MS));
    fx_server_free();
    assert_int_equal(counter_get(&S.closes), 1);
    assert_int_equal(atomic_load(&S.closes_ok), 1);
    xres_cleanup(&xr);
}

static void headers_errors_double_reply(void **state)
{
    struct xres xr;
    (void)state;
    fx_server(NULL);

    fetch(&xr, "GET", "/hdr", NULL, 0, NULL, 0);
    assert_int_equal(xr.status, 201);
    assert_string_equal(xr.custom, "v1");
    assert_string_equal(xr.second, "two words");
    assert_string_equal(xr.ctype, "text/plain");
    assert_string_not_equal(xr.reqid, "(null)");
    xres_cleanup(&xr);

    fetch(&xr, "GET", "/err", NULL, 0, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 429);
    expect_error_json(&xr, "rate_limit_error", "rate_limited", "slow down 5");
    xres_cleanup(&xr);

    fetch(&xr, "GET", "/err-null", NULL, 0, NULL, 0);
    assert_int_equal(xr.status, 503);
    expect_error_json(&xr, "server_error", NULL, "boom \"quoted\"");
    xres_cleanup(&xr);

    fetch(&xr, "GET", "/double", NULL, 0, NULL, 0);
    assert_int_equal(xr.status, 200);
    assert_string_equal(xr.body.data, "first");
    pthread_mutex_lock(&S.m);
    assert_int_equal(S.double_rc, CM_ERR_CLOSED);
    assert_int_equal(S.double_err_rc, CM_ERR_CLOSED);
    pthread_mutex_unlock(&S.m);
    xres_cleanup(&xr);
}

static void streamed_response(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    (void)state;

    stream_writer = cm_calloc(1, sizeof *stream_writer);
    assert_non_null(stream_writer);
    counter_init(&stream_writer->woken);
    stream_writer->all = cm_malloc(STREAM_LEN);
    assert_non_null(stream_writer->all);
    stream_expected(stream_writer->all);
    fx_server(NULL);

    xres_init(&xr);
    xr.progress = &S.client_bytes;
    req_init(&rq, &xr, "GET", "/stream", F.port);
    start(&rq, &CB_STREAM, &xr, NULL);
    wait_done(&xr);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 200);
    assert_int_equal(xr.head_calls, 1);
    assert_true(xr.head_in_result);
    assert_int_equal(xr.body.len, STREAM_LEN);
    assert_memory_equal(xr.body.data, stream_writer->all, STREAM_LEN);
    assert_int_equal(xr.bytes_in, STREAM_LEN);
    assert_int_equal(xr.done_body_len, 0); /* streamed, not buffered */
    assert_true(xr.data_calls >= 3);
    assert_true(counter_wait(&S.helpers_done, 1, WAIT_MS));
    assert_true(counter_wait(&S.closes, 1, WAIT_MS));
    pthread_mutex_lock(&S.m);
    assert_int_equal(S.stream_failures, 0); /* each checkpoint arrived before the next piece */
    assert_int_equal(S.stream_agains, 1);   /* the full pipe refused a byte ... */
    assert_int_equal(S.stream_delivered, STREAM_LEN);
    pthread_mutex_unlock(&S.m);
    assert_true(counter_get(&stream_writer->woken) >= 1); /* ... and woke its writer later */
    assert_int_equal(atomic_load(&S.closes_ok), 1);
    assert_int_equal(atomic_load(&S.closes_aborted), 0);
    xres_cleanup(&xr);
}

static int raw_request(uint16_t port, const char *head, const char *body, size_t blen, char *resp,
                       size_t cap)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    size_t got = 0;
    int64_t deadline = now_ms() + WAIT_MS;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, head, strlen(head), MSG_NOSIGNAL) < 0 ||
        (blen && send(fd, body, blen, MSG_NOSIGNAL) < 0)) {
        close(fd);
        return -1;
    }
    while (got + 1 < cap && now_ms() < deadline) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&pf, 1, 100) <= 0)
            continue;
        r = recv(fd, resp + got, cap - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    close(fd);
    return (int)got;
}

static void caps_413_431(void **state)
{
    struct cm_httpd_opts o = {.max_body = 1000, .max_header = 512};
    struct xres xr;
    char *body = cm_malloc(4096), big_hdr[1100], resp[4096], chunk_head[64];
    const char *hdrs[1];
    struct cm_buf raw;
    (void)state;

    assert_non_null(body);
    memset(body, 'b', 4096);
    fx_server(&o);

    fetch(&xr, "POST", "/echo", NULL, 0, body, 1000); /* at the cap: fine */
    assert_int_equal(xr.status, 200);
    assert_int_equal(xr.body.len, 1000);
    xres_cleanup(&xr);
    assert_int_equal(counter_get(&S.handled), 1);

    fetch(&xr, "POST", "/echo", NULL, 0, body, 1001);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 413);
    expect_error_json(&xr, "invalid_request_error", "request_too_large", NULL);
    xres_cleanup(&xr);
    assert_int_equal(counter_get(&S.handled), 1);
    expect_text("GET", "/hello", 200, "hello"); /* the server (and a reused conn) still work */

    snprintf(big_hdr, sizeof big_hdr, "X-Big: %01000d", 0);
    hdrs[0] = big_hdr;
    fetch(&xr, "GET", "/hello", hdrs, 1, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 431);
    expect_error_json(&xr, "invalid_request_error", "request_header_too_large", NULL);
    xres_cleanup(&xr);
    hdrs[0] = "X-Small: a";
    fetch(&xr, "GET", "/hello", hdrs, 1, NULL, 0);
    assert_int_equal(xr.status, 200);
    xres_cleanup(&xr);
    assert_int_equal(counter_get(&S.handled), 3);

    /* a chunked body has no Content-Length: the cap is found while reading */
    cm_buf_init(&raw, 8192);
    snprintf(chunk_head, sizeof chunk_head, "%x\r\n", 2000);
    assert_int_equal(cm_buf_append_str(&raw, chunk_head), CM_OK);
    assert_int_equal(cm_buf_append(&raw, body, 2000), CM_OK);
    assert_int_equal(cm_buf_append_str(&raw, "\r\n0\r\n\r\n"), CM_OK);
    assert_true(raw_request(F.port,
                            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                            "Connection: close\r\n\r\n",
                            raw.data, raw.len, resp, sizeof resp) > 0);
    assert_true(strncmp(resp, "HTTP/1.1 413", 12) == 0);
    assert_non_null(strstr(resp, "request_too_large"));
    assert_int_equal(counter_get(&S.handled), 3);
    cm_buf_cleanup(&raw);
    cm_free(body);
}

static void free_with_suspended_requests(void **state)
{
    struct xres xr[5];
    struct cm_httpc_request rq;
    static const char *const paths[5] = {"/never", "/never", "/never", "/empty-stream", "/stall"};
    int64_t t0, took;
    (void)state;

    fx_server(NULL);
    for (int i = 0; i < 5; i++) {
        xres_init(&xr[i]);
        req_init(&rq, &xr[i], "GET", paths[i], F.port);
        start(&rq, &CB_BUF, &xr[i], NULL);
    }
    assert_true(counter_wait(&S.handled, 5, WAIT_MS));
    sleep_ms(100); /* let the streams reach their parked state */
    assert_int_equal(counter_get(&S.closes), 0);
    t0 = now_ms();
    fx_server_free();
    took = now_ms() - t0;
    assert_true(took < 2000);
    assert_int_equal(counter_get(&S.closes), 5);
    assert_int_equal(atomic_load(&S.closes_aborted), 5);
    for (int i = 0; i < 5; i++) {
        wait_done(&xr[i]);
        assert_int_equal(xr[i].rc, CM_ERR_UPSTREAM);
        xres_cleanup(&xr[i]);
    }
    assert_true(counter_wait(&S.stall_saw_closed, 1, WAIT_MS));
}

static uint16_t closed_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int can_connect(uint16_t port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void free_releases_port(void **state)
{
    uint16_t port;
    (void)state;
    fx_server(NULL);
    port = F.port;
    assert_true(can_connect(port));
    expect_text("GET", "/hello", 200, "hello");
    fx_server_free();
    assert_false(can_connect(port));
}

/* ---- tests: client ---- */

static void client_head_and_modes(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    (void)state;
    fx_server(NULL);

    /* buffered: the body comes with on_done */
    fetch(&xr, "GET", "/hdr", NULL, 0, NULL, 0);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.head_calls, 1);
    assert_int_equal(xr.head_status, 201);
    assert_true(xr.head_in_result);
    assert_int_equal(xr.done_body_len, 4);
    assert_string_equal(xr.body.data, "made");
    assert_int_equal(xr.bytes_in, 4);
    /* header names are case-insensitive; missing ones are NULL */
    assert_string_equal(xr.ctype, "text/plain");
    assert_string_equal(xr.custom, "v1");
    assert_string_equal(xr.later, "(null)");
    xres_cleanup(&xr);

    /* streaming: on_data gets the body, on_done none */
    xres_init(&xr);
    req_init(&rq, &xr, NULL, "/big?n=100000", F.port);
    start(&rq, &CB_STREAM, &xr, NULL);
    wait_done(&xr);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.status, 200);
    assert_int_equal(xr.done_body_len, 0);
    assert_int_equal(xr.body.len, 100000);
    for (size_t i = 0; i < 100000; i++)
        if ((unsigned char)xr.body.data[i] != pat(i))
            fail_msg("byte %zu differs", i);
    xres_cleanup(&xr);

    /* on_head refusing cancels the transfer with its code; no body is delivered */
    xres_init(&xr);
    xr.head_rc = CM_ERR_DENIED;
    req_init(&rq, &xr, "GET", "/big?n=5000", F.port);
    start(&rq, &CB_STREAM, &xr, NULL);
    wait_done(&xr);
    assert_int_equal(xr.rc, CM_ERR_DENIED);
    assert_int_equal(xr.head_calls, 1);
    assert_int_equal(xr.data_calls, 0);
    xres_cleanup(&xr);
}

struct resumer {
    struct counter paused; /* pauses requested by on_data */
    struct cm_httpc_xfer *x;
    atomic_int stop;
    long resumes;
    long long_pause_ms;
};

static void *resumer_main(void *arg)
{
    struct resumer *rs = arg;
    for (long i = 1; !atomic_load(&rs->stop); i++) {
        while (!counter_wait(&rs->paused, i, 50))
            if (atomic_load(&rs->stop))
                return NULL;
        sleep_ms(i == 2 ? rs->long_pause_ms : 2);
        cm_httpc_xfer_resume(rs->x);
        rs->resumes++;
    }
    return NULL;
}

static void client_pause_resume(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    struct resumer rs;
    pthread_t t;
    size_t n = 2u << 20;
    (void)state;
    fx_server(NULL);

    memset(&rs, 0, sizeof rs);
    counter_init(&rs.paused);
    atomic_init(&rs.stop, 0);
    rs.long_pause_ms = 500; /* longer than the idle timeout: paused time must not count */
    xres_init(&xr);
    xr.pause_every = 3;
    xr.paused = &rs.paused;
    req_init(&rq, &xr, "GET", "/big?n=2097152", F.port);
    rq.idle_timeout_ms = 300;
    start(&rq, &CB_STREAM, &xr, &rs.x);
    assert_int_equal(pthread_create(&t, NULL, resumer_main, &rs), 0);
    assert_true(counter_wait(&xr.done, 1, 3 * WAIT_MS));
    atomic_store(&rs.stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);

    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.body.len, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)xr.body.data[i] != pat(i))
            fail_msg("byte %zu differs", i);
    assert_int_equal(xr.bytes_in, n);
    assert_true(xr.pauses >= 3);
    assert_int_equal(rs.resumes, xr.pauses);
    cm_httpc_xfer_resume(rs.x); /* after the end: a no-op */
    cm_httpc_xfer_unref(rs.x);
    counter_destroy(&rs.paused);
    xres_cleanup(&xr);
}

static void client_cancel(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    struct cm_httpc_xfer *x = NULL;
    (void)state;
    fx_server(NULL);

    xres_init(&xr);
    req_init(&rq, &xr, "GET", "/never", F.port);
    start(&rq, &CB_BUF, &xr, &x);
    assert_non_null(x);
    assert_true(counter_wait(&S.handled, 1, WAIT_MS));
    assert_int_equal(cm_httpc_active(F.cli), 1);
    cm_httpc_xfer_cancel(x);
    wait_done(&xr);
    assert_int_equal(xr.rc, CM_ERR_CLOSED);
    assert_int_equal(xr.status, 0);
    cm_httpc_xfer_cancel(x); /* already done: no second on_done */
    /* the server sees the client leave (watchdog) and ends the request as aborted */
    assert_true(counter_wait(&S.closes, 1, WAIT_MS));
    assert_int_equal(atomic_load(&S.closes_aborted), 1);
    assert_int_equal(counter_get(&xr.done), 1);
    assert_int_equal(cm_httpc_active(F.cli), 0);
    cm_httpc_xfer_unref(x);
    xres_cleanup(&xr);
}

static void client_connect_failure(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    uint16_t port = closed_port();
    (void)state;
    assert_true(port != 0);
    xres_init(&xr);
    req_init(&rq, &xr, "GET", "/x", port);
    start(&rq, &CB_BUF, &xr, NULL);
    wait_done(&xr);
    assert_int_equal(xr.rc, CM_ERR_UPSTREAM);
    assert_int_equal(xr.status, 0);
    assert_int_equal(xr.head_calls, 0);
    assert_false(xr.head_in_result);
    xres_cleanup(&xr);
}

static void client_timeouts(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    int64_t took;
    (void)state;
    fx_server(NULL);

    /* first byte: the handler never replies */
    xres_init(&xr);
    req_init(&rq, &xr, "GET", "/never", F.port);
    rq.first_byte_timeout_ms = 300;
    start(&rq, &CB_BUF, &xr, NULL);
    wait_done(&xr);
    took = xr.t_done - xr.t0;
    assert_int_equal(xr.rc, CM_ERR_TIMEOUT);
    assert_int_equal(xr.status, 0);
    assert_true(took >= 300);
    assert_true(took < 1500);
    xres_cleanup(&xr);
    /* the abandoned request is ended on the server as aborted */
    assert_true(counter_wait(&S.closes, 1, WAIT_MS));
    assert_int_equal(atomic_load(&S.closes_aborted), 1);

    /* idle: the stream sends one piece and stalls */
    xres_init(&xr);
    req_init(&rq, &xr, "GET", "/stall", F.port);
    rq.idle_timeout_ms = 300;
    start(&rq, &CB_STREAM, &xr, NULL);
    wait_done(&xr);
    took = xr.t_done - xr.t0;
    assert_int_equal(xr.rc, CM_ERR_TIMEOUT);
    assert_int_equal(xr.status, 200);
    assert_int_equal(xr.body.len, 5);
    assert_memory_equal(xr.body.data, "first", 5);
    assert_true(took >= 300);
    assert_true(took < 1500);
    xres_cleanup(&xr);
    /* server: the stream's reader is marked gone, the producer's next write fails */
    assert_true(counter_wait(&S.stall_saw_closed, 1, WAIT_MS));
    assert_true(counter_wait(&S.closes, 2, WAIT_MS));
    assert_int_equal(atomic_load(&S.closes_aborted), 2);
}

static void client_max_response(void **state)
{
    struct xres xr;
    struct cm_httpc_request rq;
    static const char *const paths[] = {"/big?n=100000", "/big?n=100000&chunked=1"};
    (void)state;
    fx_server(NULL);

    for (int i = 0; i < 2; i++) {
        /* over the cap: with a Content-Length, and chunked */
        xres_init(&xr);
        req_init(&rq, &xr, "GET", paths[i], F.port);
        rq.max_response = 1000;
        start(&rq, &CB_BUF, &xr, NULL);
        wait_done(&xr);
        assert_int_equal(xr.rc, CM_ERR_LIMIT);
        assert_true(xr.bytes_in <= 1000);
        xres_cleanup(&xr);
        /* streaming mode too */
        xres_init(&xr);
        req_init(&rq, &xr, "GET", paths[i], F.port);
        rq.max_response = 1000;
        start(&rq, &CB_STREAM, &xr, NULL);
        wait_done(&xr);
        assert_int_equal(xr.rc, CM_ERR_LIMIT);
        assert_true(xr.body.len <= 1000);
        xres_cleanup(&xr);
    }
    /* exactly at the cap is fine */
    xres_init(&xr);
    req_init(&rq, &xr, "GET", "/big?n=1000&chunked=1", F.port);
    rq.max_response = 1000;
    start(&rq, &CB_BUF, &xr, NULL);
    wait_done(&xr);
    assert_int_equal(xr.rc, CM_OK);
    assert_int_equal(xr.body.len, 1000);
    xres_cleanup(&xr);
}

#define NCONC 200

static void client_many_concurrent(void **state)
{
    struct xres *xr = cm_calloc(NCONC, sizeof *xr);
    struct cm_httpc_request rq;
    char path[64], want[64], bodies[NCONC][16];
    (void)state;
    assert_non_null(xr);
    fx_server(NULL);

    for (int i = 0; i < NCONC; i++) {
        xres_init(&xr[i]);
        if (i % 3 == 0)
            snprintf(path, sizeof path, "/items/%d", i);
        else if (i % 3 == 1)
            snprintf(path, sizeof path, "/later");
        else
            snprintf(path, sizeof path, "/echo");
        req_init(&rq, &xr[i], i % 3 == 2 ? "POST" : "GET", path, F.port);
        if (i % 3 == 2) {
            int n = snprintf(bodies[i], sizeof bodies[i], "body-%d", i);
            rq.body = bodies[i];
            rq.body_len = (size_t)n;
        }
        start(&rq, &CB_BUF, &xr[i], NULL);
    }
    for (int i = 0; i < NCONC; i++) {
        assert_true(counter_wait(&xr[i].done, 1, 3 * WAIT_MS));
        assert_int_equal(xr[i].rc, CM_OK);
        assert_int_equal(xr[i].status, 200);
        if (i % 3 == 0)
            snprintf(want, sizeof want, "id=%d", i);
        else if (i % 3 == 1)
            snprintf(want, sizeof want, "later");
        else
            snprintf(want, sizeof want, "body-%d", i);
        assert_string_equal(xr[i].body.data, want);
    }
    assert_int_equal(counter_get(&S.handled), NCONC);
    assert_int_equal(cm_httpc_active(F.cli), 0);
    for (int i = 0; i < NCONC; i++) {
        assert_int_equal(counter_get(&xr[i].done), 1);
        xres_cleanup(&xr[i]);
    }
    cm_free(xr);
}

/* Server-side TCP sockets on @p port that are not listening (from /proc/net/tcp). */
static int server_conns(uint16_t port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned lport, st;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x", &lport, &st) == 2 && lport == port &&
            st != 0x0A)
            n++;
    }
    fclose(f);
    return n;
}

static void client_keepalive_reuse(void **state)
{
    (void)state;
    fx_server(NULL);
    for (int i = 0; i < 10; i++)
        expect_text("GET", "/hello", 200, "hello");
    /* one connection served all ten requests */
    assert_int_equal(server_conns(F.port), 1);
}

static void client_free_in_flight(void **state)
{
    struct cm_httpc *c2 = NULL;
    struct xres xr[6];
    struct cm_httpc_request rq;
    static const char *const paths[6] = {"/never", "/never", "/stall",
                                         "/never", "/never", "/later"};
    (void)state;
    fx_server(NULL);
    assert_int_equal(cm_httpc_new(NULL, &c2), CM_OK);

    for (int i = 0; i < 6; i++) {
        xres_init(&xr[i]);
        req_init(&rq, &xr[i], "GET", paths[i], F.port);
        assert_int_equal(cm_httpc_start(c2, &rq, &CB_BUF, &xr[i], NULL), CM_OK);
        if (i == 2) /* the first three are running on the server; the rest may be queued */
            assert_true(counter_wait(&S.handled, 3, WAIT_MS));
    }
    cm_httpc_free(c2);
    /* every on_done has run, exactly once, before cm_httpc_free() returned */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(counter_get(&xr[i].done), 1);
        assert_int_equal(xr[i].rc, CM_ERR_CLOSED);
        assert_true(xr[i].error_non_null);
        xres_cleanup(&xr[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(routing, setup, teardown),
        cmocka_unit_test_setup_teardown(request_accessors, setup, teardown),
        cmocka_unit_test_setup_teardown(body_with_nuls, setup, teardown),
        cmocka_unit_test_setup_teardown(sync_reply_close_once, setup, teardown),
        cmocka_unit_test_setup_teardown(later_reply_from_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(headers_errors_double_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(streamed_response, setup, teardown),
        cmocka_unit_test_setup_teardown(caps_413_431, setup, teardown),
        cmocka_unit_test_setup_teardown(free_with_suspended_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(free_releases_port, setup, teardown),
        cmocka_unit_test_setup_teardown(client_head_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(client_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(client_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(client_connect_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(client_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(client_max_response, setup, teardown),
        cmocka_unit_test_setup_teardown(client_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(client_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(client_free_in_flight, setup, teardown),
    };
    cm_log_set_level(CM_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
