/*
 * pipeline.h - the resolved, validated pipeline: what a Lua declaration means.
 *
 * lua/ turns a pipeline file (plus --set overrides) into an orch_pipeline and
 * validates every field; nothing downstream re-validates user input. The
 * struct is plain data with fixed-size arrays, so it can be copied, hashed
 * through its JSON form and sent to other MPI ranks as is.
 *
 * Every string field is a NUL-terminated array; an empty string means "not
 * given". Names follow Hugging Face module names and PyTorch conventions.
 */
#ifndef ORCH_PIPELINE_H
#define ORCH_PIPELINE_H

#include <stdint.h>

#define ORCH_PATH_MAX    512
#define ORCH_NAME_MAX    128
#define ORCH_MAX_IMAGES  64 /* images in one synthetic grid list */
#define ORCH_MAX_TARGETS 16 /* LoRA target modules */
#define ORCH_MAX_TAGS    16
#define ORCH_MAX_FULLATT 64 /* fullatt_block_indexes entries */
#define ORCH_MAX_SHARDS  16 /* data.shards patterns */

/* ---------------------------------------------------------------- model */

/* The vision tower's structural config, as in Hugging Face's vision_config. */
typedef struct orch_model_config {
    int depth;
    int hidden_size;
    int num_heads;
    int intermediate_size;
    int patch_size;
    int temporal_patch_size;
    int in_channels;
    int spatial_merge_size;
    int window_size; /* in pixels, as in HF */
    int out_hidden_size;
    double initializer_range; /* std of HF's normal init of a tower without
                                 weights; 0 means HF's 0.02 */
    int n_fullatt;
    int fullatt_block_indexes[ORCH_MAX_FULLATT];
} orch_model_config;

typedef struct orch_model {
    char preset[ORCH_NAME_MAX];  /* "tiny", "small", "qwen2.5-vl-3b", "qwen2.5-vl-7b" */
    char weights[ORCH_PATH_MAX]; /* safetensors file or index.json; "" = seeded init */
    orch_model_config config;    /* the preset with explicit overrides applied */
} orch_model;

/* ----------------------------------------------------------------- data */

typedef enum orch_data_source {
    ORCH_DATA_SYNTHETIC = 0,
    ORCH_DATA_NPY,
    ORCH_DATA_IMAGES, /* a folder of PNG/JPEG files: images { dir = ..., labels = ... } */
    ORCH_DATA_SHARDS  /* WebDataset-style tar shards: shards { "train-{000..003}.tar" } */
} orch_data_source;

typedef struct orch_data {
    orch_data_source source;
    /* synthetic: a deterministic procedural image set run through the processor */
    int n_samples;                 /* images in the data set */
    int n_classes;                 /* class labels 0..n_classes-1 */
    int image_height, image_width; /* pixels before smart_resize; 0 = use grid */
    /* image_grid_thw, [t, h, w] in patches, one per image of a batch when the
     * images are given as grids instead of pixel sizes */
    int n_grids;
    int64_t image_grid_thw[ORCH_MAX_IMAGES][3];
    /* npy: the Hugging Face processor's outputs saved with np.save */
    char pixel_values[ORCH_PATH_MAX];  /* (patches, C*tp*P*P) float32 */
    char grid_thw_path[ORCH_PATH_MAX]; /* (images, 3) int64 */
    char labels[ORCH_PATH_MAX];        /* npy: (images,) int64 or (images, k) float32;
                                          images: a CSV `file,label` with a header row,
                                          "" = the class is the sub-folder's name */
    /* images: the folder (PNG and JPEG files, or one sub-folder per class) */
    char dir[ORCH_PATH_MAX];
    /* shards: patterns as written (brace ranges {000..003}, globs), resolved
     * by the DSL against the pipeline file's folder; expanded at plan time */
    int n_shards;
    char shards[ORCH_MAX_SHARDS][ORCH_PATH_MAX];
    /* shuffling per epoch. shards: the shuffle buffer in images (0: stream
     * order); other sources: 0 keeps the data's order, 1 shuffles it all */
    int shuffle;
    /* data.seed: the data order (and synthetic images); has_seed 0 = the
     * pipeline's seed, so seeds of a comparison can share the same data */
    int has_seed;
    uint64_t seed;
} orch_data;

