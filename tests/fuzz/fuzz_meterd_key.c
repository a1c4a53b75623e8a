/* SPDX-License-Identifier: MIT */
/*
 * fuzz_meterd_key.c - meterd's credential and header parsing (meterd/auth.h), on what a
 * client puts in Authorization / x-api-key / Cookie / a token's allow_ips:
 * mt_auth_parse_key (the relay's "Bearer sk-KEY-CHANNEL"), mt_auth_access_token,
 * mt_auth_cookie_get + mt_auth_session_check (the session cookie), mt_auth_mask_key,
 * mt_auth_ip_list_valid / mt_auth_ip_allowed (allow list and client IP split at the first
 * '|'). Headers are C strings: the input is cut at its first NUL as the HTTP server does.
 * Invariants: a parsed key lies inside the header and holds no '-' (that is the channel
 * separator), the channel is >= 0; a cookie that is not ours never checks (no forgery),
 * ours always does; a masked key of more than 8 characters shows only its first and last 4.
 */
#include "fuzz_util.h"

#include "auth.h"
#include "cm/alloc.h"
#include "cm/err.h"

#include <string.h>

static const char SECRET[] = "fuzz-session-secret-0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, *bar;
    size_t n;
    const char *key = NULL, *v;
    size_t klen = 0, vlen = 0;
    int64_t ch = -1, uid = 0;
    char masked[MT_MASKED_KEY_MAX];
    int rc;

    fz_init();
    s = cm_malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    n = strlen(s);

    rc = mt_auth_parse_key(s, &key, &klen, &ch);
    if (rc == CM_OK) {
        FZ_ASSERT(key >= s && key + klen <= s + n);
        FZ_ASSERT(klen == 0 || memchr(key, '-', klen) == NULL);
        FZ_ASSERT(ch >= 0);
    } else {
        FZ_ASSERT(rc == CM_ERR_NOTFOUND || rc == CM_ERR_INVAL);
    }

    v = mt_auth_access_token(s, &vlen);
    if (v)
        FZ_ASSERT(v >= s && v + vlen <= s + n && vlen > 0);

    v = mt_auth_cookie_get(s, "session", &vlen);
    if (v) {
        FZ_ASSERT(v >= s && v + vlen <= s + n);
        rc = mt_auth_session_check(SECRET, sizeof SECRET - 1, v, vlen, 1700000000, &uid);
        /* the input never holds a cookie signed with SECRET: a success is a forgery */
        FZ_ASSERT(rc != CM_OK);
    }
    {
        /* our own cookie for a user id taken from the input checks, and to that id */
        char cookie[MT_SESSION_COOKIE_MAX];
        int64_t id = 1 + (int64_t)(n * 2654435761u % 1000000), got = 0;
        FZ_ASSERT(mt_auth_session_make(SECRET, sizeof SECRET - 1, id, 1700000000, cookie,
                                       sizeof cookie) == CM_OK);
        FZ_ASSERT(mt_auth_session_check(SECRET, sizeof SECRET - 1, cookie, strlen(cookie),
                                        1700000100, &got) == CM_OK);
        FZ_ASSERT(got == id);
    }

    mt_auth_mask_key(s, masked, sizeof masked);
    FZ_ASSERT(memchr(masked, '\0', sizeof masked) != NULL);
    if (n > 8) { /* first 4, ten '*', last 4: the middle of the key never shows */
        FZ_ASSERT(strlen(masked) == 18 && strspn(masked + 4, "*") >= 10);
        FZ_ASSERT(memcmp(masked, s, 4) == 0 && memcmp(masked + 14, s + n - 4, 4) == 0);
    } else {
        FZ_ASSERT(strlen(masked) == n && strspn(masked, "*") == n);
    }

    bar = strchr(s, '|');
    if (bar) {
        char err[256] = "";
        *bar = '\0';
        (void)mt_auth_ip_list_valid(s, err, sizeof err);
        FZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
        rc = mt_auth_ip_allowed(s, bar + 1);
        FZ_ASSERT(rc == 0 || rc == 1);
        if (*s == '\0')
            FZ_ASSERT(rc == 1); /* an empty list allows everyone */
    }
    cm_free(s);
    return 0;
}
