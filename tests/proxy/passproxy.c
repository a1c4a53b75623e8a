/* SPDX-License-Identifier: MIT */
/*
 * passproxy.c - a pass-through HTTP proxy built only from libcommon's httpd + httpc +
 * pipe. It exists to prove (tests/integration/1x_proxy_*) and measure (bench/) the
 * core; it is not shipped. Every request goes to --upstream + the same path and query;
 * text/event-stream responses are streamed through a cm_pipe as they arrive, others
 * are buffered and sent with a Content-Length.
 *
 *   passproxy --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9000 [options]
 */
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/httpd.h"
#include "cm/log.h"
#include "cm/pipe.h"
#include "cm/sys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct proxy {
    struct cm_httpc *client;
    const char *upstream;
    size_t pipe_cap;
    size_t max_response;
    const char *proxy; /* upstream proxy URL or NULL */
    long first_byte_ms, idle_ms;
};

struct job {
    atomic_int refs;
    struct proxy *px;
    struct cm_httpd_req *req;
    struct cm_httpc_xfer *xfer;
    struct cm_pipe *pipe;
    struct cm_buf body;
    long status;
    char ctype[128];
};

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    cm_httpd_req_unref(j->req);
    if (j->xfer)
        cm_httpc_xfer_unref(j->xfer);
    cm_pipe_unref(j->pipe);
    cm_buf_cleanup(&j->body);
    cm_free(j);
}

static const char *const hop_by_hop[] = {"connection",
                                         "keep-alive",
                                         "proxy-connection",
                                         "transfer-encoding",
                                         "te",
                                         "trailer",
                                         "upgrade",
                                         "host",
                                         "content-length",
                                         "expect",
                                         "accept-encoding",
                                         NULL};

static int is_hop(const char *name, size_t len)
{
    for (int i = 0; hop_by_hop[i]; i++)
        if (strlen(hop_by_hop[i]) == len && strncasecmp(name, hop_by_hop[i], len) == 0)
            return 1;
    return 0;
}

struct hdr_list {
    char *lines[64];
    size_t n;
};

static int collect_header(const char *name, const char *value, void *ud)
{
    struct hdr_list *h = ud;
    struct cm_buf b;
    if (is_hop(name, strlen(name)) || h->n >= 64)
        return 0;
    cm_buf_init(&b, 16 * 1024);
    if (cm_buf_appendf(&b, "%s: %s", name, value) == CM_OK)
        h->lines[h->n++] = cm_buf_release(&b, NULL);
    cm_buf_cleanup(&b);
    return 0;
}

/* pipe writer hook (pipe lock held): room again, or the client is gone */
static void writer_wake(void *ud)
{
    struct job *j = ud;
    cm_httpc_xfer_resume(j->xfer);
}

static int on_head(struct cm_httpc_xfer *x, const struct cm_httpc_head *h, void *ud)
{
    struct job *j = ud;
    const char *ct = cm_httpc_head_get(h, "content-type");
    const char *p = h->raw, *end = h->raw + h->raw_len;
    (void)x;

    j->status = h->status;
    snprintf(j->ctype, sizeof j->ctype, "%s", ct ? ct : "application/octet-stream");
    for (; p < end; p += strlen(p) + 1) { /* forward end-to-end response headers */
        const char *colon = strchr(p, ':');
        char name[128];
        if (!colon || (size_t)(colon - p) >= sizeof name)
            continue;
        if (is_hop(p, (size_t)(colon - p)) || strncasecmp(p, "content-type", 12) == 0 ||
            strncasecmp(p, "date:", 5) == 0 || strncasecmp(p, "server:", 7) == 0)
            continue;
        memcpy(name, p, (size_t)(colon - p));
        name[colon - p] = '\0';
        cm_httpd_add_header(j->req, name, colon + 1 + strspn(colon + 1, " "));
    }
    if (ct && strncasecmp(ct, "text/event-stream", 17) == 0) {
        j->pipe = cm_pipe_new(j->px->pipe_cap);
        if (!j->pipe)
            return CM_ERR_NOMEM;
        cm_pipe_set_writer_hook(j->pipe, writer_wake, j);
        cm_httpd_add_header(j->req, "Cache-Control", "no-cache");
        if (cm_httpd_reply_stream(j->req, (unsigned)h->status, j->ctype, j->pipe) != CM_OK)
            return CM_ERR_CLOSED;
    } else {
        const char *cl = cm_httpc_head_get(h, "content-length");
        if (cl) /* buffered reply: one allocation of the announced size */
            cm_buf_reserve(&j->body, strtoul(cl, NULL, 10));
    }
    return CM_OK;
}

static int on_data(struct cm_httpc_xfer *x, const char *p, size_t n, void *ud)
{
    struct job *j = ud;
    (void)x;
    if (j->pipe)
        return cm_pipe_write(j->pipe, p, n);
    return cm_buf_append(&j->body, p, n);
}

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    struct job *j = ud;
    (void)x;
    if (j->pipe) {
        cm_pipe_close(j->pipe, r->rc);
    } else if (r->rc == CM_OK) {
        size_t len = 0;
        char *body = cm_buf_release(&j->body, &len);
        cm_httpd_reply_take(j->req, (unsigned)j->status, j->ctype, body, len);
    } else if (r->rc != CM_ERR_CLOSED) {
        unsigned st = r->rc == CM_ERR_TIMEOUT ? 504 : r->rc == CM_ERR_LIMIT ? 502 : 502;
        cm_httpd_reply_error(j->req, st, "upstream_error", cm_err_str(r->rc), "upstream: %s",
                             r->error);
    }
    job_unref(j);
}

