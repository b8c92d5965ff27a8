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
 * medians of several repetitions, kernel and references interleaved rep by
 * rep; 4096-token full attention runs once (about 4 s per variant on one
 * thread).
 * --quick skips the 4096-token rows.
 */
#include <blis.h>
#include <ctype.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/common/figure.h"
#include "core/startup_env.h"
#include "bench/common/peak.h"
#include "kernels/kernels.h"

static int g_threads;
static double g_peak; /* GFLOP/s of the FMA peak on g_threads threads */

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

/* ========================================================= raw products */

/* One product of a list: C (m,n) = A B with BLIS transposes on row-major
 * buffers, as a user would call bli_sgemm. */
typedef struct prod {
    int ta, tb; /* 1: operand stored transposed (row-major (k,m) / (n,k)) */
    long m, n, k;
    float beta;
} prod;

/* raw_gemm on operands with explicit row strides (of the stored matrices). */
static void raw_gemm_ld(const prod *p, const float *a, long lda, const float *b, long ldb, float *c,
                        long ldc, int sup_off, int nt)
{
    float al = 1.0f, be = p->beta;
    /* row-major storage; a transposed operand is named by BLIS's trans flag */
    trans_t tra = p->ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    trans_t trb = p->tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    if (!sup_off && nt == g_threads) {
        bli_sgemm(tra, trb, p->m, p->n, p->k, &al, (float *)a, lda, 1, (float *)b, ldb, 1, &be, c,
                  ldc, 1);
        return;
    }
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nt, &rntm);
    if (sup_off)
        bli_rntm_disable_l3_sup(&rntm);
    bli_sgemm_ex(tra, trb, p->m, p->n, p->k, &al, (float *)a, lda, 1, (float *)b, ldb, 1, &be, c,
                 ldc, 1, NULL, &rntm);
}

static void raw_gemm(const prod *p, const float *a, const float *b, float *c, int sup_off, int nt)
{
    /* A stored (k,m) or (m,k), B stored (n,k) or (k,n), C (m,n), all dense */
    raw_gemm_ld(p, a, p->ta ? p->m : p->k, b, p->tb ? p->k : p->n, c, p->n, sup_off, nt);
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
    printf("%-6s %-14s %-22s %9s %8s %8s %8s %6s %6s %6s  %s\n", "config", "kernel", "shape", "ms",
           "GFLOP/s", "raw-def", "raw-off", "ratio", "%peak", "raw%pk", "target");
}

/* A figure id for a row: kernels.t<threads>.<cfg>.<kernel>.n<rows>.<what>,
 * lower case, any run of other characters in the kernel's name as one '_'. */
