/*
 * test_kernel_edge.c - edge cases of the kernels room: finite_scan at first,
 * middle and last positions; fp16/bf16 rounding (65504, 65520 -> Inf,
 * subnormals, NaN) bit-exact against half.h; softmax and cross-entropy with
 * all-equal and very large logits; optimizer steps against values computed
 * by hand with PyTorch's algorithms; clip_grad_norm_ semantics; determinism
 * for a fixed thread count; the thread setting itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

static unsigned long long g_seed = 0xed6e5eedULL;

static float *rnd(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    fill_uniform(p, n, lo, hi, &g_seed);
    return p;
}

static float *zeros(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static int all_finite(const float *x, size_t n)
{
    orch_finite_stats st = orch_finite_scan(x, (int64_t)n);
    return st.nan_count == 0 && st.inf_count == 0 && st.first_bad == -1;
}

/* ============================================================ finite_scan */

static void scan_case(size_t n)
{
    float *x = rnd(n, -2, 2);
    x[n / 3] = -7.5f;                        /* the largest finite magnitude */
    float want_max = n >= 10 ? 7.5f : -1.0f; /* tiny n: the marker gets overwritten */
    orch_finite_stats st = orch_finite_scan(x, (int64_t)n);
    assert_int_equal(st.nan_count, 0);
    assert_int_equal(st.inf_count, 0);
    assert_int_equal(st.first_bad, -1);
    assert_true(st.max_abs == 7.5f);

    size_t pos[3] = {0, n / 2, n - 1};
    for (int p = 0; p < 3; p++) {
        float save = x[pos[p]];
        x[pos[p]] = NAN;
        st = orch_finite_scan(x, (int64_t)n);
        assert_int_equal(st.nan_count, 1);
        assert_int_equal(st.inf_count, 0);
        assert_int_equal(st.first_bad, (int64_t)pos[p]);
        assert_true(want_max < 0 || st.max_abs == want_max);
        x[pos[p]] = -INFINITY;
        st = orch_finite_scan(x, (int64_t)n);
        assert_int_equal(st.nan_count, 0);
        assert_int_equal(st.inf_count, 1);
        assert_int_equal(st.first_bad, (int64_t)pos[p]);
        x[pos[p]] = save;
    }
    /* several at once: first is the smallest index; negative NaN counts */
    if (n >= 10) {
        x[n - 1] = INFINITY;
        x[n / 2] = -NAN;
        x[1] = NAN;
        st = orch_finite_scan(x, (int64_t)n);
        assert_int_equal(st.nan_count, 2);
        assert_int_equal(st.inf_count, 1);
        assert_int_equal(st.first_bad, 1);
        assert_true(st.max_abs == 7.5f);
    }
    free(x);
}

static void test_finite_scan(void **state)
{
    (void)state;
    scan_case(3);
    scan_case(1001);
    scan_case(300007); /* parallel path, several 64K blocks */
    /* empty, one element, all bad, extremes of the finite range */
    orch_finite_stats st = orch_finite_scan(NULL, 0);
    assert_int_equal(st.first_bad, -1);
    assert_true(st.max_abs == 0.0f);
    float one = -0.0f;
    st = orch_finite_scan(&one, 1);
    assert_int_equal(st.first_bad, -1);
    assert_true(st.max_abs == 0.0f);
    float bad[4] = {NAN, INFINITY, -INFINITY, NAN};
    st = orch_finite_scan(bad, 4);
    assert_int_equal(st.nan_count, 2);
    assert_int_equal(st.inf_count, 2);
    assert_int_equal(st.first_bad, 0);
    assert_true(st.max_abs == 0.0f);
    float ext[4] = {1e-45f, -FLT_MAX, FLT_MIN, 0.0f};
    st = orch_finite_scan(ext, 4);
    assert_int_equal(st.first_bad, -1);
    assert_true(st.max_abs == FLT_MAX);
}

/* ============================================================== rounding */

static float bits_f(uint32_t u)
{
    return orch_bits_f32(u);
}

static uint32_t f_bits(float f)
{
    return orch_f32_bits(f);
}

/* Rounds patterns [lo, hi) step by step with the buffer kernels and with
 * half.h's scalar conversions; they must agree bit for bit. */
