/*
 * merge.c - `orch merge OTHER.db`: folding another store into this one
 * (store/sweeps.h, orch_store_merge).
 *
 * The other store is never written and may be of any schema version: it
 * is copied with SQLite's online backup (which includes a pending WAL) to
 * a temporary file beside the destination, the copy is migrated forward
 * by the same migrations a read-write open runs, and attached as
 * merge_src. Both sides then have the same tables and columns, and one
 * transaction of INSERT ... SELECT statements folds it in:
 *
 *   temp.merge_runs    (old_id, new_id, added): each run of the other
 *                      store and its id here; added when its uuid was new
 *   temp.merge_sweeps  likewise for sweeps, matched by (name, hash)
 *
 * Runs are inserted in the order of their old ids, so new ids keep their
 * relative order. Every other table that points at runs or sweeps (found
 * from the schema's foreign keys, so a table added by a later migration
 * is merged without a change here) is copied with those columns mapped,
 * for added runs only; its own INTEGER PRIMARY KEY id is renumbered.
 * artifacts.path goes through orch_merge_path: resolved against the other
 * store as it was recorded (orch_store_resolve_path), recorded again for
 * this store (store_record_path), so a checkpoint still opens.
 *
 * ATTACH is used here only, on a read-write connection; the read-only
 * authorizer of `orch query` is untouched.
 */
#include "store/bundle_int.h"
#include "store/store_int.h"
#include "store/sweeps.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SRC "merge_src"

/* ------------------------------------------------------------ checks */

/* Opens other_path read-only into *db (the caller closes it, also on
 * failure) and checks it is an orch store this orch can read; its schema
 * version into *version_out. */
static int open_other(const char *other_path, sqlite3 **db, orch_err *err, int64_t *version_out)
{
    char *uri = NULL;
    sqlite3_stmt *st = NULL;
    *db = NULL;
    int rc = store_readonly_uri(other_path, &uri, err);
    if (rc != ORCH_OK)
        return rc;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE | (uri != NULL ? SQLITE_OPEN_URI : 0);
    int src = sqlite3_open_v2(uri != NULL ? uri : other_path, db, flags, NULL);
    free(uri);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(*db,
                                 "SELECT (SELECT application_id FROM pragma_application_id),"
                                 " (SELECT user_version FROM pragma_user_version)",
                                 -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        const char *msg = *db != NULL ? sqlite3_errmsg(*db) : sqlite3_errstr(src);
        rc = (src & 0xff) == SQLITE_NOTADB
                 ? orch_seterr(err, ORCH_EINVAL, "merge: %s is not an orch store: %s", other_path,
                               msg)
                 : orch_seterr(err, ORCH_EINVAL, "merge: cannot read %s: %s", other_path, msg);
        sqlite3_finalize(st);
        return rc;
    }
    int64_t app_id = sqlite3_column_int64(st, 0), version = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (app_id != ORCH_STORE_APPLICATION_ID || version <= 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "merge: %s is not an orch store (application_id 0x%08llx, schema "
                           "version %lld)",
                           other_path, (unsigned long long)app_id, (long long)version);
    *version_out = version;
    if (version > ORCH_STORE_SCHEMA_VERSION)
        return orch_seterr(err, ORCH_EINVAL,
                           "merge: store %s has schema version %lld, newer than this orch knows "
                           "(%d); merge with the orch that wrote it, or a newer one",
                           other_path, (long long)version, ORCH_STORE_SCHEMA_VERSION);
    return ORCH_OK;
}

