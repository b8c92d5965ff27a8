/* test_cli_sweep_dp.c - a data-parallel run inside a sweep: `parallel = {
 * data = 2 }` makes the run take two of the sweep's ranks at once.
 *
 * tests/data/sweeps/dp_pair.lua is one run twice, on one rank and on two
 * (a grid over parallel.data). Under `mpirun -np 3` both finish, the
 * data-parallel one handed to a rank >= 1 (rank 0's worker thread cannot
 * call MPI), and its losses equal the one-rank run's within 1e-6 relative
 * and its grad norms within 1e-6 of the largest, step by step. A sweep whose data-parallel run
 * needs more ranks than it has besides rank 0 (alone, or under mpirun -np 2) is refused at start:
 * one line, exit 2, no store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <math.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"
#include "tests/testutil_sweep.h"

#define PAIR    "tests/data/sweeps/dp_pair.lua"
#define N_STEPS 6

/* The loss or grad_norm of run id (1: the one-rank run, queued first; 2:
 * the data-parallel one) at step. */
static double value_at(const char *db, const char *column, int run, int step)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT quote(%s) FROM steps WHERE run_id = %d AND step = %d", column,
             run, step);
    char *text = raw_text(db, sql);
    assert_non_null(text);
    double v = strtod(text, NULL);
    free(text);
    return v;
}

static void test_dp_run_in_sweep(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, 3, PAIR, NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "2 runs: 2 finished, 0 diverged, 0 failed, 0 skipped\n"));
    assert_non_null(strstr(r.err, "on 2 ranks (data-parallel)"));
    cli_result_free(&r);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'finished'"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM steps"), 2 * N_STEPS);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, step FROM steps)"),
                     2 * N_STEPS);
    /* run 2 is the data-parallel one, handed to its group's lowest rank */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE id = 2 AND config_json LIKE "
                                 "'%\"data\":2%'"),
                     1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweep_runs WHERE run_id = 2 AND rank >= 1"),
                     1);
    /* grad norms within 1e-6 of the largest: the ranks' float32 sums round
     * by the size of the gradients, which at a step where they cancel is
     * several times the norm (test_cli_dp.c) */
    double peak = 0.0;
    for (int s = 0; s < N_STEPS; s++)
        if (fabs(value_at(db, "grad_norm", 1, s)) > peak)
            peak = fabs(value_at(db, "grad_norm", 1, s));
    for (int s = 0; s < N_STEPS; s++) {
        const char *columns[] = {"loss", "grad_norm"};
        for (int c = 0; c < 2; c++) {
            double one = value_at(db, columns[c], 1, s), two = value_at(db, columns[c], 2, s);
            double scale = c == 1 && peak > 1e-30 ? peak : fabs(one) > 1e-30 ? fabs(one) : 1.0;
            if (!(fabs(two - one) <= 1e-6 * scale))
                fail_msg("step %d: %s %.9g on 2 ranks, %.9g on 1", s, columns[c], two, one);
        }
    }
    remove_tree(dir);
}

static void check_refused(int ranks, int workers)
{
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, ranks, PAIR, NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 2);
    char says[160];
    snprintf(says, sizeof says,
             "has parallel.data = 2, but the sweep has %d rank%s besides rank 0 to run it on "
             "(at least mpirun -np 3); nothing was recorded\n",
             workers, workers == 1 ? "" : "s");
    assert_non_null(strstr(r.err, says));
    if (ranks == 0) { /* one line, nothing else */
        assert_string_equal(r.out, "");
        assert_int_equal(strncmp(r.err, "orch: ", 6), 0);
        assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
    }
    cli_result_free(&r);
    assert_int_not_equal(access(db, F_OK), 0);
    remove_tree(dir);
}

static void test_too_few_ranks(void **state)
{
    (void)state;
    check_refused(0, 0);
    if (!sweep_have_mpirun())
        return;
    check_refused(2, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dp_run_in_sweep),
        cmocka_unit_test(test_too_few_ranks),
    };
    return cmocka_run_group_tests_name("cli data-parallel run in a sweep", tests, NULL, NULL);
}
