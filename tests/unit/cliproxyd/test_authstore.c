/* SPDX-License-Identifier: MIT */
/*
 * test_authstore.c - cp_authstore on a real mkdtemp directory with the real fswatch
 * (short debounce): initial scan (codex + claude registered, kimi skipped with one
 * warning, malformed file invalid), files dropped in / atomically replaced / deleted
 * taking effect within 1 s, snapshots outliving changes, needs-re-login cleared by a
 * file change, refresh bookkeeping (due, write-back 0600 keeping unknown fields, no
 * spurious re-registration, permanent and temporary failures with backoff) and OOM
 * paths while loading. Refresh timing comes from a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authstore.h"
#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/log.h"
#include "scheduler.h"

#define T0_WALL_MS (1795305600LL * 1000) /* 2026-11-22T00:00:00Z */
#define T0_MONO_MS 1000000LL

/* ---- log capture (the sink is called from the watcher thread too) ---- */

static struct {
    pthread_mutex_t mu;
    char text[65536];
    size_t len;
} cap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sink(enum cm_log_level lvl, const char *line, size_t len, void *ud)
{
    (void)ud;
    (void)lvl;
    pthread_mutex_lock(&cap.mu);
    if (cap.len + len < sizeof cap.text) {
        memcpy(cap.text + cap.len, line, len);
        cap.len += len;
        cap.text[cap.len] = '\0';
    }
    pthread_mutex_unlock(&cap.mu);
}

/* Number of WARN lines containing both @p a and @p b. */
static int count_warns(const char *a, const char *b)
{
    int n = 0;
    const char *p;

    pthread_mutex_lock(&cap.mu);
    for (p = cap.text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        char line[CM_LOG_LINE_MAX];
        if (l >= sizeof line)
            l = sizeof line - 1;
        memcpy(line, p, l);
        line[l] = '\0';
        if (strstr(line, " WARN ") && strstr(line, a) && (!b || strstr(line, b)))
            n++;
        p += l + (nl ? 1 : 0);
    }
    pthread_mutex_unlock(&cap.mu);
    return n;
}

static int log_contains(const char *s)
{
    int r;
    pthread_mutex_lock(&cap.mu);
    r = strstr(cap.text, s) != NULL;
    pthread_mutex_unlock(&cap.mu);
    return r;
}

/* ---- fixture ---- */

struct fx {
    char dir[64];
    struct cm_clock_fake clk;
    struct cp_sched *s;
    struct cp_authstore *st;
};

static struct fx g_fx;

