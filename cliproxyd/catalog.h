/* SPDX-License-Identifier: MIT */
/*
 * catalog.h - the models each kind of credential serves, as CLIProxyAPI's built-in
 * registry lists them (spec cliproxyapi.md 3.1(f) Codex by ChatGPT plan, 3.2(f) Claude,
 * 3.3(f) Gemini CLI, 3.4(f) Qwen, 3.5(f) iFlow).
 * Pure data and lookups; static storage; thread-safe.
 */
#ifndef CP_CATALOG_H
#define CP_CATALOG_H

#include <stddef.h>

/**
 * The model ids a credential of @p provider ("codex", "claude", "gemini" (also
 * "gemini-cli"), "qwen", "iflow") with ChatGPT plan
 * @p plan (Codex only: "free", "plus", "pro", "team", "business", "go"; NULL or anything
 * else counts as pro, as CLIProxyAPI does) serves. Sets *ids to a static array and
 * returns its length; 0 (and *ids NULL) for providers without a catalog.
 */
size_t cp_catalog_models(const char *provider, const char *plan, const char *const **ids);

/** Who "owns" a provider's models in /v1/models ("openai", "anthropic", "google", "qwen",
 *  "iflow"); "cliproxyd" else. */
const char *cp_catalog_owner(const char *provider);

#endif
