/* SPDX-License-Identifier: MIT */
/*
 * authstore.h - the credentials of one auth dir, kept in sync with the files and with
 * the scheduler (design.md "Auth store", issue 3 "Auth dir", spec cliproxyapi.md 2, 4.8).
 *
 * Every "*.json" directly in the directory (names starting with '.' are ignored: they
 * are temporaries of atomic writers) is one entry named by its file name, which is also
 * its scheduler id. An entry is one of:
 *  - VALID: a codex / claude / gemini / qwen / iflow credential, registered in the struct cp_sched
 * with the file's priority, disabled, disable_cooling, prefix and excluded_models, and the model
 * list the opts' callback gives; its current snapshot (struct cp_authstore_cred) is what request
 * threads use;
 *  - INVALID: the file could not be parsed (or registered); logged once per content
 *    with its message (file and field, never a token) and listed with it;
 *  - UNSUPPORTED: a provider this build does not serve yet (gemini, qwen, ...): one
 *    warning per content, listed, not registered.
 * A file that changes is re-read; its content hash decides whether anything changed, so
 * our own refresh write-back (and attribute-only events) never re-register a credential.
 * A changed valid file -> cp_sched_update() (this clears "needs re-login"); a deleted
 * one -> cp_sched_remove(); a file that turns invalid or unsupported is removed from
 * the scheduler too.
 *
 * Snapshots: cp_authstore_acquire() hands out a reference to an immutable, refcounted
 * struct cp_authstore_cred; it stays valid (and unchanged) after the file changes or is
 * deleted, and even after cp_authstore_free(), until cp_authstore_release().
 *
 * Refresh bookkeeping (no HTTP here): cp_authstore_due() lists what wants a refresh,
 * cp_authstore_begin_refresh() marks one in flight, cp_authstore_finish_refresh() applies
 * the token answer (write-back 0600, atomic, unknown fields kept), or records a failure:
 * permanent -> needs re-login in the scheduler until the file changes; temporary ->
 * retry after 1, 2, 4 ... min, capped at CP_AUTHSTORE_RETRY_MAX_MS (injected clock).
 *
 * Threads and locks: the fswatch callback runs on the watcher thread, acquire/list/due
 * on any thread, finish_refresh on the HTTP client's. Two mutexes inside:
 *   load_mu (outer): serialises everything that reads or writes files and changes the
 *                    scheduler (rescan, watcher batches, finish_refresh);
 *   mu (inner leaf): guards the entry map; held only for lookups and pointer swaps.
 * Lock order: load_mu -> scheduler's own mutex, and load_mu -> mu. The scheduler is
 * never called with mu held, and nothing is taken while holding mu, so no cycle exists.
 * Every function below is thread-safe except new/free.
 */
#ifndef CP_AUTHSTORE_H
#define CP_AUTHSTORE_H

#include "authfile.h"
#include "scheduler.h"

#include "cm/clock.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** Temporary refresh failures retry after 1 min << (failures - 1), capped here. */
#define CP_AUTHSTORE_RETRY_BASE_MS (60LL * 1000)
#define CP_AUTHSTORE_RETRY_MAX_MS (30LL * 60 * 1000)

struct cp_authstore; /* opaque */

/**
 * An immutable credential snapshot. Everything is owned by the snapshot and read-only;
 * valid until the reference is released. Fields with a leading '_' are private.
 */
struct cp_authstore_cred {
    const char *id;       /* file name (scheduler id) */
    const char *provider; /* "codex" / "claude" / "gemini" / "qwen" / "iflow" (static) */
    enum cp_auth_provider provider_id;
    const char *access_token;     /* secret; the bearer token (gemini: token.access_token; iflow:
                                     the OAuth token, NOT what inference sends); NULL if none */
    const char *api_key;          /* iflow: the API key inference sends; secret; NULL if none */
    const char *resource_url;     /* qwen: API host as written (cp_qwen_base()); NULL if none */
    const char *project_id;       /* gemini: "project_id" as written: one id, or a comma list /
                                     "ALL" (multi-project files are registered once; the relay
                                     uses the first id); NULL if none */
    const char *account_id;       /* codex; NULL when unknown */
    const char *proxy_url;        /* per-file proxy; NULL = global */
    const struct cp_authfile *af; /* the parsed file: email, headers, refresh token ... */
    atomic_long _refs;
};

