/* SPDX-License-Identifier: MIT */
/* limits.c - the admin API's critical and search rate limits (see limits.h). */
#include "api/limits.h"

#include "api/envelope.h"
#include "api/ratelimit.h"
#include "cm/clock.h"
#include "cm/err.h"
#include "cm/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CRIT_KEYS 4096
#define SEARCH_KEYS 1024

static struct mt_rl_entry crit_e[CRIT_KEYS], search_e[SEARCH_KEYS];
static struct mt_ratelimit crit, search;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc = CM_OK;

/* Go's strconv.ParseBool, as NewAPI's GetEnvOrDefaultBool reads it */
static int env_bool(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "t"))
        return 1;
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "f"))
        return 0;
    cm_log_warn(NULL, "meterd: %s=\"%s\" is not a boolean; using %s", name, v,
                def ? "true" : "false");
    return def;
}

static long env_long(const char *name, long def, long max)
{
    const char *v = getenv(name);
    char *end;
    long x;
    if (!v || !*v)
        return def;
    errno = 0;
    x = strtol(v, &end, 10);
    if (*end || errno || x < 0 || x > max) {
        cm_log_warn(NULL, "meterd: %s=\"%s\" is not a number in 0..%ld; using %ld", name, v, max,
                    def);
        return def;
    }
    return x;
}

static void init_once(void)
{
    long n = env_long("CRITICAL_RATE_LIMIT", 20, 1000000000L);
    long d = env_long("CRITICAL_RATE_LIMIT_DURATION", 1200, 86400L * 365);
    if (!env_bool("CRITICAL_RATE_LIMIT_ENABLE", 1))
        n = 0;
    init_rc = mt_ratelimit_init(&crit, crit_e, CRIT_KEYS, (unsigned)n, (d ? d : 1) * 1000);
    n = env_long("SEARCH_RATE_LIMIT", 10, 1000000000L);
    d = env_long("SEARCH_RATE_LIMIT_DURATION", 60, 86400L * 365);
    if (!env_bool("SEARCH_RATE_LIMIT_ENABLE", 1))
        n = 0;
    if (init_rc == CM_OK)
        init_rc =
            mt_ratelimit_init(&search, search_e, SEARCH_KEYS, (unsigned)n, (d ? d : 1) * 1000);
}

int mt_api_limits_init(void)
{
    pthread_once(&once, init_once);
    return init_rc;
}

static int refuse(struct cm_httpd_req *r, const char *what, int64_t retry_ms)
{
    char ra[32];
    int64_t s = (retry_ms + 999) / 1000;
    snprintf(ra, sizeof ra, "%lld", (long long)s);
    cm_httpd_add_header(r, "Retry-After", ra);
    mt_api_fail_status(r, 429, "too many %s requests; try again in %lld seconds", what,
                       (long long)s);
    return -1;
}

int mt_api_limit_critical(struct mt_server *srv, struct cm_httpd_req *r)
{
    int64_t retry = 0;
    if (mt_api_limits_init() != CM_OK)
        return 0;
    if (mt_ratelimit_hit(&crit, cm_httpd_req_peer(r), cm_clock_mono_ms(srv->clock), &retry))
        return 0;
    return refuse(r, "sensitive", retry);
}

int mt_api_limit_search(struct mt_server *srv, struct cm_httpd_req *r, int64_t user_id)
{
    char key[32];
    int64_t retry = 0;
    if (mt_api_limits_init() != CM_OK)
        return 0;
    snprintf(key, sizeof key, "user:%lld", (long long)user_id);
    if (mt_ratelimit_hit(&search, key, cm_clock_mono_ms(srv->clock), &retry))
        return 0;
    return refuse(r, "search", retry);
}
