/*
 * store.c - opening, identifying, migrating and closing the store; the
 * mapping of SQLite failures to orch statuses. See store.h.
 *
 * A read-write open sets the connection up for the run loop (WAL, NORMAL
 * sync, foreign keys, 5 s busy timeout) and migrates the schema. A read-only
 * open checks that the file is an orch store of this schema version and
 * installs the authorizer of guard.c; it never writes, except that SQLite may
 * create the -shm/-wal files of a WAL database that has none.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ----------------------------------------------------------- errors */

static int db_error(sqlite3 *db, const char *path, int rc, const char *what, orch_err *err)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB)
        return orch_seterr(err, ORCH_EINVAL, "%s is not an orch store: %s", path, msg);
    if ((rc & 0xff) == SQLITE_NOMEM)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", what);
    return orch_seterr(err, ORCH_EDB, "%s: %s", what, msg);
}

int store_dberr(orch_store *s, int rc, const char *what, orch_err *err)
{
    return db_error(s->db, s->path, rc, what, err);
}

int store_prepare(orch_store *s, const char *sql, int persistent, sqlite3_stmt **st, orch_err *err)
{
    s->guard.trusted = 1;
    int rc =
        sqlite3_prepare_v3(s->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, st, NULL);
    s->guard.trusted = 0;
    if (rc != SQLITE_OK)
        return store_dberr(s, rc, "store: preparing a statement", err);
    return ORCH_OK;
}

int store_exec(orch_store *s, const char *sql, orch_err *err)
{
    s->guard.trusted = 1;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    s->guard.trusted = 0;
    if (rc != SQLITE_OK)
        return store_dberr(s, rc, "store", err);
    return ORCH_OK;
}

/* -------------------------------------------------------- identity */

/* Reads one integer PRAGMA (application_id, user_version). */
static int read_pragma_int(sqlite3 *db, const char *path, const char *sql, int64_t *value,
                           orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = db_error(db, path, rc, "store: reading the schema version", err);
        goto out;
    }
    *value = sqlite3_column_int64(st, 0);
    rc = ORCH_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Counts the tables, views, indexes and triggers a user created. */
static int count_objects(sqlite3 *db, const char *path, int64_t *n, orch_err *err)
{
    return read_pragma_int(db, path,
                           "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' "
                           "ESCAPE '\\'",
                           n, err);
}

typedef struct identity {
    int64_t app_id;
    int64_t version;
} identity;

static int read_identity(sqlite3 *db, const char *path, identity *id, orch_err *err)
{
    int rc = read_pragma_int(db, path, "PRAGMA application_id", &id->app_id, err);
    if (rc == ORCH_OK)
        rc = read_pragma_int(db, path, "PRAGMA user_version", &id->version, err);
    return rc;
}

/* Refuses what is not (or not yet, or no longer) an orch store we may
 * touch; newest is the version this binary knows. */
