/* SPDX-License-Identifier: MIT */
/*
 * main.c - meterctl: the operators' command line for meterd's NewAPI-compatible admin API.
 * Argument parsing and dispatch only; the commands live in cmd_*.c, the HTTP client in
 * api.c, configuration in conf.c, tables in table.c, the pricing glue in price.c. The only
 * place that exits.
 *
 * usage: meterctl [global options] COMMAND [ARGS]
 *
 *   price set MODEL --input USD --output USD [--cached USD] [--cache-write USD] [MODEL ...]
 *       Prices in USD per 1M tokens -> ModelRatio = input/2, CompletionRatio = output/input,
 *       CacheRatio = cached/input, CreateCacheRatio = cache-write/input, merged into
 *       meterd's options, read back, and the prices now in force printed.
 *   price list [MODEL ...]                  prices in force (per 1M tokens, group ratio 1)
 *   user list                               users, roles, balances
 *   topup USER QUOTA | topup USER --usd N   add to a balance (USER: id or username)
 *   token create NAME [--quota N|--usd N] [--models M1,M2] [--expires WHEN] [--group G]
 *                                           new sk- key for --user; printed once
 *   token list                              --user's keys, masked
 *   channel add NAME --type T --base-url URL --models M1,M2 (--key K|--key-file F|--key -)
 *               [--group G] [--priority N] [--weight N] [--test-model M]
 *   channel list
 *   channel test ID|NAME [--model M]
 *   verify --cliproxy-url URL --cliproxy-key KEY --token sk-... --model M
 *       cliproxyd answers 200, meterd relays 200, the consume log row of that request
 *       (X-Oneapi-Request-Id) exists with quota > 0 equal to the price formula.
 *
 *   global options (anywhere on the line):
 *     --url URL           meterd base URL      env METERD_URL   file url= (http://127.0.0.1:3000)
 *     --access-token TOK  admin access token   env METERD_TOKEN file token=
 *     --user ID           New-Api-User id      env METERD_USER  file user=   (1)
 *     --config FILE       key=value file (default $XDG_CONFIG_HOME/meterctl or
 *                         ~/.config/meterctl; a directory means DIR/config)
 *     --json              JSON on stdout for scripts
 *     --color WHEN        always | never | auto (auto: only on a TTY, not with NO_COLOR)
 *     --no-color, --timeout SECONDS (30), -v/--verbose (requests on stderr, secrets masked),
 *     -h/--help, --version
 *   precedence: flags > environment > config file > defaults.
 *   exit codes: 0 ok, 1 failed, 2 usage/config, 3 meterd unreachable, 4 auth refused.
 */
#include "cmd.h"

#include "cm/err.h"
#include "cm/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "meterctl - operate meterd (NewAPI-compatible metering) from the command line\n"
    "\n"
    "usage: meterctl [global options] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  price set MODEL --input USD --output USD [--cached USD] [--cache-write USD] [MODEL ...]\n"
    "                   set prices in USD per 1M tokens: ModelRatio = input/2,\n"
    "                   CompletionRatio = output/input, CacheRatio = cached/input,\n"
    "                   CreateCacheRatio = cache-write/input; merged into meterd's options,\n"
    "                   read back, and the prices now in force printed\n"
    "  price list [MODEL ...]                  prices in force (per 1M tokens, group ratio 1)\n"
    "  user list                               users, roles and balances\n"
    "  topup USER QUOTA | topup USER --usd N   add to a balance (USER: id or username)\n"
    "  token create NAME [--quota N | --usd N] [--models M1,M2] [--expires WHEN] [--group G]\n"
    "                   new API key for the --user account; the sk- key is printed once\n"
    "  token list                              the --user account's keys (masked)\n"
    "  channel add NAME --type T --base-url URL --models M1,M2 (--key K | --key-file F | --key -)\n"
    "              [--group G] [--priority N] [--weight N] [--test-model M]\n"
    "  channel list\n"
    "  channel test ID|NAME [--model M]\n"
    "  verify --cliproxy-url URL --cliproxy-key KEY --token sk-... --model M\n"
    "                   end-to-end: cliproxyd answers 200, meterd relays 200, and the log row\n"
    "                   of that request (X-Oneapi-Request-Id) has quota > 0 equal to the\n"
    "                   price formula applied to its tokens\n"
    "\n"
    "global options (anywhere on the line):\n"
    "  --url URL            meterd base URL     (env METERD_URL, file url=; default\n"
    "                       " MC_CONF_DEFAULT_URL ")\n"
    "  --access-token TOK   access token        (env METERD_TOKEN, file token=)\n"
    "  --user ID            New-Api-User id     (env METERD_USER, file user=; default 1)\n"
    "  --config FILE        key=value config file (default $XDG_CONFIG_HOME/meterctl or\n"
    "                       ~/.config/meterctl; keys url, token, user, cliproxy_url,\n"
    "                       cliproxy_key)\n"
    "  --json               JSON on stdout, for scripts\n"
    "  --color WHEN         always, never or auto (default: colours only on a terminal and\n"
    "                       without NO_COLOR); --no-color\n"
    "  --timeout SECONDS    per request (default 30)\n"
    "  -v, --verbose        show requests and answers on stderr (secrets masked)\n"
    "  -h, --help           this text (COMMAND --help: that command's)\n"
    "  --version\n"
    "precedence: flags > environment > config file > defaults\n"
    "exit codes: 0 ok, 1 failed (meterd refused, a check failed), 2 usage or configuration,\n"
    "  3 meterd unreachable, 4 access token or user refused\n";

