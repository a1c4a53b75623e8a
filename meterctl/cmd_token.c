/* SPDX-License-Identifier: MIT */
/*
 * cmd_token.c - `meterctl token create` and `meterctl token list` for the --user account
 * (NewAPI scopes /api/token/ to the caller's own tokens).
 *
 * create: POST /api/token/ answers without the key or the id (spec newapi.md 3.4), so the
 * new token is found as the highest id with that name on the first page of GET /api/token/
 * (id desc), and its key read once with POST /api/token/:id/key. The key goes alone to
 * stdout (KEY=$(meterctl token create ci) works); everything else to stderr. The key is the
 * only secret meterctl ever prints, and only here.
 */
#include "cmd.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "pricing.h"

#include <stdio.h>
#include <string.h>

#define TOKENS_MAX 100000
#define TOKEN_NAME_MAX 50 /* characters (NewAPI's check) */

static const char TOKEN_USAGE[] =
    "usage: meterctl token create NAME [--quota N | --usd N] [--models M1,M2] [--expires WHEN]\n"
    "                                  [--group G]\n"
    "       meterctl token list\n"
    "  create makes an API key for the --user account and prints the sk- key once.\n"
    "  No --quota/--usd: unlimited. WHEN: never (default), 30d, 12h, YYYY-MM-DD, a unix time.\n";

/* the id of the newest token named @p name on the first page of the caller's tokens */
static int find_token(struct mc_ctx *c, const char *name, int64_t *id)
{
    struct mc_api_err e;
    cJSON *root = NULL;
    const cJSON *d, *items, *t;

    *id = 0;
    if (mc_api_request(&c->api, "GET", "/api/token/?p=1&page_size=100", NULL, 0, &root, &e))
        return mc_fail_api(c, "GET /api/token/", &e);
    d = cJSON_GetObjectItemCaseSensitive(root, "data");
    items = cJSON_IsArray(d) ? d : cJSON_GetObjectItemCaseSensitive(d, "items");
    cJSON_ArrayForEach(t, (cJSON_IsArray(items) ? items : NULL))
    {
        int64_t tid = mc_json_num(t, "id");
        if (strcmp(mc_json_str(t, "name"), name) == 0 && tid > *id)
            *id = tid;
    }
    cJSON_Delete(root);
    if (!*id) {
        mc_errorf(c, "token \"%s\" was created but does not show in GET /api/token/", name);
        return MC_EXIT_FAIL;
    }
    return MC_EXIT_OK;
}

