/*
 * test_cli_fields.c - command-line papercuts of the pipeline fields, as a
 * user sees them: `orch run --name ""` is refused with one line and exit
 * code 2, before anything runs or is stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"

static void test_run_empty_name(void **state)
{
    (void)state;
    char dir[512], db[600];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(db, sizeof db, "%s/runs.db", dir);
    const char *argv[] = {"run", "--db", db, "pipelines/base.lua", "--name", "", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    int code = r.exit_code;
    const char *nl = strchr(r.err, '\n');
    int one_line =
        strncmp(r.err, "orch: run: --name is empty", 26) == 0 && nl != NULL && nl[1] == '\0';
    if (code != 2 || !one_line)
        print_error("exit %d, stderr:\n%s\n", code, r.err);
    cli_result_free(&r);
    int stored = access(db, F_OK) == 0;
    remove_tree(dir);
    assert_int_equal(code, 2);
    assert_true(one_line);
    assert_false(stored); /* refused before the store is opened */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_empty_name),
    };
    return cmocka_run_group_tests_name("cli fields", tests, NULL, NULL);
}