static void compare_patterns(uint64_t lo, uint64_t hi, uint64_t step, int f16)
{
    enum { CHUNK = 4096 };
    float buf[CHUNK], ref[CHUNK];
    uint64_t u = lo;
    while (u < hi) {
        int k = 0;
        for (; k < CHUNK && u < hi; k++, u += step) {
            buf[k] = bits_f((uint32_t)u);
            ref[k] = f16 ? orch_round_f16(buf[k]) : orch_round_bf16(buf[k]);
        }
        if (f16)
            orch_round_f16_buf(buf, k);
        else
            orch_round_bf16_buf(buf, k);
        for (int i = 0; i < k; i++)
            if (f_bits(buf[i]) != f_bits(ref[i])) {
                printf("mismatch %s: in %08x got %08x want %08x\n", f16 ? "f16" : "bf16",
                       (unsigned)(lo + 0), (unsigned)f_bits(buf[i]), (unsigned)f_bits(ref[i]));
                fail();
            }
    }
}

static void test_round_f16(void **state)
{
    (void)state;
    struct {
        float in, want;
    } cases[] = {
        {65504.0f, 65504.0f},
        {65519.996f, 65504.0f},
        {65520.0f, INFINITY},
        {-65520.0f, -INFINITY},
        {1e6f, INFINITY},
        {INFINITY, INFINITY},
        {1.0f + 1.0f / 4096.0f, 1.0f},                    /* below half an ulp */
        {1.0f + 1.0f / 2048.0f, 1.0f},                    /* tie -> even */
        {1.0f + 3.0f / 2048.0f, 1.0f + 2.0f / 1024.0f},   /* tie -> even (up) */
        {5.9604644775390625e-8f, 5.9604644775390625e-8f}, /* 2^-24 smallest subnormal */
        {2.98023223876953125e-8f, 0.0f},                  /* 2^-25: tie -> 0 */
        {4.470348358154297e-8f, 5.9604644775390625e-8f},  /* 0.75 * 2^-24 -> 2^-24 */
        {8.940696716308594e-8f, 1.1920928955078125e-7f},  /* 1.5 * 2^-24: tie -> 2^-23 */
        {6.097555160522461e-5f, 6.097555160522461e-5f},   /* largest subnormal 1023*2^-24 */
        {6.103515625e-5f, 6.103515625e-5f},               /* 2^-14 smallest normal */
        {1e-10f, 0.0f},
        {-1e-10f, -0.0f},
        {1e-40f, 0.0f}, /* fp32 subnormal input */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float x = cases[i].in;
        orch_round_f16_buf(&x, 1);
        if (f_bits(x) != f_bits(cases[i].want))
            printf("f16 round %.9g -> %.9g, want %.9g\n", (double)cases[i].in, (double)x,
                   (double)cases[i].want);
        assert_true(f_bits(x) == f_bits(cases[i].want));
    }
    float nan = NAN;
    orch_round_f16_buf(&nan, 1);
    assert_true(isnan(nan));
    /* bit-exact with half.h: a sweep of all exponents, every pattern around
     * the overflow threshold and a dense sweep of the subnormal range */
    compare_patterns(0, 1ull << 32, 997, 1);
    compare_patterns(0x477fe000u - 4096, 0x47800000u + 4096, 1, 1);
    compare_patterns(0xc77fe000u - 4096, 0xc7800000u + 4096, 1, 1);
    compare_patterns(0x33000000u - 4096, 0x38800000u + 4096, 61, 1);
    compare_patterns(0x7f800000u, 0x7f800000u + 70000, 1, 1); /* Inf and NaNs */
}

