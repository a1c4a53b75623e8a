/* SPDX-License-Identifier: MIT */
/*
 * price.c - USD prices -> ratios, option merge, prices in force, verify's expectation (see
 * price.h). Every money figure comes out of meterd's pricing module.
 */
#include "price.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M_TOKENS INT64_C(1000000)

static const char *const MAP_KEYS[MC_MAP__COUNT] = {"CompletionRatio", "CacheRatio",
                                                    "CreateCacheRatio", "ModelRatio"};
static const char *const MAP_DEFAULTS[MC_MAP__COUNT] = {
    MT_PRICING_DEFAULT_COMPLETION_RATIO, MT_PRICING_DEFAULT_CACHE_RATIO,
    MT_PRICING_DEFAULT_CREATE_CACHE_RATIO, MT_PRICING_DEFAULT_MODEL_RATIO};

const char *mc_price_map_key(enum mc_map m)
{
    return (unsigned)m < MC_MAP__COUNT ? MAP_KEYS[m] : "?";
}

static double round_sig(double v)
{
    char b[40];
    if (v == 0 || !isfinite(v))
        return v;
    snprintf(b, sizeof b, "%.*g", MC_PRICE_SIG_DIGITS, v);
    return strtod(b, NULL);
}

int mc_price_ratios(const struct mc_price_in *in, struct mc_ratios *out, char *err, size_t errlen)
{
    const char *m;

    if (errlen)
        err[0] = '\0';
    if (!in || !out || !in->model || !*in->model) {
        snprintf(err, errlen, "a model name is required");
        return CM_ERR_INVAL;
    }
    m = in->model;
    memset(out, 0, sizeof *out);
    if (!in->has_input || !in->has_output) {
        snprintf(err, errlen, "%s: --input and --output are required (USD per 1M tokens)", m);
        return CM_ERR_INVAL;
    }
    if (!isfinite(in->input) || !isfinite(in->output) || in->input < 0 || in->output < 0 ||
        (in->has_cached && (!isfinite(in->cached) || in->cached < 0)) ||
        (in->has_cache_write && (!isfinite(in->cache_write) || in->cache_write < 0))) {
        snprintf(err, errlen, "%s: prices must be finite numbers >= 0", m);
        return CM_ERR_INVAL;
    }
    if (in->input == 0) {
        if (in->output != 0 || (in->has_cached && in->cached != 0) ||
            (in->has_cache_write && in->cache_write != 0)) {
            snprintf(err, errlen,
                     "%s: --input 0 with a non-zero output/cached/cache-write price cannot be "
                     "expressed: NewAPI's ratios are relative to the input price",
                     m);
            return CM_ERR_INVAL;
        }
        return CM_OK; /* free model: ModelRatio 0, other maps untouched */
    }
    out->model_ratio = round_sig(in->input / 2.0);
    out->completion_ratio = round_sig(in->output / in->input);
    out->set_completion = 1;
    if (in->has_cached) {
        out->cache_ratio = round_sig(in->cached / in->input);
        out->set_cache = 1;
    }
    if (in->has_cache_write) {
        out->create_cache_ratio = round_sig(in->cache_write / in->input);
        out->set_create_cache = 1;
    }
    return CM_OK;
}

const char *mc_option_value(const cJSON *options, const char *key)
{
    const cJSON *it;

    if (!cJSON_IsArray(options) || !key)
        return NULL;
    cJSON_ArrayForEach(it, options)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "key");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0)
            return cJSON_IsString(v) ? v->valuestring : NULL;
    }
    return NULL;
}

/* the map @p m as meterd reads it: the option's text, else the built-in default */
static int load_map(const cJSON *options, enum mc_map m, cJSON **out, char *err, size_t errlen)
{
    const char *text = mc_option_value(options, MAP_KEYS[m]);
    struct cm_json_err je;
    int rc;

    if (!text || !*text)
        text = MAP_DEFAULTS[m];
    rc = cm_json_parse(text, strlen(text), NULL, out, &je);
    if (rc == CM_ERR_NOMEM)
        return rc;
    if (rc || !cJSON_IsObject(*out)) {
        snprintf(err, errlen,
                 "option %s in meterd is not a JSON object (%s); fix it before merging prices",
                 MAP_KEYS[m], rc ? je.msg : "another JSON value");
        if (!rc) {
            cJSON_Delete(*out);
            *out = NULL;
        }
        return CM_ERR_PARSE;
    }
    return CM_OK;
}

