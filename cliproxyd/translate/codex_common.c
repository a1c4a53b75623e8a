/* SPDX-License-Identifier: MIT */
/*
 * codex_common.c - what the Codex translators share (see the header): error filling, tool
 * names, the effort table, upstream event parsing and the non-stream collector. Moved here
 * from chat_codex.c when messages_codex.c needed the same logic; behaviour unchanged.
 */
#include "translate/codex_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool str_eq(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

static bool slice_eq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return p && n == l && memcmp(p, lit, l) == 0;
}

/* ---- errors ---- */

void cp_tr_codex_err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field,
                         const char *type, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    memset(e, 0, sizeof(*e));
    e->rc = rc;
    e->status = status;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    snprintf(e->type, sizeof(e->type), "%s", type ? type : "");
    snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

void cp_tr_codex_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je)
{
    if (rc == CM_ERR_NOMEM) {
        cp_tr_codex_err_set(e, rc, 500, "", "server_error", "", "out of memory");
        return;
    }
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INVAL; /* a missing required field is a bad request to our callers */
    cp_tr_codex_err_set(e, rc, 400, je ? je->field : "", "invalid_request_error", "", "%s",
                        je && je->msg[0] ? je->msg : "invalid request");
}

void cp_tr_codex_early_eof_error(struct cp_tr_err *e)
{
    cp_tr_codex_err_set(e, CM_ERR_TIMEOUT, 408, "", "timeout_error", "request_timeout", "%s",
                        CP_TR_CODEX_EARLY_EOF_MSG);
}

static void malformed_error(struct cp_tr_err *e, const char *what)
{
    cp_tr_codex_err_set(e, CM_ERR_UPSTREAM, 502, "", "server_error", "bad_upstream_event",
                        "upstream sent a malformed event: %s", what);
}

/* ---- tool names ---- */

/* Length of the longest prefix of @p s within @p max bytes that does not split a UTF-8 char. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n;

    if (len <= max)
        return len;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
        n--;
    return n;
}

int cp_tr_codex_tool_name(const char *name, char *out, size_t out_size)
{
    const char *src;
    size_t len, n;

    if (!name || !out || out_size < CP_TR_CODEX_NAME_MAX + 1)
        return CM_ERR_INVAL;
    len = strlen(name);
    if (len <= CP_TR_CODEX_NAME_MAX) {
        memcpy(out, name, len + 1);
        return CM_OK;
    }
    if (strncmp(name, "mcp__", 5) == 0) {
        const char *last = NULL, *p = name + 5;
        const char *hit;
        while ((hit = strstr(p, "__")) != NULL) {
            last = hit;
            p = hit + 2;
        }
        if (last && last[2]) {
            src = last + 2;
            n = utf8_cut(src, strlen(src), CP_TR_CODEX_NAME_MAX - 5);
            memcpy(out, "mcp__", 5);
            memcpy(out + 5, src, n);
            out[5 + n] = '\0';
            return CM_OK;
        }
    }
    n = utf8_cut(name, len, CP_TR_CODEX_NAME_MAX);
    memcpy(out, name, n);
    out[n] = '\0';
    return CM_OK;
}

struct cp_tr_codex_name {
    char *orig;
    char shrt[CP_TR_CODEX_NAME_MAX + 1];
};

struct cp_tr_codex_names {
    struct cp_tr_codex_name *v;
    size_t n, cap;
};

void cp_tr_codex_names_free(struct cp_tr_codex_names *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->n; i++)
        cm_free(m->v[i].orig);
    cm_free(m->v);
    cm_free(m);
}

const char *cp_tr_codex_names_short(const struct cp_tr_codex_names *m, const char *orig)
{
    size_t i;

    for (i = 0; m && orig && i < m->n; i++)
        if (strcmp(m->v[i].orig, orig) == 0)
            return m->v[i].shrt;
    return NULL;
}

const char *cp_tr_codex_names_orig(const struct cp_tr_codex_names *m, const char *shrt)
{
    size_t i;

    for (i = 0; m && shrt && i < m->n; i++)
        if (strcmp(m->v[i].shrt, shrt) == 0)
            return m->v[i].orig;
    return shrt;
}

static bool names_taken(const struct cp_tr_codex_names *m, const char *shrt)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        if (strcmp(m->v[i].shrt, shrt) == 0)
            return true;
    return false;
}

int cp_tr_codex_names_add(struct cp_tr_codex_names **mp, const char *orig)
{
    struct cp_tr_codex_names *m;
    struct cp_tr_codex_name *e;
    char base[CP_TR_CODEX_NAME_MAX + 1];

    if (!mp || !orig)
        return CM_ERR_INVAL;
    if (!*mp && !(*mp = cm_calloc(1, sizeof(**mp))))
        return CM_ERR_NOMEM;
    m = *mp;
    if (cp_tr_codex_names_short(m, orig))
        return CM_OK; /* a repeated tool: same short name */
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        struct cp_tr_codex_name *v = cm_realloc(m->v, cap * sizeof(*v));
        if (!v)
            return CM_ERR_NOMEM;
        m->v = v;
        m->cap = cap;
    }
    e = &m->v[m->n];
    (void)cp_tr_codex_tool_name(orig, base, sizeof(base));
    memcpy(e->shrt, base, sizeof(base));
    for (unsigned k = 1; names_taken(m, e->shrt); k++) {
        char tail[16];
        size_t tl = (size_t)snprintf(tail, sizeof(tail), "_%u", k);
        size_t bl = utf8_cut(base, strlen(base), CP_TR_CODEX_NAME_MAX - tl);
        memcpy(e->shrt, base, bl);
        memcpy(e->shrt + bl, tail, tl + 1);
    }
    if (!(e->orig = cm_strdup(orig)))
        return CM_ERR_NOMEM;
    m->n++;
    return CM_OK;
}

