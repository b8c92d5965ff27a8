/*
 * sink.c - the SQLite record sink (core/sink.h) with batched transactions.
 *
 * Records are copied into an in-memory batch and written with persistent
 * prepared statements in one BEGIN IMMEDIATE ... COMMIT when the batch holds
 * STORE_BATCH_RECORDS records, when its oldest record is STORE_BATCH_MS old
 * or the last commit was STORE_BATCH_MS ago (checked as records arrive: a
 * slow run writes each step as it comes, a fast one in batches), at a run's
 * first NaN event (the diagnosis must survive a crash that may follow), and
 * on flush, begin_run, end_run, artifact and resume_run. The write lock is
 * held only while a batch is written, never while the run computes, so
 * several runs can share one store.
 *
 * The heartbeat: the sink remembers the runs it has begun or resumed and not
 * yet ended, and every transaction it commits sets their runs.heartbeat_at,
 * so a live run's heartbeat is at most STORE_BATCH_MS plus one step old.
 * reap.c reads it to tell a live run from one whose process is gone.
 *
 * A reader never sees half a batch: it sees the steps of the batches
 * committed so far and status 'running' until end_run commits the last
 * batch together with the final status.
 *
 * Another process holding the write lock (txn_run): the sink never lets
 * SQLite wait inside a batch. A batch that finds the lock held stays
 * buffered and the run goes on; the next attempts come as records arrive,
 * after an exponential backoff; writes that must be durable (begin, end,
 * artifact, resume, flush) and a buffer at its cap wait with the same
 * backoff. Only a lock held for the limit (ORCH_STORE_LOCK_LIMIT_S) fails
 * the run. docs/store.md says this for users.
 */
#include "store/store_int.h"

#include "store/bundle.h"
#include "store/feature_cache.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static const char sql_insert_run[] =
    "INSERT INTO runs (pipeline, name, strategy, status, config_json, config_hash, seed, host, "
    "orch_version, pid, kernels, kernels_why, cpu, threads, data_hash, created_at, started_at, "
    "heartbeat_at) "
    "VALUES (?1, ?2, ?3, 'running', coalesce(?4, '{}'), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "?13, ?14, " NOW_SQL ", " NOW_SQL ", " NOW_SQL ")";
static const char sql_insert_step[] =
    "INSERT INTO steps (run_id, step, loss, grad_norm, lr, wall_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (run_id, step) DO UPDATE SET loss = excluded.loss, "
    "grad_norm = excluded.grad_norm, lr = excluded.lr, wall_ms = excluded.wall_ms";
static const char sql_insert_metric[] =
    "INSERT INTO metrics (run_id, step, name, value) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (run_id, name, step) DO UPDATE SET value = excluded.value";
static const char sql_insert_nan[] =
    "INSERT INTO nan_events (run_id, step, phase, stage, tensor, nan_count, inf_count, "
    "input_absmax, inputs_finite, rank, host) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
    "?11)";
static const char sql_end_run[] =
    "UPDATE runs SET status = ?2, finished_at = " NOW_SQL ", heartbeat_at = " NOW_SQL
    ", error = ?3, end_reason = ?4 WHERE id = ?1";
static const char sql_has_nan[] = "SELECT 1 FROM nan_events WHERE run_id = ?1 LIMIT 1";
static const char sql_insert_frozen[] =
    "INSERT INTO frozen_changes (run_id, step, parameter) VALUES (?1, ?2, ?3)";
/* A run records an entry once; a resumed run may record it again. */
static const char sql_insert_cache_use[] =
    "INSERT INTO run_features (run_id, key) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
/* A resumed run sends its inputs and classes again (resume_clear). */
static const char sql_insert_input[] =
    "INSERT INTO run_inputs (run_id, role, path, sha256, bytes) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (run_id, role, path) DO UPDATE SET sha256 = excluded.sha256, "
    "bytes = excluded.bytes";
static const char sql_insert_class[] =
    "INSERT INTO run_classes (run_id, id, name) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (run_id, id) DO UPDATE SET name = excluded.name";
static const char sql_insert_stage[] =
    "INSERT INTO stage_stats (run_id, step, stage, act_absmax, act_rms, grad_norm) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (run_id, step, stage) DO UPDATE SET act_absmax = excluded.act_absmax, "
    "act_rms = excluded.act_rms, grad_norm = excluded.grad_norm";
static const char sql_insert_artifact[] =
    "INSERT INTO artifacts (run_id, step, kind, path, sha256, bytes) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (run_id, kind, step) DO UPDATE SET path = excluded.path, "
    "sha256 = excluded.sha256, bytes = excluded.bytes, created_at = " NOW_SQL;
static const char sql_heartbeat[] = "UPDATE runs SET heartbeat_at = " NOW_SQL " WHERE id = ?1";
static const char sql_resume_get[] =
    "SELECT r.status, r.pid, r.host, " STORE_AGE_SQL ", r.config_hash, r.error FROM runs r "
    "WHERE r.id = ?1";
static const char sql_resume_set[] =
    "UPDATE runs SET status = 'running', pid = ?2, host = ?3, "
    "orch_version = coalesce(?4, orch_version), kernels = ?5, kernels_why = ?6, cpu = ?7, "
    "threads = ?8, data_hash = ?9, started_at = coalesce(started_at, " NOW_SQL "), "
    "heartbeat_at = " NOW_SQL ", finished_at = NULL, error = NULL, end_reason = NULL WHERE id = ?1";
/* What a resumed run records again: everything after its checkpoint. */
static const char *const sql_resume_del[6] = {
    "DELETE FROM steps WHERE run_id = ?1 AND step > ?2",
    "DELETE FROM metrics WHERE run_id = ?1 AND step > ?2",
    "DELETE FROM nan_events WHERE run_id = ?1 AND step > ?2",
    "DELETE FROM stage_stats WHERE run_id = ?1 AND step > ?2",
    "DELETE FROM artifacts WHERE run_id = ?1 AND step > ?2",
    "DELETE FROM frozen_changes WHERE run_id = ?1 AND step > ?2",
};
/* ... and what it sends again whatever its step: the data it computes on
 * now (a file may have changed since it stopped). */
