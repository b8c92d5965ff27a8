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

/* Ends the whole job (every rank) with code; does not return. */
void orch_mpi_abort(int code);

/* MPI_Finalize. */
void orch_mpi_finalize(void);

#endif
