/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - thin wrappers over libc malloc with a fail-at-N switch for OOM tests.
 * The switch costs one relaxed atomic load per allocation when it is off.
 */
#include "cm/alloc.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_at = -1; /* -1: env not read yet; 0: off; N: fail from the Nth on */
static atomic_long counter;

static int should_fail(void)
{
    long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at < 0) {
        const char *e = getenv("CM_ALLOC_FAIL_AT");
        long v = e ? strtol(e, NULL, 10) : 0;
        long expect = -1;
        atomic_compare_exchange_strong(&fail_at, &expect, v > 0 ? v : 0);
        at = atomic_load(&fail_at);
    }
    if (at == 0)
        return 0;
    return atomic_fetch_add(&counter, 1) + 1 >= at;
}

void cm_alloc_fail_at(long n)
{
    atomic_store(&counter, 0);
    atomic_store(&fail_at, n > 0 ? n : 0);
}

void *cm_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cm_calloc(size_t nmemb, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *cm_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *cm_strndup(const char *s, size_t n)
{
    char *d;
    if (!s)
        return NULL;
    d = cm_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cm_strdup(const char *s)
{
    return s ? cm_strndup(s, strlen(s)) : NULL;
}

void cm_free(void *p)
{
    free(p);
}

void cm_alloc_hook_cjson(void)
{
    cJSON_Hooks h = {.malloc_fn = cm_malloc, .free_fn = cm_free};
    cJSON_InitHooks(&h);
}
