/*
 * figure.c - kernel choice header and FIGURE lines (see figure.h).
 */
#include "bench/common/figure.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "core/err.h"
#include "core/startup_env.h"

void bench_begin(const char *program)
{
    orch_err err;
    orch_err_clear(&err);
    if (orch_blas_init(&err) != ORCH_OK) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        exit(1);
    }
    const orch_blas_info *info = orch_blas_get_info();
    printf("%s: BLIS %s, sub-configuration %s (%s)\n", program, info->version, info->subconfig,
           info->why);
    printf("%s: CPU %s; features %s\n", program, info->cpu, info->features);
    printf("%s: OpenMP wait policy %s\n", program, orch_startup_env_describe());
    fflush(stdout);
}

const char *bench_verdict(double value, const char *target)
{
    if (target == NULL || strcmp(target, "-") == 0)
        return "info";
    int ge = strncmp(target, ">=", 2) == 0, le = strncmp(target, "<=", 2) == 0;
    const char *num = target + (ge || le ? 2 : 1);
    double bound = strtod(num, NULL);
    int ok = ge                 ? value >= bound
             : le               ? value <= bound
             : target[0] == '<' ? value < bound
             : target[0] == '>' ? value > bound
                                : 0;
    return ok ? "met" : "MISSED";
}

const char *bench_figure(const char *id, double value, const char *unit, const char *target,
                         const char *description, ...)
{
    const char *verdict = bench_verdict(value, target);
    char desc[512];
    va_list ap;
    va_start(ap, description);
    vsnprintf(desc, sizeof desc, description, ap);
    va_end(ap);
    for (char *p = desc; *p != '\0'; p++) /* the line is tab-separated */
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    printf("FIGURE\t%s\t%.4g\t%s\t%s\t%s\t%s\n", id, value, unit, target, verdict, desc);
    fflush(stdout);
    return verdict;
}
