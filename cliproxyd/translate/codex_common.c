/* SPDX-License-Identifier: MIT */
/*
 * codex_common.c - what the Codex translators share (see the header): tool names, the
 * effort table, upstream usage and errors, the client-neutral half of the stream and the
 * non-stream collector. Moved here from chat_codex.c and messages_codex.c, which had the
 * same logic twice; behaviour unchanged.
 */
#include "translate/codex_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <stdio.h>
#include <string.h>

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

/*
 * Declares the client tool @p orig in *@p mp (created on first use): its Codex name is
 * cp_tr_codex_tool_name(@p orig), made unique with a "_<n>" tail; twice is a no-op. On
 * error *@p mp stays valid. CM_OK, CM_ERR_INVAL (NULL) or CM_ERR_NOMEM.
 */
static int names_add(struct cp_tr_codex_names **mp, const char *orig)
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

int cp_tr_codex_names_build(const cJSON *tools, const char *(*name_of)(const cJSON *tool),
                            struct cp_tr_codex_names **out)
{
    struct cp_tr_codex_names *m = NULL;
    const cJSON *t;
    int rc = CM_OK;

    if (!cJSON_IsArray(tools)) {
        *out = NULL;
        return CM_OK;
    }
    cJSON_ArrayForEach(t, tools)
    {
        const char *name = name_of(t);
        if (name && (rc = names_add(&m, name)))
            goto out;
    }
    *out = m;
    m = NULL;
out:
    cp_tr_codex_names_free(m);
    return rc;
}

int cp_tr_codex_tool_choice(cJSON *body, const struct cp_tr_codex_names *m, const char *name)
{
    char shrt[CP_TR_CODEX_NAME_MAX + 1];
    cJSON *o = NULL;
    int rc;

    cp_tr_codex_names_upstream(m, name, shrt);
    if ((rc = cp_tr_typed_new("function", &o)) || (rc = cm_json_set_string(o, "name", shrt))) {
        cJSON_Delete(o);
        return rc;
    }
    return cm_json_adopt(body, "tool_choice", &o);
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
        if (cp_tr_slice_eq(v, n, levels[i]))
            return levels[i];
    if (cp_tr_slice_eq(v, n, "max"))
        return "xhigh"; /* Codex's top level */
    if (cp_tr_slice_eq(v, n, "auto") || cp_tr_slice_eq(v, n, "-1"))
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

/* cp_tr_split_model() suffix check: *(const char **)@p ud = the effort @p v names. */
static bool effort_suffix(const char *v, size_t n, void *ud)
{
    const char **effort = ud;

    *effort = cp_tr_codex_effort(v, n);
    return *effort != NULL;
}

/* Declared in translate.h (shared by the chat, responses and messages translators). */
int cp_tr_codex_split_model(const char *model, char **base, const char **effort,
                            struct cm_json_err *je)
{
    *effort = NULL;
    return cp_tr_split_model(model, effort_suffix, effort, base, NULL, je);
}

/* ---- upstream events ---- */

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
            if (cp_tr_str_eq(s->valuestring, map[i].name))
                return map[i].status;
    }
    return 502;
}

/*
 * The error of a response.failed (@p failed true) or "error" event @p ev into @p e (rc
 * CM_ERR_UPSTREAM): status from error.status_code|status, else by type/code (3.1(e)),
 * default 502; OpenAI type (the upstream's, else by status), code and message.
 */
static void upstream_error(const cJSON *ev, bool failed, struct cp_tr_err *e)
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
    cp_tr_err_set(e, CM_ERR_UPSTREAM, status, "",
                  cJSON_IsString(t) && !cp_tr_str_eq(t->valuestring, "error")
                      ? t->valuestring
                      : cp_tr_type_for_status(status),
                  cJSON_IsString(c) ? c->valuestring : "", "%s",
                  cJSON_IsString(m) && m->valuestring[0]
                      ? m->valuestring
                      : (failed ? "upstream response failed" : "upstream error"));
}

/* ---- the stream, whatever the client format ---- */

