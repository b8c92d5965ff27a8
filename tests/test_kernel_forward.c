/*
 * test_kernel_forward.c - kernel forwards against naive double-precision
 * reference loops (llm.c's *_naive), at odd shapes.
 *
 * Tolerance: |kernel - reference| <= 1e-5 * (1 + |reference|) * sqrt(k)
 * for products summing k terms of O(1) size (fp32 accumulation), 2e-6
 * relative for element-wise kernels, stated per check below.
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

static unsigned long long g_seed = 0xf0f0beefULL;

static float *rnd(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    fill_uniform(p, n, lo, hi, &g_seed);
    return p;
}

static double *dbuf(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

/* Max over i of |got - ref| / (1 + |ref|); asserts it is <= tol. */
static void expect_close(const char *what, const float *got, const double *ref, size_t n,
                         double tol)
{
    double worst = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / (1.0 + fabs(ref[i]));
        if (!(e <= worst)) { /* also catches NaN */
            worst = e;
            wi = i;
        }
    }
    printf("  %-44s n=%-7zu max err %.2e (tol %.1e)\n", what, n, worst, tol);
    if (!(worst <= tol))
        printf("  FAIL at %zu: got %.8g want %.8g\n", wi, (double)got[wi], ref[wi]);
    assert_true(worst <= tol);
}

/* ================================================================ sgemm */

static void check_gemm(int m, int n, int k, orch_sup sup)
{
    /* C = 0.5 A B^T + 2 C with A (m,k) row-major, B (n,k) row-major. */
    float *a = rnd((size_t)m * k, -1, 1), *b = rnd((size_t)n * k, -1, 1);
    float *c = rnd((size_t)m * n, -1, 1);
    double *ref = dbuf((size_t)m * n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)a[(size_t)i * k + p] * b[(size_t)j * k + p];
            ref[(size_t)i * n + j] = 0.5 * s + 2.0 * c[(size_t)i * n + j];
        }
    orch_sgemm(m, n, k, 0.5f, a, k, 1, b, 1, k, 2.0f, c, n, 1, sup, 0);
    char name[96];
    snprintf(name, sizeof name, "sgemm %dx%dx%d sup=%d", m, n, k, (int)sup);
    expect_close(name, c, ref, (size_t)m * n, 2e-6 * sqrt((double)k + 1));
    free(a);
    free(b);
    free(c);
    free(ref);
}

static void test_sgemm_paths(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1},    {3, 5, 7},      {17, 33, 9},
                                    {64, 64, 64}, {130, 97, 150}, {1, 200, 31}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int sup = 0; sup < 3; sup++)
            check_gemm(shapes[s][0], shapes[s][1], shapes[s][2], (orch_sup)sup);
    /* beta = 0 must not read C (NaN in C does not propagate). */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
    for (int i = 0; i < 4; i++)
        c[i] = NAN;
    orch_sgemm(2, 2, 3, 1.0f, a, 3, 1, b, 1, 3, 0.0f, c, 2, 1, ORCH_SUP_AUTO, 0);
    assert_true(c[0] == 1.0f && c[1] == 6.0f && c[2] == 4.0f && c[3] == 15.0f);
    /* k = 0: C = beta C */
    c[0] = 3.0f;
    orch_sgemm(1, 1, 0, 1.0f, a, 1, 1, b, 1, 1, 2.0f, c, 1, 1, ORCH_SUP_AUTO, 0);
    assert_true(c[0] == 6.0f);
}

/* ================================================================ linear */

static void check_linear(int n, int in, int out, int bias)
{
    float *x = rnd((size_t)n * in, -1, 1), *w = rnd((size_t)out * in, -1, 1);
    float *b = rnd((size_t)out, -1, 1), *y = rnd((size_t)n * out, -1, 1);
    double *ref = dbuf((size_t)n * out);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = bias ? b[o] : 0.0;
            for (int p = 0; p < in; p++)
                s += (double)x[(size_t)i * in + p] * w[(size_t)o * in + p];
            ref[(size_t)i * out + o] = s;
        }
    orch_linear_fwd(y, x, w, bias ? b : NULL, n, in, out);
    char name[96];
    snprintf(name, sizeof name, "linear N=%d in=%d out=%d bias=%d", n, in, out, bias);
    expect_close(name, y, ref, (size_t)n * out, 2e-6 * sqrt((double)in + 1));
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
}

