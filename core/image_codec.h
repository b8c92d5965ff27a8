/*
 * image_codec.h - the two decoders behind core/image.h (private to
 * core/image*.c). Each is the only file including its library's header:
 * core/image_png.c (png.h) and core/image_jpeg.c (jpeglib.h). Both fill
 * out->rgb as core/image.h defines it and refuse more than
 * ORCH_IMAGE_MAX_PIXELS pixels before allocating them.
 */
#ifndef ORCH_IMAGE_CODEC_H
#define ORCH_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/image.h"

int orch_png_decode(const uint8_t *buf, size_t n, const char *name, orch_image *out, orch_err *err);
int orch_jpeg_decode(const uint8_t *buf, size_t n, const char *name, orch_image *out,
                     orch_err *err);

#endif
