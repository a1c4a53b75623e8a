/* SPDX-License-Identifier: MIT */
/*
 * store.c - open/close, the connections (writer, reader pool, version probe) and their
 * statement caches, the transaction helpers, the row mapper and small shared helpers.
 * The design is in store.h; table SQL lives in the per-table files, SQLite-only SQL in
 * sqlite_dialect.c.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- connections and the statement cache ---- */

int mt_store__conn_open(struct mt_store *st, int writer, struct mt_conn **out)
{
    int rc = CM_OK;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    struct mt_conn *c = cm_calloc(1, sizeof(*c));
    int src;

    if (!c)
        return CM_ERR_NOMEM;
    if (writer && strcmp(st->path, ":memory:") != 0 && strncmp(st->path, "file:", 5) != 0) {
        /* a new database file is created 0600 (SQLite would make it 0644, and gives its
           -wal/-shm the database's mode); an existing file keeps its mode */
        int fd = open(st->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    src = sqlite3_open_v2(st->path, &c->db, flags, NULL);
    if (src != SQLITE_OK) {
        cm_log_error(NULL, "store: cannot open the database: %s",
                     c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        rc = src == SQLITE_NOMEM ? CM_ERR_NOMEM : CM_ERR_IO;
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    rc = mt_dialect__configure(st, c, writer);
out:
    if (rc) {
        mt_store__conn_close(c);
        return rc;
    }
    *out = c;
    return CM_OK;
}

void mt_store__conn_close(struct mt_conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < MT_CONN_SLOTS; i++)
        if (c->slots[i].st)
            sqlite3_finalize(c->slots[i].st);
    if (c->db)
        sqlite3_close(c->db);
    cm_free(c);
}

static size_t slot_of(const char *sql)
{
    uint64_t h = (uint64_t)(uintptr_t)sql;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)(h % MT_CONN_SLOTS);
}

int mt_store__stmt(struct mt_conn *c, const char *sql, sqlite3_stmt **out)
{
    size_t i = slot_of(sql);
    int src;

    for (size_t probe = 0; probe < MT_CONN_SLOTS; probe++, i = (i + 1) % MT_CONN_SLOTS) {
        if (c->slots[i].sql == sql) {
            sqlite3_reset(c->slots[i].st);
            sqlite3_clear_bindings(c->slots[i].st);
            *out = c->slots[i].st;
            return CM_OK;
        }
        if (!c->slots[i].sql)
            break;
    }
    if (c->slots[i].sql || c->n_cached >= MT_CONN_SLOTS * 3 / 4) {
        cm_log_error(NULL, "store: statement cache full (%zu)", c->n_cached);
        return CM_ERR_INTERNAL;
    }
    src = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->slots[i].st, NULL);
    if (src != SQLITE_OK)
        return mt_store__err(c, src, "prepare");
    c->slots[i].sql = sql;
    c->n_cached++;
    *out = c->slots[i].st;
    return CM_OK;
}

void mt_store__done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

int mt_store__prepare(struct mt_conn *c, const char *sql, sqlite3_stmt **out)
{
    int src = sqlite3_prepare_v2(c->db, sql, -1, out, NULL);
    if (src != SQLITE_OK) {
        *out = NULL;
        return mt_store__err(c, src, "prepare");
    }
    return CM_OK;
}

int mt_store__exec(struct mt_conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = mt_store__stmt(c, sql, &s);
    if (rc)
        return rc;
    rc = mt_store__run(c, s, NULL);
    mt_store__done(s);
    return rc;
}

int mt_store__err(struct mt_conn *c, int src, const char *what)
{
    int prim = src & 0xff;
    const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src);

    switch (prim) {
    case SQLITE_NOMEM:
        return CM_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        cm_log_warn(NULL, "store: %s: database busy: %s", what, msg);
        return CM_ERR_TIMEOUT;
    case SQLITE_CONSTRAINT:
        cm_log_debug(NULL, "store: %s: %s", what, msg);
        if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY)
            return CM_ERR_EXISTS;
        return CM_ERR_INVAL;
    default:
        cm_log_error(NULL, "store: %s: %s (%d)", what, msg, src);
        return CM_ERR_IO;
    }
}

