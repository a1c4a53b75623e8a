/* SPDX-License-Identifier: MIT */
/*
 * scheduler.h - the credential scheduler: which OAuth credential serves a request now,
 * and how upstream results cool credentials down (spec cliproxyapi.md section 4,
 * with the rules of issue 3 where they differ: short transient cooldowns that never
 * leave a model without a credential, 404 as a short cooldown, 401 -> needs re-login).
 *
 * Pure: no I/O, no sleeping; time only from the injected clock (monotonic time for
 * cooldowns, wall time only to label snapshots). Every function is thread-safe (one
 * mutex inside, held for short critical sections; pick and mark do not allocate).
 * (Named scheduler.h, not sched.h, so it never shadows the system <sched.h>.)
 */
#ifndef CP_SCHED_H
#define CP_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "cm/clock.h"

/** Caps: more credentials -> CM_ERR_LIMIT; longer ids -> CM_ERR_LIMIT; more models -> LIMIT. */
#define CP_SCHED_MAX_CREDS 10000
#define CP_SCHED_MAX_ID_LEN 255
#define CP_SCHED_MAX_MODELS 1024
/** Hint-less 429 ladder: 1 s << level, capped here. 402/403 cool this long. */
#define CP_SCHED_QUOTA_MAX_MS (30LL * 60 * 1000)
#define CP_SCHED_PAYMENT_MS (30LL * 60 * 1000)
/** 404: a short, soft cooldown (not CLIProxyAPI's 12 h; its issue #5476). */
#define CP_SCHED_NOT_FOUND_MS (30LL * 1000)
/** transient_cooldown_s == 0 means this (CLIProxyAPI's 0 means 60 s; we default lower). */
#define CP_SCHED_TRANSIENT_DEFAULT_S 5

struct cp_sched; /* opaque */

enum cp_sched_strategy { CP_SCHED_ROUND_ROBIN = 0, CP_SCHED_FILL_FIRST };

/** Runtime settings from config.yaml (routing.strategy, disable-cooling,
 *  transient-error-cooldown-seconds: 0 -> CP_SCHED_TRANSIENT_DEFAULT_S, -1 -> none, N -> N s). */
struct cp_sched_config {
    enum cp_sched_strategy strategy;
    int disable_cooling;
    int transient_cooldown_s;
};

/**
 * One credential as given to cp_sched_add()/cp_sched_update(). Everything is borrowed
 * for the call only; the scheduler copies what it keeps.
 */
struct cp_sched_cred {
    const char *id;            /* auth file name; required, 1..CP_SCHED_MAX_ID_LEN bytes */
    const char *provider;      /* "codex", "claude", ...; required */
    const char *prefix;        /* NULL or "" = none; serves "prefix/<model>" too */
    int priority;              /* higher wins */
    int disabled;              /* never picked */
    int disable_cooling;       /* -1 = follow the global flag, 0 = cool, 1 = never block */
    const char *const *models; /* exact names served (the provider's list) */
    size_t n_models;
    const char *const *excluded; /* exact, "pfx-*", "*-sfx", "*sub*" (case-insensitive) */
    size_t n_excluded;
};

/** Transport failures (no HTTP status). All count as transient. */
enum cp_sched_transport {
    CP_SCHED_TX_NONE = 0,
    CP_SCHED_TX_CONNECT,
    CP_SCHED_TX_RESET,
    CP_SCHED_TX_TIMEOUT,
    CP_SCHED_TX_STREAM_CLOSED /* stream ended before its completion event */
};

/** What one upstream attempt ended with. Zero-initialised = "no status, no hint". */
struct cp_sched_outcome {
    int status; /* HTTP status; ignored when transport != NONE */
    enum cp_sched_transport transport;
    int has_hint;          /* retry_after_s is meaningful */
    int64_t retry_after_s; /* upstream reset hint, seconds from now (>= 0) */
    int request_scoped;    /* the request itself was bad (400/422 ...) */
};

/** How an outcome is treated (see cp_sched_classify()). */
enum cp_sched_class {
    CP_SCHED_C_SUCCESS = 0, /* 1xx-3xx: model state reset */
    CP_SCHED_C_REQUEST,     /* request-scoped: no cooldown, no failover */
    CP_SCHED_C_QUOTA,       /* 429: hint exactly, else ladder 1,2,4.. s capped 30 min */
    CP_SCHED_C_TRANSIENT,   /* 408/5xx/transport/other non-request 4xx: short soft cooldown */
    CP_SCHED_C_RELOGIN,     /* 401 (after the caller's refresh-and-retry) */
    CP_SCHED_C_PAYMENT,     /* 402/403: 30 min */
    CP_SCHED_C_NOT_FOUND    /* 404: 30 s soft cooldown */
};

