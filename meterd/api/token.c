/* SPDX-License-Identifier: MIT */
/*
 * token.c - the /api/token routes (spec newapi.md 3.4, 4.2), always scoped to the caller's
 * own tokens: list and search (keys masked), get, key reveal (one, or a batch), create (no
 * key in the answer), update (full, or ?status_only=1), soft delete (one, or a batch);
 * and the token-key read-only endpoints GET /api/usage/token/ and GET /api/log/token
 * (Authorization: Bearer sk-...; only the key's existence and its owner's status count).
 *
 * Where this does better than NewAPI:
 *  - a full PUT keeps the fields the body leaves out (NewAPI writes zero values, so a
 *    missing expired_time made the token expire in 1970);
 *  - re-enabling is refused whenever the token is in fact expired or exhausted, whatever
 *    its stored status (NewAPI only looks when the status is already 3/4);
 *  - the group must be one the user may use and exist in GroupRatio (NewAPI accepts any
 *    text and the relay refuses it later), allow_ips must parse, model_limits is
 *    normalised (spaces trimmed, empty and repeated entries dropped) and may not be empty
 *    while enabled, expired_time must be -1 or a time in seconds (not milliseconds, not
 *    already past at creation), the name limit counts characters, not bytes.
 */
#include "api/areas.h"

#include "api/admin_util.h"
#include "api/envelope.h"
#include "api/limits.h"
#include "api/session.h"
#include "api/usable_groups.h"
#include "auth.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/clock.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "optcache.h"
#include "pricing.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_RUNES 50
#define LIMITS_MAX (64 * 1024) /* bytes of model_limits */
#define MODEL_NAME_MAX 255     /* bytes of one model name */
#define ALLOW_IPS_MAX (16 * 1024)
#define BATCH_MAX 100
#define EXPIRY_MAX INT64_C(253402300799) /* 9999-12-31: larger values are milliseconds */
#define TOKEN_LOGS_MAX 1000              /* GET /api/log/token (NewAPI MaxRecentItems) */
#define SEARCH_PATTERN_MAX 128

/* ---- JSON ---- */

