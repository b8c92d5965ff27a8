/* shards_write.c - writing tar shards with libarchive; see shards_write.h.
 * One of the few files that include archive.h. */
#include "core/shards_write.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct orch_shard_writer {
    char *pattern; /* owned */
    int per_shard, n_expected;
    int compression; /* ARCHIVE_FILTER_* */
    struct archive *ar;
    int fd;
    char name[4096], tmp[4200];
    int shard;    /* index of the open shard, or of the next one */
    int in_shard; /* samples in the open shard */
    int n_done;   /* shards finished */
};

/* Writes shard i's name into buf; returns the number of placeholders
 * (0 or 1) or -1 for an invalid pattern or a name that does not fit. */
static int format_name(const char *pattern, int i, char *buf, size_t n)
{
    size_t o = 0;
    int placeholders = 0;
    for (const char *p = pattern; *p; p++) {
        char piece[32];
        size_t len;
        if (*p != '%') {
            piece[0] = *p;
            len = 1;
        } else if (p[1] == '%') {
            piece[0] = '%';
            len = 1;
            p++;
        } else {
            const char *q = p + 1;
            int zero = *q == '0';
            if (zero)
                q++;
            int width = 0;
            while (*q >= '0' && *q <= '9' && width < 100)
                width = width * 10 + (*q++ - '0');
            if (*q != 'd' || width >= 32 || ++placeholders > 1)
                return -1;
            len = (size_t)snprintf(piece, sizeof piece, zero ? "%0*d" : "%*d", width, i);
            p = q;
        }
        if (o + len >= n)
            return -1;
        memcpy(buf + o, piece, len);
        o += len;
    }
    if (n == 0)
        return -1;
    buf[o] = '\0';
    return placeholders;
}

