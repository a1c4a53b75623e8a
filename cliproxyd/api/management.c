/* SPDX-License-Identifier: MIT */
/*
 * management.c - the operator API (see management.h). The gate runs before every route:
 * secret configured? loopback or allow-remote? banned? key right? The ban table is a
 * small fixed array of remote addresses under one mutex (management traffic is rare).
 * Handlers that write (auth files, config.yaml) do their blocking file I/O on the server
 * thread: a few small files, fsynced, on a rare operator request. config.yaml edits are
 * serialised by cfg_mu so two requests never interleave their read-modify-write.
 */
#include "api/management.h"

#include "api/mgmt_oauth.h"
#include "authfile.h"
#include "authstore.h"
#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/cfg.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "config_edit.h"
#include "scheduler.h"
#include "usage.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BAN_SLOTS 256
#define BAN_AFTER 5
#define BAN_SECONDS (30 * 60)

struct ban {
    char ip[64];
    int failures;
    int64_t until; /* unix seconds; 0 = not banned */
};

struct cp_mgmt {
    struct cp_server *srv;
    pthread_mutex_t mu; /* bans and the verified-key cache */
    struct ban bans[BAN_SLOTS];
    int ok_valid;                               /* the cache below is set */
    char ok_secret[128];                        /* the configured hash the key matched */
    unsigned char ok_key[CM_CRYPTO_SHA256_LEN]; /* SHA-256 of that key */
    pthread_mutex_t cfg_mu;                     /* one read-modify-write of config.yaml at a time */
    struct cp_mgmt_oauth *oauth;                /* the web logins (mgmt_oauth.h) */
};

int cp_mgmt_new(struct cp_server *srv, struct cp_mgmt **out)
{
    struct cp_mgmt *m = cm_calloc(1, sizeof *m);
    if (!m)
        return CM_ERR_NOMEM;
    m->srv = srv;
    if (cp_mgmt_oauth_new(srv, &m->oauth) != CM_OK) {
        cm_free(m);
        return CM_ERR_NOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->cfg_mu, NULL);
    *out = m;
    return CM_OK;
}

void cp_mgmt_free(struct cp_mgmt *m)
{
    if (!m)
        return;
    cp_mgmt_oauth_free(m->oauth);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->cfg_mu);
    cm_crypto_memzero(m->ok_key, sizeof m->ok_key);
    cm_free(m);
}

static int is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
}

/* lock held */
static struct ban *ban_slot(struct cp_mgmt *m, const char *ip, int create)
{
    struct ban *free_slot = NULL, *oldest = &m->bans[0];
    for (int i = 0; i < BAN_SLOTS; i++) {
        struct ban *b = &m->bans[i];
        if (b->ip[0] && strcmp(b->ip, ip) == 0)
            return b;
        if (!b->ip[0] && !free_slot)
            free_slot = b;
        if (b->until < oldest->until)
            oldest = b;
    }
    if (!create)
        return NULL;
    if (!free_slot) /* full: reuse the entry whose ban ends first */
        free_slot = oldest;
    memset(free_slot, 0, sizeof *free_slot);
    snprintf(free_slot->ip, sizeof free_slot->ip, "%s", ip);
    return free_slot;
}

/*
 * The presented key against the configured secret: SHA-256 of both, or a bcrypt/argon2
 * verify. A verify costs ~80 ms of CPU (bcrypt cost 10) on a server thread, so after a
 * success the key's SHA-256 is remembered with the hash it matched, and a later request
 * with the same key and the same configured hash is accepted on that digest alone.
 */
static int key_ok(struct cp_mgmt *m, const char *secret, const char *key)
{
    unsigned char a[CM_CRYPTO_SHA256_LEN], b[CM_CRYPTO_SHA256_LEN];
    int ok;

    cm_crypto_sha256(key, strlen(key), b);
    if (!cp_config_edit_secret_is_hashed(secret)) {
        cm_crypto_sha256(secret, strlen(secret), a);
        return cm_crypto_equal(a, sizeof a, b, sizeof b);
    }
    pthread_mutex_lock(&m->mu);
    ok = m->ok_valid && strcmp(m->ok_secret, secret) == 0 &&
         cm_crypto_equal(m->ok_key, sizeof m->ok_key, b, sizeof b);
    pthread_mutex_unlock(&m->mu);
    if (ok)
        return 1;
    ok = cm_crypto_pwhash_verify(key, secret) == CM_OK;
    if (ok && strlen(secret) < sizeof m->ok_secret) {
        pthread_mutex_lock(&m->mu);
        snprintf(m->ok_secret, sizeof m->ok_secret, "%s", secret);
        memcpy(m->ok_key, b, sizeof b);
        m->ok_valid = 1;
        pthread_mutex_unlock(&m->mu);
    }
    return ok;
}

