/* SPDX-License-Identifier: MIT */
/* check.c - token, user, model and group checks of the relay (see check.h). */
#include "relay/check.h"

#include "api/usable_groups.h"
#include "auth.h"
#include "cm/err.h"
#include "cm/json.h"
#include "pricing.h"
#include "relay/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int deny(struct mt_relay_deny *d, int rc, unsigned status, const char *code,
                const char *reason, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int deny(struct mt_relay_deny *d, int rc, unsigned status, const char *code,
                const char *reason, const char *fmt, ...)
{
    va_list ap;
    if (!d)
        return rc;
    d->status = status;
    d->code = code;
    d->reason = reason;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return rc;
}

int mt_relay_check_token(const struct mt_token *t, int64_t now, struct mt_relay_deny *d)
{
    if (!t)
        return deny(d, CM_ERR_AUTH, 401, "", "unknown key", "Invalid token");
    if (t->status != MT_TOKEN_ENABLED)
        return deny(d, CM_ERR_AUTH, 401, "",
                    t->status == MT_TOKEN_EXPIRED     ? "expired"
                    : t->status == MT_TOKEN_EXHAUSTED ? "exhausted"
                                                      : "disabled",
                    "Invalid token");
    if (t->expired_time != -1 && t->expired_time < now)
        return deny(d, CM_ERR_AUTH, 401, "", "expired", "Invalid token");
    if (!t->unlimited_quota && t->remain_quota <= 0)
        return deny(d, CM_ERR_AUTH, 401, "", "exhausted", "Invalid token");
    return CM_OK;
}

int mt_relay_check_ip(const struct mt_token *t, const char *ip, struct mt_relay_deny *d)
{
    if (!t || mt_auth_ip_allowed(t->allow_ips, ip ? ip : ""))
        return CM_OK;
    return deny(d, CM_ERR_DENIED, 403, "access_denied", "ip not allowed",
                "Your IP %s is not in the token's allowed IP list", ip ? ip : "?");
}

int mt_relay_check_user(const struct mt_user *u, int64_t pin_channel, struct mt_relay_deny *d)
{
    if (!u || u->status != MT_USER_ENABLED)
        return deny(d, CM_ERR_DENIED, 403, "", "user disabled", "The user is banned");
    if (pin_channel && u->role < MT_ROLE_ADMIN)
        return deny(d, CM_ERR_DENIED, 403, "", "pin by non-admin",
                    "Regular users cannot specify a channel (sk-KEY-CHANNELID)");
    return CM_OK;
}

/* whether @p name is one of the comma-separated, trimmed entries of @p list */
static int in_list(const char *list, const char *name)
{
    size_t nl = strlen(name);
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        const char *q = end;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n' || q[-1] == '\r'))
            q--;
        if ((size_t)(q - p) == nl && memcmp(p, name, nl) == 0)
            return 1;
        p = e ? e + 1 : end;
    }
    return 0;
}

int mt_relay_model_allowed(const struct mt_token *t, const char *model)
{
    char buf[MT_RELAY_MODEL_MAX];
    const char *norm;
    if (!t || !t->model_limits_enabled)
        return 1;
    if (!model)
        return 0;
    norm = mt_pricing_match_name(model, buf, sizeof buf);
    return in_list(t->model_limits, model) || (norm && in_list(t->model_limits, norm));
}

int mt_relay_check_model(const struct mt_token *t, const char *model, struct mt_relay_deny *d)
{
    if (mt_relay_model_allowed(t, model))
        return CM_OK;
    return deny(d, CM_ERR_DENIED, 403, "", "model not allowed",
                "This token has no access to model %s", model ? model : "");
}

int mt_relay_group_usable(const struct mt_options *o, const char *user_group, const char *g)
{
    cJSON *m = NULL;
    int ok;
    if (!g || !*g)
        return 0;
    if (user_group && strcmp(user_group, g) == 0)
        return 1;
    if (mt_groups_usable_of(o, user_group, &m) != CM_OK)
        return 0;
    ok = cJSON_GetObjectItemCaseSensitive(m, g) != NULL;
    cJSON_Delete(m);
    return ok;
}

static int copy(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return CM_ERR_LIMIT;
    memcpy(out, s, n + 1);
    return CM_OK;
}

int mt_relay_group(const struct mt_token *t, const struct mt_user *u, const struct mt_options *o,
                   char *out, size_t cap, struct mt_relay_deny *d)
{
    const char *ug = u && u->group && *u->group ? u->group : "default";
    const char *tg = t && t->group ? t->group : "";

    if (!*tg)
        return copy(out, cap, ug) ? deny(d, CM_ERR_DENIED, 403, "", "bad group", "Bad group")
                                  : CM_OK;
    if (strcmp(tg, "auto") != 0) {
        if (!mt_relay_group_usable(o, ug, tg))
            return deny(d, CM_ERR_DENIED, 403, "", "group not usable",
                        "No permission to access group %s", tg);
        if (!mt_pricing_has_group(mt_options_pricing(o), tg))
            return deny(d, CM_ERR_DENIED, 403, "", "group deprecated",
                        "Group %s has been deprecated", tg);
    }
    if (copy(out, cap, tg))
        return deny(d, CM_ERR_DENIED, 403, "", "bad group", "Bad group");
    return CM_OK;
}

int mt_relay_auto_group_at(const struct mt_options *o, const char *user_group, size_t i, char *out,
                           size_t cap)
{
    const char *v = mt_options_get(o, "AutoGroups");
    cJSON *a = NULL;
    const cJSON *it;
    size_t k = 0;
    int rc = CM_ERR_NOTFOUND;

    if (!v || cm_json_parse(v, strlen(v), NULL, &a, NULL) != CM_OK || !cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return i == 0 ? copy(out, cap, "default") : CM_ERR_NOTFOUND;
    }
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it) || !mt_relay_group_usable(o, user_group, it->valuestring))
            continue;
        if (k++ == i) {
            rc = copy(out, cap, it->valuestring);
            break;
        }
    }
    cJSON_Delete(a);
    return rc;
}

int mt_relay_user_setting(const struct mt_user *u, const char *name)
{
    cJSON *s = NULL;
    int v;
    if (!u || !u->setting || *u->setting != '{' ||
        cm_json_parse(u->setting, strlen(u->setting), NULL, &s, NULL) != CM_OK)
        return 0;
    v = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, name));
    cJSON_Delete(s);
    return v;
}
