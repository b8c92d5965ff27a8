/* test_cli_files.c - bad weights and data files through `orch run`.
 *
 * Each case writes a small pipeline that points at a broken safetensors or
 * .npy file and runs it: the user must get exit code 2 and exactly one line
 * on stderr, "orch: ..." naming the file and what is wrong, and the store
 * must hold no run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/testutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return make_temp_dir(dir, sizeof dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Writes a safetensors file with a raw JSON header and data_bytes zero bytes. */
static void write_safetensors(const char *path, const char *header, size_t data_bytes,
                              int64_t header_len_override)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t len = header_len_override >= 0 ? (uint64_t)header_len_override : strlen(header);
    fwrite(&len, sizeof len, 1, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_bytes; i++)
        fputc(0, f);
    fclose(f);
}

/* Writes an .npy v1 file with the given header dict and payload bytes. */
static void write_npy(const char *path, const char *dict, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char header[256];
    int n = snprintf(header, sizeof header, "%s", dict);
    /* pad so magic(6)+version(2)+len(2)+header ends on a multiple of 64, newline last */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hlen, 2, 1, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (bytes > 0)
        fwrite(data, 1, bytes, f);
    fclose(f);
}

static const char *pipeline_with_weights =
    "return {\n"
    "  model = { preset = \"tiny\", weights = \"%s\" },\n"
    "  data = { source = \"synthetic\", samples = 4, classes = 2, image_size = {16, 16} },\n"
    "  strategy = surgery {},\n"
    "  head = { kind = \"classifier\", classes = 2 },\n"
    "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
    "  schedule = { steps = 1, batch_size = 2 },\n"
    "}\n";

static const char *pipeline_with_npy =
    "return {\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"npy\", pixel_values = \"%s/pv.npy\", image_grid_thw = \"%s/grid.npy\",\n"
    "           labels = \"%s/labels.npy\" },\n"
    "  strategy = detach {},\n"
    "  head = { kind = \"classifier\", classes = 2 },\n"
    "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
    "  schedule = { steps = 1, batch_size = 1 },\n"
    "}\n";

/* Runs `orch CMD` on the pipeline at path; asserts exit 2, one line with
 * want, no run. */
static void expect_refused_by(const char *cmd, const char *pipeline_path, const char *want)
{
    char db[512];
    snprintf(db, sizeof db, "%s/orch.db", dir);
    const char *argv[] = {cmd, "--db", db, pipeline_path, NULL};
    cli_result r;
    assert_int_equal(run_orch(argv, NULL, &r), 0);
    if (r.exit_code != 2 || strstr(r.err, want) == NULL || strncmp(r.err, "orch: ", 6) != 0)
        fail_msg("orch %s: want exit 2 and '%s', got exit %d, stderr: %s", cmd, want, r.exit_code,
                 r.err);
    const char *newline = strchr(r.err, '\n');
    assert_non_null(newline);
    assert_string_equal(newline + 1, ""); /* exactly one line */
    cli_result_free(&r);
    const char *query[] = {"query", "--db", db, "--csv", "SELECT count(*) AS runs FROM runs", NULL};
    assert_int_equal(run_orch(query, NULL, &r), 0);
    if (r.exit_code == 0)
        assert_non_null(strstr(r.out, "\n0"));
    cli_result_free(&r);
}

static void expect_refused(const char *pipeline_path, const char *want)
{
    expect_refused_by("run", pipeline_path, want);
}

static void run_weights_case(const char *file, const char *header, size_t data_bytes,
                             int64_t header_len, const char *want)
{
    char weights[512], pipeline[512], text[2048];
    snprintf(weights, sizeof weights, "%s/%s", dir, file);
    write_safetensors(weights, header, data_bytes, header_len);
    snprintf(pipeline, sizeof pipeline, "%s/p.lua", dir);
    snprintf(text, sizeof text, pipeline_with_weights, weights);
    assert_int_equal(write_text_file(pipeline, text), 0);
    expect_refused(pipeline, want);
}

static void test_truncated_weights(void **state)
{
    (void)state;
    run_weights_case("trunc.safetensors",
                     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 4, -1,
                     "trunc.safetensors");
}

