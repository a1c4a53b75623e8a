/* SPDX-License-Identifier: MIT */
/*
 * oauth.c - the pure part of the login flows (see oauth.h): URLs, bodies, answers, files.
 * Codex and Claude files are built by cp_authfile itself (a skeleton {"type"} plus
 * cp_authfile_apply_refresh() with the token answer), so the id_token decoding and the
 * field set stay in one place; the other providers' files are built here.
 */
#include "login/oauth.h"

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/json.h"
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (64 * 1024)
#define ANSWER_MAX (1024 * 1024)

static const char *const kind_names[CP_LOGIN__COUNT] = {
    "codex", "codex-device", "claude", "gemini", "qwen", "iflow", "iflow-cookie"};

const char *cp_login_kind_name(enum cp_login_kind k)
{
    return (unsigned)k < CP_LOGIN__COUNT ? kind_names[k] : "unknown";
}

int cp_login_kind_provider(enum cp_login_kind k)
{
    switch (k) {
    case CP_LOGIN_CODEX:
    case CP_LOGIN_CODEX_DEVICE:
        return CP_PROVIDER_CODEX;
    case CP_LOGIN_CLAUDE:
        return CP_PROVIDER_CLAUDE;
    case CP_LOGIN_GEMINI:
        return CP_PROVIDER_GEMINI;
    case CP_LOGIN_QWEN:
        return CP_PROVIDER_QWEN;
    default:
        return CP_PROVIDER_IFLOW;
    }
}

uint16_t cp_login_default_port(enum cp_login_kind k)
{
    switch (k) {
    case CP_LOGIN_CODEX:
        return 1455;
    case CP_LOGIN_CLAUDE:
        return 54545;
    case CP_LOGIN_GEMINI:
        return 8085;
    case CP_LOGIN_IFLOW:
        return 11451;
    default:
        return 0;
    }
}

const char *cp_login_callback_path(enum cp_login_kind k)
{
    switch (k) {
    case CP_LOGIN_CODEX:
        return "/auth/callback";
    case CP_LOGIN_CLAUDE:
        return "/callback";
    case CP_LOGIN_GEMINI:
    case CP_LOGIN_IFLOW:
        return "/oauth2callback";
    default:
        return NULL;
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int cp_login_redirect_uri(enum cp_login_kind k, uint16_t port, char *out, size_t outlen)
{
    const char *path = cp_login_callback_path(k);
    int n;
    if (!path || !out)
        return CM_ERR_INVAL;
    n = snprintf(out, outlen, "http://localhost:%u%s",
                 (unsigned)(port ? port : cp_login_default_port(k)), path);
    return n < 0 || (size_t)n >= outlen ? CM_ERR_LIMIT : CM_OK;
}

int cp_login_pkce(const unsigned char *rnd, size_t n, char verifier[CP_LOGIN_VERIFIER_MAX],
                  char challenge[CM_CRYPTO_PKCE_SIZE])
{
    char *v = NULL, ch[CM_CRYPTO_PKCE_SIZE];
    size_t vl = 0;
    int rc;
    if (!rnd || n < 32 || n > 96 || !verifier || !challenge)
        return CM_ERR_INVAL;
    rc = cm_crypto_b64_encode(rnd, n, CM_CRYPTO_B64_URL_NOPAD, &v, &vl);
    if (rc)
        return rc;
    rc = cm_crypto_pkce_challenge(v, vl, ch, sizeof ch);
    if (!rc && vl < CP_LOGIN_VERIFIER_MAX) {
        memcpy(verifier, v, vl + 1);
        memcpy(challenge, ch, sizeof ch);
    } else if (!rc) {
        rc = CM_ERR_LIMIT;
    }
    cm_crypto_memzero(v, vl);
    cm_free(v);
    return rc;
}

static int enc_append(struct cm_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = CM_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = cm_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = cm_buf_append(b, e, 3);
        }
    }
    return rc;
}

int cp_login_urlencode(const char *s, char **out)
{
    struct cm_buf b;
    int rc;
    char *r;
    if (!s || !out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, BODY_MAX);
    rc = *out ? cm_buf_append_str(&b, *out) : CM_OK;
    if (!rc)
        rc = enc_append(&b, s);
    if (!rc) {
        r = cm_buf_release(&b, NULL);
        if (!r) {
            rc = CM_ERR_NOMEM;
        } else {
            cm_free(*out);
            *out = r;
        }
    }
    cm_buf_cleanup(&b);
    return rc;
}

/* appends "[&]name=value" (value encoded) to a form / query string */
static int kv(struct cm_buf *b, const char *name, const char *value)
{
    int rc = b->len ? cm_buf_append(b, "&", 1) : CM_OK;
    if (!rc)
        rc = cm_buf_append_str(b, name);
    if (!rc)
        rc = cm_buf_append(b, "=", 1);
    if (!rc)
        rc = enc_append(b, value ? value : "");
    return rc;
}

/* a query starting after the URL's '?' */
static int url_finish(const char *base, struct cm_buf *q, char **out)
{
    struct cm_buf b;
    int rc;
    cm_buf_init(&b, BODY_MAX);
    rc = cm_buf_appendf(&b, "%s%s%s", base, strchr(base, '?') ? "&" : "?", q->data ? q->data : "");
    if (!rc) {
        *out = cm_buf_release(&b, NULL);
        rc = *out ? CM_OK : CM_ERR_NOMEM;
    }
    cm_buf_cleanup(&b);
    return rc;
}

