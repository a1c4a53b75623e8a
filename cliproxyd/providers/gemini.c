/* SPDX-License-Identifier: MIT */
/*
 * gemini.c - Gemini CLI / gemini-api-key request shape, error classification and usage
 * (see gemini.h). The body defaults (safetySettings, thoughtSignature) and the CLI
 * envelope are applied here rather than in the translator so that Gemini-format clients,
 * whose bodies skip translation, get them too.
 */
#include "providers/gemini.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "translate/chat_gemini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cp_gemini_models[] = {
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3.1-pro-preview",
    "gemini-3-flash-preview",
    "gemini-3.1-flash-lite-preview",
};
const size_t cp_gemini_models_n = sizeof(cp_gemini_models) / sizeof(cp_gemini_models[0]);

#if defined(__APPLE__)
#define GEMINI_OS "darwin"
#elif defined(_WIN32)
#define GEMINI_OS "win32"
#else
#define GEMINI_OS "linux"
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define GEMINI_ARCH "x64"
#elif defined(__aarch64__) || defined(_M_ARM64)
#define GEMINI_ARCH "arm64"
#elif defined(__i386__) || defined(_M_IX86)
#define GEMINI_ARCH "x86"
#else
#define GEMINI_ARCH "unknown"
#endif

/* ---- body ---- */

/* The [v6] default safetySettings (internal/translator/gemini/common/safety.go). */
static int add_safety(cJSON *body)
{
    static const struct {
        const char *category, *threshold;
    } defs[] = {
        {"HARM_CATEGORY_HARASSMENT", "OFF"},
        {"HARM_CATEGORY_HATE_SPEECH", "OFF"},
        {"HARM_CATEGORY_SEXUALLY_EXPLICIT", "OFF"},
        {"HARM_CATEGORY_DANGEROUS_CONTENT", "OFF"},
        {"HARM_CATEGORY_CIVIC_INTEGRITY", "BLOCK_NONE"},
    };
    cJSON *arr = NULL, *o = NULL;
    int rc;

    if (cJSON_GetObjectItemCaseSensitive(body, "safetySettings"))
        return CM_OK;
    if ((rc = cm_json_new_array(&arr)))
        return rc;
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        if ((rc = cm_json_new_object(&o)) ||
            (rc = cm_json_set_string(o, "category", defs[i].category)) ||
            (rc = cm_json_set_string(o, "threshold", defs[i].threshold)) ||
            (rc = cm_json_adopt(arr, NULL, &o)))
            goto out;
    }
    rc = cm_json_adopt(body, "safetySettings", &arr);
out:
    cJSON_Delete(o);
    cJSON_Delete(arr);
    return rc;
}

/* Every functionCall part without a thoughtSignature gets the skip value. */
static int add_signatures(cJSON *body)
{
    cJSON *c, *p;
    int rc;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(body, "contents"))
    {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "parts"))
        {
            if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(p, "functionCall")) ||
                cJSON_GetObjectItemCaseSensitive(p, "thoughtSignature"))
                continue;
            if ((rc = cm_json_set_string(p, "thoughtSignature", CP_GEMINI_SKIP_SIGNATURE)))
                return rc;
        }
    }
    return CM_OK;
}

int cp_gemini_body(cJSON *request, const char *model, const char *project,
                   enum cp_gemini_action action, char **out, size_t *len)
{
    cJSON *env = NULL;
    char *s = NULL;
    size_t n = 0;
    int rc;

    if (!cJSON_IsObject(request) || !out || !len ||
        (project && action != CP_GEMINI_COUNT && (!model || !model[0]))) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    if ((action != CP_GEMINI_COUNT && (rc = add_safety(request))) || (rc = add_signatures(request)))
        goto out;
    if (project) {
        if ((rc = cm_json_new_object(&env)) ||
            (action != CP_GEMINI_COUNT && ((rc = cm_json_set_string(env, "model", model)) ||
                                           (rc = cm_json_set_string(env, "project", project)))))
            goto out;
        rc = cm_json_adopt(env, "request", &request);
        if (rc)
            goto out;
    }
    if ((rc = cm_json_print(env ? env : request, &s, &n)))
        goto out;
    *out = s;
    *len = n;
out:
    cJSON_Delete(env);
    cJSON_Delete(request);
    return rc;
}

