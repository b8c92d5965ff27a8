/*
 * gemm_replay.c - record and replay a step's products (see gemm_replay.h).
 */
#include "bench/common/gemm_replay.h"

#include <blis.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xalloc(size_t bytes)
{
    void *p = calloc(1, bytes > 0 ? bytes : 1);
    if (p == NULL) {
        fprintf(stderr, "bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* The hook: calls are serialised by the tracer, so no lock is needed here. */
static void on_call(void *ctx, const orch_gemm_call *call)
{
    gemm_replay *r = ctx;
    if (!r->recording)
        return;
    if (r->n_calls == r->cap_calls) {
        r->cap_calls = r->cap_calls ? 2 * r->cap_calls : 1024;
        replay_call *grown = realloc(r->calls, (size_t)r->cap_calls * sizeof *grown);
        if (grown == NULL) {
            fprintf(stderr, "bench: out of memory recording products\n");
            exit(1);
        }
        r->calls = grown;
    }
    r->calls[r->n_calls].call = *call;
    r->calls[r->n_calls].team = omp_in_parallel() ? omp_get_num_threads() : 1;
    r->n_calls++;
}

void bench_replay_start(gemm_replay *r)
{
    orch_gemm_trace_set(on_call, r);
}

void bench_replay_stop(void)
{
    orch_gemm_trace_set(NULL, NULL);
}

/* Largest offset + 1 an operand addressed as x[i*rs + j*cs] reaches. */
static int64_t extent(int64_t rows, int64_t cols, int64_t rs, int64_t cs)
{
    if (rows <= 0 || cols <= 0)
        return 1;
    return (rows - 1) * (rs < 0 ? -rs : rs) + (cols - 1) * (cs < 0 ? -cs : cs) + 1;
}

void bench_replay_prepare(gemm_replay *r)
{
    free(r->unit_first);
    free(r->times);
    free(r->a);
    free(r->b);
    free(r->c);
    r->unit_first = xalloc((size_t)(r->n_calls + 1) * sizeof *r->unit_first);
    r->n_units = 0;
    int64_t na = 1, nb = 1, nc = 1;
    int max_team = 1;
    for (int i = 0; i < r->n_calls; i++) {
        const replay_call *rc = &r->calls[i];
        const orch_gemm_call *c = &rc->call;
        int joins = i > 0 && rc->team > 1 && r->calls[i - 1].team == rc->team;
        if (!joins)
            r->unit_first[r->n_units++] = i;
        int64_t ea = extent(c->m, c->k, c->rsa, c->csa), eb = extent(c->k, c->n, c->rsb, c->csb),
                ec = extent(c->m, c->n, c->rsc, c->csc);
        na = ea > na ? ea : na;
        nb = eb > nb ? eb : nb;
        nc = ec > nc ? ec : nc;
        max_team = rc->team > max_team ? rc->team : max_team;
    }
    r->unit_first[r->n_units] = r->n_calls;
    /* small values: repeated beta = 1 accumulation stays finite */
    r->a = xalloc((size_t)na * sizeof(float));
    r->b = xalloc((size_t)nb * sizeof(float));
    for (int64_t i = 0; i < na; i++)
        r->a[i] = 1e-3f * (float)(i % 7);
    for (int64_t i = 0; i < nb; i++)
        r->b[i] = 1e-3f * (float)(i % 5);
    r->c_slice = (nc + 15) / 16 * 16; /* 64-byte apart: no false sharing */
    r->c = xalloc((size_t)(r->c_slice * max_team) * sizeof(float));
    r->times = xalloc((size_t)r->n_units * 2 * REPLAY_MAX_REPS * sizeof *r->times);
    r->n_reps = 0;
}

static void raw_call(const gemm_replay *r, const orch_gemm_call *c, float *cbuf, int sup_off)
{
    if (c->m <= 0 || c->n <= 0 || c->k <= 0) /* orch_sgemm does not call BLIS for these */
        return;
    float alpha = 1.0f, beta = c->beta;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(c->nthreads, &rntm);
    if (sup_off)
        bli_rntm_disable_l3_sup(&rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)c->m, (dim_t)c->n, (dim_t)c->k,
                 &alpha, r->a, (inc_t)c->rsa, (inc_t)c->csa, r->b, (inc_t)c->rsb, (inc_t)c->csb,
                 &beta, cbuf, (inc_t)c->rsc, (inc_t)c->csc, NULL, &rntm);
}

static void run_unit(const gemm_replay *r, int u, int sup_off)
{
    int first = r->unit_first[u], end = r->unit_first[u + 1];
    int team = r->calls[first].team;
    if (team <= 1) {
        raw_call(r, &r->calls[first].call, r->c, sup_off);
        return;
    }
    /* calls a team made in parallel, replayed by a team of the same size;
     * each thread writes its own slice of c */
#pragma omp parallel for num_threads(team) schedule(static)
    for (int i = first; i < end; i++)
        raw_call(r, &r->calls[i].call, r->c + (int64_t)omp_get_thread_num() * r->c_slice, sup_off);
}

void bench_replay_run(gemm_replay *r)
{
    if (r->n_reps >= REPLAY_MAX_REPS)
        return;
    for (int sup_off = 0; sup_off <= 1; sup_off++)
        for (int u = 0; u < r->n_units; u++) {
            double t0 = now();
            run_unit(r, u, sup_off);
            r->times[((size_t)u * 2 + (size_t)sup_off) * REPLAY_MAX_REPS + (size_t)r->n_reps] =
                now() - t0;
        }
    r->n_reps++;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median_of(const double *t, int n)
{
    double s[REPLAY_MAX_REPS];
    memcpy(s, t, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

double bench_replay_seconds(const gemm_replay *r)
{
    if (r->n_reps == 0)
        return 0.0;
    double total = 0.0;
    for (int u = 0; u < r->n_units; u++) {
        double def = median_of(&r->times[(size_t)u * 2 * REPLAY_MAX_REPS], r->n_reps);
        double off = median_of(&r->times[((size_t)u * 2 + 1) * REPLAY_MAX_REPS], r->n_reps);
        total += def < off ? def : off;
    }
    return total;
}

double bench_replay_flops(const gemm_replay *r)
{
    double f = 0.0;
    for (int i = 0; i < r->n_calls; i++) {
        const orch_gemm_call *c = &r->calls[i].call;
        f += 2.0 * (double)c->m * (double)c->n * (double)c->k;
    }
    return f;
}

void bench_replay_free(gemm_replay *r)
{
    free(r->calls);
    free(r->unit_first);
    free(r->times);
    free(r->a);
    free(r->b);
    free(r->c);
    memset(r, 0, sizeof *r);
}
