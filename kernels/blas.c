/*
 * blas.c - the only file that includes blis.h: orch_sgemm over bli_sgemm_ex.
 *
 * Every call builds its own rntm_t carrying the thread count (from
 * orch_threads_get() unless the caller pins one, e.g. 1 inside an OpenMP
 * region) and the sup choice. BLIS 0.9's small/unpacked ("sup") path loses
 * up to 2.5x against the packed path on transformer shapes and wins only on
 * small products (measured on this machine: docs/performance.md); orch_sup_choice() is the
 * single place that decides, and bench/kernels.c measures both paths.
 */
#include "kernels/kernels.h"

#include <blis.h>

void orch_blas_set_global_threads(int n); /* used by threads.c */

void orch_blas_set_global_threads(int n)
{
    bli_thread_set_num_threads(n);
}

/* The rule, for a call that runs on nt threads. */
static orch_sup sup_rule(int64_t m, int64_t n, int64_t k, int a_trans, int b_trans, int nt)
{
    /* Measured with BLIS 0.9.0 (zen3 kernels) on the 2-core Zen VM, 1 and 2
     * threads (docs/performance.md, "sup sweep"): BLIS's default path
     * (small/unpacked code below its own thresholds) wins on small products
     * and whenever the output has few columns; the packed path (sup off)
     * wins by up to 2.5x on the transformer shapes in between; both are
     * equal on large products. With 2 threads the default path also wins on
     * outputs up to 256 x 256 of the transposed layouts. */
    if (m * n * k <= ((int64_t)1 << 20))
        return ORCH_SUP_ON;
    if ((a_trans || b_trans) && nt > 1 && m <= 256 && n <= 256)
        return ORCH_SUP_ON;
    if (b_trans) /* NT: x W^T, Q K^T, dO V^T */
        return (n <= 32 || (m <= 64 && n <= 64)) ? ORCH_SUP_ON : ORCH_SUP_OFF;
    if (a_trans) /* TN: dy^T x, P^T dO, dS^T Q */
        return (n <= 96 || m <= 64) ? ORCH_SUP_ON : ORCH_SUP_OFF;
    return (n <= 256 || k <= 32) ? ORCH_SUP_ON : ORCH_SUP_OFF; /* NN */
}

orch_sup orch_sup_choice_layout(int64_t m, int64_t n, int64_t k, int a_trans, int b_trans)
{
    return sup_rule(m, n, k, a_trans, b_trans, orch_threads_get());
}

orch_sup orch_sup_choice(int64_t m, int64_t n, int64_t k)
{
    return orch_sup_choice_layout(m, n, k, 0, 0);
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

    if (nthreads <= 0) {
        /* a thread team costs about a microsecond when its threads are
         * warm: one more thread per 2^17 multiply-adds (~2.5 us of work),
         * up to the setting, so tiny products do not pay for a team */
        int64_t most = (m * n * k) >> 17;
        nthreads = orch_threads_get();
        if (most < nthreads)
            nthreads = most < 1 ? 1 : (int)most;
    }
    if (sup == ORCH_SUP_AUTO) /* an operand stored transposed has unit row stride */
        sup = sup_rule(m, n, k, rsa == 1 && csa != 1, rsb == 1 && csb != 1, nthreads);
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    /* the path is chosen for nthreads; the threads are the ones free now */
    bli_rntm_set_num_threads(orch_threads_product(nthreads), &rntm);
    if (sup == ORCH_SUP_OFF)
        bli_rntm_disable_l3_sup(&rntm);
    float al = alpha, be = beta;
    /* BLIS 0.9 prototypes take non-const pointers; it does not write A, B. */
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &al,
                 (float *)a, (inc_t)rsa, (inc_t)csa, (float *)b, (inc_t)rsb, (inc_t)csb, &be, c,
                 (inc_t)rsc, (inc_t)csc, NULL, &rntm);
}
