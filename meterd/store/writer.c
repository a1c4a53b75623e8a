/* SPDX-License-Identifier: MIT */
/*
 * writer.c - the group-commit writer thread (contract in writer.h).
 *
 * Queue: a FIFO of ops under one mutex; submit appends (copying everything the op needs,
 * log strings included, into one allocation) and wakes the thread when the queue turns
 * non-empty or reaches a full batch. Thread: take up to batch_max ops (after lingering
 * up to batch_linger_ms for the batch to fill), then, holding the store's write mutex,
 * BEGIN IMMEDIATE; run every op; COMMIT; release the mutex; run the callbacks in
 * submission order; free the ops (how one failing op is kept out: run_batch). Close
 * drains the queue.
 */
#include "store/store_int.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/log.h"

#include <errno.h>
#include <string.h>
#include <time.h>

enum op_kind { OP_RESERVE, OP_SETTLE, OP_LOG };

struct op {
    struct op *next;
    enum op_kind kind;
    struct mt_reserve r;
    struct mt_settle s;
    struct mt_log log; /* strings point into mem */
    int has_log;
    int hard;  /* failed hard: left out of re-runs of its batch */
    int clean; /* its failure was decided before it changed anything */
    mt_store_done_fn cb;
    void *ud;
    struct mt_store_result res;
    char mem[]; /* the log's strings */
};

struct mt_writer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct op *head, *tail;
    size_t queued;
    int closing;
    unsigned batch_max;
    int linger_ms;
    size_t queue_max;
    _Atomic uint64_t ops, commits, failed_commits, max_batch, queued_now;
};

static const char SQL_BEGIN[] = MT_SQL_BEGIN_WRITE;
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

static const char SQL_RES_USER[] =
    "UPDATE users SET quota = quota - ? "
    "WHERE id = ? AND deleted_at IS NULL AND quota > 0 AND quota >= ?";
static const char SQL_RES_TOKEN[] =
    "UPDATE tokens SET remain_quota = remain_quota - ?, used_quota = used_quota + ?, "
    "accessed_time = ? WHERE id = ? AND deleted_at IS NULL AND (unlimited_quota = " MT_SQL_TRUE
    " OR (remain_quota > 0 AND remain_quota >= ?))";
static const char SQL_RES_UNDO_USER[] = "UPDATE users SET quota = quota + ? WHERE id = ?";
static const char SQL_USER_LIVE[] =
    "SELECT count(*) FROM users WHERE id = ? AND deleted_at IS NULL";
static const char SQL_TOKEN_LIVE[] =
    "SELECT count(*) FROM tokens WHERE id = ? AND deleted_at IS NULL";
static const char SQL_SET_USER[] =
    "UPDATE users SET quota = quota - ?, used_quota = used_quota + ?, "
    "request_count = request_count + ? WHERE id = ?";
static const char SQL_SET_TOKEN[] =
    "UPDATE tokens SET remain_quota = remain_quota - ?, used_quota = used_quota + ?, "
    "accessed_time = ? WHERE id = ?";
static const char SQL_HOLD_ADD[] =
    "INSERT INTO mt_holds (user_id, token_id, amount, created_at) VALUES (?, ?, ?, ?) "
    "RETURNING id";
static const char SQL_HOLD_DEL[] = "DELETE FROM mt_holds WHERE id = ?";
static const char SQL_SET_CHANNEL[] =
    "UPDATE channels SET used_quota = used_quota + ? WHERE id = ?";

/* ---- running ops (on the writer connection, inside the batch transaction) ---- */

/* A failure the op decided itself, having changed nothing (or undone what it changed). */
static int clean_fail(struct op *o, int rc)
{
    o->clean = 1;
    return rc;
}

