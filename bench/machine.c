/*
 * bench/machine.c - what the other bench programs are measured against,
 * printed once at the start of `make bench`:
 *   - the BLIS kernel choice (version, sub-configuration and why, CPU),
 *   - the fp32 FMA peak with the widest vector unit, at 1 and 2 threads,
 *   - raw BLIS sgemm on a large square product as a fraction of that peak
 *     (what the best possible product reaches on this machine).
 *
 *   ./build/bench/machine [--quick]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/common/figure.h"
#include "core/startup_env.h"
#include "bench/common/peak.h"
#include "kernels/kernels.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best GFLOP/s of an n x n x n NN sgemm (BLIS default and sup off) on nt threads. */
static double sgemm_square(int n, int nt)
{
    float *a = malloc((size_t)n * n * sizeof(float));
    float *b = malloc((size_t)n * n * sizeof(float));
    float *c = malloc((size_t)n * n * sizeof(float));
    if (a == NULL || b == NULL || c == NULL) {
        fprintf(stderr, "bench/machine: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = b[i] = 1e-3f * (float)(i % 13);
    double best = 0.0;
    for (int rep = 0; rep < 4; rep++)
        for (int sup = ORCH_SUP_ON; sup <= ORCH_SUP_OFF; sup++) {
            double t0 = now();
            orch_sgemm(n, n, n, 1.0f, a, n, 1, b, n, 1, 0.0f, c, n, 1, (orch_sup)sup, nt);
            double rate = 2.0 * n * n * n / (now() - t0) * 1e-9;
            best = rate > best ? rate : best;
        }
    free(a);
    free(b);
    free(c);
    return best;
}

int main(int argc, char **argv)
{
    (void)argc;
    orch_startup_env(argv); /* the OpenMP wait policy orch runs with */
    bench_begin("bench/machine");
    printf("FMA peak: %s, %d fp32 lanes per instruction\n", bench_peak_isa(), bench_peak_lanes());
    for (int nt = 1; nt <= 2; nt++) {
        double peak = bench_peak_gflops(nt);
        double sg = sgemm_square(1536, nt);
        printf("  %d thread(s): FMA peak %7.1f GFLOP/s; raw sgemm 1536^3 %7.1f GFLOP/s = %.2f of "
               "peak\n",
               nt, peak, sg, sg / peak);
        char id[64];
        snprintf(id, sizeof id, "machine.peak.t%d", nt);
        bench_figure(id, peak, "GFLOP/s", "-", "fp32 FMA peak, %s (%d lanes), %d thread(s)",
                     bench_peak_isa(), bench_peak_lanes(), nt);
        snprintf(id, sizeof id, "machine.sgemm1536.t%d.peak", nt);
        bench_figure(id, sg / peak, "of peak", "-",
                     "raw BLIS sgemm 1536^3 (%.1f GFLOP/s), %d thread(s), as a fraction of the "
                     "FMA peak",
                     sg, nt);
    }
    return 0;
}