void cp_tr_codex_names_upstream(const struct cp_tr_codex_names *m, const char *name,
                                char out[CP_TR_CODEX_NAME_MAX + 1])
{
    const char *s = cp_tr_codex_names_short(m, name);

    if (s)
        memcpy(out, s, strlen(s) + 1);
    else
        (void)cp_tr_codex_tool_name(name, out, CP_TR_CODEX_NAME_MAX + 1);
}

/* ---- 5.1: model suffix and reasoning effort ---- */

const char *cp_tr_codex_effort_for_budget(int64_t budget)
{
    if (budget < 0)
        return "medium"; /* dynamic: Codex has no such level, the default */
    if (budget == 0)
        return "none";
    if (budget <= 512)
        return "minimal";
    if (budget <= 1024)
        return "low";
    if (budget <= 8192)
        return "medium";
    if (budget <= 24576)
        return "high";
    return "xhigh";
}

const char *cp_tr_codex_effort(const char *v, size_t n)
{
    static const char *const levels[] = {"none", "minimal", "low", "medium", "high", "xhigh"};
    int64_t budget = 0;
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (slice_eq(v, n, levels[i]))
            return levels[i];
    if (slice_eq(v, n, "max"))
        return "xhigh"; /* Codex's top level */
    if (slice_eq(v, n, "auto") || slice_eq(v, n, "-1"))
        return "medium"; /* Codex has no dynamic level: the default */
    if (!v || n == 0 || n > 12)
        return NULL;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return NULL;
        budget = budget * 10 + (v[i] - '0');
    }
    return cp_tr_codex_effort_for_budget(budget);
}

/* Declared in translate.h (shared by the chat, responses and messages translators). */
int cp_tr_codex_split_model(const char *model, char **base, const char **effort,
                            struct cm_json_err *je)
{
    size_t len = strlen(model);
    const char *open;
    char *b;

