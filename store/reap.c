/*
 * reap.c - runs left 'running' by a process that no longer exists.
 *
 * A run whose process was killed (SIGKILL, a crash, a power cut) cannot
 * close itself: its row stays 'running' with the steps committed so far.
 * The next orch command that opens the store looks for such runs and marks
 * them 'interrupted' (ORCH_STORE_STALE_S gives the rule: the pid on this
 * host, the heartbeat elsewhere), printing one note per run, so a run is
 * never shown as running when nothing runs it.
 *
 * The search reads without a lock; the write lock is taken only when a run
 * is to be marked, and the UPDATE re-checks that the run is still the same
 * (status, pid, heartbeat), so a run resumed or finished meanwhile is left
 * alone.
 */
#include "store/store_int.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static const char sql_running[] =
    "SELECT r.id, r.name, r.pid, r.host, " STORE_AGE_SQL ", r.heartbeat_at "
    "FROM runs r WHERE r.status = 'running' ORDER BY r.id";
static const char sql_mark[] =
    "UPDATE runs SET status = 'interrupted', finished_at = " NOW_SQL ", error = ?2 "
    "WHERE id = ?1 AND status = 'running' AND pid IS ?3 AND heartbeat_at IS ?4";

char *store_local_host(char *buf, size_t n)
{
    if (n == 0)
        return buf;
    if (gethostname(buf, n) != 0)
        buf[0] = '\0';
    buf[n - 1] = '\0';
    return buf;
}

int store_process_gone(const char *host, int64_t pid, double age_s, const char *local_host)
{
    int here = pid > 0 && host != NULL && host[0] != '\0' && local_host != NULL &&
               strcmp(host, local_host) == 0;
    if (here) {
        if (pid > INT_MAX)
            return 1; /* no such pid_t on this machine */
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    }
    return age_s > ORCH_STORE_STALE_S;
}

/* A run to mark: what the UPDATE re-checks and what the note says. */
typedef struct stale_run {
    int64_t id;
    int64_t pid;    /* 0: none recorded */
    int local;      /* on this host: gone by its pid, not by its heartbeat */
    char name[128]; /* truncated for the note */
    char host[256]; /* "" when none recorded */
    char beat[64];  /* heartbeat_at as stored */
    int has_beat;
    int marked;
} stale_run;

static void copy_text(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(buf, n, "%s", t != NULL ? (const char *)t : "");
}

/* Collects the running runs whose process is gone into *out (*n of them). */
static int find_stale(orch_store *s, stale_run **out, size_t *n, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    char local[256];
    size_t cap = 0;
    int src;
    store_local_host(local, sizeof local);
    int rc = store_prepare(s, sql_running, 0, &st, err);
    if (rc != ORCH_OK)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t pid = sqlite3_column_int64(st, 2); /* NULL reads as 0 */
        const unsigned char *host = sqlite3_column_text(st, 3);
        double age = sqlite3_column_double(st, 4);
        if (!store_process_gone((const char *)host, pid, age, local))
            continue;
        if (*n == cap) {
            size_t c = cap ? 2 * cap : 4;
            stale_run *r = realloc(*out, c * sizeof *r);
            if (r == NULL) {
                rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
                goto out;
            }
            *out = r;
            cap = c;
        }
        stale_run *r = &(*out)[(*n)++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        r->pid = pid;
        copy_text(st, 1, r->name, sizeof r->name);
        copy_text(st, 3, r->host, sizeof r->host);
        r->local = pid > 0 && r->host[0] != '\0' && strcmp(r->host, local) == 0;
        r->has_beat = sqlite3_column_type(st, 5) != SQLITE_NULL;
        copy_text(st, 5, r->beat, sizeof r->beat);
    }
    if (src != SQLITE_DONE)
        rc = store_dberr(s, src, "store: looking for runs left running", err);
out:
    sqlite3_finalize(st);
    return rc;
}

/* "pid 1234 on vm", "a process on vm", "pid 1234 on an unknown host". */
static void who(const stale_run *r, char *buf, size_t n)
{
    const char *host = r->host[0] != '\0' ? r->host : "an unknown host";
    if (r->pid > 0)
        snprintf(buf, n, "pid %lld on %s", (long long)r->pid, host);
    else
        snprintf(buf, n, "a process on %s", host);
}

