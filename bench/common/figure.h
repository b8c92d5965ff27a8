/*
 * figure.h - what every bench program prints besides its human tables: the
 * kernel choice at the top, and one machine-readable line per claimed
 * figure, which `make bench` collects to regenerate docs/performance.md
 * (scripts/gen_perf_doc.sh):
 *
 *   FIGURE<TAB>id<TAB>value<TAB>unit<TAB>target<TAB>verdict<TAB>description
 *
 * id is a stable dotted name; target ">=0.8", "<=0.5", "<1.05", ">0.5" or "-"
 * (no target); verdict "met", "MISSED" or "info" (no target).
 */
#ifndef ORCH_BENCH_FIGURE_H
#define ORCH_BENCH_FIGURE_H

/* Calls orch_blas_init (exits 1 on failure: a benchmark cannot run without
 * BLIS) and prints "<program>: BLIS <version>, sub-configuration <name>
 * (<why>)", the CPU and its features, and the OpenMP wait policy, before
 * anything else. */
void bench_begin(const char *program);

/* Prints one FIGURE line and returns its verdict ("met", "MISSED", "info").
 * description: printf-style, one line, no tabs. */
const char *bench_figure(const char *id, double value, const char *unit, const char *target,
                         const char *description, ...) __attribute__((format(printf, 5, 6)));

/* The verdict of value against target (as above) without printing. */
const char *bench_verdict(double value, const char *target);

#endif
