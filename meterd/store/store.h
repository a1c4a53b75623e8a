/* SPDX-License-Identifier: MIT */
/*
 * store.h - meterd's storage: the only place with SQL. NewAPI's tables and columns on
 * SQLite (spec newapi.md 1), so meterd opens a database NewAPI created and carries on.
 *
 * Design
 *  - Schema: users, tokens, channels, abilities, logs, options, redemptions, setups,
 *    top_ups, quota_data, with NewAPI's names, types and encodings (unix seconds, status
 *    codes, token keys without "sk-", booleans 0/1, JSON in text columns, soft delete
 *    by deleted_at). Plus one table of our own, mt_changes (change counters, below).
 *    Other NewAPI tables in an existing file are left alone.
 *  - Migrations (schema.c) run at open, serially, in ONE write transaction: a missing
 *    table is created with NewAPI's DDL; an existing one gets its missing columns added
 *    (ALTER TABLE ADD COLUMN, never dropping or retyping), then every index (IF NOT
 *    EXISTS), then the counters and their triggers. Columns are addressed by name only.
 *  - SQLite in WAL mode, busy timeout 5000 ms by default (a real one: sqlite3_busy_timeout
 *    on every connection), synchronous=FULL on the writer (each commit is durable; group
 *    commit keeps the fsync count low) unless opts.sync_normal.
 *  - Connections and threads:
 *      one writer connection, guarded by a mutex (wmu). The group-commit writer thread
 *        (writer.h) runs request-path ops on it in batches; synchronous writes (admin
 *        API: users, tokens, channels, options ...) take the same mutex for their own
 *        short transaction. So meterd never contends with itself for SQLite's write lock;
 *        only outside processes (sqlite3 CLI, NewAPI) can, and the busy timeout covers them.
 *      a pool of reader connections (opts.readers, default 4; query_only); every read
 *        function borrows one for the call (WAL lets them read while the writer writes)
 *        and blocks while all are busy.
 *      one probe connection for mt_store_data_version().
 *    Each connection caches its prepared statements (keyed by the static SQL string).
 *    Every function in the store's headers is thread-safe unless it says otherwise;
 *    mt_store_open/close are not (one owner, no calls in flight at close).
 *  - Balances change by relative SQL only (quota = quota - ?), so an operator's direct
 *    write and ours compose; reserving is one conditional UPDATE (... WHERE quota >= ?)
 *    run by the single writer, so no overdraw under any concurrency (NewAPI #5690).
 *  - Outside writes (an operator's UPDATE, NewAPI on the same file) are seen by caches
 *    through two checks the store offers:
 *      mt_store_data_version(): PRAGMA data_version on the probe connection, which moves
 *        whenever any other connection (ours included) commits. Costs no SQL I/O; poll it
 *        every second or so and look further only when it moved.
 *      mt_store_changes(): per-table counters in mt_changes, bumped by triggers (created
 *        by the migration, so they fire for writes from ANY program) on every insert /
 *        delete and on updates of the columns a cache holds: all of options, channels
 *        (not used_quota / balance / test fields), abilities, users (not quota, used_quota,
 *        request_count, last_login_at), tokens (not remain_quota, used_quota,
 *        accessed_time). A cache reloads a table when its counter moved. Balances are
 *        never cached: reserve reads them in the database.
 *  - Portability: SQL text is standard (double-quoted "group"/"key", LIMIT/OFFSET,
 *    INSERT ... ON CONFLICT, RETURNING id) so a PostgreSQL backend behind SQL_DSN can
 *    reuse it; SQLite-only statements (PRAGMAs, trigger bodies, BEGIN IMMEDIATE, the
 *    boolean literals, type names) live in one marked spot: sqlite_dialect.c and the
 *    "dialect spot" section of store_int.h.
 *
 * Ownership conventions for every row struct (struct mt_user, mt_token, mt_channel,
 * mt_log ...): string fields are const char *. A struct the store fills owns all its
 * strings through its private _mem block; release it with the struct's _cleanup (which
 * zeroes it). A struct passed in (insert / update) is only read: its strings are
 * borrowed for the call and _mem is ignored. Lists (struct mt_x_list) own their items;
 * release with mt_x_list_cleanup(). Out-params are written only on success.
 */
