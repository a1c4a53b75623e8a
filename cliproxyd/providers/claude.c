/* SPDX-License-Identifier: MIT */
/* claude.c - Claude upstream request body, headers, errors and usage (see claude.h). */
#include "providers/claude.h"

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

/* The third system block of a cloaked request: a short, static Claude Code style
 * preamble (our own words; CLIProxyAPI ships Claude Code's full instructions). */
#define STATIC_INSTRUCTIONS                                                                        \
    "You are an interactive CLI tool that helps users with software engineering tasks. "           \
    "Use the instructions below and the tools available to you to assist the user.\n\n"            \
    "Be concise and direct. Follow the conventions of the code you work in, prefer editing "       \
    "existing files to creating new ones, and check facts with a tool rather than guessing."

#define FP_SALT "59cf53e54c78"
#define BETA_CLAUDE_CODE "claude-code-20250219"
#define BETA_INTERLEAVED "interleaved-thinking-2025-05-14"
#define BETA_1M "context-1m-2025-08-07"

/* ---- errors ---- */

__attribute__((format(printf, 5, 6))) static void
err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    memset(e, 0, sizeof *e);
    e->rc = rc;
    e->status = status;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    snprintf(e->type, sizeof e->type, "%s",
             status >= 500 ? "server_error" : "invalid_request_error");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* Fills @p e for a failure code met without a more precise message. */
static void err_generic(struct cp_tr_err *e, int rc)
{
    if (rc == CM_ERR_NOMEM)
        err_set(e, rc, 500, "", "out of memory");
    else if (rc == CM_ERR_INTERNAL)
        err_set(e, rc, 500, "", "no random source");
    else
        err_set(e, rc, 400, "", "invalid request");
}

/* ---- small helpers ---- */

static cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
}

