/* SPDX-License-Identifier: MIT */
/*
 * routes.c - the relay's routes (spec newapi.md 4.1, 3.7) and its process-wide state:
 *   POST /v1/chat/completions, /v1/completions, /v1/responses, /v1/messages, /v1/embeddings
 *        (engine.c)
 *   GET  /v1/models, /v1/models/:model: the models the key's group has channels for
 *        (OpenAI shape; the Anthropic shape when x-api-key and anthropic-version are sent)
 *   GET  /dashboard/billing/subscription, /v1/dashboard/billing/subscription,
 *        /dashboard/billing/usage, /v1/dashboard/billing/usage (OpenAI's billing shapes)
 *   GET  /metrics (Prometheus text: the relay's counters, the store writer, transfers)
 *   OPTIONS on each of these paths but /metrics (CORS preflight; answers carry
 *        Access-Control-Allow-Origin: *)
 */
#include "relay/relay_int.h"

#include "api/areas.h"
#include "api/envelope.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "optcache.h"
#include "pricing.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MODELS_CREATED 1626777600 /* NewAPI's fixed "created" of listed models */

/* ---- process state ---- */

int mt_relay_new(struct mt_store *st, struct mt_relay **out)
{
    struct mt_relay *r;
    int rc;
    if (!st || !out)
        return CM_ERR_INVAL;
    r = cm_calloc(1, sizeof *r);
    if (!r)
        return CM_ERR_NOMEM;
    r->rnd = mt_relay_rand;
    atomic_init(&r->inflight, 0);
    rc = mt_relay_health_new(&r->health);
    if (!rc)
        rc = mt_relay_rl_new(&r->rl);
    if (!rc)
        rc = mt_relay_metrics_new(&r->metrics);
    if (!rc)
        rc = mt_relay_cache_new(st, NULL, &r->cache);
    if (rc) {
        mt_relay_free(r);
        return rc;
    }
    *out = r;
    return CM_OK;
}

void mt_relay_stop(struct mt_relay *r)
{
    if (r)
        mt_relay_cache_stop(r->cache);
}

void mt_relay_free(struct mt_relay *r)
{
    if (!r)
        return;
    mt_relay_cache_free(r->cache);
    mt_relay_metrics_free(r->metrics);
    mt_relay_rl_free(r->rl);
    mt_relay_health_free(r->health);
    cm_free(r);
}

/* ---- inference routes ---- */

static void chat(struct cm_httpd_req *r, void *ud)
{
    mt_relay__handle(r, ud, MT_RELAY_CHAT);
}

static void completions(struct cm_httpd_req *r, void *ud)
{
    mt_relay__handle(r, ud, MT_RELAY_COMPLETIONS);
}

static void responses(struct cm_httpd_req *r, void *ud)
{
    mt_relay__handle(r, ud, MT_RELAY_RESPONSES);
}

static void messages(struct cm_httpd_req *r, void *ud)
{
    mt_relay__handle(r, ud, MT_RELAY_MESSAGES);
}

static void embeddings(struct cm_httpd_req *r, void *ud)
{
    mt_relay__handle(r, ud, MT_RELAY_EMBEDDINGS);
}

/* ---- helpers of the GET routes ---- */

/* replies with @p root (consumed) unless @p rc says building it failed */
static void reply_json(struct cm_httpd_req *r, const char *rid, int rc, cJSON *root)
{
    char *txt = NULL;
    size_t len = 0;
    if (rc || !root || cm_json_print(root, &txt, &len) != CM_OK) {
        cJSON_Delete(root);
        mt_relay_reply_error(r, rid, MT_RELAY_ERR_MIDDLEWARE, 500, NULL, "", "out of memory");
        return;
    }
    cJSON_Delete(root);
    cm_httpd_reply_take(r, 200, "application/json", txt, len);
}

