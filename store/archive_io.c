/* archive_io.c - tar-family archives over libarchive; see archive_io.h.
 * The only file that includes archive.h. */
#include "store/archive_io.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ reading */

struct orch_archive_reader {
    struct archive *ar;        /* owned */
    char *path;                /* owned */
    unsigned flags;            /* ORCH_ARCHIVE_READ_* */
    struct archive_entry *ent; /* the current member, owned by ar */
    const char *name;          /* its name, owned by ar */
};

static const char *why(struct archive *ar)
{
    const char *msg = ar != NULL ? archive_error_string(ar) : NULL;
    return msg != NULL ? msg : "unreadable";
}

int orch_archive_reader_open(const char *path, unsigned flags, orch_archive_reader **out,
                             orch_err *err)
{
    *out = NULL;
    orch_archive_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->path = strdup(path)) == NULL || (r->ar = archive_read_new()) == NULL) {
        if (r != NULL)
            free(r->path);
        free(r);
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
    }
    *out = r;
    r->flags = flags;
    if (flags & ORCH_ARCHIVE_READ_ANY_FILTER) {
        archive_read_support_filter_all(r->ar); /* gzip, zstd, xz, ... by their bytes */
    } else {
        archive_read_support_filter_gzip(r->ar);
        archive_read_support_filter_zstd(r->ar);
        archive_read_support_filter_xz(r->ar);
    }
    archive_read_support_format_tar(r->ar);
    if (flags & ORCH_ARCHIVE_READ_ZIP)
        archive_read_support_format_zip(r->ar);
    if (archive_read_open_filename(r->ar, path, 1 << 16) != ARCHIVE_OK)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s", path, why(r->ar));
    return ORCH_OK;
}

static orch_archive_type type_of(struct archive_entry *e)
{
    if (archive_entry_hardlink(e) != NULL)
        return ORCH_ARCHIVE_HARDLINK;
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
        return ORCH_ARCHIVE_FILE;
    case AE_IFDIR:
        return ORCH_ARCHIVE_DIR;
    case AE_IFLNK:
        return ORCH_ARCHIVE_SYMLINK;
    case AE_IFCHR:
        return ORCH_ARCHIVE_CHARDEV;
    case AE_IFBLK:
        return ORCH_ARCHIVE_BLOCKDEV;
    case AE_IFIFO:
        return ORCH_ARCHIVE_FIFO;
    case AE_IFSOCK:
        return ORCH_ARCHIVE_SOCKET;
    default:
        return ORCH_ARCHIVE_OTHER;
    }
}

int orch_archive_next(orch_archive_reader *r, orch_archive_member *m, orch_err *err)
{
    memset(m, 0, sizeof *m);
    r->ent = NULL;
    r->name = NULL;
    struct archive_entry *e;
    int h = archive_read_next_header(r->ar, &e);
    if (h == ARCHIVE_EOF)
        return 1;
    if (h != ARCHIVE_OK && (h != ARCHIVE_WARN || (r->flags & ORCH_ARCHIVE_READ_STRICT)))
        return orch_seterr(err, ORCH_EINVAL, "%s: %s", r->path, why(r->ar));
    r->ent = e;
    r->name = archive_entry_pathname(e);
    if (r->name == NULL)
        r->name = "";
    m->name = r->name;
    m->type = type_of(e);
    m->link = archive_entry_hardlink(e);
    if (m->link == NULL && m->type == ORCH_ARCHIVE_SYMLINK)
        m->link = archive_entry_symlink(e);
    m->has_size = archive_entry_size_is_set(e) != 0;
    m->size = m->has_size ? archive_entry_size(e) : 0;
    return ORCH_OK;
}

int64_t orch_archive_read(orch_archive_reader *r, void *buf, size_t n, orch_err *err)
{
    la_ssize_t got = archive_read_data(r->ar, buf, n);
    if (got < 0) {
        orch_seterr(err, ORCH_EINVAL, "%s: %s: %s", r->path, r->name != NULL ? r->name : "",
                    why(r->ar));
        return -1;
    }
    return (int64_t)got;
}

