/*
 * bundle_import.c - `orch import`: a bundle's runs into the store
 * (store/bundle.h).
 *
 * The bundle is staged (bundle_read.c: every member checked, nothing
 * written outside a private folder beside the store), its CSV rows are
 * loaded into a fresh store in that folder, and that store is folded into
 * this one by store/merge.c in one transaction keyed by run UUID, the
 * artifact files moving into this store's run folders before the commit.
 * So the logic that maps ids and skips runs already present is merge's,
 * written once; importing the same bundle twice adds nothing.
 */
#include "store/bundle_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Does table have a stored column named col? */
static int has_column(orch_store *s, const char *table, const char *col, int *yes, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    *yes = 0;
    int rc = store_prepare(s,
                           "SELECT 1 FROM pragma_table_xinfo(?1, 'main') WHERE name = ?2 "
                           "AND hidden = 0",
                           0, &st, err);
    if (rc == ORCH_OK) {
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *yes = 1;
        else if (src != SQLITE_DONE)
            rc = store_dberr(s, src, "import: reading the schema", err);
    }
    sqlite3_finalize(st);
    return rc;
}

static int bind_value(sqlite3_stmt *st, int i, const orch_value *v)
{
    switch (v->kind) {
    case ORCH_VALUE_INT:
        return sqlite3_bind_int64(st, i, v->i);
    case ORCH_VALUE_REAL:
        return sqlite3_bind_double(st, i, v->r);
    case ORCH_VALUE_TEXT:
        return sqlite3_bind_text64(st, i, v->s, v->n, SQLITE_STATIC, SQLITE_UTF8);
    case ORCH_VALUE_BLOB:
        return sqlite3_bind_blob64(st, i, v->s, v->n, SQLITE_STATIC);
    default:
        return sqlite3_bind_null(st, i);
    }
}

typedef struct loader {
    orch_store *tmp; /* the fresh store rows go into */
    const bundle_staged *b;
    const char *path; /* the bundle, for messages */
    const char *uuid;
    int64_t run_id; /* the run's id in its bundle (runs.csv) */
} loader;

/* A text cell, or NULL. */
static const char *text_cell(const orch_rowset *rows, size_t r, const char *col)
{
    int c = orch_rowset_column(rows, col);
    if (c < 0 || rows->cells[r * (size_t)rows->n_cols + (size_t)c].kind != ORCH_VALUE_TEXT)
        return NULL;
    return rows->cells[r * (size_t)rows->n_cols + (size_t)c].s;
}

/* run_sources row r: its file's content into source_files first. */
static int load_source(loader *L, const char *member, const orch_rowset *rows, size_t r,
                       orch_err *err)
{
    const char *path = text_cell(rows, r, "path"), *sha = text_cell(rows, r, "sha256");
    if (path == NULL || sha == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: row %zu: needs a path and a sha256", L->path,
                           member, r + 1);
    char rel[1024], name[1200];
    bundle_source_name(path, rel, sizeof rel);
    snprintf(name, sizeof name, "runs/%s/pipeline/%s", L->uuid, rel);
    const bundle_member *m = bundle_find(L->b, name);
    if (m == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: missing (run_sources lists %s)", L->path,
                           name, path);
    if (strcmp(m->sha256, sha) != 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: %s: its sha256 is not the one run_sources.csv records", L->path,
                           name);
    char *text = NULL;
    int rc = bundle_slurp(L->b, m, &text, err);
    sqlite3_stmt *st = NULL;
    if (rc == ORCH_OK)
        rc = store_prepare(L->tmp,
                           "INSERT OR IGNORE INTO source_files (sha256, bytes, content) "
                           "VALUES (?1, ?2, ?3)",
                           0, &st, err);
    if (rc == ORCH_OK) {
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, m->bytes);
        sqlite3_bind_blob64(st, 3, text, (sqlite3_uint64)m->bytes, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = store_dberr(L->tmp, src, "import: a pipeline file", err);
    }
    sqlite3_finalize(st);
    free(text);
    return rc;
}

