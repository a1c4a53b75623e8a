/* SPDX-License-Identifier: MIT */
/*
 * redemption.c - the redemption code routes (spec newapi.md 3.6, 7.2), AdminAuth:
 *   GET    /api/redemption/           paged, id desc
 *   GET    /api/redemption/search     keyword (name substring or id), paged
 *   GET    /api/redemption/:id        one code
 *   POST   /api/redemption/           {"name" (1..20 characters), "count" (1..100),
 *                                     "quota" (> 0), "expired_time" (0 or future)}
 *                                     -> data: [the new 32-hex keys]
 *   PUT    /api/redemption/[?status_only=1]  {"id", ...}: status only (1 or 2), else
 *                                     name, quota, expired_time -> data: the code
 *   DELETE /api/redemption/invalid    soft-deletes used, disabled and expired codes -> count
 *   DELETE /api/redemption/:id        soft delete
 * Keys are returned to the admin (they are what gets handed out) but never logged.
 * Unlike NewAPI, creating codes is not gated on the payment-compliance confirmation
 * (that gate belongs to redeeming, POST /api/user/topup).
 */
#include "api/areas.h"

#include "api/admin_util.h"
#include "api/envelope.h"
#include "api/session.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "pricing.h"
#include "store/redemptions.h"
#include "store/users.h"

#include <inttypes.h>
#include <string.h>

#define NAME_MAX_CHARS 20

static cJSON *red_json(const struct mt_redemption *d)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? CM_OK : CM_ERR_NOMEM;
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "id", d->id);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "user_id", d->user_id);
    if (rc == CM_OK)
        rc = cm_json_set_string(o, "key", d->key ? d->key : "");
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "status", d->status);
    if (rc == CM_OK)
        rc = cm_json_set_string(o, "name", d->name ? d->name : "");
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "quota", d->quota);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "created_time", d->created_time);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "redeemed_time", d->redeemed_time);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "count", 0);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "used_user_id", d->used_user_id);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "expired_time", d->expired_time);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void list_common(struct cm_httpd_req *r, struct mt_server *srv, int search)
{
    struct mt_who who;
    struct mt_page pg;
    struct mt_redemption_list l = {0};
    cJSON *items = NULL, *data;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    mt_api_page(r, &pg);
    if (search) {
        const char *kw = cm_httpd_req_arg(r, "keyword");
        rc = mt_store_redemption_search(srv->store, kw ? kw : "", pg.offset, pg.size, &l);
    } else {
        rc = mt_store_redemption_list(srv->store, pg.offset, pg.size, &l);
    }
    if (rc == CM_OK)
        rc = cm_json_new_array(&items);
    for (size_t i = 0; rc == CM_OK && i < l.n; i++) {
        cJSON *j = red_json(&l.items[i]);
        rc = cm_json_adopt(items, NULL, &j);
    }
    if (rc) {
        mt_redemption_list_cleanup(&l);
        cJSON_Delete(items);
        mt_api_fail_status(r, 500, "cannot list redemption codes: %s", cm_err_str(rc));
        return;
    }
    data = mt_api_paged(&pg, l.total, items);
    mt_redemption_list_cleanup(&l);
    mt_api_ok_data(r, data);
}

static void red_list(struct cm_httpd_req *r, void *ud)
{
    list_common(r, ud, 0);
}

static void red_search(struct cm_httpd_req *r, void *ud)
{
    list_common(r, ud, 1);
}

/* reads code @p id into @p d; 0, or -1 after answering */
static int load(struct cm_httpd_req *r, struct mt_server *srv, int64_t id, struct mt_redemption *d)
{
    int rc = mt_store_redemption_get(srv->store, id, d);
    if (rc) {
        mt_api_fail_store(r, rc, "read", "redemption code", id);
        return -1;
    }
    return 0;
}

static void red_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_redemption d = {0};
    int64_t id;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_path_id(r, "redemption code", &id))
        return;
    if (load(r, srv, id, &d))
        return;
    mt_api_ok(r, red_json(&d));
    mt_redemption_cleanup(&d);
}

static int check_name(struct cm_httpd_req *r, const char *name)
{
    long n = mt_utf8_len(name);
    if (n < 1 || n > NAME_MAX_CHARS) {
        mt_api_fail(r, "field 'name' must be 1 to %d characters", NAME_MAX_CHARS);
        return -1;
    }
    return 0;
}

static int check_expiry(struct cm_httpd_req *r, struct mt_server *srv, int64_t t)
{
    if (t != 0 && t < cm_clock_wall_s(srv->clock)) {
        mt_api_fail(r, "field 'expired_time' must be 0 (never) or a future unix time");
        return -1;
    }
    return 0;
}

