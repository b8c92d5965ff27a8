/* test_formats_npy.c - store/npy, store/npy_dataset and core/dataset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dataset.h"
#include "core/err.h"
#include "store/npy.h"
#include "store/npy_dataset.h"
#include "tests/testutil.h"

#define DATA "tests/data/"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(g_dir, sizeof g_dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(g_dir);
    return 0;
}

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

static void expect_error(int rc, const orch_err *err, int code, const char *needle)
{
    if (rc != code || strstr(err->msg, needle) == NULL)
        fail_msg("expected code %d with \"%s\", got code %d: \"%s\"", code, needle, rc, err->msg);
    if (strchr(err->msg, '\n') != NULL)
        fail_msg("message is not one line: \"%s\"", err->msg);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void write_bytes(const char *path, const void *a, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(a, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A v1.0 file with header text dict (padded as given) and data. */
static const char *make_npy(const char *name, const char *dict, const void *data, size_t n)
{
    unsigned char buf[1024];
    size_t len = strlen(dict);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(len & 0xff);
    buf[9] = (unsigned char)(len >> 8);
    memcpy(buf + 10, dict, len);
    if (n > 0)
        memcpy(buf + 10 + len, data, n);
    const char *path = tmp_path(name);
    write_bytes(path, buf, 10 + len + n);
    return path;
}

static void expect_load_error(const char *path, orch_npy_dtype want, const char *needle)
{
    orch_npy a;
    orch_err err;
    orch_err_clear(&err);
    int rc = orch_npy_load(path, want, &a, &err);
    expect_error(rc, &err, ORCH_EINVAL, needle);
    assert_null(a.f32);
    assert_null(a.i64);
}

/* ----------------------------------------------------------- fixtures */

static void test_fixtures(void **state)
{
    (void)state;
    orch_npy a;
    orch_err err;
    assert_int_equal(orch_npy_load(DATA "npy_f4_2x3.npy", ORCH_NPY_F32, &a, &err), ORCH_OK);
    assert_int_equal(a.dtype, ORCH_NPY_F32);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 3);
    for (int i = 0; i < 6; i++)
        assert_true(a.f32[i] == i * 0.5f - 1.0f);
    orch_npy_free(&a);
    orch_npy_free(&a); /* idempotent */

    assert_int_equal(orch_npy_load(DATA "npy_f8.npy", ORCH_NPY_ANY, &a, &err), ORCH_OK);
    assert_int_equal(a.dtype, ORCH_NPY_F32);
    assert_string_equal(a.descr, "<f8");
    assert_true(a.f32[0] == (float)0.1 && a.f32[1] == -2.5f && a.f32[2] == (float)1e30);
    orch_npy_free(&a);

    assert_int_equal(orch_npy_load(DATA "npy_i8_grid.npy", ORCH_NPY_I64, &a, &err), ORCH_OK);
    assert_int_equal(a.dtype, ORCH_NPY_I64);
    const int64_t grid[6] = {1, 2, 4, 1, 4, 2};
    assert_memory_equal(a.i64, grid, sizeof grid);
    orch_npy_free(&a);

    assert_int_equal(orch_npy_load(DATA "npy_i4.npy", ORCH_NPY_ANY, &a, &err), ORCH_OK);
    assert_int_equal(a.dtype, ORCH_NPY_I64);
    assert_true(a.i64[0] == 3 && a.i64[1] == -1 && a.i64[2] == 7);
    orch_npy_free(&a);

    assert_int_equal(orch_npy_load(DATA "npy_u1.npy", ORCH_NPY_I64, &a, &err), ORCH_OK);
    assert_true(a.i64[0] == 0 && a.i64[1] == 255 && a.i64[2] == 7 && a.i64[3] == 128);
    orch_npy_free(&a);

    assert_int_equal(orch_npy_load(DATA "npy_v2.npy", ORCH_NPY_F32, &a, &err), ORCH_OK);
    assert_true(a.ndim == 2 && a.f32[0] == 1.5f && a.f32[3] == 8.0f);
    orch_npy_free(&a);

    assert_int_equal(orch_npy_load(DATA "npy_scalar.npy", ORCH_NPY_F32, &a, &err), ORCH_OK);
    assert_true(a.ndim == 0 && a.numel == 1 && a.f32[0] == 3.5f);
    orch_npy_free(&a);

    assert_int_equal(orch_npy_load(DATA "npy_empty.npy", ORCH_NPY_F32, &a, &err), ORCH_OK);
    assert_true(a.ndim == 2 && a.numel == 0 && a.shape[1] == 3 && a.f32 != NULL);
    orch_npy_free(&a);
}

