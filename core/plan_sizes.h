/*
 * plan_sizes.h - what a pipeline's run will hold, for `orch plan`: the
 * parameter count (total and trainable), tokens per image and per batch
 * (patches, and merged tokens after the spatial merger), and an estimate
 * of the memory of a step with and without gradient checkpointing.
 *
 * Everything comes from the graph the run builds (core/graph.h) and the
 * data it opens (orch_data_open: synthetic data renders nothing until
 * asked, a .npy source reads its pixel values), nothing is allocated at
 * the tower's size: the activation
 * bytes are orch_graph_activation_bytes_for at the largest batch (the
 * reservation the run makes, batch_size times the largest image, or the
 * evaluation's batch when that is larger). The step
 * estimate is parameters + their bf16/fp16 copy (when precision is not
 * fp32) + gradients + optimizer state (two values per trainable float) +
 * activations and their gradients; the executor's scratch (a few
 * activation rows) and the processor's buffers are left out.
 */
#ifndef ORCH_PLAN_SIZES_H
#define ORCH_PLAN_SIZES_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/pipeline.h"

typedef struct orch_plan_sizes {
    int64_t params, trainable;           /* parameter counts */
    int merge;                           /* spatial merge size (2: 2x2 patches a token) */
    int64_t data_patches;                /* patches of every image of the data set */
    int64_t image_patches, image_tokens; /* the largest image */
    int64_t batch_patches, batch_tokens; /* batch_size of the largest image */
    int batch_size;
    int grad_accum; /* micro-batches of batch_size per update: the activations are one's */
    /* bytes of a step */
    int64_t param_bytes, lowp_bytes, grad_bytes, optimizer_bytes;
    int64_t activation_bytes[2]; /* [0] checkpoint = false, [1] checkpoint = true */
    int64_t step_bytes[2];       /* the sum, without and with checkpointing */
} orch_plan_sizes;

/* Computes the sizes of pipeline p (validated). Returns ORCH_OK, or the
 * error of opening its data or building its graph (one line in err). */
int orch_plan_sizes_compute(const orch_pipeline *p, orch_plan_sizes *out, orch_err *err);

/* Writes the sizes as `--` comment lines (the plan listing stays pastable
 * as --set lines). */
void orch_plan_sizes_print(const orch_plan_sizes *s, FILE *out);

/* The sizes as a compact JSON object (malloc'd, free with free), or NULL
 * when out of memory. */
char *orch_plan_sizes_json(const orch_plan_sizes *s);

#endif
