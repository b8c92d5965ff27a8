/*
 * archive_io.h - tar-family archives, the one door to libarchive
 * (docs/architecture.md: every external library is included by one room;
 * only store/archive_io.c includes archive.h).
 *
 * Reading streams the members of an archive in order without extracting
 * anything: next member (name, type, size), then its bytes into a caller
 * buffer, a grown buffer with a size cap, or skipped (the next call to
 * orch_archive_next skips what was not read). Compression is detected from
 * the bytes.
 *
 * Writing is deterministic: the same members give the same bytes (fixed
 * mtime, uid/gid 0, mode 0644, gzip without its time stamp), into a
 * temporary file next to the target, renamed into place on close, so a
 * reader never sees half an archive.
 *
 * Errors are one line naming the archive and, where there is one, the
 * member: "ARCHIVE: MESSAGE" or "ARCHIVE: MEMBER: MESSAGE".
 */
#ifndef ORCH_ARCHIVE_IO_H
#define ORCH_ARCHIVE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ------------------------------------------------------------ reading */

typedef struct orch_archive_reader orch_archive_reader;

enum {
    /* accept zip archives too (default: tar only, ustar/pax/gnu) */
    ORCH_ARCHIVE_READ_ZIP = 1,
    /* every compression libarchive knows (bzip2, lz4, ...); default: only
     * gzip, zstd and xz, the ones orch writes */
    ORCH_ARCHIVE_READ_ANY_FILTER = 2,
    /* a header libarchive reads only with a warning is refused as corrupt
     * (bundles); default: used, as tar readers do */
    ORCH_ARCHIVE_READ_STRICT = 4,
};

typedef enum orch_archive_type {
    ORCH_ARCHIVE_FILE = 0,
    ORCH_ARCHIVE_DIR,
    ORCH_ARCHIVE_SYMLINK,
    ORCH_ARCHIVE_HARDLINK, /* a regular-looking entry that names another */
    ORCH_ARCHIVE_CHARDEV,
    ORCH_ARCHIVE_BLOCKDEV,
    ORCH_ARCHIVE_FIFO,
    ORCH_ARCHIVE_SOCKET,
    ORCH_ARCHIVE_OTHER,
} orch_archive_type;

/* One member's header; the strings are owned by the reader and valid until
 * the next orch_archive_next or orch_archive_reader_close. */
typedef struct orch_archive_member {
    const char *name;
    orch_archive_type type;
    const char *link; /* the target of a symlink or hard link, else NULL */
    int has_size;     /* 0: the archive does not say (zip streams) */
    int64_t size;
} orch_archive_member;

/* Opens path for reading (flags: ORCH_ARCHIVE_READ_*). *out is set whenever
 * a reader was allocated, also when opening failed, so the caller can word
 * its own refusal with orch_archive_reader_error; close it either way.
 * Returns ORCH_OK, ORCH_EINVAL ("PATH: why": not an archive, unreadable),
 * ORCH_ENOMEM (*out NULL). */
int orch_archive_reader_open(const char *path, unsigned flags, orch_archive_reader **out,
                             orch_err *err);

/* The next member into *m. Returns ORCH_OK, 1 at the end of the archive, or
 * ORCH_EINVAL ("ARCHIVE: why": truncated, corrupt). */
int orch_archive_next(orch_archive_reader *r, orch_archive_member *m, orch_err *err);

/* Reads up to n bytes of the current member into buf: returns the count,
 * 0 at the end of the member, or -1 with ORCH_EINVAL in err
 * ("ARCHIVE: MEMBER: why"). */
int64_t orch_archive_read(orch_archive_reader *r, void *buf, size_t n, orch_err *err);

/* Reads the whole current member into *buf (malloc'd, grown as needed,
 * capacity *cap; the caller frees it), *len bytes and a '\0' after them so
 * text members parse as strings. A member over max bytes is refused before
 * anything is allocated ("ARCHIVE: MEMBER: N bytes (at most MAX per
 * member)"), one shorter than its header says is refused as truncated.
 * Returns ORCH_OK, ORCH_EINVAL, ORCH_ENOMEM. */
int orch_archive_read_member(orch_archive_reader *r, unsigned char **buf, size_t *cap, size_t *len,
                             int64_t max, orch_err *err);

/* Compressed bytes consumed so far, for bomb detection (ratio of expanded
 * to packed); -1 when unknown. */
int64_t orch_archive_packed_bytes(const orch_archive_reader *r);

/* libarchive's words for the last failure, for callers that word their own
 * refusals ("unreadable" when it has none). */
const char *orch_archive_reader_error(const orch_archive_reader *r);

/* Frees r (NULL is fine). */
void orch_archive_reader_close(orch_archive_reader *r);

/* ------------------------------------------------------------ writing */

typedef enum orch_archive_kind {
    ORCH_ARCHIVE_TAR = 0, /* .tar */
    ORCH_ARCHIVE_TAR_GZ,  /* .tar.gz, .tgz */
    ORCH_ARCHIVE_TAR_ZST, /* .tar.zst */
    ORCH_ARCHIVE_TAR_XZ,  /* .tar.xz */
    ORCH_ARCHIVE_ZIP,     /* .zip */
} orch_archive_kind;

/* The kind a file name's suffix asks for; -1 when none of the above. */
int orch_archive_kind_of(const char *name, orch_archive_kind *kind);

/* How the archive is laid out; both layouts are deterministic. */
typedef struct orch_archive_layout {
    /* 0: ustar, the last block padded to 512 bytes only (as GNU tar and
     * Python's tarfile do; `orch shards`); 1: restricted pax with
     * libarchive's default 10 KiB blocking (bundles) */
    int pax;
    int64_t mtime;     /* every member's modification time */
    const char *owner; /* user and group name of every member; NULL: none */
} orch_archive_layout;

typedef struct orch_archive_writer orch_archive_writer;

/* Starts writing path (kind from orch_archive_kind_of) into a temporary
 * file path.tmp-XXXXXX, mode 0644. Returns ORCH_OK, ORCH_EIO, ORCH_ENOMEM;
 * *out NULL on error. */
int orch_archive_writer_open(const char *path, orch_archive_kind kind,
                             const orch_archive_layout *layout, orch_archive_writer **out,
                             orch_err *err);

/* Adds a regular member of len bytes from data. */
int orch_archive_writer_add(orch_archive_writer *w, const char *name, const void *data, size_t len,
                            orch_err *err);

/* Adds a member in pieces: the header with its size, then exactly size
 * bytes through orch_archive_writer_data. */
int orch_archive_writer_begin(orch_archive_writer *w, const char *name, int64_t size,
                              orch_err *err);
int orch_archive_writer_data(orch_archive_writer *w, const void *data, size_t len, orch_err *err);

/* Finishes the archive (abort 0: end, fsync, rename into place) or throws
 * it away (abort 1: the temporary file is removed). Frees w in both cases.
 * Returns ORCH_OK or ORCH_EIO. */
int orch_archive_writer_close(orch_archive_writer *w, int abort, orch_err *err);

/* The name being written, for the caller's messages. */
const char *orch_archive_writer_path(const orch_archive_writer *w);

#endif