/* Marks one run inside the open transaction; r->marked says whether it was
 * still the run that was found. */
static int mark(orch_store *s, sqlite3_stmt *st, stale_run *r, orch_err *err)
{
    char msg[600], since[80];
    const char *host = r->host[0] != '\0' ? r->host : "an unknown host";
    since[0] = '\0';
    if (!r->local)
        snprintf(since, sizeof since, " (no heartbeat for %d minutes)", ORCH_STORE_STALE_S / 60);
    if (r->pid > 0)
        snprintf(msg, sizeof msg, "process %lld on %s ended without closing the run%s",
                 (long long)r->pid, host, since);
    else
        snprintf(msg, sizeof msg, "the process on %s ended without closing the run%s", host, since);
    int b = sqlite3_bind_int64(st, 1, r->id);
    b |= sqlite3_bind_text(st, 2, msg, -1, SQLITE_STATIC);
    b |= r->pid > 0 ? sqlite3_bind_int64(st, 3, r->pid) : sqlite3_bind_null(st, 3);
    b |= r->has_beat ? sqlite3_bind_text(st, 4, r->beat, -1, SQLITE_STATIC)
                     : sqlite3_bind_null(st, 4);
    int src = b == SQLITE_OK ? sqlite3_step(st) : sqlite3_errcode(s->db);
    int rc = src == SQLITE_DONE ? ORCH_OK : store_dberr(s, src, "store: marking a run", err);
    if (rc == ORCH_OK)
        r->marked = sqlite3_changes(s->db) == 1;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* The note on a marked run. Names and hosts are whatever was stored: no
 * control character of theirs reaches the terminal. */
static void print_note(const stale_run *r, FILE *notes)
{
    char w[300];
    if (notes == NULL)
        return;
    stale_run shown = *r;
    store_sanitize(r->name, shown.name, sizeof shown.name);
    store_sanitize(r->host, shown.host, sizeof shown.host);
    store_sanitize(r->beat, shown.beat, sizeof shown.beat);
    who(&shown, w, sizeof w);
    if (shown.local)
        fprintf(notes,
                "orch: run %lld (%s) was left running by %s, which is gone: marked "
                "interrupted\n",
                (long long)shown.id, shown.name, w);
    else
        fprintf(notes,
                "orch: run %lld (%s) was left running by %s, silent for over %d minutes "
                "(last heartbeat %s): marked interrupted\n",
                (long long)shown.id, shown.name, w, ORCH_STORE_STALE_S / 60,
                shown.has_beat ? shown.beat : "never");
}

int orch_store_reap(orch_store *s, FILE *notes, orch_err *err)
{
    stale_run *runs = NULL;
    size_t n = 0;
    sqlite3_stmt *upd = NULL;
    int in_txn = 0;
    int rc = ORCH_OK;
    if (s == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: no store to reap");
    if (s->mode != ORCH_STORE_READWRITE)
        return orch_seterr(err, ORCH_EINVAL, "store: %s is open read-only; runs cannot be marked",
                           s->path);
    rc = find_stale(s, &runs, &n, err);
    if (rc != ORCH_OK || n == 0)
        goto out;
    rc = store_prepare(s, sql_mark, 0, &upd, err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "BEGIN IMMEDIATE", err);
    if (rc != ORCH_OK)
        goto out;
    in_txn = 1;
    for (size_t i = 0; i < n && rc == ORCH_OK; i++)
        rc = mark(s, upd, &runs[i], err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "COMMIT", err);
    if (rc != ORCH_OK)
        goto out;
    in_txn = 0;
    for (size_t i = 0; i < n; i++) {
        if (!runs[i].marked)
            continue;
        print_note(&runs[i], notes);
        /* its process is gone: what a killed checkpoint write left goes */
        orch_store_clean_tmp(s, runs[i].id, notes);
    }
    if (notes != NULL)
        fflush(notes);
out:
    if (in_txn)
        store_exec(s, "ROLLBACK", NULL);
    sqlite3_finalize(upd);
    free(runs);
    return rc;
}

int orch_store_reap_path(const char *path, FILE *notes, orch_err *err)
{
    orch_store *s = NULL;
    int rc = store_open_existing(path, &s, err);
    if (rc != ORCH_OK || s == NULL)
        return rc;
    rc = orch_store_reap(s, notes, err);
    orch_store_close(s);
    return rc;
}
