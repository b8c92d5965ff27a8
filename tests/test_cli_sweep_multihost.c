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

#include "tests/testutil.h"

#define N_RUNS  9 /* 3 strategies x 3 seeds */
#define N_STEPS 4 /* steps per run */

static char dir[256];          /* temporary: store, sweep file, logs, Open MPI session dirs */
static char scripts[PATH_MAX]; /* tests/mpi, absolute */
static char bin[PATH_MAX];     /* the orch binary under test, absolute */
static char prefix[32];        /* MPISIM_PREFIX: namespace and host name prefix */
static char net[32];           /* MPISIM_NET: the hosts' private /24 */
static char env[1024];         /* the settings every script gets, as shell assignments */
static int hosts_made;         /* setup-netns.sh was started: teardown must run */
static char skip_reason[512];  /* why the hosts cannot be made; "" when they can */

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

/* Runs a shell command; returns its exit code and keeps its output in *r
 * (the caller frees it). */
static int sh(cli_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(cli_result *r, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    assert_int_equal(run_shell(cmd, r), 0);
    return r->exit_code;
}

/* 1 when the shell finds the program. */
static int have(const char *program)
{
    cli_result r;
    int code = sh(&r, "command -v %s >/dev/null 2>&1", program);
    cli_result_free(&r);
    return code == 0;
}

static int setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir) == NULL || realpath("tests/mpi", scripts) == NULL ||
        realpath(orch_bin(), bin) == NULL)
        return -1;
    long pid = (long)getpid();
    snprintf(prefix, sizeof prefix, "orchmh%ld", pid);
    /* 10.201.0.0/16 is free on this test's hosts: nothing but the
     * namespaces themselves ever holds these addresses */
    snprintf(net, sizeof net, "10.201.%ld", pid % 250 + 1);
    snprintf(env, sizeof env,
             "MPISIM_PREFIX=%s MPISIM_NET=%s MPISIM_HOSTS=3 MPISIM_SLOTS=2 "
             "MPISIM_HOSTFILE='%s/hostfile'",
             prefix, net, dir);
    if (geteuid() != 0) {
        snprintf(skip_reason, sizeof skip_reason, "not root: network namespaces need root");
        return 0;
    }
    const char *needed[] = {"ip", "unshare", "mpirun", "flock", "timeout"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!have(needed[i])) {
            snprintf(skip_reason, sizeof skip_reason, "no '%s' on this machine", needed[i]);
            return 0;
        }
    cli_result r;
    /* hosts left by an earlier run of this test that was killed before its
     * teardown (its pid is in the prefix and no longer alive) go first */
    sh(&r,
       "for p in $(ip netns list | sed -n 's/^orchmh\\([0-9][0-9]*\\)-.*/\\1/p' | sort -u); do "
       "kill -0 \"$p\" 2>/dev/null || MPISIM_PREFIX=orchmh$p timeout -s KILL 60 "
       "'%s/teardown-netns.sh' >/dev/null 2>&1; done; true",
       scripts);
    cli_result_free(&r);
    hosts_made = 1;
    int code = sh(&r, "%s timeout -s KILL 60 '%s/setup-netns.sh'", env, scripts);
    if (code != 0) {
        /* namespaces refused (a container without CAP_SYS_ADMIN, no veth
         * support, ...): the reason is the script's last line */
        char *last = r.err;
        for (char *p = r.err; *p; p++)
            if (*p == '\n' && p[1] != '\0')
                last = p + 1;
        snprintf(skip_reason, sizeof skip_reason,
                 "simulated hosts cannot be made (exit %d): %.400s", code, last);
        skip_reason[strcspn(skip_reason, "\n")] = '\0';
    }
    cli_result_free(&r);
    if (code == 0) {
        /* a UTS namespace per host too (netns-exec.sh), checked here so a
         * kernel that refuses it skips rather than fails */
        code =
            sh(&r, "%s timeout -s KILL 20 '%s/netns-exec.sh' %s-h1 hostname", env, scripts, prefix);
        char want[64];
        snprintf(want, sizeof want, "%s-h1\n", prefix);
        if (code != 0 || strcmp(r.out, want) != 0)
            snprintf(skip_reason, sizeof skip_reason,
                     "cannot run a command on a simulated host (exit %d): %.300s", code, r.err);
        cli_result_free(&r);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (hosts_made) {
        cli_result r;
        /* kills what is left in the namespaces (ranks, orted) and removes them */
        if (sh(&r, "%s timeout -s KILL 60 '%s/teardown-netns.sh'", env, scripts) != 0)
            fprintf(stderr, "teardown-netns.sh failed: %s\n", r.err);
        cli_result_free(&r);
    }
    remove_tree(dir);
    return 0;
}

/* The one value of a single-row, single-column `orch query --csv` (the
 * line after the header), as a number. */
