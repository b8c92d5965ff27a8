/*
 * store.h - the run store: one SQLite file (WAL) holding every run's
 * configuration, status, per-step loss and grad_norm, NaN events and other
 * scalar metrics, per-stage statistics and checkpoint artifacts.
 * docs/store.md describes the schema and gives example SQL.
 *
 * Two ways in:
 *
 *   ORCH_STORE_READWRITE  used by `orch run` and `orch resume`: creates the
 *                         file if needed, migrates it to the current schema
 *                         version, and feeds it through the record sink
 *                         (orch_store_sink); and by `orch rm`.
 *   ORCH_STORE_READONLY   used by `orch runs`, `orch show`, `orch query`,
 *                         `orch compare`: the file must exist; it is opened
 *                         SQLITE_OPEN_READONLY and an authorizer refuses
 *                         anything but reading, so history can be explored
 *                         with SQL without risk.
 *
 * Every command that opens a store first calls orch_store_reap_path (or
 * orch_store_reap on its read-write store), which marks runs left 'running'
 * by a process that is gone as 'interrupted'.
 *
 * Every function returns an orch_status and fills err with one line on
 * failure. Output goes only to the FILE * passed in. Only store/ includes
 * sqlite3.h; callers see the opaque orch_store.
 */
#ifndef ORCH_STORE_H
#define ORCH_STORE_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/sink.h"

/* The schema version this binary writes (PRAGMA user_version). A store with
 * a newer version is refused; an older one is migrated forward on a
 * read-write open. */
#define ORCH_STORE_SCHEMA_VERSION 8

/* PRAGMA application_id of an orch store: the bytes "orch". */
#define ORCH_STORE_APPLICATION_ID 0x6f726368

typedef enum orch_store_mode { ORCH_STORE_READWRITE = 0, ORCH_STORE_READONLY = 1 } orch_store_mode;

/* Output formats of the reading functions. */
typedef enum orch_format {
    ORCH_FMT_TABLE = 0, /* aligned text table for people, then "(N rows)" */
    ORCH_FMT_CSV,       /* RFC 4180: header line, CRLF, quoted when needed */
    ORCH_FMT_JSON       /* an array of objects; numbers as numbers, NULL as null */
} orch_format;

typedef struct orch_store orch_store;

/* Opens the store at path and returns it in *out (set to NULL on failure).
 *
 * ORCH_STORE_READWRITE creates the file when missing (its directory must
 * exist), sets busy_timeout 5000 ms, journal_mode=WAL, synchronous=NORMAL,
 * foreign_keys=ON, and migrates the schema inside BEGIN IMMEDIATE. path may
 * be ":memory:" (tests).
 * ORCH_STORE_READONLY requires an existing orch store of exactly this
 * schema version and installs the read-only authorizer.
 *
 * Errors: ORCH_EINVAL for a missing store ("no store at PATH ..."), a missing
 * directory, a file that is not a database or not an orch store, or a schema
 * newer than this binary; ORCH_EDB for any other SQLite failure; ORCH_ENOMEM.
 * The caller owns *out and releases it with orch_store_close. */
int orch_store_open(const char *path, orch_store_mode mode, orch_store **out, orch_err *err);

/* Commits anything the sink still buffers (best effort: errors are dropped;
 * call the sink's flush() first to see them), finalizes every statement and
 * closes the connection. NULL-safe. */
void orch_store_close(orch_store *s);

/* orch_store_close for a command that failed before recording anything:
 * when this open created the file and no run was ever written to it, the
 * file (and its -wal/-shm, and the PATH.features and PATH.runs folders when
 * empty) is removed, so bad input leaves no empty store behind. Decided under the write lock; any
 * other store is just closed. Limit: another process that opened the new store in between and has
 * not yet written a run would keep writing to the removed file. */
void orch_store_close_unused(orch_store *s);

/* The path the store was opened with; borrowed, valid until close. */
const char *orch_store_path(const orch_store *s);

/* Run run_id's folder beside the store, PATH.runs/RUN (checkpoints), into
 * out (n bytes); -1 for a store in memory or when it does not fit. */
int orch_store_run_dir(const orch_store *s, int64_t run_id, char *out, size_t n);

/* Removes the temporary files that interrupted atomic writes left in run
 * run_id's folder ("*.tmp-XXXXXX", regular files only: a checkpoint being
 * written when its process was killed), and says so on notes (when not
 * NULL): "orch: run 7: removed 2 temporary files (1.5 GB) left by an
 * interrupted write". Only for a run that no process is writing: orch
 * calls it when it resumes or reaps the run. Returns the files removed. */
