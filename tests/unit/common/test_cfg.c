/* SPDX-License-Identifier: MIT */
/*
 * test_cfg.c - cm_cfg over a small schema (string, bounded int, bool, enum, flags,
 * nested mapping, sequence of strings, sequence of mappings): defaults, located errors,
 * unknown-key warnings (captured through cm_log_set_sink), syntax errors, files, OOM,
 * cm_cfg_to_json over that schema and over one with every libcyaml type, and the slot
 * under concurrent readers and a swapping writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/cfg.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"

/* ---- the schema under test ---- */

enum strategy { STRAT_ROUND_ROBIN, STRAT_FILL_FIRST };
enum feature { FEAT_ALPHA = 1, FEAT_BETA = 2, FEAT_GAMMA = 4 };

struct t_key {
    char *name;
    int weight; /* default 1 */
};

struct t_routing {
    enum strategy strategy; /* default round-robin */
    unsigned retries;       /* default 3 */
};

struct t_conf {
    char *host; /* default "127.0.0.1" */
    int port;   /* default 8317, 1..65535 */
    bool debug; /* default true: only presence tells "debug: false" from missing */
    struct t_routing routing;
    unsigned features;
    char **models;
    unsigned models_count;
    struct t_key *keys;
    unsigned keys_count;
};

static const cyaml_strval_t strategy_strings[] = {
    {"round-robin", STRAT_ROUND_ROBIN},
    {"fill-first", STRAT_FILL_FIRST},
};
static const cyaml_strval_t feature_strings[] = {
    {"alpha", FEAT_ALPHA},
    {"beta", FEAT_BETA},
    {"gamma", FEAT_GAMMA},
};

static const cyaml_schema_field_t routing_fields[] = {
    CYAML_FIELD_ENUM("strategy", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, struct t_routing,
                     strategy, strategy_strings, CYAML_ARRAY_LEN(strategy_strings)),
    CYAML_FIELD_UINT("retries", CYAML_FLAG_OPTIONAL, struct t_routing, retries), CYAML_FIELD_END};

static const cyaml_schema_field_t key_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, struct t_key, name, 1, 64),
    CYAML_FIELD_INT("weight", CYAML_FLAG_OPTIONAL, struct t_key, weight), CYAML_FIELD_END};
static const cyaml_schema_value_t key_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct t_key, key_fields)};
static const cyaml_schema_value_t model_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED)};

static const cyaml_schema_field_t conf_fields[] = {
    CYAML_FIELD_STRING_PTR("host", CYAML_FLAG_OPTIONAL, struct t_conf, host, 0, CYAML_UNLIMITED),
    CYAML_FIELD_INT("port", CYAML_FLAG_OPTIONAL, struct t_conf, port),
    CYAML_FIELD_BOOL("debug", CYAML_FLAG_OPTIONAL, struct t_conf, debug),
    CYAML_FIELD_MAPPING("routing", CYAML_FLAG_OPTIONAL, struct t_conf, routing, routing_fields),
    CYAML_FIELD_FLAGS("features", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, struct t_conf, features,
                      feature_strings, CYAML_ARRAY_LEN(feature_strings)),
    CYAML_FIELD_SEQUENCE("models", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, struct t_conf, models,
                         &model_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("api-keys", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, struct t_conf, keys,
                         &key_entry, 0, 8),
    CYAML_FIELD_END};
static const cyaml_schema_value_t conf_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct t_conf, conf_fields)};

static int conf_defaults(void *data, const struct cm_cfg_seen *seen, void *ud)
{
    struct t_conf *c = data;
    char path[64];
    (void)ud;
    if (!cm_cfg_seen(seen, "host")) {
        c->host = cm_strdup("127.0.0.1");
        if (!c->host)
            return CM_ERR_NOMEM;
    }
    if (!cm_cfg_seen(seen, "port"))
        c->port = 8317;
    if (!cm_cfg_seen(seen, "debug"))
        c->debug = true;
    if (!cm_cfg_seen(seen, "routing.retries"))
        c->routing.retries = 3;
    for (unsigned i = 0; i < c->keys_count; i++) {
        snprintf(path, sizeof path, "api-keys[%u].weight", i);
        if (!cm_cfg_seen(seen, path))
            c->keys[i].weight = 1;
    }
    return CM_OK;
}

static int conf_check(void *data, char *err, size_t errlen, void *ud)
{
    struct t_conf *c = data;
    char path[64];
    int rc;
    (void)ud;
    rc = cm_cfg_check_range(err, errlen, "port", c->port, 1, 65535);
    if (rc)
        return rc;
    for (unsigned i = 0; i < c->keys_count; i++) {
        snprintf(path, sizeof path, "api-keys[%u].weight", i);
        rc = cm_cfg_check_range(err, errlen, path, c->keys[i].weight, 0, 100);
        if (rc)
            return rc;
    }
    if (c->routing.strategy == STRAT_FILL_FIRST && c->keys_count == 0)
        return cm_cfg_fail(err, errlen, "routing.strategy: fill-first needs api-keys");
    return CM_OK;
}

static const struct cm_cfg_spec spec = {
    .schema = &conf_schema, .defaults = conf_defaults, .check = conf_check};

/* ---- log capture ---- */

struct logcap {
    char text[16384];
    size_t len;
    int lines[CM_LOG_OFF + 1];
};
static struct logcap cap;

