/* SPDX-License-Identifier: MIT */
/*
 * cfg.h - YAML config loading over libcyaml 1.3.1, the loaded struct as JSON (walking the
 * same schema), and a holder for hot reload.
 *
 * Loading: the caller describes its config struct with a libcyaml schema (the schema
 * array *is* the key table) and gets back a struct allocated through cm/alloc.h, or one
 * error message naming the file and the key path, outermost key first:
 *
 *     config.yaml: routing.strategy: invalid value "x" (expected one of: round-robin,
 *     fill-first) (line 4, column 13)
 *     config.yaml: api-keys[1].weight: expected an integer, got "abc" (line 9, column 13)
 *     config.yaml: syntax error at line 3, column 1: found unexpected end of stream (...)
 *
 * Unknown keys are never an error: each is logged once as a WARN with its full path
 * (`config.yaml: unknown key "routing.foo" ignored`), although libcyaml 1.3.1 itself
 * reports them only at its DEBUG level. Other libcyaml chatter reaches cm_log only when
 * cm_log's level is DEBUG.
 *
 * Order of a load: parse (schema) -> spec->defaults (fill what the file did not set)
 * -> spec->check (bounds and cross-field rules) -> hand out. Nothing half-done is ever
 * returned, which makes "build, check, swap" reload safe: see struct cm_cfg_slot.
 *
 * Stricter than libcyaml 1.3.1 alone (which accepts these silently): an integer key
 * must be a whole decimal or 0x-hex number ("80abc", "1.5" and octal-looking "010" are
 * rejected), a float key a whole number, and a boolean key one of true/false, yes/no,
 * on/off, enable/disable, 1/0 (any case; 1.3.1 reads anything it does not know as
 * true, so "fasle" would be true).
 *
 * Limits of 1.3.1 to know when writing a schema: no default values (use
 * spec->defaults with cm_cfg_seen()), no integer bounds (use spec->check with
 * cm_cfg_check_range()), the top-level value must be a CYAML_FLAG_POINTER mapping.
 * libyaml's own parser allocations do not go through cm/alloc.h.
 */
#ifndef CM_CFG_H
#define CM_CFG_H

#include <cyaml/cyaml.h>
#include <stddef.h>

/** A good size for error buffers; longer messages are cut. */
#define CM_CFG_ERR_MAX 512
/** cm_cfg_load_file() refuses bigger files with CM_ERR_LIMIT. */
#define CM_CFG_FILE_MAX (4u * 1024 * 1024)

/** The key paths a document set; see cm_cfg_seen(). Only valid inside spec->defaults. */
struct cm_cfg_seen;

/**
 * Fills in defaults for keys the document did not set, asking cm_cfg_seen() which
 * ones it did. @p cfg is the freshly loaded struct (zeroed where keys were missing).
 * Strings and other memory put into @p cfg must come from cm_malloc()/cm_strdup():
 * cm_cfg_free() frees them with cm_free(). Returns CM_OK or an error code (usually
 * CM_ERR_NOMEM), which fails the load.
 */
typedef int (*cm_cfg_defaults_fn)(void *cfg, const struct cm_cfg_seen *seen, void *ud);

/**
 * Checks bounds and cross-field rules after defaults; may also normalise @p cfg. On a
 * problem writes "key.path: what is wrong" (no file name: cfg adds it) into @p err
 * (@p errlen bytes, see cm_cfg_fail()) and returns non-zero (usually CM_ERR_INVAL),
 * which fails the load.
 */
typedef int (*cm_cfg_check_fn)(void *cfg, char *err, size_t errlen, void *ud);

/** What to load. Usually a static const next to the schema; must outlive every load. */
struct cm_cfg_spec {
    /* top level: CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct ..., fields) */
    const cyaml_schema_value_t *schema;
    cm_cfg_defaults_fn defaults; /* NULL: none */
    cm_cfg_check_fn check;       /* NULL: none */
    void *ud;                    /* passed to defaults and check */
};

/**
 * 1 if the loaded document set the key at @p path, else 0. Paths are keys joined by
 * '.', sequence entries as "[i]" (0-based): "port", "routing.strategy",
 * "api-keys[1].weight". Setting a nested key also counts its parents ("routing").
 * Unknown (ignored) keys are not in the set. Pure; @p seen is borrowed from the load.
 */
int cm_cfg_seen(const struct cm_cfg_seen *seen, const char *path);

