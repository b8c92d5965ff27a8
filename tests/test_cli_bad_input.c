/*
 * test_cli_bad_input.c - the bad-input suite through the orch binary.
 *
 * For every malformed pipeline of tests/bad/cases.h, both `orch plan` and
 * `orch run` (with --db in a fresh temporary directory) must:
 *   - exit with code 2 (invalid input);
 *   - print exactly one line on stderr, starting with "orch: " and
 *     containing the case's expected text (FILE:LINE where there is one);
 *   - write no run to the store: the database file does not exist, or
 *     `orch query "SELECT count(*) FROM runs"` prints 0.
 * One cmocka test per case, named after the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bad/cases.h"
#include "tests/testutil.h"

#define ESCAPE_MARKER "/tmp/orch-sandbox-escape" /* sandbox_os_execute.lua would touch it */

typedef struct fixture {
    char dir[512];
    char db[600];
    const bad_case *c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->c = *state;
    if (make_temp_dir(f->dir, sizeof f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/runs.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* stderr must be exactly one line "orch: ..." containing expect. */
static void check_one_line(const char *cmd, const char *err, const char *expect)
{
    size_t len = strlen(err);
    const char *nl = strchr(err, '\n');
    if (strncmp(err, "orch: ", 6) != 0 || nl == NULL || nl != err + len - 1 ||
        strstr(err, expect) == NULL) {
        print_error("orch %s: expected one line \"orch: ...%s...\" on stderr, got:\n%s\n", cmd,
                    expect, err);
        fail();
    }
}

/* The store holds no run: no file, or a count of 0. */
static void check_no_rows(const char *db)
{
    if (access(db, F_OK) != 0)
        return;
    const char *argv[] = {"query", "--db", db, "--csv", "SELECT count(*) FROM runs", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    int rows = -1;
    if (r.exit_code == 0) {
        /* the last non-empty line of the CSV is the count */
        char *line = NULL;
        for (char *tok = strtok(r.out, "\r\n"); tok != NULL; tok = strtok(NULL, "\r\n"))
            line = tok;
        if (line != NULL)
            rows = atoi(line);
    }
    if (r.exit_code != 0 || rows != 0) {
        print_error("store %s: expected no runs; orch query exited %d with:\n%s%s\n", db,
                    r.exit_code, r.out, r.err);
        cli_result_free(&r);
        fail();
    }
    cli_result_free(&r);
}

static void test_bad_case(void **state)
{
    fixture *f = *state;
    static const char *const commands[] = {"plan", "run"};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {commands[i], "--db", f->db, f->c->file, NULL};
        cli_result r;
        assert_int_equal(run_orch(argv, NULL, &r), 0);
        if (r.exit_code != 2) {
            print_error("orch %s %s: exit code %d, expected 2; stderr:\n%s\n", commands[i],
                        f->c->file, r.exit_code, r.err);
            cli_result_free(&r);
            fail();
        }
        check_one_line(commands[i], r.err, f->c->expect);
        cli_result_free(&r);
        check_no_rows(f->db);
    }
    assert_int_equal(access(ESCAPE_MARKER, F_OK), -1);
}

int main(void)
{
    struct CMUnitTest tests[N_BAD_CASES];
    for (size_t i = 0; i < N_BAD_CASES; i++) {
        const char *name = strrchr(bad_cases[i].file, '/');
        tests[i].name = name ? name + 1 : bad_cases[i].file;
        tests[i].test_func = test_bad_case;
        tests[i].setup_func = setup;
        tests[i].teardown_func = teardown;
        tests[i].initial_state = (void *)&bad_cases[i];
    }
    unlink(ESCAPE_MARKER);
    return cmocka_run_group_tests_name("cli bad input", tests, NULL, NULL);
}
