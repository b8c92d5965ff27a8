/* test_cli_sweeps.c - `orch sweeps`, `orch show sweep ID`, `orch compare
 * --sweep ID` and `orch merge` through the orch binary: their output
 * formats and exit codes.
 *
 * The fixture runs a tiny pipeline four times (two learning rates x seeds
 * 1 and 2, three steps each) into job/orch.db and makes them a sweep the
 * way the coordinator records one (a sweeps row and sweep_runs rows,
 * written with a raw SQLite connection: this test links nothing but the
 * helpers); every test works on a copy when it changes anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"

#include <jansson.h>
#include <math.h>

static char dir[256];
static char job[400]; /* DIR/job/orch.db: the sweep's store */

static const char *pipeline_text =
    "return {\n"
    "  name = \"small\",\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"synthetic\", samples = 8, classes = 4,\n"
    "           image_size = {28, 28} },\n"
    "  strategy = lora { rank = 4, alpha = 8 },\n"
    "  head = { kind = \"classifier\", classes = 4 },\n"
    "  optimizer = { kind = \"adamw\", lr = 1e-2 },\n"
    "  schedule = { steps = 3, batch_size = 2, checkpoint_every = 2 },\n"
    "  seed = 5,\n"
    "}\n";

/* Runs a shell command (orch is "$ORCH"), asserts its exit code, returns
 * the result (the caller frees it). */
static cli_result sh(int want_exit, const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && ORCH='%s'; %s", dir, orch_bin(), cmd);
    cli_result r;
    assert_int_equal(run_shell(full, &r), 0);
    if (r.exit_code != want_exit)
        fail_msg("%s: exit %d (want %d)\nstdout: %s\nstderr: %s", cmd, r.exit_code, want_exit,
                 r.out, r.err);
    return r;
}

/* One line on stderr, starting "orch: " and holding words; nothing on stdout. */
static void assert_one_line(const cli_result *r, const char *words)
{
    if (strncmp(r->err, "orch: ", 6) != 0 || strstr(r->err, words) == NULL)
        fail_msg("stderr '%s' does not say '%s'", r->err, words);
    assert_int_equal(strchr(r->err, '\n') - r->err + 1, (long)strlen(r->err));
    assert_string_equal(r->out, "");
}

/* Does DIR/name exist? */
static int exists(const char *name)
{
    char path[400];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &sb) == 0;
}