static void test_round_bf16(void **state)
{
    (void)state;
    struct {
        float in, want;
    } cases[] = {
        {1.0f, 1.0f},
        {65504.0f, 65536.0f}, /* bf16 has 8 bits of precision... */
        {65520.0f, 65536.0f}, /* ...and fp32's range: no overflow */
        {1e38f, bits_f(0x7e960000u)},
        {FLT_MAX, INFINITY},                          /* rounds past the largest bf16 */
        {1.0f + 1.0f / 256.0f, 1.0f},                 /* tie -> even */
        {1.0f + 3.0f / 256.0f, 1.0f + 2.0f / 128.0f}, /* tie -> even (up) */
        {1e-40f, bits_f(0x00010000u)},                /* subnormals are kept */
        {-0.0f, -0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float x = cases[i].in;
        orch_round_bf16_buf(&x, 1);
        if (f_bits(x) != f_bits(cases[i].want))
            printf("bf16 round %.9g -> %08x, want %08x\n", (double)cases[i].in, (unsigned)f_bits(x),
                   (unsigned)f_bits(cases[i].want));
        assert_true(f_bits(x) == f_bits(cases[i].want));
    }
    float nan = NAN;
    orch_round_bf16_buf(&nan, 1);
    assert_true(isnan(nan));
    compare_patterns(0, 1ull << 32, 997, 0);
    compare_patterns(0x7f7f0000u, 0x7f800000u + 70000, 1, 0);
    /* large buffer: the parallel path gives the same bits */
    size_t n = 200003;
    float *x = rnd(n, -70000, 70000), *y = malloc(n * sizeof *y);
    assert_non_null(y);
    for (size_t i = 0; i < n; i++)
        y[i] = orch_round_f16(x[i]);
    orch_round_f16_buf(x, (int64_t)n);
    assert_memory_equal(x, y, n * sizeof *x);
    free(x);
    free(y);
}

/* ======================================================= softmax extremes */

static void attention_once(float *out, float *lse, const float *qkv, const int32_t *cu, int n_seg,
                           int h, int hd, float *dqkv, const float *dout)
{
    int dm = h * hd;
    size_t ns = orch_attention_scratch_floats(cu, n_seg, 0);
    float *scr = zeros(ns);
    orch_attention_fwd(out, lse, scr, ns, qkv, qkv + dm, qkv + 2 * dm, 3 * dm, cu, n_seg, h, hd);
    if (dqkv != NULL)
        orch_attention_bwd(dqkv, dqkv + dm, dqkv + 2 * dm, 3 * dm, scr, ns, dout, out, lse, qkv,
                           qkv + dm, qkv + 2 * dm, 3 * dm, cu, n_seg, h, hd);
    free(scr);
}

static void test_softmax_extremes(void **state)
{
    (void)state;
    static const int32_t cu[] = {0, 5, 6};
    int n = 6, h = 2, hd = 4, dm = 8;
    float *qkv = rnd((size_t)n * 3 * dm, -1, 1), *out = zeros((size_t)n * dm);
    float *lse = zeros((size_t)n * h), *dqkv = zeros((size_t)n * 3 * dm);
    float *dout = rnd((size_t)n * dm, -1, 1);
    /* all-equal scores (q = 0): out is the mean of V over the segment */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dm; j++)
            qkv[i * 3 * dm + j] = 0.0f;
    attention_once(out, lse, qkv, cu, 2, h, hd, dqkv, dout);
    for (int j = 0; j < dm; j++) {
        double mean = 0;
        for (int i = 0; i < 5; i++)
            mean += qkv[i * 3 * dm + 2 * dm + j];
        mean /= 5;
        assert_true(fabs(out[j] - mean) < 1e-6);
        assert_true(out[5 * dm + j] == qkv[5 * 3 * dm + 2 * dm + j]); /* length-1 segment */
    }
    assert_true(fabsf(lse[0] - logf(5.0f)) < 1e-6f);
    assert_true(lse[5 * h] == 0.0f);
    assert_true(all_finite(dqkv, (size_t)n * 3 * dm));

    /* very large logits: scores ~ 1e7, softmax is one-hot, all finite */
    fill_uniform(qkv, (size_t)n * 3 * dm, -1, 1, &g_seed);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2 * dm; j++)
            qkv[i * 3 * dm + j] *= 3000.0f;
    memset(dqkv, 0, sizeof *dqkv * (size_t)n * 3 * dm);
    attention_once(out, lse, qkv, cu, 2, h, hd, dqkv, dout);
    assert_true(all_finite(out, (size_t)n * dm));
    assert_true(all_finite(lse, (size_t)n * h));
    assert_true(all_finite(dqkv, (size_t)n * 3 * dm));
    /* each output row equals one V row (the argmax key) */
    for (int i = 0; i < 5; i++) {
        int hit = 0;
        for (int j = 0; j < 5; j++) {
            int same = 1;
            for (int d = 0; d < hd; d++)
                same &= fabsf(out[i * dm + d] - qkv[j * 3 * dm + 2 * dm + d]) < 1e-5f;
            hit |= same;
        }
        assert_true(hit);
    }
    free(qkv);
    free(out);
    free(lse);
    free(dqkv);
    free(dout);
}

