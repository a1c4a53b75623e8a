/* SPDX-License-Identifier: MIT */
/*
 * fake_env.h - the fake environment the meterctl unit tests hand to mc_getenv_fn
 * parameters (header-only, static): @p ud is a NULL-terminated array of name/value pairs
 * ({"HOME", "/home/op", NULL}); NULL @p ud is an empty environment.
 */
#ifndef MC_TEST_FAKE_ENV_H
#define MC_TEST_FAKE_ENV_H

#include <stddef.h>
#include <string.h>

/* the value of @p name in the pairs of @p ud, or NULL (an mc_getenv_fn) */
static inline const char *fake_env(const char *name, void *ud)
{
    const char *const *kv = ud;
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (strcmp(kv[i], name) == 0)
            return kv[i + 1];
    return NULL;
}

#endif
