/* SPDX-License-Identifier: MIT */
/*
 * log.c - the log and usage-data routes (spec newapi.md 3.6, 1.6, 1.10):
 *   GET    /api/log/            admin: paged, created_at desc, id desc; filters type,
 *                               start_timestamp, end_timestamp, username, token_name,
 *                               model_name ('%' wildcard), channel, group, request_id,
 *                               upstream_request_id; channel_name filled from the channels
 *   GET    /api/log/self        user: own rows (by user id), id desc, the same filters but
 *                               username/channel; total capped at 10000, ids renumbered,
 *                               other.admin_info / other.stream_status stripped, and (ours)
 *                               the channel id hidden: users do not see upstream channels
 *   GET    /api/log/stat        admin: {"quota","rpm","tpm"} of consume rows
 *   GET    /api/log/self/stat   user: the same over the caller's rows
 *   DELETE /api/log/?target_timestamp=   admin: rows created before it -> data: count
 *   GET    /api/log/search, /api/log/self/search   deprecated, as NewAPI
 *   GET    /api/data/           admin: quota_data by model and hour (start/end, username)
 *   GET    /api/data/users      admin: by user and hour
 *   GET    /api/data/self       user: own, by model and hour; span at most 30 days (no
 *                               start_timestamp: the 30 days before the end)
 * A malformed number in a filter is refused with a message naming it (NewAPI reads 0).
 */
#include "api/areas.h"

#include "api/envelope.h"
#include "api/session.h"
#include "cm/alloc.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "store/channels.h"
#include "store/logs.h"
#include "store/quota_data.h"
#include "store/users.h"

#include <inttypes.h>
#include <string.h>

#define SELF_TOTAL_CAP 10000
#define SELF_DATA_SPAN (30 * 24 * 3600)

/* The filters of the query. @p self: the caller's own rows (no username/channel). */
static int read_filter(struct cm_httpd_req *r, int self, struct mt_log_filter *f)
{
    int64_t type, start, end, ch = 0;
    memset(f, 0, sizeof *f);
    if (mt_api_arg_int(r, "type", 0, 6, 0, &type) ||
        mt_api_arg_int(r, "start_timestamp", 0, CM_JSON_INT_MAX, 0, &start) ||
        mt_api_arg_int(r, "end_timestamp", 0, CM_JSON_INT_MAX, 0, &end) ||
        (!self && mt_api_arg_int(r, "channel", 0, CM_JSON_INT_MAX, 0, &ch)))
        return -1;
    f->type = (int)type;
    f->start = start;
    f->end = end;
    f->channel_id = ch;
    if (!self)
        f->username = mt_api_arg_str(r, "username");
    f->token_name = mt_api_arg_str(r, "token_name");
    f->model_name = mt_api_arg_str(r, "model_name");
    f->group = mt_api_arg_str(r, "group");
    f->request_id = mt_api_arg_str(r, "request_id");
    f->upstream_request_id = mt_api_arg_str(r, "upstream_request_id");
    return 0;
}

/* `other` without admin_info and stream_status (for the self list) */
static char *strip_other(const char *other)
{
    cJSON *o = NULL;
    char *out = NULL;
    if (!other || !*other)
        return NULL;
    if (cm_json_parse(other, strlen(other), NULL, &o, NULL) != CM_OK || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "admin_info");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "stream_status");
    (void)cm_json_print(o, &out, NULL);
    cJSON_Delete(o);
    return out;
}

static const char *channel_name(const struct mt_channel_list *chs, int64_t id)
{
    for (size_t i = 0; chs && i < chs->n; i++)
        if (chs->items[i].id == id)
            return chs->items[i].name ? chs->items[i].name : "";
    return "";
}

