/* SPDX-License-Identifier: MIT */
/*
 * flow.c - the login flows' I/O (see flow.h). A command-line browser login runs a tiny
 * cm_httpd on 127.0.0.1:<port> for the provider's callback path while the main thread
 * polls the input fd every 200 ms for a pasted redirect URL; whichever arrives first
 * wins. HTTP calls go through login/http.h (blocking over a private cm_httpc).
 */
#include "login/flow.h"

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/httpc.h"
#include "cm/httpd.h"
#include "login/http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define UA_BROWSER                                                                                 \
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "       \
    "Gecko) Chrome/91.0.4472.124 Safari/537.36"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen || *err) /* the first (innermost) reason wins */
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sleeps @p ms in slices of 100 ms; CM_ERR_CLOSED when *stop becomes non-zero */
static int nap(int64_t ms, const volatile int *stop)
{
    while (ms > 0) {
        struct timespec ts = {0, (long)(ms > 100 ? 100 : ms) * 1000000L};
        if (stop && *stop)
            return CM_ERR_CLOSED;
        nanosleep(&ts, NULL);
        ms -= 100;
    }
    return stop && *stop ? CM_ERR_CLOSED : CM_OK;
}

static const char *url_of(const struct cp_config *cfg, enum cp_login_kind k, enum cp_url which)
{
    const char *u = cp_config_url(cfg, (enum cp_provider)cp_login_kind_provider(k), which);
    return u && *u ? u : NULL;
}

/* POST/GET with an "Accept: application/json" and the given extra header lines */
static int call(struct cm_httpc *hc, const char *method, const char *url,
                const struct cp_login_body *body, const char *const *extra, size_t n_extra,
                struct cp_login_http_resp *resp, char *err, size_t errlen)
{
    const char *h[12];
    char ct[96];
    size_t n = 0;
    int rc;
    h[n++] = "Accept: application/json";
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s", body->content_type);
        h[n++] = ct;
    }
    for (size_t i = 0; i < n_extra && n < sizeof h / sizeof *h; i++)
        h[n++] = extra[i];
    rc = cp_login_http(hc, method, url, h, n, body ? body->data : NULL, body ? body->len : 0, 30000,
                       resp, err, errlen);
    if (rc)
        set_err(err, errlen, "%s failed", method);
    return rc == CM_ERR_TIMEOUT ? rc : rc ? CM_ERR_UPSTREAM : CM_OK;
}

/* a short, token-free description of an error answer: the status and "error" if any */
static void answer_err(char *err, size_t errlen, const char *what,
                       const struct cp_login_http_resp *r)
{
    char e[96] = "";
    const char *p = r->body ? strstr(r->body, "\"error\"") : NULL;
    if (p) {
        /* "error":"invalid_grant" -> invalid_grant; anything stranger is not echoed */
        const char *q = strchr(p + 7, '"');
        size_t n = q ? strspn(q + 1, "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ") : 0;
        if (q && n && n < sizeof e && q[1 + n] == '"')
            snprintf(e, sizeof e, " (%.*s)", (int)n, q + 1);
    }
    set_err(err, errlen, "%s: HTTP %ld%s", what, r->status, e);
}

static int write_file(const struct cp_config *cfg, const struct cp_login_file *f,
                      char path[CP_LOGIN_PATH_MAX], char *err, size_t errlen)
{
    char p[CP_LOGIN_PATH_MAX];
    int n, rc;
    if (mkdir(cfg->auth_dir, 0700) != 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create auth-dir %s: %s", cfg->auth_dir, strerror(errno));
        return CM_ERR_IO;
    }
    n = snprintf(p, sizeof p, "%s/%s", cfg->auth_dir, f->name);
    if (n < 0 || (size_t)n >= sizeof p) {
        set_err(err, errlen, "auth file path too long");
        return CM_ERR_LIMIT;
    }
    rc = cp_authfile_write(p, f->json, f->len);
    if (rc) {
        set_err(err, errlen, "cannot write %s: %s", p, cm_err_str(rc));
        return rc;
    }
    if (path)
        snprintf(path, CP_LOGIN_PATH_MAX, "%s", p);
    return CM_OK;
}

int cp_login_begin(const struct cp_config *cfg, enum cp_login_kind kind, uint16_t port,
                   struct cp_login_pending *p, char **url)
{
    unsigned char rnd[96], st[16];
    char challenge[CM_CRYPTO_PKCE_SIZE] = "";
    struct cp_login_pending r = {.kind = kind};
    const char *auth;
    int rc;

