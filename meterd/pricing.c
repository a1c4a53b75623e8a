/* SPDX-License-Identifier: MIT */
/*
 * pricing.c - pricing options -> immutable snapshot; (price, usage) -> quota.
 *
 * Entry points: mt_pricing_new/free (table-driven option parsing, each map a sorted array
 * searched by bisection), mt_pricing_model_price, mt_pricing_preconsume, mt_pricing_settle,
 * mt_pricing_other_json, mt_pricing_estimate_tokens and the display conversions.
 * Money arithmetic follows NewAPI exactly: the reservation is float64 then truncated (Go
 * int(float64)); settlement is exact decimal (shopspring/decimal): each float64 ratio becomes
 * its shortest round-trip decimal, products and sums are carried out on a fixed-size big
 * integer, then rounded half away from zero. No I/O, no clock, no globals, no logging.
 */
#include "pricing.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

/* exact equality, on purpose (both sides finite: callers check); -Wfloat-equal safe */
static int dbl_eq(double a, double b)
{
    return !(a < b) && !(a > b);
}

/* ---- snapshot ---- */

struct entry {
    const char *name; /* points into the owning map's blob */
    double v;
};

/* a sorted name -> number map: two allocations (entries, names) */
struct map {
    struct entry *e;
    size_t n;
    char *blob;
};

/* GroupGroupRatio: user group -> (using group -> ratio), inner maps slices of one array */
struct gentry {
    const char *name;
    struct entry *inner;
    size_t n_inner;
};

struct gmap {
    struct gentry *g;
    size_t n;
    struct entry *all;
    char *blob;
};

struct mt_pricing {
    struct map model_ratio, completion_ratio, cache_ratio, create_cache_ratio, model_price;
    struct map image_ratio, audio_ratio, audio_completion_ratio, group_ratio;
    struct gmap group_group_ratio;
    double quota_per_unit;
    int64_t pre_consumed_quota;
    int self_use;
    int display_currency;
    int free_pre_consume;
};

/* ---- option table: one row per key ---- */

enum okind { K_MAP, K_GMAP, K_QPU, K_PRE, K_BOOL };

struct optdef {
    const char *key; /* NewAPI option key */
    size_t opts_off; /* const char * field in struct mt_pricing_opts */
    enum okind kind; /* how the text is parsed */
    const char *def; /* text used when the option is absent (spec 6.2) */
    size_t dst_off;  /* destination in struct mt_pricing */
};

#define OPT(k, f, kind, def, dst)                                                                  \
    {                                                                                              \
        k, offsetof(struct mt_pricing_opts, f), kind, def, offsetof(struct mt_pricing, dst)        \
    }

static const struct optdef optdefs[] = {
    OPT("ModelRatio", model_ratio, K_MAP, MT_PRICING_DEFAULT_MODEL_RATIO, model_ratio),
    OPT("CompletionRatio", completion_ratio, K_MAP, MT_PRICING_DEFAULT_COMPLETION_RATIO,
        completion_ratio),
    OPT("CacheRatio", cache_ratio, K_MAP, MT_PRICING_DEFAULT_CACHE_RATIO, cache_ratio),
    OPT("CreateCacheRatio", create_cache_ratio, K_MAP, MT_PRICING_DEFAULT_CREATE_CACHE_RATIO,
        create_cache_ratio),
    OPT("ModelPrice", model_price, K_MAP, MT_PRICING_DEFAULT_MODEL_PRICE, model_price),
    OPT("ImageRatio", image_ratio, K_MAP, MT_PRICING_DEFAULT_IMAGE_RATIO, image_ratio),
    OPT("AudioRatio", audio_ratio, K_MAP, MT_PRICING_DEFAULT_AUDIO_RATIO, audio_ratio),
    OPT("AudioCompletionRatio", audio_completion_ratio, K_MAP,
        MT_PRICING_DEFAULT_AUDIO_COMPLETION_RATIO, audio_completion_ratio),
    OPT("GroupRatio", group_ratio, K_MAP, MT_PRICING_DEFAULT_GROUP_RATIO, group_ratio),
    OPT("GroupGroupRatio", group_group_ratio, K_GMAP, MT_PRICING_DEFAULT_GROUP_GROUP_RATIO,
        group_group_ratio),
    OPT("QuotaPerUnit", quota_per_unit, K_QPU, "500000", quota_per_unit),
    OPT("PreConsumedQuota", pre_consumed_quota, K_PRE, "500", pre_consumed_quota),
    OPT("SelfUseModeEnabled", self_use_mode_enabled, K_BOOL, "false", self_use),
    OPT("DisplayInCurrencyEnabled", display_in_currency, K_BOOL, "true", display_currency),
    OPT("quota_setting.enable_free_model_pre_consume", free_model_pre_consume, K_BOOL, "true",
        free_pre_consume),
};

#define N_OPTDEFS (sizeof optdefs / sizeof optdefs[0])

static const struct optdef *find_optdef(const char *key)
{
    size_t i;
    for (i = 0; i < N_OPTDEFS; i++)
        if (strcmp(optdefs[i].key, key) == 0)
            return &optdefs[i];
    return NULL;
}

static const char **opts_field(struct mt_pricing_opts *o, const struct optdef *d)
{
    return (const char **)(void *)((char *)o + d->opts_off);
}

static const char *opts_value(const struct mt_pricing_opts *o, const struct optdef *d)
{
    const char *v = NULL;
    if (o)
        memcpy(&v, (const char *)o + d->opts_off, sizeof v);
    return v ? v : d->def;
}

static void *dst_field(struct mt_pricing *p, const struct optdef *d)
{
    return (char *)p + d->dst_off;
}

/* ---- error messages ---- */

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * Copies an operator-chosen name for a message: at most 64 bytes, control bytes, quotes and
 * backslashes as '?', never cut inside a UTF-8 sequence, "..." when shortened.
 */
