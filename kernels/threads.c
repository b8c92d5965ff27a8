/*
 * threads.c - the one place kernels take their thread count from.
 *
 * The setting: orch_threads_set() records an explicit count (--threads,
 * ORCH_THREADS, a program); without one, OMP_NUM_THREADS if the user set
 * it, else the cores that are free when a kernel first asks: the cores
 * this process may run on (sched_getaffinity) minus the threads of other
 * processes that are runnable then (/proc/loadavg's running count, minus
 * our own running threads). Element-wise kernels use the setting as their
 * OpenMP team size; BLIS's global setting is updated too, so raw BLIS
 * calls (the benchmark's reference sgemm) see the same number.
 *
 * Products: BLIS 0.9's thread barriers (bli_thrcomm_barrier_atomic) spin
 * without ever yielding, so a product on 2 threads whose partner thread is
 * descheduled by another process burns its whole time slice at every
 * barrier; that is what made 2 threads up to 10x slower than 1 on a busy
 * machine. orch_threads_product() gives a product only the threads that
 * are free now (re-sampled at most every ORCH_THREADS_SAMPLE_MS), so the
 * setting stays as chosen and the spinning cannot start. BLIS never splits
 * the k loop, so a product's bits do not depend on its thread count
 * (tests/test_kernel_threads.c checks it).
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <dirent.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void orch_blas_set_global_threads(int n); /* blas.c */

/* How often a product may re-sample the machine's load: a read of
 * /proc/loadavg and of our own threads' states costs ~20 us. */
#define ORCH_THREADS_SAMPLE_MS 100
/* Samples kept for the product count: the least busy of them counts, so a
 * compiler that was runnable for one instant does not halve a product. */
#define ORCH_THREADS_WINDOW 3

static int g_threads;   /* explicit setting; 0: not set */
static int g_default;   /* the default, chosen once; 0: not chosen yet */
static char g_why[160]; /* why g_default, one clause */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------ the pure rule */

int orch_threads_choose(int cores, int others_runnable, int user)
{
    if (user > 0)
        return user;
    if (cores < 1)
        cores = 1;
    int free_cores = cores - (others_runnable > 0 ? others_runnable : 0);
    if (free_cores > cores)
        free_cores = cores;
    return free_cores < 1 ? 1 : free_cores;
}

/* -------------------------------------------- what the machine does now */

int orch_threads_affinity_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return omp_get_num_procs();
    int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n;
}

/* Runnable threads on the machine (loadavg's "R/T" field, which counts the
 * reader itself); -1 if unknown. */
static int runnable_total(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return -1;
    double a, b, c;
    int running = -1, total = 0;
    if (fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total) != 5)
        running = -1;
    fclose(f);
    return running;
}

/* Our own threads that are running or runnable (state R); at least 1, the
 * caller. Spinning OpenMP or BLIS threads of ours are R too: subtracting
 * them keeps our own waiting from looking like another process. */
static int runnable_self(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        const char *paren = strrchr(buf, ')'); /* the name may hold spaces */
        if (paren != NULL && paren[1] == ' ' && paren[2] == 'R')
            n++;
    }
    closedir(d);
    return n < 1 ? 1 : n;
}

/* Threads of other processes runnable now; 0 if unknown. */
static int others_runnable(void)
{
    int total = runnable_total();
    if (total < 0)
        return 0;
    int others = total - runnable_self();
    return others < 0 ? 0 : others;
}

/* ----------------------------------------------------------- the setting */

static void choose_default(void)
{
    const char *omp = getenv("OMP_NUM_THREADS");
    if (omp != NULL && omp[0] != '\0') {
        g_default = omp_get_max_threads();
        snprintf(g_why, sizeof g_why, "OMP_NUM_THREADS");
        return;
    }
    int cores = orch_threads_affinity_cores();
    /* a few instants 1 ms apart, the least busy counts: a process that
     * keeps a core busy is runnable in every one of them */
    int others = others_runnable();
    for (int i = 1; i < 4 && others > 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        int o = others_runnable();
        if (o < others)
            others = o;
    }
    g_default = orch_threads_choose(cores, others, 0);
    if (g_default < cores)
        snprintf(g_why, sizeof g_why,
                 "%d of %d cores busy with other processes at start; --threads N overrides",
                 cores - g_default, cores);
    else
        snprintf(g_why, sizeof g_why, "%d free core%s", cores, cores == 1 ? "" : "s");
}

void orch_threads_set(int n)
{
    g_threads = n > 0 ? n : 0;
    orch_blas_set_global_threads(orch_threads_get());
}

int orch_threads_get(void)
{
    int n = g_threads;
    if (n <= 0) {
        pthread_once(&g_once, choose_default);
        n = g_default;
    }
    return n < 1 ? 1 : n;
}

const char *orch_threads_why(void)
{
    if (g_threads > 0) {
        const char *env = getenv("ORCH_THREADS");
        return env != NULL && atoi(env) == g_threads ? "ORCH_THREADS" : "--threads";
    }
    pthread_once(&g_once, choose_default);
    return g_why;
}

void orch_threads_describe(char *buf, size_t size)
{
    int n = orch_threads_get();
    snprintf(buf, size, "%d thread%s (%s)", n, n == 1 ? "" : "s", orch_threads_why());
}

/* ------------------------------------------------------------- products */

static atomic_int g_free_now = -1;           /* free cores, least busy sample; -1: not sampled */
static atomic_llong g_sampled_ms = -1000000; /* when, CLOCK_MONOTONIC ms */
static atomic_flag g_sampling = ATOMIC_FLAG_INIT;
static int g_window[ORCH_THREADS_WINDOW]; /* free cores per sample (under g_sampling) */
static int g_window_n;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int orch_threads_product(int nthreads)
{
    if (nthreads <= 1)
        return 1;
    long long t = now_ms();
    if (t - atomic_load(&g_sampled_ms) >= ORCH_THREADS_SAMPLE_MS &&
        !atomic_flag_test_and_set(&g_sampling)) {
        /* one thread samples; the others use the last value */
        int cores = orch_threads_affinity_cores();
        int sample = orch_threads_choose(cores, others_runnable(), 0);
        memmove(g_window + 1, g_window, sizeof g_window - sizeof g_window[0]);
        g_window[0] = sample;
        if (g_window_n < ORCH_THREADS_WINDOW)
            g_window_n++;
        int best = 0;
        for (int i = 0; i < g_window_n; i++)
            if (g_window[i] > best)
                best = g_window[i];
        atomic_store(&g_free_now, best);
        atomic_store(&g_sampled_ms, t);
        atomic_flag_clear(&g_sampling);
    }
    int free_now = atomic_load(&g_free_now);
    if (free_now < 1)
        return nthreads;
    return nthreads < free_now ? nthreads : free_now;
}

int orch_par_threads(int64_t n)
{
    if (n < ORCH_PAR_MIN)
        return 1;
    int nt = orch_threads_get();
    int64_t most = n / (ORCH_PAR_MIN / 2); /* at least 16K elements per thread */
    return most < nt ? (int)most : nt;
}
