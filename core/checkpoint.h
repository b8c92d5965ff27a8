/*
 * checkpoint.h - a run's trainable state in one safetensors file.
 *
 * A checkpoint holds every trainable tensor under its Hugging Face / PEFT
 * name ("visual.merger.mlp.2.weight", "adapter.weight", "head.bias",
 * "visual.merger.mlp.0.lora_A.weight"), so an adapter or LoRA trained here
 * loads elsewhere, and the optimizer state under "optimizer.<name>.exp_avg"
 * and ".exp_avg_sq" (AdamW, PyTorch's state names) or ".momentum_buffer"
 * (SGD). The run-loop state that makes a resume bit-for-bit (last step,
 * optimizer step count, loss scale and its growth counter, early stopping's
 * best value and patience count) is in the
 * header's metadata; data order and dropout masks are pure functions of
 * the seed and the step, so they need nothing saved. Frozen tensors are not
 * saved: they come back from the weights file or the seeded init.
 */
#ifndef ORCH_CHECKPOINT_H
#define ORCH_CHECKPOINT_H

#include <stdint.h>

#include "core/err.h"
#include "core/eval.h"
#include "core/graph.h"
#include "core/pipeline.h"

typedef struct orch_checkpoint_state {
    int64_t step;    /* last completed step */
    int64_t updates; /* optimizer steps taken (AdamW's t) */
    double loss_scale;
    int good_steps; /* finite steps since the scale last changed */
    char config_hash[65];
    orch_early_stop stop; /* schedule.stop's state (evals 0: none; then not written) */
} orch_checkpoint_state;

/* Writes g's trainable tensors and optimizer state, and st, to path
 * (atomically). On success fills sha256_hex (64 hex digits + NUL) and
 * *bytes with the file's. Returns ORCH_OK, ORCH_EIO or ORCH_ENOMEM. */
int orch_checkpoint_write(const char *path, const orch_graph *g, orch_optimizer_kind optimizer,
                          const orch_checkpoint_state *st, char sha256_hex[65], int64_t *bytes,
                          orch_err *err);

/* Loads a checkpoint written for the same configuration into g (reserved,
 * initialized) and *st. Refuses a checkpoint of another config hash or one
 * missing a tensor (ORCH_EINVAL). */
int orch_checkpoint_read(const char *path, orch_graph *g, orch_optimizer_kind optimizer,
                         const char *config_hash, orch_checkpoint_state *st, orch_err *err);

/* sha256 of a regular file's bytes as 64 hex digits; *bytes its size.
 * Anything but a regular file (a FIFO, /dev/zero) is refused before it is
 * read (ORCH_EIO, with errno's text when it cannot be opened). */
int orch_file_sha256(const char *path, char hex[65], int64_t *bytes, orch_err *err);

/* Checks that path is a regular file of bytes bytes (when >= 0; compared
 * before anything is read) whose sha256 is sha256 (when not NULL).
 * ORCH_EINVAL with one line saying why not: "PATH: cannot open: No such
 * file or directory", "PATH: not a regular file (a FIFO)", "PATH: 12
 * bytes, recorded as 4096", "PATH: does not match its recorded sha256". */
int orch_checkpoint_verify(const char *path, int64_t bytes, const char *sha256, orch_err *err);

#endif
