/* SPDX-License-Identifier: MIT */
/*
 * http.c - the blocking call of http.h. The waiter's struct lives on its stack: on_done
 * signals under the mutex and touches nothing after unlocking, and the waiter cannot
 * leave pthread_cond_wait before that unlock, so the stack frame outlives every access.
 */
#include "login/http.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct waitc {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc;
    long status;
    char *body;
    size_t len;
    char error[160];
};

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    struct waitc *w = ud;
    char *b = NULL;
    (void)x;
    if (r->rc == CM_OK) {
        b = cm_malloc(r->body_len + 1);
        if (b) {
            if (r->body_len)
                memcpy(b, r->body, r->body_len);
            b[r->body_len] = '\0';
        }
    }
    pthread_mutex_lock(&w->mu);
    w->rc = r->rc == CM_OK && !b ? CM_ERR_NOMEM : r->rc;
    w->status = r->status;
    w->body = b;
    w->len = b ? r->body_len : 0;
    snprintf(w->error, sizeof w->error, "%s", r->error ? r->error : "");
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int cp_login_http(struct cm_httpc *hc, const char *method, const char *url,
                  const char *const *headers, size_t n_headers, const void *body, size_t body_len,
                  long timeout_ms, struct cp_login_http_resp *out, char *err, size_t errlen)
{
    struct waitc w = {.rc = CM_OK};
    struct cm_httpc_request rq = {.method = method,
                                  .url = url,
                                  .headers = headers,
                                  .n_headers = n_headers,
                                  .body = body,
                                  .body_len = body_len,
                                  .connect_timeout_ms = 10000,
                                  .total_timeout_ms = timeout_ms > 0 ? timeout_ms : 30000,
                                  .max_response = CP_LOGIN_HTTP_MAX};
    struct cm_httpc_cbs cbs = {.on_done = on_done};
    int rc;

    if (!hc || !url || !out)
        return CM_ERR_INVAL;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rc = cm_httpc_start(hc, &rq, &cbs, &w, NULL);
    if (rc == CM_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%.*s: %s", (int)strcspn(url, "?"), url, /* no query: tokens */
                     w.error[0] ? w.error : cm_err_str(rc));
        if (w.body) {
            cm_crypto_memzero(w.body, w.len);
            cm_free(w.body);
        }
        return rc;
    }
    out->status = w.status;
    out->body = w.body;
    out->len = w.len;
    return CM_OK;
}

void cp_login_http_resp_cleanup(struct cp_login_http_resp *r)
{
    if (!r)
        return;
    if (r->body) {
        cm_crypto_memzero(r->body, r->len);
        cm_free(r->body);
    }
    memset(r, 0, sizeof *r);
}
