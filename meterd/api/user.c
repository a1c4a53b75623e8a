/* SPDX-License-Identifier: MIT */
/*
 * user.c - the /api/user routes (spec newapi.md 2.5, 3.3, 7.2): register, login (the
 * `session` cookie), logout, the caller's own account (self, settings, access token,
 * invite code, usable groups and models, redemption top-up) and the admin user management
 * (list, search, get, create, edit, manage, hard delete), with canManageTargetRole on
 * every admin action.
 *
 * Where this does better than NewAPI:
 *  - login answers the same for an unknown user and a wrong password, and spends the
 *    same bcrypt time on both (no user enumeration by timing);
 *  - PUT /api/user/ keeps fields the body leaves out (NewAPI writes zero values), refuses
 *    a role change with a pointer to /manage instead of a bare "invalid params", and
 *    checks that a new group exists in GroupRatio;
 *  - /manage add_quota override refuses a negative balance; every quota change and its
 *    type-3 log row (other.admin_info) are one transaction;
 *  - passwords may be 8..72 bytes (NewAPI: 8..20; bcrypt reads 72);
 *  - admins can read and hard-delete soft-deleted users (NewAPI lists them but 404s).
 * Log row contents are NewAPI's (Chinese) texts, so dashboards read them the same way.
 */
#include "api/areas.h"

#include "api/admin_util.h"
#include "api/envelope.h"
#include "api/limits.h"
#include "api/session.h"
#include "api/usable_groups.h"
#include "auth.h"
#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "optcache.h"
#include "pricing.h"
#include "store/admin_users.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERNAME_MAX 20 /* characters (NewAPI validate max=20) */
#define DISPLAY_NAME_MAX 20
#define PASSWORD_MIN 8  /* bytes */
#define PASSWORD_MAX 72 /* bytes: what bcrypt reads */
#define REMARK_MAX 255  /* characters (varchar(255)) */
#define GROUP_MAX 64    /* bytes (varchar(64)) */
#define EMAIL_MAX 50    /* NewAPI validate max=50 */
#define QUOTA_MAX (INT64_C(1) << 52)
#define SETTING_VALUE_MAX (16 * 1024)

/* ---- small helpers ---- */

