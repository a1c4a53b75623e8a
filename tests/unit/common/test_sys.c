/* SPDX-License-Identifier: MIT */
/*
 * test_sys.c - small helpers: cm_sys_cond_wait_ms() times out after about the asked time
 * and returns early when signalled; cm_httpc_slot is safe empty (resume/cancel are no-ops)
 * and drops what it holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>

#include "cm/clock.h"
#include "cm/httpc.h"
#include "cm/sys.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int flag;

static void *signaller(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    flag = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void cond_wait_ms(void **state)
{
    int64_t t0;
    pthread_t th;
    (void)state;
    pthread_mutex_lock(&mu);
    t0 = cm_clock_mono_ms(NULL);
    assert_int_equal(cm_sys_cond_wait_ms(&cv, &mu, 1050), ETIMEDOUT); /* carries into tv_sec */
    assert_true(cm_clock_mono_ms(NULL) - t0 >= 1000);
    t0 = cm_clock_mono_ms(NULL);
    assert_int_equal(pthread_create(&th, NULL, signaller, NULL), 0);
    while (!flag)
        (void)cm_sys_cond_wait_ms(&cv, &mu, 10000);
    assert_true(cm_clock_mono_ms(NULL) - t0 < 5000);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
}

static void empty_slot(void **state)
{
    struct cm_httpc_slot s;
    (void)state;
    cm_httpc_slot_init(&s);
    cm_httpc_slot_resume(&s);
    cm_httpc_slot_cancel(&s);
    cm_httpc_slot_wake(&s);
    cm_httpc_slot_set(&s, NULL);
    cm_httpc_slot_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cond_wait_ms),
        cmocka_unit_test(empty_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
