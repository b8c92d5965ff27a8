/*
 * peak.h - the machine's fp32 FMA peak, measured with the widest vector unit
 * the CPU has (AVX-512, else AVX2+FMA, else SSE), shared by every bench
 * program so that "fraction of peak" means the same thing in each.
 */
#ifndef ORCH_BENCH_PEAK_H
#define ORCH_BENCH_PEAK_H

/* Vector width (in fp32 lanes) and ISA name of the loop bench_peak uses:
 * 16 "avx512f", 8 "avx2+fma" or 4 "sse" (no FMA: a mul and an add). */
int bench_peak_lanes(void);
const char *bench_peak_isa(void);

/* GFLOP/s of independent FMA chains on nt threads, all in parallel, each
 * thread's flops over its own CPU time (so time slices lost to other
 * processes on a shared machine do not count), best of 8 runs of ~50 ms.
 * Measured once per thread count and cached. */
double bench_peak_gflops(int nt);

#endif