/**
 * The served model list of a credential: write an array to *@p models and its length to
 * *@p n. The array is borrowed: it must stay valid until the store's cp_sched_add/update
 * call that follows has returned (static storage or owned by @p ud; the scheduler copies).
 * Return CM_OK or an error (the file is then listed invalid). Called with load_mu held,
 * on the thread that loads (watcher, or the caller of start/rescan); must not call back
 * into the store.
 */
typedef int (*cp_authstore_models_fn)(const struct cp_authfile *af, const char *const **models,
                                      size_t *n, void *ud);

struct cp_authstore_opts {
    cp_authstore_models_fn models; /* NULL: cp_authstore_default_models() */
    void *models_ud;
    unsigned debounce_ms; /* fswatch quiet time; 0 = 100 ms (changes land well within 1 s) */
};

enum cp_authstore_kind { CP_AUTHSTORE_VALID = 0, CP_AUTHSTORE_INVALID, CP_AUTHSTORE_UNSUPPORTED };

/** One entry for the management API. All strings owned by the list. */
struct cp_authstore_info {
    char *name;     /* file name */
    char *provider; /* "codex", "gemini", ...; the raw type for an unknown one; "" if none */
    char *email;    /* NULL when unknown */
    enum cp_authstore_kind kind;
    enum cp_sched_state state;     /* VALID: from the scheduler (ACTIVE when not registered) */
    int64_t cooling_until_wall_ms; /* state COOLING: its earliest end, else 0 */
    char *error;                   /* INVALID: why; VALID: last refresh error; NULL when none */
    int refreshing;                /* a refresh is in flight */
    int refresh_failures;          /* temporary failures in a row */
    int64_t next_retry_mono_ms;    /* >0: no refresh before this (temporary failure backoff) */
    int needs_relogin;             /* refresh failed for good, until the file changes */
    uint64_t loads;                /* times this file's content was (re)loaded from disk */
};

struct cp_authstore_list {
    struct cp_authstore_info *items; /* sorted by name */
    size_t n;
};

/**
 * New store for directory @p dir (copied) registering into @p sched (borrowed, must
 * outlive the store), timing by @p clock (borrowed; NULL = real clock). @p opts may be
 * NULL (defaults). Nothing is read until cp_authstore_start() or cp_authstore_rescan().
 * *@p out freed with cp_authstore_free(). CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_authstore_new(const char *dir, struct cp_sched *sched, const struct cm_clock *clock,
                     const struct cp_authstore_opts *opts, struct cp_authstore **out);

/**
 * Starts watching the directory (cm_fswatch, suffix ".json") and then scans it once.
 * Returns the fswatch error (CM_ERR_NOTFOUND, CM_ERR_DENIED, ...) if watching cannot
 * start, else the result of the scan (CM_OK; CM_ERR_NOMEM / CM_ERR_IO when some file
 * could not be loaded: the watcher runs anyway and a later rescan retries).
 * CM_ERR_EXISTS when already started. Call once, from the thread that owns the store.
 */
int cp_authstore_start(struct cp_authstore *st);

/**
 * Re-reads every "*.json" of the directory and drops entries whose file is gone
 * (what the watcher does on overflow). Unchanged files cost a read and a hash.
 * CM_OK, or the first CM_ERR_NOMEM / CM_ERR_IO met (the other files are still
 * processed; a file that failed for lack of memory is retried by the next rescan).
 */
int cp_authstore_rescan(struct cp_authstore *st);

/**
 * Stops the watcher (waiting for a batch in progress), removes nothing from the
 * scheduler, drops the store's references. Snapshots still referenced stay valid.
 * NULL is a no-op. No other thread may call into the store during or after this.
 */
void cp_authstore_free(struct cp_authstore *st);

/** A new reference to the current snapshot of VALID entry @p id, or NULL. Never blocks long. */
struct cp_authstore_cred *cp_authstore_acquire(struct cp_authstore *st, const char *id);