/* ---- reader pool and write transactions ---- */

struct mt_conn *mt_store__rd_get(struct mt_store *st)
{
    struct mt_conn *c;
    pthread_mutex_lock(&st->rmu);
    while (!st->rfree)
        pthread_cond_wait(&st->rcv, &st->rmu);
    c = st->rfree;
    st->rfree = c->next_free;
    pthread_mutex_unlock(&st->rmu);
    return c;
}

void mt_store__rd_put(struct mt_store *st, struct mt_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&st->rmu);
    c->next_free = st->rfree;
    st->rfree = c;
    pthread_cond_signal(&st->rcv);
    pthread_mutex_unlock(&st->rmu);
}

static const char SQL_BEGIN[] = MT_SQL_BEGIN_WRITE;
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

int mt_store__wr_begin(struct mt_store *st, struct mt_conn **out)
{
    int rc;
    pthread_mutex_lock(&st->wmu);
    rc = mt_store__exec(st->w, SQL_BEGIN);
    if (rc) {
        pthread_mutex_unlock(&st->wmu);
        return rc;
    }
    *out = st->w;
    return CM_OK;
}

int mt_store__wr_end(struct mt_store *st, struct mt_conn *c, int rc)
{
    if (rc == CM_OK) {
        rc = mt_store__exec(c, SQL_COMMIT);
        if (rc == CM_OK)
            st->sync_commits++;
    }
    if (rc && !sqlite3_get_autocommit(c->db))
        mt_store__exec(c, SQL_ROLLBACK);
    pthread_mutex_unlock(&st->wmu);
    return rc;
}

int64_t mt_store__now(const struct mt_store *st)
{
    return cm_clock_wall_s(st->clock);
}

int64_t mt_store_now(const struct mt_store *st)
{
    return mt_store__now(st);
}

void mt_store__datetime(const struct mt_store *st, char *buf, size_t len)
{
    int64_t ms = cm_clock_wall_ms(st->clock);
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* every field reduced to its width, so the optimiser can prove the text fits */
    snprintf(buf, len, "%04u-%02u-%02u %02u:%02u:%02u.%03u+00:00",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000) % 1000u);
}

/* ---- row mapper ---- */

#define MT_ROW_MAX_COLS 64

int mt_store__row_read(sqlite3_stmt *s, const struct mt_rowdesc *d, void *obj)
{
    const unsigned char *txt[MT_ROW_MAX_COLS];
    size_t lens[MT_ROW_MAX_COLS];
    size_t total = 0;
    char *mem = NULL, *p;
    char *base = obj;

    if (d->ncols > MT_ROW_MAX_COLS || (size_t)sqlite3_column_count(s) < d->ncols)
        return CM_ERR_INTERNAL;
    memset(obj, 0, d->size);
    for (size_t i = 0; i < d->ncols; i++) {
        const char *name = sqlite3_column_name(s, (int)i);
        txt[i] = NULL;
        lens[i] = 0;
        if (!name || strcmp(name, d->cols[i].name) != 0) {
            cm_log_error(NULL, "store: column %zu is \"%s\", expected \"%s\"", i, name ? name : "?",
                         d->cols[i].name);
            return CM_ERR_INTERNAL;
        }
        if (d->cols[i].type != MT_C_TEXT && d->cols[i].type != MT_C_TEXTN)
            continue;
        if (sqlite3_column_type(s, (int)i) == SQLITE_NULL && d->cols[i].type == MT_C_TEXTN)
            continue;
        txt[i] = sqlite3_column_text(s, (int)i);
        if (!txt[i] && sqlite3_column_type(s, (int)i) != SQLITE_NULL)
            return CM_ERR_NOMEM; /* SQLite could not convert */
        lens[i] = txt[i] ? (size_t)sqlite3_column_bytes(s, (int)i) : 0;
        total += lens[i] + 1;
    }
    if (total) {
        mem = cm_malloc(total);
        if (!mem)
            return CM_ERR_NOMEM;
    }
    p = mem;
    for (size_t i = 0; i < d->ncols; i++) {
        void *f = base + d->cols[i].off;
        switch (d->cols[i].type) {
        case MT_C_I64:
            *(int64_t *)f = sqlite3_column_int64(s, (int)i);
            break;
        case MT_C_INT:
            *(int *)f = sqlite3_column_int(s, (int)i);
            break;
        case MT_C_BOOL:
            *(int *)f = sqlite3_column_int(s, (int)i) != 0;
            break;
        case MT_C_DBL:
            *(double *)f = sqlite3_column_double(s, (int)i);
            break;
        case MT_C_TEXT:
        case MT_C_TEXTN:
            if (sqlite3_column_type(s, (int)i) == SQLITE_NULL && d->cols[i].type == MT_C_TEXTN)
                break;
            if (lens[i])
                memcpy(p, txt[i], lens[i]);
            p[lens[i]] = '\0';
            *(const char **)f = p;
            p += lens[i] + 1;
            break;
        }
    }
    *(void **)(base + d->mem_off) = mem;
    return CM_OK;
}

