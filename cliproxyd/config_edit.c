/* SPDX-License-Identifier: MIT */
/*
 * config_edit.c - see config_edit.h. The YAML is not parsed into a tree (that would lose
 * the comments); instead the text is walked line by line at one indentation level:
 * each entry at that level is a key line plus the lines that belong to its value
 * (deeper-indented lines, "- " items at the key's column, the rest of a multi-line
 * flow collection or quoted scalar). The edit splices new value text in place of the
 * old value's bytes; the real loader then has the last word before anything is written.
 */
#include "config_edit.h"

#include "cm/alloc.h"
#include "cm/cfg.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/file.h"
#include "cm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- quoting ---- */

/* Length of the valid UTF-8 sequence at @p s (NUL-terminated) and its code point; 0 if
 * invalid (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_char(const unsigned char *s, unsigned *cp)
{
    unsigned c = s[0], n, v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (unsigned i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

int cp_config_edit_quote(struct cm_buf *b, const char *s)
{
    const unsigned char *p;
    unsigned cp;
    size_t n;
    int rc;

    if (!b || !s)
        return CM_ERR_INVAL;
    for (p = (const unsigned char *)s; *p; p += n)
        if (!(n = utf8_char(p, &cp)))
            return CM_ERR_INVAL;
    rc = cm_buf_append(b, "\"", 1);
    for (p = (const unsigned char *)s; !rc && *p; p += n) {
        n = utf8_char(p, &cp);
        if (cp == '"')
            rc = cm_buf_append(b, "\\\"", 2);
        else if (cp == '\\')
            rc = cm_buf_append(b, "\\\\", 2);
        else if (cp == '\t')
            rc = cm_buf_append(b, "\\t", 2);
        else if (cp == '\n')
            rc = cm_buf_append(b, "\\n", 2);
        else if (cp == '\r')
            rc = cm_buf_append(b, "\\r", 2);
        else if (cp == 0x85)
            rc = cm_buf_append(b, "\\N", 2);
        else if (cp == 0x2028)
            rc = cm_buf_append(b, "\\L", 2);
        else if (cp == 0x2029)
            rc = cm_buf_append(b, "\\P", 2);
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            rc = cm_buf_appendf(b, "\\x%02x", cp);
        else if (cp == 0xfeff)
            rc = cm_buf_append(b, "\\uFEFF", 6);
        else
            rc = cm_buf_append(b, p, n);
    }
    if (!rc)
        rc = cm_buf_append(b, "\"", 1);
    return rc;
}

/* ---- the line walker ---- */

struct line {
    size_t start;  /* first byte */
    size_t end;    /* end of the content (before "\r\n" / "\n") */
    size_t next;   /* start of the next line (the text's length at the end) */
    size_t indent; /* leading spaces */
    bool blank;    /* spaces and tabs only */
    bool comment;  /* the first non-blank is '#' */
};

static void get_line(const char *t, size_t len, size_t pos, struct line *l)
{
    size_t e = pos, i = pos;

    while (e < len && t[e] != '\n')
        e++;
    l->start = pos;
    l->next = e < len ? e + 1 : len;
    l->end = e > pos && t[e - 1] == '\r' ? e - 1 : e;
    while (i < l->end && t[i] == ' ')
        i++;
    l->indent = i - pos;
    while (i < l->end && (t[i] == ' ' || t[i] == '\t'))
        i++;
    l->blank = i == l->end;
    l->comment = !l->blank && t[i] == '#';
}

static size_t skip_ws(const char *t, size_t p, size_t e)
{
    while (p < e && (t[p] == ' ' || t[p] == '\t'))
        p++;
    return p;
}

/* "-" alone or "- ..." at the line's indent: a block sequence item */
static bool dash_item(const char *t, const struct line *l)
{
    size_t p = l->start + l->indent;
    return p < l->end && t[p] == '-' && (p + 1 == l->end || t[p + 1] == ' ' || t[p + 1] == '\t');
}

enum vkind { V_EMPTY, V_PLAIN, V_FLOW, V_DQ, V_SQ, V_BLOCK };

