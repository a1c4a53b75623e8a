/* SPDX-License-Identifier: MIT */
/* session.c - admin API authentication (see session.h). */
#include "api/session.h"

#include "api/envelope.h"
#include "auth.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "store/users.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_VERSION "864b7076dbcd0a3c01b5520316720ebf"

/* the user id of a valid session cookie, or 0 */
static int64_t cookie_user(struct mt_server *srv, struct cm_httpd_req *r)
{
    size_t n = 0;
    int64_t id = 0;
    const char *v = mt_auth_cookie_get(cm_httpd_req_header(r, "Cookie"), "session", &n);
    if (!v || mt_auth_session_check(srv->session_secret, srv->session_secret_len, v, n,
                                    cm_clock_wall_s(srv->clock), &id) != CM_OK)
        return 0;
    return id;
}

int mt_api_auth(struct mt_server *srv, struct cm_httpd_req *r, int min_role, struct mt_who *who)
{
    struct mt_user u;
    const char *hdr, *tok, *nu;
    int64_t id, claimed;
    size_t tlen = 0;
    char *end, buf[128];
    int rc;

    mt_user_init(&u);
    memset(who, 0, sizeof *who);
    cm_httpd_add_header(r, "Auth-Version", AUTH_VERSION);
    id = cookie_user(srv, r);
    if (id) {
        rc = mt_store_user_get(srv->store, id, 0, &u);
    } else {
        hdr = cm_httpd_req_header(r, "Authorization");
        tok = mt_auth_access_token(hdr, &tlen);
        if (!tok) {
            mt_api_fail_status(r, 401, "Unauthorized, not logged in and no access token provided");
            goto fail;
        }
        if (tlen >= sizeof buf) {
            mt_api_fail(r, "Unauthorized, invalid access token");
            goto fail;
        }
        memcpy(buf, tok, tlen);
        buf[tlen] = '\0';
        rc = mt_store_user_get_by_access_token(srv->store, buf, &u);
        memset(buf, 0, sizeof buf);
        if (rc == CM_ERR_NOTFOUND) {
            mt_api_fail(r, "Unauthorized, invalid access token");
            goto fail;
        }
        who->via_token = 1;
    }
    if (rc == CM_ERR_NOTFOUND) { /* a cookie for a user deleted since */
        mt_api_fail_status(r, 401, "Unauthorized, not logged in and no access token provided");
        goto fail;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot read the user: %s", cm_err_str(rc));
        goto fail;
    }
    nu = cm_httpd_req_header(r, "New-Api-User");
    if (!nu || !*nu) {
        mt_api_fail_status(r, 401, "Unauthorized, New-Api-User header not provided");
        goto fail;
    }
    errno = 0;
    claimed = strtoll(nu, &end, 10);
    if (*end || errno) {
        mt_api_fail_status(r, 401, "Unauthorized, New-Api-User header format error");
        goto fail;
    }
    if (claimed != u.id) {
        mt_api_fail_status(r, 401, "Unauthorized, New-Api-User does not match logged in user");
        goto fail;
    }
    if (u.status == MT_USER_DISABLED) {
        mt_api_fail(r, "User has been banned");
        goto fail;
    }
    if (u.role < min_role) {
        mt_api_fail(r, "Unauthorized, insufficient privileges");
        goto fail;
    }
    who->id = u.id;
    who->role = u.role;
    who->status = u.status;
    snprintf(who->username, sizeof who->username, "%s", u.username ? u.username : "");
    snprintf(who->group, sizeof who->group, "%s", u.group && *u.group ? u.group : "default");
    mt_user_cleanup(&u);
    return 0;
fail:
    mt_user_cleanup(&u);
    return -1;
}

int mt_api_session_set(struct mt_server *srv, struct cm_httpd_req *r, int64_t user_id)
{
    char v[MT_SESSION_COOKIE_MAX], hdr[MT_SESSION_COOKIE_MAX + 96];
    int rc = mt_auth_session_make(srv->session_secret, srv->session_secret_len, user_id,
                                  cm_clock_wall_s(srv->clock), v, sizeof v);
    if (rc)
        return rc;
    snprintf(hdr, sizeof hdr, "session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict", v,
             MT_SESSION_MAX_AGE);
    rc = cm_httpd_add_header(r, "Set-Cookie", hdr);
    memset(v, 0, sizeof v);
    memset(hdr, 0, sizeof hdr);
    return rc;
}

void mt_api_session_clear(struct cm_httpd_req *r)
{
    cm_httpd_add_header(r, "Set-Cookie", "session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
}
