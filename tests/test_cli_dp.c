/* test_cli_dp.c - data-parallel `orch run` through the orch binary: a run
 * over `mpirun -np 2` and `-np 3 --oversubscribe` matches the one-rank run
 * of the same global batch (losses within 1e-6 relative, grad norms within
 * 1e-6 of the run's largest, over 20 steps) for surgery, detach, LoRA and full, and is
 * bit-identical between two runs on the same rank count; a NaN injected on rank 1 only makes every
 * rank take the same branch and is recorded once, with rank 1, its host and its provenance; a
 * 2-rank run stopped at a step resumes on 3 ranks with the losses of an uninterrupted run; a degree
 * that is not the launcher's is one line, exit 2 and no store; only rank 0 opens the store. Every
 * mpirun runs under a hard timeout with its own session directory (tests/testutil_sweep.h), with
 * ORCH_THREADS=1. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"
#include "tests/testutil_sweep.h"

#define STEPS 20
#define TOL   1e-6

static const char *const strategies[] = {"surgery", "detach", "lora", "base"};
#define N_STRATEGIES (sizeof strategies / sizeof strategies[0])

/* Runs `orch run pipelines/NAME.lua --db DB --quiet ARGS` alone (ranks 0)
 * or under `mpirun -np RANKS` with --ranks RANKS. env: more "NAME=value"
 * words, or NULL. */
static int dp_run(const char *dir, const char *db, int ranks, const char *name, const char *args,
                  const char *env, cli_result *r)
{
    char cmd[4096];
    if (ranks == 0)
        snprintf(cmd, sizeof cmd,
                 "env ORCH_THREADS=1 %s '%s' run pipelines/%s.lua --db '%s' --quiet %s",
                 env ? env : "", orch_bin(), name, db, args ? args : "");
    else
        snprintf(
            cmd, sizeof cmd,
            "mkdir -p '%s/ompi' && env ORCH_THREADS=1 " SWEEP_MPI_ENV
            "OMPI_MCA_orte_tmpdir_base='%s/ompi' OMPI_MCA_btl_vader_backing_directory='%s/ompi' "
            "%s timeout -s KILL 170 mpirun --timeout 150 -np %d '%s' run pipelines/%s.lua "
            "--db '%s' --quiet --ranks %d %s",
            dir, dir, dir, env ? env : "", ranks, orch_bin(), name, db, ranks, args ? args : "");
    return run_shell(cmd, r);
}

/* The steps of run id: n values of loss and grad_norm (NaN for NULL). */
typedef struct steps {
    int n;
    double loss[64], norm[64];
    char *exact; /* "step loss grad_norm" lines with SQLite's exact quote() */
} steps;

static void read_steps(const char *db, int64_t run, steps *s)
{
    memset(s, 0, sizeof *s);
    char q[512];
    snprintf(q, sizeof q,
             "SELECT group_concat(line, char(10)) FROM (SELECT step || ' ' || quote(loss) || ' ' "
             "|| quote(grad_norm) AS line FROM steps WHERE run_id = %lld ORDER BY step)",
             (long long)run);
    s->exact = raw_text(db, q);
    assert_non_null(s->exact);
    const char *at = s->exact;
    while (*at != '\0' && s->n < 64) {
        char loss[64], norm[64];
        int step = 0;
        assert_int_equal(sscanf(at, "%d %63s %63s", &step, loss, norm), 3);
        assert_int_equal(step, s->n);
        s->loss[s->n] = strcmp(loss, "NULL") == 0 ? NAN : strtod(loss, NULL);
        s->norm[s->n] = strcmp(norm, "NULL") == 0 ? NAN : strtod(norm, NULL);
        s->n++;
        const char *nl = strchr(at, '\n');
        at = nl != NULL ? nl + 1 : at + strlen(at);
    }
}

static double rel(double a, double b)
{
    if (isnan(a) && isnan(b))
        return 0.0;
    double d = fabs(a - b), m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return m > 0 ? d / m : d;
}

