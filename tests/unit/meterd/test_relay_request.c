/* SPDX-License-Identifier: MIT */
/*
 * test_relay_request.c - request reading and rewriting (relay/request.h): model, stream,
 * max tokens, stream_options; refusals; the prompt estimate (text counted, images flat);
 * the upstream body (untouched, mapped model, forced include_usage); model_mapping chains,
 * cycles and junk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/json.h"
#include "pricing.h"
#include "relay/request.h"

static cJSON *parse(const char *s)
{
    cJSON *j = NULL;
    assert_int_equal(cm_json_parse(s, strlen(s), NULL, &j, NULL), CM_OK);
    return j;
}

static void inspect_chat(void **state)
{
    cJSON *b =
        parse("{\"model\":\"gpt-4o\",\"stream\":true,\"max_tokens\":50,"
              "\"max_completion_tokens\":80,\"stream_options\":{\"include_usage\":false},"
              "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello, "
              "world!\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/"
              "png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}]}]}");
    struct mt_relay_reqinfo r;
    struct cm_json_err e;
    (void)state;
    assert_int_equal(mt_relay_req_inspect(MT_RELAY_CHAT, b, &r, &e), CM_OK);
    assert_string_equal(r.model, "gpt-4o");
    assert_true(r.stream);
    assert_int_equal(r.include_usage, 0);
    assert_int_equal(r.max_tokens, 80);
    /* 3 per request + 3 per message + "Be brief" (2) + "Hello, world!" (4) + one image */
    assert_int_equal(r.prompt_estimate, 3 + 2 * 3 + 2 + 4 + MT_RELAY_IMAGE_TOKENS);
    cJSON_Delete(b);
}

static void inspect_others(void **state)
{
    struct mt_relay_reqinfo r;
    cJSON *b;
    (void)state;
    b = parse("{\"model\":\"text-embedding-3-small\",\"input\":[\"a b\",[1,2,3]],\"stream\":1}");
    assert_int_equal(mt_relay_req_inspect(MT_RELAY_EMBEDDINGS, b, &r, NULL), CM_OK);
    assert_false(r.stream); /* embeddings never stream; "stream" not even read */
    assert_int_equal(r.prompt_estimate, 2 + 3);
    cJSON_Delete(b);
    b = parse("{\"model\":\"gpt-5\",\"input\":\"hi\",\"instructions\":\"x\","
              "\"max_output_tokens\":7}");
    assert_int_equal(mt_relay_req_inspect(MT_RELAY_RESPONSES, b, &r, NULL), CM_OK);
    assert_int_equal(r.max_tokens, 7);
    assert_int_equal(r.include_usage, -1);
    assert_int_equal(r.prompt_estimate, 3 + 1 + 1);
    cJSON_Delete(b);
    b = parse("{\"model\":\"claude-3-5-sonnet-20241022\",\"system\":[{\"type\":\"text\","
              "\"text\":\"sys\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":"
              "[{\"role\":\"user\",\"content\":\"hey\"}],\"max_tokens\":1024}");
    assert_int_equal(mt_relay_req_inspect(MT_RELAY_MESSAGES, b, &r, NULL), CM_OK);
    assert_int_equal(r.max_tokens, 1024);
    assert_int_equal(r.prompt_estimate, 3 + 3 + 1 + 1);
    cJSON_Delete(b);
    b = parse("{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say this is a test\"}");
    assert_int_equal(mt_relay_req_inspect(MT_RELAY_COMPLETIONS, b, &r, NULL), CM_OK);
    assert_int_equal(r.prompt_estimate, 3 + 5);
    cJSON_Delete(b);
}

