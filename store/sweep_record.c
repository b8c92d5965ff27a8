/*
 * sweep_record.c - recording sweeps (store/sweeps.h, "recording"): what the
 * coordinator (rank 0, the only writer) writes as it opens a sweep, queues
 * its runs, hands them out, settles the ones that will not run, keeps its
 * heartbeat and closes it.
 *
 * Each function is one transaction through store_sink_txn: BEGIN IMMEDIATE
 * with the sink's lock conventions (another process holding the write lock
 * is waited for with backoff up to ORCH_STORE_LOCK_LIMIT_S), committed
 * before it returns, rolled back whole when anything in it fails. The
 * statements are prepared per call: a sweep makes a handful of these calls
 * per run, next to hundreds of steps.
 *
 * A sweep's runs are ordinary runs rows: queued here with their
 * configuration, started by a worker through the sink's resume_run
 * (from_step -1), ended by its end_run. sweep_runs links each point of the
 * sweep to its run.
 */
#include "store/store_int.h"
#include "store/sweeps.h"

#include <string.h>

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* One of this file's statements, finalized by stmt_done. */
static int stmt_open(orch_store *s, const char *sql, sqlite3_stmt **st, orch_err *err)
{
    *st = NULL;
    return store_prepare(s, sql, 0, st, err);
}

/* Steps a statement that returns no row (or whose row is not needed) and
 * finalizes it. bound is the OR of its sqlite3_bind_* results. */
static int stmt_done(orch_store *s, sqlite3_stmt *st, int bound, const char *what, orch_err *err)
{
    int rc = bound == SQLITE_OK ? sqlite3_step(st) : sqlite3_errcode(s->db);
    int status = rc == SQLITE_DONE || rc == SQLITE_ROW ? ORCH_OK : store_dberr(s, rc, what, err);
    sqlite3_finalize(st);
    return status;
}

static void column_copy(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(buf, n, "%s", t != NULL ? (const char *)t : "");
}

/* orch_run_status of the text stored in runs.status. */
static int status_of(const char *text, orch_run_status *out)
{
    for (int i = ORCH_RUN_QUEUED; i <= ORCH_RUN_SKIPPED; i++)
        if (strcmp(text, orch_run_status_name((orch_run_status)i)) == 0) {
            *out = (orch_run_status)i;
            return 1;
        }
    return 0;
}

