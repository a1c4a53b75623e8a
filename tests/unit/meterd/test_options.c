/* SPDX-License-Identifier: MIT */
/*
 * test_options.c - option snapshots: defaults, rows overriding them, unknown keys kept, a
 * bad row skipped (previous value kept, else the default), typed getters, validation of
 * every kind (with the key named), refused keys, status-code ranges, the pricing snapshot
 * following the rows, and an OOM walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "options.h"
#include "pricing.h"

static void defaults_and_rows(void **state)
{
    struct mt_options *o = NULL, *o2 = NULL;
    struct mt_option_kv rows[] = {{"QuotaPerUnit", "1000"},
                                  {"RetryTimes", "3"},
                                  {"ModelRatio", "{\"gpt-5\":0.625,\"claude-x\":1.5}"},
                                  {"SomethingElse", "kept"},
                                  {"RegisterEnabled", "false"}};
    struct mt_price pr;
    (void)state;
    assert_int_equal(mt_options_new(NULL, 0, NULL, &o), CM_OK);
    assert_string_equal(mt_options_get(o, "QuotaPerUnit"), "500000");
    assert_int_equal(mt_options_bool(o, "RegisterEnabled", 0), 1);
    assert_int_equal(mt_options_int(o, "RetryTimes", 9), 0);
    assert_null(mt_options_get(o, "ModelRatio"));
    mt_options_unref(o);

    assert_int_equal(mt_options_new(rows, 5, NULL, &o), CM_OK);
    assert_int_equal(mt_options_int(o, "RetryTimes", 0), 3);
    assert_true(mt_options_double(o, "QuotaPerUnit", 0) == 1000.0);
    assert_string_equal(mt_options_get(o, "SomethingElse"), "kept");
    assert_int_equal(mt_options_bool(o, "RegisterEnabled", 1), 0);
    assert_int_equal(mt_pricing_model_price(mt_options_pricing(o), "gpt-5", "default", NULL, &pr),
                     CM_OK);
    assert_true(pr.model_ratio == 0.625);
    assert_true(pr.quota_per_unit == 1000.0);
    /* sorted listing */
    for (size_t i = 1; i < mt_options_count(o); i++)
        assert_true(strcmp(mt_options_at(o, i - 1).key, mt_options_at(o, i).key) < 0);
    assert_null(mt_options_at(o, mt_options_count(o)).key);

    /* a bad row from outside: the previous value stays; without one the default applies */
    struct mt_option_kv bad[] = {
        {"RetryTimes", "lots"}, {"ModelRatio", "{not json"}, {"RegisterEnabled", "maybe"}};
    assert_int_equal(mt_options_new(bad, 3, o, &o2), CM_OK);
    assert_int_equal(mt_options_int(o2, "RetryTimes", 0), 3);
    assert_int_equal(mt_pricing_model_price(mt_options_pricing(o2), "gpt-5", "default", NULL, &pr),
                     CM_OK);
    assert_true(pr.model_ratio == 0.625);
    assert_int_equal(mt_options_bool(o2, "RegisterEnabled", 0), 0);
    mt_options_unref(o2);
    assert_int_equal(mt_options_new(bad, 3, NULL, &o2), CM_OK);
    assert_int_equal(mt_options_int(o2, "RetryTimes", 7), 0);
    assert_int_equal(mt_options_bool(o2, "RegisterEnabled", 0), 1);
    mt_options_unref(o2);
    mt_options_ref(o);
    mt_options_unref(o);
    mt_options_unref(o);
}

static void validation(void **state)
{
    char err[256];
    (void)state;
    assert_int_equal(mt_options_check("RegisterEnabled", "true", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("RegisterEnabled", "yes", err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "RegisterEnabled"));
    assert_int_equal(mt_options_check("RetryTimes", "2", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("RetryTimes", "-1", err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(mt_options_check("RetryTimes", "2x", err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(mt_options_check("RetryTimes", "", err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(mt_options_check("ChannelDisableThreshold", "2.5", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("ChannelDisableThreshold", "-2", err, sizeof err),
                     CM_ERR_INVAL);
    assert_int_equal(mt_options_check("UserUsableGroups", "{\"a\":\"b\"}", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("UserUsableGroups", "map[a:b]", err, sizeof err),
                     CM_ERR_INVAL);
    assert_int_equal(mt_options_check("AutoGroups", "[\"default\"]", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("AutoGroups", "{}", err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(
        mt_options_check("AutomaticDisableStatusCodes", "401, 500-503", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("AutomaticDisableStatusCodes", "503-500", err, sizeof err),
                     CM_ERR_INVAL);
    assert_int_equal(mt_options_check("AutomaticDisableStatusCodes", "abc", err, sizeof err),
                     CM_ERR_INVAL);
    assert_int_equal(mt_options_check("ModelRatio", "{\"m\":1}", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check("ModelRatio", "{\"m\":-1}", err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "ModelRatio"));
    assert_int_equal(mt_options_check("GroupRatio", "map[default:1]", err, sizeof err),
                     CM_ERR_INVAL);
    assert_int_equal(
        mt_options_check("payment_setting.compliance_confirmed", "true", err, sizeof err),
        CM_ERR_DENIED);
    assert_int_equal(mt_options_check("AnythingElse", "free text", err, sizeof err), CM_OK);
    assert_int_equal(mt_options_check(NULL, "x", err, sizeof err), CM_ERR_INVAL);
    assert_int_equal(mt_options_check("RetryTimes", NULL, err, sizeof err), CM_ERR_INVAL);
}

static void code_ranges(void **state)
{
    (void)state;
    assert_true(mt_options_code_in("401", 401));
    assert_false(mt_options_code_in("401", 402));
    assert_true(mt_options_code_in("100-199,300-399,401-407", 404));
    assert_false(mt_options_code_in("100-199,300-399,401-407", 408));
    assert_true(mt_options_code_in(" 500 - 503 , 429", 429));
    assert_false(mt_options_code_in("", 500));
    assert_false(mt_options_code_in(NULL, 500));
}

static void oom(void **state)
{
    struct mt_option_kv rows[] = {{"ModelRatio", "{\"a\":1}"}, {"New", "x"}};
    struct mt_options *o = NULL;
    int ok = 0;
    (void)state;
    for (int n = 1; n < 2000 && !ok; n++) {
        cm_alloc_fail_at(n);
        int rc = mt_options_new(rows, 2, NULL, &o);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            ok = 1;
            mt_options_unref(o);
        } else {
            assert_int_equal(rc, CM_ERR_NOMEM);
        }
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_and_rows),
        cmocka_unit_test(validation),
        cmocka_unit_test(code_ranges),
        cmocka_unit_test(oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
