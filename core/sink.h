/*
 * sink.h - where a run's records go.
 *
 * The run loop never talks to SQLite directly: it hands records to an
 * orch_sink. store/ provides the SQLite sink (orch_store_sink, batched
 * transactions); a later MPI worker sink streams the same records to rank 0,
 * which feeds them to its own store sink. Records are plain values, so any
 * sink can serialize them.
 *
 * Every callback returns an orch_status and fills err on failure. A sink
 * buffers as it likes but must have everything durable after flush() and
 * after end_run().
 */
#ifndef ORCH_SINK_H
#define ORCH_SINK_H

#include <stdint.h>

#include "core/err.h"

typedef enum orch_run_status {
    ORCH_RUN_QUEUED = 0,
    ORCH_RUN_RUNNING,
    ORCH_RUN_FINISHED,
    ORCH_RUN_DIVERGED,
    ORCH_RUN_FAILED,
    ORCH_RUN_INTERRUPTED
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
} orch_run_info;

typedef struct orch_step_record {
    int64_t step;
    double loss;
    double grad_norm; /* global norm before clipping; may be NaN or Inf */
    double lr;
    double wall_ms;
} orch_step_record;

typedef struct orch_nan_record {
    int64_t step;
    const char *phase;  /* "forward", "backward", "update" */
    const char *stage;  /* e.g. "visual.merger.mlp.2" */
    const char *tensor; /* e.g. "grad_weight" */
    int64_t nan_count;
    int64_t inf_count;
    /* provenance of the first event of a run; ignored on later ones */
    double input_absmax; /* largest finite |x| among the stage's inputs */
    int inputs_finite;   /* 1: every input finite, so this stage produced it */
} orch_nan_record;

/* Per-stage statistics, every checks.stats_every steps. */
typedef struct orch_stage_stat {
    int64_t step;
    const char *stage;
    double act_absmax; /* largest finite |x| of the stage's forward output */
    double act_rms;    /* root mean square of the output (NaN if non-finite) */
    double grad_norm;  /* L2 norm of the gradient at the output; NaN: no gradient */
} orch_stage_stat;

/* A file a run wrote (a checkpoint), recorded with its hash. */
typedef struct orch_artifact {
    int64_t step;       /* the last completed step it holds */
    const char *kind;   /* "checkpoint" */
    const char *path;   /* as written (relative to the working directory or absolute) */
    const char *sha256; /* hex */
    int64_t bytes;
} orch_artifact;

typedef struct orch_sink orch_sink;
struct orch_sink {
    void *ctx; /* the sink's own state; owned by whoever made the sink */
    int (*begin_run)(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err);
    int (*step)(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err);
    int (*metric)(void *ctx, int64_t run_id, int64_t step, const char *name, double value,
                  orch_err *err);
    int (*nan_event)(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err);
    int (*flush)(void *ctx, orch_err *err);
    /* error_message may be NULL; it is stored for failed runs. */
    int (*end_run)(void *ctx, int64_t run_id, orch_run_status status, const char *error_message,
                   orch_err *err);
    int (*stage_stat)(void *ctx, int64_t run_id, const orch_stage_stat *rec, orch_err *err);
    int (*artifact)(void *ctx, int64_t run_id, const orch_artifact *rec, orch_err *err);
    /* Takes over an existing run to continue it from its checkpoint at
     * from_step: the run becomes `running` under info's host and pid, and
     * every step, metric, NaN event and statistic recorded after from_step
     * is deleted (the resumed run records them again). */
    int (*resume_run)(void *ctx, int64_t run_id, const orch_run_info *info, int64_t from_step,
                      orch_err *err);
};

#endif
