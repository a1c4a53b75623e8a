/* SPDX-License-Identifier: MIT */
/*
 * tr_common.c - the translator-wide helpers (see the header). Before this file they were
 * written two or three times over chat_common.c, codex_common.c and the translators;
 * behaviour unchanged.
 */
#include "translate/tr_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- strings ---- */

bool cp_tr_str_eq(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

bool cp_tr_slice_eq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return p && n == l && memcmp(p, lit, l) == 0;
}

const char *cp_tr_str_member(const cJSON *o, const char *name, const char *def)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(s) ? s->valuestring : def;
}

/* ---- JSON ---- */

int cp_tr_typed_new(const char *type, cJSON **o)
{
    cJSON *t = NULL;
    int rc;

    if ((rc = cm_json_new_object(&t)) || (rc = cm_json_set_string(t, "type", type))) {
        cJSON_Delete(t);
        return rc;
    }
    *o = t;
    return CM_OK;
}

int cp_tr_typed_append(cJSON *arr, const char *type, const char *key, const char *val, size_t len)
{
    cJSON *o = NULL;
    int rc;

    if ((rc = cp_tr_typed_new(type, &o)) || (rc = cm_json_set_stringn(o, key, val, len))) {
        cJSON_Delete(o);
        return rc;
    }
    return cm_json_adopt(arr, NULL, &o);
}

int cp_tr_args_object(const char *args, cJSON **out)
{
    cJSON *o = NULL;
    int rc = cm_json_parse(args, strlen(args), NULL, &o, NULL);

    if (rc == CM_ERR_NOMEM)
        return rc;
    if (rc || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return cm_json_new_object(out);
    }
    *out = o;
    return CM_OK;
}

/* ---- errors ---- */

void cp_tr_err_set(struct cp_tr_err *e, int rc, unsigned status, const char *field,
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

void cp_tr_server_error(struct cp_tr_err *e, int rc, const char *msg)
{
    cp_tr_err_set(e, rc, 500, "", "server_error", "", "%s", msg);
}

int cp_tr_err_from_json(struct cp_tr_err *e, int rc, const struct cm_json_err *je)
{
    if (rc == CM_ERR_NOMEM) {
        cp_tr_server_error(e, rc, "out of memory");
        return rc;
    }
    if (rc == CM_ERR_NOTFOUND)
        rc = CM_ERR_INVAL; /* a missing required field is a bad request to our callers */
    cp_tr_err_set(e, rc, 400, je ? je->field : "", "invalid_request_error", "", "%s",
                  je && je->msg[0] ? je->msg : "invalid request");
    return rc;
}

const char *cp_tr_type_for_status(unsigned status)
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

void cp_tr_malformed_error(struct cp_tr_err *e, const char *what)
{
    cp_tr_err_set(e, CM_ERR_UPSTREAM, 502, "", "server_error", "bad_upstream_event",
                  "upstream sent a malformed event: %s", what);
}

void cp_tr_early_eof_error(struct cp_tr_err *e, const char *msg)
{
    cp_tr_err_set(e, CM_ERR_TIMEOUT, 408, "", "timeout_error", "request_timeout", "%s", msg);
}

/* ---- requests ---- */

int cp_tr_request(const cJSON *req, cJSON **out, struct cp_tr_err *err,
                  int (*build)(const cJSON *req, cJSON **out, struct cm_json_err *je))
{
    struct cm_json_err je;
    cJSON *body = NULL;
    int rc;

    memset(&je, 0, sizeof(je));
    if (!out) {
        cp_tr_server_error(err, CM_ERR_INVAL, "bad arguments");
        return CM_ERR_INVAL;
    }
    if (!cJSON_IsObject(req)) {
        cm_json_err_set(&je, CM_ERR_INVAL, "", "the request body must be a JSON object");
        rc = CM_ERR_INVAL;
    } else {
        rc = build(req, &body, &je);
    }
    if (rc)
        return cp_tr_err_from_json(err, rc, &je);
    *out = body;
    return CM_OK;
}

int cp_tr_check_cap(const cJSON *arr, int max, const char *field, const char *noun,
                    struct cm_json_err *je)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) <= max)
        return CM_OK;
    cm_json_err_set(je, CM_ERR_LIMIT, field, "has more than %d %s", max, noun);
    return CM_ERR_LIMIT;
}

int cp_tr_check_messages(const cJSON *messages, int max, struct cm_json_err *je)
{
    if (!cJSON_GetArraySize(messages)) {
        cm_json_err_set(je, CM_ERR_INVAL, "messages", "must not be empty");
        return CM_ERR_INVAL;
    }
    return cp_tr_check_cap(messages, max, "messages", "entries", je);
}

int cp_tr_map_array(const cJSON *in, const char *field, int max,
                    int (*fn)(const void *ud, const cJSON *entry, cJSON **item,
                              struct cm_json_err *je),
                    const void *ud, cJSON **out, struct cm_json_err *je)
{
    cJSON *arr = NULL, *item = NULL;
    const cJSON *e;
    size_t i = 0;
    int rc;

    if (!cJSON_IsArray(in)) {
        cm_json_err_set(je, CM_ERR_INVAL, field, "must be an array");
        return CM_ERR_INVAL;
    }
    if ((rc = cp_tr_check_cap(in, max, field, "entries", je)) || (rc = cm_json_new_array(&arr)))
        return rc;
    cJSON_ArrayForEach(e, in)
    {
        if ((rc = fn(ud, e, &item, je))) {
            cm_json_err_scope(je, "%s[%zu]", field, i);
            goto out;
        }
        if ((rc = cm_json_adopt(arr, NULL, &item)))
            goto out;
        i++;
    }
    *out = arr;
    arr = NULL;
out:
    cJSON_Delete(arr);
    return rc;
}