static int token_create(struct mc_ctx *c, int argc, char **argv)
{
    enum { O_QUOTA = 1, O_USD, O_MODELS, O_EXPIRES, O_GROUP };
    static const struct mc_opt opts[] = {
        {"quota", 0, O_QUOTA, 1},     {"usd", 0, O_USD, 1},     {"models", 0, O_MODELS, 1},
        {"expires", 0, O_EXPIRES, 1}, {"group", 0, O_GROUP, 1}, {NULL, 0, 0, 0},
    };
    const struct mc_opt *const tables[] = {opts, mc_global_opts, NULL};
    const char *name = NULL, *quota_arg = NULL, *usd_arg = NULL, *models_arg = NULL,
               *expires_arg = NULL, *group = "";
    struct mt_pricing *units = NULL;
    cJSON *body = NULL, *root = NULL, *out = NULL;
    struct mc_args a;
    struct mc_arg arg;
    struct mc_api_err e;
    char err[256], models[4096] = "", path[64], b1[40], when[40];
    int64_t quota = 0, expires = -1, id = 0;
    double usd = 0;
    const char *key;
    int ex;

    mc_args_init(&a, argc, argv);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err))
            return mc_usage_error(c, TOKEN_USAGE, "%s", err);
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            if (name)
                return mc_usage_error(c, TOKEN_USAGE, "unexpected argument \"%s\"", arg.value);
            name = arg.value;
            continue;
        }
        switch (arg.id) {
        case O_QUOTA:
            quota_arg = arg.value;
            break;
        case O_USD:
            usd_arg = arg.value;
            break;
        case O_MODELS:
            models_arg = arg.value;
            break;
        case O_EXPIRES:
            expires_arg = arg.value;
            break;
        case O_GROUP:
            group = arg.value;
            break;
        default:
            if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL)
                return mc_usage_error(c, TOKEN_USAGE, "%s", err);
        }
    }
    if (c->help) {
        fputs(TOKEN_USAGE, c->out);
        return MC_EXIT_OK;
    }
    if (!name || !*name)
        return mc_usage_error(c, TOKEN_USAGE, "token create needs a NAME");
    if (strlen(name) > TOKEN_NAME_MAX * 4)
        return mc_usage_error(c, TOKEN_USAGE, "NAME is longer than %d characters", TOKEN_NAME_MAX);
    if (quota_arg && usd_arg)
        return mc_usage_error(c, TOKEN_USAGE, "give --quota or --usd, not both");
    if (quota_arg && mc_parse_i64(quota_arg, 1, MT_PRICING_QUOTA_MAX, &quota))
        return mc_usage_error(c, TOKEN_USAGE, "--quota \"%s\": expected quota units > 0",
                              quota_arg);
    if (usd_arg && (mc_parse_usd(usd_arg, &usd) || usd <= 0))
        return mc_usage_error(c, TOKEN_USAGE, "--usd \"%s\": expected an amount > 0", usd_arg);
    if (models_arg && mc_clean_csv(models_arg, models, sizeof models))
        return mc_usage_error(c, TOKEN_USAGE, "--models \"%.60s\": expected M1,M2,...", models_arg);
    if (expires_arg && mc_parse_expires(expires_arg, c->now, &expires, err, sizeof err))
        return mc_usage_error(c, TOKEN_USAGE, "--expires: %s", err);

    if ((ex = mc_ctx_open(c, 1)))
        goto out;
    if (usd_arg || quota_arg) {
        if ((ex = mc_fetch_units(c, &units)))
            goto out;
    }
    if (usd_arg) {
        if (mt_pricing_usd_to_quota(units, usd, &quota) || quota <= 0) {
            mc_errorf(c, "$%s is not a quota amount meterd can grant", usd_arg);
            ex = MC_EXIT_USAGE;
            goto out;
        }
    }
    if (cm_json_new_object(&body) || cm_json_set_string(body, "name", name) ||
        cm_json_set_int64(body, "remain_quota", quota) ||
        cm_json_set_bool(body, "unlimited_quota", quota == 0) ||
        cm_json_set_int64(body, "expired_time", expires) ||
        cm_json_set_bool(body, "model_limits_enabled", models[0] != '\0') ||
        cm_json_set_string(body, "model_limits", models) ||
        cm_json_set_string(body, "allow_ips", "") || cm_json_set_string(body, "group", group)) {
        mc_errorf(c, "out of memory");
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (mc_api_request(&c->api, "POST", "/api/token/", body, 0, &root, &e)) {
        ex = mc_fail_api(c, "POST /api/token/", &e);
        goto out;
    }
    /* meterd may answer with the new token (NewAPI does not): use its id when it does */
    id = mc_json_num(cJSON_GetObjectItemCaseSensitive(root, "data"), "id");
    cJSON_Delete(root);
    root = NULL;
    if (id <= 0 && (ex = find_token(c, name, &id)))
        goto out;
    snprintf(path, sizeof path, "/api/token/%lld/key", (long long)id);
    if (mc_api_request(&c->api, "POST", path, NULL, 0, &root, &e)) {
        char what[96];
        snprintf(what, sizeof what, "POST %s", path);
        ex = mc_fail_api(c, what, &e);
        goto out;
    }
    key = mc_json_str(cJSON_GetObjectItemCaseSensitive(root, "data"), "key");
    if (!*key) {
        mc_errorf(c, "POST %s: no key in the answer", path);
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (c->json) {
        struct cm_buf k;
        cm_buf_init(&k, 512);
        if (cm_buf_appendf(&k, "%s%s", strncmp(key, "sk-", 3) ? "sk-" : "", key) ||
            cm_json_new_object(&out) || cm_json_set_int64(out, "id", id) ||
            cm_json_set_string(out, "name", name) || cm_json_set_string(out, "key", k.data)) {
            ex = MC_EXIT_FAIL;
        } else {
            ex = mc_print_json(c, out);
        }
        if (k.data)
            cm_crypto_memzero(k.data, k.len);
        cm_buf_cleanup(&k);
    } else {
        char q[64] = "unlimited quota";
        if (quota)
            snprintf(q, sizeof q, "quota %lld (%s)", (long long)quota,
                     mc_fmt_usd(mt_pricing_quota_to_usd(units, quota), b1, sizeof b1));
        fprintf(c->err, "created token %lld \"%s\" for user %lld: %s, %s%s, expires %s\n",
                (long long)id, name, (long long)c->conf.user, q, models[0] ? "models " : "",
                models[0] ? models : "all models", mc_fmt_time(expires, when, sizeof when));
        fprintf(c->out, "%s%s\n", strncmp(key, "sk-", 3) ? "sk-" : "", key);
        fflush(c->out);
        fprintf(c->err, "(the key is shown once: store it now; token list shows it masked)\n");
        ex = MC_EXIT_OK;
    }
out:
    if (root) { /* wipe the key before the tree is freed */
        cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
        cJSON *k = cJSON_GetObjectItemCaseSensitive(d, "key");
        if (cJSON_IsString(k))
            cm_crypto_memzero(k->valuestring, strlen(k->valuestring));
    }
    if (out) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(out, "key");
        if (cJSON_IsString(k))
            cm_crypto_memzero(k->valuestring, strlen(k->valuestring));
    }
    cJSON_Delete(root);
    cJSON_Delete(body);
    cJSON_Delete(out);
    mt_pricing_free(units);
    return ex;
}

