/* SPDX-License-Identifier: MIT */
/*
 * option.c - the option routes (spec newapi.md 3.6, 6):
 *   GET  /api/option/                 root: data [{"key","value"}...] sorted by key: every
 *                                     option in force (defaults overlaid with the table,
 *                                     the built-in pricing maps for pricing keys not set).
 *                                     Secret-looking keys (ending in Token, Secret, Key,
 *                                     secret, api_key) are OMITTED, as NewAPI does: a masked
 *                                     value would be saved back by the console over the
 *                                     real secret.
 *   PUT  /api/option/                 root: {"key","value"}; value a string, boolean or
 *                                     number (maps and lists JSON-encoded in a string; an
 *                                     object or array is refused instead of NewAPI's %v
 *                                     rendering). Checked with mt_options_check() BEFORE it is
 *                                     stored (a bad value is never written); a store error is
 *                                     answered as such (never a false success); then the
 *                                     options are reloaded, so the next request, /api/pricing
 *                                     included, uses the new value.
 *   POST /api/option/rest_model_ratio root: back to the built-in ModelRatio (row deleted)
 *   GET  /api/group/                  admin: data [group names of GroupRatio]
 * Values are never logged (some are secrets); the log names the key and the length.
 */
#include "api/areas.h"

#include "api/admin_util.h"
#include "api/envelope.h"
#include "api/session.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "optcache.h"
#include "pricing.h"
#include "store/options.h"
#include "store/users.h"

#include <string.h>

#define OPTION_KEY_MAX 255

/* The built-in pricing maps, shown for a pricing key that has no row (as NewAPI's map). */
static const struct {
    const char *key, *value;
} PRICING_DEFAULTS[] = {
    {"AudioCompletionRatio", MT_PRICING_DEFAULT_AUDIO_COMPLETION_RATIO},
    {"AudioRatio", MT_PRICING_DEFAULT_AUDIO_RATIO},
    {"CacheRatio", MT_PRICING_DEFAULT_CACHE_RATIO},
    {"CompletionRatio", MT_PRICING_DEFAULT_COMPLETION_RATIO},
    {"CreateCacheRatio", MT_PRICING_DEFAULT_CREATE_CACHE_RATIO},
    {"GroupGroupRatio", MT_PRICING_DEFAULT_GROUP_GROUP_RATIO},
    {"GroupRatio", MT_PRICING_DEFAULT_GROUP_RATIO},
    {"ImageRatio", MT_PRICING_DEFAULT_IMAGE_RATIO},
    {"ModelPrice", MT_PRICING_DEFAULT_MODEL_PRICE},
    {"ModelRatio", MT_PRICING_DEFAULT_MODEL_RATIO},
};

static int add_kv(cJSON *arr, const char *key, const char *value)
{
    cJSON *o = NULL;
    int rc = cm_json_new_object(&o);
    if (rc == CM_OK)
        rc = cm_json_set_string(o, "key", key);
    if (rc == CM_OK)
        rc = cm_json_set_string(o, "value", value ? value : "");
    if (rc == CM_OK)
        rc = cm_json_adopt(arr, NULL, &o);
    cJSON_Delete(o);
    return rc;
}

