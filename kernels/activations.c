/*
 * activations.c - GELU (erf exact or tanh form), SiLU, SwiGLU, residual add,
 * and their backwards. Element-wise over n floats.
 *
 * Each pass is a branch-free `omp simd` loop in a function compiled for AVX2
 * and baseline (ORCH_SIMD_CLONES_512), split into contiguous chunks over the
 * thread team when n is large enough to pay for it. exp and erf are the
 * vectorizable fp32 approximations of vmath.h (errors stated there).
 */
/* Contract a*b+c into FMA where the CPU has it (the AVX2 clones): the exp
 * and erf polynomials run ~30% faster. -std=c11 alone turns contraction off.
 * This changes rounding only (FMA is exact before its one rounding). */
#pragma GCC optimize("fp-contract=fast")

#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <omp.h>

#define SQRT1_2      0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
#define GELU_K       0.79788456080286536f /* sqrt(2/pi) */
#define GELU_C       0.044715f

/* Runs body(lo, hi) over [0, n) split across the team. */
#define PAR_CHUNKS(n, call)                                                                        \
    do {                                                                                           \
        int nt = orch_par_threads(n);                                                              \
        ORCH_PARALLEL(nt, {                                                                        \
            int64_t lo, hi;                                                                        \
            orch_chunk((n), omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);                \
            call;                                                                                  \
        });                                                                                        \
    } while (0)

/* tanh(z) = 1 - 2 / (exp(2z) + 1): saturates cleanly at +-1. */
static inline float tanh_fast(float z)
{
    return 1.0f - 2.0f / (orch_expf(2.0f * z) + 1.0f);
}

/* ------------------------------------------------------------------ GELU */

ORCH_SIMD_CLONES_512
static void gelu_fwd_chunk(float *y, const float *x, int64_t lo, int64_t hi, int tanh_form)
{
    if (!tanh_form) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + orch_erff(v * SQRT1_2));
        }
    } else {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i];
            float t = tanh_fast(GELU_K * (v + GELU_C * v * v * v));
            y[i] = 0.5f * v * (1.0f + t);
        }
    }
}

ORCH_SIMD_CLONES_512
static void gelu_bwd_chunk(float *dx, const float *dy, const float *x, int64_t lo, int64_t hi,
                           int tanh_form)
{
    if (!tanh_form) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i];
            float cdf = 0.5f * (1.0f + orch_erff(v * SQRT1_2));
            float pdf = INV_SQRT_2PI * orch_expf(-0.5f * v * v);
            dx[i] += dy[i] * (cdf + v * pdf);
        }
    } else {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            /* beyond |x| = 10 the derivative is 0 or 1 in fp32; clamping
             * keeps x^3 finite (no Inf * 0 = NaN for |x| ~ 1e30) */
            float v = orch_self(x[i] < 10.0f, x[i], 10.0f);
            v = orch_self(v > -10.0f, v, -10.0f);
            v = orch_self(x[i] != x[i], x[i], v);
            float t = tanh_fast(GELU_K * (v + GELU_C * v * v * v));
            float dt = (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
            dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
        }
    }
}

void orch_gelu_fwd(float *y, const float *x, int64_t n, int tanh_form)
{
    PAR_CHUNKS(n, gelu_fwd_chunk(y, x, lo, hi, tanh_form));
}

void orch_gelu_bwd(float *dx, const float *dy, const float *x, int64_t n, int tanh_form)
{
    PAR_CHUNKS(n, gelu_bwd_chunk(dx, dy, x, lo, hi, tanh_form));
}

/* ------------------------------------------------------------------ SiLU */

ORCH_SIMD_CLONES_512
static void silu_fwd_chunk(float *y, const float *x, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        y[i] = x[i] * orch_sigmoidf(x[i]);
}

ORCH_SIMD_CLONES_512
static void silu_bwd_chunk(float *dx, const float *dy, const float *x, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float s = orch_sigmoidf(x[i]);
        dx[i] += dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
    }
}

void orch_silu_fwd(float *y, const float *x, int64_t n)
{
    PAR_CHUNKS(n, silu_fwd_chunk(y, x, lo, hi));
}

