/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - what meterctl's commands share: the context (global options, resolved config,
 * the API client, output streams), the global option table, exit codes, and the output
 * helpers (error sentences with a hint, JSON, tables, USD formatting). One mc_cmd_*()
 * per command family; each parses its own arguments (global options allowed anywhere),
 * does its work and returns an exit code. Commands print; nothing below them does.
 */
#ifndef MC_CMD_H
#define MC_CMD_H

#include "api.h"
#include "args.h"
#include "conf.h"
#include "table.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

/** Exit codes (also in --help). */
enum mc_exit {
    MC_EXIT_OK = 0,
    MC_EXIT_FAIL = 1,        /* meterd refused, a check failed, bad data */
    MC_EXIT_USAGE = 2,       /* bad command line or configuration */
    MC_EXIT_UNREACHABLE = 3, /* meterd did not answer (connection, timeout) */
    MC_EXIT_AUTH = 4,        /* the access token / user id was refused */
};

/** Global option ids (mc_global_opts); command options use ids below MC_GOPT_BASE. */
enum {
    MC_GOPT_BASE = 1000,
    MC_GOPT_URL,
    MC_GOPT_TOKEN,
    MC_GOPT_USER,
    MC_GOPT_CONFIG,
    MC_GOPT_JSON,
    MC_GOPT_COLOR,
    MC_GOPT_NO_COLOR,
    MC_GOPT_TIMEOUT,
    MC_GOPT_VERBOSE,
    MC_GOPT_HELP,
    MC_GOPT_VERSION,
};

extern const struct mc_opt mc_global_opts[];

struct mc_ctx {
    /* from the command line */
    int json;                   /* --json */
    int color_mode;             /* --color: -1 auto, 0 never, 1 always */
    int verbose;                /* -v */
    int help;                   /* -h seen: the command prints its usage */
    long timeout_s;             /* --timeout */
    const char *config_path;    /* --config (borrowed) */
    struct mc_conf_flags flags; /* --url, --access-token, --user, verify's --cliproxy-* */
    /* the environment (injected for tests) */
    FILE *out, *err;
    mc_getenv_fn env;
    void *env_ud;
    int out_tty, err_tty;
    int64_t now; /* unix seconds */
    /* resolved by mc_ctx_open() */
    int color, color_err;
    struct mc_conf conf;
    struct mc_api api;
    int opened;
};

/** Sets defaults; @p out / @p err are the output streams. */
void mc_ctx_init(struct mc_ctx *c, FILE *out, FILE *err, mc_getenv_fn env, void *env_ud);
/** Frees what mc_ctx_open() made (secrets wiped). */
void mc_ctx_cleanup(struct mc_ctx *c);

/**
 * Applies global option @p a (after mc_args_next()). CM_OK; CM_ERR_NOTFOUND when @p a is
 * not a global option; CM_ERR_INVAL with @p err for a bad value.
 */
int mc_global_opt(struct mc_ctx *c, const struct mc_arg *a, char *err, size_t errlen);

/**
 * Resolves the configuration (flags > env > file > defaults) and opens the API client.
 * @p need_token: refuse to go on without an access token. Returns MC_EXIT_OK, or prints
 * the problem and returns the exit code.
 */
int mc_ctx_open(struct mc_ctx *c, int need_token);