#ifndef MT_STORE_H
#define MT_STORE_H

#include "cm/clock.h"

#include <stddef.h>
#include <stdint.h>

#define MT_STORE_SCHEMA_VERSION 1     /* PRAGMA user_version after our migrations */
#define MT_STORE_BUSY_TIMEOUT_MS 5000 /* default busy timeout per connection */
#define MT_STORE_READERS_DEFAULT 4    /* reader connections */
#define MT_STORE_READERS_MAX 64
#define MT_STORE_DEFAULT_FILE "one-api.db" /* NewAPI's default, relative to the CWD */
#define MT_STORE_LIST_MAX 1000             /* the most rows one list call returns */

struct mt_store; /* opaque */

struct mt_store_opts {
    unsigned busy_timeout_ms; /* 0: MT_STORE_BUSY_TIMEOUT_MS */
    unsigned readers;         /* 0: MT_STORE_READERS_DEFAULT; capped at MT_STORE_READERS_MAX */
    unsigned batch_max;       /* writer: most ops per transaction; 0: MT_STORE_BATCH_MAX_DEFAULT */
    int batch_linger_ms;      /* writer: wait up to this long for a batch to fill; 0: default
                                 (MT_STORE_LINGER_MS_DEFAULT = none), <0: none */
    unsigned queue_max;       /* writer: most queued ops; 0: MT_STORE_QUEUE_MAX_DEFAULT */
    int sync_normal;          /* 1: synchronous=NORMAL (faster, may lose the last commits on
                                 power loss; never corrupts) */
    const struct cm_clock *clock; /* borrowed, outlives the store; NULL: the real clock */
};

/**
 * Opens (creating if needed) the SQLite database at @p path (borrowed; copied), runs the
 * migrations, opens the reader pool and starts the writer thread. @p opts may be NULL.
 * *@p out is freed with mt_store_close(). CM_OK; CM_ERR_INVAL (NULL path/out); CM_ERR_IO
 * (cannot open, not a database, a migration failed; logged); CM_ERR_TIMEOUT (another
 * process held the write lock longer than the busy timeout); CM_ERR_NOMEM. On error
 * nothing is left open.
 */
int mt_store_open(const char *path, const struct mt_store_opts *opts, struct mt_store **out);

/**
 * Stops the writer after it has run (and committed) every op already submitted, runs
 * their callbacks, then closes every connection and frees the store. NULL is a no-op.
 * No other call on @p st may be in flight or follow.
 */
void mt_store_close(struct mt_store *st);

/**
 * NewAPI's file choice: $SQLITE_PATH if set and not empty, without any "?query" part
 * (NewAPI DSNs may carry "?_busy_timeout=..."), else MT_STORE_DEFAULT_FILE. Writes it to
 * @p buf (@p len bytes). CM_OK; CM_ERR_LIMIT if it does not fit; CM_ERR_INVAL.
 */
int mt_store_default_path(char *buf, size_t len);

/** The schema version recorded in the database (MT_STORE_SCHEMA_VERSION after open). */
int mt_store_schema_version(struct mt_store *st, int64_t *out);

/**
 * A number that changes whenever any connection other than the probe commits to the
 * database (PRAGMA data_version): meterd's own writer, the sqlite3 CLI, NewAPI. Compare
 * with the value seen last; equal means nothing was committed since. Cheap (no SQL I/O).
 */
int mt_store_data_version(struct mt_store *st, uint64_t *out);

/** Per-table change counters (see the design note): a moved counter means reload. */
struct mt_store_changes {
    int64_t options, channels, abilities, users, tokens;
};
int mt_store_changes(struct mt_store *st, struct mt_store_changes *out);

/** Unix seconds from the store's clock. */
int64_t mt_store_now(const struct mt_store *st);

/* the tables */
#include "store/channels.h"
#include "store/logs.h"
#include "store/options.h"
#include "store/quota_data.h"
#include "store/redemptions.h"
#include "store/setups.h"
#include "store/tokens.h"
#include "store/topups.h"
#include "store/users.h"
#include "store/writer.h"

#endif