/* @p s without leading/trailing spaces, into @p buf (NewAPI trims usernames) */
static const char *trim(const char *s, char *buf, size_t cap)
{
    size_t n;
    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* NULL when @p name is a valid username, else why not */
static const char *bad_username(const char *name)
{
    if (!*name)
        return "username is required";
    if ((unsigned long)mt_utf8_len(name) > USERNAME_MAX)
        return "username must be at most 20 characters";
    if (mt_has_ctl(name))
        return "username must not contain control characters";
    return NULL;
}

static const char *bad_password(const char *pw)
{
    size_t n = strlen(pw);
    if (n < PASSWORD_MIN)
        return "password must be at least 8 characters";
    if (n > PASSWORD_MAX)
        return "password must be at most 72 bytes";
    return NULL;
}

static const char *bad_display_name(const char *s)
{
    if ((unsigned long)mt_utf8_len(s) > DISPLAY_NAME_MAX)
        return "display_name must be at most 20 characters";
    if (mt_has_ctl(s))
        return "display_name must not contain control characters";
    return NULL;
}

/* The JSON getters' message for a body field of the wrong type, answered. */
static void fail_field(struct cm_httpd_req *r, const struct cm_json_err *je)
{
    mt_api_fail(r, "invalid request body: %s", je->msg[0] ? je->msg : "bad field");
}

/* ---- JSON of a user ---- */

/* The full user row as NewAPI's admin routes show it: password "", no access token. */
static cJSON *user_json(const struct mt_user *u)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || cm_json_set_int64(o, "id", u->id) || mt_json_set_str(o, "username", u->username) ||
        mt_json_set_str(o, "password", "") || mt_json_set_str(o, "display_name", u->display_name) ||
        cm_json_set_int64(o, "role", u->role) || cm_json_set_int64(o, "status", u->status) ||
        mt_json_set_str(o, "email", u->email) || mt_json_set_str(o, "github_id", u->github_id) ||
        mt_json_set_str(o, "discord_id", u->discord_id) ||
        mt_json_set_str(o, "oidc_id", u->oidc_id) ||
        mt_json_set_str(o, "wechat_id", u->wechat_id) ||
        mt_json_set_str(o, "telegram_id", u->telegram_id) ||
        mt_json_set_str(o, "verification_code", "") || cm_json_set_int64(o, "quota", u->quota) ||
        cm_json_set_int64(o, "used_quota", u->used_quota) ||
        cm_json_set_int64(o, "request_count", u->request_count) ||
        mt_json_set_str(o, "group", u->group) || mt_json_set_str(o, "aff_code", u->aff_code) ||
        cm_json_set_int64(o, "aff_count", u->aff_count) ||
        cm_json_set_int64(o, "aff_quota", u->aff_quota) ||
        cm_json_set_int64(o, "aff_history_quota", u->aff_history) ||
        cm_json_set_int64(o, "inviter_id", u->inviter_id) ||
        (u->deleted_at ? mt_json_set_str(o, "DeletedAt", u->deleted_at)
                       : cm_json_set_null(o, "DeletedAt")) ||
        mt_json_set_str(o, "linux_do_id", u->linux_do_id) ||
        mt_json_set_str(o, "setting", u->setting) || mt_json_set_str(o, "remark", u->remark) ||
        mt_json_set_str(o, "stripe_customer", u->stripe_customer) ||
        cm_json_set_int64(o, "created_at", u->created_at) ||
        cm_json_set_int64(o, "last_login_at", u->last_login_at)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A string member of the users.setting JSON text, or "" (borrowed into @p buf). */
static const char *setting_str(const char *setting, const char *key, char **buf)
{
    cJSON *s = NULL;
    const char *v = NULL;
    *buf = NULL;
    if (setting && *setting && cm_json_parse(setting, strlen(setting), NULL, &s, NULL) == CM_OK &&
        cJSON_IsObject(s) && cm_json_opt_string(s, key, "", &v, NULL) == CM_OK)
        *buf = cm_strdup(v);
    cJSON_Delete(s);
    return *buf ? *buf : "";
}

/* NewAPI calculateUserPermissions: what the console shows in the sidebar. */
static cJSON *permissions_json(int role)
{
    cJSON *p = cJSON_CreateObject(), *m = cJSON_CreateObject(), *admin = NULL;
    int rc = !p || !m;
    if (!rc && role == MT_ROLE_ROOT) {
        rc = cm_json_set_bool(p, "sidebar_settings", false);
    } else if (!rc && role == MT_ROLE_ADMIN) {
        admin = cJSON_CreateObject();
        rc = !admin || cm_json_set_bool(admin, "channel", false) ||
             cm_json_set_bool(admin, "supplier", false) ||
             cm_json_set_bool(admin, "setting", false) || cm_json_adopt(m, "admin", &admin) ||
             cm_json_set_bool(p, "sidebar_settings", true);
    } else if (!rc) {
        rc = cm_json_set_bool(m, "admin", false) || cm_json_set_bool(p, "sidebar_settings", true);
    }
    if (!rc)
        rc = cm_json_adopt(p, "sidebar_modules", &m);
    cJSON_Delete(admin);
    cJSON_Delete(m);
    if (rc) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* GET /api/user/self's data (NewAPI GetSelf): no password, remark or access token. */
static cJSON *self_json(const struct mt_user *u)
{
    cJSON *o = cJSON_CreateObject(), *perm = permissions_json(u->role);
    char *sb = NULL;
    const char *sidebar = setting_str(u->setting, "sidebar_modules", &sb);
    int rc =
        !o || !perm || cm_json_set_int64(o, "id", u->id) ||
        mt_json_set_str(o, "username", u->username) ||
        mt_json_set_str(o, "display_name", u->display_name) ||
        cm_json_set_int64(o, "role", u->role) || cm_json_set_int64(o, "status", u->status) ||
        mt_json_set_str(o, "email", u->email) || mt_json_set_str(o, "github_id", u->github_id) ||
        mt_json_set_str(o, "discord_id", u->discord_id) ||
        mt_json_set_str(o, "oidc_id", u->oidc_id) ||
        mt_json_set_str(o, "wechat_id", u->wechat_id) ||
        mt_json_set_str(o, "telegram_id", u->telegram_id) ||
        mt_json_set_str(o, "group", u->group) || cm_json_set_int64(o, "quota", u->quota) ||
        cm_json_set_int64(o, "used_quota", u->used_quota) ||
        cm_json_set_int64(o, "request_count", u->request_count) ||
        mt_json_set_str(o, "aff_code", u->aff_code) ||
        cm_json_set_int64(o, "aff_count", u->aff_count) ||
        cm_json_set_int64(o, "aff_quota", u->aff_quota) ||
        cm_json_set_int64(o, "aff_history_quota", u->aff_history) ||
        cm_json_set_int64(o, "inviter_id", u->inviter_id) ||
        mt_json_set_str(o, "linux_do_id", u->linux_do_id) ||
        mt_json_set_str(o, "setting", u->setting) ||
        mt_json_set_str(o, "stripe_customer", u->stripe_customer) ||
        mt_json_set_str(o, "sidebar_modules", sidebar) || cm_json_adopt(o, "permissions", &perm);
    cm_free(sb);
    cJSON_Delete(perm);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* @p setting (JSON text, may be empty or malformed) with @p key set to @p value. */
static int setting_with(const char *setting, const char *key, const char *value, char **out)
{
    cJSON *s = NULL;
    int rc;
    if (!setting || !*setting || cm_json_parse(setting, strlen(setting), NULL, &s, NULL) != CM_OK ||
        !cJSON_IsObject(s)) {
        cJSON_Delete(s);
        s = cJSON_CreateObject();
        if (!s)
            return CM_ERR_NOMEM;
    }
    rc = cm_json_set_string(s, key, value);
    if (rc == CM_OK)
        rc = cm_json_print(s, out, NULL);
    cJSON_Delete(s);
    return rc;
}

/* ---- login / register / logout ---- */

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[MT_PASSWORD_HASH_MAX];

static void dummy_init(void)
{
    if (mt_auth_hash_password("meterd-no-such-user", dummy_hash, sizeof dummy_hash) != CM_OK)
        dummy_hash[0] = '\0';
}

static void login(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = mt_optcache_get(srv->opts);
    const char *name = NULL, *pw = NULL;
    struct cm_json_err je = {0};
    cJSON *b = NULL, *d = NULL;
    struct mt_user u;
    int rc;

    mt_user_init(&u);
    if (mt_api_limit_critical(srv, r))
        goto out;
    if (!mt_options_bool(o, "PasswordLoginEnabled", 1)) {
        mt_api_fail(r, "password login has been disabled by the administrator");
        goto out;
    }
    if (mt_api_body(r, &b))
        goto out;
    if (cm_json_opt_string(b, "username", "", &name, &je) ||
        cm_json_opt_string(b, "password", "", &pw, &je)) {
        fail_field(r, &je);
        goto out;
    }
    if (!*name || !*pw) {
        mt_api_fail(r, "username and password are required");
        goto out;
    }
    rc = mt_store_user_get_by_login(srv->store, name, &u);
    if (rc == CM_ERR_NOTFOUND) {
        pthread_once(&dummy_once, dummy_init);
        if (dummy_hash[0])
            (void)mt_auth_check_password(pw, dummy_hash); /* same time as a wrong password */
        mt_api_fail(r, "username or password is incorrect, or the user has been banned");
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot read the user: %s", cm_err_str(rc));
        goto out;
    }
    rc = mt_auth_check_password(pw, u.password);
    if (rc == CM_ERR_AUTH) {
        cm_log_info(cm_httpd_req_id(r), "user: failed login for user %lld from %s", (long long)u.id,
                    cm_httpd_req_peer(r));
        mt_api_fail(r, "username or password is incorrect, or the user has been banned");
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot check the password: %s", cm_err_str(rc));
        goto out;
    }
    if (u.status != MT_USER_ENABLED) {
        mt_api_fail(r, "User has been banned");
        goto out;
    }
    d = cJSON_CreateObject();
    if (!d || cm_json_set_int64(d, "id", u.id) || mt_json_set_str(d, "username", u.username) ||
        mt_json_set_str(d, "display_name", u.display_name) ||
        cm_json_set_int64(d, "role", u.role) || cm_json_set_int64(d, "status", u.status) ||
        mt_json_set_str(d, "group", u.group && *u.group ? u.group : "default")) {
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    if ((rc = mt_api_session_set(srv, r, u.id)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot start the session: %s", cm_err_str(rc));
        goto out;
    }
    if ((rc = mt_store_user_set_last_login(srv->store, u.id, cm_clock_wall_s(srv->clock))) != CM_OK)
        cm_log_warn(cm_httpd_req_id(r), "user: cannot record the login time of user %lld: %s",
                    (long long)u.id, cm_err_str(rc));
    cm_log_info(cm_httpd_req_id(r), "user: user %lld (%s) logged in from %s", (long long)u.id,
                u.username, cm_httpd_req_peer(r));
    mt_api_ok(r, d);
    d = NULL;
out:
    cJSON_Delete(d);
    cJSON_Delete(b);
    mt_user_cleanup(&u);
    mt_options_unref(o);
}

static void logout(struct cm_httpd_req *r, void *ud)
{
    (void)ud;
    mt_api_session_clear(r);
    mt_api_ok(r, NULL);
}

/* GENERATE_DEFAULT_TOKEN (NewAPI's env): a token made with every new registration. */
static int default_token_wanted(void)
{
    const char *v = getenv("GENERATE_DEFAULT_TOKEN");
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "t"));
}

/*
 * Inserts a new user (register and admin create): hash, QuotaForNewUser with its type-4
 * log row in the same transaction. CM_OK with *@p id, or an answered failure (non-zero).
 */
static int insert_user(struct mt_server *srv, struct cm_httpd_req *r, const struct mt_options *o,
                       struct mt_user *u, const char *pw, int64_t *id)
{
    char hash[MT_PASSWORD_HASH_MAX], lq[64];
    struct mt_log log = {0};
    int64_t grant = mt_options_int(o, "QuotaForNewUser", 0);
    int taken = 0, rc;

    if ((rc = mt_store_user_username_taken(srv->store, u->username, &taken)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot read users: %s", cm_err_str(rc));
        return rc;
    }
    if (taken) {
        mt_api_fail(r, "username '%s' already exists (deleted users keep their names)",
                    u->username);
        return CM_ERR_EXISTS;
    }
    if ((rc = mt_auth_hash_password(pw, hash, sizeof hash)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot hash the password: %s", cm_err_str(rc));
        return rc;
    }
    u->password = hash;
    u->quota = grant > 0 ? grant : 0;
    if (u->quota > 0) {
        char content[128];
        (void)mt_pricing_log_quota(mt_options_pricing(o), u->quota, lq, sizeof lq);
        snprintf(content, sizeof content, "新用户注册赠送 %s", lq);
        log.type = MT_LOG_SYSTEM;
        log.username = u->username;
        log.content = content;
        rc = mt_store_user_insert(srv->store, u, &log, id);
    } else {
        rc = mt_store_user_insert(srv->store, u, NULL, id);
    }
    cm_crypto_memzero(hash, sizeof hash);
    u->password = NULL;
    if (rc == CM_ERR_EXISTS) {
        mt_api_fail(r, "username '%s' already exists", u->username);
        return rc;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot create the user: %s", cm_err_str(rc));
        return rc;
    }
    return CM_OK;
}

static void register_user(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = mt_optcache_get(srv->opts);
    const char *name = NULL, *pw = NULL, *aff = NULL, *why;
    struct cm_json_err je = {0};
    char nbuf[256];
    cJSON *b = NULL;
    struct mt_user u;
    int64_t id = 0, inviter = 0;

    mt_user_init(&u);
    if (mt_api_limit_critical(srv, r))
        goto out;
    if (!mt_options_bool(o, "RegisterEnabled", 1)) {
        mt_api_fail(r, "new user registration has been disabled by the administrator");
        goto out;
    }
    if (!mt_options_bool(o, "PasswordRegisterEnabled", 1)) {
        mt_api_fail(r, "registration with a password has been disabled by the administrator");
        goto out;
    }
    if (mt_options_bool(o, "EmailVerificationEnabled", 0)) {
        mt_api_fail(r, "registration needs email verification, which this server does not "
                       "send; the administrator can turn EmailVerificationEnabled off");
        goto out;
    }
    if (mt_api_body(r, &b))
        goto out;
    if (cm_json_opt_string(b, "username", "", &name, &je) ||
        cm_json_opt_string(b, "password", "", &pw, &je) ||
        cm_json_opt_string(b, "aff_code", "", &aff, &je)) {
        fail_field(r, &je);
        goto out;
    }
    name = trim(name, nbuf, sizeof nbuf);
    if ((why = bad_username(name)) || (why = bad_password(pw))) {
        mt_api_fail(r, "%s", why);
        goto out;
    }
    if (*aff && strlen(aff) <= MT_AFF_CODE_MAX &&
        mt_store_user_id_by_aff_code(srv->store, aff, &inviter) != CM_OK)
        inviter = 0; /* NewAPI ignores an unknown invite code */
    u.username = name;
    u.display_name = name;
    u.role = MT_ROLE_COMMON;
    u.status = MT_USER_ENABLED;
    u.group = "default";
    u.inviter_id = inviter;
    if (insert_user(srv, r, o, &u, pw, &id))
        goto out;
    cm_log_info(cm_httpd_req_id(r), "user: registered user %lld (%s) from %s", (long long)id, name,
                cm_httpd_req_peer(r));
    if (default_token_wanted()) {
        struct mt_token t;
        char tname[128];
        int rc;
        mt_token_init(&t);
        snprintf(tname, sizeof tname, "%s的初始令牌", name);
        t.user_id = id;
        t.name = tname;
        t.unlimited_quota = 1;
        t.remain_quota = 500000;
        t.group = mt_options_bool(o, "DefaultUseAutoGroup", 0) ? "auto" : "";
        if ((rc = mt_store_token_insert(srv->store, &t, NULL, NULL, 0)) != CM_OK) {
            mt_api_fail_status(r, 500, "the user was created but not its default token: %s",
                               cm_err_str(rc));
            goto out;
        }
    }
    mt_api_ok(r, NULL);
out:
    cJSON_Delete(b);
    mt_options_unref(o);
}

/* ---- the caller's own account ---- */

static void self_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_user u;
    cJSON *d;
    int rc;

    mt_user_init(&u);
    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    if ((rc = mt_store_user_get(srv->store, who.id, 0, &u)) != CM_OK) {
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 200 : 500, "cannot read the user: %s",
                           cm_err_str(rc));
        return;
    }
    d = self_json(&u);
    mt_user_cleanup(&u);
    if (!d) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    mt_api_ok(r, d);
}

/* PUT /api/user/self {"sidebar_modules": str} or {"language": str}: one setting key. */
static void self_setting(struct mt_server *srv, struct cm_httpd_req *r, const struct mt_who *who,
                         const char *key, const cJSON *v)
{
    struct mt_user u;
    char *txt = NULL;
    int rc;

    mt_user_init(&u);
    if (!cJSON_IsString(v) || strlen(v->valuestring) > SETTING_VALUE_MAX) {
        mt_api_fail(r, "%s must be a string of at most 16384 bytes", key);
        return;
    }
    if (strcmp(key, "language") == 0) {
        const char *p = v->valuestring;
        if (strlen(p) > 16 || strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_") != strlen(p)) {
            mt_api_fail(r, "language must be a language tag such as \"en\" or \"zh-CN\"");
            return;
        }
    }
    if ((rc = mt_store_user_get(srv->store, who->id, 0, &u)) != CM_OK ||
        (rc = setting_with(u.setting, key, v->valuestring, &txt)) != CM_OK ||
        (rc = mt_store_user_set_setting(srv->store, who->id, txt)) != CM_OK)
        mt_api_fail_status(r, 500, "cannot update the setting: %s", cm_err_str(rc));
    else
        mt_api_ok_msg(r, "updated");
    cm_free(txt);
    mt_user_cleanup(&u);
}

static void self_put(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    const char *name = NULL, *dname = NULL, *pw = NULL, *orig = NULL, *why;
    struct cm_json_err je = {0};
    char nbuf[256], hash[MT_PASSWORD_HASH_MAX];
    const cJSON *v;
    cJSON *b = NULL;
    struct mt_who who;
    struct mt_user u;
    int rc;

    mt_user_init(&u);
    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_body(r, &b))
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "sidebar_modules")) != NULL) {
        self_setting(srv, r, &who, "sidebar_modules", v);
        goto out;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "language")) != NULL) {
        self_setting(srv, r, &who, "language", v);
        goto out;
    }
    if (cm_json_opt_string(b, "username", NULL, &name, &je) ||
        cm_json_opt_string(b, "display_name", NULL, &dname, &je) ||
        cm_json_opt_string(b, "password", "", &pw, &je) ||
        cm_json_opt_string(b, "original_password", "", &orig, &je)) {
        fail_field(r, &je);
        goto out;
    }
    if (name) {
        name = trim(name, nbuf, sizeof nbuf);
        if (!*name)
            name = NULL; /* NewAPI: an empty username leaves it as it is */
    }
    if ((name && (why = bad_username(name))) || (dname && (why = bad_display_name(dname))) ||
        (*pw && (why = bad_password(pw)))) {
        mt_api_fail(r, "%s", why);
        goto out;
    }
    if ((rc = mt_store_user_get(srv->store, who.id, 0, &u)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot read the user: %s", cm_err_str(rc));
        goto out;
    }
    if (*pw) {
        if (!*orig) {
            mt_api_fail(r, "original_password is required to change the password");
            goto out;
        }
        rc = mt_auth_check_password(orig, u.password);
        if (rc == CM_ERR_AUTH) {
            mt_api_fail(r, "the original password is incorrect");
            goto out;
        }
        if (rc) {
            mt_api_fail_status(r, 500, "cannot check the password: %s", cm_err_str(rc));
            goto out;
        }
    }
    if (name && u.username && strcmp(name, u.username) == 0)
        name = NULL;
    rc = mt_store_user_set_profile(srv->store, who.id, name, dname);
    if (rc == CM_ERR_EXISTS) {
        mt_api_fail(r, "username '%s' already exists", name);
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot update the user: %s", cm_err_str(rc));
        goto out;
    }
    if (*pw) {
        rc = mt_auth_hash_password(pw, hash, sizeof hash);
        if (rc == CM_OK)
            rc = mt_store_user_set_password(srv->store, who.id, hash);
        cm_crypto_memzero(hash, sizeof hash);
        if (rc) {
            mt_api_fail_status(r, 500, "cannot change the password: %s", cm_err_str(rc));
            goto out;
        }
        cm_log_info(cm_httpd_req_id(r), "user: user %lld changed its password", (long long)who.id);
    }
    mt_api_ok(r, NULL);
out:
    mt_user_cleanup(&u);
    cJSON_Delete(b);
}