/* the caller of a GET route: rid header set, key checked; 0 to go on */
static int caller(struct mt_server *srv, struct cm_httpd_req *r, char rid[MT_RELAY_RID_MAX],
                  struct mt_relay_token **tok, struct mt_relay_user **user)
{
    mt_relay_request_id(rid);
    cm_httpd_add_header(r, "X-Oneapi-Request-Id", rid);
    cm_httpd_add_header(r, "X-New-Api-Version", MT_API_VERSION);
    cm_httpd_add_header(r, "Access-Control-Allow-Origin", "*");
    return mt_relay__authenticate(srv, r, rid, tok, user, NULL);
}

/* ---- /v1/models ---- */

struct models_ctx {
    const struct mt_token *tok;
    const struct mt_pricing *pricing;
    const char *group, *user_group;
    int show_unpriced;
    int anthropic;
    cJSON *data;
    const char *only; /* /v1/models/:model */
    char first[MT_RELAY_MODEL_MAX], last[MT_RELAY_MODEL_MAX];
    size_t n;
    int oom;
};

static int listed(struct models_ctx *c, const char *model)
{
    struct mt_price p;
    for (const cJSON *it = c->data ? c->data->child : NULL; it; it = it->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, model) == 0)
            return 1; /* already listed (auto: several groups) */
    }
    if (c->only && strcmp(c->only, model) != 0)
        return 1;
    if (!mt_relay_model_allowed(c->tok, model))
        return 1;
    if (!c->show_unpriced &&
        mt_pricing_model_price(c->pricing, model, c->group, c->user_group, &p) == CM_ERR_NOTFOUND)
        return 1;
    return 0;
}

static void add_model(const char *model, const struct mt_channel *first, void *ud)
{
    struct models_ctx *c = ud;
    cJSON *m = NULL, *types = NULL;
    int claude = (first && first->type == 14) || strncmp(model, "claude", 6) == 0;
    int rc;

    if (c->oom || listed(c, model))
        return;
    rc = cm_json_new_object(&m);
    if (!rc)
        rc = cm_json_set_string(m, "id", model);
    if (!rc && c->anthropic) {
        char when[32];
        time_t t = MODELS_CREATED;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        rc = cm_json_set_string(m, "created_at", when);
        if (!rc)
            rc = cm_json_set_string(m, "display_name", model);
        if (!rc)
            rc = cm_json_set_string(m, "type", "model");
    } else if (!rc) {
        rc = cm_json_set_string(m, "object", "model");
        if (!rc)
            rc = cm_json_set_int64(m, "created", MODELS_CREATED);
        if (!rc)
            rc = cm_json_set_string(m, "owned_by", claude ? "anthropic" : "openai");
        if (!rc)
            rc = cm_json_new_array(&types);
        if (!rc)
            rc = cm_json_set_string(types, NULL, "openai");
        if (!rc && claude)
            rc = cm_json_set_string(types, NULL, "anthropic");
        if (!rc)
            rc = cm_json_adopt(m, "supported_endpoint_types", &types);
    }
    if (!rc)
        rc = cm_json_adopt(c->data, NULL, &m);
    cJSON_Delete(types);
    cJSON_Delete(m);
    if (rc) {
        c->oom = 1;
        return;
    }
    if (!c->n++)
        snprintf(c->first, sizeof c->first, "%s", model);
    snprintf(c->last, sizeof c->last, "%s", model);
}

