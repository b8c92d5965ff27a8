/* cli_kernels.c - what `orch --version` and `orch plan` say about the
 * kernels a run would use: BLIS's version and sub-configuration (and why),
 * the CPU, and the thread count. */
#include <stdio.h>

#include "core/cli.h"
#include "kernels/kernels.h"

void orch_cli_print_kernels(FILE *out, const char *prefix)
{
    const orch_blas_info *b = orch_blas_get_info();
    fprintf(out, "%sblis %s, kernels '%s' (%s)\n", prefix, b->version, b->subconfig, b->why);
    fprintf(out, "%scpu %s: %s\n", prefix, b->cpu,
            b->features[0] ? b->features : "no vector units");
    fprintf(out, "%sthreads %d\n", prefix, orch_threads_get());
}
