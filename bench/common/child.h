/*
 * child.h - running orch (or mpirun with orch) from a bench program, the
 * way bench/sweep and bench/dp both do: output appended to a log, one
 * kernel thread per process, and the Open MPI settings of the tests.
 */
#ifndef ORCH_BENCH_CHILD_H
#define ORCH_BENCH_CHILD_H

#include <stddef.h>
#include <sys/resource.h>

/* Runs argv (argv[0] found on PATH) and waits for it: stdout and stderr
 * appended to log, ORCH_THREADS=1, and Open MPI set for a fast start-up,
 * no binding, more ranks than cores allowed, its session files in work
 * (and root allowed). Returns the wait status (-1 when fork fails); *ru
 * receives the child's resource usage when ru is not NULL. */
int bench_child_run(char *const argv[], const char *work, const char *log, struct rusage *ru);

/* BUILD/orch, beside the bench program argv0 (BUILD/bench/NAME), into out
 * (n bytes). Returns 0, or -1 (errno set) when argv0 cannot be resolved or
 * the path does not fit. */
int bench_orch_path(const char *argv0, char *out, size_t n);

#endif
