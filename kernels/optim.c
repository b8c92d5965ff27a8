/*
 * optim.c - SGD and AdamW steps with PyTorch's formulas, the global grad
 * norm (double accumulation) and clip-by-norm (clip_grad_norm_ semantics).
 *
 * Steps are element-wise over a parameter buffer, in fp32 with the scalar
 * factors computed in double first (as PyTorch computes them in Python).
 * The norm splits each buffer into one chunk per thread and adds the
 * partial sums in chunk order: the same result for a fixed thread count.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <math.h>
#include <omp.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_PATHS 1
#endif

/* ------------------------------------------------------------------- SGD */

ORCH_SIMD_CLONES_512
static void sgd_chunk(float *p, float *buf, const float *g, int64_t lo, int64_t hi, float lr,
                      float mom, float damp, float wd, int nesterov, int first)
{
    if (buf == NULL || mom == 0.0f) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++)
            p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float d = g[i] + wd * p[i];
        float b = first ? d : mom * buf[i] + (1.0f - damp) * d;
        buf[i] = b;
        float step = nesterov ? d + mom * b : b;
        p[i] -= lr * step;
    }
}

void orch_sgd_step(float *param, float *buf, const float *grad, int64_t n, float lr, float momentum,
                   float dampening, float weight_decay, int nesterov, int64_t t)
{
    int nt = orch_par_threads(n);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        sgd_chunk(param, buf, grad, lo, hi, lr, momentum, dampening, weight_decay, nesterov,
                  t <= 1);
    });
}

/* ----------------------------------------------------------------- AdamW */

/* AdamW's update with the bias corrections folded into two scalars (once
 * per call, in double): m / (sqrt(v)/sqrt(bc2) + eps) * lr/bc1 equals
 * m / (sqrt(v) + eps*sqrt(bc2)) * (lr*sqrt(bc2)/bc1), so each element costs
 * one sqrt and one division (PyTorch's order costs two divisions); the
 * results differ from that order by rounding only (an ulp or two of the
 * update, far below an ulp of the parameter). */
ORCH_SIMD_CLONES_512
static void adamw_chunk(float *p, float *m, float *v, const float *g, int64_t lo, int64_t hi,
                        float decay, float b1, float b2, float step_scaled, float eps_scaled)
{
    float w1 = 1.0f - b1, w2 = 1.0f - b2;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = m[i] + w1 * (gi - m[i]); /* exp_avg.lerp_(grad, 1 - beta1) */
        float vi = v[i] * b2 + w2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_scaled * (mi / (sqrtf(vi) + eps_scaled));
    }
}

#ifdef HAVE_X86_PATHS
/* The same arithmetic, in the same order and without FMA, 16 or 8 lanes at
 * a time: gcc does not vectorize sqrtf while errno semantics are on (the
 * default, and an optimize attribute does not reach target clones), and
 * IEEE sqrt and division are correctly rounded in both forms, so the
 * results are bit-identical to adamw_chunk. */
__attribute__((target("avx512f"))) static int64_t
adamw_avx512(float *p, float *m, float *v, const float *g, int64_t lo, int64_t hi, float decay,
             float b1, float b2, float step_scaled, float eps_scaled)
{
    const __m512 vdecay = _mm512_set1_ps(decay), vw1 = _mm512_set1_ps(1.0f - b1);
    const __m512 vb2 = _mm512_set1_ps(b2), vw2 = _mm512_set1_ps(1.0f - b2);
    const __m512 vstep = _mm512_set1_ps(step_scaled), veps = _mm512_set1_ps(eps_scaled);
    int64_t i = lo;
    for (; hi - i >= 16; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i), mi = _mm512_loadu_ps(m + i);
        __m512 vi = _mm512_loadu_ps(v + i);
        __m512 pi = _mm512_mul_ps(_mm512_loadu_ps(p + i), vdecay);
        mi = _mm512_add_ps(mi, _mm512_mul_ps(vw1, _mm512_sub_ps(gi, mi)));
        vi = _mm512_add_ps(_mm512_mul_ps(vi, vb2), _mm512_mul_ps(_mm512_mul_ps(vw2, gi), gi));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 denom = _mm512_add_ps(_mm512_sqrt_ps(vi), veps);
        pi = _mm512_sub_ps(pi, _mm512_mul_ps(vstep, _mm512_div_ps(mi, denom)));
        _mm512_storeu_ps(p + i, pi);
    }
    return i;
}

