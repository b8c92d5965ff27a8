/* detach_cache.c - feature cache for detached towers; see detach_cache.h. */
#include "core/detach_cache.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/data_source.h"
#include "core/init.h"
#include "core/tower_key.h"

int orch_detach_cache_open(orch_detach_cache *c, const char *dir, const orch_exec *ex,
                           orch_err *err)
{
    memset(c, 0, sizeof *c);
    const orch_graph *g = ex->graph;
    XXH3_state_t *state = XXH3_createState();
    if (state == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "feature cache: out of memory");
    XXH3_64bits_reset(state);
    /* the config and precision (core/tower_key.h), then the weights' values */
    int ints[ORCH_TOWER_CONFIG_INTS];
    int n_ints = orch_tower_config_ints(&g->config, ex->precision, ints);
    XXH3_64bits_update(state, ints, sizeof(int) * (size_t)n_ints);
    for (int i = 0; i < g->n_params; i++) {
        const orch_param *p = &g->params[i];
        if (!p->in_tower)
            continue;
        XXH3_64bits_update(state, p->name, strlen(p->name));
        XXH3_64bits_update(state, p->data, sizeof(float) * (size_t)p->numel);
    }
    c->model_hash = XXH3_64bits_digest(state);
    c->hash_state = state; /* reused for the per-image keys */
    return orch_fcache_open(dir, &c->disk, err);
}

void orch_detach_cache_close(orch_detach_cache *c)
{
    if (c == NULL)
        return;
    orch_fcache_close(c->disk);
    XXH3_freeState(c->hash_state);
    free(c->used);
    free(c->fresh);
    memset(c, 0, sizeof *c);
}

static orch_fcache_key image_key(orch_detach_cache *c, const orch_batch *b, int image,
                                 int64_t first_row, int64_t rows)
{
    XXH3_state_t *state = c->hash_state;
    XXH3_128bits_reset_withSeed(state, c->model_hash);
    XXH3_128bits_update(state, &b->grid_thw[3 * image], 3 * sizeof(int64_t));
    XXH3_128bits_update(state, b->pixel_values + first_row * b->patch_dim,
                        sizeof(float) * (size_t)(rows * b->patch_dim));
    XXH128_hash_t h = XXH3_128bits_digest(state);
    orch_fcache_key key = {h.high64, h.low64};
    return key;
}

static int key_is_zero(orch_fcache_key k)
{
    return k.hi == 0 && k.lo == 0;
}

/* Adds key to the used set: 1 when it was not in it, 0 when it was, -1
 * when out of memory. Keys are xxh3 digests, so their low bits are the
 * slot. */
static int used_add(orch_detach_cache *c, orch_fcache_key key)
{
    if (key_is_zero(key))
        return 0;
    if (2 * (c->n_used + 1) > c->cap_used) {
        size_t cap = c->cap_used ? 2 * c->cap_used : 64;
        orch_fcache_key *grown = calloc(cap, sizeof *grown);
        if (grown == NULL)
            return -1;
        for (size_t i = 0; i < c->cap_used; i++) {
            orch_fcache_key k = c->used[i];
            if (key_is_zero(k))
                continue;
            size_t j = (size_t)k.lo & (cap - 1);
            while (!key_is_zero(grown[j]))
                j = (j + 1) & (cap - 1);
            grown[j] = k;
        }
        free(c->used);
        c->used = grown;
        c->cap_used = cap;
    }
    size_t j = (size_t)key.lo & (c->cap_used - 1);
    for (; !key_is_zero(c->used[j]); j = (j + 1) & (c->cap_used - 1))
        if (c->used[j].hi == key.hi && c->used[j].lo == key.lo)
            return 0;
    c->used[j] = key;
    c->n_used++;
    return 1;
}

/* Notes the batch's keys the run had not used yet in c->fresh. */
static int note_uses(orch_detach_cache *c, const orch_fcache_key *keys, int n, orch_err *err)
{
    c->n_fresh = 0;
    if (c->cap_fresh < n) {
        orch_fcache_key *f = realloc(c->fresh, sizeof *f * (size_t)n);
        if (f == NULL)
            return orch_seterr(err, ORCH_ENOMEM, "feature cache: out of memory");
        c->fresh = f;
        c->cap_fresh = n;
    }
    for (int i = 0; i < n; i++) {
        int added = used_add(c, keys[i]);
        if (added < 0)
            return orch_seterr(err, ORCH_ENOMEM, "feature cache: out of memory");
        if (added)
            c->fresh[c->n_fresh++] = keys[i];
    }
    return ORCH_OK;
}

const orch_fcache_key *orch_detach_cache_new_uses(const orch_detach_cache *c, int *n)
{
    *n = c->n_fresh;
    return c->fresh;
}

