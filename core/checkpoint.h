/*
 * checkpoint.h - a run's trainable state: its weights in one safetensors
 * file, its optimizer state in another beside it.
 *
 * PATH ("RUN/checkpoint-49.safetensors") holds every trainable tensor
 * under its Hugging Face / PEFT name ("visual.merger.mlp.2.weight",
 * "adapter.weight", "head.bias", "visual.merger.mlp.0.lora_A.weight") and
 * nothing else, so it loads on its own elsewhere (safetensors.torch.load_file,
 * `orch export-adapter`), as Hugging Face Trainer keeps model.safetensors
 * apart from optimizer.pt. The optimizer state is the file
 * orch_checkpoint_optimizer_path names ("RUN/checkpoint-49.optimizer.
 * safetensors"), under "optimizer.<name>.exp_avg" and ".exp_avg_sq" (AdamW,
 * PyTorch's state names) or ".momentum_buffer" (SGD). The weights file's
 * metadata carries the run-loop state that makes a resume bit-for-bit (last
 * step, optimizer step count, loss scale and its growth counter, early
 * stopping's best value and patience count) and the
 * state file's size and sha256, so the one artifact the store records (the
 * weights file, with its own sha256) vouches for both. Data order and
 * dropout masks are pure functions of the seed and the step, so they need
 * nothing saved. Frozen tensors are not saved: they come back from the
 * weights file or the seeded init.
 *
 * Checkpoints written before the split ("orch-checkpoint-1": weights and
 * "optimizer.*" tensors in one file) are still read and resumed.
 */
#ifndef ORCH_CHECKPOINT_H
#define ORCH_CHECKPOINT_H

#include <stdint.h>

#include "core/err.h"
#include "core/eval.h"
#include "core/graph.h"
#include "core/pipeline.h"

#define ORCH_CHECKPOINT_PATH_MAX 4096

typedef struct orch_checkpoint_state {
    int64_t step;    /* last completed step */
    int64_t updates; /* optimizer steps taken (AdamW's t) */
    double loss_scale;
    int good_steps; /* finite steps since the scale last changed */
    char config_hash[65];
    orch_early_stop stop; /* schedule.stop's state (evals 0: none; then not written) */
} orch_checkpoint_state;

/* Writes g's optimizer state to the state file beside path, then its
 * trainable tensors and st to path (each atomically). On success fills
 * sha256_hex (64 hex digits + NUL) and *bytes with path's. Returns ORCH_OK,
 * ORCH_EINVAL (path does not end in ".safetensors"), ORCH_EIO or
 * ORCH_ENOMEM. */
int orch_checkpoint_write(const char *path, const orch_graph *g, orch_optimizer_kind optimizer,
                          const orch_checkpoint_state *st, char sha256_hex[65], int64_t *bytes,
                          orch_err *err);

/* Loads a checkpoint written for the same configuration (config_hash, or
 * any when NULL) into g (reserved, initialized) and *st: the weights, and
 * the optimizer state from the state file beside path (or from path
 * itself, for an orch-checkpoint-1 file). Refuses (ORCH_EINVAL) a
 * checkpoint of another config hash, one missing a tensor, and a state
 * file missing or not of the size, sha256, step and config the weights
 * file records. */
int orch_checkpoint_read(const char *path, orch_graph *g, orch_optimizer_kind optimizer,
                         const char *config_hash, orch_checkpoint_state *st, orch_err *err);

/* Like orch_checkpoint_read without the optimizer state, which is neither
 * read nor needed (`orch predict`). */
int orch_checkpoint_read_weights(const char *path, orch_graph *g, orch_checkpoint_state *st,
                                 orch_err *err);

/* sha256 of a regular file's bytes as 64 hex digits; *bytes its size.
 * Anything but a regular file (a FIFO, /dev/zero) is refused before it is
 * read (ORCH_EIO, with errno's text when it cannot be opened). */
int orch_file_sha256(const char *path, char hex[65], int64_t *bytes, orch_err *err);

/* Checks that path is a regular file of bytes bytes (when >= 0; compared
 * before anything is read) whose sha256 is sha256 (when not NULL), and,
 * when it is an orch checkpoint whose optimizer state is a file of its own,
 * that this file is of the size and sha256 path records.
 * ORCH_EINVAL with one line saying why not: "PATH: cannot open: No such
 * file or directory", "PATH: not a regular file (a FIFO)", "PATH: 12
 * bytes, recorded as 4096", "PATH: does not match its recorded sha256". */
int orch_checkpoint_verify(const char *path, int64_t bytes, const char *sha256, orch_err *err);

/* orch_checkpoint_verify of path alone, whatever it holds (the weights,
 * for reading them without the optimizer state; any recorded file). */
int orch_checkpoint_verify_file(const char *path, int64_t bytes, const char *sha256, orch_err *err);

#endif