static int setup(void **state)
{
    struct fx *f = &g_fx;

    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cp_astore_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    cm_clock_fake_init(&f->clk, T0_WALL_MS, T0_MONO_MS);
    if (cp_sched_new(&f->clk.clock, &f->s))
        return -1;
    pthread_mutex_lock(&cap.mu);
    cap.len = 0;
    cap.text[0] = '\0';
    pthread_mutex_unlock(&cap.mu);
    cm_log_set_level(CM_LOG_INFO);
    cm_log_set_stderr(0);
    cm_log_set_sink(sink, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    DIR *d;
    struct dirent *de;
    char p[512];

    cm_alloc_fail_at(0);
    cp_authstore_free(f->st);
    cp_sched_free(f->s);
    d = opendir(f->dir);
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
            continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    cm_log_set_sink(NULL, NULL);
    cm_log_set_stderr(1);
    return 0;
}

static void start(struct fx *f)
{
    struct cp_authstore_opts o = {.debounce_ms = 30};
    assert_int_equal(cp_authstore_new(f->dir, f->s, &f->clk.clock, &o, &f->st), CM_OK);
    assert_int_equal(cp_authstore_start(f->st), CM_OK);
}

/* Writes @p body as @p name: atomically (temp + rename) or in place. */
static void put(const struct fx *f, const char *name, const char *body, int atomic)
{
    char path[512], tmp[512];
    FILE *fp;

    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", f->dir, name);
    fp = fopen(atomic ? tmp : path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(body, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    if (atomic)
        assert_int_equal(rename(tmp, path), 0);
}

static void del(const struct fx *f, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    assert_int_equal(unlink(path), 0);
}

static char *slurp(const struct fx *f, const char *name, mode_t *mode)
{
    char path[512];
    static char buf[65536];
    struct stat sb;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    assert_int_equal(stat(path, &sb), 0);
    *mode = sb.st_mode & 0777;
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* A codex file. @p expired RFC 3339 or NULL. */
static void codex_json(char *out, size_t cap_, const char *email, const char *token, int priority,
                       int disabled, const char *expired)
{
    snprintf(
        out, cap_,
        "{\"type\":\"codex\",\"email\":\"%s\",\"access_token\":\"%s\","
        "\"refresh_token\":\"rt_0123456789abcdefghijklmnopqrstuv\",\"id_token\":\"\","
        "\"account_id\":\"acct-1\",\"expired\":\"%s\",\"last_refresh\":\"2026-11-20T00:00:00Z\","
        "\"priority\":%d,\"disabled\":%s,\"custom_field\":{\"keep\":[1,\"x\"]}}\n",
        email, token, expired ? expired : "2027-06-01T00:00:00Z", priority,
        disabled ? "true" : "false");
}

static const char CLAUDE_JSON[] =
    "{\"type\":\"claude\",\"email\":\"bob@example.com\","
    "\"access_token\":\"sk-ant-oat01-AAAAbbbbCCCCddddEEEEffff0000111122223333\","
    "\"refresh_token\":\"sk-ant-ort01-ZZZZyyyyXXXXwwwwVVVVuuuu9999888877776666\","
    "\"expired\":\"2027-01-01T00:00:00Z\",\"priority\":\"10\",\"cloak_mode\":\"always\"}\n";

static const char KIMI_JSON[] =
    "{\"type\":\"kimi\",\"email\":\"carol@example.com\",\"project_id\":\"proj-123\","
    "\"token\":{\"access_token\":\"ya29.xxxx\",\"refresh_token\":\"1//yyyy\"}}\n";

static const char BAD_JSON[] = "{\"type\":\"codex\",\"access_token\":\"tok-bad-secret-value\","
                               "\"priority\":[1]}\n";

static int pick(struct fx *f, const char *provider, const char *model, char *id, size_t cap_)
{
    const char *const provs[] = {provider};
    struct cp_sched_pick_req rq = {.providers = provs, .n_providers = 1, .model = model};
    struct cp_sched_pick out;

    id[0] = '\0';
    if (cp_sched_pick(f->s, &rq, id, cap_, &out) != CM_OK || out.verdict != CP_SCHED_PICKED)
        return 0;
    return 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls until pick(model) returns @p want ("" = nothing), at most @p ms. */
static int wait_pick(struct fx *f, const char *prov, const char *model, const char *want, int ms)
{
    int64_t end = now_ms() + ms;
    char id[256];

    do {
        int ok = pick(f, prov, model, id, sizeof id);
        if ((!*want && !ok) || (*want && ok && strcmp(id, want) == 0))
            return 1;
        nap(10);
    } while (now_ms() < end);
    return 0;
}

static const struct cp_authstore_info *find_info(const struct cp_authstore_list *l,
                                                 const char *name)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

/* Polls until the entry's status string equals @p want, at most @p ms. */
static int wait_status(struct fx *f, const char *name, const char *want, int ms)
{
    int64_t end = now_ms() + ms;

    do {
        struct cp_authstore_list *l = NULL;
        const struct cp_authstore_info *it;
        int ok;
        assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
        it = find_info(l, name);
        ok = it && strcmp(cp_authstore_status_str(it), want) == 0;
        cp_authstore_list_free(l);
        if (ok)
            return 1;
        nap(10);
    } while (now_ms() < end);
    return 0;
}

/* ---- tests ---- */

static void test_initial_scan(void **state)
{
    struct fx *f = *state;
    struct cp_authstore_list *l = NULL;
    const struct cp_authstore_info *it;
    struct cp_authstore_cred *c;
    char buf[2048], id[256];

    codex_json(buf, sizeof buf, "alice@example.com", "tok-alice-AAAAAAAAAAAAAAAA", 5, 0, NULL);
    put(f, "codex-alice@example.com-plus.json", buf, 0);
    put(f, "claude-bob@example.com.json", CLAUDE_JSON, 0);
    put(f, "kimi-carol@example.com.json", KIMI_JSON, 0);
    put(f, "bad.json", BAD_JSON, 0);
    put(f, "notes.txt", "not json", 0);
    start(f);

    assert_true(pick(f, "codex", "gpt-5", id, sizeof id));
    assert_string_equal(id, "codex-alice@example.com-plus.json");
    assert_true(pick(f, "claude", "claude-sonnet-4-6", id, sizeof id));
    assert_string_equal(id, "claude-bob@example.com.json");
    assert_false(pick(f, "kimi", "kimi-k2", id, sizeof id));

    assert_int_equal(count_warns("kimi-carol@example.com.json", "kimi"), 1);
    assert_int_equal(count_warns("bad.json", "priority"), 1);
    assert_false(log_contains("tok-bad-secret-value"));
    assert_false(log_contains("tok-alice"));

    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    assert_int_equal(l->n, 4);
    it = find_info(l, "codex-alice@example.com-plus.json");
    assert_non_null(it);
    assert_int_equal(it->kind, CP_AUTHSTORE_VALID);
    assert_string_equal(it->provider, "codex");
    assert_string_equal(it->email, "alice@example.com");
    assert_string_equal(cp_authstore_status_str(it), "active");
    it = find_info(l, "kimi-carol@example.com.json");
    assert_non_null(it);
    assert_int_equal(it->kind, CP_AUTHSTORE_UNSUPPORTED);
    assert_string_equal(it->provider, "kimi");
    assert_string_equal(cp_authstore_status_str(it), "unsupported");
    it = find_info(l, "bad.json");
    assert_non_null(it);
    assert_int_equal(it->kind, CP_AUTHSTORE_INVALID);
    assert_string_equal(cp_authstore_status_str(it), "invalid");
    assert_non_null(it->error);
    assert_non_null(strstr(it->error, "priority"));
    cp_authstore_list_free(l);

    c = cp_authstore_acquire(f->st, "claude-bob@example.com.json");
    assert_non_null(c);
    assert_string_equal(c->provider, "claude");
    assert_int_equal(c->af->priority, 10);
    cp_authstore_release(c);
    assert_null(cp_authstore_acquire(f->st, "bad.json"));
    assert_null(cp_authstore_acquire(f->st, "kimi-carol@example.com.json"));

    /* same content again: no second warning; new content: one more */
    put(f, "kimi-carol@example.com.json", KIMI_JSON, 1);
    assert_int_equal(cp_authstore_rescan(f->st), CM_OK);
    nap(200);
    assert_int_equal(count_warns("kimi-carol@example.com.json", "kimi"), 1);
    put(f, "kimi-carol@example.com.json",
        "{\"type\":\"kimi\",\"email\":\"carol@example.com\",\"project_id\":\"proj-456\"}", 1);
    nap(300);
    assert_int_equal(count_warns("kimi-carol@example.com.json", "kimi"), 2);

    /* the malformed file becomes valid: it replaces its invalid entry */
    codex_json(buf, sizeof buf, "dan@example.com", "tok-dan-DDDDDDDDDDDDDDDD", 50, 0, NULL);
    put(f, "bad.json", buf, 1);
    assert_true(wait_pick(f, "codex", "gpt-5", "bad.json", 1000));
    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    it = find_info(l, "bad.json");
    assert_int_equal(it->kind, CP_AUTHSTORE_VALID);
    assert_null(it->error);
    cp_authstore_list_free(l);
}

static void test_new_file_picked(void **state)
{
    struct fx *f = *state;
    char buf[2048];
    int64_t t0;

    start(f);
    assert_true(wait_pick(f, "codex", "gpt-5", "", 0));
    codex_json(buf, sizeof buf, "new@example.com", "tok-new-NNNNNNNNNNNNNNNN", 0, 0, NULL);
    t0 = now_ms();
    put(f, "codex-new@example.com.json", buf, 1);
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-new@example.com.json", 1000));
    assert_true(now_ms() - t0 < 1000);
    /* also a file written in place (no rename) */
    put(f, "claude-bob@example.com.json", CLAUDE_JSON, 0);
    assert_true(wait_pick(f, "claude", "claude-opus-4-6", "claude-bob@example.com.json", 1000));
}

static void test_atomic_replace(void **state)
{
    struct fx *f = *state;
    char buf[2048];

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 1, 0, NULL);
    put(f, "codex-a.json", buf, 0);
    codex_json(buf, sizeof buf, "b@example.com", "tok-b-BBBBBBBBBBBBBBBBBB", 5, 0, NULL);
    put(f, "codex-b.json", buf, 0);
    start(f);
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-b.json", 0));

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 10, 0, NULL);
    put(f, "codex-a.json", buf, 1);
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-a.json", 1000));

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 10, 1, NULL);
    put(f, "codex-a.json", buf, 1);
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-b.json", 1000));
    assert_true(wait_status(f, "codex-a.json", "disabled", 1000));
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    char buf[2048], id[256];
    int i;

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 10, 0, NULL);
    put(f, "codex-a.json", buf, 0);
    codex_json(buf, sizeof buf, "b@example.com", "tok-b-BBBBBBBBBBBBBBBBBB", 1, 0, NULL);
    put(f, "codex-b.json", buf, 0);
    start(f);
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-a.json", 0));
    del(f, "codex-a.json");
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-b.json", 1000));
    for (i = 0; i < 5; i++) {
        assert_true(pick(f, "codex", "gpt-5", id, sizeof id));
        assert_string_equal(id, "codex-b.json");
    }
    assert_null(cp_authstore_acquire(f->st, "codex-a.json"));
    del(f, "codex-b.json");
    assert_true(wait_pick(f, "codex", "gpt-5", "", 1000));
}

static void test_snapshot_survives_change(void **state)
{
    struct fx *f = *state;
    struct cp_authstore_cred *old, *cur;
    char buf[2048];
    int64_t end;

    codex_json(buf, sizeof buf, "a@example.com", "tok-old-OOOOOOOOOOOOOOOO", 3, 0, NULL);
    put(f, "codex-a.json", buf, 0);
    start(f);
    old = cp_authstore_acquire(f->st, "codex-a.json");
    assert_non_null(old);
    assert_string_equal(old->access_token, "tok-old-OOOOOOOOOOOOOOOO");
    assert_string_equal(old->account_id, "acct-1");

    codex_json(buf, sizeof buf, "a@example.com", "tok-new-NNNNNNNNNNNNNNNN", 7, 0, NULL);
    put(f, "codex-a.json", buf, 1);
    end = now_ms() + 1000;
    for (;;) {
        cur = cp_authstore_acquire(f->st, "codex-a.json");
        assert_non_null(cur);
        if (strcmp(cur->access_token, "tok-new-NNNNNNNNNNNNNNNN") == 0)
            break;
        cp_authstore_release(cur);
        assert_true(now_ms() < end);
        nap(10);
    }
    assert_int_equal(cur->af->priority, 7);
    cp_authstore_release(cur);
    /* the old snapshot is untouched */
    assert_string_equal(old->access_token, "tok-old-OOOOOOOOOOOOOOOO");
    assert_int_equal(old->af->priority, 3);
    assert_string_equal(old->id, "codex-a.json");

    del(f, "codex-a.json");
    assert_true(wait_pick(f, "codex", "gpt-5", "", 1000));
    assert_string_equal(old->access_token, "tok-old-OOOOOOOOOOOOOOOO");
    /* and outlives the store */
    cp_authstore_free(f->st);
    f->st = NULL;
    assert_string_equal(old->af->email, "a@example.com");
    cp_authstore_release(old);
}

static void test_relogin_cleared_by_change(void **state)
{
    struct fx *f = *state;
    char buf[2048];

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 1, 0, NULL);
    put(f, "codex-a.json", buf, 0);
    start(f);
    assert_int_equal(cp_sched_set_relogin(f->s, "codex-a.json"), CM_OK);
    assert_true(wait_status(f, "codex-a.json", "needs re-login", 0));
    assert_true(wait_pick(f, "codex", "gpt-5", "", 0));
    /* rewriting the same bytes is no change */
    put(f, "codex-a.json", buf, 1);
    nap(300);
    assert_true(wait_status(f, "codex-a.json", "needs re-login", 0));
    codex_json(buf, sizeof buf, "a@example.com", "tok-a2-AAAAAAAAAAAAAAAAA", 1, 0, NULL);
    put(f, "codex-a.json", buf, 1);
    assert_true(wait_status(f, "codex-a.json", "active", 1000));
    assert_true(wait_pick(f, "codex", "gpt-5", "codex-a.json", 0));
}