static void self_delete(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    if (who.role == MT_ROLE_ROOT) {
        mt_api_fail(r, "the root user cannot delete itself");
        return;
    }
    if ((rc = mt_store_user_soft_delete(srv->store, who.id)) != CM_OK) {
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 200 : 500, "cannot delete the user: %s",
                           cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "user: user %lld (%s) deleted itself", (long long)who.id,
                who.username);
    mt_api_session_clear(r);
    mt_api_ok(r, NULL);
}

/* GET /api/user/token: a new access token on every call (the old one stops working). */
static void access_token(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    char tok[MT_ACCESS_TOKEN_MAX];
    struct mt_who who;
    int rc = CM_ERR_EXISTS;
    cJSON *d;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    for (int i = 0; i < 3 && rc == CM_ERR_EXISTS; i++) {
        rc = mt_auth_new_access_token(tok);
        if (rc == CM_OK)
            rc = mt_store_user_set_access_token(srv->store, who.id, tok);
    }
    if (rc) {
        cm_crypto_memzero(tok, sizeof tok);
        mt_api_fail_status(r, 500, "cannot generate the access token: %s", cm_err_str(rc));
        return;
    }
    d = cJSON_CreateString(tok);
    cm_crypto_memzero(tok, sizeof tok);
    if (!d) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "user: user %lld generated a new access token",
                (long long)who.id);
    mt_api_ok(r, d);
}

