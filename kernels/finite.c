/*
 * finite.c - NaN/Inf scan with the largest finite magnitude, in one pass.
 *
 * Fast path: integer tests on the bit pattern (|x| bits >= 0x7f800000 is
 * NaN or Inf), a count and an integer max of the finite |x| bits (for
 * non-negative floats the bit order is the value order). Branch-free, so it
 * vectorizes; parallel over chunks for large buffers. Only when something
 * is bad does a second, scalar pass split NaN from Inf and find the first
 * bad index.
 */
#include "kernels/kernels.h"
#include "kernels/kinternal.h"

#include <omp.h>

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

orch_finite_stats orch_finite_scan(const float *x, int64_t n)
{
    orch_finite_stats st = {0, 0, -1, 0.0f};
    int nt = orch_par_threads(n);
    int64_t bad = 0;
    int32_t mx = 0;
    if (nt <= 1) {
        scan_fast(x, 0, n, &bad, &mx);
    } else {
#pragma omp parallel num_threads(nt) reduction(+ : bad) reduction(max : mx)
        {
            int64_t lo, hi, b;
            int32_t m;
            orch_chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            scan_fast(x, lo, hi, &b, &m);
            bad += b;
            mx = m > mx ? m : mx;
        }
    }
    uint32_t mb = (uint32_t)mx;
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