static int run_reserve(struct mt_store *st, struct mt_conn *c, struct op *o)
{
    const struct mt_reserve *r = &o->r;
    int64_t n = 0, live = 0;
    int rc;

    if (r->amount < 0)
        return clean_fail(o, CM_ERR_INVAL);
    rc = mt_store__write_on(c, SQL_RES_USER, &n, "III", r->amount, r->user_id, r->amount);
    if (rc)
        return rc;
    if (n == 0) {
        rc = mt_store__read_int_on(c, SQL_USER_LIVE, &live, "I", r->user_id);
        if (rc)
            return rc;
        if (!live)
            return clean_fail(o, CM_ERR_NOTFOUND);
        o->res.short_of = MT_STORE_SHORT_USER;
        return clean_fail(o, CM_ERR_LIMIT);
    }
    if (r->token_id) {
        rc = mt_store__write_on(c, SQL_RES_TOKEN, &n, "IIIII", r->amount, r->amount,
                                mt_store__now(st), r->token_id, r->amount);
        if (rc)
            return rc;
        if (n == 0) { /* undo the user's part: the exact inverse, in the same transaction */
            rc = mt_store__write_on(c, SQL_RES_UNDO_USER, NULL, "II", r->amount, r->user_id);
            if (rc == CM_OK)
                rc = mt_store__read_int_on(c, SQL_TOKEN_LIVE, &live, "I", r->token_id);
            if (rc)
                return rc;
            if (!live)
                return clean_fail(o, CM_ERR_NOTFOUND);
            o->res.short_of = MT_STORE_SHORT_TOKEN;
            return clean_fail(o, CM_ERR_LIMIT);
        }
    }
    /* the hold: what a crash before the settle gives back at start */
    if (r->amount > 0)
        rc = mt_store__read_int_on(c, SQL_HOLD_ADD, &o->res.hold_id, "IIII", r->user_id,
                                   r->token_id, r->amount, mt_store__now(st));
    return rc;
}

static int run_settle(struct mt_store *st, struct mt_conn *c, struct op *o)
{
    const struct mt_settle *s = &o->s;
    int64_t delta = s->quota - s->reserved, n = 0, now = mt_store__now(st);
    int rc = CM_OK;

    if (s->quota < 0 || s->reserved < 0)
        return clean_fail(o, CM_ERR_INVAL);
    if (delta != 0 || s->count_request) { /* first, so a missing user changes nothing */
        rc = mt_store__write_on(c, SQL_SET_USER, &n, "IIII", delta,
                                s->count_request ? s->quota : (int64_t)0,
                                (int64_t)(s->count_request ? 1 : 0), s->user_id);
        if (rc == CM_OK && n == 0)
            return clean_fail(o, CM_ERR_NOTFOUND);
    }
    if (rc == CM_OK && s->token_id && delta != 0)
        rc = mt_store__write_on(c, SQL_SET_TOKEN, NULL, "IIII", delta, delta, now, s->token_id);
    if (rc == CM_OK && s->hold_id)
        rc = mt_store__write_on(c, SQL_HOLD_DEL, NULL, "I", s->hold_id);
    if (rc == CM_OK && s->channel_id && s->count_request && s->quota)
        rc = mt_store__write_on(c, SQL_SET_CHANNEL, NULL, "II", s->quota, s->channel_id);
    if (rc == CM_OK && o->has_log) {
        if (!o->log.created_at)
            o->log.created_at = now;
        rc = mt_store__log_insert(st, c, &o->log, &o->res.log_id);
    }
    if (rc == CM_OK && o->has_log && s->quota_data)
        rc = mt_store__quota_data_add(c, s->user_id, o->log.username, o->log.model_name,
                                      o->log.created_at,
                                      o->log.prompt_tokens + o->log.completion_tokens, s->quota);
    return rc;
}

static int run_op(struct mt_store *st, struct mt_conn *c, struct op *o)
{
    switch (o->kind) {
    case OP_RESERVE:
        return run_reserve(st, c, o);
    case OP_SETTLE:
        return run_settle(st, c, o);
    case OP_LOG:
        return mt_store__log_insert(st, c, &o->log, &o->res.log_id);
    }
    return CM_ERR_INTERNAL;
}

#define BATCH_RETRIES 3

/*
 * Runs one batch in one transaction; every op's res is set when this returns.
 *
 * No per-op SAVEPOINT (it made each op copy every page it touched into a statement
 * journal: 5x slower with NewAPI's 15 log indexes). Instead every op either succeeds,
 * or fails "cleanly" having changed nothing (clean_fail(): decided before its first
 * write, or after undoing it - a reserve whose token part fails undoes its user part
 * with the inverse relative UPDATE), or fails "hard" (any SQL error: I/O, a constraint,
 * a trigger): then the whole transaction is rolled back and the batch re-run without
 * that op, which fails alone with its error.
 */
