/* SPDX-License-Identifier: MIT */
/*
 * test_args.c - meterctl's argv tokenizer (global options anywhere, --x=v, "--", errors)
 * and its strict value parsers (integers, USD, expiries against a fixed clock, channel
 * types, comma lists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "args.h"
#include "cm/err.h"

enum { O_INPUT = 1, O_FLAG, G_URL = 100, G_JSON, G_VERBOSE };

static const struct mc_opt CMD[] = {
    {"input", 0, O_INPUT, 1},
    {"flag", 0, O_FLAG, 0},
    {NULL, 0, 0, 0},
};
static const struct mc_opt GLOBAL[] = {
    {"url", 0, G_URL, 1},
    {"json", 0, G_JSON, 0},
    {"verbose", 'v', G_VERBOSE, 0},
    {NULL, 0, 0, 0},
};
static const struct mc_opt *const TABLES[] = {CMD, GLOBAL, NULL};

static void tokenizer_mixes_globals_and_positionals(void **state)
{
    char *argv[] = {"gpt-4o", "--input", "2.5",     "--json", "--url=http://x", "-v", "claude",
                    "--flag", "--",      "--input", "-"};
    struct mc_args a;
    struct mc_arg t;
    char err[128];
    (void)state;

    mc_args_init(&a, 11, argv);
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_POS);
    assert_string_equal(t.value, "gpt-4o");
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_OPT);
    assert_int_equal(t.id, O_INPUT);
    assert_string_equal(t.value, "2.5");
    assert_string_equal(t.name, "input");
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.id, G_JSON);
    assert_null(t.value);
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.id, G_URL);
    assert_string_equal(t.value, "http://x");
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.id, G_VERBOSE);
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_POS);
    assert_string_equal(t.value, "claude");
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.id, O_FLAG);
    /* after "--" everything is positional, "--input" included */
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_POS);
    assert_string_equal(t.value, "--input");
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_POS);
    assert_string_equal(t.value, "-");
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_END);
    assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
    assert_int_equal(t.kind, MC_ARG_END);
}

static void tokenizer_errors(void **state)
{
    struct {
        int argc;
        char *argv[2];
        const char *msg;
    } cases[] = {
        {1, {"--nope", NULL}, "unknown option \"--nope\""},
        {1, {"--nope=3", NULL}, "unknown option \"--nope\""},
        {1, {"-x", NULL}, "unknown option \"-x\""},
        {1, {"-vv", NULL}, "unknown option \"-vv\""},
        {1, {"--input", NULL}, "option --input needs a value"},
        {1, {"--json=1", NULL}, "option --json takes no value"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct mc_args a;
        struct mc_arg t;
        char err[128];
        mc_args_init(&a, cases[i].argc, cases[i].argv);
        assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_ERR_INVAL);
        assert_string_equal(err, cases[i].msg);
    }
    /* a value that looks like an option is still taken as the value */
    {
        char *argv[] = {"--input", "--json"};
        struct mc_args a;
        struct mc_arg t;
        char err[128];
        mc_args_init(&a, 2, argv);
        assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
        assert_string_equal(t.value, "--json");
    }
    /* --input= gives an empty value (the parser of the value refuses it) */
    {
        char *argv[] = {"--input="};
        struct mc_args a;
        struct mc_arg t;
        char err[128];
        mc_args_init(&a, 1, argv);
        assert_int_equal(mc_args_next(&a, TABLES, &t, err, sizeof err), CM_OK);
        assert_string_equal(t.value, "");
    }
}

