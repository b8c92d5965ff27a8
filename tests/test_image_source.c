/* test_image_source.c - the `images` data source (core/image_source.h)
 * through the C API and through orch_data_check / orch_data_open with a
 * hand-filled pipeline: CSV labels (names and ids), ImageFolder
 * sub-folders, the plan-time refusals (one line naming the file and CSV
 * line), a corrupt body found at batch time, the sha256 of every file, the
 * processed-image cache (epoch 2 decodes nothing, also in a real run), and
 * pixels equal to decoding + the processor directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/data_source.h"
#include "core/image.h"
#include "core/image_source.h"
#include "core/train.h"
#include "tests/testutil.h"
#include "tests/testutil_sink.h"

#define IMG "tests/data/images/"

static char root[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(root, sizeof root) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(root);
    return 0;
}

static void expect_error(int rc, const orch_err *err, int code, const char *needle)
{
    if (rc != code || strstr(err->msg, needle) == NULL)
        fail_msg("expected code %d with \"%s\", got code %d: \"%s\"", code, needle, rc, err->msg);
    if (strchr(err->msg, '\n') != NULL)
        fail_msg("message is not one line: \"%s\"", err->msg);
}

/* root/rel, with its folders made */
static const char *at(const char *rel)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", root, rel);
    for (char *s = path[k] + strlen(root) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(path[k], 0755);
            *s = '/';
        }
    return path[k];
}

