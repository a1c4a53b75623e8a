/* SPDX-License-Identifier: MIT */
/*
 * test_usage.c - bounded counters: per-series status classes and tokens, the latency
 * histogram, Prometheus label escaping, the overflow series past the cap, the JSON view,
 * and concurrent recording.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cjson/cJSON.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "usage.h"

static char *prom(struct cp_usage *u)
{
    struct cm_buf b;
    cm_buf_init(&b, 1 << 22);
    assert_int_equal(cp_usage_prometheus(u, &b), CM_OK);
    return cm_buf_release(&b, NULL);
}

static void counts_and_tokens(void **state)
{
    struct cp_usage *u;
    struct cp_usage_tokens t = {100, 20, 30, 5};
    char *p;
    (void)state;
    assert_int_equal(cp_usage_new(&u), CM_OK);
    cp_usage_record(u, "codex-a.json", "gpt-5", 200, 40, &t);
    cp_usage_record(u, "codex-a.json", "gpt-5", 200, 700, &t);
    cp_usage_record(u, "codex-a.json", "gpt-5", 429, 3, NULL);
    cp_usage_record(u, "codex-b.json", "gpt-5", 503, 12000, NULL);
    cp_usage_record(u, NULL, "gpt-5", 401, 1, NULL);
    p = prom(u);
    assert_non_null(strstr(p,
                           "cliproxyd_requests_total{credential=\"codex-a.json\",model=\"gpt-5\","
                           "status=\"2xx\"} 2\n"));
    assert_non_null(strstr(p, "status=\"429\"} 1\n"));
    assert_non_null(strstr(p, "{credential=\"codex-b.json\",model=\"gpt-5\",status=\"5xx\"} 1\n"));
    assert_non_null(strstr(p, "{credential=\"-\",model=\"gpt-5\",status=\"4xx\"} 1\n"));
    assert_non_null(strstr(p, "cliproxyd_tokens_total{credential=\"codex-a.json\",model=\"gpt-5\","
                              "kind=\"input\"} 200\n"));
    assert_non_null(strstr(p, "kind=\"cached\"} 60\n"));
    assert_non_null(strstr(p, "cliproxyd_request_duration_seconds_bucket{le=\"0.05\"} 3\n"));
    assert_non_null(strstr(p, "cliproxyd_request_duration_seconds_bucket{le=\"1\"} 4\n"));
    assert_non_null(strstr(p, "cliproxyd_request_duration_seconds_bucket{le=\"10\"} 4\n"));
    assert_non_null(strstr(p, "cliproxyd_request_duration_seconds_bucket{le=\"30\"} 5\n"));
    assert_non_null(strstr(p, "{le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(p, "cliproxyd_request_duration_seconds_count 5\n"));
    cm_free(p);
    cp_usage_free(u);
}

static void escaping_and_json(void **state)
{
    struct cp_usage *u;
    struct cp_usage_tokens t = {1, 2, 0, 0};
    char *p, *j = NULL;
    size_t len;
    cJSON *root;
    (void)state;
    assert_int_equal(cp_usage_new(&u), CM_OK);
    cp_usage_record(u, "we\"ird\\name\n.json", "m", 200, 1, &t);
    p = prom(u);
    assert_non_null(strstr(p, "credential=\"we\\\"ird\\\\name\\n.json\""));
    cm_free(p);
    assert_int_equal(cp_usage_json(u, &j, &len), CM_OK);
    root = cJSON_Parse(j);
    assert_int_equal(cJSON_GetObjectItem(root, "total_requests")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(root, "total_tokens")->valueint, 3);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "series"), 0),
                            "credential")
            ->valuestring,
        "we\"ird\\name\n.json");
    cJSON_Delete(root);
    cm_free(j);
    cp_usage_free(u);
}

static void bounded(void **state)
{
    struct cp_usage *u;
    char name[32], *p;
    (void)state;
    assert_int_equal(cp_usage_new(&u), CM_OK);
    for (int i = 0; i < CP_USAGE_MAX_SERIES + 50; i++) {
        snprintf(name, sizeof name, "cred-%d", i);
        cp_usage_record(u, name, "m", 200, 1, NULL);
    }
    p = prom(u);
    assert_non_null(strstr(p, "{credential=\"other\",model=\"other\",status=\"2xx\"} 50\n"));
    assert_null(strstr(p, "cred-1030"));
    cm_free(p);
    cp_usage_free(u);
}

static void *hammer(void *arg)
{
    struct cp_usage *u = arg;
    struct cp_usage_tokens t = {1, 1, 0, 0};
    for (int i = 0; i < 20000; i++)
        cp_usage_record(u, i % 2 ? "a" : "b", "m", 200, i % 100, &t);
    return NULL;
}

static void concurrent(void **state)
{
    struct cp_usage *u;
    pthread_t th[4];
    char *p;
    (void)state;
    assert_int_equal(cp_usage_new(&u), CM_OK);
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, u);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    p = prom(u);
    assert_non_null(strstr(p, "{credential=\"a\",model=\"m\",status=\"2xx\"} 40000\n"));
    assert_non_null(strstr(p, "cliproxyd_request_duration_seconds_count 80000\n"));
    cm_free(p);
    cp_usage_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_and_tokens),
        cmocka_unit_test(escaping_and_json),
        cmocka_unit_test(bounded),
        cmocka_unit_test(concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
