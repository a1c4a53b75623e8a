/* SPDX-License-Identifier: MIT */
/*
 * httpc.c - libcurl multi + epoll, one I/O thread ("hiperfifo" shape).
 *
 * Other threads talk to the I/O thread only through a lock-free stack of transfers
 * with pending commands (start / resume / cancel bits) and an eventfd. Everything
 * about a running transfer (its easy handle, buffers, timers) is touched only by the
 * I/O thread. Our own first-byte and idle timeouts are checked by a scan of the
 * active list every 100 ms; connect and total timeouts are curl's.
 */
#include "cm/httpc.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CMD_START 1
#define CMD_RESUME 2
#define CMD_CANCEL 4
#define HEAD_MAX (64 * 1024)
#define SCAN_MS 100
#define EASY_POOL 64

struct cm_httpc_xfer {
    atomic_int refs;
    struct cm_httpc *c;
    /* command queue linkage */
    struct cm_httpc_xfer *cmd_next;
    atomic_int queued;
    atomic_int want;
    /* I/O thread only below */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    size_t body_len;
    char *url, *method, *proxy; /* owned copies, used when the I/O thread sets up the easy */
    long connect_ms, total_ms;
    struct cm_httpc_cbs cbs;
    void *ud;
    char *log_id;
    int in_multi, done, paused, got_any, got_head, fail_rc;
    long status;
    struct cm_buf head;
    struct cm_buf bodybuf;
    uint64_t bytes_in;
    size_t max_response;
    int64_t t_start, t_last;
    long first_byte_ms, idle_ms;
    struct cm_httpc_xfer *prev, *next; /* active list */
    char errbuf[CURL_ERROR_SIZE];
};