static int check_writable(orch_store *s, const char *what, orch_err *err)
{
    if (s == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: no store", what);
    if (s->mode != ORCH_STORE_READWRITE)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s is open read-only", what, s->path);
    return ORCH_OK;
}

/* ---------------------------------------------------------------- open */

typedef struct open_args {
    const char *name, *file, *hash, *host;
    int64_t pid;
    int64_t id;
} open_args;

static const char sql_find_sweep[] =
    "SELECT id, status, coordinator_host, coordinator_pid,\n"
    "       (julianday('now') - julianday(coalesce(heartbeat_at, created_at))) * 86400.0\n"
    "  FROM sweeps WHERE name = ?1 AND hash = ?2";
static const char sql_insert_sweep[] =
    "INSERT INTO sweeps (name, file, hash, status, coordinator_host, coordinator_pid, "
    "heartbeat_at, created_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5, " NOW_SQL ", " NOW_SQL ")";
static const char sql_take_sweep[] =
    "UPDATE sweeps SET status = 'running', file = coalesce(?2, file), coordinator_host = ?3, "
    "coordinator_pid = ?4, heartbeat_at = " NOW_SQL ", finished_at = NULL WHERE id = ?1";
/* Nobody coordinates the sweep's runs left running: their workers died
 * with the job that ran them. */
static const char sql_orphans[] =
    "UPDATE runs SET status = 'interrupted', finished_at = " NOW_SQL ", error = ?2\n"
    " WHERE status = 'running' AND id IN (SELECT run_id FROM sweep_runs WHERE sweep_id = ?1)";

static int open_body(orch_store *s, void *arg, orch_err *err)
{
    open_args *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_find_sweep, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int src = sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC) |
              sqlite3_bind_text(st, 2, a->hash, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_dberr(s, src, "sweep: reading the sweep", err);
        sqlite3_finalize(st);
        return rc;
    }
    if (src == SQLITE_DONE) {
        sqlite3_finalize(st);
        rc = stmt_open(s, sql_insert_sweep, &st, err);
        if (rc != ORCH_OK)
            return rc;
        int b = sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC) |
                sqlite3_bind_text(st, 2, a->file, -1, SQLITE_STATIC) |
                sqlite3_bind_text(st, 3, a->hash, -1, SQLITE_STATIC) |
                sqlite3_bind_text(st, 4, a->host, -1, SQLITE_STATIC) |
                sqlite3_bind_int64(st, 5, a->pid);
        rc = stmt_done(s, st, b, "sweep: recording the sweep", err);
        if (rc == ORCH_OK)
            a->id = sqlite3_last_insert_rowid(s->db);
        return rc;
    }

    /* Recorded earlier: continued, unless a live coordinator holds it. */
    int64_t id = sqlite3_column_int64(st, 0);
    char status[32], host[256], local[256];
    column_copy(st, 1, status, sizeof status);
    column_copy(st, 2, host, sizeof host);
    int64_t pid = sqlite3_column_int64(st, 3);
    double age_s = sqlite3_column_double(st, 4);
    sqlite3_finalize(st);
    int was_running = strcmp(status, "running") == 0;
    if (was_running && pid == a->pid && strcmp(host, a->host) == 0) {
        a->id = id; /* opened again by the coordinator that holds it: nothing changes */
        return ORCH_OK;
    }
    if (was_running &&
        !store_process_gone(host, pid, age_s, store_local_host(local, sizeof local))) {
        char shown_name[128], shown_host[256];
        store_sanitize(a->name, shown_name, sizeof shown_name);
        store_sanitize(host[0] != '\0' ? host : "an unknown host", shown_host, sizeof shown_host);
        return orch_seterr(err, ORCH_EREFUSED,
                           "sweep %s is being run by pid %lld on %s; stop it or wait for it to "
                           "end before running it again",
                           shown_name, (long long)pid, shown_host);
    }
    rc = stmt_open(s, sql_take_sweep, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int b = sqlite3_bind_int64(st, 1, id) | sqlite3_bind_text(st, 2, a->file, -1, SQLITE_STATIC) |
            sqlite3_bind_text(st, 3, a->host, -1, SQLITE_STATIC) |
            sqlite3_bind_int64(st, 4, a->pid);
    rc = stmt_done(s, st, b, "sweep: taking the sweep over", err);
    if (rc != ORCH_OK)
        return rc;
    char reason[ORCH_ERR_MSG_MAX];
    if (was_running)
        snprintf(reason, sizeof reason,
                 "the coordinator of the sweep (pid %lld on %s) is gone; pid %lld on %s took the "
                 "sweep over",
                 (long long)pid, host[0] != '\0' ? host : "an unknown host", (long long)a->pid,
                 a->host);
    else
        snprintf(reason, sizeof reason,
                 "the sweep was %s while this run was running; pid %lld on %s continued the sweep",
                 status, (long long)a->pid, a->host);
    rc = stmt_open(s, sql_orphans, &st, err);
    if (rc != ORCH_OK)
        return rc;
    b = sqlite3_bind_int64(st, 1, id) | sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
    rc = stmt_done(s, st, b, "sweep: marking the runs of the last coordinator interrupted", err);
    if (rc == ORCH_OK)
        a->id = id;
    return rc;
}

