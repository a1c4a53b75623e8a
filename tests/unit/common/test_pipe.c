/* SPDX-License-Identifier: MIT */
/*
 * test_pipe.c - cm_pipe: every state single-threaded (data, PARKED with exactly one park
 * and one wake, AGAIN when full with the writer woken at half the cap, an oversized write
 * into an empty pipe, clean and failed close after the buffered bytes, reader gone),
 * the delivered count, reference counting (leaks and early frees are caught by ASan /
 * valgrind), OOM on the first write, and a two-thread stress run (50 MB in random pieces,
 * both sides sleeping on condition variables until their hook fires) that checks every
 * byte arrives once and in order and that neither side deadlocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/pipe.h"

/* ---- hook counters for the single-threaded tests ---- */

struct hooks {
    int park, rwake, wwake;
};

static void h_park(void *ud)
{
    ((struct hooks *)ud)->park++;
}

static void h_rwake(void *ud)
{
    ((struct hooks *)ud)->rwake++;
}

static void h_wwake(void *ud)
{
    ((struct hooks *)ud)->wwake++;
}

static struct cm_pipe *new_hooked(size_t cap, struct hooks *h)
{
    struct cm_pipe *p = cm_pipe_new(cap);
    assert_non_null(p);
    memset(h, 0, sizeof *h);
    cm_pipe_set_reader_hooks(p, h_park, h_rwake, h);
    cm_pipe_set_writer_hook(p, h_wwake, h);
    return p;
}

/* Reads exactly @p n bytes (asserting DATA) and compares them with @p want. */
static void read_expect(struct cm_pipe *p, const char *want, size_t n)
{
    char buf[256];
    size_t got = 0;
    assert_true(n <= sizeof buf);
    assert_int_equal(cm_pipe_read(p, buf, n, &got), CM_PIPE_DATA);
    assert_int_equal(got, n);
    assert_memory_equal(buf, want, n);
}

static void write_read_park_wake(void **state)
{
    struct hooks h;
    struct cm_pipe *p = new_hooked(16, &h);
    char buf[16];
    size_t got = 99;
    (void)state;

    assert_int_equal(cm_pipe_write(p, "hello", 5), CM_OK);
    assert_int_equal(cm_pipe_buffered(p), 5);
    read_expect(p, "hel", 3);
    read_expect(p, "lo", 2); /* asks for 2, gets the rest */
    assert_int_equal(cm_pipe_buffered(p), 0);
    assert_int_equal(h.park, 0);

    /* empty: parks once, no wake yet */
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_PARKED);
    assert_int_equal(got, 0);
    assert_int_equal(h.park, 1);
    assert_int_equal(h.rwake, 0);

    /* data arrives: exactly one wake, a second write owes none */
    assert_int_equal(cm_pipe_write(p, "ab", 2), CM_OK);
    assert_int_equal(h.rwake, 1);
    assert_int_equal(cm_pipe_write(p, "cd", 2), CM_OK);
    assert_int_equal(h.rwake, 1);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_DATA);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "abcd", 4);

    /* a reader that never parked is not woken */
    assert_int_equal(cm_pipe_write(p, "e", 1), CM_OK);
    assert_int_equal(h.rwake, 1);
    read_expect(p, "e", 1);

    /* park again; close wakes exactly once */
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_PARKED);
    assert_int_equal(h.park, 2);
    cm_pipe_close(p, CM_OK);
    assert_int_equal(h.rwake, 2);
    cm_pipe_close(p, CM_OK);
    assert_int_equal(h.rwake, 2);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_EOF);
    assert_int_equal(got, 0);
    assert_int_equal(h.park, 2);
    assert_int_equal(cm_pipe_delivered(p), 10);
    assert_int_equal(h.wwake, 0);
    cm_pipe_unref(p);
}

