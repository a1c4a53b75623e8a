/* SPDX-License-Identifier: MIT */
/*
 * cfg.c - libcyaml 1.3.1 loading with located errors and unknown-key warnings, the schema
 * walk that turns a loaded struct back into JSON (cm_cfg_to_json), and the refcounted slot
 * for hot reload.
 *
 * libcyaml 1.3.1 reports everything through its log_fn: errors at ERROR followed by a
 * "Load: Backtrace:" (innermost first, with line/column), ignored keys only at DEBUG
 * ("Load: Ignoring key: %s", no path). So loads run libcyaml at DEBUG with log_fn set to
 * capture(), which follows the load from libcyaml's own trace lines - "PUSH[n]: in
 * mapping (key)" / "POP[n]", "[key]", "Handle state in sequence", "Sequence entry: n",
 * "  <value>" - to know the key path at every moment. From that it builds: the set of
 * keys the document set (for defaults), a WARN with the full path for each ignored
 * key, checks of int/bool/float scalars that 1.3.1 accepts too loosely, and one error
 * message in the caller's words. If a future libcyaml words its trace differently the
 * paths degrade (shorter), nothing breaks: the error text then falls back to
 * libcyaml's own. Syntax errors are located by re-running libyaml's parser (1.3.1
 * prints only the problem, not where it is).
 */
#include "cm/cfg.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/file.h"
#include "cm/json.h"
#include "cm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_DEPTH 64    /* nesting tracked for paths; deeper keys get "..." */
#define KEY_MAX 128     /* longer keys are cut in paths */
#define KEYPATH_MAX 512 /* rendered path */
#define SEEN_MAX (1u << 20)

enum frame_kind { FRAME_OTHER, FRAME_MAP, FRAME_SEQ };

struct frame {
    enum frame_kind kind;
    int has_key;       /* FRAME_MAP: a key has been read */
    char key[KEY_MAX]; /* FRAME_MAP: current key */
    long idx;          /* FRAME_SEQ: current entry, -1 before the first */
};

struct cm_cfg_seen {
    struct cm_buf paths; /* NUL-separated */
};

struct load_ctx {
    const char *name;
    const cyaml_schema_value_t *schema;
    struct frame frames[MAX_DEPTH];
    unsigned depth; /* libcyaml's stack depth (frames beyond MAX_DEPTH untracked) */
    struct cm_cfg_seen seen;
    size_t seen_mark;           /* where the last key's path starts in seen.paths */
    char key_path[KEYPATH_MAX]; /* path of the last key read */
    int rc;                     /* sticky CM_ERR_NOMEM from tracking */
    int has_err;                /* err holds the first problem ("path: text") */
    int err_from_cyaml;         /* ... and libcyaml failed on it (its backtrace locates it) */
    int want_pos;               /* take line/column from the coming backtrace */
    int in_backtrace;
    int is_syntax;
    unsigned long pushes; /* PUSH lines understood: 0 means the trace is not 1.3.x's */
    size_t line, col;     /* 1-based; 0: unknown */
    char err[CM_CFG_ERR_MAX];
};

static void put_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf that may cut on purpose (a message longer than the buffer is cut) */
static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- paths ---- */

static void cat(char *buf, size_t n, size_t *len, const char *s)
{
    int w;
    if (*len >= n)
        return;
    w = snprintf(buf + *len, n - *len, "%s", s);
    if (w > 0)
        *len = *len + (size_t)w < n ? *len + (size_t)w : n - 1;
}

/*
 * Renders the path at this moment. @p key_override replaces the innermost mapping's
 * key (a missing required key is reported at the mapping's end, when the current key
 * is the last one read). @p drop_top_index leaves out the innermost sequence index.
 */
static void render_path(const struct load_ctx *c, const char *key_override, int drop_top_index,
                        char *buf, size_t n)
{
    unsigned d = c->depth < MAX_DEPTH ? c->depth : MAX_DEPTH;
    size_t len = 0;
    char idx[32];

    buf[0] = '\0';
    for (unsigned i = 0; i < d; i++) {
        const struct frame *f = &c->frames[i];
        int top = i + 1 == c->depth;
        if (f->kind == FRAME_MAP) {
            const char *k = top && key_override ? key_override : f->has_key ? f->key : NULL;
            if (!k)
                continue;
            if (len)
                cat(buf, n, &len, ".");
            cat(buf, n, &len, k);
        } else if (f->kind == FRAME_SEQ && f->idx >= 0 && !(top && drop_top_index)) {
            snprintf(idx, sizeof idx, "[%ld]", f->idx);
            cat(buf, n, &len, idx);
        }
    }
    if (c->depth > MAX_DEPTH) {
        if (len)
            cat(buf, n, &len, ".");
        cat(buf, n, &len, "...");
    }
}

