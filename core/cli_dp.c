/* cli_dp.c - how `orch run` and `orch resume` take part in a data-parallel
 * run under mpirun or srun; see cli.h. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/mpi_comm.h"
#include "core/pipeline.h"

static int env_int(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? atoi(v) : 0;
}

void orch_cli_threads_per_rank(orch_cli_globals *globals)
{
    const char *set = getenv("ORCH_THREADS"), *omp = getenv("OMP_NUM_THREADS");
    if (globals->threads > 0 || (set != NULL && set[0] != '\0') || (omp != NULL && omp[0] != '\0'))
        return;
    int local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (local <= 0)
        local = env_int("MPI_LOCALNRANKS");
    if (local <= 0)
        local = env_int("SLURM_STEP_TASKS_PER_NODE"); /* "2(x3)": its leading count */
    cpu_set_t mask;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (local <= 1 || online <= 0 || sched_getaffinity(0, sizeof mask, &mask) != 0)
        return;
    int mine = CPU_COUNT(&mask);
    int threads = mine < online ? mine : (int)online / local;
    globals->threads = threads > 0 ? (threads < 1024 ? threads : 1024) : 1;
}

int orch_cli_dp_init(orch_cli_globals *globals, orch_cli_dp *dp, orch_err *err)
{
    memset(dp, 0, sizeof *dp);
    dp->size = 1;
    dp->mpi = orch_mpi_launched();
    if (dp->mpi)
        orch_cli_threads_per_rank(globals);
    int rc = dp->mpi ? orch_mpi_init(&dp->rank, &dp->size, err) : ORCH_OK;
    if (rc != ORCH_OK)
        dp->mpi = 0; /* nothing to finalize */
    return rc;
}

int orch_cli_dp_check(orch_cli_dp *dp, orch_pipeline *p, int ranks_opt, orch_err *err)
{
    int data = p->parallel.data > 0 ? p->parallel.data : 1;
    int want = ranks_opt > 0 ? ranks_opt : data;
    char given[64];
    if (ranks_opt > 0)
        snprintf(given, sizeof given, "--ranks is %d", ranks_opt);
    else
        snprintf(given, sizeof given, "parallel.data is %d", data);
    if (!dp->mpi && want > 1)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: %s but orch was not started by mpirun or srun; run mpirun -np %d "
                           "orch run %s (or srun -n %d)",
                           p->path, given, want, p->path, want);
    if (dp->mpi && want != dp->size) {
        if (want == 1)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: %s but mpirun started %d ranks; one run over %d ranks needs "
                               "parallel = { data = %d } or --ranks %d (many runs: orch sweep)",
                               p->path, given, dp->size, dp->size, dp->size, dp->size);
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: %s but mpirun started %d ranks; give --ranks %d or run mpirun -np "
                           "%d",
                           p->path, given, dp->size, dp->size, want);
    }
    p->parallel.data = want; /* recorded with the run */
    if (dp->size > 1)
        dp->comm = orch_comm_world();
    return ORCH_OK;
}

int orch_cli_dp_resume(orch_cli_dp *dp, orch_pipeline *p)
{
    p->parallel.data = dp->size;
    if (dp->size > 1)
        dp->comm = orch_comm_world();
    return ORCH_OK;
}

int orch_cli_dp_end(orch_cli_dp *dp, int rc, int run_failed, const orch_err *err)
{
    if (!dp->mpi)
        return rc;
    if (dp->rank == 0 && rc != ORCH_OK && run_failed && dp->comm != NULL) {
        /* the others may wait in a collective this rank will not reach:
         * the run is recorded failed, end the job */
        fflush(stdout);
        orch_mpi_abort(orch_exit_code(rc));
    }
    if (dp->rank > 0 && rc != ORCH_OK) {
        /* A rank whose run failed on its own leaves without MPI_Finalize,
         * which makes the launcher end the job (rank 0 may wait for it in
         * a collective). */
        fflush(stdout);
        if (run_failed) {
            fprintf(stderr, "orch: rank %d: %s\n", dp->rank,
                    err->msg[0] ? err->msg : orch_status_name(rc));
            exit(orch_exit_code(rc));
        }
        /* Otherwise every rank came to the same end (bad input, a diverged
         * or interrupted run): rank 0 reports it, once, and its exit code
         * is the job's. A rank > 0 ending non-zero first would make mpirun
         * kill rank 0 before it said why. */
        orch_mpi_finalize();
        return ORCH_OK;
    }
    orch_mpi_finalize();
    return rc;
}
