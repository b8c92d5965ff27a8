/*
 * bench/step.c - whole training steps against raw BLIS on the step's own
 * products and against the machine's FMA peak.
 *
 *   ./build/bench/step [--quick]
 *
 * A row is one (tower, strategy, thread count): a real orch_train (synthetic
 * images through the processor, forward, backward, AdamW, NaN checks, a sink
 * that keeps nothing). For each row:
 *   - the exact list of orch_sgemm calls of one warm step is recorded
 *     through the orch_gemm_trace_set hook (the second step of a 2-step run);
 *   - then, REPS times, interleaved: a training run (its median step after
 *     the first) and a replay of the recorded list through raw
 *     bli_sgemm_ex (bench/common/gemm_replay.h: same shapes, strides, beta and
 *     threads, per call the better of BLIS's default path and sup off);
 *   - vs_gemm = replay time / step time (target >= 0.8: the whole step, with
 *     its element-wise work, data and optimizer, reaches 0.8 of the
 *     throughput raw sgemm gets on the step's own products);
 *   - GFLOP/s of the step (the recorded products' 2mnk over the step time)
 *     and its fraction of the FMA peak of the same thread count; the same for
 *     the replay;
 *   - nan-check: 1 + time inside the finite scans over the step time
 *     (target < 1.05); activation memory with and without `checkpoint`.
 * Towers: `small` (2 x 448x448) and "tower" (depth 4, hidden 128, MLP 512,
 * 4 heads, every block full attention, out 256, one 448x448 image = 1024
 * patches) at 1 and 2 threads; `tiny` and `qwen2.5-vl-3b` (random weights,
 * 1 x 448x448; surgery, detach, LoRA) at 2 threads, fewer repetitions.
 * --quick: small and tower only, fewer repetitions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/common/figure.h"
#include "core/startup_env.h"
#include "bench/common/gemm_replay.h"
#include "bench/common/peak.h"
#include "core/graph.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/tower.h"

#include "bench/null_sink.h"

#define MAX_STEPS 64

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ------------------------------------------------- a sink that times */

typedef struct timing_sink {
    int n;
    double wall_ms[MAX_STEPS];
    gemm_replay *record; /* non-NULL: record the products of the second step */
} timing_sink;

static int t_step(void *c, int64_t id, const orch_step_record *r, orch_err *e)
{
    timing_sink *t = c;
    (void)id, (void)e;
    if (t->n < MAX_STEPS)
        t->wall_ms[t->n++] = r->wall_ms;
    /* after step 1 completes, step 2's products are recorded, and only those */
    if (t->record != NULL)
        t->record->recording = t->n == 1;
    return ORCH_OK;
}

/* Runs p; returns the median wall time of the steps after the first (warm-up),
 * in ms; the fraction of the run's step time spent in NaN checks goes to
 * *check_share when non-NULL. */
