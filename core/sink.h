/*
 * sink.h - where a run's records go.
 *
 * The run loop never talks to SQLite directly: it hands records to an
 * orch_sink. store/ provides the SQLite sink (orch_store_sink, batched
 * transactions); a later MPI worker sink streams the same records to rank 0,
 * which feeds them to its own store sink. Records are plain values with
 * named fields; orch_record tags one of them, and orch_record_encode /
 * orch_record_decode (core/sink_record.c) turn it into portable bytes and
 * back, so a record can cross MPI or a file unchanged.
 *
 * Every callback returns an orch_status and fills err on failure. A sink
 * buffers as it likes but must have everything durable after flush() and
 * after end_run().
 */
#ifndef ORCH_SINK_H
#define ORCH_SINK_H

#include <stdint.h>

#include "core/err.h"
#include "core/pipeline.h" /* orch_phase */

typedef enum orch_run_status {
    ORCH_RUN_QUEUED = 0,
    ORCH_RUN_RUNNING,
    ORCH_RUN_FINISHED,
    ORCH_RUN_DIVERGED,
    ORCH_RUN_FAILED,
    ORCH_RUN_INTERRUPTED,
    ORCH_RUN_SKIPPED /* a sweep's run not run: a dependency failed (store/sweeps.h) */
} orch_run_status;

/* "queued", "running", ... as stored in runs.status. */
const char *orch_run_status_name(orch_run_status status);

/* What is known of a run when it starts. Strings are borrowed for the call. */
typedef struct orch_run_info {
    const char *pipeline;    /* pipeline file as given */
    const char *name;        /* run name (pipeline name unless overridden) */
    const char *strategy;    /* "surgery", "detach", "lora", "full" */
    const char *config_json; /* resolved pipeline, canonical JSON (with path, name, tags) */
    const char *config_hash; /* hex sha256 of the configuration alone: the canonical JSON
                                without path, name and tags (orch_pipeline_hash) */
    uint64_t seed;
    const char *host;
    int64_t pid;
    const char *orch_version;
    /* what computed it, so runs on different kernels can be told apart */
    const char *kernels;     /* "blis 0.9.0 skx": library, version, sub-configuration */
    const char *kernels_why; /* why that sub-configuration (orch_blas_info.why) */
    const char *cpu;         /* CPU model, vendor, family and model */
    int64_t threads;         /* kernel threads */
    /* what it computed on: hex sha256 over its data files' (role, path,
       sha256) in order (orch_data_hash, core/data_identity.h); NULL for
       data without files (synthetic). Its files follow as input records. */
    const char *data_hash;
} orch_run_info;

typedef struct orch_step_record {
    int64_t step;
    double loss;
    double grad_norm; /* global norm before clipping; may be NaN or Inf */
    double lr;
    double wall_ms;
} orch_step_record;

/* A scalar that has no column of its own: loss_scale, feature_cache/hits... */
typedef struct orch_metric_record {
    int64_t step;
    const char *name;
    double value;
} orch_metric_record;

typedef struct orch_nan_record {
    int64_t step;
    orch_phase phase;
    const char *stage;  /* e.g. "visual.merger.mlp.2" */
    const char *tensor; /* e.g. "grad_weight" */
    int64_t nan_count;
    int64_t inf_count;
    /* provenance of the first event of a run; ignored on later ones */
    double input_absmax; /* largest finite |x| among the stage's inputs */
    int inputs_finite;   /* 1: every input finite, so this stage produced it */
    /* data parallelism: where it was found; -1 and NULL for a run on one rank */
    int64_t rank;
    const char *host;
} orch_nan_record;

/* Per-stage statistics, every checks.stats_every steps. */
typedef struct orch_stage_stat {
    int64_t step;
    const char *stage;
    double act_absmax; /* largest finite |x| of the stage's forward output */
    double act_rms;    /* root mean square of the output (NaN if non-finite) */
    double grad_norm;  /* L2 norm of the gradient at the output; NaN: no gradient */
} orch_stage_stat;

/* What a file a run wrote is. */
typedef enum orch_artifact_kind {
    ORCH_ARTIFACT_CHECKPOINT = 0,
    ORCH_ARTIFACT__COUNT
} orch_artifact_kind;

/* "checkpoint", as stored in artifacts.kind. */
const char *orch_artifact_kind_name(orch_artifact_kind kind);

