/* SPDX-License-Identifier: MIT */
/* codex.c - Codex upstream request shape and error classification (see codex.h). */
#include "providers/codex.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cp_codex_build(const char *base_url, const struct cp_authstore_cred *c, const char *session_id,
                   const char *client_originator, const char *client_ua, struct cp_upreq *out)
{
    struct cp_upreq r = {0};
    char auth[8192];
    int rc = CM_ERR_NOMEM;

    if (!c || !c->access_token || !*c->access_token)
        return CM_ERR_INVAL;
    if ((rc = cp_upreq_url(&r, base_url, "/responses")))
        goto out;
    if ((size_t)snprintf(auth, sizeof auth, "Bearer %s", c->access_token) >= sizeof auth) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    if ((rc = cp_upreq_add(&r, "Content-Type", "application/json")) ||
        (rc = cp_upreq_add(&r, "Authorization", auth)) || (rc = cp_upreq_add(&r, "Accept", "text/event-stream")) ||
        (rc = cp_upreq_add(&r, "Connection", "Keep-Alive")) ||
        /* an API key (codex-api-key) sends Originator only when its client did */
        ((client_originator && *client_originator) || !(c->af && c->af->key_entry)
             ? (rc = cp_upreq_add(&r, "Originator",
                                  client_originator && *client_originator ? client_originator
                                                                          : "codex-tui"))
             : 0) ||
        (rc = cp_upreq_add(&r, "User-Agent",
                  client_ua && strncmp(client_ua, "codex", 5) == 0 ? client_ua
                                                                   : CP_CODEX_DEFAULT_UA)) ||
        (rc = cp_upreq_add(&r, "Session_id", session_id)))
        goto out;
    if (c->account_id && *c->account_id && (rc = cp_upreq_add(&r, "Chatgpt-Account-Id", c->account_id)))
        goto out;
    for (size_t i = 0; c->af && i < c->af->n_headers; i++)
        if ((rc = cp_upreq_add(&r, c->af->header_names[i], c->af->header_values[i])))
            goto out;
    *out = r;
    memset(&r, 0, sizeof r);
    rc = CM_OK;
out:
    cm_crypto_memzero(auth, sizeof auth);
    cp_upreq_cleanup(&r);
    return rc;
}

void cp_codex_session_id(const char *key, size_t len, char out[37])
{
    static const char pfx[] = "cli-proxy-api:codex:prompt-cache:";
    unsigned char h[CM_CRYPTO_SHA256_LEN];
    char buf[512];
    size_t n = sizeof pfx - 1 + (len < sizeof buf - sizeof pfx ? len : sizeof buf - sizeof pfx);

    memcpy(buf, pfx, sizeof pfx - 1);
    memcpy(buf + sizeof pfx - 1, key, n - (sizeof pfx - 1));
    cm_crypto_sha256(buf, n, h);
    cm_crypto_memzero(buf, sizeof buf);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x50); /* version nibble 5, variant 10 */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
             h[14], h[15]);
}

void cp_codex_outcome(long status, const char *body, size_t len, const char *retry_after,
                      int64_t now_s, struct cp_sched_outcome *o)
{
    cJSON *root = NULL, *err = NULL;
    int64_t v;

    memset(o, 0, sizeof *o);
    o->status = (int)status;
    if (body && len && cm_json_parse(body, len, NULL, &root, NULL) == CM_OK)
        err = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (body && len &&
        (memmem(body, len, "model is at capacity", 20) ||
         memmem(body, len, "selected model is at capacity", 29)))
        o->status = 429;
    if (err && cJSON_IsObject(err)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(err, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "usage_limit_reached") == 0) {
            o->status = 429;
            if (cm_json_opt_int64(err, "resets_at", 0, INT64_MAX, 0, &v, NULL) == CM_OK &&
                v > now_s) {
                o->has_hint = 1;
                o->retry_after_s = v - now_s;
            } else if (cm_json_opt_int64(err, "resets_in_seconds", 0, INT64_MAX, 0, &v, NULL) ==
                           CM_OK &&
                       v > 0) {
                o->has_hint = 1;
                o->retry_after_s = v;
            }
        }
        if (status == 400 && cJSON_IsString(t) &&
            strcmp(t->valuestring, "invalid_request_error") == 0)
            o->request_scoped = 1;
    }
    if (status == 422)
        o->request_scoped = 1;
    if (!o->has_hint && retry_after && *retry_after) {
        char *end;
        long s = strtol(retry_after, &end, 10);
        if (!*end && s > 0) {
            o->has_hint = 1;
            o->retry_after_s = s;
        }
    }
    cJSON_Delete(root);
}
