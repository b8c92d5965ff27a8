/*
 * graph.h - a pipeline as a DAG of stages over the Qwen2.5-VL vision tower.
 *
 * A node is a stage named like the Hugging Face module it computes
 * ("visual.blocks.3.attn.qkv", "visual.merger.mlp.2", "adapter", "head",
 * "loss"): one op from kernels/, its input and output tensors, and its
 * parameters. Nodes are stored in topological order (the builder appends
 * them in forward order), so forward walks the array and backward walks it
 * in reverse. Strategies (surgery, detach, lora, full) are transformations
 * of the base graph: they swap a parameter, change a node's op or mark
 * parameters trainable; orch_graph_plan_backward then decides which stages
 * a gradient must reach, as autograd's requires_grad would.
 *
 * Tensors are activations: their row count depends on the batch (patches,
 * merge units or images), their width is fixed. Parameters are the model's
 * weights under Hugging Face names. The graph owns all of it; memory for
 * activations is sized once for the largest batch (orch_graph_reserve).
 */
#ifndef ORCH_GRAPH_H
#define ORCH_GRAPH_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/pipeline.h"

typedef enum orch_op {
    ORCH_OP_LINEAR = 0,  /* y = x W^T (+ b) */
    ORCH_OP_LORA_LINEAR, /* y = x W^T + b + s (x A^T) B^T, W frozen */
    ORCH_OP_RMSNORM,     /* Qwen2RMSNorm with learned weight */
    ORCH_OP_ATTENTION,   /* rotary on q, k of a fused qkv, then segment attention */
    ORCH_OP_SWIGLU,      /* silu(gate) * up */
    ORCH_OP_GELU,        /* exact erf GELU */
    ORCH_OP_ADD,         /* residual add */
    ORCH_OP_UNPERMUTE,   /* out[window_index[k]] = in[k]: back to image order */
    ORCH_OP_MEAN_POOL,   /* mean over each image's merged tokens */
    ORCH_OP_CROSS_ENTROPY,
    ORCH_OP_MSE,
    ORCH_OP__COUNT
} orch_op;

/* How many rows a tensor has for a given batch. */
typedef enum orch_rows {
    ORCH_ROWS_PATCH = 0, /* N patches */
    ORCH_ROWS_UNIT,      /* N / merge^2 merged tokens */
    ORCH_ROWS_IMAGE,     /* images in the batch */
    ORCH_ROWS_ONE        /* a scalar row (the loss) */
} orch_rows;

typedef struct orch_tensor {
    char name[ORCH_NAME_MAX]; /* "<stage>:out", "<stage>:rstd", ... */
    orch_rows rows;
    int cols;
    int view_of;         /* -1, or the tensor whose memory this one reinterprets */
    int alias_of;        /* -1, or (gradient checkpointing) the same tensor of the
                            first recomputed block, whose buffers this one reuses */
    int requires_grad;   /* set by orch_graph_plan_backward */
    int is_aux;          /* saved for a backward, not a stage output */
    int is_block_output; /* the residual output that ends a vision block: under
                            gradient checkpointing it stays resident (the next
                            block's input), never aliased nor recomputed */
    float *data;         /* rows_max * cols floats; owned unless view_of >= 0 */
    float *grad;         /* same shape; NULL when no gradient reaches it */
    int64_t cap;         /* floats allocated */
} orch_tensor;

/* Trainable groups reported as separate grad norms in metrics. */
typedef enum orch_group {
    ORCH_GROUP_FROZEN = 0,
    ORCH_GROUP_REPLACEMENT, /* surgery's new layer */
    ORCH_GROUP_ADAPTER,
    ORCH_GROUP_LORA_A,
    ORCH_GROUP_LORA_B,
    ORCH_GROUP_HEAD,
    ORCH_GROUP_TOWER, /* full fine-tuning */
    ORCH_GROUP__COUNT
} orch_group;

const char *orch_group_name(orch_group group);

