/* SPDX-License-Identifier: MIT */
/*
 * test_json.c - cm_json: parsing (length-bounded, NUL, malformed inputs with offsets, depth
 * at and past the limit, 100k-deep input, size cap, UTF-8, duplicate keys), every getter
 * (present, missing, null, wrong type, ranges, 2^53 edges, -0, fractions), error messages
 * and scoping, printing, builders, and OOM on every allocation with no leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#define S(lit) lit, sizeof(lit) - 1

/* an exact-size heap copy with no NUL after it: ASan flags any read past the end */
static char *exact(const char *s, size_t n)
{
    char *p = cm_malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static int parse_n(const char *s, size_t n, unsigned depth, cJSON **out, struct cm_json_err *e)
{
    struct cm_json_parse_opts o = {.max_depth = depth};
    char *c = exact(s, n);
    int rc = cm_json_parse(c, n, &o, out, e);
    cm_free(c);
    return rc;
}

static cJSON *parse_ok(const char *s)
{
    cJSON *j = NULL;
    struct cm_json_err e;
    int rc = parse_n(s, strlen(s), 0, &j, &e);
    if (rc)
        fail_msg("parse of %s: %s", s, e.msg);
    assert_non_null(j);
    return j;
}

/* ---- parsing ---- */

static void parse_length_bounded(void **state)
{
    static const char doc[] = "{\"a\":[1,\"abc\",{\"k\":true}],\"b\":null}";
    cJSON *j = NULL;
    const char *tail;
    struct cm_json_err e;
    (void)state;

    /* not NUL-terminated, exact-size block */
    assert_int_equal(parse_n(S(doc), 0, &j, &e), CM_OK);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "a")));
    cJSON_Delete(j);
    /* a top-level number or literal running to the very end of the block */
    assert_int_equal(parse_n(S("12345"), 0, &j, &e), CM_OK);
    assert_true(j->valuedouble == 12345);
    cJSON_Delete(j);
    assert_int_equal(parse_n(S("true"), 0, &j, &e), CM_OK);
    assert_true(cJSON_IsTrue(j));
    cJSON_Delete(j);
    assert_int_equal(parse_n(S("\"s\""), 0, &j, &e), CM_OK);
    assert_string_equal(j->valuestring, "s");
    cJSON_Delete(j);
    /* only len bytes count: what follows is not looked at */
    tail = "{\"a\":1}trailing garbage";
    assert_int_equal(cm_json_parse(tail, 7, NULL, &j, &e), CM_OK);
    cJSON_Delete(j);
    /* every proper prefix of doc is malformed, each in an exact-size block */
    for (size_t n = 0; n < sizeof doc - 1; n++) {
        j = NULL;
        assert_int_equal(parse_n(doc, n, 0, &j, &e), CM_ERR_PARSE);
        assert_null(j);
        assert_int_equal(e.rc, CM_ERR_PARSE);
        assert_true(e.offset <= n);
    }
    /* a leading BOM is allowed (also where cJSON alone would miss it: 4-byte input) */
    assert_int_equal(parse_n(S("\xEF\xBB\xBF"
                               "1"),
                             0, &j, &e),
                     CM_OK);
    assert_true(j->valuedouble == 1);
    cJSON_Delete(j);
    assert_int_equal(parse_n(S("\xEF\xBB\xBF"), 0, &j, &e), CM_ERR_PARSE);
    assert_int_equal(e.offset, 3);
}

static void parse_embedded_nul(void **state)
{
    cJSON *j = (cJSON *)1;
    struct cm_json_err e;
    (void)state;
    assert_int_equal(parse_n(S("{\"a\":1}\0"), 0, &j, &e), CM_ERR_PARSE);
    assert_int_equal(e.offset, 7);
    assert_string_equal(e.msg, "invalid JSON at byte 7: unexpected data after the value");
    assert_int_equal(parse_n(S("{\"a\":\"x\0y\"}"), 0, &j, &e), CM_ERR_PARSE);
    assert_int_equal(e.offset, 7);
    assert_string_equal(e.msg, "invalid JSON at byte 7: NUL byte in string");
    assert_int_equal(parse_n(S("\0{}"), 0, &j, &e), CM_ERR_PARSE);
    assert_int_equal(e.offset, 0);
    assert_int_equal(parse_n(S("[1,\0]"), 0, &j, &e), CM_ERR_PARSE);
    assert_int_equal(e.offset, 3);
    /* "\u0000" would truncate the C string silently: refused */
    assert_int_equal(parse_n(S("{\"model\":\"gpt\\u0000evil\"}"), 0, &j, &e), CM_ERR_PARSE);
    assert_string_equal(e.msg, "invalid JSON at byte 13: \\u0000 in strings is not supported");
    assert_ptr_equal(j, (cJSON *)1); /* untouched on failure */
}

