/*
 * geometry.h - per-batch index vectors of the Qwen2.5-VL vision tower.
 *
 * From image_grid_thw ([t, h, w] in patches, one row per image) this derives
 * what the tower's forward needs besides pixels (HF's rot_pos_emb,
 * get_window_index and cu_seqlens):
 *   - window_index: a permutation of the N/m^2 merge units into window order,
 *   - cu_window: cumulative patch offsets of the attention windows (after
 *     unique_consecutive: no empty window),
 *   - cu_full: one segment per frame (per image for still images),
 *   - pos_h/pos_w: each patch's (row, column) in patches, in processor row
 *     order, later permuted with the units.
 * All offsets are int32 as in HF. Memory is owned by the orch_geometry and
 * released by orch_geometry_free.
 */
#ifndef ORCH_GEOMETRY_H
#define ORCH_GEOMETRY_H

#include <stdint.h>

#include "core/err.h"

typedef struct orch_geometry {
    int n_images;
    int n_patches;         /* N = sum t*h*w */
    int n_units;           /* N / merge^2 merged tokens */
    int unit;              /* merge^2 patches per unit */
    int32_t *window_index; /* (n_units) unit k of window order = unit window_index[k] */
    int n_window_segs;
    int32_t *cu_window; /* (n_window_segs + 1) */
    int n_full_segs;
    int32_t *cu_full; /* (n_full_segs + 1) */
    int32_t *pos_h;   /* (n_patches) in window order */
    int32_t *pos_w;
    int32_t *image_of_unit;  /* (n_units) image of each unit, in original order */
    int32_t *cu_image_units; /* (n_images + 1) unit offsets per image, original order */
} orch_geometry;

/* Builds the geometry for n_images grids. merge = spatial_merge_size,
 * window_units = window_size / merge / patch_size (merged tokens per window
 * side). Returns ORCH_EINVAL if a grid is not [t>=1, h, w] with h and w
 * positive multiples of merge. */
int orch_geometry_build(const int64_t (*grid_thw)[3], int n_images, int merge, int window_units,
                        orch_geometry *out, orch_err *err);

void orch_geometry_free(orch_geometry *g);

#endif
