/*
 * init.h - the values a graph's parameters start from.
 *
 * Frozen tower parameters come from a safetensors checkpoint (Hugging Face
 * names, with or without the "model." prefix, sharded through an index) or,
 * without one, from Hugging Face's _init_weights (normal(0, 0.02) for Linear
 * and Conv3d weights, zero biases, RMSNorm weights 1) seeded by the run's
 * seed. New trainable layers (surgery's replacement, adapter, head) start as
 * PyTorch's nn.Linear does (kaiming_uniform(a=sqrt(5)): U(-1/sqrt(in),
 * 1/sqrt(in)) for weight and bias); LoRA as PEFT does (A kaiming-uniform,
 * B zeros). An init safetensors file, when given, overrides the trainable
 * tensors it names (the same names checkpoints are written with).
 *
 * Each parameter's random stream is derived from the seed and its name, so
 * adding a layer does not change the values of the others. The stream is
 * counter-based (element i's draw depends on the stream and i alone), so
 * tensors are filled in parallel chunks on orch_threads_get() threads and
 * the values do not depend on the thread count. Weights files are read
 * (memory-mapped) and converted to fp32 in parallel too; a parameter a
 * weights file provides gets no fresh value first.
 */
#ifndef ORCH_INIT_H
#define ORCH_INIT_H

#include "core/err.h"
#include "core/graph.h"
#include "core/pipeline.h"

/* Initializes every parameter of g (reserved) for pipeline p. Returns
 * ORCH_OK, ORCH_EINVAL (a bad weights or init file: one line naming the
 * file and tensor) or ORCH_ENOMEM. */
int orch_init_params(orch_graph *g, const orch_pipeline *p, orch_err *err);

/* Progress of orch_init_params_progress: what is "init" (fresh values) or
 * "load" (reading model.weights); done of total bytes of parameter values
 * written so far in that phase. */
typedef void (*orch_init_progress_fn)(void *ctx, const char *what, int64_t done, int64_t total);

/* orch_init_params that calls fn (when not NULL; with ctx, from the calling
 * thread) as the values are written, for a set-up progress line. */
int orch_init_params_progress(orch_graph *g, const orch_pipeline *p, orch_init_progress_fn fn,
                              void *ctx, orch_err *err);

#endif