/* What a parameter is in its layer; decides its fresh initialization. */
typedef enum orch_param_role {
    ORCH_PARAM_WEIGHT = 0, /* a Linear (or patch-embedding Conv3d) weight */
    ORCH_PARAM_BIAS,       /* a Linear bias */
    ORCH_PARAM_NORM,       /* an RMSNorm weight (starts at 1) */
    ORCH_PARAM_LORA_A,     /* PEFT lora_A: U(+-1/sqrt(fan_in)) */
    ORCH_PARAM_LORA_B,     /* PEFT lora_B: starts at 0 */
    ORCH_PARAM__COUNT
} orch_param_role;

#define ORCH_PARAM_MAX_DIMS 5

typedef struct orch_param {
    char name[ORCH_NAME_MAX]; /* Hugging Face / PEFT name */
    int ndim;
    int64_t shape[ORCH_PARAM_MAX_DIMS]; /* as stored in checkpoints */
    int64_t numel;
    int rows, cols; /* the 2-D view kernels use (a bias: rows 1) */
    /* Views into the graph's flat blocks (orch_graph_reserve), never owned
     * by the parameter: data into param_memory; grad, m and v (trainable
     * only, else NULL) at the same offset of grad_memory and opt_memory. */
    float *data;
    float *lowp; /* precision-rounded copy used by products (a view into
                    lowp_memory, same offset as data), or NULL under fp32 */
    float *grad;
    float *m, *v;
    int trainable;
    orch_group group;
    orch_param_role role;
    int fan_in;        /* inputs of the layer the parameter belongs to */
    int in_tower;      /* part of the vision tower (the "visual." modules) */
    uint64_t checksum; /* frozen parameters: 64-bit xxh3 at the start of the run */
} orch_param;

enum { ORCH_NODE_MAX_IN = 2, ORCH_NODE_MAX_PARAM = 4, ORCH_NODE_MAX_AUX = 3 };

typedef struct orch_node {
    char stage[ORCH_NAME_MAX];
    orch_op op;
    int in[ORCH_NODE_MAX_IN];       /* tensor ids, -1 unused */
    int out;                        /* tensor id */
    int param[ORCH_NODE_MAX_PARAM]; /* weight, bias, lora_A, lora_B; -1 unused */
    int aux[ORCH_NODE_MAX_AUX];     /* saved tensors (rstd, lse, u, rotated qkv) */
    int full_attention;             /* attention: 1 = per frame, 0 = windows */
    float eps;                      /* rmsnorm */
    float scale;                    /* lora alpha / r */
    float dropout;                  /* lora: p of the branch's input dropout */
    int in_dim, out_dim, rank;
    int needs_backward; /* set by orch_graph_plan_backward */
    int block;          /* vision block index, -1 outside the blocks */
} orch_node;

typedef struct orch_graph {
    orch_model_config config;
    int n_nodes, cap_nodes;
    orch_node *nodes;
    int n_tensors, cap_tensors;
    orch_tensor *tensors;
    int n_params, cap_params;
    orch_param *params;
    int input;               /* pixel_values tensor (window order) */
    int tower_out;           /* merger output in image order: "visual" */
    int logits;              /* head output */
    int loss;                /* loss tensor (1 x 1) */
    int detached;            /* detach: no gradient enters the tower */
    int input_requires_grad; /* grad_through_frozen */
    int checkpoint;          /* recompute frozen blocks' activations in backward */
    int64_t rows_max[4];     /* reserved rows per orch_rows kind */
    /* Flat parameter memory, as llm.c keeps it: one block per family, each
     * parameter a view into it, so an optimizer step, a norm, zero_grad or a
     * data-parallel allreduce is one call on one buffer. Trainable
     * parameters come first, in parameter order, and take the first
     * n_trainable_floats of param_memory; their gradients and optimizer
     * state sit at the same offsets of grad_memory and opt_memory. */
    float *param_memory;        /* n_param_floats: every parameter; owned */
    float *grad_memory;         /* n_trainable_floats; owned */
    float *opt_memory;          /* 2 * n_trainable_floats: m, then v; owned */
    float *lowp_memory;         /* n_param_floats rounded to bf16/fp16 (allocated by
                                   orch_exec_refresh_lowp), or NULL; owned */
    int64_t n_param_floats;     /* all parameters */
    int64_t n_trainable_floats; /* the trainable prefix */
} orch_graph;

