/* SPDX-License-Identifier: MIT */
/*
 * test_fswatch.c - cm_fswatch in a mkdtemp directory: create, overwrite, rename in and
 * out, delete, chmod, debounce of a burst, suffix and name filters, the directory going
 * away, errors, OOM, and free() returning promptly while events keep coming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/fswatch.h"
#include "cm/log.h"

#define MAX_SEEN 256

/* what the callback saw, over all batches */
struct seen {
    pthread_mutex_t mu;
    char names[MAX_SEEN][64];
    size_t n;
    int batches;
    int overflow;
    int unsorted; /* a batch was not sorted or had duplicates */
    size_t max_batch;
};

struct fx {
    char dir[64];
    struct seen seen;
    struct cm_fswatch *w;
};

static void on_batch(const struct cm_fswatch_batch *b, void *ud)
{
    struct seen *s = ud;
    pthread_mutex_lock(&s->mu);
    s->batches++;
    if (b->overflow)
        s->overflow = 1;
    if (b->n > s->max_batch)
        s->max_batch = b->n;
    for (size_t i = 0; i < b->n; i++) {
        /* runs on the watcher thread: record, assert later on the test's thread */
        if (i > 0 && strcmp(b->names[i - 1], b->names[i]) >= 0)
            s->unsorted = 1;
        if (s->n < MAX_SEEN)
            snprintf(s->names[s->n++], sizeof s->names[0], "%s", b->names[i]);
    }
    pthread_mutex_unlock(&s->mu);
}

static int seen_has(struct seen *s, const char *name)
{
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && !found; i++)
        found = strcmp(s->names[i], name) == 0;
    pthread_mutex_unlock(&s->mu);
    return found;
}

