/* SPDX-License-Identifier: MIT */
/* catalog.c - built-in model lists per provider (and Codex plan); see catalog.h. */
#include "catalog.h"

#include <string.h>
#include <strings.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Codex: free / team plans (spec 3.1(f), v6 models.json) */
static const char *const codex_base[] = {
    "gpt-5",         "gpt-5-codex",        "gpt-5-codex-mini",  "gpt-5.1",
    "gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1-codex-max", "gpt-5.2",
    "gpt-5.2-codex", "gpt-5.3-codex",      "gpt-5.4",           "gpt-5.4-mini"};
/* plus / pro add the spark model */
static const char *const codex_plus[] = {"gpt-5",
                                         "gpt-5-codex",
                                         "gpt-5-codex-mini",
                                         "gpt-5.1",
                                         "gpt-5.1-codex",
                                         "gpt-5.1-codex-mini",
                                         "gpt-5.1-codex-max",
                                         "gpt-5.2",
                                         "gpt-5.2-codex",
                                         "gpt-5.3-codex",
                                         "gpt-5.4",
                                         "gpt-5.4-mini",
                                         "gpt-5.3-codex-spark"};
static const char *const claude[] = {"claude-haiku-4-5-20251001",  "claude-sonnet-4-5-20250929",
                                     "claude-sonnet-4-6",          "claude-opus-4-6",
                                     "claude-opus-4-5-20251101",   "claude-opus-4-1-20250805",
                                     "claude-opus-4-20250514",     "claude-sonnet-4-20250514",
                                     "claude-3-7-sonnet-20250219", "claude-3-5-haiku-20241022"};

/* Gemini CLI (spec 3.3(f)) */
static const char *const gemini[] = {"gemini-2.5-pro",
                                     "gemini-2.5-flash",
                                     "gemini-2.5-flash-lite",
                                     "gemini-3-pro-preview",
                                     "gemini-3.1-pro-preview",
                                     "gemini-3-flash-preview",
                                     "gemini-3.1-flash-lite-preview"};
/* Qwen (spec 3.4(f): coder-model; the two qwen3-coder ids Qwen Code also accepts) */
static const char *const qwen[] = {"coder-model", "qwen3-coder-plus", "qwen3-coder-flash"};
/* iFlow (spec 3.5(f)) */
static const char *const iflow[] = {"qwen3-coder-plus",
                                    "qwen3-max",
                                    "qwen3-vl-plus",
                                    "qwen3-max-preview",
                                    "glm-4.6",
                                    "kimi-k2",
                                    "deepseek-v3.2",
                                    "deepseek-v3.1",
                                    "deepseek-r1",
                                    "deepseek-v3",
                                    "qwen3-32b",
                                    "qwen3-235b-a22b-thinking-2507",
                                    "qwen3-235b-a22b-instruct",
                                    "qwen3-235b",
                                    "iflow-rome-30ba3b"};

size_t cp_catalog_models(const char *provider, const char *plan, const char *const **ids)
{
    *ids = NULL;
    if (!provider)
        return 0;
    if (strcmp(provider, "claude") == 0) {
        *ids = claude;
        return N(claude);
    }
    if (strcmp(provider, "gemini") == 0 || strcmp(provider, "gemini-cli") == 0) {
        *ids = gemini;
        return N(gemini);
    }
    if (strcmp(provider, "qwen") == 0) {
        *ids = qwen;
        return N(qwen);
    }
    if (strcmp(provider, "iflow") == 0) {
        *ids = iflow;
        return N(iflow);
    }
    if (strcmp(provider, "codex") == 0) {
        /* team / business / go -> the team list; free -> free; anything else -> pro */
        if (plan && (strcasecmp(plan, "free") == 0 || strcasecmp(plan, "team") == 0 ||
                     strcasecmp(plan, "business") == 0 || strcasecmp(plan, "go") == 0)) {
            *ids = codex_base;
            return N(codex_base);
        }
        *ids = codex_plus;
        return N(codex_plus);
    }
    return 0;
}

const char *cp_catalog_owner(const char *provider)
{
    if (provider && strcmp(provider, "codex") == 0)
        return "openai";
    if (provider && strcmp(provider, "claude") == 0)
        return "anthropic";
    if (provider && (strcmp(provider, "gemini") == 0 || strcmp(provider, "gemini-cli") == 0))
        return "google";
    if (provider && strcmp(provider, "qwen") == 0)
        return "qwen";
    if (provider && strcmp(provider, "iflow") == 0)
        return "iflow";
    return "cliproxyd";
}
