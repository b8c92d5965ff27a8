/* test_cli_perf_doc.c - scripts/gen_perf_doc.sh, the generator of
 * docs/performance.md (`make bench-doc`): from a template, bench outputs with
 * FIGURE lines and a reasons file, it lists every figure with its value,
 * target and verdict, gives each MISSED figure its reason (exact id, or a
 * pattern with `*` anywhere), prints "MISSED (no reason recorded)" and a warning for a
 * MISSED figure without one, copies a program's human output without its
 * FIGURE lines, and ends with "N met, M MISSED". POSIX sh + awk only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(dir, sizeof dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

static void write_in_dir(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(write_text_file(path, text), 0);
}

static const char template_text[] = "# Perf\n"
                                    "@@SUMMARY@@\n"
                                    "## A\n"
                                    "@@OUTPUT prog@@\n"
                                    "@@FIGURES a.@@\n"
                                    "## Not run\n"
                                    "@@OUTPUT absent@@\n"
                                    "@@FIGURES z.@@\n"
                                    "## Others\n"
                                    "@@OTHER_FIGURES@@\n"
                                    "## Missed\n"
                                    "@@MISSED@@\n";

static const char prog_output[] = "prog: a human line\n"
                                  "FIGURE\ta.met\t0.91\tx sgemm\t>=0.8\tmet\tmet figure\n"
                                  "FIGURE\ta.why\t0.5\tx sgemm\t>=0.8\tMISSED\texact reason\n"
                                  "FIGURE\ta.group.one\t0.4\tx\t>=0.8\tMISSED\tprefix reason\n"
                                  "FIGURE\ta.nr\t0.3\tx\t>=0.8\tMISSED\tno reason\n"
                                  "FIGURE\ta.mid.t2.r\t0.2\tx\t>=0.8\tMISSED\tglob reason\n"
                                  "FIGURE\ta.info\t12.5\tms\t-\tinfo\tjust a value\n"
                                  "prog: another human line\n";

static const char other_output[] = "FIGURE\tb.x\t3\tms\t<5\tmet\tanother program's figure\n";

static const char reasons_text[] = "# comment\n"
                                   "a.why\tbecause of X\n"
                                   "a.group.*\tthe whole group: Y\n"
                                   "a.*.t2.r\ta glob in the middle: Z\n"
                                   "a.n.\tnot a pattern: never matches a.nr\n";

/* Runs the generator on the files in dir; the result in *r, the doc returned
 * (owned by the caller). */
static char *generate(cli_result *r)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "sh scripts/gen_perf_doc.sh %s/tpl.md.in %s/why.txt %s/out.md %s/prog.txt "
             "%s/other.txt",
             dir, dir, dir, dir, dir);
    assert_int_equal(run_shell(cmd, r), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/out.md", dir);
    return read_whole_file(path, NULL);
}

static void write_inputs(void)
{
    write_in_dir("tpl.md.in", template_text);
    write_in_dir("prog.txt", prog_output);
    write_in_dir("other.txt", other_output);
    write_in_dir("why.txt", reasons_text);
}

static void test_every_figure_with_verdict_and_reason(void **state)
{
    (void)state;
    write_inputs();
    cli_result r;
    char *doc = generate(&r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "| `a.met` | 0.91 | x sgemm | >=0.8 | met | met figure |"));
    assert_non_null(strstr(doc, "| `a.why` | 0.5 | x sgemm | >=0.8 | **MISSED**: because of X |"));
    assert_non_null(
        strstr(doc, "| `a.group.one` | 0.4 | x | >=0.8 | **MISSED**: the whole group: Y"));
    assert_non_null(strstr(doc, "| `a.nr` | 0.3 | x | >=0.8 | **MISSED** (no reason recorded) |"));
    assert_non_null(
        strstr(doc, "| `a.mid.t2.r` | 0.2 | x | >=0.8 | **MISSED**: a glob in the middle: Z"));
    assert_non_null(strstr(doc, "| `a.info` | 12.5 | ms | - | - | just a value |"));
    /* the summary counts every output's figures */
    assert_non_null(strstr(doc, "**2 met, 4 MISSED** (and 1 figures without a target)"));
    assert_non_null(strstr(r.out, "2 met, 4 MISSED"));
    free(doc);
    cli_result_free(&r);
}

static void test_missed_without_reason_warns(void **state)
{
    (void)state;
    write_inputs();
    cli_result r;
    char *doc = generate(&r);
    assert_non_null(strstr(r.err, "warning: a.nr is MISSED and has no reason"));
    assert_null(strstr(r.err, "a.why")); /* has one */
    assert_non_null(strstr(doc, "- `a.nr` = 0.3 x (target >=0.8): MISSED (no reason recorded)"));
    assert_non_null(strstr(doc, "- `a.why` = 0.5 x sgemm (target >=0.8): because of X"));
    free(doc);
    cli_result_free(&r);
}

static void test_outputs_and_other_figures(void **state)
{
    (void)state;
    write_inputs();
    cli_result r;
    char *doc = generate(&r);
    /* the human output, without its FIGURE lines */
    assert_non_null(strstr(doc, "```\nprog: a human line\nprog: another human line\n```\n"));
    assert_null(strstr(doc, "FIGURE\t"));
    assert_non_null(strstr(doc, "(not run: no build/bench/out/absent.txt)"));
    assert_non_null(strstr(doc, "(no figure `z.*` in the bench outputs: not run)"));
    /* b.x is under no @@FIGURES@@ prefix: it lands in @@OTHER_FIGURES@@, once */
    char *others = strstr(doc, "## Others");
    assert_non_null(others);
    assert_non_null(strstr(others, "| `b.x` | 3 | ms | <5 | met |"));
    assert_int_equal(strstr(doc, "`b.x`") - doc, strstr(others, "`b.x`") - doc);
    free(doc);
    cli_result_free(&r);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    cli_result r;
    assert_int_equal(run_shell("sh scripts/gen_perf_doc.sh only-one", &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "usage: gen_perf_doc.sh"));
    cli_result_free(&r);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh scripts/gen_perf_doc.sh %s/missing.in %s/why.txt %s/x.md", dir,
             dir, dir);
    write_in_dir("why.txt", reasons_text);
    assert_int_equal(run_shell(cmd, &r), 0);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "cannot read"));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_figure_with_verdict_and_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missed_without_reason_warns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outputs_and_other_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
