/* test_model_eval.c - evaluation and early stopping (core/eval.h) through
 * the run loop, on the tiny tower with an in-memory sink:
 *   - the metrics of hand-made logits (top-1, top-5, ties, NaN rows, MSE);
 *   - the exact accuracy and loss of a head whose predictions are known
 *     (weight 0, bias from an init file) on a labelled .npy set;
 *   - evaluation leaves training bit-identical (surgery, detach with and
 *     without the feature cache, LoRA with dropout, bf16; NaN checks on);
 *   - metrics exactly after steps N-1, 2N-1, ... and the last one;
 *   - early stopping: the step, the status, the reason; across a resume;
 *   - eval.split's held-out count and disjointness;
 *   - a non-finite pixel in the evaluation set is a NaN event "eval:output";
 *   - refusals before the run row. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/data_source.h"
#include "core/dataset.h"
#include "core/eval.h"
#include "core/graph.h"
#include "core/plan_sizes.h"
#include "core/train.h"
#include "store/npy.h"
#include "store/safetensors.h"
#include "tests/testutil.h"
#include "tests/testutil_sink.h"

/* ------------------------------------------------ a sink that keeps metrics */

#define MAX_METRICS 256

/* The metrics of the last run (tests are single-threaded): eval/... only. */
static struct {
    int n;
    int64_t step[MAX_METRICS];
    char name[MAX_METRICS][32];
    double value[MAX_METRICS];
    char end_reason[256]; /* orch_run_end.reason */
} seen;

static int keep_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    (void)ctx;
    (void)run_id;
    (void)err;
    if (strncmp(rec->name, "eval/", 5) != 0)
        return ORCH_OK;
    assert_true(seen.n < MAX_METRICS);
    seen.step[seen.n] = rec->step;
    snprintf(seen.name[seen.n], sizeof seen.name[0], "%s", rec->name);
    seen.value[seen.n] = rec->value;
    seen.n++;
    return ORCH_OK;
}

static int (*memory_end)(void *, int64_t, const orch_run_end *, orch_err *);

static int keep_end(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    snprintf(seen.end_reason, sizeof seen.end_reason, "%s", rec->reason ? rec->reason : "");
    return memory_end(ctx, run_id, rec, err);
}

static int accept_resume(void *ctx, int64_t run_id, const orch_run_resume *rec, orch_err *err)
{
    memory_sink *m = ctx;
    (void)run_id;
    (void)rec;
    (void)err;
    m->begun = 1;
    return ORCH_OK;
}

static orch_sink sink_of(memory_sink *m)
{
    orch_sink sink = memory_sink_of(m);
    memory_end = sink.end_run;
    sink.resume_run = accept_resume;
    sink.metric = keep_metric;
    sink.end_run = keep_end;
    return sink;
}

/* The steps at which metric `name` was recorded, into steps; returns the count. */
static int steps_of(const char *name, int64_t *steps, int max)
{
    int n = 0;
    for (int i = 0; i < seen.n; i++)
        if (strcmp(seen.name[i], name) == 0 && n < max)
            steps[n++] = seen.step[i];
    return n;
}

/* The value of metric name recorded at step (fails when absent). */
static double value_at(const char *name, int64_t step)
{
    for (int i = 0; i < seen.n; i++)
        if (strcmp(seen.name[i], name) == 0 && seen.step[i] == step)
            return seen.value[i];
    fail_msg("no %s at step %lld", name, (long long)step);
    return NAN;
}

static memory_sink *train(const orch_pipeline *p, const orch_train_options *opt,
                          orch_train_result *result)
{
    memset(&seen, 0, sizeof seen);
    memory_sink *m = memory_sink_new();
    orch_sink sink = sink_of(m);
    orch_err err;
    orch_err_clear(&err);
    if (orch_train(p, opt, &sink, result, &err) != ORCH_OK)
        fail_msg("orch_train: %s", err.msg);
    return m;
}

/* An evaluation set of synthetic images other than the training ones. */
static void eval_synthetic(orch_pipeline *p, int every, int batch_size)
{
    p->eval.enabled = 1;
    p->eval.data = p->data;
    p->eval.data.n_samples = 5;
    p->eval.data.has_seed = 1;
    p->eval.data.seed = 1234;
    p->eval.every = every;
    p->eval.batch_size = batch_size;
}