/* Returns 0 when the caller may go on; otherwise it has replied. */
static int gate_or_reply(struct cp_mgmt *m, struct cm_httpd_req *r)
{
    struct cp_config_ref *ref = cp_config_live_acquire(m->srv->cfg);
    const struct cp_config *cfg = ref ? cp_config_ref_get(ref) : NULL;
    const char *ip = cm_httpd_req_peer(r), *key = NULL, *h;
    int loop = is_loopback(ip), rc = 1, ok;
    int64_t now = (int64_t)time(NULL);
    struct ban *b;

    if (!cfg || !cfg->remote_management->secret_key[0]) {
        cm_httpd_reply_error(r, 404, "invalid_request_error", "not_found", "no such route");
        goto out;
    }
    if (!loop && !cfg->remote_management->allow_remote) {
        cm_httpd_reply_error(r, 403, "permission_error", "remote_disabled",
                             "remote management disabled");
        goto out;
    }
    if (!loop) {
        pthread_mutex_lock(&m->mu);
        b = ban_slot(m, ip, 0);
        if (b && b->until > now) {
            long left = (long)(b->until - now);
            pthread_mutex_unlock(&m->mu);
            cm_httpd_reply_error(r, 403, "permission_error", "banned",
                                 "too many failed attempts; try again in %ld s", left);
            goto out;
        }
        pthread_mutex_unlock(&m->mu);
    }
    h = cm_httpd_req_header(r, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        key = h + 7;
    else
        key = cm_httpd_req_header(r, "X-Management-Key");
    ok = key && *key && key_ok(m, cfg->remote_management->secret_key, key);
    if (!loop) {
        pthread_mutex_lock(&m->mu);
        b = ban_slot(m, ip, !ok);
        if (b && ok) {
            b->failures = 0;
        } else if (b && ++b->failures >= BAN_AFTER) {
            b->until = now + BAN_SECONDS;
            b->failures = 0;
            cm_log_warn(cm_httpd_req_id(r), "management: %s banned for 30 min", ip);
        }
        pthread_mutex_unlock(&m->mu);
    }
    if (!ok) {
        cm_httpd_reply_error(r, 401, "authentication_error", "invalid_management_key",
                             key ? "invalid management key" : "missing management key");
        goto out;
    }
    rc = 0;
out:
    cp_config_ref_release(ref);
    return rc;
}

/* the gate as mgmt_oauth.h's callback */
static int gate_cb(void *ud, struct cm_httpd_req *r)
{
    return gate_or_reply(ud, r);
}

static void reply_json(struct cm_httpd_req *r, cJSON *root)
{
    char *out = NULL;
    size_t len = 0;
    if (root && cm_json_print(root, &out, &len) == CM_OK)
        cm_httpd_reply_take(r, 200, "application/json", out, len);
    else
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
    cJSON_Delete(root);
}

static void auth_files(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cp_authstore_list *l = NULL;
    cJSON *root = NULL, *files = NULL;
    int rc;

    if (gate_or_reply(m, r))
        return;
    if (cp_authstore_list(m->srv->store, &l) != CM_OK) {
        cm_httpd_reply_error(r, 503, "server_error", NULL, "cannot list the auth files");
        return;
    }
    rc = cm_json_new_object(&root);
    if (!rc)
        rc = cm_json_new_array(&files);
    for (size_t i = 0; !rc && i < l->n; i++) {
        const struct cp_authstore_info *in = &l->items[i];
        cJSON *f = NULL;
        if ((rc = cm_json_new_object(&f)))
            break;
        rc = cm_json_set_string(f, "name", in->name);
        if (!rc)
            rc = cm_json_set_string(f, "provider", in->provider ? in->provider : "");
        if (!rc)
            rc = in->email ? cm_json_set_string(f, "email", in->email)
                           : cm_json_set_null(f, "email");
        if (!rc)
            rc = cm_json_set_string(f, "status", cp_authstore_status_str(in));
        if (!rc)
            rc = cm_json_set_bool(f, "disabled",
                                  in->kind == CP_AUTHSTORE_VALID && in->state == CP_SCHED_DISABLED);
        if (!rc && in->cooling_until_wall_ms)
            rc = cm_json_set_int64(f, "cooling_until", in->cooling_until_wall_ms / 1000);
        if (!rc)
            rc = in->error ? cm_json_set_string(f, "last_error", in->error)
                           : cm_json_set_null(f, "last_error");
        if (rc) {
            cJSON_Delete(f);
            break;
        }
        rc = cm_json_set_item(files, NULL, f);
    }
    if (!rc) {
        rc = cm_json_adopt(root, "files", &files);
    }
    cp_authstore_list_free(l);
    cJSON_Delete(files);
    if (rc) {
        cJSON_Delete(root);
        root = NULL;
    }
    reply_json(r, root);
}

/* a plain file name inside auth-dir: no path separators, no dot files */
static int safe_name(const char *n)
{
    return n && *n && n[0] != '.' && !strchr(n, '/') && !strchr(n, '\\') && strlen(n) < 256;
}

static void delete_auth_file(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cp_config_ref *ref;
    const char *name;
    char path[4096];
    int n;

    if (gate_or_reply(m, r))
        return;
    name = cm_httpd_req_arg(r, "name");
    if (!safe_name(name)) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", NULL,
                             "name: a file name in auth-dir is required");
        return;
    }
    ref = cp_config_live_acquire(m->srv->cfg);
    n = snprintf(path, sizeof path, "%s/%s", cp_config_ref_get(ref)->auth_dir, name);
    cp_config_ref_release(ref);
    if (n < 0 || (size_t)n >= sizeof path || unlink(path) != 0) {
        int e = errno;
        cm_httpd_reply_error(r, e == ENOENT ? 404 : 500, "invalid_request_error", NULL,
                             "cannot delete %s: %s", name, strerror(e));
        return;
    }
    cm_log_info(cm_httpd_req_id(r), "management: deleted auth file %s", name);
    cm_httpd_reply(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void reset_quota(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cm_json_err je = {0};
    const char *body, *name = NULL;
    size_t len;
    cJSON *req = NULL;

    if (gate_or_reply(m, r))
        return;
    body = cm_httpd_req_body(r, &len);
    if (cm_json_parse(body, len, NULL, &req, &je) != CM_OK ||
        cm_json_get_string(req, "name", &name, &je) != CM_OK) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", NULL, "%s",
                             je.msg[0] ? je.msg : "body must be {\"name\": \"<auth file>\"}");
        cJSON_Delete(req);
        return;
    }
    if (cp_sched_reset_quota(m->srv->sched, name) != CM_OK)
        cm_httpd_reply_error(r, 404, "invalid_request_error", NULL, "no credential %s", name);
    else
        cm_httpd_reply(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
    cJSON_Delete(req);
}

