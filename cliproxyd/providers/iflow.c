/* SPDX-License-Identifier: MIT */
/* iflow.c - iFlow upstream: signed headers, body rules, outcomes (see iflow.h). */
#include "providers/iflow.h"

#include "providers/openai_compat.h"

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_SESSION 256

void cp_iflow_session_id_from(const unsigned char rnd[16], char out[CP_IFLOW_SESSION_SIZE])
{
    unsigned char h[16];
    memcpy(h, rnd, 16);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x40); /* version 4, variant 10 */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, CP_IFLOW_SESSION_SIZE,
             "session-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
             h[14], h[15]);
}

int cp_iflow_session_id(char out[CP_IFLOW_SESSION_SIZE])
{
    unsigned char r[16];
    int rc = cm_crypto_random_bytes(r, sizeof r);
    if (rc)
        return rc;
    cp_iflow_session_id_from(r, out);
    return CM_OK;
}

int cp_iflow_signature(const char *api_key, const char *session_id, int64_t ts_ms,
                       char out[CP_IFLOW_SIG_SIZE])
{
    unsigned char mac[CM_CRYPTO_SHA256_LEN];
    char msg[MAX_SESSION + 64];
    int n;

    if (!api_key || !*api_key || !session_id || !*session_id || !out)
        return CM_ERR_INVAL;
    if (strlen(session_id) > MAX_SESSION)
        return CM_ERR_LIMIT;
    n = snprintf(msg, sizeof msg, "iFlow-Cli:%s:%" PRId64, session_id, ts_ms);
    cm_crypto_hmac_sha256(api_key, strlen(api_key), msg, (size_t)n, mac);
    return cm_crypto_hex_encode(mac, sizeof mac, out, CP_IFLOW_SIG_SIZE);
}

int cp_iflow_build(const char *base, const char *api_key, bool stream, const char *session_id,
                   int64_t now_ms, const char *const *hdr_names, const char *const *hdr_values,
                   size_t n_hdrs, struct cp_upreq *out)
{
    struct cp_upreq r = {0};
    struct cm_buf auth;
    char sig[CP_IFLOW_SIG_SIZE], ts[32];
    size_t bl;
    int rc;

    cm_buf_init(&auth, 16 * 1024);
    if (!base || !*base || !out || (n_hdrs && (!hdr_names || !hdr_values))) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cp_iflow_signature(api_key, session_id, now_ms, sig);
    if (rc)
        goto out;
    snprintf(ts, sizeof ts, "%" PRId64, now_ms);
    bl = strlen(base);
    if ((rc = cp_upreq_url(&r, base,
                           base[bl - 1] == '/' ? "chat/completions" : "/chat/completions")) ||
        (rc = cm_buf_appendf(&auth, "Bearer %s", api_key)) ||
        (rc = cp_upreq_add(&r, "Content-Type", "application/json")) ||
        (rc = cp_upreq_add(&r, "Authorization", auth.data)) ||
        (rc = cp_upreq_add(&r, "User-Agent", CP_IFLOW_UA)) ||
        (rc = cp_upreq_add(&r, "session-id", session_id)) ||
        (rc = cp_upreq_add(&r, "x-iflow-timestamp", ts)) ||
        (rc = cp_upreq_add(&r, "x-iflow-signature", sig)) ||
        (rc = cp_upreq_add(&r, "Accept", stream ? "text/event-stream" : "application/json")))
        goto out;
    for (size_t i = 0; i < n_hdrs && !rc; i++)
        rc = cp_upreq_set(&r, hdr_names[i], hdr_values[i]);
    if (rc)
        goto out;
    *out = r;
    memset(&r, 0, sizeof r);
out:
    if (auth.data)
        cm_crypto_memzero(auth.data, auth.len);
    cm_buf_cleanup(&auth);
    cp_upreq_cleanup(&r);
    return rc;
}

static int placeholder_tool(cJSON *tools)
{
    static const char tool[] = "{\"type\":\"function\",\"function\":{\"name\":\"noop\","
                               "\"description\":\"Placeholder tool\",\"parameters\":"
                               "{\"type\":\"object\",\"properties\":{}}}}";
    cJSON *t = NULL;
    int rc = cm_json_parse(tool, sizeof tool - 1, NULL, &t, NULL);
    if (rc)
        return rc == CM_ERR_NOMEM ? CM_ERR_NOMEM : CM_ERR_INTERNAL;
    return cm_json_adopt(tools, NULL, &t);
}

int cp_iflow_prepare(cJSON *chat, bool stream)
{
    cJSON *tools, *effort, *kw;
    int rc = CM_OK;
    bool enable;

    if (!cJSON_IsObject(chat))
        return CM_ERR_INVAL;
    tools = cJSON_GetObjectItemCaseSensitive(chat, "tools");
    if (stream && cJSON_IsArray(tools) && !tools->child)
        rc = placeholder_tool(tools);
    if (rc)
        return rc;
    effort = cJSON_GetObjectItemCaseSensitive(chat, "reasoning_effort");
    if (!cJSON_IsString(effort))
        return CM_OK;
    enable = strcmp(effort->valuestring, "none") != 0;
    kw = cJSON_GetObjectItemCaseSensitive(chat, "chat_template_kwargs");
    if (!cJSON_IsObject(kw)) {
        rc = cm_json_new_object(&kw);
        if (!rc)
            rc = cm_json_adopt(chat, "chat_template_kwargs", &kw);
        if (rc)
            return rc;
        kw = cJSON_GetObjectItemCaseSensitive(chat, "chat_template_kwargs");
    }
    rc = cm_json_set_bool(kw, "enable_thinking", enable);
    if (!rc)
        cJSON_DeleteItemFromObjectCaseSensitive(chat, "reasoning_effort");
    return rc;
}

void cp_iflow_outcome(long status, const char *body, size_t len, const char *retry_after,
                      int64_t now_s, struct cp_sched_outcome *o)
{
    int64_t v;
    (void)body;
    (void)len;
    memset(o, 0, sizeof *o);
    o->status = (int)status;
    if (status == 400 || status == 422)
        o->request_scoped = 1;
    if (status == 429 && retry_after && cp_openai_retry_after(retry_after, now_s, &v) == CM_OK) {
        o->has_hint = 1;
        o->retry_after_s = v;
    }
}
