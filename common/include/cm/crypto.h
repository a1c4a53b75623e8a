/* SPDX-License-Identifier: MIT */
/*
 * crypto.h - the few cryptographic primitives both daemons need, over libsodium and
 * libxcrypt: random bytes / ids / API keys, constant-time compare, SHA-256, HMAC-SHA256,
 * base64 (standard and url-safe, padded or not), PKCE S256, password hashing (argon2id;
 * bcrypt for secrets shared with CLIProxyAPI) and verification (argon2id, argon2i, and the
 * bcrypt hashes NewAPI databases hold).
 *
 * Who allocates: results of a fixed, known size (digests, hex, ids, keys, PKCE strings,
 * password hashes) go into caller buffers whose needed size is given by the
 * CM_CRYPTO_*_SIZE constants / macros below; a too small buffer gives CM_ERR_LIMIT and
 * leaves it untouched. Results whose size depends on the input (base64 encode / decode)
 * are allocated with cm_malloc(); the caller frees them with cm_free(). Out-params are
 * written only on success.
 *
 * Thread-safety: every function may be called from any thread at any time. Functions
 * that need libsodium initialised call cm_crypto_init() themselves; main() should still
 * call it once at start-up so a failure shows early.
 */
#ifndef CM_CRYPTO_H
#define CM_CRYPTO_H

#include <stddef.h>

/* sizes: *_LEN are byte / character counts, *_SIZE include the NUL */
#define CM_CRYPTO_SHA256_LEN 32      /* raw SHA-256 / HMAC-SHA256 output */
#define CM_CRYPTO_SHA256_HEX_SIZE 65 /* 64 lowercase hex digits + NUL */
/** Buffer size for @p n bytes as lowercase hex, with the NUL. */
#define CM_CRYPTO_HEX_SIZE(n) ((n)*2 + 1)
#define CM_CRYPTO_KEY_LEN 48           /* NewAPI token key length (shown as "sk-" + key) */
#define CM_CRYPTO_PKCE_LEN 43          /* our verifiers, and every S256 challenge */
#define CM_CRYPTO_PKCE_SIZE 44         /* the same with the NUL */
#define CM_CRYPTO_PKCE_VERIFIER_MIN 43 /* RFC 7636 4.1 verifier length bounds */
#define CM_CRYPTO_PKCE_VERIFIER_MAX 128
#define CM_CRYPTO_PWHASH_SIZE 128 /* a "$argon2id$..." string (crypto_pwhash_STRBYTES) */

/**
 * Initialises libsodium (sodium_init). Idempotent and thread-safe: the first call does
 * the work, later ones cost one atomic load. Returns CM_OK, or CM_ERR_INTERNAL if
 * libsodium could not initialise (no usable random source); then every function below
 * that needs it fails with CM_ERR_INTERNAL too.
 */
int cm_crypto_init(void);

/* ---- random ---- */

/**
 * Fills @p buf (@p n bytes, borrowed) with cryptographically secure random bytes.
 * n == 0 is allowed and writes nothing (buf may then be NULL). CM_OK; CM_ERR_INVAL if
 * buf is NULL with n > 0; CM_ERR_INTERNAL if init failed.
 */
int cm_crypto_random_bytes(void *buf, size_t n);

/**
 * Writes @p nbytes random bytes as 2 * @p nbytes lowercase hex digits plus a NUL into
 * @p dst (@p dstlen bytes, at least CM_CRYPTO_HEX_SIZE(nbytes)); for request ids.
 * CM_OK; CM_ERR_INVAL if nbytes is 0 or dst is NULL; CM_ERR_LIMIT if dstlen is too
 * small; CM_ERR_INTERNAL if init failed.
 */
int cm_crypto_random_hex(char *dst, size_t dstlen, size_t nbytes);

/**
 * Writes a random key of @p len characters from [A-Za-z0-9] plus a NUL into @p dst
 * (@p dstlen >= len + 1). Each character is uniform over the 62 (no modulo bias), so a
 * CM_CRYPTO_KEY_LEN key carries about 285 bits. No prefix is added ("sk-" is for display).
 * CM_OK; CM_ERR_INVAL if len is 0 or dst is NULL; CM_ERR_LIMIT if dstlen is too small;
 * CM_ERR_INTERNAL if init failed.
 */
int cm_crypto_random_key(char *dst, size_t dstlen, size_t len);

/* ---- compare, wipe ---- */