struct cp_tr_codex_call *cp_tr_codex_call_find(struct cp_tr_codex_call *calls, size_t n,
                                               const cJSON *ev, size_t *index)
{
    const cJSON *iid = cJSON_GetObjectItemCaseSensitive(ev, "item_id");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    int64_t oi = -1;
    size_t i;

    if (!cJSON_IsString(iid))
        iid = cJSON_GetObjectItemCaseSensitive(item, "id");
    (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, -1, &oi, NULL);
    for (i = 0; i < n; i++) {
        struct cp_tr_codex_call *c = &calls[i];
        if ((cJSON_IsString(iid) && c->item_id && strcmp(c->item_id, iid->valuestring) == 0) ||
            (!cJSON_IsString(iid) && oi >= 0 && c->output_index == oi)) {
            *index = i;
            return c;
        }
    }
    return NULL;
}

int cp_tr_codex_call_add(struct cp_tr_codex_call **calls, size_t *n, size_t max, const cJSON *ev,
                         const cJSON *item, size_t *index)
{
    const cJSON *iid = cJSON_GetObjectItemCaseSensitive(item, "id");
    struct cp_tr_codex_call *v;
    int64_t oi = -1;

    if (*n >= max)
        return CM_ERR_LIMIT;
    if (!(v = cm_realloc(*calls, (*n + 1) * sizeof(*v))))
        return CM_ERR_NOMEM;
    *calls = v;
    (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, -1, &oi, NULL);
    memset(&v[*n], 0, sizeof(*v));
    v[*n].output_index = oi;
    if (cJSON_IsString(iid) && !(v[*n].item_id = cm_strdup(iid->valuestring)))
        return CM_ERR_NOMEM;
    *index = (*n)++;
    return CM_OK;
}

void cp_tr_codex_calls_free(struct cp_tr_codex_call *calls, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        cm_free(calls[i].item_id);
    cm_free(calls);
}

int cp_tr_codex_stream_event(const struct cp_tr_codex_stream_ops *ops, void *st, bool *done,
                             const char *type, size_t type_len, const char *data, size_t data_len,
                             struct cm_buf *out, struct cp_tr_err *err)
{
    struct cp_tr_err e;
    cJSON *ev = NULL;
    const char *t = NULL;
    size_t tl = 0;
    int rc;

    if (*done || cp_tr_slice_eq(data, data_len, "[DONE]"))
        return CM_OK;
    rc = cp_tr_parse_event(type, type_len, data, data_len, &ev, &t, &tl, &e);
    if (rc == CM_ERR_UPSTREAM) {
        *done = true;
        if ((rc = ops->emit_error(&e, out)) == CM_OK)
            rc = CM_ERR_UPSTREAM;
        if (err)
            *err = e;
        return rc;
    }
    if (rc) {
        if (err)
            *err = e;
        return rc;
    }
    if (cp_tr_slice_eq(t, tl, "response.failed") || cp_tr_slice_eq(t, tl, "error")) {
        *done = true;
        upstream_error(ev, cp_tr_slice_eq(t, tl, "response.failed"), &e);
        if ((rc = ops->emit_error(&e, out)) == CM_OK) {
            if (err)
                *err = e;
            rc = CM_ERR_UPSTREAM;
        }
    } else {
        rc = ops->dispatch(st, t, tl, ev, out);
    }
    if (rc && rc != CM_ERR_UPSTREAM)
        cp_tr_server_error(err, rc, cm_err_str(rc));
    cJSON_Delete(ev);
    return rc;
}

int cp_tr_codex_stream_finish(const struct cp_tr_codex_stream_ops *ops, bool *done,
                              struct cm_buf *out, struct cp_tr_err *err)
{
    struct cp_tr_err e;
    int rc;

    if (*done)
        return CM_OK;
    *done = true;
    cp_tr_early_eof_error(&e, CP_TR_CODEX_EARLY_EOF_MSG);
    if ((rc = ops->emit_error(&e, out)))
        return rc;
    if (err)
        *err = e;
    return CM_ERR_TIMEOUT;
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
};

