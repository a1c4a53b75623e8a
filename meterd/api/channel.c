/* SPDX-License-Identifier: MIT */
/*
 * channel.c - the channel admin routes (spec newapi.md 3.5, 4.4, 4.6), AdminAuth:
 *   GET    /api/channel/            paged list (p, page_size, id_sort, sort_by, sort_order,
 *                                   status, type, group, tag), with type_counts; no keys
 *   GET    /api/channel/search      keyword, group, model, status, type, paged (default 20)
 *   GET    /api/channel/models      OpenAI-style list of the models of enabled channels
 *   GET    /api/channel/models_enabled   the same as plain names
 *   GET    /api/channel/test        tests every channel but the manually disabled ones in
 *                                   the background; answers at once
 *   GET    /api/channel/test/:id    a real request to the channel; {"success","message","time"}
 *   GET    /api/channel/:id         one channel, without its key
 *   POST   /api/channel/            {"mode":"single"|"batch"|"multi_to_single","channel":{...}}
 *   PUT    /api/channel/            edit: the fields sent (a field sent as "" or 0 IS written,
 *                                   unlike NewAPI's GORM Updates); key only when not empty
 *   DELETE /api/channel/disabled    deletes status 2 and 3 -> data: count
 *   DELETE /api/channel/:id         hard delete (+ abilities)
 *   POST   /api/channel/batch       {"ids"} delete -> data: count
 *   POST   /api/channel/fix         rebuild abilities -> data: {"success","fails"}
 *   POST   /api/channel/tag/disabled, /tag/enabled {"tag"}; POST /api/channel/batch/tag
 * Abilities are kept in step by the store in the same transaction as every channel write.
 * Keys never leave through this API and never reach a log line.
 *
 * The channel test never blocks a server thread: the handler keeps a reference to the
 * request and starts the upstream request on srv->client; the reply, the test result
 * (response_time, test_time) and any automatic enable/disable are done by the transfer's
 * completion callback on the client's I/O thread (short single-row store writes).
 */
#include "api/areas.h"

#include "api/admin_util.h"
#include "api/envelope.h"
#include "api/session.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/json.h"
#include "cm/log.h"
#include "optcache.h"
#include "store/channels.h"
#include "store/users.h"

#include <float.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define LIST_CHUNK 1000         /* rows per store call when filtering in memory */
#define TEST_TOTAL_MS 60000     /* a channel test's total timeout */
#define TEST_CONNECT_MS 10000   /* and its connect timeout */
#define TEST_MAX_RESPONSE 65536 /* the most of a test answer kept */
#define CHANNEL_NAME_MAX 255    /* bytes */
#define STATUS_NOT_ENABLED (-2) /* status filter: every status but 1 (NewAPI's "disabled") */

/* ---- channel <-> JSON ---- */

enum fkind {
    F_STR,     /* plain text */
    F_JSONSTR, /* text holding a JSON object, or "" (an object sent as such is printed) */
    F_OBJ,     /* channel_info: an object in the API, JSON text in the table */
    F_INT,
    F_I64,
};

struct cfield {
    const char *json;
    size_t off;
    enum fkind kind;
    int64_t min, max;
};

#define OFF(f) offsetof(struct mt_channel, f)
#define I64_BIG CM_JSON_INT_MAX
static const struct cfield FIELDS[] = {
    {"type", OFF(type), F_INT, 0, 1000},
    {"openai_organization", OFF(open_ai_organization), F_STR, 0, 0},
    {"test_model", OFF(test_model), F_STR, 0, 0},
    {"status", OFF(status), F_INT, 0, 3},
    {"name", OFF(name), F_STR, 0, 0},
    {"weight", OFF(weight), F_I64, 0, 1000000000},
    {"base_url", OFF(base_url), F_STR, 0, 0},
    {"other", OFF(other), F_STR, 0, 0},
    {"models", OFF(models), F_STR, 0, 0},
    {"group", OFF(group), F_STR, 0, 0},
    {"model_mapping", OFF(model_mapping), F_JSONSTR, 0, 0},
    {"status_code_mapping", OFF(status_code_mapping), F_JSONSTR, 0, 0},
    {"priority", OFF(priority), F_I64, -I64_BIG, I64_BIG},
    {"auto_ban", OFF(auto_ban), F_INT, 0, 1},
    {"other_info", OFF(other_info), F_JSONSTR, 0, 0},
    {"tag", OFF(tag), F_STR, 0, 0},
    {"setting", OFF(setting), F_JSONSTR, 0, 0},
    {"param_override", OFF(param_override), F_JSONSTR, 0, 0},
    {"header_override", OFF(header_override), F_JSONSTR, 0, 0},
    {"remark", OFF(remark), F_STR, 0, 0},
    {"channel_info", OFF(channel_info), F_OBJ, 0, 0},
    {"settings", OFF(settings), F_JSONSTR, 0, 0},
};
#define NFIELDS (sizeof FIELDS / sizeof *FIELDS)

static const char **str_at(struct mt_channel *c, size_t off)
{
    return (const char **)(void *)((char *)c + off);
}

static const char *str_of(const struct mt_channel *c, size_t off)
{
    return *(const char *const *)(const void *)((const char *)c + off);
}

/* A channel being built from a request: strings borrowed from the body tree, a base row,
 * or owned[] (freed by chan_in_cleanup). */
struct chan_in {
    struct mt_channel c;
    char *owned[NFIELDS + 4];
    size_t nowned;
};

static const char *chan_own(struct chan_in *ci, char *s)
{
    if (!s)
        return NULL;
    if (ci->nowned >= sizeof ci->owned / sizeof *ci->owned) { /* cannot happen: bounded */
        cm_free(s);
        return NULL;
    }
    ci->owned[ci->nowned++] = s;
    return s;
}

static void chan_in_cleanup(struct chan_in *ci)
{
    for (size_t i = 0; i < ci->nowned; i++) {
        memset(ci->owned[i], 0, strlen(ci->owned[i])); /* may be a key */
        cm_free(ci->owned[i]);
    }
    ci->nowned = 0;
}

