/* test_cli_run_sweep_file.c - `orch run` on a sweep file is refused with
 * one line and exit 2 before anything is written: a sweep runs with
 * `orch sweep` (docs/pipelines.md, "Sweeps"). */
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

static void test_run_refuses_a_sweep(void **state)
{
    (void)state;
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    const char *argv[] = {"run", "tests/data/sweeps/strategies.lua", "--db", db, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_string_equal(r.err, "orch: tests/data/sweeps/strategies.lua: this file declares a "
                               "sweep; run it with `orch sweep tests/data/sweeps/strategies.lua` "
                               "(plan it with `orch plan tests/data/sweeps/strategies.lua`)\n");
    cli_result_free(&r);
    struct stat st;
    assert_int_not_equal(stat(db, &st), 0); /* no store was made */
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_refuses_a_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
