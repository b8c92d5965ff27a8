/*
 * bench/sweep.c - what running a sweep costs and gains: the speed-up of 2
 * ranks over 1, the coordinator's overhead per run, and how fast rank 0
 * writes the step records workers stream to it.
 *
 *   ./build/bench/sweep [--quick]     (run from the top of the tree, after make)
 *
 * 1. Speed-up (sweep.speedup, target >= 1.8). A sweep of 64 tiny runs
 *    (tiny tower, surgery and LoRA x 4 learning rates x 8 seeds, 10 steps,
 *    batch 2, 1 thread each: ORCH_THREADS=1) is run by `orch sweep` in one
 *    process and by `mpirun -np 2 orch sweep` (the same binary, the same
 *    file, a fresh store each time), alternating 1, 2, 2, 1 ranks so a
 *    change in the machine's load hits both; the figure is the ratio of the
 *    mean wall times (process start to exit, mpirun's start-up included).
 *    Every run must be `finished` in the store, or the bench fails.
 * 2. Coordinator overhead per run (sweep.overhead_ms, target < 5 ms). A
 *    sweep of 64 one-step runs (the work of a run is then a few ms, so what
 *    the coordinator adds is not lost in the noise of long runs) is run by
 *    `orch sweep` in one process; the same 64 pipelines (the sweep's base
 *    file loaded with the point's overrides as --set would give them,
 *    orch_dsl_load) are then trained by this program in its own process
 *    through orch_train into a store sink, one after the other, with
 *    nothing around them. The overhead per run is the
 *    difference of the two wall times over 64: expansion, recording the
 *    sweep and queueing its runs, handing out, the durable commits at each
 *    run's start and end, and orch's own start-up (spread over 64 runs);
 *    median of 5 rounds, each a sweep then the in-process runs (after one
 *    untimed in-process pass). The same difference in CPU time (the orch
 *    process's user + system time from wait4 against this process's own
 *    from getrusage) is printed beside it (sweep.overhead_cpu_ms, no
 *    target): the wall figure moves with other processes' load, the CPU
 *    figure much less, but it misses time spent waiting for fsync.
 * 3. Record rate (sweep.record_rate, target >= 200,000 steps/s). Rank 0
 *    receives a worker's records as the bytes of core/sink.h's encoding and
 *    writes them with orch_record_decode + orch_sink_put into the store
 *    sink (batched transactions). That path is timed in process on 200,000
 *    encoded step records of one run (already in memory, as if received),
 *    decode + put + the final flush, median of 3 runs, each in a fresh
 *    store. MPI's own transfer is not included (it overlaps with rank 0's
 *    writing: workers do not wait for it).
 *
 * --quick: 16 runs, one round, 20,000 records; figures not claimed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/child.h"
#include "bench/common/figure.h"
#include "core/sink.h"
#include "core/startup_env.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/dsl.h"
#include "store/store.h"

static int quick;

#define OVERHEAD_ROUNDS 5

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

static char work[64]; /* the temporary directory: files, stores, logs ("" before it exists) */

/* Reports, removes the temporary directory and exits 1. */
static void die(const char *what, const orch_err *err)
{
    fprintf(stderr, "bench/sweep: %s: %s\n", what, err != NULL ? err->msg : "failed");
    if (work[0] != '\0') {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        if (system(cmd) != 0)
            fprintf(stderr, "bench/sweep: could not remove %s\n", work);
    }
    exit(1);
}

/* Removes a store and its -wal / -shm files. */
static void remove_store(const char *db)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
}

/* ------------------------------------------- running orch and mpirun */

static char orch_path[PATH_MAX + 8]; /* BUILD/orch beside BUILD/bench/sweep */

static double child_cpu; /* CPU seconds (user + system) of the last run_timed's process */

static double cpu_seconds(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + 1e-6 * (double)ru->ru_utime.tv_usec +
           (double)ru->ru_stime.tv_sec + 1e-6 * (double)ru->ru_stime.tv_usec;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return cpu_seconds(&ru);
}

/* Runs argv (bench_child_run: output appended to WORK/log.txt, one thread,
 * the tests' Open MPI settings) and returns its wall time in seconds; its
 * CPU time goes to child_cpu. Exits 1 when it fails, showing the log's
 * tail. */
