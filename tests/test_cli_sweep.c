/* test_cli_sweep.c - `orch sweep` through the orch binary: the same sweep
 * alone, under `mpirun -np 2` and under `mpirun -np 3 --oversubscribe`
 * gives the same finished runs with bit-identical losses (threads fixed at
 * 1); the feature stage fills the cache so a detach run hits on every
 * batch and its losses are those of a run that computed its tower itself;
 * output_of starts a run from its dependency's final checkpoint; hostile
 * declarations are refused with one line, exit 2 and no store; ranks that
 * expand different sweeps are refused before anything is recorded. */
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

#define MIX "tests/data/sweeps/exec_mix.lua"

/* The statuses and losses of exec_mix.lua run alone, the reference. */
static char *ref_status, *ref_steps;

static void check_mix_store(const char *db)
{
    /* six runs, each once, each with its eight steps once */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 6);
    assert_int_equal(raw_int(db, "SELECT count(DISTINCT name) FROM runs"), 6);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM steps"), 48);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, step FROM steps)"),
                     48);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'finished'"), 6);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweeps WHERE status = 'finished'"), 1);
}

static void test_alone(void **state)
{
    (void)state;
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, 0, MIX, NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "sweep mix (id 1): 6 runs: 6 finished, 0 diverged, 0 failed, 0 "
                               "skipped\n");
    /* what is to do, then one line per run and per feature stage as it ends */
    assert_int_equal(strncmp(r.err, "sweep mix (id 1): 6 runs, 6 to run, on 1 rank\n", 46), 0);
    assert_non_null(strstr(r.err, "] mix/warm (run "));
    assert_non_null(strstr(r.err, "): finished, loss "));
    assert_non_null(strstr(r.err, "] features/"));
    cli_result_free(&r);
    check_mix_store(db);
    ref_status = sweep_status_text(db);
    ref_steps = sweep_steps_text(db);
    assert_non_null(ref_status);
    assert_true(strlen(ref_steps) > 0);

    /* the feature stages ran before the detach runs: every batch hit */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                                 "WHERE r.strategy = 'detach' AND m.name = 'feature_cache/hits'"),
                     16);
    assert_int_equal(raw_int(db, "SELECT sum(value) FROM metrics m JOIN runs r ON r.id = m.run_id "
                                 "WHERE r.strategy = 'detach' AND m.name = 'feature_cache/misses'"),
                     0);

    /* output_of: warm started from detach-s1's final checkpoint, so its
     * first loss is not cold's (the same run from a fresh head) */
    double warm = raw_real(db, "SELECT loss FROM steps s JOIN runs r ON r.id = s.run_id WHERE "
                               "r.name = 'mix/warm' AND s.step = 0");
    double cold = raw_real(db, "SELECT loss FROM steps s JOIN runs r ON r.id = s.run_id WHERE "
                               "r.name = 'mix/cold' AND s.step = 0");
    assert_true(warm != cold);
    /* the run keeps the name of its dependency in its config, not a path */
    char *cfg = raw_text(db, "SELECT config_json FROM runs WHERE name = 'mix/warm'");
    assert_non_null(cfg);
    assert_non_null(strstr(cfg, "output_of:mix/detach-s1"));
    free(cfg);

    /* the same command again: everything is there, nothing runs */
    assert_int_equal(sweep_run(dir, db, 0, MIX, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "sweep mix (id 1): 6 runs: 6 finished, 0 diverged, 0 failed, 0 "
                               "skipped\n");
    assert_string_equal(r.err, "sweep mix (id 1): 6 runs, 0 to run, on 1 rank\n");
    cli_result_free(&r);
    char *again = sweep_steps_text(db);
    assert_string_equal(again, ref_steps);
    free(again);
    remove_tree(dir);
}

/* The detach run of the sweep read every tower output from the feature
 * stage's cache; a plain `orch run` of the same configuration into an
 * empty store computes them: the losses are bit for bit the same. */
