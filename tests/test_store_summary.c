/*
 * test_store_summary.c - the run_summary view on a hand-made set of runs:
 * final loss is the loss of the highest step (not the last written), the
 * first NaN event is the lowest step's (then the first written), NaN and Inf
 * are reported as docs/store.md says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tests/testutil.h"

typedef struct fixture {
    char dir[256];
    char db[300];
    int64_t clean, diverged, empty;
} fixture;

static void step(orch_sink *k, int64_t run, int64_t i, double loss, double gnorm)
{
    orch_err err = {0};
    orch_step_record r = {i, loss, gnorm, 1e-3, 10.0};
    assert_int_equal(k->step(k->ctx, run, &r, &err), ORCH_OK);
}

static void nan_event(orch_sink *k, int64_t run, int64_t i, orch_phase phase, const char *stage)
{
    orch_err err = {0};
    orch_nan_record r = {i, phase, stage, "out", 1, 0, 3.5, 1, -1, NULL};
    assert_int_equal(k->nan_event(k->ctx, run, &r, &err), ORCH_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0)
        return -1;
    if (orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err) != ORCH_OK ||
        orch_store_sink(s, &k, &err) != ORCH_OK)
        return -1;
    orch_run_info info = {.pipeline = "pipelines/lora.lua",
                          .name = "lora-a",
                          .strategy = "lora",
                          .config_json = "{\"optimizer\":{\"lr\":0.0002},\"precision\":\"fp16\","
                                         "\"tags\":[\"sweep\"]}",
                          .seed = 7};
    /* A clean run, its steps written out of order. */
    if (k.begin_run(k.ctx, &info, &f->clean, &err) != ORCH_OK)
        return -1;
    step(&k, f->clean, 0, 2.0, 1.0);
    step(&k, f->clean, 2, 0.5, 4.0);
    step(&k, f->clean, 1, 1.0, 2.0);
    k.end_run(k.ctx, f->clean, &(orch_run_end){ORCH_RUN_FINISHED, NULL, NULL}, &err);

    /* A run that diverges: Inf grad norm at 2, NaN loss from 3; its NaN
     * events are written late-step first, and two share step 2. */
    info.name = "surgery-b";
    info.strategy = "surgery";
    info.config_json = "{\"optimizer\":{\"lr\":0.01},\"precision\":\"bf16\"}";
    if (k.begin_run(k.ctx, &info, &f->diverged, &err) != ORCH_OK)
        return -1;
    step(&k, f->diverged, 0, 3.0, 1.0);
    step(&k, f->diverged, 1, 2.5, 8.0);
    step(&k, f->diverged, 2, 2.6, INFINITY);
    step(&k, f->diverged, 3, NAN, NAN);
    step(&k, f->diverged, 4, NAN, NAN);
    nan_event(&k, f->diverged, 3, ORCH_PHASE_FORWARD, "late.stage");
    nan_event(&k, f->diverged, 2, ORCH_PHASE_BACKWARD, "merger.mlp.2");
    nan_event(&k, f->diverged, 2, ORCH_PHASE_UPDATE, "merger.mlp.0");
    k.end_run(k.ctx, f->diverged, &(orch_run_end){ORCH_RUN_DIVERGED, "loss is NaN", NULL}, &err);

    /* A run with no steps at all. */
    info.name = "empty-c";
    info.config_json = NULL;
    if (k.begin_run(k.ctx, &info, &f->empty, &err) != ORCH_OK)
        return -1;
    k.end_run(k.ctx, f->empty, &(orch_run_end){ORCH_RUN_FAILED, "weights not found", NULL}, &err);
    orch_store_close(s);
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

/* One row of run_summary on a raw connection; the caller finalizes. */
static sqlite3_stmt *summary(sqlite3 *db, int64_t run)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT * FROM run_summary WHERE run_id = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, run);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    return st;
}

static int col(sqlite3_stmt *st, const char *name)
{
    for (int i = 0; i < sqlite3_column_count(st); i++)
        if (strcmp(sqlite3_column_name(st, i), name) == 0)
            return i;
    fail_msg("run_summary has no column %s", name);
    return -1;
}

static double real(sqlite3_stmt *st, const char *name)
{
    return sqlite3_column_double(st, col(st, name));
}

static int64_t integer(sqlite3_stmt *st, const char *name)
{
    return sqlite3_column_int64(st, col(st, name));
}