/* cp_tr_body_fn of collect(). */
static int agg_on_event(void *ud, const char *t, size_t tl, cJSON *ev, struct cp_tr_err *uerr)
{
    struct agg *a = ud;

    if (cp_tr_slice_eq(t, tl, "response.created") ||
        cp_tr_slice_eq(t, tl, "response.in_progress")) {
        const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ev, "response");
        const char *model = cp_tr_str_member(resp, "model", NULL);
        (void)cm_json_opt_int64(resp, "created_at", 1, CM_JSON_INT_MAX, a->created, &a->created,
                                NULL);
        if (model && model[0]) {
            char *m = cm_strdup(model);
            if (!m)
                return CM_ERR_NOMEM;
            cm_free(a->model);
            a->model = m;
        }
    } else if (cp_tr_slice_eq(t, tl, "response.output_item.done")) {
        cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(ev, "item");
        struct agg_item *v;
        int64_t oi = (int64_t)a->nitems;
        if (!cJSON_IsObject(item)) {
            cJSON_Delete(item);
            return CM_OK;
        }
        (void)cm_json_opt_int64(ev, "output_index", 0, CM_JSON_INT_MAX, oi, &oi, NULL);
        if (a->nitems >= CP_TR_CODEX_MAX_ITEMS ||
            !(v = cm_realloc(a->items, (a->nitems + 1) * sizeof(*v)))) {
            cJSON_Delete(item);
            return a->nitems >= CP_TR_CODEX_MAX_ITEMS ? CM_ERR_LIMIT : CM_ERR_NOMEM;
        }
        a->items = v;
        v[a->nitems].index = oi;
        v[a->nitems].item = item;
        a->nitems++;
    } else if (cp_tr_slice_eq(t, tl, "response.completed") ||
               cp_tr_slice_eq(t, tl, "response.incomplete")) {
        cJSON *resp = cJSON_DetachItemFromObjectCaseSensitive(ev, "response");
        if (!resp && !(resp = cJSON_CreateObject()))
            return CM_ERR_NOMEM;
        a->final = resp;
        a->incomplete = cp_tr_slice_eq(t, tl, "response.incomplete");
        return 1; /* the terminal event */
    } else if (cp_tr_slice_eq(t, tl, "response.failed") || cp_tr_slice_eq(t, tl, "error")) {
        upstream_error(ev, cp_tr_slice_eq(t, tl, "response.failed"), uerr);
        return CM_ERR_UPSTREAM;
    }
    return CM_OK;
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

/*
 * Reads the whole body into @p res (see cp_tr_codex_aggregate() for what it holds and the
 * errors). On failure @p res needs no cleanup (it is zeroed) and @p err is filled.
 */
static int collect(const char *sse, size_t len, int64_t created, struct cp_tr_codex_result *res,
                   struct cp_tr_err *err)
{
    struct agg a;
    cJSON *rebuilt = NULL;
    size_t i;
    int rc;

    memset(&a, 0, sizeof(a));
    if (!res || (!sse && len)) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    memset(res, 0, sizeof(*res));
    a.created = created;
    if ((rc = cp_tr_read_body(sse, len, true, agg_on_event, &a, CP_TR_CODEX_EARLY_EOF_MSG,
                              "upstream sent an oversized event", err)))
        goto out;
    if ((rc = agg_output(&a, &rebuilt))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        goto out;
    }
    res->response = a.final;
    res->_rebuilt = rebuilt;
    res->output = rebuilt ? rebuilt : cJSON_GetObjectItemCaseSensitive(a.final, "output");
    res->incomplete = a.incomplete;
    res->created = a.created;
    res->model = a.model;
    a.final = NULL;
    a.model = NULL;
out:
    for (i = 0; i < a.nitems; i++)
        cJSON_Delete(a.items[i].item);
    cm_free(a.items);
    cm_free(a.model);
    cJSON_Delete(a.final);
    return rc;
}

/* Frees what @p res owns (not the struct). Safe on a zeroed struct and twice. */
static void result_cleanup(struct cp_tr_codex_result *res)
{
    if (!res)
        return;
    cJSON_Delete(res->response);
    cJSON_Delete(res->_rebuilt);
    cm_free(res->model);
    memset(res, 0, sizeof(*res));
}

int cp_tr_codex_aggregate(const char *sse, size_t len, int64_t created, const cJSON *tools,
                          const char *(*name_of)(const cJSON *tool), cp_tr_codex_build_fn build,
                          void *ud, cJSON **out, struct cp_tr_usage *usage, struct cp_tr_err *err)
{
    struct cp_tr_codex_names *names = NULL;
    struct cp_tr_codex_result r;
    struct cp_tr_usage u;
    cJSON *res = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    if (!out || (!sse && len)) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if ((rc = collect(sse, len, created, &r, err)))
        goto out;
    if ((rc = cp_tr_codex_names_build(tools, name_of, &names)) ||
        (rc = build(&r, names, ud, &res, &u))) {
        cp_tr_server_error(err, rc, cm_err_str(rc));
        goto out;
    }
    *out = res;
    if (usage)
        *usage = u;
out:
    result_cleanup(&r);
    cp_tr_codex_names_free(names);
    return rc;
}