static void run_batch(struct mt_store *st, struct op *batch, size_t n)
{
    struct mt_writer *w = st->wr;
    struct mt_conn *c = st->w;
    int rc = CM_OK;

    pthread_mutex_lock(&st->wmu);
    for (int attempt = 0; attempt < BATCH_RETRIES; attempt++) {
        struct op *hard = NULL;
        rc = mt_store__exec(c, SQL_BEGIN);
        if (rc)
            break;
        for (struct op *o = batch; o; o = o->next) {
            int orc;
            if (o->hard)
                continue;
            o->res.short_of = MT_STORE_SHORT_NONE;
            o->res.log_id = 0;
            o->clean = 0;
            orc = run_op(st, c, o);
            o->res.rc = orc;
            if (orc && (!o->clean || sqlite3_get_autocommit(c->db))) {
                hard = o;
                break;
            }
        }
        if (!hard) {
            rc = mt_store__exec(c, SQL_COMMIT);
            break;
        }
        hard->hard = 1;
        hard->res.log_id = 0;
        hard->res.short_of = MT_STORE_SHORT_NONE;
        cm_log_warn(NULL, "store: writer op failed (%s); batch re-run without it",
                    cm_err_str(hard->res.rc));
        if (!sqlite3_get_autocommit(c->db))
            mt_store__exec(c, SQL_ROLLBACK);
        rc = CM_ERR_IO; /* unless a later attempt commits */
    }
    if (rc) {
        if (!sqlite3_get_autocommit(c->db))
            mt_store__exec(c, SQL_ROLLBACK);
        /* nothing of this batch is applied: every op fails */
        for (struct op *o = batch; o; o = o->next) {
            if (o->hard)
                continue;
            o->res.rc = rc;
            o->res.log_id = 0;
            o->res.short_of = MT_STORE_SHORT_NONE;
        }
        atomic_fetch_add(&w->failed_commits, 1);
        cm_log_error(NULL, "store: writer batch of %zu ops failed: %s", n, cm_err_str(rc));
    } else {
        atomic_fetch_add(&w->commits, 1);
    }
    pthread_mutex_unlock(&st->wmu);
    atomic_fetch_add(&w->ops, n);
    if (n > atomic_load(&w->max_batch))
        atomic_store(&w->max_batch, n);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *writer_main(void *arg)
{
    struct mt_store *st = arg;
    struct mt_writer *w = st->wr;

    for (;;) {
        struct op *batch, *last;
        size_t n = 1;

        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->closing)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head) { /* closing and drained */
            pthread_mutex_unlock(&w->mu);
            break;
        }
        if (w->linger_ms > 0 && w->queued < w->batch_max && !w->closing) {
            struct timespec ts;
            deadline_after(&ts, w->linger_ms);
            while (w->queued < w->batch_max && !w->closing)
                if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
                    break;
        }
        batch = last = w->head;
        while (n < w->batch_max && last->next) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        w->queued -= n;
        atomic_store(&w->queued_now, w->queued);
        pthread_mutex_unlock(&w->mu);

        run_batch(st, batch, n);
        while (batch) {
            struct op *next = batch->next;
            if (batch->cb)
                batch->cb(&batch->res, batch->ud);
            cm_free(batch);
            batch = next;
        }
    }
    return NULL;
}

int mt_store__writer_start(struct mt_store *st, const struct mt_store_opts *o)
{
    struct mt_writer *w = cm_calloc(1, sizeof(*w));
    pthread_condattr_t ca;
    int rc = CM_OK;

    if (!w)
        return CM_ERR_NOMEM;
    w->batch_max = o->batch_max ? o->batch_max : MT_STORE_BATCH_MAX_DEFAULT;
    w->linger_ms = o->batch_linger_ms == 0  ? MT_STORE_LINGER_MS_DEFAULT
                   : o->batch_linger_ms < 0 ? 0
                                            : o->batch_linger_ms;
    w->queue_max = o->queue_max ? o->queue_max : MT_STORE_QUEUE_MAX_DEFAULT;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        cm_free(w);
        return CM_ERR_INTERNAL;
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&w->cv, &ca) != 0) {
        pthread_mutex_destroy(&w->mu);
        cm_free(w);
        return CM_ERR_INTERNAL;
    }
    pthread_condattr_destroy(&ca);
    st->wr = w;
    if (pthread_create(&w->th, NULL, writer_main, st) != 0) {
        cm_log_error(NULL, "store: cannot start the writer thread");
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        cm_free(w);
        st->wr = NULL;
        rc = CM_ERR_INTERNAL;
    }
    return rc;
}

void mt_store__writer_stop(struct mt_store *st)
{
    struct mt_writer *w = st->wr;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    cm_free(w);
    st->wr = NULL;
}

