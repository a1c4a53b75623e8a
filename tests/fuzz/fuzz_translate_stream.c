/* SPDX-License-Identifier: MIT */
/*
 * fuzz_translate_stream.c - the upstream streaming state machines of the direct
 * translators (cliproxyd/translate/): an upstream SSE body, split into events by the real
 * cm_sse parser (in chunks of fuzzer-chosen sizes), fed one event at a time to
 * stream_event, then stream_finish; and the same body to the non-stream aggregator.
 * Input: byte 0 = which machine (mod 4: 0 chat_codex, 1 chat_claude, 2 chat_gemini,
 * 3 messages_codex; bit 7: the client asked include_usage and sent tools with a long name),
 * byte 1 = split seed, the rest = the upstream body.
 * Invariants: return codes are the documented ones; after a CM_OK finish of a chat stream
 * the client output ends with "data: [DONE]"; an upstream error leaves no [DONE]; err
 * statuses are HTTP codes; nothing leaks.
 */
#include "fuzz_util.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "translate/chat_claude.h"
#include "translate/chat_codex.h"
#include "translate/chat_gemini.h"
#include "translate/messages_codex.h"

#include <string.h>

static const char REQ_PLAIN[] = "{\"model\":\"gpt-5\",\"stream\":true,"
                                "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char REQ_TOOLS[] =
    "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
    "\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
    "{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":"
    "\"mcp__a_very_long_server_name_that_goes_on_and_on__and_a_tool_name_that_is_long_too\"}}],"
    "\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\"}}";

struct ctx {
    unsigned which;
    void *st;
    struct cm_buf out;
    struct cp_tr_err err;
    int rc; /* first non-OK code of stream_event */
};

static int on_event(void *ud, const struct cm_sse_event *ev)
{
    struct ctx *c = ud;
    int rc;
    switch (c->which) {
    case 0:
        rc = cp_tr_chat_codex_stream_event(c->st, ev->type, ev->type_len, ev->data, ev->data_len,
                                           &c->out, &c->err);
        break;
    case 1:
        rc = cp_tr_chat_claude_stream_event(c->st, ev->type, ev->type_len, ev->data, ev->data_len,
                                            &c->out, &c->err);
        break;
    case 2:
        rc = cp_tr_chat_gemini_stream_event(c->st, ev->type, ev->type_len, ev->data, ev->data_len,
                                            &c->out, &c->err);
        break;
    default:
        rc = cp_tr_messages_codex_stream_event(c->st, ev->type, ev->type_len, ev->data,
                                               ev->data_len, &c->out, &c->err);
        break;
    }
    FZ_ASSERT(rc == CM_OK || rc == CM_ERR_UPSTREAM || rc == CM_ERR_LIMIT || rc == CM_ERR_NOMEM);
    if (rc == CM_ERR_UPSTREAM)
        FZ_ASSERT(c->err.status >= 400 && c->err.status <= 599);
    if (rc != CM_OK) {
        c->rc = rc;
        return 1; /* the relay abandons the stream here */
    }
    return 0;
}

static bool ends_done(const struct cm_buf *b)
{
    static const char done[] = "data: [DONE]\n\n";
    size_t n = sizeof done - 1;
    return b->len >= n && memcmp(b->data + b->len - n, done, n) == 0;
}