int64_t orch_store_clean_tmp(const orch_store *s, int64_t run_id, FILE *notes);

/* A path recorded in the store (artifacts.path) as a path to open from the
 * working directory: a relative one is relative to the store's directory
 * (for stores of schema version 2, which recorded them relative to where
 * orch ran, that place is used when the file is not beside the store but
 * is there). Returns 0, or -1 when it does not fit in n. */
int orch_store_resolve_path(const orch_store *s, const char *recorded, char *out, size_t n);

/* The file that holds a checkpoint's optimizer state, beside its weights
 * (core/checkpoint.h): "D/checkpoint-49.safetensors" ->
 * "D/checkpoint-49.optimizer.safetensors". `orch rm` removes it with the
 * checkpoint it goes with. Returns 0, or -1 when weights does not end in
 * ".safetensors" or the result does not fit in n. */
int orch_checkpoint_optimizer_path(const char *weights, char *out, size_t n);

/* Fills *out with the SQLite sink of a read-write store. out->ctx is s: the
 * sink is valid until orch_store_close(s) and belongs to one thread.
 *
 * Records (steps, metrics, NaN events, stage statistics, cache uses) are
 * buffered in memory and written in one transaction when 256 records are
 * pending, when the oldest pending record is 100 ms old or the last
 * commit was 100 ms ago (checked as records arrive), at the first NaN
 * event of a run and at a frozen-parameter change, on flush(), begin_run(),
 * end_run(), artifact() and resume_run(); so no write lock is held while
 * the run computes. Every such transaction also sets runs.heartbeat_at of
 * each run this sink has begun or resumed and not yet ended (an explicit
 * flush() with nothing pending still does, when the last commit is 100 ms
 * old).
 *
 * begin_run inserts the run as 'running' with pid (NULL when <= 0), host
 * and heartbeat_at, and returns its id. end_run writes the pending records
 * and the final status in one transaction. artifact flushes, then inserts
 * the artifact in its own transaction (so it never appears before the steps
 * it holds); recording the same kind at the same step again replaces it.
 * resume_run (see core/sink.h) accepts a run that is 'interrupted' or
 * 'failed', or 'running' whose process is gone (ORCH_STORE_STALE_S); it
 * refuses with ORCH_EINVAL an unknown run ("no run 42 in PATH"), a
 * finished ("run 3 is finished; nothing to resume"), diverged, queued or
 * live running one, an info->config_hash that differs from the run's, and
 * from_step < -1. Artifacts after from_step are deleted with the records
 * (their files are the caller's business).
 *
 * A write lock held by another process does not fail the run: the
 * records stay buffered (at most 65,536; then a new record waits) and are
 * retried with exponential backoff as records arrive; begin_run, end_run,
 * artifact, resume_run and flush wait for the lock. Only after the lock was
 * held ORCH_STORE_LOCK_LIMIT_S seconds (default 600; docs/store.md) do they
 * return ORCH_EDB "store: PATH: the write lock was held by another process
 * for ...", dropping the buffered records. Any other failed write rolls
 * back, discards that batch, and returns ORCH_EDB. When end_run cannot be
 * written it still marks the run failed, with the reason, in a transaction
 * of its own if it can, and returns the first error.
 * Returns ORCH_EINVAL for a read-only store, or when ORCH_STORE_LOCK_LIMIT_S
 * is not a number of seconds. */
int orch_store_sink(orch_store *s, orch_sink *out, orch_err *err);

/* Runs one SQL statement on a store opened ORCH_STORE_READONLY and prints
 * its rows to out in format. Refused with ORCH_EREFUSED ("query refused:
 * ...") and nothing printed: anything that writes, ATTACH/DETACH,
 * transactions, PRAGMAs that set or do something, and more than one
 * statement. ORCH_EINVAL for a syntax error or unknown table (SQLite's
 * message, prefixed "query: "), ORCH_EDB for a failure while stepping. */
int orch_store_query(orch_store *s, const char *sql, orch_format format, FILE *out, orch_err *err);

/* ------------------------------------------------ reading and rendering
 *
 * What `orch runs`, `orch show` and `orch compare` print is read in two
 * steps: orch_store_read_* fetch into the structs below (SQL, no printing),
 * orch_render_* print them (no SQL: store/render_text.c, text for people,
 * CSV and JSON; HTML or others can sit beside it). */

