/*
 * precision.c - in-place rounding of fp32 buffers to bf16 / fp16 values,
 * round-to-nearest-even, for mixed-precision emulation.
 *
 * Branch-free integer versions of half.h's orch_round_bf16/orch_round_f16
 * (same results bit for bit; the tests compare them on millions of
 * patterns), so the passes vectorize.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <omp.h>

static inline int32_t sel_i(int32_t c, int32_t a, int32_t b)
{
    int32_t m = -c;
    return (a & m) | (b & ~m);
}

ORCH_SIMD_CLONES_512
static void bf16_chunk(float *x, int64_t lo, int64_t hi)
{
    int32_t *u = (int32_t *)(void *)x;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        int32_t v = u[i];
        int32_t isnan = (v & 0x7fffffff) > 0x7f800000;
        /* unsigned add: wraps like half.h's uint32 arithmetic */
        uint32_t r = ((uint32_t)v + 0x7fffu + (((uint32_t)v >> 16) & 1u)) & 0xffff0000u;
        int32_t q = (int32_t)(((uint32_t)v & 0xffff0000u) | 0x00400000u);
        u[i] = sel_i(isnan, q, (int32_t)r);
    }
}

ORCH_SIMD_CLONES_512
static void f16_chunk(float *x, int64_t lo, int64_t hi)
{
    int32_t *u = (int32_t *)(void *)x;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        int32_t v = u[i];
        int32_t sign = (int32_t)((uint32_t)v & 0x80000000u);
        int32_t a = v & 0x7fffffff;
        /* normal fp16 range: keep 10 mantissa bits, ties to even */
        uint32_t ua = (uint32_t)a; /* unsigned: NaN patterns would overflow int */
        int32_t nrm = (int32_t)((ua + 0xfffu + ((ua >> 13) & 1u)) & ~0x1fffu);
        /* subnormal fp16 range: round |x| to a multiple of 2^-24 through
         * the fp32 adder (ulp(0.5f) = 2^-24, ties to even) */
        float fa, t;
        memcpy(&fa, &a, sizeof fa);
        t = (fa + 0.5f) - 0.5f;
        int32_t sub;
        memcpy(&sub, &t, sizeof sub);
        int32_t nan = 0x7fc00000 | (a & 0x007fe000);
        int32_t r = sel_i(a < 0x38800000, sub, nrm);
        r = sel_i(a >= 0x477ff000, 0x7f800000, r);
        r = sel_i(a > 0x7f800000, nan, r);
        u[i] = r | sign;
    }
}

static void run(float *x, int64_t n, void (*fn)(float *, int64_t, int64_t))
{
    int nt = orch_par_threads(n);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        fn(x, lo, hi);
    });
}

void orch_round_bf16_buf(float *x, int64_t n)
{
    run(x, n, bf16_chunk);
}

void orch_round_f16_buf(float *x, int64_t n)
{
    run(x, n, f16_chunk);
}