static int seen_batches(struct seen *s)
{
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->batches;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void seen_reset(struct seen *s)
{
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    s->batches = 0;
    s->overflow = 0;
    s->max_batch = 0;
    pthread_mutex_unlock(&s->mu);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* waits up to @p ms for @p name to be reported */
static int wait_for(struct seen *s, const char *name, long ms)
{
    int64_t end = cm_clock_mono_ms(NULL) + ms;
    while (cm_clock_mono_ms(NULL) < end) {
        if (seen_has(s, name))
            return 1;
        sleep_ms(5);
    }
    return seen_has(s, name);
}

static int wait_overflow(struct seen *s, long ms)
{
    int64_t end = cm_clock_mono_ms(NULL) + ms;
    int o = 0;
    while (!o && cm_clock_mono_ms(NULL) < end) {
        pthread_mutex_lock(&s->mu);
        o = s->overflow;
        pthread_mutex_unlock(&s->mu);
        if (!o)
            sleep_ms(5);
    }
    return o;
}

static void path_in(const struct fx *f, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", f->dir, name);
}

static void write_file(const struct fx *f, const char *name, const char *text)
{
    char p[128];
    int fd;
    path_in(f, name, p, sizeof p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (!d)
        return;
    for (e = readdir(d); e; e = readdir(d)) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static struct fx the_fx;

static int setup(void **state)
{
    struct fx *f = &the_fx;
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cm_fswatch_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    pthread_mutex_init(&f->seen.mu, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cm_fswatch_free(f->w);
    assert_int_equal(f->seen.unsorted, 0);
    rm_tree(f->dir);
    pthread_mutex_destroy(&f->seen.mu);
    return 0;
}

static void start(struct fx *f, const char *suffix, const char *name, unsigned debounce)
{
    struct cm_fswatch_opts o = {.dir = f->dir,
                                .suffix = suffix,
                                .name = name,
                                .debounce_ms = debounce,
                                .fn = on_batch,
                                .ud = &f->seen};
    assert_int_equal(cm_fswatch_new(&f->w, &o), CM_OK);
}

static void create_write_delete(void **state)
{
    struct fx *f = *state;
    char a[128], b[128];

    write_file(f, "old.json", "{}"); /* before the watcher: not reported */
    start(f, NULL, NULL, 50);

    write_file(f, "new.json", "{}");
    assert_true(wait_for(&f->seen, "new.json", 1000));
    assert_false(seen_has(&f->seen, "old.json"));

    seen_reset(&f->seen);
    write_file(f, "old.json", "{\"x\":1}"); /* overwrite in place */
    assert_true(wait_for(&f->seen, "old.json", 1000));

    seen_reset(&f->seen);
    path_in(f, "new.json", a, sizeof a);
    chmod(a, 0644);
    assert_true(wait_for(&f->seen, "new.json", 1000));

    seen_reset(&f->seen);
    unlink(a);
    assert_true(wait_for(&f->seen, "new.json", 1000));

    /* temp + rename, as our writer and editors do: both names are reported */
    seen_reset(&f->seen);
    write_file(f, "c.json.tmp", "{}");
    path_in(f, "c.json.tmp", a, sizeof a);
    path_in(f, "c.json", b, sizeof b);
    assert_int_equal(rename(a, b), 0);
    assert_true(wait_for(&f->seen, "c.json", 1000));
    assert_true(seen_has(&f->seen, "c.json.tmp"));

    /* renamed out of the directory */
    seen_reset(&f->seen);
    assert_int_equal(rename(b, "/tmp/cm_fswatch_moved_out.json"), 0);
    assert_true(wait_for(&f->seen, "c.json", 1000));
    unlink("/tmp/cm_fswatch_moved_out.json");
}

static void rename_into_from_elsewhere(void **state)
{
    struct fx *f = *state;
    char outside[] = "/tmp/cm_fswatch_src_XXXXXX";
    char src[128], dst[128];
    int fd = mkstemp(outside);

    assert_true(fd >= 0);
    close(fd);
    start(f, ".json", NULL, 50);
    snprintf(src, sizeof src, "%s", outside);
    path_in(f, "moved.json", dst, sizeof dst);
    assert_int_equal(rename(src, dst), 0);
    assert_true(wait_for(&f->seen, "moved.json", 1000));
}

static void burst_is_debounced(void **state)
{
    struct fx *f = *state;
    char name[32];

    start(f, NULL, NULL, 150);
    for (int i = 0; i < 100; i++)
        write_file(f, "burst.json", "{\"n\":1}");
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "f%02d.json", i);
        write_file(f, name, "{}");
    }
    assert_true(wait_for(&f->seen, "f19.json", 1000));
    sleep_ms(300); /* anything left would have fired by now */
    /* 120 events, a handful of callbacks (normally 1; a stall of the writer may split it) */
    assert_true(seen_batches(&f->seen) <= 3);
    pthread_mutex_lock(&f->seen.mu);
    assert_true(f->seen.max_batch <= 21); /* burst.json at most once per batch + 20 names */
    assert_true(f->seen.n <= 21 * (size_t)f->seen.batches);
    pthread_mutex_unlock(&f->seen.mu);
    assert_true(seen_has(&f->seen, "burst.json"));
}

static void suffix_filter(void **state)
{
    struct fx *f = *state;

    start(f, ".json", NULL, 50);
    write_file(f, "x.txt", "no");
    write_file(f, "y.json.swp", "no");
    write_file(f, "y.json", "{}");
    assert_true(wait_for(&f->seen, "y.json", 1000));
    sleep_ms(150);
    assert_false(seen_has(&f->seen, "x.txt"));
    assert_false(seen_has(&f->seen, "y.json.swp"));
}

static void name_filter_editor_replace(void **state)
{
    struct fx *f = *state;
    char a[128], b[128];

    start(f, NULL, "config.yaml", 50);
    write_file(f, "config.yaml", "port: 1\n");
    assert_true(wait_for(&f->seen, "config.yaml", 1000));
    seen_reset(&f->seen);
    /* vim-style: write a swap file, then replace the file by rename */
    write_file(f, ".config.yaml.swp", "x");
    write_file(f, "config.yaml.new", "port: 2\n");
    path_in(f, "config.yaml.new", a, sizeof a);
    path_in(f, "config.yaml", b, sizeof b);
    assert_int_equal(rename(a, b), 0);
    assert_true(wait_for(&f->seen, "config.yaml", 1000));
    sleep_ms(120);
    pthread_mutex_lock(&f->seen.mu);
    assert_int_equal(f->seen.n, 1);
    pthread_mutex_unlock(&f->seen.mu);
}

static void dir_removed_reports_overflow(void **state)
{
    struct fx *f = *state;

    cm_log_set_stderr(0);
    start(f, NULL, NULL, 50);
    rm_tree(f->dir);
    assert_true(wait_overflow(&f->seen, 1000));
    cm_log_set_stderr(1);
}

static atomic_int writer_stop;

static void *writer(void *arg)
{
    struct fx *f = arg;
    char name[32];
    int i = 0;
    while (!atomic_load(&writer_stop)) {
        snprintf(name, sizeof name, "w%d.json", i++ % 50);
        write_file(f, name, "{}");
    }
    return NULL;
}

static void free_is_prompt(void **state)
{
    struct fx *f = *state;
    pthread_t t;
    int64_t t0, took;

    /* a long debounce with changes pending: free must not wait for it */
    start(f, NULL, NULL, 5000);
    write_file(f, "pending.json", "{}");
    sleep_ms(50);
    t0 = cm_clock_mono_ms(NULL);
    cm_fswatch_free(f->w);
    f->w = NULL;
    took = cm_clock_mono_ms(NULL) - t0;
    assert_true(took < 500);
    assert_int_equal(seen_batches(&f->seen), 0); /* undelivered changes are dropped */

    /* events arriving while free runs */
    start(f, NULL, NULL, 20);
    atomic_store(&writer_stop, 0);
    assert_int_equal(pthread_create(&t, NULL, writer, f), 0);
    sleep_ms(100);
    t0 = cm_clock_mono_ms(NULL);
    cm_fswatch_free(f->w);
    f->w = NULL;
    took = cm_clock_mono_ms(NULL) - t0;
    atomic_store(&writer_stop, 1);
    pthread_join(t, NULL);
    assert_true(took < 500);
}

static void errors(void **state)
{
    struct fx *f = *state;
    struct cm_fswatch *w = (struct cm_fswatch *)0x1;
    struct cm_fswatch_opts o = {.dir = "/nonexistent/cm_fswatch", .fn = on_batch, .ud = &f->seen};
    char file[128];

    cm_log_set_stderr(0);
    assert_int_equal(cm_fswatch_new(&w, &o), CM_ERR_NOTFOUND);
    assert_ptr_equal(w, (struct cm_fswatch *)0x1); /* untouched on failure */
    write_file(f, "plain", "x");
    path_in(f, "plain", file, sizeof file);
    o.dir = file;
    assert_int_equal(cm_fswatch_new(&w, &o), CM_ERR_INVAL);
    o.dir = f->dir;
    o.fn = NULL;
    assert_int_equal(cm_fswatch_new(&w, &o), CM_ERR_INVAL);
    assert_int_equal(cm_fswatch_new(&w, NULL), CM_ERR_INVAL);
    cm_fswatch_free(NULL);
    cm_log_set_stderr(1);
}

static void oom_fails_cleanly(void **state)
{
    struct fx *f = *state;
    struct cm_fswatch_opts o = {
        .dir = f->dir, .suffix = ".json", .name = "a.json", .fn = on_batch, .ud = &f->seen};
    int ok = 0;

    cm_log_set_stderr(0);
    for (long n = 1; n < 20 && !ok; n++) {
        struct cm_fswatch *w = NULL;
        int rc;
        cm_alloc_fail_at(n);
        rc = cm_fswatch_new(&w, &o);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            ok = 1;
            cm_fswatch_free(w);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
            assert_null(w);
        }
    }
    cm_log_set_stderr(1);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_write_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(rename_into_from_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(burst_is_debounced, setup, teardown),
        cmocka_unit_test_setup_teardown(suffix_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(name_filter_editor_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(dir_removed_reports_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(free_is_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_fails_cleanly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
