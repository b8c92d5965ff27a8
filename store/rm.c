/*
 * rm.c - `orch rm RUN...`: deleting runs, with everything that is theirs.
 *
 * A run is its row and the rows that point at it (steps, metrics,
 * nan_events, stage_stats, artifacts, frozen_changes, run_features: ON
 * DELETE CASCADE, with foreign keys on, as every read-write store has
 * them), its folder PATH.runs/RUN/ (its checkpoints, and files recorded as
 * artifacts elsewhere), and its share of the detach feature cache
 * PATH.features/.
 *
 * Cache entries (PATH.features/KEY.f32) are keyed by the tower's weights
 * and the image, and shared by every detach run with the same tower and
 * data; run_features says which run used which. An entry goes when a
 * removed run used it and no remaining run does. An entry no row names
 * (made by a store of schema version 2, before uses were recorded) is
 * kept: nothing says it is unused. The folder goes when no entry is left.
 *
 * Order: every run is checked first (unknown or live: nothing is removed),
 * the rows go in one transaction that re-checks them and reads the entries
 * they leave unused, and only then the files, so a failure never leaves
 * rows pointing at deleted files. Limit: a detach run that is running
 * meanwhile may have used an entry without its row written yet (rows are
 * batched); if that entry goes, the run's next read of it is a miss and
 * it computes and writes the entry again. Ids are
 * never reused (runs.id is AUTOINCREMENT since schema version 3), so a
 * folder left behind by a crash here is never taken for a new run's.
 */
#include "store/store_int.h"

#include "store/feature_cache.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char sql_run[] = "SELECT r.name, r.status, r.pid, r.host, " STORE_AGE_SQL
                              ", (SELECT count(*) FROM steps s WHERE s.run_id = r.id) "
                              "FROM runs r WHERE r.id = ?1";
static const char sql_artifacts[] = "SELECT path FROM artifacts WHERE run_id = ?1 ORDER BY id";
static const char sql_delete[] =
    "DELETE FROM runs WHERE id = ?1 AND (status <> 'running' OR pid IS ?2)";
/* The cache entries the runs ?1 (a JSON array of ids) used and no other
 * run uses. */
static const char sql_unused_keys[] =
    "SELECT DISTINCT f.key FROM run_features f\n"
    " WHERE f.run_id IN (SELECT value FROM json_each(?1))\n"
    "   AND NOT EXISTS (SELECT 1 FROM run_features g WHERE g.key = f.key\n"
    "                    AND g.run_id NOT IN (SELECT value FROM json_each(?1)))\n"
    " ORDER BY f.key";

/* One run to remove. */
typedef struct rm_run {
    int64_t id;
    int64_t pid;
    int64_t steps;
    char name[128];
    char status[16];
    char dir[STORE_PATH_MAX]; /* its folder; "" when it has none */
    char **outside;           /* artifact files outside its folder (malloc'd) */
    int n_outside;
} rm_run;

static void free_runs(rm_run *runs, int n)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < runs[i].n_outside; j++)
            free(runs[i].outside[j]);
        free(runs[i].outside);
    }
    free(runs);
}

