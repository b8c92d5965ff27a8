/*
 * standin.c - TEMPORARY stand-in implementation of the lead's API (see
 * standin.h). The trace wraps orch_sgemm at link time (-Wl,--wrap, set by the
 * Makefile in stand-in mode): every call from another object file reaches
 * __wrap_orch_sgemm, which reports it and calls the real one.
 */
#include "bench/common/standin.h"

#ifdef BENCH_STANDIN
#include <blis.h>
#include <stdio.h>
#include <string.h>

static orch_blas_info g_info;
static orch_gemm_trace_fn g_fn;
static void *g_ctx;

orch_status orch_blas_init(orch_err *err)
{
    (void)err;
    if (g_info.version[0] != '\0')
        return ORCH_OK;
    /* any BLIS call first: bli_arch_query_id() alone aborts under BLIS_ARCH_TYPE */
    bli_init();
    snprintf(g_info.version, sizeof g_info.version, "%s", bli_info_get_version_str());
    snprintf(g_info.subconfig, sizeof g_info.subconfig, "%s", bli_arch_string(bli_arch_query_id()));
    snprintf(g_info.why, sizeof g_info.why, "%s",
             getenv("BLIS_ARCH_TYPE") != NULL ? "forced by BLIS_ARCH_TYPE (stand-in)"
                                              : "BLIS's own cpuid choice (stand-in)");
    snprintf(g_info.cpu, sizeof g_info.cpu, "(stand-in: not read)");
    return ORCH_OK;
}

const orch_blas_info *orch_blas_get_info(void)
{
    return &g_info;
}

void orch_gemm_trace_set(orch_gemm_trace_fn fn, void *ctx)
{
    g_fn = fn;
    g_ctx = ctx;
}

void __real_orch_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                       int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                       int64_t rsc, int64_t csc, orch_sup sup, int nthreads);
void __wrap_orch_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                       int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                       int64_t rsc, int64_t csc, orch_sup sup, int nthreads);
void __wrap_orch_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                       int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                       int64_t rsc, int64_t csc, orch_sup sup, int nthreads)
{
    if (g_fn != NULL) {
        orch_gemm_call call = {m, n, k, rsa, csa, rsb, csb, rsc, csc, beta, nthreads, sup};
#pragma omp critical(bench_standin_trace)
        g_fn(g_ctx, &call);
    }
    __real_orch_sgemm(m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, sup, nthreads);
}
#else
typedef int bench_standin_unused; /* an ISO C translation unit is not empty */
#endif
