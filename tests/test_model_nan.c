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

#define MAX_EVENTS 4096

typedef struct event {
    int64_t step;
    char phase[16], stage[ORCH_NAME_MAX], tensor[64];
    int64_t nan_count, inf_count;
    int inputs_finite;
} event;

typedef struct memory_sink {
    int n_events, n_steps;
    event events[MAX_EVENTS];
    double loss[64], grad_norm[64];
    orch_run_status status;
    int ended;
} memory_sink;

static int mem_begin(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    (void)ctx;
    (void)info;
    (void)err;
    *run_id = 1;
    return ORCH_OK;
}

static int mem_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    if (m->n_steps < 64) {
        m->loss[m->n_steps] = rec->loss;
        m->grad_norm[m->n_steps] = rec->grad_norm;
    }
    m->n_steps++;
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
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    if (m->n_events < MAX_EVENTS) {
        event *e = &m->events[m->n_events];
        e->step = rec->step;
        snprintf(e->phase, sizeof e->phase, "%s", orch_phase_name(rec->phase));
        snprintf(e->stage, sizeof e->stage, "%s", rec->stage);
        snprintf(e->tensor, sizeof e->tensor, "%s", rec->tensor);
        e->nan_count = rec->nan_count;
        e->inf_count = rec->inf_count;
        e->inputs_finite = rec->inputs_finite;
    }
    m->n_events++;
    return ORCH_OK;
}

/* Kept among the events as the store keeps it: tensor "frozen_changed". */
static int mem_frozen(void *ctx, int64_t run_id, const orch_frozen_change *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)err;
    if (m->n_events < MAX_EVENTS) {
        event *e = &m->events[m->n_events];
        memset(e, 0, sizeof *e);
        e->step = rec->step;
        snprintf(e->phase, sizeof e->phase, "update");
        snprintf(e->stage, sizeof e->stage, "%s", rec->parameter);
        snprintf(e->tensor, sizeof e->tensor, "frozen_changed");
        e->inputs_finite = 1;
    }
    m->n_events++;
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

static memory_sink *run(orch_pipeline *p, orch_train_result *result)
{
    memory_sink *m = calloc(1, sizeof *m);
    assert_non_null(m);
    orch_sink sink = {.ctx = m,
                      .begin_run = mem_begin,
                      .step = mem_step,
                      .metric = mem_metric,
                      .nan_event = mem_nan,
                      .frozen_change = mem_frozen,
                      .flush = mem_flush,
                      .end_run = mem_end};
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
    int found = 0;
    for (int i = 0; i < m->n_events; i++)
        if (strcmp(m->events[i].tensor, "frozen_changed") == 0) {
            assert_int_equal(m->events[i].step, 1);
            assert_string_equal(m->events[i].stage, "visual.blocks.0.attn.qkv.weight");
            found++;
        }
    assert_int_equal(found, 1);
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
    for (int i = 0; i < m->n_events; i++)
        assert_string_not_equal(m->events[i].tensor, "frozen_changed");
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
        cmocka_unit_test(test_frozen_write_is_caught),
        cmocka_unit_test(test_clean_run_has_no_events_and_learns),
        cmocka_unit_test(test_fp16_overflow_reaches_the_tower),
        cmocka_unit_test(test_dynamic_loss_scale_skips_and_stays_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
