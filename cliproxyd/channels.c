/* SPDX-License-Identifier: MIT */
/* channels.c - oauth-excluded-models and oauth-model-alias per channel; see channels.h. */
#include "channels.h"

#include "cm/err.h"
#include "scheduler.h"

#include <string.h>
#include <strings.h>

/* the channel's members of the two per-channel tables (NULL / 0 when none) */
static void channel_of(const struct cp_config *cfg, const char *provider,
                       const struct cp_config_alias **al, unsigned *nal, char *const **ex,
                       unsigned *nex)
{
    *al = NULL, *nal = 0, *ex = NULL, *nex = 0;
    if (!cfg || !provider)
        return;
#define CP_CHANNEL_PICK_(m, k)                                                                     \
    if (strcmp(provider, strcmp(k, "gemini-cli") == 0 ? "gemini" : k) == 0) {                      \
        if (cfg->oauth_model_alias) {                                                              \
            *al = cfg->oauth_model_alias->m;                                                       \
            *nal = cfg->oauth_model_alias->m##_count;                                              \
        }                                                                                          \
        if (cfg->oauth_excluded_models) {                                                          \
            *ex = cfg->oauth_excluded_models->m;                                                   \
            *nex = cfg->oauth_excluded_models->m##_count;                                          \
        }                                                                                          \
        return;                                                                                    \
    }
    CP_CONFIG_CHANNELS(CP_CHANNEL_PICK_)
#undef CP_CHANNEL_PICK_
}

static int excluded(char *const *ex, unsigned nex, const char *m)
{
    for (unsigned i = 0; i < nex; i++)
        if (ex[i] && cp_sched_pattern_match(ex[i], m))
            return 1;
    return 0;
}

static void add(const char **out, size_t *n, const char *m)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(out[i], m) == 0)
            return;
    if (*n < CP_CHANNEL_MAX_MODELS)
        out[(*n)++] = m;
}

size_t cp_channel_models(const struct cp_config *cfg, const struct cp_authfile *af,
                         const char *out[CP_CHANNEL_MAX_MODELS])
{
    const char *const *base = NULL;
    size_t nbase = 0, n = 0;
    const struct cp_config_alias *al;
    char *const *ex;
    unsigned nal, nex;

    if (cp_authstore_default_models(af, &base, &nbase, NULL) != CM_OK)
        return 0;
    channel_of(cfg, cp_authfile_provider_name(af->provider), &al, &nal, &ex, &nex);
    for (size_t i = 0; i < nbase; i++) {
        int aliased = 0;
        if (excluded(ex, nex, base[i]))
            continue;
        for (unsigned a = 0; a < nal; a++)
            if (al[a].name && al[a].alias && *al[a].alias && strcasecmp(al[a].name, base[i]) == 0) {
                add(out, &n, al[a].alias);
                aliased |= !al[a].fork;
            }
        if (!aliased)
            add(out, &n, base[i]);
    }
    return n;
}

const char *cp_channel_upstream_model(const struct cp_config *cfg,
                                      const struct cp_authstore_cred *c, const char *model)
{
    const struct cp_config_alias *al;
    char *const *ex;
    unsigned nal, nex;
    const char *own = cp_authfile_upstream_model(c ? c->af : NULL, model);

    if (own != model || !c || !c->af || c->af->key_entry)
        return own;
    channel_of(cfg, c->provider, &al, &nal, &ex, &nex);
    for (unsigned a = 0; a < nal; a++)
        if (al[a].alias && al[a].name && strcasecmp(al[a].alias, model) == 0)
            return al[a].name;
    return model;
}

int cp_channel_models_cb(const struct cp_authfile *af, const char *const **models, size_t *n,
                         void *ud)
{
    /* called with the store's load lock held: one caller at a time, so one buffer does;
     * the config the aliases come from stays referenced until the next call (the
     * scheduler copies the list before that) */
    static const char *buf[CP_CHANNEL_MAX_MODELS];
    static struct cp_config_ref *held;
    struct cp_config_ref *ref = cp_config_live_acquire(ud);
    if (!ref)
        return cp_authstore_default_models(af, models, n, NULL);
    cp_config_ref_release(held);
    held = ref;
    *n = cp_channel_models(cp_config_ref_get(ref), af, buf);
    *models = buf;
    return *n ? CM_OK : CM_ERR_NOTFOUND;
}
