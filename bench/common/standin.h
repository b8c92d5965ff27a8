/*
 * standin.h - TEMPORARY local stand-in for the kernel-choice and gemm-trace
 * API the lead is adding to kernels/kernels.h (orch_blas_init,
 * orch_blas_get_info, orch_gemm_trace_set). The Makefile defines
 * BENCH_STANDIN only while kernels/kernels.h lacks orch_gemm_trace_set, so
 * after `git merge main` this header is empty and the real API is used;
 * delete it (and standin.c, and the Makefile's BENCH_STANDIN lines) then.
 */
#ifndef ORCH_BENCH_STANDIN_H
#define ORCH_BENCH_STANDIN_H

#include "kernels/kernels.h"

#ifdef BENCH_STANDIN
#include "core/err.h"

typedef struct orch_blas_info {
    char version[32];
    char subconfig[24];
    char why[192];
    char cpu[96];
    char features[96];
} orch_blas_info;
orch_status orch_blas_init(orch_err *err);
const orch_blas_info *orch_blas_get_info(void);

typedef struct orch_gemm_call {
    int64_t m, n, k, rsa, csa, rsb, csb, rsc, csc;
    float beta;
    int nthreads;
    orch_sup sup;
} orch_gemm_call;
typedef void (*orch_gemm_trace_fn)(void *ctx, const orch_gemm_call *call);
void orch_gemm_trace_set(orch_gemm_trace_fn fn, void *ctx);
#endif

#endif