static void usage_json(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    char *out = NULL;
    size_t len = 0;
    if (gate_or_reply(m, r))
        return;
    if (cp_usage_json(m->srv->usage, &out, &len) == CM_OK)
        cm_httpd_reply_take(r, 200, "application/json", out, len);
    else
        cm_httpd_reply_error(r, 503, "server_error", NULL, "out of memory");
}

/* Prometheus text: the counters plus one state gauge per credential file */
static void metrics(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cp_authstore_list *l = NULL;
    struct cm_buf b;
    int rc;

    if (gate_or_reply(m, r))
        return;
    cm_buf_init(&b, 16u << 20);
    rc = cp_usage_prometheus(m->srv->usage, &b);
    if (!rc)
        rc = cm_buf_append_str(&b, "# HELP cliproxyd_credential_state 1 for the state each "
                                   "credential file is in.\n# TYPE cliproxyd_credential_state "
                                   "gauge\n");
    if (!rc && cp_authstore_list(m->srv->store, &l) == CM_OK) {
        for (size_t i = 0; !rc && i < l->n; i++) {
            rc = cm_buf_append_str(&b, "cliproxyd_credential_state{credential=\"");
            if (!rc)
                rc = cp_usage_label(&b, l->items[i].name);
            if (!rc)
                rc = cm_buf_appendf(&b, "\",state=\"%s\"} 1\n",
                                    cp_authstore_status_str(&l->items[i]));
        }
        cp_authstore_list_free(l);
    }
    if (rc) {
        cm_buf_cleanup(&b);
        cm_httpd_reply_error(r, 503, "server_error", NULL, "cannot build the metrics");
        return;
    }
    {
        size_t len = 0;
        char *txt = cm_buf_release(&b, &len);
        cm_httpd_reply_take(r, 200, "text/plain; version=0.0.4", txt, len);
    }
}

/* ---- auth files: upload, disable ---- */

#define UPLOAD_MAX ((size_t)CP_AUTHFILE_MAX_SIZE)
#define UPLOAD_BODY_MAX (UPLOAD_MAX + 64 * 1024) /* the file plus multipart framing */

static const char ok_body[] = "{\"status\":\"ok\"}";

static void reply_ok(struct cm_httpd_req *r)
{
    cm_httpd_reply(r, 200, "application/json", ok_body, sizeof ok_body - 1);
}

/* Why @p n cannot name a credential file in auth-dir, or NULL if it can. */
static const char *bad_auth_name(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    if (!len)
        return "a file name is required";
    if (len > CP_AUTHFILE_NAME_MAX)
        return "the file name is too long";
    if (strchr(n, '/') || strchr(n, '\\') || strstr(n, ".."))
        return "the file name must not contain '/', '\\\\' or \"..\"";
    if (n[0] == '.')
        return "the file name must not start with '.'";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || n[i] == 0x7f)
            return "the file name must not contain control characters";
    if (len < 6 || strcmp(n + len - 5, ".json") != 0)
        return "the file name must end with .json";
    return NULL;
}

