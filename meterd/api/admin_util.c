/* SPDX-License-Identifier: MIT */
/* admin_util.c - pure helpers of the admin routes (see admin_util.h). */
#include "api/admin_util.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/json.h"
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char mt_disable_keywords_default[] = "Your credit balance is too low\n"
                                           "This organization has been disabled.\n"
                                           "You exceeded your current quota\n"
                                           "Permission denied\n"
                                           "The security token included in the request is "
                                           "invalid\n"
                                           "Operation not allowed\n"
                                           "Your account is not authorized";

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* [*b, *e) trimmed of blanks */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

/* 1 if the comma list @p list (of @p len bytes) already holds [s, s+n) */
static int has_entry(const char *list, size_t len, const char *s, size_t n)
{
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        size_t l = q ? (size_t)(q - p) : (size_t)(end - p);
        if (l == n && memcmp(p, s, n) == 0)
            return 1;
        p += l + 1;
    }
    return 0;
}

int mt_csv_normalize(const char *in, char **out)
{
    struct cm_buf b;
    const char *p;
    int rc = CM_OK;

    if (!in || !out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, strlen(in) + 1);
    p = in;
    while (rc == CM_OK) {
        const char *e = strchr(p, ','), *s = p;
        const char *stop = e ? e : p + strlen(p);
        trim(&s, &stop);
        if (stop > s && !has_entry(b.data ? b.data : "", b.len, s, (size_t)(stop - s))) {
            if (b.len)
                rc = cm_buf_append(&b, ",", 1);
            if (rc == CM_OK)
                rc = cm_buf_append(&b, s, (size_t)(stop - s));
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (rc) {
        cm_buf_cleanup(&b);
        return rc;
    }
    *out = cm_buf_release(&b, NULL);
    return *out ? CM_OK : CM_ERR_NOMEM;
}

void mt_keys_free(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++) {
        if (keys[i]) {
            memset(keys[i], 0, strlen(keys[i]));
            cm_free(keys[i]);
        }
    }
    cm_free(keys);
}

static int push_key(char ***v, size_t *n, char *k)
{
    char **nv;
    if (!k)
        return CM_ERR_NOMEM;
    if (*n >= MT_BATCH_KEYS_MAX) {
        memset(k, 0, strlen(k));
        cm_free(k);
        return CM_ERR_LIMIT;
    }
    nv = cm_realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) {
        memset(k, 0, strlen(k));
        cm_free(k);
        return CM_ERR_NOMEM;
    }
    *v = nv;
    nv[(*n)++] = k;
    return CM_OK;
}

static int split_json(const cJSON *arr, char ***v, size_t *n)
{
    const cJSON *it;
    int rc = CM_OK;
    cJSON_ArrayForEach(it, arr)
    {
        char *k = NULL;
        if (cJSON_IsString(it) && it->valuestring) {
            const char *s = it->valuestring, *e = s + strlen(s);
            trim(&s, &e);
            if (e == s)
                continue;
            k = cm_strndup(s, (size_t)(e - s));
        } else if (cJSON_IsObject(it)) {
            rc = cm_json_print(it, &k, NULL);
            if (rc)
                return rc;
        } else {
            return CM_ERR_INVAL;
        }
        rc = push_key(v, n, k);
        if (rc)
            return rc;
    }
    return rc;
}

int mt_keys_split(const char *in, char ***keys, size_t *n)
{
    char **v = NULL;
    size_t cnt = 0;
    const char *p;
    int rc = CM_OK;

    if (!in || !keys || !n)
        return CM_ERR_INVAL;
    p = in;
    while (is_blank(*p))
        p++;
    if (*p == '[') {
        cJSON *j = NULL;
        int prc = cm_json_parse(in, strlen(in), NULL, &j, NULL);
        if (prc == CM_ERR_NOMEM)
            return CM_ERR_NOMEM;
        if (prc == CM_OK && cJSON_IsArray(j)) {
            rc = split_json(j, &v, &cnt);
            cJSON_Delete(j);
            goto out;
        }
        cJSON_Delete(j); /* not JSON: a key that starts with '[' */
    }
    while (rc == CM_OK && *p) {
        const char *e = strchr(p, '\n'), *s = p;
        const char *stop = e ? e : p + strlen(p);
        trim(&s, &stop);
        if (stop > s)
            rc = push_key(&v, &cnt, cm_strndup(s, (size_t)(stop - s)));
        if (!e)
            break;
        p = e + 1;
    }
out:
    if (rc == CM_OK && cnt == 0)
        rc = CM_ERR_NOTFOUND;
    if (rc) {
        mt_keys_free(v, cnt);
        return rc;
    }
    *keys = v;
    *n = cnt;
    return CM_OK;
}

