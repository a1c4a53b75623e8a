/* SPDX-License-Identifier: MIT */
/*
 * store_util.h - helpers shared by the test_store_*.c files (header-only, static): a
 * temporary database directory, opening the store on it with a fake clock, an "outside"
 * raw SQLite connection (the operator's sqlite3 CLI), loading fixture SQL, removing the
 * files afterwards, and the cmocka group fixtures that do all that (tdb_setup/tdb_teardown).
 */
#ifndef MT_TEST_STORE_UTIL_H
#define MT_TEST_STORE_UTIL_H

#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/file.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0_WALL_MS 1750000000000LL /* 2025-06-15 */

struct tdb {
    char dir[64];
    char path[160];
    struct cm_clock_fake clk;
    struct mt_store *st;
};

static inline int tdb_init(struct tdb *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/mt_store_XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/one-api.db", t->dir);
    cm_clock_fake_init(&t->clk, T0_WALL_MS, 1000);
    return 0;
}

static inline int tdb_open_opts(struct tdb *t, struct mt_store_opts *o)
{
    struct mt_store_opts def = {0};
    if (!o)
        o = &def;
    o->clock = &t->clk.clock;
    return mt_store_open(t->path, o, &t->st);
}

static inline int tdb_open(struct tdb *t)
{
    return tdb_open_opts(t, NULL);
}

static inline void tdb_close(struct tdb *t)
{
    mt_store_close(t->st);
    t->st = NULL;
}

static inline void tdb_remove(struct tdb *t)
{
    char p[200];
    tdb_close(t);
    unlink(t->path);
    snprintf(p, sizeof(p), "%s-wal", t->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", t->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-journal", t->path);
    unlink(p);
    rmdir(t->dir);
}

/* cmocka group setup: a fresh database, opened, as *@p state (a struct tdb *) */
static inline int tdb_setup(void **state)
{
    static struct tdb t;
    if (tdb_init(&t) || tdb_open(&t))
        return -1;
    *state = &t;
    return 0;
}

/* cmocka group teardown of tdb_setup(): allocation failures off, the files removed */
static inline int tdb_teardown(void **state)
{
    cm_alloc_fail_at(0);
    tdb_remove(*state);
    return 0;
}

/* An outside connection, as an operator's sqlite3 CLI would have. */
static inline sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static inline int raw_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec: %s\n", err ? err : "?");
    sqlite3_free(err);
    return rc;
}

static inline int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -999999;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Runs the fixture file tests/fixtures/meterd/<name> on the database at @p path. */
static inline int load_fixture(const char *path, const char *name)
{
    const char *base = getenv("CM_TEST_DATA");
    char fp[512], err[128];
    char *sql = NULL;
    size_t len = 0;
    sqlite3 *db;
    int rc;

    snprintf(fp, sizeof(fp), "%s/meterd/%s", base ? base : "tests/fixtures", name);
    if (cm_file_read(fp, 1 << 20, &sql, &len, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "load_fixture: %s: %s\n", fp, err);
        return -1;
    }
    db = raw_open(path);
    rc = db ? raw_exec(db, sql) : SQLITE_ERROR;
    sqlite3_close(db);
    cm_free(sql);
    return rc == SQLITE_OK ? 0 : -1;
}

#endif