/* auth-dir/@p name into @p path (PATH_MAX); 0 or -1 when it does not fit */
static int auth_path(struct cp_mgmt *m, const char *name, char *path, size_t n)
{
    struct cp_config_ref *ref = cp_config_live_acquire(m->srv->cfg);
    const struct cp_config *cfg = cp_config_ref_get(ref);
    int k = cfg ? snprintf(path, n, "%s/%s", cfg->auth_dir, name) : -1;
    cp_config_ref_release(ref);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* a quoted-string or token parameter value at @p p (after '='); copy into @p out */
static int param_value(const char *p, const char *end, char *out, size_t outlen)
{
    size_t o = 0;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (o + 1 >= outlen)
                return -1;
            out[o++] = *p;
        }
        if (p >= end)
            return -1;
    } else {
        for (; p < end && *p != ';' && *p != ' ' && *p != '\t'; p++) {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return 0;
}

/* Finds parameter @p name ("boundary", "name", "filename") in a header value
 * `x; a=b; c="d"`; 1 found (value copied), 0 absent, -1 malformed / too long. */
static int header_param(const char *v, const char *end, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = v;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            return 0;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == '=')
            return param_value(p + nl + 1, end, out, outlen) == 0 ? 1 : -1;
        /* skip this parameter's value, quoted strings may hold ';' */
        while (p < end && *p != ';' && *p != '"')
            p++;
        if (p < end && *p == '"')
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\' && p + 1 < end)
                    p++;
    }
    return 0;
}

/* the next "--boundary" at the start of a line in [p, end), or NULL */
static const char *find_delim(const char *p, const char *end, const char *body, const char *delim,
                              size_t dl)
{
    while (p < end) {
        const char *d = memmem(p, (size_t)(end - p), delim, dl);
        if (!d)
            return NULL;
        if (d == body || d[-1] == '\n')
            return d;
        p = d + 1;
    }
    return NULL;
}

/*
 * multipart/form-data (RFC 7578): the first part whose Content-Disposition has
 * name="file". Its content (borrowed from @p body) and filename (copied, "" if none).
 * Returns NULL or what is wrong with the body, for a 400.
 */
static const char *multipart_file(const char *ctype, const char *body, size_t len,
                                  const char **data, size_t *dlen, char *fname, size_t fnlen)
{
    char boundary[80], delim[84], val[CP_AUTHFILE_NAME_MAX + 2];
    const char *end = body + len, *p, *d;
    size_t dl;

    if (header_param(ctype, ctype + strlen(ctype), "boundary", boundary, sizeof boundary) != 1 ||
        !boundary[0] || strlen(boundary) > 70)
        return "Content-Type multipart/form-data needs a boundary of 1 to 70 characters";
    dl = (size_t)snprintf(delim, sizeof delim, "--%s", boundary);
    d = find_delim(body, end, body, delim, dl);
    while (d) {
        const char *hs, *he, *cs, *ce, *next;
        int is_file = 0;

        p = d + dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p == '\r')
            p++;
        if (p >= end || *p != '\n')
            return "malformed multipart body (no line break after a boundary)";
        hs = p + 1;
        /* headers end at the first empty line */
        for (he = hs;; he++) {
            const char *nl = memchr(he, '\n', (size_t)(end - he));
            if (!nl)
                return "malformed multipart body (part headers never end)";
            if (nl == he || (nl == he + 1 && *he == '\r')) {
                cs = nl + 1;
                break;
            }
            he = nl;
        }
        next = find_delim(cs, end, body, delim, dl);
        if (!next)
            return "malformed multipart body (no closing boundary)";
        ce = next;
        if (ce > cs && ce[-1] == '\n')
            ce--;
        if (ce > cs && ce[-1] == '\r')
            ce--;
        fname[0] = '\0';
        for (p = hs; p < he;) {
            const char *nl = memchr(p, '\n', (size_t)(he - p)), *le = nl ? nl : he;
            const char *lend = le > p && le[-1] == '\r' ? le - 1 : le;
            static const char cd[] = "content-disposition:";
            if ((size_t)(lend - p) > sizeof cd - 1 && strncasecmp(p, cd, sizeof cd - 1) == 0) {
                int k = header_param(p, lend, "name", val, sizeof val);
                if (k < 0)
                    return "malformed Content-Disposition in a multipart part";
                is_file = k == 1 && strcmp(val, "file") == 0;
                k = header_param(p, lend, "filename", fname, fnlen);
                if (k < 0)
                    return "the uploaded file name is malformed or too long";
                if (k == 0)
                    fname[0] = '\0';
            }
            p = nl ? nl + 1 : he;
        }
        if (is_file) {
            *data = cs;
            *dlen = (size_t)(ce - cs);
            return NULL;
        }
        d = next;
    }
    return "the multipart body has no part named \"file\"";
}

