/* SPDX-License-Identifier: MIT */
/*
 * misc.c - the public admin routes (spec newapi.md 2.4, 3.2): GET /api/status (what the
 * console needs before login), GET /api/setup and POST /api/setup (the first-run root
 * account).
 */
#include "api/areas.h"

#include "api/envelope.h"
#include "auth.h"
#include "cm/err.h"
#include "cm/health.h"
#include "cm/json.h"
#include "optcache.h"
#include "pricing.h"
#include "store/options.h"
#include "store/setups.h"
#include "store/users.h"

#include <string.h>

static int setup_done(struct mt_server *srv, int *done)
{
    return mt_store_setup_check(srv->store, CM_VERSION, done);
}

static void status(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = mt_optcache_get(srv->opts);
    const struct mt_pricing *p = mt_options_pricing(o);
    cJSON *d = cJSON_CreateObject();
    int done = 0, rc = setup_done(srv, &done);
    const char *name = mt_options_get(o, "SystemName");

    if (rc || !d || cm_json_set_string(d, "version", CM_VERSION) ||
        cm_json_set_int64(d, "start_time", srv->start_time) ||
        cm_json_set_string(d, "system_name", name ? name : "New API") ||
        cm_json_set_string(d, "logo", mt_options_get(o, "Logo") ? mt_options_get(o, "Logo") : "") ||
        cm_json_set_string(d, "footer_html",
                           mt_options_get(o, "Footer") ? mt_options_get(o, "Footer") : "") ||
        cm_json_set_string(d, "server_address",
                           mt_options_get(o, "ServerAddress") ? mt_options_get(o, "ServerAddress")
                                                              : "") ||
        cm_json_set_double(d, "quota_per_unit", mt_pricing_quota_per_unit(p)) ||
        cm_json_set_bool(d, "display_in_currency", mt_pricing_display_in_currency(p)) ||
        cm_json_set_string(d, "quota_display_type",
                           mt_pricing_display_in_currency(p) ? "USD" : "TOKENS") ||
        cm_json_set_bool(d, "register_enabled", mt_options_bool(o, "RegisterEnabled", 1)) ||
        cm_json_set_bool(d, "password_login_enabled",
                         mt_options_bool(o, "PasswordLoginEnabled", 1)) ||
        cm_json_set_bool(d, "self_use_mode_enabled", mt_pricing_self_use_mode(p)) ||
        cm_json_set_bool(d, "demo_site_enabled", mt_options_bool(o, "DemoSiteEnabled", 0)) ||
        cm_json_set_bool(d, "enable_data_export", mt_options_bool(o, "DataExportEnabled", 1)) ||
        cm_json_set_bool(d, "enable_batch_update", true) || cm_json_set_bool(d, "setup", done) ||
        cm_json_set_bool(d, "turnstile_check", false) ||
        cm_json_set_bool(d, "checkin_enabled", false)) {
        cJSON_Delete(d);
        mt_options_unref(o);
        mt_api_fail_status(r, 500, "cannot build the status: %s",
                           cm_err_str(rc ? rc : CM_ERR_NOMEM));
        return;
    }
    mt_options_unref(o);
    mt_api_ok(r, d);
}

static void setup_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    int done = 0, root = 0, rc = setup_done(srv, &done);
    cJSON *d = cJSON_CreateObject();

    if (!rc && !done)
        rc = mt_store_user_root_exists(srv->store, &root);
    if (rc || !d || cm_json_set_bool(d, "status", done) ||
        cm_json_set_bool(d, "root_init", !done && root) ||
        cm_json_set_string(d, "database_type", done ? "" : srv->database_type)) {
        cJSON_Delete(d);
        mt_api_fail_status(r, 500, "cannot read the setup state: %s",
                           cm_err_str(rc ? rc : CM_ERR_NOMEM));
        return;
    }
    mt_api_ok(r, d);
}

static void setup_post(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    cJSON *b = NULL;
    const char *user = NULL, *pw = NULL, *pw2 = NULL;
    bool self_use = false, demo = false;
    int done = 0, root = 0, rc;
    struct mt_user u;
    char hash[MT_PASSWORD_HASH_MAX];

    mt_user_init(&u);
    if ((rc = setup_done(srv, &done)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot read the setup state: %s", cm_err_str(rc));
        return;
    }
    if (done) {
        mt_api_fail(r, "the system is already initialised");
        return;
    }
    if (mt_api_body(r, &b))
        return;
    (void)cm_json_opt_bool(b, "SelfUseModeEnabled", false, &self_use, NULL);
    (void)cm_json_opt_bool(b, "DemoSiteEnabled", false, &demo, NULL);
    if ((rc = mt_store_user_root_exists(srv->store, &root)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot read users: %s", cm_err_str(rc));
        goto out;
    }
    if (!root) {
        if (cm_json_get_string(b, "username", &user, NULL) || !*user || strlen(user) > 12) {
            mt_api_fail(r, "username must be 1 to 12 characters");
            goto out;
        }
        if (cm_json_get_string(b, "password", &pw, NULL) || strlen(pw) < 8) {
            mt_api_fail(r, "password must be at least 8 characters");
            goto out;
        }
        if (cm_json_get_string(b, "confirmPassword", &pw2, NULL) || strcmp(pw, pw2) != 0) {
            mt_api_fail(r, "the two passwords do not match");
            goto out;
        }
        if ((rc = mt_auth_hash_password(pw, hash, sizeof hash)) != CM_OK) {
            mt_api_fail_status(r, 500, "cannot hash the password: %s", cm_err_str(rc));
            goto out;
        }
        u.username = user;
        u.password = hash;
        u.display_name = "Root User";
        u.role = MT_ROLE_ROOT;
        u.status = MT_USER_ENABLED;
        u.quota = 100000000;
        u.group = "default";
        rc = mt_store_user_insert(srv->store, &u, NULL, NULL);
        memset(hash, 0, sizeof hash);
        if (rc) {
            mt_api_fail_status(r, rc == CM_ERR_EXISTS ? 200 : 500,
                               "cannot create the root user: %s", cm_err_str(rc));
            goto out;
        }
    }
    {
        struct mt_option kv[2] = {{"SelfUseModeEnabled", self_use ? "true" : "false"},
                                  {"DemoSiteEnabled", demo ? "true" : "false"}};
        rc = mt_store_option_set_many(srv->store, kv, 2);
    }
    if (!rc)
        rc = mt_store_setup_insert(srv->store, CM_VERSION);
    if (rc && rc != CM_ERR_EXISTS) {
        mt_api_fail_status(r, 500, "cannot record the setup: %s", cm_err_str(rc));
        goto out;
    }
    (void)mt_optcache_reload(srv->opts);
    mt_api_ok_msg(r, "system initialised");
out:
    cJSON_Delete(b);
}

int mt_api_misc_routes(struct cm_httpd *s, struct mt_server *srv)
{
    int rc = cm_httpd_route(s, "GET", "/api/status", status, srv);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/api/setup", setup_get, srv);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/api/setup", setup_post, srv);
    return rc;
}
