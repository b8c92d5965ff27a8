/* processor.c - Qwen2VLImageProcessor port; see processor.h. */
#include "core/processor.h"

#include <fenv.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void orch_processor_defaults(orch_processor_config *cfg)
{
    /* doubles cast to float: numpy's np.array(list_of_floats, dtype=float32) */
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    memset(cfg, 0, sizeof *cfg);
    cfg->patch_size = 14;
    cfg->temporal_patch_size = 2;
    cfg->merge_size = 2;
    cfg->min_pixels = 3136;
    cfg->max_pixels = 12845056;
    cfg->rescale_factor = 0.00392156862745098; /* as in preprocessor_config.json; == 1/255 */
    for (int c = 0; c < 3; c++) {
        cfg->image_mean[c] = (float)mean[c];
        cfg->image_std[c] = (float)std[c];
    }
}

int orch_processor_patch_dim(const orch_processor_config *cfg)
{
    return 3 * cfg->temporal_patch_size * cfg->patch_size * cfg->patch_size;
}

/* ------------------------------------------------------- smart_resize */

/* Python's round(): half to even, which is nearbyint under FE_TONEAREST. */
static double py_round(double x)
{
    int mode = fegetround();
    if (mode != FE_TONEAREST)
        fesetround(FE_TONEAREST);
    double r = nearbyint(x);
    if (mode != FE_TONEAREST)
        fesetround(mode);
    return r;
}

int orch_smart_resize(int h, int w, int factor, int min_pixels, int max_pixels, int *out_h,
                      int *out_w, orch_err *err)
{
    if (factor < 1 || min_pixels < 0 || max_pixels < 1 || min_pixels > max_pixels)
        return orch_seterr(err, ORCH_EINVAL,
                           "smart_resize: bad parameters (factor %d, min_pixels %d, max_pixels "
                           "%d)",
                           factor, min_pixels, max_pixels);
    if (h < factor || w < factor)
        return orch_seterr(err, ORCH_EINVAL,
                           "image of %dx%d pixels (HxW) is smaller than the factor %d "
                           "(patch_size x merge_size) in height or width",
                           h, w, factor);
    double ratio = (double)(h > w ? h : w) / (double)(h > w ? w : h);
    if (ratio > 200)
        return orch_seterr(err, ORCH_EINVAL,
                           "image of %dx%d pixels (HxW): absolute aspect ratio %.1f exceeds 200", h,
                           w, ratio);
    double hb = py_round((double)h / factor) * factor;
    double wb = py_round((double)w / factor) * factor;
    if (hb * wb > max_pixels) {
        double beta = sqrt((double)h * (double)w / max_pixels);
        hb = floor((double)h / beta / factor) * factor;
        wb = floor((double)w / beta / factor) * factor;
        if (hb < factor)
            hb = factor;
        if (wb < factor)
            wb = factor;
    } else if (hb * wb < min_pixels) {
        double beta = sqrt(min_pixels / ((double)h * (double)w));
        hb = ceil((double)h * beta / factor) * factor;
        wb = ceil((double)w * beta / factor) * factor;
    }
    if (hb > INT_MAX / 4 || wb > INT_MAX / 4)
        return orch_seterr(err, ORCH_EINVAL, "image of %dx%d pixels (HxW) is too large", h, w);
    *out_h = (int)hb;
    *out_w = (int)wb;
    return ORCH_OK;
}

/* ------------------------------------------------------ PIL bicubic */

/* Pillow Resample.c: 8 bits of result, 2 bits of headroom, int32 sums. */
#define PRECISION_BITS (32 - 8 - 2)