static int setup(void **state)
{
    (void)state;
    char path[400], cmd[1024];
    if (make_temp_dir(dir, sizeof dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/small.lua", dir);
    snprintf(job, sizeof job, "%s/job", dir);
    if (write_text_file(path, pipeline_text) != 0 || mkdir(job, 0777) != 0)
        return -1;
    snprintf(job, sizeof job, "%s/job/orch.db", dir);
    /* runs 1..4: lr 1e-2 seed 1, lr 1e-3 seed 1, lr 1e-2 seed 2, lr 1e-3 seed 2 */
    for (int seed = 1; seed <= 2; seed++)
        for (int k = 0; k < 2; k++) {
            const char *lr = k == 0 ? "1e-2" : "1e-3";
            snprintf(cmd, sizeof cmd,
                     "cd '%s' && ORCH_THREADS=1 '%s' run small.lua --quiet --db job/orch.db "
                     "--set optimizer.lr=%s --set seed=%d --name grid/lora-lr%s-s%d >/dev/null",
                     dir, orch_bin(), lr, seed, lr, seed);
            cli_result r;
            if (run_shell(cmd, &r) != 0 || r.exit_code != 0) {
                fprintf(stderr, "setup: %s\n", r.err);
                return -1;
            }
            cli_result_free(&r);
        }
    raw_exec(job, "INSERT INTO sweeps (name, file, hash, status, coordinator_host, "
                  "coordinator_pid, created_at, finished_at) VALUES ('grid', 'grid.lua', "
                  "'gridhash', 'finished', 'node0', 99, '2026-01-01T00:00:00.000Z', "
                  "'2026-01-01T00:01:00.000Z');"
                  "INSERT INTO sweep_runs (sweep_id, point, run_id, rank, host, attempts) "
                  "SELECT 1, substr(name, 6), id, id % 2, 'node' || (id % 2), 1 FROM runs;");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_sweeps_list(void **state)
{
    (void)state;
    cli_result r = sh(0, "$ORCH sweeps --db job/orch.db");
    const char *header = "id  name  status    runs  queued  running  finished  diverged  failed  "
                         "skipped  interrupted  created_at";
    assert_true(strncmp(r.out, header, strlen(header)) == 0);
    assert_non_null(strstr(r.out, "\n 1  grid  finished     4       0        0         4         "
                                  "0       0        0            0  2026-01-01T00:00:00.000Z\n"));
    assert_non_null(strstr(r.out, "(1 row)\n"));
    cli_result_free(&r);

    r = sh(0, "$ORCH sweeps --db job/orch.db --csv");
    assert_string_equal(r.out, "id,name,file,status,runs,queued,running,finished,diverged,failed,"
                               "skipped,interrupted,created_at,finished_at\r\n"
                               "1,grid,grid.lua,finished,4,0,0,4,0,0,0,0,2026-01-01T00:00:00."
                               "000Z,2026-01-01T00:01:00.000Z\r\n");
    cli_result_free(&r);

    r = sh(0, "ORCH_DB=job/orch.db $ORCH sweeps --json");
    json_error_t jerr;
    json_t *rows = json_loads(r.out, 0, &jerr);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_int_equal(json_integer_value(json_object_get(row, "runs")), 4);
    assert_string_equal(json_string_value(json_object_get(row, "file")), "grid.lua");
    assert_true(json_is_integer(json_object_get(row, "skipped")));
    json_decref(rows);
    cli_result_free(&r);

    r = sh(2, "$ORCH sweeps extra --db job/orch.db");
    assert_one_line(&r, "sweeps: unexpected argument 'extra'");
    cli_result_free(&r);
    r = sh(2, "$ORCH sweeps --db nowhere.db");
    assert_one_line(&r, "no store at nowhere.db");
    cli_result_free(&r);
    assert_false(exists("nowhere.db"));
    r = sh(0, "$ORCH sweeps --help");
    assert_non_null(strstr(r.out, "usage: orch sweeps"));
    cli_result_free(&r);
}

static void test_show_sweep(void **state)
{
    (void)state;
    cli_result r = sh(0, "$ORCH show sweep 1 --db job/orch.db");
    assert_true(strncmp(r.out, "sweep 1: grid\n  name             grid\n", 37) == 0);
    assert_non_null(strstr(r.out, "  hash             gridhash\n"));
    assert_non_null(strstr(r.out, "  coordinator_pid  99\n"));
    assert_non_null(strstr(r.out,
                           "\nruns (4)\npoint           run  status    rank  host   attempts  "
                           "steps  final_loss  error\n"));
    assert_non_null(
        strstr(r.out, "\nlora-lr1e-2-s1    1  finished     1  node1         1      3  "));
    assert_non_null(
        strstr(r.out, "\nlora-lr1e-3-s2    4  finished     0  node0         1      3  "));
    assert_non_null(strstr(r.out, "(4 rows)\n"));
    cli_result_free(&r);

    r = sh(2, "$ORCH show sweep 9 --db job/orch.db");
    assert_one_line(&r, "no sweep 9 in job/orch.db");
    cli_result_free(&r);
    r = sh(2, "$ORCH show sweep x --db job/orch.db");
    assert_one_line(&r, "show: 'x' is not a sweep id (see 'orch sweeps')");
    cli_result_free(&r);
    r = sh(2, "$ORCH show sweep --db job/orch.db");
    assert_one_line(&r, "show: missing sweep id");
    cli_result_free(&r);
    r = sh(2, "$ORCH show sweep 1 2 --db job/orch.db");
    assert_one_line(&r, "show: one run or sweep at a time");
    cli_result_free(&r);
    /* a run still shows as before */
    r = sh(0, "$ORCH show 2 --db job/orch.db");
    assert_true(strncmp(r.out, "run 2: grid/lora-lr1e-3-s1\n", 27) == 0);
    cli_result_free(&r);
}

/* The groups' figures against the final losses the runs recorded. */
static void test_compare_sweep(void **state)
{
    (void)state;
    double loss[5];
    for (int id = 1; id <= 4; id++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT loss FROM steps WHERE run_id = %d ORDER BY step DESC LIMIT 1", id);
        loss[id] = raw_real(job, sql);
    }
    cli_result r = sh(0, "$ORCH compare --sweep 1 --db job/orch.db --json");
    json_error_t jerr;
    json_t *rows = json_loads(r.out, 0, &jerr);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 2);
    /* lr 1e-2: runs 1 and 3; lr 1e-3: runs 2 and 4 */
    double mean_a = (loss[1] + loss[3]) / 2, mean_b = (loss[2] + loss[4]) / 2;
    int a_first = mean_a <= mean_b;
    json_t *a = json_array_get(rows, a_first ? 0 : 1), *b = json_array_get(rows, a_first ? 1 : 0);
    assert_string_equal(json_string_value(json_object_get(a, "group")), "lora-lr1e-2");
    assert_string_equal(json_string_value(json_object_get(b, "group")), "lora-lr1e-3");
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 2);
    assert_int_equal(json_integer_value(json_object_get(a, "finished")), 2);
    assert_true(fabs(json_real_value(json_object_get(a, "mean_final_loss")) - mean_a) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(b, "mean_final_loss")) - mean_b) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(a, "std_final_loss")) -
                     fabs(loss[1] - loss[3]) / sqrt(2.0)) < 1e-12);
    int best_a = loss[1] <= loss[3] ? 1 : 2;
    assert_int_equal(json_integer_value(json_object_get(a, "best_seed")), best_a);
    assert_int_equal(json_integer_value(json_object_get(a, "worst_seed")), 3 - best_a);
    assert_true(json_real_value(json_object_get(a, "best_final_loss")) ==
                (best_a == 1 ? loss[1] : loss[3]));
    assert_true(json_is_real(json_object_get(a, "lr")));
    assert_int_equal(json_integer_value(json_object_get(b, "skipped")), 0);
    json_decref(rows);
    cli_result_free(&r);

    r = sh(0, "$ORCH compare --sweep 1 --db job/orch.db");
    assert_true(strncmp(r.out,
                        "group        strategy     lr  n  finished  mean_final_loss  "
                        "std_final_loss  best_seed  best_final_loss  worst_seed  "
                        "worst_final_loss  nan_events  diverged  failed  skipped\n",
                        160) == 0);
    assert_non_null(strstr(r.out, "(2 rows)\n"));
    cli_result_free(&r);
    r = sh(0, "$ORCH compare --sweep=1 --db job/orch.db --csv");
    assert_true(strncmp(r.out, "group,strategy,lr,n,finished,mean_final_loss,", 44) == 0);
    cli_result_free(&r);

    r = sh(2, "$ORCH compare --sweep 9 --db job/orch.db");
    assert_one_line(&r, "compare: no sweep 9 in job/orch.db");
    cli_result_free(&r);
    r = sh(2, "$ORCH compare --sweep 1 2 --db job/orch.db");
    assert_one_line(&r, "compare: --sweep compares the groups of one sweep");
    cli_result_free(&r);
    r = sh(2, "$ORCH compare --sweep 0 --db job/orch.db");
    assert_one_line(&r, "compare: '0' is not a sweep id");
    cli_result_free(&r);
    r = sh(2, "$ORCH compare --db job/orch.db");
    assert_one_line(&r, "--sweep ID");
    cli_result_free(&r);
}