/* A token as the console sees it: the key masked (NewAPI buildMaskedTokenResponse). */
static cJSON *token_json(const struct mt_token *t)
{
    char masked[MT_MASKED_KEY_MAX];
    cJSON *o = cJSON_CreateObject();
    mt_auth_mask_key(t->key ? t->key : "", masked, sizeof masked);
    if (!o || cm_json_set_int64(o, "id", t->id) || cm_json_set_int64(o, "user_id", t->user_id) ||
        mt_json_set_str(o, "key", masked) || cm_json_set_int64(o, "status", t->status) ||
        mt_json_set_str(o, "name", t->name) ||
        cm_json_set_int64(o, "created_time", t->created_time) ||
        cm_json_set_int64(o, "accessed_time", t->accessed_time) ||
        cm_json_set_int64(o, "expired_time", t->expired_time) ||
        cm_json_set_int64(o, "remain_quota", t->remain_quota) ||
        cm_json_set_bool(o, "unlimited_quota", t->unlimited_quota) ||
        cm_json_set_bool(o, "model_limits_enabled", t->model_limits_enabled) ||
        mt_json_set_str(o, "model_limits", t->model_limits) ||
        mt_json_set_str(o, "allow_ips", t->allow_ips) ||
        cm_json_set_int64(o, "used_quota", t->used_quota) ||
        mt_json_set_str(o, "group", t->group) ||
        cm_json_set_bool(o, "cross_group_retry", t->cross_group_retry)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *tokens_json(const struct mt_token *items, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *t = token_json(&items[i]);
        if (!t || !cJSON_AddItemToArray(a, t)) {
            cJSON_Delete(t);
            cJSON_Delete(a);
            a = NULL;
        }
    }
    return a;
}

/* ---- validation of a token body ---- */

/* "a, b,,a" -> "a,b": entries trimmed, empty and repeated ones dropped. */
static int normalize_limits(const char *in, char **out, char *err, size_t errlen)
{
    struct cm_buf b;
    const char *p = in;
    int rc = CM_OK;

    cm_buf_init(&b, LIMITS_MAX + 1);
    while (rc == CM_OK && *p) {
        const char *s = p, *e;
        size_t n;
        p += strcspn(p, ",");
        e = p;
        if (*p == ',')
            p++;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        n = (size_t)(e - s);
        if (!n)
            continue;
        if (n > MODEL_NAME_MAX) {
            snprintf(err, errlen, "model_limits: a model name is longer than 255 bytes");
            rc = CM_ERR_INVAL;
            break;
        }
        { /* repeated? */
            const char *q = b.data ? b.data : "";
            size_t have = b.len, dup = 0;
            while (!dup && have) {
                size_t l = strcspn(q, ",");
                if (l > have)
                    l = have;
                dup = l == n && memcmp(q, s, n) == 0;
                q += l;
                have -= l;
                if (have) {
                    q++;
                    have--;
                }
            }
            if (dup)
                continue;
        }
        if ((b.len && cm_buf_append(&b, ",", 1)) || cm_buf_append(&b, s, n)) {
            snprintf(err, errlen, "model_limits is too long (at most 65536 bytes)");
            rc = CM_ERR_INVAL;
        }
    }
    if (rc) {
        cm_buf_cleanup(&b);
        return rc;
    }
    *out = cm_buf_release(&b, NULL);
    return *out ? CM_OK : CM_ERR_NOMEM;
}

/* The most remain_quota a limited token may have: 1e9 x QuotaPerUnit (NewAPI). */
static int64_t max_token_quota(const struct mt_options *o)
{
    double m = 1e9 * mt_pricing_quota_per_unit(mt_options_pricing(o));
    return !isfinite(m) || m >= (double)CM_JSON_INT_MAX ? CM_JSON_INT_MAX : (int64_t)m;
}

/* Whether @p group may be a token group of a user in @p user_group. */
static int group_allowed(const struct mt_options *o, const char *user_group, const char *group,
                         char *err, size_t errlen)
{
    cJSON *usable = NULL;
    int ok;
    if (!*group)
        return 1;
    if (mt_groups_usable_of(o, user_group, &usable) != CM_OK) {
        snprintf(err, errlen, "cannot read the usable groups");
        return 0;
    }
    ok = cJSON_GetObjectItemCaseSensitive(usable, group) != NULL;
    cJSON_Delete(usable);
    if (!ok) {
        snprintf(err, errlen, "group '%s' is not one your account may use", group);
        return 0;
    }
    if (strcmp(group, "auto") != 0 && !mt_groups_in_ratio(o, group, NULL)) {
        snprintf(err, errlen, "group '%s' has been retired (it is not in GroupRatio)", group);
        return 0;
    }
    return 1;
}

/*
 * Reads the editable fields of a token body into @p t, which holds the defaults (the
 * stored token for an update, mt_token_init() for a create) and is changed only for the
 * fields present. *@p limits gets the normalised model_limits (t->model_limits points to
 * it; caller frees). 0, or answered and non-zero.
 */
static int read_token_body(struct mt_server *srv, struct cm_httpd_req *r, const cJSON *b,
                           const struct mt_options *o, const struct mt_who *who, int create,
                           struct mt_token *t, char **limits)
{
    const char *name, *ml, *ips, *group, *old_group = t->group ? t->group : "";
    const char *old_ips = t->allow_ips ? t->allow_ips : "";
    const char *old_ml = t->model_limits ? t->model_limits : "";
    struct cm_json_err je = {0};
    bool unl = t->unlimited_quota, mle = t->model_limits_enabled, cgr = t->cross_group_retry;
    int64_t exp, rq, maxq = max_token_quota(o);
    char err[256];

    err[0] = '\0';
    if (cm_json_opt_string(b, "name", t->name ? t->name : "", &name, &je) ||
        cm_json_opt_int64(b, "expired_time", -1, CM_JSON_INT_MAX, t->expired_time, &exp, &je) ||
        cm_json_opt_int64(b, "remain_quota", CM_JSON_INT_MIN, CM_JSON_INT_MAX, t->remain_quota, &rq,
                          &je) ||
        cm_json_opt_bool(b, "unlimited_quota", unl, &unl, &je) ||
        cm_json_opt_bool(b, "model_limits_enabled", mle, &mle, &je) ||
        cm_json_opt_string(b, "model_limits", t->model_limits ? t->model_limits : "", &ml, &je) ||
        cm_json_opt_string(b, "allow_ips", t->allow_ips ? t->allow_ips : "", &ips, &je) ||
        cm_json_opt_string(b, "group", old_group, &group, &je) ||
        cm_json_opt_bool(b, "cross_group_retry", cgr, &cgr, &je)) {
        mt_api_fail(r, "invalid request body: %s", je.msg);
        return -1;
    }
    /* (unsigned long): invalid UTF-8 (-1) counts as too long; JSON bodies are valid */
    if ((unsigned long)mt_utf8_len(name) > NAME_MAX_RUNES || mt_has_ctl(name)) {
        mt_api_fail(r, "the token name must be at most 50 characters, without control "
                       "characters");
        return -1;
    }
    if (exp == 0 || exp > EXPIRY_MAX) {
        mt_api_fail(r, "expired_time must be -1 (never) or a unix time in seconds");
        return -1;
    }
    if (create && exp != -1 && exp <= cm_clock_wall_s(srv->clock)) {
        mt_api_fail(r, "expired_time is already in the past");
        return -1;
    }
    if (!unl && rq < 0) {
        mt_api_fail(r, "remain_quota must not be negative");
        return -1;
    }
    if (!unl && rq > maxq) {
        mt_api_fail(r, "remain_quota is out of range (at most %lld)", (long long)maxq);
        return -1;
    }
    /* stored values written by other tools are checked only when they change */
    if (strlen(ips) > ALLOW_IPS_MAX ||
        ((create || strcmp(ips, old_ips) != 0) && !mt_auth_ip_list_valid(ips, err, sizeof err))) {
        mt_api_fail(r, "allow_ips is not a valid list of IP addresses or CIDR ranges: %s",
                    err[0] ? err : "too long");
        return -1;
    }
    if (strlen(group) > 64 || mt_has_ctl(group) ||
        (strcmp(group, old_group) != 0 && !group_allowed(o, who->group, group, err, sizeof err))) {
        mt_api_fail(r, "%s", err[0] ? err : "invalid group");
        return -1;
    }
    if (normalize_limits(ml, limits, err, sizeof err) != CM_OK) {
        mt_api_fail(r, "%s", err[0] ? err : "out of memory");
        return -1;
    }
    if (mle && !**limits && (create || !t->model_limits_enabled || strcmp(ml, old_ml) != 0)) {
        mt_api_fail(r, "model_limits_enabled needs at least one model in model_limits");
        return -1;
    }
    t->name = name;
    t->expired_time = exp;
    t->remain_quota = rq;
    t->unlimited_quota = unl;
    t->model_limits_enabled = mle;
    t->model_limits = *limits;
    t->allow_ips = ips;
    t->group = group;
    t->cross_group_retry = strcmp(group, "auto") == 0 ? cgr : 0;
    return 0;
}

/* ---- routes with the caller's session or access token ---- */

static void list(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_token_list l = {0};
    struct mt_page pg;
    struct mt_who who;
    cJSON *d;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    mt_api_page(r, &pg);
    if ((rc = mt_store_token_list(srv->store, who.id, pg.offset, pg.size, &l)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot list tokens: %s", cm_err_str(rc));
        return;
    }
    d = mt_api_paged(&pg, l.total, tokens_json(l.items, l.n));
    mt_token_list_cleanup(&l);
    if (!d) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    mt_api_ok(r, d);
}

/* NewAPI sanitizeLikePattern: '%' wildcards, at most 2, not doubled, >= 2 other chars. */
static const char *bad_pattern(const char *s)
{
    size_t pct = 0, n = strlen(s);
    if (n > SEARCH_PATTERN_MAX)
        return "search keywords must be at most 128 bytes";
    if (strstr(s, "%%"))
        return "search keywords may not contain consecutive % wildcards";
    for (const char *p = s; *p; p++)
        pct += *p == '%';
    if (pct > 2)
        return "search keywords may contain at most 2 % wildcards";
    if (pct && n - pct < 2)
        return "a search keyword with a % wildcard needs at least 2 other characters";
    return NULL;
}

static void search(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    const char *kw, *key, *why;
    struct mt_token_list l = {0};
    struct mt_page pg;
    struct mt_who who;
    int64_t limit;
    cJSON *d;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_limit_search(srv, r, who.id))
        return;
    kw = cm_httpd_req_arg(r, "keyword");
    key = cm_httpd_req_arg(r, "token");
    if (key && strncmp(key, "sk-", 3) == 0)
        key += 3;
    if ((kw && (why = bad_pattern(kw))) || (key && (why = bad_pattern(key)))) {
        mt_api_fail(r, "%s", why);
        return;
    }
    mt_api_page(r, &pg);
    limit = pg.offset + pg.size;
    if (limit > MT_STORE_LIST_MAX)
        limit = MT_STORE_LIST_MAX;
    if (pg.offset >= limit) {
        d = mt_api_paged(&pg, 0, cJSON_CreateArray());
    } else {
        rc = mt_store_token_search(srv->store, who.id, kw, key, (int)limit, &l);
        if (rc) {
            mt_api_fail_status(r, 500, "cannot search tokens: %s", cm_err_str(rc));
            return;
        }
        d = l.n > (size_t)pg.offset
                ? mt_api_paged(&pg, l.total,
                               tokens_json(l.items + pg.offset, l.n - (size_t)pg.offset))
                : mt_api_paged(&pg, l.total, cJSON_CreateArray());
        mt_token_list_cleanup(&l);
    }
    if (!d) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    mt_api_ok(r, d);
}

/* The caller's live token :id into *t; 0, or answered and non-zero. */
static int own_token(struct mt_server *srv, struct cm_httpd_req *r, const struct mt_who *who,
                     int64_t id, struct mt_token *t)
{
    int rc;
    if (id <= 0) {
        mt_api_fail(r, "a valid token id is required");
        return -1;
    }
    rc = mt_store_token_get(srv->store, id, who->id, t);
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail(r, "token %lld does not exist", (long long)id);
        return -1;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot read the token: %s", cm_err_str(rc));
        return -1;
    }
    return 0;
}

