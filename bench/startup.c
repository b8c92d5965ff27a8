/*
 * bench/startup.c - how fast the 3B tower starts: set-up before the first
 * step, the first step against the later ones, and set-up with the tower's
 * weights read from a safetensors file.
 *
 *   ./build/bench/startup [--quick]       (ORCH_THREADS=N sets the threads)
 *
 * The run is pipelines/surgery.lua with model.preset = "qwen2.5-vl-3b",
 * 448x448 images, batch 1, through orch_train with a sink that keeps
 * nothing but times: set-up is orch_train's start to its begin_run (data,
 * graph, reservation and pre-faulting, initialization, executor, frozen
 * checksums: everything before step 0), the steps are the run's own
 * recorded wall times. Then the same set-up is broken down by phase, through
 * the public calls prepare makes (info lines), and the tower it built is
 * written to a temporary safetensors file (F32, orch_st_write) that a third
 * run reads as model.weights; that file is then in the page cache, as a
 * checkpoint read twice is. --quick uses the small preset (a smoke test of
 * the program, figures not claimed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/exec.h"
#include "core/graph.h"
#include "core/init.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/dsl.h"
#include "store/safetensors.h"

#include "bench/null_sink.h"

#define MAX_STEPS 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads): on a loaded machine,
 * CPU time over the thread count is what the phase costs when idle. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const orch_err *err)
{
    fprintf(stderr, "bench/startup: %s\n", err->msg);
    exit(1);
}

/* ------------------------------------------------- a sink that times */

typedef struct timing_sink {
    double begin_s; /* when begin_run was called: set-up is over */
    int n;
    double wall_ms[MAX_STEPS];
} timing_sink;

static int t_begin(void *c, const orch_run_info *i, int64_t *id, orch_err *e)
{
    timing_sink *t = c;
    t->begin_s = now();
    return null_begin(c, i, id, e);
}

static int t_step(void *c, int64_t id, const orch_step_record *r, orch_err *e)
{
    timing_sink *t = c;
    (void)id, (void)e;
    if (t->n < MAX_STEPS)
        t->wall_ms[t->n++] = r->wall_ms;
    return ORCH_OK;
}

typedef struct run_times {
    double setup_s, first_s, later_s; /* later: median of the steps after the first */
} run_times;

static run_times time_run(const orch_pipeline *p)
{
    timing_sink t = {0};
    orch_sink sink = bench_null_sink(&t);
    sink.begin_run = t_begin;
    sink.step = t_step;
    orch_train_result result;
    orch_err err;
    double t0 = now();
    if (orch_train(p, NULL, &sink, &result, &err) != ORCH_OK)
        die(&err);
    run_times rt = {t.begin_s - t0, t.n > 0 ? t.wall_ms[0] / 1e3 : 0.0, 0.0};
    int n = t.n - 1;
    if (n > 0) {
        qsort(t.wall_ms + 1, (size_t)n, sizeof(double), cmp_double);
        rt.later_s =
            (n % 2 ? t.wall_ms[1 + n / 2] : 0.5 * (t.wall_ms[n / 2] + t.wall_ms[1 + n / 2])) / 1e3;
    }
    return rt;
}

/* ------------------------------------------------------------ pipeline */

static void load_pipeline(orch_pipeline *p, const char *preset, int steps, const char *weights)
{
    char set_preset[64], set_steps[64], set_weights[ORCH_PATH_MAX + 32];
    snprintf(set_preset, sizeof set_preset, "model.preset=\"%s\"", preset);
    snprintf(set_steps, sizeof set_steps, "schedule.steps=%d", steps);
    snprintf(set_weights, sizeof set_weights, "model.weights=\"%s\"", weights ? weights : "");
    const char *sets[] = {set_preset,
                          "data.image_size={448, 448}",
                          "schedule.batch_size=1",
                          "schedule.warmup_steps=0",
                          set_steps,
                          set_weights};
    orch_err err;
    if (orch_dsl_load("pipelines/surgery.lua", sets, weights ? 6 : 5, p, &err) != ORCH_OK)
        die(&err);
}

/* ----------------------------------------------- set-up, phase by phase */

/* prepare's phases through the public calls (data and checksums aside),
 * each timed; leaves the initialized graph in *g for the weights file. */
static void setup_phases(const orch_pipeline *p, int64_t patches, orch_graph *g, const char *tag)
{
    orch_err err;
    double t0 = now();
    if (orch_graph_build(p, g, &err) != ORCH_OK)
        die(&err);
    double t1 = now();
    if (orch_graph_reserve(g, patches, p->schedule.batch_size, &err) != ORCH_OK)
        die(&err);
    double t2 = now(), cpu2 = cpu_now();
    if (orch_init_params(g, p, &err) != ORCH_OK)
        die(&err);
    double t3 = now(), cpu3 = cpu_now();
    orch_exec ex;
    if (orch_exec_init(&ex, g, p, patches, p->schedule.batch_size, &err) != ORCH_OK ||
        orch_exec_refresh_lowp(&ex, 1, &err) != ORCH_OK)
        die(&err);
    double t4 = now();
    orch_exec_free(&ex);
    double bytes = (double)g->n_param_floats * sizeof(float) + orch_graph_activation_bytes(g);
    printf("phases: build %.2f s, reserve %.2f s (%.2f GB of parameters, activations, "
           "gradients and optimizer state), init %.2f s, executor %.2f s\n",
           t1 - t0, t2 - t1, bytes / 1e9, t3 - t2, t4 - t3);
    printf("FIGURE\tstartup.%s.seeded.init_s\t%.2f\ts\t-\tinfo\tseeded initialization of every "
           "parameter (orch_init_params), %d thread(s)\n",
           tag, t3 - t2, orch_threads_get());
    printf("FIGURE\tstartup.%s.seeded.init_cpu_s\t%.2f\ts\t-\tinfo\tCPU time of the seeded "
           "initialization, all threads (idle-machine wall time: this over the threads)\n",
           tag, cpu3 - cpu2);
    printf("FIGURE\tstartup.%s.reserve_s\t%.2f\ts\t-\tinfo\treservation of parameter, "
           "activation and optimizer memory, pre-faulted (orch_graph_reserve), %d thread(s)\n",
           tag, t2 - t1, orch_threads_get());
}

