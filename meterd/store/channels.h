/* SPDX-License-Identifier: MIT */
/*
 * channels.h - channels and their abilities (spec newapi.md 1.4, 1.5, 3.5, 4.4).
 *
 * abilities is the routing index: one row per (group, model, channel) for the cross
 * product of a channel's comma-separated models and groups, enabled = (status == 1),
 * priority/weight/tag copied from the channel. Every channel write here rebuilds or
 * updates that channel's abilities IN THE SAME TRANSACTION, so the index is never out
 * of step with channels (NewAPI's cache panics when it is). Entries are trimmed and
 * empty ones skipped (NewAPI does not trim; " gpt-4o" would never match there).
 * Upstream keys are secrets: lists leave them out unless asked, nothing logs them.
 * Thread-safe; ownership as in store.h.
 */
#ifndef MT_STORE_CHANNELS_H
#define MT_STORE_CHANNELS_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;

enum {
    MT_CHANNEL_UNKNOWN = 0,
    MT_CHANNEL_ENABLED = 1,
    MT_CHANNEL_MANUAL_DISABLED = 2,
    MT_CHANNEL_AUTO_DISABLED = 3,
};

struct mt_channel {
    int64_t id;
    const char *key; /* secret; "" in lists read without keys */
    int type;
    const char *open_ai_organization;
    const char *test_model;
    int status;
    const char *name;
    int64_t weight;
    int64_t created_time, test_time, response_time;
    const char *base_url;
    const char *other;
    double balance;
    int64_t balance_updated_time;
    const char *models; /* comma-separated */
    const char *group;  /* comma-separated */
    int64_t used_quota;
    const char *model_mapping;       /* JSON */
    const char *status_code_mapping; /* JSON */
    int64_t priority;
    int auto_ban;
    const char *other_info; /* JSON */
    const char *tag;
    const char *setting; /* JSON */
    const char *param_override, *header_override;
    const char *remark;
    const char *channel_info; /* JSON */
    const char *settings;     /* JSON */
    void *_mem;
};

struct mt_channel_list {
    struct mt_channel *items;
    size_t n;
    int64_t total;
};

struct mt_ability {
    const char *group;
    const char *model;
    int64_t channel_id;
    int enabled;
    int64_t priority, weight;
    const char *tag;
    void *_mem;
};

struct mt_ability_list {
    struct mt_ability *items;
    size_t n;
};

/** Zeroes @p c and sets NewAPI's defaults: status 1, group "default", auto_ban 1. */
void mt_channel_init(struct mt_channel *c);
void mt_channel_cleanup(struct mt_channel *c);
void mt_channel_list_cleanup(struct mt_channel_list *l);
void mt_ability_list_cleanup(struct mt_ability_list *l);

/** Channel @p id; its key only when @p with_key. CM_OK, CM_ERR_NOTFOUND, ... */
int mt_store_channel_get(struct mt_store *st, int64_t id, int with_key, struct mt_channel *out);

/**
 * Inserts the @p n channels @p chs (ids ignored; created_time 0 -> now) and their
 * abilities in one transaction; their new ids to @p ids (n entries; may be NULL).
 * CM_OK; CM_ERR_INVAL (n == 0, a NULL/empty key); CM_ERR_NOMEM; CM_ERR_IO. All or none.
 */
int mt_store_channel_insert(struct mt_store *st, const struct mt_channel *chs, size_t n,
                            int64_t *ids);

/**
 * Writes every column of channel @p c->id except id, created_time and used_quota, and
 * the key only when @p c->key is neither NULL nor "" (lists carry no key); rebuilds its
 * abilities in the same transaction. CM_OK, CM_ERR_NOTFOUND, I/O errors.
 */
int mt_store_channel_update(struct mt_store *st, const struct mt_channel *c);

/**
 * Sets status (and other_info when @p other_info is not NULL, e.g. the status_reason
 * JSON) and abilities.enabled of channel @p id in one transaction. CM_ERR_NOTFOUND.
 */
int mt_store_channel_set_status(struct mt_store *st, int64_t id, int status,
                                const char *other_info);
/** Status of every channel tagged @p tag (+ abilities); count to *@p changed (may be NULL). */
int mt_store_channel_set_status_by_tag(struct mt_store *st, const char *tag, int status,
                                       int64_t *changed);