static void list_models(struct cm_httpd_req *r, struct mt_server *srv, const char *only)
{
    struct mt_relay_token *tok = NULL;
    struct mt_relay_user *user = NULL;
    struct mt_relay_routes *routes = NULL;
    struct mt_options *o = NULL;
    struct mt_relay_deny d = {0};
    struct models_ctx c = {0};
    char rid[MT_RELAY_RID_MAX], group[MT_RELAY_GROUP_MAX], g[MT_RELAY_GROUP_MAX];
    cJSON *root = NULL;
    int rc;

    c.anthropic =
        cm_httpd_req_header(r, "x-api-key") && cm_httpd_req_header(r, "anthropic-version");
    if (caller(srv, r, rid, &tok, &user))
        return;
    o = mt_optcache_get(srv->opts);
    if (mt_relay_group(&tok->t, &user->u, o, group, sizeof group, &d)) {
        mt_relay_reply_error(r, rid, MT_RELAY_ERR_MIDDLEWARE, d.status, NULL, d.code, "%s", d.msg);
        goto out;
    }
    routes = mt_relay_cache_routes(srv->relay->cache);
    c.tok = &tok->t;
    c.pricing = mt_options_pricing(o);
    c.user_group = user->u.group;
    c.only = only;
    c.show_unpriced = mt_pricing_self_use_mode(c.pricing) ||
                      mt_relay_user_setting(&user->u, "accept_unset_model_ratio_model");
    rc = cm_json_new_array(&c.data);
    if (rc)
        goto oom;
    if (strcmp(group, "auto") == 0) {
        for (size_t i = 0; mt_relay_auto_group_at(o, user->u.group, i, g, sizeof g) == CM_OK; i++) {
            c.group = g;
            mt_relay_routes_models(routes, g, add_model, &c);
        }
    } else {
        c.group = group;
        mt_relay_routes_models(routes, group, add_model, &c);
    }
    if (c.oom)
        goto oom;
    if (only) {
        cJSON *m = c.data->child;
        if (!m) {
            cJSON *e = NULL;
            char *txt = NULL;
            size_t len = 0;
            char msg[MT_RELAY_MODEL_MAX + 64];
            snprintf(msg, sizeof msg, "The model '%s' does not exist", only);
            if (cm_json_new_object(&root) || cm_json_new_object(&e) ||
                cm_json_set_string(e, "message", msg) ||
                cm_json_set_string(e, "type", "invalid_request_error") ||
                cm_json_set_string(e, "param", "model") ||
                cm_json_set_string(e, "code", "model_not_found") ||
                cm_json_adopt(root, "error", &e) || cm_json_print(root, &txt, &len)) {
                cJSON_Delete(e);
                rc = CM_ERR_NOMEM;
                goto oom;
            }
            cJSON_Delete(root);
            root = NULL;
            cm_httpd_reply_take(r, 404, "application/json", txt, len);
            goto out;
        }
        cJSON_DetachItemViaPointer(c.data, m);
        reply_json(r, rid, CM_OK, m);
        goto out;
    }
    rc = cm_json_new_object(&root);
    if (rc)
        goto oom;
    if (c.anthropic) {
        rc = cm_json_adopt(root, "data", &c.data);
        if (!rc)
            rc = c.n ? cm_json_set_string(root, "first_id", c.first)
                     : cm_json_set_null(root, "first_id");
        if (!rc)
            rc = cm_json_set_bool(root, "has_more", false);
        if (!rc)
            rc = c.n ? cm_json_set_string(root, "last_id", c.last)
                     : cm_json_set_null(root, "last_id");
    } else {
        rc = cm_json_set_bool(root, "success", true);
        if (!rc)
            rc = cm_json_adopt(root, "data", &c.data);
        if (!rc)
            rc = cm_json_set_string(root, "object", "list");
    }
oom:
    reply_json(r, rid, rc, root); /* root NULL (c.oom) is an error too */
    root = NULL;
out:
    cJSON_Delete(root);
    cJSON_Delete(c.data);
    mt_relay_routes_unref(routes);
    mt_options_unref(o);
    mt_relay_token_unref(tok);
    mt_relay_user_unref(user);
}

static void models(struct cm_httpd_req *r, void *ud)
{
    list_models(r, ud, NULL);
}

static void model_one(struct cm_httpd_req *r, void *ud)
{
    list_models(r, ud, cm_httpd_req_param(r, "model"));
}

/* ---- billing (3.7) ---- */