static void sink(enum cm_log_level lvl, const char *line, size_t len, void *ud)
{
    (void)ud;
    cap.lines[lvl]++;
    if (cap.len + len < sizeof cap.text) {
        memcpy(cap.text + cap.len, line, len);
        cap.len += len;
        cap.text[cap.len] = '\0';
    }
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    cm_log_set_level(CM_LOG_INFO);
    cm_log_set_stderr(0);
    cm_log_set_sink(sink, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_log_set_sink(NULL, NULL);
    cm_log_set_stderr(1);
    cm_log_set_level(CM_LOG_INFO);
    cm_alloc_fail_at(0);
    return 0;
}

static int load(const char *yaml, struct t_conf **out, char *err, size_t errlen)
{
    void *p = NULL;
    int rc = cm_cfg_load_mem(&spec, "t.yaml", yaml, strlen(yaml), &p, err, errlen);
    if (rc == CM_OK)
        *out = p;
    return rc;
}

/* ---- tests ---- */

static void defaults_for_missing_keys(void **state)
{
    struct t_conf *c = NULL;
    char err[CM_CFG_ERR_MAX] = "x";
    (void)state;

    assert_int_equal(load("", &c, err, sizeof err), CM_OK); /* empty document */
    assert_string_equal(err, "");
    assert_string_equal(c->host, "127.0.0.1");
    assert_int_equal(c->port, 8317);
    assert_true(c->debug);
    assert_int_equal(c->routing.strategy, STRAT_ROUND_ROBIN);
    assert_int_equal(c->routing.retries, 3);
    assert_int_equal(c->models_count, 0);
    assert_null(c->keys);
    cm_cfg_free(&spec, c);

    /* explicit false and 0 are kept, not replaced by defaults */
    assert_int_equal(load("# only comments\ndebug: false\nrouting:\n  retries: 0\n"
                          "api-keys:\n  - name: a\n  - name: b\n    weight: 0\n",
                          &c, err, sizeof err),
                     CM_OK);
    assert_false(c->debug);
    assert_int_equal(c->routing.retries, 0);
    assert_int_equal(c->port, 8317);
    assert_int_equal(c->keys_count, 2);
    assert_int_equal(c->keys[0].weight, 1);
    assert_int_equal(c->keys[1].weight, 0);
    cm_cfg_free(&spec, c);
    assert_int_equal(cap.lines[CM_LOG_WARN] + cap.lines[CM_LOG_ERROR], 0);
}

static void full_document(void **state)
{
    struct t_conf *c = NULL;
    char err[CM_CFG_ERR_MAX];
    (void)state;

    assert_int_equal(load("host: example.org\nport: 0x1F90\ndebug: Yes\n"
                          "routing: {strategy: fill-first, retries: 7}\n"
                          "features: [alpha, gamma]\nmodels: [m1, \"m 2\"]\n"
                          "api-keys:\n  - {name: k1, weight: 5}\n  - name: k2\n",
                          &c, err, sizeof err),
                     CM_OK);
    assert_string_equal(c->host, "example.org");
    assert_int_equal(c->port, 8080);
    assert_true(c->debug);
    assert_int_equal(c->routing.strategy, STRAT_FILL_FIRST);
    assert_int_equal(c->routing.retries, 7);
    assert_int_equal(c->features, FEAT_ALPHA | FEAT_GAMMA);
    assert_int_equal(c->models_count, 2);
    assert_string_equal(c->models[1], "m 2");
    assert_int_equal(c->keys_count, 2);
    assert_string_equal(c->keys[0].name, "k1");
    assert_int_equal(c->keys[0].weight, 5);
    assert_int_equal(c->keys[1].weight, 1);
    cm_cfg_free(&spec, c);
    cm_cfg_free(&spec, NULL);
}

static const struct {
    const char *yaml;
    int rc;
    const char *msg; /* the whole message, or its start if it ends in '*' */
} bad[] = {
    {"port: abc\n", CM_ERR_INVAL, "t.yaml: port: expected an integer, got \"abc\""},
    {"port: 80abc\n", CM_ERR_INVAL, "t.yaml: port: expected an integer, got \"80abc\""},
    {"port: 1.5\n", CM_ERR_INVAL, "t.yaml: port: expected an integer, got \"1.5\""},
    {"port: 010\n", CM_ERR_INVAL, "t.yaml: port: expected an integer, got \"010\""},
    {"port: 99999999999\n", CM_ERR_INVAL,
     "t.yaml: port: integer out of range (-2147483648..2147483647), got \"99999999999\" "
     "(line 1, column 7)"},
    {"port: 70000\n", CM_ERR_INVAL, "t.yaml: port: must be between 1 and 65535, got 70000"},
    {"port: [1]\n", CM_ERR_INVAL,
     "t.yaml: port: expected an integer, got a sequence (line 1, column 7)"},
    {"debug: fasle\n", CM_ERR_INVAL,
     "t.yaml: debug: expected a boolean (true/false, yes/no, on/off), got \"fasle\""},
    {"routing:\n  strategy: nope\n", CM_ERR_INVAL,
     "t.yaml: routing.strategy: invalid value \"nope\" (expected one of: round-robin, "
     "fill-first) (line 2, column 13)"},
    {"routing:\n  retries: -1\n", CM_ERR_INVAL,
     "t.yaml: routing.retries: expected a non-negative integer, got \"-1\""},
    {"routing: 5\n", CM_ERR_INVAL,
     "t.yaml: routing: expected a mapping, got a scalar (line 1, column 10)"},
    {"routing:\n  strategy: fill-first\n", CM_ERR_INVAL,
     "t.yaml: routing.strategy: fill-first needs api-keys"},
    {"features: [alpha, zeta]\n", CM_ERR_INVAL,
     "t.yaml: features: invalid value \"zeta\" (expected any of: alpha, beta, gamma)*"},
    {"models: [a, [b]]\n", CM_ERR_INVAL,
     "t.yaml: models[1]: expected a string, got a sequence (line 1, column 13)"},
    {"api-keys:\n  - name: a\n  - name: b\n    weight: heavy\n", CM_ERR_INVAL,
     "t.yaml: api-keys[1].weight: expected an integer, got \"heavy\""},
    {"api-keys:\n  - name: a\n  - weight: 1\n", CM_ERR_INVAL,
     "t.yaml: api-keys[1].name: required key missing"},
    {"api-keys:\n  - name: a\n    weight: 101\n", CM_ERR_INVAL,
     "t.yaml: api-keys[0].weight: must be between 0 and 100, got 101"},
    {"api-keys:\n  - name: \"\"\n", CM_ERR_INVAL,
     "t.yaml: api-keys[0].name: too short (at least 1 characters)*"},
    {"api-keys: [{name: a}, {name: a}, {name: a}, {name: a}, {name: a}, {name: a}, {name: a},"
     " {name: a}, {name: a}]\n",
     CM_ERR_INVAL, "t.yaml: api-keys: at most 8 entries allowed*"},
    {"api-keys: {name: a}\n", CM_ERR_INVAL,
     "t.yaml: api-keys: expected a sequence, got a mapping*"},
    {"port: 1\nport: 2\n", CM_ERR_INVAL, "t.yaml: port: duplicate key*"},
    {"host: &h x\nmodels: [*h, *nope]\n", CM_ERR_INVAL, "t.yaml: models: unknown alias \"*nope\"*"},
    {"- 1\n- 2\n", CM_ERR_INVAL, "t.yaml: expected a mapping, got a sequence"},
    {"host: \"abc\nport: 1\n", CM_ERR_PARSE,
     "t.yaml: syntax error at line 3, column 1: found unexpected end of stream (while scanning a "
     "quoted scalar at line 1, column 7)"},
    {"models: [a, b\nport: 1\n", CM_ERR_PARSE,
     "t.yaml: syntax error at line 2, column 5: did not find expected ',' or ']' (while parsing a "
     "flow sequence at line 1, column 9)"},
    {"routing:\n  retries: 1\n bad: 2\n", CM_ERR_PARSE, "t.yaml: syntax error at line 3, *"},
};

static void errors_name_the_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct t_conf *c = (struct t_conf *)0x1;
        char err[CM_CFG_ERR_MAX] = "";
        size_t ml = strlen(bad[i].msg);
        int rc = load(bad[i].yaml, &c, err, sizeof err);

        if (rc != bad[i].rc || (bad[i].msg[ml - 1] == '*' ? strncmp(err, bad[i].msg, ml - 1) != 0
                                                          : strcmp(err, bad[i].msg) != 0))
            fail_msg("case %zu: yaml <<%s>>\n  rc %d (want %d)\n  got  <<%s>>\n  want <<%s>>", i,
                     bad[i].yaml, rc, bad[i].rc, err, bad[i].msg);
        assert_ptr_equal(c, (struct t_conf *)0x1); /* untouched on failure */
    }
    /* each failure was logged once, at ERROR */
    assert_int_equal(cap.lines[CM_LOG_ERROR], (int)(sizeof bad / sizeof bad[0]));
    assert_int_equal(count_substr(cap.text, "port: expected an integer, got \"abc\""), 1);
    assert_int_equal(cap.lines[CM_LOG_DEBUG], 0);
}