static void full_again_and_writer_wake(void **state)
{
    struct hooks h;
    struct cm_pipe *p = new_hooked(8, &h);
    (void)state;

    assert_int_equal(cm_pipe_write(p, "012345", 6), CM_OK);
    /* does not fit: nothing taken */
    assert_int_equal(cm_pipe_write(p, "abcd", 4), CM_ERR_AGAIN);
    assert_int_equal(cm_pipe_buffered(p), 6);
    assert_int_equal(h.wwake, 0);
    read_expect(p, "0", 1); /* 5 left > cap/2: no wake */
    assert_int_equal(h.wwake, 0);
    read_expect(p, "1", 1); /* 4 left == cap/2: wake */
    assert_int_equal(h.wwake, 1);
    read_expect(p, "2", 1); /* wake owed once only */
    assert_int_equal(h.wwake, 1);
    assert_int_equal(cm_pipe_write(p, "abcd", 4), CM_OK);
    assert_int_equal(cm_pipe_write(p, "e", 1), CM_OK); /* 3 + 4 + 1 == cap */
    assert_int_equal(cm_pipe_buffered(p), 8);
    read_expect(p, "345abcde", 8);

    /* a writer that never got AGAIN is never woken */
    assert_int_equal(cm_pipe_write(p, "xy", 2), CM_OK);
    read_expect(p, "xy", 2);
    assert_int_equal(h.wwake, 1);
    assert_int_equal(h.park + h.rwake, 0);
    cm_pipe_unref(p);
}

static void oversized_write_when_empty(void **state)
{
    struct hooks h;
    struct cm_pipe *p = new_hooked(8, &h);
    char big[100], out[100];
    size_t got = 0;
    (void)state;

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('A' + i % 26);
    assert_int_equal(cm_pipe_write(p, big, sizeof big), CM_OK);
    assert_int_equal(cm_pipe_buffered(p), 100);
    assert_int_equal(cm_pipe_write(p, "x", 1), CM_ERR_AGAIN);
    assert_int_equal(cm_pipe_read(p, out, 50, &got), CM_PIPE_DATA);
    assert_int_equal(got, 50);
    assert_int_equal(h.wwake, 0); /* 50 left, cap/2 is 4 */
    assert_int_equal(cm_pipe_read(p, out + 50, 50, &got), CM_PIPE_DATA);
    assert_int_equal(got, 50);
    assert_int_equal(h.wwake, 1);
    assert_memory_equal(out, big, sizeof big);
    /* but not when something is buffered */
    assert_int_equal(cm_pipe_write(p, "x", 1), CM_OK);
    assert_int_equal(cm_pipe_write(p, big, 9), CM_ERR_AGAIN);
    assert_int_equal(cm_pipe_buffered(p), 1);
    cm_pipe_unref(p);
}

static void default_cap_is_64k(void **state)
{
    struct cm_pipe *p = cm_pipe_new(0);
    char *blk = cm_malloc(64 * 1024);
    (void)state;
    assert_non_null(p);
    assert_non_null(blk);
    memset(blk, 'z', 64 * 1024);
    assert_int_equal(cm_pipe_write(p, blk, 32 * 1024), CM_OK);
    assert_int_equal(cm_pipe_write(p, blk, 32 * 1024), CM_OK);
    assert_int_equal(cm_pipe_write(p, "!", 1), CM_ERR_AGAIN);
    assert_int_equal(cm_pipe_buffered(p), 64 * 1024);
    cm_free(blk);
    cm_pipe_unref(p);
}

static void close_ok_after_buffered(void **state)
{
    struct hooks h;
    struct cm_pipe *p = new_hooked(16, &h);
    char buf[16];
    size_t got = 0;
    (void)state;

    assert_int_equal(cm_pipe_write(p, "abc", 3), CM_OK);
    cm_pipe_close(p, CM_OK);
    assert_int_equal(cm_pipe_close_rc(p), CM_OK);
    assert_int_equal(cm_pipe_write(p, "d", 1), CM_ERR_CLOSED);
    cm_pipe_close(p, CM_ERR_UPSTREAM); /* ignored: already closed */
    assert_int_equal(cm_pipe_close_rc(p), CM_OK);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_DATA);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_EOF);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_EOF);
    assert_int_equal(h.park, 0);
    assert_int_equal(h.rwake, 0); /* nobody was parked */
    assert_int_equal(cm_pipe_delivered(p), 3);
    cm_pipe_unref(p);
}