static double time_run(const orch_pipeline *p, double *check_share, gemm_replay *record)
{
    timing_sink t = {.record = record};
    orch_sink sink = bench_null_sink(&t);
    sink.step = t_step;
    orch_train_result result;
    orch_err err;
    if (orch_train(p, NULL, &sink, &result, &err) != ORCH_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    if (t.n < 2) {
        fprintf(stderr, "bench: a run recorded %d steps, 2 or more expected\n", t.n);
        exit(1);
    }
    double total_ms = 0.0;
    for (int i = 0; i < t.n; i++)
        total_ms += t.wall_ms[i];
    if (check_share != NULL)
        *check_share = result.check_seconds * 1e3 / total_ms;
    return median(t.wall_ms + 1, t.n - 1);
}

/* ------------------------------------------------------------ the runs */

typedef struct tower_case {
    const char *name;   /* in figure ids: step.<name>.<strategy>.t<threads> */
    const char *preset; /* the preset it starts from */
    int tower_override; /* 1: depth 4, MLP 512, every block full attention */
    int image;          /* pixels, square */
    int batch;
    int steps;      /* per timed run (the first is warm-up) */
    int reps;       /* interleaved (run, replay) rounds */
    int with_full;  /* full fine-tuning is affordable */
    int threads[2]; /* thread counts (0: unused slot; -1: the default) */
} tower_case;

static void base_pipeline(orch_pipeline *p, const tower_case *tc, orch_strategy_kind kind)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "bench");
    snprintf(p->name, sizeof p->name, "bench");
    snprintf(p->model.preset, sizeof p->model.preset, "%s", tc->preset);
    if (dsl_preset(tc->preset, &p->model.config) != 0) {
        fprintf(stderr, "bench: unknown preset %s\n", tc->preset);
        exit(1);
    }
    if (tc->tower_override) {
        /* the tower: small's hidden 128, 4 heads, patch 14, out 256,
         * with depth 4, MLP 512 and full attention in every block */
        orch_model_config *c = &p->model.config;
        c->depth = 4;
        c->intermediate_size = 512;
        c->n_fullatt = c->depth;
        for (int i = 0; i < c->depth; i++)
            c->fullatt_block_indexes[i] = i;
    }
    p->strategy.kind = kind;
    snprintf(p->strategy.replace, ORCH_NAME_MAX, "visual.merger.mlp.2");
    p->strategy.rank = 8;
    p->strategy.alpha = 8;
    p->strategy.n_targets = 2;
    snprintf(p->strategy.targets[0], ORCH_NAME_MAX, "visual.merger.mlp.0");
    snprintf(p->strategy.targets[1], ORCH_NAME_MAX, "visual.merger.mlp.2");
    p->data.source = ORCH_DATA_SYNTHETIC;
    p->data.n_samples = tc->batch * 2;
    p->data.n_classes = 4;
    p->data.image_height = p->data.image_width = tc->image;
    p->head.n_outputs = 4;
    p->optimizer.kind = ORCH_OPT_ADAMW;
    p->optimizer.lr = 1e-4;
    p->optimizer.beta1 = 0.9;
    p->optimizer.beta2 = 0.999;
    p->optimizer.eps = 1e-8;
    p->schedule.steps = tc->steps;
    p->schedule.batch_size = tc->batch;
    p->schedule.grad_accum = 1;
    p->loss_scale.init = 1.0;
    p->loss_scale.growth_interval = 2000;
    p->seed = 1;
    p->checks.nan = 1;
}