static double bicubic_filter(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* precompute_coeffs + normalize_coeffs_8bpc for box [0, in_size): per output
 * pixel xx, bounds[2xx] = first input pixel, bounds[2xx+1] = count, and
 * kk[xx*ksize ...] the fixed-point weights. Returns ksize, 0 on ENOMEM. */
static int precompute_coeffs(int in_size, int out_size, int **boundsp, int32_t **kkp)
{
    const double filter_support = 2.0;
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filter_support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = malloc((size_t)out_size * (size_t)ksize * sizeof *pre);
    int32_t *kk = malloc((size_t)out_size * (size_t)ksize * sizeof *kk);
    int *bounds = malloc((size_t)out_size * 2 * sizeof *bounds);
    if (pre == NULL || kk == NULL || bounds == NULL) {
        free(pre);
        free(kk);
        free(bounds);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double *k = &pre[(size_t)xx * ksize];
        int x;
        for (x = 0; x < xmax; x++) {
            double wgt = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = wgt;
            ww += wgt;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (; x < ksize; x++)
            k[x] = 0;
        bounds[xx * 2 + 0] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * (size_t)ksize; i++)
        kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                           : (int32_t)(0.5 + pre[i] * (1 << PRECISION_BITS));
    free(pre);
    *boundsp = bounds;
    *kkp = kk;
    return ksize;
}

static uint8_t clip8(int32_t in)
{
    if (in < 0)
        return 0;
    in >>= PRECISION_BITS;
    return (uint8_t)(in > 255 ? 255 : in);
}

/* ImagingResampleHorizontal_8bpc for 3 interleaved channels: out rows are
 * input rows offset.. */
static void resample_horizontal(const uint8_t *in, int in_w, uint8_t *out, int out_w, int out_h,
                                int offset, int ksize, const int *bounds, const int32_t *kk)
{
    for (int yy = 0; yy < out_h; yy++) {
        const uint8_t *row = in + (size_t)(yy + offset) * in_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = bounds[xx * 2 + 0], xmax = bounds[xx * 2 + 1];
            const int32_t *k = &kk[(size_t)xx * ksize];
            int32_t ss0 = 1 << (PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
            for (int x = 0; x < xmax; x++) {
                const uint8_t *px = row + (size_t)(x + xmin) * 3;
                ss0 += px[0] * k[x];
                ss1 += px[1] * k[x];
                ss2 += px[2] * k[x];
            }
            uint8_t *o = out + ((size_t)yy * out_w + xx) * 3;
            o[0] = clip8(ss0);
            o[1] = clip8(ss1);
            o[2] = clip8(ss2);
        }
    }
}

/* ImagingResampleVertical_8bpc for 3 interleaved channels. */
static void resample_vertical(const uint8_t *in, int w, uint8_t *out, int out_h, int ksize,
                              const int *bounds, const int32_t *kk)
{
    for (int yy = 0; yy < out_h; yy++) {
        const int32_t *k = &kk[(size_t)yy * ksize];
        int ymin = bounds[yy * 2 + 0], ymax = bounds[yy * 2 + 1];
        for (int xx = 0; xx < w; xx++) {
            int32_t ss0 = 1 << (PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
            for (int y = 0; y < ymax; y++) {
                const uint8_t *px = in + ((size_t)(y + ymin) * w + xx) * 3;
                ss0 += px[0] * k[y];
                ss1 += px[1] * k[y];
                ss2 += px[2] * k[y];
            }
            uint8_t *o = out + ((size_t)yy * w + xx) * 3;
            o[0] = clip8(ss0);
            o[1] = clip8(ss1);
            o[2] = clip8(ss2);
        }
    }
}

int orch_resize_bicubic(const uint8_t *src, int h, int w, uint8_t *dst, int out_h, int out_w,
                        orch_err *err)
{
    int rc = ORCH_OK;
    int *bounds_h = NULL, *bounds_v = NULL;
    int32_t *kk_h = NULL, *kk_v = NULL;
    uint8_t *tmp = NULL;
    if (h < 1 || w < 1 || out_h < 1 || out_w < 1)
        return orch_seterr(err, ORCH_EINVAL, "resize: bad size %dx%d -> %dx%d", h, w, out_h, out_w);
    if (h == out_h && w == out_w) {
        memcpy(dst, src, (size_t)h * w * 3);
        return ORCH_OK;
    }
    int need_h = out_w != w, need_v = out_h != h;
    int ksize_h = precompute_coeffs(w, out_w, &bounds_h, &kk_h);
    int ksize_v = precompute_coeffs(h, out_h, &bounds_v, &kk_v);
    if (ksize_h == 0 || ksize_v == 0) {
        rc = orch_seterr(err, ORCH_ENOMEM, "resize: out of memory");
        goto out;
    }
    /* rows of the source the vertical pass will read */
    int ybox_first = bounds_v[0];
    int ybox_last = bounds_v[out_h * 2 - 2] + bounds_v[out_h * 2 - 1];
    if (!need_v) {
        resample_horizontal(src, w, dst, out_w, out_h, 0, ksize_h, bounds_h, kk_h);
        goto out;
    }
    const uint8_t *vin = src;
    if (need_h) {
        for (int i = 0; i < out_h; i++)
            bounds_v[i * 2] -= ybox_first;
        tmp = malloc((size_t)(ybox_last - ybox_first) * out_w * 3);
        if (tmp == NULL) {
            rc = orch_seterr(err, ORCH_ENOMEM, "resize: out of memory");
            goto out;
        }
        resample_horizontal(src, w, tmp, out_w, ybox_last - ybox_first, ybox_first, ksize_h,
                            bounds_h, kk_h);
        vin = tmp;
    }
    resample_vertical(vin, out_w, dst, out_h, ksize_v, bounds_v, kk_v);
out:
    free(tmp);
    free(bounds_h);
    free(bounds_v);
    free(kk_h);
    free(kk_v);
    return rc;
}

/* ------------------------------------------------- normalize, patches */

void orch_processor_normalize(const orch_processor_config *cfg, const uint8_t *rgb, int h, int w,
                              float *chw)
{
    size_t plane = (size_t)h * w;
    /* A uint8 has 256 values: the formula once per value, then a lookup
     * (the same float for the same byte, so the result is unchanged). */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        float mean = cfg->image_mean[c], std = cfg->image_std[c];
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * cfg->rescale_factor);
            lut[c][v] = (x - mean) / std;
        }
    }
    float *r = chw, *g = chw + plane, *b = chw + 2 * plane;
    for (size_t i = 0; i < plane; i++) {
        r[i] = lut[0][rgb[i * 3]];
        g[i] = lut[1][rgb[i * 3 + 1]];
        b[i] = lut[2][rgb[i * 3 + 2]];
    }
}

