/*
 * shards_write.h - writing WebDataset-style tar shards (`orch shards`, and
 * tests that make their shards with orch itself).
 *
 * Output names come from a printf-style pattern with one integer
 * placeholder ("out/train-%03d.tar": %d, optionally zero-padded to a
 * width; "%%" is a literal %): shard i is the pattern with i. A pattern
 * without a placeholder names the one shard there may then be.
 * Compression follows the suffix: .tar (none), .tar.gz / .tgz (gzip),
 * .tar.zst (zstd), .tar.xz (xz). Members are ustar entries with mtime 0,
 * uid/gid 0, no user or group names and mode 0644, in the order they are
 * added, and the gzip header carries no time stamp, so the same input
 * gives the same bytes. Each shard is written to a temporary name next to
 * it ("NAME.tmp-XXXXXX") and renamed when complete: no half-written shard
 * ever has its final name.
 */
#ifndef ORCH_SHARDS_WRITE_H
#define ORCH_SHARDS_WRITE_H

#include <stddef.h>

#include "core/err.h"

typedef struct orch_shard_member {
    const char *ext; /* "jpg", "cls", "pixel_values.npy", ... */
    const void *data;
    size_t len;
} orch_shard_member;

typedef struct orch_shard_writer orch_shard_writer;

/* Checks pattern (placeholder, suffix) for n_samples samples of per_shard
 * each: more than one shard needs a placeholder; existing outputs are
 * refused unless force. Nothing is written yet. ORCH_EINVAL with one line,
 * ORCH_ENOMEM. */
int orch_shard_writer_open(const char *pattern, int per_shard, int n_samples, int force,
                           orch_shard_writer **out, orch_err *err);

/* Appends one sample: its members "KEY.EXT" in the order given. Starts the
 * next shard when the current one is full. ORCH_EIO on a write failure. */
int orch_shard_writer_add(orch_shard_writer *w, const char *key, const orch_shard_member *members,
                          int n, orch_err *err);

/* Finishes the last shard (renamed into place) and frees w; *n_shards
 * (may be NULL) gets the count written. On error, or when abort is 1, the
 * unfinished shard's temporary file is removed; finished shards stay. */
int orch_shard_writer_close(orch_shard_writer *w, int abort, int *n_shards, orch_err *err);

/* Shard i's name from pattern into buf[n]; -1 when the pattern is not
 * valid (no or several placeholders, another conversion). */
int orch_shard_name(const char *pattern, int i, char *buf, size_t n);

#endif
