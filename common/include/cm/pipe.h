/* SPDX-License-Identifier: MIT */
/*
 * pipe.h - the bounded stream pipe between one producer (an upstream transfer on the
 * httpc I/O thread) and one consumer (an MHD response reader on a server thread).
 *
 *   empty  -> the reader parks (its park hook runs, e.g. MHD_suspend_connection) and is
 *             woken (wake hook, e.g. MHD_resume_connection) when data or the end arrives;
 *   full   -> cm_pipe_write() takes nothing and returns CM_ERR_AGAIN; the writer parks
 *             (e.g. curl's CURL_WRITEFUNC_PAUSE) and its wake hook runs once the reader
 *             has drained at least half the cap;
 *   reader gone (client disconnected) -> buffered data is dropped, later writes return
 *             CM_ERR_CLOSED and the writer's wake hook runs so the producer can abort.
 *
 * The pipe counts the bytes handed to the reader (cm_pipe_delivered()): that is what a
 * client got when a stream ends early.
 *
 * Memory: the buffer grows on demand up to the cap; a write is accepted whole when it
 * fits, or when the pipe is empty (so one chunk larger than the cap never deadlocks);
 * the buffer therefore never holds more than max(cap, largest single write).
 *
 * Threads: one writer thread and one reader thread at a time; every call is safe
 * against the other side. Hooks run with the pipe's lock held: they must be short,
 * must not block and must not call back into this pipe. The lock order is
 * pipe lock -> whatever the hooks take (MHD's internal mutexes, the httpc queue).
 *
 * Lifetime: reference counted; cm_pipe_new() returns one reference, each side keeps
 * its own and drops it with cm_pipe_unref(); the last unref frees.
 */
#ifndef CM_PIPE_H
#define CM_PIPE_H

#include <stddef.h>
#include <stdint.h>

struct cm_pipe;

typedef void (*cm_pipe_hook_fn)(void *ud);

enum cm_pipe_rstate {
    CM_PIPE_DATA = 0, /* bytes were copied out */
    CM_PIPE_PARKED,   /* empty: the reader's park hook ran; its wake hook will run later */
    CM_PIPE_EOF,      /* the writer closed with CM_OK and everything was read */
    CM_PIPE_ERROR     /* the writer closed with an error, or the reader was marked gone */
};

/** New pipe holding at most @p cap bytes (0 = 64 KiB). NULL on OOM. Caller owns one ref. */
struct cm_pipe *cm_pipe_new(size_t cap);
void cm_pipe_ref(struct cm_pipe *p);
/** Drops a reference; frees on the last one. NULL is a no-op. */
void cm_pipe_unref(struct cm_pipe *p);

/** Reader hooks: park runs when the reader finds the pipe empty, wake when it may read again. */
void cm_pipe_set_reader_hooks(struct cm_pipe *p, cm_pipe_hook_fn park, cm_pipe_hook_fn wake,
                              void *ud);
/** Writer hook: wake runs when a parked writer may write again, or when the reader is gone. */
void cm_pipe_set_writer_hook(struct cm_pipe *p, cm_pipe_hook_fn wake, void *ud);

/**
 * Offers @p n bytes. CM_OK: all taken. CM_ERR_AGAIN: nothing taken, the writer is parked
 * (wake hook later). CM_ERR_CLOSED: the reader is gone or the pipe was closed; stop.
 */
int cm_pipe_write(struct cm_pipe *p, const void *d, size_t n);
/**
 * Like cm_pipe_write() but takes the bytes even past the cap (never CM_ERR_AGAIN). For a
 * producer that already consumed its input and must not lose what it made of it (a
 * translated event, the tail of a stream); the overshoot is bounded by that caller.
 * CM_OK, CM_ERR_CLOSED, CM_ERR_NOMEM.
 */
int cm_pipe_write_force(struct cm_pipe *p, const void *d, size_t n);
/**
 * Ends the stream: @p rc CM_OK is a clean end, anything else an error the reader sees
 * after the buffered bytes. Wakes a parked reader. Later calls are ignored.
 */
void cm_pipe_close(struct cm_pipe *p, int rc);
/** The writer's closing code (CM_OK until closed). */
int cm_pipe_close_rc(struct cm_pipe *p);

/**
 * Copies up to @p max bytes into @p buf; *got is set to the count. Returns the state
 * (see enum). On CM_PIPE_PARKED the park hook has run, under the lock.
 */
enum cm_pipe_rstate cm_pipe_read(struct cm_pipe *p, void *buf, size_t max, size_t *got);
/**
 * The consumer is gone (client disconnected, or it gave up): drops the buffer, makes
 * writes fail with CM_ERR_CLOSED, wakes the writer, and wakes a parked reader so it can
 * see CM_PIPE_ERROR and finish. Idempotent.
 */
void cm_pipe_reader_gone(struct cm_pipe *p);
/** 1 once cm_pipe_reader_gone() was called. */
int cm_pipe_is_reader_gone(struct cm_pipe *p);
/** Bytes handed to the reader so far. */
uint64_t cm_pipe_delivered(struct cm_pipe *p);
/** Bytes currently buffered. */
size_t cm_pipe_buffered(struct cm_pipe *p);

#endif
