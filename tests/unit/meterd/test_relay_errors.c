/* SPDX-License-Identifier: MIT */
/*
 * test_relay_errors.c - NewAPI's relay error bodies and request ids (relay/errors.h), and
 * the Prometheus text of the relay counters (relay/metrics.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "relay/errors.h"
#include "relay/metrics.h"

static void bodies(void **state)
{
    char *b = NULL;
    size_t len = 0;
    (void)state;
    assert_int_equal(
        mt_relay_error_body(MT_RELAY_ERR_MIDDLEWARE, NULL, NULL, "Invalid token", "RID", &b, &len),
        CM_OK);
    assert_string_equal(b, "{\"error\":{\"message\":\"Invalid token (request id: RID)\","
                           "\"type\":\"new_api_error\",\"code\":\"\"}}");
    assert_int_equal(len, strlen(b));
    cm_free(b);
    assert_int_equal(mt_relay_error_body(MT_RELAY_ERR_OPENAI, "openai_error", "x_code", "m \"q\"",
                                         NULL, &b, &len),
                     CM_OK);
    assert_string_equal(b, "{\"error\":{\"message\":\"m \\\"q\\\"\",\"type\":\"openai_error\","
                           "\"param\":\"\",\"code\":\"x_code\"}}");
    cm_free(b);
    assert_int_equal(
        mt_relay_error_body(MT_RELAY_ERR_CLAUDE, "overloaded_error", NULL, "busy", "R", &b, &len),
        CM_OK);
    assert_string_equal(b, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                           "\"message\":\"busy (request id: R)\"}}");
    cm_free(b);
}

static void request_ids(void **state)
{
    char a[MT_RELAY_RID_MAX], b[MT_RELAY_RID_MAX];
    size_t n;
    (void)state;
    assert_int_equal(cm_crypto_init(), CM_OK);
    mt_relay_request_id(a);
    mt_relay_request_id(b);
    n = strlen(a);
    assert_true(n >= 14 + 1 + 8 + 8 && n <= 14 + 9 + 8 + 8);
    for (size_t i = 0; i < 14; i++)
        assert_true(isdigit((unsigned char)a[i]));
    assert_true(a[0] == '2'); /* this millennium */
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < n; i++)
        assert_true(isalnum((unsigned char)a[i]));
}

static void metrics(void **state)
{
    struct mt_relay_metrics *m = NULL;
    struct cm_buf b;
    (void)state;
    assert_int_equal(mt_relay_metrics_new(&m), CM_OK);
    mt_relay_metrics_observe(m, "gpt-4o", 7, 200, 0, 0.3);
    mt_relay_metrics_observe(m, "gpt-4o", 7, 502, 0, 1.5);
    mt_relay_metrics_observe(m, "we\"ird\n", 0, 401, 0, 0.001);
    mt_relay_metrics_observe(m, "gpt-4o", 7, 200, 1, 400);
    mt_relay_metrics_charge(m, "gpt-4o", 7, 225, 100, 20);
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(mt_relay_metrics_render(m, &b), CM_OK);
    assert_non_null(strstr(b.data, "meterd_relay_requests_total{model=\"gpt-4o\",channel=\"7\","
                                   "class=\"2xx\"} 1\n"));
    assert_non_null(strstr(b.data, "class=\"5xx\"} 1\n"));
    assert_non_null(strstr(b.data, "class=\"aborted\"} 1\n"));
    assert_non_null(
        strstr(b.data, "meterd_relay_errors_total{model=\"gpt-4o\",channel=\"7\"} 2\n"));
    assert_non_null(strstr(b.data, "model=\"we\\\"ird\\n\",channel=\"0\""));
    assert_non_null(
        strstr(b.data, "meterd_relay_quota_total{model=\"gpt-4o\",channel=\"7\"} 225\n"));
    assert_non_null(strstr(b.data, "le=\"0.5\"} 1\n"));
    assert_non_null(strstr(b.data, "le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "kind=\"completion\"} 20\n"));
    cm_buf_cleanup(&b);
    /* past the series cap: "_other" */
    for (int i = 0; i < MT_RELAY_METRICS_SERIES_MAX + 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%d", i);
        mt_relay_metrics_observe(m, name, 1, 200, 0, 0.1);
    }
    cm_buf_init(&b, 64 << 20);
    assert_int_equal(mt_relay_metrics_render(m, &b), CM_OK);
    assert_non_null(strstr(b.data, "model=\"_other\""));
    cm_buf_cleanup(&b);
    mt_relay_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bodies),
        cmocka_unit_test(request_ids),
        cmocka_unit_test(metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
