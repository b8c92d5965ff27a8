/*
 * test_store_compare.c - orch compare: selection by ids, pipeline and tag,
 * the table, CSV and JSON, and the errors.
 *
 * The store holds the four shipped pipelines' runs as the NaN study left
 * them (docs/nan-diagnosis.md): surgery and nan-repro diverged at step 0 in
 * the head's backward, detach and lora finished; plus a second lora run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tests/testutil.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    orch_store *ro;
    char *out;
} fixture;

typedef struct run_spec {
    const char *pipeline, *name, *strategy, *config;
    uint64_t seed;
    int diverge; /* NaN from step 1, first NaN event at step 0 */
} run_spec;

static const run_spec runs[] = {
    {"pipelines/surgery.lua", "surgery", "surgery",
     "{\"optimizer\":{\"lr\":0.001},\"precision\":\"fp16\",\"tags\":[\"study\"]}", 7, 1},
    {"pipelines/nan-repro.lua", "nan-repro", "surgery",
     "{\"optimizer\":{\"lr\":0.01},\"precision\":\"fp16\",\"tags\":[\"study\",\"nan\"]}", 7, 1},
    {"pipelines/detach.lua", "detach", "detach",
     "{\"optimizer\":{\"lr\":0.001},\"precision\":\"bf16\",\"tags\":[\"study\"]}", 7, 0},
    {"pipelines/lora.lua", "lora", "lora",
     "{\"optimizer\":{\"lr\":0.0002},\"precision\":\"fp32\",\"tags\":[\"study\"]}", 7, 0},
    {"pipelines/lora.lua", "lora-seed8", "lora",
     "{\"optimizer\":{\"lr\":0.0002},\"precision\":\"fp32\"}", 8, 0},
};
#define N_RUNS (sizeof runs / sizeof runs[0])

