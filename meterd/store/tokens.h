/* SPDX-License-Identifier: MIT */
/*
 * tokens.h - the tokens table (spec newapi.md 1.3, 3.4, 4.2): API keys stored without
 * "sk-", looked up by key on every relay request (cache-miss path), listed and searched
 * per owner, created with NewAPI's row defaults (48-char random key, created/accessed
 * time), edited, soft-deleted. Balances are not written here: reserve/settle in writer.h.
 * Keys are secrets: never logged. Thread-safe; ownership as in store.h.
 */
#ifndef MT_STORE_TOKENS_H
#define MT_STORE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;

enum {
    MT_TOKEN_ENABLED = 1,
    MT_TOKEN_DISABLED = 2,
    MT_TOKEN_EXPIRED = 3,
    MT_TOKEN_EXHAUSTED = 4,
};
#define MT_TOKEN_KEY_MAX 128 /* the column is varchar(128) */

struct mt_token {
    int64_t id;
    int64_t user_id;
    const char *key; /* secret, without "sk-" */
    int status;
    const char *name;
    int64_t created_time, accessed_time;
    int64_t expired_time; /* -1: never */
    int64_t remain_quota;
    int unlimited_quota;
    int model_limits_enabled;
    const char *model_limits; /* comma-separated */
    const char *allow_ips;    /* newline-separated */
    int64_t used_quota;
    const char *group; /* "": the user's group */
    int cross_group_retry;
    const char *deleted_at; /* NULL: live */
    void *_mem;
};

struct mt_token_list {
    struct mt_token *items;
    size_t n;
    int64_t total;
};

/** Zeroes @p t and sets NewAPI's defaults: status 1, expired_time -1, group "". */
void mt_token_init(struct mt_token *t);
void mt_token_cleanup(struct mt_token *t);
void mt_token_list_cleanup(struct mt_token_list *l);

/**
 * The live token whose key is @p key (a leading "sk-" is ignored, as is a "-<channel>"
 * pin suffix: callers may pass the client's string as is). Status and expiry are NOT
 * checked: the caller decides (NewAPI answers 401 for each). CM_OK, CM_ERR_NOTFOUND,
 * CM_ERR_NOMEM, CM_ERR_IO.
 */
int mt_store_token_get_by_key(struct mt_store *st, const char *key, struct mt_token *out);
/** Live token @p id, owned by @p user_id (0: any owner). CM_ERR_NOTFOUND otherwise. */
int mt_store_token_get(struct mt_store *st, int64_t id, int64_t user_id, struct mt_token *out);

/**
 * Inserts @p t (id ignored). An empty key gets a fresh 48-char [A-Za-z0-9] key; created
 * and accessed time 0 become now. The new id to *@p id and, when @p key_out is not
 * NULL, the key (without "sk-") to @p key_out (@p key_len >= MT_TOKEN_KEY_MAX + 1).
 * CM_OK; CM_ERR_INVAL (no user_id; a key longer than MT_TOKEN_KEY_MAX or containing '-',
 * which would read as a channel pin); CM_ERR_EXISTS (key
 * taken); CM_ERR_LIMIT (key_len too small: nothing inserted); CM_ERR_NOMEM; CM_ERR_IO.
 */
int mt_store_token_insert(struct mt_store *st, const struct mt_token *t, int64_t *id, char *key_out,
                          size_t key_len);

/**
 * Writes the editable fields of token @p t->id owned by @p t->user_id (0: any owner):
 * name, status, expired_time, remain_quota, unlimited_quota, model_limits_enabled,
 * model_limits, allow_ips, group, cross_group_retry. Not the key, not the counters.
 * CM_OK, CM_ERR_NOTFOUND, I/O errors.
 */
int mt_store_token_update(struct mt_store *st, const struct mt_token *t);
/** status only (e.g. 3 expired, 4 exhausted on validation). CM_ERR_NOTFOUND. */
int mt_store_token_set_status(struct mt_store *st, int64_t id, int status);
/** Soft delete of token @p id of @p user_id (0: any). CM_ERR_NOTFOUND. */
int mt_store_token_delete(struct mt_store *st, int64_t id, int64_t user_id);
/** Soft-deletes the @p n tokens @p ids of @p user_id in one transaction; count to *@p deleted. */
int mt_store_token_delete_many(struct mt_store *st, int64_t user_id, const int64_t *ids, size_t n,
                               int64_t *deleted);
/** Live tokens of @p user_id. */
int mt_store_token_count(struct mt_store *st, int64_t user_id, int64_t *out);

/** Live tokens of @p user_id, id desc, @p limit (1..MT_STORE_LIST_MAX) from @p offset. */
int mt_store_token_list(struct mt_store *st, int64_t user_id, int64_t offset, int limit,
                        struct mt_token_list *out);
/**
 * NewAPI's token search for @p user_id: @p name and @p key are patterns where '%' is
 * the wildcard and everything else literal ("sk-" stripped from @p key); NULL/"" means
 * no condition on that column. Both empty lists everything. Order id desc, at most
 * @p limit (1..MT_STORE_LIST_MAX) rows; out->total is the count of matches.
 */
int mt_store_token_search(struct mt_store *st, int64_t user_id, const char *name, const char *key,
                          int limit, struct mt_token_list *out);

/**
 * Keys of the live tokens @p ids (n <= MT_STORE_LIST_MAX) owned by @p user_id: on CM_OK
 * *@p keys is an array of @p n strings (NULL where the id is not the user's live token),
 * every string and the array freed by mt_token_keys_free(). Secrets.
 */
int mt_store_token_keys(struct mt_store *st, int64_t user_id, const int64_t *ids, size_t n,
                        char ***keys);
void mt_token_keys_free(char **keys, size_t n);

#endif
