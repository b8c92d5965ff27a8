/* test_cli_shards.c - tar shards through the orch binary: `orch shards`
 * makes them from the JPEG folder of pipelines/data/shapes/train (class
 * sub-folders); a pipeline with data = shards { ... } plans and runs on
 * them; a missing shard is one line and exit 2 at plan time; outputs that
 * exist are refused without --force; and a data-parallel run over
 * `mpirun -np 2` matches the one-rank run step by step (losses and grad
 * norms within 1e-6 relative): the order of the images does not depend on
 * the rank count, each rank decodes only the images of its share; and a
 * 2-rank run stopped mid-way and resumed on one rank matches the
 * uninterrupted one-rank run across an epoch boundary. Every
 * mpirun runs under a hard timeout with its own session directory
 * (tests/testutil_sweep.h), with ORCH_THREADS=1. */
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

#define STEPS 8
#define TOL   1e-6

static char dir[256];

/* The shards (6 of 8 samples, gzip) and the pipeline over them. */
static int setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    char out[400];
    snprintf(out, sizeof out, "%s/shapes-%%02d.tar.gz", dir);
    const char *argv[] = {"shards", "pipelines/data/shapes/train", "-o", out, "--per-shard", "8",
                          NULL};
    cli_result r;
    if (run_orch(argv, NULL, &r) != 0 || r.exit_code != 0) {
        fprintf(stderr, "orch shards: %s\n", r.err);
        return -1;
    }
    cli_result_free(&r);
    char path[400];
    snprintf(path, sizeof path, "%s/shards.lua", dir);
    return write_text_file(path, "return {\n"
                                 "    name = \"shards\",\n"
                                 "    model = { preset = \"tiny\" },\n"
                                 "    data = shards { \"shapes-{00..05}.tar.gz\", shuffle = 8 },\n"
                                 "    head = { kind = \"classifier\", classes = 3 },\n"
                                 "    strategy = lora { rank = 4, alpha = 8 },\n"
                                 "    loss = \"cross_entropy\",\n"
                                 "    optimizer = { kind = \"adamw\", lr = 1e-3 },\n"
                                 "    schedule = { steps = 8, batch_size = 4 },\n"
                                 "    seed = 7,\n"
                                 "}\n");
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* `orch run shards.lua` (what "run"), or `orch resume 1` (what "resume 1"),
 * alone (ranks 0) or under mpirun -np ranks, into db; env: more NAME=value
 * words. */
static void run_env(const char *what, const char *db, int ranks, const char *args, const char *env,
                    cli_result *r)
{
    char cmd[4096], target[400];
    int is_run = strcmp(what, "run") == 0;
    if (is_run)
        snprintf(target, sizeof target, "run '%s/shards.lua'", dir);
    else
        snprintf(target, sizeof target, "%s", what);
    if (ranks == 0)
        snprintf(cmd, sizeof cmd, "env ORCH_THREADS=1 %s '%s' %s --db '%s' --quiet %s", env,
                 orch_bin(), target, db, args);
    else
        snprintf(
            cmd, sizeof cmd,
            "mkdir -p '%s/ompi' && env ORCH_THREADS=1 " SWEEP_MPI_ENV
            "OMPI_MCA_orte_tmpdir_base='%s/ompi' OMPI_MCA_btl_vader_backing_directory='%s/ompi' "
            "%s timeout -s KILL 170 mpirun --timeout 150 -np %d '%s' %s --db '%s' --quiet "
            "%s%d %s",
            dir, dir, dir, env, ranks, orch_bin(), target, db, is_run ? "--ranks " : "", ranks,
            args);
    assert_int_equal(run_shell(cmd, r), 0);
}

static void run(const char *db, int ranks, const char *args, cli_result *r)
{
    run_env("run", db, ranks, args, "", r);
}

/* loss and grad_norm of run 1, step by step */
static int read_steps_n(const char *db, double *loss, double *norm, int steps)
{
    int n = 0;
    for (; n < steps; n++) {
        char q[200];
        snprintf(q, sizeof q,
                 "SELECT quote(loss) || ' ' || quote(grad_norm) FROM steps WHERE "
                 "run_id = 1 AND step = %d",
                 n);
        char *text = raw_text(db, q);
        if (text == NULL)
            break;
        assert_int_equal(sscanf(text, "%lf %lf", &loss[n], &norm[n]), 2);
        free(text);
    }
    return n;
}

static int read_steps(const char *db, double *loss, double *norm)
{
    return read_steps_n(db, loss, norm, STEPS);
}

static double rel(double a, double b)
{
    double d = fabs(a - b), m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return m > 0 ? d / m : d;
}

