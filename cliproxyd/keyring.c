/* SPDX-License-Identifier: MIT */
/* keyring.c - config.yaml's API-key credentials in the scheduler; see keyring.h. */
#include "keyring.h"

#include "catalog.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/log.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define GEMINI_KEY_BASE "https://generativelanguage.googleapis.com"

struct kentry {
    char *id;
    struct cp_authstore_cred *cred;
};

struct cp_keyring {
    pthread_mutex_t mu; /* v, n, pool */
    struct cp_sched *sched;
    struct kentry *v;
    size_t n;
    char **pool; /* model names handed to cp_keyring_models(): only grows */
    size_t npool;
};

int cp_keyring_new(struct cp_sched *sched, struct cp_keyring **out)
{
    struct cp_keyring *k;
    if (!sched || !out)
        return CM_ERR_INVAL;
    if (!(k = cm_calloc(1, sizeof *k)))
        return CM_ERR_NOMEM;
    pthread_mutex_init(&k->mu, NULL);
    k->sched = sched;
    *out = k;
    return CM_OK;
}

static void entries_free(struct kentry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cm_free(v[i].id);
        cp_authstore_release(v[i].cred);
    }
    cm_free(v);
}

void cp_keyring_free(struct cp_keyring *k)
{
    if (!k)
        return;
    entries_free(k->v, k->n);
    for (size_t i = 0; i < k->npool; i++)
        cm_free(k->pool[i]);
    cm_free(k->pool);
    pthread_mutex_destroy(&k->mu);
    cm_free(k);
}

/* ---- building one credential ---- */

/* what one credential is made of (all borrowed) */
struct spec {
    const char *id, *type, *key, *base, *proxy, *prefix;
    enum cp_auth_provider prov;
    int priority;
    const struct cp_config_model *models;
    unsigned n_models;
    unsigned pool_index; /* which name of a repeated alias this credential sends */
    char *const *excluded;
    unsigned n_excluded;
    char *const *hdr_names, *const *hdr_values; /* the entry's `headers` */
    unsigned n_hdrs;
};

static int dup_opt(char **dst, const char *src)
{
    if (!src || !*src)
        return CM_OK;
    *dst = cm_strdup(src);
    return *dst ? CM_OK : CM_ERR_NOMEM;
}

/* the index-th name listed for @p alias (the alias of models[at]) */
static const char *nth_name(const struct spec *s, const char *alias, unsigned index)
{
    unsigned seen = 0;
    for (unsigned i = 0; i < s->n_models; i++) {
        const char *a =
            s->models[i].alias && *s->models[i].alias ? s->models[i].alias : s->models[i].name;
        if (a && strcasecmp(a, alias) == 0 && seen++ == index)
            return s->models[i].name;
    }
    return NULL;
}

/* the alias table of the credential: every served alias whose pool has a name at
 * s->pool_index, mapped to that name (first occurrence of each alias only) */
static int fill_models(const struct spec *s, struct cp_authfile *af)
{
    if (!s->n_models)
        return CM_OK;
    if (!(af->model_alias = cm_calloc(s->n_models, sizeof(char *))) ||
        !(af->model_name = cm_calloc(s->n_models, sizeof(char *))))
        return CM_ERR_NOMEM;
    for (unsigned i = 0; i < s->n_models; i++) {
        const struct cp_config_model *m = &s->models[i];
        const char *alias = m->alias && *m->alias ? m->alias : m->name;
        const char *name;
        int dup = 0;
        if (!alias || !*alias)
            continue;
        for (size_t j = 0; j < af->n_model_alias && !dup; j++)
            dup = strcasecmp(af->model_alias[j], alias) == 0;
        if (dup || !(name = nth_name(s, alias, s->pool_index)))
            continue;
        af->model_alias[af->n_model_alias] = cm_strdup(alias);
        af->model_name[af->n_model_alias] = cm_strdup(name);
        if (!af->model_alias[af->n_model_alias] || !af->model_name[af->n_model_alias++])
            return CM_ERR_NOMEM;
    }
    return CM_OK;
}