static void get_one(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_token t;
    cJSON *d;

    mt_token_init(&t);
    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) ||
        own_token(srv, r, &who, mt_api_param_id(r, "id"), &t))
        return;
    d = token_json(&t);
    mt_token_cleanup(&t);
    if (!d) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    mt_api_ok(r, d);
}

static void reveal(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_token t;
    cJSON *d;

    mt_token_init(&t);
    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_limit_critical(srv, r) ||
        own_token(srv, r, &who, mt_api_param_id(r, "id"), &t))
        return;
    d = cJSON_CreateObject();
    if (!d || mt_json_set_str(d, "key", t.key)) {
        cJSON_Delete(d);
        mt_token_cleanup(&t);
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "token: user %lld revealed the key of token %lld",
                (long long)who.id, (long long)t.id);
    mt_token_cleanup(&t);
    mt_api_ok(r, d);
}

/* {"ids": [...]} with 1..BATCH_MAX positive ids into @p ids; the count, or -1 answered. */
static int read_ids(struct cm_httpd_req *r, const cJSON *b, int64_t ids[BATCH_MAX])
{
    struct cm_json_err je = {0};
    const cJSON *it;
    cJSON *a = NULL;
    int n = 0;

    if (cm_json_get_array(b, "ids", &a, &je)) {
        mt_api_fail(r, "invalid request body: %s", je.msg);
        return -1;
    }
    if (cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > BATCH_MAX) {
        mt_api_fail(r, "ids must hold 1 to %d token ids", BATCH_MAX);
        return -1;
    }
    cJSON_ArrayForEach(it, a)
    {
        if (cm_json_to_int64(it, 1, CM_JSON_INT_MAX, &ids[n]) != CM_OK) {
            mt_api_fail(r, "ids must be positive integers");
            return -1;
        }
        n++;
    }
    return n;
}

