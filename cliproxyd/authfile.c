/* SPDX-License-Identifier: MIT */
/*
 * authfile.c - CLIProxyAPI auth files: parse, refresh decision, apply a refresh, print,
 * atomic write, login file names, auth_index.
 *
 * The parsed JSON tree is kept in the struct and is the thing written back, so members we
 * do not know survive a rewrite untouched; the struct fields are owned copies of what the
 * tree (or the Codex id_token) says. A refresh is applied to a duplicate of the tree and
 * swapped in only when everything worked (all or nothing). Token strings are wiped before
 * they are freed, in the struct and in every string of the tree. Only cp_authfile_write()
 * touches the file system.
 */
#include "authfile.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/file.h"
#include "cm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OPENAI_AUTH_CLAIM "https://api.openai.com/auth"
#define JWT_MAX_DEPTH 16
#define EXPIRES_IN_MAX (INT64_C(10) * 366 * 24 * 3600) /* ten years: anything more is bogus */

static const struct {
    const char *name;
    enum cp_auth_provider p;
} providers[] = {
    {"codex", CP_AUTH_CODEX},
    {"claude", CP_AUTH_CLAUDE},
    {"gemini", CP_AUTH_GEMINI},
    {"gemini-cli", CP_AUTH_GEMINI},
    {"qwen", CP_AUTH_QWEN},
    {"iflow", CP_AUTH_IFLOW},
    {"antigravity", CP_AUTH_ANTIGRAVITY},
    {"vertex", CP_AUTH_VERTEX},
    {"aistudio", CP_AUTH_AISTUDIO},
    {"kimi", CP_AUTH_KIMI},
    {"xai", CP_AUTH_XAI},
};

const char *cp_authfile_provider_name(enum cp_auth_provider p)
{
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (providers[i].p == p)
            return providers[i].name;
    return "unknown";
}

bool cp_authfile_provider_supported(enum cp_auth_provider p)
{
    return p == CP_AUTH_CODEX || p == CP_AUTH_CLAUDE || p == CP_AUTH_GEMINI || p == CP_AUTH_QWEN ||
           p == CP_AUTH_IFLOW;
}

/* "type" is matched without regard to ASCII case and surrounding blanks, as CLIProxyAPI
 * lower-cases and trims provider keys. */