static double run_timed(char *const argv[])
{
    char log[96];
    snprintf(log, sizeof log, "%s/log.txt", work);
    double t0 = now();
    struct rusage ru;
    int status = bench_child_run(argv, work, log, &ru);
    if (status < 0) {
        perror("bench/sweep: fork");
        die("fork", NULL);
    }
    double seconds = now() - t0;
    child_cpu = cpu_seconds(&ru);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench/sweep: %s %s %s failed (status %d); its output:\n", argv[0], argv[1],
                argv[2], status);
        char cmd[160];
        snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        die(argv[0], NULL);
    }
    return seconds;
}

/* Runs `orch sweep FILE --db DB` on `ranks` ranks (1: no mpirun) and
 * returns the wall time; every one of the sweep's n runs must be finished
 * in DB afterwards. DB is removed first. */
static double run_sweep(const char *file, const char *db, int ranks, int n)
{
    remove_store(db);
    char clear[512];
    snprintf(clear, sizeof clear, "rm -rf '%s.runs' '%s.features'", db, db);
    if (system(clear) != 0)
        fprintf(stderr, "bench/sweep: could not clear %s's run folders\n", db);
    char np[16];
    snprintf(np, sizeof np, "%d", ranks);
    char *one[] = {orch_path, (char *)"sweep", (char *)file, (char *)"--db", (char *)db, NULL};
    char *many[] = {(char *)"mpirun", (char *)"-np",  np,         orch_path, (char *)"sweep",
                    (char *)file,     (char *)"--db", (char *)db, NULL};
    double seconds = run_timed(ranks == 1 ? one : many);

    orch_store *store = NULL;
    orch_err err;
    char *csv = NULL; /* the query's CSV: header, then the count; owned here */
    size_t csv_len = 0;
    FILE *mem = open_memstream(&csv, &csv_len);
    if (mem == NULL)
        die("open_memstream", NULL);
    if (orch_store_open(db, ORCH_STORE_READONLY, &store, &err) != ORCH_OK ||
        orch_store_query(store, "SELECT count(*) FROM runs WHERE status = 'finished'", ORCH_FMT_CSV,
                         mem, &err) != ORCH_OK)
        die(db, &err);
    fclose(mem);
    orch_store_close(store);
    const char *row = strchr(csv, '\n');
    long long finished = row != NULL ? atoll(row + 1) : -1;
    free(csv);
    if (finished != n) {
        fprintf(stderr, "bench/sweep: %s on %d rank(s): %lld of %d runs finished\n", file, ranks,
                finished, n);
        die(db, NULL);
    }
    return seconds;
}

/* A tiny base pipeline: the tiny tower, synthetic data, surgery. */
static void write_base(const char *name, int steps, int warmup)
{
    char path[160], text[2048];
    snprintf(path, sizeof path, "%s/%s.lua", work, name);
    snprintf(text, sizeof text,
             "return {\n"
             "    name = \"%s\",\n"
             "    model = { preset = \"tiny\" },\n"
             "    data = { source = \"synthetic\", samples = 16, classes = 4, image_size = { 56, "
             "56 } },\n"
             "    strategy = surgery { replace = \"visual.merger.mlp.2\" },\n"
             "    head = { kind = \"classifier\", classes = 4 },\n"
             "    loss = \"cross_entropy\",\n"
             "    optimizer = { kind = \"adamw\", lr = 1e-3 },\n"
             "    schedule = { steps = %d, batch_size = 2, warmup_steps = %d },\n"
             "    precision = \"fp32\",\n"
             "    seed = 1,\n"
             "    checks = { nan = true, on_nan = \"abort\" },\n"
             "}\n",
             name, steps, warmup);
    FILE *fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        die(path, NULL);
    }
}

/* The learning rates and seeds of both sweeps: 8 x 8 = 64 runs (quick:
 * 4 x 4). */
static const char *const lrs[] = {"1e-3", "8e-4", "6e-4", "5e-4", "4e-4", "3e-4", "2e-4", "1e-4"};

static int sweep_side(void)
{
    return quick ? 4 : 8;
}

/* A sweep of base over lr x seeds; with lora also LoRA next to the base's
 * surgery (then lr has half as many values, so the count stays 64). */
