/* test_model_run.c - faults of the run loop (orch_train), end to end on the
 * tiny tower with an in-memory sink:
 *   - out of memory while reserving activations is one error line (exit 1),
 *     for every strategy, never a crash;
 *   - a run that ends with a non-finite loss or non-finite parameters is
 *     `diverged` whatever checks.on_nan says, and its summary line prints
 *     NaN / Infinity as the store does. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/graph.h"
#include "core/init.h"
#include "core/train.h"
#include "store/safetensors.h"
#include "tests/testutil.h"

/* The out-of-memory test asks for more than any address space holds; under
 * AddressSanitizer such a request must fail like malloc does (NULL), not
 * abort the test. Read by ASan at start-up; unused in other builds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

typedef struct memory_sink {
    int begun, ended, n_steps;
    orch_run_status status;
    double last_loss;
} memory_sink;

static int mem_begin(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    memory_sink *m = ctx;
    (void)info;
    (void)err;
    m->begun = 1;
    *run_id = 1;
    return ORCH_OK;
}

static int mem_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    m->n_steps++;
    m->last_loss = rec->loss;
    return ORCH_OK;
}

static int mem_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    (void)ctx;
    (void)run_id;
    (void)rec;
    (void)err;
    return ORCH_OK;
}

static int mem_nan(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err)
{
    (void)ctx;
    (void)run_id;
    (void)rec;
    (void)err;
    return ORCH_OK;
}

static int mem_flush(void *ctx, orch_err *err)
{
    (void)ctx;
    (void)err;
    return ORCH_OK;
}

static int mem_end(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    m->status = rec->status;
    m->ended = 1;
    return ORCH_OK;
}

static orch_sink memory_sink_of(memory_sink *m)
{
    memset(m, 0, sizeof *m);
    orch_sink sink = {.ctx = m,
                      .begin_run = mem_begin,
                      .step = mem_step,
                      .metric = mem_metric,
                      .nan_event = mem_nan,
                      .flush = mem_flush,
                      .end_run = mem_end};
    return sink;
}

/* ------------------------------------------------- out of memory (fault 1) */

/* A batch whose activations cannot fit any address space (pixel_values
 * alone: 2^31 images of 1024 patches of 24 floats, 2^47 bytes and more):
 * the reservation fails on every machine and under every sanitizer. */
static void test_activation_oom_is_one_line(void **state)
{
    (void)state;
    static const orch_strategy_kind kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                               ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        orch_pipeline p;
        tiny_pipeline(&p, kinds[k]);
        p.data.image_height = p.data.image_width = 64; /* 32 x 32 = 1024 patches */
        p.schedule.batch_size = INT_MAX;
        p.checks.frozen = 1;
        memory_sink m;
        orch_sink sink = memory_sink_of(&m);
        orch_train_result result;
        orch_err err;
        orch_err_clear(&err);
        int rc = orch_train(&p, NULL, &sink, &result, &err);
        assert_int_equal(rc, ORCH_ENOMEM);
        assert_int_equal(orch_exit_code(rc), 1);
        assert_non_null(strstr(err.msg, "out of memory"));
        assert_null(strchr(err.msg, '\n'));
        assert_false(m.begun); /* found before the run row exists */
    }
}

/* ------------------------------------------ non-finite end (fault 14) */

/* Surgery for 3 steps under policy on_nan, with a NaN injected at the last
 * step (phase, stage, tensor). */
static orch_run_status run_with_last_step_nan(orch_on_nan on_nan, orch_phase phase,
                                              const char *stage, const char *tensor,
                                              orch_train_result *result, memory_sink *m)
{
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 3;
    p.checks.on_nan = on_nan;
    p.checks.inject.enabled = 1;
    p.checks.inject.step = 2;
    p.checks.inject.phase = phase;
    snprintf(p.checks.inject.stage, ORCH_NAME_MAX, "%s", stage);
    snprintf(p.checks.inject.tensor, ORCH_NAME_MAX, "%s", tensor);
    orch_sink sink = memory_sink_of(m);
    orch_err err;
    orch_err_clear(&err);
    int rc = orch_train(&p, NULL, &sink, result, &err);
    if (rc != ORCH_OK)
        fail_msg("orch_train: %s", err.msg);
    assert_true(m->ended);
    assert_int_equal(m->status, result->status);
    return result->status;
}

static void test_nan_final_loss_is_diverged_under_continue(void **state)
{
    (void)state;
    orch_train_result result;
    memory_sink m;
    assert_int_equal(run_with_last_step_nan(ORCH_ON_NAN_CONTINUE, ORCH_PHASE_FORWARD, "head",
                                            "output", &result, &m),
                     ORCH_RUN_DIVERGED);
    assert_int_equal(m.n_steps, 3); /* continue kept every step */
    assert_true(isnan(m.last_loss));
    assert_string_equal(result.diverged_at, "step 2: the final loss is NaN");
}