static int fill(const char *path)
{
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    int ok = orch_store_open(path, ORCH_STORE_READWRITE, &s, &err) == ORCH_OK &&
             orch_store_sink(s, &k, &err) == ORCH_OK;
    for (size_t r = 0; ok && r < N_RUNS; r++) {
        const run_spec *p = &runs[r];
        orch_run_info info = {.pipeline = p->pipeline,
                              .name = p->name,
                              .strategy = p->strategy,
                              .config_json = p->config,
                              .seed = p->seed,
                              /* run 1 says what computed it; the others do not know */
                              .kernels = r == 0 ? "blis 0.9.0 skx" : NULL,
                              .threads = r == 0 ? 2 : 0};
        int64_t id = 0;
        ok = k.begin_run(k.ctx, &info, &id, &err) == ORCH_OK;
        for (int i = 0; ok && i < 4; i++) {
            double loss = p->diverge && i > 0 ? NAN : 2.0 - 0.25 * i - 0.01 * (double)r;
            double gn = p->diverge && i > 0 ? INFINITY : 1.0 + i;
            orch_step_record st = {i, loss, gn, 1e-3, 250.0}; /* 4 steps/s */
            ok = k.step(k.ctx, id, &st, &err) == ORCH_OK;
        }
        if (ok && p->diverge) {
            orch_nan_record ev = {
                0, ORCH_PHASE_BACKWARD, "head", "grad_weight", 3, 1, 65504.0, 1, -1, NULL};
            ok = k.nan_event(k.ctx, id, &ev, &err) == ORCH_OK;
        }
        ok = ok && k.end_run(k.ctx, id,
                             &(orch_run_end){p->diverge ? ORCH_RUN_DIVERGED : ORCH_RUN_FINISHED,
                                             NULL, NULL},
                             &err) == ORCH_OK;
    }
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
    free(f->out);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static int compare(fixture *f, const int64_t *ids, int n, const char *pipeline, const char *tag,
                   orch_format format, orch_err *err)
{
    size_t len = 0;
    free(f->out);
    f->out = NULL;
    FILE *mem = open_memstream(&f->out, &len);
    assert_non_null(mem);
    orch_err_clear(err);
    int rc = orch_store_compare(f->ro, ids, n, pipeline, tag, format, mem, err);
    fclose(mem);
    return rc;
}

/* The "run" values of a JSON answer, as "3,1". */
static void json_runs(const char *text, char *buf, size_t n)
{
    json_error_t jerr;
    json_t *rows = json_loads(text, 0, &jerr);
    if (rows == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, text);
    size_t i;
    json_t *row;
    buf[0] = '\0';
    json_array_foreach(rows, i, row)
    {
        size_t at = strlen(buf);
        snprintf(buf + at, n - at, "%s%lld", i ? "," : "",
                 (long long)json_integer_value(json_object_get(row, "run")));
    }
    json_decref(rows);
}

/* --------------------------------------------------------------- tests */

static void test_four_pipelines_table(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    assert_int_equal(compare(f, NULL, 0, NULL, "study", ORCH_FMT_TABLE, &err), ORCH_OK);
    const char *want[] = {
        "run  name       strategy  precision      lr  seed  status    steps  final_loss  "
        "best_loss  max_grad_norm  first_nan        steps_per_s  kernels         threads\n",
        "  1  surgery    surgery   fp16        0.001     7  diverged      4         NaN        "
        "2.0       Infinity  0 backward head          4.0  blis 0.9.0 skx        2\n",
        "  2  nan-repro  surgery   fp16         0.01     7  diverged      4         NaN       "
        "1.99       Infinity  0 backward head          4.0  -                     -\n",
        "  3  detach     detach    bf16        0.001     7  finished      4        1.23       "
        "1.23            4.0  -                        4.0  -                     -\n",
        "  4  lora       lora      fp32       0.0002     7  finished      4        1.22       "
        "1.22            4.0  -                        4.0  -                     -\n",
        "(4 rows)\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(f->out, want[i]) == NULL)
            fail_msg("compare lacks\n%sin\n%s", want[i], f->out);
    assert_null(strstr(f->out, "lora-seed8"));
}

static void test_selections(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    char got[64];
    /* Ids in the order given, a repeated one once. */
    const int64_t ids[] = {4, 1, 4};
    assert_int_equal(compare(f, ids, 3, NULL, NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "4,1");
    /* A pipeline: as stored, its file name, or the run name. */
    assert_int_equal(compare(f, NULL, 0, "pipelines/lora.lua", NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "4,5");
    assert_int_equal(compare(f, NULL, 0, "lora.lua", NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "4,5");
    assert_int_equal(compare(f, NULL, 0, "nan-repro", NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "2");
    /* A tag; a pipeline and a tag together narrow. */
    assert_int_equal(compare(f, NULL, 0, NULL, "nan", ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "2");
    assert_int_equal(compare(f, NULL, 0, "lora.lua", "study", ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "4");
    /* Ids first, then the filter's other runs. */
    const int64_t two[] = {5, 2};
    assert_int_equal(compare(f, two, 2, NULL, "study", ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, got, sizeof got);
    assert_string_equal(got, "5,2,1,3,4");
}

static void test_csv_and_json(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    const int64_t ids[] = {1, 3};
    assert_int_equal(compare(f, ids, 2, NULL, NULL, ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(f->out,
                        "run,name,strategy,precision,lr,seed,status,steps,final_loss,best_loss,"
                        "max_grad_norm,first_nan_step,first_nan_phase,first_nan_stage,"
                        "steps_per_s,kernels,threads\r\n"
                        "1,surgery,surgery,fp16,0.001,7,diverged,4,,2.0,Infinity,0,backward,head,"
                        "4.0,blis 0.9.0 skx,2\r\n"
                        "3,detach,detach,bf16,0.001,7,finished,4,1.23,1.23,4.0,,,,4.0,,\r\n");

    assert_int_equal(compare(f, ids, 2, NULL, NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_t *rows = json_loads(f->out, 0, NULL);
    assert_non_null(rows);
    assert_int_equal(json_array_size(rows), 2);
    json_t *a = json_array_get(rows, 0);
    assert_true(json_is_null(json_object_get(a, "final_loss"))); /* NaN */
    assert_string_equal(json_string_value(json_object_get(a, "max_grad_norm")), "Infinity");
    assert_int_equal(json_integer_value(json_object_get(a, "first_nan_step")), 0);
    assert_string_equal(json_string_value(json_object_get(a, "first_nan_stage")), "head");
    assert_true(json_real_value(json_object_get(a, "steps_per_s")) == 4.0);
    json_t *b = json_array_get(rows, 1);
    assert_true(json_real_value(json_object_get(b, "lr")) == 0.001);
    assert_true(json_is_null(json_object_get(b, "first_nan_step")));
    json_decref(rows);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    char want[400];
    assert_int_equal(compare(f, NULL, 0, NULL, NULL, ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "name the runs to compare, or give --pipeline or --tag"));
    const int64_t ids[] = {1, 42};
    assert_int_equal(compare(f, ids, 2, NULL, NULL, ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    snprintf(want, sizeof want, "compare: no run 42 in %s", f->db);
    assert_string_equal(err.msg, want);
    assert_string_equal(f->out, "");
    assert_int_equal(compare(f, NULL, 0, "full.lua", "study", ORCH_FMT_TABLE, &err), ORCH_EINVAL);
    snprintf(want, sizeof want, "compare: no runs in %s match --pipeline full.lua and --tag study",
             f->db);
    assert_string_equal(err.msg, want);
    assert_string_equal(f->out, "");
    assert_int_equal(compare(f, NULL, 0, NULL, "nope", ORCH_FMT_CSV, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "match --tag nope"));
    assert_int_equal(compare(f, ids, 1, NULL, NULL, (orch_format)9, &err), ORCH_EINVAL);
    assert_int_equal(compare(f, NULL, 2, NULL, NULL, ORCH_FMT_TABLE, &err), ORCH_EINVAL);
}

/* A read-write store compares too. */
static void test_read_write_store(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    orch_store *rw = NULL;
    size_t n = 0;
    char *out = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READWRITE, &rw, &err), ORCH_OK);
    FILE *mem = open_memstream(&out, &n);
    assert_int_equal(orch_store_compare(rw, NULL, 0, "surgery.lua", NULL, ORCH_FMT_CSV, mem, &err),
                     ORCH_OK);
    fclose(mem);
    assert_non_null(strstr(out, "\r\n1,surgery,"));
    free(out);
    orch_store_close(rw);
}

/* Reading apart from rendering: orch_store_read_compare gives exact, typed
 * values in the order of the selection; orch_render_compare prints them
 * without the store (closed first) exactly as orch_store_compare does. */
static void test_read_then_render(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t ids[] = {3, 1};
    orch_rowset rows = {0};
    assert_int_equal(compare(f, ids, 2, NULL, NULL, ORCH_FMT_TABLE, &err), ORCH_OK);
    assert_int_equal(orch_store_read_compare(f->ro, ids, 2, NULL, NULL, &rows, &err), ORCH_OK);
    orch_store_close(f->ro);
    f->ro = NULL;
    assert_int_equal(rows.n_rows, 2);
    int run = orch_rowset_column(&rows, "run"), loss = orch_rowset_column(&rows, "final_loss");
    int phase = orch_rowset_column(&rows, "first_nan_phase");
    assert_true(run >= 0 && loss >= 0 && phase >= 0);
    const orch_value *r0 = rows.cells, *r1 = rows.cells + rows.n_cols;
    assert_int_equal(r0[run].i, 3);
    assert_int_equal(r1[run].i, 1);
    assert_int_equal(r0[loss].kind, ORCH_VALUE_REAL);
    assert_int_equal(r1[loss].kind, ORCH_VALUE_NULL); /* diverged: NaN stored as NULL */
    assert_int_equal(r1[phase].kind, ORCH_VALUE_TEXT);
    assert_string_equal(r1[phase].s, "backward");

    char *text = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&text, &n);
    assert_int_equal(orch_render_compare(&rows, ORCH_FMT_TABLE, mem, &err), ORCH_OK);
    fclose(mem);
    assert_string_equal(text, f->out);
    free(text);
    assert_int_equal(orch_render_compare(&rows, (orch_format)9, stdout, &err), ORCH_EINVAL);
    orch_rowset_free(&rows);
}

/* Evaluated runs: the eval columns appear when any compared run has them,
 * after best_loss, and rank the runs (best accuracy first, then lowest
 * final eval loss, then the rest in the usual order). */
static void add_evaluated(const char *db, const char *name, double acc, double loss, int64_t *id)
{
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    assert_int_equal(orch_store_open(db, ORCH_STORE_READWRITE, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_sink(s, &k, &err), ORCH_OK);
    orch_run_info info = {.pipeline = "pipelines/images.lua",
                          .name = name,
                          .strategy = "lora",
                          .config_json = "{\"optimizer\":{\"lr\":0.001},\"precision\":\"fp32\","
                                         "\"tags\":[\"eval\"]}",
                          .seed = 1};
    assert_int_equal(k.begin_run(k.ctx, &info, id, &err), ORCH_OK);
    for (int i = 0; i < 4; i++) {
        orch_step_record st = {i, 1.0, 1.0, 1e-3, 250.0};
        assert_int_equal(k.step(k.ctx, *id, &st, &err), ORCH_OK);
        if (i % 2 == 0)
            continue;
        /* step 1 and step 3: the better accuracy at 1, the final loss at 3 */
        if (!isnan(acc)) {
            orch_metric_record m = {i, "eval/accuracy", i == 1 ? acc : acc - 0.25};
            assert_int_equal(k.metric(k.ctx, *id, &m, &err), ORCH_OK);
        }
        orch_metric_record m = {i, "eval/loss", i == 1 ? loss + 1.0 : loss};
        assert_int_equal(k.metric(k.ctx, *id, &m, &err), ORCH_OK);
    }
    assert_int_equal(
        k.end_run(k.ctx, *id, &(orch_run_end){ORCH_RUN_FINISHED, NULL, "early stopping"}, &err),
        ORCH_OK);
    orch_store_close(s);
}

static void test_eval_columns_rank(void **state)
{
    fixture *f = *state;
    orch_err err = {0};
    int64_t a = 0, b = 0, c = 0;
    add_evaluated(f->db, "acc-half", 0.5, 0.875, &a);
    add_evaluated(f->db, "acc-three-quarters", 0.75, 1.25, &b);
    add_evaluated(f->db, "loss-only", NAN, 0.25, &c);
    assert_int_equal(compare(f, NULL, 0, NULL, "eval", ORCH_FMT_CSV, &err), ORCH_OK);
    assert_string_equal(
        f->out,
        "run,name,strategy,precision,lr,seed,status,steps,final_loss,best_loss,final_eval_loss,"
        "best_eval_accuracy,best_eval_step,max_grad_norm,first_nan_step,first_nan_phase,"
        "first_nan_stage,steps_per_s,kernels,threads\r\n"
        "7,acc-three-quarters,lora,fp32,0.001,1,finished,4,1.0,1.0,1.25,0.75,1,1.0,,,,4.0,,\r\n"
        "6,acc-half,lora,fp32,0.001,1,finished,4,1.0,1.0,0.875,0.5,1,1.0,,,,4.0,,\r\n"
        "8,loss-only,lora,fp32,0.001,1,finished,4,1.0,1.0,0.25,,3,1.0,,,,4.0,,\r\n");
    /* runs given by id: still ranked when one of them was evaluated; the
     * others after, in the order given */
    int64_t ids[] = {3, 8, 1};
    assert_int_equal(compare(f, ids, 3, NULL, NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    char order[64];
    json_runs(f->out, order, sizeof order);
    assert_string_equal(order, "8,3,1");
    assert_int_equal(compare(f, ids, 3, NULL, NULL, ORCH_FMT_TABLE, &err), ORCH_OK);
    if (strstr(f->out, "best_loss  eval_loss  best_eval_acc  best_eval_step  max_grad_norm") ==
        NULL)
        fail_msg("no eval columns in:\n%s", f->out);
    /* without evaluated runs: the columns and order of before */
    int64_t plain[] = {3, 1};
    assert_int_equal(compare(f, plain, 2, NULL, NULL, ORCH_FMT_CSV, &err), ORCH_OK);
    assert_null(strstr(f->out, "eval"));
    json_runs("[]", order, sizeof order);
    assert_int_equal(compare(f, plain, 2, NULL, NULL, ORCH_FMT_JSON, &err), ORCH_OK);
    json_runs(f->out, order, sizeof order);
    assert_string_equal(order, "3,1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_four_pipelines_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_selections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_and_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_then_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_columns_rank, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