static void test_refused_fixtures(void **state)
{
    (void)state;
    expect_load_error(DATA "npy_f2.npy", ORCH_NPY_F32,
                      "npy_f2.npy: dtype '<f2' not supported (expected float32 '<f4')");
    expect_load_error(DATA "npy_f2.npy", ORCH_NPY_ANY,
                      "npy_f2.npy: dtype '<f2' not supported (expected float32 '<f4' or int64 "
                      "'<i8')");
    expect_load_error(DATA "npy_i8_grid.npy", ORCH_NPY_F32,
                      "npy_i8_grid.npy: dtype '<i8' not supported (expected float32 '<f4')");
    expect_load_error(DATA "npy_f4_2x3.npy", ORCH_NPY_I64,
                      "npy_f4_2x3.npy: dtype '<f4' not supported (expected int64 '<i8')");
    expect_load_error(DATA "npy_be.npy", ORCH_NPY_F32,
                      "npy_be.npy: big-endian dtype '>f4' not supported");
    expect_load_error(DATA "npy_fortran.npy", ORCH_NPY_F32,
                      "npy_fortran.npy: fortran_order True not supported");
    expect_load_error(DATA "no_such.npy", ORCH_NPY_F32, "no_such.npy: cannot open");
}

/* The writer lays files out byte for byte as numpy.save does. */
static void test_save_matches_numpy(void **state)
{
    (void)state;
    orch_err err;
    float f[6];
    for (int i = 0; i < 6; i++)
        f[i] = i * 0.5f - 1.0f;
    const int64_t s23[2] = {2, 3}, s23i[2] = {2, 3}, s03[2] = {0, 3};
    const int64_t grid[6] = {1, 2, 4, 1, 4, 2};
    const float scalar = 3.5f;
    struct {
        const char *fixture;
        int rc;
    } cases[4];
    cases[0].fixture = DATA "npy_f4_2x3.npy";
    cases[0].rc = orch_npy_save_f32(tmp_path("f4.npy"), f, s23, 2, &err);
    cases[1].fixture = DATA "npy_i8_grid.npy";
    cases[1].rc = orch_npy_save_i64(tmp_path("i8.npy"), grid, s23i, 2, &err);
    cases[2].fixture = DATA "npy_scalar.npy";
    cases[2].rc = orch_npy_save_f32(tmp_path("scalar.npy"), &scalar, NULL, 0, &err);
    cases[3].fixture = DATA "npy_empty.npy";
    cases[3].rc = orch_npy_save_f32(tmp_path("empty.npy"), NULL, s03, 2, &err);
    const char *mine[4] = {"f4.npy", "i8.npy", "scalar.npy", "empty.npy"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cases[i].rc, ORCH_OK);
        size_t na, nb;
        unsigned char *a = slurp(cases[i].fixture, &na);
        unsigned char *b = slurp(tmp_path(mine[i]), &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        free(a);
        free(b);
    }
    const int64_t neg[1] = {-1};
    expect_error(orch_npy_save_f32(tmp_path("neg.npy"), f, neg, 1, &err), &err, ORCH_EINVAL,
                 "negative dimension");
    expect_error(orch_npy_save_f32(tmp_path("no/dir/x.npy"), f, s23, 2, &err), &err, ORCH_EIO,
                 "cannot create a temporary file");
}

/* ---------------------------------------------------------- bad files */

