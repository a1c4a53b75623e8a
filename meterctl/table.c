/* SPDX-License-Identifier: MIT */
/*
 * table.c - aligned tables (see table.h). Widths are computed at render time from the
 * sanitised cells, so a row added later can widen a column.
 */
#include "table.h"

#include "cm/alloc.h"
#include "cm/err.h"

#include <stdint.h>
#include <string.h>

struct row {
    char *cell[MC_TABLE_COLS_MAX];
    enum mc_color color[MC_TABLE_COLS_MAX];
};

struct mc_table {
    size_t ncols;
    char *header[MC_TABLE_COLS_MAX];
    enum mc_align align[MC_TABLE_COLS_MAX];
    struct row *rows;
    size_t nrows, cap;
};

const char *mc_color_on(enum mc_color c)
{
    switch (c) {
    case MC_COLOR_GREEN:
        return "\033[32m";
    case MC_COLOR_RED:
        return "\033[31m";
    case MC_COLOR_YELLOW:
        return "\033[33m";
    case MC_COLOR_DIM:
        return "\033[2m";
    default:
        return "";
    }
}

const char *mc_color_off(void)
{
    return "\033[0m";
}

/* Decodes one UTF-8 character at @p s (@p n bytes left) into *@p cp; returns its length,
 * or 0 for an invalid sequence (overlong, surrogate, > U+10FFFF, truncated). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c = s[0], min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        c &= 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        c &= 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static int is_control(uint32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0);
}

static size_t cp_width(uint32_t c)
{
    if ((c >= 0x300 && c <= 0x36f) || c == 0x200b || (c >= 0xfe00 && c <= 0xfe0f))
        return 0; /* combining marks, zero-width space, variation selectors */
    if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) ||
        (c >= 0x3041 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) ||
        (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) ||
        (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) ||
        (c >= 0x1f300 && c <= 0x1f64f) || (c >= 0x1f900 && c <= 0x1f9ff) ||
        (c >= 0x20000 && c <= 0x3fffd))
        return 2;
    return 1;
}

size_t mc_display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = s ? strlen(s) : 0, w = 0;

    while (n) {
        uint32_t c;
        size_t l = utf8_next(p, n, &c);
        if (!l) {
            w++;
            p++;
            n--;
            continue;
        }
        w += cp_width(c);
        p += l;
        n -= l;
    }
    return w;
}

int mc_sanitize_append(struct cm_buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    int rc = cm_buf_reserve(out, n);

    while (!rc && n) {
        uint32_t c;
        size_t l = utf8_next(p, n, &c);
        if (!l || is_control(c)) {
            rc = cm_buf_append(out, "?", 1);
            l = l ? l : 1;
        } else {
            rc = cm_buf_append(out, p, l);
        }
        p += l;
        n -= l;
    }
    return rc;
}

static char *sanitized_copy(const char *s)
{
    struct cm_buf b;
    char *r = NULL;

    cm_buf_init(&b, (size_t)1 << 20);
    if (mc_sanitize_append(&b, s) == CM_OK)
        r = cm_buf_release(&b, NULL);
    cm_buf_cleanup(&b);
    return r;
}

int mc_table_new(struct mc_table **out, size_t ncols, const char *const *headers,
                 const enum mc_align *align)
{
    struct mc_table *t;

    if (!out || !headers || ncols == 0 || ncols > MC_TABLE_COLS_MAX)
        return CM_ERR_INVAL;
    t = cm_calloc(1, sizeof *t);
    if (!t)
        return CM_ERR_NOMEM;
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        t->align[i] = align ? align[i] : MC_ALIGN_LEFT;
        t->header[i] = sanitized_copy(headers[i]);
        if (!t->header[i]) {
            mc_table_free(t);
            return CM_ERR_NOMEM;
        }
    }
    *out = t;
    return CM_OK;
}

void mc_table_free(struct mc_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        cm_free(t->header[i]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++)
            cm_free(t->rows[r].cell[i]);
    cm_free(t->rows);
    cm_free(t);
}

int mc_table_add(struct mc_table *t, const char *const *cells)
{
    struct row row;

    if (!t || !cells)
        return CM_ERR_INVAL;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct row *n = cm_realloc(t->rows, cap * sizeof *n);
        if (!n)
            return CM_ERR_NOMEM;
        t->rows = n;
        t->cap = cap;
    }
    memset(&row, 0, sizeof row);
    for (size_t i = 0; i < t->ncols; i++) {
        row.cell[i] = sanitized_copy(cells[i] ? cells[i] : "");
        if (!row.cell[i]) {
            for (size_t j = 0; j < i; j++)
                cm_free(row.cell[j]);
            return CM_ERR_NOMEM;
        }
    }
    t->rows[t->nrows++] = row;
    return CM_OK;
}

int mc_table_color(struct mc_table *t, size_t col, enum mc_color c)
{
    if (!t || !t->nrows || col >= t->ncols)
        return CM_ERR_INVAL;
    t->rows[t->nrows - 1].color[col] = c;
    return CM_OK;
}

size_t mc_table_rows(const struct mc_table *t)
{
    return t ? t->nrows : 0;
}

static int pad(struct cm_buf *out, size_t n)
{
    static const char spaces[] = "                                ";
    int rc = CM_OK;
    while (!rc && n) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        rc = cm_buf_append(out, spaces, k);
        n -= k;
    }
    return rc;
}

static int render_line(const struct mc_table *t, char *const *cells, const enum mc_color *colors,
                       const size_t *width, int color, int header, struct cm_buf *out)
{
    int rc = CM_OK;

    for (size_t i = 0; !rc && i < t->ncols; i++) {
        size_t w = mc_display_width(cells[i]), fill = width[i] > w ? width[i] - w : 0;
        const char *on = header ? "\033[1m" : mc_color_on(colors ? colors[i] : MC_COLOR_NONE);
        int last = i + 1 == t->ncols;

        if (i)
            rc = cm_buf_append(out, "  ", 2);
        if (!rc && t->align[i] == MC_ALIGN_RIGHT)
            rc = pad(out, fill);
        if (!rc && color && *on)
            rc = cm_buf_append_str(out, on);
        if (!rc)
            rc = cm_buf_append_str(out, cells[i]);
        if (!rc && color && *on)
            rc = cm_buf_append_str(out, mc_color_off());
        if (!rc && t->align[i] == MC_ALIGN_LEFT && !last)
            rc = pad(out, fill);
    }
    if (!rc)
        rc = cm_buf_append(out, "\n", 1);
    return rc;
}

int mc_table_render(const struct mc_table *t, int color, struct cm_buf *out)
{
    size_t width[MC_TABLE_COLS_MAX] = {0};
    int rc;

    if (!t || !out)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < t->ncols; i++) {
        width[i] = mc_display_width(t->header[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = mc_display_width(t->rows[r].cell[i]);
            if (w > width[i])
                width[i] = w;
        }
    }
    rc = render_line(t, t->header, NULL, width, color, 1, out);
    for (size_t r = 0; !rc && r < t->nrows; r++)
        rc = render_line(t, t->rows[r].cell, t->rows[r].color, width, color, 0, out);
    return rc;
}

int mc_color_wanted(int mode, int is_tty, const char *no_color, const char *term)
{
    if (mode >= 0)
        return mode ? 1 : 0;
    if (!is_tty)
        return 0;
    if (no_color && *no_color)
        return 0;
    if (term && strcmp(term, "dumb") == 0)
        return 0;
    return 1;
}
