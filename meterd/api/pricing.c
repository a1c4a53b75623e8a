/* SPDX-License-Identifier: MIT */
/*
 * pricing.c - the pricing and model reads (spec newapi.md 3.2, 5):
 *   GET /api/pricing  public: {"success","message","data":[...],"group_ratio":{g:r},
 *                     "usable_group":{g:desc},"auto_groups":[...],"vendors":[],
 *                     "supported_endpoint":{},"pricing_version"}; one item per model of an
 *                     enabled channel (enabled abilities), priced from the options in force
 *                     (rebuilt on every option write, so never a minute stale as NewAPI's
 *                     cache): model_name, quota_type (0 ratio, 1 per call), model_ratio,
 *                     model_price, completion_ratio, enable_groups, supported_endpoint_types,
 *                     the cache/image/audio ratios that differ from their defaults, and
 *                     "unpriced": a model with neither price nor ratio shows ratio 0 and
 *                     unpriced true instead of NewAPI's 37.5 sentinel (it shows 37.5 only
 *                     in self-use mode, where that is what it bills). group_ratio keeps
 *                     the groups of UserUsableGroups, as NewAPI.
 *   GET /api/models   user: {"<channel type>":[models of the enabled channels of that type]}
 *                     (NewAPI lists each adaptor's built-in models; meterd lists what is
 *                     configured)
 */
#include "api/areas.h"

#include "api/admin_util.h"
#include "api/envelope.h"
#include "api/session.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "optcache.h"
#include "pricing.h"
#include "store/channels.h"
#include "store/users.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRICING_VERSION "a42d372ccf0b5dd13ecf71203521f9d2"

struct mg {
    const char *model, *group;
};

static int mg_cmp(const void *a, const void *b)
{
    const struct mg *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    return c ? c : strcmp(x->group, y->group);
}

