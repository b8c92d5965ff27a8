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
 *    `orch sweep` in one process; the same 64 pipelines, expanded by the
 *    same loader (orch_dsl_load_sweep), are then trained by this program in
 *    its own process through orch_train into a store sink, one after the
 *    other, with nothing around them. The overhead per run is the
 *    difference of the two wall times over 64: expansion, recording the
 *    sweep and queueing its runs, handing out, the durable commits at each
 *    run's start and end, and orch's own start-up (spread over 64 runs).
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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/figure.h"
#include "core/sink.h"
#include "core/startup_env.h"
#include "store/store.h"

static int quick;

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

static void die(const char *what, const orch_err *err)
{
    fprintf(stderr, "bench/sweep: %s: %s\n", what, err != NULL ? err->msg : "failed");
    exit(1);
}

/* Removes a store and its -wal / -shm files. */
static void remove_store(const char *db)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
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

static void bench_record_rate(const char *dir)
{
    int n = quick ? 20000 : 200000, rounds = quick ? 1 : 3;
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/record-rate.db", dir);
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
    char dir[] = "/tmp/orch-bench-sweep-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("bench/sweep: mkdtemp");
        return 1;
    }
    bench_record_rate(dir);
    rmdir(dir);
    return 0;
}
