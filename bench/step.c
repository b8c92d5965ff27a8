/*
 * bench/step.c - whole training steps of the tower, per strategy and preset.
 *
 *   ./build/bench/step [--quick]          (ORCH_THREADS=N sets the threads)
 *
 * For each preset (tiny, small, and qwen2.5-vl-3b with random weights at
 * 448x448) and strategy, a real run through orch_train (synthetic images,
 * the processor, forward, backward, AdamW, NaN checks, a sink that keeps
 * nothing) and prints:
 *   - the median step time (steps after the first),
 *   - GFLOP/s of the step, from the products the graph executes, and its
 *     ratio to raw sgemm throughput measured in this process on the tower's
 *     dominant product (the better of BLIS's default and sup-off paths),
 *   - activation memory reserved with and without `checkpoint`,
 *   - the cost of checks.nan: 1 + the time inside the finite scans over the
 *     step time, measured in the same run (target < 1.05); the A/B ratio of
 *     step times with and without the checks is printed beside it, but on a
 *     shared machine it moves by more than the checks cost.
 * --quick runs only the tiny and small presets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/geometry.h"
#include "core/graph.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/tower.h"

#include "bench/null_sink.h"

#define MAX_STEPS 64

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

/* ------------------------------------------------- a sink that times */

typedef struct timing_sink {
    int n;
    double wall_ms[MAX_STEPS];
} timing_sink;

static int t_step(void *c, int64_t id, const orch_step_record *r, orch_err *e)
{
    timing_sink *t = c;
    (void)id, (void)e;
    if (t->n < MAX_STEPS)
        t->wall_ms[t->n++] = r->wall_ms;
    return ORCH_OK;
}
/* Median wall time of the steps after the first (warm-up), in ms; the
 * fraction of the run's step time spent in NaN checks goes to *check_share. */