static void test_linear_forward(void **state)
{
    (void)state;
    check_linear(1, 1, 1, 1);
    check_linear(1, 7, 5, 1);
    check_linear(3, 5, 7, 0);
    check_linear(33, 40, 24, 1);    /* tiny-config merger-ish */
    check_linear(60, 32, 96, 1);    /* tiny qkv */
    check_linear(129, 130, 131, 1); /* large enough for the packed path */
}

static void test_lora_forward(void **state)
{
    (void)state;
    int n = 13, in = 17, out = 11, r = 3;
    float s = 8.0f / 3.0f;
    float *x = rnd((size_t)n * in, -1, 1), *w = rnd((size_t)out * in, -1, 1);
    float *b = rnd((size_t)out, -1, 1), *a = rnd((size_t)r * in, -1, 1);
    float *bm = rnd((size_t)out * r, -1, 1), *y = rnd((size_t)n * out, -1, 1);
    float *u = rnd((size_t)n * r, -1, 1);
    double *ref = dbuf((size_t)n * out);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int p = 0; p < in; p++)
                acc += (double)x[(size_t)i * in + p] * w[(size_t)o * in + p];
            for (int q = 0; q < r; q++) {
                double uq = 0;
                for (int p = 0; p < in; p++)
                    uq += (double)x[(size_t)i * in + p] * a[(size_t)q * in + p];
                acc += s * uq * bm[(size_t)o * r + q];
            }
            ref[(size_t)i * out + o] = acc;
        }
    orch_lora_linear_fwd(y, u, x, w, b, a, bm, s, n, in, out, r);
    expect_close("lora N=13 in=17 out=11 r=3", y, ref, (size_t)n * out, 1e-5);
    /* B = 0 (PEFT init): output equals the base linear exactly. */
    memset(bm, 0, sizeof *bm * (size_t)out * r);
    float *y2 = rnd((size_t)n * out, -1, 1);
    orch_lora_linear_fwd(y, u, x, w, b, a, bm, s, n, in, out, r);
    orch_linear_fwd(y2, x, w, b, n, in, out);
    assert_memory_equal(y, y2, sizeof *y * (size_t)n * out);
    free(x);
    free(w);
    free(b);
    free(a);
    free(bm);
    free(y);
    free(y2);
    free(u);
    free(ref);
}

/* ============================================================= attention */

static void naive_attention(double *out, double *lse, const float *q, const float *k,
                            const float *v, int ld, const int32_t *cu, int n_seg, int h, int hd)
{
    int dm = h * hd;
    double c = 1.0 / sqrt((double)hd);
    for (int s = 0; s < n_seg; s++) {
        int a = cu[s], e = cu[s + 1], l = e - a;
        double *sc = dbuf((size_t)(l > 0 ? l : 1));
        for (int hh = 0; hh < h; hh++)
            for (int i = a; i < e; i++) {
                double mx = -INFINITY;
                for (int j = a; j < e; j++) {
                    double t = 0;
                    for (int d = 0; d < hd; d++)
                        t += (double)q[(size_t)i * ld + hh * hd + d] *
                             k[(size_t)j * ld + hh * hd + d];
                    sc[j - a] = t * c;
                    mx = fmax(mx, sc[j - a]);
                }
                double sum = 0;
                for (int j = 0; j < l; j++)
                    sum += exp(sc[j] - mx);
                lse[(size_t)i * h + hh] = mx + log(sum);
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = a; j < e; j++)
                        o += exp(sc[j - a] - mx) / sum * v[(size_t)j * ld + hh * hd + d];
                    out[(size_t)i * dm + hh * hd + d] = o;
                }
            }
        free(sc);
    }
}