/* the option @p key parsed as JSON of the wanted kind, else NULL */
static cJSON *opt_json(const struct mt_options *o, const char *key, int object)
{
    const char *v = mt_options_get(o, key);
    cJSON *j = NULL;
    if (!v || cm_json_parse(v, strlen(v), NULL, &j, NULL) != CM_OK ||
        (object ? !cJSON_IsObject(j) : !cJSON_IsArray(j))) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int set_if(cJSON *o, const char *k, double v, double def)
{
    return fabs(v - def) < 1e-12 ? CM_OK : cm_json_set_double(o, k, v);
}

static cJSON *price_item(const struct mt_pricing *p, const char *model, const struct mg *rows,
                         size_t n)
{
    struct mt_price pr;
    cJSON *it = NULL, *groups = NULL, *eps = NULL;
    int rc, unpriced;

    rc = mt_pricing_model_price(p, model, n ? rows[0].group : "default", NULL, &pr);
    if (rc != CM_OK && rc != CM_ERR_NOTFOUND)
        return NULL;
    unpriced = rc == CM_ERR_NOTFOUND || pr.unpriced;
    rc = cm_json_new_object(&it);
    if (rc == CM_OK)
        rc = cm_json_set_string(it, "model_name", model);
    if (rc == CM_OK)
        rc = cm_json_set_string(it, "description", "");
    if (rc == CM_OK)
        rc = cm_json_set_string(it, "icon", "");
    if (rc == CM_OK)
        rc = cm_json_set_string(it, "tags", "");
    if (rc == CM_OK)
        rc = cm_json_set_int64(it, "vendor_id", 0);
    if (rc == CM_OK)
        rc = cm_json_set_int64(it, "quota_type", pr.use_price ? 1 : 0);
    if (rc == CM_OK) /* the 37.5 sentinel only where it is what gets billed (self-use mode) */
        rc = cm_json_set_double(
            it, "model_ratio",
            pr.use_price || (unpriced && !mt_pricing_self_use_mode(p)) ? 0 : pr.model_ratio);
    if (rc == CM_OK)
        rc = cm_json_set_double(it, "model_price", pr.use_price ? pr.model_price : 0);
    if (rc == CM_OK)
        rc = cm_json_set_string(it, "owner_by", "");
    if (rc == CM_OK)
        rc = cm_json_set_double(it, "completion_ratio", pr.completion_ratio);
    if (rc == CM_OK)
        rc = set_if(it, "cache_ratio", pr.cache_ratio, MT_PRICING_CACHE_RATIO_DEFAULT);
    if (rc == CM_OK)
        rc = set_if(it, "create_cache_ratio", pr.create_cache_ratio,
                    MT_PRICING_CREATE_CACHE_DEFAULT);
    if (rc == CM_OK)
        rc = set_if(it, "image_ratio", pr.image_ratio, 1);
    if (rc == CM_OK)
        rc = set_if(it, "audio_ratio", pr.audio_ratio, 1);
    if (rc == CM_OK)
        rc = set_if(it, "audio_completion_ratio", pr.audio_completion_ratio, 1);
    if (rc == CM_OK)
        rc = cm_json_set_bool(it, "unpriced", unpriced);
    if (rc == CM_OK)
        rc = cm_json_new_array(&groups);
    for (size_t i = 0; rc == CM_OK && i < n; i++)
        rc = cm_json_set_string(groups, NULL, rows[i].group);
    if (rc == CM_OK)
        rc = cm_json_adopt(it, "enable_groups", &groups);
    if (rc == CM_OK)
        rc = cm_json_new_array(&eps);
    if (rc == CM_OK)
        rc = cm_json_set_string(eps, NULL, "openai");
    if (rc == CM_OK)
        rc = cm_json_adopt(it, "supported_endpoint_types", &eps);
    cJSON_Delete(groups);
    cJSON_Delete(eps);
    if (rc) {
        cJSON_Delete(it);
        return NULL;
    }
    return it;
}

static void pricing_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = mt_optcache_get(srv->opts);
    const struct mt_pricing *p = mt_options_pricing(o);
    struct mt_ability_list ab = {0};
    struct mg *rows = NULL;
    size_t n = 0;
    cJSON *root = NULL, *data = NULL, *gr = NULL, *usable = NULL, *autog = NULL;
    const char *gname;
    double ratio;
    int rc;

    rc = mt_store_abilities_all(srv->store, &ab);
    if (rc == CM_OK && ab.n && !(rows = cm_calloc(ab.n, sizeof *rows)))
        rc = CM_ERR_NOMEM;
    for (size_t i = 0; rc == CM_OK && i < ab.n; i++)
        if (ab.items[i].enabled && ab.items[i].model && *ab.items[i].model) {
            rows[n].model = ab.items[i].model;
            rows[n++].group = ab.items[i].group ? ab.items[i].group : "";
        }
    if (rc == CM_OK) {
        if (n)
            qsort(rows, n, sizeof *rows, mg_cmp);
        rc = cm_json_new_array(&data);
    }
    for (size_t i = 0; rc == CM_OK && i < n;) {
        size_t j = i, k = 0;
        struct mg *g = rows + i; /* compacted in place: distinct groups of this model */
        while (j < n && strcmp(rows[j].model, rows[i].model) == 0) {
            if (!k || strcmp(g[k - 1].group, rows[j].group) != 0)
                g[k++] = rows[j];
            j++;
        }
        cJSON *it = price_item(p, g[0].model, g, k);
        rc = cm_json_adopt(data, NULL, &it);
        i = j;
    }
    usable = opt_json(o, "UserUsableGroups", 1);
    if (rc == CM_OK && !usable && !(usable = cJSON_CreateObject()))
        rc = CM_ERR_NOMEM;
    if (rc == CM_OK)
        rc = cm_json_new_object(&gr);
    for (size_t i = 0; rc == CM_OK && mt_pricing_group_at(p, i, &gname, &ratio) == CM_OK; i++)
        if (cJSON_GetObjectItemCaseSensitive(usable, gname))
            rc = cm_json_set_double(gr, gname, ratio);
    autog = opt_json(o, "AutoGroups", 0);
    if (rc == CM_OK && !autog) {
        autog = cJSON_CreateArray();
        if (!autog || cm_json_set_string(autog, NULL, "default"))
            rc = CM_ERR_NOMEM;
    }
    if (rc == CM_OK)
        rc = cm_json_new_object(&root);
    if (rc == CM_OK)
        rc = cm_json_set_bool(root, "success", true);
    if (rc == CM_OK)
        rc = cm_json_set_string(root, "message", "");
    if (rc == CM_OK)
        rc = cm_json_adopt(root, "data", &data);
    if (rc == CM_OK)
        rc = cm_json_set_item(root, "vendors", cJSON_CreateArray());
    if (rc == CM_OK)
        rc = cm_json_adopt(root, "group_ratio", &gr);
    if (rc == CM_OK)
        rc = cm_json_adopt(root, "usable_group", &usable);
    if (rc == CM_OK)
        rc = cm_json_set_item(root, "supported_endpoint", cJSON_CreateObject());
    if (rc == CM_OK)
        rc = cm_json_adopt(root, "auto_groups", &autog);
    if (rc == CM_OK)
        rc = cm_json_set_string(root, "pricing_version", PRICING_VERSION);
    cm_free(rows);
    mt_ability_list_cleanup(&ab);
    mt_options_unref(o);
    cJSON_Delete(data);
    cJSON_Delete(gr);
    cJSON_Delete(usable);
    cJSON_Delete(autog);
    if (rc) {
        cJSON_Delete(root);
        mt_api_fail_status(r, 500, "cannot build the pricing: %s", cm_err_str(rc));
        return;
    }
    mt_api_reply_obj(r, root);
}

