/* SPDX-License-Identifier: MIT */
/*
 * fuzz_translate_request.c - every cliproxyd request translator (cliproxyd/translate/) on a
 * hostile client body.
 * Input: byte 0 picks the translator (mod 10), the rest = the request body:
 *   0 chat_codex   1 chat_claude   2 chat_gemini   3 responses_codex   4 messages_codex
 *   5 responses_chat   6 messages_chat   7 gemini_chat (stream or not by bit 7)
 *   8 completions_chat   9 chat_codex from raw bytes (its own parse, depth cap)
 * A pivot adapter's Chat result (5-8) goes on through chat_codex, chat_claude and
 * chat_gemini, as the relay does for "via Chat" pairs.
 * Invariants: CM_OK gives a tree that prints; a failure fills err (rc, a 4xx/5xx status,
 * NUL-terminated message); nothing leaks (ASan's leak check at exit of each run).
 */
#include "fuzz_util.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "translate/chat_claude.h"
#include "translate/chat_codex.h"
#include "translate/chat_gemini.h"
#include "translate/completions_chat.h"
#include "translate/gemini_chat.h"
#include "translate/messages_chat.h"
#include "translate/messages_codex.h"
#include "translate/responses_chat.h"
#include "translate/responses_codex.h"

#include <string.h>

static void check(int rc, cJSON *out, const struct cp_tr_err *e)
{
    if (rc == CM_OK) {
        char *s = NULL;
        FZ_ASSERT(out != NULL);
        FZ_ASSERT(cm_json_print(out, &s, NULL) == CM_OK);
        cm_free(s);
    } else {
        FZ_ASSERT(out == NULL);
        FZ_ASSERT(e->rc == rc);
        FZ_ASSERT(e->status >= 400 && e->status <= 599);
        FZ_ASSERT(memchr(e->msg, '\0', sizeof e->msg) != NULL);
        FZ_ASSERT(memchr(e->field, '\0', sizeof e->field) != NULL);
    }
}

/* A Chat request (from a pivot adapter) on to each upstream translator. */
static void chat_on(const cJSON *chat)
{
    struct cp_tr_err e;
    cJSON *out = NULL;
    char *base = NULL;
    int rc;

    memset(&e, 0, sizeof e);
    rc = cp_tr_chat_codex_request(chat, &out, &e);
    check(rc, out, &e);
    cJSON_Delete(out);
    out = NULL;

    memset(&e, 0, sizeof e);
    rc = cp_tr_chat_claude_request(chat, &out, &e);
    check(rc, out, &e);
    cJSON_Delete(out);
    out = NULL;

    memset(&e, 0, sizeof e);
    rc = cp_tr_chat_gemini_request(chat, &out, &base, &e);
    check(rc, out, &e);
    cJSON_Delete(out);
    cm_free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t sel = fz_byte(&in);
    struct cp_tr_err e;
    cJSON *req, *out = NULL;
    char *base = NULL;
    int rc;

    fz_init();
    memset(&e, 0, sizeof e);
    if (sel % 10 == 9) {
        char *s = NULL;
        size_t n = 0;
        rc = cp_tr_chat_codex_request_bytes((const char *)in.p, in.n, &s, &n, &e);
        if (rc == CM_OK)
            FZ_ASSERT(s != NULL && strlen(s) == n);
        else
            FZ_ASSERT(e.rc == rc && e.status >= 400 && e.status <= 599);
        cm_free(s);
        return 0;
    }
    req = fz_json(in.p, in.n);
    if (!req)
        return 0;
    switch (sel % 10) {
    case 0:
        rc = cp_tr_chat_codex_request(req, &out, &e);
        break;
    case 1:
        rc = cp_tr_chat_claude_request(req, &out, &e);
        break;
    case 2:
        rc = cp_tr_chat_gemini_request(req, &out, &base, &e);
        if (rc == CM_OK)
            FZ_ASSERT(base != NULL);
        break;
    case 3:
        rc = cp_tr_responses_codex_request(req, &out, &e);
        break;
    case 4:
        rc = cp_tr_messages_codex_request(req, &out, &e);
        break;
    case 5:
        rc = cp_tr_responses_chat_request(req, &out, &e);
        break;
    case 6:
        rc = cp_tr_messages_chat_request(req, &out, &e);
        break;
    case 7:
        rc = cp_tr_gemini_chat_request(req, "gemini-2.5-pro", (sel & 128) != 0, &out, &e);
        break;
    default:
        rc = cp_tr_completions_chat_request(req, &out, &e);
        break;
    }
    check(rc, out, &e);
    if (rc == CM_OK && sel % 10 >= 5)
        chat_on(out);
    cJSON_Delete(out);
    cm_free(base);
    cJSON_Delete(req);
    return 0;
}