static void write_sweep(const char *name, const char *base, int with_lora)
{
    char path[160], text[2048];
    int n_lr = with_lora ? sweep_side() / 2 : sweep_side();
    int at = snprintf(text, sizeof text,
                      "local base = require \"%s\"\n"
                      "return sweep {\n"
                      "    name = \"%s\",\n"
                      "    base = base,\n"
                      "    grid = {\n",
                      base, name);
    if (with_lora)
        at += snprintf(text + at, sizeof text - (size_t)at,
                       "        strategy = { surgery { replace = \"visual.merger.mlp.2\" }, "
                       "lora { rank = 4, alpha = 8 } },\n");
    at += snprintf(text + at, sizeof text - (size_t)at, "        [\"optimizer.lr\"] = {");
    for (int i = 0; i < n_lr; i++)
        at += snprintf(text + at, sizeof text - (size_t)at, "%s%s", i ? ", " : " ", lrs[i]);
    at += snprintf(text + at, sizeof text - (size_t)at, " },\n    },\n    seeds = {");
    for (int i = 0; i < sweep_side(); i++)
        at += snprintf(text + at, sizeof text - (size_t)at, "%s%d", i ? ", " : " ", i + 1);
    snprintf(text + at, sizeof text - (size_t)at, " },\n}\n");
    snprintf(path, sizeof path, "%s/%s.lua", work, name);
    FILE *fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        die(path, NULL);
    }
}

/* ------------------------------------------------------ 1. the speed-up */

static void bench_speedup(void)
{
    int n = sweep_side() * sweep_side();
    write_base("tiny10", 10, 2);
    write_sweep("speedup", "tiny10", 1);
    char file[128], db[128];
    snprintf(file, sizeof file, "%s/speedup.lua", work);
    snprintf(db, sizeof db, "%s/speedup.db", work);
    /* 1, 2, 2, 1 ranks: a drift in the machine's load hits both alike */
    const int order[] = {1, 2, 2, 1};
    int rounds = quick ? 2 : 4;
    double sum[3] = {0, 0, 0}, cpu[3] = {0, 0, 0};
    int count[3] = {0, 0, 0};
    for (int r = 0; r < rounds; r++) {
        double t = run_sweep(file, db, order[r], n);
        printf("  %d tiny runs on %d rank(s): %7.2f s, %7.2f CPU-s (%.2f cores busy)\n", n,
               order[r], t, child_cpu, child_cpu / t);
        fflush(stdout);
        sum[order[r]] += t;
        cpu[order[r]] += child_cpu;
        count[order[r]]++;
    }
    double one = sum[1] / count[1], two = sum[2] / count[2];
    /* how many cores the 2-rank job had on average: near 2 on idle cores;
     * below that the machine's other load (or waiting) held it back */
    bench_figure("sweep.cores_2ranks", cpu[2] / sum[2], "cores", "-",
                 "CPU time over wall time of the 2-rank sweeps (mpirun and its ranks, from "
                 "wait4): how much of the 2 cores the job got");
    printf("  speed-up 2 ranks over 1: %.3f (mean of %d each)\n", one / two, count[1]);
    bench_figure("sweep.speedup", one / two, "x", quick ? "-" : ">=1.8",
                 "orch sweep of %d tiny runs (10 steps, 1 thread each): wall time on 1 rank over "
                 "mpirun -np 2 (mean of %d each, interleaved 1,2,2,1; mpirun's start-up included)",
                 n, count[1]);
    bench_figure("sweep.wall_1rank", one, "s", "-", "orch sweep of %d tiny runs on 1 rank", n);
    bench_figure("sweep.wall_2ranks", two, "s", "-", "the same %d runs under mpirun -np 2", n);
}

/* ----------------------------------------- 2. the coordinator's overhead */

/* The same runs as the one-step sweep, trained by this process one after
 * the other into a store (no sweep, no coordinator); returns the wall time. */
static double in_process_cpu; /* CPU seconds of the last in_process */