int orch_store_merge_check(const char *dest_path, const char *other_path, orch_err *err)
{
    struct stat so, sd;
    if (other_path == NULL || other_path[0] == '\0')
        return orch_seterr(err, ORCH_EINVAL, "merge: no store given");
    if (stat(other_path, &so) != 0)
        return orch_seterr(err, ORCH_EINVAL, "merge: no store at %s: %s", other_path,
                           strerror(errno));
    if (!S_ISREG(so.st_mode))
        return orch_seterr(err, ORCH_EINVAL, "merge: %s is not a file", other_path);
    if (dest_path != NULL && strcmp(dest_path, ":memory:") != 0 && stat(dest_path, &sd) == 0 &&
        sd.st_dev == so.st_dev && sd.st_ino == so.st_ino)
        return orch_seterr(err, ORCH_EINVAL, "merge: %s is the store itself (%s)", other_path,
                           dest_path);
    sqlite3 *db = NULL;
    int64_t version = 0;
    int rc = open_other(other_path, &db, err, &version);
    sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------- copy */

/* Removes a temporary database and what SQLite may have left beside it. */
static void remove_db(const char *path)
{
    static const char *const sides[] = {"", "-wal", "-shm", "-journal"};
    char buf[STORE_PATH_MAX + 64];
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", path, sides[i]);
        unlink(buf);
    }
}

/* A new empty file for the copy into tmp (n bytes): PATH.merge-XXXXXX
 * beside the destination (its directory is writable and has room for the
 * store), or in $TMPDIR for a store in memory. */
static int make_temp(const orch_store *s, char *tmp, size_t n, orch_err *err)
{
    int fit;
    if (strcmp(s->path, ":memory:") == 0) {
        const char *dir = getenv("TMPDIR");
        fit = (size_t)snprintf(tmp, n, "%s/orch-merge-XXXXXX",
                               dir != NULL && dir[0] != '\0' ? dir : "/tmp") < n;
    } else {
        fit = (size_t)snprintf(tmp, n, "%s.merge-XXXXXX", s->path) < n;
    }
    if (!fit)
        return orch_seterr(err, ORCH_EINVAL, "merge: path %s is too long", s->path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return orch_seterr(err, ORCH_EIO, "merge: cannot make a temporary copy %s: %s", tmp,
                           strerror(errno));
    close(fd);
    return ORCH_OK;
}

/* The schema version that gave every run a uuid. */
#define STORE_UUID_VERSION 5

/* orch_merge_uuid(key): a UUID made from key (XXH3 128 bits, as version 8,
 * RFC 9562's custom layout), so the same run of an old store gets the same
 * uuid at every merge. */
static void merge_uuid_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const void *key = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(key != NULL ? key : "", n));
    unsigned char *b = c.digest;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x80); /* version 8 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    char text[37];
    size_t at = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text[at++] = '-';
        at += (size_t)snprintf(text + at, sizeof text - at, "%02x", b[i]);
    }
    sqlite3_result_text(ctx, text, (int)at, SQLITE_TRANSIENT);
}

/* Runs of a store older than STORE_UUID_VERSION had no uuid; the migration
 * of the copy gave them random ones, which would make every merge of that
 * store add its runs again. They get uuids made from what identifies a run
 * there instead (its id and creation), the same at every merge. */
static const char sql_old_uuids[] =
    "UPDATE runs SET uuid = orch_merge_uuid('orch merge|' || id || '|' || created_at || '|' ||\n"
    "    pipeline || '|' || name || '|' || coalesce(config_hash, '') || '|' ||\n"
    "    coalesce(host, '') || '|' || coalesce(pid, ''))";

/* Copies the store at other_path to tmp and migrates the copy to this
 * schema version. */