static void parse_malformed(void **state)
{
    static const struct {
        const char *in;
        size_t off;
    } t[] = {
        {"", 0},
        {"   ", 3},
        {"{", 1},
        {"[", 1},
        {"[1,]", 3},
        {"[1 2]", 3},
        {"{\"a\" 1}", 5},
        {"{a:1}", 1},
        {"{\"a\":1,}", 7},
        {"{\"a\":}", 5},
        {"{\"a\"}", 4},
        {"01", 1},
        {"-01", 2},
        {"1.", 2},
        {"1.e5", 2},
        {"-", 1},
        {"-a", 1},
        {".5", 0},
        {"+1", 0},
        {"1e", 2},
        {"1e+", 3},
        {"0x10", 1},
        {"tru", 0},
        {"nul", 0},
        {"True", 0},
        {"NaN", 0},
        {"Infinity", 0},
        {"-Infinity", 1},
        {"\"abc", 0},
        {"\"a\\x\"", 2},
        {"\"a\\", 0},
        {"\"\\u12G4\"", 1},
        {"\"\\u12\"", 1},
        {"\"\\ud800\"", 1},
        {"\"\\udc00\"", 1},
        {"\"\\ud800\\u0041\"", 1},
        {"\"\\ud800\\n\"", 1},
        {"\"a\tb\"", 2},
        {"\"a\nb\"", 2},
        {"\"\x7f\"", -1u}, /* DEL is allowed: marker, checked below */
        {"\"\xc3\x28\"", 1},
        {"\"\xc3\"", 1},
        {"\"\xc0\xaf\"", 1},
        {"\"\xe0\x80\x80\"", 1},
        {"\"\xed\xa0\x80\"", 1},
        {"\"\xf4\x90\x80\x80\"", 1},
        {"\"\xf8\x88\x80\x80\x80\"", 1},
        {"\"\x80\"", 1},
        {"[1]x", 3},
        {"{}{}", 2},
        {"1 2", 2},
        {"{\"a\":1}}", 7},
        {"]", 0},
        {"[}", 1},
        {"{]", 1},
        {"[\"a\"\"b\"]", 4},
        {"[1]\x01", 3}, /* cJSON alone would take control bytes as whitespace */
        {"\x0c"
         "1",
         0},
        {"\xEF\xBB\xBF\xEF\xBB\xBF{}", 3},
        {"{\"a\":1,\"b\"", 10},
        {"'a'", 0},
        {"/* c */ 1", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cJSON *j = NULL;
        struct cm_json_err e;
        int rc = parse_n(t[i].in, strlen(t[i].in), 0, &j, &e);
        if (t[i].off == (size_t)-1u) {
            assert_int_equal(rc, CM_OK);
            cJSON_Delete(j);
            continue;
        }
        if (rc != CM_ERR_PARSE || e.offset != t[i].off)
            fail_msg("#%zu %s: rc %d offset %zu (%s)", i, t[i].in, rc, e.offset, rc ? e.msg : "ok");
        assert_null(j);
        assert_int_equal(e.rc, CM_ERR_PARSE);
        assert_string_equal(e.field, "");
        assert_non_null(strstr(e.msg, "invalid JSON at byte "));
    }
}

static void parse_valid_edges(void **state)
{
    static const char *const ok[] = {
        "0",
        "-0",
        "-0.0e-0",
        "1E+2",
        "1e400",
        "[]",
        "{}",
        " [ ] ",
        "\"\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\uD83D\\uDE00\"",
        "\"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "{\"\":1}",
        "[null,true,false]",
        "\t\r\n 1 \t\r\n",
    };
    char num[80];
    cJSON *j;
    struct cm_json_err e;
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        j = parse_ok(ok[i]);
        cJSON_Delete(j);
    }
    j = parse_ok("\"\\u00e9\\uD83D\\uDE00\"");
    assert_string_equal(j->valuestring, "\xc3\xa9\xf0\x9f\x98\x80");
    cJSON_Delete(j);

    /* numbers: 63 characters is cJSON's limit */
    memset(num, '0', sizeof num);
    num[0] = '1';
    num[63] = '\0';
    j = parse_ok(num);
    assert_true(j->valuedouble == 1e62);
    cJSON_Delete(j);
    num[63] = '0';
    num[64] = '\0';
    assert_int_equal(parse_n(num, 64, 0, &j, &e), CM_ERR_PARSE);
    assert_string_equal(e.msg, "invalid JSON at byte 0: number longer than 63 characters");
}

static char *nest(const char *open, const char *mid, const char *close, size_t levels, size_t *len)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close), n = 0;
    char *s = cm_malloc(levels * (lo + lc) + lm);
    assert_non_null(s);
    for (size_t i = 0; i < levels; i++, n += lo)
        memcpy(s + n, open, lo);
    memcpy(s + n, mid, lm);
    n += lm;
    for (size_t i = 0; i < levels; i++, n += lc)
        memcpy(s + n, close, lc);
    *len = n;
    return s;
}

static int parse_nest(const char *open, const char *mid, const char *close, size_t levels,
                      unsigned max_depth, struct cm_json_err *e)
{
    size_t n;
    char *s = nest(open, mid, close, levels, &n);
    cJSON *j = NULL;
    struct cm_json_parse_opts o = {.max_depth = max_depth};
    int rc = cm_json_parse(s, n, &o, &j, e);
    cm_free(s);
    cJSON_Delete(j);
    return rc;
}