int mt_option_value_from_json(const char *key, const cJSON *v, char **out, char *err, size_t errlen)
{
    const char *what = NULL;
    if (!out)
        return CM_ERR_INVAL;
    if (cJSON_IsString(v) && v->valuestring) {
        *out = cm_strdup(v->valuestring);
        return *out ? CM_OK : CM_ERR_NOMEM;
    }
    if (cJSON_IsBool(v)) {
        *out = cm_strdup(cJSON_IsTrue(v) ? "true" : "false");
        return *out ? CM_OK : CM_ERR_NOMEM;
    }
    if (cJSON_IsNumber(v)) {
        int rc = cm_json_print(v, out, NULL);
        return rc == CM_ERR_NOMEM ? rc : rc ? CM_ERR_INVAL : CM_OK;
    }
    if (!v || cJSON_IsNull(v))
        what = "a value is required";
    else if (cJSON_IsObject(v) || cJSON_IsArray(v))
        what = "the value is a JSON object or array; send maps and lists JSON-encoded in a "
               "string, e.g. \"value\": \"{\\\"gpt-4o\\\": 1.25}\"";
    else
        what = "the value must be a string, a boolean or a number";
    if (err && errlen)
        snprintf(err, errlen, "option %s: %s", key ? key : "(none)", what);
    return CM_ERR_INVAL;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && memcmp(s + n - l, suffix, l) == 0;
}

int mt_option_is_secret(const char *key)
{
    size_t n;
    if (!key)
        return 0;
    n = strlen(key);
    return ends_with(key, n, "Token") || ends_with(key, n, "Secret") || ends_with(key, n, "Key") ||
           ends_with(key, n, "secret") || ends_with(key, n, "api_key");
}

const char *mt_channel_default_base(int type)
{
    static const struct {
        int type;
        const char *url;
    } T[] = {
        {1, "https://api.openai.com"},     {4, "http://localhost:11434"},
        {14, "https://api.anthropic.com"}, {24, "https://generativelanguage.googleapis.com"},
        {43, "https://api.deepseek.com"},  {48, "https://api.x.ai"},
        {57, "https://chatgpt.com"},
    };
    for (size_t i = 0; i < sizeof T / sizeof *T; i++)
        if (T[i].type == type)
            return T[i].url;
    return NULL;
}

enum mt_test_api mt_channel_test_api(int type)
{
    return type == 14 ? MT_TEST_ANTHROPIC : MT_TEST_OPENAI;
}

int mt_channel_test_url(int type, const char *base_url, char *buf, size_t cap)
{
    const char *b = base_url && *base_url ? base_url : mt_channel_default_base(type);
    const char *path =
        mt_channel_test_api(type) == MT_TEST_ANTHROPIC ? "/v1/messages" : "/v1/chat/completions";
    const char *s, *e;
    int n;

    if (!buf || !cap)
        return CM_ERR_INVAL;
    buf[0] = '\0';
    if (!b)
        return CM_ERR_NOTFOUND;
    s = b;
    e = b + strlen(b);
    trim(&s, &e);
    while (e > s && e[-1] == '/')
        e--;
    if (!((size_t)(e - s) > 7 && strncmp(s, "http://", 7) == 0) &&
        !((size_t)(e - s) > 8 && strncmp(s, "https://", 8) == 0))
        return CM_ERR_INVAL;
    for (const char *q = s; q < e; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return CM_ERR_INVAL;
    n = snprintf(buf, cap, "%.*s%s", (int)(e - s), s, path);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return CM_ERR_LIMIT;
    }
    return CM_OK;
}

int mt_channel_test_model(const char *arg, const char *test_model, const char *models, char *buf,
                          size_t cap)
{
    const char *s = NULL, *e = NULL;
    int n;

    if (!buf || !cap)
        return CM_ERR_INVAL;
    if (arg && *arg) {
        s = arg;
        e = arg + strlen(arg);
        trim(&s, &e);
    }
    if (s == e && test_model && *test_model) {
        s = test_model;
        e = test_model + strlen(test_model);
        trim(&s, &e);
    }
    for (const char *p = models; s == e && p && *p;) {
        const char *c = strchr(p, ',');
        s = p;
        e = c ? c : p + strlen(p);
        trim(&s, &e);
        p = c ? c + 1 : e;
        if (!c && s == e)
            break;
    }
    if (s == e) {
        s = "gpt-4o-mini";
        e = s + strlen(s);
    }
    n = snprintf(buf, cap, "%.*s", (int)(e - s), s);
    return n < 0 || (size_t)n >= cap ? CM_ERR_LIMIT : CM_OK;
}

int mt_channel_first_key(const char *key, char **out)
{
    char **keys = NULL;
    size_t n = 0;
    int rc;
    if (!key || !out)
        return CM_ERR_INVAL;
    rc = mt_keys_split(key, &keys, &n);
    if (rc == CM_ERR_LIMIT || rc == CM_ERR_INVAL)
        rc = CM_ERR_NOTFOUND; /* cannot be a key list; use nothing rather than guess */
    if (rc)
        return rc;
    if (mt_has_ctl(keys[0])) { /* would break the header line */
        mt_keys_free(keys, n);
        return CM_ERR_INVAL;
    }
    *out = keys[0];
    keys[0] = NULL;
    mt_keys_free(keys, n);
    return CM_OK;
}

