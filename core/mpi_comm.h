/*
 * mpi_comm.h - the one door to Open MPI (the only file that includes
 * <mpi.h> is core/mpi_comm.c).
 *
 * A thin wrapper: start (MPI_THREAD_FUNNELED: only the thread that called
 * orch_mpi_init calls MPI), rank, size and processor name, sending a byte
 * message, a non-blocking probe and receive of a message of any size,
 * abort, finalize. Every message of orch travels on one tag between a pair
 * of ranks, so MPI's non-overtaking rule keeps them in the order they were
 * sent (records before the end of their run).
 *
 * Whether to use MPI at all is decided before MPI_Init, from the
 * environment of a launcher (orch_mpi_launched): a process started by hand
 * never calls MPI (a singleton MPI_Init is slow and forks a daemon).
 */
#ifndef ORCH_MPI_COMM_H
#define ORCH_MPI_COMM_H

#include <stddef.h>

#include "core/err.h"

/* 1 when mpirun (OMPI_COMM_WORLD_SIZE, PMIX_RANK) or srun (PMI_RANK and
 * PMI_SIZE, or PMIX_RANK) started this process, so MPI must be used. */
int orch_mpi_launched(void);

/* MPI_Init_thread(MPI_THREAD_FUNNELED); *rank and *size of MPI_COMM_WORLD.
 * ORCH_ERUNTIME when MPI cannot start or gives less than FUNNELED. */
int orch_mpi_init(int *rank, int *size, orch_err *err);

/* The processor name (MPI_Get_processor_name) into buf[n]. */
void orch_mpi_processor_name(char *buf, size_t n);

/* Sends len bytes to rank dest (blocking until the buffer may be reused). */
int orch_mpi_send(int dest, const void *buf, size_t len, orch_err *err);

/* A message waiting from any rank: 1 with *data (malloc'd, the caller
 * frees it), *len and *source filled; 0 when none is waiting; -1 with err
 * filled on an MPI error. Never blocks. */
int orch_mpi_try_recv(void **data, size_t *len, int *source, orch_err *err);

/* ------------------------------------------------------ communicators */

/* The ranks that train one run together (data parallelism): the world for
 * `orch run` under mpirun, a sub-group inside a sweep. Collectives are
 * called by every rank of the communicator in the same order; each returns
 * ORCH_OK or ORCH_ERUNTIME ("mpi: MPI_Allreduce: ..."). */
typedef struct orch_comm orch_comm;

/* MPI_COMM_WORLD, after orch_mpi_init; owned by mpi_comm.c (never freed). */
orch_comm *orch_comm_world(void);

int orch_comm_rank(const orch_comm *c);
int orch_comm_size(const orch_comm *c);

/* Sums buf[0..n) over the ranks, in place, on every rank. n may exceed
 * INT_MAX (sent in chunks). For a fixed size the result is the same on
 * every rank and in every run (Open MPI's reduction order is fixed). */
int orch_comm_allreduce_sum_f32(orch_comm *c, float *buf, size_t n, orch_err *err);
int orch_comm_allreduce_sum_f64(orch_comm *c, double *buf, size_t n, orch_err *err);

/* Smallest and largest over the ranks, in place. */
int orch_comm_allreduce_min_u64(orch_comm *c, unsigned long long *buf, size_t n, orch_err *err);
int orch_comm_allreduce_max_u64(orch_comm *c, unsigned long long *buf, size_t n, orch_err *err);

/* Root's len bytes of buf to every rank. */
int orch_comm_bcast(orch_comm *c, void *buf, size_t len, int root, orch_err *err);

/* Every rank's len bytes of data to root: there *all is their
 * concatenation in rank order (malloc'd, the caller frees it; NULL when
 * every rank sent 0 bytes) and lens[size] each rank's count; other ranks
 * get *all NULL and may pass lens NULL. Each len at most INT_MAX. */
int orch_comm_gather_bytes(orch_comm *c, const void *data, size_t len, int root, void **all,
                           size_t *lens, orch_err *err);

/* A communicator over world_ranks[0..n) (ascending; their rank in it is
 * their index), made by those ranks only (MPI_Comm_create_group with tag).
 * *out is freed with orch_comm_free. */
int orch_comm_create_group(const int *world_ranks, int n, int tag, orch_comm **out, orch_err *err);

/* Frees a communicator of orch_comm_create_group; the world is ignored. */
void orch_comm_free(orch_comm *c);

/* Ends the whole job (every rank) with code; does not return. */
void orch_mpi_abort(int code);

/* MPI_Finalize. */
void orch_mpi_finalize(void);

#endif
