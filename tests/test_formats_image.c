/* test_formats_image.c - core/image (PNG and JPEG decoding) against the
 * pixels Pillow 9.4 gives for Image.open(f).convert("RGB"), byte for byte
 * (fixtures: scripts/make_image_fixtures.py), hostile files, header sizes,
 * and decoded images through the processor against the Hugging Face
 * processor fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/image.h"
#include "core/processor.h"
#include "store/npy.h"
#include "tests/testutil.h"

#define DATA "tests/data/"
#define IMG  "tests/data/images/"

static void expect_error(int rc, const orch_err *err, int code, const char *needle)
{
    if (rc != code || strstr(err->msg, needle) == NULL)
        fail_msg("expected code %d with \"%s\", got code %d: \"%s\"", code, needle, rc, err->msg);
    if (strchr(err->msg, '\n') != NULL)
        fail_msg("message is not one line: \"%s\"", err->msg);
}

/* Loads a uint8 HxWx3 fixture (saved as '|u1'). */
static uint8_t *load_rgb_npy(const char *path, int *h, int *w)
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

/* Decodes IMG name.ext from the file and from memory, checks both against
 * Pillow's name.npy and the header size. */
static void check_fixture(const char *name, const char *ext)
{
    char path[256], npy[256];
    snprintf(path, sizeof path, IMG "%s.%s", name, ext);
    snprintf(npy, sizeof npy, IMG "%s.npy", name);
    int h, w;
    uint8_t *want = load_rgb_npy(npy, &h, &w);
    orch_image img;
    orch_err err;
    if (orch_image_load(path, &img, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    if (img.height != h || img.width != w)
        fail_msg("%s: %dx%d, Pillow %dx%d", path, img.height, img.width, h, w);
    for (int i = 0; i < h * w * 3; i++)
        if (img.rgb[i] != want[i])
            fail_msg("%s: byte %d (y %d, x %d, c %d) is %d, Pillow %d", path, i, i / 3 / w,
                     i / 3 % w, i % 3, img.rgb[i], want[i]);
    /* from memory: the same pixels */
    uint8_t *buf;
    size_t n;
    assert_int_equal(orch_image_read_file(path, &buf, &n, &err), ORCH_OK);
    orch_image mem;
    assert_int_equal(orch_image_decode(buf, n, "member", &mem, &err), ORCH_OK);
    assert_memory_equal(mem.rgb, img.rgb, (size_t)h * w * 3);
    int hh = 0, ww = 0;
    assert_int_equal(orch_image_size(buf, n, "member", &hh, &ww, &err), ORCH_OK);
    assert_true(hh == h && ww == w);
    hh = ww = 0;
    assert_int_equal(orch_image_size_file(path, &hh, &ww, &err), ORCH_OK);
    assert_true(hh == h && ww == w);
    free(buf);
    orch_image_free(&mem);
    orch_image_free(&img);
    free(want);
}

static void test_png_like_pillow(void **state)
{
    (void)state;
    static const char *names[] = {
        "png_rgb8",     "png_rgb16",      "png_rgba8",        "png_rgba16",         "png_gray8",
        "png_gray16",   "png_gray1",      "png_gray2",        "png_gray4",          "png_graya8",
        "png_graya16",  "png_gray_trns",  "png_rgb_trns",     "png_pal8",           "png_pal4",
        "png_pal_trns", "png_interlaced", "png_interlaced16", "png_interlaced_pal", "png_1x1",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_fixture(names[i], "png");
}

/* 16-bit gray is clipped, not scaled: the fixture's first row starts with
 * 0, 255, 256, 65535 (scripts/make_image_fixtures.py). */
static void test_png_gray16_clips(void **state)
{
    (void)state;
    orch_image img;
    orch_err err;
    assert_int_equal(orch_image_load(IMG "png_gray16.png", &img, &err), ORCH_OK);
    assert_int_equal(img.rgb[0], 0);
    assert_int_equal(img.rgb[3], 255);
    assert_int_equal(img.rgb[6], 255);
    assert_int_equal(img.rgb[9], 255);
    orch_image_free(&img);
}

static void test_jpeg_like_pillow(void **state)
{
    (void)state;
    static const char *names[] = {"jpg_baseline", "jpg_444", "jpg_422", "jpg_progressive",
                                  "jpg_gray"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_fixture(names[i], "jpg");
}

static void expect_load_error(const char *file, const char *needle)
{
    char path[256];
    snprintf(path, sizeof path, IMG "%s", file);
    orch_image img;
    orch_err err;
    int64_t before = orch_image_decode_count();
    int rc = orch_image_load(path, &img, &err);
    expect_error(rc, &err, ORCH_EINVAL, needle);
    if (strncmp(err.msg, path, strlen(path)) != 0)
        fail_msg("the message does not start with the file: \"%s\"", err.msg);
    assert_null(img.rgb);
    assert_true(orch_image_decode_count() == before);
}

static void test_hostile_files(void **state)
{
    (void)state;
    expect_load_error("bad_empty.png", "bad_empty.png: empty file, not a PNG or JPEG image");
    expect_load_error("bad_text.png", "bad_text.png: not a PNG or JPEG image (unknown magic");
    expect_load_error("bad_truncated.png", "bad_truncated.png: corrupt PNG: truncated file");
    expect_load_error("bad_crc.png", "bad_crc.png: corrupt PNG: ");
    expect_load_error("bad_truncated.jpg", "bad_truncated.jpg: corrupt JPEG: Premature end");
    expect_load_error("bad_header_only.jpg", "bad_header_only.jpg: corrupt JPEG: ");
    expect_load_error("bad_garbled.jpg", "bad_garbled.jpg: corrupt JPEG: ");
    expect_load_error("bad_cmyk.jpg",
                      "bad_cmyk.jpg: CMYK JPEG is not supported; convert it to RGB");
    expect_load_error("bad_huge.png", "bad_huge.png: image of 20000x20000 pixels (HxW) exceeds "
                                      "the limit of 178956970 pixels");
    expect_load_error("bad_huge.jpg", "bad_huge.jpg: image of 30000x30000 pixels (HxW) exceeds");
    expect_load_error("no_such_file.png", "no_such_file.png: cannot open: No such file");
    expect_load_error("", "not a regular file (a directory)"); /* the folder itself */
}

static void expect_size_error(const char *file, const char *needle)
{
    char path[256];
    snprintf(path, sizeof path, IMG "%s", file);
    int h = -1, w = -1;
    orch_err err;
    expect_error(orch_image_size_file(path, &h, &w, &err), &err, ORCH_EINVAL, needle);
}

/* Header checks refuse what the header shows, and only that. */
static void test_header_sizes(void **state)
{
    (void)state;
    expect_size_error("bad_empty.png", "empty file");
    expect_size_error("bad_text.png", "not a PNG or JPEG image");
    expect_size_error("bad_cmyk.jpg", "bad_cmyk.jpg: CMYK JPEG is not supported");
    expect_size_error("bad_huge.png", "exceeds the limit");
    expect_size_error("bad_huge.jpg", "exceeds the limit");
    expect_size_error("bad_header_only.jpg", "truncated JPEG: the file ends before its frame");
    /* a truncated body has an intact header */
    int h, w;
    orch_err err;
    assert_int_equal(orch_image_size_file(IMG "bad_truncated.jpg", &h, &w, &err), ORCH_OK);
    assert_true(h == 33 && w == 45);
    /* a bad IHDR */
    uint8_t hdr[33];
    FILE *f = fopen(IMG "png_rgb8.png", "rb");
    assert_non_null(f);
    assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
    fclose(f);
    hdr[24] = 3; /* bit depth 3 */
    expect_error(orch_image_size(hdr, sizeof hdr, "x.png", &h, &w, &err), &err, ORCH_EINVAL,
                 "x.png: corrupt PNG header: colour type 2 with bit depth 3");
    expect_error(orch_image_size(hdr, 20, "x.png", &h, &w, &err), &err, ORCH_EINVAL,
                 "x.png: truncated or corrupt PNG header");
    assert_int_equal(orch_image_format_of(hdr, sizeof hdr), ORCH_IMAGE_PNG);
    assert_string_equal(orch_image_format_name(ORCH_IMAGE_JPEG), "JPEG");
}

/* A JPEG whose SOF comes after more than 64 KiB of APP segments (large
 * EXIF or ICC data): orch_image_size_file reads on to find it. */
static void test_size_after_large_segments(void **state)
{
    (void)state;
    uint8_t *jpg;
    size_t n;
    orch_err err;
    assert_int_equal(orch_image_read_file(IMG "jpg_baseline.jpg", &jpg, &n, &err), ORCH_OK);
    const size_t seg = 65535 + 2, n_seg = 3; /* 3 APP2 segments of the largest size */
    size_t total = n + n_seg * seg;
    uint8_t *big = malloc(total);
    assert_non_null(big);
    memcpy(big, jpg, 2); /* SOI */
    for (size_t k = 0; k < n_seg; k++) {
        uint8_t *p = big + 2 + k * seg;
        p[0] = 0xff;
        p[1] = 0xe2;
        p[2] = 0xff;
        p[3] = 0xff; /* length 65535, itself included */
        memset(p + 4, 0x11, seg - 4);
    }
    memcpy(big + 2 + n_seg * seg, jpg + 2, n - 2);
    char path[512];
    char dir[256];
    assert_non_null(make_temp_dir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/big_app.jpg", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, total, f), total);
    fclose(f);
    int h = 0, w = 0;
    assert_int_equal(orch_image_size_file(path, &h, &w, &err), ORCH_OK);
    assert_true(h == 33 && w == 45);
    orch_image img;
    assert_int_equal(orch_image_load(path, &img, &err), ORCH_OK);
    assert_true(img.height == 33 && img.width == 45);
    orch_image_free(&img);
    remove_tree(dir);
    free(big);
    free(jpg);
}

/* Every prefix of a valid file is refused with one line, never a crash
 * (ASan builds check the error paths free what they allocated). */
static void test_every_truncation(void **state)
{
    (void)state;
    static const char *files[] = {IMG "png_interlaced.png", IMG "jpg_progressive.jpg",
                                  IMG "png_pal_trns.png"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        uint8_t *buf;
        size_t n;
        orch_err err;
        assert_int_equal(orch_image_read_file(files[f], &buf, &n, &err), ORCH_OK);
        for (size_t len = 0; len < n; len += 7) {
            orch_image img;
            int rc = orch_image_decode(buf, len, "cut", &img, &err);
            if (rc == ORCH_OK) /* a JPEG may end at its last EOI-less byte */
                fail_msg("%s cut at %zu of %zu bytes decoded", files[f], len, n);
            expect_error(rc, &err, ORCH_EINVAL, "cut: ");
        }
        /* and flipped bytes: an error or an image, never a crash */
        for (size_t i = 8; i < n; i += 5) {
            buf[i] ^= 0x5a;
            orch_image img;
            if (orch_image_decode(buf, n, "flip", &img, &err) == ORCH_OK)
                orch_image_free(&img);
            else
                assert_non_null(strstr(err.msg, "flip: "));
            buf[i] ^= 0x5a;
        }
        free(buf);
    }
}

/* A decoded PNG through the processor gives the Hugging Face processor's
 * pixel_values (tests/data/proc_*: the slow Qwen2VLImageProcessor). */
static void check_processed(const char *file, const char *pv_npy, const char *grid_npy, int min_px,
                            int max_px, const int64_t want_grid[3])
{
    orch_image img;
    orch_err err;
    if (orch_image_load(file, &img, &err) != ORCH_OK)
        fail_msg("%s", err.msg);
    orch_npy want;
    assert_int_equal(orch_npy_load(pv_npy, ORCH_NPY_F32, &want, &err), ORCH_OK);
    orch_processor_config cfg;
    orch_processor_defaults(&cfg);
    cfg.patch_size = 2;
    cfg.min_pixels = min_px;
    cfg.max_pixels = max_px;
    int64_t grid[3];
    assert_int_equal(orch_processor_plan(&cfg, img.height, img.width, grid, &err), ORCH_OK);
    assert_memory_equal(grid, want_grid, sizeof grid);
    if (grid_npy != NULL) {
        orch_npy g;
        assert_int_equal(orch_npy_load(grid_npy, ORCH_NPY_I64, &g, &err), ORCH_OK);
        assert_memory_equal(g.i64, grid, sizeof grid);
        orch_npy_free(&g);
    }
    assert_int_equal(grid[0] * grid[1] * grid[2], want.shape[0]);
    float *pv = malloc((size_t)want.numel * sizeof *pv);
    assert_non_null(pv);
    assert_int_equal(orch_processor_run(&cfg, img.rgb, img.height, img.width, pv, grid, &err),
                     ORCH_OK);
    assert_memory_equal(pv, want.f32, (size_t)want.numel * sizeof *pv);
    free(pv);
    orch_npy_free(&want);
    orch_image_free(&img);
}

static void test_png_through_processor(void **state)
{
    (void)state;
    const int64_t full[3] = {1, 4, 4}, identity[3] = {1, 4, 6};
    check_processed(IMG "proc_src_13x17.png", DATA "proc_full_pv.npy", DATA "proc_full_grid.npy",
                    16, 96, full);
    check_processed(IMG "proc_img_8x12.png", DATA "proc_pv_8x12.npy", NULL, 16, 1 << 20, identity);
    /* from a JPEG or PNG file to pixel_values: downscaled, upscaled, rounded
     * only (expected values: Pillow's decode + the Hugging Face processor's
     * math, scripts/make_image_fixtures.py) */
    const int64_t down[3] = {1, 8, 10}, up[3] = {1, 8, 10}, round_only[3] = {1, 16, 22};
    check_processed(IMG "jpg_baseline.jpg", IMG "proc_jpg_baseline_16_400_pv.npy",
                    IMG "proc_jpg_baseline_16_400_grid.npy", 16, 400, down);
    check_processed(IMG "png_rgb8.png", IMG "proc_png_rgb8_256_1024_pv.npy",
                    IMG "proc_png_rgb8_256_1024_grid.npy", 256, 1024, up);
    check_processed(IMG "jpg_progressive.jpg", IMG "proc_jpg_progressive_16_12845056_pv.npy",
                    IMG "proc_jpg_progressive_16_12845056_grid.npy", 16, 12845056, round_only);
}

/* The encoder (for benchmarks): what it writes decodes to its size and
 * close to its pixels (JPEG is lossy), and it refuses a bad quality. */
static void test_encode_round_trip(void **state)
{
    (void)state;
    orch_image src = {.height = 37, .width = 53};
    src.rgb = malloc(37 * 53 * 3);
    assert_non_null(src.rgb);
    for (int i = 0; i < 37 * 53 * 3; i++)
        src.rgb[i] = (uint8_t)((i / 3 % 53) * 4 + (i % 3) * 40);
    uint8_t *buf;
    size_t n;
    orch_err err;
    assert_int_equal(orch_image_encode_jpeg(&src, 95, &buf, &n, &err), ORCH_OK);
    assert_int_equal(orch_image_format_of(buf, n), ORCH_IMAGE_JPEG);
    orch_image back;
    assert_int_equal(orch_image_decode(buf, n, "enc", &back, &err), ORCH_OK);
    assert_true(back.height == 37 && back.width == 53);
    double diff = 0;
    for (int i = 0; i < 37 * 53 * 3; i++)
        diff += abs(back.rgb[i] - src.rgb[i]);
    assert_true(diff / (37 * 53 * 3) < 4.0);
    free(buf);
    expect_error(orch_image_encode_jpeg(&src, 0, &buf, &n, &err), &err, ORCH_EINVAL,
                 "jpeg encode: bad size 37x53 or quality 0");
    assert_null(buf);
    orch_image_free(&back);
    free(src.rgb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_like_pillow),   cmocka_unit_test(test_png_gray16_clips),
        cmocka_unit_test(test_jpeg_like_pillow),  cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_header_sizes),      cmocka_unit_test(test_size_after_large_segments),
        cmocka_unit_test(test_every_truncation),  cmocka_unit_test(test_png_through_processor),
        cmocka_unit_test(test_encode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
