/* image.c - format detection, header sizes, files; see image.h. The pixel
 * decoders are core/image_png.c and core/image_jpeg.c. */
#include "core/image.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/image_codec.h"
#include "core/regular_file.h"

/* successful decodes, for tests (image.h) */
static atomic_llong decode_count;

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

orch_image_format orch_image_format_of(const uint8_t *buf, size_t n)
{
    if (n >= 8 && memcmp(buf, png_magic, 8) == 0)
        return ORCH_IMAGE_PNG;
    if (n >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return ORCH_IMAGE_JPEG;
    return ORCH_IMAGE_UNKNOWN;
}

const char *orch_image_format_name(orch_image_format f)
{
    switch (f) {
    case ORCH_IMAGE_PNG:
        return "PNG";
    case ORCH_IMAGE_JPEG:
        return "JPEG";
    case ORCH_IMAGE_UNKNOWN:
        break;
    }
    return "unknown";
}

static int not_an_image(const char *name, size_t n, orch_err *err)
{
    if (n == 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: empty file, not a PNG or JPEG image", name);
    return orch_seterr(err, ORCH_EINVAL, "%s: not a PNG or JPEG image (unknown magic bytes)", name);
}

int orch_image_decode(const uint8_t *buf, size_t n, const char *name, orch_image *out,
                      orch_err *err)
{
    memset(out, 0, sizeof *out);
    int rc;
    switch (orch_image_format_of(buf, n)) {
    case ORCH_IMAGE_PNG:
        rc = orch_png_decode(buf, n, name, out, err);
        break;
    case ORCH_IMAGE_JPEG:
        rc = orch_jpeg_decode(buf, n, name, out, err);
        break;
    default:
        return not_an_image(name, n, err);
    }
    if (rc == ORCH_OK)
        atomic_fetch_add(&decode_count, 1);
    return rc;
}

int64_t orch_image_decode_count(void)
{
    return (int64_t)atomic_load(&decode_count);
}

void orch_image_free(orch_image *img)
{
    if (img == NULL)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* Reads at most max bytes (SIZE_MAX: all) of path into a malloc'ed buffer. */
static int read_prefix(const char *path, size_t max, uint8_t **buf, size_t *n, size_t *file_size,
                       orch_err *err)
{
    *buf = NULL;
    *n = 0;
    /* a FIFO named like an image must not block the open */
    int64_t file_bytes = 0;
    int fd = orch_open_regular(path, &file_bytes, ORCH_EINVAL, err);
    if (fd < 0)
        return err->code;
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        close(fd);
        return orch_seterr(err, ORCH_ENOMEM, "%s: cannot read: %s", path, strerror(errno));
    }
    size_t size = (size_t)file_bytes;
    size_t want = size < max ? size : max;
    uint8_t *data = malloc(want > 0 ? want : 1); /* owned by the caller on success */
    if (data == NULL) {
        fclose(f);
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory reading %zu bytes", path, want);
    }
    size_t got = fread(data, 1, want, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != want) {
        free(data);
        return orch_seterr(err, ORCH_EINVAL, "%s: cannot read: %s", path,
                           failed ? "read error" : "the file shrank while being read");
    }
    *buf = data;
    *n = got;
    if (file_size != NULL)
        *file_size = size;
    return ORCH_OK;
}

int orch_image_read_file(const char *path, uint8_t **buf, size_t *n, orch_err *err)
{
    return read_prefix(path, SIZE_MAX, buf, n, NULL, err);
}

int orch_image_load(const char *path, orch_image *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t n;
    int rc = orch_image_read_file(path, &buf, &n, err);
    if (rc != ORCH_OK)
        return rc;
    rc = orch_image_decode(buf, n, path, out, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------- header sizes */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int too_many_pixels(const char *name, int64_t h, int64_t w, orch_err *err)
{
    return orch_seterr(err, ORCH_EINVAL,
                       "%s: image of %lldx%lld pixels (HxW) exceeds the limit of %lld pixels "
                       "(Pillow's decompression-bomb limit)",
                       name, (long long)h, (long long)w, ORCH_IMAGE_MAX_PIXELS);
}

/* PNG: the signature, then IHDR (length 13) first: width, height, bit
 * depth, colour type at bytes 16..25. */
static int png_size(const uint8_t *buf, size_t n, const char *name, int *h, int *w, orch_err *err)
{
    if (n < 33 || be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0)
        return orch_seterr(err, ORCH_EINVAL, "%s: truncated or corrupt PNG header (no IHDR)", name);
    uint32_t width = be32(buf + 16), height = be32(buf + 20);
    int depth = buf[24], ct = buf[25];
    int ok_depth =
        (ct == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
        (ct == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
        ((ct == 2 || ct == 4 || ct == 6) && (depth == 8 || depth == 16));
    if (!ok_depth)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: corrupt PNG header: colour type %d with bit depth %d", name, ct,
                           depth);
    if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu)
        return orch_seterr(err, ORCH_EINVAL, "%s: corrupt PNG header: %ux%u pixels (HxW)", name,
                           height, width);
    if ((int64_t)width * height > ORCH_IMAGE_MAX_PIXELS)
        return too_many_pixels(name, height, width, err);
    *h = (int)height;
    *w = (int)width;
    return ORCH_OK;
}

/* JPEG: markers from SOI until a start-of-frame (SOF0..SOF15 but DHT C4,
 * JPG C8, DAC CC), whose payload is precision, height, width, components.
 * Returns 1 (ORCH_EINVAL set) when the buffer ended before the SOF, so the
 * file variant can read the rest. */
static int jpeg_size(const uint8_t *buf, size_t n, const char *name, int *h, int *w, int *need_more,
                     orch_err *err)
{
    *need_more = 0;
    size_t i = 2;
    for (;;) {
        while (i < n && buf[i] != 0xff)
            i++; /* tolerate garbage between segments, as libjpeg does (with a warning) */
        while (i < n && buf[i] == 0xff)
            i++;
        if (i >= n)
            break;
        int m = buf[i++];
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd8))
            continue; /* standalone markers */
        if (m == 0xd9 || m == 0xda)
            return orch_seterr(err, ORCH_EINVAL, "%s: corrupt JPEG: no frame header (SOF)", name);
        if (i + 2 > n)
            break;
        size_t len = (size_t)buf[i] << 8 | buf[i + 1];
        if (len < 2)
            return orch_seterr(err, ORCH_EINVAL, "%s: corrupt JPEG: bad marker length", name);
        int is_sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
        if (is_sof) {
            if (i + 8 > n)
                break;
            int height = buf[i + 3] << 8 | buf[i + 4];
            int width = buf[i + 5] << 8 | buf[i + 6];
            int comps = buf[i + 7];
            if (comps == 4)
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s: CMYK JPEG is not supported; convert it to RGB", name);
            if (comps != 1 && comps != 3)
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s: JPEG with %d colour components is not supported", name,
                                   comps);
            if (height == 0 || width == 0)
                return orch_seterr(err, ORCH_EINVAL,
                                   "%s: JPEG of %dx%d pixels (HxW): a zero size (a DNL marker) "
                                   "is not supported",
                                   name, height, width);
            if ((int64_t)height * width > ORCH_IMAGE_MAX_PIXELS)
                return too_many_pixels(name, height, width, err);
            *h = height;
            *w = width;
            return ORCH_OK;
        }
        i += len;
    }
    *need_more = 1;
    return orch_seterr(err, ORCH_EINVAL,
                       "%s: truncated JPEG: the file ends before its frame "
                       "header (SOF)",
                       name);
}

int orch_image_size(const uint8_t *buf, size_t n, const char *name, int *height, int *width,
                    orch_err *err)
{
    int need_more;
    switch (orch_image_format_of(buf, n)) {
    case ORCH_IMAGE_PNG:
        return png_size(buf, n, name, height, width, err);
    case ORCH_IMAGE_JPEG:
        return jpeg_size(buf, n, name, height, width, &need_more, err);
    default:
        return not_an_image(name, n, err);
    }
}

int orch_image_size_file(const char *path, int *height, int *width, orch_err *err)
{
    uint8_t *buf;
    size_t n, size;
    int rc = read_prefix(path, 65536, &buf, &n, &size, err);
    if (rc != ORCH_OK)
        return rc;
    int need_more = 0;
    if (orch_image_format_of(buf, n) == ORCH_IMAGE_JPEG) {
        rc = jpeg_size(buf, n, path, height, width, &need_more, err);
        if (need_more && n < size) {
            free(buf);
            rc = read_prefix(path, SIZE_MAX, &buf, &n, NULL, err);
            if (rc != ORCH_OK)
                return rc;
            rc = jpeg_size(buf, n, path, height, width, &need_more, err);
        }
    } else {
        rc = orch_image_size(buf, n, path, height, width, err);
    }
    free(buf);
    return rc;
}
