/*
 * testutil.h - helpers shared by the test binaries (cmocka).
 *
 * orch_bin() is the orch executable under test: $ORCH_BIN (set by
 * tests/run.sh), else ./orch. run_orch() runs it as a child process and
 * captures its exit code, stdout and stderr, so CLI behaviour is asserted on
 * values, the way a user sees it.
 */
#ifndef ORCH_TESTUTIL_H
#define ORCH_TESTUTIL_H

#include <stddef.h>

#include "core/dataset.h"
#include "core/pipeline.h"

typedef struct cli_result {
    int exit_code; /* exit status, or 128+signal when killed */
    char *out;     /* captured stdout, NUL-terminated; owned, free with cli_result_free */
    char *err;     /* captured stderr, likewise */
} cli_result;

/* Path of the orch binary under test. */
const char *orch_bin(void);

/* Runs orch with argv (NULL-terminated, without the program name) and the
 * environment variables in env ("NAME=value", NULL-terminated; may be NULL)
 * added to the current environment. Returns 0, or -1 if it could not start. */
int run_orch(const char *const argv[], const char *const env[], cli_result *result);

/* Runs /bin/sh -c command and captures it like run_orch. */
int run_shell(const char *command, cli_result *result);

void cli_result_free(cli_result *result);

/* Makes a fresh temporary directory and returns its path (static storage of
 * the caller: writes into buf of size n). Returns buf, or NULL on failure. */
char *make_temp_dir(char *buf, size_t n);

/* make_temp_dir into dir[dir_n], and the path of a store in it,
 * "DIR/orch.db" (not created), into db[db_n]: where a store test keeps its
 * store. Returns 0, or -1 when the directory could not be made. */
int make_temp_store(char *dir, size_t dir_n, char *db, size_t db_n);

/* Removes a directory tree made by make_temp_dir. */
void remove_tree(const char *path);

/* Writes text to path; returns 0 on success. */
int write_text_file(const char *path, const char *text);

/* Reads a whole file; returns a malloc'd NUL-terminated buffer or NULL. The
 * byte count (without the NUL) goes to *size when size is not NULL. */
char *read_whole_file(const char *path, size_t *size);

/* Fills out[n] with uniform values in [lo, hi) from a tiny deterministic
 * generator seeded by *state (a splitmix64 state). */
void fill_uniform(float *out, size_t n, float lo, float hi, unsigned long long *state);

/* Fills p with the tiny preset of docs/qwen25vl-vision.md §1.2 (depth 4,
 * hidden 32, 4 heads, intermediate 40, patch 2, merge 2, window 8, full
 * attention in blocks 1 and 3, out 24), strategy kind (surgery replaces
 * visual.merger.mlp.2; LoRA rank 4, alpha 8 on visual.merger.mlp.0 and
 * visual.blocks.1.attn.qkv; detach with a Linear adapter), a 3-class
 * classifier head, fp32, AdamW lr 1e-3, batch 2, seed 7. */
void tiny_pipeline(orch_pipeline *p, orch_strategy_kind kind);

/* Fills b with a batch for the tiny preset: two images, grids (1,6,10) and
 * (1,4,4), so 76 patches of 24 values drawn uniformly from [-1.5, 1.5) with
 * seed 42; class labels 2 and 0. The caller frees b with orch_batch_free. */
void tiny_batch(orch_batch *b);

#endif