/**
 * Returns 1 if the @p alen bytes at @p a equal the @p blen bytes at @p b, else 0. The
 * time taken depends only on the lengths, never on where the contents differ: the first
 * min(alen, blen) bytes are always all compared, and different lengths are never equal.
 * Lengths are treated as public. A pointer may be NULL only when its length is 0. Pure.
 */
int cm_crypto_equal(const void *a, size_t alen, const void *b, size_t blen);

/** Overwrites @p n bytes at @p p with zeros in a way the compiler will not drop. NULL ok. */
void cm_crypto_memzero(void *p, size_t n);

/* ---- digests ---- */

/** SHA-256 of @p len bytes at @p data into @p out (CM_CRYPTO_SHA256_LEN bytes). Pure. */
void cm_crypto_sha256(const void *data, size_t len, unsigned char out[CM_CRYPTO_SHA256_LEN]);

/** SHA-256 of @p data as 64 lowercase hex digits plus a NUL into @p out. Pure. */
void cm_crypto_sha256_hex(const void *data, size_t len, char out[CM_CRYPTO_SHA256_HEX_SIZE]);

/**
 * HMAC-SHA256 (RFC 2104) of @p len bytes at @p data under a key of any length
 * (@p keylen bytes at @p key; keys longer than 64 bytes are hashed first, as the RFC
 * says) into @p out (CM_CRYPTO_SHA256_LEN bytes). The key schedule on the stack is
 * wiped before return. Pure.
 */
void cm_crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                           unsigned char out[CM_CRYPTO_SHA256_LEN]);

/**
 * Writes @p n bytes at @p bin as lowercase hex plus a NUL into @p dst (@p dstlen >=
 * CM_CRYPTO_HEX_SIZE(n)); constant time. CM_OK; CM_ERR_INVAL if dst is NULL (or bin
 * is NULL with n > 0); CM_ERR_LIMIT if dstlen is too small. Pure.
 */
int cm_crypto_hex_encode(const void *bin, size_t n, char *dst, size_t dstlen);

/* ---- base64 ---- */

enum cm_crypto_b64 {
    CM_CRYPTO_B64_STD = 0,   /* RFC 4648 section 4, '+' '/', '=' padding */
    CM_CRYPTO_B64_STD_NOPAD, /* same alphabet, no padding */
    CM_CRYPTO_B64_URL,       /* RFC 4648 section 5, '-' '_', '=' padding */
    CM_CRYPTO_B64_URL_NOPAD, /* url-safe, no padding (JWT, PKCE) */
};

/**
 * Encodes @p n bytes at @p bin (NULL allowed when n is 0) in @p variant. On success
 * *@p out is a NUL-terminated string the caller frees with cm_free(), and *@p out_len
 * (if @p out_len is not NULL) its length without the NUL. CM_OK; CM_ERR_INVAL for an
 * unknown variant or NULL out; CM_ERR_LIMIT if the result would not fit in a size_t;
 * CM_ERR_NOMEM.
 */
int cm_crypto_b64_encode(const void *bin, size_t n, enum cm_crypto_b64 variant, char **out,
                         size_t *out_len);

/**
 * Decodes @p n characters at @p s (not NUL-terminated necessarily; NULL allowed when n
 * is 0) in @p variant. Strict: the alphabet must match the variant, padded variants
 * require correct '=' padding and no-padding variants reject '=', no whitespace, unused
 * trailing bits must be zero, and all @p n characters must be consumed. On success
 * *@p out gets the bytes (plus a NUL not counted in *@p out_len, so text can be used as
 * a C string), caller frees with cm_free(); *@p out_len (may be NULL) the byte count.
 * CM_OK; CM_ERR_PARSE for invalid input; CM_ERR_INVAL for an unknown variant or NULL
 * out; CM_ERR_NOMEM.
 */
int cm_crypto_b64_decode(const char *s, size_t n, enum cm_crypto_b64 variant, unsigned char **out,
                         size_t *out_len);

/* ---- PKCE (RFC 7636, S256) ---- */

/**
 * Writes a new code verifier, base64url without padding of 32 random bytes
 * (CM_CRYPTO_PKCE_LEN characters) plus a NUL, into @p dst (@p dstlen >=
 * CM_CRYPTO_PKCE_SIZE). CM_OK; CM_ERR_INVAL if dst is NULL; CM_ERR_LIMIT;
 * CM_ERR_INTERNAL if init failed.
 */
int cm_crypto_pkce_verifier(char *dst, size_t dstlen);