/* @p v if it is an array, else NULL (for cJSON_ArrayForEach over optional members). */
static cJSON *array_or_null(cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

static const char *member_str(const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool str_eq(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

static bool starts_with(const char *s, const char *pfx)
{
    return s && strncmp(s, pfx, strlen(pfx)) == 0;
}

static bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 16 bytes as a UUID string with version nibble @p version and the RFC 4122 variant. */
static void fmt_uuid(unsigned char b[16], int version, char out[37])
{
    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* {"type":"ephemeral"} or {"type":"text","text":t}: new item or NULL (OOM). */
static cJSON *type_obj(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o && cm_json_set_string(o, "type", type)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *text_block(const char *text)
{
    cJSON *o = type_obj("text");
    if (o && cm_json_set_string(o, "text", text)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int cp_claude_is_oauth_token(const char *tok)
{
    return tok && strstr(tok, "sk-ant-oat") != NULL;
}

/* ---- model table, suffix and thinking (spec 5.1) ---- */

int64_t cp_claude_max_tokens(const char *base_model)
{
    /* first matching prefix wins: longer prefixes first */
    static const struct {
        const char *prefix;
        int64_t max;
    } table[] = {
        {"claude-haiku-4-5", 64000}, {"claude-sonnet-4-6", 64000}, {"claude-sonnet-4-5", 64000},
        {"claude-sonnet-4-", 64000}, {"claude-opus-4-6", 64000},   {"claude-opus-4-5", 64000},
        {"claude-opus-4-1", 32000},  {"claude-opus-4-", 32000},    {"claude-3-7-sonnet", 64000},
        {"claude-3-5-haiku", 8192},
    };
    for (size_t i = 0; base_model && i < sizeof table / sizeof table[0]; i++)
        if (starts_with(base_model, table[i].prefix))
            return table[i].max;
    return CP_CLAUDE_MAX_TOKENS_FALLBACK;
}

/* Models that take thinking.type "adaptive" + output_config.effort (4.6 and later). */
static bool is_adaptive(const char *m)
{
    static const char *const pfx[] = {"claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7",
                                      "claude-opus-4-8", "claude-opus-5",     "claude-sonnet-5",
                                      "claude-fable-5"};
    for (size_t i = 0; i < sizeof pfx / sizeof pfx[0]; i++)
        if (starts_with(m, pfx[i]))
            return true;
    return false;
}

/* The budget a suffix names: -1 auto, 0 none, > 0 tokens; false if not a known one. */
static bool suffix_budget(const char *v, size_t n, int64_t *budget)
{
    static const struct {
        const char *word;
        int64_t budget;
    } levels[] = {{"none", 0},      {"auto", -1},     {"-1", -1},
                  {"minimal", 512}, {"low", 1024},    {"medium", 8192},
                  {"high", 24576},  {"xhigh", 32768}, {"max", 128000}};
    int64_t b = 0;

    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strlen(levels[i].word) == n && memcmp(v, levels[i].word, n) == 0) {
            *budget = levels[i].budget;
            return true;
        }
    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        b = b * 10 + (v[i] - '0');
    }
    *budget = b;
    return true;
}

/* The output_config.effort of an adaptive model for a suffix budget (> 0 or -1). */
static const char *adaptive_effort(const char *model, int64_t budget)
{
    if (budget < 0)
        return "high"; /* auto */
    if (budget <= 1024)
        return "low"; /* minimal and low */
    if (budget <= 8192)
        return "medium";
    if (budget <= 24576)
        return "high";
    return starts_with(model, "claude-opus") ? "max" : "high";
}

/*
 * Strips a "(suffix)" from body.model (in place) and applies it. *@p suffix_budget_out
 * gets the enabled budget a suffix set (0 when none), fitted to max_tokens later.
 */
static int apply_model(cJSON *body, int64_t *suffix_budget_out, struct cp_tr_err *err)
{
    cJSON *m = member(body, "model"), *th = NULL;
    const char *open;
    size_t len;
    int64_t budget;
    int rc;

    *suffix_budget_out = 0;
    if (!cJSON_IsString(m) || !*m->valuestring) {
        err_set(err, CM_ERR_INVAL, 400, "model", "field 'model' must be a non-empty string");
        return CM_ERR_INVAL;
    }
    len = strlen(m->valuestring);
    if (m->valuestring[len - 1] != ')' || !(open = strrchr(m->valuestring, '(')))
        return CM_OK;
    if (open == m->valuestring ||
        !suffix_budget(open + 1, (size_t)(m->valuestring + len - 1 - (open + 1)), &budget)) {
        err_set(err, CM_ERR_INVAL, 400, "model",
                "field 'model' has an unknown thinking suffix (use a level or a token budget)");
        return CM_ERR_INVAL;
    }
    m->valuestring[open - m->valuestring] = '\0'; /* shorter: truncating in place is safe */
    if (budget == 0) {
        th = type_obj("disabled");
        if (is_adaptive(m->valuestring))
            cJSON_DeleteItemFromObjectCaseSensitive(member(body, "output_config"), "effort");
    } else if (is_adaptive(m->valuestring)) {
        cJSON *oc = member(body, "output_config");
        if (!cJSON_IsObject(oc)) {
            if ((rc = cm_json_set_item(body, "output_config", cJSON_CreateObject())))
                goto fail;
            oc = member(body, "output_config");
        }
        if ((rc = cm_json_set_string(oc, "effort", adaptive_effort(m->valuestring, budget))))
            goto fail;
        th = type_obj("adaptive");
    } else {
        budget = budget < 0 ? 8192 : budget < 1024 ? 1024 : budget > 128000 ? 128000 : budget;
        th = type_obj("enabled");
        if (th && cm_json_set_int64(th, "budget_tokens", budget)) {
            cJSON_Delete(th);
            th = NULL;
        }
        *suffix_budget_out = budget;
    }
    if ((rc = cm_json_set_item(body, "thinking", th)) == CM_OK)
        return CM_OK;
fail:
    err_generic(err, rc);
    return rc;
}

/* ---- betas ---- */

/* Appends one beta (@p n bytes, trimmed here) to the comma list @p b unless present. */
static int beta_add(struct cm_buf *b, const char *s, size_t n)
{
    const char *p;
    int rc;

    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!n)
        return CM_OK;
    for (p = b->data; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, s, n) == 0)
            return CM_OK;
        p = e ? e + 1 : p + l;
    }
    if (b->len && (rc = cm_buf_append(b, ",", 1)))
        return rc;
    return cm_buf_append(b, s, n);
}

/* Appends every entry of the comma-separated @p list; @p skip_oauth drops oauth-... */
static int beta_add_list(struct cm_buf *b, const char *list, bool skip_oauth)
{
    int rc;
    while (list && *list) {
        const char *e = strchr(list, ',');
        size_t n = e ? (size_t)(e - list) : strlen(list);
        bool oauth =
            n == strlen(CP_CLAUDE_OAUTH_BETA) && memcmp(list, CP_CLAUDE_OAUTH_BETA, n) == 0;
        if (!(skip_oauth && oauth) && (rc = beta_add(b, list, n)))
            return rc;
        list = e ? e + 1 : list + n;
    }
    return CM_OK;
}

static int build_betas(cJSON *body, const struct cp_claude_prep *p, char **out,
                       struct cp_tr_err *err)
{
    struct cm_buf b;
    cJSON *bb = member(body, "betas"), *it;
    size_t i = 0;
    int rc;

    cm_buf_init(&b, CP_CLAUDE_BETAS_MAX);
    if (bb && !cJSON_IsNull(bb) && !cJSON_IsArray(bb) && !cJSON_IsString(bb)) {
        err_set(err, CM_ERR_INVAL, 400, "betas", "field 'betas' must be an array of strings");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (p->client_beta && *p->client_beta)
        rc = beta_add_list(&b, p->client_beta, false);
    else
        rc = beta_add_list(&b, CP_CLAUDE_DEFAULT_BETAS, !p->oauth);
    if (rc || (rc = beta_add_list(&b, BETA_CLAUDE_CODE, false)) ||
        (p->oauth && (rc = beta_add_list(&b, CP_CLAUDE_OAUTH_BETA, false))) ||
        (rc = beta_add_list(&b, BETA_INTERLEAVED, false)) ||
        (p->want_1m && (rc = beta_add_list(&b, BETA_1M, false))))
        goto fail;
    if (cJSON_IsString(bb) && (rc = beta_add_list(&b, bb->valuestring, false)))
        goto fail;
    cJSON_ArrayForEach(it, array_or_null(bb))
    {
        if (!cJSON_IsString(it)) {
            char f[32];
            snprintf(f, sizeof f, "betas[%zu]", i);
            err_set(err, CM_ERR_INVAL, 400, f, "field '%s' must be a string", f);
            rc = CM_ERR_INVAL;
            goto out;
        }
        if ((rc = beta_add_list(&b, it->valuestring, false)))
            goto fail;
        i++;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "betas");
    if (!(*out = cm_buf_release(&b, NULL))) {
        rc = CM_ERR_NOMEM;
        goto fail;
    }
    return CM_OK;
fail:
    if (rc == CM_ERR_LIMIT)
        err_set(err, rc, 400, "betas", "the Anthropic-Beta list is longer than %d bytes",
                CP_CLAUDE_BETAS_MAX);
    else
        err_generic(err, rc);
out:
    cm_buf_cleanup(&b);
    return rc;
}

/* ---- max_tokens and thinking ---- */

static int apply_limits(cJSON *body, const struct cp_claude_prep *p, int64_t suffix_budget,
                        struct cp_tr_err *err)
{
    cJSON *mt = member(body, "max_tokens"), *tc = member(body, "tool_choice");
    const char *tct = member_str(tc, "type");
    int64_t max;
    int rc;

    if (!mt || cJSON_IsNull(mt)) {
        max = p->max_tokens_default > 0 ? p->max_tokens_default
                                        : cp_claude_max_tokens(member_str(body, "model"));
        if ((rc = cm_json_set_int64(body, "max_tokens", max))) {
            err_generic(err, rc);
            return rc;
        }
    } else if (cm_json_to_int64(mt, 1, CM_JSON_INT_MAX, &max)) {
        err_set(err, CM_ERR_INVAL, 400, "max_tokens",
                "field 'max_tokens' must be a positive integer");
        return CM_ERR_INVAL;
    }
    if (suffix_budget > 0 && suffix_budget >= max) {
        cJSON *th = member(body, "thinking");
        if (max <= 1024) { /* no room for the minimum budget: no thinking */
            cJSON_DeleteItemFromObjectCaseSensitive(th, "budget_tokens");
            rc = cm_json_set_string(th, "type", "disabled");
        } else {
            rc = cm_json_set_int64(th, "budget_tokens", max - 1);
        }
        if (rc) {
            err_generic(err, rc);
            return rc;
        }
    }
    if (str_eq(tct, "any") || str_eq(tct, "tool"))
        cJSON_DeleteItemFromObjectCaseSensitive(body, "thinking");
    return CM_OK;
}

/* ---- cloaking ---- */

/* Appends the bytes of rune @p k (0-based) of UTF-8 text @p s, or "0" when absent. Invalid
 * bytes count as one rune each and give U+FFFD, as Go's []rune() does. */
static int append_rune(struct cm_buf *b, const char *s, size_t k)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, idx = 0;

    while (s && u[i]) {
        size_t n = u[i] < 0x80             ? 1
                   : (u[i] & 0xe0) == 0xc0 ? 2
                   : (u[i] & 0xf0) == 0xe0 ? 3
                   : (u[i] & 0xf8) == 0xf0 ? 4
                                           : 0;
        bool ok = n > 0;
        for (size_t j = 1; ok && j < n; j++)
            ok = (u[i + j] & 0xc0) == 0x80;
        if (!ok)
            n = 1;
        if (idx == k)
            return ok ? cm_buf_append(b, s + i, n) : cm_buf_append_str(b, "\xef\xbf\xbd");
        i += n;
        idx++;
    }
    return cm_buf_append(b, "0", 1);
}

/* The billing header text for the first original system text @p first (may be NULL). */
static int billing_text(const char *first, char out[128])
{
    struct cm_buf b;
    char hex[CM_CRYPTO_SHA256_HEX_SIZE];
    int rc;

    cm_buf_init(&b, 256);
    if ((rc = cm_buf_append_str(&b, FP_SALT)) || (rc = append_rune(&b, first, 4)) ||
        (rc = append_rune(&b, first, 7)) || (rc = append_rune(&b, first, 20)) ||
        (rc = cm_buf_append_str(&b, CP_CLAUDE_CLI_VERSION)))
        goto out;
    cm_crypto_sha256_hex(b.data, b.len, hex);
    snprintf(out, 128,
             CP_CLAUDE_BILLING_PREFIX " cc_version=" CP_CLAUDE_CLI_VERSION
                                      ".%.3s; cc_entrypoint=cli; cch=00000;",
             hex);
out:
    cm_buf_cleanup(&b);
    return rc;
}

/* Collects the caller's system text (billing blocks skipped) into @p joined and the first
 * text into *@p first (borrowed from the tree). */
static int system_text(const cJSON *sys, struct cm_buf *joined, const char **first,
                       struct cp_tr_err *err)
{
    const cJSON *blk;
    int rc;

    *first = NULL;
    if (!sys || cJSON_IsNull(sys))
        return CM_OK;
    if (cJSON_IsString(sys)) {
        *first = sys->valuestring;
        if ((rc = cm_buf_append_str(joined, sys->valuestring)))
            err_generic(err, rc);
        return rc;
    }
    if (!cJSON_IsArray(sys)) {
        err_set(err, CM_ERR_INVAL, 400, "system",
                "field 'system' must be a string or an array of blocks");
        return CM_ERR_INVAL;
    }
    cJSON_ArrayForEach(blk, sys)
    {
        const char *t = member_str(blk, "text");
        if (!t || !*t || starts_with(t, CP_CLAUDE_BILLING_PREFIX))
            continue;
        if (!*first)
            *first = t;
        if ((joined->len && (rc = cm_buf_append_str(joined, "\n\n"))) ||
            (rc = cm_buf_append_str(joined, t))) {
            err_generic(err, rc);
            return rc;
        }
    }
    return CM_OK;
}

/* Puts @p text as the leading text block of the first user message (one is created at
 * the start when there is none). */
static int move_to_user(cJSON *body, const char *text, struct cp_tr_err *err)
{
    cJSON *msgs = member(body, "messages"), *m, *target = NULL, *blk = NULL, *arr = NULL;
    int rc = CM_ERR_NOMEM;

    if (!cJSON_IsArray(msgs)) {
        err_set(err, CM_ERR_INVAL, 400, "messages", "field 'messages' must be an array");
        return CM_ERR_INVAL;
    }
    cJSON_ArrayForEach(m, msgs)
    {
        if (str_eq(member_str(m, "role"), "user")) {
            target = m;
            break;
        }
    }
    if (!(blk = text_block(text)))
        goto out;
    if (!target) {
        cJSON *nm = cJSON_CreateObject();
        if (!nm)
            goto out;
        if ((rc = cm_json_set_string(nm, "role", "user")) ||
            (rc = cm_json_set_item(nm, "content", cJSON_CreateArray())) ||
            !cJSON_InsertItemInArray(msgs, 0, nm)) {
            cJSON_Delete(nm);
            rc = rc ? rc : CM_ERR_NOMEM;
            goto out;
        }
        target = nm;
    }
    m = member(target, "content");
    if (cJSON_IsArray(m)) {
        if (!cJSON_InsertItemInArray(m, 0, blk))
            goto out;
        blk = NULL;
        rc = CM_OK;
        goto out;
    }
    if (!(arr = cJSON_CreateArray()))
        goto out;
    if ((rc = cm_json_adopt(arr, NULL, &blk)))
        goto out;
    if (cJSON_IsString(m) && *m->valuestring &&
        (rc = cm_json_set_item(arr, NULL, text_block(m->valuestring))))
        goto out;
    rc = cm_json_adopt(target, "content", &arr);
out:
    cJSON_Delete(blk);
    cJSON_Delete(arr);
    if (rc)
        err_generic(err, rc);
    return rc;
}

/* ^user_[a-f0-9]{64}_account_<uuid>_session_<uuid>$ (uuid: 8-4-4-4-12 lowercase hex). */
static bool uuid_at(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex_lower(s[i]))
            return false;
    }
    return true;
}

