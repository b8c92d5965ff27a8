/*
 * bench/kernels.c - the kernels room against raw BLIS, memcpy and the FMA
 * peak, all measured in this process.
 *
 *   ./build/bench/kernels [--quick]        (ORCH_THREADS=N sets the threads)
 *
 * Products (linear, LoRA, attention; forward + backward): GFLOP/s, the time
 * ratio against raw bli_sgemm on the same products (the better of BLIS's
 * default path and its path with sup disabled, each timed over the whole
 * product list), and the fraction of the FMA peak of the threads used.
 * Element-wise kernels: GB/s of the bytes they must move, against a memcpy
 * of the same byte count with the same threads (GB/s counted as read+write).
 * Shapes: the tiny config (D 32, mlp 40, 4 heads) and the real 3B tower
 * (D 1280, mlp 3420, 16 heads, hd 80) at 1024 and 4096 tokens. Times are
 * medians of several repetitions; the 4096-token products run once.
 * --quick skips the 4096-token rows.
 */
#include <blis.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static int g_threads;
static double g_peak1, g_peakn, g_peak; /* GFLOP/s: 1 thread, all, for g_threads */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static float *buf(size_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64 + 64);
    if (p == NULL) {
        fprintf(stderr, "bench: out of memory (%zu floats)\n", n);
        exit(1);
    }
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

/* ============================================================ FMA peak */

__attribute__((target("avx2,fma"))) static double fma_loop(long iters)
{
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        a[0] = _mm256_fmadd_ps(a[0], b, c);
        a[1] = _mm256_fmadd_ps(a[1], b, c);
        a[2] = _mm256_fmadd_ps(a[2], b, c);
        a[3] = _mm256_fmadd_ps(a[3], b, c);
        a[4] = _mm256_fmadd_ps(a[4], b, c);
        a[5] = _mm256_fmadd_ps(a[5], b, c);
        a[6] = _mm256_fmadd_ps(a[6], b, c);
        a[7] = _mm256_fmadd_ps(a[7], b, c);
        a[8] = _mm256_fmadd_ps(a[8], b, c);
        a[9] = _mm256_fmadd_ps(a[9], b, c);
        a[10] = _mm256_fmadd_ps(a[10], b, c);
        a[11] = _mm256_fmadd_ps(a[11], b, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return (double)out[0];
}

/* GFLOP/s of the FMA loop on nt threads (each thread runs the loop). */
static double fma_peak(int nt)
{
    const long iters = 20000000; /* 12 * 8 * 2 flops per iteration */
    double best = 0;
    volatile double sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(nt)
        {
            double r = fma_loop(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = now() - t0;
        double gf = (double)nt * (double)iters * 12 * 8 * 2 / dt * 1e-9;
        best = gf > best ? gf : best;
    }
    (void)sink;
    return best;
}

/* ========================================================= raw products */

/* One product of a list: C (m,n) = A B with BLIS transposes on row-major
 * buffers, as a user would call bli_sgemm. */
typedef struct prod {
    int ta, tb; /* 1: operand stored transposed (row-major (k,m) / (n,k)) */
    long m, n, k;
    float beta;
} prod;

static void raw_gemm(const prod *p, const float *a, const float *b, float *c, int sup_off, int nt)
{
    float al = 1.0f, be = p->beta;
    /* row-major storage; a transposed operand is named by BLIS's trans flag */
    trans_t tra = p->ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    trans_t trb = p->tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    inc_t rsa = p->ta ? p->m : p->k, csa = 1; /* A stored (k,m) or (m,k) */
    inc_t rsb = p->tb ? p->k : p->n, csb = 1; /* B stored (n,k) or (k,n) */
    if (!sup_off && nt == g_threads) {
        bli_sgemm(tra, trb, p->m, p->n, p->k, &al, (float *)a, rsa, csa, (float *)b, rsb, csb,
                  &be, c, p->n, 1);
        return;
    }
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nt, &rntm);
    if (sup_off)
        bli_rntm_disable_l3_sup(&rntm);
    bli_sgemm_ex(tra, trb, p->m, p->n, p->k, &al, (float *)a, rsa, csa, (float *)b, rsb, csb, &be,
                 c, p->n, 1, NULL, &rntm);
}

/* Times a list of products with raw BLIS on scratch operands big enough
 * for all of them; returns the median time of the whole list. */
static double time_raw(const prod *list, int n_prod, int sup_off, int reps, float *a, float *b,
                       float *c)
{
    double t[16];
    raw_gemm(&list[0], a, b, c, sup_off, g_threads); /* warm */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < n_prod; i++)
            raw_gemm(&list[i], a, b, c, sup_off, g_threads);
        t[r] = now() - t0;
    }
    return median(t, reps);
}

