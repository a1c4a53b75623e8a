/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - cm_log: every masking rule of cm_log_mask() (log.h), truncation into small
 * buffers, and cm_log_write() through a capturing sink: line format, level filter,
 * request id, escaping to one line, secrets never written, long lines cut, file output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/err.h"
#include "cm/log.h"

/* ---- masking ---- */

static char mbuf[1024];

static const char *mask(const char *s)
{
    size_t n = cm_log_mask(s, strlen(s), mbuf, sizeof mbuf);
    assert_int_equal(n, strlen(mbuf));
    return mbuf;
}

#define MASKS_TO(in, want) assert_string_equal(mask(in), want)
#define UNCHANGED(in) assert_string_equal(mask(in), in)

/* 20 characters: masked as "abcd****qrst" */
#define V20 "abcdefghijklmnopqrst"
#define V20M "abcd****qrst"

static void mask_sk_keys(void **state)
{
    (void)state;
    MASKS_TO("using sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL now",
             "using sk-abcd****IJKL now");
    MASKS_TO("sk-proj-ABCDEFGHIJKLMNOP1234", "sk-proj****1234");
    MASKS_TO("sk-12345678", "sk-****"); /* 8..15 characters: fully hidden */
    MASKS_TO("(sk-12345678)", "(sk-****)");
    MASKS_TO("a,sk-abcdefghijklmnop,b", "a,sk-abcd****mnop,b");
    UNCHANGED("sk-1234567"); /* shorter than 8 after sk- is not a key */
    UNCHANGED("task-12345678");
    UNCHANGED("sk-");
    UNCHANGED("risk-free");
}

static void mask_bearer_basic(void **state)
{
    (void)state;
    MASKS_TO("Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
             "Authorization: Bearer abcd****wxyz");
    MASKS_TO("\"Authorization\": \"Bearer abcdefghijklmnopqrstuvwxyz\"",
             "\"Authorization\": \"Bearer abcd****wxyz\"");
    MASKS_TO("proxy-authorization: Basic dXNlcjpwYXNzd29yZA==",
             "proxy-authorization: Basic dXNl****ZA==");
    MASKS_TO("bearer abc", "bearer ****");
    MASKS_TO("BEARER   tok", "BEARER   ****");
    MASKS_TO("BASIC " V20 " rest", "BASIC " V20M " rest");
    MASKS_TO("got Bearer sk-abcdefghijklmnopqrstuvwxyz", "got Bearer sk-a****wxyz");
    UNCHANGED("Bearer");
    UNCHANGED("Bearer ");
    /* documented over-masking: any word after "bearer " is taken as the token */
    MASKS_TO("a bearer of news", "a bearer **** news");
    UNCHANGED("xbearer abcdefghijklmnop");
}

static const char *const strong_names[] = {
    "access_token", "refresh_token",  "id_token", "api_key",    "api-key",       "apikey",
    "x-api-key",    "x-goog-api-key", "secret",   "secret-key", "secret_key",    "client_secret",
    "password",     "authorization",  "cookie",   "set-cookie", "code_verifier",
};

/* copies tmpl into dst, replacing '@' with name and '#' with val */
static void subst(char *dst, size_t cap, const char *tmpl, const char *name, const char *val)
{
    size_t len = 0;
    for (const char *t = tmpl; *t; t++) {
        const char *p = *t == '@' ? name : *t == '#' ? val : NULL;
        size_t n = p ? strlen(p) : 1;
        assert_true(len + n < cap);
        memcpy(dst + len, p ? p : t, n);
        len += n;
    }
    dst[len] = '\0';
}

/* tmpl with '@' = the name and '#' = the value masks to the same with the value masked */
static void expect_form(const char *tmpl, const char *name)
{
    char in[256], want[256];
    subst(in, sizeof in, tmpl, name, V20);
    subst(want, sizeof want, tmpl, name, V20M);
    if (strcmp(mask(in), want) != 0)
        fail_msg("mask(%s) = %s, want %s", in, mbuf, want);
}

