/*
 * bundle_export.c - `orch export`: runs of the store as one archive
 * (store/bundle.h, docs/bundles.md).
 *
 * Everything a member holds is known before the first byte is written:
 * the rows as CSV and the configuration are built in memory, the pipeline
 * files read from the store, the artifact files hashed on disk (and
 * checked against what the store recorded). So MANIFEST.json, with every
 * member's size and sha256, is the first member, and a reader can check
 * each member as it streams past. Members follow in a fixed order with
 * a fixed time, owner and mode: the same runs give the same bytes.
 */
#include "store/bundle_int.h"

#include "store/archive_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ select */

static int add_id(int64_t **ids, int *n, int *cap, int64_t id)
{
    for (int i = 0; i < *n; i++)
        if ((*ids)[i] == id)
            return 0;
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        int64_t *g = realloc(*ids, sizeof *g * (size_t)c);
        if (g == NULL)
            return -1;
        *ids = g;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

/* Appends the ids sql (one integer parameter or text parameter) yields. */
static int add_query(orch_store *s, const char *sql, int64_t iarg, const char *targ, int64_t **ids,
                     int *n, int *cap, orch_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = store_prepare(s, sql, 0, &st, err);
    int src = SQLITE_OK;
    if (rc == ORCH_OK)
        src = targ != NULL ? sqlite3_bind_text(st, 1, targ, -1, SQLITE_STATIC)
                           : sqlite3_bind_int64(st, 1, iarg);
    if (rc == ORCH_OK && src != SQLITE_OK)
        rc = store_dberr(s, src, "export: selecting runs", err);
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        if (add_id(ids, n, cap, sqlite3_column_int64(st, 0)) != 0)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "export: selecting runs", err);
    sqlite3_finalize(st);
    return rc;
}

int orch_bundle_select(orch_store *s, const int64_t *run_ids, int n_ids, int64_t sweep_id,
                       const char *tag, int64_t **out, int *n_out, orch_err *err)
{
    int64_t *ids = NULL;
    int n = 0, cap = 0, rc = ORCH_OK;
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < n_ids && rc == ORCH_OK; i++) {
        int64_t found = 0;
        int64_t *one = NULL;
        int n_one = 0, cap_one = 0;
        rc = add_query(s, "SELECT id FROM runs WHERE id = ?1", run_ids[i], NULL, &one, &n_one,
                       &cap_one, err);
        found = n_one;
        free(one);
        if (rc == ORCH_OK && !found)
            rc = orch_seterr(err, ORCH_EINVAL, "export: no run %lld in %s", (long long)run_ids[i],
                             s->path);
        if (rc == ORCH_OK && add_id(&ids, &n, &cap, run_ids[i]) != 0)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    }
    if (rc == ORCH_OK && sweep_id > 0) {
        int before = n;
        int64_t *one = NULL;
        int n_one = 0, cap_one = 0;
        rc = add_query(s, "SELECT id FROM sweeps WHERE id = ?1", sweep_id, NULL, &one, &n_one,
                       &cap_one, err);
        free(one);
        if (rc == ORCH_OK && n_one == 0)
            rc = orch_seterr(err, ORCH_EINVAL, "export: no sweep %lld in %s", (long long)sweep_id,
                             s->path);
        if (rc == ORCH_OK)
            rc = add_query(s, "SELECT run_id FROM sweep_runs WHERE sweep_id = ?1 ORDER BY run_id",
                           sweep_id, NULL, &ids, &n, &cap, err);
        if (rc == ORCH_OK && n == before && n_ids == 0 && tag == NULL)
            rc = orch_seterr(err, ORCH_EINVAL, "export: sweep %lld has no runs",
                             (long long)sweep_id);
    }
    if (rc == ORCH_OK && tag != NULL)
        rc = add_query(s,
                       "SELECT r.id FROM runs r WHERE EXISTS (SELECT 1 FROM "
                       "json_each(r.config_json, '$.tags') t WHERE t.value = ?1) ORDER BY r.id",
                       0, tag, &ids, &n, &cap, err);
    if (rc == ORCH_OK && n == 0)
        rc = tag != NULL
                 ? orch_seterr(err, ORCH_EINVAL, "export: no run in %s is tagged %s", s->path, tag)
                 : orch_seterr(err, ORCH_EINVAL,
                               "export: name the runs to export (RUN..., --sweep ID or "
                               "--tag T)");
    if (rc != ORCH_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n_out = n;
    return ORCH_OK;
}

