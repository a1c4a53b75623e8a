/* SPDX-License-Identifier: MIT */
/*
 * test_relay_usage.c - usage parsing of upstream answers (relay/usage.h) on recorded
 * shapes in tests/fixtures/meterd/relay/: OpenAI chat (answer; stream with the
 * include_usage chunk; a tool-call stream without usage), Responses (answer; stream with
 * response.completed), Anthropic Messages (answer; stream with message_start /
 * message_delta, cache reads and 5m/1h writes), embeddings; the local-count fallback;
 * feeding a stream in every chunk size gives the same result; the settled quota of the
 * spec's worked example (5.9) from a parsed stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/err.h"
#include "cm/sse.h"
#include "pricing.h"
#include "relay/usage.h"

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    const char *root = getenv("CM_TEST_DATA");
    FILE *f;
    char *buf;
    long n;
    snprintf(path, sizeof path, "%s/meterd/relay/%s", root ? root : "tests/fixtures", name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = cm_malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int on_event(void *ud, const struct cm_sse_event *ev)
{
    return mt_relay_usage_event(ud, ev->type, ev->type_len, ev->data, ev->data_len);
}

/* feeds fixture @p name to @p s in chunks of @p step bytes (0: all at once) */
static void feed(struct mt_relay_usage *s, const char *name, size_t step)
{
    struct cm_sse_parser p;
    size_t len;
    char *b = fixture(name, &len);
    cm_sse_parser_init(&p, 0, on_event, NULL, s);
    for (size_t i = 0; i < len; i += step ? step : len)
        assert_int_equal(
            cm_sse_parser_feed(&p, b + i, step && len - i > step ? step : len - i, NULL), CM_OK);
    assert_int_equal(cm_sse_parser_finish(&p, CM_SSE_FINISH_DISPATCH), CM_OK);
    cm_sse_parser_cleanup(&p);
    cm_free(b);
}

static void body(struct mt_relay_usage *s, const char *name)
{
    size_t len;
    char *b = fixture(name, &len);
    assert_int_equal(mt_relay_usage_body(s, b, len), CM_OK);
    cm_free(b);
}

static void chat_stream_with_usage_chunk(void **state)
{
    static const size_t steps[] = {0, 1, 7, 64};
    (void)state;
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        struct mt_relay_usage s;
        struct mt_usage u;
        int local = -1;
        mt_relay_usage_init(&s, MT_RELAY_CHAT);
        feed(&s, "chat_stream_usage.sse", steps[k]);
        assert_true(s.have);
        assert_true(s.finished);
        assert_false(s.error_event);
        assert_true(s.last_usage_only == 0); /* [DONE] came after the usage chunk */
        assert_int_equal(s.events, 6);
        assert_int_equal(s.completion_est, 2); /* "Hello", " world" */
        mt_relay_usage_final(&s, 5, 0, &u, &local);
        assert_int_equal(local, 0);
        assert_int_equal(u.prompt_tokens, 10000);
        assert_int_equal(u.completion_tokens, 1000);
        assert_int_equal(u.cached_tokens, 6000);
        assert_int_equal(u.semantic, MT_USAGE_OPENAI);
    }
}

static void worked_example_from_stream(void **state)
{
    /* spec 5.9: gpt-4o, ratio 1.25, completion 4, cache 0.5, group vip 1.5 -> 20625 */
    struct mt_pricing_opts o = {.group_ratio = "{\"default\":1,\"vip\":1.5}"};
    struct mt_pricing *p = NULL;
    struct mt_price price;
    struct mt_charge ch;
    struct mt_relay_usage s;
    struct mt_usage u;
    (void)state;
    assert_int_equal(mt_pricing_new(&o, &p, NULL, 0), CM_OK);
    assert_int_equal(mt_pricing_model_price(p, "gpt-4o", "vip", NULL, &price), CM_OK);
    mt_relay_usage_init(&s, MT_RELAY_CHAT);
    feed(&s, "chat_stream_usage.sse", 0);
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(mt_pricing_settle(&price, &u, &ch), CM_OK);
    assert_int_equal(ch.quota, 20625);
    mt_pricing_free(p);
}

static void chat_stream_tools_without_usage(void **state)
{
    struct mt_relay_usage s;
    struct mt_usage u;
    int local = 0;
    (void)state;
    mt_relay_usage_init(&s, MT_RELAY_CHAT);
    feed(&s, "chat_stream_tools.sse", 3);
    assert_false(s.have);
    assert_int_equal(s.tool_calls, 1);
    /* 7 per call + the arguments {"city":"Paris"}: { " city " : " Paris " } = 8 */
    assert_int_equal(s.completion_est, MT_PRICING_TOOL_CALL_TOKENS +
                                           mt_pricing_estimate_tokens("{\"city\":", 8) +
                                           mt_pricing_estimate_tokens("\"Paris\"}", 8));
    mt_relay_usage_final(&s, 42, s.completion_est, &u, &local);
    assert_int_equal(local, 1);
    assert_true(u.local_count);
    assert_int_equal(u.prompt_tokens, 42);
    assert_int_equal(u.completion_tokens, s.completion_est);
    /* the part a client received */
    mt_relay_usage_final(&s, 42, 3, &u, &local);
    assert_int_equal(u.completion_tokens, 3);
}