struct cm_httpc {
    CURLM *multi;
    int epfd;
    int evfd;
    pthread_t thr;
    int thr_started;
    atomic_int stop;
    _Atomic(struct cm_httpc_xfer *) cmds;
    int64_t timer_deadline; /* -1: none */
    int64_t now;
    int64_t last_scan;
    struct cm_httpc_xfer *active;
    atomic_uint n_active;
    CURL *pool[EASY_POOL]; /* idle easy handles for reuse (I/O thread only) */
    unsigned npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cm_httpc_xfer_ref(struct cm_httpc_xfer *x)
{
    atomic_fetch_add(&x->refs, 1);
}

static void xfer_free(struct cm_httpc_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    cm_free(x->body);
    cm_free(x->url);
    cm_free(x->method);
    cm_free(x->proxy);
    cm_free(x->log_id);
    cm_buf_cleanup(&x->head);
    cm_buf_cleanup(&x->bodybuf);
    cm_free(x);
}

void cm_httpc_xfer_unref(struct cm_httpc_xfer *x)
{
    if (x && atomic_fetch_sub(&x->refs, 1) == 1)
        xfer_free(x);
}

unsigned cm_httpc_active(struct cm_httpc *c)
{
    return atomic_load(&c->n_active);
}

void cm_httpc_slot_init(struct cm_httpc_slot *s)
{
    pthread_mutex_init(&s->_mu, NULL);
    s->_x = NULL;
}

void cm_httpc_slot_cleanup(struct cm_httpc_slot *s)
{
    if (s->_x)
        cm_httpc_xfer_unref(s->_x);
    s->_x = NULL;
    pthread_mutex_destroy(&s->_mu);
}

void cm_httpc_slot_set(struct cm_httpc_slot *s, struct cm_httpc_xfer *x)
{
    struct cm_httpc_xfer *old;
    pthread_mutex_lock(&s->_mu);
    old = s->_x;
    s->_x = x;
    pthread_mutex_unlock(&s->_mu);
    if (old)
        cm_httpc_xfer_unref(old);
}

void cm_httpc_slot_resume(struct cm_httpc_slot *s)
{
    pthread_mutex_lock(&s->_mu);
    if (s->_x)
        cm_httpc_xfer_resume(s->_x);
    pthread_mutex_unlock(&s->_mu);
}

void cm_httpc_slot_cancel(struct cm_httpc_slot *s)
{
    pthread_mutex_lock(&s->_mu);
    if (s->_x)
        cm_httpc_xfer_cancel(s->_x);
    pthread_mutex_unlock(&s->_mu);
}

void cm_httpc_slot_wake(void *slot)
{
    cm_httpc_slot_resume(slot);
}

const char *cm_httpc_head_get(const struct cm_httpc_head *h, const char *name)
{
    size_t nl = strlen(name);
    const char *p = h->raw, *end = h->raw + h->raw_len;
    while (p && p < end) {
        size_t l = strlen(p);
        if (l > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        p += l + 1;
    }
    return NULL;
}

/* ---- commands (any thread -> I/O thread) ---- */

static void push_cmd(struct cm_httpc_xfer *x, int bit)
{
    struct cm_httpc *c = x->c;
    struct cm_httpc_xfer *head;
    uint64_t one = 1;

    atomic_fetch_or(&x->want, bit);
    if (atomic_exchange(&x->queued, 1))
        return; /* already on the stack; the I/O thread will see the new bit */
    cm_httpc_xfer_ref(x);
    head = atomic_load(&c->cmds);
    do {
        x->cmd_next = head;
    } while (!atomic_compare_exchange_weak(&c->cmds, &head, x));
    if (!head && write(c->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
        cm_log_error(NULL, "httpc: eventfd write: %s", strerror(errno));
}

void cm_httpc_xfer_resume(struct cm_httpc_xfer *x)
{
    push_cmd(x, CMD_RESUME);
}

void cm_httpc_xfer_cancel(struct cm_httpc_xfer *x)
{
    push_cmd(x, CMD_CANCEL);
}

/* ---- I/O thread ---- */

static void finish(struct cm_httpc_xfer *x, int rc, const char *why)
{
    struct cm_httpc *c = x->c;
    struct cm_httpc_head head;
    struct cm_httpc_result r;

    if (x->done)
        return;
    x->done = 1;
    if (x->in_multi) {
        curl_multi_remove_handle(c->multi, x->easy);
        x->in_multi = 0;
        if (x->prev)
            x->prev->next = x->next;
        else
            c->active = x->next;
        if (x->next)
            x->next->prev = x->prev;
        x->prev = x->next = NULL;
        atomic_fetch_sub(&c->n_active, 1);
    }
    head.status = x->got_head ? x->status : 0;
    head.raw = x->head.data ? x->head.data : "";
    head.raw_len = x->head.len;
    memset(&r, 0, sizeof r);
    r.rc = rc;
    r.status = head.status;
    r.head = x->got_head ? &head : NULL;
    r.body = x->bodybuf.data ? x->bodybuf.data : "";
    r.body_len = x->bodybuf.len;
    r.bytes_in = x->bytes_in;
    r.error = why ? why : (x->errbuf[0] ? x->errbuf : cm_err_str(rc));
    if (rc && rc != CM_ERR_CLOSED)
        cm_log_debug(x->log_id, "httpc: transfer failed: %s (%s)", cm_err_str(rc), r.error);
    if (x->cbs.on_done)
        x->cbs.on_done(x, &r, x->ud);
    if (x->easy) { /* keep the handle (and its buffers) for the next transfer */
        if (c->npool < EASY_POOL)
            c->pool[c->npool++] = x->easy;
        else
            curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    cm_httpc_xfer_unref(x); /* httpc's own reference */
}

static int setup_easy(struct cm_httpc_xfer *x);

static void start_xfer(struct cm_httpc *c, struct cm_httpc_xfer *x)
{
    CURLMcode mc;
    int rc;

    if (c->npool) {
        x->easy = c->pool[--c->npool];
        curl_easy_reset(x->easy);
    } else {
        x->easy = curl_easy_init();
    }
    if (!x->easy) {
        finish(x, CM_ERR_NOMEM, "cannot create a transfer");
        return;
    }
    rc = setup_easy(x);
    if (rc) {
        finish(x, rc, "cannot set up the transfer");
        return;
    }
    x->t_start = x->t_last = c->now;
    mc = curl_multi_add_handle(c->multi, x->easy);
    if (mc != CURLM_OK) {
        finish(x, CM_ERR_INTERNAL, curl_multi_strerror(mc));
        return;
    }
    x->in_multi = 1;
    x->next = c->active;
    if (c->active)
        c->active->prev = x;
    c->active = x;
    atomic_fetch_add(&c->n_active, 1);
}

static void run_cmds(struct cm_httpc *c)
{
    struct cm_httpc_xfer *list = atomic_exchange(&c->cmds, NULL), *rev = NULL, *x;

    while (list) { /* LIFO -> FIFO */
        x = list;
        list = x->cmd_next;
        x->cmd_next = rev;
        rev = x;
    }
    while ((x = rev)) {
        int want;
        rev = x->cmd_next;
        atomic_store(&x->queued, 0);
        want = atomic_exchange(&x->want, 0);
        if (!x->done) {
            if (want & CMD_CANCEL) {
                finish(x, CM_ERR_CLOSED, "cancelled");
            } else {
                if (want & CMD_START)
                    start_xfer(c, x);
                if ((want & CMD_RESUME) && x->paused && x->in_multi) {
                    x->paused = 0;
                    x->t_last = c->now;
                    curl_easy_pause(x->easy, CURLPAUSE_CONT);
                }
            }
        }
        cm_httpc_xfer_unref(x); /* the queue's reference */
    }
}

static size_t header_cb(char *p, size_t sz, size_t nm, void *ud)
{
    struct cm_httpc_xfer *x = ud;
    size_t n = sz * nm, l = n;
    int rc;

    x->got_any = 1;
    x->t_last = x->c->now;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);
        cm_buf_reset(&x->head);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    while (l && (p[l - 1] == '\r' || p[l - 1] == '\n'))
        l--;
    if (l == 0) { /* end of a head */
        if (x->status >= 200 && !x->got_head) {
            struct cm_httpc_head h = {x->status, x->head.data ? x->head.data : "", x->head.len};
            x->got_head = 1;
            if (!x->cbs.on_data) { /* buffered: size the body buffer from Content-Length once */
                curl_off_t cl = -1;
                curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                if (cl > 0 && (size_t)cl <= x->max_response)
                    cm_buf_reserve(&x->bodybuf, (size_t)cl);
            }
            if (x->cbs.on_head && (rc = x->cbs.on_head(x, &h, x->ud)) != CM_OK) {
                x->fail_rc = rc;
                return 0;
            }
        }
        return n;
    }
    if (cm_buf_append(&x->head, p, l) || cm_buf_append(&x->head, "", 1)) {
        x->fail_rc = CM_ERR_LIMIT;
        return 0;
    }
    return n;
}

static size_t write_cb(char *p, size_t sz, size_t nm, void *ud)
{
    struct cm_httpc_xfer *x = ud;
    size_t n = sz * nm;
    int rc;

    x->got_any = 1;
    x->t_last = x->c->now;
    if (x->bytes_in + n > x->max_response) {
        x->fail_rc = CM_ERR_LIMIT;
        return 0;
    }
    if (x->cbs.on_data) {
        rc = x->cbs.on_data(x, p, n, x->ud);
        if (rc == CM_ERR_AGAIN) {
            x->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        if (rc) {
            x->fail_rc = rc;
            return 0;
        }
    } else if ((rc = cm_buf_append(&x->bodybuf, p, n)) != CM_OK) {
        x->fail_rc = rc;
        return 0;
    }
    x->bytes_in += n;
    return n;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct cm_httpc *c = userp;
    struct epoll_event ev;
    (void)e;

    memset(&ev, 0, sizeof ev);
    ev.data.fd = s;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (socketp) {
        if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
            epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev);
    } else {
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
            epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(c->multi, s, (void *)1);
    }
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct cm_httpc *c = userp;
    (void)m;
    c->timer_deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
    return 0;
}

static void read_info(struct cm_httpc *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        struct cm_httpc_xfer *x = NULL;
        CURLcode res;
        int rc;
        if (m->msg != CURLMSG_DONE)
            continue;
        res = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (res == CURLE_OK)
            rc = x->got_head ? CM_OK : CM_ERR_UPSTREAM;
        else if (x->fail_rc)
            rc = x->fail_rc;
        else if (res == CURLE_OPERATION_TIMEDOUT)
            rc = CM_ERR_TIMEOUT;
        else if (res == CURLE_FILESIZE_EXCEEDED) /* Content-Length over max_response */
            rc = CM_ERR_LIMIT;
        else
            rc = CM_ERR_UPSTREAM;
        finish(x, rc,
               res == CURLE_OK ? NULL : (x->errbuf[0] ? x->errbuf : curl_easy_strerror(res)));
    }
}

static void scan_timeouts(struct cm_httpc *c)
{
    struct cm_httpc_xfer *x = c->active, *next;
    for (; x; x = next) {
        next = x->next;
        if (!x->got_any && x->first_byte_ms > 0 && c->now - x->t_start > x->first_byte_ms)
            finish(x, CM_ERR_TIMEOUT, "no response from upstream in time (first-byte timeout)");
        else if (x->got_any && !x->paused && x->idle_ms > 0 && c->now - x->t_last > x->idle_ms)
            finish(x, CM_ERR_TIMEOUT, "upstream went quiet (idle timeout)");
    }
}

static void *io_main(void *arg)
{
    struct cm_httpc *c = arg;
    struct epoll_event evs[256];
    int running;

    while (!atomic_load(&c->stop)) {
        int timeout = 1000, n;
        c->now = mono_ms();
        if (c->timer_deadline >= 0) {
            int64_t d = c->timer_deadline - c->now;
            if (d < timeout)
                timeout = d < 0 ? 0 : (int)d;
        }
        if (c->active && timeout > SCAN_MS)
            timeout = SCAN_MS;
        n = epoll_wait(c->epfd, evs, 256, timeout);
        if (n < 0 && errno != EINTR) {
            cm_log_error(NULL, "httpc: epoll_wait: %s", strerror(errno));
            break;
        }
        c->now = mono_ms();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd, flags = 0;
            if (fd == c->evfd) {
                uint64_t v;
                if (read(c->evfd, &v, sizeof v) < 0 && errno != EAGAIN)
                    cm_log_error(NULL, "httpc: eventfd read: %s", strerror(errno));
                run_cmds(c);
                continue;
            }
            if (evs[i].events & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(c->multi, fd, flags, &running);
        }
        if (c->timer_deadline >= 0 && mono_ms() >= c->timer_deadline) {
            c->timer_deadline = -1;
            curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        read_info(c);
        if (c->now - c->last_scan >= SCAN_MS) {
            c->last_scan = c->now;
            scan_timeouts(c);
        }
    }
    /* shutting down: everything queued or running ends as cancelled */
    run_cmds(c);
    while (c->active)
        finish(c->active, CM_ERR_CLOSED, "client shut down");
    return NULL;
}

int cm_httpc_new(const struct cm_httpc_opts *opts, struct cm_httpc **out)
{
    struct cm_httpc *c = NULL;
    struct epoll_event ev;
    int rc = CM_OK;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return CM_ERR_INTERNAL;
    c = cm_calloc(1, sizeof *c);
    if (!c)
        return CM_ERR_NOMEM;
    c->epfd = c->evfd = -1;
    c->timer_deadline = -1;
    c->multi = curl_multi_init();
    if (!c->multi) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->epfd < 0 || c->evfd < 0) {
        cm_log_error(NULL, "httpc: epoll/eventfd: %s", strerror(errno));
        rc = CM_ERR_IO;
        goto out;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = c->evfd;
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) < 0) {
        rc = CM_ERR_IO;
        goto out;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                      (long)(opts && opts->conn_cache ? opts->conn_cache : 256));
    if (opts && opts->max_host_conns)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)opts->max_host_conns);
    if (pthread_create(&c->thr, NULL, io_main, c) != 0) {
        rc = CM_ERR_IO;
        goto out;
    }
    c->thr_started = 1;
    *out = c;
    return CM_OK;
out:
    cm_httpc_free(c);
    return rc;
}

