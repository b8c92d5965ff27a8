/* test_cli_sweep_faults.c - `orch sweep` when things go wrong, through the
 * orch binary: a worker SIGKILLed mid-run (the test hook
 * ORCH_TEST_KILL_AT, alone and under mpirun, where Open MPI then aborts
 * the job) leaves a consistent store, and the same command again finishes
 * only what is missing (counted in SQL; the resumed run's losses are those
 * of an uninterrupted sweep); a run that kills its worker twice is
 * quarantined `failed`; a run that fails as it loads is `failed` with its
 * message, its dependent `skipped`, the rest finished; SIGTERM (alone)
 * and SIGUSR1 (to mpirun) end the running runs `interrupted` and close the
 * sweep `interrupted`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"
#include "tests/testutil_sweep.h"

#define MIX "tests/data/sweeps/exec_mix.lua"
/* surgery-s2 records steps 0..7 and writes checkpoints after steps 2 and 5 */
#define KILL "ORCH_TEST_KILL_AT=mix/surgery-s2:4"

/* What a store that completed exec_mix.lua holds, counted in SQL: every
 * run once, every run's steps 0..7 once each, a sound file. */
static void check_complete(const char *db)
{
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 6);
    assert_int_equal(raw_int(db, "SELECT count(DISTINCT name) FROM runs"), 6);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweep_runs"), 6);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'finished'"), 6);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs r WHERE (SELECT count(*) FROM steps "
                                 "WHERE run_id = r.id) != 8 OR (SELECT count(DISTINCT step) FROM "
                                 "steps WHERE run_id = r.id) != 8 OR (SELECT min(step) FROM steps "
                                 "WHERE run_id = r.id) != 0 OR (SELECT max(step) FROM steps WHERE "
                                 "run_id = r.id) != 7"),
                     0);
    char *ok = raw_text(db, "PRAGMA integrity_check");
    assert_non_null(ok);
    assert_string_equal(ok, "ok");
    free(ok);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweeps WHERE status = 'finished'"), 1);
}

/* The losses of exec_mix.lua swept without a fault, in a store of its own. */
static char *reference_steps(void)
{
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, 0, MIX, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    char *steps = sweep_steps_text(db);
    remove_tree(dir);
    return steps;
}

static void check_killed_then_rerun(int ranks)
{
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, ranks, MIX, KILL, &r), 0);
    print_message("killed: exit %d\nstdout: %sstderr: %s", r.exit_code, r.out, r.err);
    /* alone: the process itself; under mpirun: the job, aborted */
    if (ranks == 0)
        assert_int_equal(r.exit_code, 128 + 9);
    else
        assert_int_not_equal(r.exit_code, 0);
    cli_result_free(&r);
    /* the killed run is left running (its process is gone; or still queued
     * under mpirun when the job was aborted before rank 0 read its start),
     * handed out once, and the store is sound */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE name = 'mix/surgery-s2' AND "
                                 "status IN ('running', 'queued')"),
                     1);
    if (ranks == 0)
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE name = 'mix/surgery-s2' "
                                     "AND status = 'running'"),
                         1);
    assert_int_equal(raw_int(db, "SELECT attempts FROM sweep_runs WHERE point = 'surgery-s2'"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'finished'") < 6, 1);
    char *ok = raw_text(db, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);

    /* mpirun returns as it aborts the job; the ranks it stops may take a
     * moment to go, and while the coordinator lives the sweep is its own:
     * wait for its pid to be gone (bounded), then run again */
    int64_t pid = raw_int(db, "SELECT coordinator_pid FROM sweeps");
    for (int i = 0; i < 6000 && pid > 0 && kill((pid_t)pid, 0) == 0; i++)
        usleep(10000);
    assert_int_equal(sweep_run(dir, db, ranks, MIX, NULL, &r), 0);
    print_message("rerun: stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "sweep mix (id 1): 6 runs: 6 finished, 0 diverged, 0 failed, 0 "
                                  "skipped\n"));
    /* only what was missing ran again */
    assert_non_null(strstr(r.err, "mix/surgery-s2 (run "));
    cli_result_free(&r);
    check_complete(db);
    /* handed out twice: once to the worker that died */
    assert_int_equal(raw_int(db, "SELECT attempts FROM sweep_runs WHERE point = 'surgery-s2'"), 2);
    /* it went on from its checkpoint (after step 2 or 5), and the losses
     * are bit for bit those of a sweep that was never killed */
    char *steps = sweep_steps_text(db), *ref = reference_steps();
    assert_string_equal(steps, ref);
    free(steps);
    free(ref);
    remove_tree(dir);
}

static void test_killed_worker_alone(void **state)
{
    (void)state;
    check_killed_then_rerun(0);
}