/* ---- submission ---- */

/* A new op with room for a copy of @p log's strings (log may be NULL). */
static struct op *op_new(enum op_kind kind, const struct mt_log *log)
{
    const struct mt_rowdesc *d = &mt_store__log_desc;
    size_t extra = 0;
    struct op *o;
    char *p;

    if (log)
        for (size_t i = 0; i < d->ncols; i++)
            if (d->cols[i].type == MT_C_TEXT || d->cols[i].type == MT_C_TEXTN) {
                const char *s = *(const char *const *)((const char *)log + d->cols[i].off);
                extra += (s ? strlen(s) : 0) + 1;
            }
    o = cm_calloc(1, sizeof(*o) + extra);
    if (!o)
        return NULL;
    o->kind = kind;
    if (!log)
        return o;
    o->log = *log;
    o->log._mem = NULL;
    o->has_log = 1;
    p = o->mem;
    for (size_t i = 0; i < d->ncols; i++) {
        if (d->cols[i].type == MT_C_TEXT || d->cols[i].type == MT_C_TEXTN) {
            const char **f = (const char **)((char *)&o->log + d->cols[i].off);
            size_t len = *f ? strlen(*f) : 0;
            if (*f)
                memcpy(p, *f, len);
            p[len] = '\0';
            *f = p;
            p += len + 1;
        }
    }
    return o;
}

static int submit(struct mt_store *st, struct op *o, mt_store_done_fn cb, void *ud)
{
    struct mt_writer *w = st->wr;
    int rc = CM_OK;

    o->cb = cb;
    o->ud = ud;
    if (!w) {
        cm_free(o);
        return CM_ERR_CLOSED;
    }
    pthread_mutex_lock(&w->mu);
    if (w->closing) {
        rc = CM_ERR_CLOSED;
    } else if (w->queued >= w->queue_max) {
        rc = CM_ERR_LIMIT;
    } else {
        if (w->tail)
            w->tail->next = o;
        else
            w->head = o;
        w->tail = o;
        w->queued++;
        atomic_store(&w->queued_now, w->queued);
        if (w->queued == 1 || w->queued >= w->batch_max)
            pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (rc)
        cm_free(o);
    return rc;
}

int mt_store_submit_reserve(struct mt_store *st, const struct mt_reserve *r, mt_store_done_fn cb,
                            void *ud)
{
    struct op *o;
    if (!st || !r || r->amount < 0 || r->user_id <= 0 || r->token_id < 0)
        return CM_ERR_INVAL;
    o = op_new(OP_RESERVE, NULL);
    if (!o)
        return CM_ERR_NOMEM;
    o->r = *r;
    return submit(st, o, cb, ud);
}

int mt_store_submit_settle(struct mt_store *st, const struct mt_settle *s, mt_store_done_fn cb,
                           void *ud)
{
    struct op *o;
    if (!st || !s || s->quota < 0 || s->reserved < 0 || s->user_id <= 0)
        return CM_ERR_INVAL;
    o = op_new(OP_SETTLE, s->log);
    if (!o)
        return CM_ERR_NOMEM;
    o->s = *s;
    o->s.log = NULL;
    return submit(st, o, cb, ud);
}

int mt_store_submit_log(struct mt_store *st, const struct mt_log *l, mt_store_done_fn cb, void *ud)
{
    struct op *o;
    if (!st || !l)
        return CM_ERR_INVAL;
    o = op_new(OP_LOG, l);
    if (!o)
        return CM_ERR_NOMEM;
    return submit(st, o, cb, ud);
}

/* ---- blocking wrappers ---- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct mt_store_result res;
};

static void wake(const struct mt_store_result *res, void *ud)
{
    struct waiter *wt = ud;
    pthread_mutex_lock(&wt->mu);
    wt->res = *res;
    wt->done = 1;
    pthread_cond_signal(&wt->cv);
    pthread_mutex_unlock(&wt->mu);
}

/* Submits with @p fn and waits for the callback; the op's result to *res. */
static int wait_for(struct mt_store *st, int kind, const void *arg, struct mt_store_result *res)
{
    struct waiter wt;
    int rc;

    if (!st)
        return CM_ERR_INVAL;
    if (st->wr && pthread_equal(pthread_self(), st->wr->th))
        return CM_ERR_INTERNAL; /* a callback must not wait for its own thread */
    memset(&wt, 0, sizeof(wt));
    if (pthread_mutex_init(&wt.mu, NULL) != 0)
        return CM_ERR_INTERNAL;
    if (pthread_cond_init(&wt.cv, NULL) != 0) {
        pthread_mutex_destroy(&wt.mu);
        return CM_ERR_INTERNAL;
    }
    if (kind == OP_RESERVE)
        rc = mt_store_submit_reserve(st, arg, wake, &wt);
    else
        rc = mt_store_submit_settle(st, arg, wake, &wt);
    if (rc == CM_OK) {
        pthread_mutex_lock(&wt.mu);
        while (!wt.done)
            pthread_cond_wait(&wt.cv, &wt.mu);
        pthread_mutex_unlock(&wt.mu);
        *res = wt.res;
        rc = wt.res.rc;
    }
    pthread_cond_destroy(&wt.cv);
    pthread_mutex_destroy(&wt.mu);
    return rc;
}

int mt_store_reserve(struct mt_store *st, const struct mt_reserve *r, enum mt_store_short *short_of)
{
    struct mt_store_result res = {0};
    int rc = wait_for(st, OP_RESERVE, r, &res);
    if (short_of)
        *short_of = rc == CM_ERR_LIMIT ? res.short_of : MT_STORE_SHORT_NONE;
    return rc;
}

int mt_store_settle(struct mt_store *st, const struct mt_settle *s, int64_t *log_id)
{
    struct mt_store_result res = {0};
    int rc = wait_for(st, OP_SETTLE, s, &res);
    if (rc == CM_OK && log_id)
        *log_id = res.log_id;
    return rc;
}

int mt_store_refund(struct mt_store *st, int64_t user_id, int64_t token_id, int64_t amount)
{
    struct mt_settle s = {0};
    s.user_id = user_id;
    s.token_id = token_id;
    s.reserved = amount;
    return mt_store_settle(st, &s, NULL);
}

void mt_store_writer_stats(struct mt_store *st, struct mt_store_writer_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!st)
        return;
    out->sync_commits = atomic_load(&st->sync_commits);
    if (!st->wr)
        return;
    out->ops = atomic_load(&st->wr->ops);
    out->commits = atomic_load(&st->wr->commits);
    out->failed_commits = atomic_load(&st->wr->failed_commits);
    out->max_batch = atomic_load(&st->wr->max_batch);
    out->queued = atomic_load(&st->wr->queued_now);
}

