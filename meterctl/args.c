/* SPDX-License-Identifier: MIT */
/*
 * args.c - the argv tokenizer and strict value parsers of meterctl (see args.h). Dates are
 * converted with the civil-from-days arithmetic (no timegm(), no TZ), so parsing never
 * depends on the machine's time zone.
 */
#include "args.h"

#include "cm/err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void mc_args_init(struct mc_args *a, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->only_pos = 0;
}

static const struct mc_opt *find_long(const struct mc_opt *const *tables, const char *name,
                                      size_t len)
{
    for (size_t t = 0; tables && tables[t]; t++)
        for (const struct mc_opt *o = tables[t]; o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

static const struct mc_opt *find_short(const struct mc_opt *const *tables, char c)
{
    for (size_t t = 0; tables && tables[t]; t++)
        for (const struct mc_opt *o = tables[t]; o->name; o++)
            if (o->short_name && o->short_name == c)
                return o;
    return NULL;
}

int mc_args_next(struct mc_args *a, const struct mc_opt *const *tables, struct mc_arg *out,
                 char *err, size_t errlen)
{
    const struct mc_opt *o;
    const char *w, *eq;

    memset(out, 0, sizeof *out);
    if (errlen)
        err[0] = '\0';
    for (;;) {
        if (a->i >= a->argc)
            return CM_OK; /* MC_ARG_END */
        w = a->argv[a->i++];
        if (!a->only_pos && strcmp(w, "--") == 0) {
            a->only_pos = 1;
            continue;
        }
        break;
    }
    if (a->only_pos || w[0] != '-' || w[1] == '\0') {
        out->kind = MC_ARG_POS;
        out->value = w;
        return CM_OK;
    }
    if (w[1] != '-') { /* -v: one short flag (no bundling: nothing here needs it) */
        o = w[2] == '\0' ? find_short(tables, w[1]) : NULL;
        if (!o) {
            /* "-5" as a value-looking positional (a negative number) is still refused:
             * no command takes one, and a typo of "--x" should not pass silently */
            snprintf(err, errlen, "unknown option \"%s\"", w);
            return CM_ERR_INVAL;
        }
        eq = NULL;
    } else {
        eq = strchr(w + 2, '=');
        o = find_long(tables, w + 2, eq ? (size_t)(eq - (w + 2)) : strlen(w + 2));
        if (!o) {
            snprintf(err, errlen, "unknown option \"%.*s\"", eq ? (int)(eq - w) : (int)strlen(w),
                     w);
            return CM_ERR_INVAL;
        }
    }
    out->kind = MC_ARG_OPT;
    out->id = o->id;
    out->name = o->name;
    if (!o->has_arg) {
        if (eq) {
            snprintf(err, errlen, "option --%s takes no value", o->name);
            return CM_ERR_INVAL;
        }
        return CM_OK;
    }
    if (eq) {
        out->value = eq + 1;
    } else if (a->i < a->argc) {
        out->value = a->argv[a->i++];
    } else {
        snprintf(err, errlen, "option --%s needs a value", o->name);
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

int mc_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char digits[32];
    size_t n = 0;
    const char *p = s;
    long long v;
    char *end;

    if (!s || !*s || !out)
        return CM_ERR_INVAL;
    if (*p == '-' || *p == '+')
        digits[n++] = *p++;
    if (!isdigit((unsigned char)*p))
        return CM_ERR_INVAL;
    for (; *p; p++) {
        if (*p == '_' && isdigit((unsigned char)p[-1]) && isdigit((unsigned char)p[1]))
            continue;
        if (!isdigit((unsigned char)*p) || n + 1 >= sizeof digits)
            return CM_ERR_INVAL;
        digits[n++] = *p;
    }
    digits[n] = '\0';
    errno = 0;
    v = strtoll(digits, &end, 10);
    if (errno || *end || v < min || v > max)
        return CM_ERR_INVAL;
    *out = v;
    return CM_OK;
}

int mc_parse_usd(const char *s, double *out)
{
    const char *p = s;
    char *end;
    double v;
    int digits = 0;

    if (!s || !out)
        return CM_ERR_INVAL;
    if (*p == '$')
        p++;
    /* only [0-9.]: strtod alone would take "inf", "nan", "0x10", "1e3" and " 2" */
    for (const char *q = p; *q; q++) {
        if (isdigit((unsigned char)*q))
            digits++;
        else if (*q != '.')
            return CM_ERR_INVAL;
    }
    if (!digits)
        return CM_ERR_INVAL;
    errno = 0;
    v = strtod(p, &end);
    if (errno || *end || !isfinite(v) || v < 0)
        return CM_ERR_INVAL;
    *out = v;
    return CM_OK;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* exactly @p n digits at *p -> *v; advances */
static int take_digits(const char **p, int n, int64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return 0;
}

static int parse_datetime(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int64_t y, mo, d, h = 0, mi = 0, se = 0;

    if (take_digits(&p, 4, &y) || *p++ != '-' || take_digits(&p, 2, &mo) || *p++ != '-' ||
        take_digits(&p, 2, &d))
        return -1;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (take_digits(&p, 2, &h) || *p++ != ':' || take_digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (take_digits(&p, 2, &se))
                return -1;
        }
        if (*p == 'Z')
            p++;
    }
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
        return -1;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

int mc_parse_expires(const char *s, int64_t now, int64_t *out, char *err, size_t errlen)
{
    int64_t v, mult = 0;
    size_t n;
    char num[24];

    if (errlen)
        err[0] = '\0';
    if (!s || !*s || !out) {
        snprintf(err, errlen, "empty expiry");
        return CM_ERR_INVAL;
    }
    if (strcasecmp(s, "never") == 0 || strcmp(s, "-1") == 0) {
        *out = -1;
        return CM_OK;
    }
    n = strlen(s);
    switch (s[n - 1]) {
    case 'd':
        mult = 86400;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'm':
        mult = 60;
        break;
    case 's':
        mult = 1;
        break;
    default:
        break;
    }
    if (mult) {
        if (n - 1 >= sizeof num || n < 2)
            goto bad;
        memcpy(num, s, n - 1);
        num[n - 1] = '\0';
        if (mc_parse_i64(num, 1, INT64_C(100000) * 86400 / mult, &v))
            goto bad;
        *out = now + v * mult;
        return CM_OK;
    }
    if (strchr(s, '-')) {
        if (parse_datetime(s, &v))
            goto bad;
    } else if (mc_parse_i64(s, 1000000000, INT64_C(99999999999), &v)) {
        goto bad;
    }
    if (v <= now) {
        snprintf(err, errlen, "expiry \"%s\" is not in the future", s);
        return CM_ERR_INVAL;
    }
    *out = v;
    return CM_OK;
bad:
    snprintf(err, errlen,
             "expiry \"%s\" is not one of: never, 30d, 12h, 90m, 3600s, YYYY-MM-DD, "
             "YYYY-MM-DDTHH:MM[:SS] (UTC), a unix time",
             s);
    return CM_ERR_INVAL;
}

static const struct {
    const char *name;
    int type;
} CHANNEL_TYPES[] = {
    {"openai", 1},    {"azure", 3},     {"ollama", 4}, {"anthropic", 14},
    {"claude", 14},   {"gemini", 24},   {"aws", 33},   {"vertex", 41},
    {"vertexai", 41}, {"deepseek", 43}, {"xai", 48},   {"codex", 57},
};

int mc_parse_channel_type(const char *s, int *out)
{
    int64_t v;

    if (!s || !out)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < sizeof CHANNEL_TYPES / sizeof *CHANNEL_TYPES; i++)
        if (strcasecmp(s, CHANNEL_TYPES[i].name) == 0) {
            *out = CHANNEL_TYPES[i].type;
            return CM_OK;
        }
    if (mc_parse_i64(s, 0, 1000, &v))
        return CM_ERR_INVAL;
    *out = (int)v;
    return CM_OK;
}

const char *mc_channel_type_name(int type)
{
    for (size_t i = 0; i < sizeof CHANNEL_TYPES / sizeof *CHANNEL_TYPES; i++)
        if (CHANNEL_TYPES[i].type == type)
            return CHANNEL_TYPES[i].name;
    return NULL;
}

int mc_clean_csv(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    int any = 0;

    if (!s || !buf || !cap)
        return CM_ERR_INVAL;
    buf[0] = '\0';
    while (*s) {
        const char *b = s, *e;
        while (*s && *s != ',')
            s++;
        e = s;
        if (*s)
            s++;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (b == e)
            continue;
        if (n + (any ? 1 : 0) + (size_t)(e - b) + 1 > cap)
            return CM_ERR_LIMIT;
        if (any)
            buf[n++] = ',';
        memcpy(buf + n, b, (size_t)(e - b));
        n += (size_t)(e - b);
        buf[n] = '\0';
        any = 1;
    }
    return any ? CM_OK : CM_ERR_NOTFOUND;
}
