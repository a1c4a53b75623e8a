/* SPDX-License-Identifier: MIT */
/*
 * httpc_load.c - the client core alone: keeps C transfers in flight through one cm_httpc
 * (POST of a body file, buffered responses) for D seconds against an upstream, then
 * prints requests/s and the process CPU per request. Splits the proxy's per-request
 * cost into "client core" and "the rest" (bench/RESULTS.md).
 *
 *   httpc_load URL BODY_FILE [CONCURRENCY=16] [SECONDS=5]
 */
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/httpc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static struct cm_httpc *client;
static struct cm_httpc_request rq;
static atomic_long done_ok, done_err;
static atomic_int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight;

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud);
static const struct cm_httpc_cbs cbs = {NULL, NULL, on_done};

static void launch(void)
{
    if (cm_httpc_start(client, &rq, &cbs, NULL, NULL) != CM_OK) {
        atomic_fetch_add(&done_err, 1);
        pthread_mutex_lock(&mu);
        inflight--;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
    }
}

static void on_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *r, void *ud)
{
    (void)x;
    (void)ud;
    atomic_fetch_add(r->rc == CM_OK && r->status == 200 ? &done_ok : &done_err, 1);
    if (!atomic_load(&stop)) {
        launch(); /* keep the concurrency level: one out, one in */
        return;
    }
    pthread_mutex_lock(&mu);
    inflight--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    static const char *const hdrs[] = {"Content-Type: application/json",
                                       "Authorization: Bearer sk-bench"};
    struct cm_buf body;
    char chunk[4096];
    size_t n;
    FILE *f;
    int conc, secs;
    double c0, c1;
    struct timespec t0, t1;

    if (argc < 3) {
        fprintf(stderr, "usage: httpc_load URL BODY_FILE [CONCURRENCY] [SECONDS]\n");
        return 2;
    }
    conc = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 16;
    secs = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 5;
    cm_buf_init(&body, 1 << 20);
    f = fopen(argv[2], "rb");
    if (!f)
        return 1;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cm_buf_append(&body, chunk, n);
    fclose(f);
    rq.url = argv[1];
    rq.body = body.data;
    rq.body_len = body.len;
    rq.headers = hdrs;
    rq.n_headers = 2;
    if (cm_httpc_new(NULL, &client))
        return 1;
    c0 = cpu_s();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&mu);
    inflight = conc;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < conc; i++)
        launch();
    sleep((unsigned)secs);
    atomic_store(&stop, 1);
    pthread_mutex_lock(&mu);
    while (inflight > 0)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    c1 = cpu_s();
    {
        double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        long ok = atomic_load(&done_ok);
        printf("httpc_load: %ld ok, %ld errors in %.1f s: %.0f req/s, client CPU %.1f us per "
               "request\n",
               ok, atomic_load(&done_err), wall, (double)ok / wall, (c1 - c0) / (double)ok * 1e6);
    }
    cm_httpc_free(client);
    cm_buf_cleanup(&body);
    return 0;
}