/* quota in the display unit: USD (or CNY with its rate), or raw TOKENS */
static double display(const struct mt_options *o, double quota)
{
    const struct mt_pricing *p = mt_options_pricing(o);
    const char *t = mt_options_get(o, "general_setting.quota_display_type");
    if (!mt_pricing_display_in_currency(p) || (t && strcmp(t, "TOKENS") == 0))
        return quota;
    quota /= mt_pricing_quota_per_unit(p);
    if (t && strcmp(t, "CNY") == 0)
        quota *= mt_options_double(o, "USDExchangeRate", 7.3);
    return quota;
}

static void billing(struct cm_httpd_req *r, struct mt_server *srv, int usage)
{
    struct mt_relay_token *tok = NULL;
    struct mt_relay_user *user = NULL;
    struct mt_options *o = NULL;
    struct mt_token t = {0};
    struct mt_user u = {0};
    char rid[MT_RELAY_RID_MAX];
    cJSON *root = NULL;
    double amount;
    int token_stat, rc;

    if (caller(srv, r, rid, &tok, &user))
        return;
    o = mt_optcache_get(srv->opts);
    token_stat = mt_options_bool(o, "DisplayTokenStatEnabled", 1);
    /* balances are read fresh: the cache only knows who the caller is */
    rc = token_stat ? mt_store_token_get(srv->store, tok->t.id, 0, &t)
                    : mt_store_user_get(srv->store, user->u.id, 0, &u);
    if (rc) {
        mt_relay_reply_error(r, rid, MT_RELAY_ERR_MIDDLEWARE, 500, NULL, "",
                             "cannot read the balance: %s", cm_err_str(rc));
        goto out;
    }
    rc = cm_json_new_object(&root);
    if (rc) {
        reply_json(r, rid, rc, NULL);
        goto out;
    }
    if (usage) {
        amount = display(o, (double)(token_stat ? t.used_quota : u.used_quota));
        rc = cm_json_set_string(root, "object", "list");
        if (!rc)
            rc = cm_json_set_double(root, "total_usage", amount * 100);
    } else {
        if (token_stat && t.unlimited_quota)
            amount = 100000000;
        else
            amount = display(o, token_stat ? (double)t.remain_quota + (double)t.used_quota
                                           : (double)u.quota + (double)u.used_quota);
        rc = cm_json_set_string(root, "object", "billing_subscription");
        if (!rc)
            rc = cm_json_set_bool(root, "has_payment_method", true);
        if (!rc)
            rc = cm_json_set_double(root, "soft_limit_usd", amount);
        if (!rc)
            rc = cm_json_set_double(root, "hard_limit_usd", amount);
        if (!rc)
            rc = cm_json_set_double(root, "system_hard_limit_usd", amount);
        if (!rc)
            rc = cm_json_set_int64(root, "access_until",
                                   tok->t.expired_time > 0 ? tok->t.expired_time : 0);
    }
    reply_json(r, rid, rc, root);
    root = NULL;
out:
    cJSON_Delete(root);
    mt_token_cleanup(&t);
    mt_user_cleanup(&u);
    mt_options_unref(o);
    mt_relay_token_unref(tok);
    mt_relay_user_unref(user);
}

static void billing_subscription(struct cm_httpd_req *r, void *ud)
{
    billing(r, ud, 0);
}

static void billing_usage(struct cm_httpd_req *r, void *ud)
{
    billing(r, ud, 1);
}

/* ---- CORS (NewAPI's /v1 middleware: every origin, any header) ---- */

static void preflight(struct cm_httpd_req *r, void *ud)
{
    const char *h = cm_httpd_req_header(r, "Access-Control-Request-Headers");
    (void)ud;
    cm_httpd_add_header(r, "Access-Control-Allow-Origin", "*");
    cm_httpd_add_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    cm_httpd_add_header(r, "Access-Control-Allow-Headers",
                        h && *h && !strpbrk(h, "\r\n") ? h : "*");
    cm_httpd_add_header(r, "Access-Control-Max-Age", "86400");
    cm_httpd_reply(r, 204, "text/plain", "", 0);
}

/* ---- /metrics ---- */

