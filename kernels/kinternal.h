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

#include "kernels/vmath.h" /* orch_self, orch_expf, orch_erff, orch_sigmoidf */

#endif