void mt_store__row_cleanup(const struct mt_rowdesc *d, void *obj)
{
    if (!obj)
        return;
    cm_free(*(void **)((char *)obj + d->mem_off));
    memset(obj, 0, d->size);
}

int mt_store__bind_text(sqlite3_stmt *s, int i, const char *v, int nullable)
{
    if (!v && nullable)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_STATIC);
}

int mt_store__row_bind(sqlite3_stmt *s, const struct mt_rowdesc *d, size_t from, int first,
                       const void *obj)
{
    const char *base = obj;
    int idx = first;

    for (size_t i = from; i < d->ncols; i++, idx++) {
        const void *f = base + d->cols[i].off;
        int src = SQLITE_OK;
        switch (d->cols[i].type) {
        case MT_C_I64:
            src = sqlite3_bind_int64(s, idx, *(const int64_t *)f);
            break;
        case MT_C_INT:
            src = sqlite3_bind_int(s, idx, *(const int *)f);
            break;
        case MT_C_BOOL:
            src = sqlite3_bind_int(s, idx, *(const int *)f != 0);
            break;
        case MT_C_DBL:
            src = sqlite3_bind_double(s, idx, *(const double *)f);
            break;
        case MT_C_TEXT:
        case MT_C_TEXTN:
            src =
                mt_store__bind_text(s, idx, *(const char *const *)f, d->cols[i].type == MT_C_TEXTN);
            break;
        }
        if (src != SQLITE_OK)
            return -1;
    }
    return idx;
}

int mt_store__rows_read(struct mt_conn *c, sqlite3_stmt *s, const struct mt_rowdesc *d,
                        struct mt_rows *r)
{
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        int rc;
        if (r->n == r->cap) {
            size_t ncap = r->cap ? r->cap * 2 : 16;
            void *ni = cm_realloc(r->items, ncap * d->size);
            if (!ni)
                return CM_ERR_NOMEM;
            r->items = ni;
            r->cap = ncap;
        }
        rc = mt_store__row_read(s, d, (char *)r->items + r->n * d->size);
        if (rc)
            return rc;
        r->n++;
    }
    if (src != SQLITE_DONE)
        return mt_store__err(c, src, "read rows");
    return CM_OK;
}

void mt_store__rows_free(const struct mt_rowdesc *d, void *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mt_store__row_cleanup(d, (char *)items + i * d->size);
    cm_free(items);
}

int mt_store__one(struct mt_conn *c, sqlite3_stmt *s, const struct mt_rowdesc *d, void *obj)
{
    int src = sqlite3_step(s);
    if (src == SQLITE_DONE)
        return CM_ERR_NOTFOUND;
    if (src != SQLITE_ROW)
        return mt_store__err(c, src, "read row");
    return mt_store__row_read(s, d, obj);
}