static enum cp_auth_provider provider_of(const char *type)
{
    size_t len;
    while (*type == ' ' || *type == '\t')
        type++;
    len = strlen(type);
    while (len && (type[len - 1] == ' ' || type[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (strlen(providers[i].name) == len && strncasecmp(providers[i].name, type, len) == 0)
            return providers[i].p;
    return CP_AUTH_UNKNOWN;
}

/* ---- errors ---- */

__attribute__((format(printf, 5, 6))) static void set_err(struct cp_authfile_err *err, int rc,
                                                          const char *name, const char *field,
                                                          const char *fmt, ...)
{
    char what[CP_AUTHFILE_ERR_MAX];
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    err->rc = rc;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    /* cut when too long: the message is for people, a short cut is fine */
    if (snprintf(err->msg, sizeof err->msg, "auth file '%s': %s", name ? name : "?", what) < 0)
        err->msg[0] = '\0';
}

/* a getter's error (whose msg already names the field), after "@p what: " if given */
static void set_json_err(struct cp_authfile_err *err, const char *name,
                         const struct cm_json_err *je, const char *what)
{
    if (je->rc == CM_ERR_NOMEM) {
        set_err(err, CM_ERR_NOMEM, name, "", "out of memory");
        return;
    }
    set_err(err, je->rc, name, je->field, "%s%s%s", what ? what : "", what ? ": " : "", je->msg);
}

/* ---- small helpers ---- */

static void free_secret(char *s)
{
    if (s) {
        cm_crypto_memzero(s, strlen(s));
        cm_free(s);
    }
}

/* zeroes every string in @p item (the tree is at most CP_AUTHFILE_MAX_DEPTH deep) */
static void wipe_tree(cJSON *item)
{
    for (; item; item = item->next) {
        if (cJSON_IsString(item) && item->valuestring)
            cm_crypto_memzero(item->valuestring, strlen(item->valuestring));
        if (item->child)
            wipe_tree(item->child);
    }
}

static void delete_tree(cJSON *t)
{
    if (t) {
        wipe_tree(t);
        cJSON_Delete(t);
    }
}

static void free_list(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        cm_free(v[i]);
    cm_free(v);
}

/* optional string member -> owned copy in *dst; absent, null or "" -> NULL */
static int take_string(const cJSON *obj, const char *key, char **dst, struct cm_json_err *je)
{
    const char *s = NULL;
    char *c;
    int rc = cm_json_opt_string(obj, key, NULL, &s, je);
    if (rc)
        return rc;
    if (!s || !*s) {
        *dst = NULL;
        return CM_OK;
    }
    c = cm_strdup(s);
    if (!c) {
        cm_json_err_set(je, CM_ERR_NOMEM, key, "out of memory");
        return CM_ERR_NOMEM;
    }
    *dst = c;
    return CM_OK;
}

static bool all_space(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return false;
    return true;
}

/* ---- time ---- */

static bool read_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int cp_authfile_parse_time(const char *s, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, dim;
    const char *p;
    int64_t t;

    if (!s || !out || strlen(s) < 20)
        return CM_ERR_INVAL;
    if (!read_digits(s, 4, &y) || s[4] != '-' || !read_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !read_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !read_digits(s + 11, 2, &h) || s[13] != ':' || !read_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !read_digits(s + 17, 2, &sec))
        return CM_ERR_INVAL;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return CM_ERR_INVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (!read_digits(p + 1, 2, &oh) || p[3] != ':' || !read_digits(p + 4, 2, &om))
            return CM_ERR_INVAL;
        p += 6;
    } else {
        return CM_ERR_INVAL;
    }
    if (*p)
        return CM_ERR_INVAL;
    if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59)
        return CM_ERR_INVAL;
    dim = mdays[mo - 1] + (mo == 2 && is_leap(y));
    if (d < 1 || d > dim)
        return CM_ERR_INVAL;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    *out = t;
    return CM_OK;
}

int cp_authfile_format_time(int64_t t, char out[CP_AUTHFILE_TIME_SIZE])
{
    struct tm tm;
    time_t tt;
    /* years 0000..9999 only, the range the text form holds */
    if (!out || t < INT64_C(-62167219200) || t > INT64_C(253402300799))
        return CM_ERR_INVAL;
    tt = (time_t)t;
    if (!gmtime_r(&tt, &tm))
        return CM_ERR_INVAL;
    if (snprintf(out, CP_AUTHFILE_TIME_SIZE, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec) >= CP_AUTHFILE_TIME_SIZE)
        return CM_ERR_INVAL;
    return CM_OK;
}

/* ---- JWT (payload only; the signature is not checked, as CLIProxyAPI does not) ---- */

struct jwt_info {
    char *email;
    char *account_id;
    char *plan;
};

static void jwt_info_cleanup(struct jwt_info *ji)
{
    cm_free(ji->email);
    cm_free(ji->account_id);
    cm_free(ji->plan);
    memset(ji, 0, sizeof *ji);
}

/* CM_OK and *ji filled, CM_ERR_NOMEM, or CM_ERR_INVAL (not a decodable JWT) */
static int jwt_read(const char *jwt, struct jwt_info *ji)
{
    struct cm_json_parse_opts o = {.max_depth = JWT_MAX_DEPTH, .max_size = CP_AUTHFILE_MAX_SIZE};
    struct jwt_info r = {0};
    const char *d1, *d2, *pl;
    unsigned char *bin = NULL;
    size_t plen, blen = 0;
    cJSON *claims = NULL, *auth;
    struct cm_json_err je;
    int rc;

    d1 = strchr(jwt, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || d1 == jwt || strchr(d2 + 1, '.')) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    pl = d1 + 1;
    plen = (size_t)(d2 - pl);
    while (plen && pl[plen - 1] == '=') /* tolerate padding */
        plen--;
    if (!plen) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cm_crypto_b64_decode(pl, plen, CM_CRYPTO_B64_URL_NOPAD, &bin, &blen);
    if (rc) {
        rc = rc == CM_ERR_NOMEM ? CM_ERR_NOMEM : CM_ERR_INVAL;
        goto out;
    }
    rc = cm_json_parse((const char *)bin, blen, &o, &claims, NULL);
    if (rc) {
        rc = rc == CM_ERR_NOMEM ? CM_ERR_NOMEM : CM_ERR_INVAL;
        goto out;
    }
    if (!cJSON_IsObject(claims)) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = take_string(claims, "email", &r.email, &je);
    if (rc)
        goto out;
    rc = cm_json_opt_object(claims, OPENAI_AUTH_CLAIM, &auth, &je);
    if (rc)
        goto out;
    if (auth) {
        rc = take_string(auth, "chatgpt_account_id", &r.account_id, &je);
        if (!rc)
            rc = take_string(auth, "chatgpt_plan_type", &r.plan, &je);
        if (rc)
            goto out;
    }
    *ji = r;
    memset(&r, 0, sizeof r);
out:
    jwt_info_cleanup(&r);
    if (bin) {
        cm_crypto_memzero(bin, blen);
        cm_free(bin);
    }
    delete_tree(claims);
    return rc;
}

/* ---- parsing ---- */

static int parse_priority(const cJSON *obj, int64_t *out, struct cm_json_err *je)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "priority");
    if (!it || cJSON_IsNull(it)) {
        *out = 0;
        return CM_OK;
    }
    if (cJSON_IsNumber(it)) {
        if (cm_json_to_int64(it, INT32_MIN, INT32_MAX, out) == CM_OK)
            return CM_OK;
    } else if (cJSON_IsString(it) && it->valuestring) {
        const char *s = it->valuestring;
        char *end = NULL;
        long long v;
        while (*s == ' ' || *s == '\t')
            s++;
        if ((*s >= '0' && *s <= '9') || ((*s == '-' || *s == '+') && s[1] >= '0' && s[1] <= '9')) {
            errno = 0;
            v = strtoll(s, &end, 10);
            if (errno == 0 && all_space(end) && v >= INT32_MIN && v <= INT32_MAX) {
                *out = v;
                return CM_OK;
            }
        }
    }
    cm_json_err_set(je, CM_ERR_INVAL, "priority", "must be an integer or a numeric string");
    return CM_ERR_INVAL;
}

static int parse_excluded(const cJSON *obj, struct cp_authfile *af, struct cm_json_err *je)
{
    const char *key = "excluded_models";
    cJSON *arr = NULL, *it;
    char **v = NULL;
    size_t n = 0, i = 0;
    int rc;

    rc = cm_json_opt_array(obj, key, &arr, je);
    if (!rc && !arr) {
        key = "excluded-models";
        rc = cm_json_opt_array(obj, key, &arr, je);
    }
    if (rc || !arr)
        return rc;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            cm_json_err_set(je, CM_ERR_INVAL, key, "must be a list of strings");
            return CM_ERR_INVAL;
        }
        if (*it->valuestring)
            n++;
    }
    if (!n)
        return CM_OK;
    v = cm_calloc(n, sizeof *v);
    if (!v)
        goto oom;
    cJSON_ArrayForEach(it, arr)
    {
        if (!*it->valuestring)
            continue;
        v[i] = cm_strdup(it->valuestring);
        if (!v[i])
            goto oom;
        i++;
    }
    af->excluded_models = v;
    af->n_excluded_models = n;
    return CM_OK;
