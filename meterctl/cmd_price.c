/* SPDX-License-Identifier: MIT */
/*
 * cmd_price.c - `meterctl price set` and `meterctl price list`.
 *
 * set: USD per 1M tokens -> ratios (price.c), merged into the current option maps, written
 * with PUT /api/option/ (ModelRatio last), read back and compared, then the prices now in
 * force are shown as computed by meterd's own pricing module from the options read back.
 * Between our read and our write another admin's change to the same map would be lost
 * (NewAPI has no compare-and-set on options); the read-back catches ours not sticking.
 */
#include "cmd.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "price.h"

#include <stdio.h>
#include <string.h>

#define PRICE_MODELS_MAX 64

static const char PRICE_USAGE[] =
    "usage: meterctl price set MODEL --input USD --output USD [--cached USD] [--cache-write USD]\n"
    "                          [MODEL --input ... ...]\n"
    "       meterctl price list [MODEL ...]\n"
    "  Prices are USD per 1M tokens. Each MODEL starts a new group of price options.\n"
    "  set writes ModelRatio = input/2, CompletionRatio = output/input, CacheRatio =\n"
    "  cached/input, CreateCacheRatio = cache-write/input (only the maps whose price is\n"
    "  given), then prints what is in force. list shows every priced model, or MODELs.\n";

enum { O_INPUT = 1, O_CACHED, O_OUTPUT, O_CACHE_WRITE };

static const struct mc_opt PRICE_OPTS[] = {
    {"input", 0, O_INPUT, 1},
    {"cached", 0, O_CACHED, 1},
    {"output", 0, O_OUTPUT, 1},
    {"cache-write", 0, O_CACHE_WRITE, 1},
    {NULL, 0, 0, 0},
};

static int add_table_row(struct mc_table *t, const char *model, const struct mc_price_row *r)
{
    char c[9][64];
    const char *cells[9];
    int rc;

    for (int i = 0; i < 9; i++) {
        snprintf(c[i], sizeof c[i], "-");
        cells[i] = c[i];
    }
    cells[0] = model;
    if (r->unpriced) {
        snprintf(c[1], sizeof c[1], "unpriced");
    } else if (r->per_call) {
        char u[40];
        snprintf(c[1], sizeof c[1], "%s/call", mc_fmt_usd(r->usd_per_call, u, sizeof u));
    } else {
        mc_fmt_usd(r->usd_input, c[1], sizeof c[1]);
        mc_fmt_usd(r->usd_cached, c[2], sizeof c[2]);
        mc_fmt_usd(r->usd_cache_write, c[3], sizeof c[3]);
        mc_fmt_usd(r->usd_output, c[4], sizeof c[4]);
        mc_fmt_ratio(r->model_ratio, c[5], sizeof c[5]);
        mc_fmt_ratio(r->completion_ratio, c[6], sizeof c[6]);
        mc_fmt_ratio(r->cache_ratio, c[7], sizeof c[7]);
        mc_fmt_ratio(r->create_cache_ratio, c[8], sizeof c[8]);
    }
    rc = mc_table_add(t, cells);
    if (!rc && r->unpriced)
        rc = mc_table_color(t, 1, MC_COLOR_RED);
    return rc;
}

static int add_json_row(cJSON *arr, const char *model, const struct mc_price_row *r)
{
    cJSON *o = NULL, *usd = NULL;
    int rc = cm_json_new_object(&o);

    if (!rc)
        rc = cm_json_set_string(o, "model", model);
    if (!rc)
        rc = cm_json_set_string(o, "billing",
                                r->unpriced   ? "unpriced"
                                : r->per_call ? "per_call"
                                              : "tokens");
    if (!rc && r->per_call) {
        rc = cm_json_set_double(o, "model_price", r->model_price);
        if (!rc)
            rc = cm_json_set_double(o, "usd_per_call", r->usd_per_call);
    } else if (!rc && !r->unpriced) {
        if (!(rc = cm_json_set_double(o, "model_ratio", r->model_ratio)) &&
            !(rc = cm_json_set_double(o, "completion_ratio", r->completion_ratio)) &&
            !(rc = cm_json_set_double(o, "cache_ratio", r->cache_ratio)) &&
            !(rc = cm_json_set_double(o, "create_cache_ratio", r->create_cache_ratio)) &&
            !(rc = cm_json_new_object(&usd)) &&
            !(rc = cm_json_set_double(usd, "input", r->usd_input)) &&
            !(rc = cm_json_set_double(usd, "cached", r->usd_cached)) &&
            !(rc = cm_json_set_double(usd, "cache_write", r->usd_cache_write)) &&
            !(rc = cm_json_set_double(usd, "output", r->usd_output)))
            rc = cm_json_adopt(o, "usd_per_1m", &usd);
    }
    cJSON_Delete(usd);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    return cm_json_adopt(arr, NULL, &o);
}