static double activation_mb(const orch_pipeline *p, int64_t patches)
{
    orch_graph g;
    orch_err err;
    if (orch_graph_build(p, &g, &err) != ORCH_OK ||
        orch_graph_reserve(&g, patches, p->schedule.batch_size, &err) != ORCH_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    double mb = (double)orch_graph_activation_bytes(&g) / 1048576.0;
    orch_graph_free(&g);
    return mb;
}

static void run_row(const tower_case *tc, orch_strategy_kind kind, int64_t patches)
{
    const char *strategy = orch_strategy_name(kind);
    int nt = orch_threads_get();
    orch_pipeline p;
    base_pipeline(&p, tc, kind);

    /* the products of one warm step */
    gemm_replay replay = {0};
    orch_pipeline two = p;
    two.schedule.steps = 2;
    bench_replay_start(&replay);
    time_run(&two, NULL, &replay);
    bench_replay_stop();
    bench_replay_prepare(&replay);

    double step_ms[REPLAY_MAX_REPS], share[REPLAY_MAX_REPS];
    int reps = tc->reps < REPLAY_MAX_REPS ? tc->reps : REPLAY_MAX_REPS;
    for (int r = 0; r < reps; r++) {
        step_ms[r] = time_run(&p, &share[r], NULL);
        bench_replay_run(&replay);
    }
    double step = median(step_ms, reps) * 1e-3; /* seconds */
    double check = median(share, reps);
    double gemm = bench_replay_seconds(&replay);
    double flops = bench_replay_flops(&replay);
    double peak = bench_peak_gflops(nt);
    double mb = activation_mb(&p, patches);
    p.checkpoint = 1;
    double mb_ckpt = activation_mb(&p, patches);

    double rate = flops / step * 1e-9, raw_rate = flops / gemm * 1e-9;
    printf("%-8s %3d %9.2f %9.2f %8.1f %6.1f%% %8.1f %6.1f%% %8.3f %6d %9.1f %9.1f %9.3f\n",
           strategy, nt, step * 1e3, gemm * 1e3, rate, 100.0 * rate / peak, raw_rate,
           100.0 * raw_rate / peak, gemm / step, replay.n_calls, mb, mb_ckpt, 1.0 + check);
    char id[128];
    snprintf(id, sizeof id, "step.%s.%s.t%d.vs_gemm", tc->name, strategy, nt);
    bench_figure(id, gemm / step, "x sgemm", ">=0.8",
                 "%s %s, %d thread(s): raw sgemm time on the step's %d products (%.2f ms) over "
                 "the step time (%.2f ms)",
                 tc->name, strategy, nt, replay.n_calls, gemm * 1e3, step * 1e3);
    snprintf(id, sizeof id, "step.%s.%s.t%d.peak", tc->name, strategy, nt);
    bench_figure(id, rate / peak, "of peak", "-",
                 "%s %s, %d thread(s): step GFLOP/s (%.1f) over the FMA peak (%.1f)", tc->name,
                 strategy, nt, rate, peak);
    snprintf(id, sizeof id, "step.%s.%s.t%d.ms", tc->name, strategy, nt);
    bench_figure(id, step * 1e3, "ms", "-", "%s %s, %d thread(s): median step time", tc->name,
                 strategy, nt);
    snprintf(id, sizeof id, "step.%s.%s.t%d.nan_check", tc->name, strategy, nt);
    bench_figure(id, 1.0 + check, "x step", "<1.05",
                 "%s %s, %d thread(s): 1 + time in the NaN checks over the step time", tc->name,
                 strategy, nt);
    bench_replay_free(&replay);
}

static void run_tower(const tower_case *tc)
{
    static const orch_strategy_kind kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                               ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};
    orch_pipeline p;
    base_pipeline(&p, tc, ORCH_STRATEGY_SURGERY);
    const orch_model_config *c = &p.model.config;
    int factor = c->patch_size * c->spatial_merge_size;
    int side = (tc->image + factor / 2) / factor * factor / c->patch_size; /* grid side */
    int64_t patches = (int64_t)side * side * tc->batch;
    printf("\n%s (preset %s): depth %d, hidden %d, MLP %d, %d heads, %d full-attention block(s); "
           "%d x %dx%d px = %lld patches; %d step(s) per run, %d rounds\n",
           tc->name, tc->preset, c->depth, c->hidden_size, c->intermediate_size, c->num_heads,
           c->n_fullatt, tc->batch, tc->image, tc->image, (long long)patches, tc->steps, tc->reps);
    printf("%-8s %3s %9s %9s %8s %7s %8s %7s %8s %6s %9s %9s %9s\n", "strategy", "thr", "step ms",
           "sgemm ms", "GFLOP/s", "%peak", "sgemm/s", "%peak", "vs_gemm", "calls", "act MB",
           "ckpt MB", "nan-check");
    for (int ti = 0; ti < 2; ti++) {
        if (tc->threads[ti] == 0)
            continue;
        orch_threads_set(tc->threads[ti] < 0 ? 0 : tc->threads[ti]);
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            if (kinds[k] == ORCH_STRATEGY_FULL && !tc->with_full)
                continue;
            run_row(tc, kinds[k], patches);
        }
    }
    orch_threads_set(0);
}

int main(int argc, char **argv)
{
    orch_startup_env(argv); /* the OpenMP wait policy orch runs with */
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    bench_begin("bench/step");
    const char *env = getenv("ORCH_THREADS");
    if (env != NULL && env[0] != '\0')
        orch_threads_set(atoi(env));
    int def = orch_threads_get();
    printf("bench/step: step = data + forward + backward + AdamW + NaN checks; default %d "
           "thread(s); FMA peak (%s) %.1f GFLOP/s on 1 thread, %.1f on 2\n",
           def, bench_peak_isa(), bench_peak_gflops(1), bench_peak_gflops(2));
    printf("vs_gemm = raw sgemm time on the step's own products / step time (target >= 0.8)\n");
    orch_threads_set(0);
    const tower_case cases[] = {
        {"small", "small", 0, 448, 2, 5, quick ? 3 : 5, 1, {1, 2}},
        {"tower", "small", 1, 448, 1, 5, quick ? 3 : 7, 1, {1, 2}},
        {"tiny", "tiny", 0, 56, 4, 11, 3, 1, {-1, 0}},
        {"qwen3b", "qwen2.5-vl-3b", 0, 448, 1, 3, 1, 0, {-1, 0}},
    };
    int n_cases = quick ? 2 : 4;
    for (int i = 0; i < n_cases; i++)
        run_tower(&cases[i]);
    return 0;
}
