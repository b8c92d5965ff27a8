/*
 * test_cli_report_browser.c - `orch report` pages opened in a real browser
 * (Debian's headless Chromium, installed by `make test` through
 * scripts/install-deps.sh --browser; skipped with the reason printed where
 * it is missing or cannot start).
 *
 * The store holds the shipped pipelines (surgery, detach, LoRA, and
 * nan-repro with stage statistics every step) and a small sweep (two
 * strategies x two seeds). Two pages, one browser launch each (the DOM
 * after the page's script ran, with --dump-dom, and a screenshot in the
 * same launch). Checked in the DOM: no console message at all (Chromium
 * logs them to stderr with --enable-logging=stderr, SVG attribute errors
 * included) and no error recorded by the page's own handler, the script
 * ran, one path per run in each chart, the nan-repro run's NaN marker at
 * the step the store recorded and at that step's x, the heat map's outlined
 * cell at the first NaN event, the sweep's bands and ranked groups.
 * Screenshots: BUILD/tests/out/report/{runs,sweep}.png.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    char out[PATH_MAX + 32]; /* where pages and screenshots are kept */
    char browser[64];
    char pipeline_path[PATH_MAX + 32];
} fixture;

static char skip_reason[256];

static void orch_ok(fixture *f, const char *const *args)
{
    const char *argv[24];
    int n = 0;
    for (; args[n] != NULL && n < 20; n++)
        argv[n] = args[n];
    argv[n++] = "--db";
    argv[n++] = f->db;
    argv[n] = NULL;
    const char *env[] = {f->pipeline_path, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, env, &r), 0);
    if (r.exit_code != 0 && !(r.exit_code == 1 && strstr(r.err, " diverged") != NULL))
        fail_msg("orch %s %s: exit %d: %s", args[0], args[1], r.exit_code, r.err);
    cli_result_free(&r);
}

