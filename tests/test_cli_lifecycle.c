/* test_cli_lifecycle.c - runs a user can trust, through the orch binary.
 *
 * SIGKILL mid-run: the store stays intact (PRAGMA integrity_check), the
 * next command marks the run interrupted, `orch resume` finishes it, and its
 * losses equal an uninterrupted run's bit for bit (one thread).
 * SIGINT mid-run: the run ends `interrupted` with every completed step
 * recorded and a checkpoint at the last one. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char dir[256], db[320], pipeline[320];

static const char *pipeline_text =
    "return {\n"
    "  name = \"lifecycle\",\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"synthetic\", samples = 16, classes = 4, image_size = {28, 28} },\n"
    "  strategy = lora { rank = 4, alpha = 8, dropout = 0.1 },\n"
    "  head = { kind = \"classifier\", classes = 4 },\n"
    "  optimizer = { kind = \"adamw\", lr = 1e-2, grad_clip = 1.0 },\n"
    "  schedule = { steps = 400, batch_size = 2, warmup_steps = 5, checkpoint_every = 10 },\n"
    "  checks = { nan = true, frozen = true, stats_every = 25 },\n"
    "  seed = 99,\n"
    "}\n";

static int setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    snprintf(pipeline, sizeof pipeline, "%s/lifecycle.lua", dir);
    return write_text_file(pipeline, pipeline_text);
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Runs orch with args and returns its stdout; asserts the exit code. */
static char *orch_ok(const char *const argv[], int want_exit)
{
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    if (r.exit_code != want_exit)
        fail_msg("%s %s: exit %d (want %d): %s", argv[0], argv[1] ? argv[1] : "", r.exit_code,
                 want_exit, r.err);
    free(r.err);
    return r.out;
}

static char *query(const char *sql)
{
    const char *argv[] = {"query", "--db", db, "--csv", sql, NULL};
    return orch_ok(argv, 0);
}

/* The first value of the second CSV line (the first row's first column). */
static long long query_int(const char *sql)
{
    char *out = query(sql);
    const char *row = strchr(out, '\n');
    long long v = row ? atoll(row + 1) : -1;
    free(out);
    return v;
}

/* Starts `orch --threads 1 run --db DB PIPELINE --quiet` in the background. */
static pid_t start_run(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(orch_bin(), orch_bin(), "--threads", "1", "run", "--db", db, pipeline, "--quiet",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Run 1's recorded steps, or -1 while the store cannot be read yet (no file,
 * or a query refused): the poll only waits for the run to make progress. */
static long long steps_so_far(void)
{
    const char *argv[] = {
        "query", "--db", db, "--csv", "SELECT count(*) FROM steps WHERE run_id = 1", NULL};
    cli_result r;
    if (access(db, F_OK) != 0 || run_orch(argv, NULL, &r) != 0)
        return -1;
    const char *row = r.exit_code == 0 && r.out != NULL ? strchr(r.out, '\n') : NULL;
    long long v = row != NULL ? atoll(row + 1) : -1;
    cli_result_free(&r);
    return v;
}

/* Waits until run 1 has at least n steps recorded (20 s at most). */
static void wait_for_steps(long long n)
{
    for (int i = 0; i < 2000; i++) {
        if (steps_so_far() >= n)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the run did not record %lld steps in time", n);
}

static void fresh_store(void)
{
    snprintf(db, sizeof db, "%s/orch-%ld.db", dir, (long)time(NULL) ^ (long)rand());
}

static void test_sigkill_then_resume_is_bit_for_bit(void **state)
{
    (void)state;
    fresh_store();
    pid_t pid = start_run();
    wait_for_steps(40);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));

    char *out = query("PRAGMA integrity_check");
    assert_non_null(strstr(out, "ok"));
    free(out);
    /* the next command that opens the store marks it interrupted */
    const char *runs[] = {"runs", "--db", db, "--csv", NULL};
    out = orch_ok(runs, 0);
    assert_non_null(strstr(out, "interrupted"));
    free(out);
    long long killed_at = query_int("SELECT max(step) FROM steps WHERE run_id = 1");
    assert_true(killed_at >= 39 && killed_at < 399);

    const char *resume[] = {"--threads", "1", "resume", "--db", db, "1", NULL};
    free(orch_ok(resume, 0));
    const char *again[] = {"--threads", "1", "run", "--db", db, pipeline, "--quiet", NULL};
    free(orch_ok(again, 0));

    assert_int_equal(query_int("SELECT count(*) FROM runs WHERE status = 'finished'"), 2);
    assert_int_equal(query_int("SELECT count(*) FROM steps WHERE run_id = 1"), 400);
    /* bit for bit: every loss and grad_norm of the resumed run equals the
     * uninterrupted run's (= on REAL compares the doubles exactly) */
    assert_int_equal(query_int("SELECT sum(a.loss = b.loss AND a.grad_norm = b.grad_norm) "
                               "FROM steps a JOIN steps b ON a.step = b.step "
                               "WHERE a.run_id = 1 AND b.run_id = 2"),
                     400);
    /* and the same config hash */
    assert_int_equal(query_int("SELECT count(DISTINCT config_hash) FROM runs"), 1);
    /* per-stage statistics were recorded at the stats steps */
    assert_true(query_int("SELECT count(DISTINCT step) FROM stage_stats WHERE run_id = 1") >= 6);
}

static void test_sigint_records_every_completed_step(void **state)
{
    (void)state;
    fresh_store();
    pid_t pid = start_run();
    wait_for_steps(25);
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(query_int("SELECT count(*) FROM runs WHERE status = 'interrupted'"), 1);
    /* and says why (fault 13) */
    assert_int_equal(query_int("SELECT count(*) FROM runs WHERE error = 'interrupted by SIGINT'"),
                     1);
    long long last = query_int("SELECT max(step) FROM steps WHERE run_id = 1");
    long long count = query_int("SELECT count(*) FROM steps WHERE run_id = 1");
    assert_true(last >= 24 && last < 399);
    assert_int_equal(count, last + 1); /* steps 0..last, none missing */
    /* the final checkpoint holds exactly the last completed step */
    assert_int_equal(query_int("SELECT max(step) FROM artifacts WHERE run_id = 1"), last);
}

int main(void)
{
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_then_resume_is_bit_for_bit),
        cmocka_unit_test(test_sigint_records_every_completed_step),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
