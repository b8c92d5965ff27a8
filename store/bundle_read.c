/*
 * bundle_read.c - reading a bundle safely (store/bundle.h).
 *
 * libarchive's extraction to disk is not used: members are read one by one
 * and each one that passes the checks is written, by this code, to a flat
 * file "m000001", "m000002", ... in a private staging folder (mkdtemp), so
 * no name from the archive ever becomes a path. Names, types and sizes are
 * still checked, so a hostile archive is refused with one line that says
 * what is wrong with it, rather than silently rearranged:
 *
 *   - the first member is MANIFEST.json (format ORCH_BUNDLE_FORMAT), and
 *     every other member is listed there with its size and sha256, once;
 *   - names are plain relative paths: no leading '/', no "." or ".."
 *     component, no backslash or control character;
 *   - regular files only: no symbolic or hard link, device, FIFO, socket
 *     or directory;
 *   - sizes within the limits, counted as bytes arrive (a header that lies
 *     about its size does not get past), and the expanded bytes within
 *     max_ratio times the compressed bytes read so far (decompression bombs);
 *   - a truncated or corrupt archive (libarchive's error) is refused.
 *
 * On any refusal the staging folder is removed: nothing is left behind.
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

#define MANIFEST_MAX ((int64_t)16 << 20)

void orch_bundle_default_limits(orch_bundle_limits *l)
{
    l->max_member_bytes = (int64_t)64 << 30;
    l->max_members = 100000;
    l->max_total_bytes = (int64_t)256 << 30;
    l->max_ratio = 200.0;
    l->ratio_floor = (int64_t)64 << 20;
}

/* Why name is not a plain relative member name, or NULL. */
static const char *bad_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return "a member without a name";
    if (name[0] == '/')
        return "an absolute path";
    if (strlen(name) > 1024)
        return "a name longer than 1024 bytes";
    for (const char *c = name; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
            return "a control character or backslash in its name";
    const char *p = name;
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return "a '..' in its path (it would leave the bundle's folder)";
        if (len == 0 || (len == 1 && p[0] == '.'))
            return "an empty or '.' component in its path";
        p += len;
        if (*p == '/')
            p++;
    }
    return NULL;
}

static int is_hex64(const char *h)
{
    size_t n = 0;
    for (; h[n] != '\0'; n++)
        if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f')))
            return 0;
    return n == 64;
}

/* What MANIFEST.json lists. */
typedef struct listed {
    char *name;
    int64_t bytes;
    char sha256[65];
    int seen;
} listed;

typedef struct reader {
    const char *path; /* the bundle, for messages */
    const orch_bundle_limits *lim;
    orch_archive_reader *a; /* owned */
    int dirfd;
    listed *list;
    int n_list;
    int64_t total;
    bundle_staged *out;
} reader;