/* ---- holds left by a crash ---- */

static const char SQL_HOLDS_COUNT[] = "SELECT count(*) FROM mt_holds";
static const char SQL_HOLDS_SUM[] = "SELECT COALESCE(sum(amount), 0) FROM mt_holds";
static const char SQL_HOLDS_USERS[] =
    "UPDATE users SET quota = quota + (SELECT sum(h.amount) FROM mt_holds h WHERE "
    "h.user_id = users.id) WHERE id IN (SELECT user_id FROM mt_holds)";
static const char SQL_HOLDS_TOKENS[] =
    "UPDATE tokens SET remain_quota = remain_quota + (SELECT sum(h.amount) FROM mt_holds h "
    "WHERE h.token_id = tokens.id), used_quota = used_quota - (SELECT sum(h.amount) FROM "
    "mt_holds h WHERE h.token_id = tokens.id) WHERE id IN (SELECT token_id FROM mt_holds "
    "WHERE token_id != 0)";
static const char SQL_HOLDS_CLEAR[] = "DELETE FROM mt_holds";

int mt_store_release_holds(struct mt_store *st, int64_t *n, int64_t *total)
{
    struct mt_conn *c = NULL;
    int64_t cnt = 0, sum = 0;
    int rc = mt_store__wr_begin(st, &c);

    if (rc)
        return rc;
    rc = mt_store__read_int_on(c, SQL_HOLDS_COUNT, &cnt, "");
    if (!rc && cnt)
        rc = mt_store__read_int_on(c, SQL_HOLDS_SUM, &sum, "");
    if (!rc && cnt)
        rc = mt_store__write_on(c, SQL_HOLDS_USERS, NULL, "");
    if (!rc && cnt)
        rc = mt_store__write_on(c, SQL_HOLDS_TOKENS, NULL, "");
    if (!rc && cnt)
        rc = mt_store__write_on(c, SQL_HOLDS_CLEAR, NULL, "");
    rc = mt_store__wr_end(st, c, rc);
    if (!rc && n)
        *n = cnt;
    if (!rc && total)
        *total = sum;
    return rc;
}
