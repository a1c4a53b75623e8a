/* SPDX-License-Identifier: MIT */
/*
 * args.h - meterctl's command-line tokenizer and the value parsers its commands share.
 *
 * The tokenizer walks argv once: "--name value", "--name=value", short flags ("-v"), "--"
 * (everything after it is positional), positionals in between. Each call looks the option
 * up in a list of tables (the command's, then the global one), so global options may stand
 * anywhere on the line. Value parsers are strict (the whole string, no silent 0) and say
 * what they expected. Pure: no I/O, no globals, no allocation.
 */
#ifndef MC_ARGS_H
#define MC_ARGS_H

#include <stddef.h>
#include <stdint.h>

/** One option of a table; a table ends with an entry whose name is NULL. */
struct mc_opt {
    const char *name; /* long name without the leading "--" */
    char short_name;  /* 'v' for -v, or 0 */
    int id;           /* returned in struct mc_arg; unique across the tables of one call */
    int has_arg;      /* 1: takes a value (next argv word or after '=') */
};

/** Cursor over argv; caller-owned, filled by mc_args_init(). */
struct mc_args {
    int argc;
    char **argv;  /* borrowed */
    int i;        /* next word */
    int only_pos; /* "--" was seen */
};

enum mc_arg_kind { MC_ARG_END = 0, MC_ARG_POS, MC_ARG_OPT };

/** One token. value and name are borrowed from argv / the table. */
struct mc_arg {
    enum mc_arg_kind kind;
    int id;            /* MC_ARG_OPT: the option's id */
    const char *name;  /* MC_ARG_OPT: its long name (for messages) */
    const char *value; /* MC_ARG_POS: the word; MC_ARG_OPT: the value, NULL for a flag */
};

/** Starts walking @p argv at index 0 (pass argv + 1 to skip the program name). */
void mc_args_init(struct mc_args *a, int argc, char **argv);

/**
 * Next token into *@p out. @p tables is a NULL-terminated list of option tables, searched
 * in order. CM_OK (kind MC_ARG_END when argv is used up); CM_ERR_INVAL with one sentence in
 * @p err for an unknown option, a missing value, or a value given to a flag ("--json=1").
 * A lone "-" is a positional (stdin, by convention).
 */
int mc_args_next(struct mc_args *a, const struct mc_opt *const *tables, struct mc_arg *out,
                 char *err, size_t errlen);

/**
 * A decimal integer in [@p min, @p max], all of @p s; '_' may group digits ("5_000_000").
 * CM_OK with *@p out; CM_ERR_INVAL otherwise (NULL or empty @p s included).
 */
int mc_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/**
 * A USD amount: a finite decimal number >= 0, an optional leading '$', no exponent, no
 * hex ("2.5", "$0.15", "10"). CM_OK with *@p out; CM_ERR_INVAL otherwise.
 */
int mc_parse_usd(const char *s, double *out);

/**
 * A token expiry for NewAPI's tokens.expired_time (unix seconds, -1 = never), relative to
 * @p now (unix seconds): "never" or "-1" -> -1; "30d", "12h", "90m", "3600s" -> now + that;
 * "YYYY-MM-DD" -> that day 00:00:00 UTC; "YYYY-MM-DDTHH:MM[:SS]" (or a space instead of
 * 'T', optional trailing 'Z') -> that UTC time; a plain integer >= 1000000000 -> itself.
 * A time not after @p now is refused. CM_OK with *@p out; CM_ERR_INVAL with @p err.
 */
int mc_parse_expires(const char *s, int64_t now, int64_t *out, char *err, size_t errlen);

/**
 * A channel type: a number 0..1000 or one of NewAPI's names (openai 1, azure 3, ollama 4,
 * anthropic|claude 14, gemini 24, aws 33, vertex 41, deepseek 43, xai 48, codex 57; any
 * case). CM_OK with *@p out; CM_ERR_INVAL.
 */
int mc_parse_channel_type(const char *s, int *out);

/** The name of channel type @p type ("openai"), or NULL when it has none here. Static. */
const char *mc_channel_type_name(int type);

/**
 * A comma list cleaned for NewAPI (which does not trim): blanks around entries and empty
 * entries dropped, order kept ("a, b,,c " -> "a,b,c"), into @p buf (@p cap bytes).
 * CM_OK; CM_ERR_NOTFOUND when no entry is left; CM_ERR_LIMIT when it does not fit.
 */
int mc_clean_csv(const char *s, char *buf, size_t cap);

#endif