int cp_login_authorize_url(enum cp_login_kind k, const char *auth_url, const char *redirect_uri,
                           const char *state, const char *challenge, char **out)
{
    struct cm_buf q;
    int rc = CM_OK;
    if (!auth_url || !*auth_url || !redirect_uri || !state || !out)
        return CM_ERR_INVAL;
    if ((k == CP_LOGIN_CODEX || k == CP_LOGIN_CLAUDE) && (!challenge || !*challenge))
        return CM_ERR_INVAL;
    cm_buf_init(&q, BODY_MAX);
    switch (k) {
    case CP_LOGIN_CODEX:
        rc = kv(&q, "client_id", CP_LOGIN_CODEX_CLIENT_ID);
        if (!rc)
            rc = kv(&q, "response_type", "code");
        if (!rc)
            rc = kv(&q, "redirect_uri", redirect_uri);
        if (!rc)
            rc = kv(&q, "scope", "openid email profile offline_access");
        if (!rc)
            rc = kv(&q, "state", state);
        if (!rc)
            rc = kv(&q, "code_challenge", challenge);
        if (!rc)
            rc = kv(&q, "code_challenge_method", "S256");
        if (!rc)
            rc = kv(&q, "prompt", "login");
        if (!rc)
            rc = kv(&q, "id_token_add_organizations", "true");
        if (!rc)
            rc = kv(&q, "codex_cli_simplified_flow", "true");
        break;
    case CP_LOGIN_CLAUDE:
        rc = kv(&q, "code", "true");
        if (!rc)
            rc = kv(&q, "client_id", CP_LOGIN_CLAUDE_CLIENT_ID);
        if (!rc)
            rc = kv(&q, "response_type", "code");
        if (!rc)
            rc = kv(&q, "redirect_uri", redirect_uri);
        if (!rc)
            rc = kv(&q, "scope",
                    "user:profile user:inference user:sessions:claude_code user:mcp_servers "
                    "user:file_upload");
        if (!rc)
            rc = kv(&q, "code_challenge", challenge);
        if (!rc)
            rc = kv(&q, "code_challenge_method", "S256");
        if (!rc)
            rc = kv(&q, "state", state);
        break;
    case CP_LOGIN_GEMINI:
        rc = kv(&q, "client_id", CP_LOGIN_GEMINI_CLIENT_ID);
        if (!rc)
            rc = kv(&q, "redirect_uri", redirect_uri);
        if (!rc)
            rc = kv(&q, "response_type", "code");
        if (!rc)
            rc = kv(&q, "scope",
                    "https://www.googleapis.com/auth/cloud-platform "
                    "https://www.googleapis.com/auth/userinfo.email "
                    "https://www.googleapis.com/auth/userinfo.profile");
        if (!rc)
            rc = kv(&q, "state", state);
        if (!rc)
            rc = kv(&q, "access_type", "offline");
        if (!rc)
            rc = kv(&q, "prompt", "consent");
        break;
    case CP_LOGIN_IFLOW:
        rc = kv(&q, "loginMethod", "phone");
        if (!rc)
            rc = kv(&q, "type", "phone");
        if (!rc)
            rc = kv(&q, "redirect", redirect_uri);
        if (!rc)
            rc = kv(&q, "state", state);
        if (!rc)
            rc = kv(&q, "client_id", CP_LOGIN_IFLOW_CLIENT_ID);
        break;
    default:
        rc = CM_ERR_INVAL;
    }
    if (!rc)
        rc = url_finish(auth_url, &q, out);
    cm_buf_cleanup(&q);
    return rc;
}

void cp_login_body_cleanup(struct cp_login_body *b)
{
    if (!b)
        return;
    if (b->data) {
        cm_crypto_memzero(b->data, b->len);
        cm_free(b->data);
    }
    memset(b, 0, sizeof *b);
}

static int body_from_buf(struct cm_buf *b, const char *ctype, struct cp_login_body *out)
{
    size_t len = 0;
    char *d = cm_buf_release(b, &len);
    if (!d)
        return CM_ERR_NOMEM;
    out->data = d;
    out->len = len;
    out->content_type = ctype;
    return CM_OK;
}

static int body_from_json(cJSON *o, struct cp_login_body *out)
{
    char *d = NULL;
    size_t len = 0;
    int rc = cm_json_print(o, &d, &len);
    if (rc)
        return rc;
    out->data = d;
    out->len = len;
    out->content_type = "application/json";
    return CM_OK;
}

static const char FORM[] = "application/x-www-form-urlencoded";