static void close_error_after_buffered(void **state)
{
    struct hooks h;
    struct cm_pipe *p = new_hooked(16, &h);
    char buf[16];
    size_t got = 0;
    (void)state;

    assert_int_equal(cm_pipe_close_rc(p), CM_OK);
    assert_int_equal(cm_pipe_write(p, "abcdef", 6), CM_OK);
    cm_pipe_close(p, CM_ERR_UPSTREAM);
    assert_int_equal(cm_pipe_close_rc(p), CM_ERR_UPSTREAM);
    read_expect(p, "abcd", 4);
    read_expect(p, "ef", 2);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_ERROR);
    assert_int_equal(got, 0);
    assert_int_equal(cm_pipe_delivered(p), 6);
    assert_int_equal(cm_pipe_is_reader_gone(p), 0);
    cm_pipe_unref(p);
}

static void reader_gone_drops_and_wakes(void **state)
{
    struct hooks h;
    struct cm_pipe *p = new_hooked(4, &h);
    char buf[16];
    size_t got = 0;
    (void)state;

    /* writer parked with data buffered */
    assert_int_equal(cm_pipe_write(p, "abcd", 4), CM_OK);
    read_expect(p, "a", 1);
    assert_int_equal(cm_pipe_write(p, "xy", 2), CM_ERR_AGAIN);
    assert_int_equal(cm_pipe_is_reader_gone(p), 0);
    cm_pipe_reader_gone(p);
    assert_int_equal(cm_pipe_is_reader_gone(p), 1);
    assert_int_equal(h.wwake, 1);
    assert_int_equal(cm_pipe_buffered(p), 0);
    assert_int_equal(cm_pipe_write(p, "xy", 2), CM_ERR_CLOSED);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_ERROR);
    assert_int_equal(got, 0);
    assert_int_equal(cm_pipe_delivered(p), 1);
    cm_pipe_reader_gone(p); /* idempotent: no second wake */
    assert_int_equal(h.wwake, 1);
    assert_int_equal(h.rwake, 0);
    cm_pipe_unref(p);

    /* reader parked: woken so it can see the error; the writer hook runs too */
    p = new_hooked(4, &h);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_PARKED);
    assert_int_equal(h.park, 1);
    cm_pipe_reader_gone(p);
    assert_int_equal(h.rwake, 1);
    assert_int_equal(h.wwake, 1);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_ERROR);
    assert_int_equal(h.park, 1);
    cm_pipe_close(p, CM_OK); /* the producer still closes: harmless */
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_ERROR);
    assert_int_equal(h.rwake, 1);
    cm_pipe_unref(p);
}

static void refcount_last_unref_frees(void **state)
{
    struct cm_pipe *p = cm_pipe_new(8);
    char buf[8];
    size_t got = 0;
    (void)state;

    assert_non_null(p);
    assert_int_equal(cm_pipe_write(p, "abc", 3), CM_OK); /* allocates the buffer */
    cm_pipe_ref(p);
    cm_pipe_ref(p);
    cm_pipe_unref(p);
    cm_pipe_unref(p);
    /* one reference left: still usable (ASan/valgrind flag a use after free) */
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_DATA);
    assert_int_equal(got, 3);
    cm_pipe_unref(p); /* frees; a leak is reported by LeakSanitizer / valgrind */
    cm_pipe_unref(NULL);
}

static void oom(void **state)
{
    struct cm_pipe *p;
    char buf[8];
    size_t got = 0;
    (void)state;

    cm_alloc_fail_at(1);
    p = cm_pipe_new(8);
    cm_alloc_fail_at(0);
    assert_null(p);

    p = cm_pipe_new(8);
    assert_non_null(p);
    cm_alloc_fail_at(1);
    assert_int_equal(cm_pipe_write(p, "abc", 3), CM_ERR_NOMEM);
    cm_alloc_fail_at(0);
    assert_int_equal(cm_pipe_buffered(p), 0);
    /* the pipe still works afterwards */
    assert_int_equal(cm_pipe_write(p, "abc", 3), CM_OK);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_DATA);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "abc", 3);
    cm_pipe_unref(p);
}