/* prints the prices in force for @p models according to @p options; @p updated (may be
 * NULL, consumed) is the list of keys written, for `set` */
static int show(struct mc_ctx *c, const cJSON *options, const char *const *models, size_t n,
                cJSON *updated)
{
    static const char *const H[] = {"MODEL",          "INPUT/1M",  "CACHED/1M",
                                    "CACHE WRITE/1M", "OUTPUT/1M", "MODEL RATIO",
                                    "COMPLETION",     "CACHE",     "CACHE WRITE"};
    static const enum mc_align A[] = {MC_ALIGN_LEFT,  MC_ALIGN_RIGHT, MC_ALIGN_RIGHT,
                                      MC_ALIGN_RIGHT, MC_ALIGN_RIGHT, MC_ALIGN_RIGHT,
                                      MC_ALIGN_RIGHT, MC_ALIGN_RIGHT, MC_ALIGN_RIGHT};
    struct mt_pricing *p = NULL;
    struct mc_table *t = NULL;
    cJSON *arr = NULL, *root = NULL;
    char err[512];
    int rc, ex = MC_EXIT_FAIL;

    if ((rc = mc_price_snapshot(options, &p, err, sizeof err)) != CM_OK) {
        mc_errorf(c, "meterd's pricing options do not load: %s", err);
        goto out;
    }
    rc = c->json ? cm_json_new_array(&arr) : mc_table_new(&t, 9, H, A);
    for (size_t i = 0; !rc && i < n; i++) {
        struct mc_price_row r;
        if ((rc = mc_price_row(p, models[i], &r)) != CM_OK) {
            mc_errorf(c, "%s: cannot price it: %s", models[i], cm_err_str(rc));
            goto out;
        }
        rc = c->json ? add_json_row(arr, models[i], &r) : add_table_row(t, models[i], &r);
    }
    if (rc) {
        mc_errorf(c, "out of memory");
        goto out;
    }
    if (c->json) {
        if (updated) {
            if (cm_json_new_object(&root) || cm_json_adopt(root, "updated", &updated) ||
                cm_json_adopt(root, "prices", &arr)) {
                mc_errorf(c, "out of memory");
                goto out;
            }
            ex = mc_print_json(c, root);
        } else {
            ex = mc_print_json(c, arr);
        }
    } else {
        ex = mc_print_table(c, t);
    }
out:
    cJSON_Delete(updated);
    cJSON_Delete(arr);
    cJSON_Delete(root);
    mc_table_free(t);
    mt_pricing_free(p);
    return ex;
}

static int price_list(struct mc_ctx *c, int argc, char **argv)
{
    const char *pos[PRICE_MODELS_MAX];
    char **names = NULL;
    size_t npos = 0, nn = 0;
    cJSON *options = NULL;
    int ex;

    if ((ex = mc_parse_simple(c, argc, argv, PRICE_USAGE, pos, PRICE_MODELS_MAX, &npos)))
        return ex;
    if (c->help) {
        fputs(PRICE_USAGE, c->out);
        return MC_EXIT_OK;
    }
    if ((ex = mc_ctx_open(c, 1)) || (ex = mc_fetch_options(c, &options)))
        goto out;
    if (!npos) {
        if (mc_price_models(options, &names, &nn) != CM_OK) {
            mc_errorf(c, "meterd's ModelRatio / ModelPrice are not JSON objects");
            ex = MC_EXIT_FAIL;
            goto out;
        }
        ex = show(c, options, (const char *const *)names, nn, NULL);
    } else {
        ex = show(c, options, pos, npos, NULL);
    }
out:
    mc_price_names_free(names, nn);
    cJSON_Delete(options);
    return ex;
}

/* PUT /api/option/ {"key": key, "value": text} */
static int put_option(struct mc_ctx *c, const char *key, const char *text, struct mc_api_err *e)
{
    cJSON *body = NULL, *root = NULL;
    int rc = cm_json_new_object(&body);

    if (!rc)
        rc = cm_json_set_string(body, "key", key);
    if (!rc)
        rc = cm_json_set_string(body, "value", text);
    if (rc) {
        e->rc = rc;
        e->status = 0;
        snprintf(e->msg, sizeof e->msg, "out of memory");
    } else {
        rc = mc_api_request(&c->api, "PUT", "/api/option/", body, 0, &root, e);
    }
    cJSON_Delete(body);
    cJSON_Delete(root);
    return rc;
}

