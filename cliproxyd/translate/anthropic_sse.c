/* SPDX-License-Identifier: MIT */
/* anthropic_sse.c - Anthropic Messages stream events; see anthropic_sse.h. */
#include "translate/anthropic_sse.h"

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/sse.h"
#include "translate/tr_common.h"

#include <stdint.h>

int cp_tr_anth_emit(cJSON *obj, struct cm_buf *out)
{
    const char *type = cp_tr_str_member(obj, "type", NULL);
    char *s = NULL;
    size_t n = 0;
    int rc = cm_json_print(obj, &s, &n);
    if (!rc)
        rc = cm_sse_write_event(out, type, s, n);
    cm_free(s);
    cJSON_Delete(obj);
    return rc;
}

int cp_tr_anth_message_start(const char *id, const char *model, struct cm_buf *out)
{
    cJSON *ev = NULL, *msg = NULL, *us = NULL;
    int rc;

    if ((rc = cp_tr_typed_new("message_start", &ev)) || (rc = cm_json_new_object(&msg)) ||
        (rc = cm_json_set_string(msg, "id", id)) ||
        (rc = cm_json_set_string(msg, "type", "message")) ||
        (rc = cm_json_set_string(msg, "role", "assistant")) ||
        (rc = cm_json_set_string(msg, "model", model)) ||
        (rc = cm_json_set_item(msg, "content", cJSON_CreateArray())) ||
        (rc = cm_json_set_null(msg, "stop_reason")) ||
        (rc = cm_json_set_null(msg, "stop_sequence")) || (rc = cm_json_new_object(&us)) ||
        (rc = cm_json_set_int64(us, "input_tokens", 0)) ||
        (rc = cm_json_set_int64(us, "output_tokens", 0)) ||
        (rc = cm_json_adopt(msg, "usage", &us)) || (rc = cm_json_adopt(ev, "message", &msg)))
        goto out;
    rc = cp_tr_anth_emit(ev, out);
    ev = NULL;
out:
    cJSON_Delete(us);
    cJSON_Delete(msg);
    cJSON_Delete(ev);
    return rc;
}

int cp_tr_anth_block_stop(size_t index, struct cm_buf *out)
{
    cJSON *ev = NULL;
    int rc;
    if ((rc = cp_tr_typed_new("content_block_stop", &ev)) ||
        (rc = cm_json_set_int64(ev, "index", (int64_t)index))) {
        cJSON_Delete(ev);
        return rc;
    }
    return cp_tr_anth_emit(ev, out);
}
