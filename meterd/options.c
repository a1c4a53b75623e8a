/* SPDX-License-Identifier: MIT */
/* options.c - option defaults, validation and immutable snapshots (see options.h). */
#include "options.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "pricing.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STR, K_BOOL, K_INT, K_NUM, K_OBJ, K_ARR, K_CODES, K_PRICING, K_DENIED };

struct def {
    const char *key;
    enum kind kind;
    const char *value; /* default; NULL = none (absent until set) */
    int64_t min, max;  /* K_INT range */
};

#define RETRY_CODES "100-199,300-399,401-407,409-499,500-503,505-523,525-599"

/* sorted by key (strcmp): bsearch below */
static const struct def DEFS[] = {
    {"AutoGroups", K_ARR, "[\"default\"]", 0, 0},
    {"AutomaticDisableChannelEnabled", K_BOOL, "false", 0, 0},
    /* ours (relay/health.h): N consecutive qualifying failures within the window disable */
    {"AutomaticDisableFailureCount", K_INT, "3", 1, 64},
    {"AutomaticDisableFailureWindowSeconds", K_INT, "300", 1, 86400},
    {"AutomaticDisableKeywords", K_STR, NULL, 0, 0},
    {"AutomaticDisableStatusCodes", K_CODES, "401", 0, 0},
    {"AutomaticEnableChannelEnabled", K_BOOL, "false", 0, 0},
    {"AutomaticRetryStatusCodes", K_CODES, RETRY_CODES, 0, 0},
    {"ChannelDisableThreshold", K_NUM, "5", 0, 0},
    {"CompletionRatio", K_PRICING, NULL, 0, 0},
    {"CreateCacheRatio", K_PRICING, NULL, 0, 0},
    {"DataExportEnabled", K_BOOL, "true", 0, 0},
    {"DefaultUseAutoGroup", K_BOOL, "false", 0, 0},
    {"DemoSiteEnabled", K_BOOL, "false", 0, 0},
    {"DisplayInCurrencyEnabled", K_PRICING, "true", 0, 0},
    {"DisplayTokenStatEnabled", K_BOOL, "true", 0, 0},
    {"GroupGroupRatio", K_PRICING, NULL, 0, 0},
    {"GroupRatio", K_PRICING, NULL, 0, 0},
    {"LogConsumeEnabled", K_BOOL, "true", 0, 0},
    {"ModelPrice", K_PRICING, NULL, 0, 0},
    {"ModelRatio", K_PRICING, NULL, 0, 0},
    {"ModelRequestRateLimitCount", K_INT, "0", 0, 100000000},
    {"ModelRequestRateLimitDurationMinutes", K_INT, "1", 1, 1440},
    {"ModelRequestRateLimitEnabled", K_BOOL, "false", 0, 0},
    {"ModelRequestRateLimitGroup", K_OBJ, "{}", 0, 0},
    {"ModelRequestRateLimitSuccessCount", K_INT, "1000", 1, 100000000},
    {"PasswordLoginEnabled", K_BOOL, "true", 0, 0},
    {"PasswordRegisterEnabled", K_BOOL, "true", 0, 0},
    {"PreConsumedQuota", K_PRICING, "500", 0, 0},
    {"QuotaForInvitee", K_INT, "0", 0, INT64_C(1) << 52},
    {"QuotaForInviter", K_INT, "0", 0, INT64_C(1) << 52},
    {"QuotaForNewUser", K_INT, "0", 0, INT64_C(1) << 52},
    {"QuotaPerUnit", K_PRICING, "500000", 0, 0},
    {"QuotaRemindThreshold", K_INT, "1000", 0, INT64_C(1) << 52},
    {"RegisterEnabled", K_BOOL, "true", 0, 0},
    {"RetryTimes", K_INT, "0", 0, 10},
    {"SelfUseModeEnabled", K_PRICING, "false", 0, 0},
    {"SystemName", K_STR, "New API", 0, 0},
    {"UserUsableGroups", K_OBJ, "{\"default\":\"default\",\"vip\":\"vip\"}", 0, 0},
    {"payment_setting.compliance_confirmed", K_DENIED, NULL, 0, 0},
    {"payment_setting.compliance_terms_version", K_DENIED, NULL, 0, 0},
    {"quota_setting.enable_free_model_pre_consume", K_PRICING, "true", 0, 0},
    {"token_setting.max_user_tokens", K_INT, "1000", 1, 1000000},
};

static int def_cmp(const void *k, const void *d)
{
    return strcmp(k, ((const struct def *)d)->key);
}

