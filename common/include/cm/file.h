/* SPDX-License-Identifier: MIT */
/*
 * file.h - whole files: read one (bounded, regular files only) and replace one atomically
 * (a temporary file in the same directory, fsync, rename, fsync of the directory), so a
 * reader or a crash sees the old content or the new, never a mix. Used for config.yaml
 * and the auth files. Blocking I/O: never on a request thread's hot path.
 */
#ifndef CM_FILE_H
#define CM_FILE_H

#include <stddef.h>

/** The enum cm_err for an errno value (ENOENT -> NOTFOUND, EACCES -> DENIED, ...). */
int cm_file_errno_rc(int e);

/**
 * Reads the regular file @p path whole, at most @p max bytes, into *@p out (NUL-terminated,
 * caller frees with cm_free(); wipe it first if it holds secrets) and its length into
 * *@p len. CM_OK; CM_ERR_NOTFOUND; CM_ERR_DENIED; CM_ERR_INVAL (not a regular file, NULL
 * arguments); CM_ERR_LIMIT (larger than @p max); CM_ERR_IO; CM_ERR_NOMEM. On failure a
 * sentence naming the path goes to @p err (may be NULL) and nothing to *@p out.
 */
int cm_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

#define CM_FILE_KEEP_MODE 1u /* an existing target keeps its mode and owner (else @p mode) */
#define CM_FILE_IN_PLACE                                                                           \
    2u /* a refused rename (EBUSY/EXDEV: a bind mount) rewrites the file                           \
          itself instead (not atomic; logged) */

/**
 * Replaces @p path (symlinks followed: the link's target is replaced) with @p len bytes of
 * @p data: a temporary ".<name>.tmp-XXXXXX" beside it with mode @p mode (see
 * CM_FILE_KEEP_MODE), written, fsynced, renamed over the target; then the directory is
 * fsynced (a failure there is only logged: the new content is in place). The temporary
 * file never outlives a failure. CM_OK; CM_ERR_INVAL; CM_ERR_NOTFOUND (no directory);
 * CM_ERR_DENIED; CM_ERR_IO; CM_ERR_NOMEM; the reason (no file content) in @p err and a
 * WARN log line.
 */
int cm_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         unsigned flags, char *err, size_t errlen);

#endif
