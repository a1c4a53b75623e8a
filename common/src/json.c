/* SPDX-License-Identifier: MIT */
/*
 * json.c - cJSON helpers: a strict pre-parse check, typed getters, printing, building.
 *
 * cm_json_parse() = check() (one pass, explicit container stack, no recursion: depth, size,
 * grammar, UTF-8, byte offset of the first fault) then cJSON_ParseWithLengthOpts() on the
 * same bytes, then an optional duplicate-key walk (iterative too). check() is at least as
 * strict as cJSON 1.7.15 (numbers <= 63 chars, paired surrogates, nesting <= 1000), so if
 * cJSON still returns NULL the only cause left is a failed allocation: CM_ERR_NOMEM.
 * Getters never use cJSON_GetObjectItem (case-insensitive) nor valueint (truncates). The
 * printer is our own (iterative, exact numbers; see put_number for cJSON's rounding).
 */
#include "cm/json.h"

#include "cm/alloc.h"
#include "cm/buf.h"
#include "cm/err.h"

#include <float.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void ensure_hooks(void)
{
    pthread_once(&hooks_once, cm_alloc_hook_cjson);
}

/* ---- errors ---- */

/* copies at most cap-1 bytes of s, never cutting a UTF-8 sequence */
static void copy_trunc(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static void build_msg(struct cm_json_err *e)
{
    if (e->field[0])
        snprintf(e->msg, sizeof e->msg, "field '%s' %s", e->field, e->_what);
    else
        snprintf(e->msg, sizeof e->msg, "JSON value %s", e->_what);
}

__attribute__((format(printf, 4, 0))) static void
verr_set(struct cm_json_err *e, int rc, const char *field, const char *fmt, va_list ap)
{
    char what[sizeof e->_what];
    if (!e)
        return;
    vsnprintf(what, sizeof what, fmt, ap);
    e->rc = rc;
    e->offset = 0;
    copy_trunc(e->field, sizeof e->field, field ? field : "");
    copy_trunc(e->_what, sizeof e->_what, what);
    build_msg(e);
}

void cm_json_err_set(struct cm_json_err *e, int rc, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_set(e, rc, field, fmt, ap);
    va_end(ap);
}

void cm_json_err_scope(struct cm_json_err *e, const char *fmt, ...)
{
    char prefix[CM_JSON_ERR_FIELD_MAX], path[2 * CM_JSON_ERR_FIELD_MAX + 2];
    va_list ap;

    if (!e)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s%s%s", prefix, (e->field[0] && e->field[0] != '[') ? "." : "",
             e->field);
    copy_trunc(e->field, sizeof e->field, path);
    if (e->_what[0])
        build_msg(e);
}