static void refusals(void **state)
{
    static const char *const bad[] = {
        "{\"messages\":[]}",                    /* no model */
        "{\"model\":42}",                       /* not a string */
        "{\"model\":\"\"}",                     /* empty */
        "{\"model\":\"m\",\"stream\":\"yes\"}", /* stream not a boolean */
        "{\"model\":\"m\",\"max_tokens\":-1}",  /* negative */
        "{\"model\":\"m\",\"max_tokens\":1.5}", /* not an integer */
        "[1,2]",                                /* not an object */
    };
    struct mt_relay_reqinfo r;
    struct cm_json_err e;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *b = parse(bad[i]);
        memset(&e, 0, sizeof e);
        assert_int_not_equal(mt_relay_req_inspect(MT_RELAY_CHAT, b, &r, &e), CM_OK);
        assert_true(e.msg[0] != '\0');
        cJSON_Delete(b);
    }
    {
        char big[MT_RELAY_MODEL_MAX + 40];
        cJSON *b;
        memset(big, 'a', sizeof big);
        memcpy(big, "{\"model\":\"", 10);
        memcpy(big + sizeof big - 3, "\"}", 3);
        b = parse(big);
        assert_int_equal(mt_relay_req_inspect(MT_RELAY_CHAT, b, &r, NULL), CM_ERR_INVAL);
        cJSON_Delete(b);
    }
}

static void upstream_body(void **state)
{
    cJSON *b = parse("{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]}");
    char *out = NULL;
    size_t len = 0;
    (void)state;
    /* nothing to change: send the client's bytes */
    assert_int_equal(mt_relay_req_body(b, "gpt-4o", "gpt-4o", 0, &out, &len), CM_OK);
    assert_null(out);
    /* forced usage */
    assert_int_equal(mt_relay_req_body(b, "gpt-4o", "gpt-4o", 1, &out, &len), CM_OK);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"stream_options\":{\"include_usage\":true}"));
    assert_non_null(strstr(out, "\"model\":\"gpt-4o\""));
    cm_free(out);
    /* a mapped model, then back to the origin for another channel */
    assert_int_equal(mt_relay_req_body(b, "gpt-4o", "gpt-4o-2024-08-06", 1, &out, &len), CM_OK);
    assert_non_null(strstr(out, "\"model\":\"gpt-4o-2024-08-06\""));
    assert_int_equal(len, strlen(out));
    cm_free(out);
    assert_int_equal(mt_relay_req_body(b, "gpt-4o", "gpt-4o", 1, &out, &len), CM_OK);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"model\":\"gpt-4o\""));
    cm_free(out);
    assert_int_equal(mt_relay_req_body(NULL, "a", "b", 0, &out, &len), CM_ERR_INVAL);
    cJSON_Delete(b);
}

static void model_mapping(void **state)
{
    char out[MT_RELAY_MODEL_MAX];
    (void)state;
    assert_int_equal(mt_relay_map_model(NULL, "gpt-4o", out, sizeof out), CM_OK);
    assert_string_equal(out, "gpt-4o");
    assert_int_equal(mt_relay_map_model("", "gpt-4o", out, sizeof out), CM_OK);
    assert_int_equal(mt_relay_map_model(" {}", "gpt-4o", out, sizeof out), CM_OK);
    assert_string_equal(out, "gpt-4o");
    assert_int_equal(
        mt_relay_map_model("{\"gpt-4o\":\"b\",\"b\":\"c\"}", "gpt-4o", out, sizeof out), CM_OK);
    assert_string_equal(out, "c");
    assert_int_equal(mt_relay_map_model("{\"gpt-4o\":\"\"}", "gpt-4o", out, sizeof out), CM_OK);
    assert_string_equal(out, "gpt-4o");
    assert_int_equal(mt_relay_map_model("{\"a\":\"a\"}", "a", out, sizeof out), CM_OK);
    assert_string_equal(out, "a");
    assert_int_equal(mt_relay_map_model("{\"a\":\"b\",\"b\":\"a\"}", "a", out, sizeof out),
                     CM_ERR_LIMIT);
    assert_int_equal(mt_relay_map_model("{\"a\":1}", "a", out, sizeof out), CM_ERR_PARSE);
    assert_int_equal(mt_relay_map_model("not json", "a", out, sizeof out), CM_ERR_PARSE);
    assert_int_equal(mt_relay_map_model("{\"a\":\"longer\"}", "a", out, 4), CM_ERR_LIMIT);
    assert_string_equal(mt_relay_fmt_path(MT_RELAY_MESSAGES), "/v1/messages");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inspect_chat),  cmocka_unit_test(inspect_others),
        cmocka_unit_test(refusals),      cmocka_unit_test(upstream_body),
        cmocka_unit_test(model_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
