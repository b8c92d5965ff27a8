/*
 * shards_image.h - PNG and JPEG members of a tar shard: their size from
 * the header (for the index, without decoding) and their RGB pixels.
 *
 * The size is read from the bytes (PNG: IHDR; JPEG: the first SOFn
 * marker). The pixels come from the image decoder of the `images` source
 * (core/image.h, libpng and libjpeg-turbo, converted to RGB as Pillow's
 * convert("RGB") does), so an image gives the same patch rows from a folder
 * and from a shard. what ("SHARD: MEMBER") starts every message.
 */
#ifndef ORCH_SHARDS_IMAGE_H
#define ORCH_SHARDS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* *h and *w of the PNG or JPEG image in buf[0..len). ORCH_EINVAL for
 * anything else or a header that is cut short. */
int orch_shards_image_size(const char *what, const unsigned char *buf, size_t len, int *h, int *w,
                           orch_err *err);

/* Decodes the image into *rgb (malloc'd h*w*3 bytes, the caller frees it). */
int orch_shards_image_decode(const char *what, const unsigned char *buf, size_t len, uint8_t **rgb,
                             int *h, int *w, orch_err *err);

#endif
