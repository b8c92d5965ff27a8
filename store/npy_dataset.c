/* npy_dataset.c - the processor's .npy outputs as an orch_dataset; see npy_dataset.h. */
#include "store/npy_dataset.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/npy.h"

static const char *shape_tuple(const orch_npy *a, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < a->ndim && len < n; i++)
        len +=
            (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (len < n)
        snprintf(buf + len, n - len, a->ndim == 1 ? ",)" : ")");
    return buf;
}

/* Loads the labels into ds and checks what the file alone can tell (shape,
 * one per image, class ids >= 0, finite targets); every message names the
 * labels file. Whether they fit the head is the caller's check. */
static int load_labels(const char *path, orch_dataset *ds, orch_err *err)
{
    orch_npy y;
    char sbuf[200];
    int rc = orch_npy_load(path, ORCH_NPY_ANY, &y, err);
    if (rc != ORCH_OK)
        return rc;
    if (y.ndim < 1 || y.ndim > 2 || (y.dtype == ORCH_NPY_I64 && y.ndim != 1)) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: labels must be (images,) int64 class ids or (images,) / (images, k) "
                         "float32 targets, got shape %s of '%s'",
                         path, shape_tuple(&y, sbuf, sizeof sbuf), y.descr);
        goto out;
    }
    if (y.shape[0] != ds->n_images) {
        rc = orch_seterr(err, ORCH_EINVAL, "%s: %lld labels for %d images (image_grid_thw rows)",
                         path, (long long)y.shape[0], ds->n_images);
        goto out;
    }
    if (y.dtype == ORCH_NPY_I64) {
        for (int i = 0; i < ds->n_images; i++)
            if (y.i64[i] < 0 || y.i64[i] >= (1 << 30)) {
                rc = orch_seterr(err, ORCH_EINVAL, "%s: class id %lld of image %d is %s", path,
                                 (long long)y.i64[i], i,
                                 y.i64[i] < 0 ? "negative" : "implausibly large");
                goto out;
            }
        ds->label_kind = ORCH_LABEL_CLASS;
        ds->class_labels = y.i64;
        y.i64 = NULL;
    } else {
        if (y.ndim == 2 && (y.shape[1] < 1 || y.shape[1] > (1 << 20))) {
            rc = orch_seterr(err, ORCH_EINVAL, "%s: labels have %lld targets per image", path,
                             (long long)y.shape[1]);
            goto out;
        }
        for (int64_t k = 0; k < y.numel; k++)
            if (!isfinite(y.f32[k])) {
                int64_t per = y.ndim == 2 ? y.shape[1] : 1;
                rc = orch_seterr(err, ORCH_EINVAL, "%s: target %lld of image %lld is %s", path,
                                 (long long)(k % per), (long long)(k / per),
                                 isnan(y.f32[k]) ? "NaN" : "infinite");
                goto out;
            }
        ds->label_kind = ORCH_LABEL_REGRESSION;
        ds->n_targets = y.ndim == 2 ? (int)y.shape[1] : 1;
        ds->targets = y.f32;
        y.f32 = NULL;
    }
out:
    orch_npy_free(&y);
    return rc;
}

/* Everything but the patch rows: pixel_values by its header only (into
 * *pv, which has no data), the grid and labels whole; then the index
 * (orch_dataset_index) and the patch count against the rows of
 * pixel_values. On error *out is freed. */
static int load_index(const char *pixel_values_path, const char *grid_path, const char *labels_path,
                      int patch_dim, int merge, orch_dataset *out, orch_npy *pv, orch_err *err)
{
    orch_npy grid;
    char sbuf[200];
    memset(&grid, 0, sizeof grid);
    memset(out, 0, sizeof *out);
    int rc = orch_npy_read_header(pixel_values_path, ORCH_NPY_F32, pv, err);
    if (rc != ORCH_OK)
        goto out;
    if (pv->ndim != 2 || pv->shape[1] != patch_dim) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: pixel_values has shape %s, expected (patches, %d) for the model's "
                         "patch size (C*tp*P*P = %d)",
                         pixel_values_path, shape_tuple(pv, sbuf, sizeof sbuf), patch_dim,
                         patch_dim);
        goto out;
    }
    rc = orch_npy_load(grid_path, ORCH_NPY_I64, &grid, err);
    if (rc != ORCH_OK)
        goto out;
    if (grid.ndim != 2 || grid.shape[1] != 3 || grid.shape[0] < 1 || grid.shape[0] > (1 << 30)) {
        rc =
            orch_seterr(err, ORCH_EINVAL, "%s: image_grid_thw has shape %s, expected (images, 3)%s",
                        grid_path, shape_tuple(&grid, sbuf, sizeof sbuf),
                        grid.ndim == 1 && grid.shape[0] == 3 ? "; save one image as (1, 3)" : "");
        goto out;
    }
    out->n_images = (int)grid.shape[0];
    out->patch_dim = patch_dim;
    out->merge = merge;
    out->grid_thw = grid.i64;
    grid.i64 = NULL;
    if (labels_path != NULL && labels_path[0] != '\0') {
        rc = load_labels(labels_path, out, err);
        if (rc != ORCH_OK)
            goto out;
    }
    rc = orch_dataset_index(out, grid_path, err);
    if (rc != ORCH_OK)
        goto out;
    if (out->patch_offset[out->n_images] != pv->shape[0]) {
        rc = orch_seterr(err, ORCH_EINVAL,
                         "%s: image_grid_thw sums to %lld patches (sum of t*h*w) but %s has %lld "
                         "rows",
                         grid_path, (long long)out->patch_offset[out->n_images], pixel_values_path,
                         (long long)pv->shape[0]);
        goto out;
    }
out:
    if (rc != ORCH_OK)
        orch_dataset_free(out);
    orch_npy_free(&grid);
    return rc;
}

int orch_npy_dataset_index(const char *pixel_values_path, const char *grid_path,
                           const char *labels_path, int patch_dim, int merge, orch_dataset *out,
                           orch_err *err)
{
    orch_npy pv;
    return load_index(pixel_values_path, grid_path, labels_path, patch_dim, merge, out, &pv, err);
}

int orch_npy_dataset_load(const char *pixel_values_path, const char *grid_path,
                          const char *labels_path, int patch_dim, int merge, orch_dataset *out,
                          orch_err *err)
{
    orch_npy header, pv;
    memset(&pv, 0, sizeof pv);
    int rc =
        load_index(pixel_values_path, grid_path, labels_path, patch_dim, merge, out, &header, err);
    if (rc != ORCH_OK)
        return rc;
    rc = orch_npy_load(pixel_values_path, ORCH_NPY_F32, &pv, err);
    if (rc == ORCH_OK && (pv.ndim != header.ndim || pv.shape[0] != header.shape[0] ||
                          pv.shape[1] != header.shape[1]))
        rc = orch_seterr(err, ORCH_EINVAL, "%s: changed while it was read", pixel_values_path);
    if (rc == ORCH_OK) {
        out->pixel_values = pv.f32;
        pv.f32 = NULL;
        rc = orch_dataset_finish(out, grid_path, err);
    }
    if (rc != ORCH_OK)
        orch_dataset_free(out);
    orch_npy_free(&pv);
    return rc;
}
