/*
 * safetensors.h - read and write Hugging Face safetensors checkpoints.
 *
 * File format (https://github.com/huggingface/safetensors):
 *   8 bytes   N, the header length, unsigned little-endian
 *   N bytes   a JSON object: "name": {"dtype": "F32", "shape": [2, 3],
 *             "data_offsets": [begin, end]}, plus an optional "__metadata__"
 *             object of string -> string
 *   rest      the data region; a tensor's bytes are [begin, end) of it,
 *             little-endian, row-major
 *
 * Reader: a file is memory-mapped read-only and its header validated in full
 * at open (header length within the file and at most 100 MB like the
 * reference implementation, a JSON object, every entry with a known dtype, a
 * shape of non-negative integers and data_offsets with begin <= end <= size of
 * the data region and end - begin == dtype size x product of the shape).
 * Gaps and overlaps between tensors are not checked. orch reads F32, BF16 and
 * F16 tensors; other safetensors dtypes are refused when read (see
 * ORCH_ST_OTHER), an unknown dtype string at open. Every problem is one line
 * in orch_err with ORCH_EINVAL, naming the file.
 *
 * Sharded checkpoints: opening a "model.safetensors.index.json" (a path that
 * ends in ".json", or a file whose content is a JSON object rather than a
 * safetensors header) opens every shard named in its "weight_map" (paths
 * relative to the index file's directory) and presents all their tensors as
 * one set. Errors in a shard name the shard and the index. A directory (a
 * Hugging Face snapshot) opens its model.safetensors.index.json, or else its
 * model.safetensors.
 *
 * Names: orch_st_find accepts Hugging Face names with or without the
 * "model." prefix. It tries, in order: the name as given; "model." + name;
 * name without its leading "model." (when it has one). So "visual.blocks.0.
 * attn.qkv.weight" finds a tensor stored as "visual.blocks..." (older hub
 * checkpoints) or "model.visual.blocks..." (transformers >= 4.52), and so
 * does "model.visual.blocks.0.attn.qkv.weight".
 *
 * Writer: orch_st_write writes F32 tensors the way the reference
 * implementation does (header padded with spaces to a multiple of 8, tensors
 * sorted by name, "__metadata__" first), into a temporary file in the
 * destination directory that is fsync'ed and renamed over the destination,
 * so a half-written checkpoint never carries the final name.
 */
#ifndef ORCH_SAFETENSORS_H
#define ORCH_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ORCH_ST_MAX_DIMS 8

/* ORCH_ST_OTHER: a valid safetensors dtype orch does not read (I8, F64,
 * F8_E4M3, ...). Such tensors are listed, and refused only when read:
 * "PATH: unsupported dtype I8 for tensor X (orch reads F32, BF16, F16)", so a
 * full checkpoint opens even when only its vision tower is in F32/BF16/F16. */
typedef enum orch_st_dtype {
    ORCH_ST_F32 = 0,
    ORCH_ST_BF16,
    ORCH_ST_F16,
    ORCH_ST_OTHER
} orch_st_dtype;

/* One tensor of an open file set. Every pointer is borrowed from the
 * orch_st_file and stays valid until orch_st_close. */
typedef struct orch_st_tensor {
    const char *name; /* as stored in the file */
    orch_st_dtype dtype;
    const char *dtype_name; /* as in the header: "F32", "BF16", "I8", ... */
    int ndim;               /* 0 for a scalar */
    int64_t shape[ORCH_ST_MAX_DIMS];
    int64_t numel;    /* product of shape (1 for a scalar) */
    const void *data; /* numel elements of dtype, little-endian, maybe unaligned */
    size_t nbytes;
    const char *shard; /* path of the file that holds it */
} orch_st_tensor;

/* An open safetensors file or sharded set (opaque). */
typedef struct orch_st_file orch_st_file;

/* A tensor to write: row-major fp32 data of shape[0..ndim-1], borrowed. */
typedef struct orch_st_entry {
    const char *name;
    int ndim;
    int64_t shape[ORCH_ST_MAX_DIMS];
    const float *data;
} orch_st_entry;

