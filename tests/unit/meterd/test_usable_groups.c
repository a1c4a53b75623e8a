/* SPDX-License-Identifier: MIT */
/*
 * test_usable_groups.c - NewAPI's GetUserUsableGroups (UserUsableGroups, the special
 * "-:"/"+:"/plain rules of the user's group, the user's own group added), the
 * GroupGroupRatio lookup, malformed JSON treated as empty, and the options-snapshot
 * wrappers with their defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/usable_groups.h"
#include "cm/err.h"
#include "options.h"

#include <string.h>

static const char *desc(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void usable_rules(void **state)
{
    const char *usable = "{\"default\":\"Default\",\"vip\":\"VIP\",\"auto\":\"Auto\"}";
    const char *special = "{\"vip\":{\"-:default\":\"\",\"+:svip\":\"Super\",\"gold\":\"Gold\"}}";
    cJSON *g = NULL;
    (void)state;

    /* anonymous: the list as configured */
    assert_int_equal(mt_groups_usable(usable, special, NULL, &g), CM_OK);
    assert_int_equal(cJSON_GetArraySize(g), 3);
    assert_string_equal(desc(g, "default"), "Default");
    cJSON_Delete(g);

    /* a vip user: default removed, svip and gold added */
    assert_int_equal(mt_groups_usable(usable, special, "vip", &g), CM_OK);
    assert_null(desc(g, "default"));
    assert_string_equal(desc(g, "vip"), "VIP");
    assert_string_equal(desc(g, "svip"), "Super");
    assert_string_equal(desc(g, "gold"), "Gold");
    assert_string_equal(desc(g, "auto"), "Auto");
    cJSON_Delete(g);

    /* a user whose group is not listed gets it added */
    assert_int_equal(mt_groups_usable(usable, special, "team-a", &g), CM_OK);
    assert_string_equal(desc(g, "team-a"), MT_GROUPS_OWN_DESC);
    assert_int_equal(cJSON_GetArraySize(g), 4);
    cJSON_Delete(g);

    /* malformed texts count as empty; non-string descriptions become "" */
    assert_int_equal(mt_groups_usable("{not json", "[1]", "default", &g), CM_OK);
    assert_int_equal(cJSON_GetArraySize(g), 1);
    assert_string_equal(desc(g, "default"), MT_GROUPS_OWN_DESC);
    cJSON_Delete(g);
    assert_int_equal(mt_groups_usable("{\"a\":1}", NULL, "", &g), CM_OK);
    assert_string_equal(desc(g, "a"), "");
    cJSON_Delete(g);
    assert_int_equal(mt_groups_usable("{}", NULL, NULL, NULL), CM_ERR_INVAL);
}

static void group_group_ratio(void **state)
{
    const char *gg = "{\"vip\":{\"default\":0.5,\"bad\":-1,\"s\":\"x\"}}";
    double r = 7;
    (void)state;
    assert_int_equal(mt_groups_group_ratio(gg, "vip", "default", &r), 1);
    assert_true(r == 0.5);
    r = 7;
    assert_int_equal(mt_groups_group_ratio(gg, "vip", "bad", &r), 0);
    assert_int_equal(mt_groups_group_ratio(gg, "vip", "s", &r), 0);
    assert_int_equal(mt_groups_group_ratio(gg, "default", "default", &r), 0);
    assert_int_equal(mt_groups_group_ratio("nope", "vip", "default", &r), 0);
    assert_int_equal(mt_groups_group_ratio(NULL, "vip", "default", &r), 0);
    assert_true(r == 7);
}

static void from_options(void **state)
{
    struct mt_option_kv rows[] = {
        {"GroupRatio", "{\"default\":1,\"vip\":2}"},
        {"GroupGroupRatio", "{\"vip\":{\"default\":0.8}}"},
        {"UserUsableGroups", "{\"default\":\"d\",\"vip\":\"v\"}"},
    };
    struct mt_options *o = NULL, *def = NULL;
    cJSON *g = NULL;
    double r = 0;
    (void)state;

    assert_int_equal(mt_options_new(rows, 3, NULL, &o), CM_OK);
    assert_true(mt_groups_ratio_of(o, "vip", "default") == 0.8);  /* GroupGroupRatio */
    assert_true(mt_groups_ratio_of(o, "default", "vip") == 2);    /* GroupRatio */
    assert_true(mt_groups_ratio_of(o, "default", "nosuch") == 1); /* neither */
    assert_int_equal(mt_groups_in_ratio(o, "vip", &r), 1);
    assert_true(r == 2);
    assert_int_equal(mt_groups_in_ratio(o, "svip", NULL), 0);
    assert_int_equal(mt_groups_in_ratio(o, NULL, NULL), 0);
    assert_int_equal(mt_groups_usable_of(o, "default", &g), CM_OK);
    assert_string_equal(desc(g, "vip"), "v");
    cJSON_Delete(g);

    /* defaults: UserUsableGroups default/vip; the special default adds append_1 to vip */
    assert_int_equal(mt_options_new(NULL, 0, NULL, &def), CM_OK);
    assert_int_equal(mt_groups_usable_of(def, "vip", &g), CM_OK);
    assert_non_null(desc(g, "default"));
    assert_string_equal(desc(g, "append_1"), "vip_special_group_1");
    cJSON_Delete(g);
    assert_int_equal(mt_groups_in_ratio(def, "svip", NULL), 1); /* built-in GroupRatio */
    mt_options_unref(def);
    mt_options_unref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usable_rules),
        cmocka_unit_test(group_group_ratio),
        cmocka_unit_test(from_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
