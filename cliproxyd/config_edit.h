/* SPDX-License-Identifier: MIT */
/*
 * config_edit.h - small, comment-preserving edits of config.yaml text, for the
 * management API (api-keys) and the start-up rewrite of a plaintext
 * `remote-management.secret-key` into a bcrypt hash (spec cliproxyapi.md 1.4).
 *
 * Only the value of the one key being edited changes: every other byte of the file
 * (comments, blank lines, key order, unknown keys, other values) stays as it was. The
 * edit understands the YAML a config.yaml holds:
 *  - the key is a plain or quoted mapping key at the top level (column 0) or, for a
 *    nested key, directly under a top-level block mapping (at that mapping's indent);
 *  - its old value may be empty, a plain / quoted (also multi-line) scalar, a block
 *    scalar (| or >), a block sequence (indented, or "- " at the key's own column), a
 *    block mapping, or a flow collection ([...] / {...}, also over several lines);
 *    comment lines inside the old value go with it, comment lines after it stay;
 *  - a comment on the key line, or after a one-line value, is kept.
 * New values are written as double-quoted YAML scalars (cp_config_edit_quote()), so any
 * string survives. A key that is absent is appended (at the end of the file, or at the
 * end of its parent mapping; a missing parent is appended with it). CRLF files get CRLF.
 *
 * cp_config_edit_save() never writes text the real loader (cp_config_load_mem()) refuses.
 * Everything is pure except read/save/hash_secret. Thread-safety: no shared state; the
 * caller serialises read-modify-save cycles on one file.
 */
#ifndef CP_CONFIG_EDIT_H
#define CP_CONFIG_EDIT_H

#include "cm/buf.h"
#include "config.h"

#include <stddef.h>

/** bcrypt cost of the hashed secret-key: Go's bcrypt.DefaultCost, as CLIProxyAPI uses. */
#define CP_CONFIG_EDIT_BCRYPT_COST 10

/**
 * Appends @p s (NUL-terminated, UTF-8) to @p b as one double-quoted YAML scalar: '"' and
 * '\\' escaped, control characters, DEL, the C1 controls and the YAML line breaks U+0085,
 * U+2028, U+2029 as escapes; other characters as they are. CM_OK; CM_ERR_INVAL (NULL, or
 * @p s is not valid UTF-8; @p b unchanged); CM_ERR_LIMIT / CM_ERR_NOMEM from @p b (which
 * may then hold part of the scalar).
 */
int cp_config_edit_quote(struct cm_buf *b, const char *s);

/**
 * Replaces the value of top-level key @p key in the @p len bytes of YAML at @p text
 * (borrowed, need not be NUL-terminated) with a block sequence of the @p n strings
 * @p items (each double-quoted, indented as the old sequence was, else by 2), or with
 * `[]` when @p n is 0. On CM_OK *@p out is the new text (NUL-terminated; caller frees
 * with cm_free()) and *@p out_len (may be NULL) its length. CM_ERR_INVAL (bad
 * arguments, an item that is not valid UTF-8), CM_ERR_NOMEM, CM_ERR_LIMIT (the result
 * would exceed CM_CFG_FILE_MAX).
 */
int cp_config_edit_set_list(const char *text, size_t len, const char *key, const char *const *items,
                            size_t n, char **out, size_t *out_len);

/**
 * Replaces the value of @p key with the double-quoted string @p value. @p parent NULL:
 * @p key is a top-level key; else @p key is looked up in the block mapping that is the
 * value of top-level key @p parent (created when absent; an empty, `~`, `null` or `{}`
 * parent value becomes a block mapping). Outputs and errors as cp_config_edit_set_list();
 * also CM_ERR_INVAL when @p parent's value is a non-empty flow mapping or a scalar.
 */
int cp_config_edit_set_scalar(const char *text, size_t len, const char *parent, const char *key,
                              const char *value, char **out, size_t *out_len);

/**
 * Reads the file at @p path (at most CM_CFG_FILE_MAX bytes) into a new NUL-terminated
 * buffer (*@p out, caller frees with cm_free(); *@p len its length). CM_OK,
 * CM_ERR_NOTFOUND, CM_ERR_DENIED, CM_ERR_LIMIT, CM_ERR_IO (logged), CM_ERR_NOMEM.
 */
int cp_config_edit_read(const char *path, char **out, size_t *len);

/**
 * Extra check of the text about to be saved: @p cfg is what it loads as. Return CM_OK,
 * or an error code with a message for the client in @p err (@p errlen bytes).
 */
typedef int (*cp_config_edit_verify_fn)(const struct cp_config *cfg, void *ud, char *err,
                                        size_t errlen);

/** What failed in cp_config_edit_save(). */
enum cp_config_edit_stage {
    CP_CONFIG_EDIT_STAGE_NONE = 0,
    CP_CONFIG_EDIT_STAGE_LOAD,   /* the new text does not load (cp_config_load_mem) */
    CP_CONFIG_EDIT_STAGE_VERIFY, /* @p verify refused it */
    CP_CONFIG_EDIT_STAGE_WRITE,  /* the file could not be written */
};

/**
 * Loads the @p len bytes at @p text with the real config loader, runs @p verify (may
 * be NULL) on the result and only then writes the text to @p path atomically: a
 * temporary file next to the real one (a symlink is followed), written, fsynced, given
 * the old file's mode (0600 for a new file) and owner when allowed, renamed over it,
 * directory fsynced. When the rename is impossible because @p path is a mount point
 * (a file bind-mounted into a container: EBUSY / EXDEV), the file is rewritten in place
 * instead, with a WARN. On CM_OK *@p loaded (may be NULL) gets the loaded config (caller
 * frees, or hands it to cp_config_live_swap()). On failure nothing was written (or, for
 * the in-place fallback, the write failed), *@p stage (may be NULL) says where, and
 * @p err (may be NULL) holds one message. Blocking I/O.
 */
int cp_config_edit_save(const char *path, const char *text, size_t len,
                        cp_config_edit_verify_fn verify, void *ud, struct cp_config **loaded,
                        enum cp_config_edit_stage *stage, char *err, size_t errlen);

/** 1 if @p secret is already a password hash ("$2a$", "$2b$", "$2y$" bcrypt, "$argon2"). */
int cp_config_edit_secret_is_hashed(const char *secret);

/**
 * Start-up: when @p cfg (loaded from @p path, not yet shared) has a plaintext
 * `remote-management.secret-key`, hashes it with bcrypt (CP_CONFIG_EDIT_BCRYPT_COST),
 * rewrites the nested value in @p path (comments and the rest kept), and replaces the
 * plaintext in @p cfg with the hash (the old string is wiped). If the file cannot be
 * edited or written, a WARN says so (never the secret) and the hash is used in memory
 * only. CM_OK (also then, and when there is nothing to do); CM_ERR_NOMEM or
 * CM_ERR_INTERNAL when no hash could be made (@p cfg unchanged).
 */
int cp_config_edit_hash_secret(const char *path, struct cp_config *cfg);

#endif