    if (!cfg || !p || !url || !cp_login_callback_path(kind))
        return CM_ERR_INVAL;
    auth = url_of(cfg, kind, CP_URL_AUTH);
    if (!auth)
        return CM_ERR_INVAL;
    rc = cm_crypto_random_bytes(st, sizeof st);
    if (!rc)
        rc = cm_crypto_hex_encode(st, sizeof st, r.state, sizeof r.state);
    if (!rc && (kind == CP_LOGIN_CODEX || kind == CP_LOGIN_CLAUDE)) {
        size_t n = kind == CP_LOGIN_CODEX ? 96 : 32; /* 128 / 43 characters */
        rc = cm_crypto_random_bytes(rnd, n);
        if (!rc)
            rc = cp_login_pkce(rnd, n, r.verifier, challenge);
    }
    if (!rc)
        rc = cp_login_redirect_uri(kind, port, r.redirect_uri, sizeof r.redirect_uri);
    if (!rc)
        rc = cp_login_authorize_url(kind, auth, r.redirect_uri, r.state, challenge, url);
    cm_crypto_memzero(rnd, sizeof rnd);
    if (!rc)
        *p = r;
    cm_crypto_memzero(&r, sizeof r);
    return rc;
}

/* Gemini: the Code Assist project (spec 3.3(b)): loadCodeAssist, then onboardUser polled
 * every 2 s until done (30 s budget). *project gets a new string; NULL when none. */
static int gemini_project(const struct cp_config *cfg, struct cm_httpc *hc, const char *bearer,
                          char **project, char *err, size_t errlen)
{
    const char *base = url_of(cfg, CP_LOGIN_GEMINI, CP_URL_BASE);
    const char *h[] = {bearer, "User-Agent: GeminiCLI/0.31.0/unknown (linux; x64)"};
    struct cp_login_body b = {0};
    struct cp_login_http_resp r = {0};
    char url[2048], *tier = NULL, *proj = NULL;
    int64_t end = mono_ms() + 30000;
    int rc, done = 0;

    *project = NULL;
    if (!base)
        return CM_OK;
    snprintf(url, sizeof url, "%s/v1internal:loadCodeAssist", base);
    rc = cp_login_gemini_load_body(NULL, &b);
    if (!rc)
        rc = call(hc, "POST", url, &b, h, 2, &r, err, errlen);
    cp_login_body_cleanup(&b);
    if (rc)
        goto out;
    if (r.status / 100 != 2) {
        answer_err(err, errlen, "loadCodeAssist", &r);
        rc = CM_ERR_UPSTREAM;
        goto out;
    }
    rc = cp_login_gemini_load_parse(r.body, r.len, &tier, &proj);
    cp_login_http_resp_cleanup(&r);
    if (rc) {
        set_err(err, errlen, "loadCodeAssist: unreadable answer");
        goto out;
    }
    snprintf(url, sizeof url, "%s/v1internal:onboardUser", base);
    while (!done) {
        char *p2 = NULL;
        rc = cp_login_gemini_onboard_body(tier, proj, &b);
        if (!rc)
            rc = call(hc, "POST", url, &b, h, 2, &r, err, errlen);
        cp_login_body_cleanup(&b);
        if (rc)
            goto out;
        if (r.status / 100 != 2) {
            answer_err(err, errlen, "onboardUser", &r);
            rc = CM_ERR_UPSTREAM;
            goto out;
        }
        rc = cp_login_gemini_onboard_parse(r.body, r.len, &done, &p2);
        cp_login_http_resp_cleanup(&r);
        if (rc)
            goto out;
        if (done && p2) {
            cm_free(proj);
            proj = p2;
        }
        if (!done && mono_ms() + 2000 > end) {
            set_err(err, errlen, "onboardUser: not done after 30 s");
            rc = CM_ERR_TIMEOUT;
            goto out;
        }
        if (!done)
            nap(2000, NULL);
    }
    *project = proj;
    proj = NULL;
out:
    cp_login_http_resp_cleanup(&r);
    cm_free(tier);
    cm_free(proj);
    return rc;
}

