/* SPDX-License-Identifier: MIT */
/*
 * fmt_in.c - the client adapters of the chat pivot (struct cp_relay_in, relay_fmt.h):
 * each wraps one translate/<client>_chat module, which all share one API shape, so one
 * macro writes the glue. The Gemini adapter differs only in its request (the model and
 * the stream flag come from the URL).
 */
#include "api/relay_fmt.h"

#include "translate/completions_chat.h"
#include "translate/gemini_chat.h"
#include "translate/messages_chat.h"
#include "translate/responses_chat.h"

#include <stdbool.h>

/* the stream and response glue of adapter @p P (functions cp_tr_<P>_chat_*), showing
 * the client the id in x->@p ID */
#define CP_IN_GLUE(P, ID)                                                                          \
    static int P##_new(const struct cp_relay_x *x, void **st)                                      \
    {                                                                                              \
        return cp_tr_##P##_chat_stream_new(x->orig, x->ID, x->created,                             \
                                           (struct cp_tr_##P##_chat_stream **)st);                 \
    }                                                                                              \
    static int P##_chunk(void *st, const cJSON *c, struct cm_buf *out, struct cp_tr_err *e)        \
    {                                                                                              \
        return cp_tr_##P##_chat_stream_chunk(st, c, out, e);                                       \
    }                                                                                              \
    static int P##_end(void *st, struct cm_buf *out)                                               \
    {                                                                                              \
        return cp_tr_##P##_chat_stream_end(st, out);                                               \
    }                                                                                              \
    static int P##_fail(void *st, const struct cp_tr_err *e, struct cm_buf *out)                   \
    {                                                                                              \
        return cp_tr_##P##_chat_stream_fail(st, e, out);                                           \
    }                                                                                              \
    static bool P##_has_content(const void *st)                                                    \
    {                                                                                              \
        return cp_tr_##P##_chat_stream_has_content(st);                                            \
    }                                                                                              \
    static void P##_free(void *st)                                                                 \
    {                                                                                              \
        cp_tr_##P##_chat_stream_free(st);                                                          \
    }                                                                                              \
    static int P##_response(const struct cp_relay_x *x, const cJSON *c, cJSON **out,               \
                            struct cp_tr_err *e)                                                   \
    {                                                                                              \
        return cp_tr_##P##_chat_response(x->orig, c, x->ID, x->created, out, e);                   \
    }                                                                                              \
    const struct cp_relay_in cp_in_##P = {#P,      P##_request,     P##_new,  P##_chunk, P##_end, \
                                          P##_fail, P##_has_content, P##_free, P##_response};

static int completions_request(const struct cp_relay_x *x, cJSON **chat, struct cp_tr_err *e)
{
    return cp_tr_completions_chat_request(x->orig, chat, e);
}
CP_IN_GLUE(completions, chunk_id)

static int messages_request(const struct cp_relay_x *x, cJSON **chat, struct cp_tr_err *e)
{
    return cp_tr_messages_chat_request(x->orig, chat, e);
}
CP_IN_GLUE(messages, msg_id)

static int responses_request(const struct cp_relay_x *x, cJSON **chat, struct cp_tr_err *e)
{
    return cp_tr_responses_chat_request(x->orig, chat, e);
}
CP_IN_GLUE(responses, resp_id)

/* the Gemini body names neither the model nor streaming: the URL does */
static int gemini_request(const struct cp_relay_x *x, cJSON **chat, struct cp_tr_err *e)
{
    return cp_tr_gemini_chat_request(x->orig, x->gemini_model ? x->gemini_model : x->model,
                                     x->stream, chat, e);
}
CP_IN_GLUE(gemini, resp_id)