static void batch_keys(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    int64_t ids[BATCH_MAX];
    cJSON *b = NULL, *d = NULL, *keys = NULL;
    char **v = NULL, idb[24];
    struct mt_who who;
    int n = 0, rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_limit_critical(srv, r) ||
        mt_api_body(r, &b) || (n = read_ids(r, b, ids)) < 0)
        goto out;
    if ((rc = mt_store_token_keys(srv->store, who.id, ids, (size_t)n, &v)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot read the keys: %s", cm_err_str(rc));
        n = 0;
        goto out;
    }
    rc = cm_json_new_object(&d) || cm_json_new_object(&keys);
    for (int i = 0; !rc && i < n; i++) {
        if (!v[i])
            continue;
        snprintf(idb, sizeof idb, "%lld", (long long)ids[i]);
        rc = cm_json_set_string(keys, idb, v[i]);
    }
    if (rc || cm_json_adopt(d, "keys", &keys)) {
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "token: user %lld revealed %d token keys", (long long)who.id,
                n);
    mt_api_ok(r, d);
    d = NULL;
out:
    mt_token_keys_free(v, v ? (size_t)n : 0);
    cJSON_Delete(keys);
    cJSON_Delete(d);
    cJSON_Delete(b);
}

static void create(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = NULL;
    char *limits = NULL;
    cJSON *b = NULL;
    struct mt_who who;
    struct mt_token t;
    int64_t count = 0, max, id = 0;
    int rc;

    mt_token_init(&t);
    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_body(r, &b))
        goto out;
    o = mt_optcache_get(srv->opts);
    if (read_token_body(srv, r, b, o, &who, 1, &t, &limits))
        goto out;
    max = mt_options_int(o, "token_setting.max_user_tokens", 1000);
    if ((rc = mt_store_token_count(srv->store, who.id, &count)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot count tokens: %s", cm_err_str(rc));
        goto out;
    }
    if (count >= max) {
        mt_api_fail(r, "you already have the maximum number of tokens (%lld)", (long long)max);
        goto out;
    }
    t.user_id = who.id;
    t.status = MT_TOKEN_ENABLED;
    t.key = NULL; /* a fresh random key */
    if ((rc = mt_store_token_insert(srv->store, &t, &id, NULL, 0)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot create the token: %s", cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "token: user %lld created token %lld", (long long)who.id,
                (long long)id);
    mt_api_ok(r, NULL);
out:
    cm_free(limits);
    cJSON_Delete(b);
    mt_options_unref(o);
}

static void update(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_options *o = NULL;
    const char *so = cm_httpd_req_arg(r, "status_only");
    struct cm_json_err je = {0};
    char *limits = NULL;
    int64_t id = 0, status = 0, now = cm_clock_wall_s(srv->clock);
    cJSON *b = NULL, *d;
    struct mt_who who;
    struct mt_token cur, t;
    int rc;

    mt_token_init(&cur);
    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_body(r, &b))
        goto out;
    if (cm_json_get_int64(b, "id", 1, CM_JSON_INT_MAX, &id, &je)) {
        mt_api_fail(r, "invalid request body: %s", je.msg);
        goto out;
    }
    if (own_token(srv, r, &who, id, &cur))
        goto out;
    t = cur;
    if (so && *so) {
        if (cm_json_get_int64(b, "status", MT_TOKEN_ENABLED, MT_TOKEN_DISABLED, &status, &je)) {
            mt_api_fail(r, "status must be 1 (enabled) or 2 (disabled)");
            goto out;
        }
        if (status == MT_TOKEN_ENABLED && cur.expired_time != -1 && cur.expired_time <= now) {
            mt_api_fail(r, "the token has expired and cannot be enabled; change its expiry "
                           "time or make it never expire first");
            goto out;
        }
        if (status == MT_TOKEN_ENABLED && !cur.unlimited_quota && cur.remain_quota <= 0) {
            mt_api_fail(r, "the token's quota is used up and it cannot be enabled; raise its "
                           "remaining quota or make it unlimited first");
            goto out;
        }
        t.status = (int)status;
    } else {
        o = mt_optcache_get(srv->opts);
        if (read_token_body(srv, r, b, o, &who, 0, &t, &limits))
            goto out;
    }
    t.user_id = who.id;
    rc = mt_store_token_update(srv->store, &t);
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail(r, "token %lld does not exist", (long long)id);
        goto out;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot update the token: %s", cm_err_str(rc));
        goto out;
    }
    mt_token_cleanup(&cur);
    if (own_token(srv, r, &who, id, &cur))
        goto out;
    if (!(d = token_json(&cur))) {
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "token: user %lld updated token %lld%s", (long long)who.id,
                (long long)id, so && *so ? " (status)" : "");
    mt_api_ok(r, d);
