/* SPDX-License-Identifier: MIT */
/*
 * openai_compat.c - OpenAI-compatible upstreams (see openai_compat.h): request shape,
 * error classification, usage reading, and the two rate-limit header forms
 * (Retry-After, x-ratelimit-reset-requests) Qwen and iFlow reuse.
 */
#include "providers/openai_compat.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_HINT_S (INT64_C(366) * 24 * 3600) /* a year: longer hints are bogus */

int cp_compat_prepare(cJSON *chat, bool stream)
{
    cJSON *so;
    if (!cJSON_IsObject(chat))
        return CM_ERR_INVAL;
    if (!stream)
        return CM_OK;
    so = cJSON_GetObjectItemCaseSensitive(chat, "stream_options");
    if (!cJSON_IsObject(so)) {
        int rc = cm_json_new_object(&so);
        if (!rc)
            rc = cm_json_adopt(chat, "stream_options", &so);
        if (rc)
            return rc;
        so = cJSON_GetObjectItemCaseSensitive(chat, "stream_options");
    }
    return cm_json_set_bool(so, "include_usage", true);
}

int cp_compat_build(const char *base_url, const char *api_key, bool stream,
                    const char *const *hdr_names, const char *const *hdr_values, size_t n_hdrs,
                    struct cp_upreq *out)
{
    struct cp_upreq r = {0};
    struct cm_buf auth, base;
    int rc;

    cm_buf_init(&auth, 16 * 1024);
    cm_buf_init(&base, 16 * 1024);
    if (!base_url || !*base_url || !out || (n_hdrs && (!hdr_names || !hdr_values))) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cm_buf_append(&base, base_url, strlen(base_url));
    if (rc)
        goto out;
    if (base.len && base.data[base.len - 1] == '/')
        base.data[--base.len] = '\0';
    if ((rc = cp_upreq_url(&r, base.data, "/chat/completions")) ||
        (rc = cp_upreq_add(&r, "Content-Type", "application/json")))
        goto out;
    if (api_key && *api_key) {
        if ((rc = cm_buf_appendf(&auth, "Bearer %s", api_key)) ||
            (rc = cp_upreq_add(&r, "Authorization", auth.data)))
            goto out;
    }
    if ((rc = cp_upreq_add(&r, "User-Agent", CP_COMPAT_UA)) ||
        (rc = cp_upreq_add(&r, "Accept", stream ? "text/event-stream" : "application/json")))
        goto out;
    for (size_t i = 0; i < n_hdrs; i++)
        if ((rc = cp_upreq_set(&r, hdr_names[i], hdr_values[i])))
            goto out;
    *out = r;
    memset(&r, 0, sizeof r);
out:
    if (auth.data)
        cm_crypto_memzero(auth.data, auth.len);
    cm_buf_cleanup(&auth);
    cm_buf_cleanup(&base);
    cp_upreq_cleanup(&r);
    return rc;
}

/* ---- header values ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate) -> unix seconds */
static int http_date(const char *s, int64_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int d, y, h, mi, sec, mo = 0;
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
        return CM_ERR_INVAL;
    for (int i = 0; i < 12; i++)
        if (strncmp(s + 8, months + 3 * i, 3) == 0)
            mo = i + 1;
    if (!mo || !digits(s + 5, 2, &d) || !digits(s + 12, 4, &y) || !digits(s + 17, 2, &h) ||
        !digits(s + 20, 2, &mi) || !digits(s + 23, 2, &sec) || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return CM_ERR_INVAL;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return CM_OK;
}

int cp_openai_retry_after(const char *v, int64_t now_s, int64_t *out)
{
    int64_t t = 0;
    const char *p;
    if (!v || !out)
        return CM_ERR_INVAL;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return CM_ERR_INVAL;
    for (p = v; *p >= '0' && *p <= '9'; p++) {
        if (t > MAX_HINT_S)
            return CM_ERR_INVAL;
        t = t * 10 + (*p - '0');
    }
    if (p > v) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p || t > MAX_HINT_S)
            return CM_ERR_INVAL;
        *out = t;
        return CM_OK;
    }
    if (http_date(v, &t))
        return CM_ERR_INVAL;
    *out = t > now_s ? t - now_s : 0;
    return CM_OK;
}

