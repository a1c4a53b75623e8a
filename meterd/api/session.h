/* SPDX-License-Identifier: MIT */
/*
 * session.h - who calls the admin API (spec newapi.md 2.2): the `session` cookie, else an
 * access token in Authorization; the mandatory New-Api-User header that must name the
 * same user; the user's status and role read from the store on every request (a ban or a
 * demotion applies at once). Also setting and clearing the cookie.
 */
#ifndef MT_API_SESSION_H
#define MT_API_SESSION_H

#include "cm/httpd.h"
#include "server.h"

#include <stdint.h>

#define MT_WHO_NAME_MAX 64

/** The caller, once authenticated. */
struct mt_who {
    int64_t id;
    int role;
    int status;
    int via_token; /* authenticated by access token (not the cookie) */
    char username[MT_WHO_NAME_MAX];
    char group[MT_WHO_NAME_MAX];
};

/**
 * Authenticates @p r and requires @p min_role (MT_ROLE_COMMON / ADMIN / ROOT). Returns 0
 * with *@p who filled, or non-zero after answering with NewAPI's message and status.
 * Blocking store read: server threads only (admin routes).
 */
int mt_api_auth(struct mt_server *srv, struct cm_httpd_req *r, int min_role, struct mt_who *who);

/** Adds the Set-Cookie header of a new session for @p user_id. CM_OK or an error. */
int mt_api_session_set(struct mt_server *srv, struct cm_httpd_req *r, int64_t user_id);

/** Adds the Set-Cookie header that clears the session. */
void mt_api_session_clear(struct cm_httpd_req *r);

#endif