static int ratio_of(const struct mc_ratios *r, enum mc_map m, double *v)
{
    switch (m) {
    case MC_MAP_MODEL:
        *v = r->model_ratio;
        return 1;
    case MC_MAP_COMPLETION:
        *v = r->completion_ratio;
        return r->set_completion;
    case MC_MAP_CACHE:
        *v = r->cache_ratio;
        return r->set_cache;
    case MC_MAP_CREATE_CACHE:
        *v = r->create_cache_ratio;
        return r->set_create_cache;
    default:
        return 0;
    }
}

int mc_price_merge(const cJSON *options, const struct mc_price_in *in, size_t n,
                   char *out[MC_MAP__COUNT], char *err, size_t errlen)
{
    cJSON *map[MC_MAP__COUNT] = {0};
    struct mc_ratios *r = NULL;
    int rc = CM_OK;

    if (errlen)
        err[0] = '\0';
    for (int m = 0; m < MC_MAP__COUNT; m++)
        out[m] = NULL;
    if (!in || !n)
        return CM_ERR_INVAL;
    r = cm_calloc(n, sizeof *r);
    if (!r)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if ((rc = mc_price_ratios(&in[i], &r[i], err, errlen)) != CM_OK)
            goto out;
    for (int m = 0; m < MC_MAP__COUNT; m++) {
        const char *before = mc_option_value(options, MAP_KEYS[m]);
        int touched = 0;
        char *text = NULL;
        char msg[512];

        for (size_t i = 0; i < n; i++) {
            double v;
            if (!ratio_of(&r[i], (enum mc_map)m, &v))
                continue;
            if (!map[m] && (rc = load_map(options, (enum mc_map)m, &map[m], err, errlen)))
                goto out;
            if ((rc = cm_json_set_double(map[m], in[i].model, v)) != CM_OK)
                goto out;
            touched = 1;
        }
        if (!touched)
            continue;
        if ((rc = cm_json_print(map[m], &text, NULL)) != CM_OK)
            goto out;
        if (before && strcmp(before, text) == 0) {
            cm_free(text);
            continue;
        }
        out[m] = text;
        rc = mt_pricing_check_option(MAP_KEYS[m], text, msg, sizeof msg);
        if (rc == CM_ERR_NOTFOUND)
            rc = CM_OK;
        if (rc && rc != CM_ERR_NOMEM)
            snprintf(err, errlen, "meterd would refuse it: %s", msg);
        if (rc)
            goto out;
    }
out:
    for (int m = 0; m < MC_MAP__COUNT; m++) {
        cJSON_Delete(map[m]);
        if (rc) {
            cm_free(out[m]);
            out[m] = NULL;
        }
    }
    cm_free(r);
    return rc;
}

static int close_enough(double a, double b)
{
    double scale = fmax(fabs(a), fabs(b));
    return fabs(a - b) <= 1e-9 * (scale > 1 ? scale : 1);
}

int mc_price_check_applied(const cJSON *options, const struct mc_price_in *in, size_t n, char *err,
                           size_t errlen)
{
    cJSON *map[MC_MAP__COUNT] = {0};
    int rc = CM_OK;

    if (errlen)
        err[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        struct mc_ratios r;
        if ((rc = mc_price_ratios(&in[i], &r, err, errlen)) != CM_OK)
            goto out;
        for (int k = 0; k < MC_MAP__COUNT; k++) {
            /* ModelRatio first: the map that decides whether the model is priced at all */
            int m = (k + MC_MAP_MODEL) % MC_MAP__COUNT;
            const cJSON *e;
            double want;
            if (!ratio_of(&r, (enum mc_map)m, &want))
                continue;
            if (!map[m] && (rc = load_map(options, (enum mc_map)m, &map[m], err, errlen)))
                goto out;
            e = cJSON_GetObjectItemCaseSensitive(map[m], in[i].model);
            if (!cJSON_IsNumber(e)) {
                snprintf(err, errlen, "%s[\"%s\"] is missing in meterd after the update",
                         MAP_KEYS[m], in[i].model);
                rc = CM_ERR_INVAL;
                goto out;
            }
            if (!close_enough(e->valuedouble, want)) {
                snprintf(err, errlen, "%s[\"%s\"] is %.15g in meterd, expected %.15g", MAP_KEYS[m],
                         in[i].model, e->valuedouble, want);
                rc = CM_ERR_INVAL;
                goto out;
            }
        }
    }
out:
    for (int m = 0; m < MC_MAP__COUNT; m++)
        cJSON_Delete(map[m]);
    return rc;
}