static int make_af(const struct spec *s, struct cp_authfile **out)
{
    struct cp_authfile *af = cm_calloc(1, sizeof *af);
    int rc = CM_ERR_NOMEM;

    if (!af)
        return CM_ERR_NOMEM;
    af->provider = s->prov;
    af->priority = s->priority;
    af->key_entry = true;
    af->disable_cooling = -1;
    if (!(af->name = cm_strdup(s->id)) || !(af->type = cm_strdup(s->type)) ||
        !(af->json = cJSON_CreateObject()) || dup_opt(&af->access_token, s->key) ||
        dup_opt(&af->base_url, s->base) || dup_opt(&af->proxy_url, s->proxy) ||
        dup_opt(&af->prefix, s->prefix) || fill_models(s, af))
        goto fail;
    (void)cp_authfile_auth_index(af->name, af->auth_index);
    if (s->n_hdrs) {
        if (!(af->header_names = cm_calloc(s->n_hdrs, sizeof(char *))) ||
            !(af->header_values = cm_calloc(s->n_hdrs, sizeof(char *))))
            goto fail;
        for (unsigned i = 0; i < s->n_hdrs; i++) {
            af->header_names[i] = cm_strdup(s->hdr_names[i]);
            af->header_values[i] = cm_strdup(s->hdr_values[i]);
            af->n_headers++;
            if (!af->header_names[i] || !af->header_values[i])
                goto fail;
        }
    }
    if (s->n_excluded) {
        if (!(af->excluded_models = cm_calloc(s->n_excluded, sizeof(char *))))
            goto fail;
        for (unsigned i = 0; i < s->n_excluded; i++)
            if (s->excluded[i] &&
                dup_opt(&af->excluded_models[af->n_excluded_models++], s->excluded[i]))
                goto fail;
    }
    *out = af;
    return CM_OK;
fail:
    cp_authfile_free(af);
    return rc;
}

/* registers (or updates) one credential into the new table */
static int add_one(struct cp_keyring *k, const struct spec *s, struct kentry *nv, size_t *nn)
{
    struct cp_authfile *af = NULL;
    struct cp_authstore_cred *cred = NULL;
    struct cp_sched_cred sc = {0};
    const char *const *models;
    size_t n_models;
    int rc;

    if ((rc = make_af(s, &af)))
        return rc;
    if (af->n_model_alias) {
        models = (const char *const *)af->model_alias;
        n_models = af->n_model_alias;
    } else {
        n_models = cp_catalog_models(cp_authfile_provider_name(s->prov), NULL, &models);
    }
    if (!n_models) {
        cm_log_warn(NULL, "cliproxyd: %s lists no models; it serves nothing", s->id);
        cp_authfile_free(af);
        return CM_OK;
    }
    sc.id = s->id;
    sc.provider =
        s->prov == CP_AUTH_UNKNOWN ? "openai-compatibility" : cp_authfile_provider_name(s->prov);
    sc.prefix = af->prefix;
    sc.priority = s->priority;
    sc.disable_cooling = -1;
    sc.models = models;
    sc.n_models = n_models;
    sc.excluded = (const char *const *)af->excluded_models;
    sc.n_excluded = af->n_excluded_models;
    rc = cp_sched_update(k->sched, &sc);
    if (rc == CM_ERR_NOTFOUND)
        rc = cp_sched_add(k->sched, &sc);
    if (!rc && !(nv[*nn].id = cm_strdup(s->id)))
        rc = CM_ERR_NOMEM;
    if (!rc && (rc = cp_authstore_cred_wrap(&af, &cred)))
        cm_free(nv[*nn].id);
    if (rc) {
        cp_authfile_free(af);
        return rc;
    }
    cred->provider = sc.provider;
    nv[(*nn)++].cred = cred;
    return CM_OK;
}

/* how many credentials an entry with these models needs (the longest alias pool) */
static unsigned pool_size(const struct spec *s)
{
    unsigned best = 1;
    for (unsigned i = 0; i < s->n_models; i++) {
        const char *a =
            s->models[i].alias && *s->models[i].alias ? s->models[i].alias : s->models[i].name;
        unsigned c = 0;
        while (a && nth_name(s, a, c))
            c++;
        best = c > best ? c : best;
    }
    return best;
}