int cp_tr_split_model(const char *model, bool (*suffix)(const char *v, size_t n, void *ud),
                      void *ud, char **base, bool *has_suffix, struct cm_json_err *je)
{
    size_t len = strlen(model);
    const char *open;
    bool found = false;
    char *b;

    if (len && model[len - 1] == ')' && (open = strrchr(model, '(')) != NULL) {
        size_t blen = (size_t)(open - model);
        if (!blen) {
            cm_json_err_set(je, CM_ERR_INVAL, "model", "must name a model before '('");
            return CM_ERR_INVAL;
        }
        if (!suffix(open + 1, len - blen - 2, ud)) {
            cm_json_err_set(je, CM_ERR_INVAL, "model",
                            "has an unknown reasoning suffix (use a level or a token budget)");
            return CM_ERR_INVAL;
        }
        found = true;
        len = blen;
    }
    if (!len) {
        cm_json_err_set(je, CM_ERR_INVAL, "model", "must not be empty");
        return CM_ERR_INVAL;
    }
    if (!(b = cm_strndup(model, len)))
        return CM_ERR_NOMEM;
    *base = b;
    if (has_suffix)
        *has_suffix = found;
    return CM_OK;
}

/* ---- upstream events ---- */

int cp_tr_parse_event(const char *type, size_t type_len, const char *data, size_t data_len,
                      cJSON **ev, const char **t, size_t *tlen, struct cp_tr_err *err)
{
    struct cm_json_parse_opts opts = {.max_depth = 128};
    cJSON *o = NULL;
    int rc;

    rc = cm_json_parse(data ? data : "", data_len, &opts, &o, NULL);
    if (rc == CM_ERR_NOMEM) {
        cp_tr_server_error(err, rc, "out of memory");
        return rc;
    }
    if (rc || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        cp_tr_malformed_error(err, rc ? "data is not valid JSON" : "data is not a JSON object");
        return CM_ERR_UPSTREAM;
    }
    if (!type || !type_len || cp_tr_slice_eq(type, type_len, "message")) {
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "type");
        type = cJSON_IsString(dt) ? dt->valuestring : "";
        type_len = strlen(type);
    }
    *ev = o;
    *t = type;
    *tlen = type_len;
    return CM_OK;
}

/* cp_tr_read_body() state. */
struct body {
    cp_tr_body_fn fn;
    void *ud;
    bool skip_done;       /* skip the data "[DONE]" */
    bool done;            /* fn saw the terminal event */
    int rc;               /* why reading stopped early, 0 while it did not */
    struct cp_tr_err err; /* with rc CM_ERR_UPSTREAM: the upstream's failure */
};

/* cm_sse callback of cp_tr_read_body(): parses the event and hands it to the caller's fn. */
static int body_on_event(void *ud, const struct cm_sse_event *sev)
{
    struct body *b = ud;
    cJSON *ev = NULL;
    const char *t = NULL;
    size_t tl = 0;
    int rc;

    if (b->skip_done && cp_tr_slice_eq(sev->data, sev->data_len, "[DONE]"))
        return CM_OK;
    rc = cp_tr_parse_event(sev->type, sev->type_len, sev->data, sev->data_len, &ev, &t, &tl,
                           &b->err);
    if (rc == CM_OK) {
        rc = b->fn(b->ud, t, tl, ev, &b->err);
        cJSON_Delete(ev);
        if (rc == 1) {
            b->done = true; /* stop: the rest is of no interest */
            return rc;
        }
    }
    if (rc) /* a parse failure is never "done", even CM_ERR_NOMEM (which is 1) */
        b->rc = rc;
    return rc;
}

int cp_tr_read_body(const char *sse, size_t len, bool skip_done, cp_tr_body_fn fn, void *ud,
                    const char *eof_msg, const char *limit_msg, struct cp_tr_err *err)
{
    struct cm_sse_parser p;
    struct body b;
    int rc;

    memset(&b, 0, sizeof(b));
    b.fn = fn;
    b.ud = ud;
    b.skip_done = skip_done;
    cm_sse_parser_init(&p, 0, body_on_event, NULL, &b);
    rc = cm_sse_parser_feed(&p, sse, len, NULL);
    if (rc == CM_OK)
        rc = cm_sse_parser_finish(&p, 0); /* an unterminated last event is a cut stream */
    cm_sse_parser_cleanup(&p);
    if (b.done)
        return CM_OK;
    if (b.rc) {
        rc = b.rc;
        if (rc == CM_ERR_UPSTREAM) {
            if (err)
                *err = b.err;
            return rc;
        }
    } else if (rc == CM_OK) {
        cp_tr_early_eof_error(err, eof_msg);
        return CM_ERR_TIMEOUT;
    }
    if (rc == CM_ERR_LIMIT)
        cp_tr_err_set(err, rc, 502, "", "server_error", "bad_upstream_event", "%s", limit_msg);
    else
        cp_tr_server_error(err, rc, cm_err_str(rc));
    return rc;
}

bool cp_tr_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cp_tr_data_url(const char *url, const char **media, size_t *media_len, const char **data)
{
    const char *semi, *comma;

    if (!cp_tr_has_prefix(url, "data:") || !(comma = strchr(url, ',')))
        return false;
    semi = strchr(url + 5, ';');
    if (!semi || semi > comma || semi == url + 5 || (size_t)(comma - semi) != 7 ||
        memcmp(semi, ";base64", 7) != 0)
        return false;
    *media = url + 5;
    *media_len = (size_t)(semi - (url + 5));
    *data = comma + 1;
    return true;
}
