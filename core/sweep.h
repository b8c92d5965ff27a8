/*
 * sweep.h - many runs declared in one Lua file: the expanded sweep.
 *
 * A sweep file returns `sweep { name = ..., base = ..., grid = ..., seeds =
 * ..., random = ..., runs = ..., after = ... }` (docs/pipelines.md,
 * "Sweeps"). lua/ expands it (orch_dsl_load_sweep, lua/dsl.h) into this
 * plain data: one validated orch_pipeline per run, in declaration order
 * (the grid's points in row-major order of its keys as written, each once
 * per seed; then random draws; then the explicit runs), with its readable
 * name, the overrides that made it, and the runs it must wait for.
 *
 * core/sweep_dag.h turns it into the DAG of runs (edges, shared feature
 * stages, cycle checks, the scheduling order); core/cmd_sweep.c runs it.
 */
#ifndef ORCH_SWEEP_H
#define ORCH_SWEEP_H

#include <stdint.h>

#include "core/err.h"
#include "core/pipeline.h"

/* A sweep has at most this many runs; a larger declaration (a grid of
 * 10^9 points) is refused before anything is expanded. */
#define ORCH_SWEEP_MAX_RUNS 4096
/* Runs one run may wait for (output_of plus `after`). */
#define ORCH_SWEEP_MAX_DEPS 8
/* strategy.init of a run that starts from another run's final
 * checkpoint holds this prefix and the run's full name, e.g.
 * "output_of:strategies/detach-lr1e-3-s1"; the hash covers that text, and
 * the scheduler hands the checkpoint's path to the run (orch_train_options
 * .init_path). */
#define ORCH_OUTPUT_OF_PREFIX "output_of:"

typedef struct orch_sweep_run {
    char name[ORCH_NAME_MAX];  /* "<sweep>/<point>", e.g. "strategies/lora-lr3e-4-s2" */
    char point[ORCH_NAME_MAX]; /* "<point>": unique within the sweep */
    char overrides[1024];      /* what differs from base, as --set would spell it:
                                  "strategy=lora{rank=4,alpha=8} optimizer.lr=0.0003 seed=2" */
    int line;                  /* line of the sweep file that declared this run */
    char deps[ORCH_SWEEP_MAX_DEPS][ORCH_NAME_MAX]; /* full names of the runs it waits for */
    int n_deps;
    char config_hash[65];    /* orch_pipeline_hash of pipeline */
    orch_pipeline *pipeline; /* validated; malloc'd, owned by the sweep */
} orch_sweep_run;

typedef struct orch_sweep {
    char name[ORCH_NAME_MAX]; /* the sweep's name (defaults to the file's base name) */
    char file[ORCH_PATH_MAX]; /* the sweep file as given */
    char hash[65];            /* sha256 over every run's name and config hash, in order */
    orch_sweep_run *runs;     /* n_runs of them; malloc'd, owned by the sweep */
    int n_runs;
} orch_sweep;

/* Releases everything s owns and zeroes it; NULL-safe. */
void orch_sweep_free(orch_sweep *s);

/* The run of s named name (full "<sweep>/<point>" or just "<point>"), or -1. */
int orch_sweep_find(const orch_sweep *s, const char *name);

#endif