/* ---- request ---- */

static bool model_ok(const char *m)
{
    if (!m || !m[0])
        return false;
    for (; *m; m++)
        if (!((*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z') || (*m >= '0' && *m <= '9') ||
              *m == '.' || *m == '_' || *m == '-'))
            return false;
    return true;
}

static const char *action_path(enum cp_gemini_action a)
{
    switch (a) {
    case CP_GEMINI_STREAM:
        return ":streamGenerateContent?alt=sse";
    case CP_GEMINI_COUNT:
        return ":countTokens";
    default:
        return ":generateContent";
    }
}

int cp_gemini_build(const struct cp_gemini_target *t, struct cp_upreq *out)
{
    struct cp_upreq r = {0};
    struct cm_buf base, path, v;
    int rc;

    cm_buf_init(&base, 4096);
    cm_buf_init(&path, 4096);
    cm_buf_init(&v, 16 * 1024);
    if (!t || !out || !t->secret || !t->secret[0] || !model_ok(t->model) ||
        (t->n_hdrs && (!t->hdr_names || !t->hdr_values))) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (cm_buf_append_str(&base, t->base && t->base[0] ? t->base
                                 : t->api_key          ? CP_GEMINI_API_BASE
                                                       : CP_GEMINI_CLI_BASE)) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    while (base.len && base.data[base.len - 1] == '/')
        base.data[--base.len] = '\0';
    if (t->api_key ? cm_buf_appendf(&path, "/v1beta/models/%s%s", t->model, action_path(t->action))
                   : cm_buf_appendf(&path, "/v1internal%s", action_path(t->action))) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if ((rc = cp_upreq_url(&r, base.data, path.data)) ||
        (rc = cp_upreq_add(&r, "Content-Type", "application/json")))
        goto out;
    if (t->api_key) {
        rc = cp_upreq_add(&r, "x-goog-api-key", t->secret);
    } else if (cm_buf_appendf(&v, "Bearer %s", t->secret)) {
        rc = CM_ERR_NOMEM;
    } else {
        rc = cp_upreq_add(&r, "Authorization", v.data);
    }
    if (rc || (rc = cp_upreq_add(&r, "Accept",
                                 t->action == CP_GEMINI_STREAM ? "text/event-stream"
                                                               : "application/json")))
        goto out;
    if (!t->api_key) {
        cm_crypto_memzero(v.data, v.len);
        cm_buf_reset(&v);
        if (cm_buf_appendf(&v, "GeminiCLI/%s/%s (%s; %s)", CP_GEMINI_CLI_VERSION, t->model,
                           GEMINI_OS, GEMINI_ARCH)) {
            rc = CM_ERR_NOMEM;
            goto out;
        }
        if ((rc = cp_upreq_add(&r, "User-Agent", v.data)) ||
            (rc = cp_upreq_add(&r, "X-Goog-Api-Client", CP_GEMINI_API_CLIENT)))
            goto out;
    }
    for (size_t i = 0; i < t->n_hdrs; i++)
        if ((rc = cp_upreq_set(&r, t->hdr_names[i], t->hdr_values[i])))
            goto out;
    *out = r;
    memset(&r, 0, sizeof r);
    rc = CM_OK;
out:
    if (v.data)
        cm_crypto_memzero(v.data, v.len);
    cm_buf_cleanup(&v);
    cm_buf_cleanup(&path);
    cm_buf_cleanup(&base);
    cp_upreq_cleanup(&r);
    return rc;
}

/* ---- errors ---- */

#define DURATION_CAP_S INT64_C(1000000000) /* ~31 years */

int cp_gemini_duration(const char *s, int64_t *secs)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        /* longest first so that "ms" is not read as "m" */
        {"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
        {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
    };
    double total = 0;
    const char *p = s;

    if (!s || !secs)
        return CM_ERR_INVAL;
    if (!*p)
        return CM_ERR_PARSE;
    if (*p == '+')
        p++;
    if (strcmp(p, "0") == 0) {
        *secs = 1;
        return CM_OK;
    }
    while (*p) {
        double v = 0, scale = 1;
        bool digits = false;
        size_t i;

        for (; *p >= '0' && *p <= '9'; p++, digits = true)
            if (v < 1e15)
                v = v * 10 + (*p - '0');
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
                scale /= 10;
                v += (*p - '0') * scale;
            }
        }
        if (!digits)
            return CM_ERR_PARSE;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0) {
                total += v * units[i].ns;
                p += n;
                break;
            }
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return CM_ERR_PARSE;
    }
    total /= 1e9;
    if (total >= (double)DURATION_CAP_S) {
        *secs = DURATION_CAP_S;
        return CM_OK;
    }
    *secs = (int64_t)total;
    if ((double)*secs < total - 1e-11) /* round up, ignoring float noise */
        (*secs)++;
    if (*secs < 1)
        *secs = 1;
    return CM_OK;
}

