/* tower_key.c - the facts of a frozen tower's forward; see tower_key.h. */
#include "core/tower_key.h"

#include <string.h>
#include <xxhash.h>

#include "core/err.h"

int orch_tower_config_ints(const orch_model_config *cfg, orch_precision precision, int *out)
{
    const int fields[] = {
        cfg->depth,       cfg->hidden_size,         cfg->num_heads,   cfg->intermediate_size,
        cfg->patch_size,  cfg->temporal_patch_size, cfg->in_channels, cfg->spatial_merge_size,
        cfg->window_size, cfg->out_hidden_size,     cfg->n_fullatt,   (int)precision};
    int n = (int)(sizeof fields / sizeof fields[0]);
    memcpy(out, fields, sizeof fields);
    for (int i = 0; i < cfg->n_fullatt && i < ORCH_MAX_FULLATT; i++)
        out[n++] = cfg->fullatt_block_indexes[i];
    return n;
}

/* The facts as bytes, hashed at once: every fact has a fixed size or
 * ends with a NUL, so two different lists of facts never give the same
 * bytes. */
typedef struct facts {
    unsigned char bytes[3 * ORCH_PATH_MAX + sizeof(int) * ORCH_TOWER_CONFIG_INTS +
                        sizeof(int64_t) * (3 * ORCH_MAX_IMAGES + 16)];
    size_t len;
} facts;

static void put(facts *f, const void *data, size_t size)
{
    ORCH_ASSERT(f->len + size <= sizeof f->bytes);
    memcpy(f->bytes + f->len, data, size);
    f->len += size;
}

static void put_text(facts *f, const char *text)
{
    put(f, text, strlen(text) + 1);
}

static void put_int64(facts *f, int64_t v)
{
    put(f, &v, sizeof v);
}

uint64_t orch_tower_forward_key(const orch_pipeline *p)
{
    facts f;
    f.len = 0;
    int ints[ORCH_TOWER_CONFIG_INTS];
    int n = orch_tower_config_ints(&p->model.config, p->precision, ints);
    put(&f, ints, sizeof(int) * (size_t)n);
    /* the weights: the file, else the seeded init */
    put_text(&f, p->model.weights);
    int seeded_tower = p->model.weights[0] == '\0';
    if (seeded_tower) {
        double std = p->model.config.initializer_range;
        put(&f, &std, sizeof std);
    }
    /* the images */
    const orch_data *d = &p->data;
    put_int64(&f, d->source);
    if (d->source == ORCH_DATA_NPY) {
        put_text(&f, d->pixel_values);
        put_text(&f, d->grid_thw_path);
    } else if (d->source == ORCH_DATA_IMAGES) {
        /* the files (the CSV picks and orders them) and the processor's
         * bounds, which decide the patch rows */
        put_text(&f, d->dir);
        put_text(&f, d->labels);
        const int64_t bounds[] = {p->processor.min_pixels, p->processor.max_pixels};
        put(&f, bounds, sizeof bounds);
    } else if (d->source == ORCH_DATA_SHARDS) {
        /* the patterns pick the shards (their sorted names order them) and
         * the processor's bounds decide the patch rows */
        put_int64(&f, d->n_shards);
        for (int i = 0; i < d->n_shards; i++)
            put_text(&f, d->shards[i]);
        const int64_t bounds[] = {p->processor.min_pixels, p->processor.max_pixels};
        put(&f, bounds, sizeof bounds);
    } else {
        const int64_t fields[] = {d->n_samples, d->n_classes, d->image_height, d->image_width,
                                  d->n_grids};
        put(&f, fields, sizeof fields);
        put(&f, d->image_grid_thw, sizeof(int64_t) * 3 * (size_t)d->n_grids);
    }
    int seeded_images = d->source == ORCH_DATA_SYNTHETIC;
    if (seeded_tower || seeded_images)
        put_int64(&f, (int64_t)p->seed);
    return XXH3_64bits(f.bytes, f.len);
}
