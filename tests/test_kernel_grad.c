/*
 * test_kernel_grad.c - every kernel backward against central finite
 * differences.
 *
 * Method. For a kernel with output y, the test defines the scalar
 * L = sum_j y_j * R_j with fixed random weights R (in double). The analytic
 * gradient is the kernel's backward with dy = R, accumulated into buffers
 * prefilled with 0.25 (so the += contract is checked too: 0.25 is removed
 * before comparing). The numeric gradient perturbs one input element at a
 * time and runs the fp32 forward kernel, summing L in double, with the
 * fourth-order central difference
 *     g = (8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / (12 h),  h = 2^-7,
 * so x +- h is exact in fp32 and the truncation error is O(h^4). Outputs
 * that do not depend on the perturbed element are bit-identical in every
 * evaluation and cancel exactly; the rest contribute fp32 rounding of about
 * 6e-8 |y_j R_j| / h.
 *
 * Tolerance: |analytic - numeric| <= 1e-3 * max(1, |numeric|) for every
 * element. A wrong formula misses by O(1) (checked by breaking formulas
 * by hand while writing this file: a sign in rotary_bwd, the mean term of
 * rmsnorm_bwd, the P^T in attention's dV, the bias sum).
 *
 * Shapes: several per kernel, including odd sizes, a single row, segments of
 * length 1 (attention, pooling) and strided (fused qkv) layouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "tests/testutil.h"

#define H_STEP  (1.0 / 128.0)
#define TOL     1e-3
#define PREFILL 0.25f

static unsigned long long g_seed = 0x5eed1234ULL;

static float *alloc_rand(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    fill_uniform(p, n, lo, hi, &g_seed);
    return p;
}

static float *alloc_fill(size_t n, float v)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

/* sum_j y_j r_j in double. */
static double dot(const float *y, const float *r, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)y[i] * (double)r[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* Compares grad (prefilled with PREFILL before the backward) with the
 * finite-difference gradient of loss with respect to x[0..n). Elements
 * where skip != NULL && skip[i] are not checked (e.g. unused columns). */
static void fd_check(const char *what, loss_fn loss, void *ctx, float *x, size_t n,
                     const float *grad, const unsigned char *skip)
{
    double worst = 0.0, worst_a = 0.0, worst_n = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip != NULL && skip[i])
            continue;
        float v = x[i];
        x[i] = (float)(v + H_STEP);
        double p1 = loss(ctx);
        x[i] = (float)(v - H_STEP);
        double m1 = loss(ctx);
        x[i] = (float)(v + 2 * H_STEP);
        double p2 = loss(ctx);
        x[i] = (float)(v - 2 * H_STEP);
        double m2 = loss(ctx);
        x[i] = v;
        double num = (8.0 * (p1 - m1) - (p2 - m2)) / (12.0 * H_STEP);
        double ana = (double)grad[i] - (double)PREFILL;
        double err = fabs(ana - num) / fmax(1.0, fabs(num));
        if (err > worst) {
            worst = err;
            worst_i = i;
            worst_a = ana;
            worst_n = num;
        }
    }
    printf("  %-34s n=%-5zu max rel err %.2e", what, n, worst);
    if (worst > TOL)
        printf("  FAIL at %zu: analytic %.7g numeric %.7g", worst_i, worst_a, worst_n);
    printf("\n");
    assert_true(worst <= TOL);
}

/* ================================================================ linear */

typedef struct lin_ctx {
    int n, in, out;
    float *x, *w, *b, *y, *r;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    orch_linear_fwd(c->y, c->x, c->w, c->b, c->n, c->in, c->out);
    return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void check_linear(int n, int in, int out, int bias)
{
    lin_ctx c = {n, in, out, NULL, NULL, NULL, NULL, NULL};
    c.x = alloc_rand((size_t)n * in, -1, 1);
    c.w = alloc_rand((size_t)out * in, -1, 1);
    c.b = bias ? alloc_rand((size_t)out, -1, 1) : NULL;
    c.y = alloc_fill((size_t)n * out, 0);
    c.r = alloc_rand((size_t)n * out, -1, 1);
    float *dx = alloc_fill((size_t)n * in, PREFILL), *dw = alloc_fill((size_t)out * in, PREFILL);
    float *db = alloc_fill((size_t)out, PREFILL);
    orch_linear_bwd(dx, dw, bias ? db : NULL, c.r, c.x, c.w, n, in, out);
    char name[64];
    printf("linear n=%d in=%d out=%d bias=%d\n", n, in, out, bias);
    snprintf(name, sizeof name, "dx");
    fd_check(name, lin_loss, &c, c.x, (size_t)n * in, dx, NULL);
    fd_check("dW", lin_loss, &c, c.w, (size_t)out * in, dw, NULL);
    if (bias)
        fd_check("db", lin_loss, &c, c.b, (size_t)out, db, NULL);
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.y);
    free(c.r);
    free(dx);
    free(dw);
    free(db);
}

