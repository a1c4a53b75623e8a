/* SPDX-License-Identifier: MIT */
/*
 * api.c - blocking HTTP with libcurl's easy API and NewAPI's envelope (see api.h). One
 * easy handle is reused for every request, so a command's calls share one connection.
 */
#include "api.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/health.h"
#include "cm/json.h"
#include "cm/log.h"
#include "table.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#define TRACE_BODY_MAX 4096

int mc_api_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? CM_OK : CM_ERR_INTERNAL;
}

void mc_api_global_cleanup(void)
{
    curl_global_cleanup();
}

int mc_api_init(struct mc_api *a, const char *base, const char *token, int64_t user, long timeout_s)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    a->token = token;
    a->user = user;
    a->timeout_s = timeout_s > 0 ? timeout_s : 30;
    a->_curl = curl_easy_init();
    return a->_curl ? CM_OK : CM_ERR_NOMEM;
}

void mc_api_cleanup(struct mc_api *a)
{
    if (a->_curl)
        curl_easy_cleanup(a->_curl);
    memset(a, 0, sizeof *a);
}

void mc_http_resp_init(struct mc_http_resp *r)
{
    memset(r, 0, sizeof *r);
    cm_buf_init(&r->body, MC_API_BODY_MAX);
}

void mc_http_resp_cleanup(struct mc_http_resp *r)
{
    if (r->body.data)
        cm_crypto_memzero(r->body.data, r->body.len); /* may hold a key (token create) */
    cm_buf_cleanup(&r->body);
    memset(r, 0, sizeof *r);
}

/* error message: printf, then masked and stripped of control characters */
static void set_err(struct mc_api_err *e, int rc, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_err(struct mc_api_err *e, int rc, long status, const char *fmt, ...)
{
    char raw[MC_API_MSG_MAX], masked[MC_API_MSG_MAX];
    struct cm_buf b;
    va_list ap;

    if (!e)
        return;
    e->rc = rc;
    e->status = status;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    cm_log_mask(raw, strlen(raw), masked, sizeof masked);
    cm_buf_init(&b, sizeof e->msg - 1);
    if (mc_sanitize_append(&b, masked) == CM_OK && b.data)
        snprintf(e->msg, sizeof e->msg, "%s", b.data);
    else
        snprintf(e->msg, sizeof e->msg, "%s", masked);
    cm_buf_cleanup(&b);
}

/* one masked trace line "<prefix><text>" (text cut at TRACE_BODY_MAX) */
static void trace(FILE *f, const char *prefix, const char *text, size_t len)
{
    char masked[TRACE_BODY_MAX + 64];
    size_t n = len > TRACE_BODY_MAX ? TRACE_BODY_MAX : len;
    struct cm_buf b;

    if (!f)
        return;
    cm_log_mask(text, n, masked, sizeof masked);
    cm_buf_init(&b, sizeof masked * 2);
    (void)mc_sanitize_append(&b, masked);
    fprintf(f, "%s%s%s\n", prefix, b.data ? b.data : "", n < len ? " ..." : "");
    cm_buf_cleanup(&b);
}

struct xfer {
    struct mc_http_resp *r;
    int too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    if (cm_buf_append(&x->r->body, p, size * n) != CM_OK) {
        x->too_big = 1;
        return 0;
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    static const char name[] = "x-oneapi-request-id:";
    struct xfer *x = ud;
    size_t len = size * n, k = sizeof name - 1;

    if (len > k && strncasecmp(p, name, k) == 0) {
        const char *v = p + k, *e = p + len;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
            e--;
        if ((size_t)(e - v) < sizeof x->r->request_id) {
            memcpy(x->r->request_id, v, (size_t)(e - v));
            x->r->request_id[e - v] = '\0';
        }
    }
    return len;
}

static int add_header(struct curl_slist **hl, const char *line)
{
    struct curl_slist *t = curl_slist_append(*hl, line);
    if (!t)
        return CM_ERR_NOMEM;
    *hl = t;
    return CM_OK;
}

int mc_http(struct mc_api *a, const char *method, const char *url, const char *const *headers,
            const char *body, struct mc_http_resp *out, struct mc_api_err *err)
{
    CURL *h = a->_curl;
    struct curl_slist *hl = NULL, *t;
    char ebuf[CURL_ERROR_SIZE] = "";
    struct xfer x = {out, 0};
    CURLcode cc;
    long connect_s = a->timeout_s < 10 ? a->timeout_s : 10;
    int rc = CM_OK;

    cm_buf_reset(&out->body);
    out->status = 0;
    out->request_id[0] = '\0';
    for (size_t i = 0; !rc && headers && headers[i]; i++)
        rc = add_header(&hl, headers[i]);
    if (!rc && body)
        rc = add_header(&hl, "Content-Type: application/json");
    if (!rc)
        rc = add_header(&hl, "Accept: application/json");
    if (rc)
        goto out;

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, a->timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_s);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "meterctl/" CM_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (strcmp(method, "GET") == 0 && !body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    }
    if (a->trace) {
        fprintf(a->trace, "> %s %s\n", method, url);
        for (t = hl; t; t = t->next)
            trace(a->trace, "> ", t->data, strlen(t->data));
        if (body)
            trace(a->trace, "> ", body, strlen(body));
    }

    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &out->seconds);
    if (x.too_big) {
        set_err(err, CM_ERR_LIMIT, out->status, "%s %s: the answer is larger than %zu MiB", method,
                url, MC_API_BODY_MAX >> 20);
        rc = CM_ERR_LIMIT;
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = cc == CURLE_OPERATION_TIMEDOUT ? CM_ERR_TIMEOUT : CM_ERR_UPSTREAM;
        set_err(err, rc, 0, "cannot reach %s: %s", url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
        goto out;
    }
    if (a->trace) {
        fprintf(a->trace, "< HTTP %ld (%zu bytes, %.3f s)%s%s\n", out->status, out->body.len,
                out->seconds, out->request_id[0] ? ", request id " : "", out->request_id);
        if (out->body.len)
            trace(a->trace, "< ", out->body.data, out->body.len);
    }
out:
    if (rc == CM_ERR_NOMEM)
        set_err(err, rc, 0, "out of memory");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    for (t = hl; t; t = t->next)
        cm_crypto_memzero(t->data, strlen(t->data)); /* the Authorization line */
    curl_slist_free_all(hl);
    return rc;
}

static const char *message_of(const cJSON *root)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");

    if (cJSON_IsString(m) && *m->valuestring)
        return m->valuestring;
    if (cJSON_IsObject(e))
        m = cJSON_GetObjectItemCaseSensitive(e, "message");
    else
        m = e;
    return cJSON_IsString(m) && *m->valuestring ? m->valuestring : NULL;
}

