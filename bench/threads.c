/*
 * bench/threads.c - whole training steps at 1 and 2 threads, on an idle
 * machine and beside a process that keeps one core busy.
 *
 *   ./build/bench/threads [--quick] [--preset NAME] [--rounds N]
 *
 * Each round measures, interleaved in this one process: a busy child (a
 * forked process spinning at normal priority) running, 1 and 2 threads;
 * the child killed, 1 and 2 threads (the order of 1 and 2 alternates from
 * round to round). A measurement is the median step time of a surgery run
 * through orch_train (synthetic images, forward, backward, AdamW, NaN
 * checks, a sink that keeps nothing), steps after the first. Printed: the
 * median over rounds of t2 / t1 in each condition, and FIGURE lines:
 *   threads.busy.t2_over_t1  target <= 1.10 (2 threads must not collapse)
 *   threads.idle.t2_over_t1  info
 * The program starts itself the way orch does (core/startup_env.c), so the
 * OpenMP wait policy is the one orch runs with; set OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT to measure another. The busy child dies with this
 * process (PR_SET_PDEATHSIG) and is killed and reaped on every exit path.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/startup_env.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/tower.h"

#include "bench/null_sink.h"

#define MAX_STEPS  64
#define MAX_ROUNDS 16

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------ the busy child */

static pid_t g_busy = -1; /* the spinning child, -1 when none */

static void busy_stop(void)
{
    if (g_busy > 0) {
        kill(g_busy, SIGKILL);
        waitpid(g_busy, NULL, 0);
        g_busy = -1;
    }
}

static void busy_start(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench: fork");
        exit(1);
    }
    if (pid == 0) {
        /* dies with the bench even if the bench is killed */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        volatile unsigned long spin = 0;
        for (;;)
            spin++;
    }
    g_busy = pid;
    /* let the scheduler see it runnable before anything is timed */
    struct timespec ms = {0, 20000000};
    nanosleep(&ms, NULL);
}

static void on_signal(int sig)
{
    busy_stop();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ------------------------------------------------------------ the runs */

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

/* Median wall time of the steps after the first, in ms, on nt threads. */
static double time_run(const orch_pipeline *p, int nt)
{
    orch_threads_set(nt);
    timing_sink t = {0};
    orch_sink sink = bench_null_sink(&t);
    sink.step = t_step;
    orch_train_result result;
    orch_err err;
    if (orch_train(p, NULL, &sink, &result, &err) != ORCH_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        busy_stop();
        exit(1);
    }
    return median(t.wall_ms + 1, t.n - 1);
}

static void surgery_pipeline(orch_pipeline *p, const char *preset, int image, int batch, int steps)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "bench");
    snprintf(p->name, sizeof p->name, "bench-threads");
    snprintf(p->model.preset, sizeof p->model.preset, "%s", preset);
    if (dsl_preset(preset, &p->model.config) != 0) {
        fprintf(stderr, "bench: unknown preset %s\n", preset);
        exit(2);
    }
    p->strategy.kind = ORCH_STRATEGY_SURGERY;
    snprintf(p->strategy.replace, ORCH_NAME_MAX, "visual.merger.mlp.2");
    p->data.source = ORCH_DATA_SYNTHETIC;
    p->data.n_samples = batch * 2;
    p->data.n_classes = 4;
    p->data.image_height = p->data.image_width = image;
    p->head.n_outputs = 4;
    p->optimizer.kind = ORCH_OPT_ADAMW;
    p->optimizer.lr = 1e-4;
    p->optimizer.beta1 = 0.9;
    p->optimizer.beta2 = 0.999;
    p->optimizer.eps = 1e-8;
    p->schedule.steps = steps;
    p->schedule.batch_size = batch;
    p->schedule.grad_accum = 1;
    p->loss_scale.init = 1.0;
    p->loss_scale.growth_interval = 2000;
    p->seed = 1;
    p->checks.nan = 1;
}

static void figure(const char *id, double value, const char *unit, const char *target,
                   const char *verdict, const char *what)
{
    printf("FIGURE\t%s\t%.3f\t%s\t%s\t%s\t%s\n", id, value, unit, target, verdict, what);
}

int main(int argc, char **argv)
{
    orch_startup_env(argv);
    const char *preset = "small";
    int rounds = 5, steps = 6;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            rounds = 3;
        } else if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) {
            preset = argv[++i];
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "bench: --rounds in [1, %d]\n", MAX_ROUNDS);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--quick] [--preset NAME] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(busy_stop);

    int tiny = strcmp(preset, "tiny") == 0;
    orch_pipeline p;
    surgery_pipeline(&p, preset, tiny ? 56 : 448, tiny ? 4 : 2, tiny ? 12 : steps);
    printf("bench/threads: %s surgery, %d steps per run, %d rounds; wait: %s; "
           "%d cores available\n",
           preset, p.schedule.steps, rounds, orch_startup_env_describe(),
           orch_threads_affinity_cores());

    time_run(&p, 2); /* warm-up: BLIS, the OpenMP pool, the allocator */
    double ratio[2][MAX_ROUNDS], ms[2][2][MAX_ROUNDS]; /* [busy][threads-1][round] */
    for (int r = 0; r < rounds; r++) {
        for (int busy = 1; busy >= 0; busy--) {
            if (busy)
                busy_start();
            int first = r % 2 ? 2 : 1;
            double a = time_run(&p, first), b = time_run(&p, 3 - first);
            double t1 = first == 1 ? a : b, t2 = first == 1 ? b : a;
            if (busy)
                busy_stop();
            ms[busy][0][r] = t1;
            ms[busy][1][r] = t2;
            ratio[busy][r] = t2 / t1;
            printf("round %d %-4s  t1 %8.2f ms  t2 %8.2f ms  t2/t1 %.3f\n", r + 1,
                   busy ? "busy" : "idle", t1, t2, t2 / t1);
            fflush(stdout);
        }
    }
    orch_threads_set(0);

    double busy_ratio = median(ratio[1], rounds), idle_ratio = median(ratio[0], rounds);
    printf("\n%-6s %12s %12s %10s   (medians over %d rounds)\n", "", "t1 step ms", "t2 step ms",
           "t2/t1", rounds);
    printf("%-6s %12.2f %12.2f %10.3f\n", "idle", median(ms[0][0], rounds),
           median(ms[0][1], rounds), idle_ratio);
    printf("%-6s %12.2f %12.2f %10.3f   target <= 1.10\n", "busy", median(ms[1][0], rounds),
           median(ms[1][1], rounds), busy_ratio);
    figure("threads.busy.t2_over_t1", busy_ratio, "x", "<=1.10",
           busy_ratio <= 1.10 ? "met" : "MISSED",
           "step time at 2 threads over 1 thread, one core kept busy by another process");
    figure("threads.idle.t2_over_t1", idle_ratio, "x", "-", "info",
           "step time at 2 threads over 1 thread, no process added");
    return 0;
}
