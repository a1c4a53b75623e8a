/* SPDX-License-Identifier: MIT */
/*
 * test_config_edit.c - comment-preserving config.yaml edits: YAML double quoting
 * (every string reads back the same through the real loader), replacing a top-level
 * list in its block / compact / flow / multi-line flow forms, appending absent keys,
 * nested scalars under a top-level mapping, lookalike keys left alone, CRLF, the
 * CLIProxyAPI fixture edited with only the value's bytes changing, save (validation
 * before writing, mode and symlink kept, nothing written on refusal), the start-up
 * bcrypt rewrite of a plaintext secret-key, and OOM on every allocation.
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
#include "cm/buf.h"
#include "cm/cfg.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/log.h"
#include "config.h"
#include "config_edit.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    cm_log_set_stderr(0);
    setenv("HOME", "/home/tester", 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cp-config-edit-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    (void)state;
    cm_alloc_fail_at(0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    cm_log_set_stderr(1);
    return 0;
}

static struct cp_config *load(const char *yaml)
{
    struct cp_config *c = NULL;
    char err[CM_CFG_ERR_MAX];
    int rc = cp_config_load_mem("t.yaml", yaml, strlen(yaml), &c, err, sizeof err);
    if (rc)
        print_error("does not load: %s\n--- text ---\n%s\n", err, yaml);
    assert_int_equal(rc, CM_OK);
    return c;
}

static char *set_list(const char *text, const char *const *items, size_t n)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(cp_config_edit_set_list(text, strlen(text), "api-keys", items, n, &out, &len),
                     CM_OK);
    assert_int_equal(strlen(out), len);
    return out;
}

static void expect_list(const char *text, const char *const *items, size_t n, const char *want)
{
    char *out = set_list(text, items, n);
    struct cp_config *c;
    if (strcmp(out, want) != 0)
        print_error("--- got ---\n%s--- want ---\n%s", out, want);
    assert_string_equal(out, want);
    c = load(out);
    assert_int_equal(c->api_keys_count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(c->api_keys[i], items[i]);
    cp_config_free(c);
    cm_free(out);
}

static void expect_scalar(const char *text, const char *parent, const char *key, const char *value,
                          const char *want)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(cp_config_edit_set_scalar(text, strlen(text), parent, key, value, &out, &len),
                     CM_OK);
    if (strcmp(out, want) != 0)
        print_error("--- got ---\n%s--- want ---\n%s", out, want);
    assert_string_equal(out, want);
    cm_free(out);
}

/* ---- quoting ---- */