static void upload_auth_file(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cp_authfile *af = NULL;
    struct cp_authfile_err aerr = {0};
    const char *ctype, *body, *data, *name, *why;
    char fname[CP_AUTHFILE_NAME_MAX + 2], path[PATH_MAX], desc[256];
    size_t len, dlen;
    int rc;

    if (gate_or_reply(m, r))
        return;
    body = cm_httpd_req_body(r, &len);
    if (len > UPLOAD_BODY_MAX) {
        cm_httpd_reply_error(r, 413, "invalid_request_error", "file_too_large",
                             "auth file upload: at most %zu bytes", UPLOAD_MAX);
        goto out;
    }
    ctype = cm_httpd_req_header(r, "Content-Type");
    data = body;
    dlen = len;
    name = cm_httpd_req_arg(r, "name");
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        why = multipart_file(ctype, body, len, &data, &dlen, fname, sizeof fname);
        if (why) {
            cm_httpd_reply_error(r, 400, "invalid_request_error", NULL, "auth file upload: %s",
                                 why);
            goto out;
        }
        if (fname[0])
            name = fname;
    }
    if ((why = bad_auth_name(name))) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", "invalid_name",
                             "auth file upload: %s (multipart: the file part's filename; raw "
                             "JSON: ?name=<file>.json)",
                             why);
        goto out;
    }
    if (dlen > UPLOAD_MAX) {
        cm_httpd_reply_error(r, 413, "invalid_request_error", "file_too_large",
                             "auth file upload: %s is larger than %zu bytes", name, UPLOAD_MAX);
        goto out;
    }
    rc = cp_authfile_parse(name, data, dlen, &af, &aerr);
    if (rc) {
        cm_httpd_reply_error(r, rc == CM_ERR_LIMIT ? 413 : 400, "invalid_request_error",
                             "invalid_auth_file", "%s",
                             aerr.msg[0] ? aerr.msg : "not a credential file");
        goto out;
    }
    if (!cp_authfile_provider_supported(af->provider)) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", "unsupported_provider",
                             "auth file '%s': type '%s' is not supported by cliproxyd (codex, "
                             "claude)",
                             name, af->type ? af->type : "");
        goto out;
    }
    if (auth_path(m, name, path, sizeof path) != 0) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", "invalid_name",
                             "auth file upload: the path is too long");
        goto out;
    }
    rc = cp_authfile_write(path, data, dlen);
    if (rc) {
        cm_httpd_reply_error(r, 500, "server_error", NULL, "cannot write auth file %s: %s", name,
                             cm_err_str(rc));
        goto out;
    }
    cp_authfile_describe(af, desc, sizeof desc);
    cm_log_info(cm_httpd_req_id(r), "management: uploaded auth file %s", desc);
    reply_ok(r);
out:
    cp_authfile_free(af);
}

static void patch_auth_status(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cm_json_err je = {0};
    struct cp_authfile_err aerr = {0};
    struct cp_authfile *af = NULL;
    cJSON *req = NULL;
    const char *body, *name = NULL, *why;
    char path[PATH_MAX], *file = NULL, *out = NULL, reply[64];
    size_t len, flen = 0, olen = 0;
    bool disabled = false;
    int rc, n;

    if (gate_or_reply(m, r))
        return;
    body = cm_httpd_req_body(r, &len);
    if (cm_json_parse(body, len, NULL, &req, &je) != CM_OK ||
        cm_json_get_string(req, "name", &name, &je) != CM_OK ||
        cm_json_get_bool(req, "disabled", &disabled, &je) != CM_OK) {
        cm_httpd_reply_error(
            r, 400, "invalid_request_error", NULL,
            "body must be {\"name\": \"<auth file>\", \"disabled\": true|false}: %s",
            je.msg[0] ? je.msg : "invalid JSON");
        goto out;
    }
    if ((why = bad_auth_name(name)) || auth_path(m, name, path, sizeof path) != 0) {
        cm_httpd_reply_error(r, 400, "invalid_request_error", "invalid_name", "name: %s",
                             why ? why : "the path is too long");
        goto out;
    }
    rc = cp_config_edit_read(path, &file, &flen);
    if (rc) {
        cm_httpd_reply_error(r,
                             rc == CM_ERR_NOTFOUND ? 404
                             : rc == CM_ERR_LIMIT  ? 413
                                                   : 500,
                             rc == CM_ERR_NOTFOUND ? "invalid_request_error" : "server_error",
                             rc == CM_ERR_NOTFOUND ? "not_found" : NULL, "auth file %s: %s", name,
                             rc == CM_ERR_NOTFOUND ? "not found" : cm_err_str(rc));
        goto out;
    }
    rc = cp_authfile_parse(name, file, flen, &af, &aerr);
    if (rc) {
        cm_httpd_reply_error(r, 409, "invalid_request_error", "invalid_auth_file",
                             "%s; fix or replace the file first",
                             aerr.msg[0] ? aerr.msg : "the auth file cannot be parsed");
        goto out;
    }
    rc = cm_json_set_bool(af->json, "disabled", disabled);
    if (!rc)
        rc = cp_authfile_serialize(af, &out, &olen);
    if (!rc)
        rc = cp_authfile_write(path, out, olen);
    if (rc) {
        cm_httpd_reply_error(r, 500, "server_error", NULL, "cannot rewrite auth file %s: %s", name,
                             cm_err_str(rc));
        goto out;
    }
    cm_log_info(cm_httpd_req_id(r), "management: auth file %s %s", name,
                disabled ? "disabled" : "enabled");
    n = snprintf(reply, sizeof reply, "{\"status\":\"ok\",\"disabled\":%s}",
                 disabled ? "true" : "false");
    cm_httpd_reply(r, 200, "application/json", reply, (size_t)n);
out:
    if (file)
        cm_crypto_memzero(file, flen);
    if (out)
        cm_crypto_memzero(out, olen);
    cm_free(file);
    cm_free(out);
    cp_authfile_free(af);
    cJSON_Delete(req);
}