int mt_channel_test_body(enum mt_test_api api, const char *model, char **out, size_t *len)
{
    cJSON *b = cJSON_CreateObject(), *msgs = NULL, *m = NULL;
    int rc = CM_ERR_NOMEM;
    (void)api; /* both shapes are the same for one user message */
    if (!b || cm_json_set_string(b, "model", model ? model : "") ||
        cm_json_new_array(&msgs) != CM_OK)
        goto out;
    if (cm_json_new_object(&m) != CM_OK || cm_json_set_string(m, "role", "user") ||
        cm_json_set_string(m, "content", "hi") || cm_json_adopt(msgs, NULL, &m) ||
        cm_json_adopt(b, "messages", &msgs) || cm_json_set_int64(b, "max_tokens", 16))
        goto out;
    rc = cm_json_print(b, out, len);
out:
    cJSON_Delete(m);
    cJSON_Delete(msgs);
    cJSON_Delete(b);
    return rc;
}

/* @p n bytes of @p s into @p dst, control characters as ' ' (one line for a message) */
static void clean_copy(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        dst[k++] = (unsigned char)s[i] < ' ' || s[i] == 0x7f ? ' ' : s[i];
    if (cap)
        dst[k] = '\0';
}

int mt_channel_test_verdict(long status, const char *body, size_t len, const char *transport,
                            char *msg, size_t cap)
{
    cJSON *j = NULL, *err;
    const char *m = NULL;
    char head[160];

    if (msg && cap)
        msg[0] = '\0';
    if (status == 0) {
        if (msg && cap)
            snprintf(msg, cap, "upstream did not answer: %s", transport ? transport : "unknown");
        return 0;
    }
    if (body && len)
        (void)cm_json_parse(body, len, NULL, &j, NULL);
    err = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    if (status >= 200 && status < 300 && cJSON_IsObject(j) && !err) {
        cJSON_Delete(j);
        return 1;
    }
    if (err) {
        const cJSON *em =
            cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : err;
        if (cJSON_IsString(em) && em->valuestring && *em->valuestring)
            m = em->valuestring;
    }
    if (msg && cap) {
        if (m) {
            clean_copy(head, sizeof head, m, strlen(m));
            snprintf(msg, cap, "status %ld: %s", status, head);
        } else if (status >= 200 && status < 300) {
            clean_copy(head, sizeof head, body ? body : "", body ? (len < 100 ? len : 100) : 0);
            snprintf(msg, cap, "status %ld but the body is not a JSON object: %s", status, head);
        } else {
            clean_copy(head, sizeof head, body ? body : "", body ? (len < 100 ? len : 100) : 0);
            snprintf(msg, cap, "status %ld: %s", status, head[0] ? head : "(empty body)");
        }
    }
    cJSON_Delete(j);
    return 0;
}

/* case-insensitive: does @p hay contain [s, s+n) */
static int icontains(const char *hay, const char *s, size_t n)
{
    size_t hl = strlen(hay);
    if (n == 0 || n > hl)
        return 0;
    for (size_t i = 0; i + n <= hl; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)s[k]))
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

int mt_channel_should_disable(const struct mt_disable_policy *p, int passed, long status,
                              const char *msg, int64_t elapsed_ms)
{
    const char *kw;
    if (!p || !p->enabled)
        return 0;
    if (p->threshold_s > 0 && (double)elapsed_ms > p->threshold_s * 1000.0)
        return 1;
    if (passed)
        return 0;
    if (status > 0 && mt_options_code_in(p->status_codes ? p->status_codes : "401", status))
        return 1;
    kw = p->keywords ? p->keywords : mt_disable_keywords_default;
    while (msg && *kw) {
        const char *e = strchr(kw, '\n'), *s = kw;
        const char *stop = e ? e : kw + strlen(kw);
        trim(&s, &stop);
        if (stop > s && icontains(msg, s, (size_t)(stop - s)))
            return 1;
        if (!e)
            break;
        kw = e + 1;
    }
    return 0;
}

int mt_parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!s || !*s)
        return CM_ERR_NOTFOUND;
    if (!(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))))
        return CM_ERR_INVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || errno)
        return CM_ERR_INVAL;
    if (out)
        *out = (int64_t)v;
    return CM_OK;
}

long mt_utf8_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    if (!s)
        return -1;
    while (*p) {
        int k;
        unsigned c = *p;
        if (c < 0x80)
            k = 0;
        else if ((c & 0xe0) == 0xc0 && c >= 0xc2)
            k = 1;
        else if ((c & 0xf0) == 0xe0)
            k = 2;
        else if ((c & 0xf8) == 0xf0 && c <= 0xf4)
            k = 3;
        else
            return -1;
        p++;
        for (int i = 0; i < k; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return -1;
        n++;
    }
    return n;
}

int mt_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

int mt_json_set_str(cJSON *o, const char *key, const char *v)
{
    return cm_json_set_string(o, key, v ? v : "");
}