static const char TOKEN_RESP[] = "{\"access_token\":\"tok-refreshed-RRRRRRRRRRRR\","
                                 "\"refresh_token\":\"rt_new_0123456789abcdefghijkl\","
                                 "\"expires_in\":864000,\"token_type\":\"Bearer\"}";

static void test_refresh_success(void **state)
{
    struct fx *f = *state;
    struct cp_authstore_list *l = NULL;
    const struct cp_authstore_info *it;
    struct cp_authstore_cred *ref = NULL, *c;
    char buf[2048], **ids = NULL;
    size_t n = 0;
    uint64_t loads;
    mode_t mode;
    char *text;

    /* expires in 1 day: within codex's 5-day lead; the other one in ~6 months */
    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 1, 0,
               "2026-11-23T00:00:00Z");
    put(f, "codex-a.json", buf, 0);
    codex_json(buf, sizeof buf, "b@example.com", "tok-b-BBBBBBBBBBBBBBBBBB", 1, 0, NULL);
    put(f, "codex-b.json", buf, 0);
    start(f);

    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "codex-a.json");
    cp_authstore_ids_free(ids, n);

    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-a.json", &ref), CM_OK);
    assert_non_null(ref);
    assert_string_equal(ref->af->refresh_token, "rt_0123456789abcdefghijklmnopqrstuv");
    cp_authstore_release(ref);
    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-a.json", NULL), CM_ERR_AGAIN);
    assert_int_equal(cp_authstore_begin_refresh(f->st, "nope.json", NULL), CM_ERR_NOTFOUND);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 0);
    assert_null(ids);

    /* a marker only a re-registration (cp_sched_update) would clear */
    assert_int_equal(cp_sched_set_relogin(f->s, "codex-a.json"), CM_OK);
    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    loads = find_info(l, "codex-a.json")->loads;
    cp_authstore_list_free(l);

    assert_int_equal(
        cp_authstore_finish_refresh(f->st, "codex-a.json", TOKEN_RESP, strlen(TOKEN_RESP), 0, NULL),
        CM_OK);
    c = cp_authstore_acquire(f->st, "codex-a.json");
    assert_non_null(c);
    assert_string_equal(c->access_token, "tok-refreshed-RRRRRRRRRRRR");
    assert_string_equal(c->af->refresh_token, "rt_new_0123456789abcdefghijkl");
    cp_authstore_release(c);

    text = slurp(f, "codex-a.json", &mode);
    assert_int_equal(mode, 0600);
    assert_non_null(strstr(text, "tok-refreshed-RRRRRRRRRRRR"));
    assert_non_null(strstr(text, "\"custom_field\""));
    assert_non_null(strstr(text, "\"keep\""));
    assert_null(strstr(text, "tok-a-AAAAAAAAAAAAAAAAAA"));

    /* let the watcher see our own write: nothing must be re-registered */
    nap(400);
    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    it = find_info(l, "codex-a.json");
    assert_int_equal(it->loads, loads);
    assert_string_equal(cp_authstore_status_str(it), "needs re-login");
    assert_int_equal(it->refreshing, 0);
    assert_null(it->error);
    cp_authstore_list_free(l);

    /* new expiry is 10 days out: nothing due */
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 0);
    /* an unusable answer is a temporary failure */
    cm_clock_fake_advance_ms(&f->clk, 6LL * 24 * 3600 * 1000);
    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-a.json", NULL), CM_OK);
    assert_int_not_equal(cp_authstore_finish_refresh(f->st, "codex-a.json", "{}", 2, 0, NULL),
                         CM_OK);
    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    it = find_info(l, "codex-a.json");
    assert_int_equal(it->refresh_failures, 1);
    assert_non_null(it->error);
    cp_authstore_list_free(l);
}

