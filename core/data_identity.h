/*
 * data_identity.h - what data a run computed on, for its record: every file
 * its data sets were read from (role, path, sha256, bytes), one hash over
 * them all, and the class names of a classifier's data.
 *
 * The data hash is the hex sha256 over the files sorted by (role name,
 * path, sha256) in byte order (what SQLite's ORDER BY role, path, sha256
 * gives on run_inputs), each file contributing its role name, path and
 * sha256 hex, every one followed by a NUL byte. Two runs of one
 * configuration on a changed file have the same config hash and different
 * data hashes; data without files (synthetic) has none.
 *
 * The run loop makes the identity before begin_run (its hash goes into
 * orch_run_info.data_hash) and sends it right after (orch_data_identity_send:
 * one input record per file, then one class record per class name).
 */
#ifndef ORCH_DATA_IDENTITY_H
#define ORCH_DATA_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "core/dataset.h"
#include "core/err.h"
#include "core/sink.h"

typedef struct orch_data_identity {
    orch_run_input *inputs; /* n_inputs, sorted as the hash takes them; owned, the
                               strings borrowed from the data sets */
    size_t n_inputs;
    char hash[65];             /* "" when there are no files */
    const orch_dataset *train; /* borrowed: its class names are sent */
} orch_data_identity;

/* The hex sha256 of inputs as described above; sorts inputs in place.
 * hex is "" when n is 0. ORCH_ENOMEM when the digest fails. */
int orch_data_hash(orch_run_input *inputs, size_t n, char hex[65], orch_err *err);

/* The identity of a run over train (may have no files) and eval (NULL
 * without an evaluation set); both must outlive *out. Free with
 * orch_data_identity_free. */
int orch_data_identity_of(const orch_dataset *train, const orch_dataset *eval,
                          orch_data_identity *out, orch_err *err);

/* The hash for orch_run_info.data_hash: NULL without files. */
const char *orch_data_identity_hash(const orch_data_identity *id);

/* Sends the inputs and the training set's class names of run_id to sink
 * (nothing for callbacks the sink leaves NULL). */
int orch_data_identity_send(const orch_data_identity *id, orch_sink *sink, int64_t run_id,
                            orch_err *err);

void orch_data_identity_free(orch_data_identity *id);

#endif
