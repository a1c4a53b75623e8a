/* SPDX-License-Identifier: MIT */
/* file.c - whole-file read and atomic replace (see file.h). */
#include "cm/file.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cm_file_errno_rc(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return CM_ERR_NOTFOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return CM_ERR_DENIED;
    case ENOMEM:
        return CM_ERR_NOMEM;
    default:
        return CM_ERR_IO;
    }
}

static void put(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int cm_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
    struct cm_buf b;
    struct stat st;
    char chunk[8192];
    int fd = -1, rc = CM_OK;

    cm_buf_init(&b, max);
    if (!path || !out || !len) {
        put(err, errlen, "no file name given");
        rc = CM_ERR_INVAL;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        put(err, errlen, "%s: cannot open: %s", path, strerror(e));
        rc = cm_file_errno_rc(e);
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        put(err, errlen, "%s: not a regular file", path);
        rc = CM_ERR_INVAL;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            put(err, errlen, "%s: read: %s", path, strerror(errno));
            rc = CM_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        if ((rc = cm_buf_append(&b, chunk, (size_t)r))) {
            put(err, errlen, "%s: %s", path, rc == CM_ERR_LIMIT ? "file too big" : "out of memory");
            goto out;
        }
    }
    *out = cm_buf_release(&b, len);
    if (!*out)
        rc = CM_ERR_NOMEM;
out:
    if (fd >= 0)
        close(fd);
    if (b.data)
        memset(b.data, 0, b.len); /* may hold secrets */
    cm_buf_cleanup(&b);
    return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

static int fail(const char *target, const char *what, char *err, size_t errlen)
{
    int e = errno;
    cm_log_warn(NULL, "file %s: %s: %s", target, what, strerror(e));
    put(err, errlen, "%s: cannot %s: %s", target, what, strerror(e));
    return cm_file_errno_rc(e);
}

/* the bind-mount case: rewrite the file itself (not atomic; there is no other way) */
static int write_in_place(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC), rc = CM_OK;
    cm_log_warn(NULL, "file %s: cannot be replaced (a mount point?); rewriting it in place", path);
    if (fd < 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
        rc = fail(path, "rewrite in place", err, errlen);
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = fail(path, "close", err, errlen);
    return rc;
}

int cm_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         unsigned flags, char *err, size_t errlen)
{
    struct cm_buf tmpl, dir;
    char real[PATH_MAX];
    const char *target = path, *slash, *base;
    struct stat st;
    bool have_owner = false, created = false, renamed = false;
    int fd = -1, dfd = -1, rc = CM_OK;

    cm_buf_init(&tmpl, PATH_MAX + 64);
    cm_buf_init(&dir, PATH_MAX);
    if (!path || !*path || path[strlen(path) - 1] == '/' || (!data && len)) {
        put(err, errlen, "no file name or data");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (realpath(path, real))
        target = real;
    if ((flags & CM_FILE_KEEP_MODE) && stat(target, &st) == 0) {
        mode = st.st_mode & 07777;
        have_owner = true;
    }
    slash = strrchr(target, '/');
    base = slash ? slash + 1 : target;
    if (!*base) {
        put(err, errlen, "%s: not a file name", path);
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (slash == target)
        rc = cm_buf_append_str(&dir, "/");
    else if (slash)
        rc = cm_buf_append(&dir, target, (size_t)(slash - target));
    else
        rc = cm_buf_append_str(&dir, ".");
    if (!rc)
        rc = cm_buf_append(&tmpl, target, (size_t)(base - target));
    if (!rc)
        rc = cm_buf_appendf(&tmpl, ".%s.tmp-XXXXXX", base);
    if (rc)
        goto out;
    fd = mkostemp(tmpl.data, O_CLOEXEC);
    if (fd < 0) {
        rc = fail(target, "create a temporary file", err, errlen);
        goto out;
    }
    created = true;
    if (fchmod(fd, (mode_t)mode) != 0) {
        rc = fail(target, "fchmod", err, errlen);
        goto out;
    }
    if (have_owner && fchown(fd, st.st_uid, st.st_gid) != 0)
        cm_log_debug(NULL, "file %s: keeping the owner: %s", target, strerror(errno));
    if (write_all(fd, data, len) != 0) {
        rc = fail(target, "write", err, errlen);
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = fail(target, "fsync", err, errlen);
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        rc = fail(target, "close", err, errlen);
        goto out;
    }
    if (rename(tmpl.data, target) != 0) {
        if (!(flags & CM_FILE_IN_PLACE) || (errno != EBUSY && errno != EXDEV)) {
            rc = fail(target, "rename", err, errlen);
            goto out;
        }
        rc = write_in_place(target, data, len, err, errlen);
        goto out;
    }
    renamed = true;
    /* the rename is durable only once the directory is synced; the new content is in
     * place either way, so a failure here is reported but nothing is undone */
    dfd = open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        cm_log_warn(NULL, "file %s: fsync of directory %s: %s", target, dir.data, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (created && !renamed)
        unlink(tmpl.data);
    cm_buf_cleanup(&tmpl);
    cm_buf_cleanup(&dir);
    return rc;
}
