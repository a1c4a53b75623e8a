/* SPDX-License-Identifier: MIT */
/*
 * usable_groups.h - which groups a user may use (NewAPI service.GetUserUsableGroups,
 * spec newapi.md 3.3, 4.2, 6.2), for /api/user/groups, /api/user/models and the token
 * group check:
 *   UserUsableGroups {"group": "description"}, then the user's group's entry of
 *   group_special_usable_group ({"vip": {"-:g": "", "+:g": "desc", "g": "desc"}}: "-:"
 *   removes, "+:" or no prefix adds), then the user's own group when still missing;
 * and the ratio a user of group U pays in group G: GroupGroupRatio[U][G], else
 * GroupRatio[G], else 1. Pure (options snapshots are immutable).
 */
#ifndef MT_API_USABLE_GROUPS_H
#define MT_API_USABLE_GROUPS_H

#include <cjson/cJSON.h>

struct mt_options;

/* NewAPI's default of group_ratio_setting.group_special_usable_group */
#define MT_GROUPS_SPECIAL_DEFAULT                                                                  \
    "{\"vip\":{\"append_1\":\"vip_special_group_1\",\"-:remove_1\":\"vip_removed_group_1\"}}"
#define MT_GROUPS_SPECIAL_KEY "group_ratio_setting.group_special_usable_group"
#define MT_GROUPS_OWN_DESC "user group" /* description of the user's own group when added */

/**
 * The usable groups from the option texts @p usable_json (UserUsableGroups) and
 * @p special_json (group_special_usable_group; NULL: none) for a user of @p user_group
 * (NULL or "": no special rules, no own group), as a new object {group: description}
 * in *@p out (free with cJSON_Delete). Malformed JSON counts as empty; non-string
 * descriptions become "". CM_OK, CM_ERR_NOMEM, CM_ERR_INVAL (NULL out).
 */
int mt_groups_usable(const char *usable_json, const char *special_json, const char *user_group,
                     cJSON **out);

/** As mt_groups_usable() with the options in force (NewAPI's defaults when unset). */
int mt_groups_usable_of(const struct mt_options *o, const char *user_group, cJSON **out);

/**
 * GroupGroupRatio[@p user_group][@p group] of the JSON text @p gg_json: 1 and *@p ratio
 * set when present (a finite number >= 0), else 0.
 */
int mt_groups_group_ratio(const char *gg_json, const char *user_group, const char *group,
                          double *ratio);

/** The ratio a user of @p user_group pays in @p group under @p o (see above). */
double mt_groups_ratio_of(const struct mt_options *o, const char *user_group, const char *group);

/** 1 if @p group is a key of GroupRatio under @p o, with its ratio in *@p ratio (may be NULL). */
int mt_groups_in_ratio(const struct mt_options *o, const char *group, double *ratio);

#endif