int orch_shard_name(const char *pattern, int i, char *buf, size_t n)
{
    return format_name(pattern, i, buf, n) < 0 ? -1 : 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int orch_shard_writer_open(const char *pattern, int per_shard, int n_samples, int force,
                           orch_shard_writer **out, orch_err *err)
{
    *out = NULL;
    if (per_shard < 1)
        return orch_seterr(err, ORCH_EINVAL, "--per-shard %d: must be at least 1", per_shard);
    if (n_samples < 1)
        return orch_seterr(err, ORCH_EINVAL, "shards: no samples to write");
    int compression;
    if (ends_with(pattern, ".tar"))
        compression = ARCHIVE_FILTER_NONE;
    else if (ends_with(pattern, ".tar.gz") || ends_with(pattern, ".tgz"))
        compression = ARCHIVE_FILTER_GZIP;
    else if (ends_with(pattern, ".tar.zst"))
        compression = ARCHIVE_FILTER_ZSTD;
    else if (ends_with(pattern, ".tar.xz"))
        compression = ARCHIVE_FILTER_XZ;
    else
        return orch_seterr(err, ORCH_EINVAL,
                           "-o %s: the name must end in .tar, .tar.gz, .tgz, .tar.zst or .tar.xz",
                           pattern);
    char name[4096];
    int placeholders = format_name(pattern, 0, name, sizeof name);
    if (placeholders < 0)
        return orch_seterr(err, ORCH_EINVAL,
                           "-o %s: one integer placeholder at most (%%d, %%03d; %%%% for a %%)",
                           pattern);
    int n_shards = (n_samples + per_shard - 1) / per_shard;
    if (placeholders == 0 && n_shards > 1)
        return orch_seterr(err, ORCH_EINVAL,
                           "-o %s: %d samples make %d shards of %d, so the name needs a "
                           "placeholder such as %%03d",
                           pattern, n_samples, n_shards, per_shard);
    for (int i = 0; i < n_shards && !force; i++) {
        format_name(pattern, i, name, sizeof name);
        struct stat st;
        if (lstat(name, &st) == 0)
            return orch_seterr(err, ORCH_EINVAL, "%s: exists (use --force to overwrite)", name);
    }
    orch_shard_writer *w = calloc(1, sizeof *w);
    if (w == NULL || (w->pattern = strdup(pattern)) == NULL) {
        free(w);
        return orch_seterr(err, ORCH_ENOMEM, "shards: out of memory");
    }
    w->per_shard = per_shard;
    w->n_expected = n_shards;
    w->compression = compression;
    w->fd = -1;
    *out = w;
    return ORCH_OK;
}

static int start_shard(orch_shard_writer *w, orch_err *err)
{
    format_name(w->pattern, w->shard, w->name, sizeof w->name);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp-XXXXXX", w->name);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0)
        return orch_seterr(err, ORCH_EIO, "%s: cannot create a temporary file: %s", w->name,
                           strerror(errno));
    if (fchmod(w->fd, 0644) != 0)
        return orch_seterr(err, ORCH_EIO, "%s: %s", w->tmp, strerror(errno));
    w->ar = archive_write_new();
    if (w->ar == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", w->name);
    int r = archive_write_set_format_ustar(w->ar);
    if (r == ARCHIVE_OK)
        r = archive_write_add_filter(w->ar, w->compression);
    /* gzip stamps the time into its header unless told not to */
    if (r == ARCHIVE_OK && w->compression == ARCHIVE_FILTER_GZIP)
        r = archive_write_set_filter_option(w->ar, "gzip", "timestamp", NULL);
    /* the last block padded like GNU tar and Python's tarfile */
    if (r == ARCHIVE_OK)
        r = archive_write_set_bytes_in_last_block(w->ar, 1);
    if (r == ARCHIVE_OK)
        r = archive_write_open_fd(w->ar, w->fd);
    if (r != ARCHIVE_OK)
        return orch_seterr(err, ORCH_EIO, "%s: %s", w->name, archive_error_string(w->ar));
    w->in_shard = 0;
    return ORCH_OK;
}

/* Closes the open shard: archive end, fsync, rename into place. */
static int finish_shard(orch_shard_writer *w, orch_err *err)
{
    int r = archive_write_close(w->ar);
    archive_write_free(w->ar);
    w->ar = NULL;
    if (r != ARCHIVE_OK)
        return orch_seterr(err, ORCH_EIO, "%s: cannot finish the archive", w->name);
    int rc = fsync(w->fd) == 0 ? 0 : -1;
    rc |= close(w->fd);
    w->fd = -1;
    if (rc != 0 || rename(w->tmp, w->name) != 0)
        return orch_seterr(err, ORCH_EIO, "%s: cannot finish the file: %s", w->name,
                           strerror(errno));
    w->tmp[0] = '\0';
    w->n_done++;
    w->shard++;
    return ORCH_OK;
}

int orch_shard_writer_add(orch_shard_writer *w, const char *key, const orch_shard_member *members,
                          int n, orch_err *err)
{
    int rc;
    if (w->ar == NULL && (rc = start_shard(w, err)) != ORCH_OK)
        return rc;
    struct archive_entry *e = archive_entry_new();
    if (e == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", w->name);
    rc = ORCH_OK;
    for (int m = 0; m < n && rc == ORCH_OK; m++) {
        char path[1024];
        int len = snprintf(path, sizeof path, "%s.%s", key, members[m].ext);
        if (len < 0 || (size_t)len >= sizeof path) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: member name too long", key);
            break;
        }
        archive_entry_clear(e);
        archive_entry_set_pathname(e, path);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)members[m].len);
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (archive_write_header(w->ar, e) != ARCHIVE_OK ||
            (members[m].len > 0 && archive_write_data(w->ar, members[m].data, members[m].len) !=
                                       (la_ssize_t)members[m].len))
            rc = orch_seterr(err, ORCH_EIO, "%s: %s: %s", w->name, path,
                             archive_error_string(w->ar));
    }
    archive_entry_free(e);
    if (rc != ORCH_OK)
        return rc;
    if (++w->in_shard == w->per_shard)
        return finish_shard(w, err);
    return ORCH_OK;
}

int orch_shard_writer_close(orch_shard_writer *w, int abort, int *n_shards, orch_err *err)
{
    int rc = ORCH_OK;
    if (w->ar != NULL && !abort)
        rc = finish_shard(w, err);
    if (w->ar != NULL) {
        archive_write_free(w->ar);
        w->ar = NULL;
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp[0] != '\0')
        unlink(w->tmp);
    if (n_shards != NULL)
        *n_shards = w->n_done;
    free(w->pattern);
    free(w);
    return rc;
}