static int copy_other(const char *other_path, const char *tmp, orch_err *err)
{
    sqlite3 *from = NULL, *to = NULL;
    int64_t version = 0;
    int rc = open_other(other_path, &from, err, &version);
    if (rc == ORCH_OK) {
        int src = sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE, NULL);
        sqlite3_backup *b = src == SQLITE_OK ? sqlite3_backup_init(to, "main", from, "main") : NULL;
        if (b != NULL) {
            src = sqlite3_backup_step(b, -1);
            int fin = sqlite3_backup_finish(b);
            if (src == SQLITE_DONE)
                src = fin;
        } else if (src == SQLITE_OK) {
            src = sqlite3_errcode(to);
        }
        if (src != SQLITE_OK)
            rc = orch_seterr(err, ORCH_EDB, "merge: copying %s: %s", other_path,
                             to != NULL ? sqlite3_errmsg(to) : sqlite3_errstr(src));
    }
    sqlite3_close(from);
    if (rc == ORCH_OK)
        rc = store_migrate(to, other_path, store_migrations, store_n_migrations, err);
    if (rc == ORCH_OK && version < STORE_UUID_VERSION) {
        int src =
            sqlite3_create_function_v2(to, "orch_merge_uuid", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                       NULL, merge_uuid_fn, NULL, NULL, NULL);
        if (src == SQLITE_OK)
            src = sqlite3_exec(to, sql_old_uuids, NULL, NULL, NULL);
        if (src != SQLITE_OK)
            rc = orch_seterr(err, ORCH_EDB, "merge: giving the runs of %s their uuids: %s",
                             other_path, sqlite3_errmsg(to));
    }
    if (to != NULL && sqlite3_close(to) != SQLITE_OK && rc == ORCH_OK)
        rc = orch_seterr(err, ORCH_EDB, "merge: closing the copy of %s", other_path);
    return rc;
}

/* ------------------------------------------------------------- text */

/* A growing SQL text. */
typedef struct sql_buf {
    char *s;
    size_t len, cap;
    int oom;
} sql_buf;

