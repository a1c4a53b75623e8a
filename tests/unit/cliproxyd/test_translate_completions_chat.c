/* SPDX-License-Identifier: MIT */
/*
 * test_translate_completions_chat.c - legacy /v1/completions over the chat pivot: the
 * request (prompt -> one user message, copied fields, refusals naming the field), the
 * stream (text chunks, finish, usage when asked, [DONE]; a failure ends without [DONE]),
 * the non-stream answer; and the token estimate used for counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "tst_support.h"
#include "translate/completions_chat.h"
#include "translate/estimate.h"

static void request_maps_prompt(void **state)
{
    cJSON *in = tst_parse_str("{\"model\":\"m\",\"prompt\":[\"Say hi\"],\"max_tokens\":5,"
                              "\"temperature\":0.5,\"stop\":\"\\n\",\"stream\":true,"
                              "\"stream_options\":{\"include_usage\":true},\"user\":\"u\"}");
    cJSON *out = NULL, *want = tst_parse_str(
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}],\"model\":"
                           "\"m\",\"max_tokens\":5,\"temperature\":0.5,\"stop\":\"\\n\","
                           "\"user\":\"u\",\"stream\":true,\"stream_options\":{\"include_usage\":"
                           "true}}");
    struct cp_tr_err e = {0};
    (void)state;
    assert_int_equal(cp_tr_completions_chat_request(in, &out, &e), CM_OK);
    tst_assert_json_equal(out, want, "chat request");
    cJSON_Delete(in);
    cJSON_Delete(out);
    cJSON_Delete(want);
}

static void request_refusals_name_the_field(void **state)
{
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":[1,2,3]}", "prompt"},
        {"{\"model\":\"m\"}", "prompt"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"suffix\":\"z\"}", "suffix"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"echo\":true}", "echo"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"logprobs\":2}", "logprobs"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"best_of\":3}", "best_of"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"n\":2}", "n"},
        {"{\"model\":\"m\",\"prompt\":\"a\",\"logit_bias\":{\"1\":2}}", "logit_bias"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *in = tst_parse_str(cases[i].json), *out = NULL;
        struct cp_tr_err e = {0};
        assert_int_equal(cp_tr_completions_chat_request(in, &out, &e), CM_ERR_INVAL);
        assert_null(out);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.field, cases[i].field);
        assert_true(strncmp(e.msg, cases[i].field, strlen(cases[i].field)) == 0);
        cJSON_Delete(in);
    }
}

static void feed(struct cp_tr_completions_chat_stream *st, const char *chunk, struct cm_buf *out)
{
    cJSON *c = tst_parse_str(chunk);
    struct cp_tr_err e = {0};
    assert_int_equal(cp_tr_completions_chat_stream_chunk(st, c, out, &e), CM_OK);
    cJSON_Delete(c);
}

static void stream_text_finish_usage_done(void **state)
{
    cJSON *req = tst_parse_str("{\"model\":\"m\",\"prompt\":\"x\",\"stream\":true,"
                               "\"stream_options\":{\"include_usage\":true}}");
    struct cp_tr_completions_chat_stream *st = NULL;
    struct cm_buf out;
    struct tst_events ev = {0};
    cJSON *o;
    (void)state;
    cm_buf_init(&out, 1 << 20);
    assert_int_equal(cp_tr_completions_chat_stream_new(req, "cmpl-1", 42, &st), CM_OK);
    feed(st, "{\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}",
         &out);
    assert_false(cp_tr_completions_chat_stream_has_content(st));
    feed(st, "{\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}", &out);
    feed(st, "{\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"t\"}}]}",
         &out);
    feed(st, "{\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},"
             "\"finish_reason\":\"length\"}]}",
         &out);
    feed(st, "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
             "\"total_tokens\":5}}",
         &out);
    assert_true(cp_tr_completions_chat_stream_has_content(st));
    assert_int_equal(cp_tr_completions_chat_stream_end(st, &out), CM_OK);
    assert_int_equal(cp_tr_completions_chat_stream_end(st, &out), CM_OK); /* once */
    tst_events_parse(&ev, out.data, out.len);
    assert_int_equal(ev.n, 5);
    o = tst_parse_str(ev.data[0]);
    assert_string_equal(cJSON_GetObjectItem(o, "object")->valuestring, "text_completion");
    assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring, "cmpl-1");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0)
                            ->child->valuestring,
                        "Hel");
    cJSON_Delete(o);
    o = tst_parse_str(ev.data[2]);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0),
                            "finish_reason")
            ->valuestring,
        "length");
    cJSON_Delete(o);
    o = tst_parse_str(ev.data[3]);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "usage"), "total_tokens")->valueint,
                     5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "choices")), 0);
    cJSON_Delete(o);
    assert_string_equal(ev.data[4], "[DONE]");
    tst_events_free(&ev);
    cp_tr_completions_chat_stream_free(st);
    cm_buf_cleanup(&out);
    cJSON_Delete(req);
}

