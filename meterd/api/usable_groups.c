/* SPDX-License-Identifier: MIT */
/* usable_groups.c - usable groups and user-group ratios (see usable_groups.h). */
#include "api/usable_groups.h"

#include "cm/err.h"
#include "cm/json.h"
#include "options.h"
#include "pricing.h"

#include <math.h>
#include <string.h>

static cJSON *parse(const char *txt)
{
    struct cm_json_parse_opts po = {.max_depth = 8, .max_size = 1u << 20};
    cJSON *v = NULL;
    if (!txt || !*txt || cm_json_parse(txt, strlen(txt), &po, &v, NULL) != CM_OK)
        return NULL;
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

static const char *desc_of(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

int mt_groups_usable(const char *usable_json, const char *special_json, const char *user_group,
                     cJSON **out)
{
    cJSON *res = NULL, *usable = NULL, *special = NULL, *it;
    int rc;

    if (!out)
        return CM_ERR_INVAL;
    if ((rc = cm_json_new_object(&res)) != CM_OK)
        return rc;
    usable = parse(usable_json);
    cJSON_ArrayForEach(it, usable)
    {
        if (it->string && (rc = cm_json_set_string(res, it->string, desc_of(it))) != CM_OK)
            goto out;
    }
    if (user_group && *user_group) {
        special = parse(special_json);
        it = special ? cJSON_GetObjectItemCaseSensitive(special, user_group) : NULL;
        if (cJSON_IsObject(it)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, it)
            {
                const char *g = e->string;
                if (!g)
                    continue;
                if (strncmp(g, "-:", 2) == 0) {
                    cJSON_DeleteItemFromObjectCaseSensitive(res, g + 2);
                    continue;
                }
                if (strncmp(g, "+:", 2) == 0)
                    g += 2;
                if (*g && (rc = cm_json_set_string(res, g, desc_of(e))) != CM_OK)
                    goto out;
            }
        }
        if (!cJSON_GetObjectItemCaseSensitive(res, user_group) &&
            (rc = cm_json_set_string(res, user_group, MT_GROUPS_OWN_DESC)) != CM_OK)
            goto out;
    }
    rc = CM_OK;
out:
    cJSON_Delete(usable);
    cJSON_Delete(special);
    if (rc) {
        cJSON_Delete(res);
        return rc;
    }
    *out = res;
    return CM_OK;
}

int mt_groups_usable_of(const struct mt_options *o, const char *user_group, cJSON **out)
{
    const char *u = mt_options_get(o, "UserUsableGroups");
    const char *s = mt_options_get(o, MT_GROUPS_SPECIAL_KEY);
    return mt_groups_usable(u ? u : "{\"default\":\"default\",\"vip\":\"vip\"}",
                            s ? s : MT_GROUPS_SPECIAL_DEFAULT, user_group, out);
}

int mt_groups_group_ratio(const char *gg_json, const char *user_group, const char *group,
                          double *ratio)
{
    cJSON *gg, *row, *v;
    int found = 0;
    if (!user_group || !group || !ratio)
        return 0;
    gg = parse(gg_json);
    row = gg ? cJSON_GetObjectItemCaseSensitive(gg, user_group) : NULL;
    v = cJSON_IsObject(row) ? cJSON_GetObjectItemCaseSensitive(row, group) : NULL;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0) {
        *ratio = v->valuedouble;
        found = 1;
    }
    cJSON_Delete(gg);
    return found;
}

int mt_groups_in_ratio(const struct mt_options *o, const char *group, double *ratio)
{
    const struct mt_pricing *p = mt_options_pricing(o);
    const char *name;
    double r;
    if (!group)
        return 0;
    for (size_t i = 0; mt_pricing_group_at(p, i, &name, &r) == CM_OK; i++) {
        if (strcmp(name, group) == 0) {
            if (ratio)
                *ratio = r;
            return 1;
        }
    }
    return 0;
}

double mt_groups_ratio_of(const struct mt_options *o, const char *user_group, const char *group)
{
    const char *gg = mt_options_get(o, "GroupGroupRatio");
    double r = 1;
    if (mt_groups_group_ratio(gg ? gg : MT_PRICING_DEFAULT_GROUP_GROUP_RATIO, user_group, group,
                              &r))
        return r;
    if (mt_groups_in_ratio(o, group, &r))
        return r;
    return 1;
}
