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

/* Row max of r (c) and log(sum_j exp(r[j] - max)): lse = max + that. */
ORCH_SIMD_CLONES
static float row_logsum(const float *r, int c, float *max_out)
{
    float mx = -__builtin_inff();
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < c; j++)
        mx = r[j] > mx ? r[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < c; j++)
        sum += orch_expf(r[j] - mx);
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
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
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
    }
    double total = 0.0;
    int64_t counted = 0;
    for (int t = 0; t < nt; t++) {
        total += part[t];
        counted += cnt[t];
    }
    return counted > 0 ? (float)(total / (double)counted) : NAN;
}

ORCH_SIMD_CLONES
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
