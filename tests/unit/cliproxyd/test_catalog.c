/* SPDX-License-Identifier: MIT */
/* test_catalog.c - built-in model lists: Codex by plan (spark only on plus/pro), Claude,
 * Gemini CLI, Qwen, iFlow, and their /v1/models owners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "catalog.h"

static int has(const char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

static void codex_plans(void **state)
{
    const char *const *ids;
    size_t n;
    (void)state;
    static const char *const no_spark[] = {"free", "team", "business", "go"};
    static const char *const spark[] = {"plus", "pro", "enterprise", ""};
    for (size_t i = 0; i < 4; i++) {
        n = cp_catalog_models("codex", no_spark[i], &ids);
        assert_int_equal(n, 12);
        assert_true(has(ids, n, "gpt-5-codex"));
        assert_false(has(ids, n, "gpt-5.3-codex-spark"));
        n = cp_catalog_models("codex", spark[i], &ids);
        assert_int_equal(n, 13);
        assert_true(has(ids, n, "gpt-5.3-codex-spark"));
    }
    n = cp_catalog_models("codex", NULL, &ids); /* unknown plan counts as pro */
    assert_true(has(ids, n, "gpt-5.3-codex-spark"));
    assert_string_equal(cp_catalog_owner("codex"), "openai");
}

static void claude_and_others(void **state)
{
    const char *const *ids = (const char *const *)&ids;
    size_t n;
    (void)state;
    n = cp_catalog_models("claude", "plus", &ids);
    assert_int_equal(n, 10);
    assert_true(has(ids, n, "claude-sonnet-4-5-20250929"));
    assert_true(has(ids, n, "claude-3-5-haiku-20241022"));
    assert_string_equal(cp_catalog_owner("claude"), "anthropic");
    assert_int_equal(cp_catalog_models("kimi", NULL, &ids), 0);
    assert_null(ids);
    assert_int_equal(cp_catalog_models(NULL, NULL, &ids), 0);
    assert_string_equal(cp_catalog_owner("kimi"), "cliproxyd");
}

static void gemini_qwen_iflow(void **state)
{
    const char *const *ids;
    size_t n;
    (void)state;
    n = cp_catalog_models("gemini", NULL, &ids);
    assert_int_equal(n, 7);
    assert_string_equal(ids[0], "gemini-2.5-pro");
    assert_true(has(ids, n, "gemini-2.5-flash-lite"));
    assert_true(has(ids, n, "gemini-3.1-flash-lite-preview"));
    assert_int_equal(cp_catalog_models("gemini-cli", NULL, &ids), 7);
    assert_string_equal(cp_catalog_owner("gemini"), "google");
    n = cp_catalog_models("qwen", NULL, &ids);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], "coder-model");
    assert_true(has(ids, n, "qwen3-coder-plus"));
    assert_true(has(ids, n, "qwen3-coder-flash"));
    assert_string_equal(cp_catalog_owner("qwen"), "qwen");
    n = cp_catalog_models("iflow", NULL, &ids);
    assert_int_equal(n, 15);
    assert_true(has(ids, n, "glm-4.6"));
    assert_true(has(ids, n, "deepseek-r1"));
    assert_true(has(ids, n, "iflow-rome-30ba3b"));
    assert_false(has(ids, n, "coder-model"));
    assert_string_equal(cp_catalog_owner("iflow"), "iflow");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codex_plans),
        cmocka_unit_test(claude_and_others),
        cmocka_unit_test(gemini_qwen_iflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