/* A file a run wrote (a checkpoint), recorded with its hash. */
typedef struct orch_artifact {
    int64_t step;            /* the last completed step it holds */
    orch_artifact_kind kind; /* what the file is */
    const char *path;        /* as written (relative to the working directory or absolute);
                                the store records it relative to itself (store/paths.c) */
    const char *sha256;      /* hex */
    int64_t bytes;
} orch_artifact;

/* A frozen parameter whose checksum changed after an update (checks.frozen):
 * no NaN, but a bug in the strategy. */
typedef struct orch_frozen_change {
    int64_t step;
    const char *parameter; /* e.g. "visual.blocks.0.attn.qkv.weight" */
} orch_frozen_change;

/* The run used a detach feature cache entry (read it or wrote it): sent
 * once per run per distinct entry, so `orch rm` can remove exactly the
 * entries no remaining run uses. */
typedef struct orch_cache_use {
    const char *key; /* the entry's key in hex, as its file is named (store/feature_cache.h) */
} orch_cache_use;

/* What a data file was to a run. */
typedef enum orch_data_role {
    ORCH_ROLE_TRAIN = 0, /* trained on */
    ORCH_ROLE_EVAL,      /* evaluated on (eval = {...}) */
    ORCH_ROLE__COUNT
} orch_data_role;

/* "train", "eval", as stored in run_inputs.role. */
const char *orch_data_role_name(orch_data_role role);

/* A file a run read its data from (an .npy file, an image, a CSV, a shard),
 * so a changed file shows even when the configuration did not change. Sent
 * right after begin_run (or resume_run), one record per file: a run over a
 * folder of images sends thousands, so it is small and batched like a step. */
typedef struct orch_run_input {
    orch_data_role role;
    const char *path;   /* as resolved */
    const char *sha256; /* hex, 64 digits */
    int64_t bytes;
} orch_run_input;

/* A class of a classifier's data set: the label id and its name (CSV labels
 * and ImageFolder sub-folders map sorted names to ids). Sent after the
 * inputs, one record per class. */
typedef struct orch_run_class {
    int64_t id;
    const char *name;
} orch_run_class;

/* One pipeline file of a run exactly as it was run (the main file or a
 * module it required), recorded when the run begins, so a bundle
 * (docs/bundles.md) carries the files even after they are edited. */
typedef struct orch_source_file {
    const char *path;   /* as the loader opened it */
    const char *sha256; /* hex SHA-256 of text[0..bytes) */
    const char *text;   /* the bytes (may hold NULs) */
    int64_t bytes;
} orch_source_file;

/* The end of a run. */
typedef struct orch_run_end {
    orch_run_status status; /* finished, diverged, failed or interrupted */
    const char *error;      /* why it failed or stopped; may be NULL */
    const char *reason;     /* why a finished run ended before its last step
                               ("early stopping: ..."); NULL when it ran them all */
} orch_run_end;

/* A run taken over to continue from its checkpoint (see resume_run). */
typedef struct orch_run_resume {
    orch_run_info info;
    int64_t from_step; /* the last kept step, -1 for none */
} orch_run_resume;

/* ------------------------------------------------------ tagged records */

typedef enum orch_record_kind {
    ORCH_REC_RUN_BEGIN = 0,
    ORCH_REC_STEP,
    ORCH_REC_METRIC,
    ORCH_REC_NAN,
    ORCH_REC_STAGE_STAT,
    ORCH_REC_ARTIFACT,
    ORCH_REC_FROZEN_CHANGE,
    ORCH_REC_RUN_END,
    ORCH_REC_RUN_RESUME,
    ORCH_REC_CACHE_USE,
    ORCH_REC_INPUT,
    ORCH_REC_CLASS,
    ORCH_REC_SOURCE_FILE,
    ORCH_REC__COUNT
} orch_record_kind;

/* One record of any kind, for sinks that pass records on (a file, MPI).
 * Strings are borrowed: from the caller when encoding, from the decoded
 * bytes after orch_record_decode. */
typedef struct orch_record {
    orch_record_kind kind;
    int64_t run_id; /* 0 for ORCH_REC_RUN_BEGIN: the receiving store assigns it */
    union {
        orch_run_info run_begin;
        orch_step_record step;
        orch_metric_record metric;
        orch_nan_record nan;
        orch_stage_stat stage_stat;
        orch_artifact artifact;
        orch_frozen_change frozen_change;
        orch_run_end run_end;
        orch_run_resume run_resume;
        orch_cache_use cache_use;
        orch_run_input input;
        orch_run_class run_class;
        orch_source_file source_file;
    } as;
} orch_record;

