/* SPDX-License-Identifier: MIT */
/*
 * cmd_util.c - the context, global options and output helpers every command uses (see
 * cmd.h): configuration resolution with sources, error sentences with hints, JSON and
 * table output, number and time formatting.
 */
#include "cmd.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "pricing.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const struct mc_opt mc_global_opts[] = {
    {"url", 0, MC_GOPT_URL, 1},           {"access-token", 0, MC_GOPT_TOKEN, 1},
    {"user", 0, MC_GOPT_USER, 1},         {"config", 0, MC_GOPT_CONFIG, 1},
    {"json", 0, MC_GOPT_JSON, 0},         {"color", 0, MC_GOPT_COLOR, 1},
    {"no-color", 0, MC_GOPT_NO_COLOR, 0}, {"timeout", 0, MC_GOPT_TIMEOUT, 1},
    {"verbose", 'v', MC_GOPT_VERBOSE, 0}, {"help", 'h', MC_GOPT_HELP, 0},
    {"version", 0, MC_GOPT_VERSION, 0},   {NULL, 0, 0, 0},
};

void mc_ctx_init(struct mc_ctx *c, FILE *out, FILE *err, mc_getenv_fn env, void *env_ud)
{
    memset(c, 0, sizeof *c);
    c->color_mode = -1;
    c->timeout_s = 30;
    c->out = out;
    c->err = err;
    c->env = env;
    c->env_ud = env_ud;
    c->now = (int64_t)time(NULL);
    mc_conf_init(&c->conf);
}

void mc_ctx_cleanup(struct mc_ctx *c)
{
    if (c->opened)
        mc_api_cleanup(&c->api);
    mc_conf_cleanup(&c->conf);
    c->opened = 0;
}

int mc_global_opt(struct mc_ctx *c, const struct mc_arg *a, char *err, size_t errlen)
{
    int64_t v;

    if (a->kind != MC_ARG_OPT || a->id <= MC_GOPT_BASE)
        return CM_ERR_NOTFOUND;
    switch (a->id) {
    case MC_GOPT_URL:
        c->flags.val[MC_CONF_URL] = a->value;
        break;
    case MC_GOPT_TOKEN:
        c->flags.val[MC_CONF_TOKEN] = a->value;
        break;
    case MC_GOPT_USER:
        c->flags.val[MC_CONF_USER] = a->value;
        break;
    case MC_GOPT_CONFIG:
        c->config_path = a->value;
        break;
    case MC_GOPT_JSON:
        c->json = 1;
        break;
    case MC_GOPT_COLOR:
        if (strcmp(a->value, "always") == 0) {
            c->color_mode = 1;
        } else if (strcmp(a->value, "never") == 0) {
            c->color_mode = 0;
        } else if (strcmp(a->value, "auto") == 0) {
            c->color_mode = -1;
        } else {
            snprintf(err, errlen, "--color takes always, never or auto, not \"%s\"", a->value);
            return CM_ERR_INVAL;
        }
        break;
    case MC_GOPT_NO_COLOR:
        c->color_mode = 0;
        break;
    case MC_GOPT_TIMEOUT:
        if (mc_parse_i64(a->value, 1, 3600, &v)) {
            snprintf(err, errlen, "--timeout takes seconds (1..3600), not \"%s\"", a->value);
            return CM_ERR_INVAL;
        }
        c->timeout_s = (long)v;
        break;
    case MC_GOPT_VERBOSE:
        c->verbose = 1;
        break;
    case MC_GOPT_HELP:
        c->help = 1;
        break;
    default:
        return CM_ERR_NOTFOUND; /* --version: main's business */
    }
    return CM_OK;
}

static void vmsg(struct mc_ctx *c, const char *label, const char *color, const char *fmt,
                 va_list ap)
{
    int col = c->color_err;
    fprintf(c->err, "meterctl: %s%s%s", col ? color : "", label, col ? mc_color_off() : "");
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
}

void mc_errorf(struct mc_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(c, "error: ", mc_color_on(MC_COLOR_RED), fmt, ap);
    va_end(ap);
}

void mc_warnf(struct mc_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(c, "warning: ", mc_color_on(MC_COLOR_YELLOW), fmt, ap);
    va_end(ap);
}

