/* SPDX-License-Identifier: MIT */
/*
 * test_crypto.c - cm_crypto: known-answer vectors (SHA-256, HMAC RFC 4231, base64
 * RFC 4648, PKCE RFC 7636), random ids / keys, constant-time compare, argon2 and bcrypt
 * password checks (incl. Go bcrypt vectors), bcrypt hashing, bad input and OOM paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <crypt.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"

static void hex_of(const unsigned char *p, size_t n, char *dst)
{
    assert_int_equal(cm_crypto_hex_encode(p, n, dst, CM_CRYPTO_HEX_SIZE(n)), CM_OK);
}

/* ---- init ---- */

static void *init_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)cm_crypto_init();
}

static void init_idempotent_threads(void **state)
{
    pthread_t t[4];
    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, init_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_int_equal((int)(intptr_t)r, CM_OK);
    }
    assert_int_equal(cm_crypto_init(), CM_OK);
    assert_int_equal(cm_crypto_init(), CM_OK);
}

/* ---- digests ---- */

static void sha256_vectors(void **state)
{
    unsigned char d[CM_CRYPTO_SHA256_LEN];
    char hex[CM_CRYPTO_SHA256_HEX_SIZE];
    (void)state;

    cm_crypto_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cm_crypto_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cm_crypto_sha256("abc", 3, d);
    assert_int_equal(d[0], 0xba);
    assert_int_equal(d[31], 0xad);
}