static void mask_strong_names_all_forms(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof strong_names / sizeof strong_names[0]; k++) {
        const char *nm = strong_names[k];
        char upper[64];
        size_t i;

        /* JSON, pretty and compact */
        expect_form("{\"@\": \"#\", \"n\": 1}", nm);
        expect_form("{\"@\":\"#\"}", nm);
        /* HTTP header */
        expect_form("@: #\r\n", nm);
        /* YAML, plain and quoted */
        expect_form("  @: #\n", nm);
        expect_form("  @: '#'\n", nm);
        /* query string and form body */
        expect_form("GET /cb?@=#&state=1 HTTP/1.1", nm);
        expect_form("a=1&@=#", nm);
        /* key = value with spaces */
        expect_form("@ = #;", nm);
        /* names match in any case */
        for (i = 0; nm[i] && i < sizeof upper - 1; i++)
            upper[i] = (char)(nm[i] >= 'a' && nm[i] <= 'z' ? nm[i] - 32 : nm[i]);
        upper[i] = '\0';
        expect_form("@: #", upper);
    }
}

/* quoted values run to the closing quote; \" (JSON inside a JSON string) is a quote */
static void mask_quoted_values(void **state)
{
    (void)state;
    MASKS_TO("{\"password\": \"correct horse battery staple\", \"u\": 1}",
             "{\"password\": \"corr****aple\", \"u\": 1}");
    MASKS_TO("password: \"hunter2 hunter2\"", "password: \"****\"");
    MASKS_TO("password='a b c' next", "password='****' next");
    MASKS_TO("{\"password\":\"ab\\\"cd ef\"}",
             "{\"password\":\"****\"}"); /* escaped quote inside */
    MASKS_TO("{\\\"api_key\\\":\\\"" V20 "\\\"}", "{\\\"api_key\\\":\\\"" V20M "\\\"}");
    MASKS_TO("{\\\"password\\\":\\\"pw with space\\\",\\\"x\\\":1}",
             "{\\\"password\\\":\\\"****\\\",\\\"x\\\":1}");
    MASKS_TO("{\\\"key\\\": \\\"" V20 "\\\"}", "{\\\"key\\\": \\\"" V20M "\\\"}");
    /* an unterminated quote masks to the end of the line, not beyond */
    MASKS_TO("\"password\": \"unterminated", "\"password\": \"****");
    MASKS_TO("\"password\": \"a\nb\"", "\"password\": \"****\nb\"");
}

static void mask_weak_names(void **state)
{
    (void)state;
    MASKS_TO("{\"key\": \"" V20 "\"}", "{\"key\": \"" V20M "\"}");
    MASKS_TO("{'token': '" V20 "'}", "{'token': '" V20M "'}");
    MASKS_TO("key=" V20, "key=" V20M);
    MASKS_TO("/v1beta/models?key=" V20 "&alt=sse", "/v1beta/models?key=" V20M "&alt=sse");
    MASKS_TO("token = abc", "token = ****");
    /* readable: an unquoted name with ':' is prose, and longer words are not the names */
    UNCHANGED("unknown key: foo");
    UNCHANGED("invalid token: expired");
    UNCHANGED("\"keys\": [\"a\", \"b\"]");
    UNCHANGED("monkey=banana");
    UNCHANGED("key_id=abc");
    UNCHANGED("api-key-id=5");
    UNCHANGED("max_tokens=100 \"prompt_tokens\": 12");
    UNCHANGED("\"model\": \"gpt-4o-mini\"");
    UNCHANGED("\"secretary\": \"bob\"");
    UNCHANGED("passwords: 3");
    UNCHANGED("\"password\": \"\"");
}

static void mask_tokens(void **state)
{
    (void)state;
    /* JWT */
    MASKS_TO("id eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
             "lFUP0THsR8U end",
             "id eyJh****sR8U end");
    /* Google access and refresh tokens */
    MASKS_TO("ya29.abcdefghijklmnopqrstuvwxyz", "ya29****wxyz");
    MASKS_TO("t=1//0abcdefghijklmnopqrstuvwxyz", "t=1//0****wxyz");
    MASKS_TO("(ya29.a0AfH6SMB-xy_12.34/z)", "(ya29****34/z)");
    UNCHANGED("ya29.short");
    UNCHANGED("eyJabc");
    UNCHANGED("1//2 and 1//3");
    UNCHANGED("xya29.abcdefghijklmnopqrstuvwxyz"); /* not at a word start */
}

