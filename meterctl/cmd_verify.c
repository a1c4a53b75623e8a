/* SPDX-License-Identifier: MIT */
/*
 * cmd_verify.c - `meterctl verify`: the end-to-end check of a deployment.
 *
 *   1. cliproxyd answers   POST <cliproxy-url>/v1/chat/completions with the cliproxyd key: 200
 *   2. meterd relays       the same through meterd with an sk- key: 200 and a request id
 *                          (X-Oneapi-Request-Id)
 *   3. log row exists      GET /api/log/?request_id=<id>&type=2 finds exactly that row
 *                          (polled up to --wait seconds: meterd writes logs asynchronously)
 *   4. quota > 0           the row charged something
 *   5. quota = formula     meterd's pricing module, fed the options read from meterd
 *                          (GET /api/option/) and the row's tokens, gives the row's quota
 *
 * Each step prints a mark and a detail; a step that cannot run because an earlier one
 * failed is shown as skipped. Exit 0 only when every step passed. The two keys and the
 * access token are never printed.
 */
#include "cmd.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "price.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char VERIFY_USAGE[] =
    "usage: meterctl verify --cliproxy-url URL --cliproxy-key KEY --token sk-... --model M\n"
    "                       [--prompt TEXT] [--max-tokens N] [--wait SECONDS]\n"
    "  One request straight to cliproxyd, one through meterd, then the consume log row of\n"
    "  the meterd request (by its X-Oneapi-Request-Id) must exist with quota > 0 equal to\n"
    "  the price formula applied to its tokens. --cliproxy-url/--cliproxy-key may also come\n"
    "  from CLIPROXY_URL/CLIPROXY_KEY or cliproxy_url=/cliproxy_key= in the config file.\n";

enum { S_CLIPROXY = 0, S_RELAY, S_LOG, S_POSITIVE, S_FORMULA, S__COUNT };
static const char *const STEP_NAMES[S__COUNT] = {
    "cliproxyd answers", "meterd relays", "log row exists", "quota > 0", "quota = price formula"};

enum step_state { ST_SKIPPED = 0, ST_OK, ST_FAIL };

struct step {
    enum step_state state;
    char detail[768];
};

