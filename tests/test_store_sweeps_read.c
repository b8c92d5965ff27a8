/*
 * test_store_sweeps_read.c - reading sweeps (store/sweeps.h): the list with
 * counts by status, one sweep with its runs, and the comparison of a
 * sweep's groups of seeds, checked against figures computed here by hand.
 *
 * The store is built as a sweep's coordinator and workers build it: the
 * recording API queues each point, hands it out, and the sink starts the
 * queued run (resume_run from -1), records its steps and NaN events and
 * ends it; a run whose dependency diverged is settled `skipped`.
 *
 * Sweep "strategies" (id 1):
 *   surgery-lr1e-3  seeds 1 2 3   finished, final losses 1.0 1.5 2.0
 *   detach-lr1e-3   seeds 1 2 3   finished 0.8 and 1.2; seed 3 diverged
 *                                 (NaN final loss, 2 NaN events)
 *   lora-warm       seeds 1 2 3   skipped; strategy.init is
 *                                 output_of:strategies/detach-lr1e-3-s<seed>
 *   lora-lr3e-4     seed 7, a point without a seed suffix: finished 1.2
 *   full            seed 1 failed after 1 step; seed 2 finished 3.0
 *   x-first, x-second  seeds 1, 2: one configuration under two names,
 *                      both finished 2.5
 * Sweep "other" (id 2): one queued run.
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
#include <unistd.h>

#include "store/store.h"
#include "store/sweeps.h"
#include "tests/testutil.h"
#include "tests/testutil_sql.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    orch_store *ro; /* read-only, as the commands read */
    char *out;
} fixture;

typedef struct point_spec {
    const char *point, *kind, *init;
    double lr;
    uint64_t seed;
    orch_run_status status;
    int n_steps;
    double final; /* the last step's loss (NaN for diverged) */
    int n_nan;
} point_spec;

static const point_spec strategies[] = {
    {"surgery-lr1e-3-s1", "surgery", "", 1e-3, 1, ORCH_RUN_FINISHED, 3, 1.0, 0},
    {"surgery-lr1e-3-s2", "surgery", "", 1e-3, 2, ORCH_RUN_FINISHED, 3, 1.5, 0},
    {"surgery-lr1e-3-s3", "surgery", "", 1e-3, 3, ORCH_RUN_FINISHED, 3, 2.0, 0},
    {"detach-lr1e-3-s1", "detach", "", 1e-3, 1, ORCH_RUN_FINISHED, 3, 0.8, 0},
    {"detach-lr1e-3-s2", "detach", "", 1e-3, 2, ORCH_RUN_FINISHED, 3, 1.2, 0},
    {"detach-lr1e-3-s3", "detach", "", 1e-3, 3, ORCH_RUN_DIVERGED, 3, NAN, 2},
    {"lora-warm-s1", "lora", "output_of:strategies/detach-lr1e-3-s1", 3e-4, 1, ORCH_RUN_SKIPPED, 0,
     0.0, 0},
    {"lora-warm-s2", "lora", "output_of:strategies/detach-lr1e-3-s2", 3e-4, 2, ORCH_RUN_SKIPPED, 0,
     0.0, 0},
    {"lora-warm-s3", "lora", "output_of:strategies/detach-lr1e-3-s3", 3e-4, 3, ORCH_RUN_SKIPPED, 0,
     0.0, 0},
    {"lora-lr3e-4", "lora", "", 3e-4, 7, ORCH_RUN_FINISHED, 3, 1.2, 0},
    {"full-s1", "full", "", 1e-4, 1, ORCH_RUN_FAILED, 1, 9.0, 0},
    {"full-s2", "full", "", 1e-4, 2, ORCH_RUN_FINISHED, 3, 3.0, 0},
    {"x-first", "lora", "", 1e-2, 1, ORCH_RUN_FINISHED, 3, 2.5, 0},
    {"x-second", "lora", "", 1e-2, 2, ORCH_RUN_FINISHED, 3, 2.5, 0},
};
#define N_STRATEGIES (sizeof strategies / sizeof strategies[0])