static cJSON *log_json(const struct mt_log *l, int self, int64_t renum,
                       const struct mt_channel_list *chs)
{
    cJSON *o = cJSON_CreateObject();
    char *other = self ? strip_other(l->other) : NULL;
    int rc = o ? CM_OK : CM_ERR_NOMEM;
#define S(k, v)                                                                                    \
    if (rc == CM_OK)                                                                               \
    rc = cm_json_set_string(o, k, (v) ? (v) : "")
#define I(k, v)                                                                                    \
    if (rc == CM_OK)                                                                               \
    rc = cm_json_set_int64(o, k, v)
    I("id", self ? renum : l->id);
    I("user_id", l->user_id);
    I("created_at", l->created_at);
    I("type", l->type);
    S("content", l->content);
    S("username", l->username);
    S("token_name", l->token_name);
    S("model_name", l->model_name);
    I("quota", l->quota);
    I("prompt_tokens", l->prompt_tokens);
    I("completion_tokens", l->completion_tokens);
    I("use_time", l->use_time);
    if (rc == CM_OK)
        rc = cm_json_set_bool(o, "is_stream", l->is_stream != 0);
    I("channel", self ? 0 : l->channel_id);
    S("channel_name", self || !l->channel_id ? "" : channel_name(chs, l->channel_id));
    I("token_id", l->token_id);
    S("group", l->group);
    S("ip", l->ip);
    S("request_id", l->request_id);
    S("upstream_request_id", l->upstream_request_id);
    S("other", self && other ? other : l->other);
#undef S
#undef I
    cm_free(other);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void list_common(struct cm_httpd_req *r, struct mt_server *srv, int self)
{
    struct mt_who who;
    struct mt_log_filter f;
    struct mt_page pg;
    struct mt_log_list l = {0};
    struct mt_channel_list chs = {0};
    cJSON *items = NULL, *data;
    int need_names = 0, rc;

    if (mt_api_auth(srv, r, self ? MT_ROLE_COMMON : MT_ROLE_ADMIN, &who) ||
        read_filter(r, self, &f))
        return;
    mt_api_page(r, &pg);
    if (self)
        f.user_id = who.id;
    rc = mt_store_log_query(srv->store, &f, self ? MT_LOG_ORDER_ID : MT_LOG_ORDER_CREATED,
                            pg.offset, pg.size, self ? SELF_TOTAL_CAP : 0, &l);
    for (size_t i = 0; rc == CM_OK && !self && i < l.n; i++)
        need_names |= l.items[i].channel_id > 0;
    if (rc == CM_OK && need_names)
        rc = mt_store_channel_all(srv->store, 0, &chs);
    if (rc == CM_OK)
        rc = cm_json_new_array(&items);
    for (size_t i = 0; rc == CM_OK && i < l.n; i++) {
        cJSON *j = log_json(&l.items[i], self, pg.offset + (int64_t)i + 1, &chs);
        rc = cm_json_adopt(items, NULL, &j);
    }
    mt_channel_list_cleanup(&chs);
    if (rc) {
        mt_log_list_cleanup(&l);
        cJSON_Delete(items);
        mt_api_fail_status(r, 500, "cannot read the logs: %s", cm_err_str(rc));
        return;
    }
    data = mt_api_paged(&pg, l.total, items);
    mt_log_list_cleanup(&l);
    mt_api_ok_data(r, data);
}

static void log_list(struct cm_httpd_req *r, void *ud)
{
    list_common(r, ud, 0);
}

static void log_self(struct cm_httpd_req *r, void *ud)
{
    list_common(r, ud, 1);
}

static void stat_common(struct cm_httpd_req *r, struct mt_server *srv, int self)
{
    struct mt_who who;
    struct mt_log_filter f;
    struct mt_log_stat s = {0};
    cJSON *d = NULL;
    int rc;

    if (mt_api_auth(srv, r, self ? MT_ROLE_COMMON : MT_ROLE_ADMIN, &who) ||
        read_filter(r, self, &f))
        return;
    if (self)
        f.user_id = who.id;
    rc = mt_store_log_stat(srv->store, &f, &s);
    if (rc == CM_OK)
        rc = cm_json_new_object(&d);
    if (rc == CM_OK)
        rc = cm_json_set_int64(d, "quota", s.quota);
    if (rc == CM_OK)
        rc = cm_json_set_int64(d, "rpm", s.rpm);
    if (rc == CM_OK)
        rc = cm_json_set_int64(d, "tpm", s.tpm);
    if (rc) {
        cJSON_Delete(d);
        mt_api_fail_status(r, 500, "cannot compute the log statistics: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, d);
}

static void log_stat(struct cm_httpd_req *r, void *ud)
{
    stat_common(r, ud, 0);
}

static void log_self_stat(struct cm_httpd_req *r, void *ud)
{
    stat_common(r, ud, 1);
}

static void log_delete(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t ts, n = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) ||
        mt_api_arg_int(r, "target_timestamp", 0, CM_JSON_INT_MAX, 0, &ts))
        return;
    if (ts <= 0) {
        mt_api_fail(r, "parameter target_timestamp (unix seconds; rows created before it are "
                       "deleted) is required");
        return;
    }
    rc = mt_store_log_delete_before(srv->store, ts, &n);
    if (rc) {
        /* batches already deleted stay deleted; say how far it got */
        mt_api_fail_status(r, 500, "log deletion stopped after %" PRId64 " rows: %s", n,
                           cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "log: %s deleted %" PRId64 " rows created before %" PRId64,
                who.username, n, ts);
    mt_api_ok(r, cJSON_CreateNumber((double)n));
}

static void log_deprecated(struct cm_httpd_req *r, void *ud)
{
    (void)ud;
    mt_api_fail(r, "this endpoint is deprecated; use GET /api/log/ (or /api/log/self) with "
                   "filters");
}

/* ---- /api/data ---- */

static void data_common(struct cm_httpd_req *r, struct mt_server *srv, int self,
                        enum mt_quota_data_group by)
{
    struct mt_who who;
    struct mt_quota_data_list l = {0};
    int64_t start, end;
    const char *username = NULL;
    cJSON *arr = NULL;
    int rc;

    if (mt_api_auth(srv, r, self ? MT_ROLE_COMMON : MT_ROLE_ADMIN, &who) ||
        mt_api_arg_int(r, "start_timestamp", 0, CM_JSON_INT_MAX, 0, &start) ||
        mt_api_arg_int(r, "end_timestamp", 0, CM_JSON_INT_MAX, 0, &end))
        return;
    if (end && start > end) {
        mt_api_fail(r, "start_timestamp is after end_timestamp");
        return;
    }
    if (self) { /* at most 30 days; no start: the last 30 days before the end */
        int64_t e = end ? end : cm_clock_wall_s(srv->clock);
        if (!start && e > SELF_DATA_SPAN)
            start = e - SELF_DATA_SPAN;
        if (e - start > SELF_DATA_SPAN) {
            mt_api_fail(r, "the time span may not exceed 30 days");
            return;
        }
    } else if (by == MT_QD_BY_MODEL) {
        username = mt_api_arg_str(r, "username");
    }
    rc = mt_store_quota_data_query(srv->store, by, start, end, username, self ? who.id : 0, &l);
    if (rc == CM_OK)
        rc = cm_json_new_array(&arr);
    for (size_t i = 0; rc == CM_OK && i < l.n; i++) {
        const struct mt_quota_data *q = &l.items[i];
        cJSON *o = NULL;
        rc = cm_json_new_object(&o);
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "id", q->id);
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "user_id", q->user_id);
        if (rc == CM_OK)
            rc = cm_json_set_string(o, "username", q->username ? q->username : "");
        if (rc == CM_OK)
            rc = cm_json_set_string(o, "model_name", q->model_name ? q->model_name : "");
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "created_at", q->created_at);
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "token_used", q->token_used);
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "count", q->count);
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "quota", q->quota);
        if (rc == CM_OK)
            rc = cm_json_adopt(arr, NULL, &o);
        cJSON_Delete(o);
    }
    mt_quota_data_list_cleanup(&l);
    if (rc) {
        cJSON_Delete(arr);
        mt_api_fail_status(r, 500, "cannot read the usage data: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, arr);
}

static void data_models(struct cm_httpd_req *r, void *ud)
{
    data_common(r, ud, 0, MT_QD_BY_MODEL);
}

static void data_users(struct cm_httpd_req *r, void *ud)
{
    data_common(r, ud, 0, MT_QD_BY_USER);
}

static void data_self(struct cm_httpd_req *r, void *ud)
{
    data_common(r, ud, 1, MT_QD_BY_MODEL);
}

int mt_api_log_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } R[] = {
        {"GET", "/api/log/", log_list},
        {"GET", "/api/log/self", log_self},
        {"GET", "/api/log/stat", log_stat},
        {"GET", "/api/log/self/stat", log_self_stat},
        {"DELETE", "/api/log/", log_delete},
        {"GET", "/api/log/search", log_deprecated},
        {"GET", "/api/log/self/search", log_deprecated},
        {"GET", "/api/data/", data_models},
        {"GET", "/api/data/users", data_users},
        {"GET", "/api/data/self", data_self},
    };
    int rc = CM_OK;
    for (size_t i = 0; rc == CM_OK && i < sizeof R / sizeof *R; i++)
        rc = cm_httpd_route(s, R[i].method, R[i].path, R[i].fn, srv);
    return rc;
}