int cp_login_finish(const struct cp_config *cfg, struct cm_httpc *hc,
                    const struct cp_login_pending *p, const char *code, const char *project_id,
                    char path[CP_LOGIN_PATH_MAX], char *email, size_t email_len, char *err,
                    size_t errlen)
{
    enum cp_login_kind k = p ? p->kind : CP_LOGIN__COUNT;
    struct cp_login_exchange x = {.code = code};
    struct cp_login_body b = {0};
    struct cp_login_http_resp tok = {0}, r = {0};
    struct cp_login_file f = {0};
    const char *tok_url = url_of(cfg, k, CP_URL_TOKEN);
    char *basic = NULL, *em = NULL, *proj = NULL, *bearer = NULL, *url = NULL;
    const char *extra[1];
    size_t n_extra = 0;
    int rc;

    if (!cfg || !hc || !p || !code || !*code || !tok_url) {
        set_err(err, errlen, "login: bad arguments");
        return CM_ERR_INVAL;
    }
    x.state = p->state;
    x.redirect_uri = k == CP_LOGIN_CODEX_DEVICE ? CP_LOGIN_CODEX_DEVICE_REDIRECT : p->redirect_uri;
    x.verifier = p->verifier;
    rc = cp_login_exchange_body(k, &x, &b);
    if (!rc && k == CP_LOGIN_IFLOW) {
        struct cm_buf hb;
        rc = cp_login_iflow_basic(&basic);
        cm_buf_init(&hb, 1024);
        if (!rc)
            rc = cm_buf_appendf(&hb, "Authorization: %s", basic);
        cm_free(basic);
        basic = rc ? NULL : cm_buf_release(&hb, NULL);
        cm_buf_cleanup(&hb);
        if (!rc && !basic)
            rc = CM_ERR_NOMEM;
        extra[n_extra++] = basic;
    }
    if (rc) {
        set_err(err, errlen, "login: cannot build the token request: %s", cm_err_str(rc));
        goto out;
    }
    rc = call(hc, "POST", tok_url, &b, extra, n_extra, &tok, err, errlen);
    if (rc)
        goto out;
    if (tok.status / 100 != 2) {
        answer_err(err, errlen, "token exchange", &tok);
        rc = CM_ERR_AUTH;
        goto out;
    }
    switch (k) {
    case CP_LOGIN_CODEX:
    case CP_LOGIN_CODEX_DEVICE:
    case CP_LOGIN_CLAUDE:
        rc = cp_login_file_codex_claude(k, tok.body, tok.len, now_s(), &f, err, errlen);
        break;
    case CP_LOGIN_GEMINI: {
        struct cm_json_parse_opts po = {.max_size = CP_LOGIN_HTTP_MAX};
        cJSON *t = NULL;
        const char *at = NULL;
        const char *uh[1];
        struct cm_buf hb;
        cm_buf_init(&hb, 16384);
        if (cm_json_parse(tok.body, tok.len, &po, &t, NULL) == CM_OK)
            cm_json_get_string(t, "access_token", &at, NULL);
        rc = at && *at ? cm_buf_appendf(&hb, "Authorization: Bearer %s", at) : CM_ERR_NOTFOUND;
        cJSON_Delete(t);
        bearer = rc ? NULL : cm_buf_release(&hb, NULL);
        cm_buf_cleanup(&hb);
        if (rc) {
            set_err(err, errlen, "token answer: missing access token");
            break;
        }
        if (!bearer) {
            rc = CM_ERR_NOMEM;
            break;
        }
        uh[0] = bearer;
        rc = url_of(cfg, k, CP_URL_USERINFO) ? CM_OK : CM_ERR_INVAL;
        if (!rc)
            rc = call(hc, "GET", url_of(cfg, k, CP_URL_USERINFO), NULL, uh, 1, &r, err, errlen);
        if (!rc && r.status / 100 != 2) {
            answer_err(err, errlen, "userinfo", &r);
            rc = CM_ERR_UPSTREAM;
        }
        if (!rc && cp_login_userinfo_email(r.body, r.len, &em) != CM_OK) {
            set_err(err, errlen, "userinfo: no email");
            rc = CM_ERR_UPSTREAM;
        }
        if (rc)
            break;
        if (project_id && *project_id) {
            rc = cp_login_file_gemini(tok.body, tok.len, em, project_id, 0, now_s(), &f, err,
                                      errlen);
        } else {
            rc = gemini_project(cfg, hc, bearer, &proj, err, errlen);
            if (!rc)
                rc = cp_login_file_gemini(tok.body, tok.len, em, proj, 1, now_s(), &f, err, errlen);
        }
        break;
    }
    case CP_LOGIN_IFLOW: {
        struct cm_json_parse_opts po = {.max_size = CP_LOGIN_HTTP_MAX};
        const char *info = url_of(cfg, k, CP_URL_USERINFO), *at = NULL;
        cJSON *t = NULL;
        if (cm_json_parse(tok.body, tok.len, &po, &t, NULL) == CM_OK)
            cm_json_get_string(t, "access_token", &at, NULL);
        if (!at || !*at || !info) {
            cJSON_Delete(t);
            set_err(err, errlen, "iflow token: missing access token in response");
            rc = CM_ERR_UPSTREAM;
            break;
        }
        {
            struct cm_buf ub; /* <userinfo-url>?accessToken=<token, encoded> */
            cm_buf_init(&ub, 16384);
            rc = cm_buf_appendf(&ub, "%s%saccessToken=", info, strchr(info, '?') ? "&" : "?");
            url = rc ? NULL : cm_buf_release(&ub, NULL);
            cm_buf_cleanup(&ub);
            if (!rc)
                rc = url ? cp_login_urlencode(at, &url) : CM_ERR_NOMEM;
        }
        cJSON_Delete(t);
        if (!rc)
            rc = call(hc, "GET", url, NULL, NULL, 0, &r, err, errlen);
        if (!rc && r.status / 100 != 2) {
            answer_err(err, errlen, "iflow user info", &r);
            rc = CM_ERR_UPSTREAM;
        }
        if (!rc)
            rc = cp_login_file_iflow(tok.body, tok.len, r.body, r.len, now_s(), &f, err, errlen);
        break;
    }
    default:
        rc = CM_ERR_INVAL;
    }
    if (rc)
        goto out;
    rc = write_file(cfg, &f, path, err, errlen);
    if (!rc && email && email_len)
        snprintf(email, email_len, "%s", f.email);
out:
    cp_login_body_cleanup(&b);
    cp_login_http_resp_cleanup(&tok);
    cp_login_http_resp_cleanup(&r);
    cp_login_file_cleanup(&f);
    if (basic) {
        cm_crypto_memzero(basic, strlen(basic));
        cm_free(basic);
    }
    if (bearer) {
        cm_crypto_memzero(bearer, strlen(bearer));
        cm_free(bearer);
    }
    if (url) {
        cm_crypto_memzero(url, strlen(url));
        cm_free(url);
    }
    cm_free(em);
    cm_free(proj);
    if (rc)
        set_err(err, errlen, "login failed: %s", cm_err_str(rc));
    return rc;
}