/** Why a (credential, model) is cooling. */
enum cp_sched_reason {
    CP_SCHED_R_NONE = 0,
    CP_SCHED_R_QUOTA,     /* blocks; counts for "all cooling" (429 model_cooldown) */
    CP_SCHED_R_TRANSIENT, /* soft: used anyway when nothing else is left */
    CP_SCHED_R_PAYMENT,   /* blocks; not quota (503 when nothing is left) */
    CP_SCHED_R_NOT_FOUND  /* soft, like transient */
};

/** A pick request. Borrowed for the call. */
struct cp_sched_pick_req {
    const char *const *providers; /* candidate providers; n_providers 0 = any provider */
    size_t n_providers;
    const char *model;        /* as requested, maybe "prefix/name"; required */
    const char *const *tried; /* ids already tried in this request (skipped) */
    size_t n_tried;
};

enum cp_sched_verdict {
    CP_SCHED_PICKED = 0,   /* id written; use it */
    CP_SCHED_NONE_SERVING, /* no credential of these providers serves the model (404-ish) */
    CP_SCHED_EXHAUSTED,    /* every serving credential is in the tried set (return last error) */
    CP_SCHED_ALL_COOLING,  /* blocked, at least one by quota: 429 model_cooldown + Retry-After */
    CP_SCHED_UNAVAILABLE /* blocked by re-login / disabled / 402-403 only (503 auth_unavailable) */
};

struct cp_sched_pick {
    enum cp_sched_verdict verdict;
    int forced;            /* PICKED although soft-cooling: it was the one ending first */
    int64_t retry_at_ms;   /* ALL_COOLING/UNAVAILABLE: earliest end of a timed cooldown among
                              the blocked candidates (monotonic ms), 0 if none */
    int64_t retry_after_s; /* the same as whole seconds from now, rounded up (>= 1), 0 if none */
};

/** Snapshot of one model's state on a credential. */
struct cp_sched_model_info {
    const char *model;
    enum cp_sched_reason reason; /* NONE when not cooling now */
    int64_t until_mono_ms;       /* cooldown end, 0 when not cooling */
    int64_t until_wall_ms;       /* the same in wall time (ms since epoch), 0 when not cooling */
    int backoff_level;           /* hint-less 429 ladder level */
    int last_status;             /* last HTTP status marked (0 = none / transport) */
    enum cp_sched_transport last_transport;
};

enum cp_sched_state { CP_SCHED_ACTIVE = 0, CP_SCHED_COOLING, CP_SCHED_RELOGIN, CP_SCHED_DISABLED };

/** Snapshot of one credential. */
struct cp_sched_cred_info {
    const char *id, *provider, *prefix; /* prefix "" when none */
    int priority;
    enum cp_sched_state state;   /* DISABLED > RELOGIN > COOLING (any model cooling) > ACTIVE */
    enum cp_sched_reason reason; /* COOLING: reason of the earliest-ending cooldown */
    int64_t until_mono_ms, until_wall_ms; /* COOLING: that earliest end */
    int cooling_disabled; /* disable-cooling in force: state recorded, not blocking */
    int last_status;      /* last HTTP status marked on any model (0 = none) */
    enum cp_sched_transport last_transport;
    struct cp_sched_model_info *models; /* only models with any state (cooling, level, status) */
    size_t n_models;
};

struct cp_sched_snapshot {
    int64_t now_mono_ms, now_wall_ms;
    struct cp_sched_cred_info *creds; /* sorted by id */
    size_t n;
};

/**
 * New empty scheduler using @p clock (borrowed, must outlive it; NULL = real clock)
 * with default config (round-robin, cooling on, 5 s transient). *out owned by the
 * caller, freed with cp_sched_free(). CM_ERR_INVAL (out NULL), CM_ERR_NOMEM.
 */
int cp_sched_new(const struct cm_clock *clock, struct cp_sched **out);

/** Frees @p s and everything in it; NULL is a no-op. No other thread may be using it. */
void cp_sched_free(struct cp_sched *s);

/** Applies @p cfg (copied). CM_ERR_INVAL on NULL, unknown strategy or transient < -1. */
int cp_sched_configure(struct cp_sched *s, const struct cp_sched_config *cfg);

/**
 * Adds a credential. CM_ERR_INVAL (missing id/provider/model, NULL lists with n > 0),
 * CM_ERR_LIMIT (caps above), CM_ERR_EXISTS (id present; use cp_sched_update), CM_ERR_NOMEM.
 * On error nothing changes.
 */
int cp_sched_add(struct cp_sched *s, const struct cp_sched_cred *c);