static bool user_id_ok(const char *s)
{
    static const char acc[] = "_account_", ses[] = "_session_";
    if (!s || strlen(s) != 5 + 64 + 9 + 36 + 9 + 36 || strncmp(s, "user_", 5) != 0)
        return false;
    for (int i = 5; i < 69; i++)
        if (!is_hex_lower(s[i]))
            return false;
    return memcmp(s + 69, acc, 9) == 0 && uuid_at(s + 78) && memcmp(s + 114, ses, 9) == 0 &&
           uuid_at(s + 123);
}

static int fill_random(const struct cp_claude_prep *p, void *buf, size_t n)
{
    int rc = p->rng ? p->rng(p->rng_ud, buf, n) : cm_crypto_random_bytes(buf, n);
    return rc ? CM_ERR_INTERNAL : CM_OK;
}

static int set_user_id(cJSON *body, const struct cp_claude_prep *p, struct cp_tr_err *err)
{
    cJSON *md = member(body, "metadata");
    unsigned char r[64];
    char hex[65], acc[37], ses[37], id[160];
    int rc;

    if (user_id_ok(member_str(md, "user_id")))
        return CM_OK;
    if ((rc = fill_random(p, r, sizeof r)))
        goto out;
    cm_crypto_hex_encode(r, 32, hex, sizeof hex);
    fmt_uuid(r + 32, 4, acc);
    fmt_uuid(r + 48, 4, ses);
    snprintf(id, sizeof id, "user_%s_account_%s_session_%s", hex, acc, ses);
    if (!cJSON_IsObject(md)) {
        if ((rc = cm_json_set_item(body, "metadata", cJSON_CreateObject())))
            goto out;
        md = member(body, "metadata");
    }
    rc = cm_json_set_string(md, "user_id", id);
out:
    if (rc)
        err_generic(err, rc);
    return rc;
}

