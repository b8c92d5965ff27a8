/*
 * train.h - the run loop: data, graph, executor, optimizer and records.
 *
 * orch_train runs a validated pipeline for its scheduled steps and hands
 * every record to a sink (core/sink.h): the run row, each step's loss,
 * grad_norm and lr, per-group gradient norms and loss-scale metrics, and
 * every non-finite tensor the executor finds. The NaN policy
 * (checks.on_nan) is applied here: abort ends the run `diverged`,
 * skip_update drops the step's update and counts it, continue keeps going.
 * Whatever the policy, a run that ends with a non-finite loss or non-finite
 * parameters is `diverged`: it did not train a usable model.
 */
#ifndef ORCH_TRAIN_H
#define ORCH_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "core/dataset.h"
#include "core/err.h"
#include "core/mpi_comm.h"
#include "core/pipeline.h"
#include "core/sink.h"

typedef struct orch_train_options {
    const char *run_name;          /* NULL: the pipeline's name */
    FILE *progress;                /* a live line per step (a terminal), or NULL */
    FILE *json;                    /* one JSON object per step, or NULL */
    const char *feature_cache;     /* directory of the detach feature cache, or NULL */
    const char *run_dir;           /* where run folders (checkpoints) go, or NULL: none */
    int64_t resume_run_id;         /* > 0: continue this run instead of starting one */
    const char *resume_checkpoint; /* its last checkpoint, or NULL: from step 0 */
    const char *init_path;         /* trainable tensors to start from, read instead of
                                      p->strategy.init (a sweep's output_of: the dependency's
                                      final checkpoint), or NULL */
    orch_comm *comm; /* data parallelism: the ranks that train this run together (every
                        one calls orch_train with the same pipeline); NULL: this process
                        alone. Rank 0's sink records the run; the others pass a sink that
                        drops everything (orch_sink_drop): their NaN events and cache uses
                        reach rank 0 through the communicator. */
    /* the pipeline files the run was declared in (docs/bundles.md),
     * recorded through sink->source_file right after the run begins or is
     * resumed; borrowed; NULL/0: none */
    const orch_source_file *sources;
    int n_sources;
    int64_t stop_at; /* > 0: a test hook: a stop request when step stop_at - 1 ends, as
                        SIGTERM would make, on every rank at the same step
                        (ORCH_TEST_STOP_AT=N in `orch run`/`orch resume`) */
} orch_train_options;

typedef struct orch_train_result {
    int64_t run_id;
    orch_run_status status;
    int64_t steps_done;
    double first_loss, final_loss;
    double max_grad_norm;
    double last_grad_norm;
    int64_t last_step;    /* the last completed step, -1 if none */
    double check_seconds; /* time spent in the NaN checks' finite scans */
    int64_t nan_events;
    int64_t skipped_steps;
    char first_nan[256];   /* "step 1 backward visual.merger.mlp.2 grad_weight", or "" */
    char diverged_at[320]; /* a diverged run: where ("step 2 backward head grad_weight",
                              "step 5: the final loss is NaN", ...); else "" */
    int64_t evals;         /* evaluations done (eval = { ... }) */
    double eval_loss;      /* the last evaluation's eval/loss */
    double eval_accuracy;  /* and eval/accuracy (classifiers; else NaN) */
    char end_reason[256];  /* why a finished run ended before its last step ("early stop:
                              eval/loss did not improve for 3 evaluations (best 0.4123 at
                              step 40)"), else "" */
} orch_train_result;

/* Asks a running orch_train to stop after its current step; the run is
 * recorded `interrupted` with every completed step. A request made while
 * the run sets up (or before an orch_train starts) stops it after its first
 * step; the request is cleared when an orch_train ends normally.
 * Async-signal-safe: for SIGINT and SIGTERM handlers. */
void orch_train_request_stop(void);

/* orch_train_request_stop from the handler of signal sig: the run's error
 * text says "interrupted by SIGINT" (or SIGTERM). Async-signal-safe. */
void orch_train_stop_by_signal(int sig);

/* The order of ds's images in epoch `epoch` of a run of p, into
 * order[ds->n_images]: a permutation seeded by the data seed (data.seed,
 * else seed) and the epoch, reproducible on resume; the identity with
 * data.shuffle = false. */
void orch_train_epoch_order(const orch_pipeline *p, const orch_dataset *ds, int64_t epoch,
                            int *order);

/* Trains p and records it through sink. A run that starts is always ended
 * in the sink (finished, diverged or failed with the message). Returns
 * ORCH_OK when the run ran to its end (finished or diverged: see
 * result->status), ORCH_EINVAL for inputs found bad before the run row was
 * written, or another error for a failure (the run is then `failed`). */
int orch_train(const orch_pipeline *p, const orch_train_options *options, orch_sink *sink,
               orch_train_result *result, orch_err *err);

#endif