static int is_auth_message(const char *m)
{
    return m && (strncasecmp(m, "Unauthorized", 12) == 0 || strstr(m, "access token") ||
                 strstr(m, "New-Api-User"));
}

int mc_api_envelope(long status, const char *body, size_t len, unsigned flags, cJSON **root,
                    struct mc_api_err *err)
{
    cJSON *r = NULL;
    const cJSON *ok;
    const char *msg;
    int rc;

    *root = NULL;
    rc = cm_json_parse(body ? body : "", body ? len : 0, NULL, &r, NULL);
    if (rc == CM_ERR_NOMEM) {
        set_err(err, rc, status, "out of memory");
        return rc;
    }
    if (rc || !cJSON_IsObject(r)) {
        cJSON_Delete(r);
        if (status == 404)
            rc = CM_ERR_NOTFOUND;
        else if (status == 401 || status == 403)
            rc = CM_ERR_AUTH;
        else if (status < 200 || status > 299)
            rc = CM_ERR_UPSTREAM;
        else
            rc = CM_ERR_PARSE;
        set_err(err, rc, status, "HTTP %ld: %s%.*s", status,
                rc == CM_ERR_PARSE ? "the answer is not NewAPI JSON: " : "",
                len ? (int)(len > 200 ? 200 : len) : 10, len ? body : "empty body");
        return rc;
    }
    msg = message_of(r);
    if (status < 200 || status > 299) {
        rc = status == 401 || status == 403 ? CM_ERR_AUTH
             : status == 404                ? CM_ERR_NOTFOUND
                                            : CM_ERR_UPSTREAM;
        set_err(err, rc, status, "HTTP %ld: %s", status, msg ? msg : "(no message)");
        cJSON_Delete(r);
        return rc;
    }
    ok = cJSON_GetObjectItemCaseSensitive(r, "success");
    if (!(flags & MC_API_RAW) && !cJSON_IsTrue(ok)) {
        rc = is_auth_message(msg) ? CM_ERR_AUTH : CM_ERR_DENIED;
        set_err(err, rc, status, "HTTP %ld: %s", status,
                msg                ? msg
                : cJSON_IsBool(ok) ? "success false, no message"
                                   : "the answer has no \"success\" member");
        cJSON_Delete(r);
        return rc;
    }
    *root = r;
    return CM_OK;
}