/* One key (or other line) at the walked indentation with the extent of its value. */
struct entry {
    size_t line;          /* start of the key line */
    bool is_key;          /* the line is "key:" */
    size_t key_s, key_e;  /* the key's text (without quotes) */
    size_t val;           /* just after the ':' */
    size_t inl_s, inl_e;  /* the value text on the key line, comment excluded */
    enum vkind kind;      /* what the value starts with */
    size_t com_s, com_e;  /* a comment to keep (com_e > com_s) */
    size_t end;           /* end of the value's last line, newline included */
    bool members;         /* lines below the key belong to the value */
    size_t member_indent; /* indent of the first of them */
    bool member_dash;     /* ... which is a "- " item */
    const char *eol;      /* "\n" or "\r\n", as the file uses */
};

/* Parses "key:" at the content of @p l; 1 and the key span / the position after ':' */
static bool key_of(const char *t, const struct line *l, size_t *ks, size_t *ke, size_t *after)
{
    size_t p = l->start + l->indent, e = l->end;

    if (p < e && (t[p] == '"' || t[p] == '\'')) {
        char q = t[p];
        *ks = ++p;
        while (p < e && t[p] != q) {
            if (q == '"' && t[p] == '\\')
                return false; /* escaped keys are none of ours */
            p++;
        }
        if (p >= e || (q == '\'' && p + 1 < e && t[p + 1] == '\''))
            return false;
        *ke = p++;
        p = skip_ws(t, p, e);
    } else {
        if (p < e && strchr("-?[]{}#&*!|>%@`,", t[p]) &&
            !(t[p] == '-' && p + 1 < e && t[p + 1] != ' ' && t[p + 1] != '\t'))
            return false; /* an indicator: a sequence item, a flow collection, ... */
        *ks = p;
        while (p < e && !(t[p] == ':' && (p + 1 == e || t[p + 1] == ' ' || t[p + 1] == '\t'))) {
            if (t[p] == '#' && p > *ks && (t[p - 1] == ' ' || t[p - 1] == '\t'))
                return false;
            p++;
        }
        *ke = p;
        while (*ke > *ks && (t[*ke - 1] == ' ' || t[*ke - 1] == '\t'))
            (*ke)--;
    }
    if (p >= e || t[p] != ':' || (p + 1 < e && t[p + 1] != ' ' && t[p + 1] != '\t'))
        return false;
    *after = p + 1;
    return true;
}

/* From just after the opening bracket/quote at @p p, the position just after the
 * matching close (or @p limit if there is none). */
static size_t scan_flow(const char *t, size_t p, size_t limit)
{
    int depth = 1;
    while (p < limit && depth > 0) {
        char c = t[p];
        if (c == '"') {
            for (p++; p < limit && t[p] != '"'; p++)
                if (t[p] == '\\' && p + 1 < limit)
                    p++;
        } else if (c == '\'') {
            for (p++; p < limit; p++)
                if (t[p] == '\'') {
                    if (p + 1 < limit && t[p + 1] == '\'')
                        p++;
                    else
                        break;
                }
        } else if (c == '#' && (t[p - 1] == ' ' || t[p - 1] == '\t' || t[p - 1] == '\n')) {
            while (p < limit && t[p] != '\n')
                p++;
            continue;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            depth--;
        }
        p++;
    }
    return p < limit ? p : limit;
}

static size_t scan_dq(const char *t, size_t p, size_t limit)
{
    for (; p < limit && t[p] != '"'; p++)
        if (t[p] == '\\' && p + 1 < limit)
            p++;
    return p < limit ? p + 1 : limit;
}

static size_t scan_sq(const char *t, size_t p, size_t limit)
{
    for (; p < limit; p++)
        if (t[p] == '\'') {
            if (p + 1 < limit && t[p + 1] == '\'')
                p++;
            else
                return p + 1;
        }
    return limit;
}

/* The comment after position @p p on line @p l (if any) into e->com_*; the value text
 * on that line ends there. */
static size_t take_comment(const char *t, const struct line *l, size_t p, struct entry *e)
{
    size_t q = skip_ws(t, p, l->end);
    if (q < l->end && t[q] == '#' && (q == 0 || t[q - 1] == ' ' || t[q - 1] == '\t')) {
        e->com_s = q;
        e->com_e = l->end;
        return q;
    }
    return l->end;
}

/* The entry whose line is @p kl (content at @p indent), values up to @p limit. */
static void scan_entry(const char *t, size_t limit, const struct line *kl, size_t indent,
                       struct entry *e)
{
    struct line l = *kl, vl;
    size_t p, close = 0, pos;