static void on_close(struct cm_httpd_req *req, int aborted, void *ud)
{
    struct job *j = ud;
    (void)req;
    if (aborted && j->xfer)
        cm_httpc_xfer_cancel(j->xfer);
    job_unref(j);
}

static void handle(struct cm_httpd_req *req, void *ud)
{
    struct proxy *px = ud;
    struct job *j = cm_calloc(1, sizeof *j);
    struct hdr_list hl = {.n = 0};
    struct cm_buf url;
    struct cm_httpc_request rq;
    static const struct cm_httpc_cbs cbs = {on_head, on_data, on_done};
    size_t blen = 0;
    const char *body = cm_httpd_req_body(req, &blen);
    int rc;

    if (!j) {
        cm_httpd_reply_error(req, 503, "server_error", NULL, "out of memory");
        return;
    }
    atomic_init(&j->refs, 1); /* the close callback's */
    j->px = px;
    j->req = req;
    cm_httpd_req_ref(req);
    cm_buf_init(&j->body, 64u << 20);
    cm_httpd_req_on_close(req, on_close, j);

    cm_buf_init(&url, 16 * 1024);
    cm_buf_appendf(&url, "%s%s%s%s", px->upstream, cm_httpd_req_path(req),
                   *cm_httpd_req_query(req) ? "?" : "", cm_httpd_req_query(req));
    cm_httpd_req_headers_each(req, collect_header, &hl);
    memset(&rq, 0, sizeof rq);
    rq.method = cm_httpd_req_method(req);
    rq.url = url.data;
    rq.headers = (const char *const *)hl.lines;
    rq.n_headers = hl.n;
    rq.body = blen ? body : NULL;
    rq.body_len = blen;
    rq.first_byte_timeout_ms = px->first_byte_ms;
    rq.idle_timeout_ms = px->idle_ms;
    rq.log_id = cm_httpd_req_id(req);
    rq.max_response = px->max_response;
    rq.proxy = px->proxy;
    atomic_fetch_add(&j->refs, 1); /* httpc's, dropped in on_done */
    rc = url.data ? cm_httpc_start(px->client, &rq, &cbs, j, &j->xfer) : CM_ERR_NOMEM;
    if (rc) {
        atomic_fetch_sub(&j->refs, 1);
        cm_httpd_reply_error(req, cm_err_http_status(rc), "server_error", NULL,
                             "cannot start upstream request: %s", cm_err_str(rc));
    }
    for (size_t i = 0; i < hl.n; i++)
        cm_free(hl.lines[i]);
    cm_buf_cleanup(&url);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: passproxy --listen HOST:PORT --upstream URL [--threads N]\n"
            "  [--max-body BYTES] [--max-header BYTES] [--pipe-cap BYTES] [--max-response BYTES]\n"
            "  [--first-byte-timeout-ms N] [--idle-timeout-ms N] [--proxy URL] [--access-log]\n"
            "  [--log-level debug|info|warn|error]\n");
}

int main(int argc, char **argv)
{
    struct proxy px = {.pipe_cap = 64 * 1024, .max_response = (size_t)1 << 30};
    struct cm_httpd_opts o = {0};
    struct cm_httpd *srv = NULL;
    char host[64] = "127.0.0.1";
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--access-log") == 0) {
            o.access_log = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            const char *c = strrchr(v, ':');
            if (!c || (size_t)(c - v) >= sizeof host) {
                usage();
                return 2;
            }
            memcpy(host, v, (size_t)(c - v));
            host[c - v] = '\0';
            o.port = (uint16_t)strtoul(c + 1, NULL, 10);
        } else if (strcmp(a, "--upstream") == 0) {
            px.upstream = v;
        } else if (strcmp(a, "--threads") == 0) {
            o.threads = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--max-body") == 0) {
            o.max_body = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--max-header") == 0) {
            o.max_header = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--proxy") == 0) {
            px.proxy = v;
        } else if (strcmp(a, "--max-response") == 0) {
            px.max_response = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--pipe-cap") == 0) {
            px.pipe_cap = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--first-byte-timeout-ms") == 0) {
            px.first_byte_ms = strtol(v, NULL, 10);
        } else if (strcmp(a, "--idle-timeout-ms") == 0) {
            px.idle_ms = strtol(v, NULL, 10);
        } else if (strcmp(a, "--log-level") == 0) {
            enum cm_log_level l;
            if (cm_log_level_parse(v, &l)) {
                usage();
                return 2;
            }
            cm_log_set_level(l);
        } else {
            usage();
            return 2;
        }
    }
    if (!px.upstream) {
        usage();
        return 2;
    }
    o.bind = host;
    cm_sys_block_signals();
    cm_sys_raise_nofile();
    if (cm_httpc_new(NULL, &px.client))
        goto out;
    if (cm_httpd_new(&o, &srv) || cm_httpd_route(srv, "*", "/*", handle, &px) ||
        cm_httpd_start(srv))
        goto out;
    cm_log_info(NULL, "passproxy: listening on %s:%u, upstream %s", host,
                (unsigned)cm_httpd_port(srv), px.upstream);
    cm_sys_wait_signal();
    cm_log_info(NULL, "passproxy: stopping");
    rc = 0;
out:
    cm_httpd_free(srv);
    cm_httpc_free(px.client);
    return rc;
}
