/* SPDX-License-Identifier: MIT */
/* sys.h - small process-level helpers for main(): file limits, CPU count, signals. */
#ifndef CM_SYS_H
#define CM_SYS_H

#include <pthread.h>

/** Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit, or -1. */
long cm_sys_raise_nofile(void);
/** Number of online CPUs, at least 1. */
unsigned cm_sys_ncpu(void);
/**
 * Blocks SIGINT/SIGTERM/SIGHUP/SIGPIPE in the calling thread (call before starting
 * threads so they inherit the mask) and waits for one of the first three.
 * cm_sys_block_signals() does the first part; cm_sys_wait_signal() the second and
 * returns the signal number.
 */
void cm_sys_block_signals(void);
int cm_sys_wait_signal(void);

/**
 * pthread_cond_timedwait() for at most @p ms milliseconds from now (CLOCK_REALTIME, the
 * condition's default clock); @p mu held by the caller. Returns its result (0 or ETIMEDOUT).
 * For background threads that poll with a period and wake early when signalled.
 */
int cm_sys_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, unsigned ms);

#endif
