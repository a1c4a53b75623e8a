/* SPDX-License-Identifier: MIT */
/*
 * conf.h - where meterctl finds meterd and its credentials, in this order of precedence:
 * command-line flags > environment (METERD_URL, METERD_TOKEN, METERD_USER, CLIPROXY_URL,
 * CLIPROXY_KEY) > the config file (key=value lines, default ~/.config/meterctl) > defaults
 * (url http://127.0.0.1:3000, user 1). Every value remembers where it came from, so errors
 * and --verbose can say "token from METERD_TOKEN". The resolver is pure: the environment
 * is a callback and the file arrives as text, so precedence is unit-tested without touching
 * either; mc_conf_read_file() and mc_conf_default_path() are the only I/O.
 */
#ifndef MC_CONF_H
#define MC_CONF_H

#include <stddef.h>
#include <stdint.h>

#define MC_CONF_DEFAULT_URL "http://127.0.0.1:3000"
#define MC_CONF_DEFAULT_USER 1
#define MC_CONF_FILE_MAX (64 * 1024) /* a bigger config file is refused */
#define MC_CONF_PATH_MAX 4096

enum mc_conf_key {
    MC_CONF_URL = 0,      /* meterd base URL */
    MC_CONF_TOKEN,        /* access token (secret) */
    MC_CONF_USER,         /* New-Api-User id */
    MC_CONF_CLIPROXY_URL, /* verify: cliproxyd base URL */
    MC_CONF_CLIPROXY_KEY, /* verify: cliproxyd client key (secret) */
    MC_CONF__COUNT
};

/** The resolved configuration. Strings are owned (cm_malloc); secrets are wiped on cleanup. */
struct mc_conf {
    char *val[MC_CONF__COUNT];    /* NULL when unset */
    char src[MC_CONF__COUNT][96]; /* "--url", "METERD_URL", "<file>:3", "default" */
    int64_t user;                 /* parsed val[MC_CONF_USER] after mc_conf_resolve() */
};

/** Flag values from the command line (borrowed argv strings; NULL = not given). */
struct mc_conf_flags {
    const char *val[MC_CONF__COUNT];
};

/** Environment lookup: the value of @p name or NULL. getenv() fits via a small wrapper. */
typedef const char *(*mc_getenv_fn)(const char *name, void *ud);

void mc_conf_init(struct mc_conf *c);
/** Frees the strings (secrets zeroed first); the struct may be reused after mc_conf_init(). */
void mc_conf_cleanup(struct mc_conf *c);

/** The key's file name ("url", "token", ...) and its environment variable name. Static. */
const char *mc_conf_key_name(enum mc_conf_key k);
const char *mc_conf_env_name(enum mc_conf_key k);

/**
 * Applies the layers in order: defaults, then the file text @p file (@p len bytes, may be
 * NULL: no file; @p file_name names it in sources and messages), then the environment via
 * @p env (may be NULL), then @p flags (may be NULL). Empty values ("METERD_URL=") count
 * as unset. The file: one "key = value" per line, '#' comments and blank lines skipped,
 * blanks around key and value trimmed, value optionally in matching '"' or '\'' quotes;
 * keys are the names of mc_conf_key_name() or the environment names (METERD_TOKEN=...).
 * Then checks: url must be http:// or https:// (a trailing '/' is dropped), user a
 * positive integer. CM_OK; CM_ERR_INVAL / CM_ERR_PARSE with one sentence in @p err that
 * names the source ("METERD_USER=\"x\" is not a user id"); CM_ERR_NOMEM. An unknown key in
 * the file is not an error: @p warn (may be NULL) gets "<file>:<line>: unknown key \"k\"".
 */
int mc_conf_resolve(struct mc_conf *c, const char *file, size_t len, const char *file_name,
                    mc_getenv_fn env, void *env_ud, const struct mc_conf_flags *flags, char *err,
                    size_t errlen, char *warn, size_t warnlen);

/**
 * The default config path into @p buf: $XDG_CONFIG_HOME/meterctl, else
 * $HOME/.config/meterctl (via @p env). CM_OK; CM_ERR_NOTFOUND when neither is set;
 * CM_ERR_LIMIT when it does not fit.
 */
int mc_conf_default_path(mc_getenv_fn env, void *env_ud, char *buf, size_t cap);

/**
 * Reads the config file @p path (a directory means @p path/config) into *@p out
 * (cm_malloc'd, NUL-terminated, caller frees; zero it first, it may hold a token) and
 * *@p len. CM_OK; CM_ERR_NOTFOUND when it does not exist; CM_ERR_IO / CM_ERR_LIMIT with a
 * sentence in @p err. @p insecure (may be NULL) is set to 1 when the file is readable by
 * group or others (the caller warns: it may hold an access token).
 */
int mc_conf_read_file(const char *path, char **out, size_t *len, int *insecure, char *err,
                      size_t errlen);

#endif