/* The one value a query answers (CSV: the second line), into buf. */
static void query1(fixture *f, const char *sql, char *buf, size_t n)
{
    const char *argv[] = {"query", "--csv", "--db", f->db, sql, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    assert_int_equal(r.exit_code, 0);
    const char *line = strchr(r.out, '\n');
    assert_non_null(line);
    snprintf(buf, n, "%s", line + 1);
    buf[strcspn(buf, "\r\n")] = '\0';
    cli_result_free(&r);
}

static int setup(void **state)
{
    static fixture fx;
    fixture *f = &fx;
    *state = f;
    skip_reason[0] = '\0';
    cli_result r;
    if (run_shell("command -v chromium || command -v chromium-browser", &r) != 0 ||
        r.exit_code != 0) {
        snprintf(skip_reason, sizeof skip_reason,
                 "no chromium on PATH (make test installs Debian's chromium through "
                 "scripts/install-deps.sh --browser; here it is missing)");
        cli_result_free(&r);
        return 0;
    }
    snprintf(f->browser, sizeof f->browser, "%s",
             strstr(r.out, "chromium-browser") != NULL ? "chromium-browser" : "chromium");
    cli_result_free(&r);
    if (make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    /* BUILD/tests/out/report beside the binary under test */
    char bin[PATH_MAX];
    if (realpath(orch_bin(), bin) == NULL)
        return -1;
    snprintf(f->out, sizeof f->out, "%s/tests/out/report", dirname(bin));
    /* BUILD/tests exists (the tests are built there) */
    char *report_dir = strrchr(f->out, '/');
    *report_dir = '\0';
    mkdir(f->out, 0755);
    *report_dir = '/';
    mkdir(f->out, 0755);
    struct stat sb;
    if (stat(f->out, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return -1;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return -1;
    snprintf(f->pipeline_path, sizeof f->pipeline_path, "ORCH_PIPELINE_PATH=%s/pipelines", cwd);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->dir[0] != '\0')
        remove_tree(f->dir);
    return 0;
}

/* Loads page in one headless launch: its DOM (after scripts) into a
 * malloc'd string, the screenshot to png, console lines into *console
 * (malloc'd, "" when none). */
static char *browse(fixture *f, const char *page, const char *png, char **console)
{
    char cmd[4 * PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd,
             "timeout -k 5 180 %s --headless --no-sandbox --disable-gpu --hide-scrollbars "
             "--no-first-run --disable-extensions --enable-logging=stderr --v=0 "
             "--user-data-dir='%s/profile' --window-size=1100,2600 --screenshot='%s' "
             "--dump-dom 'file://%s' 2>'%s/browser.log'",
             f->browser, f->dir, png, page, f->dir);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    if (r.exit_code != 0 || strstr(r.out, "</html>") == NULL) {
        char log[600];
        snprintf(log, sizeof log, "%s/browser.log", f->dir);
        char *text = read_whole_file(log, NULL);
        /* no DOM at all: the browser did not start (missing libraries, no
         * /dev/shm, ...), which says nothing of the page: skipped, saying why */
        if (r.out[0] == '\0') {
            print_message("skipped: %s could not start (exit %d); its log: %.1500s\n", f->browser,
                          r.exit_code, text != NULL ? text : "");
            free(text);
            cli_result_free(&r);
            skip();
        }
        fail_msg("%s exited %d; its log: %.2000s", f->browser, r.exit_code,
                 text != NULL ? text : "");
    }
    char *dom = strdup(r.out);
    cli_result_free(&r);
    /* the console lines of the log ("...:INFO:CONSOLE(12)] "message", source: ...") */
    char log[600];
    snprintf(log, sizeof log, "%s/browser.log", f->dir);
    char *text = read_whole_file(log, NULL);
    size_t cap = 1, at = 0;
    *console = calloc(1, 1);
    for (char *line = text != NULL ? strtok(text, "\n") : NULL; line != NULL;
         line = strtok(NULL, "\n")) {
        if (strstr(line, ":CONSOLE") == NULL)
            continue;
        size_t k = strlen(line);
        cap += k + 1;
        *console = realloc(*console, cap);
        memcpy(*console + at, line, k);
        at += k;
        (*console)[at++] = '\n';
        (*console)[at] = '\0';
    }
    free(text);
    return dom;
}

static char *section(const char *page, const char *open, const char *close)
{
    const char *a = strstr(page, open);
    if (a == NULL)
        fail_msg("no %s in the page", open);
    const char *b = strstr(a, close);
    assert_non_null(b);
    return strndup(a, (size_t)(b - a));
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The value of attribute name in the tag starting at tag, into buf. */
static void attr(const char *tag, const char *name, char *buf, size_t n)
{
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(tag, '>');
    const char *a = strstr(tag, key);
    if (a == NULL || (end != NULL && a > end))
        fail_msg("no %s in %.200s", name, tag);
    a += strlen(key);
    size_t k = strcspn(a, "\"");
    snprintf(buf, n, "%.*s", (int)(k < n - 1 ? k : n - 1), a);
}

/* Every run of ids has exactly one path.curve in chart id. */
static void one_path_per_run(const char *dom, const char *id, const int *ids, int n)
{
    char open[64];
    snprintf(open, sizeof open, "<svg id=\"%s\"", id);
    char *chart = section(dom, open, "</svg>");
    assert_int_equal(count(chart, "<path class=\"curve\""), (size_t)n);
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "<path class=\"curve\" data-key=\"run-%d\"", ids[i]);
        if (count(chart, want) != 1)
            fail_msg("%s: run %d has %zu paths", id, ids[i], count(chart, want));
    }
    free(chart);
}

static void page_is_clean(const char *dom, const char *console)
{
    if (console[0] != '\0')
        fail_msg("console messages:\n%s", console);
    assert_non_null(strstr(dom, "data-js=\"ok\""));
    assert_null(strstr(dom, "data-errors="));
}

static void check_png(const char *png)
{
    struct stat sb;
    assert_int_equal(stat(png, &sb), 0);
    assert_true(sb.st_size > 10000);
    unsigned char magic[8] = {0};
    FILE *fp = fopen(png, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(magic, 1, 8, fp), 8);
    fclose(fp);
    assert_int_equal(memcmp(magic, "\x89PNG\r\n\x1a\n", 8), 0);
}

static void test_shipped_pipelines(void **state)
{
    fixture *f = *state;
    if (skip_reason[0] != '\0') {
        print_message("skipped: %s\n", skip_reason);
        skip();
    }
    const char *surgery[] = {"run",   "pipelines/surgery.lua", "--quiet",
                             "--set", "schedule.steps=6",      NULL};
    const char *detach[] = {"run",   "pipelines/detach.lua", "--quiet",
                            "--set", "schedule.steps=6",     NULL};
    const char *lora[] = {"run",   "pipelines/lora.lua", "--quiet",
                          "--set", "schedule.steps=6",   NULL};
    const char *nan[] = {"run",   "pipelines/nan-repro.lua", "--quiet",
                         "--set", "checks.stats_every=1",    NULL};
    orch_ok(f, surgery);
    orch_ok(f, detach);
    orch_ok(f, lora);
    orch_ok(f, nan);
    char page[PATH_MAX + 64], png[PATH_MAX + 64];
    snprintf(page, sizeof page, "%s/runs.html", f->out);
    snprintf(png, sizeof png, "%s/runs.png", f->out);
    const char *rep[] = {"report", "1", "2", "3", "4", "-o", page, NULL};
    orch_ok(f, rep);

    char *console = NULL;
    char *dom = browse(f, page, png, &console);
    page_is_clean(dom, console);
    const int ids[] = {1, 2, 3, 4};
    one_path_per_run(dom, "chart-loss", ids, 4);
    one_path_per_run(dom, "chart-grad-norm", ids, 4);

    /* nan-repro's grad_norm is not finite from the step of its first NaN
     * event: the marker is there, at that step's x */
    char want_step[64], first_event[64];
    query1(f,
           "SELECT min(step) FROM steps WHERE run_id = 4 AND (grad_norm IS NULL OR "
           "abs(grad_norm) >= 9e999)",
           want_step, sizeof want_step);
    query1(f, "SELECT first_nan_step FROM run_summary WHERE run_id = 4", first_event,
           sizeof first_event);
    assert_string_equal(want_step, first_event);
    char *chart = section(dom, "<svg id=\"chart-grad-norm\"", "</svg>");
    char *marker = section(chart, "<path class=\"nan\" data-key=\"run-4\"", ">");
    char step[32], x[32], px0[32], px1[32], x0[32], x1[32];
    attr(marker, "data-step", step, sizeof step);
    attr(marker, "data-x", x, sizeof x);
    attr(chart, "data-px0", px0, sizeof px0);
    attr(chart, "data-px1", px1, sizeof px1);
    attr(chart, "data-x0", x0, sizeof x0);
    attr(chart, "data-x1", x1, sizeof x1);
    assert_string_equal(step, want_step);
    double want_x =
        atof(px0) + (atof(step) - atof(x0)) / (atof(x1) - atof(x0)) * (atof(px1) - atof(px0));
    assert_true(fabs(atof(x) - want_x) < 0.06);
    /* and the marker's first triangle is drawn there */
    char d[64];
    attr(marker, "d", d, sizeof d);
    assert_true(fabs(atof(d + 1) - want_x) < 0.06);
    free(marker);
    free(chart);

    /* the heat map outlines the first event's stage at its step */
    char stage[128], event_step[32];
    query1(f,
           "SELECT stage FROM nan_events WHERE run_id = 4 AND tensor IS NOT 'frozen_changed' "
           "ORDER BY step, id LIMIT 1",
           stage, sizeof stage);
    query1(f,
           "SELECT step FROM nan_events WHERE run_id = 4 AND tensor IS NOT 'frozen_changed' "
           "ORDER BY step, id LIMIT 1",
           event_step, sizeof event_step);
    char *heat = section(dom, "<svg id=\"heatmap-4\"", "</svg>");
    assert_int_equal(count(heat, "class=\"first\""), 1);
    char *first = section(heat, "<rect class=\"first\"", ">");
    char got_stage[128], got_step[32];
    attr(first, "data-stage", got_stage, sizeof got_stage);
    attr(first, "data-step", got_step, sizeof got_step);
    assert_string_equal(got_stage, stage);
    assert_string_equal(got_step, event_step);
    free(first);
    free(heat);
    /* the compare table has the four runs */
    assert_int_equal(count(dom, "<tr data-run="), 4);
    free(dom);
    free(console);
    check_png(png);
    print_message("screenshot: %s\n", png);
}

static void test_small_sweep(void **state)
{
    fixture *f = *state;
    if (skip_reason[0] != '\0') {
        print_message("skipped: %s\n", skip_reason);
        skip();
    }
    char file[400];
    snprintf(file, sizeof file, "%s/small.lua", f->dir);
    assert_int_equal(write_text_file(file,
                                     "local base = require \"base\"\n"
                                     "return sweep {\n"
                                     "    name = \"small\",\n"
                                     "    base = extend(base, { schedule = { steps = 4 } }),\n"
                                     "    grid = { strategy = { detach { adapter = "
                                     "\"linear\" }, lora { rank = 4, alpha = 8 } } },\n"
                                     "    seeds = { 1, 2 },\n"
                                     "}\n"),
                     0);
    const char *sweep[] = {"sweep", file, "--quiet", NULL};
    orch_ok(f, sweep);
    char id[32];
    query1(f, "SELECT id FROM sweeps WHERE name = 'small'", id, sizeof id);
    char page[PATH_MAX + 64], png[PATH_MAX + 64];
    snprintf(page, sizeof page, "%s/sweep.html", f->out);
    snprintf(png, sizeof png, "%s/sweep.png", f->out);
    const char *rep[] = {"report", "--sweep", id, "-o", page, NULL};
    orch_ok(f, rep);
    char *console = NULL;
    char *dom = browse(f, page, png, &console);
    page_is_clean(dom, console);
    int ids[4];
    char buf[32];
    for (int i = 0; i < 4; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT run_id FROM sweep_runs WHERE sweep_id = %s ORDER BY run_id LIMIT 1 "
                 "OFFSET %d",
                 id, i);
        query1(f, sql, buf, sizeof buf);
        ids[i] = atoi(buf);
    }
    one_path_per_run(dom, "chart-loss", ids, 4);
    one_path_per_run(dom, "chart-grad-norm", ids, 4);
    /* one band and one mean per group of seeds; the ranked groups */
    char *bands = section(dom, "<svg id=\"chart-bands\"", "</svg>");
    assert_int_equal(count(bands, "<path class=\"band\""), 2);
    assert_int_equal(count(bands, "<path class=\"curve\""), 2);
    free(bands);
    char *table = section(dom, "<table id=\"sweep-groups\"", "</table>");
    assert_int_equal(count(table, "<tr>"), 3); /* header and two groups */
    free(table);
    free(dom);
    free(console);
    check_png(png);
    print_message("screenshot: %s\n", png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_pipelines),
        cmocka_unit_test(test_small_sweep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
