/* data_source.c - pipeline data -> orch_dataset; see data_source.h. */
#include "core/data_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/processor.h"
#include "core/synthetic.h"
#include "store/npy_dataset.h"

static int patch_dim_of(const orch_model_config *c)
{
    return c->in_channels * c->temporal_patch_size * c->patch_size * c->patch_size;
}

/* The labels of a .npy set against the head that trains on them: a
 * classifier takes int64 class ids in [0, head.classes), a regression
 * head float32 targets, head.outputs per image. Anything else would train
 * on garbage, so it is refused naming the labels file. */
static int check_labels_fit_head(const orch_pipeline *p, const orch_dataset *ds, orch_err *err)
{
    const char *path = p->data.labels;
    int n = p->head.n_outputs;
    if (p->head.kind == ORCH_HEAD_CLASSIFIER) {
        if (ds->label_kind != ORCH_LABEL_CLASS)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: float labels, but head.kind = \"classifier\" needs (images,) "
                               "int64 class ids in [0, %d)",
                               path, n);
        for (int i = 0; i < ds->n_images; i++)
            if (ds->class_labels[i] >= n)
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s: class id %lld of image %d is outside [0, %d) (head.classes "
                                   "= %d)",
                                   path, (long long)ds->class_labels[i], i, n, n);
        return ORCH_OK;
    }
    char want[64];
    snprintf(want, sizeof want, n == 1 ? "(images,) or (images, 1)" : "(images, %d)", n);
    if (ds->label_kind != ORCH_LABEL_REGRESSION)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: int64 class ids, but head.kind = \"regression\" needs float32 "
                           "targets of shape %s",
                           path, want);
    if (ds->n_targets != n)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: %d target%s per image, but head.outputs = %d (expected float32 "
                           "targets of shape %s)",
                           path, ds->n_targets, ds->n_targets == 1 ? "" : "s", n, want);
    return ORCH_OK;
}

/* Synthetic images carry class ids, which only a classifier can use. */
static int check_synthetic_head(const orch_pipeline *p, orch_err *err)
{
    if (p->head.kind == ORCH_HEAD_CLASSIFIER)
        return ORCH_OK;
    return orch_seterr(err, ORCH_EINVAL,
                       "%s: synthetic data has int64 class ids, but head.kind = \"regression\" "
                       "needs float32 targets: use data.source = \"npy\" with a labels file",
                       p->path);
}

int orch_data_check(const orch_pipeline *p, orch_err *err)
{
    if (p->data.source != ORCH_DATA_NPY) /* made from the declaration alone */
        return check_synthetic_head(p, err);
    const orch_model_config *c = &p->model.config;
    orch_dataset ds;
    int rc = orch_npy_dataset_index(p->data.pixel_values, p->data.grid_thw_path, p->data.labels,
                                    patch_dim_of(c), c->spatial_merge_size, &ds, err);
    if (rc == ORCH_OK)
        rc = check_labels_fit_head(p, &ds, err);
    orch_dataset_free(&ds);
    return rc;
}

/* The identity of a .npy set: its files (pixel values, grids, labels when
 * given) with their sha256, for the run's record (core/data_identity.h). */
static int hash_npy_files(const orch_pipeline *p, orch_dataset *ds, orch_err *err)
{
    const char *paths[3] = {p->data.pixel_values, p->data.grid_thw_path, p->data.labels};
    ds->files = calloc(3, sizeof *ds->files); /* owned by ds */
    if (ds->files == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "data: out of memory");
    for (int i = 0; i < 3; i++) {
        if (paths[i] == NULL || paths[i][0] == '\0')
            continue;
        orch_data_file *f = &ds->files[ds->n_files];
        f->path = strdup(paths[i]);
        if (f->path == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "data: out of memory");
        ds->n_files++;
        int rc = orch_file_sha256(paths[i], f->sha256, &f->bytes, err);
        if (rc != ORCH_OK)
            return rc;
    }
    return ORCH_OK;
}

int orch_data_open(const orch_pipeline *p, orch_dataset *out, orch_err *err)
{
    const orch_model_config *c = &p->model.config;
    int patch_dim = patch_dim_of(c);
    memset(out, 0, sizeof *out);
    if (p->data.source == ORCH_DATA_NPY) {
        int rc = orch_npy_dataset_load(p->data.pixel_values, p->data.grid_thw_path, p->data.labels,
                                       patch_dim, c->spatial_merge_size, out, err);
        if (rc == ORCH_OK)
            rc = check_labels_fit_head(p, out, err);
        if (rc == ORCH_OK)
            rc = hash_npy_files(p, out, err);
        if (rc != ORCH_OK)
            orch_dataset_free(out);
        return rc;
    }

    int rc = check_synthetic_head(p, err);
    if (rc != ORCH_OK)
        return rc;
    /* The processor of this tower: Qwen's constants, this config's sizes;
     * min/max pixels keep Qwen's ratio to the resize factor (4 and 16384
     * factor^2 areas). */
    orch_processor_config proc;
    orch_processor_defaults(&proc);
    proc.patch_size = c->patch_size;
    proc.temporal_patch_size = c->temporal_patch_size;
    proc.merge_size = c->spatial_merge_size;
    int factor = c->patch_size * c->spatial_merge_size;
    proc.min_pixels = 4 * factor * factor;
    proc.max_pixels = 16384 * factor * factor;
    orch_synthetic_config syn;
    memset(&syn, 0, sizeof syn);
    syn.n_images = p->data.n_samples;
    syn.n_classes = p->data.n_classes;
    syn.height = p->data.image_height;
    syn.width = p->data.image_width;
    syn.n_grids = p->data.n_grids;
    syn.grids = &p->data.image_grid_thw[0][0];
    syn.seed = p->seed;
    syn.in_memory = 1;
    return orch_synthetic_load(&syn, &proc, out, err);
}