/* Loads one CSV member into table. */
static int load_table(loader *L, const char *table, const bundle_member *m, orch_err *err)
{
    char *text = NULL;
    orch_rowset rows;
    memset(&rows, 0, sizeof rows);
    char label[1400];
    snprintf(label, sizeof label, "%s: %s", L->path, m->name);
    int rc = bundle_slurp(L->b, m, &text, err);
    if (rc == ORCH_OK)
        rc = bundle_csv_parse(label, text, (size_t)m->bytes, &rows, err);
    free(text);
    int is_runs = strcmp(table, "runs") == 0;
    int run_col = -1, path_col = -1;
    bundle_buf sql = {0};
    for (int c = 0; rc == ORCH_OK && c < rows.n_cols; c++) {
        int yes = 0;
        rc = has_column(L->tmp, table, rows.names[c], &yes, err);
        if (rc == ORCH_OK && !yes)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: no column %s in table %s", label,
                             rows.names[c], table);
        if (strcmp(rows.names[c], is_runs ? "id" : "run_id") == 0)
            run_col = c;
        if (!is_runs && strcmp(table, "artifacts") == 0 && strcmp(rows.names[c], "path") == 0)
            path_col = c;
    }
    if (rc == ORCH_OK && run_col < 0)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: no %s column", label,
                         is_runs ? "id" : "run_id");
    if (rc == ORCH_OK && is_runs && rows.n_rows != 1)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: %zu rows, one expected", label,
                         rows.n_rows);
    if (rc == ORCH_OK && is_runs) {
        const char *u = text_cell(&rows, 0, "uuid");
        const orch_value *id = &rows.cells[run_col];
        if (u == NULL || strcmp(u, L->uuid) != 0 || id->kind != ORCH_VALUE_INT)
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: malformed CSV: the run's uuid and integer id must match its "
                             "folder",
                             label);
        else
            L->run_id = id->i;
    }
    bundle_buf_str(&sql, "INSERT INTO \"");
    bundle_buf_str(&sql, table);
    bundle_buf_str(&sql, "\" (");
    for (int c = 0; c < rows.n_cols; c++) {
        bundle_buf_str(&sql, c ? ", \"" : "\"");
        bundle_buf_str(&sql, rows.names[c]); /* checked against the schema above */
        bundle_buf_str(&sql, "\"");
    }
    bundle_buf_str(&sql, ") VALUES (");
    for (int c = 0; c < rows.n_cols; c++)
        bundle_buf_str(&sql, c ? ", ?" : "?");
    bundle_buf_str(&sql, ")");
    sqlite3_stmt *st = NULL;
    if (rc == ORCH_OK && sql.oom)
        rc = orch_seterr(err, ORCH_ENOMEM, "import: out of memory");
    if (rc == ORCH_OK)
        rc = store_prepare(L->tmp, sql.s, 0, &st, err);
    free(sql.s);
    for (size_t r = 0; rc == ORCH_OK && r < rows.n_rows; r++) {
        const orch_value *row = &rows.cells[r * (size_t)rows.n_cols];
        if (row[run_col].kind != ORCH_VALUE_INT || row[run_col].i != L->run_id) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: row %zu belongs to another run",
                             label, r + 1);
            break;
        }
        if (strcmp(table, "run_sources") == 0 && (rc = load_source(L, m->name, &rows, r, err)))
            break;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        int b = SQLITE_OK;
        char staged[STORE_PATH_MAX + 80];
        for (int c = 0; c < rows.n_cols; c++) {
            if (c == path_col) {
                /* the artifact's file is the bundle's member, staged */
                const char *rec = row[c].kind == ORCH_VALUE_TEXT ? row[c].s : "";
                const char *base = strrchr(rec, '/') != NULL ? strrchr(rec, '/') + 1 : rec;
                char name[1200];
                snprintf(name, sizeof name, "runs/%s/artifacts/%s", L->uuid, base);
                const bundle_member *a = bundle_find(L->b, name);
                const char *sha = text_cell(&rows, r, "sha256");
                if (a == NULL || sha == NULL || strcmp(a->sha256, sha) != 0) {
                    rc = orch_seterr(err, ORCH_EINVAL,
                                     "%s: %s: missing, or not the file artifacts.csv records",
                                     L->path, name);
                    break;
                }
                /* moved to a folder of its own under its own name, relative to the
                 * fresh store in the staging folder: merge resolves it there and
                 * moves it into the run's folder with that name */
                if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
                    rc = orch_seterr(err, ORCH_EINVAL, "%s: malformed CSV: artifact path '%s'",
                                     label, rec);
                    break;
                }
                char from[STORE_PATH_MAX + 80], to[STORE_PATH_MAX * 3];
                snprintf(staged, sizeof staged, "a%lld", (long long)L->run_id);
                snprintf(to, sizeof to, "%s/%s", L->b->dir, staged);
                mkdir(to, 0700);
                snprintf(staged, sizeof staged, "a%lld/%s", (long long)L->run_id, base);
                snprintf(from, sizeof from, "%s/%s", L->b->dir, a->staged);
                snprintf(to, sizeof to, "%s/%s", L->b->dir, staged);
                if (rename(from, to) != 0) {
                    rc = orch_seterr(err, ORCH_EIO, "import: cannot stage %s: %s", name,
                                     strerror(errno));
                    break;
                }
                b |= sqlite3_bind_text(st, c + 1, staged, -1, SQLITE_TRANSIENT);
            } else {
                b |= bind_value(st, c + 1, &row[c]);
            }
        }
        if (rc != ORCH_OK)
            break;
        int src = b == SQLITE_OK ? sqlite3_step(st) : b;
        if (src != SQLITE_DONE)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: row %zu cannot be stored: %s", label, r + 1,
                             sqlite3_errmsg(L->tmp->db));
    }
    sqlite3_finalize(st);
    orch_rowset_free(&rows);
    return rc;
}

