/*
 * sweep_msg.h - the messages of a sweep between the coordinator (rank 0)
 * and its workers, as portable bytes.
 *
 * The same bytes cross MPI (remote ranks) and rank 0's in-process
 * mailboxes (its local worker), so both take one path. A message is a kind
 * byte and its fields: integers and doubles as 8 bytes little-endian,
 * strings as a 4-byte little-endian length (with the NUL) and the bytes.
 *
 *   READY    worker -> 0   the worker expanded the sweep: its status, the
 *                          sweep hash, its host, and the error if it failed
 *   ASSIGN   0 -> worker   a DAG node to compute, with everything the
 *                          worker cannot know (run id, checkpoint, paths);
 *                          a data-parallel run (parallel.data = N) goes to
 *                          N ranks at once, each ASSIGN naming the group
 *   RECORDS  worker -> 0   a batch of encoded orch_records (core/sink.h),
 *                          each a 4-byte length and its bytes
 *   DONE     worker -> 0   the node ended: how, and the run's losses
 *   EXIT     0 -> worker   no more work: return
 */
#ifndef ORCH_SWEEP_MSG_H
#define ORCH_SWEEP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/pipeline.h"
#include "core/sink.h"

typedef enum orch_msg_kind {
    ORCH_MSG_READY = 1,
    ORCH_MSG_ASSIGN,
    ORCH_MSG_RECORDS,
    ORCH_MSG_DONE,
    ORCH_MSG_EXIT
} orch_msg_kind;

typedef struct orch_msg_ready {
    int32_t status; /* ORCH_OK, or the orch_status the worker's expansion gave */
    char hash[65];  /* the sweep hash it computed */
    char host[256];
    char error[ORCH_ERR_MSG_MAX];
} orch_msg_ready;

/* The most ranks one data-parallel run of a sweep takes (its group travels
 * in every ASSIGN). */
#define ORCH_SWEEP_MAX_GROUP 256

typedef struct orch_msg_assign {
    int32_t node;                        /* index into the DAG's nodes */
    int64_t run_id;                      /* RUN: the queued run to take over; FEATURES: 0 */
    int64_t attempt;                     /* times this run has been handed out, this one included */
    char checkpoint[ORCH_PATH_MAX + 64]; /* resume from it; "" for from step 0 */
    char init_path[ORCH_PATH_MAX + 64];  /* output_of: the dependency's final checkpoint; "" */
    char run_dir[ORCH_PATH_MAX + 16];    /* where run folders go (DB.runs) */
    char feature_dir[ORCH_PATH_MAX + 16]; /* the detach feature cache (DB.features) */
    /* A data-parallel run: the world ranks that train it together, lowest
     * first (that one forwards the run's records); n_group 1 (group[0] the
     * receiver) for any other node. */
    int32_t n_group;
    int32_t group[ORCH_SWEEP_MAX_GROUP];
} orch_msg_assign;

typedef struct orch_msg_done {
    int32_t node;
    int32_t started;   /* 1: the run was taken over and ended in the sink */
    int32_t status;    /* orch_run_status: how it ended (FEATURES: finished or failed) */
    int64_t steps;     /* steps recorded; FEATURES: images in the cache */
    int64_t steps_now; /* RUN: of them, computed by this attempt (fewer: it resumed) */
    int64_t computed;  /* FEATURES: images whose forward was computed now */
    double first_loss, final_loss;
    double seconds;
    char error[ORCH_ERR_MSG_MAX];
} orch_msg_done;

/* A growing byte buffer (malloc'd data, owned). */
typedef struct orch_msg_buf {
    unsigned char *data;
    size_t len, cap;
} orch_msg_buf;

void orch_msg_buf_free(orch_msg_buf *b);

/* Each encoder resets b and writes one message into it. ORCH_ENOMEM. */
int orch_msg_encode_ready(orch_msg_buf *b, const orch_msg_ready *m, orch_err *err);
int orch_msg_encode_assign(orch_msg_buf *b, const orch_msg_assign *m, orch_err *err);
int orch_msg_encode_done(orch_msg_buf *b, const orch_msg_done *m, orch_err *err);
int orch_msg_encode_exit(orch_msg_buf *b, orch_err *err);

/* RECORDS: starts a batch in b (the kind byte), then appends records. */
int orch_msg_records_begin(orch_msg_buf *b, orch_err *err);
int orch_msg_records_add(orch_msg_buf *b, const orch_record *rec, orch_err *err);

/* The kind of a message, or -1 for an empty one. */
int orch_msg_kind_of(const unsigned char *data, size_t len);

/* Decoders: ORCH_EINVAL ("sweep message: ...") for anything malformed. */
int orch_msg_decode_ready(const unsigned char *data, size_t len, orch_msg_ready *m, orch_err *err);
int orch_msg_decode_assign(const unsigned char *data, size_t len, orch_msg_assign *m,
                           orch_err *err);
int orch_msg_decode_done(const unsigned char *data, size_t len, orch_msg_done *m, orch_err *err);

/* Walks a RECORDS message: *pos starts at 0; each call decodes the next
 * record into *rec (strings point into data) and returns 1, or 0 at the
 * end, or ORCH_EINVAL (negative) with err filled. */
int orch_msg_records_next(const unsigned char *data, size_t len, size_t *pos, orch_record *rec,
                          orch_err *err);

#endif