static void test_linear_grad(void **state)
{
    (void)state;
    check_linear(1, 1, 1, 1);
    check_linear(1, 5, 3, 1);
    check_linear(3, 5, 7, 1);
    check_linear(7, 4, 9, 0);
    check_linear(17, 33, 19, 1);
}

/* ================================================================== LoRA */

typedef struct lora_ctx {
    int n, in, out, r;
    float scale;
    float *x, *w, *b, *a, *bm, *y, *u, *rw;
} lora_ctx;

static double lora_loss(void *p)
{
    lora_ctx *c = p;
    orch_lora_linear_fwd(c->y, c->u, c->x, c->w, c->b, c->a, c->bm, c->scale, c->n, c->in, c->out,
                         c->r);
    return dot(c->y, c->rw, (size_t)c->n * c->out);
}

static void check_lora(int n, int in, int out, int r, float alpha)
{
    lora_ctx c = {n, in, out, r, alpha / (float)r, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.x = alloc_rand((size_t)n * in, -1, 1);
    c.w = alloc_rand((size_t)out * in, -1, 1);
    c.b = alloc_rand((size_t)out, -1, 1);
    c.a = alloc_rand((size_t)r * in, -1, 1);
    c.bm = alloc_rand((size_t)out * r, -1, 1);
    c.y = alloc_fill((size_t)n * out, 0);
    c.u = alloc_fill((size_t)n * r, 0);
    c.rw = alloc_rand((size_t)n * out, -1, 1);
    float *dx = alloc_fill((size_t)n * in, PREFILL), *da = alloc_fill((size_t)r * in, PREFILL);
    float *dbm = alloc_fill((size_t)out * r, PREFILL), *dw = alloc_fill((size_t)out * in, PREFILL);
    float *db = alloc_fill((size_t)out, PREFILL), *du = alloc_fill((size_t)n * r, 0);
    lora_loss(&c); /* u for the backward */
    orch_lora_linear_bwd(dx, da, dbm, dw, db, du, c.rw, c.x, c.u, c.w, c.a, c.bm, c.scale, n, in,
                         out, r);
    printf("lora n=%d in=%d out=%d r=%d alpha=%g\n", n, in, out, r, alpha);
    fd_check("dx", lora_loss, &c, c.x, (size_t)n * in, dx, NULL);
    fd_check("dA", lora_loss, &c, c.a, (size_t)r * in, da, NULL);
    fd_check("dB", lora_loss, &c, c.bm, (size_t)out * r, dbm, NULL);
    fd_check("dW (asked for)", lora_loss, &c, c.w, (size_t)out * in, dw, NULL);
    fd_check("db (asked for)", lora_loss, &c, c.b, (size_t)out, db, NULL);

    /* Frozen base: only dA, dB (and dx) requested; dW, db untouched. */
    float *da2 = alloc_fill((size_t)r * in, PREFILL), *dbm2 = alloc_fill((size_t)out * r, PREFILL);
    orch_lora_linear_bwd(NULL, da2, dbm2, NULL, NULL, du, c.rw, c.x, c.u, c.w, c.a, c.bm, c.scale,
                         n, in, out, r);
    fd_check("dA (frozen W)", lora_loss, &c, c.a, (size_t)r * in, da2, NULL);
    fd_check("dB (frozen W)", lora_loss, &c, c.bm, (size_t)out * r, dbm2, NULL);
    free(da2);
    free(dbm2);
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.a);
    free(c.bm);
    free(c.y);
    free(c.u);
    free(c.rw);
    free(dx);
    free(da);
    free(dbm);
    free(dw);
    free(db);
    free(du);
}

static void test_lora_grad(void **state)
{
    (void)state;
    check_lora(1, 3, 2, 1, 1.0f);
    check_lora(5, 7, 6, 2, 4.0f);
    check_lora(9, 12, 11, 4, 8.0f);
}