/* ---- GET /config: the live config with CLIProxyAPI's key names, minus the secret ---- */

/*
 * Everything comes from the schema walk (cm_cfg_to_json): every kept key, with defaults
 * and normalisations already in the loaded struct (upstream URLs, expanded auth-dir, the
 * transient cooldown). The secret (even hashed) never leaves.
 */
static const char *const config_hidden[] = {"remote-management.secret-key", NULL};

static void get_config(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cp_config_ref *ref;
    cJSON *root = NULL; /* stays NULL on failure: reply_json() answers 503 */
    int rc;

    if (gate_or_reply(m, r))
        return;
    ref = cp_config_live_acquire(m->srv->cfg);
    rc = cm_cfg_to_json(cp_config_spec(), cp_config_ref_get(ref), config_hidden, &root);
    cp_config_ref_release(ref);
    if (rc)
        cm_log_error(NULL, "management: GET /config: %s", cm_err_str(rc));
    reply_json(r, root);
}

/* ---- api-keys: read from the live config, written into config.yaml ---- */

static int str_list(cJSON *o, const char *k, char *const *a, unsigned n)
{
    cJSON *arr = NULL;
    int rc = cm_json_new_array(&arr);
    for (unsigned i = 0; !rc && i < n; i++)
        rc = cm_json_set_string(arr, NULL, a[i] ? a[i] : "");
    if (!rc)
        rc = cm_json_adopt(o, k, &arr);
    cJSON_Delete(arr);
    return rc;
}

#define API_KEYS_MAX 10000
#define API_KEY_LEN_MAX 4096

static void get_api_keys(struct cm_httpd_req *r, void *ud)
{
    struct cp_mgmt *m = ud;
    struct cp_config_ref *ref;
    cJSON *root = NULL;
    int rc;

    if (gate_or_reply(m, r))
        return;
    ref = cp_config_live_acquire(m->srv->cfg);
    rc = cm_json_new_object(&root);
    if (!rc)
        rc = str_list(root, "api-keys", cp_config_ref_get(ref)->api_keys,
                      cp_config_ref_get(ref)->api_keys_count);
    cp_config_ref_release(ref);
    if (rc) {
        cJSON_Delete(root);
        root = NULL;
    }
    reply_json(r, root);
}

/* A change of the list: the request's data, and the new list once computed. */
struct keys_edit {
    struct cm_httpd_req *r;
    cJSON *body;        /* PUT / PATCH */
    const char **items; /* the new list (strings borrowed from body or the current config) */
    size_t n;
    unsigned status; /* a refusal: its HTTP status ... */
    char msg[256];   /* ... and message (never a key) */
};

/* computes e->items / e->n from the current list; on refusal sets e->status and msg */
typedef void (*keys_fn)(struct keys_edit *e, char *const *cur, size_t n);

static void refuse(struct keys_edit *e, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(struct keys_edit *e, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = status;
}

/* room for @p n entries in e->items */
static int keys_alloc(struct keys_edit *e, size_t n)
{
    e->items = cm_calloc(n ? n : 1, sizeof *e->items);
    if (!e->items)
        refuse(e, 503, "out of memory");
    return e->items ? 0 : -1;
}

/* why @p k cannot be a client key, or NULL (the key itself is never quoted back) */
static const char *bad_key(const char *k)
{
    size_t n = strlen(k);
    if (!n)
        return "must not be empty";
    if (n > API_KEY_LEN_MAX)
        return "is too long";
    if (k[0] == ' ' || k[0] == '\t' || k[n - 1] == ' ' || k[n - 1] == '\t')
        return "must not start or end with whitespace";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
            return "must not contain control characters";
    if (strncmp(k, "your-api-key", 12) == 0)
        return "is an example placeholder (your-api-key-...), which cliproxyd refuses at start";
    return NULL;
}

static void keys_put(struct keys_edit *e, char *const *cur, size_t ncur)
{
    cJSON *arr = e->body, *it;
    size_t i = 0;
    (void)cur;
    (void)ncur;
    if (cJSON_IsObject(arr)) {
        arr = cJSON_GetObjectItemCaseSensitive(e->body, "items");
        if (!arr)
            arr = cJSON_GetObjectItemCaseSensitive(e->body, "api-keys");
    }
    if (!cJSON_IsArray(arr)) {
        refuse(e, 400, "body must be a JSON array of strings, or {\"items\": [...]}");
        return;
    }
    if ((size_t)cJSON_GetArraySize(arr) > API_KEYS_MAX) {
        refuse(e, 400, "at most %d api-keys", API_KEYS_MAX);
        return;
    }
    if (keys_alloc(e, (size_t)cJSON_GetArraySize(arr)))
        return;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            refuse(e, 400, "api-keys[%zu]: must be a string", i);
            return;
        }
        e->items[i++] = it->valuestring;
    }
    e->n = i;
}

