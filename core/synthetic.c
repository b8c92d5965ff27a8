/* synthetic.c - deterministic procedural images as an orch_dataset; see synthetic.h. */
#include "core/synthetic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- rng */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t next64(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ull;
    return mix64(*state);
}

/* Uniform in [0, 1) with 53 bits. */
static double uniform(uint64_t *state)
{
    return (double)(next64(state) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------- render */

int orch_synthetic_label(const orch_synthetic_config *cfg, int index)
{
    return index % cfg->n_classes;
}

static uint8_t clamp_u8(double v)
{
    if (v <= 0.0)
        return 0;
    if (v >= 255.0)
        return 255;
    return (uint8_t)(v + 0.5);
}

/* HSV (each in [0, 1)) to RGB bytes. */
static void hsv_rgb(double hue, double sat, double val, double rgb[3])
{
    double h6 = hue * 6.0;
    int sector = (int)h6 % 6;
    double f = h6 - floor(h6);
    double p = val * (1 - sat), q = val * (1 - sat * f), t = val * (1 - sat * (1 - f));
    double r, g, b;
    switch (sector) {
    case 0:
        r = val, g = t, b = p;
        break;
    case 1:
        r = q, g = val, b = p;
        break;
    case 2:
        r = p, g = val, b = t;
        break;
    case 3:
        r = p, g = q, b = val;
        break;
    case 4:
        r = t, g = p, b = val;
        break;
    default:
        r = val, g = p, b = q;
        break;
    }
    rgb[0] = r * 255.0;
    rgb[1] = g * 255.0;
    rgb[2] = b * 255.0;
}

/* Whether offset (dx, dy) from the centre lies in shape s of radius r. */
static int inside(int s, double dx, double dy, double r)
{
    double ax = fabs(dx), ay = fabs(dy), d2 = dx * dx + dy * dy;
    switch (s) {
    case 0: /* disc */
        return d2 <= r * r;
    case 1: /* square */
        return ax <= 0.8 * r && ay <= 0.8 * r;
    case 2: /* triangle pointing up: apex (0, -r), base at dy = r/2 */
        return dy >= -r && dy <= 0.5 * r && ax <= (dy + r) * 0.57735026918962576;
    case 3: /* five vertical bands in a square, bands 0, 2, 4 filled */
        return ax <= r && ay <= r && ((int)floor((dx + r) * 2.5 / r)) % 2 == 0;
    case 4: /* cross */
        return (ax <= 0.25 * r && ay <= r) || (ay <= 0.25 * r && ax <= r);
    default: /* ring */
        return d2 <= r * r && d2 >= 0.3025 * r * r;
    }
}

void orch_synthetic_render(const orch_synthetic_config *cfg, int index, int h, int w, uint8_t *rgb)
{
    uint64_t state = mix64(cfg->seed + 0xd1b54a32d192ed03ull * ((uint64_t)index + 1));
    int label = orch_synthetic_label(cfg, index);
    int shape = label % ORCH_SYNTHETIC_SHAPES;
    int bands = (cfg->n_classes + ORCH_SYNTHETIC_SHAPES - 1) / ORCH_SYNTHETIC_SHAPES;
    int band = label / ORCH_SYNTHETIC_SHAPES;
    double bg[3], fg[3];
    for (int c = 0; c < 3; c++)
        bg[c] = 16.0 + 80.0 * uniform(&state);
    double hue = (band + uniform(&state)) / bands;
    double sat = 0.6 + 0.4 * uniform(&state);
    double val = 0.75 + 0.25 * uniform(&state);
    hsv_rgb(hue, sat, val, fg);
    double side = h < w ? h : w;
    double r = side * (0.22 + 0.13 * uniform(&state));
    double cx = w * (0.35 + 0.3 * uniform(&state));
    double cy = h * (0.35 + 0.3 * uniform(&state));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int in = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r);
            const double *base = in ? fg : bg;
            uint64_t noise = next64(&state);
            uint8_t *px = rgb + ((size_t)y * w + x) * 3;
            for (int c = 0; c < 3; c++) {
                int n = (int)((noise >> (16 * c)) % 25) - 12; /* [-12, 12] */
                px[c] = clamp_u8(base[c] + n);
            }
        }
}

/* --------------------------------------------------------- data set */

typedef struct synth_ctx {
    orch_synthetic_config cfg; /* grids points at own copy below */
    orch_processor_config proc;
    int64_t *grids;
} synth_ctx;

static void synth_free(void *p)
{
    synth_ctx *ctx = p;
    if (ctx == NULL)
        return;
    free(ctx->grids);
    free(ctx);
}

