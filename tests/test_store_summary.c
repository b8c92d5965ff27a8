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
    orch_nan_record r = {i, phase, stage, "out", 1, 0, 3.5, 1};
    assert_int_equal(k->nan_event(k->ctx, run, &r, &err), ORCH_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    if (f == NULL || make_temp_dir(f->dir, sizeof f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/orch.db", f->dir);
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
    k.end_run(k.ctx, f->clean, ORCH_RUN_FINISHED, NULL, &err);

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
    k.end_run(k.ctx, f->diverged, ORCH_RUN_DIVERGED, "loss is NaN", &err);

    /* A run with no steps at all. */
    info.name = "empty-c";
    info.config_json = NULL;
    if (k.begin_run(k.ctx, &info, &f->empty, &err) != ORCH_OK)
        return -1;
    k.end_run(k.ctx, f->empty, ORCH_RUN_FAILED, "weights not found", &err);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diverged_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_run, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