/* a and b agree step by step, from step first on: losses within TOL
 * relative, grad norms within norm_tol of the largest grad norm of the two
 * runs. The norms differ by the order of float32 gradient sums across ranks,
 * an absolute rounding of the size of the gradients: at steps where the
 * images' gradients cancel, the norm is a tenth of the largest and the same
 * rounding is ten times larger relative to it. */
static void assert_close_tol(const steps *a, const steps *b, int first, double norm_tol,
                             const char *what)
{
    assert_int_equal(a->n, b->n);
    double peak = 0.0, worst = 0.0;
    for (int i = first; i < a->n; i++) {
        if (isfinite(a->norm[i]) && fabs(a->norm[i]) > peak)
            peak = fabs(a->norm[i]);
        if (isfinite(b->norm[i]) && fabs(b->norm[i]) > peak)
            peak = fabs(b->norm[i]);
    }
    for (int i = first; i < a->n; i++) {
        double dl = rel(a->loss[i], b->loss[i]);
        double dn = isnan(a->norm[i]) && isnan(b->norm[i]) ? 0.0
                    : peak > 0                             ? fabs(a->norm[i] - b->norm[i]) / peak
                                                           : rel(a->norm[i], b->norm[i]);
        if (dl > worst)
            worst = dl;
        if (dn > worst)
            worst = dn;
        if (!(dl <= TOL) || !(dn <= norm_tol))
            fail_msg("%s: step %d: loss %.17g vs %.17g, grad_norm %.17g vs %.17g (largest %.17g)",
                     what, i, a->loss[i], b->loss[i], a->norm[i], b->norm[i], peak);
    }
    print_message("%s: %d steps, largest relative difference %.3g\n", what, a->n - first, worst);
}

static void assert_close(const steps *a, const steps *b, int first, const char *what)
{
    assert_close_tol(a, b, first, TOL, what);
}

/* ------------------------------------------------ one rank vs N ranks */

static steps reference[N_STRATEGIES];

static void test_one_rank(void **state)
{
    (void)state;
    char dir[256], db[320], args[64];
    snprintf(args, sizeof args, "--set schedule.steps=%d", STEPS);
    for (size_t k = 0; k < N_STRATEGIES; k++) {
        assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
        cli_result r;
        assert_int_equal(dp_run(dir, db, 0, strategies[k], args, NULL, &r), 0);
        if (r.exit_code != 0)
            fail_msg("%s: exit %d: %s", strategies[k], r.exit_code, r.err);
        cli_result_free(&r);
        read_steps(db, 1, &reference[k]);
        assert_int_equal(reference[k].n, STEPS);
        /* a one-rank run records no degree: its JSON is as it always was */
        assert_int_equal(raw_int(db, "SELECT instr(config_json, '\"parallel\"') FROM runs"), 0);
        remove_tree(dir);
    }
}