/* ---- two threads ---- */

#define WAIT_MS 10000

/* One side's wake-up flag: the hook sets it (pipe lock held), the thread sleeps on it. */
struct side {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int woken;
    long waits;    /* times the thread slept (AGAIN / PARKED) */
    long wakes;    /* times the hook ran */
    int timed_out; /* a wait passed WAIT_MS: a lost wake-up or a deadlock */
};

struct stress {
    struct cm_pipe *p;
    size_t cap;
    uint64_t total;
    size_t max_write, max_read;
    unsigned seed;
    atomic_int stop;
    struct side w, r;
    struct side fin; /* wakes counts the threads that finished */
    uint64_t received;
    uint64_t first_bad; /* offset of the first wrong byte, UINT64_MAX if none */
    int end_state;
};

static unsigned char pattern(uint64_t i)
{
    return (unsigned char)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24) ^ (i >> 32));
}

static void side_init(struct side *s)
{
    pthread_condattr_t a;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->m, NULL);
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &a);
    pthread_condattr_destroy(&a);
}

static void side_cleanup(struct side *s)
{
    pthread_mutex_destroy(&s->m);
    pthread_cond_destroy(&s->cv);
}

static void side_hook(void *ud)
{
    struct side *s = ud;
    pthread_mutex_lock(&s->m);
    s->woken = 1;
    s->wakes++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->m);
}

static void side_arm(struct side *s)
{
    pthread_mutex_lock(&s->m);
    s->woken = 0;
    pthread_mutex_unlock(&s->m);
}

/* Sleeps until the hook ran; 0 on success, -1 on timeout or when the run was stopped. */
static int side_wait(struct stress *st, struct side *s)
{
    struct timespec dl;
    int rc = 0;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&s->m);
    s->waits++;
    while (!s->woken && !atomic_load(&st->stop) && rc == 0)
        rc = pthread_cond_timedwait(&s->cv, &s->m, &dl);
    if (!s->woken) {
        if (rc)
            s->timed_out = 1;
        rc = -1;
    }
    pthread_mutex_unlock(&s->m);
    return rc;
}

static void stress_stop(struct stress *st)
{
    atomic_store(&st->stop, 1);
    side_hook(&st->w);
    side_hook(&st->r);
}

static void *producer(void *arg)
{
    struct stress *st = arg;
    unsigned seed = st->seed;
    unsigned char *chunk = cm_malloc(st->max_write);
    uint64_t off = 0;

    if (!chunk) {
        stress_stop(st);
        side_hook(&st->fin);
        return NULL;
    }
    while (off < st->total && !atomic_load(&st->stop)) {
        size_t n = 1 + (size_t)rand_r(&seed) % st->max_write;
        int rc;
        if (n > st->total - off)
            n = (size_t)(st->total - off);
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(off + i);
        for (;;) {
            side_arm(&st->w);
            rc = cm_pipe_write(st->p, chunk, n);
            if (rc != CM_ERR_AGAIN)
                break;
            if (side_wait(st, &st->w)) {
                stress_stop(st);
                break;
            }
        }
        if (rc != CM_OK)
            break;
        off += n;
    }
    cm_pipe_close(st->p, off == st->total ? CM_OK : CM_ERR_INTERNAL);
    cm_free(chunk);
    side_hook(&st->fin);
    return NULL;
}