    *effort = NULL;
    if (len && model[len - 1] == ')' && (open = strrchr(model, '(')) != NULL) {
        size_t blen = (size_t)(open - model);
        const char *inner = open + 1;
        size_t ilen = len - blen - 2;
        if (!blen) {
            cm_json_err_set(je, CM_ERR_INVAL, "model", "must name a model before '('");
            return CM_ERR_INVAL;
        }
        if (!(*effort = cp_tr_codex_effort(inner, ilen))) {
            cm_json_err_set(je, CM_ERR_INVAL, "model",
                            "has an unknown reasoning suffix (use a level or a token budget)");
            return CM_ERR_INVAL;
        }
        len = blen;
    }
    if (!len) {
        cm_json_err_set(je, CM_ERR_INVAL, "model", "must not be empty");
        return CM_ERR_INVAL;
    }
    if (!(b = cm_strndup(model, len)))
        return CM_ERR_NOMEM;
    *base = b;
    return CM_OK;
}

/* ---- upstream events ---- */

const char *cp_tr_codex_str_member(const cJSON *o, const char *name, const char *def)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(s) ? s->valuestring : def;
}

static int64_t opt_count(const cJSON *obj, const char *name)
{
    int64_t v = 0;

    if (cm_json_opt_int64(obj, name, 0, CM_JSON_INT_MAX, 0, &v, NULL) != CM_OK)
        return 0;
    return v;
}

bool cp_tr_codex_parse_usage(const cJSON *resp, struct cp_tr_usage *u)
{
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(resp, "usage");

    if (!cJSON_IsObject(us))
        return false;
    u->input = opt_count(us, "input_tokens");
    u->output = opt_count(us, "output_tokens");
    u->total = opt_count(us, "total_tokens");
    if (!cJSON_GetObjectItemCaseSensitive(us, "total_tokens"))
        u->total = u->input + u->output;
    u->cached =
        opt_count(cJSON_GetObjectItemCaseSensitive(us, "input_tokens_details"), "cached_tokens");
    u->reasoning = opt_count(cJSON_GetObjectItemCaseSensitive(us, "output_tokens_details"),
                             "reasoning_tokens");
    return true;
}

/* Status for an upstream error object (3.1(e)). */
static unsigned upstream_status(const cJSON *e)
{
    static const struct {
        const char *name;
        unsigned status;
    } map[] = {
        {"invalid_request_error", 400},   {"cyber_policy", 400},
        {"authentication_error", 401},    {"invalid_api_key", 401},
        {"permission_error", 403},        {"not_found_error", 404},
        {"model_not_found", 404},         {"rate_limit_error", 429},
        {"rate_limit_exceeded", 429},     {"usage_limit_reached", 429},
        {"context_length_exceeded", 400},
    };
    const char *keys[] = {"status_code", "status"};
    const char *names[] = {"type", "code"};
    size_t i, k;

    for (k = 0; k < 2; k++) {
        int64_t v = 0;
        if (cm_json_opt_int64(e, keys[k], 100, 599, 0, &v, NULL) == CM_OK && v)
            return (unsigned)v;
    }
    for (k = 0; k < 2; k++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, names[k]);
        if (!cJSON_IsString(s))
            continue;
        for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (str_eq(s->valuestring, map[i].name))
                return map[i].status;
    }
    return 502;
}

static const char *type_for_status(unsigned status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
        return "timeout_error";
    case 429:
        return "rate_limit_error";
    default:
        return "server_error";
    }
}

void cp_tr_codex_upstream_error(const cJSON *ev, bool failed, struct cp_tr_err *e)
{
    const cJSON *eo = NULL, *t, *c, *m;
    unsigned status;

    if (failed)
        eo = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "response"),
                                              "error");
    else if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(ev, "error")))
        eo = cJSON_GetObjectItemCaseSensitive(ev, "error");
    else
        eo = ev;
    status = cJSON_IsObject(eo) ? upstream_status(eo) : 502;
    t = cJSON_GetObjectItemCaseSensitive(eo, "type");
    c = cJSON_GetObjectItemCaseSensitive(eo, "code");
    m = cJSON_GetObjectItemCaseSensitive(eo, "message");
    cp_tr_codex_err_set(e, CM_ERR_UPSTREAM, status, "",
                        cJSON_IsString(t) && !str_eq(t->valuestring, "error")
                            ? t->valuestring
                            : type_for_status(status),
                        cJSON_IsString(c) ? c->valuestring : "", "%s",
                        cJSON_IsString(m) && m->valuestring[0]
                            ? m->valuestring
                            : (failed ? "upstream response failed" : "upstream error"));
}