static int check_identity(sqlite3 *db, const char *path, const identity *id, int newest,
                          orch_err *err)
{
    if (id->app_id != 0 && id->app_id != ORCH_STORE_APPLICATION_ID)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s is not an orch store (it is a SQLite database of another "
                           "application, application_id 0x%08llx)",
                           path, (unsigned long long)id->app_id);
    if (id->version > 0 && id->app_id == 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s is not an orch store (a SQLite database with user_version %lld "
                           "but no orch application_id)",
                           path, (long long)id->version);
    if (id->version > newest)
        return orch_seterr(err, ORCH_EINVAL,
                           "store %s has schema version %lld, newer than this orch knows (%d); "
                           "use the orch that wrote it, or a newer one",
                           path, (long long)id->version, newest);
    if (id->version == 0) {
        int64_t n = 0;
        int rc = count_objects(db, path, &n, err);
        if (rc != ORCH_OK)
            return rc;
        if (n > 0)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s is not an orch store (a SQLite database with %lld tables or "
                               "views of its own)",
                               path, (long long)n);
    }
    return ORCH_OK;
}

/* ------------------------------------------------------- migration */

int store_migrate(sqlite3 *db, const char *path, const char *const *migrations, int n_migrations,
                  orch_err *err)
{
    identity id = {0, 0};
    int in_txn = 0;
    int src = SQLITE_OK;
    char sql[128];
    int rc = read_identity(db, path, &id, err);
    if (rc != ORCH_OK)
        goto out;
    if (id.version == n_migrations && id.app_id == ORCH_STORE_APPLICATION_ID)
        goto out; /* the common case: nothing to do, no write lock taken */
    rc = check_identity(db, path, &id, n_migrations, err);
    if (rc != ORCH_OK)
        goto out;

    src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = db_error(db, path, src, "store: starting the migration", err);
        goto out;
    }
    in_txn = 1;
    /* Another process may have migrated while we waited for the lock. */
    rc = read_identity(db, path, &id, err);
    if (rc == ORCH_OK)
        rc = check_identity(db, path, &id, n_migrations, err);
    if (rc != ORCH_OK)
        goto out;
    for (int64_t v = id.version; v < n_migrations; v++) {
        src = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
        if (src != SQLITE_OK) {
            rc = orch_seterr(err, ORCH_EDB, "store %s: migrating to schema version %lld: %s", path,
                             (long long)(v + 1), sqlite3_errmsg(db));
            goto out;
        }
    }
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
             ORCH_STORE_APPLICATION_ID, n_migrations);
    src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = db_error(db, path, src, "store: finishing the migration", err);
        goto out;
    }
    in_txn = 0;
out:
    if (in_txn)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------ open */

/* The directory part of path ("." for a bare name), malloc'd; NULL when
 * out of memory. */
static char *dir_of(const char *path)
{
    size_t n = strlen(path);
    char *dir = malloc(n + 2);
    if (dir == NULL)
        return NULL;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return dir;
}

/* Catches the path problems SQLite reports badly ("unable to open database
 * file") before it sees them. */
static int check_path(const char *path, orch_store_mode mode, orch_err *err)
{
    struct stat sb;
    int memory = strcmp(path, ":memory:") == 0;
    if (mode == ORCH_STORE_READONLY) {
        if (memory)
            return orch_seterr(err, ORCH_EINVAL, "a read-only store needs a file, not %s", path);
        if (stat(path, &sb) != 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                return orch_seterr(err, ORCH_EINVAL,
                                   "no store at %s (run a pipeline first, or pass --db)", path);
            return orch_seterr(err, ORCH_EINVAL, "cannot read store %s: %s", path, strerror(errno));
        }
        if (S_ISDIR(sb.st_mode))
            return orch_seterr(err, ORCH_EINVAL, "%s is a directory, not a store", path);
        return ORCH_OK;
    }
    if (memory)
        return ORCH_OK;
    if (stat(path, &sb) == 0)
        return S_ISDIR(sb.st_mode)
                   ? orch_seterr(err, ORCH_EINVAL, "%s is a directory, not a store", path)
                   : ORCH_OK;
    char *dir = dir_of(path);
    if (dir == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    int rc = ORCH_OK;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        rc = orch_seterr(err, ORCH_EINVAL, "cannot create store %s: no directory %s", path, dir);
    free(dir);
    return rc;
}

static int setup_readwrite(orch_store *s, orch_err *err)
{
    /* journal_mode answers with the mode it got: "memory" for ":memory:", and
     * "delete" where the file system cannot share memory; both still work. */
    int rc = store_exec(s, "PRAGMA journal_mode = WAL", err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", err);
    if (rc == ORCH_OK)
        rc = store_migrate(s->db, s->path, store_migrations, store_n_migrations, err);
    return rc;
}

static int setup_readonly(orch_store *s, orch_err *err)
{
    identity id = {0, 0};
    int rc = ORCH_OK;
    /* Belt and braces besides SQLITE_OPEN_READONLY and the authorizer: no
     * schema tricks (DEFENSIVE), nothing to attach, and the query_only flag.
     * TRUSTED_SCHEMA stays on: SQLite 3.40 does not mark json_extract
     * innocuous, and run_summary needs it; functions called by views still
     * go through the authorizer. */
    if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK)
        return store_dberr(s, sqlite3_errcode(s->db), "store: configuring the connection", err);
    sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, 0);
    rc = store_exec(s, "PRAGMA query_only = 1", err);
    if (rc == ORCH_OK)
        rc = read_identity(s->db, s->path, &id, err);
    if (rc == ORCH_OK)
        rc = check_identity(s->db, s->path, &id, ORCH_STORE_SCHEMA_VERSION, err);
    if (rc != ORCH_OK)
        return rc;
    if (id.version == 0)
        return orch_seterr(err, ORCH_EINVAL, "%s is not an orch store (it has no orch schema)",
                           s->path);
    if (id.version < ORCH_STORE_SCHEMA_VERSION)
        return orch_seterr(err, ORCH_EINVAL,
                           "store %s has schema version %lld and needs migrating to %d: run a "
                           "pipeline with this orch once",
                           s->path, (long long)id.version, ORCH_STORE_SCHEMA_VERSION);
    sqlite3_set_authorizer(s->db, store_guard_authorize, &s->guard);
    return ORCH_OK;
}