int mt_store__int(struct mt_conn *c, sqlite3_stmt *s, int64_t *out)
{
    int src = sqlite3_step(s);
    if (src == SQLITE_DONE)
        return CM_ERR_NOTFOUND;
    if (src != SQLITE_ROW)
        return mt_store__err(c, src, "read value");
    *out = sqlite3_column_int64(s, 0);
    return CM_OK;
}

int mt_store__run(struct mt_conn *c, sqlite3_stmt *s, int64_t *changes)
{
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        ;
    if (src != SQLITE_DONE)
        return mt_store__err(c, src, "write");
    if (changes)
        *changes = sqlite3_changes64(c->db);
    return CM_OK;
}

/* ---- one-call helpers ---- */

int mt_store__bindv(sqlite3_stmt *s, int first, const char *fmt, va_list ap)
{
    int idx = first;
    for (const char *f = fmt; *f; f++, idx++) {
        int src = SQLITE_ERROR;
        switch (*f) {
        case 'I':
            src = sqlite3_bind_int64(s, idx, va_arg(ap, int64_t));
            break;
        case 'i':
            src = sqlite3_bind_int(s, idx, va_arg(ap, int));
            break;
        case 'f':
            src = sqlite3_bind_double(s, idx, va_arg(ap, double));
            break;
        case 's':
            src = mt_store__bind_text(s, idx, va_arg(ap, const char *), 0);
            break;
        case 'n':
            src = mt_store__bind_text(s, idx, va_arg(ap, const char *), 1);
            break;
        default:
            break;
        }
        if (src != SQLITE_OK)
            return -1;
    }
    return idx;
}

/*
 * What one cached statement does once bound (one of): read one row into obj, read every
 * row into r, read one integer into ival, or run as a write counting changes.
 */
struct step {
    const char *pre; /* bound as parameter 1 before the fmt values, or NULL */
    const struct mt_rowdesc *d;
    void *obj;
    struct mt_rows *r;
    int64_t *ival;
    int64_t *changes; /* may be NULL */
    int page;         /* bind limit, offset after the values */
    int limit;
    int64_t offset;
};

static int vstep_on(struct mt_conn *c, const char *sql, const struct step *p, const char *fmt,
                    va_list ap)
{
    sqlite3_stmt *s = NULL;
    int idx = 1;
    int rc = mt_store__stmt(c, sql, &s);

    if (rc)
        return rc;
    if (p->pre && mt_store__bind_text(s, idx++, p->pre, 0) != SQLITE_OK)
        idx = -1;
    if (idx > 0)
        idx = mt_store__bindv(s, idx, fmt, ap);
    if (idx > 0 && p->page) {
        sqlite3_bind_int(s, idx, p->limit);
        sqlite3_bind_int64(s, idx + 1, p->offset);
    }
    if (idx < 0)
        rc = mt_store__err(c, sqlite3_errcode(c->db), "bind");
    else if (p->obj)
        rc = mt_store__one(c, s, p->d, p->obj);
    else if (p->r)
        rc = mt_store__rows_read(c, s, p->d, p->r);
    else if (p->ival)
        rc = mt_store__int(c, s, p->ival);
    else
        rc = mt_store__run(c, s, p->changes);
    mt_store__done(s);
    return rc;
}

/* vstep_on on a pooled reader. */
static int vstep_rd(struct mt_store *st, const char *sql, const struct step *p, const char *fmt,
                    va_list ap)
{
    struct mt_conn *c = mt_store__rd_get(st);
    int rc = vstep_on(c, sql, p, fmt, ap);
    mt_store__rd_put(st, c);
    return rc;
}

