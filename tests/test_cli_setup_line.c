/* test_cli_setup_line.c - the set-up progress line of `orch run`: on a
 * terminal, "orch: setting up PRESET: ..." refreshed with \r before the
 * first step and erased before the step line; nothing when stderr is not a
 * terminal, nor with --quiet. script(1) provides the terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char dir[256], db[512], pipeline[512];

static const char *tiny_text =
    "return {\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"synthetic\", samples = 4, classes = 2, image_size = {16, 16} },\n"
    "  strategy = surgery { replace = \"visual.merger.mlp.2\" },\n"
    "  head = { kind = \"classifier\", classes = 2 },\n"
    "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
    "  schedule = { steps = 2, batch_size = 2 },\n"
    "}\n";

static int setup(void **state)
{
    (void)state;
    if (make_temp_store(dir, sizeof dir, db, sizeof db) != 0)
        return -1;
    snprintf(pipeline, sizeof pipeline, "%s/tiny.lua", dir);
    return write_text_file(pipeline, tiny_text);
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Runs the pipeline under script(1) with extra (a flag or ""); the
 * terminal's output. */
static cli_result run_on_terminal(const char *extra)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec script -qec \"'%s' run %s --db '%s' '%s'\" /dev/null",
             orch_bin(), extra, db, pipeline);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    if (r.exit_code != 0)
        fail_msg("script/orch run exited %d: %s%s", r.exit_code, r.out, r.err);
    return r;
}

static void test_line_on_a_terminal(void **state)
{
    (void)state;
    cli_result r = run_on_terminal("");
    const char *init = strstr(r.out, "\rorch: setting up tiny: init ");
    const char *step = strstr(r.out, "\rstep 0 (1/2 done)");
    if (init == NULL || step == NULL || init > step)
        fail_msg("want the set-up line before the first step line, got:\n%s", r.out);
    assert_non_null(strstr(r.out, "\rorch: setting up tiny: reserving memory"));
    /* erased: blanks back to the start of the line, then the step line */
    const char *erase = strstr(init, " \r\rstep 0 ");
    assert_non_null(erase);
    assert_true(erase < step);
    cli_result_free(&r);
}

static void test_no_line_with_quiet(void **state)
{
    (void)state;
    cli_result r = run_on_terminal("--quiet");
    assert_null(strstr(r.out, "setting up"));
    cli_result_free(&r);
}

static void test_no_line_off_a_terminal(void **state)
{
    (void)state;
    const char *argv[] = {"run", "--db", db, pipeline, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_null(strstr(r.err, "setting up"));
    assert_null(strstr(r.out, "setting up"));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_on_a_terminal),
        cmocka_unit_test(test_no_line_with_quiet),
        cmocka_unit_test(test_no_line_off_a_terminal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