static void aff_code(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    char code[MT_AFF_CODE_MAX + 1];
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    if ((rc = mt_store_user_ensure_aff_code(srv->store, who.id, code, sizeof code)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot read the invite code: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok_data(r, cJSON_CreateString(code));
}

/* {group: {"ratio", "desc"}} for a user of @p user_group ("" when anonymous). */
static void groups_reply(struct mt_server *srv, struct cm_httpd_req *r, const char *user_group)
{
    struct mt_options *o = mt_optcache_get(srv->opts);
    const struct mt_pricing *p = mt_options_pricing(o);
    cJSON *usable = NULL, *d = cJSON_CreateObject(), *e, *autog;
    const char *name;
    double ratio;
    int rc = d ? mt_groups_usable_of(o, user_group, &usable) : CM_ERR_NOMEM;

    for (size_t i = 0; rc == CM_OK && mt_pricing_group_at(p, i, &name, &ratio) == CM_OK; i++) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(usable, name);
        if (!u)
            continue;
        e = cJSON_CreateObject();
        rc = !e || cm_json_set_double(e, "ratio", mt_groups_ratio_of(o, user_group, name)) ||
             mt_json_set_str(e, "desc", cJSON_IsString(u) ? u->valuestring : "");
        if (rc)
            cJSON_Delete(e);
        else
            rc = cm_json_set_item(d, name, e);
    }
    autog = cJSON_GetObjectItemCaseSensitive(usable, "auto");
    if (rc == CM_OK && autog) {
        e = cJSON_CreateObject();
        rc = !e || mt_json_set_str(e, "ratio", "自动") ||
             mt_json_set_str(e, "desc", cJSON_IsString(autog) ? autog->valuestring : "");
        if (rc)
            cJSON_Delete(e);
        else
            rc = cm_json_set_item(d, "auto", e);
    }
    cJSON_Delete(usable);
    mt_options_unref(o);
    if (rc) {
        cJSON_Delete(d);
        mt_api_fail_status(r, 500, "cannot list the groups: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, d);
}

static void groups_public(struct cm_httpd_req *r, void *ud)
{
    groups_reply(ud, r, "");
}

static void groups_self(struct cm_httpd_req *r, void *ud)
{
    struct mt_who who;
    if (mt_api_auth(ud, r, MT_ROLE_COMMON, &who))
        return;
    groups_reply(ud, r, who.group);
}

/* GET /api/user/models[?group=]: models enabled in the caller's usable groups. */
static void user_models(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = NULL;
    const char *want, **groups = NULL;
    cJSON *usable = NULL, *autos = NULL, *d = NULL, *it;
    char **models = NULL;
    size_t ng = 0, nm = 0;
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    o = mt_optcache_get(srv->opts);
    want = cm_httpd_req_arg(r, "group");
    if ((rc = mt_groups_usable_of(o, who.group, &usable)) != CM_OK)
        goto out;
    groups = cm_calloc((size_t)cJSON_GetArraySize(usable) + 64, sizeof *groups);
    if (!groups) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (!want || !*want) {
        cJSON_ArrayForEach(it, usable)
        {
            groups[ng++] = it->string;
        }
    } else if (strcmp(want, "auto") == 0) {
        const char *txt = mt_options_get(o, "AutoGroups");
        if (cJSON_GetObjectItemCaseSensitive(usable, "auto") && txt &&
            cm_json_parse(txt, strlen(txt), NULL, &autos, NULL) == CM_OK) {
            cJSON_ArrayForEach(it, autos)
            {
                if (cJSON_IsString(it) && ng < 64)
                    groups[ng++] = it->valuestring;
            }
        }
    } else if (cJSON_GetObjectItemCaseSensitive(usable, want)) {
        groups[ng++] = want;
    }
    if ((rc = mt_store_models_of_groups(srv->store, groups, ng, &models, &nm)) != CM_OK)
        goto out;
    if ((rc = cm_json_new_array(&d)) != CM_OK)
        goto out;
    for (size_t i = 0; rc == CM_OK && i < nm; i++)
        rc = cm_json_set_string(d, NULL, models[i]);
out:
    if (rc) {
        cJSON_Delete(d);
        mt_api_fail_status(r, 500, "cannot list the models: %s", cm_err_str(rc));
    } else {
        mt_api_ok(r, d);
    }
    mt_store_strings_free(models, nm);
    cm_free(groups);
    cJSON_Delete(autos);
    cJSON_Delete(usable);
    mt_options_unref(o);
}

/* POST /api/user/topup {"key"}: redeems a code (spec 7.2) -> data = quota added. */
static void topup(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = NULL;
    const char *key = NULL, *ver;
    struct cm_json_err je = {0};
    enum mt_redeem_fail why = MT_REDEEM_OK;
    struct mt_log log = {0};
    int64_t quota = 0, code_id = 0;
    cJSON *b = NULL;
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_limit_critical(srv, r))
        return;
    o = mt_optcache_get(srv->opts);
    ver = mt_options_get(o, "payment_setting.compliance_terms_version");
    if (!mt_options_bool(o, "payment_setting.compliance_confirmed", 0) || !ver ||
        strcmp(ver, "v1") != 0) {
        mt_api_fail(r, "Payment, redemption, subscription, and invitation reward features are "
                       "disabled until the administrator confirms payment compliance");
        goto out;
    }
    if (mt_api_body(r, &b))
        goto out;
    if (cm_json_opt_string(b, "key", "", &key, &je)) {
        fail_field(r, &je);
        goto out;
    }
    if (!*key || strlen(key) > 64) {
        mt_api_fail(r, "please enter a redemption code");
        goto out;
    }
    log.type = MT_LOG_TOPUP;
    log.username = who.username;
    log.content = "通过兑换码充值";
    rc = mt_store_redeem(srv->store, key, who.id, &log, &quota, &code_id, &why);
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail(r, "invalid redemption code");
        goto out;
    }
    if (rc == CM_ERR_DENIED) {
        mt_api_fail(r, "%s",
                    why == MT_REDEEM_EXPIRED    ? "this redemption code has expired"
                    : why == MT_REDEEM_DISABLED ? "this redemption code is disabled"
                                                : "this redemption code has been used");
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "redemption failed: %s", cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "user: user %lld redeemed code %lld for %lld quota",
                (long long)who.id, (long long)code_id, (long long)quota);
    mt_api_ok_data(r, cJSON_CreateNumber((double)quota));
out:
    cJSON_Delete(b);
    mt_options_unref(o);
}

/* ---- admin ---- */

static void list_reply(struct cm_httpd_req *r, const struct mt_page *pg, struct mt_user_list *l)
{
    cJSON *items = cJSON_CreateArray(), *d;
    for (size_t i = 0; items && i < l->n; i++) {
        cJSON *u = user_json(&l->items[i]);
        if (!u || !cJSON_AddItemToArray(items, u)) {
            cJSON_Delete(u);
            cJSON_Delete(items);
            items = NULL;
        }
    }
    d = mt_api_paged(pg, l->total, items);
    if (!d) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    mt_api_ok(r, d);
}

static void admin_list(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_user_list l = {0};
    struct mt_page pg;
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    mt_api_page(r, &pg);
    if ((rc = mt_store_user_list(srv->store, pg.offset, pg.size, &l)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot list users: %s", cm_err_str(rc));
        return;
    }
    list_reply(r, &pg, &l);
    mt_user_list_cleanup(&l);
}

/* an optional integer query argument; 0 and *out unchanged when absent, -1 if malformed */
static int arg_int(struct cm_httpd_req *r, const char *name, int *out)
{
    const char *v = cm_httpd_req_arg(r, name);
    char *end;
    long x;
    if (!v || !*v)
        return 0;
    x = strtol(v, &end, 10);
    if (*end || x < -1 || x > 1000)
        return -1;
    *out = (int)x;
    return 0;
}

static void admin_search(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_user_filter f = {.role = -1, .status = 0};
    struct mt_user_list l = {0};
    struct mt_page pg;
    struct mt_who who;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    f.keyword = cm_httpd_req_arg(r, "keyword");
    f.group = cm_httpd_req_arg(r, "group");
    if (arg_int(r, "role", &f.role) || arg_int(r, "status", &f.status)) {
        mt_api_fail(r, "role and status must be integers");
        return;
    }
    if (f.keyword && strlen(f.keyword) > 256) {
        mt_api_fail(r, "keyword is too long (at most 256 bytes)");
        return;
    }
    mt_api_page(r, &pg);
    if ((rc = mt_store_user_search(srv->store, &f, pg.offset, pg.size, &l)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot search users: %s", cm_err_str(rc));
        return;
    }
    list_reply(r, &pg, &l);
    mt_user_list_cleanup(&l);
}

/*
 * Reads the target user @p id (soft-deleted included) and checks that the caller may
 * manage it. 0 with *u filled, or answered and non-zero.
 */
static int target_user(struct mt_server *srv, struct cm_httpd_req *r, const struct mt_who *who,
                       int64_t id, int strict, struct mt_user *u)
{
    int rc;
    if (id <= 0) {
        mt_api_fail(r, "a valid user id is required");
        return -1;
    }
    rc = mt_store_user_get(srv->store, id, 1, u);
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail(r, "user %lld does not exist", (long long)id);
        return -1;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot read the user: %s", cm_err_str(rc));
        return -1;
    }
    if (strict ? who->role <= u->role : !mt_auth_can_manage(who->role, u->role)) {
        mt_api_fail(r, "no permission to manage a user with the same or a higher role");
        return -1;
    }
    return 0;
}

static void admin_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_user u;
    cJSON *d;

    mt_user_init(&u);
    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) ||
        target_user(srv, r, &who, mt_api_param_id(r, "id"), 0, &u))
        goto out;
    if (!(d = user_json(&u))) {
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    mt_api_ok(r, d);
out:
    mt_user_cleanup(&u);
}