/* ------------------------------------------------------ hand-made logits */

static void test_metrics_of_known_logits(void **state)
{
    (void)state;
    enum { N = 4, C = 7 };
    float logits[N * C] = {/* label 3: top-1 */
                           0, 0, 0, 5, 0, 0, 0,
                           /* label 6: 4 classes above it, so top-5 but not top-1 */
                           9, 8, 7, 6, 0, 0, 1,
                           /* label 1 ties class 0: the lower id comes first, so rank 1 */
                           2, 2, 0, 0, 0, 0, 0,
                           /* label 0 with a NaN elsewhere: wrong */
                           9, NAN, 0, 0, 0, 0, 0};
    int64_t labels[N] = {3, 6, 1, 0};
    orch_batch b = {0};
    b.n_images = N;
    b.label_kind = ORCH_LABEL_CLASS;
    b.n_targets = 1;
    b.class_labels = labels;
    orch_eval_sums sums = {0};
    orch_eval_add_batch(&sums, logits, C, &b, 0.5);
    orch_eval_metric m[ORCH_EVAL_MAX_METRICS];
    int n = orch_eval_metrics(&sums, ORCH_HEAD_CLASSIFIER, C, m);
    assert_int_equal(n, 3);
    assert_string_equal(m[0].name, "eval/loss");
    assert_true(m[0].value == 0.5);
    assert_string_equal(m[1].name, "eval/accuracy");
    assert_true(m[1].value == 0.25);
    assert_string_equal(m[2].name, "eval/accuracy_top5");
    assert_true(m[2].value == 0.75);
    /* 5 classes or fewer: no top-5 */
    assert_int_equal(orch_eval_metrics(&sums, ORCH_HEAD_CLASSIFIER, 5, m), 2);
    assert_false(orch_eval_metric_produced("eval/accuracy_top5", ORCH_HEAD_CLASSIFIER, 5));
    assert_true(orch_eval_metric_produced("eval/accuracy_top5", ORCH_HEAD_CLASSIFIER, 6));
    assert_false(orch_eval_metric_produced("eval/mse", ORCH_HEAD_CLASSIFIER, 3));

    /* regression: the mean of squared errors over every output */
    float out[4] = {1, 2, 3, 4}, targets[4] = {1, 0, 3, 1};
    orch_batch r = {0};
    r.n_images = 2;
    r.label_kind = ORCH_LABEL_REGRESSION;
    r.n_targets = 2;
    r.targets = targets;
    orch_eval_sums rs = {0};
    orch_eval_add_batch(&rs, out, 2, &r, 3.25);
    n = orch_eval_metrics(&rs, ORCH_HEAD_REGRESSION, 2, m);
    assert_int_equal(n, 2);
    assert_string_equal(m[1].name, "eval/mse");
    assert_true(m[1].value == (0.0 + 4.0 + 0.0 + 9.0) / 4.0);
}

static void test_early_stop_rule(void **state)
{
    (void)state;
    orch_stop stop = {1, "eval/loss", 2};
    orch_early_stop es;
    orch_early_stop_init(&es);
    assert_false(orch_early_stop_update(&es, &stop, NAN, 0)); /* no finite value yet */
    assert_int_equal(es.best_step, -1);
    assert_false(orch_early_stop_update(&es, &stop, 0.5, 1));
    assert_false(orch_early_stop_update(&es, &stop, 0.4, 2));
    assert_false(orch_early_stop_update(&es, &stop, 0.4, 3)); /* equal: not an improvement */
    assert_true(orch_early_stop_update(&es, &stop, 0.45, 4));
    char reason[256];
    orch_early_stop_reason(&es, &stop, reason, sizeof reason);
    assert_string_equal(reason,
                        "early stop: eval/loss did not improve for 2 evaluations (best 0.4000 at "
                        "step 2)");
    orch_stop acc = {1, "eval/accuracy", 1};
    orch_early_stop_init(&es);
    assert_false(orch_early_stop_update(&es, &acc, 0.5, 0));
    assert_false(orch_early_stop_update(&es, &acc, 0.75, 1)); /* higher is better */
    assert_true(orch_early_stop_update(&es, &acc, 0.5, 2));
}