/* vstep_on in its own write transaction; @p must_change: no changed row is NOTFOUND. */
static int vstep_wr(struct mt_store *st, const char *sql, struct step *p, int must_change,
                    const char *fmt, va_list ap)
{
    struct mt_conn *c = NULL;
    int64_t n = 0;
    int rc = mt_store__wr_begin(st, &c);

    if (rc)
        return rc;
    if (!p->changes)
        p->changes = &n;
    rc = vstep_on(c, sql, p, fmt, ap);
    if (rc == CM_OK && must_change && *p->changes == 0)
        rc = CM_ERR_NOTFOUND;
    return mt_store__wr_end(st, c, rc);
}

/* The body of a variadic one-call helper: @p call (which reads ap) between va_start and
 * va_end on the helper's last parameter, fmt. */
#define STEP_VA(call)                                                                              \
    do {                                                                                           \
        va_list ap;                                                                                \
        int rc_;                                                                                   \
        va_start(ap, fmt);                                                                         \
        rc_ = (call);                                                                              \
        va_end(ap);                                                                                \
        return rc_;                                                                                \
    } while (0)

int mt_store__write_on(struct mt_conn *c, const char *sql, int64_t *changes, const char *fmt, ...)
{
    struct step p = {.changes = changes};
    STEP_VA(vstep_on(c, sql, &p, fmt, ap));
}

int mt_store__write(struct mt_store *st, const char *sql, int64_t *changes, const char *fmt, ...)
{
    struct step p = {.changes = changes};
    STEP_VA(vstep_wr(st, sql, &p, 0, fmt, ap));
}

int mt_store__write_one(struct mt_store *st, const char *sql, const char *fmt, ...)
{
    struct step p = {0};
    STEP_VA(vstep_wr(st, sql, &p, 1, fmt, ap));
}

int mt_store__soft_delete(struct mt_store *st, const char *sql, const char *fmt, ...)
{
    char now[40];
    struct step p = {.pre = now};
    mt_store__datetime(st, now, sizeof(now));
    STEP_VA(vstep_wr(st, sql, &p, 1, fmt, ap));
}

int mt_store__read_one(struct mt_store *st, const char *sql, const struct mt_rowdesc *d, void *obj,
                       const char *fmt, ...)
{
    struct step p = {.d = d, .obj = obj};
    STEP_VA(vstep_rd(st, sql, &p, fmt, ap));
}

int mt_store__read_int_on(struct mt_conn *c, const char *sql, int64_t *out, const char *fmt, ...)
{
    struct step p = {.ival = out};
    STEP_VA(vstep_on(c, sql, &p, fmt, ap));
}

int mt_store__read_int(struct mt_store *st, const char *sql, int64_t *out, const char *fmt, ...)
{
    struct step p = {.ival = out};
    STEP_VA(vstep_rd(st, sql, &p, fmt, ap));
}

int mt_store__read_rows(struct mt_store *st, const char *sql, const struct mt_rowdesc *d,
                        struct mt_rows *r, const char *fmt, ...)
{
    struct step p = {.d = d, .r = r};
    STEP_VA(vstep_rd(st, sql, &p, fmt, ap));
}

int mt_store__read_page(struct mt_store *st, const char *count_sql, const char *list_sql,
                        const struct mt_rowdesc *d, int64_t offset, int limit, struct mt_rows *r,
                        int64_t *total, const char *fmt, ...)
{
    struct step pc = {.ival = total};
    struct step pl = {.d = d, .r = r, .page = 1, .limit = limit, .offset = offset};
    struct mt_conn *c = mt_store__rd_get(st);
    va_list ap, ap2;
    int rc;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    rc = vstep_on(c, count_sql, &pc, fmt, ap);
    if (rc == CM_OK)
        rc = vstep_on(c, list_sql, &pl, fmt, ap2);
    va_end(ap2);
    va_end(ap);
    mt_store__rd_put(st, c);
    return rc;
}

int mt_store__check_page(int64_t offset, int limit)
{
    if (offset < 0 || limit < 1 || limit > MT_STORE_LIST_MAX)
        return CM_ERR_INVAL;
    return CM_OK;
}