static void unknown_keys_warn_once(void **state)
{
    struct t_conf *c = NULL;
    char err[CM_CFG_ERR_MAX];
    (void)state;

    /* libcyaml says "Ignoring key" at DEBUG; at INFO it must still come out, as WARN */
    assert_int_equal(load("host: h\nfoo: 1\nrouting:\n  bar: {x: [1, 2]}\n  strategy: fill-first\n"
                          "api-keys:\n  - name: k\n    zzz: 2\n  - name: j\n    weight: 2\n",
                          &c, err, sizeof err),
                     CM_OK);
    assert_string_equal(c->host, "h");
    assert_int_equal(c->routing.strategy, STRAT_FILL_FIRST);
    assert_int_equal(c->keys[1].weight, 2);
    cm_cfg_free(&spec, c);

    assert_int_equal(cap.lines[CM_LOG_WARN], 3);
    assert_int_equal(count_substr(cap.text, "t.yaml: unknown key \"foo\" ignored"), 1);
    assert_int_equal(count_substr(cap.text, "t.yaml: unknown key \"routing.bar\" ignored"), 1);
    assert_int_equal(count_substr(cap.text, "t.yaml: unknown key \"api-keys[0].zzz\" ignored"), 1);
    assert_int_equal(count_substr(cap.text, "WARN "), 3);
    assert_int_equal(cap.lines[CM_LOG_DEBUG] + cap.lines[CM_LOG_INFO] + cap.lines[CM_LOG_ERROR], 0);
}

static void debug_level_shows_chatter(void **state)
{
    struct t_conf *c = NULL;
    char err[CM_CFG_ERR_MAX];
    (void)state;

    assert_int_equal(load("port: 1\n", &c, err, sizeof err), CM_OK);
    assert_int_equal(cap.lines[CM_LOG_DEBUG], 0);
    cm_cfg_free(&spec, c);
    cm_log_set_level(CM_LOG_DEBUG);
    assert_int_equal(load("port: 1\n", &c, err, sizeof err), CM_OK);
    cm_cfg_free(&spec, c);
    assert_true(cap.lines[CM_LOG_DEBUG] > 5);
    assert_non_null(strstr(cap.text, "libcyaml: Load: [port]"));
}

static const char *const probe_paths[] = {"host",
                                          "port",
                                          "routing",
                                          "routing.retries",
                                          "routing.strategy",
                                          "foo",
                                          "routing.bar",
                                          "api-keys",
                                          "api-keys[0].name",
                                          "api-keys[0].weight",
                                          "api-keys[1].weight",
                                          "api-keys[1].zzz",
                                          "models",
                                          "models[0]"};
static char probe_answers[sizeof probe_paths / sizeof probe_paths[0] + 1];

static int probe_defaults(void *data, const struct cm_cfg_seen *seen, void *ud)
{
    (void)data;
    (void)ud;
    for (size_t i = 0; i < sizeof probe_paths / sizeof probe_paths[0]; i++)
        probe_answers[i] = cm_cfg_seen(seen, probe_paths[i]) ? '1' : '0';
    return CM_OK;
}

static void seen_paths(void **state)
{
    const struct cm_cfg_spec probe = {.schema = &conf_schema, .defaults = probe_defaults};
    const char *yaml = "port: 1\nfoo: 2\nrouting:\n  bar: 1\n  retries: 2\nmodels: [x]\n"
                       "api-keys:\n  - name: a\n  - {name: b, weight: 3, zzz: 1}\n";
    void *p = NULL;
    (void)state;

    assert_int_equal(cm_cfg_load_mem(&probe, NULL, yaml, strlen(yaml), &p, NULL, 0), CM_OK);
    /*                   h p r rr rs f rb ak n0 w0 w1 z1 m m0 */
    assert_string_equal(probe_answers, "01110001101010");
    cm_cfg_free(&probe, p);
    assert_non_null(strstr(cap.text, "<memory>: unknown key \"foo\" ignored"));
    assert_non_null(strstr(cap.text, "<memory>: unknown key \"api-keys[1].zzz\" ignored"));
    assert_int_equal(cm_cfg_seen(NULL, "port"), 0);
}

