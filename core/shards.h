/*
 * shards.h - the `shards` data source: WebDataset-style tar shards, read
 * through store/archive_io.h without extracting anything (docs/data.md,
 * "Tar shards").
 *
 * A shard is a tar file, plain or compressed (gzip, zstd, xz, detected from
 * its bytes). Members are grouped into samples by key: the member path up to
 * the first dot of its basename ("a/000001.jpg" -> key "a/000001",
 * extension "jpg", lowercased). A sample is one image and one label:
 *   image  .jpg / .jpeg / .png   a file as a camera or Pillow writes it
 *          .npy                  an RGB image: uint8 '|u1', shape (H, W, 3)
 *          .pixel_values.npy     already processed patch rows, float32
 *                                (t*h*w, C*tp*P*P), with
 *          .image_grid_thw.npy   its grid, int64 (3,) or (1, 3) [t, h, w]
 *   label  .cls                  a class id as decimal text ("3\n")
 *          .json                 a class id: 3, or {"label": 3}
 * Any other member (.txt captions, ...) is refused with one line, so a
 * shard made for another task is never half-read silently. Non-regular
 * entries (directories) are skipped. Members of one sample must follow each
 * other, and a key appears once per shard.
 *
 * Opening a set indexes it: one pass over every shard reads member names,
 * labels and image headers (never the pixels), giving grids and labels,
 * so orch_dataset_finish validates as for any source. The patch rows are
 * produced on demand (read_patches) by streaming the shard the image is in
 * (up to 4 shards open at once, one stream each, as the shuffle buffer
 * draws from the tail of one shard and the head of the next): a request
 * ahead of the stream position reads forward; the images passed on the way
 * are kept as their member bytes (not decoded) in a FIFO of at most
 * `shuffle` entries, where the shuffled order will soon ask for them; a
 * request behind the stream position, not kept, re-opens the shard
 * (correct, slower). In the shuffle buffer's order each shard is opened
 * once per epoch.
 *
 * Order: the dataset's order hook (core/dataset.h) is the shuffle buffer of
 * core/shards_order.h, a pure function of (seed, epoch).
 *
 * Every image, label and shard error is one line naming the shard and the
 * member: "data/train-001.tar: 000007.cls: label 9 is outside [0, 3)".
 * Archives are read through store/archive_io.h (libarchive lives in store/).
 */
#ifndef ORCH_SHARDS_H
#define ORCH_SHARDS_H

#include "core/dataset.h"
#include "core/err.h"
#include "core/processor.h"

typedef struct orch_shards_config {
    const char *const *paths; /* the shards, expanded (core/shards_expand.h) */
    int n_paths;
    int shuffle;                       /* shuffle buffer in images; 0: stream order */
    const orch_processor_config *proc; /* how images become patch rows */
    int patch_dim;                     /* the model's C*tp*P*P */
    int n_classes;                     /* labels must be in [0, n_classes) */
    int index_only;                    /* 1: validate only (orch plan), no reader */
} orch_shards_config;

/* Indexes the shards into *out (overwritten; free with orch_dataset_free):
 * grids, class labels, and (index_only 0) the sha256 of every shard in
 * out->files, the read_patches reader and the order hook. Returns
 * ORCH_OK, ORCH_EINVAL (a bad shard or member, one line), ORCH_EIO,
 * ORCH_ENOMEM; *out is zeroed on error. */
int orch_shards_open(const orch_shards_config *cfg, orch_dataset *out, orch_err *err);

/* What the reader of a dataset opened by orch_shards_open has done, for
 * tests and benchmarks: *held member byte buffers kept now (at most
 * `shuffle`), *opens shard openings so far (an epoch in the shuffle
 * buffer's order opens each shard once). */
void orch_shards_reader_stats(const orch_dataset *ds, int *held, int64_t *opens);

#endif