/* ---- dynamic WHERE ---- */

void mt_store__where_init(struct mt_where *w)
{
    memset(w, 0, sizeof(*w));
    cm_buf_init(&w->sql, 1 << 14);
}

void mt_store__where_cleanup(struct mt_where *w)
{
    for (int i = 0; i < w->n; i++)
        cm_free(w->v[i].owned);
    cm_buf_cleanup(&w->sql);
    w->n = 0;
}

int mt_store__where(struct mt_where *w, const char *clause, const char *fmt, ...)
{
    va_list ap;
    int rc = CM_OK;

    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (w->n >= MT_WHERE_MAX_VALUES) {
            if (*f == 'o')
                cm_free(va_arg(ap, char *));
            else if (*f == 'I')
                (void)va_arg(ap, int64_t);
            else
                (void)va_arg(ap, const char *);
            rc = CM_ERR_LIMIT;
            continue;
        }
        switch (*f) {
        case 'I':
            w->v[w->n].t = 'I';
            w->v[w->n].i = va_arg(ap, int64_t);
            break;
        case 's':
            w->v[w->n].t = 's';
            w->v[w->n].s = va_arg(ap, const char *);
            break;
        case 'o':
            w->v[w->n].t = 's';
            w->v[w->n].owned = va_arg(ap, char *);
            w->v[w->n].s = w->v[w->n].owned;
            break;
        default:
            rc = CM_ERR_INTERNAL;
            continue;
        }
        w->n++;
    }
    va_end(ap);
    if (rc == CM_OK)
        rc = cm_buf_appendf(&w->sql, "%s(%s)", w->sql.len ? " AND " : " WHERE ", clause);
    return rc;
}

/* Builds "<select><where><tail>[ LIMIT ? OFFSET ?]", prepares it and binds the values. */
static int where_prepare(struct mt_conn *c, const char *select, const struct mt_where *w,
                         const char *tail, int paged, sqlite3_stmt **out)
{
    struct cm_buf b;
    int rc;

    cm_buf_init(&b, 1 << 16);
    rc = cm_buf_append_str(&b, select);
    if (rc == CM_OK && w->sql.len)
        rc = cm_buf_append(&b, w->sql.data, w->sql.len);
    if (rc == CM_OK && tail)
        rc = cm_buf_append_str(&b, tail);
    if (rc == CM_OK && paged)
        rc = mt_store__sql_page(&b);
    if (rc == CM_OK)
        rc = mt_store__prepare(c, b.data, out);
    cm_buf_cleanup(&b);
    if (rc)
        return rc;
    for (int i = 0; i < w->n; i++) {
        int src = w->v[i].t == 'I' ? sqlite3_bind_int64(*out, i + 1, w->v[i].i)
                                   : mt_store__bind_text(*out, i + 1, w->v[i].s, 0);
        if (src != SQLITE_OK) {
            rc = mt_store__err(c, src, "bind");
            sqlite3_finalize(*out);
            *out = NULL;
            return rc;
        }
    }
    return CM_OK;
}

int mt_store__where_rows(struct mt_conn *c, const char *select, const struct mt_where *w,
                         const char *tail, int64_t offset, int limit, const struct mt_rowdesc *d,
                         struct mt_rows *r)
{
    sqlite3_stmt *s = NULL;
    int rc = where_prepare(c, select, w, tail, limit > 0, &s);
    if (rc)
        return rc;
    if (limit > 0) {
        sqlite3_bind_int(s, w->n + 1, limit);
        sqlite3_bind_int64(s, w->n + 2, offset);
    }
    rc = mt_store__rows_read(c, s, d, r);
    sqlite3_finalize(s);
    return rc;
}

int mt_store__where_int(struct mt_conn *c, const char *select, const struct mt_where *w,
                        const char *tail, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = where_prepare(c, select, w, tail, 0, &s);
    if (rc)
        return rc;
    rc = mt_store__int(c, s, out);
    sqlite3_finalize(s);
    return rc;
}

