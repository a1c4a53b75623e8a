/* SPDX-License-Identifier: MIT */
/*
 * test_translate_responses_codex.c - Responses clients on Codex: the body rules of spec
 * 3.1(d) (string input wrapped, system -> developer, dropped fields, service_tier, web
 * search tool rename, reasoning from the model suffix, fixed store/stream/include) and
 * the errors that name the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "translate/responses_codex.h"

static cJSON *run_ok(const char *json)
{
    cJSON *in = cJSON_Parse(json), *out = NULL;
    struct cp_tr_err e;
    assert_non_null(in);
    assert_int_equal(cp_tr_responses_codex_request(in, &out, &e), CM_OK);
    cJSON_Delete(in);
    return out;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void string_input_and_fixed_fields(void **state)
{
    cJSON *o = run_ok("{\"model\":\"gpt-5(high)\",\"input\":\"hi\",\"temperature\":0.2,"
                      "\"max_output_tokens\":10,\"user\":\"u\",\"previous_response_id\":\"r\","
                      "\"stream_options\":{},\"service_tier\":\"flex\",\"store\":true}");
    const cJSON *in, *r, *inc;
    (void)state;
    assert_string_equal(str(o, "model"), "gpt-5");
    in = cJSON_GetObjectItemCaseSensitive(o, "input");
    assert_true(cJSON_IsArray(in) && cJSON_GetArraySize(in) == 1);
    assert_string_equal(str(cJSON_GetArrayItem(in, 0), "role"), "user");
    assert_string_equal(
        str(cJSON_GetArrayItem(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(in, 0), "content"), 0),
            "text"),
        "hi");
    r = cJSON_GetObjectItemCaseSensitive(o, "reasoning");
    assert_string_equal(str(r, "effort"), "high");
    assert_string_equal(str(r, "summary"), "auto");
    for (const char *k = "temperature"; k; k = NULL)
        assert_null(cJSON_GetObjectItemCaseSensitive(o, k));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "max_output_tokens"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "user"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "previous_response_id"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "stream_options"));
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "service_tier"));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "store")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stream")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "parallel_tool_calls")));
    assert_string_equal(str(o, "instructions"), "");
    inc = cJSON_GetObjectItemCaseSensitive(o, "include");
    assert_int_equal(cJSON_GetArraySize(inc), 1);
    assert_string_equal(cJSON_GetArrayItem(inc, 0)->valuestring, "reasoning.encrypted_content");
    cJSON_Delete(o);
}

static void items_roles_tools_kept(void **state)
{
    cJSON *o = run_ok(
        "{\"model\":\"gpt-5-codex\",\"instructions\":\"be brief\",\"service_tier\":\"priority\","
        "\"parallel_tool_calls\":false,\"reasoning\":{\"effort\":\"low\"},"
        "\"prompt_cache_key\":\"pck\",\"input\":[{\"type\":\"message\",\"role\":\"system\","
        "\"content\":[]},{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"x\"}],"
        "\"tools\":[{\"type\":\"web_search_preview\"},{\"type\":\"function\",\"name\":\"f\"}]}");
    const cJSON *in, *tools;
    (void)state;
    in = cJSON_GetObjectItemCaseSensitive(o, "input");
    assert_string_equal(str(cJSON_GetArrayItem(in, 0), "role"), "developer");
    assert_string_equal(str(cJSON_GetArrayItem(in, 1), "call_id"), "c1");
    tools = cJSON_GetObjectItemCaseSensitive(o, "tools");
    assert_string_equal(str(cJSON_GetArrayItem(tools, 0), "type"), "web_search");
    assert_string_equal(str(cJSON_GetArrayItem(tools, 1), "type"), "function");
    assert_string_equal(str(o, "service_tier"), "priority");
    assert_string_equal(str(o, "instructions"), "be brief");
    assert_string_equal(str(o, "prompt_cache_key"), "pck");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "parallel_tool_calls")));
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(o, "reasoning"), "effort"), "low");
    cJSON_Delete(o);
}

static void errors_name_the_field(void **state)
{
    static const struct {
        const char *json, *field;
    } cases[] = {{"{\"input\":\"x\"}", "model"},
                 {"{\"model\":\"gpt-5(nonsense)\",\"input\":\"x\"}", "model"},
                 {"{\"model\":\"gpt-5\"}", "input"},
                 {"{\"model\":\"gpt-5\",\"input\":42}", "input"},
                 {"{\"model\":\"gpt-5\",\"input\":\"x\",\"tools\":{}}", "tools"},
                 {"{\"model\":\"gpt-5\",\"input\":\"x\",\"reasoning\":\"high\"}", "reasoning"}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *in = cJSON_Parse(cases[i].json), *out = NULL;
        struct cp_tr_err e;
        assert_int_equal(cp_tr_responses_codex_request(in, &out, &e), CM_ERR_INVAL);
        assert_null(out);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.field, cases[i].field);
        cJSON_Delete(in);
    }
}

static void oom_walk(void **state)
{
    const char *json = "{\"model\":\"gpt-5(low)\",\"input\":\"hello\",\"tools\":[{\"type\":"
                       "\"web_search_preview\"}]}";
    (void)state;
    cm_alloc_hook_cjson();
    for (long n = 1; n < 200; n++) {
        cJSON *in = cJSON_Parse(json), *out = NULL;
        struct cp_tr_err e;
        int rc;
        assert_non_null(in);
        cm_alloc_fail_at(n);
        rc = cp_tr_responses_codex_request(in, &out, &e);
        cm_alloc_fail_at(0);
        cJSON_Delete(in);
        cJSON_Delete(out);
        if (rc == CM_OK)
            return;
        assert_int_equal(rc, CM_ERR_NOMEM);
    }
    fail_msg("never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(string_input_and_fixed_fields),
        cmocka_unit_test(items_roles_tools_kept),
        cmocka_unit_test(errors_name_the_field),
        cmocka_unit_test(oom_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