int cp_tr_codex_parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                            cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err)
{
    struct cm_json_parse_opts opts = {.max_depth = 128};
    cJSON *o = NULL;
    int rc;

    rc = cm_json_parse(data ? data : "", data_len, &opts, &o, NULL);
    if (rc == CM_ERR_NOMEM) {
        cp_tr_codex_err_set(err, rc, 500, "", "server_error", "", "out of memory");
        return rc;
    }
    if (rc || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        malformed_error(err, rc ? "data is not valid JSON" : "data is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    if (!type || !type_len || slice_eq(type, type_len, "message")) {
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "type");
        type = cJSON_IsString(dt) ? dt->valuestring : "";
        type_len = strlen(type);
    }
    *ev = o;
    *t = type;
    *tlen = type_len;
    return CM_OK;
}

/* ---- non-stream collection ---- */

struct agg_item {
    int64_t index;
    cJSON *item;
};

struct agg {
    struct agg_item *items; /* output_item.done items, in arrival order */
    size_t nitems;
    cJSON *final;    /* the terminal event's response (detached) */
    bool incomplete; /* it was response.incomplete */
    int64_t created; /* response.created_at seen */
    char *model;     /* response.model seen */
    struct cp_tr_err err;
    int rc;
};

static int agg_on_event(void *ud, const struct cm_sse_event *sev)
{
    struct agg *a = ud;
    cJSON *ev = NULL;
    const char *t = NULL;
    size_t tl = 0;
    int rc;

    if (slice_eq(sev->data, sev->data_len, "[DONE]"))
        return CM_OK;
    rc = cp_tr_codex_parse_event(sev->type, sev->type_len, sev->data, sev->data_len, &ev, &t, &tl,
                                 &a->err);
    if (rc) {
        a->rc = rc;
        return rc;
    }
    if (slice_eq(t, tl, "response.created") || slice_eq(t, tl, "response.in_progress")) {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
        const char *model = cp_tr_codex_str_member(resp, "model", NULL);
        (void)cm_json_opt_int64(resp, "created_at", 1, CM_JSON_INT_MAX, a->created, &a->created,
                                NULL);
        if (model && model[0]) {
            char *m = cm_strdup(model);
            if (!m) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
            cm_free(a->model);
            a->model = m;
        }
    } else if (slice_eq(t, tl, "response.output_item.done")) {
        cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(ev, "item");
        struct agg_item *v;
        int64_t oi = (int64_t)a->nitems;
        if (!cJSON_IsObject(item)) {
            cJSON_Delete(item);
            goto out;
        }
        (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, oi, &oi, NULL);
        if (a->nitems >= CP_TR_CODEX_MAX_ITEMS ||
            !(v = cm_realloc(a->items, (a->nitems + 1) * sizeof(*v)))) {
            cJSON_Delete(item);
            rc = a->nitems >= CP_TR_CODEX_MAX_ITEMS ? CM_ERR_LIMIT : CM_ERR_NOMEM;
            goto out;
        }
        a->items = v;
        v[a->nitems].index = oi;
        v[a->nitems].item = item;
        a->nitems++;
    } else if (slice_eq(t, tl, "response.completed") || slice_eq(t, tl, "response.incomplete")) {
        cJSON *resp = cJSON_DetachItemFromObjectCaseSensitive(ev, "response");
        if (!resp && !(resp = cJSON_CreateObject())) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        a->final = resp;
        a->incomplete = slice_eq(t, tl, "response.incomplete");
        rc = 1; /* stop: the rest is of no interest */
    } else if (slice_eq(t, tl, "response.failed") || slice_eq(t, tl, "error")) {
        cp_tr_codex_upstream_error(ev, slice_eq(t, tl, "response.failed"), &a->err);
        rc = CM_ERR_UPSTREAM;
    }
out:
    if (rc && rc != 1 && !a->rc)
        a->rc = rc;
    cJSON_Delete(ev);
    return rc;
}