/* ----------------------------------------------------------- members */

typedef struct member {
    char *name;     /* malloc'd */
    bundle_buf mem; /* the bytes, when held in memory */
    char *file;     /* else the file to copy (malloc'd) */
    int64_t bytes;
    char sha256[65];
} member;

typedef struct member_list {
    member *m;
    int n, cap;
} member_list;

static void members_free(member_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->m[i].name);
        free(l->m[i].mem.s);
        free(l->m[i].file);
    }
    free(l->m);
    memset(l, 0, sizeof *l);
}

/* A new member named name (printf); NULL when out of memory. */
static member *member_new(member_list *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static member *member_new(member_list *l, const char *fmt, ...)
{
    if (l->n == l->cap) {
        int c = l->cap ? 2 * l->cap : 32;
        member *g = realloc(l->m, sizeof *g * (size_t)c);
        if (g == NULL)
            return NULL;
        l->m = g;
        l->cap = c;
    }
    member *m = &l->m[l->n];
    memset(m, 0, sizeof *m);
    va_list ap;
    va_start(ap, fmt);
    int k = vasprintf(&m->name, fmt, ap);
    va_end(ap);
    if (k < 0) {
        m->name = NULL;
        return NULL;
    }
    l->n++;
    return m;
}

/* Seals a member held in memory: its size and hash. */
static int seal(member *m, orch_err *err)
{
    if (m->mem.oom)
        return orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    m->bytes = (int64_t)m->mem.len;
    bundle_sha256_hex(m->mem.s != NULL ? m->mem.s : "", m->mem.len, m->sha256);
    return ORCH_OK;
}

/* Hashes the file at path into m; checks it against the recorded size and
 * sha256 (a bundle carries what the store says the run wrote). */
static int hash_file(member *m, const char *path, const char *recorded_sha, int64_t recorded_bytes,
                     orch_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return orch_seterr(err, ORCH_EINVAL, "export: %s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return orch_seterr(err, ORCH_EINVAL, "export: %s: not a regular file", path);
    }
    if (recorded_bytes >= 0 && st.st_size != recorded_bytes) {
        close(fd);
        return orch_seterr(err, ORCH_EINVAL, "export: %s: %lld bytes, recorded as %lld", path,
                           (long long)st.st_size, (long long)recorded_bytes);
    }
    bundle_sha h;
    if (bundle_sha_start(&h) != 0) {
        close(fd);
        return orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    }
    static char buf[1 << 16];
    ssize_t got;
    int64_t total = 0;
    while ((got = read(fd, buf, sizeof buf)) > 0) {
        bundle_sha_add(&h, buf, (size_t)got);
        total += got;
    }
    int saved = errno;
    close(fd);
    bundle_sha_end(&h, m->sha256);
    if (got < 0)
        return orch_seterr(err, ORCH_EIO, "export: %s: %s", path, strerror(saved));
    m->bytes = total;
    if (recorded_sha != NULL && strcmp(recorded_sha, m->sha256) != 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "export: %s: does not match its recorded sha256 (changed since the run "
                           "wrote it)",
                           path);
    m->file = strdup(path);
    return m->file != NULL ? ORCH_OK : orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
}

void bundle_source_name(const char *recorded, char *out, size_t n)
{
    size_t at = 0;
    const char *p = recorded;
    out[0] = '\0';
    while (*p != '\0' && at + 1 < n) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            break;
        int dots = (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.');
        int w = snprintf(out + at, n - at, "%s%.*s", at ? "/" : "", dots ? 2 : (int)len,
                         dots ? "__" : p);
        if (w < 0 || (size_t)w >= n - at)
            break;
        at += (size_t)w;
        p += len;
    }
    if (at == 0)
        snprintf(out, n, "pipeline.lua");
}

/* The files beside an artifact that belong to it: "STEM.*" in its folder
 * but itself and temporary files ("*.tmp-*"), by name; e.g. the optimizer
 * state "checkpoint-49.optimizer.safetensors" beside
 * "checkpoint-49.safetensors" (core/checkpoint.h), whose size and sha256
 * the artifact's own metadata vouches for. Appended to l. */
static int sidecar_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sidecars(member_list *l, const char *uuid, const char *path, orch_err *err)
{
    char dir[STORE_PATH_MAX], stem[STORE_PATH_MAX], base[STORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    snprintf(base, sizeof base, "%s", slash != NULL ? slash + 1 : dir);
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot == NULL)
        return ORCH_OK;
    dot[1] = '\0'; /* "checkpoint-49." */
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (d == NULL)
        return ORCH_OK;
    char **names = NULL;
    int n = 0, rc = ORCH_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, stem, strlen(stem)) != 0 || strcmp(de->d_name, base) == 0 ||
            strstr(de->d_name, ".tmp-") != NULL)
            continue;
        char **g = realloc(names, sizeof *g * (size_t)(n + 1));
        if (g != NULL)
            names = g;
        if (g == NULL || (names[n] = strdup(de->d_name)) == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == ORCH_OK && n > 1)
        qsort(names, (size_t)n, sizeof *names, sidecar_cmp);
    for (int i = 0; i < n && rc == ORCH_OK; i++) {
        char file[STORE_PATH_MAX + 300];
        snprintf(file, sizeof file, "%s/%s", dir, names[i]);
        member *m = member_new(l, "runs/%s/artifacts/%s", uuid, names[i]);
        rc = m == NULL ? orch_seterr(err, ORCH_ENOMEM, "export: out of memory")
                       : hash_file(m, file, NULL, -1, err);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* The members of one run, appended to l. */
static int run_members(orch_store *s, int64_t run_id, member_list *l, char uuid[40], orch_err *err)
{
    sqlite3_stmt *st = NULL;
    char *config = NULL;
    int rc = store_prepare(s, "SELECT uuid, config_json FROM runs WHERE id = ?1", 0, &st, err);
    int src = rc == ORCH_OK ? sqlite3_bind_int64(st, 1, run_id) : SQLITE_OK;
    if (rc == ORCH_OK && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(uuid, 40, "%s", (const char *)sqlite3_column_text(st, 0));
        const char *c = (const char *)sqlite3_column_text(st, 1);
        config = strdup(c != NULL ? c : "{}");
        if (config == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    } else if (rc == ORCH_OK) {
        rc = src == SQLITE_DONE ? orch_seterr(err, ORCH_EINVAL, "export: no run %lld in %s",
                                              (long long)run_id, s->path)
                                : store_dberr(s, src, "export: reading a run", err);
    }
    sqlite3_finalize(st);
    st = NULL;
    member *m = NULL;
    if (rc == ORCH_OK) {
        m = member_new(l, "runs/%s/config.json", uuid);
        if (m == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
        else {
            bundle_buf_str(&m->mem, config);
            rc = seal(m, err);
        }
    }
    free(config);
    /* rows: runs first, then every table that points at runs, by name */
    char tables[32][128];
    int n_tables = 0;
    if (rc == ORCH_OK)
        rc = bundle_run_tables(s, tables, &n_tables, 32, err);
    for (int t = -1; t < n_tables && rc == ORCH_OK; t++) {
        const char *table = t < 0 ? "runs" : tables[t];
        m = member_new(l, "runs/%s/rows/%s.csv", uuid, table);
        if (m == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
        if (rc == ORCH_OK)
            rc = bundle_csv_dump(s, table, run_id, &m->mem, err);
        if (rc == ORCH_OK)
            rc = seal(m, err);
    }
    /* the pipeline files as they were run */
    if (rc == ORCH_OK)
        rc = store_prepare(s,
                           "SELECT r.path, f.content FROM run_sources r JOIN source_files f "
                           "ON f.sha256 = r.sha256 WHERE r.run_id = ?1 ORDER BY r.ord, r.path",
                           0, &st, err);
    if (rc == ORCH_OK && (src = sqlite3_bind_int64(st, 1, run_id)) != SQLITE_OK)
        rc = store_dberr(s, src, "export", err);
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        char rel[1024];
        bundle_source_name((const char *)sqlite3_column_text(st, 0), rel, sizeof rel);
        char want[1200];
        snprintf(want, sizeof want, "runs/%s/pipeline/%s", uuid, rel);
        for (int i = 0; i < l->n; i++) /* two recorded paths that read the same */
            if (strcmp(l->m[i].name, want) == 0)
                rc = orch_seterr(err, ORCH_EINVAL,
                                 "export: run %lld: two pipeline files would be named %s",
                                 (long long)run_id, rel);
        m = rc == ORCH_OK ? member_new(l, "runs/%s/pipeline/%s", uuid, rel) : NULL;
        if (rc == ORCH_OK && m == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
        if (rc == ORCH_OK) {
            bundle_buf_add(&m->mem, sqlite3_column_blob(st, 1),
                           (size_t)sqlite3_column_bytes(st, 1));
            rc = seal(m, err);
        }
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "export: reading pipeline files", err);
    sqlite3_finalize(st);
    st = NULL;
    /* artifacts, whatever their kind */
    if (rc == ORCH_OK)
        rc = store_prepare(s,
                           "SELECT path, sha256, bytes FROM artifacts WHERE run_id = ?1 "
                           "ORDER BY step, kind, id",
                           0, &st, err);
    if (rc == ORCH_OK && (src = sqlite3_bind_int64(st, 1, run_id)) != SQLITE_OK)
        rc = store_dberr(s, src, "export", err);
    int first_artifact = l->n;
    while (rc == ORCH_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *recorded = (const char *)sqlite3_column_text(st, 0);
        char path[STORE_PATH_MAX];
        if (orch_store_resolve_path(s, recorded, path, sizeof path) != 0) {
            rc = orch_seterr(err, ORCH_EINVAL, "export: artifact path too long: %s", recorded);
            break;
        }
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        for (int i = first_artifact; i < l->n; i++)
            if (strcmp(strrchr(l->m[i].name, '/') + 1, base) == 0)
                rc = orch_seterr(err, ORCH_EINVAL, "export: run %lld has two artifacts named %s",
                                 (long long)run_id, base);
        m = rc == ORCH_OK ? member_new(l, "runs/%s/artifacts/%s", uuid, base) : NULL;
        if (rc == ORCH_OK && m == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
        if (rc == ORCH_OK)
            rc = hash_file(
                m, path, (const char *)sqlite3_column_text(st, 1),
                sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2), err);
        if (rc == ORCH_OK)
            rc = sidecars(l, uuid, path, err);
    }
    if (rc == ORCH_OK && src != SQLITE_DONE)
        rc = store_dberr(s, src, "export: reading artifacts", err);
    sqlite3_finalize(st);
    return rc;
}

/* MANIFEST.json: the format, orch's version, the runs, every member. */
static int manifest(const member_list *l, char (*uuids)[40], int n_runs, member *out, orch_err *err)
{
    json_t *root = json_object(), *runs = json_array(), *members = json_array();
    int bad = root == NULL || runs == NULL || members == NULL;
    for (int i = 0; !bad && i < n_runs; i++)
        bad |= json_array_append_new(runs, json_string(uuids[i]));
    for (int i = 0; !bad && i < l->n; i++) {
        json_t *m = json_pack("{s:s, s:I, s:s}", "name", l->m[i].name, "bytes",
                              (json_int_t)l->m[i].bytes, "sha256", l->m[i].sha256);
        bad |= m == NULL || json_array_append_new(members, m) != 0;
    }
    if (!bad) {
        bad |= json_object_set_new(root, "format", json_integer(ORCH_BUNDLE_FORMAT));
        bad |= json_object_set_new(root, "orch_version", json_string(ORCH_VERSION));
        bad |= json_object_set(root, "runs", runs);
        bad |= json_object_set(root, "members", members);
    }
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    json_decref(runs);
    json_decref(members);
    if (text == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    bundle_buf_str(&out->mem, text);
    bundle_buf_str(&out->mem, "\n");
    free(text);
    return seal(out, err);
}

/* ------------------------------------------------------------ writing */

/* restricted pax, every member from ORCH_BUNDLE_MTIME and owned by "orch":
 * two exports of the same runs give the same bytes */
static const orch_archive_layout bundle_layout = {
    .pax = 1, .mtime = ORCH_BUNDLE_MTIME, .owner = "orch"};

/* The door's one line, in export's words. */
static int export_err(int rc, const orch_err *sub, orch_err *err)
{
    return orch_seterr(err, rc, "export: %s", sub->msg);
}

static int write_member(orch_archive_writer *a, const member *m, orch_err *err)
{
    orch_err sub = {0};
    if (orch_archive_writer_begin(a, m->name, m->bytes, &sub) != ORCH_OK)
        return export_err(sub.code, &sub, err);
    if (m->file == NULL) {
        if (orch_archive_writer_data(a, m->mem.s, m->mem.len, &sub) != ORCH_OK)
            return export_err(sub.code, &sub, err);
        return ORCH_OK;
    }
    int fd = open(m->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return orch_seterr(err, ORCH_EIO, "export: %s: %s", m->file, strerror(errno));
    static char buf[1 << 16];
    ssize_t got;
    int64_t total = 0;
    int rc = ORCH_OK;
    while (rc == ORCH_OK && (got = read(fd, buf, sizeof buf)) > 0) {
        if (orch_archive_writer_data(a, buf, (size_t)got, &sub) != ORCH_OK)
            rc = export_err(sub.code, &sub, err);
        total += got;
    }
    close(fd);
    if (rc == ORCH_OK && total != m->bytes)
        rc = orch_seterr(err, ORCH_EIO, "export: %s changed while it was exported", m->file);
    return rc;
}

int orch_bundle_export(orch_store *s, const int64_t *run_ids, int n, const char *out_path,
                       orch_err *err)
{
    orch_archive_kind kind;
    if (out_path == NULL || orch_archive_kind_of(out_path, &kind) != 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "export: %s: unknown bundle format; name it .tar, .tar.gz, .tar.zst, "
                           ".tar.xz or .zip",
                           out_path != NULL ? out_path : "(none)");
    if (n <= 0)
        return orch_seterr(err, ORCH_EINVAL, "export: no runs to export");
    member_list l = {0};
    char(*uuids)[40] = calloc((size_t)n, sizeof *uuids);
    int rc = uuids == NULL ? orch_seterr(err, ORCH_ENOMEM, "export: out of memory") : ORCH_OK;
    /* MANIFEST.json first: its slot now, its bytes once the others are known */
    if (rc == ORCH_OK && member_new(&l, "MANIFEST.json") == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    /* one read transaction: the rows of every run as of one moment */
    int in_txn = rc == ORCH_OK && store_exec(s, "BEGIN", err) == ORCH_OK;
    if (rc == ORCH_OK && !in_txn)
        rc = err->code;
    for (int i = 0; i < n && rc == ORCH_OK; i++)
        rc = run_members(s, run_ids[i], &l, uuids[i], err);
    if (in_txn)
        store_exec(s, "COMMIT", NULL);
    member head;
    memset(&head, 0, sizeof head);
    if (rc == ORCH_OK) {
        member_list body = {l.m + 1, l.n - 1, l.cap - 1};
        rc = manifest(&body, uuids, n, &head, err);
    }
    if (rc == ORCH_OK) {
        head.name = l.m[0].name;
        l.m[0] = head;
    } else {
        free(head.mem.s);
    }
    free(uuids);

    /* written under a temporary name, renamed into place once complete */
    orch_archive_writer *a = NULL;
    orch_err sub = {0};
    if (rc == ORCH_OK &&
        orch_archive_writer_open(out_path, kind, &bundle_layout, &a, &sub) != ORCH_OK)
        rc = export_err(sub.code, &sub, err);
    for (int i = 0; i < l.n && rc == ORCH_OK; i++)
        rc = write_member(a, &l.m[i], err);
    if (a != NULL && orch_archive_writer_close(a, rc != ORCH_OK, &sub) != ORCH_OK && rc == ORCH_OK)
        rc = export_err(sub.code, &sub, err);
    members_free(&l);
    return rc;
}