void cm_httpc_free(struct cm_httpc *c)
{
    uint64_t one = 1;
    if (!c)
        return;
    if (c->thr_started) {
        atomic_store(&c->stop, 1);
        if (write(c->evfd, &one, sizeof one) < 0)
            cm_log_error(NULL, "httpc: eventfd write: %s", strerror(errno));
        pthread_join(c->thr, NULL);
    }
    for (unsigned i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->evfd >= 0)
        close(c->evfd);
    cm_free(c);
}

/* Sets every option of a fresh or reset easy handle (I/O thread). */
static int setup_easy(struct cm_httpc_xfer *x)
{
    CURL *e = x->easy;
    const char *method = x->method;
    CURLcode cc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_PRIVATE, x);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTPHEADER, x->hdrs);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_PROXY, x->proxy ? x->proxy : "");
    SET(CURLOPT_CONNECTTIMEOUT_MS, x->connect_ms > 0 ? x->connect_ms : 10000L);
    if (x->total_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, x->total_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_response);
    if (x->body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        SET(CURLOPT_POSTFIELDS, x->body);
    }
    if (strcmp(method, "GET") == 0 && !x->body)
        SET(CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0 || !x->body)
        SET(CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        SET(CURLOPT_NOBODY, 1L);
#undef SET
    if (cc != CURLE_OK) {
        cm_log_error(x->log_id, "httpc: setopt: %s", curl_easy_strerror(cc));
        return cc == CURLE_OUT_OF_MEMORY ? CM_ERR_NOMEM : CM_ERR_INVAL;
    }
    return CM_OK;
}

