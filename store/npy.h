/*
 * npy.h - read and write numpy .npy files (format versions 1.0, 2.0, 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.0,
 * uint32 LE for 2.0/3.0), then a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with
 * spaces and ended by '\n', then the raw C-order data.
 *
 * orch keeps two element types in memory: float32 and int64. Accepted
 * descrs and what they load as:
 *   '<f4' float32;  '<f8' float32 (rounded to nearest);
 *   '<i8' int64;    '<i4', '|u1', '|i1' int64 (widened).
 * ('=' and '|' byte-order marks are accepted where numpy would write them on
 * a little-endian machine.) Refused, each with one line naming the file and
 * ORCH_EINVAL: a bad magic, an unknown version, a truncated or malformed
 * header dict, fortran_order True with 2 or more dimensions (with 0 or 1 the
 * bytes are the same as C order, so it is accepted), big-endian data, any other dtype, and a
 * data size that differs from the shape's (shorter: "truncated", longer:
 * "N bytes of data, shape ... needs M").
 */
#ifndef ORCH_NPY_H
#define ORCH_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define ORCH_NPY_MAX_DIMS 8

typedef enum orch_npy_dtype {
    ORCH_NPY_ANY = 0, /* orch_npy_load "want": take float or integer data as it comes */
    ORCH_NPY_F32,
    ORCH_NPY_I64
} orch_npy_dtype;

/* A loaded array. Exactly one of f32 / i64 is non-NULL after a successful
 * load (even for zero elements); it is owned by the struct and released by
 * orch_npy_free. */
typedef struct orch_npy {
    orch_npy_dtype dtype; /* ORCH_NPY_F32 or ORCH_NPY_I64 */
    char descr[16];       /* the file's descr, e.g. "<f8" */
    int ndim;             /* 0 for a scalar array */
    int64_t shape[ORCH_NPY_MAX_DIMS];
    int64_t numel; /* product of shape (1 for a scalar) */
    float *f32;
    int64_t *i64;
} orch_npy;

/* Loads path into *out (overwritten; need not be initialised). want is the
 * element type the caller needs: ORCH_NPY_F32 accepts only float descrs
 * ("grid.npy: dtype '<i8' not supported (expected float32 '<f4')"),
 * ORCH_NPY_I64 only integer descrs, ORCH_NPY_ANY both. Returns ORCH_OK and
 * a struct whose buffer the caller owns (orch_npy_free), or an error with
 * *out zeroed: ORCH_EINVAL for a missing or malformed file, ORCH_EIO for a
 * read error, ORCH_ENOMEM. */
int orch_npy_load(const char *path, orch_npy_dtype want, orch_npy *out, orch_err *err);

/* Reads and checks only the header of path, as orch_npy_load does (magic,
 * version, dict, dtype against want, and a data size that matches the
 * shape), without reading the data: *out gets dtype, descr, ndim, shape and
 * numel; f32 and i64 stay NULL. For validating a large file cheaply (orch
 * plan). Same errors as orch_npy_load; *out is zeroed on error. */
int orch_npy_read_header(const char *path, orch_npy_dtype want, orch_npy *out, orch_err *err);

/* orch_npy_load (header_only 0) or orch_npy_read_header (header_only 1)
 * of the len bytes at buf, a .npy file held in memory (a tar member);
 * name stands for the path in messages ("train-000.tar: 000001.npy").
 * Same checks and errors. */
int orch_npy_load_mem(const char *name, const void *buf, size_t len, orch_npy_dtype want,
                      int header_only, orch_npy *out, orch_err *err);

/* The bytes numpy.save writes for data (descr '<f4', '<i8' or '|u1'; numel
 * = product of shape, borrowed) into *buf (malloc'd, the caller frees it),
 * *len bytes: for .npy members of a tar shard. ORCH_EINVAL for a bad shape,
 * ORCH_ENOMEM. */
int orch_npy_encode_f32(const float *data, const int64_t *shape, int ndim, void **buf, size_t *len,
                        orch_err *err);
int orch_npy_encode_i64(const int64_t *data, const int64_t *shape, int ndim, void **buf,
                        size_t *len, orch_err *err);
int orch_npy_encode_u8(const uint8_t *data, const int64_t *shape, int ndim, void **buf, size_t *len,
                       orch_err *err);

/* Frees the buffer of a and zeroes it. a may be NULL or already freed. */
void orch_npy_free(orch_npy *a);

/* Writes data (numel = product of shape[0..ndim-1], borrowed) as a version
 * 1.0 .npy file ('<f4' / '<i8', C order; version 2.0 only if the header
 * would not fit in 1.0) exactly as numpy.save lays it out (header padded to
 * a multiple of 64 bytes). Written to a temporary file in the same
 * directory, then renamed. Returns ORCH_OK, ORCH_EINVAL for a bad shape,
 * ORCH_EIO when the file cannot be written. */
int orch_npy_save_f32(const char *path, const float *data, const int64_t *shape, int ndim,
                      orch_err *err);
int orch_npy_save_i64(const char *path, const int64_t *data, const int64_t *shape, int ndim,
                      orch_err *err);

#endif
