/*
 * linear.c - y = x W^T + b and its backward, W in PyTorch layout (out, in).
 *
 * x (N, in), w (out, in), b (out), y (N, out); every product is one BLIS
 * call on the buffers as stored (the transposes are stride swaps):
 *   forward  y   = x W^T          NT  m=N   n=out k=in
 *   backward dx += dy W           NN  m=N   n=in  k=out
 *            dW += dy^T x         TN  m=out n=in  k=N
 * The bias is added by a row pass over y, which also tells whether y is
 * finite (orch_linear_fwd_finite: the NaN check without a pass of its
 * own); the bias gradient is a column sum
 * of dy, parallel over column blocks with every column summed in row order,
 * so it is the same for any thread count.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"
#include "kernels/klinear.h"

#include <omp.h>
#include <stdint.h>

/* y[r0..r1) += b per row. Returns the sum of 0 * y over those rows: 0 when
 * every result is finite, NaN otherwise. */
ORCH_SIMD_CLONES
static float add_bias_rows(float *y, const float *b, int64_t r0, int64_t r1, int out)
{
    float bad = 0.0f;
    for (int64_t i = r0; i < r1; i++) {
        float *yr = y + i * out;
#pragma omp simd reduction(+ : bad)
        for (int j = 0; j < out; j++) {
            yr[j] += b[j];
            bad += 0.0f * yr[j];
        }
    }
    return bad;
}

ORCH_SIMD_CLONES
static void col_sum_block(float *db, const float *dy, int n, int out, int64_t j0, int64_t j1)
{
    for (int i = 0; i < n; i++) {
        const float *r = dy + (int64_t)i * out;
#pragma omp simd
        for (int64_t j = j0; j < j1; j++)
            db[j] += r[j];
    }
}

int orch_linear_add_bias(float *y, const float *b, int n, int out)
{
    int nt = orch_par_threads((int64_t)n * out);
    int nonfinite = 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        if (add_bias_rows(y, b, lo, hi, out) != 0.0f)
            __atomic_store_n(&nonfinite, 1, __ATOMIC_RELAXED);
    }
    return !nonfinite;
}

void orch_linear_col_sum(float *db, const float *dy, int n, int out)
{
    int nt = orch_par_threads((int64_t)n * out);
    if (out < 64 * nt)
        nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t lo, hi;
        orch_chunk(out, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        col_sum_block(db, dy, n, out, lo, hi);
    }
}

void orch_linear_fwd(float *y, const float *x, const float *w, const float *b, int n, int in,
                     int out)
{
    /* y (N,out) = x (N,in) * W^T (in,out): W^T is w with strides (1, in). */
    orch_sgemm(n, out, in, 1.0f, x, in, 1, w, 1, in, 0.0f, y, out, 1, ORCH_SUP_AUTO, 0);
    if (b != NULL)
        (void)orch_linear_add_bias(y, b, n, out);
}

int orch_linear_fwd_finite(float *y, const float *x, const float *w, const float *b, int n, int in,
                           int out)
{
    orch_sgemm(n, out, in, 1.0f, x, in, 1, w, 1, in, 0.0f, y, out, 1, ORCH_SUP_AUTO, 0);
    return orch_linear_add_bias(y, b, n, out);
}

void orch_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *w, int n, int in, int out)
{
    if (dx != NULL) /* dx (N,in) += dy (N,out) * w (out,in) */
        orch_sgemm(n, in, out, 1.0f, dy, out, 1, w, in, 1, 1.0f, dx, in, 1, ORCH_SUP_AUTO, 0);
    if (dw != NULL) /* dw (out,in) += dy^T (out,N) * x (N,in) */
        orch_sgemm(out, in, n, 1.0f, dy, 1, out, x, in, 1, 1.0f, dw, in, 1, ORCH_SUP_AUTO, 0);
    if (db != NULL)
        orch_linear_col_sum(db, dy, n, out);
}