static void test_bad_files(void **state)
{
    (void)state;
    const float d2[2] = {1, 2};
    const char *p = tmp_path("magic.npy");
    write_bytes(p, "\x93NUMPZ\x01\x00\x00\x00xxxxxxxx", 18);
    expect_load_error(p, ORCH_NPY_F32, "magic.npy: not a .npy file (bad magic)");

    p = tmp_path("short.npy");
    write_bytes(p, "\x93NUM", 4);
    expect_load_error(p, ORCH_NPY_F32,
                      "short.npy: truncated: 4 bytes, too short for a .npy "
                      "header");

    p = tmp_path("version.npy");
    write_bytes(p, "\x93NUMPY\x04\x00\x00\x00", 10);
    expect_load_error(p, ORCH_NPY_F32, "version.npy: unsupported .npy format version 4.0");

    p = tmp_path("hdr_trunc.npy");
    write_bytes(p, "\x93NUMPY\x01\x00\x76\x00{'descr'", 18);
    expect_load_error(p, ORCH_NPY_F32,
                      "hdr_trunc.npy: truncated: header length 118 but only 8 "
                      "bytes follow");

    p = make_npy("nobrace.npy", "'descr': '<f4'}\n", d2, 8);
    expect_load_error(p, ORCH_NPY_F32,
                      "nobrace.npy: malformed header dict: it does not start with '{'");

    p = make_npy("nokey.npy", "{'descr': '<f4', 'fortran_order': False, }\n", d2, 8);
    expect_load_error(p, ORCH_NPY_F32, "nokey.npy: malformed header dict: it lacks 'shape'");

    p = make_npy("badtuple.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }\n",
                 d2, 8);
    expect_load_error(p, ORCH_NPY_F32,
                      "badtuple.npy: malformed header dict: shape entry is not a non-negative "
                      "integer");

    p = make_npy("badbool.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }\n", d2, 8);
    expect_load_error(p, ORCH_NPY_F32,
                      "badbool.npy: malformed header dict: fortran_order is not True or False");

    p = make_npy("extrakey.npy",
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", d2, 8);
    expect_load_error(p, ORCH_NPY_F32, "extrakey.npy: malformed header dict: unexpected key 'x'");

    p = make_npy("struct.npy",
                 "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", d2, 8);
    expect_load_error(p, ORCH_NPY_ANY, "struct.npy: structured dtype not supported");

    p = make_npy("i2.npy", "{'descr': '<i2', 'fortran_order': False, 'shape': (4,), }\n", d2, 8);
    expect_load_error(p, ORCH_NPY_I64, "i2.npy: dtype '<i2' not supported (expected int64 '<i8')");

    p = make_npy("trunc.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", d2, 8);
    expect_load_error(p, ORCH_NPY_F32,
                      "trunc.npy: truncated: 8 bytes of data, but shape (3,) of '<f4' needs 12");

    p = make_npy("extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", d2, 8);
    expect_load_error(p, ORCH_NPY_F32,
                      "extra.npy: 8 bytes of data, but shape (1,) of '<f4' needs 4");

    /* fortran_order True is harmless for one dimension; double quotes and
     * Python 2 longs are accepted */
    p = make_npy("f1d.npy", "{\"descr\": \"<f4\", \"fortran_order\": True, \"shape\": (2L,)}\n", d2,
                 8);
    orch_npy a;
    orch_err err;
    int rc = orch_npy_load(p, ORCH_NPY_F32, &a, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_true(a.numel == 2 && a.f32[1] == 2.0f);
    orch_npy_free(&a);
}

/* ------------------------------------------------------------ dataset */

/* The tiny processor: patch_dim 24 (3*2*2*2), merge 2. */
#define PD 24

static void write_triple(const int64_t *grid, int n_images, int64_t rows, const char *labels_kind)
{
    orch_err err;
    float *pv = malloc((size_t)rows * PD * sizeof *pv);
    assert_non_null(pv);
    for (int64_t i = 0; i < rows * PD; i++)
        pv[i] = (float)i;
    const int64_t spv[2] = {rows, PD}, sg[2] = {n_images, 3};
    assert_int_equal(orch_npy_save_f32(tmp_path("pv.npy"), pv, spv, 2, &err), ORCH_OK);
    assert_int_equal(orch_npy_save_i64(tmp_path("grid.npy"), grid, sg, 2, &err), ORCH_OK);
    free(pv);
    if (strcmp(labels_kind, "class") == 0) {
        int64_t y[32];
        for (int i = 0; i < n_images; i++)
            y[i] = (i * 3) % 4;
        const int64_t sy[1] = {n_images};
        assert_int_equal(orch_npy_save_i64(tmp_path("labels.npy"), y, sy, 1, &err), ORCH_OK);
    } else {
        float y[64];
        for (int i = 0; i < 2 * n_images; i++)
            y[i] = i * 0.5f;
        const int64_t sy[2] = {n_images, 2};
        assert_int_equal(orch_npy_save_f32(tmp_path("labels.npy"), y, sy, 2, &err), ORCH_OK);
    }
}

static void test_dataset_load_and_batch(void **state)
{
    (void)state;
    const int64_t grid[9] = {1, 2, 2, 1, 2, 4, 2, 2, 2};
    write_triple(grid, 3, 4 + 8 + 8, "class");
    orch_dataset ds;
    orch_err err;
    int rc = orch_npy_dataset_load(tmp_path("pv.npy"), tmp_path("grid.npy"), tmp_path("labels.npy"),
                                   PD, 2, &ds, &err);
    if (rc != ORCH_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n_images, 3);
    assert_int_equal(ds.label_kind, ORCH_LABEL_CLASS);
    assert_int_equal(ds.n_classes, 4); /* labels 0, 3, 2: max + 1 */
    assert_int_equal(ds.patch_offset[1], 4);
    assert_int_equal(ds.patch_offset[2], 12);
    assert_int_equal(ds.patch_offset[3], 20);
    assert_int_equal(orch_dataset_patches(&ds, 1), 8);

    orch_batch b = {0};
    const int idx[3] = {2, 0, 2};
    assert_int_equal(orch_dataset_batch(&ds, idx, 3, &b, &err), ORCH_OK);
    assert_int_equal(b.n_images, 3);
    assert_int_equal(b.n_patches, 8 + 4 + 8);
    assert_true(b.pixel_values[0] == (float)(12 * PD));
    assert_true(b.pixel_values[8 * PD] == 0.0f);
    assert_true(b.pixel_values[12 * PD] == (float)(12 * PD));
    assert_true(b.grid_thw[0] == 2 && b.grid_thw[3] == 1 && b.grid_thw[5] == 2);
    assert_true(b.class_labels[0] == 2 && b.class_labels[1] == 0 && b.class_labels[2] == 2);
    const int one[1] = {1};
    assert_int_equal(orch_dataset_batch(&ds, one, 1, &b, &err), ORCH_OK); /* reuses buffers */
    assert_int_equal(b.n_patches, 8);
    assert_true(b.pixel_values[0] == (float)(4 * PD));
    const int bad[1] = {3};
    expect_error(orch_dataset_batch(&ds, bad, 1, &b, &err), &err, ORCH_EINVAL,
                 "batch index 3 is outside [0, 3)");
    orch_batch_free(&b);
    orch_dataset_free(&ds);

    /* regression targets (images, 2) and no labels at all */
    write_triple(grid, 3, 20, "regression");
    assert_int_equal(orch_npy_dataset_load(tmp_path("pv.npy"), tmp_path("grid.npy"),
                                           tmp_path("labels.npy"), PD, 2, &ds, &err),
                     ORCH_OK);
    assert_int_equal(ds.label_kind, ORCH_LABEL_REGRESSION);
    assert_int_equal(ds.n_targets, 2);
    assert_int_equal(orch_dataset_batch(&ds, idx, 3, &b, &err), ORCH_OK);
    assert_true(b.targets[0] == 2.0f && b.targets[1] == 2.5f && b.targets[2] == 0.0f);
    orch_batch_free(&b);
    orch_dataset_free(&ds);
    assert_int_equal(
        orch_npy_dataset_load(tmp_path("pv.npy"), tmp_path("grid.npy"), NULL, PD, 2, &ds, &err),
        ORCH_OK);
    assert_int_equal(ds.label_kind, ORCH_LABEL_NONE);
    orch_dataset_free(&ds);
}

static void expect_dataset_error(const char *labels, int patch_dim, const char *needle)
{
    orch_dataset ds;
    orch_err err;
    orch_err_clear(&err);
    int rc = orch_npy_dataset_load(tmp_path("pv.npy"), tmp_path("grid.npy"), labels, patch_dim, 2,
                                   &ds, &err);
    expect_error(rc, &err, ORCH_EINVAL, needle);
    assert_null(ds.grid_thw);
    assert_null(ds.pixel_values);
}

static void test_dataset_errors(void **state)
{
    (void)state;
    orch_err err;
    const int64_t ok[6] = {1, 2, 2, 1, 2, 4};
    write_triple(ok, 2, 12, "class");
    expect_dataset_error(NULL, 1176,
                         "pv.npy: pixel_values has shape (12, 24), expected (patches, 1176)");

    const int64_t swapped[6] = {24, 24, 1, 1, 2, 2};
    write_triple(swapped, 2, 580, "class");
    expect_dataset_error(NULL, PD,
                         "grid.npy: image_grid_thw row 0 = [24, 24, 1]: the order is [t, h, w]; "
                         "did you mean [1, 24, 24]?");

    const int64_t odd[6] = {1, 2, 2, 1, 3, 4};
    write_triple(odd, 2, 16, "class");
    expect_dataset_error(NULL, PD,
                         "grid.npy: image_grid_thw row 1 = [1, 3, 4]: h=3 is not a multiple of the "
                         "merge size 2");

    const int64_t zero[6] = {1, 2, 2, 0, 2, 2};
    write_triple(zero, 2, 4, "class");
    expect_dataset_error(NULL, PD,
                         "grid.npy: image_grid_thw row 1 = [0, 2, 2]: every entry must "
                         "be >= 1");

    write_triple(ok, 2, 13, "class");
    expect_dataset_error(NULL, PD,
                         "grid.npy: image_grid_thw sums to 12 patches (sum of t*h*w) but ");
    expect_dataset_error(NULL, PD, "pv.npy has 13 rows");

    write_triple(ok, 2, 12, "class");
    const int64_t flat[3] = {1, 2, 2}, s3[1] = {3};
    assert_int_equal(orch_npy_save_i64(tmp_path("grid.npy"), flat, s3, 1, &err), ORCH_OK);
    expect_dataset_error(NULL, PD,
                         "grid.npy: image_grid_thw has shape (3,), expected (images, 3); "
                         "save one image as (1, 3)");

    write_triple(ok, 2, 12, "class");
    const int64_t y3[3] = {0, 1, 1}, sy3[1] = {3};
    assert_int_equal(orch_npy_save_i64(tmp_path("labels.npy"), y3, sy3, 1, &err), ORCH_OK);
    expect_dataset_error(tmp_path("labels.npy"), PD,
                         "labels.npy: 3 labels for 2 images (image_grid_thw rows)");
    const int64_t yneg[2] = {0, -1}, sy2[1] = {2};
    assert_int_equal(orch_npy_save_i64(tmp_path("labels.npy"), yneg, sy2, 1, &err), ORCH_OK);
    expect_dataset_error(tmp_path("labels.npy"), PD,
                         "labels.npy: class id -1 of image 1 is negative");
    const int64_t yhuge[2] = {0, (int64_t)1 << 40};
    assert_int_equal(orch_npy_save_i64(tmp_path("labels.npy"), yhuge, sy2, 1, &err), ORCH_OK);
    expect_dataset_error(tmp_path("labels.npy"), PD,
                         "labels.npy: class id 1099511627776 of image 1 is implausibly large");
    const float ynan[4] = {0.0f, 1.0f, NAN, 0.0f};
    const int64_t syf[2] = {2, 2};
    assert_int_equal(orch_npy_save_f32(tmp_path("labels.npy"), ynan, syf, 2, &err), ORCH_OK);
    expect_dataset_error(tmp_path("labels.npy"), PD, "labels.npy: target 0 of image 1 is NaN");
    const int64_t y2d[4] = {0, 1, 1, 0}, sy22[2] = {2, 2};
    assert_int_equal(orch_npy_save_i64(tmp_path("labels.npy"), y2d, sy22, 2, &err), ORCH_OK);
    expect_dataset_error(tmp_path("labels.npy"), PD,
                         "labels.npy: labels must be (images,) int64 class ids");
    expect_dataset_error(tmp_path("nope.npy"), PD, "nope.npy: cannot open");
}

/* 16 images of 2^60 patches and one of 4: the int64 sum wraps to exactly
 * the 4 rows of pixel_values, so an unchecked sum passed validation. */
static void test_dataset_patch_count_overflow(void **state)
{
    (void)state;
    int64_t grid[17 * 3];
    for (int i = 0; i < 16; i++)
        grid[3 * i] = grid[3 * i + 1] = grid[3 * i + 2] = (int64_t)1 << 20;
    grid[48] = 1;
    grid[49] = grid[50] = 2;
    write_triple(grid, 17, 4, "class");
    const char *want = "grid.npy: image_grid_thw row 7 = [1048576, 1048576, 1048576] takes the "
                       "patch count (sum of t*h*w) past 2^63 - 1";
    expect_dataset_error(NULL, PD, want);
    orch_dataset ds;
    orch_err err;
    expect_error(
        orch_npy_dataset_index(tmp_path("pv.npy"), tmp_path("grid.npy"), NULL, PD, 2, &ds, &err),
        &err, ORCH_EINVAL, want);
    assert_null(ds.grid_thw);
}

/* The plan-time path: the header alone, and an index without pixels. */
static void test_header_and_index(void **state)
{
    (void)state;
    const int64_t grid[6] = {1, 2, 2, 1, 2, 4};
    write_triple(grid, 2, 12, "regression");
    orch_npy h;
    orch_err err;
    assert_int_equal(orch_npy_read_header(tmp_path("pv.npy"), ORCH_NPY_F32, &h, &err), ORCH_OK);
    assert_int_equal(h.ndim, 2);
    assert_true(h.shape[0] == 12 && h.shape[1] == PD && h.numel == 12 * PD);
    assert_string_equal(h.descr, "<f4");
    assert_null(h.f32);
    assert_null(h.i64);
    expect_error(orch_npy_read_header(tmp_path("grid.npy"), ORCH_NPY_F32, &h, &err), &err,
                 ORCH_EINVAL, "grid.npy: dtype '<i8' not supported");
    orch_dataset ds;
    assert_int_equal(orch_npy_dataset_index(tmp_path("pv.npy"), tmp_path("grid.npy"),
                                            tmp_path("labels.npy"), PD, 2, &ds, &err),
                     ORCH_OK);
    assert_int_equal(ds.n_images, 2);
    assert_int_equal(ds.patch_offset[2], 12);
    assert_int_equal(ds.label_kind, ORCH_LABEL_REGRESSION);
    assert_int_equal(ds.n_targets, 2);
    assert_null(ds.pixel_values);
    orch_dataset_free(&ds);
    /* a truncated pixel_values is caught from its header and size alone */
    write_triple(grid, 2, 13, "class");
    expect_error(
        orch_npy_dataset_index(tmp_path("pv.npy"), tmp_path("grid.npy"), NULL, PD, 2, &ds, &err),
        &err, ORCH_EINVAL, "pv.npy has 13 rows");
}

/* --------------------------------------------------------- epoch order */

static void test_order(void **state)
{
    (void)state;
    orch_dataset ds = {0};
    ds.n_images = 50;
    int a[50], b[50], c[50], seen[50] = {0};
    orch_dataset_order(&ds, 42, 0, a);
    orch_dataset_order(&ds, 42, 0, b);
    assert_memory_equal(a, b, sizeof a);
    for (int i = 0; i < 50; i++)
        seen[a[i]]++;
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    orch_dataset_order(&ds, 42, 1, c);
    assert_memory_not_equal(a, c, sizeof a);
    orch_dataset_order(&ds, 43, 0, c);
    assert_memory_not_equal(a, c, sizeof a);
    int moved = 0;
    for (int i = 0; i < 50; i++)
        moved += a[i] != i;
    assert_true(moved > 40);
    /* pinned: the order of (n=8, seed=1, epoch=2) never changes across versions */
    ds.n_images = 8;
    int p[8];
    orch_dataset_order(&ds, 1, 2, p);
    const int pinned[8] = {3, 6, 0, 1, 7, 2, 5, 4}; /* from the documented algorithm, in Python */
    assert_memory_equal(p, pinned, sizeof p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_refused_fixtures),
        cmocka_unit_test(test_save_matches_numpy),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_dataset_load_and_batch),
        cmocka_unit_test(test_dataset_errors),
        cmocka_unit_test(test_dataset_patch_count_overflow),
        cmocka_unit_test(test_header_and_index),
        cmocka_unit_test(test_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