int orch_store_sweep_open(orch_store *s, const char *name, const char *file, const char *hash,
                          const char *host, int64_t pid, int64_t *sweep_id, orch_err *err)
{
    if (sweep_id != NULL)
        *sweep_id = 0;
    int rc = check_writable(s, "sweep", err);
    if (rc != ORCH_OK)
        return rc;
    if (sweep_id == NULL || name == NULL || name[0] == '\0' || hash == NULL || hash[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "sweep: opening a sweep needs a name and a hash");
    if (host == NULL || host[0] == '\0' || pid <= 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "sweep %s: the coordinator needs a host and a pid (got pid %lld)", name,
                           (long long)pid);
    open_args a = {name, file, hash, host, pid, 0};
    rc = store_sink_txn(s, open_body, &a, err);
    if (rc == ORCH_OK)
        *sweep_id = a.id;
    return rc;
}

/* --------------------------------------------------------------- state */

static const char sql_state[] =
    "SELECT r.status, w.attempts, (SELECT max(step) FROM steps WHERE run_id = r.id),\n"
    "       (SELECT path FROM artifacts WHERE run_id = r.id AND kind = 'checkpoint'\n"
    "         ORDER BY step DESC LIMIT 1)\n"
    "  FROM runs r JOIN sweep_runs w ON w.run_id = r.id WHERE r.id = ?1";

/* Fills *state for run_id, a run of a sweep, inside the caller's
 * transaction. */
static int read_state(orch_store *s, int64_t run_id, orch_sweep_run_state *state, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_state, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int src = sqlite3_bind_int64(st, 1, run_id);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = orch_seterr(err, ORCH_EINVAL, "sweep: run %lld is not a sweep's run in %s",
                         (long long)run_id, s->path);
    else if (src != SQLITE_ROW)
        rc = store_dberr(s, src, "sweep: reading a run's state", err);
    if (rc == ORCH_OK) {
        char status[32];
        memset(state, 0, sizeof *state);
        state->run_id = run_id;
        column_copy(st, 0, status, sizeof status);
        if (!status_of(status, &state->status))
            rc = orch_seterr(err, ORCH_EDB,
                             "sweep: run %lld has status '%s', which orch does "
                             "not know",
                             (long long)run_id, status);
        state->attempts = sqlite3_column_int64(st, 1);
        state->last_step =
            sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
        const unsigned char *path = sqlite3_column_text(st, 3);
        if (rc == ORCH_OK && path != NULL &&
            orch_store_resolve_path(s, (const char *)path, state->checkpoint,
                                    sizeof state->checkpoint) != 0)
            rc = orch_seterr(err, ORCH_EINVAL,
                             "sweep: run %lld: the path of its checkpoint does not fit in %zu "
                             "bytes: %.64s...",
                             (long long)run_id, sizeof state->checkpoint, (const char *)path);
    }
    sqlite3_finalize(st);
    return rc;
}

/* --------------------------------------------------------------- queue */

typedef struct queue_args {
    int64_t sweep_id;
    const char *point;
    const orch_run_info *info;
    orch_sweep_run_state *state;
} queue_args;

static const char sql_sweep_exists[] = "SELECT 1 FROM sweeps WHERE id = ?1";
/* The point's run, and whether it was made with the configuration given. */
static const char sql_find_point[] =
    "SELECT w.run_id, r.config_hash IS ?3 FROM sweep_runs w JOIN runs r ON r.id = w.run_id\n"
    " WHERE w.sweep_id = ?1 AND w.point = ?2";
/* Queued: no host, pid or start yet (resume_run records them as it
 * starts); the uuid comes from the column's default. */
static const char sql_insert_queued[] =
    "INSERT INTO runs (pipeline, name, strategy, status, config_json, config_hash, seed, "
    "orch_version, created_at) VALUES (?1, ?2, ?3, 'queued', coalesce(?4, '{}'), ?5, ?6, "
    "?7, " NOW_SQL ")";
static const char sql_link[] =
    "INSERT INTO sweep_runs (sweep_id, point, run_id) VALUES (?1, ?2, ?3)";
/* The point now holds a run of another configuration; the old run stays in
 * runs, only no longer as this point of the sweep. */
static const char sql_relink[] =
    "UPDATE sweep_runs SET run_id = ?3, rank = NULL, host = NULL, attempts = 0\n"
    " WHERE sweep_id = ?1 AND point = ?2";

static int queue_body(orch_store *s, void *arg, orch_err *err)
{
    queue_args *a = arg;
    const orch_run_info *info = a->info;
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_sweep_exists, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int src = sqlite3_bind_int64(st, 1, a->sweep_id);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src == SQLITE_DONE)
        return orch_seterr(err, ORCH_EINVAL, "sweep: no sweep %lld in %s", (long long)a->sweep_id,
                           s->path);
    if (src != SQLITE_ROW)
        return store_dberr(s, src, "sweep: reading the sweep", err);

    rc = stmt_open(s, sql_find_point, &st, err);
    if (rc != ORCH_OK)
        return rc;
    src = sqlite3_bind_int64(st, 1, a->sweep_id) |
          sqlite3_bind_text(st, 2, a->point, -1, SQLITE_STATIC) |
          sqlite3_bind_text(st, 3, info->config_hash, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    int linked = src == SQLITE_ROW;
    int64_t run_id = linked ? sqlite3_column_int64(st, 0) : 0;
    int same = linked && sqlite3_column_int(st, 1) != 0;
    sqlite3_finalize(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return store_dberr(s, src, "sweep: reading the sweep's runs", err);
    if (same)
        return read_state(s, run_id, a->state, err);

    rc = stmt_open(s, sql_insert_queued, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int b = sqlite3_bind_text(st, 1, info->pipeline, -1, SQLITE_STATIC) |
            sqlite3_bind_text(st, 2, info->name, -1, SQLITE_STATIC) |
            sqlite3_bind_text(st, 3, info->strategy, -1, SQLITE_STATIC) |
            sqlite3_bind_text(st, 4, info->config_json, -1, SQLITE_STATIC) |
            sqlite3_bind_text(st, 5, info->config_hash, -1, SQLITE_STATIC) |
            /* as the sink stores it: a seed >= 2^63 as seed - 2^64 */
            sqlite3_bind_int64(st, 6, (int64_t)info->seed) |
            sqlite3_bind_text(st, 7, info->orch_version, -1, SQLITE_STATIC);
    rc = stmt_done(s, st, b, "sweep: queueing a run", err);
    if (rc != ORCH_OK)
        return rc;
    run_id = sqlite3_last_insert_rowid(s->db);
    rc = stmt_open(s, linked ? sql_relink : sql_link, &st, err);
    if (rc != ORCH_OK)
        return rc;
    b = sqlite3_bind_int64(st, 1, a->sweep_id) |
        sqlite3_bind_text(st, 2, a->point, -1, SQLITE_STATIC) | sqlite3_bind_int64(st, 3, run_id);
    rc = stmt_done(s, st, b, "sweep: linking the run to the sweep", err);
    if (rc == ORCH_OK)
        rc = read_state(s, run_id, a->state, err);
    return rc;
}

int orch_store_sweep_queue(orch_store *s, int64_t sweep_id, const char *point,
                           const orch_run_info *info, orch_sweep_run_state *state, orch_err *err)
{
    int rc = check_writable(s, "sweep", err);
    if (rc != ORCH_OK)
        return rc;
    if (state == NULL || point == NULL || point[0] == '\0' || info == NULL)
        return orch_seterr(err, ORCH_EINVAL, "sweep: queueing a run needs a point and run info");
    if (info->pipeline == NULL || info->name == NULL || info->strategy == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "sweep: point %s: a run needs a pipeline, a name and a strategy", point);
    memset(state, 0, sizeof *state);
    state->last_step = -1;
    queue_args a = {sweep_id, point, info, state};
    return store_sink_txn(s, queue_body, &a, err);
}

/* ------------------------------------------------------------- handout */

typedef struct handout_args {
    int64_t run_id;
    int rank;
    const char *host;
    int64_t attempts;
} handout_args;

static const char sql_handout[] = "UPDATE sweep_runs SET attempts = attempts + 1, rank = ?2, "
                                  "host = ?3 WHERE run_id = ?1 RETURNING attempts, sweep_id";
static const char sql_beat[] = "UPDATE sweeps SET heartbeat_at = " NOW_SQL " WHERE id = ?1";

static int handout_body(orch_store *s, void *arg, orch_err *err)
{
    handout_args *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_handout, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int src = sqlite3_bind_int64(st, 1, a->run_id) | sqlite3_bind_int(st, 2, a->rank) |
              sqlite3_bind_text(st, 3, a->host, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    int64_t sweep_id = 0;
    if (src == SQLITE_ROW) {
        a->attempts = sqlite3_column_int64(st, 0);
        sweep_id = sqlite3_column_int64(st, 1);
        src = sqlite3_step(st); /* RETURNING: the update completes at SQLITE_DONE */
    } else if (src == SQLITE_DONE) {
        sqlite3_finalize(st);
        return orch_seterr(err, ORCH_EINVAL, "sweep: run %lld is not a sweep's run in %s",
                           (long long)a->run_id, s->path);
    }
    if (src != SQLITE_DONE) {
        rc = store_dberr(s, src, "sweep: recording the handout", err);
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    /* Handing work out is a sign of life of the coordinator. */
    rc = stmt_open(s, sql_beat, &st, err);
    if (rc == ORCH_OK)
        rc = stmt_done(s, st, sqlite3_bind_int64(st, 1, sweep_id), "sweep: writing the heartbeat",
                       err);
    return rc;
}

int orch_store_sweep_handout(orch_store *s, int64_t run_id, int rank, const char *host,
                             int64_t *attempts, orch_err *err)
{
    int rc = check_writable(s, "sweep", err);
    if (rc != ORCH_OK)
        return rc;
    if (rank < 0 || host == NULL || host[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL,
                           "sweep: run %lld: a handout needs a rank >= 0 and a host (got rank %d)",
                           (long long)run_id, rank);
    handout_args a = {run_id, rank, host, 0};
    rc = store_sink_txn(s, handout_body, &a, err);
    if (rc == ORCH_OK && attempts != NULL)
        *attempts = a.attempts;
    return rc;
}

/* -------------------------------------------------------------- settle */

typedef struct settle_args {
    int64_t run_id;
    orch_run_status status;
    const char *reason;
} settle_args;

static const char sql_settle_get[] =
    "SELECT r.status FROM runs r JOIN sweep_runs w ON w.run_id = r.id WHERE r.id = ?1";
static const char sql_settle[] = "UPDATE runs SET status = ?2, error = ?3, finished_at = " NOW_SQL
                                 " WHERE id = ?1 AND status IN ('queued', 'interrupted')";

static int settle_body(orch_store *s, void *arg, orch_err *err)
{
    const settle_args *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_settle_get, &st, err);
    if (rc != ORCH_OK)
        return rc;
    char status[32] = "";
    int src = sqlite3_bind_int64(st, 1, a->run_id);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        column_copy(st, 0, status, sizeof status);
    sqlite3_finalize(st);
    if (src == SQLITE_DONE)
        return orch_seterr(err, ORCH_EINVAL, "sweep: run %lld is not a sweep's run in %s",
                           (long long)a->run_id, s->path);
    if (src != SQLITE_ROW)
        return store_dberr(s, src, "sweep: reading the run to settle", err);
    if (strcmp(status, "queued") != 0 && strcmp(status, "interrupted") != 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "sweep: run %lld is %s; only a queued or interrupted run can be marked "
                           "%s",
                           (long long)a->run_id, status, orch_run_status_name(a->status));
    rc = stmt_open(s, sql_settle, &st, err);
    if (rc != ORCH_OK)
        return rc;
    int b = sqlite3_bind_int64(st, 1, a->run_id) |
            sqlite3_bind_text(st, 2, orch_run_status_name(a->status), -1, SQLITE_STATIC) |
            sqlite3_bind_text(st, 3, a->reason, -1, SQLITE_STATIC);
    return stmt_done(s, st, b, "sweep: settling the run", err);
}

int orch_store_sweep_settle_run(orch_store *s, int64_t run_id, orch_run_status status,
                                const char *reason, orch_err *err)
{
    int rc = check_writable(s, "sweep", err);
    if (rc != ORCH_OK)
        return rc;
    if (status != ORCH_RUN_SKIPPED && status != ORCH_RUN_FAILED)
        return orch_seterr(err, ORCH_EINVAL,
                           "sweep: run %lld: a run that will not run is skipped or failed, not %s",
                           (long long)run_id, orch_run_status_name(status));
    settle_args a = {run_id, status, reason};
    return store_sink_txn(s, settle_body, &a, err);
}

/* ----------------------------------------------------- heartbeat, close */

typedef struct sweep_args {
    int64_t sweep_id;
} sweep_args;

static int heartbeat_body(orch_store *s, void *arg, orch_err *err)
{
    const sweep_args *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_beat, &st, err);
    if (rc == ORCH_OK)
        rc = stmt_done(s, st, sqlite3_bind_int64(st, 1, a->sweep_id),
                       "sweep: writing the heartbeat", err);
    if (rc == ORCH_OK && sqlite3_changes(s->db) != 1)
        rc = orch_seterr(err, ORCH_EINVAL, "sweep: no sweep %lld in %s", (long long)a->sweep_id,
                         s->path);
    return rc;
}

int orch_store_sweep_heartbeat(orch_store *s, int64_t sweep_id, orch_err *err)
{
    int rc = check_writable(s, "sweep", err);
    if (rc != ORCH_OK)
        return rc;
    sweep_args a = {sweep_id};
    return store_sink_txn(s, heartbeat_body, &a, err);
}

/* finished when no run of the sweep is left to run (queued, running or
 * interrupted), else interrupted. */
static const char sql_close[] =
    "UPDATE sweeps SET finished_at = " NOW_SQL ", heartbeat_at = " NOW_SQL ",\n"
    "       status = CASE WHEN EXISTS (SELECT 1 FROM sweep_runs w JOIN runs r ON r.id = w.run_id\n"
    "                                   WHERE w.sweep_id = sweeps.id\n"
    "                                     AND r.status IN ('queued', 'running', 'interrupted'))\n"
    "                     THEN 'interrupted' ELSE 'finished' END\n"
    " WHERE id = ?1";

static int close_body(orch_store *s, void *arg, orch_err *err)
{
    const sweep_args *a = arg;
    sqlite3_stmt *st = NULL;
    int rc = stmt_open(s, sql_close, &st, err);
    if (rc == ORCH_OK)
        rc = stmt_done(s, st, sqlite3_bind_int64(st, 1, a->sweep_id), "sweep: closing the sweep",
                       err);
    if (rc == ORCH_OK && sqlite3_changes(s->db) != 1)
        rc = orch_seterr(err, ORCH_EINVAL, "sweep: no sweep %lld in %s", (long long)a->sweep_id,
                         s->path);
    return rc;
}

int orch_store_sweep_close(orch_store *s, int64_t sweep_id, orch_err *err)
{
    int rc = check_writable(s, "sweep", err);
    if (rc != ORCH_OK)
        return rc;
    sweep_args a = {sweep_id};
    return store_sink_txn(s, close_body, &a, err);
}
