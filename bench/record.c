/*
 * bench/record.c - what recording in SQLite costs a run.
 *
 *   ./build/bench/record            (ORCH_THREADS=N sets the threads)
 *
 * The tiny preset (surgery, 56x56 images, batch 4, per-stage statistics
 * every 10 steps, NaN and frozen checks on) trains 60 steps twice per round:
 * once into a real store (WAL, batched transactions, heartbeat), once into
 * a sink that drops everything. Rounds alternate the order, and the ratio
 * of the median wall times is printed. On a shared machine that A/B ratio
 * moves by several percent between runs, more than recording costs, so the
 * store sink is also wrapped in a timer: the time spent inside the recorder
 * (every callback, commits included) over the run's wall time is the cost
 * itself, measured in the same run (target: below 1%).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/figure.h"
#include "core/startup_env.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/tower.h"
#include "store/store.h"

#include "bench/null_sink.h"

#define ROUNDS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------- a timer around the store sink */

typedef struct timed_sink {
    orch_sink inner;
    double seconds; /* spent inside the inner sink's callbacks */
} timed_sink;

#define TIMED(call)                                                                                \
    do {                                                                                           \
        double t0_ = now();                                                                        \
        int rc_ = (call);                                                                          \
        ts->seconds += now() - t0_;                                                                \
        return rc_;                                                                                \
    } while (0)

static int w_begin(void *c, const orch_run_info *i, int64_t *id, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.begin_run(ts->inner.ctx, i, id, e));
}
static int w_step(void *c, int64_t id, const orch_step_record *r, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.step(ts->inner.ctx, id, r, e));
}
static int w_metric(void *c, int64_t id, const orch_metric_record *r, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.metric(ts->inner.ctx, id, r, e));
}
static int w_nan(void *c, int64_t id, const orch_nan_record *r, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.nan_event(ts->inner.ctx, id, r, e));
}
static int w_flush(void *c, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.flush(ts->inner.ctx, e));
}
static int w_end(void *c, int64_t id, const orch_run_end *r, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.end_run(ts->inner.ctx, id, r, e));
}
static int w_stat(void *c, int64_t id, const orch_stage_stat *r, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.stage_stat(ts->inner.ctx, id, r, e));
}

static int w_frozen(void *c, int64_t id, const orch_frozen_change *r, orch_err *e)
{
    timed_sink *ts = c;
    TIMED(ts->inner.frozen_change(ts->inner.ctx, id, r, e));
}

static void pipeline(orch_pipeline *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "bench-record");
    snprintf(p->name, sizeof p->name, "bench-record");
    dsl_preset("tiny", &p->model.config);
    p->strategy.kind = ORCH_STRATEGY_SURGERY;
    snprintf(p->strategy.replace, ORCH_NAME_MAX, "visual.merger.mlp.2");
    p->data.n_samples = 64;
    p->data.n_classes = 4;
    p->data.image_height = p->data.image_width = 56;
    p->head.n_outputs = 4;
    p->optimizer.kind = ORCH_OPT_ADAMW;
    p->optimizer.lr = 1e-3;
    p->optimizer.beta1 = 0.9;
    p->optimizer.beta2 = 0.999;
    p->optimizer.eps = 1e-8;
    p->schedule.steps = 60;
    p->schedule.batch_size = 4;
    p->schedule.grad_accum = 1;
    p->loss_scale.init = 1.0;
    p->loss_scale.growth_interval = 2000;
    p->seed = 3;
    p->checks.nan = 1;
    p->checks.frozen = 1;
    p->checks.stats_every = 10;
}

static double run_once(const orch_pipeline *p, orch_sink *sink)
{
    orch_train_result result;
    orch_err err;
    double t0 = now();
    if (orch_train(p, NULL, sink, &result, &err) != ORCH_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    return now() - t0;
}

int main(int argc, char **argv)
{
    (void)argc;
    orch_startup_env(argv); /* the OpenMP wait policy orch runs with */
    bench_begin("bench/record");
    const char *env = getenv("ORCH_THREADS");
    if (env != NULL && env[0] != '\0')
        orch_threads_set(atoi(env));
    char dir[] = "/tmp/orch-bench-record-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char db[64];
    snprintf(db, sizeof db, "%s/orch.db", dir);
    orch_store *store = NULL;
    orch_sink store_sink;
    orch_err err;
    if (orch_store_open(db, ORCH_STORE_READWRITE, &store, &err) != ORCH_OK ||
        orch_store_sink(store, &store_sink, &err) != ORCH_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    orch_sink null_sink = bench_null_sink(NULL);
    timed_sink timed = {store_sink, 0.0};
    orch_sink timed_store = {.ctx = &timed,
                             .begin_run = w_begin,
                             .step = w_step,
                             .metric = w_metric,
                             .nan_event = w_nan,
                             .flush = w_flush,
                             .end_run = w_end,
                             .stage_stat = w_stat,
                             .frozen_change = w_frozen};
    orch_pipeline p;
    pipeline(&p);
    run_once(&p, &null_sink); /* warm-up */
    double in_recorder[ROUNDS], run_time[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        timed.seconds = 0.0;
        run_time[r] = run_once(&p, &timed_store);
        in_recorder[r] = timed.seconds / run_time[r];
    }
    qsort(in_recorder, ROUNDS, sizeof(double), cmp_double);
    double with_store[ROUNDS], without[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 2 == 0) {
            with_store[r] = run_once(&p, &store_sink);
            without[r] = run_once(&p, &null_sink);
        } else {
            without[r] = run_once(&p, &null_sink);
            with_store[r] = run_once(&p, &store_sink);
        }
    }
    qsort(with_store, ROUNDS, sizeof(double), cmp_double);
    qsort(without, ROUNDS, sizeof(double), cmp_double);
    double a = with_store[ROUNDS / 2], b = without[ROUNDS / 2];
    printf("bench/record: %d thread(s); tiny surgery, %d steps per run, median of %d rounds\n",
           orch_threads_get(), p.schedule.steps, ROUNDS);
    printf("  with the SQLite store  %8.1f ms/run  (%.3f ms/step)\n", a * 1e3,
           a * 1e3 / p.schedule.steps);
    printf("  without recording      %8.1f ms/run  (%.3f ms/step)\n", b * 1e3,
           b * 1e3 / p.schedule.steps);
    printf("  ratio with/without     %8.4f  (A/B of whole runs; noisy on a shared machine)\n",
           a / b);
    printf("  time inside recorder   %8.3f%% of the run's wall time (median; target < 1%%)\n",
           100.0 * in_recorder[ROUNDS / 2]);
    bench_figure("record.tiny.recorder_share", 100.0 * in_recorder[ROUNDS / 2], "% of wall", "<1",
                 "tiny surgery, %d thread(s): time inside the SQLite recorder over the run's wall "
                 "time (median of %d rounds)",
                 orch_threads_get(), ROUNDS);
    bench_figure("record.tiny.ab", a / b, "x", "-",
                 "tiny surgery: run time with the store over without (A/B of whole runs; moves "
                 "with the machine's noise)");
    orch_store_close(store);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
