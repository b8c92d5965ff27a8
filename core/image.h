/*
 * image.h - PNG and JPEG files decoded to RGB uint8, as Pillow does it.
 *
 * What a decoded image is: exactly the pixels of Pillow 9.4's
 * Image.open(f).convert("RGB") (docs/data.md), byte for byte:
 *   - PNG (libpng): 8-bit RGB as is; 16-bit RGB / RGBA / gray+alpha: the
 *     high byte of each sample; gray 1/2/4/8-bit replicated to R = G = B
 *     (1/2/4-bit scaled to 0..255 by bit replication); 16-bit gray is
 *     clipped to 255 (Pillow opens it as mode I and convert("RGB") clips,
 *     so a 16-bit gray scan comes out mostly white: convert it to 8 bits
 *     first); palette through the palette; alpha and tRNS are dropped, never
 *     composited; interlaced files are de-interlaced; gAMA, sBIT, iCCP are
 *     ignored (Pillow ignores them too).
 *   - JPEG (libjpeg-turbo, the library Debian's Pillow links): baseline and
 *     progressive, YCbCr, RGB and grayscale, with Pillow's settings (ISLOW
 *     DCT, fancy upsampling). CMYK and YCCK are refused. Any libjpeg warning
 *     (corrupt data, a premature end) is an error: Pillow would decode a
 *     garbled or grey-padded picture and train on it silently.
 *   - EXIF orientation is not applied (Pillow's Image.open does not).
 * The format comes from the magic bytes, never from the file name.
 *
 * Hostile input (truncated, corrupt, zero-sized, not an image, huge
 * dimensions) gives ORCH_EINVAL and one line naming the input, never a
 * crash; an image of more than ORCH_IMAGE_MAX_PIXELS pixels is refused
 * from its header, before any pixel buffer is allocated.
 *
 * Names in messages: the caller's `name`, a path ("train/cat/001.jpg") or a
 * shard member ("train-000.tar: 000123.jpg"): "NAME: what is wrong".
 */
#ifndef ORCH_IMAGE_H
#define ORCH_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Pillow's Image.MAX_IMAGE_PIXELS * 2, above which Pillow raises
 * DecompressionBombError. */
#define ORCH_IMAGE_MAX_PIXELS 178956970LL

typedef enum orch_image_format {
    ORCH_IMAGE_UNKNOWN = 0,
    ORCH_IMAGE_PNG,
    ORCH_IMAGE_JPEG
} orch_image_format;

/* A decoded image: height x width x 3 bytes, row-major, RGB interleaved. */
typedef struct orch_image {
    int height, width;
    uint8_t *rgb; /* owned; released with orch_image_free */
} orch_image;

/* The format of the n bytes at buf by their magic bytes (PNG: the 8-byte
 * signature; JPEG: FF D8 FF). */
orch_image_format orch_image_format_of(const uint8_t *buf, size_t n);

/* "PNG", "JPEG", "unknown". */
const char *orch_image_format_name(orch_image_format f);

/* Decodes the n bytes at buf (borrowed) into *out (overwritten). Returns
 * ORCH_OK, ORCH_EINVAL (not a PNG or JPEG image, truncated, corrupt,
 * CMYK, too many pixels; one line "NAME: ...") or ORCH_ENOMEM. */
int orch_image_decode(const uint8_t *buf, size_t n, const char *name, orch_image *out,
                      orch_err *err);

/* Reads the file at path and decodes it (orch_image_decode with name =
 * path). ORCH_EINVAL also for a file that cannot be read. */
int orch_image_load(const char *path, orch_image *out, orch_err *err);

/* The dimensions from the header alone, without decoding: PNG's IHDR,
 * JPEG's SOF marker. Refuses what decoding would refuse from the header
 * (not an image, a truncated header, a CMYK/YCCK JPEG, a PNG bit depth or
 * colour type that does not exist, more than ORCH_IMAGE_MAX_PIXELS); pixel
 * data is not looked at, so a corrupt body is found only by decoding. */
int orch_image_size(const uint8_t *buf, size_t n, const char *name, int *height, int *width,
                    orch_err *err);

/* orch_image_size on a file; reads its first 64 KiB (the whole file only
 * when the JPEG's SOF comes later, after large APP segments). */
int orch_image_size_file(const char *path, int *height, int *width, orch_err *err);

/* Reads a whole file into *buf (malloc'ed, the caller frees it) and its
 * size into *n. ORCH_EINVAL "PATH: cannot read: REASON" when it cannot be
 * opened or is not a regular file; ORCH_ENOMEM. */
int orch_image_read_file(const char *path, uint8_t **buf, size_t *n, orch_err *err);

/* Encodes img as a baseline JPEG (libjpeg-turbo, 4:2:0, the given quality
 * 1..100) into *buf (malloc'ed, the caller frees it), *n bytes: for
 * benchmarks and tests that make image sets (bench/data). Returns ORCH_OK,
 * ORCH_EINVAL (bad size or quality), ORCH_ENOMEM. */
int orch_image_encode_jpeg(const orch_image *img, int quality, uint8_t **buf, size_t *n,
                           orch_err *err);

/* Frees the pixels of img and zeroes it; img may be NULL or zeroed. */
void orch_image_free(orch_image *img);

/* The number of images decoded (successfully) by this process so far, for
 * tests that prove a cache works (e.g. epoch 2 decodes nothing). */
int64_t orch_image_decode_count(void);

#endif
