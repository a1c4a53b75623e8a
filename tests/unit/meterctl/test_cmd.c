/* SPDX-License-Identifier: MIT */
/*
 * test_cmd.c - the command context without a network: global options anywhere on a
 * command's line, bad global values as usage errors, configuration resolved from a config
 * file under XDG_CONFIG_HOME, the environment and flags (in that order of strength), the
 * "no access token" refusal, the hints and exit codes of failed API calls (unreachable,
 * auth refused, missing route) with the token never printed, and usage errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/err.h"
#include "cmd.h"
#include "fake_env.h"

/* stdout / stderr of the context go to temporary files; read() copies them out */
struct io {
    char out[16384], err[16384];
    FILE *fo, *fe;
};

static void slurp(FILE *f, char *buf, size_t cap)
{
    size_t n;
    fflush(f);
    rewind(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
}

static void read_io(struct io *io)
{
    slurp(io->fo, io->out, sizeof io->out);
    slurp(io->fe, io->err, sizeof io->err);
}

static void start(struct mc_ctx *c, struct io *io, const char **env)
{
    memset(io, 0, sizeof *io);
    io->fo = tmpfile();
    io->fe = tmpfile();
    assert_non_null(io->fo);
    assert_non_null(io->fe);
    mc_ctx_init(c, io->fo, io->fe, fake_env, (void *)env);
}

static void finish(struct mc_ctx *c, struct io *io)
{
    mc_ctx_cleanup(c);
    fclose(io->fo);
    fclose(io->fe);
}

static void globals_anywhere(void **state)
{
    const char *env[] = {"HOME", "/nonexistent", NULL};
    char *argv[] = {"--json", "a", "--url", "http://x:1", "-v", "--timeout=5", "--no-color", "b"};
    const char *pos[2];
    size_t n = 0;
    struct mc_ctx c;
    struct io io;
    (void)state;

    start(&c, &io, env);
    assert_int_equal(mc_parse_simple(&c, 8, argv, "usage\n", pos, 2, &n), MC_EXIT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(pos[0], "a");
    assert_string_equal(pos[1], "b");
    assert_true(c.json && c.verbose && c.color_mode == 0 && c.timeout_s == 5);
    assert_string_equal(c.flags.val[MC_CONF_URL], "http://x:1");
    finish(&c, &io);
}

static void usage_errors(void **state)
{
    char *a1[] = {"--color", "sometimes"};
    char *a2[] = {"--timeout", "0"};
    char *a3[] = {"x", "y"};
    char *a4[] = {"--bogus"};
    const char *pos[1];
    size_t n;
    struct mc_ctx c;
    struct io io;
    (void)state;

    start(&c, &io, NULL);
    assert_int_equal(mc_parse_simple(&c, 2, a1, "USAGE\n", pos, 1, &n), MC_EXIT_USAGE);
    assert_int_equal(mc_parse_simple(&c, 2, a2, "USAGE\n", pos, 1, &n), MC_EXIT_USAGE);
    assert_int_equal(mc_parse_simple(&c, 2, a3, "USAGE\n", pos, 1, &n), MC_EXIT_USAGE);
    assert_int_equal(mc_parse_simple(&c, 1, a4, "USAGE\n", pos, 1, &n), MC_EXIT_USAGE);
    read_io(&io);
    assert_non_null(strstr(io.err, "--color takes always, never or auto, not \"sometimes\""));
    assert_non_null(strstr(io.err, "--timeout takes seconds"));
    assert_non_null(strstr(io.err, "unexpected argument \"y\""));
    assert_non_null(strstr(io.err, "unknown option \"--bogus\""));
    assert_non_null(strstr(io.err, "USAGE\n"));
    finish(&c, &io);
}

static void open_needs_a_token(void **state)
{
    const char *env[] = {"HOME", "/nonexistent", NULL};
    struct mc_ctx c;
    struct io io;
    (void)state;
    start(&c, &io, env);
    assert_int_equal(mc_ctx_open(&c, 1), MC_EXIT_USAGE);
    read_io(&io);
    assert_non_null(strstr(io.err, "no access token"));
    assert_non_null(strstr(io.err, "METERD_TOKEN"));
    finish(&c, &io);

    start(&c, &io, env);
    assert_int_equal(mc_ctx_open(&c, 0), MC_EXIT_OK); /* public routes need none */
    finish(&c, &io);
}

static void open_layers(void **state)
{
    char dir[] = "/tmp/mc-cmd-XXXXXX", path[256];
    const char *env[] = {"XDG_CONFIG_HOME", dir, "METERD_USER", "3", "NO_COLOR", "1", NULL};
    struct mc_ctx c;
    struct io io;
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/meterctl", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("url=http://from-file:9\ntoken=file-token-0123456789abcdef\nuser=2\n", f);
    fclose(f);
    chmod(path, 0644);

    start(&c, &io, env);
    c.verbose = 1;
    c.out_tty = 1; /* NO_COLOR still wins */
    assert_int_equal(mc_ctx_open(&c, 1), MC_EXIT_OK);
    assert_string_equal(c.conf.val[MC_CONF_URL], "http://from-file:9");
    assert_string_equal(c.conf.val[MC_CONF_TOKEN], "file-token-0123456789abcdef");
    assert_int_equal(c.conf.user, 3); /* env over file */
    assert_int_equal(c.api.user, 3);
    assert_int_equal(c.color, 0);
    read_io(&io);
    /* group-readable file holding a token: warned; the token itself never printed */
    assert_non_null(strstr(io.err, "readable by other users"));
    assert_non_null(strstr(io.err, "user 3 (from METERD_USER)"));
    assert_null(strstr(io.err, "file-token-0123456789abcdef"));
    finish(&c, &io);

    /* flags over env over file */
    start(&c, &io, env);
    c.flags.val[MC_CONF_USER] = "4";
    c.flags.val[MC_CONF_URL] = "http://flag:1";
    assert_int_equal(mc_ctx_open(&c, 1), MC_EXIT_OK);
    assert_int_equal(c.conf.user, 4);
    assert_string_equal(c.conf.val[MC_CONF_URL], "http://flag:1");
    finish(&c, &io);

    /* an explicit --config that does not exist is an error; the default one is optional */
    start(&c, &io, env);
    c.config_path = "/nonexistent/meterctl.conf";
    assert_int_equal(mc_ctx_open(&c, 0), MC_EXIT_USAGE);
    read_io(&io);
    assert_non_null(strstr(io.err, "config file: /nonexistent/meterctl.conf"));
    finish(&c, &io);

    unlink(path);
    rmdir(dir);
}

static void api_failures_have_hints(void **state)
{
    const char *env[] = {"HOME", "/nonexistent", "METERD_TOKEN", "secret-token-abcdef0123456",
                         NULL};
    struct mc_api_err e;
    struct mc_ctx c;
    struct io io;
    (void)state;

    start(&c, &io, env);
    assert_int_equal(mc_ctx_open(&c, 1), MC_EXIT_OK);

    memset(&e, 0, sizeof e);
    e.rc = CM_ERR_UPSTREAM;
    snprintf(e.msg, sizeof e.msg, "cannot reach http://127.0.0.1:3000/api/user/: refused");
    assert_int_equal(mc_fail_api(&c, "GET /api/user/", &e), MC_EXIT_UNREACHABLE);
    e.rc = CM_ERR_TIMEOUT;
    assert_int_equal(mc_fail_api(&c, "GET /api/user/", &e), MC_EXIT_UNREACHABLE);
    e.rc = CM_ERR_AUTH;
    e.status = 200;
    snprintf(e.msg, sizeof e.msg, "HTTP 200: Unauthorized, invalid access token");
    assert_int_equal(mc_fail_api(&c, "GET /api/user/", &e), MC_EXIT_AUTH);
    e.rc = CM_ERR_NOTFOUND;
    e.status = 404;
    snprintf(e.msg, sizeof e.msg, "HTTP 404: no route");
    assert_int_equal(mc_fail_api(&c, "GET /api/log/", &e), MC_EXIT_FAIL);
    e.rc = CM_ERR_DENIED;
    e.status = 200;
    assert_int_equal(mc_fail_api(&c, "PUT /api/option/", &e), MC_EXIT_FAIL);
    read_io(&io);
    assert_non_null(strstr(io.err, "meterctl: error: GET /api/user/: cannot reach"));
    assert_non_null(strstr(io.err, "is meterd running at http://127.0.0.1:3000 (from default)"));
    assert_non_null(strstr(io.err, "refused the access token (from METERD_TOKEN) for user 1"));
    assert_non_null(strstr(io.err, "has no such route"));
    assert_null(strstr(io.err, "secret-token"));
    assert_null(strchr(io.err, '\033')); /* not a TTY: no colour */
    finish(&c, &io);
}

static int group_setup(void **state)
{
    (void)state;
    return mc_api_global_init();
}

static int group_teardown(void **state)
{
    (void)state;
    mc_api_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(globals_anywhere),        cmocka_unit_test(usage_errors),
        cmocka_unit_test(open_needs_a_token),      cmocka_unit_test(open_layers),
        cmocka_unit_test(api_failures_have_hints),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