static double in_process(const char *base_file, const char *db)
{
    remove_store(db);
    orch_store *store = NULL;
    orch_sink sink;
    orch_err err;
    char cache_dir[160], run_dir[160];
    snprintf(cache_dir, sizeof cache_dir, "%s.features", db);
    snprintf(run_dir, sizeof run_dir, "%s.runs", db);
    double t0 = now(), c0 = self_cpu();
    if (orch_store_open(db, ORCH_STORE_READWRITE, &store, &err) != ORCH_OK ||
        orch_store_sink(store, &sink, &err) != ORCH_OK)
        die(db, &err);
    for (int i = 0; i < sweep_side(); i++)
        for (int seed = 1; seed <= sweep_side(); seed++) {
            char set_lr[64], set_seed[64];
            snprintf(set_lr, sizeof set_lr, "optimizer.lr=%s", lrs[i]);
            snprintf(set_seed, sizeof set_seed, "seed=%d", seed);
            const char *sets[] = {set_lr, set_seed};
            orch_pipeline *p = calloc(1, sizeof *p); /* owned here: large, not on the stack */
            if (p == NULL || orch_dsl_load(base_file, sets, 2, p, &err) != ORCH_OK)
                die(base_file, &err);
            orch_train_options options = {.feature_cache = cache_dir, .run_dir = run_dir};
            orch_train_result result;
            if (orch_train(p, &options, &sink, &result, &err) != ORCH_OK ||
                result.status != ORCH_RUN_FINISHED)
                die("in-process run", &err);
            free(p);
        }
    orch_store_close(store);
    in_process_cpu = self_cpu() - c0;
    return now() - t0;
}

static void bench_overhead(void)
{
    int n = sweep_side() * sweep_side();
    write_base("one", 1, 0);
    write_sweep("overhead", "one", 0);
    char file[128], base[128], db[128], db2[128];
    snprintf(file, sizeof file, "%s/overhead.lua", work);
    snprintf(base, sizeof base, "%s/one.lua", work);
    snprintf(db, sizeof db, "%s/overhead.db", work);
    snprintf(db2, sizeof db2, "%s/in-process.db", work);
    orch_threads_set(1); /* as the sweep's ranks */
    /* a first pass in this process pays one-time costs (page faults of
     * the allocator's first arenas, BLIS's first packing buffers, the
     * OpenMP team) that an orch process pays once per sweep, not per
     * run: it is not timed */
    in_process(base, db2);
    int rounds = quick ? 1 : OVERHEAD_ROUNDS;
    double per_run[OVERHEAD_ROUNDS], per_run_cpu[OVERHEAD_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        double swept = run_sweep(file, db, 1, n), swept_cpu = child_cpu;
        double alone = in_process(base, db2);
        per_run[r] = (swept - alone) / n;
        per_run_cpu[r] = (swept_cpu - in_process_cpu) / n;
        printf("  %d one-step runs: orch sweep %.3f s (%.3f s CPU), the same runs in process "
               "%.3f s (%.3f s CPU): %.2f ms per run (%.2f ms CPU)\n",
               n, swept, swept_cpu, alone, in_process_cpu, 1e3 * per_run[r], 1e3 * per_run_cpu[r]);
        fflush(stdout);
    }
    qsort(per_run, (size_t)rounds, sizeof(double), cmp_double);
    qsort(per_run_cpu, (size_t)rounds, sizeof(double), cmp_double);
    bench_figure("sweep.overhead_ms", 1e3 * per_run[rounds / 2], "ms", quick ? "-" : "<5",
                 "coordinator overhead per run: (wall of orch sweep of %d one-step runs on 1 "
                 "rank - the same runs trained in one process without a sweep) / %d, orch's "
                 "start-up included (median of %d interleaved rounds)",
                 n, n, rounds);
    bench_figure("sweep.overhead_cpu_ms", 1e3 * per_run_cpu[rounds / 2], "ms", "-",
                 "the same difference in CPU time (user + system of the orch process against "
                 "this process's own), which other processes' load does not inflate (median of "
                 "%d)",
                 rounds);
}

/* ------------------------------------------------- 3. the record rate */

/* One timed pass: n encoded step records of one run, decoded and put into
 * a fresh store's sink; returns the records per second. */
