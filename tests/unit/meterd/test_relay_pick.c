/* SPDX-License-Identifier: MIT */
/*
 * test_relay_pick.c - channel selection (relay/pick.h): the highest priority tier among
 * the untried, never a tried channel, weighted random (a scripted random source walks
 * every position), all-zero weights uniform, a weight 0 beside weighted channels never
 * picked, nothing left -> -1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm/crypto.h"
#include "cm/err.h"
#include "relay/pick.h"

struct seq {
    uint64_t next; /* the 64-bit draw to produce */
    int half;
};

/* produces seq->next as a 64-bit number, high half first */
static uint32_t scripted(void *ud)
{
    struct seq *s = ud;
    uint32_t v = s->half ? (uint32_t)s->next : (uint32_t)(s->next >> 32);
    s->half = !s->half;
    return v;
}

static long pick_with(const struct mt_relay_cand *c, size_t n, const int64_t *tried, size_t nt,
                      uint64_t draw)
{
    struct seq s = {draw, 0};
    return mt_relay_pick(c, n, tried, nt, scripted, &s);
}

static void tiers_and_tried(void **state)
{
    const struct mt_relay_cand c[] = {{7, 10, 1}, {8, 10, 1}, {9, 0, 5}};
    int64_t tried[3];
    (void)state;
    /* the top tier only */
    for (uint64_t d = 0; d < 10; d++) {
        long k = pick_with(c, 3, NULL, 0, d);
        assert_true(k == 0 || k == 1);
    }
    /* 7 failed: 8 is the only one left in the tier */
    tried[0] = 7;
    for (uint64_t d = 0; d < 10; d++)
        assert_int_equal(pick_with(c, 3, tried, 1, d), 1);
    /* the whole tier failed: the next tier */
    tried[1] = 8;
    assert_int_equal(pick_with(c, 3, tried, 2, 0), 2);
    tried[2] = 9;
    assert_int_equal(pick_with(c, 3, tried, 3, 0), -1);
    assert_int_equal(pick_with(c, 0, NULL, 0, 0), -1);
    assert_int_equal(mt_relay_pick(NULL, 3, NULL, 0, scripted, NULL), -1);
}

static void weights(void **state)
{
    const struct mt_relay_cand c[] = {{1, 0, 1}, {2, 0, 3}, {3, 0, 0}};
    int hits[3] = {0, 0, 0};
    (void)state;
    /* total 4: draws 0 -> ch1, 1..3 -> ch2; weight 0 never */
    for (uint64_t d = 0; d < 400; d++)
        hits[pick_with(c, 3, NULL, 0, d)]++;
    assert_int_equal(hits[0], 100);
    assert_int_equal(hits[1], 300);
    assert_int_equal(hits[2], 0);
}

static void zero_weights_uniform(void **state)
{
    const struct mt_relay_cand c[] = {{1, 5, 0}, {2, 5, 0}, {3, 5, -4}, {4, 1, 100}};
    int hits[4] = {0, 0, 0, 0};
    (void)state;
    for (uint64_t d = 0; d < 300; d++)
        hits[pick_with(c, 4, NULL, 0, d)]++;
    assert_int_equal(hits[0], 100);
    assert_int_equal(hits[1], 100);
    assert_int_equal(hits[2], 100);
    assert_int_equal(hits[3], 0);
    /* the real source stays in range */
    assert_int_equal(cm_crypto_init(), CM_OK);
    for (int i = 0; i < 100; i++) {
        long k = mt_relay_pick(c, 4, NULL, 0, mt_relay_rand, NULL);
        assert_true(k >= 0 && k <= 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiers_and_tried),
        cmocka_unit_test(weights),
        cmocka_unit_test(zero_weights_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