static void chat_answer(void **state)
{
    struct mt_relay_usage s;
    struct mt_usage u;
    (void)state;
    mt_relay_usage_init(&s, MT_RELAY_CHAT);
    body(&s, "chat_answer.json");
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.prompt_tokens, 19);
    assert_int_equal(u.completion_tokens, 10);
    assert_int_equal(s.completion_est, 2);
    assert_int_equal(mt_relay_usage_body(&s, "not json", 8), CM_ERR_PARSE);
}

static void responses_stream_and_answer(void **state)
{
    struct mt_relay_usage s;
    struct mt_usage u;
    (void)state;
    mt_relay_usage_init(&s, MT_RELAY_RESPONSES);
    feed(&s, "responses_stream.sse", 5);
    assert_true(s.finished);
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.prompt_tokens, 37);
    assert_int_equal(u.completion_tokens, 11);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(s.completion_est, 2); /* "Hi", " there" */

    mt_relay_usage_init(&s, MT_RELAY_RESPONSES);
    body(&s, "responses_answer.json");
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.prompt_tokens, 328);
    assert_int_equal(u.completion_tokens, 52);
    assert_int_equal(s.tool_calls, 1);
}

static void messages_stream_and_answer(void **state)
{
    struct mt_relay_usage s;
    struct mt_usage u;
    (void)state;
    mt_relay_usage_init(&s, MT_RELAY_MESSAGES);
    feed(&s, "messages_stream.sse", 11);
    assert_true(s.finished);
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.semantic, MT_USAGE_ANTHROPIC);
    assert_int_equal(u.prompt_tokens, 25);
    assert_int_equal(u.completion_tokens, 15); /* message_delta's running total */
    assert_int_equal(u.cached_tokens, 1000);
    assert_int_equal(u.cache_creation_tokens, 200);
    assert_int_equal(u.cache_creation_tokens_1h, 50);
    assert_int_equal(s.completion_est, 2);

    mt_relay_usage_init(&s, MT_RELAY_MESSAGES);
    body(&s, "messages_answer.json");
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.prompt_tokens, 472);
    assert_int_equal(u.completion_tokens, 89);
    assert_int_equal(s.tool_calls, 1);
}

static void embeddings(void **state)
{
    struct mt_relay_usage s;
    struct mt_usage u;
    (void)state;
    mt_relay_usage_init(&s, MT_RELAY_EMBEDDINGS);
    body(&s, "embeddings_answer.json");
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.prompt_tokens, 8);
    assert_int_equal(u.completion_tokens, 0);
}

static void odd_inputs(void **state)
{
    static const char usage_only[] = "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
                                     "\"completion_tokens\":2,\"prompt_tokens_details\":"
                                     "{\"cached_tokens\":99}}}";
    static const char err[] = "{\"error\":{\"message\":\"boom\"}}";
    struct mt_relay_usage s;
    struct mt_usage u;
    (void)state;
    mt_relay_usage_init(&s, MT_RELAY_CHAT);
    assert_int_equal(mt_relay_usage_event(&s, NULL, 0, "garbage", 7), CM_OK);
    assert_int_equal(mt_relay_usage_event(&s, NULL, 0, "{\"usage\":null}", 14), CM_OK);
    assert_false(s.have);
    assert_int_equal(mt_relay_usage_event(&s, NULL, 0, usage_only, sizeof usage_only - 1), CM_OK);
    assert_true(s.last_usage_only);
    mt_relay_usage_final(&s, 0, 0, &u, NULL);
    assert_int_equal(u.cached_tokens, 3); /* clamped to the prompt */
    assert_int_equal(mt_relay_usage_event(&s, NULL, 0, err, sizeof err - 1), CM_OK);
    assert_true(s.error_event);
    assert_false(s.last_usage_only);
    assert_int_equal(mt_relay_usage_event(NULL, NULL, 0, "", 0), CM_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_stream_with_usage_chunk),
        cmocka_unit_test(worked_example_from_stream),
        cmocka_unit_test(chat_stream_tools_without_usage),
        cmocka_unit_test(chat_answer),
        cmocka_unit_test(responses_stream_and_answer),
        cmocka_unit_test(messages_stream_and_answer),
        cmocka_unit_test(embeddings),
        cmocka_unit_test(odd_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
