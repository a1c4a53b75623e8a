/* SPDX-License-Identifier: MIT */
/*
 * users.h - the users table (spec newapi.md 1.2, 2.x, 3.3): lookups for login (username
 * or email), admin-API access tokens, the admin list/search, inserts with the row
 * defaults NewAPI's Go code sets, edits, soft/hard delete and quota changes (relative,
 * with the admin log row in the same transaction). Password hashes are stored as given
 * (bcrypt from NewAPI, or whatever meterd's auth writes) and are never logged.
 * Thread-safe; see store.h for the ownership conventions.
 */
#ifndef MT_STORE_USERS_H
#define MT_STORE_USERS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;
struct mt_log;

enum { MT_ROLE_GUEST = 0, MT_ROLE_COMMON = 1, MT_ROLE_ADMIN = 10, MT_ROLE_ROOT = 100 };
enum { MT_USER_ENABLED = 1, MT_USER_DISABLED = 2 };

struct mt_user {
    int64_t id;
    const char *username;
    const char *password; /* hash; secret */
    const char *display_name;
    int role;
    int status;
    const char *email;
    const char *github_id, *discord_id, *oidc_id, *wechat_id, *telegram_id, *linux_do_id;
    const char *access_token; /* secret; NULL when none */
    int64_t quota, used_quota, request_count;
    const char *group;
    const char *aff_code;
    int64_t aff_count, aff_quota, aff_history, inviter_id;
    const char *deleted_at; /* NULL: live; else the soft-delete time (datetime text) */
    const char *setting;    /* JSON text */
    const char *remark;
    const char *stripe_customer;
    int64_t created_at, last_login_at;
    void *_mem;
};

struct mt_user_list {
    struct mt_user *items;
    size_t n;
    int64_t total; /* rows matching, ignoring offset/limit */
};

/** Zeroes @p u and sets NewAPI's defaults: role 1, status 1, group "default", setting "". */
void mt_user_init(struct mt_user *u);
/** Frees what the store put in @p u and zeroes it. NULL ok. */
void mt_user_cleanup(struct mt_user *u);
void mt_user_list_cleanup(struct mt_user_list *l);

/**
 * Reads user @p id into *@p out (cleanup with mt_user_cleanup()). Soft-deleted users only
 * when @p with_deleted. CM_OK, CM_ERR_NOTFOUND, CM_ERR_NOMEM, CM_ERR_IO.
 */
int mt_store_user_get(struct mt_store *st, int64_t id, int with_deleted, struct mt_user *out);
/** Live user by exact username. Same results as mt_store_user_get(). */
int mt_store_user_get_by_username(struct mt_store *st, const char *username, struct mt_user *out);
/** Live user whose username, or (non-empty) email, is @p name: the login lookup. Username wins. */
int mt_store_user_get_by_login(struct mt_store *st, const char *name, struct mt_user *out);
/** Live user with this access token (exact; the caller strips "Bearer "). Empty -> NOTFOUND. */
int mt_store_user_get_by_access_token(struct mt_store *st, const char *token, struct mt_user *out);
/** *@p taken = 1 if any user, soft-deleted included, has @p username. */
int mt_store_user_username_taken(struct mt_store *st, const char *username, int *taken);
/** *@p out = 1 if a live root user (role 100) exists. */
int mt_store_user_root_exists(struct mt_store *st, int *out);

/**
 * Inserts @p u (id ignored) and writes the new id to *@p id (may be NULL). Sets what
 * NewAPI's code sets when @p u leaves it empty: created_at = now, aff_code = 4 random
 * alphanumerics (unique; retried), setting = "". @p log (may be NULL) is inserted in
 * the same transaction with its user_id set to the new id (e.g. the registration grant).
 * CM_OK; CM_ERR_INVAL (no username or password); CM_ERR_EXISTS (username or access
 * token taken); CM_ERR_NOMEM; CM_ERR_IO; CM_ERR_TIMEOUT.
 */
int mt_store_user_insert(struct mt_store *st, const struct mt_user *u, const struct mt_log *log,
                         int64_t *id);

/**
 * NewAPI's admin edit (User.Edit): writes username, display_name, group and remark of
 * user @p u->id, and password when @p u->password is neither NULL nor "". CM_OK;
 * CM_ERR_NOTFOUND; CM_ERR_EXISTS (username taken); CM_ERR_IO.
 */
int mt_store_user_edit(struct mt_store *st, const struct mt_user *u);

/* Single-field writes; each CM_OK or CM_ERR_NOTFOUND (no such user) or an I/O error. */
int mt_store_user_set_status(struct mt_store *st, int64_t id, int status);
int mt_store_user_set_role(struct mt_store *st, int64_t id, int role);
int mt_store_user_set_password(struct mt_store *st, int64_t id, const char *hash);
int mt_store_user_set_setting(struct mt_store *st, int64_t id, const char *json);
int mt_store_user_set_last_login(struct mt_store *st, int64_t id, int64_t when);
/** Sets (or with NULL clears) the access token. CM_ERR_EXISTS if another user has it. */
int mt_store_user_set_access_token(struct mt_store *st, int64_t id, const char *token);

/**
 * quota = quota + @p delta (negative subtracts; relative, never clamped), with @p log
 * (may be NULL; admin/top-up log row) in the same transaction. Direct, not batched
 * (NewAPI's db=true writes). CM_OK, CM_ERR_NOTFOUND, I/O errors.
 */
int mt_store_user_quota_add(struct mt_store *st, int64_t id, int64_t delta,
                            const struct mt_log *log);
/** quota = @p quota (the admin "override"); the old value to *@p old (may be NULL). */
int mt_store_user_quota_set(struct mt_store *st, int64_t id, int64_t quota, int64_t *old,
                            const struct mt_log *log);

/** Soft delete (deleted_at = now). CM_ERR_NOTFOUND if no live user @p id. */
int mt_store_user_soft_delete(struct mt_store *st, int64_t id);
/** Hard delete of the row (NewAPI's DELETE /api/user/:id). CM_ERR_NOTFOUND. */
int mt_store_user_delete(struct mt_store *st, int64_t id);

/** Live users count. */
int mt_store_user_count(struct mt_store *st, int64_t *out);

/**
 * The admin list: every user, soft-deleted included, order id desc; @p limit rows
 * (1..MT_STORE_LIST_MAX) from @p offset; total in out->total.
 */
int mt_store_user_list(struct mt_store *st, int64_t offset, int limit, struct mt_user_list *out);

struct mt_user_filter {
    const char *keyword; /* NULL/"": any; else substring of username, email or display_name,
                            or the id when it is all digits */
    const char *group;   /* NULL/"": any */
    int role;            /* -1: any */
    int status;          /* 0: any */
};
/** The admin search (live users), order id desc, paged like mt_store_user_list(). */
int mt_store_user_search(struct mt_store *st, const struct mt_user_filter *f, int64_t offset,
                         int limit, struct mt_user_list *out);

#endif