/* =============================================================== RMSNorm */

typedef struct rms_ctx {
    int n, d;
    float eps;
    float *x, *w, *y, *rstd, *r;
} rms_ctx;

static double rms_loss(void *p)
{
    rms_ctx *c = p;
    orch_rmsnorm_fwd(c->y, c->rstd, c->x, c->w, c->eps, c->n, c->d);
    return dot(c->y, c->r, (size_t)c->n * c->d);
}

static void check_rmsnorm(int n, int d, float eps, int weighted)
{
    rms_ctx c = {n, d, eps, NULL, NULL, NULL, NULL, NULL};
    c.x = alloc_rand((size_t)n * d, -1, 1);
    c.w = weighted ? alloc_rand((size_t)d, 0.5f, 1.5f) : NULL;
    c.y = alloc_fill((size_t)n * d, 0);
    c.rstd = alloc_fill((size_t)n, 0);
    c.r = alloc_rand((size_t)n * d, -1, 1);
    float *dx = alloc_fill((size_t)n * d, PREFILL), *dw = alloc_fill((size_t)d, PREFILL);
    rms_loss(&c);
    orch_rmsnorm_bwd(dx, weighted ? dw : NULL, c.r, c.x, c.w, c.rstd, n, d);
    printf("rmsnorm n=%d d=%d eps=%g weight=%d\n", n, d, eps, weighted);
    fd_check("dx", rms_loss, &c, c.x, (size_t)n * d, dx, NULL);
    if (weighted)
        fd_check("dw", rms_loss, &c, c.w, (size_t)d, dw, NULL);
    free(c.x);
    free(c.w);
    free(c.y);
    free(c.rstd);
    free(c.r);
    free(dx);
    free(dw);
}

static void test_rmsnorm_grad(void **state)
{
    (void)state;
    check_rmsnorm(1, 1, 1e-6f, 1);
    check_rmsnorm(1, 7, 1e-6f, 1);
    check_rmsnorm(4, 9, 1e-6f, 1);
    check_rmsnorm(3, 16, 1e-2f, 1);
    check_rmsnorm(5, 13, 1e-6f, 0);
}

/* =========================================================== activations */

typedef struct act_ctx {
    int kind; /* 0 gelu erf, 1 gelu tanh, 2 silu, 3 swiglu, 4 add */
    int64_t n;
    float *x, *x2, *y, *r;
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *c = p;
    switch (c->kind) {
    case 0:
    case 1:
        orch_gelu_fwd(c->y, c->x, c->n, c->kind);
        break;
    case 2:
        orch_silu_fwd(c->y, c->x, c->n);
        break;
    case 3:
        orch_swiglu_fwd(c->y, c->x, c->x2, c->n);
        break;
    default:
        orch_add_fwd(c->y, c->x, c->x2, c->n);
        break;
    }
    return dot(c->y, c->r, (size_t)c->n);
}

static void check_act(int kind, int64_t n)
{
    static const char *names[] = {"gelu (erf)", "gelu (tanh)", "silu", "swiglu", "add"};
    act_ctx c = {kind, n, NULL, NULL, NULL, NULL};
    c.x = alloc_rand((size_t)n, -4, 4);
    c.x2 = alloc_rand((size_t)n, -2, 2);
    c.y = alloc_fill((size_t)n, 0);
    c.r = alloc_rand((size_t)n, -1, 1);
    float *d1 = alloc_fill((size_t)n, PREFILL), *d2 = alloc_fill((size_t)n, PREFILL);
    switch (kind) {
    case 0:
    case 1:
        orch_gelu_bwd(d1, c.r, c.x, n, kind);
        break;
    case 2:
        orch_silu_bwd(d1, c.r, c.x, n);
        break;
    case 3:
        orch_swiglu_bwd(d1, d2, c.r, c.x, c.x2, n);
        break;
    default:
        orch_add_bwd(d1, d2, c.r, n);
        break;
    }
    printf("%s n=%lld\n", names[kind], (long long)n);
    fd_check("dx (first input)", act_loss, &c, c.x, (size_t)n, d1, NULL);
    if (kind >= 3)
        fd_check("d second input", act_loss, &c, c.x2, (size_t)n, d2, NULL);
    if (kind == 3) { /* one-sided requests */
        float *dg = alloc_fill((size_t)n, PREFILL), *du = alloc_fill((size_t)n, PREFILL);
        orch_swiglu_bwd(dg, NULL, c.r, c.x, c.x2, n);
        orch_swiglu_bwd(NULL, du, c.r, c.x, c.x2, n);
        fd_check("dg only", act_loss, &c, c.x, (size_t)n, dg, NULL);
        fd_check("du only", act_loss, &c, c.x2, (size_t)n, du, NULL);
        free(dg);
        free(du);
    }
    free(c.x);
    free(c.x2);
    free(c.y);
    free(c.r);
    free(d1);
    free(d2);
}

