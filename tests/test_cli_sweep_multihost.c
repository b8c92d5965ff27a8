/* test_cli_sweep_multihost.c - `orch sweep` with its ranks on three
 * simulated hosts, MPI over TCP between them, one store written by the
 * coordinator alone.
 *
 * The hosts are network namespaces with their own hostnames (UTS
 * namespaces), one veth each on a private bridge, made by the scripts in
 * tests/mpi/ (README there); mpirun runs on host 0 and starts the other
 * ranks through an ssh look-alike: 4 ranks, by node (ranks 0 and 3 on
 * host 0, 1 and 2 on hosts 1 and 2). The
 * file system is shared, as on a cluster with an NFS home. The sweep is
 * small (3 strategies x 3 seeds, 4 steps each) and asserted from the store:
 *   - the sweep and every one of its runs are `finished`, each run handed
 *     out once and with its steps 0..3 once;
 *   - the runs ran on more than one host (runs.host, sweep_runs.host);
 *   - the store was opened only on host 0, by the coordinator: orch's
 *     debug hook ORCH_STORE_OPEN_LOG (store/open_log.c), passed to every
 *     rank with mpirun -x, logs "HOST PID PATH" for every open, and every
 *     line names host 0 and the coordinator's pid (sweeps.coordinator_pid),
 *     not rank 3's, which runs on host 0 too.
 * Completeness is judged from the store, never from mpirun's exit code
 * alone (docs/hpc.md), though that must be 0 as well. The ranks run with
 * LeakSanitizer's leak check off (LSAN_OPTIONS, for a sanitizer build):
 * Open MPI 4.1 leaves allocations of the plugins it unloads at
 * MPI_Finalize, which no suppression can name; address and undefined-
 * behaviour checks stay on, and orch's own leaks are checked by the
 * one-process sweep tests.
 *
 * Where the simulated hosts cannot be made (not root, no `ip`, `unshare`
 * or mpirun, namespaces refused by the kernel or a container) the test
 * prints the reason and is skipped. Every run uses its own MPISIM_PREFIX
 * and MPISIM_NET (from the pid), so two suites at once do not collide; the
 * hosts are torn down in the group teardown, also after a failure; every
 * command runs under a hard timeout, and mpirun's output goes to files so
 * no daemon left behind can hold the test's pipes open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <limits.h>
#include <unistd.h>

#include "tests/testutil_netns.h"

#define N_RUNS  9 /* 3 strategies x 3 seeds */
#define N_STEPS 4 /* steps per run */

static netns_cluster cluster; /* the simulated hosts and the temporary directory */

/* A pipeline a sweep extends: the tiny tower on synthetic data, inline so
 * the test needs nothing but its own files. */
static const char sweep_lua[] =
    "return sweep {\n"
    "    name = \"mh\",\n"
    "    base = {\n"
    "        name = \"mh\",\n"
    "        model = { preset = \"tiny\" },\n"
    "        data = { source = \"synthetic\", samples = 16, classes = 4,\n"
    "                 image_size = { 56, 56 } },\n"
    "        strategy = full {},\n"
    "        head = { kind = \"classifier\", classes = 4 },\n"
    "        loss = \"cross_entropy\",\n"
    "        optimizer = { kind = \"adamw\", lr = 1e-3 },\n"
    "        schedule = { steps = 4, batch_size = 2, warmup_steps = 1 },\n"
    "        precision = \"fp32\",\n"
    "        seed = 1,\n"
    "        checks = { nan = true, on_nan = \"abort\" },\n"
    "    },\n"
    "    grid = {\n"
    "        strategy = { surgery { replace = \"visual.merger.mlp.2\" },\n"
    "                     detach { adapter = \"linear\" }, lora { rank = 4, alpha = 8 } },\n"
    "    },\n"
    "    seeds = { 1, 2, 3 },\n"
    "}\n";

static int setup(void **state)
{
    (void)state;
    return netns_cluster_setup(&cluster, "orchmh", 201, 3, 2);
}

static int teardown(void **state)
{
    (void)state;
    netns_cluster_teardown(&cluster);
    return 0;
}

