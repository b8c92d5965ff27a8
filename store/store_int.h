/*
 * store_int.h - what the files of store/ share; not for use outside store/
 * (tests may include it to reach the connection).
 *
 *   store.c   open, identify, migrate, close, SQLite error mapping
 *   schema.c  the migrations (SQL text)
 *   sink.c    the record sink: buffered records, batched transactions
 *   guard.c   the read-only authorizer
 *   query.c   orch query: one guarded statement
 *   rows.c    reading a statement's rows into values (orch_rowset), or
 *             streaming them to the writer of format.c
 *   format.c  printing rows of values as a table, CSV or JSON
 *   report.c  reading what orch runs and orch show print
 *   render_text.c  printing runs, a run and a comparison for people
 *   reap.c    marking runs whose process is gone as interrupted
 *   resume.c  what orch resume reads of a run
 *   compare.c reading what orch compare prints
 *   sweep_read.c  reading what orch sweeps, show sweep, compare --sweep print
 *   render_sweep.c  printing them
 *   merge.c   orch merge: folding another store in
 *   rm.c      orch rm: deleting runs, their folders and the unused cache
 *   paths.c   the folders beside the store, store-relative recorded paths
 *   sweep_record.c  recording sweeps (store/sweeps.h): the coordinator's side
 * (safetensors.c, npy.c, npy_dataset.c and feature_cache.c are file formats
 * with doors of their own.)
 */
#ifndef ORCH_STORE_INT_H
#define ORCH_STORE_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "store/store.h"

/* --------------------------------------------------------------- sink */

/* One buffered record: a copy of what the sink was given, its strings in
 * the batch's string pool (offsets: the pool moves as it grows; SIZE_MAX
 * stands for NULL). */
typedef enum store_rec_kind {
    STORE_REC_STEP = 0,
    STORE_REC_METRIC,
    STORE_REC_NAN,
    STORE_REC_STAGE,
    STORE_REC_FROZEN,
    STORE_REC_CACHE_USE,
    STORE_REC_INPUT,
    STORE_REC_CLASS,
    STORE_REC__COUNT
} store_rec_kind;

typedef struct store_rec {
    store_rec_kind kind;
    int64_t run_id;
    int64_t step;
    union {
        struct {
            double loss, grad_norm, lr, wall_ms;
        } step;
        struct {
            size_t name;
            double value;
        } metric;
        struct {
            orch_phase phase;
            size_t stage, tensor;
            int64_t nan_count, inf_count;
            double input_absmax;
            int inputs_finite;
            int first;    /* the run's first event: its provenance is written */
            int64_t rank; /* data parallelism: where it was found; host SIZE_MAX: none */
            size_t host;
        } nan;
        struct {
            size_t stage;
            double act_absmax, act_rms, grad_norm;
        } stage;
        struct {
            size_t parameter;
        } frozen;
        struct {
            size_t key;
        } cache_use;
        struct {
            orch_data_role role;
            size_t path, sha256;
            int64_t bytes;
        } input;
        struct {
            int64_t id;
            size_t name;
        } run_class;
    } as;
} store_rec;

