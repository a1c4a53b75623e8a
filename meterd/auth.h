/* SPDX-License-Identifier: MIT */
/*
 * auth.h - who a meterd request is (spec newapi.md 2 and 4.2), without I/O:
 *  - the dashboard session cookie `session`: "<user id>.<issued unix s>.<HMAC-SHA256 over
 *    both with SESSION_SECRET, base64url>", valid 30 days; the user's role and status are
 *    read from the store on every request, so a ban or a demotion takes effect at once;
 *  - access tokens (`Authorization: <token>` + `New-Api-User: <id>`) and their generation;
 *  - relay keys: "Bearer sk-KEY[-CHANNELID]" parsing, generation (48 of [0-9A-Za-z],
 *    stored without "sk-"), masking for lists;
 *  - passwords: bcrypt (cost 10, "$2a$"), the hash NewAPI writes, so a database can move
 *    between NewAPI and meterd in both directions;
 *  - role rules (canManageTargetRole) and the token IP allow list (CIDR or plain IPs).
 * Pure except password hashing and key/token generation (random); the clock is a parameter.
 */
#ifndef MT_AUTH_H
#define MT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define MT_SESSION_MAX_AGE (30 * 24 * 3600) /* seconds, NewAPI's cookie MaxAge */
#define MT_SESSION_COOKIE_MAX 128           /* buffer for a cookie value */
#define MT_KEY_LEN 48                       /* relay key characters (no "sk-") */
#define MT_ACCESS_TOKEN_MAX 48              /* buffer for an access token */
#define MT_MASKED_KEY_MAX 32                /* buffer for a masked key */
#define MT_PASSWORD_HASH_MAX 64             /* buffer for a bcrypt hash */

/**
 * Writes the session cookie value for @p user_id issued at @p now (unix s) into @p out
 * (@p outlen >= MT_SESSION_COOKIE_MAX). @p secret (@p secret_len bytes) is SESSION_SECRET.
 * CM_OK, CM_ERR_INVAL (NULL, user_id <= 0), CM_ERR_LIMIT, CM_ERR_NOMEM.
 */
int mt_auth_session_make(const void *secret, size_t secret_len, int64_t user_id, int64_t now,
                         char *out, size_t outlen);

/**
 * Checks the cookie value @p v (@p len bytes): well formed, signature right (constant
 * time), issued no later than @p now + 60 s and less than MT_SESSION_MAX_AGE ago. CM_OK
 * with *@p user_id; CM_ERR_AUTH (bad or forged); CM_ERR_TIMEOUT (expired); CM_ERR_INVAL.
 */
int mt_auth_session_check(const void *secret, size_t secret_len, const char *v, size_t len,
                          int64_t now, int64_t *user_id);

/** Finds cookie @p name in a Cookie header @p hdr; borrowed value, *@p len. NULL if none. */
const char *mt_auth_cookie_get(const char *hdr, const char *name, size_t *len);

/**
 * Splits a relay credential (the Authorization header value, or x-api-key): strips a
 * "Bearer " (any case) and an "sk-" prefix, then "KEY-CHANNELID" into the key (borrowed
 * from @p v: *@p key, *@p key_len) and the pinned channel id (*@p channel, 0 when none).
 * CM_OK; CM_ERR_NOTFOUND (empty); CM_ERR_INVAL (a channel part that is not a positive
 * integer, or more than one '-').
 */
int mt_auth_parse_key(const char *v, const char **key, size_t *key_len, int64_t *channel);

/** A new relay key: MT_KEY_LEN characters of [0-9A-Za-z] + NUL into @p out. CM_OK or error. */
int mt_auth_new_key(char out[MT_KEY_LEN + 1]);

/**
 * The key as lists show it (NewAPI MaskTokenKey): first 4 + "**********" + last 4 when
 * longer than 8 characters, else all '*'. Into @p out (>= MT_MASKED_KEY_MAX).
 */
void mt_auth_mask_key(const char *key, char *out, size_t outlen);

/** A new access token: base64 of 24 random bytes (32 characters). CM_OK or error. */
int mt_auth_new_access_token(char out[MT_ACCESS_TOKEN_MAX]);

/**
 * An access token from an Authorization header value: a leading "Bearer " stripped
 * (borrowed, *@p len). NULL when empty.
 */
const char *mt_auth_access_token(const char *hdr, size_t *len);

/** bcrypt (cost 10) of @p password into @p out (>= MT_PASSWORD_HASH_MAX). CM_OK or error. */
int mt_auth_hash_password(const char *password, char *out, size_t outlen);

/** CM_OK when @p password matches @p stored (bcrypt or argon2id), CM_ERR_AUTH if not. */
int mt_auth_check_password(const char *password, const char *stored);

/**
 * NewAPI's canManageTargetRole: root (MT_ROLE_ROOT, store/users.h) manages everyone,
 * others only lower roles.
 */
int mt_auth_can_manage(int my_role, int target_role);

/**
 * Whether @p ip (text, IPv4 or IPv6) is allowed by @p allow (NewAPI's `allow_ips`:
 * entries separated by newlines, spaces and commas ignored; each a CIDR or a plain IP).
 * An empty or NULL list allows everyone. Malformed entries match nothing. Returns 1/0.
 */
int mt_auth_ip_allowed(const char *allow, const char *ip);

/** Whether @p allow is a valid list (every entry an IP or a CIDR); for the token API. */
int mt_auth_ip_list_valid(const char *allow, char *err, size_t errlen);

#endif
