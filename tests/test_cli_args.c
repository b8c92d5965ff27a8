/* test_cli_args.c - what every command's option loop shares (core/cli_args.c,
 * orch_opt_each and its helpers), checked on each command as a user sees
 * it: --help prints that command's usage and exits 0 without doing
 * anything else; an unknown option is one line and exit 2; `orch plan` and
 * `orch run` take one pipeline file and at most ORCH_MAX_SETS --set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/cli.h"
#include "tests/testutil.h"

static const char *const commands[] = {"plan",  "run",     "resume", "runs",  "show",
                                       "query", "compare", "rm",     "report"};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static char dir[256], db[300];

static int setup(void **state)
{
    (void)state;
    return make_temp_store(dir, sizeof dir, db, sizeof db);
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* `orch CMD --db DB ARG ARG2` (ARG and ARG2 may be NULL: left out). */
static cli_result orch4(const char *cmd, const char *arg, const char *arg2)
{
    const char *argv[] = {cmd, "--db", db, arg, arg2, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    return r;
}

static void test_help_prints_the_commands_usage(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: orch %s ", commands[i]);
        /* parsing stops at --help: the file after it is never looked at */
        cli_result r = orch4(commands[i], "--help", "no-such-file.lua");
        assert_int_equal(r.exit_code, 0);
        if (strncmp(r.out, want, strlen(want)) != 0)
            fail_msg("orch %s --help printed: %s", commands[i], r.out);
        assert_string_equal(r.err, "");
        cli_result_free(&r);
    }
    /* nothing was done: no store was made */
    cli_result r;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test -e '%s'", db);
    assert_int_equal(run_shell(cmd, &r), 0);
    assert_int_not_equal(r.exit_code, 0);
    cli_result_free(&r);
}

static void test_unknown_option_is_one_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char want[160];
        snprintf(want, sizeof want, "orch: %s: unknown option '--bogus' (see 'orch %s --help')\n",
                 commands[i], commands[i]);
        cli_result r = orch4(commands[i], "--bogus", NULL);
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.err, want);
        assert_string_equal(r.out, "");
        cli_result_free(&r);
    }
}

static void test_one_pipeline_file(void **state)
{
    (void)state;
    static const char *const cmds[] = {"plan", "run"};
    for (size_t i = 0; i < 2; i++) {
        char want[160];
        snprintf(want, sizeof want,
                 "orch: %s: one pipeline file at a time (got 'a.lua' and 'b.lua')\n", cmds[i]);
        cli_result r = orch4(cmds[i], "a.lua", "b.lua");
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.err, want);
        cli_result_free(&r);
    }
}

static void test_at_most_max_sets(void **state)
{
    (void)state;
    static const char *const cmds[] = {"plan", "run"};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[2 * (ORCH_MAX_SETS + 1) + 2];
        int n = 0;
        argv[n++] = cmds[i];
        for (int k = 0; k <= ORCH_MAX_SETS; k++) {
            argv[n++] = "--set";
            argv[n++] = "seed=1";
        }
        argv[n] = NULL;
        char want[160];
        snprintf(want, sizeof want, "orch: %s: at most %d --set options\n", cmds[i], ORCH_MAX_SETS);
        cli_result r;
        assert_int_equal(run_orch(argv, NULL, &r), 0);
        assert_int_equal(r.exit_code, 2);
        assert_string_equal(r.err, want);
        cli_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_prints_the_commands_usage),
        cmocka_unit_test(test_unknown_option_is_one_line),
        cmocka_unit_test(test_one_pipeline_file),
        cmocka_unit_test(test_at_most_max_sets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
