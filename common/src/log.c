/* SPDX-License-Identifier: MIT */
/*
 * log.c - the line logger: format, mask secrets, escape control bytes, one write(2)
 * per line to stderr and the optional file under one mutex. The masker is a single
 * left-to-right scan with no allocation (see cm_log_mask in log.h for the rules).
 */
#include "cm/log.h"

#include "cm/err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int level = CM_LOG_INFO;
static atomic_int to_stderr = 1;
static int log_fd = -1;
static cm_log_sink_fn sink;
static void *sink_ud;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

/* ---- masking ---- */

struct out {
    char *dst;
    size_t cap; /* usable bytes, excluding the NUL */
    size_t len;
};

static void put(struct out *o, const char *p, size_t n)
{
    size_t room = o->cap - o->len;
    if (n > room)
        n = room;
    memcpy(o->dst + o->len, p, n);
    o->len += n;
}

static void put_masked(struct out *o, const char *v, size_t n)
{
    if (n >= 16) {
        put(o, v, 4);
        put(o, "****", 4);
        put(o, v + n - 4, 4);
    } else {
        put(o, "****", 4);
    }
}

static int is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static int is_run(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '+' || c == '=';
}

/* a secret value ends at whitespace, a quote or a separator */
static size_t value_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !isspace((unsigned char)s[i]) && !strchr("\"',;&}]<>)", s[i]))
        i++;
    return i;
}

static size_t run_len(const char *s, size_t n, int (*pred)(char))
{
    size_t i = 0;
    while (i < n && pred(s[i]))
        i++;
    return i;
}

static int tok_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '/' || c == '+' ||
           c == '=';
}

static int prefix_ci(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && strncasecmp(s, lit, l) == 0;
}

static const char *const strong_names[] = {
    "access_token", "refresh_token",  "id_token",   "api_key",    "api-key",       "apikey",
    "x-api-key",    "x-goog-api-key", "secret-key", "secret_key", "client_secret", "secret",
    "password",     "authorization",  "set-cookie", "cookie",     "code_verifier", NULL};
static const char *const weak_names[] = {"key", "token", NULL};

/* length of a quote at s: 1 for " or ', 2 for \" or \' (JSON inside a JSON string), else 0 */
static size_t quote_len(const char *s, size_t n)
{
    if (n >= 1 && (s[0] == '"' || s[0] == '\''))
        return 1;
    if (n >= 2 && s[0] == '\\' && (s[1] == '"' || s[1] == '\''))
        return 2;
    return 0;
}

/*
 * A quoted value ends at its closing quote, so it may hold spaces, or at the end of the
 * line. After a plain quote a backslash escapes the next byte; after an escaped quote
 * (qlen 2) the next backslash is the start of the closing \".
 */
static size_t quoted_value_len(const char *s, size_t n, char q, size_t qlen)
{
    size_t i = 0;
    while (i < n && s[i] != '\n' && s[i] != '\r') {
        if (qlen == 2 ? s[i] == '\\' : s[i] == q)
            break;
        if (qlen == 1 && s[i] == '\\' && i + 1 < n && s[i + 1] != '\n' && s[i + 1] != '\r')
            i++;
        i++;
    }
    return i;
}

/*
 * If s starts with a secret name and a separator, returns how many bytes up to and
 * including the separator (and an opening quote / spaces after it); 0 otherwise.
 * *vq gets the length of the value's opening quote (0 if unquoted).
 */
static size_t match_name(const char *s, size_t n, size_t *vq)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *const *names = pass ? weak_names : strong_names;
        for (size_t k = 0; names[k]; k++) {
            size_t l = strlen(names[k]), i, q;
            int quoted;
            if (!prefix_ci(s, n, names[k]))
                continue;
            i = l;
            if (i < n && (is_word(s[i]) || s[i] == '-'))
                continue;
            q = quote_len(s + i, n - i);
            quoted = q > 0;
            i += q;
            while (i < n && s[i] == ' ')
                i++;
            if (i >= n || (s[i] != ':' && s[i] != '='))
                continue;
            if (pass == 1 && s[i] == ':' && !quoted)
                continue;
            i++;
            while (i < n && s[i] == ' ')
                i++;
            *vq = quote_len(s + i, n - i);
            return i + *vq;
        }
    }
    return 0;
}

static int has_alpha_digit(const char *s, size_t n)
{
    int a = 0, d = 0;
    for (size_t i = 0; i < n && !(a && d); i++) {
        if (isalpha((unsigned char)s[i]))
            a = 1;
        else if (isdigit((unsigned char)s[i]))
            d = 1;
    }
    return a && d;
}

