/* test_cli_checkpoint_files.c - a checkpoint's two files through the orch
 * binary.
 *
 * A run with checkpoint_every writes checkpoint-N.safetensors and
 * checkpoint-N.optimizer.safetensors for each N, the store records the
 * first. A run stopped at a step whose newest optimizer state was changed
 * resumes from the checkpoint before (saying which file is wrong) and ends
 * with the losses of an uninterrupted run, bit for bit. A run merged from
 * another store keeps its checkpoints there; `orch rm` of it removes both
 * files of each. The weights file alone serves export-adapter and predict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char dir[256], db[320], other[320];

static int setup(void **state)
{
    (void)state;
    if (make_temp_store(dir, sizeof dir, db, sizeof db) != 0)
        return -1;
    snprintf(other, sizeof other, "%s/other.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

static cli_result orch(const char *const argv[], const char *stop_at)
{
    const char *env[] = {"ORCH_THREADS=1", stop_at, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    return r;
}

static void expect(const char *const argv[], const char *stop_at, int want_exit)
{
    cli_result r = orch(argv, stop_at);
    if (r.exit_code != want_exit)
        fail_msg("orch %s: exit %d (want %d): %s", argv[0], r.exit_code, want_exit, r.err);
    cli_result_free(&r);
}

static void run_surgery(const char *store, const char *stop_at, int want_exit)
{
    const char *argv[] = {"run",
                          "pipelines/surgery.lua",
                          "--db",
                          store,
                          "--quiet",
                          "--set",
                          "schedule.steps=8",
                          "--set",
                          "schedule.checkpoint_every=2",
                          NULL};
    expect(argv, stop_at, want_exit);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static char *query(const char *sql)
{
    const char *argv[] = {"query", "--db", db, "--csv", sql, NULL};
    cli_result r = orch(argv, NULL);
    assert_int_equal(r.exit_code, 0);
    free(r.err);
    return r.out;
}

static void test_resume_over_a_changed_state_file(void **state)
{
    (void)state;
    run_surgery(db, NULL, 0);                  /* run 1: uninterrupted */
    run_surgery(db, "ORCH_TEST_STOP_AT=6", 1); /* run 2: stopped after step 5 */
    char path[512];
    for (int step = 1; step <= 5; step += 2) {
        snprintf(path, sizeof path, "%s/orch.db.runs/2/checkpoint-%d.safetensors", dir, step);
        assert_true(exists(path));
        snprintf(path, sizeof path, "%s/orch.db.runs/2/checkpoint-%d.optimizer.safetensors", dir,
                 step);
        assert_true(exists(path));
    }
    char *rows = query("SELECT count(*) FROM artifacts WHERE run_id = 2 AND path LIKE "
                       "'%optimizer%'");
    assert_non_null(strstr(rows, "\n0"));
    free(rows);

    /* the newest optimizer state changed: one byte in its data */
    snprintf(path, sizeof path, "%s/orch.db.runs/2/checkpoint-5.optimizer.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -4, SEEK_END);
    fputc(0x7f, f);
    fclose(f);
    const char *argv[] = {"resume", "2", "--db", db, "--quiet", NULL};
    cli_result r = orch(argv, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "checkpoint at step 5 is unusable: "));
    assert_non_null(
        strstr(r.err, "checkpoint-5.optimizer.safetensors: does not match its recorded sha256"));
    assert_non_null(strstr(r.err, "resuming from the checkpoint at step 3"));
    cli_result_free(&r);

    char *one = query("SELECT step, loss, grad_norm FROM steps WHERE run_id = 1 ORDER BY step");
    char *two = query("SELECT step, loss, grad_norm FROM steps WHERE run_id = 2 ORDER BY step");
    assert_string_equal(one, two);
    assert_non_null(strstr(one, "\n7,"));
    free(one);
    free(two);
}

static void test_rm_of_a_merged_run_removes_both_files(void **state)
{
    (void)state;
    run_surgery(other, NULL, 0);
    const char *merge[] = {"merge", other, "--db", db, NULL};
    expect(merge, NULL, 0);
    char *id = query("SELECT max(id) FROM runs");
    const char *row = strchr(id, '\n');
    assert_non_null(row);
    char run[16];
    snprintf(run, sizeof run, "%d", atoi(row + 1));
    free(id);
    char weights[512], opt[512];
    snprintf(weights, sizeof weights, "%s/other.db.runs/1/checkpoint-7.safetensors", dir);
    snprintf(opt, sizeof opt, "%s/other.db.runs/1/checkpoint-7.optimizer.safetensors", dir);
    assert_true(exists(weights));
    assert_true(exists(opt));
    const char *dry[] = {"rm", run, "--db", db, "--dry-run", NULL};
    cli_result r = orch(dry, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "checkpoint-7.optimizer.safetensors"));
    cli_result_free(&r);
    const char *rm[] = {"rm", run, "--db", db, NULL};
    expect(rm, NULL, 0);
    assert_false(exists(weights));
    assert_false(exists(opt));
}

/* The weights file alone serves export-adapter and predict (resume needs
 * the state: test_model_checkpoint). */
static void test_weights_alone(void **state)
{
    (void)state;
    char store[400], path[512], out[400], npy[400];
    snprintf(store, sizeof store, "%s/alone.db", dir);
    run_surgery(store, NULL, 0);
    snprintf(path, sizeof path, "%s/alone.db.runs/1/checkpoint-7.optimizer.safetensors", dir);
    assert_int_equal(remove(path), 0);
    snprintf(out, sizeof out, "%s/alone-export", dir);
    const char *exp[] = {"export-adapter", "1", "-o", out, "--db", store, NULL};
    expect(exp, NULL, 0);
    snprintf(npy, sizeof npy, "%s/alone.npy", dir);
    const char *pred[] = {"predict", "1", "-o", npy, "--db", store, NULL};
    expect(pred, NULL, 0);
    assert_true(exists(npy));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_over_a_changed_state_file),
        cmocka_unit_test(test_rm_of_a_merged_run_removes_both_files),
        cmocka_unit_test(test_weights_alone),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
