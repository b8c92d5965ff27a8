/* sink_forward.c - records to the coordinator in batches; see sink_forward.h. */
#include "core/sink_forward.h"

#include <signal.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void orch_fwd_sink_init(orch_fwd_sink *f, orch_msg_send_fn send, void *send_ctx)
{
    memset(f, 0, sizeof *f);
    f->send = send;
    f->send_ctx = send_ctx;
    f->kill_step = -1;
}

void orch_fwd_sink_free(orch_fwd_sink *f)
{
    orch_msg_buf_free(&f->batch);
    f->n_records = 0;
}

int orch_fwd_sink_flush(orch_fwd_sink *f, orch_err *err)
{
    if (f->n_records == 0)
        return ORCH_OK;
    int rc = f->send(f->send_ctx, f->batch.data, f->batch.len, err);
    f->n_records = 0;
    f->batch.len = 0;
    return rc;
}

/* Appends rec; sends the batch when `now` asks for it, or it is full or old. */
static int add(orch_fwd_sink *f, const orch_record *rec, int now, orch_err *err)
{
    int rc = ORCH_OK;
    if (f->n_records == 0) {
        rc = orch_msg_records_begin(&f->batch, err);
        f->oldest_ms = now_ms();
    }
    if (rc == ORCH_OK)
        rc = orch_msg_records_add(&f->batch, rec, err);
    if (rc != ORCH_OK)
        return rc;
    f->n_records++;
    if (now || f->batch.len >= ORCH_FWD_BATCH_BYTES || now_ms() - f->oldest_ms >= ORCH_FWD_BATCH_MS)
        rc = orch_fwd_sink_flush(f, err);
    return rc;
}

static int fwd_begin_run(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    (void)ctx;
    (void)info;
    *run_id = 0;
    return orch_seterr(err, ORCH_EINVAL,
                       "sweep worker: a sweep's run is queued by its coordinator and taken over "
                       "with resume_run, never begun by a worker");
}

static int fwd_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    orch_fwd_sink *f = ctx;
    orch_record r = {.kind = ORCH_REC_STEP, .run_id = run_id, .as.step = *rec};
    int kill = run_id == f->kill_run && rec->step == f->kill_step;
    int rc = add(f, &r, kill, err);
    if (kill)
        raise(SIGKILL); /* the test hook: a worker that dies mid-run */
    return rc;
}

static int fwd_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_METRIC, .run_id = run_id, .as.metric = *rec};
    return add(ctx, &r, 0, err);
}

static int fwd_nan_event(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err)
{
    orch_fwd_sink *f = ctx;
    orch_record r = {.kind = ORCH_REC_NAN, .run_id = run_id, .as.nan = *rec};
    int first = f->nan_run != run_id;
    f->nan_run = run_id;
    return add(f, &r, first, err);
}

static int fwd_flush(void *ctx, orch_err *err)
{
    return orch_fwd_sink_flush(ctx, err);
}

static int fwd_end_run(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_RUN_END, .run_id = run_id, .as.run_end = *rec};
    return add(ctx, &r, 1, err);
}

static int fwd_stage_stat(void *ctx, int64_t run_id, const orch_stage_stat *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_STAGE_STAT, .run_id = run_id, .as.stage_stat = *rec};
    return add(ctx, &r, 0, err);
}

static int fwd_artifact(void *ctx, int64_t run_id, const orch_artifact *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_ARTIFACT, .run_id = run_id, .as.artifact = *rec};
    return add(ctx, &r, 1, err);
}

static int fwd_resume_run(void *ctx, int64_t run_id, const orch_run_resume *rec, orch_err *err)
{
    orch_fwd_sink *f = ctx;
    if (f->nan_run == run_id)
        f->nan_run = 0; /* the run records its NaN events again */
    orch_record r = {.kind = ORCH_REC_RUN_RESUME, .run_id = run_id, .as.run_resume = *rec};
    return add(f, &r, 1, err);
}

static int fwd_frozen_change(void *ctx, int64_t run_id, const orch_frozen_change *rec,
                             orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_FROZEN_CHANGE, .run_id = run_id, .as.frozen_change = *rec};
    return add(ctx, &r, 0, err);
}

static int fwd_cache_use(void *ctx, int64_t run_id, const orch_cache_use *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_CACHE_USE, .run_id = run_id, .as.cache_use = *rec};
    return add(ctx, &r, 0, err);
}

/* Batched like a step: a run over a folder sends one per image. */
static int fwd_input(void *ctx, int64_t run_id, const orch_run_input *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_INPUT, .run_id = run_id, .as.input = *rec};
    return add(ctx, &r, 0, err);
}

static int fwd_run_class(void *ctx, int64_t run_id, const orch_run_class *rec, orch_err *err)
{
    orch_record r = {.kind = ORCH_REC_CLASS, .run_id = run_id, .as.run_class = *rec};
    return add(ctx, &r, 0, err);
}

orch_sink orch_fwd_sink_make(orch_fwd_sink *f)
{
    orch_sink s = {
        .ctx = f,
        .begin_run = fwd_begin_run,
        .step = fwd_step,
        .metric = fwd_metric,
        .nan_event = fwd_nan_event,
        .flush = fwd_flush,
        .end_run = fwd_end_run,
        .stage_stat = fwd_stage_stat,
        .artifact = fwd_artifact,
        .resume_run = fwd_resume_run,
        .frozen_change = fwd_frozen_change,
        .cache_use = fwd_cache_use,
        .input = fwd_input,
        .run_class = fwd_run_class,
    };
    return s;
}