/* A store at an older schema version is refused by every reading command
 * alike, sweeps included. */
static void test_older_store_refused_alike(void **state)
{
    (void)state;
    cli_result r = sh(0, "cp job/orch.db old.db");
    cli_result_free(&r);
    char old[400];
    snprintf(old, sizeof old, "%s/old.db", dir);
    raw_exec(old, "PRAGMA user_version = 4");
    cli_result runs = sh(2, "$ORCH runs --db old.db");
    cli_result sweeps = sh(2, "$ORCH sweeps --db old.db");
    cli_result show = sh(2, "$ORCH show sweep 1 --db old.db");
    assert_one_line(&sweeps, "has schema version 4 and needs migrating");
    assert_string_equal(sweeps.err, runs.err);
    assert_string_equal(show.err, runs.err);
    cli_result_free(&runs);
    cli_result_free(&sweeps);
    cli_result_free(&show);
}

static void test_merge(void **state)
{
    (void)state;
    /* refused before anything is made: no destination store is created */
    cli_result r = sh(2, "$ORCH merge --db all.db");
    assert_one_line(&r, "merge: name the stores to merge");
    cli_result_free(&r);
    r = sh(2, "$ORCH merge job/orch.db missing.db --db all.db");
    assert_one_line(&r, "merge: no store at missing.db");
    cli_result_free(&r);
    assert_false(exists("all.db"));
    r = sh(2, "$ORCH merge small.lua --db all.db");
    assert_one_line(&r, "merge: small.lua is not an orch store");
    cli_result_free(&r);
    assert_false(exists("all.db"));
    r = sh(2, "$ORCH merge job/orch.db --db job/orch.db");
    assert_one_line(&r, "merge: job/orch.db is the store itself");
    cli_result_free(&r);

    r = sh(0, "$ORCH merge job/orch.db --db all.db");
    assert_string_equal(r.out,
                        "merged job/orch.db: 4 runs added, 0 already present; 1 sweep added\n");
    assert_string_equal(r.err, "");
    cli_result_free(&r);
    r = sh(0, "ORCH_DB=all.db $ORCH merge job/orch.db job/orch.db");
    assert_string_equal(r.out, "merged job/orch.db: 0 runs added, 4 already present; 0 sweeps "
                               "added, 1 already present\n"
                               "merged job/orch.db: 0 runs added, 4 already present; 0 sweeps "
                               "added, 1 already present\n");
    cli_result_free(&r);
    char all[400];
    snprintf(all, sizeof all, "%s/all.db", dir);
    assert_int_equal(raw_int(all, "SELECT count(*) FROM runs"), 4);
    /* the merged store reads like the original */
    cli_result a = sh(0, "$ORCH compare --sweep 1 --db all.db --csv");
    cli_result b = sh(0, "$ORCH compare --sweep 1 --db job/orch.db --csv");
    assert_string_equal(a.out, b.out);
    cli_result_free(&a);
    cli_result_free(&b);
    /* a merged run resumes from its checkpoint, found where job/ wrote it */
    raw_exec(all, "UPDATE runs SET status = 'interrupted' WHERE id = 1");
    r = sh(0, "ORCH_THREADS=1 $ORCH resume 1 --quiet --db all.db");
    cli_result_free(&r);
    r = sh(0, "$ORCH merge --help");
    assert_non_null(strstr(r.out, "usage: orch merge OTHER.db..."));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweeps_list),   cmocka_unit_test(test_show_sweep),
        cmocka_unit_test(test_compare_sweep), cmocka_unit_test(test_older_store_refused_alike),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