/* A value as the store holds it; the type decides how it prints. */
typedef enum orch_value_kind {
    ORCH_VALUE_NULL = 0,
    ORCH_VALUE_INT,
    ORCH_VALUE_REAL,
    ORCH_VALUE_TEXT,
    ORCH_VALUE_BLOB
} orch_value_kind;

typedef struct orch_value {
    orch_value_kind kind;
    int64_t i; /* INT */
    double r;  /* REAL */
    char *s;   /* TEXT (NUL-terminated) or BLOB bytes; malloc'd, owned by the value */
    size_t n;  /* TEXT and BLOB: bytes, without the NUL */
} orch_value;

/* Rows with named columns. Owns its names and values (orch_rowset_free). */
typedef struct orch_rowset {
    int n_cols;
    char **names;
    size_t n_rows, cap_rows;
    orch_value *cells; /* row r, column c at cells[r * n_cols + c] */
} orch_rowset;

/* Frees everything rows holds and zeroes it; NULL-safe. */
void orch_rowset_free(orch_rowset *rows);

/* Column name's index in rows, or -1. */
int orch_rowset_column(const orch_rowset *rows, const char *name);

/* How values print: reals with real_digits significant digits (0: the
 * shortest text that reads back exactly), NULL as null_text in a table. */
typedef struct orch_render_opts {
    int real_digits;
    const char *null_text;
} orch_render_opts;

/* Prints rows as a table (aligned, "(N rows)"), CSV or JSON (see
 * store/format.c); NULL opts: exact reals and "NULL". ORCH_EIO when
 * writing fails, ORCH_ENOMEM. */
int orch_render_rows(const orch_rowset *rows, orch_format format, const orch_render_opts *opts,
                     FILE *out, orch_err *err);

/* The runs, oldest first, every column of run_summary (one row each).
 * pipeline, strategy and status filter when not NULL: pipeline matches
 * runs.pipeline, its trailing path components, or the run name; an unknown
 * status is ORCH_EINVAL. *out is the caller's (orch_rowset_free). */
int orch_store_read_runs(orch_store *s, const char *pipeline, const char *strategy,
                         const char *status, orch_rowset *out, orch_err *err);

/* Prints runs read by orch_store_read_runs (the newest is next to the
 * prompt). ORCH_FMT_TABLE: id, name, strategy, status, steps, final loss,
 * max grad_norm, first NaN event ("step 0 backward head") and created_at,
 * reals with 6 significant digits and a NaN loss or grad norm as "NaN";
 * CSV and JSON give every column exactly. */
int orch_render_runs(const orch_rowset *runs, orch_format format, FILE *out, orch_err *err);

/* orch_store_read_runs, then orch_render_runs. */
int orch_store_list_runs(orch_store *s, const char *pipeline, const char *strategy,
                         const char *status, orch_format format, FILE *out, orch_err *err);

/* How many NaN events, frozen-parameter changes and class names a report
 * lists, and how many data files unless asked for all. */
#define ORCH_REPORT_EVENTS 20
#define ORCH_REPORT_FILES  10

/* Everything `orch show` says of one run, fetched in one read transaction.
 * Values keep their stored types; owned by the report (orch_run_report_free). */
typedef struct orch_run_report {
    int64_t run_id;
    /* runs: pipeline, name, strategy, status, seed, host, pid, orch_version,
     * kernels, kernels_why, cpu, threads, config_hash, data_hash, created_at,
     * started_at, heartbeat_at, finished_at, error, end_reason, uuid, and for a sweep's
     * run (else NULL) sweep_id, sweep (its name), point, rank, rank_host
     * (the host it was handed to), attempts */
    orch_rowset run;
    char *config_json;  /* the resolved configuration */
    int frozen_checked; /* $.checks.frozen: 1, 0, or -1 when it does not say */
    /* run_summary: lr, precision, steps, last_step, final_loss, best_loss,
     * max_grad_norm, nonfinite_steps, first_nonfinite_step, nan_events, tags,
     * steps_per_s, frozen_changed, last_checkpoint_step, final_eval_loss,
     * best_eval_accuracy, best_eval_step */
    orch_rowset summary;
    int64_t n_nan_events;
    orch_rowset nan_events; /* the first ORCH_REPORT_EVENTS, by step: step, phase, stage, tensor,
                             nan_count, inf_count, input_absmax, inputs_finite */
    int64_t n_frozen_changes;
    orch_rowset frozen_changes; /* the first ORCH_REPORT_EVENTS: step, parameter */
    orch_rowset checkpoints;    /* step, path, sha256 (12 digits), size ("1.5 MiB") */
    /* stage statistics: count(DISTINCT stage), count(DISTINCT step), min(step), max(step) */
    orch_rowset stats_extent;
    orch_rowset stats_top;   /* at the last stats step, the stage with the largest act_absmax:
                              step, stage, act_absmax, act_rms, grad_norm (0 or 1 row) */
    orch_rowset stats_first; /* the first stage past |x| > 1e4: stage, step (0 or 1 row) */
    /* the data it computed on (run_inputs, run_classes) */
    orch_rowset inputs_by_role; /* role (train first), files, size ("1.5 MiB") */
    int64_t n_inputs;           /* files over all roles */
    orch_rowset inputs; /* role, path, sha256 (12 digits), size: the first ORCH_REPORT_FILES, or
                           all (orch_store_read_run_files) */
    int64_t n_classes;
    orch_rowset classes; /* the first ORCH_REPORT_EVENTS: id, name */
} orch_run_report;

