/*
 * attention.c - multi-head softmax attention over variable-length segments
 * (cu_seqlens), non-causal, scale 1/sqrt(hd), and its flash-style backward.
 *
 * Work is split into tasks (segment, head). For each task, query rows are
 * processed in blocks of QB rows so that scratch stays QB x L per thread:
 *   forward    S  = Qb K^T              (QB x L)   BLIS, strided head views
 *              P  = exp(c S - c rowmax) in place; lse = c rowmax + log(rowsum)
 *              Ob = P V / rowsum        BLIS, then a row scale of QB x hd
 *   backward   P  = exp(c Qb K^T - lse) recomputed, no stored L x L matrix
 *              dV += P^T dOb;  dP = dOb V^T;  dS = c P (dP - rowsum(dOb Ob))
 *              dQb += dS K;  dK += dS^T Qb
 * The scale c = 1/sqrt(hd) is applied inside the element-wise passes that
 * touch S and dS anyway, not as a BLIS alpha: BLIS then packs A and B as
 * plain copies (an alpha other than 1 is applied while packing).
 * Head h of q is the column block [h*hd, (h+1)*hd) of a buffer with row
 * stride ld, passed to BLIS as (rs = ld, cs = 1): no copies of q, k, v.
 *
 * Threads: when there are at least as many tasks as threads, the tasks are
 * shared by an OpenMP team (dynamic schedule) and every product inside runs
 * on one BLIS thread; otherwise tasks run one after the other and each
 * product gets all threads from BLIS. A task writes only its own rows and
 * head columns, so results do not depend on which thread ran it.
 */
/* Contract a*b+c into FMA where the CPU has it (the AVX2 clones): the exp
 * and erf polynomials run ~30% faster. -std=c11 alone turns contraction off.
 * This changes rounding only (FMA is exact before its one rounding). */
#pragma GCC optimize("fp-contract=fast")

#include "kernels/kernels.h"
#include "kernels/kinternal.h"

/* The row passes below carry an AVX-512 clone besides kinternal.h's AVX2
 * one: on a CPU with AVX-512 (Zen 4/5, Skylake-X) the exp of the softmax is
 * the largest cost outside BLIS in a step, and 16 lanes halve it. Results
 * are deterministic for a given machine (the clone is picked once, at load
 * time); lane counts change only the order of the row sums. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ORCH_NO_CLONES)
#define ATTN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ATTN_CLONES
#endif

#include "core/err.h"

#include <math.h>
#include <omp.h>

/* Query rows per block (kernels.h says why 512). */
#define QB ORCH_ATTN_QBLOCK

static int32_t max_seg_len(const int32_t *cu, int n_seg)
{
    int32_t mx = 0;
    for (int s = 0; s < n_seg; s++) {
        int32_t l = cu[s + 1] - cu[s];
        mx = l > mx ? l : mx;
    }
    return mx;
}

/* Floats one worker needs: two QB x L blocks and QB row values. */
static size_t share_floats(int32_t lmax)
{
    size_t qb = (size_t)(lmax < QB ? lmax : QB);
    return 2 * qb * (size_t)lmax + qb;
}

size_t orch_attention_scratch_floats(const int32_t *cu_seqlens, int n_seg, int nthreads)
{
    if (nthreads <= 0)
        nthreads = orch_threads_get();
    int32_t lmax = max_seg_len(cu_seqlens, n_seg);
    if (lmax <= 0)
        return 0;
    return (size_t)nthreads * share_floats(lmax);
}

/* ------------------------------------------------------ row softmax pieces */

/* exp(x) for the softmax's arguments, which are <= 0 (a score minus its
 * row's maximum, up to a rounding above it in the backward) or NaN:
 * kinternal.h's orch_expf (same polynomial, same
 * accuracy) without the upper clamp and the NaN select, and with 2^n built
 * from the rounding constant's bits instead of a float-to-int conversion,
 * so a NaN flows through the arithmetic to a NaN result on its own. The
 * exp is the largest cost outside BLIS in a step: ~30 % fewer operations.
 * Below -88.3 the result is 0 (2^-127 scale), as orch_expf's. */