static void *consumer(void *arg)
{
    struct stress *st = arg;
    unsigned seed = st->seed * 7u + 1u;
    unsigned char *buf = cm_malloc(st->max_read);

    if (!buf) {
        stress_stop(st);
        side_hook(&st->fin);
        return NULL;
    }
    for (;;) {
        size_t max = 1 + (size_t)rand_r(&seed) % st->max_read, got = 0;
        enum cm_pipe_rstate s;
        side_arm(&st->r);
        s = cm_pipe_read(st->p, buf, max, &got);
        if (s == CM_PIPE_DATA) {
            if (got == 0 || got > max)
                st->first_bad = st->received;
            for (size_t i = 0; i < got && st->first_bad == UINT64_MAX; i++)
                if (buf[i] != pattern(st->received + i))
                    st->first_bad = st->received + i;
            st->received += got;
            if (st->first_bad != UINT64_MAX) {
                cm_pipe_reader_gone(st->p);
                st->end_state = CM_PIPE_ERROR;
                break;
            }
            continue;
        }
        if (s == CM_PIPE_PARKED) {
            if (side_wait(st, &st->r)) {
                cm_pipe_reader_gone(st->p);
                stress_stop(st);
                st->end_state = -1;
                break;
            }
            continue;
        }
        st->end_state = (int)s;
        break;
    }
    cm_free(buf);
    side_hook(&st->fin);
    return NULL;
}

static void run_stress(uint64_t total, size_t cap, size_t max_write, size_t max_read, unsigned seed)
{
    struct stress st;
    pthread_t tp, tc;
    struct timespec dl;

    memset(&st, 0, sizeof st);
    st.p = cm_pipe_new(cap);
    assert_non_null(st.p);
    st.cap = cap;
    st.total = total;
    st.max_write = max_write;
    st.max_read = max_read;
    st.seed = seed;
    st.first_bad = UINT64_MAX;
    atomic_init(&st.stop, 0);
    side_init(&st.w);
    side_init(&st.r);
    side_init(&st.fin);
    cm_pipe_set_writer_hook(st.p, side_hook, &st.w);
    cm_pipe_set_reader_hooks(st.p, NULL, side_hook, &st.r);

    assert_int_equal(pthread_create(&tc, NULL, consumer, &st), 0);
    assert_int_equal(pthread_create(&tp, NULL, producer, &st), 0);
    /* a deadlock ends both threads through the WAIT_MS timeouts; this bounds the rest */
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&st.fin.m);
    while (st.fin.wakes < 2 && pthread_cond_timedwait(&st.fin.cv, &st.fin.m, &dl) == 0)
        ;
    pthread_mutex_unlock(&st.fin.m);
    assert_int_equal(st.fin.wakes, 2);
    assert_int_equal(pthread_join(tp, NULL), 0);
    assert_int_equal(pthread_join(tc, NULL), 0);

    assert_int_equal(st.w.timed_out, 0);
    assert_int_equal(st.r.timed_out, 0);
    assert_int_equal(atomic_load(&st.stop), 0);
    assert_true(st.first_bad == UINT64_MAX);
    assert_int_equal(st.end_state, CM_PIPE_EOF);
    assert_int_equal(st.received, total);
    assert_int_equal(cm_pipe_delivered(st.p), total);
    /* both sides really had to sleep, and every sleep was ended by exactly one wake */
    assert_true(st.w.waits > 0);
    assert_true(st.r.waits > 0);
    assert_int_equal(st.w.wakes, st.w.waits);
    assert_int_equal(st.r.wakes, st.r.waits);

    cm_pipe_unref(st.p);
    side_cleanup(&st.w);
    side_cleanup(&st.r);
    side_cleanup(&st.fin);
}

static void stress_50mb(void **state)
{
    (void)state;
    run_stress((uint64_t)50 << 20, 16 * 1024, 24 * 1024, 32 * 1024, 12345);
}

static void stress_tiny_cap(void **state)
{
    (void)state;
    /* writes often larger than the cap: exercises the "accepted when empty" rule */
    run_stress((uint64_t)256 << 10, 7, 20, 9, 777);
}

/* Two threads: a reader parked on an empty pipe is woken by close / reader_gone. */
struct parked_reader {
    struct cm_pipe *p;
    struct side s;
    int end_state;
    int parks;
};

