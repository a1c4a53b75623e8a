/* SPDX-License-Identifier: MIT */
/*
 * test_env.c - the .env loader: plain, quoted and exported values, comments, inline
 * comments, the real environment winning, malformed lines skipped, a missing file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/err.h"
#include "env.h"

static void loads_dotenv(void **state)
{
    char path[] = "/tmp/mt-env-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("# comment\n"
          "MT_T_PLAIN=3000\n"
          "  export MT_T_EXPORTED = yes  \n"
          "MT_T_DQ=\"a b # not a comment\"\n"
          "MT_T_SQ='x=y'\n"
          "MT_T_INLINE=value # a comment\n"
          "MT_T_KEEP=from-file\n"
          "not a line\n"
          "BAD KEY=1\n"
          "MT_T_EMPTY=\n"
          "MT_T_LAST=end",
          f);
    fclose(f);
    setenv("MT_T_KEEP", "from-env", 1);
    assert_int_equal(mt_env_load(path), CM_OK);
    assert_string_equal(getenv("MT_T_PLAIN"), "3000");
    assert_string_equal(getenv("MT_T_EXPORTED"), "yes");
    assert_string_equal(getenv("MT_T_DQ"), "a b # not a comment");
    assert_string_equal(getenv("MT_T_SQ"), "x=y");
    assert_string_equal(getenv("MT_T_INLINE"), "value");
    assert_string_equal(getenv("MT_T_KEEP"), "from-env");
    assert_string_equal(getenv("MT_T_EMPTY"), "");
    assert_string_equal(getenv("MT_T_LAST"), "end");
    assert_null(getenv("BAD KEY"));
    unlink(path);
    assert_int_equal(mt_env_load("/nonexistent/.env"), CM_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(loads_dotenv)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
