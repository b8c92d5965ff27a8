/*
 * bundle_sources.c - a run's pipeline files as they were run (the main
 * file and every module it required): tables source_files (content by
 * sha256, shared) and run_sources (run, order, path); see store/bundle.h.
 */
#include "store/bundle_int.h"

#include <stdlib.h>
#include <string.h>

static int is_hex64(const char *h)
{
    size_t n = 0;
    for (; h != NULL && h[n] != '\0'; n++)
        if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f')))
            return 0;
    return n == 64;
}

static int check_file(const orch_source_file *f, orch_err *err)
{
    if (f->path == NULL || f->path[0] == '\0' || f->bytes < 0 || (f->text == NULL && f->bytes > 0))
        return orch_seterr(err, ORCH_EINVAL, "store: a pipeline file needs a path and its text");
    if (!is_hex64(f->sha256))
        return orch_seterr(err, ORCH_EINVAL,
                           "store: pipeline file %s: sha256 must be 64 lowercase hexadecimal "
                           "digits",
                           f->path);
    char hex[65];
    bundle_sha256_hex(f->text != NULL ? f->text : "", (size_t)f->bytes, hex);
    if (strcmp(hex, f->sha256) != 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "store: pipeline file %s: its text does not hash to %s", f->path,
                           f->sha256);
    return ORCH_OK;
}

/* Inserts one file at ord (the caller's transaction). */
static int put_file(orch_store *s, int64_t run_id, int64_t ord, const orch_source_file *f,
                    orch_err *err)
{
    static const char *const sql[2] = {
        "INSERT INTO source_files (sha256, bytes, content) VALUES (?1, ?2, ?3) "
        "ON CONFLICT DO NOTHING",
        "INSERT INTO run_sources (run_id, ord, path, sha256) VALUES (?4, ?5, ?6, ?1) "
        "ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256"};
    int rc = ORCH_OK;
    for (int i = 0; i < 2 && rc == ORCH_OK; i++) {
        sqlite3_stmt *st = NULL;
        rc = store_prepare(s, sql[i], 0, &st, err);
        if (rc != ORCH_OK)
            break;
        int b = sqlite3_bind_text(st, 1, f->sha256, -1, SQLITE_STATIC);
        if (i == 0) {
            b |= sqlite3_bind_int64(st, 2, f->bytes);
            b |= sqlite3_bind_blob64(st, 3, f->text != NULL ? (const void *)f->text : "",
                                     (sqlite3_uint64)f->bytes, SQLITE_STATIC);
        } else {
            b |= sqlite3_bind_int64(st, 4, run_id);
            b |= sqlite3_bind_int64(st, 5, ord);
            b |= sqlite3_bind_text(st, 6, f->path, -1, SQLITE_STATIC);
        }
        int src = b == SQLITE_OK ? sqlite3_step(st) : b;
        if (src != SQLITE_DONE)
            rc = store_dberr(s, src, "store: recording a pipeline file", err);
        sqlite3_finalize(st);
    }
    return rc;
}

typedef struct sources_args {
    int64_t run_id;
    const orch_source_file *files;
    int n;
    int replace; /* 1: the run's list is exactly files; 0: append one */
} sources_args;