/* Copies the request's headers into x->hdrs, plus "Expect:" (no 100-continue round trip). */
static int copy_headers(struct cm_httpc_xfer *x, const struct cm_httpc_request *rq)
{
    for (size_t i = 0; i <= rq->n_headers; i++) {
        struct curl_slist *n =
            curl_slist_append(x->hdrs, i < rq->n_headers ? rq->headers[i] : "Expect:");
        if (!n)
            return CM_ERR_NOMEM;
        x->hdrs = n;
    }
    return CM_OK;
}

int cm_httpc_start(struct cm_httpc *c, const struct cm_httpc_request *rq,
                   const struct cm_httpc_cbs *cbs, void *ud, struct cm_httpc_xfer **out)
{
    struct cm_httpc_xfer *x;
    int rc;

    if (!rq || !rq->url || !cbs || !cbs->on_done)
        return CM_ERR_INVAL;
    x = cm_calloc(1, sizeof *x);
    if (!x)
        return CM_ERR_NOMEM;
    atomic_init(&x->refs, 1);
    x->c = c;
    x->cbs = *cbs;
    x->ud = ud;
    x->max_response = rq->max_response ? rq->max_response : (size_t)64 << 20;
    x->first_byte_ms = rq->first_byte_timeout_ms;
    x->idle_ms = rq->idle_timeout_ms;
    cm_buf_init(&x->head, HEAD_MAX);
    cm_buf_reserve(&x->head, 1024); /* typical response heads fit without regrowth */
    cm_buf_init(&x->bodybuf, x->max_response);
    x->connect_ms = rq->connect_timeout_ms;
    x->total_ms = rq->total_timeout_ms;
    x->body_len = rq->body_len;
    rc = CM_ERR_NOMEM;
    if (rq->log_id && !(x->log_id = cm_strdup(rq->log_id)))
        goto out;
    if (!(x->url = cm_strdup(rq->url)))
        goto out;
    if (!(x->method = cm_strdup(rq->method ? rq->method : rq->body ? "POST" : "GET")))
        goto out;
    if (rq->proxy && *rq->proxy && !(x->proxy = cm_strdup(rq->proxy)))
        goto out;
    if (rq->body && !(x->body = cm_malloc(rq->body_len ? rq->body_len : 1)))
        goto out;
    if (rq->body && rq->body_len)
        memcpy(x->body, rq->body, rq->body_len);
    rc = copy_headers(x, rq);
    if (rc)
        goto out;
    if (out) {
        cm_httpc_xfer_ref(x);
        *out = x;
    }
    push_cmd(x, CMD_START);
    return CM_OK;
out:
    xfer_free(x);
    return rc;
}