void orch_silu_bwd(float *dx, const float *dy, const float *x, int64_t n)
{
    PAR_CHUNKS(n, silu_bwd_chunk(dx, dy, x, lo, hi));
}

/* ----------------------------------------------- fused with the NaN scan */

/* The kernels' arguments, for orch_run_scanned's block callback. */
typedef struct ew_args {
    float *y;
    const float *a, *b;
    int tanh_form;
} ew_args;

static void gelu_block(void *ctx, int64_t lo, int64_t hi)
{
    const ew_args *e = ctx;
    gelu_fwd_chunk(e->y, e->a, lo, hi, e->tanh_form);
}

orch_finite_stats orch_gelu_fwd_scan(float *y, const float *x, int64_t n, int tanh_form)
{
    ew_args e = {y, x, NULL, tanh_form};
    return orch_run_scanned(gelu_block, &e, y, n, 1);
}

static void silu_block(void *ctx, int64_t lo, int64_t hi)
{
    const ew_args *e = ctx;
    silu_fwd_chunk(e->y, e->a, lo, hi);
}

orch_finite_stats orch_silu_fwd_scan(float *y, const float *x, int64_t n)
{
    ew_args e = {y, x, NULL, 0};
    return orch_run_scanned(silu_block, &e, y, n, 1);
}

/* ---------------------------------------------------------------- SwiGLU */

ORCH_SIMD_CLONES_512
static void swiglu_fwd_chunk(float *h, const float *g, const float *u, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        h[i] = g[i] * orch_sigmoidf(g[i]) * u[i];
}

ORCH_SIMD_CLONES_512
static void swiglu_bwd_chunk(float *dg, float *du, const float *dh, const float *g, const float *u,
                             int64_t lo, int64_t hi)
{
    if (dg != NULL && du != NULL) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float s = orch_sigmoidf(g[i]);
            float d = dh[i];
            dg[i] += d * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
            du[i] += d * (g[i] * s);
        }
    } else if (dg != NULL) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float s = orch_sigmoidf(g[i]);
            dg[i] += dh[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
        }
    } else if (du != NULL) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++)
            du[i] += dh[i] * (g[i] * orch_sigmoidf(g[i]));
    }
}

void orch_swiglu_fwd(float *h, const float *g, const float *u, int64_t n)
{
    PAR_CHUNKS(n, swiglu_fwd_chunk(h, g, u, lo, hi));
}

static void swiglu_block(void *ctx, int64_t lo, int64_t hi)
{
    const ew_args *e = ctx;
    swiglu_fwd_chunk(e->y, e->a, e->b, lo, hi);
}

orch_finite_stats orch_swiglu_fwd_scan(float *h, const float *g, const float *u, int64_t n)
{
    ew_args e = {h, g, u, 0};
    return orch_run_scanned(swiglu_block, &e, h, n, 1);
}

void orch_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u,
                     int64_t n)
{
    PAR_CHUNKS(n, swiglu_bwd_chunk(dg, du, dh, g, u, lo, hi));
}

/* ------------------------------------------------------------ residual add */

ORCH_SIMD_CLONES_512
static void add_chunk(float *y, const float *a, const float *b, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        y[i] = a[i] + b[i];
}

ORCH_SIMD_CLONES_512
static void acc_chunk(float *d, const float *dy, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        d[i] += dy[i];
}

void orch_add_fwd(float *y, const float *a, const float *b, int64_t n)
{
    PAR_CHUNKS(n, add_chunk(y, a, b, lo, hi));
}

static void add_block(void *ctx, int64_t lo, int64_t hi)
{
    const ew_args *e = ctx;
    add_chunk(e->y, e->a, e->b, lo, hi);
}

orch_finite_stats orch_add_fwd_scan(float *y, const float *a, const float *b, int64_t n)
{
    ew_args e = {y, a, b, 0};
    return orch_run_scanned(add_block, &e, y, n, 1);
}

void orch_add_bwd(float *da, float *db, const float *dy, int64_t n)
{
    if (da != NULL)
        PAR_CHUNKS(n, acc_chunk(da, dy, lo, hi));
    if (db != NULL)
        PAR_CHUNKS(n, acc_chunk(db, dy, lo, hi));
}