/* 1 if @p s is "" or a JSON object */
static int json_object_text(const char *s)
{
    cJSON *j = NULL;
    int ok;
    if (!s || !*s)
        return 1;
    ok = cm_json_parse(s, strlen(s), NULL, &j, NULL) == CM_OK && cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

/* Applies the members of @p obj that name channel fields onto ci->c. CM_OK, or
 * CM_ERR_INVAL / CM_ERR_NOMEM with a sentence in @p err. */
static int chan_apply(struct chan_in *ci, const cJSON *obj, char *err, size_t errlen)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct cfield *f = &FIELDS[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->json);
        int64_t x;
        if (!v || cJSON_IsNull(v))
            continue;
        switch (f->kind) {
        case F_STR:
            if (!cJSON_IsString(v))
                goto bad_type;
            *str_at(&ci->c, f->off) = v->valuestring;
            break;
        case F_JSONSTR:
        case F_OBJ:
            if (cJSON_IsObject(v)) {
                char *t = NULL;
                if (cm_json_print(v, &t, NULL) != CM_OK || !chan_own(ci, t))
                    goto nomem;
                *str_at(&ci->c, f->off) = t;
            } else if (cJSON_IsString(v)) {
                if (!json_object_text(v->valuestring)) {
                    snprintf(err, errlen, "field '%s' must be a JSON object (or \"\")", f->json);
                    return CM_ERR_INVAL;
                }
                *str_at(&ci->c, f->off) = v->valuestring;
            } else {
                goto bad_type;
            }
            break;
        case F_INT:
        case F_I64:
            if (cm_json_to_int64(v, f->min, f->max, &x) != CM_OK) {
                snprintf(err, errlen, "field '%s' must be an integer from %" PRId64 " to %" PRId64,
                         f->json, f->min, f->max);
                return CM_ERR_INVAL;
            }
            if (f->kind == F_INT)
                *(int *)(void *)((char *)&ci->c + f->off) = (int)x;
            else
                *(int64_t *)(void *)((char *)&ci->c + f->off) = x;
            break;
        }
        continue;
    bad_type:
        snprintf(err, errlen, "field '%s' must be a %s", f->json,
                 f->kind == F_STR ? "string" : "JSON object or a string holding one");
        return CM_ERR_INVAL;
    }
    return CM_OK;
nomem:
    snprintf(err, errlen, "out of memory");
    return CM_ERR_NOMEM;
}

/* Normalises and checks ci->c before a write (models/group lists, name, base_url). */
static int chan_check(struct chan_in *ci, char *err, size_t errlen)
{
    struct mt_channel *c = &ci->c;
    char *m = NULL, *g = NULL;

    if (mt_csv_normalize(c->models ? c->models : "", &m) != CM_OK || !chan_own(ci, m) ||
        mt_csv_normalize(c->group ? c->group : "", &g) != CM_OK || !chan_own(ci, g)) {
        snprintf(err, errlen, "out of memory");
        return CM_ERR_NOMEM;
    }
    c->models = m;
    c->group = *g ? g : "default";
    if (c->name && strlen(c->name) > CHANNEL_NAME_MAX) {
        snprintf(err, errlen, "field 'name' is longer than %d bytes", CHANNEL_NAME_MAX);
        return CM_ERR_INVAL;
    }
    if (c->base_url && *c->base_url) {
        char url[16];
        int rc = mt_channel_test_url(c->type, c->base_url, url, sizeof url);
        if (rc == CM_ERR_INVAL) {
            snprintf(err, errlen, "field 'base_url' must be an http:// or https:// URL");
            return CM_ERR_INVAL;
        }
    }
    return CM_OK;
}

static cJSON *channel_json(const struct mt_channel *c)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? CM_OK : CM_ERR_NOMEM;

    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "id", c->id);
    if (rc == CM_OK)
        rc = cm_json_set_string(o, "key", ""); /* never the key */
    for (size_t i = 0; rc == CM_OK && i < NFIELDS; i++) {
        const struct cfield *f = &FIELDS[i];
        const char *s;
        cJSON *j = NULL;
        switch (f->kind) {
        case F_STR:
        case F_JSONSTR:
            s = str_of(c, f->off);
            rc = cm_json_set_string(o, f->json, s ? s : "");
            break;
        case F_OBJ:
            s = str_of(c, f->off);
            if (!s || cm_json_parse(s, strlen(s), NULL, &j, NULL) != CM_OK || !cJSON_IsObject(j)) {
                cJSON_Delete(j);
                j = cJSON_CreateObject();
                if (j && cm_json_set_bool(j, "is_multi_key", false) == CM_OK)
                    rc = cm_json_set_int64(j, "multi_key_size", 0);
            }
            if (rc == CM_OK)
                rc = cm_json_adopt(o, f->json, &j);
            cJSON_Delete(j);
            break;
        case F_INT:
            rc = cm_json_set_int64(o, f->json,
                                   *(const int *)(const void *)((const char *)c + f->off));
            break;
        case F_I64:
            rc = cm_json_set_int64(o, f->json,
                                   *(const int64_t *)(const void *)((const char *)c + f->off));
            break;
        }
    }
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "created_time", c->created_time);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "test_time", c->test_time);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "response_time", c->response_time);
    if (rc == CM_OK)
        rc = cm_json_set_double(o, "balance", c->balance);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "balance_updated_time", c->balance_updated_time);
    if (rc == CM_OK)
        rc = cm_json_set_int64(o, "used_quota", c->used_quota);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- reads ---- */

struct list_q {
    struct mt_channel_filter f;
    int not_enabled; /* status filter "disabled": every status but 1 */
    struct mt_page pg;
};