/* ---- device flows ---- */

int cp_login_qwen_start(const struct cp_config *cfg, struct cm_httpc *hc, struct cp_login_device *d,
                        char verifier[CP_LOGIN_VERIFIER_MAX], char *err, size_t errlen)
{
    unsigned char rnd[32];
    char challenge[CM_CRYPTO_PKCE_SIZE];
    struct cp_login_body b = {0};
    struct cp_login_http_resp r = {0};
    const char *u = url_of(cfg, CP_LOGIN_QWEN, CP_URL_DEVICE);
    int rc;
    if (!u) {
        set_err(err, errlen, "qwen: no device-url configured");
        return CM_ERR_INVAL;
    }
    rc = cm_crypto_random_bytes(rnd, sizeof rnd);
    if (!rc)
        rc = cp_login_pkce(rnd, sizeof rnd, verifier, challenge);
    cm_crypto_memzero(rnd, sizeof rnd);
    if (!rc)
        rc = cp_login_qwen_device_body(challenge, &b);
    if (!rc)
        rc = call(hc, "POST", u, &b, NULL, 0, &r, err, errlen);
    if (!rc && r.status / 100 != 2) {
        answer_err(err, errlen, "qwen device code", &r);
        rc = CM_ERR_UPSTREAM;
    }
    if (!rc)
        rc = cp_login_qwen_device_parse(r.body, r.len, d, err, errlen);
    cp_login_body_cleanup(&b);
    cp_login_http_resp_cleanup(&r);
    return rc;
}

int cp_login_qwen_poll(const struct cp_config *cfg, struct cm_httpc *hc,
                       const struct cp_login_device *d, const char *verifier, const char *email,
                       int timeout_s, const volatile int *stop, char path[CP_LOGIN_PATH_MAX],
                       char *err, size_t errlen)
{
    const char *u = url_of(cfg, CP_LOGIN_QWEN, CP_URL_TOKEN);
    int64_t end = mono_ms() + (int64_t)(timeout_s > 0 ? timeout_s : 300) * 1000;
    int interval = d->interval_s > 0 ? d->interval_s : 5, rc = CM_OK;
    struct cp_login_file f = {0};

    if (!u || !email || !*email) {
        set_err(err, errlen, "qwen: no token-url or email");
        return CM_ERR_INVAL;
    }
    for (;;) {
        struct cp_login_body b = {0};
        struct cp_login_http_resp r = {0};
        enum cp_login_poll pr;
        rc = nap((int64_t)interval * 1000, stop);
        if (rc)
            break;
        rc = cp_login_qwen_poll_body(d, verifier, &b);
        if (!rc)
            rc = call(hc, "POST", u, &b, NULL, 0, &r, err, errlen);
        cp_login_body_cleanup(&b);
        if (rc)
            break;
        pr = cp_login_qwen_poll_classify(r.status, r.body, r.len);
        if (pr == CP_LOGIN_POLL_DONE)
            rc = cp_login_file_qwen(r.body, r.len, email, now_s(), &f, err, errlen);
        else if (pr == CP_LOGIN_POLL_FAILED)
            answer_err(err, errlen, "qwen device login refused", &r);
        cp_login_http_resp_cleanup(&r);
        if (pr == CP_LOGIN_POLL_DONE)
            break;
        if (pr == CP_LOGIN_POLL_FAILED) {
            rc = CM_ERR_AUTH;
            break;
        }
        if (pr == CP_LOGIN_POLL_SLOWDOWN)
            interval = cp_login_slow_down(interval);
        if (mono_ms() + (int64_t)interval * 1000 > end) {
            set_err(err, errlen, "qwen: timed out waiting for the device authorization");
            rc = CM_ERR_TIMEOUT;
            break;
        }
    }
    if (!rc)
        rc = write_file(cfg, &f, path, err, errlen);
    cp_login_file_cleanup(&f);
    return rc;
}

