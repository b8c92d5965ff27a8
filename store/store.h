/*
 * store.h - the run store: one SQLite file (WAL) holding every run's
 * configuration, status, per-step loss and grad_norm, NaN events and other
 * scalar metrics. docs/store.md describes the schema and gives example SQL.
 *
 * Two ways in:
 *
 *   ORCH_STORE_READWRITE  used by `orch run`: creates the file if needed,
 *                         migrates it to the current schema version, and
 *                         feeds it through the record sink (orch_store_sink).
 *   ORCH_STORE_READONLY   used by `orch runs`, `orch show`, `orch query`: the
 *                         file must exist; it is opened SQLITE_OPEN_READONLY
 *                         and an authorizer refuses anything but reading, so
 *                         history can be explored with SQL without risk.
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
#define ORCH_STORE_SCHEMA_VERSION 1

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

/* The path the store was opened with; borrowed, valid until close. */
const char *orch_store_path(const orch_store *s);

/* Fills *out with the SQLite sink of a read-write store. out->ctx is s: the
 * sink is valid until orch_store_close(s) and belongs to one thread.
 *
 * Records are buffered in memory and written in one transaction when 256
 * records are pending, when the oldest pending record is 100 ms old or the
 * last commit was 100 ms ago (checked as records arrive), at the first NaN
 * event of a run, on flush(), on begin_run() and on end_run(); so no write
 * lock is held while the run computes. begin_run inserts the run as 'running' and returns its id;
 * end_run writes the pending records and the final status in one
 * transaction. A failed write rolls back, discards that batch, and returns
 * ORCH_EDB. Returns ORCH_EINVAL for a read-only store. */
int orch_store_sink(orch_store *s, orch_sink *out, orch_err *err);

/* Runs one SQL statement on a store opened ORCH_STORE_READONLY and prints
 * its rows to out in format. Refused with ORCH_EREFUSED ("query refused:
 * ...") and nothing printed: anything that writes, ATTACH/DETACH,
 * transactions, PRAGMAs that set or do something, and more than one
 * statement. ORCH_EINVAL for a syntax error or unknown table (SQLite's
 * message, prefixed "query: "), ORCH_EDB for a failure while stepping. */
int orch_store_query(orch_store *s, const char *sql, orch_format format, FILE *out, orch_err *err);

/* Prints the runs, oldest first (the newest is next to the prompt), one row
 * each: id, name, strategy, status, steps, final loss, max grad_norm, first
 * NaN event and created_at. pipeline, strategy and status filter when not
 * NULL: pipeline matches runs.pipeline, its trailing path components, or
 * the run name; an unknown status is ORCH_EINVAL. In ORCH_FMT_TABLE reals are
 * shown with 6 significant digits; CSV and JSON give every column of
 * run_summary exactly. */
int orch_store_list_runs(orch_store *s, const char *pipeline, const char *strategy,
                         const char *status, orch_format format, FILE *out, orch_err *err);

/* Prints one run for people: its fields, its summary (from run_summary),
 * its NaN events (the first with its provenance) and its configuration as
 * indented JSON. An unknown id is ORCH_EINVAL ("no run 42 in PATH"). */
int orch_store_show_run(orch_store *s, int64_t run_id, FILE *out, orch_err *err);

#endif