/* Writes every tower parameter of g to path as F32. */
static void write_tower(const orch_graph *g, const char *path)
{
    orch_st_entry *entries = calloc((size_t)g->n_params, sizeof *entries);
    if (entries == NULL) {
        fprintf(stderr, "bench/startup: out of memory\n");
        exit(1);
    }
    int n = 0;
    for (int i = 0; i < g->n_params; i++) {
        const orch_param *prm = &g->params[i];
        if (!prm->in_tower)
            continue;
        entries[n].name = prm->name;
        entries[n].ndim = prm->ndim;
        memcpy(entries[n].shape, prm->shape, sizeof(int64_t) * (size_t)prm->ndim);
        entries[n].data = prm->data;
        n++;
    }
    orch_err err;
    if (orch_st_write(path, entries, n, NULL, &err) != ORCH_OK)
        die(&err);
    free(entries);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const char *env = getenv("ORCH_THREADS");
    if (env != NULL && env[0] != '\0')
        orch_threads_set(atoi(env));
    orch_err err;
    if (orch_blas_init(&err) != ORCH_OK)
        die(&err);
    const orch_blas_info *blas = orch_blas_get_info();
    const char *preset = quick ? "small" : "qwen2.5-vl-3b";
    const char *tag = quick ? "small" : "3b";
    int threads = orch_threads_get();
    printf("bench/startup: %s, 448x448, batch 1, surgery, %d thread(s); blis %s, kernels '%s'\n",
           preset, threads, blas->version, blas->subconfig);

    /* seeded initialization: set-up, first step, later steps */
    orch_pipeline *p = calloc(1, sizeof *p);
    if (p == NULL)
        return 1;
    load_pipeline(p, preset, 3, NULL);
    run_times seeded = time_run(p);
    double ratio = seeded.later_s > 0 ? seeded.first_s / seeded.later_s : 0.0;
    printf("seeded: set-up %.2f s, first step %.2f s, later steps %.2f s (median), first/later "
           "%.2f\n",
           seeded.setup_s, seeded.first_s, seeded.later_s, ratio);
    const char *verdict_kind = quick ? "info" : NULL;
    printf("FIGURE\tstartup.%s.seeded.setup_s\t%.2f\ts\t<10\t%s\tset-up before the first step, "
           "seeded initialization, %d thread(s)\n",
           tag, seeded.setup_s,
           verdict_kind          ? verdict_kind
           : seeded.setup_s < 10 ? "met"
                                 : "MISSED",
           threads);
    printf("FIGURE\tstartup.%s.first_over_later\t%.2f\tx\t<=1.2\t%s\tfirst step over the median "
           "of the later ones, %d thread(s)\n",
           tag, ratio,
           verdict_kind   ? verdict_kind
           : ratio <= 1.2 ? "met"
                          : "MISSED",
           threads);
    printf("FIGURE\tstartup.%s.first_step_s\t%.2f\ts\t-\tinfo\tfirst step, %d thread(s)\n", tag,
           seeded.first_s, threads);
    printf("FIGURE\tstartup.%s.later_step_s\t%.2f\ts\t-\tinfo\tmedian of the later steps, %d "
           "thread(s)\n",
           tag, seeded.later_s, threads);
    fflush(stdout);

    /* the phases, and a weights file from the tower they initialized */
    char dir[] = "/tmp/orch-startup-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("bench/startup: mkdtemp");
        return 1;
    }
    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    orch_graph g;
    setup_phases(p, 1024, &g, tag);
    write_tower(&g, path);
    orch_graph_free(&g);
    fflush(stdout);

    load_pipeline(p, preset, 1, path);
    /* the loading phase alone: reservation, then the file read and converted */
    {
        orch_graph fg;
        double t0 = now();
        if (orch_graph_build(p, &fg, &err) != ORCH_OK ||
            orch_graph_reserve(&fg, 1024, p->schedule.batch_size, &err) != ORCH_OK)
            die(&err);
        double t1 = now();
        if (orch_init_params(&fg, p, &err) != ORCH_OK)
            die(&err);
        double t2 = now();
        orch_graph_free(&fg);
        printf("file phases: reserve %.2f s, init with the weights file %.2f s\n", t1 - t0,
               t2 - t1);
        printf("FIGURE\tstartup.%s.file.load_s\t%.2f\ts\t-\tinfo\tparameters from the weights "
               "file (orch_init_params: read, converted to fp32), %d thread(s)\n",
               tag, t2 - t1, threads);
        fflush(stdout);
    }
    run_times file = time_run(p);
    printf("weights from a file: set-up %.2f s\n", file.setup_s);
    printf("FIGURE\tstartup.%s.file.setup_s\t%.2f\ts\t<5\t%s\tset-up before the first step, "
           "tower weights from a safetensors file (F32, in the page cache), %d thread(s)\n",
           tag, file.setup_s,
           verdict_kind       ? verdict_kind
           : file.setup_s < 5 ? "met"
                              : "MISSED",
           threads);
    unlink(path);
    rmdir(dir);
    free(p);
    return 0;
}