static int price_set(struct mc_ctx *c, int argc, char **argv)
{
    const struct mc_opt *const tables[] = {PRICE_OPTS, mc_global_opts, NULL};
    struct mc_price_in in[PRICE_MODELS_MAX];
    const char *models[PRICE_MODELS_MAX];
    char *text[MC_MAP__COUNT] = {0};
    cJSON *options = NULL, *after = NULL, *updated = NULL;
    struct mc_args a;
    struct mc_arg arg;
    struct mc_api_err e;
    char err[512], written[256] = "";
    size_t n = 0;
    int ex = MC_EXIT_OK, rc;

    memset(in, 0, sizeof in);
    mc_args_init(&a, argc, argv);
    for (;;) {
        struct mc_price_in *cur = n ? &in[n - 1] : NULL;
        double v;
        if (mc_args_next(&a, tables, &arg, err, sizeof err))
            return mc_usage_error(c, PRICE_USAGE, "%s", err);
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            if (n == PRICE_MODELS_MAX)
                return mc_usage_error(c, PRICE_USAGE, "at most %d models at once",
                                      PRICE_MODELS_MAX);
            if (!*arg.value || strlen(arg.value) >= MT_PRICING_NAME_MAX)
                return mc_usage_error(c, PRICE_USAGE,
                                      "model name \"%.40s\" is empty or longer "
                                      "than %d bytes",
                                      arg.value, MT_PRICING_NAME_MAX - 1);
            for (size_t i = 0; i < n; i++)
                if (strcmp(in[i].model, arg.value) == 0)
                    return mc_usage_error(c, PRICE_USAGE, "model %s is given twice", arg.value);
            in[n].model = models[n] = arg.value;
            n++;
            continue;
        }
        if (arg.id > MC_GOPT_BASE) {
            if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL)
                return mc_usage_error(c, PRICE_USAGE, "%s", err);
            continue;
        }
        if (!cur)
            return mc_usage_error(c, PRICE_USAGE, "--%s before any MODEL", arg.name);
        if (mc_parse_usd(arg.value, &v))
            return mc_usage_error(c, PRICE_USAGE,
                                  "--%s \"%s\": expected USD per 1M tokens "
                                  "(a number >= 0, like 2.5)",
                                  arg.name, arg.value);
        switch (arg.id) {
        case O_INPUT:
            cur->input = v;
            cur->has_input = 1;
            break;
        case O_CACHED:
            cur->cached = v;
            cur->has_cached = 1;
            break;
        case O_OUTPUT:
            cur->output = v;
            cur->has_output = 1;
            break;
        default:
            cur->cache_write = v;
            cur->has_cache_write = 1;
            break;
        }
    }
    if (c->help) {
        fputs(PRICE_USAGE, c->out);
        return MC_EXIT_OK;
    }
    if (!n)
        return mc_usage_error(c, PRICE_USAGE, "price set needs a MODEL");
    for (size_t i = 0; i < n; i++) {
        struct mc_ratios r;
        if (mc_price_ratios(&in[i], &r, err, sizeof err))
            return mc_usage_error(c, PRICE_USAGE, "%s", err);
    }

    if ((ex = mc_ctx_open(c, 1)) || (ex = mc_fetch_options(c, &options)))
        goto out;
    rc = mc_price_merge(options, in, n, text, err, sizeof err);
    if (rc) {
        mc_errorf(c, "%s", rc == CM_ERR_NOMEM ? "out of memory" : err);
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (cm_json_new_array(&updated)) {
        mc_errorf(c, "out of memory");
        ex = MC_EXIT_FAIL;
        goto out;
    }
    for (int m = 0; m < MC_MAP__COUNT; m++) {
        const char *key = mc_price_map_key((enum mc_map)m);
        char what[64];
        if (!text[m])
            continue;
        if (put_option(c, key, text[m], &e)) {
            snprintf(what, sizeof what, "PUT /api/option/ %s", key);
            ex = mc_fail_api(c, what, &e);
            if (written[0])
                fprintf(c->err,
                        "  note: %s were already written; run the same command again "
                        "once the problem is fixed\n",
                        written);
            goto out;
        }
        snprintf(written + strlen(written), sizeof written - strlen(written), "%s%s",
                 written[0] ? ", " : "", key);
        if (cm_json_set_string(updated, NULL, key)) {
            mc_errorf(c, "out of memory");
            ex = MC_EXIT_FAIL;
            goto out;
        }
    }
    if ((ex = mc_fetch_options(c, &after)))
        goto out;
    if (mc_price_check_applied(after, in, n, err, sizeof err)) {
        mc_errorf(c, "the update did not stick: %s", err);
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (!c->json)
        fprintf(c->out, "%s%s\n", written[0] ? "updated " : "no change: ",
                written[0] ? written : "the prices were already in force");
    ex = show(c, after, models, n, updated);
    updated = NULL;
out:
    for (int m = 0; m < MC_MAP__COUNT; m++)
        cm_free(text[m]);
    cJSON_Delete(updated);
    cJSON_Delete(options);
    cJSON_Delete(after);
    return ex;
}

int mc_cmd_price(struct mc_ctx *c, int argc, char **argv)
{
    static const struct mc_sub subs[] = {
        {"set", price_set},
        {"list", price_list},
        {"help", NULL},
    };
    return mc_dispatch(c, argc, argv, PRICE_USAGE, "price", subs, sizeof subs / sizeof subs[0]);
}
