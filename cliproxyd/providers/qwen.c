/* SPDX-License-Identifier: MIT */
/*
 * qwen.c - Qwen upstream (see qwen.h): base URL, body rules, headers, quota errors, and
 * the per-credential sliding-window limiter (a ring of the last 60 request times per
 * credential, in an array searched linearly: only credentials active in the last
 * minute are kept, a handful in practice).
 */
#include "providers/qwen.h"

#include "providers/openai_compat.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- base URL ---- */

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r' ||
                  (*s)[*n - 1] == '\n'))
        (*n)--;
}

int cp_qwen_base(const char *resource_url, const char *default_base, char **out)
{
    struct cm_buf b;
    const char *s = resource_url;
    size_t n = s ? strlen(s) : 0;
    int rc, is_default;

    if (!out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, 16 * 1024);
    trim(&s, &n);
    is_default = n == 0;
    if (is_default) {
        s = default_base ? default_base : CP_QWEN_DEFAULT_BASE;
        n = strlen(s);
        trim(&s, &n);
    }
    rc = CM_OK;
    if (!is_default && !memmem(s, n, "://", 3))
        rc = cm_buf_append_str(&b, "https://");
    if (!rc)
        rc = cm_buf_append(&b, s, n);
    if (rc)
        goto out;
    while (b.len && b.data[b.len - 1] == '/')
        b.data[--b.len] = '\0';
    if (!is_default && (b.len < 3 || strcmp(b.data + b.len - 3, "/v1") != 0))
        rc = cm_buf_append_str(&b, "/v1");
    if (rc)
        goto out;
    *out = cm_buf_release(&b, NULL);
    rc = *out ? CM_OK : CM_ERR_NOMEM;
out:
    cm_buf_cleanup(&b);
    return rc == CM_ERR_LIMIT ? CM_ERR_NOMEM : rc;
}

/* ---- body ---- */

static int add_text(struct cm_buf *b, const char *t)
{
    int rc = CM_OK;
    if (!t || !*t)
        return CM_OK;
    if (b->len)
        rc = cm_buf_append(b, "\n\n", 2);
    return rc ? rc : cm_buf_append_str(b, t);
}

static int collect(const cJSON *content, struct cm_buf *b)
{
    const cJSON *part;
    if (!content || cJSON_IsNull(content))
        return CM_OK;
    if (cJSON_IsString(content))
        return add_text(b, content->valuestring);
    if (!cJSON_IsArray(content))
        return CM_ERR_INVAL;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        int rc;
        if (cJSON_IsString(part))
            rc = add_text(b, part->valuestring);
        else if (cJSON_IsString(t))
            rc = add_text(b, t->valuestring);
        else
            rc = CM_OK; /* non-text parts of a system message have no place upstream */
        if (rc)
            return rc;
    }
    return CM_OK;
}

static int system_message(const char *text, cJSON **out)
{
    cJSON *msg = NULL, *content = NULL, *part = NULL, *cc = NULL;
    int rc = cm_json_new_object(&msg);
    if (!rc)
        rc = cm_json_set_string(msg, "role", "system");
    if (!rc)
        rc = cm_json_new_array(&content);
    if (!rc)
        rc = cm_json_new_object(&part);
    if (!rc)
        rc = cm_json_set_string(part, "type", "text");
    if (!rc)
        rc = cm_json_set_string(part, "text", text);
    if (!rc)
        rc = cm_json_new_object(&cc);
    if (!rc)
        rc = cm_json_set_string(cc, "type", "ephemeral");
    if (!rc)
        rc = cm_json_adopt(part, "cache_control", &cc);
    if (!rc)
        rc = cm_json_adopt(content, NULL, &part);
    if (!rc)
        rc = cm_json_adopt(msg, "content", &content);
    if (rc) {
        cJSON_Delete(msg);
        cJSON_Delete(content);
        cJSON_Delete(part);
        cJSON_Delete(cc);
        return rc;
    }
    *out = msg;
    return CM_OK;
}

