/* SPDX-License-Identifier: MIT */
/*
 * fuzz_util.h - helpers shared by the libFuzzer targets in tests/fuzz/ (header-only).
 *
 * - fz_init(): once per process, logging off (the parsers warn on bad input; the fuzzer
 *   must not spend its time writing those lines).
 * - struct fz_in: a cursor over the fuzzer's bytes; the first bytes pick a mode or the
 *   split points, the rest is the payload.
 * - fz_sse_feed(): feeds a payload to a cm_sse parser in chunks whose sizes come from a
 *   seed byte, so events that straddle chunk borders are exercised.
 * - fz_json(): the payload as a cJSON tree, parsed as the daemons parse client bodies.
 * Every target checks invariants with FZ_ASSERT (abort: libFuzzer saves the input).
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include "cm/json.h"
#include "cm/log.h"
#include "cm/sse.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FZ_ASSERT(c)                                                                               \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void fz_init(void)
{
    static int done;
    if (!done) {
        done = 1;
        cm_log_set_level(CM_LOG_OFF);
    }
}

struct fz_in {
    const uint8_t *p;
    size_t n;
};

/** The next byte (0 once the input is used up). */
static inline uint8_t fz_byte(struct fz_in *in)
{
    uint8_t b = 0;
    if (in->n) {
        b = in->p[0];
        in->p++;
        in->n--;
    }
    return b;
}

/**
 * Feeds @p data to @p p in chunks: chunk sizes cycle through 1 + (seed * k) % 61 so one
 * seed gives an irregular but reproducible split; seed 0 feeds everything at once.
 * Stops at the first non-zero return (returned).
 */
static inline int fz_sse_feed(struct cm_sse_parser *p, const char *data, size_t len, uint8_t seed)
{
    size_t off = 0, k = 1;
    if (seed == 0)
        return cm_sse_parser_feed(p, data, len, NULL);
    while (off < len) {
        size_t step = 1 + ((size_t)seed * k++) % 61;
        size_t consumed = 0;
        int rc;
        if (step > len - off)
            step = len - off;
        rc = cm_sse_parser_feed(p, data + off, step, &consumed);
        if (rc != 0)
            return rc;
        off += step;
    }
    return 0;
}

/** Parses @p data as a client body (depth 64, 4 MiB): the tree or NULL. */
static inline cJSON *fz_json(const uint8_t *data, size_t len)
{
    struct cm_json_parse_opts po = {.max_depth = 64, .max_size = 4u << 20};
    cJSON *j = NULL;
    if (cm_json_parse((const char *)data, len, &po, &j, NULL) != 0)
        return NULL;
    return j;
}

#endif
