/* image_png.c - PNG to RGB uint8 with libpng, as Pillow 9.4 converts it
 * (core/image.h states the rules). The only file that includes png.h.
 *
 * Errors: libpng reports them through on_error, which keeps the message
 * and longjmps back to read_pixels' setjmp (see there for what is
 * volatile and why); the buffers allocated after it are freed on the
 * error path. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "core/image_codec.h"

/* the in-memory source and the last libpng error */
typedef struct png_source {
    const uint8_t *buf;
    size_t n, pos;
    char msg[200];
} png_source;

static void on_error(png_structp png, png_const_charp msg)
{
    png_source *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (a bad ancillary chunk's CRC, an sRGB profile libpng dislikes)
 * leave the pixels intact; Pillow ignores them too. */
static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void read_mem(png_structp png, png_bytep dst, png_size_t len)
{
    png_source *src = png_get_io_ptr(png);
    if (len > src->n - src->pos)
        png_error(png, "truncated file (the data ends early)");
    memcpy(dst, src->buf + src->pos, len);
    src->pos += len;
}

/* One row of libpng's output (after the transformations set below) to RGB. */
static void row_to_rgb(const uint8_t *in, int channels, int depth16, int w, uint8_t *out)
{
    if (depth16) { /* 16-bit gray only: Pillow's mode I clipped to 0..255 */
        for (int x = 0; x < w; x++) {
            unsigned v = (unsigned)in[2 * x] << 8 | in[2 * x + 1];
            uint8_t g = v > 255 ? 255 : (uint8_t)v;
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = g;
        }
        return;
    }
    for (int x = 0; x < w; x++) {
        const uint8_t *p = in + (size_t)x * channels;
        if (channels >= 3) { /* RGB, RGBA: alpha dropped */
            out[3 * x] = p[0];
            out[3 * x + 1] = p[1];
            out[3 * x + 2] = p[2];
        } else { /* gray, gray+alpha */
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = p[0];
        }
    }
}

/* Reads the pixels of png into out. The state that changes before a
 * longjmp (src's message and position, libpng's structs) lives in the
 * caller's frame, so it is well defined after the jump (C11 7.13.2.1 makes
 * only this function's own non-volatile locals indeterminate); the buffers
 * allocated here are volatile pointers. */
static int read_pixels(png_structp png, png_infop info, png_source *src, const char *name,
                       orch_image *out, orch_err *err)
{
    uint8_t *volatile rows_buf = NULL; /* libpng's output rows */
    png_bytep *volatile rows = NULL;   /* pointers into rows_buf */
    uint8_t *volatile rgb = NULL;      /* the result, handed to out */
    volatile int status = ORCH_EINVAL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows_buf);
        free(rows);
        free(rgb);
        if (status == ORCH_ENOMEM)
            return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory decoding the PNG", name);
        return orch_seterr(err, ORCH_EINVAL, "%s: corrupt PNG: %s", name, src->msg);
    }
    png_set_read_fn(png, src, read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if ((int64_t)w * h > ORCH_IMAGE_MAX_PIXELS)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: image of %ux%u pixels (HxW) exceeds the limit of %lld pixels "
                           "(Pillow's decompression-bomb limit)",
                           name, (unsigned)h, (unsigned)w, ORCH_IMAGE_MAX_PIXELS);
    /* Pillow's rules (image.h): palette through the palette (libpng may add
     * the tRNS alpha, dropped below); 1/2/4-bit gray scaled to 8 bits
     * without tRNS expansion; 16-bit samples keep their high byte, except
     * 16-bit gray, which is clipped. */
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    int gray16 = ct == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (depth == 16 && !gray16)
        png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    status = ORCH_ENOMEM;
    rows_buf = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    rgb = malloc((size_t)w * h * 3);
    if (rows_buf == NULL || rows == NULL || rgb == NULL)
        png_longjmp(png, 1);
    status = ORCH_EINVAL;
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = rows_buf + rowbytes * y;
    png_read_image(png, rows);
    /* the rest of the file (to IEND): a file cut after its pixels is
     * truncated too */
    png_read_end(png, NULL);
    for (png_uint_32 y = 0; y < h; y++)
        row_to_rgb(rows[y], channels, gray16, (int)w, rgb + (size_t)y * w * 3);
    out->height = (int)h;
    out->width = (int)w;
    out->rgb = rgb;
    free(rows_buf);
    free(rows);
    return ORCH_OK;
}

int orch_png_decode(const uint8_t *buf, size_t n, const char *name, orch_image *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    png_source src = {.buf = buf, .n = n, .pos = 0, .msg = ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    if (png == NULL)
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory (libpng)", name);
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory (libpng)", name);
    }
    int rc = read_pixels(png, info, &src, name, out, err);
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}
