/* shards_write.c - writing tar shards through store/archive_io.h; see
 * shards_write.h. */
#include "core/shards_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/archive_io.h"

/* ustar members as GNU tar and Python's tarfile lay them out, every
 * member from the epoch: a shard's bytes depend on its samples only */
static const orch_archive_layout shard_layout = {.pax = 0, .mtime = 0, .owner = NULL};

struct orch_shard_writer {
    char *pattern; /* owned */
    int per_shard, n_expected;
    orch_archive_kind kind;
    orch_archive_writer *ar; /* the open shard, owned; NULL between shards */
    char name[4096];
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

int orch_shard_writer_open(const char *pattern, int per_shard, int n_samples, int force,
                           orch_shard_writer **out, orch_err *err)
{
    *out = NULL;
    if (per_shard < 1)
        return orch_seterr(err, ORCH_EINVAL, "--per-shard %d: must be at least 1", per_shard);
    if (n_samples < 1)
        return orch_seterr(err, ORCH_EINVAL, "shards: no samples to write");
    orch_archive_kind kind;
    if (orch_archive_kind_of(pattern, &kind) != 0 || kind == ORCH_ARCHIVE_ZIP)
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
    w->kind = kind;
    *out = w;
    return ORCH_OK;
}

static int start_shard(orch_shard_writer *w, orch_err *err)
{
    format_name(w->pattern, w->shard, w->name, sizeof w->name);
    int rc = orch_archive_writer_open(w->name, w->kind, &shard_layout, &w->ar, err);
    w->in_shard = 0;
    return rc;
}

/* Closes the open shard: archive end, fsync, rename into place. */
static int finish_shard(orch_shard_writer *w, orch_err *err)
{
    int rc = orch_archive_writer_close(w->ar, 0, err);
    w->ar = NULL;
    if (rc != ORCH_OK)
        return rc;
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
    for (int m = 0; m < n; m++) {
        char path[1024];
        int len = snprintf(path, sizeof path, "%s.%s", key, members[m].ext);
        if (len < 0 || (size_t)len >= sizeof path)
            return orch_seterr(err, ORCH_EINVAL, "%s: member name too long", key);
        if ((rc = orch_archive_writer_add(w->ar, path, members[m].data, members[m].len, err)) !=
            ORCH_OK)
            return rc;
    }
    if (++w->in_shard == w->per_shard)
        return finish_shard(w, err);
    return ORCH_OK;
}

int orch_shard_writer_close(orch_shard_writer *w, int abort, int *n_shards, orch_err *err)
{
    int rc = ORCH_OK;
    if (w->ar != NULL && !abort)
        rc = finish_shard(w, err);
    if (w->ar != NULL) /* aborted, or failed to finish: no partial shard stays */
        orch_archive_writer_close(w->ar, 1, NULL);
    if (n_shards != NULL)
        *n_shards = w->n_done;
    free(w->pattern);
    free(w);
    return rc;
}
