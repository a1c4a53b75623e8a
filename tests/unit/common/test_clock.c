/* SPDX-License-Identifier: MIT */
/* test_clock.c - cm_clock: the real clock against time(NULL), the fake clock's set/advance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "cm/clock.h"
#include "cm/err.h"

static void real_close_to_time(void **state)
{
    int64_t before, wall_s, after;
    (void)state;
    before = (int64_t)time(NULL);
    wall_s = cm_clock_wall_s(NULL);
    after = (int64_t)time(NULL);
    assert_true(wall_s >= before && wall_s <= after);
    assert_true(cm_clock_wall_s(cm_clock_real()) - after <= 1);
    /* ms and s agree */
    assert_true(cm_clock_wall_ms(cm_clock_real()) / 1000 - wall_s <= 1);
}

static void real_monotonic(void **state)
{
    int64_t prev = cm_clock_mono_ms(NULL), start = prev;
    struct timespec ts = {0, 2 * 1000 * 1000};
    (void)state;
    for (int i = 0; i < 100000; i++) {
        int64_t now = cm_clock_mono_ms(NULL);
        assert_true(now >= prev);
        prev = now;
    }
    nanosleep(&ts, NULL);
    assert_true(cm_clock_mono_ms(NULL) >= start + 2);
    assert_true(cm_clock_mono_s(NULL) == cm_clock_mono_ms(NULL) / 1000 ||
                cm_clock_mono_s(NULL) + 1 == cm_clock_mono_ms(NULL) / 1000);
}

/* what a pure module does: take the clock, compute a deadline */
static int expired(const struct cm_clock *c, int64_t deadline_ms)
{
    return cm_clock_mono_ms(c) >= deadline_ms;
}

static void fake_set_advance(void **state)
{
    struct cm_clock_fake f;
    const struct cm_clock *c = &f.clock;
    (void)state;
    cm_clock_fake_init(&f, 1700000000123, 5000);
    assert_int_equal(cm_clock_wall_ms(c), 1700000000123);
    assert_int_equal(cm_clock_wall_s(c), 1700000000);
    assert_int_equal(cm_clock_mono_ms(c), 5000);
    assert_int_equal(cm_clock_mono_s(c), 5);
    assert_false(expired(c, 6000));

    assert_int_equal(cm_clock_fake_advance_ms(&f, 1000), CM_OK);
    assert_int_equal(cm_clock_mono_ms(c), 6000);
    assert_int_equal(cm_clock_wall_ms(c), 1700000001123);
    assert_true(expired(c, 6000));

    assert_int_equal(cm_clock_fake_advance_ms(&f, -1), CM_ERR_INVAL);
    assert_int_equal(cm_clock_mono_ms(c), 6000);
    assert_int_equal(cm_clock_fake_set_mono_ms(&f, 5999), CM_ERR_INVAL);
    assert_int_equal(cm_clock_mono_ms(c), 6000);
    assert_int_equal(cm_clock_fake_set_mono_ms(&f, 90000), CM_OK);
    assert_int_equal(cm_clock_mono_ms(c), 90000);

    cm_clock_fake_set_wall_ms(&f, 1000); /* wall may go back */
    assert_int_equal(cm_clock_wall_ms(c), 1000);
    cm_clock_fake_set_wall_ms(&f, -1);
    assert_int_equal(cm_clock_wall_s(c), -1); /* floor, not truncation */
}

static void two_fakes_independent(void **state)
{
    struct cm_clock_fake a, b;
    (void)state;
    cm_clock_fake_init(&a, 0, 0);
    cm_clock_fake_init(&b, 0, 100);
    cm_clock_fake_advance_ms(&a, 7);
    assert_int_equal(cm_clock_mono_ms(&a.clock), 7);
    assert_int_equal(cm_clock_mono_ms(&b.clock), 100);
}

static void *advancer(void *arg)
{
    struct cm_clock_fake *f = arg;
    for (int i = 0; i < 10000; i++)
        cm_clock_fake_advance_ms(f, 1);
    return NULL;
}

static void fake_thread_safe(void **state)
{
    struct cm_clock_fake f;
    pthread_t t[4];
    int64_t prev = 0;
    (void)state;
    cm_clock_fake_init(&f, 0, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, advancer, &f), 0);
    for (int i = 0; i < 10000; i++) {
        int64_t now = cm_clock_mono_ms(&f.clock);
        assert_true(now >= prev);
        prev = now;
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(cm_clock_mono_ms(&f.clock), 40000);
    assert_int_equal(cm_clock_wall_ms(&f.clock), 40000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_close_to_time), cmocka_unit_test(real_monotonic),
        cmocka_unit_test(fake_set_advance),   cmocka_unit_test(two_fakes_independent),
        cmocka_unit_test(fake_thread_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
