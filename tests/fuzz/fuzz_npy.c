/*
 * fuzz_npy.c - libFuzzer target: a .npy file (written to a temporary file:
 * orch_npy_load reads a path) loaded as whatever it holds, and every loaded
 * element read, so a buffer shorter than the shape says is caught.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "store/npy.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("fuzz.npy", data, size);
    orch_err err = {0};
    orch_npy a;
    if (orch_npy_load(path, ORCH_NPY_ANY, &a, &err) != ORCH_OK) {
        if (a.f32 != NULL || a.i64 != NULL)
            abort(); /* npy.h: *out is zeroed on error */
        return 0;
    }
    if ((a.f32 == NULL) == (a.i64 == NULL))
        abort();                /* npy.h: exactly one buffer after a load */
    volatile uint64_t sink = 0; /* unsigned: the sum may wrap */
    for (int64_t i = 0; i < a.numel; i++)
        sink += a.f32 != NULL ? (uint64_t)(a.f32[i] == a.f32[i]) : (uint64_t)a.i64[i];
    (void)sink;
    orch_npy_free(&a);
    return 0;
}
