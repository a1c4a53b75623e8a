/* SPDX-License-Identifier: MIT */
/*
 * relay_fmt.h - what the relay (relay.c) asks of one (client format, upstream provider)
 * pair: turn the client's request into the upstream body, build the upstream call for a
 * credential, classify an upstream failure, and turn the upstream answer into what the
 * client reads (stream event by event, or aggregated). One `struct cp_relay_fmt` per pair
 * (fmt_codex.c: Chat / Responses / Messages clients on Codex; fmt_claude.c: Messages and
 * Chat clients on Claude). Formats do no I/O: the relay sends, retries and writes.
 *
 * Threads: prepare() runs on a server thread; everything else on the thread the relay
 * runs the attempt on (the HTTP client's I/O thread, or the refresher's after a 401).
 * Never two at once for one request.
 */
#ifndef CP_API_RELAY_FMT_H
#define CP_API_RELAY_FMT_H

#include "authstore.h"
#include "cm/buf.h"
#include "cm/httpc.h"
#include "cm/sse.h"
#include "config.h"
#include "providers/upreq.h"
#include "scheduler.h"
#include "translate/translate.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/** One request as its format sees it. The relay owns it; formats fill the marked fields. */
struct cp_relay_x {
    /* set by the relay before prepare() */
    const cJSON *client;    /* the client's request object */
    const char *model;      /* base model: what credentials are picked and cooled for */
    int stream;             /* the client asked for a stream */
    const char *client_ua;  /* client's User-Agent or NULL */
    const char *client_hdr; /* client's provider-specific header (Originator for Codex,
                               Anthropic-Beta for Claude) or NULL */
    char session[128];      /* prompt-cache / session key derived from the client key;
                               prepare() may replace it with the client's own */
    char chunk_id[48];      /* "chatcmpl-<request id>" */
    char msg_id[48];        /* "msg_<request id>" */
    int64_t created;        /* unix seconds */
    /* set by prepare(): the upstream body, and whether the upstream call streams */
    char *body; /* owned by the relay afterwards */
    size_t body_len;
    int up_stream; /* 1: the upstream answers SSE (aggregated when !stream) */
    char *extra;   /* format data kept for build() (e.g. Claude's beta list), owned */
    /* streaming: stream_event()/stream_finish() append client bytes to out and report */
    struct cm_buf out;    /* client bytes not yet written */
    int content;          /* real content was produced: the client's stream may start */
    int tr_rc;            /* first translator failure of this attempt (0 = none) */
    struct cp_tr_err err; /* its details (status, type, code, message) */
    void *st;             /* the format's stream state (stream_init/stream_cleanup) */
};

/** A (client, upstream) pair. All function pointers are set. */
struct cp_relay_fmt {
    const char *name;          /* for logs: "chat->codex" */
    const char *provider;      /* scheduler provider: "codex", "claude" */
    enum cp_provider upstream; /* for base URLs */
    /* client request -> x->body / x->up_stream (and x->extra); CM_OK or an error with e */
    int (*prepare)(struct cp_relay_x *x, struct cp_tr_err *e);
    /* the upstream call with credential c (borrowed) at base URL base */
    int (*build)(struct cp_relay_x *x, const struct cp_authstore_cred *c, const char *base,
                 struct cp_upreq *out);
    /* a non-2xx answer -> scheduler outcome; head may be NULL */
    void (*outcome)(const struct cm_httpc_head *head, long status, const char *body, size_t len,
                    int64_t now_s, struct cp_sched_outcome *o);
    /* streaming clients */
    int (*stream_init)(struct cp_relay_x *x);
    void (*stream_event)(struct cp_relay_x *x, const struct cm_sse_event *ev);
    int (*stream_finish)(struct cp_relay_x *x); /* upstream ended: CM_OK or as tr_rc */
    int (*stream_usage)(struct cp_relay_x *x, struct cp_tr_usage *u);
    void (*stream_cleanup)(struct cp_relay_x *x);
    /* non-stream clients: the whole upstream body -> one JSON answer (*out owned, cm_free) */
    int (*aggregate)(struct cp_relay_x *x, const char *body, size_t len, char **out,
                     size_t *out_len, struct cp_tr_usage *u);
};

extern const struct cp_relay_fmt cp_fmt_chat_codex;      /* OpenAI Chat -> Codex */
extern const struct cp_relay_fmt cp_fmt_responses_codex; /* OpenAI Responses -> Codex */
extern const struct cp_relay_fmt cp_fmt_messages_codex;  /* Claude Messages -> Codex */
extern const struct cp_relay_fmt cp_fmt_messages_claude; /* Claude Messages -> Claude */
extern const struct cp_relay_fmt cp_fmt_chat_claude;     /* OpenAI Chat -> Claude */

/** Records the first translator failure of an attempt (keeps the first one). */
void cp_relay_x_fail(struct cp_relay_x *x, int rc);

#endif
