/*
 * vmath.h - fp32 exp, erf and sigmoid written for `omp simd` loops: no
 * branches, no libm calls, selects through integer masks (orch_self), so
 * gcc vectorizes them at -O2 inside the ORCH_SIMD_CLONES functions (AVX-512,
 * AVX2+FMA and baseline clones; kinternal.h). Part of the kernels room's
 * internals; the public door to them is orch_exp_buf / orch_erf_buf
 * (kernels.h), which tests/test_kernel_vmath.c sweeps against libm.
 *
 * Accuracy (measured by that test on the AVX-512 clone, FMA-contracted):
 *   orch_expf  <= 1.5 ulp (measured 0.99) over the whole normal output range, subnormal
 *              outputs within 1 ulp of the subnormal grid (2^-149), +Inf
 *              above 88.7228 (as expf), 0 below -103.98; NaN stays NaN.
 *   orch_erff  <= 1.5 ulp (measured 1.02) everywhere (|x| >= 3.92 gives +-1 exactly), NaN
 *              stays NaN.
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

/* 2^e for an integer e in [-126, 127], by building the exponent field. */
static inline float orch_pow2i(int32_t e)
{
    int32_t bits = (e + 127) * (1 << 23);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* exp(x): x = n ln2 + r with |r| <= ln2/2 (n rounded by the 1.5*2^23
 * magic-number trick, ln2 split in two so n*ln2_hi is exact), exp(r) by the
 * Cephes degree-6 polynomial, then the scale 2^n applied as two factors
 * 2^(n/2) 2^(n - n/2): each is a normal float for every n in [-150, 128],
 * so results in the subnormal range are rounded once (not flushed) and
 * results between 2^127 and FLT_MAX are not lost to an Inf scale. The clamp
 * to [-104, 89] keeps n in that range; the scaling itself then overflows to
 * +Inf or underflows to 0 exactly where expf does. */
static inline float orch_expf(float x)
{
    float xc = orch_self(x > -104.0f, x, -104.0f); /* NaN also becomes -104 */
    xc = orch_self(xc < 89.0f, xc, 89.0f);
    float t = xc * 1.44269504088896341f + 12582912.0f;
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
    int32_t ni = (int32_t)n;
    int32_t half = ni / 2;
    float v = (y * orch_pow2i(half)) * orch_pow2i(ni - half);
    return orch_self(x != x, x, v);
}

/* erf(x), division-free, after N. Juffa's faithfully rounded erff (2016,
 * stackoverflow.com/a/35148199; also PyTorch's MPS and MLX erf): for
 * |x| <= 0.9277 an odd minimax polynomial x + x P(x^2); above,
 * 1 - exp(Q(|x|)) with the sign restored. Both branches are computed and
 * one is selected (no branch). |x| is clamped to 4 (erf(4) is 1 in fp32)
 * so Q cannot overflow. */
static inline float orch_erff(float a)
{
    uint32_t ua;
    memcpy(&ua, &a, sizeof ua);
    uint32_t sign = ua & 0x80000000u, ut = ua & 0x7fffffffu;
    float t;
    memcpy(&t, &ut, sizeof t);
    t = orch_self(t < 4.0f, t, 4.0f); /* NaN becomes 4, restored below */
    float s = t * t;
    /* inner: erf(t) = t + t * P(t^2) */
    float p = -5.96761703e-4f;
    p = p * s + 4.99119423e-3f;
    p = p * s + -2.67681349e-2f;
    p = p * s + 1.12819925e-1f;
    p = p * s + -3.76125336e-1f;
    p = p * s + 1.28379166e-1f;
    p = p * t + t;
    /* outer: erf(t) = 1 - exp(Q(t)) */
    float q = -1.72853470e-5f * t + 3.83197126e-4f;
    float u = -3.88396438e-3f * t + 2.42546219e-2f;
    q = q * s + u;
    q = q * t + -1.06777877e-1f;
    q = q * t + -6.34846687e-1f;
    q = q * t + -1.28717512e-1f;
    q = q * t - t;
    q = 1.0f - orch_expf(q);
    float r = orch_self(t > 0.927734375f, q, p);
    uint32_t ur;
    memcpy(&ur, &r, sizeof ur);
    ur |= sign;
    memcpy(&r, &ur, sizeof r);
    return orch_self(a != a, a, r);
}

/* 1 / (1 + exp(-x)): 0 below about -89, 1 above about 17; NaN stays NaN. */
static inline float orch_sigmoidf(float x)
{
    return 1.0f / (1.0f + orch_expf(-x));
}

#endif
