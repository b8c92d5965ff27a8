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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void (*store_create_hook)(const char *path, void *ctx);
void *store_create_hook_ctx;

/* ----------------------------------------------------------- errors */

/* Every message names the store: "database disk image is malformed" alone
 * does not say which file of several is damaged. */
static int db_error(sqlite3 *db, const char *path, int rc, const char *what, orch_err *err)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB)
        return orch_seterr(err, ORCH_EINVAL, "%s is not an orch store: %s", path, msg);
    if ((rc & 0xff) == SQLITE_NOMEM)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", what);
    return orch_seterr(err, ORCH_EDB, "%s: %s: %s", path, what, msg);
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
    int64_t fk_was = 0, fk_broken = 0;
    char sql[128];
    int rc = read_identity(db, path, &id, err);
    if (rc != ORCH_OK)
        goto out;
    if (id.version == n_migrations && id.app_id == ORCH_STORE_APPLICATION_ID)
        goto out; /* the common case: nothing to do, no write lock taken */
    rc = check_identity(db, path, &id, n_migrations, err);
    if (rc != ORCH_OK)
        goto out;

    /* A migration may rebuild a table (DROP, then RENAME of a copy): with
     * foreign keys on, the DROP would cascade into every table that points
     * at it. They are off for the migration (the pragma is a no-op inside a
     * transaction, hence here) and checked before the COMMIT. */
    rc = read_pragma_int(db, path, "PRAGMA foreign_keys", &fk_was, err);
    if (rc != ORCH_OK)
        goto out;
    sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
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
    rc =
        read_pragma_int(db, path, "SELECT count(*) FROM pragma_foreign_key_check", &fk_broken, err);
    if (rc != ORCH_OK)
        goto out;
    if (fk_broken > 0) {
        rc = orch_seterr(err, ORCH_EDB,
                         "store %s: migrating to schema version %d would leave %lld rows "
                         "pointing at nothing",
                         path, n_migrations, (long long)fk_broken);
        goto out;
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
    if (fk_was)
        sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
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

static int setup_readwrite(orch_store *s, orch_err *err)
{
    identity id = {0, 0};
    int rc = read_identity(s->db, s->path, &id, err);
    if (rc == ORCH_OK)
        rc = check_identity(s->db, s->path, &id, store_n_migrations, err);
    /* journal_mode answers with the mode it got: "memory" for ":memory:", and
     * "delete" where the file system cannot share memory; both still work. */
    if (rc == ORCH_OK)
        rc = store_exec(s, "PRAGMA journal_mode = WAL", err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "PRAGMA synchronous = NORMAL", err);
    /* store_migrate runs with foreign keys off (a table rebuild must not
     * cascade), so they are turned on after it. */
    if (rc == ORCH_OK)
        rc = store_migrate(s->db, s->path, store_migrations, store_n_migrations, err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "PRAGMA foreign_keys = ON", err);
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

/* Catches the path problems SQLite reports badly ("unable to open database
 * file") before it sees them. *missing is set when a read-write open finds
 * no file (it is then created by create_store). */
static int check_path(const char *path, orch_store_mode mode, int *missing, orch_err *err)
{
    struct stat sb;
    int memory = strcmp(path, ":memory:") == 0;
    *missing = 0;
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
    else if (access(dir, W_OK | X_OK) != 0)
        rc = orch_seterr(err, ORCH_EINVAL, "cannot create store %s: directory %s: %s", path, dir,
                         strerror(errno));
    free(dir);
    *missing = rc == ORCH_OK;
    return rc;
}

/* Removes a temporary store and the -wal, -shm and -journal files SQLite
 * may have left beside it. */
static void remove_db_files(const char *path)
{
    static const char *const sides[] = {"", "-wal", "-shm", "-journal"};
    char buf[4096];
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", path, sides[i]);
        unlink(buf);
    }
}

/* Puts tmp at path unless path exists (then another process created the
 * store first, and that one is used). Never replaces a file. */
static int publish(const char *tmp, const char *path)
{
    if (link(tmp, path) == 0 || errno == EEXIST)
        return 0;
    /* file systems without hard links */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* Creates the store at path atomically for readers: the store is made and
 * fully migrated in a temporary file beside path, closed (so its WAL is
 * checkpointed into it), then linked into place without replacing
 * anything. A reader sees either no file ("no store at PATH") or a
 * complete store, never an empty or half-migrated one. */
static int create_store(const char *path, orch_err *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    snprintf(tmp, n, "%s.new-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = orch_seterr(err, ORCH_EINVAL, "cannot create store %s: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    /* mkstemp makes 0600; a store gets what SQLite would give it */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    close(fd);

    orch_store *s = calloc(1, sizeof *s);
    int rc = ORCH_OK;
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
        goto out;
    }
    s->mode = ORCH_STORE_READWRITE;
    int src = sqlite3_open_v2(tmp, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE, NULL);
    if (src != SQLITE_OK) {
        rc = db_error(s->db, path, src, "cannot create store", err);
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = setup_readwrite(s, err);
    if (rc != ORCH_OK)
        goto out;
    /* the WAL goes into the file now: -wal and -shm are named after tmp */
    src = sqlite3_close(s->db);
    s->db = NULL;
    if (src != SQLITE_OK) {
        rc = db_error(NULL, path, src, "creating the store", err);
        goto out;
    }
    if (store_create_hook != NULL)
        store_create_hook(path, store_create_hook_ctx);
    if (publish(tmp, path) != 0)
        rc = orch_seterr(err, ORCH_EIO, "cannot create store %s: %s", path, strerror(errno));
out:
    orch_store_close(s);
    remove_db_files(tmp);
    free(tmp);
    return rc;
}

/* A read-only open of a WAL store needs its -shm file, which SQLite
 * creates when missing. In a directory we cannot write that fails; when no
 * -wal file exists either, nothing is pending outside the main file, so it
 * is opened immutable ("file:PATH?immutable=1"), which needs neither. The
 * URI is malloc'd into *uri; NULL when the plain path will do. */
int store_readonly_uri(const char *path, char **uri, orch_err *err)
{
    *uri = NULL;
    char *dir = dir_of(path);
    if (dir == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    int dir_writable = access(dir, W_OK | X_OK) == 0;
    free(dir);
    size_t n = strlen(path);
    char *wal = malloc(n + 5);
    if (wal == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    snprintf(wal, n + 5, "%s-wal", path);
    int has_wal = access(wal, F_OK) == 0;
    free(wal);
    if (dir_writable || has_wal)
        return ORCH_OK;
    /* "file:" + path with %, ?, # escaped + "?immutable=1" */
    char *u = malloc(3 * n + 32);
    if (u == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
    char *p = u + sprintf(u, "file:");
    for (const char *c = path; *c != '\0'; c++) {
        if (*c == '%' || *c == '?' || *c == '#')
            p += sprintf(p, "%%%02X", (unsigned char)*c);
        else
            *p++ = *c;
    }
    strcpy(p, "?immutable=1");
    *uri = u;
    return ORCH_OK;
}

int orch_store_open(const char *path, orch_store_mode mode, orch_store **out, orch_err *err)
{
    orch_store *s = NULL;
    char *uri = NULL;
    int missing = 0;
    int rc = ORCH_OK;
    int flags = SQLITE_OPEN_EXRESCODE |
                (mode == ORCH_STORE_READONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
    if (out != NULL)
        *out = NULL;
    if (path == NULL || path[0] == '\0' || out == NULL ||
        (mode != ORCH_STORE_READWRITE && mode != ORCH_STORE_READONLY))
        return orch_seterr(err, ORCH_EINVAL, "store: no path given");
    rc = check_path(path, mode, &missing, err);
    if (rc == ORCH_OK && missing)
        rc = create_store(path, err);
    if (rc == ORCH_OK && mode == ORCH_STORE_READONLY)
        rc = store_readonly_uri(path, &uri, err);
    if (rc != ORCH_OK)
        goto out;
    if (strcmp(path, ":memory:") == 0)
        flags |= SQLITE_OPEN_CREATE;
    if (uri != NULL)
        flags |= SQLITE_OPEN_URI;
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
        goto out;
    }
    s->mode = mode;
    s->created = missing;
    /* No SQLITE_OPEN_CREATE for a file: create_store made it, and one that
     * vanished since is reported, not silently made again empty. */
    int src = sqlite3_open_v2(uri != NULL ? uri : path, &s->db, flags, NULL);
    if (src != SQLITE_OK) {
        rc = db_error(s->db, path, src, "cannot open store", err);
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    rc = mode == ORCH_STORE_READONLY ? setup_readonly(s, err) : setup_readwrite(s, err);
out:
    free(uri);
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

void orch_store_close_unused(orch_store *s)
{
    if (s == NULL || !s->created || s->mode != ORCH_STORE_READWRITE) {
        orch_store_close(s);
        return;
    }
    int64_t used = 1;
    orch_err quiet = {0};
    /* Under the write lock, so no other process adds a run meanwhile; a
     * run ever inserted leaves its id in sqlite_sequence. */
    if (store_exec(s, "BEGIN IMMEDIATE", &quiet) == ORCH_OK) {
        if (read_pragma_int(s->db, s->path,
                            "SELECT (SELECT count(*) FROM runs) + coalesce((SELECT seq FROM "
                            "sqlite_sequence WHERE name = 'runs'), 0)",
                            &used, &quiet) == ORCH_OK &&
            used == 0) {
            remove_db_files(s->path);
            /* and the folders beside it, if the command made them empty */
            char dir[STORE_PATH_MAX];
            if (store_features_dir(s, dir, sizeof dir) == 0)
                rmdir(dir);
            snprintf(dir, sizeof dir, "%s.runs", s->path);
            rmdir(dir);
        }
        store_exec(s, "ROLLBACK", NULL);
    }
    orch_store_close(s);
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
