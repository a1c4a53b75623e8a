/* SPDX-License-Identifier: MIT */
/*
 * crypto.c - thin, checked wrappers over libsodium (random, SHA-256, HMAC, base64,
 * argon2) and libxcrypt (bcrypt hash and verify). The wrappers exist to turn libsodium's
 * abort-on-misuse into enum cm_err (sizes and variants are checked before the call),
 * to keep allocation on the cm_alloc seam, and to hold the rules in one place: which
 * hash formats we accept, constant-time compares, wiping what held secrets.
 * Does not do encryption or signatures; add them here when a caller needs them.
 */
#include "cm/crypto.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <crypt.h>
#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

_Static_assert(CM_CRYPTO_SHA256_LEN == crypto_hash_sha256_BYTES, "sha256 size");
_Static_assert(CM_CRYPTO_SHA256_LEN == crypto_auth_hmacsha256_BYTES, "hmac size");
_Static_assert(CM_CRYPTO_PWHASH_SIZE == crypto_pwhash_STRBYTES, "pwhash string size");

static atomic_int inited;

int cm_crypto_init(void)
{
    if (atomic_load_explicit(&inited, memory_order_acquire))
        return CM_OK;
    /* sodium_init() has its own lock and returns 1 when already done. */
    if (sodium_init() < 0)
        return CM_ERR_INTERNAL;
    atomic_store_explicit(&inited, 1, memory_order_release);
    return CM_OK;
}

/* ---- random ---- */

int cm_crypto_random_bytes(void *buf, size_t n)
{
    int rc;

    if (!buf && n)
        return CM_ERR_INVAL;
    rc = cm_crypto_init();
    if (rc)
        return rc;
    if (n)
        randombytes_buf(buf, n);
    return CM_OK;
}

int cm_crypto_random_hex(char *dst, size_t dstlen, size_t nbytes)
{
    unsigned char chunk[32];
    size_t done = 0;
    int rc;

    if (!dst || !nbytes)
        return CM_ERR_INVAL;
    if (nbytes > (SIZE_MAX - 1) / 2 || dstlen < CM_CRYPTO_HEX_SIZE(nbytes))
        return CM_ERR_LIMIT;
    rc = cm_crypto_init();
    if (rc)
        return rc;
    /* no failure is possible from here on, so dst is only written on success */
    while (done < nbytes) {
        size_t k = nbytes - done < sizeof chunk ? nbytes - done : sizeof chunk;
        randombytes_buf(chunk, k);
        sodium_bin2hex(dst + 2 * done, 2 * k + 1, chunk, k);
        done += k;
    }
    sodium_memzero(chunk, sizeof chunk);
    return CM_OK;
}

int cm_crypto_random_key(char *dst, size_t dstlen, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int rc;

    if (!dst || !len)
        return CM_ERR_INVAL;
    if (len == SIZE_MAX || dstlen < len + 1)
        return CM_ERR_LIMIT;
    rc = cm_crypto_init();
    if (rc)
        return rc;
    /* randombytes_uniform() rejects the biased tail of the 32-bit range itself */
    for (size_t i = 0; i < len; i++)
        dst[i] = alphabet[randombytes_uniform((uint32_t)(sizeof alphabet - 1))];
    dst[len] = '\0';
    return CM_OK;
}

/* ---- compare, wipe ---- */

int cm_crypto_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int same = 1;

    /* sodium_memcmp() always walks all n bytes; lengths are public */
    if (n && sodium_memcmp(a, b, n) != 0)
        same = 0;
    return same & (alen == blen);
}

void cm_crypto_memzero(void *p, size_t n)
{
    if (p && n)
        sodium_memzero(p, n);
}

/* ---- digests ---- */

void cm_crypto_sha256(const void *data, size_t len, unsigned char out[CM_CRYPTO_SHA256_LEN])
{
    crypto_hash_sha256(out, data, (unsigned long long)len);
}

void cm_crypto_sha256_hex(const void *data, size_t len, char out[CM_CRYPTO_SHA256_HEX_SIZE])
{
    unsigned char d[CM_CRYPTO_SHA256_LEN];
    cm_crypto_sha256(data, len, d);
    sodium_bin2hex(out, CM_CRYPTO_SHA256_HEX_SIZE, d, sizeof d);
}

void cm_crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                           unsigned char out[CM_CRYPTO_SHA256_LEN])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, data, (unsigned long long)len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

int cm_crypto_hex_encode(const void *bin, size_t n, char *dst, size_t dstlen)
{
    if (!dst || (!bin && n))
        return CM_ERR_INVAL;
    if (n > (SIZE_MAX - 1) / 2 || dstlen < CM_CRYPTO_HEX_SIZE(n))
        return CM_ERR_LIMIT;
    sodium_bin2hex(dst, dstlen, bin, n);
    return CM_OK;
}

/* ---- base64 ---- */