/* Every rows/NAME.csv of one run into the fresh store: runs.csv first. */
static int load_run(loader *L, orch_err *err)
{
    char prefix[128], name[8400];
    snprintf(prefix, sizeof prefix, "runs/%s/", L->uuid);
    snprintf(name, sizeof name, "%srows/runs.csv", prefix);
    const bundle_member *m = bundle_find(L->b, name);
    if (m == NULL ||
        bundle_find(L->b, (snprintf(name, sizeof name, "%sconfig.json", prefix), name)) == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: run %s: rows/runs.csv or config.json missing",
                           L->path, L->uuid);
    int rc = load_table(L, "runs", m, err);
    char tables[32][128];
    int n_tables = 0;
    if (rc == ORCH_OK)
        rc = bundle_run_tables(L->tmp, tables, &n_tables, 32, err);
    /* a CSV of a table this orch does not know is refused */
    for (int i = 0; rc == ORCH_OK && i < L->b->n; i++) {
        const char *nm = L->b->members[i].name;
        size_t pl = strlen(prefix);
        if (strncmp(nm, prefix, pl) != 0 || strncmp(nm + pl, "rows/", 5) != 0)
            continue;
        const char *t = nm + pl + 5;
        size_t tl = strlen(t);
        int known = strcmp(t, "runs.csv") == 0;
        for (int k = 0; !known && k < n_tables; k++)
            known = tl == strlen(tables[k]) + 4 && strncmp(t, tables[k], tl - 4) == 0 &&
                    strcmp(t + tl - 4, ".csv") == 0;
        if (!known)
            rc = orch_seterr(err, ORCH_EINVAL,
                             "%s: %s: a table this orch does not know (a newer orch wrote it?)",
                             L->path, nm);
    }
    for (int k = 0; rc == ORCH_OK && k < n_tables; k++) {
        snprintf(name, sizeof name, "%srows/%s.csv", prefix, tables[k]);
        m = bundle_find(L->b, name);
        if (m != NULL)
            rc = load_table(L, tables[k], m, err);
    }
    /* the artifact files no row names (a checkpoint's optimizer state) join
     * the run's staged artifacts, where merge finds them beside theirs */
    for (int i = 0; rc == ORCH_OK && i < L->b->n; i++) {
        const bundle_member *a = &L->b->members[i];
        size_t pl = strlen(prefix);
        if (strncmp(a->name, prefix, pl) != 0 || strncmp(a->name + pl, "artifacts/", 10) != 0)
            continue;
        const char *base = a->name + pl + 10;
        char from[STORE_PATH_MAX + 80], to[STORE_PATH_MAX + 1200];
        snprintf(from, sizeof from, "%s/%s", L->b->dir, a->staged);
        struct stat st;
        if (strchr(base, '/') != NULL || base[0] == '\0' || strcmp(base, ".") == 0 ||
            strcmp(base, "..") == 0 || lstat(from, &st) != 0)
            continue; /* placed already, or a name no run folder can hold */
        snprintf(to, sizeof to, "%s/a%lld", L->b->dir, (long long)L->run_id);
        mkdir(to, 0700);
        snprintf(to, sizeof to, "%s/a%lld/%s", L->b->dir, (long long)L->run_id, base);
        if (rename(from, to) != 0)
            rc =
                orch_seterr(err, ORCH_EIO, "import: cannot stage %s: %s", a->name, strerror(errno));
    }
    return rc;
}

