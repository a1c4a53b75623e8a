/* SPDX-License-Identifier: MIT */
/*
 * buf.h - bounded growable byte buffer (after curl's dynbuf).
 *
 * A caller-owned struct: cm_buf_init() sets the cap, appends grow the storage up to
 * that cap and fail with CM_ERR_LIMIT past it (the buffer keeps what it had). The data
 * is always NUL-terminated (the NUL is not counted in len), so text can be used as a C
 * string. Not thread-safe: one owner at a time.
 */
#ifndef CM_BUF_H
#define CM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cm_buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* the most len may reach */
};

/** Empty buffer that will hold at most @p max bytes. Allocates nothing. */
void cm_buf_init(struct cm_buf *b, size_t max);
/** Frees the storage (not the struct); the buffer is empty and reusable afterwards. */
void cm_buf_cleanup(struct cm_buf *b);
/** Sets len to 0, keeps the storage. */
void cm_buf_reset(struct cm_buf *b);
/** Makes room for @p n more bytes without appending (up to max). CM_ERR_LIMIT, CM_ERR_NOMEM. */
int cm_buf_reserve(struct cm_buf *b, size_t n);
/** Appends @p n bytes. CM_ERR_LIMIT past max, CM_ERR_NOMEM; on error nothing changes. */
int cm_buf_append(struct cm_buf *b, const void *p, size_t n);
/** Appends a C string. */
int cm_buf_append_str(struct cm_buf *b, const char *s);
/** printf-style append; same errors as cm_buf_append(). */
int cm_buf_appendf(struct cm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cm_buf_vappendf(struct cm_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/** Removes the first @p n bytes (all if n >= len). */
void cm_buf_consume(struct cm_buf *b, size_t n);
/**
 * Hands the storage to the caller (caller frees with cm_free()) and empties the buffer.
 * Returns an empty allocated string if nothing was appended; NULL only on OOM.
 * @p len_out, if not NULL, gets the length.
 */
char *cm_buf_release(struct cm_buf *b, size_t *len_out);

#endif
