/* SPDX-License-Identifier: MIT */
/* responses_codex.c - Responses-source body rules for the Codex upstream (see the header). */
#include "translate/responses_codex.h"

#include "translate/tr_common.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"

#include <string.h>

static const char *const dropped[] = {"max_output_tokens",
                                      "max_completion_tokens",
                                      "temperature",
                                      "top_p",
                                      "truncation",
                                      "user",
                                      "context_management",
                                      "previous_response_id",
                                      "prompt_cache_retention",
                                      "safety_identifier",
                                      "stream_options",
                                      NULL};

static int fail(struct cp_tr_err *err, int rc, const char *field, const char *msg)
{
    cp_tr_err_set(err, rc, 400, field, "invalid_request_error", "", "%s: %s", field, msg);
    return rc;
}

static int wrap_input(cJSON *body, const char *text)
{
    cJSON *arr = NULL, *msg = NULL, *content = NULL, *part = NULL;
    int rc;
    if ((rc = cm_json_new_array(&arr)) || (rc = cm_json_new_object(&msg)) ||
        (rc = cm_json_new_array(&content)) || (rc = cm_json_new_object(&part)))
        goto out;
    if ((rc = cm_json_set_string(part, "type", "input_text")) ||
        (rc = cm_json_set_string(part, "text", text)))
        goto out;
    rc = cm_json_adopt(content, NULL, &part);
    if (rc || (rc = cm_json_set_string(msg, "type", "message")) ||
        (rc = cm_json_set_string(msg, "role", "user")))
        goto out;
    rc = cm_json_adopt(msg, "content", &content);
    if (rc)
        goto out;
    rc = cm_json_adopt(arr, NULL, &msg);
    if (rc)
        goto out;
    rc = cm_json_adopt(body, "input", &arr);
out:
    cJSON_Delete(arr);
    cJSON_Delete(msg);
    cJSON_Delete(content);
    cJSON_Delete(part);
    return rc;
}

int cp_tr_responses_codex_request(const cJSON *req, cJSON **out, struct cp_tr_err *err)
{
    struct cm_json_err je = {0};
    cJSON *body = NULL, *reasoning, *input, *tools, *tier, *inc = NULL;
    const char *model = NULL, *effort = NULL;
    char *base = NULL;
    int rc;

    if (!req || !cJSON_IsObject(req))
        return fail(err, CM_ERR_INVAL, "body", "must be a JSON object");
    if (cm_json_get_string(req, "model", &model, &je))
        return fail(err, CM_ERR_INVAL, "model", "is required (a string)");
    if ((rc = cp_tr_codex_split_model(model, &base, &effort, &je)))
        return rc == CM_ERR_NOMEM ? rc : fail(err, rc, "model", je.msg);
    body = cJSON_Duplicate(req, 1);
    if (!body) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; dropped[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(body, dropped[i]);
    tier = cJSON_GetObjectItemCaseSensitive(body, "service_tier");
    if (tier && !(cJSON_IsString(tier) && strcmp(tier->valuestring, "priority") == 0))
        cJSON_DeleteItemFromObjectCaseSensitive(body, "service_tier");
    if ((rc = cm_json_set_string(body, "model", base)))
        goto out;
    /* input: a string becomes one user message; system roles become developer */
    input = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (cJSON_IsString(input)) {
        char *text = cm_strdup(input->valuestring);
        rc = text ? wrap_input(body, text) : CM_ERR_NOMEM;
        cm_free(text);
        if (rc)
            goto out;
    } else if (cJSON_IsArray(input)) {
        cJSON *it;
        cJSON_ArrayForEach(it, input)
        {
            cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
            if (cJSON_IsString(role) && strcmp(role->valuestring, "system") == 0 &&
                (rc = cm_json_set_string(it, "role", "developer")))
                goto out;
        }
    } else {
        rc = fail(err, CM_ERR_INVAL, "input", "must be a string or an array of items");
        goto out;
    }
    tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    if (tools && !cJSON_IsArray(tools)) {
        rc = fail(err, CM_ERR_INVAL, "tools", "must be an array");
        goto out;
    }
    if (tools) {
        cJSON *t;
        cJSON_ArrayForEach(t, tools)
        {
            cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
            if (cJSON_IsString(type) &&
                (strcmp(type->valuestring, "web_search_preview") == 0 ||
                 strcmp(type->valuestring, "web_search_preview_2025_03_11") == 0) &&
                (rc = cm_json_set_string(t, "type", "web_search")))
                goto out;
        }
    }
    /* reasoning: the suffix wins, else the client's, else medium; summary auto */
    reasoning = cJSON_GetObjectItemCaseSensitive(body, "reasoning");
    if (reasoning && !cJSON_IsObject(reasoning)) {
        rc = fail(err, CM_ERR_INVAL, "reasoning", "must be an object");
        goto out;
    }
    if (!reasoning) {
        if ((rc = cm_json_new_object(&reasoning)))
            goto out;
        if ((rc = cm_json_set_item(body, "reasoning", reasoning)))
            goto out;
    }
    if (effort)
        rc = cm_json_set_string(reasoning, "effort", effort);
    else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(reasoning, "effort")))
        rc = cm_json_set_string(reasoning, "effort", "medium");
    if (rc || (rc = cm_json_set_string(reasoning, "summary", "auto")))
        goto out;
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "instructions")) &&
        (rc = cm_json_set_string(body, "instructions", "")))
        goto out;
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(body, "parallel_tool_calls")) &&
        (rc = cm_json_set_bool(body, "parallel_tool_calls", true)))
        goto out;
    if ((rc = cm_json_set_bool(body, "store", false)) ||
        (rc = cm_json_set_bool(body, "stream", true)) || (rc = cm_json_new_array(&inc)))
        goto out;
    if ((rc = cm_json_set_item(inc, NULL, cJSON_CreateString("reasoning.encrypted_content"))))
        goto out;
    rc = cm_json_adopt(body, "include", &inc);
    if (rc)
        goto out;
    *out = body;
    body = NULL;
out:
    if (rc == CM_ERR_NOMEM)
        cp_tr_err_set(err, rc, 503, "", "", "", "out of memory");
    cJSON_Delete(inc);
    cJSON_Delete(body);
    cm_free(base);
    return rc;
}