static void test_activation_grad(void **state)
{
    (void)state;
    for (int kind = 0; kind < 5; kind++) {
        check_act(kind, 1);
        check_act(kind, 37);
        check_act(kind, 200);
    }
}

/* ============================================================= attention */

typedef struct attn_ctx {
    int n, h, hd, n_seg, ld, fused;
    const int32_t *cu;
    float *qkv;       /* fused (N, 3D) or q | k | v each (N, D) */
    float *q, *k, *v; /* views */
    float *out, *lse, *scratch, *r;
    size_t scratch_n;
} attn_ctx;

static double attn_loss(void *p)
{
    attn_ctx *c = p;
    orch_attention_fwd(c->out, c->lse, c->scratch, c->scratch_n, c->q, c->k, c->v, c->ld, c->cu,
                       c->n_seg, c->h, c->hd);
    return dot(c->out, c->r, (size_t)c->n * c->h * c->hd);
}

static void check_attention(const int32_t *cu, int n_seg, int h, int hd, int fused, float amp)
{
    int n = cu[n_seg], dm = h * hd;
    attn_ctx c = {0};
    c.n = n;
    c.h = h;
    c.hd = hd;
    c.n_seg = n_seg;
    c.cu = cu;
    c.fused = fused;
    c.qkv = alloc_rand((size_t)n * 3 * dm, -amp, amp);
    if (fused) {
        c.ld = 3 * dm;
        c.q = c.qkv;
        c.k = c.qkv + dm;
        c.v = c.qkv + 2 * dm;
    } else {
        c.ld = dm;
        c.q = c.qkv;
        c.k = c.qkv + (size_t)n * dm;
        c.v = c.qkv + 2 * (size_t)n * dm;
    }
    c.out = alloc_fill((size_t)n * dm, 0);
    c.lse = alloc_fill((size_t)n * h, 0);
    c.scratch_n = orch_attention_scratch_floats(cu, n_seg, 0);
    c.scratch = alloc_fill(c.scratch_n, 0);
    c.r = alloc_rand((size_t)n * dm, -1, 1);
    float *dqkv = alloc_fill((size_t)n * 3 * dm, PREFILL);
    float *dq, *dk, *dv;
    int ld_d;
    if (fused) {
        ld_d = 3 * dm;
        dq = dqkv;
        dk = dqkv + dm;
        dv = dqkv + 2 * dm;
    } else {
        ld_d = dm;
        dq = dqkv;
        dk = dqkv + (size_t)n * dm;
        dv = dqkv + 2 * (size_t)n * dm;
    }
    attn_loss(&c);
    orch_attention_bwd(dq, dk, dv, ld_d, c.scratch, c.scratch_n, c.r, c.out, c.lse, c.q, c.k, c.v,
                       c.ld, cu, n_seg, h, hd);
    printf("attention N=%d segs=%d H=%d hd=%d fused=%d amp=%g\n", n, n_seg, h, hd, fused, amp);
    fd_check("dq, dk, dv", attn_loss, &c, c.qkv, (size_t)n * 3 * dm, dqkv, NULL);
    free(c.qkv);
    free(c.out);
    free(c.lse);
    free(c.scratch);
    free(c.r);
    free(dqkv);
}

static void test_attention_grad(void **state)
{
    (void)state;
    static const int32_t one_row[] = {0, 1};
    static const int32_t mixed[] = {0, 1, 4, 9};
    static const int32_t with_empty[] = {0, 3, 3, 8};
    static const int32_t single[] = {0, 6};
    check_attention(one_row, 1, 1, 2, 0, 1.0f);
    check_attention(mixed, 3, 2, 4, 1, 1.0f);
    check_attention(mixed, 3, 3, 2, 0, 2.0f);
    check_attention(with_empty, 3, 2, 4, 1, 1.0f);
    check_attention(single, 1, 1, 6, 1, 1.5f);
}

