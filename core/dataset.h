/*
 * dataset.h - the image set the run loop trains on, whatever its source.
 *
 * An orch_dataset is plain data plus one optional hook:
 *   - per image, always in memory (small): its grid [t, h, w] in patches,
 *     the offset of its first patch row, and its label(s);
 *   - the patch rows themselves (C*tp*P*P floats each, in the processor's
 *     order, docs/qwen25vl-vision.md §2.2) either in one in-memory array
 *     (pixel_values, the .npy source) or produced on demand by
 *     read_patches (the synthetic source renders an image when asked; a
 *     tar-sharded reader would decode one).
 * A new source fills the struct (grids, labels, and either pixel_values or
 * read_patches/ctx/free_ctx) and calls orch_dataset_finish, which validates
 * the grids and computes the offsets. Everything else (batches, epoch order)
 * is shared.
 *
 * Batches: orch_dataset_batch copies the chosen images into one contiguous
 * (pixel_values, image_grid_thw, labels) triple, exactly what the model
 * takes for several images (rows concatenated in index order).
 *
 * Epoch order: orch_dataset_order is a pure function of (n_images, seed,
 * epoch), or of the source's own order hook (tar shards), so a resumed run
 * reproduces the order of any epoch.
 */
#ifndef ORCH_DATASET_H
#define ORCH_DATASET_H

#include <stdint.h>

#include "core/err.h"

typedef enum orch_label_kind {
    ORCH_LABEL_NONE = 0,  /* no labels (inference) */
    ORCH_LABEL_CLASS,     /* one int64 class id per image, 0 <= id < n_classes */
    ORCH_LABEL_REGRESSION /* n_targets float32 values per image */
} orch_label_kind;

/* Fills dst (n_patches(index) x patch_dim floats) with the patch rows of
 * image index. Returns ORCH_OK or an error in err. */
typedef int (*orch_read_patches_fn)(void *ctx, int index, float *dst, orch_err *err);

/* A file the data was read from (an .npy file, an image, a CSV, a shard),
 * for the record of the data's identity. */
typedef struct orch_data_file {
    char *path; /* as resolved (owned) */
    char sha256[65];
    int64_t bytes;
} orch_data_file;

typedef struct orch_dataset {
    int n_images;
    int patch_dim;         /* C*tp*P*P: columns of pixel_values */
    int merge;             /* spatial merge size: h and w are multiples of it */
    int64_t *grid_thw;     /* (n_images, 3) [t, h, w] in patches; owned */
    int64_t *patch_offset; /* (n_images + 1) first row of each image, set by
                              orch_dataset_finish; owned */
    orch_label_kind label_kind;
    int n_classes;         /* CLASS: max label + 1 unless the source knows more */
    int n_targets;         /* REGRESSION: values per image; CLASS: 1; NONE: 0 */
    int64_t *class_labels; /* (n_images) for CLASS, else NULL; owned */
    float *targets;        /* (n_images, n_targets) for REGRESSION, else NULL; owned */
    /* patch rows: exactly one of the two is set */
    float *pixel_values; /* (patch_offset[n_images], patch_dim); owned */
    orch_read_patches_fn read_patches;
    void *ctx; /* owned; released with free_ctx */
    void (*free_ctx)(void *ctx);
    /* the epoch order, when the source has its own (tar shards: a bounded
     * shuffle buffer over the stream, core/shards_order.h); NULL: the
     * Fisher-Yates permutation of orch_dataset_order. Must be a pure
     * function of (the dataset, seed, epoch) and may read ctx. */
    void (*order)(const struct orch_dataset *ds, uint64_t seed, int64_t epoch, int *perm);
    /* the files read, each with its sha256 (owned, freed by
     * orch_dataset_free); 0 and NULL for synthetic data */
    int n_files;
    orch_data_file *files;
    /* CLASS labels given by name (an images CSV with names, or ImageFolder
     * sub-folders): class id i is class_names[i], names in sorted byte
     * order, n_class_names of them (owned, freed by orch_dataset_free);
     * 0 and NULL when the labels are ids as written */
    int n_class_names;
    char **class_names;
} orch_dataset;

/* A batch: the model inputs and labels of n_images images. Buffers are owned
 * by the batch; initialise with {0}, reuse across calls to
 * orch_dataset_batch (buffers grow as needed) and release with
 * orch_batch_free. */