oom:
    free_list(v, n);
    cm_json_err_set(je, CM_ERR_NOMEM, key, "out of memory");
    return CM_ERR_NOMEM;
}

static int parse_headers(const cJSON *obj, struct cp_authfile *af, struct cm_json_err *je)
{
    cJSON *h = NULL, *it;
    char **names = NULL, **values = NULL;
    size_t n = 0, i = 0;
    int rc = cm_json_opt_object(obj, "headers", &h, je);
    if (rc || !h)
        return rc;
    cJSON_ArrayForEach(it, h)
    {
        if (!cJSON_IsString(it)) {
            cm_json_err_set(je, CM_ERR_INVAL, "headers", "must be an object of strings");
            return CM_ERR_INVAL;
        }
        n++;
    }
    if (!n)
        return CM_OK;
    names = cm_calloc(n, sizeof *names);
    values = cm_calloc(n, sizeof *values);
    if (!names || !values)
        goto oom;
    cJSON_ArrayForEach(it, h)
    {
        names[i] = cm_strdup(it->string);
        values[i] = cm_strdup(it->valuestring);
        if (!names[i] || !values[i])
            goto oom;
        i++;
    }
    af->header_names = names;
    af->header_values = values;
    af->n_headers = n;
    return CM_OK;
oom:
    free_list(names, n);
    free_list(values, n);
    cm_json_err_set(je, CM_ERR_NOMEM, "headers", "out of memory");
    return CM_ERR_NOMEM;
}

/* disable_cooling, else disable-cooling: -1 when neither is there */
static int parse_cooling(const cJSON *obj, int *out, struct cm_json_err *je)
{
    static const char *const keys[] = {"disable_cooling", "disable-cooling"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, keys[i]);
        bool b;
        int rc;
        if (!it || cJSON_IsNull(it))
            continue;
        rc = cm_json_get_bool(obj, keys[i], &b, je);
        if (rc)
            return rc;
        *out = b;
        return CM_OK;
    }
    *out = -1;
    return CM_OK;
}

static int parse_time_field(const cJSON *obj, const char *key, bool *has, int64_t *t,
                            struct cm_json_err *je)
{
    const char *s = NULL;
    int rc = cm_json_opt_string(obj, key, NULL, &s, je);
    if (rc)
        return rc;
    if (!s || !*s) {
        *has = false;
        return CM_OK;
    }
    if (cp_authfile_parse_time(s, t)) {
        cm_json_err_set(je, CM_ERR_INVAL, key, "must be an RFC 3339 time");
        return CM_ERR_INVAL;
    }
    *has = true;
    return CM_OK;
}

static int parse_knobs(const cJSON *obj, struct cp_authfile *af, struct cm_json_err *je)
{
    int rc = cm_json_opt_bool(obj, "disabled", false, &af->disabled, je);
    if (!rc)
        rc = parse_priority(obj, &af->priority, je);
    if (!rc)
        rc = take_string(obj, "prefix", &af->prefix, je);
    if (!rc && af->prefix && strchr(af->prefix, '/')) {
        cm_json_err_set(je, CM_ERR_INVAL, "prefix", "must not contain '/'");
        rc = CM_ERR_INVAL;
    }
    if (!rc)
        rc = take_string(obj, "proxy_url", &af->proxy_url, je);
    if (!rc)
        rc = take_string(obj, "note", &af->note, je);
    if (!rc)
        rc = parse_excluded(obj, af, je);
    if (!rc)
        rc = parse_cooling(obj, &af->disable_cooling, je);
    if (!rc)
        rc = parse_headers(obj, af, je);
    return rc;
}

static int parse_tokens(const cJSON *obj, struct cp_authfile *af, struct cm_json_err *je)
{
    int rc = take_string(obj, "access_token", &af->access_token, je);
    if (!rc)
        rc = take_string(obj, "refresh_token", &af->refresh_token, je);
    if (!rc)
        rc = take_string(obj, "id_token", &af->id_token, je);
    if (!rc && af->provider == CP_AUTH_CODEX)
        rc = take_string(obj, "account_id", &af->account_id, je);
    if (!rc)
        rc = parse_time_field(obj, "expired", &af->has_expired, &af->expired, je);
    if (!rc)
        rc = parse_time_field(obj, "last_refresh", &af->has_last_refresh, &af->last_refresh, je);
    return rc;
}

/* an optional member that must be a string when present (read by nobody, checked anyway) */
static int check_string(const cJSON *obj, const char *key, struct cm_json_err *je)
{
    const char *s = NULL;
    return cm_json_opt_string(obj, key, NULL, &s, je);
}

/* gemini (spec 3.3(a)): project_id, auto, checked, and the nested oauth2 token */
static int parse_gemini(const cJSON *obj, struct cp_authfile *af, struct cm_json_err *je)
{
    cJSON *tok = NULL, *scopes = NULL, *it;
    bool b;
    int rc = take_string(obj, "project_id", &af->project_id, je);
    if (!rc)
        rc = cm_json_opt_bool(obj, "auto", false, &b, je);
    if (!rc)
        rc = cm_json_opt_bool(obj, "checked", false, &b, je);
    if (!rc)
        rc = cm_json_opt_object(obj, "token", &tok, je);
    if (rc || !tok)
        return rc;
    rc = take_string(tok, "access_token", &af->access_token, je);
    if (!rc)
        rc = take_string(tok, "refresh_token", &af->refresh_token, je);
    if (!rc)
        rc = take_string(tok, "token_uri", &af->token_uri, je);
    if (!rc)
        rc = take_string(tok, "client_id", &af->client_id, je);
    if (!rc)
        rc = take_string(tok, "client_secret", &af->client_secret, je);
    if (!rc)
        rc = check_string(tok, "token_type", je);
    if (!rc)
        rc = check_string(tok, "universe_domain", je);
    if (!rc)
        rc = parse_time_field(tok, "expiry", &af->has_expired, &af->expired, je);
    if (!rc)
        rc = cm_json_opt_array(tok, "scopes", &scopes, je);
    for (it = scopes ? scopes->child : NULL; !rc && it; it = it->next)
        if (!cJSON_IsString(it)) {
            cm_json_err_set(je, CM_ERR_INVAL, "scopes", "must be a list of strings");
            rc = CM_ERR_INVAL;
        }
    if (rc && rc != CM_ERR_NOMEM)
        cm_json_err_scope(je, "token");
    return rc;
}

