/* mpi_comm.c - the Open MPI wrapper; see mpi_comm.h. */
#include "core/mpi_comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

/* every orch message; one tag keeps a pair's messages in order */
#define ORCH_MPI_TAG 7

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

int orch_mpi_launched(void)
{
    return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") ||
           (env_set("PMI_RANK") && env_set("PMI_SIZE"));
}

static int mpi_fail(int code, const char *what, orch_err *err)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int n = 0;
    MPI_Error_string(code, text, &n);
    return orch_seterr(err, ORCH_ERUNTIME, "mpi: %s: %s", what, text);
}

int orch_mpi_init(int *rank, int *size, orch_err *err)
{
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Init_thread", err);
    /* errors come back as codes, so a failed send is a message, not an abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_FUNNELED)
        return orch_seterr(err, ORCH_ERUNTIME,
                           "mpi: the library gives no MPI_THREAD_FUNNELED (threads of orch train "
                           "while the main thread talks to MPI)");
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return ORCH_OK;
}

void orch_mpi_processor_name(char *buf, size_t n)
{
    char name[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(name, &len);
    snprintf(buf, n, "%s", name);
}

int orch_mpi_send(int dest, const void *buf, size_t len, orch_err *err)
{
    if (len > INT_MAX)
        return orch_seterr(err, ORCH_EINVAL, "mpi: a message of %zu bytes is too large", len);
    int rc = MPI_Send(buf, (int)len, MPI_BYTE, dest, ORCH_MPI_TAG, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? ORCH_OK : mpi_fail(rc, "MPI_Send", err);
}

int orch_mpi_try_recv(void **data, size_t *len, int *source, orch_err *err)
{
    int flag = 0;
    MPI_Status st;
    int rc = MPI_Iprobe(MPI_ANY_SOURCE, ORCH_MPI_TAG, MPI_COMM_WORLD, &flag, &st);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Iprobe", err), -1;
    if (!flag)
        return 0;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    /* one byte more, so an empty message still has a buffer */
    unsigned char *buf = malloc((size_t)count + 1);
    if (buf == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "mpi: out of memory for a message"), -1;
    rc = MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, ORCH_MPI_TAG, MPI_COMM_WORLD,
                  MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        free(buf);
        return mpi_fail(rc, "MPI_Recv", err), -1;
    }
    *data = buf;
    *len = (size_t)count;
    *source = st.MPI_SOURCE;
    return 1;
}

void orch_mpi_abort(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
    abort(); /* MPI_Abort does not return; keep the promise if it does */
}

void orch_mpi_finalize(void)
{
    MPI_Finalize();
}