/* ================================================================ rotary */

typedef struct rot_ctx {
    int n, h, hd, ld;
    float *x, *y, *ct, *st, *r;
} rot_ctx;

static double rot_loss(void *p)
{
    rot_ctx *c = p;
    orch_rotary_fwd(c->y, c->ld, c->x, c->ld, c->ct, c->st, c->n, c->h, c->hd);
    return dot(c->y, c->r, (size_t)c->n * c->ld);
}

static void check_rotary(int n, int h, int hd, int extra_cols)
{
    rot_ctx c = {n, h, hd, h * hd + extra_cols, NULL, NULL, NULL, NULL, NULL};
    int32_t *pos = malloc(sizeof *pos * 2 * (size_t)n);
    assert_non_null(pos);
    for (int i = 0; i < n; i++) {
        pos[2 * i] = (i * 7) % 5;
        pos[2 * i + 1] = (i * 3) % 11;
    }
    c.x = alloc_rand((size_t)n * c.ld, -1, 1);
    c.y = alloc_fill((size_t)n * c.ld, 0);
    c.ct = alloc_fill((size_t)n * hd, 0);
    c.st = alloc_fill((size_t)n * hd, 0);
    c.r = alloc_rand((size_t)n * c.ld, -1, 1);
    unsigned char *skip = calloc((size_t)n * c.ld, 1);
    assert_non_null(skip);
    for (int i = 0; i < n; i++)
        for (int j = h * hd; j < c.ld; j++) {
            c.r[(size_t)i * c.ld + j] = 0.0f; /* columns the kernel must not touch */
            skip[(size_t)i * c.ld + j] = 1;
        }
    orch_rotary_tables(c.ct, c.st, pos, n, hd, 10000.0f);
    /* rotary_bwd overwrites: build dx = PREFILL + R^T dy by hand. */
    float *dx = alloc_fill((size_t)n * c.ld, 0);
    orch_rotary_bwd(dx, c.ld, c.r, c.ld, c.ct, c.st, n, h, hd);
    for (size_t i = 0; i < (size_t)n * c.ld; i++)
        dx[i] += PREFILL;
    printf("rotary n=%d H=%d hd=%d ld=%d\n", n, h, hd, c.ld);
    fd_check("dx", rot_loss, &c, c.x, (size_t)n * c.ld, dx, skip);
    /* In place: dy buffer becomes dx. */
    float *inplace = malloc(sizeof *inplace * (size_t)n * c.ld);
    assert_non_null(inplace);
    memcpy(inplace, c.r, sizeof *inplace * (size_t)n * c.ld);
    orch_rotary_bwd(inplace, c.ld, inplace, c.ld, c.ct, c.st, n, h, hd);
    for (size_t i = 0; i < (size_t)n * c.ld; i++)
        if (!skip[i])
            assert_true(fabsf(inplace[i] + PREFILL - dx[i]) <= 1e-6f);
    free(inplace);
    free(pos);
    free(skip);
    free(c.x);
    free(c.y);
    free(c.ct);
    free(c.st);
    free(c.r);
    free(dx);
}

static void test_rotary_grad(void **state)
{
    (void)state;
    check_rotary(1, 1, 4, 0);
    check_rotary(5, 2, 8, 3);
    check_rotary(9, 3, 12, 0);
}

/* ============================================================ mean pool */

typedef struct pool_ctx {
    const int32_t *off;
    int n_seg, d;
    float *x, *y, *r;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    orch_mean_pool_fwd(c->y, c->x, c->off, c->n_seg, c->d);
    return dot(c->y, c->r, (size_t)c->n_seg * c->d);
}

static void test_pool_grad(void **state)
{
    (void)state;
    static const int32_t off[] = {0, 1, 1, 5, 12};
    pool_ctx c = {off, 4, 5, NULL, NULL, NULL};
    c.x = alloc_rand(12 * 5, -1, 1);
    c.y = alloc_fill(4 * 5, 0);
    c.r = alloc_rand(4 * 5, -1, 1);
    float *dx = alloc_fill(12 * 5, PREFILL);
    orch_mean_pool_bwd(dx, c.r, off, 4, 5);
    printf("mean_pool segs {1,0,4,7} d=5\n");
    fd_check("dx", pool_loss, &c, c.x, 12 * 5, dx, NULL);
    free(c.x);
    free(c.y);
    free(c.r);
    free(dx);
}