static void test_quote(void **state)
{
    static const char *const tricky[] = {
        "plain",
        "with \"quotes\" and \\backslash\\",
        "tab\there, newline\nthere, cr\r",
        "ctl\x01\x1f del\x7f",
        "colon: hash # bracket [ { & * ! | > ' % @ `",
        "  leading and trailing spaces  ",
        "unicode \xc3\xa9\xe2\x82\xac \xf0\x9f\x94\x91",
        "C1 \xc2\x85 \xc2\x9f LS \xe2\x80\xa8 PS \xe2\x80\xa9 BOM \xef\xbb\xbf",
        "",
        "- not a list",
        "true",
        "~",
    };
    const size_t n = sizeof tricky / sizeof tricky[0];
    struct cm_buf b;
    char *out;
    struct cp_config *c;
    (void)state;

    cm_buf_init(&b, 4096);
    assert_int_equal(cp_config_edit_quote(&b, "a\"b\\c\n\x01\xc2\x85\xe2\x80\xa8"), CM_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\x01\\N\\L\"");
    cm_buf_reset(&b);
    /* invalid UTF-8: refused, nothing appended */
    assert_int_equal(cp_config_edit_quote(&b, "x\xff"), CM_ERR_INVAL);
    assert_int_equal(cp_config_edit_quote(&b, "\xc0\xaf"), CM_ERR_INVAL);         /* overlong */
    assert_int_equal(cp_config_edit_quote(&b, "\xed\xa0\x80"), CM_ERR_INVAL);     /* surrogate */
    assert_int_equal(cp_config_edit_quote(&b, "\xf4\x90\x80\x80"), CM_ERR_INVAL); /* > 10FFFF */
    assert_int_equal(cp_config_edit_quote(&b, "\xe2\x82"), CM_ERR_INVAL);         /* truncated */
    assert_int_equal(b.len, 0);
    assert_int_equal(cp_config_edit_quote(NULL, "x"), CM_ERR_INVAL);
    assert_int_equal(cp_config_edit_quote(&b, NULL), CM_ERR_INVAL);
    cm_buf_cleanup(&b);

    /* every string reads back unchanged through the real loader */
    out = set_list("api-keys: []\n", tricky, n);
    c = load(out);
    assert_int_equal(c->api_keys_count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(c->api_keys[i], tricky[i]);
    cp_config_free(c);
    cm_free(out);
}

/* ---- top-level lists ---- */

static void test_block_list_keeps_comments(void **state)
{
    static const char *const items[] = {"new-1", "new \"2\""};
    (void)state;
    /* the text around the list stays as it was */
#define BEFORE "# top comment\nhost: \"127.0.0.1\" # inline\n# Client keys\napi-keys:\n"
#define AFTER "\n# Debug\ndebug: true\nunknown-key: 5\n"
    expect_list(BEFORE "  - \"old-1\"   # first\n"
                       "  # - \"commented\"\n"
                       "  - old-2\n" AFTER,
                items, 2, BEFORE "  - \"new-1\"\n  - \"new \\\"2\\\"\"\n" AFTER);
#undef BEFORE
#undef AFTER
    /* a key-line comment stays; deeper indentation of the old items is kept */
    expect_list("api-keys: # who may call\n"
                "    - a\n"
                "    - b\n"
                "debug: false\n",
                items, 1,
                "api-keys: # who may call\n"
                "    - \"new-1\"\n"
                "debug: false\n");
    /* emptied */
    expect_list("api-keys:\n  - a\n  - b\ndebug: false\n", items, 0,
                "api-keys: []\ndebug: false\n");
}

static void test_compact_and_flow_lists(void **state)
{
    static const char *const items[] = {"k1", "k2"};
    (void)state;
    /* "- " items at the key's column */
    expect_list("api-keys:\n- a\n- b\n# next\ndebug: true\n", items, 2,
                "api-keys:\n- \"k1\"\n- \"k2\"\n# next\ndebug: true\n");
    expect_list("port: 8317\napi-keys: []\ndebug: true\n", items, 2,
                "port: 8317\napi-keys:\n  - \"k1\"\n  - \"k2\"\ndebug: true\n");
    expect_list("api-keys: [\"a\", 'b, c', \"d]\"] # keys\ndebug: true\n", items, 1,
                "api-keys: # keys\n  - \"k1\"\ndebug: true\n");
    /* a flow sequence over several lines, its close at column 0 */
    expect_list("api-keys: [\n  \"a\", # first\n  \"b\"\n]\ndebug: true\n", items, 2,
                "api-keys:\n  - \"k1\"\n  - \"k2\"\ndebug: true\n");
    /* a null value */
    expect_list("api-keys:\ndebug: true\n", items, 1, "api-keys:\n  - \"k1\"\ndebug: true\n");
    expect_list("api-keys: ~\ndebug: true\n", items, 0, "api-keys: []\ndebug: true\n");
}

static void test_absent_and_lookalikes(void **state)
{
    static const char *const items[] = {"k"};
    (void)state;
    /* appended, also after a last line without newline */
    expect_list("port: 8317\n", items, 1, "port: 8317\napi-keys:\n  - \"k\"\n");
    expect_list("port: 8317", items, 1, "port: 8317\napi-keys:\n  - \"k\"\n");
    expect_list("", items, 1, "api-keys:\n  - \"k\"\n");
    /* lookalikes: a longer key, a nested key, text in a block scalar, a comment */
#define LOOKALIKES                                                                                 \
    "api-keys-extra: x\n"                                                                          \
    "codex-api-key:\n"                                                                             \
    "  - api-key: \"a\"\n"                                                                         \
    "    base-url: \"https://x\"\n"                                                                \
    "payload:\n"                                                                                   \
    "  api-keys:\n"                                                                                \
    "    - nested\n"                                                                               \
    "# api-keys:\n"                                                                                \
    "#   - commented\n"                                                                            \
    "\"api-keys\":\n"
    expect_list(LOOKALIKES "  - old\n", items, 1, LOOKALIKES "  - \"k\"\n");
#undef LOOKALIKES
}

static void test_crlf_and_bom(void **state)
{
    static const char *const items[] = {"a", "b"};
    (void)state;
    expect_list("port: 8317\r\napi-keys:\r\n  - x\r\ndebug: true\r\n", items, 2,
                "port: 8317\r\napi-keys:\r\n  - \"a\"\r\n  - \"b\"\r\ndebug: true\r\n");
    expect_list("\xef\xbb\xbf"
                "api-keys: []\n",
                items, 1,
                "\xef\xbb\xbf"
                "api-keys:\n  - \"a\"\n");
}

/* ---- nested scalars ---- */

static void test_nested_scalar(void **state)
{
    (void)state;
    /* plain, quoted, commented, multi-line values replaced in place */
    expect_scalar(
        "remote-management:\n  allow-remote: false\n  secret-key: plain # the key\n"
        "  disable-control-panel: true\n",
        "remote-management", "secret-key", "$2a$10$h",
        "remote-management:\n  allow-remote: false\n  secret-key: \"$2a$10$h\" # the key\n"
        "  disable-control-panel: true\n");
    expect_scalar("remote-management:\n    secret-key: 'it''s'\nport: 1\n", "remote-management",
                  "secret-key", "h", "remote-management:\n    secret-key: \"h\"\nport: 1\n");
    expect_scalar("remote-management:\n  secret-key: \"multi\n    line\"\n  allow-remote: true\n",
                  "remote-management", "secret-key", "h",
                  "remote-management:\n  secret-key: \"h\"\n  allow-remote: true\n");
    expect_scalar("remote-management:\n  secret-key: |\n    block\n    # not a comment\n"
                  "# a comment\nport: 1\n",
                  "remote-management", "secret-key", "h",
                  "remote-management:\n  secret-key: \"h\"\n# a comment\nport: 1\n");
    /* absent key: added at the end of the mapping, before the comments that follow it */
    expect_scalar("remote-management:\n  allow-remote: false\n\n# Auth\nauth-dir: x\n",
                  "remote-management", "secret-key", "h",
                  "remote-management:\n  allow-remote: false\n  secret-key: \"h\"\n\n# Auth\n"
                  "auth-dir: x\n");
    /* empty / null / {} parent becomes a block mapping; an absent parent is appended */
    expect_scalar("remote-management: # mgmt\nport: 1\n", "remote-management", "secret-key", "h",
                  "remote-management: # mgmt\n  secret-key: \"h\"\nport: 1\n");
    expect_scalar("remote-management: {}\n", "remote-management", "secret-key", "h",
                  "remote-management:\n  secret-key: \"h\"\n");
    expect_scalar("remote-management: ~\n", "remote-management", "secret-key", "h",
                  "remote-management:\n  secret-key: \"h\"\n");
    expect_scalar("port: 1", "remote-management", "secret-key", "h",
                  "port: 1\nremote-management:\n  secret-key: \"h\"\n");
    /* other mappings' keys of the same name stay */
    expect_scalar("secret-key: top\nother:\n  secret-key: o\nremote-management:\n  secret-key: s\n",
                  "remote-management", "secret-key", "h",
                  "secret-key: top\nother:\n  secret-key: o\nremote-management:\n"
                  "  secret-key: \"h\"\n");
    /* top-level scalar */
    expect_scalar("host: \"a\" # bind\nport: 1\n", NULL, "host", "127.0.0.1",
                  "host: \"127.0.0.1\" # bind\nport: 1\n");
}

static void test_refused(void **state)
{
    char *out = (char *)(uintptr_t)1;
    const char *const items[] = {"a", NULL};
    const char *t = "remote-management: {secret-key: x}\n";
    (void)state;
    /* a non-empty flow mapping or a sequence parent is not restructured */
    assert_int_equal(
        cp_config_edit_set_scalar(t, strlen(t), "remote-management", "secret-key", "h", &out, NULL),
        CM_ERR_INVAL);
    t = "remote-management:\n  - a\n";
    assert_int_equal(
        cp_config_edit_set_scalar(t, strlen(t), "remote-management", "secret-key", "h", &out, NULL),
        CM_ERR_INVAL);
    t = "remote-management: scalar\n";
    assert_int_equal(
        cp_config_edit_set_scalar(t, strlen(t), "remote-management", "secret-key", "h", &out, NULL),
        CM_ERR_INVAL);
    assert_int_equal(cp_config_edit_set_list("x: 1\n", 5, "api-keys", items, 2, &out, NULL),
                     CM_ERR_INVAL);
    assert_int_equal(cp_config_edit_set_list(NULL, 0, "api-keys", items, 1, &out, NULL),
                     CM_ERR_INVAL);
    assert_int_equal(cp_config_edit_set_list("x: 1\n", 5, "", items, 1, &out, NULL), CM_ERR_INVAL);
    assert_int_equal(cp_config_edit_set_scalar("x: 1\n", 5, NULL, "x", NULL, &out, NULL),
                     CM_ERR_INVAL);
    {
        const char *const bad[] = {"ok", "bad\xff"};
        assert_int_equal(cp_config_edit_set_list("x: 1\n", 5, "api-keys", bad, 2, &out, NULL),
                         CM_ERR_INVAL);
    }
    assert_ptr_equal(out, (char *)(uintptr_t)1); /* untouched */
}

/* the full CLIProxyAPI fixture: only the edited value's bytes change */
static void test_fixture_only_value_changes(void **state)
{
    static const char *const items[] = {"sk-new-0123456789"};
    char path[1024], *text = NULL, *out = NULL, *out2 = NULL;
    const char *root = getenv("CM_TEST_DATA"), *a, *b;
    size_t len = 0, olen = 0, olen2 = 0;
    struct cp_config *orig, *c;
    (void)state;

    assert_non_null(root);
    snprintf(path, sizeof path, "%s/cliproxyd/config/full.yaml", root);
    assert_int_equal(cp_config_edit_read(path, &text, &len), CM_OK);
    assert_int_equal(strlen(text), len);
    assert_int_equal(cp_config_edit_set_list(text, len, "api-keys", items, 1, &out, &olen), CM_OK);
    a = strstr(text, "api-keys:\n");
    b = strstr(text, "\ndebug: true");
    assert_non_null(a);
    assert_non_null(b);
    assert_memory_equal(out, text, (size_t)(a - text));
    {
        static const char want[] = "api-keys:\n  - \"sk-new-0123456789\"\n\ndebug: true";
        assert_memory_equal(out + (a - text), want, sizeof want - 1);
    }
    /* ... and everything after the old list is there byte for byte */
    assert_true(strlen(out) > strlen(b));
    assert_non_null(strstr(out, "\n  - \"sk-new-0123456789\"\n\ndebug: true"));
    assert_string_equal(strstr(out, "\ndebug: true"), b);

    assert_int_equal(cp_config_edit_set_scalar(out, olen, "remote-management", "secret-key",
                                               "$2a$10$abc", &out2, &olen2),
                     CM_OK);
    assert_int_equal(olen2, olen - strlen("mgmt-s3cret-value") + strlen("$2a$10$abc"));
    orig = load(text);
    c = load(out2);
    assert_string_equal(c->remote_management->secret_key, "$2a$10$abc");
    assert_int_equal(c->api_keys_count, 1);
    assert_string_equal(c->api_keys[0], "sk-new-0123456789");
    /* the rest reads back the same */
    assert_int_equal(c->port, orig->port);
    assert_string_equal(c->host, orig->host);
    assert_int_equal(c->remote_management->allow_remote, orig->remote_management->allow_remote);
    assert_int_equal(c->codex_api_key_count, orig->codex_api_key_count);
    assert_int_equal(c->openai_compatibility_count, orig->openai_compatibility_count);
    assert_string_equal(cp_config_base_url(c, CP_PROVIDER_CODEX),
                        cp_config_base_url(orig, CP_PROVIDER_CODEX));
    cp_config_free(orig);
    cp_config_free(c);
    cm_free(text);
    cm_free(out);
    cm_free(out2);
}

/* ---- save ---- */

static void write_file(const char *path, const char *s, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(s, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
    char *t = NULL;
    size_t n = 0;
    assert_int_equal(cp_config_edit_read(path, &t, &n), CM_OK);
    return t;
}

static int refuse_all(const struct cp_config *cfg, void *ud, char *err, size_t errlen)
{
    (void)cfg;
    (*(int *)ud)++;
    return cm_cfg_fail(err, errlen, "api-keys: refused by the caller");
}

static void test_save(void **state)
{
    char path[512], link[512], err[CM_CFG_ERR_MAX], *t;
    const char *orig = "# keep me\nport: 8317\n";
    const char *next = "# keep me\nport: 9000\n";
    struct cp_config *c = NULL;
    enum cp_config_edit_stage stage = CP_CONFIG_EDIT_STAGE_NONE;
    struct stat st;
    int calls = 0;
    (void)state;

    snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
    write_file(path, orig, 0640);
    /* text that does not load: nothing written */
    assert_int_equal(
        cp_config_edit_save(path, "port: \"1\n", 9, NULL, NULL, &c, &stage, err, sizeof err),
        CM_ERR_PARSE);
    assert_int_equal(stage, CP_CONFIG_EDIT_STAGE_LOAD);
    assert_null(c);
    assert_int_equal(
        cp_config_edit_save(path, "port: 0\n", 8, NULL, NULL, &c, &stage, err, sizeof err),
        CM_ERR_INVAL);
    assert_non_null(strstr(err, "port"));
    /* the caller's check refuses: nothing written */
    assert_int_equal(cp_config_edit_save(path, next, strlen(next), refuse_all, &calls, &c, &stage,
                                         err, sizeof err),
                     CM_ERR_INVAL);
    assert_int_equal(calls, 1);
    assert_int_equal(stage, CP_CONFIG_EDIT_STAGE_VERIFY);
    assert_string_equal(err, "api-keys: refused by the caller");
    t = slurp(path);
    assert_string_equal(t, orig);
    cm_free(t);
    /* success: written, mode kept, loaded config handed back, no temporaries left */
    assert_int_equal(
        cp_config_edit_save(path, next, strlen(next), NULL, NULL, &c, &stage, err, sizeof err),
        CM_OK);
    assert_int_equal(stage, CP_CONFIG_EDIT_STAGE_NONE);
    assert_non_null(c);
    assert_int_equal(c->port, 9000);
    cp_config_free(c);
    t = slurp(path);
    assert_string_equal(t, next);
    cm_free(t);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", tmpdir);
        assert_int_equal(system(cmd), 0);
    }
    /* a symlink is followed: the link stays, its target changes */
    snprintf(link, sizeof link, "%s/link.yaml", tmpdir);
    assert_int_equal(symlink("config.yaml", link), 0);
    assert_int_equal(cp_config_edit_save(link, orig, strlen(orig), NULL, NULL, NULL, NULL, NULL, 0),
                     CM_OK);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    t = slurp(path);
    assert_string_equal(t, orig);
    cm_free(t);
    /* read errors */
    snprintf(link, sizeof link, "%s/missing.yaml", tmpdir);
    t = NULL;
    {
        size_t n = 0;
        assert_int_equal(cp_config_edit_read(link, &t, &n), CM_ERR_NOTFOUND);
        assert_int_equal(cp_config_edit_read(NULL, &t, &n), CM_ERR_INVAL);
    }
    assert_null(t);
    /* a directory that cannot hold the temporary file */
    assert_int_equal(cp_config_edit_save("/nonexistent-dir/config.yaml", orig, strlen(orig), NULL,
                                         NULL, NULL, &stage, err, sizeof err),
                     CM_ERR_NOTFOUND);
    assert_int_equal(stage, CP_CONFIG_EDIT_STAGE_WRITE);
}

/* ---- start-up secret hashing ---- */

static void test_hash_secret(void **state)
{
    char path[512], err[CM_CFG_ERR_MAX], *t, *p;
    struct cp_config *c = NULL;
    char hash[CM_CRYPTO_BCRYPT_SIZE];
    (void)state;

    snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
    write_file(path,
               "# management\nremote-management:\n  allow-remote: false # local only\n"
               "  secret-key: \"plain s3cret\" # rewritten at start\n\napi-keys:\n  - k\n",
               0600);
    assert_int_equal(cp_config_load_file(path, &c, err, sizeof err), CM_OK);
    assert_int_equal(cp_config_edit_hash_secret(path, c), CM_OK);
    assert_true(strncmp(c->remote_management->secret_key, "$2a$10$", 7) == 0 ||
                strncmp(c->remote_management->secret_key, "$2b$10$", 7) == 0);
    assert_int_equal(strlen(c->remote_management->secret_key), 60);
    assert_int_equal(cm_crypto_pwhash_verify("plain s3cret", c->remote_management->secret_key),
                     CM_OK);
    snprintf(hash, sizeof hash, "%s", c->remote_management->secret_key);
    t = slurp(path);
    assert_null(strstr(t, "plain s3cret"));
    p = strstr(t, hash);
    assert_non_null(p);
    assert_true(strncmp(t,
                        "# management\nremote-management:\n  allow-remote: false # local only\n"
                        "  secret-key: \"",
                        (size_t)(p - t)) == 0);
    assert_string_equal(p + 60, "\" # rewritten at start\n\napi-keys:\n  - k\n");
    cm_free(t);
    /* already hashed: nothing to do */
    assert_int_equal(cp_config_edit_hash_secret(path, c), CM_OK);
    assert_string_equal(c->remote_management->secret_key, hash);
    cp_config_free(c);
    c = NULL;
    assert_int_equal(cp_config_load_file(path, &c, err, sizeof err), CM_OK);
    assert_string_equal(c->remote_management->secret_key, hash);
    cp_config_free(c);

    /* a file that cannot be rewritten: the hash is used in memory only */
    c = load("remote-management:\n  secret-key: other\n");
    assert_int_equal(cp_config_edit_hash_secret("/nonexistent-dir/config.yaml", c), CM_OK);
    assert_int_equal(cm_crypto_pwhash_verify("other", c->remote_management->secret_key), CM_OK);
    cp_config_free(c);
    /* no secret: nothing */
    c = load("port: 1\n");
    assert_int_equal(cp_config_edit_hash_secret(path, c), CM_OK);
    assert_string_equal(c->remote_management->secret_key, "");
    cp_config_free(c);
    assert_int_equal(cp_config_edit_secret_is_hashed("$2y$10$x"), 1);
    assert_int_equal(cp_config_edit_secret_is_hashed("$argon2id$x"), 1);
    assert_int_equal(cp_config_edit_secret_is_hashed("$1$x"), 0);
    assert_int_equal(cp_config_edit_secret_is_hashed(NULL), 0);
}

/* ---- OOM ---- */

static void test_oom(void **state)
{
    static const char *const items[] = {"a", "b"};
    const char *t = "# c\napi-keys:\n  - x\nremote-management:\n  allow-remote: true\n";
    int done = 0;
    (void)state;

    for (long i = 1; !done && i < 1000; i++) {
        char *out = NULL, *out2 = NULL;
        int rc;
        cm_alloc_fail_at(i);
        rc = cp_config_edit_set_list(t, strlen(t), "api-keys", items, 2, &out, NULL);
        if (!rc)
            rc = cp_config_edit_set_scalar(out, strlen(out), "remote-management", "secret-key", "h",
                                           &out2, NULL);
        cm_alloc_fail_at(0);
        assert_true(rc == CM_OK || rc == CM_ERR_NOMEM);
        done = rc == CM_OK;
        cm_free(out);
        cm_free(out2);
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_list_keeps_comments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact_and_flow_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_and_lookalikes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crlf_and_bom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_scalar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_only_value_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