/* The list/search filters of the query. 0, or -1 after answering. */
static int read_filter(struct cm_httpd_req *r, int search, struct list_q *q)
{
    static const char *const sorts[] = {"priority",      "id",       "name", "balance",
                                        "response_time", "test_time"};
    const char *st = mt_api_arg_str(r, "status"), *sb = mt_api_arg_str(r, "sort_by");
    const char *so = mt_api_arg_str(r, "sort_order"), *ids = mt_api_arg_str(r, "id_sort");
    int64_t type;

    memset(q, 0, sizeof *q);
    mt_channel_filter_init(&q->f);
    mt_api_page(r, &q->pg);
    if (search && !*mt_api_arg_str(r, "page_size") && !*mt_api_arg_str(r, "ps") &&
        !*mt_api_arg_str(r, "size")) {
        q->pg.size = 20; /* NewAPI's search default */
        q->pg.offset = (q->pg.page - 1) * q->pg.size;
    }
    if (mt_api_arg_int(r, "type", -1, 1000, -1, &type))
        return -1;
    q->f.type = (int)type;
    q->f.group = mt_api_arg_str(r, "group");
    if (*mt_api_arg_str(r, "tag"))
        q->f.tag = mt_api_arg_str(r, "tag");
    if (search) {
        q->f.keyword = mt_api_arg_str(r, "keyword");
        q->f.model = mt_api_arg_str(r, "model");
    }
    if (!*st || strcmp(st, "all") == 0 || strcmp(st, "-1") == 0) {
        q->f.status = -1;
    } else if (strcmp(st, "enabled") == 0 || strcmp(st, "1") == 0) {
        q->f.status = MT_CHANNEL_ENABLED;
    } else if (strcmp(st, "disabled") == 0 || strcmp(st, "0") == 0) {
        q->not_enabled = 1;
    } else if (strcmp(st, "2") == 0 || strcmp(st, "manual_disabled") == 0) {
        q->f.status = MT_CHANNEL_MANUAL_DISABLED;
    } else if (strcmp(st, "3") == 0 || strcmp(st, "auto_disabled") == 0) {
        q->f.status = MT_CHANNEL_AUTO_DISABLED;
    } else {
        mt_api_fail(r, "parameter status must be all, enabled, disabled, 2 or 3");
        return -1;
    }
    if (*sb) {
        size_t i = 0;
        while (i < sizeof sorts / sizeof *sorts && strcmp(sb, sorts[i]) != 0)
            i++;
        if (i == sizeof sorts / sizeof *sorts) {
            mt_api_fail(r, "parameter sort_by must be one of id, name, priority, balance, "
                           "response_time, test_time");
            return -1;
        }
        q->f.sort = (enum mt_channel_sort)i;
    } else if (strcmp(ids, "true") == 0 || strcmp(ids, "1") == 0) {
        q->f.sort = MT_CHANNEL_SORT_ID;
    }
    if (*so && strcmp(so, "asc") != 0 && strcmp(so, "desc") != 0) {
        mt_api_fail(r, "parameter sort_order must be asc or desc");
        return -1;
    }
    q->f.ascending = strcmp(so, "asc") == 0;
    return 0;
}

/* Appends channels of @p l to @p items; CM_OK or CM_ERR_NOMEM. */
static int add_items(cJSON *items, const struct mt_channel *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *j = channel_json(&v[i]);
        if (cm_json_adopt(items, NULL, &j) != CM_OK)
            return CM_ERR_NOMEM;
    }
    return CM_OK;
}

/* The page of channels whose status is not 1, filtered in memory over chunks. */
static int list_not_enabled(struct mt_server *srv, const struct list_q *q, cJSON *items,
                            int64_t *total)
{
    int64_t off = 0, seen = 0;
    int rc;
    for (;;) {
        struct mt_channel_list l = {0};
        size_t n;
        rc = mt_store_channel_list(srv->store, &q->f, off, LIST_CHUNK, &l);
        if (rc)
            return rc;
        for (size_t i = 0; rc == CM_OK && i < l.n; i++) {
            if (l.items[i].status == MT_CHANNEL_ENABLED)
                continue;
            if (seen >= q->pg.offset && seen < q->pg.offset + q->pg.size)
                rc = add_items(items, &l.items[i], 1);
            seen++;
        }
        n = l.n;
        mt_channel_list_cleanup(&l);
        if (rc || n < LIST_CHUNK)
            break;
        off += LIST_CHUNK;
    }
    *total = seen;
    return rc;
}

static int type_counts(struct mt_server *srv, const struct mt_channel_filter *f, cJSON **out)
{
    struct mt_type_count *v = NULL;
    size_t n = 0;
    cJSON *o = NULL;
    int rc = mt_store_channel_type_counts(srv->store, f, &v, &n);
    if (rc == CM_OK)
        rc = cm_json_new_object(&o);
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", v[i].type);
        rc = cm_json_set_int64(o, k, v[i].count);
    }
    cm_free(v);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return CM_OK;
}

static void list_or_search(struct cm_httpd_req *r, struct mt_server *srv, int search)
{
    struct mt_who who;
    struct list_q q;
    struct mt_channel_list l = {0};
    cJSON *items = NULL, *data = NULL, *tc = NULL;
    int64_t total = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || read_filter(r, search, &q))
        return;
    if ((rc = cm_json_new_array(&items)) != CM_OK)
        goto fail;
    if (q.not_enabled) {
        rc = list_not_enabled(srv, &q, items, &total);
    } else {
        rc = mt_store_channel_list(srv->store, &q.f, q.pg.offset, q.pg.size, &l);
        if (rc == CM_OK) {
            total = l.total;
            rc = add_items(items, l.items, l.n);
        }
    }
    if (rc == CM_OK)
        rc = type_counts(srv, &q.f, &tc);
    if (rc)
        goto fail;
    data = mt_api_paged(&q.pg, total, items);
    items = NULL;
    if (!data || cm_json_adopt(data, "type_counts", &tc) != CM_OK) {
        rc = CM_ERR_NOMEM;
        goto fail;
    }
    mt_channel_list_cleanup(&l);
    mt_api_ok(r, data);
    return;
fail:
    mt_channel_list_cleanup(&l);
    cJSON_Delete(items);
    cJSON_Delete(tc);
    cJSON_Delete(data);
    mt_api_fail_status(r, 500, "cannot list channels: %s", cm_err_str(rc));
}

static void ch_list(struct cm_httpd_req *r, void *ud)
{
    list_or_search(r, ud, 0);
}

static void ch_search(struct cm_httpd_req *r, void *ud)
{
    list_or_search(r, ud, 1);
}

