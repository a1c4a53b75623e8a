/* SPDX-License-Identifier: MIT */
/*
 * test_conf.c - meterctl's configuration precedence (flags > environment > file >
 * defaults) with each value's source, the key=value file syntax (comments, quotes, env-style
 * names, unknown keys warned), the checks (URL scheme, trailing '/', user id) naming the
 * source, the default path, and reading a file (directory form, missing, permissions).
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

#include "cm/alloc.h"
#include "cm/err.h"
#include "conf.h"
#include "fake_env.h"

static int resolve(struct mc_conf *c, const char *file, const char **env,
                   const struct mc_conf_flags *flags, char *err, char *warn)
{
    mc_conf_init(c);
    return mc_conf_resolve(c, file, file ? strlen(file) : 0, "/home/op/.config/meterctl", fake_env,
                           (void *)env, flags, err, 256, warn, 256);
}

static void defaults_only(void **state)
{
    struct mc_conf c;
    char err[256], warn[256];
    (void)state;
    assert_int_equal(resolve(&c, NULL, NULL, NULL, err, warn), CM_OK);
    assert_string_equal(c.val[MC_CONF_URL], "http://127.0.0.1:3000");
    assert_string_equal(c.src[MC_CONF_URL], "default");
    assert_int_equal(c.user, 1);
    assert_null(c.val[MC_CONF_TOKEN]);
    assert_string_equal(warn, "");
    mc_conf_cleanup(&c);
}

static void precedence(void **state)
{
    static const char file[] = "# meterctl\n"
                               "url = http://file:3000/\n"
                               "token=\"file-token\"\n"
                               "  user = 7  \n"
                               "\n"
                               "cliproxy_url='http://cp:8317'\n"
                               "CLIPROXY_KEY=file-cp-key\n";
    const char *env[] = {"METERD_TOKEN", "env-token", "METERD_USER", "8", "METERD_URL", "", NULL};
    struct mc_conf_flags flags = {{0}};
    struct mc_conf c;
    char err[256], warn[256];
    (void)state;

    /* file over defaults, env over file (an empty METERD_URL counts as unset) */
    assert_int_equal(resolve(&c, file, env, NULL, err, warn), CM_OK);
    assert_string_equal(c.val[MC_CONF_URL], "http://file:3000"); /* trailing '/' dropped */
    assert_string_equal(c.src[MC_CONF_URL], "/home/op/.config/meterctl:2");
    assert_string_equal(c.val[MC_CONF_TOKEN], "env-token");
    assert_string_equal(c.src[MC_CONF_TOKEN], "METERD_TOKEN");
    assert_int_equal(c.user, 8);
    assert_string_equal(c.src[MC_CONF_USER], "METERD_USER");
    assert_string_equal(c.val[MC_CONF_CLIPROXY_URL], "http://cp:8317");
    assert_string_equal(c.val[MC_CONF_CLIPROXY_KEY], "file-cp-key");
    assert_string_equal(c.src[MC_CONF_CLIPROXY_KEY], "/home/op/.config/meterctl:7");
    mc_conf_cleanup(&c);

    /* flags over everything */
    flags.val[MC_CONF_TOKEN] = "flag-token";
    flags.val[MC_CONF_URL] = "https://flag.example";
    flags.val[MC_CONF_USER] = "9";
    assert_int_equal(resolve(&c, file, env, &flags, err, warn), CM_OK);
    assert_string_equal(c.val[MC_CONF_TOKEN], "flag-token");
    assert_string_equal(c.src[MC_CONF_TOKEN], "--access-token");
    assert_string_equal(c.val[MC_CONF_URL], "https://flag.example");
    assert_string_equal(c.src[MC_CONF_URL], "--url");
    assert_int_equal(c.user, 9);
    mc_conf_cleanup(&c);

    /* env alone over defaults */
    assert_int_equal(resolve(&c, NULL, env, NULL, err, warn), CM_OK);
    assert_string_equal(c.val[MC_CONF_URL], "http://127.0.0.1:3000");
    assert_string_equal(c.val[MC_CONF_TOKEN], "env-token");
    mc_conf_cleanup(&c);
}

static void file_syntax(void **state)
{
    struct mc_conf c;
    char err[256], warn[256];
    (void)state;

    assert_int_equal(resolve(&c, "url=http://a\nsecret_sauce = 1\nMETERD_TOKEN=t\naccess_token=u\n",
                             NULL, NULL, err, warn),
                     CM_OK);
    assert_non_null(strstr(warn, "meterctl:2: unknown key \"secret_sauce\""));
    assert_string_equal(c.val[MC_CONF_TOKEN], "u"); /* later line wins within the file */
    mc_conf_cleanup(&c);

    assert_int_equal(resolve(&c, "url http://a\n", NULL, NULL, err, warn), CM_ERR_PARSE);
    assert_string_equal(err, "/home/op/.config/meterctl:1: expected key=value");
    mc_conf_cleanup(&c);

    /* CRLF and a missing final newline */
    assert_int_equal(resolve(&c, "token=abc\r\nuser=3", NULL, NULL, err, warn), CM_OK);
    assert_string_equal(c.val[MC_CONF_TOKEN], "abc");
    assert_int_equal(c.user, 3);
    mc_conf_cleanup(&c);
}