static void test_header_longer_than_file(void **state)
{
    (void)state;
    run_weights_case("long.safetensors", "{}", 0, 4096, "long.safetensors");
}

static void test_not_json_header(void **state)
{
    (void)state;
    run_weights_case("garbage.safetensors", "this is not json", 0, -1, "garbage.safetensors");
}

static void test_unsupported_dtype(void **state)
{
    (void)state;
    run_weights_case("i8.safetensors",
                     "{\"visual.patch_embed.proj.weight\":{\"dtype\":\"I8\",\"shape\":[32,3,2,2,2],"
                     "\"data_offsets\":[0,768]}}",
                     768, -1, "I8");
}

static void test_missing_tensor(void **state)
{
    (void)state;
    run_weights_case(
        "other.safetensors",
        "{\"something.else\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1,
        "visual.patch_embed.proj.weight");
}

static void test_wrong_shape(void **state)
{
    (void)state;
    run_weights_case("shape.safetensors",
                     "{\"visual.patch_embed.proj.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                     "\"data_offsets\":[0,16]}}",
                     16, -1, "[2, 2]");
}

/* npy: pixel_values of one image [1, 4, 4] (16 patches x 24), labels [1]. */
static void npy_case(const char *pv_dict, size_t pv_bytes, const char *grid_dict,
                     const int64_t *grid, size_t grid_bytes, const char *want)
{
    char path[512], pipeline[512], text[4096];
    float *pv = calloc(pv_bytes / sizeof(float) + 1, sizeof(float));
    assert_non_null(pv);
    snprintf(path, sizeof path, "%s/pv.npy", dir);
    write_npy(path, pv_dict, pv, pv_bytes);
    snprintf(path, sizeof path, "%s/grid.npy", dir);
    write_npy(path, grid_dict, grid, grid_bytes);
    int64_t labels[1] = {1};
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    write_npy(path, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", labels, 8);
    snprintf(pipeline, sizeof pipeline, "%s/p.lua", dir);
    snprintf(text, sizeof text, pipeline_with_npy, dir, dir, dir);
    assert_int_equal(write_text_file(pipeline, text), 0);
    expect_refused(pipeline, want);
    free(pv);
}

static const char *pv_ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (16, 24), }";
static const char *grid_ok = "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3), }";

static void test_npy_truncated(void **state)
{
    (void)state;
    const int64_t grid[3] = {1, 4, 4};
    npy_case(pv_ok, 100, grid_ok, grid, sizeof grid, "pv.npy");
}

static void test_npy_wrong_dtype(void **state)
{
    (void)state;
    const int64_t grid[3] = {1, 4, 4};
    npy_case("{'descr': '<f2', 'fortran_order': False, 'shape': (16, 24), }", 16 * 24 * 2, grid_ok,
             grid, sizeof grid, "<f2");
}

static void test_npy_grid_order(void **state)
{
    (void)state;
    const int64_t grid[3] = {4, 4, 1};
    npy_case(pv_ok, 16 * 24 * 4, grid_ok, grid, sizeof grid, "[t, h, w]");
}

static void test_npy_rows_mismatch(void **state)
{
    (void)state;
    const int64_t grid[3] = {1, 4, 6};
    npy_case(pv_ok, 16 * 24 * 4, grid_ok, grid, sizeof grid, "grid.npy");
}

/* ------------------------------------------------ data checked at plan */

/* The data files are checked by `orch plan` (pixel_values by its header)
 * as well as by `orch run`: each case below is refused by both. */
static void expect_refused_by_plan_and_run(const char *pipeline_path, const char *want)
{
    expect_refused_by("plan", pipeline_path, want);
    expect_refused_by("run", pipeline_path, want);
}

static const char *pipeline_with_head =
    "return {\n"
    "  model = { preset = \"tiny\" },\n"
    "  data = { source = \"npy\", pixel_values = \"%s/pv.npy\", image_grid_thw = \"%s/grid.npy\",\n"
    "           labels = \"%s/labels.npy\" },\n"
    "  strategy = detach {},\n"
    "  head = %s,\n"
    "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
    "  schedule = { steps = 1, batch_size = 1 },\n"
    "}\n";