int cp_login_exchange_body(enum cp_login_kind k, const struct cp_login_exchange *x,
                           struct cp_login_body *out)
{
    struct cm_buf b;
    cJSON *o = NULL;
    int rc = CM_OK;
    if (!x || !out || !x->code || !*x->code || !x->redirect_uri)
        return CM_ERR_INVAL;
    memset(out, 0, sizeof *out);
    cm_buf_init(&b, BODY_MAX);
    switch (k) {
    case CP_LOGIN_CODEX:
    case CP_LOGIN_CODEX_DEVICE:
        if (!x->verifier) {
            rc = CM_ERR_INVAL;
            break;
        }
        rc = kv(&b, "grant_type", "authorization_code");
        if (!rc)
            rc = kv(&b, "client_id", CP_LOGIN_CODEX_CLIENT_ID);
        if (!rc)
            rc = kv(&b, "code", x->code);
        if (!rc)
            rc = kv(&b, "redirect_uri", x->redirect_uri);
        if (!rc)
            rc = kv(&b, "code_verifier", x->verifier);
        if (!rc)
            rc = body_from_buf(&b, FORM, out);
        break;
    case CP_LOGIN_CLAUDE:
        if (!x->verifier) {
            rc = CM_ERR_INVAL;
            break;
        }
        rc = cm_json_new_object(&o);
        if (!rc)
            rc = cm_json_set_string(o, "code", x->code);
        if (!rc)
            rc = cm_json_set_string(o, "state", x->state ? x->state : "");
        if (!rc)
            rc = cm_json_set_string(o, "grant_type", "authorization_code");
        if (!rc)
            rc = cm_json_set_string(o, "client_id", CP_LOGIN_CLAUDE_CLIENT_ID);
        if (!rc)
            rc = cm_json_set_string(o, "redirect_uri", x->redirect_uri);
        if (!rc)
            rc = cm_json_set_string(o, "code_verifier", x->verifier);
        if (!rc)
            rc = body_from_json(o, out);
        break;
    case CP_LOGIN_GEMINI:
    case CP_LOGIN_IFLOW:
        rc = kv(&b, "grant_type", "authorization_code");
        if (!rc)
            rc = kv(&b, "code", x->code);
        if (!rc)
            rc = kv(&b, "redirect_uri", x->redirect_uri);
        if (!rc)
            rc = kv(&b, "client_id",
                    k == CP_LOGIN_GEMINI ? CP_LOGIN_GEMINI_CLIENT_ID : CP_LOGIN_IFLOW_CLIENT_ID);
        if (!rc)
            rc = kv(&b, "client_secret",
                    k == CP_LOGIN_GEMINI ? CP_LOGIN_GEMINI_CLIENT_SECRET
                                         : CP_LOGIN_IFLOW_CLIENT_SECRET);
        if (!rc)
            rc = body_from_buf(&b, FORM, out);
        break;
    default:
        rc = CM_ERR_INVAL;
    }
    if (b.data)
        cm_crypto_memzero(b.data, b.len);
    cm_buf_cleanup(&b);
    if (o) {
        cJSON_Delete(o);
    }
    return rc;
}

int cp_login_iflow_basic(char **out)
{
    static const char cred[] = CP_LOGIN_IFLOW_CLIENT_ID ":" CP_LOGIN_IFLOW_CLIENT_SECRET;
    char *b64 = NULL;
    struct cm_buf b;
    int rc;
    if (!out)
        return CM_ERR_INVAL;
    rc = cm_crypto_b64_encode(cred, sizeof cred - 1, CM_CRYPTO_B64_STD, &b64, NULL);
    if (rc)
        return rc;
    cm_buf_init(&b, 1024);
    rc = cm_buf_appendf(&b, "Basic %s", b64);
    if (!rc) {
        *out = cm_buf_release(&b, NULL);
        rc = *out ? CM_OK : CM_ERR_NOMEM;
    }
    cm_buf_cleanup(&b);
    cm_free(b64);
    return rc;
}

/* ---- callbacks ---- */

void cp_login_callback_cleanup(struct cp_login_callback *cb)
{
    if (!cb)
        return;
    if (cb->code)
        cm_crypto_memzero(cb->code, strlen(cb->code));
    cm_free(cb->code);
    cm_free(cb->state);
    cm_free(cb->error);
    memset(cb, 0, sizeof *cb);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* percent-decodes @p n bytes at @p s ('+' = ' ' when @p plus) into a new string */
static char *decode(const char *s, size_t n, bool plus)
{
    char *r = cm_malloc(n + 1), *w = r;
    if (!r)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *w++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *w++ = plus && s[i] == '+' ? ' ' : s[i];
        }
    }
    *w = '\0';
    return r;
}

/* sets *dst to the decoded value unless already set (the first occurrence wins) */
static int take_param(char **dst, const char *v, size_t n)
{
    if (*dst)
        return CM_OK;
    *dst = decode(v, n, true);
    return *dst ? CM_OK : CM_ERR_NOMEM;
}

int cp_login_parse_query(const char *query, struct cp_login_callback *out)
{
    struct cp_login_callback r = {0};
    char *desc = NULL;
    const char *p = query;
    int rc = CM_OK;
    if (!query || !out)
        return CM_ERR_INVAL;
    while (*p && !rc) {
        const char *amp = strpbrk(p, "&#"), *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            size_t kl = (size_t)(eq - p), vl = (size_t)(end - eq - 1);
            if (kl == 4 && memcmp(p, "code", 4) == 0)
                rc = take_param(&r.code, eq + 1, vl);
            else if (kl == 5 && memcmp(p, "state", 5) == 0)
                rc = take_param(&r.state, eq + 1, vl);
            else if (kl == 5 && memcmp(p, "error", 5) == 0)
                rc = take_param(&r.error, eq + 1, vl);
            else if (kl == 17 && memcmp(p, "error_description", 17) == 0)
                rc = take_param(&desc, eq + 1, vl);
        }
        if (!amp || *amp == '#')
            break;
        p = amp + 1;
    }
    if (!rc && r.error && desc) {
        struct cm_buf b;
        cm_buf_init(&b, 4096);
        rc = cm_buf_appendf(&b, "%s: %s", r.error, desc);
        if (!rc) {
            char *e = cm_buf_release(&b, NULL);
            if (!e) {
                rc = CM_ERR_NOMEM;
            } else {
                cm_free(r.error);
                r.error = e;
            }
        }
        cm_buf_cleanup(&b);
    }
    cm_free(desc);
    if (!rc && ((r.code && !*r.code) || (!r.code && !r.error)))
        rc = CM_ERR_PARSE;
    if (rc) {
        cp_login_callback_cleanup(&r);
        return rc;
    }
    *out = r;
    return CM_OK;
}

