/* test_model_nan.c - NaN provenance and frozen checks through the run loop.
 *
 * orch_train runs the tiny tower on synthetic images into a sink that keeps
 * every record in memory, so the tests assert exactly what a store would
 * receive: an injected NaN must be the run's first event at exactly its
 * step, phase, stage and tensor; a stage that only passes a NaN on must be
 * told apart from the one that produced it; a write into a frozen tensor
 * must be caught by the checksum. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/train.h"
#include "tests/testutil.h"
#include "tests/testutil_sink.h"

static memory_sink *run(orch_pipeline *p, orch_train_result *result)
{
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    orch_err err;
    orch_err_clear(&err);
    int rc = orch_train(p, NULL, &sink, result, &err);
    if (rc != ORCH_OK)
        fail_msg("orch_train: %s", err.msg);
    assert_true(m->ended);
    return m;
}

static void test_injected_nan_is_first_event(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 4;
    p.checks.inject.enabled = 1;
    p.checks.inject.step = 2;
    p.checks.inject.phase = ORCH_PHASE_BACKWARD;
    snprintf(p.checks.inject.stage, ORCH_NAME_MAX, "visual.merger.mlp.2");
    snprintf(p.checks.inject.tensor, ORCH_NAME_MAX, "grad_weight");
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_true(m->n_events >= 1);
    assert_int_equal(m->events[0].step, 2);
    assert_string_equal(m->events[0].phase, "backward");
    assert_string_equal(m->events[0].stage, "visual.merger.mlp.2");
    assert_string_equal(m->events[0].tensor, "grad_weight");
    assert_int_equal(m->events[0].nan_count, 1);
    assert_int_equal(m->status, ORCH_RUN_DIVERGED);
    assert_int_equal(result.status, ORCH_RUN_DIVERGED);
    assert_string_equal(result.first_nan, "step 2 backward visual.merger.mlp.2 grad_weight");
    /* steps 0, 1 and the diverged step 2 are recorded, nothing after */
    assert_int_equal(m->n_steps, 3);
    assert_true(isfinite(m->loss[0]) && isfinite(m->loss[1]));
    free(m);
}

static void test_producer_told_from_passer(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_DETACH);
    p.schedule.steps = 2;
    p.checks.on_nan = ORCH_ON_NAN_CONTINUE;
    p.checks.inject.enabled = 1;
    p.checks.inject.step = 0;
    p.checks.inject.phase = ORCH_PHASE_FORWARD;
    p.checks.inject.value_is_inf = 1;
    snprintf(p.checks.inject.stage, ORCH_NAME_MAX, "visual.blocks.2.mlp.down_proj");
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_true(m->n_events >= 2);
    assert_string_equal(m->events[0].stage, "visual.blocks.2.mlp.down_proj");
    assert_string_equal(m->events[0].phase, "forward");
    assert_string_equal(m->events[0].tensor, "output");
    assert_int_equal(m->events[0].inf_count, 1);
    assert_int_equal(m->events[0].inputs_finite, 1); /* it produced the Inf */
    /* the next stage only passed it on */
    assert_string_equal(m->events[1].stage, "visual.blocks.2.mlp_residual");
    assert_int_equal(m->events[1].inputs_finite, 0);
    /* continue keeps stepping, but the NaN reached the weights: the run
     * ends non-finite, so it is diverged all the same */
    assert_int_equal(result.status, ORCH_RUN_DIVERGED);
    assert_int_equal(m->n_steps, 2);
    free(m);
}

/* The Linear (bias pass) and attention (row normalization) outputs are
 * checked inside the kernels' own passes, not by a separate scan: a NaN
 * they pass on is still reported at each of them, as passed on. */
static void test_fused_checks_report_passed_nan(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 1;
    p.checks.on_nan = ORCH_ON_NAN_CONTINUE;
    p.checks.inject.enabled = 1;
    p.checks.inject.step = 0;
    p.checks.inject.phase = ORCH_PHASE_FORWARD;
    snprintf(p.checks.inject.stage, ORCH_NAME_MAX, "visual.blocks.0.norm1");
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_true(m->n_events >= 3);
    assert_string_equal(m->events[0].stage, "visual.blocks.0.norm1");
    assert_int_equal(m->events[0].nan_count, 1);
    assert_string_equal(m->events[1].stage, "visual.blocks.0.attn.qkv");
    assert_string_equal(m->events[1].tensor, "output");
    assert_int_equal(m->events[1].inputs_finite, 0);
    assert_true(m->events[1].nan_count >= 1);
    assert_string_equal(m->events[2].stage, "visual.blocks.0.attn");
    assert_string_equal(m->events[2].tensor, "output");
    assert_int_equal(m->events[2].inputs_finite, 0);
    assert_true(m->events[2].nan_count >= 1);
    free(m);
}