int orch_detach_cache_forward(orch_detach_cache *c, orch_exec *ex, const orch_batch *batch,
                              double *loss, int *hits, int *misses, orch_err *err)
{
    int64_t rows;
    int cols;
    float *out = orch_exec_tower_output(ex, &rows, &cols);
    const int32_t *units = ex->geometry.cu_image_units;
    orch_fcache_key *keys = malloc(sizeof *keys * (size_t)batch->n_images);
    char *hit = calloc((size_t)batch->n_images, 1);
    if (keys == NULL || hit == NULL) {
        free(keys);
        free(hit);
        return orch_seterr(err, ORCH_ENOMEM, "feature cache: out of memory");
    }
    *hits = *misses = 0;
    c->n_fresh = 0;
    int64_t first_row = 0;
    for (int i = 0; i < batch->n_images; i++) {
        const int64_t *grid = &batch->grid_thw[3 * i];
        int64_t image_rows = grid[0] * grid[1] * grid[2];
        keys[i] = image_key(c, batch, i, first_row, image_rows);
        first_row += image_rows;
        size_t n = (size_t)(units[i + 1] - units[i]) * (size_t)cols;
        hit[i] = (char)orch_fcache_get(c->disk, keys[i], out + (size_t)units[i] * cols, n);
        *hits += hit[i];
    }
    *misses = batch->n_images - *hits;
    int rc = ORCH_OK;
    if (*misses == 0) {
        *loss = orch_exec_forward_from(ex, orch_exec_tower_end(ex));
    } else {
        *loss = orch_exec_forward(ex);
        for (int i = 0; i < batch->n_images && rc == ORCH_OK; i++) {
            if (hit[i])
                continue;
            size_t n = (size_t)(units[i + 1] - units[i]) * (size_t)cols;
            rc = orch_fcache_put(c->disk, keys[i], out + (size_t)units[i] * cols, n, err);
        }
    }
    c->hits += *hits;
    c->misses += *misses;
    if (rc == ORCH_OK)
        rc = note_uses(c, keys, batch->n_images, err);
    free(keys);
    free(hit);
    return rc;
}

/* ------------------------------------------------------- feature stage */

int orch_detach_cache_fill(const orch_pipeline *p, const char *dir, int (*stop)(void),
                           int64_t *images, int64_t *computed, orch_err *err)
{
    orch_dataset data;
    orch_graph graph;
    orch_exec exec;
    orch_batch batch;
    orch_detach_cache cache;
    memset(&data, 0, sizeof data);
    memset(&graph, 0, sizeof graph);
    memset(&exec, 0, sizeof exec);
    memset(&batch, 0, sizeof batch);
    memset(&cache, 0, sizeof cache);
    *images = *computed = 0;
    int b = p->schedule.batch_size;
    int *indices = malloc(sizeof(int) * (size_t)(b > 0 ? b : 1));
    int rc = indices != NULL ? ORCH_OK : orch_seterr(err, ORCH_ENOMEM, "features: out of memory");
    if (rc == ORCH_OK)
        rc = orch_data_open(p, &data, err);
    if (rc == ORCH_OK)
        rc = orch_graph_build(p, &graph, err);
    if (rc == ORCH_OK && !graph.detached)
        rc = orch_seterr(err, ORCH_EINVAL, "%s: the feature stage needs a detached tower", p->path);
    /* reserved as a run of p reserves, so the executor is the run's */
    int64_t largest = 0;
    for (int i = 0; rc == ORCH_OK && i < data.n_images; i++)
        if (orch_dataset_patches(&data, i) > largest)
            largest = orch_dataset_patches(&data, i);
    if (rc == ORCH_OK)
        rc = orch_graph_reserve(&graph, largest * b, b, err);
    if (rc == ORCH_OK)
        rc = orch_init_params(&graph, p, err);
    if (rc == ORCH_OK)
        rc = orch_exec_init(&exec, &graph, p, largest * b, b, err);
    if (rc == ORCH_OK)
        rc = orch_exec_refresh_lowp(&exec, 1, err);
    if (rc == ORCH_OK)
        rc = orch_detach_cache_open(&cache, dir, &exec, err);
    for (int first = 0; rc == ORCH_OK && first < data.n_images; first += b) {
        if (stop != NULL && stop()) {
            rc = orch_seterr(err, ORCH_ERUNTIME, "features: interrupted after %d of %d images",
                             first, data.n_images);
            break;
        }
        int n = data.n_images - first < b ? data.n_images - first : b;
        for (int i = 0; i < n; i++)
            indices[i] = first + i;
        double loss = 0.0;
        int hits = 0, misses = 0;
        rc = orch_dataset_batch(&data, indices, n, &batch, err);
        if (rc == ORCH_OK)
            rc = orch_exec_set_batch(&exec, &batch, err);
        if (rc == ORCH_OK)
            rc = orch_detach_cache_forward(&cache, &exec, &batch, &loss, &hits, &misses, err);
        *computed += misses;
    }
    if (rc == ORCH_OK)
        *images = data.n_images;
    orch_detach_cache_close(&cache);
    orch_exec_free(&exec);
    orch_graph_free(&graph);
    orch_batch_free(&batch);
    orch_dataset_free(&data);
    free(indices);
    return rc;
}
