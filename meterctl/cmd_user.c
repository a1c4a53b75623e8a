/* SPDX-License-Identifier: MIT */
/*
 * cmd_user.c - `meterctl user list` (GET /api/user/, every page) and `meterctl topup`
 * (POST /api/user/manage add_quota, with the balance read before and after from
 * GET /api/user/:id). USD amounts use meterd's QuotaPerUnit (GET /api/status) and the
 * pricing module's conversions.
 */
#include "cmd.h"

#include "cm/err.h"
#include "cm/json.h"
#include "cm/alloc.h"
#include "pricing.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define USERS_MAX 100000

static const char USER_USAGE[] = "usage: meterctl user list\n";
static const char TOPUP_USAGE[] =
    "usage: meterctl topup USER QUOTA\n"
    "       meterctl topup USER --usd N\n"
    "  Adds QUOTA quota units (or N US dollars x QuotaPerUnit) to USER's balance. USER is a\n"
    "  user id or a username.\n";

static const char *role_name(int64_t role)
{
    switch (role) {
    case 100:
        return "root";
    case 10:
        return "admin";
    case 1:
        return "user";
    case 0:
        return "guest";
    default:
        return "?";
    }
}

static int user_list(struct mc_ctx *c, int argc, char **argv)
{
    static const char *const H[] = {"ID",    "USERNAME", "DISPLAY NAME", "ROLE", "STATUS",
                                    "GROUP", "QUOTA",    "BALANCE",      "USED", "REQUESTS"};
    static const enum mc_align A[] = {MC_ALIGN_RIGHT, MC_ALIGN_LEFT, MC_ALIGN_LEFT,  MC_ALIGN_LEFT,
                                      MC_ALIGN_LEFT,  MC_ALIGN_LEFT, MC_ALIGN_RIGHT, MC_ALIGN_RIGHT,
                                      MC_ALIGN_RIGHT, MC_ALIGN_RIGHT};
    struct mt_pricing *units = NULL;
    struct mc_table *t = NULL;
    cJSON *items = NULL;
    const cJSON *u;
    int ex;

    if ((ex = mc_list_fetch(c, argc, argv, USER_USAGE, "/api/user/", USERS_MAX, &items)) || !items)
        return ex;
    if (c->json) {
        ex = mc_print_json(c, items);
        goto out;
    }
    if ((ex = mc_fetch_units(c, &units)))
        goto out;
    if (mc_table_new(&t, 10, H, A)) {
        ex = MC_EXIT_FAIL;
        goto out;
    }
    cJSON_ArrayForEach(u, items)
    {
        char id[24], quota[24], bal[40], used[40], reqs[24];
        const cJSON *del = cJSON_GetObjectItemCaseSensitive(u, "DeletedAt");
        int deleted = del && !cJSON_IsNull(del) && !(cJSON_IsString(del) && !*del->valuestring);
        int64_t status = mc_json_num(u, "status");
        const char *cells[10];
        int rc;

        snprintf(id, sizeof id, "%lld", (long long)mc_json_num(u, "id"));
        snprintf(quota, sizeof quota, "%lld", (long long)mc_json_num(u, "quota"));
        mc_fmt_usd(mt_pricing_quota_to_usd(units, mc_json_num(u, "quota")), bal, sizeof bal);
        mc_fmt_usd(mt_pricing_quota_to_usd(units, mc_json_num(u, "used_quota")), used, sizeof used);
        snprintf(reqs, sizeof reqs, "%lld", (long long)mc_json_num(u, "request_count"));
        cells[0] = id;
        cells[1] = mc_json_str(u, "username");
        cells[2] = mc_json_str(u, "display_name");
        cells[3] = role_name(mc_json_num(u, "role"));
        cells[4] = deleted ? "deleted" : status == 1 ? "enabled" : status == 2 ? "disabled" : "?";
        cells[5] = mc_json_str(u, "group");
        cells[6] = quota;
        cells[7] = bal;
        cells[8] = used;
        cells[9] = reqs;
        rc = mc_table_add(t, cells);
        if (!rc)
            rc = mc_table_color(t, 4,
                                deleted       ? MC_COLOR_DIM
                                : status == 1 ? MC_COLOR_GREEN
                                              : MC_COLOR_RED);
        if (!rc && mc_json_num(u, "quota") <= 0)
            rc = mc_table_color(t, 7, MC_COLOR_YELLOW);
        if (rc) {
            mc_errorf(c, "out of memory");
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

int mc_cmd_user(struct mc_ctx *c, int argc, char **argv)
{
    static const struct mc_sub subs[] = {
        {"list", user_list},
    };
    return mc_dispatch(c, argc, argv, USER_USAGE, "user", subs, sizeof subs / sizeof subs[0]);
}

/* GET /api/user/:id -> *out (the data object; caller frees) */
static int get_user(struct mc_ctx *c, int64_t id, cJSON **out)
{
    struct mc_api_err e;
    cJSON *root = NULL;
    char path[64];

    snprintf(path, sizeof path, "/api/user/%lld", (long long)id);
    if (mc_api_request(&c->api, "GET", path, NULL, 0, &root, &e)) {
        char what[80];
        snprintf(what, sizeof what, "GET %s", path);
        return mc_fail_api(c, what, &e);
    }
    *out = cJSON_DetachItemFromObjectCaseSensitive(root, "data");
    cJSON_Delete(root);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        mc_errorf(c, "GET %s: no user object in the answer", path);
        return MC_EXIT_FAIL;
    }
    return MC_EXIT_OK;
}

/* USER as an id, or a username looked up with GET /api/user/search?keyword= */
static int resolve_user(struct mc_ctx *c, const char *arg, int64_t *id)
{
    struct mc_api_err e;
    cJSON *items = NULL;
    const cJSON *u;
    char *kw = NULL, path[512];
    int ex = MC_EXIT_OK;

    if (mc_parse_i64(arg, 1, CM_JSON_INT_MAX, id) == CM_OK)
        return MC_EXIT_OK;
    if (mc_api_escape(arg, &kw) || strlen(kw) > 400) {
        cm_free(kw);
        mc_errorf(c, "username \"%.40s\" is too long", arg);
        return MC_EXIT_USAGE;
    }
    snprintf(path, sizeof path, "/api/user/search?keyword=%s", kw);
    cm_free(kw);
    if (mc_api_list(&c->api, path, 1000, &items, &e)) {
        ex = mc_fail_api(c, "GET /api/user/search", &e);
        goto out;
    }
    *id = 0;
    cJSON_ArrayForEach(u, items)
    {
        if (strcmp(mc_json_str(u, "username"), arg) == 0)
            *id = mc_json_num(u, "id");
    }
    if (*id <= 0) {
        mc_errorf(c, "no user named \"%s\" (user list shows them)", arg);
        ex = MC_EXIT_FAIL;
    }
out:
    cJSON_Delete(items);
    return ex;
}

int mc_cmd_topup(struct mc_ctx *c, int argc, char **argv)
{
    enum { O_USD = 1 };
    static const struct mc_opt opts[] = {{"usd", 0, O_USD, 1}, {NULL, 0, 0, 0}};
    const struct mc_opt *const tables[] = {opts, mc_global_opts, NULL};
    struct mt_pricing *units = NULL;
    cJSON *before = NULL, *after = NULL, *body = NULL, *root = NULL, *out = NULL;
    const char *pos[2] = {0}, *usd_arg = NULL;
    struct mc_args a;
    struct mc_arg arg;
    struct mc_api_err e;
    char err[256], b1[40], b2[40], b3[40];
    int64_t id = 0, quota = 0, q0, q1;
    size_t npos = 0;
    double usd = 0;
    int ex;

    mc_args_init(&a, argc, argv);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err))
            return mc_usage_error(c, TOPUP_USAGE, "%s", err);
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            if (npos == 2)
                return mc_usage_error(c, TOPUP_USAGE, "unexpected argument \"%s\"", arg.value);
            pos[npos++] = arg.value;
        } else if (arg.id == O_USD) {
            usd_arg = arg.value;
        } else if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL) {
            return mc_usage_error(c, TOPUP_USAGE, "%s", err);
        }
    }
    if (c->help) {
        fputs(TOPUP_USAGE, c->out);
        return MC_EXIT_OK;
    }
    if (!npos || (usd_arg && npos != 1) || (!usd_arg && npos != 2))
        return mc_usage_error(c, TOPUP_USAGE, "topup takes USER and either QUOTA or --usd N");
    if (usd_arg && (mc_parse_usd(usd_arg, &usd) || usd <= 0))
        return mc_usage_error(c, TOPUP_USAGE, "--usd \"%s\": expected an amount > 0", usd_arg);
    if (!usd_arg && mc_parse_i64(pos[1], 1, MT_PRICING_QUOTA_MAX, &quota))
        return mc_usage_error(c, TOPUP_USAGE,
                              "QUOTA \"%s\": expected a whole number of quota "
                              "units > 0 (500000 = $1 by default; or use --usd)",
                              pos[1]);

    if ((ex = mc_ctx_open(c, 1)) || (ex = mc_fetch_units(c, &units)))
        goto out;
    if (usd_arg && (mt_pricing_usd_to_quota(units, usd, &quota) || quota <= 0)) {
        mc_errorf(c, "$%s is not a quota amount meterd can add", usd_arg);
        ex = MC_EXIT_USAGE;
        goto out;
    }
    if ((ex = resolve_user(c, pos[0], &id)) || (ex = get_user(c, id, &before)))
        goto out;
    if (cm_json_new_object(&body) || cm_json_set_int64(body, "id", id) ||
        cm_json_set_string(body, "action", "add_quota") ||
        cm_json_set_string(body, "mode", "add") || cm_json_set_int64(body, "value", quota)) {
        mc_errorf(c, "out of memory");
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (mc_api_request(&c->api, "POST", "/api/user/manage", body, 0, &root, &e)) {
        ex = mc_fail_api(c, "POST /api/user/manage", &e);
        goto out;
    }
    if ((ex = get_user(c, id, &after)))
        goto out;
    q0 = mc_json_num(before, "quota");
    q1 = mc_json_num(after, "quota");
    if (c->json) {
        if (cm_json_new_object(&out) || cm_json_set_int64(out, "id", id) ||
            cm_json_set_string(out, "username", mc_json_str(after, "username")) ||
            cm_json_set_int64(out, "added", quota) || cm_json_set_int64(out, "quota_before", q0) ||
            cm_json_set_int64(out, "quota_after", q1) ||
            cm_json_set_double(out, "usd_after", mt_pricing_quota_to_usd(units, q1))) {
            ex = MC_EXIT_FAIL;
            goto out;
        }
        ex = mc_print_json(c, out);
    } else {
        struct cm_buf name;
        cm_buf_init(&name, 256);
        (void)mc_sanitize_append(&name, mc_json_str(after, "username"));
        fprintf(c->out, "user %lld (%s): +%lld quota (%s); balance %lld -> %lld (%s -> %s)\n",
                (long long)id, name.data ? name.data : "", (long long)quota,
                mc_fmt_usd(mt_pricing_quota_to_usd(units, quota), b1, sizeof b1), (long long)q0,
                (long long)q1, mc_fmt_usd(mt_pricing_quota_to_usd(units, q0), b2, sizeof b2),
                mc_fmt_usd(mt_pricing_quota_to_usd(units, q1), b3, sizeof b3));
        cm_buf_cleanup(&name);
    }
    if (q1 - q0 != quota)
        mc_warnf(c, "the balance moved by %lld, not %lld (concurrent use of the account?)",
                 (long long)(q1 - q0), (long long)quota);
out:
    cJSON_Delete(before);
    cJSON_Delete(after);
    cJSON_Delete(body);
    cJSON_Delete(root);
    cJSON_Delete(out);
    mt_pricing_free(units);
    return ex;
}
