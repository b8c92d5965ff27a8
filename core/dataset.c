/* dataset.c - the shared image-set structure, batches, epoch order; see dataset.h. */
#include "core/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN 0x9e3779b97f4a7c15ull

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t next64(uint64_t *state)
{
    *state += GOLDEN;
    return mix64(*state);
}

/* ------------------------------------------------------------- checks */

static int row_ok(const int64_t r[3], int merge)
{
    return r[0] >= 1 && r[1] >= 1 && r[2] >= 1 && r[1] % merge == 0 && r[2] % merge == 0;
}

static int check_grid_row(const char *what, int i, const int64_t r[3], int merge, orch_err *err)
{
    if (row_ok(r, merge))
        return ORCH_OK;
    const int64_t rot[3] = {r[2], r[0], r[1]};
    if (r[2] == 1 && r[0] > 1 && row_ok(rot, merge))
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: image_grid_thw row %d = [%lld, %lld, %lld]: the order is "
                           "[t, h, w]; did you mean [%lld, %lld, %lld]?",
                           what, i, (long long)r[0], (long long)r[1], (long long)r[2],
                           (long long)rot[0], (long long)rot[1], (long long)rot[2]);
    const char *why;
    char buf[96];
    if (r[0] < 1 || r[1] < 1 || r[2] < 1) {
        why = "every entry must be >= 1";
    } else {
        snprintf(buf, sizeof buf, "%s=%lld is not a multiple of the merge size %d",
                 r[1] % merge ? "h" : "w", (long long)(r[1] % merge ? r[1] : r[2]), merge);
        why = buf;
    }
    return orch_seterr(err, ORCH_EINVAL, "%s: image_grid_thw row %d = [%lld, %lld, %lld]: %s", what,
                       i, (long long)r[0], (long long)r[1], (long long)r[2], why);
}

static int check_labels(orch_dataset *ds, const char *what, orch_err *err)
{
    switch (ds->label_kind) {
    case ORCH_LABEL_NONE:
        ds->n_targets = 0;
        return ORCH_OK;
    case ORCH_LABEL_CLASS: {
        if (ds->class_labels == NULL)
            return orch_seterr(err, ORCH_EINVAL, "%s: class labels missing", what);
        int64_t max = -1;
        for (int i = 0; i < ds->n_images; i++) {
            int64_t y = ds->class_labels[i];
            if (y < 0 || (ds->n_classes > 0 && y >= ds->n_classes))
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s: label %lld of image %d is outside [0, %d)", what,
                                   (long long)y, i, ds->n_classes > 0 ? ds->n_classes : 0);
            if (y > max)
                max = y;
        }
        if (max >= 1 << 30)
            return orch_seterr(err, ORCH_EINVAL, "%s: class label %lld is implausibly large", what,
                               (long long)max);
        if (ds->n_classes <= 0)
            ds->n_classes = (int)max + 1;
        ds->n_targets = 1;
        return ORCH_OK;
    }
    case ORCH_LABEL_REGRESSION:
        if (ds->targets == NULL || ds->n_targets < 1)
            return orch_seterr(err, ORCH_EINVAL, "%s: regression targets missing", what);
        for (int64_t k = 0; k < (int64_t)ds->n_images * ds->n_targets; k++)
            if (!isfinite(ds->targets[k]))
                return orch_seterr(err, ORCH_EINVAL, "%s: target %lld of image %lld is %s", what,
                                   (long long)(k % ds->n_targets), (long long)(k / ds->n_targets),
                                   isnan(ds->targets[k]) ? "NaN" : "infinite");
        return ORCH_OK;
    }
    return orch_seterr(err, ORCH_EINVAL, "%s: unknown label kind", what);
}

int orch_dataset_finish(orch_dataset *ds, const char *what, orch_err *err)
{
    if ((ds->pixel_values == NULL) == (ds->read_patches == NULL))
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: a dataset needs exactly one of pixel_values and read_patches",
                           what);
    return orch_dataset_index(ds, what, err);
}

