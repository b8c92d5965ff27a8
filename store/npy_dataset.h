/*
 * npy_dataset.h - an orch_dataset from the Hugging Face processor's outputs
 * saved with numpy.save:
 *
 *   pixel_values    (patches, C*tp*P*P) float32 ('<f4'; '<f8' is rounded)
 *   image_grid_thw  (images, 3) int64 rows [t, h, w] in patches
 *   labels          (images,) int64 class ids, or (images,) / (images, k)
 *                   float32 regression targets; optional
 *
 * For example, in Python:
 *   out = processor.image_processor(images=imgs, return_tensors="np")
 *   np.save("pv.npy", out["pixel_values"]); np.save("grid.npy", out["image_grid_thw"])
 *
 * Consistency checks, each one line naming the file, ORCH_EINVAL:
 * pixel_values 2-D with patch_dim columns; grid (images, 3); every row
 * t >= 1 and h, w multiples of the merge size (with an order hint for rows
 * written as [h, w, t]); the sum over images of t*h*w, summed without
 * overflow, equal to the rows of pixel_values; one label (row) per image,
 * class ids >= 0, finite targets (label messages name the labels file).
 * Whether the labels fit the pipeline's head is checked by
 * core/data_source.c.
 *
 * (This lives in store/ rather than core/ because it reads files through
 * store/npy.c: the Makefile links test_lua_* against core without store.)
 */
#ifndef ORCH_NPY_DATASET_H
#define ORCH_NPY_DATASET_H

#include "core/dataset.h"
#include "core/err.h"

/* Loads the triple into *out (overwritten; free with orch_dataset_free).
 * labels_path may be NULL or "" for an unlabelled set. patch_dim is the
 * model's C*tp*P*P, merge its spatial_merge_size. The dataset keeps
 * pixel_values in memory. Returns ORCH_OK, or an error with *out zeroed:
 * ORCH_EINVAL (bad or inconsistent files), ORCH_EIO, ORCH_ENOMEM. */
int orch_npy_dataset_load(const char *pixel_values_path, const char *grid_path,
                          const char *labels_path, int patch_dim, int merge, orch_dataset *out,
                          orch_err *err);

/* The checks of orch_npy_dataset_load without reading the patch rows:
 * pixel_values is read by its header only (shape, dtype, size), the grid
 * and labels whole. *out gets the grids, offsets and labels but no patch
 * source, so it is for validation (orch plan), not for batches; free it
 * with orch_dataset_free. Same errors as orch_npy_dataset_load. */
int orch_npy_dataset_index(const char *pixel_values_path, const char *grid_path,
                           const char *labels_path, int patch_dim, int merge, orch_dataset *out,
                           orch_err *err);

#endif
