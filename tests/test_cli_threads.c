/* test_cli_threads.c - `orch run` starts itself again with the wait policy
 * (core/startup_env.c) and nobody can tell from outside: stdout holds each
 * step once, exit codes and the one error line are the ones of a single
 * start, and a user's own OMP_WAIT_POLICY gives the same results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p != NULL; p = strstr(p + 1, what))
        n++;
    return n;
}

/* `orch --threads 2 run ... --json` with env (may be NULL): exit 0, one
 * JSON line per step; returns the captured stdout (owned by the caller). */
static char *run_two_steps(const char *const env[])
{
    char dir[256], db[320];
    assert_int_equal(make_temp_store(dir, sizeof dir, db, sizeof db), 0);
    const char *argv[] = {"--threads", "2",
                          "run",       "pipelines/surgery.lua",
                          "--set",     "schedule.steps=2",
                          "--set",     "schedule.warmup_steps=0",
                          "--json",    "--db",
                          db,          NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    print_message("stdout: %sstderr: %s", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(count(r.out, "\"step\": 0"), 1);
    assert_int_equal(count(r.out, "\"step\": 1"), 1);
    assert_int_equal(count(r.out, "\"step\": 2"), 0);
    char *out = r.out;
    r.out = NULL;
    cli_result_free(&r);
    remove_tree(dir);
    return out;
}

static void test_run_output_once(void **state)
{
    (void)state;
    /* tests/run.sh sets no wait policy: orch starts itself again */
    char *restarted = run_two_steps(NULL);
    const char *passive[] = {"OMP_WAIT_POLICY=passive", NULL};
    char *as_set = run_two_steps(passive);
    /* the same run either way: same losses (the lines carry times too) */
    const char *a = strstr(restarted, "\"loss\""), *b = strstr(as_set, "\"loss\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_memory_equal(a, b, strcspn(a, ","));
    free(restarted);
    free(as_set);
}

static void test_run_bad_input_exit_2(void **state)
{
    (void)state;
    const char *argv[] = {"run", "pipelines/surgery.lua", "--set", "schedule.steps=-1", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_int_equal(count(r.err, "\n"), 1); /* one line, printed once */
    assert_int_equal(count(r.err, "orch: "), 1);
    assert_string_equal(r.out, "");
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_output_once),
        cmocka_unit_test(test_run_bad_input_exit_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