/* Fills *out (zeroed first) with run run_id. An unknown id is ORCH_EINVAL
 * ("no run 42 in PATH"); ORCH_EDB, ORCH_ENOMEM. On failure *out holds
 * nothing to free (freeing it is still safe). */
int orch_store_read_run(orch_store *s, int64_t run_id, orch_run_report *out, orch_err *err);

/* orch_store_read_run, with every data file in inputs when all_files
 * (`orch show RUN --files`). */
int orch_store_read_run_files(orch_store *s, int64_t run_id, int all_files, orch_run_report *out,
                              orch_err *err);

/* Frees the report and zeroes it; NULL-safe. */
void orch_run_report_free(orch_run_report *report);

/* Prints a report for people: its fields (pid and heartbeat included), its
 * summary, its NaN events (the first with its provenance), the
 * frozen-parameter check, its checkpoints, a digest of its stage
 * statistics when it has some, and its configuration as indented JSON. */
int orch_render_run_text(const orch_run_report *report, FILE *out, orch_err *err);

/* orch_store_read_run, then orch_render_run_text. */
int orch_store_show_run(orch_store *s, int64_t run_id, FILE *out, orch_err *err);

/* ----------------------------------------------------------- lifecycle */

/* A run left 'running' counts as gone when its process is: on this host
 * (runs.host equals gethostname()), when kill(pid, 0) fails with ESRCH; on
 * another host, or with no pid recorded (runs written by schema version 1),
 * when its last sign of life (heartbeat_at, else started_at, else
 * created_at) is older than this many seconds. A live run's heartbeat is
 * refreshed by every batch the sink commits. */
#define ORCH_STORE_STALE_S 600

/* Marks every run that is 'running' but whose process is gone (see
 * ORCH_STORE_STALE_S) as 'interrupted', with finished_at = now and error
 * "process PID on HOST ended without closing the run" (plus " (no heartbeat
 * for 10 minutes)" when judged by its heartbeat), and prints one line per
 * run to notes (when not NULL):
 *   orch: run 7 (surgery) was left running by pid 1234 on vm, which is gone: marked interrupted
 * It reads without a lock first and takes the write lock only when there is
 * something to mark; a run that changed meanwhile (status, pid, heartbeat)
 * is left alone. s must be open ORCH_STORE_READWRITE (ORCH_EINVAL
 * otherwise); ORCH_EDB on SQLite failures. */
int orch_store_reap(orch_store *s, FILE *notes, orch_err *err);

/* orch_store_reap for commands that only read: opens path read-write if,
 * and only if, it is an existing, writable orch store (file and directory)
 * of exactly this schema version; reaps; closes. Otherwise (no file, not
 * writable, not an orch store, an older or newer schema) it does nothing
 * and returns ORCH_OK: the command's own open reports what is wrong. It
 * never creates, migrates or deletes a file. ORCH_EDB when the store is
 * busy beyond the 5 s timeout or SQLite fails; callers that only read may
 * print that as a warning and go on. */
int orch_store_reap_path(const char *path, FILE *notes, orch_err *err);

/* One recorded checkpoint of a run. Strings malloc'd, owned by the
 * orch_resume_info that holds it. */
typedef struct orch_resume_checkpoint {
    int64_t step;
    char *path;    /* resolved with orch_store_resolve_path: open it as is */
    char *sha256;  /* as recorded */
    int64_t bytes; /* as recorded; -1 if not */
} orch_resume_checkpoint;