static void set_step(struct step *s, enum step_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_step(struct step *s, enum step_state st, const char *fmt, ...)
{
    va_list ap;
    s->state = st;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* "N prompt + M completion tokens" from an OpenAI chat answer, or "" */
static void usage_text(const struct mc_http_resp *r, char *buf, size_t cap)
{
    cJSON *root = NULL;
    const cJSON *u;
    int64_t p = -1, cpl = -1;

    buf[0] = '\0';
    if (cm_json_parse(r->body.data ? r->body.data : "", r->body.len, NULL, &root, NULL))
        return;
    u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(u) && !cm_json_get_int64(u, "prompt_tokens", 0, CM_JSON_INT_MAX, &p, NULL) &&
        !cm_json_get_int64(u, "completion_tokens", 0, CM_JSON_INT_MAX, &cpl, NULL))
        snprintf(buf, cap, ", %lld prompt + %lld completion tokens", (long long)p, (long long)cpl);
    cJSON_Delete(root);
}

/* one chat request; fills @p s from the outcome. 1 when it answered 200 */
static int chat(struct mc_ctx *c, const char *url, const char *key, const char *body,
                struct mc_http_resp *r, struct step *s)
{
    struct mc_api_err e;
    struct cm_buf auth;
    const char *hdrs[2] = {0};
    char tokens[96];
    int rc;

    cm_buf_init(&auth, 4096);
    if (cm_buf_appendf(&auth, "Authorization: Bearer %s", key)) {
        set_step(s, ST_FAIL, "the key is too long");
        cm_buf_cleanup(&auth);
        return 0;
    }
    hdrs[0] = auth.data;
    rc = mc_http(&c->api, "POST", url, hdrs, body, r, &e);
    cm_crypto_memzero(auth.data, auth.len);
    cm_buf_cleanup(&auth);
    if (rc) {
        set_step(s, ST_FAIL, "%s", e.msg);
        return 0;
    }
    if (r->status != 200) {
        cJSON *root = NULL;
        if (mc_api_envelope(r->status, r->body.data, r->body.len, MC_API_RAW, &root, &e) ==
            CM_OK) { /* a 2xx other than 200 */
            cJSON_Delete(root);
            snprintf(e.msg, sizeof e.msg, "HTTP %ld (expected 200)", r->status);
        }
        if (r->request_id[0] && !strstr(e.msg, r->request_id))
            set_step(s, ST_FAIL, "POST %s: %s (request id %s)", url, e.msg, r->request_id);
        else
            set_step(s, ST_FAIL, "POST %s: %s", url, e.msg);
        return 0;
    }
    usage_text(r, tokens, sizeof tokens);
    set_step(s, ST_OK, "HTTP 200 in %.3f s%s", r->seconds, tokens);
    return 1;
}

/* GET /api/log/ filtered by request id until the row shows or @p wait_s pass */
static int find_log(struct mc_ctx *c, const char *rid, long wait_s, cJSON **row, struct step *s)
{
    struct mc_api_err e;
    char *q = NULL, path[512];
    int64_t deadline_ms = (int64_t)wait_s * 1000, waited = 0;
    int ex = MC_EXIT_OK;

    *row = NULL;
    if (mc_api_escape(rid, &q) || strlen(q) > 300) {
        cm_free(q);
        set_step(s, ST_FAIL, "the request id is too long");
        return MC_EXIT_FAIL;
    }
    snprintf(path, sizeof path, "/api/log/?request_id=%s&type=2&p=1&page_size=100", q);
    cm_free(q);
    for (;;) {
        cJSON *root = NULL, *items;
        cJSON *d;
        const cJSON *it;
        int matches = 0;

        if (mc_api_request(&c->api, "GET", path, NULL, 0, &root, &e)) {
            set_step(s, ST_FAIL, "GET /api/log/: %s", e.msg);
            return e.rc == CM_ERR_AUTH ? MC_EXIT_AUTH : MC_EXIT_FAIL;
        }
        d = cJSON_GetObjectItemCaseSensitive(root, "data");
        items = cJSON_IsArray(d) ? d : cJSON_GetObjectItemCaseSensitive(d, "items");
        cJSON_ArrayForEach(it, (cJSON_IsArray(items) ? items : NULL))
        {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "request_id");
            if (cJSON_IsString(r) && strcmp(r->valuestring, rid) == 0)
                matches++;
        }
        if (matches > 1) {
            set_step(s, ST_FAIL, "%d consume rows carry request id %s (expected one)", matches,
                     rid);
            cJSON_Delete(root);
            return MC_EXIT_FAIL;
        }
        if (matches == 1) {
            cJSON_ArrayForEach(it, items)
            {
                const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "request_id");
                if (cJSON_IsString(r) && strcmp(r->valuestring, rid) == 0) {
                    *row = cJSON_Duplicate(it, 1);
                    break;
                }
            }
            cJSON_Delete(root);
            if (!*row) {
                set_step(s, ST_FAIL, "out of memory");
                ex = MC_EXIT_FAIL;
            }
            return ex;
        }
        cJSON_Delete(root);
        if (waited >= deadline_ms) {
            set_step(s, ST_FAIL, "no consume log row with request id %s after %ld s", rid, wait_s);
            return MC_EXIT_FAIL;
        }
        sleep_ms(250);
        waited += 250;
    }
}

/* the group of the user who made the request (for GroupGroupRatio); NULL when unknown */
static char *user_group(struct mc_ctx *c, const cJSON *row)
{
    struct mc_api_err e;
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(row, "username"), *u;
    cJSON *items = NULL;
    char *kw = NULL, *g = NULL, path[512];

    if (!cJSON_IsString(un) || !*un->valuestring || mc_api_escape(un->valuestring, &kw))
        return NULL;
    if (strlen(kw) < 400) {
        snprintf(path, sizeof path, "/api/user/search?keyword=%s", kw);
        if (mc_api_list(&c->api, path, 1000, &items, &e) == CM_OK) {
            cJSON_ArrayForEach(u, items)
            {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(u, "username");
                const cJSON *gr = cJSON_GetObjectItemCaseSensitive(u, "group");
                if (cJSON_IsString(n) && strcmp(n->valuestring, un->valuestring) == 0 &&
                    cJSON_IsString(gr) && *gr->valuestring)
                    g = cm_strdup(gr->valuestring);
            }
        }
    }
    cm_free(kw);
    cJSON_Delete(items);
    return g;
}