/* one list entry: pool_size() credentials "<id>", "<id>/1", ... */
static int add_entry(struct cp_keyring *k, struct spec *s, struct kentry *nv, size_t *nn,
                     size_t cap)
{
    unsigned pools = pool_size(s);
    char id[CP_SCHED_MAX_ID_LEN + 1];
    const char *base_id = s->id;
    int rc = CM_OK;

    for (unsigned p = 0; p < pools && !rc && *nn < cap; p++) {
        if (p)
            snprintf(id, sizeof id, "%s/%u", base_id, p);
        else
            snprintf(id, sizeof id, "%s", base_id);
        s->id = id;
        s->pool_index = p;
        rc = add_one(k, s, nv, nn);
    }
    s->id = base_id;
    return rc;
}

static size_t count_all(const struct cp_config *cfg)
{
    size_t n =
        (size_t)cfg->codex_api_key_count + cfg->claude_api_key_count + cfg->gemini_api_key_count;
    for (unsigned i = 0; i < cfg->openai_compatibility_count; i++)
        n += cfg->openai_compatibility[i].api_key_entries_count
                 ? cfg->openai_compatibility[i].api_key_entries_count
                 : 1;
    return n;
}

static int add_keys(struct cp_keyring *k, const char *list, const char *type,
                    enum cp_auth_provider prov, const struct cp_config_key_entry *e, unsigned n,
                    struct kentry *nv, size_t *nn, size_t cap)
{
    char id[CP_SCHED_MAX_ID_LEN + 1];
    int rc = CM_OK;
    for (unsigned i = 0; i < n && !rc; i++) {
        struct spec s = {0};
        if (!e[i].api_key || !*e[i].api_key)
            continue;
        if (prov == CP_AUTH_CODEX && (!e[i].base_url || !*e[i].base_url)) {
            cm_log_warn(NULL, "cliproxyd: %s[%u] has no base-url; skipped", list, i);
            continue;
        }
        snprintf(id, sizeof id, "%s[%u]", list, i);
        s.id = id;
        s.type = type;
        s.prov = prov;
        s.key = e[i].api_key;
        s.base = e[i].base_url && *e[i].base_url
                     ? e[i].base_url
                     : (prov == CP_AUTH_GEMINI ? GEMINI_KEY_BASE : NULL);
        s.proxy = e[i].proxy_url;
        s.prefix = e[i].prefix;
        s.priority = e[i].priority;
        s.models = e[i].models;
        s.n_models = e[i].models_count;
        s.excluded = e[i].excluded_models;
        s.n_excluded = e[i].excluded_models_count;
        s.hdr_names = e[i].hdr_names;
        s.hdr_values = e[i].hdr_values;
        s.n_hdrs = e[i].n_hdrs;
        rc = add_entry(k, &s, nv, nn, cap);
    }
    return rc;
}

static int add_compat(struct cp_keyring *k, const struct cp_config_compat *c, unsigned n,
                      struct kentry *nv, size_t *nn, size_t cap)
{
    char id[CP_SCHED_MAX_ID_LEN + 1];
    int rc = CM_OK;
    for (unsigned i = 0; i < n && !rc; i++) {
        unsigned nk = c[i].api_key_entries_count ? c[i].api_key_entries_count : 1;
        if (!c[i].base_url || !*c[i].base_url) {
            cm_log_warn(NULL, "cliproxyd: openai-compatibility '%s' has no base-url; skipped",
                        c[i].name ? c[i].name : "");
            continue;
        }
        for (unsigned j = 0; j < nk && !rc; j++) {
            const struct cp_config_compat_key *key =
                c[i].api_key_entries_count ? &c[i].api_key_entries[j] : NULL;
            struct spec s = {0};
            snprintf(id, sizeof id, "openai-compatibility[%s][%u]", c[i].name ? c[i].name : "", j);
            s.id = id;
            s.type = "openai-compatibility";
            s.prov = CP_AUTH_UNKNOWN;
            s.key = key ? key->api_key : NULL;
            s.base = c[i].base_url;
            s.proxy = key ? key->proxy_url : NULL;
            s.prefix = c[i].prefix;
            s.priority = c[i].priority;
            s.models = c[i].models;
            s.n_models = c[i].models_count;
            s.hdr_names = c[i].hdr_names;
            s.hdr_values = c[i].hdr_values;
            s.n_hdrs = c[i].n_hdrs;
            rc = add_entry(k, &s, nv, nn, cap);
        }
    }
    return rc;
}

