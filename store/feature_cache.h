/*
 * feature_cache.h - an on-disk cache of tower outputs, for detach.
 *
 * With detach no gradient reaches the tower, so its output for an image is
 * a pure function of the tower's weights, its config, the precision and the
 * image's pixels. The caller hashes all of that into a 128-bit key; the
 * cache maps keys to float arrays, one file per key in a directory, written
 * to a temporary name and renamed so a half-written entry never looks
 * finished. An entry is found only under its exact key, so a change of any
 * part of the key never reuses it.
 */
#ifndef ORCH_FEATURE_CACHE_H
#define ORCH_FEATURE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct orch_fcache_key {
    uint64_t hi, lo;
} orch_fcache_key;

typedef struct orch_fcache orch_fcache;

/* A key as text: 32 lowercase hex digits and a NUL. An entry's file is
 * DIR/TEXT.f32, so the text names the file (what `orch rm` removes). */
#define ORCH_FCACHE_KEY_HEX 33
void orch_fcache_key_hex(orch_fcache_key key, char out[ORCH_FCACHE_KEY_HEX]);

/* The file of the entry whose key text is hex, in the cache dir; -1 when
 * it does not fit in n bytes. */
int orch_fcache_entry_file(const char *dir, const char *hex, char *buf, size_t n);

/* Opens (creating if needed) the cache directory dir. Returns ORCH_OK or
 * ORCH_EIO with err filled. *out is owned by the caller: orch_fcache_close. */
int orch_fcache_open(const char *dir, orch_fcache **out, orch_err *err);

void orch_fcache_close(orch_fcache *c);

/* Reads entry key into dst (n floats). Returns 1 on a hit, 0 on a miss (no
 * entry, or an entry of another size, which is treated as absent). */
int orch_fcache_get(orch_fcache *c, orch_fcache_key key, float *dst, size_t n);

/* Stores src (n floats) under key. Returns ORCH_OK or ORCH_EIO. */
int orch_fcache_put(orch_fcache *c, orch_fcache_key key, const float *src, size_t n, orch_err *err);

#endif