int cp_login_parse_callback(const char *text, struct cp_login_callback *out)
{
    const char *s, *q, *hash;
    char *t = NULL;
    size_t n;
    int rc;
    if (!text || !out)
        return CM_ERR_INVAL;
    s = text;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (!n)
        return CM_ERR_PARSE;
    t = cm_strndup(s, n);
    if (!t)
        return CM_ERR_NOMEM;
    q = strchr(t, '?');
    if (q) {
        rc = cp_login_parse_query(q + 1, out);
    } else if (strstr(t, "code=") || strstr(t, "error=")) {
        rc = cp_login_parse_query(t, out);
    } else if ((hash = strchr(t, '#')) && hash != t && !strchr(t, '/') && !strchr(t, ' ')) {
        /* Claude's page shows "code#state" */
        struct cp_login_callback r = {0};
        r.code = cm_strndup(t, (size_t)(hash - t));
        r.state = cm_strdup(hash + 1);
        rc = r.code && r.state ? CM_OK : CM_ERR_NOMEM;
        if (rc)
            cp_login_callback_cleanup(&r);
        else
            *out = r;
    } else {
        rc = CM_ERR_PARSE;
    }
    cm_crypto_memzero(t, n);
    cm_free(t);
    return rc;
}

/* ---- JSON answers ---- */

static int parse_obj(const char *json, size_t len, cJSON **out)
{
    struct cm_json_parse_opts o = {
        .max_depth = 32, .max_size = ANSWER_MAX, .flags = CM_JSON_ALLOW_DUP_KEYS};
    cJSON *t = NULL;
    int rc;
    if (!json)
        return CM_ERR_PARSE;
    rc = cm_json_parse(json, len, &o, &t, NULL);
    if (rc)
        return rc == CM_ERR_NOMEM ? rc : CM_ERR_PARSE;
    if (!cJSON_IsObject(t)) {
        cJSON_Delete(t);
        return CM_ERR_PARSE;
    }
    *out = t;
    return CM_OK;
}

/* a non-empty string member (NULL otherwise) */
static const char *str_member(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring && *v->valuestring ? v->valuestring : NULL;
}

/* an integer member given as number or numeric string; @p def when absent / unreadable */
static int64_t int_member(const cJSON *o, const char *name, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    int64_t r;
    if (cJSON_IsNumber(v) && cm_json_to_int64(v, INT32_MIN, INT32_MAX, &r) == CM_OK)
        return r;
    if (cJSON_IsString(v) && v->valuestring && *v->valuestring) {
        char *end;
        long l = strtol(v->valuestring, &end, 10);
        if (!*end && l >= INT32_MIN && l <= INT32_MAX)
            return l;
    }
    return def;
}

static int dup_into(char **dst, const char *s)
{
    *dst = cm_strdup(s);
    return *dst ? CM_OK : CM_ERR_NOMEM;
}

void cp_login_device_cleanup(struct cp_login_device *d)
{
    if (!d)
        return;
    cm_free(d->device_code);
    cm_free(d->user_code);
    cm_free(d->verification_uri);
    memset(d, 0, sizeof *d);
}

int cp_login_codex_device_body(struct cp_login_body *out)
{
    cJSON *o = NULL;
    int rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "client_id", CP_LOGIN_CODEX_CLIENT_ID);
    if (!rc)
        rc = body_from_json(o, out);
    cJSON_Delete(o);
    return rc;
}

int cp_login_codex_device_parse(const char *json, size_t len, struct cp_login_device *out,
                                char *err, size_t errlen)
{
    struct cp_login_device d = {0};
    cJSON *t = NULL;
    const char *id, *uc;
    int rc = parse_obj(json, len, &t);
    if (rc) {
        set_err(err, errlen, "the device code answer is not a JSON object");
        return rc;
    }
    id = str_member(t, "device_auth_id");
    uc = str_member(t, "user_code");
    if (!uc)
        uc = str_member(t, "usercode");
    if (!id || !uc) {
        set_err(err, errlen, "the device code answer has no %s",
                !id ? "device_auth_id" : "user_code");
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    rc = dup_into(&d.device_code, id);
    if (!rc)
        rc = dup_into(&d.user_code, uc);
    d.interval_s = (int)int_member(t, "interval", 5);
    if (d.interval_s < 1)
        d.interval_s = 1;
    if (!rc) {
        *out = d;
        memset(&d, 0, sizeof d);
    }
out:
    cp_login_device_cleanup(&d);
    cJSON_Delete(t);
    return rc;
}

int cp_login_codex_poll_body(const struct cp_login_device *d, struct cp_login_body *out)
{
    cJSON *o = NULL;
    int rc;
    if (!d || !d->device_code || !d->user_code || !out)
        return CM_ERR_INVAL;
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "device_auth_id", d->device_code);
    if (!rc)
        rc = cm_json_set_string(o, "user_code", d->user_code);
    if (!rc)
        rc = body_from_json(o, out);
    cJSON_Delete(o);
    return rc;
}

