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

/* ------------------------------------------------------ communicators */

struct orch_comm {
    MPI_Comm comm;
    int rank, size;
};

static orch_comm world = {MPI_COMM_NULL, 0, 1};

orch_comm *orch_comm_world(void)
{
    if (world.comm == MPI_COMM_NULL) {
        world.comm = MPI_COMM_WORLD;
        MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    }
    return &world;
}

int orch_comm_rank(const orch_comm *c)
{
    return c->rank;
}

int orch_comm_size(const orch_comm *c)
{
    return c->size;
}

/* Chunks of at most 2^30 elements: MPI counts are int. */
#define CHUNK ((size_t)1 << 30)

static int allreduce(orch_comm *c, void *buf, size_t n, size_t elem, MPI_Datatype type, MPI_Op op,
                     orch_err *err)
{
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)k, type, op, c->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Allreduce", err);
    }
    return ORCH_OK;
}

int orch_comm_allreduce_sum_f32(orch_comm *c, float *buf, size_t n, orch_err *err)
{
    return allreduce(c, buf, n, sizeof *buf, MPI_FLOAT, MPI_SUM, err);
}

int orch_comm_allreduce_sum_f64(orch_comm *c, double *buf, size_t n, orch_err *err)
{
    return allreduce(c, buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM, err);
}

int orch_comm_allreduce_min_u64(orch_comm *c, unsigned long long *buf, size_t n, orch_err *err)
{
    return allreduce(c, buf, n, sizeof *buf, MPI_UNSIGNED_LONG_LONG, MPI_MIN, err);
}

int orch_comm_allreduce_max_u64(orch_comm *c, unsigned long long *buf, size_t n, orch_err *err)
{
    return allreduce(c, buf, n, sizeof *buf, MPI_UNSIGNED_LONG_LONG, MPI_MAX, err);
}

int orch_comm_bcast(orch_comm *c, void *buf, size_t len, int root, orch_err *err)
{
    for (size_t off = 0; off < len || off == 0; off += CHUNK) {
        size_t k = len - off < CHUNK ? len - off : CHUNK;
        int rc = MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, c->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Bcast", err);
        if (len == 0)
            break;
    }
    return ORCH_OK;
}

int orch_comm_gather_bytes(orch_comm *c, const void *data, size_t len, int root, void **all,
                           size_t *lens, orch_err *err)
{
    *all = NULL;
    if (len > INT_MAX)
        return orch_seterr(err, ORCH_EINVAL, "mpi: a gather of %zu bytes is too large", len);
    int mine = (int)len, *counts = NULL, *displs = NULL;
    if (c->rank == root) {
        counts = calloc((size_t)c->size, sizeof *counts);
        displs = calloc((size_t)c->size, sizeof *displs);
        if (counts == NULL || displs == NULL) {
            free(counts);
            free(displs);
            /* the others still wait in the gathers: end the job */
            return orch_seterr(err, ORCH_ENOMEM, "mpi: out of memory for a gather");
        }
    }
    int rc = MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, root, c->comm);
    if (rc != MPI_SUCCESS) {
        free(counts);
        free(displs);
        return mpi_fail(rc, "MPI_Gather", err);
    }
    unsigned char *buf = NULL;
    if (c->rank == root) {
        size_t total = 0;
        for (int r = 0; r < c->size; r++) {
            displs[r] = (int)total;
            lens[r] = (size_t)counts[r];
            total += (size_t)counts[r];
        }
        if (total > INT_MAX) {
            free(counts);
            free(displs);
            return orch_seterr(err, ORCH_EINVAL, "mpi: a gather of %zu bytes is too large", total);
        }
        buf = malloc(total + 1); /* one more: never malloc(0) */
        if (buf == NULL) {
            free(counts);
            free(displs);
            return orch_seterr(err, ORCH_ENOMEM, "mpi: out of memory for a gather");
        }
    }
    rc = MPI_Gatherv(data, mine, MPI_BYTE, buf, counts, displs, MPI_BYTE, root, c->comm);
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS) {
        free(buf);
        return mpi_fail(rc, "MPI_Gatherv", err);
    }
    *all = buf;
    return ORCH_OK;
}

int orch_comm_create_group(const int *world_ranks, int n, int tag, orch_comm **out, orch_err *err)
{
    *out = NULL;
    orch_comm *c = calloc(1, sizeof *c);
    if (c == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "mpi: out of memory for a communicator");
    MPI_Group world_group, group;
    MPI_Comm_group(MPI_COMM_WORLD, &world_group);
    int rc = MPI_Group_incl(world_group, n, world_ranks, &group);
    MPI_Group_free(&world_group);
    if (rc != MPI_SUCCESS) {
        free(c);
        return mpi_fail(rc, "MPI_Group_incl", err);
    }
    rc = MPI_Comm_create_group(MPI_COMM_WORLD, group, tag, &c->comm);
    MPI_Group_free(&group);
    if (rc != MPI_SUCCESS) {
        free(c);
        return mpi_fail(rc, "MPI_Comm_create_group", err);
    }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    *out = c;
    return ORCH_OK;
}

void orch_comm_free(orch_comm *c)
{
    if (c == NULL || c == &world)
        return;
    MPI_Comm_free(&c->comm);
    free(c);
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