static void metrics(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_store_writer_stats ws = {0};
    struct cm_buf b;
    char *txt;
    size_t len = 0;
    int rc;

    cm_buf_init(&b, (size_t)64 << 20);
    rc = mt_relay_metrics_render(srv->relay->metrics, &b);
    mt_store_writer_stats(srv->store, &ws);
    if (!rc)
        rc = cm_buf_appendf(
            &b,
            "# HELP meterd_relay_inflight Relay requests being served.\n"
            "# TYPE meterd_relay_inflight gauge\nmeterd_relay_inflight %lld\n"
            "# HELP meterd_upstream_transfers Upstream transfers in flight.\n"
            "# TYPE meterd_upstream_transfers gauge\nmeterd_upstream_transfers %u\n"
            "# HELP meterd_store_writer_ops_total Request-path writes run by the writer.\n"
            "# TYPE meterd_store_writer_ops_total counter\nmeterd_store_writer_ops_total %llu\n"
            "# HELP meterd_store_writer_commits_total Group commits of the writer.\n"
            "# TYPE meterd_store_writer_commits_total counter\n"
            "meterd_store_writer_commits_total %llu\n"
            "# HELP meterd_store_writer_failed_commits_total Batches that failed to commit.\n"
            "# TYPE meterd_store_writer_failed_commits_total counter\n"
            "meterd_store_writer_failed_commits_total %llu\n"
            "# HELP meterd_store_writer_queued Writes waiting for the writer.\n"
            "# TYPE meterd_store_writer_queued gauge\nmeterd_store_writer_queued %llu\n"
            "# HELP meterd_store_writer_max_batch Largest batch so far.\n"
            "# TYPE meterd_store_writer_max_batch gauge\nmeterd_store_writer_max_batch %llu\n",
            (long long)atomic_load(&srv->relay->inflight),
            srv->client ? cm_httpc_active(srv->client) : 0u, (unsigned long long)ws.ops,
            (unsigned long long)ws.commits, (unsigned long long)ws.failed_commits,
            (unsigned long long)ws.queued, (unsigned long long)ws.max_batch);
    txt = rc ? NULL : cm_buf_release(&b, &len);
    cm_buf_cleanup(&b);
    if (!txt) {
        cm_httpd_reply_error(r, 500, "new_api_error", NULL, "metrics: %s", cm_err_str(rc));
        return;
    }
    cm_httpd_reply_take(r, 200, "text/plain; version=0.0.4; charset=utf-8", txt, len);
}

int mt_api_relay_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } routes[] = {
        {"POST", "/v1/chat/completions", chat},
        {"POST", "/v1/completions", completions},
        {"POST", "/v1/responses", responses},
        {"POST", "/v1/messages", messages},
        {"POST", "/v1/embeddings", embeddings},
        {"GET", "/v1/models", models},
        {"GET", "/v1/models/:model", model_one},
        {"GET", "/dashboard/billing/subscription", billing_subscription},
        {"GET", "/v1/dashboard/billing/subscription", billing_subscription},
        {"GET", "/dashboard/billing/usage", billing_usage},
        {"GET", "/v1/dashboard/billing/usage", billing_usage},
        {"GET", "/metrics", metrics},
    };
    int rc = CM_OK;
    if (!srv || !srv->relay) {
        cm_log_error(NULL, "relay: no relay state; the /v1 routes are not served");
        return CM_ERR_INVAL;
    }
    for (size_t i = 0; !rc && i < sizeof routes / sizeof *routes; i++) {
        rc = cm_httpd_route(s, routes[i].method, routes[i].path, routes[i].fn, srv);
        /* a preflight per path (not a wildcard: unknown paths stay 404, not 405) */
        if (!rc && strcmp(routes[i].path, "/metrics") != 0 &&
            (i == 0 || strcmp(routes[i].path, routes[i - 1].path) != 0))
            rc = cm_httpd_route(s, "OPTIONS", routes[i].path, preflight, srv);
    }
    return rc;
}
