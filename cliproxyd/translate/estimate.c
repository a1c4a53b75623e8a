/* SPDX-License-Identifier: MIT */
/* estimate.c - tokens from text length; see estimate.h. */
#include "translate/estimate.h"

#include <string.h>

/* keys whose strings are binary payloads (base64 images, files), not text */
static int is_data_key(const char *k)
{
    return k && (strcmp(k, "data") == 0 || strcmp(k, "file_data") == 0 ||
                 strcmp(k, "image_url") == 0 || strcmp(k, "url") == 0 ||
                 strcmp(k, "signature") == 0);
}

static int64_t text_bytes(const cJSON *n, int depth)
{
    int64_t sum = 0;
    if (!n || depth > 64)
        return 0;
    if (cJSON_IsString(n))
        return is_data_key(n->string) ? 0 : (int64_t)strlen(n->valuestring);
    for (const cJSON *c = n->child; c; c = c->next)
        sum += text_bytes(c, depth + 1);
    return sum;
}

int64_t cp_tr_estimate_tokens(const cJSON *req)
{
    return (text_bytes(req, 0) + 3) / 4;
}
