/* SPDX-License-Identifier: MIT */
/* ratelimit.c - fixed-window counters per key (see ratelimit.h). */
#include "api/ratelimit.h"

#include "cm/err.h"

#include <stdio.h>
#include <string.h>

int mt_ratelimit_init(struct mt_ratelimit *rl, struct mt_rl_entry *entries, size_t cap,
                      unsigned limit, int64_t window_ms)
{
    if (!rl || !entries || cap == 0 || window_ms <= 0)
        return CM_ERR_INVAL;
    memset(rl, 0, sizeof *rl);
    if (pthread_mutex_init(&rl->mu, NULL) != 0)
        return CM_ERR_INVAL;
    rl->e = entries;
    rl->cap = cap;
    rl->limit = limit;
    rl->window_ms = window_ms;
    return CM_OK;
}

void mt_ratelimit_cleanup(struct mt_ratelimit *rl)
{
    if (!rl || !rl->e)
        return;
    pthread_mutex_destroy(&rl->mu);
    rl->e = NULL;
    rl->n = 0;
}

static int expired(const struct mt_ratelimit *rl, const struct mt_rl_entry *e, int64_t now)
{
    return now - e->start_ms >= rl->window_ms;
}

/* Drops the entries whose window is over (order is not kept). */
static void sweep(struct mt_ratelimit *rl, int64_t now)
{
    size_t i = 0;
    while (i < rl->n) {
        if (expired(rl, &rl->e[i], now))
            rl->e[i] = rl->e[--rl->n];
        else
            i++;
    }
}

/* The slot for a key not held yet: a free one, else after a sweep, else the oldest. */
static struct mt_rl_entry *new_slot(struct mt_ratelimit *rl, int64_t now)
{
    size_t old = 0;
    if (rl->n == rl->cap)
        sweep(rl, now);
    if (rl->n < rl->cap)
        return &rl->e[rl->n++];
    for (size_t i = 1; i < rl->n; i++)
        if (rl->e[i].start_ms < rl->e[old].start_ms)
            old = i;
    return &rl->e[old];
}

int mt_ratelimit_hit(struct mt_ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_ms)
{
    struct mt_rl_entry *e = NULL;
    char k[MT_RL_KEY_MAX];
    int ok = 1;

    if (!rl || !rl->e || rl->limit == 0)
        return 1;
    snprintf(k, sizeof k, "%s", key ? key : "");
    pthread_mutex_lock(&rl->mu);
    for (size_t i = 0; i < rl->n; i++) {
        if (strcmp(rl->e[i].key, k) == 0) {
            e = &rl->e[i];
            break;
        }
    }
    if (e && expired(rl, e, now_ms)) {
        e->start_ms = now_ms;
        e->count = 0;
    } else if (!e) {
        e = new_slot(rl, now_ms);
        memcpy(e->key, k, sizeof k);
        e->start_ms = now_ms;
        e->count = 0;
    }
    if (e->count < UINT32_MAX)
        e->count++;
    if (e->count > rl->limit) {
        int64_t left = e->start_ms + rl->window_ms - now_ms;
        ok = 0;
        if (retry_ms)
            *retry_ms = left > 0 ? left : 1;
    }
    pthread_mutex_unlock(&rl->mu);
    return ok;
}

size_t mt_ratelimit_size(struct mt_ratelimit *rl)
{
    size_t n;
    if (!rl || !rl->e)
        return 0;
    pthread_mutex_lock(&rl->mu);
    n = rl->n;
    pthread_mutex_unlock(&rl->mu);
    return n;
}