static void mask_generic_runs(void **state)
{
    (void)state;
    /* 40 characters mixing letters and digits */
    MASKS_TO("x abcdefghij0123456789abcdefghij0123456789 y", "x abcd****6789 y");
    MASKS_TO("ab_+=-ghij0123456789abcdefghij0123456789", "ab_+****6789");
    /* a SHA-256 in hex is one too */
    MASKS_TO("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "ba78****15ad");
    UNCHANGED("x abcdefghij0123456789abcdefghij012345678 y"); /* 39 */
    UNCHANGED("abcdefghijabcdefghijabcdefghijabcdefghij");    /* letters only */
    UNCHANGED("0123456789012345678901234567890123456789");    /* digits only */
    UNCHANGED("/usr/lib/x86_64-linux-gnu/libcurl.so.4 path segments are short");
}

static void mask_short_values(void **state)
{
    (void)state;
    MASKS_TO("password=hunter2", "password=****");
    MASKS_TO("password=a", "password=****");
    MASKS_TO("password=abcdefghijklmno", "password=****");          /* 15 */
    MASKS_TO("password=abcdefghijklmnop", "password=abcd****mnop"); /* 16 */
}

static void mask_truncation(void **state)
{
    char small[32];
    (void)state;

    memset(small, 'x', sizeof small);
    assert_int_equal(cm_log_mask("hello world", 11, small, 6), 5);
    assert_string_equal(small, "hello");

    /* a cut inside a masked value shows no more of the secret than the mask does */
    assert_int_equal(cm_log_mask("password=" V20, 29, small, 14), 13);
    assert_string_equal(small, "password=abcd");
    assert_int_equal(cm_log_mask("password=" V20, 29, small, 20), 19);
    assert_string_equal(small, "password=abcd****qr");
    assert_null(strstr(small, "efgh"));

    memset(small, 'x', sizeof small);
    assert_int_equal(cm_log_mask("abc", 3, small, 1), 0);
    assert_int_equal(small[0], '\0');
    memset(small, 'x', sizeof small);
    assert_int_equal(cm_log_mask("abc", 3, small, 0), 0);
    assert_int_equal(small[0], 'x');
}

static void mask_empty_and_bounded(void **state)
{
    char d[16];
    (void)state;
    memset(d, 'x', sizeof d);
    assert_int_equal(cm_log_mask("", 0, d, sizeof d), 0);
    assert_string_equal(d, "");
    /* only n bytes are read: the source need not be NUL-terminated */
    assert_int_equal(cm_log_mask("abcdef", 3, d, sizeof d), 3);
    assert_string_equal(d, "abc");
    assert_int_equal(cm_log_mask("sk-12345678", 10, d, sizeof d), 10);
    assert_string_equal(d, "sk-1234567");
}

/* ---- writer ---- */

struct capture {
    int count;
    enum cm_log_level lvl;
    size_t len;
    char line[CM_LOG_LINE_MAX + 256];
};

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;

static void capture_fn(enum cm_log_level lvl, const char *line, size_t len, void *ud)
{
    struct capture *c = ud;
    pthread_mutex_lock(&cap_lock);
    c->count++;
    c->lvl = lvl;
    c->len = len < sizeof c->line - 1 ? len : sizeof c->line - 1;
    memcpy(c->line, line, c->len);
    c->line[c->len] = '\0';
    pthread_mutex_unlock(&cap_lock);
}

static struct capture cap;

static int setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    cm_log_set_stderr(0);
    cm_log_set_level(CM_LOG_INFO);
    cm_log_set_sink(capture_fn, &cap);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_log_set_sink(NULL, NULL);
    cm_log_set_level(CM_LOG_INFO);
    cm_log_set_stderr(1);
    return 0;
}

/* checks "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL " and returns what follows */
static const char *after_prefix(const char *line, const char *level5)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (shape[i] == 'd')
            assert_true(line[i] >= '0' && line[i] <= '9');
        else
            assert_int_equal(line[i], shape[i]);
    }
    assert_memory_equal(line + 25, level5, 5);
    assert_int_equal(line[30], ' ');
    return line + 31;
}

static int count_char(const char *s, size_t n, char c)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

static void write_format_and_rid(void **state)
{
    (void)state;
    cm_log_info("req-42", "hello %s %d", "world", 7);
    assert_int_equal(cap.count, 1);
    assert_int_equal(cap.lvl, CM_LOG_INFO);
    assert_string_equal(after_prefix(cap.line, "INFO "), "[req-42] hello world 7\n");
    assert_int_equal(cap.len, strlen(cap.line));

    cm_log_error(NULL, "no rid");
    assert_string_equal(after_prefix(cap.line, "ERROR"), "no rid\n");

    /* the request id is cut at 40 characters */
    cm_log_warn("0123456789012345678901234567890123456789EXTRA", "m");
    assert_string_equal(after_prefix(cap.line, "WARN "),
                        "[0123456789012345678901234567890123456789] m\n");
}

static void write_rid_one_line(void **state)
{
    (void)state;
    cm_log_info("a\nb\rc\x7f"
                "d",
                "m");
    assert_string_equal(after_prefix(cap.line, "INFO "), "[a?b?c?d] m\n");
    assert_int_equal(count_char(cap.line, cap.len, '\n'), 1);
}