static double list_flops(const prod *list, int n)
{
    double f = 0;
    for (int i = 0; i < n; i++)
        f += 2.0 * (double)list[i].m * (double)list[i].n * (double)list[i].k;
    return f;
}

static void print_prod_header(void)
{
    printf("%-6s %-14s %-22s %9s %8s %8s %8s %6s %6s  %s\n", "config", "kernel", "shape",
           "ms", "GFLOP/s", "raw-def", "raw-off", "ratio", "%peak", "target");
}

static void print_prod_row(const char *cfg, const char *kernel, const char *shape, double t,
                           double flops, double t_def, double t_off, double target)
{
    double best = t_def < t_off ? t_def : t_off;
    double ratio = best / t;
    printf("%-6s %-14s %-22s %9.2f %8.1f %8.1f %8.1f %6.2f %5.0f%%  %s %.1f\n", cfg, kernel, shape,
           t * 1e3, flops / t * 1e-9, flops / t_def * 1e-9, flops / t_off * 1e-9, ratio,
           100.0 * flops / t * 1e-9 / g_peak, ratio >= target ? "met  >=" : "MISSED >=", target);
}

/* =============================================================== linear */

static void bench_linear(const char *cfg, const char *name, int n, int in, int out, int reps)
{
    float *x = buf((size_t)n * in), *w = buf((size_t)out * in), *b = buf((size_t)out);
    float *y = buf((size_t)n * out), *dy = buf((size_t)n * out);
    float *dx = buf((size_t)n * in), *dw = buf((size_t)out * in), *db = buf((size_t)out);
    double t[16];
    orch_linear_fwd(y, x, w, b, n, in, out); /* warm */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        orch_linear_fwd(y, x, w, b, n, in, out);
        orch_linear_bwd(dx, dw, db, dy, x, w, n, in, out);
        t[r] = now() - t0;
    }
    double tk = median(t, reps);
    /* y = x W^T (NT), dx = dy W (NN), dW = dy^T x (TN) */
    prod list[3] = {{0, 1, n, out, in, 0.0f}, {0, 0, n, in, out, 1.0f}, {1, 0, out, in, n, 1.0f}};
    size_t big = (size_t)n * (in > out ? in : out);
    size_t wsz = (size_t)in * out;
    float *ra = buf(big > wsz ? big : wsz), *rb = buf(big > wsz ? big : wsz);
    float *rc = buf(big > wsz ? big : wsz);
    double td = time_raw(list, 3, 0, reps, ra, rb, rc);
    double to = time_raw(list, 3, 1, reps, ra, rb, rc);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d->%d", n, in, out);
    print_prod_row(cfg, name, shape, tk, list_flops(list, 3), td, to, 0.9);
    float *all[] = {x, w, b, y, dy, dx, dw, db, ra, rb, rc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static void bench_lora(const char *cfg, int n, int in, int out, int r, int reps)
{
    float *x = buf((size_t)n * in), *w = buf((size_t)out * in), *b = buf((size_t)out);
    float *a = buf((size_t)r * in), *bm = buf((size_t)out * r), *u = buf((size_t)n * r);
    float *y = buf((size_t)n * out), *dy = buf((size_t)n * out), *dx = buf((size_t)n * in);
    float *da = buf((size_t)r * in), *dbm = buf((size_t)out * r), *du = buf((size_t)n * r);
    double t[16];
    orch_lora_linear_fwd(y, u, x, w, b, a, bm, 1.0f, n, in, out, r);
    for (int k = 0; k < reps; k++) {
        double t0 = now();
        orch_lora_linear_fwd(y, u, x, w, b, a, bm, 1.0f, n, in, out, r);
        orch_lora_linear_bwd(dx, da, dbm, NULL, NULL, du, dy, x, u, w, a, bm, 1.0f, n, in, out, r);
        t[k] = now() - t0;
    }
    double tk = median(t, reps);
    prod list[7] = {
        {0, 1, n, out, in, 0.0f}, {0, 1, n, r, in, 0.0f},  {0, 1, n, out, r, 1.0f},
        {1, 0, out, r, n, 1.0f},  {0, 0, n, r, out, 0.0f}, {1, 0, r, in, n, 1.0f},
        {0, 0, n, in, out, 1.0f},
    };
    size_t big = (size_t)n * (in > out ? in : out);
    size_t wsz = (size_t)in * out;
    float *ra = buf(big > wsz ? big : wsz), *rb = buf(big > wsz ? big : wsz);
    float *rc = buf(big > wsz ? big : wsz);
    double td = time_raw(list, 7, 0, reps, ra, rb, rc);
    double to = time_raw(list, 7, 1, reps, ra, rb, rc);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d->%d r%d", n, in, out, r);
    /* the dx += du A product (k = r) is counted with the rest */
    print_prod_row(cfg, "lora(frozen W)", shape, tk, list_flops(list, 7), td, to, 0.9);
    float *all[] = {x, w, b, a, bm, u, y, dy, dx, da, dbm, du, ra, rb, rc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* ============================================================ attention */

/* The products orch_attention_fwd/bwd perform, run with raw BLIS in the
 * same task split (OpenMP over (segment, head) with 1 BLIS thread, or BLIS
 * threads when there are fewer tasks than threads) and the same query
 * blocks, on contiguous per-thread operands. */
static double raw_attention(const int32_t *cu, int n_seg, int h, int hd, int sup_off, int reps)
{
    int32_t lmax = 0;
    long n_tasks = 0;
    for (int s = 0; s < n_seg; s++) {
        int32_t l = cu[s + 1] - cu[s];
        lmax = l > lmax ? l : lmax;
        n_tasks += l > 0 ? h : 0;
    }
    int qb = lmax < ORCH_ATTN_QBLOCK ? lmax : ORCH_ATTN_QBLOCK;
    int team = n_tasks >= g_threads ? g_threads : 1;
    int bt = team > 1 ? 1 : g_threads;
    size_t per = (size_t)qb * lmax * 2 + (size_t)lmax * hd * 6;
    float *mem = buf(per * (size_t)team);
    double t[16];
    for (int r = 0; r < reps; r++) {
        double t0 = now();
#pragma omp parallel num_threads(team)
        {
            float *p = mem + per * (size_t)omp_get_thread_num();
            float *s1 = p, *s2 = p + (size_t)qb * lmax, *q = s2 + (size_t)qb * lmax;
            float *k = q + (size_t)lmax * hd, *v = k + (size_t)lmax * hd;
            float *o = v + (size_t)lmax * hd, *dq = o + (size_t)lmax * hd;
            float *dk = dq + (size_t)lmax * hd;
#pragma omp for schedule(dynamic, 1)
            for (long task = 0; task < (long)n_seg * h; task++) {
                int s = (int)(task / h);
                int l = cu[s + 1] - cu[s];
                for (int q0 = 0; q0 < l; q0 += ORCH_ATTN_QBLOCK) {
                    int nb = l - q0 < ORCH_ATTN_QBLOCK ? l - q0 : ORCH_ATTN_QBLOCK;
                    prod fw1 = {0, 1, nb, l, hd, 0.0f}, fw2 = {0, 0, nb, hd, l, 0.0f};
                    prod bw1 = {0, 1, nb, l, hd, 0.0f}, bw2 = {1, 0, l, hd, nb, 1.0f};
                    prod bw3 = {0, 1, nb, l, hd, 0.0f}, bw4 = {0, 0, nb, hd, l, 1.0f};
                    prod bw5 = {1, 0, l, hd, nb, 1.0f};
                    raw_gemm(&fw1, q, k, s1, sup_off, bt);  /* S = Q K^T */
                    raw_gemm(&fw2, s1, v, o, sup_off, bt);  /* O = P V */
                    raw_gemm(&bw1, q, k, s1, sup_off, bt);  /* S again */
                    raw_gemm(&bw2, s1, o, dk, sup_off, bt); /* dV += P^T dO */
                    raw_gemm(&bw3, o, v, s2, sup_off, bt);  /* dP = dO V^T */
                    raw_gemm(&bw4, s2, k, dq, sup_off, bt); /* dQ += dS K */
                    raw_gemm(&bw5, s2, q, dk, sup_off, bt); /* dK += dS^T Q */
                }
            }
        }
        t[r] = now() - t0;
    }
    free(mem);
    return median(t, reps);
}

static void bench_attention(const char *cfg, const char *name, const int32_t *cu, int n_seg, int h,
                            int hd, int reps)
{
    int n = cu[n_seg], dm = h * hd;
    float *qkv = buf((size_t)n * 3 * dm), *out = buf((size_t)n * dm), *lse = buf((size_t)n * h);
    float *dout = buf((size_t)n * dm), *dqkv = buf((size_t)n * 3 * dm);
    size_t ns = orch_attention_scratch_floats(cu, n_seg, 0);
    float *scr = buf(ns);
    double t[16];
    for (int r = -1; r < reps; r++) { /* r = -1 warms up */
        double t0 = now();
        orch_attention_fwd(out, lse, scr, ns, qkv, qkv + dm, qkv + 2 * dm, 3 * dm, cu, n_seg, h,
                           hd);
        orch_attention_bwd(dqkv, dqkv + dm, dqkv + 2 * dm, 3 * dm, scr, ns, dout, out, lse, qkv,
                           qkv + dm, qkv + 2 * dm, 3 * dm, cu, n_seg, h, hd);
        if (r >= 0)
            t[r] = now() - t0;
    }
    double tk = median(t, reps);
    double flops = 0;
    for (int s = 0; s < n_seg; s++) {
        double l = cu[s + 1] - cu[s];
        flops += 7.0 * 2.0 * l * l * hd * h;
    }
    double td = raw_attention(cu, n_seg, h, hd, 0, reps);
    double to = raw_attention(cu, n_seg, h, hd, 1, reps);
    char shape[64];
    snprintf(shape, sizeof shape, "N%d %dseg H%d hd%d", n, n_seg, h, hd);
    print_prod_row(cfg, name, shape, tk, flops, td, to, 0.6);
    free(qkv);
    free(out);
    free(lse);
    free(dout);
    free(dqkv);
    free(scr);
}

/* =========================================================== element-wise */

static double memcpy_time(size_t bytes, int reps)
{
    size_t n = bytes / 2 / sizeof(float);
    float *a = buf(n), *b = buf(n);
    double t[16];
    for (int r = -1; r < reps; r++) {
        double t0 = now();
#pragma omp parallel num_threads(g_threads)
        {
            int nt = omp_get_num_threads(), me = omp_get_thread_num();
            size_t lo = n * me / nt, hi = n * (me + 1) / nt;
            memcpy(b + lo, a + lo, (hi - lo) * sizeof(float));
        }
        if (r >= 0)
            t[r] = now() - t0;
    }
    free(a);
    free(b);
    return median(t, reps); /* for `bytes` bytes moved (half read, half written) */
}

typedef struct ew_ctx {
    int n, d, h, hd;
    float *a, *b, *c, *d1, *d2, *w, *rs, *ct, *st;
    int32_t *off, *labels;
} ew_ctx;

typedef void (*ew_fn)(ew_ctx *);

static void k_rms_f(ew_ctx *c)
{
    orch_rmsnorm_fwd(c->b, c->rs, c->a, c->w, 1e-6f, c->n, c->d);
}
static void k_rms_b(ew_ctx *c)
{
    orch_rmsnorm_bwd(c->d1, c->d2, c->c, c->a, c->w, c->rs, c->n, c->d);
}
static void k_gelu_f(ew_ctx *c)
{
    orch_gelu_fwd(c->b, c->a, (int64_t)c->n * c->d, 0);
}
static void k_gelu_b(ew_ctx *c)
{
    orch_gelu_bwd(c->d1, c->c, c->a, (int64_t)c->n * c->d, 0);
}
static void k_silu_f(ew_ctx *c)
{
    orch_silu_fwd(c->b, c->a, (int64_t)c->n * c->d);
}
static void k_swiglu_f(ew_ctx *c)
{
    orch_swiglu_fwd(c->b, c->a, c->c, (int64_t)c->n * c->d);
}
static void k_swiglu_b(ew_ctx *c)
{
    orch_swiglu_bwd(c->d1, c->d2, c->b, c->a, c->c, (int64_t)c->n * c->d);
}
static void k_add_f(ew_ctx *c)
{
    orch_add_fwd(c->b, c->a, c->c, (int64_t)c->n * c->d);
}
static void k_add_b(ew_ctx *c)
{
    orch_add_bwd(c->d1, c->d2, c->c, (int64_t)c->n * c->d);
}
static void k_rot_f(ew_ctx *c)
{
    orch_rotary_fwd(c->a, c->d, c->a, c->d, c->ct, c->st, c->n, c->h, c->hd);
}
static void k_rot_b(ew_ctx *c)
{
    orch_rotary_bwd(c->a, c->d, c->a, c->d, c->ct, c->st, c->n, c->h, c->hd);
}
static void k_scan(ew_ctx *c)
{
    orch_finite_stats st = orch_finite_scan(c->a, (int64_t)c->n * c->d);
    if (st.first_bad == -2)
        printf("impossible\n");
}
static void k_bf16(ew_ctx *c)
{
    orch_round_bf16_buf(c->b, (int64_t)c->n * c->d);
}
static void k_f16(ew_ctx *c)
{
    orch_round_f16_buf(c->b, (int64_t)c->n * c->d);
}
static void k_adamw(ew_ctx *c)
{
    orch_adamw_step(c->b, c->d1, c->d2, c->a, (int64_t)c->n * c->d, 1e-9f, 0.9f, 0.999f, 1e-8f,
                    0.0f, 3);
}
static void k_pool_f(ew_ctx *c)
{
    orch_mean_pool_fwd(c->b, c->a, c->off, 4, c->d);
}
static void k_ce_f(ew_ctx *c)
{
    float l = orch_cross_entropy_fwd(c->rs, c->a, c->labels, c->n, c->d);
    if (l == -1.0f)
        printf("impossible\n");
}
static void k_ce_b(ew_ctx *c)
{
    orch_cross_entropy_bwd(c->d1, c->a, c->rs, c->labels, 1.0f, c->n, c->d);
}

static void bench_ew(const char *cfg, const char *name, ew_fn fn, ew_ctx *c, double bytes_per_elem,
                     int reps)
{
    double elems = (double)c->n * c->d;
    double bytes = elems * bytes_per_elem;
    double t[32];
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        fn(c);
        if (r >= 0)
            t[r] = now() - t0;
    }
    double tk = median(t, reps);
    double tm = memcpy_time((size_t)bytes, reps);
    double ratio = tm / tk;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", c->n, c->d);
    printf("%-6s %-16s %-12s %4.0f B/el %9.3f %8.1f %8.1f %6.2f  %s\n", cfg, name, shape,
           bytes_per_elem, tk * 1e3, bytes / tk * 1e-9, bytes / tm * 1e-9, ratio,
           ratio >= 0.5 ? "met  >= 0.5" : "MISSED >= 0.5");
}

static void bench_elementwise(const char *cfg, int n, int d, int mlp, int h, int reps)
{
    int hd = d / h;
    size_t big = (size_t)n * (mlp > d ? mlp : d);
    ew_ctx c = {0};
    c.h = h;
    c.hd = hd;
    c.a = buf(big);
    c.b = buf(big);
    c.c = buf(big);
    c.d1 = buf(big);
    c.d2 = buf(big);
    c.w = buf((size_t)(mlp > d ? mlp : d));
    c.rs = buf((size_t)n);
    c.ct = buf((size_t)n * hd);
    c.st = buf((size_t)n * hd);
    c.off = malloc(sizeof *c.off * 5);
    c.labels = malloc(sizeof *c.labels * (size_t)n);
    for (int i = 0; i < 5; i++)
        c.off[i] = n / 4 * i;
    for (int i = 0; i < n; i++)
        c.labels[i] = i % d;
    for (size_t i = 0; i < big; i++)
        c.d2[i] = fabsf(c.d2[i]); /* AdamW v >= 0 */
    struct {
        const char *name;
        ew_fn fn;
        int width; /* 0: D, 1: mlp */
        double bpe;
    } ks[] = {
        {"rmsnorm fwd", k_rms_f, 0, 8},     {"rmsnorm bwd", k_rms_b, 0, 16},
        {"add fwd", k_add_f, 0, 12},        {"add bwd (both)", k_add_b, 0, 24},
        {"rotary fwd", k_rot_f, 0, 8},      {"rotary bwd", k_rot_b, 0, 8},
        {"gelu fwd", k_gelu_f, 0, 8},       {"gelu bwd", k_gelu_b, 0, 16},
        {"silu fwd", k_silu_f, 1, 8},       {"swiglu fwd", k_swiglu_f, 1, 12},
        {"swiglu bwd", k_swiglu_b, 1, 28},  {"finite_scan", k_scan, 1, 4},
        {"round bf16", k_bf16, 0, 8},       {"round f16", k_f16, 0, 8},
        {"adamw step", k_adamw, 0, 28},     {"mean_pool fwd", k_pool_f, 0, 4},
        {"xent fwd", k_ce_f, 0, 4},         {"xent bwd", k_ce_b, 0, 12},
    };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        c.n = n;
        c.d = ks[i].width ? mlp : d;
        bench_ew(cfg, ks[i].name, ks[i].fn, &c, ks[i].bpe, reps);
    }
    float *all[] = {c.a, c.b, c.c, c.d1, c.d2, c.w, c.rs, c.ct, c.st};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free(c.off);
    free(c.labels);
}

/* ================================================================= main */

static int32_t *segments(int n, int len, int *n_seg)
{
    int k = (n + len - 1) / len;
    int32_t *cu = malloc(sizeof *cu * (size_t)(k + 1));
    for (int i = 0; i <= k; i++)
        cu[i] = i * len < n ? i * len : n;
    *n_seg = k;
    return cu;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const char *env = getenv("ORCH_THREADS");
    orch_threads_set(env != NULL ? atoi(env) : 0);
    g_threads = orch_threads_get();
    bli_thread_set_num_threads(g_threads);

    g_peak1 = fma_peak(1);
    g_peakn = fma_peak(omp_get_num_procs());
    g_peak = g_threads == 1 ? g_peak1 : fma_peak(g_threads);
    printf("orch kernel bench: threads=%d (ORCH_THREADS=%s), BLIS %s arch %s, %d procs\n",
           g_threads, env ? env : "unset", bli_info_get_version_str(),
           bli_arch_string(bli_arch_query_id()), omp_get_num_procs());
    printf("fp32 FMA peak (8-wide fma loop, 12 chains): 1 thread %.1f GFLOP/s, %d threads %.1f "
           "GFLOP/s; %%peak below uses %.1f\n",
           g_peak1, omp_get_num_procs(), g_peakn, g_peak);
    printf("sup choice: 64x64x64 -> %s, 1024x3840x1280 -> %s, 256x1024x80 -> %s\n\n",
           orch_sup_choice(64, 64, 64) == ORCH_SUP_ON ? "default" : "sup-off",
           orch_sup_choice(1024, 3840, 1280) == ORCH_SUP_ON ? "default" : "sup-off",
           orch_sup_choice(256, 1024, 80) == ORCH_SUP_ON ? "default" : "sup-off");

    printf("== products, forward + backward (ratio = best raw time / kernel time)\n");
    print_prod_header();
    /* tiny: D 32, mlp 40, 4 heads, hd 8, 1024 tokens, merger 4D = 128, out 24 */
    bench_linear("tiny", "qkv", 1024, 32, 96, 7);
    bench_linear("tiny", "mlp up", 1024, 32, 40, 7);
    bench_linear("tiny", "mlp down", 1024, 40, 32, 7);
    bench_linear("tiny", "merger.0", 256, 128, 128, 7);
    bench_lora("tiny", 1024, 32, 96, 8, 7);
    int ns;
    int32_t *cu = segments(1024, 16, &ns);
    bench_attention("tiny", "attn window", cu, ns, 4, 8, 7);
    free(cu);
    cu = segments(1024, 1024, &ns);
    bench_attention("tiny", "attn full", cu, ns, 4, 8, 5);
    free(cu);

    /* real 3B: D 1280, mlp 3420, 16 heads, hd 80 */
    bench_linear("3B", "qkv", 1024, 1280, 3840, 3);
    bench_linear("3B", "proj", 1024, 1280, 1280, 3);
    bench_linear("3B", "mlp gate/up", 1024, 1280, 3420, 3);
    bench_linear("3B", "mlp down", 1024, 3420, 1280, 3);
    bench_linear("3B", "merger.0", 256, 5120, 5120, 3);
    bench_linear("3B", "merger.2", 256, 5120, 2048, 3);
    bench_lora("3B", 1024, 1280, 3840, 8, 3);
    cu = segments(1024, 64, &ns);
    bench_attention("3B", "attn window", cu, ns, 16, 80, 5);
    free(cu);
    cu = segments(1024, 1024, &ns);
    bench_attention("3B", "attn full", cu, ns, 16, 80, 3);
    free(cu);
    if (!quick) {
        bench_linear("3B", "qkv", 4096, 1280, 3840, 1);
        bench_linear("3B", "mlp down", 4096, 3420, 1280, 1);
        cu = segments(4096, 64, &ns);
        bench_attention("3B", "attn window", cu, ns, 16, 80, 3);
        free(cu);
        cu = segments(4096, 4096, &ns);
        bench_attention("3B", "attn full", cu, ns, 16, 80, 1);
        free(cu);
    }

    printf("\n== element-wise (GB/s of the bytes each kernel must move; memcpy of as many bytes,"
           " %d threads)\n",
           g_threads);
    printf("%-6s %-16s %-12s %9s %9s %8s %8s %6s  %s\n", "config", "kernel", "shape", "traffic",
           "ms", "GB/s", "memcpy", "ratio", "target");
    bench_elementwise("tiny", 1024, 32, 40, 4, 15);
    bench_elementwise("3B", 1024, 1280, 3420, 16, 9);
    if (!quick)
        bench_elementwise("3B", 4096, 1280, 3420, 16, 5);
    return 0;
}