/* appends the models of comma list @p models to array @p arr, skipping ones it holds */
static int add_models(cJSON *arr, const char *models)
{
    char *norm = NULL;
    int rc = mt_csv_normalize(models ? models : "", &norm);
    for (char *p = norm; rc == CM_OK && p && *p;) {
        char *c = strchr(p, ',');
        const cJSON *it;
        int dup = 0;
        if (c)
            *c = '\0';
        cJSON_ArrayForEach(it, arr) dup |= cJSON_IsString(it) && strcmp(it->valuestring, p) == 0;
        if (!dup)
            rc = cm_json_set_string(arr, NULL, p);
        p = c ? c + 1 : p + strlen(p);
    }
    cm_free(norm);
    return rc;
}

static void models_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_channel_list l = {0};
    cJSON *d = NULL;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    rc = mt_store_channel_all(srv->store, 0, &l);
    if (rc == CM_OK)
        rc = cm_json_new_object(&d);
    for (size_t i = 0; rc == CM_OK && i < l.n; i++) {
        char k[16];
        cJSON *arr;
        if (l.items[i].status != MT_CHANNEL_ENABLED)
            continue;
        snprintf(k, sizeof k, "%d", l.items[i].type);
        arr = cJSON_GetObjectItemCaseSensitive(d, k);
        if (!arr) {
            rc = cm_json_set_item(d, k, cJSON_CreateArray());
            arr = cJSON_GetObjectItemCaseSensitive(d, k);
        }
        if (rc == CM_OK)
            rc = add_models(arr, l.items[i].models);
    }
    mt_channel_list_cleanup(&l);
    if (rc) {
        cJSON_Delete(d);
        mt_api_fail_status(r, 500, "cannot list the models: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, d);
}

int mt_api_pricing_routes(struct cm_httpd *s, struct mt_server *srv)
{
    int rc = cm_httpd_route(s, "GET", "/api/pricing", pricing_get, srv);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/api/models", models_get, srv);
    return rc;
}
