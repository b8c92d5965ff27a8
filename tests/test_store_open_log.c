/*
 * test_store_open_log.c - the ORCH_STORE_OPEN_LOG debug hook
 * (store/open_log.c): every orch_store_open appends "HOST PID PATH" to the
 * file the variable names, failed opens included; without the variable
 * nothing is written. tests/test_cli_sweep_multihost.c relies on it to
 * check that only the coordinator's host opened a sweep's store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/testutil.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    char log[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    snprintf(f->log, sizeof f->log, "%s/open.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unsetenv("ORCH_STORE_OPEN_LOG");
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void test_every_open_is_logged(void **state)
{
    fixture *f = *state;
    assert_int_equal(setenv("ORCH_STORE_OPEN_LOG", f->log, 1), 0);
    orch_store *s = NULL;
    orch_err err;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    orch_store_close(s);
    /* a refused open is logged as well: it tried to touch the store */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/none/orch.db", f->dir);
    assert_int_not_equal(orch_store_open(missing, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    assert_null(s);

    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = '\0';
    char want[2048];
    snprintf(want, sizeof want, "%s %lld %s\n%s %lld %s\n%s %lld %s\n", host, (long long)getpid(),
             f->db, host, (long long)getpid(), f->db, host, (long long)getpid(), missing);
    char *got = read_whole_file(f->log, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_nothing_without_the_variable(void **state)
{
    fixture *f = *state;
    unsetenv("ORCH_STORE_OPEN_LOG");
    orch_store *s = NULL;
    orch_err err;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    orch_store_close(s);
    assert_int_not_equal(access(f->log, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_open_is_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_without_the_variable, setup, teardown),
    };
    return cmocka_run_group_tests_name("store open log", tests, NULL, NULL);
}