/**
 * Writes the S256 challenge BASE64URL-NOPAD(SHA256(verifier)) of the @p len characters
 * at @p verifier (borrowed, need not be NUL-terminated) into @p dst: CM_CRYPTO_PKCE_LEN
 * characters plus a NUL (@p dstlen >= CM_CRYPTO_PKCE_SIZE). The verifier must be
 * CM_CRYPTO_PKCE_VERIFIER_MIN..MAX characters of [A-Za-z0-9-._~] (RFC 7636 4.1), else CM_ERR_INVAL.
 * CM_OK; CM_ERR_LIMIT. Pure.
 */
int cm_crypto_pkce_challenge(const char *verifier, size_t len, char *dst, size_t dstlen);

/* ---- passwords ---- */

/**
 * Hashes the NUL-terminated @p password (borrowed) with argon2id, libsodium's
 * OPSLIMIT/MEMLIMIT_INTERACTIVE (about 64 MiB and tens of milliseconds per call) and a
 * random salt, writing the "$argon2id$v=19$m=...,t=...,p=1$salt$hash" string and its NUL
 * into @p dst (@p dstlen >= CM_CRYPTO_PWHASH_SIZE). CM_OK; CM_ERR_INVAL if an argument
 * is NULL; CM_ERR_LIMIT if dstlen is too small or the password is too long for
 * libsodium; CM_ERR_NOMEM if the 64 MiB could not be had; CM_ERR_INTERNAL otherwise.
 */
int cm_crypto_pwhash(const char *password, char *dst, size_t dstlen);

/**
 * Checks the NUL-terminated @p password against @p stored (both borrowed), which is one of
 *  - "$argon2id$..." / "$argon2i$..." (libsodium / argon2 reference encoding), or
 *  - "$2a$", "$2b$", "$2y$" bcrypt (60 characters, as Go's golang.org/x/crypto/bcrypt
 *    writes into NewAPI's users table); checked with libxcrypt's crypt_rn() and a
 *    constant-time compare. Like Go and every bcrypt, only the first 72 password bytes
 *    count.
 * Returns CM_OK on a match, CM_ERR_AUTH on a mismatch, CM_ERR_INVAL if an argument is
 * NULL or @p stored is not a well-formed hash of one of these kinds, CM_ERR_NOMEM
 * (argon2 memory or the crypt_rn work area), CM_ERR_INTERNAL if init failed. The cost
 * is that of the stored parameters (trusted input: it comes from our own store).
 */
int cm_crypto_pwhash_verify(const char *password, const char *stored);

/**
 * Returns 1 if @p stored should be replaced with a fresh cm_crypto_pwhash() after the
 * next successful cm_crypto_pwhash_verify() (bcrypt, argon2i, argon2id with other
 * parameters than cm_crypto_pwhash() uses, or anything unrecognised), 0 if it is an
 * argon2id hash with the current parameters. NULL gives 1. Pure.
 */
int cm_crypto_pwhash_needs_upgrade(const char *stored);

/** Buffer size for a bcrypt hash string: 60 characters plus the NUL. */
#define CM_CRYPTO_BCRYPT_SIZE 61
#define CM_CRYPTO_BCRYPT_COST_MIN 4
#define CM_CRYPTO_BCRYPT_COST_MAX 31

/**
 * Hashes the NUL-terminated @p password (borrowed; like every bcrypt only its first 72
 * bytes count) with bcrypt at @p cost (CM_CRYPTO_BCRYPT_COST_MIN..MAX; 10 is Go's
 * bcrypt.DefaultCost, about 80 ms) and a fresh 16-byte random salt, writing the
 * "$2a$<cost>$<salt><hash>" string (60 characters, the form Go's golang.org/x/crypto/bcrypt
 * writes; "$2b$" if this libxcrypt cannot make "$2a$") and its NUL into @p dst
 * (@p dstlen >= CM_CRYPTO_BCRYPT_SIZE). cm_crypto_pwhash_verify() checks it. For secrets
 * other programs (CLIProxyAPI) must also verify; new password stores use cm_crypto_pwhash().
 * CM_OK; CM_ERR_INVAL (NULL argument, cost out of range); CM_ERR_LIMIT (dstlen too
 * small); CM_ERR_NOMEM (the crypt_rn work area); CM_ERR_INTERNAL (init or libxcrypt
 * failed). The work area is wiped before it is freed.
 */
int cm_crypto_bcrypt_hash(const char *password, int cost, char *dst, size_t dstlen);

#endif
