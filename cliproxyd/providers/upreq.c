/* SPDX-License-Identifier: MIT */
/* upreq.c - an upstream call's URL and header lines (see upreq.h). */
#include "providers/upreq.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <string.h>
#include <strings.h>

static char *line(const char *name, const char *value)
{
    struct cm_buf b;
    cm_buf_init(&b, 16 * 1024);
    if (cm_buf_appendf(&b, "%s: %s", name, value)) {
        cm_buf_cleanup(&b);
        return NULL;
    }
    return cm_buf_release(&b, NULL);
}

static void wipe(char *s)
{
    if (s) {
        cm_crypto_memzero(s, strlen(s));
        cm_free(s);
    }
}

int cp_upreq_url(struct cp_upreq *r, const char *base, const char *path)
{
    struct cm_buf b;
    char *u;
    cm_buf_init(&b, 16 * 1024);
    if (cm_buf_appendf(&b, "%s%s", base, path ? path : "")) {
        cm_buf_cleanup(&b);
        return CM_ERR_NOMEM;
    }
    u = cm_buf_release(&b, NULL);
    if (!u)
        return CM_ERR_NOMEM;
    cm_free(r->url);
    r->url = u;
    return CM_OK;
}

int cp_upreq_add(struct cp_upreq *r, const char *name, const char *value)
{
    if (r->n_headers >= CP_UPREQ_MAX_HEADERS)
        return CM_ERR_LIMIT;
    r->headers[r->n_headers] = line(name, value);
    return r->headers[r->n_headers++] ? CM_OK : (r->n_headers--, CM_ERR_NOMEM);
}

static long find(const struct cp_upreq *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++)
        if (strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return (long)i;
    return -1;
}

int cp_upreq_set(struct cp_upreq *r, const char *name, const char *value)
{
    long i = find(r, name);
    char *l;
    if (i < 0)
        return cp_upreq_add(r, name, value);
    if (!(l = line(name, value)))
        return CM_ERR_NOMEM;
    wipe(r->headers[i]);
    r->headers[i] = l;
    return CM_OK;
}

const char *cp_upreq_get(const struct cp_upreq *r, const char *name)
{
    long i = find(r, name);
    const char *v;
    if (i < 0)
        return NULL;
    v = r->headers[i] + strlen(name) + 1;
    while (*v == ' ')
        v++;
    return v;
}

void cp_upreq_cleanup(struct cp_upreq *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        wipe(r->headers[i]);
    cm_free(r->url);
    memset(r, 0, sizeof *r);
}