/* ================================================ checks inside passes */

/* orch_linear_fwd_finite and orch_attention_fwd_finite write what the plain
 * kernels write (same bits) and say 1 exactly when the output is finite:
 * for a NaN that comes in, an Inf the product makes, and on both the
 * serial and the parallel bias pass. */
static void linear_finite_case(int n, int in, int out)
{
    float *x = rnd((size_t)n * in, -1, 1), *w = rnd((size_t)out * in, -1, 1);
    float *b = rnd((size_t)out, -1, 1);
    float *y = zeros((size_t)n * out), *y2 = zeros((size_t)n * out);
    orch_linear_fwd(y, x, w, b, n, in, out);
    assert_int_equal(orch_linear_fwd_finite(y2, x, w, b, n, in, out), 1);
    assert_memory_equal(y, y2, sizeof(float) * (size_t)n * out);
    x[(size_t)(n - 1) * in] = NAN; /* last row: the last chunk of a parallel pass */
    assert_int_equal(orch_linear_fwd_finite(y2, x, w, b, n, in, out), 0);
    x[(size_t)(n - 1) * in] = 0.5f;
    b[out / 2] = INFINITY;
    assert_int_equal(orch_linear_fwd_finite(y2, x, w, b, n, in, out), 0);
    b[out / 2] = 0.0f;
    w[0] = 3e38f; /* finite inputs, an overflowing product */
    x[0] = 4.0f;
    assert_int_equal(orch_linear_fwd_finite(y2, x, w, b, n, in, out), 0);
    free(x);
    free(w);
    free(b);
    free(y);
    free(y2);
}

static void test_fused_finite_flags(void **state)
{
    (void)state;
    linear_finite_case(3, 5, 7);
    linear_finite_case(512, 16, 130); /* above ORCH_PAR_MIN: parallel pass */

    static const int32_t cu[] = {0, 5, 6, 40};
    int n = 40, h = 2, hd = 4, dm = 8;
    float *qkv = rnd((size_t)n * 3 * dm, -1, 1);
    float *out = zeros((size_t)n * dm), *out2 = zeros((size_t)n * dm);
    float *lse = zeros((size_t)n * h);
    size_t ns = orch_attention_scratch_floats(cu, 3, 0);
    float *scr = zeros(ns);
    orch_attention_fwd(out, lse, scr, ns, qkv, qkv + dm, qkv + 2 * dm, 3 * dm, cu, 3, h, hd);
    assert_int_equal(orch_attention_fwd_finite(out2, lse, scr, ns, qkv, qkv + dm, qkv + 2 * dm,
                                               3 * dm, cu, 3, h, hd),
                     1);
    assert_memory_equal(out, out2, sizeof(float) * (size_t)n * dm);
    /* a NaN in one value row of the last segment, head 1 */
    qkv[(size_t)30 * 3 * dm + 2 * dm + hd] = NAN;
    assert_int_equal(orch_attention_fwd_finite(out2, lse, scr, ns, qkv, qkv + dm, qkv + 2 * dm,
                                               3 * dm, cu, 3, h, hd),
                     0);
    qkv[(size_t)30 * 3 * dm + 2 * dm + hd] = 0.25f;
    /* a NaN in a query (row 7, head 0): its scores, their exp and its output
     * row are NaN, the other rows are not touched */
    qkv[(size_t)7 * 3 * dm] = NAN;
    assert_int_equal(orch_attention_fwd_finite(out2, lse, scr, ns, qkv, qkv + dm, qkv + 2 * dm,
                                               3 * dm, cu, 3, h, hd),
                     0);
    for (int j = 0; j < hd; j++)
        assert_true(isnan(out2[7 * dm + j]));
    assert_true(all_finite(out2 + 8 * dm, (size_t)(n - 8) * dm));
    free(qkv);
    free(out);
    free(out2);
    free(lse);
    free(scr);
}