static int cloak(cJSON *body, const struct cp_claude_prep *p, struct cp_tr_err *err)
{
    struct cm_buf joined, rem;
    const char *first;
    char billing[128];
    cJSON *sys = NULL;
    int rc;

    cm_buf_init(&joined, SIZE_MAX / 2);
    cm_buf_init(&rem, SIZE_MAX / 2);
    if ((rc = system_text(member(body, "system"), &joined, &first, err)))
        goto out;
    if ((rc = billing_text(first, billing)))
        goto fail;
    if (joined.len && ((rc = cm_buf_append_str(&rem, "<system-reminder>\n")) ||
                       (rc = cm_buf_append(&rem, joined.data, joined.len)) ||
                       (rc = cm_buf_append_str(&rem, "\n</system-reminder>"))))
        goto fail;
    rc = CM_ERR_NOMEM;
    if (!(sys = cJSON_CreateArray()) || (rc = cm_json_set_item(sys, NULL, text_block(billing))) ||
        (rc = cm_json_set_item(sys, NULL, text_block(CP_CLAUDE_AGENT_LINE))) ||
        (rc = cm_json_set_item(sys, NULL, text_block(STATIC_INSTRUCTIONS))))
        goto fail;
    /* move the text before the system blocks it points into are replaced */
    if (rem.len && (rc = move_to_user(body, rem.data, err)))
        goto out;
    if ((rc = cm_json_adopt(body, "system", &sys)))
        goto fail;
    rc = set_user_id(body, p, err);
    goto out;
fail:
    err_generic(err, rc);
out:
    cJSON_Delete(sys);
    cm_buf_cleanup(&joined);
    cm_buf_cleanup(&rem);
    return rc;
}

