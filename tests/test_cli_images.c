/* test_cli_images.c - the `images` data source through the orch binary:
 * plan-time refusals (exit 2, one line naming the file, no run in the
 * store, for both `orch plan` and `orch run`; FIFOs included, which must
 * not block), a corrupt image body found
 * during the run (one line naming the file, the run recorded `failed`, the
 * store readable), and the shipped pipelines/images.lua. */
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

static void shell(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    if (r.exit_code != 0)
        fail_msg("%s: %s", cmd, r.err);
    cli_result_free(&r);
}

/* A pipeline over the images of DIR/NAME (labels: LABELS, "" for
 * sub-folders), the tiny tower, small processor bounds. */
static const char *write_pipeline(const char *name, const char *labels)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    char text[2048];
    snprintf(text, sizeof text,
             "return {\n"
             "  model = { preset = \"tiny\" },\n"
             "  data = images { dir = \"%s\"%s%s%s },\n"
             "  processor = { min_pixels = 16, max_pixels = 400 },\n"
             "  strategy = lora { rank = 2, alpha = 4 },\n"
             "  head = { kind = \"classifier\", classes = 2 },\n"
             "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
             "  schedule = { steps = 3, batch_size = 2 },\n"
             "}\n",
             name, labels[0] ? ", labels = \"" : "", labels, labels[0] ? "\"" : "");
    assert_int_equal(write_text_file(path, text), 0);
    return path;
}

static int count_runs(const char *db, const char *where)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) AS n FROM runs %s", where);
    const char *argv[] = {"query", "--db", db, "--csv", sql, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    int n = 0;
    if (r.exit_code == 0) {
        const char *nl = strchr(r.out, '\n');
        n = nl != NULL ? atoi(nl + 1) : -1;
    }
    cli_result_free(&r);
    return n;
}

/* orch CMD PIPELINE: exit code, one line on stderr containing want. */
static void expect_one_line(const char *cmd, const char *pipeline, int code, const char *want,
                            const char *db)
{
    const char *argv[] = {cmd, "--db", db, pipeline, NULL};
    const char *env[] = {"ORCH_THREADS=1", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    if (r.exit_code != code || strstr(r.err, want) == NULL || strncmp(r.err, "orch: ", 6) != 0)
        fail_msg("orch %s %s: want exit %d and '%s', got exit %d, stderr: %s", cmd, pipeline, code,
                 want, r.exit_code, r.err);
    const char *newline = strchr(r.err, '\n');
    assert_non_null(newline);
    assert_string_equal(newline + 1, "");
    cli_result_free(&r);
}

static void expect_refused(const char *pipeline, const char *want)
{
    char db[512];
    snprintf(db, sizeof db, "%s/refused.db", dir);
    expect_one_line("plan", pipeline, 2, want, db);
    expect_one_line("run", pipeline, 2, want, db);
    assert_int_equal(count_runs(db, ""), 0);
}

static void test_plan_time_refusals(void **state)
{
    (void)state;
    expect_refused(write_pipeline("nowhere", ""), "/nowhere: cannot open folder: No such file");
    shell("mkdir -p '%s/empty'", dir, "");
    expect_refused(write_pipeline("empty", ""), "/empty: empty folder: no images");
    shell("mkdir -p '%s/d' && cp tests/data/images/png_rgb8.png '%s/d/a.png'", dir, dir);
    shell("cp tests/data/images/bad_cmyk.jpg '%s/d/cmyk.jpg' && printf 'file,label\\na.png,0\\n"
          "gone.png,1\\n' > '%s/missing.csv'",
          dir, dir);
    expect_refused(write_pipeline("d", "missing.csv"), "missing.csv:3: ");
    expect_refused(write_pipeline("d", "missing.csv"), "/d/gone.png: cannot open: No such file");
    shell("printf 'file,label\\na.png,0\\ncmyk.jpg,1\\n' > '%s/cmyk.csv'%s", dir, "");
    expect_refused(write_pipeline("d", "cmyk.csv"), "cmyk.csv:3: /");
    expect_refused(write_pipeline("d", "cmyk.csv"),
                   "/d/cmyk.jpg: CMYK JPEG is not supported; convert it to RGB");
    shell("printf 'file,label\\na.png,2\\n' > '%s/range.csv'%s", dir, "");
    expect_refused(write_pipeline("d", "range.csv"),
                   "range.csv:2: label 2 is outside [0, 2) (head.classes = 2)");
    /* a FIFO where an image should be is refused, never opened for a
     * blocking read (the test would hang): named by the CSV, or in the
     * folder under an image's name */
    shell("mkfifo '%s/d/pipe.jpg' && printf 'file,label\na.png,0\npipe.jpg,1\n' > "
          "'%s/fifo.csv'",
          dir, dir);
    expect_refused(write_pipeline("d", "fifo.csv"), "/d/pipe.jpg: not a regular file (a FIFO)");
    shell("mkdir -p '%s/f/cat' '%s/f/dog'", dir, dir);
    shell("cp tests/data/images/png_rgb8.png '%s/f/cat/a.png' && mkfifo '%s/f/dog/b.jpg'", dir,
          dir);
    expect_refused(write_pipeline("f", ""),
                   "/f/dog/b.jpg: named like an image but not a regular file");
}

static void test_corrupt_body_fails_the_run(void **state)
{
    (void)state;
    shell("mkdir -p '%s/rt/a' '%s/rt/b'", dir, dir);
    shell("cp tests/data/images/png_rgb8.png '%s/rt/a/x.png' && "
          "cp tests/data/images/bad_truncated.jpg '%s/rt/b/y.jpg'",
          dir, dir);
    char db[512];
    snprintf(db, sizeof db, "%s/rt.db", dir);
    const char *pipeline = write_pipeline("rt", "");
    const char *plan[] = {"plan", pipeline, NULL};
    cli_result r;
    assert_int_equal(run_orch(plan, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0); /* the headers are intact */
    cli_result_free(&r);
    expect_one_line("run", pipeline, 2, "/rt/b/y.jpg: corrupt JPEG: Premature end of JPEG file",
                    db);
    assert_int_equal(count_runs(db, "WHERE status = 'failed'"), 1);
    assert_int_equal(count_runs(db, ""), 1);
}

static void test_shipped_pipeline(void **state)
{
    (void)state;
    char db[512];
    snprintf(db, sizeof db, "%s/shipped.db", dir);
    const char *argv[] = {
        "run", "--db", db, "pipelines/images.lua", "--set", "schedule.steps=8", "--quiet", NULL};
    const char *env[] = {"ORCH_THREADS=1", NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch run pipelines/images.lua: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    assert_int_equal(count_runs(db, "WHERE status = 'finished'"), 1);
    /* evaluated on the held-out folder at the last step */
    const char *q[] = {
        "query",
        "--db",
        db,
        "--csv",
        "SELECT count(*) AS n FROM metrics WHERE name = 'eval/accuracy' AND step = 7",
        NULL};
    assert_int_equal(run_orch(q, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\n1"));
    cli_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_time_refusals),
        cmocka_unit_test(test_corrupt_body_fails_the_run),
        cmocka_unit_test(test_shipped_pipeline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