int cp_openai_duration_s(const char *v, int64_t *out)
{
    double total_ms = 0;
    const char *p = v;
    if (!v || !out || !*v)
        return CM_ERR_INVAL;
    while (*p) {
        double num = 0, scale = 1, mult;
        int any = 0;
        while (*p >= '0' && *p <= '9') {
            num = num * 10 + (*p++ - '0');
            any = 1;
        }
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                scale /= 10;
                num += (*p++ - '0') * scale;
                any = 1;
            }
        }
        if (!any)
            return CM_ERR_INVAL;
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            mult = 0.001;
            p += 2;
        } else if (strncmp(p, "ns", 2) == 0) {
            mult = 0.000001;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60000;
            p++;
        } else if (*p == 'h') {
            mult = 3600000;
            p++;
        } else {
            return CM_ERR_INVAL;
        }
        total_ms += num * mult;
        if (total_ms > (double)MAX_HINT_S * 1000)
            return CM_ERR_INVAL;
    }
    *out = (int64_t)((total_ms + 999.999) / 1000);
    if (total_ms > 0 && *out < 1)
        *out = 1;
    return CM_OK;
}

void cp_compat_outcome(long status, const char *body, size_t len, const char *retry_after,
                       const char *reset_requests, int64_t now_s, struct cp_sched_outcome *o)
{
    int64_t v;
    (void)body;
    (void)len;
    memset(o, 0, sizeof *o);
    o->status = (int)status;
    if (status == 400 || status == 422)
        o->request_scoped = 1;
    if (status != 429)
        return;
    if (retry_after && cp_openai_retry_after(retry_after, now_s, &v) == CM_OK) {
        o->has_hint = 1;
        o->retry_after_s = v;
    } else if (reset_requests && cp_openai_duration_s(reset_requests, &v) == CM_OK && v > 0) {
        o->has_hint = 1;
        o->retry_after_s = v;
    }
}

/* ---- usage ---- */

static int64_t count(const cJSON *obj, const char *a, const char *b, int *found)
{
    int64_t v;
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, a) : NULL;
    if (!it && b)
        it = cJSON_GetObjectItemCaseSensitive(obj, b);
    if (found)
        *found = it && cJSON_IsNumber(it);
    if (it && cm_json_to_int64(it, 0, CM_JSON_INT_MAX, &v) == CM_OK)
        return v;
    if (found)
        *found = 0;
    return 0;
}

static const cJSON *sub(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (!cJSON_IsObject(it))
        it = cJSON_GetObjectItemCaseSensitive(obj, b);
    return cJSON_IsObject(it) ? it : NULL;
}

int cp_openai_usage(const cJSON *obj, struct cp_tr_usage *u)
{
    const cJSON *us;
    struct cp_tr_usage r = {0};
    int has_total;
    if (!obj || !u)
        return CM_ERR_INVAL;
    us = cJSON_GetObjectItemCaseSensitive(obj, "usage");
    if (!cJSON_IsObject(us))
        return CM_ERR_NOTFOUND;
    r.input = count(us, "prompt_tokens", "input_tokens", NULL);
    r.output = count(us, "completion_tokens", "output_tokens", NULL);
    r.total = count(us, "total_tokens", NULL, &has_total);
    if (!has_total)
        r.total = r.input + r.output;
    r.cached = count(sub(us, "prompt_tokens_details", "input_tokens_details"), "cached_tokens",
                     NULL, NULL);
    r.reasoning = count(sub(us, "completion_tokens_details", "output_tokens_details"),
                        "reasoning_tokens", NULL, NULL);
    *u = r;
    return CM_OK;
}