static void test_killed_worker_under_mpirun(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    check_killed_then_rerun(2);
}

static void test_killed_twice_is_quarantined(void **state)
{
    (void)state;
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sweep_run(dir, db, 0, MIX, KILL, &r), 0);
        assert_int_equal(r.exit_code, 128 + 9);
        cli_result_free(&r);
    }
    /* the hook would kill it a third time: it is not handed out again */
    assert_int_equal(sweep_run(dir, db, 0, MIX, KILL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "sweep mix (id 1): 6 runs: 5 finished, 0 diverged, 1 failed, 0 "
                               "skipped\n");
    assert_non_null(strstr(r.err, "mix/surgery-s2 (run 2): failed: killed its worker 2 times; "
                                  "quarantined\n"));
    cli_result_free(&r);
    char *error = raw_text(db, "SELECT status || ': ' || error FROM runs WHERE name = "
                               "'mix/surgery-s2'");
    assert_string_equal(error, "failed: killed its worker 2 times; quarantined");
    free(error);
    assert_int_equal(raw_int(db, "SELECT attempts FROM sweep_runs WHERE point = 'surgery-s2'"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'finished'"), 5);
    /* every run has ended: the sweep is closed finished */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweeps WHERE status = 'finished'"), 1);
    remove_tree(dir);
}

static void test_failing_run_and_its_dependent(void **state)
{
    (void)state;
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    cli_result r;
    assert_int_equal(sweep_run(dir, db, 0, "tests/data/sweeps/exec_fail.lua", NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "sweep fail (id 1): 3 runs: 1 finished, 0 diverged, 1 failed, 1 "
                               "skipped\n");
    assert_non_null(
        strstr(r.err, "orch: sweep fail (id 1) ended with 1 failed and 1 skipped runs"));
    cli_result_free(&r);
    char *broken = raw_text(db, "SELECT status || ': ' || error FROM runs WHERE name = "
                                "'fail/broken'");
    assert_non_null(broken);
    assert_non_null(strstr(broken, "failed: "));
    assert_non_null(strstr(broken, "exec_not_safetensors.safetensors: "));
    assert_non_null(strstr(broken, "not a safetensors file"));
    free(broken);
    char *after = raw_text(db, "SELECT status || ': ' || error FROM runs WHERE name = "
                               "'fail/after-broken'");
    assert_string_equal(after, "skipped: its dependency fail/broken failed");
    free(after);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM steps s JOIN runs r ON r.id = s.run_id "
                                 "WHERE r.name = 'fail/fine' AND r.status = 'finished'"),
                     8);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM steps s JOIN runs r ON r.id = s.run_id "
                                 "WHERE r.name != 'fail/fine'"),
                     0);
    /* again: failed and skipped runs stay as they are, nothing runs */
    assert_int_equal(sweep_run(dir, db, 0, "tests/data/sweeps/exec_fail.lua", NULL, &r), 0);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "sweep fail (id 1): 3 runs: 1 finished, 0 diverged, 1 failed, 1 "
                               "skipped\n");
    assert_null(strstr(r.err, "(run "));
    cli_result_free(&r);
    remove_tree(dir);
}

/* SIGTERM (a job's time limit) once a run is running: the run ends after
 * its step, `interrupted`, the sweep is closed `interrupted`, exit 1; the
 * steps recorded are 0..last, once each. Three times over: the run stopped
 * each time resumes each time, and is never quarantined (only a worker's
 * death counts). */
static void test_sigterm_interrupts(void **state)
{
    (void)state;
    char dir[256], db[320], cmd[4096];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    /* long runs, so the signal finds one running; the wait is for a
     * running run in the store (bounded), never a fixed time */
    snprintf(cmd, sizeof cmd,
             "ORCH_THREADS=1 '%s' --db '%s' sweep " MIX " --set schedule.steps=100000 "
             "--set schedule.checkpoint_every=0 & pid=$!; i=0; "
             "while [ $i -lt 2400 ]; do "
             "n=$('%s' --db '%s' query --csv \"SELECT count(*) FROM runs WHERE status = "
             "'running'\" 2>/dev/null | tail -n 1); "
             "[ \"${n:-0}\" -gt 0 ] 2>/dev/null && break; sleep 0.05; i=$((i+1)); done; "
             "kill -TERM $pid; wait $pid; echo \"exit $?\"",
             orch_bin(), db, orch_bin(), db);
    for (int attempt = 1; attempt <= 3; attempt++) {
        cli_result r;
        assert_int_equal(run_shell(cmd, &r), 0);
        print_message("stdout: %sstderr: %s", r.out, r.err);
        assert_non_null(strstr(r.out, "exit 1\n"));
        assert_non_null(
            strstr(r.err, "is not complete: 6 of 6 runs left; run the same command again"));
        assert_null(strstr(r.err, "quarantined"));
        cli_result_free(&r);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM sweeps WHERE status = 'interrupted'"),
                         1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted' AND "
                                     "error = 'interrupted by SIGTERM'"),
                         1);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'queued'"), 5);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status IN ('running', "
                                     "'failed')"),
                         0);
        /* the same run each time (the first handed out), once more each time */
        assert_int_equal(raw_int(db, "SELECT max(attempts) FROM sweep_runs"), attempt);
        assert_int_equal(raw_int(db, "SELECT count(*) - count(DISTINCT step) + min(step) + "
                                     "(max(step) + 1 - count(*)) FROM steps"),
                         0);
    }
    remove_tree(dir);
}

