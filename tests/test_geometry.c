/* test_geometry.c - window index, cu_seqlens and rotary positions against
 * the vectors re-derived from Hugging Face's algorithm (tiny config:
 * merge 2, window 8 px / merge 2 / patch 2 = 2 merged tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/geometry.h"

static void assert_ints(const int32_t *got, const int32_t *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i])
            fail_msg("index %d: got %d, want %d", i, got[i], want[i]);
    }
}

static void test_partial_windows(void **state)
{
    (void)state;
    const int64_t grid[][3] = {{1, 6, 10}};
    orch_geometry g;
    assert_int_equal(orch_geometry_build(grid, 1, 2, 2, &g, NULL), ORCH_OK);
    const int32_t widx[] = {0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 12, 13, 14};
    const int32_t cu[] = {0, 16, 32, 40, 48, 56, 60};
    assert_int_equal(g.n_units, 15);
    assert_ints(g.window_index, widx, 15);
    assert_int_equal(g.n_window_segs, 6);
    assert_ints(g.cu_window, cu, 7);
    assert_int_equal(g.n_full_segs, 1);
    assert_int_equal(g.cu_full[1], 60);
    orch_geometry_free(&g);
}

static void test_divisible_grid_drops_empty_windows(void **state)
{
    (void)state;
    const int64_t grid[][3] = {{1, 4, 4}};
    orch_geometry g;
    assert_int_equal(orch_geometry_build(grid, 1, 2, 2, &g, NULL), ORCH_OK);
    const int32_t widx[] = {0, 1, 2, 3};
    assert_ints(g.window_index, widx, 4);
    assert_int_equal(g.n_window_segs, 1);
    assert_int_equal(g.cu_window[1], 16);
    /* rotary ids for (1,4,4) in row order, unchanged by the identity permutation */
    const int32_t ph[] = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3};
    const int32_t pw[] = {0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3};
    assert_ints(g.pos_h, ph, 16);
    assert_ints(g.pos_w, pw, 16);
    orch_geometry_free(&g);
}

static void test_two_images(void **state)
{
    (void)state;
    const int64_t grid[][3] = {{1, 6, 10}, {1, 4, 4}};
    orch_geometry g;
    assert_int_equal(orch_geometry_build(grid, 2, 2, 2, &g, NULL), ORCH_OK);
    const int32_t widx[] = {0, 1, 5, 6, 2, 3, 7, 8, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    const int32_t cu[] = {0, 16, 32, 40, 48, 56, 60, 76};
    const int32_t full[] = {0, 60, 76};
    assert_ints(g.window_index, widx, 19);
    assert_int_equal(g.n_window_segs, 7);
    assert_ints(g.cu_window, cu, 8);
    assert_int_equal(g.n_full_segs, 2);
    assert_ints(g.cu_full, full, 3);
    assert_int_equal(g.cu_image_units[1], 15);
    assert_int_equal(g.cu_image_units[2], 19);
    orch_geometry_free(&g);
}

static void test_video_frames(void **state)
{
    (void)state;
    const int64_t grid[][3] = {{2, 4, 6}};
    orch_geometry g;
    assert_int_equal(orch_geometry_build(grid, 1, 2, 2, &g, NULL), ORCH_OK);
    const int32_t widx[] = {0, 1, 3, 4, 2, 5, 6, 7, 9, 10, 8, 11};
    const int32_t cu[] = {0, 16, 24, 40, 48};
    const int32_t full[] = {0, 24, 48};
    assert_ints(g.window_index, widx, 12);
    assert_ints(g.cu_window, cu, 5);
    assert_ints(g.cu_full, full, 3);
    orch_geometry_free(&g);
}

static void test_real_model_448(void **state)
{
    (void)state;
    /* 448x448 on the real model: grid (1,32,32), window 112/2/14 = 4 */
    const int64_t grid[][3] = {{1, 32, 32}};
    orch_geometry g;
    assert_int_equal(orch_geometry_build(grid, 1, 2, 4, &g, NULL), ORCH_OK);
    assert_int_equal(g.n_patches, 1024);
    assert_int_equal(g.n_window_segs, 16);
    orch_geometry_free(&g);
    const int64_t grid2[][3] = {{1, 30, 42}};
    assert_int_equal(orch_geometry_build(grid2, 1, 2, 4, &g, NULL), ORCH_OK);
    assert_int_equal(g.n_window_segs, 24);
    assert_int_equal(g.cu_window[22], 1200);
    assert_int_equal(g.cu_window[23], 1248);
    assert_int_equal(g.cu_window[24], 1260);
    orch_geometry_free(&g);
}

static void test_odd_grid_refused(void **state)
{
    (void)state;
    const int64_t grid[][3] = {{1, 23, 24}};
    orch_geometry g;
    orch_err err;
    assert_int_equal(orch_geometry_build(grid, 1, 2, 2, &g, &err), ORCH_EINVAL);
    assert_non_null(strstr(err.msg, "[1, 23, 24]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_windows),
        cmocka_unit_test(test_divisible_grid_drops_empty_windows),
        cmocka_unit_test(test_two_images),
        cmocka_unit_test(test_video_frames),
        cmocka_unit_test(test_real_model_448),
        cmocka_unit_test(test_odd_grid_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
