/*
 * pool.c - mean pooling of the rows of each segment (one vector per image).
 *
 * x (N, D), offsets (n_seg + 1) cumulative, out (n_seg, D). Rows are summed
 * in order (deterministic); parallel over segments when there are several.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

void orch_mean_pool_fwd(float *out, const float *x, const int32_t *offsets, int n_seg, int d)
{
    int nt = orch_par_threads((int64_t)offsets[n_seg] * d);
#pragma omp parallel for num_threads(nt) if (nt > 1 && n_seg > 1) schedule(static)
    for (int s = 0; s < n_seg; s++) {
        float *o = out + (int64_t)s * d;
        int32_t a = offsets[s], b = offsets[s + 1];
        for (int j = 0; j < d; j++)
            o[j] = 0.0f;
        for (int32_t i = a; i < b; i++) {
            const float *r = x + (int64_t)i * d;
#pragma omp simd
            for (int j = 0; j < d; j++)
                o[j] += r[j];
        }
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
        for (int32_t i = a; i < b; i++) {
            float *r = dx + (int64_t)i * d;
#pragma omp simd
            for (int j = 0; j < d; j++)
                r[j] += g[j] * inv;
        }
    }
}