static void add(sql_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(sql_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s != NULL ? b->s + b->len : NULL, b->s != NULL ? b->cap - b->len : 0,
                          fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s != NULL && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? 2 * b->cap : 1024;
        while (cap < b->len + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* An identifier from the schema as a quoted SQL identifier. */
static void add_ident(sql_buf *b, const char *name)
{
    add(b, "\"");
    for (const char *c = name; *c != '\0'; c++) {
        if (*c == '"')
            add(b, "\"\"");
        else
            add(b, "%c", *c);
    }
    add(b, "\"");
}

/* --------------------------------------------------------- statements */

/* An artifact file moved into this store's run folder (import). */
typedef struct merge_move {
    char from[STORE_PATH_MAX], to[STORE_PATH_MAX];
} merge_move;

typedef struct merge_ctx {
    orch_store *s;
    orch_store other; /* only .path is set: what orch_store_resolve_path reads */
    int place;        /* artifacts of added runs move into PATH.runs/NEW_ID/ (orch import) */
    merge_move *moves;
    int n_moves, cap_moves;
    int n_done; /* moves made so far */
} merge_ctx;

/* Runs one statement of store/'s own; *changes (when not NULL) receives
 * the rows it changed. */
static int run(orch_store *s, const char *sql, int64_t *changes, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    if (rc == ORCH_OK) {
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE && src != SQLITE_ROW)
            rc = store_dberr(s, src, "merge", err);
        else if (changes != NULL)
            *changes = sqlite3_changes64(s->db);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The first column of the first row of sql as an integer. */
static int query_int(orch_store *s, const char *sql, int64_t *out, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    if (rc == ORCH_OK) {
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *out = sqlite3_column_int64(st, 0);
        else
            rc = store_dberr(s, src, "merge", err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* artifacts.path of the other store, recorded again for this one. */
static void merge_path_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    merge_ctx *m = sqlite3_user_data(ctx);
    char resolved[STORE_PATH_MAX], recorded[STORE_PATH_MAX];
    orch_err err = {0};
    (void)argc;
    const char *path = (const char *)sqlite3_value_text(argv[0]);
    if (path == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (orch_store_resolve_path(&m->other, path, resolved, sizeof resolved) != 0) {
        sqlite3_result_error(ctx, "an artifact path is too long", -1);
        return;
    }
    if (store_record_path(m->s, resolved, recorded, sizeof recorded, &err) != ORCH_OK) {
        sqlite3_result_error(ctx, err.msg, -1);
        return;
    }
    sqlite3_result_text(ctx, recorded, -1, SQLITE_TRANSIENT);
}

/* orch_merge_place(path, new_run_id): where an artifact of an imported
 * run lands, PATH.runs/NEW_ID/BASENAME, recorded for this store; the move
 * itself is made before the commit (merge_moves). */
static void merge_place_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    merge_ctx *m = sqlite3_user_data(ctx);
    char from[STORE_PATH_MAX], dir[STORE_PATH_MAX], recorded[STORE_PATH_MAX];
    orch_err err = {0};
    (void)argc;
    const char *path = (const char *)sqlite3_value_text(argv[0]);
    if (path == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    if (orch_store_resolve_path(&m->other, path, from, sizeof from) != 0 ||
        orch_store_run_dir(m->s, sqlite3_value_int64(argv[1]), dir, sizeof dir) != 0) {
        sqlite3_result_error(ctx, "an artifact path is too long (or the store is in memory)", -1);
        return;
    }
    if (m->n_moves == m->cap_moves) {
        int cap = m->cap_moves ? 2 * m->cap_moves : 8;
        merge_move *g = realloc(m->moves, sizeof *g * (size_t)cap);
        if (g == NULL) {
            sqlite3_result_error_nomem(ctx);
            return;
        }
        m->moves = g;
        m->cap_moves = cap;
    }
    merge_move *mv = &m->moves[m->n_moves];
    const char *base = strrchr(from, '/') != NULL ? strrchr(from, '/') + 1 : from;
    snprintf(mv->from, sizeof mv->from, "%s", from);
    if ((size_t)snprintf(mv->to, sizeof mv->to, "%s/%s", dir, base) >= sizeof mv->to ||
        store_record_path(m->s, mv->to, recorded, sizeof recorded, &err) != ORCH_OK) {
        sqlite3_result_error(ctx, err.msg[0] ? err.msg : "an artifact path is too long", -1);
        return;
    }
    m->n_moves++;
    /* the files that belong to it move with it: "STEM.*" beside it (a
     * checkpoint's optimizer state, core/checkpoint.h) */
    char stem[STORE_PATH_MAX], from_dir[STORE_PATH_MAX], name[STORE_PATH_MAX];
    snprintf(name, sizeof name, "%s", base);
    snprintf(stem, sizeof stem, "%s", base);
    snprintf(from_dir, sizeof from_dir, "%s", from);
    char *dot = strrchr(stem, '.'), *slash = strrchr(from_dir, '/');
    DIR *d = NULL;
    if (dot != NULL && slash != NULL) {
        dot[1] = '\0';
        *slash = '\0';
        d = opendir(from_dir);
    }
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, stem, strlen(stem)) != 0 || strcmp(de->d_name, name) == 0 ||
            strstr(de->d_name, ".tmp-") != NULL)
            continue;
        if (m->n_moves == m->cap_moves) {
            merge_move *g = realloc(m->moves, sizeof *g * (size_t)(2 * m->cap_moves));
            if (g == NULL) {
                closedir(d);
                sqlite3_result_error_nomem(ctx);
                return;
            }
            m->moves = g;
            m->cap_moves *= 2;
        }
        merge_move *side = &m->moves[m->n_moves];
        if ((size_t)snprintf(side->from, sizeof side->from, "%s/%s", from_dir, de->d_name) <
                sizeof side->from &&
            (size_t)snprintf(side->to, sizeof side->to, "%s/%s", dir, de->d_name) < sizeof side->to)
            m->n_moves++;
    }
    if (d != NULL)
        closedir(d);
    sqlite3_result_text(ctx, recorded, -1, SQLITE_TRANSIENT);
}

/* Makes the moves merge_place_fn planned; on failure undoes those made. */
static int merge_moves(merge_ctx *m, orch_err *err)
{
    char runs[STORE_PATH_MAX];
    snprintf(runs, sizeof runs, "%s.runs", m->s->path);
    mkdir(runs, 0755);
    for (; m->n_done < m->n_moves; m->n_done++) {
        merge_move *mv = &m->moves[m->n_done];
        char dir[STORE_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", mv->to);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        struct stat st;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return orch_seterr(err, ORCH_EIO, "import: cannot make %s: %s", dir, strerror(errno));
        if (lstat(mv->to, &st) == 0)
            return orch_seterr(err, ORCH_EIO, "import: %s exists already; nothing was imported",
                               mv->to);
        if (rename(mv->from, mv->to) != 0)
            return orch_seterr(err, ORCH_EIO, "import: cannot move %s to %s: %s", mv->from, mv->to,
                               strerror(errno));
    }
    return ORCH_OK;
}

/* Puts back what merge_moves moved (the transaction did not commit). */
static void merge_unmove(merge_ctx *m)
{
    for (int i = m->n_done - 1; i >= 0; i--) {
        rename(m->moves[i].to, m->moves[i].from);
        char dir[STORE_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", m->moves[i].to);
        char *slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            rmdir(dir); /* only when empty: a folder that was there keeps its files */
        }
    }
    m->n_done = 0;
}

/* One column of a table being copied. */
typedef struct column {
    char name[128];
    char maps[16]; /* "runs" or "sweeps" when a foreign key to it, else "" */
    int skip;      /* the table's INTEGER PRIMARY KEY: renumbered */
} column;

#define MAX_COLUMNS 64

/* The columns of main.table (generated ones excluded: they cannot be
 * inserted) that merge_src.table has too, with their foreign keys to runs
 * and sweeps and the renumbered id. */
static int table_columns(orch_store *s, const char *table, column *cols, int *n, orch_err *err)
{
    static const char sql[] =
        "SELECT c.name, coalesce((SELECT f.\"table\" FROM pragma_foreign_key_list(?1, 'main') f\n"
        "                          WHERE f.\"from\" = c.name AND f.\"table\" IN ('runs', "
        "'sweeps')),\n"
        "                         ''),\n"
        "       c.pk = 1 AND upper(c.type) = 'INTEGER'\n"
        "         AND (SELECT count(*) FROM pragma_table_info(?1, 'main') WHERE pk > 0) = 1\n"
        "  FROM pragma_table_xinfo(?1, 'main') c\n"
        " WHERE c.hidden = 0\n"
        "   AND c.name IN (SELECT name FROM pragma_table_info(?1, '" SRC "'))\n"
        " ORDER BY c.cid";
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    int src = SQLITE_OK;
    *n = 0;
    if (rc == ORCH_OK && sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "merge", err);
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == MAX_COLUMNS) {
            rc = orch_seterr(err, ORCH_EDB, "merge: table %s has too many columns", table);
            break;
        }
        column *c = &cols[(*n)++];
        snprintf(c->name, sizeof c->name, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(c->maps, sizeof c->maps, "%s", (const char *)sqlite3_column_text(st, 1));
        c->skip = sqlite3_column_int(st, 2);
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "merge: reading the schema", err);
    sqlite3_finalize(st);
    return rc;
}

/* INSERT INTO main.table (every column but the renumbered id) SELECT ...
 * FROM merge_src.table o, with columns pointing at runs or sweeps mapped
 * (rows of runs that were already present are left out), artifacts' paths
 * re-based; in the order of the old id when there is one. where, when not
 * NULL, is a further condition on o; *changes gets the rows inserted. */
static int copy_table(orch_store *s, const char *table, const char *or_what, const char *where,
                      int place, int64_t *changes, orch_err *err)
{
    column cols[MAX_COLUMNS];
    int n = 0;
    sql_buf b = {0};
    const char *id = NULL;
    int rc = table_columns(s, table, cols, &n, err);
    if (rc != ORCH_OK)
        return rc;
    add(&b, "INSERT %s INTO main.", or_what);
    add_ident(&b, table);
    add(&b, " (");
    for (int i = 0, k = 0; i < n; i++) {
        if (cols[i].skip) {
            id = cols[i].name;
            continue;
        }
        add(&b, k++ ? ", " : "");
        add_ident(&b, cols[i].name);
    }
    add(&b, ")\nSELECT ");
    for (int i = 0, k = 0; i < n; i++) {
        if (cols[i].skip)
            continue;
        add(&b, k++ ? ", " : "");
        if (cols[i].maps[0] != '\0')
            add(&b, "m%d.new_id", i);
        else if (strcmp(table, "artifacts") == 0 && strcmp(cols[i].name, "path") == 0 && place) {
            int run_col = -1;
            for (int j = 0; j < n; j++)
                if (strcmp(cols[j].maps, "runs") == 0)
                    run_col = j;
            add(&b, "orch_merge_place(o.path, m%d.new_id)", run_col);
        } else if (strcmp(table, "artifacts") == 0 && strcmp(cols[i].name, "path") == 0)
            add(&b, "orch_merge_path(o.path)");
        else {
            add(&b, "o.");
            add_ident(&b, cols[i].name);
        }
    }
    add(&b, "\n  FROM " SRC ".");
    add_ident(&b, table);
    add(&b, " o");
    for (int i = 0; i < n; i++) {
        if (cols[i].maps[0] == '\0')
            continue;
        add(&b, "\n  JOIN temp.merge_%s m%d ON m%d.old_id = o.", cols[i].maps, i, i);
        add_ident(&b, cols[i].name);
    }
    add(&b, "\n WHERE 1");
    for (int i = 0; i < n; i++)
        if (strcmp(cols[i].maps, "runs") == 0)
            add(&b, " AND m%d.added", i);
    if (where != NULL)
        add(&b, " AND (%s)", where);
    if (id != NULL) {
        add(&b, "\n ORDER BY o.");
        add_ident(&b, id);
    }
    if (b.oom)
        rc = orch_seterr(err, ORCH_ENOMEM, "merge: out of memory");
    else
        rc = run(s, b.s, changes, err);
    free(b.s);
    return rc;
}

/* The tables besides runs and sweeps that point at either. No table points
 * at one of them, so their own ids may be renumbered. */
int store_child_tables(orch_store *s, const char *parents, const char *excluded, const char *what,
                       char (*names)[128], int *n, int max, orch_err *err)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT DISTINCT m.name FROM main.sqlite_schema m, "
             "pragma_foreign_key_list(m.name, 'main') f\n"
             " WHERE m.type = 'table' AND f.\"table\" IN (%s)\n"
             "   AND m.name NOT IN (%s)\n"
             " ORDER BY m.name",
             parents, excluded);
    sqlite3_stmt *st = NULL;
    int src = SQLITE_OK;
    int rc = store_prepare(s, sql, 0, &st, err);
    *n = 0;
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == max) {
            rc = orch_seterr(err, ORCH_EDB, "%s: too many tables", what);
            break;
        }
        snprintf(names[(*n)++], 128, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    if (rc == ORCH_OK && src != SQLITE_DONE) {
        char context[64];
        snprintf(context, sizeof context, "%s: reading the schema", what);
        rc = store_dberr(s, src, context, err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* A point of a sweep that both stores ran (two jobs of the same sweep):
 * the merged run takes the point over when it finished or diverged and the
 * run linked here did neither (it is queued, running, interrupted, failed
 * or skipped), so the sweep shows the completed result. */
static const char sql_relink[] =
    "UPDATE main.sweep_runs AS d\n"
    "   SET run_id = x.run_id, rank = x.rank, host = x.host, attempts = x.attempts\n"
    "  FROM (SELECT ms.new_id AS sweep_id, o.point, mr.new_id AS run_id, o.rank, o.host,\n"
    "               o.attempts\n"
    "          FROM " SRC ".sweep_runs o\n"
    "          JOIN temp.merge_sweeps ms ON ms.old_id = o.sweep_id\n"
    "          JOIN temp.merge_runs mr ON mr.old_id = o.run_id AND mr.added\n"
    "          JOIN " SRC ".runs r ON r.id = o.run_id\n"
    "         WHERE r.status IN ('finished', 'diverged')) AS x\n"
    " WHERE d.sweep_id = x.sweep_id AND d.point = x.point\n"
    "   AND (SELECT status FROM main.runs WHERE id = d.run_id) NOT IN ('finished', 'diverged')";

/* Everything inside the transaction. */
static int fold(orch_store *s, int place, orch_merge_counts *counts, orch_err *err)
{
    int64_t changed = 0;
    int rc = ORCH_OK;
    /* runs: mapped by uuid; the new ones inserted in the order of their ids */
    if (rc == ORCH_OK)
        rc = run(s,
                 "CREATE TEMP TABLE merge_runs (old_id INTEGER PRIMARY KEY, new_id INTEGER, "
                 "added INTEGER NOT NULL)",
                 NULL, err);
    if (rc == ORCH_OK)
        rc = run(s,
                 "INSERT INTO temp.merge_runs SELECT o.id, m.id, m.id IS NULL FROM " SRC
                 ".runs o LEFT JOIN main.runs m ON m.uuid = o.uuid",
                 NULL, err);
    if (rc == ORCH_OK)
        rc = copy_table(s, "runs", "", "o.id IN (SELECT old_id FROM temp.merge_runs WHERE added)",
                        0, &counts->runs_added, err);
    if (rc == ORCH_OK)
        rc = run(s,
                 "UPDATE temp.merge_runs SET new_id = (SELECT m.id FROM main.runs m JOIN " SRC
                 ".runs o ON o.uuid = m.uuid WHERE o.id = merge_runs.old_id) WHERE added",
                 NULL, err);
    if (rc == ORCH_OK)
        rc = query_int(s, "SELECT count(*) FROM temp.merge_runs WHERE NOT added",
                       &counts->runs_present, err);
    /* sweeps: mapped by (name, hash) */
    if (rc == ORCH_OK)
        rc = run(s,
                 "CREATE TEMP TABLE merge_sweeps (old_id INTEGER PRIMARY KEY, new_id INTEGER, "
                 "added INTEGER NOT NULL)",
                 NULL, err);
    if (rc == ORCH_OK)
        rc = run(s,
                 "INSERT INTO temp.merge_sweeps SELECT o.id, m.id, m.id IS NULL FROM " SRC
                 ".sweeps o LEFT JOIN main.sweeps m ON m.name = o.name AND m.hash = o.hash",
                 NULL, err);
    if (rc == ORCH_OK)
        rc = copy_table(s, "sweeps", "",
                        "o.id IN (SELECT old_id FROM temp.merge_sweeps WHERE added)", 0,
                        &counts->sweeps_added, err);
    if (rc == ORCH_OK)
        rc = run(s,
                 "UPDATE temp.merge_sweeps SET new_id = (SELECT m.id FROM main.sweeps m JOIN " SRC
                 ".sweeps o ON o.name = m.name AND o.hash = m.hash WHERE o.id = "
                 "merge_sweeps.old_id) WHERE added",
                 NULL, err);
    if (rc == ORCH_OK)
        rc = query_int(s, "SELECT count(*) FROM temp.merge_sweeps WHERE NOT added",
                       &counts->sweeps_present, err);
    /* every table that points at runs or sweeps, for the added runs */
    /* the pipeline files of the added runs (content-addressed, no run id:
     * before run_sources, which points at them) */
    if (rc == ORCH_OK)
        rc = run(s,
                 "INSERT OR IGNORE INTO main.source_files (sha256, bytes, content)\n"
                 "SELECT f.sha256, f.bytes, f.content FROM " SRC ".source_files f\n"
                 " WHERE f.sha256 IN (SELECT r.sha256 FROM " SRC ".run_sources r\n"
                 "   JOIN temp.merge_runs m ON m.old_id = r.run_id AND m.added)",
                 NULL, err);
    char tables[32][128];
    int n_tables = 0;
    if (rc == ORCH_OK)
        rc = store_child_tables(s, "'runs', 'sweeps'", "'runs', 'sweeps'", "merge", tables,
                                &n_tables, 32, err);
    for (int t = 0; t < n_tables && rc == ORCH_OK; t++) {
        int links = strcmp(tables[t], "sweep_runs") == 0;
        if (links)
            rc = run(s, sql_relink, NULL, err);
        /* a point still linked to another run here keeps it; the merged run
         * stays in the store (orch runs), outside the sweep */
        if (rc == ORCH_OK)
            rc = copy_table(s, tables[t], links ? "OR IGNORE" : "", NULL, place, &changed, err);
    }
    return rc;
}

static int merge(orch_store *s, const char *other_path, int place, orch_merge_counts *counts,
                 int64_t *placed, orch_err *err);

int orch_store_merge(orch_store *s, const char *other_path, orch_merge_counts *counts,
                     orch_err *err)
{
    return merge(s, other_path, 0, counts, NULL, err);
}

int store_merge_placing(orch_store *s, const char *other_path, struct orch_merge_counts *counts,
                        int64_t *placed, orch_err *err)
{
    return merge(s, other_path, 1, counts, placed, err);
}

static int merge(orch_store *s, const char *other_path, int place, orch_merge_counts *counts,
                 int64_t *placed, orch_err *err)
{
    char tmp[STORE_PATH_MAX + 32];
    int attached = 0, in_txn = 0;
    merge_ctx m;
    orch_merge_counts c = {0, 0, 0, 0};
    if (counts != NULL)
        *counts = c;
    if (s == NULL || s->mode != ORCH_STORE_READWRITE)
        return orch_seterr(err, ORCH_EINVAL, "merge: the store must be opened read-write");
    int rc = orch_store_merge_check(s->path, other_path, err);
    if (rc != ORCH_OK)
        return rc;
    rc = make_temp(s, tmp, sizeof tmp, err);
    if (rc != ORCH_OK)
        return rc;
    rc = copy_other(other_path, tmp, err);

    memset(&m, 0, sizeof m);
    m.s = s;
    m.place = place;
    m.other.path = (char *)other_path; /* read only by orch_store_resolve_path */
    if (rc == ORCH_OK && sqlite3_create_function_v2(s->db, "orch_merge_path", 1, SQLITE_UTF8, &m,
                                                    merge_path_fn, NULL, NULL, NULL) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "merge", err);
    if (rc == ORCH_OK && place &&
        sqlite3_create_function_v2(s->db, "orch_merge_place", 2, SQLITE_UTF8, &m, merge_place_fn,
                                   NULL, NULL, NULL) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "merge", err);
    if (rc == ORCH_OK) {
        sqlite3_stmt *st = NULL;
        rc = store_prepare(s, "ATTACH ?1 AS " SRC, 0, &st, err);
        if (rc == ORCH_OK) {
            int src = sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC);
            if (src == SQLITE_OK)
                src = sqlite3_step(st);
            if (src != SQLITE_DONE)
                rc = store_dberr(s, src, "merge: attaching the copy", err);
            else
                attached = 1;
        }
        sqlite3_finalize(st);
    }
    if (rc == ORCH_OK && (rc = store_exec(s, "BEGIN IMMEDIATE", err)) == ORCH_OK)
        in_txn = 1;
    if (rc == ORCH_OK)
        rc = fold(s, place, &c, err);
    /* the files before the commit: a failed move rolls the rows back */
    if (rc == ORCH_OK && place)
        rc = merge_moves(&m, err);
    if (rc == ORCH_OK && (rc = store_exec(s, "COMMIT", err)) == ORCH_OK)
        in_txn = 0;
    if (in_txn) {
        store_exec(s, "ROLLBACK", NULL);
        merge_unmove(&m);
    }
    if (placed != NULL)
        *placed = rc == ORCH_OK ? m.n_done : 0;
    free(m.moves);
    /* the temp tables live on the connection: gone for the next merge */
    store_exec(s, "DROP TABLE IF EXISTS temp.merge_runs; DROP TABLE IF EXISTS temp.merge_sweeps",
               NULL);
    if (attached)
        store_exec(s, "DETACH " SRC, NULL);
    sqlite3_create_function_v2(s->db, "orch_merge_path", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL,
                               NULL);
    if (place)
        sqlite3_create_function_v2(s->db, "orch_merge_place", 2, SQLITE_UTF8, NULL, NULL, NULL,
                                   NULL, NULL);
    remove_db(tmp);
    if (rc == ORCH_OK && counts != NULL)
        *counts = c;
    return rc;
}