int cp_qwen_prepare(cJSON *chat, bool stream)
{
    struct cm_buf b;
    cJSON *msgs, *m, *next, *sys = NULL;
    int rc = CM_OK;

    cm_buf_init(&b, 16 * 1024 * 1024);
    if (!cJSON_IsObject(chat))
        return CM_ERR_INVAL;
    msgs = cJSON_GetObjectItemCaseSensitive(chat, "messages");
    if (!cJSON_IsArray(msgs))
        return CM_ERR_INVAL;
    for (m = msgs->child; m && !rc; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(role) && (strcmp(role->valuestring, "system") == 0 ||
                                     strcmp(role->valuestring, "developer") == 0))
            rc = collect(cJSON_GetObjectItemCaseSensitive(m, "content"), &b);
    }
    if (!rc)
        rc = system_message(b.data ? b.data : "", &sys);
    if (rc)
        goto out;
    for (m = msgs->child; m; m = next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        next = m->next;
        if (cJSON_IsString(role) && (strcmp(role->valuestring, "system") == 0 ||
                                     strcmp(role->valuestring, "developer") == 0))
            cJSON_Delete(cJSON_DetachItemViaPointer(msgs, m));
    }
    if (msgs->child) {
        if (!cJSON_InsertItemInArray(msgs, 0, sys)) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        sys = NULL;
    } else if ((rc = cm_json_adopt(msgs, NULL, &sys))) {
        goto out;
    }
    rc = cp_compat_prepare(chat, stream);
out:
    cJSON_Delete(sys);
    cm_buf_cleanup(&b);
    return rc == CM_ERR_LIMIT ? CM_ERR_NOMEM : rc;
}

/* ---- request ---- */

int cp_qwen_build(const char *base, const char *access_token, bool stream,
                  const char *const *hdr_names, const char *const *hdr_values, size_t n_hdrs,
                  struct cp_upreq *out)
{
    static const char *const fixed[][2] = {
        {"Content-Type", "application/json"},
        {"User-Agent", CP_QWEN_UA},
        {"X-Dashscope-Useragent", CP_QWEN_UA},
        {"X-Dashscope-Authtype", "qwen-oauth"},
        {"X-Dashscope-Cachecontrol", "enable"},
        {"X-Stainless-Runtime-Version", "v22.17.0"},
        {"X-Stainless-Lang", "js"},
        {"X-Stainless-Os", "MacOS"},
        {"X-Stainless-Arch", "arm64"},
        {"X-Stainless-Runtime", "node"},
        {"X-Stainless-Retry-Count", "0"},
        {"X-Stainless-Package-Version", "5.11.0"},
        {"Accept-Language", "*"},
        {"Accept-Encoding", "gzip, deflate"},
        {"Sec-Fetch-Mode", "cors"},
        {"Connection", "keep-alive"},
    };
    struct cp_upreq r = {0};
    struct cm_buf auth;
    size_t bl;
    int rc;

    cm_buf_init(&auth, 16 * 1024);
    if (!base || !*base || !access_token || !*access_token || !out ||
        (n_hdrs && (!hdr_names || !hdr_values))) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    bl = strlen(base);
    if ((rc = cp_upreq_url(&r, base,
                           base[bl - 1] == '/' ? "chat/completions" : "/chat/completions")))
        goto out;
    if ((rc = cm_buf_appendf(&auth, "Bearer %s", access_token)))
        goto out;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !rc; i++) {
        rc = cp_upreq_add(&r, fixed[i][0], fixed[i][1]);
        if (!rc && i == 0)
            rc = cp_upreq_add(&r, "Authorization", auth.data);
    }
    if (!rc)
        rc = cp_upreq_add(&r, "Accept", stream ? "text/event-stream" : "application/json");
    for (size_t i = 0; i < n_hdrs && !rc; i++)
        rc = cp_upreq_set(&r, hdr_names[i], hdr_values[i]);
    if (rc)
        goto out;
    *out = r;
    memset(&r, 0, sizeof r);
out:
    if (auth.data)
        cm_crypto_memzero(auth.data, auth.len);
    cm_buf_cleanup(&auth);
    cp_upreq_cleanup(&r);
    return rc;
}

/* ---- errors ---- */

