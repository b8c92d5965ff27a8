/*
 * blas.c - orch_sgemm over bli_sgemm_ex, and BLIS's start: which kernels it
 * runs (blis_arch.c decides, this file applies and checks the decision).
 * blas.c and blis_arch.c are the only files that include blis.h.
 *
 * Every call builds its own rntm_t carrying the thread count (from
 * orch_threads_get() unless the caller pins one, e.g. 1 inside an OpenMP
 * region) and the sup choice. BLIS 0.9's small/unpacked ("sup") path loses
 * up to 2.5x against the packed path on transformer shapes and wins only on
 * small products (measured on this machine: docs/performance.md); orch_sup_choice() is the
 * single place that decides, and bench/kernels.c measures both paths.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blis.h>

#include "kernels/blis_arch.h"

/* ------------------------------------------------------ BLIS's start */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static orch_blas_info g_info;
static orch_err g_init_err; /* code != 0: the start refused or failed */

/* |C - ref| against a double reference on a small product in the layouts
 * and paths orch uses (NN and NT, sup on and off): a sub-configuration whose
 * kernels compute wrong results must not train anything. */
static double check_product(int b_trans, orch_sup sup)
{
    enum { M = 13, N = 11, K = 37 };
    float a[M * K], b[K * N], c[M * N];
    for (int i = 0; i < M * K; i++)
        a[i] = (float)((i * 7 % 23) - 11) / 16.0f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)((i * 5 % 19) - 9) / 8.0f;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &rntm);
    if (sup == ORCH_SUP_OFF)
        bli_rntm_disable_l3_sup(&rntm);
    float one = 1.0f, zero = 0.0f;
    /* B as (K, N) row-major, or as the transpose of an (N, K) row-major buffer */
    inc_t rsb = b_trans ? 1 : N, csb = b_trans ? K : 1;
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, a, K, 1, b, rsb, csb, &zero,
                 c, N, 1, NULL, &rntm);
    double worst = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double ref = 0.0, mag = 0.0;
            for (int p = 0; p < K; p++) {
                double t = (double)a[i * K + p] * b[p * rsb + j * csb];
                ref += t;
                mag += fabs(t);
            }
            double rel = fabs(c[i * N + j] - ref) / (mag > 0 ? mag : 1.0);
            if (!(rel <= worst)) /* NaN counts as worst */
                worst = isnan(rel) ? INFINITY : rel;
        }
    return worst;
}

static void blas_start(void)
{
    orch_err_clear(&g_init_err);
    orch_cpu cpu;
    orch_cpu_read(&cpu);
    const char *user_env = getenv("BLIS_ARCH_TYPE");
    char saved[64] = "";
    int had_env = user_env != NULL;
    if (had_env)
        snprintf(saved, sizeof saved, "%s", user_env);

    orch_blis_choice choice;
    if (orch_blis_choose(&cpu, user_env, &choice, &g_init_err) != ORCH_OK) {
        /* refused: BLIS must not see the value (it would abort or fault);
         * a caller that checks orch_blas_init reports the refusal */
        unsetenv("BLIS_ARCH_TYPE");
        orch_err ignored;
        orch_blis_choose(&cpu, NULL, &choice, &ignored);
    }
    if (choice.set_env) {
        char id[16];
        snprintf(id, sizeof id, "%d", choice.id);
        setenv("BLIS_ARCH_TYPE", id, 1);
    }
    bli_init(); /* reads BLIS_ARCH_TYPE, once */
    /* children of this process see the environment the user gave */
    if (had_env)
        setenv("BLIS_ARCH_TYPE", saved, 1);
    else
        unsetenv("BLIS_ARCH_TYPE");

    int actual = (int)bli_arch_query_id();
    const char *name = orch_blis_subconfig_name(actual);
    snprintf(g_info.version, sizeof g_info.version, "%s", bli_info_get_version_str());
    snprintf(g_info.subconfig, sizeof g_info.subconfig, "%s", name ? name : "unknown");
    snprintf(g_info.why, sizeof g_info.why, "%s", choice.why);
    const char *vendor = cpu.vendor == ORCH_VENDOR_AMD     ? "AMD"
                         : cpu.vendor == ORCH_VENDOR_INTEL ? "Intel"
                                                           : "other";
    snprintf(g_info.cpu, sizeof g_info.cpu, "%s (%s family 0x%x, model 0x%x)",
             cpu.brand[0] ? cpu.brand : "unknown CPU", vendor, cpu.family, cpu.model);
    orch_cpu_feature_names(&cpu, g_info.features, sizeof g_info.features);

    if (choice.id >= 0 && actual != choice.id) {
        if (g_init_err.code == 0)
            orch_seterr(&g_init_err, ORCH_ERUNTIME,
                        "BLIS runs its '%s' kernels although '%s' was requested", g_info.subconfig,
                        orch_blis_subconfig_name(choice.id));
        return;
    }
    int best = orch_blis_best(&cpu);
    if (choice.id < 0 && actual == orch_blis_generic_id() && best != actual)
        snprintf(g_info.why, sizeof g_info.why,
                 "BLIS chose its generic C kernels on %s family 0x%x; BLIS_ARCH_TYPE=%s would "
                 "run faster ones",
                 vendor, cpu.family, orch_blis_subconfig_name(best));
    for (int t = 0; t < 2; t++)
        for (int sup = ORCH_SUP_ON; sup <= ORCH_SUP_OFF; sup++) {
            double err = check_product(t, (orch_sup)sup);
            if (!(err < 1e-5) && g_init_err.code == 0) {
                orch_seterr(&g_init_err, ORCH_ERUNTIME,
                            "BLIS's '%s' kernels computed a wrong product (relative error %.2g); "
                            "choose others with BLIS_ARCH_TYPE (orch --version lists them)",
                            g_info.subconfig, err);
                return;
            }
        }
}

