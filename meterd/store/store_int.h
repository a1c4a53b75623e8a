/* SPDX-License-Identifier: MIT */
/*
 * store_int.h - what the store's own files share, never included outside meterd/store/:
 * the connection type with its prepared-statement cache, the reader pool and the
 * write lock, the row mapper (column tables -> struct fields, one allocation per row
 * for all its strings), the SQLite dialect spot (the only SQLite-only SQL), and small
 * helpers (error mapping, LIKE patterns, datetime text for deleted_at).
 *
 * Names: mt_store__x is cross-file private (double underscore), file-local helpers are
 * static. Every helper here expects the caller to hold the connection it passes.
 */
#ifndef MT_STORE_INT_H
#define MT_STORE_INT_H

#include "store/store.h"
#include "store/writer.h"

#include "cm/buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct mt_log;
struct mt_channel;

/* ---- connections ---- */

#define MT_CONN_SLOTS 256 /* prepared statements cached per connection (open addressing) */

/**
 * One SQLite connection and its statement cache. Used by one thread at a time: the
 * writer connection under st->wmu, a reader between rd_get/rd_put, the version probe
 * under st->vmu.
 */
struct mt_conn {
    sqlite3 *db;
    struct mt_conn *next_free; /* reader pool free list */
    size_t n_cached;
    struct {
        const char *sql; /* key: the address of a static SQL string */
        sqlite3_stmt *st;
    } slots[MT_CONN_SLOTS];
};

struct mt_writer; /* writer.c */

struct mt_store {
    char *path;
    const struct cm_clock *clock;
    unsigned busy_ms;
    int sync_normal;

    pthread_mutex_t wmu; /* the one write connection; held for each write transaction */
    struct mt_conn *w;
    _Atomic uint64_t sync_commits; /* write transactions outside the writer thread */

    pthread_mutex_t rmu; /* reader pool */
    pthread_cond_t rcv;
    struct mt_conn **rconns; /* nr connections */
    unsigned nr;
    struct mt_conn *rfree;

    pthread_mutex_t vmu; /* data_version probe */
    struct mt_conn *v;

    struct mt_writer *wr;
    int mutexes_ready; /* bit 0 wmu, 1 rmu, 2 rcv, 3 vmu */
};

/** Opens one connection on st->path (writer: read-write, WAL, synchronous; reader: query_only). */
int mt_store__conn_open(struct mt_store *st, int writer, struct mt_conn **out);
/** Finalizes every cached statement and closes; NULL ok. */
void mt_store__conn_close(struct mt_conn *c);

/**
 * The cached statement for the static string @p sql (the key is its address, so pass
 * a static array, never a built string) on @p c, reset and with bindings cleared.
 * Borrowed: owned by the connection; call mt_store__done() when finished with it.
 */
int mt_store__stmt(struct mt_conn *c, const char *sql, sqlite3_stmt **out);
/** Resets @p s so it holds no read snapshot or lock (cached statements); NULL ok. */
void mt_store__done(sqlite3_stmt *s);
/** Prepares a one-off statement (dynamic SQL); finalize with sqlite3_finalize(). */
int mt_store__prepare(struct mt_conn *c, const char *sql, sqlite3_stmt **out);
/** Runs a cached no-result statement (BEGIN, COMMIT, SAVEPOINT ...). */
int mt_store__exec(struct mt_conn *c, const char *sql);

/** Maps an SQLite result code to enum cm_err (BUSY/LOCKED -> TIMEOUT, CONSTRAINT ->
 *  EXISTS, NOMEM -> NOMEM, others -> IO) and logs it with @p what (never values). */
int mt_store__err(struct mt_conn *c, int src, const char *what);

/** Reader pool: borrow a reader connection (blocks while all are busy) / give it back. */
struct mt_conn *mt_store__rd_get(struct mt_store *st);
void mt_store__rd_put(struct mt_store *st, struct mt_conn *c);

