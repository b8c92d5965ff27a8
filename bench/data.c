/*
 * bench/data.c - what reading real images costs: decode + processor against
 * the raw libjpeg-turbo decode, and the share of a training step spent
 * waiting for its batch.
 *
 *   ./build/bench/data [--quick]
 *
 * The bench writes N 448x448 JPEGs (deterministic pixels: gradients, a
 * pattern and noise, quality 90, 4:2:0, encoded with libjpeg-turbo through
 * orch_image_encode_jpeg) into two class folders of a temporary directory,
 * nothing committed. Then, ROUNDS times, interleaved:
 *   - raw: every JPEG decoded from memory (orch_image_decode: libjpeg-turbo
 *     and the copy into RGB, nothing else), images/s;
 *   - folder: every image through the `images` data source with its cache
 *     off (ORCH_IMAGE_CACHE_MB=0's budget), one orch_dataset_batch per
 *     image: the file read, decode, smart_resize (448 is a multiple of 28:
 *     no resize), normalize and patches of the small preset (patch 14), the
 *     exact call the run loop makes, images/s;
 *   - data.folder.vs_decode = folder / raw (target >= 0.7).
 * Data wait: the run loop assembles a batch between steps, serially, so the
 * time it waits for data is the time of orch_dataset_batch. The small
 * preset (LoRA, batch 2 of 448x448, as bench/step) trains STEPS steps on
 * in-memory data (its median step after the first), and 2 images are
 * batched from the folder with the cache off (median):
 *   data.wait.small = batch / (step + batch) (target < 0.05), the first
 *   epoch's worst case: later epochs hit the cache (docs/data.md).
 * Shards: the same JPEGs as members of one gzip tar shard (KEY.jpg +
 * KEY.cls, written by core/shards_write.h, as `orch shards` does), read
 * through the `shards` data source in stream order (shuffle 0), one
 * orch_dataset_batch per image: gunzip, tar, decode, processor. Each round
 * starts the stream again (the reader re-opens the shard, as at an epoch's
 * start), in the same interleaved rounds:
 *   - data.shard.vs_decode = shard / raw (target >= 0.7).
 * The baseline: the raw rate is orch's own decoder, so it decodes with
 * exactly the settings of the folder and shard paths (libjpeg-turbo's
 * defaults, set explicitly in core/image_jpeg.c because Pillow decodes with
 * them: JDCT_ISLOW, fancy upsampling, JCS_RGB output, SIMD on) and on the
 * same single thread (libjpeg-turbo decodes one image on one thread; the
 * processor does not fork either; ORCH_THREADS only sizes the small
 * preset's step). It is not a handicapped baseline: a direct
 * libjpeg-turbo 2.1.5 decode of the same JPEGs into a reused buffer,
 * reading 1, 2 or 16 rows per jpeg_read_scanlines, ran at the same rate
 * (0.77-0.79 ms against 0.76-0.77 ms per image, same pixels). A faster
 * decode exists only with other pixels (JDCT_IFAST, no fancy upsampling),
 * which is not the work the data path does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/figure.h"
#include "core/dataset.h"
#include "core/image.h"
#include "core/image_source.h"
#include "core/shards.h"
#include "core/shards_write.h"
#include "core/startup_env.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "lua/tower.h"

#include "bench/null_sink.h"

#define MAX_IMAGES 64
#define MAX_ROUNDS 9
#define SIDE       448

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

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void die(const char *what, const orch_err *err)
{
    fprintf(stderr, "bench/data: %s: %s\n", what, err->msg);
    exit(1);
}

/* Image i: smooth colour gradients, a diagonal pattern, splitmix noise. */
static void render(int i, uint8_t *rgb)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            s += 0x9e3779b97f4a7c15ull;
            uint64_t z = (s ^ (s >> 31)) * 0xbf58476d1ce4e5b9ull;
            int noise = (int)(z >> 60) - 8;
            int band = ((x + y + 7 * i) / 24) % 2 ? 40 : 0;
            int v[3] = {x * 255 / SIDE + band, y * 255 / SIDE, (x ^ y) & 0xff};
            for (int c = 0; c < 3; c++) {
                int p = v[c] + noise;
                rgb[((size_t)y * SIDE + x) * 3 + c] = (uint8_t)(p < 0 ? 0 : p > 255 ? 255 : p);
            }
        }
}

/* ---------------------------------------------- the small preset's step */

typedef struct step_times {
    int n;
    double ms[64];
} step_times;

static int t_step(void *c, int64_t id, const orch_step_record *r, orch_err *e)
{
    step_times *t = c;
    (void)id, (void)e;
    if (t->n < 64)
        t->ms[t->n++] = r->wall_ms;
    return ORCH_OK;
}

