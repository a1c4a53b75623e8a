/* SPDX-License-Identifier: MIT */
/*
 * options.h - the options table (spec newapi.md 1.7, 6): key/value strings (booleans
 * "true"/"false", numbers as decimal strings, maps as JSON text). The store only stores
 * them; parsing and defaults belong to the options cache. Some values are secrets
 * (keys ending in Token/Secret/Key): nothing here logs values. Thread-safe.
 */
#ifndef MT_STORE_OPTIONS_H
#define MT_STORE_OPTIONS_H

#include <stddef.h>

struct mt_store;

struct mt_option {
    const char *key;
    const char *value;
};

struct mt_option_list {
    struct mt_option *items; /* sorted by key */
    size_t n;
    void *_mem; /* owns every string */
};

void mt_option_list_cleanup(struct mt_option_list *l);

/** Every row, sorted by key. */
int mt_store_option_list(struct mt_store *st, struct mt_option_list *out);
/** The value of @p key into *@p value (caller frees with cm_free; NULL column -> "").
 *  CM_OK, CM_ERR_NOTFOUND, CM_ERR_NOMEM, CM_ERR_IO. */
int mt_store_option_get(struct mt_store *st, const char *key, char **value);
/** Inserts or replaces @p key (value NULL is stored as ""). CM_ERR_INVAL on an empty key. */
int mt_store_option_set(struct mt_store *st, const char *key, const char *value);
/** Sets @p n options in one transaction (a pricing edit lands whole or not at all). */
int mt_store_option_set_many(struct mt_store *st, const struct mt_option *kv, size_t n);
/** Deletes @p key; CM_ERR_NOTFOUND if absent. */
int mt_store_option_delete(struct mt_store *st, const char *key);

#endif