/* qwen (3.4(a)) and iflow (3.5(a)) members beyond the common token fields */
static int parse_extras(const cJSON *obj, struct cp_authfile *af, struct cm_json_err *je)
{
    int rc = CM_OK;
    if (af->provider == CP_AUTH_QWEN)
        return take_string(obj, "resource_url", &af->resource_url, je);
    if (af->provider != CP_AUTH_IFLOW)
        return CM_OK;
    rc = take_string(obj, "api_key", &af->api_key, je);
    if (!rc)
        rc = take_string(obj, "cookie", &af->cookie, je);
    if (!rc)
        rc = check_string(obj, "token_type", je);
    if (!rc)
        rc = check_string(obj, "scope", je);
    return rc;
}

/* codex: fill account_id / email (if the file has none) and plan_type from the id_token */
static int apply_codex_claims(struct cp_authfile *af, struct cm_json_err *je)
{
    struct jwt_info ji = {0};
    int rc;
    if (!af->id_token)
        return CM_OK;
    rc = jwt_read(af->id_token, &ji);
    if (rc) {
        if (rc == CM_ERR_NOMEM)
            cm_json_err_set(je, rc, "id_token", "out of memory");
        else
            cm_json_err_set(je, rc, "id_token", "is not a decodable JWT");
        return rc;
    }
    if (!af->account_id) {
        af->account_id = ji.account_id;
        ji.account_id = NULL;
    }
    if (!af->email) {
        af->email = ji.email;
        ji.email = NULL;
    }
    af->plan_type = ji.plan;
    ji.plan = NULL;
    jwt_info_cleanup(&ji);
    return CM_OK;
}

int cp_authfile_parse(const char *name, const char *data, size_t len, struct cp_authfile **out,
                      struct cp_authfile_err *err)
{
    struct cm_json_parse_opts o = {.max_depth = CP_AUTHFILE_MAX_DEPTH,
                                   .max_size = CP_AUTHFILE_MAX_SIZE};
    struct cp_authfile *af = NULL;
    struct cm_json_err je;
    cJSON *root = NULL;
    const char *type = NULL;
    int rc;

    if (!name || !out || (!data && len)) {
        rc = CM_ERR_INVAL;
        set_err(err, rc, name, "", "bad arguments");
        goto out;
    }
    if (len > CP_AUTHFILE_MAX_SIZE) {
        rc = CM_ERR_LIMIT;
        set_err(err, rc, name, "", "is larger than %d bytes", CP_AUTHFILE_MAX_SIZE);
        goto out;
    }
    rc = cm_json_parse(data ? data : "", len, &o, &root, &je);
    if (rc) {
        if (rc == CM_ERR_NOMEM)
            set_err(err, rc, name, "", "out of memory");
        else
            set_err(err, rc, name, "", "is not valid JSON (%s at byte %zu)", je.msg, je.offset);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = CM_ERR_PARSE;
        set_err(err, rc, name, "", "is not a JSON object");
        goto out;
    }
    af = cm_calloc(1, sizeof *af);
    if (!af) {
        rc = CM_ERR_NOMEM;
        set_err(err, rc, name, "", "out of memory");
        goto out;
    }
    af->json = root;
    root = NULL;
    af->disable_cooling = -1;
    af->name = cm_strdup(name);
    if (!af->name) {
        rc = CM_ERR_NOMEM;
        set_err(err, rc, name, "", "out of memory");
        goto out;
    }
    rc = cp_authfile_auth_index(name, af->auth_index);
    if (rc) {
        set_err(err, rc, name, "", "file name is longer than %d bytes", CP_AUTHFILE_NAME_MAX);
        goto out;
    }

    rc = cm_json_get_string(af->json, "type", &type, &je);
    if (!rc && all_space(type)) {
        cm_json_err_set(&je, CM_ERR_INVAL, "type", "must not be empty");
        rc = CM_ERR_INVAL;
    }
    if (!rc) {
        af->type = cm_strdup(type);
        if (!af->type) {
            rc = CM_ERR_NOMEM;
            cm_json_err_set(&je, rc, "type", "out of memory");
        }
    }
    if (rc) {
        set_json_err(err, name, &je, NULL);
        goto out;
    }
    af->provider = provider_of(type);

    rc = take_string(af->json, "email", &af->email, &je);
    if (!rc)
        rc = parse_knobs(af->json, af, &je);
    if (!rc && af->provider == CP_AUTH_GEMINI)
        rc = parse_gemini(af->json, af, &je);
    else if (!rc && cp_authfile_provider_supported(af->provider))
        rc = parse_tokens(af->json, af, &je);
    if (!rc)
        rc = parse_extras(af->json, af, &je);
    if (!rc && af->provider == CP_AUTH_CODEX)
        rc = apply_codex_claims(af, &je);
    if (rc) {
        set_json_err(err, name, &je, NULL);
        goto out;
    }
    *out = af;
    af = NULL;
out:
    cp_authfile_free(af);
    delete_tree(root);
    return rc;
}

