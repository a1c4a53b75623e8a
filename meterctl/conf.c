/* SPDX-License-Identifier: MIT */
/*
 * conf.c - meterctl's configuration layers (see conf.h): defaults < file < environment <
 * flags, each value tagged with its source, then checked once at the end.
 */
#include "conf.h"

#include "args.h"
#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const KEY_NAMES[MC_CONF__COUNT] = {"url", "token", "user", "cliproxy_url",
                                                      "cliproxy_key"};
static const char *const ENV_NAMES[MC_CONF__COUNT] = {"METERD_URL", "METERD_TOKEN", "METERD_USER",
                                                      "CLIPROXY_URL", "CLIPROXY_KEY"};
static const char *const FLAG_NAMES[MC_CONF__COUNT] = {"--url", "--access-token", "--user",
                                                       "--cliproxy-url", "--cliproxy-key"};

static int is_secret(int k)
{
    return k == MC_CONF_TOKEN || k == MC_CONF_CLIPROXY_KEY;
}

void mc_conf_init(struct mc_conf *c)
{
    memset(c, 0, sizeof *c);
}

static void drop(struct mc_conf *c, int k)
{
    if (c->val[k]) {
        if (is_secret(k))
            cm_crypto_memzero(c->val[k], strlen(c->val[k]));
        cm_free(c->val[k]);
        c->val[k] = NULL;
    }
}

void mc_conf_cleanup(struct mc_conf *c)
{
    for (int k = 0; k < MC_CONF__COUNT; k++)
        drop(c, k);
    memset(c, 0, sizeof *c);
}

const char *mc_conf_key_name(enum mc_conf_key k)
{
    return (unsigned)k < MC_CONF__COUNT ? KEY_NAMES[k] : "?";
}

const char *mc_conf_env_name(enum mc_conf_key k)
{
    return (unsigned)k < MC_CONF__COUNT ? ENV_NAMES[k] : "?";
}

/* sets key @p k to @p n bytes at @p v from source @p src; empty values are ignored */
static int set(struct mc_conf *c, int k, const char *v, size_t n, const char *src)
{
    char *copy;

    if (!n)
        return CM_OK;
    copy = cm_strndup(v, n);
    if (!copy)
        return CM_ERR_NOMEM;
    drop(c, k);
    c->val[k] = copy;
    snprintf(c->src[k], sizeof c->src[k], "%s", src);
    return CM_OK;
}

static int key_of(const char *k, size_t n)
{
    for (int i = 0; i < MC_CONF__COUNT; i++) {
        if ((strlen(KEY_NAMES[i]) == n && strncasecmp(KEY_NAMES[i], k, n) == 0) ||
            (strlen(ENV_NAMES[i]) == n && strncasecmp(ENV_NAMES[i], k, n) == 0))
            return i;
    }
    if (n == 12 && strncasecmp(k, "access_token", n) == 0)
        return MC_CONF_TOKEN;
    return -1;
}

static int load_file(struct mc_conf *c, const char *text, size_t len, const char *name, char *err,
                     size_t errlen, char *warn, size_t warnlen)
{
    size_t i = 0;
    int line = 0, rc;

    while (i < len) {
        const char *b = text + i, *e, *eq, *kb, *ke, *vb, *ve;
        char src[96];
        int k;

        while (i < len && text[i] != '\n')
            i++;
        e = text + i;
        if (i < len)
            i++;
        line++;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (b == e || *b == '#')
            continue;
        eq = memchr(b, '=', (size_t)(e - b));
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key=value", name, line);
            return CM_ERR_PARSE;
        }
        kb = b;
        ke = eq;
        while (ke > kb && isspace((unsigned char)ke[-1]))
            ke--;
        vb = eq + 1;
        ve = e;
        while (vb < ve && isspace((unsigned char)*vb))
            vb++;
        if (ve - vb >= 2 && (*vb == '"' || *vb == '\'') && ve[-1] == *vb) {
            vb++;
            ve--;
        }
        k = key_of(kb, (size_t)(ke - kb));
        if (k < 0) {
            if (warn && warnlen && !warn[0])
                snprintf(warn, warnlen,
                         "%s:%d: unknown key \"%.*s\" (known: url, token, user, "
                         "cliproxy_url, cliproxy_key)",
                         name, line, (int)(ke - kb) > 40 ? 40 : (int)(ke - kb), kb);
            continue;
        }
        snprintf(src, sizeof src, "%s:%d", name, line);
        if ((rc = set(c, k, vb, (size_t)(ve - vb), src)) != CM_OK)
            return rc;
    }
    return CM_OK;
}

