/* SPDX-License-Identifier: MIT */
/*
 * test_file.c - cm_file in a mkdtemp directory: whole reads (bounded, regular files only,
 * missing files), atomic replacement (new file 0600, mode and owner kept on request, a
 * symlink's target replaced and the link kept, no temporary file left by a success or a
 * failure, a missing directory), errno mapping, and OOM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/file.h"

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = cm_calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cm-file-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/a.yaml", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    cm_free(f);
    return 0;
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void put(const char *path, const char *s)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(s, fp);
    fclose(fp);
}

static void read_whole_and_bounded(void **state)
{
    struct fx *f = *state;
    char *out = NULL, err[256];
    size_t len = 0;

    put(f->path, "key: value\n");
    assert_int_equal(cm_file_read(f->path, 1024, &out, &len, err, sizeof err), CM_OK);
    assert_int_equal(len, 11);
    assert_string_equal(out, "key: value\n");
    cm_free(out);
    put(f->path, "");
    assert_int_equal(cm_file_read(f->path, 1024, &out, &len, NULL, 0), CM_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    cm_free(out);
    put(f->path, "0123456789");
    out = NULL;
    assert_int_equal(cm_file_read(f->path, 4, &out, &len, err, sizeof err), CM_ERR_LIMIT);
    assert_null(out);
    assert_non_null(strstr(err, "too big"));
    assert_int_equal(cm_file_read(f->dir, 1024, &out, &len, err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "not a regular file"));
    snprintf(f->path, sizeof f->path, "%s/missing", f->dir);
    assert_int_equal(cm_file_read(f->path, 1024, &out, &len, err, sizeof err), CM_ERR_NOTFOUND);
    assert_non_null(strstr(err, f->path));
    assert_int_equal(cm_file_read(NULL, 1024, &out, &len, NULL, 0), CM_ERR_INVAL);
}

static void write_new_file_is_0600(void **state)
{
    struct fx *f = *state;
    struct stat st;
    char *out = NULL;
    size_t len;

    assert_int_equal(cm_file_write_atomic(f->path, "a: 1\n", 5, 0600, 0, NULL, 0), CM_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(cm_file_read(f->path, 64, &out, &len, NULL, 0), CM_OK);
    assert_string_equal(out, "a: 1\n");
    cm_free(out);
    assert_int_equal(entries(f->dir), 1); /* no temporary file left */
}

static void mode_kept_or_forced(void **state)
{
    struct fx *f = *state;
    struct stat st;

    put(f->path, "old");
    assert_int_equal(chmod(f->path, 0640), 0);
    assert_int_equal(cm_file_write_atomic(f->path, "new", 3, 0600, CM_FILE_KEEP_MODE, NULL, 0),
                     CM_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(cm_file_write_atomic(f->path, "newer", 5, 0600, 0, NULL, 0), CM_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 5);
}

static void symlink_target_replaced(void **state)
{
    struct fx *f = *state;
    char link[160], *out = NULL;
    size_t len;
    struct stat st;

    put(f->path, "target");
    snprintf(link, sizeof link, "%s/link.yaml", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    assert_int_equal(cm_file_write_atomic(link, "via link", 8, 0600, CM_FILE_KEEP_MODE, NULL, 0),
                     CM_OK);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* still a link */
    assert_int_equal(cm_file_read(f->path, 64, &out, &len, NULL, 0), CM_OK);
    assert_string_equal(out, "via link");
    cm_free(out);
    assert_int_equal(entries(f->dir), 2);
}

static void failures_leave_nothing(void **state)
{
    struct fx *f = *state;
    char bad[160], err[256] = "";

    snprintf(bad, sizeof bad, "%s/no/such/dir/x.json", f->dir);
    assert_int_equal(cm_file_write_atomic(bad, "x", 1, 0600, 0, err, sizeof err), CM_ERR_NOTFOUND);
    assert_non_null(strstr(err, "temporary file"));
    /* renaming a file over a directory fails after the temporary file was written */
    snprintf(bad, sizeof bad, "%s/sub", f->dir);
    assert_int_equal(mkdir(bad, 0700), 0);
    assert_int_not_equal(cm_file_write_atomic(bad, "x", 1, 0600, 0, err, sizeof err), CM_OK);
    assert_non_null(strstr(err, "rename"));
    assert_int_equal(entries(f->dir), 1); /* only sub/ */
    assert_int_equal(cm_file_write_atomic(NULL, "x", 1, 0600, 0, err, sizeof err), CM_ERR_INVAL);
    snprintf(bad, sizeof bad, "%s/", f->dir); /* a directory name is never replaced */
    assert_int_equal(cm_file_write_atomic(bad, "x", 1, 0600, 0, err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(cm_file_write_atomic(f->path, NULL, 1, 0600, 0, NULL, 0), CM_ERR_INVAL);
}

static void errno_mapping(void **state)
{
    (void)state;
    assert_int_equal(cm_file_errno_rc(ENOENT), CM_ERR_NOTFOUND);
    assert_int_equal(cm_file_errno_rc(ENOTDIR), CM_ERR_NOTFOUND);
    assert_int_equal(cm_file_errno_rc(EACCES), CM_ERR_DENIED);
    assert_int_equal(cm_file_errno_rc(EROFS), CM_ERR_DENIED);
    assert_int_equal(cm_file_errno_rc(ENOMEM), CM_ERR_NOMEM);
    assert_int_equal(cm_file_errno_rc(EIO), CM_ERR_IO);
}

static void oom(void **state)
{
    struct fx *f = *state;
    char *out = NULL;
    size_t len;
    int ok = 0;

    put(f->path, "some content that needs a buffer");
    for (int n = 1; n < 50 && !ok; n++) {
        cm_alloc_fail_at(n);
        int rc = cm_file_read(f->path, 1024, &out, &len, NULL, 0);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            cm_free(out);
            ok = 1;
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
        }
    }
    assert_true(ok);
    ok = 0;
    for (int n = 1; n < 50 && !ok; n++) {
        cm_alloc_fail_at(n);
        int rc = cm_file_write_atomic(f->path, "y", 1, 0600, 0, NULL, 0);
        cm_alloc_fail_at(0);
        ok = rc == CM_OK;
        if (!ok)
            assert_int_equal(rc, CM_ERR_NOMEM);
        assert_int_equal(entries(f->dir), 1);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(read_whole_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(write_new_file_is_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(mode_kept_or_forced, setup, teardown),
        cmocka_unit_test_setup_teardown(symlink_target_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(failures_leave_nothing, setup, teardown),
        cmocka_unit_test(errno_mapping),
        cmocka_unit_test_setup_teardown(oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
