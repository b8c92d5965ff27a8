/* geometry.c - window index, segment offsets and rotary positions; see geometry.h. */
#include "core/geometry.h"

#include <stdlib.h>
#include <string.h>

void orch_geometry_free(orch_geometry *g)
{
    if (g == NULL)
        return;
    free(g->window_index);
    free(g->cu_window);
    free(g->cu_full);
    free(g->pos_h);
    free(g->pos_w);
    free(g->image_of_unit);
    free(g->cu_image_units);
    memset(g, 0, sizeof *g);
}

int orch_geometry_build(const int64_t (*grid_thw)[3], int n_images, int merge, int window_units,
                        orch_geometry *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    if (n_images < 1 || merge < 1 || window_units < 1)
        return orch_seterr(err, ORCH_EINVAL, "geometry: need images, merge >= 1, window >= 1");
    int64_t n_patches = 0, n_frames = 0, n_windows_max = 0;
    for (int i = 0; i < n_images; i++) {
        int64_t t = grid_thw[i][0], h = grid_thw[i][1], w = grid_thw[i][2];
        if (t < 1 || h < merge || w < merge || h % merge || w % merge)
            return orch_seterr(err, ORCH_EINVAL,
                               "image_grid_thw row %d = [%lld, %lld, %lld]: expected [t, h, w] "
                               "with t >= 1 and h, w positive multiples of %d",
                               i, (long long)t, (long long)h, (long long)w, merge);
        n_patches += t * h * w;
        n_frames += t;
        int64_t lh = h / merge, lw = w / merge;
        n_windows_max += t * (lh / window_units + 1) * (lw / window_units + 1);
    }
    if (n_patches > INT32_MAX / 2)
        return orch_seterr(err, ORCH_EINVAL, "geometry: %lld patches is too many",
                           (long long)n_patches);
    int unit = merge * merge;
    out->n_images = n_images;
    out->n_patches = (int)n_patches;
    out->n_units = (int)(n_patches / unit);
    out->unit = unit;
    out->window_index = malloc(sizeof(int32_t) * (size_t)out->n_units);
    out->cu_window = malloc(sizeof(int32_t) * (size_t)(n_windows_max + 1));
    out->cu_full = malloc(sizeof(int32_t) * (size_t)(n_frames + 1));
    out->pos_h = malloc(sizeof(int32_t) * (size_t)n_patches);
    out->pos_w = malloc(sizeof(int32_t) * (size_t)n_patches);
    out->image_of_unit = malloc(sizeof(int32_t) * (size_t)out->n_units);
    out->cu_image_units = malloc(sizeof(int32_t) * (size_t)(n_images + 1));
    int32_t *raw_h = malloc(sizeof(int32_t) * (size_t)n_patches);
    int32_t *raw_w = malloc(sizeof(int32_t) * (size_t)n_patches);
    if (!out->window_index || !out->cu_window || !out->cu_full || !out->pos_h || !out->pos_w ||
        !out->image_of_unit || !out->cu_image_units || !raw_h || !raw_w) {
        free(raw_h);
        free(raw_w);
        orch_geometry_free(out);
        return orch_seterr(err, ORCH_ENOMEM, "geometry: out of memory");
    }

    /* Rotary positions in processor row order: merge units in raster order,
     * patches (i, j) row-major inside a unit, repeated for every frame. */
    int32_t row = 0;
    out->cu_full[0] = 0;
    out->cu_image_units[0] = 0;
    int n_full = 0;
    for (int img = 0; img < n_images; img++) {
        int t = (int)grid_thw[img][0], h = (int)grid_thw[img][1], w = (int)grid_thw[img][2];
        for (int tt = 0; tt < t; tt++) {
            for (int bh = 0; bh < h / merge; bh++)
                for (int bw = 0; bw < w / merge; bw++)
                    for (int i = 0; i < merge; i++)
                        for (int j = 0; j < merge; j++) {
                            raw_h[row] = bh * merge + i;
                            raw_w[row] = bw * merge + j;
                            row++;
                        }
            out->cu_full[n_full + 1] = out->cu_full[n_full] + h * w;
            n_full++;
        }
        out->cu_image_units[img + 1] = out->cu_image_units[img] + t * h * w / unit;
        for (int u = out->cu_image_units[img]; u < out->cu_image_units[img + 1]; u++)
            out->image_of_unit[u] = img;
    }
    out->n_full_segs = n_full;

    /* Window index (HF get_window_index): windows of window_units x
     * window_units merged tokens in raster order per frame; pad = a whole
     * empty window when the merged grid divides evenly; empty windows are
     * dropped (unique_consecutive). */
    int n_idx = 0, n_win = 0, base = 0;
    out->cu_window[0] = 0;
    for (int img = 0; img < n_images; img++) {
        int t = (int)grid_thw[img][0];
        int lh = (int)grid_thw[img][1] / merge, lw = (int)grid_thw[img][2] / merge;
        int pad_h = window_units - lh % window_units, pad_w = window_units - lw % window_units;
        int nwh = (lh + pad_h) / window_units, nww = (lw + pad_w) / window_units;
        for (int tt = 0; tt < t; tt++)
            for (int a = 0; a < nwh; a++)
                for (int b = 0; b < nww; b++) {
                    int count = 0;
                    for (int r = a * window_units; r < (a + 1) * window_units; r++)
                        for (int c = b * window_units; c < (b + 1) * window_units; c++)
                            if (r < lh && c < lw) {
                                out->window_index[n_idx++] = base + tt * lh * lw + r * lw + c;
                                count++;
                            }
                    if (count > 0) {
                        out->cu_window[n_win + 1] = out->cu_window[n_win] + count * unit;
                        n_win++;
                    }
                }
        base += t * lh * lw;
    }
    out->n_window_segs = n_win;

    /* Positions follow the units into window order. */
    for (int k = 0; k < out->n_units; k++) {
        int src = out->window_index[k];
        memcpy(out->pos_h + (size_t)k * unit, raw_h + (size_t)src * unit, sizeof(int32_t) * unit);
        memcpy(out->pos_w + (size_t)k * unit, raw_w + (size_t)src * unit, sizeof(int32_t) * unit);
    }
    free(raw_h);
    free(raw_w);
    return ORCH_OK;
}
