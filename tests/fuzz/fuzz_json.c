/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json.c - cm_json_parse() with limits (common/include/cm/json.h), then the printer
 * and the getters on whatever tree comes out.
 * Input: byte 0 = options (bits 0-2: max_depth 1, 2, 8, 32, 64, 1000 or the default;
 * bit 3: CM_JSON_ALLOW_DUP_KEYS; bit 4: max_size = half the input), the rest = the text.
 * Invariants: a parse that succeeds prints (cm_json_print) to text that parses again
 * with the same options and prints to the same bytes; LIMIT/PARSE errors carry an offset
 * within the input and a NUL-terminated message.
 */
#include "fuzz_util.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <float.h>
#include <string.h>

static void getters(const cJSON *o)
{
    const cJSON *it;
    int k = 0;
    if (!cJSON_IsObject(o))
        return;
    cJSON_ArrayForEach(it, o)
    {
        const char *s;
        bool b;
        int64_t i;
        double d;
        cJSON *sub;
        struct cm_json_err e;
        if (!it->string || ++k > 64)
            break;
        (void)cm_json_get_string(o, it->string, &s, &e);
        (void)cm_json_opt_string(o, it->string, "x", &s, &e);
        (void)cm_json_get_bool(o, it->string, &b, &e);
        (void)cm_json_get_int64(o, it->string, -5, 1000000, &i, &e);
        (void)cm_json_opt_int64(o, it->string, CM_JSON_INT_MIN, CM_JSON_INT_MAX, 0, &i, &e);
        (void)cm_json_get_double(o, it->string, -DBL_MAX, DBL_MAX, &d, &e);
        (void)cm_json_get_object(o, it->string, &sub, &e);
        if (cm_json_get_array(o, it->string, &sub, &e) == CM_OK) {
            const cJSON *el;
            cJSON_ArrayForEach(el, sub)(void) cm_json_to_int64(el, 0, 100, &i);
        }
        if (cm_json_get_int64(o, it->string, 0, 1, &i, &e) != CM_OK) {
            FZ_ASSERT(memchr(e.msg, '\0', sizeof e.msg) != NULL);
            cm_json_err_scope(&e, "messages[%d]", k);
            FZ_ASSERT(memchr(e.field, '\0', sizeof e.field) != NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned depths[8] = {1, 2, 8, 32, 64, 1000, 0, 0};
    struct fz_in in = {data, size};
    uint8_t opt = fz_byte(&in);
    struct cm_json_parse_opts po = {0};
    struct cm_json_err err;
    cJSON *j = NULL, *j2 = NULL;
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    int rc;

    fz_init();
    po.max_depth = depths[opt & 7];
    po.flags = (opt & 8) ? CM_JSON_ALLOW_DUP_KEYS : 0;
    po.max_size = (opt & 16) ? in.n / 2 + 1 : 0;
    memset(&err, 0, sizeof err);
    rc = cm_json_parse((const char *)in.p, in.n, &po, &j, &err);
    if (rc != CM_OK) {
        FZ_ASSERT(j == NULL);
        FZ_ASSERT(err.rc == rc);
        FZ_ASSERT(err.offset <= in.n);
        FZ_ASSERT(memchr(err.msg, '\0', sizeof err.msg) != NULL);
        return 0;
    }
    FZ_ASSERT(j != NULL);
    getters(j);
    rc = cm_json_print(j, &t1, &l1);
    FZ_ASSERT(rc == CM_OK || rc == CM_ERR_NOMEM);
    if (rc == CM_OK) {
        struct cm_json_parse_opts po2 = po;
        FZ_ASSERT(strlen(t1) == l1);
        po2.max_size = 0; /* the printed text may be longer than the input (escapes) */
        rc = cm_json_parse(t1, l1, &po2, &j2, &err);
        if (rc != CM_OK)
            fprintf(stderr, "reparse of printed JSON failed: %s (at %zu)\n", err.msg, err.offset);
        FZ_ASSERT(rc == CM_OK);
        FZ_ASSERT(cm_json_print(j2, &t2, &l2) == CM_OK);
        FZ_ASSERT(l1 == l2 && memcmp(t1, t2, l1) == 0);
    }
    cm_free(t1);
    cm_free(t2);
    cJSON_Delete(j2);
    cJSON_Delete(j);
    return 0;
}