/* ================================================================ losses */

typedef struct ce_ctx {
    int b, c;
    const int32_t *labels;
    float *logits;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    return orch_cross_entropy_fwd(NULL, c->logits, c->labels, c->b, c->c);
}

static void check_ce(int b, int c, const int32_t *labels, float amp)
{
    ce_ctx x = {b, c, labels, NULL};
    x.logits = alloc_rand((size_t)b * c, -amp, amp);
    float *lse = alloc_fill((size_t)b, 0);
    float *d = alloc_fill((size_t)b * c, PREFILL), *d2 = alloc_fill((size_t)b * c, PREFILL);
    orch_cross_entropy_fwd(lse, x.logits, labels, b, c);
    orch_cross_entropy_bwd(d, x.logits, lse, labels, 1.0f, b, c);
    orch_cross_entropy_bwd(d2, x.logits, NULL, labels, 1.0f, b, c);
    printf("cross_entropy B=%d C=%d amp=%g\n", b, c, amp);
    fd_check("dlogits (saved lse)", ce_loss, &x, x.logits, (size_t)b * c, d, NULL);
    fd_check("dlogits (recomputed lse)", ce_loss, &x, x.logits, (size_t)b * c, d2, NULL);
    free(x.logits);
    free(lse);
    free(d);
    free(d2);
}

static void test_cross_entropy_grad(void **state)
{
    (void)state;
    static const int32_t l1[] = {0};
    static const int32_t l4[] = {2, 0, -100, 4};
    static const int32_t l3[] = {6, 1, 3};
    check_ce(1, 1, l1, 1.0f);
    check_ce(4, 5, l4, 2.0f);
    check_ce(3, 7, l3, 8.0f);
}

typedef struct mse_ctx {
    int64_t n;
    float *p, *t;
} mse_ctx;

static double mse_loss(void *p)
{
    mse_ctx *c = p;
    return orch_mse_fwd(c->p, c->t, c->n);
}

static void test_mse_grad(void **state)
{
    (void)state;
    for (int64_t n = 1; n <= 33; n += 16) {
        mse_ctx c = {n, alloc_rand((size_t)n, -2, 2), alloc_rand((size_t)n, -2, 2)};
        float *d = alloc_fill((size_t)n, PREFILL);
        orch_mse_bwd(d, c.p, c.t, 1.0f, n);
        printf("mse n=%lld\n", (long long)n);
        fd_check("dpred", mse_loss, &c, c.p, (size_t)n, d, NULL);
        free(c.p);
        free(c.t);
        free(d);
    }
}

/* ======================================================= a chained block */

/* rmsnorm -> linear(qkv) -> rotary(q,k in place) -> attention -> linear:
 * the composition the executor runs, through the in-place/strided paths. */
typedef struct chain_ctx {
    int n, d, h, hd, n_seg;
    const int32_t *cu;
    float *x, *nw, *wqkv, *bqkv, *wo, *xn, *rstd, *qkv, *att, *lse, *y, *r, *ct, *st, *scratch;
    size_t scratch_n;
} chain_ctx;

static double chain_loss(void *p)
{
    chain_ctx *c = p;
    int dm = c->d;
    orch_rmsnorm_fwd(c->xn, c->rstd, c->x, c->nw, 1e-6f, c->n, dm);
    orch_linear_fwd(c->qkv, c->xn, c->wqkv, c->bqkv, c->n, dm, 3 * dm);
    orch_rotary_fwd(c->qkv, 3 * dm, c->qkv, 3 * dm, c->ct, c->st, c->n, c->h, c->hd);
    orch_rotary_fwd(c->qkv + dm, 3 * dm, c->qkv + dm, 3 * dm, c->ct, c->st, c->n, c->h, c->hd);
    orch_attention_fwd(c->att, c->lse, c->scratch, c->scratch_n, c->qkv, c->qkv + dm,
                       c->qkv + 2 * dm, 3 * dm, c->cu, c->n_seg, c->h, c->hd);
    orch_linear_fwd(c->y, c->att, c->wo, NULL, c->n, dm, dm);
    return dot(c->y, c->r, (size_t)c->n * dm);
}