int mc_usage_error(struct mc_ctx *c, const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("meterctl: ", c->err);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fprintf(c->err, "\n%s(meterctl --help lists every command)\n", usage ? usage : "");
    return MC_EXIT_USAGE;
}

int mc_ctx_open(struct mc_ctx *c, int need_token)
{
    char path[MC_CONF_PATH_MAX], err[512], warn[512];
    const char *file_path = NULL;
    char *text = NULL;
    size_t len = 0;
    int insecure = 0, rc, ex = MC_EXIT_OK;

    c->color =
        mc_color_wanted(c->color_mode, c->out_tty, c->env ? c->env("NO_COLOR", c->env_ud) : NULL,
                        c->env ? c->env("TERM", c->env_ud) : NULL);
    c->color_err =
        mc_color_wanted(c->color_mode, c->err_tty, c->env ? c->env("NO_COLOR", c->env_ud) : NULL,
                        c->env ? c->env("TERM", c->env_ud) : NULL);
    if (c->opened)
        return MC_EXIT_OK;
    if (c->config_path) {
        file_path = c->config_path;
    } else if (mc_conf_default_path(c->env, c->env_ud, path, sizeof path) == CM_OK) {
        file_path = path;
    }
    if (file_path) {
        rc = mc_conf_read_file(file_path, &text, &len, &insecure, err, sizeof err);
        if (rc == CM_ERR_NOTFOUND && !c->config_path) {
            file_path = NULL; /* no default file: fine */
        } else if (rc) {
            mc_errorf(c, "config file: %s", err);
            ex = MC_EXIT_USAGE;
            goto out;
        }
    }
    rc = mc_conf_resolve(&c->conf, text, len, file_path, c->env, c->env_ud, &c->flags, err,
                         sizeof err, warn, sizeof warn);
    if (rc) {
        mc_errorf(c, "%s", rc == CM_ERR_NOMEM ? "out of memory" : err);
        ex = MC_EXIT_USAGE;
        goto out;
    }
    if (warn[0])
        mc_warnf(c, "%s", warn);
    if (insecure && c->conf.val[MC_CONF_TOKEN] &&
        strcmp(c->conf.src[MC_CONF_TOKEN], mc_conf_env_name(MC_CONF_TOKEN)) != 0 &&
        strcmp(c->conf.src[MC_CONF_TOKEN], "--access-token") != 0)
        mc_warnf(c, "%s holds an access token and is readable by other users (chmod 600 it)",
                 file_path);
    if (need_token && !c->conf.val[MC_CONF_TOKEN]) {
        mc_errorf(c, "no access token: pass --access-token, set METERD_TOKEN, or put token=... "
                     "in ~/.config/meterctl (a root/admin user's token: GET /api/user/token "
                     "in a logged-in session, or the console's \"generate access token\")");
        ex = MC_EXIT_USAGE;
        goto out;
    }
    if (mc_api_init(&c->api, c->conf.val[MC_CONF_URL], c->conf.val[MC_CONF_TOKEN], c->conf.user,
                    c->timeout_s) != CM_OK) {
        mc_errorf(c, "cannot start libcurl");
        ex = MC_EXIT_FAIL;
        goto out;
    }
    c->opened = 1;
    if (c->verbose) {
        c->api.trace = c->err;
        fprintf(c->err, "* meterd %s (from %s), user %lld (from %s), access token %s%s%s\n",
                c->conf.val[MC_CONF_URL], c->conf.src[MC_CONF_URL], (long long)c->conf.user,
                c->conf.src[MC_CONF_USER], c->conf.val[MC_CONF_TOKEN] ? "from " : "none",
                c->conf.val[MC_CONF_TOKEN] ? c->conf.src[MC_CONF_TOKEN] : "",
                file_path ? "" : " (no config file)");
    }
out:
    if (text) {
        cm_crypto_memzero(text, len);
        cm_free(text);
    }
    return ex;
}

int mc_exit_of(int rc)
{
    switch (rc) {
    case CM_OK:
        return MC_EXIT_OK;
    case CM_ERR_AUTH:
        return MC_EXIT_AUTH;
    case CM_ERR_TIMEOUT:
        return MC_EXIT_UNREACHABLE;
    default:
        return MC_EXIT_FAIL;
    }
}