/* The configuration as orch records it: meta fields included. */
static void config_of(const char *sweep, const point_spec *p, char *json, size_t n)
{
    snprintf(json, n,
             "{\"config_hash\":\"h-%s\",\"name\":\"%s/%s\",\"optimizer\":{\"lr\":%g},"
             "\"path\":\"pipelines/sweep.lua\",\"precision\":\"fp32\",\"seed\":%llu,"
             "\"strategy\":{\"init\":\"%s\",\"kind\":\"%s\"},\"tags\":[\"sweep\"]}",
             p->point, sweep, p->point, p->lr, (unsigned long long)p->seed, p->init, p->kind);
}

/* Queues, hands out, runs and ends (or settles) point p of the sweep. */
static int record_point(orch_store *s, orch_sink *k, int64_t sweep, const char *sweep_name,
                        const point_spec *p, orch_err *err)
{
    char json[1024], name[256], hash[128];
    config_of(sweep_name, p, json, sizeof json);
    snprintf(name, sizeof name, "%s/%s", sweep_name, p->point);
    snprintf(hash, sizeof hash, "h-%s", p->point);
    orch_run_info info = {.pipeline = "pipelines/sweep.lua",
                          .name = name,
                          .strategy = p->kind,
                          .config_json = json,
                          .config_hash = hash,
                          .seed = p->seed,
                          .orch_version = "0.1.0"};
    orch_sweep_run_state st;
    int rc = orch_store_sweep_queue(s, sweep, p->point, &info, &st, err);
    if (rc != ORCH_OK || p->status == ORCH_RUN_QUEUED)
        return rc;
    if (p->status == ORCH_RUN_SKIPPED)
        return orch_store_sweep_settle_run(s, st.run_id, ORCH_RUN_SKIPPED,
                                           "its dependency diverged", err);
    int64_t attempts = 0;
    rc = orch_store_sweep_handout(s, st.run_id, 1, "node1", &attempts, err);
    info.host = "node1";
    info.pid = (int64_t)getpid();
    if (rc == ORCH_OK)
        rc = k->resume_run(k->ctx, st.run_id, &(orch_run_resume){info, -1}, err);
    for (int i = 0; rc == ORCH_OK && i < p->n_steps; i++) {
        double loss = i + 1 == p->n_steps ? p->final : 5.0 - i;
        orch_step_record rec = {i, loss, 1.0, p->lr, 10.0};
        rc = k->step(k->ctx, st.run_id, &rec, err);
    }
    for (int i = 0; rc == ORCH_OK && i < p->n_nan; i++) {
        orch_nan_record ev = {2,   ORCH_PHASE_BACKWARD, "head", "grad_weight", 1, 0, 1e5, 1, -1,
                              NULL};
        rc = k->nan_event(k->ctx, st.run_id, &ev, err);
    }
    if (rc == ORCH_OK)
        rc = k->end_run(k->ctx, st.run_id,
                        &(orch_run_end){p->status,
                                        p->status == ORCH_RUN_FAILED ? "boom: out of luck" : NULL,
                                        NULL},
                        err);
    return rc;
}