/**
 * A snapshot (one reference) of a credential that is not a file (keyring.c's API-key
 * entries): takes ownership of *@p afp on CM_OK (sets it NULL); released with
 * cp_authstore_release() like any other. CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_authstore_cred_wrap(struct cp_authfile **afp, struct cp_authstore_cred **out);

/** Drops a reference (any thread); the last one frees the snapshot. NULL is a no-op. */
void cp_authstore_release(struct cp_authstore_cred *c);

/**
 * Every entry with its state (scheduler snapshot taken first, then the map).
 * *@p out freed with cp_authstore_list_free(). CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_authstore_list(struct cp_authstore *st, struct cp_authstore_list **out);
void cp_authstore_list_free(struct cp_authstore_list *l);

/** "active", "cooling", "needs re-login", "disabled", "invalid", "unsupported". Static. */
const char *cp_authstore_status_str(const struct cp_authstore_info *i);

/**
 * Ids of the VALID entries that want a refresh now (cp_authfile_needs_refresh() at the
 * store's clock), not in flight, not needing re-login and not backing off. *@p ids is an
 * array of *@p n strings, freed with cp_authstore_ids_free() (NULL when n is 0).
 * CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_authstore_due(struct cp_authstore *st, char ***ids, size_t *n);
void cp_authstore_ids_free(char **ids, size_t n);

/**
 * Marks @p id's refresh in flight and, if @p ref is not NULL, gives a reference to the
 * snapshot to refresh from (release it). CM_OK; CM_ERR_NOTFOUND (no VALID entry);
 * CM_ERR_AGAIN (already in flight); CM_ERR_INVAL.
 */
int cp_authstore_begin_refresh(struct cp_authstore *st, const char *id,
                               struct cp_authstore_cred **ref);

/**
 * Ends @p id's refresh. @p resp (the token endpoint's JSON, @p len bytes, borrowed)
 * non-NULL = success: the answer is applied to a copy of the current file, written
 * back atomically (0600, unknown fields kept) and becomes the new snapshot; the content
 * hash is remembered so the watcher does not treat our write as a change. If the answer
 * is unusable it counts as a temporary failure (its cp_authfile_apply_refresh() code is
 * returned). If the write fails the new tokens are still used in memory (CM_ERR_IO).
 * @p resp NULL = failure: @p permanent != 0 marks the credential needs re-login
 * (cp_sched_set_relogin) until its file changes; else a retry is scheduled with backoff.
 * @p error (may be NULL; no tokens) is remembered for the list.
 * CM_ERR_NOTFOUND if the entry is gone or no longer valid; CM_ERR_CLOSED if the file was
 * replaced while the refresh ran (the answer is dropped). Blocking file I/O.
 */
int cp_authstore_finish_refresh(struct cp_authstore *st, const char *id, const char *resp,
                                size_t len, int permanent, const char *error);

/**
 * cp_authstore_finish_refresh() for iFlow's two-step refresh: on success the token answer
 * @p resp is applied and then, if @p userinfo (@p ulen bytes, borrowed) is not NULL,
 * iFlow's getUserInfo answer (cp_authfile_apply_iflow_userinfo(): the new api_key), and
 * the file is written once with both. A user-info answer that cannot be applied does
 * not lose the new tokens: they are kept and written (CM_OK), the old api_key stays and
 * the message is logged and remembered as the entry's error. Otherwise as
 * cp_authstore_finish_refresh().
 */
int cp_authstore_finish_refresh_ex(struct cp_authstore *st, const char *id, const char *resp,
                                   size_t len, const char *userinfo, size_t ulen, int permanent,
                                   const char *error);

/**
 * Built-in model lists (spec 3.1(f) by plan_type, 3.2(f), 3.3(f), 3.4(f), 3.5(f)) usable
 * as a models callback;
 * @p ud unused. CM_ERR_INVAL for other providers.
 */
int cp_authstore_default_models(const struct cp_authfile *af, const char *const **models, size_t *n,
                                void *ud);

#endif