static void test_plan_missing_shard(void **state)
{
    (void)state;
    char lua[400], text[600];
    snprintf(lua, sizeof lua, "%s/missing.lua", dir);
    snprintf(text, sizeof text,
             "return {\n"
             "    model = { preset = \"tiny\" },\n"
             "    data = shards { \"shapes-{00..06}.tar.gz\" },\n"
             "    head = { kind = \"classifier\", classes = 3 },\n"
             "    strategy = lora { rank = 4, alpha = 8 },\n"
             "    loss = \"cross_entropy\",\n"
             "    optimizer = { kind = \"adamw\", lr = 1e-3 },\n"
             "    schedule = { steps = 8, batch_size = 4 },\n"
             "}\n");
    assert_int_equal(write_text_file(lua, text), 0);
    const char *argv[] = {"plan", lua, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    char want[1200];
    snprintf(want, sizeof want,
             "orch: %s/shapes-06.tar.gz: no such shard (from %s/shapes-{00..06}.tar.gz)\n", dir,
             dir);
    assert_string_equal(r.err, want);
    cli_result_free(&r);
    /* the shipped shards plan */
    snprintf(lua, sizeof lua, "%s/shards.lua", dir);
    const char *ok[] = {"plan", lua, NULL};
    assert_int_equal(run_orch(ok, NULL, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch plan: %s", r.err);
    cli_result_free(&r);
}

static void test_existing_outputs(void **state)
{
    (void)state;
    char out[400];
    snprintf(out, sizeof out, "%s/shapes-%%02d.tar.gz", dir);
    const char *argv[] = {"shards", "pipelines/data/shapes/train", "-o", out, "--per-shard", "8",
                          NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    char want[600];
    snprintf(want, sizeof want, "orch: %s/shapes-00.tar.gz: exists (use --force to overwrite)\n",
             dir);
    assert_string_equal(r.err, want);
    cli_result_free(&r);
    /* a folder with a CSV of class names: ids in sorted order, printed */
    snprintf(out, sizeof out, "%s/eval.tar", dir);
    const char *csv[] = {"shards",   "pipelines/data/shapes/eval",
                         "--labels", "pipelines/data/shapes/eval.csv",
                         "-o",       out,
                         NULL};
    assert_int_equal(run_orch(csv, NULL, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch shards --labels: %s", r.err);
    assert_non_null(strstr(r.out, "classes: disc=0 square=1 triangle=2\n"));
    assert_non_null(strstr(r.out, "in 1 shard ("));
    cli_result_free(&r);
    const char *help[] = {"shards", "--help", NULL};
    assert_int_equal(run_orch(help, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: orch shards SRC -o"));
    cli_result_free(&r);
}

static void test_one_vs_two_ranks(void **state)
{
    (void)state;
    char db1[400], db2[400];
    snprintf(db1, sizeof db1, "%s/one.db", dir);
    snprintf(db2, sizeof db2, "%s/two.db", dir);
    cli_result r;
    run(db1, 0, "", &r);
    if (r.exit_code != 0)
        fail_msg("one rank: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    double loss1[STEPS], norm1[STEPS], loss2[STEPS], norm2[STEPS];
    assert_int_equal(read_steps(db1, loss1, norm1), STEPS);
    /* the record of the inputs: the six shards, each with its sha256 */
    assert_int_equal(raw_int(db1, "SELECT count(*) FROM run_inputs WHERE role = 'train' AND "
                                  "path LIKE '%/shapes-0_.tar.gz' AND length(sha256) = 64"),
                     6);
    if (!sweep_have_mpirun())
        return;
    run(db2, 2, "", &r);
    if (r.exit_code != 0)
        fail_msg("two ranks: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    assert_int_equal(read_steps(db2, loss2, norm2), STEPS);
    for (int s = 0; s < STEPS; s++)
        if (!(rel(loss1[s], loss2[s]) <= TOL) || !(rel(norm1[s], norm2[s]) <= TOL))
            fail_msg("step %d: loss %.17g vs %.17g, grad_norm %.17g vs %.17g", s, loss1[s],
                     loss2[s], norm1[s], norm2[s]);
}

/* A 2-rank run stopped after step 6, resumed on one rank, crossing an
 * epoch (48 images, 4 a step): the losses of an uninterrupted one-rank
 * run, because the shuffle buffer's order is a function of (seed, epoch)
 * alone. */
static void test_resume_other_rank_count(void **state)
{
    (void)state;
    if (!sweep_have_mpirun())
        skip();
    enum { R_STEPS = 16 };
    const char *args = "--set schedule.steps=16 --set schedule.checkpoint_every=4";
    char db_full[400], db[400];
    snprintf(db_full, sizeof db_full, "%s/full.db", dir);
    snprintf(db, sizeof db, "%s/resumed.db", dir);
    cli_result r;
    run(db_full, 0, args, &r);
    if (r.exit_code != 0)
        fail_msg("full: %s", r.err);
    cli_result_free(&r);
    run_env("run", db, 2, args, "ORCH_TEST_STOP_AT=7", &r);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "run 1 interrupted after step 6"));
    cli_result_free(&r);
    run_env("resume 1", db, 0, "", "", &r);
    if (r.exit_code != 0)
        fail_msg("resume: %s", r.err);
    assert_non_null(strstr(r.out, "run 1 finished: 16 steps"));
    cli_result_free(&r);
    double loss1[R_STEPS], norm1[R_STEPS], loss2[R_STEPS], norm2[R_STEPS];
    assert_int_equal(read_steps_n(db_full, loss1, norm1, R_STEPS), R_STEPS);
    assert_int_equal(read_steps_n(db, loss2, norm2, R_STEPS), R_STEPS);
    for (int s = 0; s < R_STEPS; s++)
        if (!(rel(loss1[s], loss2[s]) <= TOL) || !(rel(norm1[s], norm2[s]) <= TOL))
            fail_msg("step %d: loss %.17g vs %.17g, grad_norm %.17g vs %.17g", s, loss1[s],
                     loss2[s], norm1[s], norm2[s]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_missing_shard),
        cmocka_unit_test(test_existing_outputs),
        cmocka_unit_test(test_one_vs_two_ranks),
        cmocka_unit_test(test_resume_other_rank_count),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
