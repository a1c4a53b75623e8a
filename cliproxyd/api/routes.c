/* SPDX-License-Identifier: MIT */
/*
 * routes.c - cliproxyd's route table and its small routes: GET /healthz, GET / (what
 * CLIProxyAPI answers there) and GET /v1/models (OpenAI shape; Claude shape for clients
 * that send `anthropic-version` or a `claude-cli` user agent), behind the client key.
 * GET /v1beta/models (Gemini shape, spec 6.3) lists the same models. The inference
 * routes live in relay.c.
 */
#include "api/routes.h"

#include "api/clientkey.h"
#include "api/relay.h"
#include "cm/err.h"
#include "cm/health.h"
#include "cm/json.h"

#include <stdio.h>
#include <string.h>

#define MAX_MODELS 512

static void root(struct cm_httpd_req *r, void *ud)
{
    static const char body[] =
        "{\"message\":\"CLI Proxy API Server\",\"endpoints\":[\"POST /v1/chat/completions\","
        "\"POST /v1/completions\",\"GET /v1/models\"]}";
    (void)ud;
    cm_httpd_reply(r, 200, "application/json", body, sizeof body - 1);
}

static int want_claude_shape(struct cm_httpd_req *r)
{
    const char *ua = cm_httpd_req_header(r, "User-Agent");
    return cm_httpd_req_header(r, "anthropic-version") != NULL ||
           (ua && strncmp(ua, "claude-cli", 10) == 0);
}

static void models(struct cm_httpd_req *r, void *ud)
{
    struct cp_server *srv = ud;
    const char *ids[MAX_MODELS], *owners[MAX_MODELS];
    size_t n = 0;
    cJSON *root_obj = NULL, *data = NULL;
    char *out = NULL;
    size_t len = 0;
    int claude, rc;

    if (cp_api_require_key_or_reply(srv, r, NULL, 0))
        return;
    if (srv->models)
        n = srv->models(srv->models_ud, ids, owners, MAX_MODELS);
    claude = want_claude_shape(r);
    rc = cm_json_new_object(&root_obj);
    if (!rc)
        rc = cm_json_new_array(&data);
    for (size_t i = 0; !rc && i < n; i++) {
        cJSON *m = NULL;
        rc = cm_json_new_object(&m);
        if (!rc)
            rc = cm_json_set_string(m, "id", ids[i]);
        if (!rc)
            rc = cm_json_set_string(m, "object", "model");
        if (!rc)
            rc = cm_json_set_string(m, "owned_by", owners[i]);
        if (!rc && claude) {
            rc = cm_json_set_string(m, "type", "model");
            if (!rc)
                rc = cm_json_set_string(m, "display_name", ids[i]);
        } else if (!rc) {
            rc = cm_json_set_int64(m, "created", 1700000000);
        }
        if (rc) {
            cJSON_Delete(m);
            break;
        }
        rc = cm_json_set_item(data, NULL, m);
    }
    if (!rc && claude) {
        rc = cm_json_adopt(root_obj, "data", &data);
        if (!rc)
            rc = cm_json_set_bool(root_obj, "has_more", false);
        if (!rc && n)
            rc = cm_json_set_string(root_obj, "first_id", ids[0]);
        if (!rc && n)
            rc = cm_json_set_string(root_obj, "last_id", ids[n - 1]);
    } else if (!rc) {
        rc = cm_json_set_string(root_obj, "object", "list");
        if (!rc)
            rc = cm_json_adopt(root_obj, "data", &data);
    }
    if (!rc)
        rc = cm_json_print(root_obj, &out, &len);
    if (rc)
        cm_httpd_reply_error(r, 503, "server_error", NULL, "cannot build the model list: %s",
                             cm_err_str(rc));
    else
        cm_httpd_reply_take(r, 200, "application/json", out, len);
    cJSON_Delete(data);
    cJSON_Delete(root_obj);
}

/* one Gemini model entry (spec 6.3) */
static int gemini_model(cJSON *arr, const char *id)
{
    char name[300];
    cJSON *m = NULL, *methods = NULL;
    int rc = cm_json_new_object(&m);
    snprintf(name, sizeof name, "models/%s", id);
    if (!rc)
        rc = cm_json_set_string(m, "name", name);
    if (!rc)
        rc = cm_json_set_string(m, "version", "001");
    if (!rc)
        rc = cm_json_set_string(m, "displayName", id);
    if (!rc)
        rc = cm_json_set_string(m, "description", id);
    if (!rc)
        rc = cm_json_set_int64(m, "inputTokenLimit", 1048576);
    if (!rc)
        rc = cm_json_set_int64(m, "outputTokenLimit", 65536);
    if (!rc)
        rc = cm_json_new_array(&methods);
    if (!rc)
        rc = cm_json_set_item(methods, NULL, cJSON_CreateString("generateContent"));
    if (!rc)
        rc = cm_json_set_item(methods, NULL, cJSON_CreateString("streamGenerateContent"));
    if (!rc)
        rc = cm_json_set_item(methods, NULL, cJSON_CreateString("countTokens"));
    if (!rc)
        rc = cm_json_adopt(m, "supportedGenerationMethods", &methods);
    if (!rc)
        rc = cm_json_set_item(arr, NULL, m);
    if (rc) {
        cJSON_Delete(methods);
        cJSON_Delete(m);
    }
    return rc;
}

/* GET /v1beta/models and /v1beta/models/{model}: the Gemini shape of the same list */
static void gemini_models(struct cm_httpd_req *r, void *ud)
{
    struct cp_server *srv = ud;
    const char *ids[MAX_MODELS], *owners[MAX_MODELS];
    const char *one = cm_httpd_req_param(r, "name");
    size_t n = 0;
    cJSON *root_obj = NULL, *arr = NULL;
    char *out = NULL;
    size_t len = 0;
    int rc, found = 0;

    if (cp_api_require_key_or_reply(srv, r, NULL, 0))
        return;
    if (one && strncmp(one, "models/", 7) == 0)
        one += 7;
    if (srv->models)
        n = srv->models(srv->models_ud, ids, owners, MAX_MODELS);
    rc = cm_json_new_array(&arr);
    for (size_t i = 0; !rc && i < n; i++)
        if (!one || strcmp(one, ids[i]) == 0) {
            rc = gemini_model(arr, ids[i]);
            found = 1;
        }
    if (!rc && one) {
        if (!found) {
            cJSON_Delete(arr);
            cm_httpd_reply_error(r, 404, "invalid_request_error", "model_not_found",
                                 "model '%s' is not served here", one);
            return;
        }
        root_obj = cJSON_DetachItemFromArray(arr, 0);
    } else if (!rc) {
        rc = cm_json_new_object(&root_obj);
        if (!rc)
            rc = cm_json_adopt(root_obj, "models", &arr);
    }
    if (!rc)
        rc = cm_json_print(root_obj, &out, &len);
    if (rc)
        cm_httpd_reply_error(r, 503, "server_error", NULL, "cannot build the model list: %s",
                             cm_err_str(rc));
    else
        cm_httpd_reply_take(r, 200, "application/json", out, len);
    cJSON_Delete(arr);
    cJSON_Delete(root_obj);
}

int cp_api_routes(struct cm_httpd *s, struct cp_server *srv)
{
    int rc = cm_health_route(s, "cliproxyd");
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/", root, srv);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/v1/models", models, srv);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/v1beta/models", gemini_models, srv);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/v1beta/models/:name", gemini_models, srv);
    if (!rc)
        rc = cp_api_relay_routes(s, srv);
    return rc;
}