/** Sets tag of the @p n channels @p ids (+ abilities.tag); count to *@p changed. */
int mt_store_channel_set_tag(struct mt_store *st, const int64_t *ids, size_t n, const char *tag,
                             int64_t *changed);
/** After a test: response_time (ms) and test_time. CM_ERR_NOTFOUND. */
int mt_store_channel_set_test_result(struct mt_store *st, int64_t id, int64_t response_time_ms,
                                     int64_t test_time);
/** balance (USD) and balance_updated_time. CM_ERR_NOTFOUND. */
int mt_store_channel_set_balance(struct mt_store *st, int64_t id, double balance,
                                 int64_t updated_time);

/** Hard delete (+ abilities). CM_ERR_NOTFOUND. */
int mt_store_channel_delete(struct mt_store *st, int64_t id);
/** Deletes the @p n channels @p ids (+ abilities); count to *@p deleted. */
int mt_store_channel_delete_many(struct mt_store *st, const int64_t *ids, size_t n,
                                 int64_t *deleted);
/** Deletes every channel with status 2 or 3 (+ abilities); count to *@p deleted. */
int mt_store_channel_delete_disabled(struct mt_store *st, int64_t *deleted);

enum mt_channel_sort {
    MT_CHANNEL_SORT_PRIORITY = 0, /* NewAPI's default: priority desc */
    MT_CHANNEL_SORT_ID,
    MT_CHANNEL_SORT_NAME,
    MT_CHANNEL_SORT_BALANCE,
    MT_CHANNEL_SORT_RESPONSE_TIME,
    MT_CHANNEL_SORT_TEST_TIME,
};

struct mt_channel_filter {
    const char *keyword; /* NULL/"": any; else substring of name, base_url or tag, or the id */
    const char *group;   /* NULL/"": any; else one of the channel's groups */
    const char *model;   /* NULL/"": any; else substring of models */
    const char *tag;     /* NULL: any; else exactly this tag */
    int status;          /* -1: any */
    int type;            /* -1: any */
    enum mt_channel_sort sort;
    int ascending; /* 0: descending */
};
/** Zeroes @p f and sets "any" everywhere (status -1, type -1). */
void mt_channel_filter_init(struct mt_channel_filter *f);

/**
 * Channels matching @p f (NULL: all), sorted (ties by id desc), @p limit
 * (1..MT_STORE_LIST_MAX) from @p offset, without keys; total in out->total.
 */
int mt_store_channel_list(struct mt_store *st, const struct mt_channel_filter *f, int64_t offset,
                          int limit, struct mt_channel_list *out);
/** Every channel (for the routing cache), id asc, keys included when @p with_key. */
int mt_store_channel_all(struct mt_store *st, int with_key, struct mt_channel_list *out);

struct mt_type_count {
    int type;
    int64_t count;
};
/** Channel counts per type among channels matching @p f (NULL: all; status/type ignored
 *  like NewAPI's type_counts). *@p out (cm_free) has *@p n entries, type asc. */
int mt_store_channel_type_counts(struct mt_store *st, const struct mt_channel_filter *f,
                                 struct mt_type_count **out, size_t *n);

/**
 * Enabled abilities for (@p group, @p model), priority desc then weight desc then
 * channel_id asc: the DB path of channel selection (the caller picks the tier and
 * the weighted random). CM_OK with n == 0 when there is none.
 */
int mt_store_abilities_for(struct mt_store *st, const char *group, const char *model,
                           struct mt_ability_list *out);
/** Every ability row (for the routing cache), ordered group, model, priority desc. */
int mt_store_abilities_all(struct mt_store *st, struct mt_ability_list *out);
/**
 * NewAPI's FixAbility: deletes every ability and rebuilds them from channels, in one
 * transaction. Channels rebuilt to *@p ok; *@p fails is always 0 (all or nothing).
 */
int mt_store_abilities_fix(struct mt_store *st, int64_t *ok, int64_t *fails);
/** Distinct model names with an enabled ability, sorted; *@p models is an array of @p n
 *  strings, freed with mt_store_strings_free(). */
int mt_store_models_enabled(struct mt_store *st, char ***models, size_t *n);
/** Frees an array of @p n strings and the array. NULL ok. */
void mt_store_strings_free(char **v, size_t n);

#endif