/**
 * Loads the YAML file at @p path into a new struct described by @p spec, then runs
 * spec->defaults and spec->check. On CM_OK, *@p out is the struct (caller frees with
 * cm_cfg_free(), or hands it to cm_cfg_slot_swap()) and @p err, if given, is "".
 * On failure *@p out is untouched, nothing is leaked, and the message (prefixed with
 * @p path, cut to @p errlen - 1 bytes) is written to @p err (may be NULL) and logged at
 * ERROR. The message may quote the offending value; only the logged copy has secrets
 * masked (cm_log_mask), so print @p err with care. Returns CM_OK; CM_ERR_NOTFOUND (no such file);
 * CM_ERR_DENIED; CM_ERR_IO; CM_ERR_LIMIT (bigger than CM_CFG_FILE_MAX); CM_ERR_PARSE (YAML syntax);
 * CM_ERR_INVAL (a value does not fit the schema, a required key is missing, or check
 * failed - or whatever code defaults/check returned); CM_ERR_NOMEM; CM_ERR_INTERNAL
 * (the schema itself is wrong). Unknown keys only warn. Thread-safe: loads share no
 * state (a schema is read-only).
 */
int cm_cfg_load_file(const struct cm_cfg_spec *spec, const char *path, void **out, char *err,
                     size_t errlen);

/**
 * As cm_cfg_load_file(), from @p len bytes at @p data (borrowed, need not be
 * NUL-terminated). @p name is used in messages in place of a file name (NULL:
 * "<memory>"). An empty document gives a zeroed struct (then defaults and check).
 */
int cm_cfg_load_mem(const struct cm_cfg_spec *spec, const char *name, const char *data, size_t len,
                    void **out, char *err, size_t errlen);

/** Frees a struct from a cm_cfg_load_* call with the same @p spec. NULL is a no-op. */
void cm_cfg_free(const struct cm_cfg_spec *spec, void *cfg);

/**
 * Check helper: writes printf-style text into @p err (if @p err and @p errlen) and
 * returns CM_ERR_INVAL, so a check can `return cm_cfg_fail(err, errlen, "port: ...");`.
 */
int cm_cfg_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Check helper: CM_OK if min <= @p v <= max, else writes
 * "<path>: must be between <min> and <max>, got <v>" into @p err and returns CM_ERR_INVAL.
 */
int cm_cfg_check_range(char *err, size_t errlen, const char *path, long long v, long long min,
                       long long max);

/* ---- to JSON: the schema walked over a loaded struct -------------------------------- */

struct cJSON;

/**
 * Builds a JSON object of @p cfg (a struct loaded with @p spec, or one of the same shape)
 * by walking spec->schema, with the YAML key names as member names and in schema order,
 * so a caller never repeats the key table by hand. How each schema type comes out:
 *
 *  - INT, UINT: a number; beyond +-(2^53 - 1) (CM_JSON_INT_MAX, where a double stops
 *    being exact) a decimal string instead, so no value is silently rounded.
 *  - BOOL: true/false (any non-zero stored value is true).
 *  - ENUM: the string of the first entry of the schema's table with the stored value (so
 *    list the canonical name before aliases); a value not in the table is a number.
 *  - FLAGS: an array of the strings whose bits are set, in table order; bits no string
 *    covers are appended as one number.
 *  - BITFIELD: an object of each bit definition's name -> its value (each one a path of
 *    its own for @p omit; FLAGS strings are not: a FLAGS value is one scalar).
 *  - FLOAT (float or double): a number; NaN and infinities are null.
 *  - STRING (pointer or inline array): a string.
 *  - MAPPING: an object. A mapping none of whose fields is kept (all CYAML_IGNORE, a
 *    "known but not stored" block) is left out of its parent object.
 *  - SEQUENCE, SEQUENCE_FIXED: an array, also when empty ([]); libcyaml cannot tell an
 *    empty sequence from an absent one, both mean "no entries".
 *  - IGNORE: left out (nothing is stored).
 *  - A NULL pointer (CYAML_FLAG_POINTER string, mapping or fixed sequence; a SEQUENCE's
 *    NULL array with count 0 is []): left out of an object; null inside an array, so
 *    entry positions keep matching the YAML.
 *
 * @p omit (may be NULL) is a NULL-terminated list of key paths to leave out, written as
 * for cm_cfg_seen() - keys joined by '.', entries as "[i]" - where "[*]" stands for any
 * entry: "remote-management.secret-key", "api-keys[0]", "keys[*].secret". Leaving out a
 * mapping or sequence leaves out everything under it; a left-out entry is dropped from its
 * array (later entries move up). Paths that name nothing are fine.
 *
 * Integer-like types must be 1, 2, 4 or 8 bytes wide, floats 4 or 8. On CM_OK *@p out is
 * a new object (caller frees with cJSON_Delete()). On failure *@p out is untouched and
 * nothing leaks. Returns CM_OK; CM_ERR_INVAL (NULL argument, spec without a top-level
 * pointer mapping); CM_ERR_INTERNAL (a schema value the walker cannot read: bad sizes, a
 * SEQUENCE not directly in a mapping, entries with a NULL array); CM_ERR_LIMIT (nesting
 * deeper than 64 or a key path longer than 511 bytes); CM_ERR_NOMEM. Reads @p cfg only;
 * thread-safe as long as nobody writes @p cfg meanwhile (true of a slot's config).
 */