static inline float exp_nonpos(float x)
{
    float xc = orch_self(x < -88.3f, -88.3f, x); /* NaN compares false: stays NaN */
    const float magic = 12582912.0f;             /* 1.5 * 2^23: rounds to an integer */
    float t = xc * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    /* the low bits of t hold n + 2^22: n + 127 in [0, 127] for x in
     * [-88.3, 0], the biased exponent of 2^n (0 gives a zero scale) */
    uint32_t tb, mb;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&mb, &magic, sizeof mb);
    uint32_t e = (tb - mb + 127u) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return y * scale;
}

/* Rows of the unscaled scores s (nb x l): s = exp(c s - c max), sums[i] =
 * row sum, lse = c max + log(sum): the softmax of c s. */
ATTN_CLONES
static void softmax_rows(float *s, float *sums, float *lse, int lse_stride, float c, int nb, int l)
{
    for (int i = 0; i < nb; i++) {
        float *r = s + (int64_t)i * l;
        float mx = -__builtin_inff();
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < l; j++)
            mx = r[j] > mx ? r[j] : mx;
        float cmx = c * mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < l; j++) {
            float e = exp_nonpos(c * r[j] - cmx);
            r[j] = e;
            sum += e;
        }
        sums[i] = sum;
        lse[(int64_t)i * lse_stride] = cmx + logf(sum);
    }
}

/* Rows of the unscaled scores p (nb x l): p = exp(c p - lse[i]). */
ATTN_CLONES
static void exp_rows(float *p, const float *lse, int lse_stride, float c, int nb, int l)
{
    for (int i = 0; i < nb; i++) {
        float *r = p + (int64_t)i * l;
        float m = lse[(int64_t)i * lse_stride];
#pragma omp simd
        for (int j = 0; j < l; j++)
            r[j] = exp_nonpos(c * r[j] - m);
    }
}

/* dp (nb x l) = c p (dp - dsum[i]): dS with the score scale folded in. */
ATTN_CLONES
static void dsoftmax_rows(float *dp, const float *p, const float *dsum, float c, int nb, int l)
{
    for (int i = 0; i < nb; i++) {
        float *d = dp + (int64_t)i * l;
        const float *r = p + (int64_t)i * l;
        float ds = dsum[i];
#pragma omp simd
        for (int j = 0; j < l; j++)
            d[j] = c * r[j] * (d[j] - ds);
    }
}

/* o (nb x hd, row stride ldo) /= sums[i] per row. Returns the sum of
 * 0 * o over the block: 0 when every result is finite, NaN otherwise (the
 * output's NaN check, in the pass that writes it). */
ATTN_CLONES
static float scale_rows(float *o, int ldo, const float *sums, int nb, int hd)
{
    float bad = 0.0f;
    for (int i = 0; i < nb; i++) {
        float inv = 1.0f / sums[i];
        float *r = o + (int64_t)i * ldo;
#pragma omp simd reduction(+ : bad)
        for (int d = 0; d < hd; d++) {
            r[d] *= inv;
            bad += 0.0f * r[d];
        }
    }
    return bad;
}

/* dsum[i] = sum_d do[i,d] * o[i,d] over one head's columns. */
ATTN_CLONES
static void row_dots(float *dsum, const float *dout, const float *o, int ldo, int nb, int hd)
{
    for (int i = 0; i < nb; i++) {
        const float *a = dout + (int64_t)i * ldo, *b = o + (int64_t)i * ldo;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int d = 0; d < hd; d++)
            acc += a[d] * b[d];
        dsum[i] = acc;
    }
}

/* ------------------------------------------------------------------ tasks */

typedef struct attn_args {
    float *out, *lse;
    float *dq, *dk, *dv;
    int ld_d;
    const float *dout, *o_saved, *lse_saved;
    const float *q, *k, *v;
    int ld;
    const int32_t *cu;
    int n_seg, n_head, hd;
    float scale;
    int *nonfinite; /* forward: set to 1 when an output is NaN or Inf */
} attn_args;