static void hmac_rfc4231(void **state)
{
    unsigned char key[131], d[CM_CRYPTO_SHA256_LEN];
    char hex[CM_CRYPTO_SHA256_HEX_SIZE];
    static const char tc6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    (void)state;

    /* test case 1: 20 x 0x0b, "Hi There" */
    memset(key, 0x0b, 20);
    cm_crypto_hmac_sha256(key, 20, "Hi There", 8, d);
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    /* test case 2: key shorter than the block */
    cm_crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* test case 6: key longer than the block (hashed first) */
    memset(key, 0xaa, sizeof key);
    cm_crypto_hmac_sha256(key, sizeof key, tc6, sizeof tc6 - 1, d);
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void hex_encode_limits(void **state)
{
    char dst[8];
    (void)state;
    memset(dst, 'x', sizeof dst);
    assert_int_equal(cm_crypto_hex_encode("\x01\xab\xff", 3, dst, 7), CM_OK);
    assert_string_equal(dst, "01abff");
    memset(dst, 'x', sizeof dst);
    assert_int_equal(cm_crypto_hex_encode("\x01\xab\xff", 3, dst, 6), CM_ERR_LIMIT);
    assert_int_equal(dst[0], 'x');
    assert_int_equal(cm_crypto_hex_encode("", 0, dst, 1), CM_OK);
    assert_string_equal(dst, "");
    assert_int_equal(cm_crypto_hex_encode("a", 1, NULL, 3), CM_ERR_INVAL);
}

/* ---- base64 ---- */

struct b64_case {
    const char *bin;
    size_t n;
    const char *std, *std_nopad, *url, *url_nopad;
};

static const struct b64_case b64_cases[] = {
    /* RFC 4648 section 10 */
    {"", 0, "", "", "", ""},
    {"f", 1, "Zg==", "Zg", "Zg==", "Zg"},
    {"fo", 2, "Zm8=", "Zm8", "Zm8=", "Zm8"},
    {"foo", 3, "Zm9v", "Zm9v", "Zm9v", "Zm9v"},
    {"foob", 4, "Zm9vYg==", "Zm9vYg", "Zm9vYg==", "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE=", "Zm9vYmE", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy", "Zm9vYmFy", "Zm9vYmFy", "Zm9vYmFy"},
    /* the bytes where the two alphabets differ; embedded NUL */
    {"\xfb\xff\xbf\xfe", 4, "+/+//g==", "+/+//g", "-_-__g==", "-_-__g"},
    {"a\0b", 3, "YQBi", "YQBi", "YQBi", "YQBi"},
};

static void b64_one(const char *bin, size_t n, enum cm_crypto_b64 v, const char *want)
{
    char *enc = NULL;
    unsigned char *dec = NULL;
    size_t elen = 99, dlen = 99;

    assert_int_equal(cm_crypto_b64_encode(bin, n, v, &enc, &elen), CM_OK);
    assert_string_equal(enc, want);
    assert_int_equal(elen, strlen(want));
    assert_int_equal(cm_crypto_b64_decode(enc, elen, v, &dec, &dlen), CM_OK);
    assert_int_equal(dlen, n);
    assert_memory_equal(dec, n ? bin : "", n);
    assert_int_equal(dec[dlen], '\0');
    cm_free(enc);
    cm_free(dec);
}

static void b64_vectors_roundtrip(void **state)
{
    unsigned char rnd[257];
    (void)state;
    for (size_t i = 0; i < sizeof b64_cases / sizeof b64_cases[0]; i++) {
        const struct b64_case *c = &b64_cases[i];
        b64_one(c->bin, c->n, CM_CRYPTO_B64_STD, c->std);
        b64_one(c->bin, c->n, CM_CRYPTO_B64_STD_NOPAD, c->std_nopad);
        b64_one(c->bin, c->n, CM_CRYPTO_B64_URL, c->url);
        b64_one(c->bin, c->n, CM_CRYPTO_B64_URL_NOPAD, c->url_nopad);
    }
    /* random round trips of every length 0..256 in every variant */
    assert_int_equal(cm_crypto_random_bytes(rnd, sizeof rnd), CM_OK);
    for (size_t n = 0; n < sizeof rnd; n++) {
        for (int v = CM_CRYPTO_B64_STD; v <= CM_CRYPTO_B64_URL_NOPAD; v++) {
            char *enc;
            unsigned char *dec;
            size_t elen, dlen;
            assert_int_equal(cm_crypto_b64_encode(rnd, n, (enum cm_crypto_b64)v, &enc, &elen),
                             CM_OK);
            assert_int_equal(cm_crypto_b64_decode(enc, elen, (enum cm_crypto_b64)v, &dec, &dlen),
                             CM_OK);
            assert_int_equal(dlen, n);
            assert_memory_equal(dec, rnd, n);
            cm_free(enc);
            cm_free(dec);
        }
    }
    /* out_len is optional; decode of NULL/0 is the empty string */
    {
        char *enc;
        unsigned char *dec;
        assert_int_equal(cm_crypto_b64_encode(NULL, 0, CM_CRYPTO_B64_STD, &enc, NULL), CM_OK);
        assert_string_equal(enc, "");
        cm_free(enc);
        assert_int_equal(cm_crypto_b64_decode(NULL, 0, CM_CRYPTO_B64_URL, &dec, NULL), CM_OK);
        assert_int_equal(dec[0], '\0');
        cm_free(dec);
    }
}

static void b64_bad_input(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        enum cm_crypto_b64 v;
    } bad[] = {
        {"Zg", 2, CM_CRYPTO_B64_STD},         /* padding missing */
        {"Zm8", 3, CM_CRYPTO_B64_URL},        /* padding missing */
        {"Zg==", 4, CM_CRYPTO_B64_STD_NOPAD}, /* padding not allowed */
        {"Zg==", 4, CM_CRYPTO_B64_URL_NOPAD},
        {"Zg=", 3, CM_CRYPTO_B64_STD},         /* short padding */
        {"Z===", 4, CM_CRYPTO_B64_STD},        /* too much padding */
        {"Z", 1, CM_CRYPTO_B64_STD_NOPAD},     /* a lone 6 bits is no byte */
        {"Zh==", 4, CM_CRYPTO_B64_STD},        /* non-zero unused bits */
        {"+/8", 3, CM_CRYPTO_B64_URL_NOPAD},   /* std alphabet in url variant */
        {"-_8", 3, CM_CRYPTO_B64_STD_NOPAD},   /* url alphabet in std variant */
        {"Zm9v!", 5, CM_CRYPTO_B64_STD_NOPAD}, /* not an alphabet character */
        {"Zm9v Zm9v", 9, CM_CRYPTO_B64_STD},   /* whitespace */
        {"Zm9v\nZm9v", 9, CM_CRYPTO_B64_STD},
        {"Zg==Zg==", 8, CM_CRYPTO_B64_STD},   /* data after padding */
        {"Zm9v\0Zm9v", 9, CM_CRYPTO_B64_STD}, /* embedded NUL */
    };
    unsigned char *sentinel = (unsigned char *)"untouched";
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *dec = sentinel;
        size_t dlen = 12345;
        int rc = cm_crypto_b64_decode(bad[i].s, bad[i].n, bad[i].v, &dec, &dlen);
        if (rc != CM_ERR_PARSE)
            fail_msg("case %zu (\"%s\"): rc %d", i, bad[i].s, rc);
        assert_ptr_equal(dec, sentinel);
        assert_int_equal(dlen, 12345);
    }
    /* n bounds the input: the valid prefix of a longer string decodes */
    {
        unsigned char *dec;
        size_t dlen;
        assert_int_equal(cm_crypto_b64_decode("Zm9v!!!", 4, CM_CRYPTO_B64_STD, &dec, &dlen), CM_OK);
        assert_int_equal(dlen, 3);
        assert_string_equal((char *)dec, "foo");
        cm_free(dec);
    }
}