static void test_refresh_failures(void **state)
{
    struct fx *f = *state;
    struct cp_authstore_list *l = NULL;
    const struct cp_authstore_info *it;
    char buf[2048], **ids = NULL;
    size_t n = 0;

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 1, 0,
               "2026-11-23T00:00:00Z");
    put(f, "codex-a.json", buf, 0);
    codex_json(buf, sizeof buf, "b@example.com", "tok-b-BBBBBBBBBBBBBBBBBB", 1, 0,
               "2026-11-23T00:00:00Z");
    put(f, "codex-b.json", buf, 0);
    start(f);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 2);
    cp_authstore_ids_free(ids, n);

    /* permanent: needs re-login, visible, not due, not picked */
    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-a.json", NULL), CM_OK);
    assert_int_equal(cp_authstore_finish_refresh(f->st, "codex-a.json", NULL, 0, 1,
                                                 "invalid_grant: refresh_token_reused"),
                     CM_OK);
    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    it = find_info(l, "codex-a.json");
    assert_string_equal(cp_authstore_status_str(it), "needs re-login");
    assert_int_equal(it->needs_relogin, 1);
    assert_non_null(it->error);
    assert_non_null(strstr(it->error, "refresh_token_reused"));
    cp_authstore_list_free(l);
    assert_true(count_warns("codex-a.json", "re-login") >= 1);

    /* temporary: 1 min, then 2 min */
    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-b.json", NULL), CM_OK);
    assert_int_equal(cp_authstore_finish_refresh(f->st, "codex-b.json", NULL, 0, 0, "timeout"),
                     CM_OK);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 0);
    cm_clock_fake_advance_ms(&f->clk, 59 * 1000);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 0);
    cm_clock_fake_advance_ms(&f->clk, 1000);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "codex-b.json");
    cp_authstore_ids_free(ids, n);
    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-b.json", NULL), CM_OK);
    assert_int_equal(cp_authstore_finish_refresh(f->st, "codex-b.json", NULL, 0, 0, "timeout"),
                     CM_OK);
    cm_clock_fake_advance_ms(&f->clk, 119 * 1000);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 0);
    cm_clock_fake_advance_ms(&f->clk, 1000);
    assert_int_equal(cp_authstore_due(f->st, &ids, &n), CM_OK);
    assert_int_equal(n, 1);
    cp_authstore_ids_free(ids, n);

    /* a file change clears re-login and the error */
    codex_json(buf, sizeof buf, "a@example.com", "tok-a2-AAAAAAAAAAAAAAAAA", 1, 0, NULL);
    put(f, "codex-a.json", buf, 1);
    assert_true(wait_status(f, "codex-a.json", "active", 1000));
    assert_int_equal(cp_authstore_list(f->st, &l), CM_OK);
    it = find_info(l, "codex-a.json");
    assert_int_equal(it->needs_relogin, 0);
    assert_null(it->error);
    cp_authstore_list_free(l);
}

