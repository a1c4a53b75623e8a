/* SPDX-License-Identifier: MIT */
/*
 * request.h - what the relay reads from and changes in a client's request body, without
 * I/O (spec newapi.md 4.3, 5.4, 5.6): the API format of each /v1 route, the model, stream
 * flag, max tokens and a local prompt-token estimate (the pre-consumption's input); the
 * upstream body (the channel's mapped model name, stream_options.include_usage forced on
 * chat and completions streams); a channel's model_mapping resolution. Pure.
 */
#ifndef MT_RELAY_REQUEST_H
#define MT_RELAY_REQUEST_H

#include "cm/json.h"

#include <stddef.h>
#include <stdint.h>

/** The API format of a relay route: decides the usage parser and the error shape. */
enum mt_relay_fmt {
    MT_RELAY_CHAT = 0,    /* POST /v1/chat/completions */
    MT_RELAY_COMPLETIONS, /* POST /v1/completions */
    MT_RELAY_RESPONSES,   /* POST /v1/responses */
    MT_RELAY_MESSAGES,    /* POST /v1/messages (Anthropic; usage semantic "anthropic") */
    MT_RELAY_EMBEDDINGS,  /* POST /v1/embeddings (never streamed) */
};

/** The upstream path of @p f ("/v1/chat/completions" ...); static storage. */
const char *mt_relay_fmt_path(enum mt_relay_fmt f);

#define MT_RELAY_MODEL_MAX 256    /* bytes of a model name, NUL included */
#define MT_RELAY_IMAGE_TOKENS 85  /* estimate for one image / audio / file part */
#define MT_RELAY_MSG_OVERHEAD 3   /* estimate per chat message, and once per request */
#define MT_RELAY_MAPPING_STEPS 16 /* longest model_mapping chain followed */

/** What the relay needs from a request body; filled by mt_relay_req_inspect(). */
struct mt_relay_reqinfo {
    const char *model;       /* borrowed from the tree; < MT_RELAY_MODEL_MAX bytes */
    int stream;              /* "stream": true (never for embeddings) */
    int include_usage;       /* stream_options.include_usage: -1 absent, 0 false, 1 true */
    int64_t max_tokens;      /* max_tokens | max_completion_tokens | max_output_tokens; 0: none */
    int64_t prompt_estimate; /* local estimate of the prompt tokens (mt_pricing_estimate_tokens) */
};

/**
 * Reads @p body (the parsed client request) for format @p f. The model is the top-level
 * "model" string (required, 1..MT_RELAY_MODEL_MAX-1 bytes); "stream" must be a boolean
 * when present; the max-token fields integers in 0..2^53-1. The prompt estimate sums the
 * text of the fields that carry the prompt (chat/messages: "messages", "system", "tools";
 * completions: "prompt"; responses: "input", "instructions", "tools"; embeddings: "input"),
 * MT_RELAY_IMAGE_TOKENS per image/audio/file part (their base64 is not counted), one per
 * integer token id, plus MT_RELAY_MSG_OVERHEAD per message and per request.
 * CM_OK; CM_ERR_INVAL / CM_ERR_NOTFOUND with @p err (may be NULL) naming the field.
 */
int mt_relay_req_inspect(enum mt_relay_fmt f, const cJSON *body, struct mt_relay_reqinfo *out,
                         struct cm_json_err *err);

/**
 * The body to send upstream: @p body with "model" set to @p model and, when @p force_usage
 * (a chat or completions stream), stream_options.include_usage set to true. The tree is
 * changed in place (so the "model" string that mt_relay_req_inspect() lent is no longer
 * valid). When neither change is needed, CM_OK with *@p out NULL: send the client's bytes
 * as they came. Otherwise *@p out (cm_free) and *@p len. CM_ERR_NOMEM, CM_ERR_INVAL.
 */
int mt_relay_req_body(cJSON *body, const char *origin_model, const char *model, int force_usage,
                      char **out, size_t *len);

/**
 * Resolves @p model through a channel's model_mapping (JSON {"from":"to"}; NULL, "" and
 * "{}" map nothing), following chains (a->b, b->c gives c); an empty target is ignored.
 * The result into @p out (@p cap bytes). CM_OK; CM_ERR_PARSE (not a JSON object of
 * strings); CM_ERR_LIMIT (a cycle, a chain longer than MT_RELAY_MAPPING_STEPS, or a name
 * that does not fit); CM_ERR_INVAL (NULL arguments).
 */
int mt_relay_map_model(const char *mapping, const char *model, char *out, size_t cap);

#endif