static void ch_get(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_channel c;
    int64_t id;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_path_id(r, "channel", &id))
        return;
    mt_channel_init(&c);
    rc = mt_store_channel_get(srv->store, id, 0, &c);
    if (rc)
        mt_api_fail_store(r, rc, "read", "channel", id);
    else
        mt_api_ok(r, channel_json(&c));
    mt_channel_cleanup(&c);
}

/* model list of enabled abilities; @p openai: [{id, object, created, owned_by}] */
static void models_common(struct cm_httpd_req *r, struct mt_server *srv, int openai)
{
    struct mt_who who;
    char **m = NULL;
    size_t n = 0;
    cJSON *arr = NULL;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    rc = mt_store_models_enabled(srv->store, &m, &n);
    if (rc == CM_OK)
        rc = cm_json_new_array(&arr);
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        cJSON *o = NULL;
        if (!openai) {
            rc = cm_json_set_string(arr, NULL, m[i]);
            continue;
        }
        rc = cm_json_new_object(&o);
        if (rc == CM_OK)
            rc = cm_json_set_string(o, "id", m[i]);
        if (rc == CM_OK)
            rc = cm_json_set_string(o, "object", "model");
        if (rc == CM_OK)
            rc = cm_json_set_int64(o, "created", 1626777600);
        if (rc == CM_OK)
            rc = cm_json_set_string(o, "owned_by", "custom");
        if (rc == CM_OK)
            rc = cm_json_adopt(arr, NULL, &o);
        cJSON_Delete(o);
    }
    mt_store_strings_free(m, n);
    if (rc) {
        cJSON_Delete(arr);
        mt_api_fail_status(r, 500, "cannot list models: %s", cm_err_str(rc));
        return;
    }
    mt_api_ok(r, arr);
}

static void ch_models(struct cm_httpd_req *r, void *ud)
{
    models_common(r, ud, 1);
}

static void ch_models_enabled(struct cm_httpd_req *r, void *ud)
{
    models_common(r, ud, 0);
}

/* ---- writes ---- */