/* ------------------------------------------- a head with known predictions */

/* A labelled .npy set of n images of 4 x 4 patches in dir: pixel values
 * uniform, labels as given; *nan_image (>= 0) gets a NaN pixel. */
static void write_npy_set(const char *dir, int n, const int64_t *labels, int nan_image,
                          orch_data *out)
{
    int64_t patches = 16, dim = 24;
    float *px = malloc(sizeof(float) * (size_t)(n * patches * dim));
    int64_t *grid = malloc(sizeof(int64_t) * 3 * (size_t)n);
    assert_non_null(px);
    assert_non_null(grid);
    unsigned long long state = 99;
    fill_uniform(px, (size_t)(n * patches * dim), -1.0f, 1.0f, &state);
    if (nan_image >= 0)
        px[nan_image * patches * dim + 5] = NAN;
    for (int i = 0; i < n; i++) {
        grid[3 * i] = 1;
        grid[3 * i + 1] = grid[3 * i + 2] = 4;
    }
    memset(out, 0, sizeof *out);
    out->source = ORCH_DATA_NPY;
    snprintf(out->pixel_values, sizeof out->pixel_values, "%s/px.npy", dir);
    snprintf(out->grid_thw_path, sizeof out->grid_thw_path, "%s/grid.npy", dir);
    snprintf(out->labels, sizeof out->labels, "%s/labels.npy", dir);
    orch_err err;
    orch_err_clear(&err);
    int64_t px_shape[2] = {n * patches, dim}, grid_shape[2] = {n, 3}, label_shape[1] = {n};
    if (orch_npy_save_f32(out->pixel_values, px, px_shape, 2, &err) != ORCH_OK ||
        orch_npy_save_i64(out->grid_thw_path, grid, grid_shape, 2, &err) != ORCH_OK ||
        orch_npy_save_i64(out->labels, labels, label_shape, 1, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    free(px);
    free(grid);
}

/* Surgery with lr 0 and the head's weight 0, bias (0, 0, 1): every image
 * gets the logits (0, 0, 1), so class 2 is predicted and the loss of an
 * image is log(2 + e) - 1 for class 2 and log(2 + e) for the others. */
static void test_accuracy_of_a_known_head(void **state)
{
    (void)state;
    char dir[256], init[300];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    static const int64_t labels[5] = {2, 0, 2, 1, 2};
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.optimizer.lr = 0.0;
    p.schedule.steps = 2;
    write_npy_set(dir, 5, labels, -1, &p.eval.data);
    p.eval.enabled = 1;
    p.eval.batch_size = 2; /* 3 batches, the last of 1 image */
    static const float zeros[3 * 24] = {0};
    static const float bias[3] = {0, 0, 1};
    orch_st_entry entries[2] = {{"head.weight", 2, {3, 24}, zeros}, {"head.bias", 1, {3}, bias}};
    snprintf(init, sizeof init, "%s/head.safetensors", dir);
    orch_err err;
    orch_err_clear(&err);
    if (orch_st_write(init, entries, 2, NULL, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    snprintf(p.strategy.init, sizeof p.strategy.init, "%s", init);
    orch_train_result res;
    memory_sink *m = train(&p, NULL, &res);
    assert_int_equal(res.status, ORCH_RUN_FINISHED);
    int64_t steps[8];
    assert_int_equal(steps_of("eval/accuracy", steps, 8), 1); /* at the end only */
    assert_int_equal(steps[0], 1);
    assert_true(value_at("eval/accuracy", 1) == 0.6);
    double l = log(2.0 + exp(1.0));
    double want = (3 * (l - 1.0) + 2 * l) / 5.0;
    if (fabs(value_at("eval/loss", 1) - want) > 1e-6)
        fail_msg("eval/loss %.9g, expected %.9g", value_at("eval/loss", 1), want);
    assert_int_equal(res.evals, 1);
    assert_true(res.eval_accuracy == 0.6);
    free(m);
    remove_tree(dir);
}

/* ------------------------------------ training unchanged by evaluation */

static void assert_same_training(orch_pipeline p, const char *cache, const char *what)
{
    orch_train_options opt = {.feature_cache = cache};
    orch_train_result plain, with_eval;
    memory_sink *a = train(&p, cache ? &opt : NULL, &plain);
    eval_synthetic(&p, 2, 5); /* a batch larger than training's */
    memory_sink *b = train(&p, cache ? &opt : NULL, &with_eval);
    assert_int_equal(a->n_steps, p.schedule.steps);
    assert_int_equal(b->n_steps, p.schedule.steps);
    for (int i = 0; i < p.schedule.steps; i++)
        if (!(a->loss[i] == b->loss[i]) || !(a->grad_norm[i] == b->grad_norm[i]))
            fail_msg("%s, step %d: loss %.9g vs %.9g, grad_norm %.9g vs %.9g", what, i, a->loss[i],
                     b->loss[i], a->grad_norm[i], b->grad_norm[i]);
    assert_int_equal(with_eval.evals, (p.schedule.steps + 1) / 2);
    assert_true(isfinite(with_eval.eval_loss));
    assert_int_equal(b->n_events, 0);
    free(a);
    free(b);
}

static void test_training_unchanged_by_eval(void **state)
{
    (void)state;
    static const orch_strategy_kind kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                               ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};
    static const char *names[] = {"surgery", "detach", "lora", "full"};
    for (int k = 0; k < 4; k++) {
        orch_pipeline p;
        tiny_pipeline(&p, kinds[k]); /* checks.nan is on */
        p.schedule.steps = 5;
        p.optimizer.lr = 1e-2;
        if (kinds[k] == ORCH_STRATEGY_LORA)
            p.strategy.dropout = 0.3; /* evaluation draws no mask */
        assert_same_training(p, NULL, names[k]);
    }
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_LORA);
    p.schedule.steps = 4;
    p.strategy.dropout = 0.2;
    p.precision = ORCH_BF16;
    assert_same_training(p, NULL, "lora bf16");
    /* fp16 with dynamic loss scaling: the evaluation leaves the scale alone */
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 4;
    p.precision = ORCH_FP16;
    p.loss_scale.init = 1024;
    p.loss_scale.dynamic = 1;
    p.loss_scale.growth_interval = 2;
    assert_same_training(p, NULL, "surgery fp16, dynamic loss scale");
    /* gradient accumulation: the micro-batch state is the step's */
    tiny_pipeline(&p, ORCH_STRATEGY_LORA);
    p.schedule.steps = 4;
    p.strategy.dropout = 0.2;
    p.schedule.grad_accum = 2;
    assert_same_training(p, NULL, "lora, grad_accum 2");
}

static void test_detach_cache_unchanged_by_eval(void **state)
{
    (void)state;
    char dir[256], cache[300];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(cache, sizeof cache, "%s/cache", dir);
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_DETACH);
    p.schedule.steps = 5;
    assert_same_training(p, cache, "detach, feature cache");
    remove_tree(dir);
}

/* LoRA with dropout, lr 0 and a lora_B that is not zero (from an init
 * file): the evaluation draws no mask, so it gives the same loss after
 * every step (masks would differ by step) and the loss of dropout 0. */
static void test_eval_has_no_dropout(void **state)
{
    (void)state;
    char dir[256], init[300];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_LORA);
    p.optimizer.lr = 0.0;
    p.schedule.steps = 3;
    eval_synthetic(&p, 1, 0);
    orch_graph g;
    orch_err err;
    orch_err_clear(&err);
    assert_int_equal(orch_graph_build(&p, &g, &err), ORCH_OK);
    int b = orch_graph_find_param(&g, "visual.merger.mlp.0.lora_B.weight");
    assert_true(b >= 0);
    orch_st_entry entry = {"visual.merger.mlp.0.lora_B.weight", 2, {0}, NULL};
    entry.shape[0] = g.params[b].shape[0];
    entry.shape[1] = g.params[b].shape[1];
    size_t n = (size_t)g.params[b].numel;
    orch_graph_free(&g);
    float *values = malloc(sizeof(float) * n);
    assert_non_null(values);
    unsigned long long rng = 5;
    fill_uniform(values, n, -0.5f, 0.5f, &rng);
    entry.data = values;
    snprintf(init, sizeof init, "%s/lora.safetensors", dir);
    if (orch_st_write(init, &entry, 1, NULL, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    free(values);
    snprintf(p.strategy.init, sizeof p.strategy.init, "%s", init);
    orch_train_result res;
    p.strategy.dropout = 0.0;
    memory_sink *m = train(&p, NULL, &res);
    double plain = value_at("eval/loss", 0);
    free(m);
    p.strategy.dropout = 0.5;
    m = train(&p, NULL, &res);
    for (int64_t step = 0; step < 3; step++)
        if (!(value_at("eval/loss", step) == plain))
            fail_msg("step %lld: eval/loss %.9g with dropout, %.9g without", (long long)step,
                     value_at("eval/loss", step), plain);
    free(m);
    remove_tree(dir);
}

/* checks.inject aims at a training step: the evaluation after that step
 * finds nothing (the training step's event is the only one). */
static void test_inject_spares_eval(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 3;
    eval_synthetic(&p, 1, 0);
    p.checks.on_nan = ORCH_ON_NAN_SKIP_UPDATE;
    p.checks.inject.enabled = 1;
    p.checks.inject.step = 1;
    p.checks.inject.phase = ORCH_PHASE_FORWARD;
    snprintf(p.checks.inject.stage, ORCH_NAME_MAX, "head");
    orch_train_result res;
    memory_sink *m = train(&p, NULL, &res);
    assert_int_equal(res.skipped_steps, 1);
    assert_true(m->n_events >= 1);
    for (int i = 0; i < m->n_events && i < MEMORY_SINK_EVENTS; i++)
        assert_null(strstr(m->events[i].tensor, "eval:"));
    assert_true(isfinite(value_at("eval/loss", 1)));
    assert_string_equal(res.first_nan, "step 1 forward head output");
    free(m);
}

/* ---------------------------------------------------------- eval.every */

static void test_eval_steps(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 7;
    eval_synthetic(&p, 3, 0);
    orch_train_result res;
    memory_sink *m = train(&p, NULL, &res);
    int64_t steps[16];
    /* after 3 and 6 steps done, then the last */
    assert_int_equal(steps_of("eval/loss", steps, 16), 3);
    assert_int_equal(steps[0], 2);
    assert_int_equal(steps[1], 5);
    assert_int_equal(steps[2], 6);
    assert_int_equal(steps_of("eval/accuracy", steps, 16), 3);
    assert_int_equal(steps_of("eval/accuracy_top5", steps, 16), 0); /* 3 classes */
    free(m);

    p.schedule.steps = 6; /* the last step is an every-3 one: evaluated once */
    m = train(&p, NULL, &res);
    assert_int_equal(steps_of("eval/loss", steps, 16), 2);
    assert_int_equal(steps[0], 2);
    assert_int_equal(steps[1], 5);
    free(m);

    p.eval.every = 0; /* only at the end */
    m = train(&p, NULL, &res);
    assert_int_equal(steps_of("eval/loss", steps, 16), 1);
    assert_int_equal(steps[0], 5);
    free(m);
}

/* An interrupted run is not evaluated at its end (its every-N ones stay). */
static void test_interrupted_run_has_no_end_eval(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 8;
    eval_synthetic(&p, 2, 0);
    orch_train_options opt = {.stop_at = 4}; /* stops when step 3 ends */
    orch_train_result res;
    memory_sink *m = train(&p, &opt, &res);
    assert_int_equal(res.status, ORCH_RUN_INTERRUPTED);
    int64_t steps[8];
    assert_int_equal(steps_of("eval/loss", steps, 8), 2);
    assert_int_equal(steps[0], 1);
    assert_int_equal(steps[1], 3);
    free(m);
    opt.stop_at = 3; /* stops when step 2 ends: no evaluation after it */
    m = train(&p, &opt, &res);
    assert_int_equal(steps_of("eval/loss", steps, 8), 1);
    assert_int_equal(steps[0], 1);
    free(m);
}

/* ------------------------------------------------------- early stopping */

/* lr 0: the evaluation loss never changes, so it never improves after the
 * first evaluation. */
static void stop_pipeline(orch_pipeline *p, int patience)
{
    tiny_pipeline(p, ORCH_STRATEGY_SURGERY);
    p->optimizer.lr = 0.0;
    p->schedule.steps = 10;
    eval_synthetic(p, 1, 0);
    p->schedule.stop.enabled = 1;
    snprintf(p->schedule.stop.metric, sizeof p->schedule.stop.metric, "eval/loss");
    p->schedule.stop.patience = patience;
}

static void test_early_stop(void **state)
{
    (void)state;
    orch_pipeline p;
    stop_pipeline(&p, 2);
    orch_train_result res;
    memory_sink *m = train(&p, NULL, &res);
    assert_int_equal(res.status, ORCH_RUN_FINISHED);
    assert_int_equal(m->status, ORCH_RUN_FINISHED);
    assert_int_equal(res.steps_done, 3); /* best at 0, no better at 1 and 2 */
    assert_int_equal(res.last_step, 2);
    int64_t steps[16];
    assert_int_equal(steps_of("eval/loss", steps, 16), 3); /* no second one at the end */
    char want[256];
    snprintf(want, sizeof want,
             "early stop: eval/loss did not improve for 2 evaluations (best %.4f at step 0)",
             value_at("eval/loss", 0));
    assert_string_equal(res.end_reason, want);
    assert_string_equal(seen.end_reason, want);
    free(m);

    /* patience larger than the run: it ends with its steps, no reason */
    stop_pipeline(&p, 20);
    m = train(&p, NULL, &res);
    assert_int_equal(res.steps_done, 10);
    assert_string_equal(res.end_reason, "");
    assert_string_equal(seen.end_reason, "");
    free(m);
}

/* A run interrupted between evaluations and resumed stops where the
 * uninterrupted one does: the patience count is in the checkpoint. */
static void test_early_stop_across_resume(void **state)
{
    (void)state;
    char dir[256], ckpt[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    orch_pipeline p;
    stop_pipeline(&p, 3);
    orch_train_result whole;
    memory_sink *m = train(&p, NULL, &whole);
    assert_int_equal(whole.steps_done, 4); /* best at 0; 1, 2, 3 no better */
    double loss0 = value_at("eval/loss", 0);
    free(m);

    orch_train_options opt = {.run_dir = dir, .stop_at = 2}; /* interrupted after step 1 */
    orch_train_result first;
    m = train(&p, &opt, &first);
    assert_int_equal(first.status, ORCH_RUN_INTERRUPTED);
    assert_int_equal(first.last_step, 1);
    free(m);
    snprintf(ckpt, sizeof ckpt, "%s/%lld/checkpoint-1.safetensors", dir, (long long)first.run_id);
    orch_train_options again = {
        .run_dir = dir, .resume_run_id = first.run_id, .resume_checkpoint = ckpt};
    orch_train_result second;
    m = train(&p, &again, &second);
    assert_int_equal(second.status, ORCH_RUN_FINISHED);
    assert_int_equal(second.last_step, 3);
    assert_string_equal(second.end_reason, whole.end_reason);
    assert_true(value_at("eval/loss", 3) == loss0);
    free(m);
    remove_tree(dir);
}

/* ----------------------------------------------------------- eval.split */

static void test_split(void **state)
{
    (void)state;
    orch_index_set train_set, held;
    orch_err err;
    orch_err_clear(&err);
    assert_int_equal(orch_dataset_split(10, 0.25, 7, &train_set, &held, &err), ORCH_OK);
    assert_int_equal(held.n, 3); /* ceil(2.5) */
    assert_int_equal(train_set.n, 7);
    int count[10] = {0};
    for (int i = 0; i < held.n; i++)
        count[held.index[i]]++;
    for (int i = 0; i < train_set.n; i++)
        count[train_set.index[i]]++;
    for (int i = 0; i < 10; i++)
        assert_int_equal(count[i], 1);
    for (int i = 1; i < held.n; i++)
        assert_true(held.index[i - 1] < held.index[i]);
    /* a pure function of the seed */
    orch_index_set t2, h2;
    assert_int_equal(orch_dataset_split(10, 0.25, 7, &t2, &h2, &err), ORCH_OK);
    assert_memory_equal(h2.index, held.index, sizeof(int) * 3);
    orch_index_set_free(&t2);
    orch_index_set_free(&h2);
    int differs = 0;
    for (uint64_t seed = 8; seed < 12 && !differs; seed++) {
        assert_int_equal(orch_dataset_split(10, 0.25, seed, &t2, &h2, &err), ORCH_OK);
        differs = memcmp(h2.index, held.index, sizeof(int) * 3) != 0;
        orch_index_set_free(&t2);
        orch_index_set_free(&h2);
    }
    assert_true(differs);
    orch_index_set_free(&train_set);
    orch_index_set_free(&held);
    assert_int_equal(orch_dataset_split(10, 0.1, 7, &train_set, &held, &err), ORCH_OK);
    assert_int_equal(held.n, 1);
    orch_index_set_free(&train_set);
    orch_index_set_free(&held);
    assert_int_equal(orch_dataset_split(10, 1.0, 7, &train_set, &held, &err), ORCH_EINVAL);
    assert_int_equal(orch_dataset_split(10, 0.95, 7, &train_set, &held, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "leaves no image to train on"));
    assert_null(train_set.index);
}

/* A run with eval.split: the held-out images are evaluated (their count is
 * what the metrics' fractions are of), and training differs from a run on
 * every image. */
static void test_split_run(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.data.n_samples = 8;
    p.schedule.steps = 4;
    orch_train_result all;
    memory_sink *a = train(&p, NULL, &all);
    p.eval.enabled = 1;
    p.eval.split = 0.25; /* 2 of 8 */
    p.eval.every = 2;
    orch_train_result split;
    memory_sink *b = train(&p, NULL, &split);
    assert_int_equal(split.evals, 2);
    int64_t steps[4];
    assert_int_equal(steps_of("eval/accuracy", steps, 4), 2);
    for (int i = 0; i < 2; i++) {
        double acc = value_at("eval/accuracy", steps[i]);
        assert_true(acc == 0.0 || acc == 0.5 || acc == 1.0); /* of 2 images */
    }
    int same = 1;
    for (int i = 0; i < 4; i++)
        same &= a->loss[i] == b->loss[i];
    assert_false(same); /* 6 images to train on, not 8 */
    free(a);
    free(b);
}

/* ------------------------------------------------------ NaN in evaluation */

static void test_nan_in_eval_is_recorded(void **state)
{
    (void)state;
    char dir[256];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    static const int64_t labels[4] = {0, 1, 2, 0};
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.steps = 2;
    write_npy_set(dir, 4, labels, 2, &p.eval.data); /* image 2: a NaN pixel */
    p.eval.enabled = 1;
    p.eval.batch_size = 2;
    orch_train_result res;
    memory_sink *m = train(&p, NULL, &res);
    /* training is untouched: the run finished, the NaN is the evaluation's */
    assert_int_equal(res.status, ORCH_RUN_FINISHED);
    assert_string_equal(res.first_nan, "");
    assert_true(m->n_events > 0);
    assert_int_equal(res.nan_events, m->n_events);
    for (int i = 0; i < m->n_events && i < MEMORY_SINK_EVENTS; i++) {
        assert_int_equal(m->events[i].step, 1);
        assert_string_equal(m->events[i].phase, "forward");
        assert_string_equal(m->events[i].tensor, "eval:output");
    }
    assert_string_equal(m->events[0].stage, "visual.patch_embed.proj");
    assert_true(isnan(value_at("eval/loss", 1)));
    assert_true(value_at("eval/accuracy", 1) <= 0.75); /* the NaN image is wrong */
    free(m);
    remove_tree(dir);
}

/* ------------------------------------------------------------ refusals */

static void assert_refused(const orch_pipeline *p, const char *needle)
{
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    orch_train_result res;
    orch_err err;
    orch_err_clear(&err);
    assert_int_equal(orch_train(p, NULL, &sink, &res, &err), ORCH_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("'%s' does not say '%s'", err.msg, needle);
    assert_null(strchr(err.msg, '\n'));
    assert_false(m->begun);
    free(m);
}

static void test_refusals(void **state)
{
    (void)state;
    orch_pipeline p;
    stop_pipeline(&p, 2);
    p.eval.enabled = 0;
    assert_refused(&p, "tiny.lua: schedule.stop watches eval/loss, but there is no eval");
    stop_pipeline(&p, 2);
    snprintf(p.schedule.stop.metric, sizeof p.schedule.stop.metric, "eval/mse");
    assert_refused(&p, "schedule.stop.metric = \"eval/mse\": an evaluation of this head records "
                       "\"eval/loss\" or \"eval/accuracy\"");
    stop_pipeline(&p, 0);
    assert_refused(&p, "schedule.stop.patience = 0");
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.eval.enabled = 1;
    p.eval.split = 0.99;
    assert_refused(&p, "tiny.lua: eval.split = 0.99 of 8 images leaves no image to train on");
}

/* orch plan's checks (orch_data_check) cover the evaluation set too. */
static void test_plan_checks_eval_data(void **state)
{
    (void)state;
    char dir[256];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    static const int64_t labels[2] = {0, 3}; /* 3 is outside head.classes = 3 */
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    orch_err err;
    orch_err_clear(&err);
    p.eval.enabled = 1;
    p.eval.split = 0.99;
    assert_int_equal(orch_data_check(&p, &err), ORCH_EINVAL);
    assert_string_equal(err.msg,
                        "tiny.lua: eval.split = 0.99 of 8 images leaves no image to train on");
    p.eval.split = 0.5;
    assert_int_equal(orch_data_check(&p, &err), ORCH_OK);
    p.eval.split = 0.0;
    write_npy_set(dir, 2, labels, -1, &p.eval.data);
    assert_int_equal(orch_data_check(&p, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "labels.npy: class id 3 of image 1 is outside [0, 3)"));
    p.eval.enabled = 0; /* not looked at without eval */
    assert_int_equal(orch_data_check(&p, &err), ORCH_OK);
    remove_tree(dir);
}

/* orch plan's memory estimate is the run's reservation: an evaluation
 * batch larger than training's reserves as a training batch of that size. */
static void test_plan_reserves_eval_batch(void **state)
{
    (void)state;
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.schedule.batch_size = 6;
    orch_plan_sizes big, with_eval;
    orch_err err;
    orch_err_clear(&err);
    assert_int_equal(orch_plan_sizes_compute(&p, &big, &err), ORCH_OK);
    p.schedule.batch_size = 2;
    eval_synthetic(&p, 0, 6);
    assert_int_equal(orch_plan_sizes_compute(&p, &with_eval, &err), ORCH_OK);
    assert_true(with_eval.activation_bytes[0] == big.activation_bytes[0]);
    assert_true(with_eval.activation_bytes[1] == big.activation_bytes[1]);
    assert_int_equal(with_eval.batch_size, 2); /* the listing is training's */
    p.eval.batch_size = 1;                     /* smaller: training's reservation */
    assert_int_equal(orch_plan_sizes_compute(&p, &with_eval, &err), ORCH_OK);
    assert_true(with_eval.activation_bytes[0] < big.activation_bytes[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_of_known_logits),
        cmocka_unit_test(test_early_stop_rule),
        cmocka_unit_test(test_accuracy_of_a_known_head),
        cmocka_unit_test(test_training_unchanged_by_eval),
        cmocka_unit_test(test_detach_cache_unchanged_by_eval),
        cmocka_unit_test(test_eval_has_no_dropout),
        cmocka_unit_test(test_inject_spares_eval),
        cmocka_unit_test(test_eval_steps),
        cmocka_unit_test(test_interrupted_run_has_no_end_eval),
        cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_early_stop_across_resume),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_run),
        cmocka_unit_test(test_nan_in_eval_is_recorded),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_plan_checks_eval_data),
        cmocka_unit_test(test_plan_reserves_eval_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