int orch_dataset_index(orch_dataset *ds, const char *what, orch_err *err)
{
    if (ds->n_images < 1)
        return orch_seterr(err, ORCH_EINVAL, "%s: no images", what);
    if (ds->patch_dim < 1 || ds->merge < 1 || ds->grid_thw == NULL)
        return orch_seterr(err, ORCH_EINVAL, "%s: patch size, merge size or grids missing", what);
    free(ds->patch_offset);
    ds->patch_offset = malloc(((size_t)ds->n_images + 1) * sizeof *ds->patch_offset);
    if (ds->patch_offset == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", what);
    int64_t total = 0;
    for (int i = 0; i < ds->n_images; i++) {
        const int64_t *r = &ds->grid_thw[3 * i];
        int rc = check_grid_row(what, i, r, ds->merge, err);
        if (rc != ORCH_OK)
            return rc;
        if (r[0] > (1 << 20) || r[1] > (1 << 20) || r[2] > (1 << 20))
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: image_grid_thw row %d = [%lld, %lld, %lld] is implausibly "
                               "large",
                               what, i, (long long)r[0], (long long)r[1], (long long)r[2]);
        ds->patch_offset[i] = total;
        /* each factor is at most 2^20, so the product fits; the sum over
         * up to 2^30 images may not, and a wrapped sum could even match
         * the rows of pixel_values */
        int64_t patches = r[0] * r[1] * r[2];
        if (patches > INT64_MAX - total)
            return orch_seterr(err, ORCH_EINVAL,
                               "%s: image_grid_thw row %d = [%lld, %lld, %lld] takes the patch "
                               "count (sum of t*h*w) past 2^63 - 1",
                               what, i, (long long)r[0], (long long)r[1], (long long)r[2]);
        total += patches;
    }
    ds->patch_offset[ds->n_images] = total;
    return check_labels(ds, what, err);
}

void orch_dataset_free(orch_dataset *ds)
{
    if (ds == NULL)
        return;
    free(ds->grid_thw);
    free(ds->patch_offset);
    free(ds->class_labels);
    free(ds->targets);
    free(ds->pixel_values);
    if (ds->free_ctx != NULL)
        ds->free_ctx(ds->ctx);
    for (int i = 0; i < ds->n_files; i++)
        free(ds->files[i].path);
    free(ds->files);
    for (int i = 0; i < ds->n_class_names; i++)
        free(ds->class_names[i]);
    free(ds->class_names);
    memset(ds, 0, sizeof *ds);
}

int64_t orch_dataset_patches(const orch_dataset *ds, int i)
{
    const int64_t *r = &ds->grid_thw[3 * i];
    return r[0] * r[1] * r[2];
}

/* ------------------------------------------------------------- batches */

/* Grows *buf to hold n elements of size elem; *cap counts elements. */
static int grow(void **buf, int64_t *cap, int64_t n, size_t elem)
{
    if (n <= *cap && *buf != NULL)
        return 0;
    void *p = realloc(*buf, (size_t)(n > 0 ? n : 1) * elem);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n > 0 ? n : 1;
    return 0;
}

int orch_dataset_batch(const orch_dataset *ds, const int *indices, int n, orch_batch *out,
                       orch_err *err)
{
    if (n < 1)
        return orch_seterr(err, ORCH_EINVAL, "empty batch");
    int64_t rows = 0;
    for (int b = 0; b < n; b++) {
        if (indices[b] < 0 || indices[b] >= ds->n_images)
            return orch_seterr(err, ORCH_EINVAL, "batch index %d is outside [0, %d)", indices[b],
                               ds->n_images);
        rows += orch_dataset_patches(ds, indices[b]);
    }
    int n_targets = ds->label_kind == ORCH_LABEL_REGRESSION ? ds->n_targets : 0;
    if (grow((void **)&out->pixel_values, &out->cap_pixels, rows * ds->patch_dim, sizeof(float)) !=
            0 ||
        grow((void **)&out->grid_thw, &out->cap_grid, 3 * (int64_t)n, sizeof(int64_t)) != 0 ||
        (ds->label_kind == ORCH_LABEL_CLASS &&
         grow((void **)&out->class_labels, &out->cap_labels, n, sizeof(int64_t)) != 0) ||
        (n_targets > 0 && grow((void **)&out->targets, &out->cap_targets, (int64_t)n * n_targets,
                               sizeof(float)) != 0))
        return orch_seterr(err, ORCH_ENOMEM, "out of memory for a batch of %lld patches",
                           (long long)rows);
    out->n_images = n;
    out->n_patches = rows;
    out->patch_dim = ds->patch_dim;
    out->label_kind = ds->label_kind;
    out->n_targets = ds->label_kind == ORCH_LABEL_CLASS ? 1 : n_targets;
    float *dst = out->pixel_values;
    for (int b = 0; b < n; b++) {
        int i = indices[b];
        int64_t count = orch_dataset_patches(ds, i) * ds->patch_dim;
        if (ds->pixel_values != NULL) {
            memcpy(dst, ds->pixel_values + ds->patch_offset[i] * ds->patch_dim,
                   (size_t)count * sizeof(float));
        } else {
            int rc = ds->read_patches(ds->ctx, i, dst, err);
            if (rc != ORCH_OK)
                return rc;
        }
        dst += count;
        memcpy(&out->grid_thw[3 * b], &ds->grid_thw[3 * i], 3 * sizeof(int64_t));
        if (ds->label_kind == ORCH_LABEL_CLASS)
            out->class_labels[b] = ds->class_labels[i];
        if (n_targets > 0)
            memcpy(&out->targets[(int64_t)b * n_targets], &ds->targets[(int64_t)i * n_targets],
                   (size_t)n_targets * sizeof(float));
    }
    return ORCH_OK;
}