static void ch_create(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct chan_in ci = {0};
    struct mt_channel *chs = NULL;
    cJSON *b = NULL, *chobj = NULL, *idl = NULL;
    const char *mode = "single", *key = NULL, *mkmode = "random";
    char **keys = NULL, err[256] = "";
    size_t nkeys = 0, n = 1;
    int64_t *ids = NULL;
    bool prefix = false;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        return;
    if (cm_json_opt_string(b, "mode", "single", &mode, NULL) != CM_OK ||
        cm_json_opt_string(b, "multi_key_mode", "random", &mkmode, NULL) != CM_OK ||
        cm_json_opt_bool(b, "batch_add_set_key_prefix_2_name", false, &prefix, NULL) != CM_OK) {
        mt_api_fail(r, "fields 'mode' and 'multi_key_mode' must be strings, "
                       "'batch_add_set_key_prefix_2_name' a boolean");
        goto out;
    }
    chobj = cJSON_GetObjectItemCaseSensitive(b, "channel");
    if (!chobj && cJSON_GetObjectItemCaseSensitive(b, "key"))
        chobj = b; /* one-api's bare Channel body */
    if (!cJSON_IsObject(chobj)) {
        mt_api_fail(r, "field 'channel' (an object) is required: {\"mode\":\"single\","
                       "\"channel\":{\"name\",\"type\",\"key\",\"models\",\"group\",...}}");
        goto out;
    }
    mt_channel_init(&ci.c);
    if ((rc = chan_apply(&ci, chobj, err, sizeof err)) != CM_OK ||
        (rc = chan_check(&ci, err, sizeof err)) != CM_OK) {
        if (rc == CM_ERR_NOMEM)
            mt_api_fail_status(r, 500, "%s", err);
        else
            mt_api_fail(r, "%s", err);
        goto out;
    }
    if (cm_json_get_string(chobj, "key", &key, NULL) != CM_OK || !*key) {
        mt_api_fail(r, "field 'channel.key' is required (the upstream key; one per line in "
                       "batch mode)");
        goto out;
    }
    if (strcmp(mode, "single") == 0) {
        ci.c.key = key;
    } else if (strcmp(mode, "batch") == 0 || strcmp(mode, "multi_to_single") == 0) {
        rc = mt_keys_split(key, &keys, &nkeys);
        if (rc) {
            mt_api_fail(r, "field 'channel.key': %s",
                        rc == CM_ERR_LIMIT      ? "more than 1000 keys"
                        : rc == CM_ERR_NOTFOUND ? "no key in it"
                        : rc == CM_ERR_INVAL ? "a JSON array of keys must hold strings or objects"
                                             : "out of memory");
            goto out;
        }
    } else {
        mt_api_fail(r, "unknown mode \"%s\" (single, batch or multi_to_single)", mode);
        goto out;
    }
    if (strcmp(mode, "multi_to_single") == 0) {
        struct cm_buf kb;
        cJSON *info = NULL;
        char *joined, *itxt = NULL;
        if (strcmp(mkmode, "random") != 0 && strcmp(mkmode, "polling") != 0) {
            mt_api_fail(r, "field 'multi_key_mode' must be random or polling");
            goto out;
        }
        cm_buf_init(&kb, (size_t)64 << 20);
        rc = CM_OK;
        for (size_t i = 0; rc == CM_OK && i < nkeys; i++)
            rc = cm_buf_appendf(&kb, "%s%s", i ? "\n" : "", keys[i]);
        joined = rc == CM_OK ? cm_buf_release(&kb, NULL) : NULL;
        cm_buf_cleanup(&kb);
        rc = cm_json_new_object(&info);
        if (rc == CM_OK)
            rc = cm_json_set_bool(info, "is_multi_key", true);
        if (rc == CM_OK)
            rc = cm_json_set_int64(info, "multi_key_size", (int64_t)nkeys);
        if (rc == CM_OK)
            rc = cm_json_set_string(info, "multi_key_mode", mkmode);
        if (rc == CM_OK)
            rc = cm_json_print(info, &itxt, NULL);
        cJSON_Delete(info);
        if (!chan_own(&ci, joined) || rc || !chan_own(&ci, itxt)) {
            if (rc)
                cm_free(itxt);
            mt_api_fail_status(r, 500, "out of memory");
            goto out;
        }
        ci.c.key = joined;
        ci.c.channel_info = itxt;
    }
    if (strcmp(mode, "batch") == 0)
        n = nkeys;
    chs = cm_calloc(n, sizeof *chs);
    ids = cm_calloc(n, sizeof *ids);
    if (!chs || !ids) {
        mt_api_fail_status(r, 500, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        chs[i] = ci.c;
        chs[i]._mem = NULL;
        if (strcmp(mode, "batch") != 0)
            continue;
        chs[i].key = keys[i];
        if (prefix && n > 1) { /* NewAPI: "<name> <first 8 characters of the key>" */
            size_t nl = strlen(ci.c.name ? ci.c.name : "") + 10;
            char *nm = cm_malloc(nl);
            chs[i].name = NULL;
            if (nm)
                snprintf(nm, nl, "%s %.8s", ci.c.name ? ci.c.name : "", keys[i]);
            if (!nm) {
                mt_api_fail_status(r, 500, "out of memory");
                goto free_names;
            }
            chs[i].name = nm;
        }
    }
    rc = mt_store_channel_insert(srv->store, chs, n, ids);
    if (rc) {
        mt_api_fail_status(r, rc == CM_ERR_INVAL ? 200 : 500, "cannot create the channel%s: %s",
                           n > 1 ? "s" : "", cm_err_str(rc));
        goto free_names;
    }
    cm_log_info(cm_httpd_req_id(r),
                "channel: %s created %zu channel(s) (mode %s, first id %" PRId64 ")", who.username,
                n, mode, ids[0]);
    rc = cm_json_new_array(&idl);
    for (size_t i = 0; rc == CM_OK && i < n; i++)
        rc = cm_json_set_int64(idl, NULL, ids[i]);
    if (rc) {
        cJSON_Delete(idl);
        idl = NULL;
    }
    mt_api_ok(r, idl); /* NewAPI sends no data; the new ids are an addition */
free_names:
    for (size_t i = 0; strcmp(mode, "batch") == 0 && prefix && n > 1 && i < n; i++)
        if (chs[i].name)
            cm_free((void *)(uintptr_t)chs[i].name);
out:
    cm_free(chs);
    cm_free(ids);
    mt_keys_free(keys, nkeys);
    chan_in_cleanup(&ci);
    cJSON_Delete(b);
}

static void ch_update(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_channel old, withkey, after;
    struct chan_in ci = {0};
    cJSON *b = NULL;
    const char *key = NULL, *key_mode = "replace";
    struct cm_json_err je = {0};
    char err[256] = "";
    int64_t id = 0;
    int rc;

    mt_channel_init(&old);
    mt_channel_init(&withkey);
    mt_channel_init(&after);
    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        goto out;
    if (cm_json_get_int64(b, "id", 1, CM_JSON_INT_MAX, &id, &je) != CM_OK) {
        mt_api_fail(r, "%s", je.msg);
        goto out;
    }
    if (cm_json_opt_string(b, "key", "", &key, NULL) != CM_OK ||
        cm_json_opt_string(b, "key_mode", "replace", &key_mode, NULL) != CM_OK ||
        (strcmp(key_mode, "replace") != 0 && strcmp(key_mode, "append") != 0)) {
        mt_api_fail(r, "field 'key' must be a string and 'key_mode' append or replace");
        goto out;
    }
    rc = mt_store_channel_get(srv->store, id, 0, &old);
    if (rc) {
        mt_api_fail_store(r, rc, "read", "channel", id);
        goto out;
    }
    ci.c = old;
    ci.c._mem = NULL;
    ci.c.key = NULL; /* unchanged unless a new one is sent */
    if ((rc = chan_apply(&ci, b, err, sizeof err)) != CM_OK ||
        (rc = chan_check(&ci, err, sizeof err)) != CM_OK) {
        if (rc == CM_ERR_NOMEM)
            mt_api_fail_status(r, 500, "%s", err);
        else
            mt_api_fail(r, "%s", err);
        goto out;
    }
    if (*key && strcmp(key_mode, "append") == 0) {
        struct cm_buf kb;
        char *joined;
        rc = mt_store_channel_get(srv->store, id, 1, &withkey);
        if (rc) {
            mt_api_fail_status(r, 500, "cannot read channel %" PRId64 ": %s", id, cm_err_str(rc));
            goto out;
        }
        cm_buf_init(&kb, (size_t)64 << 20);
        rc = cm_buf_appendf(&kb, "%s%s%s", withkey.key ? withkey.key : "",
                            withkey.key && *withkey.key ? "\n" : "", key);
        joined = rc == CM_OK ? cm_buf_release(&kb, NULL) : NULL;
        cm_buf_cleanup(&kb);
        if (!chan_own(&ci, joined)) {
            mt_api_fail_status(r, 500, "out of memory");
            goto out;
        }
        ci.c.key = joined;
    } else if (*key) {
        ci.c.key = key;
    }
    rc = mt_store_channel_update(srv->store, &ci.c);
    if (rc == CM_OK)
        rc = mt_store_channel_get(srv->store, id, 0, &after);
    if (rc) {
        mt_api_fail_store(r, rc, "update", "channel", id);
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "channel: %s updated channel %" PRId64 "%s", who.username, id,
                *key ? " (new key)" : "");
    mt_api_ok(r, channel_json(&after));
out:
    chan_in_cleanup(&ci);
    mt_channel_cleanup(&old);
    mt_channel_cleanup(&withkey);
    mt_channel_cleanup(&after);
    cJSON_Delete(b);
}

static void ch_delete(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t id;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_path_id(r, "channel", &id))
        return;
    rc = mt_store_channel_delete(srv->store, id);
    if (rc) {
        mt_api_fail_store(r, rc, "delete", "channel", id);
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "channel: %s deleted channel %" PRId64, who.username, id);
    mt_api_ok(r, NULL);
}

