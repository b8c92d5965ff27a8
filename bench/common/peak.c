/*
 * peak.c - the FMA peak (see peak.h).
 *
 * Each loop keeps enough independent accumulator chains to cover FMA
 * latency x throughput (4 cycles x 2 pipes = 8 in flight on Zen 4/5 and
 * Skylake-X; 12-16 chains leave margin), so the loop runs at the issue rate
 * of the FMA units, which is the physical limit for fp32 products here.
 */
#include "bench/common/peak.h"

#include <immintrin.h>
#include <omp.h>
#include <time.h>

#define PEAK_MAX_THREADS 256

/* CPU time of the calling thread: the machine is shared, and a loop that
 * loses its core for a time slice must not lower the peak. */
static double thread_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHAIN(a, i, op) a[i] = op(a[i], b, c)
#define CHAINS12(a, op)                                                                            \
    CHAIN(a, 0, op);                                                                               \
    CHAIN(a, 1, op);                                                                               \
    CHAIN(a, 2, op);                                                                               \
    CHAIN(a, 3, op);                                                                               \
    CHAIN(a, 4, op);                                                                               \
    CHAIN(a, 5, op);                                                                               \
    CHAIN(a, 6, op);                                                                               \
    CHAIN(a, 7, op);                                                                               \
    CHAIN(a, 8, op);                                                                               \
    CHAIN(a, 9, op);                                                                               \
    CHAIN(a, 10, op);                                                                              \
    CHAIN(a, 11, op)
#define CHAINS16(a, op)                                                                            \
    CHAINS12(a, op);                                                                               \
    CHAIN(a, 12, op);                                                                              \
    CHAIN(a, 13, op);                                                                              \
    CHAIN(a, 14, op);                                                                              \
    CHAIN(a, 15, op)

static inline __m128 sse_madd(__m128 x, __m128 m, __m128 add)
{
    return _mm_add_ps(_mm_mul_ps(x, m), add);
}

/* 16 chains of 16-wide FMAs: 512 flops per iteration. */
__attribute__((target("avx512f"))) static float loop_avx512(long iters)
{
    __m512 a[16], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++)
        a[i] = _mm512_set1_ps((float)i);
    /* written out: a loop over a[] may leave the chains in memory at -O2 */
    for (long it = 0; it < iters; it++) {
        CHAINS16(a, _mm512_fmadd_ps);
    }
    __m512 s = a[0];
    for (int i = 1; i < 16; i++)
        s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

/* 12 chains of 8-wide FMAs: 192 flops per iteration. */
__attribute__((target("avx2,fma"))) static float loop_avx2(long iters)
{
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        CHAINS12(a, _mm256_fmadd_ps);
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

/* 12 chains of 4-wide mul + add (no FMA on the CPU): 96 flops per iteration. */
static float loop_sse(long iters)
{
    __m128 a[12], b = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        CHAINS12(a, sse_madd);
    }
    __m128 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm_add_ps(s, a[i]);
    float out[4];
    _mm_storeu_ps(out, s);
    return out[0] + out[3];
}

int bench_peak_lanes(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 8;
    return 4;
}

const char *bench_peak_isa(void)
{
    int lanes = bench_peak_lanes();
    return lanes == 16 ? "avx512f" : lanes == 8 ? "avx2+fma" : "sse";
}

/* flops per loop iteration of each variant, and the loop itself */
static double run_loop(int lanes, long iters, float *result)
{
    if (lanes == 16) {
        *result = loop_avx512(iters);
        return 16.0 * 16 * 2;
    }
    if (lanes == 8) {
        *result = loop_avx2(iters);
        return 12.0 * 8 * 2;
    }
    *result = loop_sse(iters);
    return 12.0 * 4 * 2;
}

double bench_peak_gflops(int nt)
{
    static double cache[PEAK_MAX_THREADS + 1]; /* 0: not measured yet */
    if (nt < 1)
        nt = 1;
    if (nt <= PEAK_MAX_THREADS && cache[nt] > 0.0)
        return cache[nt];
    int lanes = bench_peak_lanes();
    const long iters = lanes == 16 ? 3000000 : 5000000; /* ~50 ms per run */
    double best = 0.0;
    volatile float sink = 0.0f; /* keeps the loops' results alive */
    for (int rep = 0; rep < 8; rep++) {
        /* each thread's rate over its own CPU time, summed: all threads run
         * at once, so shared resources (SMT siblings, power) still count */
        double total = 0.0;
#pragma omp parallel num_threads(nt)
        {
            float r;
            double t0 = thread_seconds();
            double f = run_loop(lanes, iters, &r);
            double gf = (double)iters * f / (thread_seconds() - t0) * 1e-9;
#pragma omp critical
            {
                sink += r;
                total += gf;
            }
        }
        best = total > best ? total : best;
    }
    (void)sink;
    if (nt <= PEAK_MAX_THREADS)
        cache[nt] = best;
    return best;
}
