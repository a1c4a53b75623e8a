/* SPDX-License-Identifier: MIT */
/* envelope.c - NewAPI's envelope, pagination and headers (see envelope.h). */
#include "api/envelope.h"

#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mt_api_headers(struct cm_httpd_req *r)
{
    cm_httpd_add_header(r, "X-Oneapi-Request-Id", cm_httpd_req_id(r));
    cm_httpd_add_header(r, "X-New-Api-Version", MT_API_VERSION);
}

static void reply_json(struct cm_httpd_req *r, unsigned status, cJSON *root)
{
    char *txt = NULL;
    size_t len = 0;
    mt_api_headers(r);
    if (!root || cm_json_print(root, &txt, &len) != CM_OK) {
        static const char oom[] = "{\"success\":false,\"message\":\"out of memory\"}";
        cJSON_Delete(root);
        cm_httpd_reply(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    cJSON_Delete(root);
    cm_httpd_reply_take(r, status, "application/json", txt, len);
}

void mt_api_ok(struct cm_httpd_req *r, cJSON *data)
{
    cJSON *root = cJSON_CreateObject();
    if (root &&
        (cm_json_set_bool(root, "success", true) || cm_json_set_string(root, "message", "") ||
         (data && cm_json_set_item(root, "data", data)))) {
        cJSON_Delete(root);
        root = NULL;
    } else if (!root) {
        cJSON_Delete(data);
    }
    reply_json(r, 200, root);
}

void mt_api_ok_msg(struct cm_httpd_req *r, const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    if (root &&
        (cm_json_set_bool(root, "success", true) || cm_json_set_string(root, "message", msg))) {
        cJSON_Delete(root);
        root = NULL;
    }
    reply_json(r, 200, root);
}

static void vfail(struct cm_httpd_req *r, unsigned status, const char *fmt, va_list ap)
{
    char msg[512];
    cJSON *root = cJSON_CreateObject();
    vsnprintf(msg, sizeof msg, fmt, ap);
    cm_log_info(cm_httpd_req_id(r), "api: %s %s -> %u %s", cm_httpd_req_method(r),
                cm_httpd_req_path(r), status, msg);
    if (root &&
        (cm_json_set_bool(root, "success", false) || cm_json_set_string(root, "message", msg))) {
        cJSON_Delete(root);
        root = NULL;
    }
    reply_json(r, status, root);
}

void mt_api_fail(struct cm_httpd_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(r, 200, fmt, ap);
    va_end(ap);
}

void mt_api_fail_status(struct cm_httpd_req *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(r, status, fmt, ap);
    va_end(ap);
}

static int64_t arg_int(struct cm_httpd_req *r, const char *name, int64_t def)
{
    const char *v = cm_httpd_req_arg(r, name);
    char *end;
    long long x;
    if (!v || !*v)
        return def;
    errno = 0;
    x = strtoll(v, &end, 10);
    return *end || errno ? def : (int64_t)x;
}

void mt_api_page(struct cm_httpd_req *r, struct mt_page *p)
{
    int64_t size = arg_int(r, "page_size", 0);
    if (size <= 0)
        size = arg_int(r, "ps", 0);
    if (size <= 0)
        size = arg_int(r, "size", 0);
    if (size <= 0)
        size = 10;
    if (size > MT_API_PAGE_MAX)
        size = MT_API_PAGE_MAX;
    p->page = arg_int(r, "p", 1);
    if (p->page < 1)
        p->page = 1;
    if (p->page > INT64_MAX / MT_API_PAGE_MAX)
        p->page = INT64_MAX / MT_API_PAGE_MAX;
    p->size = (int)size;
    p->offset = (p->page - 1) * size;
}

cJSON *mt_api_paged(const struct mt_page *p, int64_t total, cJSON *items)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !items || cm_json_set_int64(o, "page", p->page) ||
        cm_json_set_int64(o, "page_size", p->size) || cm_json_set_int64(o, "total", total) ||
        cm_json_set_item(o, "items", items)) {
        if (!o || cJSON_GetObjectItemCaseSensitive(o, "items") != items)
            cJSON_Delete(items);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int mt_api_body(struct cm_httpd_req *r, cJSON **out)
{
    struct cm_json_parse_opts po = {.max_depth = 32, .max_size = 4u << 20};
    struct cm_json_err je = {0};
    size_t len = 0;
    const char *b = cm_httpd_req_body(r, &len);
    *out = NULL;
    if (cm_json_parse(b ? b : "", len, &po, out, &je) != CM_OK || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        mt_api_fail(r, "invalid request body: %s", je.msg[0] ? je.msg : "expected a JSON object");
        return -1;
    }
    return 0;
}

int64_t mt_api_param_id(struct cm_httpd_req *r, const char *name)
{
    const char *v = cm_httpd_req_param(r, name);
    char *end;
    long long x;
    if (!v || !*v)
        return 0;
    errno = 0;
    x = strtoll(v, &end, 10);
    return *end || errno || x <= 0 ? 0 : (int64_t)x;
}