static void ch_delete_disabled(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t n = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    rc = mt_store_channel_delete_disabled(srv->store, &n);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot delete disabled channels: %s", cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "channel: %s deleted %" PRId64 " disabled channel(s)",
                who.username, n);
    mt_api_ok(r, cJSON_CreateNumber((double)n));
}

static void ch_delete_batch(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    cJSON *b = NULL;
    int64_t *ids = NULL, n = 0;
    size_t cnt = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        return;
    if (mt_api_body_ids(r, b, "ids", LIST_CHUNK, &ids, &cnt))
        goto out;
    rc = mt_store_channel_delete_many(srv->store, ids, cnt, &n);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot delete channels: %s", cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "channel: %s deleted %" PRId64 " channel(s)", who.username, n);
    mt_api_ok(r, cJSON_CreateNumber((double)n));
out:
    cm_free(ids);
    cJSON_Delete(b);
}

static void ch_fix(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    int64_t ok = 0, fails = 0;
    cJSON *d = NULL;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    rc = mt_store_abilities_fix(srv->store, &ok, &fails);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot rebuild the abilities: %s", cm_err_str(rc));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "channel: %s rebuilt abilities of %" PRId64 " channel(s)",
                who.username, ok);
    if (cm_json_new_object(&d) != CM_OK || cm_json_set_int64(d, "success", ok) ||
        cm_json_set_int64(d, "fails", fails)) {
        cJSON_Delete(d);
        d = NULL;
    }
    mt_api_ok(r, d);
}

/* POST /api/channel/tag/{disabled,enabled} {"tag"} */
static void tag_status(struct cm_httpd_req *r, struct mt_server *srv, int status)
{
    struct mt_who who;
    cJSON *b = NULL;
    const char *tag = NULL;
    int64_t n = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        return;
    if (cm_json_get_string(b, "tag", &tag, NULL) != CM_OK || !*tag) {
        mt_api_fail(r, "field 'tag' (a non-empty string) is required");
        goto out;
    }
    rc = mt_store_channel_set_status_by_tag(srv->store, tag, status, &n);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot change the channels tagged \"%s\": %s", tag,
                           cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "channel: %s set status %d on %" PRId64 " channel(s) tagged %s",
                who.username, status, n, tag);
    mt_api_ok(r, cJSON_CreateNumber((double)n));
out:
    cJSON_Delete(b);
}

static void ch_tag_disable(struct cm_httpd_req *r, void *ud)
{
    tag_status(r, ud, MT_CHANNEL_MANUAL_DISABLED);
}

static void ch_tag_enable(struct cm_httpd_req *r, void *ud)
{
    tag_status(r, ud, MT_CHANNEL_ENABLED);
}

/* POST /api/channel/batch/tag {"ids":[...],"tag":str|null} */
static void ch_batch_tag(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    cJSON *b = NULL;
    const char *tag = NULL;
    int64_t *ids = NULL, n = 0;
    size_t cnt = 0;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_body(r, &b))
        return;
    if (mt_api_body_ids(r, b, "ids", LIST_CHUNK, &ids, &cnt))
        goto out;
    if (cm_json_opt_string(b, "tag", "", &tag, NULL) != CM_OK) {
        mt_api_fail(r, "field 'tag' must be a string (or null to clear it)");
        goto out;
    }
    rc = mt_store_channel_set_tag(srv->store, ids, cnt, tag, &n);
    if (rc) {
        mt_api_fail_status(r, 500, "cannot tag channels: %s", cm_err_str(rc));
        goto out;
    }
    mt_api_ok(r, cJSON_CreateNumber((double)n));
out:
    cm_free(ids);
    cJSON_Delete(b);
}

/* ---- channel tests ---- */

struct test_all; /* the background run of GET /api/channel/test */

struct ctest {
    struct mt_server *srv;
    struct cm_httpd_req *req; /* single test: the request to answer; NULL in a run */
    struct test_all *all;     /* NULL for a single test */
    int64_t id;
    int status, auto_ban;
    int64_t t0_ms;
    char rid[64];
    char model[256];
    char *other_info; /* the channel's other_info (for status_reason) */
};

struct test_all {
    struct mt_server *srv;
    struct mt_channel_list list; /* with keys */
    size_t next;
    int64_t tested, passed, disabled, enabled;
    char rid[64];
};

static atomic_int test_all_running;

static void ctest_free(struct ctest *t)
{
    if (!t)
        return;
    cm_free(t->other_info);
    cm_free(t);
}

/* other_info with status_reason / status_time set (NewAPI's record of why) */
static char *status_info(const char *old, const char *reason, int64_t now)
{
    cJSON *o = NULL;
    char *out = NULL;
    if (!old || cm_json_parse(old, strlen(old), NULL, &o, NULL) != CM_OK || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = cJSON_CreateObject();
    }
    if (o && cm_json_set_string(o, "status_reason", reason) == CM_OK &&
        cm_json_set_int64(o, "status_time", now) == CM_OK)
        (void)cm_json_print(o, &out, NULL);
    cJSON_Delete(o);
    return out;
}

