/* data_source.c - pipeline data -> orch_dataset; see data_source.h. */
#include "core/data_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/image_source.h"
#include "core/processor.h"
#include "core/shards.h"
#include "core/shards_expand.h"
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
static int check_labels_fit_head(const orch_pipeline *p, const orch_data *data,
                                 const orch_dataset *ds, orch_err *err)
{
    const char *path = data->labels;
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

/* The processor of this tower for images read from files: Qwen's
 * constants, this config's patch/temporal/merge sizes, and the pipeline's
 * processor bounds (0: the hub's min_pixels 3136, max_pixels 12845056). */
static void file_processor(const orch_pipeline *p, orch_processor_config *proc)
{
    const orch_model_config *c = &p->model.config;
    orch_processor_defaults(proc);
    proc->patch_size = c->patch_size;
    proc->temporal_patch_size = c->temporal_patch_size;
    proc->merge_size = c->spatial_merge_size;
    if (p->processor.min_pixels > 0)
        proc->min_pixels = p->processor.min_pixels;
    if (p->processor.max_pixels > 0)
        proc->max_pixels = p->processor.max_pixels;
}

/* images { dir, labels } of set data: labels fit the head by construction
 * (class ids in [0, head.classes), one float target for a one-output
 * regression). */
static int image_config(const orch_pipeline *p, const orch_data *data,
                        orch_image_source_config *cfg, orch_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dir = data->dir;
    cfg->labels = data->labels;
    file_processor(p, &cfg->proc);
    cfg->cache_bytes = -1;
    if (p->head.kind == ORCH_HEAD_CLASSIFIER) {
        cfg->n_classes = p->head.n_outputs;
        return ORCH_OK;
    }
    cfg->regression = 1;
    if (p->head.n_outputs != 1)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: an images CSV has one float target per image, but head.outputs = "
                           "%d",
                           data->labels[0] ? data->labels : data->dir, p->head.n_outputs);
    return ORCH_OK;
}

/* An images set other than the training set (eval.data) of a classifier
 * trained on named images takes the training set's class names, so a name
 * has one id in both; *names (owned by the caller, freed with
 * free_names) is NULL when there is nothing to share. */
static int shared_classes(const orch_pipeline *p, const orch_data *data,
                          orch_image_source_config *cfg, char ***names, orch_err *err)
{
    *names = NULL;
    if (data == &p->data || p->data.source != ORCH_DATA_IMAGES || cfg->regression)
        return ORCH_OK;
    orch_image_source_config train;
    int rc = image_config(p, &p->data, &train, err);
    if (rc == ORCH_OK)
        rc = orch_image_source_classes(&train, names, &cfg->n_class_names, err);
    cfg->class_names = *names;
    return rc;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int images_check(const orch_pipeline *p, const orch_data *data, int *n_images, orch_err *err)
{
    orch_image_source_config cfg;
    char **names = NULL;
    int rc = image_config(p, data, &cfg, err);
    if (rc == ORCH_OK)
        rc = shared_classes(p, data, &cfg, &names, err);
    if (rc == ORCH_OK)
        rc = orch_image_source_check_count(&cfg, n_images, err);
    free_names(names, cfg.n_class_names);
    return rc;
}

static int images_open(const orch_pipeline *p, const orch_data *data, orch_dataset *out,
                       orch_err *err)
{
    orch_image_source_config cfg;
    char **names = NULL;
    int rc = image_config(p, data, &cfg, err);
    if (rc == ORCH_OK)
        rc = shared_classes(p, data, &cfg, &names, err);
    if (rc == ORCH_OK)
        rc = orch_image_source_open(&cfg, out, err);
    free_names(names, cfg.n_class_names);
    return rc;
}

/* Tar shards: patterns expanded (a missing shard is refused here, so at
 * plan time), then indexed; class ids must fit the classifier. */
static int open_shards(const orch_pipeline *p, const orch_data *data, int index_only,
                       orch_dataset *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    if (p->head.kind != ORCH_HEAD_CLASSIFIER)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: shards carry class ids (.cls, .json), but head.kind = "
                           "\"regression\" needs float32 targets: use data.source = \"npy\"",
                           p->path);
    const char *patterns[ORCH_MAX_SHARDS];
    for (int i = 0; i < data->n_shards && i < ORCH_MAX_SHARDS; i++)
        patterns[i] = data->shards[i];
    char **paths = NULL;
    int n_paths = 0;
    int rc = orch_shards_expand(patterns, data->n_shards, &paths, &n_paths, err);
    if (rc != ORCH_OK)
        return rc;
    orch_processor_config proc;
    file_processor(p, &proc);
    orch_shards_config cfg = {.paths = (const char *const *)paths,
                              .n_paths = n_paths,
                              .shuffle = data->shuffle,
                              .proc = &proc,
                              .patch_dim = patch_dim_of(&p->model.config),
                              .n_classes = p->head.n_outputs,
                              .index_only = index_only};
    rc = orch_shards_open(&cfg, out, err);
    orch_shards_paths_free(paths, n_paths);
    return rc;
}

