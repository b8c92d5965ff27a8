/* test_cli_eval.c - evaluation and early stopping through the orch binary:
 *   - a pipeline with eval = { ... } records eval/loss and eval/accuracy at
 *     steps N-1, 2N-1, ... and the last; `orch run` prints the last
 *     evaluation's figures;
 *   - early stopping ends the run `finished` at the expected step with
 *     runs.end_reason and the reason on the summary;
 *   - under `mpirun -np 2` and `-np 3` (each rank a share of the set, the
 *     sums all-reduced) the metrics are those of the one-rank run (accuracy
 *     exactly, the loss within 1e-6 relative) and so is the early stop;
 *   - a bad eval or stop is one line, exit 2, before a run is recorded.
 * Pipelines are written into a temporary directory and require "base"
 * through ORCH_PIPELINE_PATH. Every mpirun runs under a hard timeout with
 * its own session directory (tests/testutil_sweep.h), ORCH_THREADS=1. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"
#include "tests/testutil_sweep.h"

#define TOL 1e-6

/* 11 evaluation images in batches of 4 (shares of 11 / 2 and 11 / 3 are
 * uneven), every 3 of 12 steps; stop watches eval/loss. The strategy, lr
 * and patience come from the caller. */
static const char *const pipeline_fmt =
    "local base = require \"base\"\n"
    "return extend(base, {\n"
    "    name = \"eval-dp\",\n"
    "    strategy = %s,\n"
    "    data = { samples = 32 },\n"
    "    optimizer = { lr = %s },\n"
    "    eval = { data = { source = \"synthetic\", samples = 11, classes = 4,\n"
    "                      image_size = { 56, 56 } }, every = 3, batch_size = 4 },\n"
    "    schedule = { steps = 12, batch_size = 4, warmup_steps = 3,\n"
    "                 stop = { metric = \"eval/loss\", patience = %d } },\n"
    "})\n";

/* LoRA with dropout: the evaluation draws no mask */
#define LORA "lora { rank = 4, dropout = 0.1 }"

static void write_pipeline(const char *dir, const char *strategy, const char *lr, int patience,
                           char *path, size_t n)
{
    char text[2048];
    snprintf(text, sizeof text, pipeline_fmt, strategy, lr, patience);
    snprintf(path, n, "%s/eval.lua", dir);
    assert_int_equal(write_text_file(path, text), 0);
}

/* `orch run FILE --db DB` alone (ranks 0) or under mpirun -np RANKS. */
static void run_pipeline(const char *dir, const char *db, int ranks, const char *file,
                         cli_result *r)
{
    char cmd[4096];
    if (ranks == 0)
        snprintf(cmd, sizeof cmd,
                 "env ORCH_THREADS=1 ORCH_PIPELINE_PATH=pipelines '%s' run '%s' --db '%s'",
                 orch_bin(), file, db);
    else
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s/ompi' && env ORCH_THREADS=1 ORCH_PIPELINE_PATH=pipelines "
                 "" SWEEP_MPI_ENV "OMPI_MCA_orte_tmpdir_base='%s/ompi' "
                 "OMPI_MCA_btl_vader_backing_directory='%s/ompi' timeout -s KILL 170 mpirun "
                 "--timeout 150 -np %d '%s' run '%s' --db '%s' --ranks %d",
                 dir, dir, dir, ranks, orch_bin(), file, db, ranks);
    assert_int_equal(run_shell(cmd, r), 0);
    if (r->exit_code != 0)
        fail_msg("orch run (%d ranks): exit %d: %s", ranks, r->exit_code, r->err);
}

/* The eval metrics of run 1: "step name" pairs and values, ordered. */
typedef struct metrics {
    int n;
    int64_t step[32];
    char name[32][32];
    double value[32];
} metrics;

static void read_metrics(const char *db, metrics *m)
{
    memset(m, 0, sizeof *m);
    char *text = raw_text(db, "SELECT group_concat(line, char(10)) FROM (SELECT step || ' ' || "
                              "name || ' ' || quote(value) AS line FROM metrics WHERE name LIKE "
                              "'eval/%' ORDER BY name, step)");
    assert_non_null(text);
    const char *at = text;
    while (*at != '\0' && m->n < 32) {
        long long step;
        char value[64];
        assert_int_equal(sscanf(at, "%lld %31s %63s", &step, m->name[m->n], value), 3);
        m->step[m->n] = step;
        m->value[m->n] = strcmp(value, "NULL") == 0 ? NAN : strtod(value, NULL);
        m->n++;
        const char *nl = strchr(at, '\n');
        at = nl != NULL ? nl + 1 : at + strlen(at);
    }
    free(text);
}