int mt_store__where_page(struct mt_store *st, const char *count_sql, const char *select,
                         const struct mt_where *w, const char *tail, int64_t offset, int limit,
                         const struct mt_rowdesc *d, struct mt_rows *r, int64_t *total)
{
    struct mt_conn *c = mt_store__rd_get(st);
    int rc = mt_store__where_int(c, count_sql, w, NULL, total);
    if (rc == CM_OK)
        rc = mt_store__where_rows(c, select, w, tail, offset, limit, d, r);
    mt_store__rd_put(st, c);
    return rc;
}

/* ---- small helpers ---- */

int mt_store__parse_id(const char *s, int64_t *v)
{
    int64_t x = 0;
    if (!s || !*s || strlen(s) > 18)
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        x = x * 10 + (*p - '0');
    }
    *v = x;
    return 1;
}

int mt_store__rows_keep(int rc, const struct mt_rowdesc *d, struct mt_rows *r)
{
    if (rc) {
        mt_store__rows_free(d, r->items, r->n);
        memset(r, 0, sizeof(*r));
    }
    return rc;
}

int mt_store__like(const char *s, int wrap, char **out)
{
    size_t n = s ? strlen(s) : 0;
    char *p = cm_malloc(n * 2 + 3), *q;

    if (!p)
        return CM_ERR_NOMEM;
    q = p;
    if (wrap)
        *q++ = '%';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '!' || s[i] == '_')
            *q++ = '!';
        *q++ = s[i];
    }
    if (wrap)
        *q++ = '%';
    *q = '\0';
    *out = p;
    return CM_OK;
}

int mt_store__sql_page(struct cm_buf *b)
{
    return cm_buf_append_str(b, " LIMIT ? OFFSET ?");
}

int mt_store_default_path(char *buf, size_t len)
{
    const char *e = getenv("SQLITE_PATH");
    size_t n;

    if (!buf || !len)
        return CM_ERR_INVAL;
    if (!e || !*e)
        e = MT_STORE_DEFAULT_FILE;
    n = strcspn(e, "?");
    if (n == 0) {
        e = MT_STORE_DEFAULT_FILE;
        n = strlen(e);
    }
    if (n >= len)
        return CM_ERR_LIMIT;
    memcpy(buf, e, n);
    buf[n] = '\0';
    return CM_OK;
}

/* ---- open / close ---- */

static void store_free(struct mt_store *st)
{
    if (!st)
        return;
    mt_store__conn_close(st->w);
    mt_store__conn_close(st->v);
    if (st->rconns) {
        for (unsigned i = 0; i < st->nr; i++)
            mt_store__conn_close(st->rconns[i]);
        cm_free(st->rconns);
    }
    if (st->mutexes_ready & 1)
        pthread_mutex_destroy(&st->wmu);
    if (st->mutexes_ready & 2)
        pthread_mutex_destroy(&st->rmu);
    if (st->mutexes_ready & 4)
        pthread_cond_destroy(&st->rcv);
    if (st->mutexes_ready & 8)
        pthread_mutex_destroy(&st->vmu);
    cm_free(st->path);
    cm_free(st);
}

/* Opens the reader pool and puts every connection on the free list. */
static int open_readers(struct mt_store *st, unsigned n)
{
    st->rconns = cm_calloc(n, sizeof(*st->rconns));
    if (!st->rconns)
        return CM_ERR_NOMEM;
    for (unsigned i = 0; i < n; i++) {
        int rc = mt_store__conn_open(st, 0, &st->rconns[i]);
        if (rc)
            return rc;
        st->nr = i + 1;
        st->rconns[i]->next_free = st->rfree;
        st->rfree = st->rconns[i];
    }
    return CM_OK;
}

