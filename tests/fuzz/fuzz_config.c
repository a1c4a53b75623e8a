/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - cliproxyd's config loader (cliproxyd/config.h, cp_config_load_mem: libcyaml
 * with CLIProxyAPI's schema, the headers read with libyaml, cp_config_check) on arbitrary
 * YAML. Invariants: CM_OK gives a config whose implemented strings are all set; a failure
 * leaves *out untouched and a NUL-terminated message; nothing leaks.
 */
#include "fuzz_util.h"

#include "cm/cfg.h"
#include "cm/err.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cp_config *cfg = NULL;
    char err[CM_CFG_ERR_MAX];
    int rc;

    fz_init();
    setenv("HOME", "/nonexistent-fuzz-home", 0); /* auth-dir "~" expands from it */
    memset(err, 'x', sizeof err);
    rc = cp_config_load_mem("config.yaml", (const char *)data, size, &cfg, err, sizeof err);
    FZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
    if (rc == CM_OK) {
        FZ_ASSERT(cfg != NULL);
        FZ_ASSERT(cfg->host != NULL && cfg->auth_dir != NULL);
        FZ_ASSERT(cfg->port >= 1 && cfg->port <= 65535);
        FZ_ASSERT(cfg->routing != NULL && cfg->remote_management != NULL &&
                  cfg->upstreams != NULL);
        cp_config_free(cfg);
    } else {
        FZ_ASSERT(cfg == NULL);
        FZ_ASSERT(err[0] != '\0');
    }
    return 0;
}