static bool should_cloak(const cJSON *body, const struct cp_claude_prep *p)
{
    if (starts_with(member_str(body, "model"), "claude-3-5-haiku"))
        return false;
    if (p->cloak == CP_CLAUDE_CLOAK_ALWAYS)
        return true;
    if (p->cloak == CP_CLAUDE_CLOAK_NEVER)
        return false;
    return !starts_with(p->client_ua, "claude-cli");
}

/* ---- cache_control ---- */

struct cc_walk {
    int mode;     /* 0 count, 1 drop the first `drop`, 2 TTL order */
    size_t count; /* blocks with cache_control seen */
    size_t drop;
    bool seen_short; /* a breakpoint without a 1h TTL was met */
};

static void cc_visit(cJSON *blk, struct cc_walk *w)
{
    cJSON *cc = member(blk, "cache_control");
    if (!cc)
        return;
    w->count++;
    if (w->mode == 1 && w->count <= w->drop) {
        cJSON_DeleteItemFromObjectCaseSensitive(blk, "cache_control");
    } else if (w->mode == 2) {
        if (!str_eq(member_str(cc, "ttl"), "1h"))
            w->seen_short = true;
        else if (w->seen_short)
            cJSON_DeleteItemFromObjectCaseSensitive(cc, "ttl");
    }
}

/* Visits tools, system blocks and message content blocks in prompt order. */
static void cc_walk(cJSON *body, struct cc_walk *w)
{
    cJSON *it, *m;
    cJSON *tools = member(body, "tools"), *sys = member(body, "system");
    cJSON *msgs = member(body, "messages");

    w->count = 0;
    cJSON_ArrayForEach(it, array_or_null(tools)) cc_visit(it, w);
    cJSON_ArrayForEach(it, array_or_null(sys)) cc_visit(it, w);
    cJSON_ArrayForEach(m, array_or_null(msgs))
    {
        cJSON *c = member(m, "content");
        cJSON_ArrayForEach(it, array_or_null(c)) cc_visit(it, w);
    }
}

/* The last block of @p parent[@p key] (a string becomes one text block), or NULL when
 * there is none fit for a breakpoint. *@p blk is set; returns CM_OK or CM_ERR_NOMEM. */
static int last_block(cJSON *parent, const char *key, cJSON **blk)
{
    cJSON *v = member(parent, key), *arr, *last;
    const char *type;
    int rc;

    *blk = NULL;
    if (cJSON_IsString(v) && *v->valuestring) {
        if (!(arr = cJSON_CreateArray()))
            return CM_ERR_NOMEM;
        if ((rc = cm_json_set_item(arr, NULL, text_block(v->valuestring))) ||
            (rc = cm_json_adopt(parent, key, &arr))) {
            cJSON_Delete(arr);
            return rc;
        }
        v = member(parent, key);
    }
    if (!cJSON_IsArray(v) || !v->child)
        return CM_OK;
    last = v->child->prev; /* cJSON keeps the tail in the head's prev */
    type = member_str(last, "type");
    if (!cJSON_IsObject(last) || str_eq(type, "thinking") || str_eq(type, "redacted_thinking") ||
        (str_eq(type, "text") && !(member_str(last, "text") && *member_str(last, "text"))))
        return CM_OK;
    *blk = last;
    return CM_OK;
}