/** Synchronous write transaction on the writer connection: locks wmu, BEGIN. */
int mt_store__wr_begin(struct mt_store *st, struct mt_conn **out);
/** COMMIT if @p rc is CM_OK (a failed COMMIT rolls back and becomes the result), else
 *  ROLLBACK; unlocks wmu. Returns the final result. */
int mt_store__wr_end(struct mt_store *st, struct mt_conn *c, int rc);

/** Unix seconds from the store's clock. */
int64_t mt_store__now(const struct mt_store *st);
/** "YYYY-MM-DD HH:MM:SS.mmm+00:00" (the text GORM's SQLite driver writes) into @p buf. */
void mt_store__datetime(const struct mt_store *st, char *buf, size_t len);

/* ---- row mapper ---- */

enum mt_col_type {
    MT_C_I64,  /* int64_t */
    MT_C_INT,  /* int */
    MT_C_BOOL, /* int, stored 0/1 */
    MT_C_DBL,  /* double */
    MT_C_TEXT, /* const char *; NULL is written as '' (NewAPI's Go strings cannot hold NULL) */
    MT_C_TEXTN /* const char *; NULL stays NULL (unique / nullable columns) */
};

struct mt_col {
    const char *name; /* column name as selected (for the decode self-check) */
    size_t off;
    enum mt_col_type type;
};

/** A row struct: its columns (in SELECT order, id first) and where its _mem pointer is. */
struct mt_rowdesc {
    const struct mt_col *cols;
    size_t ncols;
    size_t size;    /* sizeof the struct */
    size_t mem_off; /* offsetof(struct, _mem) */
};

/**
 * Reads the current row of @p s (columns 0..ncols-1) into @p obj (zeroed first): numbers
 * directly, every string copied into one cm_malloc block stored in obj's _mem. A column
 * name that differs from the table is CM_ERR_INTERNAL (SQL and table out of step).
 * CM_ERR_NOMEM leaves obj zeroed.
 */
int mt_store__row_read(sqlite3_stmt *s, const struct mt_rowdesc *d, void *obj);
/** Frees obj's _mem and zeroes obj. */
void mt_store__row_cleanup(const struct mt_rowdesc *d, void *obj);
/** Binds columns [from, ncols) of @p obj to parameters first, first+1 ... Returns the
 *  next free parameter index, or -1 on a bind error. */
int mt_store__row_bind(sqlite3_stmt *s, const struct mt_rowdesc *d, size_t from, int first,
                       const void *obj);

/** A growing array of rows. */
struct mt_rows {
    void *items;
    size_t n, cap;
};
/** Steps @p s to the end, appending each row. CM_OK, CM_ERR_NOMEM, CM_ERR_IO ... On error
 *  the rows read so far stay in @p r (free with mt_store__rows_free). */
int mt_store__rows_read(struct mt_conn *c, sqlite3_stmt *s, const struct mt_rowdesc *d,
                        struct mt_rows *r);
void mt_store__rows_free(const struct mt_rowdesc *d, void *items, size_t n);

/** Steps a statement expected to give at most one row: CM_OK (row read into obj),
 *  CM_ERR_NOTFOUND, or an error. */
int mt_store__one(struct mt_conn *c, sqlite3_stmt *s, const struct mt_rowdesc *d, void *obj);
/** Steps a statement that returns one integer (count, sum, id). NOTFOUND if no row. */
int mt_store__int(struct mt_conn *c, sqlite3_stmt *s, int64_t *out);
/** Steps a statement without result rows; *changes (may be NULL) gets the rows changed. */
int mt_store__run(struct mt_conn *c, sqlite3_stmt *s, int64_t *changes);

/**
 * Binds the variadic values after @p fmt to parameters first, first+1 ...; one letter
 * per value: 'I' int64_t, 'i' int, 'f' double, 's' const char * (NULL binds ''),
 * 'n' const char * (NULL binds NULL). Returns the next parameter index, -1 on error.
 */
int mt_store__bindv(sqlite3_stmt *s, int first, const char *fmt, va_list ap);

