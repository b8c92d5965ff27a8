/* test_cli_dp_multihost.c - one data-parallel `orch run` with its two
 * ranks on two simulated hosts, MPI over TCP between them, against the
 * same run on one rank.
 *
 * The hosts are network namespaces with their own hostnames (tests/mpi/,
 * tests/testutil_netns.h); mpirun runs on host 0 and starts rank 1 on host
 * 1 through an ssh look-alike (one slot per host, by node). The pipeline is
 * the `small` preset, full fine-tuning (every parameter's gradient crosses
 * the network), global batch 4 of 112x112 images, 5 steps, with `parallel =
 * { data = 2 }`; the one-rank run is the same file without that line, run
 * by orch alone. Asserted from the two stores:
 *   - both runs are `finished` with steps 0..4;
 *   - every step's loss and grad norm agree within 1e-6 relative (the
 *     2-rank run sums the same per-image gradients in another order);
 *   - the run is recorded once, on host 0;
 *   - the store was opened only on host 0 and only by rank 0 (the pid the
 *     run recorded): orch's debug hook ORCH_STORE_OPEN_LOG
 *     (store/open_log.c), passed to both ranks with mpirun -x, logs "HOST
 *     PID PATH" for every open.
 * Where the simulated hosts cannot be made the test prints the reason and
 * is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "tests/testutil_netns.h"

#define N_STEPS 5

static netns_cluster cluster; /* the simulated hosts and the temporary directory */

/* The pipeline of both runs; %s is "" for one rank and the parallel line
 * for two. */
static const char pipeline_fmt[] =
    "return {\n"
    "    name = \"dp-mh\",\n"
    "    model = { preset = \"small\" },\n"
    "    data = { source = \"synthetic\", samples = 16, classes = 4,\n"
    "             image_size = { 112, 112 } },\n"
    "    strategy = full {},\n"
    "    head = { kind = \"classifier\", classes = 4 },\n"
    "    loss = \"cross_entropy\",\n"
    "    optimizer = { kind = \"adamw\", lr = 1e-3, grad_clip = 1.0 },\n"
    "    schedule = { steps = 5, batch_size = 4, warmup_steps = 1 },\n"
    "%s"
    "    precision = \"fp32\",\n"
    "    seed = 7,\n"
    "    checks = { nan = true, on_nan = \"abort\" },\n"
    "}\n";

static int setup(void **state)
{
    (void)state;
    return netns_cluster_setup(&cluster, "orchdp", 202, 2, 1);
}

static int teardown(void **state)
{
    (void)state;
    netns_cluster_teardown(&cluster);
    return 0;
}

typedef struct steps {
    int n;
    double loss[N_STEPS], grad_norm[N_STEPS];
} steps;