static void stream_failure_has_no_done(void **state)
{
    cJSON *req = tst_parse_str("{\"model\":\"m\",\"prompt\":\"x\",\"stream\":true}");
    struct cp_tr_completions_chat_stream *st = NULL;
    struct cp_tr_err e = {0};
    struct cm_buf out;
    cJSON *er;
    (void)state;
    cm_buf_init(&out, 1 << 20);
    assert_int_equal(cp_tr_completions_chat_stream_new(req, "cmpl-2", 1, &st), CM_OK);
    feed(st, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}", &out);
    e.status = 429;
    snprintf(e.type, sizeof e.type, "rate_limit_error");
    snprintf(e.msg, sizeof e.msg, "slow down");
    assert_int_equal(cp_tr_completions_chat_stream_fail(st, &e, &out), CM_OK);
    assert_int_equal(cp_tr_completions_chat_stream_end(st, &out), CM_OK); /* ignored */
    er = tst_chat_last_error(&out);
    assert_string_equal(cJSON_GetObjectItem(er, "message")->valuestring, "slow down");
    assert_null(strstr(out.data, "[DONE]"));
    cJSON_Delete(er);
    cp_tr_completions_chat_stream_free(st);
    cm_buf_cleanup(&out);
    cJSON_Delete(req);
}

static void response_from_completion(void **state)
{
    cJSON *req = tst_parse_str("{\"model\":\"m\",\"prompt\":\"x\"}");
    cJSON *c = tst_parse_str(
        "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"model\":\"up-1\",\"choices\":[{"
        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,"
        "\"total_tokens\":6}}");
    cJSON *out = NULL, *want = tst_parse_str(
                           "{\"id\":\"cmpl-3\",\"object\":\"text_completion\",\"created\":7,"
                           "\"model\":\"up-1\",\"choices\":[{\"text\":\"Hi there\",\"index\":0,"
                           "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"
                           "\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}");
    struct cp_tr_err e = {0};
    (void)state;
    assert_int_equal(cp_tr_completions_chat_response(req, c, "cmpl-3", 7, &out, &e), CM_OK);
    tst_assert_json_equal(out, want, "text_completion");
    cJSON_Delete(req);
    cJSON_Delete(c);
    cJSON_Delete(out);
    cJSON_Delete(want);
}

static void estimate_counts_text_not_data(void **state)
{
    cJSON *a = tst_parse_str("{\"model\":\"abcd\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"12345678\"}]}");
    cJSON *b = tst_parse_str("{\"contents\":[{\"parts\":[{\"text\":\"1234\"},{\"inlineData\":{"
                             "\"mimeType\":\"image/png\",\"data\":\"AAAAAAAAAAAAAAAAAAAAAAAA\"}}]}]}");
    (void)state;
    /* "abcd" + "user" + "12345678" = 16 bytes -> 4 tokens */
    assert_int_equal(cp_tr_estimate_tokens(a), 4);
    /* "1234" + "image/png" = 13 bytes -> 4 tokens (data skipped) */
    assert_int_equal(cp_tr_estimate_tokens(b), 4);
    assert_int_equal(cp_tr_estimate_tokens(NULL), 0);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_maps_prompt),
        cmocka_unit_test(request_refusals_name_the_field),
        cmocka_unit_test(stream_text_finish_usage_done),
        cmocka_unit_test(stream_failure_has_no_done),
        cmocka_unit_test(response_from_completion),
        cmocka_unit_test(estimate_counts_text_not_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