/** "meterctl: error: <printf>" on stderr (red on a TTY). */
void mc_errorf(struct mc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** "meterctl: warning: <printf>" on stderr (yellow on a TTY). */
void mc_warnf(struct mc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Prints a failed API call (@p what: "GET /api/user/") with a hint for the kind of failure
 * (where the URL / token came from, a route missing in an older meterd) and returns the
 * exit code for it.
 */
int mc_fail_api(struct mc_ctx *c, const char *what, const struct mc_api_err *e);

/** Prints "meterctl: <msg>" and the command's @p usage text; returns MC_EXIT_USAGE. */
int mc_usage_error(struct mc_ctx *c, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Prints @p v as one line of JSON on stdout. MC_EXIT_OK or MC_EXIT_FAIL (OOM). */
int mc_print_json(struct mc_ctx *c, const cJSON *v);

/** Renders @p t on stdout (coloured when stdout is a TTY). MC_EXIT_OK or MC_EXIT_FAIL. */
int mc_print_table(struct mc_ctx *c, const struct mc_table *t);

/**
 * Parses the remaining options of a command that takes none of its own besides the
 * globals, collecting up to @p max positionals into @p pos (*@p npos). Returns
 * MC_EXIT_OK or prints and returns MC_EXIT_USAGE.
 */
int mc_parse_simple(struct mc_ctx *c, int argc, char **argv, const char *usage, const char **pos,
                    size_t max, size_t *npos);

/** A subcommand: its word and its handler (argv after the word); NULL: print the usage. */
struct mc_sub {
    const char *name;
    int (*run)(struct mc_ctx *c, int argc, char **argv);
};

/**
 * Runs the subcommand of command @p family ("user") that argv[0] names, from @p subs
 * (@p n entries). No word: the usage on stderr, MC_EXIT_USAGE; -h/--help: the usage on
 * stdout, MC_EXIT_OK; an unknown word: mc_usage_error(). Else the subcommand's exit code.
 */
int mc_dispatch(struct mc_ctx *c, int argc, char **argv, const char *usage, const char *family,
                const struct mc_sub *subs, size_t n);

/**
 * The start of a `... list` command: no options of its own, -h prints @p usage, the client
 * is opened (an access token needed), and every page of @p path (at most @p max items) is
 * read into *@p items (caller frees). MC_EXIT_OK with *@p items set; MC_EXIT_OK with
 * *@p items NULL after -h; else the problem has been printed and its exit code returned.
 */
int mc_list_fetch(struct mc_ctx *c, int argc, char **argv, const char *usage, const char *path,
                  size_t max, cJSON **items);

/** Member @p name of object @p o as an integer; 0 when absent or not one. */
int64_t mc_json_num(const cJSON *o, const char *name);
/** Member @p name of object @p o as a string (borrowed from @p o); "" when absent or not one. */
const char *mc_json_str(const cJSON *o, const char *name);

/** The exit code for a cm_err from an API call. */
int mc_exit_of(int rc);

/** "$2.50", "$0.075", "$0.000004": at least 2 and at most 6 decimals (9 below $0.00001). */
const char *mc_fmt_usd(double usd, char *buf, size_t cap);
/** A unix time as "YYYY-MM-DD HH:MM UTC"; -1 as "never". */
const char *mc_fmt_time(int64_t t, char *buf, size_t cap);
/** A ratio as the shortest of %.12g. */
const char *mc_fmt_ratio(double r, char *buf, size_t cap);

/** "✓" / "✗" (coloured green / red when @p color). Static strings. */
const char *mc_mark(int ok, int color);

/**
 * QuotaPerUnit of meterd (GET /api/status, public) as a pricing snapshot for quota <-> USD;
 * *@p out freed with mt_pricing_free(). MC_EXIT_OK or prints and returns the exit code.
 */
struct mt_pricing;
int mc_fetch_units(struct mc_ctx *c, struct mt_pricing **out);

/**
 * The options (data of GET /api/option/, root only) into *@p options (caller frees).
 * MC_EXIT_OK or prints and returns the exit code.
 */
int mc_fetch_options(struct mc_ctx *c, cJSON **options);

/* the commands: argv starts after the command word */
int mc_cmd_price(struct mc_ctx *c, int argc, char **argv);
int mc_cmd_user(struct mc_ctx *c, int argc, char **argv);
int mc_cmd_topup(struct mc_ctx *c, int argc, char **argv);
int mc_cmd_token(struct mc_ctx *c, int argc, char **argv);
int mc_cmd_channel(struct mc_ctx *c, int argc, char **argv);
int mc_cmd_verify(struct mc_ctx *c, int argc, char **argv);

#endif
