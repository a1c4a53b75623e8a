/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event, levels, request ids, secrets masked.
 *
 * Line format: "2026-11-22T03:30:00.123Z INFO  [rid] message\n". Newlines inside the
 * message are written as "\n" (control bytes in the request id become '?') so every
 * event stays one line. Lines longer than CM_LOG_LINE_MAX are cut and end in "...".
 *
 * Masking: every message passes through cm_log_mask() before it is written, so callers
 * may log headers or bodies without thinking; still, do not log secrets on purpose.
 * What gets masked is documented at cm_log_mask().
 *
 * Thread-safety: cm_log_write() may be called from any thread; lines are never
 * interleaved. cm_log_init()/cm_log_shutdown()/cm_log_set_sink() are for main() and
 * tests, called while no other thread logs.
 */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stddef.h>

#define CM_LOG_LINE_MAX 8192

enum cm_log_level { CM_LOG_DEBUG = 0, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR, CM_LOG_OFF };

/** Receives each finished, masked line (with its '\n'); used by tests to capture logs. */
typedef void (*cm_log_sink_fn)(enum cm_log_level lvl, const char *line, size_t len, void *ud);

/**
 * Sets the level and, if @p file_path is not NULL, also appends to that file (created
 * with mode 0600). Logging to stderr is on by default. Returns CM_OK or CM_ERR_IO.
 * May be called again to change the file (the old one is closed).
 */
int cm_log_init(enum cm_log_level lvl, const char *file_path);
/** Closes the file, if any. Logging goes on to stderr. */
void cm_log_shutdown(void);
void cm_log_set_level(enum cm_log_level lvl);
enum cm_log_level cm_log_get_level(void);
/** Turns writing to stderr on or off (tests capturing with a sink may turn it off). */
void cm_log_set_stderr(int on);
/** Extra destination for every line; NULL removes it. */
void cm_log_set_sink(cm_log_sink_fn fn, void *ud);
/** "debug" | "info" | "warn" | "warning" | "error" | "off" (any case). CM_ERR_INVAL otherwise. */
int cm_log_level_parse(const char *s, enum cm_log_level *out);
int cm_log_enabled(enum cm_log_level lvl);

/** Writes one line. @p rid (request id) may be NULL. */
void cm_log_write(enum cm_log_level lvl, const char *rid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cm_log_debug(rid, ...)                                                                     \
    do {                                                                                           \
        if (cm_log_enabled(CM_LOG_DEBUG))                                                          \
            cm_log_write(CM_LOG_DEBUG, rid, __VA_ARGS__);                                          \
    } while (0)
#define cm_log_info(rid, ...) cm_log_write(CM_LOG_INFO, rid, __VA_ARGS__)
#define cm_log_warn(rid, ...) cm_log_write(CM_LOG_WARN, rid, __VA_ARGS__)
#define cm_log_error(rid, ...) cm_log_write(CM_LOG_ERROR, rid, __VA_ARGS__)

/**
 * Copies @p src (@p n bytes) to @p dst (at most @p dstlen - 1 bytes, always
 * NUL-terminated when dstlen > 0) with secrets masked. A secret value keeps at most
 * its first 4 and last 4 characters ("abcd****wxyz"), or becomes "****" when shorter
 * than 16 characters. Masked:
 *  - "sk-" keys (the "sk-" stays readable);
 *  - the token after "Bearer " / "Basic " (any case);
 *  - the value after a secret-looking name followed by ':' or '=' (names and values
 *    optionally quoted; a quoted value runs to its closing quote, and \" counts as a
 *    quote, for JSON inside JSON strings): access_token, refresh_token, id_token,
 *    api_key, api-key, apikey, x-api-key, x-goog-api-key, secret, secret-key, secret_key,
 *    client_secret, password, authorization, cookie, set-cookie, code_verifier; and
 *    "key" / "token" only in the forms "key": / key= (so "unknown key: foo" stays
 *    readable);
 *  - JWTs ("eyJ..."), Google tokens ("ya29.", "1//"), and any other run of 40 or more
 *    [A-Za-z0-9_+=-] characters that mixes letters and digits.
 * Returns the number of bytes written, excluding the NUL. Pure, thread-safe.
 */
size_t cm_log_mask(const char *src, size_t n, char *dst, size_t dstlen);

#endif