static void write_level_filter(void **state)
{
    enum cm_log_level l;
    (void)state;

    cm_log_set_level(CM_LOG_WARN);
    assert_int_equal(cm_log_get_level(), CM_LOG_WARN);
    cm_log_debug(NULL, "d");
    cm_log_info(NULL, "i");
    assert_int_equal(cap.count, 0);
    cm_log_warn(NULL, "w");
    assert_int_equal(cap.count, 1);
    assert_int_equal(cap.lvl, CM_LOG_WARN);
    cm_log_error(NULL, "e");
    assert_int_equal(cap.count, 2);

    cm_log_set_level(CM_LOG_DEBUG);
    cm_log_debug("r", "dbg %d", 1);
    assert_int_equal(cap.count, 3);
    assert_string_equal(after_prefix(cap.line, "DEBUG"), "[r] dbg 1\n");

    cm_log_set_level(CM_LOG_OFF);
    cm_log_error(NULL, "e");
    cm_log_write(CM_LOG_OFF, NULL, "off is never a message level");
    assert_int_equal(cap.count, 3);
    assert_false(cm_log_enabled(CM_LOG_ERROR));
    cm_log_set_level(CM_LOG_DEBUG);
    assert_false(cm_log_enabled(CM_LOG_OFF));
    assert_true(cm_log_enabled(CM_LOG_DEBUG));

    /* parse */
    assert_int_equal(cm_log_level_parse("debug", &l), CM_OK);
    assert_int_equal(l, CM_LOG_DEBUG);
    assert_int_equal(cm_log_level_parse("INFO", &l), CM_OK);
    assert_int_equal(l, CM_LOG_INFO);
    assert_int_equal(cm_log_level_parse("Warn", &l), CM_OK);
    assert_int_equal(l, CM_LOG_WARN);
    assert_int_equal(cm_log_level_parse("warning", &l), CM_OK);
    assert_int_equal(l, CM_LOG_WARN);
    assert_int_equal(cm_log_level_parse("error", &l), CM_OK);
    assert_int_equal(l, CM_LOG_ERROR);
    assert_int_equal(cm_log_level_parse("off", &l), CM_OK);
    assert_int_equal(l, CM_LOG_OFF);
    l = CM_LOG_INFO;
    assert_int_equal(cm_log_level_parse("verbose", &l), CM_ERR_INVAL);
    assert_int_equal(cm_log_level_parse("", &l), CM_ERR_INVAL);
    assert_int_equal(cm_log_level_parse(NULL, &l), CM_ERR_INVAL);
    assert_int_equal(l, CM_LOG_INFO);
}

static void write_one_line(void **state)
{
    const char *body;
    (void)state;
    cm_log_info("r1", "a\nb\r\nc\td\x01"
                      "e\x7f"
                      "f");
    body = after_prefix(cap.line, "INFO ");
    assert_string_equal(body, "[r1] a\\nb\\r\\nc\\x09d\\x01e\\x7ff\n");
    assert_int_equal(count_char(cap.line, cap.len, '\n'), 1);
}

static void write_masks_secrets(void **state)
{
    static const char *const secrets[] = {
        "sk-Zq3xY7wV1uT5sR9pO2nM6lK0jI4hG8fE",
        "ya29.a0AfH6SMBxQ9wE8rT7yU6iO5pA4sD3fG2hJ1kL",
        "hunter2hunter2hunter2",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2lnbmF0dXJl",
        "Qm9vZ2llV29vZ2llMTIzNDU2Nzg5MDEyMzQ1Njc4OTA",
    };
    (void)state;

    cm_log_info("r", "upstream %s: Authorization: Bearer %s", "codex", secrets[0] + 3);
    assert_null(strstr(cap.line, secrets[0] + 3));
    assert_non_null(strstr(cap.line, "Bearer Zq3x****G8fE"));

    cm_log_info("r", "key %s", secrets[0]);
    assert_null(strstr(cap.line, secrets[0]));
    cm_log_info("r", "{\"access_token\":\"%s\",\"expires_in\":3599}", secrets[1]);
    assert_null(strstr(cap.line, secrets[1]));
    assert_non_null(strstr(cap.line, "\"expires_in\":3599"));
    cm_log_info("r", "login password=%s&user=bob", secrets[2]);
    assert_null(strstr(cap.line, secrets[2]));
    assert_non_null(strstr(cap.line, "&user=bob"));
    cm_log_info("r", "jwt %s", secrets[3]);
    assert_null(strstr(cap.line, secrets[3]));
    /* a secret on its own line of a multi-line body is still masked */
    cm_log_info("r", "body:\n%s\n", secrets[4]);
    assert_null(strstr(cap.line, secrets[4]));
    assert_int_equal(count_char(cap.line, cap.len, '\n'), 1);
}

