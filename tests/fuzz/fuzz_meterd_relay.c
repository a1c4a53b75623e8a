/* SPDX-License-Identifier: MIT */
/*
 * fuzz_meterd_relay.c - meterd's relay request validation and usage parsing
 * (meterd/relay/request.h, usage.h): what a client sends to /v1/... and what the upstream
 * answers, both outside input that decides what is billed.
 * Input: byte 0 = format (mod 5: chat, completions, responses, messages, embeddings;
 * bit 3: the rest is the upstream's answer, not the client's request; bit 4: that answer
 * is an SSE stream, split by byte 1 as seed).
 * Request: mt_relay_req_inspect, then mt_relay_req_body with a mapped model and forced
 * usage (the upstream body must parse and carry the new model). Answer:
 * mt_relay_usage_body / mt_relay_usage_event per SSE event, then mt_relay_usage_final.
 * Invariants: an inspected model is 1..MT_RELAY_MODEL_MAX-1 bytes, estimates and
 * max_tokens are >= 0; the billed prompt and completion tokens are never negative; nothing
 * leaks.
 */
#include "fuzz_util.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "relay/request.h"
#include "relay/usage.h"

#include <string.h>

static int on_event(void *ud, const struct cm_sse_event *ev)
{
    FZ_ASSERT(mt_relay_usage_event(ud, ev->type, ev->type_len, ev->data, ev->data_len) == CM_OK);
    return 0;
}

static void request(enum mt_relay_fmt f, const uint8_t *p, size_t n)
{
    cJSON *body = fz_json(p, n);
    struct mt_relay_reqinfo ri;
    struct cm_json_err je;
    char *out = NULL, origin[MT_RELAY_MODEL_MAX];
    size_t len = 0;
    int rc;

    if (!body)
        return;
    memset(&ri, 0, sizeof ri);
    rc = mt_relay_req_inspect(f, body, &ri, &je);
    if (rc != CM_OK) {
        FZ_ASSERT(memchr(je.msg, '\0', sizeof je.msg) != NULL);
        cJSON_Delete(body);
        return;
    }
    FZ_ASSERT(ri.model && ri.model[0] && strlen(ri.model) < MT_RELAY_MODEL_MAX);
    FZ_ASSERT(ri.max_tokens >= 0 && ri.prompt_estimate >= 0);
    FZ_ASSERT(ri.include_usage >= -1 && ri.include_usage <= 1);
    snprintf(origin, sizeof origin, "%s", ri.model);
    rc = mt_relay_req_body(body, origin, "mapped-model", ri.stream && f <= MT_RELAY_COMPLETIONS,
                           &out, &len);
    FZ_ASSERT(rc == CM_OK || rc == CM_ERR_NOMEM);
    if (rc == CM_OK && out) {
        cJSON *again = fz_json((const uint8_t *)out, len);
        const char *m = NULL;
        /* the upstream body parses back (depth 64: it is as deep as the client's) */
        FZ_ASSERT(again != NULL);
        FZ_ASSERT(cm_json_get_string(again, "model", &m, NULL) == CM_OK);
        FZ_ASSERT(strcmp(m, "mapped-model") == 0);
        cJSON_Delete(again);
    }
    cm_free(out);
    cJSON_Delete(body);
}

static void answer(enum mt_relay_fmt f, const uint8_t *p, size_t n, int sse, uint8_t seed)
{
    struct mt_relay_usage s;
    struct mt_usage u;
    int local = -1;
    mt_relay_usage_init(&s, f);
    if (sse) {
        struct cm_sse_parser ps;
        cm_sse_parser_init(&ps, 1u << 20, on_event, NULL, &s);
        if (fz_sse_feed(&ps, (const char *)p, n, seed) == 0)
            (void)cm_sse_parser_finish(&ps, CM_SSE_FINISH_DISPATCH);
        cm_sse_parser_cleanup(&ps);
    } else {
        int rc = mt_relay_usage_body(&s, (const char *)p, n);
        FZ_ASSERT(rc == CM_OK || rc == CM_ERR_PARSE);
    }
    FZ_ASSERT(s.completion_est >= 0 && s.tool_calls >= 0);
    mt_relay_usage_final(&s, 12, s.completion_est, &u, &local);
    FZ_ASSERT(local == 0 || local == 1);
    FZ_ASSERT(u.prompt_tokens >= 0 && u.completion_tokens >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t sel = fz_byte(&in), seed = fz_byte(&in);
    enum mt_relay_fmt f = (enum mt_relay_fmt)(sel % 5);

    fz_init();
    if (sel & 8)
        answer(f, in.p, in.n, (sel & 16) != 0, seed);
    else
        request(f, in.p, in.n);
    return 0;
}