static const cyaml_schema_field_t *find_field(const cyaml_schema_value_t *map, const char *key)
{
    int ci = (map->flags & CYAML_FLAG_CASE_INSENSITIVE) != 0;
    for (const cyaml_schema_field_t *f = map->mapping.fields; f && f->key; f++)
        if (ci ? strcasecmp(f->key, key) == 0 : strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

/* The schema of the value at the current position; NULL if it cannot be told. */
static const cyaml_schema_value_t *resolve(const struct load_ctx *c)
{
    const cyaml_schema_value_t *s = c->schema; /* the document's mapping */

    if (c->depth > MAX_DEPTH)
        return NULL;
    for (unsigned i = 0; i < c->depth; i++) {
        const struct frame *f = &c->frames[i];
        if (f->kind == FRAME_MAP) {
            const cyaml_schema_field_t *fld;
            if (s->type != CYAML_MAPPING)
                return NULL;
            if (!f->has_key)
                return s;
            fld = find_field(s, f->key);
            if (!fld)
                return NULL;
            s = &fld->value;
        } else if (f->kind == FRAME_SEQ) {
            if (s->type != CYAML_SEQUENCE && s->type != CYAML_SEQUENCE_FIXED)
                return NULL;
            s = s->sequence.entry;
        }
    }
    return s;
}

/* ---- the seen set ---- */

int cm_cfg_seen(const struct cm_cfg_seen *seen, const char *path)
{
    const char *p, *end;
    if (!seen || !path || !seen->paths.data)
        return 0;
    p = seen->paths.data;
    end = p + seen->paths.len;
    while (p < end) {
        size_t l = strlen(p);
        if (strcmp(p, path) == 0)
            return 1;
        p += l + 1;
    }
    return 0;
}

/* ---- phrasing libcyaml's errors ---- */

static int starts(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return 0;
    if (rest)
        *rest = s + n;
    return 1;
}

static unsigned long num(const char *s, const char **end)
{
    char *e;
    unsigned long v = strtoul(s, &e, 10);
    if (end)
        *end = e;
    return v;
}

#define SHOW_MAX 64 /* longest value quoted in a message */

/* A value as messages quote it: libcyaml's 'quotes' dropped, long ones cut with "...". */
static void show(const char *s, char *out, size_t n)
{
    size_t l = strlen(s);
    if (l && s[0] == '\'') { /* the closing quote may have been cut off with the line */
        s++;
        l--;
        if (l && s[l - 1] == '\'')
            l--;
    }
    if (l > SHOW_MAX)
        snprintf(out, n, "%.*s...", SHOW_MAX, s);
    else
        snprintf(out, n, "%.*s", (int)l, s);
}

static const char *type_phrase(const char *t)
{
    static const struct {
        const char *cy, *text;
    } m[] = {{"INT", "an integer"},
             {"UINT", "a non-negative integer"},
             {"BOOL", "a boolean"},
             {"ENUM", "a single value"},
             {"FLAGS", "a sequence of flags"},
             {"FLOAT", "a number"},
             {"STRING", "a string"},
             {"MAPPING", "a mapping"},
             {"BITFIELD", "a mapping of bit values"},
             {"SEQUENCE", "a sequence"},
             {"SEQUENCE_FIXED", "a sequence"},
             {"SCALAR", "a scalar"},
             {"SEQUENCE_START", "a sequence"},
             {"MAPPING_START", "a mapping"},
             {"ALIAS", "an alias"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(m[i].cy, t) == 0)
            return m[i].text;
    return t;
}

static void list_strings(const cyaml_schema_value_t *s, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    if (!s || (s->type != CYAML_ENUM && s->type != CYAML_FLAGS))
        return;
    for (uint32_t i = 0; i < s->enumeration.count; i++) {
        cat(buf, n, &len, i ? ", " : "");
        cat(buf, n, &len, s->enumeration.strings[i].str);
    }
}

static void int_range(const cyaml_schema_value_t *s, char *buf, size_t n)
{
    buf[0] = '\0';
    if (!s || !s->data_size || s->data_size > 8)
        return;
    if (s->type == CYAML_INT) {
        int64_t max = (int64_t)((UINT64_MAX >> ((8 - s->data_size) * 8)) / 2);
        snprintf(buf, n, " (%" PRId64 "..%" PRId64 ")", -max - 1, max);
    } else if (s->type == CYAML_UINT) {
        snprintf(buf, n, " (0..%" PRIu64 ")", UINT64_MAX >> ((8 - s->data_size) * 8));
    }
}

/* Records the first problem as "path: text". */
static void set_err(struct load_ctx *c, const char *path, int from_cyaml, int want_pos,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_err(struct load_ctx *c, const char *path, int from_cyaml, int want_pos,
                    const char *fmt, ...)
{
    va_list ap;
    size_t len = 0;
    if (c->has_err)
        return;
    c->has_err = 1;
    c->err_from_cyaml = from_cyaml;
    c->want_pos = from_cyaml && want_pos;
    if (path && path[0]) {
        cat(c->err, sizeof c->err, &len, path);
        cat(c->err, sizeof c->err, &len, ": ");
    }
    va_start(ap, fmt);
    vsnprintf(c->err + len, sizeof c->err - len, fmt, ap);
    va_end(ap);
}

/* Turns a libcyaml ERROR line (without "Load: " and newline) into our words. */
static void phrase_error(struct load_ctx *c, const char *m)
{
    char path[KEYPATH_MAX], v[256], list[256];
    const cyaml_schema_value_t *s = resolve(c);
    const char *r;

    render_path(c, NULL, 0, path, sizeof path);
    if (starts(m, "Invalid INT value: ", &r) || starts(m, "Invalid UINT value: ", &r) ||
        starts(m, "Invalid uint64_t value: ", &r)) {
        /* syntax was checked on the "<value>" line already, so this is the range */
        show(r, v, sizeof v);
        int_range(s, list, sizeof list);
        set_err(c, path, 1, 1, "integer out of range%s, got \"%s\"", list, v);
    } else if (starts(m, "Invalid ENUM value: ", &r)) {
        show(r, v, sizeof v);
        list_strings(s, list, sizeof list);
        set_err(c, path, 1, 1, "invalid value \"%s\"%s%s%s", v,
                list[0] ? " (expected one of: " : "", list, list[0] ? ")" : "");
    } else if (starts(m, "Unknown flag: ", &r)) {
        show(r, v, sizeof v);
        list_strings(s, list, sizeof list);
        set_err(c, path, 1, 1, "invalid value \"%s\"%s%s%s", v,
                list[0] ? " (expected any of: " : "", list, list[0] ? ")" : "");
    } else if (starts(m, "Invalid FLOAT value: ", &r)) {
        show(r, v, sizeof v);
        set_err(c, path, 1, 1, "expected a number, got \"%s\"", v);
    } else if (starts(m, "FLOAT ", &r)) {
        const char *colon = strchr(r, ':');
        show(colon ? colon + 2 : r, v, sizeof v);
        set_err(c, path, 1, 1, "number out of range, got \"%s\"", v);
    } else if (starts(m, "Missing required mapping field: ", &r)) {
        render_path(c, r, 0, path, sizeof path);
        set_err(c, path, 1, 0, "required key missing");
    } else if (starts(m, "Mapping field already seen: ", &r)) {
        set_err(c, path, 1, 1, "duplicate key");
    } else if (starts(m, "Insufficient entries (", &r)) {
        const char *e;
        unsigned long got = num(r, &e), min = 0;
        if (starts(e, " of ", &e))
            min = num(e, NULL);
        render_path(c, NULL, 1, path, sizeof path);
        set_err(c, path, 1, 1, "needs at least %lu entries, got %lu", min, got);
    } else if (starts(m, "Excessive entries (", &r)) {
        render_path(c, NULL, 1, path, sizeof path);
        set_err(c, path, 1, 1, "at most %lu entries allowed", num(r, NULL));
    } else if (starts(m, "STRING length < ", &r)) {
        set_err(c, path, 1, 1, "too short (at least %lu characters)", num(r, NULL));
    } else if (starts(m, "STRING length > ", &r)) {
        set_err(c, path, 1, 1, "too long (at most %lu characters)", num(r, NULL));
    } else if (starts(m, "Expecting ", &r)) {
        char want[32], got[32];
        const char *g = strstr(r, ", got event: ");
        size_t wl = g ? (size_t)(g - r) : 0;
        if (g && wl < sizeof want) {
            memcpy(want, r, wl);
            want[wl] = '\0';
            snprintf(got, sizeof got, "%s", g + strlen(", got event: "));
            set_err(c, path, 1, 1, "expected %s, got %s", type_phrase(want), type_phrase(got));
        } else {
            set_err(c, path, 1, 1, "%s", m);
        }
    } else if (starts(m, "No anchor found for alias: ", &r)) {
        render_path(c, NULL, 1, path, sizeof path);
        show(r, v, sizeof v);
        set_err(c, path, 1, 1, "unknown alias \"*%s\"", v);
    } else if (starts(m, "libyaml: ", &r)) {
        c->is_syntax = 1;
        set_err(c, NULL, 1, 0, "syntax error: %s", r); /* located later by locate_syntax() */
    } else {
        set_err(c, path, 1, 1, "%s", m);
    }
}

/* ---- checks 1.3.1 does not do ---- */

static int is_int_text(const char *v, int allow_minus)
{
    const char *p = v;
    if (*p == '+' || (allow_minus && *p == '-'))
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        p += 2;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (!strchr("0123456789abcdefABCDEF", *p))
                return 0;
        return 1;
    }
    if (p[0] == '0')
        return p[1] == '\0'; /* "010" would be octal 8 to libcyaml */
    if (!*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static int bool_text(const char *v)
{
    static const char *const ok[] = {"true", "false",  "yes",     "no", "on",
                                     "off",  "enable", "disable", "1",  "0"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcasecmp(v, ok[i]) == 0)
            return 1;
    return 0;
}

static void check_scalar(struct load_ctx *c, const char *v)
{
    const cyaml_schema_value_t *s = resolve(c);
    char path[KEYPATH_MAX], shown[SHOW_MAX + 8];
    const char *what = NULL;

    if (!s)
        return;
    if (s->type == CYAML_INT && !is_int_text(v, 1))
        what = "an integer";
    else if (s->type == CYAML_UINT && !is_int_text(v, 0))
        what = "a non-negative integer";
    else if (s->type == CYAML_BOOL && !bool_text(v))
        what = "a boolean (true/false, yes/no, on/off)";
    else if (s->type == CYAML_FLOAT) {
        char *end;
        strtod(v, &end);
        if (end == v || *end)
            what = "a number";
    }
    if (!what)
        return;
    render_path(c, NULL, 0, path, sizeof path);
    show(v, shown, sizeof shown);
    set_err(c, path, 0, 0, "expected %s, got \"%s\"", what, shown);
}

/* ---- following libcyaml's trace ---- */

static void on_key(struct load_ctx *c, const char *key)
{
    struct frame *f;
    int rc;
    c->key_path[0] = '\0'; /* if not tracked below, a warning names the bare key */
    c->seen_mark = c->seen.paths.len;
    if (c->depth == 0 || c->depth > MAX_DEPTH)
        return;
    f = &c->frames[c->depth - 1];
    if (f->kind != FRAME_MAP)
        return;
    snprintf(f->key, sizeof f->key, "%s", key);
    f->has_key = 1;
    render_path(c, NULL, 0, c->key_path, sizeof c->key_path);
    rc = cm_buf_append(&c->seen.paths, c->key_path, strlen(c->key_path) + 1);
    if (rc && !c->rc)
        c->rc = rc == CM_ERR_LIMIT ? CM_ERR_LIMIT : CM_ERR_NOMEM;
}

static void on_ignored(struct load_ctx *c, const char *key)
{
    const char *path = c->key_path[0] ? c->key_path : key;
    /* the key was recorded as seen by on_key(): take it back (keeping the NUL after len) */
    if (c->seen.paths.data && c->seen.paths.len >= c->seen_mark) {
        c->seen.paths.len = c->seen_mark;
        c->seen.paths.data[c->seen_mark] = '\0';
    }
    cm_log_warn(NULL, "%s: unknown key \"%s\" ignored", c->name, path);
}

static void on_push(struct load_ctx *c, const char *r)
{
    const char *state;
    unsigned long n = num(r, &state);
    if (!starts(state, "]: ", &state))
        return;
    c->depth = (unsigned)n + 1;
    if (n < MAX_DEPTH) {
        struct frame *f = &c->frames[n];
        f->kind = strcmp(state, "in mapping (key)") == 0 ? FRAME_MAP
                  : strcmp(state, "in sequence") == 0    ? FRAME_SEQ
                                                         : FRAME_OTHER;
        f->has_key = 0;
        f->key[0] = '\0';
        f->idx = -1;
    }
}

static void on_trace(struct load_ctx *c, const char *m)
{
    const char *r;
    struct frame *top = c->depth && c->depth <= MAX_DEPTH ? &c->frames[c->depth - 1] : NULL;

    if (starts(m, "PUSH[", &r)) {
        c->pushes++;
        on_push(c, r);
    } else if (starts(m, "POP[", &r)) {
        c->depth = (unsigned)num(r, NULL);
    } else if (starts(m, "Handle state in sequence", NULL)) {
        /* the sequence is handling its next event: a new entry (or its end) */
        if (top && top->kind == FRAME_SEQ)
            top->idx++;
    } else if (starts(m, "Sequence entry: ", &r)) {
        if (top && top->kind == FRAME_SEQ)
            top->idx = (long)num(r, NULL);
    } else if (starts(m, "[", &r)) {
        char key[KEY_MAX];
        size_t l = strlen(r);
        if (l && r[l - 1] == ']')
            l--;
        snprintf(key, sizeof key, "%.*s", (int)l, r);
        on_key(c, key);
    } else if (starts(m, "Ignoring key: ", &r)) {
        on_ignored(c, r);
    } else if (starts(m, "  <", &r)) {
        /* a scalar value; a long one was cut by capture(), its start is enough to judge */
        size_t l = strlen(r);
        char v[256];
        if (l && r[l - 1] == '>')
            l--;
        if (l >= sizeof v)
            l = sizeof v - 1;
        if (strcmp(r, "NULL>") != 0 && !starts(r, "Flags: ", NULL) && !starts(r, "Bits: ", NULL)) {
            snprintf(v, sizeof v, "%.*s", (int)l, r);
            check_scalar(c, v);
        }
    }
}

/* "... (line: 10, column: 13)" -> 10, 13 */
static void parse_pos(struct load_ctx *c, const char *m)
{
    const char *p = strstr(m, "(line: "), *e;
    unsigned long l, col;
    if (!p)
        return;
    l = num(p + 7, &e);
    if (!starts(e, ", column: ", &e))
        return;
    col = num(e, NULL);
    c->line = l;
    c->col = col;
}

static void capture(cyaml_log_t level, void *vctx, const char *fmt, va_list args)
{
    struct load_ctx *c = vctx;
    char msg[1024];
    const char *m;
    int n;
    size_t len;

    n = vsnprintf(msg, sizeof msg, fmt, args);
    if (n < 0)
        return;
    len = strlen(msg);
    while (len && msg[len - 1] == '\n')
        msg[--len] = '\0';
    cm_log_debug(NULL, "cfg: %s: libcyaml: %s", c->name, msg);

    if (starts(msg, "Load: ", &m)) {
        if (level == CYAML_LOG_ERROR && strcmp(m, "Backtrace:") == 0) {
            c->in_backtrace = 1;
            return;
        }
        on_trace(c, m);
        if (level == CYAML_LOG_ERROR) {
            c->in_backtrace = 0;
            phrase_error(c, m);
        }
        return;
    }
    if (level == CYAML_LOG_ERROR && starts(msg, "  in ", NULL)) {
        if (c->in_backtrace && c->want_pos && !c->line)
            parse_pos(c, msg); /* the first backtrace line is the innermost */
        c->in_backtrace = 0;
        return;
    }
    if (level == CYAML_LOG_ERROR)
        set_err(c, NULL, 1, 0, "%s", msg);
    else if (strcmp(msg, "Ignoring documents after first in stream") == 0)
        cm_log_warn(NULL, "%s: only the first YAML document is used, the others are ignored",
                    c->name);
    else if (level == CYAML_LOG_WARNING)
        cm_log_warn(NULL, "%s: %s", c->name, msg);
}

/* libcyaml 1.3.1 says what the syntax error is but not where: ask libyaml again. */
static void locate_syntax(struct load_ctx *c, const char *data, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int done = 0;

    if (!yaml_parser_initialize(&p))
        return;
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            size_t l;
            put_err(c->err, sizeof c->err, "syntax error at line %zu, column %zu: %s",
                    p.problem_mark.line + 1, p.problem_mark.column + 1,
                    p.problem ? p.problem : "unknown problem");
            if (p.context) {
                l = strlen(c->err);
                snprintf(c->err + l, sizeof c->err - l, " (%s at line %zu, column %zu)", p.context,
                         p.context_mark.line + 1, p.context_mark.column + 1);
            }
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
}

/* ---- loading ---- */

/* cyaml's allocator contract: size 0 frees */
static void *mem(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        cm_free(ptr);
        return NULL;
    }
    return cm_realloc(ptr, size);
}

/* for cyaml_free(): only errors are worth hearing */
static void free_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    char msg[512];
    (void)ctx;
    if (level < CYAML_LOG_ERROR && !cm_log_enabled(CM_LOG_DEBUG))
        return;
    if (vsnprintf(msg, sizeof msg, fmt, args) < 0)
        return;
    msg[strcspn(msg, "\n")] = '\0';
    cm_log_write(level >= CYAML_LOG_ERROR ? CM_LOG_ERROR : CM_LOG_DEBUG, NULL, "cfg: libcyaml: %s",
                 msg);
}

static int map_cyaml_err(cyaml_err_t e)
{
    switch (e) {
    case CYAML_OK:
        return CM_OK;
    case CYAML_ERR_OOM:
        return CM_ERR_NOMEM;
    case CYAML_ERR_LIBYAML_PARSER:
        return CM_ERR_PARSE;
    case CYAML_ERR_ALIAS:
    case CYAML_ERR_INVALID_KEY:
    case CYAML_ERR_INVALID_VALUE:
    case CYAML_ERR_INVALID_ALIAS:
    case CYAML_ERR_UNEXPECTED_EVENT:
    case CYAML_ERR_STRING_LENGTH_MIN:
    case CYAML_ERR_STRING_LENGTH_MAX:
    case CYAML_ERR_SEQUENCE_ENTRIES_MIN:
    case CYAML_ERR_SEQUENCE_ENTRIES_MAX:
    case CYAML_ERR_MAPPING_FIELD_MISSING:
        return CM_ERR_INVAL;
    case CYAML_ERR_FILE_OPEN:
        return CM_ERR_IO;
    default:
        return CM_ERR_INTERNAL; /* bad schema or parameters, libyaml init: a bug */
    }
}

static int spec_ok(const struct cm_cfg_spec *spec)
{
    return spec && spec->schema && spec->schema->type == CYAML_MAPPING &&
           (spec->schema->flags & CYAML_FLAG_POINTER) && spec->schema->data_size > 0;
}

/* An empty document loads as NULL in 1.3.1: that is fine unless a key is required. */
static const char *first_required(const cyaml_schema_value_t *schema)
{
    for (const cyaml_schema_field_t *f = schema->mapping.fields; f && f->key; f++)
        if (!(f->value.flags & CYAML_FLAG_OPTIONAL) && f->value.type != CYAML_IGNORE)
            return f->key;
    return NULL;
}

int cm_cfg_load_mem(const struct cm_cfg_spec *spec, const char *name, const char *data, size_t len,
                    void **out, char *err, size_t errlen)
{
    struct load_ctx *c = NULL;
    cyaml_config_t cy;
    cyaml_data_t *cfg = NULL;
    cyaml_err_t ce;
    char msg[CM_CFG_ERR_MAX];
    int rc = CM_OK;

    msg[0] = '\0';
    if (!name)
        name = "<memory>";
    if (!spec_ok(spec) || !out || (!data && len)) {
        put_err(msg, sizeof msg, "%s: bad arguments (top-level schema must be a pointer mapping)",
                name);
        rc = CM_ERR_INVAL;
        goto out;
    }
    c = cm_calloc(1, sizeof *c); /* ~10 KiB: keep it off small thread stacks */
    if (!c) {
        put_err(msg, sizeof msg, "%s: out of memory", name);
        rc = CM_ERR_NOMEM;
        goto out;
    }
    c->name = name;
    c->schema = spec->schema;
    cm_buf_init(&c->seen.paths, SEEN_MAX);
    memset(&cy, 0, sizeof cy);
    cy.log_fn = capture;
    cy.log_ctx = c;
    cy.mem_fn = mem;
    cy.log_level = CYAML_LOG_DEBUG; /* 1.3.1 says "Ignoring key" only at DEBUG */
    cy.flags = CYAML_CFG_IGNORE_UNKNOWN_KEYS;

    ce = cyaml_load_data((const uint8_t *)(data ? data : ""), len, &cy, spec->schema, &cfg, NULL);
    if (ce != CYAML_OK) {
        rc = map_cyaml_err(ce);
        if (rc == CM_ERR_NOMEM) {
            put_err(msg, sizeof msg, "%s: out of memory", name);
            goto out;
        }
        if (c->is_syntax || ce == CYAML_ERR_LIBYAML_PARSER)
            locate_syntax(c, data ? data : "", len);
        if (!c->has_err)
            put_err(c->err, sizeof c->err, "%s", cyaml_strerror(ce));
        if (c->line)
            put_err(msg, sizeof msg, "%s: %s (line %zu, column %zu)", name, c->err, c->line,
                    c->col);
        else
            put_err(msg, sizeof msg, "%s: %s", name, c->err);
        goto out;
    }
    if (!c->pushes) {
        /* without the trace, unknown keys and defaults would silently go wrong */
        rc = CM_ERR_INTERNAL;
        put_err(msg, sizeof msg, "%s: cannot follow the load trace of libcyaml %s (1.3.x needed)",
                name, cyaml_version_str);
        goto out;
    }
    if (c->rc) {
        rc = c->rc;
        put_err(msg, sizeof msg, "%s: %s", name,
                rc == CM_ERR_NOMEM ? "out of memory" : "too many keys");
        goto out;
    }
    if (c->has_err) { /* a scalar 1.3.1 accepted but we do not */
        rc = CM_ERR_INVAL;
        put_err(msg, sizeof msg, "%s: %s", name, c->err);
        goto out;
    }
    if (!cfg) {
        const char *req = first_required(spec->schema);
        if (req) {
            rc = CM_ERR_INVAL;
            put_err(msg, sizeof msg, "%s: %s: required key missing", name, req);
            goto out;
        }
        cfg = cm_calloc(1, spec->schema->data_size);
        if (!cfg) {
            rc = CM_ERR_NOMEM;
            put_err(msg, sizeof msg, "%s: out of memory", name);
            goto out;
        }
    }
    if (spec->defaults) {
        rc = spec->defaults(cfg, &c->seen, spec->ud);
        if (rc) {
            put_err(msg, sizeof msg, "%s: applying defaults: %s", name, cm_err_str(rc));
            goto out;
        }
    }
    if (spec->check) {
        char why[CM_CFG_ERR_MAX];
        why[0] = '\0';
        rc = spec->check(cfg, why, sizeof why, spec->ud);
        if (rc) {
            put_err(msg, sizeof msg, "%s: %s", name, why[0] ? why : cm_err_str(rc));
            goto out;
        }
    }
    *out = cfg;
    cfg = NULL;
    put_err(err, errlen, "%s", "");
out:
    if (rc) {
        cm_log_error(NULL, "%s", msg);
        put_err(err, errlen, "%s", msg);
    }
    if (cfg)
        cm_cfg_free(spec, cfg);
    if (c)
        cm_buf_cleanup(&c->seen.paths);
    cm_free(c);
    return rc;
}

int cm_cfg_load_file(const struct cm_cfg_spec *spec, const char *path, void **out, char *err,
                     size_t errlen)
{
    char msg[CM_CFG_ERR_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc = cm_file_read(path, CM_CFG_FILE_MAX, &text, &len, msg, sizeof msg);

    if (rc) {
        if (!path)
            put_err(msg, sizeof msg, "config: no file name given");
        cm_log_error(NULL, "%s", msg);
        put_err(err, errlen, "%s", msg);
        return rc;
    }
    rc = cm_cfg_load_mem(spec, path, text, len, out, err, errlen);
    cm_free(text);
    return rc;
}

void cm_cfg_free(const struct cm_cfg_spec *spec, void *cfg)
{
    cyaml_config_t cy;
    if (!cfg || !spec || !spec->schema)
        return;
    memset(&cy, 0, sizeof cy);
    cy.log_fn = free_log;
    cy.mem_fn = mem;
    cy.log_level = cm_log_enabled(CM_LOG_DEBUG) ? CYAML_LOG_DEBUG : CYAML_LOG_ERROR;
    cyaml_free(&cy, spec->schema, cfg, 0);
}

int cm_cfg_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CM_ERR_INVAL;
}

int cm_cfg_check_range(char *err, size_t errlen, const char *path, long long v, long long min,
                       long long max)
{
    if (v >= min && v <= max)
        return CM_OK;
    return cm_cfg_fail(err, errlen, "%s: must be between %lld and %lld, got %lld", path, min, max,
                       v);
}

/* ---- to JSON ---- */

struct to_json {
    const char *const *omit;
    char path[KEYPATH_MAX]; /* of the value being walked, as cm_cfg_seen() spells it */
    size_t len;             /* strlen(path) */
    unsigned depth;         /* values being walked, for MAX_DEPTH */
};

/* 1 if @p path is the omit pattern @p pat, where "[*]" matches any "[digits]". */
static int path_matches(const char *pat, const char *path)
{
    while (*pat) {
        if (strncmp(pat, "[*]", 3) == 0 && *path == '[') {
            pat += 3;
            path++;
            if (*path < '0' || *path > '9')
                return 0;
            while (*path >= '0' && *path <= '9')
                path++;
            if (*path++ != ']')
                return 0;
        } else if (*pat++ != *path++) {
            return 0; /* also when path ended first: its NUL differs from *pat */
        }
    }
    return *path == '\0';
}

static int omitted(const struct to_json *t)
{
    for (const char *const *o = t->omit; o && *o; o++)
        if (path_matches(*o, t->path))
            return 1;
    return 0;
}

/* Appends ".key" ("key" at the top) or, for a NULL @p key, "[idx]"; *mark is for path_pop(). */
static int path_push(struct to_json *t, const char *key, uint64_t idx, size_t *mark)
{
    size_t room = sizeof t->path - t->len;
    int n = key ? snprintf(t->path + t->len, room, "%s%s", t->len ? "." : "", key)
                : snprintf(t->path + t->len, room, "[%" PRIu64 "]", idx);

    *mark = t->len;
    if (n < 0 || (size_t)n >= room) {
        t->path[t->len] = '\0';
        return CM_ERR_LIMIT;
    }
    t->len += (size_t)n;
    return CM_OK;
}

static void path_pop(struct to_json *t, size_t mark)
{
    t->len = mark;
    t->path[mark] = '\0';
}

/* The @p size byte unsigned integer at @p p (any alignment). */
static int read_uint(const uint8_t *p, uint32_t size, uint64_t *out)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;

    switch (size) {
    case sizeof u8:
        memcpy(&u8, p, sizeof u8);
        *out = u8;
        return CM_OK;
    case sizeof u16:
        memcpy(&u16, p, sizeof u16);
        *out = u16;
        return CM_OK;
    case sizeof u32:
        memcpy(&u32, p, sizeof u32);
        *out = u32;
        return CM_OK;
    case sizeof *out:
        memcpy(out, p, sizeof *out);
        return CM_OK;
    default:
        return CM_ERR_INTERNAL;
    }
}

/* The @p size byte signed integer at @p p (any alignment). */
static int read_int(const uint8_t *p, uint32_t size, int64_t *out)
{
    uint64_t u;
    int rc = read_uint(p, size, &u);

    if (rc)
        return rc;
    if (size < sizeof u && (u >> (size * 8 - 1)) & 1)
        u |= UINT64_MAX << (size * 8); /* sign-extend */
    memcpy(out, &u, sizeof *out);      /* int64_t is two's complement: no conversion */
    return CM_OK;
}

/* A number, or a decimal string where a double would not hold it exactly. */
static int put_int(cJSON *parent, const char *name, int64_t v)
{
    char s[32];
    if (v >= CM_JSON_INT_MIN && v <= CM_JSON_INT_MAX)
        return cm_json_set_int64(parent, name, v);
    snprintf(s, sizeof s, "%" PRId64, v);
    return cm_json_set_string(parent, name, s);
}

static int put_uint(cJSON *parent, const char *name, uint64_t v)
{
    char s[32];
    if (v <= (uint64_t)CM_JSON_INT_MAX)
        return cm_json_set_int64(parent, name, (int64_t)v);
    snprintf(s, sizeof s, "%" PRIu64, v);
    return cm_json_set_string(parent, name, s);
}

static int strings_ok(const cyaml_schema_value_t *s)
{
    if (s->enumeration.count && !s->enumeration.strings)
        return 0;
    for (uint32_t i = 0; i < s->enumeration.count; i++)
        if (!s->enumeration.strings[i].str)
            return 0;
    return 1;
}

static int put_enum(const cyaml_schema_value_t *s, const uint8_t *p, cJSON *parent,
                    const char *name)
{
    int64_t v;
    int rc = strings_ok(s) ? read_int(p, s->data_size, &v) : CM_ERR_INTERNAL;

    if (rc)
        return rc;
    for (uint32_t i = 0; i < s->enumeration.count; i++)
        if (s->enumeration.strings[i].val == v)
            return cm_json_set_string(parent, name, s->enumeration.strings[i].str);
    return put_int(parent, name, v);
}

static int put_flags(const cyaml_schema_value_t *s, const uint8_t *p, cJSON *parent,
                     const char *name)
{
    cJSON *arr = NULL;
    uint64_t v = 0, left;
    int rc = strings_ok(s) ? read_uint(p, s->data_size, &v) : CM_ERR_INTERNAL;

    if (!rc)
        rc = cm_json_new_array(&arr);
    left = v;
    for (uint32_t i = 0; !rc && i < s->enumeration.count; i++) {
        uint64_t bits = (uint64_t)s->enumeration.strings[i].val;
        if (bits && (v & bits) == bits) {
            rc = cm_json_set_string(arr, NULL, s->enumeration.strings[i].str);
            left &= ~bits;
        }
    }
    if (!rc && left)
        rc = put_uint(arr, NULL, left);
    if (rc)
        goto out;
    rc = cm_json_adopt(parent, name, &arr);
out:
    cJSON_Delete(arr);
    return rc;
}

static int put_bitfield(struct to_json *t, const cyaml_schema_value_t *s, const uint8_t *p,
                        cJSON *parent, const char *name)
{
    cJSON *obj = NULL;
    uint64_t v = 0;
    int rc = read_uint(p, s->data_size, &v);

    if (!rc && s->bitfield.count && !s->bitfield.bitdefs)
        rc = CM_ERR_INTERNAL;
    if (!rc)
        rc = cm_json_new_object(&obj);
    for (uint32_t i = 0; !rc && i < s->bitfield.count; i++) {
        const cyaml_bitdef_t *b = &s->bitfield.bitdefs[i];
        uint64_t mask;
        size_t mark;
        if (!b->name || !b->bits || b->bits > 64 || b->offset + b->bits > s->data_size * 8u) {
            rc = CM_ERR_INTERNAL;
            break;
        }
        mask = b->bits == 64 ? UINT64_MAX : (UINT64_C(1) << b->bits) - 1;
        rc = path_push(t, b->name, 0, &mark);
        if (!rc && !omitted(t))
            rc = put_uint(obj, b->name, (v >> b->offset) & mask);
        path_pop(t, mark);
    }
    if (rc)
        goto out;
    rc = cm_json_adopt(parent, name, &obj);
out:
    cJSON_Delete(obj);
    return rc;
}

static int put_float(const cyaml_schema_value_t *s, const uint8_t *p, cJSON *parent,
                     const char *name)
{
    float f;
    double d;

    if (s->data_size == sizeof f) {
        memcpy(&f, p, sizeof f);
        d = f;
    } else if (s->data_size == sizeof d) {
        memcpy(&d, p, sizeof d);
    } else {
        return CM_ERR_INTERNAL;
    }
    return isfinite(d) ? cm_json_set_double(parent, name, d) : cm_json_set_null(parent, name);
}

static int walk_value(struct to_json *t, const cyaml_schema_value_t *s, const uint8_t *at,
                      uint64_t count, cJSON *parent, const char *name);

/* Adds the kept fields of the mapping at @p p to @p obj. */
static int walk_mapping(struct to_json *t, const cyaml_schema_value_t *s, const uint8_t *p,
                        cJSON *obj)
{
    int rc = CM_OK;

    for (const cyaml_schema_field_t *f = s->mapping.fields; !rc && f && f->key; f++) {
        uint64_t count = 0;
        size_t mark;
        if (f->value.type == CYAML_IGNORE)
            continue;
        rc = path_push(t, f->key, 0, &mark);
        if (!rc && !omitted(t)) {
            if (f->value.type == CYAML_SEQUENCE)
                rc = read_uint(p + f->count_offset, f->count_size, &count);
            if (!rc)
                rc = walk_value(t, &f->value, p + f->data_offset, count, obj, f->key);
        }
        path_pop(t, mark);
    }
    return rc;
}

/* Appends the @p count entries at @p p to @p arr. */
static int walk_sequence(struct to_json *t, const cyaml_schema_value_t *s, const uint8_t *p,
                         uint64_t count, cJSON *arr)
{
    const cyaml_schema_value_t *e = s->sequence.entry;
    size_t stride;
    int rc = CM_OK;

    if (!e)
        return CM_ERR_INTERNAL;
    stride = (e->flags & CYAML_FLAG_POINTER) ? sizeof(void *) : e->data_size;
    if (count && (!p || !stride))
        return CM_ERR_INTERNAL;
    for (uint64_t i = 0; !rc && i < count; i++) {
        size_t mark;
        rc = path_push(t, NULL, i, &mark);
        if (!rc && !omitted(t))
            rc = walk_value(t, e, p + i * stride, 0, arr, NULL);
        path_pop(t, mark);
    }
    return rc;
}

/* 1 if the mapping has a field that holds a value (not CYAML_IGNORE). */
static int has_kept_field(const cyaml_schema_value_t *s)
{
    for (const cyaml_schema_field_t *f = s->mapping.fields; f && f->key; f++)
        if (f->value.type != CYAML_IGNORE)
            return 1;
    return 0;
}

/*
 * Adds the value stored at @p at (the pointer to it, for CYAML_FLAG_POINTER) to @p parent:
 * as member @p name of an object, or appended to an array when @p name is NULL. @p count
 * is the entry count of a CYAML_SEQUENCE (read by the mapping that holds it).
 */
static int walk_value(struct to_json *t, const cyaml_schema_value_t *s, const uint8_t *at,
                      uint64_t count, cJSON *parent, const char *name)
{
    const uint8_t *p = at;
    cJSON *child = NULL;
    int rc = CM_OK;

    if (s->type == CYAML_IGNORE)
        return CM_OK;
    if (t->depth >= MAX_DEPTH)
        return CM_ERR_LIMIT;
    t->depth++;
    if (s->flags & CYAML_FLAG_POINTER) {
        memcpy(&p, at, sizeof p);
        if (!p && s->type != CYAML_SEQUENCE) { /* a SEQUENCE's NULL array: walk_sequence() */
            rc = name ? CM_OK : cm_json_set_null(parent, NULL);
            goto out;
        }
    }
    switch (s->type) {
    case CYAML_INT: {
        int64_t v;
        rc = read_int(p, s->data_size, &v);
        if (!rc)
            rc = put_int(parent, name, v);
        break;
    }
    case CYAML_UINT:
    case CYAML_BOOL: {
        uint64_t v;
        rc = read_uint(p, s->data_size, &v);
        if (!rc)
            rc = s->type == CYAML_BOOL ? cm_json_set_bool(parent, name, v != 0)
                                       : put_uint(parent, name, v);
        break;
    }
    case CYAML_ENUM:
        rc = put_enum(s, p, parent, name);
        break;
    case CYAML_FLAGS:
        rc = put_flags(s, p, parent, name);
        break;
    case CYAML_BITFIELD:
        rc = put_bitfield(t, s, p, parent, name);
        break;
    case CYAML_FLOAT:
        rc = put_float(s, p, parent, name);
        break;
    case CYAML_STRING: {
        /* inline: a char array of string.max + 1 bytes */
        size_t len = s->flags & CYAML_FLAG_POINTER
                         ? strlen((const char *)p)
                         : strnlen((const char *)p, (size_t)s->string.max + 1);
        rc = cm_json_set_stringn(parent, name, (const char *)p, len);
        break;
    }
    case CYAML_MAPPING:
        if (name && !has_kept_field(s))
            break; /* a "known, not stored" block: there is nothing to show */
        rc = cm_json_new_object(&child);
        if (!rc)
            rc = walk_mapping(t, s, p, child);
        if (!rc)
            rc = cm_json_adopt(parent, name, &child);
        break;
    case CYAML_SEQUENCE_FIXED:
    case CYAML_SEQUENCE:
        if (s->type == CYAML_SEQUENCE_FIXED)
            count = s->sequence.max;
        else if (!name) {
            rc = CM_ERR_INTERNAL; /* libcyaml keeps a SEQUENCE's count in its mapping */
            break;
        }
        rc = cm_json_new_array(&child);
        if (!rc)
            rc = walk_sequence(t, s, p, count, child);
        if (!rc)
            rc = cm_json_adopt(parent, name, &child);
        break;
    default:
        rc = CM_ERR_INTERNAL;
        break;
    }
out:
    cJSON_Delete(child);
    t->depth--;
    return rc;
}

int cm_cfg_to_json(const struct cm_cfg_spec *spec, const void *cfg, const char *const *omit,
                   struct cJSON **out)
{
    struct to_json t;
    cJSON *root = NULL;
    int rc;

    if (!spec_ok(spec) || !cfg || !out) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    memset(&t, 0, sizeof t);
    t.omit = omit;
    rc = cm_json_new_object(&root);
    if (rc)
        goto out;
    rc = walk_mapping(&t, spec->schema, cfg, root);
    if (rc)
        goto out;
    *out = root;
    root = NULL;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- the slot ---- */

struct cm_cfg_ref {
    atomic_long refs;
    void *cfg;
    cm_cfg_free_fn free_fn;
    const void *ud;
};

struct cm_cfg_slot {
    pthread_mutex_t mu;     /* guards cur and the increment in acquire */
    struct cm_cfg_ref *cur; /* holds one reference; NULL when empty */
    cm_cfg_free_fn free_fn;
    const void *ud;
};

void cm_cfg_free_with_spec(void *cfg, const void *spec)
{
    cm_cfg_free(spec, cfg);
}

int cm_cfg_slot_new(struct cm_cfg_slot **out, cm_cfg_free_fn free_fn, const void *ud)
{
    struct cm_cfg_slot *s;
    if (!out || !free_fn)
        return CM_ERR_INVAL;
    s = cm_calloc(1, sizeof *s);
    if (!s)
        return CM_ERR_NOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        cm_free(s);
        return CM_ERR_NOMEM;
    }
    s->free_fn = free_fn;
    s->ud = ud;
    *out = s;
    return CM_OK;
}

void cm_cfg_ref_release(struct cm_cfg_ref *r)
{
    if (!r)
        return;
    /* acq_rel: the freeing thread sees every reader's last use as done */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (r->cfg)
        r->free_fn(r->cfg, r->ud);
    cm_free(r);
}

void cm_cfg_slot_free(struct cm_cfg_slot *s)
{
    if (!s)
        return;
    cm_cfg_ref_release(s->cur);
    pthread_mutex_destroy(&s->mu);
    cm_free(s);
}

int cm_cfg_slot_swap(struct cm_cfg_slot *s, void *cfg)
{
    struct cm_cfg_ref *r = NULL, *old;
    if (!s)
        return CM_ERR_INVAL;
    if (cfg) {
        r = cm_malloc(sizeof *r);
        if (!r)
            return CM_ERR_NOMEM;
        atomic_init(&r->refs, 1); /* the slot's reference */
        r->cfg = cfg;
        r->free_fn = s->free_fn;
        r->ud = s->ud;
    }
    pthread_mutex_lock(&s->mu);
    old = s->cur;
    s->cur = r;
    pthread_mutex_unlock(&s->mu);
    cm_cfg_ref_release(old); /* frees it now unless a reader still holds it */
    return CM_OK;
}

/*
 * The increment happens under the mutex: a lock-free "load pointer, then increment"
 * could increment a ref that a concurrent swap + last release has just freed.
 */
struct cm_cfg_ref *cm_cfg_slot_acquire(struct cm_cfg_slot *s)
{
    struct cm_cfg_ref *r;
    if (!s)
        return NULL;
    pthread_mutex_lock(&s->mu);
    r = s->cur;
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    return r;
}

const void *cm_cfg_ref_get(const struct cm_cfg_ref *r)
{
    return r ? r->cfg : NULL;
}