void cp_authfile_free(struct cp_authfile *af)
{
    if (!af)
        return;
    cm_free(af->name);
    cm_free(af->type);
    cm_free(af->email);
    free_secret(af->access_token);
    free_secret(af->refresh_token);
    free_secret(af->id_token);
    cm_free(af->account_id);
    cm_free(af->plan_type);
    cm_free(af->prefix);
    cm_free(af->proxy_url);
    cm_free(af->note);
    cm_free(af->project_id);
    cm_free(af->token_uri);
    cm_free(af->client_id);
    free_secret(af->client_secret);
    cm_free(af->resource_url);
    free_secret(af->api_key);
    free_secret(af->cookie);
    free_list(af->excluded_models, af->n_excluded_models);
    free_list(af->header_names, af->n_headers);
    /* header values may carry credentials of their own */
    for (size_t i = 0; af->header_values && i < af->n_headers; i++)
        if (af->header_values[i])
            cm_crypto_memzero(af->header_values[i], strlen(af->header_values[i]));
    free_list(af->header_values, af->n_headers);
    cm_free(af->base_url);
    free_list(af->model_alias, af->n_model_alias);
    free_list(af->model_name, af->n_model_alias);
    delete_tree(af->json);
    cm_free(af);
}

const char *cp_authfile_upstream_model(const struct cp_authfile *af, const char *model)
{
    for (size_t i = 0; af && model && i < af->n_model_alias; i++)
        if (af->model_alias[i] && af->model_name[i] && strcasecmp(af->model_alias[i], model) == 0)
            return af->model_name[i];
    return model;
}

/* ---- refresh decision ---- */

int64_t cp_authfile_refresh_lead(const struct cp_authfile *af)
{
    if (!af)
        return 0;
    switch (af->provider) {
    case CP_AUTH_CODEX:
        return CP_AUTHFILE_LEAD_CODEX;
    case CP_AUTH_CLAUDE:
        return CP_AUTHFILE_LEAD_CLAUDE;
    case CP_AUTH_GEMINI:
        return CP_AUTHFILE_LEAD_GEMINI;
    case CP_AUTH_QWEN:
        return CP_AUTHFILE_LEAD_QWEN;
    case CP_AUTH_IFLOW:
        return CP_AUTHFILE_LEAD_IFLOW;
    default:
        return 0;
    }
}

bool cp_authfile_needs_refresh(const struct cp_authfile *af, const struct cm_clock *clk)
{
    int64_t now, lead;
    if (!af || !af->refresh_token)
        return false;
    if (!af->has_expired)
        return true;
    now = cm_clock_wall_s(clk);
    lead = cp_authfile_refresh_lead(af);
    /* a token that lives less than twice the lead (an iFlow token of a few hours against
     * its 24 h lead) is refreshed at half its life, not at once again and again */
    if (af->has_last_refresh && af->expired > af->last_refresh &&
        (af->expired - af->last_refresh) / 2 < lead)
        lead = (af->expired - af->last_refresh) / 2;
    return af->expired - now <= lead;
}

bool cp_authfile_is_expired(const struct cp_authfile *af, const struct cm_clock *clk)
{
    if (!af || !af->has_expired)
        return false;
    return cm_clock_wall_s(clk) >= af->expired;
}

/* ---- applying a refresh ---- */

/* what a refresh will change, built before anything is touched */
struct refresh_new {
    char *access_token;
    char *refresh_token; /* NULL: keep */
    char *id_token;      /* NULL: keep */
    struct jwt_info ji;  /* from the new id_token (codex) */
    char *email;         /* claude: account.email_address; NULL: keep */
    char *resource_url;  /* qwen; NULL: keep */
    char *token_type;    /* gemini; NULL: keep */
    cJSON *tree;         /* the updated copy of af->json */
};

static void refresh_new_cleanup(struct refresh_new *n)
{
    free_secret(n->access_token);
    free_secret(n->refresh_token);
    free_secret(n->id_token);
    jwt_info_cleanup(&n->ji);
    cm_free(n->email);
    cm_free(n->resource_url);
    cm_free(n->token_type);
    delete_tree(n->tree);
}

/*
 * iFlow's token endpoint often answers 200 {"success":false,"code":"500","message":...}
 * (CLIProxyAPI issues 239, 1514): say so clearly, with the provider's code and message.
 */
static void iflow_missing_token(struct cp_authfile_err *err, const char *name, const cJSON *ans)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ans, "message");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(ans, "code");
    char code[32] = "";
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(ans, "msg");
    if (cJSON_IsString(c))
        snprintf(code, sizeof code, "%.24s", c->valuestring);
    else if (cJSON_IsNumber(c))
        snprintf(code, sizeof code, "%.0f", c->valuedouble);
    set_err(err, CM_ERR_UPSTREAM, name, "access_token",
            "iflow token: missing access token in response%s%s%s%s%.200s", code[0] ? " (code " : "",
            code, code[0] ? ")" : "", cJSON_IsString(m) ? ": " : "",
            cJSON_IsString(m) ? m->valuestring : "");
}

