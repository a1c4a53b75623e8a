/* SPDX-License-Identifier: MIT */
/*
 * claude.h - the Claude (Claude Code OAuth) upstream: what a call to Anthropic's
 * /v1/messages must carry (spec cliproxyapi.md 3.2(d), [v6] behaviour), the request body
 * rules (model suffix, betas, max_tokens, thinking, cache_control, cloaking, cch
 * signing), how its errors drive the scheduler (3.2(e), section 4) and how its usage is
 * read. No I/O: the relay sends what cp_claude_prepare() and cp_claude_build() produce.
 *
 * Typical use by the relay, per attempt on credential c:
 *   cp_claude_prepare(body, &prep, &pp, &err);      body = the Messages request tree
 *   cp_claude_build(base, c, &(struct cp_claude_hdrs){.betas = pp.betas, ...}, &req);
 *   send req.url, req.headers, pp.body / pp.len; then cp_claude_outcome() on errors and
 *   cp_claude_usage_feed() on message_start / message_delta events (or the message JSON).
 *
 * Choices that differ from CLIProxyAPI (and why):
 *  - cloaking keeps the caller's system text: it is moved into the first user message
 *    wrapped in <system-reminder>...</system-reminder> (CLIProxyAPI v6 replaces it with a
 *    neutral reminder for OAuth), so a caller's instructions are never silently lost;
 *  - no zero-width obfuscation of "sensitive words" and no OAuth tool-name remapping;
 *  - the default beta list drops oauth-2025-04-20 for API-key tokens;
 *  - "system" is moved to the front of the printed body, so the billing block's cch is
 *    the first "cch=xxxxx;" in the bytes (what a verifier that scans the body finds).
 * Thread-safety: every function is pure over its arguments (a tree has one owner).
 */
#ifndef CP_PROVIDERS_CLAUDE_H
#define CP_PROVIDERS_CLAUDE_H

#include <stddef.h>
#include <stdint.h>

#include "authstore.h"
#include "cm/json.h"
#include "providers/upreq.h"
#include "scheduler.h"
#include "translate/translate.h"

struct cm_httpc_head;

#define CP_CLAUDE_DEFAULT_BASE "https://api.anthropic.com"
#define CP_CLAUDE_CLI_VERSION "2.1.63" /* [v6] Claude Code version we present */
#define CP_CLAUDE_DEFAULT_UA "claude-cli/" CP_CLAUDE_CLI_VERSION " (external, cli)"
#define CP_CLAUDE_API_VERSION "2023-06-01"
#define CP_CLAUDE_AGENT_LINE "You are Claude Code, Anthropic's official CLI for Claude."
#define CP_CLAUDE_BILLING_PREFIX "x-anthropic-billing-header:"
#define CP_CLAUDE_CCH_SEED 0x6E52736AC806831EULL /* xxHash64 seed of the cch signature */
#define CP_CLAUDE_MAX_TOKENS_FALLBACK 1024       /* max_tokens for a model not in our table */
#define CP_CLAUDE_MAX_CACHE_CONTROL 4            /* Anthropic's cap on cache breakpoints */
#define CP_CLAUDE_BETAS_MAX 4096                 /* longest Anthropic-Beta value we build */
#define CP_CLAUDE_OAUTH_BETA "oauth-2025-04-20"
/** [v6] list used when the client sent no Anthropic-Beta (oauth-... only for OAuth). */
#define CP_CLAUDE_DEFAULT_BETAS                                                                    \
    "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"                       \
    "context-management-2025-06-27,prompt-caching-scope-2026-01-05,"                               \
    "structured-outputs-2025-12-15,fast-mode-2026-02-01,redact-thinking-2026-02-12,"               \
    "token-efficient-tools-2026-03-28"

/** 1 if @p tok is a Claude OAuth access token (contains "sk-ant-oat"), else 0 (NULL: 0). */
int cp_claude_is_oauth_token(const char *tok);

