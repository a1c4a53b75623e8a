/* SPDX-License-Identifier: MIT */
/* buf.c - bounded growable byte buffer; growth doubles, capped at max + 1 for the NUL. */
#include "cm/buf.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <stdio.h>
#include <string.h>

void cm_buf_init(struct cm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void cm_buf_cleanup(struct cm_buf *b)
{
    cm_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cm_buf_reset(struct cm_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int ensure(struct cm_buf *b, size_t extra)
{
    size_t need, ncap;
    char *p;

    if (extra > b->max || b->len > b->max - extra)
        return CM_ERR_LIMIT;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return CM_OK;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    p = cm_realloc(b->data, ncap);
    if (!p)
        return CM_ERR_NOMEM;
    b->data = p;
    b->cap = ncap;
    b->data[b->len] = '\0'; /* keeps the "always NUL-terminated" promise after a reserve */
    return CM_OK;
}

int cm_buf_reserve(struct cm_buf *b, size_t n)
{
    return ensure(b, n);
}

int cm_buf_append(struct cm_buf *b, const void *p, size_t n)
{
    int rc = ensure(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CM_OK;
}

int cm_buf_append_str(struct cm_buf *b, const char *s)
{
    return cm_buf_append(b, s, strlen(s));
}

int cm_buf_vappendf(struct cm_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return CM_ERR_INVAL;
    rc = ensure(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CM_OK;
}

int cm_buf_appendf(struct cm_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = cm_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void cm_buf_consume(struct cm_buf *b, size_t n)
{
    if (n >= b->len) {
        cm_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *cm_buf_release(struct cm_buf *b, size_t *len_out)
{
    char *p;
    if (!b->data && ensure(b, 0))
        return NULL;
    if (!b->data)
        return NULL;
    p = b->data;
    p[b->len] = '\0';
    if (len_out)
        *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
