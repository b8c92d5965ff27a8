/*
 * finite.c - NaN/Inf scan with the largest finite magnitude, in one pass.
 *
 * Fast path: integer tests on the bit pattern (|x| bits >= 0x7f800000 is
 * NaN or Inf), a count and an integer max of the finite |x| bits (for
 * non-negative floats the bit order is the value order). Branch-free, so it
 * vectorizes; parallel over chunks for large buffers. Only when something
 * is bad does a second, scalar pass split NaN from Inf and find the first
 * bad index.
 *
 * On x86-64 with AVX2 the fast path is written with intrinsics and two
 * independent accumulator pairs (the compiler's single vector accumulator
 * is latency-bound at about half the load rate); elsewhere a portable
 * `omp simd` loop computes the same thing.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <omp.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

#define BLOCK 65536 /* int32 lane counters cannot overflow within a block */

ORCH_SIMD_CLONES
static void scan_fast(const float *x, int64_t lo, int64_t hi, int64_t *bad, int32_t *maxbits)
{
    int64_t nbad = 0;
    int32_t mx = 0;
    for (int64_t b = lo; b < hi; b += BLOCK) {
        int64_t e = b + BLOCK < hi ? b + BLOCK : hi;
        int32_t cnt = 0;
        const int32_t *u = (const int32_t *)(const void *)(x + b);
        int32_t len = (int32_t)(e - b);
#pragma omp simd reduction(+ : cnt) reduction(max : mx)
        for (int32_t i = 0; i < len; i++) {
            int32_t a = u[i] & 0x7fffffff;
            int32_t isbad = a >= 0x7f800000;
            cnt += isbad;
            int32_t fin = a & (isbad - 1); /* 0 when bad */
            mx = fin > mx ? fin : mx;
        }
        nbad += cnt;
    }
    *bad = nbad;
    *maxbits = mx;
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2"))) static int32_t hmax_epi32(__m256i v)
{
    __m128i m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
    return _mm_cvtsi128_si32(m);
}

__attribute__((target("avx2"))) static int64_t hsum_epi32(__m256i v)
{
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)(void *)t, v);
    int64_t s = 0;
    for (int i = 0; i < 8; i++)
        s += t[i];
    return s;
}

__attribute__((target("avx2"))) static void scan_avx2(const float *x, int64_t lo, int64_t hi,
                                                      int64_t *bad, int32_t *maxbits)
{
    const __m256i absm = _mm256_set1_epi32(0x7fffffff), lim = _mm256_set1_epi32(0x7f7fffff);
    __m256i m0 = _mm256_setzero_si256(), m1 = m0;
    int64_t nbad = 0, i = lo;
    while (hi - i >= 16) {
        int64_t end = hi - i > BLOCK ? i + BLOCK : hi;
        __m256i c0 = _mm256_setzero_si256(), c1 = c0;
        for (; end - i >= 16; i += 16) {
            const __m256i *p = (const __m256i *)(const void *)(x + i);
            __m256i a0 = _mm256_and_si256(_mm256_loadu_si256(p), absm);
            __m256i a1 = _mm256_and_si256(_mm256_loadu_si256(p + 1), absm);
            __m256i b0 = _mm256_cmpgt_epi32(a0, lim), b1 = _mm256_cmpgt_epi32(a1, lim);
            c0 = _mm256_sub_epi32(c0, b0); /* b is -1 where bad */
            c1 = _mm256_sub_epi32(c1, b1);
            m0 = _mm256_max_epi32(m0, _mm256_andnot_si256(b0, a0));
            m1 = _mm256_max_epi32(m1, _mm256_andnot_si256(b1, a1));
        }
        nbad += hsum_epi32(_mm256_add_epi32(c0, c1));
    }
    int32_t mx = hmax_epi32(_mm256_max_epi32(m0, m1));
    int64_t tb;
    int32_t tm;
    scan_fast(x, i, hi, &tb, &tm); /* the tail */
    *bad = nbad + tb;
    *maxbits = tm > mx ? tm : mx;
}
#endif

/* The fast pass over [lo, hi) with the best code this CPU runs. */
void orch_scan_range(const float *x, int64_t lo, int64_t hi, int64_t *bad, int32_t *maxbits)
{
#ifdef HAVE_AVX2_PATH
    if (__builtin_cpu_supports("avx2")) {
        scan_avx2(x, lo, hi, bad, maxbits);
        return;
    }
#endif
    scan_fast(x, lo, hi, bad, maxbits);
}

orch_finite_stats orch_scan_finish(const float *x, int64_t n, int64_t bad, int32_t maxbits)
{
    orch_finite_stats st = {0, 0, -1, 0.0f};
    uint32_t mb = (uint32_t)maxbits;
    memcpy(&st.max_abs, &mb, sizeof mb);
    if (bad == 0)
        return st;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        u &= 0x7fffffffu;
        if (u < 0x7f800000u)
            continue;
        if (st.first_bad < 0)
            st.first_bad = i;
        if (u == 0x7f800000u)
            st.inf_count++;
        else
            st.nan_count++;
    }
    return st;
}

orch_finite_stats orch_finite_scan(const float *x, int64_t n)
{
    int nt = orch_par_threads(n);
    int64_t bad = 0;
    int32_t mx = 0;
    if (nt <= 1) {
        orch_scan_range(x, 0, n, &bad, &mx);
    } else {
#pragma omp parallel num_threads(nt) reduction(+ : bad) reduction(max : mx)
        {
            int64_t lo, hi, b;
            int32_t m;
            orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            orch_scan_range(x, lo, hi, &b, &m);
            bad += b;
            mx = m > mx ? m : mx;
        }
    }
    return orch_scan_finish(x, n, bad, mx);
}

/* Floats a fused kernel writes before it scans them: 16 KiB, so the scan
 * reads them back from L1 (the data is touched in memory once). */
#define SCANNED_BLOCK 4096

/* One thread's units [lo, hi) in blocks: compute, then scan what was
 * written. */
static void run_scanned_range(orch_block_fn fn, void *ctx, const float *out, int64_t unit_len,
                              int64_t lo, int64_t hi, int64_t *bad, int32_t *maxbits)
{
    int64_t per = unit_len > 0 && unit_len < SCANNED_BLOCK ? SCANNED_BLOCK / unit_len : 1;
    int64_t nbad = 0;
    int32_t mx = 0;
    for (int64_t b = lo; b < hi; b += per) {
        int64_t e = hi - b > per ? b + per : hi;
        fn(ctx, b, e);
        int64_t bb;
        int32_t bm;
        orch_scan_range(out, b * unit_len, e * unit_len, &bb, &bm);
        nbad += bb;
        mx = bm > mx ? bm : mx;
    }
    *bad = nbad;
    *maxbits = mx;
}

orch_finite_stats orch_run_scanned(orch_block_fn fn, void *ctx, const float *out, int64_t units,
                                   int64_t unit_len)
{
    int nt = orch_par_threads(units * unit_len);
    int64_t bad = 0;
    int32_t mx = 0;
    if (nt <= 1) {
        run_scanned_range(fn, ctx, out, unit_len, 0, units, &bad, &mx);
    } else {
#pragma omp parallel num_threads(nt) reduction(+ : bad) reduction(max : mx)
        {
            int64_t lo, hi, b;
            int32_t m;
            orch_chunk(units, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            run_scanned_range(fn, ctx, out, unit_len, lo, hi, &b, &m);
            bad += b;
            mx = m > mx ? m : mx;
        }
    }
    return orch_scan_finish(out, units * unit_len, bad, mx);
}