int mc_conf_resolve(struct mc_conf *c, const char *file, size_t len, const char *file_name,
                    mc_getenv_fn env, void *env_ud, const struct mc_conf_flags *flags, char *err,
                    size_t errlen, char *warn, size_t warnlen)
{
    int rc = CM_OK;
    char *u;
    size_t n;

    if (errlen)
        err[0] = '\0';
    if (warn && warnlen)
        warn[0] = '\0';
    rc = set(c, MC_CONF_URL, MC_CONF_DEFAULT_URL, strlen(MC_CONF_DEFAULT_URL), "default");
    if (!rc)
        rc = set(c, MC_CONF_USER, "1", 1, "default");
    if (!rc && file)
        rc = load_file(c, file, len, file_name ? file_name : "config", err, errlen, warn, warnlen);
    for (int k = 0; !rc && env && k < MC_CONF__COUNT; k++) {
        const char *v = env(ENV_NAMES[k], env_ud);
        if (v)
            rc = set(c, k, v, strlen(v), ENV_NAMES[k]);
    }
    for (int k = 0; !rc && flags && k < MC_CONF__COUNT; k++)
        if (flags->val[k])
            rc = set(c, k, flags->val[k], strlen(flags->val[k]), FLAG_NAMES[k]);
    if (rc)
        goto out;

    for (size_t i = 0; i < 2; i++) {
        int k = i ? MC_CONF_CLIPROXY_URL : MC_CONF_URL;
        u = c->val[k];
        if (!u)
            continue;
        if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0) {
            snprintf(err, errlen, "%s (from %s) \"%.200s\" is not an http:// or https:// URL",
                     KEY_NAMES[k], c->src[k], u);
            rc = CM_ERR_INVAL;
            goto out;
        }
        n = strlen(u);
        while (n > 8 && u[n - 1] == '/')
            u[--n] = '\0';
    }
    if (mc_parse_i64(c->val[MC_CONF_USER], 1, INT64_C(9007199254740991), &c->user)) {
        snprintf(err, errlen, "user (from %s) \"%.40s\" is not a user id (a positive integer)",
                 c->src[MC_CONF_USER], c->val[MC_CONF_USER]);
        rc = CM_ERR_INVAL;
    }
out:
    return rc;
}

int mc_conf_default_path(mc_getenv_fn env, void *env_ud, char *buf, size_t cap)
{
    const char *x = env ? env("XDG_CONFIG_HOME", env_ud) : NULL;
    const char *h = env ? env("HOME", env_ud) : NULL;
    int n;

    if (x && *x)
        n = snprintf(buf, cap, "%s/meterctl", x);
    else if (h && *h)
        n = snprintf(buf, cap, "%s/.config/meterctl", h);
    else
        return CM_ERR_NOTFOUND;
    return n < 0 || (size_t)n >= cap ? CM_ERR_LIMIT : CM_OK;
}

int mc_conf_read_file(const char *path, char **out, size_t *len, int *insecure, char *err,
                      size_t errlen)
{
    char sub[MC_CONF_PATH_MAX];
    const char *p = path;
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1, rc = CM_OK;

    if (insecure)
        *insecure = 0;
    if (stat(p, &st) != 0) {
        rc = errno == ENOENT ? CM_ERR_NOTFOUND : CM_ERR_IO;
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        if ((size_t)snprintf(sub, sizeof sub, "%s/config", path) >= sizeof sub) {
            snprintf(err, errlen, "config path too long");
            rc = CM_ERR_LIMIT;
            goto out;
        }
        p = sub;
    }
    fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = errno == ENOENT ? CM_ERR_NOTFOUND : CM_ERR_IO;
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MC_CONF_FILE_MAX) {
        snprintf(err, errlen, "%s: not a regular file of at most %d bytes", p, MC_CONF_FILE_MAX);
        rc = CM_ERR_LIMIT;
        goto out;
    }
    if (insecure)
        *insecure = (st.st_mode & 077) != 0;
    buf = cm_malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s: %s", p, r < 0 ? strerror(errno) : "short read");
            rc = CM_ERR_IO;
            goto out;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    if (buf) {
        cm_crypto_memzero(buf, n);
        cm_free(buf);
    }
    return rc;
}