static void test_feature_stage_bit_identical(void **state)
{
    (void)state;
    char dir[256], db[320], sweep_db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(sweep_db, sizeof sweep_db, "%s/sweep.db", dir);
    cli_result r;
    assert_int_equal(sweep_run(dir, sweep_db, 0, MIX, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    const char *env[] = {"ORCH_THREADS=1", NULL};
    const char *argv[] = {"run", "tests/data/sweeps/exec_detach_s1.lua", "--db", db, "--quiet",
                          NULL};
    assert_int_equal(run_orch(argv, env, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    char *a = raw_text(sweep_db, "SELECT config_hash FROM runs WHERE name = 'mix/detach-s1'");
    char *b = raw_text(db, "SELECT config_hash FROM runs WHERE id = 1");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* the plain run computed its tower: misses; the sweep's run: none */
    assert_true(raw_int(db, "SELECT sum(value) FROM metrics WHERE name = 'feature_cache/misses'") >
                0);
    const char *losses = "SELECT group_concat(quote(loss), ' ') FROM (SELECT loss FROM "
                         "steps s JOIN runs r ON r.id = s.run_id WHERE r.%s ORDER BY step)";
    char q1[512], q2[512];
    snprintf(q1, sizeof q1, losses, "name = 'mix/detach-s1'");
    snprintf(q2, sizeof q2, losses, "id = 1");
    a = raw_text(sweep_db, q1);
    b = raw_text(db, q2);
    assert_non_null(a);
    assert_non_null(b);
    print_message("sweep: %s\nrun:   %s\n", a, b);
    assert_string_equal(a, b);
    free(a);
    free(b);
    remove_tree(dir);
}

static void check_same_as_alone(int ranks)
{
    if (!sweep_have_mpirun())
        skip();
    assert_non_null(ref_steps); /* test_alone ran first */
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, ranks, MIX, NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "sweep mix (id 1): 6 runs: 6 finished, 0 diverged, 0 failed, 0 "
                                  "skipped\n"));
    cli_result_free(&r);
    check_mix_store(db);
    char *status = sweep_status_text(db), *steps = sweep_steps_text(db);
    assert_string_equal(status, ref_status);
    assert_string_equal(steps, ref_steps);
    free(status);
    free(steps);
    /* the runs were handed to ranks that exist, and recorded where */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweep_runs WHERE rank IS NULL OR rank < 0 "
                                 "OR attempts != 1"),
                     0);
    char q[128];
    snprintf(q, sizeof q, "SELECT count(*) FROM sweep_runs WHERE rank >= %d", ranks);
    assert_int_equal(raw_int(db, q), 0);
    /* `orch runs` says where each run ran */
    const char *runs[] = {"runs", "--db", db, NULL};
    assert_int_equal(run_orch(runs, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "  created_at                host  rank\n"));
    cli_result_free(&r);
    remove_tree(dir);
}

static void test_mpirun_np2(void **state)
{
    (void)state;
    check_same_as_alone(2);
}

static void test_mpirun_np3_oversubscribed(void **state)
{
    (void)state;
    check_same_as_alone(3);
}

/* --------------------------------------------------------- bad input */

static void check_refused(int ranks, const char *file, const char *says)
{
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, ranks, file, NULL, &r), 0);
    print_message("%s: stdout: %sstderr: %s", file, r.out, r.err);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, says));
    if (ranks == 0) {
        /* one line, nothing else */
        assert_string_equal(r.out, "");
        assert_int_equal(strncmp(r.err, "orch: ", 6), 0);
        assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
    }
    cli_result_free(&r);
    /* nothing recorded: no store, no run folders */
    char path[400];
    assert_int_not_equal(access(db, F_OK), 0);
    snprintf(path, sizeof path, "%s.runs", db);
    assert_int_not_equal(access(path, F_OK), 0);
    remove_tree(dir);
}

