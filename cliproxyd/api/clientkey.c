/* SPDX-License-Identifier: MIT */
/*
 * clientkey.c - client key lookup and check for /v1 routes. Unlike CLIProxyAPI, an
 * empty `api-keys` list does not open the proxy to everyone: it answers 401 saying
 * what to configure (issue 3).
 */
#include "api/clientkey.h"

#include "cm/err.h"
#include "cm/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int cp_api_client_key(struct cm_httpd_req *r, const char **key, size_t *len)
{
    static const char *const hdrs[] = {"X-Api-Key", "X-Goog-Api-Key", NULL};
    static const char *const args[] = {"key", "auth_token", NULL};
    const char *v = cm_httpd_req_header(r, "Authorization");

    if (v && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7;
        while (*v == ' ')
            v++;
        if (*v)
            goto found;
    }
    for (int i = 0; hdrs[i]; i++)
        if ((v = cm_httpd_req_header(r, hdrs[i])) && *v)
            goto found;
    for (int i = 0; args[i]; i++)
        if ((v = cm_httpd_req_arg(r, args[i])) && *v)
            goto found;
    return CM_ERR_NOTFOUND;
found:
    *key = v;
    *len = strlen(v);
    return CM_OK;
}

static void mask_key(const char *k, size_t n, char *out, size_t outlen)
{
    char tmp[64];
    size_t m = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
    if (!out || !outlen)
        return;
    memcpy(tmp, k, m);
    tmp[m] = '\0';
    /* cm_log_mask keeps at most 4+4 characters of a key; short keys become "****" */
    if (n >= 16)
        snprintf(out, outlen, "%.4s****%s", tmp, k + n - 4);
    else
        snprintf(out, outlen, "****");
}

int cp_api_require_key_or_reply(struct cp_server *srv, struct cm_httpd_req *r, char *masked,
                                size_t masked_len)
{
    struct cp_config_ref *ref = cp_config_live_acquire(srv->cfg);
    const struct cp_config *cfg = ref ? cp_config_ref_get(ref) : NULL;
    const char *key = NULL;
    size_t len = 0;
    int rc = 1;

    if (!cfg || cfg->api_keys_count == 0) {
        cm_httpd_reply_error(r, 401, "authentication_error", "no_api_keys_configured",
                             "cliproxyd has no api-keys configured: add at least one key under "
                             "`api-keys:` in config.yaml and send it as `Authorization: Bearer "
                             "<key>`");
        goto out;
    }
    if (cp_api_client_key(r, &key, &len) != CM_OK) {
        cm_httpd_reply_error(r, 401, "authentication_error", "missing_api_key",
                             "Missing API key: send `Authorization: Bearer <key>` (or x-api-key)");
        goto out;
    }
    if (!cp_config_is_api_key(cfg, key, len)) {
        cm_httpd_reply_error(r, 401, "authentication_error", "invalid_api_key", "Invalid API key");
        goto out;
    }
    mask_key(key, len, masked, masked_len);
    rc = 0;
out:
    cp_config_ref_release(ref);
    return rc;
}
