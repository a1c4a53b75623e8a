/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c - cm_alloc: the fail-at-N switch (Nth and later fail, 0 turns off, the
 * count restarts at each call, CM_ALLOC_FAIL_AT read on first use, atomic across
 * threads), the strdup helpers, zero sizes, and cm_free(NULL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"

/* Runs first: main() sets CM_ALLOC_FAIL_AT=3 before anything is allocated. */
static void env_read_on_first_use(void **state)
{
    void *a, *b, *c;
    (void)state;
    a = cm_malloc(8);
    b = cm_malloc(8);
    c = cm_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    cm_alloc_fail_at(0);
    cm_free(a);
    cm_free(b);
}

static void fail_at_nth_and_later(void **state)
{
    void *p[6];
    (void)state;

    cm_alloc_fail_at(3);
    p[0] = cm_malloc(16);
    p[1] = cm_calloc(2, 8);
    p[2] = cm_realloc(NULL, 16); /* the 3rd: fails */
    p[3] = cm_malloc(1);         /* and every one after it */
    p[4] = cm_strdup("abc");
    p[5] = cm_strndup("abc", 2);
    cm_alloc_fail_at(0);
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    for (int i = 2; i < 6; i++)
        assert_null(p[i]);
    cm_free(p[0]);
    cm_free(p[1]);

    /* 1: the very next one fails */
    cm_alloc_fail_at(1);
    assert_null(cm_malloc(1));
    cm_alloc_fail_at(0);
}

static void fail_at_zero_and_negative_turn_off(void **state)
{
    void *p[100];
    (void)state;

    cm_alloc_fail_at(1);
    cm_alloc_fail_at(0);
    for (int i = 0; i < 100; i++) {
        p[i] = cm_malloc(8);
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 100; i++)
        cm_free(p[i]);

    cm_alloc_fail_at(-5);
    p[0] = cm_malloc(8);
    assert_non_null(p[0]);
    cm_free(p[0]);
}

static void fail_at_count_restarts(void **state)
{
    void *a, *b;
    (void)state;

    cm_alloc_fail_at(2);
    a = cm_malloc(8); /* 1 */
    assert_non_null(a);
    cm_alloc_fail_at(2); /* counting starts again */
    b = cm_malloc(8);    /* 1 again */
    assert_non_null(b);
    assert_null(cm_malloc(8)); /* 2 */
    cm_alloc_fail_at(0);
    cm_free(a);
    cm_free(b);
}

static void realloc_failure_keeps_block(void **state)
{
    char *p, *q;
    (void)state;

    p = cm_malloc(4);
    assert_non_null(p);
    memcpy(p, "abc", 4);
    cm_alloc_fail_at(1);
    q = cm_realloc(p, 4096);
    cm_alloc_fail_at(0);
    assert_null(q);
    assert_string_equal(p, "abc"); /* still ours, still intact */
    q = cm_realloc(p, 4096);
    assert_non_null(q);
    assert_string_equal(q, "abc");
    cm_free(q);
}

static void zero_sizes_and_calloc(void **state)
{
    unsigned char *p;
    void *z;
    (void)state;

    /* size 0 still gives a distinct block to free (no NULL that looks like OOM) */
    z = cm_malloc(0);
    assert_non_null(z);
    cm_free(z);
    z = cm_calloc(0, 8);
    assert_non_null(z);
    cm_free(z);
    z = cm_malloc(8);
    assert_non_null(z);
    p = cm_realloc(z, 0); /* unlike realloc(p, 0), never frees and returns NULL */
    assert_non_null(p);
    cm_free(p);

    p = cm_calloc(64, 4);
    assert_non_null(p);
    for (size_t i = 0; i < 256; i++)
        assert_int_equal(p[i], 0);
    cm_free(p);
}

static void strdup_helpers(void **state)
{
    char *s;
    (void)state;

    s = cm_strdup("hello");
    assert_string_equal(s, "hello");
    cm_free(s);
    s = cm_strdup("");
    assert_string_equal(s, "");
    cm_free(s);
    assert_null(cm_strdup(NULL));

    s = cm_strndup("hello world", 5);
    assert_string_equal(s, "hello");
    cm_free(s);
    s = cm_strndup("abc", 0);
    assert_string_equal(s, "");
    cm_free(s);
    /* exactly n bytes are copied, from a buffer that is not NUL-terminated */
    {
        const char raw[3] = {'x', 'y', 'z'};
        s = cm_strndup(raw, sizeof raw);
        assert_string_equal(s, "xyz");
        cm_free(s);
    }
    assert_null(cm_strndup(NULL, 3));

    cm_alloc_fail_at(1);
    assert_null(cm_strdup("x"));
    assert_null(cm_strndup("x", 1));
    cm_alloc_fail_at(0);
}

static void free_null(void **state)
{
    (void)state;
    cm_free(NULL);
    cm_free(NULL);
}

#define THREADS 4
#define PER_THREAD 250

static void *alloc_thread(void *arg)
{
    long failed = 0;
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        void *p = cm_malloc(32);
        if (!p)
            failed++;
        cm_free(p);
    }
    return (void *)(intptr_t)failed;
}

/* the counter is atomic: exactly the allocations numbered >= N fail, whichever thread */
static void fail_at_counts_across_threads(void **state)
{
    pthread_t t[THREADS];
    long failed = 0;
    (void)state;

    cm_alloc_fail_at(101);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, alloc_thread, NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        failed += (long)(intptr_t)r;
    }
    cm_alloc_fail_at(0);
    assert_int_equal(failed, THREADS * PER_THREAD - 100);
}

static void cjson_goes_through_seam(void **state)
{
    cJSON *o;
    (void)state;

    cm_alloc_hook_cjson();
    cm_alloc_hook_cjson(); /* idempotent */
    cm_alloc_fail_at(1);
    o = cJSON_CreateObject();
    cm_alloc_fail_at(0);
    assert_null(o);
    o = cJSON_CreateObject();
    assert_non_null(o);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(env_read_on_first_use), /* must stay first */
        cmocka_unit_test(fail_at_nth_and_later),
        cmocka_unit_test(fail_at_zero_and_negative_turn_off),
        cmocka_unit_test(fail_at_count_restarts),
        cmocka_unit_test(realloc_failure_keeps_block),
        cmocka_unit_test(zero_sizes_and_calloc),
        cmocka_unit_test(strdup_helpers),
        cmocka_unit_test(free_null),
        cmocka_unit_test(fail_at_counts_across_threads),
        cmocka_unit_test(cjson_goes_through_seam),
    };
    /* before the first cm_* allocation, so the switch reads it (see env_read_on_first_use) */
    setenv("CM_ALLOC_FAIL_AT", "3", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
