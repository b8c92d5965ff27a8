/*
 * pool.c - mean pooling of the rows of each segment (one vector per image).
 *
 * x (N, D), offsets (n_seg + 1) cumulative, out (n_seg, D). Rows are summed
 * in order (deterministic); parallel over segments when there are several.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

/* o (d) += r (d) * g for rows r0..r1 of x; o stays in L1. */
ORCH_SIMD_CLONES
static void acc_rows(float *o, const float *x, int32_t r0, int32_t r1, int d)
{
    for (int32_t i = r0; i < r1; i++) {
        const float *r = x + (int64_t)i * d;
#pragma omp simd
        for (int j = 0; j < d; j++)
            o[j] += r[j];
    }
}

ORCH_SIMD_CLONES
static void spread_rows(float *dx, const float *g, float inv, int32_t r0, int32_t r1, int d)
{
    for (int32_t i = r0; i < r1; i++) {
        float *r = dx + (int64_t)i * d;
#pragma omp simd
        for (int j = 0; j < d; j++)
            r[j] += g[j] * inv;
    }
}

void orch_mean_pool_fwd(float *out, const float *x, const int32_t *offsets, int n_seg, int d)
{
    int nt = orch_par_threads((int64_t)offsets[n_seg] * d);
#pragma omp parallel for num_threads(nt) if (nt > 1 && n_seg > 1) schedule(static)
    for (int s = 0; s < n_seg; s++) {
        float *o = out + (int64_t)s * d;
        int32_t a = offsets[s], b = offsets[s + 1];
        for (int j = 0; j < d; j++)
            o[j] = 0.0f;
        acc_rows(o, x, a, b, d);
        if (b > a) {
            float inv = 1.0f / (float)(b - a);
#pragma omp simd
            for (int j = 0; j < d; j++)
                o[j] *= inv;
        }
    }
}

void orch_mean_pool_bwd(float *dx, const float *dout, const int32_t *offsets, int n_seg, int d)
{
    int nt = orch_par_threads((int64_t)offsets[n_seg] * d);
#pragma omp parallel for num_threads(nt) if (nt > 1 && n_seg > 1) schedule(static)
    for (int s = 0; s < n_seg; s++) {
        int32_t a = offsets[s], b = offsets[s + 1];
        if (b <= a)
            continue;
        float inv = 1.0f / (float)(b - a);
        const float *g = dout + (int64_t)s * d;
        spread_rows(dx, g, inv, a, b, d);
    }
}