size_t cm_log_mask(const char *src, size_t n, char *dst, size_t dstlen)
{
    struct out o = {dst, dstlen ? dstlen - 1 : 0, 0};
    size_t i = 0;

    if (!dstlen)
        return 0;
    while (i < n && o.len < o.cap) {
        const char *s = src + i;
        size_t rest = n - i, m, vq = 0;
        int boundary = i == 0 || !is_word(src[i - 1]);

        if (boundary && rest > 3 && strncmp(s, "sk-", 3) == 0 &&
            (m = run_len(s + 3, rest - 3, is_run)) >= 8) {
            put(&o, "sk-", 3);
            put_masked(&o, s + 3, m);
            i += 3 + m;
            continue;
        }
        if (boundary && (prefix_ci(s, rest, "bearer ") || prefix_ci(s, rest, "basic "))) {
            size_t p = (s[1] == 'e' || s[1] == 'E') ? 7 : 6;
            while (p < rest && s[p] == ' ')
                p++;
            m = value_len(s + p, rest - p);
            if (m) {
                put(&o, s, p);
                put_masked(&o, s + p, m);
                i += p + m;
                continue;
            }
        }
        if (boundary &&
            ((rest > 3 && strncmp(s, "eyJ", 3) == 0) || (rest > 5 && strncmp(s, "ya29.", 5) == 0) ||
             (rest > 3 && strncmp(s, "1//", 3) == 0))) {
            m = run_len(s, rest, tok_char);
            if (m >= 20) {
                put_masked(&o, s, m);
                i += m;
                continue;
            }
        }
        if (boundary && (m = match_name(s, rest, &vq)) > 0) {
            size_t v;
            put(&o, s, m);
            i += m;
            if (prefix_ci(src + i, n - i, "bearer ") || prefix_ci(src + i, n - i, "basic "))
                continue; /* the Bearer rule takes the value */
            v = vq ? quoted_value_len(src + i, n - i, src[i - 1], vq) : value_len(src + i, n - i);
            if (v)
                put_masked(&o, src + i, v);
            i += v;
            continue;
        }
        if (is_run(*s) && (i == 0 || !is_run(src[i - 1]))) {
            m = run_len(s, rest, is_run);
            if (m >= 40 && has_alpha_digit(s, m)) {
                put_masked(&o, s, m);
                i += m;
                continue;
            }
        }
        put(&o, s, 1);
        i++;
    }
    dst[o.len] = '\0';
    return o.len;
}

/* ---- writer ---- */

int cm_log_level_parse(const char *s, enum cm_log_level *out)
{
    static const struct {
        const char *name;
        enum cm_log_level lvl;
    } t[] = {{"debug", CM_LOG_DEBUG},  {"info", CM_LOG_INFO},   {"warn", CM_LOG_WARN},
             {"warning", CM_LOG_WARN}, {"error", CM_LOG_ERROR}, {"off", CM_LOG_OFF}};
    for (size_t k = 0; s && k < sizeof t / sizeof t[0]; k++) {
        if (strcasecmp(s, t[k].name) == 0) {
            *out = t[k].lvl;
            return CM_OK;
        }
    }
    return CM_ERR_INVAL;
}

int cm_log_init(enum cm_log_level lvl, const char *file_path)
{
    int fd = -1;
    cm_log_set_level(lvl);
    if (file_path) {
        fd = open(file_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            cm_log_error(NULL, "log: open %s: %s", file_path, strerror(errno));
            return CM_ERR_IO;
        }
    }
    pthread_mutex_lock(&write_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    pthread_mutex_unlock(&write_lock);
    return CM_OK;
}

void cm_log_shutdown(void)
{
    pthread_mutex_lock(&write_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    pthread_mutex_unlock(&write_lock);
}

void cm_log_set_level(enum cm_log_level lvl)
{
    atomic_store(&level, (int)lvl);
}

enum cm_log_level cm_log_get_level(void)
{
    return (enum cm_log_level)atomic_load(&level);
}

void cm_log_set_stderr(int on)
{
    atomic_store(&to_stderr, on ? 1 : 0);
}

void cm_log_set_sink(cm_log_sink_fn fn, void *ud)
{
    pthread_mutex_lock(&write_lock);
    sink = fn;
    sink_ud = ud;
    pthread_mutex_unlock(&write_lock);
}

int cm_log_enabled(enum cm_log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&level, memory_order_relaxed) && lvl < CM_LOG_OFF;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void cm_log_write(enum cm_log_level lvl, const char *rid, const char *fmt, ...)
{
    char raw[CM_LOG_LINE_MAX], masked[CM_LOG_LINE_MAX], line[CM_LOG_LINE_MAX + 128];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n;
    size_t ml, len = 0;

    if (!cm_log_enabled(lvl))
        return;
    va_start(ap, fmt);
    n = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ml = cm_log_mask(raw, (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1, masked,
                     sizeof masked);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    len = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    len += (size_t)snprintf(line + len, sizeof line - len, ".%03ldZ %s ", (long)tv.tv_usec / 1000,
                            level_names[lvl]);
    if (rid) {
        size_t start = len;
        len += (size_t)snprintf(line + len, sizeof line - len, "[%.40s] ", rid);
        /* a request id may come from a client header: it must not break the line */
        for (size_t k = start + 1; k + 2 < len; k++)
            if ((unsigned char)line[k] < 0x20 || line[k] == 0x7f)
                line[k] = '?';
    }
    /* escape control bytes so one event is one line */
    for (size_t k = 0; k < ml && len < CM_LOG_LINE_MAX; k++) {
        unsigned char c = (unsigned char)masked[k];
        if (c == '\n') {
            line[len++] = '\\';
            line[len++] = 'n';
        } else if (c == '\r') {
            line[len++] = '\\';
            line[len++] = 'r';
        } else if (c < 0x20 || c == 0x7f) {
            len += (size_t)snprintf(line + len, 5, "\\x%02x", c);
        } else {
            line[len++] = (char)c;
        }
    }
    if ((size_t)n >= sizeof raw || len >= CM_LOG_LINE_MAX) {
        if (len > CM_LOG_LINE_MAX)
            len = CM_LOG_LINE_MAX;
        memcpy(line + len, "...", 3);
        len += 3;
    }
    line[len++] = '\n';
    line[len] = '\0';

    pthread_mutex_lock(&write_lock);
    if (atomic_load(&to_stderr))
        write_all(STDERR_FILENO, line, len);
    if (log_fd >= 0)
        write_all(log_fd, line, len);
    if (sink)
        sink(lvl, line, len, sink_ud);
    pthread_mutex_unlock(&write_lock);
}
