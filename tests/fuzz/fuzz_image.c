/*
 * fuzz_image.c - libFuzzer target: a PNG or JPEG file (or anything) decoded
 * from memory (orch_image_decode) and sized from its header alone
 * (orch_image_size), so libpng's and libjpeg's error paths (setjmp/longjmp,
 * the buffers freed on them) and the header scanner see hostile bytes.
 * Invariants: on error *out is zeroed; a decoded image has the header's
 * size and every pixel can be read.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    orch_err err = {0};
    int h = 0, w = 0;
    int sized = orch_image_size(data, size, "fuzz", &h, &w, &err) == ORCH_OK;
    orch_image img;
    if (orch_image_decode(data, size, "fuzz", &img, &err) != ORCH_OK) {
        if (img.rgb != NULL || img.height != 0 || img.width != 0)
            abort(); /* image.h: *out is zeroed on error */
        return 0;
    }
    /* the header scanner may refuse what libpng/libjpeg accept (garbage
     * it cannot skip), never the other way round with other dimensions */
    if (sized && (h != img.height || w != img.width))
        abort();
    volatile unsigned sum = 0;
    for (size_t i = 0; i < (size_t)img.height * img.width * 3; i++)
        sum += img.rgb[i];
    (void)sum;
    orch_image_free(&img);
    return 0;
}
