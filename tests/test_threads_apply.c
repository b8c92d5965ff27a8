/*
 * test_threads_apply.c - `orch --threads N` and ORCH_THREADS reach the
 * kernels as given, whatever the load: orch_cli_apply_threads() is what
 * `orch run` and `orch resume` call with the parsed global options.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "core/cli.h"
#include "core/err.h"
#include "kernels/kernels.h"

static void test_threads_flag_gives_two(void **state)
{
    (void)state;
    unsetenv("ORCH_THREADS");
    orch_cli_globals globals = {NULL, 2};
    orch_err err;
    orch_err_clear(&err);
    assert_int_equal(orch_cli_apply_threads(&globals, &err), ORCH_OK);
    assert_int_equal(orch_threads_get(), 2);
    char why[192];
    orch_threads_describe(why, sizeof why);
    assert_string_equal(why, "2 threads (--threads)");
    orch_threads_set(0);
}

static void test_env_gives_two(void **state)
{
    (void)state;
    setenv("ORCH_THREADS", "2", 1);
    orch_cli_globals globals = {NULL, 0};
    orch_err err;
    orch_err_clear(&err);
    assert_int_equal(orch_cli_apply_threads(&globals, &err), ORCH_OK);
    assert_int_equal(orch_threads_get(), 2);
    char why[192];
    orch_threads_describe(why, sizeof why);
    assert_string_equal(why, "2 threads (ORCH_THREADS)");
    unsetenv("ORCH_THREADS");
    orch_threads_set(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_flag_gives_two),
        cmocka_unit_test(test_env_gives_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