/* gemini: writes the new token into the nested "token" object of @p tree (spec 3.3(c)) */
static int gemini_tree(cJSON *tree, const struct refresh_new *n, const char *t_exp)
{
    cJSON *tok = cJSON_GetObjectItemCaseSensitive(tree, "token");
    int rc;
    if (!cJSON_IsObject(tok)) {
        tok = NULL;
        rc = cm_json_new_object(&tok);
        if (!rc)
            rc = cm_json_adopt(tree, "token", &tok);
        if (rc)
            return rc;
        tok = cJSON_GetObjectItemCaseSensitive(tree, "token");
    }
    rc = cm_json_set_string(tok, "access_token", n->access_token);
    if (!rc && n->token_type)
        rc = cm_json_set_string(tok, "token_type", n->token_type);
    if (!rc && n->refresh_token)
        rc = cm_json_set_string(tok, "refresh_token", n->refresh_token);
    if (!rc)
        rc = cm_json_set_string(tok, "expiry", t_exp);
    return rc;
}

static void swap_str(char **field, char **repl, bool secret)
{
    char *old = *field;
    *field = *repl;
    *repl = NULL;
    if (secret)
        free_secret(old);
    else
        cm_free(old);
}

int cp_authfile_apply_refresh(struct cp_authfile *af, const char *resp, size_t len,
                              const struct cm_clock *clk, struct cp_authfile_err *err)
{
    struct cm_json_parse_opts o = {.max_depth = CP_AUTHFILE_MAX_DEPTH,
                                   .max_size = CP_AUTHFILE_MAX_SIZE};
    struct refresh_new n = {0};
    struct cm_json_err je;
    cJSON *ans = NULL, *account = NULL;
    const char *name = af ? af->name : NULL;
    const char *email_for_tree, *str = NULL;
    char t_exp[CP_AUTHFILE_TIME_SIZE], t_now[CP_AUTHFILE_TIME_SIZE];
    int64_t expires_in, now;
    int rc;

    if (!af || (!resp && len)) {
        rc = CM_ERR_INVAL;
        set_err(err, rc, name, "", "bad arguments");
        goto out;
    }
    if (!cp_authfile_provider_supported(af->provider)) {
        rc = CM_ERR_INVAL;
        set_err(err, rc, name, "type", "provider '%s' cannot be refreshed here",
                cp_authfile_provider_name(af->provider));
        goto out;
    }
    rc = cm_json_parse(resp ? resp : "", len, &o, &ans, &je);
    if (rc) {
        if (rc == CM_ERR_NOMEM)
            set_err(err, rc, name, "", "out of memory");
        else
            set_err(err, rc, name, "", "token answer is not valid JSON (%s)", je.msg);
        goto out;
    }
    if (!cJSON_IsObject(ans)) {
        rc = CM_ERR_PARSE;
        set_err(err, rc, name, "", "token answer is not a JSON object");
        goto out;
    }
    if (af->provider == CP_AUTH_IFLOW) {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(ans, "access_token");
        if (!at || cJSON_IsNull(at) || (cJSON_IsString(at) && !*at->valuestring)) {
            rc = CM_ERR_UPSTREAM;
            iflow_missing_token(err, name, ans);
            goto out;
        }
    }
    rc = cm_json_get_string(ans, "access_token", &str, &je);
    if (!rc && !*str) {
        cm_json_err_set(&je, CM_ERR_INVAL, "access_token", "must not be empty");
        rc = CM_ERR_INVAL;
    }
    if (!rc)
        rc = take_string(ans, "access_token", &n.access_token, &je);
    if (!rc)
        rc = cm_json_get_int64(ans, "expires_in", 1, EXPIRES_IN_MAX, &expires_in, &je);
    if (!rc)
        rc = take_string(ans, "refresh_token", &n.refresh_token, &je);
    if (!rc)
        rc = take_string(ans, "id_token", &n.id_token, &je);
    if (!rc && af->provider == CP_AUTH_QWEN)
        rc = take_string(ans, "resource_url", &n.resource_url, &je);
    if (!rc && af->provider == CP_AUTH_GEMINI)
        rc = take_string(ans, "token_type", &n.token_type, &je);
    if (!rc && af->provider == CP_AUTH_CLAUDE) {
        rc = cm_json_opt_object(ans, "account", &account, &je);
        if (!rc && account) {
            rc = take_string(account, "email_address", &n.email, &je);
            if (rc)
                cm_json_err_scope(&je, "account");
        }
    }
    if (!rc && af->provider == CP_AUTH_CODEX && n.id_token) {
        rc = jwt_read(n.id_token, &n.ji);
        if (rc)
            cm_json_err_set(&je, rc, "id_token",
                            rc == CM_ERR_NOMEM ? "out of memory" : "is not a decodable JWT");
    }
    if (rc) {
        set_json_err(err, name, &je, "token answer");
        goto out;
    }

    now = cm_clock_wall_s(clk);
    if (cp_authfile_format_time(now, t_now) || cp_authfile_format_time(now + expires_in, t_exp)) {
        rc = CM_ERR_INVAL;
        set_err(err, rc, name, "expired", "the clock is out of range");
        goto out;
    }

    /* the new tree: only the members a refresh writes (spec 3.1(c), 3.2(c)) */
    n.tree = cJSON_Duplicate(af->json, 1);
    if (!n.tree) {
        rc = CM_ERR_NOMEM;
        set_err(err, rc, name, "", "out of memory");
        goto out;
    }
    email_for_tree = af->provider == CP_AUTH_CODEX ? n.ji.email : n.email;
    if (af->provider == CP_AUTH_GEMINI) {
        rc = gemini_tree(n.tree, &n, t_exp);
        if (rc) {
            set_err(err, rc, name, "",
                    rc == CM_ERR_NOMEM ? "out of memory" : "cannot update the tree");
            goto out;
        }
        goto commit;
    }
    rc = cm_json_set_string(n.tree, "access_token", n.access_token);
    if (!rc && n.refresh_token)
        rc = cm_json_set_string(n.tree, "refresh_token", n.refresh_token);
    if (!rc && n.id_token && af->provider == CP_AUTH_CODEX)
        rc = cm_json_set_string(n.tree, "id_token", n.id_token);
    if (!rc && n.ji.account_id)
        rc = cm_json_set_string(n.tree, "account_id", n.ji.account_id);
    if (!rc && email_for_tree)
        rc = cm_json_set_string(n.tree, "email", email_for_tree);
    if (!rc && n.resource_url)
        rc = cm_json_set_string(n.tree, "resource_url", n.resource_url);
    if (!rc)
        rc = cm_json_set_string(n.tree, "expired", t_exp);
    if (!rc)
        rc = cm_json_set_string(n.tree, "type", cp_authfile_provider_name(af->provider));
    if (!rc)
        rc = cm_json_set_string(n.tree, "last_refresh", t_now);
    if (rc) {
        set_err(err, rc, name, "", rc == CM_ERR_NOMEM ? "out of memory" : "cannot update the tree");
        goto out;
    }
    if (strcmp(af->type, cp_authfile_provider_name(af->provider)) != 0) {
        char *t = cm_strdup(cp_authfile_provider_name(af->provider));
        if (!t) {
            rc = CM_ERR_NOMEM;
            set_err(err, rc, name, "", "out of memory");
            goto out;
        }
        swap_str(&af->type, &t, false);
    }

commit:
    /* nothing below can fail */
    swap_str(&af->access_token, &n.access_token, true);
    if (n.refresh_token)
        swap_str(&af->refresh_token, &n.refresh_token, true);
    if (n.id_token && af->provider == CP_AUTH_CODEX) {
        swap_str(&af->id_token, &n.id_token, true);
        swap_str(&af->plan_type, &n.ji.plan, false);
        if (n.ji.account_id)
            swap_str(&af->account_id, &n.ji.account_id, false);
        if (n.ji.email)
            swap_str(&af->email, &n.ji.email, false);
    }
    if (n.email)
        swap_str(&af->email, &n.email, false);
    if (n.resource_url)
        swap_str(&af->resource_url, &n.resource_url, false);
    af->has_expired = true;
    af->expired = now + expires_in;
    if (af->provider != CP_AUTH_GEMINI) {
        af->has_last_refresh = true;
        af->last_refresh = now;
    }
    delete_tree(af->json);
    af->json = n.tree;
    n.tree = NULL;
    rc = CM_OK;
out:
    refresh_new_cleanup(&n);
    delete_tree(ans);
    return rc;
}

