/* SPDX-License-Identifier: MIT */
/*
 * check.h - NewAPI's TokenAuth and Distribute checks (spec newapi.md 4.2), pure: token
 * status / expiry / quota, the IP allow list, the owner's status and role (channel
 * pinning is for admins), model limits, and the group a request uses. Each check fills a
 * struct mt_relay_deny with the status, error code and message NewAPI answers with (the
 * caller adds " (request id: ...)") and a reason for the log line.
 */
#ifndef MT_RELAY_CHECK_H
#define MT_RELAY_CHECK_H

#include "options.h"
#include "store/tokens.h"
#include "store/users.h"

#include <stddef.h>
#include <stdint.h>

#define MT_RELAY_GROUP_MAX 65 /* groups are varchar(64) */

/** Why a request is refused: what the client gets and what the log says. */
struct mt_relay_deny {
    unsigned status;    /* 401, 403 ... */
    const char *code;   /* "" or "access_denied" ... (static) */
    const char *reason; /* for the log: "expired", "exhausted" ... (static) */
    char msg[384];      /* the client's message, without the request id */
};

/**
 * Token validity at @p now (unix s): status 1, not expired (expired_time -1 = never), and
 * remain_quota > 0 unless unlimited. CM_OK, or CM_ERR_AUTH with 401 "Invalid token".
 */
int mt_relay_check_token(const struct mt_token *t, int64_t now, struct mt_relay_deny *d);

/** The token's allow_ips against the client address @p ip. CM_OK or CM_ERR_DENIED (403
 *  access_denied). */
int mt_relay_check_ip(const struct mt_token *t, const char *ip, struct mt_relay_deny *d);

/**
 * The owner: enabled (else 403, banned), and when @p pin_channel != 0 an admin (role >= 10;
 * else 403, NewAPI's "specific channel" refusal). CM_OK or CM_ERR_DENIED.
 */
int mt_relay_check_user(const struct mt_user *u, int64_t pin_channel, struct mt_relay_deny *d);

/**
 * Model limits: when model_limits_enabled, @p model (or its NewAPI normalised name) must be
 * one of the comma-separated model_limits (entries trimmed). CM_OK or CM_ERR_DENIED (403).
 */
int mt_relay_check_model(const struct mt_token *t, const char *model, struct mt_relay_deny *d);

/** 1 when @p model passes the token's model limits (for /v1/models), else 0. */
int mt_relay_model_allowed(const struct mt_token *t, const char *model);

/**
 * 1 when a user of group @p user_group may use group @p g: NewAPI's GetUserUsableGroups
 * (UserUsableGroups, group_special_usable_group, the user's own group; api/usable_groups.h).
 */
int mt_relay_group_usable(const struct mt_options *o, const char *user_group, const char *g);

/**
 * The group a request uses (4.2): the token's group when set (it must be usable by the
 * user and, unless "auto", a key of GroupRatio), else the user's group (else "default").
 * "auto" is returned as is: the caller walks AutoGroups (mt_relay_auto_group_at()).
 * Into @p out (MT_RELAY_GROUP_MAX). CM_OK or CM_ERR_DENIED (403 with NewAPI's message).
 */
int mt_relay_group(const struct mt_token *t, const struct mt_user *u, const struct mt_options *o,
                   char *out, size_t cap, struct mt_relay_deny *d);

/**
 * The @p i-th group of the AutoGroups option (JSON list, default ["default"]) that the user
 * may use, into @p out. CM_OK; CM_ERR_NOTFOUND past the end.
 */
int mt_relay_auto_group_at(const struct mt_options *o, const char *user_group, size_t i, char *out,
                           size_t cap);

/** 1 when the user's setting JSON (1.17) has @p name set to true, else 0. */
int mt_relay_user_setting(const struct mt_user *u, const char *name);

#endif
