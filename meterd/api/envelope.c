/* SPDX-License-Identifier: MIT */
/* envelope.c - NewAPI's envelope, pagination, parameters and bodies (see envelope.h). */
#include "api/envelope.h"

#include "api/admin_util.h"
#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"

#include <errno.h>
#include <inttypes.h>
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

void mt_api_reply_obj(struct cm_httpd_req *r, cJSON *root)
{
    reply_json(r, 200, root);
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

void mt_api_ok_data(struct cm_httpd_req *r, cJSON *data)
{
    if (!data)
        mt_api_fail_status(r, 500, "out of memory");
    else
        mt_api_ok(r, data);
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

void mt_api_fail_store(struct cm_httpd_req *r, int rc, const char *verb, const char *what,
                       int64_t id)
{
    if (rc == CM_ERR_NOTFOUND)
        mt_api_fail(r, "%s %" PRId64 " not found", what, id);
    else
        mt_api_fail_status(r, 500, "cannot %s %s %" PRId64 ": %s", verb, what, id, cm_err_str(rc));
}

/* @p v as a decimal integer the way NewAPI reads it (strtoll), or @p def when absent or bad */
static int64_t lenient_i64(const char *v, int64_t def)
{
    char *end;
    long long x;
    if (!v || !*v)
        return def;
    errno = 0;
    x = strtoll(v, &end, 10);
    return *end || errno ? def : (int64_t)x;
}

static int64_t arg_int(struct cm_httpd_req *r, const char *name, int64_t def)
{
    return lenient_i64(cm_httpd_req_arg(r, name), def);
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

int mt_api_body_ids(struct cm_httpd_req *r, const cJSON *body, const char *name, size_t max,
                    int64_t **ids, size_t *n)
{
    cJSON *arr = NULL;
    const cJSON *it;
    int64_t *v;
    size_t k = 0, cnt;
    struct cm_json_err je = {0};

    if (cm_json_get_array(body, name, &arr, &je) != CM_OK) {
        mt_api_fail(r, "%s", je.msg);
        return -1;
    }
    cnt = (size_t)cJSON_GetArraySize(arr);
    if (cnt == 0 || cnt > max) {
        mt_api_fail(r, "field '%s' must hold 1 to %zu ids", name, max);
        return -1;
    }
    v = cm_calloc(cnt, sizeof *v);
    if (!v) {
        mt_api_fail_status(r, 500, "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (cm_json_to_int64(it, 1, CM_JSON_INT_MAX, &v[k]) != CM_OK) {
            cm_free(v);
            mt_api_fail(r, "field '%s[%zu]' must be a positive integer id", name, k);
            return -1;
        }
        k++;
    }
    *ids = v;
    *n = k;
    return 0;
}

int64_t mt_api_param_id(struct cm_httpd_req *r, const char *name)
{
    int64_t x = lenient_i64(cm_httpd_req_param(r, name), 0);
    return x > 0 ? x : 0;
}

int mt_api_path_id(struct cm_httpd_req *r, const char *what, int64_t *id)
{
    const char *v;
    *id = mt_api_param_id(r, "id");
    if (*id)
        return 0;
    v = cm_httpd_req_param(r, "id");
    mt_api_fail(r, "invalid %s id \"%s\"", what, v ? v : "");
    return -1;
}

int mt_api_arg_int(struct cm_httpd_req *r, const char *name, int64_t min, int64_t max, int64_t def,
                   int64_t *out)
{
    int64_t v = 0;
    int rc = mt_parse_i64(cm_httpd_req_arg(r, name), &v);
    if (rc == CM_ERR_NOTFOUND) {
        *out = def;
        return 0;
    }
    if (rc || v < min || v > max) {
        mt_api_fail(r, "parameter %s must be an integer from %" PRId64 " to %" PRId64, name, min,
                    max);
        return -1;
    }
    *out = v;
    return 0;
}

const char *mt_api_arg_str(struct cm_httpd_req *r, const char *name)
{
    const char *v = cm_httpd_req_arg(r, name);
    return v ? v : "";
}