static void test_refresh_dropped_when_file_changed(void **state)
{
    struct fx *f = *state;
    struct cp_authstore_cred *c;
    char buf[2048];

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 1, 0,
               "2026-11-23T00:00:00Z");
    put(f, "codex-a.json", buf, 0);
    start(f);
    assert_int_equal(cp_authstore_begin_refresh(f->st, "codex-a.json", NULL), CM_OK);
    codex_json(buf, sizeof buf, "a@example.com", "tok-user-UUUUUUUUUUUUUUU", 1, 0, NULL);
    put(f, "codex-a.json", buf, 0);
    assert_int_equal(cp_authstore_rescan(f->st), CM_OK);
    assert_int_equal(
        cp_authstore_finish_refresh(f->st, "codex-a.json", TOKEN_RESP, strlen(TOKEN_RESP), 0, NULL),
        CM_ERR_CLOSED);
    c = cp_authstore_acquire(f->st, "codex-a.json");
    assert_string_equal(c->access_token, "tok-user-UUUUUUUUUUUUUUU");
    cp_authstore_release(c);
    assert_int_equal(cp_authstore_finish_refresh(f->st, "gone.json", NULL, 0, 1, NULL),
                     CM_ERR_NOTFOUND);
}

static void test_oom_load(void **state)
{
    struct fx *f = *state;
    char buf[2048], id[256];
    long n;
    int done = 0;

    codex_json(buf, sizeof buf, "a@example.com", "tok-a-AAAAAAAAAAAAAAAAAA", 1, 0, NULL);
    put(f, "codex-a.json", buf, 0);
    put(f, "claude-bob@example.com.json", CLAUDE_JSON, 0);
    put(f, "kimi-carol@example.com.json", KIMI_JSON, 0);
    put(f, "bad.json", BAD_JSON, 0);
    cm_log_set_sink(NULL, NULL); /* OOM lines are expected */
    for (n = 1; !done && n < 2000; n++) {
        struct cp_sched *s = NULL;
        struct cp_authstore *st = NULL;
        struct cp_authstore_list *l = NULL;
        int rc;

        assert_int_equal(cp_sched_new(&f->clk.clock, &s), CM_OK);
        cm_alloc_fail_at(n);
        rc = cp_authstore_new(f->dir, s, &f->clk.clock, NULL, &st);
        if (rc == CM_OK)
            rc = cp_authstore_rescan(st);
        cm_alloc_fail_at(0);
        assert_true(rc == CM_OK || rc == CM_ERR_NOMEM);
        if (rc == CM_OK && st)
            done = 1; /* no failure was hit: every path has been walked */
        if (!st)
            assert_int_equal(cp_authstore_new(f->dir, s, &f->clk.clock, NULL, &st), CM_OK);
        /* a later rescan repairs whatever the failure left */
        assert_int_equal(cp_authstore_rescan(st), CM_OK);
        assert_int_equal(cp_authstore_list(st, &l), CM_OK);
        assert_int_equal(l->n, 4);
        assert_int_equal(find_info(l, "bad.json")->kind, CP_AUTHSTORE_INVALID);
        assert_int_equal(find_info(l, "kimi-carol@example.com.json")->kind,
                         CP_AUTHSTORE_UNSUPPORTED);
        assert_int_equal(find_info(l, "codex-a.json")->kind, CP_AUTHSTORE_VALID);
        cp_authstore_list_free(l);
        {
            const char *const provs[] = {"codex"};
            struct cp_sched_pick_req rq = {.providers = provs, .n_providers = 1, .model = "gpt-5"};
            struct cp_sched_pick out;
            assert_int_equal(cp_sched_pick(s, &rq, id, sizeof id, &out), CM_OK);
            assert_int_equal(out.verdict, CP_SCHED_PICKED);
            assert_string_equal(id, "codex-a.json");
        }
        cp_authstore_free(st);
        cp_sched_free(s);
    }
    assert_true(done);
    assert_true(n > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_initial_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_file_picked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_survives_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relogin_cleared_by_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_dropped_when_file_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
