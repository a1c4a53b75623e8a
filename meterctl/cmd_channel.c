/* SPDX-License-Identifier: MIT */
/*
 * cmd_channel.c - `meterctl channel add|list|test` (spec newapi.md 3.5): POST /api/channel/
 * in NewAPI's {"mode":"single","channel":{...}} shape, GET /api/channel/ every page, and
 * GET /api/channel/test/:id (whose answer is {"success","message","time"}, not the usual
 * envelope). The upstream key may come from --key, a file (--key-file) or stdin
 * (--key -), so it need not sit in the shell history; it is never printed.
 */
#include "cmd.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "pricing.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHANNELS_MAX 100000
#define KEY_MAX (64 * 1024)
#define MODELS_CELL_MAX 48 /* display columns of the MODELS cell in the table */

static const char CHANNEL_USAGE[] =
    "usage: meterctl channel add NAME --type TYPE --base-url URL --models M1,M2\n"
    "                            (--key KEY | --key-file FILE | --key -)\n"
    "                            [--group G1,G2] [--priority N] [--weight N] [--test-model M]\n"
    "       meterctl channel list\n"
    "       meterctl channel test ID|NAME [--model M]\n"
    "  TYPE: openai, anthropic, gemini, azure, ollama, deepseek, xai, codex, ... or a number.\n";

/* the key from @p path ("-" = stdin), trailing blanks and newlines dropped */
static int read_key(struct mc_ctx *c, const char *path, struct cm_buf *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    char chunk[4096];
    size_t n;
    int ex = MC_EXIT_OK;

    if (!f) {
        mc_errorf(c, "--key-file %s: %s", path, strerror(errno));
        return MC_EXIT_USAGE;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cm_buf_append(out, chunk, n)) {
            mc_errorf(c, "the key is longer than %d bytes", KEY_MAX);
            ex = MC_EXIT_USAGE;
            break;
        }
    if (!ex && ferror(f)) {
        mc_errorf(c, "cannot read the key from %s", path);
        ex = MC_EXIT_USAGE;
    }
    cm_crypto_memzero(chunk, sizeof chunk);
    if (f != stdin)
        fclose(f);
    while (!ex && out->len &&
           (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r' ||
            out->data[out->len - 1] == ' '))
        out->data[--out->len] = '\0';
    if (!ex && !out->len) {
        mc_errorf(c, "the key from %s is empty", path);
        ex = MC_EXIT_USAGE;
    }
    return ex;
}

/* the channels whose name is @p name (GET /api/channel/search) -> the highest id */
static int find_channel(struct mc_ctx *c, const char *name, int64_t *id)
{
    struct mc_api_err e;
    cJSON *items = NULL;
    const cJSON *ch;
    char *kw = NULL, path[512];
    int ex = MC_EXIT_OK;

    *id = 0;
    if (mc_api_escape(name, &kw) || strlen(kw) > 400) {
        cm_free(kw);
        mc_errorf(c, "channel name \"%.40s\" is too long", name);
        return MC_EXIT_USAGE;
    }
    snprintf(path, sizeof path, "/api/channel/search?keyword=%s", kw);
    cm_free(kw);
    if (mc_api_list(&c->api, path, 10000, &items, &e)) {
        ex = mc_fail_api(c, "GET /api/channel/search", &e);
        goto out;
    }
    cJSON_ArrayForEach(ch, items)
    {
        if (strcmp(mc_json_str(ch, "name"), name) == 0 && mc_json_num(ch, "id") > *id)
            *id = mc_json_num(ch, "id");
    }
    if (!*id) {
        mc_errorf(c, "no channel named \"%s\" (channel list shows them)", name);
        ex = MC_EXIT_FAIL;
    }
out:
    cJSON_Delete(items);
    return ex;
}