typedef struct store_sink {
    sqlite3_stmt *insert_run, *insert_step, *insert_metric, *insert_nan, *end_run, *has_nan, *begin,
        *commit, *rollback, *insert_stage, *insert_artifact, *heartbeat, *resume_get, *resume_set,
        *resume_del[6], *insert_frozen, *insert_cache_use, *insert_input, *insert_class,
        *resume_clear[2];
    int64_t *live; /* runs begun or resumed and not ended: their heartbeat is kept */
    size_t n_live, cap_live;
    store_rec *recs;
    size_t n_recs, cap_recs;
    char *pool;
    size_t pool_len, pool_cap;
    double oldest_ms;      /* clock time of the oldest pending record */
    double last_commit_ms; /* and of the last commit */
    int64_t last_nan_run;  /* run whose first NaN event was already seen, or 0 */

    /* Another process holding the write lock (SQLITE_BUSY/LOCKED): the
     * records stay buffered and the sink retries with backoff; see
     * store_sink_flush and docs/store.md. */
    int locked;             /* the last attempt found the lock held */
    double locked_since_ms; /* clock time of the first failed attempt */
    double retry_at_ms;     /* no new attempt as records arrive before this */
    double backoff_ms;      /* the next wait, doubled up to STORE_LOCK_BACKOFF_MAX_MS */
    int gave_up;            /* the limit passed: the next durable write waits only
                               STORE_LOCK_LAST_TRY_MS */
    double lock_limit_ms;   /* ORCH_STORE_LOCK_LIMIT_S, else STORE_LOCK_LIMIT_S */
    size_t max_recs;        /* pending records past which a new one blocks-and-retries */
    int last_rc;            /* SQLite result of the last failed statement */

    /* The clock: CLOCK_MONOTONIC and nanosleep, unless a test replaces them
     * to hold and release a lock at chosen points without timing. */
    double (*now_ms)(void *ctx);
    void (*sleep_ms)(void *ctx, double ms);
    void *clock_ctx;
} store_sink;

/* Records pending before a batch is written, and the age that forces one. */
#define STORE_BATCH_RECORDS 256
#define STORE_BATCH_MS      100.0

/* The connection's busy timeout (SQLite waits this long for a lock on its
 * own, outside the sink's transactions). */
#define STORE_BUSY_TIMEOUT_MS 5000

/* How long the sink keeps a live run's records while another process holds
 * the write lock before the run fails: ORCH_STORE_LOCK_LIMIT_S (seconds, a
 * decimal number >= 0) overrides it. */
#define STORE_LOCK_LIMIT_S        600.0
#define STORE_LOCK_LIMIT_ENV      "ORCH_STORE_LOCK_LIMIT_S"
#define STORE_LOCK_BACKOFF_MIN_MS 10.0
#define STORE_LOCK_BACKOFF_MAX_MS 2000.0
/* After the limit passed once, what a durable write (end_run, close) still
 * waits: the run can then be marked failed once the lock is free. */
#define STORE_LOCK_LAST_TRY_MS 5000.0
/* Pending records at which a new record waits for the lock instead of
 * growing the buffer (memory stays bounded: about 64 bytes a record plus
 * its strings). */
#define STORE_MAX_PENDING_RECORDS 65536

/* How a flush meets a write lock held by another process. */
typedef enum store_flush_mode {
    STORE_FLUSH_TRY = 0, /* one attempt; when locked, keep the records, back off, return OK */
    STORE_FLUSH_WAIT,    /* retry with backoff until the lock limit, then fail */
    STORE_FLUSH_BRIEF    /* retry for STORE_LOCK_LAST_TRY_MS at most (closing) */
} store_flush_mode;

/* What a transaction writes after the pending records and heartbeats; NULL
 * for a plain flush. */
typedef int (*store_txn_body)(orch_store *s, void *arg, orch_err *err);

/* Prepares the sink's statements once (a read-write store only; ORCH_EINVAL
 * for a read-only one). */
int store_sink_ready(orch_store *s, orch_err *err);

/* One durable write outside the sink's callbacks (sweep_record.c): the
 * pending records are flushed first, then body runs in BEGIN IMMEDIATE ...
 * COMMIT with the sink's lock conventions (a lock held by another process
 * is waited for with backoff up to the lock limit); rolled back when body
 * fails. */
int store_sink_txn(orch_store *s, store_txn_body body, void *arg, orch_err *err);

/* Writes the pending records in one transaction; see orch_store_sink. */
int store_sink_flush(orch_store *s, store_flush_mode mode, orch_err *err);

/* Finalizes the sink's statements and frees its buffers. */
void store_sink_fini(store_sink *k);

/* ------------------------------------------------------------- guard */

typedef struct store_guard {
    int trusted;    /* 1 while store/ prepares its own statements */
    int refused;    /* the authorizer denied something in this prepare */
    char what[160]; /* what was denied, for the message */
} store_guard;

/* The authorizer installed on read-only stores (sqlite3_set_authorizer with
 * a store_guard * as its first argument). */