static void test_nan_final_loss_is_diverged_under_skip_update(void **state)
{
    (void)state;
    orch_train_result result;
    memory_sink m;
    /* the update is skipped, so the weights stay finite; the loss is not */
    assert_int_equal(run_with_last_step_nan(ORCH_ON_NAN_SKIP_UPDATE, ORCH_PHASE_FORWARD, "head",
                                            "output", &result, &m),
                     ORCH_RUN_DIVERGED);
    assert_int_equal(result.skipped_steps, 1);
    assert_int_equal(m.n_steps, 3);
}

static void test_nan_final_weights_are_diverged(void **state)
{
    (void)state;
    orch_train_result result;
    memory_sink m;
    /* the last loss is finite, the update after it writes a NaN weight */
    assert_int_equal(run_with_last_step_nan(ORCH_ON_NAN_CONTINUE, ORCH_PHASE_UPDATE, "head",
                                            "weight", &result, &m),
                     ORCH_RUN_DIVERGED);
    assert_true(isfinite(m.last_loss));
    assert_string_equal(result.diverged_at, "step 2: non-finite parameters (1 NaN, 0 Inf)");
}

static void test_finite_end_is_finished(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.checks.on_nan = ORCH_ON_NAN_CONTINUE;
    memory_sink m;
    orch_sink sink = memory_sink_of(&m);
    orch_train_result result;
    orch_err err;
    assert_int_equal(orch_train(&p, NULL, &sink, &result, &err), ORCH_OK);
    assert_int_equal(result.status, ORCH_RUN_FINISHED);
    assert_string_equal(result.diverged_at, "");
}

/* ------------------------------------------------ clipping in production */

/* head.weight after one SGD step (lr 1, no momentum, no decay) with
 * grad_clip max_norm, read from the run's final checkpoint. */
static void one_sgd_step(double max_norm, float *out, int64_t n, double *grad_norm)
{
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 1;
    p.optimizer.kind = ORCH_OPT_SGD;
    p.optimizer.lr = 1.0;
    p.optimizer.weight_decay = 0.0;
    p.optimizer.grad_clip = max_norm;
    char dir[256], path[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    orch_train_options options = {.run_dir = dir};
    memory_sink m;
    orch_sink sink = memory_sink_of(&m);
    orch_train_result result;
    orch_err err;
    assert_int_equal(orch_train(&p, &options, &sink, &result, &err), ORCH_OK);
    assert_int_equal(result.status, ORCH_RUN_FINISHED);
    *grad_norm = result.last_grad_norm;
    snprintf(path, sizeof path, "%s/1/checkpoint-0.safetensors", dir);
    orch_st_file *f = NULL;
    assert_int_equal(orch_st_open(path, &f, &err), ORCH_OK);
    assert_int_equal(orch_st_read_f32_numel(f, "head.weight", n, out, &err), ORCH_OK);
    orch_st_close(f);
    remove_tree(dir);
}

/* The run loop clips with the kernel's clip_grad_norm_ over the flat
 * gradient block: the clipped step is the unclipped one times
 * max_norm / (norm + 1e-6). */
static void test_production_clip_is_clip_grad_norm(void **state)
{
    (void)state;
    orch_pipeline p;
    orch_graph g;
    orch_err err;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    assert_int_equal(orch_graph_build(&p, &g, &err), ORCH_OK);
    assert_int_equal(orch_graph_reserve(&g, 64, 2, &err), ORCH_OK);
    assert_int_equal(orch_init_params(&g, &p, &err), ORCH_OK);
    const orch_param *w = &g.params[orch_graph_find_param(&g, "head.weight")];
    int64_t n = w->numel;
    float *free_step = malloc(sizeof(float) * (size_t)n);
    float *clipped = malloc(sizeof(float) * (size_t)n);
    assert_true(free_step != NULL && clipped != NULL);
    double norm = 0.0, norm_clipped = 0.0;
    one_sgd_step(0.0, free_step, n, &norm);
    assert_true(isfinite(norm) && norm > 0.0);
    double max_norm = norm / 4.0;
    one_sgd_step(max_norm, clipped, n, &norm_clipped);
    assert_true(norm_clipped == norm); /* recorded before clipping */
    double coef = max_norm / (norm + 1e-6);
    for (int64_t i = 0; i < n; i++) {
        double step = (double)w->data[i] - free_step[i]; /* lr * grad */
        double step_clipped = (double)w->data[i] - clipped[i];
        if (fabs(step_clipped - coef * step) > 1e-6 + 1e-5 * fabs(coef * step))
            fail_msg("head.weight[%lld]: clipped step %.9g, want %.9g", (long long)i, step_clipped,
                     coef * step);
    }
    free(free_step);
    free(clipped);
    orch_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_oom_is_one_line),
        cmocka_unit_test(test_nan_final_loss_is_diverged_under_continue),
        cmocka_unit_test(test_nan_final_loss_is_diverged_under_skip_update),
        cmocka_unit_test(test_nan_final_weights_are_diverged),
        cmocka_unit_test(test_finite_end_is_finished),
        cmocka_unit_test(test_production_clip_is_clip_grad_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