/**
 * The max_tokens added when a request has none: the model's output cap from a small
 * table of the catalog's models (spec 3.2(f)) matched on the base name's prefix -
 * haiku-4-5, sonnet-4 / 4-5 / 4-6, opus-4-5 / 4-6, 3-7-sonnet: 64000 (the 4-6 models
 * may allow more; 64000 is accepted by all); opus-4 / 4-1: 32000; 3-5-haiku: 8192 -
 * else CP_CLAUDE_MAX_TOKENS_FALLBACK (spec: "else 1024"). NULL gives the fallback.
 */
int64_t cp_claude_max_tokens(const char *base_model);

/** When to cloak (spec 3.2(d) "mode"). */
enum cp_claude_cloak {
    CP_CLAUDE_CLOAK_AUTO = 0, /* unless the client UA starts with "claude-cli" */
    CP_CLAUDE_CLOAK_ALWAYS,
    CP_CLAUDE_CLOAK_NEVER
};

/** Options of cp_claude_prepare(); everything borrowed for the call. Zeroed = defaults. */
struct cp_claude_prep {
    const char *client_ua;   /* client's User-Agent, NULL = none */
    const char *client_beta; /* client's Anthropic-Beta, NULL or "" = none */
    int client_stream;       /* the client asked for a stream */
    int from_claude;         /* source format is claude (passthrough); else stream is forced */
    int oauth;               /* the credential's token is OAuth (cp_claude_is_oauth_token) */
    int want_1m;             /* client sent X-CPA-CLAUDE-1M: add context-1m-2025-08-07 */
    enum cp_claude_cloak cloak;
    int64_t max_tokens_default; /* > 0: max_tokens for a request without; 0: the table */
    /* random source for metadata.user_id: fill @p n bytes at @p buf, return CM_OK (or an
       error, which fails the call with 500); NULL = cm_crypto_random_bytes() */
    int (*rng)(void *ud, void *buf, size_t n);
    void *rng_ud;
};

/** What cp_claude_prepare() produced; free with cp_claude_prepared_cleanup(). */
struct cp_claude_prepared {
    char *body;     /* owned: the printed (and, when cloaked, signed) request body */
    size_t len;     /* its length */
    char *betas;    /* owned: the comma-separated Anthropic-Beta value */
    int stream;     /* the upstream call streams (body "stream": true) */
    int cloaked;    /* the system prompt was replaced (billing + Claude Code line) */
    int signed_cch; /* a billing header's cch=xxxxx; was signed */
};