int store_guard_authorize(void *ctx, int action, const char *a1, const char *a2,
                          const char *db_name, const char *trigger);

/* ------------------------------------------------------------- store */

struct orch_store {
    sqlite3 *db;
    char *path;
    orch_store_mode mode;
    store_guard guard;
    store_sink sink;
    int sink_ready;
    int created; /* this open created the file (see orch_store_close_unused) */
};

/* Maps a SQLite failure to ORCH_EDB with "what: sqlite3_errmsg" in err (or
 * ORCH_EINVAL "PATH is not an orch store: ..." for SQLITE_NOTADB). */
int store_dberr(orch_store *s, int rc, const char *what, orch_err *err);

/* Prepares one of store/'s own statements (the guard lets it through).
 * persistent selects SQLITE_PREPARE_PERSISTENT. */
int store_prepare(orch_store *s, const char *sql, int persistent, sqlite3_stmt **st, orch_err *err);

/* Runs SQL text without results (DDL, PRAGMA, BEGIN); store/'s own only. */
int store_exec(orch_store *s, const char *sql, orch_err *err);

/* The tables of the main schema with a foreign key to one of parents (an
 * SQL list of quoted names: "'runs', 'sweeps'"), except those in excluded
 * (the same form), in name order: what `orch merge` and bundles copy row
 * by row, so a table a later migration adds travels without code. Writes
 * at most max names into names; what prefixes the messages ("merge"). */
int store_child_tables(orch_store *s, const char *parents, const char *excluded, const char *what,
                       char (*names)[128], int *n, int max, orch_err *err);

/* Migrates db forward from its user_version to n_migrations, where
 * migrations[i] takes version i to i+1, inside BEGIN IMMEDIATE; also stamps
 * the application id. Refuses (ORCH_EINVAL) a newer version, a foreign
 * application id and a version-0 database that already holds tables. path
 * is for messages. Exposed so tests can migrate with their own lists. */
int store_migrate(sqlite3 *db, const char *path, const char *const *migrations, int n_migrations,
                  orch_err *err);

/* Test hook: when not NULL, called once while orch_store_open creates a new
 * store, at the point where a reader racing the creation would look (the
 * store complete but not yet at path). ctx is store_create_hook_ctx. */
extern void (*store_create_hook)(const char *path, void *ctx);
extern void *store_create_hook_ctx;

/* Debug hook (store/open_log.c): when the environment variable
 * ORCH_STORE_OPEN_LOG names a file, orch_store_open (and
 * store_open_existing, when it opens the file) appends "HOST PID PATH\n"
 * to it, so a test can tell which hosts opened a store. */
#define STORE_OPEN_LOG_ENV "ORCH_STORE_OPEN_LOG"
void store_open_log(const char *path);

/* Opens path read-write only if it is an existing, writable orch store of
 * exactly ORCH_STORE_SCHEMA_VERSION, without creating or migrating
 * anything. *out is NULL, with ORCH_OK, when it is not (nothing to do);
 * errors are SQLite failures while opening. See orch_store_reap_path. */
int store_open_existing(const char *path, orch_store **out, orch_err *err);

/* The URI to open path read-only with when a plain open would fail (a
 * WAL store in a directory we cannot write, with no -wal pending:
 * "file:PATH?immutable=1"), malloc'd into *uri; NULL when the plain path
 * will do (then open without SQLITE_OPEN_URI). ORCH_ENOMEM. */
int store_readonly_uri(const char *path, char **uri, orch_err *err);

/* ------------------------------------------------------------- paths */

#define STORE_PATH_MAX 4096

/* The text to record for a file path given relative to the working
 * directory (or absolute): relative to the store's directory when the file
 * is inside it, else absolute. ORCH_EINVAL when it does not fit in n. */
int store_record_path(const orch_store *s, const char *path, char *out, size_t n, orch_err *err);

/* The detach feature cache beside the store, PATH.features; -1 for a
 * store in memory or a path that does not fit. */
int store_features_dir(const orch_store *s, char *out, size_t n);

