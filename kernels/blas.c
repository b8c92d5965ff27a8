/*
 * blas.c - the only file that includes blis.h: orch_sgemm over bli_sgemm_ex.
 *
 * Every call builds its own rntm_t carrying the thread count (from
 * orch_threads_get() unless the caller pins one, e.g. 1 inside an OpenMP
 * region) and the sup choice. BLIS 0.9's small/unpacked ("sup") path loses
 * up to 2.5x against the packed path on transformer shapes and wins only on
 * small products (/work/shared/docs/blis-notes.md); orch_sup_choice() is the
 * single place that decides, and bench/kernels.c measures both paths.
 */
#include "kernels/kernels.h"

#include <blis.h>

void orch_blas_set_global_threads(int n); /* used by threads.c */

void orch_blas_set_global_threads(int n)
{
    bli_thread_set_num_threads(n);
}

orch_sup orch_sup_choice(int64_t m, int64_t n, int64_t k)
{
    /* Packing costs O(mk + kn) against O(mnk) work: it pays once every
     * dimension is past a few register tiles. Below that, BLIS's sup code
     * (no packing) wins, e.g. 64x64x64. Thresholds measured with
     * bench/kernels.c on the 2-core Zen VM (docs/performance.md). */
    int64_t mn = m < n ? m : n;
    if (m * n * k < (int64_t)96 * 96 * 96 || mn < 16)
        return ORCH_SUP_ON;
    return ORCH_SUP_OFF;
}

void orch_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                int64_t rsc, int64_t csc, orch_sup sup, int nthreads)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float *p = c + i * rsc + j * csc;
                *p = beta == 0.0f ? 0.0f : beta * *p;
            }
        return;
    }
    if (sup == ORCH_SUP_AUTO)
        sup = orch_sup_choice(m, n, k);
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nthreads > 0 ? nthreads : orch_threads_get(), &rntm);
    if (sup == ORCH_SUP_OFF)
        bli_rntm_disable_l3_sup(&rntm);
    float al = alpha, be = beta;
    /* BLIS 0.9 prototypes take non-const pointers; it does not write A, B. */
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &al,
                 (float *)a, (inc_t)rsa, (inc_t)csa, (float *)b, (inc_t)rsb, (inc_t)csb, &be, c,
                 (inc_t)rsc, (inc_t)csc, NULL, &rntm);
}