/* The checks of one declared set; *n_images gets its image count when
 * known without the pixels (-1 otherwise). */
static int check_set(const orch_pipeline *p, const orch_data *data, int *n_images, orch_err *err)
{
    *n_images = data->source == ORCH_DATA_SYNTHETIC ? data->n_samples : -1;
    if (data->source == ORCH_DATA_IMAGES)
        return images_check(p, data, n_images, err);
    if (data->source == ORCH_DATA_SHARDS) {
        orch_dataset ds;
        int rc = open_shards(p, data, 1, &ds, err);
        if (rc == ORCH_OK)
            *n_images = ds.n_images;
        orch_dataset_free(&ds);
        return rc;
    }
    if (data->source != ORCH_DATA_NPY) /* made from the declaration alone */
        return check_synthetic_head(p, err);
    const orch_model_config *c = &p->model.config;
    orch_dataset ds;
    int rc = orch_npy_dataset_index(data->pixel_values, data->grid_thw_path, data->labels,
                                    patch_dim_of(c), c->spatial_merge_size, &ds, err);
    if (rc == ORCH_OK)
        rc = check_labels_fit_head(p, data, &ds, err);
    if (rc == ORCH_OK)
        *n_images = ds.n_images;
    orch_dataset_free(&ds);
    return rc;
}

int orch_data_check(const orch_pipeline *p, orch_err *err)
{
    int n_images = -1, n_eval = -1;
    int rc = check_set(p, &p->data, &n_images, err);
    if (rc == ORCH_OK && p->eval.enabled && !(p->eval.split > 0.0))
        rc = check_set(p, &p->eval.data, &n_eval, err);
    if (rc == ORCH_OK && p->eval.enabled && p->eval.split > 0.0 && n_images >= 0) {
        /* what orch_train's split will refuse (nothing left to train on) */
        orch_index_set train, held;
        orch_err split_err;
        orch_err_clear(&split_err);
        rc = orch_dataset_split(n_images, p->eval.split, 0, &train, &held, &split_err);
        if (rc != ORCH_OK)
            orch_seterr(err, rc, "%s: %s", p->path, split_err.msg);
        orch_index_set_free(&train);
        orch_index_set_free(&held);
    }
    return rc;
}

/* The identity of a .npy set: its files (pixel values, grids, labels when
 * given) with their sha256, for the run's record (core/data_identity.h). */
static int hash_npy_files(const orch_data *data, orch_dataset *ds, orch_err *err)
{
    const char *paths[3] = {data->pixel_values, data->grid_thw_path, data->labels};
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
    return orch_data_open_set(p, &p->data, out, err);
}

int orch_data_open_set(const orch_pipeline *p, const orch_data *data, orch_dataset *out,
                       orch_err *err)
{
    const orch_model_config *c = &p->model.config;
    int patch_dim = patch_dim_of(c);
    memset(out, 0, sizeof *out);
    if (data->source == ORCH_DATA_IMAGES)
        return images_open(p, data, out, err);
    if (data->source == ORCH_DATA_NPY) {
        int rc = orch_npy_dataset_load(data->pixel_values, data->grid_thw_path, data->labels,
                                       patch_dim, c->spatial_merge_size, out, err);
        if (rc == ORCH_OK)
            rc = check_labels_fit_head(p, data, out, err);
        if (rc == ORCH_OK)
            rc = hash_npy_files(data, out, err);
        if (rc != ORCH_OK)
            orch_dataset_free(out);
        return rc;
    }

    if (data->source == ORCH_DATA_SHARDS)
        return open_shards(p, data, 0, out, err);

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
    syn.n_images = data->n_samples;
    syn.n_classes = data->n_classes;
    syn.height = data->image_height;
    syn.width = data->image_width;
    syn.n_grids = data->n_grids;
    syn.grids = &data->image_grid_thw[0][0];
    syn.seed = orch_data_seed(data, p->seed);
    syn.in_memory = 1;
    return orch_synthetic_load(&syn, &proc, out, err);
}