/* libsodium's variant number, or -1; sodium_bin2base64() aborts on a bad one */
static int sodium_variant(enum cm_crypto_b64 v)
{
    switch (v) {
    case CM_CRYPTO_B64_STD:
        return sodium_base64_VARIANT_ORIGINAL;
    case CM_CRYPTO_B64_STD_NOPAD:
        return sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    case CM_CRYPTO_B64_URL:
        return sodium_base64_VARIANT_URLSAFE;
    case CM_CRYPTO_B64_URL_NOPAD:
        return sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    }
    return -1;
}

int cm_crypto_b64_encode(const void *bin, size_t n, enum cm_crypto_b64 variant, char **out,
                         size_t *out_len)
{
    int v = sodium_variant(variant);
    size_t size;
    char *p = NULL;
    int rc = CM_OK;

    if (v < 0 || !out || (!bin && n)) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    /* 4 characters per started 3 bytes, plus the NUL, must fit in a size_t */
    if (n / 3 >= (SIZE_MAX - 1) / 4 - 1) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    size = sodium_base64_encoded_len(n, v);
    p = cm_malloc(size);
    if (!p) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    sodium_bin2base64(p, size, bin ? bin : "", n, v);
    *out = p;
    if (out_len)
        *out_len = strlen(p);
    p = NULL;
out:
    cm_free(p);
    return rc;
}

int cm_crypto_b64_decode(const char *s, size_t n, enum cm_crypto_b64 variant, unsigned char **out,
                         size_t *out_len)
{
    int v = sodium_variant(variant);
    /* at most 3 bytes per 4 characters, computed without overflow */
    size_t cap = n / 4 * 3 + n % 4 * 3 / 4, len = 0;
    unsigned char *p = NULL;
    int rc = CM_OK;

    if (v < 0 || !out || (!s && n)) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    p = cm_malloc(cap + 1);
    if (!p) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    /* b64_end == NULL: the whole input must be valid and consumed */
    if (sodium_base642bin(p, cap, s ? s : "", n, NULL, &len, NULL, v) != 0) {
        rc = CM_ERR_PARSE;
        goto out;
    }
    p[len] = '\0';
    *out = p;
    if (out_len)
        *out_len = len;
    p = NULL;
out:
    cm_free(p);
    return rc;
}

/* ---- PKCE ---- */