static void check_ranks(int ranks)
{
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320], args[64], what[64];
    snprintf(args, sizeof args, "--set schedule.steps=%d", STEPS);
    for (size_t k = 0; k < N_STRATEGIES; k++) {
        assert_non_null(reference[k].exact); /* test_one_rank ran first */
        assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
        char log[400], env[480];
        snprintf(log, sizeof log, "%s/open.log", dir);
        snprintf(env, sizeof env, "ORCH_STORE_OPEN_LOG='%s'", log);
        cli_result r;
        assert_int_equal(dp_run(dir, db, ranks, strategies[k], args, env, &r), 0);
        if (r.exit_code != 0)
            fail_msg("%s on %d ranks: exit %d: %s", strategies[k], ranks, r.exit_code, r.err);
        /* one summary line: rank 0's */
        const char *line = strstr(r.out, "run 1 finished: 20 steps");
        assert_non_null(line);
        assert_null(strstr(line + 1, "run 1 finished"));
        cli_result_free(&r);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 1);
        assert_int_equal(raw_int(db, "SELECT json_extract(config_json, '$.parallel.data') FROM "
                                     "runs"),
                         ranks);
        steps s;
        read_steps(db, 1, &s);
        snprintf(what, sizeof what, "%s, %d ranks vs 1", strategies[k], ranks);
        assert_close(&reference[k], &s, 0, what);
        /* only rank 0 opened the store: one process */
        char *opens = read_whole_file(log, NULL);
        assert_non_null(opens);
        int lines = 0;
        char first_pid[64] = "";
        for (char *l = strtok(opens, "\n"); l != NULL; l = strtok(NULL, "\n")) {
            char host[256], pid[64];
            assert_int_equal(sscanf(l, "%255s %63s", host, pid), 2);
            if (lines++ == 0)
                snprintf(first_pid, sizeof first_pid, "%s", pid);
            assert_string_equal(pid, first_pid);
        }
        assert_true(lines >= 1);
        free(opens);
        /* the same rank count again: bit for bit (surgery only: time) */
        if (k == 0) {
            char db2[400];
            snprintf(db2, sizeof db2, "%s/again.db", dir);
            assert_int_equal(dp_run(dir, db2, ranks, strategies[k], args, NULL, &r), 0);
            assert_int_equal(r.exit_code, 0);
            cli_result_free(&r);
            steps again;
            read_steps(db2, 1, &again);
            assert_string_equal(again.exact, s.exact);
            free(again.exact);
        }
        free(s.exact);
        remove_tree(dir);
    }
}

static void test_mpirun_np2(void **state)
{
    (void)state;
    check_ranks(2);
}

static void test_mpirun_np3_oversubscribed(void **state)
{
    (void)state;
    check_ranks(3);
}

/* ------------------------------------------- with gradient accumulation */

/* 2 ranks, 2 micro-batches of 4 images each: the update of one rank's
 * batch of 8. The losses agree within 1e-6; a grad norm within 2e-6: one
 * rank's micro-batches add into the gradient block inside BLIS's k-blocks
 * as one batch of 8 does (grad_accum alone stays within 1e-7 of it), while
 * here each rank's part is rounded on its own before the sum, and the
 * weight gradient of the layer under the pool is a sum with much
 * cancellation (measured: grad norms 1.3e-6 at worst, losses 4e-8, not
 * growing over the steps). */
static void test_accum_np2(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320], db1[400];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(db1, sizeof db1, "%s/one.db", dir);
    for (size_t k = 0; k < N_STRATEGIES; k++) {
        cli_result r;
        assert_int_equal(dp_run(dir, db1, 0, strategies[k],
                                "--set schedule.steps=12 --set schedule.batch_size=8", NULL, &r),
                         0);
        assert_int_equal(r.exit_code, 0);
        cli_result_free(&r);
        assert_int_equal(dp_run(dir, db, 2, strategies[k],
                                "--set schedule.steps=12 --set schedule.grad_accum=2", NULL, &r),
                         0);
        if (r.exit_code != 0)
            fail_msg("%s: exit %d: %s", strategies[k], r.exit_code, r.err);
        cli_result_free(&r);
        steps one, two;
        char what[96];
        read_steps(db1, (int64_t)k + 1, &one);
        read_steps(db, (int64_t)k + 1, &two);
        snprintf(what, sizeof what, "%s, 2 ranks x grad_accum 2 x 4 vs 1 rank x 8", strategies[k]);
        assert_close_tol(&one, &two, 0, 2e-6, what);
        free(one.exact);
        free(two.exact);
    }
    remove_tree(dir);
}

/* --------------------------------------------------- NaN on one rank */

