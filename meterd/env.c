/* SPDX-License-Identifier: MIT */
/* env.c - the .env file (see env.h). */
#include "env.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/file.h"
#include "cm/log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* one line [s, e): 0 applied or skipped, -1 malformed */
static int apply_line(char *s, char *e)
{
    char *eq, *k, *v, *ke, *ve;

    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (s == e || *s == '#')
        return 0;
    *e = '\0';
    if (strncmp(s, "export ", 7) == 0)
        s += 7;
    eq = strchr(s, '=');
    if (!eq)
        return -1;
    k = s;
    ke = eq;
    while (ke > k && isspace((unsigned char)ke[-1]))
        ke--;
    if (ke == k)
        return -1;
    for (char *p = k; p < ke; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return -1;
    *ke = '\0';
    v = eq + 1;
    while (*v && isspace((unsigned char)*v))
        v++;
    ve = v + strlen(v);
    if (*v == '"' || *v == '\'') {
        char q = *v++;
        char *close = strrchr(v, q);
        if (!close)
            return -1;
        ve = close;
    } else {
        char *hash = strstr(v, " #"); /* an inline comment after an unquoted value */
        if (hash)
            ve = hash;
        while (ve > v && isspace((unsigned char)ve[-1]))
            ve--;
    }
    *ve = '\0';
    if (getenv(k))
        return 0; /* the real environment wins */
    return setenv(k, v, 0) == 0 ? 0 : -1;
}

int mt_env_load(const char *path)
{
    char *text = NULL, err[256];
    size_t len = 0;
    int rc = cm_file_read(path, 1u << 20, &text, &len, err, sizeof err), line = 0;

    if (rc == CM_ERR_NOTFOUND)
        return CM_OK;
    if (rc) {
        cm_log_warn(NULL, "%s", err);
        return rc;
    }
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *e = nl ? nl : text + len;
        line++;
        if (apply_line(p, e) != 0)
            cm_log_warn(NULL, "%s: line %d is not KEY=VALUE; skipped", path, line);
        p = nl ? nl + 1 : text + len;
    }
    memset(text, 0, len); /* may hold secrets */
    cm_free(text);
    return CM_OK;
}