static void keys_patch(struct keys_edit *e, char *const *cur, size_t ncur)
{
    struct cm_json_err je = {0};
    const char *old = NULL, *nw = NULL, *val = NULL;
    int64_t idx = -1;

    if (!cJSON_IsObject(e->body) ||
        cm_json_opt_int64(e->body, "index", 0, INT32_MAX, -1, &idx, &je) != CM_OK ||
        cm_json_opt_string(e->body, "value", NULL, &val, &je) != CM_OK ||
        cm_json_opt_string(e->body, "old", NULL, &old, &je) != CM_OK ||
        cm_json_opt_string(e->body, "new", NULL, &nw, &je) != CM_OK) {
        refuse(e, 400,
               "body must be {\"index\": N, \"value\": \"...\"} or {\"old\": \"...\", "
               "\"new\": \"...\"}%s%s",
               je.msg[0] ? ": " : "", je.msg);
        return;
    }
    if (keys_alloc(e, ncur + 1))
        return;
    for (size_t i = 0; i < ncur; i++)
        e->items[i] = cur[i];
    e->n = ncur;
    if (idx >= 0 && val) {
        if ((size_t)idx >= ncur) {
            refuse(e, 404, "index %lld: there are %zu api-keys", (long long)idx, ncur);
            return;
        }
        e->items[idx] = val;
    } else if (old && nw) {
        size_t i = 0;
        while (i < ncur && strcmp(cur[i], old) != 0)
            i++;
        e->items[i] = nw; /* as CLIProxyAPI: an unknown old key means add the new one */
        if (i == ncur)
            e->n++;
    } else {
        refuse(e, 400,
               "body must be {\"index\": N, \"value\": \"...\"} or {\"old\": \"...\", "
               "\"new\": \"...\"}");
    }
}

static void keys_delete(struct keys_edit *e, char *const *cur, size_t ncur)
{
    const char *is = cm_httpd_req_arg(e->r, "index"), *val = cm_httpd_req_arg(e->r, "value");
    size_t n = 0;

    if (keys_alloc(e, ncur))
        return;
    if (is && *is) {
        char *end = NULL;
        long long idx;
        errno = 0;
        idx = strtoll(is, &end, 10);
        if (errno || !end || *end || idx < 0 || is[0] == '-' || is[0] == '+') {
            refuse(e, 400, "index: must be a non-negative integer");
            return;
        }
        if ((unsigned long long)idx >= ncur) {
            refuse(e, 404, "index %lld: there are %zu api-keys", idx, ncur);
            return;
        }
        for (size_t i = 0; i < ncur; i++)
            if (i != (size_t)idx)
                e->items[n++] = cur[i];
    } else if (val && *val) {
        for (size_t i = 0; i < ncur; i++)
            if (strcmp(cur[i], val) != 0)
                e->items[n++] = cur[i];
        if (n == ncur) {
            refuse(e, 404, "value: no such api key");
            return;
        }
    } else {
        refuse(e, 400, "missing index or value (?index=N or ?value=<key>)");
        return;
    }
    e->n = n;
}

/* cp_config_edit_save() check: the file reads back with exactly the new list */
static int keys_landed(const struct cp_config *cfg, void *ud, char *err, size_t errlen)
{
    const struct keys_edit *e = ud;
    int same = cfg->api_keys_count == e->n;
    for (size_t i = 0; same && i < e->n; i++)
        same = strcmp(cfg->api_keys[i], e->items[i]) == 0;
    return same ? CM_OK : cm_cfg_fail(err, errlen, "api-keys: the edit did not read back");
}

/*
 * Read config.yaml, compute the new list from the one in the file, replace the value of
 * `api-keys` (comments and the rest kept), check the result with the real loader, write
 * it atomically, and make it the live config at once (the file watcher reloads it too).
 */
