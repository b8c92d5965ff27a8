/*
 * vmath.c - the vector exp and erf of vmath.h over whole buffers: the
 * public door to the exact code (same clones, same contraction) the
 * element-wise kernels run, for tests and for callers that need them.
 */
/* Contract a*b+c into FMA where the CPU has it, as activations.c and
 * loss.c do, so these buffers see the kernels' rounding. */
#pragma GCC optimize("fp-contract=fast")

#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <omp.h>

ORCH_SIMD_CLONES_512
static void exp_chunk(float *y, const float *x, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        y[i] = orch_expf(x[i]);
}

ORCH_SIMD_CLONES_512
static void erf_chunk(float *y, const float *x, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        y[i] = orch_erff(x[i]);
}

void orch_exp_buf(float *y, const float *x, int64_t n)
{
    int nt = orch_par_threads(n);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        exp_chunk(y, x, lo, hi);
    });
}

void orch_erf_buf(float *y, const float *x, int64_t n)
{
    int nt = orch_par_threads(n);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        erf_chunk(y, x, lo, hi);
    });
}