int mc_price_snapshot(const cJSON *options, struct mt_pricing **out, char *err, size_t errlen)
{
    struct mt_pricing_opts o;
    const cJSON *it;

    memset(&o, 0, sizeof o);
    if (errlen)
        err[0] = '\0';
    cJSON_ArrayForEach(it, (cJSON_IsArray(options) ? options : NULL))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "key");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        if (cJSON_IsString(k) && cJSON_IsString(v))
            (void)mt_pricing_opts_set(&o, k->valuestring, v->valuestring);
    }
    return mt_pricing_new(&o, out, err, errlen);
}

/* USD that settlement charges for @p u at price @p pr */
static int usd_of(const struct mt_pricing *p, const struct mt_price *pr, const struct mt_usage *u,
                  double *usd)
{
    struct mt_charge c;
    int rc = mt_pricing_settle(pr, u, &c);
    if (!rc)
        *usd = mt_pricing_quota_to_usd(p, c.quota);
    return rc;
}

int mc_price_row(const struct mt_pricing *p, const char *model, struct mc_price_row *out)
{
    struct mt_price pr;
    struct mt_usage u;
    int rc;

    if (!p || !model || !*model || !out)
        return CM_ERR_INVAL;
    if (strlen(model) >= MT_PRICING_NAME_MAX)
        return CM_ERR_LIMIT;
    memset(out, 0, sizeof *out);
    rc = mt_pricing_model_price(p, model, "default", NULL, &pr);
    if (rc == CM_ERR_NOTFOUND || pr.unpriced) {
        out->unpriced = 1;
        rc = CM_OK;
    }
    if (rc)
        return rc;
    /* list prices: group ratio 1, whatever the default group's ratio is */
    pr.group_ratio = 1;
    pr.user_group_ratio = -1;
    out->per_call = pr.use_price;
    out->model_ratio = pr.model_ratio;
    out->completion_ratio = pr.completion_ratio;
    out->cache_ratio = pr.cache_ratio;
    out->create_cache_ratio = pr.create_cache_ratio;
    out->model_price = pr.model_price;
    if (pr.use_price) {
        memset(&u, 0, sizeof u);
        u.per_call = 1;
        return usd_of(p, &pr, &u, &out->usd_per_call);
    }
    memset(&u, 0, sizeof u);
    u.prompt_tokens = M_TOKENS;
    rc = usd_of(p, &pr, &u, &out->usd_input);
    if (!rc) {
        u.cached_tokens = M_TOKENS;
        rc = usd_of(p, &pr, &u, &out->usd_cached);
    }
    if (!rc) {
        u.cached_tokens = 0;
        u.cache_creation_tokens = M_TOKENS;
        rc = usd_of(p, &pr, &u, &out->usd_cache_write);
    }
    if (!rc) {
        memset(&u, 0, sizeof u);
        u.completion_tokens = M_TOKENS;
        rc = usd_of(p, &pr, &u, &out->usd_output);
    }
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void mc_price_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        cm_free(names[i]);
    cm_free(names);
}

int mc_price_models(const cJSON *options, char ***names, size_t *n)
{
    static const char *const keys[] = {"ModelRatio", "ModelPrice"};
    static const char *const defs[] = {MT_PRICING_DEFAULT_MODEL_RATIO,
                                       MT_PRICING_DEFAULT_MODEL_PRICE};
    cJSON *map[2] = {0};
    char **v = NULL;
    size_t cnt = 0, cap = 0, w;
    int rc = CM_OK;

    for (int k = 0; k < 2; k++) {
        const char *text = mc_option_value(options, keys[k]);
        const cJSON *e;
        if (!text || !*text)
            text = defs[k];
        rc = cm_json_parse(text, strlen(text), NULL, &map[k], NULL);
        if (rc == CM_OK && !cJSON_IsObject(map[k]))
            rc = CM_ERR_PARSE;
        if (rc)
            goto out;
        cJSON_ArrayForEach(e, map[k])
        {
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 64;
                char **nv = cm_realloc(v, nc * sizeof *nv);
                if (!nv) {
                    rc = CM_ERR_NOMEM;
                    goto out;
                }
                v = nv;
                cap = nc;
            }
            if (!(v[cnt] = cm_strdup(e->string))) {
                rc = CM_ERR_NOMEM;
                goto out;
            }
            cnt++;
        }
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_names);
    for (size_t i = w = 0; i < cnt; i++) {
        if (w && strcmp(v[w - 1], v[i]) == 0) {
            cm_free(v[i]);
            continue;
        }
        v[w++] = v[i];
    }
    cnt = w;
    *names = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
