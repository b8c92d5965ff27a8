/*
 * test_kernel_fused.c - the forward kernels fused with the finite scan
 * (orch_*_fwd_scan) against their unfused composition: the plain kernel,
 * then orch_finite_scan on its output. Outputs must be bit-identical and
 * the stats equal field by field, on clean data, with NaN/Inf placed at the
 * first, a block-boundary, and the last element, with values that overflow
 * in the kernel itself, on 1 and 2 threads (the parallel path needs more
 * than ORCH_PAR_MIN = 32768 elements), and in place where the plain kernel
 * allows it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

static unsigned long long g_seed = 0xf05edULL;

static float *rnd(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    fill_uniform(p, n, lo, hi, &g_seed);
    return p;
}

static float *copy_of(const float *x, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

static void expect_same_stats(orch_finite_stats got, orch_finite_stats want)
{
    if (got.nan_count != want.nan_count || got.inf_count != want.inf_count ||
        got.first_bad != want.first_bad || got.max_abs != want.max_abs)
        printf("  got nan %lld inf %lld first %lld max %g; want %lld %lld %lld %g\n",
               (long long)got.nan_count, (long long)got.inf_count, (long long)got.first_bad,
               (double)got.max_abs, (long long)want.nan_count, (long long)want.inf_count,
               (long long)want.first_bad, (double)want.max_abs);
    assert_int_equal(got.nan_count, want.nan_count);
    assert_int_equal(got.inf_count, want.inf_count);
    assert_int_equal(got.first_bad, want.first_bad);
    assert_memory_equal(&got.max_abs, &want.max_abs, sizeof got.max_abs);
}

/* The shapes: (rows, width) with n = rows * width elements; the element-wise
 * kernels see n only. 9 x 37 is below every block size, 100 x 4099 crosses
 * the 4096-float scan blocks unevenly and goes parallel. */
static const int SHAPES[][2] = {{1, 1}, {9, 37}, {3, 4096}, {100, 4099}, {1024, 32}};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

/* Poisons x (n) for variant v: 0 clean, 1 NaN first / Inf last / NaN at a
 * block boundary, 2 values that overflow inside the kernels (exp, x^2). */
static void poison(float *x, int64_t n, int v)
{
    if (v == 1) {
        x[0] = NAN;
        x[n - 1] = -INFINITY;
        if (n > 4096)
            x[4096] = NAN;
    } else if (v == 2) {
        x[n / 2] = 3e38f;
        x[n - 1] = -1e30f;
    }
}

enum { K_GELU, K_GELU_TANH, K_SILU, K_SWIGLU, K_ADD, K_RMS, K_COUNT };

static void check_kernel(int k, int rows, int width, int variant, int in_place)
{
    int64_t n = (int64_t)rows * width;
    float *x = rnd((size_t)n, -6, 6), *u = rnd((size_t)n, -3, 3), *w = rnd((size_t)width, 0.5f, 2);
    poison(x, n, variant);
    float *y_plain = rnd((size_t)n, -1, 1), *y_fused = copy_of(y_plain, (size_t)n);
    float *rs_plain = rnd((size_t)rows, 0, 1), *rs_fused = copy_of(rs_plain, (size_t)rows);
    /* in place: the output buffer starts as a copy of the input */
    float *xin_fused = x;
    if (in_place) {
        memcpy(y_plain, x, (size_t)n * sizeof *x);
        memcpy(y_fused, x, (size_t)n * sizeof *x);
        xin_fused = y_fused;
    }
    const float *xin_plain = in_place ? y_plain : x;
    orch_finite_stats got = {0, 0, 0, 0.0f};
    switch (k) {
    case K_GELU:
    case K_GELU_TANH:
        orch_gelu_fwd(y_plain, xin_plain, n, k == K_GELU_TANH);
        got = orch_gelu_fwd_scan(y_fused, xin_fused, n, k == K_GELU_TANH);
        break;
    case K_SILU:
        orch_silu_fwd(y_plain, xin_plain, n);
        got = orch_silu_fwd_scan(y_fused, xin_fused, n);
        break;
    case K_SWIGLU:
        orch_swiglu_fwd(y_plain, xin_plain, u, n);
        got = orch_swiglu_fwd_scan(y_fused, xin_fused, u, n);
        break;
    case K_ADD:
        orch_add_fwd(y_plain, xin_plain, u, n);
        got = orch_add_fwd_scan(y_fused, xin_fused, u, n);
        break;
    case K_RMS:
        orch_rmsnorm_fwd(y_plain, rs_plain, xin_plain, w, 1e-6f, rows, width);
        got = orch_rmsnorm_fwd_scan(y_fused, rs_fused, xin_fused, w, 1e-6f, rows, width);
        assert_memory_equal(rs_fused, rs_plain, (size_t)rows * sizeof *rs_plain);
        break;
    default:
        fail();
    }
    assert_memory_equal(y_fused, y_plain, (size_t)n * sizeof *y_plain);
    orch_finite_stats want = orch_finite_scan(y_plain, n);
    expect_same_stats(got, want);
    if (variant == 1) /* the poisoned input reached the output */
        assert_true(want.first_bad == 0);
    free(x);
    free(u);
    free(w);
    free(y_plain);
    free(y_fused);
    free(rs_plain);
    free(rs_fused);
}

static void run_all(int threads)
{
    orch_threads_set(threads);
    for (int k = 0; k < K_COUNT; k++)
        for (int s = 0; s < N_SHAPES; s++)
            for (int v = 0; v < 3; v++)
                for (int ip = 0; ip < 2; ip++)
                    check_kernel(k, SHAPES[s][0], SHAPES[s][1], v, ip);
    orch_threads_set(0);
}

static void test_fused_one_thread(void **state)
{
    (void)state;
    run_all(1);
}

static void test_fused_two_threads(void **state)
{
    (void)state;
    run_all(2);
}

/* The scan really happens: a clean input whose output is made non-finite by
 * the kernel itself (rmsnorm of a row with one huge value and a huge weight,
 * GELU of 3e38 finite, the add of two large values overflowing). */
static void test_fused_detects_kernel_overflow(void **state)
{
    (void)state;
    float a[5] = {3e38f, 1, 2, -3e38f, 0}, b[5] = {3e38f, 1, 2, -3e38f, 0}, y[5];
    orch_finite_stats s = orch_add_fwd_scan(y, a, b, 5);
    assert_int_equal(s.inf_count, 2);
    assert_int_equal(s.nan_count, 0);
    assert_int_equal(s.first_bad, 0);
    assert_true(s.max_abs == 4.0f);
    float x[4] = {1, 1, 1, 1}, w[4] = {3e38f, 1, 1, 1}, yr[4], rs[1];
    x[0] = 2.0f; /* y[0] = w * x * rstd = 3e38 * 2 / sqrt(7/4) overflows */
    s = orch_rmsnorm_fwd_scan(yr, rs, x, w, 0.0f, 1, 4);
    assert_int_equal(s.inf_count, 1);
    assert_int_equal(s.first_bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_one_thread),
        cmocka_unit_test(test_fused_two_threads),
        cmocka_unit_test(test_fused_detects_kernel_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