/* a message that is not about a field (parse errors); not rebuilt by scoping */
__attribute__((format(printf, 4, 5))) static void err_plain(struct cm_json_err *e, int rc,
                                                            size_t offset, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return;
    e->rc = rc;
    e->offset = offset;
    e->field[0] = '\0';
    e->_what[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* ---- the pre-parse check ---- */

enum { ST_VALUE, ST_VALUE_OR_CLOSE, ST_KEY, ST_KEY_OR_CLOSE, ST_COLON, ST_NEXT };

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* the 4 hex digits at s (n bytes available); -1 if not */
static long hex4(const unsigned char *s, size_t n)
{
    long v = 0;
    if (n < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* length of the valid UTF-8 sequence at s (lead byte >= 0x80), 0 if invalid */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* > U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

/* string starting at s[*i] == '"'; advances *i past the closing quote */
static const char *scan_string(const unsigned char *s, size_t n, size_t *i)
{
    size_t k = *i + 1;
    for (;;) {
        unsigned char c;
        if (k >= n)
            return "unterminated string";
        c = s[k];
        if (c == '"') {
            *i = k + 1;
            return NULL;
        }
        if (c < 0x20) {
            *i = k;
            return c ? "control character in string" : "NUL byte in string";
        }
        if (c == '\\') {
            long u, lo;
            if (k + 1 >= n)
                return "unterminated string";
            c = s[k + 1];
            if (c != 'u') {
                if (!strchr("\"\\/bfnrt", c) || !c) {
                    *i = k;
                    return "invalid escape in string";
                }
                k += 2;
                continue;
            }
            u = hex4(s + k + 2, n - k - 2);
            if (u < 0) {
                *i = k;
                return "invalid \\u escape in string";
            }
            if (u == 0) {
                *i = k;
                return "\\u0000 in strings is not supported";
            }
            if (u >= 0xDC00 && u <= 0xDFFF) {
                *i = k;
                return "unpaired UTF-16 surrogate in string";
            }
            if (u >= 0xD800 && u <= 0xDBFF) {
                lo = (k + 7 < n && s[k + 6] == '\\' && s[k + 7] == 'u') ? hex4(s + k + 8, n - k - 8)
                                                                        : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    *i = k;
                    return "unpaired UTF-16 surrogate in string";
                }
                k += 12;
                continue;
            }
            k += 6;
            continue;
        }
        if (c < 0x80) {
            k++;
            continue;
        }
        {
            size_t l = utf8_len(s + k, n - k);
            if (!l) {
                *i = k;
                return "invalid UTF-8 in string";
            }
            k += l;
        }
    }
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* number at s[*i] ('-' or digit), RFC 8259 grammar */
static const char *scan_number(const unsigned char *s, size_t n, size_t *i)
{
    size_t k = *i, start = *i;

    if (s[k] == '-')
        k++;
    if (k < n && s[k] == '0') {
        k++;
    } else if (k < n && s[k] >= '1' && s[k] <= '9') {
        while (k < n && is_digit(s[k]))
            k++;
    } else {
        *i = k;
        return "invalid number";
    }
    if (k < n && s[k] == '.') {
        k++;
        if (k >= n || !is_digit(s[k])) {
            *i = k;
            return "invalid number";
        }
        while (k < n && is_digit(s[k]))
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k >= n || !is_digit(s[k])) {
            *i = k;
            return "invalid number";
        }
        while (k < n && is_digit(s[k]))
            k++;
    }
    if (k - start > 63) /* cJSON copies at most 63 characters of a number */
        return "number longer than 63 characters";
    *i = k;
    return NULL;
}

/*
 * Validates s[0..n) as one JSON text, nesting at most max_depth. Returns CM_OK, or
 * CM_ERR_PARSE / CM_ERR_LIMIT with *off and *why set.
 */
static int check(const unsigned char *s, size_t n, unsigned max_depth, size_t *off,
                 const char **why)
{
    unsigned char stack[CM_JSON_DEPTH_MAX]; /* '{' or '[' per open container */
    unsigned depth = 0;
    size_t i = 0;
    int st = ST_VALUE;
    const char *w = NULL;

    for (;;) {
        unsigned char c;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i == n) {
            if (st == ST_NEXT && depth == 0)
                return CM_OK;
            w = "unexpected end of input";
            goto bad;
        }
        c = s[i];
        if (st == ST_NEXT) {
            unsigned char top;
            if (depth == 0) {
                w = "unexpected data after the value";
                goto bad;
            }
            top = stack[depth - 1];
            if (c == ',') {
                st = top == '{' ? ST_KEY : ST_VALUE;
                i++;
            } else if ((c == '}' && top == '{') || (c == ']' && top == '[')) {
                depth--;
                i++;
            } else {
                w = top == '{' ? "expected ',' or '}'" : "expected ',' or ']'";
                goto bad;
            }
        } else if (st == ST_COLON) {
            if (c != ':') {
                w = "expected ':'";
                goto bad;
            }
            st = ST_VALUE;
            i++;
        } else if (st == ST_KEY || st == ST_KEY_OR_CLOSE) {
            if (c == '}' && st == ST_KEY_OR_CLOSE) {
                depth--;
                i++;
                st = ST_NEXT;
            } else if (c == '"') {
                if ((w = scan_string(s, n, &i)))
                    goto bad;
                st = ST_COLON;
            } else {
                w = "expected a string key";
                goto bad;
            }
        } else if (c == ']' && st == ST_VALUE_OR_CLOSE) {
            depth--;
            i++;
            st = ST_NEXT;
        } else if (c == '{' || c == '[') {
            if (depth >= max_depth) {
                *off = i;
                *why = NULL;
                return CM_ERR_LIMIT;
            }
            stack[depth++] = c;
            i++;
            st = c == '{' ? ST_KEY_OR_CLOSE : ST_VALUE_OR_CLOSE;
        } else {
            if (c == '"')
                w = scan_string(s, n, &i);
            else if (c == '-' || is_digit(c))
                w = scan_number(s, n, &i);
            else if (n - i >= 4 && memcmp(s + i, "true", 4) == 0)
                i += 4;
            else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0)
                i += 5;
            else if (n - i >= 4 && memcmp(s + i, "null", 4) == 0)
                i += 4;
            else
                w = c ? "unexpected character" : "NUL byte";
            if (w)
                goto bad;
            st = ST_NEXT;
        }
    }
bad:
    *off = i;
    *why = w;
    return CM_ERR_PARSE;
}

/* ---- duplicate keys ---- */

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* CM_OK, or CM_ERR_PARSE with *dup set to a key @p obj has twice, or CM_ERR_NOMEM */
static int object_dups(const cJSON *obj, const char **dup)
{
    const char **keys = NULL;
    const cJSON *a, *b;
    size_t k = 0, n = 0;
    int rc = CM_OK;

    for (a = obj->child; a; a = a->next)
        n++;
    if (n <= 16) {
        for (a = obj->child; a; a = a->next)
            for (b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) {
                    *dup = a->string;
                    return CM_ERR_PARSE;
                }
        return CM_OK;
    }
    keys = cm_malloc(n * sizeof *keys);
    if (!keys) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    for (a = obj->child; a; a = a->next)
        keys[k++] = a->string;
    qsort(keys, n, sizeof *keys, cmp_key);
    for (k = 1; k < n; k++)
        if (strcmp(keys[k - 1], keys[k]) == 0) {
            *dup = keys[k];
            rc = CM_ERR_PARSE;
            goto out;
        }
out:
    cm_free(keys);
    return rc;
}

/* walks the tree without recursion (the check bounded its depth) looking for repeated keys */
static int find_dups(const cJSON *root, struct cm_json_err *err)
{
    const cJSON *stack[CM_JSON_DEPTH_MAX];
    const cJSON *cur = root;
    size_t sp = 0;
    int rc;

    for (;;) {
        int container = cJSON_IsObject(cur) || cJSON_IsArray(cur);
        if (cJSON_IsObject(cur)) {
            const char *dup = NULL;
            rc = object_dups(cur, &dup);
            if (rc == CM_ERR_PARSE) {
                cm_json_err_set(err, rc, dup, "is given more than once");
                return rc;
            }
            if (rc) {
                err_plain(err, rc, 0, "out of memory");
                return rc;
            }
        }
        if (container && cur->child && sp < CM_JSON_DEPTH_MAX) {
            stack[sp++] = cur;
            cur = cur->child;
            continue;
        }
        while (sp > 0 && !cur->next)
            cur = stack[--sp];
        if (sp == 0)
            return CM_OK;
        cur = cur->next;
    }
}

/* ---- parse / print ---- */

int cm_json_parse(const char *data, size_t len, const struct cm_json_parse_opts *opts, cJSON **out,
                  struct cm_json_err *err)
{
    const unsigned char *s = (const unsigned char *)data;
    unsigned max_depth = opts && opts->max_depth ? opts->max_depth : CM_JSON_DEPTH_DEFAULT;
    size_t max_size = opts ? opts->max_size : 0, off = 0, bom = 0;
    const char *why = NULL;
    cJSON *root = NULL;
    int rc = CM_OK;

    if (!out || (!data && len) || max_depth > CM_JSON_DEPTH_MAX) {
        rc = CM_ERR_INVAL;
        err_plain(err, rc, 0, "invalid arguments to the JSON parser");
        goto out;
    }
    if (max_size && len > max_size) {
        rc = CM_ERR_LIMIT;
        err_plain(err, rc, max_size, "JSON text larger than %zu bytes", max_size);
        goto out;
    }
    if (!data)
        s = (const unsigned char *)(data = ""); /* len is 0: no arithmetic on NULL */
    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        bom = 3;
    rc = check(s + bom, len - bom, max_depth, &off, &why);
    if (rc == CM_ERR_LIMIT) {
        err_plain(err, rc, off + bom, "JSON nested deeper than %u levels", max_depth);
        goto out;
    }
    if (rc) {
        err_plain(err, rc, off + bom, "invalid JSON at byte %zu: %s", off + bom, why);
        goto out;
    }
    ensure_hooks();
    root = cJSON_ParseWithLengthOpts(data + bom, len - bom, NULL, 0);
    if (!root) {
        rc = CM_ERR_NOMEM; /* the input passed check(), so only an allocation can fail */
        err_plain(err, rc, 0, "out of memory");
        goto out;
    }
    if (!(opts && (opts->flags & CM_JSON_ALLOW_DUP_KEYS))) {
        rc = find_dups(root, err);
        if (rc)
            goto out;
    }
    *out = root;
    root = NULL;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- printing (ours, not cJSON_PrintUnformatted: see put_number) ---- */

static int put(struct cm_buf *b, const char *s, size_t n)
{
    return cm_buf_append(b, s, n);
}

/* JSON string: escapes '"', '\\' and control bytes; other bytes (UTF-8) pass as they are */
static int put_string(struct cm_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    int rc = put(b, "\"", 1);

    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            n = 6;
            break;
        }
        rc = put(b, run, (size_t)(s - run));
        if (!rc)
            rc = put(b, esc, n);
        run = s + 1;
    }
    if (!rc)
        rc = put(b, run, (size_t)(s - run));
    if (!rc)
        rc = put(b, "\"", 1);
    return rc;
}