/* Codex device flow (spec 3.1(b)); prints the page and the code to @p out */
static int codex_device(const struct cp_config *cfg, struct cm_httpc *hc, FILE *out,
                        char path[CP_LOGIN_PATH_MAX], char *email, size_t email_len, char *err,
                        size_t errlen)
{
    const char *u = url_of(cfg, CP_LOGIN_CODEX, CP_URL_DEVICE);
    const char *pu = url_of(cfg, CP_LOGIN_CODEX, CP_URL_DEVICE_TOKEN);
    const char *page = url_of(cfg, CP_LOGIN_CODEX, CP_URL_DEVICE_PAGE);
    struct cp_login_device d = {0};
    struct cp_login_body b = {0};
    struct cp_login_http_resp r = {0};
    struct cp_login_pending p = {.kind = CP_LOGIN_CODEX_DEVICE};
    char *code = NULL, *ver = NULL;
    int64_t end = mono_ms() + 15 * 60 * 1000;
    int rc;

    if (!u || !pu) {
        set_err(err, errlen, "codex: no device-url / device-token-url configured");
        return CM_ERR_INVAL;
    }
    rc = cp_login_codex_device_body(&b);
    if (!rc)
        rc = call(hc, "POST", u, &b, NULL, 0, &r, err, errlen);
    cp_login_body_cleanup(&b);
    if (!rc && r.status / 100 != 2) {
        answer_err(err, errlen, "codex device code", &r);
        rc = CM_ERR_UPSTREAM;
    }
    if (!rc)
        rc = cp_login_codex_device_parse(r.body, r.len, &d, err, errlen);
    cp_login_http_resp_cleanup(&r);
    if (rc)
        goto out;
    fprintf(out, "Open %s and enter the code: %s\n", page ? page : "the device page", d.user_code);
    fflush(out);
    for (;;) {
        nap((int64_t)d.interval_s * 1000, NULL);
        rc = cp_login_codex_poll_body(&d, &b);
        if (!rc)
            rc = call(hc, "POST", pu, &b, NULL, 0, &r, err, errlen);
        cp_login_body_cleanup(&b);
        if (rc)
            goto out;
        if (r.status / 100 == 2)
            break;
        if (r.status != 403 && r.status != 404) {
            answer_err(err, errlen, "codex device login", &r);
            rc = CM_ERR_AUTH;
            goto out;
        }
        cp_login_http_resp_cleanup(&r);
        if (mono_ms() > end) {
            set_err(err, errlen, "codex: device login not completed within 15 minutes");
            rc = CM_ERR_TIMEOUT;
            goto out;
        }
    }
    rc = cp_login_codex_poll_parse(r.body, r.len, &code, &ver);
    if (rc) {
        set_err(err, errlen, "codex device answer: no authorization_code / code_verifier");
        goto out;
    }
    if (strlen(ver) >= sizeof p.verifier) {
        set_err(err, errlen, "codex device answer: code_verifier too long");
        rc = CM_ERR_UPSTREAM;
        goto out;
    }
    snprintf(p.verifier, sizeof p.verifier, "%s", ver);
    snprintf(p.redirect_uri, sizeof p.redirect_uri, "%s", CP_LOGIN_CODEX_DEVICE_REDIRECT);
    rc = cp_login_finish(cfg, hc, &p, code, NULL, path, email, email_len, err, errlen);
out:
    cp_login_http_resp_cleanup(&r);
    cp_login_device_cleanup(&d);
    if (code) {
        cm_crypto_memzero(code, strlen(code));
        cm_free(code);
    }
    if (ver) {
        cm_crypto_memzero(ver, strlen(ver));
        cm_free(ver);
    }
    cm_crypto_memzero(&p, sizeof p);
    return rc;
}

