/* SPDX-License-Identifier: MIT */
/*
 * test_relay_health.c - automatic disable counters (relay/health.h): N consecutive
 * qualifying failures within the window disable, a success or a slow run does not, many
 * channels at once, the run starts over after a hit; NewAPI's qualifying rule (status
 * codes, keywords case-insensitively, the default keyword list); the model request rate
 * limit (relay/ratelimit.h): total and success windows sliding with the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/err.h"
#include "relay/health.h"
#include "relay/ratelimit.h"

static void runs(void **state)
{
    struct mt_relay_health *h = NULL;
    (void)state;
    assert_int_equal(mt_relay_health_new(&h), CM_OK);
    /* 3 in 10 s: the third one disables */
    assert_false(mt_relay_health_fail(h, 7, 1000, 3, 10000));
    assert_false(mt_relay_health_fail(h, 7, 2000, 3, 10000));
    assert_true(mt_relay_health_fail(h, 7, 3000, 3, 10000));
    /* the run started over */
    assert_false(mt_relay_health_fail(h, 7, 3100, 3, 10000));
    /* a success in between breaks the run */
    assert_false(mt_relay_health_fail(h, 8, 1000, 2, 10000));
    mt_relay_health_ok(h, 8);
    assert_false(mt_relay_health_fail(h, 8, 1500, 2, 10000));
    assert_true(mt_relay_health_fail(h, 8, 1600, 2, 10000));
    /* too slow: the last 3 never fall within 1 s ... until they do */
    assert_false(mt_relay_health_fail(h, 9, 0, 3, 1000));
    assert_false(mt_relay_health_fail(h, 9, 800, 3, 1000));
    assert_false(mt_relay_health_fail(h, 9, 1600, 3, 1000));
    assert_true(mt_relay_health_fail(h, 9, 1700, 3, 1000));
    /* N = 1 is NewAPI's behaviour; many channels grow the table */
    for (int64_t ch = 100; ch < 400; ch++)
        assert_true(mt_relay_health_fail(h, ch, 5, 1, 1000));
    assert_false(mt_relay_health_fail(h, 0, 5, 1, 1000)); /* no channel */
    mt_relay_health_ok(h, 12345);                         /* unknown: no-op */
    mt_relay_health_free(h);
}

static void qualifying(void **state)
{
    static const char quota[] = "Error: You exceeded your current QUOTA, please check";
    (void)state;
    assert_true(mt_relay_should_disable("401", NULL, 401, "", 0));
    assert_false(mt_relay_should_disable("401", NULL, 500, "boom", 4));
    assert_true(mt_relay_should_disable("401,500-503", NULL, 502, "boom", 4));
    assert_true(mt_relay_should_disable(NULL, NULL, 429, quota, sizeof quota - 1));
    assert_false(mt_relay_should_disable(NULL, "only this\r\n", 429, quota, sizeof quota - 1));
    assert_true(mt_relay_should_disable(NULL, "foo\ncurrent quota", 429, quota, sizeof quota - 1));
    assert_false(mt_relay_should_disable(NULL, "", 0, NULL, 0));
}

static void rate_limit(void **state)
{
    struct mt_relay_rl *rl = NULL;
    const int64_t W = 60000;
    (void)state;
    assert_int_equal(mt_relay_rl_new(&rl), CM_OK);
    /* total 3 per minute */
    for (int i = 0; i < 3; i++)
        assert_int_equal(mt_relay_rl_begin(rl, 1, 1000 + i, W, 3, 0), MT_RELAY_RL_OK);
    assert_int_equal(mt_relay_rl_begin(rl, 1, 2000, W, 3, 0), MT_RELAY_RL_TOTAL);
    assert_int_equal(mt_relay_rl_begin(rl, 2, 2000, W, 3, 0), MT_RELAY_RL_OK); /* per user */
    /* the window slides: a minute later they are gone */
    assert_int_equal(mt_relay_rl_begin(rl, 1, 1000 + W + W / 20, W, 3, 0), MT_RELAY_RL_OK);
    /* success 2 per minute: only successes count */
    assert_int_equal(mt_relay_rl_begin(rl, 5, 0, W, 0, 2), MT_RELAY_RL_OK);
    assert_int_equal(mt_relay_rl_begin(rl, 5, 1, W, 0, 2), MT_RELAY_RL_OK);
    assert_int_equal(mt_relay_rl_begin(rl, 5, 2, W, 0, 2), MT_RELAY_RL_OK);
    mt_relay_rl_success(rl, 5, 3, W);
    mt_relay_rl_success(rl, 5, 4, W);
    assert_int_equal(mt_relay_rl_begin(rl, 5, 5, W, 0, 2), MT_RELAY_RL_SUCCESS);
    assert_int_equal(mt_relay_rl_begin(rl, 5, 5 + 2 * W, W, 0, 2), MT_RELAY_RL_OK);
    assert_int_equal(mt_relay_rl_begin(NULL, 5, 0, W, 1, 1), MT_RELAY_RL_OK);
    mt_relay_rl_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs),
        cmocka_unit_test(qualifying),
        cmocka_unit_test(rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