typedef struct orch_batch {
    int n_images;
    int64_t n_patches; /* rows of pixel_values */
    int patch_dim;
    float *pixel_values; /* (n_patches, patch_dim) */
    int64_t *grid_thw;   /* (n_images, 3) */
    orch_label_kind label_kind;
    int n_targets;
    int64_t *class_labels; /* (n_images) when CLASS */
    float *targets;        /* (n_images, n_targets) when REGRESSION */
    /* capacities of the buffers above, in elements */
    int64_t cap_pixels, cap_grid, cap_labels, cap_targets;
} orch_batch;

/* Validates ds after a source filled it and computes patch_offset (any
 * previous one is freed). what names the source in messages (a file name
 * such as "grid.npy", or "synthetic data"). Checks: n_images >= 1,
 * patch_dim >= 1, merge >= 1, every grid row t >= 1, h, w >= 1 and multiples
 * of merge (with a hint when the row looks like [h, w, t]: "grid.npy:
 * image_grid_thw row 0 = [24, 24, 1]: the order is [t, h, w]; did you mean
 * [1, 24, 24]?"), a patch count (sum of t*h*w) that fits int64, labels in
 * range, exactly one patch source. Returns ORCH_OK, ORCH_EINVAL or
 * ORCH_ENOMEM. */
int orch_dataset_finish(orch_dataset *ds, const char *what, orch_err *err);

/* The checks and offsets of orch_dataset_finish without the patch rows:
 * for a source that validates its index before (or without) loading the
 * pixels, such as `orch plan` reading only the header of pixel_values. ds
 * needs grids and labels; pixel_values and read_patches are not looked at.
 * The patch count is summed with an overflow check. */
int orch_dataset_index(orch_dataset *ds, const char *what, orch_err *err);

/* Frees everything ds owns (calls free_ctx(ctx)) and zeroes it. ds may be
 * NULL or zeroed. */
void orch_dataset_free(orch_dataset *ds);

/* Number of patch rows of image i. */
int64_t orch_dataset_patches(const orch_dataset *ds, int i);

/* Assembles images indices[0..n-1] (each in [0, n_images), repeats allowed)
 * into out, in that order. out must be zeroed or a batch from an earlier
 * call; its buffers are reused or grown. Returns ORCH_OK, ORCH_EINVAL for a
 * bad index, ORCH_ENOMEM, or the read_patches hook's error. */
int orch_dataset_batch(const orch_dataset *ds, const int *indices, int n, orch_batch *out,
                       orch_err *err);

/* Frees the buffers of b and zeroes it. b may be NULL. */
void orch_batch_free(orch_batch *b);

/* Writes a permutation of 0..n_images-1 into perm[n_images]: ds->order's
 * when the source set one, else a Fisher-Yates
 * shuffle driven by splitmix64 seeded with
 * splitmix64_mix(seed ^ splitmix64_mix(epoch + 0x9e3779b97f4a7c15)), where
 * splitmix64_mix is the splitmix64 output function; j is drawn for i =
 * n-1 .. 1 as an unbiased integer in [0, i] (rejection sampling). Pure:
 * the same (n_images, seed, epoch) gives the same order on every machine. */
void orch_dataset_order(const orch_dataset *ds, uint64_t seed, int64_t epoch, int *perm);

/* The same permutation of 0..n-1 (orch_dataset_order is this with
 * n = ds->n_images): for the epoch order of a subset of the images. */
void orch_order_permutation(int n, uint64_t seed, int64_t epoch, int *perm);

/* A subset of a data set's images: ascending image indices. index is
 * owned (orch_index_set_free). */
typedef struct orch_index_set {
    int n;
    int *index;
} orch_index_set;

/* The epoch number whose permutation chooses a held-out split: no
 * training epoch reaches it, so the split's draw is not an epoch order. */
#define ORCH_SPLIT_EPOCH INT64_MIN

/* eval.split: holds out ceil(fraction * n_images) images (as Hugging Face
 * datasets' train_test_split with a float test_size), the first ones of
 * orch_order_permutation(n_images, seed, ORCH_SPLIT_EPOCH): a pure
 * function of (n_images, fraction, seed), the same on every rank and
 * resume. *held gets them and *train the rest, each ascending. Returns
 * ORCH_OK, ORCH_EINVAL (fraction outside (0, 1), or nothing left to train
 * on) or ORCH_ENOMEM; on error both sets are empty. */
int orch_dataset_split(int n_images, double fraction, uint64_t seed, orch_index_set *train,
                       orch_index_set *held, orch_err *err);

void orch_index_set_free(orch_index_set *set);

#endif