/* One-call helpers over a cached statement (static @p sql) with mt_store__bindv values. */
/** A write in its own transaction; *changes (may be NULL) = rows changed. */
int mt_store__write(struct mt_store *st, const char *sql, int64_t *changes, const char *fmt, ...);
/** Like mt_store__write, on @p c inside the caller's transaction. */
int mt_store__write_on(struct mt_conn *c, const char *sql, int64_t *changes, const char *fmt, ...);
/** A read of at most one row into @p obj on a pooled reader. CM_ERR_NOTFOUND if none. */
int mt_store__read_one(struct mt_store *st, const char *sql, const struct mt_rowdesc *d, void *obj,
                       const char *fmt, ...);
/** A read of one integer (count, sum). */
int mt_store__read_int(struct mt_store *st, const char *sql, int64_t *out, const char *fmt, ...);
/** Like mt_store__read_int, on @p c (e.g. inside a write transaction). */
int mt_store__read_int_on(struct mt_conn *c, const char *sql, int64_t *out, const char *fmt, ...);
/** A read of every row into @p r (on error r keeps what was read; free it). */
int mt_store__read_rows(struct mt_store *st, const char *sql, const struct mt_rowdesc *d,
                        struct mt_rows *r, const char *fmt, ...);
/** A write in its own transaction that must change a row: CM_ERR_NOTFOUND if none did. */
int mt_store__write_one(struct mt_store *st, const char *sql, const char *fmt, ...);
/** Soft delete: like mt_store__write_one with the current datetime text (deleted_at, see
 *  mt_store__datetime) bound as parameter 1, the @p fmt values after it. */
int mt_store__soft_delete(struct mt_store *st, const char *sql, const char *fmt, ...);
/**
 * A count and one page on one pooled reader: @p count_sql with the @p fmt values into
 * *total, then @p list_sql (ending in "LIMIT ? OFFSET ?") with the same values, then
 * limit and offset, into @p r (on error r keeps what was read; free it).
 */
int mt_store__read_page(struct mt_store *st, const char *count_sql, const char *list_sql,
                        const struct mt_rowdesc *d, int64_t offset, int limit, struct mt_rows *r,
                        int64_t *total, const char *fmt, ...);
/** Checks a list limit (1..MT_STORE_LIST_MAX) and offset (>= 0). */
int mt_store__check_page(int64_t offset, int limit);

/* ---- dynamic WHERE clauses (admin filters): fixed fragments, every value bound ---- */

#define MT_WHERE_MAX_VALUES 24

struct mt_where {
    struct cm_buf sql; /* " WHERE a AND b ..." or "" */
    int n;
    struct {
        char t; /* 'I' int64, 's' text */
        int64_t i;
        const char *s;
        char *owned; /* freed by cleanup */
    } v[MT_WHERE_MAX_VALUES];
};

void mt_store__where_init(struct mt_where *w);
void mt_store__where_cleanup(struct mt_where *w);
/**
 * Appends " AND (<clause>)" (the first becomes " WHERE (...)") with its values: 'I'
 * int64_t, 's' const char * (borrowed until the query ran), 'o' char * owned (taken, also
 * on failure). CM_ERR_NOMEM, CM_ERR_LIMIT.
 */
int mt_store__where(struct mt_where *w, const char *clause, const char *fmt, ...);
/** Runs "<select><where><tail> LIMIT ? OFFSET ?" (limit 0: no LIMIT) on @p c into @p r. */
int mt_store__where_rows(struct mt_conn *c, const char *select, const struct mt_where *w,
                         const char *tail, int64_t offset, int limit, const struct mt_rowdesc *d,
                         struct mt_rows *r);
/** Runs "<select><where><tail>" returning one integer (count, sum). */
int mt_store__where_int(struct mt_conn *c, const char *select, const struct mt_where *w,
                        const char *tail, int64_t *out);
/** A count and one page on one pooled reader: "<count_sql><where>" into *total, then
 *  mt_store__where_rows(select, w, tail, offset, limit) into @p r. */