void orch_batch_free(orch_batch *b)
{
    if (b == NULL)
        return;
    free(b->pixel_values);
    free(b->grid_thw);
    free(b->class_labels);
    free(b->targets);
    memset(b, 0, sizeof *b);
}

/* --------------------------------------------------------------- order */

void orch_dataset_order(const orch_dataset *ds, uint64_t seed, int64_t epoch, int *perm)
{
    if (ds->order != NULL) {
        ds->order(ds, seed, epoch, perm);
        return;
    }
    orch_order_permutation(ds->n_images, seed, epoch, perm);
}

void orch_order_permutation(int n, uint64_t seed, int64_t epoch, int *perm)
{
    for (int i = 0; i < n; i++)
        perm[i] = i;
    uint64_t state = mix64(seed ^ mix64((uint64_t)epoch + GOLDEN));
    for (int i = n - 1; i > 0; i--) {
        uint64_t bound = (uint64_t)i + 1;
        uint64_t threshold = (0 - bound) % bound; /* 2^64 mod bound */
        uint64_t r;
        do
            r = next64(&state);
        while (r < threshold);
        int j = (int)(r % bound);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* --------------------------------------------------------------- split */

static int ascending(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int orch_dataset_split(int n_images, double fraction, uint64_t seed, orch_index_set *train,
                       orch_index_set *held, orch_err *err)
{
    memset(train, 0, sizeof *train);
    memset(held, 0, sizeof *held);
    if (!(fraction > 0.0 && fraction < 1.0))
        return orch_seterr(err, ORCH_EINVAL, "eval.split = %g: the fraction must be in (0, 1)",
                           fraction);
    /* as Hugging Face datasets' train_test_split with a float test_size */
    double want = ceil(fraction * (double)n_images);
    if (n_images < 2 || want >= (double)n_images)
        return orch_seterr(err, ORCH_EINVAL,
                           "eval.split = %g of %d images leaves no image to train on", fraction,
                           n_images);
    int n_held = (int)want;
    /* owned by the callers' sets; the permutation is the working buffer of train */
    int *perm = malloc(sizeof(int) * (size_t)n_images);
    held->index = malloc(sizeof(int) * (size_t)n_held);
    if (perm == NULL || held->index == NULL) {
        free(perm);
        free(held->index);
        held->index = NULL;
        return orch_seterr(err, ORCH_ENOMEM, "eval.split: out of memory");
    }
    orch_order_permutation(n_images, seed, ORCH_SPLIT_EPOCH, perm);
    memcpy(held->index, perm, sizeof(int) * (size_t)n_held);
    memmove(perm, perm + n_held, sizeof(int) * (size_t)(n_images - n_held));
    held->n = n_held;
    train->index = perm;
    train->n = n_images - n_held;
    qsort(held->index, (size_t)held->n, sizeof(int), ascending);
    qsort(train->index, (size_t)train->n, sizeof(int), ascending);
    return ORCH_OK;
}

void orch_index_set_free(orch_index_set *set)
{
    if (set == NULL)
        return;
    free(set->index);
    memset(set, 0, sizeof *set);
}