int cp_keyring_apply(struct cp_keyring *k, const struct cp_config *cfg)
{
    /* every entry may become several credentials (alias pools): room for 16 each */
    size_t cap = count_all(cfg) * 16, nn = 0, oldn;
    struct kentry *nv = cap ? cm_calloc(cap, sizeof *nv) : NULL, *old;
    int rc;

    if (cap && !nv)
        return CM_ERR_NOMEM;
    rc = add_keys(k, "codex-api-key", "codex", CP_AUTH_CODEX, cfg->codex_api_key,
                  cfg->codex_api_key_count, nv, &nn, cap);
    if (!rc)
        rc = add_keys(k, "claude-api-key", "claude", CP_AUTH_CLAUDE, cfg->claude_api_key,
                      cfg->claude_api_key_count, nv, &nn, cap);
    if (!rc)
        rc = add_keys(k, "gemini-api-key", "gemini", CP_AUTH_GEMINI, cfg->gemini_api_key,
                      cfg->gemini_api_key_count, nv, &nn, cap);
    if (!rc)
        rc =
            add_compat(k, cfg->openai_compatibility, cfg->openai_compatibility_count, nv, &nn, cap);
    pthread_mutex_lock(&k->mu);
    old = k->v;
    oldn = k->n;
    k->v = nv;
    k->n = nn;
    pthread_mutex_unlock(&k->mu);
    /* what the new config no longer has leaves the scheduler */
    for (size_t i = 0; i < oldn; i++) {
        int kept = 0;
        for (size_t j = 0; j < nn && !kept; j++)
            kept = strcmp(old[i].id, nv[j].id) == 0;
        if (!kept)
            (void)cp_sched_remove(k->sched, old[i].id);
    }
    entries_free(old, oldn);
    if (nn)
        cm_log_info(NULL, "cliproxyd: %zu API-key credential(s) from the config", nn);
    return rc;
}

struct cp_authstore_cred *cp_keyring_acquire(struct cp_keyring *k, const char *id)
{
    struct cp_authstore_cred *c = NULL;
    if (!k || !id)
        return NULL;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n && !c; i++)
        if (strcmp(k->v[i].id, id) == 0) {
            c = k->v[i].cred;
            atomic_fetch_add(&c->_refs, 1);
        }
    pthread_mutex_unlock(&k->mu);
    return c;
}

/* an interned copy of @p s (caller holds mu); NULL when out of memory */
static const char *intern(struct cp_keyring *k, const char *s)
{
    char **np;
    for (size_t i = 0; i < k->npool; i++)
        if (strcmp(k->pool[i], s) == 0)
            return k->pool[i];
    if (!(np = cm_realloc(k->pool, (k->npool + 1) * sizeof *np)))
        return NULL;
    k->pool = np;
    if (!(np[k->npool] = cm_strdup(s)))
        return NULL;
    return np[k->npool++];
}

const char *cp_keyring_intern(struct cp_keyring *k, const char *s)
{
    const char *r;
    if (!k || !s)
        return NULL;
    pthread_mutex_lock(&k->mu);
    r = intern(k, s);
    pthread_mutex_unlock(&k->mu);
    return r;
}

size_t cp_keyring_models(struct cp_keyring *k, const char **ids, const char **owners, size_t n,
                         size_t cap)
{
    if (!k)
        return n;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n; i++) {
        const struct cp_authfile *af = k->v[i].cred->af;
        const char *const *m = (const char *const *)af->model_alias;
        size_t nm = af->n_model_alias;
        if (!nm)
            nm = cp_catalog_models(k->v[i].cred->provider, NULL, &m);
        for (size_t j = 0; j < nm && n < cap; j++) {
            const char *s = intern(k, m[j]);
            size_t d = 0;
            while (s && d < n && strcmp(ids[d], s) != 0)
                d++;
            if (s && d == n) {
                ids[n] = s;
                owners[n++] = cp_catalog_owner(k->v[i].cred->provider);
            }
        }
    }
    pthread_mutex_unlock(&k->mu);
    return n;
}
