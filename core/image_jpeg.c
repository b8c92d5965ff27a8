/* image_jpeg.c - JPEG to RGB uint8 with libjpeg-turbo, with the settings
 * Pillow 9.4 decodes with (ISLOW DCT, fancy upsampling: libjpeg's defaults,
 * set explicitly), so the pixels equal Pillow's (core/image.h). The only
 * file that includes jpeglib.h; it also encodes (orch_image_encode_jpeg),
 * so benchmarks make their JPEGs without a second includer.
 *
 * Errors: libjpeg's error_exit and every warning (emit_message at level
 * -1: corrupt data, a premature end) longjmp back to decode_pixels' (or
 * encode_pixels') setjmp with the formatted message; see there for what
 * is volatile and why. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "core/image_codec.h"

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr; /* first: libjpeg passes &mgr as cinfo->err */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    f->mgr.format_message(cinfo, f->msg);
    longjmp(f->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    if (level < 0) /* a warning: the data is damaged */
        on_error_exit(cinfo);
}

/* Decodes into out with the caller's cinfo and fail (zeroed, fail wired
 * as cinfo's error manager). What libjpeg changes before a longjmp lives in
 * the caller's frame, so it is well defined after the jump (C11 7.13.2.1
 * makes only this function's own non-volatile locals indeterminate); the
 * buffers allocated here are volatile pointers. */
static int decode_pixels(struct jpeg_decompress_struct *cinfo, jpeg_failure *fail,
                         const uint8_t *buf, size_t n, const char *name, orch_image *out,
                         orch_err *err)
{
    uint8_t *volatile rgb = NULL;  /* the result, handed to out */
    uint8_t *volatile gray = NULL; /* one row of a grayscale JPEG */
    volatile int no_memory = 0;
    if (setjmp(fail->jump)) {
        free(rgb);
        free(gray);
        if (no_memory)
            return orch_seterr(err, ORCH_ENOMEM, "%s: out of memory decoding the JPEG", name);
        return orch_seterr(err, ORCH_EINVAL, "%s: corrupt JPEG: %s", name, fail->msg);
    }
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, buf, (unsigned long)n);
    jpeg_read_header(cinfo, TRUE);
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK)
        return orch_seterr(err, ORCH_EINVAL, "%s: CMYK JPEG is not supported; convert it to RGB",
                           name);
    if ((int64_t)cinfo->image_width * cinfo->image_height > ORCH_IMAGE_MAX_PIXELS)
        return orch_seterr(err, ORCH_EINVAL,
                           "%s: image of %lldx%lld pixels (HxW) exceeds the limit of %lld pixels "
                           "(Pillow's decompression-bomb limit)",
                           name, (long long)cinfo->image_height, (long long)cinfo->image_width,
                           ORCH_IMAGE_MAX_PIXELS);
    int is_gray = cinfo->jpeg_color_space == JCS_GRAYSCALE;
    cinfo->out_color_space = is_gray ? JCS_GRAYSCALE : JCS_RGB;
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(cinfo);
    size_t w = cinfo->output_width, h = cinfo->output_height;
    rgb = malloc(w * h * 3);
    if (is_gray)
        gray = malloc(w);
    if (rgb == NULL || (is_gray && gray == NULL)) {
        no_memory = 1;
        longjmp(fail->jump, 1);
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        size_t y = cinfo->output_scanline;
        JSAMPROW row = is_gray ? gray : rgb + y * w * 3;
        jpeg_read_scanlines(cinfo, &row, 1);
        if (is_gray)
            for (size_t x = 0; x < w; x++)
                rgb[(y * w + x) * 3] = rgb[(y * w + x) * 3 + 1] = rgb[(y * w + x) * 3 + 2] =
                    gray[x];
    }
    jpeg_finish_decompress(cinfo);
    free(gray);
    out->height = (int)h;
    out->width = (int)w;
    out->rgb = rgb;
    return ORCH_OK;
}

int orch_jpeg_decode(const uint8_t *buf, size_t n, const char *name, orch_image *out, orch_err *err)
{
    memset(out, 0, sizeof *out);
    /* zeroed: jpeg_destroy_decompress is safe on it even if create failed */
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&fail, 0, sizeof fail);
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = on_error_exit;
    fail.mgr.emit_message = on_message;
    int rc = decode_pixels(&cinfo, &fail, buf, n, name, out, err);
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

/* The encoder's body, with the caller's cinfo, fail and *dst (libjpeg's
 * memory destination mallocs and grows *dst; the caller frees it), all in
 * the caller's frame for the same reason as decode_pixels. */
static int encode_pixels(struct jpeg_compress_struct *cinfo, jpeg_failure *fail,
                         const orch_image *img, int quality, unsigned char **dst,
                         unsigned long *out_n, orch_err *err)
{
    if (setjmp(fail->jump))
        return orch_seterr(err, ORCH_ENOMEM, "jpeg encode: %s", fail->msg);
    jpeg_create_compress(cinfo);
    jpeg_mem_dest(cinfo, dst, out_n);
    cinfo->image_width = (JDIMENSION)img->width;
    cinfo->image_height = (JDIMENSION)img->height;
    cinfo->input_components = 3;
    cinfo->in_color_space = JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = img->rgb + (size_t)cinfo->next_scanline * (size_t)img->width * 3;
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return ORCH_OK;
}

int orch_image_encode_jpeg(const orch_image *img, int quality, uint8_t **buf, size_t *n,
                           orch_err *err)
{
    *buf = NULL;
    *n = 0;
    if (img->height < 1 || img->width < 1 || img->height > 65500 || img->width > 65500 ||
        quality < 1 || quality > 100)
        return orch_seterr(err, ORCH_EINVAL, "jpeg encode: bad size %dx%d or quality %d",
                           img->height, img->width, quality);
    struct jpeg_compress_struct cinfo;
    jpeg_failure fail;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&fail, 0, sizeof fail);
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = on_error_exit;
    unsigned char *dst = NULL;
    unsigned long out_n = 0;
    int rc = encode_pixels(&cinfo, &fail, img, quality, &dst, &out_n, err);
    jpeg_destroy_compress(&cinfo);
    if (rc != ORCH_OK) {
        free(dst);
        return rc;
    }
    *buf = dst;
    *n = out_n;
    return ORCH_OK;
}
