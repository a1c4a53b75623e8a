/* SPDX-License-Identifier: MIT */
/* imap.c - int64-keyed open-addressing hash (see imap.h). */
#include "relay/imap.h"

#include "cm/alloc.h"

#include <string.h>

void mt_relay_imap_init(struct mt_relay_imap *m, size_t elem)
{
    memset(m, 0, sizeof *m);
    m->elem = elem < sizeof(int64_t) ? sizeof(int64_t) : elem;
}

void mt_relay_imap_cleanup(struct mt_relay_imap *m)
{
    cm_free(m->slots);
    m->slots = NULL;
    m->cap = m->used = 0;
}

static int64_t key_at(const unsigned char *p)
{
    int64_t k;
    memcpy(&k, p, sizeof k);
    return k;
}

static size_t hash(int64_t key)
{
    uint64_t x = (uint64_t)key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(x ^ (x >> 29));
}

/* the slot holding @p key, or the free slot where it would go */
static unsigned char *lookup(unsigned char *slots, size_t cap, size_t elem, int64_t key)
{
    for (size_t i = hash(key) % cap;; i = (i + 1) % cap) {
        unsigned char *p = slots + i * elem;
        int64_t k = key_at(p);
        if (k == key || k == 0)
            return p;
    }
}

void *mt_relay_imap_get(struct mt_relay_imap *m, int64_t key, int create)
{
    unsigned char *p = m->cap ? lookup(m->slots, m->cap, m->elem, key) : NULL;
    if (key <= 0)
        return NULL;
    if (p && key_at(p) == key)
        return p;
    if (!create)
        return NULL;
    if ((m->used + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        unsigned char *ns = cm_calloc(ncap, m->elem);
        if (!ns)
            return NULL;
        for (size_t i = 0; i < m->cap; i++) {
            unsigned char *q = m->slots + i * m->elem;
            if (key_at(q))
                memcpy(lookup(ns, ncap, m->elem, key_at(q)), q, m->elem);
        }
        cm_free(m->slots);
        m->slots = ns;
        m->cap = ncap;
        p = lookup(m->slots, m->cap, m->elem, key);
    }
    m->used++;
    memset(p, 0, m->elem);
    memcpy(p, &key, sizeof key);
    return p;
}

void *mt_relay_imap_slot(struct mt_relay_imap *m, size_t i)
{
    unsigned char *p;
    if (i >= m->cap)
        return NULL;
    p = m->slots + i * m->elem;
    return key_at(p) ? p : NULL;
}

void mt_relay_imap_clear(struct mt_relay_imap *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * m->elem);
    m->used = 0;
}
