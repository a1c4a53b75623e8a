/* SPDX-License-Identifier: MIT */
/* usage.c - bounded counters for /metrics and /usage (see usage.h). */
#include "usage.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define NBUCKETS 10
static const double bucket_le[NBUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const char *const class_name[] = {"2xx", "4xx", "429", "5xx", "other"};
enum { C_2XX, C_4XX, C_429, C_5XX, C_OTHER, N_CLASS };

struct series {
    char *cred, *model;
    uint64_t req[N_CLASS];
    struct cp_usage_tokens tok;
};

struct cp_usage {
    pthread_mutex_t mu;
    struct series s[CP_USAGE_MAX_SERIES + 1]; /* the last one is ("other","other") */
    size_t n;
    uint64_t buckets[NBUCKETS + 1]; /* +Inf last */
    double sum_s;
    uint64_t count;
};

int cp_usage_new(struct cp_usage **out)
{
    struct cp_usage *u = cm_calloc(1, sizeof *u);
    if (!u)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&u->mu, NULL);
    u->s[CP_USAGE_MAX_SERIES].cred = NULL; /* "other": names filled at output */
    *out = u;
    return CM_OK;
}

void cp_usage_free(struct cp_usage *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++) {
        cm_free(u->s[i].cred);
        cm_free(u->s[i].model);
    }
    pthread_mutex_destroy(&u->mu);
    cm_free(u);
}

static int class_of(int status)
{
    if (status == 429)
        return C_429;
    if (status >= 200 && status < 300)
        return C_2XX;
    if (status >= 400 && status < 500)
        return C_4XX;
    if (status >= 500)
        return C_5XX;
    return C_OTHER;
}

/* lock held; never fails: the overflow series takes what does not fit */
static struct series *find(struct cp_usage *u, const char *cred, const char *model)
{
    struct series *s;
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->s[i].cred, cred) == 0 && strcmp(u->s[i].model, model) == 0)
            return &u->s[i];
    if (u->n == CP_USAGE_MAX_SERIES)
        return &u->s[CP_USAGE_MAX_SERIES];
    s = &u->s[u->n];
    s->cred = cm_strdup(cred);
    s->model = cm_strdup(model);
    if (!s->cred || !s->model) {
        cm_free(s->cred);
        cm_free(s->model);
        s->cred = s->model = NULL;
        return &u->s[CP_USAGE_MAX_SERIES];
    }
    u->n++;
    return s;
}

void cp_usage_record(struct cp_usage *u, const char *cred, const char *model, int status,
                     int64_t latency_ms, const struct cp_usage_tokens *t)
{
    struct series *s;
    double sec = latency_ms < 0 ? 0 : (double)latency_ms / 1000.0;
    int b = 0;

    if (!cred || !*cred)
        cred = "-";
    if (!model || !*model)
        model = "-";
    while (b < NBUCKETS && sec > bucket_le[b])
        b++;
    pthread_mutex_lock(&u->mu);
    s = find(u, cred, model);
    s->req[class_of(status)]++;
    if (t) {
        s->tok.input += t->input;
        s->tok.output += t->output;
        s->tok.cached += t->cached;
        s->tok.reasoning += t->reasoning;
    }
    u->buckets[b]++;
    u->sum_s += sec;
    u->count++;
    pthread_mutex_unlock(&u->mu);
}

int cp_usage_label(struct cm_buf *out, const char *s)
{
    int rc = CM_OK;
    for (; *s && !rc; s++) {
        if (*s == '\\')
            rc = cm_buf_append(out, "\\\\", 2);
        else if (*s == '"')
            rc = cm_buf_append(out, "\\\"", 2);
        else if (*s == '\n')
            rc = cm_buf_append(out, "\\n", 2);
        else
            rc = cm_buf_append(out, s, 1);
    }
    return rc;
}

static const char *cred_of(const struct series *s)
{
    return s->cred ? s->cred : "other";
}
static const char *model_of(const struct series *s)
{
    return s->model ? s->model : "other";
}

/* lock held: every series in use, the overflow one only when it counted anything */
static size_t n_series(const struct cp_usage *u, const struct series **list)
{
    size_t n = 0;
    const struct series *o = &u->s[CP_USAGE_MAX_SERIES];
    for (size_t i = 0; i < u->n; i++)
        list[n++] = &u->s[i];
    for (int c = 0; c < N_CLASS; c++)
        if (o->req[c]) {
            list[n++] = o;
            break;
        }
    return n;
}

static int series_labels(struct cm_buf *out, const struct series *s)
{
    int rc = cm_buf_append_str(out, "credential=\"");
    if (!rc)
        rc = cp_usage_label(out, cred_of(s));
    if (!rc)
        rc = cm_buf_append_str(out, "\",model=\"");
    if (!rc)
        rc = cp_usage_label(out, model_of(s));
    if (!rc)
        rc = cm_buf_append_str(out, "\"");
    return rc;
}