/* Writes pv.npy with rows x 24 zeros, grid.npy (n_images, 3), labels.npy
 * (dict and bytes as given) and p.lua with head; returns p.lua's path. */
static const char *write_npy_pipeline(int64_t rows, const int64_t *grid, int n_images,
                                      const char *labels_dict, const void *labels,
                                      size_t labels_bytes, const char *head)
{
    static char pipeline[512];
    char path[512], dict[128], text[4096];
    float *pv = calloc((size_t)rows * 24, sizeof(float));
    assert_non_null(pv);
    snprintf(path, sizeof path, "%s/pv.npy", dir);
    snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, 24), }",
             (long long)rows);
    write_npy(path, dict, pv, (size_t)rows * 24 * sizeof(float));
    free(pv);
    snprintf(path, sizeof path, "%s/grid.npy", dir);
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%d, 3), }",
             n_images);
    write_npy(path, dict, grid, (size_t)n_images * 3 * sizeof(int64_t));
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    write_npy(path, labels_dict, labels, labels_bytes);
    snprintf(pipeline, sizeof pipeline, "%s/p.lua", dir);
    snprintf(text, sizeof text, pipeline_with_head, dir, dir, dir, head);
    assert_int_equal(write_text_file(pipeline, text), 0);
    return pipeline;
}

static const char *classifier2 = "{ kind = \"classifier\", classes = 2 }";
static const char *regression2 = "{ kind = \"regression\", outputs = 2 }";
static const int64_t grid2[6] = {1, 4, 4, 1, 2, 2}; /* 16 + 4 patches */

/* 16 images of 2^60 patches each and one of 16: the int64 sum wraps to
 * exactly the 16 rows of pixel_values, so an unchecked sum passed and the
 * run crashed. */
static void test_npy_patch_count_overflow(void **state)
{
    (void)state;
    int64_t grid[17 * 3];
    for (int i = 0; i < 16; i++)
        grid[3 * i] = grid[3 * i + 1] = grid[3 * i + 2] = (int64_t)1 << 20;
    grid[48] = 1;
    grid[49] = grid[50] = 4;
    int64_t labels[17] = {0};
    const char *p = write_npy_pipeline(16, grid, 17,
                                       "{'descr': '<i8', 'fortran_order': False, 'shape': (17,), }",
                                       labels, sizeof labels, classifier2);
    expect_refused_by_plan_and_run(p,
                                   "grid.npy: image_grid_thw row 7 = [1048576, 1048576, "
                                   "1048576] takes the patch count (sum of t*h*w) past 2^63 - 1");
}

