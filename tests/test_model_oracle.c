/* test_model_oracle.c - orch's tiny tower against PyTorch.
 *
 * tests/oracle/make_fixtures.py builds the same tower with torch ops the
 * way Hugging Face computes it and saves weights, inputs, the tower's
 * output, and for surgery, detach and LoRA the loss and autograd's gradient
 * of every trainable tensor. Here orch loads the same files (safetensors,
 * .npy) and must agree to a relative error below 1e-4 (fp32), measured as
 * max|orch - torch| / max|torch| over each tensor. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dataset.h"
#include "core/exec.h"
#include "core/graph.h"
#include "core/init.h"
#include "store/npy.h"
#include "store/npy_dataset.h"
#include "store/safetensors.h"
#include "tests/testutil.h"

#define FIXTURES  "tests/oracle/fixtures/"
#define TOLERANCE 1e-4

static double relative_error(const float *got, const float *want, int64_t n)
{
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)got[i] - want[i]));
        scale = fmax(scale, fabs((double)want[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

typedef struct oracle_run {
    orch_pipeline p;
    orch_graph g;
    orch_exec ex;
    orch_dataset data;
    orch_batch batch;
    double loss;
} oracle_run;

static void oracle_open(oracle_run *r, orch_strategy_kind kind)
{
    orch_err err;
    tiny_pipeline(&r->p, kind);
    snprintf(r->p.model.weights, sizeof r->p.model.weights, FIXTURES "weights.safetensors");
    snprintf(r->p.strategy.init, sizeof r->p.strategy.init, FIXTURES "init.safetensors");
    if (orch_npy_dataset_load(FIXTURES "pixel_values.npy", FIXTURES "image_grid_thw.npy",
                              FIXTURES "labels.npy", 24, 2, &r->data, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    int indices[2] = {0, 1};
    memset(&r->batch, 0, sizeof r->batch);
    assert_int_equal(orch_dataset_batch(&r->data, indices, 2, &r->batch, &err), ORCH_OK);
    assert_int_equal(orch_graph_build(&r->p, &r->g, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(&r->g, r->batch.n_patches, 2, &err), ORCH_OK);
    if (orch_init_params(&r->g, &r->p, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(orch_exec_init(&r->ex, &r->g, &r->p, r->batch.n_patches, 2, &err), ORCH_OK);
    assert_int_equal(orch_exec_set_batch(&r->ex, &r->batch, &err), ORCH_OK);
    r->loss = orch_exec_forward(&r->ex);
    orch_exec_backward(&r->ex);
}

static void oracle_close(oracle_run *r)
{
    orch_exec_free(&r->ex);
    orch_graph_free(&r->g);
    orch_batch_free(&r->batch);
    orch_dataset_free(&r->data);
}

/* Compares the loss and every "grad.<name>" tensor of an expected file with
 * orch's gradients; every trainable parameter must have one. */
static void compare_expected(oracle_run *r, const char *file)
{
    orch_err err;
    orch_st_file *f = NULL;
    if (orch_st_open(file, &f, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    float loss = 0.0f;
    assert_int_equal(orch_st_read_f32_numel(f, "loss", 1, &loss, &err), ORCH_OK);
    double loss_error = fabs(r->loss - loss) / fabs(loss);
    print_message("%s: loss orch %.7f torch %.7f (rel %.2e)\n", file, r->loss, loss, loss_error);
    assert_true(loss_error < TOLERANCE);
    int compared = 0;
    for (int i = 0; i < r->g.n_params; i++) {
        orch_param *prm = &r->g.params[i];
        if (!prm->trainable)
            continue;
        char name[ORCH_NAME_MAX + 8];
        snprintf(name, sizeof name, "grad.%s", prm->name);
        float *want = malloc(sizeof(float) * (size_t)prm->numel);
        assert_non_null(want);
        if (orch_st_read_f32_numel(f, name, prm->numel, want, &err) != ORCH_OK)
            fail_msg("%s", err.msg);
        double e = relative_error(prm->grad, want, prm->numel);
        print_message("  %-44s rel %.2e\n", prm->name, e);
        if (!(e < TOLERANCE))
            fail_msg("%s: relative error %.3g >= %.0e", prm->name, e, TOLERANCE);
        free(want);
        compared++;
    }
    assert_true(compared >= 2);
    orch_st_close(f);
}

static void test_detach_matches_torch(void **state)
{
    (void)state;
    oracle_run r;
    oracle_open(&r, ORCH_STRATEGY_DETACH);
    /* the tower itself: merger output in image order */
    orch_npy want;
    orch_err err;
    assert_int_equal(orch_npy_load(FIXTURES "tower_out.npy", ORCH_NPY_F32, &want, &err), ORCH_OK);
    int64_t rows;
    int cols;
    const float *got = orch_exec_tower_output(&r.ex, &rows, &cols);
    assert_int_equal(rows * cols, want.shape[0] * want.shape[1]);
    double e = relative_error(got, want.f32, rows * cols);
    print_message("tower output rel %.2e\n", e);
    assert_true(e < TOLERANCE);
    orch_npy_free(&want);
    compare_expected(&r, FIXTURES "expected_detach.safetensors");
    oracle_close(&r);
}

static void test_surgery_matches_torch(void **state)
{
    (void)state;
    oracle_run r;
    oracle_open(&r, ORCH_STRATEGY_SURGERY);
    compare_expected(&r, FIXTURES "expected_surgery.safetensors");
    oracle_close(&r);
}

static void test_lora_matches_torch(void **state)
{
    (void)state;
    oracle_run r;
    oracle_open(&r, ORCH_STRATEGY_LORA);
    compare_expected(&r, FIXTURES "expected_lora.safetensors");
    oracle_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detach_matches_torch),
        cmocka_unit_test(test_surgery_matches_torch),
        cmocka_unit_test(test_lora_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