static double small_step_ms(int steps)
{
    orch_pipeline p;
    memset(&p, 0, sizeof p);
    snprintf(p.path, sizeof p.path, "bench");
    snprintf(p.name, sizeof p.name, "bench");
    snprintf(p.model.preset, sizeof p.model.preset, "small");
    if (dsl_preset("small", &p.model.config) != 0) {
        fprintf(stderr, "bench/data: no preset small\n");
        exit(1);
    }
    p.parallel.data = 1;
    p.strategy.kind = ORCH_STRATEGY_LORA;
    p.strategy.rank = 8;
    p.strategy.alpha = 8;
    p.strategy.n_targets = 2;
    snprintf(p.strategy.targets[0], ORCH_NAME_MAX, "visual.merger.mlp.0");
    snprintf(p.strategy.targets[1], ORCH_NAME_MAX, "visual.merger.mlp.2");
    p.data.source = ORCH_DATA_SYNTHETIC;
    p.data.n_samples = 4;
    p.data.n_classes = 4;
    p.data.image_height = p.data.image_width = SIDE;
    p.head.n_outputs = 4;
    p.optimizer.kind = ORCH_OPT_ADAMW;
    p.optimizer.lr = 1e-4;
    p.optimizer.beta1 = 0.9;
    p.optimizer.beta2 = 0.999;
    p.optimizer.eps = 1e-8;
    p.schedule.steps = steps;
    p.schedule.batch_size = 2;
    p.schedule.grad_accum = 1;
    p.loss_scale.init = 1.0;
    p.loss_scale.growth_interval = 2000;
    p.seed = 1;
    p.checks.nan = 1;
    step_times t = {0};
    orch_sink sink = bench_null_sink(&t);
    sink.step = t_step;
    orch_train_result result;
    orch_err err;
    if (orch_train(&p, NULL, &sink, &result, &err) != ORCH_OK)
        die("small preset run", &err);
    return median(t.ms + 1, t.n - 1);
}