/**
 * Turns the Messages request tree @p body (modified in place; translated already when
 * the client spoke another format) into the bytes to send, in this order:
 *  1. model: a "(suffix)" (spec 5.1) is stripped; it sets thinking: budget models get
 *     {"type":"enabled","budget_tokens":b} (levels: minimal 512, low 1024, medium 8192,
 *     high 24576, xhigh 32768, max 128000; auto -> 8192; clamped to 1024..128000 and
 *     below max_tokens, disabled when max_tokens <= 1024) or {"type":"disabled"} (none/0);
 *     adaptive models (claude-*-4-6 and later) get {"type":"adaptive"} plus
 *     output_config.effort (minimal -> low, auto -> high, xhigh/max -> max on opus, else
 *     high). The suffix overrides body settings. Routing by base name is the caller's.
 *  2. the body's "betas" (strings) are moved into the beta list and removed. List: the
 *     client's Anthropic-Beta if given, else CP_CLAUDE_DEFAULT_BETAS (minus oauth-... for
 *     API keys); then claude-code-20250219, oauth-2025-04-20 (OAuth), interleaved-
 *     thinking-2025-05-14, context-1m-2025-08-07 (want_1m) and body betas are appended
 *     when missing. Entries are trimmed; duplicates and empty ones dropped.
 *  3. max_tokens added when missing (max_tokens_default, else cp_claude_max_tokens()).
 *  4. "thinking" removed when tool_choice.type is "any" or "tool".
 *  5. cloaking (see enum cp_claude_cloak; never for claude-3-5-haiku*): system becomes
 *     [billing, CP_CLAUDE_AGENT_LINE, short static instructions]; billing =
 *     "x-anthropic-billing-header: cc_version=2.1.63.<fp>; cc_entrypoint=cli; cch=00000;"
 *     with fp = SHA-256("59cf53e54c78" + runes 4, 7, 20 of the first original system
 *     text ('0' when absent) + "2.1.63") hex[:3]; the original system text (all text
 *     blocks but billing ones, joined by blank lines) goes first into the first user
 *     message as a <system-reminder> text block (a user message is created when there is
 *     none); metadata.user_id is replaced unless it matches
 *     ^user_[a-f0-9]{64}_account_<uuid>_session_<uuid>$.
 *  6. cache_control: when no tool, system block or message content block has one, an
 *     ephemeral one is put on the last tool, the last system block and the last
 *     message's last content block (strings become one text block; empty text and
 *     thinking blocks are skipped). More than CP_CLAUDE_MAX_CACHE_CONTROL: the earliest
 *     ones in prompt order (tools, system, messages) are dropped, the last 4 kept (they
 *     cover the longest prefixes). A "ttl":"1h" after a shorter breakpoint is dropped
 *     (Anthropic wants longer TTLs first). Nested blocks (tool_result content) are not
 *     counted.
 *  7. "stream" = client_stream when from_claude, else true.
 *  8. "system" moved to the front; printed; when system[0] is a billing block carrying
 *     cch=<5 hex>; (ours, or a Claude Code client's), the body is signed: the first
 *     "cch=xxxxx;" is zeroed, XXH64(body, CP_CLAUDE_CCH_SEED) & 0xFFFFF written as %05x.
 *     A signed body always carries a well-formed metadata.user_id (one is generated, as
 *     in step 5, when a Claude Code client's body has none or a malformed one).
 * CM_OK with *@p out filled; CM_ERR_INVAL (bad request: body not an object, model missing
 * or with an unknown suffix, max_tokens not a positive integer, betas or system of the
 * wrong type, messages not an array; @p err (may be NULL) has status 400 and the
 * field); CM_ERR_LIMIT (beta list too long, 400); CM_ERR_NOMEM (500); CM_ERR_INTERNAL
 * (random source failed, 500). On failure *@p out is untouched and @p body may be partly
 * changed: discard it.
 */
int cp_claude_prepare(cJSON *body, const struct cp_claude_prep *p, struct cp_claude_prepared *out,
                      struct cp_tr_err *err);

/** Frees what *@p p owns and zeroes it. Safe on a zeroed struct and twice. */
void cp_claude_prepared_cleanup(struct cp_claude_prepared *p);

/** Per-call header inputs of cp_claude_build(); borrowed. */
struct cp_claude_hdrs {
    const char *betas;          /* Anthropic-Beta (cp_claude_prepared.betas); NULL = omitted */
    int stream;                 /* cp_claude_prepared.stream */
    const char *client_ua;      /* kept when it starts with "claude-cli" */
    const char *client_version; /* client's Anthropic-Version (wins), NULL = 2023-06-01 */
    const char *request_id;     /* x-client-request-id (api.anthropic.com only), NULL = none */
};

