/* SPDX-License-Identifier: MIT */
/*
 * fmt_chat_glue.h - the relay glue every "OpenAI Chat client on upstream P" format needs
 * around its translator translate/chat_P (chat_codex, chat_claude, chat_gemini share one
 * API shape): the stream state's life (init, finish, usage, cleanup) and the non-stream
 * aggregate. One macro writes these static functions into the fmt_*.c that uses it, so
 * each format file keeps only what really differs (its body rules, build and outcome).
 * Include after api/relay_fmt.h, cm/alloc.h, cm/json.h and the translator's header.
 */
#ifndef CP_API_FMT_CHAT_GLUE_H
#define CP_API_FMT_CHAT_GLUE_H

/* chat_stream_init/finish/usage/cleanup and chat_aggregate over cp_tr_chat_<P>_* */
#define CP_FMT_CHAT_GLUE(P)                                                                        \
    static int chat_stream_init(struct cp_relay_x *x)                                              \
    {                                                                                              \
        struct cp_tr_chat_##P##_stream *st = cm_calloc(1, sizeof *st);                             \
        int rc;                                                                                    \
        if (!st)                                                                                   \
            return CM_ERR_NOMEM;                                                                   \
        rc = cp_tr_chat_##P##_stream_init(st, x->client, x->chunk_id, x->created, NULL);           \
        if (rc)                                                                                    \
            cm_free(st);                                                                           \
        else                                                                                       \
            x->st = st;                                                                            \
        return rc;                                                                                 \
    }                                                                                              \
    static int chat_stream_finish(struct cp_relay_x *x)                                            \
    {                                                                                              \
        return cp_tr_chat_##P##_stream_finish(x->st, &x->out, &x->err);                            \
    }                                                                                              \
    static int chat_stream_usage(struct cp_relay_x *x, struct cp_tr_usage *u)                      \
    {                                                                                              \
        return cp_tr_chat_##P##_stream_usage(x->st, u);                                            \
    }                                                                                              \
    static void chat_stream_cleanup(struct cp_relay_x *x)                                          \
    {                                                                                              \
        if (x->st)                                                                                 \
            cp_tr_chat_##P##_stream_cleanup(x->st);                                                \
        cm_free(x->st);                                                                            \
        x->st = NULL;                                                                              \
    }                                                                                              \
    static int chat_aggregate(struct cp_relay_x *x, const char *body, size_t len, char **out,      \
                              size_t *out_len, struct cp_tr_usage *u)                              \
    {                                                                                              \
        cJSON *res = NULL;                                                                         \
        int rc = cp_tr_chat_##P##_aggregate(body ? body : "", len, x->client, x->chunk_id,         \
                                            x->created, &res, u, &x->err);                         \
        if (!rc)                                                                                   \
            rc = cm_json_print(res, out, out_len);                                                 \
        cJSON_Delete(res);                                                                         \
        return rc;                                                                                 \
    }

/* chat_stream_event for translators that say when content went out (has_content) */
#define CP_FMT_CHAT_EVENT(P)                                                                       \
    static void chat_stream_event(struct cp_relay_x *x, const struct cm_sse_event *ev)             \
    {                                                                                              \
        cp_relay_x_fail(x, cp_tr_chat_##P##_stream_event(x->st, ev->type, ev->type_len, ev->data,  \
                                                         ev->data_len, &x->out, &x->err));         \
        if (cp_tr_chat_##P##_stream_has_content(x->st))                                            \
            x->content = 1;                                                                        \
    }

#endif