static void checks_name_the_source(void **state)
{
    const char *env[] = {"METERD_USER", "abc", NULL};
    const char *env2[] = {"METERD_URL", "ftp://x", NULL};
    struct mc_conf_flags flags = {{0}};
    struct mc_conf c;
    char err[256], warn[256];
    (void)state;

    assert_int_equal(resolve(&c, NULL, env, NULL, err, warn), CM_ERR_INVAL);
    assert_string_equal(err, "user (from METERD_USER) \"abc\" is not a user id (a positive "
                             "integer)");
    mc_conf_cleanup(&c);
    assert_int_equal(resolve(&c, NULL, env2, NULL, err, warn), CM_ERR_INVAL);
    assert_string_equal(err, "url (from METERD_URL) \"ftp://x\" is not an http:// or https:// URL");
    mc_conf_cleanup(&c);
    flags.val[MC_CONF_USER] = "0";
    assert_int_equal(resolve(&c, NULL, NULL, &flags, err, warn), CM_ERR_INVAL);
    assert_non_null(strstr(err, "(from --user)"));
    mc_conf_cleanup(&c);
    flags.val[MC_CONF_USER] = NULL;
    flags.val[MC_CONF_CLIPROXY_URL] = "localhost:8317";
    assert_int_equal(resolve(&c, NULL, NULL, &flags, err, warn), CM_ERR_INVAL);
    assert_non_null(strstr(err, "cliproxy_url (from --cliproxy-url)"));
    mc_conf_cleanup(&c);
}

static void default_path(void **state)
{
    const char *xdg[] = {"XDG_CONFIG_HOME", "/x", "HOME", "/home/op", NULL};
    const char *home[] = {"HOME", "/home/op", NULL};
    char buf[64];
    (void)state;
    assert_int_equal(mc_conf_default_path(fake_env, (void *)xdg, buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "/x/meterctl");
    assert_int_equal(mc_conf_default_path(fake_env, (void *)home, buf, sizeof buf), CM_OK);
    assert_string_equal(buf, "/home/op/.config/meterctl");
    assert_int_equal(mc_conf_default_path(fake_env, NULL, buf, sizeof buf), CM_ERR_NOTFOUND);
    assert_int_equal(mc_conf_default_path(fake_env, (void *)home, buf, 8), CM_ERR_LIMIT);
}

static void read_file(void **state)
{
    char dir[] = "/tmp/mc-conf-XXXXXX", path[256], sub[512], err[256], *text = NULL;
    size_t len = 0;
    int insecure = -1;
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/meterctl", dir);
    assert_int_equal(mc_conf_read_file(path, &text, &len, &insecure, err, sizeof err),
                     CM_ERR_NOTFOUND);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("token=abc\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(mc_conf_read_file(path, &text, &len, &insecure, err, sizeof err), CM_OK);
    assert_string_equal(text, "token=abc\n");
    assert_int_equal(len, 10);
    assert_int_equal(insecure, 1);
    cm_free(text);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(mc_conf_read_file(path, &text, &len, &insecure, err, sizeof err), CM_OK);
    assert_int_equal(insecure, 0);
    cm_free(text);
    unlink(path);

    /* a directory means DIR/config */
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(sub, sizeof sub, "%s/config", path);
    f = fopen(sub, "w");
    assert_non_null(f);
    fputs("user=5\n", f);
    fclose(f);
    assert_int_equal(mc_conf_read_file(path, &text, &len, NULL, err, sizeof err), CM_OK);
    assert_string_equal(text, "user=5\n");
    cm_free(text);
    unlink(sub);
    rmdir(path);
    rmdir(dir);
}

static void oom_walk(void **state)
{
    static const char file[] = "url=http://a\ntoken=t\n";
    const char *env[] = {"METERD_USER", "4", NULL};
    (void)state;
    for (long n = 1; n < 50; n++) {
        struct mc_conf c;
        char err[256], warn[256];
        int rc;
        cm_alloc_fail_at(n);
        rc = resolve(&c, file, env, NULL, err, warn);
        cm_alloc_fail_at(0);
        mc_conf_cleanup(&c);
        if (rc == CM_OK)
            return;
        assert_int_equal(rc, CM_ERR_NOMEM);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_only), cmocka_unit_test(precedence),
        cmocka_unit_test(file_syntax),   cmocka_unit_test(checks_name_the_source),
        cmocka_unit_test(default_path),  cmocka_unit_test(read_file),
        cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
