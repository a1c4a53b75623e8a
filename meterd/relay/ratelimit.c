/* SPDX-License-Identifier: MIT */
/* ratelimit.c - bucketed sliding windows per user (see ratelimit.h). */
#include "relay/ratelimit.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "relay/imap.h"

#include <pthread.h>

struct window {
    int64_t epoch[MT_RELAY_RL_BUCKETS]; /* bucket number each slot counts for */
    uint32_t n[MT_RELAY_RL_BUCKETS];
};

struct user {
    int64_t id; /* the imap key */
    struct window total, ok;
};

struct mt_relay_rl {
    pthread_mutex_t mu;
    struct mt_relay_imap users;
};

int mt_relay_rl_new(struct mt_relay_rl **out)
{
    struct mt_relay_rl *rl = cm_calloc(1, sizeof *rl);
    if (!rl)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&rl->mu, NULL);
    mt_relay_imap_init(&rl->users, sizeof(struct user));
    *out = rl;
    return CM_OK;
}

void mt_relay_rl_free(struct mt_relay_rl *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    mt_relay_imap_cleanup(&rl->users);
    cm_free(rl);
}

static int64_t bucket_of(int64_t now_ms, int64_t window_ms)
{
    int64_t w = window_ms / MT_RELAY_RL_BUCKETS;
    return now_ms / (w > 0 ? w : 1);
}

static int64_t in_window(const struct window *w, int64_t b)
{
    int64_t n = 0;
    for (int i = 0; i < MT_RELAY_RL_BUCKETS; i++)
        if (w->epoch[i] > b - MT_RELAY_RL_BUCKETS && w->epoch[i] <= b)
            n += w->n[i];
    return n;
}

static void add(struct window *w, int64_t b)
{
    int i = (int)(b % MT_RELAY_RL_BUCKETS);
    if (w->epoch[i] != b) {
        w->epoch[i] = b;
        w->n[i] = 0;
    }
    if (w->n[i] < UINT32_MAX)
        w->n[i]++;
}

static struct user *user_of(struct mt_relay_rl *rl, int64_t id)
{
    if (rl->users.used >= MT_RELAY_RL_USERS_MAX && !mt_relay_imap_get(&rl->users, id, 0))
        mt_relay_imap_clear(&rl->users);
    return mt_relay_imap_get(&rl->users, id, 1);
}

enum mt_relay_rl_verdict mt_relay_rl_begin(struct mt_relay_rl *rl, int64_t user, int64_t now_ms,
                                           int64_t window_ms, int64_t total_max,
                                           int64_t success_max)
{
    enum mt_relay_rl_verdict v = MT_RELAY_RL_OK;
    int64_t b = bucket_of(now_ms, window_ms);
    struct user *u;

    if (!rl || user <= 0)
        return MT_RELAY_RL_OK;
    pthread_mutex_lock(&rl->mu);
    u = user_of(rl, user);
    if (u) {
        if (total_max > 0 && in_window(&u->total, b) >= total_max)
            v = MT_RELAY_RL_TOTAL;
        else if (success_max > 0 && in_window(&u->ok, b) >= success_max)
            v = MT_RELAY_RL_SUCCESS;
        else
            add(&u->total, b);
    }
    pthread_mutex_unlock(&rl->mu);
    return v;
}

void mt_relay_rl_success(struct mt_relay_rl *rl, int64_t user, int64_t now_ms, int64_t window_ms)
{
    struct user *u;
    if (!rl || user <= 0)
        return;
    pthread_mutex_lock(&rl->mu);
    u = user_of(rl, user);
    if (u)
        add(&u->ok, bucket_of(now_ms, window_ms));
    pthread_mutex_unlock(&rl->mu);
}