int mc_fail_api(struct mc_ctx *c, const char *what, const struct mc_api_err *e)
{
    const char *url = c->conf.val[MC_CONF_URL] ? c->conf.val[MC_CONF_URL] : "?";

    mc_errorf(c, "%s: %s", what, e->msg);
    if ((e->rc == CM_ERR_UPSTREAM && e->status == 0) || e->rc == CM_ERR_TIMEOUT) {
        fprintf(c->err,
                "  hint: is meterd running at %s (from %s)? Set --url or METERD_URL "
                "(timeout %lds: --timeout)\n",
                url, c->conf.src[MC_CONF_URL], c->timeout_s);
        return MC_EXIT_UNREACHABLE;
    }
    if (e->rc == CM_ERR_AUTH) {
        fprintf(c->err,
                "  hint: meterd refused the access token (from %s) for user %lld (from %s): "
                "the token must belong to that user (New-Api-User), who needs the admin or "
                "root role for this route\n",
                c->conf.src[MC_CONF_TOKEN][0] ? c->conf.src[MC_CONF_TOKEN] : "nowhere",
                (long long)c->conf.user, c->conf.src[MC_CONF_USER]);
        return MC_EXIT_AUTH;
    }
    if (e->rc == CM_ERR_NOTFOUND && e->status == 404)
        fprintf(c->err, "  hint: the meterd at %s has no such route (an older build?)\n", url);
    return MC_EXIT_FAIL;
}

int mc_print_json(struct mc_ctx *c, const cJSON *v)
{
    char *s = NULL;
    if (cm_json_print(v, &s, NULL) != CM_OK) {
        mc_errorf(c, "cannot print JSON (out of memory)");
        return MC_EXIT_FAIL;
    }
    fprintf(c->out, "%s\n", s);
    cm_free(s);
    return MC_EXIT_OK;
}

int mc_print_table(struct mc_ctx *c, const struct mc_table *t)
{
    struct cm_buf b;
    int ex = MC_EXIT_OK;

    cm_buf_init(&b, (size_t)256 << 20);
    if (mc_table_render(t, c->color, &b) != CM_OK) {
        mc_errorf(c, "cannot render the table (out of memory)");
        ex = MC_EXIT_FAIL;
    } else if (b.len) {
        fwrite(b.data, 1, b.len, c->out);
    }
    cm_buf_cleanup(&b);
    return ex;
}

int mc_parse_simple(struct mc_ctx *c, int argc, char **argv, const char *usage, const char **pos,
                    size_t max, size_t *npos)
{
    const struct mc_opt *const tables[] = {mc_global_opts, NULL};
    struct mc_args a;
    struct mc_arg arg;
    char err[256];

    *npos = 0;
    mc_args_init(&a, argc, argv);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err))
            return mc_usage_error(c, usage, "%s", err);
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            if (*npos >= max)
                return mc_usage_error(c, usage, "unexpected argument \"%s\"", arg.value);
            pos[(*npos)++] = arg.value;
            continue;
        }
        if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL)
            return mc_usage_error(c, usage, "%s", err);
    }
    return MC_EXIT_OK;
}

const char *mc_fmt_usd(double usd, char *buf, size_t cap)
{
    double a = fabs(usd);
    int dec = a != 0 && a < 0.00001 ? 9 : 6;
    size_t n;

    if (!isfinite(usd)) {
        snprintf(buf, cap, "?");
        return buf;
    }
    snprintf(buf, cap, "%s$%.*f", usd < 0 ? "-" : "", dec, a);
    n = strlen(buf);
    while (dec > 2 && n && buf[n - 1] == '0') {
        buf[--n] = '\0';
        dec--;
    }
    return buf;
}

const char *mc_fmt_time(int64_t t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t < 0) {
        snprintf(buf, cap, "never");
        return buf;
    }
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

const char *mc_fmt_ratio(double r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.12g", r);
    return buf;
}

