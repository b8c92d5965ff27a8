/*
 * kinternal.h - helpers shared by the kernel files; not part of the room's
 * public door (kernels.h).
 *
 * Vectorization: the build has no -march, so hot loops are written as
 * `#pragma omp simd` loops of branch-free code (forced vectorization at -O2)
 * inside static functions marked ORCH_SIMD_CLONES, which gcc compiles three
 * times (x86-64-v4 = AVX-512F/BW/DQ/VL, x86-64-v3 = AVX2+FMA, and the
 * baseline) and picks at load time; the AVX-512 clone runs the exp/erf
 * loops about 1.7x faster than the AVX2 one (16 lanes). The
 * OpenMP parallel region stays outside the cloned function, because gcc
 * outlines a parallel body into a function that would not inherit the clones.
 *
 * Never compile with -ffast-math: NaN tests and the rounding tricks below
 * (magic-number rounding) rely on IEEE semantics.
 */
#ifndef ORCH_KINTERNAL_H
#define ORCH_KINTERNAL_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ORCH_NO_CLONES)
#define ORCH_SIMD_CLONES                                                                           \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ORCH_SIMD_CLONES
#endif

/* Element-wise kernels go parallel above this many elements (a thread team
 * costs a few microseconds; below this the whole pass takes about that). */
#define ORCH_PAR_MIN 32768

/* Threads for an element-wise pass over n elements: 1 below ORCH_PAR_MIN. */
int orch_par_threads(int64_t n);

/* Splits [0, n) into nt nearly equal chunks; chunk t is [*lo, *hi). The
 * split depends only on n and nt (determinism for a fixed thread count). */
static inline void orch_chunk(int64_t n, int nt, int t, int64_t *lo, int64_t *hi)
{
    int64_t base = n / nt, rem = n % nt;
    *lo = t * base + (t < rem ? t : rem);
    *hi = *lo + base + (t < rem ? 1 : 0);
}

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

/* exp(x) for fp32, branch-free (vectorizes), relative error ~1.5e-7 over
 * the normal range (Cephes expf polynomial, magic-number rounding). The
 * clamp to [-88.3, 88.8] makes the 2^n scale itself produce the limits:
 * n = -127 gives a zero scale (results below ~6e-39 flush to 0; a few
 * just below FLT_MIN come out subnormal), n = 128 gives an Inf scale (x > 88.376 returns +Inf). NaN
 * stays NaN. */
static inline float orch_expf(float x)
{
    float xc = orch_self(x > -88.3f, x, -88.3f); /* also maps NaN to -88.3 */
    xc = orch_self(xc < 88.8f, xc, 88.8f);
    float t = xc * 1.44269504088896341f + 12582912.0f; /* round to nearest */
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
    int32_t e = ((int32_t)n + 127) << 23; /* n in [-127, 128] */
    float s;
    memcpy(&s, &e, sizeof s);
    return orch_self(x != x, x, y * s);
}

/* erf(x) for fp32, rational approximation (Eigen's), absolute error
 * <= 5e-7; branch-free. NaN stays NaN. */
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
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    float r = p / q;
    return orch_self(a != a, a, r);
}

/* 1 / (1 + exp(-x)), branch-free. */
static inline float orch_sigmoidf(float x)
{
    return 1.0f / (1.0f + orch_expf(-x));
}

#endif
