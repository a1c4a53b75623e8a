/* SPDX-License-Identifier: MIT */
/*
 * fswatch.h - watch one directory (inotify, not recursive) and report changed names,
 * debounced.
 *
 * Changes seen: created, written and closed (IN_CLOSE_WRITE), renamed in or out (editors
 * and our own temp+rename writers), deleted, attributes changed. Names can be filtered
 * by suffix (".json") or to one exact name ("config.yaml": watch its directory, since
 * editors replace the file rather than write it in place).
 *
 * Debounce: names are collected (deduplicated) and the callback fires once, on the
 * watcher's own thread, after debounce_ms with no further matching event. So that a
 * directory that never goes quiet is still reported, a batch is also delivered at the
 * latest 10 * debounce_ms after its first change.
 *
 * The callback gets names, not contents: it should re-read what it cares about, and
 * treat "overflow" as "everything may have changed" (kernel queue overflow, too many
 * names pending, out of memory, or the directory itself deleted or moved away - after
 * which nothing more is reported).
 */
#ifndef CM_FSWATCH_H
#define CM_FSWATCH_H

#include <stddef.h>

#define CM_FSWATCH_DEBOUNCE_DEFAULT_MS 150
/** Most distinct names held in one batch; past it the batch reports overflow instead. */
#define CM_FSWATCH_MAX_NAMES 1024

struct cm_fswatch;

/** One debounced batch of changes. Everything in it is borrowed for the callback's duration. */
struct cm_fswatch_batch {
    const char *const *names; /* changed names (no directory part), sorted, deduplicated */
    size_t n;                 /* number of names; may be 0 when overflow is set */
    int overflow;             /* 1: other names may have changed too; rescan the directory */
};

/**
 * Called on the watcher's thread, never concurrently with itself. Must not block long
 * (it delays the next batch) and must not call cm_fswatch_free() on its own watcher.
 */
typedef void (*cm_fswatch_fn)(const struct cm_fswatch_batch *batch, void *ud);

struct cm_fswatch_opts {
    const char *dir;      /* directory to watch; required; copied */
    const char *suffix;   /* only names ending with this (e.g. ".json"); NULL: all; copied */
    const char *name;     /* only this exact name (e.g. "config.yaml"); NULL: all; copied */
    unsigned debounce_ms; /* quiet time before the callback; 0: CM_FSWATCH_DEBOUNCE_DEFAULT_MS */
    cm_fswatch_fn fn;     /* required */
    void *ud;             /* passed to fn; borrowed, must outlive the watcher */
};

/**
 * Starts watching @p opts->dir on a new thread and writes the watcher to @p out.
 * Changes made before this call are not reported (read the directory after it). If both suffix and
 * name are set, a name must match both. Returns CM_OK; CM_ERR_INVAL (missing dir or fn, or dir is
 * not a directory); CM_ERR_NOTFOUND (dir does not exist); CM_ERR_DENIED (no permission);
 * CM_ERR_LIMIT (inotify instance/watch limits, or no more threads); CM_ERR_NOMEM; CM_ERR_IO. Every
 * error is also logged with the directory and errno text. @p out is written only on
 * success; caller frees with cm_fswatch_free(). Thread-safe (no shared state).
 */
int cm_fswatch_new(struct cm_fswatch **out, const struct cm_fswatch_opts *opts);

/**
 * Stops the thread promptly (it is woken through an eventfd, no waiting for the
 * debounce), waits for a callback in progress to return, drops changes not yet
 * delivered, and frees everything. NULL is a no-op. Call from any thread except the
 * watcher's own (i.e. not from the callback); safe while events are arriving.
 */
void cm_fswatch_free(struct cm_fswatch *w);

#endif