/* The image processor's bounds (Qwen2VLImageProcessor min_pixels,
 * max_pixels), for images decoded from files or shards; 0 = the hub's
 * preprocessor_config.json values (core/processor.h). */
typedef struct orch_processor_bounds {
    int min_pixels;
    int max_pixels;
} orch_processor_bounds;

/* A held-out set evaluated without gradients (`eval = { ... }`). */
typedef struct orch_eval {
    int enabled;    /* 0: no evaluation */
    orch_data data; /* the set, when split is 0 (any source) */
    double split;   /* > 0: hold out this fraction of the training data instead */
    int every;      /* evaluate every N steps (and always at the end); 0 = only at the end */
    int batch_size; /* images per evaluation batch; 0 = schedule.batch_size */
} orch_eval;

/* ------------------------------------------------------------- strategy */

typedef enum orch_strategy_kind {
    ORCH_STRATEGY_SURGERY = 0,
    ORCH_STRATEGY_DETACH,
    ORCH_STRATEGY_LORA,
    ORCH_STRATEGY_FULL
} orch_strategy_kind;

typedef enum orch_adapter_kind { ORCH_ADAPTER_LINEAR = 0, ORCH_ADAPTER_MLP } orch_adapter_kind;

typedef struct orch_strategy {
    orch_strategy_kind kind;
    /* surgery */
    char replace[ORCH_NAME_MAX]; /* HF module name of the Linear to replace */
    char init[ORCH_PATH_MAX];    /* safetensors with initial trainable values; "" = seeded */
    int grad_through_frozen;     /* 1: backward down to the input, as enable_input_require_grads */
    /* detach */
    orch_adapter_kind adapter;
    int adapter_hidden; /* hidden width of the MLP adapter */
    /* lora (PEFT semantics) */
    int rank;
    double alpha;
    double dropout;
    int n_targets;
    char targets[ORCH_MAX_TARGETS][ORCH_NAME_MAX];
} orch_strategy;

/* ----------------------------------------------------------- head, loss */

typedef enum orch_head_kind { ORCH_HEAD_CLASSIFIER = 0, ORCH_HEAD_REGRESSION } orch_head_kind;
typedef enum orch_loss_kind { ORCH_LOSS_CROSS_ENTROPY = 0, ORCH_LOSS_MSE } orch_loss_kind;

typedef struct orch_head {
    orch_head_kind kind;
    int n_outputs; /* classes for a classifier, targets for a regression */
} orch_head;

/* ------------------------------------------------------------ optimizer */

typedef enum orch_optimizer_kind { ORCH_OPT_SGD = 0, ORCH_OPT_ADAMW } orch_optimizer_kind;

/* The learning-rate schedule after warm-up, as Hugging Face's
 * get_{constant,linear,cosine}_schedule_with_warmup (and its cosine with
 * min_lr): the factor at step s is s / warmup during warm-up (0 at step 0),
 * then constant, linear or cosine decay from lr to min_lr at schedule.steps. */
typedef enum orch_lr_schedule {
    ORCH_LR_CONSTANT = 0,
    ORCH_LR_LINEAR,
    ORCH_LR_COSINE
} orch_lr_schedule;

typedef struct orch_optimizer {
    orch_optimizer_kind kind;
    double lr;
    double momentum;     /* sgd */
    int nesterov;        /* sgd */
    double beta1, beta2; /* adamw */
    double eps;          /* adamw */
    double weight_decay;
    double grad_clip; /* max global grad norm; 0 = no clipping */
    orch_lr_schedule schedule;
    double min_lr; /* the decay's end (linear, cosine); 0 by default */
} orch_optimizer;

/* Early stopping: `schedule.stop = { metric = "eval/loss", patience = P }`.
 * The run ends `finished` when the metric did not improve for patience
 * evaluations in a row; the reason is recorded. Lower is better for
 * losses and errors, higher for accuracies. */
typedef struct orch_stop {
    int enabled;
    char metric[ORCH_NAME_MAX]; /* "eval/loss", "eval/accuracy", ... */
    int patience;               /* evaluations without improvement */
} orch_stop;