int mc_api_request(struct mc_api *a, const char *method, const char *path, const cJSON *body,
                   unsigned flags, cJSON **root, struct mc_api_err *err)
{
    struct mc_http_resp resp;
    struct cm_buf url, auth, user;
    const char *hdrs[3] = {0};
    char *text = NULL;
    int rc;

    *root = NULL;
    mc_http_resp_init(&resp);
    cm_buf_init(&url, 8192);
    cm_buf_init(&auth, 4096);
    cm_buf_init(&user, 64);
    rc = cm_buf_appendf(&url, "%s%s", a->base, path);
    if (!rc)
        rc = cm_buf_appendf(&user, "New-Api-User: %lld", (long long)a->user);
    if (!rc && a->token)
        rc = cm_buf_appendf(&auth, "Authorization: Bearer %s", a->token);
    if (!rc && body)
        rc = cm_json_print(body, &text, NULL);
    if (rc) {
        set_err(err, rc, 0, "%s %s: %s", method, path, cm_err_str(rc));
        goto out;
    }
    hdrs[0] = user.data;
    hdrs[1] = a->token ? auth.data : NULL;
    if ((rc = mc_http(a, method, url.data, hdrs, text, &resp, err)) != CM_OK)
        goto out;
    rc = mc_api_envelope(resp.status, resp.body.data, resp.body.len, flags, root, err);
out:
    if (auth.data)
        cm_crypto_memzero(auth.data, auth.len);
    if (text) {
        cm_crypto_memzero(text, strlen(text));
        cm_free(text);
    }
    cm_buf_cleanup(&auth);
    cm_buf_cleanup(&user);
    cm_buf_cleanup(&url);
    mc_http_resp_cleanup(&resp);
    return rc;
}

int mc_api_list(struct mc_api *a, const char *path, size_t max_items, cJSON **items,
                struct mc_api_err *err)
{
    const int page_size = 100;
    cJSON *all = cJSON_CreateArray(), *root = NULL;
    char sep = strchr(path, '?') ? '&' : '?';
    size_t got = 0;
    int rc = all ? CM_OK : CM_ERR_NOMEM;

    *items = NULL;
    for (int64_t page = 1; !rc && page <= 10000; page++) {
        struct cm_buf p;
        cJSON *data, *arr, *it;
        int64_t total = -1;
        int n = 0;

        cm_buf_init(&p, 8192);
        rc = cm_buf_appendf(&p, "%s%cp=%lld&page_size=%d", path, sep, (long long)page, page_size);
        if (!rc)
            rc = mc_api_request(a, "GET", p.data, NULL, 0, &root, err);
        cm_buf_cleanup(&p);
        if (rc)
            break;
        data = cJSON_GetObjectItemCaseSensitive(root, "data");
        arr = cJSON_IsArray(data) ? data : cJSON_GetObjectItemCaseSensitive(data, "items");
        if (cJSON_IsObject(data))
            (void)cm_json_opt_int64(data, "total", 0, CM_JSON_INT_MAX, -1, &total, NULL);
        if (!cJSON_IsArray(arr)) {
            if (cJSON_IsNull(arr) || (!arr && cJSON_IsObject(data)) || cJSON_IsNull(data))
                break; /* an empty list may come back as null */
            rc = CM_ERR_PARSE;
            set_err(err, rc, 200, "GET %s: data is neither a list nor a page of items", path);
            break;
        }
        while ((it = cJSON_DetachItemFromArray(arr, 0)) != NULL) {
            n++;
            if (got < max_items) {
                cJSON_AddItemToArray(all, it);
                got++;
            } else {
                cJSON_Delete(it);
            }
        }
        cJSON_Delete(root);
        root = NULL;
        if (n < page_size || got >= max_items || (total >= 0 && (int64_t)got >= total))
            break;
    }
    cJSON_Delete(root);
    if (rc) {
        cJSON_Delete(all);
        if (rc == CM_ERR_NOMEM)
            set_err(err, rc, 0, "out of memory");
        return rc;
    }
    *items = all;
    return CM_OK;
}

int mc_api_escape(const char *s, char **out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), k = 0;
    char *r = cm_malloc(n * 3 + 1);

    if (!r)
        return CM_ERR_NOMEM;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            r[k++] = (char)*p;
        } else {
            r[k++] = '%';
            r[k++] = hex[*p >> 4];
            r[k++] = hex[*p & 15];
        }
    }
    r[k] = '\0';
    *out = r;
    return CM_OK;
}