static int fill(const char *path)
{
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    int64_t sweep = 0, other = 0;
    int rc = orch_store_open(path, ORCH_STORE_READWRITE, &s, &err);
    if (rc == ORCH_OK)
        rc = orch_store_sink(s, &k, &err);
    if (rc == ORCH_OK)
        rc = orch_store_sweep_open(s, "strategies", "pipelines/sweep.lua", "sweephash", "node0",
                                   (int64_t)getpid(), &sweep, &err);
    for (size_t i = 0; rc == ORCH_OK && i < N_STRATEGIES; i++)
        rc = record_point(s, &k, sweep, "strategies", &strategies[i], &err);
    if (rc == ORCH_OK)
        rc = orch_store_sweep_close(s, sweep, &err);
    if (rc == ORCH_OK)
        rc = orch_store_sweep_open(s, "other", "pipelines/other.lua", "otherhash", "node0",
                                   (int64_t)getpid(), &other, &err);
    point_spec queued = {"only-s1", "lora", "", 1e-3, 1, ORCH_RUN_QUEUED, 0, 0.0, 0};
    if (rc == ORCH_OK)
        rc = record_point(s, &k, other, "other", &queued, &err);
    if (rc == ORCH_OK)
        rc = orch_store_sweep_close(s, other, &err);
    if (rc != ORCH_OK)
        fprintf(stderr, "fill: %s\n", err.msg);
    orch_store_close(s);
    return rc == ORCH_OK && sweep == 1 && other == 2 ? 0 : -1;
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
    free(f->out);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ----------------------------------------------------------- helpers */

static const orch_value *cell(const orch_rowset *rows, size_t r, const char *name)
{
    int c = orch_rowset_column(rows, name);
    if (c < 0)
        fail_msg("no column %s", name);
    assert_true(r < rows->n_rows);
    return &rows->cells[r * (size_t)rows->n_cols + (size_t)c];
}

static int64_t int_cell(const orch_rowset *rows, size_t r, const char *name)
{
    const orch_value *v = cell(rows, r, name);
    if (v->kind != ORCH_VALUE_INT)
        fail_msg("row %zu %s is not an integer (kind %d)", r, name, (int)v->kind);
    return v->i;
}

static double real_cell(const orch_rowset *rows, size_t r, const char *name)
{
    const orch_value *v = cell(rows, r, name);
    if (v->kind != ORCH_VALUE_REAL)
        fail_msg("row %zu %s is not a real (kind %d)", r, name, (int)v->kind);
    return v->r;
}

static const char *text_cell(const orch_rowset *rows, size_t r, const char *name)
{
    const orch_value *v = cell(rows, r, name);
    if (v->kind != ORCH_VALUE_TEXT)
        fail_msg("row %zu %s is not text (kind %d)", r, name, (int)v->kind);
    return v->s;
}

static int is_null(const orch_rowset *rows, size_t r, const char *name)
{
    return cell(rows, r, name)->kind == ORCH_VALUE_NULL;
}

/* Mean and sample standard deviation of x[n], the textbook way. */
static void mean_std(const double *x, int n, double *mean, double *std)
{
    double sum = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    *mean = sum / n;
    for (int i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : NAN;
}

/* ------------------------------------------------------------- tests */

static void test_list_counts(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_rowset rows;
    assert_int_equal(orch_store_read_sweeps(f->ro, &rows, &err), ORCH_OK);
    assert_int_equal(rows.n_rows, 2);
    static const char *const cols[] = {
        "id",       "name",     "file",   "status",  "runs",        "queued",     "running",
        "finished", "diverged", "failed", "skipped", "interrupted", "created_at", "finished_at"};
    assert_int_equal(rows.n_cols, (int)(sizeof cols / sizeof cols[0]));
    for (int c = 0; c < rows.n_cols; c++)
        assert_string_equal(rows.names[c], cols[c]);
    assert_int_equal(int_cell(&rows, 0, "id"), 1);
    assert_string_equal(text_cell(&rows, 0, "name"), "strategies");
    assert_string_equal(text_cell(&rows, 0, "file"), "pipelines/sweep.lua");
    assert_int_equal(int_cell(&rows, 0, "runs"), (int64_t)N_STRATEGIES);
    assert_int_equal(int_cell(&rows, 0, "finished"), 9);
    assert_int_equal(int_cell(&rows, 0, "diverged"), 1);
    assert_int_equal(int_cell(&rows, 0, "failed"), 1);
    assert_int_equal(int_cell(&rows, 0, "skipped"), 3);
    assert_int_equal(int_cell(&rows, 0, "queued"), 0);
    assert_int_equal(int_cell(&rows, 0, "running"), 0);
    assert_int_equal(int_cell(&rows, 0, "interrupted"), 0);
    /* every run ended one way or another: the sweep closed finished */
    assert_string_equal(text_cell(&rows, 0, "status"), "finished");
    assert_false(is_null(&rows, 0, "finished_at"));
    assert_int_equal(int_cell(&rows, 1, "id"), 2);
    assert_int_equal(int_cell(&rows, 1, "runs"), 1);
    assert_int_equal(int_cell(&rows, 1, "queued"), 1);
    assert_int_equal(int_cell(&rows, 1, "finished"), 0);
    assert_string_equal(text_cell(&rows, 1, "status"), "interrupted");

    /* the table for people: one line per sweep, "(2 rows)" */
    size_t len = 0;
    free(f->out);
    FILE *mem = open_memstream(&f->out, &len);
    assert_int_equal(orch_render_sweeps(&rows, ORCH_FMT_TABLE, mem, &err), ORCH_OK);
    fclose(mem);
    assert_non_null(strstr(f->out, "strategies"));
    assert_non_null(strstr(f->out, "(2 rows)"));
    assert_null(strstr(f->out, "pipelines/sweep.lua")); /* file: in CSV and JSON only */
    assert_int_equal(orch_render_sweeps(&rows, (orch_format)9, stdout, &err), ORCH_EINVAL);
    orch_rowset_free(&rows);
}

static void test_one_sweep(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_sweep_report r;
    assert_int_equal(orch_store_read_sweep(f->ro, 1, &r, &err), ORCH_OK);
    assert_int_equal(r.sweep.n_rows, 1);
    assert_string_equal(text_cell(&r.sweep, 0, "hash"), "sweephash");
    assert_string_equal(text_cell(&r.sweep, 0, "coordinator_host"), "node0");
    assert_int_equal(r.runs.n_rows, N_STRATEGIES);
    static const char *const cols[] = {"point",    "run",   "status",     "rank", "host",
                                       "attempts", "steps", "final_loss", "error"};
    assert_int_equal(r.runs.n_cols, (int)(sizeof cols / sizeof cols[0]));
    for (int c = 0; c < r.runs.n_cols; c++)
        assert_string_equal(r.runs.names[c], cols[c]);
    for (size_t i = 0; i < N_STRATEGIES; i++) {
        const point_spec *p = &strategies[i];
        assert_string_equal(text_cell(&r.runs, i, "point"), p->point);
        assert_int_equal(int_cell(&r.runs, i, "run"), (int64_t)i + 1);
        assert_string_equal(text_cell(&r.runs, i, "status"), orch_run_status_name(p->status));
        assert_int_equal(int_cell(&r.runs, i, "steps"), p->n_steps);
        if (p->status == ORCH_RUN_SKIPPED) {
            assert_true(is_null(&r.runs, i, "rank"));
            assert_int_equal(int_cell(&r.runs, i, "attempts"), 0);
            assert_non_null(strstr(text_cell(&r.runs, i, "error"), "its dependency diverged"));
            continue;
        }
        assert_int_equal(int_cell(&r.runs, i, "rank"), 1);
        assert_string_equal(text_cell(&r.runs, i, "host"), "node1");
        assert_int_equal(int_cell(&r.runs, i, "attempts"), 1);
        if (isnan(p->final))
            assert_true(is_null(&r.runs, i, "final_loss")); /* NaN is stored as NULL */
        else
            assert_true(real_cell(&r.runs, i, "final_loss") == p->final);
    }
    assert_string_equal(text_cell(&r.runs, 10, "error"), "boom: out of luck");

    size_t len = 0;
    free(f->out);
    FILE *mem = open_memstream(&f->out, &len);
    assert_int_equal(orch_render_sweep_text(&r, mem, &err), ORCH_OK);
    fclose(mem);
    assert_true(strncmp(f->out, "sweep 1: strategies\n", 20) == 0);
    assert_non_null(strstr(f->out, "  hash             sweephash\n"));
    assert_non_null(strstr(f->out, "runs (14)\n"));
    /* the diverged run's NULL final loss prints as NaN (it has steps) */
    const char *line = strstr(f->out, "detach-lr1e-3-s3");
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    assert_non_null(eol);
    char row[256];
    snprintf(row, sizeof row, "%.*s", (int)(eol - line), line);
    assert_non_null(strstr(row, "diverged"));
    assert_non_null(strstr(row, "NaN"));
    orch_sweep_report_free(&r);

    /* an unknown sweep: one line, nothing to free */
    assert_int_equal(orch_store_read_sweep(f->ro, 42, &r, &err), ORCH_EINVAL);
    char want[512];
    snprintf(want, sizeof want, "no sweep 42 in %s", f->db);
    assert_string_equal(err.msg, want);
    assert_int_equal(r.runs.n_rows, 0);
    orch_sweep_report_free(&r);
}

/* The groups, their figures computed here from the specs, and the order. */
static void test_compare_groups(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_rowset g;
    assert_int_equal(orch_store_read_compare_sweep(f->ro, 1, &g, &err), ORCH_OK);
    static const char *const cols[] = {"group",
                                       "strategy",
                                       "lr",
                                       "n",
                                       "finished",
                                       "mean_final_loss",
                                       "std_final_loss",
                                       "best_seed",
                                       "best_final_loss",
                                       "worst_seed",
                                       "worst_final_loss",
                                       "nan_events",
                                       "diverged",
                                       "failed",
                                       "skipped"};
    assert_int_equal(g.n_cols, (int)(sizeof cols / sizeof cols[0]));
    for (int c = 0; c < g.n_cols; c++)
        assert_string_equal(g.names[c], cols[c]);
    /* best mean first: detach 1.0, lora-lr3e-4 1.2, surgery 1.5, x 2.5, full 3.0; then
     * lora-warm, which has no finished run */
    static const char *const order[] = {"detach-lr1e-3", "lora-lr3e-4", "surgery-lr1e-3",
                                        "x-first",       "full",        "lora-warm"};
    assert_int_equal(g.n_rows, 6);
    for (size_t r = 0; r < 6; r++)
        assert_string_equal(text_cell(&g, r, "group"), order[r]);

    double mean, std;
    /* detach: seeds 1 and 2 finished (0.8, 1.2); seed 3 diverged with 2 NaN events */
    const double detach[] = {0.8, 1.2};
    mean_std(detach, 2, &mean, &std);
    assert_string_equal(text_cell(&g, 0, "strategy"), "detach");
    assert_true(real_cell(&g, 0, "lr") == 1e-3);
    assert_int_equal(int_cell(&g, 0, "n"), 3);
    assert_int_equal(int_cell(&g, 0, "finished"), 2);
    assert_true(fabs(real_cell(&g, 0, "mean_final_loss") - mean) < 1e-12);
    assert_true(fabs(real_cell(&g, 0, "std_final_loss") - std) < 1e-12);
    assert_true(fabs(std - 0.28284271247461906) < 1e-12);
    assert_int_equal(int_cell(&g, 0, "best_seed"), 1);
    assert_true(real_cell(&g, 0, "best_final_loss") == 0.8);
    assert_int_equal(int_cell(&g, 0, "worst_seed"), 2);
    assert_true(real_cell(&g, 0, "worst_final_loss") == 1.2);
    assert_int_equal(int_cell(&g, 0, "nan_events"), 2);
    assert_int_equal(int_cell(&g, 0, "diverged"), 1);
    assert_int_equal(int_cell(&g, 0, "failed"), 0);
    assert_int_equal(int_cell(&g, 0, "skipped"), 0);

    /* one seed: a mean, no standard deviation; the point has no seed suffix */
    assert_int_equal(int_cell(&g, 1, "n"), 1);
    assert_true(real_cell(&g, 1, "mean_final_loss") == 1.2);
    assert_true(is_null(&g, 1, "std_final_loss"));
    assert_int_equal(int_cell(&g, 1, "best_seed"), 7);
    assert_int_equal(int_cell(&g, 1, "worst_seed"), 7);

    /* surgery: 1.0 1.5 2.0 */
    const double surgery[] = {1.0, 1.5, 2.0};
    mean_std(surgery, 3, &mean, &std);
    assert_int_equal(int_cell(&g, 2, "n"), 3);
    assert_int_equal(int_cell(&g, 2, "finished"), 3);
    assert_true(fabs(real_cell(&g, 2, "mean_final_loss") - mean) < 1e-12);
    assert_true(fabs(real_cell(&g, 2, "std_final_loss") - std) < 1e-12);
    assert_true(fabs(std - 0.5) < 1e-12);
    assert_int_equal(int_cell(&g, 2, "best_seed"), 1);
    assert_int_equal(int_cell(&g, 2, "worst_seed"), 3);
    assert_true(real_cell(&g, 2, "worst_final_loss") == 2.0);
    assert_int_equal(int_cell(&g, 2, "nan_events"), 0);

    /* one configuration under two point names is one group (named after its first run);
     * equal losses: best and worst are the earlier run */
    assert_int_equal(int_cell(&g, 3, "n"), 2);
    assert_true(real_cell(&g, 3, "mean_final_loss") == 2.5);
    assert_true(real_cell(&g, 3, "std_final_loss") == 0.0);
    assert_int_equal(int_cell(&g, 3, "best_seed"), 1);
    assert_int_equal(int_cell(&g, 3, "worst_seed"), 1);

    /* full: the failed run counts in n and failed, not in the loss figures */
    assert_int_equal(int_cell(&g, 4, "n"), 2);
    assert_int_equal(int_cell(&g, 4, "finished"), 1);
    assert_int_equal(int_cell(&g, 4, "failed"), 1);
    assert_true(real_cell(&g, 4, "mean_final_loss") == 3.0);
    assert_true(is_null(&g, 4, "std_final_loss"));
    assert_int_equal(int_cell(&g, 4, "best_seed"), 2);

    /* lora-warm: three skipped runs whose init names their own seed's parent are one group;
     * no finished run, so no loss figures, and it sorts last */
    assert_int_equal(int_cell(&g, 5, "n"), 3);
    assert_int_equal(int_cell(&g, 5, "skipped"), 3);
    assert_int_equal(int_cell(&g, 5, "finished"), 0);
    static const char *const none[] = {"mean_final_loss", "std_final_loss", "best_seed",
                                       "best_final_loss", "worst_seed",     "worst_final_loss"};
    for (size_t c = 0; c < sizeof none / sizeof none[0]; c++)
        assert_true(is_null(&g, 5, none[c]));

    /* CSV: exact values */
    size_t len = 0;
    free(f->out);
    FILE *mem = open_memstream(&f->out, &len);
    assert_int_equal(orch_render_compare_sweep(&g, ORCH_FMT_CSV, mem, &err), ORCH_OK);
    fclose(mem);
    assert_true(strncmp(f->out,
                        "group,strategy,lr,n,finished,mean_final_loss,std_final_loss,best_seed,"
                        "best_final_loss,worst_seed,worst_final_loss,nan_events,diverged,failed,"
                        "skipped\r\n",
                        150) == 0);
    assert_non_null(
        strstr(f->out, "\r\nsurgery-lr1e-3,surgery,0.001,3,3,1.5,0.5,1,1.0,3,2.0,0,0,0,0\r\n"));
    assert_non_null(strstr(f->out, "\r\nlora-warm,lora,0.0003,3,0,,,,,,,0,0,0,3\r\n"));
    orch_rowset_free(&g);

    /* unknown sweep */
    assert_int_equal(orch_store_read_compare_sweep(f->ro, 9, &g, &err), ORCH_EINVAL);
    char want[512];
    snprintf(want, sizeof want, "compare: no sweep 9 in %s", f->db);
    assert_string_equal(err.msg, want);
    assert_int_equal(g.n_rows, 0);

    /* a sweep with only a queued run: one group, nothing finished */
    assert_int_equal(orch_store_read_compare_sweep(f->ro, 2, &g, &err), ORCH_OK);
    assert_int_equal(g.n_rows, 1);
    assert_string_equal(text_cell(&g, 0, "group"), "only");
    assert_int_equal(int_cell(&g, 0, "n"), 1);
    assert_true(is_null(&g, 0, "mean_final_loss"));
    orch_rowset_free(&g);
}

/* A sweep whose runs were evaluated: its groups gain the mean best eval
 * accuracy and mean final eval loss (over finished runs that have them)
 * and are ranked by them before the training loss. */
static void test_compare_groups_evaluated(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *rw = NULL;
    orch_sink k;
    int64_t sweep = 0;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(rw, &k, &err), ORCH_OK);
    assert_int_equal(orch_store_sweep_open(rw, "evals", "pipelines/evals.lua", "evalhash", "node0",
                                           (int64_t)getpid(), &sweep, &err),
                     ORCH_OK);
    assert_int_equal(sweep, 3);
    /* d has the best training loss but no evaluation */
    static const point_spec pts[] = {
        {"a-s1", "lora", "", 1e-3, 1, ORCH_RUN_FINISHED, 3, 1.0, 0},
        {"a-s2", "lora", "", 1e-3, 2, ORCH_RUN_FINISHED, 3, 1.0, 0},
        {"b-s1", "lora", "", 2e-3, 1, ORCH_RUN_FINISHED, 3, 1.0, 0},
        {"b-s2", "lora", "", 2e-3, 2, ORCH_RUN_FINISHED, 3, 1.0, 0},
        {"b-s3", "lora", "", 2e-3, 3, ORCH_RUN_DIVERGED, 3, NAN, 0},
        {"c-s1", "lora", "", 3e-3, 1, ORCH_RUN_FINISHED, 3, 1.0, 0},
        {"d-s1", "lora", "", 4e-3, 1, ORCH_RUN_FINISHED, 3, 0.5, 0},
    };
    /* per point: eval/accuracy (NaN: none), eval/loss (NaN: none) */
    static const double acc[] = {0.5, 0.75, 0.875, 0.625, 1.0, NAN, NAN};
    static const double loss[] = {1.0, 0.75, 2.0, 2.0, 0.0, 0.125, NAN};
    int64_t first = raw_int(f->db, "SELECT max(id) FROM runs") + 1;
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        assert_int_equal(record_point(rw, &k, sweep, "evals", &pts[i], &err), ORCH_OK);
        int64_t run = first + (int64_t)i;
        if (!isnan(acc[i]))
            assert_int_equal(
                k.metric(k.ctx, run, &(orch_metric_record){2, "eval/accuracy", acc[i]}, &err),
                ORCH_OK);
        if (!isnan(loss[i]))
            assert_int_equal(
                k.metric(k.ctx, run, &(orch_metric_record){2, "eval/loss", loss[i]}, &err),
                ORCH_OK);
    }
    assert_int_equal(k.flush(k.ctx, &err), ORCH_OK);
    assert_int_equal(orch_store_sweep_close(rw, sweep, &err), ORCH_OK);
    orch_store_close(rw);

    orch_rowset g;
    assert_int_equal(orch_store_read_compare_sweep(f->ro, sweep, &g, &err), ORCH_OK);
    size_t len = 0;
    free(f->out);
    FILE *mem = open_memstream(&f->out, &len);
    assert_int_equal(orch_render_compare_sweep(&g, ORCH_FMT_CSV, mem, &err), ORCH_OK);
    fclose(mem);
    /* b: accuracy mean of its finished runs (0.875, 0.625) = 0.75, the
     * diverged run's 1.0 left out; a: 0.625; c: eval loss only; d: neither */
    assert_string_equal(f->out,
                        "group,strategy,lr,n,finished,mean_final_loss,std_final_loss,best_seed,"
                        "best_final_loss,worst_seed,worst_final_loss,nan_events,diverged,failed,"
                        "skipped,mean_best_eval_accuracy,mean_final_eval_loss\r\n"
                        "b,lora,0.002,3,2,1.0,0.0,1,1.0,1,1.0,0,1,0,0,0.75,2.0\r\n"
                        "a,lora,0.001,2,2,1.0,0.0,1,1.0,1,1.0,0,0,0,0,0.625,0.875\r\n"
                        "c,lora,0.003,1,1,1.0,,1,1.0,1,1.0,0,0,0,0,,0.125\r\n"
                        "d,lora,0.004,1,1,0.5,,1,0.5,1,0.5,0,0,0,0,,\r\n");
    orch_rowset_free(&g);
}

/* Reading works on a read-write store too, and a store with no sweeps
 * lists none. */
static void test_readwrite_and_empty(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *rw = NULL;
    orch_rowset rows;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    assert_int_equal(orch_store_read_sweeps(rw, &rows, &err), ORCH_OK);
    assert_int_equal(rows.n_rows, 2);
    orch_rowset_free(&rows);
    orch_store_close(rw);

    assert_int_equal(orch_store_open(":memory:", ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    assert_int_equal(orch_store_read_sweeps(rw, &rows, &err), ORCH_OK);
    assert_int_equal(rows.n_rows, 0);
    assert_int_equal(rows.n_cols, 14);
    orch_rowset_free(&rows);
    orch_store_close(rw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_counts),
        cmocka_unit_test(test_one_sweep),
        cmocka_unit_test(test_compare_groups),
        cmocka_unit_test(test_readwrite_and_empty),
        cmocka_unit_test(test_compare_groups_evaluated), /* last: it adds a sweep */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