static const char *status_name(int64_t s)
{
    switch (s) {
    case 1:
        return "enabled";
    case 2:
        return "disabled";
    case 3:
        return "expired";
    case 4:
        return "exhausted";
    default:
        return "?";
    }
}

/* a key as lists may show it: never more than first 4 + last 4, whatever the server sent */
static void mask_key(const char *k, char *out, size_t cap)
{
    size_t n = strlen(k);
    if (strchr(k, '*') || n == 0)
        snprintf(out, cap, "%s", k);
    else if (n > 8)
        snprintf(out, cap, "%.4s**********%s", k, k + n - 4);
    else
        snprintf(out, cap, "********");
}

static int token_list(struct mc_ctx *c, int argc, char **argv)
{
    static const char *const H[] = {"ID",   "NAME",    "STATUS", "KEY",  "REMAINING",
                                    "USED", "EXPIRES", "MODELS", "GROUP"};
    static const enum mc_align A[] = {MC_ALIGN_RIGHT, MC_ALIGN_LEFT,  MC_ALIGN_LEFT,
                                      MC_ALIGN_LEFT,  MC_ALIGN_RIGHT, MC_ALIGN_RIGHT,
                                      MC_ALIGN_LEFT,  MC_ALIGN_LEFT,  MC_ALIGN_LEFT};
    struct mt_pricing *units = NULL;
    struct mc_table *t = NULL;
    cJSON *items = NULL, *it;
    int ex;

    if ((ex = mc_list_fetch(c, argc, argv, TOKEN_USAGE, "/api/token/", TOKENS_MAX, &items)) ||
        !items)
        return ex;
    cJSON_ArrayForEach(it, items)
    {
        /* whatever the server sends, --json never carries a full key either */
        cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "key");
        if (cJSON_IsString(k) && !strchr(k->valuestring, '*')) {
            char m[64];
            mask_key(k->valuestring, m, sizeof m);
            cm_crypto_memzero(k->valuestring, strlen(k->valuestring));
            if (!cJSON_ReplaceItemInObjectCaseSensitive(it, "key", cJSON_CreateString(m))) {
                ex = MC_EXIT_FAIL;
                goto out;
            }
        }
    }
    if (c->json) {
        ex = mc_print_json(c, items);
        goto out;
    }
    if ((ex = mc_fetch_units(c, &units)))
        goto out;
    if (mc_table_new(&t, 9, H, A)) {
        ex = MC_EXIT_FAIL;
        goto out;
    }
    cJSON_ArrayForEach(it, items)
    {
        char id[24], rem[40], used[40], exp[40], key[64];
        const char *cells[9];
        int64_t st = mc_json_num(it, "status");
        int unlimited = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "unlimited_quota"));
        int limited = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "model_limits_enabled"));
        int rc;

        snprintf(id, sizeof id, "%lld", (long long)mc_json_num(it, "id"));
        if (unlimited)
            snprintf(rem, sizeof rem, "unlimited");
        else
            mc_fmt_usd(mt_pricing_quota_to_usd(units, mc_json_num(it, "remain_quota")), rem,
                       sizeof rem);
        mc_fmt_usd(mt_pricing_quota_to_usd(units, mc_json_num(it, "used_quota")), used,
                   sizeof used);
        mc_fmt_time(mc_json_num(it, "expired_time"), exp, sizeof exp);
        mask_key(mc_json_str(it, "key"), key, sizeof key);
        cells[0] = id;
        cells[1] = mc_json_str(it, "name");
        cells[2] = status_name(st);
        cells[3] = key;
        cells[4] = rem;
        cells[5] = used;
        cells[6] = exp;
        cells[7] =
            limited && *mc_json_str(it, "model_limits") ? mc_json_str(it, "model_limits") : "all";
        cells[8] = *mc_json_str(it, "group") ? mc_json_str(it, "group") : "(user's)";
        rc = mc_table_add(t, cells);
        if (!rc)
            rc = mc_table_color(t, 2, st == 1 ? MC_COLOR_GREEN : MC_COLOR_RED);
        if (rc) {
            ex = MC_EXIT_FAIL;
            goto out;
        }
    }
    ex = mc_print_table(c, t);
out:
    mc_table_free(t);
    mt_pricing_free(units);
    cJSON_Delete(items);
    return ex;
}

int mc_cmd_token(struct mc_ctx *c, int argc, char **argv)
{
    static const struct mc_sub subs[] = {
        {"create", token_create},
        {"list", token_list},
    };
    return mc_dispatch(c, argc, argv, TOKEN_USAGE, "token", subs, sizeof subs / sizeof subs[0]);
}
