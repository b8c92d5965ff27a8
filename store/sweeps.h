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

/* What `orch sweeps`, `orch show sweep` and `orch compare --sweep` print is
 * read by orch_store_read_* (store/sweep_read.c: SQL, no printing) and
 * printed by orch_render_* (store/render_sweep.c: no SQL), as for runs.
 * Reading works on read-only and read-write stores; the rowsets are the
 * caller's (orch_rowset_free). */

/* `orch sweeps`: every sweep, by id, with its run counts by status (id,
 * name, file, status, runs, queued, running, finished, diverged, failed,
 * skipped, interrupted, created_at, finished_at). */
int orch_store_read_sweeps(orch_store *s, orch_rowset *out, orch_err *err);
/* ORCH_FMT_TABLE: every column but file and finished_at, for people; CSV
 * and JSON: every column. ORCH_EINVAL for an unknown format. */
int orch_render_sweeps(const orch_rowset *rows, orch_format format, FILE *out, orch_err *err);

/* `orch show sweep ID`: the sweep's row (sweep: every column of sweeps)
 * and its runs by run id (runs: point, run, status, rank, host, attempts,
 * steps, final_loss, error), read in one transaction. ORCH_EINVAL "no
 * sweep 4 in PATH"; on failure *out holds nothing to free. The text prints
 * the sweep's fields, then its runs as a table (a NULL final loss of a run
 * with steps as "NaN"). */
typedef struct orch_sweep_report {
    orch_rowset sweep;
    orch_rowset runs;
} orch_sweep_report;
int orch_store_read_sweep(orch_store *s, int64_t sweep_id, orch_sweep_report *out, orch_err *err);
void orch_sweep_report_free(orch_sweep_report *r);
int orch_render_sweep_text(const orch_sweep_report *r, FILE *out, orch_err *err);

/* `orch compare --sweep ID`: the sweep's runs that differ only in their
 * seed, one row per group: group, strategy, lr, n, finished,
 * mean_final_loss, std_final_loss (sample standard deviation; NULL for
 * fewer than 2), best_seed, best_final_loss, worst_seed, worst_final_loss,
 * nan_events, diverged, failed, skipped; sorted by mean_final_loss, best
 * first (groups with no finished run last, then by their first run).
 *
 * A group is the runs whose configuration (runs.config_json) is the same
 * once $.seed, $.name, $.path, $.tags and $.config_hash are removed (and a
 * strategy.init "output_of:RUN-s<seed>" naming the run's own seed is read
 * without that suffix), so grouping does not depend on point names. Its
 * name is its first run's point without the "-s<seed>" suffix; strategy
 * and lr are its first run's. n counts every run of the group; the loss
 * figures are over its `finished` runs with a final loss (best and worst:
 * the lowest and highest, the earlier run on a tie); nan_events sums the
 * runs' NaN events. When any run of the sweep was evaluated, two columns
 * follow: mean_best_eval_accuracy and mean_final_eval_loss (over the
 * group's finished runs that have the figure), and they rank the groups
 * first: the highest mean accuracy, then the lowest mean eval loss, then as
 * above. ORCH_EINVAL "compare: no sweep 4 in PATH". CSV and JSON print
 * every value exactly; the table, reals with 6 digits. */
int orch_store_read_compare_sweep(orch_store *s, int64_t sweep_id, orch_rowset *out, orch_err *err);
int orch_render_compare_sweep(const orch_rowset *rows, orch_format format, FILE *out,
                              orch_err *err);

/* ------------------------------------------------------------- merging */

typedef struct orch_merge_counts {
    int64_t runs_added, runs_present; /* by uuid */
    int64_t sweeps_added, sweeps_present;
} orch_merge_counts;

/* `orch merge OTHER.db`: folds the store at other_path into s (opened
 * ORCH_STORE_READWRITE) in one transaction: every run whose uuid s does not
 * have, with all its rows (steps, metrics, NaN events, frozen changes,
 * statistics, artifacts with paths re-based so they still open, cache
 * uses: every table that points at runs), and sweeps (matched by name and
 * hash, so parts of one sweep from several stores end up in one) and
 * sweep_runs, ids renumbered in the order of the other store's ids. A run
 * already present (same uuid) adds nothing, so merging the same store
 * twice adds nothing.
 *
 * A point of a sweep that both stores hold goes to the merged run when
 * that one finished or diverged and the run here did neither; otherwise
 * the run here keeps it (the merged run stays in the store, outside the
 * sweep). A sweep's own row is the first store's.
 *
 * other_path is never written: it is copied (SQLite's backup, so a pending
 * WAL is included) to a temporary file beside s (PATH.merge-XXXXXX), the
 * copy is migrated to this schema version when older (so stores of any
 * version merge alike), attached, folded in and removed. Runs of a store
 * older than version 5 had no uuid: they get one made from their id and
 * creation in that store (a version 8 UUID), the same at every merge. Run
 * folders and the feature cache stay where they are: artifact paths point
 * at them.
 *
 * Refused before anything changes (orch_store_merge_check): ORCH_EINVAL
 * for a missing file, s itself (same device and inode), a file that is not
 * an orch store, or a newer schema. On any failure s is unchanged. */
int orch_store_merge(orch_store *s, const char *other_path, orch_merge_counts *counts,
                     orch_err *err);

/* The refusals of orch_store_merge, without opening the destination:
 * dest_path is the store other_path would be merged into (it may not
 * exist yet). `orch merge` checks every OTHER first, so a bad one leaves
 * the destination untouched (not even created). */
int orch_store_merge_check(const char *dest_path, const char *other_path, orch_err *err);

#endif