static void clean_name(char *dst, size_t cap, const char *src)
{
    size_t i = 0, o = 0, limit = cap > 68 ? 64 : (cap > 4 ? cap - 4 : 0);
    unsigned char c;

    while (src[i] && o < limit) {
        c = (unsigned char)src[i];
        dst[o++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
        i++;
    }
    if (src[i]) {
        size_t k = 0, need;
        while (k < o && ((unsigned char)dst[o - 1 - k] & 0xc0) == 0x80)
            k++;
        if (k < o) { /* dst[o-1-k] leads a sequence of `need` bytes: drop it if cut */
            c = (unsigned char)dst[o - 1 - k];
            need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (k + 1 < need)
                o -= k + 1;
        }
        if (cap >= 4) {
            memcpy(dst + o, "...", 3);
            o += 3;
        }
    }
    if (cap)
        dst[o < cap ? o : cap - 1] = '\0';
}

/* `"outer"."name"` or `"name"` for a message */
static void entry_label(char *dst, size_t cap, const char *outer, const char *name)
{
    char a[72], b[72];
    clean_name(b, sizeof b, name);
    if (outer) {
        clean_name(a, sizeof a, outer);
        snprintf(dst, cap, "\"%s\".\"%s\"", a, b);
    } else {
        snprintf(dst, cap, "\"%s\"", b);
    }
}

/* ---- parsing ---- */

static int parse_json(const char *key, const char *text, unsigned depth, cJSON **root, char *err,
                      size_t errlen)
{
    struct cm_json_parse_opts po = {depth, MT_PRICING_OPTION_MAX, 0};
    struct cm_json_err je;
    size_t len = strnlen(text, (size_t)MT_PRICING_OPTION_MAX + 1);
    char label[160];
    int rc;

    if (len > MT_PRICING_OPTION_MAX) {
        seterr(err, errlen, "%s: value is larger than %u bytes", key, MT_PRICING_OPTION_MAX);
        return CM_ERR_LIMIT;
    }
    memset(&je, 0, sizeof je);
    rc = cm_json_parse(text, len, &po, root, &je);
    if (rc == CM_OK)
        return CM_OK;
    if (rc == CM_ERR_NOMEM) {
        seterr(err, errlen, "%s: out of memory", key);
    } else if (rc == CM_ERR_PARSE && je.field[0]) {
        entry_label(label, sizeof label, NULL, je.field);
        seterr(err, errlen, "%s: entry %s is given more than once", key, label);
    } else if (rc == CM_ERR_LIMIT) {
        seterr(err, errlen, "%s: JSON nested too deeply", key);
    } else {
        seterr(err, errlen, "%s: not valid JSON (%s)", key, je.msg);
    }
    return rc;
}

static int check_name(const char *key, const char *outer, const char *name, char *err,
                      size_t errlen)
{
    char label[160];
    size_t i, n = strlen(name);

    if (n == 0) {
        seterr(err, errlen, "%s: an entry has an empty name", key);
        return CM_ERR_INVAL;
    }
    if (n >= MT_PRICING_NAME_MAX) {
        entry_label(label, sizeof label, outer, name);
        seterr(err, errlen, "%s: entry %s: name longer than %d bytes", key, label,
               MT_PRICING_NAME_MAX - 1);
        return CM_ERR_LIMIT;
    }
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            entry_label(label, sizeof label, outer, name);
            seterr(err, errlen, "%s: entry %s: name contains a control character", key, label);
            return CM_ERR_INVAL;
        }
    return CM_OK;
}

/* 0, or a finite number in [MT_PRICING_VALUE_MIN, MT_PRICING_VALUE_MAX] */
static int value_in_range(double v)
{
    return isfinite(v) &&
           (dbl_eq(v, 0.0) || (v >= MT_PRICING_VALUE_MIN && v <= MT_PRICING_VALUE_MAX));
}