static void admin_create(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = NULL;
    const char *name = NULL, *pw = NULL, *dname = NULL, *why;
    struct cm_json_err je = {0};
    char nbuf[256];
    int64_t role = 0, id = 0;
    cJSON *b = NULL;
    struct mt_who who;
    struct mt_user u;

    mt_user_init(&u);
    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        goto out;
    if (cm_json_opt_string(b, "username", "", &name, &je) ||
        cm_json_opt_string(b, "password", "", &pw, &je) ||
        cm_json_opt_string(b, "display_name", "", &dname, &je) ||
        cm_json_opt_int64(b, "role", 0, MT_ROLE_ROOT, 0, &role, &je)) {
        fail_field(r, &je);
        goto out;
    }
    name = trim(name, nbuf, sizeof nbuf);
    if ((why = bad_username(name)) || (why = bad_password(pw)) || (why = bad_display_name(dname))) {
        mt_api_fail(r, "%s", why);
        goto out;
    }
    if (role == 0)
        role = MT_ROLE_COMMON; /* the column default NewAPI's insert falls back to */
    if (role != MT_ROLE_COMMON && role != MT_ROLE_ADMIN && role != MT_ROLE_ROOT) {
        mt_api_fail(r, "role must be 1 (common user) or 10 (admin)");
        goto out;
    }
    if (role >= who.role) {
        mt_api_fail(r, "cannot create a user with a role equal to or higher than your own");
        goto out;
    }
    o = mt_optcache_get(srv->opts);
    u.username = name;
    u.display_name = *dname ? dname : name;
    u.role = (int)role;
    u.status = MT_USER_ENABLED;
    u.group = "default";
    if (insert_user(srv, r, o, &u, pw, &id))
        goto out;
    cm_log_info(cm_httpd_req_id(r), "user: admin %lld created user %lld (%s, role %d)",
                (long long)who.id, (long long)id, name, (int)role);
    mt_api_ok(r, NULL);
out:
    cJSON_Delete(b);
    mt_options_unref(o);
}

