/*
 * sweep_worker.h - a worker of a sweep: takes ASSIGN messages from the
 * coordinator, computes the node (trains a run, or fills the feature cache
 * for a group of detach runs), streams the run's records back through the
 * forwarding sink (core/sink_forward.h) and ends each node with DONE.
 *
 * The same loop serves a remote rank (messages over MPI) and rank 0's
 * local worker thread (its in-process mailboxes): a port says how to send
 * to and wait for the coordinator. Every rank expanded the sweep itself;
 * an assignment names a node of that DAG and carries only what a rank
 * cannot know (the run id, its checkpoint, where files go).
 *
 * Test hook: ORCH_TEST_KILL_AT="RUN-NAME:STEP" makes the worker that
 * trains that run SIGKILL itself right after recording that step (every
 * attempt), as a crashing worker would; tests/test_cli_sweep_faults.c uses
 * it. Nothing else reads it.
 */
#ifndef ORCH_SWEEP_WORKER_H
#define ORCH_SWEEP_WORKER_H

#include <stddef.h>

#include "core/err.h"
#include "core/sink_forward.h"
#include "core/sweep.h"
#include "core/sweep_dag.h"
#include "core/sweep_msg.h"

/* How a worker talks to its coordinator. */
typedef struct orch_sweep_port {
    orch_msg_send_fn send; /* a message to the coordinator */
    /* The next message from the coordinator (malloc'd into *data, the
     * caller frees it), waiting as long as it takes. */
    int (*recv)(void *ctx, void **data, size_t *len, orch_err *err);
    void *ctx;
} orch_sweep_port;

/* A SIGINT or SIGTERM reached this process: the run training stops after
 * its step (orch_train_stop_by_signal) and no node starts any more.
 * Async-signal-safe: for the handlers `orch sweep` installs. */
void orch_sweep_request_stop(int sig);

/* 1 once orch_sweep_request_stop was called. */
int orch_sweep_stop_requested(void);

/* Computes the node a names and fills *done (never fails: a failure is a
 * DONE with status failed and the error). Records go through fwd. */
void orch_sweep_work(const orch_sweep *sw, const orch_dag *dag, const orch_msg_assign *a,
                     orch_fwd_sink *fwd, orch_msg_done *done);

/* The worker loop: ASSIGN -> orch_sweep_work -> DONE, until EXIT. Returns
 * ORCH_OK at EXIT, or the error of a message that could not be sent or
 * read. */
int orch_sweep_worker_loop(const orch_sweep *sw, const orch_dag *dag, const orch_sweep_port *port,
                           orch_err *err);

#endif