/* The steps of the one run in db, in order; every step 0..N_STEPS-1 once. */
static steps read_steps(const char *db)
{
    const char *argv[] = {"query", "SELECT step, loss, grad_norm FROM steps ORDER BY step",
                          "--db",  db,
                          "--csv", NULL};
    const char *no_log[] = {"ORCH_STORE_OPEN_LOG=", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, no_log, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch query of %s exited %d: %s", db, r.exit_code, r.err);
    steps s = {0};
    for (const char *line = strchr(r.out, '\n'); line != NULL && line[1] != '\0';
         line = strchr(line + 1, '\n')) {
        int step = -1;
        double loss = NAN, norm = NAN;
        if (sscanf(line + 1, "%d,%lf,%lf", &step, &loss, &norm) != 3)
            fail_msg("%s: unreadable step row '%.80s'", db, line + 1);
        assert_int_equal(step, s.n);
        assert_true(s.n < N_STEPS);
        s.loss[s.n] = loss;
        s.grad_norm[s.n] = norm;
        s.n++;
    }
    cli_result_free(&r);
    assert_int_equal(s.n, N_STEPS);
    return s;
}

static void assert_close(const char *what, int step, double got, double want)
{
    double scale = fabs(want) > 1e-30 ? fabs(want) : 1.0;
    if (!(fabs(got - want) <= 1e-6 * scale))
        fail_msg("step %d: %s %.9g on 2 ranks, %.9g on 1 (relative %.3g > 1e-6)", step, what, got,
                 want, fabs(got - want) / scale);
}

static void test_dp_across_hosts(void **state)
{
    (void)state;
    if (cluster.skip_reason[0] != '\0') {
        print_message("test_cli_dp_multihost: skipped: %s\n", cluster.skip_reason);
        skip();
    }
    const char *dir = cluster.dir;
    char one_file[400], two_file[400], one_db[400], two_db[400], log[400], text[2048];
    snprintf(one_file, sizeof one_file, "%s/one.lua", dir);
    snprintf(two_file, sizeof two_file, "%s/two.lua", dir);
    snprintf(one_db, sizeof one_db, "%s/one.db", dir);
    snprintf(two_db, sizeof two_db, "%s/two.db", dir);
    snprintf(log, sizeof log, "%s/store-open.log", dir);
    snprintf(text, sizeof text, pipeline_fmt, "");
    assert_int_equal(write_text_file(one_file, text), 0);
    snprintf(text, sizeof text, pipeline_fmt, "    parallel = { data = 2 },\n");
    assert_int_equal(write_text_file(two_file, text), 0);

    /* the reference: one rank, one process, no MPI */
    const char *argv[] = {"run", one_file, "--db", one_db, NULL};
    const char *env[] = {"ORCH_THREADS=1", "ORCH_STORE_OPEN_LOG=", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch run (one rank) exited %d: %s", r.exit_code, r.err);
    cli_result_free(&r);

    /* the same global batch on 2 ranks, one per host */
    char set_log[440], args[900];
    snprintf(set_log, sizeof set_log, "ORCH_STORE_OPEN_LOG=%s", log);
    snprintf(args, sizeof args, "run '%s' --db '%s'", two_file, two_db);
    const char *vars[] = {set_log, NULL};
    netns_mpirun(&cluster, "mpirun", 2, vars, args);

    /* both finished, one run each; the 2-rank one recorded on host 0 */
    assert_int_equal(netns_query_number(one_db, "SELECT count(*) FROM runs WHERE status = "
                                                "'finished'"),
                     1);
    assert_int_equal(netns_query_number(two_db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(netns_query_number(two_db, "SELECT count(*) FROM runs WHERE status = "
                                                "'finished'"),
                     1);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE host = '%s-h0'", cluster.prefix);
    assert_int_equal(netns_query_number(two_db, sql), 1);

    /* the same losses and grad norms, step by step */
    steps one = read_steps(one_db), two = read_steps(two_db);
    for (int i = 0; i < N_STEPS; i++) {
        assert_close("loss", i, two.loss[i], one.loss[i]);
        assert_close("grad_norm", i, two.grad_norm[i], one.grad_norm[i]);
    }

    /* the store was opened on host 0 alone, by rank 0 alone (the pid the
     * run recorded; pids are global, the hosts share the machine's pid
     * namespace) */
    long long rank0 = netns_query_number(two_db, "SELECT pid FROM runs");
    assert_true(rank0 > 0);
    char *opened = read_whole_file(log, NULL);
    if (opened == NULL)
        fail_msg("%s: no store open logged (ORCH_STORE_OPEN_LOG did not reach rank 0)", log);
    char host0[64], other[512] = "";
    snprintf(host0, sizeof host0, "%s-h0 %lld ", cluster.prefix, rank0);
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
        fail_msg("the store was opened by another process than rank 0 (%s): '%s'", host0, other);
    assert_true(lines >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dp_across_hosts),
    };
    return cmocka_run_group_tests_name("cli data-parallel run on simulated hosts", tests, setup,
                                       teardown);
}