static int is_quota_word(const cJSON *it)
{
    return cJSON_IsString(it) && (strcasecmp(it->valuestring, "insufficient_quota") == 0 ||
                                  strcasecmp(it->valuestring, "quota_exceeded") == 0);
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

void cp_qwen_outcome(long status, const char *body, size_t len, const char *retry_after,
                     int64_t now_s, struct cp_sched_outcome *o)
{
    cJSON *root = NULL;
    const cJSON *err;
    int64_t v;

    memset(o, 0, sizeof *o);
    o->status = (int)status;
    if ((status == 403 || status == 429) && body && len &&
        cm_json_parse(body, len, NULL, &root, NULL) == CM_OK) {
        err = cJSON_GetObjectItemCaseSensitive(root, "error");
        if (cJSON_IsObject(err)) {
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
            if (is_quota_word(cJSON_GetObjectItemCaseSensitive(err, "code")) ||
                is_quota_word(cJSON_GetObjectItemCaseSensitive(err, "type")) ||
                (cJSON_IsString(msg) && (contains_ci(msg->valuestring, "insufficient_quota") ||
                                         contains_ci(msg->valuestring, "quota exceeded"))))
                o->status = 429; /* "free allocated quota exceeded" contains "quota exceeded" */
        }
    }
    cJSON_Delete(root);
    if (status == 400 || status == 422)
        o->request_scoped = 1;
    if (o->status == 429 && retry_after && cp_openai_retry_after(retry_after, now_s, &v) == CM_OK) {
        o->has_hint = 1;
        o->retry_after_s = v;
    }
}

/* ---- limiter ---- */

struct lim_entry {
    char *id;
    int64_t ts[CP_QWEN_LIMIT]; /* ring of request times, oldest at head */
    int head, n;
    int64_t last_ms;
};

struct cp_qwen_limiter {
    pthread_mutex_t mu;
    struct lim_entry **v;
    size_t n, cap;
};

int cp_qwen_limiter_new(struct cp_qwen_limiter **out)
{
    struct cp_qwen_limiter *l;
    if (!out)
        return CM_ERR_INVAL;
    l = cm_calloc(1, sizeof *l);
    if (!l)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return CM_OK;
}

static void entry_free(struct lim_entry *e)
{
    if (e) {
        cm_free(e->id);
        cm_free(e);
    }
}

void cp_qwen_limiter_free(struct cp_qwen_limiter *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        entry_free(l->v[i]);
    cm_free(l->v);
    pthread_mutex_destroy(&l->mu);
    cm_free(l);
}

/* drops the times at or before now - window; mu held */
static void expire(struct lim_entry *e, int64_t now_ms)
{
    while (e->n && e->ts[e->head] <= now_ms - CP_QWEN_WINDOW_MS) {
        e->head = (e->head + 1) % CP_QWEN_LIMIT;
        e->n--;
    }
}

int cp_qwen_limiter_take(struct cp_qwen_limiter *l, const char *cred_id, int64_t now_ms,
                         int64_t *retry_after_s)
{
    struct lim_entry *e = NULL;
    size_t i = 0;
    int rc = CM_OK;

    if (!l || !cred_id)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&l->mu);
    /* forget idle credentials, find ours */
    while (i < l->n) {
        struct lim_entry *x = l->v[i];
        if (strcmp(x->id, cred_id) == 0) {
            e = x;
            i++;
        } else if (x->last_ms <= now_ms - CP_QWEN_WINDOW_MS) {
            entry_free(x);
            l->v[i] = l->v[--l->n];
        } else {
            i++;
        }
    }
    if (!e) {
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 8;
            struct lim_entry **nv = cm_realloc(l->v, ncap * sizeof *nv);
            if (!nv) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
            l->v = nv;
            l->cap = ncap;
        }
        e = cm_calloc(1, sizeof *e);
        if (!e || !(e->id = cm_strdup(cred_id))) {
            cm_free(e);
            rc = CM_ERR_NOMEM;
            goto out;
        }
        l->v[l->n++] = e;
    }
    expire(e, now_ms);
    if (e->n >= CP_QWEN_LIMIT) {
        int64_t wait_ms = e->ts[e->head] + CP_QWEN_WINDOW_MS - now_ms;
        int64_t s = (wait_ms + 999) / 1000;
        if (retry_after_s)
            *retry_after_s = s < 1 ? 1 : s;
        rc = CM_ERR_LIMIT;
        goto out;
    }
    e->ts[(e->head + e->n) % CP_QWEN_LIMIT] = now_ms;
    e->n++;
    e->last_ms = now_ms;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

size_t cp_qwen_limiter_size(struct cp_qwen_limiter *l)
{
    size_t n;
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int cp_qwen_limit_body(int64_t retry_after_s, char **out, size_t *len)
{
    struct cm_buf b;
    int rc;
    if (!out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, 1024);
    rc = cm_buf_appendf(&b,
                        "{\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Qwen rate "
                        "limit: %d requests/minute exceeded, retry after %llds\","
                        "\"type\":\"rate_limit_exceeded\"}}",
                        CP_QWEN_LIMIT, (long long)retry_after_s);
    if (rc) {
        cm_buf_cleanup(&b);
        return CM_ERR_NOMEM;
    }
    if (len)
        *len = b.len;
    *out = cm_buf_release(&b, NULL);
    return *out ? CM_OK : CM_ERR_NOMEM;
}