static void fwd_task(const attn_args *a, int s, int h, float *share, int32_t lmax, int bt)
{
    int64_t s0 = a->cu[s];
    int l = a->cu[s + 1] - a->cu[s];
    int dm = a->n_head * a->hd;
    int qbmax = lmax < QB ? lmax : QB;
    float *sblk = share, *sums = share + 2 * (size_t)qbmax * lmax;
    const float *kh = a->k + s0 * a->ld + (int64_t)h * a->hd;
    const float *vh = a->v + s0 * a->ld + (int64_t)h * a->hd;
    for (int qb = 0; qb < l; qb += QB) {
        int nb = l - qb < QB ? l - qb : QB;
        int64_t r0 = s0 + qb;
        const float *qh = a->q + r0 * a->ld + (int64_t)h * a->hd;
        float *oh = a->out + r0 * dm + (int64_t)h * a->hd;
        /* S (nb x l) = Q K^T: K^T is k with strides (1, ld). */
        orch_sgemm(nb, l, a->hd, 1.0f, qh, a->ld, 1, kh, 1, a->ld, 0.0f, sblk, l, 1, ORCH_SUP_AUTO,
                   bt);
        softmax_rows(sblk, sums, a->lse + r0 * a->n_head + h, a->n_head, a->scale, nb, l);
        orch_sgemm(nb, a->hd, l, 1.0f, sblk, l, 1, vh, a->ld, 1, 0.0f, oh, dm, 1, ORCH_SUP_AUTO,
                   bt);
        if (scale_rows(oh, dm, sums, nb, a->hd) != 0.0f)
            __atomic_store_n(a->nonfinite, 1, __ATOMIC_RELAXED);
    }
}

static void bwd_task(const attn_args *a, int s, int h, float *share, int32_t lmax, int bt)
{
    int64_t s0 = a->cu[s];
    int l = a->cu[s + 1] - a->cu[s];
    int dm = a->n_head * a->hd;
    int hd = a->hd;
    int qbmax = lmax < QB ? lmax : QB;
    float *p = share, *dp = share + (size_t)qbmax * lmax, *dsum = dp + (size_t)qbmax * lmax;
    const float *kh = a->k + s0 * a->ld + (int64_t)h * hd;
    const float *vh = a->v + s0 * a->ld + (int64_t)h * hd;
    float *dkh = a->dk + s0 * a->ld_d + (int64_t)h * hd;
    float *dvh = a->dv + s0 * a->ld_d + (int64_t)h * hd;
    for (int qb = 0; qb < l; qb += QB) {
        int nb = l - qb < QB ? l - qb : QB;
        int64_t r0 = s0 + qb;
        const float *qh = a->q + r0 * a->ld + (int64_t)h * hd;
        const float *doh = a->dout + r0 * dm + (int64_t)h * hd;
        const float *oh = a->o_saved + r0 * dm + (int64_t)h * hd;
        float *dqh = a->dq + r0 * a->ld_d + (int64_t)h * hd;
        row_dots(dsum, doh, oh, dm, nb, hd);
        orch_sgemm(nb, l, hd, 1.0f, qh, a->ld, 1, kh, 1, a->ld, 0.0f, p, l, 1, ORCH_SUP_AUTO, bt);
        exp_rows(p, a->lse_saved + r0 * a->n_head + h, a->n_head, a->scale, nb, l);
        /* dV (l x hd) += P^T (l x nb) dO (nb x hd) */
        orch_sgemm(l, hd, nb, 1.0f, p, 1, l, doh, dm, 1, 1.0f, dvh, a->ld_d, 1, ORCH_SUP_AUTO, bt);
        /* dP (nb x l) = dO V^T */
        orch_sgemm(nb, l, hd, 1.0f, doh, dm, 1, vh, 1, a->ld, 0.0f, dp, l, 1, ORCH_SUP_AUTO, bt);
        dsoftmax_rows(dp, p, dsum, a->scale, nb, l);
        /* dQ (nb x hd) += dS K;  dK (l x hd) += dS^T Q (c is in dS) */
        orch_sgemm(nb, hd, l, 1.0f, dp, l, 1, kh, a->ld, 1, 1.0f, dqh, a->ld_d, 1, ORCH_SUP_AUTO,
                   bt);
        orch_sgemm(l, hd, nb, 1.0f, dp, 1, l, qh, a->ld, 1, 1.0f, dkh, a->ld_d, 1, ORCH_SUP_AUTO,
                   bt);
    }
}