static int channel_add(struct mc_ctx *c, int argc, char **argv)
{
    enum { O_TYPE = 1, O_KEY, O_KEY_FILE, O_BASE, O_MODELS, O_GROUP, O_PRIO, O_WEIGHT, O_TEST };
    static const struct mc_opt opts[] = {
        {"type", 0, O_TYPE, 1},         {"key", 0, O_KEY, 1},
        {"key-file", 0, O_KEY_FILE, 1}, {"base-url", 0, O_BASE, 1},
        {"models", 0, O_MODELS, 1},     {"group", 0, O_GROUP, 1},
        {"priority", 0, O_PRIO, 1},     {"weight", 0, O_WEIGHT, 1},
        {"test-model", 0, O_TEST, 1},   {NULL, 0, 0, 0},
    };
    const struct mc_opt *const tables[] = {opts, mc_global_opts, NULL};
    const char *name = NULL, *type_arg = NULL, *key_arg = NULL, *key_file = NULL, *base = NULL,
               *models_arg = NULL, *group_arg = "default", *test_model = "";
    char models[8192], groups[1024], err[256];
    int64_t priority = 0, weight = 0, id = 0;
    struct cm_buf key;
    cJSON *body = NULL, *ch = NULL, *root = NULL, *out = NULL;
    struct mc_args a;
    struct mc_arg arg;
    struct mc_api_err e;
    int type = 0, ex = MC_EXIT_OK;

    cm_buf_init(&key, KEY_MAX);
    mc_args_init(&a, argc, argv);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err)) {
            ex = mc_usage_error(c, CHANNEL_USAGE, "%s", err);
            goto out;
        }
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            if (name) {
                ex = mc_usage_error(c, CHANNEL_USAGE, "unexpected argument \"%s\"", arg.value);
                goto out;
            }
            name = arg.value;
            continue;
        }
        switch (arg.id) {
        case O_TYPE:
            type_arg = arg.value;
            break;
        case O_KEY:
            key_arg = arg.value;
            break;
        case O_KEY_FILE:
            key_file = arg.value;
            break;
        case O_BASE:
            base = arg.value;
            break;
        case O_MODELS:
            models_arg = arg.value;
            break;
        case O_GROUP:
            group_arg = arg.value;
            break;
        case O_PRIO:
        case O_WEIGHT:
            if (mc_parse_i64(arg.value, arg.id == O_PRIO ? -1000000 : 0, 1000000,
                             arg.id == O_PRIO ? &priority : &weight)) {
                ex = mc_usage_error(c, CHANNEL_USAGE, "--%s \"%s\": expected an integer", arg.name,
                                    arg.value);
                goto out;
            }
            break;
        case O_TEST:
            test_model = arg.value;
            break;
        default:
            if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL) {
                ex = mc_usage_error(c, CHANNEL_USAGE, "%s", err);
                goto out;
            }
        }
    }
    if (c->help) {
        fputs(CHANNEL_USAGE, c->out);
        goto out;
    }
    if (!name || !*name || !type_arg || !base || !models_arg || (!key_arg && !key_file)) {
        ex = mc_usage_error(c, CHANNEL_USAGE,
                            "channel add needs NAME, --type, --base-url, --models and a key");
        goto out;
    }
    if (key_arg && key_file) {
        ex = mc_usage_error(c, CHANNEL_USAGE, "give --key or --key-file, not both");
        goto out;
    }
    if (mc_parse_channel_type(type_arg, &type)) {
        ex = mc_usage_error(c, CHANNEL_USAGE, "--type \"%s\" is not a channel type", type_arg);
        goto out;
    }
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        ex = mc_usage_error(c, CHANNEL_USAGE, "--base-url \"%s\" is not an http(s) URL", base);
        goto out;
    }
    if (mc_clean_csv(models_arg, models, sizeof models) ||
        mc_clean_csv(group_arg, groups, sizeof groups)) {
        ex = mc_usage_error(c, CHANNEL_USAGE, "--models and --group take comma lists");
        goto out;
    }
    if (key_file || strcmp(key_arg, "-") == 0) {
        if ((ex = read_key(c, key_file ? key_file : "-", &key)))
            goto out;
    } else if (cm_buf_append_str(&key, key_arg)) {
        ex = mc_usage_error(c, CHANNEL_USAGE, "--key is too long");
        goto out;
    }

    if ((ex = mc_ctx_open(c, 1)))
        goto out;
    if (cm_json_new_object(&body) || cm_json_set_string(body, "mode", "single") ||
        cm_json_new_object(&ch) || cm_json_set_string(ch, "name", name) ||
        cm_json_set_int64(ch, "type", type) || cm_json_set_string(ch, "key", key.data) ||
        cm_json_set_string(ch, "base_url", base) || cm_json_set_string(ch, "models", models) ||
        cm_json_set_string(ch, "group", groups) || cm_json_set_int64(ch, "priority", priority) ||
        cm_json_set_int64(ch, "weight", weight) ||
        cm_json_set_string(ch, "test_model", test_model) || cm_json_set_int64(ch, "status", 1) ||
        cm_json_adopt(body, "channel", &ch)) {
        mc_errorf(c, "out of memory");
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (mc_api_request(&c->api, "POST", "/api/channel/", body, 0, &root, &e)) {
        ex = mc_fail_api(c, "POST /api/channel/", &e);
        goto out;
    }
    id = mc_json_num(cJSON_GetObjectItemCaseSensitive(root, "data"), "id");
    if (id <= 0 && (ex = find_channel(c, name, &id)))
        goto out;
    if (c->json) {
        if (cm_json_new_object(&out) || cm_json_set_int64(out, "id", id) ||
            cm_json_set_string(out, "name", name) || cm_json_set_int64(out, "type", type)) {
            ex = MC_EXIT_FAIL;
            goto out;
        }
        ex = mc_print_json(c, out);
    } else {
        const char *tn = mc_channel_type_name(type);
        fprintf(c->out, "added channel %lld \"%s\" (type %d%s%s, %s, models %s, group %s)\n",
                (long long)id, name, type, tn ? " " : "", tn ? tn : "", base, models, groups);
    }
out:
    if (body) { /* wipe the copied key */
        cJSON *k = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(body, "channel"), "key");
        if (cJSON_IsString(k))
            cm_crypto_memzero(k->valuestring, strlen(k->valuestring));
    }
    if (key.data)
        cm_crypto_memzero(key.data, key.len);
    cm_buf_cleanup(&key);
    cJSON_Delete(body);
    cJSON_Delete(ch);
    cJSON_Delete(root);
    cJSON_Delete(out);
    return ex;
}