static int ephemeral(cJSON *blk)
{
    return blk ? cm_json_set_item(blk, "cache_control", type_obj("ephemeral")) : CM_OK;
}

static int apply_cache_control(cJSON *body, struct cp_tr_err *err)
{
    struct cc_walk w = {0};
    cJSON *tools = member(body, "tools"), *msgs = member(body, "messages"), *blk = NULL;
    int rc = CM_OK;

    cc_walk(body, &w);
    if (w.count == 0) {
        if (cJSON_IsArray(tools) && tools->child && cJSON_IsObject(tools->child->prev))
            rc = ephemeral(tools->child->prev);
        if (!rc && !(rc = last_block(body, "system", &blk)))
            rc = ephemeral(blk);
        if (!rc && cJSON_IsArray(msgs) && msgs->child && cJSON_IsObject(msgs->child->prev) &&
            !(rc = last_block(msgs->child->prev, "content", &blk)))
            rc = ephemeral(blk);
        if (rc)
            err_generic(err, rc);
        return rc;
    }
    if (w.count > CP_CLAUDE_MAX_CACHE_CONTROL) {
        w.mode = 1;
        w.drop = w.count - CP_CLAUDE_MAX_CACHE_CONTROL;
        cc_walk(body, &w);
    }
    w.mode = 2;
    cc_walk(body, &w);
    return CM_OK;
}

/* ---- printing and signing ---- */

/* Offset of the 5 hex digits of the first "cch=<5 lowercase hex>;" in @p s, or -1. */
static long find_cch(const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    while ((p = memmem(p, (size_t)(end - p), "cch=", 4)) != NULL) {
        if (end - p >= 10 && is_hex_lower(p[4]) && is_hex_lower(p[5]) && is_hex_lower(p[6]) &&
            is_hex_lower(p[7]) && is_hex_lower(p[8]) && p[9] == ';')
            return (long)(p + 4 - s);
        p += 4;
    }
    return -1;
}

/* system[0] when it is a billing block carrying a cch field, else NULL. */
static cJSON *billing_block(const cJSON *body)
{
    cJSON *sys = member(body, "system");
    const char *t;
    if (!cJSON_IsArray(sys) || !sys->child)
        return NULL;
    t = member_str(sys->child, "text");
    if (!starts_with(t, CP_CLAUDE_BILLING_PREFIX) || find_cch(t, strlen(t)) < 0)
        return NULL;
    return sys->child;
}

/* Zeroes the first cch field of @p s (@p n bytes) and signs the whole buffer. */
static void sign(char *s, size_t n)
{
    long at = find_cch(s, n);
    char hex[8];

    if (at < 0)
        return;
    memcpy(s + at, "00000", 5);
    snprintf(hex, sizeof hex, "%05x",
             (unsigned)(XXH64(s, n, CP_CLAUDE_CCH_SEED) & UINT64_C(0xFFFFF)));
    memcpy(s + at, hex, 5);
}

int cp_claude_prepare(cJSON *body, const struct cp_claude_prep *p, struct cp_claude_prepared *out,
                      struct cp_tr_err *err)
{
    struct cp_claude_prepared r = {0};
    cJSON *bill, *sys;
    int64_t suffix_budget = 0;
    int rc;

    if (!cJSON_IsObject(body) || !p || !out) {
        err_set(err, CM_ERR_INVAL, 400, "", "the request body must be a JSON object");
        return CM_ERR_INVAL;
    }
    if ((rc = apply_model(body, &suffix_budget, err)) ||
        (rc = build_betas(body, p, &r.betas, err)) ||
        (rc = apply_limits(body, p, suffix_budget, err)))
        goto out;
    if (should_cloak(body, p)) {
        if ((rc = cloak(body, p, err)))
            goto out;
        r.cloaked = 1;
    }
    if ((rc = apply_cache_control(body, err)))
        goto out;
    r.stream = p->from_claude ? !!p->client_stream : 1;
    if ((rc = cm_json_set_bool(body, "stream", r.stream)))
        goto fail;
    if ((sys = cJSON_DetachItemFromObjectCaseSensitive(body, "system")) != NULL)
        (void)cJSON_InsertItemInArray(body, 0, sys); /* no allocation; cannot fail here */
    if ((bill = billing_block(body)) != NULL && !r.cloaked &&
        (rc = set_user_id(body, p, err))) /* a signed body always has a valid user_id */
        goto out;
    if (bill) {
        char *t = member(bill, "text")->valuestring;
        memcpy(t + find_cch(t, strlen(t)), "00000", 5);
        r.signed_cch = 1;
    }
    if ((rc = cm_json_print(body, &r.body, &r.len)))
        goto fail;
    if (r.signed_cch)
        sign(r.body, r.len);
    *out = r;
    return CM_OK;
fail:
    err_generic(err, rc);
out:
    cp_claude_prepared_cleanup(&r);
    return rc;
}

