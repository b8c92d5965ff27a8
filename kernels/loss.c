/*
 * loss.c - cross-entropy (log-sum-exp stable, mean over counted rows,
 * negative labels ignored as PyTorch's ignore_index) and MSE (mean).
 * Loss values are accumulated in double and returned as float.
 */
/* Contract a*b+c into FMA where the CPU has it (the AVX2 clones): the exp
 * and erf polynomials run ~30% faster. -std=c11 alone turns contraction off.
 * This changes rounding only (FMA is exact before its one rounding). */
#pragma GCC optimize("fp-contract=fast")

#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <math.h>
#include <omp.h>

/* Logits are read in blocks of this many (2 KiB, L1-resident): the block's
 * max, then its sum of exponentials from that same L1 copy, so each logit
 * comes from memory once. */
#define CE_BLOCK 512

/* Reductions run in CE_LANES independent lanes (one AVX-512 vector, two
 * AVX2 ones) folded by a tree at the end: gcc's own `omp simd reduction`
 * folds its lanes with a serial scalar loop, which costs more than the
 * whole row at the tiny preset's 32 classes. */
#define CE_LANES 16

static inline float lanes_max(float *m)
{
#pragma GCC unroll 8
    for (int w = CE_LANES / 2; w > 0; w /= 2)
#pragma GCC unroll 16
        for (int l = 0; l < w; l++)
            m[l] = orch_self(m[l + w] > m[l], m[l + w], m[l]);
    return m[0];
}

static inline float lanes_sum(float *m)
{
#pragma GCC unroll 8
    for (int w = CE_LANES / 2; w > 0; w /= 2)
#pragma GCC unroll 16
        for (int l = 0; l < w; l++)
            m[l] += m[l + w];
    return m[0];
}

/* The max of blk[0, len), starting from lo (NaN never wins: the sum below
 * turns NaN anyway). */
static inline float block_max(const float *blk, int len, float lo)
{
    float m[CE_LANES];
    for (int l = 0; l < CE_LANES; l++)
        m[l] = lo;
    int j = 0;
    for (; j + CE_LANES <= len; j += CE_LANES) {
#pragma omp simd
        for (int l = 0; l < CE_LANES; l++)
            m[l] = orch_self(blk[j + l] > m[l], blk[j + l], m[l]);
    }
    for (int l = 0; j + l < len; l++)
        m[l] = orch_self(blk[j + l] > m[l], blk[j + l], m[l]);
    return lanes_max(m);
}

/* sum of exp(blk[j] - mx) over blk[0, len). */
static inline float block_expsum(const float *blk, int len, float mx)
{
    float s[CE_LANES] = {0};
    int j = 0;
    for (; j + CE_LANES <= len; j += CE_LANES) {
#pragma omp simd
        for (int l = 0; l < CE_LANES; l++)
            s[l] += orch_expf(blk[j + l] - mx);
    }
    for (int l = 0; j + l < len; l++) /* the tail, < CE_LANES logits */
        s[l] += orch_expf(blk[j + l] - mx);
    return lanes_sum(s);
}

/* Row max of r (c) and log(sum_j exp(r[j] - max)): lse = max + that.
 * One pass with online rescaling: the running sum is kept relative to the
 * running max and multiplied by exp(old max - new max) when a block raises
 * it (one exp per block, not per element). */
ORCH_SIMD_CLONES_512
static float row_logsum(const float *r, int c, float *max_out)
{
    float mx = -__builtin_inff(), sum = 0.0f;
    for (int j0 = 0; j0 < c; j0 += CE_BLOCK) {
        int len = c - j0 < CE_BLOCK ? c - j0 : CE_BLOCK;
        float bm = block_max(r + j0, len, mx);
        float bs = block_expsum(r + j0, len, bm);
        /* the first block has nothing to rescale (and -inf - -inf is NaN) */
        sum = (j0 == 0 ? 0.0f : sum * orch_expf(mx - bm)) + bs;
        mx = bm;
    }
    *max_out = mx;
    return logf(sum);
}

static float row_lse(const float *r, int c)
{
    float mx, ls = row_logsum(r, c, &mx);
    return mx + ls;
}

#define MAX_PARTS 256

float orch_cross_entropy_fwd(float *lse, const float *logits, const int32_t *labels, int b, int c)
{
    /* per-thread partial sums over contiguous row ranges, added in order:
     * the same result for a fixed thread count */
    double part[MAX_PARTS];
    int64_t cnt[MAX_PARTS];
    int nt = orch_par_threads((int64_t)b * c * 8); /* exp-bound: parallel earlier */
    nt = nt < MAX_PARTS ? nt : MAX_PARTS;
    nt = nt < b ? nt : 1;
    ORCH_PARALLEL(nt, {
        int nth = omp_get_num_threads(), me = omp_get_thread_num();
        int64_t lo, hi;
        orch_chunk(b, nth, me, &lo, &hi);
        double total = 0.0;
        int64_t counted = 0;
        for (int64_t i = lo; i < hi; i++) {
            const float *r = logits + i * c;
            float mx, ls = row_logsum(r, c, &mx);
            if (lse != NULL)
                lse[i] = mx + ls;
            if (labels[i] < 0)
                continue;
            /* (max - logit) + log-sum in double: no fp32 cancellation at large logits */
            total += ((double)mx - (double)r[labels[i]]) + (double)ls;
            counted++;
        }
        part[me] = total;
        cnt[me] = counted;
        if (me == 0)
            nt = nth;
    });
    double total = 0.0;
    int64_t counted = 0;
    for (int t = 0; t < nt; t++) {
        total += part[t];
        counted += cnt[t];
    }
    return counted > 0 ? (float)(total / (double)counted) : NAN;
}

ORCH_SIMD_CLONES_512
static void ce_row_grad(float *d, const float *r, float l, float g, int c)
{
#pragma omp simd
    for (int j = 0; j < c; j++)
        d[j] += g * orch_expf(r[j] - l);
}

void orch_cross_entropy_bwd(float *dlogits, const float *logits, const float *lse,
                            const int32_t *labels, float dloss, int b, int c)
{
    int64_t counted = 0;
    for (int i = 0; i < b; i++)
        counted += labels[i] >= 0;
    if (counted == 0)
        return;
    float g = dloss / (float)counted;
    int nt = orch_par_threads((int64_t)b * c * 8);
    nt = nt < b ? nt : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int i = 0; i < b; i++) {
        if (labels[i] < 0)
            continue;
        const float *r = logits + (int64_t)i * c;
        float *d = dlogits + (int64_t)i * c;
        float l = lse != NULL ? lse[i] : row_lse(r, c);
        ce_row_grad(d, r, l, g, c);
        d[labels[i]] -= g;
    }
}

float orch_mse_fwd(const float *pred, const float *target, int64_t n)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)pred[i] - (double)target[i];
        acc += e * e;
    }
    return n > 0 ? (float)(acc / (double)n) : NAN;
}

void orch_mse_bwd(float *dpred, const float *pred, const float *target, float dloss, int64_t n)
{
    if (n <= 0)
        return;
    float g = (float)(2.0 * (double)dloss / (double)n);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dpred[i] += g * (pred[i] - target[i]);
}
