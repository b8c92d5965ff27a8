/*
 * bundle.h - sharing runs: a store's runs as one archive, and back
 * (docs/bundles.md). The one door to store/bundle_*.c; they read and
 * write archives through store/archive_io.h.
 *
 *   orch_store_record_sources  the pipeline files of a run, as run (the
 *                              source_file record; tables source_files and
 *                              run_sources)
 *   orch_bundle_export         runs -> one .tar/.tar.gz/.tar.zst/.tar.xz/.zip,
 *                              byte-identical for the same runs
 *   orch_bundle_import         a bundle's runs -> this store, one transaction,
 *                              keyed by run UUID (store/merge.c's fold)
 *   orch_bundle_read_runs      what `orch replay FILE` needs of a bundle
 *
 * Reading a bundle never writes outside a private staging folder and
 * refuses, with one line, every member that is not a regular file with a
 * plain relative name listed in MANIFEST.json with its size and sha256,
 * and archives past the limits below.
 */
#ifndef ORCH_STORE_BUNDLE_H
#define ORCH_STORE_BUNDLE_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/sink.h"
#include "store/store.h"

/* MANIFEST.json's "format": the layout this orch writes and reads. */
#define ORCH_BUNDLE_FORMAT 1

/* The fixed time (1980-01-01T00:00:00Z, the earliest a zip can hold),
 * owner and group every member is written with, so the same runs give the
 * same bytes. */
#define ORCH_BUNDLE_MTIME 315532800

/* Records files[0..n) as run run_id's pipeline files (ord = index),
 * replacing what the run had, in one transaction; a finished or diverged
 * run keeps the files it ran (a continued sweep queues it again). Content is stored once
 * per sha256 (source_files). ORCH_EINVAL for a bad sha256 or a text that
 * does not hash to it; ORCH_EDB. */
int orch_store_record_sources(orch_store *s, int64_t run_id, const orch_source_file *files, int n,
                              orch_err *err);

/* A run's recorded pipeline files, read back (orch run --from RUN records
 * them again for the new run). Everything is malloc'd and owned here. */
typedef struct orch_stored_sources {
    int n;
    orch_source_file *files;
} orch_stored_sources;

/* Reads run run_id's pipeline files, in load order, into *out (zeroed
 * first; none: n 0). ORCH_EDB, ORCH_ENOMEM. */
int orch_store_read_sources(orch_store *s, int64_t run_id, orch_stored_sources *out, orch_err *err);

/* Frees what orch_store_read_sources filled; zeroes *out; NULL-safe. */
void orch_stored_sources_free(orch_stored_sources *out);

/* The sink callback of the SQLite sink for ORCH_REC_SOURCE_FILE: ctx is the
 * orch_store. Appends the file (ord = the run's next) in its own transaction. */
int orch_store_sink_source_file(void *ctx, int64_t run_id, const orch_source_file *rec,
                                orch_err *err);

/* What reading a bundle accepts. */
typedef struct orch_bundle_limits {
    int64_t max_member_bytes; /* one member, expanded */
    int64_t max_members;      /* members in the archive */
    int64_t max_total_bytes;  /* all members, expanded */
    double max_ratio;         /* expanded / compressed bytes read so far ... */
    int64_t ratio_floor;      /* ... checked once this many bytes were expanded */
} orch_bundle_limits;

/* The defaults (docs/bundles.md "Limits"): 64 GiB a member, 100,000
 * members, 256 GiB in all, a ratio of 200 past 64 MiB expanded. */
void orch_bundle_default_limits(orch_bundle_limits *limits);

/* The runs a bundle of `orch export` holds: the n_ids runs of run_ids (in
 * that order, a repeated one once), then those of sweep sweep_id (> 0) and
 * those tagged tag (not NULL), by id. *out is malloc'd (the caller frees
 * it). ORCH_EINVAL for an unknown run or sweep, or a selection of no run. */
int orch_bundle_select(orch_store *s, const int64_t *run_ids, int n_ids, int64_t sweep_id,
                       const char *tag, int64_t **out, int *n_out, orch_err *err);

/* Writes runs run_ids[0..n) of s into one bundle at out_path, its format
 * from the suffix (.tar, .tar.gz, .tar.zst, .tar.xz, .zip): written to
 * out_path.tmp-XXXXXX and renamed, so a failed export leaves nothing.
 * Every artifact file must still match its recorded size and sha256.
 * ORCH_EINVAL for an unknown suffix or a missing or changed artifact;
 * ORCH_EIO, ORCH_EDB, ORCH_ENOMEM. */
int orch_bundle_export(orch_store *s, const int64_t *run_ids, int n, const char *out_path,
                       orch_err *err);

/* What an import did. */
typedef struct orch_bundle_counts {
    int64_t runs_added;   /* runs new to the store */
    int64_t runs_present; /* runs whose uuid the store had: left as they were */
    int64_t files_placed; /* artifact files moved into the store's run folders */
} orch_bundle_counts;

/* Adds the runs of the bundle at path to s (read-write) in one
 * transaction, keyed by run UUID; their artifacts land in PATH.runs/RUN/.
 * limits NULL: the defaults. Anything wrong with the bundle (see the top
 * of this file; a truncated or corrupt archive, an unknown format, a
 * malformed CSV) is ORCH_EINVAL with one line and nothing changed. */
int orch_bundle_import(orch_store *s, const char *path, const orch_bundle_limits *limits,
                       orch_bundle_counts *counts, orch_err *err);

/* One run's configuration and recorded losses, for `orch replay`. */
typedef struct orch_replay_run {
    char uuid[40];
    char *name;
    char *config_json; /* the resolved configuration (runs.config_json) */
    int64_t threads;   /* kernel threads it ran on; 0 when not recorded */
    int64_t n_steps;
    int64_t *steps; /* step numbers, ascending */
    double *losses; /* NaN where the store holds NULL */
} orch_replay_run;

typedef struct orch_replay_set {
    int n;
    orch_replay_run *runs;
} orch_replay_set;

/* Reads every run of the bundle at path (checked as orch_bundle_import
 * checks it) into *out. ORCH_EINVAL as for import. */
int orch_bundle_read_runs(const char *path, const orch_bundle_limits *limits, orch_replay_set *out,
                          orch_err *err);

/* Reads run run_id of s into *out (one run). ORCH_EINVAL for an unknown run. */
int orch_store_read_replay(orch_store *s, int64_t run_id, orch_replay_set *out, orch_err *err);

/* Frees what a read filled, zeroes it; NULL-safe. */
void orch_replay_set_free(orch_replay_set *set);

#endif