static void test_cross_entropy_extremes(void **state)
{
    (void)state;
    /* all-equal logits: loss log(C), gradient (1/C - onehot) / B */
    float eq[2 * 5];
    for (int i = 0; i < 10; i++)
        eq[i] = 3.25f;
    static const int32_t lab[] = {4, 0};
    float loss = orch_cross_entropy_fwd(NULL, eq, lab, 2, 5);
    assert_true(fabsf(loss - logf(5.0f)) < 1e-6f);
    float d[10] = {0};
    orch_cross_entropy_bwd(d, eq, NULL, lab, 1.0f, 2, 5);
    assert_true(fabsf(d[0] - 0.1f) < 1e-7f && fabsf(d[4] - (0.1f - 0.5f)) < 1e-7f);
    assert_true(fabsf(d[5] - (0.1f - 0.5f)) < 1e-7f);

    /* very large logits: finite loss and gradient */
    float big[2 * 3] = {1e30f, 0.0f, -1e30f, 3e38f, -3e38f, 1e4f};
    static const int32_t lb[] = {1, 2};
    float lse[2];
    loss = orch_cross_entropy_fwd(lse, big, lb, 2, 3);
    printf("  CE with logits 1e30 / 3e38: loss %g\n", (double)loss);
    assert_true(isfinite(loss));
    assert_true(fabsf(loss - (1e30f + (3e38f - 1e4f)) / 2.0f) <= 1e-6f * loss);
    float g[6] = {0};
    orch_cross_entropy_bwd(g, big, lse, lb, 1.0f, 2, 3);
    assert_true(all_finite(g, 6));
    assert_true(fabsf(g[0] - 0.5f) < 1e-7f && fabsf(g[1] + 0.5f) < 1e-7f);
    float m[3] = {1e4f, 0.0f, 1e4f};
    static const int32_t l0[] = {0};
    loss = orch_cross_entropy_fwd(NULL, m, l0, 1, 3);
    assert_true(fabsf(loss - logf(2.0f)) < 1e-6f); /* not lse - logit in fp32 at 1e4 */
}

static void test_elementwise_extremes(void **state)
{
    (void)state;
    float x[6] = {-100.0f, 100.0f, -1e30f, 1e30f, 0.0f, -88.5f}, y[6], d[6] = {0};
    float one[6] = {1, 1, 1, 1, 1, 1};
    orch_silu_fwd(y, x, 6);
    assert_true(all_finite(y, 6));
    assert_true(y[1] == 100.0f && fabsf(y[0]) < 1e-30f && y[3] == 1e30f);
    orch_silu_bwd(d, one, x, 6);
    assert_true(all_finite(d, 6));
    for (int t = 0; t < 2; t++) {
        orch_gelu_fwd(y, x, 6, t);
        assert_true(all_finite(y, 6));
        assert_true(y[1] == 100.0f && y[0] == 0.0f && y[3] == 1e30f && y[4] == 0.0f);
        memset(d, 0, sizeof d);
        orch_gelu_bwd(d, one, x, 6, t);
        assert_true(all_finite(d, 6));
    }
    float nanx = NAN, o;
    orch_gelu_fwd(&o, &nanx, 1, 0);
    assert_true(isnan(o)); /* NaN propagates, never hidden */
    orch_silu_fwd(&o, &nanx, 1);
    assert_true(isnan(o));
    /* rmsnorm of a zero row: finite */
    float z[4] = {0}, zy[4], rs, dz[4] = {0}, w[4] = {1, 2, 3, 4};
    orch_rmsnorm_fwd(zy, &rs, z, w, 1e-6f, 1, 4);
    orch_rmsnorm_bwd(dz, NULL, one, z, w, &rs, 1, 4);
    assert_true(all_finite(zy, 4) && all_finite(dz, 4));
}

/* ============================================================ optimizers */

