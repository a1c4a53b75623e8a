/* SPDX-License-Identifier: MIT */
/*
 * health.c - consecutive-failure runs per channel (see health.h): channel id -> the times
 * of the current run's failures (a ring of the last MT_RELAY_HEALTH_RUN_MAX), under one
 * mutex. Entries are few (one per channel that ever failed), so the map never shrinks.
 */
#include "relay/health.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "options.h"
#include "relay/imap.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

struct run {
    int64_t channel; /* the imap key */
    int n;           /* failures in the run (capped at the ring size) */
    int head;        /* next ring slot */
    int64_t t[MT_RELAY_HEALTH_RUN_MAX];
};

struct mt_relay_health {
    pthread_mutex_t mu;
    struct mt_relay_imap runs; /* channel id -> struct run */
};

int mt_relay_health_new(struct mt_relay_health **out)
{
    struct mt_relay_health *h = cm_calloc(1, sizeof *h);
    if (!h)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&h->mu, NULL);
    mt_relay_imap_init(&h->runs, sizeof(struct run));
    *out = h;
    return CM_OK;
}

void mt_relay_health_free(struct mt_relay_health *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    mt_relay_imap_cleanup(&h->runs);
    cm_free(h);
}

int mt_relay_health_fail(struct mt_relay_health *h, int64_t channel, int64_t now_ms, int n,
                         int64_t window_ms)
{
    struct run *r;
    int hit = 0;
    if (!h || channel <= 0)
        return 0;
    if (n < 1)
        n = 1;
    if (n > MT_RELAY_HEALTH_RUN_MAX)
        n = MT_RELAY_HEALTH_RUN_MAX;
    pthread_mutex_lock(&h->mu);
    r = mt_relay_imap_get(&h->runs, channel, 1);
    if (r) {
        r->t[r->head] = now_ms;
        r->head = (r->head + 1) % MT_RELAY_HEALTH_RUN_MAX;
        if (r->n < MT_RELAY_HEALTH_RUN_MAX)
            r->n++;
        if (r->n >= n) {
            /* the n-th most recent failure, the first of the last n */
            int first = (r->head - n + 2 * MT_RELAY_HEALTH_RUN_MAX) % MT_RELAY_HEALTH_RUN_MAX;
            if (now_ms - r->t[first] <= window_ms) {
                hit = 1;
                r->n = 0;
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    return hit;
}

void mt_relay_health_ok(struct mt_relay_health *h, int64_t channel)
{
    struct run *r;
    if (!h || channel <= 0)
        return;
    pthread_mutex_lock(&h->mu);
    r = mt_relay_imap_get(&h->runs, channel, 0);
    if (r)
        r->n = 0;
    pthread_mutex_unlock(&h->mu);
}

/* case-insensitive search of @p needle (@p nl bytes) in @p hay (@p hl bytes) */
static int contains_ci(const char *hay, size_t hl, const char *needle, size_t nl)
{
    if (!nl || nl > hl)
        return 0;
    for (size_t i = 0; i + nl <= hl; i++) {
        size_t k = 0;
        while (k < nl && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == nl)
            return 1;
    }
    return 0;
}

int mt_relay_should_disable(const char *codes, const char *keywords, long status, const char *msg,
                            size_t len)
{
    const char *p = keywords ? keywords : MT_RELAY_DISABLE_KEYWORDS_DEFAULT;
    if (status > 0 && mt_options_code_in(codes ? codes : "401", status))
        return 1;
    while (msg && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
            n--;
        if (contains_ci(msg, len, p, n))
            return 1;
        p = e ? e + 1 : p + strlen(p);
    }
    return 0;
}
