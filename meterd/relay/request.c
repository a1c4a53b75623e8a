/* SPDX-License-Identifier: MIT */
/*
 * request.c - reading and rewriting client request bodies (see request.h). The prompt
 * estimate walks the prompt-carrying fields (depth is bounded by the parser's cap, 64);
 * binary parts (images, audio, files) count a flat MT_RELAY_IMAGE_TOKENS so a megabyte of
 * base64 never inflates a reservation.
 */
#include "relay/request.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "pricing.h"

#include <string.h>

const char *mt_relay_fmt_path(enum mt_relay_fmt f)
{
    switch (f) {
    case MT_RELAY_CHAT:
        return "/v1/chat/completions";
    case MT_RELAY_COMPLETIONS:
        return "/v1/completions";
    case MT_RELAY_RESPONSES:
        return "/v1/responses";
    case MT_RELAY_MESSAGES:
        return "/v1/messages";
    case MT_RELAY_EMBEDDINGS:
        return "/v1/embeddings";
    }
    return "/v1/chat/completions";
}

/* members whose value is binary (base64, URLs of images): a flat estimate, not walked */
static int binary_key(const char *k)
{
    static const char *const keys[] = {"image_url", "input_audio", "source",    "file",
                                       "file_data", "image",       "image_data"};
    for (size_t i = 0; k && i < sizeof keys / sizeof *keys; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > MT_PRICING_QUOTA_MAX - b ? MT_PRICING_QUOTA_MAX : a + b;
}

/* the text tokens of every string under @p it (numbers count one each: token ids) */
static int64_t walk(const cJSON *it, int depth)
{
    int64_t n = 0;
    if (!it || depth > CM_JSON_DEPTH_MAX)
        return 0;
    if (cJSON_IsString(it) && it->valuestring)
        return mt_pricing_estimate_tokens(it->valuestring, strlen(it->valuestring));
    if (cJSON_IsNumber(it))
        return 1;
    for (const cJSON *c = it->child; c; c = c->next) {
        if (cJSON_IsObject(it) && binary_key(c->string)) {
            n = sat_add(n, MT_RELAY_IMAGE_TOKENS);
            continue;
        }
        if (cJSON_IsObject(it) && c->string &&
            (strcmp(c->string, "type") == 0 || strcmp(c->string, "role") == 0 ||
             strcmp(c->string, "cache_control") == 0 || strcmp(c->string, "id") == 0))
            continue; /* structure, not prompt text */
        n = sat_add(n, walk(c, depth + 1));
    }
    return n;
}

static int64_t field_tokens(const cJSON *body, const char *name, int per_item)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    int64_t n = walk(v, 0);
    if (per_item && cJSON_IsArray(v))
        n = sat_add(n, (int64_t)cJSON_GetArraySize(v) * MT_RELAY_MSG_OVERHEAD);
    return n;
}

static int64_t estimate(enum mt_relay_fmt f, const cJSON *body)
{
    int64_t n = MT_RELAY_MSG_OVERHEAD;
    switch (f) {
    case MT_RELAY_CHAT:
    case MT_RELAY_MESSAGES:
        n = sat_add(n, field_tokens(body, "messages", 1));
        n = sat_add(n, field_tokens(body, "system", 0));
        n = sat_add(n, field_tokens(body, "tools", 0));
        break;
    case MT_RELAY_COMPLETIONS:
        n = sat_add(n, field_tokens(body, "prompt", 0));
        break;
    case MT_RELAY_RESPONSES:
        n = sat_add(n, field_tokens(body, "input", 1));
        n = sat_add(n, field_tokens(body, "instructions", 0));
        n = sat_add(n, field_tokens(body, "tools", 0));
        break;
    case MT_RELAY_EMBEDDINGS:
        n = field_tokens(body, "input", 0);
        break;
    }
    return n;
}

int mt_relay_req_inspect(enum mt_relay_fmt f, const cJSON *body, struct mt_relay_reqinfo *out,
                         struct cm_json_err *err)
{
    static const char *const max_names[] = {"max_tokens", "max_completion_tokens",
                                            "max_output_tokens"};
    struct mt_relay_reqinfo r = {.include_usage = -1};
    const cJSON *so;
    bool stream = false;
    int rc;

