/* SPDX-License-Identifier: MIT */
/*
 * anthropic_sse.h - writing Anthropic Messages stream events ("event: <type>\ndata:
 * <json>\n\n"), shared by the translators whose clients speak Claude Messages
 * (messages_codex, messages_chat). Pure: appends to a cm_buf.
 */
#ifndef CP_TRANSLATE_ANTHROPIC_SSE_H
#define CP_TRANSLATE_ANTHROPIC_SSE_H

#include "cm/buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/** Appends @p obj (taken, also on error) as one event named by its "type". CM_ERR_NOMEM,
 * CM_ERR_LIMIT (@p out full). */
int cp_tr_anth_emit(cJSON *obj, struct cm_buf *out);

/** message_start for message @p id of @p model: empty content, null stop reason, zero
 * usage (the real counts come with message_delta). */
int cp_tr_anth_message_start(const char *id, const char *model, struct cm_buf *out);

/** content_block_stop for block @p index. */
int cp_tr_anth_block_stop(size_t index, struct cm_buf *out);

#endif