static void formula_text(const struct mt_charge *ch, char *buf, size_t cap)
{
    const struct mt_price *p = &ch->price;
    char r1[32], r2[32], r3[32], r4[32];

    if (p->use_price)
        snprintf(buf, cap, "ModelPrice $%s x QuotaPerUnit x GroupRatio %s",
                 mc_fmt_ratio(p->model_price, r1, sizeof r1),
                 mc_fmt_ratio(p->group_ratio, r2, sizeof r2));
    else
        snprintf(buf, cap,
                 "ModelRatio %s, CompletionRatio %s, CacheRatio %s, GroupRatio %s on %lld prompt "
                 "(%lld cached) + %lld completion tokens",
                 mc_fmt_ratio(p->model_ratio, r1, sizeof r1),
                 mc_fmt_ratio(p->completion_ratio, r2, sizeof r2),
                 mc_fmt_ratio(p->cache_ratio, r3, sizeof r3),
                 mc_fmt_ratio(p->group_ratio, r4, sizeof r4), (long long)ch->usage.prompt_tokens,
                 (long long)ch->usage.cached_tokens, (long long)ch->usage.completion_tokens);
}

static int report(struct mc_ctx *c, const char *model, const char *rid, struct step *st,
                  const cJSON *row, int64_t expected)
{
    int failed = 0, ex = MC_EXIT_OK;

    for (int i = 0; i < S__COUNT; i++) {
        failed += st[i].state != ST_OK;
        if (st[i].state == ST_SKIPPED && !st[i].detail[0])
            snprintf(st[i].detail, sizeof st[i].detail, "skipped: an earlier step failed");
    }
    if (c->json) {
        cJSON *o = NULL, *steps = NULL, *s = NULL, *rowc = NULL;
        int rc = cm_json_new_object(&o);
        if (!rc)
            rc = cm_json_set_bool(o, "ok", failed == 0);
        if (!rc)
            rc = cm_json_set_string(o, "model", model);
        if (!rc)
            rc = rid[0] ? cm_json_set_string(o, "request_id", rid)
                        : cm_json_set_null(o, "request_id");
        if (!rc)
            rc = cm_json_new_array(&steps);
        for (int i = 0; !rc && i < S__COUNT; i++) {
            rc = cm_json_new_object(&s);
            if (!rc)
                rc = cm_json_set_string(s, "name", STEP_NAMES[i]);
            if (!rc)
                rc = cm_json_set_string(s, "status",
                                        st[i].state == ST_OK     ? "ok"
                                        : st[i].state == ST_FAIL ? "fail"
                                                                 : "skipped");
            if (!rc)
                rc = cm_json_set_string(s, "detail", st[i].detail);
            if (!rc)
                rc = cm_json_adopt(steps, NULL, &s);
        }
        if (!rc)
            rc = cm_json_adopt(o, "steps", &steps);
        if (!rc && expected >= 0)
            rc = cm_json_set_int64(o, "expected_quota", expected);
        if (!rc && row) {
            rowc = cJSON_Duplicate(row, 1);
            rc = cm_json_adopt(o, "log", &rowc);
        }
        ex = rc ? MC_EXIT_FAIL : mc_print_json(c, o);
        cJSON_Delete(s);
        cJSON_Delete(steps);
        cJSON_Delete(o);
    } else {
        for (int i = 0; i < S__COUNT; i++) {
            struct cm_buf d;
            cm_buf_init(&d, sizeof st[i].detail * 2);
            (void)mc_sanitize_append(&d, st[i].detail);
            fprintf(c->out, "%s %-22s %s\n",
                    st[i].state == ST_SKIPPED ? "-" : mc_mark(st[i].state == ST_OK, c->color),
                    STEP_NAMES[i], d.data ? d.data : "");
            cm_buf_cleanup(&d);
        }
        if (failed)
            fprintf(c->out, "%s%d of %d checks did not pass%s\n", c->color ? "\033[31m" : "",
                    failed, S__COUNT, c->color ? mc_color_off() : "");
        else
            fprintf(c->out, "%sall %d checks passed%s\n", c->color ? "\033[32m" : "", S__COUNT,
                    c->color ? mc_color_off() : "");
    }
    return ex ? ex : failed ? MC_EXIT_FAIL : MC_EXIT_OK;
}