static long long query_number(const char *db, const char *sql)
{
    const char *argv[] = {"query", sql, "--db", db, "--csv", NULL};
    const char *no_log[] = {"ORCH_STORE_OPEN_LOG=", NULL}; /* the test's own reads are not logged */
    cli_result r;
    assert_int_equal(run_orch(argv, no_log, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch query '%s' exited %d: %s", sql, r.exit_code, r.err);
    const char *row = strchr(r.out, '\n');
    assert_non_null(row);
    long long value = atoll(row + 1);
    cli_result_free(&r);
    return value;
}

static void test_sweep_across_hosts(void **state)
{
    (void)state;
    if (skip_reason[0] != '\0') {
        print_message("test_cli_sweep_multihost: skipped: %s\n", skip_reason);
        skip();
    }
    char sweep[400], db[400], log[400], ompi[400];
    snprintf(sweep, sizeof sweep, "%s/sweep.lua", dir);
    snprintf(db, sizeof db, "%s/orch.db", dir);
    snprintf(log, sizeof log, "%s/store-open.log", dir);
    snprintf(ompi, sizeof ompi, "%s/ompi", dir);
    assert_int_equal(write_text_file(sweep, sweep_lua), 0);

    /* mpirun on host 0; 3 ranks, one per host; TCP between hosts only over
     * the simulated network; session dirs and shared-memory segments in
     * the test's own directory. Remote ranks start with an empty
     * environment: every variable orch needs travels with -x. */
    cli_result r;
    int code = sh(&r,
                  "cd '%s' && mkdir -p '%s' && %s ORCH_DB='%s' ORCH_THREADS=1 "
                  "ORCH_STORE_OPEN_LOG='%s' LSAN_OPTIONS=\"${LSAN_OPTIONS:+$LSAN_OPTIONS:}"
                  "detect_leaks=0\" timeout -s KILL 200 '%s/netns-exec.sh' %s-h0 "
                  "timeout -s TERM -k 10 180 mpirun --allow-run-as-root --oversubscribe "
                  "--hostfile '%s/hostfile' -np 4 --map-by node --bind-to none "
                  "--mca plm_rsh_agent '%s/rsh-netns.sh' --mca pml ob1 "
                  "--mca btl self,vader,tcp --mca btl_vader_single_copy_mechanism none "
                  "--mca btl_tcp_if_include %s.0/24 --mca oob_tcp_if_include %s.0/24 "
                  "--mca orte_tmpdir_base '%s' --mca btl_vader_backing_directory '%s' "
                  "-x ORCH_DB -x ORCH_THREADS -x ORCH_STORE_OPEN_LOG -x LSAN_OPTIONS "
                  "'%s' sweep '%s' >'%s/mpirun.out' 2>'%s/mpirun.err'",
                  dir, ompi, env, db, log, scripts, prefix, dir, scripts, net, net, ompi, ompi, bin,
                  sweep, dir, dir);
    cli_result_free(&r);
    if (code != 0) {
        /* the end of its stderr: the ranks' progress lines come first */
        char path[400], tail[2048];
        snprintf(path, sizeof path, "%s/mpirun.err", dir);
        char *err = read_whole_file(path, NULL);
        size_t n = err != NULL ? strlen(err) : 0;
        snprintf(tail, sizeof tail, "%s",
                 err == NULL ? "(no stderr)" : err + (n > 2000 ? n - 2000 : 0));
        free(err);
        fail_msg("mpirun of orch sweep (4 ranks, 3 simulated hosts) exited %d: ...%s", code, tail);
    }

    /* every run of the sweep finished, each with its steps 0..3 exactly once */
    assert_int_equal(query_number(db, "SELECT count(*) FROM runs"), N_RUNS);
    assert_int_equal(query_number(db, "SELECT count(*) FROM runs WHERE status = 'finished'"),
                     N_RUNS);
    assert_int_equal(query_number(db, "SELECT count(*) FROM steps"), N_RUNS * N_STEPS);
    assert_int_equal(query_number(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, step "
                                      "FROM steps WHERE step BETWEEN 0 AND 3)"),
                     N_RUNS * N_STEPS);
    /* one sweep, finished, each of its runs handed out once */
    assert_int_equal(query_number(db, "SELECT count(*) FROM sweeps WHERE status = 'finished'"), 1);
    assert_int_equal(query_number(db, "SELECT count(*) FROM sweep_runs WHERE attempts = 1"),
                     N_RUNS);
    /* on more than one host (as the worker recorded it in runs.host, and as
     * the coordinator recorded the hand-out in sweep_runs.host), and only on
     * the simulated ones */
    long long hosts = query_number(db, "SELECT count(DISTINCT host) FROM runs");
    if (hosts < 2)
        fail_msg("all %d runs ran on one host; want runs on more than one", N_RUNS);
    assert_int_equal(query_number(db, "SELECT count(DISTINCT host) FROM sweep_runs"), hosts);
    assert_int_equal(query_number(db, "SELECT count(*) FROM runs r JOIN sweep_runs w "
                                      "ON w.run_id = r.id WHERE w.host IS NOT r.host"),
                     0);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE host NOT LIKE '%s-h%%'", prefix);
    assert_int_equal(query_number(db, sql), 0);

    /* the store was opened on host 0 alone, and there by the coordinator
     * alone (rank 3 shares host 0 with it); pids are global, the hosts
     * share the machine's pid namespace */
    long long coordinator = query_number(db, "SELECT coordinator_pid FROM sweeps");
    assert_true(coordinator > 0);
    char *opened = read_whole_file(log, NULL);
    if (opened == NULL)
        fail_msg("%s: no store open logged (ORCH_STORE_OPEN_LOG did not reach rank 0)", log);
    char host0[64], other[512] = "";
    snprintf(host0, sizeof host0, "%s-h0 %lld ", prefix, coordinator);
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