static void test_nan_on_rank1_abort(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(dp_run(dir, db, 2, "surgery",
                            "--set schedule.steps=6 --set 'checks.inject={step=2, "
                            "phase=\"backward\", stage=\"head\", rank=1}'",
                            NULL, &r),
                     0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    /* both ranks stopped at step 2: the run ended, diverged */
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.out, "run 1 diverged: 3 steps"));
    assert_non_null(strstr(r.err, "orch: run 1 diverged at step 2 backward head grad_input"));
    cli_result_free(&r);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'diverged'"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM steps"), 3);
    /* recorded once, found on rank 1, with its provenance */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM nan_events WHERE stage = 'head' AND "
                                 "tensor = 'grad_input'"),
                     1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM nan_events WHERE rank IS NOT 1 OR host "
                                 "IS NULL"),
                     0);
    assert_int_equal(raw_int(db, "SELECT inputs_finite FROM nan_events ORDER BY id LIMIT 1"), 1);
    char *first = raw_text(db, "SELECT stage || ' ' || tensor || ' ' || step FROM nan_events "
                               "ORDER BY id LIMIT 1");
    assert_string_equal(first, "head grad_input 2");
    free(first);
    /* orch show names the rank */
    const char *show[] = {"show", "1", "--db", db, NULL};
    assert_int_equal(run_orch(show, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "  found on rank 1 (host "));
    cli_result_free(&r);
    remove_tree(dir);
}

/* skip_update: every rank skips step 2; the steps after it are those of a
 * one-rank run that skipped it (NaN in the whole batch at that step). */
static void test_nan_on_rank1_skip(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320], db1[400];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(db1, sizeof db1, "%s/one.db", dir);
    const char *common = "--set schedule.steps=8 --set checks.on_nan=skip_update ";
    char args[512];
    cli_result r;
    snprintf(args, sizeof args,
             "%s --set 'checks.inject={step=2, phase=\"forward\", stage=\"visual.blocks.0.attn\"}'",
             common);
    assert_int_equal(dp_run(dir, db1, 0, "surgery", args, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    snprintf(args, sizeof args,
             "%s --set 'checks.inject={step=2, phase=\"forward\", stage=\"visual.blocks.0.attn\", "
             "rank=1}'",
             common);
    assert_int_equal(dp_run(dir, db, 2, "surgery", args, NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "run 1 finished: 8 steps"));
    assert_non_null(strstr(r.out, "1 skipped steps"));
    cli_result_free(&r);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM metrics WHERE name = 'skipped_step' AND "
                                 "step = 2"),
                     1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM nan_events WHERE stage = "
                                 "'visual.blocks.0.attn' AND tensor = 'output'"),
                     1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM nan_events WHERE rank IS NOT 1"), 0);
    steps one, two;
    read_steps(db1, 1, &one);
    read_steps(db, 1, &two);
    assert_true(isnan(two.loss[2]));
    assert_close(&one, &two, 0, "skip_update, 2 ranks (NaN on rank 1) vs 1");
    free(one.exact);
    free(two.exact);
    remove_tree(dir);
}

/* ------------------------------------------------------------- resume */

static void test_resume_on_other_rank_count(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320], db_full[400];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(db_full, sizeof db_full, "%s/full.db", dir);
    const char *args = "--set schedule.steps=12 --set schedule.checkpoint_every=4";
    cli_result r;
    assert_int_equal(dp_run(dir, db_full, 2, "surgery", args, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    /* stopped after step 6 on every rank, as a SIGTERM would */
    assert_int_equal(dp_run(dir, db, 2, "surgery", args, "ORCH_TEST_STOP_AT=7", &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "run 1 interrupted after step 6"));
    cli_result_free(&r);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'"), 1);
    /* on 3 ranks */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env ORCH_THREADS=1 " SWEEP_MPI_ENV "OMPI_MCA_orte_tmpdir_base='%s/ompi' "
             "OMPI_MCA_btl_vader_backing_directory='%s/ompi' ORCH_STORE_OPEN_LOG='%s/open.log' "
             "timeout -s KILL 170 mpirun --timeout 150 -np 3 '%s' resume 1 --db '%s' --quiet",
             dir, dir, dir, orch_bin(), db);
    assert_int_equal(run_shell(cmd, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "run 1 finished: 12 steps"));
    cli_result_free(&r);
    /* the run keeps the configuration it was started with */
    assert_int_equal(raw_int(db, "SELECT json_extract(config_json, '$.parallel.data') FROM runs"),
                     2);
    steps full, resumed;
    read_steps(db_full, 1, &full);
    read_steps(db, 1, &resumed);
    assert_close(&full, &resumed, 0, "2 ranks, stopped at 7, resumed on 3 vs 2 ranks");
    /* the first 7 steps are the 2-rank run's own, bit for bit */
    assert_int_equal(
        strncmp(full.exact, resumed.exact, (size_t)(strstr(full.exact, "\n7 ") - full.exact)), 0);
    free(full.exact);
    free(resumed.exact);
    /* rank 0 alone read the store */
    char log[400];
    snprintf(log, sizeof log, "%s/open.log", dir);
    char *opens = read_whole_file(log, NULL);
    assert_non_null(opens);
    char host[256], pid[64], path[512], pid2[64];
    assert_int_equal(sscanf(opens, "%255s %63s %511s", host, pid, path), 3);
    for (char *l = strchr(opens, '\n'); l != NULL && l[1] != '\0'; l = strchr(l + 1, '\n')) {
        assert_int_equal(sscanf(l + 1, "%255s %63s", host, pid2), 2);
        assert_string_equal(pid2, pid);
    }
    free(opens);
    remove_tree(dir);
}