static int is_dir(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Reads run r->id into r; ORCH_EINVAL for an unknown one or one whose
 * process is alive. */
static int load_run(orch_store *s, sqlite3_stmt *st, sqlite3_stmt *arts, rm_run *r, orch_err *err)
{
    char local[256], host[256];
    sqlite3_bind_int64(st, 1, r->id);
    int src = sqlite3_step(st);
    int rc = ORCH_OK;
    if (src == SQLITE_DONE) {
        rc = orch_seterr(err, ORCH_EINVAL, "rm: no run %lld in %s", (long long)r->id, s->path);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = store_dberr(s, src, "rm: reading a run", err);
        goto out;
    }
    const unsigned char *t = sqlite3_column_text(st, 0);
    char raw[128];
    snprintf(raw, sizeof raw, "%s", t != NULL ? (const char *)t : "");
    store_sanitize(raw, r->name, sizeof r->name);
    t = sqlite3_column_text(st, 1);
    snprintf(r->status, sizeof r->status, "%s", t != NULL ? (const char *)t : "");
    r->pid = sqlite3_column_int64(st, 2);
    t = sqlite3_column_text(st, 3);
    snprintf(host, sizeof host, "%s", t != NULL ? (const char *)t : "");
    r->steps = sqlite3_column_int64(st, 5);
    if (strcmp(r->status, "running") == 0 &&
        !store_process_gone(host, r->pid, sqlite3_column_double(st, 4),
                            store_local_host(local, sizeof local))) {
        char shown[256];
        store_sanitize(host, shown, sizeof shown);
        rc = orch_seterr(err, ORCH_EINVAL,
                         "rm: run %lld is running (pid %lld on %s); stop it first, or wait",
                         (long long)r->id, (long long)r->pid, shown);
        goto out;
    }
    if (orch_store_run_dir(s, r->id, r->dir, sizeof r->dir) != 0 || !is_dir(r->dir))
        r->dir[0] = '\0';
    /* artifacts recorded outside the folder (absolute paths elsewhere, or a
     * version-2 store's paths relative to where orch ran) */
    sqlite3_bind_int64(arts, 1, r->id);
    while ((src = sqlite3_step(arts)) == SQLITE_ROW) {
        char path[STORE_PATH_MAX];
        t = sqlite3_column_text(arts, 0);
        if (t == NULL || orch_store_resolve_path(s, (const char *)t, path, sizeof path) != 0)
            continue;
        size_t k = strlen(r->dir);
        if ((k > 0 && strncmp(path, r->dir, k) == 0 && path[k] == '/') || !is_file(path))
            continue;
        /* a checkpoint's optimizer state lives beside it and goes with it */
        char state[STORE_PATH_MAX];
        int has_state =
            orch_checkpoint_optimizer_path(path, state, sizeof state) == 0 && is_file(state);
        for (int j = 0; j < 1 + has_state; j++) {
            char **grown = realloc(r->outside, sizeof *grown * (size_t)(r->n_outside + 1));
            if (grown == NULL || (grown[r->n_outside] = strdup(j == 0 ? path : state)) == NULL) {
                if (grown != NULL)
                    r->outside = grown;
                rc = orch_seterr(err, ORCH_ENOMEM, "rm: out of memory");
                goto out;
            }
            r->outside = grown;
            r->n_outside++;
        }
    }
    if (src != SQLITE_DONE)
        rc = store_dberr(s, src, "rm: reading artifacts", err);
out:
    sqlite3_reset(st);
    sqlite3_reset(arts);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes a directory tree without following symlinks; -1 on failure. */
static int remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Cache entry keys (malloc'd strings), n of them. */
typedef struct key_list {
    char **keys;
    size_t n;
} key_list;

static void key_list_free(key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    l->keys = NULL;
    l->n = 0;
}

/* The cache entries the runs used and no other run uses, into *out. */
static int unused_keys(orch_store *s, const rm_run *runs, int n, key_list *out, orch_err *err)
{
    /* the ids as a JSON array: any number of them is one parameter */
    size_t cap = 2 + 21 * (size_t)n;
    char *ids = malloc(cap);
    if (ids == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "rm: out of memory");
    size_t at = 0;
    ids[at++] = '[';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(ids + at, cap - at, "%s%lld", i ? "," : "", (long long)runs[i].id);
    snprintf(ids + at, cap - at, "]");
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql_unused_keys, 0, &st, err);
    if (rc == ORCH_OK && sqlite3_bind_text(st, 1, ids, -1, SQLITE_STATIC) != SQLITE_OK)
        rc = store_dberr(s, sqlite3_errcode(s->db), "rm: reading cache uses", err);
    int src = SQLITE_DONE;
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        char **grown = realloc(out->keys, sizeof *grown * (out->n + 1));
        if (grown != NULL)
            out->keys = grown;
        if (grown == NULL || t == NULL || (out->keys[out->n] = strdup((const char *)t)) == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "rm: out of memory");
            break;
        }
        out->n++;
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "rm: reading cache uses", err);
    sqlite3_finalize(st);
    free(ids);
    if (rc != ORCH_OK)
        key_list_free(out);
    return rc;
}

/* Deletes the rows of every run in one transaction; a run that became
 * live meanwhile (resumed) stops it all. *unused gets the cache entries
 * they leave unused, read in the same transaction. */
static int delete_rows(orch_store *s, rm_run *runs, int n, key_list *unused, orch_err *err)
{
    sqlite3_stmt *del = NULL;
    int rc = store_prepare(s, sql_delete, 0, &del, err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "BEGIN IMMEDIATE", err);
    if (rc != ORCH_OK) {
        sqlite3_finalize(del);
        return rc;
    }
    rc = unused_keys(s, runs, n, unused, err);
    for (int i = 0; i < n && rc == ORCH_OK; i++) {
        sqlite3_bind_int64(del, 1, runs[i].id);
        if (runs[i].pid > 0)
            sqlite3_bind_int64(del, 2, runs[i].pid);
        else
            sqlite3_bind_null(del, 2);
        int src = sqlite3_step(del);
        if (src != SQLITE_DONE)
            rc = store_dberr(s, src, "rm: deleting a run", err);
        else if (sqlite3_changes(s->db) != 1)
            rc = orch_seterr(err, ORCH_EINVAL, "rm: run %lld changed meanwhile; nothing removed",
                             (long long)runs[i].id);
        sqlite3_reset(del);
    }
    /* the pipeline files (content-addressed) no remaining run refers to */
    if (rc == ORCH_OK)
        rc = store_exec(s,
                        "DELETE FROM source_files WHERE sha256 NOT IN "
                        "(SELECT sha256 FROM run_sources)",
                        err);
    if (rc == ORCH_OK)
        rc = store_exec(s, "COMMIT", err);
    else
        store_exec(s, "ROLLBACK", NULL);
    sqlite3_finalize(del);
    if (rc != ORCH_OK)
        key_list_free(unused);
    return rc;
}