static void b64_bad_args(void **state)
{
    char *enc = NULL;
    unsigned char *dec = NULL;
    (void)state;
    assert_int_equal(cm_crypto_b64_encode("a", 1, (enum cm_crypto_b64)42, &enc, NULL),
                     CM_ERR_INVAL);
    assert_int_equal(cm_crypto_b64_encode("a", 1, CM_CRYPTO_B64_STD, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_b64_encode(NULL, 1, CM_CRYPTO_B64_STD, &enc, NULL), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_b64_decode("Zg==", 4, (enum cm_crypto_b64) - 1, &dec, NULL),
                     CM_ERR_INVAL);
    assert_int_equal(cm_crypto_b64_decode("Zg==", 4, CM_CRYPTO_B64_STD, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_b64_decode(NULL, 4, CM_CRYPTO_B64_STD, &dec, NULL), CM_ERR_INVAL);
    assert_null(enc);
    assert_null(dec);
}

static void b64_oom(void **state)
{
    char *enc = (char *)"untouched";
    unsigned char *dec = (unsigned char *)"untouched";
    (void)state;
    cm_alloc_fail_at(1);
    assert_int_equal(cm_crypto_b64_encode("foo", 3, CM_CRYPTO_B64_STD, &enc, NULL), CM_ERR_NOMEM);
    assert_int_equal(cm_crypto_b64_decode("Zm9v", 4, CM_CRYPTO_B64_STD, &dec, NULL), CM_ERR_NOMEM);
    /* invalid input fails as PARSE after the allocation, which must be freed */
    cm_alloc_fail_at(2);
    assert_int_equal(cm_crypto_b64_decode("Zm9v!", 5, CM_CRYPTO_B64_STD, &dec, NULL), CM_ERR_PARSE);
    cm_alloc_fail_at(0);
    assert_string_equal(enc, "untouched");
    assert_string_equal((char *)dec, "untouched");
}

/* ---- PKCE ---- */

/*
 * RFC 7636 appendix B. (The challenge printed in the RFC is
 * "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; the octets below are from the RFC too.)
 */
static void pkce_rfc7636(void **state)
{
    static const char v[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    static const unsigned char v_octets[32] = {
        116, 24,  223, 180, 151, 153, 224, 37,  79, 250, 96, 125, 216, 173, 187, 186,
        22,  212, 37,  77,  105, 214, 191, 240, 91, 88,  5,  88,  83,  132, 141, 121};
    static const unsigned char h_octets[32] = {19, 211, 30,  150, 26,  26,  216, 236, 47,  22,  177,
                                               12, 76,  152, 46,  8,   118, 168, 120, 173, 109, 241,
                                               68, 86,  110, 225, 137, 74,  203, 112, 249, 195};
    char ch[CM_CRYPTO_PKCE_SIZE], *enc;
    unsigned char d[CM_CRYPTO_SHA256_LEN];
    (void)state;

    assert_int_equal(cm_crypto_b64_encode(v_octets, 32, CM_CRYPTO_B64_URL_NOPAD, &enc, NULL),
                     CM_OK);
    assert_string_equal(enc, v);
    cm_free(enc);
    cm_crypto_sha256(v, strlen(v), d);
    assert_memory_equal(d, h_octets, 32);
    assert_int_equal(cm_crypto_pkce_challenge(v, strlen(v), ch, sizeof ch), CM_OK);
    assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void pkce_generated(void **state)
{
    char v1[CM_CRYPTO_PKCE_SIZE], v2[CM_CRYPTO_PKCE_SIZE], ch[CM_CRYPTO_PKCE_SIZE];
    unsigned char *raw;
    size_t rawlen;
    (void)state;

    assert_int_equal(cm_crypto_pkce_verifier(v1, sizeof v1), CM_OK);
    assert_int_equal(cm_crypto_pkce_verifier(v2, sizeof v2), CM_OK);
    assert_int_equal(strlen(v1), CM_CRYPTO_PKCE_LEN);
    assert_string_not_equal(v1, v2);
    assert_int_equal(strspn(v1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789-_"),
                     CM_CRYPTO_PKCE_LEN);
    /* it is base64url-nopad of 32 bytes */
    assert_int_equal(cm_crypto_b64_decode(v1, strlen(v1), CM_CRYPTO_B64_URL_NOPAD, &raw, &rawlen),
                     CM_OK);
    assert_int_equal(rawlen, 32);
    cm_free(raw);
    /* its challenge is well-formed */
    assert_int_equal(cm_crypto_pkce_challenge(v1, strlen(v1), ch, sizeof ch), CM_OK);
    assert_int_equal(strlen(ch), CM_CRYPTO_PKCE_LEN);
}

static void pkce_bad(void **state)
{
    char v[CM_CRYPTO_PKCE_VERIFIER_MAX + 2], ch[CM_CRYPTO_PKCE_SIZE];
    (void)state;

    memset(ch, 'x', sizeof ch);
    memset(v, 'a', sizeof v);
    assert_int_equal(cm_crypto_pkce_challenge(v, 42, ch, sizeof ch), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pkce_challenge(v, 43, ch, sizeof ch), CM_OK);
    assert_int_equal(cm_crypto_pkce_challenge(v, 128, ch, sizeof ch), CM_OK);
    assert_int_equal(cm_crypto_pkce_challenge(v, 129, ch, sizeof ch), CM_ERR_INVAL);
    memcpy(v, "~._-", 4);
    assert_int_equal(cm_crypto_pkce_challenge(v, 43, ch, sizeof ch), CM_OK);
    v[10] = '+';
    assert_int_equal(cm_crypto_pkce_challenge(v, 43, ch, sizeof ch), CM_ERR_INVAL);
    v[10] = '=';
    assert_int_equal(cm_crypto_pkce_challenge(v, 43, ch, sizeof ch), CM_ERR_INVAL);
    v[10] = 'a';
    memset(ch, 'x', sizeof ch);
    assert_int_equal(cm_crypto_pkce_challenge(v, 43, ch, sizeof ch - 1), CM_ERR_LIMIT);
    assert_int_equal(ch[0], 'x');
    assert_int_equal(cm_crypto_pkce_challenge(NULL, 43, ch, sizeof ch), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pkce_verifier(ch, sizeof ch - 1), CM_ERR_LIMIT);
    assert_int_equal(ch[0], 'x');
    assert_int_equal(cm_crypto_pkce_verifier(NULL, 44), CM_ERR_INVAL);
}

/* ---- random ---- */

static int all_in(const char *s, size_t n, const char *set)
{
    return strspn(s, set) == n;
}

static void random_hex_ids(void **state)
{
    char a[CM_CRYPTO_HEX_SIZE(16)], b[CM_CRYPTO_HEX_SIZE(16)], big[CM_CRYPTO_HEX_SIZE(100)];
    (void)state;

    assert_int_equal(cm_crypto_random_hex(a, sizeof a, 16), CM_OK);
    assert_int_equal(cm_crypto_random_hex(b, sizeof b, 16), CM_OK);
    assert_int_equal(strlen(a), 32);
    assert_true(all_in(a, 32, "0123456789abcdef"));
    assert_string_not_equal(a, b);
    /* more than one internal chunk */
    assert_int_equal(cm_crypto_random_hex(big, sizeof big, 100), CM_OK);
    assert_int_equal(strlen(big), 200);
    assert_true(all_in(big, 200, "0123456789abcdef"));

    memset(a, 'x', sizeof a);
    assert_int_equal(cm_crypto_random_hex(a, 32, 16), CM_ERR_LIMIT);
    assert_int_equal(a[0], 'x');
    assert_int_equal(cm_crypto_random_hex(a, sizeof a, 0), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_random_hex(NULL, 33, 16), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_random_hex(a, SIZE_MAX, SIZE_MAX / 2 + 1), CM_ERR_LIMIT);
    assert_int_equal(a[0], 'x');
}

static void random_key_alphabet(void **state)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char k1[CM_CRYPTO_KEY_LEN + 1], k2[CM_CRYPTO_KEY_LEN + 1], big[6201];
    unsigned counts[256] = {0};
    (void)state;

    assert_int_equal(cm_crypto_random_key(k1, sizeof k1, CM_CRYPTO_KEY_LEN), CM_OK);
    assert_int_equal(cm_crypto_random_key(k2, sizeof k2, CM_CRYPTO_KEY_LEN), CM_OK);
    assert_int_equal(strlen(k1), 48);
    assert_true(all_in(k1, 48, alnum));
    assert_true(all_in(k2, 48, alnum));
    assert_string_not_equal(k1, k2);

    /* every one of the 62 characters shows up, none far from 1/62 (mean 100, sd ~10) */
    for (int round = 0; round < 10; round++) {
        assert_int_equal(cm_crypto_random_key(big, sizeof big, 6200), CM_OK);
        assert_true(all_in(big, 6200, alnum));
        for (size_t i = 0; i < 6200; i++)
            counts[(unsigned char)big[i]]++;
    }
    for (size_t i = 0; i < 62; i++) {
        unsigned c = counts[(unsigned char)alnum[i]];
        if (c < 800 || c > 1200)
            fail_msg("'%c' seen %u times out of 62000", alnum[i], c);
    }

    memset(k1, 'x', sizeof k1);
    assert_int_equal(cm_crypto_random_key(k1, 48, 48), CM_ERR_LIMIT);
    assert_int_equal(k1[0], 'x');
    assert_int_equal(cm_crypto_random_key(k1, sizeof k1, 0), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_random_key(NULL, 49, 48), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_random_key(k1, 2, 1), CM_OK);
    assert_int_equal(strlen(k1), 1);
}

static void random_bytes_fill(void **state)
{
    unsigned char a[64] = {0}, b[64] = {0}, zero[64] = {0};
    (void)state;
    assert_int_equal(cm_crypto_random_bytes(a, sizeof a), CM_OK);
    assert_int_equal(cm_crypto_random_bytes(b, sizeof b), CM_OK);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(cm_crypto_random_bytes(NULL, 0), CM_OK);
    assert_int_equal(cm_crypto_random_bytes(NULL, 1), CM_ERR_INVAL);
}

/* ---- compare, wipe ---- */

static void equal_cases(void **state)
{
    (void)state;
    assert_true(cm_crypto_equal("secret", 6, "secret", 6));
    assert_false(cm_crypto_equal("secret", 6, "secreT", 6)); /* last byte */
    assert_false(cm_crypto_equal("secret", 6, "Secret", 6)); /* first byte */
    assert_false(cm_crypto_equal("abc", 3, "abcd", 4));      /* prefix, other length */
    assert_false(cm_crypto_equal("abcd", 4, "abc", 3));
    assert_false(cm_crypto_equal("", 0, "a", 1));
    assert_true(cm_crypto_equal(NULL, 0, NULL, 0));
    assert_true(cm_crypto_equal("", 0, NULL, 0));
    assert_true(cm_crypto_equal("a\0b", 3, "a\0b", 3)); /* binary, not strings */
    assert_false(cm_crypto_equal("a\0b", 3, "a\0c", 3));
}

static void memzero_wipes(void **state)
{
    char s[] = "hunter2";
    (void)state;
    cm_crypto_memzero(s, sizeof s);
    for (size_t i = 0; i < sizeof s; i++)
        assert_int_equal(s[i], 0);
    cm_crypto_memzero(NULL, 10);
    cm_crypto_memzero(s, 0);
}

/* ---- passwords ---- */

static void argon2id_hash_verify(void **state)
{
    char h[CM_CRYPTO_PWHASH_SIZE], h2[CM_CRYPTO_PWHASH_SIZE];
    (void)state;

    assert_int_equal(cm_crypto_pwhash("correct horse", h, sizeof h), CM_OK);
    assert_true(strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0);
    assert_int_equal(cm_crypto_pwhash_verify("correct horse", h), CM_OK);
    assert_int_equal(cm_crypto_pwhash_verify("correct horsE", h), CM_ERR_AUTH);
    assert_int_equal(cm_crypto_pwhash_verify("", h), CM_ERR_AUTH);
    assert_int_equal(cm_crypto_pwhash_needs_upgrade(h), 0);

    /* same password, different salt */
    assert_int_equal(cm_crypto_pwhash("correct horse", h2, sizeof h2), CM_OK);
    assert_string_not_equal(h, h2);

    /* a changed hash byte is a mismatch, a broken encoding is INVAL */
    h[strlen(h) - 2] = h[strlen(h) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(cm_crypto_pwhash_verify("correct horse", h), CM_ERR_AUTH);
    assert_int_equal(cm_crypto_pwhash_verify("x", "$argon2id$garbage"), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_verify("x", "$argon2id$v=19$m=65536,t=2,p=1$"), CM_ERR_INVAL);

    /* dst too small: untouched */
    memset(h, 'x', sizeof h);
    assert_int_equal(cm_crypto_pwhash("pw", h, sizeof h - 1), CM_ERR_LIMIT);
    assert_int_equal(h[0], 'x');
    assert_int_equal(cm_crypto_pwhash(NULL, h, sizeof h), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash("pw", NULL, sizeof h), CM_ERR_INVAL);
}

static void argon2_other_params(void **state)
{
    char h[crypto_pwhash_STRBYTES];
    (void)state;

    /* argon2i (older libsodium default): verifies, should be upgraded */
    assert_int_equal(crypto_pwhash_argon2i_str(h, "pw", 2, crypto_pwhash_argon2i_OPSLIMIT_MIN,
                                               crypto_pwhash_argon2i_MEMLIMIT_MIN),
                     0);
    assert_true(strncmp(h, "$argon2i$", 9) == 0);
    assert_int_equal(cm_crypto_pwhash_verify("pw", h), CM_OK);
    assert_int_equal(cm_crypto_pwhash_verify("pW", h), CM_ERR_AUTH);
    assert_int_equal(cm_crypto_pwhash_needs_upgrade(h), 1);

    /* argon2id with weaker parameters: verifies, should be upgraded */
    assert_int_equal(crypto_pwhash_argon2id_str(h, "pw", 2, crypto_pwhash_argon2id_OPSLIMIT_MIN,
                                                crypto_pwhash_argon2id_MEMLIMIT_MIN),
                     0);
    assert_int_equal(cm_crypto_pwhash_verify("pw", h), CM_OK);
    assert_int_equal(cm_crypto_pwhash_needs_upgrade(h), 1);
}

/* known bcrypt vectors: (password, hash) */
static const struct {
    const char *pw, *hash;
} bcrypt_vectors[] = {
    /* OpenBSD / Openwall crypt_blowfish test vector */
    {"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
    /* golang.org/x/crypto/bcrypt TestBcryptingIsCorrect: what NewAPI databases hold */
    {"allmine", "$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga"},
    /* PHP password_verify() documentation ($2y$) */
    {"rasmuslerdorf", "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq"},
    /* only the first 72 bytes count (Openwall vector) */
    {"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
     "chars after 72 are ignored",
     "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"},
};

static void bcrypt_known_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bcrypt_vectors / sizeof bcrypt_vectors[0]; i++) {
        const char *h = bcrypt_vectors[i].hash;
        int rc = cm_crypto_pwhash_verify(bcrypt_vectors[i].pw, h);
        if (rc != CM_OK)
            fail_msg("vector %zu: rc %d", i, rc);
        assert_int_equal(cm_crypto_pwhash_verify("wrong", h), CM_ERR_AUTH);
        assert_int_equal(cm_crypto_pwhash_needs_upgrade(h), 1);
    }
    /* the 72-byte vector also matches with the password cut at 72 */
    assert_int_equal(cm_crypto_pwhash_verify("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                             "OPQRSTUVWXYZ0123456789",
                                             bcrypt_vectors[3].hash),
                     CM_OK);
    assert_int_equal(cm_crypto_pwhash_verify("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRG"
                                                    "yh0XouQYb4YMJKvyOeX"),
                     CM_ERR_AUTH);
}

static void bcrypt_generated(void **state)
{
    static const char *const prefixes[] = {"$2a$", "$2b$", "$2y$"};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE], h[61];
        struct crypt_data *cd = cm_calloc(1, sizeof *cd);
        const char *out;

        assert_non_null(cd);
        assert_non_null(crypt_gensalt_rn(prefixes[i], 4, NULL, 0, salt, sizeof salt));
        out = crypt_rn("s3cret pass", salt, cd, (int)sizeof *cd);
        assert_non_null(out);
        assert_int_equal(strlen(out), 60);
        assert_true(strncmp(out, prefixes[i], 4) == 0);
        memcpy(h, out, 61);
        cm_free(cd);

        assert_int_equal(cm_crypto_pwhash_verify("s3cret pass", h), CM_OK);
        assert_int_equal(cm_crypto_pwhash_verify("s3cret pasS", h), CM_ERR_AUTH);
        assert_int_equal(cm_crypto_pwhash_verify("", h), CM_ERR_AUTH);
    }
}

/* cm_crypto_bcrypt_hash: Go's "$2a$" form, fresh salt each time, verifies, bad args */
static void bcrypt_hash_roundtrip(void **state)
{
    char h[CM_CRYPTO_BCRYPT_SIZE], h2[CM_CRYPTO_BCRYPT_SIZE], small[CM_CRYPTO_BCRYPT_SIZE - 1];
    (void)state;

    assert_int_equal(cm_crypto_bcrypt_hash("mgmt secret", 4, h, sizeof h), CM_OK);
    assert_int_equal(strlen(h), 60);
    assert_true(strncmp(h, "$2a$04$", 7) == 0 || strncmp(h, "$2b$04$", 7) == 0);
    assert_int_equal(cm_crypto_pwhash_verify("mgmt secret", h), CM_OK);
    assert_int_equal(cm_crypto_pwhash_verify("mgmt secreT", h), CM_ERR_AUTH);
    assert_int_equal(cm_crypto_pwhash_verify("", h), CM_ERR_AUTH);
    assert_int_equal(cm_crypto_bcrypt_hash("mgmt secret", 4, h2, sizeof h2), CM_OK);
    assert_string_not_equal(h, h2); /* random salt */
    assert_int_equal(cm_crypto_pwhash_verify("mgmt secret", h2), CM_OK);
    assert_int_equal(cm_crypto_bcrypt_hash("", 5, h2, sizeof h2), CM_OK);
    assert_true(strncmp(h2 + 3, "$05$", 4) == 0);
    assert_int_equal(cm_crypto_pwhash_verify("", h2), CM_OK);

    memcpy(h2, h, sizeof h);
    assert_int_equal(cm_crypto_bcrypt_hash("pw", 4, small, sizeof small), CM_ERR_LIMIT);
    assert_int_equal(cm_crypto_bcrypt_hash(NULL, 4, h, sizeof h), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_bcrypt_hash("pw", 4, NULL, sizeof h), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_bcrypt_hash("pw", 3, h, sizeof h), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_bcrypt_hash("pw", 32, h, sizeof h), CM_ERR_INVAL);
    assert_string_equal(h, h2); /* untouched on failure */
    cm_alloc_fail_at(1);
    assert_int_equal(cm_crypto_bcrypt_hash("pw", 4, h, sizeof h), CM_ERR_NOMEM);
    cm_alloc_fail_at(0);
    assert_string_equal(h, h2);
}

static void pwhash_bad_formats(void **state)
{
    (void)state;
    assert_int_equal(cm_crypto_pwhash_verify("x", ""), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_verify("x", "plaintext"), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_verify("x", "$1$saltsalt$hash"), CM_ERR_INVAL); /* md5crypt */
    assert_int_equal(cm_crypto_pwhash_verify("x", "$6$saltsalt$hash"),
                     CM_ERR_INVAL); /* sha512crypt */
    assert_int_equal(cm_crypto_pwhash_verify(
                         "x", "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
                     CM_ERR_INVAL); /* $2x$ is not produced by Go */
    assert_int_equal(cm_crypto_pwhash_verify("x", "$argon2d$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA"),
                     CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_verify("x", "$2a$05$short"), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_verify(
                         "x", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWW"),
                     CM_ERR_INVAL); /* 61 characters */
    assert_int_equal(cm_crypto_pwhash_verify(
                         "x", "$2a$05$CCCCCCCCCCCCCCCCCCCC!.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
                     CM_ERR_INVAL); /* bad salt character */
    assert_int_equal(cm_crypto_pwhash_verify(
                         "x", "$2a$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
                     CM_ERR_INVAL); /* cost out of range */
    assert_int_equal(cm_crypto_pwhash_verify(
                         NULL, "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
                     CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_verify("x", NULL), CM_ERR_INVAL);
    assert_int_equal(cm_crypto_pwhash_needs_upgrade(NULL), 1);
    assert_int_equal(cm_crypto_pwhash_needs_upgrade("plaintext"), 1);
    assert_int_equal(cm_crypto_pwhash_needs_upgrade("$argon2id$garbage"), 1);
}

static void bcrypt_oom(void **state)
{
    (void)state;
    cm_alloc_fail_at(1);
    assert_int_equal(cm_crypto_pwhash_verify("U*U", bcrypt_vectors[0].hash), CM_ERR_NOMEM);
    cm_alloc_fail_at(0);
    assert_int_equal(cm_crypto_pwhash_verify("U*U", bcrypt_vectors[0].hash), CM_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_idempotent_threads),
        cmocka_unit_test(sha256_vectors),
        cmocka_unit_test(hmac_rfc4231),
        cmocka_unit_test(hex_encode_limits),
        cmocka_unit_test(b64_vectors_roundtrip),
        cmocka_unit_test(b64_bad_input),
        cmocka_unit_test(b64_bad_args),
        cmocka_unit_test(b64_oom),
        cmocka_unit_test(pkce_rfc7636),
        cmocka_unit_test(pkce_generated),
        cmocka_unit_test(pkce_bad),
        cmocka_unit_test(random_hex_ids),
        cmocka_unit_test(random_key_alphabet),
        cmocka_unit_test(random_bytes_fill),
        cmocka_unit_test(equal_cases),
        cmocka_unit_test(memzero_wipes),
        cmocka_unit_test(argon2id_hash_verify),
        cmocka_unit_test(argon2_other_params),
        cmocka_unit_test(bcrypt_known_vectors),
        cmocka_unit_test(bcrypt_generated),
        cmocka_unit_test(bcrypt_hash_roundtrip),
        cmocka_unit_test(pwhash_bad_formats),
        cmocka_unit_test(bcrypt_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