static const float P0[3] = {0.5f, -1.0f, 2.0f};
static const float G[3][3] = {{0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.0f}, {0.2f, 0.2f, -0.1f}};

static void expect3(const float *p, const double *want)
{
    for (int i = 0; i < 3; i++) {
        if (!(fabs(p[i] - want[i]) <= 2e-6 * (1 + fabs(want[i]))))
            printf("  got %.9g want %.9g\n", (double)p[i], want[i]);
        assert_true(fabs(p[i] - want[i]) <= 2e-6 * (1 + fabs(want[i])));
    }
}

static void test_adamw(void **state)
{
    (void)state;
    /* torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8,
     * weight_decay=0.01), worked by hand with its single-tensor algorithm */
    static const double want[3][3] = {{0.39950001, -0.899000005, 1.898},
                                      {0.372466809, -0.934711357, 1.82909618},
                                      {0.306283188, -0.985700725, 1.79835355}};
    float p[3], m[3] = {0}, v[3] = {0};
    memcpy(p, P0, sizeof p);
    for (int t = 0; t < 3; t++) {
        orch_adamw_step(p, m, v, G[t], 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, t + 1);
        expect3(p, want[t]);
    }
}

/* The vectorized AdamW path (every clone, tail and parallel split) against
 * the formula written out in fp32 with the same operation order:
 * bit-identical (IEEE sqrt and division are correctly rounded in scalar
 * and vector form). The bias corrections are folded as orch_adamw_step
 * documents; PyTorch's own order is checked by test_adamw (values) and
 * here (the update within 4 ulps of itself). */
static void test_adamw_vector_path(void **state)
{
    (void)state;
    size_t n = 100003; /* vector body, scalar tail, and the parallel path */
    float *p = rnd(n, -1, 1), *m = zeros(n), *v = zeros(n), *g = rnd(n, -1, 1);
    float *rp = malloc(n * sizeof *rp), *rm = zeros(n), *rv = zeros(n);
    assert_non_null(rp);
    memcpy(rp, p, n * sizeof *p);
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    for (int64_t t = 1; t <= 3; t++) {
        orch_adamw_step(p, m, v, g, (int64_t)n, lr, b1, b2, eps, wd, t);
        float decay = (float)(1.0 - (double)lr * (double)wd);
        double bc1 = 1.0 - pow((double)b1, (double)t);
        double bc2s = sqrt(1.0 - pow((double)b2, (double)t));
        float step = (float)((double)lr * bc2s / bc1), eps_s = (float)((double)eps * bc2s);
        float step_pt = (float)((double)lr / bc1), bc2s_f = (float)bc2s;
        for (size_t i = 0; i < n; i++) {
            float pi = rp[i] * decay;
            float mi = rm[i] + (1.0f - b1) * (g[i] - rm[i]);
            float vi = rv[i] * b2 + (1.0f - b2) * g[i] * g[i];
            rm[i] = mi;
            rv[i] = vi;
            rp[i] = pi - step * (mi / (sqrtf(vi) + eps_s));
            /* PyTorch's order (two divisions): the update agrees to a few
             * ulps of itself, the parameter to an ulp plus that */
            float upd = step_pt * (mi / (sqrtf(vi) / bc2s_f + eps)), pt = pi - upd;
            float tol = 4.8e-7f * fabsf(upd) + 1.2e-7f * fabsf(pt);
            if (!(fabsf(pt - rp[i]) <= tol))
                printf("  [%zu] torch order %a, folded %a\n", i, (double)pt, (double)rp[i]);
            assert_true(fabsf(pt - rp[i]) <= tol);
        }
    }
    assert_memory_equal(p, rp, n * sizeof *p);
    assert_memory_equal(m, rm, n * sizeof *m);
    assert_memory_equal(v, rv, n * sizeof *v);
    free(p);
    free(m);
    free(v);
    free(g);
    free(rp);
    free(rm);
    free(rv);
}

