/* SPDX-License-Identifier: MIT */
/*
 * keyring.h - the API-key credentials of config.yaml (spec cliproxyapi.md 2 and 3.6):
 * every `codex-api-key`, `claude-api-key` and `gemini-api-key` entry, and every
 * `api-key-entries` item of every `openai-compatibility` entry, becomes one credential in
 * the scheduler next to the auth-dir logins, with its priority, prefix, excluded models,
 * proxy, base-url and headers (sent last, as a file's own "headers" are). Models: the entry's `models` (an `alias` is what clients ask for,
 * `name` what the upstream gets; a repeated alias is a pool tried in turn), else the
 * provider's built-in list (codex, claude, gemini). An openai-compatibility entry without
 * models serves nothing and is reported once.
 *
 * Ids are "<list>[<i>]" ("codex-api-key[0]") and "openai-compatibility[<name>][<j>]", so
 * a reload that keeps an entry keeps its cooldowns. Snapshots are struct
 * cp_authstore_cred (af->key_entry set, access_token = the API key): release them with
 * cp_authstore_release(). Thread-safe.
 */
#ifndef CP_KEYRING_H
#define CP_KEYRING_H

#include "authstore.h"
#include "config.h"
#include "scheduler.h"

#include <stddef.h>

struct cp_keyring;

/** New empty keyring registering into @p sched (borrowed). CM_ERR_INVAL, CM_ERR_NOMEM. */
int cp_keyring_new(struct cp_sched *sched, struct cp_keyring **out);

/**
 * Makes the credentials those of @p cfg: new ones added to the scheduler, changed ones
 * updated, vanished ones removed. CM_OK, or the first scheduler / memory error (the
 * entries that could be applied are). Call from one thread at a time (start, reload).
 */
int cp_keyring_apply(struct cp_keyring *k, const struct cp_config *cfg);

/** A new reference to credential @p id, or NULL when it is not one of ours. */
struct cp_authstore_cred *cp_keyring_acquire(struct cp_keyring *k, const char *id);

/**
 * The served model ids (aliases where given) of every enabled credential, deduplicated,
 * appended to @p ids / @p owners (borrowed until the next apply) up to @p cap, after the
 * first @p n already there. Returns the new count.
 */
size_t cp_keyring_models(struct cp_keyring *k, const char **ids, const char **owners, size_t n,
                         size_t cap);

/**
 * A copy of @p s that lives as long as the keyring (the same pointer for equal strings),
 * for model lists that outlive a config reload; NULL when out of memory. Thread-safe.
 */
const char *cp_keyring_intern(struct cp_keyring *k, const char *s);

/** Frees the keyring (its credentials stay in the scheduler). NULL is a no-op. */
void cp_keyring_free(struct cp_keyring *k);

#endif