static void test_chain_grad(void **state)
{
    (void)state;
    static const int32_t cu[] = {0, 4, 5, 7};
    chain_ctx c = {0};
    c.n = 7;
    c.h = 2;
    c.hd = 4;
    c.d = 8;
    c.n_seg = 3;
    c.cu = cu;
    int n = c.n, dm = c.d;
    c.x = alloc_rand((size_t)n * dm, -1, 1);
    c.nw = alloc_rand((size_t)dm, 0.5f, 1.5f);
    c.wqkv = alloc_rand((size_t)3 * dm * dm, -0.5f, 0.5f);
    c.bqkv = alloc_rand((size_t)3 * dm, -0.5f, 0.5f);
    c.wo = alloc_rand((size_t)dm * dm, -0.5f, 0.5f);
    c.xn = alloc_fill((size_t)n * dm, 0);
    c.rstd = alloc_fill((size_t)n, 0);
    c.qkv = alloc_fill((size_t)n * 3 * dm, 0);
    c.att = alloc_fill((size_t)n * dm, 0);
    c.lse = alloc_fill((size_t)n * c.h, 0);
    c.y = alloc_fill((size_t)n * dm, 0);
    c.r = alloc_rand((size_t)n * dm, -1, 1);
    c.ct = alloc_fill((size_t)n * c.hd, 0);
    c.st = alloc_fill((size_t)n * c.hd, 0);
    int32_t pos[14];
    for (int i = 0; i < n; i++) {
        pos[2 * i] = i / 2;
        pos[2 * i + 1] = i % 3;
    }
    orch_rotary_tables(c.ct, c.st, pos, n, c.hd, 10000.0f);
    c.scratch_n = orch_attention_scratch_floats(cu, 3, 0);
    c.scratch = alloc_fill(c.scratch_n, 0);
    chain_loss(&c);
    /* backward, in the executor's order */
    float *datt = alloc_fill((size_t)n * dm, 0), *dqkv = alloc_fill((size_t)n * 3 * dm, 0);
    float *dxn = alloc_fill((size_t)n * dm, 0), *dx = alloc_fill((size_t)n * dm, PREFILL);
    float *dwqkv = alloc_fill((size_t)3 * dm * dm, PREFILL);
    float *dnw = alloc_fill((size_t)dm, PREFILL);
    orch_linear_bwd(datt, NULL, NULL, c.r, c.att, c.wo, n, dm, dm);
    orch_attention_bwd(dqkv, dqkv + dm, dqkv + 2 * dm, 3 * dm, c.scratch, c.scratch_n, datt, c.att,
                       c.lse, c.qkv, c.qkv + dm, c.qkv + 2 * dm, 3 * dm, cu, 3, c.h, c.hd);
    orch_rotary_bwd(dqkv, 3 * dm, dqkv, 3 * dm, c.ct, c.st, n, c.h, c.hd);
    orch_rotary_bwd(dqkv + dm, 3 * dm, dqkv + dm, 3 * dm, c.ct, c.st, n, c.h, c.hd);
    orch_linear_bwd(dxn, dwqkv, NULL, dqkv, c.xn, c.wqkv, n, dm, 3 * dm);
    orch_rmsnorm_bwd(dx, dnw, dxn, c.x, c.nw, c.rstd, n, dm);
    printf("chain rmsnorm-qkv-rotary-attention-proj N=7 D=8 H=2\n");
    fd_check("dx", chain_loss, &c, c.x, (size_t)n * dm, dx, NULL);
    fd_check("dWqkv", chain_loss, &c, c.wqkv, (size_t)3 * dm * dm, dwqkv, NULL);
    fd_check("d norm weight", chain_loss, &c, c.nw, (size_t)dm, dnw, NULL);
    float *all[] = {c.x, c.nw, c.wqkv, c.bqkv, c.wo, c.xn, c.rstd, c.qkv, c.att, c.lse,    c.y,
                    c.r, c.ct, c.st,   datt,   dqkv, dxn,  dx,     dwqkv, dnw,   c.scratch};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

int main(void)
{
    orch_threads_set(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_grad),    cmocka_unit_test(test_lora_grad),
        cmocka_unit_test(test_rmsnorm_grad),   cmocka_unit_test(test_activation_grad),
        cmocka_unit_test(test_attention_grad), cmocka_unit_test(test_rotary_grad),
        cmocka_unit_test(test_pool_grad),      cmocka_unit_test(test_cross_entropy_grad),
        cmocka_unit_test(test_mse_grad),       cmocka_unit_test(test_chain_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