static void test_sgd(void **state)
{
    (void)state;
    /* torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=0/1) */
    static const double plain[3][3] = {
        {0.485, -0.97, 1.95}, {0.47165, -0.9733, 1.8855}, {0.4349185, -0.986537, 1.818595}};
    static const double nest[3][3] = {{0.4715, -0.943, 1.905},
                                      {0.4598915, -0.976783, 1.828305},
                                      {0.402449411, -0.999115823, 1.76068671}};
    /* momentum 0.9, dampening 0.5, no weight decay */
    static const double damp[3][3] = {
        {0.49, -0.98, 1.97}, {0.4835, -0.982, 1.943}, {0.46765, -0.9938, 1.9237}};
    for (int variant = 0; variant < 3; variant++) {
        float p[3], buf[3] = {9, 9, 9}; /* garbage: step 1 must not read it */
        memcpy(p, P0, sizeof p);
        for (int t = 0; t < 3; t++) {
            if (variant == 2)
                orch_sgd_step(p, buf, G[t], 3, 0.1f, 0.9f, 0.5f, 0.0f, 0, t + 1);
            else
                orch_sgd_step(p, buf, G[t], 3, 0.1f, 0.9f, 0.0f, 0.1f, variant, t + 1);
            expect3(p, variant == 0 ? plain[t] : variant == 1 ? nest[t] : damp[t]);
        }
    }
    /* no momentum: plain p -= lr (g + wd p), buffer unused */
    float p[3];
    memcpy(p, P0, sizeof p);
    orch_sgd_step(p, NULL, G[0], 3, 0.5f, 0.0f, 0.0f, 0.0f, 0, 1);
    assert_true(p[0] == 0.45f && p[1] == -0.9f && p[2] == 1.85f);
}

static void test_clip(void **state)
{
    (void)state;
    float a[2] = {3.0f, 0.0f}, b[1] = {4.0f};
    float *bufs[2] = {a, b};
    int64_t lens[2] = {2, 1};
    double norm = orch_grad_norm((const float *const *)bufs, lens, 2);
    assert_true(norm == 5.0);
    /* no clip when under max_norm: untouched, coefficient 1 */
    assert_true(orch_clip_by_norm(bufs, lens, 2, norm, 10.0) == 1.0);
    assert_true(a[0] == 3.0f && b[0] == 4.0f);
    /* clip: returns the norm before clipping, scales by max/(norm+1e-6) */
    double before = orch_clip_grad_norm(bufs, lens, 2, 1.0);
    assert_true(before == 5.0);
    assert_true(fabsf(a[0] - (float)(3.0 / (5.0 + 1e-6))) < 1e-7f);
    assert_true(fabsf(b[0] - (float)(4.0 / (5.0 + 1e-6))) < 1e-7f);
    double after = orch_grad_norm((const float *const *)bufs, lens, 2);
    assert_true(fabs(after - 1.0) < 1e-6);
    /* non-finite norms as clip_grad_norm_ (error_if_nonfinite=False): an Inf
     * norm multiplies by 0, so finite values become 0 and Inf becomes NaN */
    b[0] = INFINITY;
    before = orch_clip_grad_norm(bufs, lens, 2, 1.0);
    assert_true(isinf(before));
    assert_true(a[0] == 0.0f && a[1] == 0.0f && isnan(b[0]));
    /* a NaN norm multiplies by NaN: every value NaN, coefficient NaN */
    a[0] = 3.0f;
    b[0] = NAN;
    before = orch_clip_grad_norm(bufs, lens, 2, 1.0);
    assert_true(isnan(before));
    assert_true(isnan(a[0]) && isnan(a[1]) && isnan(b[0]));
    a[0] = 3.0f;
    a[1] = 0.0f;
    assert_true(isnan(orch_clip_by_norm(bufs, lens, 2, NAN, 1.0)));
    assert_true(isnan(a[0]));
    /* a large buffer (parallel path) against a serial double sum */
    size_t n = 1000003;
    float *x = rnd(n, -1, 1);
    double ref = 0;
    for (size_t i = 0; i < n; i++)
        ref += (double)x[i] * x[i];
    const float *one[1] = {x};
    int64_t ln[1] = {(int64_t)n};
    assert_true(fabs(orch_grad_norm(one, ln, 1) - sqrt(ref)) <= 1e-12 * sqrt(ref));
    free(x);
}

/* ================================================== determinism, threads */