const char *mc_mark(int ok, int color)
{
    if (color)
        return ok ? "\033[32m\xe2\x9c\x93\033[0m" : "\033[31m\xe2\x9c\x97\033[0m";
    return ok ? "\xe2\x9c\x93" : "\xe2\x9c\x97"; /* ✓ ✗ */
}

int mc_fetch_units(struct mc_ctx *c, struct mt_pricing **out)
{
    struct mt_pricing_opts o;
    struct mc_api_err e;
    cJSON *root = NULL;
    const cJSON *d, *q;
    char qpu[64], err[256];
    int rc, ex = MC_EXIT_OK;

    memset(&o, 0, sizeof o);
    rc = mc_api_request(&c->api, "GET", "/api/status", NULL, 0, &root, &e);
    if (rc)
        return mc_fail_api(c, "GET /api/status", &e);
    d = cJSON_GetObjectItemCaseSensitive(root, "data");
    q = cJSON_GetObjectItemCaseSensitive(d, "quota_per_unit");
    if (cJSON_IsNumber(q) && q->valuedouble > 0) {
        snprintf(qpu, sizeof qpu, "%.17g", q->valuedouble);
        o.quota_per_unit = qpu;
    } else if (cJSON_IsString(q) && *q->valuestring) {
        snprintf(qpu, sizeof qpu, "%s", q->valuestring);
        o.quota_per_unit = qpu;
    }
    if (mt_pricing_new(&o, out, err, sizeof err) != CM_OK) {
        mc_errorf(c, "meterd's QuotaPerUnit is unusable: %s", err);
        ex = MC_EXIT_FAIL;
    }
    cJSON_Delete(root);
    return ex;
}

int mc_fetch_options(struct mc_ctx *c, cJSON **options)
{
    struct mc_api_err e;
    cJSON *root = NULL, *d;

    *options = NULL;
    if (mc_api_request(&c->api, "GET", "/api/option/", NULL, 0, &root, &e))
        return mc_fail_api(c, "GET /api/option/", &e);
    d = cJSON_DetachItemFromObjectCaseSensitive(root, "data");
    cJSON_Delete(root);
    if (!cJSON_IsArray(d)) {
        cJSON_Delete(d);
        mc_errorf(c, "GET /api/option/: data is not a list of {key, value}");
        return MC_EXIT_FAIL;
    }
    *options = d;
    return MC_EXIT_OK;
}

int mc_dispatch(struct mc_ctx *c, int argc, char **argv, const char *usage, const char *family,
                const struct mc_sub *subs, size_t n)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        fputs(usage, argc < 1 ? c->err : c->out);
        return argc < 1 ? MC_EXIT_USAGE : MC_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[0], subs[i].name) != 0)
            continue;
        if (!subs[i].run) {
            fputs(usage, c->out);
            return MC_EXIT_OK;
        }
        return subs[i].run(c, argc - 1, argv + 1);
    }
    return mc_usage_error(c, usage, "unknown %s command \"%s\"", family, argv[0]);
}

int mc_list_fetch(struct mc_ctx *c, int argc, char **argv, const char *usage, const char *path,
                  size_t max, cJSON **items)
{
    struct mc_api_err e;
    const char *pos[1];
    char what[160];
    size_t npos;
    int ex;

    *items = NULL;
    if ((ex = mc_parse_simple(c, argc, argv, usage, pos, 0, &npos)))
        return ex;
    if (c->help) {
        fputs(usage, c->out);
        return MC_EXIT_OK;
    }
    if ((ex = mc_ctx_open(c, 1)))
        return ex;
    if (mc_api_list(&c->api, path, max, items, &e)) {
        cJSON_Delete(*items);
        *items = NULL;
        snprintf(what, sizeof what, "GET %s", path);
        return mc_fail_api(c, what, &e);
    }
    return MC_EXIT_OK;
}

int64_t mc_json_num(const cJSON *o, const char *name)
{
    int64_t v = 0;
    (void)cm_json_opt_int64(o, name, CM_JSON_INT_MIN, CM_JSON_INT_MAX, 0, &v, NULL);
    return v;
}

const char *mc_json_str(const cJSON *o, const char *name)
{
    const char *v = "";
    (void)cm_json_opt_string(o, name, "", &v, NULL);
    return v;
}