/* error.details entry of @type "type.googleapis.com/google.rpc.<name>", or NULL. */
static const cJSON *detail(const cJSON *eo, const char *name)
{
    static const char pfx[] = "type.googleapis.com/google.rpc.";
    const cJSON *d;

    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(eo, "details"))
    {
        const char *t = cJSON_IsObject(d)
                            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "@type"))
                            : NULL;
        if (t && strncmp(t, pfx, sizeof(pfx) - 1) == 0 && strcmp(t + sizeof(pfx) - 1, name) == 0)
            return d;
    }
    return NULL;
}

void cp_gemini_outcome(long status, const char *body, size_t len, const char *retry_after,
                       int64_t now_s, struct cp_sched_outcome *o)
{
    cJSON *root = NULL;
    const cJSON *top, *eo = NULL, *ri, *ei;
    const char *st = NULL, *reason = NULL;
    int64_t v = 0;

    (void)now_s;
    memset(o, 0, sizeof *o);
    o->status = (int)status;
    if (body && len && cm_json_parse(body, len, NULL, &root, NULL) == CM_OK) {
        top = cJSON_IsArray(root) ? cJSON_GetArrayItem(root, 0) : root;
        eo = cJSON_GetObjectItemCaseSensitive(top, "error");
        if (!cJSON_IsObject(eo))
            eo = NULL;
    }
    st = eo ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(eo, "status")) : NULL;
    ri = eo ? detail(eo, "RetryInfo") : NULL;
    ei = eo ? detail(eo, "ErrorInfo") : NULL;
    reason = ei ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ei, "reason")) : NULL;
    if (status == 429) {
        const char *rd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ri, "retryDelay"));
        const char *qd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(ei, "metadata"), "quotaResetDelay"));
        if ((rd && cp_gemini_duration(rd, &v) == CM_OK) ||
            (qd && cp_gemini_duration(qd, &v) == CM_OK)) {
            o->has_hint = 1;
            o->retry_after_s = v;
        } else if (retry_after && *retry_after) {
            char *end;
            long long s = strtoll(retry_after, &end, 10);
            if (end != retry_after && !*end && s > 0) {
                o->has_hint = 1;
                o->retry_after_s = s;
            }
        }
    } else if (status == 400) {
        if (reason && strcmp(reason, "API_KEY_INVALID") == 0)
            o->status = 401;
        else if (st &&
                 (strcmp(st, "INVALID_ARGUMENT") == 0 || strcmp(st, "FAILED_PRECONDITION") == 0))
            o->request_scoped = 1;
    }
    cJSON_Delete(root);
}

/* ---- answers ---- */

int cp_gemini_unwrap(cJSON *resp, cJSON **inner)
{
    cJSON *r;

    if (!cJSON_IsObject(resp) || !inner)
        return CM_ERR_INVAL;
    r = cJSON_GetObjectItemCaseSensitive(resp, "response");
    *inner = cJSON_IsObject(r) ? r : resp;
    return CM_OK;
}

int cp_gemini_usage(const cJSON *resp, struct cp_tr_usage *u)
{
    const cJSON *r, *um;

    if (!resp || !u)
        return CM_ERR_INVAL;
    r = cJSON_GetObjectItemCaseSensitive(resp, "response");
    um = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(r) ? r : resp, "usageMetadata");
    return cp_tr_gemini_usage_metadata(um, u);
}