/* response.output (or the collected items, sorted by output_index, when it is empty). */
static int agg_output(struct agg *a, cJSON **out)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(a->final, "output");
    size_t i, j;
    int rc;

    if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0) {
        *out = NULL; /* borrowed from final: use it in place */
        return CM_OK;
    }
    for (i = 1; i < a->nitems; i++) { /* insertion sort: stable, few items */
        struct agg_item x = a->items[i];
        for (j = i; j > 0 && a->items[j - 1].index > x.index; j--)
            a->items[j] = a->items[j - 1];
        a->items[j] = x;
    }
    if ((rc = cm_json_new_array(&arr)))
        return rc;
    for (i = 0; i < a->nitems; i++) {
        if ((rc = cm_json_set_item(arr, NULL, a->items[i].item))) {
            a->items[i].item = NULL;
            cJSON_Delete(arr);
            return rc;
        }
        a->items[i].item = NULL;
    }
    *out = arr;
    return CM_OK;
}

int cp_tr_codex_collect(const char *sse, size_t len, int64_t created,
                        struct cp_tr_codex_result *res, struct cp_tr_err *err)
{
    struct cm_sse_parser p;
    struct agg a;
    cJSON *rebuilt = NULL;
    size_t i;
    int rc;

    memset(&a, 0, sizeof(a));
    if (!res || (!sse && len)) {
        cp_tr_codex_err_set(err, CM_ERR_INVAL, 500, "", "server_error", "", "bad arguments");
        return CM_ERR_INVAL;
    }
    memset(res, 0, sizeof(*res));
    a.created = created;
    cm_sse_parser_init(&p, 0, agg_on_event, NULL, &a);
    rc = cm_sse_parser_feed(&p, sse, len, NULL);
    if (rc == CM_OK && !a.final)
        rc = cm_sse_parser_finish(&p, 0); /* an unterminated last event is a cut stream */
    cm_sse_parser_cleanup(&p);
    if (a.final) {
        rc = CM_OK;
    } else if (a.rc) {
        rc = a.rc;
        if (rc == CM_ERR_UPSTREAM) {
            if (err)
                *err = a.err;
            goto out;
        }
    } else if (rc == CM_OK) {
        cp_tr_codex_early_eof_error(err);
        rc = CM_ERR_TIMEOUT;
        goto out;
    }
    if (!rc && (rc = agg_output(&a, &rebuilt)) == CM_OK) {
        res->response = a.final;
        res->_rebuilt = rebuilt;
        res->output = rebuilt ? rebuilt : cJSON_GetObjectItemCaseSensitive(a.final, "output");
        res->incomplete = a.incomplete;
        res->created = a.created;
        res->model = a.model;
        a.final = NULL;
        a.model = NULL;
    }
    if (rc) {
        if (rc == CM_ERR_LIMIT)
            cp_tr_codex_err_set(err, rc, 502, "", "server_error", "bad_upstream_event",
                                "upstream sent an oversized event");
        else
            cp_tr_codex_err_set(err, rc, 500, "", "server_error", "", "%s", cm_err_str(rc));
    }
out:
    for (i = 0; i < a.nitems; i++)
        cJSON_Delete(a.items[i].item);
    cm_free(a.items);
    cm_free(a.model);
    cJSON_Delete(a.final);
    return rc;
}

void cp_tr_codex_result_cleanup(struct cp_tr_codex_result *res)
{
    if (!res)
        return;
    cJSON_Delete(res->response);
    cJSON_Delete(res->_rebuilt);
    cm_free(res->model);
    memset(res, 0, sizeof(*res));
}