static void write_long_lines_cut(void **state)
{
    static char big[3 * CM_LOG_LINE_MAX];
    size_t n = sizeof big - 1;
    (void)state;

    for (size_t i = 0; i < n; i++)
        big[i] = "word "[i % 5];
    big[n] = '\0';
    cm_log_info("rid", "%s", big);
    assert_int_equal(cap.count, 1);
    assert_int_equal(cap.len, strlen(cap.line));
    assert_true(cap.len <= CM_LOG_LINE_MAX + 4);
    assert_true(cap.len > CM_LOG_LINE_MAX - 100);
    assert_string_equal(cap.line + cap.len - 4, "...\n");
    assert_int_equal(count_char(cap.line, cap.len, '\n'), 1);

    /* escaping makes the line longer than the message: still cut, still one line */
    memset(big, '\n', CM_LOG_LINE_MAX - 100);
    big[CM_LOG_LINE_MAX - 100] = '\0';
    cm_log_info(NULL, "%s", big);
    assert_true(cap.len <= CM_LOG_LINE_MAX + 4);
    assert_string_equal(cap.line + cap.len - 4, "...\n");
    assert_int_equal(count_char(cap.line, cap.len, '\n'), 1);

    memset(big, '\x02', CM_LOG_LINE_MAX - 100);
    cm_log_info(NULL, "%s", big);
    assert_true(cap.len <= CM_LOG_LINE_MAX + 4);
    assert_int_equal(count_char(cap.line, cap.len, '\n'), 1);

    /* a line that fits is not marked */
    cm_log_info(NULL, "short");
    assert_string_equal(after_prefix(cap.line, "INFO "), "short\n");
}

static void write_sink_removed(void **state)
{
    (void)state;
    cm_log_set_sink(NULL, NULL);
    cm_log_info(NULL, "not captured");
    assert_int_equal(cap.count, 0);
}

static void write_to_file(void **state)
{
    char path[] = "/tmp/cm_test_log_XXXXXX", buf[512];
    FILE *f;
    size_t n;
    int fd;
    (void)state;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cm_log_init(CM_LOG_INFO, path), CM_OK);
    cm_log_info("f1", "to the file password=%s", "hunter2hunter2hunter2");
    cm_log_shutdown();
    cm_log_info("f1", "after shutdown");

    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(path);
    buf[n] = '\0';
    assert_int_equal(count_char(buf, n, '\n'), 1);
    assert_string_equal(after_prefix(buf, "INFO "), "[f1] to the file password=hunt****ter2\n");
}

static void write_file_open_fails(void **state)
{
    (void)state;
    assert_int_equal(cm_log_init(CM_LOG_INFO, "/nonexistent-dir/x/y.log"), CM_ERR_IO);
    /* the failure itself was logged, and logging goes on */
    assert_int_equal(cap.count, 1);
    assert_non_null(strstr(cap.line, "log: open /nonexistent-dir/x/y.log"));
    cm_log_info(NULL, "still here");
    assert_int_equal(cap.count, 2);
}

#define THREADS 4
#define PER_THREAD 200

static void *log_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        cm_log_info("t", "line %d of a thread", i);
    return NULL;
}

static void write_threads(void **state)
{
    pthread_t t[THREADS];
    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_thread, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(cap.count, THREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mask_sk_keys),
        cmocka_unit_test(mask_bearer_basic),
        cmocka_unit_test(mask_strong_names_all_forms),
        cmocka_unit_test(mask_quoted_values),
        cmocka_unit_test(mask_weak_names),
        cmocka_unit_test(mask_tokens),
        cmocka_unit_test(mask_generic_runs),
        cmocka_unit_test(mask_short_values),
        cmocka_unit_test(mask_truncation),
        cmocka_unit_test(mask_empty_and_bounded),
        cmocka_unit_test_setup_teardown(write_format_and_rid, setup, teardown),
        cmocka_unit_test_setup_teardown(write_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(write_rid_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(write_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(write_masks_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(write_long_lines_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(write_sink_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(write_to_file, setup, teardown),
        cmocka_unit_test_setup_teardown(write_file_open_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(write_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