int orch_archive_read_member(orch_archive_reader *r, unsigned char **buf, size_t *cap, size_t *len,
                             int64_t max, orch_err *err)
{
    const char *name = r->name != NULL ? r->name : "";
    int64_t size =
        r->ent != NULL && archive_entry_size_is_set(r->ent) ? archive_entry_size(r->ent) : 0;
    if (size < 0 || size > max)
        return orch_seterr(err, ORCH_EINVAL, "%s: %s: %lld bytes (at most %lld per member)",
                           r->path, name, (long long)size, (long long)max);
    size_t want = (size_t)size + 1;
    if (*cap < want) {
        unsigned char *p = realloc(*buf, want);
        if (p == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "%s: %s: out of memory", r->path, name);
        *buf = p;
        *cap = want;
    }
    size_t got = 0;
    while (got < (size_t)size) {
        la_ssize_t n = archive_read_data(r->ar, *buf + got, (size_t)size - got);
        if (n < 0)
            return orch_seterr(err, ORCH_EINVAL, "%s: %s: %s", r->path, name, why(r->ar));
        if (n == 0)
            return orch_seterr(err, ORCH_EINVAL, "%s: %s: truncated: %zu of %lld bytes", r->path,
                               name, got, (long long)size);
        got += (size_t)n;
    }
    (*buf)[got] = '\0'; /* labels and manifests are parsed as text */
    *len = got;
    return ORCH_OK;
}

int64_t orch_archive_packed_bytes(const orch_archive_reader *r)
{
    return (int64_t)archive_filter_bytes(r->ar, -1);
}

const char *orch_archive_reader_error(const orch_archive_reader *r)
{
    return why(r != NULL ? r->ar : NULL);
}

void orch_archive_reader_close(orch_archive_reader *r)
{
    if (r == NULL)
        return;
    archive_read_free(r->ar);
    free(r->path);
    free(r);
}

/* ------------------------------------------------------------ writing */

struct orch_archive_writer {
    struct archive *ar;        /* owned */
    struct archive_entry *ent; /* owned, reused for every member */
    orch_archive_layout layout;
    char *owner; /* owned copy of layout.owner */
    int fd;
    char *path; /* owned */
    char *tmp;  /* owned; "" once renamed */
};

int orch_archive_kind_of(const char *name, orch_archive_kind *kind)
{
    /* each suffix once: `orch shards` and `orch export` name files alike */
    static const struct {
        const char *suffix;
        orch_archive_kind kind;
    } table[] = {{".tar.gz", ORCH_ARCHIVE_TAR_GZ},   {".tgz", ORCH_ARCHIVE_TAR_GZ},
                 {".tar.zst", ORCH_ARCHIVE_TAR_ZST}, {".tar.xz", ORCH_ARCHIVE_TAR_XZ},
                 {".tar", ORCH_ARCHIVE_TAR},         {".zip", ORCH_ARCHIVE_ZIP}};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t m = strlen(table[i].suffix);
        if (n > m && strcmp(name + n - m, table[i].suffix) == 0) {
            *kind = table[i].kind;
            return 0;
        }
    }
    return -1;
}

static int werr(orch_archive_writer *w, const char *member, orch_err *err)
{
    const char *msg = archive_error_string(w->ar);
    if (member != NULL)
        return orch_seterr(err, ORCH_EIO, "%s: %s: %s", w->path, member,
                           msg != NULL ? msg : "write failed");
    return orch_seterr(err, ORCH_EIO, "%s: %s", w->path, msg != NULL ? msg : "write failed");
}

static void writer_free(orch_archive_writer *w)
{
    if (w->ar != NULL)
        archive_write_free(w->ar);
    if (w->ent != NULL)
        archive_entry_free(w->ent);
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp != NULL && w->tmp[0] != '\0')
        unlink(w->tmp);
    free(w->owner);
    free(w->tmp);
    free(w->path);
    free(w);
}

