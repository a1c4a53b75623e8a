/* SPDX-License-Identifier: MIT */
/*
 * test_relay_check.c - the relay's token / user / model / group checks (relay/check.h):
 * NewAPI's 401 for disabled, expired, exhausted tokens (unlimited ones pass at 0), the IP
 * allow list (403 access_denied), banned users, channel pinning for admins only, model
 * limits (normalised names too), group resolution (token group usable, in GroupRatio,
 * "auto"), AutoGroups, user settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/err.h"
#include "options.h"
#include "relay/check.h"

#define NOW INT64_C(1795300000)

static struct mt_token tok(void)
{
    struct mt_token t;
    mt_token_init(&t);
    t.id = 3;
    t.user_id = 2;
    t.key = "k";
    t.remain_quota = 100;
    t.model_limits = "";
    t.allow_ips = "";
    return t;
}

static void tokens(void **state)
{
    struct mt_relay_deny d;
    struct mt_token t = tok();
    (void)state;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_OK);
    t.status = MT_TOKEN_DISABLED;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_ERR_AUTH);
    assert_int_equal(d.status, 401);
    assert_string_equal(d.msg, "Invalid token");
    assert_string_equal(d.code, "");
    t = tok();
    t.expired_time = NOW - 1;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_ERR_AUTH);
    assert_string_equal(d.reason, "expired");
    t.expired_time = NOW + 10;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_OK);
    t.remain_quota = 0;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_ERR_AUTH);
    assert_string_equal(d.reason, "exhausted");
    t.unlimited_quota = 1;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_OK);
    t.status = MT_TOKEN_EXHAUSTED;
    assert_int_equal(mt_relay_check_token(&t, NOW, &d), CM_ERR_AUTH);
    assert_int_equal(mt_relay_check_token(NULL, NOW, &d), CM_ERR_AUTH);
}

static void ips_and_users(void **state)
{
    struct mt_relay_deny d;
    struct mt_token t = tok();
    struct mt_user u;
    (void)state;
    assert_int_equal(mt_relay_check_ip(&t, "127.66.1.2", &d), CM_OK);
    t.allow_ips = "127.0.0.1\n127.64.0.0/10";
    assert_int_equal(mt_relay_check_ip(&t, "127.66.1.2", &d), CM_OK);
    assert_int_equal(mt_relay_check_ip(&t, "127.200.1.1", &d), CM_ERR_DENIED);
    assert_int_equal(d.status, 403);
    assert_string_equal(d.code, "access_denied");
    mt_user_init(&u);
    assert_int_equal(mt_relay_check_user(&u, 0, &d), CM_OK);
    assert_int_equal(mt_relay_check_user(&u, 7, &d), CM_ERR_DENIED); /* pin: admins only */
    u.role = MT_ROLE_ADMIN;
    assert_int_equal(mt_relay_check_user(&u, 7, &d), CM_OK);
    u.status = MT_USER_DISABLED;
    assert_int_equal(mt_relay_check_user(&u, 0, &d), CM_ERR_DENIED);
    assert_int_equal(d.status, 403);
    u.status = MT_USER_ENABLED;
    assert_false(mt_relay_user_setting(&u, "record_ip_log"));
    u.setting = "{\"record_ip_log\":true,\"accept_unset_model_ratio_model\":false}";
    assert_true(mt_relay_user_setting(&u, "record_ip_log"));
    assert_false(mt_relay_user_setting(&u, "accept_unset_model_ratio_model"));
    u.setting = "junk";
    assert_false(mt_relay_user_setting(&u, "record_ip_log"));
}

static void model_limits(void **state)
{
    struct mt_relay_deny d;
    struct mt_token t = tok();
    (void)state;
    assert_int_equal(mt_relay_check_model(&t, "anything", &d), CM_OK);
    t.model_limits_enabled = 1;
    t.model_limits = "gpt-4o-mini, gpt-4-gizmo-*,claude-3-5-sonnet-20241022";
    assert_int_equal(mt_relay_check_model(&t, "gpt-4o-mini", &d), CM_OK);
    assert_int_equal(mt_relay_check_model(&t, "claude-3-5-sonnet-20241022", &d), CM_OK);
    assert_int_equal(mt_relay_check_model(&t, "gpt-4-gizmo-g-abc", &d), CM_OK);
    assert_int_equal(mt_relay_check_model(&t, "gpt-4o", &d), CM_ERR_DENIED);
    assert_int_equal(d.status, 403);
    assert_non_null(strstr(d.msg, "gpt-4o"));
    t.model_limits = "";
    assert_false(mt_relay_model_allowed(&t, "gpt-4o"));
}

static void groups(void **state)
{
    const struct mt_option_kv rows[] = {
        {"GroupRatio", "{\"default\":1,\"vip\":1.5}"},
        {"UserUsableGroups", "{\"default\":\"d\",\"vip\":\"v\",\"old\":\"o\"}"},
        {"AutoGroups", "[\"nope\",\"vip\",\"default\"]"},
    };
    struct mt_options *o = NULL;
    struct mt_relay_deny d;
    struct mt_token t = tok();
    struct mt_user u;
    char g[MT_RELAY_GROUP_MAX];
    (void)state;
    assert_int_equal(mt_options_new(rows, 3, NULL, &o), CM_OK);
    mt_user_init(&u);
    assert_int_equal(mt_relay_group(&t, &u, o, g, sizeof g, &d), CM_OK);
    assert_string_equal(g, "default");
    t.group = "vip";
    assert_int_equal(mt_relay_group(&t, &u, o, g, sizeof g, &d), CM_OK);
    assert_string_equal(g, "vip");
    t.group = "old"; /* usable, but no longer in GroupRatio */
    assert_int_equal(mt_relay_group(&t, &u, o, g, sizeof g, &d), CM_ERR_DENIED);
    assert_non_null(strstr(d.msg, "deprecated"));
    t.group = "secret";
    assert_int_equal(mt_relay_group(&t, &u, o, g, sizeof g, &d), CM_ERR_DENIED);
    assert_int_equal(d.status, 403);
    t.group = "auto";
    assert_int_equal(mt_relay_group(&t, &u, o, g, sizeof g, &d), CM_OK);
    assert_string_equal(g, "auto");
    assert_int_equal(mt_relay_auto_group_at(o, "default", 0, g, sizeof g), CM_OK);
    assert_string_equal(g, "vip"); /* "nope" is not usable */
    assert_int_equal(mt_relay_auto_group_at(o, "default", 1, g, sizeof g), CM_OK);
    assert_string_equal(g, "default");
    assert_int_equal(mt_relay_auto_group_at(o, "default", 2, g, sizeof g), CM_ERR_NOTFOUND);
    assert_true(mt_relay_group_usable(o, "x", "x")); /* one's own group */
    u.group = "vip";
    t.group = "";
    assert_int_equal(mt_relay_group(&t, &u, o, g, sizeof g, &d), CM_OK);
    assert_string_equal(g, "vip");
    mt_options_unref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tokens),
        cmocka_unit_test(ips_and_users),
        cmocka_unit_test(model_limits),
        cmocka_unit_test(groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