    e->line = kl->start;
    e->com_s = e->com_e = 0;
    e->members = e->member_dash = false;
    e->member_indent = 0;
    e->is_key = key_of(t, kl, &e->key_s, &e->key_e, &e->val);
    if (!e->is_key)
        e->val = kl->start + kl->indent;
    p = skip_ws(t, e->val, kl->end);
    e->inl_s = p;
    if (p == kl->end || t[p] == '#') {
        e->kind = V_EMPTY;
        if (p < kl->end) {
            e->com_s = p;
            e->com_e = kl->end;
        }
        e->inl_e = p;
    } else if (t[p] == '[' || t[p] == '{') {
        e->kind = V_FLOW;
        close = scan_flow(t, p + 1, limit);
    } else if (t[p] == '"') {
        e->kind = V_DQ;
        close = scan_dq(t, p + 1, limit);
    } else if (t[p] == '\'') {
        e->kind = V_SQ;
        close = scan_sq(t, p + 1, limit);
    } else if (t[p] == '|' || t[p] == '>') {
        e->kind = V_BLOCK;
        e->inl_e = take_comment(t, kl, p + 1, e);
    } else {
        e->kind = V_PLAIN;
        /* a plain scalar ends at " #" */
        e->inl_e = kl->end;
        for (size_t q = p + 1; q < kl->end; q++)
            if (t[q] == '#' && (t[q - 1] == ' ' || t[q - 1] == '\t')) {
                e->com_s = q;
                e->com_e = kl->end;
                e->inl_e = q;
                break;
            }
        while (e->inl_e > p && (t[e->inl_e - 1] == ' ' || t[e->inl_e - 1] == '\t'))
            e->inl_e--;
    }
    if (e->kind == V_FLOW || e->kind == V_DQ || e->kind == V_SQ) {
        /* the value ends on the line of its closing character (close - 1) */
        for (pos = kl->start;; pos = vl.next) {
            get_line(t, limit, pos, &vl);
            if (close - 1 < vl.next || vl.next >= limit)
                break;
        }
        if (close > vl.end)
            close = vl.end;
        e->inl_e = close;
        take_comment(t, &vl, close, e);
        e->end = vl.next;
        return;
    }
    /* lines below: deeper ones (and "- " items at this column for an empty value) */
    e->end = kl->next;
    for (pos = kl->next; pos < limit; pos = l.next) {
        bool member;
        get_line(t, limit, pos, &l);
        if (e->kind == V_BLOCK)
            member = !l.blank && l.indent > indent;
        else
            member = !l.blank && !l.comment &&
                     (l.indent > indent ||
                      (e->kind == V_EMPTY && e->is_key && l.indent == indent && dash_item(t, &l)));
        if (member) {
            if (!e->members) {
                e->members = true;
                e->member_indent = l.indent;
                e->member_dash = dash_item(t, &l);
            }
            e->end = l.next;
        } else if (!l.blank && !l.comment) {
            break;
        }
    }
}

/* Finds key @p key among the entries at @p indent in [@p from, @p limit). */
static bool find_key(const char *t, size_t from, size_t limit, size_t indent, const char *key,
                     struct entry *out)
{
    size_t pos = from, klen = strlen(key);
    struct line l;

    while (pos < limit) {
        get_line(t, limit, pos, &l);
        if (l.blank || l.comment || l.indent != indent) {
            pos = l.next;
            continue;
        }
        scan_entry(t, limit, &l, indent, out);
        if (out->is_key && out->key_e - out->key_s == klen &&
            memcmp(t + out->key_s, key, klen) == 0)
            return true;
        pos = out->end > l.next ? out->end : l.next;
    }
    return false;
}

/* ---- building the new text ---- */

static int spaces(struct cm_buf *b, size_t n)
{
    static const char sp[] = "                                ";
    int rc = CM_OK;
    while (!rc && n > 0) {
        size_t k = n < sizeof sp - 1 ? n : sizeof sp - 1;
        rc = cm_buf_append(b, sp, k);
        n -= k;
    }
    return rc;
}

static int kept_comment(struct cm_buf *b, const char *t, const struct entry *e)
{
    int rc = CM_OK;
    if (e->com_e > e->com_s) {
        rc = cm_buf_append(b, " ", 1);
        if (!rc)
            rc = cm_buf_append(b, t + e->com_s, e->com_e - e->com_s);
    }
    return rc;
}

