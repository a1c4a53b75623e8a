/* SPDX-License-Identifier: MIT */
/*
 * writer.h - the group-commit writer: request-path writes (reserve, settle / refund,
 * log rows) queued from any thread and run by one thread on the writer connection,
 * many per transaction, so thousands of billed requests per second cost few commits.
 *
 * Batching: the thread takes whatever is queued, up to batch_max ops, and commits them
 * as one transaction; while that batch commits (the fsync), new ops queue up for the
 * next one, so the batch size follows the load with no added latency when idle.
 * Optionally (batch_linger_ms > 0) it first waits up to that long for a batch to fill;
 * the default is 0 because lingering only taxes every op at low load (measured: 8
 * threads of blocking reserves ran 16.8k/s without linger, 3.0k/s with 2 ms).
 * An op that fails cleanly (insufficient quota, a missing row, a bad argument) has
 * changed nothing and the rest of the batch commits; an op that fails hard (I/O, a
 * constraint) makes the batch roll back and run again without it, so it fails alone.
 *
 * Completion: an op's callback runs on the writer thread AFTER the transaction holding
 * it committed (or failed), with the op's own result; a failed commit fails every op of
 * the batch (CM_ERR_IO / CM_ERR_TIMEOUT) and nothing of it is applied. Callbacks must be
 * quick and must not call the blocking functions below (CM_ERR_INTERNAL if they do);
 * submitting more ops from a callback is fine. The blocking wrappers return only after
 * the commit, so "a response is not finished before its charge is committed" holds by
 * waiting on them (or on the callback).
 *
 * Atomic reserve (NewAPI #5690 fixed): a user row and a token row are charged together
 * or not at all, each by a conditional relative UPDATE (... WHERE quota >= ?), and all
 * reserves run serially on one connection, so no interleaving of requests, threads or
 * outside writers can overdraw either.
 *
 * Shutdown (mt_store_close): submissions are refused with CM_ERR_CLOSED, every op already
 * queued is still run and committed and its callback called, then the thread exits.
 * All functions are thread-safe.
 */
#ifndef MT_STORE_WRITER_H
#define MT_STORE_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct mt_store;
struct mt_log;

#define MT_STORE_BATCH_MAX_DEFAULT 512
#define MT_STORE_LINGER_MS_DEFAULT 0 /* natural group commit; see above */
#define MT_STORE_QUEUE_MAX_DEFAULT 65536

/** Which balance was short when a reserve failed with CM_ERR_LIMIT. */
enum mt_store_short {
    MT_STORE_SHORT_NONE = 0,
    MT_STORE_SHORT_USER,  /* users.quota < amount, or <= 0 (NewAPI: insufficient_user_quota) */
    MT_STORE_SHORT_TOKEN, /* tokens.remain_quota < amount, or <= 0, and not unlimited
                             (NewAPI: pre_consume_token_quota_failed) */
};

/** Result of one op, given to its callback (borrowed for the callback only). */
struct mt_store_result {
    int rc;                       /* CM_OK or the op's error */
    enum mt_store_short short_of; /* reserve with CM_ERR_LIMIT */
    int64_t log_id;               /* settle / log: the inserted log row's id, else 0 */
    int64_t hold_id;              /* reserve of amount > 0: its mt_holds row, else 0 */
};

/** Completion callback: runs on the writer thread after the op's transaction ended. */
typedef void (*mt_store_done_fn)(const struct mt_store_result *res, void *ud);

/**
 * Crash safety: a reserve of amount > 0 also inserts a hold row (table mt_holds: user,
 * token, amount) in its transaction, and the settle (or refund) that names it deletes it
 * in its own. A hold left by a crash between the two is given back by
 * mt_store_release_holds() at start: no quota is lost to a kill -9.
 *
 * Reserve (pre-consume): users.quota -= amount and, when token_id != 0, tokens.remain_quota
 * -= amount, used_quota += amount, accessed_time = now; together or not at all. Conditions
 * (read from the rows, so an operator's edit counts at once): the user is live with
 * quota > 0 and quota >= amount; the token is live and either unlimited_quota = 1 or
 * remain_quota > 0 and remain_quota >= amount (an unlimited token is still decremented,
 * as NewAPI does). amount 0 still checks (a user at 0 is refused, as NewAPI does).
 * Results: CM_OK; CM_ERR_LIMIT with short_of USER or TOKEN; CM_ERR_NOTFOUND (no such
 * live user / token); CM_ERR_INVAL (amount < 0).
 */