int cp_login_codex_poll_parse(const char *json, size_t len, char **code, char **verifier)
{
    cJSON *t = NULL;
    const char *c, *v;
    char *cc = NULL, *vv = NULL;
    int rc = parse_obj(json, len, &t);
    if (rc)
        return rc;
    c = str_member(t, "authorization_code");
    v = str_member(t, "code_verifier");
    if (!c || !v) {
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    rc = dup_into(&cc, c);
    if (!rc)
        rc = dup_into(&vv, v);
    if (!rc) {
        *code = cc;
        *verifier = vv;
        cc = vv = NULL;
    }
out:
    cm_free(cc);
    cm_free(vv);
    cJSON_Delete(t);
    return rc;
}

int cp_login_qwen_device_body(const char *challenge, struct cp_login_body *out)
{
    struct cm_buf b;
    int rc;
    if (!challenge || !out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, BODY_MAX);
    rc = kv(&b, "client_id", CP_LOGIN_QWEN_CLIENT_ID);
    if (!rc)
        rc = kv(&b, "scope", "openid profile email model.completion");
    if (!rc)
        rc = kv(&b, "code_challenge", challenge);
    if (!rc)
        rc = kv(&b, "code_challenge_method", "S256");
    if (!rc)
        rc = body_from_buf(&b, FORM, out);
    cm_buf_cleanup(&b);
    return rc;
}

int cp_login_qwen_device_parse(const char *json, size_t len, struct cp_login_device *out, char *err,
                               size_t errlen)
{
    struct cp_login_device d = {0};
    cJSON *t = NULL;
    const char *dc, *uc, *uri;
    int rc = parse_obj(json, len, &t);
    if (rc) {
        set_err(err, errlen, "the device code answer is not a JSON object");
        return rc;
    }
    dc = str_member(t, "device_code");
    uc = str_member(t, "user_code");
    uri = str_member(t, "verification_uri_complete");
    if (!uri)
        uri = str_member(t, "verification_uri");
    if (!dc || !uc || !uri) {
        set_err(err, errlen, "the device code answer has no %s",
                !dc   ? "device_code"
                : !uc ? "user_code"
                      : "verification_uri");
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    rc = dup_into(&d.device_code, dc);
    if (!rc)
        rc = dup_into(&d.user_code, uc);
    if (!rc)
        rc = dup_into(&d.verification_uri, uri);
    d.interval_s = (int)int_member(t, "interval", 5);
    if (d.interval_s < 1)
        d.interval_s = 1;
    d.expires_in_s = (int)int_member(t, "expires_in", 0);
    if (!rc) {
        *out = d;
        memset(&d, 0, sizeof d);
    }
out:
    cp_login_device_cleanup(&d);
    cJSON_Delete(t);
    return rc;
}

int cp_login_qwen_poll_body(const struct cp_login_device *d, const char *verifier,
                            struct cp_login_body *out)
{
    struct cm_buf b;
    int rc;
    if (!d || !d->device_code || !verifier || !out)
        return CM_ERR_INVAL;
    cm_buf_init(&b, BODY_MAX);
    rc = kv(&b, "grant_type", "urn:ietf:params:oauth:grant-type:device_code");
    if (!rc)
        rc = kv(&b, "client_id", CP_LOGIN_QWEN_CLIENT_ID);
    if (!rc)
        rc = kv(&b, "device_code", d->device_code);
    if (!rc)
        rc = kv(&b, "code_verifier", verifier);
    if (!rc)
        rc = body_from_buf(&b, FORM, out);
    cm_buf_cleanup(&b);
    return rc;
}

enum cp_login_poll cp_login_qwen_poll_classify(long status, const char *json, size_t len)
{
    cJSON *t = NULL;
    const char *e;
    enum cp_login_poll r = CP_LOGIN_POLL_FAILED;
    if (parse_obj(json, len, &t) != CM_OK)
        return CP_LOGIN_POLL_FAILED;
    e = str_member(t, "error");
    if (status >= 200 && status < 300 && !e && str_member(t, "access_token"))
        r = CP_LOGIN_POLL_DONE;
    else if (e && strcmp(e, "authorization_pending") == 0)
        r = CP_LOGIN_POLL_PENDING;
    else if (e && strcmp(e, "slow_down") == 0)
        r = CP_LOGIN_POLL_SLOWDOWN;
    cJSON_Delete(t);
    return r;
}

int cp_login_slow_down(int cur_s)
{
    int n = cur_s + cur_s / 2;
    if (n <= cur_s)
        n = cur_s + 1;
    return n > 10 ? 10 : n;
}

/* ---- files ---- */

void cp_login_file_cleanup(struct cp_login_file *f)
{
    if (!f)
        return;
    if (f->json) {
        cm_crypto_memzero(f->json, f->len);
        cm_free(f->json);
    }
    cm_free(f->name);
    cm_free(f->email);
    memset(f, 0, sizeof *f);
}

/* a clock that always says @p now (for cp_authfile_apply_refresh) */
struct fixed_clock {
    struct cm_clock c;
    int64_t ms;
};

static int64_t fixed_ms(const struct cm_clock *c)
{
    return ((const struct fixed_clock *)c)->ms;
}

/* prints @p o (plus '\n') into f->json */
static int file_from_tree(cJSON *o, struct cp_login_file *f)
{
    char *d = NULL, *d2;
    size_t len = 0;
    int rc = cm_json_print(o, &d, &len);
    if (rc)
        return rc;
    d2 = cm_malloc(len + 2);
    if (!d2) {
        cm_crypto_memzero(d, len);
        cm_free(d);
        return CM_ERR_NOMEM;
    }
    memcpy(d2, d, len);
    d2[len] = '\n';
    d2[len + 1] = '\0';
    cm_crypto_memzero(d, len);
    cm_free(d);
    f->json = d2;
    f->len = len + 1;
    return CM_OK;
}

int cp_login_file_codex_claude(enum cp_login_kind k, const char *tok, size_t len, int64_t now,
                               struct cp_login_file *out, char *err, size_t errlen)
{
    const char *prov = k == CP_LOGIN_CLAUDE ? "claude" : "codex";
    struct fixed_clock clk = {.c = {fixed_ms, fixed_ms}, .ms = now * 1000};
    struct cp_authfile *af = NULL, *back = NULL;
    struct cp_authfile_err ae;
    struct cp_login_file f = {0};
    char skel[64];
    char *ser = NULL;
    size_t slen = 0;
    int rc;

    if (!out || (k != CP_LOGIN_CODEX && k != CP_LOGIN_CODEX_DEVICE && k != CP_LOGIN_CLAUDE))
        return CM_ERR_INVAL;
    snprintf(skel, sizeof skel, "{\"type\":\"%s\"}", prov);
    rc = cp_authfile_parse("login.json", skel, strlen(skel), &af, &ae);
    if (rc)
        goto out;
    rc = cp_authfile_apply_refresh(af, tok, len, &clk.c, &ae);
    if (rc) {
        set_err(err, errlen, "token answer: %s",
                ae.field[0] ? ae.msg : "not a usable token answer");
        goto out;
    }
    rc = cp_authfile_serialize(af, &ser, &slen);
    if (rc)
        goto out;
    /* read it back: the id_token's claims (email, account, plan) as the daemon will */
    rc = cp_authfile_parse("login.json", ser, slen, &back, &ae);
    if (rc) {
        set_err(err, errlen, "token answer: %s", ae.msg);
        goto out;
    }
    if (!back->email) {
        set_err(err, errlen, "token answer: no email (%s)",
                k == CP_LOGIN_CLAUDE ? "account.email_address" : "id_token claim email");
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    rc = cp_authfile_login_name(prov, back->email, back->account_id, back->plan_type, &f.name);
    if (!rc)
        rc = dup_into(&f.email, back->email);
    if (rc)
        goto out;
    f.json = ser;
    f.len = slen;
    ser = NULL;
    *out = f;
    memset(&f, 0, sizeof f);
out:
    if (rc && !(err && *err))
        set_err(err, errlen, "cannot build the %s auth file: %s", prov, cm_err_str(rc));
    if (ser) {
        cm_crypto_memzero(ser, slen);
        cm_free(ser);
    }
    cp_login_file_cleanup(&f);
    cp_authfile_free(af);
    cp_authfile_free(back);
    return rc;
}

/* access_token (required), refresh_token, expires_in (> 0 required) of a token answer */
struct tokans {
    cJSON *t;
    const char *access, *refresh, *type, *scope, *resource_url;
    int64_t expires_in;
};

static int read_tokans(const char *tok, size_t len, struct tokans *a, char *err, size_t errlen)
{
    int rc = parse_obj(tok, len, &a->t);
    if (rc) {
        set_err(err, errlen, "token answer: not a JSON object");
        return rc;
    }
    a->access = str_member(a->t, "access_token");
    a->refresh = str_member(a->t, "refresh_token");
    a->type = str_member(a->t, "token_type");
    a->scope = str_member(a->t, "scope");
    a->resource_url = str_member(a->t, "resource_url");
    a->expires_in = int_member(a->t, "expires_in", 0);
    if (!a->access) {
        set_err(err, errlen, "token answer: missing access token in response");
        return CM_ERR_NOTFOUND;
    }
    return CM_OK;
}

static int set_time(cJSON *o, const char *name, int64_t t)
{
    char ts[CP_AUTHFILE_TIME_SIZE];
    int rc = cp_authfile_format_time(t, ts);
    return rc ? rc : cm_json_set_string(o, name, ts);
}

/* "abc" or "" for NULL */
static const char *nz(const char *s)
{
    return s ? s : "";
}

static int finish_file(cJSON *o, const char *prov, const char *email, const char *qual,
                       struct cp_login_file *out, char *err, size_t errlen)
{
    struct cp_login_file f = {0};
    int rc = cp_authfile_login_name(prov, email, qual, NULL, &f.name);
    if (rc) {
        set_err(err, errlen, "cannot name the %s auth file (email \"%s\")", prov, email);
        return rc;
    }
    rc = dup_into(&f.email, email);
    if (!rc)
        rc = file_from_tree(o, &f);
    if (rc) {
        cp_login_file_cleanup(&f);
        return rc;
    }
    *out = f;
    return CM_OK;
}

int cp_login_file_gemini(const char *tok, size_t len, const char *email, const char *project_id,
                         int auto_project, int64_t now, struct cp_login_file *out, char *err,
                         size_t errlen)
{
    struct tokans a = {0};
    cJSON *o = NULL, *t = NULL, *sc = NULL;
    static const char *const scopes[] = {"https://www.googleapis.com/auth/cloud-platform",
                                         "https://www.googleapis.com/auth/userinfo.email",
                                         "https://www.googleapis.com/auth/userinfo.profile"};
    const char *proj = project_id ? project_id : "";
    int rc;
    if (!email || !*email || !out)
        return CM_ERR_INVAL;
    rc = read_tokans(tok, len, &a, err, errlen);
    if (rc)
        goto out;
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_new_object(&t);
    if (!rc)
        rc = cm_json_set_string(t, "access_token", a.access);
    if (!rc)
        rc = cm_json_set_string(t, "token_type", a.type ? a.type : "Bearer");
    if (!rc)
        rc = cm_json_set_string(t, "refresh_token", nz(a.refresh));
    if (!rc)
        rc = set_time(t, "expiry", now + (a.expires_in > 0 ? a.expires_in : 3600));
    if (!rc)
        rc = cm_json_set_string(t, "token_uri", CP_LOGIN_GEMINI_TOKEN_URI);
    if (!rc)
        rc = cm_json_set_string(t, "client_id", CP_LOGIN_GEMINI_CLIENT_ID);
    if (!rc)
        rc = cm_json_set_string(t, "client_secret", CP_LOGIN_GEMINI_CLIENT_SECRET);
    if (!rc)
        rc = cm_json_new_array(&sc);
    for (size_t i = 0; !rc && i < sizeof scopes / sizeof *scopes; i++)
        rc = cm_json_set_string(sc, NULL, scopes[i]);
    if (!rc)
        rc = cm_json_adopt(t, "scopes", &sc);
    if (!rc)
        rc = cm_json_set_string(t, "universe_domain", "googleapis.com");
    if (!rc)
        rc = cm_json_adopt(o, "token", &t);
    if (!rc)
        rc = cm_json_set_string(o, "project_id", proj);
    if (!rc)
        rc = cm_json_set_string(o, "email", email);
    if (!rc)
        rc = cm_json_set_bool(o, "auto", auto_project != 0);
    if (!rc)
        rc = cm_json_set_bool(o, "checked", *proj != '\0');
    if (!rc)
        rc = cm_json_set_string(o, "type", "gemini");
    if (!rc)
        rc = finish_file(o, "gemini", email, *proj ? proj : "none", out, err, errlen);
out:
    cJSON_Delete(sc);
    cJSON_Delete(t);
    cJSON_Delete(o);
    cJSON_Delete(a.t);
    return rc;
}

int cp_login_file_qwen(const char *tok, size_t len, const char *email, int64_t now,
                       struct cp_login_file *out, char *err, size_t errlen)
{
    struct tokans a = {0};
    cJSON *o = NULL;
    int rc;
    if (!email || !*email || !out)
        return CM_ERR_INVAL;
    rc = read_tokans(tok, len, &a, err, errlen);
    if (rc)
        goto out;
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "access_token", a.access);
    if (!rc)
        rc = cm_json_set_string(o, "refresh_token", nz(a.refresh));
    if (!rc)
        rc = set_time(o, "last_refresh", now);
    if (!rc)
        rc = cm_json_set_string(o, "resource_url", nz(a.resource_url));
    if (!rc)
        rc = cm_json_set_string(o, "email", email);
    if (!rc)
        rc = cm_json_set_string(o, "type", "qwen");
    if (!rc)
        rc = set_time(o, "expired", now + (a.expires_in > 0 ? a.expires_in : 3600));
    if (!rc)
        rc = finish_file(o, "qwen", email, NULL, out, err, errlen);
out:
    cJSON_Delete(o);
    cJSON_Delete(a.t);
    return rc;
}

int cp_login_file_iflow(const char *tok, size_t len, const char *info, size_t info_len, int64_t now,
                        struct cp_login_file *out, char *err, size_t errlen)
{
    struct tokans a = {0};
    cJSON *o = NULL, *it = NULL, *data;
    const char *key, *who;
    char secs[24];
    int rc;
    if (!out)
        return CM_ERR_INVAL;
    rc = read_tokans(tok, len, &a, err, errlen);
    if (rc) {
        set_err(err, errlen, "iflow token: missing access token in response");
        goto out;
    }
    rc = parse_obj(info, info_len, &it);
    if (rc) {
        set_err(err, errlen, "iflow user info: not a JSON object");
        goto out;
    }
    data = cJSON_GetObjectItemCaseSensitive(it, "data");
    key = str_member(data, "apiKey");
    who = str_member(data, "email");
    if (!who)
        who = str_member(data, "phone");
    if (!key || !who) {
        set_err(err, errlen, "iflow user info: %s", !key ? "empty api key" : "no email or phone");
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "access_token", a.access);
    if (!rc)
        rc = cm_json_set_string(o, "refresh_token", nz(a.refresh));
    if (!rc)
        rc = set_time(o, "last_refresh", now);
    if (!rc)
        rc = set_time(o, "expired", now + (a.expires_in > 0 ? a.expires_in : 3600));
    if (!rc)
        rc = cm_json_set_string(o, "api_key", key);
    if (!rc)
        rc = cm_json_set_string(o, "email", who);
    if (!rc)
        rc = cm_json_set_string(o, "token_type", nz(a.type));
    if (!rc)
        rc = cm_json_set_string(o, "scope", nz(a.scope));
    if (!rc)
        rc = cm_json_set_string(o, "type", "iflow");
    snprintf(secs, sizeof secs, "%lld", (long long)now);
    if (!rc)
        rc = finish_file(o, "iflow", who, secs, out, err, errlen);
out:
    cJSON_Delete(o);
    cJSON_Delete(it);
    cJSON_Delete(a.t);
    return rc;
}

int cp_login_iflow_bxauth(const char *cookie, char **out)
{
    const char *p = cookie;
    if (!cookie || !out)
        return CM_ERR_INVAL;
    while (p && *p) {
        size_t n;
        while (*p == ' ' || *p == ';' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        n = strcspn(p, ";\r\n");
        if (n > 7 && strncmp(p, "BXAuth=", 7) == 0) {
            struct cm_buf b;
            int rc;
            while (n > 7 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            cm_buf_init(&b, 16384);
            rc = cm_buf_append(&b, p, n);
            if (!rc)
                rc = cm_buf_append(&b, ";", 1);
            if (!rc) {
                *out = cm_buf_release(&b, NULL);
                rc = *out ? CM_OK : CM_ERR_NOMEM;
            }
            cm_buf_cleanup(&b);
            return rc == CM_ERR_LIMIT ? CM_ERR_INVAL : rc;
        }
        p += n;
    }
    return CM_ERR_NOTFOUND;
}

int cp_login_iflow_key_name(const char *json, size_t len, char **name)
{
    cJSON *t = NULL;
    const char *n;
    int rc = parse_obj(json, len, &t);
    if (rc)
        return rc;
    n = str_member(cJSON_GetObjectItemCaseSensitive(t, "data"), "name");
    rc = n ? dup_into(name, n) : CM_ERR_NOTFOUND;
    cJSON_Delete(t);
    return rc;
}

/* "YYYY-MM-DD HH:MM[:SS]" read as UTC */
static int parse_expire(const char *s, int64_t *out)
{
    char buf[CP_AUTHFILE_TIME_SIZE];
    size_t n = strlen(s);
    if (n == 16)
        snprintf(buf, sizeof buf, "%.10sT%.5s:00Z", s, s + 11);
    else if (n == 19)
        snprintf(buf, sizeof buf, "%.10sT%.8sZ", s, s + 11);
    else
        return cp_authfile_parse_time(s, out);
    return cp_authfile_parse_time(buf, out);
}

int cp_login_file_iflow_cookie(const char *json, size_t len, const char *bxauth, int64_t now,
                               struct cp_login_file *out, char *err, size_t errlen)
{
    cJSON *t = NULL, *o = NULL, *data;
    const char *key, *name, *exp;
    int64_t e = 0;
    char secs[24];
    int rc;
    if (!bxauth || !out)
        return CM_ERR_INVAL;
    rc = parse_obj(json, len, &t);
    if (rc) {
        set_err(err, errlen, "iflow api key answer: not a JSON object");
        return rc;
    }
    data = cJSON_GetObjectItemCaseSensitive(t, "data");
    key = str_member(data, "apiKey");
    name = str_member(data, "name");
    exp = str_member(data, "expireTime");
    if (!key || !name) {
        set_err(err, errlen, "iflow api key answer: no %s", !key ? "apiKey" : "name");
        rc = CM_ERR_NOTFOUND;
        goto out;
    }
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "api_key", key);
    if (!rc)
        rc = cm_json_set_string(o, "cookie", bxauth);
    if (!rc)
        rc = cm_json_set_string(o, "email", name);
    if (!rc && exp && parse_expire(exp, &e) == CM_OK)
        rc = set_time(o, "expired", e);
    if (!rc)
        rc = set_time(o, "last_refresh", now);
    if (!rc)
        rc = cm_json_set_string(o, "type", "iflow");
    snprintf(secs, sizeof secs, "%lld", (long long)now);
    if (!rc)
        rc = finish_file(o, "iflow", name, secs, out, err, errlen);
out:
    cJSON_Delete(o);
    cJSON_Delete(t);
    return rc;
}

/* ---- Gemini Code Assist setup ---- */

static int add_metadata(cJSON *o)
{
    cJSON *m = NULL;
    int rc = cm_json_new_object(&m);
    if (!rc)
        rc = cm_json_set_string(m, "ideType", "IDE_UNSPECIFIED");
    if (!rc)
        rc = cm_json_set_string(m, "platform", "PLATFORM_UNSPECIFIED");
    if (!rc)
        rc = cm_json_set_string(m, "pluginType", "GEMINI");
    if (!rc)
        rc = cm_json_adopt(o, "metadata", &m);
    cJSON_Delete(m);
    return rc;
}

int cp_login_gemini_load_body(const char *project, struct cp_login_body *out)
{
    cJSON *o = NULL;
    int rc = cm_json_new_object(&o);
    if (!rc)
        rc = add_metadata(o);
    if (!rc && project && *project)
        rc = cm_json_set_string(o, "cloudaicompanionProject", project);
    if (!rc)
        rc = body_from_json(o, out);
    cJSON_Delete(o);
    return rc;
}

/* cloudaicompanionProject as a string or {"id"} */
static const char *project_of(const cJSON *o)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "cloudaicompanionProject");
    if (cJSON_IsString(p) && p->valuestring && *p->valuestring)
        return p->valuestring;
    return cJSON_IsObject(p) ? str_member(p, "id") : NULL;
}

int cp_login_gemini_load_parse(const char *json, size_t len, char **tier, char **project)
{
    cJSON *t = NULL, *tiers, *it;
    const char *tid = "legacy-tier", *p;
    char *tt = NULL, *pp = NULL;
    int rc = parse_obj(json, len, &t);
    if (rc)
        return rc;
    tiers = cJSON_GetObjectItemCaseSensitive(t, "allowedTiers");
    cJSON_ArrayForEach(it, tiers)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "isDefault")) &&
            str_member(it, "id")) {
            tid = str_member(it, "id");
            break;
        }
    }
    p = project_of(t);
    rc = dup_into(&tt, tid);
    if (!rc && p)
        rc = dup_into(&pp, p);
    if (!rc) {
        *tier = tt;
        *project = pp;
        tt = pp = NULL;
    }
    cm_free(tt);
    cm_free(pp);
    cJSON_Delete(t);
    return rc;
}