    if (!out || !cJSON_IsObject(body)) {
        cm_json_err_set(err, CM_ERR_INVAL, NULL, "the request body must be a JSON object");
        return CM_ERR_INVAL;
    }
    rc = cm_json_get_string(body, "model", &r.model, err);
    if (rc)
        return rc;
    if (!r.model[0] || strlen(r.model) >= MT_RELAY_MODEL_MAX) {
        cm_json_err_set(err, CM_ERR_INVAL, "model", "must be 1 to %d bytes",
                        MT_RELAY_MODEL_MAX - 1);
        return CM_ERR_INVAL;
    }
    if (f != MT_RELAY_EMBEDDINGS) {
        rc = cm_json_opt_bool(body, "stream", false, &stream, err);
        if (rc)
            return rc;
        r.stream = stream;
    }
    for (size_t i = 0; i < sizeof max_names / sizeof *max_names; i++) {
        int64_t v = 0;
        rc = cm_json_opt_int64(body, max_names[i], 0, CM_JSON_INT_MAX, 0, &v, err);
        if (rc)
            return rc;
        if (v > r.max_tokens)
            r.max_tokens = v;
    }
    so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (cJSON_IsObject(so)) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
        if (cJSON_IsBool(iu))
            r.include_usage = cJSON_IsTrue(iu) ? 1 : 0;
    }
    r.prompt_estimate = estimate(f, body);
    *out = r;
    return CM_OK;
}

int mt_relay_req_body(cJSON *body, const char *origin_model, const char *model, int force_usage,
                      char **out, size_t *len)
{
    cJSON *so = NULL;
    int change = 0, rc = CM_OK;

    if (!body || !origin_model || !model || !out || !len)
        return CM_ERR_INVAL;
    *out = NULL;
    *len = 0;
    if (strcmp(origin_model, model) != 0) {
        rc = cm_json_set_string(body, "model", model);
        if (rc)
            return rc;
        change = 1;
    } else {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
        if (!cJSON_IsString(m) || strcmp(m->valuestring, origin_model) != 0) {
            rc = cm_json_set_string(body, "model", model); /* an earlier attempt mapped it */
            if (rc)
                return rc;
            change = 1;
        }
    }
    if (force_usage) {
        so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
        if (!cJSON_IsObject(so)) {
            rc = cm_json_new_object(&so);
            if (!rc)
                rc = cm_json_adopt(body, "stream_options", &so);
            if (rc)
                return rc;
            so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
        }
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"))) {
            rc = cm_json_set_bool(so, "include_usage", true);
            if (rc)
                return rc;
            change = 1;
        }
    }
    if (!change)
        return CM_OK;
    return cm_json_print(body, out, len);
}

int mt_relay_map_model(const char *mapping, const char *model, char *out, size_t cap)
{
    struct cm_json_parse_opts po = {.max_depth = 2, .max_size = 1u << 20};
    const char *seen[MT_RELAY_MAPPING_STEPS + 1];
    const char *cur = model;
    cJSON *m = NULL;
    size_t nseen = 0, n;
    int rc = CM_OK;

    if (!model || !out || !cap)
        return CM_ERR_INVAL;
    while (mapping && (*mapping == ' ' || *mapping == '\n' || *mapping == '\t'))
        mapping++;
    if (mapping && *mapping && strcmp(mapping, "{}") != 0) {
        rc = cm_json_parse(mapping, strlen(mapping), &po, &m, NULL);
        if (rc || !cJSON_IsObject(m)) {
            rc = CM_ERR_PARSE;
            goto out;
        }
        seen[nseen++] = model;
        for (;;) {
            const cJSON *to = cJSON_GetObjectItemCaseSensitive(m, cur);
            if (!to)
                break;
            if (!cJSON_IsString(to)) {
                rc = CM_ERR_PARSE;
                goto out;
            }
            if (!to->valuestring[0] || strcmp(to->valuestring, cur) == 0)
                break;
            for (size_t i = 0; i < nseen; i++)
                if (strcmp(seen[i], to->valuestring) == 0) {
                    rc = CM_ERR_LIMIT; /* a cycle */
                    goto out;
                }
            if (nseen > MT_RELAY_MAPPING_STEPS) {
                rc = CM_ERR_LIMIT;
                goto out;
            }
            cur = to->valuestring;
            seen[nseen++] = cur;
        }
    }
    n = strlen(cur);
    if (n >= cap) {
        rc = CM_ERR_LIMIT;
        goto out;
    }
    memcpy(out, cur, n + 1);
out:
    cJSON_Delete(m);
    return rc;
}
