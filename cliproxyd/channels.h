/* SPDX-License-Identifier: MIT */
/*
 * channels.h - config.yaml's per-channel rules for the auth-dir logins (spec
 * cliproxyapi.md 2): `oauth-excluded-models.<channel>` (wildcards a channel's credentials
 * do not serve) and `oauth-model-alias.<channel>` ({name, alias, fork}: clients ask for
 * `alias`, the upstream gets `name`; without `fork` the alias replaces the name, with it
 * both are served). Channels are named as CLIProxyAPI names them: our provider "gemini"
 * is the channel "gemini-cli"; the others match ("codex", "claude", "qwen", "iflow").
 * Pure over the config given.
 */
#ifndef CP_CHANNELS_H
#define CP_CHANNELS_H

#include "authstore.h"
#include "config.h"

#include <stddef.h>

/** Largest model list cp_channel_models() produces. */
#define CP_CHANNEL_MAX_MODELS 256

/**
 * The models credential @p af serves under @p cfg: its built-in list
 * (cp_authstore_default_models()) minus the channel's excluded patterns, with the
 * channel's aliases applied, into @p out (strings borrowed from static catalogs and
 * @p cfg, valid while @p cfg is). Returns the count (0: nothing, or no catalog).
 */
size_t cp_channel_models(const struct cp_config *cfg, const struct cp_authfile *af,
                         const char *out[CP_CHANNEL_MAX_MODELS]);

/**
 * The name the upstream of credential @p c knows @p model by: the credential's own alias
 * table (API-key entries), else its channel's oauth-model-alias, else @p model. Borrowed.
 */
const char *cp_channel_upstream_model(const struct cp_config *cfg,
                                      const struct cp_authstore_cred *c, const char *model);

/**
 * An authstore models callback (cp_authstore_models_fn) applying cp_channel_models()
 * with the live config @p ud (a struct cp_config_live *); falls back to the built-in
 * list while there is no live config yet.
 */
int cp_channel_models_cb(const struct cp_authfile *af, const char *const **models, size_t *n,
                         void *ud);

#endif
