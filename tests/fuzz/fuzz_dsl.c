/*
 * fuzz_dsl.c - libFuzzer target: a pipeline file through the whole DSL
 * loader (orch_dsl_load: the sandboxed Lua state, require, conversion,
 * validation), and the same file as a sweep (orch_dsl_load_sweep: the
 * expansion of sweep { ... }, every point converted). The input is written as pipeline.lua into a
 * temporary directory that also holds the shipped pipelines/base.lua and the bad-input suite's
 * common.lua (read relative to the current directory: run it from the top of the source tree, as
 * tests/fuzz/run.sh does), so seeds that require them load fully. Every input is bounded by the
 * sandbox's own instruction and memory limits (lua/dsl_ctx.h), not by anything here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/pipeline.h"
#include "core/sweep.h"
#include "lua/dsl.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void copy_module(const char *from, const char *name)
{
    FILE *fp = fopen(from, "rb");
    if (fp == NULL)
        return; /* seeds that require it then fail to load, which is still a test */
    uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    fuzz_write(name, buf, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* require searches only the pipeline's directory then */
    unsetenv("ORCH_PIPELINE_PATH");
    copy_module("pipelines/base.lua", "base.lua");
    copy_module("tests/bad/common.lua", "common.lua");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("pipeline.lua", data, size);
    orch_err err = {0};
    orch_pipeline p;
    (void)orch_dsl_load(path, NULL, 0, &p, &err);
    static orch_sweep s; /* large: keep it off the stack */
    (void)orch_dsl_load_sweep(path, NULL, 0, &s, &err);
    orch_sweep_free(&s);
    return 0;
}