static void check_attention(const int32_t *cu, int n_seg, int h, int hd, int fused, int threads)
{
    int n = cu[n_seg], dm = h * hd, ld = fused ? 3 * dm : dm;
    float *buf = rnd((size_t)n * 3 * dm, -2, 2);
    const float *q = buf, *k = fused ? buf + dm : buf + (size_t)n * dm;
    const float *v = fused ? buf + 2 * dm : buf + 2 * (size_t)n * dm;
    float *out = rnd((size_t)n * dm, -1, 1), *lse = rnd((size_t)n * h, -1, 1);
    double *ref = dbuf((size_t)n * dm), *rl = dbuf((size_t)n * h);
    int old = orch_threads_get();
    orch_threads_set(threads);
    size_t ns = orch_attention_scratch_floats(cu, n_seg, 0);
    float *scr = rnd(ns, -1, 1);
    orch_attention_fwd(out, lse, scr, ns, q, k, v, ld, cu, n_seg, h, hd);
    orch_threads_set(old);
    naive_attention(ref, rl, q, k, v, ld, cu, n_seg, h, hd);
    char name[128];
    snprintf(name, sizeof name, "attention N=%d segs=%d H=%d hd=%d fused=%d thr=%d", n, n_seg, h,
             hd, fused, threads);
    expect_close(name, out, ref, (size_t)n * dm, 2e-5);
    expect_close("  logsumexp", lse, rl, (size_t)n * h, 2e-5);
    free(buf);
    free(out);
    free(lse);
    free(ref);
    free(rl);
    free(scr);
}

static void test_attention_forward(void **state)
{
    (void)state;
    static const int32_t one[] = {0, 1};
    static const int32_t odd[] = {0, 1, 6, 13, 14};
    static const int32_t empty[] = {0, 0, 5, 5, 9};
    static const int32_t tinyA[] = {0, 16, 32, 40, 48, 56, 60}; /* doc case A windows */
    static const int32_t big[] = {0, 600, 601};                 /* > one query block */
    static const int32_t one_big[] = {0, 400};                  /* enough work for threads */
    check_attention(one, 1, 1, 3, 0, 1);
    check_attention(odd, 4, 3, 5, 1, 2);
    check_attention(odd, 4, 1, 8, 0, 1);
    check_attention(empty, 4, 2, 4, 1, 2);
    check_attention(tinyA, 6, 4, 8, 1, 2);
    check_attention(big, 2, 2, 4, 1, 2);
    check_attention(one_big, 1, 1, 4, 0, 2); /* fewer tasks than threads: BLIS threads */
}

/* ====================================================== element-wise and rows */

static void test_rmsnorm_forward(void **state)
{
    (void)state;
    int n = 7, d = 37;
    float *x = rnd((size_t)n * d, -3, 3), *w = rnd((size_t)d, 0, 2), *y = rnd((size_t)n * d, 0, 1);
    float *rs = rnd((size_t)n, 0, 1);
    double *ref = dbuf((size_t)n * d), *rref = dbuf((size_t)n);
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++)
            ss += (double)x[i * d + j] * x[i * d + j];
        double r = 1.0 / sqrt(ss / d + 1e-6);
        rref[i] = r;
        for (int j = 0; j < d; j++)
            ref[i * d + j] = w[j] * (x[i * d + j] * r);
    }
    orch_rmsnorm_fwd(y, rs, x, w, 1e-6f, n, d);
    expect_close("rmsnorm N=7 D=37", y, ref, (size_t)n * d, 2e-6);
    expect_close("  rstd", rs, rref, (size_t)n, 2e-6);
    /* in place */
    orch_rmsnorm_fwd(x, NULL, x, w, 1e-6f, n, d);
    expect_close("rmsnorm in place", x, ref, (size_t)n * d, 2e-6);
    free(x);
    free(w);
    free(y);
    free(rs);
    free(ref);
    free(rref);
}