int cm_cfg_to_json(const struct cm_cfg_spec *spec, const void *cfg, const char *const *omit,
                   struct cJSON **out);

/* ---- hot reload: build, check, swap ------------------------------------------------ */

/**
 * The live config: an immutable struct shared by any number of reader threads.
 *
 *     // startup: spec must outlive the slot and every ref
 *     struct cm_cfg_slot *live;
 *     void *cfg;
 *     char err[CM_CFG_ERR_MAX];
 *     if (cm_cfg_slot_new(&live, cm_cfg_free_with_spec, &spec) ||
 *         cm_cfg_load_file(&spec, path, &cfg, err, sizeof err) ||
 *         cm_cfg_slot_swap(live, cfg))
 *         ... fail startup ...
 *
 *     // reader, any thread, e.g. once per request
 *     struct cm_cfg_ref *ref = cm_cfg_slot_acquire(live);
 *     const struct my_config *c = cm_cfg_ref_get(ref);
 *     ... read c (never write it), as long as needed ...
 *     cm_cfg_ref_release(ref);
 *
 *     // reload (SIGHUP or an fswatch callback): build and check a new one, then swap.
 *     // If the new file does not load or check, the old config simply stays in force.
 *     if (cm_cfg_load_file(&spec, path, &cfg, err, sizeof err) == CM_OK &&
 *         cm_cfg_slot_swap(live, cfg) != CM_OK)
 *         cm_cfg_free(&spec, cfg);
 *
 * A swapped-out config is freed by whoever drops its last reference: the swap itself
 * if no reader holds it, else the last reader's cm_cfg_ref_release(). A reader keeps
 * seeing the config it acquired, whole, even across swaps; it acquires again to see the
 * new one. Acquire and swap hold a mutex only to read or replace one pointer and bump a
 * counter; release is one atomic decrement (plus the free, if last).
 */
struct cm_cfg_slot;
/** A counted reference to one config version (opaque). */
struct cm_cfg_ref;

/** Frees one config; @p ud is the slot's ud. Runs on the thread that dropped the last ref. */
typedef void (*cm_cfg_free_fn)(void *cfg, const void *ud);

/** A cm_cfg_free_fn for configs from cm_cfg_load_*: @p spec is the const struct cm_cfg_spec *. */
void cm_cfg_free_with_spec(void *cfg, const void *spec);

/**
 * New empty slot (acquire returns NULL until the first swap). @p free_fn (required)
 * frees configs the slot let go of; @p ud (borrowed, must outlive the slot and every
 * ref) is passed to it. Returns CM_OK, CM_ERR_INVAL, CM_ERR_NOMEM; @p out written only
 * on success; caller frees with cm_cfg_slot_free().
 */
int cm_cfg_slot_new(struct cm_cfg_slot **out, cm_cfg_free_fn free_fn, const void *ud);

/**
 * Drops the slot's reference to the current config (freed now unless readers still
 * hold it; their refs stay valid and free it on release) and frees the slot. NULL is a
 * no-op. Not concurrently with other calls on the same slot.
 */
void cm_cfg_slot_free(struct cm_cfg_slot *s);

/**
 * Makes @p cfg the current config (takes ownership on CM_OK; NULL empties the slot) and
 * drops the slot's reference to the previous one. Returns CM_OK, or CM_ERR_NOMEM with
 * nothing changed and @p cfg still the caller's. Thread-safe against acquire, release
 * and other swaps.
 */
int cm_cfg_slot_swap(struct cm_cfg_slot *s, void *cfg);

/**
 * A reference to the current config, or NULL if the slot is empty. Release it with
 * cm_cfg_ref_release() on any thread. Thread-safe, never blocks for longer than a
 * pointer read; no allocation.
 */
struct cm_cfg_ref *cm_cfg_slot_acquire(struct cm_cfg_slot *s);

/** The config @p r refers to (borrowed until the release; read-only). NULL if @p r is NULL. */
const void *cm_cfg_ref_get(const struct cm_cfg_ref *r);

/** Drops @p r, freeing its config if it was the last reference. NULL is a no-op. Thread-safe. */
void cm_cfg_ref_release(struct cm_cfg_ref *r);

#endif