int main(int argc, char **argv)
{
    orch_startup_env(argv);
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    bench_begin("bench/data");
    const char *env = getenv("ORCH_THREADS");
    if (env != NULL && env[0] != '\0')
        orch_threads_set(atoi(env));
    int n = quick ? 16 : 48, rounds = quick ? 3 : 7, steps = quick ? 4 : 8;

    /* the JPEGs, in two class folders */
    char dir[] = "/tmp/orch-bench-data-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("bench/data: mkdtemp");
        return 1;
    }
    uint8_t *bytes[MAX_IMAGES];
    size_t sizes[MAX_IMAGES];
    char paths[MAX_IMAGES][128];
    orch_image img = {.height = SIDE, .width = SIDE};
    img.rgb = malloc((size_t)SIDE * SIDE * 3);
    if (img.rgb == NULL)
        return 1;
    orch_err err;
    size_t total = 0;
    for (int k = 0; k < 2; k++) {
        char sub[160];
        snprintf(sub, sizeof sub, "%s/%c", dir, 'a' + k);
        mkdir(sub, 0755);
    }
    for (int i = 0; i < n; i++) {
        render(i, img.rgb);
        if (orch_image_encode_jpeg(&img, 90, &bytes[i], &sizes[i], &err) != ORCH_OK)
            die("encode", &err);
        snprintf(paths[i], sizeof paths[i], "%s/%c/%03d.jpg", dir, 'a' + i % 2, i);
        FILE *f = fopen(paths[i], "wb");
        if (f == NULL || fwrite(bytes[i], 1, sizes[i], f) != sizes[i]) {
            perror(paths[i]);
            return 1;
        }
        fclose(f);
        total += sizes[i];
    }
    free(img.rgb);

    orch_image_source_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = dir;
    orch_processor_defaults(&cfg.proc); /* Qwen's: patch 14, merge 2, as the small preset */
    cfg.n_classes = 2;
    cfg.cache_bytes = 0; /* every read decodes */
    orch_dataset ds;
    if (orch_image_source_open(&cfg, &ds, &err) != ORCH_OK)
        die("images source", &err);
    printf("bench/data: %d JPEGs of %dx%d (mean %.1f KiB), grid [%lld, %lld, %lld] per image, "
           "%d rounds, %d thread(s)\n",
           n, SIDE, SIDE, (double)total / n / 1024.0, (long long)ds.grid_thw[0],
           (long long)ds.grid_thw[1], (long long)ds.grid_thw[2], rounds, orch_threads_get());

    /* the same JPEGs as one gzip shard */
    char shard[192];
    snprintf(shard, sizeof shard, "%s/train.tar.gz", dir);
    orch_shard_writer *w;
    if (orch_shard_writer_open(shard, n, n, 1, &w, &err) != ORCH_OK)
        die("shard writer", &err);
    for (int i = 0; i < n; i++) {
        char key[16], cls[8];
        snprintf(key, sizeof key, "%06d", i);
        int cls_len = snprintf(cls, sizeof cls, "%d", i % 2);
        orch_shard_member m[2] = {{"jpg", bytes[i], sizes[i]}, {"cls", cls, (size_t)cls_len}};
        if (orch_shard_writer_add(w, key, m, 2, &err) != ORCH_OK)
            die("shard writer", &err);
    }
    if (orch_shard_writer_close(w, 0, NULL, &err) != ORCH_OK)
        die("shard writer", &err);
    const char *shard_paths[1] = {shard};
    orch_shards_config scfg = {.paths = shard_paths,
                               .n_paths = 1,
                               .shuffle = 0,
                               .proc = &cfg.proc,
                               .patch_dim = orch_processor_patch_dim(&cfg.proc),
                               .n_classes = 2};
    orch_dataset sds;
    if (orch_shards_open(&scfg, &sds, &err) != ORCH_OK)
        die("shards source", &err);
    struct stat shard_st;
    stat(shard, &shard_st);

    double raw_s[MAX_ROUNDS], folder_s[MAX_ROUNDS], shard_s[MAX_ROUNDS],
        batch2_s[MAX_ROUNDS * MAX_IMAGES];
    int n_batch2 = 0;
    orch_batch b = {0};
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            orch_image out;
            if (orch_image_decode(bytes[i], sizes[i], paths[i], &out, &err) != ORCH_OK)
                die("decode", &err);
            orch_image_free(&out);
        }
        raw_s[r] = now() - t0;
        t0 = now();
        for (int i = 0; i < n; i++)
            if (orch_dataset_batch(&ds, &i, 1, &b, &err) != ORCH_OK)
                die("batch", &err);
        folder_s[r] = now() - t0;
        t0 = now();
        for (int i = 0; i < n; i++)
            if (orch_dataset_batch(&sds, &i, 1, &b, &err) != ORCH_OK)
                die("shard batch", &err);
        shard_s[r] = now() - t0;
        for (int i = 0; i + 1 < n; i += 2) {
            int two[2] = {i, i + 1};
            double t1 = now();
            if (orch_dataset_batch(&ds, two, 2, &b, &err) != ORCH_OK)
                die("batch", &err);
            batch2_s[n_batch2++] = now() - t1;
        }
    }
    orch_batch_free(&b);
    orch_dataset_free(&ds);
    orch_dataset_free(&sds);
    double shard_rate = n / median(shard_s, rounds);
    double raw = n / median(raw_s, rounds), folder = n / median(folder_s, rounds);
    double batch_ms = median(batch2_s, n_batch2) * 1e3;
    printf("%-28s %10.1f images/s\n", "raw libjpeg-turbo decode", raw);
    printf("%-28s %10.1f images/s\n", "folder: decode + processor", folder);
    bench_figure("data.decode.raw", raw, "images/s", "-",
                 "448x448 JPEGs decoded from memory by libjpeg-turbo (orch_image_decode)");
    bench_figure("data.folder.images_per_s", folder, "images/s", "-",
                 "448x448 JPEGs from a folder through the images source, cache off: read, "
                 "decode, processor (patch 14)");
    bench_figure("data.folder.vs_decode", folder / raw, "x decode", ">=0.7",
                 "images/s from a folder through decode + processor (%.1f) over the raw "
                 "libjpeg-turbo decode rate (%.1f) in the same run",
                 folder, raw);

    printf("%-28s %10.1f images/s (%.1f KiB shard)\n", "gzip shard: + gunzip, tar", shard_rate,
           (double)shard_st.st_size / 1024.0);
    bench_figure("data.shard.images_per_s", shard_rate, "images/s", "-",
                 "the same 448x448 JPEGs from one gzip tar shard through the shards source, "
                 "stream order: gunzip, tar, decode, processor (patch 14)");
    bench_figure("data.shard.vs_decode", shard_rate / raw, "x decode", ">=0.7",
                 "images/s from a gzip shard through gunzip + decode + processor (%.1f) over the "
                 "raw libjpeg-turbo decode rate (%.1f) in the same run",
                 shard_rate, raw);

    double step_ms = small_step_ms(steps);
    double share = batch_ms / (step_ms + batch_ms);
    printf("small preset LoRA step %.1f ms, batch of 2 from the folder %.2f ms: data wait %.2f%%\n",
           step_ms, batch_ms, 100.0 * share);
    bench_figure("data.wait.small", share, "of step", "<0.05",
                 "small preset (LoRA, 2 x 448x448): time assembling a batch from the folder "
                 "uncached (%.2f ms) over that plus the median step (%.1f ms)",
                 batch_ms, step_ms);

    for (int i = 0; i < n; i++) {
        unlink(paths[i]);
        free(bytes[i]);
    }
    unlink(shard);
    for (int k = 0; k < 2; k++) {
        char sub[160];
        snprintf(sub, sizeof sub, "%s/%c", dir, 'a' + k);
        rmdir(sub);
    }
    rmdir(dir);
    return 0;
}