void orch_processor_patchify(const orch_processor_config *cfg, const float *frames, int n_frames,
                             int grid_t, int h, int w, float *dst)
{
    const int P = cfg->patch_size, tp = cfg->temporal_patch_size, m = cfg->merge_size;
    const int gh = h / P, gw = w / P;
    const size_t plane = (size_t)h * w;
    const size_t dim = (size_t)3 * tp * P * P;
    for (int t = 0; t < grid_t; t++)
        for (int bh = 0; bh < gh / m; bh++)
            for (int bw = 0; bw < gw / m; bw++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < m; j++) {
                        size_t row = ((size_t)((t * (gh / m) + bh) * (gw / m) + bw)) * m * m +
                                     (size_t)(i * m + j);
                        int ph = bh * m + i, pw = bw * m + j;
                        float *out = dst + row * dim;
                        for (int c = 0; c < 3; c++)
                            for (int k = 0; k < tp; k++) {
                                int f = t * tp + k;
                                if (f >= n_frames)
                                    f = n_frames - 1;
                                const float *img = frames + ((size_t)f * 3 + c) * plane;
                                for (int y = 0; y < P; y++) {
                                    const float *src = img + (size_t)(ph * P + y) * w + pw * P;
                                    memcpy(out + ((size_t)(c * tp + k) * P + y) * P, src,
                                           (size_t)P * sizeof(float));
                                }
                            }
                    }
}

/* One patch of one still frame: its P x P pixels looked up in the three
 * channels' tables, channel c's P*P values at o + c * cstride (the first
 * temporal slice of that channel). All three channels in one sweep over
 * the pixels: each RGB triple is read once and the address arithmetic is
 * shared. */
