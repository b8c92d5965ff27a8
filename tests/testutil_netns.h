/*
 * testutil_netns.h - simulated hosts for the multi-host CLI tests: network
 * namespaces with their own hostnames, one veth each on a private bridge,
 * made by the scripts in tests/mpi/ (README there), and mpirun started on
 * host 0 with an ssh look-alike reaching the others.
 *
 * Every cluster gets its own MPISIM_PREFIX (TAG + the test's pid) and
 * MPISIM_NET (10.OCTET.x, x from the pid), so two suites at once do not
 * collide. Where the hosts cannot be made (not root, no `ip`, `unshare` or
 * mpirun, namespaces refused by the kernel or a container) skip_reason says
 * why and the test prints it and skips. Every command runs under a hard
 * timeout, and mpirun's output goes to files so no daemon left behind can
 * hold the test's pipes open.
 */
#ifndef ORCH_TESTUTIL_NETNS_H
#define ORCH_TESTUTIL_NETNS_H

#include <limits.h>

#include "tests/testutil.h"

typedef struct netns_cluster {
    char dir[256];          /* temporary: stores, files, logs, Open MPI session dirs */
    char scripts[PATH_MAX]; /* tests/mpi, absolute */
    char bin[PATH_MAX];     /* the orch binary under test, absolute */
    char prefix[32];        /* MPISIM_PREFIX: namespace and host name prefix */
    char net[32];           /* MPISIM_NET: the hosts' private /24 */
    char env[1024];         /* the settings every script gets, as shell assignments */
    int hosts_made;         /* setup-netns.sh was started: teardown must run */
    char skip_reason[512];  /* why the hosts cannot be made; "" when they can */
} netns_cluster;

/* Makes the temporary directory and, where possible, `hosts` hosts of
 * `slots` slots each (names TAGPID-h0 ...), after removing hosts left by an
 * earlier run of a test with the same tag that was killed before its
 * teardown. Returns 0 (skip_reason set when the hosts cannot be made), or
 * -1 when not even the directory could be made. */
int netns_cluster_setup(netns_cluster *c, const char *tag, int net_octet, int hosts, int slots);

/* Removes the hosts (killing what is left in them) and the directory. */
void netns_cluster_teardown(netns_cluster *c);

/* Runs a shell command; returns its exit code and keeps its output in *r
 * (the caller frees it). Fails the test when the shell cannot start. */
int netns_sh(cli_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs `mpirun -np NP --map-by node` on host 0 with orch's ARGS (a shell
 * word list, already quoted), TCP only over the simulated network, Open MPI
 * session files in DIR/ompi, ORCH_THREADS=1 and the variables of vars
 * ("NAME=value", NULL-terminated, may be NULL; no single quotes in values)
 * forwarded to every rank with -x (remote ranks start with an empty
 * environment); LeakSanitizer's leak check is off in the ranks (Open MPI
 * 4.1 leaves allocations of the plugins it unloads at MPI_Finalize).
 * stdout and stderr go to DIR/NAME.out and DIR/NAME.err. Hard limit 180 s.
 * Fails the test, with the end of its stderr, unless it exits 0. */
void netns_mpirun(const netns_cluster *c, const char *name, int np, const char *const vars[],
                  const char *args);

/* The one value of a single-row, single-column `orch query --csv` (the
 * line after the header), as a number; the query itself is not logged by
 * ORCH_STORE_OPEN_LOG. */
long long netns_query_number(const char *db, const char *sql);

#endif