static const char *eol_of(const char *t, size_t len)
{
    const char *nl = memchr(t, '\n', len);
    return nl && nl > t && nl[-1] == '\r' ? "\r\n" : "\n";
}

/* the text does not end with a newline: one is needed before appending a line */
static int ensure_eol(struct cm_buf *b, const char *eol)
{
    if (b->len > 0 && b->data[b->len - 1] != '\n')
        return cm_buf_append_str(b, eol);
    return CM_OK;
}

/* a value to write: a list (items, n) or a scalar (value) */
struct newval {
    const char *const *items;
    size_t n;
    const char *value; /* non-NULL: scalar */
};

/* ": <value>" style text after a key's colon (the colon is already there), with the
 * kept comment @p e (may be NULL), ending with a newline; items indented by @p ind. */
static int emit_value(struct cm_buf *b, const char *t, const struct entry *e,
                      const struct newval *v, size_t ind, const char *eol)
{
    int rc;
    if (v->value) {
        rc = cm_buf_append(b, " ", 1);
        if (!rc)
            rc = cp_config_edit_quote(b, v->value);
    } else if (v->n == 0) {
        rc = cm_buf_append(b, " []", 3);
    } else {
        rc = CM_OK;
    }
    if (!rc && e)
        rc = kept_comment(b, t, e);
    if (!rc)
        rc = cm_buf_append_str(b, eol);
    for (size_t i = 0; !rc && !v->value && i < v->n; i++) {
        rc = spaces(b, ind);
        if (!rc)
            rc = cm_buf_append(b, "- ", 2);
        if (!rc)
            rc = cp_config_edit_quote(b, v->items[i]);
        if (!rc)
            rc = cm_buf_append_str(b, eol);
    }
    return rc;
}

static bool is_null_or_empty_map(const char *t, const struct entry *e)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", "{}"};
    size_t n = e->inl_e - e->inl_s;
    if (e->kind == V_EMPTY)
        return !e->members;
    if (e->members)
        return false;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strlen(nulls[i]) == n && memcmp(t + e->inl_s, nulls[i], n) == 0)
            return true;
    return false;
}

/* @p text with the value of top-level @p key replaced (or the key appended), into @p b. */
static int splice_top(struct cm_buf *b, const char *text, size_t len, size_t begin, const char *key,
                      const struct newval *v, const char *eol)
{
    struct entry e;
    int rc;

    if (find_key(text, begin, len, 0, key, &e)) {
        rc = cm_buf_append(b, text, e.val);
        if (!rc)
            rc = emit_value(b, text, &e, v, e.members && e.member_dash ? e.member_indent : 2, eol);
        if (!rc)
            rc = cm_buf_append(b, text + e.end, len - e.end);
        return rc;
    }
    rc = cm_buf_append(b, text, len);
    if (!rc)
        rc = ensure_eol(b, eol);
    if (!rc)
        rc = cm_buf_appendf(b, "%s:", key);
    if (!rc)
        rc = emit_value(b, NULL, NULL, v, 2, eol);
    return rc;
}

