/*
 * fuzz_safetensors.c - libFuzzer target: a safetensors file in memory
 * (orch_st_open_memory), then every call a loader makes on an open file:
 * each tensor looked up, converted to fp32 and scanned for NaN, and the
 * metadata read. A crash or sanitizer report is a bug in the reader: the
 * header is validated at open, so nothing after it may read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "store/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    orch_err err = {0};
    orch_st_file *f = NULL;
    if (orch_st_open_memory(data, size, "fuzz.safetensors", &f, &err) != ORCH_OK)
        return 0;
    for (int i = 0; i < orch_st_count(f); i++) {
        const orch_st_tensor *t = orch_st_tensor_at(f, i);
        if (orch_st_find(f, t->name) != t)
            abort(); /* names are unique, so the lookup finds this very tensor */
        if (t->dtype == ORCH_ST_OTHER || t->numel > (1 << 20))
            continue;
        float *dst = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *dst);
        if (dst == NULL)
            continue;
        if (orch_st_read_f32_numel(f, t->name, t->numel, dst, &err) != ORCH_OK)
            abort(); /* a listed F32/BF16/F16 tensor always reads */
        (void)orch_st_count_nonfinite(t);
        free(dst);
    }
    (void)orch_st_metadata(f, "format");
    orch_st_close(f);
    return 0;
}