/* The same sweep started again while its coordinator lives is refused
 * (exit 2, one line naming the coordinator), and changes nothing. */
static void test_second_coordinator_refused(void **state)
{
    (void)state;
    char dir[256], db[320], cmd[4096];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(cmd, sizeof cmd,
             "ORCH_THREADS=1 '%s' --db '%s' sweep " MIX " --set schedule.steps=100000 "
             "--set schedule.checkpoint_every=0 2>/dev/null >/dev/null & pid=$!; i=0; "
             "while [ $i -lt 2400 ]; do "
             "n=$('%s' --db '%s' query --csv \"SELECT count(*) FROM runs WHERE status = "
             "'running'\" 2>/dev/null | tail -n 1); "
             "[ \"${n:-0}\" -gt 0 ] 2>/dev/null && break; sleep 0.05; i=$((i+1)); done; "
             "ORCH_THREADS=1 '%s' --db '%s' sweep " MIX " --set schedule.steps=100000 "
             "--set schedule.checkpoint_every=0; echo \"second $? of $pid\"; "
             "kill -TERM $pid; wait $pid; echo \"first $?\"",
             orch_bin(), db, orch_bin(), db, orch_bin(), db);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_non_null(strstr(r.out, "second 2 of "));
    assert_non_null(strstr(r.out, "first 1\n"));
    assert_non_null(strstr(r.err, "orch: sweep mix is being run by pid "));
    assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1); /* one line */
    cli_result_free(&r);
    /* the first one's runs, once each; the first one closed it */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 6);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweeps WHERE status = 'interrupted'"), 1);
    remove_tree(dir);
}

/* SIGUSR1 to mpirun, which passes it on to every rank (a SIGTERM to
 * mpirun kills them): each rank's run ends after its step, `interrupted`,
 * and rank 0 closes the sweep `interrupted`; nothing is left running. */
static void test_sigusr1_under_mpirun(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    char dir[256], db[320], cmd[4096];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/ompi' && export ORCH_THREADS=1 " SWEEP_MPI_ENV
             "OMPI_MCA_orte_tmpdir_base='%s/ompi' OMPI_MCA_btl_vader_backing_directory='%s/ompi' "
             "&& timeout -s KILL 170 mpirun --timeout 150 -np 2 '%s' --db '%s' sweep " MIX
             " --set schedule.steps=100000 --set schedule.checkpoint_every=0 & pid=$!; i=0; "
             "while [ $i -lt 2400 ]; do "
             "n=$('%s' --db '%s' query --csv \"SELECT count(*) FROM runs WHERE status = "
             "'running'\" 2>/dev/null | tail -n 1); "
             "[ \"${n:-0}\" -ge 2 ] 2>/dev/null && break; sleep 0.05; i=$((i+1)); done; "
             "kill -USR1 $(pgrep -P $pid mpirun); wait $pid; echo \"exit $?\"",
             dir, dir, dir, orch_bin(), db, orch_bin(), db);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_non_null(strstr(r.out, "exit 1\n"));
    assert_non_null(strstr(r.err, "is not complete: 6 of 6 runs left"));
    cli_result_free(&r);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sweeps WHERE status = 'interrupted'"), 1);
    /* both ranks were running one: both ended it */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted' AND "
                                 "error = 'interrupted by SIGUSR1'"),
                     2);
    assert_int_equal(raw_int(db, "SELECT count(DISTINCT w.rank) FROM runs r JOIN sweep_runs w ON "
                                 "w.run_id = r.id WHERE r.status = 'interrupted'"),
                     2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_worker_alone),
        cmocka_unit_test(test_killed_worker_under_mpirun),
        cmocka_unit_test(test_killed_twice_is_quarantined),
        cmocka_unit_test(test_failing_run_and_its_dependent),
        cmocka_unit_test(test_sigterm_interrupts),
        cmocka_unit_test(test_second_coordinator_refused),
        cmocka_unit_test(test_sigusr1_under_mpirun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
