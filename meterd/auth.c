/* SPDX-License-Identifier: MIT */
/* auth.c - sessions, keys, access tokens, passwords, roles, IP lists (see auth.h). */
#include "auth.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "store/users.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- sessions ---- */

static int mac_of(const void *secret, size_t secret_len, const char *msg, size_t n, char **b64)
{
    unsigned char mac[CM_CRYPTO_SHA256_LEN];
    int rc;
    cm_crypto_hmac_sha256(secret, secret_len, msg, n, mac);
    rc = cm_crypto_b64_encode(mac, sizeof mac, CM_CRYPTO_B64_URL_NOPAD, b64, NULL);
    cm_crypto_memzero(mac, sizeof mac);
    return rc;
}

int mt_auth_session_make(const void *secret, size_t secret_len, int64_t user_id, int64_t now,
                         char *out, size_t outlen)
{
    char msg[64];
    char *mac = NULL;
    int n, rc;

    if (!secret || !secret_len || user_id <= 0 || !out)
        return CM_ERR_INVAL;
    n = snprintf(msg, sizeof msg, "%" PRId64 ".%" PRId64, user_id, now);
    if (n < 0 || (size_t)n >= sizeof msg)
        return CM_ERR_LIMIT;
    rc = mac_of(secret, secret_len, msg, (size_t)n, &mac);
    if (rc)
        return rc;
    if ((size_t)snprintf(out, outlen, "%s.%s", msg, mac) >= outlen)
        rc = CM_ERR_LIMIT;
    cm_free(mac);
    return rc;
}

/* a decimal int64 over [p, e); 0 on success */
static int parse_i64(const char *p, const char *e, int64_t *v)
{
    char buf[24], *end;
    size_t n = (size_t)(e - p);
    if (n == 0 || n >= sizeof buf || (*p == '-' && n == 1))
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    for (size_t i = buf[0] == '-'; i < n; i++)
        if (!isdigit((unsigned char)buf[i]))
            return -1;
    errno = 0;
    *v = strtoll(buf, &end, 10);
    return errno || *end ? -1 : 0;
}

int mt_auth_session_check(const void *secret, size_t secret_len, const char *v, size_t len,
                          int64_t now, int64_t *user_id)
{
    const char *d1, *d2, *e = v + len;
    int64_t id, at;
    char *mac = NULL;
    int rc;

    if (!secret || !secret_len || !v || !user_id)
        return CM_ERR_INVAL;
    d1 = memchr(v, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', (size_t)(e - d1 - 1)) : NULL;
    if (!d2 || parse_i64(v, d1, &id) || parse_i64(d1 + 1, d2, &at) || id <= 0)
        return CM_ERR_AUTH;
    rc = mac_of(secret, secret_len, v, (size_t)(d2 - v), &mac);
    if (rc)
        return rc;
    rc = cm_crypto_equal(mac, strlen(mac), d2 + 1, (size_t)(e - d2 - 1)) ? CM_OK : CM_ERR_AUTH;
    cm_free(mac);
    if (rc)
        return rc;
    if (at > now + 60)
        return CM_ERR_AUTH;
    if (now - at >= MT_SESSION_MAX_AGE)
        return CM_ERR_TIMEOUT;
    *user_id = id;
    return CM_OK;
}

const char *mt_auth_cookie_get(const char *hdr, const char *name, size_t *len)
{
    size_t nl = name ? strlen(name) : 0;
    const char *p = hdr;

    while (p && *p && nl) {
        const char *end;
        while (*p == ' ' || *p == ';')
            p++;
        end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            *len = (size_t)(end - p - (ptrdiff_t)nl - 1);
            return p + nl + 1;
        }
        p = end;
    }
    return NULL;
}

/* ---- relay keys and access tokens ---- */

int mt_auth_parse_key(const char *v, const char **key, size_t *key_len, int64_t *channel)
{
    const char *dash, *end;

    if (!v || !key || !key_len || !channel)
        return CM_ERR_INVAL;
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "bearer ", 7) == 0)
        v += 7;
    while (*v == ' ')
        v++;
    if (strncmp(v, "sk-", 3) == 0)
        v += 3;
    end = v + strlen(v);
    while (end > v && end[-1] == ' ')
        end--;
    if (end == v)
        return CM_ERR_NOTFOUND;
    *channel = 0;
    dash = memchr(v, '-', (size_t)(end - v));
    if (dash) {
        if (memchr(dash + 1, '-', (size_t)(end - dash - 1)) || parse_i64(dash + 1, end, channel) ||
            *channel <= 0 || dash == v)
            return CM_ERR_INVAL;
        end = dash;
    }
    *key = v;
    *key_len = (size_t)(end - v);
    return CM_OK;
}

int mt_auth_new_key(char out[MT_KEY_LEN + 1])
{
    return cm_crypto_random_key(out, MT_KEY_LEN + 1, MT_KEY_LEN);
}

void mt_auth_mask_key(const char *key, char *out, size_t outlen)
{
    size_t n = key ? strlen(key) : 0;
    if (!out || !outlen)
        return;
    if (n > 8)
        snprintf(out, outlen, "%.4s**********%s", key, key + n - 4);
    else
        snprintf(out, outlen, "%.*s", (int)n, "********");
}

