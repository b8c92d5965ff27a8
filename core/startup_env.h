/*
 * startup_env.h - the environment orch's OpenMP runtime must see from its
 * first instruction (docs/threads.md).
 */
#ifndef ORCH_STARTUP_ENV_H
#define ORCH_STARTUP_ENV_H

/* The spin count orch gives libgomp when the user set no wait policy:
 * about 20 us of spinning (pause loops) before a waiting thread sleeps,
 * enough to catch back-to-back parallel regions on an idle machine;
 * libgomp's default, 300000, spins for milliseconds and takes the core
 * from the thread that has work when another process wants one.
 * Measured against 10000, 100, OMP_WAIT_POLICY=PASSIVE and the default in
 * docs/threads.md. */
#define ORCH_GOMP_SPINCOUNT "1000"

/* Set in the environment of the re-executed process: orch's own mark, so
 * it never re-executes twice, and a user sees why GOMP_SPINCOUNT is set. */
#define ORCH_STARTUP_MARK "ORCH_STARTUP_ENV"

/* libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded,
 * before main runs. If the user set neither (and this process is not
 * already the re-executed one), sets GOMP_SPINCOUNT=ORCH_GOMP_SPINCOUNT and
 * the mark, and re-executes this program (/proc/self/exe) with the same
 * argv: same pid, open files, stdin/stdout, so exit codes and pipes are
 * unchanged. Returns only if nothing was to be done or the exec failed
 * (then the program runs on with libgomp's defaults). */
void orch_startup_env(char **argv);

/* The wait policy the process runs under, for the user: "GOMP_SPINCOUNT=1000
 * (set by orch)", "OMP_WAIT_POLICY=passive (yours)", "libgomp's default". */
const char *orch_startup_env_describe(void);

#endif
