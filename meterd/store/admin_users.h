/* SPDX-License-Identifier: MIT */
/*
 * admin_users.h - users-table queries the user routes of the admin API need beyond
 * users.h (spec newapi.md 3.3): a user's own profile edit (username / display name only),
 * invite codes (lookup for registration, lazily assigned for GET /api/user/aff), and the
 * models enabled in a set of groups (GET /api/user/models). Thread-safe; ownership as in
 * store.h.
 */
#ifndef MT_STORE_ADMIN_USERS_H
#define MT_STORE_ADMIN_USERS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;

#define MT_AFF_CODE_MAX 32 /* the column is varchar(32) */

/**
 * Sets username and/or display_name of live user @p id; NULL leaves a field as it is.
 * CM_OK; CM_ERR_NOTFOUND (no live user); CM_ERR_EXISTS (another user, soft-deleted ones
 * included, has @p username); CM_ERR_INVAL (empty username); I/O errors.
 */
int mt_store_user_set_profile(struct mt_store *st, int64_t id, const char *username,
                              const char *display_name);

/**
 * NewAPI's hard delete (DELETE /api/user/:id), made safe: in one transaction the row of
 * user @p id (live or soft-deleted) is deleted and the user's live tokens are
 * soft-deleted; their count to *@p tokens (may be NULL). Without the second step, the
 * tokens would pass to the next user created: SQLite reuses the highest rowid once it
 * is deleted. CM_OK, CM_ERR_NOTFOUND, I/O errors.
 */
int mt_store_user_purge(struct mt_store *st, int64_t id, int64_t *tokens);

/** The live user whose aff_code is @p code (exact). CM_OK, CM_ERR_NOTFOUND, I/O errors. */
int mt_store_user_id_by_aff_code(struct mt_store *st, const char *code, int64_t *id);

/**
 * The aff_code of live user @p id into @p out (@p outlen >= MT_AFF_CODE_MAX + 1); a user
 * without one (rows written by other tools) gets a fresh unique 4-character code first,
 * in one transaction. CM_OK, CM_ERR_NOTFOUND, CM_ERR_INVAL, I/O errors.
 */
int mt_store_user_ensure_aff_code(struct mt_store *st, int64_t id, char *out, size_t outlen);

/**
 * Distinct model names with an enabled ability in any of the @p n groups @p groups,
 * sorted (strcmp). *@p models (an array of *@p nmodels strings; NULL when none) is freed
 * with mt_store_strings_free(). CM_OK, CM_ERR_INVAL, CM_ERR_NOMEM, I/O errors.
 */
int mt_store_models_of_groups(struct mt_store *st, const char *const *groups, size_t n,
                              char ***models, size_t *nmodels);

#endif
