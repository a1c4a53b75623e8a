/* SPDX-License-Identifier: MIT */
/*
 * upreq.h - one upstream call as a provider module describes it: the URL and the header
 * lines ("Name: value"). Every provider (codex.c, claude.c, ...) fills one; the relay sends
 * it with cm_httpc. Headers may carry a secret (Authorization): cleanup wipes them.
 */
#ifndef CP_PROVIDERS_UPREQ_H
#define CP_PROVIDERS_UPREQ_H

#include <stddef.h>

#define CP_UPREQ_MAX_HEADERS 64

/** URL and header lines; all owned, freed (and wiped) by cp_upreq_cleanup(). */
struct cp_upreq {
    char *url;
    char *headers[CP_UPREQ_MAX_HEADERS]; /* "Name: value" */
    size_t n_headers;
};

/** Sets the URL to "<base><path>" (replacing any). CM_OK, CM_ERR_NOMEM. */
int cp_upreq_url(struct cp_upreq *r, const char *base, const char *path);

/**
 * Appends "name: value". CM_OK, CM_ERR_LIMIT (CP_UPREQ_MAX_HEADERS reached), CM_ERR_NOMEM.
 * Nothing is deduplicated: use cp_upreq_set() for a header that may already be there.
 */
int cp_upreq_add(struct cp_upreq *r, const char *name, const char *value);

/** Replaces the header @p name (case-insensitive) if present, else appends it. */
int cp_upreq_set(struct cp_upreq *r, const char *name, const char *value);

/** The value of header @p name (case-insensitive; borrowed) or NULL. */
const char *cp_upreq_get(const struct cp_upreq *r, const char *name);

/** Frees and wipes everything; @p r is zeroed. Safe on a zeroed struct and twice. */
void cp_upreq_cleanup(struct cp_upreq *r);

#endif
