/*
 * eval.h - evaluation of a held-out set, and early stopping on its metrics.
 *
 * `eval = { data = ..., every = N, batch_size = B }` (or `split = f`)
 * evaluates the model on a held-out set without gradients: the forward of
 * the whole model (tower, strategy, head, loss) on the set's images,
 * B at a time, with LoRA dropout off (orch_exec.evaluating) and nothing
 * else touched: no parameter, gradient, optimizer state, loss scale or
 * random draw of training changes, so a run's training trajectory is the
 * same with and without evaluation. The run loop (core/train.c) runs the
 * forwards; this file turns their outputs into metrics and decides early
 * stopping:
 *   eval/loss           the loss (cross-entropy or MSE) over the set's images
 *   eval/accuracy       classifiers: top-1 (ties go to the lower class id)
 *   eval/accuracy_top5  classifiers with more than 5 classes
 *   eval/mse            regression: mean squared error over every output
 * A row of logits with a non-finite value counts as a wrong prediction.
 */
#ifndef ORCH_EVAL_H
#define ORCH_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/dataset.h"
#include "core/pipeline.h"

/* Synthetic evaluation images without a seed of their own (eval.data.seed)
 * are drawn from the data seed xor this ("eval" in ASCII), not the
 * training images' stream. */
#define ORCH_EVAL_SYNTHETIC_SEED 0x6576616cULL

/* What the images evaluated so far add up to; summed over ranks (each a
 * share of the set) they are the evaluation's. Every member is a double so
 * one allreduce of ORCH_EVAL_SUMS values carries them. */
typedef struct orch_eval_sums {
    double loss_sum;   /* sum over batches of the batch's mean loss x its images */
    double n_images;   /* images evaluated */
    double correct1;   /* classifiers: images whose label is the top-1 class */
    double correct5;   /* classifiers: images whose label is among the top 5 */
    double sq_err_sum; /* regression: sum of squared errors over outputs */
    double n_values;   /* regression: outputs in sq_err_sum */
} orch_eval_sums;

#define ORCH_EVAL_SUMS (sizeof(orch_eval_sums) / sizeof(double))

/* Adds one evaluated batch: logits (batch->n_images x n_outputs, the head's
 * output of the forward that just ran) against the batch's labels, and the
 * batch's mean loss as the forward returned it. */
void orch_eval_add_batch(orch_eval_sums *sums, const float *logits, int n_outputs,
                         const orch_batch *batch, double loss);

enum { ORCH_EVAL_MAX_METRICS = 4 };

typedef struct orch_eval_metric {
    const char *name; /* "eval/loss", ... (static strings) */
    double value;
} orch_eval_metric;

/* The metrics of an evaluation of a head of kind and n_outputs outputs
 * (the list in the header comment), in that order; returns their count. */
int orch_eval_metrics(const orch_eval_sums *sums, orch_head_kind kind, int n_outputs,
                      orch_eval_metric out[ORCH_EVAL_MAX_METRICS]);

/* 1 when an evaluation of this head records a metric of that name. */
int orch_eval_metric_produced(const char *name, orch_head_kind kind, int n_outputs);

/* 1 for accuracies (higher is better), 0 for losses and errors. */
int orch_eval_higher_is_better(const char *name);

/* Early stopping's state, kept in checkpoints so a resumed run stops
 * where the uninterrupted one does. */
typedef struct orch_early_stop {
    int64_t evals;      /* evaluations compared so far */
    double best;        /* the best value of the metric (meaningless while best_step < 0) */
    int64_t best_step;  /* the step of the best, -1: no finite value yet */
    int64_t since_best; /* evaluations in a row without a strict improvement */
} orch_early_stop;

void orch_early_stop_init(orch_early_stop *es);

/* Takes the metric's value at step: a finite value strictly better than
 * the best (lower, or higher for accuracies) becomes the best; anything
 * else (equal, worse, NaN) is one more evaluation without improvement.
 * Returns 1 when stop->patience evaluations in a row did not improve. */
int orch_early_stop_update(orch_early_stop *es, const orch_stop *stop, double value, int64_t step);

/* "early stop: eval/loss did not improve for 3 evaluations (best 0.4123 at
 * step 40)" into buf. */
void orch_early_stop_reason(const orch_early_stop *es, const orch_stop *stop, char *buf,
                            size_t size);

#endif