/* The same for @p key inside the block mapping of top-level key @p parent. */
static int splice_nested(struct cm_buf *b, const char *text, size_t len, size_t begin,
                         const char *parent, const char *key, const struct newval *v,
                         const char *eol)
{
    struct entry pe, e;
    size_t child, region;
    int rc;

    if (!find_key(text, begin, len, 0, parent, &pe)) {
        /* no parent mapping yet: append it with the one key */
        rc = cm_buf_append(b, text, len);
        if (!rc)
            rc = ensure_eol(b, eol);
        if (!rc)
            rc = cm_buf_appendf(b, "%s:%s  %s:", parent, eol, key);
        if (!rc)
            rc = emit_value(b, NULL, NULL, v, 4, eol);
        return rc;
    }
    if (pe.kind != V_EMPTY || !pe.members) {
        if (!is_null_or_empty_map(text, &pe))
            return CM_ERR_INVAL; /* a flow mapping, a scalar: not ours to restructure */
        /* an empty parent becomes a block mapping holding the key */
        rc = cm_buf_append(b, text, pe.val);
        if (!rc)
            rc = kept_comment(b, text, &pe);
        if (!rc)
            rc = cm_buf_appendf(b, "%s  %s:", eol, key);
        if (!rc)
            rc = emit_value(b, NULL, NULL, v, 4, eol);
        if (!rc)
            rc = cm_buf_append(b, text + pe.end, len - pe.end);
        return rc;
    }
    if (pe.member_dash)
        return CM_ERR_INVAL; /* the parent is a sequence */
    child = pe.member_indent;
    /* the mapping's lines: up to the next line with content at the top level (comment
     * lines deeper than the mapping's last member may belong to a block scalar in it) */
    region = pe.end;
    while (region < len) {
        struct line l;
        get_line(text, len, region, &l);
        if (!l.blank && !l.comment)
            break;
        region = l.next;
    }
    if (find_key(text, pe.val, region, child, key, &e)) {
        rc = cm_buf_append(b, text, e.val);
        if (!rc)
            rc = emit_value(b, text, &e, v,
                            e.members && e.member_dash ? e.member_indent : child + 2, eol);
        if (!rc)
            rc = cm_buf_append(b, text + e.end, len - e.end);
        return rc;
    }
    /* absent: after the mapping's last member, before the comments that follow it */
    rc = cm_buf_append(b, text, pe.end);
    if (!rc)
        rc = ensure_eol(b, eol);
    if (!rc)
        rc = spaces(b, child);
    if (!rc)
        rc = cm_buf_appendf(b, "%s:", key);
    if (!rc)
        rc = emit_value(b, NULL, NULL, v, child + 2, eol);
    if (!rc)
        rc = cm_buf_append(b, text + pe.end, len - pe.end);
    return rc;
}

static int edit(const char *text, size_t len, const char *parent, const char *key,
                const struct newval *v, char **out, size_t *out_len)
{
    struct cm_buf b;
    const char *eol;
    char *s;
    size_t begin = 0, n = 0;
    int rc = CM_OK;

    cm_buf_init(&b, CM_CFG_FILE_MAX);
    if (!text || !key || !*key || !out || (parent && !*parent) || (!v->value && v->n && !v->items))
        rc = CM_ERR_INVAL;
    for (size_t i = 0; !rc && !v->value && i < v->n; i++)
        if (!v->items[i])
            rc = CM_ERR_INVAL;
    if (rc)
        goto out;
    eol = eol_of(text, len);
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        begin = 3; /* a UTF-8 BOM is not indentation */
    rc = cm_buf_reserve(&b, len + 256);
    if (!rc)
        rc = parent ? splice_nested(&b, text, len, begin, parent, key, v, eol)
                    : splice_top(&b, text, len, begin, key, v, eol);
    if (rc)
        goto out;
    s = cm_buf_release(&b, &n);
    if (!s) {
        rc = CM_ERR_NOMEM;
        goto out;
    }
    *out = s;
    if (out_len)
        *out_len = n;
out:
    cm_buf_cleanup(&b);
    return rc;
}

int cp_config_edit_set_list(const char *text, size_t len, const char *key, const char *const *items,
                            size_t n, char **out, size_t *out_len)
{
    struct newval v = {.items = items, .n = n, .value = NULL};
    return edit(text, len, NULL, key, &v, out, out_len);
}

int cp_config_edit_set_scalar(const char *text, size_t len, const char *parent, const char *key,
                              const char *value, char **out, size_t *out_len)
{
    struct newval v = {.items = NULL, .n = 0, .value = value};
    if (!value)
        return CM_ERR_INVAL;
    return edit(text, len, parent, key, &v, out, out_len);
}

/* ---- file I/O ---- */

int cp_config_edit_read(const char *path, char **out, size_t *len)
{
    char err[CM_CFG_ERR_MAX];
    int rc = cm_file_read(path, CM_CFG_FILE_MAX, out, len, err, sizeof err);
    if (rc && rc != CM_ERR_NOTFOUND && rc != CM_ERR_DENIED && rc != CM_ERR_INVAL)
        cm_log_warn(NULL, "config: %s", err);
    return rc;
}

static int write_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    return cm_file_write_atomic(path, text, len, 0600, CM_FILE_KEEP_MODE | CM_FILE_IN_PLACE, err,
                                errlen);
}

