/* SPDX-License-Identifier: MIT */
/* test_buf.c - cm_buf: caps, growth, printf, consume, release, OOM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"

static void append_and_cap(void **state)
{
    struct cm_buf b;
    (void)state;
    cm_buf_init(&b, 10);
    assert_int_equal(cm_buf_append_str(&b, "hello"), CM_OK);
    assert_int_equal(cm_buf_append(&b, "world", 5), CM_OK);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(cm_buf_append(&b, "!", 1), CM_ERR_LIMIT);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    cm_buf_consume(&b, 5);
    assert_string_equal(b.data, "world");
    assert_int_equal(cm_buf_appendf(&b, "%d%s", 42, "x"), CM_OK);
    assert_string_equal(b.data, "world42x");
    assert_int_equal(cm_buf_appendf(&b, "%s", "toolong"), CM_ERR_LIMIT);
    assert_string_equal(b.data, "world42x");
    cm_buf_cleanup(&b);
}

static void growth_many(void **state)
{
    struct cm_buf b;
    (void)state;
    cm_buf_init(&b, 1 << 20);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(cm_buf_append(&b, "0123456789", 10), i < 104857 ? CM_OK : CM_ERR_LIMIT);
    assert_int_equal(b.len, 1000000);
    cm_buf_cleanup(&b);
    assert_null(b.data);
}

static void release_hands_out(void **state)
{
    struct cm_buf b;
    size_t n = 99;
    char *p;
    (void)state;
    cm_buf_init(&b, 100);
    p = cm_buf_release(&b, &n);
    assert_non_null(p);
    assert_int_equal(n, 0);
    assert_string_equal(p, "");
    cm_free(p);
    cm_buf_append_str(&b, "abc");
    p = cm_buf_release(&b, &n);
    assert_string_equal(p, "abc");
    assert_int_equal(n, 3);
    assert_null(b.data);
    cm_free(p);
}

static void oom_keeps_contents(void **state)
{
    struct cm_buf b;
    (void)state;
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(cm_buf_append_str(&b, "abc"), CM_OK);
    cm_alloc_fail_at(1);
    assert_int_equal(cm_buf_append(&b, "x", 200), CM_ERR_NOMEM);
    cm_alloc_fail_at(0);
    assert_string_equal(b.data, "abc");
    cm_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_cap),
        cmocka_unit_test(growth_many),
        cmocka_unit_test(release_hands_out),
        cmocka_unit_test(oom_keeps_contents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