/* Records the result and applies the enable/disable policy; returns the note for logs. */
static const char *test_record(struct ctest *t, int passed, long status, const char *msg,
                               int64_t elapsed_ms)
{
    struct mt_server *srv = t->srv;
    struct mt_options *o = mt_optcache_get(srv->opts);
    int64_t now = cm_clock_wall_s(srv->clock);
    const char *note = "";
    int rc = mt_store_channel_set_test_result(srv->store, t->id, elapsed_ms, now);

    if (rc && rc != CM_ERR_NOTFOUND)
        cm_log_warn(t->rid, "channel test: cannot record the result of channel %" PRId64 ": %s",
                    t->id, cm_err_str(rc));
    if (passed && t->status == MT_CHANNEL_AUTO_DISABLED &&
        mt_options_bool(o, "AutomaticEnableChannelEnabled", 0)) {
        char *info = status_info(t->other_info, "", now);
        rc = mt_store_channel_set_status(srv->store, t->id, MT_CHANNEL_ENABLED, info);
        cm_free(info);
        if (rc == CM_OK) {
            note = " (re-enabled)";
            if (t->all)
                t->all->enabled++;
        } else {
            cm_log_warn(t->rid, "channel test: cannot re-enable channel %" PRId64 ": %s", t->id,
                        cm_err_str(rc));
        }
    } else if (t->all && t->status == MT_CHANNEL_ENABLED && t->auto_ban) {
        struct mt_disable_policy p = {
            .enabled = mt_options_bool(o, "AutomaticDisableChannelEnabled", 0),
            .status_codes = mt_options_get(o, "AutomaticDisableStatusCodes"),
            .keywords = mt_options_get(o, "AutomaticDisableKeywords"),
            .threshold_s = mt_options_double(o, "ChannelDisableThreshold", 5),
        };
        if (mt_channel_should_disable(&p, passed, status, msg, elapsed_ms)) {
            char reason[512];
            char *info;
            if (passed)
                snprintf(reason, sizeof reason, "response time %" PRId64 " ms is over %g s",
                         elapsed_ms, p.threshold_s);
            else
                snprintf(reason, sizeof reason, "%s", msg);
            info = status_info(t->other_info, reason, now);
            rc = mt_store_channel_set_status(srv->store, t->id, MT_CHANNEL_AUTO_DISABLED, info);
            cm_free(info);
            if (rc == CM_OK) {
                note = " (auto-disabled)";
                t->all->disabled++;
            } else {
                cm_log_warn(t->rid, "channel test: cannot disable channel %" PRId64 ": %s", t->id,
                            cm_err_str(rc));
            }
        }
    }
    mt_options_unref(o);
    return note;
}

static void test_all_next(struct test_all *a);

static void test_done(struct cm_httpc_xfer *x, const struct cm_httpc_result *res, void *ud)
{
    struct ctest *t = ud;
    int64_t elapsed = cm_clock_mono_ms(t->srv->clock) - t->t0_ms;
    char msg[512];
    const char *note;
    int passed;
    cJSON *root;

    (void)x;
    if (elapsed < 0)
        elapsed = 0;
    passed = mt_channel_test_verdict(res->rc == CM_OK ? res->status : 0, res->body, res->body_len,
                                     res->error, msg, sizeof msg);
    if (res->rc == CM_ERR_CLOSED) { /* shutting down: record nothing, answer if we can */
        passed = 0;
        snprintf(msg, sizeof msg, "the server is shutting down");
        note = "";
    } else {
        note = test_record(t, passed, res->rc == CM_OK ? res->status : 0, msg, elapsed);
    }
    cm_log_info(t->rid, "channel test: channel %" PRId64 " model %s: %s in %" PRId64 " ms%s%s%s",
                t->id, t->model, passed ? "passed" : "failed", elapsed, passed ? "" : ": ",
                passed ? "" : msg, note);
    if (t->req) {
        root = cJSON_CreateObject();
        if (root && (cm_json_set_bool(root, "success", passed) ||
                     cm_json_set_string(root, "message", passed ? "" : msg) ||
                     cm_json_set_double(root, "time", (double)elapsed / 1000.0))) {
            cJSON_Delete(root);
            root = NULL;
        }
        mt_api_reply_obj(t->req, root);
        cm_httpd_req_unref(t->req);
    }
    if (t->all) {
        struct test_all *a = t->all;
        a->tested++;
        a->passed += passed;
        ctest_free(t);
        if (res->rc == CM_ERR_CLOSED)
            a->next = a->list.n; /* stop the run */
        test_all_next(a);
        return;
    }
    ctest_free(t);
}

/*
 * Starts the test of @p c. CM_OK: test_done() will run. Otherwise nothing was started and
 * @p why (may be NULL) got a sentence for the caller's answer.
 */
static int test_start(struct mt_server *srv, const struct mt_channel *c, struct cm_httpd_req *req,
                      struct test_all *all, const char *model_arg, const char *rid, char *why,
                      size_t whylen)
{
    struct ctest *t = NULL;
    char url[2048], *key = NULL, *body = NULL, *auth = NULL;
    size_t blen = 0, alen;
    const char *hdrs[3];
    size_t nh = 0;
    enum mt_test_api api = mt_channel_test_api(c->type);
    struct cm_httpc_request rq = {0};
    static const struct cm_httpc_cbs cbs = {.on_done = test_done};
    int rc;

    rc = mt_channel_test_url(c->type, c->base_url, url, sizeof url);
    if (rc) {
        snprintf(why, whylen, "%s",
                 rc == CM_ERR_NOTFOUND ? "the channel has no base_url and its type no default"
                 : rc == CM_ERR_LIMIT  ? "the channel's base_url is too long"
                                       : "the channel's base_url is not an http(s) URL");
        return rc;
    }
    rc = mt_channel_first_key(c->key ? c->key : "", &key);
    if (rc) {
        snprintf(why, whylen, "%s",
                 rc == CM_ERR_NOMEM   ? "out of memory"
                 : rc == CM_ERR_INVAL ? "the channel's key holds control characters"
                                      : "the channel has no key");
        return rc;
    }
    t = cm_calloc(1, sizeof *t);
    if (!t) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    t->srv = srv;
    t->all = all;
    t->id = c->id;
    t->status = c->status;
    t->auto_ban = c->auto_ban;
    snprintf(t->rid, sizeof t->rid, "%s", rid ? rid : "");
    if (c->other_info && *c->other_info && !(t->other_info = cm_strdup(c->other_info))) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (mt_channel_test_model(model_arg, c->test_model, c->models, t->model, sizeof t->model)) {
        snprintf(why, whylen, "the model name is too long");
        rc = CM_ERR_LIMIT;
        goto out;
    }
    rc = mt_channel_test_body(api, t->model, &body, &blen);
    if (rc)
        goto out;
    alen = strlen(key) + 32;
    auth = cm_malloc(alen);
    if (!auth) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (api == MT_TEST_ANTHROPIC) {
        snprintf(auth, alen, "x-api-key: %s", key);
        hdrs[nh++] = "anthropic-version: 2023-06-01";
    } else {
        snprintf(auth, alen, "Authorization: Bearer %s", key);
    }
    hdrs[nh++] = auth;
    hdrs[nh++] = "Content-Type: application/json";
    rq.method = "POST";
    rq.url = url;
    rq.headers = hdrs;
    rq.n_headers = nh;
    rq.body = body;
    rq.body_len = blen;
    rq.connect_timeout_ms = TEST_CONNECT_MS;
    rq.total_timeout_ms = TEST_TOTAL_MS;
    rq.max_response = TEST_MAX_RESPONSE;
    rq.log_id = t->rid;
    if (req) {
        cm_httpd_req_ref(req);
        t->req = req;
    }
    t->t0_ms = cm_clock_mono_ms(srv->clock);
    rc = cm_httpc_start(srv->client, &rq, &cbs, t, NULL);
    if (rc) {
        if (req)
            cm_httpd_req_unref(req);
        snprintf(why, whylen, "cannot start the request: %s", cm_err_str(rc));
        goto out;
    }
    t = NULL; /* test_done() owns it */
out:
    if (rc == CM_ERR_NOMEM && why && !*why)
        snprintf(why, whylen, "out of memory");
    ctest_free(t);
    if (auth) {
        memset(auth, 0, strlen(auth));
        cm_free(auth);
    }
    memset(key, 0, strlen(key));
    cm_free(key);
    cm_free(body);
    return rc;
}