/*
 * Numbers print exactly. cJSON 1.7.15's printer tries "%1.15g" and keeps it when it reads
 * back within a relative epsilon, so 9007199254740991 becomes 9.00719925474099e+15 (off by
 * one, and in exponent form, which Go's encoding/json refuses for integer fields). Here:
 * integral values within +-(2^53-1) print as integers; others as the shortest of %.15g,
 * %.16g, %.17g that reads back as the same double. NaN/inf print as null, like cJSON.
 */
static int put_number(struct cm_buf *b, double d)
{
    char tmp[40];
    int n = 0;

    if (!(d >= -DBL_MAX && d <= DBL_MAX))
        return put(b, "null", 4);
    if (d >= (double)CM_JSON_INT_MIN && d <= (double)CM_JSON_INT_MAX && d == (double)(int64_t)d) {
        n = snprintf(tmp, sizeof tmp, "%" PRId64, (int64_t)d);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        for (int k = 0; k < n; k++) /* a locale's decimal comma; %g has no other comma */
            if (tmp[k] == ',')
                tmp[k] = '.';
    }
    if (n <= 0 || (size_t)n >= sizeof tmp)
        return CM_ERR_INTERNAL;
    return put(b, tmp, (size_t)n);
}

static int put_scalar(struct cm_buf *b, const cJSON *it)
{
    if (cJSON_IsFalse(it))
        return put(b, "false", 5);
    if (cJSON_IsTrue(it))
        return put(b, "true", 4);
    if (cJSON_IsNull(it))
        return put(b, "null", 4);
    if (cJSON_IsNumber(it))
        return put_number(b, it->valuedouble);
    if (cJSON_IsString(it))
        return put_string(b, it->valuestring ? it->valuestring : "");
    if (cJSON_IsRaw(it) && it->valuestring)
        return put(b, it->valuestring, strlen(it->valuestring));
    return CM_ERR_INVAL;
}