int cp_login_iflow_cookie(const struct cp_config *cfg, struct cm_httpc *hc, const char *cookie,
                          char path[CP_LOGIN_PATH_MAX], char *email, size_t email_len, char *err,
                          size_t errlen)
{
    const char *u = url_of(cfg, CP_LOGIN_IFLOW_COOKIE, CP_URL_APIKEY);
    char *bx = NULL, *ch = NULL, *name = NULL;
    struct cp_login_http_resp r = {0};
    struct cp_login_body b = {0};
    struct cp_login_file f = {0};
    struct cm_buf hb;
    cJSON *o = NULL;
    int rc;

    cm_buf_init(&hb, 16384);
    if (!u || !cookie) {
        set_err(err, errlen, "iflow: no apikey-url or cookie");
        rc = CM_ERR_INVAL;
        goto out;
    }
    rc = cp_login_iflow_bxauth(cookie, &bx);
    if (rc) {
        set_err(err, errlen, "iflow: the cookie has no BXAuth part");
        goto out;
    }
    rc = cm_buf_appendf(&hb, "Cookie: %s", bx);
    ch = rc ? NULL : cm_buf_release(&hb, NULL);
    if (!rc && !ch)
        rc = CM_ERR_NOMEM;
    if (rc)
        goto out;
    {
        const char *h[] = {ch, UA_BROWSER};
        rc = call(hc, "GET", u, NULL, h, 2, &r, err, errlen);
    }
    if (!rc && r.status / 100 != 2) {
        answer_err(err, errlen, "iflow api key", &r);
        rc = CM_ERR_AUTH;
    }
    if (!rc && cp_login_iflow_key_name(r.body, r.len, &name) != CM_OK) {
        set_err(err, errlen, "iflow api key: no key name in the answer (cookie expired?)");
        rc = CM_ERR_AUTH;
    }
    cp_login_http_resp_cleanup(&r);
    if (rc)
        goto out;
    rc = cm_json_new_object(&o);
    if (!rc)
        rc = cm_json_set_string(o, "name", name);
    if (!rc) {
        char *d = NULL;
        rc = cm_json_print(o, &d, &b.len);
        b.data = d;
        b.content_type = "application/json";
    }
    if (!rc) {
        const char *h[] = {ch, UA_BROWSER, "Origin: https://platform.iflow.cn",
                           "Referer: https://platform.iflow.cn/"};
        rc = call(hc, "POST", u, &b, h, 4, &r, err, errlen);
    }
    if (!rc && r.status / 100 != 2) {
        answer_err(err, errlen, "iflow api key refresh", &r);
        rc = CM_ERR_AUTH;
    }
    if (!rc)
        rc = cp_login_file_iflow_cookie(r.body, r.len, bx, now_s(), &f, err, errlen);
    if (!rc)
        rc = write_file(cfg, &f, path, err, errlen);
    if (!rc && email && email_len)
        snprintf(email, email_len, "%s", f.email);
out:
    cJSON_Delete(o);
    cm_buf_cleanup(&hb);
    cp_login_body_cleanup(&b);
    cp_login_http_resp_cleanup(&r);
    cp_login_file_cleanup(&f);
    if (bx) {
        cm_crypto_memzero(bx, strlen(bx));
        cm_free(bx);
    }
    if (ch) {
        cm_crypto_memzero(ch, strlen(ch));
        cm_free(ch);
    }
    cm_free(name);
    return rc;
}

/* ---- command line: callback server + pasted URL ---- */

struct cb_wait {
    pthread_mutex_t mu;
    const char *state; /* expected */
    int got;           /* a callback with a code (or an error) arrived */
    struct cp_login_callback cb;
};

static const char page_ok[] =
    "<!doctype html><html><head><title>Authentication successful</title></head><body>"
    "<h1>Authentication successful!</h1><p>You can close this window and return to the "
    "terminal.</p></body></html>";

static void reply_page(struct cm_httpd_req *r, unsigned status, const char *msg)
{
    struct cm_buf b;
    cm_buf_init(&b, 4096);
    if (cm_buf_appendf(&b,
                       "<!doctype html><html><head><title>Authentication failed</title></head>"
                       "<body><h1>Authentication failed</h1><p>%s</p></body></html>",
                       msg) == CM_OK) {
        size_t len = 0;
        char *d = cm_buf_release(&b, &len);
        if (d) {
            cm_httpd_reply_take(r, status, "text/html; charset=utf-8", d, len);
            cm_buf_cleanup(&b);
            return;
        }
    }
    cm_buf_cleanup(&b);
    cm_httpd_reply(r, status, "text/plain", msg, strlen(msg));
}

static void on_callback(struct cm_httpd_req *r, void *ud)
{
    struct cb_wait *w = ud;
    struct cp_login_callback cb = {0};
    int rc = cp_login_parse_query(cm_httpd_req_query(r), &cb);
    if (rc == CM_OK && !cb.error && !cb.state)
        rc = CM_ERR_PARSE;
    if (rc) {
        cp_login_callback_cleanup(&cb);
        reply_page(r, 400, "Missing code or state.");
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (!w->got) {
        w->got = 1;
        w->cb = cb;
        memset(&cb, 0, sizeof cb);
    }
    pthread_mutex_unlock(&w->mu);
    cp_login_callback_cleanup(&cb);
    if (w->cb.error)
        reply_page(r, 400, "The provider reported an error; see the terminal.");
    else if (w->cb.state && strcmp(w->cb.state, w->state) != 0)
        reply_page(r, 400, "State mismatch.");
    else
        cm_httpd_reply(r, 200, "text/html; charset=utf-8", page_ok, sizeof page_ok - 1);
}

static void open_browser(const char *url)
{
    char *u = cm_strdup(url), name[] = "xdg-open";
    char *argv[] = {name, u, NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    if (!u)
        return;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        cm_free(u);
        return;
    }
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ) == 0)
        waitpid(pid, NULL, WNOHANG); /* failure is fine: the URL is printed */
    posix_spawn_file_actions_destroy(&fa);
    cm_free(u);
}