static void copy(const char *fixture, const char *rel)
{
    size_t n;
    char src[256];
    snprintf(src, sizeof src, IMG "%s", fixture);
    uint8_t *data;
    orch_err err;
    if (orch_image_read_file(src, &data, &n, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    FILE *f = fopen(at(rel), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    free(data);
}

static void text(const char *rel, const char *content)
{
    assert_int_equal(write_text_file(at(rel), content), 0);
}

/* the tiny tower's processor (P 2, tp 2, m 2) with small bounds */
static orch_image_source_config config(const char *dir, const char *labels)
{
    orch_image_source_config cfg;
    memset(&cfg, 0, sizeof cfg);
    static char d[512], l[512];
    snprintf(d, sizeof d, "%s/%s", root, dir);
    cfg.dir = d;
    if (labels != NULL) {
        snprintf(l, sizeof l, "%s/%s", root, labels);
        cfg.labels = l;
    }
    orch_processor_defaults(&cfg.proc);
    cfg.proc.patch_size = 2;
    cfg.proc.min_pixels = 16;
    cfg.proc.max_pixels = 400;
    cfg.n_classes = 3;
    cfg.cache_bytes = -1;
    return cfg;
}

static void batch_all(const orch_dataset *ds, orch_batch *b, orch_err *err, int expect_rc)
{
    int idx[64];
    for (int i = 0; i < ds->n_images; i++)
        idx[i] = i;
    int rc = orch_dataset_batch(ds, idx, ds->n_images, b, err);
    if (rc != expect_rc)
        fail_msg("batch: rc %d (%s)", rc, err->msg);
}

/* Image i of ds equals decoding path + the processor directly. */
static void check_pixels(const orch_image_source_config *cfg, const orch_dataset *ds,
                         const orch_batch *b, int i, const char *path)
{
    orch_image img;
    orch_err err;
    assert_int_equal(orch_image_load(path, &img, &err), ORCH_OK);
    int64_t grid[3];
    assert_int_equal(orch_processor_plan(&cfg->proc, img.height, img.width, grid, &err), ORCH_OK);
    assert_memory_equal(grid, &ds->grid_thw[3 * i], sizeof grid);
    size_t n = (size_t)(grid[0] * grid[1] * grid[2]) * (size_t)ds->patch_dim;
    float *pv = malloc(n * sizeof *pv);
    assert_non_null(pv);
    assert_int_equal(orch_processor_run(&cfg->proc, img.rgb, img.height, img.width, pv, grid, &err),
                     ORCH_OK);
    assert_memory_equal(pv, b->pixel_values + ds->patch_offset[i] * ds->patch_dim, n * sizeof *pv);
    free(pv);
    orch_image_free(&img);
}

static void test_csv_names(void **state)
{
    (void)state;
    copy("png_rgb8.png", "csv/a.png");
    copy("jpg_baseline.jpg", "csv/b.jpg");
    copy("png_pal_trns.png", "csv/sub/c.png");
    copy("jpg_gray.jpg", "csv/d.jpeg");
    text("csv/README.txt", "not in the CSV, never read\n");
    text("csv.csv", "file,label\r\na.png,zebra\nb.jpg,cat\n\"sub/c.png\",\"dog\"\nd.jpeg,cat\n\n");
    orch_image_source_config cfg = config("csv", "csv.csv");
    orch_err err;
    if (orch_image_source_check(&cfg, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    int n_checked = 0;
    assert_int_equal(orch_image_source_check_count(&cfg, &n_checked, &err), ORCH_OK);
    assert_int_equal(n_checked, 4);
    orch_dataset ds;
    if (orch_image_source_open(&cfg, &ds, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n_images, 4);
    assert_int_equal(ds.patch_dim, 24);
    assert_int_equal(ds.label_kind, ORCH_LABEL_CLASS);
    /* names in sorted byte order: cat 0, dog 1, zebra 2 */
    assert_int_equal(ds.n_class_names, 3);
    assert_string_equal(ds.class_names[0], "cat");
    assert_string_equal(ds.class_names[1], "dog");
    assert_string_equal(ds.class_names[2], "zebra");
    const int64_t want[4] = {2, 0, 1, 0};
    assert_memory_equal(ds.class_labels, want, sizeof want);
    /* the files: every image, then the CSV, each with its sha256 */
    assert_int_equal(ds.n_files, 5);
    assert_string_equal(ds.files[2].path, at("csv/sub/c.png"));
    assert_string_equal(ds.files[4].path, cfg.labels);
    char hex[65];
    int64_t bytes;
    assert_int_equal(orch_file_sha256(at("csv/b.jpg"), hex, &bytes, &err), ORCH_OK);
    assert_string_equal(ds.files[1].sha256, hex);
    assert_true(ds.files[1].bytes == bytes);
    /* pixels: decode + processor, and the cache: the second pass decodes nothing */
    orch_batch b = {0};
    int64_t before = orch_image_decode_count();
    batch_all(&ds, &b, &err, ORCH_OK);
    assert_true(orch_image_decode_count() - before == 4);
    check_pixels(&cfg, &ds, &b, 0, at("csv/a.png"));
    check_pixels(&cfg, &ds, &b, 1, at("csv/b.jpg"));
    check_pixels(&cfg, &ds, &b, 2, at("csv/sub/c.png"));
    check_pixels(&cfg, &ds, &b, 3, at("csv/d.jpeg"));
    size_t bytes_all = (size_t)b.n_patches * 24 * sizeof(float);
    float *first = malloc(bytes_all);
    assert_non_null(first);
    memcpy(first, b.pixel_values, bytes_all);
    before = orch_image_decode_count();
    batch_all(&ds, &b, &err, ORCH_OK);
    assert_true(orch_image_decode_count() == before); /* all four from the cache */
    assert_memory_equal(b.pixel_values, first, bytes_all);
    orch_dataset_free(&ds);
    /* a cache of 0 bytes decodes every time, with the same pixels */
    cfg.cache_bytes = 0;
    assert_int_equal(orch_image_source_open(&cfg, &ds, &err), ORCH_OK);
    batch_all(&ds, &b, &err, ORCH_OK);
    before = orch_image_decode_count();
    batch_all(&ds, &b, &err, ORCH_OK);
    assert_true(orch_image_decode_count() - before == 4);
    assert_memory_equal(b.pixel_values, first, bytes_all);
    orch_dataset_free(&ds);
    /* ORCH_IMAGE_CACHE_MB sets the budget when the caller does not: 0 is off */
    cfg.cache_bytes = -1;
    setenv("ORCH_IMAGE_CACHE_MB", "0", 1);
    assert_int_equal(orch_image_source_open(&cfg, &ds, &err), ORCH_OK);
    batch_all(&ds, &b, &err, ORCH_OK);
    before = orch_image_decode_count();
    batch_all(&ds, &b, &err, ORCH_OK);
    assert_true(orch_image_decode_count() - before == 4);
    orch_dataset_free(&ds);
    setenv("ORCH_IMAGE_CACHE_MB", "1", 1); /* 1 MiB holds the four (< 64 KiB of rows) */
    assert_int_equal(orch_image_source_open(&cfg, &ds, &err), ORCH_OK);
    batch_all(&ds, &b, &err, ORCH_OK);
    before = orch_image_decode_count();
    batch_all(&ds, &b, &err, ORCH_OK);
    assert_true(orch_image_decode_count() == before);
    assert_memory_equal(b.pixel_values, first, bytes_all);
    unsetenv("ORCH_IMAGE_CACHE_MB");
    free(first);
    orch_batch_free(&b);
    orch_dataset_free(&ds);
}

static void test_csv_ids_and_regression(void **state)
{
    (void)state;
    copy("png_rgb8.png", "ids/a.png");
    copy("png_gray8.png", "ids/b.png");
    text("ids.csv", "file,label\na.png,2\nb.png,0\n");
    orch_image_source_config cfg = config("ids", "ids.csv");
    orch_dataset ds;
    orch_err err;
    assert_int_equal(orch_image_source_open(&cfg, &ds, &err), ORCH_OK);
    assert_int_equal(ds.n_class_names, 0); /* ids as written */
    assert_null(ds.class_names);
    assert_true(ds.class_labels[0] == 2 && ds.class_labels[1] == 0);
    assert_int_equal(ds.n_classes, 3);
    orch_dataset_free(&ds);
    text("reg.csv", "file,target\na.png,0.25\nb.png,-1e3\n");
    cfg = config("ids", "reg.csv");
    cfg.regression = 1;
    assert_int_equal(orch_image_source_open(&cfg, &ds, &err), ORCH_OK);
    assert_int_equal(ds.label_kind, ORCH_LABEL_REGRESSION);
    assert_true(ds.targets[0] == 0.25f && ds.targets[1] == -1000.0f);
    orch_dataset_free(&ds);
    text("reg_bad.csv", "file,target\na.png,0.25\nb.png,cat\n");
    cfg = config("ids", "reg_bad.csv");
    cfg.regression = 1;
    expect_error(orch_image_source_check(&cfg, &err), &err, ORCH_EINVAL,
                 "reg_bad.csv:3: label \"cat\" is not a finite number");
}

static void test_image_folder(void **state)
{
    (void)state;
    copy("png_rgb8.png", "folder/dog/b.png");
    copy("jpg_progressive.jpg", "folder/dog/a/z.jpg");
    copy("png_graya8.png", "folder/cat/x.png");
    copy("png_rgb16.png", "folder/cat/image_without_suffix");
    text("folder/README.txt", "ignored\n");
    text("folder/dog/notes.txt", "ignored\n");
    text("folder/cat/.DS_Store", "ignored");
    orch_image_source_config cfg = config("folder", NULL);
    orch_dataset ds;
    orch_err err;
    if (orch_image_source_open(&cfg, &ds, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n_images, 4);
    assert_int_equal(ds.n_class_names, 2);
    assert_string_equal(ds.class_names[0], "cat");
    assert_string_equal(ds.class_names[1], "dog");
    /* classes in order, each class's images sorted by path */
    assert_string_equal(ds.files[0].path, at("folder/cat/image_without_suffix"));
    assert_string_equal(ds.files[1].path, at("folder/cat/x.png"));
    assert_string_equal(ds.files[2].path, at("folder/dog/a/z.jpg"));
    assert_string_equal(ds.files[3].path, at("folder/dog/b.png"));
    assert_int_equal(ds.n_files, 4);
    const int64_t want[4] = {0, 0, 1, 1};
    assert_memory_equal(ds.class_labels, want, sizeof want);
    orch_batch b = {0};
    batch_all(&ds, &b, &err, ORCH_OK);
    check_pixels(&cfg, &ds, &b, 2, at("folder/dog/a/z.jpg"));
    orch_batch_free(&b);
    orch_dataset_free(&ds);
    /* three classes, head.classes 2 */
    copy("png_rgb8.png", "folder/emu/e.png");
    cfg.n_classes = 2;
    expect_error(orch_image_source_check(&cfg, &err), &err, ORCH_EINVAL,
                 "/folder: 3 classes (cat, ...), but head.classes = 2");
}

static void expect_refusal(const char *dir, const char *labels, const char *needle)
{
    orch_image_source_config cfg = config(dir, labels);
    orch_err err;
    expect_error(orch_image_source_check(&cfg, &err), &err, ORCH_EINVAL, needle);
    orch_dataset ds;
    expect_error(orch_image_source_open(&cfg, &ds, &err), &err, ORCH_EINVAL, needle);
    assert_null(ds.grid_thw);
}

static void test_plan_time_refusals(void **state)
{
    (void)state;
    copy("png_rgb8.png", "bad/a.png");
    copy("jpg_baseline.jpg", "bad/b.jpg");
    copy("png_1x1.png", "bad/tiny.png");
    copy("bad_cmyk.jpg", "bad/cmyk.jpg");
    copy("bad_text.png", "bad/fake.png");
    mkdir(at("empty"), 0755);
    expect_refusal("missing", NULL, "/missing: cannot open folder: No such file or directory");
    expect_refusal("missing", "x.csv", "/missing: cannot open folder: No such file");
    expect_refusal("empty", NULL, "/empty: empty folder: no images");
    expect_refusal("bad", NULL, "/bad: no class sub-folders and no data.labels");
    expect_refusal("bad", "nope.csv", "/nope.csv: cannot open: No such file or directory");
    text("l1.csv", "file,label\na.png,0\nb.jpg\n");
    expect_refusal("bad", "l1.csv", "/l1.csv:3: expected 2 columns `file,label`, got 1");
    text("l2.csv", "file,label\na.png,0\nmissing.png,1\n");
    expect_refusal("bad", "l2.csv", "/l2.csv:3: ");
    expect_refusal("bad", "l2.csv", "/bad/missing.png: cannot open: No such file or directory");
    text("l3.csv", "file,label\na.png,0\nb.jpg,1\na.png,2\n");
    expect_refusal("bad", "l3.csv", "/l3.csv:4: duplicate row for ");
    expect_refusal("bad", "l3.csv", "/bad/a.png (also line 2)");
    text("l4.csv", "file,label\na.png,0\nb.jpg,3\n");
    expect_refusal("bad", "l4.csv", "/l4.csv:3: label 3 is outside [0, 3) (head.classes = 3)");
    text("l5.csv", "file,label\na.png,0\ntiny.png,1\n");
    expect_refusal("bad", "l5.csv", "/l5.csv:3: ");
    expect_refusal("bad", "l5.csv",
                   "/bad/tiny.png: image of 1x1 pixels (HxW) is smaller than the "
                   "factor 4");
    text("l6.csv", "file,label\ncmyk.jpg,0\n");
    expect_refusal("bad", "l6.csv", "/l6.csv:2: ");
    expect_refusal("bad", "l6.csv", "/bad/cmyk.jpg: CMYK JPEG is not supported; convert it to RGB");
    text("l7.csv", "file,label\nfake.png,0\n");
    expect_refusal("bad", "l7.csv", "/bad/fake.png: not a PNG or JPEG image");
    text("l8.csv", "file,label\n");
    expect_refusal("bad", "l8.csv", "/l8.csv: no rows after the header");
    text("l9.csv", "file,label\n\"a.png,0\n");
    expect_refusal("bad", "l9.csv", "/l9.csv:2: unterminated quote");
    text("l10.csv", "file,label\na.png,a\nb.jpg,b\n");
    text("l10.csv", "file,label\na.png,w\nb.jpg,x\ntiny.png,y\ncmyk.jpg,z\n");
    expect_refusal("bad", "l10.csv", "/l10.csv: 4 classes (w, ...), but head.classes = 3");
    /* ImageFolder: a file named like an image that is not one, an empty class */
    copy("png_rgb8.png", "if1/cat/a.png");
    copy("bad_text.png", "if1/dog/b.jpg");
    expect_refusal("if1", NULL, "/if1/dog/b.jpg: named like an image but not a PNG or JPEG image");
    /* a symbolic link to its own folder: refused, not followed forever */
    copy("png_rgb8.png", "loop/cat/a.png");
    assert_int_equal(symlink(".", at("loop/cat/again")), 0);
    expect_refusal("loop", NULL, "more than 32 folders deep (a symbolic link to a parent?)");
    copy("png_rgb8.png", "if2/cat/a.png");
    text("if2/dog/README.txt", "no images here\n");
    expect_refusal("if2", NULL, "/if2/dog: class folder without PNG or JPEG images");
    /* an aspect ratio above 200: refused from the header alone (this file
     * is nothing but a PNG signature and an IHDR of 4 x 900 pixels) */
    static const uint8_t wide[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I',
                                     'H',  'D', 'R', 0,   0,    0x03, 0x84, 0,    0, 0, 4, 8,  2};
    FILE *f = fopen(at("bad/wide.png"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(wide, 1, sizeof wide, f), sizeof wide);
    fclose(f);
    text("l11.csv", "file,label\nwide.png,0\n");
    expect_refusal("bad", "l11.csv", "/l11.csv:2: ");
    expect_refusal("bad", "l11.csv",
                   "/bad/wide.png: image of 4x900 pixels (HxW): absolute aspect "
                   "ratio 225.0 exceeds 200");
}

/* A corrupt body passes the header checks and fails the batch that decodes
 * it, with one line naming the file. */
static void test_corrupt_body_at_run_time(void **state)
{
    (void)state;
    copy("png_rgb8.png", "rt/a.png");
    copy("bad_truncated.jpg", "rt/b.jpg");
    text("rt.csv", "file,label\na.png,0\nb.jpg,1\n");
    orch_image_source_config cfg = config("rt", "rt.csv");
    orch_err err;
    assert_int_equal(orch_image_source_check(&cfg, &err), ORCH_OK);
    orch_dataset ds;
    assert_int_equal(orch_image_source_open(&cfg, &ds, &err), ORCH_OK);
    orch_batch b = {0};
    batch_all(&ds, &b, &err, ORCH_EINVAL);
    expect_error(ORCH_EINVAL, &err, ORCH_EINVAL, "/rt/b.jpg: corrupt JPEG: Premature end");
    orch_batch_free(&b);
    orch_dataset_free(&ds);
}

/* A hand-filled pipeline: orch_data_check and orch_data_open pick the
 * images source, the processor bounds and the head's classes; and a real
 * run of 6 steps over 4 images (3 epochs of 2 batches) decodes each image
 * once, through the batches and through a real run (orch_train). */
static void test_pipeline_and_run(void **state)
{
    (void)state;
    copy("png_rgb8.png", "run/cat/a.png");
    copy("jpg_baseline.jpg", "run/cat/b.jpg");
    copy("png_pal8.png", "run/dog/c.png");
    copy("jpg_444.jpg", "run/emu/d.jpg");
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_LORA);
    p.data.source = ORCH_DATA_IMAGES;
    snprintf(p.data.dir, sizeof p.data.dir, "%s", at("run"));
    p.processor.min_pixels = 16;
    p.processor.max_pixels = 256;
    p.schedule.steps = 6;
    orch_err err;
    if (orch_data_check(&p, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    orch_dataset ds;
    assert_int_equal(orch_data_open(&p, &ds, &err), ORCH_OK);
    assert_int_equal(ds.n_images, 4);
    assert_int_equal(ds.n_class_names, 3);
    int64_t grid[3];
    orch_processor_config proc;
    orch_processor_defaults(&proc);
    proc.patch_size = 2;
    proc.min_pixels = 16;
    proc.max_pixels = 256;
    assert_int_equal(orch_processor_plan(&proc, 33, 45, grid, &err), ORCH_OK);
    assert_memory_equal(&ds.grid_thw[3], grid, sizeof grid);
    orch_dataset_free(&ds);

    /* three epochs of two batches of two: each image decoded once */
    assert_int_equal(orch_data_open(&p, &ds, &err), ORCH_OK);
    int64_t before = orch_image_decode_count();
    orch_batch b = {0};
    for (int epoch = 0; epoch < 3; epoch++) {
        int perm[4];
        orch_dataset_order(&ds, 7, epoch, perm);
        for (int k = 0; k < 4; k += 2)
            assert_int_equal(orch_dataset_batch(&ds, perm + k, 2, &b, &err), ORCH_OK);
    }
    assert_true(orch_image_decode_count() - before == 4);
    orch_batch_free(&b);
    orch_dataset_free(&ds);

    /* a real run: 6 steps of 2 over 4 images (3 epochs) decode each once */
    memory_sink *m = memory_sink_new();
    orch_sink sink = memory_sink_of(m);
    orch_train_result result;
    before = orch_image_decode_count();
    int rc = orch_train(&p, NULL, &sink, &result, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(m->n_steps, 6);
    assert_true(orch_image_decode_count() - before == 4);
    for (int i = 0; i < 6; i++)
        assert_true(isfinite(m->loss[i]));
    free(m);

    /* head.classes 2: three class folders are refused at plan time */
    p.head.n_outputs = 2;
    expect_error(orch_data_check(&p, &err), &err, ORCH_EINVAL, "3 classes (cat, ...)");
}

/* An evaluation set of named images takes the training set's classes: a
 * name has the same id in both even when the evaluation set lacks a class,
 * and a name the training set does not have is refused at plan time. */
static void test_eval_shares_classes(void **state)
{
    (void)state;
    copy("png_rgb8.png", "tr/cat/a.png");
    copy("png_gray8.png", "tr/dog/b.png");
    copy("png_pal8.png", "tr/emu/c.png");
    copy("jpg_444.jpg", "ev/x.jpg");
    copy("png_rgb16.png", "ev/y.png");
    text("ev.csv", "file,label\nx.jpg,emu\ny.png,dog\n");
    text("ev_bad.csv", "file,label\nx.jpg,emu\ny.png,zebra\n");
    orch_pipeline p;
    tiny_pipeline(&p, ORCH_STRATEGY_LORA);
    p.data.source = ORCH_DATA_IMAGES;
    snprintf(p.data.dir, sizeof p.data.dir, "%s", at("tr"));
    p.processor.min_pixels = 16;
    p.processor.max_pixels = 256;
    p.eval.enabled = 1;
    p.eval.data = p.data;
    snprintf(p.eval.data.dir, sizeof p.eval.data.dir, "%s", at("ev"));
    snprintf(p.eval.data.labels, sizeof p.eval.data.labels, "%s", at("ev.csv"));
    orch_err err;
    if (orch_data_check(&p, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    orch_dataset ds;
    if (orch_data_open_set(&p, &p.eval.data, &ds, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    /* alone, the evaluation set would be dog 0, emu 1 */
    assert_int_equal(ds.n_class_names, 3);
    assert_string_equal(ds.class_names[2], "emu");
    assert_true(ds.class_labels[0] == 2 && ds.class_labels[1] == 1);
    orch_dataset_free(&ds);
    snprintf(p.eval.data.labels, sizeof p.eval.data.labels, "%s", at("ev_bad.csv"));
    expect_error(orch_data_check(&p, &err), &err, ORCH_EINVAL,
                 "ev_bad.csv:3: class \"zebra\" is not a class of the training data (3: cat, ...)");
    /* an ImageFolder evaluation set likewise */
    copy("png_rgb8.png", "ev2/emu/a.png");
    memset(p.eval.data.labels, 0, sizeof p.eval.data.labels);
    snprintf(p.eval.data.dir, sizeof p.eval.data.dir, "%s", at("ev2"));
    assert_int_equal(orch_data_open_set(&p, &p.eval.data, &ds, &err), ORCH_OK);
    assert_true(ds.class_labels[0] == 2);
    orch_dataset_free(&ds);
    copy("png_rgb8.png", "ev2/yak/a.png");
    expect_error(orch_data_check(&p, &err), &err, ORCH_EINVAL,
                 "/ev2/yak: class \"yak\" is not a class of the training data");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_names),
        cmocka_unit_test(test_csv_ids_and_regression),
        cmocka_unit_test(test_image_folder),
        cmocka_unit_test(test_plan_time_refusals),
        cmocka_unit_test(test_corrupt_body_at_run_time),
        cmocka_unit_test(test_pipeline_and_run),
        cmocka_unit_test(test_eval_shares_classes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