/* Builds the graph of pipeline p: the tower from p->model.config, the
 * strategy's transformation, head and loss. Parameters get their shapes but
 * no values (see init.h). Returns ORCH_OK, ORCH_EINVAL (a strategy naming a
 * layer the tower does not have) or ORCH_ENOMEM. */
int orch_graph_build(const orch_pipeline *p, orch_graph *g, orch_err *err);

/* Frees everything the graph owns and zeroes it. NULL-safe. */
void orch_graph_free(orch_graph *g);

/* Decides, from the trainable parameters and input_requires_grad, which
 * tensors carry a gradient and which nodes run a backward. Call after the
 * strategy changed trainability and before orch_graph_reserve. */
void orch_graph_plan_backward(orch_graph *g);

/* Allocates the flat parameter, gradient and optimizer-state blocks (the
 * first call only: trainability is fixed from then on) and activation (and
 * activation-gradient) memory for batches of at most max_patches patches
 * and max_images images. Parameters are zero until orch_init_params.
 * Returns ORCH_OK or ORCH_ENOMEM (then the graph holds what was allocated
 * so far, freed by orch_graph_free, and must not be run). */
int orch_graph_reserve(orch_graph *g, int64_t max_patches, int max_images, orch_err *err);

/* The flat gradient buffer: the gradients of every trainable parameter,
 * one contiguous block of *n floats (each parameter's grad a view into it).
 * A data-parallel allreduce of a step's gradients is one call on it. NULL
 * with *n = 0 before orch_graph_reserve. */
float *orch_graph_grads(const orch_graph *g, int64_t *n);

/* The trainable parameters' values, the same layout as orch_graph_grads. */
float *orch_graph_trainable_values(const orch_graph *g, int64_t *n);

/* Zeroes the flat gradient block (and nothing else). Backward accumulates
 * into parameter gradients, so a step calls this first. */
void orch_graph_zero_grad(orch_graph *g);

/* With checkpoint on: 1 when block's activations are not kept but
 * recomputed in backward (a frozen block: no trainable parameter). */
int orch_graph_block_recomputed(const orch_graph *g, int block);

/* Bytes of activation and activation-gradient memory reserved. */
int64_t orch_graph_activation_bytes(const orch_graph *g);

/* The bytes orch_graph_reserve reserves for activations and their
 * gradients on a graph that has none yet, for batches of at most
 * max_patches patches and max_images images, without allocating them
 * (`orch plan`'s estimate: equal to orch_graph_activation_bytes after that
 * reservation). Plans the checkpoint aliases as reservation does. -1 when
 * out of memory. */
int64_t orch_graph_activation_bytes_for(orch_graph *g, int64_t max_patches, int max_images);

/* Lookups: the id of a node, tensor or parameter by name, -1 if absent. */
int orch_graph_find_node(const orch_graph *g, const char *stage);
int orch_graph_find_tensor(const orch_graph *g, const char *name);
int orch_graph_find_param(const orch_graph *g, const char *name);

/* Rows a tensor has for the current batch. */
int64_t orch_tensor_rows(const orch_tensor *t, int64_t n_patches, int unit, int n_images);

/* The name of an op ("linear", "attention", ...). */
const char *orch_op_name(orch_op op);

/* Total parameter count, and the trainable part. */
int64_t orch_graph_param_count(const orch_graph *g, int64_t *trainable);

/* Prints the graph as Graphviz DOT: stages as nodes, tensors as edges,
 * trainable stages filled, stages without backward dashed. */
void orch_graph_print_dot(const orch_graph *g, FILE *out);

#endif