static void parse_integers(void **state)
{
    int64_t v = 0;
    (void)state;
    assert_int_equal(mc_parse_i64("500000", 1, 1000000, &v), CM_OK);
    assert_int_equal(v, 500000);
    assert_int_equal(mc_parse_i64("5_000_000", 1, INT64_MAX, &v), CM_OK);
    assert_int_equal(v, 5000000);
    assert_int_equal(mc_parse_i64("-3", -5, 5, &v), CM_OK);
    assert_int_equal(v, -3);
    v = 7;
    assert_int_equal(mc_parse_i64("", 0, 10, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64(NULL, 0, 10, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("12abc", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64(" 12", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("1.5", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("_1", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("1__0", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("1_", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("101", 0, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("0", 1, 100, &v), CM_ERR_INVAL);
    assert_int_equal(mc_parse_i64("99999999999999999999", 0, INT64_MAX, &v), CM_ERR_INVAL);
    assert_int_equal(v, 7); /* untouched on failure */
}

static void parse_usd(void **state)
{
    double v = -1;
    (void)state;
    assert_int_equal(mc_parse_usd("2.5", &v), CM_OK);
    assert_true(v == 2.5);
    assert_int_equal(mc_parse_usd("$0.15", &v), CM_OK);
    assert_true(v == 0.15);
    assert_int_equal(mc_parse_usd("10", &v), CM_OK);
    assert_true(v == 10);
    assert_int_equal(mc_parse_usd("0", &v), CM_OK);
    assert_true(v == 0);
    assert_int_equal(mc_parse_usd(".5", &v), CM_OK);
    assert_true(v == 0.5);
    v = 42;
    static const char *const bad[] = {"",   "$",  "-1",    "1e3", "inf", "nan", "0x10",
                                      " 2", "2 ", "1.2.3", "abc", "$-1", "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(mc_parse_usd(bad[i], &v), CM_ERR_INVAL);
    assert_true(v == 42);
}

static void parse_expires(void **state)
{
    const int64_t now = 1767225600; /* 2026-01-01T00:00:00Z */
    int64_t v = 0;
    char err[200];
    (void)state;

    assert_int_equal(mc_parse_expires("never", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, -1);
    assert_int_equal(mc_parse_expires("-1", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, -1);
    assert_int_equal(mc_parse_expires("30d", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, now + 30 * 86400);
    assert_int_equal(mc_parse_expires("12h", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, now + 12 * 3600);
    assert_int_equal(mc_parse_expires("90m", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, now + 90 * 60);
    assert_int_equal(mc_parse_expires("3600s", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, now + 3600);
    assert_int_equal(mc_parse_expires("2026-03-01", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, 1772323200); /* date -u -d 2026-03-01 +%s */
    assert_int_equal(mc_parse_expires("2028-02-29T12:30", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, 1835440200); /* leap day */
    assert_int_equal(mc_parse_expires("2026-01-01 00:00:01Z", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, now + 1);
    assert_int_equal(mc_parse_expires("1800000000", now, &v, err, sizeof err), CM_OK);
    assert_int_equal(v, 1800000000);

    assert_int_equal(mc_parse_expires("2025-12-31", now, &v, err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "not in the future"));
    assert_int_equal(mc_parse_expires("2026-01-01", now, &v, err, sizeof err), CM_ERR_INVAL);
    static const char *const bad[] = {"",
                                      "0d",
                                      "d",
                                      "-5d",
                                      "2027-02-29",
                                      "2026-13-01",
                                      "2026-1-1",
                                      "2026-01-01T25:00",
                                      "2026-01-01X",
                                      "tomorrow",
                                      "123",
                                      "1e9",
                                      "99999999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 5;
        assert_int_equal(mc_parse_expires(bad[i], now, &v, err, sizeof err), CM_ERR_INVAL);
        assert_int_equal(v, 5);
        assert_true(err[0] != '\0');
    }
}

static void channel_types_and_lists(void **state)
{
    int t = 0;
    char buf[32];
    (void)state;
    assert_int_equal(mc_parse_channel_type("openai", &t), CM_OK);
    assert_int_equal(t, 1);
    assert_int_equal(mc_parse_channel_type("Anthropic", &t), CM_OK);
    assert_int_equal(t, 14);
    assert_int_equal(mc_parse_channel_type("claude", &t), CM_OK);
    assert_int_equal(t, 14);
    assert_int_equal(mc_parse_channel_type("57", &t), CM_OK);
    assert_int_equal(t, 57);
    assert_int_equal(mc_parse_channel_type("1001", &t), CM_ERR_INVAL);
    assert_int_equal(mc_parse_channel_type("bogus", &t), CM_ERR_INVAL);
    assert_string_equal(mc_channel_type_name(1), "openai");
    assert_string_equal(mc_channel_type_name(14), "anthropic");
    assert_null(mc_channel_type_name(999));

    assert_int_equal(mc_clean_csv("a, b,,c ", buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "a,b,c");
    assert_int_equal(mc_clean_csv("gpt-4o", buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "gpt-4o");
    assert_int_equal(mc_clean_csv(" , ,", buf, sizeof buf), CM_ERR_NOTFOUND);
    assert_int_equal(mc_clean_csv("", buf, sizeof buf), CM_ERR_NOTFOUND);
    assert_int_equal(mc_clean_csv("aaaa,bbbb", buf, 9), CM_ERR_LIMIT);
    assert_int_equal(mc_clean_csv("aaaa,bbb", buf, 9), CM_OK);
    assert_string_equal(buf, "aaaa,bbb");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tokenizer_mixes_globals_and_positionals),
        cmocka_unit_test(tokenizer_errors),
        cmocka_unit_test(parse_integers),
        cmocka_unit_test(parse_usd),
        cmocka_unit_test(parse_expires),
        cmocka_unit_test(channel_types_and_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