static const struct def *def_of(const char *key)
{
    return bsearch(key, DEFS, sizeof DEFS / sizeof *DEFS, sizeof *DEFS, def_cmp);
}

struct kv {
    char *key, *value; /* owned */
};

struct mt_options {
    atomic_int refs;
    struct kv *kv; /* sorted by key */
    size_t n;
    struct mt_pricing *pricing;
};

/* ---- validation ---- */

int mt_options_code_in(const char *ranges, long code)
{
    const char *p = ranges;
    while (p && *p) {
        char *end;
        long a, b;
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        errno = 0;
        a = strtol(p, &end, 10);
        if (end == p || errno)
            return 0;
        b = a;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || errno)
                return 0;
            p = end;
        }
        if (code >= a && code <= b)
            return 1;
        while (*p == ' ')
            p++;
        if (*p && *p != ',')
            return 0;
    }
    return 0;
}

static int codes_ok(const char *v)
{
    const char *p = v;
    int any = 0;
    while (*p) {
        char *end;
        long a, b;
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        errno = 0;
        a = strtol(p, &end, 10);
        if (end == p || errno || a < 100 || a > 599)
            return 0;
        b = a;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || errno || b < a || b > 599)
                return 0;
            p = end;
        }
        any = 1;
        while (*p == ' ')
            p++;
        if (*p && *p != ',')
            return 0;
    }
    return any || !*v;
}

static int fail(char *err, size_t errlen, const char *key, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "option %s: %s", key, what);
    return CM_ERR_INVAL;
}

int mt_options_check(const char *key, const char *value, char *err, size_t errlen)
{
    const struct def *d;
    char *end;
    cJSON *j = NULL;
    int rc = CM_OK;

    if (!key || !*key || !value)
        return fail(err, errlen, key ? key : "(none)", "a key and a value are required");
    if (strlen(value) > (1u << 20))
        return fail(err, errlen, key, "value longer than 1 MiB");
    d = def_of(key);
    if (!d)
        return CM_OK;
    switch (d->kind) {
    case K_STR:
        break;
    case K_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            rc = fail(err, errlen, key, "must be \"true\" or \"false\"");
        break;
    case K_INT: {
        long long v;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (!*value || *end || errno || v < d->min || v > d->max) {
            char msg[96];
            snprintf(msg, sizeof msg, "must be an integer from %lld to %lld", (long long)d->min,
                     (long long)d->max);
            rc = fail(err, errlen, key, msg);
        }
        break;
    }
    case K_NUM: {
        double v;
        errno = 0;
        v = strtod(value, &end);
        if (!*value || *end || errno || !isfinite(v) || v < 0)
            rc = fail(err, errlen, key, "must be a number >= 0");
        break;
    }
    case K_OBJ:
    case K_ARR:
        if (cm_json_parse(value, strlen(value), NULL, &j, NULL) != CM_OK ||
            (d->kind == K_OBJ ? !cJSON_IsObject(j) : !cJSON_IsArray(j)))
            rc = fail(err, errlen, key,
                      d->kind == K_OBJ ? "must be a JSON object (sent as a string)"
                                       : "must be a JSON array (sent as a string)");
        cJSON_Delete(j);
        break;
    case K_CODES:
        if (!codes_ok(value))
            rc = fail(err, errlen, key, "must be status codes or ranges like \"401,500-503\"");
        break;
    case K_PRICING:
        rc = mt_pricing_check_option(key, value, err, errlen);
        if (rc == CM_ERR_NOTFOUND)
            rc = CM_OK;
        else if (rc && rc != CM_ERR_NOMEM)
            rc = CM_ERR_INVAL; /* parse errors, limits: all a bad value */
        break;
    case K_DENIED:
        if (err && errlen)
            snprintf(err, errlen, "option %s cannot be changed through the options API", key);
        rc = CM_ERR_DENIED;
        break;
    }
    return rc;
}

/* ---- snapshots ---- */

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static void free_kv(struct kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cm_free(kv[i].key);
        cm_free(kv[i].value);
    }
    cm_free(kv);
}

static void options_free(struct mt_options *o)
{
    if (!o)
        return;
    free_kv(o->kv, o->n);
    mt_pricing_free(o->pricing);
    cm_free(o);
}

/* index of @p key in the sorted array @p kv (@p n), or -1 */
static long find(const struct kv *kv, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, kv[mid].key);
        if (!c)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static int build_pricing(struct mt_options *o)
{
    struct mt_pricing_opts po;
    char err[256] = "";
    int rc;

    memset(&po, 0, sizeof po);
    for (size_t i = 0; i < o->n; i++)
        (void)mt_pricing_opts_set(&po, o->kv[i].key, o->kv[i].value);
    rc = mt_pricing_new(&po, &o->pricing, err, sizeof err);
    if (rc == CM_ERR_NOMEM)
        return rc;
    if (rc) { /* every value was checked alone; a combination may still fail */
        cm_log_error(NULL, "options: pricing: %s; using the default prices", err);
        rc = mt_pricing_new(NULL, &o->pricing, err, sizeof err);
    }
    return rc;
}

