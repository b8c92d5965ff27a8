/*
 * kinternal.h - helpers shared by the kernel files; not part of the room's
 * public door (kernels.h).
 *
 * Vectorization: the build has no -march, so hot loops are written as
 * `#pragma omp simd` loops of branch-free code (forced vectorization at -O2)
 * inside static functions marked ORCH_SIMD_CLONES, which gcc compiles twice
 * (x86-64-v3 = AVX2+FMA, and the baseline) and picks at load time, or
 * ORCH_SIMD_CLONES_512, which adds an x86-64-v4 (AVX-512) clone. The 512
 * form is used where it measured faster (the exp/erf loops ~1.7x, RMSNorm
 * forward ~1.3x); loops over short rows (rotary's half head of 4 floats at
 * the tiny preset, pooling) measured slower with it (masked 16-lane
 * remainders) and keep the AVX2 pair, as do attention.c and linear.c. The
 * OpenMP parallel region stays outside the cloned function, because gcc
 * outlines a parallel body into a function that would not inherit the clones.
 *
 * Never compile with -ffast-math: NaN tests and the rounding tricks of vmath.h
 * (magic-number rounding) rely on IEEE semantics.
 */
#ifndef ORCH_KINTERNAL_H
#define ORCH_KINTERNAL_H

#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h" /* orch_finite_stats */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ORCH_NO_CLONES)
#define ORCH_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define ORCH_SIMD_CLONES_512                                                                       \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ORCH_SIMD_CLONES
#define ORCH_SIMD_CLONES_512
#endif

/* Element-wise kernels go parallel above this many elements (a thread team
 * costs a few microseconds; below this the whole pass takes about that). */
#define ORCH_PAR_MIN 32768

/* Threads for an element-wise pass over n elements: 1 below ORCH_PAR_MIN. */
int orch_par_threads(int64_t n);

#define ORCH_PRAGMA(x) _Pragma(#x)

/* Runs the statements in braces on a team of nt threads (nt >= 1), or
 * directly when nt is 1: libgomp builds a team even for a
 * parallel region whose `if` clause is false, about 1 us a call, which was
 * most of a tiny-preset element-wise call. Inside, omp_get_num_threads()
 * and omp_get_thread_num() give 1 and 0 on the direct path. */
#define ORCH_PARALLEL(nt, ...)                                                                     \
    do {                                                                                           \
        if ((nt) <= 1) {                                                                           \
            __VA_ARGS__                                                                            \
        } else {                                                                                   \
            ORCH_PRAGMA(omp parallel num_threads(nt)) __VA_ARGS__                                  \
        }                                                                                          \
    } while (0)

/* Splits [0, n) into nt nearly equal chunks; chunk t is [*lo, *hi). The
 * split depends only on n and nt (determinism for a fixed thread count). */
static inline void orch_chunk(int64_t n, int nt, int t, int64_t *lo, int64_t *hi)
{
    int64_t base = n / nt, rem = n % nt;
    *lo = t * base + (t < rem ? t : rem);
    *hi = *lo + base + (t < rem ? 1 : 0);
}

/* ------------------------------------------------ scans fused into passes
 * (finite.c). orch_finite_scan is orch_scan_range over the buffer and then
 * orch_scan_finish; a fused kernel runs the same two on the output it has
 * just written, so its orch_finite_stats equal orch_finite_scan's. */

/* The fast pass over x[lo, hi): the count of NaN/Inf and the largest finite
 * |x| as its bit pattern (bit order is value order for |x|). */
void orch_scan_range(const float *x, int64_t lo, int64_t hi, int64_t *bad, int32_t *maxbits);

/* orch_finite_scan's result for x (n) from the fast-pass totals: max_abs
 * from maxbits and, only when bad > 0, the exact counts and first index by
 * a scalar pass over x. */
orch_finite_stats orch_scan_finish(const float *x, int64_t n, int64_t bad, int32_t maxbits);

/* Computes units [lo, hi) of a kernel's output (ctx: the kernel's args). */
typedef void (*orch_block_fn)(void *ctx, int64_t lo, int64_t hi);

/* Runs fn over units [0, units) split across the team (orch_par_threads of
 * units * unit_len floats, contiguous chunks of units as orch_chunk), each
 * thread in blocks of about 16 KiB of output, scanning every block of out
 * (unit u is out[u*unit_len, (u+1)*unit_len)) right after fn wrote it, while
 * it is in L1. Returns orch_finite_scan(out, units * unit_len). */
orch_finite_stats orch_run_scanned(orch_block_fn fn, void *ctx, const float *out, int64_t units,
                                   int64_t unit_len);

#include "kernels/vmath.h" /* orch_self, orch_expf, orch_erff, orch_sigmoidf */

#endif