static void test_sweep_across_hosts(void **state)
{
    (void)state;
    if (cluster.skip_reason[0] != '\0') {
        print_message("test_cli_sweep_multihost: skipped: %s\n", cluster.skip_reason);
        skip();
    }
    const char *dir = cluster.dir;
    char sweep[400], db[400], log[400];
    snprintf(sweep, sizeof sweep, "%s/sweep.lua", dir);
    snprintf(db, sizeof db, "%s/orch.db", dir);
    snprintf(log, sizeof log, "%s/store-open.log", dir);
    assert_int_equal(write_text_file(sweep, sweep_lua), 0);

    /* mpirun on host 0; 4 ranks by node over the 3 hosts. Remote ranks
     * start with an empty environment: every variable orch needs travels
     * with -x. */
    char set_db[420], set_log[440], args[420];
    snprintf(set_db, sizeof set_db, "ORCH_DB=%s", db);
    snprintf(set_log, sizeof set_log, "ORCH_STORE_OPEN_LOG=%s", log);
    snprintf(args, sizeof args, "sweep '%s'", sweep);
    const char *vars[] = {set_db, set_log, NULL};
    netns_mpirun(&cluster, "mpirun", 4, vars, args);

    /* every run of the sweep finished, each with its steps 0..3 exactly once */
    assert_int_equal(netns_query_number(db, "SELECT count(*) FROM runs"), N_RUNS);
    assert_int_equal(netns_query_number(db, "SELECT count(*) FROM runs WHERE status = 'finished'"),
                     N_RUNS);
    assert_int_equal(netns_query_number(db, "SELECT count(*) FROM steps"), N_RUNS * N_STEPS);
    assert_int_equal(netns_query_number(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, step "
                                            "FROM steps WHERE step BETWEEN 0 AND 3)"),
                     N_RUNS * N_STEPS);
    /* one sweep, finished, each of its runs handed out once */
    assert_int_equal(
        netns_query_number(db, "SELECT count(*) FROM sweeps WHERE status = 'finished'"), 1);
    assert_int_equal(netns_query_number(db, "SELECT count(*) FROM sweep_runs WHERE attempts = 1"),
                     N_RUNS);
    /* on more than one host (as the worker recorded it in runs.host, and as
     * the coordinator recorded the hand-out in sweep_runs.host), and only on
     * the simulated ones */
    long long hosts = netns_query_number(db, "SELECT count(DISTINCT host) FROM runs");
    if (hosts < 2)
        fail_msg("all %d runs ran on one host; want runs on more than one", N_RUNS);
    assert_int_equal(netns_query_number(db, "SELECT count(DISTINCT host) FROM sweep_runs"), hosts);
    assert_int_equal(netns_query_number(db, "SELECT count(*) FROM runs r JOIN sweep_runs w "
                                            "ON w.run_id = r.id WHERE w.host IS NOT r.host"),
                     0);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE host NOT LIKE '%s-h%%'",
             cluster.prefix);
    assert_int_equal(netns_query_number(db, sql), 0);

    /* the store was opened on host 0 alone, and there by the coordinator
     * alone (rank 3 shares host 0 with it); pids are global, the hosts
     * share the machine's pid namespace */
    long long coordinator = netns_query_number(db, "SELECT coordinator_pid FROM sweeps");
    assert_true(coordinator > 0);
    char *opened = read_whole_file(log, NULL);
    if (opened == NULL)
        fail_msg("%s: no store open logged (ORCH_STORE_OPEN_LOG did not reach rank 0)", log);
    char host0[64], other[512] = "";
    snprintf(host0, sizeof host0, "%s-h0 %lld ", cluster.prefix, coordinator);
    int lines = 0, torn = 0;
    for (char *line = opened; *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl == NULL) { /* every line is written whole */
            torn = 1;
            break;
        }
        *nl = '\0';
        if (strncmp(line, host0, strlen(host0)) != 0 && other[0] == '\0')
            snprintf(other, sizeof other, "%s", line);
        lines++;
        line = nl + 1;
    }
    free(opened);
    assert_false(torn);
    if (other[0] != '\0')
        fail_msg("the store was opened by another process than the coordinator (%s): '%s'", host0,
                 other);
    assert_true(lines >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_across_hosts),
    };
    return cmocka_run_group_tests_name("cli sweep on simulated hosts", tests, setup, teardown);
}