int mt_store_open(const char *path, const struct mt_store_opts *opts, struct mt_store **out)
{
    struct mt_store_opts o = {0};
    struct mt_store *st = NULL;
    int rc = CM_OK;
    unsigned readers;

    if (!path || !*path || !out)
        return CM_ERR_INVAL;
    if (opts)
        o = *opts;
    st = cm_calloc(1, sizeof(*st));
    if (!st)
        return CM_ERR_NOMEM;
    st->path = cm_strdup(path);
    if (!st->path) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    st->clock = o.clock;
    st->busy_ms = o.busy_timeout_ms ? o.busy_timeout_ms : MT_STORE_BUSY_TIMEOUT_MS;
    st->sync_normal = o.sync_normal;
    if (pthread_mutex_init(&st->wmu, NULL) == 0)
        st->mutexes_ready |= 1;
    if (pthread_mutex_init(&st->rmu, NULL) == 0)
        st->mutexes_ready |= 2;
    if (pthread_cond_init(&st->rcv, NULL) == 0)
        st->mutexes_ready |= 4;
    if (pthread_mutex_init(&st->vmu, NULL) == 0)
        st->mutexes_ready |= 8;
    if (st->mutexes_ready != 15) {
        rc = CM_ERR_INTERNAL;
        goto out;
    }
    rc = mt_store__conn_open(st, 1, &st->w);
    if (rc)
        goto out;
    rc = mt_store__migrate(st);
    if (rc)
        goto out;
    readers = o.readers ? o.readers : MT_STORE_READERS_DEFAULT;
    if (readers > MT_STORE_READERS_MAX)
        readers = MT_STORE_READERS_MAX;
    rc = open_readers(st, readers);
    if (rc)
        goto out;
    rc = mt_store__conn_open(st, 0, &st->v);
    if (rc)
        goto out;
    rc = mt_store__writer_start(st, &o);
out:
    if (rc) {
        store_free(st);
        return rc;
    }
    *out = st;
    return CM_OK;
}

void mt_store_close(struct mt_store *st)
{
    if (!st)
        return;
    mt_store__writer_stop(st);
    store_free(st);
}

/* ---- versions and change counters ---- */

int mt_store_schema_version(struct mt_store *st, int64_t *out)
{
    struct mt_conn *c;
    int64_t v = 0;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    rc = mt_dialect__user_version(c, &v);
    mt_store__rd_put(st, c);
    if (rc == CM_OK)
        *out = v;
    return rc;
}

int mt_store_data_version(struct mt_store *st, uint64_t *out)
{
    int64_t v = 0;
    int rc;

    if (!st || !out)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&st->vmu);
    rc = mt_dialect__data_version(st->v, &v);
    pthread_mutex_unlock(&st->vmu);
    if (rc == CM_OK)
        *out = (uint64_t)v;
    return rc;
}

static const char SQL_CHANGES[] = "SELECT tbl, version FROM mt_changes";

int mt_store_changes(struct mt_store *st, struct mt_store_changes *out)
{
    struct mt_store_changes ch = {0};
    struct mt_conn *c;
    sqlite3_stmt *s = NULL;
    int rc, src;

    if (!st || !out)
        return CM_ERR_INVAL;
    c = mt_store__rd_get(st);
    rc = mt_store__stmt(c, SQL_CHANGES, &s);
    if (rc)
        goto out;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        int64_t v = sqlite3_column_int64(s, 1);
        if (!t)
            continue;
        if (strcmp(t, "options") == 0)
            ch.options = v;
        else if (strcmp(t, "channels") == 0)
            ch.channels = v;
        else if (strcmp(t, "abilities") == 0)
            ch.abilities = v;
        else if (strcmp(t, "users") == 0)
            ch.users = v;
        else if (strcmp(t, "tokens") == 0)
            ch.tokens = v;
    }
    if (src != SQLITE_DONE)
        rc = mt_store__err(c, src, "change counters");
out:
    mt_store__done(s);
    mt_store__rd_put(st, c);
    if (rc == CM_OK)
        *out = ch;
    return rc;
}

void mt_store_strings_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        cm_free(v[i]);
    cm_free(v);
}
