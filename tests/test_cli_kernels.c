/*
 * test_cli_kernels.c - what the CLI says and records about the kernels:
 * `orch --version` and `orch plan` name BLIS's sub-configuration and why,
 * every run records it (with CPU and threads), `orch compare` tells runs on
 * different kernels apart, and a BLIS_ARCH_TYPE this CPU cannot run is one
 * line and exit 2 before anything is written (BLIS itself would abort, or
 * die with SIGILL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/testutil.h"

static char dir[256], db[512], pipeline[512];

static const char *tiny_text = "return {\n"
                               "  model = { preset = \"tiny\" },\n"
                               "  data = { source = \"synthetic\", samples = 4, classes = 2,\n"
                               "           image_size = {16, 16} },\n"
                               "  strategy = detach {},\n"
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

static cli_result orch(const char *env, const char *const argv[], int want_exit)
{
    const char *envs[] = {env, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env ? envs : NULL, &r), 0);
    if (r.exit_code != want_exit)
        fail_msg("%s: exit %d (want %d)\nstdout: %s\nstderr: %s", argv[0], r.exit_code, want_exit,
                 r.out, r.err);
    return r;
}

static void test_version_and_plan_name_the_kernels(void **state)
{
    (void)state;
    const char *version[] = {"--threads", "3", "--version", NULL};
    cli_result r = orch(NULL, version, 0);
    assert_non_null(strstr(r.out, "orch "));
    assert_non_null(strstr(r.out, "\nblis 0.9"));
    assert_non_null(strstr(r.out, ", kernels '"));
    assert_non_null(strstr(r.out, "\ncpu "));
    assert_non_null(strstr(r.out, "\nthreads 3\n"));
    cli_result_free(&r);

    const char *plan[] = {"plan", pipeline, NULL};
    r = orch("BLIS_ARCH_TYPE=generic", plan, 0);
    assert_non_null(strstr(r.out, "\n-- blis 0.9"));
    assert_non_null(strstr(r.out, "kernels 'generic' (BLIS_ARCH_TYPE=generic set by the user)"));
    cli_result_free(&r);
}

static void test_runs_record_and_compare_their_kernels(void **state)
{
    (void)state;
    const char *run[] = {"--threads", "1", "run", "--db", db, "--quiet", pipeline, NULL};
    cli_result r = orch("BLIS_ARCH_TYPE=generic", run, 0);
    cli_result_free(&r);
    const char *run2[] = {"--threads", "2", "run", "--db", db, "--quiet", pipeline, NULL};
    r = orch(NULL, run2, 0);
    cli_result_free(&r);

    const char *q[] = {"query",
                       "--db",
                       db,
                       "--csv",
                       "SELECT id, kernels, threads, kernels_why IS NOT NULL, cpu IS NOT NULL "
                       "FROM runs ORDER BY id",
                       NULL};
    r = orch(NULL, q, 0);
    /* the second run is on whatever this machine picks by itself */
    assert_non_null(strstr(r.out, "1,blis 0.9.0 generic,1,1,1\r\n2,blis 0.9.0 "));
    assert_non_null(strstr(r.out, ",2,1,1\r\n"));
    cli_result_free(&r);

    const char *cmp[] = {"compare", "--db", db, "1", "2", NULL};
    r = orch(NULL, cmp, 0);
    assert_non_null(strstr(r.out, "kernels"));
    assert_non_null(strstr(r.out, "blis 0.9.0 generic"));
    cli_result_free(&r);
    const char *show[] = {"show", "--db", db, "1", NULL};
    r = orch(NULL, show, 0);
    assert_non_null(strstr(r.out, "BLIS_ARCH_TYPE=generic set by the user"));
    cli_result_free(&r);
}

static void test_unusable_arch_is_one_line_and_nothing_written(void **state)
{
    (void)state;
    char fresh[600];
    snprintf(fresh, sizeof fresh, "%s/never.db", dir);
    const char *run[] = {"run", "--db", fresh, pipeline, NULL};
    /* knl needs AVX-512 PF, which only Xeon Phi had; skylake is no name of BLIS's */
    const char *bad[] = {"BLIS_ARCH_TYPE=knl", "BLIS_ARCH_TYPE=skylake", "BLIS_ARCH_TYPE=99"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_result r = orch(bad[i], run, 2);
        assert_true(strncmp(r.err, "orch: BLIS_ARCH_TYPE=", 21) == 0);
        size_t lines = 0;
        for (const char *c = r.err; *c; c++)
            lines += *c == '\n';
        assert_int_equal(lines, 1);
        struct stat st;
        assert_int_not_equal(stat(fresh, &st), 0);
        cli_result_free(&r);
    }
    const char *version[] = {"--version", NULL};
    cli_result r = orch("BLIS_ARCH_TYPE=knl", version, 2);
    assert_non_null(strstr(r.err, "AVX-512 PF"));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_plan_name_the_kernels),
        cmocka_unit_test(test_runs_record_and_compare_their_kernels),
        cmocka_unit_test(test_unusable_arch_is_one_line_and_nothing_written),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
