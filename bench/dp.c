/*
 * bench/dp.c - what a data-parallel run gains: one run of a global batch of
 * 4 images on 1 rank against the same run on 2 ranks (each 2 images), 1
 * thread per rank, and how much of a 2-rank step is not computing.
 *
 *   ./build/bench/dp [--quick]     (run from the top of the tree, after make)
 *
 * Towers: `small` (full fine-tuning: every parameter's gradient is summed
 * across the ranks) and `qwen2.5-vl-3b` (seeded weights, no file; surgery
 * with `checkpoint = true`, so a rank holds ~1.2 GB of activations instead
 * of ~14 GB and two ranks fit beside other work), synthetic images at
 * 448x448, global batch 4, AdamW, NaN checks on. Each configuration is a
 * real `orch run FILE --db DB` (1 rank) or `mpirun -np 2 orch run FILE --db
 * DB` (the file says `parallel = { data = 2 }`), ORCH_THREADS=1, a fresh
 * store each time; the step times are the run's own per-step wall_ms read
 * back from the store (rank 0's, which includes the gradient allreduce),
 * median of the steady steps: set-up excluded, and the first steps, whose
 * first touches of activations and optimizer state page-fault (small: 12
 * steps, from step 2; 3B: 4 steps, from step 1).
 *
 *   dp.TOWER.efficiency = t1 / (2 * t2)   (target >= 0.85 on 2 cores)
 *     t1: the step on 1 rank (batch 4), t2: the step on 2 ranks (2 each);
 *     each the fastest of its runs (other processes on the shared cores
 *     only ever slow a run down, and a 2-rank run, which needs both cores
 *     in lockstep, more than a 1-rank run): small runs 1, 2, 2, 1, 1, 2, 2,
 *     1 ranks (4 runs each); 3B one run each, 1 then 2 ranks (its steps
 *     take tens of seconds at 1 thread).
 *   dp.TOWER.allreduce_share (info) = (t2 - th) / t2
 *     th: the step on 1 rank with batch 2 (one rank's share, alone; the
 *     fastest of 2 runs on small, 1 on 3B). What a
 *     2-rank step adds to its share of the work: the allreduce of the
 *     gradient buffer, the global loss / norm / NaN reductions, waiting for
 *     the slower rank, and the two ranks competing for memory bandwidth and
 *     the shared cache. Measured from outside, so it is an upper bound on
 *     the allreduce alone.
 *
 * --quick: small only, one round, fewer steps; figures not claimed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/child.h"
#include "bench/common/figure.h"
#include "core/startup_env.h"
#include "store/store.h"

static int quick;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static char work[64]; /* the temporary directory: files, stores, logs ("" before it exists) */

/* Reports, removes the temporary directory and exits 1. */
static void die(const char *what, const orch_err *err)
{
    fprintf(stderr, "bench/dp: %s: %s\n", what, err != NULL ? err->msg : "failed");
    if (work[0] != '\0') {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "bench/dp: could not remove %s\n", work);
    }
    exit(1);
}

static char orch_path[PATH_MAX + 8]; /* BUILD/orch beside BUILD/bench/dp */

/* Runs argv (bench_child_run: output appended to WORK/log.txt, one thread,
 * the tests' Open MPI settings). Exits 1 when it fails, showing the log's
 * tail. */
static void run_child(char *const argv[])
{
    char log[96];
    snprintf(log, sizeof log, "%s/log.txt", work);
    int status = bench_child_run(argv, work, log, NULL);
    if (status < 0)
        die("fork", NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench/dp: %s %s failed (status %d); its output:\n", argv[0], argv[1],
                status);
        char cmd[160];
        snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        die(argv[0], NULL);
    }
}

/* Removes a store, its -wal / -shm files and its run folders. */
static void remove_store(const char *db)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s-wal' '%s-shm' '%s.runs' '%s.features'", db, db, db,
             db, db);
    if (system(cmd) != 0)
        fprintf(stderr, "bench/dp: could not remove %s\n", db);
}

/* One tower's pipeline, written to WORK/NAME.lua: batch images per step,
 * steps steps; ranks > 1 adds `parallel = { data = ranks }`. */