static void test_npy_float_labels_classifier(void **state)
{
    (void)state;
    const float labels[2] = {0.0f, 1.0f};
    const char *p = write_npy_pipeline(20, grid2, 2,
                                       "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                       labels, sizeof labels, classifier2);
    expect_refused_by_plan_and_run(p, "labels.npy: float labels, but head.kind = \"classifier\" "
                                      "needs (images,) int64 class ids in [0, 2)");
}

static void test_npy_class_id_out_of_range(void **state)
{
    (void)state;
    const int64_t labels[2] = {1, 2};
    const char *p = write_npy_pipeline(20, grid2, 2,
                                       "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                       labels, sizeof labels, classifier2);
    expect_refused_by_plan_and_run(
        p, "labels.npy: class id 2 of image 1 is outside [0, 2) (head.classes = 2)");
}

static void test_npy_negative_class_id(void **state)
{
    (void)state;
    const int64_t labels[2] = {0, -1};
    const char *p = write_npy_pipeline(20, grid2, 2,
                                       "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                       labels, sizeof labels, classifier2);
    expect_refused_by_plan_and_run(p, "labels.npy: class id -1 of image 1 is negative");
}

static void test_npy_class_ids_regression(void **state)
{
    (void)state;
    const int64_t labels[2] = {0, 1};
    const char *p = write_npy_pipeline(20, grid2, 2,
                                       "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                       labels, sizeof labels, regression2);
    expect_refused_by_plan_and_run(p, "labels.npy: int64 class ids, but head.kind = "
                                      "\"regression\" needs float32 targets of shape (images, 2)");
}

static void test_npy_regression_width(void **state)
{
    (void)state;
    const float labels[6] = {0, 1, 2, 3, 4, 5};
    const char *p = write_npy_pipeline(
        20, grid2, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", labels,
        sizeof labels, regression2);
    expect_refused_by_plan_and_run(p, "labels.npy: 3 targets per image, but head.outputs = 2");
    /* one value per image is (images,) only when head.outputs is 1 */
    p = write_npy_pipeline(20, grid2, 2,
                           "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", labels,
                           2 * sizeof(float), regression2);
    expect_refused_by_plan_and_run(p, "labels.npy: 1 target per image, but head.outputs = 2");
}

static void test_npy_nan_target(void **state)
{
    (void)state;
    const float labels[4] = {0.0f, 1.0f, 2.0f, NAN};
    const char *p = write_npy_pipeline(
        20, grid2, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", labels,
        sizeof labels, regression2);
    expect_refused_by_plan_and_run(p, "labels.npy: target 1 of image 1 is NaN");
}

/* Synthetic images carry class ids: a regression head cannot use them. */
static void test_synthetic_regression(void **state)
{
    (void)state;
    char pipeline[512];
    snprintf(pipeline, sizeof pipeline, "%s/p.lua", dir);
    assert_int_equal(
        write_text_file(pipeline,
                        "return {\n"
                        "  model = { preset = \"tiny\" },\n"
                        "  data = { source = \"synthetic\", samples = 4, image_size = {16, 16} },\n"
                        "  strategy = surgery {},\n"
                        "  head = { kind = \"regression\", outputs = 2 },\n"
                        "  optimizer = { kind = \"sgd\", lr = 0.01 },\n"
                        "  schedule = { steps = 1, batch_size = 2 },\n"
                        "}\n"),
        0);
    expect_refused_by_plan_and_run(pipeline, "p.lua: synthetic data has int64 class ids, but "
                                             "head.kind = \"regression\" needs float32 targets");
}

/* Labels that fit: plan accepts them (and the checks do not over-refuse). */
static void test_npy_labels_that_fit(void **state)
{
    (void)state;
    char db[512];
    snprintf(db, sizeof db, "%s/orch.db", dir);
    const float targets[2] = {0.5f, -1.0f};
    const int64_t ids[2] = {1, 0};
    const char *cases[][3] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "t",
         "{ kind = \"regression\", outputs = 1 }"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }", "t",
         "{ kind = \"regression\", outputs = 1 }"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", "i", classifier2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int is_ids = cases[i][1][0] == 'i';
        const char *p = write_npy_pipeline(20, grid2, 2, cases[i][0],
                                           is_ids ? (const void *)ids : (const void *)targets,
                                           is_ids ? sizeof ids : sizeof targets, cases[i][2]);
        const char *argv[] = {"plan", "--db", db, p, NULL};
        cli_result r;
        assert_int_equal(run_orch(argv, NULL, &r), 0);
        if (r.exit_code != 0 || r.err[0] != '\0')
            fail_msg("case %zu: want exit 0 and no stderr, got exit %d, stderr: %s", i, r.exit_code,
                     r.err);
        cli_result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_weights),
        cmocka_unit_test(test_header_longer_than_file),
        cmocka_unit_test(test_not_json_header),
        cmocka_unit_test(test_unsupported_dtype),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_npy_truncated),
        cmocka_unit_test(test_npy_wrong_dtype),
        cmocka_unit_test(test_npy_grid_order),
        cmocka_unit_test(test_npy_rows_mismatch),
        cmocka_unit_test(test_npy_patch_count_overflow),
        cmocka_unit_test(test_npy_float_labels_classifier),
        cmocka_unit_test(test_npy_class_id_out_of_range),
        cmocka_unit_test(test_npy_negative_class_id),
        cmocka_unit_test(test_npy_class_ids_regression),
        cmocka_unit_test(test_npy_regression_width),
        cmocka_unit_test(test_npy_nan_target),
        cmocka_unit_test(test_npy_labels_that_fit),
        cmocka_unit_test(test_synthetic_regression),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