static void files(void **state)
{
    struct t_conf *c = NULL;
    void *p = (void *)0x1;
    char err[CM_CFG_ERR_MAX], path[600], dir[512];
    const char *data = getenv("CM_TEST_DATA");
    (void)state;

    assert_int_equal(cm_cfg_load_file(&spec, "/nonexistent/config.yaml", &p, err, sizeof err),
                     CM_ERR_NOTFOUND);
    assert_ptr_equal(p, (void *)0x1);
    assert_string_equal(err, "/nonexistent/config.yaml: cannot open: No such file or directory");
    assert_int_equal(cm_cfg_load_file(&spec, "/tmp", &p, err, sizeof err), CM_ERR_INVAL);
    assert_string_equal(err, "/tmp: not a regular file");

    if (!data) { /* run by hand: tests/fixtures next to this file */
        snprintf(dir, sizeof dir, "%s", __FILE__);
        if (strstr(dir, "/unit/common/"))
            snprintf(strstr(dir, "/unit/common/"), 10, "/fixtures");
        data = dir;
    }
    snprintf(path, sizeof path, "%s/cfg/good.yaml", data);
    assert_int_equal(cm_cfg_load_file(&spec, path, &p, err, sizeof err), CM_OK);
    c = p;
    assert_string_equal(c->host, "0.0.0.0");
    assert_false(c->debug);
    assert_int_equal(c->routing.retries, 5);
    assert_int_equal(c->features, FEAT_ALPHA | FEAT_GAMMA);
    assert_int_equal(c->models_count, 2);
    assert_int_equal(c->keys_count, 2);
    assert_int_equal(c->keys[1].weight, 1);
    cm_cfg_free(&spec, c);

    snprintf(path, sizeof path, "%s/cfg/bad_type.yaml", data);
    assert_int_equal(cm_cfg_load_file(&spec, path, &p, err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "cfg/bad_type.yaml: api-keys[1].weight: expected an integer, got "
                                "\"heavy\""));
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
}

static void small_err_buffer_and_bad_args(void **state)
{
    void *p = NULL;
    char err[8];
    static const cyaml_schema_value_t not_ptr = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct t_conf, conf_fields)};
    const struct cm_cfg_spec bad_spec = {.schema = &not_ptr};
    (void)state;

    assert_int_equal(cm_cfg_load_mem(&spec, "t.yaml", "port: x", 7, &p, err, sizeof err),
                     CM_ERR_INVAL);
    assert_string_equal(err, "t.yaml:");
    assert_int_equal(cm_cfg_load_mem(&spec, "t.yaml", "port: x", 7, &p, NULL, 0), CM_ERR_INVAL);
    assert_int_equal(cm_cfg_load_mem(&bad_spec, "t.yaml", "", 0, &p, NULL, 0), CM_ERR_INVAL);
    assert_int_equal(cm_cfg_load_mem(&spec, "t.yaml", "", 0, NULL, NULL, 0), CM_ERR_INVAL);
    assert_null(p);
}

static void long_values_are_cut(void **state)
{
    char yaml[4096], err[CM_CFG_ERR_MAX];
    struct t_conf *c = NULL;
    (void)state;

    /* longer than libcyaml's log line: still judged, and quoted cut */
    memcpy(yaml, "debug: ", 7);
    memset(yaml + 7, 'x', 3000);
    yaml[3007] = '\0';
    assert_int_equal(load(yaml, &c, err, sizeof err), CM_ERR_INVAL);
    assert_non_null(strstr(err, "t.yaml: debug: expected a boolean"));
    assert_non_null(strstr(err, "xxx...\""));
    assert_true(strlen(err) < 200);
}

static void oom_fails_cleanly(void **state)
{
    const char *yaml = "host: h\nunknown: 1\nrouting: {strategy: fill-first}\n"
                       "models: [a, b, c]\napi-keys:\n  - name: k\n  - name: j\n";
    int ok = 0, n;
    (void)state;

    for (n = 1; n < 500 && !ok; n++) {
        void *p = NULL;
        char err[CM_CFG_ERR_MAX];
        int rc;
        cm_alloc_fail_at(n);
        rc = cm_cfg_load_mem(&spec, "t.yaml", yaml, strlen(yaml), &p, err, sizeof err);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            ok = 1;
            cm_cfg_free(&spec, p);
        } else {
            if (rc != CM_ERR_NOMEM)
                fail_msg("allocation %d: rc %d (%s)", n, rc, err);
            assert_null(p);
        }
    }
    assert_true(ok);
    assert_true(n > 10); /* the walk did go through the allocations */
}

/* ---- to JSON ---- */

/* cm_cfg_to_json() printed, or "rc=<n>" */
static char *to_json_text(const struct cm_cfg_spec *sp, const void *cfg, const char *const *omit)
{
    static char text[4096];
    cJSON *j = NULL;
    char *out = NULL;
    int rc = cm_cfg_to_json(sp, cfg, omit, &j);

    if (rc == CM_OK)
        rc = cm_json_print(j, &out, NULL);
    cJSON_Delete(j);
    if (rc)
        snprintf(text, sizeof text, "rc=%d", rc);
    else
        snprintf(text, sizeof text, "%s", out);
    cm_free(out);
    return text;
}