int cp_config_edit_save(const char *path, const char *text, size_t len,
                        cp_config_edit_verify_fn verify, void *ud, struct cp_config **loaded,
                        enum cp_config_edit_stage *stage, char *err, size_t errlen)
{
    struct cp_config *cfg = NULL;
    enum cp_config_edit_stage st = CP_CONFIG_EDIT_STAGE_LOAD;
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (!path || !text) {
        rc = cm_cfg_fail(err, errlen, "no config text");
        goto out;
    }
    rc = cp_config_load_mem(path, text, len, &cfg, err, errlen);
    if (rc)
        goto out;
    st = CP_CONFIG_EDIT_STAGE_VERIFY;
    if (verify && (rc = verify(cfg, ud, err, errlen)) != CM_OK)
        goto out;
    st = CP_CONFIG_EDIT_STAGE_WRITE;
    rc = write_atomic(path, text, len, err, errlen);
    if (rc)
        goto out;
    st = CP_CONFIG_EDIT_STAGE_NONE;
    if (loaded) {
        *loaded = cfg;
        cfg = NULL;
    }
out:
    if (stage)
        *stage = rc ? st : CP_CONFIG_EDIT_STAGE_NONE;
    cp_config_free(cfg);
    return rc;
}

/* ---- the secret ---- */

int cp_config_edit_secret_is_hashed(const char *secret)
{
    return secret && (strncmp(secret, "$2a$", 4) == 0 || strncmp(secret, "$2b$", 4) == 0 ||
                      strncmp(secret, "$2y$", 4) == 0 || strncmp(secret, "$argon2", 7) == 0);
}

static int verify_secret(const struct cp_config *cfg, void *ud, char *err, size_t errlen)
{
    const char *want = ud;
    if (!cfg->remote_management || !cfg->remote_management->secret_key ||
        strcmp(cfg->remote_management->secret_key, want) != 0)
        return cm_cfg_fail(err, errlen, "remote-management.secret-key: the edit did not land");
    return CM_OK;
}

int cp_config_edit_hash_secret(const char *path, struct cp_config *cfg)
{
    char hash[CM_CRYPTO_BCRYPT_SIZE], err[CM_CFG_ERR_MAX];
    char *text = NULL, *edited = NULL, *copy = NULL, *old;
    size_t len = 0, elen = 0;
    int rc;

    if (!cfg || !cfg->remote_management || !path)
        return CM_ERR_INVAL;
    old = cfg->remote_management->secret_key;
    if (!old || !*old || cp_config_edit_secret_is_hashed(old))
        return CM_OK;
    rc = cm_crypto_bcrypt_hash(old, CP_CONFIG_EDIT_BCRYPT_COST, hash, sizeof hash);
    if (!rc && !(copy = cm_strdup(hash)))
        rc = CM_ERR_NOMEM;
    if (rc) {
        cm_log_error(NULL, "config %s: cannot hash remote-management.secret-key: %s", path,
                     cm_err_str(rc));
        goto out;
    }
    rc = cp_config_edit_read(path, &text, &len);
    if (rc)
        cm_cfg_fail(err, sizeof err, "cannot read it (%s)", cm_err_str(rc));
    if (!rc && (rc = cp_config_edit_set_scalar(text, len, "remote-management", "secret-key", hash,
                                               &edited, &elen)) != CM_OK)
        cm_cfg_fail(err, sizeof err, "cannot edit remote-management.secret-key (%s)",
                    cm_err_str(rc));
    if (!rc)
        rc = cp_config_edit_save(path, edited, elen, verify_secret, hash, NULL, NULL, err,
                                 sizeof err);
    if (rc)
        cm_log_warn(NULL,
                    "config %s: the plaintext secret-key could not be replaced by its bcrypt "
                    "hash in the file (%s); the hash is used in memory only",
                    path, err);
    else
        cm_log_info(NULL, "config %s: remote-management.secret-key stored as a bcrypt hash", path);
    /* in memory: the hash either way; the plaintext is wiped */
    cm_crypto_memzero(old, strlen(old));
    cm_free(old);
    cfg->remote_management->secret_key = copy;
    copy = NULL;
    rc = CM_OK;
out:
    if (edited)
        cm_crypto_memzero(edited, elen);
    if (text)
        cm_crypto_memzero(text, len);
    cm_free(edited);
    cm_free(text);
    cm_free(copy);
    cm_crypto_memzero(hash, sizeof hash);
    return rc;
}