static void opt_list(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_options *o;
    cJSON *arr = NULL;
    size_t n, i = 0, k = 0, nd = sizeof PRICING_DEFAULTS / sizeof *PRICING_DEFAULTS;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ROOT, &who))
        return;
    o = mt_optcache_get(srv->opts);
    n = mt_options_count(o);
    rc = cm_json_new_array(&arr);
    /* merge the snapshot (sorted) with the pricing defaults (sorted) by key */
    while (rc == CM_OK && (i < n || k < nd)) {
        struct mt_option_kv kv = mt_options_at(o, i);
        int c = i >= n ? 1 : k >= nd ? -1 : strcmp(kv.key, PRICING_DEFAULTS[k].key);
        if (c <= 0) {
            if (!mt_option_is_secret(kv.key))
                rc = add_kv(arr, kv.key, kv.value);
            i++;
            k += c == 0;
        } else {
            rc = add_kv(arr, PRICING_DEFAULTS[k].key, PRICING_DEFAULTS[k].value);
            k++;
        }
    }
    mt_options_unref(o);
    if (rc) {
        cJSON_Delete(arr);
        mt_api_fail_status(r, 500, "cannot list the options: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, arr);
}

static void opt_put(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    cJSON *b = NULL;
    const char *key = NULL;
    char *value = NULL, err[512] = "";
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ROOT, &who) || mt_api_body(r, &b))
        return;
    if (cm_json_get_string(b, "key", &key, NULL) != CM_OK || !*key ||
        strlen(key) > OPTION_KEY_MAX) {
        mt_api_fail(r, "field 'key' must be an option name of 1 to %d characters", OPTION_KEY_MAX);
        goto out;
    }
    rc = mt_option_value_from_json(key, cJSON_GetObjectItemCaseSensitive(b, "value"), &value, err,
                                   sizeof err);
    if (rc) {
        if (rc == CM_ERR_NOMEM)
            mt_api_fail_status(r, 500, "out of memory");
        else
            mt_api_fail(r, "%s", err);
        goto out;
    }
    rc = mt_options_check(key, value, err, sizeof err);
    if (rc == CM_ERR_NOMEM) {
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    if (rc) { /* INVAL or DENIED: nothing is stored */
        mt_api_fail(r, "%s", err[0] ? err : "invalid option value");
        goto out;
    }
    rc = mt_store_option_set(srv->store, key, value);
    if (rc) {
        mt_api_fail_status(r, rc == CM_ERR_TIMEOUT ? 503 : 500, "option %s was not saved: %s%s",
                           key, cm_err_str(rc),
                           rc == CM_ERR_TIMEOUT ? " (the database is locked; try again)" : "");
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "option: %s set %s (%zu bytes)", who.username, key,
                strlen(value));
    rc = mt_optcache_reload(srv->opts);
    if (rc) {
        cm_log_warn(cm_httpd_req_id(r), "option: %s saved but the reload failed: %s", key,
                    cm_err_str(rc));
        mt_api_ok_msg(r, "saved; it applies within a few seconds (reload failed)");
        goto out;
    }
    mt_api_ok(r, NULL);
out:
    if (value) {
        memset(value, 0, strlen(value));
        cm_free(value);
    }
    cJSON_Delete(b);
}

static void opt_reset_model_ratio(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ROOT, &who))
        return;
    rc = mt_store_option_delete(srv->store, "ModelRatio");
    if (rc && rc != CM_ERR_NOTFOUND) {
        mt_api_fail_status(r, 500, "ModelRatio was not reset: %s", cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "option: %s reset ModelRatio to the built-in map",
                who.username);
    (void)mt_optcache_reload(srv->opts);
    mt_api_ok(r, NULL);
}

static void group_list(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_options *o;
    const struct mt_pricing *p;
    cJSON *arr = NULL;
    const char *name;
    double ratio;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    o = mt_optcache_get(srv->opts);
    p = mt_options_pricing(o);
    rc = cm_json_new_array(&arr);
    for (size_t i = 0; rc == CM_OK && mt_pricing_group_at(p, i, &name, &ratio) == CM_OK; i++)
        rc = cm_json_set_string(arr, NULL, name);
    mt_options_unref(o);
    if (rc) {
        cJSON_Delete(arr);
        mt_api_fail_status(r, 500, "cannot list the groups: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, arr);
}

int mt_api_option_routes(struct cm_httpd *s, struct mt_server *srv)
{
    int rc = cm_httpd_route(s, "GET", "/api/option/", opt_list, srv);
    if (!rc)
        rc = cm_httpd_route(s, "PUT", "/api/option/", opt_put, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/api/option/rest_model_ratio", opt_reset_model_ratio, srv);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/api/group/", group_list, srv);
    return rc;
}