static int synth_read(void *p, int index, float *dst, orch_err *err)
{
    const synth_ctx *ctx = p;
    const orch_synthetic_config *cfg = &ctx->cfg;
    int64_t grid[3];
    int h, w, t = 1;
    if (cfg->n_grids > 0) {
        const int64_t *g = &cfg->grids[3 * (index % cfg->n_grids)];
        t = (int)g[0];
        h = (int)g[1] * ctx->proc.patch_size;
        w = (int)g[2] * ctx->proc.patch_size;
    } else {
        h = cfg->height;
        w = cfg->width;
    }
    uint8_t *rgb = malloc((size_t)h * w * 3);
    if (rgb == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "synthetic data: out of memory");
    orch_synthetic_render(cfg, index, h, w, rgb);
    int rc = cfg->n_grids > 0 ? orch_processor_run_exact(&ctx->proc, rgb, h, w, t, dst, grid, err)
                              : orch_processor_run(&ctx->proc, rgb, h, w, dst, grid, err);
    free(rgb);
    return rc;
}

int orch_synthetic_load(const orch_synthetic_config *cfg, const orch_processor_config *proc,
                        orch_dataset *out, orch_err *err)
{
    const char *what = "synthetic data";
    int rc = ORCH_OK;
    synth_ctx *ctx = NULL;
    memset(out, 0, sizeof *out);
    int use_grids = cfg->n_grids > 0;
    int use_pixels = cfg->height > 0 || cfg->width > 0;
    if (cfg->n_images < 1 || cfg->n_classes < 1)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: needs n_images >= 1 and n_classes >= 1 (got %d, %d)", what,
                           cfg->n_images, cfg->n_classes);
    if (use_grids == use_pixels || (use_grids && cfg->grids == NULL))
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: give either an image size in pixels or a list of grids", what);
    ctx = calloc(1, sizeof *ctx);
    out->grid_thw = malloc((size_t)cfg->n_images * 3 * sizeof *out->grid_thw);
    out->class_labels = malloc((size_t)cfg->n_images * sizeof *out->class_labels);
    if (ctx == NULL || out->grid_thw == NULL || out->class_labels == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", what);
        goto out;
    }
    ctx->cfg = *cfg;
    ctx->proc = *proc;
    if (use_grids) {
        ctx->grids = malloc((size_t)cfg->n_grids * 3 * sizeof *ctx->grids);
        if (ctx->grids == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory", what);
            goto out;
        }
        memcpy(ctx->grids, cfg->grids, (size_t)cfg->n_grids * 3 * sizeof *ctx->grids);
        ctx->cfg.grids = ctx->grids;
        for (int g = 0; g < cfg->n_grids; g++) {
            const int64_t *r = &ctx->grids[3 * g];
            if (r[0] > 1024 || r[1] > 4096 || r[2] > 4096) {
                rc = orch_seterr(err, ORCH_EINVAL,
                                 "%s: grid %d = [%lld, %lld, %lld] is too large to render", what, g,
                                 (long long)r[0], (long long)r[1], (long long)r[2]);
                goto out;
            }
        }
    }
    int64_t pixel_grid[3] = {0, 0, 0};
    if (!use_grids) {
        rc = orch_processor_plan(proc, cfg->height, cfg->width, pixel_grid, err);
        if (rc != ORCH_OK)
            goto out;
    }
    for (int i = 0; i < cfg->n_images; i++) {
        const int64_t *g = use_grids ? &ctx->grids[3 * (i % cfg->n_grids)] : pixel_grid;
        memcpy(&out->grid_thw[3 * i], g, 3 * sizeof *g);
        out->class_labels[i] = orch_synthetic_label(cfg, i);
    }
    out->n_images = cfg->n_images;
    out->patch_dim = orch_processor_patch_dim(proc);
    out->merge = proc->merge_size;
    out->label_kind = ORCH_LABEL_CLASS;
    out->n_classes = cfg->n_classes;
    out->read_patches = synth_read;
    out->free_ctx = synth_free;
    out->ctx = ctx;
    ctx = NULL; /* owned by out from here */
    rc = orch_dataset_finish(out, what, err);
    if (rc != ORCH_OK || !cfg->in_memory)
        goto out;
    int64_t rows = out->patch_offset[out->n_images];
    out->pixel_values = malloc((size_t)rows * out->patch_dim * sizeof(float));
    if (out->pixel_values == NULL) {
        rc = orch_seterr(err, ORCH_ENOMEM, "%s: out of memory for %lld patches", what,
                         (long long)rows);
        goto out;
    }
    for (int i = 0; i < out->n_images && rc == ORCH_OK; i++)
        rc =
            synth_read(out->ctx, i, out->pixel_values + out->patch_offset[i] * out->patch_dim, err);
    synth_free(out->ctx);
    out->ctx = NULL;
    out->free_ctx = NULL;
    out->read_patches = NULL;
out:
    synth_free(ctx);
    if (rc != ORCH_OK)
        orch_dataset_free(out);
    return rc;
}
