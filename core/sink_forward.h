/*
 * sink_forward.h - the worker side of a sweep's records: an orch_sink that
 * encodes every record (orch_record_encode) into a RECORDS message
 * (core/sweep_msg.h) and hands the batch to a send function: MPI to rank 0
 * on a remote rank, rank 0's in-process mailbox on its local worker. The
 * coordinator decodes them and puts them to its store sink, the only
 * writer of the store.
 *
 * A batch is sent when it holds ORCH_FWD_BATCH_BYTES, when its oldest
 * record is ORCH_FWD_BATCH_MS old (checked as records arrive: the run's
 * records are its heartbeat at rank 0), on flush, and at once after
 * resume_run, a run's first NaN event, an artifact and end_run (the store
 * sink makes the NaN event and the end durable at once, and dependents
 * need the final checkpoint).
 *
 * A sweep's runs exist before they start (queued by the coordinator), so
 * a worker takes one over with resume_run; begin_run is refused.
 */
#ifndef ORCH_SINK_FORWARD_H
#define ORCH_SINK_FORWARD_H

#include <stdint.h>

#include "core/err.h"
#include "core/sink.h"
#include "core/sweep_msg.h"

#define ORCH_FWD_BATCH_BYTES (64 * 1024)
#define ORCH_FWD_BATCH_MS    1000.0

/* Sends len bytes of a message to the coordinator (copies them). */
typedef int (*orch_msg_send_fn)(void *ctx, const void *data, size_t len, orch_err *err);

typedef struct orch_fwd_sink {
    orch_msg_send_fn send;
    void *send_ctx;
    orch_msg_buf batch; /* the RECORDS message being filled; owned */
    int n_records;      /* in batch */
    double oldest_ms;   /* when batch's first record came */
    int64_t nan_run;    /* the run whose first NaN event was sent at once */
    /* test hook (ORCH_TEST_KILL_AT, core/sweep_worker.c): when run kill_run
     * records step kill_step, the batch is sent and the process SIGKILLs
     * itself, as a crashing worker would */
    int64_t kill_run, kill_step;
} orch_fwd_sink;

void orch_fwd_sink_init(orch_fwd_sink *f, orch_msg_send_fn send, void *send_ctx);

/* Frees the batch (unsent records are dropped: flush first). */
void orch_fwd_sink_free(orch_fwd_sink *f);

/* The orch_sink over f (f must outlive it). */
orch_sink orch_fwd_sink_make(orch_fwd_sink *f);

/* Sends the batch now, if it holds any record. */
int orch_fwd_sink_flush(orch_fwd_sink *f, orch_err *err);

#endif
