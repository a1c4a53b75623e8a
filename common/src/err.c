/* SPDX-License-Identifier: MIT */
/* err.c - names and HTTP statuses of enum cm_err: one table, nothing else. */
#include "cm/err.h"

static const struct {
    const char *name;
    unsigned http;
} table[CM_ERR__COUNT] = {
    [CM_OK] = {"ok", 200},
    [CM_ERR_NOMEM] = {"out of memory", 503},
    [CM_ERR_INVAL] = {"invalid argument", 400},
    [CM_ERR_PARSE] = {"parse error", 400},
    [CM_ERR_LIMIT] = {"limit exceeded", 413},
    [CM_ERR_NOTFOUND] = {"not found", 404},
    [CM_ERR_EXISTS] = {"already exists", 409},
    [CM_ERR_IO] = {"i/o error", 500},
    [CM_ERR_TIMEOUT] = {"timeout", 504},
    [CM_ERR_CLOSED] = {"closed", 499},
    [CM_ERR_AGAIN] = {"try again", 503},
    [CM_ERR_UPSTREAM] = {"upstream error", 502},
    [CM_ERR_AUTH] = {"unauthorized", 401},
    [CM_ERR_DENIED] = {"forbidden", 403},
    [CM_ERR_INTERNAL] = {"internal error", 500},
};

const char *cm_err_str(int rc)
{
    if (rc < 0 || rc >= CM_ERR__COUNT)
        return "unknown error";
    return table[rc].name;
}

unsigned cm_err_http_status(int rc)
{
    if (rc < 0 || rc >= CM_ERR__COUNT)
        return 500;
    return table[rc].http;
}