typedef struct orch_schedule {
    int steps;
    int batch_size;       /* images per micro-batch (per step when grad_accum is 1) */
    int grad_accum;       /* micro-batches per update: a step's global batch is
                             batch_size x grad_accum images */
    int warmup_steps;     /* linear warm-up from 0 to lr */
    int checkpoint_every; /* write a checkpoint every N steps; 0: only at the end */
    orch_stop stop;
} orch_schedule;

/* ------------------------------------------------------------ precision */

typedef enum orch_precision { ORCH_FP32 = 0, ORCH_BF16, ORCH_FP16 } orch_precision;

typedef struct orch_loss_scale {
    double init;         /* initial scale (PyTorch GradScaler: 65536); 1 = none */
    int dynamic;         /* 1: GradScaler behaviour (skip + halve on non-finite) */
    int growth_interval; /* good steps before the scale doubles */
} orch_loss_scale;

/* --------------------------------------------------------------- checks */

typedef enum orch_on_nan {
    ORCH_ON_NAN_ABORT = 0,
    ORCH_ON_NAN_SKIP_UPDATE,
    ORCH_ON_NAN_CONTINUE
} orch_on_nan;
typedef enum orch_phase {
    ORCH_PHASE_FORWARD = 0,
    ORCH_PHASE_BACKWARD,
    ORCH_PHASE_UPDATE
} orch_phase;

typedef struct orch_inject {
    int enabled;
    int step;
    orch_phase phase;
    char stage[ORCH_NAME_MAX];
    char tensor[ORCH_NAME_MAX]; /* "" = the stage's main output / gradient */
    int value_is_inf;           /* 0: NaN, 1: +Inf */
    int rank;                   /* data parallelism: inject on this rank only; -1: every rank */
} orch_inject;

typedef struct orch_checks {
    int nan;    /* finite_scan after every stage */
    int frozen; /* checksum frozen parameters every step */
    orch_on_nan on_nan;
    int stats_every; /* per-stage statistics period in steps; 0 = off */
    orch_inject inject;
} orch_checks;

/* ------------------------------------------------------------- parallel */

/* How one run spreads over MPI ranks. Not part of the configuration (the
 * mathematics is the same on any rank count): not hashed, written to the
 * recorded JSON only when data > 1. */
typedef struct orch_parallel {
    int data; /* data-parallel ranks training the run together; 1 (or 0, not set) = one */
} orch_parallel;

/* ------------------------------------------------------------- pipeline */

typedef struct orch_pipeline {
    char path[ORCH_PATH_MAX]; /* the pipeline file as given */
    char name[ORCH_NAME_MAX]; /* declared name, else the file's base name */
    orch_model model;
    orch_data data;
    orch_processor_bounds processor;
    orch_eval eval;
    orch_strategy strategy;
    orch_head head;
    orch_loss_kind loss;
    orch_optimizer optimizer;
    orch_schedule schedule;
    orch_precision precision;
    orch_loss_scale loss_scale;
    int checkpoint; /* gradient checkpointing of frozen blocks */
    uint64_t seed;
    orch_checks checks;
    orch_parallel parallel;
    int n_tags;
    char tags[ORCH_MAX_TAGS][ORCH_NAME_MAX];
} orch_pipeline;

/* Names for the enums, as written in Lua and stored in SQLite. */
const char *orch_strategy_name(orch_strategy_kind kind);
const char *orch_precision_name(orch_precision precision);
const char *orch_optimizer_name(orch_optimizer_kind kind);
const char *orch_phase_name(orch_phase phase);
const char *orch_on_nan_name(orch_on_nan policy);
const char *orch_head_name(orch_head_kind kind);         /* "classifier", "regression" */
const char *orch_loss_name(orch_loss_kind kind);         /* "cross_entropy", "mse" */
const char *orch_data_source_name(orch_data_source src); /* "synthetic", "npy", "images",
                                                            "shards" */
const char *orch_adapter_name(orch_adapter_kind kind);   /* "linear", "mlp" */

/* The seed of d's order and synthetic images: data.seed when given, else
 * the pipeline's seed (so runs of a seed comparison can share their data). */
uint64_t orch_data_seed(const orch_data *d, uint64_t pipeline_seed);

#endif
