/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - the allocation seam. All heap memory in this project goes through these.
 *
 * They behave like the libc functions (cm_free(NULL) is a no-op) and may return NULL;
 * callers turn NULL into CM_ERR_NOMEM. For tests, allocation number N (counted from the
 * last cm_alloc_fail_at() call, or from start when the environment variable
 * CM_ALLOC_FAIL_AT=N is set) and every one after it fails, so each OOM path can be walked.
 * Thread-safe (the counter is atomic).
 */
#ifndef CM_ALLOC_H
#define CM_ALLOC_H

#include <stddef.h>

void *cm_malloc(size_t n);
void *cm_calloc(size_t nmemb, size_t size);
void *cm_realloc(void *p, size_t n);
/** Copy of @p s; caller frees with cm_free(). NULL if @p s is NULL or on OOM. */
char *cm_strdup(const char *s);
/** Copy of the first @p n bytes of @p s plus a NUL; caller frees with cm_free(). */
char *cm_strndup(const char *s, size_t n);
void cm_free(void *p);

/** Make allocation number @p n (1-based, counted from now) and all later ones fail; 0 turns it off.
 */
void cm_alloc_fail_at(long n);

/** Route cJSON's allocations through this seam (called once by cm_json; idempotent). */
void cm_alloc_hook_cjson(void);

#endif