out:
    mc_price_names_free(v, cnt);
    cJSON_Delete(map[0]);
    cJSON_Delete(map[1]);
    return rc;
}

void mc_log_facts_cleanup(struct mc_log_facts *f)
{
    if (!f)
        return;
    cJSON_Delete(f->other);
    memset(f, 0, sizeof *f);
}

static int64_t opt_count(const cJSON *o, const char *name)
{
    int64_t v = 0;
    if (o && cm_json_opt_int64(o, name, 0, MT_PRICING_QUOTA_MAX, 0, &v, NULL) != CM_OK)
        v = 0;
    return v;
}

int mc_log_facts_read(const cJSON *row, struct mc_log_facts *f, char *err, size_t errlen)
{
    struct cm_json_err je;
    const cJSON *other;
    const char *sem = NULL;
    int rc;

    memset(f, 0, sizeof *f);
    if (errlen)
        err[0] = '\0';
    if ((rc = cm_json_get_string(row, "model_name", &f->model, &je)) ||
        (rc = cm_json_opt_string(row, "group", "", &f->group, &je)) ||
        (rc = cm_json_get_int64(row, "id", 0, CM_JSON_INT_MAX, &f->id, &je)) ||
        (rc = cm_json_get_int64(row, "quota", CM_JSON_INT_MIN, CM_JSON_INT_MAX, &f->quota, &je)) ||
        (rc = cm_json_get_int64(row, "prompt_tokens", 0, MT_PRICING_QUOTA_MAX,
                                &f->usage.prompt_tokens, &je)) ||
        (rc = cm_json_get_int64(row, "completion_tokens", 0, MT_PRICING_QUOTA_MAX,
                                &f->usage.completion_tokens, &je))) {
        snprintf(err, errlen, "log row: %s", je.msg);
        return rc;
    }
    other = cJSON_GetObjectItemCaseSensitive(row, "other");
    if (cJSON_IsString(other) && *other->valuestring) {
        rc = cm_json_parse(other->valuestring, strlen(other->valuestring), NULL, &f->other, &je);
        if (rc) {
            snprintf(err, errlen, "log row: field 'other' is not JSON: %s", je.msg);
            return rc;
        }
    } else if (cJSON_IsObject(other)) {
        if (!(f->other = cJSON_Duplicate(other, 1)))
            return CM_ERR_NOMEM;
    }
    if (f->other && !cJSON_IsObject(f->other)) {
        snprintf(err, errlen, "log row: field 'other' is not a JSON object");
        return CM_ERR_PARSE;
    }
    f->usage.cached_tokens = opt_count(f->other, "cache_tokens");
    f->usage.cache_creation_tokens = opt_count(f->other, "cache_creation_tokens");
    f->usage.cache_creation_tokens_1h = opt_count(f->other, "cache_creation_tokens_1h");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->other, "image")))
        f->usage.image_tokens = opt_count(f->other, "image_output");
    f->usage.audio_prompt_tokens = opt_count(f->other, "audio_input");
    f->usage.audio_completion_tokens = opt_count(f->other, "audio_output");
    f->usage.local_count = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(f->other, "admin_info"), "local_count_tokens"));
    if (f->other && cm_json_opt_string(f->other, "usage_semantic", "", &sem, NULL) == CM_OK &&
        strcmp(sem, "anthropic") == 0)
        f->usage.semantic = MT_USAGE_ANTHROPIC;
    return CM_OK;
}

int mc_price_expected(const struct mt_pricing *p, const struct mc_log_facts *f,
                      const char *user_group, struct mt_charge *out, char *err, size_t errlen)
{
    struct mt_price pr;
    const char *group;
    int rc;

    if (errlen)
        err[0] = '\0';
    if (!p || !f || !f->model || !out)
        return CM_ERR_INVAL;
    group = f->group && *f->group ? f->group : "default";
    rc = mt_pricing_model_price(p, f->model, group, user_group, &pr);
    if (rc && rc != CM_ERR_NOTFOUND) {
        snprintf(err, errlen, "cannot price model \"%s\" in group \"%s\": %s", f->model, group,
                 cm_err_str(rc));
        return rc;
    }
    rc = mt_pricing_settle(&pr, &f->usage, out);
    if (rc)
        snprintf(err, errlen, "the log row's usage cannot be settled: %s", cm_err_str(rc));
    return rc;
}