static void run_block(float *res, size_t *res_n, const float *x0)
{
    /* linear fwd/bwd + attention fwd/bwd + rmsnorm bwd at moderate size */
    static const int32_t cu[] = {0, 64, 128, 200, 456};
    int n = 456, d = 96, h = 4, hd = 24;
    float *w = rnd((size_t)3 * d * d, -0.1f, 0.1f), *qkv = zeros((size_t)n * 3 * d);
    float *out = zeros((size_t)n * d), *lse = zeros((size_t)n * h);
    float *dout = rnd((size_t)n * d, -1, 1), *dqkv = zeros((size_t)n * 3 * d);
    float *dx = zeros((size_t)n * d), *dw = zeros((size_t)3 * d * d), *db = zeros((size_t)3 * d);
    orch_linear_fwd(qkv, x0, w, NULL, n, d, 3 * d);
    attention_once(out, lse, qkv, cu, 4, h, hd, dqkv, dout);
    orch_linear_bwd(dx, dw, db, dqkv, x0, w, n, d, 3 * d);
    float *rstd = zeros((size_t)n), *dn = zeros((size_t)n * d), *dnw = zeros((size_t)d);
    orch_rmsnorm_fwd(out, rstd, x0, NULL, 1e-6f, n, d);
    orch_rmsnorm_bwd(dn, dnw, dout, x0, dout, rstd, n, d);
    size_t k = 0;
    memcpy(res + k, out, sizeof *out * (size_t)n * d), k += (size_t)n * d;
    memcpy(res + k, dqkv, sizeof *dqkv * (size_t)n * 3 * d), k += (size_t)n * 3 * d;
    memcpy(res + k, dx, sizeof *dx * (size_t)n * d), k += (size_t)n * d;
    memcpy(res + k, dw, sizeof *dw * (size_t)3 * d * d), k += (size_t)3 * d * d;
    memcpy(res + k, db, sizeof *db * (size_t)3 * d), k += (size_t)3 * d;
    memcpy(res + k, dn, sizeof *dn * (size_t)n * d), k += (size_t)n * d;
    memcpy(res + k, dnw, sizeof *dnw * (size_t)d), k += (size_t)d;
    *res_n = k;
    float *all[] = {w, qkv, out, lse, dout, dqkv, dx, dw, db, rstd, dn, dnw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static void test_determinism(void **state)
{
    (void)state;
    size_t cap = 456 * 96 * 8 + 3 * 96 * 96 + 4 * 96;
    float *a = zeros(cap), *b = zeros(cap), *c = zeros(cap);
    size_t na, nb, nc;
    float *x0 = rnd((size_t)456 * 96, -1, 1);
    int old = orch_threads_get();
    orch_threads_set(2);
    unsigned long long s = g_seed;
    run_block(a, &na, x0);
    g_seed = s;
    run_block(b, &nb, x0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a); /* bit-identical for 2 threads */
    orch_threads_set(1);
    g_seed = s;
    run_block(c, &nc, x0);
    double worst = 0;
    for (size_t i = 0; i < nc; i++)
        worst = fmax(worst, fabs(a[i] - c[i]) / (1 + fabs(c[i])));
    printf("  1 thread vs 2 threads: max rel diff %.2e\n", worst);
    assert_true(worst < 1e-4);
    orch_threads_set(old);
    free(a);
    free(b);
    free(c);
    free(x0);
}

static void test_threads_setting(void **state)
{
    (void)state;
    int def = orch_threads_get();
    assert_true(def >= 1);
    orch_threads_set(3);
    assert_int_equal(orch_threads_get(), 3);
    orch_threads_set(1);
    assert_int_equal(orch_threads_get(), 1);
    orch_threads_set(0);
    assert_int_equal(orch_threads_get(), def);
    orch_threads_set(-5);
    assert_int_equal(orch_threads_get(), def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finite_scan),
        cmocka_unit_test(test_round_f16),
        cmocka_unit_test(test_round_bf16),
        cmocka_unit_test(test_softmax_extremes),
        cmocka_unit_test(test_fused_finite_flags),
        cmocka_unit_test(test_cross_entropy_extremes),
        cmocka_unit_test(test_elementwise_extremes),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_adamw_vector_path),
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_threads_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
