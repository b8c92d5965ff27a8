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

#include <archive.h>
#include <archive_entry.h>
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

typedef enum bundle_kind { BK_TAR, BK_TGZ, BK_TZST, BK_TXZ, BK_ZIP } bundle_kind;

static int kind_of(const char *path, bundle_kind *k)
{
    static const struct {
        const char *suffix;
        bundle_kind kind;
    } table[] = {{".tar.gz", BK_TGZ}, {".tgz", BK_TGZ}, {".tar.zst", BK_TZST},
                 {".tar.xz", BK_TXZ}, {".tar", BK_TAR}, {".zip", BK_ZIP}};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t m = strlen(table[i].suffix);
        if (n > m && strcmp(path + n - m, table[i].suffix) == 0) {
            *k = table[i].kind;
            return 0;
        }
    }
    return -1;
}

static int arch_err(struct archive *a, const char *path, orch_err *err)
{
    const char *msg = archive_error_string(a);
    return orch_seterr(err, ORCH_EIO, "export: %s: %s", path, msg != NULL ? msg : "write failed");
}

static int write_member(struct archive *a, const member *m, const char *path, orch_err *err)
{
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    archive_entry_set_pathname(e, m->name);
    archive_entry_set_size(e, m->bytes);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, ORCH_BUNDLE_MTIME, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_uname(e, "orch");
    archive_entry_set_gname(e, "orch");
    int rc = ORCH_OK;
    if (archive_write_header(a, e) != ARCHIVE_OK)
        rc = arch_err(a, path, err);
    archive_entry_free(e);
    if (rc != ORCH_OK)
        return rc;
    if (m->file == NULL) {
        if (m->mem.len > 0 && archive_write_data(a, m->mem.s, m->mem.len) != (la_ssize_t)m->mem.len)
            return arch_err(a, path, err);
        return ORCH_OK;
    }
    int fd = open(m->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return orch_seterr(err, ORCH_EIO, "export: %s: %s", m->file, strerror(errno));
    static char buf[1 << 16];
    ssize_t got;
    int64_t total = 0;
    while (rc == ORCH_OK && (got = read(fd, buf, sizeof buf)) > 0) {
        if (archive_write_data(a, buf, (size_t)got) != got)
            rc = arch_err(a, path, err);
        total += got;
    }
    close(fd);
    if (rc == ORCH_OK && total != m->bytes)
        rc = orch_seterr(err, ORCH_EIO, "export: %s changed while it was exported", m->file);
    return rc;
}

static int write_archive(const member_list *l, bundle_kind kind, int fd, const char *path,
                         orch_err *err)
{
    struct archive *a = archive_write_new();
    if (a == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "export: out of memory");
    int r = kind == BK_ZIP ? archive_write_set_format_zip(a)
                           : archive_write_set_format_pax_restricted(a);
    if (r == ARCHIVE_OK && kind == BK_TGZ) {
        r = archive_write_add_filter_gzip(a);
        /* no time stamp in the gzip header: two exports give the same bytes */
        if (r == ARCHIVE_OK)
            r = archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
    } else if (r == ARCHIVE_OK && kind == BK_TZST) {
        r = archive_write_add_filter_zstd(a);
    } else if (r == ARCHIVE_OK && kind == BK_TXZ) {
        r = archive_write_add_filter_xz(a);
    }
    /* the last block padded as tar readers expect; no padding after a compressed stream
     * beyond what the filter writes */
    if (r == ARCHIVE_OK)
        r = archive_write_open_fd(a, fd);
    int rc = r == ARCHIVE_OK ? ORCH_OK : arch_err(a, path, err);
    for (int i = 0; i < l->n && rc == ORCH_OK; i++)
        rc = write_member(a, &l->m[i], path, err);
    if (archive_write_close(a) != ARCHIVE_OK && rc == ORCH_OK)
        rc = arch_err(a, path, err);
    archive_write_free(a);
    return rc;
}

int orch_bundle_export(orch_store *s, const int64_t *run_ids, int n, const char *out_path,
                       orch_err *err)
{
    bundle_kind kind;
    if (out_path == NULL || kind_of(out_path, &kind) != 0)
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

    char tmp[STORE_PATH_MAX + 32];
    int fd = -1;
    if (rc == ORCH_OK) {
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out_path) >= sizeof tmp)
            rc = orch_seterr(err, ORCH_EINVAL, "export: path too long: %s", out_path);
        else if ((fd = mkstemp(tmp)) < 0)
            rc = orch_seterr(err, ORCH_EIO, "export: cannot create %s: %s", tmp, strerror(errno));
    }
    if (rc == ORCH_OK)
        rc = write_archive(&l, kind, fd, out_path, err);
    if (fd >= 0 && rc == ORCH_OK && fchmod(fd, 0644) != 0)
        rc = orch_seterr(err, ORCH_EIO, "export: %s: %s", tmp, strerror(errno));
    if (fd >= 0 && rc == ORCH_OK && fsync(fd) != 0)
        rc = orch_seterr(err, ORCH_EIO, "export: %s: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == ORCH_OK)
        rc = orch_seterr(err, ORCH_EIO, "export: %s: %s", tmp, strerror(errno));
    if (fd >= 0 && rc == ORCH_OK && rename(tmp, out_path) != 0)
        rc = orch_seterr(err, ORCH_EIO, "export: cannot write %s: %s", out_path, strerror(errno));
    if (fd >= 0 && rc != ORCH_OK)
        unlink(tmp);
    members_free(&l);
    return rc;
}