static void depth_limit(void **state)
{
    struct cm_json_err e;
    cJSON *j;
    (void)state;
    /* exactly at the limit, one past it */
    assert_int_equal(parse_nest("[", "1", "]", 3, 3, &e), CM_OK);
    assert_int_equal(parse_nest("[", "1", "]", 4, 3, &e), CM_ERR_LIMIT);
    assert_int_equal(e.rc, CM_ERR_LIMIT);
    assert_int_equal(e.offset, 3);
    assert_string_equal(e.msg, "JSON nested deeper than 3 levels");
    assert_int_equal(parse_nest("{\"a\":", "{}", "}", 2, 3, &e), CM_OK);
    assert_int_equal(parse_nest("{\"a\":", "{}", "}", 3, 3, &e), CM_ERR_LIMIT);
    assert_int_equal(parse_nest("[{\"a\":", "1", "}]", 2, 4, &e), CM_OK);
    assert_int_equal(parse_nest("[{\"a\":", "[]", "}]", 2, 4, &e), CM_ERR_LIMIT);
    /* scalars have depth 0; depth 1 allows one container */
    assert_int_equal(parse_nest("[", "", "]", 1, 1, &e), CM_OK);
    assert_int_equal(parse_nest("[", "[]", "]", 1, 1, &e), CM_ERR_LIMIT);
    /* the default: 64 */
    assert_int_equal(parse_nest("[", "", "]", 64, 0, &e), CM_OK);
    assert_int_equal(parse_nest("[", "", "]", 65, 0, &e), CM_ERR_LIMIT);
    /* the maximum matches cJSON's own nesting limit (1000 parses for real) */
    assert_int_equal(parse_nest("[", "", "]", CM_JSON_DEPTH_MAX, CM_JSON_DEPTH_MAX, &e), CM_OK);
    assert_int_equal(parse_nest("{\"k\":", "1", "}", CM_JSON_DEPTH_MAX, CM_JSON_DEPTH_MAX, &e),
                     CM_OK);
    assert_int_equal(parse_nest("[", "", "]", CM_JSON_DEPTH_MAX + 1, CM_JSON_DEPTH_MAX, &e),
                     CM_ERR_LIMIT);
    /* beyond it: a caller error */
    assert_int_equal(parse_nest("[", "", "]", 1, CM_JSON_DEPTH_MAX + 1, &e), CM_ERR_INVAL);
    /* 100k levels: rejected early, no deep recursion */
    assert_int_equal(parse_nest("[", "", "]", 100000, CM_JSON_DEPTH_MAX, &e), CM_ERR_LIMIT);
    assert_int_equal(e.offset, CM_JSON_DEPTH_MAX);
    assert_int_equal(parse_nest("[", "", "]", 100000, 0, &e), CM_ERR_LIMIT);
    assert_int_equal(parse_nest("{\"a\":", "1", "}", 100000, CM_JSON_DEPTH_MAX, &e), CM_ERR_LIMIT);
    assert_int_equal(parse_nest("[", "", "", 100000, CM_JSON_DEPTH_MAX, &e), CM_ERR_LIMIT);
    assert_int_equal(parse_nest("", "1", "]", 100000, CM_JSON_DEPTH_MAX, &e), CM_ERR_PARSE);
    /* brackets inside strings do not count */
    j = parse_ok("[\"[[[[[[[[[[{{{{{{{{\"]");
    cJSON_Delete(j);
}