out:
    mt_token_cleanup(&cur);
    cm_free(limits);
    cJSON_Delete(b);
    mt_options_unref(o);
}

static void delete_one(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t id;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who))
        return;
    if ((id = mt_api_param_id(r, "id")) <= 0) {
        mt_api_fail(r, "a valid token id is required");
        return;
    }
    rc = mt_store_token_delete(srv->store, id, who.id);
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail(r, "token %lld does not exist", (long long)id);
        return;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot delete the token: %s", cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "token: user %lld deleted token %lld", (long long)who.id,
                (long long)id);
    mt_api_ok(r, NULL);
}

static void delete_batch(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    int64_t ids[BATCH_MAX], deleted = 0;
    struct mt_who who;
    cJSON *b = NULL;
    int n = 0, rc;

    if (mt_api_auth(srv, r, MT_ROLE_COMMON, &who) || mt_api_body(r, &b) ||
        (n = read_ids(r, b, ids)) < 0)
        goto out;
    if ((rc = mt_store_token_delete_many(srv->store, who.id, ids, (size_t)n, &deleted)) != CM_OK) {
        mt_api_fail_status(r, 500, "cannot delete the tokens: %s", cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "token: user %lld deleted %lld tokens", (long long)who.id,
                (long long)deleted);
    mt_api_ok_data(r, cJSON_CreateNumber((double)deleted));
out:
    cJSON_Delete(b);
}

/* ---- token-key read-only endpoints (NewAPI TokenAuthReadOnly) ---- */

/* Authenticates by the sk- key of Authorization; 0 with *t, or answered and non-zero. */
static int key_auth(struct mt_server *srv, struct cm_httpd_req *r, struct mt_token *t)
{
    const char *hdr = cm_httpd_req_header(r, "Authorization"), *key = NULL;
    char buf[MT_TOKEN_KEY_MAX + 1];
    size_t len = 0;
    int64_t chan = 0;
    struct mt_user u;
    int rc;

    mt_user_init(&u);
    rc = hdr ? mt_auth_parse_key(hdr, &key, &len, &chan) : CM_ERR_NOTFOUND;
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail_status(r, 401, "Authorization header not provided");
        return -1;
    }
    if (rc || len == 0 || len > MT_TOKEN_KEY_MAX) {
        mt_api_fail_status(r, 401, "invalid token");
        return -1;
    }
    memcpy(buf, key, len);
    buf[len] = '\0';
    rc = mt_store_token_get_by_key(srv->store, buf, t);
    cm_crypto_memzero(buf, sizeof buf);
    if (rc == CM_ERR_NOTFOUND) {
        mt_api_fail_status(r, 401, "invalid token");
        return -1;
    }
    if (rc) {
        mt_api_fail_status(r, 500, "cannot read the token: %s", cm_err_str(rc));
        return -1;
    }
    rc = mt_store_user_get(srv->store, t->user_id, 0, &u);
    if (rc == CM_OK && u.status != MT_USER_ENABLED) {
        mt_user_cleanup(&u);
        mt_token_cleanup(t);
        mt_api_fail_status(r, 403, "User has been banned");
        return -1;
    }
    mt_user_cleanup(&u);
    if (rc) {
        mt_token_cleanup(t);
        mt_api_fail_status(r, rc == CM_ERR_NOTFOUND ? 401 : 500, "%s",
                           rc == CM_ERR_NOTFOUND ? "invalid token" : "cannot read the user");
        return -1;
    }
    return 0;
}