int cm_json_print(const cJSON *item, char **out, size_t *len_out)
{
    const cJSON *stack[CM_JSON_DEPTH_MAX]; /* open containers */
    const cJSON *cur = item;
    struct cm_buf b;
    size_t sp = 0, len = 0;
    char *s;
    int rc = CM_OK;

    cm_buf_init(&b, SIZE_MAX / 2);
    if (!item || !out) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    for (;;) {
        int obj = cJSON_IsObject(cur);
        if (sp && cJSON_IsObject(stack[sp - 1])) { /* an object member: its key first */
            rc = cur->string ? put_string(&b, cur->string) : CM_ERR_INVAL;
            if (!rc)
                rc = put(&b, ":", 1);
            if (rc)
                goto out;
        }
        if (obj || cJSON_IsArray(cur)) {
            if (sp == CM_JSON_DEPTH_MAX) { /* this container would be level MAX + 1 */
                rc = CM_ERR_LIMIT;
                goto out;
            }
            rc = put(&b, obj ? "{" : "[", 1);
            if (rc)
                goto out;
            if (cur->child) {
                stack[sp++] = cur;
                cur = cur->child;
                continue;
            }
            rc = put(&b, obj ? "}" : "]", 1);
        } else {
            rc = put_scalar(&b, cur);
        }
        if (rc)
            goto out;
        /* cur is done: close the containers it ended, then on to the next sibling */
        while (sp && !cur->next) {
            cur = stack[--sp];
            rc = put(&b, cJSON_IsObject(cur) ? "}" : "]", 1);
            if (rc)
                goto out;
        }
        if (!sp)
            break;
        rc = put(&b, ",", 1);
        if (rc)
            goto out;
        cur = cur->next;
    }
    s = cm_buf_release(&b, &len);
    if (!s) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (len_out)
        *len_out = len;
    *out = s;
out:
    cm_buf_cleanup(&b);
    return rc;
}

