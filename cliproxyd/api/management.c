/* SPDX-License-Identifier: MIT */
/*
 * management.c - the operator API (see management.h). The gate runs before every route:
 * secret configured? loopback or allow-remote? banned? key right? The ban table is a
 * small fixed array of remote addresses under one mutex (management traffic is rare).
 */
#include "api/management.h"

#include "authstore.h"
#include "cm/alloc.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/json.h"
#include "cm/log.h"
#include "scheduler.h"
#include "usage.h"

#include <errno.h>
#include <pthread.h>
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
    pthread_mutex_t mu;
    struct ban bans[BAN_SLOTS];
};

int cp_mgmt_new(struct cp_server *srv, struct cp_mgmt **out)
{
    struct cp_mgmt *m = cm_calloc(1, sizeof *m);
    if (!m)
        return CM_ERR_NOMEM;
    m->srv = srv;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return CM_OK;
}

void cp_mgmt_free(struct cp_mgmt *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
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

/* the presented key against the configured secret: SHA-256 of both, or bcrypt/argon2 */
static int key_ok(const char *secret, const char *key)
{
    unsigned char a[CM_CRYPTO_SHA256_LEN], b[CM_CRYPTO_SHA256_LEN];
    if (strncmp(secret, "$2", 2) == 0 || strncmp(secret, "$argon2", 7) == 0)
        return cm_crypto_pwhash_verify(key, secret) == CM_OK;
    cm_crypto_sha256(secret, strlen(secret), a);
    cm_crypto_sha256(key, strlen(key), b);
    return cm_crypto_equal(a, sizeof a, b, sizeof b);
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
    ok = key && *key && key_ok(cfg->remote_management->secret_key, key);
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
        rc = cm_httpd_route(s, "GET", "/metrics", metrics, m);
    return rc;
}
