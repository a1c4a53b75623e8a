/* SPDX-License-Identifier: MIT */
/*
 * test_ratelimit.c - the admin API's fixed-window limiter: the limit per window and the
 * retry time, windows resetting, keys independent, the off switch, long keys cut, the
 * bounded table (expired entries swept, else the oldest reused), bad arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/ratelimit.h"
#include "cm/err.h"

#include <string.h>

static void limit_and_retry(void **state)
{
    struct mt_rl_entry e[8];
    struct mt_ratelimit rl;
    int64_t retry = -1;
    (void)state;

    assert_int_equal(mt_ratelimit_init(&rl, e, 8, 3, 1000), CM_OK);
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 100, &retry), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 200, &retry), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 300, &retry), 1);
    assert_int_equal(retry, -1); /* untouched while allowed */
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 400, &retry), 0);
    assert_int_equal(retry, 700); /* the window started at 100 */
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 1099, &retry), 0);
    assert_int_equal(retry, 1);
    /* another key has its own budget */
    assert_int_equal(mt_ratelimit_hit(&rl, "5.6.7.8", 1099, NULL), 1);
    /* a new window */
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 1100, &retry), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 1101, NULL), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 1102, NULL), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "127.0.0.4", 1103, &retry), 0);
    assert_int_equal(retry, 997);
    assert_int_equal(mt_ratelimit_size(&rl), 2);
    mt_ratelimit_cleanup(&rl);
}

static void off_and_null_key(void **state)
{
    struct mt_rl_entry e[2];
    struct mt_ratelimit rl;
    (void)state;

    assert_int_equal(mt_ratelimit_init(&rl, e, 2, 0, 1000), CM_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(mt_ratelimit_hit(&rl, "k", i, NULL), 1);
    assert_int_equal(mt_ratelimit_size(&rl), 0);
    mt_ratelimit_cleanup(&rl);

    assert_int_equal(mt_ratelimit_init(&rl, e, 2, 1, 1000), CM_OK);
    assert_int_equal(mt_ratelimit_hit(&rl, NULL, 0, NULL), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "", 1, NULL), 0); /* NULL counts as "" */
    mt_ratelimit_cleanup(&rl);
    mt_ratelimit_cleanup(NULL);
    assert_int_equal(mt_ratelimit_hit(NULL, "x", 0, NULL), 1);
}

static void long_keys_are_cut(void **state)
{
    struct mt_rl_entry e[4];
    struct mt_ratelimit rl;
    char a[200], b[200];
    (void)state;

    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'b'; /* differs only past MT_RL_KEY_MAX: the same bucket */
    assert_int_equal(mt_ratelimit_init(&rl, e, 4, 1, 1000), CM_OK);
    assert_int_equal(mt_ratelimit_hit(&rl, a, 0, NULL), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, b, 0, NULL), 0);
    assert_int_equal(mt_ratelimit_size(&rl), 1);
    mt_ratelimit_cleanup(&rl);
}

static void bounded_table(void **state)
{
    struct mt_rl_entry e[3];
    struct mt_ratelimit rl;
    (void)state;

    assert_int_equal(mt_ratelimit_init(&rl, e, 3, 1, 1000), CM_OK);
    assert_int_equal(mt_ratelimit_hit(&rl, "a", 0, NULL), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "b", 10, NULL), 1);
    assert_int_equal(mt_ratelimit_hit(&rl, "c", 20, NULL), 1);
    assert_int_equal(mt_ratelimit_size(&rl), 3);
    /* full, nothing expired: "d" takes the oldest entry ("a") */
    assert_int_equal(mt_ratelimit_hit(&rl, "d", 30, NULL), 1);
    assert_int_equal(mt_ratelimit_size(&rl), 3);
    assert_int_equal(mt_ratelimit_hit(&rl, "b", 40, NULL), 0); /* b kept its count */
    assert_int_equal(mt_ratelimit_hit(&rl, "d", 40, NULL), 0);
    /* "a" was forgotten: it starts again (and evicts "b", now the oldest) */
    assert_int_equal(mt_ratelimit_hit(&rl, "a", 50, NULL), 1);
    /* later everything has expired: a sweep frees room */
    assert_int_equal(mt_ratelimit_hit(&rl, "e", 5000, NULL), 1);
    assert_int_equal(mt_ratelimit_size(&rl), 1); /* the sweep dropped c, d and a */
    assert_int_equal(mt_ratelimit_hit(&rl, "f", 5001, NULL), 1);
    assert_int_equal(mt_ratelimit_size(&rl), 2);
    assert_int_equal(mt_ratelimit_hit(&rl, "e", 5002, NULL), 0);
    mt_ratelimit_cleanup(&rl);
}

static void bad_arguments(void **state)
{
    struct mt_rl_entry e[1];
    struct mt_ratelimit rl;
    (void)state;
    assert_int_equal(mt_ratelimit_init(NULL, e, 1, 1, 1), CM_ERR_INVAL);
    assert_int_equal(mt_ratelimit_init(&rl, NULL, 1, 1, 1), CM_ERR_INVAL);
    assert_int_equal(mt_ratelimit_init(&rl, e, 0, 1, 1), CM_ERR_INVAL);
    assert_int_equal(mt_ratelimit_init(&rl, e, 1, 1, 0), CM_ERR_INVAL);
    assert_int_equal(mt_ratelimit_size(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_and_retry),   cmocka_unit_test(off_and_null_key),
        cmocka_unit_test(long_keys_are_cut), cmocka_unit_test(bounded_table),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
