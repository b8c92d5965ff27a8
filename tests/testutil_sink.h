/*
 * testutil_sink.h - a record sink that keeps what a run sends it in memory,
 * for tests of the run loop (orch_train) that assert what a store would
 * receive without one.
 *
 * Built on bench/null_sink.h: every callback accepts its record; begin_run,
 * step, nan_event, frozen_change, input, run_class and end_run also keep
 * theirs. Library tests
 * only (it calls into core/), so it lives apart from testutil.c, which the
 * CLI tests link alone.
 */
#ifndef ORCH_TESTUTIL_SINK_H
#define ORCH_TESTUTIL_SINK_H

#include <stdint.h>

#include "core/sink.h"

#define MEMORY_SINK_STEPS  64   /* steps whose loss and grad_norm are kept */
#define MEMORY_SINK_EVENTS 4096 /* events kept */
#define MEMORY_SINK_FROZEN 64   /* frozen-parameter changes kept */
#define MEMORY_SINK_INPUTS 8    /* data files kept */

/* A NaN event. */
typedef struct memory_event {
    int64_t step;
    char phase[16], stage[ORCH_NAME_MAX], tensor[64];
    int64_t nan_count, inf_count;
    int inputs_finite;
} memory_event;

typedef struct memory_sink {
    int begun, ended;
    orch_run_status status; /* as end_run gave it */
    int n_steps;            /* steps recorded, also past MEMORY_SINK_STEPS */
    double loss[MEMORY_SINK_STEPS], grad_norm[MEMORY_SINK_STEPS];
    double last_loss;
    int n_events; /* events recorded, also past MEMORY_SINK_EVENTS */
    memory_event events[MEMORY_SINK_EVENTS];
    int n_frozen; /* frozen-parameter changes, also past MEMORY_SINK_FROZEN */
    orch_frozen_change frozen[MEMORY_SINK_FROZEN]; /* .parameter points into frozen_names */
    char frozen_names[MEMORY_SINK_FROZEN][ORCH_NAME_MAX];
    char data_hash[65]; /* as begin_run or resume_run gave it; "" for NULL */
    int n_inputs;       /* data files recorded, also past MEMORY_SINK_INPUTS */
    orch_data_role input_role[MEMORY_SINK_INPUTS];
    char input_path[MEMORY_SINK_INPUTS][256];
    char input_sha256[MEMORY_SINK_INPUTS][65];
    int64_t input_bytes[MEMORY_SINK_INPUTS];
    int n_classes;        /* class names recorded */
    char end_reason[256]; /* as end_run gave it; "" for NULL */
} memory_sink;

/* A zeroed memory_sink, calloc'd (it is too large for a stack); the caller
 * frees it with free(). Fails the current test when out of memory. */
memory_sink *memory_sink_new(void);

/* The sink recording into m; m must outlive it. */
orch_sink memory_sink_of(memory_sink *m);

#endif