static void test_hostile_declarations(void **state)
{
    (void)state;
    check_refused(0, "tests/data/sweeps/exec_cycle.lua",
                  "exec_cycle.lua:6: sweep cycle: the runs cycle/a -> cycle/b -> cycle/a wait for "
                  "each other");
    check_refused(0, "tests/data/sweeps/exec_unknown.lua", "has no run 'nowhere'");
    check_refused(0, "tests/data/sweeps/exec_huge.lua",
                  "the sweep has 1000000000 runs; at most 4096");
    check_refused(0, "tests/data/sweeps/exec_bad_dist.lua", "log_uniform(lo, hi): lo must be > 0");
    check_refused(0, "pipelines/detach.lua", "returns a pipeline, not a sweep");
    check_refused(0, "tests/data/sweeps/no_such_sweep.lua", "no_such_sweep.lua");
}

static void test_hostile_under_mpirun(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    check_refused(2, "tests/data/sweeps/exec_cycle.lua", "wait for each other");
}

/* Ranks that see different files expand different sweeps: rank 0 refuses
 * before it opens the store. */
static void test_ranks_disagree(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320], cmd[4096], path[400];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/d%d", dir, i);
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
        assert_int_equal(system(cmd), 0);
        snprintf(path, sizeof path, "%s/d%d/exec_mod.lua", dir, i);
        snprintf(cmd, sizeof cmd,
                 "return { name = \"m\", model = { preset = \"tiny\" }, data = { source = "
                 "\"synthetic\", samples = 8, classes = 4, image_size = { 16, 16 } }, strategy = "
                 "full {}, head = { kind = \"classifier\", classes = 4 }, optimizer = { kind = "
                 "\"adamw\" }, "
                 "schedule = { steps = "
                 "%d, batch_size = 2 } }\n",
                 i + 1);
        assert_int_equal(write_text_file(path, cmd), 0);
    }
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/ompi' && env ORCH_THREADS=1 " SWEEP_MPI_ENV
             "OMPI_MCA_orte_tmpdir_base='%s/ompi' OMPI_MCA_btl_vader_backing_directory='%s/ompi' "
             "timeout -s KILL 170 mpirun --timeout 150 "
             "-np 1 env ORCH_PIPELINE_PATH='%s/d1' '%s' --db '%s' sweep "
             "tests/data/sweeps/exec_mismatch.lua : "
             "-np 1 env ORCH_PIPELINE_PATH='%s/d2' '%s' --db '%s' sweep "
             "tests/data/sweeps/exec_mismatch.lua",
             dir, dir, dir, dir, orch_bin(), db, dir, orch_bin(), db);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "orch: rank 1 on "));
    assert_non_null(strstr(r.err, "nothing was recorded"));
    cli_result_free(&r);
    assert_int_not_equal(access(db, F_OK), 0);
    remove_tree(dir);
}

static void test_help(void **state)
{
    (void)state;
    const char *argv[] = {"sweep", "--help", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: orch sweep FILE.lua"));
    assert_non_null(strstr(r.out, "mpirun -np N orch sweep FILE.lua"));
    cli_result_free(&r);
    const char *none[] = {"sweep", NULL};
    assert_int_equal(run_orch(none, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_string_equal(r.err, "orch: sweep: missing sweep file (usage: orch sweep FILE.lua)\n");
    cli_result_free(&r);
}

static int teardown(void **state)
{
    (void)state;
    free(ref_status);
    free(ref_steps);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alone),
        cmocka_unit_test(test_feature_stage_bit_identical),
        cmocka_unit_test(test_mpirun_np2),
        cmocka_unit_test(test_mpirun_np3_oversubscribed),
        cmocka_unit_test(test_hostile_declarations),
        cmocka_unit_test(test_hostile_under_mpirun),
        cmocka_unit_test(test_ranks_disagree),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