int cp_authfile_apply_iflow_userinfo(struct cp_authfile *af, const char *resp, size_t len,
                                     struct cp_authfile_err *err)
{
    struct cm_json_parse_opts o = {.max_depth = CP_AUTHFILE_MAX_DEPTH,
                                   .max_size = CP_AUTHFILE_MAX_SIZE};
    struct cm_json_err je;
    cJSON *ans = NULL, *data = NULL, *tree = NULL;
    const cJSON *ok;
    char *key = NULL, *email = NULL, *phone = NULL;
    const char *name = af ? af->name : NULL;
    const char *new_email;
    int rc;

    if (!af || (!resp && len)) {
        rc = CM_ERR_INVAL;
        set_err(err, rc, name, "", "bad arguments");
        goto out;
    }
    if (af->provider != CP_AUTH_IFLOW) {
        rc = CM_ERR_INVAL;
        set_err(err, rc, name, "type", "user info is for iflow credentials only");
        goto out;
    }
    rc = cm_json_parse(resp ? resp : "", len, &o, &ans, &je);
    if (!rc && !cJSON_IsObject(ans))
        rc = CM_ERR_PARSE;
    if (rc) {
        set_err(err, rc, name, "",
                rc == CM_ERR_NOMEM ? "out of memory" : "iflow user info is not a JSON object");
        goto out;
    }
    ok = cJSON_GetObjectItemCaseSensitive(ans, "success");
    if (cJSON_IsFalse(ok)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ans, "message");
        rc = CM_ERR_UPSTREAM;
        set_err(err, rc, name, "success", "iflow user info failed%s%.200s",
                cJSON_IsString(m) ? ": " : "", cJSON_IsString(m) ? m->valuestring : "");
        goto out;
    }
    rc = cm_json_get_object(ans, "data", &data, &je);
    if (!rc)
        rc = take_string(data, "apiKey", &key, &je);
    if (!rc)
        rc = take_string(data, "email", &email, &je);
    if (!rc)
        rc = take_string(data, "phone", &phone, &je);
    if (!rc && !key) {
        cm_json_err_set(&je, CM_ERR_NOTFOUND, "apiKey", "is missing or empty");
        rc = CM_ERR_NOTFOUND;
    }
    if (rc) {
        set_json_err(err, name, &je, "iflow user info");
        goto out;
    }
    new_email = af->email ? NULL : email ? email : phone;
    tree = cJSON_Duplicate(af->json, 1);
    rc = tree ? cm_json_set_string(tree, "api_key", key) : CM_ERR_NOMEM;
    if (!rc && new_email)
        rc = cm_json_set_string(tree, "email", new_email);
    if (rc) {
        set_err(err, rc, name, "", rc == CM_ERR_NOMEM ? "out of memory" : "cannot update the tree");
        goto out;
    }
    /* commit: nothing below can fail */
    swap_str(&af->api_key, &key, true);
    if (new_email)
        swap_str(&af->email, new_email == email ? &email : &phone, false);
    delete_tree(af->json);
    af->json = tree;
    tree = NULL;
out:
    free_secret(key);
    cm_free(email);
    cm_free(phone);
    delete_tree(tree);
    delete_tree(ans);
    return rc;
}

/* ---- printing and writing ---- */