int cp_usage_prometheus(struct cp_usage *u, struct cm_buf *out)
{
    static const struct series *list[CP_USAGE_MAX_SERIES + 1];
    const char *kinds[] = {"input", "output", "cached", "reasoning"};
    uint64_t cum = 0;
    size_t n;
    int rc;

    pthread_mutex_lock(&u->mu);
    n = n_series(u, list);
    rc = cm_buf_append_str(out, "# HELP cliproxyd_requests_total Requests by credential, model "
                                "and status class.\n# TYPE cliproxyd_requests_total counter\n");
    for (size_t i = 0; !rc && i < n; i++)
        for (int c = 0; !rc && c < N_CLASS; c++) {
            if (!list[i]->req[c])
                continue;
            rc = cm_buf_append_str(out, "cliproxyd_requests_total{");
            if (!rc)
                rc = series_labels(out, list[i]);
            if (!rc)
                rc = cm_buf_appendf(out, ",status=\"%s\"} %llu\n", class_name[c],
                                    (unsigned long long)list[i]->req[c]);
        }
    if (!rc)
        rc = cm_buf_append_str(out, "# HELP cliproxyd_tokens_total Upstream tokens by "
                                    "credential, model and kind.\n# TYPE cliproxyd_tokens_total "
                                    "counter\n");
    for (size_t i = 0; !rc && i < n; i++) {
        const int64_t v[4] = {list[i]->tok.input, list[i]->tok.output, list[i]->tok.cached,
                              list[i]->tok.reasoning};
        for (int k = 0; !rc && k < 4; k++) {
            rc = cm_buf_append_str(out, "cliproxyd_tokens_total{");
            if (!rc)
                rc = series_labels(out, list[i]);
            if (!rc)
                rc = cm_buf_appendf(out, ",kind=\"%s\"} %lld\n", kinds[k], (long long)v[k]);
        }
    }
    if (!rc)
        rc = cm_buf_append_str(out, "# HELP cliproxyd_request_duration_seconds Time to the last "
                                    "byte of each request.\n# TYPE "
                                    "cliproxyd_request_duration_seconds histogram\n");
    for (int b = 0; !rc && b <= NBUCKETS; b++) {
        cum += u->buckets[b];
        if (b < NBUCKETS)
            rc = cm_buf_appendf(out, "cliproxyd_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                                bucket_le[b], (unsigned long long)cum);
        else
            rc =
                cm_buf_appendf(out, "cliproxyd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                               (unsigned long long)cum);
    }
    if (!rc)
        rc = cm_buf_appendf(out,
                            "cliproxyd_request_duration_seconds_sum %.6f\n"
                            "cliproxyd_request_duration_seconds_count %llu\n",
                            u->sum_s, (unsigned long long)u->count);
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int cp_usage_json(struct cp_usage *u, char **json, size_t *len)
{
    static const struct series *list[CP_USAGE_MAX_SERIES + 1];
    cJSON *root = NULL, *arr = NULL;
    uint64_t total = 0, ok = 0;
    int64_t tokens = 0;
    size_t n;
    int rc;

    rc = cm_json_new_object(&root);
    if (!rc)
        rc = cm_json_new_array(&arr);
    pthread_mutex_lock(&u->mu);
    n = rc ? 0 : n_series(u, list);
    for (size_t i = 0; !rc && i < n; i++) {
        const struct series *s = list[i];
        uint64_t req = 0;
        cJSON *o = NULL;
        for (int c = 0; c < N_CLASS; c++)
            req += s->req[c];
        total += req;
        ok += s->req[C_2XX];
        tokens += s->tok.input + s->tok.output;
        if ((rc = cm_json_new_object(&o)))
            break;
        if (!rc)
            rc = cm_json_set_string(o, "credential", cred_of(s));
        if (!rc)
            rc = cm_json_set_string(o, "model", model_of(s));
        if (!rc)
            rc = cm_json_set_int64(o, "requests", (int64_t)req);
        if (!rc)
            rc = cm_json_set_int64(o, "failures", (int64_t)(req - s->req[C_2XX]));
        if (!rc)
            rc = cm_json_set_int64(o, "input_tokens", s->tok.input);
        if (!rc)
            rc = cm_json_set_int64(o, "output_tokens", s->tok.output);
        if (!rc)
            rc = cm_json_set_int64(o, "cached_tokens", s->tok.cached);
        if (!rc)
            rc = cm_json_set_int64(o, "reasoning_tokens", s->tok.reasoning);
        if (rc) {
            cJSON_Delete(o);
            break;
        }
        rc = cm_json_set_item(arr, NULL, o);
    }
    pthread_mutex_unlock(&u->mu);
    if (!rc)
        rc = cm_json_set_int64(root, "total_requests", (int64_t)total);
    if (!rc)
        rc = cm_json_set_int64(root, "success_count", (int64_t)ok);
    if (!rc)
        rc = cm_json_set_int64(root, "failure_count", (int64_t)(total - ok));
    if (!rc)
        rc = cm_json_set_int64(root, "total_tokens", tokens);
    if (!rc) {
        rc = cm_json_adopt(root, "series", &arr);
    }
    if (!rc)
        rc = cm_json_print(root, json, len);
    cJSON_Delete(arr);
    cJSON_Delete(root);
    return rc;
}