static double record_rate_once(const char *db, int n)
{
    orch_store *store = NULL;
    orch_sink sink;
    orch_err err;
    remove_store(db);
    if (orch_store_open(db, ORCH_STORE_READWRITE, &store, &err) != ORCH_OK ||
        orch_store_sink(store, &sink, &err) != ORCH_OK)
        die(db, &err);
    char host[64];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    orch_run_info info = {.pipeline = "bench-sweep",
                          .name = "bench-sweep/record-rate",
                          .strategy = "surgery",
                          .config_json = "{}",
                          .config_hash = "0000000000000000000000000000000000000000000000000000000"
                                         "000000000",
                          .seed = 1,
                          .host = host,
                          .pid = (int64_t)getpid(),
                          .orch_version = "bench",
                          .kernels = "bench",
                          .kernels_why = "bench",
                          .cpu = "bench",
                          .threads = 1};
    int64_t run_id = 0;
    if (sink.begin_run(sink.ctx, &info, &run_id, &err) != ORCH_OK)
        die("begin_run", &err);

    /* the bytes a worker would have sent, back to back, each record
     * preceded by its length (as rank 0 finds them in a received batch) */
    orch_record rec = {.kind = ORCH_REC_STEP, .run_id = run_id};
    size_t one = orch_record_encoded_size(&rec);
    size_t cap = (size_t)n * (one + sizeof(uint32_t));
    unsigned char *bytes = malloc(cap); /* owned here */
    if (bytes == NULL)
        die("out of memory", NULL);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        rec.as.step = (orch_step_record){.step = i,
                                         .loss = 1.5 - 1e-6 * i,
                                         .grad_norm = 0.5 + 1e-7 * i,
                                         .lr = 1e-3,
                                         .wall_ms = 40.0 + (i % 7)};
        size_t len = 0;
        if (orch_record_encode(&rec, bytes + at + sizeof(uint32_t), cap - at - sizeof(uint32_t),
                               &len, &err) != ORCH_OK)
            die("encode", &err);
        uint32_t len32 = (uint32_t)len;
        memcpy(bytes + at, &len32, sizeof len32);
        at += sizeof len32 + len;
    }

    double t0 = now();
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        uint32_t len32;
        memcpy(&len32, bytes + pos, sizeof len32);
        pos += sizeof len32;
        orch_record got;
        if (orch_record_decode(bytes + pos, len32, &got, &err) != ORCH_OK ||
            orch_sink_put(&sink, &got, NULL, &err) != ORCH_OK)
            die("decode + put", &err);
        pos += len32;
    }
    if (sink.flush(sink.ctx, &err) != ORCH_OK)
        die("flush", &err);
    double seconds = now() - t0;

    orch_run_end end = {.status = ORCH_RUN_FINISHED, .error = NULL};
    if (sink.end_run(sink.ctx, run_id, &end, &err) != ORCH_OK)
        die("end_run", &err);
    free(bytes);
    orch_store_close(store);
    remove_store(db);
    return (double)n / seconds;
}

static void bench_record_rate(void)
{
    int n = quick ? 20000 : 200000, rounds = quick ? 1 : 3;
    char db[128];
    snprintf(db, sizeof db, "%s/record-rate.db", work);
    double rate[3];
    for (int r = 0; r < rounds; r++)
        rate[r] = record_rate_once(db, n);
    qsort(rate, (size_t)rounds, sizeof(double), cmp_double);
    double median = rate[rounds / 2];
    printf("  record rate      %10.0f steps/s  (decode + orch_sink_put into the store sink, "
           "%d step records, median of %d)\n",
           median, n, rounds);
    bench_figure("sweep.record_rate", median, "steps/s", quick ? "-" : ">=200000",
                 "rank 0's write path for streamed step records: orch_record_decode + "
                 "orch_sink_put into the SQLite store sink, flush included (%d records of one run, "
                 "in process, median of %d)",
                 n, rounds);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: bench/sweep [--quick]\n");
            return 2;
        }
    }
    orch_startup_env(argv);
    bench_begin("bench/sweep");
    if (bench_orch_path(argv[0], orch_path, sizeof orch_path) != 0) {
        perror("bench/sweep: where is orch");
        return 1;
    }
    snprintf(work, sizeof work, "/tmp/orch-bench-sweep-XXXXXX");
    if (mkdtemp(work) == NULL) {
        perror("bench/sweep: mkdtemp");
        return 1;
    }
    /* named as the command line gave it (a path relative to the tree), so
     * the output names no directory outside it */
    char shown[PATH_MAX];
    snprintf(shown, sizeof shown, "%s", argv[0]);
    char *slash = strrchr(shown, '/');
    if (slash != NULL) {
        *slash = '\0';
        slash = strrchr(shown, '/');
    }
    if (slash != NULL)
        snprintf(slash + 1, sizeof shown - (size_t)(slash + 1 - shown), "orch");
    printf("bench/sweep: %s, 1 thread per run%s\n", slash != NULL ? shown : "BUILD/orch",
           quick ? " (--quick: not claimed)" : "");
    bench_speedup();
    bench_overhead();
    bench_record_rate();
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0)
        fprintf(stderr, "bench/sweep: could not remove %s\n", work);
    return 0;
}