/* GET /api/usage/token/: {"code":true,"message":"ok","data":{"object":"token_usage",...}} */
static void usage(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_token t;
    cJSON *root = NULL, *d = NULL, *ml = NULL;
    const char *p;
    int rc;

    mt_token_init(&t);
    if (mt_api_limit_critical(srv, r) || key_auth(srv, r, &t))
        return;
    rc = cm_json_new_object(&ml);
    for (p = t.model_limits ? t.model_limits : ""; rc == CM_OK && *p;) {
        size_t n = strcspn(p, ",");
        char name[MODEL_NAME_MAX + 1];
        if (n && n <= MODEL_NAME_MAX) {
            memcpy(name, p, n);
            name[n] = '\0';
            rc = cm_json_set_bool(ml, name, true);
        }
        p += n + (p[n] == ',');
    }
    if (rc || cm_json_new_object(&d) || mt_json_set_str(d, "object", "token_usage") ||
        mt_json_set_str(d, "name", t.name) ||
        cm_json_set_int64(d, "total_granted", t.remain_quota + t.used_quota) ||
        cm_json_set_int64(d, "total_used", t.used_quota) ||
        cm_json_set_int64(d, "total_available", t.remain_quota) ||
        cm_json_set_bool(d, "unlimited_quota", t.unlimited_quota) ||
        cm_json_adopt(d, "model_limits", &ml) ||
        cm_json_set_bool(d, "model_limits_enabled", t.model_limits_enabled) ||
        cm_json_set_int64(d, "expires_at", t.expired_time == -1 ? 0 : t.expired_time) ||
        cm_json_new_object(&root) || cm_json_set_bool(root, "code", true) ||
        mt_json_set_str(root, "message", "ok") || cm_json_adopt(root, "data", &d)) {
        cJSON_Delete(root);
        root = NULL;
    }
    cJSON_Delete(ml);
    cJSON_Delete(d);
    mt_token_cleanup(&t);
    mt_api_reply_obj(r, root);
}

