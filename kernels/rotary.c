/*
 * rotary.c - the Qwen2.5-VL vision rotary embedding (rotate-half form).
 *
 * Tables: cos, sin (N, hd) from (row, column) patch positions; the first
 * hd/4 angles rotate with the row position, the next hd/4 with the column
 * position, and the second half of hd repeats the first (emb = [ang, ang]).
 * Apply: per head, pairs (d, d + hd/2) rotate:
 *   y1 = x1 c1 - x2 s1,  y2 = x2 c2 + x1 s2   (c1 = cos[d], c2 = cos[d+hd/2])
 * Backward is the transposed rotation:
 *   dx1 = dy1 c1 + dy2 s2,  dx2 = dy2 c2 - dy1 s1
 * Both read a pair before writing it, so they run in place.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <math.h>
#include <omp.h>

void orch_rotary_tables(float *cos_t, float *sin_t, const int32_t *pos_hw, int n, int head_dim,
                        float theta)
{
    int half = head_dim / 2, q4 = head_dim / 4;
    for (int j = 0; j < q4; j++) {
        /* PyTorch: 1.0 / (theta ** (arange(0, dim, 2, float) / dim)), dim = hd/2, fp32. */
        float inv_freq = 1.0f / powf(theta, (float)(2 * j) / (float)half);
        for (int i = 0; i < n; i++) {
            float *c = cos_t + (int64_t)i * head_dim, *s = sin_t + (int64_t)i * head_dim;
            float ah = (float)pos_hw[2 * (int64_t)i] * inv_freq;
            float aw = (float)pos_hw[2 * (int64_t)i + 1] * inv_freq;
            c[j] = c[j + half] = cosf(ah);
            s[j] = s[j + half] = sinf(ah);
            c[j + q4] = c[j + q4 + half] = cosf(aw);
            s[j + q4] = s[j + q4 + half] = sinf(aw);
        }
    }
}

ORCH_SIMD_CLONES
static void rotate_rows(float *y, int ld_y, const float *x, int ld_x, const float *ct,
                        const float *st, int64_t r0, int64_t r1, int n_head, int hd, int inverse)
{
    int half = hd / 2;
    for (int64_t i = r0; i < r1; i++) {
        const float *c = ct + i * hd, *s = st + i * hd;
        for (int h = 0; h < n_head; h++) {
            const float *xr = x + i * ld_x + (int64_t)h * hd;
            float *yr = y + i * ld_y + (int64_t)h * hd;
            if (!inverse) {
#pragma omp simd
                for (int d = 0; d < half; d++) {
                    float x1 = xr[d], x2 = xr[d + half];
                    yr[d] = x1 * c[d] - x2 * s[d];
                    yr[d + half] = x2 * c[d + half] + x1 * s[d + half];
                }
            } else {
#pragma omp simd
                for (int d = 0; d < half; d++) {
                    float g1 = xr[d], g2 = xr[d + half];
                    yr[d] = g1 * c[d] + g2 * s[d + half];
                    yr[d + half] = g2 * c[d + half] - g1 * s[d];
                }
            }
        }
    }
}

static void rotate(float *y, int ld_y, const float *x, int ld_x, const float *ct, const float *st,
                   int n, int n_head, int hd, int inverse)
{
    int nt = orch_par_threads((int64_t)n * n_head * hd);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        rotate_rows(y, ld_y, x, ld_x, ct, st, lo, hi, n_head, hd, inverse);
    });
}

void orch_rotary_fwd(float *y, int ld_y, const float *x, int ld_x, const float *cos_t,
                     const float *sin_t, int n, int n_head, int head_dim)
{
    rotate(y, ld_y, x, ld_x, cos_t, sin_t, n, n_head, head_dim, 0);
}

void orch_rotary_bwd(float *dx, int ld_dx, const float *dy, int ld_dy, const float *cos_t,
                     const float *sin_t, int n, int n_head, int head_dim)
{
    rotate(dx, ld_dx, dy, ld_dy, cos_t, sin_t, n, n_head, head_dim, 1);
}