/* The entries (*.f32 files) in the cache folder dir. */
static int64_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len == ORCH_FCACHE_KEY_HEX - 1 + 4 && strcmp(e->d_name + len - 4, ".f32") == 0;
    }
    closedir(d);
    return n;
}

/* Removes (or, dry_run, lists) the entries in unused, then the folder
 * when no entry is left; 1 when a file could not be removed. */
static int remove_cache_entries(const char *cache, const key_list *unused, int dry_run, FILE *out)
{
    const char *verb = dry_run ? "would remove" : "removed";
    int failed = 0;
    int64_t left = count_entries(cache);
    for (size_t i = 0; i < unused->n; i++) {
        char path[STORE_PATH_MAX];
        if (orch_fcache_entry_file(cache, unused->keys[i], path, sizeof path) != 0 ||
            !is_file(path))
            continue;
        int bad = !dry_run && unlink(path) != 0 && errno != ENOENT;
        failed |= bad;
        left -= !bad;
        fprintf(out, "%s %s\n", bad ? "could not remove" : verb, path);
    }
    if (left > 0) {
        fprintf(out,
                "kept %s/ (%lld entr%s that remaining runs use, or that no run recorded using)\n",
                cache, (long long)left, left == 1 ? "y" : "ies");
    } else if (dry_run) {
        fprintf(out, "would remove %s/ (no entry left)\n", cache);
    } else if (rmdir(cache) == 0) {
        fprintf(out, "removed %s/ (no entry left)\n", cache);
    } /* else it holds something else (a write under way): it stays */
    return failed;
}

int orch_store_rm(orch_store *s, const int64_t *run_ids, int n_ids, int dry_run, FILE *out,
                  orch_err *err)
{
    sqlite3_stmt *st = NULL, *arts = NULL;
    rm_run *runs = NULL;
    key_list unused = {NULL, 0};
    int n = 0, rc = ORCH_OK;
    if (s == NULL || s->mode != ORCH_STORE_READWRITE)
        return orch_seterr(err, ORCH_EINVAL, "rm: the store must be open read-write");
    if (n_ids <= 0)
        return orch_seterr(err, ORCH_EINVAL, "rm: name the runs to remove (orch rm RUN...)");
    runs = calloc((size_t)n_ids, sizeof *runs);
    if (runs == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "rm: out of memory");
    rc = store_prepare(s, sql_run, 0, &st, err);
    if (rc == ORCH_OK)
        rc = store_prepare(s, sql_artifacts, 0, &arts, err);
    for (int i = 0; i < n_ids && rc == ORCH_OK; i++) {
        int seen = 0;
        for (int j = 0; j < n; j++)
            seen |= runs[j].id == run_ids[i];
        if (seen)
            continue;
        runs[n].id = run_ids[i];
        rc = load_run(s, st, arts, &runs[n++], err);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(arts);
    if (rc != ORCH_OK)
        goto out;

    if (dry_run)
        rc = unused_keys(s, runs, n, &unused, err);
    else
        rc = delete_rows(s, runs, n, &unused, err);
    if (rc != ORCH_OK)
        goto out;
    const char *verb = dry_run ? "would remove" : "removed";
    int failed = 0;
    for (int i = 0; i < n; i++) {
        rm_run *r = &runs[i];
        fprintf(out, "%s run %lld (%s, %s, %lld steps)\n", verb, (long long)r->id, r->name,
                r->status, (long long)r->steps);
        if (r->dir[0] != '\0') {
            int bad = !dry_run && remove_tree(r->dir) != 0;
            failed |= bad;
            fprintf(out, "%s %s/\n", bad ? "could not remove" : verb, r->dir);
        }
        for (int j = 0; j < r->n_outside; j++) {
            int bad = !dry_run && unlink(r->outside[j]) != 0 && errno != ENOENT;
            failed |= bad;
            fprintf(out, "%s %s\n", bad ? "could not remove" : verb, r->outside[j]);
        }
    }
    char cache[STORE_PATH_MAX];
    if (store_features_dir(s, cache, sizeof cache) == 0 && is_dir(cache))
        failed |= remove_cache_entries(cache, &unused, dry_run, out);
    fflush(out);
    if (failed)
        rc = orch_seterr(err, ORCH_EIO,
                         "rm: the runs' rows are gone, but some files could not be removed "
                         "(listed above)");
out:
    key_list_free(&unused);
    free_runs(runs, n_ids);
    return rc;
}