static void test_all_finish(struct test_all *a)
{
    cm_log_info(a->rid,
                "channel test: run over: %" PRId64 " tested, %" PRId64 " passed, %" PRId64
                " auto-disabled, %" PRId64 " re-enabled",
                a->tested, a->passed, a->disabled, a->enabled);
    for (size_t i = 0; i < a->list.n; i++)
        if (a->list.items[i].key)
            memset((void *)(uintptr_t)a->list.items[i].key, 0, strlen(a->list.items[i].key));
    mt_channel_list_cleanup(&a->list);
    cm_free(a);
    atomic_store(&test_all_running, 0);
}

/* Starts the next channel of the run (skipping the manually disabled ones), or ends it. */
static void test_all_next(struct test_all *a)
{
    while (a->next < a->list.n) {
        const struct mt_channel *c = &a->list.items[a->next++];
        char why[256] = "";
        if (c->status == MT_CHANNEL_MANUAL_DISABLED)
            continue;
        if (test_start(a->srv, c, NULL, a, NULL, a->rid, why, sizeof why) == CM_OK)
            return;
        cm_log_warn(a->rid, "channel test: channel %" PRId64 " not tested: %s", c->id, why);
    }
    test_all_finish(a);
}

static void ch_test_one(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct mt_channel c;
    char why[256] = "";
    int64_t id;
    int rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who) || mt_api_path_id(r, "channel", &id))
        return;
    mt_channel_init(&c);
    rc = mt_store_channel_get(srv->store, id, 1, &c);
    if (rc) {
        mt_api_fail_store(r, rc, "read", "channel", id);
    } else if (test_start(srv, &c, r, NULL, mt_api_arg_str(r, "model"), cm_httpd_req_id(r), why,
                          sizeof why) != CM_OK) {
        mt_api_fail(r, "cannot test channel %" PRId64 ": %s", id, why);
    }
    if (c.key)
        memset((void *)(uintptr_t)c.key, 0, strlen(c.key));
    mt_channel_cleanup(&c);
}

static void ch_test_all(struct cm_httpd_req *r, void *ud)
{
    struct mt_server *srv = ud;
    struct mt_who who;
    struct test_all *a;
    int zero = 0, rc;

    if (mt_api_auth(srv, r, MT_ROLE_ADMIN, &who))
        return;
    if (!atomic_compare_exchange_strong(&test_all_running, &zero, 1)) {
        mt_api_fail(r, "a test of all channels is already running");
        return;
    }
    a = cm_calloc(1, sizeof *a);
    if (!a) {
        atomic_store(&test_all_running, 0);
        mt_api_fail_status(r, 500, "out of memory");
        return;
    }
    a->srv = srv;
    snprintf(a->rid, sizeof a->rid, "%s", cm_httpd_req_id(r));
    rc = mt_store_channel_all(srv->store, 1, &a->list);
    if (rc) {
        cm_free(a);
        atomic_store(&test_all_running, 0);
        mt_api_fail_status(r, 500, "cannot read the channels: %s", cm_err_str(rc));
        return;
    }
    cm_log_info(a->rid, "channel test: %s started a test of %zu channel(s)", who.username,
                a->list.n);
    mt_api_ok(r, NULL);
    test_all_next(a);
}

int mt_api_channel_routes(struct cm_httpd *s, struct mt_server *srv)
{
    static const struct {
        const char *method, *path;
        cm_httpd_handler_fn fn;
    } R[] = {
        /* literal paths before the ":id" ones (the first matching route wins) */
        {"GET", "/api/channel/", ch_list},
        {"GET", "/api/channel/search", ch_search},
        {"GET", "/api/channel/models", ch_models},
        {"GET", "/api/channel/models_enabled", ch_models_enabled},
        {"GET", "/api/channel/test", ch_test_all},
        {"GET", "/api/channel/test/:id", ch_test_one},
        {"POST", "/api/channel/", ch_create},
        {"PUT", "/api/channel/", ch_update},
        {"DELETE", "/api/channel/disabled", ch_delete_disabled},
        {"POST", "/api/channel/batch", ch_delete_batch},
        {"POST", "/api/channel/fix", ch_fix},
        {"POST", "/api/channel/tag/disabled", ch_tag_disable},
        {"POST", "/api/channel/tag/enabled", ch_tag_enable},
        {"POST", "/api/channel/batch/tag", ch_batch_tag},
        {"GET", "/api/channel/:id", ch_get},
        {"DELETE", "/api/channel/:id", ch_delete},
    };
    int rc = CM_OK;
    for (size_t i = 0; rc == CM_OK && i < sizeof R / sizeof *R; i++)
        rc = cm_httpd_route(s, R[i].method, R[i].path, R[i].fn, srv);
    return rc;
}