static int refuse(reader *r, const char *member, orch_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(reader *r, const char *member, orch_err *err, const char *fmt, ...)
{
    char what[ORCH_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char safe[300];
    store_sanitize(member != NULL ? member : "", safe, sizeof safe);
    if (member != NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: %s", r->path, safe, what);
    return orch_seterr(err, ORCH_EINVAL, "%s: %s", r->path, what);
}

static int corrupt(reader *r, const char *member, orch_err *err)
{
    return refuse(r, member, err, "truncated or corrupt archive (%s)",
                  orch_archive_reader_error(r->a));
}

static int parse_manifest(reader *r, const char *text, size_t n, orch_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return refuse(r, "MANIFEST.json", err, "not valid JSON (line %d: %s)", je.line, je.text);
    int rc = ORCH_OK;
    json_t *fmt = json_object_get(root, "format"), *members = json_object_get(root, "members");
    if (!json_is_integer(fmt))
        rc = refuse(r, "MANIFEST.json", err, "no bundle format number");
    else if (json_integer_value(fmt) != ORCH_BUNDLE_FORMAT)
        rc = refuse(r, "MANIFEST.json", err,
                    "unknown bundle format %lld (this orch reads format %d; use a newer orch)",
                    (long long)json_integer_value(fmt), ORCH_BUNDLE_FORMAT);
    else if (!json_is_array(members) || !json_is_array(json_object_get(root, "runs")))
        rc = refuse(r, "MANIFEST.json", err, "no list of members or runs");
    size_t k = rc == ORCH_OK ? json_array_size(members) : 0;
    if (rc == ORCH_OK && (int64_t)k + 1 > r->lim->max_members)
        rc = refuse(r, NULL, err, "%zu members, more than the limit of %lld", k + 1,
                    (long long)r->lim->max_members);
    if (rc == ORCH_OK && k > 0 && (r->list = calloc(k, sizeof *r->list)) == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", r->path);
    for (size_t i = 0; rc == ORCH_OK && i < k; i++) {
        json_t *m = json_array_get(members, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        json_t *bytes = json_object_get(m, "bytes");
        const char *sha = json_string_value(json_object_get(m, "sha256"));
        const char *why = bad_name(name);
        if (why != NULL || !json_is_integer(bytes) || json_integer_value(bytes) < 0 ||
            sha == NULL || !is_hex64(sha)) {
            rc = refuse(r, "MANIFEST.json", err, "member %zu: %s", i + 1,
                        why != NULL ? why : "needs a name, bytes >= 0 and a sha256");
            break;
        }
        for (int j = 0; j < r->n_list && rc == ORCH_OK; j++)
            if (strcmp(r->list[j].name, name) == 0)
                rc = refuse(r, name, err, "listed twice in MANIFEST.json");
        if (rc == ORCH_OK && (r->list[i].name = strdup(name)) == NULL)
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", r->path);
        if (rc != ORCH_OK)
            break;
        r->list[i].bytes = (int64_t)json_integer_value(bytes);
        snprintf(r->list[i].sha256, sizeof r->list[i].sha256, "%s", sha);
        r->n_list = (int)i + 1;
    }
    json_decref(root);
    return rc;
}

/* Reads the current member's data: into mem (the manifest) or the staged
 * file fd, hashing it; refuses past limit bytes and past the ratio. */
static int read_data(reader *r, const char *name, int64_t limit, int fd, bundle_buf *mem,
                     char sha[65], int64_t *got, orch_err *err)
{
    bundle_sha h;
    if (bundle_sha_start(&h) != 0)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", r->path);
    static char buf[1 << 16];
    int rc = ORCH_OK;
    *got = 0;
    for (;;) {
        int64_t n = orch_archive_read(r->a, buf, sizeof buf, NULL);
        if (n == 0)
            break;
        if (n < 0) {
            rc = corrupt(r, name, err);
            break;
        }
        *got += n;
        r->total += n;
        if (*got > limit) {
            rc = refuse(r, name, err, "more than %lld bytes (%s)", (long long)limit,
                        limit == r->lim->max_member_bytes ? "the limit for a member"
                                                          : "its size in MANIFEST.json");
            break;
        }
        if (r->total > r->lim->max_total_bytes) {
            rc = refuse(r, name, err, "the bundle expands to more than %lld bytes (the limit)",
                        (long long)r->lim->max_total_bytes);
            break;
        }
        int64_t packed = orch_archive_packed_bytes(r->a);
        if (r->total > r->lim->ratio_floor && packed > 0 &&
            (double)r->total > r->lim->max_ratio * (double)packed) {
            rc = refuse(r, name, err,
                        "decompression bomb: %lld bytes expanded from %lld (more than %g times)",
                        (long long)r->total, (long long)packed, r->lim->max_ratio);
            break;
        }
        bundle_sha_add(&h, buf, (size_t)n);
        if (mem != NULL) {
            bundle_buf_add(mem, buf, (size_t)n);
            if (mem->oom) {
                rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", r->path);
                break;
            }
        } else {
            for (int64_t at = 0; at < n && rc == ORCH_OK;) {
                ssize_t w = write(fd, buf + at, (size_t)(n - at));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    rc = orch_seterr(err, ORCH_EIO, "%s: %s: cannot stage it: %s", r->path, name,
                                     strerror(errno));
                else
                    at += w;
            }
            if (rc != ORCH_OK)
                break;
        }
    }
    bundle_sha_end(&h, sha);
    return rc;
}

static int add_member(bundle_staged *b, const char *name, int64_t bytes, const char *sha)
{
    bundle_member *g = realloc(b->members, sizeof *g * (size_t)(b->n + 1));
    if (g == NULL)
        return -1;
    b->members = g;
    bundle_member *m = &b->members[b->n];
    memset(m, 0, sizeof *m);
    if ((m->name = strdup(name)) == NULL)
        return -1;
    snprintf(m->staged, sizeof m->staged, "m%06d", b->n);
    m->bytes = bytes;
    snprintf(m->sha256, sizeof m->sha256, "%s", sha);
    b->n++;
    return 0;
}

/* One member after the manifest. */
static int one_member(reader *r, const orch_archive_member *e, const char *name, orch_err *err)
{
    listed *l = NULL;
    for (int i = 0; i < r->n_list; i++)
        if (strcmp(r->list[i].name, name) == 0)
            l = &r->list[i];
    if (l == NULL)
        return refuse(r, name, err, "not listed in MANIFEST.json");
    if (l->seen)
        return refuse(r, name, err, "a duplicate member (the name appears twice in the archive)");
    l->seen = 1;
    if (l->bytes > r->lim->max_member_bytes || (e->has_size && e->size > r->lim->max_member_bytes))
        return refuse(r, name, err, "%lld bytes, more than the limit of %lld for a member",
                      (long long)(l->bytes > r->lim->max_member_bytes ? l->bytes : e->size),
                      (long long)r->lim->max_member_bytes);
    if (e->has_size && e->size != l->bytes)
        return refuse(r, name, err, "%lld bytes in the archive, %lld in MANIFEST.json",
                      (long long)e->size, (long long)l->bytes);
    bundle_staged *b = r->out;
    if (add_member(b, name, l->bytes, l->sha256) != 0)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", r->path);
    int fd = openat(r->dirfd, b->members[b->n - 1].staged,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return orch_seterr(err, ORCH_EIO, "%s: %s: cannot stage it: %s", r->path, name,
                           strerror(errno));
    char sha[65];
    int64_t got = 0;
    int rc = read_data(r, name, l->bytes, fd, NULL, sha, &got, err);
    if (close(fd) != 0 && rc == ORCH_OK)
        rc = orch_seterr(err, ORCH_EIO, "%s: %s: cannot stage it: %s", r->path, name,
                         strerror(errno));
    if (rc == ORCH_OK && got != l->bytes)
        rc = refuse(r, name, err, "%lld bytes, %lld in MANIFEST.json (truncated?)", (long long)got,
                    (long long)l->bytes);
    if (rc == ORCH_OK && strcmp(sha, l->sha256) != 0)
        rc = refuse(r, name, err, "checksum mismatch: sha256 %.12s..., MANIFEST.json says %.12s...",
                    sha, l->sha256);
    return rc;
}

/* Why e is not a regular file, or NULL. */
static const char *bad_type(const orch_archive_member *e, char *why, size_t n)
{
    switch (e->type) {
    case ORCH_ARCHIVE_FILE:
        return NULL;
    case ORCH_ARCHIVE_HARDLINK:
        snprintf(why, n, "a hard link (to %.200s); a bundle holds regular files only", e->link);
        return why;
    case ORCH_ARCHIVE_SYMLINK:
        snprintf(why, n, "a symbolic link (to %.200s); a bundle holds regular files only",
                 e->link != NULL ? e->link : "?");
        return why;
    case ORCH_ARCHIVE_CHARDEV:
    case ORCH_ARCHIVE_BLOCKDEV:
        return "a device file; a bundle holds regular files only";
    case ORCH_ARCHIVE_FIFO:
        return "a FIFO; a bundle holds regular files only";
    case ORCH_ARCHIVE_SOCKET:
        return "a socket; a bundle holds regular files only";
    case ORCH_ARCHIVE_DIR:
        return "a directory entry; a bundle holds regular files only";
    default:
        return "not a regular file";
    }
}

static int read_all(reader *r, orch_err *err)
{
    orch_archive_member ent;
    const orch_archive_member *e = &ent;
    int64_t count = 0;
    for (;;) {
        int h = orch_archive_next(r->a, &ent, NULL);
        if (h == 1)
            break;
        if (h != ORCH_OK) {
            if (count == 0)
                return corrupt(r, NULL, err);
            return refuse(r, NULL, err, "truncated or corrupt archive after member %s (%s)",
                          r->out->members[r->out->n - 1].name, orch_archive_reader_error(r->a));
        }
        const char *name = e->name;
        if (++count > r->lim->max_members)
            return refuse(r, NULL, err, "more than %lld members (the limit)",
                          (long long)r->lim->max_members);
        const char *why = bad_name(name);
        if (why != NULL)
            return refuse(r, name, err, "%s", why);
        char tbuf[300];
        if ((why = bad_type(e, tbuf, sizeof tbuf)) != NULL)
            return refuse(r, name, err, "%s", why);
        if (count == 1) {
            if (strcmp(name, "MANIFEST.json") != 0)
                return refuse(r, name, err,
                              "the first member must be MANIFEST.json (is this an orch bundle?)");
            bundle_buf mem = {0};
            char sha[65];
            int64_t got = 0;
            int rc = read_data(r, name, MANIFEST_MAX, -1, &mem, sha, &got, err);
            if (rc == ORCH_OK)
                rc = parse_manifest(r, mem.s != NULL ? mem.s : "", mem.len, err);
            if (rc == ORCH_OK && add_member(r->out, name, got, sha) != 0)
                rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", r->path);
            if (rc == ORCH_OK)
                r->out->manifest = mem.s;
            else
                free(mem.s);
            if (rc != ORCH_OK)
                return rc;
            continue;
        }
        int rc = one_member(r, e, name, err);
        if (rc != ORCH_OK)
            return rc;
    }
    if (count == 0)
        return refuse(r, NULL, err, "an empty archive (no MANIFEST.json)");
    for (int i = 0; i < r->n_list; i++)
        if (!r->list[i].seen)
            return refuse(r, r->list[i].name, err,
                          "listed in MANIFEST.json but not in the archive (truncated?)");
    return ORCH_OK;
}

int bundle_stage(const char *path, const orch_bundle_limits *limits, const char *dir_template,
                 bundle_staged *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    orch_bundle_limits def;
    if (limits == NULL) {
        orch_bundle_default_limits(&def);
        limits = &def;
    }
    struct stat st;
    if (path == NULL || stat(path, &st) != 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot read the bundle: %s",
                           path != NULL ? path : "(none)", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return orch_seterr(err, ORCH_EINVAL, "%s: not a regular file", path);
    if ((size_t)snprintf(out->dir, sizeof out->dir, "%s", dir_template) >= sizeof out->dir)
        return orch_seterr(err, ORCH_EINVAL, "%s: path too long", dir_template);
    if (mkdtemp(out->dir) == NULL) {
        int rc = orch_seterr(err, ORCH_EIO, "cannot make a staging folder %s: %s", out->dir,
                             strerror(errno));
        out->dir[0] = '\0';
        return rc;
    }
    reader r = {.path = path, .lim = limits, .dirfd = -1, .out = out};
    r.dirfd = open(out->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = r.dirfd < 0
                 ? orch_seterr(err, ORCH_EIO, "%s: cannot open the staging folder", out->dir)
                 : ORCH_OK;
    if (rc == ORCH_OK) {
        /* tar or zip, compressed as orch export writes them (gzip, zstd, xz) */
        int o = orch_archive_reader_open(path, ORCH_ARCHIVE_READ_ZIP | ORCH_ARCHIVE_READ_STRICT,
                                         &r.a, err);
        if (o == ORCH_ENOMEM)
            rc = o;
        else if (o != ORCH_OK)
            rc = corrupt(&r, NULL, err);
    }
    if (rc == ORCH_OK)
        rc = read_all(&r, err);
    orch_archive_reader_close(r.a);
    if (r.dirfd >= 0)
        close(r.dirfd);
    for (int i = 0; i < r.n_list; i++)
        free(r.list[i].name);
    free(r.list);
    if (rc != ORCH_OK)
        bundle_unstage(out);
    return rc;
}

const bundle_member *bundle_find(const bundle_staged *b, const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->members[i].name, name) == 0)
            return &b->members[i];
    return NULL;
}

int bundle_slurp(const bundle_staged *b, const bundle_member *m, char **text, orch_err *err)
{
    char path[STORE_PATH_MAX + 80];
    *text = NULL;
    if (m == b->members && b->manifest != NULL) {
        *text = strdup(b->manifest);
        return *text != NULL ? ORCH_OK : orch_seterr(err, ORCH_ENOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/%s", b->dir, m->staged);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return orch_seterr(err, ORCH_EIO, "%s: %s", path, strerror(errno));
    char *buf = malloc((size_t)m->bytes + 1);
    size_t got = buf != NULL ? fread(buf, 1, (size_t)m->bytes, f) : 0;
    fclose(f);
    if (buf == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "out of memory");
    if ((int64_t)got != m->bytes) {
        free(buf);
        return orch_seterr(err, ORCH_EIO, "%s: short read", path);
    }
    buf[got] = '\0';
    *text = buf;
    return ORCH_OK;
}

/* Removes what dir holds, one level of folders deep (the staging folder's
 * per-run artifact folders, an empty folder SQLite made). */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            continue;
        char sub[STORE_PATH_MAX + 300];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        DIR *s = opendir(sub);
        struct dirent *se;
        while (s != NULL && (se = readdir(s)) != NULL)
            if (strcmp(se->d_name, ".") != 0 && strcmp(se->d_name, "..") != 0)
                unlinkat(dirfd(s), se->d_name, 0);
        if (s != NULL)
            closedir(s);
        unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
    }
    if (d != NULL)
        closedir(d);
}

void bundle_unstage(bundle_staged *b)
{
    if (b->dir[0] != '\0') {
        empty_dir(b->dir);
        rmdir(b->dir);
    }
    for (int i = 0; i < b->n; i++)
        free(b->members[i].name);
    free(b->members);
    free(b->manifest);
    memset(b, 0, sizeof *b);
}

int bundle_manifest_runs(const bundle_staged *b, const char *path, char (**uuids)[40], int *n,
                         orch_err *err)
{
    *uuids = NULL;
    *n = 0;
    json_t *root = json_loads(b->manifest != NULL ? b->manifest : "", 0, NULL);
    json_t *runs = json_object_get(root, "runs");
    size_t k = json_array_size(runs);
    int rc = ORCH_OK;
    if (k > 0 && (*uuids = calloc(k, sizeof **uuids)) == NULL)
        rc = orch_seterr(err, ORCH_ENOMEM, "out of memory");
    for (size_t i = 0; rc == ORCH_OK && i < k; i++) {
        const char *u = json_string_value(json_array_get(runs, i));
        size_t len = u != NULL ? strlen(u) : 0;
        int ok = len == 36;
        for (size_t j = 0; ok && j < len; j++)
            ok = (j == 8 || j == 13 || j == 18 || j == 23)
                     ? u[j] == '-'
                     : ((u[j] >= '0' && u[j] <= '9') || (u[j] >= 'a' && u[j] <= 'f'));
        if (!ok)
            rc = orch_seterr(err, ORCH_EINVAL, "%s: MANIFEST.json: run %zu is not a UUID", path,
                             i + 1);
        else
            snprintf((*uuids)[i], 40, "%s", u);
    }
    json_decref(root);
    if (rc == ORCH_OK)
        *n = (int)k;
    else {
        free(*uuids);
        *uuids = NULL;
    }
    return rc;
}
