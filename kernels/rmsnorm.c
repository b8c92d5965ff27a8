/*
 * rmsnorm.c - Qwen2RMSNorm: y = w * (x * rstd), rstd = 1/sqrt(mean(x^2)+eps).
 *
 * x, y (N, D) row-major; w (D); rstd (N) saved for the backward.
 * Forward and dx are parallel over rows; dw is a column reduction, parallel
 * over column blocks with every column summed in row order (deterministic
 * for any thread count). Sums of squares accumulate in fp32 lanes (a
 * vectorized reduction, i.e. several partial sums), never in fp16.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <math.h>
#include <omp.h>

ORCH_SIMD_CLONES_512
static void fwd_rows(float *y, float *rstd, const float *x, const float *w, float eps, int64_t r0,
                     int64_t r1, int d)
{
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = x + i * d;
        float *yr = y + i * d;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < d; j++)
            ss += xr[j] * xr[j];
        float rs = 1.0f / sqrtf(ss / (float)d + eps);
        if (rstd != NULL)
            rstd[i] = rs;
        if (w != NULL) {
#pragma omp simd
            for (int j = 0; j < d; j++)
                yr[j] = w[j] * (xr[j] * rs);
        } else {
#pragma omp simd
            for (int j = 0; j < d; j++)
                yr[j] = xr[j] * rs;
        }
    }
}

ORCH_SIMD_CLONES_512
static void bwd_dx_rows(float *dx, const float *dy, const float *x, const float *w,
                        const float *rstd, int64_t r0, int64_t r1, int d)
{
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = x + i * d, *gr = dy + i * d;
        float *dxr = dx + i * d;
        float rs = rstd[i];
        float dot = 0.0f; /* sum_j g_j * xh_j, xh = x * rs, g = dy * w */
        if (w != NULL) {
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < d; j++)
                dot += gr[j] * w[j] * xr[j];
        } else {
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < d; j++)
                dot += gr[j] * xr[j];
        }
        float m = dot * rs / (float)d; /* mean(g * xh) */
        float c = m * rs;              /* xh * m = x * (rs * m) */
        if (w != NULL) {
#pragma omp simd
            for (int j = 0; j < d; j++)
                dxr[j] += rs * (gr[j] * w[j] - xr[j] * c);
        } else {
#pragma omp simd
            for (int j = 0; j < d; j++)
                dxr[j] += rs * (gr[j] - xr[j] * c);
        }
    }
}

ORCH_SIMD_CLONES_512
static void bwd_dw_cols(float *dw, const float *dy, const float *x, const float *rstd, int n, int d,
                        int64_t j0, int64_t j1)
{
    for (int i = 0; i < n; i++) {
        const float *xr = x + (int64_t)i * d, *gr = dy + (int64_t)i * d;
        float rs = rstd[i];
#pragma omp simd
        for (int64_t j = j0; j < j1; j++)
            dw[j] += gr[j] * (xr[j] * rs);
    }
}

void orch_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, float eps, int n,
                      int d)
{
    int nt = orch_par_threads((int64_t)n * d);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        fwd_rows(y, rstd, x, w, eps, lo, hi, d);
    });
}

typedef struct rms_args {
    float *y, *rstd;
    const float *x, *w;
    float eps;
    int d;
} rms_args;

static void rms_block(void *ctx, int64_t lo, int64_t hi)
{
    const rms_args *r = ctx;
    fwd_rows(r->y, r->rstd, r->x, r->w, r->eps, lo, hi, r->d);
}

orch_finite_stats orch_rmsnorm_fwd_scan(float *y, float *rstd, const float *x, const float *w,
                                        float eps, int n, int d)
{
    rms_args r = {y, rstd, x, w, eps, d};
    return orch_run_scanned(rms_block, &r, y, n, d);
}

void orch_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int n, int d)
{
    int nt = orch_par_threads((int64_t)n * d);
    if (dx != NULL) {
        ORCH_PARALLEL(nt, {
            int64_t lo, hi;
            orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            bwd_dx_rows(dx, dy, x, w, rstd, lo, hi, d);
        });
    }
    if (dw != NULL) {
        int ntw = d >= 64 * nt ? nt : 1;
        ORCH_PARALLEL(ntw, {
            int64_t lo, hi;
            orch_chunk(d, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            bwd_dw_cols(dw, dy, x, rstd, n, d, lo, hi);
        });
    }
}
