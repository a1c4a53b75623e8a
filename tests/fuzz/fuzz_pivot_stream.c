/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pivot_stream.c - the pivot's client adapters (cliproxyd/translate/responses_chat,
 * messages_chat, gemini_chat, completions_chat) on what a Chat upstream streams back:
 * the body is split into SSE events by cm_sse (chunks of fuzzer-chosen sizes); each
 * event's data, parsed as JSON, is one chat.completion.chunk for stream_chunk; "[DONE]"
 * or the end of the body ends the stream with stream_end, a chunk error or a mode bit
 * with stream_fail. Then the whole body, as one chat.completion, goes to *_response.
 * Input: byte 0 = adapter (mod 4: 0 responses, 1 messages, 2 gemini, 3 completions; bit 7:
 * end with stream_fail), byte 1 = split seed, the rest = the upstream body.
 * Invariants: documented return codes only; after end/fail nothing more is appended;
 * nothing leaks.
 */
#include "fuzz_util.h"

#include "cm/buf.h"
#include "cm/err.h"
#include "translate/completions_chat.h"
#include "translate/gemini_chat.h"
#include "translate/messages_chat.h"
#include "translate/responses_chat.h"

#include <string.h>

static const char *const REQS[4] = {
    "{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":true,\"tools\":[{\"type\":\"function\","
    "\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],\"reasoning\":{\"effort\":\"low\"}}",
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    "{\"model\":\"gemini-2.5-pro\",\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}",
    "{\"model\":\"gpt-5\",\"prompt\":\"hi\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
};

struct ctx {
    unsigned which;
    void *st;
    struct cm_buf out;
    int ended; /* stream_end or stream_fail was called */
    int bad;   /* a chunk call failed: the relay ends with stream_fail */
    struct cp_tr_err err;
};

static int chunk(struct ctx *c, const cJSON *j)
{
    switch (c->which) {
    case 0:
        return cp_tr_responses_chat_stream_chunk(c->st, j, &c->out, &c->err);
    case 1:
        return cp_tr_messages_chat_stream_chunk(c->st, j, &c->out, &c->err);
    case 2:
        return cp_tr_gemini_chat_stream_chunk(c->st, j, &c->out, &c->err);
    default:
        return cp_tr_completions_chat_stream_chunk(c->st, j, &c->out, &c->err);
    }
}

static int end(struct ctx *c)
{
    switch (c->which) {
    case 0:
        return cp_tr_responses_chat_stream_end(c->st, &c->out);
    case 1:
        return cp_tr_messages_chat_stream_end(c->st, &c->out);
    case 2:
        return cp_tr_gemini_chat_stream_end(c->st, &c->out);
    default:
        return cp_tr_completions_chat_stream_end(c->st, &c->out);
    }
}

static int fail(struct ctx *c, const struct cp_tr_err *e)
{
    switch (c->which) {
    case 0:
        return cp_tr_responses_chat_stream_fail(c->st, e, &c->out);
    case 1:
        return cp_tr_messages_chat_stream_fail(c->st, e, &c->out);
    case 2:
        return cp_tr_gemini_chat_stream_fail(c->st, e, &c->out);
    default:
        return cp_tr_completions_chat_stream_fail(c->st, e, &c->out);
    }
}

static int on_event(void *ud, const struct cm_sse_event *ev)
{
    struct ctx *c = ud;
    cJSON *j;
    int rc;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        rc = end(c);
        FZ_ASSERT(rc == CM_OK || rc == CM_ERR_LIMIT || rc == CM_ERR_NOMEM);
        c->ended = 1;
        return 1;
    }
    j = fz_json((const uint8_t *)ev->data, ev->data_len);
    if (!j)
        return 0; /* the relay drops an event it cannot read */
    memset(&c->err, 0, sizeof c->err);
    rc = chunk(c, j);
    cJSON_Delete(j);
    FZ_ASSERT(rc == CM_OK || rc == CM_ERR_LIMIT || rc == CM_ERR_UPSTREAM || rc == CM_ERR_NOMEM);
    if (rc != CM_OK) {
        c->bad = 1;
        return 1;
    }
    return 0;
}