static void assert_same_metrics(const metrics *a, const metrics *b, const char *what)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_int_equal(a->step[i], b->step[i]);
        assert_string_equal(a->name[i], b->name[i]);
        double d = fabs(a->value[i] - b->value[i]);
        int exact = strcmp(a->name[i], "eval/accuracy") == 0;
        if (exact ? !(a->value[i] == b->value[i]) : !(d <= TOL * fabs(a->value[i])))
            fail_msg("%s: %s at step %lld: %.17g vs %.17g", what, a->name[i], (long long)a->step[i],
                     a->value[i], b->value[i]);
    }
}

/* ------------------------------------------- metrics, one rank and N */

static void test_eval_metrics_and_ranks(void **state)
{
    (void)state;
    char dir[256], db[320], file[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    write_pipeline(dir, LORA, "1e-3", 20, file, sizeof file);
    cli_result r;
    run_pipeline(dir, db, 0, file, &r);
    assert_non_null(strstr(r.out, "run 1 finished: 12 steps"));
    assert_non_null(strstr(r.out, "\neval: loss "));
    assert_non_null(strstr(r.out, " (4 evaluations)\n"));
    cli_result_free(&r);
    metrics one;
    read_metrics(db, &one);
    assert_int_equal(one.n, 8); /* eval/accuracy and eval/loss at 2, 5, 8, 11 */
    static const int64_t steps[4] = {2, 5, 8, 11};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(one.step[i], steps[i % 4]);
        assert_string_equal(one.name[i], i < 4 ? "eval/accuracy" : "eval/loss");
        assert_true(isfinite(one.value[i]));
    }
    /* 11 images: an accuracy is a count of them */
    double hits = one.value[0] * 11.0;
    assert_true(fabs(hits - round(hits)) < 1e-9);
    char *end = raw_text(db, "SELECT status || ' ' || ifnull(end_reason, 'NULL') FROM runs");
    assert_string_equal(end, "finished NULL");
    free(end);
    remove_tree(dir);
    if (!sweep_have_mpirun())
        return;
    for (int ranks = 2; ranks <= 3; ranks++) {
        assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
        write_pipeline(dir, LORA, "1e-3", 20, file, sizeof file);
        run_pipeline(dir, db, ranks, file, &r);
        cli_result_free(&r);
        metrics many;
        read_metrics(db, &many);
        assert_same_metrics(&one, &many, ranks == 2 ? "2 ranks" : "3 ranks");
        remove_tree(dir);
    }
}

/* ----------------------------------------------------- early stopping */

/* lr 1e-30 moves no weight of surgery by an ulp (nothing starts at zero):
 * the evaluation loss is the same every time, so it stops at the second
 * evaluation with patience 1, on any rank count. */
static void test_early_stop(void **state)
{
    (void)state;
    for (int ranks = 0; ranks <= 2; ranks += 2) {
        if (ranks > 0 && !sweep_have_mpirun())
            return;
        char dir[256], db[320], file[320];
        assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
        write_pipeline(dir, "surgery {}", "1e-30", 1, file, sizeof file);
        cli_result r;
        run_pipeline(dir, db, ranks, file, &r);
        char *best_text =
            raw_text(db, "SELECT value FROM metrics WHERE name = 'eval/loss' AND step = 2");
        assert_non_null(best_text);
        double best = strtod(best_text, NULL);
        free(best_text);
        char want[256];
        snprintf(want, sizeof want,
                 "early stop: eval/loss did not improve for 1 evaluation (best %.4f at step 2)",
                 best);
        assert_non_null(strstr(r.out, "run 1 finished: 6 steps"));
        assert_non_null(strstr(r.out, want));
        cli_result_free(&r);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM steps"), 6);
        assert_int_equal(raw_int(db, "SELECT max(step) FROM metrics WHERE name = 'eval/loss'"), 5);
        char *end = raw_text(db, "SELECT status || ': ' || end_reason FROM runs");
        char row[300];
        snprintf(row, sizeof row, "finished: %s", want);
        assert_string_equal(end, row);
        free(end);
        remove_tree(dir);
    }
}

/* ------------------------------------------------------------ refusals */

static void test_refused(void **state)
{
    (void)state;
    char dir[256], db[320], file[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    snprintf(file, sizeof file, "%s/split.lua", dir);
    assert_int_equal(write_text_file(file, "local base = require \"base\"\n"
                                           "return extend(base, {\n"
                                           "    data = { samples = 1 },\n"
                                           "    schedule = { batch_size = 1 },\n"
                                           "    eval = { split = 0.5 },\n"
                                           "})\n"),
                     0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "env ORCH_PIPELINE_PATH=pipelines '%s' run '%s' --db '%s'",
             orch_bin(), file, db);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    assert_int_equal(r.exit_code, 2);
    char want[512];
    snprintf(want, sizeof want,
             "orch: %s: eval.split = 0.5 of 1 images leaves no image to train on\n", file);
    assert_string_equal(r.err, want);
    cli_result_free(&r);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_metrics_and_ranks),
        cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
