/* SPDX-License-Identifier: MIT */
/*
 * fuzz_authfile.c - cliproxyd's auth-file parsing (cliproxyd/authfile.h) on arbitrary bytes,
 * and the token endpoints' answers applied to a parsed file.
 * Input: byte 0 = mode: bit 7 clear -> the rest is an auth file named by bits 0-2
 * (codex-, claude-, gemini-, qwen-, iflow-, antigravity-, kimi-, or a name without a
 * provider prefix); bit 7 set -> the rest is a refresh answer (bit 0: iFlow user info)
 * applied to a fixed valid file of the provider of bits 1-3.
 * Invariants: a parsed file serializes, and the serialization parses again (the daemon
 * writes it back after a refresh and reads it on the next start); failures fill err with
 * the same code and a NUL-terminated message; apply_* are all or nothing; nothing leaks.
 */
#include "fuzz_util.h"

#include "authfile.h"
#include "cm/alloc.h"
#include "cm/err.h"

#include <string.h>

static const char *const NAMES[8] = {
    "codex-a@example.com-plus.json", "claude-b@example.com.json",
    "gemini-c@example.com-proj.json", "qwen-d@example.com.json",
    "iflow-e@example.com-1700000000.json", "antigravity-f.json",
    "kimi-g.json", "h.json",
};

/* Minimal valid files, one per provider (for the refresh answers). */
static const char *const FILES[5] = {
    "{\"type\":\"codex\",\"email\":\"a@example.com\",\"access_token\":\"at\","
    "\"refresh_token\":\"rt\",\"expired\":\"2025-01-01T00:00:00Z\"}",
    "{\"type\":\"claude\",\"email\":\"b@example.com\",\"access_token\":\"at\","
    "\"refresh_token\":\"rt\",\"expired\":\"2025-01-01T00:00:00Z\"}",
    "{\"type\":\"gemini\",\"email\":\"c@example.com\",\"project_id\":\"proj\","
    "\"token\":{\"access_token\":\"at\",\"refresh_token\":\"rt\",\"expiry\":\"2025-01-01T00:00:00Z\"}}",
    "{\"type\":\"qwen\",\"email\":\"d@example.com\",\"access_token\":\"at\","
    "\"refresh_token\":\"rt\",\"resource_url\":\"portal.qwen.ai\"}",
    "{\"type\":\"iflow\",\"email\":\"e@example.com\",\"access_token\":\"at\","
    "\"refresh_token\":\"rt\",\"api_key\":\"k\"}",
};

static void roundtrip(const struct cp_authfile *af)
{
    char *s = NULL;
    size_t n = 0;
    struct cp_authfile *again = NULL;
    struct cp_authfile_err e;
    int rc = cp_authfile_serialize(af, &s, &n);
    FZ_ASSERT(rc == CM_OK || rc == CM_ERR_NOMEM);
    if (rc != CM_OK)
        return;
    rc = cp_authfile_parse(af->name, s, n, &again, &e);
    if (rc != CM_OK)
        fprintf(stderr, "serialized auth file does not parse again: %s (%s)\n", e.msg, e.field);
    FZ_ASSERT(rc == CM_OK);
    FZ_ASSERT(again->provider == af->provider);
    cp_authfile_free(again);
    cm_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    struct cp_authfile *af = NULL;
    struct cp_authfile_err e;
    int rc;

    fz_init();
    memset(&e, 0, sizeof e);
    if (!(mode & 128)) {
        rc = cp_authfile_parse(NAMES[mode & 7], (const char *)in.p, in.n, &af, &e);
        if (rc != CM_OK) {
            FZ_ASSERT(af == NULL && e.rc == rc);
            FZ_ASSERT(memchr(e.msg, '\0', sizeof e.msg) != NULL);
            return 0;
        }
        FZ_ASSERT(af != NULL);
        (void)cp_authfile_refresh_lead(af);
        (void)cp_authfile_needs_refresh(af, NULL);
        (void)cp_authfile_is_expired(af, NULL);
        if (cp_authfile_provider_supported(af->provider))
            roundtrip(af);
        cp_authfile_free(af);
        return 0;
    }
    {
        unsigned prov = ((mode >> 1) & 7) % 5;
        const char *f = FILES[prov];
        rc = cp_authfile_parse(NAMES[prov], f, strlen(f), &af, &e);
        FZ_ASSERT(rc == CM_OK);
        if (mode & 1)
            rc = cp_authfile_apply_iflow_userinfo(af, (const char *)in.p, in.n, &e);
        else
            rc = cp_authfile_apply_refresh(af, (const char *)in.p, in.n, NULL, &e);
        if (rc != CM_OK)
            FZ_ASSERT(e.rc == rc && memchr(e.msg, '\0', sizeof e.msg) != NULL);
        roundtrip(af);
        cp_authfile_free(af);
    }
    return 0;
}