static const char *env_get(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

static const struct {
    const char *name;
    int (*fn)(struct mc_ctx *, int, char **);
} COMMANDS[] = {
    {"price", mc_cmd_price},     {"user", mc_cmd_user},        {"users", mc_cmd_user},
    {"topup", mc_cmd_topup},     {"token", mc_cmd_token},      {"tokens", mc_cmd_token},
    {"channel", mc_cmd_channel}, {"channels", mc_cmd_channel}, {"verify", mc_cmd_verify},
};

int main(int argc, char **argv)
{
    const struct mc_opt *const tables[] = {mc_global_opts, NULL};
    struct mc_ctx c;
    struct mc_args a;
    struct mc_arg arg;
    char err[256];
    int ex = MC_EXIT_USAGE, cmd_at = -1;

    if (mc_api_global_init() != CM_OK) {
        fprintf(stderr, "meterctl: cannot initialise libcurl\n");
        return MC_EXIT_FAIL;
    }
    mc_ctx_init(&c, stdout, stderr, env_get, NULL);
    c.out_tty = isatty(STDOUT_FILENO);
    c.err_tty = isatty(STDERR_FILENO);

    /* global options up to the command word */
    mc_args_init(&a, argc - 1, argv + 1);
    for (;;) {
        if (mc_args_next(&a, tables, &arg, err, sizeof err)) {
            ex = mc_usage_error(&c, "", "%s", err);
            goto out;
        }
        if (arg.kind == MC_ARG_END)
            break;
        if (arg.kind == MC_ARG_POS) {
            cmd_at = a.i; /* index (in argv + 1) just after the command word */
            break;
        }
        if (arg.id == MC_GOPT_VERSION) {
            printf("meterctl %s\n", CM_VERSION);
            ex = MC_EXIT_OK;
            goto out;
        }
        if (mc_global_opt(&c, &arg, err, sizeof err) != CM_OK) {
            ex = mc_usage_error(&c, "", "%s", err);
            goto out;
        }
    }
    if (cmd_at < 0 || strcmp(arg.value, "help") == 0) {
        fputs(USAGE, cmd_at < 0 && !c.help ? stderr : stdout);
        ex = cmd_at < 0 && !c.help ? MC_EXIT_USAGE : MC_EXIT_OK;
        goto out;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
        if (strcmp(arg.value, COMMANDS[i].name) == 0) {
            ex = COMMANDS[i].fn(&c, argc - 1 - cmd_at, argv + 1 + cmd_at);
            goto out;
        }
    }
    ex = mc_usage_error(&c, "", "unknown command \"%s\"", arg.value);
out:
    fflush(stdout);
    mc_ctx_cleanup(&c);
    mc_api_global_cleanup();
    return ex;
}
