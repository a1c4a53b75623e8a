/* SPDX-License-Identifier: MIT */
/*
 * table.h - aligned text tables for meterctl's human output, and the colour decision.
 *
 * A table is built row by row (cells are copied), then rendered into a cm_buf: columns
 * separated by two spaces, each padded to its widest cell in terminal columns (UTF-8 aware:
 * CJK and emoji count 2, combining marks 0), numbers right-aligned when the column says so,
 * no trailing blanks. Cell text comes from the server, so control characters (ESC included:
 * no terminal escape injection) and invalid UTF-8 become '?' when a row is added. Colours
 * (bold header, a colour per cell) are written only when the caller asks for them, which it
 * does only on a TTY (mc_color_wanted()). Not thread-safe; one owner.
 */
#ifndef MC_TABLE_H
#define MC_TABLE_H

#include "cm/buf.h"

#include <stddef.h>

#define MC_TABLE_COLS_MAX 16

enum mc_align { MC_ALIGN_LEFT = 0, MC_ALIGN_RIGHT };

enum mc_color { MC_COLOR_NONE = 0, MC_COLOR_GREEN, MC_COLOR_RED, MC_COLOR_YELLOW, MC_COLOR_DIM };

/** The ANSI sequence that starts @p c ("" for NONE), and the reset. Static strings. */
const char *mc_color_on(enum mc_color c);
const char *mc_color_off(void);

struct mc_table; /* opaque */

/**
 * New table of @p ncols (1..MC_TABLE_COLS_MAX) columns with @p headers (copied) and
 * @p align (may be NULL: all left). *@p out is freed with mc_table_free(). CM_OK,
 * CM_ERR_INVAL, CM_ERR_NOMEM.
 */
int mc_table_new(struct mc_table **out, size_t ncols, const char *const *headers,
                 const enum mc_align *align);

/** Frees @p t; NULL is a no-op. */
void mc_table_free(struct mc_table *t);

/**
 * Appends a row of ncols cells (copied, sanitised; a NULL cell is ""). CM_OK, CM_ERR_NOMEM
 * (the table is unchanged).
 */
int mc_table_add(struct mc_table *t, const char *const *cells);

/** Colours cell @p col of the last row. CM_OK; CM_ERR_INVAL (no row, bad column). */
int mc_table_color(struct mc_table *t, size_t col, enum mc_color c);

/** Rows added so far. */
size_t mc_table_rows(const struct mc_table *t);

/**
 * Appends the rendered table (header line first, every line ends in '\n') to @p out;
 * @p color 1 adds the ANSI sequences. CM_OK, CM_ERR_NOMEM, CM_ERR_LIMIT (@p out's cap).
 */
int mc_table_render(const struct mc_table *t, int color, struct cm_buf *out);

/** Terminal columns @p s takes (UTF-8; an invalid byte counts 1). */
size_t mc_display_width(const char *s);

/**
 * Copies @p s into @p out (appended) with control characters and invalid UTF-8 replaced by
 * '?': for any server-supplied text printed outside a table. CM_OK or cm_buf errors.
 */
int mc_sanitize_append(struct cm_buf *out, const char *s);

/**
 * Whether to colour output going to file descriptor @p fd: @p mode 1 always, 0 never,
 * -1 auto = @p is_tty and @p no_color (the NO_COLOR variable, NULL when unset) is unset or
 * empty and @p term is not "dumb". Pure: the caller passes isatty() and getenv() results.
 */
int mc_color_wanted(int mode, int is_tty, const char *no_color, const char *term);

#endif
