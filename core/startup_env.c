/*
 * startup_env.c - re-executes orch once so that libgomp starts with a
 * bounded spin count (docs/threads.md has the measurements behind it).
 *
 * Why: libgomp's waiting threads spin for GOMP_SPINCOUNT iterations
 * (300000 by default, milliseconds) between parallel regions before they
 * sleep. On a machine where another process wants a core, those spins
 * take the core from the thread that has work, at every one of the
 * hundreds of parallel regions of a step. libgomp reads the variable only
 * while it is loaded, before main, so setenv in main is too late: the
 * process has to start again with it.
 */
#include "core/startup_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int is_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

void orch_startup_env(char **argv)
{
    if (is_set(ORCH_STARTUP_MARK) || is_set("OMP_WAIT_POLICY") || is_set("GOMP_SPINCOUNT"))
        return;
    if (setenv("GOMP_SPINCOUNT", ORCH_GOMP_SPINCOUNT, 1) != 0 ||
        setenv(ORCH_STARTUP_MARK, "1", 1) != 0)
        return;
    fflush(NULL); /* nothing is buffered yet; keep it so if a caller printed */
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): run on as is, without the mark's promise */
    unsetenv("GOMP_SPINCOUNT");
    unsetenv(ORCH_STARTUP_MARK);
}

const char *orch_startup_env_describe(void)
{
    static char buf[96];
    if (is_set(ORCH_STARTUP_MARK) && is_set("GOMP_SPINCOUNT"))
        snprintf(buf, sizeof buf, "GOMP_SPINCOUNT=%.24s (set by orch)", getenv("GOMP_SPINCOUNT"));
    else if (is_set("OMP_WAIT_POLICY"))
        snprintf(buf, sizeof buf, "OMP_WAIT_POLICY=%.24s (yours)", getenv("OMP_WAIT_POLICY"));
    else if (is_set("GOMP_SPINCOUNT"))
        snprintf(buf, sizeof buf, "GOMP_SPINCOUNT=%.24s (yours)", getenv("GOMP_SPINCOUNT"));
    else
        snprintf(buf, sizeof buf, "libgomp's default wait");
    return buf;
}