static void test_frozen_write_is_caught(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 3;
    p.checks.frozen = 1;
    p.checks.nan = 0;
    p.checks.on_nan = ORCH_ON_NAN_CONTINUE;
    p.checks.inject.enabled = 1;
    p.checks.inject.step = 1;
    p.checks.inject.phase = ORCH_PHASE_UPDATE;
    snprintf(p.checks.inject.stage, ORCH_NAME_MAX, "visual.blocks.0.attn.qkv");
    snprintf(p.checks.inject.tensor, ORCH_NAME_MAX, "weight");
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_int_equal(m->n_frozen, 1);
    assert_int_equal(m->frozen[0].step, 1);
    assert_string_equal(m->frozen[0].parameter, "visual.blocks.0.attn.qkv.weight");
    free(m);
}

static void test_clean_run_has_no_events_and_learns(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_DETACH);
    p.schedule.steps = 12;
    p.optimizer.lr = 1e-2;
    p.checks.frozen = 1;
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_int_equal(m->n_events, 0);
    assert_int_equal(m->n_frozen, 0);
    assert_int_equal(result.status, ORCH_RUN_FINISHED);
    assert_int_equal(m->n_steps, 12);
    for (int i = 0; i < 12; i++)
        assert_true(isfinite(m->loss[i]) && isfinite(m->grad_norm[i]));
    free(m);
    /* the same pipeline and seed give the same losses bit for bit */
    memory_sink *again = run(&p, &result);
    memory_sink *first = run(&p, &result);
    assert_memory_equal(again->loss, first->loss, sizeof(double) * 12);
    free(again);
    free(first);
}

/* The nan-repro mechanism (docs/nan-diagnosis.md) on the tiny tower: fp16,
 * a fixed loss scale of 65536, no skip, clip at 1.0, pretrained-scale
 * weights. */
static void nan_repro_pipeline(orch_pipeline *p)
{
    tiny_pipeline(p, ORCH_STRATEGY_SURGERY);
    p->model.config.initializer_range = 0.7;
    p->data.n_samples = 8;
    p->data.n_classes = 4;
    p->head.n_outputs = 4;
    p->data.image_height = p->data.image_width = 56;
    p->schedule.batch_size = 4;
    p->schedule.steps = 3;
    p->precision = ORCH_FP16;
    p->loss_scale.init = 65536;
    p->optimizer.grad_clip = 1.0;
    p->checks.frozen = 1;
    p->checks.on_nan = ORCH_ON_NAN_CONTINUE;
}

static int first_step_of(const memory_sink *m, const char *phase, const char *stage)
{
    for (int i = 0; i < m->n_events; i++)
        if (strcmp(m->events[i].phase, phase) == 0 && strcmp(m->events[i].stage, stage) == 0)
            return (int)m->events[i].step;
    return -1;
}

static void test_fp16_overflow_reaches_the_tower(void **state)
{
    (void)state;
    orch_pipeline p;
    nan_repro_pipeline(&p);
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_true(isfinite(m->loss[0]));       /* the first loss is fine */
    assert_false(isfinite(m->grad_norm[0])); /* the first backward is not */
    assert_int_equal(m->events[0].step, 0);
    assert_string_equal(m->events[0].phase, "backward");
    assert_int_equal(m->events[0].inputs_finite, 1);
    /* the update writes NaN into the replaced layer inside the tower ... */
    assert_int_equal(first_step_of(m, "update", "visual.merger.mlp.2"), 0);
    /* ... so the tower's output is NaN from the next step on */
    assert_int_equal(first_step_of(m, "forward", "visual.merger.mlp.2"), 1);
    assert_int_equal(m->n_frozen, 0); /* the frozen tower stays as it was */
    free(m);
}

static void test_dynamic_loss_scale_skips_and_stays_finite(void **state)
{
    (void)state;
    orch_pipeline p;
    nan_repro_pipeline(&p);
    p.loss_scale.dynamic = 1;
    orch_train_result result;
    memory_sink *m = run(&p, &result);
    assert_true(result.skipped_steps >= 1);
    assert_int_equal(first_step_of(m, "update", "visual.merger.mlp.2"), -1);
    assert_int_equal(first_step_of(m, "forward", "visual.merger.mlp.2"), -1);
    assert_true(isfinite(m->loss[m->n_steps - 1]));
    free(m);
    /* bf16 keeps fp32's range: nothing overflows */
    nan_repro_pipeline(&p);
    p.precision = ORCH_BF16;
    m = run(&p, &result);
    assert_int_equal(m->n_events, 0);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_injected_nan_is_first_event),
        cmocka_unit_test(test_producer_told_from_passer),
        cmocka_unit_test(test_fused_checks_report_passed_nan),
        cmocka_unit_test(test_frozen_write_is_caught),
        cmocka_unit_test(test_clean_run_has_no_events_and_learns),
        cmocka_unit_test(test_fp16_overflow_reaches_the_tower),
        cmocka_unit_test(test_dynamic_loss_scale_skips_and_stays_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
