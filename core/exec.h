/*
 * exec.h - runs a graph: forward, backward and the optimizer update of one
 * step, with the finite checks that give NaN provenance.
 *
 * The executor owns the per-batch state the stages share (geometry, rotary
 * tables, labels, scratch) and no policy: what to do about a non-finite
 * value is the run loop's business. It reports every non-finite tensor it
 * finds to an observer with the step, phase, stage and tensor name, the
 * counts, and whether the stage's inputs were finite (a producer of NaN is
 * told apart from a stage that only passed one on).
 */
#ifndef ORCH_EXEC_H
#define ORCH_EXEC_H

#include <stdint.h>

#include "core/dataset.h"
#include "core/geometry.h"
#include "core/graph.h"
#include "core/pipeline.h"
#include "kernels/kernels.h"

typedef struct orch_scan_event {
    int64_t step;
    orch_phase phase;
    const char *stage;
    const char *tensor; /* "output", "grad_input", "grad_weight", "weight", ... */
    orch_finite_stats stats;
    double input_absmax; /* largest finite |x| over the stage's inputs */
    int inputs_finite;   /* 1 when every input of the stage was finite */
} orch_scan_event;

typedef void (*orch_scan_observer)(void *ctx, const orch_scan_event *event);

typedef struct orch_exec {
    orch_graph *graph; /* borrowed */
    orch_precision precision;
    int check_nan;
    orch_inject inject;
    orch_scan_observer observer;
    void *observer_ctx;
    int64_t step;
    double loss_scale; /* multiplies the loss gradient (fp16 loss scaling) */
    /* The batch's place in its step's global batch (gradient accumulation,
     * data parallelism): loss_weight, its images / the global batch's,
     * also multiplies the loss gradient, so the gradients the micro-batches
     * add up are those of the global batch's mean loss; image_offset and
     * patch_offset, where its first image and patch sit in the global
     * batch, place the per-element random draws (LoRA dropout masks) and
     * the NaN injection (element 0 of the global batch) where one batch of
     * the global batch would have them. A lone batch: 1, 0, 0. */
    double loss_weight;
    int image_offset;
    int64_t patch_offset;
    int inject_image; /* the global batch's image that checks.inject hits (forward and
                         backward): 0, or the first of its rank's share with inject.rank */
    uint64_t seed;    /* the run's seed: LoRA dropout masks derive from it */
    int evaluating;   /* 1: forwards of an evaluation (core/eval.h): LoRA dropout is off (no
                         mask drawn) and checks.inject, which targets training steps, fires
                         nowhere */
    /* the current batch */
    int64_t n_patches;
    int n_images;
    int unit;
    orch_geometry geometry;
    /* the image_grid_thw the geometry and rotary tables were built for,
     * (grid_images, 3); a batch of the same grids reuses them, so a step
     * allocates nothing (orch_geometry_build allocates) */
    int64_t *grids;
    int grid_images; /* -1: nothing built yet */
    int max_grid_images;
    float *cos_t, *sin_t; /* (max patches, head_dim) */
    int32_t *labels;      /* (max images) class labels */
    float *targets;       /* (max images, outputs) regression targets */
    float *scratch;       /* attention scratch */
    size_t scratch_floats;
    float *work; /* (max patches, max(3D, rank)) backward scratch */
    int64_t work_floats;
    int nonfinite_seen;   /* any event reported in this step */
    double check_seconds; /* time spent in finite scans, over the executor's life */
} orch_exec;

/* Prepares an executor over g (reserved for max_patches / max_images).
 * Returns ORCH_OK or ORCH_ENOMEM. */
int orch_exec_init(orch_exec *ex, orch_graph *g, const orch_pipeline *p, int64_t max_patches,
                   int max_images, orch_err *err);

void orch_exec_free(orch_exec *ex);

/* Loads a batch: permutes the patch rows into window order, computes the
 * geometry and rotary tables (kept from the previous batch when its
 * image_grid_thw is the same), rounds the input to the run's precision.
 * Returns ORCH_EINVAL for a batch the graph cannot take. */
int orch_exec_set_batch(orch_exec *ex, const orch_batch *batch, orch_err *err);

/* Runs every stage forward; returns the loss (NaN/Inf as computed). */
double orch_exec_forward(orch_exec *ex);

/* Runs the stages from node first_node on (the detach feature cache fills
 * the tower's output itself and starts at orch_exec_tower_end). */
double orch_exec_forward_from(orch_exec *ex, int first_node);

/* The index of the first node after the tower's last stage. */
int orch_exec_tower_end(const orch_exec *ex);

/* Runs backward through the stages that need it, the loss gradient being
 * ex->loss_scale. Activation gradients start from zero; parameter gradients
 * are added to the flat gradient block, as autograd accumulates into .grad:
 * call orch_graph_zero_grad before a step's first backward. */
void orch_exec_backward(orch_exec *ex);

/* Refreshes the precision-rounded copies of parameters (all when all != 0
 * or on the first call, else only trainable ones): one block beside the
 * parameter block. Call after loading weights and after updates. */
int orch_exec_refresh_lowp(orch_exec *ex, int all, orch_err *err);

/* Scans every trainable parameter after an update (phase "update"); an
 * injection aimed at a frozen parameter writes into it here, for the
 * frozen checksum to catch. */
void orch_exec_scan_params(orch_exec *ex);

/* Per-stage statistics of the last forward (and backward, when a gradient
 * exists): for every stage, the largest finite |x| and the RMS of its
 * output, and the L2 norm of the gradient at its output (NaN when none). */
typedef void (*orch_stat_fn)(void *ctx, const char *stage, double act_absmax, double act_rms,
                             double grad_norm);
void orch_exec_stage_stats(const orch_exec *ex, orch_stat_fn emit, void *ctx);

/* The merger output in image order (the tower's output), rows x cols;
 * writable so the detach feature cache can fill it. */
float *orch_exec_tower_output(const orch_exec *ex, int64_t *rows, int *cols);

#endif