/* A log row for its owner (NewAPI formatUserLogs): id renumbered, admin fields dropped. */
static cJSON *user_log_json(const struct mt_log *l, int64_t seq)
{
    cJSON *o = cJSON_CreateObject(), *other = NULL;
    char *otxt = NULL;
    if (l->other && *l->other &&
        cm_json_parse(l->other, strlen(l->other), NULL, &other, NULL) == CM_OK &&
        cJSON_IsObject(other)) {
        cJSON_DeleteItemFromObjectCaseSensitive(other, "admin_info");
        cJSON_DeleteItemFromObjectCaseSensitive(other, "stream_status");
        (void)cm_json_print(other, &otxt, NULL);
    }
    cJSON_Delete(other);
    if (!o || cm_json_set_int64(o, "id", seq) || cm_json_set_int64(o, "user_id", l->user_id) ||
        cm_json_set_int64(o, "created_at", l->created_at) ||
        cm_json_set_int64(o, "type", l->type) || mt_json_set_str(o, "content", l->content) ||
        mt_json_set_str(o, "username", l->username) ||
        mt_json_set_str(o, "token_name", l->token_name) ||
        mt_json_set_str(o, "model_name", l->model_name) ||
        cm_json_set_int64(o, "quota", l->quota) ||
        cm_json_set_int64(o, "prompt_tokens", l->prompt_tokens) ||
        cm_json_set_int64(o, "completion_tokens", l->completion_tokens) ||
        cm_json_set_int64(o, "use_time", l->use_time) ||
        cm_json_set_bool(o, "is_stream", l->is_stream) ||
        cm_json_set_int64(o, "channel", l->channel_id) || mt_json_set_str(o, "channel_name", "") ||
        cm_json_set_int64(o, "token_id", l->token_id) || mt_json_set_str(o, "group", l->group) ||
        mt_json_set_str(o, "ip", l->ip) ||
        (l->request_id && *l->request_id && mt_json_set_str(o, "request_id", l->request_id)) ||
        mt_json_set_str(o, "other", otxt ? otxt : (l->other && *l->other ? "{}" : ""))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cm_free(otxt);
    return o;
}

/* GET /api/log/token: the key's last 1000 log rows, newest first. */
static void token_logs(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_log_filter f = {0};
    struct mt_log_list l = {0};
    struct mt_token t;
    cJSON *a = NULL;
    int rc;

    mt_token_init(&t);
    if (mt_api_limit_critical(srv, r) || key_auth(srv, r, &t))
        return;
    f.token_id = t.id;
    mt_token_cleanup(&t);
    rc = mt_store_log_query(srv->store, &f, MT_LOG_ORDER_ID, 0, TOKEN_LOGS_MAX, 0, &l);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot read the logs: %s", cm_err_str(rc));
        return;
    }
    a = cJSON_CreateArray();
    for (size_t i = 0; a && i < l.n; i++) {
        cJSON *e = user_log_json(&l.items[i], (int64_t)i + 1);
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            cJSON_Delete(a);
            a = NULL;
        }
    }
    mt_log_list_cleanup(&l);
    if (!a) {
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    mt_api_ok(r, a);
}

int mt_api_token_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } R[] = {
        /* literal paths before "/api/token/:id" (the first matching route wins) */
        {"GET", "/api/token/search", search},
        {"POST", "/api/token/batch/keys", batch_keys},
        {"POST", "/api/token/batch", delete_batch},
        {"GET", "/api/token/", list},
        {"POST", "/api/token/", create},
        {"PUT", "/api/token/", update},
        {"GET", "/api/token/:id", get_one},
        {"POST", "/api/token/:id/key", reveal},
        {"DELETE", "/api/token/:id", delete_one},
        {"GET", "/api/usage/token/", usage},
        {"GET", "/api/log/token", token_logs},
    };
    int rc = mt_api_limits_init();
    for (size_t i = 0; rc == CM_OK && i < sizeof R / sizeof *R; i++)
        rc = cm_httpd_route(s, R[i].method, R[i].path, R[i].fn, srv);
    return rc;
}
