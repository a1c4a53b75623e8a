/* SPDX-License-Identifier: MIT */
/*
 * err.h - the one error code type of libcommon and both daemons.
 *
 * 0 is success, positive values are errors. cm_err_str() names a code for logs;
 * cm_err_http_status() is the single table that maps a code to the HTTP status a
 * client sees when that error ends a request. Pure, thread-safe.
 */
#ifndef CM_ERR_H
#define CM_ERR_H

enum cm_err {
    CM_OK = 0,
    CM_ERR_NOMEM,    /* allocation failed */
    CM_ERR_INVAL,    /* bad argument or bad input value */
    CM_ERR_PARSE,    /* input could not be parsed (JSON, YAML, SSE, HTTP) */
    CM_ERR_LIMIT,    /* a size / depth / count cap was hit */
    CM_ERR_NOTFOUND, /* the thing asked for does not exist */
    CM_ERR_EXISTS,   /* the thing to create already exists */
    CM_ERR_IO,       /* a system call failed (see the log line for errno) */
    CM_ERR_TIMEOUT,  /* a deadline passed */
    CM_ERR_CLOSED,   /* the peer went away or the object was shut down */
    CM_ERR_AGAIN,    /* not now: would block, retry when woken */
    CM_ERR_UPSTREAM, /* the upstream failed (connect, reset, bad answer) */
    CM_ERR_AUTH,     /* authentication failed */
    CM_ERR_DENIED,   /* authenticated but not allowed */
    CM_ERR_INTERNAL, /* a bug: an invariant did not hold */
    CM_ERR__COUNT
};

/** Short constant name of @p rc ("ok", "out of memory", ...). Never NULL; static storage. */
const char *cm_err_str(int rc);

/** HTTP status for a request that ends with @p rc (e.g. LIMIT -> 413, TIMEOUT -> 504). */
unsigned cm_err_http_status(int rc);

#endif
