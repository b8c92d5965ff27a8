/*
 * synthetic.h - a built-in, deterministic synthetic image data set.
 *
 * Image i has class label i % n_classes. The class picks a shape,
 * label % 6: 0 disc, 1 square, 2 triangle, 3 stripes, 4 cross, 5 ring; and,
 * when n_classes > 6, a hue band, label / 6 of ceil(n_classes / 6) equal
 * bands of the colour wheel, so every class stays distinguishable. Position,
 * size, colour (within the band), background colour and per-pixel background
 * noise come from a splitmix64 stream seeded by (seed, i) alone: the same
 * seed gives the same image i bit for bit, whatever n_images is.
 *
 * Two ways to size images:
 *   - pixels: every image is height x width pixels and goes through the full
 *     processor (smart_resize, PIL-style bicubic, normalize, patches);
 *   - grids: image i gets grid grids[i % n_grids] = [t, h, w] (patches) and
 *     is rendered at h*P x w*P pixels, so no resize happens; t > 1 makes a
 *     static video (the frame repeated over t*tp temporal slices).
 *
 * The result is an orch_dataset (core/dataset.h). By default images are
 * rendered and processed when a batch asks for them (no pixel storage);
 * in_memory = 1 renders everything once at load.
 */
#ifndef ORCH_SYNTHETIC_H
#define ORCH_SYNTHETIC_H

#include <stdint.h>

#include "core/dataset.h"
#include "core/err.h"
#include "core/processor.h"

#define ORCH_SYNTHETIC_SHAPES 6

typedef struct orch_synthetic_config {
    int n_images;
    int n_classes;        /* >= 1 */
    int height, width;    /* pixels; both 0 to use grids */
    int n_grids;          /* grids mode: rows of grids */
    const int64_t *grids; /* (n_grids, 3) [t, h, w] in patches; borrowed */
    uint64_t seed;
    int in_memory; /* 1: render all images at load */
} orch_synthetic_config;

/* Class label of image index. */
int orch_synthetic_label(const orch_synthetic_config *cfg, int index);

/* Renders image index of cfg at h x w pixels into rgb (h*w*3 bytes of the
 * caller, RGB interleaved). Deterministic in (cfg->seed, cfg->n_classes,
 * index, h, w). */
void orch_synthetic_render(const orch_synthetic_config *cfg, int index, int h, int w, uint8_t *rgb);

/* Builds the data set into *out (overwritten; orch_dataset_free releases it,
 * including a copy of cfg and proc the lazy reader keeps). Refuses
 * (ORCH_EINVAL) n_images < 1, n_classes < 1, neither or both of
 * height/width and grids, grids that are not valid for proc's merge size,
 * and pixel sizes smart_resize refuses. Returns ORCH_OK, ORCH_EINVAL,
 * ORCH_ENOMEM. */
int orch_synthetic_load(const orch_synthetic_config *cfg, const orch_processor_config *proc,
                        orch_dataset *out, orch_err *err);

#endif
