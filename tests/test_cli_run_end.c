/* test_cli_run_end.c - how `orch run` ends a run whose end state is not
 * finite, through the orch binary: nan-repro under on_nan = "continue"
 * keeps stepping through the fp16 overflow and ends with a NaN loss, so the
 * run is `diverged` and orch exits 1 (a sweep must not read it as a
 * success); the summary line prints NaN as the store does, never "-nan". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

static void test_nan_end_is_diverged_exit_1(void **state)
{
    (void)state;
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    const char *argv[] = {"run",    "pipelines/nan-repro.lua",
                          "--set",  "schedule.steps=2",
                          "--set",  "schedule.warmup_steps=0",
                          "--db",   db,
                          "--name", "nan-end",
                          NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.out, "run 1 diverged: 2 steps, loss "));
    assert_non_null(strstr(r.out, " -> NaN, max grad_norm NaN, "));
    assert_null(strstr(r.out, "nan,"));
    assert_null(strstr(r.out, "-nan"));
    /* one error line, saying where */
    assert_string_equal(r.err, "orch: run 1 diverged at step 1: the final loss is NaN\n");
    cli_result_free(&r);
    /* the store agrees */
    const char *q[] = {"query", "--db", db, "--csv", "SELECT status FROM runs WHERE id = 1", NULL};
    assert_int_equal(run_orch(q, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\ndiverged"));
    cli_result_free(&r);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nan_end_is_diverged_exit_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