static void red_create(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct cm_json_err je = {0};
    cJSON *b = NULL, *arr = NULL;
    const char *name = NULL;
    int64_t count = 0, quota = 0, exp = 0;
    char **keys = NULL;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        return;
    if (cm_json_get_string(b, "name", &name, &je) != CM_OK ||
        cm_json_opt_int64(b, "count", 1, MT_REDEMPTION_BATCH_MAX, 1, &count, &je) != CM_OK ||
        cm_json_get_int64(b, "quota", 1, MT_PRICING_QUOTA_MAX, &quota, &je) != CM_OK ||
        cm_json_opt_int64(b, "expired_time", 0, CM_JSON_INT_MAX, 0, &exp, &je) != CM_OK) {
        mt_api_fail(r, "%s", je.msg);
        goto out;
    }
    if (check_name(r, name) || check_expiry(r, srv, exp))
        goto out;
    rc = mt_store_redemption_create(srv->store, who.id, name, quota, exp, (int)count, &keys);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot create redemption codes: %s", cm_err_str(rc));
        goto out;
    }
    rc = cm_json_new_array(&arr);
    for (int64_t i = 0; rc == CM_OK && i < count; i++)
        rc = cm_json_set_string(arr, NULL, keys[i]);
    cm_log_info(cm_httpd_req_id(r),
                "redemption: %s created %" PRId64 " code(s) named \"%s\" of %" PRId64 " quota",
                who.username, count, name, quota);
    if (rc) { /* created, but the answer cannot be built: say so rather than lose them */
        cJSON_Delete(arr);
        mt_api_fail_status(r, 500,
                           "codes created but the answer could not be built (%s); "
                           "list them with GET /api/redemption/",
                           cm_err_str(rc));
        goto out;
    }
    mt_api_ok(r, arr);
out:
    mt_redemption_keys_free(keys, keys ? (size_t)count : 0);
    cJSON_Delete(b);
}

static void red_update(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_redemption d = {0}, after = {0}, w;
    struct cm_json_err je = {0};
    cJSON *b = NULL;
    const char *so = cm_httpd_req_arg(r, "status_only");
    int status_only = so && *so && strcmp(so, "0") != 0 && strcmp(so, "false") != 0;
    int64_t id = 0, v;
    const char *name;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        return;
    if (cm_json_get_int64(b, "id", 1, CM_JSON_INT_MAX, &id, &je) != CM_OK) {
        mt_api_fail(r, "%s", je.msg);
        goto out;
    }
    if (load(r, srv, id, &d))
        goto out;
    w = d;
    w._mem = NULL;
    if (status_only) {
        if (cm_json_get_int64(b, "status", 1, 2, &v, &je) != CM_OK) {
            mt_api_fail(r, "field 'status' must be 1 (enabled) or 2 (disabled)");
            goto out;
        }
        if (d.status == MT_REDEMPTION_USED) {
            mt_api_fail(r, "redemption code %" PRId64 " is already used", id);
            goto out;
        }
        w.status = (int)v;
    } else {
        if (cm_json_opt_string(b, "name", d.name, &name, &je) != CM_OK ||
            cm_json_opt_int64(b, "quota", 1, MT_PRICING_QUOTA_MAX, d.quota, &w.quota, &je) !=
                CM_OK ||
            cm_json_opt_int64(b, "expired_time", 0, CM_JSON_INT_MAX, d.expired_time,
                              &w.expired_time, &je) != CM_OK) {
            mt_api_fail(r, "%s", je.msg);
            goto out;
        }
        w.name = name;
        if (check_name(r, w.name) ||
            (w.expired_time != d.expired_time && check_expiry(r, srv, w.expired_time)))
            goto out;
    }
    rc = mt_store_redemption_update(srv->store, &w);
    if (rc == CM_OK)
        rc = mt_store_redemption_get(srv->store, id, &after);
    if (rc) {
        mt_api_fail_store(r, rc, "update", "redemption code", id);
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "redemption: %s updated code %" PRId64 "%s", who.username, id,
                status_only ? " (status)" : "");
    mt_api_ok(r, red_json(&after));
out:
    mt_redemption_cleanup(&d);
    mt_redemption_cleanup(&after);
    cJSON_Delete(b);
}

static void red_delete(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t id;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_path_id(r, "redemption code", &id))
        return;
    rc = mt_store_redemption_delete(srv->store, id);
    if (rc) {
        mt_api_fail_store(r, rc, "delete", "redemption code", id);
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "redemption: %s deleted code %" PRId64, who.username, id);
    mt_api_ok(r, NULL);
}

static void red_delete_invalid(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t n = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    rc = mt_store_redemption_delete_invalid(srv->store, &n);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot delete invalid redemption codes: %s", cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "redemption: %s deleted %" PRId64 " invalid code(s)",
                who.username, n);
    mt_api_ok(r, cJSON_CreateNumber((double)n));
}

int mt_api_redemption_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } R[] = {
        {"GET", "/api/redemption/", red_list},
        {"GET", "/api/redemption/search", red_search},
        {"POST", "/api/redemption/", red_create},
        {"PUT", "/api/redemption/", red_update},
        {"DELETE", "/api/redemption/invalid", red_delete_invalid},
        {"GET", "/api/redemption/:id", red_get},
        {"DELETE", "/api/redemption/:id", red_delete},
    };
    int rc = CM_OK;
    for (size_t i = 0; rc == CM_OK && i < sizeof R / sizeof *R; i++)
        rc = cm_httpd_route(s, R[i].method, R[i].path, R[i].fn, srv);
    return rc;
}
