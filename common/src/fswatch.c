/* SPDX-License-Identifier: MIT */
/*
 * fswatch.c - one inotify instance, one watch, one thread per watcher.
 *
 * The thread polls two fds: the inotify fd and an eventfd that cm_fswatch_free() writes
 * to stop it. Matching names go into a small deduplicated set; the poll timeout is the
 * time left until the batch is due (quiet for debounce_ms, or 10 * debounce_ms after
 * its first change), and then the callback gets the sorted set. Anything that could
 * lose a name (kernel queue overflow, set full, OOM) turns into the overflow flag
 * instead, so the caller rescans rather than missing a change.
 */
#include "cm/fswatch.h"

#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_ATTRIB |            \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct cm_fswatch {
    char *dir;
    char *suffix;
    char *name;
    int64_t debounce_ms;
    cm_fswatch_fn fn;
    void *ud;

    int ifd; /* inotify */
    int efd; /* eventfd: stop request */
    int wd;  /* -1 once the directory is gone */
    pthread_t thread;
    int thread_started;

    /* the batch being collected; touched by the watcher thread only */
    char **names;
    size_t n, cap;
    int overflow;
    int64_t first_ms, last_ms;
};

static int errno_to_err(int e)
{
    switch (e) {
    case ENOENT:
        return CM_ERR_NOTFOUND;
    case ENOTDIR:
        return CM_ERR_INVAL;
    case EACCES:
    case EPERM:
        return CM_ERR_DENIED;
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case EAGAIN:
        return CM_ERR_LIMIT;
    case ENOMEM:
        return CM_ERR_NOMEM;
    default:
        return CM_ERR_IO;
    }
}

static int name_matches(const struct cm_fswatch *w, const char *name)
{
    if (w->name && strcmp(name, w->name) != 0)
        return 0;
    if (w->suffix) {
        size_t ln = strlen(name), ls = strlen(w->suffix);
        if (ln < ls || memcmp(name + ln - ls, w->suffix, ls) != 0)
            return 0;
    }
    return 1;
}

static int pending(const struct cm_fswatch *w)
{
    return w->n > 0 || w->overflow;
}

static void touch(struct cm_fswatch *w)
{
    int64_t now = cm_clock_mono_ms(NULL);
    if (!pending(w))
        w->first_ms = now;
    w->last_ms = now;
}

/* Adds @p name to the batch; if it cannot be held, the batch reports overflow instead. */
static void add_name(struct cm_fswatch *w, const char *name)
{
    char *copy;

    touch(w);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->names[i], name) == 0)
            return;
    if (w->n >= CM_FSWATCH_MAX_NAMES) {
        w->overflow = 1;
        return;
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 16;
        char **p = cm_realloc(w->names, ncap * sizeof *p);
        if (!p) {
            w->overflow = 1;
            return;
        }
        w->names = p;
        w->cap = ncap;
    }
    copy = cm_strdup(name);
    if (!copy) {
        w->overflow = 1;
        return;
    }
    w->names[w->n++] = copy;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void deliver(struct cm_fswatch *w)
{
    struct cm_fswatch_batch b;

    if (w->n > 1)
        qsort(w->names, w->n, sizeof *w->names, cmp_names);
    b.names = (const char *const *)w->names;
    b.n = w->n;
    b.overflow = w->overflow;
    w->fn(&b, w->ud);
    for (size_t i = 0; i < w->n; i++)
        cm_free(w->names[i]);
    w->n = 0;
    w->overflow = 0;
}

static void drop_batch(struct cm_fswatch *w)
{
    for (size_t i = 0; i < w->n; i++)
        cm_free(w->names[i]);
    cm_free(w->names);
    w->names = NULL;
    w->n = w->cap = 0;
}

/* Reads everything queued on the inotify fd. Returns 0, or -1 if the fd failed. */
static int drain(struct cm_fswatch *w)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t r = read(w->ifd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r <= 0) {
            cm_log_error(NULL, "fswatch: read inotify for %s: %s", w->dir,
                         r < 0 ? strerror(errno) : "end of file");
            return -1;
        }
        for (char *p = buf; p < buf + r;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                cm_log_warn(NULL, "fswatch: %s: event queue overflowed, rescan needed", w->dir);
                touch(w);
                w->overflow = 1;
                continue;
            }
            if (ev->wd != w->wd)
                continue;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
                /* the watch is gone with the directory: say so once, then stay quiet */
                cm_log_warn(NULL, "fswatch: %s: directory deleted or moved, no longer watched",
                            w->dir);
                touch(w);
                w->overflow = 1;
                w->wd = -1;
                continue;
            }
            if (ev->len == 0 || !ev->name[0])
                continue; /* event on the directory itself (e.g. its attributes) */
            if (name_matches(w, ev->name))
                add_name(w, ev->name);
        }
    }
}

