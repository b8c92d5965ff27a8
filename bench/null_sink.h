/*
 * null_sink.h - a record sink that keeps nothing, for the benchmarks and
 * the tests.
 *
 * bench_null_sink(ctx) returns an orch_sink whose callbacks accept every
 * record and drop it; a user replaces the callbacks it wants to see
 * (bench/step.c keeps step times, tests/testutil_sink.c keeps records in
 * memory) and leaves the rest.
 */
#ifndef ORCH_BENCH_NULL_SINK_H
#define ORCH_BENCH_NULL_SINK_H

#include "core/sink.h"

static inline int null_begin(void *c, const orch_run_info *i, int64_t *id, orch_err *e)
{
    (void)c, (void)i, (void)e;
    *id = 1;
    return ORCH_OK;
}

static inline int null_step(void *c, int64_t id, const orch_step_record *r, orch_err *e)
{
    (void)c, (void)id, (void)r, (void)e;
    return ORCH_OK;
}

static inline int null_metric(void *c, int64_t id, const orch_metric_record *r, orch_err *e)
{
    (void)c, (void)id, (void)r, (void)e;
    return ORCH_OK;
}

static inline int null_nan(void *c, int64_t id, const orch_nan_record *r, orch_err *e)
{
    (void)c, (void)id, (void)r, (void)e;
    return ORCH_OK;
}

static inline int null_flush(void *c, orch_err *e)
{
    (void)c, (void)e;
    return ORCH_OK;
}

static inline int null_end(void *c, int64_t id, const orch_run_end *r, orch_err *e)
{
    (void)c, (void)id, (void)r, (void)e;
    return ORCH_OK;
}

static inline int null_stat(void *c, int64_t id, const orch_stage_stat *r, orch_err *e)
{
    (void)c, (void)id, (void)r, (void)e;
    return ORCH_OK;
}

static inline int null_frozen(void *c, int64_t id, const orch_frozen_change *r, orch_err *e)
{
    (void)c, (void)id, (void)r, (void)e;
    return ORCH_OK;
}

static inline orch_sink bench_null_sink(void *ctx)
{
    orch_sink sink = {.ctx = ctx,
                      .begin_run = null_begin,
                      .step = null_step,
                      .metric = null_metric,
                      .nan_event = null_nan,
                      .flush = null_flush,
                      .end_run = null_end,
                      .stage_stat = null_stat,
                      .frozen_change = null_frozen};
    return sink;
}

#endif
