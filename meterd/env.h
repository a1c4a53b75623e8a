/* SPDX-License-Identifier: MIT */
/*
 * env.h - NewAPI's environment conventions for meterd: a `.env` file in the working
 * directory is read at start (KEY=VALUE lines, `#` comments, optional `export `, single or
 * double quotes) and sets the variables that are not already set, as godotenv does
 * (spec newapi.md 1.14). For main() only.
 */
#ifndef MT_ENV_H
#define MT_ENV_H

#include <stddef.h>

/**
 * Applies @p path (e.g. ".env"): every KEY=VALUE whose KEY is not in the environment yet
 * is set. A missing file is CM_OK with nothing done. A malformed line is skipped with a
 * WARN naming the line number (never the value). CM_OK, CM_ERR_IO, CM_ERR_NOMEM.
 */
int mt_env_load(const char *path);

#endif
