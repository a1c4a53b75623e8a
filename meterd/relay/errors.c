/* SPDX-License-Identifier: MIT */
/* errors.c - request ids and error bodies of the relay (see errors.h). */
#include "relay/errors.h"

#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/health.h"
#include "cm/json.h"
#include "cm/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void mt_relay_request_id(char out[MT_RELAY_RID_MAX])
{
    static const char build[] = CM_VERSION;
    char rnd[9] = "00000000", hash[CM_CRYPTO_SHA256_HEX_SIZE];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    (void)cm_crypto_random_key(rnd, sizeof rnd, 8);
    cm_crypto_sha256_hex(build, sizeof build - 1, hash);
    snprintf(out, MT_RELAY_RID_MAX, "%04d%02d%02d%02d%02d%02d%ld%.8s%s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts.tv_nsec, hash,
             rnd);
}

int mt_relay_error_body(enum mt_relay_err_shape shape, const char *type, const char *code,
                        const char *msg, const char *rid, char **out, size_t *len)
{
    char text[1200];
    cJSON *root = NULL, *e = NULL;
    int rc;

    if (rid)
        snprintf(text, sizeof text, "%s (request id: %s)", msg ? msg : "", rid);
    else
        snprintf(text, sizeof text, "%s", msg ? msg : "");
    rc = cm_json_new_object(&root);
    if (!rc)
        rc = cm_json_new_object(&e);
    if (rc)
        goto out;
    if (shape == MT_RELAY_ERR_CLAUDE) {
        rc = cm_json_set_string(root, "type", "error");
        if (!rc)
            rc = cm_json_set_string(e, "type", type ? type : "new_api_error");
        if (!rc)
            rc = cm_json_set_string(e, "message", text);
    } else {
        rc = cm_json_set_string(e, "message", text);
        if (!rc)
            rc = cm_json_set_string(e, "type", type ? type : "new_api_error");
        if (!rc && shape == MT_RELAY_ERR_OPENAI)
            rc = cm_json_set_string(e, "param", "");
        if (!rc)
            rc = cm_json_set_string(e, "code", code ? code : "");
    }
    if (!rc)
        rc = cm_json_adopt(root, "error", &e);
    if (!rc)
        rc = cm_json_print(root, out, len);
out:
    cJSON_Delete(e);
    cJSON_Delete(root);
    return rc;
}

void mt_relay_reply_error(struct cm_httpd_req *r, const char *rid, enum mt_relay_err_shape shape,
                          unsigned status, const char *type, const char *code, const char *fmt, ...)
{
    char msg[1024], *body = NULL;
    size_t len = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cm_log_write(status >= 500 ? CM_LOG_ERROR : CM_LOG_WARN, cm_httpd_req_id(r),
                 "relay: %s %s -> %u %s%s%s (request id %s)", cm_httpd_req_method(r),
                 cm_httpd_req_path(r), status, code && *code ? code : "", code && *code ? ": " : "",
                 msg, rid ? rid : "-");
    if (mt_relay_error_body(shape, type, code, msg, rid, &body, &len) != CM_OK) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"new_api_error\",\"code\":\"\"}}";
        cm_httpd_reply(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    cm_httpd_reply_take(r, status, "application/json", body, len);
}