static void patch_lookup(const float (*restrict lut)[256], const uint8_t *restrict rgb,
                         size_t row_bytes, int P, float *restrict o, size_t cstride)
{
    float *restrict r = o, *restrict g = o + cstride, *restrict b = o + 2 * cstride;
    for (int y = 0; y < P; y++) {
        const uint8_t *restrict px = rgb + (size_t)y * row_bytes;
        for (int x = 0; x < P; x++) {
            r[y * P + x] = lut[0][px[3 * x]];
            g[y * P + x] = lut[1][px[3 * x + 1]];
            b[y * P + x] = lut[2][px[3 * x + 2]];
        }
    }
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HAVE_PATCH14 /* patch_lookup14 below */
/* patch_lookup for patch 14, the same lookups into the same places: a
 * patch row's 42 bytes are read as five 8-byte words and a 2-byte one and
 * taken apart in registers (byte k of a row is word k/8's bits 8(k%8)..,
 * little-endian), one load per 8 bytes instead of one per byte, which is
 * what bounded the byte-wise loop; the unrolled loop makes every shift,
 * channel and column a constant. */
static void patch_lookup14(const float (*restrict lut)[256], const uint8_t *restrict rgb,
                           size_t row_bytes, float *restrict o, size_t cstride)
{
    for (int y = 0; y < 14; y++) {
        const uint8_t *restrict px = rgb + (size_t)y * row_bytes;
        uint64_t word[6];
        uint16_t tail;
        memcpy(word, px, 40);
        memcpy(&tail, px + 40, 2);
        word[5] = tail;
#pragma GCC unroll 42
        for (int k = 0; k < 42; k++) {
            unsigned v = (unsigned)(word[k >> 3] >> (8 * (k & 7))) & 0xffu;
            o[(size_t)(k % 3) * cstride + (size_t)y * 14 + (size_t)(k / 3)] = lut[k % 3][v];
        }
    }
}
#endif

/* normalize + patchify of one still frame in one pass, straight from the
 * RGB bytes (no (3, h, w) float frame in between): every output element is
 * the same lookup orch_processor_normalize makes, placed where
 * orch_processor_patchify puts it; the tp temporal slices of a still
 * frame are copies of the first, so each channel's block is computed once
 * and copied. */
static void patchify_rgb(const orch_processor_config *cfg, const uint8_t *rgb, int grid_t, int h,
                         int w, float *dst)
{
    const int P = cfg->patch_size, tp = cfg->temporal_patch_size, m = cfg->merge_size;
    const int gh = h / P, gw = w / P;
    const size_t dim = (size_t)3 * tp * P * P, slice = (size_t)P * P;
    const size_t row_bytes = (size_t)w * 3;
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * cfg->rescale_factor);
            lut[c][v] = (x - cfg->image_mean[c]) / cfg->image_std[c];
        }
    const size_t per_t = (size_t)gh * gw;
    for (int bh = 0; bh < gh / m; bh++)
        for (int bw = 0; bw < gw / m; bw++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) {
                    size_t row = ((size_t)(bh * (gw / m) + bw)) * m * m + (size_t)(i * m + j);
                    int ph = bh * m + i, pw = bw * m + j;
                    float *out = dst + row * dim;
                    const uint8_t *src = rgb + (size_t)ph * P * row_bytes + (size_t)pw * P * 3;
#ifdef HAVE_PATCH14
                    if (P == 14)
                        patch_lookup14((const float(*)[256])lut, src, row_bytes, out,
                                       (size_t)tp * slice);
                    else
#endif
                        patch_lookup((const float(*)[256])lut, src, row_bytes, P, out,
                                     (size_t)tp * slice);
                    for (int c = 0; c < 3; c++) {
                        float *o = out + (size_t)c * tp * slice;
                        for (int k = 1; k < tp; k++)
                            memcpy(o + k * slice, o, slice * sizeof *o);
                    }
                }
    /* a static video: every temporal group repeats the first */
    for (int t = 1; t < grid_t; t++)
        memcpy(dst + (size_t)t * per_t * dim, dst, per_t * dim * sizeof *dst);
}

int orch_processor_plan(const orch_processor_config *cfg, int h, int w, int64_t grid_thw[3],
                        orch_err *err)
{
    int rh = 0, rw = 0;
    int rc = orch_smart_resize(h, w, cfg->patch_size * cfg->merge_size, cfg->min_pixels,
                               cfg->max_pixels, &rh, &rw, err);
    if (rc != ORCH_OK)
        return rc;
    grid_thw[0] = 1;
    grid_thw[1] = rh / cfg->patch_size;
    grid_thw[2] = rw / cfg->patch_size;
    return ORCH_OK;
}

int orch_processor_run_exact(const orch_processor_config *cfg, const uint8_t *rgb, int h, int w,
                             int grid_t, float *pixel_values, int64_t grid_thw[3], orch_err *err)
{
    int factor = cfg->patch_size * cfg->merge_size;
    if (factor < 1 || cfg->temporal_patch_size < 1)
        return orch_seterr(err, ORCH_EINVAL, "processor: bad patch, merge or temporal size");
    if (h < factor || w < factor || h % factor != 0 || w % factor != 0 || grid_t < 1)
        return orch_seterr(err, ORCH_EINVAL,
                           "image of %dx%d pixels (HxW) is not a positive multiple of %d "
                           "(patch_size x merge_size) in both sides",
                           h, w, factor);
    patchify_rgb(cfg, rgb, grid_t, h, w, pixel_values);
    grid_thw[0] = grid_t;
    grid_thw[1] = h / cfg->patch_size;
    grid_thw[2] = w / cfg->patch_size;
    return ORCH_OK;
}

int orch_processor_run(const orch_processor_config *cfg, const uint8_t *rgb, int h, int w,
                       float *pixel_values, int64_t grid_thw[3], orch_err *err)
{
    int rh = 0, rw = 0;
    int rc = orch_smart_resize(h, w, cfg->patch_size * cfg->merge_size, cfg->min_pixels,
                               cfg->max_pixels, &rh, &rw, err);
    if (rc != ORCH_OK)
        return rc;
    if (rh == h && rw == w) /* a same-size resize is a copy: skip it */
        return orch_processor_run_exact(cfg, rgb, h, w, 1, pixel_values, grid_thw, err);
    uint8_t *resized = malloc((size_t)rh * rw * 3);
    if (resized == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "processor: out of memory");
    rc = orch_resize_bicubic(rgb, h, w, resized, rh, rw, err);
    if (rc == ORCH_OK)
        rc = orch_processor_run_exact(cfg, resized, rh, rw, 1, pixel_values, grid_thw, err);
    free(resized);
    return rc;
}
