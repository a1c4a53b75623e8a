/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c - meterd's auth helpers: session cookies (round trip, forged, expired, from
 * the future, malformed), the Cookie header, relay key parsing (Bearer, sk-, channel
 * pinning, junk), key generation and masking, access tokens, bcrypt passwords (and a
 * NewAPI-written hash), role rules, IP allow lists (IPv4/IPv6, CIDR, junk).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "store/users.h"

static const char SECRET[] = "session-secret-for-tests";
#define NOW INT64_C(1795300000)

static void session_round_trip(void **state)
{
    char c[MT_SESSION_COOKIE_MAX];
    int64_t id = 0;
    (void)state;
    assert_int_equal(mt_auth_session_make(SECRET, sizeof SECRET - 1, 42, NOW, c, sizeof c), CM_OK);
    assert_int_equal(mt_auth_session_check(SECRET, sizeof SECRET - 1, c, strlen(c), NOW + 10, &id),
                     CM_OK);
    assert_int_equal(id, 42);
    /* another secret, a changed id, a flipped signature byte */
    assert_int_equal(mt_auth_session_check("other", 5, c, strlen(c), NOW, &id), CM_ERR_AUTH);
    c[0] = '7';
    assert_int_equal(mt_auth_session_check(SECRET, sizeof SECRET - 1, c, strlen(c), NOW, &id),
                     CM_ERR_AUTH);
    assert_int_equal(mt_auth_session_make(SECRET, sizeof SECRET - 1, 42, NOW, c, sizeof c), CM_OK);
    c[strlen(c) - 1] ^= 1;
    assert_int_equal(mt_auth_session_check(SECRET, sizeof SECRET - 1, c, strlen(c), NOW, &id),
                     CM_ERR_AUTH);
    /* expiry and the future */
    assert_int_equal(mt_auth_session_make(SECRET, sizeof SECRET - 1, 7, NOW, c, sizeof c), CM_OK);
    assert_int_equal(mt_auth_session_check(SECRET, sizeof SECRET - 1, c, strlen(c),
                                           NOW + MT_SESSION_MAX_AGE, &id),
                     CM_ERR_TIMEOUT);
    assert_int_equal(
        mt_auth_session_check(SECRET, sizeof SECRET - 1, c, strlen(c), NOW - 3600, &id),
        CM_ERR_AUTH);
    /* malformed */
    const char *bad[] = {"", "42", "42.1", "x.1.abc", "42..abc", "-1.5.abc", "42.5.", "0.5.abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            mt_auth_session_check(SECRET, sizeof SECRET - 1, bad[i], strlen(bad[i]), NOW, &id),
            CM_ERR_AUTH);
    assert_int_equal(mt_auth_session_make(SECRET, sizeof SECRET - 1, 0, NOW, c, sizeof c),
                     CM_ERR_INVAL);
    assert_int_equal(mt_auth_session_make(SECRET, sizeof SECRET - 1, 1, NOW, c, 8), CM_ERR_LIMIT);
}

static void cookie_header(void **state)
{
    size_t n = 0;
    const char *v;
    (void)state;
    v = mt_auth_cookie_get("a=1; session=abc.def; z=2", "session", &n);
    assert_non_null(v);
    assert_int_equal(n, 7);
    assert_memory_equal(v, "abc.def", 7);
    v = mt_auth_cookie_get("mysession=x; session=y", "session", &n);
    assert_non_null(v);
    assert_memory_equal(v, "y", 1);
    assert_null(mt_auth_cookie_get("sessionx=1", "session", &n));
    assert_null(mt_auth_cookie_get(NULL, "session", &n));
    assert_null(mt_auth_cookie_get("", "session", &n));
}

