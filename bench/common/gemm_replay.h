/*
 * gemm_replay.h - a step's exact list of orch_sgemm calls, recorded through
 * the orch_gemm_trace_set hook and replayed through raw bli_sgemm_ex (same
 * shapes, strides, beta and thread counts), so a step can be compared with
 * what raw BLIS needs for the very same products.
 *
 * Calls made from inside an OpenMP team (attention runs one product per
 * (segment, head) task on each thread) are replayed the same way: a run of
 * consecutive such calls runs as one parallel loop over the same team size,
 * each call on one thread, and is timed as one unit. Every other call is a
 * unit of its own. Each unit is timed on BLIS's default path and with sup
 * disabled; the replay time is the sum over units of the faster of the two
 * (medians over the repetitions), the best a user calling BLIS could get.
 */
#ifndef ORCH_BENCH_GEMM_REPLAY_H
#define ORCH_BENCH_GEMM_REPLAY_H

#include "kernels/kernels.h"

#define REPLAY_MAX_REPS 16

typedef struct replay_call {
    orch_gemm_call call; /* as reported (threads as resolved for the call) */
    int team;            /* size of the OpenMP team the call came from (1: serial code) */
} replay_call;

typedef struct gemm_replay {
    replay_call *calls; /* owned; n_calls of them, in call order */
    int n_calls, cap_calls;
    int recording; /* the hook appends only while non-zero */
    /* units: [unit_first[u], unit_first[u+1]) are the calls of unit u */
    int *unit_first; /* owned, n_units + 1 entries */
    int n_units;
    double *times; /* owned: [unit][sup 0 default, 1 off][rep], seconds */
    int n_reps;
    float *a, *b, *c; /* owned operand buffers; c holds one slice per thread */
    int64_t c_slice;  /* floats per thread slice of c */
} gemm_replay;

/* Installs the hook on r (zeroed by the caller); records while r->recording
 * is set. bench_replay_stop removes the hook. */
void bench_replay_start(gemm_replay *r);
void bench_replay_stop(void);

/* Builds units and buffers from the recorded calls; clears earlier timings. */
void bench_replay_prepare(gemm_replay *r);

/* Replays every unit once on each path (default, then sup off) and stores
 * the times as the next repetition (up to REPLAY_MAX_REPS). */
void bench_replay_run(gemm_replay *r);

/* Seconds: sum over units of min(median default, median sup-off). */
double bench_replay_seconds(const gemm_replay *r);

/* 2 m n k summed over the recorded calls. */
double bench_replay_flops(const gemm_replay *r);

/* Frees what r owns and zeroes it. */
void bench_replay_free(gemm_replay *r);

#endif