int mt_options_new(const struct mt_option_kv *rows, size_t n, const struct mt_options *prev,
                   struct mt_options **out)
{
    size_t ndef = sizeof DEFS / sizeof *DEFS, cap = ndef + n, k = 0;
    struct kv *all = NULL;
    struct mt_options *o = NULL;
    int rc = CM_ERR_NOMEM;

    if (!out || (n && !rows))
        return CM_ERR_INVAL;
    all = cm_calloc(cap ? cap : 1, sizeof *all);
    o = cm_calloc(1, sizeof *o);
    if (!all || !o)
        goto out;
    for (size_t i = 0; i < ndef; i++) {
        if (!DEFS[i].value)
            continue;
        all[k].key = cm_strdup(DEFS[i].key);
        all[k].value = cm_strdup(DEFS[i].value);
        if (!all[k].key || !all[k].value) {
            k++;
            goto out;
        }
        k++;
    }
    qsort(all, k, sizeof *all, kv_cmp);
    for (size_t i = 0; i < n; i++) {
        char err[256];
        const char *v = rows[i].value;
        long at;
        char *nv;
        if (!rows[i].key || !v)
            continue;
        int crc = mt_options_check(rows[i].key, v, err, sizeof err);
        if (crc == CM_ERR_NOMEM)
            goto out;
        if (crc == CM_ERR_INVAL) {
            const char *old = prev ? mt_options_get(prev, rows[i].key) : NULL;
            cm_log_warn(NULL, "options: %s; %s", err,
                        old ? "the previous value stays in force" : "the default applies");
            if (!old)
                continue;
            v = old;
        }
        nv = cm_strdup(v);
        if (!nv)
            goto out;
        at = find(all, k, rows[i].key);
        if (at >= 0) {
            cm_free(all[at].value);
            all[at].value = nv;
            continue;
        }
        all[k].key = cm_strdup(rows[i].key);
        all[k].value = nv;
        k++;
        if (!all[k - 1].key)
            goto out;
        qsort(all, k, sizeof *all, kv_cmp); /* rows are few (tens) */
    }
    o->kv = all;
    o->n = k;
    all = NULL;
    atomic_init(&o->refs, 1);
    rc = build_pricing(o);
    if (rc)
        goto out;
    *out = o;
    o = NULL;
out:
    if (all)
        free_kv(all, k);
    options_free(o);
    return rc;
}

void mt_options_ref(struct mt_options *o)
{
    if (o)
        atomic_fetch_add(&o->refs, 1);
}

void mt_options_unref(struct mt_options *o)
{
    if (o && atomic_fetch_sub(&o->refs, 1) == 1)
        options_free(o);
}

const char *mt_options_get(const struct mt_options *o, const char *key)
{
    long i = o && key ? find(o->kv, o->n, key) : -1;
    return i >= 0 ? o->kv[i].value : NULL;
}

int mt_options_bool(const struct mt_options *o, const char *key, int def)
{
    const char *v = mt_options_get(o, key);
    if (!v)
        return def;
    if (strcmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "false") == 0)
        return 0;
    return def;
}

int64_t mt_options_int(const struct mt_options *o, const char *key, int64_t def)
{
    const char *v = mt_options_get(o, key);
    char *end;
    long long x;
    if (!v || !*v)
        return def;
    errno = 0;
    x = strtoll(v, &end, 10);
    return *end || errno ? def : (int64_t)x;
}

double mt_options_double(const struct mt_options *o, const char *key, double def)
{
    const char *v = mt_options_get(o, key);
    char *end;
    double x;
    if (!v || !*v)
        return def;
    errno = 0;
    x = strtod(v, &end);
    return *end || errno || !isfinite(x) ? def : x;
}

size_t mt_options_count(const struct mt_options *o)
{
    return o ? o->n : 0;
}

struct mt_option_kv mt_options_at(const struct mt_options *o, size_t i)
{
    struct mt_option_kv r = {NULL, NULL};
    if (o && i < o->n) {
        r.key = o->kv[i].key;
        r.value = o->kv[i].value;
    }
    return r;
}

const struct mt_pricing *mt_options_pricing(const struct mt_options *o)
{
    return o ? o->pricing : NULL;
}