static void to_json_of_loaded_config(void **state)
{
    static const char *const nothing[] = {NULL};
    static const char *const some[] = {
        "routing.strategy",   "models[0]", "api-keys[*].weight", "no.such", "model",
        "routing.strategy.x", NULL};
    static const char *const whole[] = {"routing", "api-keys", "host", NULL};
    static const char *const entries[] = {"api-keys[*]", "models[]", NULL};
    static const char *const one[] = {"api-keys[1].name", "models[1]", "features[0]", NULL};
    struct t_conf *c = NULL;
    char err[CM_CFG_ERR_MAX];
    (void)state;

    assert_int_equal(load("host: h\nport: 99\nrouting: {strategy: fill-first}\n"
                          "features: [alpha, beta]\nmodels: [m1, m2]\n"
                          "api-keys:\n  - {name: k1, weight: 5}\n  - name: k2\n",
                          &c, err, sizeof err),
                     CM_OK);
    /* schema order, defaults included, inline mapping, enum and flags by name */
    assert_string_equal(
        to_json_text(&spec, c, NULL),
        "{\"host\":\"h\",\"port\":99,\"debug\":true,"
        "\"routing\":{\"strategy\":\"fill-first\",\"retries\":3},"
        "\"features\":[\"alpha\",\"beta\"],\"models\":[\"m1\",\"m2\"],"
        "\"api-keys\":[{\"name\":\"k1\",\"weight\":5},{\"name\":\"k2\",\"weight\":1}]}");
    assert_string_equal(to_json_text(&spec, c, nothing), to_json_text(&spec, c, NULL));
    /* omit: a nested key, one entry, a key of every entry; near misses match nothing */
    assert_string_equal(to_json_text(&spec, c, some),
                        "{\"host\":\"h\",\"port\":99,\"debug\":true,\"routing\":{\"retries\":3},"
                        "\"features\":[\"alpha\",\"beta\"],\"models\":[\"m2\"],"
                        "\"api-keys\":[{\"name\":\"k1\"},{\"name\":\"k2\"}]}");
    /* omitting a mapping or sequence drops everything under it */
    assert_string_equal(to_json_text(&spec, c, whole),
                        "{\"port\":99,\"debug\":true,\"features\":[\"alpha\",\"beta\"],"
                        "\"models\":[\"m1\",\"m2\"]}");
    /* "[*]" drops every entry (the array stays); "[]" is no index and matches nothing */
    assert_string_equal(to_json_text(&spec, c, entries),
                        "{\"host\":\"h\",\"port\":99,\"debug\":true,"
                        "\"routing\":{\"strategy\":\"fill-first\",\"retries\":3},"
                        "\"features\":[\"alpha\",\"beta\"],\"models\":[\"m1\",\"m2\"],"
                        "\"api-keys\":[]}");
    /* a FLAGS value is one scalar: its strings have no paths of their own */
    assert_string_equal(to_json_text(&spec, c, one),
                        "{\"host\":\"h\",\"port\":99,\"debug\":true,"
                        "\"routing\":{\"strategy\":\"fill-first\",\"retries\":3},"
                        "\"features\":[\"alpha\",\"beta\"],\"models\":[\"m1\"],"
                        "\"api-keys\":[{\"name\":\"k1\",\"weight\":5},{\"weight\":1}]}");
    cm_cfg_free(&spec, c);

    /* empty document: NULL sequences are [] */
    assert_int_equal(load("", &c, err, sizeof err), CM_OK);
    assert_string_equal(to_json_text(&spec, c, NULL),
                        "{\"host\":\"127.0.0.1\",\"port\":8317,\"debug\":true,"
                        "\"routing\":{\"strategy\":\"round-robin\",\"retries\":3},"
                        "\"features\":[],\"models\":[],\"api-keys\":[]}");
    cm_cfg_free(&spec, c);
}

/* every libcyaml type, built by hand */

enum color { COLOR_RED, COLOR_GREEN, COLOR_BLUE };

struct j_item {
    char *id;
    uint16_t port;
};

struct j_inner {
    char *name;
    int64_t big;
};

struct j_unkept {
    char unused_;
};

struct j_all {
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint8_t u8;
    uint32_t u32;
    uint64_t u64;
    bool yes, no;
    enum color color, color_alias, color_raw;
    unsigned features;
    uint32_t bits;
    float f;
    double d, inf;
    char *str, *null_str;
    char inl[8];
    struct j_inner *inner, *null_inner;
    struct j_inner embedded;
    char **names;
    unsigned names_count;
    struct j_item *items;
    uint8_t items_count; /* a 1-byte count */
    struct j_item **pitems;
    uint64_t pitems_count; /* an 8-byte count */
    char **empty;
    unsigned empty_count;
    int fixed[3];
    struct j_unkept *unkept;
};

static const cyaml_strval_t color_strings[] = {
    {"red", COLOR_RED}, {"green", COLOR_GREEN}, {"verde", COLOR_GREEN}, {"blue", COLOR_BLUE}};
static const cyaml_bitdef_t nibbles[] = {{"lo", 0, 4}, {"hi", 4, 4}};

static const cyaml_schema_field_t item_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, struct j_item, id, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("port", CYAML_FLAG_DEFAULT, struct j_item, port), CYAML_FIELD_END};
static const cyaml_schema_value_t item_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct j_item, item_fields)};
static const cyaml_schema_value_t item_ptr_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER | CYAML_FLAG_POINTER_NULL, struct j_item, item_fields)};
static const cyaml_schema_field_t inner_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER_NULL, struct j_inner, name, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_INT("big", CYAML_FLAG_DEFAULT, struct j_inner, big), CYAML_FIELD_END};
static const cyaml_schema_field_t unkept_fields[] = {
    CYAML_FIELD_IGNORE("whatever", CYAML_FLAG_OPTIONAL), CYAML_FIELD_END};
static const cyaml_schema_value_t int_entry = {CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int)};
static const cyaml_schema_value_t str_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER | CYAML_FLAG_POINTER_NULL, char, 0, CYAML_UNLIMITED)};

#define J_INT(k, m) CYAML_FIELD_INT(k, CYAML_FLAG_DEFAULT, struct j_all, m)
#define J_UINT(k, m) CYAML_FIELD_UINT(k, CYAML_FLAG_DEFAULT, struct j_all, m)
#define J_COLOR(k, m, fl)                                                                          \
    CYAML_FIELD_ENUM(k, fl, struct j_all, m, color_strings, CYAML_ARRAY_LEN(color_strings))
#define J_SEQ(k, m, e) CYAML_FIELD_SEQUENCE(k, CYAML_FLAG_POINTER, struct j_all, m, e, 0, 100)