int mt_store__where_page(struct mt_store *st, const char *count_sql, const char *select,
                         const struct mt_where *w, const char *tail, int64_t offset, int limit,
                         const struct mt_rowdesc *d, struct mt_rows *r, int64_t *total);

/** Binds a string; NULL binds '' (or NULL when @p nullable). */
int mt_store__bind_text(sqlite3_stmt *s, int i, const char *v, int nullable);

/**
 * The LIKE pattern for a user search string: '!' and '_' escaped with '!' (use
 * "LIKE ? ESCAPE '!'"), '%' kept as the wildcard. @p wrap: add '%' on both sides
 * (substring search). Caller frees *out with cm_free().
 */
int mt_store__like(const char *s, int wrap, char **out);

/** 1 and *v if @p s is a non-empty run of at most 18 digits (an id typed as a search
 *  keyword), else 0 (*v untouched). */
int mt_store__parse_id(const char *s, int64_t *v);

/** On error frees the rows in @p r (and empties it); returns @p rc. */
int mt_store__rows_keep(int rc, const struct mt_rowdesc *d, struct mt_rows *r);

/** Appends " LIMIT ? OFFSET ?" (the one paging form SQLite and PostgreSQL share). */
int mt_store__sql_page(struct cm_buf *b);

/* ---- the SQLite dialect spot (sqlite_dialect.c): the only SQLite-only SQL ---- */

/* Write transactions take the write lock at once (no deadlock-prone lock upgrade). */
#define MT_SQL_BEGIN_WRITE "BEGIN IMMEDIATE"
/* Booleans are 0/1 in NewAPI's SQLite (and MySQL) databases; a PostgreSQL backend
 * would write TRUE/FALSE here. */
#define MT_SQL_TRUE "1"
#define MT_SQL_FALSE "0"

/** Per-connection settings after open: busy timeout, WAL + synchronous for the writer,
 *  query_only for readers. */
int mt_dialect__configure(struct mt_store *st, struct mt_conn *c, int writer);
/** 1 if table @p t exists. */
int mt_dialect__table_exists(struct mt_conn *c, const char *t, int *out);
/** Column names of table @p t as one string "|a|b|c|" (caller frees with cm_free). */
int mt_dialect__columns(struct mt_conn *c, const char *t, char **out);
/** The SQLite type name for a portable type token ("INT", "BOOL", "DATETIME", "VARCHAR(64)"...). */
const char *mt_dialect__type(const char *portable);
/** Creates the change-counter triggers (idempotent). In the migration transaction. */
int mt_dialect__triggers(struct mt_conn *c);
/** PRAGMA data_version of @p c. */
int mt_dialect__data_version(struct mt_conn *c, int64_t *out);
/** PRAGMA user_version get / set (the schema version of meterd's migrations). */
int mt_dialect__user_version(struct mt_conn *c, int64_t *out);
int mt_dialect__set_user_version(struct mt_conn *c, int64_t v);

/* ---- schema.c ---- */

/** Runs every migration in one write transaction on the writer connection (serial). */
int mt_store__migrate(struct mt_store *st);

/* ---- writer.c ---- */

int mt_store__writer_start(struct mt_store *st, const struct mt_store_opts *o);
/** Stops accepting, drains every queued op, joins the thread, frees the writer. */
void mt_store__writer_stop(struct mt_store *st);

/* ---- per-table internals the writer and other tables reuse ---- */

extern const struct mt_rowdesc mt_store__log_desc;
/** Inserts a log row on @p c (inside the caller's transaction); created_at 0 -> now. */
int mt_store__log_insert(struct mt_store *st, struct mt_conn *c, const struct mt_log *l,
                         int64_t *id);
/** quota_data hourly upsert on @p c (inside the caller's transaction). */
int mt_store__quota_data_add(struct mt_conn *c, int64_t user_id, const char *username,
                             const char *model_name, int64_t created_at, int64_t token_used,
                             int64_t quota);
/** Rebuilds the abilities of one channel on @p c (inside the caller's transaction). */
int mt_store__abilities_rebuild(struct mt_conn *c, const struct mt_channel *ch);

#endif
