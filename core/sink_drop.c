/* sink_drop.c - a sink that records nothing; see sink.h. */
#include "core/sink.h"

static int drop_begin(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    (void)ctx, (void)info, (void)err;
    *run_id = 0;
    return ORCH_OK;
}
static int drop_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_nan(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_flush(void *ctx, orch_err *err)
{
    (void)ctx, (void)err;
    return ORCH_OK;
}
static int drop_end(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_stat(void *ctx, int64_t run_id, const orch_stage_stat *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_artifact(void *ctx, int64_t run_id, const orch_artifact *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_resume(void *ctx, int64_t run_id, const orch_run_resume *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_frozen(void *ctx, int64_t run_id, const orch_frozen_change *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

static int drop_input(void *ctx, int64_t run_id, const orch_run_input *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}
static int drop_class(void *ctx, int64_t run_id, const orch_run_class *rec, orch_err *err)
{
    (void)ctx, (void)run_id, (void)rec, (void)err;
    return ORCH_OK;
}

void orch_sink_drop(orch_sink *out)
{
    orch_sink sink = {.begin_run = drop_begin,
                      .step = drop_step,
                      .metric = drop_metric,
                      .nan_event = drop_nan,
                      .flush = drop_flush,
                      .end_run = drop_end,
                      .stage_stat = drop_stat,
                      .artifact = drop_artifact,
                      .resume_run = drop_resume,
                      .frozen_change = drop_frozen,
                      .input = drop_input,
                      .run_class = drop_class};
    *out = sink;
}