/* "run_begin", "step", ... */
const char *orch_record_kind_name(orch_record_kind kind);

/* The bytes, version ORCH_RECORD_VERSION: a version byte, a kind byte, the
 * run id, then the kind's fields in declaration order; integers and doubles
 * (their IEEE-754 bits) as 8 bytes little-endian, enums and flags as one
 * byte, strings as a 4-byte little-endian length counting a terminating NUL
 * (0 for NULL) followed by the string and its NUL; a source file's text
 * as an 8-byte length and its bytes. No padding, no host
 * layout: any machine reads what any other wrote. */
#define ORCH_RECORD_VERSION                                                                        \
    5 /* 2: run info carries kernels, cpu, threads; 3: NaN events their                            \
         rank and host; 4: run info its data hash, run end its reason, and                         \
         the input and class records; 5: source_file records */

/* The number of bytes orch_record_encode writes for rec. */
size_t orch_record_encoded_size(const orch_record *rec);

/* Encodes rec into buf (cap bytes) and sets *len to the bytes written.
 * ORCH_EINVAL when buf is too small (*len then says how many are needed),
 * for a kind or enum out of range, or a string longer than 4 GiB. */
int orch_record_encode(const orch_record *rec, unsigned char *buf, size_t cap, size_t *len,
                       orch_err *err);

/* Decodes exactly len bytes into *out. Strings point into buf, which must
 * outlive *out. ORCH_EINVAL ("record: ...") for anything malformed: another
 * version, an unknown kind or enum, a flag other than 0 or 1, a string
 * without its NUL or with one inside, bytes missing or left over. It never
 * reads outside buf[0..len). */
int orch_record_decode(const unsigned char *buf, size_t len, orch_record *out, orch_err *err);

typedef struct orch_sink orch_sink;
struct orch_sink {
    void *ctx; /* the sink's own state; owned by whoever made the sink */
    int (*begin_run)(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err);
    int (*step)(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err);
    int (*metric)(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err);
    int (*nan_event)(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err);
    int (*flush)(void *ctx, orch_err *err);
    /* rec->error may be NULL; it is stored for failed runs. */
    int (*end_run)(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err);
    int (*stage_stat)(void *ctx, int64_t run_id, const orch_stage_stat *rec, orch_err *err);
    int (*artifact)(void *ctx, int64_t run_id, const orch_artifact *rec, orch_err *err);
    /* Takes over an existing run to continue it from its checkpoint at
     * rec->from_step: the run becomes `running` under rec->info's host and
     * pid, and every step, metric, NaN event, frozen change, statistic and
     * artifact recorded after from_step is deleted (the resumed run records
     * them again), and so are its inputs and classes (sent again after
     * resume_run, as after begin_run). A queued run (a sweep's, store/sweeps.h) starts this way
     * with from_step -1; a skipped, finished or diverged run is refused. */
    int (*resume_run)(void *ctx, int64_t run_id, const orch_run_resume *rec, orch_err *err);
    /* A frozen parameter changed: recorded at once, never a NaN event. */
    int (*frozen_change)(void *ctx, int64_t run_id, const orch_frozen_change *rec, orch_err *err);
    /* The run uses a feature cache entry; may be NULL (the run loop then
     * records no cache use). */
    int (*cache_use)(void *ctx, int64_t run_id, const orch_cache_use *rec, orch_err *err);
    /* A data file of the run; may be NULL (the run loop then records no
     * inputs). */
    int (*input)(void *ctx, int64_t run_id, const orch_run_input *rec, orch_err *err);
    /* A class name of the run's data; may be NULL (none recorded). */
    int (*run_class)(void *ctx, int64_t run_id, const orch_run_class *rec, orch_err *err);
    /* A pipeline file the run was declared in, sent right after begin_run
     * or resume_run; may be NULL (nothing recorded). Recording the same
     * path again replaces it. */
    int (*source_file)(void *ctx, int64_t run_id, const orch_source_file *rec, orch_err *err);
};

/* Hands rec to the sink's callback of its kind (what a receiving rank does
 * with a decoded record). *run_id receives the id of a begun run
 * (ORCH_REC_RUN_BEGIN); it may be NULL for other kinds. */
int orch_sink_put(orch_sink *sink, const orch_record *rec, int64_t *run_id, orch_err *err);

/* A sink that accepts every record and keeps none (begin_run gives run id
 * 0): the ranks > 0 of a data-parallel run, whose records rank 0 writes
 * (core/sink_drop.c). */
void orch_sink_drop(orch_sink *out);

#endif
