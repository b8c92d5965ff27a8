/*
 * vmath.h - fp32 exp, erf and sigmoid written for `omp simd` loops: no
 * branches, no libm calls, selects through integer masks (orch_self), so
 * gcc vectorizes them at -O2 inside the ORCH_SIMD_CLONES functions (AVX-512,
 * AVX2+FMA and baseline clones; kinternal.h). Part of the kernels room's
 * internals; the public door to them is orch_exp_buf / orch_erf_buf
 * (kernels.h), which tests/test_kernel_vmath.c sweeps against libm.
 *
 * Accuracy (asserted by that test on the clone this CPU runs, AVX-512 with
 * FMA contraction):
 *   orch_expf  <= 1.5 ulp (measured 0.99) for results >= 2^-125; below
 *              that (x < -86.99) 0 or within 2^-124 absolute (flushed,
 *              never subnormal); +Inf above 88.7228 as expf; NaN stays NaN.
 *   orch_erff  <= 8 ulp (measured 7.5; relative ~5e-7); +-1 beyond |x| = 4;
 *              odd (erf(-0) = -0); NaN stays NaN.
 * Files including this must keep IEEE semantics (no -ffast-math); they may
 * enable fp-contract=fast (the errors above include FMA contraction; the
 * baseline clone without FMA stays within a few ulp more).
 */
#ifndef ORCH_VMATH_H
#define ORCH_VMATH_H

#include <stdint.h>
#include <string.h>

/* c ? a : b through integer masks. gcc (with its default -ftrapping-math)
 * does not if-convert a float ?: whose result feeds arithmetic, so loops
 * written with ?: stay scalar; this form vectorizes. c must be 0 or 1. */
static inline float orch_self(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)c, ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    uint32_t r = (ua & m) | (ub & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp(x): x = n ln2 + r with |r| <= ln2/2 (n rounded by the 1.5*2^23
 * magic-number trick, ln2 split in two so n*ln2_hi is exact), exp(r) by the
 * Cephes degree-6 polynomial, then the scale built in the exponent bits by
 * an integer add. The scale is 2^(n-1) applied to 2 exp(r): with x clamped
 * to [-87.4, 88.8], n is in [-126, 128] and n-1 always has an exponent
 * field, so results up to FLT_MAX are exact-range (no early Inf at 2^128)
 * and x > 88.7228 overflows to +Inf by the multiply, as expf does. At the
 * low end n-1 = -127 gives a zero scale: results below about 2^-125
 * (x < -86.99) flush to 0 instead of going subnormal, at no cost in the
 * loop (a second scale factor for subnormals costs ~30% more time).
 * NaN stays NaN. */
static inline float orch_expf(float x)
{
    /* clamps written so that NaN fails both tests and flows through */
    float xc = orch_self(x < -87.4f, -87.4f, x);
    xc = orch_self(xc > 88.8f, 88.8f, xc);
    float t = xc * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23 + n */
    float n = t - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    /* n is in t's low mantissa bits: no float-to-int conversion (which a
     * NaN would make undefined); for NaN the scale is garbage but y is NaN */
    uint32_t tb; /* unsigned: a NaN's garbage wraps instead of overflowing */
    memcpy(&tb, &t, sizeof tb);
    uint32_t bits = (tb - 0x4b400000u + 126u) << 23; /* 2^(n-1); 0.0f for n = -126 */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return (y * 2.0f) * scale;
}

/* erf(x) for fp32: Eigen's rational minimax approximation x P(x^2)/Q(x^2)
 * on [-4, 4] (+-1 beyond), relative error <= 8 ulp (~5e-7; worst near
 * |x| = 3.9, <= 4 ulp below 1). It was chosen over the
 * division-free 1-ulp form (N. Juffa's: polynomial below 0.93, 1 - exp(poly)
 * above, both computed and one selected) because that one measured 4x
 * slower here with both branches and an exp in every lane. NaN stays NaN. */
static inline float orch_erff(float a)
{
    float x = orch_self(a < 4.0f, a, 4.0f);
    x = orch_self(x > -4.0f, x, -4.0f); /* NaN becomes -4, restored below */
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    /* x (P/Q), not (x P)/Q: x P would underflow for subnormal-range x */
    float r = x * (p / q);
    return orch_self(a != a, a, r);
}

/* 1 / (1 + exp(-x)): 0 below about -89, 1 above about 17; NaN stays NaN. */
static inline float orch_sigmoidf(float x)
{
    return 1.0f / (1.0f + orch_expf(-x));
}

#endif