__attribute__((target("avx"))) static int64_t adamw_avx(float *p, float *m, float *v,
                                                        const float *g, int64_t lo, int64_t hi,
                                                        float decay, float b1, float b2,
                                                        float step_scaled, float eps_scaled)
{
    const __m256 vdecay = _mm256_set1_ps(decay), vw1 = _mm256_set1_ps(1.0f - b1);
    const __m256 vb2 = _mm256_set1_ps(b2), vw2 = _mm256_set1_ps(1.0f - b2);
    const __m256 vstep = _mm256_set1_ps(step_scaled), veps = _mm256_set1_ps(eps_scaled);
    int64_t i = lo;
    for (; hi - i >= 8; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i), mi = _mm256_loadu_ps(m + i);
        __m256 vi = _mm256_loadu_ps(v + i);
        __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdecay);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(vw1, _mm256_sub_ps(gi, mi)));
        vi = _mm256_add_ps(_mm256_mul_ps(vi, vb2), _mm256_mul_ps(_mm256_mul_ps(vw2, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(vi), veps);
        pi = _mm256_sub_ps(pi, _mm256_mul_ps(vstep, _mm256_div_ps(mi, denom)));
        _mm256_storeu_ps(p + i, pi);
    }
    return i;
}
#endif

void orch_adamw_step(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int64_t t)
{
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2_sqrt = sqrt(1.0 - pow((double)beta2, (double)t));
    float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    float step_scaled = (float)((double)lr * bc2_sqrt / bc1);
    float eps_scaled = (float)((double)eps * bc2_sqrt);
    int nt = orch_par_threads(n);
    ORCH_PARALLEL(nt, {
        int64_t lo, hi;
        orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
#ifdef HAVE_X86_PATHS
        if (__builtin_cpu_supports("avx512f"))
            lo = adamw_avx512(param, m, v, grad, lo, hi, decay, beta1, beta2, step_scaled,
                              eps_scaled);
        else if (__builtin_cpu_supports("avx"))
            lo = adamw_avx(param, m, v, grad, lo, hi, decay, beta1, beta2, step_scaled, eps_scaled);
#endif
        adamw_chunk(param, m, v, grad, lo, hi, decay, beta1, beta2, step_scaled, eps_scaled);
    });
}

/* ------------------------------------------------------------- grad norm */

ORCH_SIMD_CLONES_512
static double sumsq_chunk(const float *x, int64_t lo, int64_t hi)
{
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = lo; i < hi; i++)
        acc += (double)x[i] * (double)x[i];
    return acc;
}

#define MAX_PARTS 256

double orch_grad_norm(const float *const *bufs, const int64_t *lens, int n_bufs)
{
    double total = 0.0;
    for (int b = 0; b < n_bufs; b++) {
        int64_t n = lens[b];
        int nt = orch_par_threads(n);
        nt = nt < MAX_PARTS ? nt : MAX_PARTS;
        double part[MAX_PARTS];
        ORCH_PARALLEL(nt, {
            int64_t lo, hi;
            int nth = omp_get_num_threads(), me = omp_get_thread_num();
            orch_chunk(n, nth, me, &lo, &hi);
            part[me] = sumsq_chunk(bufs[b], lo, hi);
            if (me == 0)
                nt = nth; /* the team actually granted */
        });
        for (int t = 0; t < nt; t++)
            total += part[t];
    }
    return sqrt(total);
}

/* The product is taken in double and rounded once, so a clipped gradient
 * is the float nearest g * coef. */
ORCH_SIMD_CLONES_512
static void scale_chunk(float *x, int64_t lo, int64_t hi, double c)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        x[i] = (float)((double)x[i] * c);
}

double orch_clip_by_norm(float *const *bufs, const int64_t *lens, int n_bufs, double norm,
                         double max_norm)
{
    /* clip_grad_norm_(error_if_nonfinite=False): the coefficient is
     * clamp(max_norm / (norm + 1e-6), max=1). An Inf norm gives 0 (finite
     * gradients become 0, infinite ones NaN); a NaN norm gives NaN, which
     * the clamp keeps, so every gradient becomes NaN. Nothing is hidden:
     * the caller that wants to skip such a step checks the norm first. */
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0)
        return 1.0;
    double c = coef;
    for (int b = 0; b < n_bufs; b++) {
        int64_t n = lens[b];
        int nt = orch_par_threads(n);
        ORCH_PARALLEL(nt, {
            int64_t lo, hi;
            orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            scale_chunk(bufs[b], lo, hi, c);
        });
    }
    return coef;
}

double orch_clip_grad_norm(float *const *bufs, const int64_t *lens, int n_bufs, double max_norm)
{
    double norm = orch_grad_norm((const float *const *)bufs, lens, n_bufs);
    orch_clip_by_norm(bufs, lens, n_bufs, norm, max_norm);
    return norm;
}