struct mt_reserve {
    int64_t user_id;
    int64_t token_id; /* 0: no token (playground) */
    int64_t amount;
};

/**
 * Settle: with delta = quota - reserved, in ONE transaction (an op of the batch):
 *   users:    quota -= delta (relative; may go negative, as NewAPI allows);
 *             if count_request: used_quota += quota, request_count += 1
 *   tokens:   (token_id != 0) remain_quota -= delta, used_quota += delta, accessed_time = now
 *   channels: (channel_id != 0 and count_request) used_quota += quota
 *   logs:     (log != NULL) the row (created_at 0 -> now); its id in result.log_id
 *   quota_data: (quota_data and log) the hour row of (log user, username, model_name)
 *             += prompt+completion tokens, 1 request, quota.
 * A refund is a settle with quota 0 and count_request 0 (everything reserved comes back).
 * Results: CM_OK; CM_ERR_NOTFOUND (the user is gone: nothing applied); CM_ERR_INVAL.
 */
struct mt_settle {
    int64_t user_id;
    int64_t token_id;
    int64_t channel_id;
    int64_t reserved; /* what the reserve took (0: none) */
    int64_t quota;    /* the final charge, >= 0 */
    int count_request;
    const struct mt_log *log; /* borrowed for the submit call only (copied) */
    int quota_data;
    int64_t hold_id; /* the reserve's hold (mt_store_result.hold_id), deleted here; 0: none */
};

/* Asynchronous submission. @p cb may be NULL (fire and forget). Returns CM_OK (the op is
 * queued; cb will be called exactly once), CM_ERR_INVAL, CM_ERR_NOMEM, CM_ERR_LIMIT (the
 * queue holds queue_max ops: back-pressure), CM_ERR_CLOSED (store closing). On an error
 * the callback is NOT called. */
int mt_store_submit_reserve(struct mt_store *st, const struct mt_reserve *r, mt_store_done_fn cb,
                            void *ud);
int mt_store_submit_settle(struct mt_store *st, const struct mt_settle *s, mt_store_done_fn cb,
                           void *ud);
/** A lone log row (e.g. an error log, type 5); result.log_id gets its id. */
int mt_store_submit_log(struct mt_store *st, const struct mt_log *l, mt_store_done_fn cb, void *ud);

/* Blocking wrappers: submit, then wait for the commit. Return the op's result code (or
 * the submit error); @p short_of / @p log_id may be NULL. Never call them from a
 * writer callback (CM_ERR_INTERNAL). */
int mt_store_reserve(struct mt_store *st, const struct mt_reserve *r,
                     enum mt_store_short *short_of);
int mt_store_settle(struct mt_store *st, const struct mt_settle *s, int64_t *log_id);
/**
 * Gives back every hold left (by a crash): users.quota += amount and, with a token,
 * tokens.remain_quota += amount and used_quota -= amount; the holds are deleted; one
 * transaction. *@p n / *@p total (may be NULL): holds and quota released. Call at start,
 * before requests are served. CM_OK or a store error.
 */
int mt_store_release_holds(struct mt_store *st, int64_t *n, int64_t *total);

/** Refund of a reserve: settle with quota 0, no counters, no log. */
int mt_store_refund(struct mt_store *st, int64_t user_id, int64_t token_id, int64_t amount);

/** Counters of the writer thread (monotonic since open). */
struct mt_store_writer_stats {
    uint64_t ops;            /* ops run (committed or not) */
    uint64_t commits;        /* transactions the writer committed */
    uint64_t failed_commits; /* batches whose BEGIN or COMMIT failed */
    uint64_t max_batch;      /* largest batch so far */
    uint64_t queued;         /* ops waiting right now */
    uint64_t sync_commits;   /* write transactions outside the writer (admin writes) */
};
void mt_store_writer_stats(struct mt_store *st, struct mt_store_writer_stats *out);

#endif
