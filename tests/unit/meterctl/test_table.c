/* SPDX-License-Identifier: MIT */
/*
 * test_table.c - meterctl's tables: alignment (left/right), widths in terminal columns
 * (CJK counts 2), no trailing blanks, colours only when asked, control characters and
 * invalid UTF-8 in server text neutralised, the colour decision, and an OOM walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "table.h"

static const char *const H[] = {"ID", "NAME", "QUOTA"};
static const enum mc_align A[] = {MC_ALIGN_RIGHT, MC_ALIGN_LEFT, MC_ALIGN_RIGHT};

static char *render(struct mc_table *t, int color)
{
    struct cm_buf b;
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(mc_table_render(t, color, &b), CM_OK);
    return cm_buf_release(&b, NULL);
}

/* a new table of @p cols columns (headers @p h, aligns @p a) with the rows of @p rows up to NULL */
static struct mc_table *table_of(size_t cols, const char *const *h, const enum mc_align *a,
                                 const char **const *rows)
{
    struct mc_table *t = NULL;
    assert_int_equal(mc_table_new(&t, cols, h, a), CM_OK);
    for (; *rows; rows++)
        assert_int_equal(mc_table_add(t, *rows), CM_OK);
    return t;
}

/* @p t rendered (with colour when @p color) is @p want */
static void assert_render(struct mc_table *t, int color, const char *want)
{
    char *s = render(t, color);
    assert_string_equal(s, want);
    cm_free(s);
}

static void aligned(void **state)
{
    struct mc_table *t;
    const char *r1[] = {"1", "root", "100000000"};
    const char *r2[] = {"12", "alice", "5"};
    const char *r3[] = {"3", NULL, ""};
    const char **const rows[] = {r1, r2, r3, NULL};
    (void)state;

    t = table_of(3, H, A, rows);
    assert_int_equal(mc_table_rows(t), 3);
    assert_render(t, 0,
                  "ID  NAME       QUOTA\n"
                  " 1  root   100000000\n"
                  "12  alice          5\n"
                  " 3                  \n");
    mc_table_free(t);
}

static void no_trailing_blanks_when_last_is_left(void **state)
{
    static const char *const h[] = {"MODEL", "NOTE"};
    const char *r1[] = {"gpt-4o", "x"};
    const char *r2[] = {"m", "longer note"};
    const char **const rows[] = {r1, r2, NULL};
    struct mc_table *t;
    (void)state;
    t = table_of(2, h, NULL, rows);
    assert_render(t, 0,
                  "MODEL   NOTE\n"
                  "gpt-4o  x\n"
                  "m       longer note\n");
    mc_table_free(t);
}

static void wide_characters(void **state)
{
    static const char *const h[] = {"NAME", "N"};
    const char *r1[] = {"\xe7\x94\xa8\xe6\x88\xb7", "1"}; /* 用户: 2 characters, 4 columns */
    const char *r2[] = {"abcde", "2"};
    const char **const rows[] = {r1, r2, NULL};
    struct mc_table *t;
    (void)state;
    assert_int_equal(mc_display_width("\xe7\x94\xa8\xe6\x88\xb7"), 4);
    assert_int_equal(mc_display_width("e\xcc\x81"), 1);    /* e + combining acute */
    assert_int_equal(mc_display_width("\xe2\x9c\x93"), 1); /* ✓ */
    assert_int_equal(mc_display_width("\xff"), 1);
    assert_int_equal(mc_display_width(""), 0);
    t = table_of(2, h, NULL, rows);
    assert_render(t, 0,
                  "NAME   N\n"
                  "\xe7\x94\xa8\xe6\x88\xb7   1\n"
                  "abcde  2\n");
    mc_table_free(t);
}

