/*
 * sweep_coord.h - the coordinator of a sweep (rank 0's main thread): the
 * only code that writes the store and, with MPI, the only thread that
 * calls it.
 *
 * It records the sweep and queues its runs (store/sweeps.h), sets the
 * scheduler (core/sweep_dag.h) from what the store already holds (a rerun
 * skips finished and diverged runs, quarantines runs that killed their
 * worker twice, resumes interrupted ones from their newest checkpoint that
 * verifies),
 * hands ready nodes to free ranks, longest first, records every record
 * the workers stream (through its store sink: batched transactions), every
 * skip, and closes the sweep. Completeness is judged from the store.
 *
 * Ranks: rank 0 is the coordinator and also a worker (a thread of its own,
 * reached through two in-process mailboxes); ranks 1..size-1 are reached
 * over MPI (core/mpi_comm.h). Without MPI, size is 1.
 */
#ifndef ORCH_SWEEP_COORD_H
#define ORCH_SWEEP_COORD_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/sink.h"
#include "core/mailbox.h"
#include "core/sweep.h"
#include "core/sweep_dag.h"

typedef struct orch_sweep_coord_options {
    const char *db;         /* the store */
    int size;               /* ranks (1 without MPI) */
    int mpi;                /* 1: ranks 1..size-1 are reached over MPI */
    const char *host;       /* this host's name */
    char (*hosts)[256];     /* size of them: each rank's host (from READY) */
    orch_mailbox *to_local; /* rank 0's worker reads its assignments here */
    orch_mailbox *inbox;    /* and sends its records and DONE here */
    FILE *progress;         /* one line per node's end (stderr), or NULL (--quiet) */
    FILE *out;              /* the summary (stdout) */
    /* the sweep's pipeline files as read (the sweep file and what it
     * required), recorded for every run it queues (docs/bundles.md);
     * borrowed; NULL/0: none */
    const orch_source_file *sources;
    int n_sources;
} orch_sweep_coord_options;

/* Counts of the sweep's runs by status, from the store. */
typedef struct orch_sweep_counts {
    int64_t id;
    int runs, finished, diverged, failed, skipped, interrupted, queued;
} orch_sweep_counts;

/* Runs the sweep to its end (or a stop) and tells every worker to exit.
 * ORCH_OK when every run finished or diverged; ORCH_ERUNTIME naming what
 * is missing otherwise (failed, skipped, interrupted or queued runs);
 * ORCH_EREFUSED when a live coordinator holds the sweep; store errors. */
int orch_sweep_coordinate(const orch_sweep *sw, const orch_dag *dag,
                          const orch_sweep_coord_options *opt, orch_sweep_counts *counts,
                          orch_err *err);

/* Sends EXIT to every rank (the local worker through opt->to_local). */
void orch_sweep_send_exit(const orch_sweep_coord_options *opt);

/* With MPI: waits for READY from ranks 1..size-1, fills opt->hosts, and
 * checks that each expanded the sweep to hash (rank 0's own). ORCH_EINVAL
 * naming the first rank that failed or disagrees (ranks that disagree on
 * the sweep must never write into its store). */
int orch_sweep_gather_ready(const orch_sweep_coord_options *opt, const char *hash, orch_err *err);

#endif
