/* SPDX-License-Identifier: MIT */
/*
 * pipe.c - bounded single-producer / single-consumer byte pipe with park/wake hooks.
 * State lives under one mutex per pipe (never a global lock); the hooks are called
 * with it held so "found empty -> park" and "wrote data -> wake" cannot interleave
 * into a lost wake-up.
 */
#include "cm/pipe.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define DEFAULT_CAP (64 * 1024)

struct cm_pipe {
    atomic_int refs;
    pthread_mutex_t lock;
    char *buf;   /* storage, grows up to max(cap, largest write) */
    size_t size; /* allocated bytes */
    size_t head; /* read offset */
    size_t tail; /* write offset; buffered = tail - head */
    size_t cap;
    int closed; /* writer called close */
    int close_rc;
    int gone;     /* reader gone */
    int r_parked; /* reader park hook ran, wake owed */
    int w_parked; /* writer got AGAIN, wake owed */
    uint64_t delivered;
    cm_pipe_hook_fn r_park, r_wake, w_wake;
    void *r_ud, *w_ud;
};

struct cm_pipe *cm_pipe_new(size_t cap)
{
    struct cm_pipe *p = cm_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->lock, NULL);
    p->cap = cap ? cap : DEFAULT_CAP;
    return p;
}

void cm_pipe_ref(struct cm_pipe *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void cm_pipe_unref(struct cm_pipe *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&p->lock);
    cm_free(p->buf);
    cm_free(p);
}

void cm_pipe_set_reader_hooks(struct cm_pipe *p, cm_pipe_hook_fn park, cm_pipe_hook_fn wake,
                              void *ud)
{
    pthread_mutex_lock(&p->lock);
    p->r_park = park;
    p->r_wake = wake;
    p->r_ud = ud;
    pthread_mutex_unlock(&p->lock);
}

void cm_pipe_set_writer_hook(struct cm_pipe *p, cm_pipe_hook_fn wake, void *ud)
{
    pthread_mutex_lock(&p->lock);
    p->w_wake = wake;
    p->w_ud = ud;
    pthread_mutex_unlock(&p->lock);
}

/* lock held */
static void wake_reader(struct cm_pipe *p)
{
    if (p->r_parked) {
        p->r_parked = 0;
        if (p->r_wake)
            p->r_wake(p->r_ud);
    }
}

/* lock held: make room for n more bytes at tail */
static int reserve(struct cm_pipe *p, size_t n)
{
    size_t used = p->tail - p->head, want;
    char *nb;

    if (p->size - p->tail >= n)
        return CM_OK;
    if (p->head > 0) { /* compact first */
        memmove(p->buf, p->buf + p->head, used);
        p->head = 0;
        p->tail = used;
        if (p->size - p->tail >= n)
            return CM_OK;
    }
    want = p->size ? p->size : 4096;
    while (want < used + n)
        want *= 2;
    if (want > p->cap && used + n <= p->cap)
        want = p->cap;
    nb = cm_realloc(p->buf, want);
    if (!nb)
        return CM_ERR_NOMEM;
    p->buf = nb;
    p->size = want;
    return CM_OK;
}

/* one writer entry: @p force ignores the cap (cm_pipe_write_force) */
static int append(struct cm_pipe *p, const void *d, size_t n, int force)
{
    int rc = CM_OK;
    size_t used;

    pthread_mutex_lock(&p->lock);
    if (p->gone || p->closed) {
        rc = CM_ERR_CLOSED;
        goto out;
    }
    used = p->tail - p->head;
    if (!force && used > 0 && used + n > p->cap) {
        p->w_parked = 1;
        rc = CM_ERR_AGAIN;
        goto out;
    }
    if (n == 0)
        goto out;
    rc = reserve(p, n);
    if (rc)
        goto out;
    memcpy(p->buf + p->tail, d, n);
    p->tail += n;
    wake_reader(p);
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int cm_pipe_write(struct cm_pipe *p, const void *d, size_t n)
{
    return append(p, d, n, 0);
}

int cm_pipe_write_force(struct cm_pipe *p, const void *d, size_t n)
{
    return append(p, d, n, 1);
}

void cm_pipe_close(struct cm_pipe *p, int rc)
{
    pthread_mutex_lock(&p->lock);
    if (!p->closed) {
        p->closed = 1;
        p->close_rc = rc;
        wake_reader(p);
    }
    pthread_mutex_unlock(&p->lock);
}

int cm_pipe_close_rc(struct cm_pipe *p)
{
    int rc;
    pthread_mutex_lock(&p->lock);
    rc = p->close_rc;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

enum cm_pipe_rstate cm_pipe_read(struct cm_pipe *p, void *buf, size_t max, size_t *got)
{
    enum cm_pipe_rstate st;
    size_t used, n;

    *got = 0;
    pthread_mutex_lock(&p->lock);
    if (p->gone) {
        st = CM_PIPE_ERROR;
        goto out;
    }
    used = p->tail - p->head;
    if (used == 0) {
        if (p->closed) {
            st = p->close_rc == CM_OK ? CM_PIPE_EOF : CM_PIPE_ERROR;
        } else {
            p->r_parked = 1;
            if (p->r_park)
                p->r_park(p->r_ud);
            st = CM_PIPE_PARKED;
        }
        goto out;
    }
    n = used < max ? used : max;
    memcpy(buf, p->buf + p->head, n);
    p->head += n;
    if (p->head == p->tail)
        p->head = p->tail = 0;
    p->delivered += n;
    *got = n;
    st = CM_PIPE_DATA;
    /* wake the writer once at least half the cap is free (hysteresis) */
    if (p->w_parked && p->tail - p->head <= p->cap / 2) {
        p->w_parked = 0;
        if (p->w_wake)
            p->w_wake(p->w_ud);
    }
out:
    pthread_mutex_unlock(&p->lock);
    return st;
}

void cm_pipe_reader_gone(struct cm_pipe *p)
{
    pthread_mutex_lock(&p->lock);
    if (!p->gone) {
        p->gone = 1;
        p->head = p->tail = 0;
        p->w_parked = 0;
        if (p->w_wake)
            p->w_wake(p->w_ud);
        wake_reader(p);
    }
    pthread_mutex_unlock(&p->lock);
}

int cm_pipe_is_reader_gone(struct cm_pipe *p)
{
    int g;
    pthread_mutex_lock(&p->lock);
    g = p->gone;
    pthread_mutex_unlock(&p->lock);
    return g;
}

uint64_t cm_pipe_delivered(struct cm_pipe *p)
{
    uint64_t d;
    pthread_mutex_lock(&p->lock);
    d = p->delivered;
    pthread_mutex_unlock(&p->lock);
    return d;
}

size_t cm_pipe_buffered(struct cm_pipe *p)
{
    size_t n;
    pthread_mutex_lock(&p->lock);
    n = p->tail - p->head;
    pthread_mutex_unlock(&p->lock);
    return n;
}