/* ------------------------------------------------------------ refusals */

static void check_refused(int ranks, const char *args, const char *says)
{
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    char cmd[4096];
    if (ranks == 0)
        snprintf(cmd, sizeof cmd, "env ORCH_THREADS=1 '%s' run pipelines/surgery.lua --db '%s' %s",
                 orch_bin(), db, args);
    else
        snprintf(
            cmd, sizeof cmd,
            "mkdir -p '%s/ompi' && env ORCH_THREADS=1 " SWEEP_MPI_ENV
            "OMPI_MCA_orte_tmpdir_base='%s/ompi' OMPI_MCA_btl_vader_backing_directory='%s/ompi' "
            "timeout -s KILL 170 mpirun --timeout 150 -np %d '%s' run pipelines/surgery.lua "
            "--db '%s' %s",
            dir, dir, dir, ranks, orch_bin(), db, args);
    assert_int_equal(run_shell(cmd, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    /* mpirun passes the ranks' exit code on (2), and adds its own banner */
    assert_int_equal(r.exit_code, 2);
    const char *line = strstr(r.err, "orch: ");
    assert_non_null(line);
    assert_null(strstr(line + 1, "orch: ")); /* once, not once per rank */
    assert_non_null(strstr(line, says));
    assert_int_equal(access(db, F_OK), -1);
    cli_result_free(&r);
    remove_tree(dir);
}

static void test_refused_without_launcher(void **state)
{
    (void)state;
    check_refused(0, "--set parallel.data=2",
                  "pipelines/surgery.lua: parallel.data is 2 but orch was not started by mpirun "
                  "or srun; run mpirun -np 2 orch run pipelines/surgery.lua (or srun -n 2)\n");
    check_refused(0, "--ranks 3", "--ranks is 3 but orch was not started by mpirun");
}

static void test_refused_under_mpirun(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    check_refused(3, "--set parallel.data=2",
                  "pipelines/surgery.lua: parallel.data is 2 but mpirun started 3 ranks; give "
                  "--ranks 3 or run mpirun -np 2\n");
    /* one run started N times by mistake is refused, not recorded N times */
    check_refused(2, "",
                  "pipelines/surgery.lua: parallel.data is 1 but mpirun started 2 ranks; one run "
                  "over 2 ranks needs parallel = { data = 2 } or --ranks 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rank),
        cmocka_unit_test(test_mpirun_np2),
        cmocka_unit_test(test_mpirun_np3_oversubscribed),
        cmocka_unit_test(test_accum_np2),
        cmocka_unit_test(test_nan_on_rank1_abort),
        cmocka_unit_test(test_nan_on_rank1_skip),
        cmocka_unit_test(test_resume_on_other_rank_count),
        cmocka_unit_test(test_refused_without_launcher),
        cmocka_unit_test(test_refused_under_mpirun),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    for (size_t k = 0; k < N_STRATEGIES; k++)
        free(reference[k].exact);
    return failed;
}
