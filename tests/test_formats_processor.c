/* test_formats_processor.c - core/processor (Qwen2-VL image processor port) and
 * core/synthetic, against the formula of docs §2.2 and numpy/PIL fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dataset.h"
#include "core/err.h"
#include "core/processor.h"
#include "core/synthetic.h"
#include "store/npy.h"

#define DATA "tests/data/"

static void expect_error(int rc, const orch_err *err, int code, const char *needle)
{
    if (rc != code || strstr(err->msg, needle) == NULL)
        fail_msg("expected code %d with \"%s\", got code %d: \"%s\"", code, needle, rc, err->msg);
    if (strchr(err->msg, '\n') != NULL)
        fail_msg("message is not one line: \"%s\"", err->msg);
}

/* The tiny model's processor: P 2, tp 2, m 2 (factor 4), CLIP mean/std. */
static orch_processor_config tiny_config(int min_pixels, int max_pixels)
{
    orch_processor_config cfg;
    orch_processor_defaults(&cfg);
    cfg.patch_size = 2;
    cfg.min_pixels = min_pixels;
    cfg.max_pixels = max_pixels;
    return cfg;
}

/* Loads a uint8 HxWx3 image fixture (saved as '|u1'). */
static uint8_t *load_image(const char *path, int *h, int *w)
{
    orch_npy a;
    orch_err err;
    if (orch_npy_load(path, ORCH_NPY_I64, &a, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.shape[2], 3);
    *h = (int)a.shape[0];
    *w = (int)a.shape[1];
    uint8_t *img = malloc((size_t)a.numel);
    assert_non_null(img);
    for (int64_t i = 0; i < a.numel; i++)
        img[i] = (uint8_t)a.i64[i];
    orch_npy_free(&a);
    return img;
}

static void load_f32(const char *path, orch_npy *a)
{
    orch_err err;
    if (orch_npy_load(path, ORCH_NPY_F32, a, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
}

/* ------------------------------------------------------- smart_resize */

static void test_smart_resize(void **state)
{
    (void)state;
    /* expected values from transformers' smart_resize run in Python */
    static const struct {
        int h, w, factor, min_px, max_px, eh, ew;
    } cases[] = {
        {70, 98, 28, 3136, 12845056, 56, 112},  /* 2.5 -> 2, 3.5 -> 4: half to even */
        {42, 42, 28, 3136, 12845056, 56, 56},   /* 1.5 -> 2 */
        {126, 70, 28, 3136, 12845056, 112, 56}, /* 4.5 -> 4, 2.5 -> 2 */
        {448, 448, 28, 3136, 12845056, 448, 448},
        {420, 588, 28, 3136, 12845056, 420, 588},
        {1080, 1920, 28, 3136, 12845056, 1092, 1932},
        {4000, 3000, 28, 3136, 1003520, 1148, 840}, /* max_pixels clamp */
        {1080, 1920, 28, 3136, 1003520, 728, 1316},
        {30, 40, 28, 3136, 12845056, 56, 84}, /* min_pixels clamp */
        {42, 70, 28, 12544, 12845056, 112, 168},
        {28, 5600, 28, 3136, 12845056, 28, 5600}, /* aspect ratio exactly 200 */
        {13, 17, 4, 16, 96, 8, 8},
        {28, 5000, 28, 3136, 3136, 28, 728}, /* Python gives 0 for h: max(factor, .) */
    };
    orch_err err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int oh = -1, ow = -1;
        int rc = orch_smart_resize(cases[i].h, cases[i].w, cases[i].factor, cases[i].min_px,
                                   cases[i].max_px, &oh, &ow, &err);
        if (rc != ORCH_OK || oh != cases[i].eh || ow != cases[i].ew)
            fail_msg("case %zu (%dx%d): got rc %d %dx%d, expected %dx%d (%s)", i, cases[i].h,
                     cases[i].w, rc, oh, ow, cases[i].eh, cases[i].ew, err.msg);
    }
    int oh, ow;
    expect_error(orch_smart_resize(28, 5628, 28, 3136, 12845056, &oh, &ow, &err), &err, ORCH_EINVAL,
                 "image of 28x5628 pixels (HxW): absolute aspect ratio 201.0 exceeds 200");
    expect_error(orch_smart_resize(27, 100, 28, 3136, 12845056, &oh, &ow, &err), &err, ORCH_EINVAL,
                 "image of 27x100 pixels (HxW) is smaller than the factor 28");
    expect_error(orch_smart_resize(100, 20, 28, 3136, 12845056, &oh, &ow, &err), &err, ORCH_EINVAL,
                 "smaller than the factor 28");
    expect_error(orch_smart_resize(100, 100, 28, 5000, 4000, &oh, &ow, &err), &err, ORCH_EINVAL,
                 "smart_resize: bad parameters");
}

/* ------------------------------------------------------- patch order */

/* Checks every element of patchify's output against the formula of §2.2. */
static void check_patch_order(int P, int tp, int m, int h, int w, int n_frames, int grid_t)
{
    orch_processor_config cfg;
    orch_processor_defaults(&cfg);
    cfg.patch_size = P;
    cfg.temporal_patch_size = tp;
    cfg.merge_size = m;
    size_t plane = (size_t)h * w;
    float *frames = malloc((size_t)n_frames * 3 * plane * sizeof *frames);
    int gh = h / P, gw = w / P;
    int dim = orch_processor_patch_dim(&cfg);
    size_t n = (size_t)grid_t * gh * gw;
    float *pv = malloc(n * dim * sizeof *pv);
    assert_non_null(frames);
    assert_non_null(pv);
    for (int f = 0; f < n_frames; f++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    frames[((size_t)f * 3 + c) * plane + (size_t)y * w + x] =
                        (float)(f * 1000000 + c * 100000 + y * 1000 + x);
    memset(pv, 0xff, n * dim * sizeof *pv);
    orch_processor_patchify(&cfg, frames, n_frames, grid_t, h, w, pv);
    for (int t = 0; t < grid_t; t++)
        for (int ph = 0; ph < gh; ph++)
            for (int pw = 0; pw < gw; pw++) {
                int bh = ph / m, i = ph % m, bw = pw / m, j = pw % m;
                size_t row = (size_t)((t * (gh / m) + bh) * (gw / m) + bw) * m * m + i * m + j;
                for (int c = 0; c < 3; c++)
                    for (int k = 0; k < tp; k++)
                        for (int y = 0; y < P; y++)
                            for (int x = 0; x < P; x++) {
                                size_t col = ((size_t)(c * tp + k) * P + y) * P + x;
                                int f = t * tp + k < n_frames ? t * tp + k : n_frames - 1;
                                float want = (float)(f * 1000000 + c * 100000 +
                                                     (ph * P + y) * 1000 + pw * P + x);
                                if (pv[row * dim + col] != want)
                                    fail_msg("P=%d t=%d ph=%d pw=%d c=%d k=%d y=%d x=%d: got %g, "
                                             "want %g",
                                             P, t, ph, pw, c, k, y, x, pv[row * dim + col], want);
                            }
            }
    free(frames);
    free(pv);
}

static void test_patch_order(void **state)
{
    (void)state;
    check_patch_order(2, 2, 2, 8, 12, 1, 1);   /* still image: both slices the same frame */
    check_patch_order(2, 2, 2, 8, 12, 2, 1);   /* two distinct frames */
    check_patch_order(2, 2, 2, 4, 8, 4, 2);    /* video, grid_t 2 */
    check_patch_order(2, 2, 2, 4, 4, 1, 3);    /* static video from one frame */
    check_patch_order(3, 1, 2, 12, 6, 1, 1);   /* tp 1, odd patch */
    check_patch_order(14, 2, 2, 56, 84, 1, 1); /* the real patch size */

    /* merge windows: the first 4 rows are patches (0,0) (0,1) (1,0) (1,1) */
    orch_processor_config cfg = tiny_config(16, 1 << 20);
    float frame[3 * 4 * 8];
    for (int i = 0; i < 3 * 4 * 8; i++)
        frame[i] = (float)i;
    float pv[8 * 24];
    orch_processor_patchify(&cfg, frame, 1, 1, 4, 8, pv);
    assert_true(pv[0 * 24] == 0.0f);      /* (ph 0, pw 0): pixel (0, 0) */
    assert_true(pv[1 * 24] == 2.0f);      /* (0, 1): pixel (0, 2) */
    assert_true(pv[2 * 24] == 16.0f);     /* (1, 0): pixel (2, 0) */
    assert_true(pv[3 * 24] == 18.0f);     /* (1, 1): pixel (2, 2) */
    assert_true(pv[4 * 24] == 4.0f);      /* next merge window: (0, 2) */
    assert_true(pv[0 * 24 + 4] == 0.0f);  /* temporal slice 1 repeats the frame */
    assert_true(pv[0 * 24 + 8] == 32.0f); /* channel 1 */
}

/* orch_processor_run_exact (normalize and patches fused, straight from the
 * bytes; its own loop for patch 14) equals orch_processor_normalize then
 * orch_processor_patchify bit for bit, every byte value in every channel. */
static void check_fused(int P, int tp, int m, int h, int w, int grid_t)
{
    orch_processor_config cfg;
    orch_processor_defaults(&cfg);
    cfg.patch_size = P;
    cfg.temporal_patch_size = tp;
    cfg.merge_size = m;
    size_t plane = (size_t)h * w, dim = (size_t)orch_processor_patch_dim(&cfg);
    size_t n = (size_t)grid_t * (h / P) * (w / P) * dim;
    uint8_t *rgb = malloc(plane * 3);
    float *chw = malloc(plane * 3 * sizeof *chw);
    float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    assert_true(rgb != NULL && chw != NULL && want != NULL && got != NULL);
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(P * 131 + h);
    for (size_t i = 0; i < plane * 3; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        rgb[i] = i < 256 ? (uint8_t)i : (uint8_t)(s >> 56); /* every value at least once */
    }
    orch_processor_normalize(&cfg, rgb, h, w, chw);
    orch_processor_patchify(&cfg, chw, 1, grid_t, h, w, want);
    memset(got, 0xff, n * sizeof *got);
    int64_t grid[3];
    orch_err err;
    assert_int_equal(orch_processor_run_exact(&cfg, rgb, h, w, grid_t, got, grid, &err), ORCH_OK);
    assert_true(grid[0] == grid_t && grid[1] == h / P && grid[2] == w / P);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof *got) != 0)
            fail_msg("P=%d tp=%d %dx%d: element %zu (row %zu, col %zu) is %a, two-pass %a", P, tp,
                     h, w, i, i / dim, i % dim, (double)got[i], (double)want[i]);
    free(rgb);
    free(chw);
    free(want);
    free(got);
}

static void test_fused_equals_two_pass(void **state)
{
    (void)state;
    check_fused(14, 2, 2, 56, 84, 1);   /* the real patch size */
    check_fused(14, 2, 2, 448, 448, 1); /* the bench's image */
    check_fused(14, 2, 2, 28, 56, 2);   /* a static video */
    check_fused(14, 1, 2, 28, 28, 1);   /* tp 1 */
    check_fused(14, 3, 1, 28, 42, 1);   /* tp 3, merge 1 */
    check_fused(2, 2, 2, 8, 12, 1);     /* the fixtures' size */
    check_fused(3, 1, 2, 12, 6, 1);     /* odd patch */
}

/* ------------------------------------------------- numpy/PIL fixtures */

/* Identity resize: normalization + patch order exactly as transformers. */
static void test_fixture_identity(void **state)
{
    (void)state;
    int h, w;
    uint8_t *img = load_image(DATA "proc_img_8x12.npy", &h, &w);
    orch_npy want;
    load_f32(DATA "proc_pv_8x12.npy", &want);
    orch_processor_config cfg = tiny_config(16, 1 << 20);
    assert_int_equal(want.shape[0], 24);
    assert_int_equal(want.shape[1], orch_processor_patch_dim(&cfg));
    float *pv = malloc((size_t)want.numel * sizeof *pv);
    assert_non_null(pv);
    int64_t grid[3];
    orch_err err;
    assert_int_equal(orch_processor_run(&cfg, img, h, w, pv, grid, &err), ORCH_OK);
    assert_true(grid[0] == 1 && grid[1] == 4 && grid[2] == 6);
    assert_memory_equal(pv, want.f32, (size_t)want.numel * sizeof *pv);
    memset(pv, 0, (size_t)want.numel * sizeof *pv);
    assert_int_equal(orch_processor_run_exact(&cfg, img, h, w, 1, pv, grid, &err), ORCH_OK);
    assert_memory_equal(pv, want.f32, (size_t)want.numel * sizeof *pv);
    expect_error(orch_processor_run_exact(&cfg, img, 6, 12, 1, pv, grid, &err), &err, ORCH_EINVAL,
                 "image of 6x12 pixels (HxW) is not a positive multiple of 4");
    free(pv);
    free(img);
    orch_npy_free(&want);
}

/* Bicubic against Pillow 9.4's Image.resize(BICUBIC), byte for byte. */
static void test_fixture_pil_bicubic(void **state)
{
    (void)state;
    int h, w;
    uint8_t *src = load_image(DATA "proc_src_13x17.npy", &h, &w);
    static const int sizes[][2] = {{8, 12}, {20, 24}, {8, 24}, {8, 17}, {13, 12}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        char path[128];
        snprintf(path, sizeof path, DATA "proc_pil_%dx%d.npy", sizes[s][0], sizes[s][1]);
        int oh, ow;
        uint8_t *want = load_image(path, &oh, &ow);
        assert_true(oh == sizes[s][0] && ow == sizes[s][1]);
        uint8_t *got = malloc((size_t)oh * ow * 3);
        assert_non_null(got);
        orch_err err;
        assert_int_equal(orch_resize_bicubic(src, h, w, got, oh, ow, &err), ORCH_OK);
        for (int i = 0; i < oh * ow * 3; i++)
            if (got[i] != want[i])
                fail_msg("%dx%d -> %dx%d: byte %d (y %d, x %d, c %d) is %d, PIL %d", h, w, oh, ow,
                         i, i / 3 / ow, i / 3 % ow, i % 3, got[i], want[i]);
        free(got);
        free(want);
    }
    uint8_t same[13 * 17 * 3];
    orch_err err;
    assert_int_equal(orch_resize_bicubic(src, h, w, same, h, w, &err), ORCH_OK);
    assert_memory_equal(same, src, sizeof same);
    expect_error(orch_resize_bicubic(src, h, w, same, 0, 4, &err), &err, ORCH_EINVAL,
                 "resize: bad size 13x17 -> 0x4");
    free(src);
}

/* The whole processor: smart_resize + PIL bicubic + normalize + patches. */
static void test_fixture_full(void **state)
{
    (void)state;
    int h, w;
    uint8_t *src = load_image(DATA "proc_src_13x17.npy", &h, &w);
    orch_npy want, want_grid;
    load_f32(DATA "proc_full_pv.npy", &want);
    orch_err err;
    assert_int_equal(orch_npy_load(DATA "proc_full_grid.npy", ORCH_NPY_I64, &want_grid, &err),
                     ORCH_OK);
    orch_processor_config cfg = tiny_config(16, 96);
    int64_t plan[3], grid[3];
    assert_int_equal(orch_processor_plan(&cfg, h, w, plan, &err), ORCH_OK);
    assert_memory_equal(plan, want_grid.i64, sizeof plan);
    assert_int_equal(plan[0] * plan[1] * plan[2], want.shape[0]);
    float *pv = malloc((size_t)want.numel * sizeof *pv);
    assert_non_null(pv);
    assert_int_equal(orch_processor_run(&cfg, src, h, w, pv, grid, &err), ORCH_OK);
    assert_memory_equal(grid, want_grid.i64, sizeof grid);
    assert_memory_equal(pv, want.f32, (size_t)want.numel * sizeof *pv);
    expect_error(orch_processor_run(&cfg, src, 3, 17, pv, grid, &err), &err, ORCH_EINVAL,
                 "image of 3x17 pixels (HxW) is smaller than the factor 4");
    free(pv);
    free(src);
    orch_npy_free(&want);
    orch_npy_free(&want_grid);
}

static void test_defaults(void **state)
{
    (void)state;
    orch_processor_config cfg;
    orch_processor_defaults(&cfg);
    assert_int_equal(orch_processor_patch_dim(&cfg), 1176);
    assert_int_equal(cfg.min_pixels, 3136);
    assert_int_equal(cfg.max_pixels, 12845056);
    assert_true(cfg.rescale_factor == 1.0 / 255.0);
    assert_true(cfg.image_mean[0] == (float)0.48145466 && cfg.image_std[2] == (float)0.27577711);
    int64_t grid[3];
    orch_err err;
    assert_int_equal(orch_processor_plan(&cfg, 420, 588, grid, &err), ORCH_OK);
    assert_true(grid[0] == 1 && grid[1] == 30 && grid[2] == 42);
}

/* ---------------------------------------------------------- synthetic */

static void batch_all(const orch_dataset *ds, orch_batch *b)
{
    int idx[64];
    assert_true(ds->n_images <= 64);
    for (int i = 0; i < ds->n_images; i++)
        idx[i] = i;
    orch_err err;
    int rc = orch_dataset_batch(ds, idx, ds->n_images, b, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
}

static void test_synthetic_pixels(void **state)
{
    (void)state;
    orch_processor_config proc = tiny_config(16, 400);
    orch_synthetic_config cfg = {
        .n_images = 9, .n_classes = 8, .height = 30, .width = 22, .seed = 7};
    orch_dataset a, b;
    orch_err err;
    int rc = orch_synthetic_load(&cfg, &proc, &a, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    int64_t plan[3];
    assert_int_equal(orch_processor_plan(&proc, 30, 22, plan, &err), ORCH_OK);
    assert_int_equal(a.n_images, 9);
    assert_int_equal(a.n_classes, 8);
    assert_int_equal(a.patch_dim, 24);
    assert_null(a.pixel_values); /* lazy by default */
    for (int i = 0; i < 9; i++) {
        assert_int_equal(a.class_labels[i], i % 8);
        assert_memory_equal(&a.grid_thw[3 * i], plan, sizeof plan);
    }
    cfg.in_memory = 1;
    assert_int_equal(orch_synthetic_load(&cfg, &proc, &b, &err), ORCH_OK);
    assert_non_null(b.pixel_values);
    orch_batch ba = {0}, bb = {0};
    batch_all(&a, &ba);
    batch_all(&b, &bb);
    assert_int_equal(ba.n_patches, 9 * plan[1] * plan[2]);
    assert_memory_equal(ba.pixel_values, bb.pixel_values,
                        (size_t)ba.n_patches * 24 * sizeof(float));
    /* image 3 alone equals image 3 in the batch: rendering depends on the index only */
    const int three[1] = {3};
    assert_int_equal(orch_dataset_batch(&a, three, 1, &bb, &err), ORCH_OK);
    int64_t per = plan[1] * plan[2] * 24;
    assert_memory_equal(bb.pixel_values, ba.pixel_values + 3 * per, (size_t)per * sizeof(float));
    /* images differ from each other */
    assert_memory_not_equal(ba.pixel_values, ba.pixel_values + per, (size_t)per * sizeof(float));
    orch_batch_free(&bb);
    orch_dataset_free(&b);
    /* another seed gives other images */
    cfg.seed = 8;
    assert_int_equal(orch_synthetic_load(&cfg, &proc, &b, &err), ORCH_OK);
    batch_all(&b, &bb);
    assert_memory_not_equal(ba.pixel_values, bb.pixel_values, (size_t)per * sizeof(float));
    orch_batch_free(&ba);
    orch_batch_free(&bb);
    orch_dataset_free(&a);
    orch_dataset_free(&b);
}

static void test_synthetic_render(void **state)
{
    (void)state;
    orch_synthetic_config cfg = {
        .n_images = 100, .n_classes = 12, .height = 32, .width = 32, .seed = 1};
    static uint8_t a[32 * 32 * 3], b[32 * 32 * 3];
    orch_synthetic_render(&cfg, 5, 32, 32, a);
    cfg.n_images = 6; /* the count does not change image 5 */
    orch_synthetic_render(&cfg, 5, 32, 32, b);
    assert_memory_equal(a, b, sizeof a);
    /* classes 0 and 6 are both discs, in different hue bands: their shape
     * colours (the centre pixel is inside the disc) differ */
    int hue_differs = 0;
    for (int i = 0; i < 6; i++) {
        orch_synthetic_render(&cfg, 12 * i, 32, 32, a);
        orch_synthetic_render(&cfg, 12 * i + 6, 32, 32, b);
        const uint8_t *ca = a + (16 * 32 + 16) * 3, *cb = b + (16 * 32 + 16) * 3;
        hue_differs += abs(ca[0] - cb[0]) + abs(ca[1] - cb[1]) + abs(ca[2] - cb[2]) > 40;
    }
    assert_true(hue_differs >= 4);
    /* the centre belongs to the shape and the corner to the background for
     * the solid shapes (disc, square, triangle, cross) */
    for (int label = 0; label < 5; label++) {
        if (label == 3)
            continue; /* stripes may put a gap at the centre */
        orch_synthetic_render(&cfg, label, 32, 32, a);
        const uint8_t *centre = a + (16 * 32 + 16) * 3, *corner = a;
        int diff =
            abs(centre[0] - corner[0]) + abs(centre[1] - corner[1]) + abs(centre[2] - corner[2]);
        if (diff < 40)
            fail_msg("class %d: centre and corner look alike (%d)", label, diff);
    }
}

static void test_synthetic_grids(void **state)
{
    (void)state;
    orch_processor_config proc = tiny_config(3136, 12845056); /* unused: no resize */
    const int64_t grids[6] = {1, 6, 10, 2, 4, 4};
    orch_synthetic_config cfg = {
        .n_images = 3, .n_classes = 2, .n_grids = 2, .grids = grids, .seed = 3};
    orch_dataset ds;
    orch_err err;
    int rc = orch_synthetic_load(&cfg, &proc, &ds, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_memory_equal(&ds.grid_thw[0], &grids[0], 3 * sizeof(int64_t));
    assert_memory_equal(&ds.grid_thw[3], &grids[3], 3 * sizeof(int64_t));
    assert_memory_equal(&ds.grid_thw[6], &grids[0], 3 * sizeof(int64_t));
    assert_int_equal(ds.patch_offset[3], 60 + 32 + 60);
    orch_batch b = {0};
    batch_all(&ds, &b);
    assert_int_equal(b.n_patches, 152);
    /* the static video's second frame repeats the first */
    const float *video = b.pixel_values + 60 * 24;
    assert_memory_equal(video, video + 16 * 24, 16 * 24 * sizeof(float));
    /* and equals rendering at 8x8 pixels through the processor directly */
    uint8_t rgb[8 * 8 * 3];
    orch_synthetic_render(&cfg, 1, 8, 8, rgb);
    float direct[32 * 24];
    int64_t g[3];
    assert_int_equal(orch_processor_run_exact(&proc, rgb, 8, 8, 2, direct, g, &err), ORCH_OK);
    assert_memory_equal(video, direct, sizeof direct);
    orch_batch_free(&b);
    orch_dataset_free(&ds);
}

static void test_synthetic_errors(void **state)
{
    (void)state;
    orch_processor_config proc = tiny_config(16, 400);
    orch_dataset ds;
    orch_err err;
    orch_synthetic_config none = {.n_images = 2, .n_classes = 2};
    expect_error(orch_synthetic_load(&none, &proc, &ds, &err), &err, ORCH_EINVAL,
                 "synthetic data: give either an image size in pixels or a list of grids");
    const int64_t odd[3] = {1, 3, 4};
    orch_synthetic_config both = {
        .n_images = 2, .n_classes = 2, .height = 8, .width = 8, .n_grids = 1, .grids = odd};
    expect_error(orch_synthetic_load(&both, &proc, &ds, &err), &err, ORCH_EINVAL,
                 "give either an image size in pixels or a list of grids");
    orch_synthetic_config bad_grid = {.n_images = 2, .n_classes = 2, .n_grids = 1, .grids = odd};
    expect_error(orch_synthetic_load(&bad_grid, &proc, &ds, &err), &err, ORCH_EINVAL,
                 "synthetic data: image_grid_thw row 0 = [1, 3, 4]: h=3 is not a multiple of the "
                 "merge size 2");
    orch_synthetic_config small = {.n_images = 2, .n_classes = 2, .height = 3, .width = 30};
    expect_error(orch_synthetic_load(&small, &proc, &ds, &err), &err, ORCH_EINVAL,
                 "image of 3x30 pixels (HxW) is smaller than the factor 4");
    orch_synthetic_config no_classes = {.n_images = 2, .n_classes = 0, .height = 8, .width = 8};
    expect_error(orch_synthetic_load(&no_classes, &proc, &ds, &err), &err, ORCH_EINVAL,
                 "synthetic data: needs n_images >= 1 and n_classes >= 1 (got 2, 0)");
    assert_null(ds.grid_thw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smart_resize),
        cmocka_unit_test(test_patch_order),
        cmocka_unit_test(test_fused_equals_two_pass),
        cmocka_unit_test(test_fixture_identity),
        cmocka_unit_test(test_fixture_pil_bicubic),
        cmocka_unit_test(test_fixture_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_synthetic_pixels),
        cmocka_unit_test(test_synthetic_render),
        cmocka_unit_test(test_synthetic_grids),
        cmocka_unit_test(test_synthetic_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
