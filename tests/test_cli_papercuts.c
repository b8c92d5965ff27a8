/* test_cli_papercuts.c - small CLI behaviours a user sees:
 *
 *   - `orch runs --strategy bogus` is refused (exit 2) like `--status bogus`;
 *   - `orch query --help` names every table and view of the schema;
 *   - step numbers agree: the progress line, `--json` and the store all
 *     count from 0 (the progress line also shows the count done);
 *   - `orch plan` warns on stderr when a Qwen preset has no model.weights.
 *
 * One tiny run (3 steps) is recorded once for the group, in a temporary
 * store; the progress line needs a terminal, which script(1) provides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

#define STEPS 3

static char dir[256], db[512], pipeline[512];
static char *json_out; /* stdout of `orch run --json`; owned */

static const char *tiny_text =
    "return {\n"
    "  model = { preset = \"%s\" },\n"
    "  data = { source = \"synthetic\", samples = 4, classes = 2, image_size = {%d, %d} },\n"
    "  strategy = detach {},\n"
    "  head = { kind = \"classifier\", classes = 2 },\n"
    "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
    "  schedule = { steps = %d, batch_size = 2 },\n"
    "}\n";

static int setup(void **state)
{
    (void)state;
    if (make_temp_store(dir, sizeof dir, db, sizeof db) != 0)
        return -1;
    snprintf(pipeline, sizeof pipeline, "%s/tiny.lua", dir);
    char text[1024];
    snprintf(text, sizeof text, tiny_text, "tiny", 16, 16, STEPS);
    if (write_text_file(pipeline, text) != 0)
        return -1;
    const char *argv[] = {"run", "--db", db, "--json", pipeline, NULL};
    cli_result r;
    if (run_orch(argv, NULL, &r) != 0)
        return -1;
    int ok = r.exit_code == 0;
    if (!ok)
        fprintf(stderr, "setup: orch run exited %d: %s\n", r.exit_code, r.err);
    json_out = r.out;
    free(r.err);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(json_out);
    remove_tree(dir);
    return 0;
}

static cli_result run3(const char *a, const char *b, const char *c, const char *d)
{
    const char *argv[] = {a, b, c, d, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    return r;
}

static void test_runs_strategy_bogus(void **state)
{
    (void)state;
    const char *argv[] = {"runs", "--db", db, "--strategy", "bogus", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_string_equal(r.err,
                        "orch: runs: unknown strategy 'bogus' (surgery, detach, lora or full)\n");
    assert_string_equal(r.out, "");
    cli_result_free(&r);
    /* the same as --status */
    argv[3] = "--status";
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    cli_result_free(&r);
    /* a real strategy lists the run */
    argv[3] = "--strategy";
    argv[4] = "detach";
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "tiny"));
    cli_result_free(&r);
}

/* Every table and view of a store's schema is named in `orch query --help`. */
static void test_query_help_names_the_schema(void **state)
{
    (void)state;
    cli_result help = run3("query", "--help", NULL, NULL);
    assert_int_equal(help.exit_code, 0);
    const char *argv[] = {"query",
                          "--db",
                          db,
                          "--csv",
                          "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                          "AND name NOT LIKE 'sqlite_%' ORDER BY name",
                          NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    int names = 0;
    char *save = NULL;
    for (char *name = strtok_r(r.out, "\r\n", &save); name != NULL;
         name = strtok_r(NULL, "\r\n", &save)) {
        if (strcmp(name, "name") == 0) /* the CSV header */
            continue;
        names++;
        if (strstr(help.out, name) == NULL)
            fail_msg("orch query --help does not name '%s':\n%s", name, help.out);
    }
    assert_true(names >= 6); /* runs, steps, metrics, nan_events, run_summary, ... */
    cli_result_free(&r);
    cli_result_free(&help);
}

/* The store's and --json's step numbers: 0 .. STEPS-1. */
static void test_json_and_store_count_from_zero(void **state)
{
    (void)state;
    char want[64];
    for (int k = 0; k < STEPS; k++) {
        snprintf(want, sizeof want, "\"step\": %d,", k);
        if (strstr(json_out, want) == NULL)
            fail_msg("--json has no %s:\n%s", want, json_out);
    }
    snprintf(want, sizeof want, "\"step\": %d,", STEPS);
    assert_null(strstr(json_out, want));
    const char *argv[] = {
        "query", "--db", db, "--csv", "SELECT group_concat(step, ' ') AS steps FROM steps", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\n0 1 2"));
    cli_result_free(&r);
}

/* On a terminal the progress line shows the store's step number and the
 * count done: "step 0 (1/3 done)" .. "step 2 (3/3 done)". */
static void test_progress_counts_like_the_store(void **state)
{
    (void)state;
    char cmd[2048], db2[600];
    snprintf(db2, sizeof db2, "%s/progress.db", dir);
    snprintf(cmd, sizeof cmd, "exec script -qec \"'%s' run --db '%s' '%s'\" /dev/null", orch_bin(),
             db2, pipeline);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    if (r.exit_code != 0)
        fail_msg("script/orch run exited %d: %s%s", r.exit_code, r.out, r.err);
    char want[64];
    for (int k = 0; k < STEPS; k++) {
        snprintf(want, sizeof want, "\rstep %d (%d/%d done)  loss ", k, k + 1, STEPS);
        if (strstr(r.out, want) == NULL)
            fail_msg("no progress '%s' in:\n%s", want + 1, r.out);
    }
    snprintf(want, sizeof want, "\rstep %d ", STEPS);
    assert_null(strstr(r.out, want));
    cli_result_free(&r);
}

static void test_plan_warns_random_init(void **state)
{
    (void)state;
    char path[512], text[1024];
    snprintf(path, sizeof path, "%s/qwen3b.lua", dir);
    snprintf(text, sizeof text, tiny_text, "qwen2.5-vl-3b", 56, 56, 1);
    assert_int_equal(write_text_file(path, text), 0);
    cli_result r = run3("plan", path, NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    const char *nl = strchr(r.err, '\n');
    if (strncmp(r.err, "orch: warning: ", 15) != 0 || strstr(r.err, path) == NULL ||
        strstr(r.err, "model.preset = \"qwen2.5-vl-3b\" without model.weights") == NULL ||
        strstr(r.err, "randomly initialized") == NULL || nl == NULL || nl[1] != '\0')
        fail_msg("want one warning line on stderr, got: %s", r.err);
    assert_non_null(strstr(r.out, "model.preset = \"qwen2.5-vl-3b\""));
    cli_result_free(&r);
    /* the test-size presets have no checkpoint: no warning */
    r = run3("plan", pipeline, NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.err, "");
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_strategy_bogus),
        cmocka_unit_test(test_query_help_names_the_schema),
        cmocka_unit_test(test_json_and_store_count_from_zero),
        cmocka_unit_test(test_progress_counts_like_the_store),
        cmocka_unit_test(test_plan_warns_random_init),
    };
    return cmocka_run_group_tests_name("cli papercuts", tests, setup, teardown);
}