int mc_cmd_verify(struct mc_ctx *c, int argc, char **argv)
{
    enum { O_CP_URL = 1, O_CP_KEY, O_TOKEN, O_MODEL, O_PROMPT, O_MAX, O_WAIT };
    static const struct mc_opt opts[] = {
        {"cliproxy-url", 0, O_CP_URL, 1}, {"cliproxy-key", 0, O_CP_KEY, 1},
        {"token", 0, O_TOKEN, 1},         {"model", 0, O_MODEL, 1},
        {"prompt", 0, O_PROMPT, 1},       {"max-tokens", 0, O_MAX, 1},
        {"wait", 0, O_WAIT, 1},           {NULL, 0, 0, 0},
    };
    const struct mc_opt *const tables[] = {opts, mc_global_opts, NULL};
    const char *token = NULL, *model = NULL, *prompt = "Say OK.";
    int64_t max_tokens = 16, wait_s = 10, expected = -1;
    struct step st[S__COUNT];
    struct mc_http_resp r1, r2;
    struct mc_log_facts facts;
    struct mt_pricing *p = NULL;
    struct mt_charge charge;
    struct mc_args a;
    struct mc_arg arg;
    struct cm_buf url;
    cJSON *body = NULL, *msgs = NULL, *msg = NULL, *row = NULL, *options = NULL;
    char err[512], *text = NULL, *ugroup = NULL, rid[MC_API_RID_MAX] = "";
    int ex = MC_EXIT_OK;

    memset(st, 0, sizeof st);
    memset(&facts, 0, sizeof facts);
    mc_http_resp_init(&r1);
    mc_http_resp_init(&r2);
    cm_buf_init(&url, 8192);
    mc_args_init(&a, argc, argv);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err)) {
            ex = mc_usage_error(c, VERIFY_USAGE, "%s", err);
            goto out;
        }
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            ex = mc_usage_error(c, VERIFY_USAGE, "unexpected argument \"%s\"", arg.value);
            goto out;
        }
        switch (arg.id) {
        case O_CP_URL:
            c->flags.val[MC_CONF_CLIPROXY_URL] = arg.value;
            break;
        case O_CP_KEY:
            c->flags.val[MC_CONF_CLIPROXY_KEY] = arg.value;
            break;
        case O_TOKEN:
            token = arg.value;
            break;
        case O_MODEL:
            model = arg.value;
            break;
        case O_PROMPT:
            prompt = arg.value;
            break;
        case O_MAX:
        case O_WAIT:
            if (mc_parse_i64(arg.value, arg.id == O_MAX ? 1 : 0, arg.id == O_MAX ? 100000 : 600,
                             arg.id == O_MAX ? &max_tokens : &wait_s)) {
                ex = mc_usage_error(c, VERIFY_USAGE, "--%s \"%s\" is out of range", arg.name,
                                    arg.value);
                goto out;
            }
            break;
        default:
            if (mc_global_opt(c, &arg, err, sizeof err) == CM_ERR_INVAL) {
                ex = mc_usage_error(c, VERIFY_USAGE, "%s", err);
                goto out;
            }
        }
    }
    if (c->help) {
        fputs(VERIFY_USAGE, c->out);
        goto out;
    }
    if (!token || !*token || !model || !*model) {
        ex = mc_usage_error(c, VERIFY_USAGE, "verify needs --token sk-... and --model M");
        goto out;
    }
    if ((ex = mc_ctx_open(c, 1)))
        goto out;
    if (!c->conf.val[MC_CONF_CLIPROXY_URL] || !c->conf.val[MC_CONF_CLIPROXY_KEY]) {
        ex = mc_usage_error(c, VERIFY_USAGE,
                            "verify needs --cliproxy-url and --cliproxy-key "
                            "(or CLIPROXY_URL / CLIPROXY_KEY)");
        goto out;
    }
    if (cm_json_new_object(&body) || cm_json_set_string(body, "model", model) ||
        cm_json_new_array(&msgs) || cm_json_new_object(&msg) ||
        cm_json_set_string(msg, "role", "user") || cm_json_set_string(msg, "content", prompt) ||
        cm_json_adopt(msgs, NULL, &msg) || cm_json_adopt(body, "messages", &msgs) ||
        cm_json_set_int64(body, "max_tokens", max_tokens) ||
        cm_json_set_bool(body, "stream", false) || cm_json_print(body, &text, NULL)) {
        mc_errorf(c, "out of memory");
        ex = MC_EXIT_FAIL;
        goto out;
    }
    if (!c->json)
        fprintf(c->out, "verify %s: cliproxyd %s, meterd %s\n", model,
                c->conf.val[MC_CONF_CLIPROXY_URL], c->conf.val[MC_CONF_URL]);

    /* 1. cliproxyd directly */
    if (cm_buf_appendf(&url, "%s/v1/chat/completions", c->conf.val[MC_CONF_CLIPROXY_URL]) == CM_OK)
        chat(c, url.data, c->conf.val[MC_CONF_CLIPROXY_KEY], text, &r1, &st[S_CLIPROXY]);
    else
        set_step(&st[S_CLIPROXY], ST_FAIL, "the URL is too long");

    /* 2. through meterd */
    cm_buf_reset(&url);
    if (cm_buf_appendf(&url, "%s/v1/chat/completions", c->conf.val[MC_CONF_URL]) != CM_OK) {
        set_step(&st[S_RELAY], ST_FAIL, "the URL is too long");
    } else if (chat(c, url.data, token, text, &r2, &st[S_RELAY])) {
        if (!r2.request_id[0]) {
            set_step(&st[S_RELAY], ST_FAIL, "HTTP 200 but no X-Oneapi-Request-Id header");
        } else {
            snprintf(rid, sizeof rid, "%s", r2.request_id);
            snprintf(st[S_RELAY].detail + strlen(st[S_RELAY].detail),
                     sizeof st[S_RELAY].detail - strlen(st[S_RELAY].detail), ", request id %s",
                     rid);
        }
    }
    if (st[S_RELAY].state != ST_OK) {
        snprintf(st[S_LOG].detail, sizeof st[S_LOG].detail,
                 "skipped: no request went through "
                 "meterd");
        goto report;
    }

    /* 3. the log row */
    if (find_log(c, rid, (long)wait_s, &row, &st[S_LOG]) != MC_EXIT_OK)
        goto report;
    if (mc_log_facts_read(row, &facts, err, sizeof err)) {
        set_step(&st[S_LOG], ST_FAIL, "%s", err);
        goto report;
    }
    set_step(&st[S_LOG], ST_OK,
             "row %lld: model %s, group %s, %lld prompt + %lld completion "
             "tokens, quota %lld",
             (long long)facts.id, facts.model, facts.group[0] ? facts.group : "(none)",
             (long long)facts.usage.prompt_tokens, (long long)facts.usage.completion_tokens,
             (long long)facts.quota);

    /* 4. something was charged */
    if (facts.quota > 0)
        set_step(&st[S_POSITIVE], ST_OK, "%lld", (long long)facts.quota);
    else
        set_step(&st[S_POSITIVE], ST_FAIL, "the row charged %lld", (long long)facts.quota);

    /* 5. the charge is the price formula */
    if ((ex = mc_fetch_options(c, &options))) {
        set_step(&st[S_FORMULA], ST_FAIL,
                 "cannot read meterd's options (GET /api/option/ needs "
                 "a root access token)");
        ex = MC_EXIT_OK;
        goto report;
    }
    if (mc_price_snapshot(options, &p, err, sizeof err)) {
        set_step(&st[S_FORMULA], ST_FAIL, "meterd's pricing options do not load: %s", err);
        goto report;
    }
    ugroup = user_group(c, row);
    if (mc_price_expected(p, &facts, ugroup, &charge, err, sizeof err)) {
        set_step(&st[S_FORMULA], ST_FAIL, "%s", err);
        goto report;
    }
    expected = charge.quota;
    {
        char f[512], usd[40];
        formula_text(&charge, f, sizeof f);
        mc_fmt_usd(mt_pricing_quota_to_usd(p, expected), usd, sizeof usd);
        if (expected == facts.quota)
            set_step(&st[S_FORMULA], ST_OK, "%lld (%s) from %s", (long long)expected, usd, f);
        else
            set_step(&st[S_FORMULA], ST_FAIL,
                     "the row has %lld, the formula gives %lld (%s) from "
                     "%s",
                     (long long)facts.quota, (long long)expected, usd, f);
    }

report:
    if (!ex)
        ex = report(c, model, rid, st, row, expected);
out:
    if (text) {
        cm_crypto_memzero(text, strlen(text));
        cm_free(text);
    }
    cm_free(ugroup);
    mc_log_facts_cleanup(&facts);
    mt_pricing_free(p);
    cJSON_Delete(options);
    cJSON_Delete(row);
    cJSON_Delete(body);
    cJSON_Delete(msgs);
    cJSON_Delete(msg);
    cm_buf_cleanup(&url);
    mc_http_resp_cleanup(&r1);
    mc_http_resp_cleanup(&r2);
    return ex;
}
