/* test_shards.c - the tar-shard data source (core/shards*.c) and the
 * shard writer behind `orch shards`, through the library:
 *   - pattern expansion: brace ranges with zero padding, lists, globs,
 *     sorted and de-duplicated; a missing shard or an empty glob is one
 *     line naming it (exit 2, from orch_data_check, i.e. at plan time);
 *   - the shuffle buffer's order: a permutation, a pure function of
 *     (seed, epoch), another order for another epoch, no image emitted
 *     more than `shuffle` positions before its stream position, and the
 *     stream order with shuffle = 0;
 *   - the same images as an .npy set, as tar shards of RGB .npy members
 *     (plain and gzip) and as shards written from an .npy set give
 *     bit-identical losses for 10 steps; and the shapes JPEGs as a folder,
 *     as shards of .jpg members (plain and gzip) and as the .npy set of
 *     scripts/make_shard_fixtures.py (Pillow + transformers' formulas);
 *   - hostile shards: a sample without a label, a label out of range, a
 *     member that is not an image or a label, a corrupt tar header, a
 *     truncated gzip, an empty shard: one line naming shard and member;
 *   - the writer: the same input gives the same bytes, zstd and xz read
 *     back, an output name without a placeholder for several shards and
 *     existing outputs (without --force) are refused;
 *   - read_patches out of stream order (re-opening, kept members) gives the
 *     rows of the in-order pass; in the shuffle buffer's order each shard
 *     is opened once per epoch and at most `shuffle` members are kept;
 *   - a corrupt JPEG body fails the run with one line;
 *   - the sweep's frozen-forward key tells shard sets apart;
 *   - seeded byte damage reads or fails with one line, never crashes.
 * Test shards are made here with orch's own writer (core/shards_write.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cli.h"
#include "core/data_source.h"
#include "core/dataset.h"
#include "core/processor.h"
#include "core/shards.h"
#include "core/shards_expand.h"
#include "core/shards_order.h"
#include "core/shards_write.h"
#include "core/tower_key.h"
#include "core/train.h"
#include "store/npy.h"
#include "tests/testutil.h"
#include "tests/testutil_sink.h"

#define N_IMAGES 20
#define STEPS    10
#define BATCH    2 /* STEPS x BATCH = N_IMAGES: one epoch */
#define CLASSES  3

/* ------------------------------------------------------------ helpers */

/* The processor the data source uses for the tiny tower (core/data_source.c
 * file_processor: Qwen's constants, P 2, tp 2, m 2) with the bounds the
 * test pipelines set (processor.min_pixels/max_pixels: 4 and 16384
 * factor^2 areas, so the test images need no resize). */
static void tiny_processor(orch_processor_config *proc)
{
    orch_processor_defaults(proc);
    proc->patch_size = 2;
    proc->temporal_patch_size = 2;
    proc->merge_size = 2;
    proc->min_pixels = 4 * 16;
    proc->max_pixels = 16384 * 16;
}

/* Image i: its size (multiples of P*m = 4, so smart_resize keeps it and no
 * resampling happens) and deterministic pixels. */
static void image_size(int i, int *h, int *w)
{
    static const int sizes[4][2] = {{16, 16}, {8, 12}, {12, 8}, {20, 16}};
    *h = sizes[i % 4][0];
    *w = sizes[i % 4][1];
}

static uint8_t *image_pixels(int i, int h, int w)
{
    uint8_t *rgb = malloc((size_t)h * w * 3);
    assert_non_null(rgb);
    uint64_t s = 0x1234567ull + (uint64_t)i * 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < h * w * 3; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        rgb[k] = (uint8_t)(s >> 56);
    }
    return rgb;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* The bytes of a binary file (read_whole_file stops at a NUL); size set. */
