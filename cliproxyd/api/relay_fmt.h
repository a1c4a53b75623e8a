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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One request as its format sees it. The relay owns it; formats fill the marked fields. */
struct cp_relay_in;
struct cp_relay_fmt;
struct cp_pivot;

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
    char *raw;     /* the body before per-credential wrapping (Gemini CLI envelope), owned */
    size_t raw_len;
    /* streaming: stream_event()/stream_finish() append client bytes to out and report */
    struct cm_buf out;    /* client bytes not yet written */
    int content;          /* real content was produced: the client's stream may start */
    int tr_rc;            /* first translator failure of this attempt (0 = none) */
    struct cp_tr_err err; /* its details (status, type, code, message) */
    void *st;             /* the format's stream state (stream_init/stream_cleanup) */
    char resp_id[64];     /* "resp_<request id>" (Responses clients) */
    const char *gemini_model; /* Gemini routes: the model named in the URL (suffix kept) */
    const char *up_model;     /* per attempt, for build(): the name the credential's upstream
                                 knows model by (an alias resolved), borrowed */
    /* the pivot (fmt_pivot.c): set by the relay when no direct format exists */
    const struct cp_relay_in *in;  /* the client's adapter; NULL: no pivot */
    const struct cp_relay_fmt *up; /* the chat format that talks to the upstream */
    const cJSON *orig;             /* the client's own request (client is the chat one) */
    struct cp_pivot *pv;           /* pivot state, owned (cp_pivot_free) */
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
    /* optional (NULL = always): may credential c take this request now? CM_OK, or
     * CM_ERR_LIMIT with *o (a local 429 and its hint) and x->err filled: the credential is
     * skipped without an upstream call (Qwen's per-credential limit) */
    int (*admit)(struct cp_relay_x *x, const struct cp_authstore_cred *c, int64_t now_ms,
                 struct cp_sched_outcome *o);
};

/**
 * A client format spoken over the OpenAI Chat pivot (fmt_pivot.c): its request becomes a
 * chat.completions request for x->up, and the chat chunks (or the chat.completion) x->up
 * produces become the client's answer. Every pointer is set; states are opaque.
 */
struct cp_relay_in {
    const char *name; /* "responses", "messages", "gemini", "completions" */
    /* x->orig -> a new chat request (owned by the caller) */
    int (*request)(const struct cp_relay_x *x, cJSON **chat, struct cp_tr_err *e);
    int (*stream_new)(const struct cp_relay_x *x, void **st);
    int (*chunk)(void *st, const cJSON *chunk, struct cm_buf *out, struct cp_tr_err *e);
    int (*end)(void *st, struct cm_buf *out);
    int (*fail)(void *st, const struct cp_tr_err *e, struct cm_buf *out);
    bool (*has_content)(const void *st);
    void (*stream_free)(void *st);
    int (*response)(const struct cp_relay_x *x, const cJSON *completion, cJSON **out,
                    struct cp_tr_err *e);
};

extern const struct cp_relay_in cp_in_responses;   /* OpenAI Responses clients */
extern const struct cp_relay_in cp_in_messages;    /* Claude Messages clients */
extern const struct cp_relay_in cp_in_gemini;      /* Gemini generateContent clients */
extern const struct cp_relay_in cp_in_completions; /* legacy /v1/completions clients */

/** The pivot format: runs x->in over x->up. Provider and upstream come from x->up. */
extern const struct cp_relay_fmt cp_fmt_pivot;
/** Frees the pivot state of @p x (safe when there is none). */
void cp_pivot_free(struct cp_relay_x *x);

extern const struct cp_relay_fmt cp_fmt_chat_codex;      /* OpenAI Chat -> Codex */
extern const struct cp_relay_fmt cp_fmt_responses_codex; /* OpenAI Responses -> Codex */
extern const struct cp_relay_fmt cp_fmt_messages_codex;  /* Claude Messages -> Codex */
extern const struct cp_relay_fmt cp_fmt_messages_claude; /* Claude Messages -> Claude */
extern const struct cp_relay_fmt cp_fmt_chat_claude;     /* OpenAI Chat -> Claude */
extern const struct cp_relay_fmt cp_fmt_chat_gemini;     /* OpenAI Chat -> Gemini (CLI or key) */
extern const struct cp_relay_fmt cp_fmt_gemini_gemini;   /* Gemini -> Gemini (passed through) */
extern const struct cp_relay_fmt cp_fmt_chat_qwen;       /* OpenAI Chat -> Qwen */
extern const struct cp_relay_fmt cp_fmt_chat_iflow;      /* OpenAI Chat -> iFlow */
extern const struct cp_relay_fmt cp_fmt_chat_compat;     /* OpenAI Chat -> openai-compatibility */
extern const struct cp_relay_fmt cp_fmt_count_claude; /* Messages count_tokens on Claude */
extern const struct cp_relay_fmt cp_fmt_count_gemini; /* Gemini countTokens on Gemini */

/** Records the first translator failure of an attempt (keeps the first one). */
void cp_relay_x_fail(struct cp_relay_x *x, int rc);

#endif