static void *parked_reader_main(void *arg)
{
    struct parked_reader *pr = arg;
    char buf[8];
    for (;;) {
        size_t got = 0;
        enum cm_pipe_rstate st;
        side_arm(&pr->s);
        st = cm_pipe_read(pr->p, buf, sizeof buf, &got);
        if (st != CM_PIPE_PARKED) {
            pr->end_state = (int)st;
            return NULL;
        }
        pr->parks++;
        {
            struct timespec dl;
            int rc = 0;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += 5;
            pthread_mutex_lock(&pr->s.m);
            while (!pr->s.woken && rc == 0)
                rc = pthread_cond_timedwait(&pr->s.cv, &pr->s.m, &dl);
            if (!pr->s.woken)
                pr->s.timed_out = 1;
            pthread_mutex_unlock(&pr->s.m);
            if (pr->s.timed_out) {
                pr->end_state = -1;
                return NULL;
            }
        }
    }
}

static void park_count(void *ud)
{
    struct parked_reader *pr = ud;
    pthread_mutex_lock(&pr->s.m);
    pr->s.waits++;
    pthread_cond_broadcast(&pr->s.cv); /* lets the main thread see the park */
    pthread_mutex_unlock(&pr->s.m);
}

static void wake_count(void *ud)
{
    side_hook(&((struct parked_reader *)ud)->s);
}

static void run_parked(int use_gone)
{
    struct parked_reader pr;
    pthread_t t;
    struct timespec dl;
    int rc = 0;

    memset(&pr, 0, sizeof pr);
    side_init(&pr.s);
    pr.p = cm_pipe_new(8);
    assert_non_null(pr.p);
    cm_pipe_set_reader_hooks(pr.p, park_count, wake_count, &pr);
    assert_int_equal(pthread_create(&t, NULL, parked_reader_main, &pr), 0);
    /* wait until it parked */
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&pr.s.m);
    while (pr.s.waits == 0 && rc == 0)
        rc = pthread_cond_timedwait(&pr.s.cv, &pr.s.m, &dl);
    pthread_mutex_unlock(&pr.s.m);
    assert_int_equal(rc, 0);
    if (use_gone)
        cm_pipe_reader_gone(pr.p);
    else
        cm_pipe_close(pr.p, CM_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(pr.s.timed_out, 0);
    assert_int_equal(pr.end_state, use_gone ? CM_PIPE_ERROR : CM_PIPE_EOF);
    assert_int_equal(pr.parks, 1);
    assert_int_equal(pr.s.waits, 1);
    assert_int_equal(pr.s.wakes, 1);
    cm_pipe_unref(pr.p);
    side_cleanup(&pr.s);
}

static void parked_reader_woken_by_close(void **state)
{
    (void)state;
    run_parked(0);
}

static void parked_reader_woken_by_reader_gone(void **state)
{
    (void)state;
    run_parked(1);
}

static void write_force_past_cap(void **state)
{
    struct cm_pipe *p = cm_pipe_new(8);
    char buf[64];
    size_t got = 0;
    (void)state;
    assert_int_equal(cm_pipe_write(p, "12345678", 8), CM_OK);
    assert_int_equal(cm_pipe_write(p, "x", 1), CM_ERR_AGAIN); /* full */
    assert_int_equal(cm_pipe_write_force(p, "tail!", 5), CM_OK);
    assert_int_equal(cm_pipe_buffered(p), 13);
    assert_int_equal(cm_pipe_read(p, buf, sizeof buf, &got), CM_PIPE_DATA);
    assert_int_equal(got, 13);
    assert_memory_equal(buf, "12345678tail!", 13);
    cm_pipe_close(p, CM_OK);
    assert_int_equal(cm_pipe_write_force(p, "late", 4), CM_ERR_CLOSED);
    cm_pipe_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_force_past_cap),
        cmocka_unit_test(write_read_park_wake),
        cmocka_unit_test(full_again_and_writer_wake),
        cmocka_unit_test(oversized_write_when_empty),
        cmocka_unit_test(default_cap_is_64k),
        cmocka_unit_test(close_ok_after_buffered),
        cmocka_unit_test(close_error_after_buffered),
        cmocka_unit_test(reader_gone_drops_and_wakes),
        cmocka_unit_test(refcount_last_unref_frees),
        cmocka_unit_test(oom),
        cmocka_unit_test(parked_reader_woken_by_close),
        cmocka_unit_test(parked_reader_woken_by_reader_gone),
        cmocka_unit_test(stress_50mb),
        cmocka_unit_test(stress_tiny_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