static char *read_bytes(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

/* The .npy set of images order[0..n) (processed pixel_values, grids,
 * labels i % CLASSES) in dir. */
static void write_npy_set(const char *dir, const int *order, int n)
{
    orch_processor_config proc;
    tiny_processor(&proc);
    int patch_dim = orch_processor_patch_dim(&proc);
    float *pv = NULL;
    int64_t rows = 0, grid[N_IMAGES * 3], labels[N_IMAGES];
    for (int k = 0; k < n; k++) {
        int i = order[k], h, w;
        image_size(i, &h, &w);
        uint8_t *rgb = image_pixels(i, h, w);
        int64_t g[3];
        orch_err err;
        assert_int_equal(orch_processor_plan(&proc, h, w, g, &err), ORCH_OK);
        assert_int_equal(g[1] * 2, h); /* no resize: rows are the image's own patches */
        int64_t r = g[0] * g[1] * g[2];
        pv = realloc(pv, (size_t)(rows + r) * patch_dim * sizeof *pv);
        assert_non_null(pv);
        assert_int_equal(orch_processor_run(&proc, rgb, h, w, pv + rows * patch_dim, g, &err),
                         ORCH_OK);
        memcpy(&grid[3 * k], g, sizeof g);
        labels[k] = i % CLASSES;
        rows += r;
        free(rgb);
    }
    char path[4096];
    orch_err err;
    int64_t pv_shape[2] = {rows, patch_dim}, grid_shape[2] = {n, 3}, label_shape[1] = {n};
    snprintf(path, sizeof path, "%s/pixel_values.npy", dir);
    assert_int_equal(orch_npy_save_f32(path, pv, pv_shape, 2, &err), ORCH_OK);
    snprintf(path, sizeof path, "%s/image_grid_thw.npy", dir);
    assert_int_equal(orch_npy_save_i64(path, grid, grid_shape, 2, &err), ORCH_OK);
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    assert_int_equal(orch_npy_save_i64(path, labels, label_shape, 1, &err), ORCH_OK);
    free(pv);
}

/* Shards of images order[0..n) as KEY.npy (RGB uint8) + KEY.cls, per_shard
 * each, named by pattern. */
static void write_rgb_shards(const char *pattern, const int *order, int n, int per_shard)
{
    orch_shard_writer *w;
    orch_err err;
    int rc = orch_shard_writer_open(pattern, per_shard, n, 1, &w, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    for (int k = 0; k < n; k++) {
        int i = order[k], h, w_;
        image_size(i, &h, &w_);
        uint8_t *rgb = image_pixels(i, h, w_);
        int64_t shape[3] = {h, w_, 3};
        void *npy;
        size_t len;
        assert_int_equal(orch_npy_encode_u8(rgb, shape, 3, &npy, &len, &err), ORCH_OK);
        char key[16], cls[16];
        snprintf(key, sizeof key, "%06d", k);
        int cls_len = snprintf(cls, sizeof cls, "%d\n", i % CLASSES);
        orch_shard_member m[2] = {{"npy", npy, len}, {"cls", cls, (size_t)cls_len}};
        assert_int_equal(orch_shard_writer_add(w, key, m, 2, &err), ORCH_OK);
        free(npy);
        free(rgb);
    }
    int n_shards;
    assert_int_equal(orch_shard_writer_close(w, 0, &n_shards, &err), ORCH_OK);
    assert_int_equal(n_shards, (n + per_shard - 1) / per_shard);
}

/* A tiny surgery pipeline over the shards matching pattern. */
static void shards_pipeline(orch_pipeline *p, const char *pattern, int shuffle)
{
    tiny_pipeline(p, ORCH_STRATEGY_SURGERY);
    p->data.source = ORCH_DATA_SHARDS;
    p->data.n_shards = 1;
    size_t n = strlen(pattern);
    assert_true(n < sizeof p->data.shards[0]);
    memcpy(p->data.shards[0], pattern, n + 1);
    p->data.shuffle = shuffle;
    /* bounds that keep the test images' sizes (tiny_processor) */
    p->processor.min_pixels = 4 * 16;
    p->processor.max_pixels = 16384 * 16;
    p->head.n_outputs = CLASSES;
    p->schedule.steps = STEPS;
    p->schedule.batch_size = BATCH;
}

/* `orch shards` with args (NULL-terminated, after the command name). */
static int cmd_shards(const char *const *args, orch_err *err)
{
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"shards";
    for (int i = 0; args[i] != NULL && argc < 15; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    orch_cli_globals g = {0};
    orch_err_clear(err);
    return orch_cmd_shards(argc, argv, &g, err);
}

/* ---------------------------------------------------------- expansion */

static void assert_brace(const char *pattern, int n, const char *const *want)
{
    char **names;
    int got;
    orch_err err;
    assert_int_equal(orch_shards_brace(pattern, &names, &got, &err), ORCH_OK);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(names[i], want[i]);
    orch_shards_paths_free(names, got);
}

static void test_brace(void **state)
{
    (void)state;
    assert_brace("t-{000..003}.tar", 4,
                 (const char *const[]){"t-000.tar", "t-001.tar", "t-002.tar", "t-003.tar"});
    assert_brace("t-{8..10}.tar", 3, (const char *const[]){"t-8.tar", "t-9.tar", "t-10.tar"});
    assert_brace("t-{2..0}", 3, (const char *const[]){"t-2", "t-1", "t-0"});
    assert_brace("{a,b}-{0..1}", 4, (const char *const[]){"a-0", "a-1", "b-0", "b-1"});
    assert_brace("x{a,{b,c}}", 3, (const char *const[]){"xa", "xb", "xc"});
    assert_brace("lit{x}.tar", 1, (const char *const[]){"lit{x}.tar"});
    char **names;
    int n;
    orch_err err;
    assert_int_equal(orch_shards_brace("t-{0..99999999}.tar", &names, &n, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "more than"));
}

static void test_expand_files(void **state)
{
    (void)state;
    char dir[200], path[1200], pat[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/s-%03d.tar", dir, i);
        assert_int_equal(write_text_file(path, "x"), 0);
    }
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/s-{001..002}.tar", dir);
    snprintf(p2, sizeof p2, "%s/s-*.tar", dir);
    const char *pats[] = {p1, p2};
    char **paths;
    int n;
    orch_err err;
    assert_int_equal(orch_shards_expand(pats, 2, &paths, &n, &err), ORCH_OK);
    assert_int_equal(n, 3); /* sorted, the two patterns' overlap once */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/s-%03d.tar", dir, i);
        assert_string_equal(paths[i], path);
    }
    orch_shards_paths_free(paths, n);

    /* a missing shard of a range, and a glob without a match, at plan time */
    orch_pipeline p;
    snprintf(pat, sizeof pat, "%s/s-{000..003}.tar", dir);
    shards_pipeline(&p, pat, 0);
    int rc = orch_data_check(&p, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    snprintf(path, sizeof path, "%s/s-003.tar: no such shard (from %s)", dir, pat);
    assert_string_equal(err.msg, path);
    snprintf(pat, sizeof pat, "%s/none-*.tar", dir);
    shards_pipeline(&p, pat, 0);
    rc = orch_data_check(&p, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    snprintf(path, sizeof path, "%s: matches no shard", pat);
    assert_string_equal(err.msg, path);
    remove_tree(dir);
}

/* -------------------------------------------------------------- order */

static void test_order(void **state)
{
    (void)state;
    enum { N = 100 };
    int first[4] = {0, 30, 70, N}; /* 3 shards */
    int scratch[3 + N], a[N], b[N], c[N], seen[N];
    orch_shards_order(first, 3, 10, 42, 0, scratch, a);
    orch_shards_order(first, 3, 10, 42, 0, scratch, b);
    orch_shards_order(first, 3, 10, 42, 1, scratch, c);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    memset(seen, 0, sizeof seen);
    int moved = 0;
    for (int k = 0; k < N; k++) {
        assert_in_range(a[k], 0, N - 1);
        seen[a[k]]++;
        moved += a[k] != k;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > N / 2);

    /* the buffer bound: on one shard the stream position is the index, and
     * an image leaves the buffer at most `shuffle` places before it */
    int one[2] = {0, N};
    for (int shuffle = 1; shuffle <= 32; shuffle *= 2)
        for (int64_t epoch = 0; epoch < 4; epoch++) {
            orch_shards_order(one, 1, shuffle, 7, epoch, scratch, a);
            for (int k = 0; k < N; k++)
                assert_true(a[k] <= k + shuffle);
        }
    /* shuffle 0: the stream order, shards as expanded */
    orch_shards_order(first, 3, 0, 42, 5, scratch, a);
    for (int k = 0; k < N; k++)
        assert_int_equal(a[k], k);
}

/* The reader in the shuffle buffer's order: each shard opened once per
 * epoch (a stream, no re-reading), never more than `shuffle` members kept,
 * and the rows of an in-order read. */
static void test_stream_in_shuffled_order(void **state)
{
    (void)state;
    char dir[200], pat[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    int order[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++)
        order[i] = i;
    snprintf(pat, sizeof pat, "%s/o-%%d.tar.gz", dir);
    write_rgb_shards(pat, order, N_IMAGES, 7); /* 3 shards: 7, 7, 6 */
    snprintf(pat, sizeof pat, "%s/o-*.tar.gz", dir);
    enum { SHUFFLE = 5 };
    orch_pipeline p;
    shards_pipeline(&p, pat, SHUFFLE);
    orch_dataset ds, plain;
    orch_err err;
    assert_int_equal(orch_data_open(&p, &ds, &err), ORCH_OK);
    assert_int_equal(orch_data_open(&p, &plain, &err), ORCH_OK);
    orch_batch one = {0}, ref = {0};
    for (int64_t epoch = 0; epoch < 3; epoch++) {
        int perm[N_IMAGES];
        orch_dataset_order(&ds, 99, epoch, perm);
        int moved = 0;
        for (int k = 0; k < N_IMAGES; k++) {
            moved += perm[k] != k;
            assert_int_equal(orch_dataset_batch(&ds, &perm[k], 1, &one, &err), ORCH_OK);
            int held;
            int64_t opens;
            orch_shards_reader_stats(&ds, &held, &opens);
            assert_true(held <= SHUFFLE);
            /* the same rows as reading that image alone from a fresh stream */
            assert_int_equal(orch_dataset_batch(&plain, &perm[k], 1, &ref, &err), ORCH_OK);
            assert_int_equal(one.n_patches, ref.n_patches);
            assert_memory_equal(one.pixel_values, ref.pixel_values,
                                (size_t)one.n_patches * one.patch_dim * sizeof(float));
            assert_int_equal(one.class_labels[0], perm[k] % CLASSES);
        }
        assert_true(moved > 0);
        int held;
        int64_t opens;
        orch_shards_reader_stats(&ds, &held, &opens);
        assert_int_equal(held, 0); /* every kept member was asked for */
        assert_int_equal(opens, 3 * (epoch + 1));
    }
    orch_batch_free(&one);
    orch_batch_free(&ref);
    orch_dataset_free(&ds);
    orch_dataset_free(&plain);
    remove_tree(dir);
}

/* Detach runs of a sweep share one frozen forward only over the same
 * shards and processor bounds (core/tower_key.h); the shuffle buffer does
 * not change what the tower sees. */
static void test_tower_key(void **state)
{
    (void)state;
    orch_pipeline *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    shards_pipeline(a, "data/train-{000..003}.tar", 100);
    a->strategy.kind = ORCH_STRATEGY_DETACH;
    memcpy(b, a, sizeof *b);
    b->data.shuffle = 0;
    assert_true(orch_tower_forward_key(a) == orch_tower_forward_key(b));
    snprintf(b->data.shards[0], sizeof b->data.shards[0], "data/val-{000..003}.tar");
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    memcpy(b, a, sizeof *b);
    b->data.n_shards = 2;
    snprintf(b->data.shards[1], sizeof b->data.shards[1], "more/*.tar");
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    memcpy(b, a, sizeof *b);
    b->processor.max_pixels = 4096;
    assert_true(orch_tower_forward_key(a) != orch_tower_forward_key(b));
    free(a);
    free(b);
}

/* ---------------------------------------------------- bit identity */

static void run_losses(const orch_pipeline *p, double *loss)
{
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    orch_train_result result;
    orch_err err;
    orch_err_clear(&err);
    int rc = orch_train(p, NULL, &sink, &result, &err);
    if (rc != ORCH_OK)
        fail_msg("orch_train: %s", err.msg);
    assert_int_equal(m->n_steps, STEPS);
    for (int s = 0; s < STEPS; s++) {
        assert_true(isfinite(m->loss[s]));
        loss[s] = m->loss[s];
    }
    free(m);
}

static void test_bit_identical(void **state)
{
    (void)state;
    char dir[200], path[1200], pat[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    /* shuffle off everywhere: every run sees the images in their order */
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    int identity[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++)
        identity[i] = i;

    /* A: the .npy set */
    char npy_dir[256];
    snprintf(npy_dir, sizeof npy_dir, "%s/npy", dir);
    assert_int_equal(mkdir(npy_dir, 0755), 0);
    write_npy_set(npy_dir, identity, N_IMAGES);
    p.data.source = ORCH_DATA_NPY;
    p.data.shuffle = 0; /* the set's order */
    snprintf(p.data.pixel_values, sizeof p.data.pixel_values, "%s/pixel_values.npy", npy_dir);
    snprintf(p.data.grid_thw_path, sizeof p.data.grid_thw_path, "%s/image_grid_thw.npy", npy_dir);
    snprintf(p.data.labels, sizeof p.data.labels, "%s/labels.npy", npy_dir);
    p.head.n_outputs = CLASSES;
    p.schedule.steps = STEPS;
    p.schedule.batch_size = BATCH;
    double want[STEPS], got[STEPS];
    run_losses(&p, want);
    assert_true(want[0] != want[STEPS - 1]); /* the losses move: the comparison means something */

    /* B, C: RGB .npy members, 6 per shard, plain and gzip */
    static const char *const suffixes[] = {"tar", "tar.gz"};
    for (int s = 0; s < 2; s++) {
        snprintf(pat, sizeof pat, "%s/rgb-%%02d.%s", dir, suffixes[s]);
        write_rgb_shards(pat, identity, N_IMAGES, 6);
        snprintf(pat, sizeof pat, "%s/rgb-{00..03}.%s", dir, suffixes[s]);
        shards_pipeline(&p, pat, 0);
        orch_err err;
        assert_int_equal(orch_data_check(&p, &err), ORCH_OK);
        run_losses(&p, got);
        for (int k = 0; k < STEPS; k++)
            if (memcmp(&got[k], &want[k], sizeof got[k]) != 0)
                fail_msg("%s step %d: loss %.17g, .npy set %.17g", suffixes[s], k, got[k], want[k]);
    }

    /* D: `orch shards` from the .npy set (.pixel_values.npy members, the
     * processed rows as they are) */
    const char *npy2 = npy_dir;
    snprintf(pat, sizeof pat, "%s/pv-%%03d.tar.gz", dir);
    orch_err err;
    int rc = cmd_shards((const char *const[]){npy2, "-o", pat, "--per-shard", "7", NULL}, &err);
    if (rc != ORCH_OK)
        fail_msg("orch shards: %s", err.msg);
    snprintf(path, sizeof path, "%s/pv-002.tar.gz", dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(pat, sizeof pat, "%s/pv-*.tar.gz", dir);
    shards_pipeline(&p, pat, 0);
    run_losses(&p, got);
    assert_memory_equal(got, want, sizeof got);
    remove_tree(dir);
}

/* The same 48 JPEGs (pipelines/data/shapes/train) as a folder, as tar
 * shards of .jpg members (plain and gzip), and as the .npy set the Hugging
 * Face processor's formulas make of Pillow's pixels
 * (scripts/make_shard_fixtures.py): bit-identical losses for 10 steps, with
 * shuffle off everywhere (the images in ImageFolder order). */
static void test_folder_identity(void **state)
{
    (void)state;
    enum { N = 48, F_STEPS = 10, F_BATCH = 4 };
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_SURGERY);
    p.data.shuffle = 0;
    p.processor.min_pixels = 16; /* 56 x 56 -> 8 x 8, as the fixture */
    p.processor.max_pixels = 64;
    p.head.n_outputs = CLASSES;
    p.schedule.steps = F_STEPS;
    p.schedule.batch_size = F_BATCH;
    /* A: the .npy set */
    p.data.source = ORCH_DATA_NPY;
    snprintf(p.data.pixel_values, sizeof p.data.pixel_values, "tests/data/shards/shapes_pv.npy");
    snprintf(p.data.grid_thw_path, sizeof p.data.grid_thw_path,
             "tests/data/shards/shapes_grid.npy");
    snprintf(p.data.labels, sizeof p.data.labels, "tests/data/shards/shapes_labels.npy");
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    orch_train_result result;
    orch_err err;
    if (orch_train(&p, NULL, &sink, &result, &err) != ORCH_OK)
        fail_msg("npy: %s", err.msg);
    assert_int_equal(m->n_steps, F_STEPS);
    double want[F_STEPS];
    memcpy(want, m->loss, sizeof want);
    free(m);

    /* B: the folder */
    p.data.source = ORCH_DATA_IMAGES;
    snprintf(p.data.dir, sizeof p.data.dir, "pipelines/data/shapes/train");
    p.data.labels[0] = '\0';
    orch_dataset folder;
    if (orch_data_open(&p, &folder, &err) != ORCH_OK)
        fail_msg("images: %s", err.msg);
    assert_int_equal(folder.n_images, N);
    m = memory_sink_new();
    sink = memory_sink_of(m);
    if (orch_train(&p, NULL, &sink, &result, &err) != ORCH_OK)
        fail_msg("images: %s", err.msg);
    for (int k = 0; k < F_STEPS; k++)
        if (memcmp(&m->loss[k], &want[k], sizeof want[k]) != 0)
            fail_msg("folder step %d: loss %.17g, .npy set %.17g", k, m->loss[k], want[k]);
    free(m);

    /* C, D: shards of the JPEG files, in order */
    char dir[200], pat[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    static const char *const suffixes[] = {"tar", "tar.gz"};
    for (int s = 0; s < 2; s++) {
        snprintf(pat, sizeof pat, "%s/jpg-%%d.%s", dir, suffixes[s]);
        orch_shard_writer *w;
        assert_int_equal(orch_shard_writer_open(pat, 10, N, 1, &w, &err), ORCH_OK);
        for (int k = 0; k < N; k++) {
            int i = k;
            size_t len;
            char *bytes = read_bytes(folder.files[i].path, &len);
            char key[16], cls[16];
            snprintf(key, sizeof key, "%06d", k);
            int cls_len = snprintf(cls, sizeof cls, "%lld", (long long)folder.class_labels[i]);
            orch_shard_member mem[2] = {{"jpg", bytes, len}, {"cls", cls, (size_t)cls_len}};
            assert_int_equal(orch_shard_writer_add(w, key, mem, 2, &err), ORCH_OK);
            free(bytes);
        }
        assert_int_equal(orch_shard_writer_close(w, 0, NULL, &err), ORCH_OK);
        orch_pipeline q = p;
        q.data.source = ORCH_DATA_SHARDS;
        q.data.shuffle = 0;
        q.data.n_shards = 1;
        snprintf(pat, sizeof pat, "%s/jpg-{0..4}.%s", dir, suffixes[s]);
        memcpy(q.data.shards[0], pat, strlen(pat) + 1);
        m = memory_sink_new();
        sink = memory_sink_of(m);
        if (orch_train(&q, NULL, &sink, &result, &err) != ORCH_OK)
            fail_msg("shards: %s", err.msg);
        for (int k = 0; k < F_STEPS; k++)
            if (memcmp(&m->loss[k], &want[k], sizeof want[k]) != 0)
                fail_msg("%s step %d: loss %.17g, .npy set %.17g", suffixes[s], k, m->loss[k],
                         want[k]);
        free(m);
    }
    orch_dataset_free(&folder);
    remove_tree(dir);
}

/* ------------------------------------------------------------ hostile */

/* One shard at path with the samples given as (key, ext, text) triples. */
static void write_members(const char *path, const char *const (*m)[3], int n)
{
    orch_shard_writer *w;
    orch_err err;
    assert_int_equal(orch_shard_writer_open(path, 1000, 1, 1, &w, &err), ORCH_OK);
    for (int i = 0; i < n; i++) {
        void *npy = NULL;
        size_t len;
        orch_shard_member member = {m[i][1], m[i][2], strlen(m[i][2])};
        if (strcmp(m[i][2], "IMAGE") == 0) { /* a valid 8 x 8 RGB .npy */
            uint8_t *rgb = image_pixels(i, 8, 8);
            int64_t shape[3] = {8, 8, 3};
            assert_int_equal(orch_npy_encode_u8(rgb, shape, 3, &npy, &len, &err), ORCH_OK);
            free(rgb);
            member.data = npy;
            member.len = len;
        }
        assert_int_equal(orch_shard_writer_add(w, m[i][0], &member, 1, &err), ORCH_OK);
        free(npy);
    }
    assert_int_equal(orch_shard_writer_close(w, 0, NULL, &err), ORCH_OK);
}

/* orch_data_check of the one shard at path: exit 2 and exactly want
 * (with "SHARD" replaced by path). */
static void assert_refused(const char *path, const char *want)
{
    orch_pipeline p;
    shards_pipeline(&p, path, 0);
    orch_err err;
    orch_err_clear(&err);
    int rc = orch_data_check(&p, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    char expect[1500];
    const char *at = strstr(want, "SHARD");
    snprintf(expect, sizeof expect, "%.*s%s%s", (int)(at - want), want, path, at + 5);
    assert_string_equal(err.msg, expect);
    assert_null(strchr(err.msg, '\n'));
}

static void test_hostile(void **state)
{
    (void)state;
    char dir[200], path[1024];
    assert_non_null(make_temp_dir(dir, sizeof dir));

    snprintf(path, sizeof path, "%s/nolabel.tar", dir);
    write_members(path,
                  (const char *const[][3]){{"a", "npy", "IMAGE"},
                                           {"a", "cls", "1"},
                                           {"b", "npy", "IMAGE"},
                                           {"c", "npy", "IMAGE"},
                                           {"c", "cls", "0"}},
                  5);
    assert_refused(path, "SHARD: b.npy: no label (b.cls or b.json)");

    snprintf(path, sizeof path, "%s/range.tar", dir);
    write_members(path, (const char *const[][3]){{"a", "npy", "IMAGE"}, {"a", "cls", "7\n"}}, 2);
    assert_refused(path, "SHARD: a.cls: label 7 is outside [0, 3)");

    snprintf(path, sizeof path, "%s/json.tar", dir);
    write_members(
        path, (const char *const[][3]){{"a", "npy", "IMAGE"}, {"a", "json", "{\"label\": -1}"}}, 2);
    assert_refused(path, "SHARD: a.json: label -1 is outside [0, 3)");

    snprintf(path, sizeof path, "%s/noimage.tar", dir);
    write_members(path, (const char *const[][3]){{"a", "cls", "1"}}, 1);
    assert_refused(path, "SHARD: a.cls: no image with this key (.jpg, .jpeg, .png, .npy or "
                         ".pixel_values.npy)");

    snprintf(path, sizeof path, "%s/twice.tar", dir);
    write_members(path,
                  (const char *const[][3]){{"a", "npy", "IMAGE"},
                                           {"a", "cls", "1"},
                                           {"b", "npy", "IMAGE"},
                                           {"b", "cls", "1"},
                                           {"a", "json", "2"}},
                  5);
    assert_refused(path, "SHARD: a.json: no image with this key (.jpg, .jpeg, .png, .npy or "
                         ".pixel_values.npy)");

    snprintf(path, sizeof path, "%s/twoimages.tar", dir);
    write_members(
        path,
        (const char *const[][3]){{"a", "npy", "IMAGE"}, {"a", "png", "IMAGE"}, {"a", "cls", "1"}},
        3);
    assert_refused(path, "SHARD: a.png: a second image for key a (after a.npy)");

    snprintf(path, sizeof path, "%s/caption.tar", dir);
    write_members(
        path,
        (const char *const[][3]){{"a", "npy", "IMAGE"}, {"a", "txt", "a cat"}, {"a", "cls", "1"}},
        3);
    assert_refused(path, "SHARD: a.txt: unsupported member '.txt' (images: .jpg .jpeg .png .npy "
                         ".pixel_values.npy; labels: .cls .json)");

    snprintf(path, sizeof path, "%s/notimage.tar", dir);
    write_members(path, (const char *const[][3]){{"a", "png", "not a png"}, {"a", "cls", "1"}}, 2);
    assert_refused(path, "SHARD: a.png: not a PNG or JPEG image (unknown magic bytes)");

    /* a corrupt second header: its checksum no longer matches */
    snprintf(path, sizeof path, "%s/corrupt.tar", dir);
    write_members(
        path,
        (const char *const[][3]){
            {"a", "npy", "IMAGE"}, {"a", "cls", "1"}, {"b", "npy", "IMAGE"}, {"b", "cls", "2"}},
        4);
    size_t size;
    char *bytes = read_bytes(path, &size);
    assert_non_null(bytes);
    /* a.npy: header 512 + data (a 128-byte .npy header + 192 bytes) padded
     * to 512; then a.cls's header */
    size_t second = 512 + 512;
    assert_string_equal(bytes + second, "a.cls");
    memcpy(bytes + second + 100, "9999999", 7); /* the mode field */
    write_file(path, bytes, size);
    free(bytes);
    orch_pipeline p;
    shards_pipeline(&p, path, 0);
    orch_err err;
    int rc = orch_data_check(&p, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    char want[1200];
    snprintf(want, sizeof want, "%s: after a.npy: ", path);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err.msg, want);

    /* a truncated gzip: cut in the middle of the compressed stream */
    snprintf(path, sizeof path, "%s/cut.tar.gz", dir);
    {
        int order[N_IMAGES];
        for (int i = 0; i < N_IMAGES; i++)
            order[i] = i;
        write_rgb_shards(path, order, N_IMAGES, 1000);
    }
    bytes = read_bytes(path, &size);
    assert_non_null(bytes);
    write_file(path, bytes, size / 2);
    free(bytes);
    shards_pipeline(&p, path, 0);
    rc = orch_data_check(&p, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    /* libarchive reads this small shard's compressed bytes in one go when
     * it opens it, so the end is found before any member: the shard is
     * named (a larger shard names the member it broke in) */
    snprintf(want, sizeof want, "%s: truncated gzip input", path);
    assert_string_equal(err.msg, want);

    /* a larger shard (incompressible members, ~400 KiB) cut at 60 %: the
     * end is found in the stream, and the line names where */
    snprintf(path, sizeof path, "%s/cutbig.tar.gz", dir);
    {
        orch_shard_writer *w;
        assert_int_equal(orch_shard_writer_open(path, 1000, 32, 1, &w, &err), ORCH_OK);
        for (int i = 0; i < 32; i++) {
            uint8_t *rgb = image_pixels(i, 64, 64);
            int64_t shape[3] = {64, 64, 3};
            void *npy;
            size_t len;
            assert_int_equal(orch_npy_encode_u8(rgb, shape, 3, &npy, &len, &err), ORCH_OK);
            char key[16];
            snprintf(key, sizeof key, "%06d", i);
            orch_shard_member m2[2] = {{"npy", npy, len}, {"cls", "1", 1}};
            assert_int_equal(orch_shard_writer_add(w, key, m2, 2, &err), ORCH_OK);
            free(npy);
            free(rgb);
        }
        assert_int_equal(orch_shard_writer_close(w, 0, NULL, &err), ORCH_OK);
    }
    bytes = read_bytes(path, &size);
    write_file(path, bytes, size * 6 / 10);
    free(bytes);
    shards_pipeline(&p, path, 0);
    rc = orch_data_check(&p, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    snprintf(want, sizeof want, "%s: 0000", path); /* "0000NN.npy: ..." */
    char after[1300];
    snprintf(after, sizeof after, "%s: after 0000", path); /* or between members */
    if ((strncmp(err.msg, want, strlen(want)) != 0 &&
         strncmp(err.msg, after, strlen(after)) != 0) ||
        strstr(err.msg, "truncated") == NULL)
        fail_msg("got \"%s\"", err.msg);
    print_message("%s\n", err.msg);

    /* an empty shard: the end-of-archive blocks alone */
    snprintf(path, sizeof path, "%s/empty.tar", dir);
    char zeros[1024] = {0};
    write_file(path, zeros, sizeof zeros);
    assert_refused(path, "SHARD: no samples (an empty shard)");
    remove_tree(dir);
}

/* A corrupt image body passes the index (headers only) and fails the run
 * when it is decoded: one line naming shard and member, the run ended
 * `failed` in the sink. */
static void test_corrupt_body_fails_run(void **state)
{
    (void)state;
    char dir[200], path[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/body.tar", dir);
    size_t good_len, bad_len;
    char *good = read_bytes("tests/data/images/jpg_baseline.jpg", &good_len);
    char *bad = read_bytes("tests/data/images/bad_truncated.jpg", &bad_len);
    orch_shard_writer *w;
    orch_err err;
    assert_int_equal(orch_shard_writer_open(path, 10, 2, 1, &w, &err), ORCH_OK);
    orch_shard_member a[2] = {{"jpg", good, good_len}, {"cls", "0", 1}};
    orch_shard_member b[2] = {{"jpg", bad, bad_len}, {"cls", "1", 1}};
    assert_int_equal(orch_shard_writer_add(w, "a", a, 2, &err), ORCH_OK);
    assert_int_equal(orch_shard_writer_add(w, "b", b, 2, &err), ORCH_OK);
    assert_int_equal(orch_shard_writer_close(w, 0, NULL, &err), ORCH_OK);
    free(good);
    free(bad);
    orch_pipeline p;
    shards_pipeline(&p, path, 0);
    p.schedule.steps = 2;
    p.schedule.batch_size = 1;
    if (orch_data_check(&p, &err) != ORCH_OK)
        fail_msg("plan: %s", err.msg);
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    orch_train_result result;
    orch_err_clear(&err);
    int rc = orch_train(&p, NULL, &sink, &result, &err);
    assert_int_not_equal(rc, ORCH_OK);
    char want[600];
    snprintf(want, sizeof want, "%s: b.jpg: ", path);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", err.msg, want);
    assert_null(strchr(err.msg, '\n'));
    assert_true(m->ended);
    assert_int_equal(m->status, ORCH_RUN_FAILED);
    assert_int_equal(m->n_steps, 1); /* image a trained, b failed */
    free(m);
    remove_tree(dir);
}

/* Seeded byte damage anywhere in a plain and a gzip shard (headers, .npy
 * headers, pixels, labels, padding): each variant either opens and reads
 * every image, or fails with one line naming the shard; never a crash
 * (run it under ASan/UBSan, docs/testing.md). */
static void test_damaged_bytes(void **state)
{
    (void)state;
    char dir[200], path[400], bad[420];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    int order[8];
    for (int i = 0; i < 8; i++)
        order[i] = i;
    static const char *const suffixes[] = {"tar", "tar.gz"};
    uint64_t rng = 12345;
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/d.%s", dir, suffixes[s]);
        write_rgb_shards(path, order, 8, 100);
        size_t size;
        char *clean = read_bytes(path, &size);
        snprintf(bad, sizeof bad, "%s/bad.%s", dir, suffixes[s]);
        int opened = 0, refused = 0;
        for (int v = 0; v < 60; v++) {
            char *bytes = malloc(size);
            assert_non_null(bytes);
            memcpy(bytes, clean, size);
            int flips = 1 + v % 4;
            for (int k = 0; k < flips; k++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(rng >> 33) % size;
                bytes[at] ^= (char)(1 + (rng >> 20) % 255);
            }
            write_file(bad, bytes, size);
            free(bytes);
            orch_pipeline p;
            shards_pipeline(&p, bad, v % 2 ? 3 : 0);
            orch_dataset ds;
            orch_err err;
            orch_err_clear(&err);
            int rc = orch_data_open(&p, &ds, &err);
            if (rc == ORCH_OK) {
                orch_batch b = {0};
                for (int i = ds.n_images - 1; i >= 0 && rc == ORCH_OK; i--)
                    rc = orch_dataset_batch(&ds, &i, 1, &b, &err);
                orch_batch_free(&b);
                orch_dataset_free(&ds);
            }
            if (rc == ORCH_OK) {
                opened++;
                continue;
            }
            refused++;
            assert_null(strchr(err.msg, '\n'));
            if (strncmp(err.msg, bad, strlen(bad)) != 0)
                fail_msg("variant %d: \"%s\" does not name the shard", v, err.msg);
        }
        free(clean);
        print_message("%s: %d damaged variants read, %d refused\n", suffixes[s], opened, refused);
        assert_true(refused > 0);
    }
    remove_tree(dir);
}

/* ------------------------------------------------------------- writer */

static void test_writer(void **state)
{
    (void)state;
    char dir[200], src[256], pat[400], a[1024], b[1024];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    int order[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++)
        order[i] = i;
    snprintf(src, sizeof src, "%s/set", dir);
    assert_int_equal(mkdir(src, 0755), 0);
    write_npy_set(src, order, N_IMAGES);
    orch_err err;

    /* several shards need a placeholder */
    snprintf(pat, sizeof pat, "%s/one.tar", dir);
    int rc = cmd_shards((const char *const[]){src, "-o", pat, "--per-shard", "8", NULL}, &err);
    assert_int_equal(orch_exit_code(rc), 2);
    assert_non_null(strstr(err.msg, "needs a placeholder"));
    assert_int_equal(access(pat, F_OK), -1);
    /* ... one shard does not */
    rc = cmd_shards((const char *const[]){src, "-o", pat, "--per-shard", "20", NULL}, &err);
    assert_int_equal(rc, ORCH_OK);

    static const char *const suffixes[] = {"tar", "tar.gz", "tar.zst", "tar.xz"};
    for (int s = 0; s < 4; s++) {
        snprintf(pat, sizeof pat, "%s/x-%%d.%s", dir, suffixes[s]);
        rc = cmd_shards((const char *const[]){src, "-o", pat, "--per-shard", "8", NULL}, &err);
        if (rc != ORCH_OK)
            fail_msg("%s", err.msg);
        snprintf(a, sizeof a, "%s/x-2.%s", dir, suffixes[s]);
        size_t size_a, size_b;
        char *first = read_bytes(a, &size_a);
        assert_non_null(first);
        /* existing outputs are refused, and left as they were */
        rc = cmd_shards((const char *const[]){src, "-o", pat, "--per-shard", "8", NULL}, &err);
        assert_int_equal(orch_exit_code(rc), 2);
        snprintf(b, sizeof b, "%s/x-0.%s: exists (use --force to overwrite)", dir, suffixes[s]);
        assert_string_equal(err.msg, b);
        /* --force rewrites the same bytes */
        rc = cmd_shards((const char *const[]){src, "-o", pat, "--per-shard", "8", "--force", NULL},
                        &err);
        assert_int_equal(rc, ORCH_OK);
        char *second = read_bytes(a, &size_b);
        assert_non_null(second);
        assert_int_equal(size_a, size_b);
        assert_memory_equal(first, second, size_a);
        free(first);
        free(second);
        /* read back: 20 images, labels and rows as in the set */
        snprintf(pat, sizeof pat, "%s/x-*.%s", dir, suffixes[s]);
        orch_pipeline p;
        shards_pipeline(&p, pat, 0);
        orch_dataset ds;
        rc = orch_data_open(&p, &ds, &err);
        if (rc != ORCH_OK)
            fail_msg("%s", err.msg);
        assert_int_equal(ds.n_images, N_IMAGES);
        assert_int_equal(ds.n_files, 3);
        assert_int_equal(strlen(ds.files[0].sha256), 64);
        for (int i = 0; i < N_IMAGES; i++)
            assert_int_equal(ds.class_labels[i], i % CLASSES);
        orch_dataset_free(&ds);
    }
    /* no temporary files left behind */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp- || true", dir);
    cli_result r;
    assert_int_equal(run_shell(cmd, &r), 0);
    assert_string_equal(r.out, "0\n");
    cli_result_free(&r);
    remove_tree(dir);
}

/* -------------------------------------------------- out-of-order reads */

static void test_random_access(void **state)
{
    (void)state;
    char dir[200], pat[400];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    int order[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++)
        order[i] = i;
    snprintf(pat, sizeof pat, "%s/r-%%d.tar.gz", dir);
    write_rgb_shards(pat, order, N_IMAGES, 8);
    snprintf(pat, sizeof pat, "%s/r-{0..2}.tar.gz", dir);
    for (int shuffle = 0; shuffle <= 4; shuffle += 4) {
        orch_pipeline p;
        shards_pipeline(&p, pat, shuffle);
        orch_dataset ds;
        orch_err err;
        assert_int_equal(orch_data_open(&p, &ds, &err), ORCH_OK);
        orch_batch in_order = {0}, scattered = {0};
        int fwd[N_IMAGES], mixed[N_IMAGES];
        for (int i = 0; i < N_IMAGES; i++) {
            fwd[i] = i;
            /* backwards within each half, the halves swapped: every kind of jump */
            mixed[i] = i < N_IMAGES / 2 ? N_IMAGES - 1 - i : i - N_IMAGES / 2;
        }
        assert_int_equal(orch_dataset_batch(&ds, fwd, N_IMAGES, &in_order, &err), ORCH_OK);
        assert_int_equal(orch_dataset_batch(&ds, mixed, N_IMAGES, &scattered, &err), ORCH_OK);
        for (int b = 0; b < N_IMAGES; b++) {
            int i = mixed[b];
            int64_t at_in = 0, at_sc = 0;
            for (int k = 0; k < i; k++)
                at_in += orch_dataset_patches(&ds, k);
            for (int k = 0; k < b; k++)
                at_sc += orch_dataset_patches(&ds, mixed[k]);
            assert_memory_equal(in_order.pixel_values + at_in * ds.patch_dim,
                                scattered.pixel_values + at_sc * ds.patch_dim,
                                (size_t)orch_dataset_patches(&ds, i) * ds.patch_dim *
                                    sizeof(float));
        }
        orch_batch_free(&in_order);
        orch_batch_free(&scattered);
        orch_dataset_free(&ds);
    }
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brace),
        cmocka_unit_test(test_expand_files),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_bit_identical),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_random_access),
        cmocka_unit_test(test_folder_identity),
        cmocka_unit_test(test_corrupt_body_fails_run),
        cmocka_unit_test(test_stream_in_shuffled_order),
        cmocka_unit_test(test_tower_key),
        cmocka_unit_test(test_damaged_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