void cp_claude_prepared_cleanup(struct cp_claude_prepared *p)
{
    if (!p)
        return;
    cm_free(p->body);
    cm_free(p->betas);
    memset(p, 0, sizeof *p);
}

/* ---- headers ---- */

/* true when @p url's host is api.anthropic.com. */
static bool anthropic_host(const char *url)
{
    const char *h = strstr(url, "://");
    size_t n;
    h = h ? h + 3 : url;
    n = strcspn(h, "/:?#");
    return n == 17 && strncasecmp(h, "api.anthropic.com", 17) == 0;
}

int cp_claude_build(const char *base_url, const struct cp_authstore_cred *c,
                    const struct cp_claude_hdrs *h, struct cp_upreq *out)
{
    struct cp_upreq r = {0};
    char auth[8192], sess[37], *base = NULL;
    bool api_key;
    size_t n;
    int rc = CM_ERR_NOMEM;

    if (!c || !c->access_token || !*c->access_token || !h)
        return CM_ERR_INVAL;
    if (!base_url || !*base_url)
        base_url = CP_CLAUDE_DEFAULT_BASE;
    for (n = strlen(base_url); n > 1 && base_url[n - 1] == '/'; n--)
        ;
    if (!(base = cm_strndup(base_url, n)) ||
        (rc = cp_upreq_url(&r, base, "/v1/messages?beta=true")))
        goto out;
    api_key = !cp_claude_is_oauth_token(c->access_token) && anthropic_host(base);
    if ((size_t)snprintf(auth, sizeof auth, "Bearer %s", c->access_token) >= sizeof auth) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    cp_claude_session_id(c->id, sess);
    if ((rc = cp_upreq_add(&r, "Content-Type", "application/json")) ||
        (rc = api_key ? cp_upreq_add(&r, "x-api-key", c->access_token)
                      : cp_upreq_add(&r, "Authorization", auth)) ||
        (rc = cp_upreq_add(&r, "Anthropic-Version",
                           h->client_version && *h->client_version ? h->client_version
                                                                   : CP_CLAUDE_API_VERSION)) ||
        (h->betas && *h->betas && (rc = cp_upreq_add(&r, "Anthropic-Beta", h->betas))) ||
        (api_key && (rc = cp_upreq_add(&r, "Anthropic-Dangerous-Direct-Browser-Access", "true"))) ||
        (rc = cp_upreq_add(&r, "X-App", "cli")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Retry-Count", "0")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Runtime", "node")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Lang", "js")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Timeout", "600")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Runtime-Version", "v24.3.0")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Package-Version", "0.74.0")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Os", "MacOS")) ||
        (rc = cp_upreq_add(&r, "X-Stainless-Arch", "arm64")) ||
        (rc = cp_upreq_add(&r, "X-Claude-Code-Session-Id", sess)) ||
        (h->request_id && *h->request_id && anthropic_host(base) &&
         (rc = cp_upreq_add(&r, "x-client-request-id", h->request_id))) ||
        (rc = cp_upreq_add(&r, "User-Agent",
                           starts_with(h->client_ua, "claude-cli") ? h->client_ua
                                                                   : CP_CLAUDE_DEFAULT_UA)) ||
        (rc = cp_upreq_add(&r, "Connection", "keep-alive")) ||
        (rc = cp_upreq_add(&r, "Accept", h->stream ? "text/event-stream" : "application/json")) ||
        (h->stream && (rc = cp_upreq_add(&r, "Accept-Encoding", "identity"))))
        goto out;
    for (size_t i = 0; c->af && i < c->af->n_headers; i++)
        if ((rc = cp_upreq_set(&r, c->af->header_names[i], c->af->header_values[i])))
            goto out;
    if (h->stream && ((rc = cp_upreq_set(&r, "Accept", "text/event-stream")) ||
                      (rc = cp_upreq_set(&r, "Accept-Encoding", "identity"))))
        goto out;
    *out = r;
    memset(&r, 0, sizeof r);
    rc = CM_OK;
out:
    cm_crypto_memzero(auth, sizeof auth);
    cm_free(base);
    cp_upreq_cleanup(&r);
    return rc;
}

void cp_claude_session_id(const char *cred_id, char out[37])
{
    static const char pfx[] = "cli-proxy-api:claude:session:";
    unsigned char h[CM_CRYPTO_SHA256_LEN];
    char buf[sizeof pfx + CP_SCHED_MAX_ID_LEN]; /* ids are at most CP_SCHED_MAX_ID_LEN */
    size_t n = cred_id ? strnlen(cred_id, CP_SCHED_MAX_ID_LEN) : 0;

    memcpy(buf, pfx, sizeof pfx - 1);
    if (n)
        memcpy(buf + sizeof pfx - 1, cred_id, n);
    cm_crypto_sha256(buf, sizeof pfx - 1 + n, h);
    fmt_uuid(h, 4, out);
}