static double time_run(const orch_pipeline *p, double *check_share)
{
    timing_sink t = {0};
    orch_sink sink = bench_null_sink(&t);
    sink.step = t_step;
    orch_train_result result;
    orch_err err;
    if (orch_train(p, NULL, &sink, &result, &err) != ORCH_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    int n = t.n - 1;
    double total_ms = 0.0;
    for (int i = 0; i < t.n; i++)
        total_ms += t.wall_ms[i];
    if (check_share != NULL)
        *check_share = result.check_seconds * 1e3 / total_ms;
    qsort(t.wall_ms + 1, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t.wall_ms[1 + n / 2] : 0.5 * (t.wall_ms[n / 2] + t.wall_ms[1 + n / 2]);
}

/* ----------------------------------------------------- flop counting */

/* FLOPs of one step of graph g for n_images images of grid (1, gh, gw):
 * products only (linear, LoRA, attention), forward plus the backward work
 * the plan asks for. */
static double step_flops(const orch_graph *g, int n_images, int gh, int gw)
{
    int64_t grids[ORCH_MAX_IMAGES][3];
    for (int i = 0; i < n_images; i++) {
        grids[i][0] = 1;
        grids[i][1] = gh;
        grids[i][2] = gw;
    }
    const orch_model_config *c = &g->config;
    orch_geometry geo;
    if (orch_geometry_build((const int64_t(*)[3])grids, n_images, c->spatial_merge_size,
                            c->window_size / c->spatial_merge_size / c->patch_size, &geo,
                            NULL) != ORCH_OK)
        return 0.0;
    int unit = c->spatial_merge_size * c->spatial_merge_size;
    double flops = 0.0;
    for (int i = 0; i < g->n_nodes; i++) {
        const orch_node *n = &g->nodes[i];
        double rows = (double)orch_tensor_rows(&g->tensors[n->out], geo.n_patches, unit, n_images);
        int dx = n->in[0] >= 0 && g->tensors[n->in[0]].requires_grad;
        if (n->op == ORCH_OP_LINEAR || n->op == ORCH_OP_LORA_LINEAR) {
            double mm = 2.0 * rows * n->in_dim * n->out_dim;
            double lora = n->op == ORCH_OP_LORA_LINEAR
                              ? 2.0 * rows * n->rank * (n->in_dim + n->out_dim)
                              : 0.0;
            flops += mm + lora;
            if (n->needs_backward) {
                if (n->param[0] >= 0 && g->params[n->param[0]].trainable)
                    flops += mm;
                if (dx)
                    flops += mm + lora;
                flops += 2.0 * lora; /* dA, dB */
            }
        } else if (n->op == ORCH_OP_ATTENTION) {
            const int32_t *cu = n->full_attention ? geo.cu_full : geo.cu_window;
            int segs = n->full_attention ? geo.n_full_segs : geo.n_window_segs;
            double sq = 0.0;
            for (int s = 0; s < segs; s++)
                sq += (double)(cu[s + 1] - cu[s]) * (cu[s + 1] - cu[s]);
            flops += 4.0 * sq * c->hidden_size;
            if (n->needs_backward && dx)
                flops += 10.0 * sq * c->hidden_size;
        }
    }
    orch_geometry_free(&geo);
    return flops;
}

/* Raw sgemm GFLOP/s on an m x n x k NT product (weights [out, in]). */
static double sgemm_rate(int m, int n, int k)
{
    float *a = calloc((size_t)m * k, sizeof(float));
    float *b = calloc((size_t)n * k, sizeof(float));
    float *c = calloc((size_t)m * n, sizeof(float));
    double best = 0.0;
    for (int sup = ORCH_SUP_ON; sup <= ORCH_SUP_OFF; sup++) {
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now();
            orch_sgemm(m, n, k, 1.0f, a, k, 1, b, 1, k, 0.0f, c, n, 1, (orch_sup)sup, 0);
            double rate = 2.0 * m * n * k / (now() - t0) / 1e9;
            if (rate > best)
                best = rate;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* ------------------------------------------------------------ the runs */

typedef struct preset_case {
    const char *preset;
    int image; /* pixels, square */
    int batch;
    int steps;
    int with_full; /* full fine-tuning is affordable */
} preset_case;

static void base_pipeline(orch_pipeline *p, const preset_case *pc, orch_strategy_kind kind)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "bench");
    snprintf(p->name, sizeof p->name, "bench");
    snprintf(p->model.preset, sizeof p->model.preset, "%s", pc->preset);
    if (dsl_preset(pc->preset, &p->model.config) != 0) {
        fprintf(stderr, "bench: unknown preset %s\n", pc->preset);
        exit(1);
    }
    p->strategy.kind = kind;
    snprintf(p->strategy.replace, ORCH_NAME_MAX, "visual.merger.mlp.2");
    p->strategy.rank = 8;
    p->strategy.alpha = 8;
    p->strategy.n_targets = 2;
    snprintf(p->strategy.targets[0], ORCH_NAME_MAX, "visual.merger.mlp.0");
    snprintf(p->strategy.targets[1], ORCH_NAME_MAX, "visual.merger.mlp.2");
    p->data.source = ORCH_DATA_SYNTHETIC;
    p->data.n_samples = pc->batch * 2;
    p->data.n_classes = 4;
    p->data.image_height = p->data.image_width = pc->image;
    p->head.n_outputs = 4;
    p->optimizer.kind = ORCH_OPT_ADAMW;
    p->optimizer.lr = 1e-4;
    p->optimizer.beta1 = 0.9;
    p->optimizer.beta2 = 0.999;
    p->optimizer.eps = 1e-8;
    p->schedule.steps = pc->steps;
    p->schedule.batch_size = pc->batch;
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

static void run_preset(const preset_case *pc)
{
    static const orch_strategy_kind kinds[] = {ORCH_STRATEGY_SURGERY, ORCH_STRATEGY_DETACH,
                                               ORCH_STRATEGY_LORA, ORCH_STRATEGY_FULL};
    orch_pipeline p;
    base_pipeline(&p, pc, ORCH_STRATEGY_SURGERY);
    const orch_model_config *c = &p.model.config;
    int factor = c->patch_size * c->spatial_merge_size;
    int side = (pc->image + factor / 2) / factor * factor / c->patch_size; /* grid side */
    int64_t patches = (int64_t)side * side * pc->batch;
    double sgemm = sgemm_rate((int)patches, 3 * c->hidden_size, c->hidden_size);
    printf("\n%s: %dx%d px, grid (1, %d, %d), batch %d, %lld patches; raw sgemm %lldx%dx%d "
           "%.1f GFLOP/s\n",
           pc->preset, pc->image, pc->image, side, side, pc->batch, (long long)patches,
           (long long)patches, 3 * c->hidden_size, c->hidden_size, sgemm);
    printf("%-8s %10s %9s %9s %12s %12s %10s %8s\n", "strategy", "step ms", "GFLOP/s", "/sgemm",
           "act MB", "act MB ckpt", "nan-check", "A/B");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (kinds[k] == ORCH_STRATEGY_FULL && !pc->with_full)
            continue;
        base_pipeline(&p, pc, kinds[k]);
        orch_graph g;
        orch_err err;
        if (orch_graph_build(&p, &g, &err) != ORCH_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
        double flops = step_flops(&g, pc->batch, side, side);
        orch_graph_free(&g);
        double share = 0.0;
        double with_checks = time_run(&p, &share);
        p.checks.nan = 0;
        double without_checks = time_run(&p, NULL);
        double mb = activation_mb(&p, patches);
        p.checkpoint = 1;
        double mb_ckpt = activation_mb(&p, patches);
        double rate = flops / (with_checks / 1e3) / 1e9;
        printf("%-8s %10.2f %9.1f %9.2f %12.1f %12.1f %10.3f %8.3f\n", orch_strategy_name(kinds[k]),
               with_checks, rate, rate / sgemm, mb, mb_ckpt, 1.0 + share,
               with_checks / without_checks);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const char *env = getenv("ORCH_THREADS");
    if (env != NULL && env[0] != '\0')
        orch_threads_set(atoi(env));
    printf("bench/step: %d thread(s); step = data + forward + backward + AdamW (+ NaN checks)\n",
           orch_threads_get());
    const preset_case cases[] = {
        {"tiny", 56, 4, 21, 1},
        {"small", 448, 2, 6, 1},
        {"qwen2.5-vl-3b", 448, 1, 3, 0},
    };
    /* warm up BLIS, the OpenMP pool and the allocator before anything is timed */
    sgemm_rate(1024, 1024, 256);
    int n_cases = quick ? 2 : 3;
    for (int i = 0; i < n_cases; i++)
        run_preset(&cases[i]);
    return 0;
}