/**
 * Replaces the settings of credential c->id (file changed). Clears "needs re-login";
 * keeps cooldowns and ladder levels of models still served, drops the others.
 * Errors as cp_sched_add, CM_ERR_NOTFOUND instead of EXISTS. On error nothing changes.
 */
int cp_sched_update(struct cp_sched *s, const struct cp_sched_cred *c);

/** 1 when @p s matches the oauth-excluded-models wildcard @p pat (exact, "pfx*", "*sfx",
 * "*sub*"; case-insensitive), else 0. Pure. */
int cp_sched_pattern_match(const char *pat, const char *s);

/** Removes credential @p id. CM_ERR_INVAL, CM_ERR_NOTFOUND. */
int cp_sched_remove(struct cp_sched *s, const char *id);

/** Sets the disabled flag of @p id (management PATCH status). CM_ERR_INVAL, CM_ERR_NOTFOUND. */
int cp_sched_set_disabled(struct cp_sched *s, const char *id, int disabled);

/** Marks @p id "needs re-login" (refresh failed for good) until cp_sched_update(). Errors as above.
 */
int cp_sched_set_relogin(struct cp_sched *s, const char *id);

/** Clears every model cooldown and ladder level of @p id (not re-login, not disabled). */
int cp_sched_reset_quota(struct cp_sched *s, const char *id);

/**
 * Whether any credential of @p provider (NULL = any provider) serves @p model (exactly or as
 * "<its prefix>/<model>"), whatever its state: decides which upstream format a request is
 * translated to before a credential is picked. 1 or 0 (0 also for NULL @p s / @p model).
 */
int cp_sched_serves(struct cp_sched *s, const char *provider, const char *model);

/**
 * Picks the credential for @p req now. Candidates: credentials of the providers that
 * serve the model (exactly, or as "<their prefix>/<model>"), not excluded, not in the
 * tried set. Among the available ones (not disabled, not re-login, not cooling - or
 * cooling with disable-cooling), the highest-priority bucket wins, ordered by id;
 * round-robin keeps a cursor per (providers, model), fill-first takes the first. If
 * none is available but some are in a soft (transient/404) cooldown, the one whose
 * cooldown ends first is picked (forced = 1). Otherwise the verdict says why.
 * On CM_OK *out is filled and, for PICKED, the id is copied NUL-terminated to @p id_buf.
 * CM_ERR_INVAL (NULL args, empty model), CM_ERR_LIMIT (@p id_cap too small for the
 * picked id; nothing is written and the cursor does not move). Never allocates.
 */
int cp_sched_pick(struct cp_sched *s, const struct cp_sched_pick_req *req, char *id_buf,
                  size_t id_cap, struct cp_sched_pick *out);

/**
 * Records the result of one attempt on credential @p id for @p model (the model string
 * given to pick; NULL = every model of the credential, e.g. an account-wide 429).
 * Effects by cp_sched_classify(): SUCCESS resets the model state; QUOTA cools exactly
 * the hint, else 1 s << level (capped 30 min, level++ until the cap); TRANSIENT cools
 * for the configured transient seconds (none when -1); NOT_FOUND 30 s; PAYMENT 30 min;
 * RELOGIN marks the credential needs re-login; REQUEST changes nothing but last status.
 * A new cooldown never shortens a longer one already running. With disable-cooling
 * the state is recorded but not blocking. CM_ERR_INVAL, CM_ERR_NOTFOUND (unknown id,
 * or the credential does not serve @p model). Never allocates.
 */
int cp_sched_mark_result(struct cp_sched *s, const char *id, const char *model,
                         const struct cp_sched_outcome *o);

/** Class of an outcome (pure, no state). NULL -> CP_SCHED_C_TRANSIENT. */
enum cp_sched_class cp_sched_classify(const struct cp_sched_outcome *o);

/**
 * Should the caller try another credential within the same request after @p o (before
 * the first byte went to the client)? 1 for quota, transient, 401/402/403/404; 0 for
 * success and request-scoped errors. Pure.
 */
int cp_sched_should_failover(const struct cp_sched_outcome *o);

/**
 * Copies the state of every credential (for the management API and metrics). *out is
 * one allocation owned by the caller, freed with cp_sched_snapshot_free(); it does not
 * change afterwards. CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int cp_sched_snapshot(struct cp_sched *s, struct cp_sched_snapshot **out);

/** Frees a snapshot; NULL is a no-op. */
void cp_sched_snapshot_free(struct cp_sched_snapshot *snap);

/** Short names for logs/JSON: "active", "cooling", "needs re-login", "disabled"; "quota" ... */
const char *cp_sched_state_str(enum cp_sched_state st);
const char *cp_sched_reason_str(enum cp_sched_reason r);

#endif