static const cyaml_schema_field_t all_fields[] = {
    J_INT("i8", i8),
    J_INT("i16", i16),
    J_INT("i32", i32),
    J_INT("i64", i64),
    J_UINT("u8", u8),
    J_UINT("u32", u32),
    J_UINT("u64", u64),
    CYAML_FIELD_BOOL("yes", CYAML_FLAG_DEFAULT, struct j_all, yes),
    CYAML_FIELD_BOOL("no", CYAML_FLAG_DEFAULT, struct j_all, no),
    J_COLOR("color", color, CYAML_FLAG_STRICT),
    J_COLOR("color-alias", color_alias, CYAML_FLAG_STRICT),
    J_COLOR("color-raw", color_raw, CYAML_FLAG_DEFAULT),
    CYAML_FIELD_FLAGS("features", CYAML_FLAG_DEFAULT, struct j_all, features, feature_strings,
                      CYAML_ARRAY_LEN(feature_strings)),
    CYAML_FIELD_BITFIELD("bits", CYAML_FLAG_DEFAULT, struct j_all, bits, nibbles,
                         CYAML_ARRAY_LEN(nibbles)),
    CYAML_FIELD_FLOAT("f", CYAML_FLAG_DEFAULT, struct j_all, f),
    CYAML_FIELD_FLOAT("d", CYAML_FLAG_DEFAULT, struct j_all, d),
    CYAML_FIELD_FLOAT("inf", CYAML_FLAG_DEFAULT, struct j_all, inf),
    CYAML_FIELD_STRING_PTR("str", CYAML_FLAG_POINTER, struct j_all, str, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("null-str", CYAML_FLAG_POINTER_NULL, struct j_all, null_str, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING("inline", CYAML_FLAG_DEFAULT, struct j_all, inl, 0),
    CYAML_FIELD_IGNORE("ignored", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_MAPPING_PTR("inner", CYAML_FLAG_POINTER_NULL, struct j_all, inner, inner_fields),
    CYAML_FIELD_MAPPING_PTR("null-inner", CYAML_FLAG_POINTER_NULL, struct j_all, null_inner,
                            inner_fields),
    CYAML_FIELD_MAPPING("embedded", CYAML_FLAG_DEFAULT, struct j_all, embedded, inner_fields),
    J_SEQ("names", names, &str_entry),
    J_SEQ("items", items, &item_entry),
    J_SEQ("pitems", pitems, &item_ptr_entry),
    J_SEQ("empty", empty, &str_entry),
    CYAML_FIELD_SEQUENCE_FIXED("fixed", CYAML_FLAG_DEFAULT, struct j_all, fixed, &int_entry, 3),
    CYAML_FIELD_MAPPING_PTR("unkept", CYAML_FLAG_POINTER_NULL, struct j_all, unkept, unkept_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t all_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct j_all, all_fields)};
static const struct cm_cfg_spec all_spec = {.schema = &all_schema};

#define ALL_JSON                                                                                   \
    "{\"i8\":-8,\"i16\":-1600,\"i32\":-320000,\"i64\":\"-9223372036854775808\",\"u8\":200,"        \
    "\"u32\":4000000000,\"u64\":\"18446744073709551615\",\"yes\":true,\"no\":false,"               \
    "\"color\":\"blue\",\"color-alias\":\"green\",\"color-raw\":7,"                                \
    "\"features\":[\"alpha\",\"gamma\",8],\"bits\":{\"lo\":5,\"hi\":10},"                          \
    "\"f\":1.5,\"d\":-0.25,\"inf\":null,\"str\":\"say \\\"hi\\\"\",\"inline\":\"abc\","            \
    "\"inner\":{\"name\":\"in\",\"big\":9007199254740991},\"embedded\":{\"big\":-1},"              \
    "\"names\":[\"a\",null,\"c\"],\"items\":[{\"id\":\"x\",\"port\":80},{\"id\":\"y\","            \
    "\"port\":443}],\"pitems\":[{\"id\":\"x\",\"port\":80},null],\"empty\":[],"                    \
    "\"fixed\":[1,2,3]}"

/* Fills @p a with one value of every kind; the pointers point into @p a and statics. */
static void fill_all(struct j_all *a)
{
    static char s_a[] = "a", s_c[] = "c", s_x[] = "x", s_y[] = "y", s_in[] = "in",
                s_str[] = "say \"hi\"";
    static char *names[3];
    static struct j_item items[2];
    static struct j_item *pitems[2];
    static struct j_inner inner;
    static struct j_unkept unkept;

    memset(a, 0, sizeof *a);
    a->i8 = -8;
    a->i16 = -1600;
    a->i32 = -320000;
    a->i64 = INT64_MIN;
    a->u8 = 200;
    a->u32 = 4000000000u;
    a->u64 = UINT64_MAX;
    a->yes = true;
    a->color = COLOR_BLUE;
    a->color_alias = COLOR_GREEN;
    a->color_raw = (enum color)7;
    a->features = FEAT_ALPHA | FEAT_GAMMA | 8;
    a->bits = 0xA5;
    a->f = 1.5f;
    a->d = -0.25;
    a->inf = INFINITY;
    a->str = s_str;
    memcpy(a->inl, "abc", 4);
    inner.name = s_in;
    inner.big = INT64_C(9007199254740991);
    a->inner = &inner;
    a->embedded.big = -1;
    names[0] = s_a;
    names[1] = NULL;
    names[2] = s_c;
    a->names = names;
    a->names_count = 3;
    items[0].id = s_x;
    items[0].port = 80;
    items[1].id = s_y;
    items[1].port = 443;
    a->items = items;
    a->items_count = 2;
    pitems[0] = &items[0];
    pitems[1] = NULL;
    a->pitems = pitems;
    a->pitems_count = 2;
    a->fixed[0] = 1;
    a->fixed[1] = 2;
    a->fixed[2] = 3;
    a->unkept = &unkept; /* present, but all its keys are IGNORE: left out */
}

static void to_json_every_type(void **state)
{
    static const char *const omit[] = {
        "inner.big", "names[1]", "pitems[*].port", "fixed[2]", "features", "bits.lo", NULL};
    struct j_all a;
    (void)state;

    fill_all(&a);
    assert_string_equal(to_json_text(&all_spec, &a, NULL), ALL_JSON);
    assert_string_equal(
        to_json_text(&all_spec, &a, omit),
        "{\"i8\":-8,\"i16\":-1600,\"i32\":-320000,\"i64\":\"-9223372036854775808\",\"u8\":200,"
        "\"u32\":4000000000,\"u64\":\"18446744073709551615\",\"yes\":true,\"no\":false,"
        "\"color\":\"blue\",\"color-alias\":\"green\",\"color-raw\":7,"
        "\"bits\":{\"hi\":10},\"f\":1.5,\"d\":-0.25,\"inf\":null,\"str\":\"say \\\"hi\\\"\","
        "\"inline\":\"abc\",\"inner\":{\"name\":\"in\"},\"embedded\":{\"big\":-1},"
        "\"names\":[\"a\",\"c\"],\"items\":[{\"id\":\"x\",\"port\":80},{\"id\":\"y\","
        "\"port\":443}],\"pitems\":[{\"id\":\"x\"},null],\"empty\":[],\"fixed\":[1,2]}");

    /* the edges of exact integers */
    a.i64 = INT64_C(-9007199254740991);
    a.u64 = UINT64_C(9007199254740992);
    assert_non_null(strstr(to_json_text(&all_spec, &a, NULL),
                           "\"i64\":-9007199254740991,\"u8\":200,\"u32\":4000000000,"
                           "\"u64\":\"9007199254740992\","));
    a.d = NAN;
    assert_non_null(strstr(to_json_text(&all_spec, &a, NULL), "\"d\":null,"));
}

struct j_node {
    int v;
    struct j_node *next;
};

static const cyaml_schema_field_t node_fields[] = {
    CYAML_FIELD_INT("v", CYAML_FLAG_DEFAULT, struct j_node, v),
    CYAML_FIELD_MAPPING_PTR("next", CYAML_FLAG_POINTER_NULL, struct j_node, next, node_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t node_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct j_node, node_fields)};
static const struct cm_cfg_spec node_spec = {.schema = &node_schema};

struct j_odd {
    int v;
    char **list;
    unsigned list_count;
};

static void to_json_errors(void **state)
{
    static const cyaml_schema_value_t inline_top = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct j_node, node_fields)};
    static const struct cm_cfg_spec inline_spec = {.schema = &inline_top};
    static const cyaml_schema_field_t odd_int_fields[] = {
        {.key = "v", .value = {.type = CYAML_INT, .data_size = 3}}, CYAML_FIELD_END};
    static const cyaml_schema_value_t odd_int = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct j_odd, odd_int_fields)};
    static const struct cm_cfg_spec odd_int_spec = {.schema = &odd_int};
    static const cyaml_schema_field_t list_fields[] = {
        CYAML_FIELD_SEQUENCE("list", CYAML_FLAG_POINTER, struct j_odd, list, &str_entry, 0, 9),
        CYAML_FIELD_END};
    static const cyaml_schema_value_t list_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct j_odd, list_fields)};
    static const struct cm_cfg_spec list_spec = {.schema = &list_schema};
    static char longkey[400];
    static cyaml_schema_field_t long_inner[] = {
        {.key = longkey, .value = {CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int)}}, CYAML_FIELD_END};
    static cyaml_schema_field_t long_outer[] = {
        {.key = longkey,
         .value = {CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct j_odd, long_inner)}},
        CYAML_FIELD_END};
    static const cyaml_schema_value_t long_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct j_odd, long_outer)};
    static const struct cm_cfg_spec long_spec = {.schema = &long_schema};
    struct j_node nodes[100];
    struct j_odd odd = {0};
    struct j_all a;
    cJSON *sentinel = (cJSON *)&a, *j = sentinel;
    (void)state;

    fill_all(&a);
    assert_int_equal(cm_cfg_to_json(NULL, &a, NULL, &j), CM_ERR_INVAL);
    assert_int_equal(cm_cfg_to_json(&all_spec, NULL, NULL, &j), CM_ERR_INVAL);
    assert_int_equal(cm_cfg_to_json(&all_spec, &a, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(cm_cfg_to_json(&inline_spec, nodes, NULL, &j), CM_ERR_INVAL);
    /* schemas the walker cannot read */
    assert_int_equal(cm_cfg_to_json(&odd_int_spec, &odd, NULL, &j), CM_ERR_INTERNAL);
    odd.list_count = 2; /* entries, but no array */
    assert_int_equal(cm_cfg_to_json(&list_spec, &odd, NULL, &j), CM_ERR_INTERNAL);
    odd.list_count = 0;
    assert_string_equal(to_json_text(&list_spec, &odd, NULL), "{\"list\":[]}");
    assert_ptr_equal(j, sentinel); /* never written on failure */

    /* nesting: a short chain is fine, one deeper than the cap is CM_ERR_LIMIT */
    for (int i = 0; i < 100; i++) {
        nodes[i].v = i;
        nodes[i].next = i + 1 < 100 ? &nodes[i + 1] : NULL;
    }
    nodes[2].next = NULL;
    assert_string_equal(to_json_text(&node_spec, nodes, NULL),
                        "{\"v\":0,\"next\":{\"v\":1,\"next\":{\"v\":2}}}");
    nodes[2].next = &nodes[3];
    assert_int_equal(cm_cfg_to_json(&node_spec, nodes, NULL, &j), CM_ERR_LIMIT);
    assert_ptr_equal(j, sentinel);

    /* a key path longer than the path buffer */
    memset(longkey, 'k', 300);
    assert_int_equal(cm_cfg_to_json(&long_spec, &odd, NULL, &j), CM_ERR_LIMIT);
    longkey[100] = '\0';
    assert_int_equal(cm_cfg_to_json(&long_spec, &odd, NULL, &j), CM_OK);
    assert_ptr_not_equal(j, sentinel);
    cJSON_Delete(j);
}

static void to_json_oom(void **state)
{
    struct j_all a;
    int ok = 0, n;
    (void)state;

    fill_all(&a);
    for (n = 1; n < 1000 && !ok; n++) {
        cJSON *sentinel = (cJSON *)&a, *j = sentinel;
        int rc;
        cm_alloc_fail_at(n);
        rc = cm_cfg_to_json(&all_spec, &a, NULL, &j);
        cm_alloc_fail_at(0);
        if (rc == CM_OK) {
            ok = 1;
            cJSON_Delete(j);
        } else {
            if (rc != CM_ERR_NOMEM)
                fail_msg("allocation %d: rc %d", n, rc);
            assert_ptr_equal(j, sentinel);
        }
    }
    assert_true(ok);
    assert_true(n > 30); /* every object, array, member name and string allocates */
    assert_string_equal(to_json_text(&all_spec, &a, NULL), ALL_JSON);
}

/* ---- the slot ---- */

struct counted {
    int generation;
    int check; /* always generation * 7: a torn read would break it */
};

static atomic_int frees, wrong_ud;

/* may run on a reader thread: no cmocka asserts here */
static void counted_free(void *cfg, const void *ud)
{
    if (ud != &frees)
        atomic_store(&wrong_ud, 1);
    atomic_fetch_add(&frees, 1);
    cm_free(cfg);
}

static struct counted *counted_new(int gen)
{
    struct counted *c = cm_malloc(sizeof *c);
    assert_non_null(c);
    c->generation = gen;
    c->check = gen * 7;
    return c;
}

static void slot_basics(void **state)
{
    struct cm_cfg_slot *s = NULL;
    struct cm_cfg_ref *r1, *r2;
    (void)state;

    atomic_store(&frees, 0);
    assert_int_equal(cm_cfg_slot_new(&s, NULL, NULL), CM_ERR_INVAL);
    assert_int_equal(cm_cfg_slot_new(&s, counted_free, &frees), CM_OK);
    assert_null(cm_cfg_slot_acquire(s));
    assert_null(cm_cfg_ref_get(NULL));
    cm_cfg_ref_release(NULL);

    assert_int_equal(cm_cfg_slot_swap(s, counted_new(1)), CM_OK);
    r1 = cm_cfg_slot_acquire(s);
    assert_int_equal(((const struct counted *)cm_cfg_ref_get(r1))->generation, 1);

    assert_int_equal(cm_cfg_slot_swap(s, counted_new(2)), CM_OK);
    assert_int_equal(atomic_load(&frees), 0); /* r1 still holds generation 1 */
    assert_int_equal(((const struct counted *)cm_cfg_ref_get(r1))->generation, 1);
    r2 = cm_cfg_slot_acquire(s);
    assert_int_equal(((const struct counted *)cm_cfg_ref_get(r2))->generation, 2);
    cm_cfg_ref_release(r1);
    assert_int_equal(atomic_load(&frees), 1);

    /* a failed swap changes nothing and leaves the config with the caller */
    {
        struct counted *c3 = counted_new(3);
        cm_alloc_fail_at(1);
        assert_int_equal(cm_cfg_slot_swap(s, c3), CM_ERR_NOMEM);
        cm_alloc_fail_at(0);
        cm_free(c3);
    }

    cm_cfg_slot_free(s); /* r2 outlives the slot */
    assert_int_equal(atomic_load(&frees), 1);
    assert_int_equal(((const struct counted *)cm_cfg_ref_get(r2))->generation, 2);
    cm_cfg_ref_release(r2);
    assert_int_equal(atomic_load(&frees), 2);

    assert_int_equal(cm_cfg_slot_new(&s, counted_free, &frees), CM_OK);
    assert_int_equal(cm_cfg_slot_swap(s, counted_new(4)), CM_OK);
    assert_int_equal(cm_cfg_slot_swap(s, NULL), CM_OK); /* empty again */
    assert_int_equal(atomic_load(&frees), 3);
    assert_null(cm_cfg_slot_acquire(s));
    cm_cfg_slot_free(s);
    cm_cfg_slot_free(NULL);
}

#define READERS 8
#define SWAPS 2000

struct race {
    struct cm_cfg_slot *slot;
    atomic_int stop;
    atomic_int bad;
    atomic_long reads;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    int last = 0;
    while (!atomic_load(&r->stop)) {
        struct cm_cfg_ref *ref = cm_cfg_slot_acquire(r->slot);
        const struct counted *c = cm_cfg_ref_get(ref);
        if (!c || c->check != c->generation * 7 || c->generation < last)
            atomic_store(&r->bad, 1);
        else
            last = c->generation;
        cm_cfg_ref_release(ref);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

static void slot_concurrent(void **state)
{
    struct race r;
    pthread_t t[READERS];
    int g;
    (void)state;

    atomic_store(&frees, 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(cm_cfg_slot_new(&r.slot, counted_free, &frees), CM_OK);
    assert_int_equal(cm_cfg_slot_swap(r.slot, counted_new(1)), CM_OK);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    /* swap at least SWAPS times, and on until the readers have done plenty of reads */
    for (g = 2; g <= SWAPS || (atomic_load(&r.reads) < 20000 && g < 10000000); g++)
        assert_int_equal(cm_cfg_slot_swap(r.slot, counted_new(g)), CM_OK);
    atomic_store(&r.stop, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_true(atomic_load(&r.reads) > 0);
    assert_int_equal(atomic_load(&frees), g - 2);
    cm_cfg_slot_free(r.slot);
    assert_int_equal(atomic_load(&frees), g - 1);
    assert_int_equal(atomic_load(&wrong_ud), 0);
}

/* the documented reload pattern: a bad file leaves the old config in force */
static void reload_keeps_old_on_error(void **state)
{
    struct cm_cfg_slot *live = NULL;
    struct cm_cfg_ref *ref;
    void *cfg = NULL;
    char err[CM_CFG_ERR_MAX];
    const char *versions[] = {"port: 1000\n", "port: nope\n", "port: 0\n", "port: 3000\n"};
    int expect[] = {1000, 1000, 1000, 3000};
    (void)state;

    assert_int_equal(cm_cfg_slot_new(&live, cm_cfg_free_with_spec, &spec), CM_OK);
    for (size_t i = 0; i < 4; i++) {
        if (cm_cfg_load_mem(&spec, "t.yaml", versions[i], strlen(versions[i]), &cfg, err,
                            sizeof err) == CM_OK &&
            cm_cfg_slot_swap(live, cfg) != CM_OK)
            cm_cfg_free(&spec, cfg);
        ref = cm_cfg_slot_acquire(live);
        assert_int_equal(((const struct t_conf *)cm_cfg_ref_get(ref))->port, expect[i]);
        cm_cfg_ref_release(ref);
    }
    cm_cfg_slot_free(live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults_for_missing_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(full_document, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_name_the_path, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_keys_warn_once, setup, teardown),
        cmocka_unit_test_setup_teardown(debug_level_shows_chatter, setup, teardown),
        cmocka_unit_test_setup_teardown(seen_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(files, setup, teardown),
        cmocka_unit_test_setup_teardown(small_err_buffer_and_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(long_values_are_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(oom_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(to_json_of_loaded_config, setup, teardown),
        cmocka_unit_test_setup_teardown(to_json_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(to_json_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(to_json_oom, setup, teardown),
        cmocka_unit_test_setup_teardown(slot_basics, setup, teardown),
        cmocka_unit_test_setup_teardown(slot_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(reload_keeps_old_on_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