orch_status orch_blas_init(orch_err *err)
{
    pthread_once(&g_once, blas_start);
    if (g_init_err.code != 0)
        return orch_seterr(err, g_init_err.code, "%s", g_init_err.msg);
    return ORCH_OK;
}

const orch_blas_info *orch_blas_get_info(void)
{
    pthread_once(&g_once, blas_start);
    return &g_info;
}

/* ------------------------------------------------------ call tracing */

static pthread_mutex_t g_trace_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(orch_gemm_trace_fn) g_trace_fn; /* read unlocked on the fast path */
static void *g_trace_ctx;

void orch_gemm_trace_set(orch_gemm_trace_fn fn, void *ctx)
{
    pthread_mutex_lock(&g_trace_lock);
    g_trace_fn = fn;
    g_trace_ctx = ctx;
    pthread_mutex_unlock(&g_trace_lock);
}

void orch_blas_set_global_threads(int n); /* used by threads.c */

void orch_blas_set_global_threads(int n)
{
    pthread_once(&g_once, blas_start);
    bli_thread_set_num_threads(n);
}

/* The rule, for a call that runs on nt threads. */
static orch_sup sup_rule(int64_t m, int64_t n, int64_t k, int a_trans, int b_trans, int nt)
{
    /* Measured with BLIS 0.9.0 (zen3 kernels) on the 2-core Zen VM, 1 and 2
     * threads (docs/performance.md, "sup sweep"): BLIS's default path
     * (small/unpacked code below its own thresholds) wins on small products
     * and whenever the output has few columns; the packed path (sup off)
     * wins by up to 2.5x on the transformer shapes in between; both are
     * equal on large products. With 2 threads the default path also wins on
     * outputs up to 256 x 256 of the transposed layouts. */
    if (m * n * k <= ((int64_t)1 << 20))
        return ORCH_SUP_ON;
    if ((a_trans || b_trans) && nt > 1 && m <= 256 && n <= 256)
        return ORCH_SUP_ON;
    if (b_trans) /* NT: x W^T, Q K^T, dO V^T */
        return (n <= 32 || (m <= 64 && n <= 64)) ? ORCH_SUP_ON : ORCH_SUP_OFF;
    if (a_trans) /* TN: dy^T x, P^T dO, dS^T Q */
        return (n <= 96 || m <= 64) ? ORCH_SUP_ON : ORCH_SUP_OFF;
    return (n <= 256 || k <= 32) ? ORCH_SUP_ON : ORCH_SUP_OFF; /* NN */
}

orch_sup orch_sup_choice_layout(int64_t m, int64_t n, int64_t k, int a_trans, int b_trans)
{
    return sup_rule(m, n, k, a_trans, b_trans, orch_threads_get());
}

orch_sup orch_sup_choice(int64_t m, int64_t n, int64_t k)
{
    return orch_sup_choice_layout(m, n, k, 0, 0);
}

void orch_sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsa,
                int64_t csa, const float *b, int64_t rsb, int64_t csb, float beta, float *c,
                int64_t rsc, int64_t csc, orch_sup sup, int nthreads)
{
    if (m <= 0 || n <= 0)
        return;
    pthread_once(&g_once, blas_start);
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float *p = c + i * rsc + j * csc;
                *p = beta == 0.0f ? 0.0f : beta * *p;
            }
        return;
    }

    if (nthreads <= 0) {
        /* a thread team costs about a microsecond when its threads are
         * warm: one more thread per 2^17 multiply-adds (~2.5 us of work),
         * up to the setting, so tiny products do not pay for a team */
        int64_t most = (m * n * k) >> 17;
        nthreads = orch_threads_get();
        if (most < nthreads)
            nthreads = most < 1 ? 1 : (int)most;
    }
    if (sup == ORCH_SUP_AUTO) /* an operand stored transposed has unit row stride */
        sup = sup_rule(m, n, k, rsa == 1 && csa != 1, rsb == 1 && csb != 1, nthreads);
    if (g_trace_fn != NULL) { /* a benchmark is listening */
        orch_gemm_call call = {m, n, k, rsa, csa, rsb, csb, rsc, csc, beta, nthreads, sup};
        pthread_mutex_lock(&g_trace_lock);
        if (g_trace_fn != NULL)
            g_trace_fn(g_trace_ctx, &call);
        pthread_mutex_unlock(&g_trace_lock);
    }
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nthreads, &rntm);
    if (sup == ORCH_SUP_OFF)
        bli_rntm_disable_l3_sup(&rntm);
    float al = alpha, be = beta;
    /* BLIS 0.9 prototypes take non-const pointers; it does not write A, B. */
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &al,
                 (float *)a, (inc_t)rsa, (inc_t)csa, (float *)b, (inc_t)rsb, (inc_t)csb, &be, c,
                 (inc_t)rsc, (inc_t)csc, NULL, &rntm);
}