static void size_limit(void **state)
{
    struct cm_json_parse_opts o = {.max_size = 5};
    struct cm_json_err e;
    cJSON *j = NULL;
    (void)state;
    assert_int_equal(cm_json_parse(S("[1,2]"), &o, &j, &e), CM_OK);
    cJSON_Delete(j);
    j = NULL;
    assert_int_equal(cm_json_parse(S("[1,2 ]"), &o, &j, &e), CM_ERR_LIMIT);
    assert_null(j);
    assert_int_equal(e.offset, 5);
    assert_string_equal(e.msg, "JSON text larger than 5 bytes");
    /* arguments */
    assert_int_equal(cm_json_parse(S("1"), NULL, NULL, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_parse(NULL, 3, NULL, &j, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_parse(NULL, 0, NULL, &j, NULL), CM_ERR_PARSE);
}

static void duplicate_keys(void **state)
{
    struct cm_json_parse_opts allow = {.flags = CM_JSON_ALLOW_DUP_KEYS};
    struct cm_json_err e;
    cJSON *j = NULL;
    int64_t v = 0;
    char big[512];
    size_t n = 0;
    (void)state;

    assert_int_equal(parse_n(S("{\"model\":\"a\",\"model\":\"b\"}"), 0, &j, &e), CM_ERR_PARSE);
    assert_string_equal(e.field, "model");
    assert_string_equal(e.msg, "field 'model' is given more than once");
    assert_int_equal(parse_n(S("[{\"x\":{\"k\":1,\"j\":[],\"k\":2}}]"), 0, &j, &e), CM_ERR_PARSE);
    assert_string_equal(e.field, "k");
    /* keys differing in case are different keys */
    j = parse_ok("{\"a\":1,\"A\":2}");
    cJSON_Delete(j);
    /* a large object (the sorted path) */
    n += (size_t)snprintf(big + n, sizeof big - n, "{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "\"k%d\":%d,", i, i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\"k17\":0}");
    assert_int_equal(parse_n(big, n, 0, &j, &e), CM_ERR_PARSE);
    assert_string_equal(e.field, "k17");
    big[n - 6] = '9';
    big[n - 5] = '9'; /* "k17" -> "k99" */
    assert_int_equal(parse_n(big, n, 0, &j, &e), CM_OK);
    cJSON_Delete(j);
    /* allowed on request: the first one wins for the getters */
    assert_int_equal(cm_json_parse(S("{\"n\":1,\"n\":2}"), &allow, &j, &e), CM_OK);
    assert_int_equal(cm_json_get_int64(j, "n", 0, 10, &v, &e), CM_OK);
    assert_int_equal(v, 1);
    cJSON_Delete(j);
}

/* ---- getters ---- */

static const char getter_doc[] =
    "{\"s\":\"str\",\"e\":\"\",\"b\":true,\"f\":false,\"n\":null,\"i\":42,\"neg\":-7,"
    "\"fl\":1.5,\"big\":9007199254740991,\"big1\":9007199254740992,"
    "\"big2\":9007199254740993,\"nbig\":-9007199254740991,\"nbig1\":-9007199254740992,"
    "\"z\":-0,\"zf\":-0.0,\"two\":2.0,\"e2\":1e2,\"tiny\":1e-300,\"huge\":1e400,"
    "\"nhuge\":-1e400,\"o\":{\"k\":1},\"a\":[1,2.5],\"Model\":\"upper\",\"str_num\":\"1\"}";

static void get_string_cases(void **state)
{
    cJSON *j = parse_ok(getter_doc);
    const char *sentinel = "untouched", *s = sentinel;
    struct cm_json_err e;
    (void)state;

    assert_int_equal(cm_json_get_string(j, "s", &s, &e), CM_OK);
    assert_string_equal(s, "str");
    assert_int_equal(cm_json_get_string(j, "e", &s, &e), CM_OK);
    assert_string_equal(s, "");
    s = sentinel;
    assert_int_equal(cm_json_get_string(j, "missing", &s, &e), CM_ERR_NOTFOUND);
    assert_int_equal(e.rc, CM_ERR_NOTFOUND);
    assert_string_equal(e.field, "missing");
    assert_string_equal(e.msg, "field 'missing' is required");
    assert_int_equal(cm_json_get_string(j, "i", &s, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'i' must be a string");
    assert_int_equal(cm_json_get_string(j, "n", &s, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_string(j, "o", &s, &e), CM_ERR_INVAL);
    /* case-sensitive: "model" is not "Model" */
    assert_int_equal(cm_json_get_string(j, "model", &s, NULL), CM_ERR_NOTFOUND);
    assert_ptr_equal(s, sentinel);
    assert_int_equal(cm_json_get_string(j, "Model", &s, NULL), CM_OK);
    assert_string_equal(s, "upper");

    s = sentinel;
    assert_int_equal(cm_json_opt_string(j, "missing", "dflt", &s, &e), CM_OK);
    assert_string_equal(s, "dflt");
    assert_int_equal(cm_json_opt_string(j, "n", "dflt", &s, &e), CM_OK);
    assert_string_equal(s, "dflt");
    assert_int_equal(cm_json_opt_string(j, "missing", NULL, &s, &e), CM_OK);
    assert_null(s);
    assert_int_equal(cm_json_opt_string(j, "s", NULL, &s, &e), CM_OK);
    assert_string_equal(s, "str");
    s = sentinel;
    assert_int_equal(cm_json_opt_string(j, "b", "dflt", &s, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'b' must be a string");
    assert_ptr_equal(s, sentinel);
    cJSON_Delete(j);
}

static void get_bool_cases(void **state)
{
    cJSON *j = parse_ok(getter_doc);
    bool v = false;
    struct cm_json_err e;
    (void)state;
    assert_int_equal(cm_json_get_bool(j, "b", &v, &e), CM_OK);
    assert_true(v);
    assert_int_equal(cm_json_get_bool(j, "f", &v, &e), CM_OK);
    assert_false(v);
    v = true;
    assert_int_equal(cm_json_get_bool(j, "missing", &v, &e), CM_ERR_NOTFOUND);
    assert_int_equal(cm_json_get_bool(j, "i", &v, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'i' must be a boolean");
    assert_int_equal(cm_json_get_bool(j, "s", &v, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_bool(j, "n", &v, &e), CM_ERR_INVAL);
    assert_true(v);
    assert_int_equal(cm_json_opt_bool(j, "missing", false, &v, &e), CM_OK);
    assert_false(v);
    assert_int_equal(cm_json_opt_bool(j, "n", true, &v, &e), CM_OK);
    assert_true(v);
    assert_int_equal(cm_json_opt_bool(j, "f", true, &v, &e), CM_OK);
    assert_false(v);
    assert_int_equal(cm_json_opt_bool(j, "e", true, &v, &e), CM_ERR_INVAL);
    cJSON_Delete(j);
}

static void get_int64_cases(void **state)
{
    static const struct {
        const char *name;
        int64_t min, max;
        int rc;
        int64_t want;
    } t[] = {
        {"i", 0, 100, CM_OK, 42},
        {"i", 42, 42, CM_OK, 42},
        {"i", 43, 100, CM_ERR_INVAL, 0},
        {"i", 0, 41, CM_ERR_INVAL, 0},
        {"neg", -7, -7, CM_OK, -7},
        {"neg", 0, 10, CM_ERR_INVAL, 0},
        {"fl", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"big", INT64_MIN, INT64_MAX, CM_OK, 9007199254740991},
        {"big", 0, 9007199254740990, CM_ERR_INVAL, 0},
        {"big1", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"big2", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"nbig", INT64_MIN, INT64_MAX, CM_OK, -9007199254740991},
        {"nbig1", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"z", 0, 0, CM_OK, 0},
        {"zf", 0, 0, CM_OK, 0},
        {"two", 0, 10, CM_OK, 2},
        {"e2", 0, 1000, CM_OK, 100},
        {"tiny", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"huge", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"nhuge", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"s", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"str_num", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"b", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"n", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"a", INT64_MIN, INT64_MAX, CM_ERR_INVAL, 0},
        {"missing", 0, 1, CM_ERR_NOTFOUND, 0},
        {"i", 5, 4, CM_ERR_INVAL, 0},
    };
    cJSON *j = parse_ok(getter_doc);
    struct cm_json_err e;
    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t v = 777;
        int rc = cm_json_get_int64(j, t[i].name, t[i].min, t[i].max, &v, &e);
        if (rc != t[i].rc || (rc == CM_OK && v != t[i].want) || (rc && v != 777))
            fail_msg("#%zu %s: rc %d v %lld", i, t[i].name, rc, (long long)v);
    }
    {
        int64_t v;
        assert_int_equal(cm_json_get_int64(j, "i", 43, 100, &v, &e), CM_ERR_INVAL);
        assert_string_equal(e.msg, "field 'i' must be an integer between 43 and 100");
        assert_int_equal(cm_json_get_int64(j, "fl", INT64_MIN, INT64_MAX, &v, &e), CM_ERR_INVAL);
        assert_string_equal(e.msg, "field 'fl' must be an integer");
        assert_int_equal(cm_json_get_int64(j, "fl", 0, INT64_MAX, &v, &e), CM_ERR_INVAL);
        assert_string_equal(e.msg, "field 'fl' must be an integer between 0 and "
                                   "9007199254740991");
        assert_int_equal(cm_json_opt_int64(j, "missing", 0, 10, 5, &v, &e), CM_OK);
        assert_int_equal(v, 5);
        assert_int_equal(cm_json_opt_int64(j, "n", 0, 10, 6, &v, &e), CM_OK);
        assert_int_equal(v, 6);
        assert_int_equal(cm_json_opt_int64(j, "i", 0, 100, 6, &v, &e), CM_OK);
        assert_int_equal(v, 42);
        assert_int_equal(cm_json_opt_int64(j, "i", 0, 10, 6, &v, &e), CM_ERR_INVAL);
        assert_int_equal(v, 42);
    }
    {
        /* the item-level conversion, on array elements */
        cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "a");
        int64_t v = 0;
        assert_int_equal(cm_json_to_int64(cJSON_GetArrayItem(a, 0), 0, 9, &v), CM_OK);
        assert_int_equal(v, 1);
        assert_int_equal(cm_json_to_int64(cJSON_GetArrayItem(a, 1), 0, 9, &v), CM_ERR_INVAL);
        assert_int_equal(cm_json_to_int64(NULL, 0, 9, &v), CM_ERR_INVAL);
        assert_int_equal(v, 1);
    }
    cJSON_Delete(j);
}

static void get_double_cases(void **state)
{
    cJSON *j = parse_ok(getter_doc);
    struct cm_json_err e;
    double d = 9;
    (void)state;
    assert_int_equal(cm_json_get_double(j, "fl", -DBL_MAX, DBL_MAX, &d, &e), CM_OK);
    assert_true(d == 1.5);
    assert_int_equal(cm_json_get_double(j, "i", 0, 100, &d, &e), CM_OK);
    assert_true(d == 42);
    assert_int_equal(cm_json_get_double(j, "fl", 0, 1, &d, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'fl' must be a number between 0 and 1");
    assert_int_equal(cm_json_get_double(j, "fl", 1.5, 1.5, &d, &e), CM_OK);
    assert_int_equal(cm_json_get_double(j, "huge", -DBL_MAX, DBL_MAX, &d, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'huge' must be a number");
    assert_int_equal(cm_json_get_double(j, "huge", -INFINITY, INFINITY, &d, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_double(j, "nhuge", -INFINITY, INFINITY, &d, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_double(j, "s", -DBL_MAX, DBL_MAX, &d, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_double(j, "n", -DBL_MAX, DBL_MAX, &d, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_double(j, "missing", -DBL_MAX, DBL_MAX, &d, &e), CM_ERR_NOTFOUND);
    assert_true(d == 1.5);
    assert_int_equal(cm_json_get_double(j, "z", 0, 0, &d, &e), CM_OK);
    assert_true(d == 0);
    assert_int_equal(cm_json_opt_double(j, "missing", 0, 2, 0.7, &d, &e), CM_OK);
    assert_true(d == 0.7);
    assert_int_equal(cm_json_opt_double(j, "n", 0, 2, 0.8, &d, &e), CM_OK);
    assert_true(d == 0.8);
    assert_int_equal(cm_json_opt_double(j, "i", 0, 2, 0.8, &d, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'i' must be a number between 0 and 2");
    cJSON_Delete(j);
}

static void get_container_cases(void **state)
{
    cJSON *j = parse_ok(getter_doc);
    cJSON *sentinel = (cJSON *)8, *o = sentinel, *a = sentinel;
    const char *s = NULL;
    struct cm_json_err e;
    (void)state;
    assert_int_equal(cm_json_get_object(j, "o", &o, &e), CM_OK);
    assert_true(cJSON_IsObject(o));
    assert_int_equal(cm_json_get_array(j, "a", &a, &e), CM_OK);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    o = a = sentinel;
    assert_int_equal(cm_json_get_object(j, "a", &o, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'a' must be an object");
    assert_int_equal(cm_json_get_array(j, "o", &a, &e), CM_ERR_INVAL);
    assert_string_equal(e.msg, "field 'o' must be an array");
    assert_int_equal(cm_json_get_array(j, "n", &a, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_array(j, "missing", &a, &e), CM_ERR_NOTFOUND);
    assert_int_equal(cm_json_get_object(j, "missing", &o, &e), CM_ERR_NOTFOUND);
    assert_ptr_equal(o, sentinel);
    assert_ptr_equal(a, sentinel);
    assert_int_equal(cm_json_opt_object(j, "missing", &o, &e), CM_OK);
    assert_null(o);
    assert_int_equal(cm_json_opt_array(j, "n", &a, &e), CM_OK);
    assert_null(a);
    assert_int_equal(cm_json_opt_array(j, "a", &a, &e), CM_OK);
    assert_non_null(a);
    assert_int_equal(cm_json_opt_object(j, "s", &o, &e), CM_ERR_INVAL);

    /* the container asked is not an object */
    assert_int_equal(cm_json_get_string(a, "x", &s, &e), CM_ERR_INVAL);
    assert_string_equal(e.field, "");
    assert_string_equal(e.msg, "JSON value must be an object");
    assert_int_equal(cm_json_opt_string(NULL, "x", "d", &s, &e), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_string(j, NULL, &s, &e), CM_ERR_INVAL);
    assert_null(s);
    cJSON_Delete(j);
}

/* ---- errors for clients ---- */

static void error_messages(void **state)
{
    cJSON *j = parse_ok("{\"messages\":[{\"content\":\"hi\"},3],\"stop\":[1]}");
    cJSON *msgs = NULL, *m;
    const char *s;
    struct cm_json_err e;
    char longname[300];
    (void)state;

    assert_int_equal(cm_json_get_array(j, "messages", &msgs, &e), CM_OK);
    m = cJSON_GetArrayItem(msgs, 0);
    assert_int_equal(cm_json_get_string(m, "role", &s, &e), CM_ERR_NOTFOUND);
    cm_json_err_scope(&e, "messages[%d]", 0);
    assert_string_equal(e.field, "messages[0].role");
    assert_string_equal(e.msg, "field 'messages[0].role' is required");
    assert_int_equal(e.rc, CM_ERR_NOTFOUND);

    m = cJSON_GetArrayItem(msgs, 1);
    assert_int_equal(cm_json_get_string(m, "role", &s, &e), CM_ERR_INVAL);
    cm_json_err_scope(&e, "messages[%d]", 1);
    assert_string_equal(e.msg, "field 'messages[1]' must be an object");
    cm_json_err_scope(&e, "body");
    assert_string_equal(e.field, "body.messages[1]");

    cm_json_err_set(&e, CM_ERR_INVAL, "[0]", "must be a string");
    cm_json_err_scope(&e, "stop");
    assert_string_equal(e.msg, "field 'stop[0]' must be a string");
    cm_json_err_set(&e, CM_ERR_INVAL, "messages", "must have at most %d items", 2);
    assert_string_equal(e.msg, "field 'messages' must have at most 2 items");
    assert_int_equal(e.rc, CM_ERR_INVAL);
    cm_json_err_set(&e, CM_ERR_INVAL, NULL, "must be %s", "an object");
    assert_string_equal(e.msg, "JSON value must be an object");

    /* long names are cut at a character boundary */
    for (size_t i = 0; i + 2 < sizeof longname; i += 2)
        memcpy(longname + i, "\xc3\xa9", 2);
    longname[sizeof longname - 2] = '\0';
    cm_json_err_set(&e, CM_ERR_INVAL, longname, "must be short");
    assert_true(strlen(e.field) < CM_JSON_ERR_FIELD_MAX);
    assert_int_equal(strlen(e.field) % 2, 0);
    assert_true(strlen(e.msg) < CM_JSON_ERR_MSG_MAX);
    cm_json_err_scope(&e, "x");
    assert_int_equal((unsigned char)e.field[strlen(e.field) - 1], 0xa9);

    /* a parse error is not about a field; scoping leaves its message alone */
    assert_int_equal(cm_json_parse(S("[1,]"), NULL, &m, &e), CM_ERR_PARSE);
    cm_json_err_scope(&e, "body");
    assert_string_equal(e.msg, "invalid JSON at byte 3: unexpected character");

    cm_json_err_set(NULL, CM_ERR_INVAL, "x", "y");
    cm_json_err_scope(NULL, "x");
    cJSON_Delete(j);
}

/* ---- printing and building ---- */

static void print_round_trip(void **state)
{
    static const char doc[] = "{\"a\":[1,2.5,\"x\\\"y\\u00e9\",-3],\"b\":null,\"c\":true,\"d\":{}}";
    cJSON *j = parse_ok(doc), *k;
    char *out = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(cm_json_print(j, &out, &n), CM_OK);
    assert_string_equal(out,
                        "{\"a\":[1,2.5,\"x\\\"y\xc3\xa9\",-3],\"b\":null,\"c\":true,\"d\":{}}");
    assert_int_equal(n, strlen(out));
    k = parse_ok(out);
    assert_true(cJSON_Compare(j, k, 1));
    cm_free(out);
    out = NULL;
    assert_int_equal(cm_json_print(NULL, &out, NULL), CM_ERR_INVAL);
    assert_null(out);
    cJSON_Delete(j);
    cJSON_Delete(k);
}

static char *print_ok(const cJSON *j)
{
    char *s = NULL;
    size_t n = 0;
    assert_int_equal(cm_json_print(j, &s, &n), CM_OK);
    assert_int_equal(n, strlen(s));
    return s;
}

/* numbers come out exactly (cJSON's own printer rounds to 15 digits when "close enough") */
static void print_numbers_exact(void **state)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"9007199254740991", "9007199254740991"},
        {"-9007199254740991", "-9007199254740991"},
        {"9007199254740993", "9007199254740992"}, /* the parse already rounds to 2^53 */
        {"1e15", "1000000000000000"},
        {"1e20", "1e+20"},
        {"0.1", "0.1"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"-0", "0"},
        {"2.0", "2"},
        {"1.5e-7", "1.5e-07"},
        {"123456789.123", "123456789.123"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"1e400", "null"},
    };
    static const char *const exact_back[] = {"5e-324", "2.2250738585072014e-308",
                                             "0.1234567890123456789", "4503599627370495.5",
                                             "-1.0000000000000002"};
    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cJSON *j = parse_ok(t[i].in);
        char *s = print_ok(j);
        if (strcmp(s, t[i].out) != 0)
            fail_msg("%s printed as %s, want %s", t[i].in, s, t[i].out);
        cm_free(s);
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < sizeof exact_back / sizeof exact_back[0]; i++) {
        cJSON *j = parse_ok(exact_back[i]), *k;
        char *s = print_ok(j);
        k = parse_ok(s);
        if (k->valuedouble != j->valuedouble)
            fail_msg("%s -> %s does not read back the same double", exact_back[i], s);
        cm_free(s);
        cJSON_Delete(j);
        cJSON_Delete(k);
    }
}

static void print_strings_and_subtrees(void **state)
{
    cJSON *j = parse_ok("{\"s\":\"\\u0001\\u001f\\\"\\\\\\/\\b\\f\\n\\r\\t\x7f\xc3\xa9\","
                        "\"a\":[1,[2,{\"k\\n\":[]}]],\"b\":3}");
    cJSON *a, *raw = NULL, *deep = NULL, *cur;
    char *s;
    (void)state;
    s = print_ok(cJSON_GetObjectItemCaseSensitive(j, "s"));
    assert_string_equal(s, "\"\\u0001\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\x7f\xc3\xa9\"");
    cm_free(s);
    /* a member or element alone: no key, no siblings */
    a = cJSON_GetObjectItemCaseSensitive(j, "a");
    s = print_ok(a);
    assert_string_equal(s, "[1,[2,{\"k\\n\":[]}]]");
    cm_free(s);
    s = print_ok(cJSON_GetArrayItem(a, 0));
    assert_string_equal(s, "1");
    cm_free(s);
    s = print_ok(j);
    assert_string_equal(s, "{\"s\":\"\\u0001\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\x7f\xc3\xa9\","
                           "\"a\":[1,[2,{\"k\\n\":[]}]],\"b\":3}");
    cm_free(s);
    /* raw items print as they are */
    assert_int_equal(cm_json_new_object(&raw), CM_OK);
    assert_int_equal(cm_json_set_item(raw, "r", cJSON_CreateRaw("[1, 2]")), CM_OK);
    s = print_ok(raw);
    assert_string_equal(s, "{\"r\":[1, 2]}");
    cm_free(s);
    cJSON_Delete(raw);
    cJSON_Delete(j);

    /* built trees deeper than CM_JSON_DEPTH_MAX: LIMIT, no deep recursion in the printer */
    assert_int_equal(cm_json_new_array(&deep), CM_OK);
    cur = deep;
    for (int i = 1; i < CM_JSON_DEPTH_MAX; i++) {
        cJSON *n = cJSON_CreateArray();
        assert_non_null(n);
        assert_true(cJSON_AddItemToArray(cur, n));
        cur = n;
    }
    s = print_ok(deep);
    assert_int_equal(strlen(s), 2 * CM_JSON_DEPTH_MAX);
    cm_free(s);
    assert_true(cJSON_AddItemToArray(cur, cJSON_CreateArray()));
    s = NULL;
    assert_int_equal(cm_json_print(deep, &s, NULL), CM_ERR_LIMIT);
    assert_null(s);
    cJSON_Delete(deep);
}

/* builds the object the builder tests and the OOM test use; returns the first error */
static int build(cJSON **out)
{
    cJSON *o = NULL, *a = NULL, *d;
    int rc = cm_json_new_object(&o);
    if (rc)
        goto out;
    if ((rc = cm_json_set_string(o, "model", "gpt")) ||
        (rc = cm_json_set_int64(o, "max_tokens", 100)) ||
        (rc = cm_json_set_bool(o, "stream", true)) || (rc = cm_json_set_null(o, "stop")) ||
        (rc = cm_json_set_double(o, "t", 0.5)) || (rc = cm_json_set_string(o, "model", "gpt-4o")) ||
        (rc = cm_json_new_array(&a)) || (rc = cm_json_set_stringn(a, NULL, "xyz", 1)) ||
        (rc = cm_json_set_int64(a, NULL, CM_JSON_INT_MAX)) ||
        (rc = cm_json_set_int64(a, NULL, CM_JSON_INT_MIN)))
        goto out;
    rc = cm_json_set_item(o, "arr", a);
    a = NULL;
    if (rc)
        goto out;
    /* an item that already has a key (detached from a tree) replacing a member */
    d = cJSON_DetachItemFromObjectCaseSensitive(o, "t");
    rc = cm_json_set_item(o, "stream", d);
    if (rc)
        goto out;
    *out = o;
    o = NULL;
out:
    cJSON_Delete(a);
    cJSON_Delete(o);
    return rc;
}

static void builders(void **state)
{
    cJSON *o = NULL, *item, *arr = NULL;
    char *s = NULL;
    (void)state;
    assert_int_equal(build(&o), CM_OK);
    assert_int_equal(cm_json_print(o, &s, NULL), CM_OK);
    assert_string_equal(s, "{\"model\":\"gpt-4o\",\"max_tokens\":100,\"stream\":0.5,\"stop\":null,"
                           "\"arr\":[\"x\",9007199254740991,-9007199254740991]}");
    cm_free(s);

    /* refused values leave the object alone */
    assert_int_equal(cm_json_set_int64(o, "big", CM_JSON_INT_MAX + 1), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_int64(o, "big", INT64_MIN), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_double(o, "nan", NAN), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_double(o, "inf", INFINITY), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_stringn(o, "nul", "a\0b", 3), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_string(o, "null", NULL), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_item(o, "x", NULL), CM_ERR_NOMEM);
    /* wrong parent / name combinations: the item is freed (ASan/valgrind check) */
    assert_int_equal(cm_json_set_item(o, NULL, cJSON_CreateTrue()), CM_ERR_INVAL);
    assert_int_equal(cm_json_get_array(o, "arr", &arr, NULL), CM_OK);
    assert_int_equal(cm_json_set_item(arr, "k", cJSON_CreateTrue()), CM_ERR_INVAL);
    assert_int_equal(cm_json_set_item(NULL, "k", cJSON_CreateTrue()), CM_ERR_INVAL);
    item = cJSON_CreateString("v");
    assert_int_equal(cm_json_set_item(cJSON_GetObjectItemCaseSensitive(o, "model"), "k", item),
                     CM_ERR_INVAL);
    /* an object cannot become its own member; it is not deleted either */
    assert_int_equal(cm_json_set_item(o, "self", o), CM_ERR_INVAL);
    assert_int_equal(cm_json_print(o, &s, NULL), CM_OK);
    assert_string_equal(s, "{\"model\":\"gpt-4o\",\"max_tokens\":100,\"stream\":0.5,\"stop\":null,"
                           "\"arr\":[\"x\",9007199254740991,-9007199254740991]}");
    cm_free(s);
    cJSON_Delete(o);
}

static void builders_append(void **state)
{
    cJSON *o = NULL;
    char *s = NULL;
    (void)state;
    assert_int_equal(build(&o), CM_OK);
    assert_int_equal(cm_json_set_string(o, "k", "v"), CM_OK);
    assert_int_equal(cm_json_print(o, &s, NULL), CM_OK);
    assert_non_null(strstr(s, ",\"k\":\"v\"}"));
    cm_free(s);
    cJSON_Delete(o);
}

/* ---- OOM: every allocation of each operation fails in turn ---- */

static void oom_parse(void **state)
{
    char doc[1024];
    size_t n = 0;
    int done = 0;
    (void)state;
    n += (size_t)snprintf(doc + n, sizeof doc - n, "{\"model\":\"gpt-4o\",\"messages\":[");
    n += (size_t)snprintf(doc + n, sizeof doc - n,
                          "{\"role\":\"user\",\"content\":\"hi \\u00e9\"},{\"role\":\"x\"}],");
    for (int i = 0; i < 20; i++) /* > 16 keys: the duplicate check allocates */
        n += (size_t)snprintf(doc + n, sizeof doc - n, "\"k%d\":[%d,true,null],", i, i);
    n += (size_t)snprintf(doc + n, sizeof doc - n, "\"end\":{}}");
    for (long k = 1; k < 10000 && !done; k++) {
        cJSON *j = (cJSON *)8;
        struct cm_json_err e;
        int rc;
        cm_alloc_fail_at(k);
        rc = cm_json_parse(doc, n, NULL, &j, &e);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            done = 1;
            assert_int_equal(cJSON_GetArraySize(j), 23);
            cJSON_Delete(j);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
            assert_int_equal(e.rc, CM_ERR_NOMEM);
            assert_string_equal(e.msg, "out of memory");
            assert_ptr_equal(j, (cJSON *)8);
        }
    }
    assert_true(done);
}

static void oom_print_and_build(void **state)
{
    cJSON *j = parse_ok("{\"a\":[1,2,3,\"a long enough string to need a bigger buffer than "
                        "the first one that cJSON allocates for printing, which is 256 bytes "
                        "long; so here we go on and on for a while until it is well past "
                        "that size, then a bit more\"],\"b\":{\"c\":null}}");
    int done = 0;
    (void)state;
    for (long k = 1; k < 1000 && !done; k++) {
        char *s = (char *)8;
        int rc;
        cm_alloc_fail_at(k);
        rc = cm_json_print(j, &s, NULL);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            done = 1;
            cm_free(s);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
            assert_ptr_equal(s, (char *)8);
        }
    }
    assert_true(done);
    cJSON_Delete(j);

    done = 0;
    for (long k = 1; k < 1000 && !done; k++) {
        cJSON *o = (cJSON *)8;
        int rc;
        cm_alloc_fail_at(k);
        rc = build(&o);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            done = 1;
            cJSON_Delete(o);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
            assert_ptr_equal(o, (cJSON *)8);
        }
    }
    assert_true(done);
}

static void adopt_takes_and_clears(void **state)
{
    cJSON *root = NULL, *child = NULL;
    (void)state;
    assert_int_equal(cm_json_new_object(&root), CM_OK);
    assert_int_equal(cm_json_new_array(&child), CM_OK);
    assert_int_equal(cm_json_adopt(root, "list", &child), CM_OK);
    assert_null(child);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "list")));
    /* a failure still takes (and frees) the item: the caller's pointer is cleared */
    assert_int_equal(cm_json_new_array(&child), CM_OK);
    assert_int_equal(cm_json_adopt(root, NULL, &child), CM_ERR_INVAL);
    assert_null(child);
    cJSON_Delete(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adopt_takes_and_clears),
        cmocka_unit_test(parse_length_bounded),
        cmocka_unit_test(parse_embedded_nul),
        cmocka_unit_test(parse_malformed),
        cmocka_unit_test(parse_valid_edges),
        cmocka_unit_test(depth_limit),
        cmocka_unit_test(size_limit),
        cmocka_unit_test(duplicate_keys),
        cmocka_unit_test(get_string_cases),
        cmocka_unit_test(get_bool_cases),
        cmocka_unit_test(get_int64_cases),
        cmocka_unit_test(get_double_cases),
        cmocka_unit_test(get_container_cases),
        cmocka_unit_test(error_messages),
        cmocka_unit_test(print_round_trip),
        cmocka_unit_test(print_numbers_exact),
        cmocka_unit_test(print_strings_and_subtrees),
        cmocka_unit_test(builders),
        cmocka_unit_test(builders_append),
        cmocka_unit_test(oom_parse),
        cmocka_unit_test(oom_print_and_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
