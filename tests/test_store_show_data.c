/*
 * test_store_show_data.c - what `orch show RUN` says of a run's data and
 * evaluation (store/report.c, store/render_text.c), from rows put in
 * through the store sink: the data hash, files and size per role, class
 * names, the first ORCH_REPORT_FILES files or all of them, the eval figures
 * and the end reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sink.h"
#include "store/store.h"
#include "tests/testutil.h"

static const char sha_a[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char sha_d[] = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";

typedef struct fixture {
    char dir[256];
    char db[300];
    int64_t many;  /* 25 files, 3 classes, accuracy, stopped early */
    int64_t loss;  /* 1 file, eval loss only */
    int64_t plain; /* no files, no evaluation */
} fixture;

static int64_t record_run(orch_sink *k, const char *data_hash, int n_files, int n_classes,
                          int with_accuracy, int with_loss, const char *reason)
{
    orch_err err = {0};
    orch_run_info info = {.pipeline = "p.lua",
                          .name = "p",
                          .strategy = "lora",
                          .config_json = "{}",
                          .config_hash = sha_a,
                          .host = "h",
                          .data_hash = data_hash};
    int64_t run = 0;
    assert_int_equal(k->begin_run(k->ctx, &info, &run, &err), ORCH_OK);
    for (int i = 0; i < n_files; i++) {
        char path[64];
        snprintf(path, sizeof path, "img/%02d.png", i);
        orch_run_input in = {i < 20 ? ORCH_ROLE_TRAIN : ORCH_ROLE_EVAL, path, sha_a, 1024 * i};
        assert_int_equal(k->input(k->ctx, run, &in, &err), ORCH_OK);
    }
    static const char *const names[] = {"cat", "dog", "emu"};
    for (int i = 0; i < n_classes; i++)
        assert_int_equal(k->run_class(k->ctx, run, &(orch_run_class){i, names[i]}, &err), ORCH_OK);
    for (int step = 0; step < 4; step++) {
        orch_step_record st = {step, 1.0 / (step + 1), 1.0, 1e-3, 2.0};
        assert_int_equal(k->step(k->ctx, run, &st, &err), ORCH_OK);
        if (step % 2 == 1 && with_loss) {
            orch_metric_record m = {step, "eval/loss", step == 1 ? 0.5 : 0.75};
            assert_int_equal(k->metric(k->ctx, run, &m, &err), ORCH_OK);
        }
        if (step % 2 == 1 && with_accuracy) {
            orch_metric_record m = {step, "eval/accuracy", step == 1 ? 0.625 : 0.5};
            assert_int_equal(k->metric(k->ctx, run, &m, &err), ORCH_OK);
        }
    }
    orch_run_end end = {ORCH_RUN_FINISHED, NULL, reason};
    assert_int_equal(k->end_run(k->ctx, run, &end, &err), ORCH_OK);
    return run;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    orch_store *s = NULL;
    orch_sink k;
    orch_err err = {0};
    if (f == NULL || make_temp_store(f->dir, sizeof f->dir, f->db, sizeof f->db) != 0 ||
        orch_store_open(f->db, ORCH_STORE_READWRITE, &s, &err) != ORCH_OK ||
        orch_store_sink(s, &k, &err) != ORCH_OK)
        return -1;
    f->many = record_run(&k, sha_d, 25, 3, 1, 1, "early stopping: eval/loss did not improve");
    f->loss = record_run(&k, sha_a, 1, 0, 0, 1, NULL);
    f->plain = record_run(&k, NULL, 0, 0, 0, 0, NULL);
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

/* `orch show` of run, all_files as --files. */
static char *show(const fixture *f, int64_t run, int all_files)
{
    orch_store *s = NULL;
    orch_err err = {0};
    orch_run_report r;
    char *text = NULL;
    size_t n = 0;
    assert_int_equal(orch_store_open(f->db, ORCH_STORE_READONLY, &s, &err), ORCH_OK);
    assert_int_equal(orch_store_read_run_files(s, run, all_files, &r, &err), ORCH_OK);
    FILE *mem = open_memstream(&text, &n);
    assert_non_null(mem);
    assert_int_equal(orch_render_run_text(&r, mem, &err), ORCH_OK);
    fclose(mem);
    orch_run_report_free(&r);
    orch_store_close(s);
    return text;
}

/* text holds want; fails showing text otherwise. */
static void has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fprintf(stderr, "no\n%s\nin\n%s\n", want, text), fail();
}

static void test_many_files_listed_in_part(void **state)
{
    fixture *f = *state;
    char *text = show(f, f->many, 0);
    has(text,
        "  data_hash        d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0\n");
    has(text, "  end_reason       early stopping: eval/loss did not improve\n");
    /* sizes: 1 KiB * (0 + ... + 19) train, 1 KiB * (20 + ... + 24) eval */
    has(text, "\ndata\n"
              "  train            20 files, 190.0 KiB\n"
              "  eval             5 files, 110.0 KiB\n"
              "  classes          3: cat, dog, emu\n"
              "role   path        sha256        size\n");
    has(text, "train  img/00.png  0123456789ab  0 B\n");
    has(text, "train  img/09.png  0123456789ab  9.0 KiB\n(10 rows)\n"
              "... 15 more: orch show 1 --files\n");
    assert_null(strstr(text, "img/10.png"));
    /* the eval figures: last eval/loss 0.75, best accuracy 0.625 at step 1 */
    has(text, "  max_grad_norm    1.0\n"
              "  final_eval_loss  0.75\n"
              "  best_eval_acc    0.625 (step 1)\n");
    free(text);
}

static void test_all_files(void **state)
{
    fixture *f = *state;
    char *text = show(f, f->many, 1);
    has(text, "train  img/19.png  0123456789ab  19.0 KiB\n"
              "eval   img/20.png  0123456789ab  20.0 KiB\n");
    has(text, "eval   img/24.png  0123456789ab  24.0 KiB\n(25 rows)\n");
    assert_null(strstr(text, "more: orch show"));
    free(text);
}

static void test_loss_only_and_plain(void **state)
{
    fixture *f = *state;
    char *text = show(f, f->loss, 0);
    has(text, "  final_eval_loss  0.75\n"
              "  best_eval_step   1\n");
    assert_null(strstr(text, "best_eval_acc"));
    assert_null(strstr(text, "end_reason"));
    assert_null(strstr(text, "classes"));
    has(text, "\ndata\n  train            1 file, 0 B\n");
    has(text, "(1 row)\n\n");
    free(text);
    text = show(f, f->plain, 0);
    has(text, "  data_hash        -\n");
    has(text, "\ndata\n  no data files (synthetic data)\n\n");
    assert_null(strstr(text, "eval_"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_files_listed_in_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss_only_and_plain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