static const char *const sql_resume_clear[2] = {
    "DELETE FROM run_inputs WHERE run_id = ?1",
    "DELETE FROM run_classes WHERE run_id = ?1",
};

/* ------------------------------------------------------------ helpers */

static double monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void nap_ms(void *ctx, double ms)
{
    (void)ctx;
    struct timespec ts = {(time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ; /* a signal (SIGINT) stops the run after the step, not the wait */
}

static double clock_now(const store_sink *k)
{
    return k->now_ms(k->clock_ctx);
}

/* Binds a double, NaN as NULL (what SQLite would do anyway, said aloud). */
static int bind_real(sqlite3_stmt *st, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

static int is_sha256_hex(const char *h)
{
    size_t n = 0;
    for (; h[n] != '\0'; n++)
        if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f') ||
              (h[n] >= 'A' && h[n] <= 'F')))
            return 0;
    return n == 64;
}

/* Copies str into the batch's string pool; *at is its offset, SIZE_MAX for NULL. */
static int pool_add(store_sink *k, const char *str, size_t *at, orch_err *err)
{
    if (str == NULL) {
        *at = SIZE_MAX;
        return ORCH_OK;
    }
    size_t n = strlen(str) + 1;
    if (k->pool_len + n > k->pool_cap) {
        size_t cap = k->pool_cap ? k->pool_cap : 4096;
        while (cap < k->pool_len + n)
            cap *= 2;
        char *p = realloc(k->pool, cap);
        if (p == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "store: out of memory buffering records");
        k->pool = p;
        k->pool_cap = cap;
    }
    memcpy(k->pool + k->pool_len, str, n);
    *at = k->pool_len;
    k->pool_len += n;
    return ORCH_OK;
}

static const char *pool_str(const store_sink *k, size_t at)
{
    return at == SIZE_MAX ? NULL : k->pool + at;
}

/* Appends a record slot (zeroed, run and step set) and returns it in *out. */
static int rec_add(store_sink *k, store_rec_kind kind, int64_t run_id, int64_t step,
                   store_rec **out, orch_err *err)
{
    if (k->n_recs == k->cap_recs) {
        size_t cap = k->cap_recs ? k->cap_recs * 2 : STORE_BATCH_RECORDS;
        store_rec *r = realloc(k->recs, cap * sizeof *r);
        if (r == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "store: out of memory buffering records");
        k->recs = r;
        k->cap_recs = cap;
    }
    if (k->n_recs == 0)
        k->oldest_ms = clock_now(k);
    store_rec *r = &k->recs[k->n_recs++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->run_id = run_id;
    r->step = step;
    *out = r;
    return ORCH_OK;
}

static void batch_clear(store_sink *k)
{
    k->n_recs = 0;
    k->pool_len = 0;
}

/* Makes room for one more live run, before the transaction that adds it. */
static int live_reserve(store_sink *k, orch_err *err)
{
    if (k->n_live < k->cap_live)
        return ORCH_OK;
    size_t cap = k->cap_live ? 2 * k->cap_live : 4;
    int64_t *l = realloc(k->live, cap * sizeof *l);
    if (l == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    k->live = l;
    k->cap_live = cap;
    return ORCH_OK;
}

/* Adds run_id to the live runs; live_reserve made room. */
static void live_add(store_sink *k, int64_t run_id)
{
    for (size_t i = 0; i < k->n_live; i++)
        if (k->live[i] == run_id)
            return;
    if (k->n_live < k->cap_live)
        k->live[k->n_live++] = run_id;
}

static void live_remove(store_sink *k, int64_t run_id)
{
    for (size_t i = 0; i < k->n_live; i++)
        if (k->live[i] == run_id) {
            k->live[i] = k->live[--k->n_live];
            return;
        }
}

/* Steps a data-changing statement to SQLITE_DONE and makes it reusable.
 * bound is the OR of its sqlite3_bind_* results: not SQLITE_OK, it is not
 * stepped. */
static int run_stmt(orch_store *s, sqlite3_stmt *st, int bound, const char *what, orch_err *err)
{
    int rc = bound == SQLITE_OK ? sqlite3_step(st) : sqlite3_errcode(s->db);
    int status = ORCH_OK;
    if (rc != SQLITE_DONE) {
        s->sink.last_rc = rc;
        status = store_dberr(s, rc, what, err);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return status;
}

/* ------------------------------------------------------- transactions */

/* Is rc SQLite's "another connection holds the lock"? */
static int is_lock_held(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* BEGIN IMMEDIATE without SQLite's own busy wait: the sink decides how long
 * to wait (store_sink_flush), so a held lock costs a live run no time. */
static int txn_begin(orch_store *s, orch_err *err)
{
    sqlite3_busy_timeout(s->db, 0);
    int rc = run_stmt(s, s->sink.begin, SQLITE_OK, "store: starting a transaction", err);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    return rc;
}

static int txn_commit(orch_store *s, orch_err *err)
{
    int rc = run_stmt(s, s->sink.commit, SQLITE_OK, "store: committing", err);
    if (rc == ORCH_OK)
        s->sink.last_commit_ms = clock_now(&s->sink);
    return rc;
}

static void txn_rollback(orch_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->sink.rollback);
        sqlite3_reset(s->sink.rollback);
    }
}

/* Writes one buffered record inside the open transaction. */
static int write_rec(orch_store *s, const store_rec *r, orch_err *err)
{
    store_sink *k = &s->sink;
    sqlite3_stmt *st = NULL;
    const char *what = NULL;
    int b = SQLITE_OK;
    switch (r->kind) {
    case STORE_REC_STEP:
        st = k->insert_step;
        what = "store: writing a step";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_int64(st, 2, r->step);
        b |= bind_real(st, 3, r->as.step.loss);
        b |= bind_real(st, 4, r->as.step.grad_norm);
        b |= bind_real(st, 5, r->as.step.lr);
        b |= bind_real(st, 6, r->as.step.wall_ms);
        break;
    case STORE_REC_METRIC:
        st = k->insert_metric;
        what = "store: writing a metric";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_int64(st, 2, r->step);
        b |= sqlite3_bind_text(st, 3, pool_str(k, r->as.metric.name), -1, SQLITE_STATIC);
        b |= bind_real(st, 4, r->as.metric.value);
        break;
    case STORE_REC_STAGE:
        st = k->insert_stage;
        what = "store: writing a stage statistic";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_int64(st, 2, r->step);
        b |= sqlite3_bind_text(st, 3, pool_str(k, r->as.stage.stage), -1, SQLITE_STATIC);
        b |= bind_real(st, 4, r->as.stage.act_absmax);
        b |= bind_real(st, 5, r->as.stage.act_rms);
        b |= bind_real(st, 6, r->as.stage.grad_norm);
        break;
    case STORE_REC_NAN:
        st = k->insert_nan;
        what = "store: writing a NaN event";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_int64(st, 2, r->step);
        b |= sqlite3_bind_text(st, 3, orch_phase_name(r->as.nan.phase), -1, SQLITE_STATIC);
        b |= sqlite3_bind_text(st, 4, pool_str(k, r->as.nan.stage), -1, SQLITE_STATIC);
        b |= sqlite3_bind_text(st, 5, pool_str(k, r->as.nan.tensor), -1, SQLITE_STATIC);
        b |= sqlite3_bind_int64(st, 6, r->as.nan.nan_count);
        b |= sqlite3_bind_int64(st, 7, r->as.nan.inf_count);
        if (r->as.nan.first) {
            b |= bind_real(st, 8, r->as.nan.input_absmax);
            b |= sqlite3_bind_int(st, 9, r->as.nan.inputs_finite ? 1 : 0);
        }
        if (r->as.nan.host != SIZE_MAX) {
            b |= sqlite3_bind_int64(st, 10, r->as.nan.rank);
            b |= sqlite3_bind_text(st, 11, pool_str(k, r->as.nan.host), -1, SQLITE_STATIC);
        }
        break;
    case STORE_REC_FROZEN:
        st = k->insert_frozen;
        what = "store: writing a frozen-parameter change";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_int64(st, 2, r->step);
        b |= sqlite3_bind_text(st, 3, pool_str(k, r->as.frozen.parameter), -1, SQLITE_STATIC);
        break;
    case STORE_REC_CACHE_USE:
        st = k->insert_cache_use;
        what = "store: recording a feature cache entry's use";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_text(st, 2, pool_str(k, r->as.cache_use.key), -1, SQLITE_STATIC);
        break;
    case STORE_REC_INPUT:
        st = k->insert_input;
        what = "store: recording a data file";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_text(st, 2, orch_data_role_name(r->as.input.role), -1, SQLITE_STATIC);
        b |= sqlite3_bind_text(st, 3, pool_str(k, r->as.input.path), -1, SQLITE_STATIC);
        b |= sqlite3_bind_text(st, 4, pool_str(k, r->as.input.sha256), -1, SQLITE_STATIC);
        b |= sqlite3_bind_int64(st, 5, r->as.input.bytes);
        break;
    case STORE_REC_CLASS:
        st = k->insert_class;
        what = "store: recording a class name";
        b |= sqlite3_bind_int64(st, 1, r->run_id);
        b |= sqlite3_bind_int64(st, 2, r->as.run_class.id);
        b |= sqlite3_bind_text(st, 3, pool_str(k, r->as.run_class.name), -1, SQLITE_STATIC);
        break;
    case STORE_REC__COUNT:
        ORCH_UNREACHABLE();
    }
    return run_stmt(s, st, b, what, err);
}

/* Writes every buffered record and the heartbeat of every live run; the
 * caller holds the transaction. */
static int write_batch(orch_store *s, orch_err *err)
{
    store_sink *k = &s->sink;
    for (size_t i = 0; i < k->n_recs; i++) {
        int rc = write_rec(s, &k->recs[i], err);
        if (rc != ORCH_OK)
            return rc;
    }
    for (size_t i = 0; i < k->n_live; i++) {
        int rc = run_stmt(s, k->heartbeat, sqlite3_bind_int64(k->heartbeat, 1, k->live[i]),
                          "store: writing the heartbeat", err);
        if (rc != ORCH_OK)
            return rc;
    }
    return ORCH_OK;
}

/* One attempt: BEGIN IMMEDIATE, the batch, body, COMMIT; rolled back on any
 * failure. *held tells a lock held by another connection from other
 * failures. */
static int txn_attempt(orch_store *s, store_txn_body body, void *arg, int *held, orch_err *err)
{
    s->sink.last_rc = SQLITE_OK;
    int rc = txn_begin(s, err);
    if (rc == ORCH_OK)
        rc = write_batch(s, err);
    if (rc == ORCH_OK && body != NULL)
        rc = body(s, arg, err);
    if (rc == ORCH_OK)
        rc = txn_commit(s, err);
    if (rc != ORCH_OK)
        txn_rollback(s);
    *held = rc != ORCH_OK && is_lock_held(s->sink.last_rc);
    return rc;
}

/* The lock is free again (or another failure ended the episode). */
static void lock_episode_end(store_sink *k)
{
    k->locked = 0;
    k->backoff_ms = STORE_LOCK_BACKOFF_MIN_MS;
}

/* Runs one transaction over the pending records (and body), meeting a
 * write lock held by another process as mode says (store_flush_mode). The
 * batch is cleared once written, or when a failure other than the lock
 * discards it; a held lock keeps it, so every record lands exactly once, in
 * the order it came. Past the limit the run's pending records are dropped
 * and ORCH_EDB names the store and the lock. */
static int txn_run(orch_store *s, store_flush_mode mode, store_txn_body body, void *arg,
                   orch_err *err)
{
    store_sink *k = &s->sink;
    for (;;) {
        int held = 0;
        int rc = txn_attempt(s, body, arg, &held, err);
        if (rc == ORCH_OK || !held) {
            if (rc != ORCH_OK && k->n_recs > 0)
                k->last_nan_run = 0; /* the run's first NaN event may be lost */
            batch_clear(k);
            lock_episode_end(k);
            if (rc == ORCH_OK)
                k->gave_up = 0;
            return rc;
        }
        double now = clock_now(k);
        if (!k->locked) {
            k->locked = 1;
            k->locked_since_ms = now;
            k->backoff_ms = STORE_LOCK_BACKOFF_MIN_MS;
        }
        double limit =
            k->gave_up || mode == STORE_FLUSH_BRIEF ? STORE_LOCK_LAST_TRY_MS : k->lock_limit_ms;
        double waited = now - k->locked_since_ms;
        if (waited >= limit) {
            size_t lost = k->n_recs;
            k->last_nan_run = 0;
            batch_clear(k);
            lock_episode_end(k);
            k->gave_up = 1;
            return orch_seterr(err, ORCH_EDB,
                               "store: %s: the write lock was held by another process for %.0f s "
                               "(limit %s=%g); %zu records not written",
                               s->path, waited / 1e3, STORE_LOCK_LIMIT_ENV, k->lock_limit_ms / 1e3,
                               lost);
        }
        double wait = fmin(k->backoff_ms, limit - waited);
        k->backoff_ms = fmin(2 * k->backoff_ms, STORE_LOCK_BACKOFF_MAX_MS);
        if (mode == STORE_FLUSH_TRY) {
            k->retry_at_ms = now + wait;
            return ORCH_OK; /* kept; the run goes on */
        }
        k->sleep_ms(k->clock_ctx, wait);
    }
}

int store_sink_flush(orch_store *s, store_flush_mode mode, orch_err *err)
{
    const store_sink *k = &s->sink;
    /* Nothing pending: only a heartbeat is due, and not more often than
     * batches are. */
    if (k->n_recs == 0 && (k->n_live == 0 || clock_now(k) - k->last_commit_ms < STORE_BATCH_MS))
        return ORCH_OK;
    return txn_run(s, mode, NULL, NULL, err);
}

/* A batch as records arrive: when full or old enough, and, while another
 * process holds the lock, not before the backoff is over. The buffer is
 * bounded: at max_recs pending records the run waits for the lock. */
static int maybe_flush(orch_store *s, orch_err *err)
{
    const store_sink *k = &s->sink;
    double now = clock_now(k);
    if (k->n_recs >= k->max_recs)
        return store_sink_flush(s, STORE_FLUSH_WAIT, err);
    if (k->locked && now < k->retry_at_ms)
        return ORCH_OK;
    if (k->n_recs >= STORE_BATCH_RECORDS || now - k->oldest_ms >= STORE_BATCH_MS ||
        now - k->last_commit_ms >= STORE_BATCH_MS)
        return store_sink_flush(s, STORE_FLUSH_TRY, err);
    return ORCH_OK;
}

/* ---------------------------------------------------------- callbacks */

typedef struct begin_args {
    const orch_run_info *info;
    int64_t id;
} begin_args;

/* kernels, kernels_why, cpu, threads at parameters first..first+3 (NULL
 * where the writer did not know them) */
static int bind_kernels(sqlite3_stmt *st, int first, const orch_run_info *info)
{
    int b = SQLITE_OK;
    b |= sqlite3_bind_text(st, first, info->kernels, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, first + 1, info->kernels_why, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, first + 2, info->cpu, -1, SQLITE_STATIC);
    b |= info->threads > 0 ? sqlite3_bind_int64(st, first + 3, info->threads)
                           : sqlite3_bind_null(st, first + 3);
    return b;
}

static int begin_body(orch_store *s, void *arg, orch_err *err)
{
    begin_args *a = arg;
    const orch_run_info *info = a->info;
    sqlite3_stmt *st = s->sink.insert_run;
    int b = SQLITE_OK;
    b |= sqlite3_bind_text(st, 1, info->pipeline, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 2, info->name, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 3, info->strategy, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 4, info->config_json, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 5, info->config_hash, -1, SQLITE_STATIC);
    /* INTEGER is signed 64-bit: a seed >= 2^63 is stored as seed - 2^64. */
    b |= sqlite3_bind_int64(st, 6, (int64_t)info->seed);
    b |= sqlite3_bind_text(st, 7, info->host, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 8, info->orch_version, -1, SQLITE_STATIC);
    b |= info->pid > 0 ? sqlite3_bind_int64(st, 9, info->pid) : sqlite3_bind_null(st, 9);
    b |= bind_kernels(st, 10, info);
    b |= sqlite3_bind_text(st, 14, info->data_hash, -1, SQLITE_STATIC);
    int rc = run_stmt(s, st, b, "store: recording the run", err);
    if (rc == ORCH_OK)
        a->id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int sink_begin_run(void *ctx, const orch_run_info *info, int64_t *run_id, orch_err *err)
{
    orch_store *s = ctx;
    if (info == NULL || run_id == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: begin_run without run info");
    if (info->pipeline == NULL || info->name == NULL || info->strategy == NULL)
        return orch_seterr(err, ORCH_EINVAL,
                           "store: begin_run needs a pipeline, a name and a strategy");
    *run_id = 0;
    int rc = live_reserve(&s->sink, err);
    if (rc != ORCH_OK)
        return rc;
    begin_args a = {info, 0};
    rc = txn_run(s, STORE_FLUSH_WAIT, begin_body, &a, err);
    if (rc == ORCH_OK) {
        *run_id = a.id;
        live_add(&s->sink, a.id);
    }
    return rc;
}

static int sink_step(void *ctx, int64_t run_id, const orch_step_record *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_rec *r = NULL;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: step without a record");
    int rc = rec_add(&s->sink, STORE_REC_STEP, run_id, rec->step, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.step.loss = rec->loss;
    r->as.step.grad_norm = rec->grad_norm;
    r->as.step.lr = rec->lr;
    r->as.step.wall_ms = rec->wall_ms;
    return maybe_flush(s, err);
}

static int sink_metric(void *ctx, int64_t run_id, const orch_metric_record *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_rec *r = NULL;
    size_t at = SIZE_MAX;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: metric without a record");
    if (rec->name == NULL || rec->name[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "store: a metric needs a name");
    int rc = pool_add(&s->sink, rec->name, &at, err);
    if (rc == ORCH_OK)
        rc = rec_add(&s->sink, STORE_REC_METRIC, run_id, rec->step, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.metric.name = at;
    r->as.metric.value = rec->value;
    return maybe_flush(s, err);
}

/* A feature cache entry's key: 32 lowercase hex digits, as its file is
 * named, so rm can find the file from the row. */
static int is_cache_key(const char *key)
{
    size_t n = 0;
    for (; key[n] != '\0'; n++)
        if (!((key[n] >= '0' && key[n] <= '9') || (key[n] >= 'a' && key[n] <= 'f')))
            return 0;
    return n == ORCH_FCACHE_KEY_HEX - 1;
}

/* Batched like a metric: rm reads it only after the run ended or died. */
static int sink_cache_use(void *ctx, int64_t run_id, const orch_cache_use *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_rec *r = NULL;
    size_t at = SIZE_MAX;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: cache_use without a record");
    if (rec->key == NULL || !is_cache_key(rec->key))
        return orch_seterr(err, ORCH_EINVAL,
                           "store: a feature cache key must be %d lowercase hexadecimal digits",
                           ORCH_FCACHE_KEY_HEX - 1);
    int rc = pool_add(&s->sink, rec->key, &at, err);
    if (rc == ORCH_OK)
        rc = rec_add(&s->sink, STORE_REC_CACHE_USE, run_id, 0, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.cache_use.key = at;
    return maybe_flush(s, err);
}

/* Is this the run's first NaN event? Its first events are written at once,
 * so the table answers for every run but the one just seen. */
static int is_first_nan(orch_store *s, int64_t run_id, int *first, orch_err *err)
{
    store_sink *k = &s->sink;
    if (run_id == k->last_nan_run) {
        *first = 0;
        return ORCH_OK;
    }
    int rc = sqlite3_bind_int64(k->has_nan, 1, run_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(k->has_nan);
    int status = ORCH_OK;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        *first = rc == SQLITE_DONE;
    else
        status = store_dberr(s, rc, "store: reading NaN events", err);
    sqlite3_reset(k->has_nan);
    sqlite3_clear_bindings(k->has_nan);
    if (status == ORCH_OK)
        k->last_nan_run = run_id;
    return status;
}

static int sink_nan_event(void *ctx, int64_t run_id, const orch_nan_record *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_sink *k = &s->sink;
    store_rec *r = NULL;
    size_t stage = SIZE_MAX, tensor = SIZE_MAX, host = SIZE_MAX;
    int first = 0;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: nan_event without a record");
    if (rec->phase != ORCH_PHASE_FORWARD && rec->phase != ORCH_PHASE_BACKWARD &&
        rec->phase != ORCH_PHASE_UPDATE)
        return orch_seterr(err, ORCH_EINVAL,
                           "store: NaN event phase %d is not forward, backward or update",
                           (int)rec->phase);
    if (rec->stage == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: a NaN event needs a stage");
    int rc = is_first_nan(s, run_id, &first, err);
    if (rc == ORCH_OK)
        rc = pool_add(k, rec->stage, &stage, err);
    if (rc == ORCH_OK)
        rc = pool_add(k, rec->tensor, &tensor, err);
    if (rc == ORCH_OK && rec->host != NULL)
        rc = pool_add(k, rec->host, &host, err);
    if (rc == ORCH_OK)
        rc = rec_add(k, STORE_REC_NAN, run_id, rec->step, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.nan.phase = rec->phase;
    r->as.nan.stage = stage;
    r->as.nan.tensor = tensor;
    r->as.nan.nan_count = rec->nan_count;
    r->as.nan.inf_count = rec->inf_count;
    r->as.nan.input_absmax = rec->input_absmax;
    r->as.nan.inputs_finite = rec->inputs_finite;
    r->as.nan.first = first;
    r->as.nan.rank = rec->rank;
    r->as.nan.host = host;
    /* the diagnosis must survive a crash that may follow */
    return first ? store_sink_flush(s, STORE_FLUSH_TRY, err) : maybe_flush(s, err);
}

/* Written at once, like a first NaN event: a strategy that moves frozen
 * weights is a bug worth keeping even if the run then crashes. */
static int sink_frozen_change(void *ctx, int64_t run_id, const orch_frozen_change *rec,
                              orch_err *err)
{
    orch_store *s = ctx;
    store_rec *r = NULL;
    size_t at = SIZE_MAX;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: frozen_change without a record");
    if (rec->parameter == NULL || rec->parameter[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "store: a frozen-parameter change needs a parameter");
    int rc = pool_add(&s->sink, rec->parameter, &at, err);
    if (rc == ORCH_OK)
        rc = rec_add(&s->sink, STORE_REC_FROZEN, run_id, rec->step, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.frozen.parameter = at;
    return store_sink_flush(s, STORE_FLUSH_TRY, err);
}

static int sink_stage_stat(void *ctx, int64_t run_id, const orch_stage_stat *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_rec *r = NULL;
    size_t at = SIZE_MAX;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: stage_stat without a record");
    if (rec->stage == NULL || rec->stage[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "store: a stage statistic needs a stage");
    int rc = pool_add(&s->sink, rec->stage, &at, err);
    if (rc == ORCH_OK)
        rc = rec_add(&s->sink, STORE_REC_STAGE, run_id, rec->step, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.stage.stage = at;
    r->as.stage.act_absmax = rec->act_absmax;
    r->as.stage.act_rms = rec->act_rms;
    r->as.stage.grad_norm = rec->grad_norm;
    return maybe_flush(s, err);
}

/* Batched like a step: a run over a folder of images sends thousands. */
static int sink_input(void *ctx, int64_t run_id, const orch_run_input *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_sink *k = &s->sink;
    store_rec *r = NULL;
    size_t path = SIZE_MAX, sha = SIZE_MAX;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: input without a record");
    if ((unsigned)rec->role >= ORCH_ROLE__COUNT)
        return orch_seterr(err, ORCH_EINVAL, "store: data role %d is not train or eval",
                           (int)rec->role);
    if (rec->path == NULL || rec->path[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "store: a data file needs a path");
    if (rec->sha256 == NULL || !is_sha256_hex(rec->sha256))
        return orch_seterr(err, ORCH_EINVAL,
                           "store: data file %s: sha256 must be 64 hexadecimal digits", rec->path);
    if (rec->bytes < 0)
        return orch_seterr(err, ORCH_EINVAL, "store: data file %s: size %lld must not be negative",
                           rec->path, (long long)rec->bytes);
    int rc = pool_add(k, rec->path, &path, err);
    if (rc == ORCH_OK)
        rc = pool_add(k, rec->sha256, &sha, err);
    if (rc == ORCH_OK)
        rc = rec_add(k, STORE_REC_INPUT, run_id, 0, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.input.role = rec->role;
    r->as.input.path = path;
    r->as.input.sha256 = sha;
    r->as.input.bytes = rec->bytes;
    return maybe_flush(s, err);
}

static int sink_run_class(void *ctx, int64_t run_id, const orch_run_class *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_rec *r = NULL;
    size_t name = SIZE_MAX;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: class without a record");
    if (rec->id < 0 || rec->name == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: a class needs an id >= 0 and a name");
    int rc = pool_add(&s->sink, rec->name, &name, err);
    if (rc == ORCH_OK)
        rc = rec_add(&s->sink, STORE_REC_CLASS, run_id, 0, &r, err);
    if (rc != ORCH_OK)
        return rc;
    r->as.run_class.id = rec->id;
    r->as.run_class.name = name;
    return maybe_flush(s, err);
}

static int sink_flush(void *ctx, orch_err *err)
{
    return store_sink_flush(ctx, STORE_FLUSH_WAIT, err);
}

typedef struct end_args {
    int64_t run_id;
    orch_run_status status;
    const char *error_message;
    const char *reason;
} end_args;

static int end_body(orch_store *s, void *arg, orch_err *err)
{
    const end_args *a = arg;
    sqlite3_stmt *st = s->sink.end_run;
    int b = SQLITE_OK;
    b |= sqlite3_bind_int64(st, 1, a->run_id);
    b |= sqlite3_bind_text(st, 2, orch_run_status_name(a->status), -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 3, a->error_message, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 4, a->reason, -1, SQLITE_STATIC);
    int rc = run_stmt(s, st, b, "store: recording the end of the run", err);
    if (rc == ORCH_OK && sqlite3_changes(s->db) != 1)
        rc = orch_seterr(err, ORCH_EINVAL, "store: end_run: no run %lld in %s",
                         (long long)a->run_id, s->path);
    return rc;
}

/* The pending records and the final status in one transaction. When that
 * cannot be written (disk full, the lock held past the limit) the records
 * are gone, so the run must not read as finished nor stay running: it is
 * marked failed with the reason in a transaction of its own, where the
 * store can still be written. The first failure is returned. */
static int sink_end_run(void *ctx, int64_t run_id, const orch_run_end *rec, orch_err *err)
{
    orch_store *s = ctx;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: end_run without a record");
    orch_run_status status = rec->status;
    const char *error_message = rec->error;
    if (status != ORCH_RUN_FINISHED && status != ORCH_RUN_DIVERGED && status != ORCH_RUN_FAILED &&
        status != ORCH_RUN_INTERRUPTED)
        return orch_seterr(err, ORCH_EINVAL,
                           "store: end_run needs a final status (finished, diverged, failed or "
                           "interrupted), not %s",
                           orch_run_status_name(status));
    end_args a = {run_id, status, error_message, rec->reason};
    int rc = txn_run(s, STORE_FLUSH_WAIT, end_body, &a, err);
    if (rc == ORCH_OK) {
        live_remove(&s->sink, run_id);
        return ORCH_OK;
    }
    if (rc == ORCH_EINVAL || err == NULL)
        return rc;
    char reason[ORCH_ERR_MSG_MAX + 64];
    snprintf(reason, sizeof reason, "%s%sthe end of the run could not be recorded: %s",
             error_message != NULL ? error_message : "", error_message != NULL ? "; " : "",
             err->msg);
    end_args failed = {run_id, ORCH_RUN_FAILED, reason, NULL};
    orch_err again;
    orch_err_clear(&again);
    if (txn_run(s, STORE_FLUSH_BRIEF, end_body, &failed, &again) == ORCH_OK)
        live_remove(&s->sink, run_id);
    return rc;
}

typedef struct artifact_args {
    int64_t run_id;
    const orch_artifact *rec;
} artifact_args;

static int artifact_body(orch_store *s, void *arg, orch_err *err)
{
    const artifact_args *a = arg;
    const orch_artifact *rec = a->rec;
    sqlite3_stmt *st = s->sink.insert_artifact;
    int b = SQLITE_OK;
    b |= sqlite3_bind_int64(st, 1, a->run_id);
    b |= sqlite3_bind_int64(st, 2, rec->step);
    b |= sqlite3_bind_text(st, 3, orch_artifact_kind_name(rec->kind), -1, SQLITE_STATIC);
    /* Recorded relative to the store, so a copied store or another working
     * directory still finds it. */
    char recorded[STORE_PATH_MAX];
    int rc = store_record_path(s, rec->path, recorded, sizeof recorded, err);
    if (rc != ORCH_OK)
        return rc;
    b |= sqlite3_bind_text(st, 4, recorded, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 5, rec->sha256, -1, SQLITE_STATIC);
    b |= sqlite3_bind_int64(st, 6, rec->bytes);
    return run_stmt(s, st, b, "store: recording an artifact", err);
}

static int sink_artifact(void *ctx, int64_t run_id, const orch_artifact *rec, orch_err *err)
{
    orch_store *s = ctx;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: artifact without a record");
    if ((unsigned)rec->kind >= ORCH_ARTIFACT__COUNT)
        return orch_seterr(err, ORCH_EINVAL, "store: artifact kind %d is not checkpoint",
                           (int)rec->kind);
    if (rec->path == NULL || rec->path[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "store: an artifact needs a path");
    if (rec->sha256 == NULL || !is_sha256_hex(rec->sha256))
        return orch_seterr(err, ORCH_EINVAL,
                           "store: artifact %s: sha256 must be 64 hexadecimal digits", rec->path);
    if (rec->step < 0 || rec->bytes < 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "store: artifact %s: step %lld and size %lld must not be negative",
                           rec->path, (long long)rec->step, (long long)rec->bytes);
    /* The steps it holds first, in their own transaction: an artifact that
     * cannot be recorded loses no steps. */
    int rc = store_sink_flush(s, STORE_FLUSH_WAIT, err);
    if (rc == ORCH_OK)
        rc =
            txn_run(s, STORE_FLUSH_WAIT, artifact_body, (void *)&(artifact_args){run_id, rec}, err);
    return rc;
}

/* Copies column i's text into buf (n bytes); "" for NULL. */
static void column_copy(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(buf, n, "%s", t != NULL ? (const char *)t : "");
}

/* May run_id be resumed from from_step? Reads its row inside the caller's
 * transaction; fills err and returns ORCH_EINVAL when not. A queued run (a
 * sweep's, created by orch_store_sweep_queue) starts here with from_step
 * -1: it has nothing to resume from. */
static int check_resumable(orch_store *s, int64_t run_id, const orch_run_info *info,
                           int64_t from_step, orch_err *err)
{
    sqlite3_stmt *st = s->sink.resume_get;
    char status[32], host[256], hash[160], local[256], why[256];
    int rc = sqlite3_bind_int64(st, 1, run_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return orch_seterr(err, ORCH_EINVAL, "no run %lld in %s", (long long)run_id, s->path);
    }
    if (rc != SQLITE_ROW) {
        rc = store_dberr(s, rc, "store: reading the run to resume", err);
        sqlite3_reset(st);
        return rc;
    }
    column_copy(st, 0, status, sizeof status);
    int64_t pid = sqlite3_column_int64(st, 1);
    column_copy(st, 2, host, sizeof host);
    double age = sqlite3_column_double(st, 3);
    int has_hash = sqlite3_column_type(st, 4) != SQLITE_NULL;
    column_copy(st, 4, hash, sizeof hash);
    column_copy(st, 5, why, sizeof why);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);

    long long id = (long long)run_id;
    if (strcmp(status, "finished") == 0)
        return orch_seterr(err, ORCH_EINVAL, "run %lld is finished; nothing to resume", id);
    if (strcmp(status, "diverged") == 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "run %lld diverged; resuming it with the same configuration and seed "
                           "would diverge again",
                           id);
    if (strcmp(status, "queued") == 0 && from_step >= 0)
        return orch_seterr(err, ORCH_EINVAL, "run %lld never started; nothing to resume", id);
    if (strcmp(status, "skipped") == 0) {
        char shown[256];
        store_sanitize(why[0] != '\0' ? why : "a dependency failed", shown, sizeof shown);
        return orch_seterr(err, ORCH_EINVAL, "run %lld was skipped: %s", id, shown);
    }
    if (strcmp(status, "running") == 0 &&
        !store_process_gone(host, pid, age, store_local_host(local, sizeof local)))
        return orch_seterr(err, ORCH_EINVAL,
                           "run %lld is still running (pid %lld on %s); stop it before resuming",
                           id, (long long)pid, host[0] != '\0' ? host : "an unknown host");
    if (has_hash && info->config_hash != NULL && strcmp(hash, info->config_hash) != 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "run %lld was made with configuration %.12s, not %.12s; a resumed run "
                           "must continue the same configuration",
                           id, hash, info->config_hash);
    return ORCH_OK;
}

typedef struct resume_args {
    int64_t run_id;
    const orch_run_info *info;
    int64_t from_step;
} resume_args;

static int resume_body(orch_store *s, void *arg, orch_err *err)
{
    const resume_args *a = arg;
    store_sink *k = &s->sink;
    sqlite3_stmt *st = k->resume_set;
    int rc = check_resumable(s, a->run_id, a->info, a->from_step, err);
    if (rc != ORCH_OK)
        return rc;
    int b = SQLITE_OK;
    b |= sqlite3_bind_int64(st, 1, a->run_id);
    b |= a->info->pid > 0 ? sqlite3_bind_int64(st, 2, a->info->pid) : sqlite3_bind_null(st, 2);
    b |= sqlite3_bind_text(st, 3, a->info->host, -1, SQLITE_STATIC);
    b |= sqlite3_bind_text(st, 4, a->info->orch_version, -1, SQLITE_STATIC);
    b |= bind_kernels(st, 5, a->info); /* the kernels that compute from here on */
    b |= sqlite3_bind_text(st, 9, a->info->data_hash, -1, SQLITE_STATIC); /* and their data */
    rc = run_stmt(s, st, b, "store: taking over the run", err);
    for (size_t i = 0; i < sizeof k->resume_del / sizeof k->resume_del[0] && rc == ORCH_OK; i++) {
        sqlite3_stmt *del = k->resume_del[i];
        rc = run_stmt(s, del,
                      sqlite3_bind_int64(del, 1, a->run_id) |
                          sqlite3_bind_int64(del, 2, a->from_step),
                      "store: deleting what the resumed run records again", err);
    }
    for (size_t i = 0; i < sizeof k->resume_clear / sizeof k->resume_clear[0] && rc == ORCH_OK; i++)
        rc = run_stmt(s, k->resume_clear[i], sqlite3_bind_int64(k->resume_clear[i], 1, a->run_id),
                      "store: deleting the data the resumed run records again", err);
    return rc;
}

static int sink_resume_run(void *ctx, int64_t run_id, const orch_run_resume *rec, orch_err *err)
{
    orch_store *s = ctx;
    store_sink *k = &s->sink;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: resume_run without run info");
    const orch_run_info *info = &rec->info;
    int64_t from_step = rec->from_step;
    if (from_step < -1)
        return orch_seterr(err, ORCH_EINVAL,
                           "store: resume_run from step %lld (the last kept step, or -1 for none)",
                           (long long)from_step);
    int rc = live_reserve(k, err);
    if (rc != ORCH_OK)
        return rc;
    resume_args a = {run_id, info, from_step};
    rc = txn_run(s, STORE_FLUSH_WAIT, resume_body, &a, err);
    if (rc == ORCH_OK) {
        live_add(k, run_id);
        if (k->last_nan_run == run_id)
            k->last_nan_run = 0; /* its first NaN event may have been deleted */
    }
    return rc;
}

/* -------------------------------------------------------------- setup */

static int sink_prepare(orch_store *s, orch_err *err)
{
    store_sink *k = &s->sink;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } list[] = {
        {&k->insert_run, sql_insert_run},
        {&k->insert_step, sql_insert_step},
        {&k->insert_metric, sql_insert_metric},
        {&k->insert_nan, sql_insert_nan},
        {&k->end_run, sql_end_run},
        {&k->has_nan, sql_has_nan},
        {&k->begin, "BEGIN IMMEDIATE"},
        {&k->commit, "COMMIT"},
        {&k->rollback, "ROLLBACK"},
        {&k->insert_stage, sql_insert_stage},
        {&k->insert_artifact, sql_insert_artifact},
        {&k->heartbeat, sql_heartbeat},
        {&k->resume_get, sql_resume_get},
        {&k->resume_set, sql_resume_set},
        {&k->resume_del[0], sql_resume_del[0]},
        {&k->resume_del[1], sql_resume_del[1]},
        {&k->resume_del[2], sql_resume_del[2]},
        {&k->resume_del[3], sql_resume_del[3]},
        {&k->resume_del[4], sql_resume_del[4]},
        {&k->resume_del[5], sql_resume_del[5]},
        {&k->insert_frozen, sql_insert_frozen},
        {&k->insert_cache_use, sql_insert_cache_use},
        {&k->insert_input, sql_insert_input},
        {&k->insert_class, sql_insert_class},
        {&k->resume_clear[0], sql_resume_clear[0]},
        {&k->resume_clear[1], sql_resume_clear[1]},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        int rc = store_prepare(s, list[i].sql, 1, list[i].st, err);
        if (rc != ORCH_OK) {
            store_sink_fini(k);
            return rc;
        }
    }
    return ORCH_OK;
}

/* ORCH_STORE_LOCK_LIMIT_S, when set: seconds, a finite decimal >= 0. */
static int lock_limit_from_env(double *limit_s, orch_err *err)
{
    const char *text = getenv(STORE_LOCK_LIMIT_ENV);
    if (text == NULL || text[0] == '\0')
        return ORCH_OK;
    char *end = NULL;
    double v = strtod(text, &end);
    if (*end != '\0' || !isfinite(v) || v < 0)
        return orch_seterr(err, ORCH_EINVAL, "%s='%s' is not a number of seconds (a decimal >= 0)",
                           STORE_LOCK_LIMIT_ENV, text);
    *limit_s = v;
    return ORCH_OK;
}

int store_sink_ready(orch_store *s, orch_err *err)
{
    if (s->mode != ORCH_STORE_READWRITE)
        return orch_seterr(err, ORCH_EINVAL, "store: %s is open read-only; it cannot record runs",
                           s->path);
    if (!s->sink_ready) {
        double limit_s = STORE_LOCK_LIMIT_S;
        int rc = lock_limit_from_env(&limit_s, err);
        if (rc == ORCH_OK)
            rc = sink_prepare(s, err);
        if (rc != ORCH_OK)
            return rc;
        store_sink *k = &s->sink;
        k->lock_limit_ms = limit_s * 1e3;
        k->max_recs = STORE_MAX_PENDING_RECORDS;
        k->backoff_ms = STORE_LOCK_BACKOFF_MIN_MS;
        k->now_ms = monotonic_ms;
        k->sleep_ms = nap_ms;
        k->clock_ctx = NULL;
        s->sink_ready = 1;
    }
    return ORCH_OK;
}

int store_sink_txn(orch_store *s, store_txn_body body, void *arg, orch_err *err)
{
    int rc = store_sink_ready(s, err);
    /* Pending records first, on their own: a body that refuses (rolls back)
     * must not take a live run's records with it. */
    if (rc == ORCH_OK)
        rc = store_sink_flush(s, STORE_FLUSH_WAIT, err);
    if (rc == ORCH_OK)
        rc = txn_run(s, STORE_FLUSH_WAIT, body, arg, err);
    return rc;
}

int orch_store_sink(orch_store *s, orch_sink *out, orch_err *err)
{
    if (s == NULL || out == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: no store for the sink");
    int rc = store_sink_ready(s, err);
    if (rc != ORCH_OK)
        return rc;
    out->ctx = s;
    out->begin_run = sink_begin_run;
    out->step = sink_step;
    out->metric = sink_metric;
    out->nan_event = sink_nan_event;
    out->flush = sink_flush;
    out->end_run = sink_end_run;
    out->stage_stat = sink_stage_stat;
    out->artifact = sink_artifact;
    out->resume_run = sink_resume_run;
    out->frozen_change = sink_frozen_change;
    out->cache_use = sink_cache_use;
    out->input = sink_input;
    out->run_class = sink_run_class;
    out->source_file = orch_store_sink_source_file; /* store/bundle_sources.c */
    return ORCH_OK;
}

void store_sink_fini(store_sink *k)
{
    sqlite3_stmt **all[] = {
        &k->insert_run,      &k->insert_step,      &k->insert_metric,   &k->insert_nan,
        &k->end_run,         &k->has_nan,          &k->begin,           &k->commit,
        &k->rollback,        &k->insert_stage,     &k->insert_artifact, &k->heartbeat,
        &k->resume_get,      &k->resume_set,       &k->resume_del[0],   &k->resume_del[1],
        &k->resume_del[2],   &k->resume_del[3],    &k->resume_del[4],   &k->resume_del[5],
        &k->insert_frozen,   &k->insert_cache_use, &k->insert_input,    &k->insert_class,
        &k->resume_clear[0], &k->resume_clear[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
    free(k->recs);
    free(k->pool);
    free(k->live);
    k->recs = NULL;
    k->pool = NULL;
    k->live = NULL;
    k->n_live = k->cap_live = 0;
    k->n_recs = k->cap_recs = 0;
    k->pool_len = k->pool_cap = 0;
}