static const char *text(sqlite3_stmt *st, const char *name)
{
    const unsigned char *t = sqlite3_column_text(st, col(st, name));
    return t != NULL ? (const char *)t : "(null)";
}

static int is_null(sqlite3_stmt *st, const char *name)
{
    return sqlite3_column_type(st, col(st, name)) == SQLITE_NULL;
}

static void test_clean_run(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = summary(db, f->clean);
    assert_string_equal(text(st, "pipeline"), "pipelines/lora.lua");
    assert_string_equal(text(st, "name"), "lora-a");
    assert_string_equal(text(st, "strategy"), "lora");
    assert_string_equal(text(st, "status"), "finished");
    assert_string_equal(text(st, "precision"), "fp16");
    assert_true(real(st, "lr") == 0.0002);
    assert_int_equal(integer(st, "seed"), 7);
    assert_int_equal(integer(st, "steps"), 3);
    assert_int_equal(integer(st, "last_step"), 2);
    assert_true(real(st, "final_loss") == 0.5); /* step 2's, though step 1 came last */
    assert_true(real(st, "best_loss") == 0.5);
    assert_true(real(st, "max_grad_norm") == 4.0);
    assert_int_equal(integer(st, "nonfinite_steps"), 0);
    assert_true(is_null(st, "first_nonfinite_step"));
    assert_true(is_null(st, "first_nan_step"));
    assert_true(is_null(st, "first_nan_phase"));
    assert_int_equal(integer(st, "nan_events"), 0);
    assert_string_equal(text(st, "tags"), "[\"sweep\"]");
    assert_false(is_null(st, "created_at"));
    assert_false(is_null(st, "finished_at"));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_diverged_run(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = summary(db, f->diverged);
    assert_string_equal(text(st, "status"), "diverged");
    assert_string_equal(text(st, "precision"), "bf16");
    assert_int_equal(integer(st, "steps"), 5);
    assert_true(is_null(st, "final_loss"));        /* NaN */
    assert_true(real(st, "best_loss") == 2.5);     /* over finite losses */
    assert_true(isinf(real(st, "max_grad_norm"))); /* Inf is kept */
    assert_int_equal(integer(st, "nonfinite_steps"), 3);
    assert_int_equal(integer(st, "first_nonfinite_step"), 2);
    /* The lowest step's event, and at that step the first written. */
    assert_int_equal(integer(st, "first_nan_step"), 2);
    assert_string_equal(text(st, "first_nan_phase"), "backward");
    assert_string_equal(text(st, "first_nan_stage"), "merger.mlp.2");
    assert_string_equal(text(st, "first_nan_tensor"), "out");
    assert_int_equal(integer(st, "nan_events"), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_empty_run(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = summary(db, f->empty);
    assert_string_equal(text(st, "status"), "failed");
    assert_int_equal(integer(st, "steps"), 0);
    assert_true(is_null(st, "last_step"));
    assert_true(is_null(st, "final_loss"));
    assert_true(is_null(st, "max_grad_norm"));
    assert_true(is_null(st, "lr"));
    assert_int_equal(integer(st, "nonfinite_steps"), 0);
    assert_true(is_null(st, "first_nan_step"));
    sqlite3_finalize(st);
    /* Every run appears once. */
    sqlite3_prepare_v2(db, "SELECT count(*), count(DISTINCT run_id) FROM run_summary", -1, &st,
                       NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    assert_int_equal(sqlite3_column_int(st, 1), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ------------------------------------------- reading apart from rendering */

/* orch_store_read_runs fetches typed values, with no printing. */
static void test_read_runs_typed(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    orch_rowset runs = {0};
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_read_runs(s, NULL, "surgery", NULL, &runs, &err), ORCH_OK);
    assert_int_equal(runs.n_rows, 2); /* surgery-b and empty-c */
    int id = orch_rowset_column(&runs, "run_id");
    int loss = orch_rowset_column(&runs, "final_loss");
    int gnorm = orch_rowset_column(&runs, "max_grad_norm");
    int name = orch_rowset_column(&runs, "name");
    assert_true(id >= 0 && loss >= 0 && gnorm >= 0 && name >= 0);
    const orch_value *row = runs.cells;
    assert_int_equal(row[id].kind, ORCH_VALUE_INT);
    assert_int_equal(row[id].i, f->diverged);
    assert_int_equal(row[name].kind, ORCH_VALUE_TEXT);
    assert_string_equal(row[name].s, "surgery-b");
    assert_int_equal(row[loss].kind, ORCH_VALUE_NULL); /* NaN is stored as NULL */
    assert_int_equal(row[gnorm].kind, ORCH_VALUE_REAL);
    assert_true(isinf(row[gnorm].r));
    orch_rowset_free(&runs);
    assert_null(runs.cells);
    assert_int_equal(orch_store_read_runs(s, NULL, NULL, "bogus", &runs, &err), ORCH_EINVAL);
    orch_store_close(s);
}

/* orch_store_read_run fills the report; the text comes from the report
 * alone (the store is closed before it is rendered). */
static void test_read_run_then_render(void **state)
{
    fixture *f = *state;
    orch_store *s = NULL;
    orch_err err = {0};
    orch_run_report r;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_read_run(s, f->diverged, &r, &err), ORCH_OK);
    char *direct = NULL;
    size_t n_direct = 0;
    FILE *mem = open_memstream(&direct, &n_direct);
    assert_int_equal(orch_store_show_run(s, f->diverged, mem, &err), ORCH_OK);
    fclose(mem);
    orch_store_close(s);

    assert_int_equal(r.run_id, f->diverged);
    assert_int_equal(r.n_nan_events, 3);
    assert_int_equal(r.nan_events.n_rows, 3);
    assert_int_equal(r.nan_events.cells[0].kind, ORCH_VALUE_INT); /* step */
    assert_int_equal(r.nan_events.cells[0].i, 2);
    assert_int_equal(r.frozen_checked, -1);
    assert_int_equal(r.n_frozen_changes, 0);
    assert_int_equal(r.stats_extent.n_rows, 1);
    assert_non_null(strstr(r.config_json, "bf16"));

    char *text = NULL;
    size_t n_text = 0;
    mem = open_memstream(&text, &n_text);
    assert_int_equal(orch_render_run_text(&r, mem, &err), ORCH_OK);
    fclose(mem);
    assert_string_equal(text, direct);
    assert_non_null(strstr(text, "  status           diverged\n"));
    assert_non_null(strstr(text, "  error            loss is NaN\n"));
    assert_non_null(
        strstr(text, "  step 2, backward, stage merger.mlp.2, tensor out: 1 NaN, 0 Inf\n"));
    free(text);
    free(direct);
    orch_run_report_free(&r);
    orch_run_report_free(&r); /* safe twice */

    s = NULL;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_read_run(s, 999, &r, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "no run 999"));
    assert_null(r.config_json);
    orch_store_close(s);
}

/* A renderer needs no store: rows made by hand print as a table. */
static void test_render_rows_without_store(void **state)
{
    (void)state;
    char id[] = "id", loss[] = "loss", note_name[] = "note", note[] = "a,b";
    char *names[] = {id, loss, note_name};
    orch_value cells[] = {
        {ORCH_VALUE_INT, 7, 0.0, NULL, 0},  {ORCH_VALUE_REAL, 0, 0.125, NULL, 0},
        {ORCH_VALUE_TEXT, 0, 0.0, note, 3}, {ORCH_VALUE_INT, 10, 0.0, NULL, 0},
        {ORCH_VALUE_NULL, 0, 0.0, NULL, 0}, {ORCH_VALUE_NULL, 0, 0.0, NULL, 0},
    };
    orch_rowset rows = {3, names, 2, 2, cells};
    orch_err err = {0};
    char *text = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&text, &n);
    orch_render_opts people = {6, "-"};
    assert_int_equal(orch_render_rows(&rows, ORCH_FMT_TABLE, &people, mem, &err), ORCH_OK);
    assert_int_equal(orch_render_rows(&rows, ORCH_FMT_CSV, NULL, mem, &err), ORCH_OK);
    assert_int_equal(orch_render_rows(&rows, ORCH_FMT_JSON, NULL, mem, &err), ORCH_OK);
    fclose(mem);
    assert_string_equal(text, "id   loss  note\n"
                              "--  -----  ----\n"
                              " 7  0.125  a,b\n"
                              "10      -  -\n"
                              "(2 rows)\n"
                              "id,loss,note\r\n"
                              "7,0.125,\"a,b\"\r\n"
                              "10,,\r\n"
                              "[\n"
                              "  {\"id\": 7, \"loss\": 0.125, \"note\": \"a,b\"},\n"
                              "  {\"id\": 10, \"loss\": null, \"note\": null}\n"
                              "]\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diverged_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_runs_typed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_run_then_render, setup, teardown),
        cmocka_unit_test(test_render_rows_without_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