/* ms until the batch is due (0: now); -1 if nothing is pending */
static int wait_ms(const struct cm_fswatch *w)
{
    int64_t due, left;
    if (!pending(w))
        return -1;
    due = w->last_ms + w->debounce_ms;
    if (due > w->first_ms + 10 * w->debounce_ms)
        due = w->first_ms + 10 * w->debounce_ms;
    left = due - cm_clock_mono_ms(NULL);
    if (left < 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

static void *watch_main(void *arg)
{
    struct cm_fswatch *w = arg;
    struct pollfd fds[2] = {{.fd = w->efd, .events = POLLIN}, {.fd = w->ifd, .events = POLLIN}};
    int ifd_ok = 1;

    for (;;) {
        int timeout = wait_ms(w);
        int r;

        if (timeout == 0) {
            deliver(w);
            continue;
        }
        fds[1].fd = ifd_ok ? w->ifd : -1;
        r = poll(fds, 2, timeout);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cm_log_error(NULL, "fswatch: poll for %s: %s", w->dir, strerror(errno));
            break;
        }
        if (fds[0].revents)
            break; /* stop requested */
        if (fds[1].revents && drain(w) != 0) {
            ifd_ok = 0; /* wait for stop; nothing more can be reported */
            touch(w);
            w->overflow = 1;
        }
    }
    return NULL;
}

static int start_thread(struct cm_fswatch *w)
{
    sigset_t all, old;
    int e;

    /* the watcher thread takes no signals: they belong to the daemon's main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        cm_log_error(NULL, "fswatch: pthread_create for %s: %s", w->dir, strerror(e));
        return e == EAGAIN ? CM_ERR_LIMIT : CM_ERR_IO;
    }
    w->thread_started = 1;
    return CM_OK;
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return CM_OK;
    *out = cm_strdup(s);
    return *out ? CM_OK : CM_ERR_NOMEM;
}

int cm_fswatch_new(struct cm_fswatch **out, const struct cm_fswatch_opts *opts)
{
    struct cm_fswatch *w = NULL;
    int rc = CM_OK;

    if (!out || !opts || !opts->dir || !opts->fn) {
        cm_log_error(NULL, "fswatch: directory and callback are required");
        rc = CM_ERR_INVAL;
        goto out;
    }
    w = cm_calloc(1, sizeof *w);
    if (!w) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    w->ifd = w->efd = w->wd = -1;
    w->fn = opts->fn;
    w->ud = opts->ud;
    w->debounce_ms = opts->debounce_ms ? opts->debounce_ms : CM_FSWATCH_DEBOUNCE_DEFAULT_MS;
    rc = dup_opt(opts->dir, &w->dir);
    if (!rc)
        rc = dup_opt(opts->suffix, &w->suffix);
    if (!rc)
        rc = dup_opt(opts->name, &w->name);
    if (rc) {
        cm_log_error(NULL, "fswatch: %s: out of memory", opts->dir);
        goto out;
    }

    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ifd < 0) {
        int e = errno;
        cm_log_error(NULL, "fswatch: inotify_init1 for %s: %s%s", w->dir, strerror(e),
                     e == EMFILE ? " (see fs.inotify.max_user_instances)" : "");
        rc = errno_to_err(e);
        goto out;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        int e = errno;
        cm_log_error(NULL, "fswatch: eventfd for %s: %s", w->dir, strerror(e));
        rc = errno_to_err(e);
        goto out;
    }
    w->wd = inotify_add_watch(w->ifd, w->dir, WATCH_MASK);
    if (w->wd < 0) {
        int e = errno;
        cm_log_error(NULL, "fswatch: inotify_add_watch %s: %s%s", w->dir, strerror(e),
                     e == ENOSPC ? " (see fs.inotify.max_user_watches)" : "");
        rc = errno_to_err(e);
        goto out;
    }
    rc = start_thread(w);
    if (rc)
        goto out;
    cm_log_debug(NULL, "fswatch: watching %s", w->dir);
    *out = w;
    w = NULL;
out:
    cm_fswatch_free(w);
    return rc;
}

void cm_fswatch_free(struct cm_fswatch *w)
{
    if (!w)
        return;
    if (w->thread_started) {
        uint64_t one = 1;
        ssize_t r;
        do
            r = write(w->efd, &one, sizeof one);
        while (r < 0 && errno == EINTR);
        /* r < 0 only if the counter is saturated, which also wakes the poll */
        pthread_join(w->thread, NULL);
    }
    if (w->ifd >= 0)
        close(w->ifd); /* also removes the watch */
    if (w->efd >= 0)
        close(w->efd);
    drop_batch(w);
    cm_free(w->dir);
    cm_free(w->suffix);
    cm_free(w->name);
    cm_free(w);
}