static int sources_body(orch_store *s, void *arg, orch_err *err)
{
    const sources_args *a = arg;
    int64_t ord = 0;
    sqlite3_stmt *st = NULL;
    /* a run that ended keeps the files it ran (a continued sweep queues its
     * finished runs again) */
    if (a->replace) {
        int rc = store_prepare(s,
                               "SELECT 1 FROM runs WHERE id = ?1 AND status IN "
                               "('finished', 'diverged')",
                               0, &st, err);
        int src = rc == ORCH_OK ? sqlite3_bind_int64(st, 1, a->run_id) : SQLITE_OK;
        if (rc == ORCH_OK && src == SQLITE_OK)
            src = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != ORCH_OK)
            return rc;
        if (src == SQLITE_ROW)
            return ORCH_OK;
        if (src != SQLITE_DONE)
            return store_dberr(s, src, "store: recording pipeline files", err);
    }
    const char *sql = a->replace ? "DELETE FROM run_sources WHERE run_id = ?1"
                                 : "SELECT coalesce(max(ord) + 1, 0) FROM run_sources "
                                   "WHERE run_id = ?1 AND path <> ?2";
    int rc = store_prepare(s, sql, 0, &st, err);
    if (rc == ORCH_OK) {
        int b = sqlite3_bind_int64(st, 1, a->run_id);
        if (!a->replace)
            b |= sqlite3_bind_text(st, 2, a->files[0].path, -1, SQLITE_STATIC);
        int src = b == SQLITE_OK ? sqlite3_step(st) : b;
        if (src == SQLITE_ROW)
            ord = sqlite3_column_int64(st, 0);
        else if (src != SQLITE_DONE)
            rc = store_dberr(s, src, "store: recording pipeline files", err);
    }
    sqlite3_finalize(st);
    for (int i = 0; i < a->n && rc == ORCH_OK; i++)
        rc = put_file(s, a->run_id, ord + i, &a->files[i], err);
    return rc;
}

int orch_store_record_sources(orch_store *s, int64_t run_id, const orch_source_file *files, int n,
                              orch_err *err)
{
    if (s == NULL || n < 0 || (n > 0 && files == NULL))
        return orch_seterr(err, ORCH_EINVAL, "store: no pipeline files to record");
    for (int i = 0; i < n; i++) {
        int rc = check_file(&files[i], err);
        if (rc != ORCH_OK)
            return rc;
    }
    sources_args a = {run_id, files, n, 1};
    return store_sink_txn(s, sources_body, &a, err);
}

int orch_store_sink_source_file(void *ctx, int64_t run_id, const orch_source_file *rec,
                                orch_err *err)
{
    orch_store *s = ctx;
    if (rec == NULL)
        return orch_seterr(err, ORCH_EINVAL, "store: source_file without a record");
    int rc = check_file(rec, err);
    if (rc != ORCH_OK)
        return rc;
    sources_args a = {run_id, rec, 1, 0};
    return store_sink_txn(s, sources_body, &a, err);
}

void orch_stored_sources_free(orch_stored_sources *out)
{
    if (out == NULL)
        return;
    for (int i = 0; i < out->n; i++) {
        free((char *)out->files[i].path);
        free((char *)out->files[i].sha256);
        free((char *)out->files[i].text);
    }
    free(out->files);
    memset(out, 0, sizeof *out);
}

int orch_store_read_sources(orch_store *s, int64_t run_id, orch_stored_sources *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s,
                           "SELECT r.path, r.sha256, f.content, f.bytes FROM run_sources r "
                           "JOIN source_files f ON f.sha256 = r.sha256 WHERE r.run_id = ?1 "
                           "ORDER BY r.ord, r.path",
                           0, &st, err);
    int src = rc == ORCH_OK ? sqlite3_bind_int64(st, 1, run_id) : SQLITE_OK;
    while (rc == ORCH_OK && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        orch_source_file *g = realloc(out->files, sizeof *g * (size_t)(out->n + 1));
        if (g == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
            break;
        }
        out->files = g;
        int64_t bytes = sqlite3_column_int64(st, 3);
        const void *content = sqlite3_column_blob(st, 2);
        /* owned by out: freed by orch_stored_sources_free */
        char *path = strdup((const char *)sqlite3_column_text(st, 0));
        char *sha = strdup((const char *)sqlite3_column_text(st, 1));
        char *text = malloc((size_t)bytes + 1);
        if (path == NULL || sha == NULL || text == NULL) {
            free(path);
            free(sha);
            free(text);
            rc = orch_seterr(err, ORCH_ENOMEM, "store: out of memory");
            break;
        }
        if (bytes > 0)
            memcpy(text, content, (size_t)bytes);
        text[bytes] = '\0';
        out->files[out->n++] = (orch_source_file){path, sha, text, bytes};
        src = SQLITE_OK;
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "store: reading pipeline files", err);
    sqlite3_finalize(st);
    if (rc != ORCH_OK)
        orch_stored_sources_free(out);
    return rc;
}