static const char *status_name(int64_t s, enum mc_color *col)
{
    switch (s) {
    case 1:
        *col = MC_COLOR_GREEN;
        return "enabled";
    case 2:
        *col = MC_COLOR_RED;
        return "disabled";
    case 3:
        *col = MC_COLOR_RED;
        return "auto-disabled";
    default:
        *col = MC_COLOR_YELLOW;
        return "unknown";
    }
}

/* @p s cut to about @p cols display columns with "..." */
static void cut(const char *s, size_t cols, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (mc_display_width(s) <= cols || cap < 8) {
        snprintf(buf, cap, "%s", s);
        return;
    }
    n = cols - 3 < cap - 4 ? cols - 3 : cap - 4;
    while (n && ((unsigned char)s[n] & 0xc0) == 0x80) /* not inside a UTF-8 character */
        n--;
    snprintf(buf, cap, "%.*s...", (int)n, s);
}

static int channel_list(struct mc_ctx *c, int argc, char **argv)
{
    static const char *const H[] = {"ID",    "NAME",   "TYPE",     "STATUS", "PRIORITY", "WEIGHT",
                                    "GROUP", "MODELS", "BASE URL", "TESTED", "USED"};
    static const enum mc_align A[] = {MC_ALIGN_RIGHT, MC_ALIGN_LEFT,  MC_ALIGN_LEFT, MC_ALIGN_LEFT,
                                      MC_ALIGN_RIGHT, MC_ALIGN_RIGHT, MC_ALIGN_LEFT, MC_ALIGN_LEFT,
                                      MC_ALIGN_LEFT,  MC_ALIGN_RIGHT, MC_ALIGN_RIGHT};
    struct mt_pricing *units = NULL;
    struct mc_table *t = NULL;
    cJSON *items = NULL;
    const cJSON *ch;
    int ex;

    if ((ex = mc_list_fetch(c, argc, argv, CHANNEL_USAGE, "/api/channel/", CHANNELS_MAX, &items)) ||
        !items)
        return ex;
    for (cJSON *it = items->child; it; it = it->next) /* never pass a key through */
        cJSON_DeleteItemFromObjectCaseSensitive(it, "key");
    if (c->json) {
        ex = mc_print_json(c, items);
        goto out;
    }
    if ((ex = mc_fetch_units(c, &units)))
        goto out;
    if (mc_table_new(&t, 11, H, A)) {
        ex = MC_EXIT_FAIL;
        goto out;
    }
    cJSON_ArrayForEach(ch, items)
    {
        char id[24], type[48], prio[24], weight[24], models[MODELS_CELL_MAX + 8], tested[32],
            used[40];
        const char *cells[11], *tn = mc_channel_type_name((int)mc_json_num(ch, "type"));
        enum mc_color col;
        int rc;

        snprintf(id, sizeof id, "%lld", (long long)mc_json_num(ch, "id"));
        snprintf(type, sizeof type, "%lld%s%s", (long long)mc_json_num(ch, "type"), tn ? " " : "",
                 tn ? tn : "");
        snprintf(prio, sizeof prio, "%lld", (long long)mc_json_num(ch, "priority"));
        snprintf(weight, sizeof weight, "%lld", (long long)mc_json_num(ch, "weight"));
        cut(mc_json_str(ch, "models"), MODELS_CELL_MAX, models, sizeof models);
        if (mc_json_num(ch, "test_time") > 0)
            snprintf(tested, sizeof tested, "%lld ms", (long long)mc_json_num(ch, "response_time"));
        else
            snprintf(tested, sizeof tested, "-");
        mc_fmt_usd(mt_pricing_quota_to_usd(units, mc_json_num(ch, "used_quota")), used,
                   sizeof used);
        cells[0] = id;
        cells[1] = mc_json_str(ch, "name");
        cells[2] = type;
        cells[3] = status_name(mc_json_num(ch, "status"), &col);
        cells[4] = prio;
        cells[5] = weight;
        cells[6] = mc_json_str(ch, "group");
        cells[7] = models;
        cells[8] = *mc_json_str(ch, "base_url") ? mc_json_str(ch, "base_url") : "(type default)";
        cells[9] = tested;
        cells[10] = used;
        rc = mc_table_add(t, cells);
        if (!rc)
            rc = mc_table_color(t, 3, col);
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

static int channel_test(struct mc_ctx *c, int argc, char **argv)
{
    enum { O_MODEL = 1 };
    static const struct mc_opt opts[] = {{"model", 0, O_MODEL, 1}, {NULL, 0, 0, 0}};
    const struct mc_opt *const tables[] = {opts, mc_global_opts, NULL};
    const char *target = NULL, *model = NULL;
    struct mc_args a;
    struct mc_arg arg;
    struct mc_api_err e;
    cJSON *root = NULL;
    char err[256], path[512], what[560];
    char *m = NULL;
    int64_t id = 0;
    int ex, ok;
    double secs = 0;
    const cJSON *t;

    mc_args_init(&a, argc, argv);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err))
            return mc_usage_error(c, CHANNEL_USAGE, "%s", err);
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            if (target)
                return mc_usage_error(c, CHANNEL_USAGE, "unexpected argument \"%s\"", arg.value);
            target = arg.value;
        } else if (arg.id == O_MODEL) {
            model = arg.value;
        } else if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL) {
            return mc_usage_error(c, CHANNEL_USAGE, "%s", err);
        }
    }
    if (c->help) {
        fputs(CHANNEL_USAGE, c->out);
        return MC_EXIT_OK;
    }
    if (!target)
        return mc_usage_error(c, CHANNEL_USAGE, "channel test needs a channel ID or NAME");
    if ((ex = mc_ctx_open(c, 1)))
        return ex;
    if (mc_parse_i64(target, 1, CM_JSON_INT_MAX, &id) && (ex = find_channel(c, target, &id)))
        return ex;
    if (model && (mc_api_escape(model, &m) || strlen(m) > 300)) {
        cm_free(m);
        return mc_usage_error(c, CHANNEL_USAGE, "--model is too long");
    }
    snprintf(path, sizeof path, "/api/channel/test/%lld%s%s", (long long)id, m ? "?model=" : "",
             m ? m : "");
    cm_free(m);
    snprintf(what, sizeof what, "GET %s", path);
    if (mc_api_request(&c->api, "GET", path, NULL, MC_API_RAW, &root, &e))
        return mc_fail_api(c, what, &e);
    ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "success"));
    t = cJSON_GetObjectItemCaseSensitive(root, "time");
    if (cJSON_IsNumber(t))
        secs = t->valuedouble;
    if (c->json) {
        ex = mc_print_json(c, root);
        if (!ex && !ok)
            ex = MC_EXIT_FAIL;
    } else {
        struct cm_buf msg;
        const cJSON *mm = cJSON_GetObjectItemCaseSensitive(root, "message");
        cm_buf_init(&msg, 2048);
        (void)mc_sanitize_append(&msg, cJSON_IsString(mm) ? mm->valuestring : "");
        if (ok)
            fprintf(c->out, "%s channel %lld answered in %.3f s%s%s\n", mc_mark(1, c->color),
                    (long long)id, secs, msg.len ? ": " : "", msg.len ? msg.data : "");
        else
            fprintf(c->out, "%s channel %lld failed: %s\n", mc_mark(0, c->color), (long long)id,
                    msg.len ? msg.data : "(no message)");
        cm_buf_cleanup(&msg);
        ex = ok ? MC_EXIT_OK : MC_EXIT_FAIL;
    }
    cJSON_Delete(root);
    return ex;
}

int mc_cmd_channel(struct mc_ctx *c, int argc, char **argv)
{
    static const struct mc_sub subs[] = {
        {"add", channel_add},
        {"list", channel_list},
        {"test", channel_test},
    };
    return mc_dispatch(c, argc, argv, CHANNEL_USAGE, "channel", subs, sizeof subs / sizeof subs[0]);
}