int mt_auth_new_access_token(char out[MT_ACCESS_TOKEN_MAX])
{
    unsigned char raw[24];
    char *b64 = NULL;
    size_t n = 0;
    int rc = cm_crypto_random_bytes(raw, sizeof raw);
    if (!rc)
        rc = cm_crypto_b64_encode(raw, sizeof raw, CM_CRYPTO_B64_STD, &b64, &n);
    if (!rc && n >= MT_ACCESS_TOKEN_MAX)
        rc = CM_ERR_LIMIT;
    if (!rc)
        memcpy(out, b64, n + 1);
    cm_crypto_memzero(raw, sizeof raw);
    if (b64)
        cm_crypto_memzero(b64, n);
    cm_free(b64);
    return rc;
}

const char *mt_auth_access_token(const char *hdr, size_t *len)
{
    size_t n;
    if (!hdr)
        return NULL;
    while (*hdr == ' ')
        hdr++;
    if (strncasecmp(hdr, "bearer ", 7) == 0)
        hdr += 7;
    while (*hdr == ' ')
        hdr++;
    n = strlen(hdr);
    while (n && hdr[n - 1] == ' ')
        n--;
    if (!n)
        return NULL;
    *len = n;
    return hdr;
}

/* ---- passwords and roles ---- */

int mt_auth_hash_password(const char *password, char *out, size_t outlen)
{
    return cm_crypto_bcrypt_hash(password, 10, out, outlen);
}

int mt_auth_check_password(const char *password, const char *stored)
{
    int rc = cm_crypto_pwhash_verify(password, stored);
    return rc == CM_ERR_INVAL ? CM_ERR_AUTH : rc; /* an unusable stored hash matches nothing */
}

int mt_auth_can_manage(int my_role, int target_role)
{
    return my_role == MT_ROLE_ROOT || my_role > target_role;
}

/* ---- IP allow lists ---- */

struct net {
    int family;
    unsigned char addr[16];
    unsigned bits;
};

/* one entry "ip" or "ip/bits" */
static int parse_net(const char *s, size_t n, struct net *out)
{
    char buf[64], *slash;
    long bits = -1;

    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    slash = strchr(buf, '/');
    if (slash) {
        char *end;
        *slash = '\0';
        if (!slash[1])
            return -1;
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (errno || *end || bits < 0)
            return -1;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = bits < 0 ? 32 : (unsigned)bits;
        return bits > 32 ? -1 : 0;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = bits < 0 ? 128 : (unsigned)bits;
        return bits > 128 ? -1 : 0;
    }
    return -1;
}

static int in_net(const struct net *n, const struct net *ip)
{
    unsigned full = n->bits / 8, rest = n->bits % 8;
    if (n->family != ip->family)
        return 0;
    if (memcmp(n->addr, ip->addr, full) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xFFu << (8 - rest));
    return (n->addr[full] & mask) == (ip->addr[full] & mask);
}

/* calls fn on each entry of @p allow (spaces and commas removed, split on newlines) */
static int each_entry(const char *allow, int (*fn)(const char *s, size_t n, void *ud), void *ud)
{
    char entry[64];
    size_t k = 0;
    int any = 0;
    for (const char *p = allow;; p++) {
        if (!*p || *p == '\n') {
            if (k) {
                any = 1;
                if (fn(entry, k, ud))
                    return 1;
            }
            k = 0;
            if (!*p)
                break;
        } else if (*p != ' ' && *p != ',' && *p != '\r' && *p != '\t') {
            if (k < sizeof entry - 1)
                entry[k] = *p;
            k++;
        }
    }
    return any ? 0 : -1;
}

struct match {
    struct net ip;
    int hit;
};

static int match_one(const char *s, size_t n, void *ud)
{
    struct match *m = ud;
    struct net net;
    if (n < 64 && parse_net(s, n, &net) == 0 && in_net(&net, &m->ip))
        m->hit = 1;
    return m->hit;
}

static int count_one(const char *s, size_t n, void *ud)
{
    (void)s;
    (void)n;
    (void)ud;
    return 0;
}

int mt_auth_ip_allowed(const char *allow, const char *ip)
{
    struct match m = {0};
    if (!allow || each_entry(allow, count_one, NULL) < 0)
        return 1; /* no list: everyone */
    if (!ip || parse_net(ip, strlen(ip), &m.ip) != 0 ||
        m.ip.bits != (m.ip.family == AF_INET ? 32u : 128u))
        return 0;
    each_entry(allow, match_one, &m);
    return m.hit;
}

struct check {
    char *err;
    size_t errlen;
};

static int check_one(const char *s, size_t n, void *ud)
{
    struct check *c = ud;
    struct net net;
    if (n >= 64 || parse_net(s, n, &net) != 0) {
        if (c->err && c->errlen)
            snprintf(c->err, c->errlen, "allow_ips: \"%.*s\" is not an IP address or CIDR",
                     (int)(n > 60 ? 60 : n), s);
        return 1;
    }
    return 0;
}

int mt_auth_ip_list_valid(const char *allow, char *err, size_t errlen)
{
    struct check c = {err, errlen};
    if (!allow)
        return 1;
    return each_entry(allow, check_one, &c) != 1;
}