int cp_login_gemini_onboard_body(const char *tier, const char *project, struct cp_login_body *out)
{
    cJSON *o = NULL;
    int rc;
    if (!tier || !out)
        return CM_ERR_INVAL;
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "tierId", tier);
    if (!rc)
        rc = add_metadata(o);
    if (!rc && project && *project)
        rc = cm_json_set_string(o, "cloudaicompanionProject", project);
    if (!rc)
        rc = body_from_json(o, out);
    cJSON_Delete(o);
    return rc;
}

int cp_login_gemini_onboard_parse(const char *json, size_t len, int *done, char **project)
{
    cJSON *t = NULL;
    const char *p;
    int rc = parse_obj(json, len, &t);
    if (rc)
        return rc;
    *done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "done"));
    *project = NULL;
    p = *done ? project_of(cJSON_GetObjectItemCaseSensitive(t, "response")) : NULL;
    rc = p ? dup_into(project, p) : CM_OK;
    cJSON_Delete(t);
    return rc;
}

int cp_login_userinfo_email(const char *json, size_t len, char **email)
{
    cJSON *t = NULL;
    const char *e;
    int rc = parse_obj(json, len, &t);
    if (rc)
        return rc;
    e = str_member(t, "email");
    rc = e ? dup_into(email, e) : CM_ERR_NOTFOUND;
    cJSON_Delete(t);
    return rc;
}