/* ---- errors ---- */

/* Seconds until the reset time @p v (unix seconds or RFC 3339) after @p now_s, or 0. */
static int64_t reset_in(const char *v, int64_t now_s)
{
    char *end;
    long long t;
    int64_t ts;

    if (!v)
        return 0;
    while (*v == ' ')
        v++;
    if (*v >= '0' && *v <= '9' && strlen(v) < 20 && strchr(v, '-') == NULL) {
        t = strtoll(v, &end, 10);
        if (*end == '.') /* a fraction: round up */
            t += strtoll(end + 1, &end, 10) > 0;
        if (end[strspn(end, " \t")])
            return 0;
        ts = (int64_t)t;
    } else if (cp_authfile_parse_time(v, &ts)) {
        return 0;
    }
    return ts > now_s ? ts - now_s : 0;
}

void cp_claude_outcome(long status, const struct cm_httpc_head *head, const char *body, size_t len,
                       int64_t now_s, struct cp_sched_outcome *o)
{
    static const char *const windows[] = {"5h-", "7d-", "7d_oi-", ""};
    cJSON *root = NULL;
    const char *type = NULL;
    int64_t best = 0;

    memset(o, 0, sizeof *o);
    o->status = (int)status;
    if (body && len && cm_json_parse(body, len, NULL, &root, NULL) == CM_OK)
        type = member_str(member(root, "error"), "type");
    if (status == 529 || (status >= 500 && str_eq(type, "overloaded_error")))
        o->status = 503;
    if ((status == 400 && str_eq(type, "invalid_request_error")) || status == 413 || status == 422)
        o->request_scoped = 1;
    if (status == 429 && head) {
        const char *ra = cm_httpc_head_get(head, "retry-after");
        if (ra && *ra) {
            char *end;
            long long s = strtoll(ra, &end, 10);
            if (*end == '\0' && s > 0)
                best = (int64_t)s;
        }
        for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
            char sn[64], rn[64];
            const char *st;
            int64_t in;
            snprintf(sn, sizeof sn, "anthropic-ratelimit-unified-%sstatus", windows[i]);
            snprintf(rn, sizeof rn, "anthropic-ratelimit-unified-%sreset", windows[i]);
            st = cm_httpc_head_get(head, sn);
            if (st &&
                !(strncasecmp(st, "rejected", 8) == 0 && st[8 + strspn(st + 8, " \t")] == '\0'))
                continue;
            if ((in = reset_in(cm_httpc_head_get(head, rn), now_s)) > best)
                best = in;
        }
        if (best > 0) {
            o->has_hint = 1;
            o->retry_after_s = best;
        }
    }
    cJSON_Delete(root);
}

int cp_claude_error_status(const char *type)
{
    static const struct {
        const char *type;
        int status;
    } map[] = {{"invalid_request_error", 400}, {"authentication_error", 401},
               {"billing_error", 402},         {"permission_error", 403},
               {"not_found_error", 404},       {"request_too_large", 413},
               {"rate_limit_error", 429},      {"api_error", 500},
               {"overloaded_error", 529}};
    for (size_t i = 0; type && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(type, map[i].type) == 0)
            return map[i].status;
    return 502;
}

/* ---- usage ---- */

int cp_claude_usage_feed(struct cp_claude_usage *acc, const cJSON *ev)
{
    static const char *const names[] = {"input_tokens", "output_tokens", "cache_read_input_tokens",
                                        "cache_creation_input_tokens"};
    int64_t *dst[4];
    const char *type = member_str(ev, "type");
    const cJSON *u = NULL;

    if (!acc)
        return 0;
    if (str_eq(type, "message_start"))
        u = member(member(ev, "message"), "usage");
    else if (str_eq(type, "message_delta") || str_eq(type, "message"))
        u = member(ev, "usage");
    if (!cJSON_IsObject(u))
        return 0;
    dst[0] = &acc->input;
    dst[1] = &acc->output;
    dst[2] = &acc->cache_read;
    dst[3] = &acc->cache_creation;
    for (size_t i = 0; i < 4; i++) {
        int64_t v;
        const cJSON *it = member(u, names[i]);
        if (it && cm_json_to_int64(it, 0, CM_JSON_INT_MAX, &v) == CM_OK)
            *dst[i] = v;
    }
    return 1;
}

void cp_claude_usage_result(const struct cp_claude_usage *acc, struct cp_tr_usage *u)
{
    memset(u, 0, sizeof *u);
    u->input = acc->input + acc->cache_read + acc->cache_creation;
    u->output = acc->output;
    u->cached = acc->cache_read ? acc->cache_read : acc->cache_creation;
    u->total = u->input + u->output;
}