/* Runs fn on every non-empty (segment, head) task. */
static void run_tasks(const attn_args *a, float *scratch, size_t scratch_floats,
                      void (*fn)(const attn_args *, int, int, float *, int32_t, int))
{
    int32_t lmax = max_seg_len(a->cu, a->n_seg);
    if (lmax <= 0)
        return;
    size_t share = share_floats(lmax);
    int nt = orch_threads_get();
    int64_t workers = (int64_t)(scratch_floats / share);
    /* the caller sized scratch with orch_attention_scratch_floats: at least
     * one worker's share, or the serial path below would overrun it */
    ORCH_ASSERT(workers >= 1);
    int64_t n_tasks = 0, work = 0;
    for (int s = 0; s < a->n_seg; s++) {
        int64_t l = a->cu[s + 1] - a->cu[s];
        n_tasks += l > 0 ? a->n_head : 0;
        work += l * l * a->hd * a->n_head;
    }
    if (work < ((int64_t)1 << 17)) /* a few us: not worth a thread team */
        nt = 1;
    int team = nt;
    if (team > workers)
        team = (int)workers;
    if (team > n_tasks)
        team = (int)n_tasks;
    if (team <= 1 || n_tasks < nt) {
        for (int s = 0; s < a->n_seg; s++) {
            if (a->cu[s + 1] <= a->cu[s])
                continue;
            for (int h = 0; h < a->n_head; h++)
                fn(a, s, h, scratch, lmax, nt);
        }
        return;
    }
    int64_t total = (int64_t)a->n_seg * a->n_head;
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + (size_t)omp_get_thread_num() * share;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < total; t++) {
            int s = (int)(t / a->n_head), h = (int)(t % a->n_head);
            if (a->cu[s + 1] > a->cu[s])
                fn(a, s, h, mine, lmax, 1);
        }
    }
}

int orch_attention_fwd_finite(float *out, float *lse, float *scratch, size_t scratch_floats,
                              const float *q, const float *k, const float *v, int ld,
                              const int32_t *cu_seqlens, int n_seg, int n_head, int head_dim)
{
    int nonfinite = 0;
    attn_args a = {0};
    a.out = out;
    a.lse = lse;
    a.q = q;
    a.k = k;
    a.v = v;
    a.ld = ld;
    a.cu = cu_seqlens;
    a.n_seg = n_seg;
    a.n_head = n_head;
    a.hd = head_dim;
    a.scale = (float)(1.0 / sqrt((double)head_dim));
    a.nonfinite = &nonfinite;
    run_tasks(&a, scratch, scratch_floats, fwd_task);
    return !nonfinite;
}

void orch_attention_fwd(float *out, float *lse, float *scratch, size_t scratch_floats,
                        const float *q, const float *k, const float *v, int ld,
                        const int32_t *cu_seqlens, int n_seg, int n_head, int head_dim)
{
    (void)orch_attention_fwd_finite(out, lse, scratch, scratch_floats, q, k, v, ld, cu_seqlens,
                                    n_seg, n_head, head_dim);
}

void orch_attention_bwd(float *dq, float *dk, float *dv, int ld_d, float *scratch,
                        size_t scratch_floats, const float *dout, const float *out,
                        const float *lse, const float *q, const float *k, const float *v, int ld,
                        const int32_t *cu_seqlens, int n_seg, int n_head, int head_dim)
{
    attn_args a = {0};
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.ld_d = ld_d;
    a.dout = dout;
    a.o_saved = out;
    a.lse_saved = lse;
    a.q = q;
    a.k = k;
    a.v = v;
    a.ld = ld;
    a.cu = cu_seqlens;
    a.n_seg = n_seg;
    a.n_head = n_head;
    a.hd = head_dim;
    a.scale = (float)(1.0 / sqrt((double)head_dim));
    run_tasks(&a, scratch, scratch_floats, bwd_task);
}