static void colours_only_when_asked(void **state)
{
    static const char *const h[] = {"A", "B"};
    const char *r1[] = {"x", "enabled"};
    struct mc_table *t = NULL;
    char *s;
    (void)state;
    assert_int_equal(mc_table_new(&t, 2, h, NULL), CM_OK);
    assert_int_equal(mc_table_color(t, 1, MC_COLOR_GREEN), CM_ERR_INVAL); /* no row yet */
    assert_int_equal(mc_table_add(t, r1), CM_OK);
    assert_int_equal(mc_table_color(t, 1, MC_COLOR_GREEN), CM_OK);
    assert_int_equal(mc_table_color(t, 2, MC_COLOR_GREEN), CM_ERR_INVAL);
    s = render(t, 0);
    assert_null(strchr(s, '\033'));
    cm_free(s);
    assert_render(t, 1,
                  "\033[1mA\033[0m  \033[1mB\033[0m\n"
                  "x  \033[32menabled\033[0m\n");
    mc_table_free(t);

    assert_int_equal(mc_color_wanted(-1, 1, NULL, "xterm"), 1);
    assert_int_equal(mc_color_wanted(-1, 0, NULL, "xterm"), 0);
    assert_int_equal(mc_color_wanted(-1, 1, "1", "xterm"), 0);
    assert_int_equal(mc_color_wanted(-1, 1, "", "xterm"), 1);
    assert_int_equal(mc_color_wanted(-1, 1, NULL, "dumb"), 0);
    assert_int_equal(mc_color_wanted(1, 0, "1", "dumb"), 1);
    assert_int_equal(mc_color_wanted(0, 1, NULL, NULL), 0);
}

static void hostile_text_neutralised(void **state)
{
    static const char *const h[] = {"NAME"};
    const char *r1[] = {"evil\033[2J\r\nname\x7f\xc2\x9b"}; /* ESC, CR, LF, DEL, C1 CSI */
    const char *r2[] = {"bad\xc3"};                         /* truncated UTF-8 */
    const char **const rows[] = {r1, r2, NULL};
    struct mc_table *t;
    struct cm_buf b;
    (void)state;
    t = table_of(1, h, NULL, rows);
    assert_render(t, 0, "NAME\nevil?[2J??name??\nbad?\n");
    mc_table_free(t);

    cm_buf_init(&b, 64);
    assert_int_equal(mc_sanitize_append(&b, "ok \xe2\x9c\x93\t"), CM_OK);
    assert_string_equal(b.data, "ok \xe2\x9c\x93?");
    cm_buf_cleanup(&b);
}

static void bad_arguments(void **state)
{
    struct mc_table *t = NULL;
    (void)state;
    assert_int_equal(mc_table_new(&t, 0, H, NULL), CM_ERR_INVAL);
    assert_int_equal(mc_table_new(&t, MC_TABLE_COLS_MAX + 1, H, NULL), CM_ERR_INVAL);
    assert_int_equal(mc_table_new(NULL, 3, H, NULL), CM_ERR_INVAL);
    mc_table_free(NULL);
}

static void oom_walk(void **state)
{
    const char *r1[] = {"1", "root", "100"};
    (void)state;
    for (long n = 1; n < 200; n++) {
        struct mc_table *t = NULL;
        struct cm_buf b;
        int rc;
        cm_buf_init(&b, 1 << 16);
        cm_alloc_fail_at(n);
        rc = mc_table_new(&t, 3, H, A);
        for (int i = 0; !rc && i < 20; i++)
            rc = mc_table_add(t, r1);
        if (!rc)
            rc = mc_table_render(t, 1, &b);
        cm_alloc_fail_at(0);
        mc_table_free(t);
        cm_buf_cleanup(&b);
        if (rc == CM_OK)
            return;
        assert_int_equal(rc, CM_ERR_NOMEM);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aligned),
        cmocka_unit_test(no_trailing_blanks_when_last_is_left),
        cmocka_unit_test(wide_characters),
        cmocka_unit_test(colours_only_when_asked),
        cmocka_unit_test(hostile_text_neutralised),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