static void row_id(char *id, size_t size, const char *cfg, const char *kernel, int n,
                   const char *what)
{
    char name[64];
    size_t k = 0;
    /* ids stay [a-z0-9._]: "lora(frozen W)" -> "lora_frozen_w" */
    for (const char *p = kernel; *p != '\0' && k + 1 < sizeof name; p++) {
        char ch = (char)tolower((unsigned char)*p);
        int keep = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.';
        if (keep)
            name[k++] = ch;
        else if (k > 0 && name[k - 1] != '_')
            name[k++] = '_';
    }
    while (k > 0 && name[k - 1] == '_')
        k--;
    name[k] = '\0';
    snprintf(id, size, "kernels.t%d.%s.%s.n%d.%s", g_threads, cfg, name, n, what);
    for (char *p = id; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
}

static void print_prod_row(const char *cfg, const char *kernel, const char *shape, int n, double t,
                           double flops, double t_def, double t_off, double target)
{
    double best = t_def < t_off ? t_def : t_off;
    double ratio = best / t;
    double rate = flops / t * 1e-9, raw = flops / best * 1e-9;
    char tgt[16], id[128];
    snprintf(tgt, sizeof tgt, ">=%.1f", target);
    printf("%-6s %-14s %-22s %9.2f %8.1f %8.1f %8.1f %6.2f %5.0f%% %5.0f%%  %s %.1f\n", cfg, kernel,
           shape, t * 1e3, rate, flops / t_def * 1e-9, flops / t_off * 1e-9, ratio,
           100.0 * rate / g_peak, 100.0 * raw / g_peak,
           strcmp(bench_verdict(ratio, tgt), "met") == 0 ? "met  >=" : "MISSED >=", target);
    row_id(id, sizeof id, cfg, kernel, n, "vs_gemm");
    bench_figure(id, ratio, "x sgemm", tgt,
                 "%s %s (%s) fwd+bwd, %d thread(s): best raw sgemm time on its products over the "
                 "kernel time",
                 cfg, kernel, shape, g_threads);
    row_id(id, sizeof id, cfg, kernel, n, "peak");
    bench_figure(id, rate / g_peak, "of peak", "-",
                 "%s %s (%s) fwd+bwd, %d thread(s): %.1f GFLOP/s over the FMA peak %.1f (raw "
                 "sgemm on the same products: %.2f of peak)",
                 cfg, kernel, shape, g_threads, rate, g_peak, raw / g_peak);
}

/* Times three alternatives interleaved, rep by rep (kernel, raw default,
 * raw sup-off), so that the machine's drift hits all three alike; one
 * untimed warm-up round first. Writes the three medians. */
typedef void (*run_fn)(void *ctx, int which);

static void time3(run_fn fn, void *ctx, int reps, double med[3])
{
    double t[3][16];
    for (int r = -1; r < reps; r++)
        for (int w = 0; w < 3; w++) {
            double t0 = now();
            fn(ctx, w);
            if (r >= 0)
                t[w][r] = now() - t0;
        }
    for (int w = 0; w < 3; w++)
        med[w] = median(t[w], reps);
}

/* =============================================================== linear */

typedef struct lin_ctx {
    int n, in, out, r, lora;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *a, *bm, *u, *da, *dbm, *du;
    prod list[8];
    int n_prod;
    float *ra, *rb, *rc;
} lin_ctx;

static void lin_run(void *p, int which)
{
    lin_ctx *c = p;
    if (which > 0) {
        for (int i = 0; i < c->n_prod; i++)
            raw_gemm(&c->list[i], c->ra, c->rb, c->rc, which == 2, g_threads);
    } else if (!c->lora) {
        orch_linear_fwd(c->y, c->x, c->w, c->b, c->n, c->in, c->out);
        orch_linear_bwd(c->dx, c->dw, c->db, c->dy, c->x, c->w, c->n, c->in, c->out);
    } else {
        orch_lora_linear_fwd(c->y, c->u, c->x, c->w, c->b, c->a, c->bm, 1.0f, c->n, c->in, c->out,
                             c->r);
        orch_lora_linear_bwd(c->dx, c->da, c->dbm, NULL, NULL, c->du, c->dy, c->x, c->u, c->w, c->a,
                             c->bm, 1.0f, c->n, c->in, c->out, c->r);
    }
}

static void bench_linear_common(const char *cfg, const char *name, int n, int in, int out, int r,
                                int reps)
{
    lin_ctx c = {0};
    c.n = n;
    c.in = in;
    c.out = out;
    c.r = r;
    c.lora = r > 0;
    c.x = buf((size_t)n * in);
    c.w = buf((size_t)out * in);
    c.b = buf((size_t)out);
    c.y = buf((size_t)n * out);
    c.dy = buf((size_t)n * out);
    c.dx = buf((size_t)n * in);
    c.dw = buf((size_t)out * in);
    c.db = buf((size_t)out);
    int rr = r > 0 ? r : 1;
    c.a = buf((size_t)rr * in);
    c.bm = buf((size_t)out * rr);
    c.u = buf((size_t)n * rr);
    c.da = buf((size_t)rr * in);
    c.dbm = buf((size_t)out * rr);
    c.du = buf((size_t)n * rr);
    if (!c.lora) {
        /* y = x W^T (NT), dx = dy W (NN), dW = dy^T x (TN) */
        prod l[3] = {{0, 1, n, out, in, 0.0f}, {0, 0, n, in, out, 1.0f}, {1, 0, out, in, n, 1.0f}};
        memcpy(c.list, l, sizeof l);
        c.n_prod = 3;
    } else {
        /* the eight products of orch_lora_linear_fwd/bwd with W frozen */
        prod l[8] = {
            {0, 1, n, out, in, 0.0f}, {0, 1, n, r, in, 0.0f},  {0, 1, n, out, r, 1.0f},
            {1, 0, out, r, n, 1.0f},  {0, 0, n, r, out, 0.0f}, {1, 0, r, in, n, 1.0f},
            {0, 0, n, in, out, 1.0f}, {0, 0, n, in, r, 1.0f},
        };
        memcpy(c.list, l, sizeof l);
        c.n_prod = 8;
    }
    size_t big = (size_t)n * (in > out ? in : out), wsz = (size_t)in * out;
    size_t sz = big > wsz ? big : wsz;
    c.ra = buf(sz);
    c.rb = buf(sz);
    c.rc = buf(sz);
    double med[3];
    time3(lin_run, &c, reps, med);
    char shape[64];
    if (c.lora)
        snprintf(shape, sizeof shape, "%dx%d->%d r%d", n, in, out, r);
    else
        snprintf(shape, sizeof shape, "%dx%d->%d", n, in, out);
    print_prod_row(cfg, name, shape, n, med[0], list_flops(c.list, c.n_prod), med[1], med[2], 0.9);
    float *all[] = {c.x,  c.w, c.b,  c.y,   c.dy, c.dx, c.dw, c.db, c.a,
                    c.bm, c.u, c.da, c.dbm, c.du, c.ra, c.rb, c.rc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static void bench_linear(const char *cfg, const char *name, int n, int in, int out, int reps)
{
    bench_linear_common(cfg, name, n, in, out, 0, reps);
}

static void bench_lora(const char *cfg, int n, int in, int out, int r, int reps)
{
    bench_linear_common(cfg, "lora(frozen W)", n, in, out, r, reps);
}

/* ============================================================ attention */

/* The products orch_attention_fwd/bwd perform, run with raw BLIS in the
 * same task split (OpenMP over (segment, head) with 1 BLIS thread, or BLIS
 * threads when there are fewer tasks than threads) and the same query
 * blocks, on contiguous per-thread operands. */
typedef struct att_ctx {
    const int32_t *cu;
    int n_seg, h, hd, n;
    float *qkv, *out, *lse, *dout, *dqkv, *scr, *mem;
    size_t ns, per;
    int qb, team, bt;
    int32_t lmax;
} att_ctx;

/* One pass of the products orch_attention_fwd/bwd perform, with raw BLIS
 * on the same operands (head column blocks of the fused qkv buffer, the
 * same output buffers, S blocks in per-thread scratch), the same query
 * blocks and the same task split (OpenMP over (segment, head) with 1 BLIS
 * thread, or BLIS threads when there are fewer tasks than threads): the
 * kernel minus its softmax and row work. */
static void raw_attention(att_ctx *c, int sup_off)
{
    int h = c->h, hd = c->hd, bt = c->bt, dm = h * hd, ld = 3 * dm;
#pragma omp parallel num_threads(c->team)
    {
        float *s1 = c->mem + c->per * (size_t)omp_get_thread_num();
        float *s2 = s1 + (size_t)c->qb * c->lmax;
#pragma omp for schedule(dynamic, 1)
        for (long task = 0; task < (long)c->n_seg * h; task++) {
            int s = (int)(task / h), hh = (int)(task % h);
            long s0 = c->cu[s];
            int l = c->cu[s + 1] - c->cu[s];
            const float *k = c->qkv + s0 * ld + dm + (long)hh * hd, *v = k + dm;
            float *dk = c->dqkv + s0 * ld + dm + (long)hh * hd, *dv = dk + dm;
            for (int q0 = 0; q0 < l; q0 += ORCH_ATTN_QBLOCK) {
                int nb = l - q0 < ORCH_ATTN_QBLOCK ? l - q0 : ORCH_ATTN_QBLOCK;
                const float *q = c->qkv + (s0 + q0) * ld + (long)hh * hd;
                float *o = c->out + (s0 + q0) * dm + (long)hh * hd;
                const float *dout = c->dout + (s0 + q0) * dm + (long)hh * hd;
                float *dq = c->dqkv + (s0 + q0) * ld + (long)hh * hd;
                prod fw1 = {0, 1, nb, l, hd, 0.0f}, fw2 = {0, 0, nb, hd, l, 0.0f};
                prod bw2 = {1, 0, l, hd, nb, 1.0f}, bw4 = {0, 0, nb, hd, l, 1.0f};
                raw_gemm_ld(&fw1, q, ld, k, ld, s1, l, sup_off, bt);     /* S = Q K^T */
                raw_gemm_ld(&fw2, s1, l, v, ld, o, dm, sup_off, bt);     /* O = P V */
                raw_gemm_ld(&fw1, q, ld, k, ld, s1, l, sup_off, bt);     /* S again */
                raw_gemm_ld(&bw2, s1, l, dout, dm, dv, ld, sup_off, bt); /* dV += P^T dO */
                raw_gemm_ld(&fw1, dout, dm, v, ld, s2, l, sup_off, bt);  /* dP = dO V^T */
                raw_gemm_ld(&bw4, s2, l, k, ld, dq, ld, sup_off, bt);    /* dQ += dS K */
                raw_gemm_ld(&bw2, s2, l, q, ld, dk, ld, sup_off, bt);    /* dK += dS^T Q */
            }
        }
    }
}

static void att_run(void *p, int which)
{
    att_ctx *c = p;
    int dm = c->h * c->hd;
    if (which > 0) {
        raw_attention(c, which == 2);
        return;
    }
    orch_attention_fwd(c->out, c->lse, c->scr, c->ns, c->qkv, c->qkv + dm, c->qkv + 2 * dm, 3 * dm,
                       c->cu, c->n_seg, c->h, c->hd);
    orch_attention_bwd(c->dqkv, c->dqkv + dm, c->dqkv + 2 * dm, 3 * dm, c->scr, c->ns, c->dout,
                       c->out, c->lse, c->qkv, c->qkv + dm, c->qkv + 2 * dm, 3 * dm, c->cu,
                       c->n_seg, c->h, c->hd);
}

static void bench_attention(const char *cfg, const char *name, const int32_t *cu, int n_seg, int h,
                            int hd, int reps)
{
    att_ctx c = {0};
    c.cu = cu;
    c.n_seg = n_seg;
    c.h = h;
    c.hd = hd;
    c.n = cu[n_seg];
    int n = c.n, dm = h * hd;
    c.qkv = buf((size_t)n * 3 * dm);
    c.out = buf((size_t)n * dm);
    c.lse = buf((size_t)n * h);
    c.dout = buf((size_t)n * dm);
    c.dqkv = buf((size_t)n * 3 * dm);
    c.ns = orch_attention_scratch_floats(cu, n_seg, 0);
    c.scr = buf(c.ns);
    long n_tasks = 0;
    for (int s = 0; s < n_seg; s++) {
        int32_t l = cu[s + 1] - cu[s];
        c.lmax = l > c.lmax ? l : c.lmax;
        n_tasks += l > 0 ? h : 0;
    }
    c.qb = c.lmax < ORCH_ATTN_QBLOCK ? c.lmax : ORCH_ATTN_QBLOCK;
    c.team = n_tasks >= g_threads ? g_threads : 1;
    c.bt = c.team > 1 ? 1 : g_threads;
    c.per = (size_t)c.qb * c.lmax * 2;
    c.mem = buf(c.per * (size_t)c.team);
    double flops = 0;
    for (int s = 0; s < n_seg; s++) {
        double l = cu[s + 1] - cu[s];
        flops += 7.0 * 2.0 * l * l * hd * h;
    }
    double med[3];
    time3(att_run, &c, reps, med);
    char shape[64];
    snprintf(shape, sizeof shape, "N%d %dseg H%d hd%d", n, n_seg, h, hd);
    print_prod_row(cfg, name, shape, n, med[0], flops, med[1], med[2], 0.6);
    float *all[] = {c.qkv, c.out, c.lse, c.dout, c.dqkv, c.scr, c.mem};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* =========================================================== element-wise */

/* One memcpy of `bytes` bytes of traffic (half read, half written) split
 * over the thread team, like the kernels split their rows. */
static void par_memcpy(float *dst, const float *src, size_t n)
{
#pragma omp parallel num_threads(g_threads) if (n >= 32768)
    {
        int nt = omp_get_num_threads(), me = omp_get_thread_num();
        size_t lo = n * me / nt, hi = n * (me + 1) / nt;
        memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
    }
}

typedef struct ew_ctx {
    int n, d, h, hd;
    float *a, *b, *c, *d1, *d2, *w, *rs, *ct, *st, *m, *v; /* m, v: AdamW state */
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
    orch_adamw_step(c->b, c->m, c->v, c->a, (int64_t)c->n * c->d, 1e-9f, 0.9f, 0.999f, 1e-8f, 0.0f,
                    3);
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
    size_t nc = (size_t)(bytes / 2 / sizeof(float));
    float *src = buf(nc), *dst = buf(nc);
    double tk[32], tm[32];
    for (int r = -1; r < reps; r++) { /* interleaved: kernel, then memcpy */
        double t0 = now();
        fn(c);
        double t1 = now();
        par_memcpy(dst, src, nc);
        double t2 = now();
        if (r >= 0) {
            tk[r] = t1 - t0;
            tm[r] = t2 - t1;
        }
    }
    free(src);
    free(dst);
    double k = median(tk, reps), m = median(tm, reps);
    double ratio = m / k;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", c->n, c->d);
    printf("%-6s %-16s %-12s %4.0f B/el %9.3f %8.1f %8.1f %6.2f  %s\n", cfg, name, shape,
           bytes_per_elem, k * 1e3, bytes / k * 1e-9, bytes / m * 1e-9, ratio,
           ratio >= 0.5 ? "met  >= 0.5" : "MISSED >= 0.5");
    char id[128];
    row_id(id, sizeof id, cfg, name, c->n, "vs_memcpy");
    bench_figure(id, ratio, "x memcpy", ">=0.5",
                 "%s %s (%s, %.0f B/element), %d thread(s): memcpy time of as many bytes over the "
                 "kernel time (%.1f GB/s)",
                 cfg, name, shape, bytes_per_elem, g_threads, bytes / k * 1e-9);
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
    c.m = buf(big);
    c.v = buf(big);
    for (size_t i = 0; i < big; i++)
        c.v[i] = fabsf(c.v[i]); /* AdamW v >= 0 */
    struct {
        const char *name;
        ew_fn fn;
        int width; /* 0: D, 1: mlp */
        double bpe;
    } ks[] = {
        {"rmsnorm fwd", k_rms_f, 0, 8},    {"rmsnorm bwd", k_rms_b, 0, 16},
        {"add fwd", k_add_f, 0, 12},       {"add bwd (both)", k_add_b, 0, 24},
        {"rotary fwd", k_rot_f, 0, 8},     {"rotary bwd", k_rot_b, 0, 8},
        {"gelu fwd", k_gelu_f, 0, 8},      {"gelu bwd", k_gelu_b, 0, 16},
        {"silu fwd", k_silu_f, 1, 8},      {"swiglu fwd", k_swiglu_f, 1, 12},
        {"swiglu bwd", k_swiglu_b, 1, 28}, {"finite_scan", k_scan, 1, 4},
        {"round bf16", k_bf16, 0, 8},      {"round f16", k_f16, 0, 8},
        {"adamw step", k_adamw, 0, 28},    {"mean_pool fwd", k_pool_f, 0, 4},
        {"xent fwd", k_ce_f, 0, 4},        {"xent bwd", k_ce_b, 0, 12},
    };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        c.n = n;
        c.d = ks[i].width ? mlp : d;
        bench_ew(cfg, ks[i].name, ks[i].fn, &c, ks[i].bpe, reps);
    }
    float *all[] = {c.a, c.b, c.c, c.d1, c.d2, c.w, c.rs, c.ct, c.st, c.m, c.v};
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
    orch_startup_env(argv); /* the OpenMP wait policy orch runs with */
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    bench_begin("bench/kernels");
    const char *env = getenv("ORCH_THREADS");
    orch_threads_set(env != NULL ? atoi(env) : 0);
    g_threads = orch_threads_get();
    bli_thread_set_num_threads(g_threads);

    g_peak = bench_peak_gflops(g_threads);
    printf("orch kernel bench: threads=%d (ORCH_THREADS=%s), %d procs\n", g_threads,
           env ? env : "unset", omp_get_num_procs());
    printf("fp32 FMA peak (%s, %d lanes): 1 thread %.1f GFLOP/s, 2 threads %.1f GFLOP/s; %%peak "
           "below uses %.1f (%d thread(s)); raw%%pk = raw sgemm on the same products\n",
           bench_peak_isa(), bench_peak_lanes(), bench_peak_gflops(1), bench_peak_gflops(2), g_peak,
           g_threads);
    printf("sup choice (AUTO): 64x64x64 NN %s, 1024x3840x1280 NT %s, 256x1024x80 NT %s, "
           "1024x80x256 TN %s\n\n",
           orch_sup_choice_layout(64, 64, 64, 0, 0) == ORCH_SUP_ON ? "default" : "sup-off",
           orch_sup_choice_layout(1024, 3840, 1280, 0, 1) == ORCH_SUP_ON ? "default" : "sup-off",
           orch_sup_choice_layout(256, 1024, 80, 0, 1) == ORCH_SUP_ON ? "default" : "sup-off",
           orch_sup_choice_layout(1024, 80, 256, 1, 0) == ORCH_SUP_ON ? "default" : "sup-off");

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
        bench_linear("3B", "qkv", 4096, 1280, 3840, 3);
        bench_linear("3B", "mlp down", 4096, 3420, 1280, 3);
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