/* ---- getters ---- */

/*
 * Finds @p name in @p obj. *it = NULL (CM_OK) when an optional member is absent or null.
 */
static int lookup(const cJSON *obj, const char *name, int required, cJSON **it,
                  struct cm_json_err *err)
{
    cJSON *m;
    if (!cJSON_IsObject(obj) || !name) {
        cm_json_err_set(err, CM_ERR_INVAL, "", "must be an object");
        return CM_ERR_INVAL;
    }
    m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!m || (!required && cJSON_IsNull(m))) {
        if (required) {
            cm_json_err_set(err, CM_ERR_NOTFOUND, name, "is required");
            return CM_ERR_NOTFOUND;
        }
        m = NULL;
    }
    *it = m;
    return CM_OK;
}

static int wrong_type(struct cm_json_err *err, const char *name, const char *what)
{
    cm_json_err_set(err, CM_ERR_INVAL, name, "must be %s", what);
    return CM_ERR_INVAL;
}

static int get_string(const cJSON *obj, const char *name, int required, const char *def,
                      const char **out, struct cm_json_err *err)
{
    cJSON *it;
    int rc = lookup(obj, name, required, &it, err);
    if (rc)
        return rc;
    if (!it) {
        *out = def;
        return CM_OK;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return wrong_type(err, name, "a string");
    *out = it->valuestring;
    return CM_OK;
}

int cm_json_get_string(const cJSON *obj, const char *name, const char **out,
                       struct cm_json_err *err)
{
    return get_string(obj, name, 1, NULL, out, err);
}

int cm_json_opt_string(const cJSON *obj, const char *name, const char *def, const char **out,
                       struct cm_json_err *err)
{
    return get_string(obj, name, 0, def, out, err);
}

static int get_bool(const cJSON *obj, const char *name, int required, bool def, bool *out,
                    struct cm_json_err *err)
{
    cJSON *it;
    int rc = lookup(obj, name, required, &it, err);
    if (rc)
        return rc;
    if (!it) {
        *out = def;
        return CM_OK;
    }
    if (!cJSON_IsBool(it))
        return wrong_type(err, name, "a boolean");
    *out = cJSON_IsTrue(it) ? true : false;
    return CM_OK;
}

int cm_json_get_bool(const cJSON *obj, const char *name, bool *out, struct cm_json_err *err)
{
    return get_bool(obj, name, 1, false, out, err);
}

int cm_json_opt_bool(const cJSON *obj, const char *name, bool def, bool *out,
                     struct cm_json_err *err)
{
    return get_bool(obj, name, 0, def, out, err);
}

int cm_json_to_int64(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
    double d;
    int64_t v;

    if (!cJSON_IsNumber(item) || min > max)
        return CM_ERR_INVAL;
    d = item->valuedouble;
    /* NaN fails both comparisons' negation; +-inf and |d| >= 2^53 fail the range */
    if (!(d >= (double)CM_JSON_INT_MIN && d <= (double)CM_JSON_INT_MAX))
        return CM_ERR_INVAL;
    v = (int64_t)d; /* exact for |d| < 2^53; truncates a fraction, caught next */
    if ((double)v != d)
        return CM_ERR_INVAL;
    if (v < min || v > max)
        return CM_ERR_INVAL;
    *out = v;
    return CM_OK;
}

static int get_int64(const cJSON *obj, const char *name, int required, int64_t min, int64_t max,
                     int64_t def, int64_t *out, struct cm_json_err *err)
{
    int64_t lo = min < CM_JSON_INT_MIN ? CM_JSON_INT_MIN : min;
    int64_t hi = max > CM_JSON_INT_MAX ? CM_JSON_INT_MAX : max;
    cJSON *it;
    int rc;

    if (min > max) {
        cm_json_err_set(err, CM_ERR_INVAL, name, "has an empty allowed range");
        return CM_ERR_INVAL;
    }
    rc = lookup(obj, name, required, &it, err);
    if (rc)
        return rc;
    if (!it) {
        *out = def;
        return CM_OK;
    }
    rc = cm_json_to_int64(it, min, max, out);
    if (rc) {
        if (lo == CM_JSON_INT_MIN && hi == CM_JSON_INT_MAX)
            cm_json_err_set(err, rc, name, "must be an integer");
        else
            cm_json_err_set(err, rc, name, "must be an integer between %" PRId64 " and %" PRId64,
                            lo, hi);
    }
    return rc;
}

int cm_json_get_int64(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                      struct cm_json_err *err)
{
    return get_int64(obj, name, 1, min, max, 0, out, err);
}

int cm_json_opt_int64(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t def,
                      int64_t *out, struct cm_json_err *err)
{
    return get_int64(obj, name, 0, min, max, def, out, err);
}

static int get_double(const cJSON *obj, const char *name, int required, double min, double max,
                      double def, double *out, struct cm_json_err *err)
{
    cJSON *it;
    double d;
    int rc = lookup(obj, name, required, &it, err);

    if (rc)
        return rc;
    if (!it) {
        *out = def;
        return CM_OK;
    }
    d = cJSON_IsNumber(it) ? it->valuedouble : 0;
    /* the range test also rejects NaN and +-inf */
    if (!cJSON_IsNumber(it) || !(d >= min && d <= max && d >= -DBL_MAX && d <= DBL_MAX)) {
        if (min <= -DBL_MAX && max >= DBL_MAX)
            cm_json_err_set(err, CM_ERR_INVAL, name, "must be a number");
        else
            cm_json_err_set(err, CM_ERR_INVAL, name, "must be a number between %g and %g", min,
                            max);
        return CM_ERR_INVAL;
    }
    *out = d;
    return CM_OK;
}

int cm_json_get_double(const cJSON *obj, const char *name, double min, double max, double *out,
                       struct cm_json_err *err)
{
    return get_double(obj, name, 1, min, max, 0, out, err);
}

int cm_json_opt_double(const cJSON *obj, const char *name, double min, double max, double def,
                       double *out, struct cm_json_err *err)
{
    return get_double(obj, name, 0, min, max, def, out, err);
}

static int get_container(const cJSON *obj, const char *name, int required, int array, cJSON **out,
                         struct cm_json_err *err)
{
    cJSON *it;
    int rc = lookup(obj, name, required, &it, err);
    if (rc)
        return rc;
    if (it && !(array ? cJSON_IsArray(it) : cJSON_IsObject(it)))
        return wrong_type(err, name, array ? "an array" : "an object");
    *out = it;
    return CM_OK;
}

int cm_json_get_object(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err)
{
    return get_container(obj, name, 1, 0, out, err);
}

int cm_json_opt_object(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err)
{
    return get_container(obj, name, 0, 0, out, err);
}

int cm_json_get_array(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err)
{
    return get_container(obj, name, 1, 1, out, err);
}

int cm_json_opt_array(const cJSON *obj, const char *name, cJSON **out, struct cm_json_err *err)
{
    return get_container(obj, name, 0, 1, out, err);
}

/* ---- building ---- */

int cm_json_new_object(cJSON **out)
{
    cJSON *o;
    ensure_hooks();
    o = cJSON_CreateObject();
    if (!o)
        return CM_ERR_NOMEM;
    *out = o;
    return CM_OK;
}

int cm_json_new_array(cJSON **out)
{
    cJSON *a;
    ensure_hooks();
    a = cJSON_CreateArray();
    if (!a)
        return CM_ERR_NOMEM;
    *out = a;
    return CM_OK;
}

int cm_json_adopt(cJSON *parent, const char *name, cJSON **item)
{
    cJSON *it = *item;
    *item = NULL;
    return cm_json_set_item(parent, name, it);
}

int cm_json_set_item(cJSON *parent, const char *name, cJSON *item)
{
    cJSON *old;
    char *key = NULL;
    int rc = CM_OK;

    ensure_hooks();
    if (item && item == parent)
        return CM_ERR_INVAL; /* not ours to delete */
    if (!item) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (cJSON_IsArray(parent) && !name) {
        if (!cJSON_AddItemToArray(parent, item))
            rc = CM_ERR_INVAL;
        goto out;
    }
    if (!cJSON_IsObject(parent) || !name) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    old = cJSON_GetObjectItemCaseSensitive(parent, name);
    if (!old) {
        if (!cJSON_AddItemToObject(parent, name, item))
            rc = CM_ERR_NOMEM; /* the only failure left: copying the key */
        goto out;
    }
    key = cm_strdup(name);
    if (!key) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    if (item->string && !(item->type & cJSON_StringIsConst))
        cm_free(item->string);
    item->string = key;
    item->type &= ~cJSON_StringIsConst;
    cJSON_ReplaceItemViaPointer(parent, old, item); /* cannot fail: all pointers are valid */
out:
    if (rc)
        cJSON_Delete(item);
    return rc;
}

int cm_json_set_string(cJSON *parent, const char *name, const char *value)
{
    if (!value)
        return CM_ERR_INVAL;
    return cm_json_set_stringn(parent, name, value, strlen(value));
}

int cm_json_set_stringn(cJSON *parent, const char *name, const char *value, size_t len)
{
    cJSON *item = NULL;
    char *copy = NULL;
    int rc = CM_OK;

    if (!value || memchr(value, '\0', len)) {
        rc = CM_ERR_INVAL;
        goto out;
    }
    ensure_hooks();
    copy = cm_strndup(value, len);
    item = cJSON_CreateNull();
    if (!copy || !item) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    /* hand the copy to the item: one copy instead of cJSON_CreateString's second */
    item->type = cJSON_String;
    item->valuestring = copy;
    copy = NULL;
    rc = cm_json_set_item(parent, name, item);
    item = NULL; /* owned by set_item from here, also on failure */
out:
    cm_free(copy);
    cJSON_Delete(item);
    return rc;
}

int cm_json_set_int64(cJSON *parent, const char *name, int64_t value)
{
    if (value < CM_JSON_INT_MIN || value > CM_JSON_INT_MAX)
        return CM_ERR_INVAL;
    ensure_hooks();
    return cm_json_set_item(parent, name, cJSON_CreateNumber((double)value));
}

int cm_json_set_double(cJSON *parent, const char *name, double value)
{
    if (!(value >= -DBL_MAX && value <= DBL_MAX))
        return CM_ERR_INVAL;
    ensure_hooks();
    return cm_json_set_item(parent, name, cJSON_CreateNumber(value));
}

int cm_json_set_bool(cJSON *parent, const char *name, bool value)
{
    ensure_hooks();
    return cm_json_set_item(parent, name, cJSON_CreateBool(value ? 1 : 0));
}

int cm_json_set_null(cJSON *parent, const char *name)
{
    ensure_hooks();
    return cm_json_set_item(parent, name, cJSON_CreateNull());
}
