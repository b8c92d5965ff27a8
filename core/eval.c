/* eval.c - evaluation metrics and early stopping; see eval.h. */
#include "core/eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The rank of the label among the row's classes: how many classes come
 * before it (a larger logit, or an equal one with a lower id, as a stable
 * descending sort puts them). -1 when the row holds a non-finite value. */
static int label_rank(const float *row, int n, int64_t label)
{
    for (int c = 0; c < n; c++)
        if (!isfinite(row[c]))
            return -1;
    float mine = row[label];
    int before = 0;
    for (int c = 0; c < n; c++)
        if (row[c] > mine || (row[c] == mine && c < label))
            before++;
    return before;
}

void orch_eval_add_batch(orch_eval_sums *sums, const float *logits, int n_outputs,
                         const orch_batch *batch, double loss)
{
    sums->loss_sum += loss * batch->n_images;
    sums->n_images += batch->n_images;
    for (int i = 0; i < batch->n_images; i++) {
        const float *row = logits + (size_t)i * n_outputs;
        if (batch->label_kind == ORCH_LABEL_CLASS) {
            int rank = label_rank(row, n_outputs, batch->class_labels[i]);
            sums->correct1 += rank == 0;
            sums->correct5 += rank >= 0 && rank < 5;
        } else if (batch->label_kind == ORCH_LABEL_REGRESSION) {
            const float *target = batch->targets + (size_t)i * batch->n_targets;
            for (int k = 0; k < batch->n_targets; k++) {
                double d = (double)row[k] - (double)target[k];
                sums->sq_err_sum += d * d;
            }
            sums->n_values += batch->n_targets;
        }
    }
}

int orch_eval_metrics(const orch_eval_sums *sums, orch_head_kind kind, int n_outputs,
                      orch_eval_metric out[ORCH_EVAL_MAX_METRICS])
{
    int n = 0;
    double images = sums->n_images;
    out[n++] = (orch_eval_metric){"eval/loss", sums->loss_sum / images};
    if (kind == ORCH_HEAD_CLASSIFIER) {
        out[n++] = (orch_eval_metric){"eval/accuracy", sums->correct1 / images};
        if (n_outputs > 5)
            out[n++] = (orch_eval_metric){"eval/accuracy_top5", sums->correct5 / images};
    } else {
        out[n++] = (orch_eval_metric){"eval/mse", sums->sq_err_sum / sums->n_values};
    }
    return n;
}

int orch_eval_metric_produced(const char *name, orch_head_kind kind, int n_outputs)
{
    if (strcmp(name, "eval/loss") == 0)
        return 1;
    if (kind == ORCH_HEAD_CLASSIFIER)
        return strcmp(name, "eval/accuracy") == 0 ||
               (n_outputs > 5 && strcmp(name, "eval/accuracy_top5") == 0);
    return strcmp(name, "eval/mse") == 0;
}

int orch_eval_higher_is_better(const char *name)
{
    return strncmp(name, "eval/accuracy", strlen("eval/accuracy")) == 0;
}

void orch_early_stop_init(orch_early_stop *es)
{
    es->evals = 0;
    es->best = NAN;
    es->best_step = -1;
    es->since_best = 0;
}

int orch_early_stop_update(orch_early_stop *es, const orch_stop *stop, double value, int64_t step)
{
    es->evals++;
    int better = 0;
    if (isfinite(value))
        better = es->best_step < 0 ||
                 (orch_eval_higher_is_better(stop->metric) ? value > es->best : value < es->best);
    if (better) {
        es->best = value;
        es->best_step = step;
        es->since_best = 0;
    } else {
        es->since_best++;
    }
    return stop->enabled && stop->patience > 0 && es->since_best >= stop->patience;
}

void orch_early_stop_reason(const orch_early_stop *es, const orch_stop *stop, char *buf,
                            size_t size)
{
    int n = snprintf(buf, size, "early stop: %s did not improve for %lld evaluation%s",
                     stop->metric, (long long)es->since_best, es->since_best == 1 ? "" : "s");
    if (n < 0 || (size_t)n >= size)
        return;
    if (es->best_step >= 0)
        snprintf(buf + n, size - (size_t)n, " (best %.4f at step %lld)", es->best,
                 (long long)es->best_step);
    else
        snprintf(buf + n, size - (size_t)n, " (no finite value)");
}