static void response(unsigned which, const cJSON *req, const uint8_t *p, size_t n)
{
    cJSON *comp = fz_json(p, n), *out = NULL;
    struct cp_tr_err e;
    int rc;
    if (!comp)
        return;
    memset(&e, 0, sizeof e);
    switch (which) {
    case 0:
        rc = cp_tr_responses_chat_response(req, comp, "resp_1", 1700000000, &out, &e);
        break;
    case 1:
        rc = cp_tr_messages_chat_response(req, comp, "msg_1", 1700000000, &out, &e);
        break;
    case 2:
        rc = cp_tr_gemini_chat_response(req, comp, "resp_1", 1700000000, &out, &e);
        break;
    default:
        rc = cp_tr_completions_chat_response(req, comp, "cmpl-1", 1700000000, &out, &e);
        break;
    }
    if (rc == CM_OK)
        FZ_ASSERT(out != NULL);
    else
        FZ_ASSERT(out == NULL && e.status >= 400 && e.status <= 599);
    cJSON_Delete(out);
    cJSON_Delete(comp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t sel = fz_byte(&in), seed = fz_byte(&in);
    struct ctx c;
    struct cm_sse_parser p;
    cJSON *req;
    int rc;

    fz_init();
    memset(&c, 0, sizeof c);
    c.which = sel % 4;
    req = fz_json((const uint8_t *)REQS[c.which], strlen(REQS[c.which]));
    FZ_ASSERT(req != NULL);
    cm_buf_init(&c.out, 8u << 20);
    switch (c.which) {
    case 0:
        rc = cp_tr_responses_chat_stream_new(req, "resp_1", 1700000000,
                                             (struct cp_tr_responses_chat_stream **)&c.st);
        break;
    case 1:
        rc = cp_tr_messages_chat_stream_new(req, "msg_1", 1700000000,
                                            (struct cp_tr_messages_chat_stream **)&c.st);
        break;
    case 2:
        rc = cp_tr_gemini_chat_stream_new(req, "resp_1", 1700000000,
                                          (struct cp_tr_gemini_chat_stream **)&c.st);
        break;
    default:
        rc = cp_tr_completions_chat_stream_new(req, "cmpl-1", 1700000000,
                                               (struct cp_tr_completions_chat_stream **)&c.st);
        break;
    }
    FZ_ASSERT(rc == CM_OK && c.st != NULL);

    cm_sse_parser_init(&p, 1u << 20, on_event, NULL, &c);
    rc = fz_sse_feed(&p, (const char *)in.p, in.n, seed);
    if (rc == 0)
        (void)cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH);
    cm_sse_parser_cleanup(&p);

    if (!c.ended) {
        if (c.bad || (sel & 128)) {
            struct cp_tr_err e;
            memset(&e, 0, sizeof e);
            e.rc = CM_ERR_UPSTREAM;
            e.status = c.bad && c.err.status ? c.err.status : 502;
            snprintf(e.type, sizeof e.type, "upstream_error");
            snprintf(e.code, sizeof e.code, "bad_upstream_event");
            snprintf(e.msg, sizeof e.msg, "upstream went away");
            rc = fail(&c, &e);
        } else {
            rc = end(&c);
        }
        FZ_ASSERT(rc == CM_OK || rc == CM_ERR_LIMIT || rc == CM_ERR_NOMEM);
    }
    /* after the end, the stream takes nothing more */
    {
        size_t before = c.out.len;
        cJSON *j = fz_json((const uint8_t *)"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}",
                           49);
        FZ_ASSERT(j != NULL);
        rc = chunk(&c, j);
        cJSON_Delete(j);
        FZ_ASSERT(rc == CM_OK && c.out.len == before);
        FZ_ASSERT(end(&c) == CM_OK && c.out.len == before);
    }
    switch (c.which) {
    case 0:
        (void)cp_tr_responses_chat_stream_has_content(c.st);
        cp_tr_responses_chat_stream_free(c.st);
        break;
    case 1:
        (void)cp_tr_messages_chat_stream_has_content(c.st);
        cp_tr_messages_chat_stream_free(c.st);
        break;
    case 2:
        (void)cp_tr_gemini_chat_stream_has_content(c.st);
        cp_tr_gemini_chat_stream_free(c.st);
        break;
    default:
        (void)cp_tr_completions_chat_stream_has_content(c.st);
        cp_tr_completions_chat_stream_free(c.st);
        break;
    }
    cm_buf_cleanup(&c.out);
    response(c.which, req, in.p, in.n);
    cJSON_Delete(req);
    return 0;
}