static int check_value(const char *key, const char *outer, const cJSON *item, double *out,
                       char *err, size_t errlen)
{
    char label[160];
    double v;

    entry_label(label, sizeof label, outer, item->string);
    if (!cJSON_IsNumber(item)) {
        seterr(err, errlen, "%s: entry %s: value must be a number", key, label);
        return CM_ERR_INVAL;
    }
    v = item->valuedouble;
    if (!isfinite(v)) {
        seterr(err, errlen, "%s: entry %s: value is not a finite number", key, label);
        return CM_ERR_INVAL;
    }
    if (v < 0) {
        seterr(err, errlen, "%s: entry %s: value must not be negative (%g)", key, label, v);
        return CM_ERR_INVAL;
    }
    if (!value_in_range(v)) {
        seterr(err, errlen, "%s: entry %s: value %g is out of range (0 or %g..%g)", key, label, v,
               MT_PRICING_VALUE_MIN, MT_PRICING_VALUE_MAX);
        return CM_ERR_INVAL;
    }
    *out = v + 0.0; /* -0 -> 0 */
    return CM_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int cmp_gentry(const void *a, const void *b)
{
    return strcmp(((const struct gentry *)a)->name, ((const struct gentry *)b)->name);
}

/* checks a JSON object of numbers; counts its entries and name bytes (with NULs) */
static int scan_object(const char *key, const char *outer, const cJSON *obj, size_t *n,
                       size_t *bytes, char *err, size_t errlen)
{
    const cJSON *it;
    char label[160];
    double v;
    int rc;

    if (!cJSON_IsObject(obj)) {
        if (outer) {
            entry_label(label, sizeof label, NULL, outer);
            seterr(err, errlen, "%s: entry %s: value must be a JSON object", key, label);
        } else {
            seterr(err, errlen, "%s: must be a JSON object", key);
        }
        return CM_ERR_INVAL;
    }
    *n = 0;
    for (it = obj->child; it; it = it->next) {
        if (++*n > MT_PRICING_MAX_ENTRIES) {
            seterr(err, errlen, "%s: too many entries (at most %d)", key, MT_PRICING_MAX_ENTRIES);
            return CM_ERR_LIMIT;
        }
        rc = check_name(key, outer, it->string, err, errlen);
        if (rc)
            return rc;
        rc = check_value(key, outer, it, &v, err, errlen);
        if (rc)
            return rc;
        *bytes += strlen(it->string) + 1;
    }
    return CM_OK;
}

/* copies the (already checked) members of @p obj into e[0..] and names into *blob_pos */
static void fill_entries(const cJSON *obj, struct entry *e, char **blob_pos)
{
    const cJSON *it;
    size_t i = 0, len;

    for (it = obj->child; it; it = it->next, i++) {
        len = strlen(it->string) + 1;
        memcpy(*blob_pos, it->string, len);
        e[i].name = *blob_pos;
        e[i].v = it->valuedouble + 0.0;
        *blob_pos += len;
    }
    qsort(e, i, sizeof *e, cmp_entry);
}

static int parse_map(const char *key, const char *text, struct map *out, char *err, size_t errlen)
{
    cJSON *root = NULL;
    struct entry *e = NULL;
    char *blob = NULL, *pos;
    size_t n = 0, bytes = 0;
    int rc;

    rc = parse_json(key, text, 2, &root, err, errlen);
    if (rc)
        goto out;
    rc = scan_object(key, NULL, root, &n, &bytes, err, errlen);
    if (rc)
        goto out;
    e = cm_calloc(n ? n : 1, sizeof *e);
    blob = cm_malloc(bytes ? bytes : 1);
    if (!e || !blob) {
        seterr(err, errlen, "%s: out of memory", key);
        rc = CM_ERR_NOMEM;
        goto out;
    }
    pos = blob;
    fill_entries(root, e, &pos);
    out->e = e;
    out->n = n;
    out->blob = blob;
    e = NULL;
    blob = NULL;
out:
    cJSON_Delete(root);
    cm_free(e);
    cm_free(blob);
    return rc;
}

static int parse_gmap(const char *key, const char *text, struct gmap *out, char *err, size_t errlen)
{
    cJSON *root = NULL;
    const cJSON *it;
    struct gentry *g = NULL;
    struct entry *all = NULL;
    char *blob = NULL, *pos;
    size_t n = 0, total = 0, bytes = 0, k, i = 0, off = 0;
    int rc;

    rc = parse_json(key, text, 3, &root, err, errlen);
    if (rc)
        goto out;
    if (!cJSON_IsObject(root)) {
        seterr(err, errlen, "%s: must be a JSON object", key);
        rc = CM_ERR_INVAL;
        goto out;
    }
    for (it = root->child; it; it = it->next) {
        if (++n > MT_PRICING_MAX_ENTRIES) {
            seterr(err, errlen, "%s: too many entries (at most %d)", key, MT_PRICING_MAX_ENTRIES);
            rc = CM_ERR_LIMIT;
            goto out;
        }
        rc = check_name(key, NULL, it->string, err, errlen);
        if (rc)
            goto out;
        bytes += strlen(it->string) + 1;
        rc = scan_object(key, it->string, it, &k, &bytes, err, errlen);
        if (rc)
            goto out;
        total += k;
    }
    g = cm_calloc(n ? n : 1, sizeof *g);
    all = cm_calloc(total ? total : 1, sizeof *all);
    blob = cm_malloc(bytes ? bytes : 1);
    if (!g || !all || !blob) {
        seterr(err, errlen, "%s: out of memory", key);
        rc = CM_ERR_NOMEM;
        goto out;
    }
    pos = blob;
    for (it = root->child; it; it = it->next, i++) {
        size_t len = strlen(it->string) + 1, m = 0;
        const cJSON *c;
        memcpy(pos, it->string, len);
        g[i].name = pos;
        pos += len;
        for (c = it->child; c; c = c->next)
            m++;
        g[i].inner = all + off;
        g[i].n_inner = m;
        fill_entries(it, all + off, &pos);
        off += m;
    }
    qsort(g, n, sizeof *g, cmp_gentry);
    out->g = g;
    out->n = n;
    out->all = all;
    out->blob = blob;
    g = NULL;
    all = NULL;
    blob = NULL;
out:
    cJSON_Delete(root);
    cm_free(g);
    cm_free(all);
    cm_free(blob);
    return rc;
}

static int parse_scalar_json(const char *key, const char *text, cJSON **root, char *err,
                             size_t errlen)
{
    int rc = parse_json(key, text, 1, root, err, errlen);
    if (rc)
        return rc;
    if (!cJSON_IsNumber(*root)) {
        seterr(err, errlen, "%s: must be a number", key);
        cJSON_Delete(*root);
        *root = NULL;
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

static int parse_qpu(const char *key, const char *text, double *out, char *err, size_t errlen)
{
    cJSON *root = NULL;
    double v;
    int rc = parse_scalar_json(key, text, &root, err, errlen);
    if (rc)
        return rc;
    v = root->valuedouble;
    cJSON_Delete(root);
    if (!isfinite(v) || v < MT_PRICING_VALUE_MIN || v > MT_PRICING_VALUE_MAX) {
        seterr(err, errlen, "%s: must be a number between %g and %g", key, MT_PRICING_VALUE_MIN,
               MT_PRICING_VALUE_MAX);
        return CM_ERR_INVAL;
    }
    *out = v;
    return CM_OK;
}

static int parse_pre(const char *key, const char *text, int64_t *out, char *err, size_t errlen)
{
    cJSON *root = NULL;
    int rc = parse_scalar_json(key, text, &root, err, errlen);
    if (rc)
        return rc;
    rc = cm_json_to_int64(root, 0, MT_PRICING_QUOTA_MAX, out);
    cJSON_Delete(root);
    if (rc)
        seterr(err, errlen, "%s: must be an integer between 0 and %lld", key,
               (long long)MT_PRICING_QUOTA_MAX);
    return rc;
}

static int parse_bool(const char *key, const char *text, int *out, char *err, size_t errlen)
{
    if (strcmp(text, "true") == 0) {
        *out = 1;
    } else if (strcmp(text, "false") == 0) {
        *out = 0;
    } else {
        seterr(err, errlen, "%s: must be \"true\" or \"false\"", key);
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

static int parse_one(struct mt_pricing *p, const struct optdef *d, const char *text, char *err,
                     size_t errlen)
{
    void *dst = dst_field(p, d);
    switch (d->kind) {
    case K_MAP:
        return parse_map(d->key, text, dst, err, errlen);
    case K_GMAP:
        return parse_gmap(d->key, text, dst, err, errlen);
    case K_QPU:
        return parse_qpu(d->key, text, dst, err, errlen);
    case K_PRE:
        return parse_pre(d->key, text, dst, err, errlen);
    case K_BOOL:
        return parse_bool(d->key, text, dst, err, errlen);
    }
    return CM_ERR_INTERNAL;
}

int mt_pricing_opts_set(struct mt_pricing_opts *o, const char *key, const char *value)
{
    const struct optdef *d;
    if (!o || !key)
        return CM_ERR_INVAL;
    d = find_optdef(key);
    if (!d)
        return CM_ERR_NOTFOUND;
    *opts_field(o, d) = value;
    return CM_OK;
}

void mt_pricing_free(struct mt_pricing *p)
{
    size_t i;
    if (!p)
        return;
    for (i = 0; i < N_OPTDEFS; i++) {
        if (optdefs[i].kind == K_MAP) {
            struct map *m = dst_field(p, &optdefs[i]);
            cm_free(m->e);
            cm_free(m->blob);
        } else if (optdefs[i].kind == K_GMAP) {
            struct gmap *g = dst_field(p, &optdefs[i]);
            cm_free(g->g);
            cm_free(g->all);
            cm_free(g->blob);
        }
    }
    cm_free(p);
}

int mt_pricing_check_option(const char *key, const char *value, char *err, size_t errlen)
{
    struct mt_pricing *p = NULL;
    const struct optdef *d;
    int rc;

    seterr(err, errlen, "%s", "");
    if (!key || !value) {
        seterr(err, errlen, "option key and value are required");
        return CM_ERR_INVAL;
    }
    d = find_optdef(key);
    if (!d)
        return CM_ERR_NOTFOUND;
    p = cm_calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "%s: out of memory", key);
        return CM_ERR_NOMEM;
    }
    rc = parse_one(p, d, value, err, errlen);
    mt_pricing_free(p);
    return rc;
}

int mt_pricing_new(const struct mt_pricing_opts *opts, struct mt_pricing **out, char *err,
                   size_t errlen)
{
    struct mt_pricing *p = NULL;
    size_t i;
    int rc = CM_OK;

    seterr(err, errlen, "%s", "");
    if (!out) {
        seterr(err, errlen, "no output pointer");
        return CM_ERR_INVAL;
    }
    p = cm_calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "pricing: out of memory");
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < N_OPTDEFS; i++) {
        rc = parse_one(p, &optdefs[i], opts_value(opts, &optdefs[i]), err, errlen);
        if (rc)
            goto out;
    }
    *out = p;
    p = NULL;
out:
    mt_pricing_free(p);
    return rc;
}

/* ---- snapshot getters ---- */

static const struct entry *map_find(const struct entry *e, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, e[mid].name);
        if (c == 0)
            return &e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int map_get(const struct map *m, const char *name, double *v)
{
    const struct entry *e = name ? map_find(m->e, m->n, name) : NULL;
    if (!e)
        return 0;
    *v = e->v;
    return 1;
}

/* exact name, then the normalised one (NULL when it is the same) */
static int map_get2(const struct map *m, const char *name, const char *norm, double *v)
{
    return map_get(m, name, v) || (norm && map_get(m, norm, v));
}

double mt_pricing_quota_per_unit(const struct mt_pricing *p)
{
    return p ? p->quota_per_unit : MT_PRICING_QUOTA_PER_UNIT_DEFAULT;
}

int64_t mt_pricing_pre_consumed_quota(const struct mt_pricing *p)
{
    return p ? p->pre_consumed_quota : MT_PRICING_PRE_CONSUMED_DEFAULT;
}

int mt_pricing_self_use_mode(const struct mt_pricing *p)
{
    return p ? p->self_use : 0;
}

int mt_pricing_display_in_currency(const struct mt_pricing *p)
{
    return p ? p->display_currency : 1;
}

int mt_pricing_group_at(const struct mt_pricing *p, size_t i, const char **name, double *ratio)
{
    if (!p || !name || !ratio)
        return CM_ERR_INVAL;
    if (i >= p->group_ratio.n)
        return CM_ERR_NOTFOUND;
    *name = p->group_ratio.e[i].name;
    *ratio = p->group_ratio.e[i].v;
    return CM_OK;
}

int mt_pricing_has_group(const struct mt_pricing *p, const char *group)
{
    double v;
    return p && group && map_get(&p->group_ratio, group, &v);
}

/* ---- model names ---- */

static int has_prefix(const char *s, const char *pfx)
{
    return strncmp(s, pfx, strlen(pfx)) == 0;
}

static int has_suffix(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && memcmp(s + n - m, sfx, m) == 0;
}

/* NULL when the name does not change (see mt_pricing_match_name()) */
static const char *normalize(const char *model, char *buf, size_t cap)
{
    static const char *const gemini[] = {"gemini-2.5-flash-lite", "gemini-2.5-flash",
                                         "gemini-2.5-pro"};
    size_t i, n;

    if (has_prefix(model, "gpt-4-gizmo-") && strcmp(model, "gpt-4-gizmo-*") != 0)
        return "gpt-4-gizmo-*";
    if (has_prefix(model, "gpt-4o-gizmo-") && strcmp(model, "gpt-4o-gizmo-*") != 0)
        return "gpt-4o-gizmo-*";
    for (i = 0; i < sizeof gemini / sizeof gemini[0]; i++) {
        n = strlen(gemini[i]);
        if (strncmp(model, gemini[i], n) == 0 && has_prefix(model + n, "-thinking-") &&
            model[n + 10] && strcmp(model + n + 10, "*") != 0) {
            if (!buf || n + 12 > cap)
                return NULL;
            memcpy(buf, gemini[i], n);
            memcpy(buf + n, "-thinking-*", 12);
            return buf;
        }
    }
    return NULL;
}

const char *mt_pricing_match_name(const char *model, char *buf, size_t cap)
{
    const char *n;
    if (!model)
        return NULL;
    n = normalize(model, buf, cap);
    return n ? n : model;
}

/*
 * The built-in CompletionRatio of spec 5.2, used only when the operator's map has no entry
 * (NewAPI's "locked" values are plain defaults here). Most specific rules first.
 */
static double default_completion_ratio(const char *m)
{
    static const struct {
        const char *name;
        double v;
    } exact[] = {{"chatgpt-4o-latest", 3},
                 {"gpt-4o-2024-05-13", 3},
                 {"gpt-3.5-turbo", 3},
                 {"gemini-2.5-pro", 8}},
      prefix[] = {{"gpt-5.4-nano", 6.25},
                  {"gpt-5.4", 6},
                  {"gpt-5.5", 6},
                  {"gpt-5", 8},
                  {"o1", 4},
                  {"o3", 4},
                  {"claude-3", 5},
                  {"claude-sonnet-4", 5},
                  {"claude-opus-4", 5},
                  {"claude-haiku-4", 5},
                  {"gpt-4-turbo", 3},
                  {"gpt-4.5-preview", 2},
                  {"mistral-", 3},
                  {"gemini-1.5", 4},
                  {"gemini-2.0", 4},
                  {"gpt-4o", 4}};
    size_t i;

    for (i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(m, exact[i].name) == 0)
            return exact[i].v;
    if (has_prefix(m, "gpt-3.5")) {
        if (has_suffix(m, "0125"))
            return 3;
        if (has_suffix(m, "1106"))
            return 2;
        return 4.0 / 3.0;
    }
    for (i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (has_prefix(m, prefix[i].name))
            return prefix[i].v;
    if (has_prefix(m, "gpt-"))
        return 2;
    return 1;
}

int mt_pricing_model_price(const struct mt_pricing *p, const char *model, const char *group,
                           const char *user_group, struct mt_price *out)
{
    struct mt_price r;
    char nbuf[MT_PRICING_NAME_MAX + 16];
    const char *norm, *ug;
    const struct gentry *ge = NULL;
    double v;
    size_t lo = 0, hi;

    if (!p || !model || !*model || !out)
        return CM_ERR_INVAL;
    memset(&r, 0, sizeof r);
    norm = normalize(model, nbuf, sizeof nbuf);
    r.quota_per_unit = p->quota_per_unit;
    r.model_price = -1;
    if (map_get2(&p->model_price, model, norm, &v)) {
        r.use_price = 1;
        r.model_price = v;
    } else if (!map_get2(&p->model_ratio, model, norm, &r.model_ratio)) {
        r.unpriced = 1;
        r.model_ratio = MT_PRICING_UNSET_RATIO;
    }
    if (!map_get2(&p->completion_ratio, model, norm, &r.completion_ratio))
        r.completion_ratio = default_completion_ratio(norm ? norm : model);
    if (!map_get(&p->cache_ratio, model, &r.cache_ratio))
        r.cache_ratio = MT_PRICING_CACHE_RATIO_DEFAULT;
    if (!map_get2(&p->create_cache_ratio, model, norm, &r.create_cache_ratio))
        r.create_cache_ratio = MT_PRICING_CREATE_CACHE_DEFAULT;
    r.create_cache_ratio_1h = r.create_cache_ratio * 6.0 / 3.75;
    if (!map_get2(&p->image_ratio, model, norm, &r.image_ratio))
        r.image_ratio = 1;
    if (!map_get2(&p->audio_ratio, model, norm, &r.audio_ratio))
        r.audio_ratio = 1;
    if (!map_get2(&p->audio_completion_ratio, model, norm, &r.audio_completion_ratio))
        r.audio_completion_ratio = 1;

    r.group_ratio = 1;
    r.user_group_ratio = -1;
    if (group && map_get(&p->group_ratio, group, &v)) {
        r.group_found = 1;
        r.group_ratio = v;
    }
    ug = user_group ? user_group : group;
    hi = p->group_group_ratio.n;
    while (ug && group && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ug, p->group_group_ratio.g[mid].name);
        if (c == 0) {
            ge = &p->group_group_ratio.g[mid];
            break;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (ge) {
        const struct entry *e = map_find(ge->inner, ge->n_inner, group);
        if (e) {
            r.user_group_ratio = e->v;
            r.group_ratio = e->v;
        }
    }
    *out = r;
    return (r.unpriced && !p->self_use) ? CM_ERR_NOTFOUND : CM_OK;
}

/* ---- pre-consumption: float64, truncated ---- */

static int price_member_ok(double v, double max)
{
    return isfinite(v) && (dbl_eq(v, 0.0) || (v >= MT_PRICING_VALUE_MIN && v <= max));
}

static int price_ok(const struct mt_price *pr)
{
    const double max = MT_PRICING_VALUE_MAX;
    if (pr->use_price && !price_member_ok(pr->model_price, max))
        return 0;
    return price_member_ok(pr->model_ratio, max) && price_member_ok(pr->completion_ratio, max) &&
           price_member_ok(pr->cache_ratio, max) && price_member_ok(pr->create_cache_ratio, max) &&
           price_member_ok(pr->create_cache_ratio_1h, 2 * max) &&
           price_member_ok(pr->image_ratio, max) && price_member_ok(pr->audio_ratio, max) &&
           price_member_ok(pr->audio_completion_ratio, max) &&
           price_member_ok(pr->group_ratio, max) && pr->quota_per_unit > 0 &&
           price_member_ok(pr->quota_per_unit, max);
}

/* Go's int(x) for x >= 0, clamped at MT_PRICING_QUOTA_MAX */
static int64_t trunc_clamp(double x, int *clamped)
{
    if (!(x <= (double)MT_PRICING_QUOTA_MAX)) { /* also NaN */
        *clamped = 1;
        return MT_PRICING_QUOTA_MAX;
    }
    return x > 0 ? (int64_t)x : 0;
}

int mt_pricing_preconsume(const struct mt_pricing *p, const struct mt_price *price,
                          int64_t prompt_estimate, int64_t max_tokens, struct mt_preconsume *out)
{
    struct mt_preconsume r = {0, 0, 0};
    int64_t tokens;
    double x;

    if (!p || !price || !out || prompt_estimate < 0 || prompt_estimate > MT_PRICING_QUOTA_MAX ||
        max_tokens < 0 || max_tokens > MT_PRICING_QUOTA_MAX || !price_ok(price))
        return CM_ERR_INVAL;
    if (!p->free_pre_consume &&
        (dbl_eq(price->use_price ? price->model_price : price->model_ratio, 0.0) ||
         dbl_eq(price->group_ratio, 0.0))) {
        r.skip = 1;
        *out = r;
        return CM_OK;
    }
    if (price->use_price) {
        x = price->model_price * price->quota_per_unit * price->group_ratio;
    } else {
        tokens = prompt_estimate > p->pre_consumed_quota ? prompt_estimate : p->pre_consumed_quota;
        tokens += max_tokens; /* both <= 2^53: no overflow */
        if (tokens > MT_PRICING_QUOTA_MAX)
            tokens = MT_PRICING_QUOTA_MAX;
        x = (double)tokens * (price->model_ratio * price->group_ratio);
    }
    r.quota = trunc_clamp(x, &r.clamped);
    *out = r;
    return CM_OK;
}

int mt_pricing_trust_bypass(const struct mt_pricing *p, int64_t user_quota, int token_unlimited,
                            int64_t token_remain_quota)
{
    int clamped = 0;
    int64_t trust = trunc_clamp(MT_PRICING_TRUST_UNITS * mt_pricing_quota_per_unit(p), &clamped);
    return user_quota > trust && (token_unlimited || token_remain_quota > trust);
}

/* ---- exact decimal arithmetic for settlement ---- */

/* value = m / 10^s */
struct dec {
    uint64_t m;
    unsigned s;
};

/*
 * The shortest decimal that reads back to @p v (what decimal.NewFromFloat keeps): the first
 * of %.0e .. %.16e whose strtod() is @p v. @p v must be 0 or in [1e-12, 2e12] (checked by
 * the callers), so m < 10^17 and s <= 28. The separator between digits is skipped whatever
 * it is, so a caller's locale cannot break the parse.
 */
static int dec_from_double(double v, struct dec *d)
{
    char buf[40];
    uint64_t m = 0;
    long e10;
    int prec, ndig = 0, exp_adj;
    const char *c;
    char *end;

    if (dbl_eq(v, 0.0)) {
        d->m = 0;
        d->s = 0;
        return CM_OK;
    }
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (dbl_eq(strtod(buf, NULL), v))
            break;
    }
    if (prec > 17)
        return CM_ERR_INTERNAL;
    for (c = buf; *c && *c != 'e' && *c != 'E'; c++)
        if (*c >= '0' && *c <= '9') {
            m = m * 10 + (uint64_t)(*c - '0');
            ndig++;
        }
    if (!*c)
        return CM_ERR_INTERNAL;
    e10 = strtol(c + 1, &end, 10);
    exp_adj = (int)e10 - (ndig - 1); /* v = m * 10^exp_adj */
    while (m && m % 10 == 0) {
        m /= 10;
        exp_adj++;
    }
    while (exp_adj > 0) {
        if (m > UINT64_MAX / 10)
            return CM_ERR_INTERNAL;
        m *= 10;
        exp_adj--;
    }
    d->m = m;
    d->s = (unsigned)-exp_adj;
    return CM_OK;
}

/*
 * Unsigned big integer, little-endian 32-bit limbs. 24 limbs = 768 bits: the largest
 * settlement numerator is about 2^470 (tokens 2^53, three 57-bit mantissas, scale
 * alignment 10^56, two outer factors), so overflow cannot happen; it is still detected.
 */
#define BIG_LIMBS 24

struct big {
    uint32_t l[BIG_LIMBS];
};

static void big_set(struct big *b, uint64_t v)
{
    memset(b, 0, sizeof *b);
    b->l[0] = (uint32_t)v;
    b->l[1] = (uint32_t)(v >> 32);
}

static int big_mul_u32(struct big *b, uint32_t m)
{
    uint64_t carry = 0;
    size_t i;
    for (i = 0; i < BIG_LIMBS; i++) {
        uint64_t t = (uint64_t)b->l[i] * m + carry;
        b->l[i] = (uint32_t)t;
        carry = t >> 32;
    }
    return carry ? CM_ERR_LIMIT : CM_OK;
}

static int big_mul_u64(struct big *b, uint64_t m)
{
    struct big hi = *b;
    int rc = big_mul_u32(b, (uint32_t)m);
    size_t i;
    uint64_t carry = 0;

    if (rc)
        return rc;
    rc = big_mul_u32(&hi, (uint32_t)(m >> 32));
    if (rc)
        return rc;
    if (hi.l[BIG_LIMBS - 1])
        return CM_ERR_LIMIT;
    for (i = 1; i < BIG_LIMBS; i++) { /* b += hi << 32 */
        uint64_t t = (uint64_t)b->l[i] + hi.l[i - 1] + carry;
        b->l[i] = (uint32_t)t;
        carry = t >> 32;
    }
    return carry ? CM_ERR_LIMIT : CM_OK;
}

static int big_mul_pow10(struct big *b, unsigned n)
{
    int rc = CM_OK;
    while (n >= 9 && !rc) {
        rc = big_mul_u32(b, 1000000000u);
        n -= 9;
    }
    while (n > 0 && !rc) {
        rc = big_mul_u32(b, 10u);
        n--;
    }
    return rc;
}

static int big_add(struct big *a, const struct big *b)
{
    uint64_t carry = 0;
    size_t i;
    for (i = 0; i < BIG_LIMBS; i++) {
        uint64_t t = (uint64_t)a->l[i] + b->l[i] + carry;
        a->l[i] = (uint32_t)t;
        carry = t >> 32;
    }
    return carry ? CM_ERR_LIMIT : CM_OK;
}

static int big_cmp(const struct big *a, const struct big *b)
{
    size_t i = BIG_LIMBS;
    while (i-- > 0)
        if (a->l[i] != b->l[i])
            return a->l[i] < b->l[i] ? -1 : 1;
    return 0;
}

/* a -= b, a >= b */
static void big_sub(struct big *a, const struct big *b)
{
    int64_t borrow = 0;
    size_t i;
    for (i = 0; i < BIG_LIMBS; i++) {
        int64_t t = (int64_t)a->l[i] - b->l[i] - borrow;
        borrow = t < 0;
        a->l[i] = (uint32_t)(t + (borrow ? (INT64_C(1) << 32) : 0));
    }
}

static uint32_t big_div_u32(struct big *b, uint32_t d)
{
    uint64_t rem = 0;
    size_t i = BIG_LIMBS;
    while (i-- > 0) {
        uint64_t cur = (rem << 32) | b->l[i];
        b->l[i] = (uint32_t)(cur / d);
        rem = cur % d;
    }
    return (uint32_t)rem;
}

/* b = round_half_up(b / 10^n) for b >= 0 (half away from zero on the magnitude) */
static void big_div_pow10_round(struct big *b, unsigned n)
{
    struct big one;
    uint32_t digit;
    if (n == 0)
        return;
    n--; /* all but the last digit: plain truncation */
    while (n >= 9) {
        big_div_u32(b, 1000000000u);
        n -= 9;
    }
    while (n > 0) {
        big_div_u32(b, 10u);
        n--;
    }
    digit = big_div_u32(b, 10u); /* first fractional digit */
    if (digit >= 5) {
        big_set(&one, 1);
        (void)big_add(b, &one); /* b < 2^760 here: cannot carry out */
    }
}

/* min(b, MT_PRICING_QUOTA_MAX) */
static int64_t big_to_quota(const struct big *b, int *clamped)
{
    size_t i;
    uint64_t v;
    for (i = 2; i < BIG_LIMBS; i++)
        if (b->l[i]) {
            *clamped = 1;
            return MT_PRICING_QUOTA_MAX;
        }
    v = ((uint64_t)b->l[1] << 32) | b->l[0];
    if (v > (uint64_t)MT_PRICING_QUOTA_MAX) {
        *clamped = 1;
        return MT_PRICING_QUOTA_MAX;
    }
    return (int64_t)v;
}

/* tokens x a x b */
struct term {
    int64_t tokens;
    double a, b;
};

/*
 * round(sum(terms) x prod(outer)) in exact decimal, half away from zero, clamped to
 * +-MT_PRICING_QUOTA_MAX. All doubles are 0 or in [1e-12, 2e12] (price_ok()).
 */
static int exact_quota(const struct term *t, size_t n, const double *outer, size_t n_outer,
                       int64_t *q, int *clamped)
{
    struct dec da[8], db[8], d;
    struct big pos, neg, x;
    unsigned S = 0, T;
    size_t i;
    int rc = CM_OK, negative = 0;
    int64_t mag;

    if (n > 8)
        return CM_ERR_INTERNAL;
    for (i = 0; i < n; i++) {
        rc = dec_from_double(t[i].a, &da[i]);
        if (!rc)
            rc = dec_from_double(t[i].b, &db[i]);
        if (rc)
            return rc;
        if (da[i].s + db[i].s > S)
            S = da[i].s + db[i].s;
    }
    big_set(&pos, 0);
    big_set(&neg, 0);
    for (i = 0; i < n && !rc; i++) {
        if (t[i].tokens == 0)
            continue;
        big_set(&x, (uint64_t)(t[i].tokens < 0 ? -t[i].tokens : t[i].tokens));
        rc = big_mul_u64(&x, da[i].m);
        if (!rc)
            rc = big_mul_u64(&x, db[i].m);
        if (!rc)
            rc = big_mul_pow10(&x, S - da[i].s - db[i].s);
        if (!rc)
            rc = big_add(t[i].tokens < 0 ? &neg : &pos, &x);
    }
    if (rc)
        return CM_ERR_INTERNAL; /* cannot happen within the documented bounds */
    if (big_cmp(&pos, &neg) >= 0) {
        big_sub(&pos, &neg);
    } else {
        big_sub(&neg, &pos);
        pos = neg;
        negative = 1;
    }
    T = S;
    for (i = 0; i < n_outer && !rc; i++) {
        rc = dec_from_double(outer[i], &d);
        if (!rc)
            rc = big_mul_u64(&pos, d.m);
        T += d.s;
    }
    if (rc)
        return CM_ERR_INTERNAL;
    big_div_pow10_round(&pos, T);
    mag = big_to_quota(&pos, clamped);
    *q = negative ? -mag : mag;
    return CM_OK;
}

static int count_ok(int64_t v)
{
    return v >= 0 && v <= MT_PRICING_QUOTA_MAX;
}

int mt_pricing_settle(const struct mt_price *price, const struct mt_usage *u, struct mt_charge *out)
{
    struct mt_charge r;
    struct term t[6];
    double outer[2];
    size_t n = 0, n_outer = 0;
    int64_t total, q = 0;
    int rc;

    if (!price || !u || !out || !price_ok(price))
        return CM_ERR_INVAL;
    if (!count_ok(u->prompt_tokens) || !count_ok(u->completion_tokens) ||
        !count_ok(u->cached_tokens) || !count_ok(u->cache_creation_tokens) ||
        !count_ok(u->cache_creation_tokens_1h) || !count_ok(u->image_tokens) ||
        !count_ok(u->audio_prompt_tokens) || !count_ok(u->audio_completion_tokens) ||
        u->cache_creation_tokens_1h > u->cache_creation_tokens ||
        u->audio_prompt_tokens > u->prompt_tokens ||
        u->audio_completion_tokens > u->completion_tokens ||
        (u->semantic != MT_USAGE_OPENAI && u->semantic != MT_USAGE_ANTHROPIC))
        return CM_ERR_INVAL;

    memset(&r, 0, sizeof r);
    r.price = *price;
    r.usage = *u;
    total = u->prompt_tokens + u->completion_tokens; /* each <= 2^53: no overflow */
    if (u->semantic == MT_USAGE_ANTHROPIC)
        total += u->cached_tokens + u->cache_creation_tokens;
    if (!u->per_call && total == 0) {
        r.no_tokens = 1;
        *out = r;
        return CM_OK;
    }

    if (price->use_price) {
        t[n++] = (struct term){1, price->model_price, price->quota_per_unit};
        outer[n_outer++] = price->group_ratio;
    } else if (u->audio_prompt_tokens > 0 || u->audio_completion_tokens > 0) {
        r.audio = 1;
        t[n++] = (struct term){u->prompt_tokens - u->audio_prompt_tokens, 1, 1};
        t[n++] = (struct term){u->completion_tokens - u->audio_completion_tokens,
                               price->completion_ratio, 1};
        t[n++] = (struct term){u->audio_prompt_tokens, price->audio_ratio, 1};
        t[n++] = (struct term){u->audio_completion_tokens, price->audio_ratio,
                               price->audio_completion_ratio};
        outer[n_outer++] = price->model_ratio;
        outer[n_outer++] = price->group_ratio;
    } else {
        int64_t base = u->prompt_tokens - u->image_tokens;
        if (u->semantic == MT_USAGE_OPENAI)
            base -= u->cached_tokens + u->cache_creation_tokens;
        t[n++] = (struct term){base, 1, 1};
        t[n++] = (struct term){u->cached_tokens, price->cache_ratio, 1};
        t[n++] = (struct term){u->image_tokens, price->image_ratio, 1};
        t[n++] = (struct term){u->cache_creation_tokens - u->cache_creation_tokens_1h,
                               price->create_cache_ratio, 1};
        t[n++] = (struct term){u->cache_creation_tokens_1h, price->create_cache_ratio_1h, 1};
        t[n++] = (struct term){u->completion_tokens, price->completion_ratio, 1};
        outer[n_outer++] = price->model_ratio;
        outer[n_outer++] = price->group_ratio;
    }
    rc = exact_quota(t, n, outer, n_outer, &q, &r.clamped);
    if (rc)
        return rc;
    if (!price->use_price && price->model_ratio > 0 && price->group_ratio > 0 && q <= 0) {
        q = 1;
        r.minimum_applied = 1;
    }
    if (q < 0) /* only with a zero ratio, where the product is 0 anyway */
        q = 0;
    r.quota = q;
    *out = r;
    return CM_OK;
}

/* ---- the log row's `other` ---- */

static int build_admin_info(const struct mt_charge *c, const struct mt_other_ctx *ctx, cJSON **out)
{
    cJSON *admin = NULL, *arr = NULL;
    char id[24];
    size_t i;
    int rc;

    rc = cm_json_new_object(&admin);
    if (!rc)
        rc = cm_json_new_array(&arr);
    for (i = 0; !rc && ctx && i < ctx->n_use_channel; i++) {
        snprintf(id, sizeof id, "%lld", (long long)ctx->use_channel[i]);
        rc = cm_json_set_string(arr, NULL, id);
    }
    if (!rc)
        rc = cm_json_adopt(admin, "use_channel", &arr);
    if (!rc && ctx && ctx->is_multi_key) {
        rc = cm_json_set_bool(admin, "is_multi_key", true);
        if (!rc)
            rc = cm_json_set_int64(admin, "multi_key_index", ctx->multi_key_index);
    }
    if (!rc && c->usage.local_count)
        rc = cm_json_set_bool(admin, "local_count_tokens", true);
    if (!rc) {
        *out = admin;
        admin = NULL;
    }
    cJSON_Delete(arr);
    cJSON_Delete(admin);
    return rc;
}

int mt_pricing_other_json(const struct mt_charge *c, const struct mt_other_ctx *ctx, cJSON **out)
{
    const struct mt_price *pr;
    const struct mt_usage *u;
    cJSON *o = NULL, *admin = NULL;
    int rc;

    if (!c || !out)
        return CM_ERR_INVAL;
    pr = &c->price;
    u = &c->usage;
    rc = cm_json_new_object(&o);
    if (rc)
        goto out;
    rc = cm_json_set_double(o, "model_ratio", pr->model_ratio);
    if (!rc)
        rc = cm_json_set_double(o, "group_ratio", pr->group_ratio);
    if (!rc)
        rc = cm_json_set_double(o, "completion_ratio", pr->completion_ratio);
    if (!rc)
        rc = cm_json_set_int64(o, "cache_tokens", u->cached_tokens);
    if (!rc)
        rc = cm_json_set_double(o, "cache_ratio", pr->cache_ratio);
    if (!rc)
        rc = cm_json_set_double(o, "model_price", pr->use_price ? pr->model_price : -1);
    if (!rc)
        rc = cm_json_set_double(o, "user_group_ratio", pr->user_group_ratio);
    if (!rc)
        rc = cm_json_set_int64(o, "frt", ctx ? ctx->frt_ms : 0);
    if (!rc)
        rc = build_admin_info(c, ctx, &admin);
    if (!rc)
        rc = cm_json_adopt(o, "admin_info", &admin);
    if (!rc && ctx && ctx->request_path)
        rc = cm_json_set_string(o, "request_path", ctx->request_path);
    if (!rc && u->cache_creation_tokens > 0) {
        rc = cm_json_set_int64(o, "cache_creation_tokens", u->cache_creation_tokens);
        if (!rc)
            rc = cm_json_set_double(o, "cache_creation_ratio", pr->create_cache_ratio);
        if (!rc && u->cache_creation_tokens_1h > 0) {
            rc = cm_json_set_int64(o, "cache_creation_tokens_5m",
                                   u->cache_creation_tokens - u->cache_creation_tokens_1h);
            if (!rc)
                rc = cm_json_set_double(o, "cache_creation_ratio_5m", pr->create_cache_ratio);
            if (!rc)
                rc = cm_json_set_int64(o, "cache_creation_tokens_1h", u->cache_creation_tokens_1h);
            if (!rc)
                rc = cm_json_set_double(o, "cache_creation_ratio_1h", pr->create_cache_ratio_1h);
        }
    }
    if (!rc && u->image_tokens > 0 && !c->audio) {
        rc = cm_json_set_bool(o, "image", true);
        if (!rc)
            rc = cm_json_set_double(o, "image_ratio", pr->image_ratio);
        if (!rc)
            rc = cm_json_set_int64(o, "image_output", u->image_tokens);
    }
    if (!rc && c->audio) {
        rc = cm_json_set_double(o, "audio_ratio", pr->audio_ratio);
        if (!rc)
            rc = cm_json_set_double(o, "audio_completion_ratio", pr->audio_completion_ratio);
        if (!rc)
            rc = cm_json_set_int64(o, "audio_input", u->audio_prompt_tokens);
        if (!rc)
            rc = cm_json_set_int64(o, "audio_output", u->audio_completion_tokens);
    }
    if (!rc && u->semantic == MT_USAGE_ANTHROPIC)
        rc = cm_json_set_string(o, "usage_semantic", "anthropic");
    if (!rc && ctx && ctx->upstream_model_name) {
        rc = cm_json_set_bool(o, "is_model_mapped", true);
        if (!rc)
            rc = cm_json_set_string(o, "upstream_model_name", ctx->upstream_model_name);
    }
    if (rc)
        goto out;
    *out = o;
    o = NULL;
out:
    cJSON_Delete(admin);
    cJSON_Delete(o);
    return rc;
}

/* ---- local token estimate ---- */

/* decodes one UTF-8 character at s[0..n); returns its length, 0 if invalid */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* CJK ideographs, kana, bopomofo, Hangul, CJK punctuation and fullwidth forms */
static int is_cjk(uint32_t c)
{
    return (c >= 0x2e80 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0xff00 && c <= 0xffef) ||
           (c >= 0x20000 && c <= 0x3ffff);
}

/* a run of letters costs ceil(bytes / 6), a run of digits ceil(digits / 3) */
static uint64_t run_tokens(int kind, uint64_t n)
{
    if (kind == 1)
        return (n + 5) / 6;
    if (kind == 2)
        return (n + 2) / 3;
    return 0;
}

int64_t mt_pricing_estimate_tokens(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    uint64_t tokens = 0, run = 0;
    size_t i = 0, n;
    uint32_t cp;
    int in_newline = 0, kind = 0; /* current run: 0 none, 1 letters, 2 digits */

    if (!text)
        return 0;
    while (i < len) {
        unsigned char b = s[i];
        int k = 0, newline = 0;

        n = utf8_next(s + i, len - i, &cp);
        if (n == 0) {
            n = 1;
            tokens++;
        } else if (cp < 0x80) {
            if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_')
                k = 1;
            else if (b >= '0' && b <= '9')
                k = 2;
            else if (b == '\n' || b == '\r')
                newline = 1;
            else if (b != ' ' && b != '\t' && b != '\v' && b != '\f')
                tokens++;
        } else if (is_cjk(cp)) {
            tokens++;
        } else {
            k = 1;
        }
        if (k != kind) {
            tokens += run_tokens(kind, run);
            run = 0;
            kind = k;
        }
        run += n;
        if (newline && !in_newline)
            tokens++;
        in_newline = newline;
        i += n;
    }
    tokens += run_tokens(kind, run);
    return tokens > (uint64_t)MT_PRICING_QUOTA_MAX ? MT_PRICING_QUOTA_MAX : (int64_t)tokens;
}

/* ---- display ---- */

double mt_pricing_quota_to_usd(const struct mt_pricing *p, int64_t quota)
{
    return (double)quota / mt_pricing_quota_per_unit(p);
}

int mt_pricing_usd_to_quota(const struct mt_pricing *p, double usd, int64_t *out)
{
    double x = usd * mt_pricing_quota_per_unit(p);
    int64_t t;

    if (!out || !isfinite(x) || x > (double)MT_PRICING_QUOTA_MAX ||
        x < -(double)MT_PRICING_QUOTA_MAX)
        return CM_ERR_INVAL;
    t = (int64_t)x; /* truncates toward zero */
    if (x - (double)t >= 0.5)
        t++;
    else if (x - (double)t <= -0.5)
        t--;
    if (t > MT_PRICING_QUOTA_MAX || t < -MT_PRICING_QUOTA_MAX)
        return CM_ERR_INVAL;
    *out = t;
    return CM_OK;
}

int mt_pricing_log_quota(const struct mt_pricing *p, int64_t quota, char *buf, size_t cap)
{
    int n;
    if (!buf || !cap)
        return CM_ERR_INVAL;
    if (mt_pricing_display_in_currency(p))
        n = snprintf(buf, cap, "\xef\xbc\x84%.6f \xe9\xa2\x9d\xe5\xba\xa6",
                     mt_pricing_quota_to_usd(p, quota));
    else
        n = snprintf(buf, cap, "%lld \xe7\x82\xb9\xe9\xa2\x9d\xe5\xba\xa6", (long long)quota);
    return (n < 0 || (size_t)n >= cap) ? CM_ERR_LIMIT : CM_OK;
}