static void admin_edit(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = NULL;
    const char *name = NULL, *dname = NULL, *group = NULL, *remark = NULL, *pw = NULL, *why;
    struct cm_json_err je = {0};
    char nbuf[256], hash[MT_PASSWORD_HASH_MAX];
    int64_t id = 0, role = 0;
    cJSON *b = NULL;
    struct mt_who who;
    struct mt_user u, e;
    int rc, taken = 0;

    mt_user_init(&u);
    mt_user_init(&e);
    hash[0] = '\0';
    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        goto out;
    if (cm_json_get_int64(b, "id", 1, CM_JSON_INT_MAX, &id, &je) ||
        cm_json_opt_int64(b, "role", 0, MT_ROLE_ROOT, 0, &role, &je) ||
        cm_json_opt_string(b, "username", NULL, &name, &je) ||
        cm_json_opt_string(b, "display_name", NULL, &dname, &je) ||
        cm_json_opt_string(b, "group", NULL, &group, &je) ||
        cm_json_opt_string(b, "remark", NULL, &remark, &je) ||
        cm_json_opt_string(b, "password", "", &pw, &je)) {
        fail_field(r, &je);
        goto out;
    }
    if (target_user(srv, r, &who, id, 0, &u))
        goto out;
    if (u.deleted_at) {
        mt_api_fail(r, "user %lld has been deleted", (long long)id);
        goto out;
    }
    if (role != 0 && role != u.role) {
        mt_api_fail(r, "the role cannot be changed here; use POST /api/user/manage with action "
                       "promote or demote");
        goto out;
    }
    name = name ? trim(name, nbuf, sizeof nbuf) : u.username;
    if ((why = bad_username(name)) || (dname && (why = bad_display_name(dname))) ||
        (*pw && (why = bad_password(pw)))) {
        mt_api_fail(r, "%s", why);
        goto out;
    }
    if (remark && (unsigned long)mt_utf8_len(remark) > REMARK_MAX) {
        mt_api_fail(r, "remark must be at most 255 characters");
        goto out;
    }
    o = mt_optcache_get(srv->opts);
    if (group && strcmp(group, u.group ? u.group : "") != 0) {
        if (!*group || strlen(group) > GROUP_MAX || mt_has_ctl(group) ||
            strcmp(group, "auto") == 0 || !mt_groups_in_ratio(o, group, NULL)) {
            mt_api_fail(r, "group '%s' does not exist (it must be a key of GroupRatio)", group);
            goto out;
        }
    }
    if (strcmp(name, u.username) != 0) {
        if ((rc = mt_store_user_username_taken(srv->store, name, &taken)) != CM_OK) {
            mt_api_fail_status(r, 500, "cannot read users: %s", cm_err_str(rc));
            goto out;
        }
        if (taken) {
            mt_api_fail(r, "username '%s' already exists", name);
            goto out;
        }
    }
    if (*pw && (rc = mt_auth_hash_password(pw, hash, sizeof hash)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot hash the password: %s", cm_err_str(rc));
        goto out;
    }
    e.id = id;
    e.username = name;
    e.display_name = dname ? dname : u.display_name;
    e.group = group ? group : u.group;
    e.remark = remark ? remark : u.remark;
    e.password = hash[0] ? hash : NULL;
    rc = mt_store_user_edit(srv->store, &e);
    if (rc == CM_ERR_EXISTS) {
        mt_api_fail(r, "username '%s' already exists", name);
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 200 : 500, "cannot edit the user: %s",
                           cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "user: admin %lld edited user %lld%s", (long long)who.id,
                (long long)id, hash[0] ? " (password changed)" : "");
    mt_api_ok(r, NULL);
out:
    cm_crypto_memzero(hash, sizeof hash);
    mt_user_cleanup(&u);
    cJSON_Delete(b);
    mt_options_unref(o);
}

/* add_quota of /manage: the change and its type-3 log row in one transaction */
static int manage_quota(struct mt_server *srv, struct cm_httpd_req *r, const struct mt_who *who,
                        const struct mt_user *u, const char *mode, int64_t value)
{
    struct mt_options *o = mt_optcache_get(srv->opts);
    const struct mt_pricing *p = mt_options_pricing(o);
    char content[256], a[64], b2[64], *other = NULL;
    struct mt_log log = {0};
    cJSON *oj = cJSON_CreateObject(), *ai = cJSON_CreateObject();
    int rc;

    if (!oj || !ai || cm_json_set_int64(ai, "admin_id", who->id) ||
        cm_json_set_string(ai, "admin_username", who->username) ||
        cm_json_adopt(oj, "admin_info", &ai) || cm_json_print(oj, &other, NULL)) {
        rc = CM_ERR_NOMEM;
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    log.type = MT_LOG_MANAGE;
    log.user_id = u->id;
    log.username = u->username;
    log.other = other;
    log.content = content;
    if (strcmp(mode, "add") == 0 || strcmp(mode, "subtract") == 0) {
        int add = mode[0] == 'a';
        if (value <= 0 || value > QUOTA_MAX) {
            mt_api_fail(r, "value must be a positive quota amount for mode %s", mode);
            rc = CM_ERR_INVAL;
            goto out;
        }
        (void)mt_pricing_log_quota(p, value, a, sizeof a);
        snprintf(content, sizeof content, add ? "管理员增加用户额度 %s" : "管理员减少用户额度 %s",
                 a);
        rc = mt_store_user_quota_add(srv->store, u->id, add ? value : -value, &log);
    } else if (strcmp(mode, "override") == 0) {
        if (value < 0 || value > QUOTA_MAX) {
            mt_api_fail(r, "value must be a quota amount >= 0 for mode override");
            rc = CM_ERR_INVAL;
            goto out;
        }
        (void)mt_pricing_log_quota(p, u->quota, a, sizeof a);
        (void)mt_pricing_log_quota(p, value, b2, sizeof b2);
        snprintf(content, sizeof content, "管理员覆盖用户额度从 %s 为 %s", a, b2);
        rc = mt_store_user_quota_set(srv->store, u->id, value, NULL, &log);
    } else {
        mt_api_fail(r, "mode must be add, subtract or override");
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 200 : 500, "cannot change the quota: %s",
                           cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "user: admin %lld changed the quota of user %lld (%s %lld)",
                (long long)who->id, (long long)u->id, mode, (long long)value);
out:
    cJSON_Delete(ai);
    cJSON_Delete(oj);
    cm_free(other);
    mt_options_unref(o);
    return rc;
}

static void admin_manage(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    const char *action = NULL, *mode = NULL;
    struct cm_json_err je = {0};
    int64_t id = 0, value = 0;
    cJSON *b = NULL, *d = NULL;
    struct mt_who who;
    struct mt_user u;
    int rc = CM_OK, role, status;

    mt_user_init(&u);
    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        goto out;
    if (cm_json_get_int64(b, "id", 1, CM_JSON_INT_MAX, &id, &je) ||
        cm_json_get_string(b, "action", &action, &je) ||
        cm_json_opt_int64(b, "value", CM_JSON_INT_MIN, CM_JSON_INT_MAX, 0, &value, &je) ||
        cm_json_opt_string(b, "mode", "", &mode, &je)) {
        fail_field(r, &je);
        goto out;
    }
    if (target_user(srv, r, &who, id, 0, &u))
        goto out;
    role = u.role;
    status = u.status;
    if (strcmp(action, "disable") == 0) {
        if (u.role == MT_ROLE_ROOT) {
            mt_api_fail(r, "the root user cannot be disabled");
            goto out;
        }
        status = MT_USER_DISABLED;
        rc = mt_store_user_set_status(srv->store, id, status);
    } else if (strcmp(action, "enable") == 0) {
        status = MT_USER_ENABLED;
        rc = mt_store_user_set_status(srv->store, id, status);
    } else if (strcmp(action, "delete") == 0) {
        if (u.role == MT_ROLE_ROOT) {
            mt_api_fail(r, "the root user cannot be deleted");
            goto out;
        }
        rc = mt_store_user_soft_delete(srv->store, id);
        if (rc == CM_ERR_NOTFOUND) {
            mt_api_fail(r, "user %lld is already deleted", (long long)id);
            goto out;
        }
    } else if (strcmp(action, "promote") == 0) {
        if (who.role != MT_ROLE_ROOT) {
            mt_api_fail(r, "only the root user can promote users to admin");
            goto out;
        }
        if (u.role >= MT_ROLE_ADMIN) {
            mt_api_fail(r, "the user is already an admin");
            goto out;
        }
        role = MT_ROLE_ADMIN;
        rc = mt_store_user_set_role(srv->store, id, role);
    } else if (strcmp(action, "demote") == 0) {
        if (u.role == MT_ROLE_ROOT) {
            mt_api_fail(r, "the root user cannot be demoted");
            goto out;
        }
        if (u.role == MT_ROLE_COMMON) {
            mt_api_fail(r, "the user is already a common user");
            goto out;
        }
        role = MT_ROLE_COMMON;
        rc = mt_store_user_set_role(srv->store, id, role);
    } else if (strcmp(action, "add_quota") == 0) {
        if (manage_quota(srv, r, &who, &u, mode, value))
            goto out;
    } else {
        mt_api_fail(r,
                    "unknown action '%s' (expected disable, enable, delete, promote, demote "
                    "or add_quota)",
                    action);
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 200 : 500, "cannot %s the user: %s", action,
                           cm_err_str(rc));
        goto out;
    }
    if (strcmp(action, "add_quota") != 0)
        cm_log_info(cm_httpd_req_id(r), "user: admin %lld: %s user %lld", (long long)who.id, action,
                    (long long)id);
    d = cJSON_CreateObject();
    if (!d || cm_json_set_int64(d, "role", role) || cm_json_set_int64(d, "status", status)) {
        cJSON_Delete(d);
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    mt_api_ok(r, d);
out:
    mt_user_cleanup(&u);
    cJSON_Delete(b);
}

static void admin_delete(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_user u;
    int64_t id, tokens = 0;
    int rc;

    mt_user_init(&u);
    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        goto out;
    id = mt_api_param_id(r, "id");
    if (target_user(srv, r, &who, id, 1, &u))
        goto out;
    if ((rc = mt_store_user_purge(srv->store, id, &tokens)) != CM_OK) {
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 200 : 500, "cannot delete the user: %s",
                           cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r),
                "user: admin %lld hard-deleted user %lld (%s) and %lld of its tokens",
                (long long)who.id, (long long)id, u.username, (long long)tokens);
    mt_api_ok(r, NULL);
out:
    mt_user_cleanup(&u);
}

int mt_api_user_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } R[] = {
        /* literal paths before "/api/user/:id" (the first matching route wins) */
        {"POST", "/api/user/register", register_user},
        {"POST", "/api/user/login", login},
        {"GET", "/api/user/logout", logout},
        {"GET", "/api/user/groups", groups_public},
        {"GET", "/api/user/self/groups", groups_self},
        {"GET", "/api/user/self", self_get},
        {"PUT", "/api/user/self", self_put},
        {"DELETE", "/api/user/self", self_delete},
        {"GET", "/api/user/models", user_models},
        {"GET", "/api/user/token", access_token},
        {"GET", "/api/user/aff", aff_code},
        {"POST", "/api/user/topup", topup},
        {"GET", "/api/user/search", admin_search},
        {"POST", "/api/user/manage", admin_manage},
        {"GET", "/api/user/", admin_list},
        {"POST", "/api/user/", admin_create},
        {"PUT", "/api/user/", admin_edit},
        {"GET", "/api/user/:id", admin_get},
        {"DELETE", "/api/user/:id", admin_delete},
    };
    int rc = mt_api_limits_init();
    for (size_t i = 0; rc == CM_OK && i < sizeof R / sizeof *R; i++)
        rc = cm_httpd_route(s, R[i].method, R[i].path, R[i].fn, srv);
    return rc;
}