int orch_archive_writer_open(const char *path, orch_archive_kind kind,
                             const orch_archive_layout *layout, orch_archive_writer **out,
                             orch_err *err)
{
    *out = NULL;
    orch_archive_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
    w->fd = -1;
    w->layout = *layout;
    size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
    if ((w->path = strdup(path)) == NULL || (w->tmp = malloc(n)) == NULL ||
        (layout->owner != NULL && (w->owner = strdup(layout->owner)) == NULL) ||
        (w->ent = archive_entry_new()) == NULL || (w->ar = archive_write_new()) == NULL) {
        writer_free(w);
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", path);
    }
    snprintf(w->tmp, n, "%s.tmp-XXXXXX", path);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        int rc = orch_seterr(err, ORCH_EIO, "%s: cannot create a temporary file: %s", path,
                             strerror(errno));
        w->tmp[0] = '\0';
        writer_free(w);
        return rc;
    }
    if (fchmod(w->fd, 0644) != 0) {
        int rc = orch_seterr(err, ORCH_EIO, "%s: %s", w->tmp, strerror(errno));
        writer_free(w);
        return rc;
    }
    int r;
    if (kind == ORCH_ARCHIVE_ZIP)
        r = archive_write_set_format_zip(w->ar);
    else if (layout->pax)
        r = archive_write_set_format_pax_restricted(w->ar);
    else
        r = archive_write_set_format_ustar(w->ar);
    if (r == ARCHIVE_OK && kind == ORCH_ARCHIVE_TAR_GZ) {
        r = archive_write_add_filter_gzip(w->ar);
        /* gzip stamps the time into its header unless told not to */
        if (r == ARCHIVE_OK)
            r = archive_write_set_filter_option(w->ar, "gzip", "timestamp", NULL);
    } else if (r == ARCHIVE_OK && kind == ORCH_ARCHIVE_TAR_ZST) {
        r = archive_write_add_filter_zstd(w->ar);
    } else if (r == ARCHIVE_OK && kind == ORCH_ARCHIVE_TAR_XZ) {
        r = archive_write_add_filter_xz(w->ar);
    }
    /* ustar: the last block padded like GNU tar and Python's tarfile */
    if (r == ARCHIVE_OK && !layout->pax && kind != ORCH_ARCHIVE_ZIP)
        r = archive_write_set_bytes_in_last_block(w->ar, 1);
    if (r == ARCHIVE_OK)
        r = archive_write_open_fd(w->ar, w->fd);
    if (r != ARCHIVE_OK) {
        int rc = werr(w, NULL, err);
        writer_free(w);
        return rc;
    }
    *out = w;
    return ORCH_OK;
}

int orch_archive_writer_begin(orch_archive_writer *w, const char *name, int64_t size, orch_err *err)
{
    struct archive_entry *e = w->ent;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, (time_t)w->layout.mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (w->owner != NULL) {
        archive_entry_set_uname(e, w->owner);
        archive_entry_set_gname(e, w->owner);
    }
    if (archive_write_header(w->ar, e) != ARCHIVE_OK)
        return werr(w, name, err);
    return ORCH_OK;
}

int orch_archive_writer_data(orch_archive_writer *w, const void *data, size_t len, orch_err *err)
{
    if (len > 0 && archive_write_data(w->ar, data, len) != (la_ssize_t)len)
        return werr(w, archive_entry_pathname(w->ent), err);
    return ORCH_OK;
}

int orch_archive_writer_add(orch_archive_writer *w, const char *name, const void *data, size_t len,
                            orch_err *err)
{
    int rc = orch_archive_writer_begin(w, name, (int64_t)len, err);
    if (rc == ORCH_OK)
        rc = orch_archive_writer_data(w, data, len, err);
    return rc;
}

int orch_archive_writer_close(orch_archive_writer *w, int abort, orch_err *err)
{
    int rc = ORCH_OK;
    if (!abort) {
        if (archive_write_close(w->ar) != ARCHIVE_OK) {
            rc = werr(w, NULL, err);
        } else {
            int bad = fsync(w->fd) != 0;
            bad |= close(w->fd) != 0;
            w->fd = -1;
            if (bad || rename(w->tmp, w->path) != 0)
                rc = orch_seterr(err, ORCH_EIO, "%s: cannot finish the file: %s", w->path,
                                 strerror(errno));
            else
                w->tmp[0] = '\0';
        }
    }
    writer_free(w);
    return rc;
}

const char *orch_archive_writer_path(const orch_archive_writer *w)
{
    return w->path;
}
