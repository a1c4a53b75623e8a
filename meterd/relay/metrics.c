/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - Prometheus counters of the relay (see metrics.h): an array of series and an
 * open-addressing index over it (model string + channel id), under one mutex. Rendering
 * copies nothing out: it formats under the lock (a scrape is rare and short).
 */
#include "relay/metrics.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <pthread.h>
#include <string.h>

#define INDEX_CAP (MT_RELAY_METRICS_SERIES_MAX * 2)
#define MODEL_MAX 128

static const double BOUNDS[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NB (sizeof BOUNDS / sizeof *BOUNDS)

enum { C_2XX, C_4XX, C_5XX, C_ABORTED, C_N };
static const char *const CLASS[C_N] = {"2xx", "4xx", "5xx", "aborted"};

struct series {
    char model[MODEL_MAX];
    int64_t channel;
    uint64_t req[C_N], errors;
    uint64_t bucket[NB]; /* observations <= BOUNDS[i] (not cumulative here) */
    uint64_t count;
    double sum;
    int64_t quota, prompt, completion;
};

struct mt_relay_metrics {
    pthread_mutex_t mu;
    struct series *s; /* n used of MT_RELAY_METRICS_SERIES_MAX */
    size_t n;
    int32_t index[INDEX_CAP]; /* series index + 1; 0 free */
};

int mt_relay_metrics_new(struct mt_relay_metrics **out)
{
    struct mt_relay_metrics *m = cm_calloc(1, sizeof *m);
    if (!m)
        return CM_ERR_NOMEM;
    m->s = cm_calloc(MT_RELAY_METRICS_SERIES_MAX, sizeof *m->s);
    if (!m->s) {
        cm_free(m);
        return CM_ERR_NOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return CM_OK;
}

void mt_relay_metrics_free(struct mt_relay_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    cm_free(m->s);
    cm_free(m);
}

static size_t hash(const char *model, int64_t ch)
{
    uint64_t h = UINT64_C(1469598103934665603) ^ (uint64_t)ch;
    for (const unsigned char *p = (const unsigned char *)model; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)(h % INDEX_CAP);
}

/* the series of (model, ch), created when there is room; NULL when full */
static struct series *series_of(struct mt_relay_metrics *m, const char *model, int64_t ch)
{
    size_t i = hash(model, ch);
    for (;; i = (i + 1) % INDEX_CAP) {
        int32_t k = m->index[i];
        if (!k)
            break;
        if (m->s[k - 1].channel == ch && strcmp(m->s[k - 1].model, model) == 0)
            return &m->s[k - 1];
    }
    /* the last slot is kept for "_other" */
    if (m->n + (strcmp(model, "_other") != 0 || ch != 0) >= (size_t)MT_RELAY_METRICS_SERIES_MAX)
        return NULL;
    m->index[i] = (int32_t)(m->n + 1);
    {
        struct series *s = &m->s[m->n++];
        size_t l = strlen(model);
        if (l >= MODEL_MAX)
            l = MODEL_MAX - 1;
        memcpy(s->model, model, l);
        s->model[l] = '\0';
        s->channel = ch;
        return s;
    }
}

/* the series of (model, channel) under the lock; never NULL ("_other" always fits) */
static struct series *series_for(struct mt_relay_metrics *m, const char *model, int64_t channel)
{
    char name[MODEL_MAX];
    struct series *s;
    size_t l = model ? strlen(model) : 0;
    if (l >= MODEL_MAX)
        l = MODEL_MAX - 1;
    memcpy(name, model ? model : "", l);
    name[l] = '\0';
    s = series_of(m, name, channel);
    if (!s) /* full: later pairs share one series */
        s = series_of(m, "_other", 0);
    return s;
}

void mt_relay_metrics_observe(struct mt_relay_metrics *m, const char *model, int64_t channel,
                              unsigned status, int aborted, double seconds)
{
    struct series *s;
    int c = aborted ? C_ABORTED : status >= 500 ? C_5XX : status >= 400 ? C_4XX : C_2XX;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    s = series_for(m, model, channel);
    s->req[c]++;
    if (c != C_2XX)
        s->errors++;
    for (size_t i = 0; i < NB; i++)
        if (seconds <= BOUNDS[i]) {
            s->bucket[i]++;
            break;
        }
    s->count++;
    s->sum += seconds > 0 ? seconds : 0;
    pthread_mutex_unlock(&m->mu);
}

void mt_relay_metrics_charge(struct mt_relay_metrics *m, const char *model, int64_t channel,
                             int64_t quota, int64_t prompt_tokens, int64_t completion_tokens)
{
    struct series *s;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    s = series_for(m, model, channel);
    s->quota += quota > 0 ? quota : 0;
    s->prompt += prompt_tokens > 0 ? prompt_tokens : 0;
    s->completion += completion_tokens > 0 ? completion_tokens : 0;
    pthread_mutex_unlock(&m->mu);
}

/* a label value with \, " and newline escaped */
static int label(struct cm_buf *b, const char *v)
{
    int rc = CM_OK;
    for (const char *p = v; *p && !rc; p++) {
        if (*p == '\\' || *p == '"')
            rc = cm_buf_appendf(b, "\\%c", *p);
        else if (*p == '\n')
            rc = cm_buf_append_str(b, "\\n");
        else
            rc = cm_buf_append(b, p, 1);
    }
    return rc;
}

static int labels(struct cm_buf *b, const struct series *s)
{
    int rc = cm_buf_append_str(b, "{model=\"");
    if (!rc)
        rc = label(b, s->model);
    if (!rc)
        rc = cm_buf_appendf(b, "\",channel=\"%lld\"", (long long)s->channel);
    return rc;
}

int mt_relay_metrics_render(struct mt_relay_metrics *m, struct cm_buf *out)
{
    int rc = CM_OK;
    if (!m || !out)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&m->mu);
    rc = cm_buf_append_str(out, "# HELP meterd_relay_requests_total Relay requests by answer "
                                "class.\n# TYPE meterd_relay_requests_total counter\n");
    for (size_t i = 0; !rc && i < m->n; i++)
        for (int c = 0; !rc && c < C_N; c++) {
            if (!m->s[i].req[c])
                continue;
            rc = cm_buf_append_str(out, "meterd_relay_requests_total");
            if (!rc)
                rc = labels(out, &m->s[i]);
            if (!rc)
                rc = cm_buf_appendf(out, ",class=\"%s\"} %llu\n", CLASS[c],
                                    (unsigned long long)m->s[i].req[c]);
        }
    if (!rc)
        rc = cm_buf_append_str(out, "# HELP meterd_relay_errors_total Relay requests answered "
                                    "with an error or abandoned by the client.\n"
                                    "# TYPE meterd_relay_errors_total counter\n");
    for (size_t i = 0; !rc && i < m->n; i++) {
        rc = cm_buf_append_str(out, "meterd_relay_errors_total");
        if (!rc)
            rc = labels(out, &m->s[i]);
        if (!rc)
            rc = cm_buf_appendf(out, "} %llu\n", (unsigned long long)m->s[i].errors);
    }
    if (!rc)
        rc = cm_buf_append_str(out, "# HELP meterd_relay_request_duration_seconds Time to the "
                                    "last byte.\n# TYPE meterd_relay_request_duration_seconds "
                                    "histogram\n");
    for (size_t i = 0; !rc && i < m->n; i++) {
        uint64_t cum = 0;
        for (size_t k = 0; !rc && k <= NB; k++) {
            cum += k < NB ? m->s[i].bucket[k] : 0;
            rc = cm_buf_append_str(out, "meterd_relay_request_duration_seconds_bucket");
            if (!rc)
                rc = labels(out, &m->s[i]);
            if (!rc && k < NB)
                rc = cm_buf_appendf(out, ",le=\"%g\"} %llu\n", BOUNDS[k], (unsigned long long)cum);
            else if (!rc)
                rc = cm_buf_appendf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)m->s[i].count);
        }
        if (!rc)
            rc = cm_buf_append_str(out, "meterd_relay_request_duration_seconds_sum");
        if (!rc)
            rc = labels(out, &m->s[i]);
        if (!rc)
            rc = cm_buf_appendf(out, "} %.6f\n", m->s[i].sum);
        if (!rc)
            rc = cm_buf_append_str(out, "meterd_relay_request_duration_seconds_count");
        if (!rc)
            rc = labels(out, &m->s[i]);
        if (!rc)
            rc = cm_buf_appendf(out, "} %llu\n", (unsigned long long)m->s[i].count);
    }
    if (!rc)
        rc = cm_buf_append_str(out, "# HELP meterd_relay_quota_total Quota charged (settled).\n"
                                    "# TYPE meterd_relay_quota_total counter\n");
    for (size_t i = 0; !rc && i < m->n; i++) {
        rc = cm_buf_append_str(out, "meterd_relay_quota_total");
        if (!rc)
            rc = labels(out, &m->s[i]);
        if (!rc)
            rc = cm_buf_appendf(out, "} %lld\n", (long long)m->s[i].quota);
    }
    if (!rc)
        rc = cm_buf_append_str(out, "# HELP meterd_relay_tokens_total Tokens billed.\n"
                                    "# TYPE meterd_relay_tokens_total counter\n");
    for (size_t i = 0; !rc && i < m->n; i++)
        for (int k = 0; !rc && k < 2; k++) {
            rc = cm_buf_append_str(out, "meterd_relay_tokens_total");
            if (!rc)
                rc = labels(out, &m->s[i]);
            if (!rc)
                rc = cm_buf_appendf(out, ",kind=\"%s\"} %lld\n", k ? "completion" : "prompt",
                                    (long long)(k ? m->s[i].completion : m->s[i].prompt));
        }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