typedef struct tower {
    const char *tag;      /* figure ids: dp.TAG.* */
    const char *preset;   /* model.preset */
    const char *strategy; /* the strategy, as Lua */
    int checkpoint;       /* gradient checkpointing of frozen blocks */
    int steps;            /* per run */
    int warm;             /* the first warm steps are not timed (page faults of the first
                             touches of activations and optimizer state) */
} tower;

static void write_pipeline(const char *path, const tower *t, int batch, int ranks)
{
    char parallel[64] = "";
    if (ranks > 1)
        snprintf(parallel, sizeof parallel, "    parallel = { data = %d },\n", ranks);
    char text[2048];
    snprintf(text, sizeof text,
             "return {\n"
             "    name = \"dp-%s\",\n"
             "    model = { preset = \"%s\" },\n"
             "    data = { source = \"synthetic\", samples = 16, classes = 4,\n"
             "             image_size = { 448, 448 } },\n"
             "    strategy = %s,\n"
             "    head = { kind = \"classifier\", classes = 4 },\n"
             "    loss = \"cross_entropy\",\n"
             "    optimizer = { kind = \"adamw\", lr = 1e-4 },\n"
             "    schedule = { steps = %d, batch_size = %d, warmup_steps = 0 },\n"
             "%s"
             "    precision = \"fp32\",\n"
             "    checkpoint = %s,\n"
             "    seed = 1,\n"
             "    checks = { nan = true, on_nan = \"abort\" },\n"
             "}\n",
             t->tag, t->preset, t->strategy, t->steps, batch, parallel,
             t->checkpoint ? "true" : "false");
    FILE *fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        die(path, NULL);
    }
}

#define MAX_STEPS 64

/* Trains tower t with a global batch of batch images on ranks ranks (1: no
 * mpirun) into a fresh store and returns the median wall_ms of its steps
 * after the first, as rank 0 recorded them. The run must be finished with
 * all its steps. */
static double step_ms(const tower *t, int batch, int ranks)
{
    char file[128], db[128], np[16];
    snprintf(file, sizeof file, "%s/%s-b%d-r%d.lua", work, t->tag, batch, ranks);
    snprintf(db, sizeof db, "%s/%s.db", work, t->tag);
    snprintf(np, sizeof np, "%d", ranks);
    write_pipeline(file, t, batch, ranks);
    remove_store(db);
    char *one[] = {orch_path, (char *)"run", file, (char *)"--db", db, NULL};
    char *many[] = {(char *)"mpirun",
                    (char *)"-np",
                    np,
                    orch_path,
                    (char *)"run",
                    file,
                    (char *)"--db",
                    db,
                    NULL};
    run_child(ranks == 1 ? one : many);

    orch_store *store = NULL;
    orch_err err;
    char *csv = NULL; /* the query's CSV: header, then one wall_ms per line; owned here */
    size_t csv_len = 0;
    FILE *mem = open_memstream(&csv, &csv_len);
    if (mem == NULL)
        die("open_memstream", NULL);
    if (orch_store_open(db, ORCH_STORE_READONLY, &store, &err) != ORCH_OK ||
        orch_store_query(store,
                         "SELECT s.wall_ms FROM steps s JOIN runs r ON r.id = s.run_id "
                         "WHERE r.status = 'finished' ORDER BY s.step",
                         ORCH_FMT_CSV, mem, &err) != ORCH_OK)
        die(db, &err);
    fclose(mem);
    orch_store_close(store);
    double ms[MAX_STEPS];
    int n = 0;
    for (const char *line = strchr(csv, '\n'); line != NULL && line[1] != '\0' && n < MAX_STEPS;
         line = strchr(line + 1, '\n'))
        ms[n++] = atof(line + 1);
    free(csv);
    if (n != t->steps) {
        fprintf(stderr, "bench/dp: %s, batch %d on %d rank(s): %d of %d steps recorded\n", t->tag,
                batch, ranks, n, t->steps);
        die(db, NULL);
    }
    double steady = median(ms + t->warm, n - t->warm);
    printf("  %-6s batch %d on %d rank(s): %9.1f ms per step (median of steps %d..%d)\n", t->tag,
           batch, ranks, steady, t->warm, n - 1);
    fflush(stdout);
    return steady;
}

