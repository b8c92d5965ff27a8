/*
 * processor.h - a C port of Hugging Face's Qwen2VLImageProcessor (the slow,
 * PIL/numpy one) for RGB uint8 images; docs/qwen25vl-vision.md §2.
 *
 * For one image (H x W x 3, row-major, channels interleaved):
 *   1. (Hr, Wr) = smart_resize(H, W, factor = P*m, min_pixels, max_pixels)
 *   2. bicubic resize to (Hr, Wr) as PIL's Image.resize(BICUBIC) does it:
 *      separable two-pass convolution, horizontal then vertical, with the
 *      a = -0.5 cubic kernel whose support is scaled by the downscale factor
 *      (antialiasing), 22-bit fixed-point coefficients and a uint8 result
 *      after each pass (Pillow's ImagingResample, Resample.c). Bit-exact
 *      against Pillow 9.4 on the committed fixtures.
 *   3. x = float32(double(u8) * rescale_factor), then (x - mean[c]) / std[c]
 *      in float32, as transformers' rescale() and normalize() do
 *   4. the frame is repeated to fill temporal_patch_size frames
 *   5. patches in the exact order of §2.2: rows grouped by merge windows,
 *      columns (channel, temporal, y, x)
 * Output: pixel_values (t*h*w, 3*tp*P*P) float32 and grid [t, h, w] =
 * [1, Hr/P, Wr/P].
 *
 * Deviation: frames are padded to a multiple of tp by repeating the last one
 * (newer transformers); the version in §2.1 always appends tp-1 copies. Both
 * give tp identical frames for a still image.
 */
#ifndef ORCH_PROCESSOR_H
#define ORCH_PROCESSOR_H

#include <stdint.h>

#include "core/err.h"

typedef struct orch_processor_config {
    int patch_size;          /* P */
    int temporal_patch_size; /* tp */
    int merge_size;          /* m */
    int min_pixels;          /* smart_resize bounds on Hr*Wr */
    int max_pixels;
    double rescale_factor; /* 1/255 */
    float image_mean[3];
    float image_std[3];
} orch_processor_config;

/* Fills cfg with Qwen2.5-VL's hub preprocessor_config.json: P 14, tp 2,
 * m 2, min_pixels 3136, max_pixels 12845056, rescale 1/255, OpenAI CLIP
 * mean/std (float32 of the JSON doubles, as numpy makes them). */
void orch_processor_defaults(orch_processor_config *cfg);

/* 3 * tp * P * P: the length of one patch row. */
int orch_processor_patch_dim(const orch_processor_config *cfg);

/* smart_resize of §2.4 (Python semantics: round() half-to-even via
 * nearbyint, math.floor/ceil, IEEE double arithmetic in the same order).
 * Refuses (ORCH_EINVAL) h or w < factor, an aspect ratio above 200, a bad
 * factor or min_pixels > max_pixels. In the max_pixels branch each side is at
 * least factor (newer transformers' max(factor, ...)); the version read
 * could return 0 there. */
int orch_smart_resize(int h, int w, int factor, int min_pixels, int max_pixels, int *out_h,
                      int *out_w, orch_err *err);

/* Resizes an RGB uint8 image src (h x w x 3) to dst (out_h x out_w x 3) like
 * PIL's Image.resize((out_w, out_h), Image.BICUBIC); a same-size resize
 * copies. Both buffers are the caller's. Returns ORCH_OK, ORCH_EINVAL for
 * sizes < 1, ORCH_ENOMEM. */
int orch_resize_bicubic(const uint8_t *src, int h, int w, uint8_t *dst, int out_h, int out_w,
                        orch_err *err);

/* Rescales and normalizes an RGB uint8 image (h x w x 3) into chw, a
 * (3, h, w) float32 buffer of the caller (step 3 above). */
void orch_processor_normalize(const orch_processor_config *cfg, const uint8_t *rgb, int h, int w,
                              float *chw);

/* Step 5: cuts frames (n_frames x 3 x h x w float32, channels first) into
 * patch rows dst (grid_t*(h/P)*(w/P) x 3*tp*P*P) in the order of §2.2. Frame
 * t*tp + k is used for temporal slice (t, k), clamped to the last frame, so
 * one frame with grid_t = 1 is a still image and with grid_t > 1 a static
 * video. h and w must be multiples of P*m (not checked here). */
void orch_processor_patchify(const orch_processor_config *cfg, const float *frames, int n_frames,
                             int grid_t, int h, int w, float *dst);

/* The grid [1, Hr/P, Wr/P] an h x w image will have (smart_resize). */
int orch_processor_plan(const orch_processor_config *cfg, int h, int w, int64_t grid_thw[3],
                        orch_err *err);

/* The whole pipeline for one image: writes grid_thw and the patch rows into
 * pixel_values, which must hold the element count given by
 * orch_processor_plan (t*h*w * patch_dim). rgb and pixel_values are the
 * caller's. Returns ORCH_OK, ORCH_EINVAL (bad size), ORCH_ENOMEM. */
int orch_processor_run(const orch_processor_config *cfg, const uint8_t *rgb, int h, int w,
                       float *pixel_values, int64_t grid_thw[3], orch_err *err);

/* Like orch_processor_run without smart_resize and resize: h and w must be
 * multiples of P*m (else ORCH_EINVAL); grid is [grid_t, h/P, w/P] with the
 * one frame repeated over grid_t*tp temporal slices. */
int orch_processor_run_exact(const orch_processor_config *cfg, const uint8_t *rgb, int h, int w,
                             int grid_t, float *pixel_values, int64_t grid_thw[3], orch_err *err);

#endif