static void test_activation_forward(void **state)
{
    (void)state;
    size_t n = 100003; /* odd, and above the parallel threshold */
    float *x = rnd(n, -12, 12), *u = rnd(n, -2, 2), *y = rnd(n, 0, 1);
    double *ref = dbuf(n);
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = 1e-30f;
    x[3] = -80.0f;
    x[4] = 80.0f;
    orch_gelu_fwd(y, x, (int64_t)n, 0);
    for (size_t i = 0; i < n; i++)
        ref[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
    expect_close("gelu erf (abs err / (1+|y|))", y, ref, n, 1.5e-6);
    orch_gelu_fwd(y, x, (int64_t)n, 1);
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        ref[i] = 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    }
    expect_close("gelu tanh", y, ref, n, 1e-6);
    orch_silu_fwd(y, x, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        ref[i] = x[i] / (1.0 + exp(-(double)x[i]));
    expect_close("silu", y, ref, n, 1e-6);
    orch_swiglu_fwd(y, x, u, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        ref[i] = x[i] / (1.0 + exp(-(double)x[i])) * u[i];
    expect_close("swiglu", y, ref, n, 1e-6);
    orch_add_fwd(y, x, u, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        ref[i] = (double)(x[i] + u[i]);
    expect_close("add", y, ref, n, 0.0);
    free(x);
    free(u);
    free(y);
    free(ref);
}

static void test_rotary_forward(void **state)
{
    (void)state;
    /* tiny config: hd = 8, theta 1e4 -> inv_freq = [1, 0.01] */
    int32_t pos[] = {0, 0, 2, 3, 5, 1};
    float ct[3 * 8], st[3 * 8];
    orch_rotary_tables(ct, st, pos, 3, 8, 10000.0f);
    double ang[4] = {2.0, 0.02, 3.0, 0.03};
    double rc[8], rsn[8];
    for (int d = 0; d < 8; d++) {
        rc[d] = cos(ang[d % 4]);
        rsn[d] = sin(ang[d % 4]);
    }
    expect_close("rotary table cos, pos (2,3)", ct + 8, rc, 8, 1e-6);
    expect_close("rotary table sin, pos (2,3)", st + 8, rsn, 8, 1e-6);
    assert_true(ct[0] == 1.0f && st[0] == 0.0f);
    /* apply with a row stride and 2 heads against the formula */
    int n = 3, h = 2, hd = 8, ld = 21;
    float *x = rnd((size_t)n * ld, -1, 1), *y = rnd((size_t)n * ld, -1, 1);
    double *ref = dbuf((size_t)n * ld);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ld; j++)
            ref[i * ld + j] = y[i * ld + j]; /* untouched columns */
    for (int i = 0; i < n; i++)
        for (int hh = 0; hh < h; hh++)
            for (int d = 0; d < hd; d++) {
                const float *xr = x + i * ld + hh * hd;
                double rot = d < 4 ? -(double)xr[d + 4] : (double)xr[d - 4];
                ref[i * ld + hh * hd + d] = xr[d] * ct[i * 8 + d] + rot * st[i * 8 + d];
            }
    orch_rotary_fwd(y, ld, x, ld, ct, st, n, h, hd);
    expect_close("rotary apply, 2 heads, ld=21", y, ref, (size_t)n * ld, 1e-6);
    orch_rotary_fwd(x, ld, x, ld, ct, st, n, h, hd); /* in place */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < h * hd; j++)
            assert_true(x[i * ld + j] == y[i * ld + j]);
    free(x);
    free(y);
    free(ref);
}

static void test_pool_and_losses_forward(void **state)
{
    (void)state;
    static const int32_t off[] = {0, 1, 1, 4};
    float x[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, out[3 * 3];
    orch_mean_pool_fwd(out, x, off, 3, 3);
    const float want[9] = {1, 2, 3, 0, 0, 0, 7, 8, 9};
    assert_memory_equal(out, want, sizeof want);

    static const int32_t labels[] = {1, -100, 0};
    float logits[3 * 4] = {0.5f, 1.5f, -1, 2, 9, 9, 9, 9, 3, -3, 0.25f, 1};
    double ref = 0;
    int cnt = 0;
    for (int i = 0; i < 3; i++) {
        if (labels[i] < 0)
            continue;
        double s = 0;
        for (int j = 0; j < 4; j++)
            s += exp((double)logits[i * 4 + j]);
        ref += log(s) - logits[i * 4 + labels[i]];
        cnt++;
    }
    ref /= cnt;
    float got = orch_cross_entropy_fwd(NULL, logits, labels, 3, 4);
    printf("  cross_entropy %.8g vs %.8g\n", (double)got, ref);
    assert_true(fabs(got - ref) <= 1e-6 * (1 + fabs(ref)));
    static const int32_t none[] = {-100};
    assert_true(isnan(orch_cross_entropy_fwd(NULL, logits, none, 1, 4)));

    float p[5] = {1, 2, 3, 4, 5}, t[5] = {1, 0, 3, 2, 0};
    assert_true(fabsf(orch_mse_fwd(p, t, 5) - (4.0f + 4.0f + 25.0f) / 5.0f) < 1e-6f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_paths),     cmocka_unit_test(test_linear_forward),
        cmocka_unit_test(test_lora_forward),    cmocka_unit_test(test_attention_forward),
        cmocka_unit_test(test_rmsnorm_forward), cmocka_unit_test(test_activation_forward),
        cmocka_unit_test(test_rotary_forward),  cmocka_unit_test(test_pool_and_losses_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