int cp_authfile_serialize(const struct cp_authfile *af, char **out, size_t *len_out)
{
    char *s = NULL, *r = NULL;
    size_t n = 0;
    int rc;

    if (!af || !af->json || !out)
        return CM_ERR_INVAL;
    rc = cm_json_print(af->json, &s, &n);
    if (rc)
        goto out;
    r = cm_malloc(n + 2);
    if (!r) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    memcpy(r, s, n);
    r[n] = '\n';
    r[n + 1] = '\0';
    *out = r;
    if (len_out)
        *len_out = n + 1;
out:
    if (s) {
        cm_crypto_memzero(s, n);
        cm_free(s);
    }
    return rc;
}

int cp_authfile_write(const char *path, const char *data, size_t len)
{
    return cm_file_write_atomic(path, data, len, 0600, 0, NULL, 0);
}

/* ---- names ---- */

int cp_authfile_auth_index(const char *name, char out[CP_AUTHFILE_INDEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[CM_CRYPTO_SHA256_LEN];
    char buf[5 + CP_AUTHFILE_NAME_MAX];
    size_t n;

    if (!name || !out)
        return CM_ERR_INVAL;
    n = strlen(name);
    if (n > CP_AUTHFILE_NAME_MAX)
        return CM_ERR_LIMIT;
    memcpy(buf, "file:", 5);
    memcpy(buf + 5, name, n);
    cm_crypto_sha256(buf, n + 5, d);
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[16] = '\0';
    return CM_OK;
}

/* appends @p s trimmed, with '/', '\\', ':' and control bytes replaced by '_' */
static int append_sanitized(struct cm_buf *b, const char *s)
{
    size_t n;
    int rc = CM_OK;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        char o = (c == '/' || c == '\\' || c == ':' || c < 0x20 || c == 0x7f) ? '_' : (char)c;
        rc = cm_buf_append(b, &o, 1);
    }
    return rc;
}

/* appends the normalised plan: ASCII alnum runs, lowercased, joined by '-' */
static int append_plan(struct cm_buf *b, const char *plan)
{
    bool need_dash = false, any = false;
    int rc = CM_OK;
    for (const char *p = plan; *p && !rc; p++) {
        unsigned char c = (unsigned char)*p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum) {
            need_dash = any;
            continue;
        }
        if (need_dash)
            rc = cm_buf_append(b, "-", 1);
        need_dash = false;
        any = true;
        if (!rc) {
            char o = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
            rc = cm_buf_append(b, &o, 1);
        }
    }
    return rc;
}

int cp_authfile_login_name(const char *provider, const char *email, const char *account_id,
                           const char *plan, char **out)
{
    struct cm_buf b, pb;
    char *r;
    int rc;

    cm_buf_init(&b, 4096);
    cm_buf_init(&pb, 1024);
    if (!provider || !email || !out || all_space(email)) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    if (strcmp(provider, "claude") == 0) {
        rc = cm_buf_append_str(&b, "claude-");
        if (!rc)
            rc = append_sanitized(&b, email);
    } else if (strcmp(provider, "codex") == 0) {
        rc = plan ? append_plan(&pb, plan) : CM_OK;
        if (rc)
            goto out;
        rc = cm_buf_append_str(&b, "codex-");
        if (!rc && pb.len && strcmp(pb.data, "team") == 0 && account_id && *account_id) {
            char h[CM_CRYPTO_SHA256_HEX_SIZE];
            cm_crypto_sha256_hex(account_id, strlen(account_id), h);
            rc = cm_buf_appendf(&b, "%.8s-", h);
        }
        if (!rc)
            rc = append_sanitized(&b, email);
        if (!rc && pb.len)
            rc = cm_buf_appendf(&b, "-%s", pb.data);
    } else if (strcmp(provider, "gemini") == 0 && account_id && !all_space(account_id)) {
        /* account_id is the project: "ALL" or a comma list -> "all" (multi-project) */
        bool all =
            strchr(account_id, ',') || (strlen(account_id) == 3 && (account_id[0] | 32) == 'a' &&
                                        (account_id[1] | 32) == 'l' && (account_id[2] | 32) == 'l');
        rc = cm_buf_append_str(&b, "gemini-");
        if (!rc)
            rc = append_sanitized(&b, email);
        if (!rc)
            rc = cm_buf_append(&b, "-", 1);
        if (!rc)
            rc = all ? cm_buf_append_str(&b, "all") : append_sanitized(&b, account_id);
    } else if (strcmp(provider, "qwen") == 0) {
        rc = cm_buf_append_str(&b, "qwen-");
        if (!rc)
            rc = append_sanitized(&b, email);
    } else if (strcmp(provider, "iflow") == 0 && account_id && *account_id &&
               strspn(account_id, "0123456789") == strlen(account_id)) {
        /* account_id is the login time in unix seconds */
        rc = cm_buf_append_str(&b, "iflow-");
        if (!rc)
            rc = append_sanitized(&b, email);
        if (!rc)
            rc = cm_buf_appendf(&b, "-%s", account_id);
    } else {
        rc = CM_ERR_INVAL;
    }
    if (!rc)
        rc = cm_buf_append_str(&b, ".json");
    if (rc)
        goto out;
    r = cm_buf_release(&b, NULL);
    if (!r) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    *out = r;
out:
    cm_buf_cleanup(&b);
    cm_buf_cleanup(&pb);
    return rc == CM_ERR_LIMIT ? CM_ERR_INVAL : rc;
}

void cp_authfile_describe(const struct cp_authfile *af, char *dst, size_t dstlen)
{
    if (!dst || !dstlen)
        return;
    if (!af) {
        snprintf(dst, dstlen, "(none)");
        return;
    }
    snprintf(dst, dstlen, "%s %s (%s)", af->type ? af->type : "?",
             af->email ? af->email : "(no email)", af->name ? af->name : "?");
}