/**
 * Builds the request for credential @p c (borrowed) at @p base_url (NULL or "" =
 * CP_CLAUDE_DEFAULT_BASE; trailing '/' ignored): POST {base}/v1/messages?beta=true with
 * Content-Type: application/json; Authorization: Bearer <token> (x-api-key instead, plus
 * Anthropic-Dangerous-Direct-Browser-Access: true, for a non-OAuth token on
 * api.anthropic.com); Anthropic-Version; Anthropic-Beta; X-App: cli; X-Stainless-*
 * (Retry-Count 0, Runtime node, Lang js, Timeout 600, Runtime-Version v24.3.0,
 * Package-Version 0.74.0, Os MacOS, Arch arm64); X-Claude-Code-Session-Id
 * (cp_claude_session_id(c->id)); User-Agent (client's if "claude-cli...", else
 * CP_CLAUDE_DEFAULT_UA); Connection: keep-alive; Accept: text/event-stream and
 * Accept-Encoding: identity when streaming, else Accept: application/json. The auth
 * file's own headers come last and replace ours of the same name, except that Accept /
 * Accept-Encoding of a stream are forced again after them.
 * CM_OK, CM_ERR_INVAL (no access token), CM_ERR_LIMIT, CM_ERR_NOMEM. *@p out (caller
 * cleans up with cp_upreq_cleanup()) is written only on CM_OK and holds a secret.
 */
int cp_claude_build(const char *base_url, const struct cp_authstore_cred *c,
                    const struct cp_claude_hdrs *h, struct cp_upreq *out);

/**
 * The X-Claude-Code-Session-Id of a credential: SHA-256("cli-proxy-api:claude:session:" +
 * @p cred_id) formatted as a version-4 UUID, so it is stable per credential and unrelated
 * across credentials. @p out gets 36 characters and a NUL. NULL id counts as "".
 */
void cp_claude_session_id(const char *cred_id, char out[37]);

/**
 * Turns an upstream answer into a scheduler outcome at wall time @p now_s. @p head (the
 * response headers, may be NULL) and @p body (may be NULL) are borrowed.
 *  - 429: hint = the latest of Retry-After (seconds) and, for each of
 *    anthropic-ratelimit-unified-{5h,7d,7d_oi,}-reset whose matching -status header says
 *    "rejected" or is absent, the reset time (unix seconds or RFC 3339) minus now; none
 *    in the future -> no hint (the ladder);
 *  - 529, or 5xx with error.type overloaded_error -> status 503 (transient);
 *  - 400 with error.type invalid_request_error (incl. "You're out of extra usage"),
 *    413 and 422 -> request-scoped (no cooldown, no failover);
 *  - everything else (401, 402, 403, ...) unchanged: the scheduler maps the status.
 */
void cp_claude_outcome(long status, const struct cm_httpc_head *head, const char *body, size_t len,
                       int64_t now_s, struct cp_sched_outcome *o);

/**
 * The HTTP status an Anthropic error type stands for (for in-stream "error" events):
 * invalid_request_error 400, authentication_error 401, billing_error 402,
 * permission_error 403, not_found_error 404, request_too_large 413, rate_limit_error 429,
 * api_error 500, overloaded_error 529; anything else (or NULL) 502.
 */
int cp_claude_error_status(const char *type);

/** Raw Anthropic token counts of one call, as the events report them so far. */
struct cp_claude_usage {
    int64_t input;          /* input_tokens (not cached) */
    int64_t output;         /* output_tokens */
    int64_t cache_read;     /* cache_read_input_tokens */
    int64_t cache_creation; /* cache_creation_input_tokens */
};

/**
 * Reads the usage in @p ev (borrowed): a message_start event (message.usage), a
 * message_delta event (usage) or a whole non-stream message (usage). Each count present
 * (a non-negative integer) replaces the one in *@p acc (Anthropic reports cumulative
 * counts). Returns 1 if @p ev carried a usage object, else 0. Start from a zeroed struct.
 */
int cp_claude_usage_feed(struct cp_claude_usage *acc, const cJSON *ev);

/**
 * *@p acc in OpenAI terms: input = input + cache_read + cache_creation; output; cached =
 * cache_read, or cache_creation when cache_read is 0 (spec 3.2(d)); reasoning 0; total =
 * input + output (both in OpenAI terms).
 */
void cp_claude_usage_result(const struct cp_claude_usage *acc, struct cp_tr_usage *u);

#endif
