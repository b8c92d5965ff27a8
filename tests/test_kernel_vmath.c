/*
 * test_kernel_vmath.c - the vectorized fp32 exp and erf (kernels/vmath.h,
 * through orch_exp_buf / orch_erf_buf, i.e. the clone this CPU runs) against
 * libm in double over a dense sweep of every float exponent: one float in
 * every 509 bit patterns over the whole line, plus every float in the ranges
 * where the approximations change regime (exp results near FLT_MIN and
 * below, which flush to 0, the overflow threshold, erf's tiny-argument
 * form and saturation), plus Inf, NaN and signed zeros. Errors are in ulps of the correctly rounded
 * result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The spacing of floats at |ref| (2^-149 in the subnormal range). */
static double ulp_at(double ref)
{
    double a = fabs(ref);
    if (a < (double)FLT_MIN)
        return ldexp(1.0, -149);
    int e;
    frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
    return ldexp(1.0, e - 24);
}

/* Every float of [a, b] (finite, a <= b, both of one sign) appended to xs
 * from index *n. */
static void add_range(float *xs, size_t *n, float a, float b)
{
    for (float x = a; x <= b; x = nextafterf(x, INFINITY))
        xs[(*n)++] = x;
}

/* The sweep: every 509th bit pattern of both signs (all exponents, NaNs
 * included), then the dense ranges. Returns the count; xs owned by caller. */
static float *sweep(size_t *count, const float (*dense)[2], int n_dense)
{
    size_t cap = 2 * (0x100000000ull / 509) + 16;
    for (int i = 0; i < n_dense; i++) {
        uint32_t ua = bits_of(fabsf(dense[i][0])), ub = bits_of(fabsf(dense[i][1]));
        cap += (size_t)(ua > ub ? ua - ub : ub - ua) + 2;
    }
    float *xs = malloc(cap * sizeof *xs);
    assert_non_null(xs);
    size_t n = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 509)
        xs[n++] = from_bits((uint32_t)u);
    for (int i = 0; i < n_dense; i++)
        add_range(xs, &n, dense[i][0], dense[i][1]);
    xs[n++] = INFINITY;
    xs[n++] = -INFINITY;
    xs[n++] = 0.0f;
    xs[n++] = -0.0f;
    assert_true(n <= cap);
    *count = n;
    return xs;
}

static void test_exp_accuracy(void **state)
{
    (void)state;
    /* subnormal outputs, the overflow edge, and where n steps at ln2/2 */
    static const float dense[][2] = {{-104.5f, -86.5f}, {88.5f, 89.5f}, {0.34f, 0.35f}};
    size_t n;
    float *xs = sweep(&n, dense, 3);
    float *y = malloc(n * sizeof *y);
    assert_non_null(y);
    orch_exp_buf(y, xs, (int64_t)n);
    double worst_ulp = 0, worst_x = 0;
    size_t n_flushed = 0;
    for (size_t i = 0; i < n; i++) {
        float x = xs[i];
        if (isnan(x)) {
            assert_true(isnan(y[i]));
            continue;
        }
        double ref = exp((double)x);
        if (ref > (double)FLT_MAX * (1.0 + 0x1p-25)) { /* rounds to Inf */
            if (!(isinf(y[i]) && y[i] > 0))
                printf("exp(%a) = %a, want Inf\n", (double)x, (double)y[i]);
            assert_true(isinf(y[i]) && y[i] > 0);
            continue;
        }
        assert_true(isfinite(y[i]) && y[i] >= 0.0f);
        if (ref < 0x1p-125) { /* flushed range: 0, or close in absolute terms */
            if (!(fabs((double)y[i] - ref) <= 0x1p-124))
                printf("exp(%a) = %a, want %a\n", (double)x, (double)y[i], ref);
            assert_true(fabs((double)y[i] - ref) <= 0x1p-124);
            n_flushed += y[i] == 0.0f;
            continue;
        }
        double err = fabs((double)y[i] - ref) / ulp_at(ref);
        if (err > worst_ulp) {
            worst_ulp = err;
            worst_x = x;
        }
    }
    printf("  exp: %zu points, max error %.3f ulp at x = %.9g\n", n, worst_ulp, worst_x);
    /* subnormal results count in ulps of the subnormal grid (2^-149) */
    assert_true(worst_ulp <= 1.5);
    float sp[] = {0.0f, -0.0f, -INFINITY, INFINITY, -200.0f, 200.0f};
    float sy[6];
    orch_exp_buf(sy, sp, 6);
    assert_true(sy[0] == 1.0f && sy[1] == 1.0f);
    assert_true(sy[2] == 0.0f && sy[4] == 0.0f);
    assert_true(isinf(sy[3]) && isinf(sy[5]));
    free(xs);
    free(y);
}

static void test_erf_accuracy(void **state)
{
    (void)state;
    /* the branch point 0.9277, saturation near 3.92, and tiny arguments */
    static const float dense[][2] = {
        {0.90f, 0.96f}, {-0.96f, -0.90f}, {3.8f, 4.1f}, {0x1p-20f, 0x1p-19f}};
    size_t n;
    float *xs = sweep(&n, dense, 3);
    float *y = malloc(n * sizeof *y);
    assert_non_null(y);
    orch_erf_buf(y, xs, (int64_t)n);
    double worst_ulp = 0, worst_x = 0;
    for (size_t i = 0; i < n; i++) {
        float x = xs[i];
        if (isnan(x)) {
            assert_true(isnan(y[i]));
            continue;
        }
        double ref = erf((double)x);
        double err = fabs((double)y[i] - ref) / ulp_at(ref);
        if (err > worst_ulp) {
            worst_ulp = err;
            worst_x = x;
        }
        /* odd: the sign of the result is the sign of x (erf(-0) = -0) */
        assert_true(signbit(y[i]) == signbit(x));
    }
    printf("  erf: %zu points, max error %.3f ulp at x = %.9g\n", n, worst_ulp, worst_x);
    assert_true(worst_ulp <= 8.0);
    float sp[] = {INFINITY, -INFINITY, 10.0f, -1e30f};
    float sy[4];
    orch_erf_buf(sy, sp, 4);
    assert_true(sy[0] == 1.0f && sy[1] == -1.0f && sy[2] == 1.0f && sy[3] == -1.0f);
    free(xs);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_accuracy),
        cmocka_unit_test(test_erf_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