/* text with control characters (bytes < 0x20 and 0x7f) written as \xNN,
 * for messages to a terminal; truncated to n bytes with the NUL. */
void store_sanitize(const char *text, char *out, size_t n);

/* ------------------------------------------------------------- reap */

/* Is the process of a 'running' run gone? host and pid as recorded (pid <=
 * 0: unknown), age_s the seconds since its last sign of life, local_host
 * this machine's name. The rule of ORCH_STORE_STALE_S. */
int store_process_gone(const char *host, int64_t pid, double age_s, const char *local_host);

/* This machine's host name as gethostname() gives it ("" on failure); buf
 * holds n bytes. Returns buf. */
char *store_local_host(char *buf, size_t n);

/* SQL for the seconds since a run's last sign of life, over runs aliased r. */
#define STORE_AGE_SQL                                                                              \
    "(julianday('now') - julianday(coalesce(r.heartbeat_at, r.started_at, r.created_at))) "        \
    "* 86400.0"

/* ------------------------------------------------------------ schema */

extern const char *const store_migrations[];
extern const int store_n_migrations;

/* ------------------------------------------------------------ format */

/* The rows a table holds until it can align them. */
typedef struct store_table {
    int n_cols;
    size_t n_rows, cap_rows;
    char **cells;       /* n_rows * n_cols, NULL = SQL NULL */
    unsigned char *num; /* n_rows * n_cols: right-align */
} store_table;

/* Prints rows one at a time as a table, CSV or JSON (format.c). CSV and
 * JSON stream; a table is held until store_writer_end aligns it. names
 * (n_cols) are borrowed until the end. */
typedef struct store_writer {
    orch_format format;
    const orch_render_opts *opts;
    int n_cols;
    const char *const *names;
    FILE *out;
    store_table t;
    size_t n; /* rows so far */
} store_writer;

/* NULL opts = exact reals and "NULL". */
int store_writer_begin(store_writer *w, orch_format format, const orch_render_opts *opts,
                       int n_cols, const char *const *names, FILE *out);
/* One row of n_cols values (borrowed for the call). ORCH_ENOMEM, ORCH_EIO. */
int store_writer_row(store_writer *w, const orch_value *vals, orch_err *err);
/* Prints what is held, ends the output, checks it was written (ORCH_EIO)
 * and frees the writer. */
int store_writer_end(store_writer *w, orch_err *err);
/* Frees the writer without printing (after a failure). */
void store_writer_free(store_writer *w);

/* Steps st to the end and prints its rows in format as they come (rows.c);
 * NULL opts = exact reals and "NULL". The caller keeps st (reset, not
 * finalized). ORCH_EDB when a step fails, ORCH_ENOMEM, ORCH_EIO when
 * writing out fails. */
int store_print_rows(orch_store *s, sqlite3_stmt *st, orch_format format,
                     const orch_render_opts *opts, FILE *out, orch_err *err);

/* Steps st to the end and appends its rows to *out, copying column names
 * the first time (rows.c). The caller keeps st (reset). ORCH_EDB,
 * ORCH_ENOMEM. */
int store_fetch_rows(orch_store *s, sqlite3_stmt *st, orch_rowset *out, orch_err *err);

/* The runs of sweep ?1 with their group of seeds (sweep_read.c): run_id,
 * seed, status, strategy, lr, final_loss, nan_events, grp (label), grp_key;
 * a group's runs adjacent, its first run first. One definition of a group
 * for `orch compare --sweep` and `orch report --sweep`. */
extern const char store_sql_sweep_groups[];

/* Prints v as JSON, every real as the shortest text that reads back
 * exactly. indent < 0: one line; else newlines and indent spaces per level,
 * starting at depth. Returns 0, or -1 when encoding or writing failed. */
int store_json_print(json_t *v, int indent, int depth, FILE *out);

/* The shortest %.Ng (N <= 17) text of v that reads back as v; "Infinity",
 * "-Infinity" and "NaN" for non-finite values. Reals always show a '.' or an
 * exponent. buf must hold 32 bytes. Returns buf. */
char *store_format_real(double v, int digits, char *buf);

#endif