/* reads one line from @p fd (blocking, at most @p timeout_s); CM_ERR_CLOSED at EOF */
static int read_line(int fd, char *buf, size_t n, int timeout_s)
{
    size_t len = 0;
    int64_t end = mono_ms() + (int64_t)timeout_s * 1000;
    while (len + 1 < n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int64_t left = end - mono_ms();
        ssize_t k;
        if (left <= 0)
            return CM_ERR_TIMEOUT;
        if (poll(&pf, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
            continue;
        k = read(fd, buf + len, 1);
        if (k <= 0)
            return len ? CM_OK : CM_ERR_CLOSED;
        if (buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
    while (len && (buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    return CM_OK;
}

static int browser_login(const struct cp_config *cfg, struct cm_httpc *hc,
                         const struct cp_login_opts *o, int timeout_s, char path[CP_LOGIN_PATH_MAX],
                         char *email, size_t email_len, char *err, size_t errlen)
{
    struct cp_login_pending p;
    struct cb_wait w = {.got = 0};
    struct cm_httpd *srv = NULL;
    struct cm_httpd_opts ho = {.bind = "127.0.0.1", .threads = 1, .max_body = 4096};
    struct cp_login_callback pasted = {0}, *use = NULL;
    char *url = NULL, line[8192];
    size_t ll = 0;
    int in_open = o->in_fd >= 0, rc;
    int64_t end = mono_ms() + (int64_t)timeout_s * 1000;

    pthread_mutex_init(&w.mu, NULL);
    rc = cp_login_begin(cfg, o->kind, o->callback_port, &p, &url);
    if (rc) {
        set_err(err, errlen, "cannot start the %s login: %s", cp_login_kind_name(o->kind),
                cm_err_str(rc));
        goto out;
    }
    w.state = p.state;
    ho.port = o->callback_port ? o->callback_port : cp_login_default_port(o->kind);
    rc = cm_httpd_new(&ho, &srv);
    if (!rc)
        rc = cm_httpd_route(srv, "GET", cp_login_callback_path(o->kind), on_callback, &w);
    if (!rc)
        rc = cm_httpd_start(srv);
    if (rc) {
        set_err(err, errlen, "cannot listen on 127.0.0.1:%u for the OAuth callback",
                (unsigned)ho.port);
        rc = CM_ERR_IO;
        goto out;
    }
    fprintf(o->out, "Open this URL in your browser to log in:\n\n%s\n\n", url);
    if (!o->no_browser)
        open_browser(url);
    fprintf(o->out,
            "Waiting for the callback on %s (port %u).\nOn a headless machine, finish the "
            "login in any browser, then copy the address of the page it lands on\n%s\n",
            p.redirect_uri, (unsigned)ho.port,
            o->kind == CP_LOGIN_CLAUDE
                ? "or paste the full redirect URL (or the code#state shown) here:"
                : "or paste the full redirect URL here:");
    fflush(o->out);
    for (;;) {
        struct pollfd pf = {.fd = o->in_fd, .events = POLLIN};
        pthread_mutex_lock(&w.mu);
        if (w.got)
            use = &w.cb;
        pthread_mutex_unlock(&w.mu);
        if (use)
            break;
        if (mono_ms() > end) {
            set_err(err, errlen, "timed out waiting for the OAuth callback");
            rc = CM_ERR_TIMEOUT;
            goto out;
        }
        if (!in_open) {
            nap(200, NULL);
            continue;
        }
        if (poll(&pf, 1, 200) <= 0)
            continue;
        {
            ssize_t k = read(o->in_fd, line + ll, sizeof line - 1 - ll);
            if (k <= 0) {
                in_open = 0; /* EOF: wait for the browser only */
                continue;
            }
            ll += (size_t)k;
            line[ll] = '\0';
        }
        while (strchr(line, '\n') || ll + 1 >= sizeof line) {
            char *nl = strchr(line, '\n');
            size_t used = nl ? (size_t)(nl - line) + 1 : ll;
            if (nl)
                *nl = '\0';
            if (line[0] && cp_login_parse_callback(line, &pasted) == CM_OK) {
                use = &pasted;
            } else if (line[0]) {
                fprintf(o->out, "That is not a redirect URL with a code; paste it again:\n");
                fflush(o->out);
            }
            memmove(line, line + used, ll - used + 1);
            ll -= used;
            if (use)
                break;
        }
        if (use)
            break;
    }
    if (use->error) {
        set_err(err, errlen, "the provider refused the login: %s", use->error);
        rc = CM_ERR_AUTH;
        goto out;
    }
    if (!use->code || !use->state || strcmp(use->state, p.state) != 0) {
        set_err(err, errlen, "state mismatch: the callback does not belong to this login");
        rc = CM_ERR_AUTH;
        goto out;
    }
    fprintf(o->out, "Code received, exchanging it for tokens...\n");
    fflush(o->out);
    rc =
        cp_login_finish(cfg, hc, &p, use->code, o->project_id, path, email, email_len, err, errlen);
out:
    cm_httpd_free(srv);
    cp_login_callback_cleanup(&pasted);
    cp_login_callback_cleanup(&w.cb);
    pthread_mutex_destroy(&w.mu);
    cm_free(url);
    cm_crypto_memzero(&p, sizeof p);
    cm_crypto_memzero(line, sizeof line);
    return rc;
}

int cp_login_run(const struct cp_config *cfg, const struct cp_login_opts *o, char *err,
                 size_t errlen)
{
    struct cm_httpc *hc = NULL;
    char path[CP_LOGIN_PATH_MAX] = "", email[256] = "", buf[8192];
    int timeout_s, rc;

    if (err && errlen)
        *err = '\0';
    if (!cfg || !o || !o->out || (unsigned)o->kind >= CP_LOGIN__COUNT) {
        set_err(err, errlen, "login: bad arguments");
        return CM_ERR_INVAL;
    }
    timeout_s = o->timeout_s;
    if (timeout_s <= 0) {
        const char *e = getenv("CLIPROXYD_LOGIN_TIMEOUT_S");
        long v = e ? strtol(e, NULL, 10) : 0;
        timeout_s = v > 0 && v < 86400 ? (int)v : CP_LOGIN_TIMEOUT_DEFAULT_S;
    }
    rc = cm_httpc_new(NULL, &hc);
    if (rc) {
        set_err(err, errlen, "cannot start the HTTP client");
        return rc;
    }
    switch (o->kind) {
    case CP_LOGIN_CODEX:
    case CP_LOGIN_CLAUDE:
    case CP_LOGIN_GEMINI:
    case CP_LOGIN_IFLOW:
        rc = browser_login(cfg, hc, o, timeout_s, path, email, sizeof email, err, errlen);
        break;
    case CP_LOGIN_CODEX_DEVICE:
        rc = codex_device(cfg, hc, o->out, path, email, sizeof email, err, errlen);
        break;
    case CP_LOGIN_QWEN: {
        struct cp_login_device d = {0};
        char ver[CP_LOGIN_VERIFIER_MAX];
        const char *em = o->email;
        if (!em || !*em) {
            fprintf(o->out, "Please input your email address or alias for Qwen: ");
            fflush(o->out);
            rc = read_line(o->in_fd, buf, sizeof buf, timeout_s);
            if (rc || !buf[0]) {
                set_err(err, errlen, "qwen: no email or alias given (use -email)");
                rc = CM_ERR_INVAL;
                break;
            }
            em = buf;
        }
        rc = cp_login_qwen_start(cfg, hc, &d, ver, err, errlen);
        if (!rc) {
            fprintf(o->out, "Open this URL in your browser to log in:\n\n%s\n\nCode: %s\n",
                    d.verification_uri, d.user_code);
            fflush(o->out);
            if (!o->no_browser)
                open_browser(d.verification_uri);
            rc = cp_login_qwen_poll(cfg, hc, &d, ver, em, timeout_s, NULL, path, err, errlen);
            snprintf(email, sizeof email, "%.255s", em);
        }
        cm_crypto_memzero(ver, sizeof ver);
        cp_login_device_cleanup(&d);
        break;
    }
    case CP_LOGIN_IFLOW_COOKIE: {
        const char *ck = o->cookie;
        if (!ck || !*ck) {
            fprintf(o->out, "Paste your iflow.cn Cookie (it must contain BXAuth=...): ");
            fflush(o->out);
            rc = read_line(o->in_fd, buf, sizeof buf, timeout_s);
            if (rc || !buf[0]) {
                set_err(err, errlen, "iflow: no cookie given (use -cookie)");
                rc = CM_ERR_INVAL;
                break;
            }
            ck = buf;
        }
        rc = cp_login_iflow_cookie(cfg, hc, ck, path, email, sizeof email, err, errlen);
        break;
    }
    default:
        rc = CM_ERR_INVAL;
    }
    cm_crypto_memzero(buf, sizeof buf);
    cm_httpc_free(hc);
    if (!rc) {
        fprintf(o->out, "Authentication successful%s%s.\nSaved credentials to %s\n",
                email[0] ? " for " : "", email, path);
        fflush(o->out);
    } else {
        set_err(err, errlen, "%s login failed: %s", cp_login_kind_name(o->kind), cm_err_str(rc));
    }
    return rc;
}
