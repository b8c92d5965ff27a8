/*
 * test_cli_report.c - `orch report` through the binary: selections refused
 * with one line and exit 2 (nothing written, an existing page untouched),
 * the page written atomically (no temporary file left, replaced whole),
 * --tag and --pipeline selections, and the help text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/testutil.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    char page[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    snprintf(f->page, sizeof f->page, "%s/page.html", f->dir);
    const char *names[] = {"first", "second"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"run",   "pipelines/lora.lua", "--db",   f->db,    "--quiet",
                              "--set", "schedule.steps=3",   "--name", names[i], NULL};
        cli_result r;
        if (run_orch(argv, NULL, &r) != 0 || r.exit_code != 0) {
            fprintf(stderr, "setup: %s", r.err);
            return -1;
        }
        cli_result_free(&r);
    }
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

/* Runs orch report with args (NULL-terminated) on the fixture's store. */
static cli_result report(fixture *f, const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char *argv[10] = {"report", "--db", f->db};
    int n = 3;
    const char *args[] = {a0, a1, a2, a3};
    for (int i = 0; i < 4 && args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    return r;
}

/* One line on stderr, nothing on stdout, exit 2, containing want. */
static void refused(cli_result r, const char *want)
{
    if (r.exit_code != 2 || strstr(r.err, want) == NULL)
        fail_msg("exit %d, stderr: %s (wanted: %s)", r.exit_code, r.err, want);
    assert_int_equal(strlen(r.out), 0);
    const char *nl = strchr(r.err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    cli_result_free(&r);
}

/* Files in dir whose name contains part. */
static int files_with(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void test_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_text_file(f->page, "keep"), 0);
    refused(report(f, "1", NULL, NULL, NULL), "report: name the page to write with -o");
    refused(report(f, "-o", f->page, NULL, NULL), "report: name runs (orch report 1 2 3)");
    refused(report(f, "1", "-o", NULL, NULL), "report: name the page to write with -o");
    refused(report(f, "9", "-o", f->page, NULL), "report: no run 9 in ");
    refused(report(f, "x", "-o", f->page, NULL), "report:");
    refused(report(f, "--tag", "nope", "-o", f->page), "report: no runs in ");
    refused(report(f, "--pipeline", "nope.lua", "-o", f->page), "--pipeline nope.lua");
    refused(report(f, "--sweep", "3", "-o", f->page), "report: no sweep 3 in ");
    refused(report(f, "--sweep", "x", "-o", f->page), "report: 'x' is not a sweep id");
    refused(report(f, "--sweep", "1", "1", "--output=x.html"), "takes no run ids");
    refused(report(f, "1", "--colour", "-o", f->page), "unknown option '--colour'");
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no/such/dir/page.html", f->dir);
    refused(report(f, "1", "-o", missing, NULL), "report: cannot write ");
    /* the page that was there is untouched, and nothing else was left */
    char *text = read_whole_file(f->page, NULL);
    assert_string_equal(text, "keep");
    free(text);
    assert_int_equal(files_with(f->dir, ".tmp-"), 0);
}

static void test_written_atomically(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_text_file(f->page, "old page that is longer than nothing"), 0);
    cli_result r = report(f, "2", "1", "-o", f->page);
    if (r.exit_code != 0)
        fail_msg("exit %d: %s", r.exit_code, r.err);
    assert_int_equal(strlen(r.out), 0);
    cli_result_free(&r);
    size_t size = 0;
    char *page = read_whole_file(f->page, &size);
    assert_non_null(page);
    assert_int_equal(strncmp(page, "<!DOCTYPE html>", 15), 0);
    assert_non_null(strstr(page, "</html>\n"));
    assert_null(strstr(page, "old page"));
    /* the two runs, second first as asked */
    const char *second = strstr(page, "<li data-key=\"run-2\"");
    const char *first = strstr(page, "<li data-key=\"run-1\"");
    assert_non_null(second);
    assert_non_null(first);
    assert_true(second < first);
    /* the pipeline file's text is shown (it is still there) */
    assert_non_null(strstr(page, "local base = require"));
    free(page);
    assert_int_equal(files_with(f->dir, ".tmp-"), 0);
    struct stat sb;
    assert_int_equal(stat(f->page, &sb), 0);
    assert_true((sb.st_mode & 0044) != 0); /* readable like any file the user writes */
}

static void test_selections(void **state)
{
    fixture *f = *state;
    cli_result r = report(f, "--pipeline", "lora.lua", "--output", f->page);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    char *page = read_whole_file(f->page, NULL);
    assert_non_null(strstr(page, "<title>orch report: runs of lora.lua</title>"));
    assert_non_null(strstr(page, "<li data-key=\"run-1\""));
    assert_non_null(strstr(page, "<li data-key=\"run-2\""));
    free(page);
    r = report(f, "--tag", "tiny", "-o", f->page);
    assert_int_equal(r.exit_code, 0);
    cli_result_free(&r);
    page = read_whole_file(f->page, NULL);
    assert_non_null(strstr(page, "runs tagged tiny"));
    free(page);
}

static void test_help(void **state)
{
    (void)state;
    const char *argv[] = {"report", "--help", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: orch report RUN... | --pipeline FILE | --tag TAG"));
    assert_non_null(strstr(r.out, "orch report --sweep ID -o FILE.html"));
    cli_result_free(&r);
    const char *list[] = {"help", NULL};
    assert_int_equal(run_orch(list, NULL, &r), 0);
    assert_non_null(strstr(r.out, "report"));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_written_atomically),
        cmocka_unit_test(test_selections),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