#define MAX_RUNS 8

/* The fastest of n values: other processes on the shared cores only ever
 * slow a run down, so the fastest of several is the closest to what the
 * machine itself does; both sides get the same treatment. */
static double fastest(const double *v, int n)
{
    double best = v[0];
    for (int i = 1; i < n; i++)
        best = v[i] < best ? v[i] : best;
    return best;
}

/* rounds x (1, 2, 2, 1 ranks) runs of batch 4, then rounds runs of batch 2
 * on 1 rank; rounds 0 means one run of 1 and one of 2 ranks (then one of
 * batch 2). */
static void bench_tower(const tower *t, int rounds)
{
    const int order[] = {1, 2, 2, 1};
    int n_order = rounds == 0 ? 2 : 4 * rounds;
    double one[MAX_RUNS], two[MAX_RUNS], halves[MAX_RUNS];
    int n1 = 0, n2 = 0, nh = 0;
    for (int i = 0; i < n_order; i++) {
        if (order[i % 4] == 1)
            one[n1++] = step_ms(t, 4, 1);
        else
            two[n2++] = step_ms(t, 4, 2);
    }
    for (int i = 0; i < (rounds > 0 ? rounds : 1); i++)
        halves[nh++] = step_ms(t, 2, 1);
    double t1 = fastest(one, n1), t2 = fastest(two, n2), half = fastest(halves, nh);
    char id[64];
    snprintf(id, sizeof id, "dp.%s.efficiency", t->tag);
    bench_figure(id, t1 / (2 * t2), "x", quick ? "-" : ">=0.85",
                 "%s, global batch 4 at 448x448, 1 thread per rank: step on 1 rank (%.1f ms) over "
                 "2 x the step on mpirun -np 2 (%.1f ms); median of steps %d.. of a run, the "
                 "fastest of %d interleaved run(s) each",
                 t->preset, t1, t2, t->warm, n1);
    snprintf(id, sizeof id, "dp.%s.allreduce_share", t->tag);
    bench_figure(id, t2 > 0 ? (t2 - half) / t2 : 0.0, "of step", "-",
                 "%s: (2-rank step - 1-rank step on one rank's share, batch 2: %.1f ms) over the "
                 "2-rank step: allreduce, global reductions, waiting and memory contention (an "
                 "upper bound on the allreduce)",
                 t->preset, half);
    snprintf(id, sizeof id, "dp.%s.step_1rank_ms", t->tag);
    bench_figure(id, t1, "ms", "-", "%s: step on 1 rank, batch 4, 1 thread", t->preset);
    snprintf(id, sizeof id, "dp.%s.step_2ranks_ms", t->tag);
    bench_figure(id, t2, "ms", "-", "%s: step on mpirun -np 2, global batch 4, 1 thread each",
                 t->preset);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: bench/dp [--quick]\n");
            return 2;
        }
    }
    orch_startup_env(argv);
    bench_begin("bench/dp");
    if (bench_orch_path(argv[0], orch_path, sizeof orch_path) != 0) {
        perror("bench/dp: where is orch");
        return 1;
    }
    snprintf(work, sizeof work, "/tmp/orch-bench-dp-XXXXXX");
    if (mkdtemp(work) == NULL) {
        perror("bench/dp: mkdtemp");
        return 1;
    }
    printf("bench/dp: global batch 4 images at 448x448, 1 rank against mpirun -np 2, 1 thread per "
           "rank%s\n",
           quick ? " (--quick: not claimed)" : "");
    const tower small = {"small", "small", "full {}", 0, quick ? 5 : 12, 2};
    bench_tower(&small, quick ? 0 : 2);
    if (!quick) {
        const tower big = {
            "3b", "qwen2.5-vl-3b", "surgery { replace = \"visual.merger.mlp.2\" }", 1, 4, 1};
        bench_tower(&big, 0);
    }
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0)
        fprintf(stderr, "bench/dp: could not remove %s\n", work);
    return 0;
}
