/*
 * image_source.h - the `images` data source: a folder of PNG and JPEG files
 * (docs/data.md), decoded (core/image.h) and processed (core/processor.h)
 * into an orch_dataset.
 *
 * Where the images and labels come from:
 *   - labels = a CSV: `file,label` with a header row; `file` relative to
 *     dir (or absolute); rows in file order are the images in order. When
 *     every label is a non-negative integer the labels are class ids as
 *     written; otherwise they are class names, mapped to ids in sorted byte
 *     order (strcmp) and kept in the dataset's class_names. A regression
 *     head (one output) reads the label as a float target.
 *   - labels = "": torchvision's ImageFolder: every sub-folder of dir (not
 *     hidden) is a class, classes sorted by name, the images of each class
 *     found recursively and sorted by path; files directly in dir are not
 *     images of any class.
 * Which files are images: in a class folder, every regular file whose magic
 * bytes are PNG or JPEG; a file named like an image (.png, .jpg, .jpeg,
 * any case) that is not one is refused; other files (README.txt, a CSV)
 * and hidden files (.DS_Store) are ignored. A CSV row must name an image.
 *
 * Checks before any pixel is decoded (orch_image_source_check, `orch plan`
 * and the start of `orch run`), each one line naming the file (and the CSV
 * line), ORCH_EINVAL: a missing or empty folder, a missing or malformed
 * CSV, a row naming a missing file, a duplicate row, a label outside
 * [0, n_classes), more class names than n_classes, an image header that
 * is not PNG/JPEG, CMYK, too large, too small for smart_resize or of an
 * aspect ratio above 200. A corrupt or truncated body is found when the
 * image is decoded, during the run ("PATH: corrupt JPEG: ...").
 *
 * Processed images are cached in memory (image_cache.h): the second epoch
 * decodes nothing while the cache's byte budget holds the set.
 */
#ifndef ORCH_IMAGE_SOURCE_H
#define ORCH_IMAGE_SOURCE_H

#include <stddef.h>

#include "core/dataset.h"
#include "core/err.h"
#include "core/processor.h"

typedef struct orch_image_source_config {
    const char *dir;    /* the folder (borrowed) */
    const char *labels; /* the CSV, "" or NULL: sub-folders are classes (borrowed) */
    orch_processor_config proc;
    int regression;      /* 1: labels are float targets (one per image) */
    int n_classes;       /* class ids must be < n_classes (head.classes); 0: no bound */
    int64_t cache_bytes; /* in-memory cache budget; < 0: ORCH_IMAGE_CACHE_MB or the default */
    /* When n_class_names > 0: the classes to use instead of the set's own
     * sorted names (borrowed; an evaluation set takes the training set's,
     * so a name has the same id in both): every class name of this set
     * (CSV label or sub-folder) must be among them, ids are their places
     * in this list. Ignored when the labels are ids as written. */
    char *const *class_names;
    int n_class_names;
} orch_image_source_config;

/* The plan-time checks above, headers only. */
int orch_image_source_check(const orch_image_source_config *cfg, orch_err *err);

/* orch_image_source_check that also gives the number of images in
 * *n_images (eval.split's plan-time check needs it). */
int orch_image_source_check_count(const orch_image_source_config *cfg, int *n_images,
                                  orch_err *err);

/* The checks, then the data set into *out (overwritten, released with
 * orch_dataset_free): grids from the headers, labels, class names, the
 * sha256 of every image and of the CSV in out->files, and a read_patches
 * hook that decodes and processes an image when a batch asks for it
 * (through the cache). Returns ORCH_OK, ORCH_EINVAL, ORCH_ENOMEM, ORCH_EIO. */
/* The class names the set defines (sorted; CSV names or sub-folders),
 * without reading any image header: into *names (malloc'ed array of
 * malloc'ed strings, the caller frees both) and *n; NULL and 0 when the
 * labels are ids as written or float targets. Same listing errors as
 * orch_image_source_check. */
int orch_image_source_classes(const orch_image_source_config *cfg, char ***names, int *n,
                              orch_err *err);

int orch_image_source_open(const orch_image_source_config *cfg, orch_dataset *out, orch_err *err);

#endif