static void keys_update(struct cp_mgmt *m, struct cm_httpd_req *r, keys_fn fn, bool json_body)
{
    struct keys_edit e = {.r = r};
    struct cm_json_err je = {0};
    struct cp_config *cur = NULL, *loaded = NULL;
    enum cp_config_edit_stage stage;
    const char *path = m->srv->config_path, *body, *why;
    char *text = NULL, *edited = NULL, err[CM_CFG_ERR_MAX];
    size_t len = 0, elen = 0, blen;
    int rc;

    if (gate_or_reply(m, r))
        return;
    if (json_body) {
        body = cm_httpd_req_body(r, &blen);
        if (cm_json_parse(body, blen, NULL, &e.body, &je) != CM_OK) {
            cm_httpd_reply_error(r, 400, "invalid_request_error", NULL, "invalid JSON body: %s",
                                 je.msg);
            return;
        }
    }
    pthread_mutex_lock(&m->cfg_mu);
    if (!path) {
        cm_httpd_reply_error(r, 503, "server_error", NULL, "no config file to write");
        goto out;
    }
    rc = cp_config_edit_read(path, &text, &len);
    if (!rc)
        rc = cp_config_load_mem(path, text, len, &cur, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s: %s", path, cm_err_str(rc));
    if (rc) {
        cm_httpd_reply_error(r, 500, "server_error", NULL, "cannot read the config: %s", err);
        goto out;
    }
    fn(&e, cur->api_keys, cur->api_keys_count);
    for (size_t i = 0; !e.status && i < e.n; i++)
        if ((why = bad_key(e.items[i])))
            refuse(&e, 400, "api-keys[%zu]: %s", i, why);
    if (e.status) {
        cm_httpd_reply_error(r, e.status,
                             e.status >= 500 ? "server_error" : "invalid_request_error",
                             e.status == 404 ? "not_found" : NULL, "%s", e.msg);
        goto out;
    }
    rc = cp_config_edit_set_list(text, len, "api-keys", e.items, e.n, &edited, &elen);
    if (rc) {
        cm_httpd_reply_error(r, rc == CM_ERR_NOMEM ? 503 : 500, "server_error", NULL,
                             "cannot edit api-keys in %s: %s", path, cm_err_str(rc));
        goto out;
    }
    rc = cp_config_edit_save(path, edited, elen, keys_landed, &e, &loaded, &stage, err, sizeof err);
    if (rc) {
        cm_httpd_reply_error(
            r, 500, "server_error", NULL, "%s %s: %s",
            stage == CP_CONFIG_EDIT_STAGE_WRITE ? "cannot write" : "refused to write", path, err);
        goto out;
    }
    if (cp_config_live_swap(m->srv->cfg, loaded) != CM_OK) {
        cp_config_free(loaded); /* the file watcher applies it instead */
        cm_log_warn(cm_httpd_req_id(r), "management: api-keys saved; applied on reload");
    }
    loaded = NULL;
    cm_log_info(cm_httpd_req_id(r), "management: api-keys updated in %s (%zu keys, were %u)", path,
                e.n, cur->api_keys_count);
    reply_ok(r);
out:
    pthread_mutex_unlock(&m->cfg_mu);
    cp_config_free(cur);
    if (text)
        cm_crypto_memzero(text, len);
    if (edited)
        cm_crypto_memzero(edited, elen);
    cm_free(text);
    cm_free(edited);
    cm_free(e.items);
    cJSON_Delete(e.body);
}

static void put_api_keys(struct cm_httpd_req *r, void *ud)
{
    keys_update(ud, r, keys_put, true);
}

static void patch_api_keys(struct cm_httpd_req *r, void *ud)
{
    keys_update(ud, r, keys_patch, true);
}

static void delete_api_keys(struct cm_httpd_req *r, void *ud)
{
    keys_update(ud, r, keys_delete, false);
}

int cp_mgmt_routes(struct cm_httpd *s, struct cp_mgmt *m)
{
    int rc = cm_httpd_route(s, "GET", "/v0/management/auth-files", auth_files, m);
    if (!rc)
        rc = cm_httpd_route(s, "DELETE", "/v0/management/auth-files", delete_auth_file, m);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v0/management/reset-quota", reset_quota, m);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/v0/management/usage", usage_json, m);
    if (!rc)
        rc = cm_httpd_route(s, "POST", "/v0/management/auth-files", upload_auth_file, m);
    if (!rc)
        rc = cm_httpd_route(s, "PATCH", "/v0/management/auth-files/status", patch_auth_status, m);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/v0/management/config", get_config, m);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/v0/management/api-keys", get_api_keys, m);
    if (!rc)
        rc = cm_httpd_route(s, "PUT", "/v0/management/api-keys", put_api_keys, m);
    if (!rc)
        rc = cm_httpd_route(s, "PATCH", "/v0/management/api-keys", patch_api_keys, m);
    if (!rc)
        rc = cm_httpd_route(s, "DELETE", "/v0/management/api-keys", delete_api_keys, m);
    if (!rc)
        rc = cm_httpd_route(s, "GET", "/metrics", metrics, m);
    if (!rc)
        rc = cp_mgmt_oauth_routes(s, m->oauth, gate_cb, m);
    return rc;
}