/* What `orch resume` needs to know of a run. Strings are malloc'd and owned
 * by the struct; orch_resume_info_free releases them. */
typedef struct orch_resume_info {
    int64_t run_id;
    char *pipeline; /* runs.pipeline, the file as given when it started */
    char *name;
    char *strategy;
    char *config_json; /* the resolved configuration the run started with */
    char *config_hash; /* NULL if none was recorded */
    char *status;      /* "interrupted", "failed", ... */
    uint64_t seed;
    int64_t steps;     /* steps recorded */
    int64_t last_step; /* highest step recorded; -1 when none */
    int64_t threads;   /* kernel threads it last ran on; 0 when not recorded */
    /* The run's checkpoints (artifacts, kind 'checkpoint'), newest first;
     * none: n_checkpoints 0 and checkpoints NULL. */
    int n_checkpoints;
    struct orch_resume_checkpoint *checkpoints;
} orch_resume_info;

/* Fills *out (zeroed first) with run run_id's configuration, status, step
 * count and checkpoints. Works on read-only and read-write stores.
 * ORCH_EINVAL "no run 42 in PATH" for an unknown run; ORCH_EDB, ORCH_ENOMEM.
 * On failure *out holds nothing to free (freeing it is still safe). */
int orch_store_resume_info(orch_store *s, int64_t run_id, orch_resume_info *out, orch_err *err);

/* Frees the strings of info and zeroes it; NULL-safe. */
void orch_resume_info_free(orch_resume_info *info);

/* ------------------------------------------------------------------ rm */

/* Deletes runs run_ids[0..n_ids) (a repeated id once) from a read-write
 * store: their rows (with every step, metric, NaN event, frozen change,
 * statistic, artifact, cache use, data file and class name, in one
 * transaction), then their
 * folders PATH.runs/RUN/ and any artifact file recorded outside them, then
 * the feature cache entries PATH.features/KEY.f32 they used and no
 * remaining run uses (run_features; see store/rm.c). Prints one line per
 * thing removed to out ("removed run 3 (lora, finished, 400 steps)",
 * "removed PATH.runs/3/"); dry_run prints the same with "would remove" and
 * changes nothing. Every run is checked before anything is removed:
 * ORCH_EINVAL for an unknown run ("rm: no run 42 in PATH") or a running one
 * whose process is alive. ORCH_EIO when rows were deleted but a file could
 * not be; ORCH_EDB, ORCH_ENOMEM. */
int orch_store_rm(orch_store *s, const int64_t *run_ids, int n_ids, int dry_run, FILE *out,
                  orch_err *err);

/* ------------------------------------------------------------- compare */

/* Reads runs to compare side by side, one row each: run, name, strategy,
 * precision, lr, seed, status, steps, final_loss, best_loss,
 * max_grad_norm, first_nan_step, first_nan_phase, first_nan_stage,
 * steps_per_s (exact values; NULL for a NaN or a missing value).
 *
 * Selection: the n_ids runs of run_ids, in that order (a repeated id once),
 * then, when pipeline or tag is given, every other run that matches all of
 * them, by id: pipeline as for orch_store_read_runs (runs.pipeline, its
 * trailing path components, or the run name), tag an element of the
 * configuration's $.tags. At least one selector is needed.
 *
 * ORCH_EINVAL: no selector ("compare: name the runs to compare, or give
 * --pipeline or --tag"), an unknown id ("compare: no run 42 in PATH"), a
 * selection that matches no run ("compare: no runs in PATH match --pipeline
 * P"). ORCH_EDB, ORCH_ENOMEM otherwise. Works on read-only and read-write
 * stores. *out is the caller's (orch_rowset_free). */
int orch_store_read_compare(orch_store *s, const int64_t *run_ids, int n_ids, const char *pipeline,
                            const char *tag, orch_rowset *out, orch_err *err);

/* Prints what orch_store_read_compare read. ORCH_FMT_TABLE: reals with 6
 * significant digits, a NaN loss or grad norm as "NaN", first_nan in one
 * cell ("0 backward head") or "-". CSV and JSON: the columns as read.
 * ORCH_EINVAL for an unknown format. */
int orch_render_compare(const orch_rowset *runs, orch_format format, FILE *out, orch_err *err);

/* orch_store_read_compare, then orch_render_compare; nothing is printed
 * when reading fails. */
int orch_store_compare(orch_store *s, const int64_t *run_ids, int n_ids, const char *pipeline,
                       const char *tag, orch_format format, FILE *out, orch_err *err);

#endif