/* Opens path, a .safetensors file or a model.safetensors.index.json, and
 * validates every header. On success returns ORCH_OK and *out is a new file
 * set the caller owns (release with orch_st_close). On failure *out is NULL
 * and err holds one line: ORCH_EINVAL for a missing or malformed file,
 * ORCH_EIO when mapping fails, ORCH_ENOMEM. */
int orch_st_open(const char *path, orch_st_file **out, orch_err *err);

/* Like orch_st_open, for one safetensors file held in buf[0..size-1]
 * (copied: buf is borrowed for the call only). name stands for the path in
 * error messages and orch_st_path. A sharded index cannot be opened this
 * way (its shards are files). */
int orch_st_open_memory(const void *buf, size_t size, const char *name, orch_st_file **out,
                        orch_err *err);

/* Unmaps and frees everything of f; every orch_st_tensor pointer obtained
 * from f becomes invalid. f may be NULL. */
void orch_st_close(orch_st_file *f);

/* The path orch_st_open opened (for a directory, the file chosen in it);
 * borrowed. */
const char *orch_st_path(const orch_st_file *f);

/* Number of tensors in f, and the i-th (0 <= i < count) in name order. The
 * returned pointer is borrowed from f. */
int orch_st_count(const orch_st_file *f);
const orch_st_tensor *orch_st_tensor_at(const orch_st_file *f, int i);

/* The tensor called name, found with the prefix rule above, or NULL. The
 * returned pointer is borrowed from f. */
const orch_st_tensor *orch_st_find(const orch_st_file *f, const char *name);

/* The "__metadata__" value for key (borrowed from f), or NULL when absent. For
 * a sharded set, the first shard (in weight_map order) that has the key. */
const char *orch_st_metadata(const orch_st_file *f, const char *key);

/* Shape match rule of orch_st_read_f32: true when the shapes are equal, or
 * when one of them is 2-D [d0, r], the other has ndim >= 2 with the same d0
 * and the product of its trailing dimensions is r. So a Conv3d weight stored
 * as (D, C, tp, P, P) reads as its flattened (D, C*tp*P*P) matrix view, and
 * the other way round. */
int orch_st_shape_compatible(const int64_t *a, int na, const int64_t *b, int nb);

/* Copies tensor name (found with orch_st_find) into dst as fp32, converting
 * BF16 and F16 exactly. expected_shape[0..ndim-1] must match the stored shape
 * under orch_st_shape_compatible; dst must hold its element count. Errors
 * (ORCH_EINVAL): "PATH: no tensor 'NAME'" and "PATH: NAME: shape [a, b] in
 * file, expected [c, d]". dst is borrowed; untouched on error. */
int orch_st_read_f32(const orch_st_file *f, const char *name, const int64_t *expected_shape,
                     int ndim, float *dst, orch_err *err);

/* Like orch_st_read_f32, but matches on element count alone: the caller
 * takes responsibility for the layout ("PATH: NAME: 120 elements in file,
 * expected 96"). */
int orch_st_read_f32_numel(const orch_st_file *f, const char *name, int64_t numel, float *dst,
                           orch_err *err);

/* Converts all of t into dst[t->numel] as fp32 (no checks). */
void orch_st_tensor_to_f32(const orch_st_tensor *t, float *dst);

/* Number of NaN and Inf elements in t (not an error for the reader; a
 * caller that cares refuses the checkpoint). */
int64_t orch_st_count_nonfinite(const orch_st_tensor *t);

/* Writes entries[0..n-1] as F32 tensors to path (atomically: temp file in
 * the same directory, fsync, rename). metadata_json may be NULL or a JSON
 * object whose values are all strings; it becomes "__metadata__". Entry names
 * must be non-empty, unique and not "__metadata__". Everything is borrowed.
 * Returns ORCH_OK, ORCH_EINVAL for bad entries or metadata, ORCH_EIO when
 * the file cannot be written (nothing is left at path then). */
int orch_st_write(const char *path, const orch_st_entry *entries, int n, const char *metadata_json,
                  orch_err *err);

#endif
