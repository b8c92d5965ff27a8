/*
 * test_store_report_html.c - `orch report`'s reading (store/report_read.c)
 * and page (store/render_html.c, store/plot.c) without a browser: the
 * structure of the HTML of zero runs, one run, a run with no steps, a run
 * whose every value is NaN, 200 runs; the size of 200 runs x 1,000 steps;
 * decimation keeping extremes and NaN markers; escaping; and what is read
 * from a store (steps, eval metrics, NaN events, stage statistics in tower
 * order, selections refused with one line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/report_html.h"
#include "store/store.h"
#include "store/sweeps.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------ helpers */

static char *render(const orch_html_report *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    orch_err err = {0};
    int rc = orch_render_html_report(r, mem, &err);
    fclose(mem);
    if (rc != ORCH_OK)
        fail_msg("render: %s", err.msg);
    return text;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The text of the element whose opening tag starts with `open` up to the
 * next `close`, malloc'd. */
static char *section(const char *page, const char *open, const char *close)
{
    const char *a = strstr(page, open);
    if (a == NULL)
        fail_msg("no %s in the page", open);
    const char *b = strstr(a, close);
    assert_non_null(b);
    return strndup(a, (size_t)(b - a));
}

/* What every page must be: a complete document, balanced elements, one
 * script error recorder, no external resource. */
static void check_page(const char *page)
{
    assert_int_equal(strncmp(page, "<!DOCTYPE html>\n", 16), 0);
    assert_non_null(strstr(page, "</html>\n"));
    const char *pairs[][2] = {{"<svg", "</svg>"},         {"<table", "</table>"},
                              {"<details", "</details>"}, {"<ul", "</ul>"},
                              {"<script>", "</script>"},  {"<g ", "</g>"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        assert_int_equal(count(page, pairs[i][0]), count(page, pairs[i][1]));
    assert_null(strstr(page, "http://"));
    assert_null(strstr(page, "https://"));
    assert_null(strstr(page, "src="));
    assert_null(strstr(page, "<link"));
    assert_null(strstr(page, "@import"));
    assert_null(strstr(page, "NaN\"")); /* no NaN in a coordinate */
    assert_null(strstr(page, "inf\""));
}

/* The number of path.curve elements in chart id. */
static size_t curves_in(const char *page, const char *id)
{
    char open[80];
    snprintf(open, sizeof open, "<svg id=\"%s\"", id);
    char *s = section(page, open, "</svg>");
    size_t n = count(s, "<path class=\"curve\"");
    free(s);
    return n;
}

/* A hand-made run: n steps from 0 with loss f(step) and grad_norm 1. */
static void make_run(orch_report_run *r, int64_t id, const char *name, const char *strategy,
                     int64_t seed, int64_t n)
{
    memset(r, 0, sizeof *r);
    r->run_id = id;
    r->name = strdup(name);
    r->pipeline = strdup("pipelines/x.lua");
    r->strategy = strdup(strategy);
    r->status = strdup("finished");
    r->precision = strdup("fp32");
    r->seed = seed;
    r->group_index = -1;
    r->config_json = strdup("{\"name\":\"x\",\"optimizer\":{\"lr\":0.001}}");
    r->n_steps = n;
    r->step = calloc((size_t)n + 1, sizeof *r->step);
    r->loss = calloc((size_t)n + 1, sizeof *r->loss);
    r->grad_norm = calloc((size_t)n + 1, sizeof *r->grad_norm);
    for (int64_t i = 0; i < n; i++) {
        r->step[i] = i;
        r->loss[i] = 2.0 + sin((double)(i + id)) * 0.3 - 1e-3 * (double)i;
        r->grad_norm[i] = 1.0 + 0.5 * cos((double)i * 0.1 + (double)id);
    }
}

static orch_html_report *make_report(int n_runs, int64_t n_steps)
{
    orch_html_report *r = calloc(1, sizeof *r);
    r->title = strdup("test");
    r->db = strdup("test.db");
    r->n_runs = n_runs;
    r->runs = calloc((size_t)n_runs + 1, sizeof *r->runs);
    for (int i = 0; i < n_runs; i++) {
        char name[32];
        snprintf(name, sizeof name, "run%d", i + 1);
        make_run(&r->runs[i], i + 1, name,
                 i % 3 == 0   ? "lora"
                 : i % 3 == 1 ? "detach"
                              : "surgery",
                 7 + i % 4, n_steps);
    }
    return r;
}

static void free_report(orch_html_report *r)
{
    orch_html_report_free(r);
    free(r);
}

/* ------------------------------------------------------ page structure */

static void test_zero_runs(void **state)
{
    (void)state;
    orch_html_report *r = make_report(0, 0);
    char *page = render(r);
    check_page(page);
    assert_non_null(strstr(page, "id=\"no-runs\""));
    assert_int_equal(count(page, "class=\"chart\""), 0);
    free(page);
    free_report(r);
}

static void test_one_run(void **state)
{
    (void)state;
    orch_html_report *r = make_report(1, 50);
    char *page = render(r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 1);
    assert_int_equal(curves_in(page, "chart-grad-norm"), 1);
    assert_int_equal(count(page, "class=\"nan\""), 0);
    assert_non_null(strstr(page, "<details id=\"config-1\">"));
    /* the configuration is printed indented */
    assert_non_null(strstr(page, "&quot;lr&quot;: 0.001"));
    free(page);
    free_report(r);
}

/* A run with no steps beside one with steps: both have their path in
 * each chart; the empty one draws nothing visible. */
static void test_run_without_steps(void **state)
{
    (void)state;
    orch_html_report *r = make_report(2, 10);
    r->runs[1].n_steps = 0;
    char *page = render(r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 2);
    assert_int_equal(curves_in(page, "chart-grad-norm"), 2);
    free(page);
    /* and alone: the axes still have a range */
    r->runs[0].n_steps = 0;
    page = render(r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 2);
    free(page);
    free_report(r);
}

static void test_all_nan(void **state)
{
    (void)state;
    orch_html_report *r = make_report(1, 20);
    for (int64_t i = 0; i < 20; i++) {
        r->runs[0].loss[i] = NAN;
        r->runs[0].grad_norm[i] = i % 2 ? INFINITY : NAN;
    }
    char *page = render(r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 1);
    char *loss = section(page, "<svg id=\"chart-loss\"", "</svg>");
    /* the markers start at step 0, one per step (20 steps are far apart) */
    assert_non_null(strstr(loss, "class=\"nan\""));
    assert_non_null(strstr(loss, "data-step=\"0\""));
    char *markers = section(loss, "<path class=\"nan\"", "</path>");
    assert_int_equal(count(markers, "z"), 20);
    free(markers);
    free(loss);
    free(page);
    /* one finite step between NaNs is drawn (a short dash), not lost */
    r->runs[0].loss[10] = 1.0;
    page = render(r);
    loss = section(page, "<svg id=\"chart-loss\"", "</svg>");
    char *curve = section(loss, "<path class=\"curve\"", "/>");
    assert_non_null(strstr(curve, "m-2.5 0h5"));
    free(curve);
    free(loss);
    free(page);
    free_report(r);
}

static void test_200_runs(void **state)
{
    (void)state;
    orch_html_report *r = make_report(200, 30);
    char *page = render(r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 200);
    assert_int_equal(curves_in(page, "chart-grad-norm"), 200);
    assert_int_equal(count(page, "<li data-key=\"run-"), 200);
    assert_int_equal(count(page, "<tr data-run="), 200);
    free(page);
    free_report(r);
}

/* 200 runs x 1,000 steps stay under 5 MB; a spike and a lone NaN step
 * survive decimation. */
static void test_size_and_decimation(void **state)
{
    (void)state;
    orch_html_report *r = make_report(200, 1000);
    r->runs[0].loss[500] = 100.0; /* the page's highest loss */
    r->runs[7].loss[777] = NAN;
    r->runs[9].loss[333] = -5.0; /* the lowest */
    char *page = render(r);
    check_page(page);
    size_t size = strlen(page);
    print_message("200 runs x 1000 steps: %zu bytes\n", size);
    assert_true(size < 5u * 1000 * 1000);
    char *loss = section(page, "<svg id=\"chart-loss\"", "</svg>");
    /* the axis reaches the spike and the dip */
    double y0 = 0, y1 = 0, py0 = 0, py1 = 0;
    assert_int_equal(sscanf(strstr(loss, "data-py0="),
                            "data-py0=\"%lf\" data-py1=\"%lf\" "
                            "data-y0=\"%lf\" data-y1=\"%lf\"",
                            &py0, &py1, &y0, &y1),
                     4);
    assert_true(y1 >= 100.0);
    assert_true(y0 <= -5.0);
    /* run 1's path passes through the spike's y, run 10's through the dip's */
    char want[64];
    char *run1 = section(loss, "<path class=\"curve\" data-key=\"run-1\"", "/>");
    snprintf(want, sizeof want, " %.1f", py0 - (100.0 - y0) / (y1 - y0) * (py0 - py1));
    assert_non_null(strstr(run1, want));
    char *run10 = section(loss, "<path class=\"curve\" data-key=\"run-10\"", "/>");
    snprintf(want, sizeof want, " %.1f", py0 - (-5.0 - y0) / (y1 - y0) * (py0 - py1));
    assert_non_null(strstr(run10, want));
    /* decimated: far fewer than 1,000 points per curve */
    assert_true(count(run1, " ") < 2 * 1000);
    /* run 8's lone NaN keeps its marker at its step */
    char *nan8 = section(loss, "<path class=\"nan\" data-key=\"run-8\"", "</path>");
    assert_non_null(strstr(nan8, "data-step=\"777\""));
    free(nan8);
    free(run10);
    free(run1);
    free(loss);
    free(page);
    free_report(r);
}

/* Columns of a newer run_summary (schema 7: end_reason, data_hash) show in
 * the compare table when the store has them, and only then. */
static void test_newer_summary_columns(void **state)
{
    (void)state;
    orch_html_report *r = make_report(2, 5);
    char *page = render(r);
    assert_null(strstr(page, "<th>end_reason</th>"));
    free(page);
    orch_rowset *sum = &r->runs[1].summary;
    sum->n_cols = 1;
    sum->names = calloc(1, sizeof *sum->names);
    sum->names[0] = strdup("end_reason");
    sum->n_rows = sum->cap_rows = 1;
    sum->cells = calloc(1, sizeof *sum->cells);
    sum->cells[0] = (orch_value){.kind = ORCH_VALUE_TEXT, .s = strdup("early_stop"), .n = 10};
    page = render(r);
    check_page(page);
    assert_non_null(strstr(page, "<th>end_reason</th>"));
    assert_non_null(strstr(page, "<td>early_stop</td>"));
    free(page);
    free_report(r);
}

static void test_escaping(void **state)
{
    (void)state;
    orch_html_report *r = make_report(1, 5);
    free(r->runs[0].name);
    r->runs[0].name = strdup("<script>alert(\"x\")</script>&'");
    free(r->title);
    r->title = strdup("<b>t</b>");
    r->runs[0].pipeline_text = strdup("return { name = \"</pre><script>bad()</script>\" }");
    char *page = render(r);
    check_page(page);
    assert_null(strstr(page, "<script>alert"));
    assert_null(strstr(page, "<script>bad"));
    assert_null(strstr(page, "<b>t</b>"));
    assert_non_null(strstr(page, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
    free(page);
    free_report(r);
}

/* ---------------------------------------------------- from a store */

typedef struct fixture {
    char dir[256];
    char db[300];
    orch_store *ro;
} fixture;

static const char *const stages[] = {"head",
                                     "visual.merger.mlp.2",
                                     "visual.blocks.0.norm1",
                                     "visual.patch_embed.proj",
                                     "visual.blocks.0.attn.qkv",
                                     "visual.blocks.1.norm1",
                                     "visual.blocks.10.norm1"};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))

static int fill(const char *path)
{
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    int ok = orch_store_open(path, ORCH_STORE_READWRITE, &s, &err) == ORCH_OK &&
             orch_store_sink(s, &k, &err) == ORCH_OK;
    /* run 1: finished, with eval metrics; run 2: NaN from step 3 with stats;
     * run 3: no steps */
    const char *names[] = {"good", "bad", "empty"};
    for (int r = 0; ok && r < 3; r++) {
        orch_run_info info = {.pipeline = "pipelines/x.lua",
                              .name = names[r],
                              .strategy = r == 1 ? "surgery" : "lora",
                              .config_json = "{\"tags\":[\"t\"]}",
                              .seed = 7};
        int64_t id = 0;
        ok = k.begin_run(k.ctx, &info, &id, &err) == ORCH_OK;
        for (int i = 0; ok && r < 2 && i < 6; i++) {
            orch_step_record st = {.step = i,
                                   .loss = r == 1 && i >= 3 ? NAN : 2.0 - 0.1 * i,
                                   .grad_norm = r == 1 && i >= 3 ? INFINITY : 1.0,
                                   .lr = 1e-3,
                                   .wall_ms = 10.0};
            ok = k.step(k.ctx, id, &st, &err) == ORCH_OK;
            if (ok && r == 0 && i % 2 == 1)
                ok = k.metric(k.ctx, id,
                              &(orch_metric_record){
                                  .step = i, .name = "eval/loss", .value = 1.5 - 0.1 * i},
                              &err) == ORCH_OK &&
                     k.metric(k.ctx, id,
                              &(orch_metric_record){
                                  .step = i, .name = "eval/accuracy", .value = 0.1 * i},
                              &err) == ORCH_OK;
            for (int g = 0; ok && r == 1 && g < N_STAGES; g++) {
                orch_stage_stat ss = {.step = i,
                                      .stage = stages[g],
                                      .act_absmax = pow(10.0, g + i),
                                      .act_rms = 1.0,
                                      .grad_norm = 1.0};
                ok = k.stage_stat(k.ctx, id, &ss, &err) == ORCH_OK;
            }
        }
        if (ok && r == 1) {
            orch_nan_record ev = {.step = 3,
                                  .phase = ORCH_PHASE_FORWARD,
                                  .stage = "visual.merger.mlp.2",
                                  .tensor = "output",
                                  .nan_count = 3,
                                  .input_absmax = 65504.0,
                                  .inputs_finite = 1,
                                  .rank = -1};
            ok = k.nan_event(k.ctx, id, &ev, &err) == ORCH_OK;
        }
        if (ok)
            ok =
                k.end_run(k.ctx, id,
                          &(orch_run_end){.status = r == 1 ? ORCH_RUN_DIVERGED : ORCH_RUN_FINISHED},
                          &err) == ORCH_OK;
    }
    /* sweep 1: recorded, no runs queued yet */
    int64_t sweep_id = 0;
    if (ok)
        ok = orch_store_sweep_open(s, "empty", "empty.lua", "h", "host", 1, &sweep_id, &err) ==
             ORCH_OK;
    if (!ok)
        fprintf(stderr, "fill: %s\n", err.msg);
    orch_store_close(s);
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_err err = {0};
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    if (fill(f->db) != 0 || orch_store_open(f->db, ORCH_STORE_READONLY, &f->ro, &err) != ORCH_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    orch_store_close(f->ro);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void test_read_store(void **state)
{
    fixture *f = *state;
    orch_html_report r;
    orch_err err = {0};
    assert_int_equal(orch_store_read_html_report(f->ro, NULL, 0, NULL, "t", 0, &r, &err), ORCH_OK);
    assert_int_equal(r.n_runs, 3);
    assert_string_equal(r.title, "runs tagged t");
    assert_int_equal(r.compare.n_rows, 3);
    const orch_report_run *good = &r.runs[0], *bad = &r.runs[1], *empty = &r.runs[2];
    assert_string_equal(good->name, "good");
    assert_int_equal(good->n_steps, 6);
    assert_int_equal(good->n_metrics, 2);
    assert_string_equal(good->metrics[0].name, "eval/accuracy");
    assert_string_equal(good->metrics[1].name, "eval/loss");
    assert_int_equal(good->metrics[1].n, 3);
    assert_true(fabs(good->metrics[1].value[2] - 1.0) < 1e-12);
    assert_int_equal(empty->n_steps, 0);
    assert_true(isnan(bad->loss[3]));
    assert_true(isinf(bad->grad_norm[5]));
    assert_int_equal(bad->n_nan_events, 1);
    assert_int_equal(bad->summary.n_rows, 1);
    assert_true(orch_rowset_column(&bad->summary, "first_nan_step") >= 0);
    /* stage statistics: the steps around the event, stages down the tower */
    assert_int_equal(bad->n_stat_stages, N_STAGES);
    const char *order[] = {"visual.patch_embed.proj",
                           "visual.blocks.0.norm1",
                           "visual.blocks.0.attn.qkv",
                           "visual.blocks.1.norm1",
                           "visual.blocks.10.norm1",
                           "visual.merger.mlp.2",
                           "head"};
    for (int i = 0; i < N_STAGES; i++)
        assert_string_equal(bad->stat_stages[i], order[i]);
    assert_int_equal(bad->n_stats, 6 * N_STAGES);
    for (int64_t i = 0; i < bad->n_stats; i++) {
        /* act_absmax was 10^(g + step) with g the index in `stages` */
        const char *name = bad->stat_stages[bad->stats[i].stage];
        int g = 0;
        while (strcmp(stages[g], name) != 0)
            g++;
        assert_true(fabs(bad->stats[i].act_absmax / pow(10.0, g + (double)bad->stats[i].step) - 1) <
                    1e-9);
    }

    char *page = render(&r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 3);
    assert_int_equal(curves_in(page, "chart-eval-0"), 1); /* eval/accuracy: run 1 only */
    assert_int_equal(curves_in(page, "chart-eval-1"), 1);
    /* the marker of the bad run at step 3, its tooltip naming the event */
    char *loss = section(page, "<svg id=\"chart-loss\"", "</svg>");
    char *nan = section(loss, "<path class=\"nan\" data-key=\"run-2\"", "</path>");
    assert_non_null(strstr(nan, "data-step=\"3\""));
    assert_non_null(strstr(nan, "first NaN event: step 3 forward visual.merger.mlp.2 output"));
    /* the heat map outlines the event's cell */
    char *heat = section(page, "<svg id=\"heatmap-2\"", "</svg>");
    assert_non_null(strstr(heat, "class=\"first\""));
    assert_non_null(strstr(heat, "data-stage=\"visual.merger.mlp.2\" data-step=\"3\""));
    /* provenance in the compare table */
    assert_non_null(strstr(page, "producer (inputs finite)"));
    free(heat);
    free(nan);
    free(loss);
    free(page);
    orch_html_report_free(&r);
}

static void test_selection_refused(void **state)
{
    fixture *f = *state;
    orch_html_report r;
    orch_err err = {0};
    int64_t ids[] = {2, 42};
    assert_int_equal(orch_store_read_html_report(f->ro, ids, 2, NULL, NULL, 0, &r, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "report: no run 42 in "));
    assert_int_equal(r.n_runs, 0);
    assert_int_equal(orch_store_read_html_report(f->ro, NULL, 0, NULL, "nope", 0, &r, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "report: no runs in "));
    assert_non_null(strstr(err.msg, "--tag nope"));
    assert_int_equal(orch_store_read_html_report(f->ro, NULL, 0, NULL, NULL, 4, &r, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "report: no sweep 4 in "));
    assert_int_equal(orch_store_read_html_report(f->ro, NULL, 0, NULL, NULL, 0, &r, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "report: name runs"));
    assert_null(strchr(err.msg, '\n'));
    /* ids keep their order (runs 2 and 3 were not evaluated: once
     * evaluation exists, orch compare ranks evaluated runs by it) */
    int64_t two[] = {3, 2};
    assert_int_equal(orch_store_read_html_report(f->ro, two, 2, NULL, NULL, 0, &r, &err), ORCH_OK);
    assert_int_equal(r.n_runs, 2);
    assert_int_equal(r.runs[0].run_id, 3);
    assert_int_equal(r.runs[1].run_id, 2);
    orch_html_report_free(&r);
}

/* A sweep without runs is a page of zero runs, not an error. */
static void test_empty_sweep(void **state)
{
    fixture *f = *state;
    orch_html_report r;
    orch_err err = {0};
    assert_int_equal(orch_store_read_html_report(f->ro, NULL, 0, NULL, NULL, 1, &r, &err), ORCH_OK);
    assert_int_equal(r.n_runs, 0);
    assert_string_equal(r.title, "sweep 1 (empty)");
    char *page = render(&r);
    check_page(page);
    assert_non_null(strstr(page, "id=\"no-runs\""));
    free(page);
    orch_html_report_free(&r);
    int64_t one = 1;
    assert_int_equal(orch_store_read_html_report(f->ro, &one, 1, NULL, NULL, 1, &r, &err),
                     ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "takes no run ids"));
}

/* A sweep's runs are grouped as orch compare --sweep groups them (the
 * configuration without the seed), groups numbered by their first run;
 * one band and one mean line per group. Queued runs have no steps. */
static void test_sweep_groups(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    int64_t sweep_id = 0;
    assert_int_equal(orch_store_sweep_open(s, "grid", "grid.lua", "h2", "host", 1, &sweep_id, &err),
                     ORCH_OK);
    /* points in an order that interleaves the groups: b, a, b, c, a */
    static const struct {
        const char *point, *config;
        uint64_t seed;
    } points[] = {
        {"b-s1", "{\"lr\":2,\"seed\":1}", 1}, {"a-s1", "{\"lr\":1,\"seed\":1}", 1},
        {"b-s2", "{\"lr\":2,\"seed\":2}", 2}, {"c-s1", "{\"lr\":3,\"seed\":1}", 1},
        {"a-s2", "{\"lr\":1,\"seed\":2}", 2},
    };
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char hash[16];
        snprintf(hash, sizeof hash, "h%d", i);
        orch_run_info info = {.pipeline = "grid.lua",
                              .name = points[i].point,
                              .strategy = "lora",
                              .config_json = points[i].config,
                              .config_hash = hash,
                              .seed = points[i].seed};
        orch_sweep_run_state st;
        assert_int_equal(orch_store_sweep_queue(s, sweep_id, points[i].point, &info, &st, &err),
                         ORCH_OK);
        ids[i] = st.run_id;
    }
    orch_store_close(s);
    orch_html_report r;
    assert_int_equal(orch_store_read_html_report(f->ro, NULL, 0, NULL, NULL, sweep_id, &r, &err),
                     ORCH_OK);
    assert_int_equal(r.n_runs, 5);
    assert_int_equal(r.sweep_groups.n_rows, 3);
    /* group b has the first run: 0; a: 1; c: 2 */
    const int want_group[] = {0, 1, 0, 2, 1};
    const char *want_label[] = {"b", "a", "b", "c", "a"};
    for (int i = 0; i < 5; i++) {
        const orch_report_run *run = NULL;
        for (int k = 0; k < r.n_runs; k++)
            if (r.runs[k].run_id == ids[i])
                run = &r.runs[k];
        assert_non_null(run);
        assert_int_equal(run->group_index, want_group[i]);
        assert_string_equal(run->group, want_label[i]);
    }
    char *page = render(&r);
    check_page(page);
    assert_int_equal(curves_in(page, "chart-loss"), 5);
    char *bands = section(page, "<svg id=\"chart-bands\"", "</svg>");
    assert_int_equal(count(bands, "<path class=\"band\""), 3);
    assert_int_equal(count(bands, "<path class=\"curve\""), 3);
    free(bands);
    char *table = section(page, "<table id=\"sweep-groups\"", "</table>");
    assert_int_equal(count(table, "<tr>"), 4);
    free(table);
    free(page);
    orch_html_report_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_runs),
        cmocka_unit_test(test_one_run),
        cmocka_unit_test(test_run_without_steps),
        cmocka_unit_test(test_all_nan),
        cmocka_unit_test(test_200_runs),
        cmocka_unit_test(test_size_and_decimation),
        cmocka_unit_test(test_newer_summary_columns),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test_setup_teardown(test_read_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_selection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_groups, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