static void aggregate(unsigned which, const uint8_t *p, size_t n, const cJSON *req)
{
    struct cp_tr_err e;
    struct cp_tr_usage u;
    cJSON *out = NULL;
    int rc;
    memset(&e, 0, sizeof e);
    switch (which) {
    case 0:
        rc = cp_tr_chat_codex_aggregate((const char *)p, n, req, "chatcmpl-1", 1700000000, &out,
                                        &u, &e);
        break;
    case 1:
        rc = cp_tr_chat_claude_aggregate((const char *)p, n, req, "chatcmpl-1", 1700000000, &out,
                                         &u, &e);
        if (rc != CM_OK) {
            /* the same body as one non-stream Message */
            cJSON *m = fz_json(p, n);
            if (m) {
                struct cp_tr_err e2;
                cJSON *o2 = NULL;
                memset(&e2, 0, sizeof e2);
                if (cp_tr_chat_claude_from_message(m, req, "chatcmpl-1", 1700000000, &o2, &u,
                                                   &e2) == CM_OK)
                    FZ_ASSERT(o2 != NULL);
                cJSON_Delete(o2);
                cJSON_Delete(m);
            }
        }
        break;
    case 2:
        rc = cp_tr_chat_gemini_aggregate((const char *)p, n, req, "chatcmpl-1", 1700000000, &out,
                                         &u, &e);
        break;
    default:
        rc = cp_tr_messages_codex_aggregate((const char *)p, n, req, "msg_1", &out, &u, &e);
        break;
    }
    if (rc == CM_OK)
        FZ_ASSERT(out != NULL);
    else
        FZ_ASSERT(out == NULL && e.status >= 400 && e.status <= 599);
    cJSON_Delete(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t sel = fz_byte(&in), seed = fz_byte(&in);
    const char *rq = (sel & 128) ? REQ_TOOLS : REQ_PLAIN;
    cJSON *req;
    struct ctx c;
    struct cp_tr_chat_codex_stream s0;
    struct cp_tr_chat_claude_stream s1;
    struct cp_tr_chat_gemini_stream s2;
    struct cp_tr_messages_codex_stream s3;
    struct cm_sse_parser p;
    int rc, frc;

    fz_init();
    req = fz_json((const uint8_t *)rq, strlen(rq));
    FZ_ASSERT(req != NULL);
    memset(&c, 0, sizeof c);
    memset(&s0, 0, sizeof s0);
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    memset(&s3, 0, sizeof s3);
    c.which = sel % 4;
    cm_buf_init(&c.out, 8u << 20);
    switch (c.which) {
    case 0:
        rc = cp_tr_chat_codex_stream_init(&s0, req, "chatcmpl-1", 1700000000, &c.err);
        c.st = &s0;
        break;
    case 1:
        rc = cp_tr_chat_claude_stream_init(&s1, req, "chatcmpl-1", 1700000000, &c.err);
        c.st = &s1;
        break;
    case 2:
        rc = cp_tr_chat_gemini_stream_init(&s2, req, "chatcmpl-1", 1700000000, &c.err);
        c.st = &s2;
        break;
    default:
        rc = cp_tr_messages_codex_stream_init(&s3, req, "msg_1", &c.err);
        c.st = &s3;
        break;
    }
    FZ_ASSERT(rc == CM_OK);

    cm_sse_parser_init(&p, 1u << 20, on_event, NULL, &c);
    rc = fz_sse_feed(&p, (const char *)in.p, in.n, seed);
    if (rc == 0)
        rc = cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH);
    cm_sse_parser_cleanup(&p);

    if (c.rc == 0) {
        memset(&c.err, 0, sizeof c.err);
        switch (c.which) {
        case 0:
            frc = cp_tr_chat_codex_stream_finish(&s0, &c.out, &c.err);
            break;
        case 1:
            frc = cp_tr_chat_claude_stream_finish(&s1, &c.out, &c.err);
            break;
        case 2:
            frc = cp_tr_chat_gemini_stream_finish(&s2, &c.out, &c.err);
            break;
        default:
            frc = cp_tr_messages_codex_stream_finish(&s3, &c.out, &c.err);
            break;
        }
        FZ_ASSERT(frc == CM_OK || frc == CM_ERR_TIMEOUT || frc == CM_ERR_LIMIT ||
                  frc == CM_ERR_NOMEM);
        if (frc == CM_ERR_TIMEOUT)
            FZ_ASSERT(c.err.status == 408 && !ends_done(&c.out));
        if (frc == CM_OK && c.which != 3 && rc == 0)
            FZ_ASSERT(ends_done(&c.out));
    } else if (c.rc == CM_ERR_UPSTREAM && c.which != 3) {
        FZ_ASSERT(!ends_done(&c.out));
    }
    {
        struct cp_tr_usage u;
        if (c.which == 0)
            (void)cp_tr_chat_codex_stream_usage(&s0, &u);
        else if (c.which == 1)
            (void)cp_tr_chat_claude_stream_usage(&s1, &u);
        else if (c.which == 2)
            (void)cp_tr_chat_gemini_stream_usage(&s2, &u);
        else
            (void)cp_tr_messages_codex_stream_usage(&s3, &u);
    }
    cp_tr_chat_codex_stream_cleanup(&s0);
    cp_tr_chat_claude_stream_cleanup(&s1);
    cp_tr_chat_gemini_stream_cleanup(&s2);
    cp_tr_messages_codex_stream_cleanup(&s3);
    cm_buf_cleanup(&c.out);

    aggregate(c.which, in.p, in.n, req);
    cJSON_Delete(req);
    return 0;
}
