/*
 * lora.c - PEFT LoRA linear (frozen W, trainable A (r,in) and B (out,r)).
 *
 *   u = x A^T                      NT  m=N   n=r   k=in
 *   y = x W^T + b + s u B^T        NT  m=N   n=out k=in,  NT m=N n=out k=r
 * backward (s = alpha/r):
 *   dB += s dy^T u                 TN  m=out n=r   k=N
 *   du  = s dy B                   NN  m=N   n=r   k=out
 *   dA += du^T x                   TN  m=r   n=in  k=N
 *   dx += dy W + du A              NN  m=N   n=in  k=out,  NN m=N n=in k=r
 */
#include "kernels/kernels.h"
#include "kernels/klinear.h"

void orch_lora_linear_fwd(float *y, float *u, const float *x, const float *w, const float *b,
                          const float *a, const float *bm, float scale, int n, int in, int out,
                          int r)
{
    orch_sgemm(n, out, in, 1.0f, x, in, 1, w, 1, in, 0.0f, y, out, 1, ORCH_SUP_AUTO, 0);
    if (b != NULL)
        (void)orch_linear_add_bias(y, b, n, out);
    orch_sgemm(n, r, in, 1.0f, x, in, 1, a, 1, in, 0.0f, u, r, 1, ORCH_SUP_AUTO, 0);
    orch_sgemm(n, out, r, scale, u, r, 1, bm, 1, r, 1.0f, y, out, 1, ORCH_SUP_AUTO, 0);
}

void orch_lora_linear_bwd(float *dx, float *da, float *dbm, float *dw, float *db, float *du,
                          const float *dy, const float *x, const float *u, const float *w,
                          const float *a, const float *bm, float scale, int n, int in, int out,
                          int r)
{
    if (dbm != NULL)
        orch_sgemm(out, r, n, scale, dy, 1, out, u, r, 1, 1.0f, dbm, r, 1, ORCH_SUP_AUTO, 0);
    if (da != NULL || dx != NULL)
        orch_sgemm(n, r, out, scale, dy, out, 1, bm, r, 1, 0.0f, du, r, 1, ORCH_SUP_AUTO, 0);
    if (da != NULL)
        orch_sgemm(r, in, n, 1.0f, du, 1, r, x, in, 1, 1.0f, da, in, 1, ORCH_SUP_AUTO, 0);
    if (dx != NULL) {
        orch_sgemm(n, in, out, 1.0f, dy, out, 1, w, in, 1, 1.0f, dx, in, 1, ORCH_SUP_AUTO, 0);
        orch_sgemm(n, in, r, 1.0f, du, r, 1, a, in, 1, 1.0f, dx, in, 1, ORCH_SUP_AUTO, 0);
    }
    if (dw != NULL)
        orch_sgemm(out, in, n, 1.0f, dy, 1, out, x, in, 1, 1.0f, dw, in, 1, ORCH_SUP_AUTO, 0);
    if (db != NULL)
        orch_linear_col_sum(db, dy, n, out);
}