int orch_store_open(const char *path, orch_store_mode mode, orch_store **out, orch_err *err)
{
    orch_store *s = NULL;
    int rc = ORCH_OK;
    int flags = SQLITE_OPEN_EXRESCODE |
                (mode == ORCH_STORE_READONLY ? SQLITE_OPEN_READONLY
                                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (out != NULL)
        *out = NULL;
    if (path == NULL || path[0] == '\0' || out == NULL ||
        (mode != ORCH_STORE_READWRITE && mode != ORCH_STORE_READONLY))
        return orch_seterr(err, ORCH_EINVAL, "store: no path given");
    rc = check_path(path, mode, err);
    if (rc != ORCH_OK)
        goto out;
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
        goto out;
    }
    s->mode = mode;
    int src = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = db_error(s->db, path, src, "cannot open store", err);
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    rc = mode == ORCH_STORE_READONLY ? setup_readonly(s, err) : setup_readwrite(s, err);
out:
    if (rc != ORCH_OK) {
        orch_store_close(s);
        return rc;
    }
    *out = s;
    return ORCH_OK;
}

/* May a writer use path: an existing regular file we can read and write,
 * in a directory where SQLite can make its -wal and -shm files? */
static int writable_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || access(path, R_OK | W_OK) != 0)
        return 0;
    char *dir = dir_of(path);
    int ok = dir != NULL && access(dir, W_OK | X_OK) == 0;
    free(dir);
    return ok;
}

int store_open_existing(const char *path, orch_store **out, orch_err *err)
{
    orch_store *s = NULL;
    identity id = {0, 0};
    orch_err quiet = {0};
    int rc = ORCH_OK;
    *out = NULL;
    if (path == NULL || path[0] == '\0' || strcmp(path, ":memory:") == 0 || !writable_file(path))
        return ORCH_OK;
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
        goto out;
    }
    s->mode = ORCH_STORE_READWRITE;
    /* No SQLITE_OPEN_CREATE: a file that vanished since the check stays gone. */
    int src = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE, NULL);
    if (src != SQLITE_OK)
        goto out; /* not ours to report: the command's own open will */
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    /* Not a database, another application's, another schema version: nothing
     * to do here. */
    if (read_identity(s->db, path, &id, &quiet) != ORCH_OK ||
        id.app_id != ORCH_STORE_APPLICATION_ID || id.version != ORCH_STORE_SCHEMA_VERSION)
        goto out;
    rc = store_exec(s, "PRAGMA foreign_keys = ON", err);
    if (rc != ORCH_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    orch_store_close(s);
    return rc;
}

void orch_store_close(orch_store *s)
{
    if (s == NULL)
        return;
    if (s->sink_ready && s->sink.n_recs > 0)
        store_sink_flush(s, STORE_FLUSH_BRIEF, NULL);
    store_sink_fini(&s->sink);
    sqlite3_close(s->db); /* NULL-safe; every statement is finalized by now */
    free(s->path);
    free(s);
}

const char *orch_store_path(const orch_store *s)
{
    return s != NULL ? s->path : NULL;
}
