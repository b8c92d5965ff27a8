/*
 * threads.c - the one place kernels take their thread count from.
 *
 * orch_threads_set() records the count; products pass it to BLIS through a
 * per-call rntm_t (blas.c) and element-wise kernels use it as their OpenMP
 * team size. BLIS's global setting is updated too, so raw BLIS calls (the
 * benchmark's reference sgemm) see the same number.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <omp.h>

void orch_blas_set_global_threads(int n); /* blas.c */

static int g_threads; /* 0: not set, use the OpenMP default */

void orch_threads_set(int n)
{
    g_threads = n > 0 ? n : 0;
    orch_blas_set_global_threads(orch_threads_get());
}

int orch_threads_get(void)
{
    int n = g_threads;
    if (n <= 0)
        n = omp_get_max_threads();
    return n < 1 ? 1 : n;
}

int orch_par_threads(int64_t n)
{
    if (n < ORCH_PAR_MIN)
        return 1;
    int nt = orch_threads_get();
    int64_t most = n / (ORCH_PAR_MIN / 2); /* at least 16K elements per thread */
    return most < nt ? (int)most : nt;
}
