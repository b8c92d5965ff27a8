/*
 * sweeps.h - sweeps in the store: recording them (the coordinator, rank 0,
 * is the only process that writes), reading and comparing them, and
 * folding other stores in.
 *
 * Tables (schema version 5, docs/store.md): `sweeps` (id, name, file, hash,
 * status, coordinator host and pid, created/finished) and `sweep_runs`
 * (sweep, run, point, rank, host, attempts). A sweep's runs are ordinary
 * `runs` rows created `queued` with their configuration; a worker starts
 * one with the sink's resume_run (from_step -1), so every record of a
 * sweep's run carries an id rank 0 assigned. runs.status gains `skipped`
 * (a dependency failed); every run has a `uuid`, kept by orch merge.
 *
 * Every function returns an orch_status and fills err with one line.
 * Writing functions need a store opened ORCH_STORE_READWRITE and commit
 * before they return (each is durable on its own).
 */
#ifndef ORCH_STORE_SWEEPS_H
#define ORCH_STORE_SWEEPS_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/sink.h"
#include "store/store.h"

/* -------------------------------------------------- recording (rank 0) */

/* Opens the sweep (name, hash) for coordination: creates it, or continues
 * the one recorded earlier with the same name and hash. Refused with
 * ORCH_EREFUSED while another live coordinator holds it ("sweep
 * strategies is being run by pid 1234 on node3; ..."; alive: same host and
 * kill(pid, 0) works, or another host and a heartbeat younger than
 * ORCH_STORE_STALE_S). Taking it over marks the sweep's runs left
 * `running` as `interrupted` (their workers died with the last job).
 * Opened again by the coordinator that holds it (same host and pid), it
 * changes nothing. *sweep_id receives its id. */
int orch_store_sweep_open(orch_store *s, const char *name, const char *file, const char *hash,
                          const char *host, int64_t pid, int64_t *sweep_id, orch_err *err);

/* A run of the sweep as the store holds it. */
typedef struct orch_sweep_run_state {
    int64_t run_id;
    orch_run_status status; /* queued, running, finished, diverged, failed, interrupted, skipped */
    int64_t attempts;       /* times it was handed to a worker */
    int64_t last_step;      /* highest recorded step, -1 for none */
    char checkpoint[512];   /* its newest checkpoint, resolved to open as is; "" for none */
} orch_sweep_run_state;

/* The run of point `point` of the sweep: the existing one when the sweep
 * already has that point with the same config_hash, else a new `queued`
 * run row (info gives pipeline, name, strategy, config, hash, seed; its
 * host and pid are not recorded until it starts) linked by sweep_runs.
 * Fills *state. */
int orch_store_sweep_queue(orch_store *s, int64_t sweep_id, const char *point,
                           const orch_run_info *info, orch_sweep_run_state *state, orch_err *err);

/* The run is handed to rank `rank` on host: attempts + 1, rank and host
 * recorded, committed before the work is sent. *attempts receives the new
 * count. */
int orch_store_sweep_handout(orch_store *s, int64_t run_id, int rank, const char *host,
                             int64_t *attempts, orch_err *err);

/* Ends a run that will not run (queued or interrupted): `skipped` (a
 * dependency failed) or `failed` (quarantined: it killed its worker
 * twice), with the reason in runs.error and finished_at now. */
int orch_store_sweep_settle_run(orch_store *s, int64_t run_id, orch_run_status status,
                                const char *reason, orch_err *err);

/* Refreshes the sweep's heartbeat (the coordinator is alive). */
int orch_store_sweep_heartbeat(orch_store *s, int64_t sweep_id, orch_err *err);

/* Closes the sweep: status `finished` when every run is finished,
 * diverged, failed or skipped; otherwise `interrupted`; finished_at now. */
int orch_store_sweep_close(orch_store *s, int64_t sweep_id, orch_err *err);

/* ------------------------------------------------------------ reading */

/* `orch sweeps`: every sweep with its run counts by status (id, name,
 * file, status, runs, queued, running, finished, diverged, failed,
 * skipped, interrupted, created_at, finished_at). */
int orch_store_read_sweeps(orch_store *s, orch_rowset *out, orch_err *err);

/* `orch show sweep ID`: the sweep's row (sweep) and its runs (runs: point,
 * run, status, rank, host, attempts, steps, final_loss, error). ORCH_EINVAL
 * "no sweep 4 in PATH". */
typedef struct orch_sweep_report {
    orch_rowset sweep;
    orch_rowset runs;
} orch_sweep_report;
int orch_store_read_sweep(orch_store *s, int64_t sweep_id, orch_sweep_report *out, orch_err *err);
void orch_sweep_report_free(orch_sweep_report *r);
int orch_render_sweep_text(const orch_sweep_report *r, FILE *out, orch_err *err);

/* `orch compare --sweep ID`: the sweep's runs grouped by configuration
 * without the seed (the point's name without its seed suffix), one row per
 * group: group, strategy, lr, n, finished, mean_final_loss,
 * std_final_loss (sample standard deviation; NULL for n < 2), best_seed,
 * best_final_loss, worst_seed, worst_final_loss, nan_events, diverged,
 * failed, skipped; sorted by mean_final_loss, best first (groups with no
 * finished run last). */
int orch_store_read_compare_sweep(orch_store *s, int64_t sweep_id, orch_rowset *out,
                                  orch_err *err);
int orch_render_compare_sweep(const orch_rowset *rows, orch_format format, FILE *out,
                              orch_err *err);

/* ------------------------------------------------------------- merging */

typedef struct orch_merge_counts {
    int64_t runs_added, runs_present; /* by uuid */
    int64_t sweeps_added, sweeps_present;
} orch_merge_counts;

/* `orch merge OTHER.db`: folds the store at other_path into s in one
 * transaction: every run whose uuid s does not have, with all its rows
 * (steps, metrics, NaN events, frozen changes, statistics, artifacts with
 * paths re-based so they still open, cache uses), and sweeps and
 * sweep_runs, ids renumbered. A run already present (same uuid) adds
 * nothing, so merging the same store twice adds nothing. other_path is
 * opened read-only and migrated in memory if older; ORCH_EINVAL for a file
 * that is not an orch store, or a newer schema. */
int orch_store_merge(orch_store *s, const char *other_path, orch_merge_counts *counts,
                     orch_err *err);

#endif