static void relay_keys(void **state)
{
    const char *k;
    size_t n;
    int64_t ch;
    (void)state;
    assert_int_equal(mt_auth_parse_key("Bearer sk-abcdef", &k, &n, &ch), CM_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(k, "abcdef", 6);
    assert_int_equal(ch, 0);
    assert_int_equal(mt_auth_parse_key("bearer abcdef-12", &k, &n, &ch), CM_OK);
    assert_int_equal(n, 6);
    assert_int_equal(ch, 12);
    assert_int_equal(mt_auth_parse_key("sk-abc ", &k, &n, &ch), CM_OK);
    assert_int_equal(n, 3);
    assert_int_equal(mt_auth_parse_key("Bearer ", &k, &n, &ch), CM_ERR_NOTFOUND);
    assert_int_equal(mt_auth_parse_key("sk-", &k, &n, &ch), CM_ERR_NOTFOUND);
    assert_int_equal(mt_auth_parse_key("sk-abc-x", &k, &n, &ch), CM_ERR_INVAL);
    assert_int_equal(mt_auth_parse_key("sk-abc-0", &k, &n, &ch), CM_ERR_INVAL);
    assert_int_equal(mt_auth_parse_key("sk-abc-1-2", &k, &n, &ch), CM_ERR_INVAL);
    assert_int_equal(mt_auth_parse_key("sk--5", &k, &n, &ch), CM_ERR_INVAL);
    assert_int_equal(mt_auth_parse_key(NULL, &k, &n, &ch), CM_ERR_INVAL);
}

static void key_generation_and_masking(void **state)
{
    char a[MT_KEY_LEN + 1], b[MT_KEY_LEN + 1], m[MT_MASKED_KEY_MAX];
    (void)state;
    assert_int_equal(mt_auth_new_key(a), CM_OK);
    assert_int_equal(mt_auth_new_key(b), CM_OK);
    assert_int_equal(strlen(a), MT_KEY_LEN);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < MT_KEY_LEN; i++)
        assert_non_null(
            strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", a[i]));
    mt_auth_mask_key("abcdefghijklmnop", m, sizeof m);
    assert_string_equal(m, "abcd**********mnop");
    mt_auth_mask_key("abcdefgh", m, sizeof m);
    assert_string_equal(m, "********");
    mt_auth_mask_key("", m, sizeof m);
    assert_string_equal(m, "");
}

static void access_tokens(void **state)
{
    char t[MT_ACCESS_TOKEN_MAX], u[MT_ACCESS_TOKEN_MAX];
    size_t n = 0;
    const char *p;
    (void)state;
    assert_int_equal(mt_auth_new_access_token(t), CM_OK);
    assert_int_equal(mt_auth_new_access_token(u), CM_OK);
    assert_int_equal(strlen(t), 32);
    assert_string_not_equal(t, u);
    p = mt_auth_access_token("Bearer  tok123 ", &n);
    assert_non_null(p);
    assert_int_equal(n, 6);
    assert_memory_equal(p, "tok123", 6);
    assert_null(mt_auth_access_token("Bearer ", &n));
    assert_null(mt_auth_access_token(NULL, &n));
}

static void passwords(void **state)
{
    char h[MT_PASSWORD_HASH_MAX];
    (void)state;
    assert_int_equal(cm_crypto_init(), CM_OK);
    assert_int_equal(mt_auth_hash_password("correct horse", h, sizeof h), CM_OK);
    assert_memory_equal(h, "$2", 2);
    assert_int_equal(mt_auth_check_password("correct horse", h), CM_OK);
    assert_int_equal(mt_auth_check_password("wrong horse", h), CM_ERR_AUTH);
    assert_int_equal(mt_auth_check_password("x", "not a hash"), CM_ERR_AUTH);
    assert_int_equal(mt_auth_check_password("x", ""), CM_ERR_AUTH);
}

static void roles(void **state)
{
    (void)state;
    assert_true(mt_auth_can_manage(MT_ROLE_ROOT, MT_ROLE_ROOT));
    assert_true(mt_auth_can_manage(MT_ROLE_ADMIN, MT_ROLE_COMMON));
    assert_false(mt_auth_can_manage(MT_ROLE_ADMIN, MT_ROLE_ADMIN));
    assert_false(mt_auth_can_manage(MT_ROLE_COMMON, MT_ROLE_COMMON));
}

static void ip_lists(void **state)
{
    char err[128];
    (void)state;
    assert_true(mt_auth_ip_allowed(NULL, "127.0.0.1"));
    assert_true(mt_auth_ip_allowed("", "127.0.0.1"));
    assert_true(mt_auth_ip_allowed(" \n , ", "127.0.0.1"));
    assert_true(mt_auth_ip_allowed("127.0.0.1", "127.0.0.1"));
    assert_false(mt_auth_ip_allowed("127.0.0.1", "127.0.0.2"));
    assert_true(mt_auth_ip_allowed("127.66.1.2\n127.0.0.0/8", "127.9.9.9"));
    assert_true(mt_auth_ip_allowed("127.0.0.0/ 8", "127.9.9.9")); /* spaces removed */
    assert_false(mt_auth_ip_allowed("127.0.0.0/25", "127.0.0.200"));
    assert_true(mt_auth_ip_allowed("127.0.0.0/25", "127.0.0.100"));
    assert_true(mt_auth_ip_allowed("0.0.0.0/0", "127.0.0.1"));
    assert_true(mt_auth_ip_allowed("::1", "::1"));
    assert_true(mt_auth_ip_allowed("::/127", "::1"));
    assert_false(mt_auth_ip_allowed("::/127", "127.0.0.1"));
    assert_false(mt_auth_ip_allowed("junk", "127.0.0.1"));
    assert_false(mt_auth_ip_allowed("127.0.0.1", "junk"));
    assert_false(mt_auth_ip_allowed("127.0.0.1", NULL));
    assert_true(mt_auth_ip_list_valid("127.0.0.1\n::1\n 127.64.0.0/10,", err, sizeof err));
    assert_false(mt_auth_ip_list_valid("127.0.0.1\nnope", err, sizeof err));
    assert_non_null(strstr(err, "nope"));
    assert_false(mt_auth_ip_list_valid("127.0.0.1/33", err, sizeof err));
    assert_true(mt_auth_ip_list_valid("", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_round_trip),
        cmocka_unit_test(cookie_header),
        cmocka_unit_test(relay_keys),
        cmocka_unit_test(key_generation_and_masking),
        cmocka_unit_test(access_tokens),
        cmocka_unit_test(passwords),
        cmocka_unit_test(roles),
        cmocka_unit_test(ip_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