int orch_bundle_import(orch_store *s, const char *path, const orch_bundle_limits *limits,
                       orch_bundle_counts *counts, orch_err *err)
{
    if (counts != NULL)
        memset(counts, 0, sizeof *counts);
    if (s == NULL || s->mode != ORCH_STORE_READWRITE)
        return orch_seterr(err, ORCH_EINVAL, "import: the store must be opened read-write");
    if (strcmp(s->path, ":memory:") == 0)
        return orch_seterr(err, ORCH_EINVAL, "import: a store in memory has no run folders");
    char tmpl[STORE_PATH_MAX + 32];
    if ((size_t)snprintf(tmpl, sizeof tmpl, "%s.import-XXXXXX", s->path) >= sizeof tmpl)
        return orch_seterr(err, ORCH_EINVAL, "import: path too long: %s", s->path);
    bundle_staged b;
    int rc = bundle_stage(path, limits, tmpl, &b, err);
    if (rc != ORCH_OK)
        return rc;
    char(*uuids)[40] = NULL;
    int n_runs = 0;
    rc = bundle_manifest_runs(&b, path, &uuids, &n_runs, err);
    char db[STORE_PATH_MAX + 64];
    snprintf(db, sizeof db, "%s/bundle.db", b.dir);
    orch_store *tmp = NULL;
    if (rc == ORCH_OK)
        rc = orch_store_open(db, ORCH_STORE_READWRITE, &tmp, err);
    if (rc == ORCH_OK)
        rc = store_exec(tmp, "BEGIN", err);
    for (int i = 0; rc == ORCH_OK && i < n_runs; i++) {
        loader L = {tmp, &b, path, uuids[i], 0};
        rc = load_run(&L, err);
    }
    if (tmp != NULL && rc == ORCH_OK)
        rc = store_exec(tmp, "COMMIT", err);
    orch_store_close(tmp);
    orch_merge_counts mc = {0, 0, 0, 0};
    int64_t placed = 0;
    if (rc == ORCH_OK)
        rc = store_merge_placing(s, db, &mc, &placed, err);
    free(uuids);
    bundle_unstage(&b);
    if (rc == ORCH_OK && counts != NULL) {
        counts->runs_added = mc.runs_added;
        counts->runs_present = mc.runs_present;
        counts->files_placed = placed;
    }
    return rc;
}
