/* SPDX-License-Identifier: MIT */
/*
 * fuzz_meterd_admin.c - the validation behind meterd's admin API (/api/...) on hostile
 * request bodies. The route handlers' readers are static and need a live request, so this
 * drives the public functions they reach, with the body parsed as mt_api_body() does
 * (depth 32, 4 MiB, an object):
 *  - PUT /api/option/ {"key","value"}: mt_option_value_from_json, then mt_options_check and
 *    mt_pricing_check_option (ratios, prices, group maps, status-code ranges; the key is
 *    the body's, or one of meterd's known keys picked by byte 0 so the fuzzer reaches the
 *    map parsers without guessing names), mt_options_code_in;
 *  - channels: "models" / "group" through mt_csv_normalize, "key" through mt_keys_split
 *    (batch create), "model_mapping" through mt_relay_map_model;
 *  - tokens: "allow_ips" through mt_auth_ip_list_valid and mt_auth_ip_allowed;
 *  - batch deletes: "ids" read with cm_json_to_int64 as mt_api_body_ids() does.
 * Input: byte 0 = option key selector, the rest = the body.
 * Invariants: every error message is NUL-terminated; a normalized CSV is idempotent and
 * has no empty or blank entry; split keys are non-empty; nothing leaks.
 */
#include "fuzz_util.h"

#include "api/admin_util.h"
#include "auth.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "options.h"
#include "pricing.h"
#include "relay/request.h"

#include <string.h>

static const char *const KEYS[] = {
    NULL, /* the body's own "key" */
    "ModelRatio", "CompletionRatio", "CacheRatio", "CreateCacheRatio", "ModelPrice",
    "GroupRatio", "GroupGroupRatio", "UserUsableGroups", "AutoGroups",
    "AutomaticDisableStatusCodes", "AutomaticRetryStatusCodes", "AutomaticDisableKeywords",
    "QuotaPerUnit", "RetryTimes", "PreConsumedQuota", "SelfUseModeEnabled",
    "ModelRequestRateLimitGroup", "ModelRequestRateLimitCount", "ChannelDisableThreshold",
    "AutomaticDisableFailureWindowSeconds", "SystemName", "SMTPToken",
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static void option(const char *key, const cJSON *v)
{
    char err[512] = "", *val = NULL;
    int rc = mt_option_value_from_json(key, v, &val, err, sizeof err);
    FZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
    if (rc != CM_OK) {
        FZ_ASSERT(val == NULL || rc == CM_OK);
        return;
    }
    FZ_ASSERT(val != NULL);
    err[0] = '\0';
    rc = mt_options_check(key, val, err, sizeof err);
    FZ_ASSERT(rc == CM_OK || rc == CM_ERR_INVAL || rc == CM_ERR_DENIED || rc == CM_ERR_NOMEM);
    FZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
    err[0] = '\0';
    (void)mt_pricing_check_option(key, val, err, sizeof err);
    FZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
    (void)mt_options_code_in(val, 429);
    (void)mt_option_is_secret(key);
    cm_free(val);
}

static void csv(const char *s)
{
    char *a = NULL, *b = NULL;
    if (mt_csv_normalize(s, &a) != CM_OK)
        return;
    FZ_ASSERT(mt_csv_normalize(a, &b) == CM_OK);
    FZ_ASSERT(strcmp(a, b) == 0);
    FZ_ASSERT(strstr(a, ",,") == NULL && a[0] != ',');
    cm_free(a);
    cm_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t ksel = fz_byte(&in);
    struct cm_json_parse_opts po = {.max_depth = 32, .max_size = 4u << 20};
    cJSON *b = NULL, *it;
    const char *s;

    fz_init();
    if (cm_json_parse((const char *)in.p, in.n, &po, &b, NULL) != CM_OK)
        return 0;
    if (!cJSON_IsObject(b)) {
        cJSON_Delete(b);
        return 0;
    }

    it = cJSON_GetObjectItemCaseSensitive(b, "value");
    if (it) {
        const char *key = KEYS[ksel % NKEYS];
        if (!key && cm_json_get_string(b, "key", &s, NULL) == CM_OK)
            key = s;
        if (key)
            option(key, it);
    }
    if (cm_json_get_string(b, "models", &s, NULL) == CM_OK)
        csv(s);
    if (cm_json_get_string(b, "group", &s, NULL) == CM_OK)
        csv(s);
    if (cm_json_get_string(b, "key", &s, NULL) == CM_OK) {
        char **keys = NULL;
        size_t n = 0, i;
        if (mt_keys_split(s, &keys, &n) == CM_OK) {
            FZ_ASSERT(n > 0);
            for (i = 0; i < n; i++)
                FZ_ASSERT(keys[i] && keys[i][0]);
            mt_keys_free(keys, n);
        }
    }
    if (cm_json_get_string(b, "model_mapping", &s, NULL) == CM_OK) {
        char out[MT_RELAY_MODEL_MAX];
        const char *m = "gpt-4o";
        (void)cm_json_get_string(b, "model", &m, NULL);
        if (mt_relay_map_model(s, m, out, sizeof out) == CM_OK)
            FZ_ASSERT(memchr(out, '\0', sizeof out) != NULL);
    }
    if (cm_json_get_string(b, "allow_ips", &s, NULL) == CM_OK) {
        char err[256] = "";
        (void)mt_auth_ip_list_valid(s, err, sizeof err);
        FZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
        (void)mt_auth_ip_allowed(s, "127.0.0.1");
        (void)mt_auth_ip_allowed(s, "::1");
    }
    {
        cJSON *ids = NULL;
        if (cm_json_get_array(b, "ids", &ids, NULL) == CM_OK) {
            const cJSON *el;
            int64_t v;
            cJSON_ArrayForEach(el, ids)(void) cm_json_to_int64(el, 1, CM_JSON_INT_MAX, &v);
        }
    }
    cJSON_Delete(b);
    return 0;
}