int cm_crypto_pkce_verifier(char *dst, size_t dstlen)
{
    unsigned char raw[32];
    int rc;

    if (!dst)
        return CM_ERR_INVAL;
    if (dstlen < CM_CRYPTO_PKCE_SIZE)
        return CM_ERR_LIMIT;
    rc = cm_crypto_init();
    if (rc)
        return rc;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(dst, CM_CRYPTO_PKCE_SIZE, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return CM_OK;
}

static int pkce_unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int cm_crypto_pkce_challenge(const char *verifier, size_t len, char *dst, size_t dstlen)
{
    unsigned char d[CM_CRYPTO_SHA256_LEN];

    if (!verifier || !dst || len < CM_CRYPTO_PKCE_VERIFIER_MIN || len > CM_CRYPTO_PKCE_VERIFIER_MAX)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < len; i++)
        if (!pkce_unreserved(verifier[i]))
            return CM_ERR_INVAL;
    if (dstlen < CM_CRYPTO_PKCE_SIZE)
        return CM_ERR_LIMIT;
    cm_crypto_sha256(verifier, len, d);
    sodium_bin2base64(dst, CM_CRYPTO_PKCE_SIZE, d, sizeof d,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(d, sizeof d);
    return CM_OK;
}

/* ---- passwords ---- */

enum hash_kind { HASH_UNKNOWN, HASH_ARGON2ID, HASH_ARGON2I, HASH_BCRYPT };

#define BCRYPT_LEN 60 /* "$2b$" + "NN$" + 22 salt + 31 hash characters */

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static enum hash_kind hash_kind(const char *stored)
{
    if (has_prefix(stored, crypto_pwhash_argon2id_STRPREFIX))
        return HASH_ARGON2ID;
    if (has_prefix(stored, crypto_pwhash_argon2i_STRPREFIX))
        return HASH_ARGON2I;
    if (has_prefix(stored, "$2a$") || has_prefix(stored, "$2b$") || has_prefix(stored, "$2y$"))
        return HASH_BCRYPT;
    return HASH_UNKNOWN;
}

int cm_crypto_pwhash(const char *password, char *dst, size_t dstlen)
{
    char tmp[crypto_pwhash_STRBYTES];
    int rc;

    if (!password || !dst)
        return CM_ERR_INVAL;
    if (dstlen < CM_CRYPTO_PWHASH_SIZE)
        return CM_ERR_LIMIT;
    rc = cm_crypto_init();
    if (rc)
        return rc;
    errno = 0;
    if (crypto_pwhash_str(tmp, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        rc = errno == ENOMEM ? CM_ERR_NOMEM : errno == EFBIG ? CM_ERR_LIMIT : CM_ERR_INTERNAL;
        goto out;
    }
    memcpy(dst, tmp, sizeof tmp);
out:
    sodium_memzero(tmp, sizeof tmp);
    return rc;
}

/*
 * argon2: libsodium's verify returns -1 both for a mismatch and for a malformed string,
 * so the string is parsed first with *_needs_rehash() (-1 = cannot decode) to tell
 * CM_ERR_INVAL from CM_ERR_AUTH. Its only other failure is the work area malloc(),
 * which leaves errno at ENOMEM.
 */
static int verify_argon2(const char *password, const char *stored, enum hash_kind kind)
{
    int r;

    if (strnlen(stored, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return CM_ERR_INVAL;
    if (kind == HASH_ARGON2ID)
        r = crypto_pwhash_argon2id_str_needs_rehash(stored, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                    crypto_pwhash_MEMLIMIT_INTERACTIVE);
    else
        r = crypto_pwhash_argon2i_str_needs_rehash(stored,
                                                   crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE,
                                                   crypto_pwhash_argon2i_MEMLIMIT_INTERACTIVE);
    if (r < 0)
        return CM_ERR_INVAL;
    errno = 0;
    if (crypto_pwhash_str_verify(stored, password, strlen(password)) == 0)
        return CM_OK;
    return errno == ENOMEM ? CM_ERR_NOMEM : CM_ERR_AUTH;
}

/*
 * bcrypt: crypt_rn() with the stored hash as the setting recomputes it from the salt
 * and cost; equal output means the password matches. crypt_data is ~32 KiB, so it
 * lives on the heap, and it holds key material, so it is wiped before the free.
 */
static int verify_bcrypt(const char *password, const char *stored)
{
    struct crypt_data *cd = NULL;
    const char *h;
    int rc = CM_OK;

    if (strnlen(stored, BCRYPT_LEN + 1) != BCRYPT_LEN) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    cd = cm_calloc(1, sizeof *cd);
    if (!cd) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    h = crypt_rn(password, stored, cd, (int)sizeof *cd);
    if (!h || h[0] == '*') {
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (!cm_crypto_equal(h, strlen(h), stored, BCRYPT_LEN))
        rc = CM_ERR_AUTH;
out:
    if (cd)
        sodium_memzero(cd, sizeof *cd);
    cm_free(cd);
    return rc;
}

/*
 * bcrypt hashing: crypt_gensalt_rn() builds the "$2a$NN$<22 salt chars>" setting from
 * our own random bytes, crypt_rn() computes the hash. libxcrypt may be built without
 * the $2a$ variant, so $2b$ (same algorithm, fixed 8-bit handling) is the fallback.
 */
int cm_crypto_bcrypt_hash(const char *password, int cost, char *dst, size_t dstlen)
{
    struct crypt_data *cd = NULL;
    unsigned char rnd[16];
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    const char *h;
    int rc;

    if (!password || !dst || cost < CM_CRYPTO_BCRYPT_COST_MIN || cost > CM_CRYPTO_BCRYPT_COST_MAX)
        return CM_ERR_INVAL;
    if (dstlen < CM_CRYPTO_BCRYPT_SIZE)
        return CM_ERR_LIMIT;
    rc = cm_crypto_random_bytes(rnd, sizeof rnd);
    if (rc)
        goto out;
    if (!crypt_gensalt_rn("$2a$", (unsigned long)cost, (const char *)rnd, (int)sizeof rnd, setting,
                          (int)sizeof setting) &&
        !crypt_gensalt_rn("$2b$", (unsigned long)cost, (const char *)rnd, (int)sizeof rnd, setting,
                          (int)sizeof setting)) {
        rc = CM_ERR_INTERNAL;
        goto out;
    }
    cd = cm_calloc(1, sizeof *cd);
    if (!cd) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    h = crypt_rn(password, setting, cd, (int)sizeof *cd);
    if (!h || h[0] == '*' || strnlen(h, BCRYPT_LEN + 1) != BCRYPT_LEN ||
        hash_kind(h) != HASH_BCRYPT) {
        rc = CM_ERR_INTERNAL;
        goto out;
    }
    memcpy(dst, h, BCRYPT_LEN + 1);
out:
    sodium_memzero(rnd, sizeof rnd);
    if (cd)
        sodium_memzero(cd, sizeof *cd);
    cm_free(cd);
    return rc;
}

int cm_crypto_pwhash_verify(const char *password, const char *stored)
{
    enum hash_kind kind;
    int rc;

    if (!password || !stored)
        return CM_ERR_INVAL;
    kind = hash_kind(stored);
    if (kind == HASH_UNKNOWN)
        return CM_ERR_INVAL;
    rc = cm_crypto_init();
    if (rc)
        return rc;
    if (kind == HASH_BCRYPT)
        return verify_bcrypt(password, stored);
    return verify_argon2(password, stored, kind);
}

int cm_crypto_pwhash_needs_upgrade(const char *stored)
{
    if (!stored || hash_kind(stored) != HASH_ARGON2ID ||
        strnlen(stored, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return 1;
    /* 0: current parameters; 1: other parameters; -1: malformed */
    return crypto_pwhash_argon2id_str_needs_rehash(stored, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                   crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
}
